#!/usr/bin/env bash
# bench/run.sh - throughput and memory of berth against `aws s3 cp` and s5cmd.
#
# Every row of the table is measured in this one run, on the same MinIO
# servers: a loopback section (one MinIO on 127.0.0.1), a shaped-link
# section (three MinIO "regions" in a network namespace whose loopback is
# rate-limited per region with tc htb) and peak-RSS rows. See bench/README.md.
#
# Needs root: network namespace, tc, drop_caches and a tmpfs mount.
#   sudo env "PATH=$PATH" bash bench/run.sh
set -euo pipefail
export GOTOOLCHAIN=go1.27.3 # go.mod's toolchain line; see README

# ---------------------------------------------------------------- knobs ----
SIZE_MB=${BENCH_SIZE_MB:-1024}          # main test file
BIG_MB=${BENCH_BIG_MB:-5120}            # memory row only
SKIP_BIG=${BENCH_SKIP_5G:-0}
SKIP_SHAPED=${BENCH_SKIP_SHAPED:-0}
RATE=${BENCH_RATE:-400mbit}             # per region and per direction
REPS=${BENCH_REPS:-3}                   # loopback runs per row (the median is reported)
SHAPED_REPS=${BENCH_SHAPED_REPS:-2}     # shaped runs per row (the median is reported)
COMPARE=${BENCH_SHAPED_COMPARE:-1}      # 3 sequential uploads with aws and s5cmd too
# berth --part-size:--concurrency variants tried on loopback; empty disables.
SWEEP=${BENCH_SWEEP-8MiB:8 16MiB:4 16MiB:8 32MiB:4 50MiB:5}
# Other sessions may be compiling on the same two cores; a higher priority
# for the servers and clients under test keeps that noise down.
NICE=${BENCH_NICE:--10}
TMP_PARENT=${BENCH_TMPDIR:-/var/tmp}
# A git ref (e.g. main) of berth to measure beside this checkout on loopback,
# as the tool "base", in the same repetitions; empty: none.
BASELINE=${BENCH_BASELINE:-}
TOOLS_DIR=${BERTH_TOOLS_DIR:-$HOME/.cache/berth-tools}
S5CMD_VERSION=v2.3.0

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$REPO/bench/out
LOG=$OUT/bench.log        # everything the tools print
RAW=$OUT/raw.tsv          # one line per measured run
RESULTS=$OUT/results.md

BUCKET=berth-bench
PROJECT=app

say()  { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "$(date +%T)" "$*" >&2; }
die()  { printf '[%s] ERROR: %s\n' "$(date +%T)" "$*" >&2; exit 1; }

# ------------------------------------------------------------- cleanup ----
# Everything the run creates is registered here so the trap can undo it, on
# success, on failure and on Ctrl-C alike.
PIDS=()          # MinIO servers we started
NS=""            # network namespace, once created
MEM=""           # tmpfs mount point, once mounted
WORK=""          # temp dir on disk
AUTOGROUP_OLD="" # session priority to restore

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	local p alive
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	if [[ -n $NS ]]; then
		# Anything else still running in our namespace was started by us.
		for p in $(ip netns pids "$NS" 2>/dev/null); do kill "$p" 2>/dev/null; done
	fi
	for _ in {1..50}; do
		alive=0
		for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	[[ -z $NS ]] || ip netns del "$NS" 2>/dev/null
	[[ -z $AUTOGROUP_OLD ]] || echo "$AUTOGROUP_OLD" >"/proc/$$/autogroup" 2>/dev/null
	if [[ -n $MEM ]]; then umount "$MEM" 2>/dev/null || umount -l "$MEM" 2>/dev/null; fi
	[[ -z $WORK ]] || rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --------------------------------------------------------------- checks ----
[[ $(id -u) == 0 ]] || die "run as root (network namespace, tc, drop_caches, tmpfs): sudo env \"PATH=\$PATH\" bash bench/run.sh"
for c in go ip tc curl ss awk; do
	command -v "$c" >/dev/null || die "$c not found on PATH (under sudo, pass PATH: sudo env \"PATH=\$PATH\" ...)"
done
mkdir -p "$OUT" "$TOOLS_DIR/bin"
: >"$LOG"
: >"$RAW"
START=$(date +%s)

# With autogroup scheduling (on by default in most kernels) a nice value only
# weighs against processes of the same session, not against the builds and
# tests of other sessions; so the whole session of this script gets the
# priority for the duration of the run, and gets its old one back after.
if [[ $NICE != 0 && -w /proc/$$/autogroup ]]; then
	old=$(awk '{print $NF}' "/proc/$$/autogroup")
	if echo "$NICE" >"/proc/$$/autogroup" 2>/dev/null; then AUTOGROUP_OLD=$old; fi
fi
HZ=$(getconf CLK_TCK)

# ---------------------------------------------------------------- tools ----
if [[ ! -x /usr/bin/time ]]; then
	say "installing GNU time for peak RSS"
	apt-get install -y time >>"$LOG" 2>&1 || { apt-get update >>"$LOG" 2>&1 && apt-get install -y time >>"$LOG" 2>&1; }
fi

MINIO=$TOOLS_DIR/bin/minio
[[ -x $MINIO ]] || die "no MinIO server at $MINIO (put a minio binary there or set BERTH_TOOLS_DIR)"

S5CMD=$TOOLS_DIR/bin/s5cmd
if [[ ! -x $S5CMD ]]; then
	# The module proxy refuses `go install ...@v2.3.0` for s5cmd (its go.mod
	# has replace directives), but building it from a scratch module works.
	say "building s5cmd $S5CMD_VERSION into $S5CMD"
	scratch=$(mktemp -d)
	(cd "$scratch" && go mod init scratch && go get "github.com/peak/s5cmd/v2@$S5CMD_VERSION" &&
		go build -o "$S5CMD" github.com/peak/s5cmd/v2) >>"$LOG" 2>&1 || { rm -rf "$scratch"; die "s5cmd build failed, see $LOG"; }
	rm -rf "$scratch"
fi

# The pyenv shim adds a bash + pyenv start-up to every call; time the real
# aws script instead.
AWS=$(pyenv which aws 2>/dev/null || command -v aws || true)
[[ -n $AWS ]] || die "aws CLI not found"

# ------------------------------------------------------------ work dirs ----
# Test files and disk downloads live on disk; MinIO's data lives on tmpfs
# (see README: this VM's disk writes at ~150 MB/s and would otherwise be what
# every upload row measures).
[[ $SKIP_BIG == 1 ]] && big_disk=0 || big_disk=$((2 * BIG_MB))
need_disk=$((2 * SIZE_MB + big_disk + 1024))
avail_disk=$(df -Pm "$TMP_PARENT" | awk 'NR==2 {print $4}')
((avail_disk >= need_disk)) || die "$TMP_PARENT has $avail_disk MiB free, need $need_disk MiB (BENCH_TMPDIR, BENCH_SIZE_MB, BENCH_SKIP_5G=1)"
[[ $(df -Pm "$TMP_PARENT" | awk 'NR==2 {print $1}') != tmpfs ]] || die "$TMP_PARENT is tmpfs; point BENCH_TMPDIR at a disk-backed directory"

WORK=$(mktemp -d "$TMP_PARENT/berth-bench.XXXXXX")
mkdir -p "$WORK/bin" "$WORK/dl" "$WORK/aws" "$WORK/xdg"
cd "$WORK" # so that no ./berth.yaml of the caller is picked up

[[ $SKIP_BIG == 1 ]] && big_mem=0 || big_mem=$BIG_MB
# At most: one object per tool plus a download, or the big object; the rest
# is room for MinIO's bookkeeping. A tmpfs only uses what it holds.
mem_cap=$(( (4 * SIZE_MB > big_mem ? 4 * SIZE_MB : big_mem) + 2048 ))
avail_mem=$(awk '/^MemAvailable:/ {print int($2/1024)}' /proc/meminfo)
((avail_mem >= mem_cap + 2048)) || die "need ~$((mem_cap + 2048)) MiB of free memory for the MinIO tmpfs, have $avail_mem"
mkdir -p "$WORK/mem"
mount -t tmpfs -o "size=${mem_cap}m,mode=0700" berth-bench "$WORK/mem"
MEM=$WORK/mem
mkdir -p "$MEM/dl"

say "building berth from $REPO"
BERTH=$WORK/bin/berth
(cd "$REPO" && go build -o "$BERTH" ./cmd/berth) >>"$LOG" 2>&1 || die "berth build failed, see $LOG"
COMMIT=$(git -c safe.directory="$REPO" -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git -c safe.directory="$REPO" -C "$REPO" status --porcelain 2>/dev/null) ]] || COMMIT="$COMMIT + uncommitted changes"
BERTH_BASE=""
if [[ -n $BASELINE ]]; then
	say "building berth $BASELINE as the baseline"
	BASE_COMMIT=$(git -c safe.directory="$REPO" -C "$REPO" rev-parse --short "$BASELINE") || die "no git ref $BASELINE"
	mkdir -p "$WORK/base-src"
	git -c safe.directory="$REPO" -C "$REPO" archive "$BASELINE" | tar -x -C "$WORK/base-src"
	BERTH_BASE=$WORK/bin/berth-base
	(cd "$WORK/base-src" && go build -o "$BERTH_BASE" ./cmd/berth) >>"$LOG" 2>&1 || die "baseline build failed, see $LOG"
fi

# A clean, private client environment: only our credentials, no profile or
# config of the caller that could change part sizes or endpoints.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL
unset BERTH_CONFIG BERTH_STORES BERTH_PREFIX BERTH_POINTERS BERTH_PART_SIZE BERTH_CONCURRENCY BERTH_OUTPUT
export AWS_ACCESS_KEY_ID=benchadmin AWS_SECRET_ACCESS_KEY="bench-$RANDOM$RANDOM$RANDOM"
export AWS_CONFIG_FILE=$WORK/aws/config AWS_SHARED_CREDENTIALS_FILE=$WORK/aws/credentials AWS_EC2_METADATA_DISABLED=true
export XDG_CONFIG_HOME=$WORK/xdg XDG_DATA_HOME=$WORK/xdg
: >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"

# --------------------------------------------------------- test files ----
# AES-CTR of zeros: incompressible and far faster than /dev/urandom here.
make_file() { # make_file PATH MiB
	local path=$1 mb=$2
	if command -v openssl >/dev/null; then
		# openssl dies of SIGPIPE when head has enough; that is expected.
		(openssl enc -aes-256-ctr -nosalt -pbkdf2 -pass "pass:$RANDOM$RANDOM$RANDOM" </dev/zero 2>/dev/null || true) |
			head -c "$((mb << 20))" >"$path"
	else
		head -c "$((mb << 20))" /dev/urandom >"$path"
	fi
	[[ $(stat -c %s "$path") == $((mb << 20)) ]] || die "could not write $path"
}

hsize() { (($1 % 1024 == 0)) && echo "$(($1 / 1024)) GiB" || echo "$1 MiB"; }

FILE=$WORK/test-$SIZE_MB.bin
say "writing $(hsize "$SIZE_MB") of random data to $FILE"
make_file "$FILE" "$SIZE_MB"

# ------------------------------------------------------------ servers ----
declare -A SRV_PORT SRV_REGION SRV_NS SRV_PID

free_port() { # first port P from $1 up with P and P+1 (console) unused on the host
	local p=$1
	while ss -Hltn "( sport = :$p or sport = :$((p + 1)) )" | grep -q .; do p=$((p + 2)); done
	echo "$p"
}

# start_minio NAME REGION PORT NETNS: a MinIO with its data on the tmpfs.
start_minio() {
	local name=$1 region=$2 port=$3 ns=$4 pre=() pid
	[[ -z $ns ]] || pre=(ip netns exec "$ns")
	mkdir -p "$MEM/minio-$name"
	"${pre[@]}" env MINIO_ROOT_USER="$AWS_ACCESS_KEY_ID" MINIO_ROOT_PASSWORD="$AWS_SECRET_ACCESS_KEY" \
		MINIO_SITE_REGION="$region" MINIO_BROWSER=off \
		nice -n "$NICE" "$MINIO" server "$MEM/minio-$name" \
		--address "127.0.0.1:$port" --console-address "127.0.0.1:$((port + 1))" \
		>"$OUT/minio-$name.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	SRV_PORT[$name]=$port SRV_REGION[$name]=$region SRV_NS[$name]=$ns SRV_PID[$name]=$pid
	for _ in {1..150}; do
		"${pre[@]}" curl -sf -o /dev/null "http://127.0.0.1:$port/minio/health/live" && break
		kill -0 "$pid" 2>/dev/null || die "MinIO $name exited; see $OUT/minio-$name.log"
		sleep 0.2
	done
	"${pre[@]}" curl -sf -o /dev/null "http://127.0.0.1:$port/minio/health/live" || die "MinIO $name did not come up"
	pfx "$name"
	"${PFX[@]}" env AWS_REGION="$region" "$S5CMD" --endpoint-url "$(endpoint "$name")" mb "s3://$BUCKET" >>"$LOG" 2>&1 ||
		die "could not create bucket on $name"
	say "MinIO $name ($region) up on 127.0.0.1:$port${ns:+ in netns $ns}"
}

stop_minio() {
	local name=$1 pid=${SRV_PID[$1]}
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -rf "${MEM:?}/minio-$name"
	unset "SRV_PID[$name]"
}

endpoint() { echo "http://127.0.0.1:${SRV_PORT[$1]}"; }
store() { echo "$1=s3://$BUCKET?region=${SRV_REGION[$1]}&endpoint=$(endpoint "$1")&path_style=true"; }

# pfx NAME sets PFX to the command prefix for clients of server NAME: its
# namespace (if any) and our priority. ip netns exec, env and nice all exec,
# so /usr/bin/time still sees the client's own RSS and CPU time.
pfx() {
	PFX=()
	[[ -z ${SRV_NS[$1]} ]] || PFX=(ip netns exec "${SRV_NS[$1]}")
	PFX+=(nice -n "$NICE")
}

# rm_objects NAME PATTERN: untimed housekeeping between runs. MinIO moves
# deleted and overwritten objects to .minio.sys/tmp/.trash and frees them
# only later; on a tmpfs that fills memory within a few runs, so empty it.
rm_objects() {
	pfx "$1"
	"${PFX[@]}" env AWS_REGION="${SRV_REGION[$1]}" "$S5CMD" --endpoint-url "$(endpoint "$1")" rm "s3://$BUCKET/$2" >>"$LOG" 2>&1 || true
	rm -rf "${MEM:?}/minio-$1/.minio.sys/tmp/.trash/"*
}

# ---------------------------------------------------------- measuring ----
CACHE_NOTE="page cache dropped before every run (sync; echo 3 > /proc/sys/vm/drop_caches)"
drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || CACHE_NOTE="page cache could NOT be dropped (no permission): uploads may read the file from RAM"
}

server_ticks() { # CPU ticks used so far by all running MinIO servers
	local p t=0
	for p in "${SRV_PID[@]}"; do
		[[ -r /proc/$p/stat ]] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$t"
}
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }

# measure LABEL [--sync FILE] CMD...
# Runs CMD once with a cold page cache under /usr/bin/time and appends to RAW:
# label, wall seconds, peak RSS KiB, client CPU s, MinIO CPU s, CPU s used by
# everything else on the machine meanwhile (approx.), 1-min load average,
# client user s, client sys s, repetition ($REP: runs of different tools in
# the same repetition ran side by side, so their ratio is one sample).
# With --sync, `sync FILE` runs after CMD and counts towards the wall time.
# A failing run is recorded as FAIL and the benchmark goes on.
measure() {
	local label=$1 syncfile="" rss usr sys t0 t1 s0 s1 b0 b1
	shift
	if [[ $1 == --sync ]]; then syncfile=$2; shift 2; fi
	drop_caches
	echo "### $label: $*" >>"$LOG"
	s0=$(server_ticks) b0=$(busy_ticks) t0=$(date +%s%N)
	if /usr/bin/time -o "$WORK/time.out" -f '%M %U %S' "$@" >>"$LOG" 2>&1 &&
		{ [[ -z $syncfile ]] || sync "$syncfile"; }; then
		t1=$(date +%s%N) s1=$(server_ticks) b1=$(busy_ticks)
		read -r rss usr sys < <(tail -n1 "$WORK/time.out")
		awk -v l="$label" -v ms=$(((t1 - t0) / 1000000)) -v rss="$rss" -v usr="$usr" -v sys="$sys" \
			-v srv=$((s1 - s0)) -v busy=$((b1 - b0)) -v hz="$HZ" -v load="$(cut -d' ' -f1 /proc/loadavg)" -v rep="$REP" 'BEGIN {
				cpu = usr + sys; other = busy / hz - cpu - srv / hz; if (other < 0) other = 0
				printf "%s\t%.3f\t%d\t%.2f\t%.2f\t%.2f\t%s\t%.2f\t%.2f\t%d\n", l, ms / 1000, rss, cpu, srv / hz, other, load, usr, sys, rep }' | tee -a "$RAW" |
			awk -F'\t' '{printf "    %-26s %8.2f s  rss %4d MiB  cpu %5.2f s  minio %5.2f s  others %5.2f s\n", $1, $2, $3 / 1024, $4, $5, $6}' >&2
	else
		printf '%s\tFAIL\n' "$label" >>"$RAW"
		warn "$label failed; last lines of $LOG:"
		tail -n 5 "$LOG" >&2
	fi
}

# record_sum LABEL N: one RAW line adding up the last N runs (sequential legs).
record_sum() {
	local legs
	legs=$(tail -n "$2" "$RAW")
	awk -F'\t' -v l="$1" -v n="$2" '
		$2 == "FAIL" { bad = 1 }
		{ s += $2; if ($3 > r) r = $3; c += $4; v += $5; o += $6; ld = $7; u += $8; y += $9; rp = $10 }
		END { if (bad || NR < n) print l "\tFAIL"; else printf "%s\t%.3f\t%d\t%.2f\t%.2f\t%.2f\t%s\t%.2f\t%.2f\t%d\n", l, s, r, c, v, o, ld, u, y, rp }' <<<"$legs" >>"$RAW"
}

REP=0 # repetition of the current measured run, for paired ratios
VER_N=0
next_version() { VER_N=$((VER_N + 1)); VER="1.0.$VER_N"; }
declare -A LAST_VER # tool.server -> last version staged there by berth or base

# bin_of berth|base: the binary; proj_of: its project, so that the two do
# not delete each other's objects.
bin_of() { [[ $1 == base ]] && echo "$BERTH_BASE" || echo "$BERTH"; }
proj_of() { [[ $1 == base ]] && echo "$PROJECT-base" || echo "$PROJECT"; }

# upload TOOL SERVER LABEL [berth flags...]: one measured upload of FILE.
upload() {
	local tool=$1 srv=$2 label=$3
	shift 3
	# Every tool starts from an empty key: the tmpfs then holds one copy per
	# tool, and no upload pays for replacing an object.
	case $tool in
	berth | base) rm_objects "$srv" "$(proj_of "$tool")/*" ;;
	*) rm_objects "$srv" "$tool/*" ;;
	esac
	pfx "$srv"
	case $tool in
	berth | base)
		next_version
		measure "$label" "${PFX[@]}" "$(bin_of "$tool")" stage -q "$@" --store "$(store "$srv")" "$(proj_of "$tool")" "$VER" "$FILE"
		LAST_VER[$tool.$srv]=$VER
		;;
	aws)
		measure "$label" "${PFX[@]}" "$AWS" --endpoint-url "$(endpoint "$srv")" --region "${SRV_REGION[$srv]}" \
			s3 cp --only-show-errors --no-progress "$FILE" "s3://$BUCKET/aws/obj"
		;;
	s5cmd)
		measure "$label" "${PFX[@]}" env AWS_REGION="${SRV_REGION[$srv]}" "$S5CMD" --endpoint-url "$(endpoint "$srv")" \
			cp "$FILE" "s3://$BUCKET/s5cmd/obj"
		;;
	esac
}

# download TOOL SERVER LABEL DEST [--sync] [berth flags...]: one measured
# download of what TOOL uploaded last to SERVER.
download() {
	local tool=$1 srv=$2 label=$3 dest=$4 sync=()
	shift 4
	if [[ ${1:-} == --sync ]]; then sync=(--sync "$dest"); shift; fi
	rm -f "$dest"
	pfx "$srv"
	case $tool in
	berth | base)
		measure "$label" "${sync[@]}" "${PFX[@]}" "$(bin_of "$tool")" download -q "$@" --store "$(store "$srv")" \
			"$(proj_of "$tool")" "${LAST_VER[$tool.$srv]}" -o "$dest"
		;;
	aws)
		measure "$label" "${sync[@]}" "${PFX[@]}" "$AWS" --endpoint-url "$(endpoint "$srv")" --region "${SRV_REGION[$srv]}" \
			s3 cp --only-show-errors --no-progress "s3://$BUCKET/aws/obj" "$dest"
		;;
	s5cmd)
		measure "$label" "${sync[@]}" "${PFX[@]}" env AWS_REGION="${SRV_REGION[$srv]}" "$S5CMD" --endpoint-url "$(endpoint "$srv")" \
			cp "s3://$BUCKET/s5cmd/obj" "$dest"
		;;
	esac
	rm -f "$dest"
}

TOOLS=(berth aws s5cmd)
LO_TOOLS=("${TOOLS[@]}")
[[ -z $BERTH_BASE ]] || LO_TOOLS=(berth base aws s5cmd)

# ------------------------------------------------------------ loopback ----
say "== loopback: one MinIO on 127.0.0.1, $(hsize "$SIZE_MB"), $REPS runs per row"
start_minio lo us-east-1 "$(free_port 19100)" ""

# Tools alternate within each repetition so that drift in the background
# load spreads over all of them.
for REP in $(seq "$REPS"); do
	for t in "${LO_TOOLS[@]}"; do upload "$t" lo "lo.up.$t"; done
done
for REP in $(seq "$REPS"); do
	for t in "${LO_TOOLS[@]}"; do download "$t" lo "lo.dn_mem.$t" "$MEM/dl/obj"; done
done
for REP in $(seq "$REPS"); do
	# berth fsyncs the file before renaming it into place; the others do not,
	# so `sync FILE` after them makes all three pay for a durable file.
	for t in "${LO_TOOLS[@]}"; do download "$t" lo "lo.dn_disk.$t" "$WORK/dl/obj" --sync; done
done

if [[ -n $SWEEP ]]; then
	say "== loopback: berth --part-size:--concurrency variants: $SWEEP"
	for REP in $(seq "$REPS"); do
		for v in $SWEEP; do upload berth lo "sw.up.$v" --part-size "${v%:*}" --concurrency "${v#*:}"; done
	done
	for REP in $(seq "$REPS"); do
		for v in $SWEEP; do download berth lo "sw.dn.$v" "$MEM/dl/obj" --part-size "${v%:*}" --concurrency "${v#*:}"; done
	done
fi
rm_objects lo "*"

if [[ $SKIP_BIG != 1 ]]; then
	say "== memory: berth with $(hsize "$BIG_MB") (one run each)"
	BIGFILE=$WORK/test-$BIG_MB.bin
	make_file "$BIGFILE" "$BIG_MB"
	pfx lo
	next_version
	measure mem.up.big.berth "${PFX[@]}" "$BERTH" stage -q --store "$(store lo)" "$PROJECT" "$VER" "$BIGFILE"
	rm -f "$BIGFILE" # frees the disk for the download
	measure mem.dn.big.berth "${PFX[@]}" "$BERTH" download -q --store "$(store lo)" "$PROJECT" "$VER" -o "$WORK/dl/big"
	rm -f "$WORK/dl/big"
	rm_objects lo "*"
fi
stop_minio lo # its idle CPU should not take from the shaped runs

# ------------------------------------------------------------- shaped ----
rate_bits() { # 400mbit -> 400000000 (tc units are decimal)
	local r=${1,,}
	[[ $r =~ ^([0-9]+(\.[0-9]+)?)(bit|kbit|mbit|gbit)$ ]] || die "BENCH_RATE=$1: use a tc rate such as 400mbit"
	awk -v n="${BASH_REMATCH[1]}" -v u="${BASH_REMATCH[3]}" 'BEGIN {
		m = (u == "kbit") ? 1e3 : (u == "mbit") ? 1e6 : (u == "gbit") ? 1e9 : 1; printf "%.0f", n * m }'
}
LINK_MIBS=$(awk -v b="$(rate_bits "$RATE")" 'BEGIN {print b / 8 / 1048576}')

class_bytes() { # bytes sent so far through htb class $1 in the namespace
	ip netns exec "$NS" tc -s class show dev lo classid "$1" | awk '/Sent/ {print $2; exit}'
}

REGIONS=(us-east-1 eu-west-1 ap-southeast-2)
if [[ $SKIP_SHAPED != 1 ]]; then
	say "== shaped: 3 MinIO regions in a network namespace, $RATE per region and direction"
	NS=berthbench$$
	ip netns add "$NS"
	ip -n "$NS" link set lo up
	# One htb class per region port and direction, attached straight to the
	# root so that no class can borrow from another: every region gets its own
	# full-duplex link. Unmatched traffic goes out unshaped (no default class).
	# Bursts and quanta are sized for lo's 64 KiB packets.
	ip netns exec "$NS" tc qdisc add dev lo root handle 1: htb
	for i in 1 2 3; do
		port=$((9000 + 10 * i))
		for dir in 1 2; do # 1x: to the server (upload), 2x: from it (download)
			ip netns exec "$NS" tc class add dev lo parent 1: classid "1:$dir$i" htb \
				rate "$RATE" ceil "$RATE" burst 256k cburst 256k quantum 65536
		done
		ip netns exec "$NS" tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip dport "$port" 0xffff flowid "1:1$i"
		ip netns exec "$NS" tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport "$port" 0xffff flowid "1:2$i"
		start_minio "r$i" "${REGIONS[$((i - 1))]}" "$port" "$NS"
	done

	# Prove the shaping before trusting any row: a probe must go through the
	# right class at close to the configured rate, in both directions.
	PROBE_MB=$((SIZE_MB < 128 ? SIZE_MB : 128))
	head -c "$((PROBE_MB << 20))" "$FILE" >"$WORK/probe.bin"
	pfx r1
	up0=$(class_bytes 1:11) dn0=$(class_bytes 1:21)
	measure ns.check.up "${PFX[@]}" env AWS_REGION=us-east-1 "$S5CMD" --endpoint-url "$(endpoint r1)" cp "$WORK/probe.bin" "s3://$BUCKET/probe"
	measure ns.check.dn "${PFX[@]}" env AWS_REGION=us-east-1 "$S5CMD" --endpoint-url "$(endpoint r1)" cp "s3://$BUCKET/probe" "$MEM/dl/probe"
	up1=$(class_bytes 1:11) dn1=$(class_bytes 1:21)
	rm -f "$WORK/probe.bin" "$MEM/dl/probe"
	rm_objects r1 probe
	((up1 - up0 >= PROBE_MB << 20 && dn1 - dn0 >= PROBE_MB << 20)) ||
		die "tc filters did not catch the probe (upload class saw $((up1 - up0)) bytes, download class $((dn1 - dn0)))"
	for d in up dn; do
		ratio=$(awk -F'\t' -v l="ns.check.$d" -v mb="$PROBE_MB" -v link="$LINK_MIBS" '$1 == l && $2 != "FAIL" {print mb / $2 / link}' "$RAW")
		[[ -n $ratio ]] || die "shaping probe ($d) failed"
		awk -v s="$ratio" 'BEGIN {exit !(s <= 1.15)}' || die "probe ($d) ran at $ratio x the link rate: shaping is not effective"
		awk -v s="$ratio" 'BEGIN {exit !(s >= 0.5)}' || warn "probe ($d) reached only $ratio x the link rate"
	done

	say "-- shaped: single region, $SHAPED_REPS runs per row"
	for REP in $(seq "$SHAPED_REPS"); do
		for t in "${TOOLS[@]}"; do upload "$t" r1 "ns.up.$t"; done
	done
	for REP in $(seq "$SHAPED_REPS"); do
		# To tmpfs: this row is about the link, not this VM's disk.
		for t in "${TOOLS[@]}"; do download "$t" r1 "ns.dn.$t" "$MEM/dl/obj"; done
	done
	rm_objects r1 "*"

	say "-- shaped: one 3-region stage against 3 sequential single-region uploads"
	for REP in $(seq "$SHAPED_REPS"); do
		pfx r1
		next_version
		measure ns.3r.berth "${PFX[@]}" "$BERTH" stage -q --store "$(store r1)" --store "$(store r2)" --store "$(store r3)" \
			"$PROJECT" "$VER" "$FILE"
		for r in r1 r2 r3; do rm_objects "$r" "*"; done

		# Sequential: the same version to one region after another.
		next_version
		for r in r1 r2 r3; do
			pfx "$r"
			measure "ns.seq.berth.$r" "${PFX[@]}" "$BERTH" stage -q --store "$(store "$r")" "$PROJECT" "$VER" "$FILE"
		done
		record_sum ns.seq.berth 3
		for r in r1 r2 r3; do rm_objects "$r" "*"; done

		if [[ $COMPARE == 1 ]]; then
			for t in aws s5cmd; do
				for r in r1 r2 r3; do upload "$t" "$r" "ns.seq.$t.$r"; done
				record_sum "ns.seq.$t" 3
				for r in r1 r2 r3; do rm_objects "$r" "*"; done
			done
		fi
	done
fi

# -------------------------------------------------------------- report ----
# agg LABEL FIELD min|max|med over the successful runs of LABEL.
agg() {
	awk -F'\t' -v l="$1" -v f="$2" -v fn="$3" '$1 == l && $2 != "FAIL" {
		v = $f + 0; a[++n] = v; if (n == 1 || (fn == "min" && v < r) || (fn == "max" && v > r)) r = v }
		END { if (!n) exit
			if (fn == "med") { # insertion sort: a handful of runs
				for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
				r = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
			print r }' "$RAW"
}
failed() { grep -q "^$1	FAIL" "$RAW"; }
secs() { agg "$1" 2 med; }
# cell helpers print "–" when a row was not run and "FAILED" when it only failed.
none() { failed "$1" && echo "FAILED" || echo "–"; }
xfer() { # xfer LABEL MiB: "3.10 s · 330 MiB/s"
	local s; s=$(secs "$1")
	[[ -n $s ]] || { none "$1"; return; }
	awk -v s="$s" -v mb="$2" 'BEGIN {printf "%.2f s · %.0f MiB/s", s, mb / s}'
}
share() { # share LABEL MiB: "46.9 MiB/s (98%)"
	local s; s=$(secs "$1")
	[[ -n $s ]] || { none "$1"; return; }
	awk -v s="$s" -v mb="$2" -v l="$LINK_MIBS" 'BEGIN {printf "%.1f MiB/s (%.0f%%)", mb / s, 100 * mb / s / l}'
}
tsecs() { local s; s=$(secs "$1"); [[ -n $s ]] && printf '%.1f s' "$s" || none "$1"; }
cpu() { local c; c=$(agg "$1" "$2" med); [[ -n $c ]] && printf '%.2f s' "$c" || none "$1"; }
rss() { local k; k=$(agg "$1" 3 max); [[ -n $k ]] && printf '%.0f MiB' "$(awk -v k="$k" 'BEGIN {print k / 1024}')" || none "$1"; }
# pratio A B: how many times faster A ran than B, as the median over the
# repetitions in which both ran (side by side, under the same background
# load) of B's time / A's time; with no such pair, the ratio of the medians.
pratio() {
	awk -F'\t' -v a="$1" -v b="$2" '$2 != "FAIL" && ($1 == a || $1 == b) && $10 != "" { t[$1, $10] = $2; reps[$10] = 1 }
		END { for (r in reps) if ((a, r) in t && (b, r) in t && t[a, r] > 0) x[++n] = t[b, r] / t[a, r]
			if (!n) exit
			for (i = 2; i <= n; i++) { v = x[i]; for (j = i - 1; j > 0 && x[j] > v; j--) x[j + 1] = x[j]; x[j + 1] = v }
			print (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2 }' "$RAW"
}
speedup() { # speedup A B: "0.93×" (see pratio)
	local a b r
	r=$(pratio "$1" "$2")
	if [[ -z $r ]]; then
		a=$(secs "$1") b=$(secs "$2")
		[[ -n $a && -n $b ]] || { echo "n/a"; return; }
		r=$(awk -v a="$a" -v b="$b" 'BEGIN {print b / a}')
	fi
	awk -v r="$r" 'BEGIN {printf "%.2f×", r}'
}
# pergib LABEL FIELD MiB: median of FIELD per GiB moved, "1.23"
pergib() { local c; c=$(agg "$1" "$2" med); [[ -n $c ]] && awk -v c="$c" -v mb="$3" 'BEGIN {printf "%.2f", c * 1024 / mb}' || none "$1"; }
verdict() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
	ok = (op == ">=") ? v >= t : (op == "<=") ? v <= t : v < t; printf "%s", ok ? "PASS" : "FAIL" }'; }
row() { printf '| %s | %s | %s | %s | %s |\n' "$@" >>"$RESULTS"; }
vs_s5() { echo "berth $(speedup "$1.berth" "$1.s5cmd") s5cmd's speed; aws $(speedup "$1.aws" "$1.s5cmd")"; }

SZ=$(hsize "$SIZE_MB")
loads=$(awk -F'\t' '$2 != "FAIL" {print $7}' "$RAW" | sort -g | awk '{a[NR] = $1} END {if (NR) printf "%s–%s (median %s)", a[1], a[NR], a[int((NR + 1) / 2)]}')
others=$(awk -F'\t' '$2 != "FAIL" && $2 > 0 {print 100 * $6 / $2 / '"$(nproc)"'}' "$RAW" | sort -g |
	awk '{a[NR] = $1} END {if (NR) printf "%.0f%%–%.0f%% (median %.0f%%)", a[1], a[NR], a[int((NR + 1) / 2)]}')

{
	echo "# berth benchmark"
	echo
	echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), berth $COMMIT, $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
	echo "- aws: $("$AWS" --version 2>&1 | cut -d' ' -f1,3), s5cmd $S5CMD_VERSION (defaults: aws 8 MiB parts × 10, s5cmd 50 MiB parts × 5; berth 8 MiB × 4)"
	echo "- median of $REPS runs on loopback$([[ $SKIP_SHAPED == 1 ]] || echo " and of $SHAPED_REPS on the shaped link"); ratios are the median over repetitions of the ratio between runs made side by side; $CACHE_NOTE"
	echo "- MinIO data on tmpfs; test files on disk ($TMP_PARENT); clients and servers ran at nice $NICE${AUTOGROUP_OLD:+ (also set on the session autogroup)}"
	echo "- 1-min load average during runs: $loads; CPU used by other processes during runs: $others of the machine"
	echo
	echo "| row | berth | aws s3 cp | s5cmd | ratio / target |"
	echo "|---|---|---|---|---|"
} >"$RESULTS"

row "**Loopback**, 1 MinIO on 127.0.0.1" "" "" "" ""
row "upload $SZ" "$(xfer lo.up.berth "$SIZE_MB")" "$(xfer lo.up.aws "$SIZE_MB")" "$(xfer lo.up.s5cmd "$SIZE_MB")" "$(vs_s5 lo.up)"
row "download $SZ → tmpfs" "$(xfer lo.dn_mem.berth "$SIZE_MB")" "$(xfer lo.dn_mem.aws "$SIZE_MB")" "$(xfer lo.dn_mem.s5cmd "$SIZE_MB")" "$(vs_s5 lo.dn_mem)"
row "download $SZ → disk, incl. fsync" "$(xfer lo.dn_disk.berth "$SIZE_MB")" "$(xfer lo.dn_disk.aws "$SIZE_MB")" "$(xfer lo.dn_disk.s5cmd "$SIZE_MB")" "$(vs_s5 lo.dn_disk)"
row "client CPU (user+sys), upload" "$(cpu lo.up.berth 4)" "$(cpu lo.up.aws 4)" "$(cpu lo.up.s5cmd 4)" "median of $REPS runs"
row "client CPU, download → tmpfs" "$(cpu lo.dn_mem.berth 4)" "$(cpu lo.dn_mem.aws 4)" "$(cpu lo.dn_mem.s5cmd 4)" "berth includes SHA-256"
row "MinIO CPU, upload" "$(cpu lo.up.berth 5)" "$(cpu lo.up.aws 5)" "$(cpu lo.up.s5cmd 5)" "server side of the same runs"
row "MinIO CPU, download → tmpfs" "$(cpu lo.dn_mem.berth 5)" "$(cpu lo.dn_mem.aws 5)" "$(cpu lo.dn_mem.s5cmd 5)" ""
for v in $SWEEP; do
	row "berth --part-size ${v%:*} --concurrency ${v#*:}, upload" "$(xfer "sw.up.$v" "$SIZE_MB"), $(rss "sw.up.$v")" "" "" "$(speedup "sw.up.$v" lo.up.s5cmd) s5cmd's speed"
	row "berth --part-size ${v%:*} --concurrency ${v#*:}, download → tmpfs" "$(xfer "sw.dn.$v" "$SIZE_MB"), $(rss "sw.dn.$v")" "" "" "$(speedup "sw.dn.$v" lo.dn_mem.s5cmd) s5cmd's speed"
done

if [[ $SKIP_SHAPED != 1 ]]; then
	row "**Shaped link**, netns, htb $RATE = $(printf '%.1f' "$LINK_MIBS") MiB/s per region and direction" "" "" "" ""
	row "link check, ${PROBE_MB} MiB up / down" "" "" "$(share ns.check.up "$PROBE_MB") / $(share ns.check.dn "$PROBE_MB")" "shaping verified (class counters and rate)"
	share_up=$(awk -v s="$(secs ns.up.berth)" -v mb="$SIZE_MB" -v l="$LINK_MIBS" 'BEGIN {if (s) print mb / s / l; else print 0}')
	share_dn=$(awk -v s="$(secs ns.dn.berth)" -v mb="$SIZE_MB" -v l="$LINK_MIBS" 'BEGIN {if (s) print mb / s / l; else print 0}')
	row "upload $SZ, 1 region" "$(share ns.up.berth "$SIZE_MB")" "$(share ns.up.aws "$SIZE_MB")" "$(share ns.up.s5cmd "$SIZE_MB")" "berth ≥ 90% of link: $(verdict "$share_up" ">=" 0.9)"
	row "download $SZ, 1 region → tmpfs" "$(share ns.dn.berth "$SIZE_MB")" "$(share ns.dn.aws "$SIZE_MB")" "$(share ns.dn.s5cmd "$SIZE_MB")" "berth ≥ 90% of link: $(verdict "$share_dn" ">=" 0.9)"
	row "3 sequential single-region uploads of $SZ" "$(tsecs ns.seq.berth)" "$(tsecs ns.seq.aws)" "$(tsecs ns.seq.s5cmd)" "one upload after another"
	r3=$(awk -v a="$(secs ns.3r.berth)" -v b="$(secs ns.seq.berth)" 'BEGIN {if (a && b) printf "%.2f", a / b}')
	row "one 3-region stage of $SZ (file read once, fanned out)" "$(tsecs ns.3r.berth)" "–" "–" "${r3:-n/a} of berth sequential, target ≤ 0.4: $([[ -n $r3 ]] && verdict "$r3" "<=" 0.4 || echo n/a)"
fi

row "**Memory**, peak RSS (max over runs)" "" "" "" ""
pass_rss() { # pass_rss LABEL...: PASS when every one stays under 150 MiB
	local l k worst=0
	for l in "$@"; do k=$(agg "$l" 3 max); [[ -z $k ]] || worst=$(awk -v a="$worst" -v b="$k" 'BEGIN {print (b > a) ? b : a}'); done
	echo "berth < 150 MiB: $(verdict "$worst" "<" $((150 * 1024)))"
}
row "upload $SZ" "$(rss lo.up.berth)" "$(rss lo.up.aws)" "$(rss lo.up.s5cmd)" "$(pass_rss lo.up.berth)"
row "download $SZ" "$(rss lo.dn_mem.berth)" "$(rss lo.dn_mem.aws)" "$(rss lo.dn_mem.s5cmd)" "$(pass_rss lo.dn_mem.berth lo.dn_disk.berth)"
if [[ $SKIP_BIG != 1 ]]; then
	row "upload $(hsize "$BIG_MB")" "$(rss mem.up.big.berth) ($(xfer mem.up.big.berth "$BIG_MB"))" "" "" "$(pass_rss mem.up.big.berth)"
	row "download $(hsize "$BIG_MB") → disk" "$(rss mem.dn.big.berth) ($(xfer mem.dn.big.berth "$BIG_MB"))" "" "" "$(pass_rss mem.dn.big.berth)"
fi
if [[ $SKIP_SHAPED != 1 ]]; then
	row "3-region stage of $SZ" "$(rss ns.3r.berth)" "" "" "$(pass_rss ns.3r.berth)"
fi

# Where the time goes on loopback: per GiB moved, for each tool, the wall
# time, the client's CPU (user + sys) and the server's CPU. On two shared
# cores the client and MinIO compete for the same CPUs, so a client that
# needs less CPU (its own and the server's) leaves more to the transfer.
{
	echo
	echo "### Loopback, per GiB moved (median of $REPS runs)"
	[[ -z $BERTH_BASE ]] || { echo; echo "base: berth $BASELINE ($BASE_COMMIT), measured in the same repetitions as this checkout"; }
	echo
	echo "| transfer | tool | × s5cmd | wall | client CPU (user + sys) | MinIO CPU | peak RSS |"
	echo "|---|---|---|---|---|---|---|"
} >>"$RESULTS"
for d in up dn_mem dn_disk; do
	case $d in
	up) what="upload" ;;
	dn_mem) what="download → tmpfs" ;;
	dn_disk) what="download → disk, incl. fsync" ;;
	esac
	for t in "${LO_TOOLS[@]}"; do
		l=lo.$d.$t
		printf '| %s | %s | %s | %s s | %s s (%s + %s) | %s s | %s |\n' "$what" "$t" "$(speedup "$l" "lo.$d.s5cmd")" \
			"$(pergib "$l" 2 "$SIZE_MB")" "$(pergib "$l" 4 "$SIZE_MB")" "$(pergib "$l" 8 "$SIZE_MB")" "$(pergib "$l" 9 "$SIZE_MB")" \
			"$(pergib "$l" 5 "$SIZE_MB")" "$(rss "$l")" >>"$RESULTS"
	done
done

# best_setting up|dn prints "SECONDS PART:CONC" of the fastest berth setting,
# the default 8MiB:4 (the main loopback rows) included.
best_setting() {
	local v l s
	for v in 8MiB:4 $SWEEP; do
		l=sw.$1.$v
		[[ $v != 8MiB:4 ]] || l=$([[ $1 == up ]] && echo lo.up.berth || echo lo.dn_mem.berth)
		s=$(secs "$l")
		[[ -z $s ]] || echo "$s $v"
	done | sort -g | head -n1
}
{
	echo
	if [[ -n $SWEEP ]]; then
		for d in up dn; do
			read -r s v <<<"$(best_setting "$d")" || continue
			printf -- '- fastest berth setting on loopback, %s: --part-size %s --concurrency %s (%s)\n' \
				"$([[ $d == up ]] && echo upload || echo "download → tmpfs")" "${v%:*}" "${v#*:}" \
				"$(awk -v s="$s" -v mb="$SIZE_MB" 'BEGIN {printf "%.2f s, %.0f MiB/s", s, mb / s}')"
		done
	fi
	echo "- raw runs: bench/out/raw.tsv (label, s, peak RSS KiB, client CPU s, MinIO CPU s, other CPU s, load, client user s, client sys s, repetition); tool output: bench/out/bench.log"
	echo "- total benchmark time: $(( ($(date +%s) - START) / 60 )) min"
} >>"$RESULTS"

cat "$RESULTS"
