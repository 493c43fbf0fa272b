// simulate.cjs runs IAM requests through @cloud-copilot/iam-simulate for
// berth's differential test. stdin: a JSON list of cases
//   {identity: [doc], resource: doc|null, boundary: doc|null,
//    request: {principal, action, resource, resourceAccount, context}}
// stdout: a JSON list of {result: "Allowed"|"ExplicitlyDenied"|
// "ImplicitlyDenied"} or {error: "..."}, one per case, in order.
// Usage: node simulate.cjs NODE_MODULES_DIR < cases.json
'use strict';
const path = require('path');
// Resolve the package as if from its install dir, so its exports map applies.
const { createRequire } = require('module');
const { runSimulation } = createRequire(path.join(process.argv[2], 'berth.cjs'))('@cloud-copilot/iam-simulate');

async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const cases = JSON.parse(input);
  const out = [];
  for (const c of cases) {
    const simulation = {
      identityPolicies: (c.identity || []).map((policy, i) => ({ name: 'identity' + i, policy })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: c.resource || undefined,
      permissionBoundaryPolicies: c.boundary ? [{ name: 'boundary', policy: c.boundary }] : undefined,
      request: {
        principal: c.request.principal,
        action: c.request.action,
        resource: { resource: c.request.resource, accountId: c.request.resourceAccount },
        contextVariables: c.request.context || {},
      },
    };
    try {
      const r = await runSimulation(simulation, {});
      if (r.resultType === 'error') {
        out.push({ error: JSON.stringify(r.errors) });
      } else {
        out.push({ result: r.overallResult });
      }
    } catch (e) {
      out.push({ error: String(e && e.message || e) });
    }
  }
  process.stdout.write(JSON.stringify(out));
}
main().catch((e) => { console.error(e); process.exit(1); });
