package policy

import (
	"fmt"
	"strings"
)

// networkCreates maps each EC2 create action of the network stack to the
// resource type it creates.
var networkCreates = []struct{ action, resource string }{
	{"ec2:CreateVpc", "vpc"},
	{"ec2:CreateSubnet", "subnet"},
	{"ec2:CreateRouteTable", "route-table"},
	{"ec2:CreateSecurityGroup", "security-group"},
	{"ec2:CreateVpcEndpoint", "vpc-endpoint"},
	{"ec2:CreateVpcPeeringConnection", "vpc-peering-connection"},
	{"ec2:CreateVpcEndpointServiceConfiguration", "vpc-endpoint-service"},
}

// networkDescribes are the wildcard-only reads CloudFormation's EC2
// handlers call (cfn/testdata/handlers.json).
var networkDescribes = []string{"ec2:DescribeNetworkAcls", "ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups",
	"ec2:DescribeSubnets", "ec2:DescribeVpcEncryptionControls", "ec2:DescribeVpcEndpointServiceConfigurations",
	"ec2:DescribeVpcEndpoints", "ec2:DescribeVpcPeeringConnections", "ec2:DescribeVpcs",
	"cloudwatch:ListManagedInsightRules"} // the endpoint service's handlers read Contributor Insights rules

// PeeringAccepterRoleName is the accepter role a peer account creates
// with the peering-accepter template.
func PeeringAccepterRoleName(qualifier string) string {
	if qualifier == "" {
		qualifier = DefaultQualifier
	}
	return qualifier + "-peering-accepter"
}

// networkCreateStatements and networkManageStatements are the
// provisioner's permissions for the network stack
// (QUALIFIER-dataplane-network), scoped by the qualifier tag the template
// puts on every taggable resource; they are two managed policies, each well
// under IAM's size limit:
//
//	ec2:Describe* of the handlers                        *                     wildcard-only
//	ec2:CreateVpc, CreateSubnet, ... (one statement each)  the created type    only with request tag berth:qualifier=Q
//	ec2:CreateSubnet, CreateRouteTable, CreateSecurityGroup, CreateVpcEndpoint,
//	  CreateVpcPeeringConnection                         vpc, subnet, route-table, security-group tagged Q   the parents they are created in
//	ec2:CreateTags                                       the created types     only as part of those creates (ec2:CreateAction)
//	ec2:Modify*/Associate*/Route/SecurityGroup rule and Delete* actions   the network types tagged Q   update and delete the stack
//	ec2:CreateTags, DeleteTags                           tagged Q              tag updates; the qualifier key keeps its value
//	sts:AssumeRole                                       role/Q-peering-accepter in any account   PeerRoleArn: accept the peering in the peer's account
//
// The network holds no data, so unlike the buckets and keys its resources
// may be deleted. Resource tags cannot scope a create call's new resource,
// hence the request tag; a create's parent resources must carry the tag,
// so nothing is created in a VPC berth did not create.
func networkCreateStatements(p Params) []Statement {
	q := p.qualifier()
	arn := networkARN(p)
	tagKey := "aws:ResourceTag/" + QualifierTagKey
	out := []Statement{allow("DescribeNetwork", networkDescribes, "*")}
	var createActions []string
	for _, c := range networkCreates {
		s := allow("Create"+sidName(c.resource), []string{c.action}, arn(c.resource))
		s.Condition = Condition{"StringEquals": {"aws:RequestTag/" + QualifierTagKey: {q}}}
		out = append(out, s)
		createActions = append(createActions, strings.TrimPrefix(c.action, "ec2:")) // ec2:CreateAction holds the API name
	}
	parents := allow("CreateInQualifiedNetwork", []string{"ec2:CreateRouteTable", "ec2:CreateSecurityGroup", "ec2:CreateSubnet",
		"ec2:CreateVpcEndpoint", "ec2:CreateVpcPeeringConnection"},
		arn("route-table"), arn("security-group"), arn("subnet"), arn("vpc"))
	parents.Condition = Condition{"StringEquals": {tagKey: {q}}}
	tagOnCreate := allow("TagNetworkOnCreate", []string{"ec2:CreateTags"}, networkCreatedARNs(p)...)
	tagOnCreate.Condition = Condition{"StringEquals": {"ec2:CreateAction": Values(createActions)}}
	return append(out, parents, tagOnCreate)
}

// networkARN returns a function giving the ARN pattern of an EC2 resource
// type in the account and region of p.
func networkARN(p Params) func(res string) string {
	part, reg, acct := p.partition(), p.region(), p.account()
	return func(res string) string { return fmt.Sprintf("arn:%s:ec2:%s:%s:%s/*", part, reg, acct, res) }
}

// networkCreatedARNs are the ARN patterns of the types the network stack creates.
func networkCreatedARNs(p Params) []string {
	arn := networkARN(p)
	var out []string
	for _, c := range networkCreates {
		out = append(out, arn(c.resource))
	}
	return out
}

func networkManageStatements(p Params) []Statement {
	q, part := p.qualifier(), p.partition()
	arn, createdARNs := networkARN(p), networkCreatedARNs(p)
	tagKey := "aws:ResourceTag/" + QualifierTagKey
	manage := allow("ManageQualifiedNetwork", []string{
		"ec2:AssociateRouteTable", "ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress",
		"ec2:CreateRoute", "ec2:DeleteRoute", "ec2:DeleteRouteTable", "ec2:DeleteSecurityGroup", "ec2:DeleteSubnet",
		"ec2:DeleteVpc", "ec2:DeleteVpcEndpointServiceConfigurations", "ec2:DeleteVpcEndpoints", "ec2:DeleteVpcPeeringConnection",
		"ec2:DescribeVpcAttribute", "ec2:DescribeVpcEndpointServicePermissions", "ec2:DisassociateRouteTable",
		"ec2:ModifySubnetAttribute", "ec2:ModifyVpcAttribute", "ec2:ModifyVpcEndpoint", "ec2:ModifyVpcEndpointServiceConfiguration",
		"ec2:ModifyVpcEndpointServicePermissions", "ec2:ReplaceRoute", "ec2:ReplaceRouteTableAssociation",
		"ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress", "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
	}, arn("route-table"), arn("security-group"), arn("subnet"), arn("vpc"), arn("vpc-endpoint"), arn("vpc-endpoint-service"),
		arn("vpc-peering-connection"))
	manage.Condition = Condition{"StringEquals": {tagKey: {q}}}
	// Tag updates may set the qualifier key only to its own value, and
	// never remove it.
	retag := allow("RetagQualifiedNetwork", []string{"ec2:CreateTags"}, createdARNs...)
	retag.Condition = Condition{
		"StringEquals":         {tagKey: {q}},
		"StringEqualsIfExists": {"aws:RequestTag/" + QualifierTagKey: {q}},
	}
	untag := allow("UntagQualifiedNetwork", []string{"ec2:DeleteTags"}, createdARNs...)
	untag.Condition = Condition{
		"StringEquals":                 {tagKey: {q}},
		"ForAllValues:StringNotEquals": {"aws:TagKeys": {QualifierTagKey}},
	}
	assume := allow("AssumePeeringAccepter", []string{"sts:AssumeRole"}, fmt.Sprintf("arn:%s:iam::*:role/%s", part, PeeringAccepterRoleName(q)))
	return []Statement{manage, retag, untag, assume}
}

// opsNetworkStatements let ops run the read handlers of the network
// stack's resources (drift detection).
func opsNetworkStatements(p Params) []Statement {
	q, part, reg, acct := p.qualifier(), p.partition(), p.region(), p.account()
	arn := func(res string) string { return fmt.Sprintf("arn:%s:ec2:%s:%s:%s/*", part, reg, acct, res) }
	tagged := allow("InspectQualifiedNetwork", []string{"ec2:DescribeVpcAttribute", "ec2:DescribeVpcEndpointServicePermissions"},
		arn("vpc"), arn("vpc-endpoint-service"))
	tagged.Condition = Condition{"StringEquals": {"aws:ResourceTag/" + QualifierTagKey: {q}}}
	return []Statement{
		allow("DescribeNetwork", networkDescribes, "*"),
		tagged,
	}
}

// sidName turns "vpc-endpoint-service" into "VpcEndpointService".
func sidName(s string) string {
	out := make([]byte, 0, len(s))
	up := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' {
			up = true
			continue
		}
		if up && c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up = false
		out = append(out, c)
	}
	return string(out)
}
