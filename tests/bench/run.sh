#!/usr/bin/env bash
# run.sh BUILD: the srmudp benchmarks (`make bench`).  Writes raw samples to
# BUILD/bench/raw.tsv, then tests/bench/report.py turns them into
# docs/BENCHMARKS.md and docs/bench/*.png.
#
# Every figure is measured BENCH_RUNS times (median, min-max) and every
# comparison is against a baseline measured in this same run, on the same
# link: two hosts of the NAT lab (tests/lab/lab.sh, NAT off), a -> nata ->
# inet -> natb -> b, impaired on the wa link (nata <-> inet) so that TCP,
# kcptun and srmudp see exactly the same delay and loss.
#
# Knobs (environment):
#   BENCH_RUNS=3        repetitions of every figure
#   BENCH_TTFB_RUNS=5   repetitions of the time-to-first-byte probes: a cold
#                       figure is one connection per run, and a program's own
#                       first connect varies by half a millisecond
#   BENCH_SECS=6        iperf3 seconds, clean-path bulk runs
#   BENCH_GRID_SECS=6   iperf3 seconds per grid cell
#   BENCH_ONLY="aead handshake scale callgrind bulk grid latency compress"
#                       sections to run (default: all); the report keeps
#                       the sections of an earlier run that were skipped
#   BENCH_NO_REPORT=1   skip report.py
# Timings are never asserted here: this only measures.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
srm_build "${1:-build}"
export SRM_BUILD=$BUILD
OUT=$BUILD/bench
RUNS=${BENCH_RUNS:-3}
SECS=${BENCH_SECS:-6}
GSECS=${BENCH_GRID_SECS:-6}
TTFB_RUNS=${BENCH_TTFB_RUNS:-5}
ALL="aead handshake scale callgrind bulk grid latency compress"
ONLY=${BENCH_ONLY:-$ALL}
RAW=$OUT/raw.tsv
LOG=$OUT/run.log
mkdir -p "$OUT"
# shellcheck source=../lab/lab.sh
source "$root/tests/lab/lab.sh"
lab_require_root
for t in iperf3 kcptun-client kcptun-server redis-server redis-benchmark valgrind gnuplot python3; do
	command -v "$t" >/dev/null || { echo "bench: $t is missing (make deps)"; exit 1; }
done
[[ -x $SRMUDP && -f $BUILD/libsrmudp-core.a ]] || { echo "bench: build first (make)"; exit 1; }

want() { [[ " $ONLY " == *" $1 "* ]]; }
note() { printf '%s %s\n' "$(date +%T)" "$*" | tee -a "$LOG"; }
# rec KEY VALUE: one sample.  A section that reruns replaces its keys.
rec() { [[ -n $2 ]] && printf '%s\t%s\n' "$1" "$2" >>"$RAW.new"; }
t_start=$(date +%s)
: >"$RAW.new"
: >"$LOG"
note "bench: BUILD=$BUILD runs=$RUNS secs=$SECS grid_secs=$GSECS sections: $ONLY"
rec meta.date "$(date -u '+%Y-%m-%d %H:%M UTC')"
rec meta.cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
rec meta.cores "$(nproc)"
rec meta.kernel "$(uname -r)"
rec meta.load "$(cut -d' ' -f1-3 /proc/loadavg)"
rec meta.commit "$(git -C "$root" rev-parse --short HEAD 2>/dev/null)"
rec meta.runs "$RUNS"
rec meta.ttfb_runs "$TTFB_RUNS"
# One line per invocation; kept across partial runs (see the merge below).
rec runlog "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null), load $(cut -d' ' -f1 /proc/loadavg): $ONLY"

# ---------------------------------------------------------------------------
# Helper programs, against the core library.
HELP=$OUT/bin
mkdir -p "$HELP"
for src in "$root"/tests/bench/*.c; do
	bin=$HELP/$(basename "$src" .c)
	# shellcheck disable=SC2046 # pkg-config output is a word list
	cc -O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$root/core" -I"$root/core/protocol" -I"$root/core/driver" -I"$root/core/config" \
		$(pkg-config --cflags libsodium libzstd msgpack) -o "$bin" "$src" \
		"$BUILD/libsrmudp-core.a" $(pkg-config --libs libsodium libzstd msgpack) -lpthread ||
		{ echo "bench: cannot build $src"; exit 1; }
done
SCRATCH=$(mktemp -d /tmp/srmbench.XXXXXX)
chmod 700 "$SCRATCH"
trap 'rm -rf "$SCRATCH"' EXIT

# kv PREFIX: read "key value" lines, record PREFIX.key value.
kv() { local k v; while read -r k v; do [[ -n $k && -n $v ]] && rec "$1.$k" "$v"; done; }

# ---------------------------------------------------------------------------
# Local, single-process figures (loopback only).
if want aead; then
	note "aead ceiling"
	for ((i = 0; i < RUNS; i++)); do "$HELP/bench_aead" 1 | kv aead; done
fi
if want handshake; then
	note "handshakes per second (one core)"
	for ((i = 0; i < RUNS; i++)); do taskset -c 0 "$HELP/bench_handshake" 2 | kv hs; done
fi
if want scale; then
	note "memory: 200 peers, 10,000 streams"
	for ((i = 0; i < RUNS; i++)); do
		d=$SCRATCH/scale$i
		mkdir -m 700 "$d"
		timeout 300 "$HELP/bench_scale" "$d" 200 10000 2>>"$LOG" | kv scale ||
			note "bench_scale run $i failed"
	done
fi
if want callgrind; then
	note "callgrind: instructions for a 32 MiB native transfer (random data, compression off)"
	d=$SCRATCH/cg
	mkdir -m 700 "$d"
	if timeout 900 valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
		"$HELP/bench_xfer" "$d" 32 random off >"$d/out" 2>"$d/err"; then
		ir=$(grep -m1 -E '^(summary|totals):' "$OUT/callgrind.out" | awk '{print $2}')
		rec cg.instructions "$ir"
		rec cg.bytes $((32 << 20))
		callgrind_annotate "$OUT/callgrind.out" 2>/dev/null | head -40 >"$OUT/callgrind-top.txt"
	else
		note "callgrind run failed"; tail -5 "$d/err" >>"$LOG"
	fi
fi
if want compress; then
	note "compression: 64 MiB native transfers, text and random, auto and off"
	for ((i = 0; i < RUNS; i++)); do
		for data in text random; do
			for mode in auto off; do
				d=$SCRATCH/cmp$i$data$mode
				mkdir -m 700 "$d"
				timeout 120 "$HELP/bench_xfer" "$d" 64 "$data" "$mode" 2>>"$LOG" |
					kv "cmp.$data.$mode"
			done
		done
	done
fi

# ---------------------------------------------------------------------------
# The lab: a and b, routed (no NAT), impairments on wa.
lab_sections=0
for s in bulk grid latency; do want "$s" && lab_sections=1; done
if ((lab_sections)); then
	lab_up --nat-a none --nat-b none
	W=$LAB_DIR/w
	mkdir -m 700 "$W"
	PA=$("$SRMUDP" keygen "$W/a.key")
	PB=$("$SRMUDP" keygen "$W/b.key")
	B4=$(lab_addr b v4)
	# Each preloaded server has its own engine, hence its own UDP port;
	# clients use an ephemeral one, so several can run at once.
	srv_env() { echo SRMUDP_KEY="$W/b.key" SRMUDP_LISTEN="$1" SRMUDP_PEERS="a=$PA" SRMUDP_LOG=warn; }
	cli_env() { echo SRMUDP_KEY="$W/a.key" SRMUDP_LISTEN=0 SRMUDP_PEERS="b=$PB@$B4:$1" SRMUDP_LOG=warn; }
	# shellcheck disable=SC2046 # word lists by design
	{
		lab_bg b iperf3 -s -p 5201
		lab_bg b env $(srv_env 4000) "$SRMUDP" run -- iperf3 -s -p 5202
		# kcptun: AES (its default), no compression (iperf3 data is random),
		# windows raised from the defaults (128/512 packets) to 1024 as its
		# documentation recommends for fast links; FEC 10+3 as shipped.
		lab_bg b kcptun-server -t 127.0.0.1:5201 -l :29900 --nocomp --sndwnd 1024 --rcvwnd 1024 --quiet
		KCPS=$LAB_LAST_PID
		lab_bg a kcptun-client -r "$B4:29900" -l 127.0.0.1:12948 --nocomp --sndwnd 1024 --rcvwnd 1024 --quiet
		KCPC=$LAB_LAST_PID
		lab_bg b redis-server --port 6379 --save '' --appendonly no --protected-mode no
		lab_bg b env $(srv_env 4001) "$SRMUDP" run -- redis-server --port 6380 --save '' --appendonly no --protected-mode no
		lab_bg b python3 "$root/tests/bench/latency.py" serve 7000
		lab_bg b env $(srv_env 4002) "$SRMUDP" run -- python3 "$root/tests/bench/latency.py" serve 7100
	}
	for p in 5201 5202 6379 6380 7000 7100 7101; do
		lab_wait_port b tcp "$p" 10 || note "port $p did not open on b"
	done
	lab_wait_port a tcp 12948 10 || note "kcptun client did not start"
fi

ticks() { local s; s=$(<"/proc/$1/stat") && s=${s##*) } && awk '{print $12 + $13}' <<<"$s"; }
HZ=$(getconf CLK_TCK)

# iperf WHO KEY SECS [iperf3 args]: one run; records KEY (Mbit/s at the
# receiver) and KEY.cpu (CPU seconds per GB, both ends).
iperf() {
	local who=$1 key=$2 secs=$3 j k0 k1 res
	shift 3
	j=$SCRATCH/iperf.json
	case $who in
	ours) # shellcheck disable=SC2046
		lab_exec a env $(cli_env 4000) timeout $((secs + 30)) "$SRMUDP" run -- \
			iperf3 -c b -p 5202 -t "$secs" -J "$@" >"$j" 2>>"$LOG" ;;
	tcp) lab_exec a timeout $((secs + 30)) iperf3 -c "$B4" -p 5201 -t "$secs" -J "$@" >"$j" 2>>"$LOG" ;;
	kcptun)
		k0=$(($(ticks "$KCPS") + $(ticks "$KCPC")))
		lab_exec a timeout $((secs + 30)) iperf3 -c 127.0.0.1 -p 12948 -t "$secs" -J "$@" >"$j" 2>>"$LOG"
		k1=$(($(ticks "$KCPS") + $(ticks "$KCPC"))) ;;
	esac
	res=$(python3 - "$j" "${k0:-0}" "${k1:-0}" "$HZ" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    e = d["end"]
    rx = e["sum_received"]
    secs = rx["seconds"]
    cpu = e["cpu_utilization_percent"]
    cpu_s = (cpu["host_total"] + cpu["remote_total"]) / 100 * secs
    cpu_s += (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4])
    gb = rx["bytes"] / 1e9
    print(f"{rx['bits_per_second'] / 1e6:.2f} {cpu_s / gb if gb > 0 else 0:.2f}")
except Exception as ex:
    print(f"iperf3 result unreadable: {ex}", file=sys.stderr)
EOF
	)
	if [[ -z $res ]]; then
		note "  $key: no result ($(head -c 300 "$j" | tr '\n' ' '))"
		return 0
	fi
	rec "$key" "${res% *}"
	rec "$key.cpu" "${res#* }"
	note "  $key ${res% *} Mbit/s, ${res#* } CPU s/GB"
}

if want bulk; then
	note "bulk: clean path, ${SECS} s per run"
	for ((i = 0; i < RUNS; i++)); do
		for who in ours tcp kcptun; do
			iperf "$who" "bulk.fwd.$who" "$SECS" -O 1
			iperf "$who" "bulk.rev.$who" "$SECS" -O 1 -R
			iperf "$who" "bulk.p4.$who" "$SECS" -O 1 -P 4
		done
	done
fi

if want grid; then
	# RTT split over both directions; loss applied in each direction.
	profiles=()
	for rtt in 10 50 200; do
		for loss in 0 0.5 2 5; do profiles+=("$rtt:$loss:0"); done
	done
	profiles+=("50:1:0" "50:0:2")
	note "grid: ${#profiles[@]} profiles x 4 contenders x $RUNS runs x ${GSECS} s"
	for prof in "${profiles[@]}"; do
		IFS=: read -r rtt loss reorder <<<"$prof"
		args=(--delay $((rtt / 2)))
		[[ $loss != 0 ]] && args+=(--loss "$loss")
		[[ $reorder != 0 ]] && args+=(--reorder "$reorder")
		lab_impair wa "${args[@]}" || { note "lab_impair $prof failed"; continue; }
		name="rtt${rtt}_loss${loss}_reo${reorder}"
		for ((i = 0; i < RUNS; i++)); do
			iperf ours "grid.$name.ours" "$GSECS"
			iperf tcp "grid.$name.cubic" "$GSECS" -C cubic
			iperf tcp "grid.$name.bbr" "$GSECS" -C bbr
			iperf kcptun "grid.$name.kcptun" "$GSECS"
		done
		lab_clear_impair wa
	done
fi

if want latency; then
	note "latency: redis-benchmark SET,GET, clean path"
	for ((i = 0; i < RUNS; i++)); do
		for c in 1 10; do
			for who in tcp ours; do
				if [[ $who == tcp ]]; then
					out=$(lab_exec a timeout 120 redis-benchmark -h "$B4" -p 6379 -t set,get -n 20000 -c "$c" -P 1 --csv 2>>"$LOG")
				else # shellcheck disable=SC2046
					out=$(lab_exec a env $(cli_env 4001) timeout 120 "$SRMUDP" run -- \
						redis-benchmark -h b -p 6380 -t set,get -n 20000 -c "$c" -P 1 --csv 2>>"$LOG")
				fi
				# "SET","rps","avg","min","p50","p95","p99","max"
				while IFS=, read -r t rps _ _ p50 _ p99 _; do
					t=${t//\"/}
					[[ $t == SET || $t == GET ]] || continue
					rec "redis.c$c.$t.$who.rps" "${rps//\"/}"
					rec "redis.c$c.$t.$who.p50" "${p50//\"/}"
					rec "redis.c$c.$t.$who.p99" "${p99//\"/}"
				done <<<"$out"
			done
		done
	done
	for rtt in 0 10 50; do
		note "latency: time to first byte at ${rtt} ms added RTT"
		((rtt)) && lab_impair wa --delay $((rtt / 2))
		for ((i = 0; i < TTFB_RUNS; i++)); do
			lab_exec a timeout 60 python3 "$root/tests/bench/latency.py" ttfb "$B4" 7000 11 2>>"$LOG" |
				kv "ttfb.rtt$rtt.tcp"
			# shellcheck disable=SC2046
			lab_exec a env $(cli_env 4002) timeout 60 "$SRMUDP" run -- \
				python3 "$root/tests/bench/latency.py" ttfb b 7100 11 2>>"$LOG" | kv "ttfb.rtt$rtt.ours"
			# shellcheck disable=SC2046
			lab_exec a env $(cli_env 4002) SRMUDP_WARMUP=off timeout 60 "$SRMUDP" run -- \
				python3 "$root/tests/bench/latency.py" ttfb b 7100 2 2>>"$LOG" |
				kv "ttfb.rtt$rtt.ours_nowarm"
		done
		((rtt)) && lab_clear_impair wa
	done
	note "latency under load: 100 Mbit/s bottleneck (tbf, 50 ms queue), 10 ms RTT"
	lab_impair wa --rate 100 --delay 5
	for ((i = 0; i < RUNS; i++)); do
		lab_exec a timeout 60 python3 "$root/tests/bench/latency.py" load "$B4" 7000 8 2>>"$LOG" |
			kv "load.tcp"
		# shellcheck disable=SC2046
		lab_exec a env $(cli_env 4002) timeout 60 "$SRMUDP" run -- \
			python3 "$root/tests/bench/latency.py" load b 7100 8 2>>"$LOG" | kv "load.ours"
	done
	lab_clear_impair wa
fi

((lab_sections)) && lab_down

# Merge: keep the earlier run's samples for sections not run this time
# (and the lines naming earlier invocations, unless this one ran them all).
if [[ -f $RAW ]]; then
	prefixes=$(cut -f1 "$RAW.new" | cut -d. -f1 | grep -vx runlog | sort -u)
	[[ $ONLY == "$ALL" ]] && prefixes+=$'\nrunlog'
	awk -F'\t' -v p="$(echo "$prefixes" | tr '\n' ' ')" '
		BEGIN { n = split(p, a, " "); for (i = 1; i <= n; i++) skip[a[i]] = 1 }
		{ split($1, k, "."); if (!(k[1] in skip)) print }' "$RAW" >>"$RAW.new"
fi
mv "$RAW.new" "$RAW"
note "bench: samples in $RAW ($(( $(date +%s) - t_start )) s)"
if [[ -z ${BENCH_NO_REPORT:-} ]]; then
	python3 "$root/tests/bench/report.py" "$RAW" "$root/docs" || exit 1
fi
