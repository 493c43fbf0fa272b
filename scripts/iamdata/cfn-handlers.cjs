// cfn-handlers.cjs extracts the IAM permissions CloudFormation's resource
// handlers need (the "handlers" section of each resource type schema) for the
// resource types berth's templates use, into cfn/testdata/handlers.json.
//
// Schemas: the CloudFormation registry's schema files, one JSON file per
// type, as published in https://schema.cloudformation.us-east-1.amazonaws.com/CloudformationSchema.zip
// or vendored by hashicorp/terraform-provider-awscc under
// internal/service/cloudformation/schemas/ (AWS_S3_Bucket.json, ...).
// Output is deterministic: handler lists keep the schema's order.
// Usage: node cfn-handlers.cjs SCHEMA_DIR SOURCE_NOTE > cfn/testdata/handlers.json
'use strict';
const fs = require('fs');
const path = require('path');

const types = [
  'AWS::IAM::ManagedPolicy', 'AWS::IAM::Role', 'AWS::KMS::Key',
  'AWS::S3::Bucket', 'AWS::S3::BucketPolicy', 'AWS::SSM::Parameter',
  // The network templates (cfn/network.go).
  'AWS::EC2::Route', 'AWS::EC2::RouteTable', 'AWS::EC2::SecurityGroup', 'AWS::EC2::Subnet',
  'AWS::EC2::SubnetRouteTableAssociation', 'AWS::EC2::VPC', 'AWS::EC2::VPCEndpoint',
  'AWS::EC2::VPCEndpointService', 'AWS::EC2::VPCEndpointServicePermissions', 'AWS::EC2::VPCPeeringConnection',
];
const dir = process.argv[2];
const source = process.argv[3] || dir;
const byType = {};
for (const f of fs.readdirSync(dir)) {
  if (!f.endsWith('.json')) continue;
  let s;
  try { s = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')); } catch (e) { continue; }
  if (s && types.includes(s.typeName)) byType[s.typeName] = s;
}
const out = { source, types: {} };
for (const t of types) {
  const s = byType[t];
  if (!s) { console.error(`no schema for ${t} in ${dir}`); process.exit(1); }
  const h = {};
  for (const name of ['create', 'read', 'update', 'delete']) {
    if (s.handlers && s.handlers[name]) h[name] = s.handlers[name].permissions || [];
  }
  out.types[t] = { handlers: h };
}
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
