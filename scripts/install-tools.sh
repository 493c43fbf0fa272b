#!/usr/bin/env bash
# Installs the servers and peer tools the tests use into $BERTH_TOOLS_DIR
# (default ~/.cache/berth-tools) and reuses them when present.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${BERTH_TOOLS_DIR:-$HOME/.cache/berth-tools}"
mkdir -p "$TOOLS/bin"

# MinIO: the pinned module version the proxy serves; a cold build takes
# about four minutes, so the binary is kept with its version beside it.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
if [ ! -x "$TOOLS/bin/minio" ] || [ "$(cat "$TOOLS/minio.version" 2>/dev/null)" != "$MINIO_VERSION" ]; then
	echo "installing MinIO $MINIO_VERSION from its Go module (about four minutes cold)"
	# A test server, not shipped: built by the machine's own Go, as it was
	# tested, whatever GOTOOLCHAIN the caller exported.
	(cd "$(mktemp -d)" && GOTOOLCHAIN=local GOBIN="$TOOLS/bin" GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION")
	echo "$MINIO_VERSION" >"$TOOLS/minio.version"
fi

# From here on, the Go release go.mod names on its toolchain line.
export GOTOOLCHAIN=go1.27.3

# govulncheck and its database, offline: the database is built from the
# golang.org/x/vulndb module (OSV files under data/osv) with that module's
# indexdb command, which writes the v1 layout govulncheck reads from file://.
# govulncheck must be built by the Go that builds berth: it type-checks that
# Go's standard library. Pinned versions, rebuilt only when one changes.
VULN_VERSION=v1.9.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018
vuln_stamp="$VULN_VERSION $VULNDB_VERSION $(go env GOVERSION)"
if [ ! -x "$TOOLS/bin/govulncheck" ] || [ ! -f "$TOOLS/vulndb/index/db.json" ] || [ "$(cat "$TOOLS/vulndb.version" 2>/dev/null)" != "$vuln_stamp" ]; then
	echo "installing govulncheck $VULN_VERSION and its database from golang.org/x/vulndb@$VULNDB_VERSION"
	work="$(mktemp -d)"
	(cd "$work" && GOBIN="$TOOLS/bin" GOFLAGS=-mod=mod go install "golang.org/x/vuln/cmd/govulncheck@$VULN_VERSION" &&
		GOBIN="$TOOLS/bin" GOFLAGS=-mod=mod go install "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION")
	osv="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')/data/osv"
	rm -rf "$TOOLS/vulndb.new" "$work"
	"$TOOLS/bin/indexdb" -vulns "$osv" -out "$TOOLS/vulndb.new"
	rm -rf "$TOOLS/vulndb" && mv "$TOOLS/vulndb.new" "$TOOLS/vulndb"
	echo "$vuln_stamp" >"$TOOLS/vulndb.version"
fi

# The AWS CLI, a peer client that must read what berth writes.
# `aws --version` rather than `command -v`: a pyenv shim can exist without
# a working aws behind it.
if ! aws --version >/dev/null 2>&1; then
	echo "installing the AWS CLI (Debian package awscli)"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq awscli >/dev/null
	hash -r
fi

# PostgreSQL for the hub's database tests: the tests start a throw-away
# cluster as an unprivileged user, so only the server programs are needed.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
	echo "installing PostgreSQL (Debian package postgresql)"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

# The independent IAM evaluator the policy simulator is compared with (npm).
bash scripts/iamdata/install-simulate.sh

# Chromium for the web UI's browser tests (chromedp drives it headless).
if [ ! -x /usr/bin/chromium ]; then
	echo "installing Chromium (Debian package chromium)"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# axe-core, the accessibility engine the browser tests run inside Chromium
# on every page (they read axe.min.js from here). Pinned, from npm.
AXE_VERSION=4.14.1
if [ "$(cat "$TOOLS/axe-core.version" 2>/dev/null)" != "$AXE_VERSION" ] || [ ! -f "$TOOLS/axe-core/node_modules/axe-core/axe.min.js" ]; then
	echo "installing axe-core $AXE_VERSION (npm)"
	rm -rf "$TOOLS/axe-core" && mkdir -p "$TOOLS/axe-core"
	npm install --silent --no-audit --no-fund --prefix "$TOOLS/axe-core" "axe-core@$AXE_VERSION" >/dev/null
	echo "$AXE_VERSION" >"$TOOLS/axe-core.version"
fi
