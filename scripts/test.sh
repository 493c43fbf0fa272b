#!/usr/bin/env bash
# Runs berth's whole test suite (with the race detector) and govulncheck on a
# fresh machine, installing what it needs:
# MinIO (built from its Go module, cached), the AWS CLI (Debian package when
# missing) and the npm tools the policy tests compare against. Tests that
# need a server fail instead of skipping (BERTH_REQUIRE_SERVERS=1).
set -euo pipefail
cd "$(dirname "$0")/.."
# go.mod's toolchain line: a machine's own Go (GOTOOLCHAIN=local) ignores it
# and would build with an older, vulnerable standard library.
export GOTOOLCHAIN=go1.27.3

TOOLS="${BERTH_TOOLS_DIR:-$HOME/.cache/berth-tools}"
export BERTH_TOOLS_DIR="$TOOLS"
mkdir -p "$TOOLS/bin"
export PATH="$TOOLS/bin:$PATH"

./scripts/install-tools.sh

export BERTH_REQUIRE_SERVERS=1
log="$(mktemp -t berth-test.XXXXXX)"
trap 'rm -f "$log"' EXIT

echo "== go vet"
go vet ./...

# Reachable known vulnerabilities fail the run; the database is the pinned
# golang.org/x/vulndb module, built by install-tools.sh (no network here).
echo "== govulncheck (offline database: $(cat "$TOOLS/vulndb.version"))"
start=$SECONDS
govulncheck -db "file://$TOOLS/vulndb" ./...
echo "govulncheck: $((SECONDS - start)) s"

echo "== go test"
set +e
go test -race -count=1 -v -timeout 30m ./... >"$log" 2>&1
rc=$?
set -e

grep -E '^(ok|FAIL|---.FAIL|panic:|\?)' "$log" || true
if grep -qE '^\s*--- SKIP' "$log"; then
	echo "tests were skipped; in this suite a skip means a missing server or tool:"
	grep -E '^\s*--- SKIP' -A2 "$log"
	rc=1
fi
if [ "$rc" -ne 0 ]; then
	# Each failed test's own output, from its RUN line to its FAIL line,
	# without the MinIO start-up banners; then the end of the log.
	for name in $(grep -oE '^--- FAIL: [^ ]+' "$log" | awk '{print $3}' | sort -u); do
		echo "== $name"
		awk -v n="$name" '$0 == "=== RUN   " n {p=1} p {print} p && index($0, "--- FAIL: " n " ") == 1 {p=0}' "$log" |
			grep -vE 'minio\.go:[0-9]+: minio .* log:|^\s+(INFO:|MinIO Object|Copyright:|License:|Version:|API:|WebUI:|Docs:|$)' | tail -n 150
	done
	echo "== end of the log"
	tail -n 60 "$log"
	exit "$rc"
fi
passed=$(grep -cE '^\s*--- PASS' "$log" || true)
failed=$(grep -cE '^\s*--- FAIL' "$log" || true)
echo "$passed passed, $failed failed"
