#!/usr/bin/env bash
# bench/cache.sh - `berth cache save` and `restore` of a tree of many small
# files against what a CI script does without berth: `tar | zstd` and
# `aws s3 cp` up, `aws s3 cp` and `zstd -d | tar -x` down; both against the
# same MinIO on loopback. See bench/README.md ("Cache benchmark").
#
# No root needed. Quick run (64 MiB tree):   bash bench/cache.sh
# The issue's size (1 GiB of 16 KiB files): BENCH_CACHE_MB=1024 bash bench/cache.sh
# The tools' own cost without the disk's (on some VMs creating a file costs
# a millisecond of kernel time, which then dominates every restore):
#   BENCH_TMPDIR=/dev/shm bash bench/cache.sh
# Wall times on a shared machine swing; the CPU column is steadier.
set -euo pipefail
export GOTOOLCHAIN=go1.27.3 # go.mod's toolchain line

TREE_MB=${BENCH_CACHE_MB:-64}         # size of the tree
FILE_KB=${BENCH_CACHE_FILE_KB:-16}    # mean file size (sizes vary from 1 KiB to twice the mean)
REPS=${BENCH_REPS:-3}                 # runs per row; the median is reported
TMP_PARENT=${BENCH_TMPDIR:-/var/tmp}  # disk-backed parent of the work directory
TOOLS_DIR=${BERTH_TOOLS_DIR:-$HOME/.cache/berth-tools}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$REPO/bench/out
LOG=$OUT/cache.log
RAW=$OUT/cache-raw.tsv
RESULTS=$OUT/cache-results.md
BUCKET=berth-cache-bench

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$(date +%T)" "$*" >&2; exit 1; }

MINIO_PID=""
WORK=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	if [[ -n $MINIO_PID ]]; then
		kill "$MINIO_PID" 2>/dev/null
		for _ in {1..50}; do kill -0 "$MINIO_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$MINIO_PID" 2>/dev/null
	fi
	[[ -z $WORK ]] || rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for c in go tar zstd python3 curl ss awk; do
	command -v "$c" >/dev/null || die "$c not found on PATH"
done
[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) is needed for peak RSS: apt-get install time"
MINIO=$TOOLS_DIR/bin/minio
[[ -x $MINIO ]] || die "no MinIO server at $MINIO (scripts/install-tools.sh, or set BERTH_TOOLS_DIR)"
AWS=$(pyenv which aws 2>/dev/null || command -v aws || true)
[[ -n $AWS ]] || die "aws CLI not found"
mkdir -p "$OUT"
: >"$LOG"
: >"$RAW"

# The tree once, its archive twice (berth's and the baseline's) in MinIO and
# as temporary files, and two restored copies.
need=$((TREE_MB * 6 + 512))
avail=$(df -Pm "$TMP_PARENT" | awk 'NR==2 {print $4}')
((avail >= need)) || die "$TMP_PARENT has $avail MiB free, need $need MiB (BENCH_TMPDIR, BENCH_CACHE_MB)"
WORK=$(mktemp -d "$TMP_PARENT/berth-cache-bench.XXXXXX")
mkdir -p "$WORK/bin" "$WORK/minio" "$WORK/aws" "$WORK/xdg" "$WORK/tmp"
cd "$WORK" # no ./berth.yaml of the caller

say "building berth from $REPO"
BERTH=$WORK/bin/berth
(cd "$REPO" && go build -o "$BERTH" ./cmd/berth) >>"$LOG" 2>&1 || die "berth build failed, see $LOG"
COMMIT=$(git -c safe.directory="$REPO" -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)

unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL BERTH_CONFIG BERTH_STORES BERTH_PREFIX
export AWS_ACCESS_KEY_ID=benchadmin AWS_SECRET_ACCESS_KEY="bench-$RANDOM$RANDOM$RANDOM" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=$WORK/aws/config AWS_SHARED_CREDENTIALS_FILE=$WORK/aws/credentials AWS_EC2_METADATA_DISABLED=true
export XDG_CONFIG_HOME=$WORK/xdg XDG_DATA_HOME=$WORK/xdg TMPDIR=$WORK/tmp
: >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"

# ------------------------------------------------------------- MinIO ----
port=9400
while ss -Hltn "( sport = :$port or sport = :$((port + 1)) )" | grep -q .; do port=$((port + 2)); done
MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY MINIO_SITE_REGION=us-east-1 MINIO_BROWSER=off \
	"$MINIO" server "$WORK/minio" --address "127.0.0.1:$port" --console-address "127.0.0.1:$((port + 1))" >>"$LOG" 2>&1 &
MINIO_PID=$!
ENDPOINT=http://127.0.0.1:$port
for _ in {1..150}; do
	curl -sf -o /dev/null "$ENDPOINT/minio/health/live" && break
	kill -0 "$MINIO_PID" 2>/dev/null || die "MinIO exited; see $LOG"
	sleep 0.2
done
curl -sf -o /dev/null "$ENDPOINT/minio/health/live" || die "MinIO did not come up"
"$AWS" --endpoint-url "$ENDPOINT" s3 mb "s3://$BUCKET" >>"$LOG" 2>&1 || die "could not create the bucket, see $LOG"
STORE="lo=s3://$BUCKET?region=us-east-1&endpoint=$ENDPOINT&path_style=true"
say "MinIO up on $ENDPOINT (data on $TMP_PARENT)"

# -------------------------------------------------------------- tree ----
# Files of 1 KiB to twice the mean, in directories of 256, each half
# random bytes and half repeated text: roughly what a build cache holds
# (object files, generated code), compressing to about half.
say "writing a $TREE_MB MiB tree of ~$FILE_KB KiB files"
python3 - "$WORK/tree" "$TREE_MB" "$FILE_KB" <<'PY'
import os, random, sys
root, total, mean = sys.argv[1], int(sys.argv[2]) << 20, int(sys.argv[3]) << 10
rng = random.Random(1)
text = b"func handler(ctx context.Context, req *Request) (*Response, error) {\n" * 64
n = written = 0
while written < total:
    size = min(rng.randint(1024, 2 * mean), total - written)
    d = os.path.join(root, "d%03d" % (n // 256))
    if n % 256 == 0:
        os.makedirs(d)
    half = size // 2
    with open(os.path.join(d, "f%05d.o" % n), "wb") as f:
        f.write(os.urandom(half))
        f.write((text * (size // len(text) + 1))[: size - half])
    n += 1
    written += size
print(n, file=sys.stderr)
PY
FILES=$(find "$WORK/tree" -type f | wc -l)
say "$FILES files; flushing them to disk"
sync # or the first run competes with the tree's writeback

# measure LABEL REP CMD...: wall seconds, peak RSS KiB and CPU seconds of CMD
# (and its children, for the pipelines) into RAW.
measure() {
	local label=$1 rep=$2
	shift 2
	if /usr/bin/time -f '%e %M %U %S' -o "$WORK/time" "$@" >>"$LOG" 2>&1; then
		awk -v l="$label" -v r="$rep" '{printf "%s\t%s\t%s\t%.2f\t%s\n", l, $1, $2, $3 + $4, r}' "$WORK/time" >>"$RAW"
	else
		printf '%s\tFAIL\t\t\t%s\n' "$label" "$rep" >>"$RAW"
		say "$label failed, see $LOG"
	fi
}

base_save() { # base_save KEY: what a CI script does without berth
	tar -C "$WORK" -cf - tree | zstd -q -3 -T0 -o "$WORK/base.tar.zst" &&
		"$AWS" --endpoint-url "$ENDPOINT" s3 cp --only-show-errors "$WORK/base.tar.zst" "s3://$BUCKET/base/$1.tar.zst" &&
		rm -f "$WORK/base.tar.zst"
}
base_restore() { # base_restore KEY DIR
	mkdir -p "$2" &&
		"$AWS" --endpoint-url "$ENDPOINT" s3 cp --only-show-errors "s3://$BUCKET/base/$1.tar.zst" "$WORK/base-dl.tar.zst" &&
		zstd -q -d -c "$WORK/base-dl.tar.zst" | tar -C "$2" -xf - &&
		rm -f "$WORK/base-dl.tar.zst"
}
export -f base_save base_restore
export WORK AWS ENDPOINT BUCKET

save_berth() { measure save.berth "$1" "$BERTH" cache save -q --store "$STORE" "bench-$1" tree; }
save_base() { measure save.base "$1" bash -c "base_save bench-$1"; }
restore_berth() { measure restore.berth "$1" "$BERTH" cache restore -q --store "$STORE" "bench-$1" --dir "$WORK/out-berth"; }
restore_base() { measure restore.base "$1" bash -c "base_restore bench-$1 $WORK/out-base"; }
for rep in $(seq "$REPS"); do
	say "run $rep of $REPS"
	# A new key each run: a save of an existing key is a no-op. The order
	# alternates, so neither tool always runs first; sync (untimed) keeps
	# one tool's writeback out of the other's time.
	rm -rf "$WORK/out-berth" "$WORK/out-base"
	sync
	if ((rep % 2)); then
		save_berth "$rep"; sync; save_base "$rep"; sync
		restore_berth "$rep"; sync; restore_base "$rep"
	else
		save_base "$rep"; sync; save_berth "$rep"; sync
		restore_base "$rep"; sync; restore_berth "$rep"
	fi
done
diff -r "$WORK/tree" "$WORK/out-berth/tree" >/dev/null || die "berth's restored tree differs from the original"
diff -r "$WORK/tree" "$WORK/out-base/tree" >/dev/null || die "the baseline's restored tree differs from the original"

berth_bytes=$("$AWS" --endpoint-url "$ENDPOINT" s3 ls --recursive "s3://$BUCKET/_cache/data/bench-1/" | awk '{s += $3} END {print s + 0}')
base_bytes=$("$AWS" --endpoint-url "$ENDPOINT" s3 ls "s3://$BUCKET/base/bench-1.tar.zst" | awk '{s += $3} END {print s + 0}')

# -------------------------------------------------------------- report ----
med() { # med LABEL FIELD
	awk -F'\t' -v l="$1" -v f="$2" '$1 == l && $2 != "FAIL" {a[++n] = $f + 0}
		END { if (!n) exit
			for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
			print (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }' "$RAW"
}
# ratio A B: median over runs of B's time / A's time (runs side by side),
# as bench/run.sh reports its ratios.
ratio() {
	awk -F'\t' -v a="$1" -v b="$2" '$2 != "FAIL" && ($1 == a || $1 == b) { t[$1, $5] = $2; reps[$5] = 1 }
		END { for (r in reps) if ((a, r) in t && (b, r) in t && t[a, r] > 0) x[++n] = t[b, r] / t[a, r]
			if (!n) { print "n/a"; exit }
			for (i = 2; i <= n; i++) { v = x[i]; for (j = i - 1; j > 0 && x[j] > v; j--) x[j + 1] = x[j]; x[j + 1] = v }
			printf "%.2f×", (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2 }' "$RAW"
}
cell() { # cell LABEL: "3.10 s · 20.6 MiB/s · 45 MiB RSS · 4.1 s CPU"
	local s; s=$(med "$1" 2)
	[[ -n $s ]] || { echo FAILED; return; }
	awk -v s="$s" -v mb="$TREE_MB" -v k="$(med "$1" 3)" -v c="$(med "$1" 4)" \
		'BEGIN {printf "%.2f s · %.1f MiB/s · %.0f MiB RSS · %.1f s CPU", s, mb / s, k / 1024, c}'
}
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }

{
	echo "# berth cache benchmark"
	echo
	echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), berth $COMMIT, $(nproc) CPUs, tree of $TREE_MB MiB in $FILES files (mean $FILE_KB KiB), median of $REPS runs"
	echo "- one MinIO on 127.0.0.1, data on $TMP_PARENT; page cache warm (no root to drop it); baseline: tar | zstd -3 -T0, aws s3 cp ($("$AWS" --version 2>&1 | cut -d' ' -f1))"
	echo "- archive: berth $(mib "$berth_bytes"), baseline $(mib "$base_bytes"); wall time, tree MiB/s, peak RSS, CPU (user + sys, children included)"
	echo
	echo "| row | berth cache | tar + zstd + aws s3 cp | berth speed ÷ baseline |"
	echo "|---|---|---|---|"
	echo "| save | $(cell save.berth) | $(cell save.base) | $(ratio save.berth save.base) |"
	echo "| restore | $(cell restore.berth) | $(cell restore.base) | $(ratio restore.berth restore.base) |"
	echo
	echo "berth's save also hashes the archive (SHA-256) and commits a create-only entry; its restore verifies the hash before unpacking and refuses entries that would leave the target directory."
	echo "Raw runs: bench/out/cache-raw.tsv (label, s, peak RSS KiB, CPU s, run)."
} >"$RESULTS"
cat "$RESULTS"
