#!/usr/bin/env bash
# install-simulate.sh installs the npm package @cloud-copilot/iam-simulate,
# the independent IAM evaluator berth's differential test compares its own
# simulator with, into $BERTH_TOOLS_NPM (default ~/.cache/berth-tools/npm).
# An existing install of the pinned version is reused. Prints the directory.
set -euo pipefail
version=0.1.173
dir=${BERTH_TOOLS_NPM:-$HOME/.cache/berth-tools/npm}
pkg=$dir/node_modules/@cloud-copilot/iam-simulate/package.json
if [ -f "$pkg" ] && grep -q "\"version\": \"$version\"" "$pkg"; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"private":true}' > "$dir/package.json"
(cd "$dir" && npm install --silent --no-audit --no-fund "@cloud-copilot/iam-simulate@$version" >&2)
echo "$dir"
