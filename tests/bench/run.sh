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
#   BENCH_ONLY="aead handshake scale callgrind bulk grid latency compress relay gate"
#                       sections to run (default: all); the report keeps
#                       the sections of an earlier run that were skipped
#   BENCH_NO_REPORT=1   skip report.py (any value: set it empty, not 0, to
#                       get the report)
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
ALL="aead handshake scale callgrind bulk grid latency compress relay gate"
ONLY=${BENCH_ONLY:-$ALL}
RAW=$OUT/raw.tsv
LOG=$OUT/run.log
mkdir -p "$OUT"
# shellcheck source=../lab/lab.sh
source "$root/tests/lab/lab.sh"
lab_require_root
for t in iperf3 socat nft kcptun-client kcptun-server redis-server redis-benchmark valgrind gnuplot python3; do
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
		$(pkg-config --cflags libsodium libzstd msgpack libssl libcrypto) -o "$bin" "$src" \
		"$BUILD/libsrmudp-core.a" $(pkg-config --libs libsodium libzstd msgpack libssl libcrypto) -lpthread ||
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
for s in bulk grid latency relay gate; do want "$s" && lab_sections=1; done
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

# ticks PID [1]: CPU ticks of PID (with 1: and of its reaped children).
ticks() {
	local s
	s=$(<"/proc/$1/stat") && s=${s##*) } && awk -v c="${2:-0}" '{print $12 + $13 + c * ($14 + $15)}' <<<"$s"
}
HZ=$(getconf CLK_TCK)

# iperf WHO KEY SECS [iperf3 args]: one run; records KEY (Mbit/s at the
# receiver) and KEY.cpu (CPU seconds per GB, both ends, and the processes
# in between: kcptun's, the relay's, socat's, the gate's).  WHO: ours,
# tcp, kcptun; ws and socat for the relay section; gate and plain (the
# same engines through build/lab/udp_forward) for the gate's.
iperf() {
	local who=$1 key=$2 secs=$3 j k0 k1 res
	shift 3
	j=$SCRATCH/iperf.json
	case $who in
	ours) # shellcheck disable=SC2046
		lab_exec a env $(cli_env 4000) timeout $((secs + 30)) "$SRMUDP" run -- \
			iperf3 -c b -p 5202 -t "$secs" -J "$@" >"$j" 2>>"$LOG" ;;
	tcp) lab_exec a timeout $((secs + 30)) iperf3 -c "$B4" -p 5201 -t "$secs" -J "$@" >"$j" 2>>"$LOG" ;;
	ws) # (the relay section's servers; the relay process counts as kcptun's do)
		k0=$(ticks "$RDV_PID")
		# shellcheck disable=SC2046
		lab_exec a env $(ws_env "$PBI") timeout $((secs + 30)) "$SRMUDP" run -- \
			iperf3 -c b -p 5302 -t "$secs" -J "$@" >"$j" 2>>"$LOG"
		k1=$(ticks "$RDV_PID") ;;
	gate) # (the gate section's servers; the gate's time counts too)
		k0=$(ticks "$GATE_PID")
		# shellcheck disable=SC2046
		lab_exec a env $(gate_env "$PBG") timeout $((secs + 30)) "$SRMUDP" run -- \
			iperf3 -c b -p 5402 -t "$secs" -J "$@" >"$j" 2>>"$LOG"
		k1=$(ticks "$GATE_PID") ;;
	plain) # (the gate section's: through udp_forward on rdv, its time too)
		k0=$(ticks "$FWD_PID")
		lab_exec a env SRMUDP_KEY="$W/a.key" SRMUDP_LISTEN=0 SRMUDP_PEERS="b=$PBP@$RDV4:5500" \
			timeout $((secs + 30)) "$SRMUDP" run -- \
			iperf3 -c b -p 5502 -t "$secs" -J "$@" >"$j" 2>>"$LOG"
		k1=$(ticks "$FWD_PID") ;;
	socat) # socat forks per connection: its children's time, once reaped
		k0=$(ticks "$SOCAT_IPERF" 1)
		lab_exec a timeout $((secs + 30)) iperf3 -c "$RDV4" -p 5301 -t "$secs" -J "$@" >"$j" 2>>"$LOG"
		sleep 0.3
		k1=$(ticks "$SOCAT_IPERF" 1) ;;
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

# redis_rec PREFIX WHO: redis-benchmark's --csv on stdin; records
# PREFIX.{SET,GET}.WHO.{rps,p50,p99}.
redis_rec() {
	local t rps p50 p99
	# "SET","rps","avg","min","p50","p95","p99","max"
	while IFS=, read -r t rps _ _ p50 _ p99 _; do
		t=${t//\"/}
		[[ $t == SET || $t == GET ]] || continue
		rec "$1.$t.$2.rps" "${rps//\"/}"
		rec "$1.$t.$2.p50" "${p50//\"/}"
		rec "$1.$t.$2.p99" "${p99//\"/}"
	done
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
				redis_rec "redis.c$c" "$who" <<<"$out"
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

if want relay; then
	# Issue 16: a's network drops UDP (nata's forward chain, as
	# tests/integration/test_relay_ws.sh does, but both ways: with NAT
	# off nothing else stops b's UDP coming in, and a's engine, hearing
	# b directly, would take a path its answers cannot use), so a's engine reaches the
	# rendezvous server on rdv over a WebSocket and the server relays the
	# session to b (which talks UDP to it).  The baseline is kernel TCP
	# through socat on the same relay host: a -> rdv -> b, TCP both legs.
	# The server's per-connection and per-key rate limits (--ws-rate,
	# default 2 MiB/s; --relay-rate, 1 MiB/s) are policy, not the relay's
	# capacity: both are lifted here.
	note "relay: UDP dropped from a's LAN; WebSocket relay on rdv vs socat on rdv"
	RDV4=$(lab_addr rdv v4)
	WS_URL=ws://$RDV4:8080/srmudp
	ip netns exec "$(lab_ns nata)" nft -f - <<-EOF
	table inet srmblock {
		chain block {
			type filter hook forward priority 0; policy accept;
			iifname "lan0" meta l4proto udp drop
			oifname "lan0" meta l4proto udp drop
		}
	}
	EOF
	lab_bg rdv "$SRMUDP" rendezvous --listen "$RDV4:3478" --ws-listen "$RDV4:8080" \
		--relay-rate 1G --ws-rate 1G
	RDV_PID=$LAB_LAST_PID RDV_LOG=$LAB_LAST_LOG
	srm_wait_log "$RDV_LOG" "WebSocket on" 5 || note "the rendezvous server did not start"
	for fwd in 6479:6379 7001:7000 5301:5201; do
		lab_bg rdv socat "TCP-LISTEN:${fwd%:*},fork,reuseaddr" "TCP:$B4:${fwd#*:}"
	done
	SOCAT_IPERF=$LAB_LAST_PID
	# One key per preloaded server on b: each is an engine of its own, and
	# the rendezvous server keeps one place per key.
	PBI=$("$SRMUDP" keygen "$W/bi.key")
	PBR=$("$SRMUDP" keygen "$W/br.key")
	PBE=$("$SRMUDP" keygen "$W/be.key")
	RDV_ENV=(SRMUDP_RENDEZVOUS="$RDV4:3478" SRMUDP_RELAY="$WS_URL" SRMUDP_LOG=info)
	# ws_env PEERKEY: a's client, b being the server of that key; its log
	# tells which path the session took.
	ws_env() { echo SRMUDP_KEY="$W/a.key" SRMUDP_PEERS="b=$1" "${RDV_ENV[*]}" SRMUDP_LOG_FILE="$W/a.log"; }
	{
		lab_bg b env SRMUDP_KEY="$W/bi.key" SRMUDP_PEERS="a=$PA" "${RDV_ENV[@]}" SRMUDP_LOG_FILE="$W/bi.log" \
			"$SRMUDP" run -- iperf3 -s -p 5302
		lab_bg b env SRMUDP_KEY="$W/br.key" SRMUDP_PEERS="a=$PA" "${RDV_ENV[@]}" SRMUDP_LOG_FILE="$W/br.log" \
			"$SRMUDP" run -- redis-server --port 6480 --save '' --appendonly no --protected-mode no
		lab_bg b env SRMUDP_KEY="$W/be.key" SRMUDP_PEERS="a=$PA" "${RDV_ENV[@]}" SRMUDP_LOG_FILE="$W/be.log" \
			"$SRMUDP" run -- python3 "$root/tests/bench/latency.py" serve 7200
	}
	for p in 5302 6480 7200; do lab_wait_port b tcp "$p" 10 || note "port $p did not open on b"; done
	for p in 5301 6479 7001; do lab_wait_port rdv tcp "$p" 10 || note "socat $p did not start"; done
	for k in bi br be; do
		srm_wait_log "$W/$k.log" "registered; our public" 10 || note "b's $k server did not register"
	done
	# rdv_counters: the relay server's counters (SIGUSR1 prints them).
	rdv_counters() {
		local h
		srm_rdv_stats "$RDV_PID" "$RDV_LOG"
		# Datagrams the relay host's and b's kernels dropped (socket buffer full).
		for h in rdv b; do
			# shellcheck disable=SC2016 # awk's $6
			lab_exec "$h" awk -v h="$h" '/^Udp:/ && n++ { print h "_udp_rcvbuf_errors=" $6 }' /proc/net/snmp
		done
	}
	# ws_run KEY CMD...: CMD (an ours-over-the-relay measurement) with a's
	# log fresh; records KEY.path_ws (1: a's log says the session went
	# over the WebSocket and never direct), KEY.rdv_* (the relay server's
	# queue drops, throttling and rate limiting during CMD) and, when
	# SENDER/RECEIVER are set, the sending engine's packet counters from
	# `srmudp status --json` sampled every 0.5 s (the last sample).
	ws_run() {
		local key=$1 c0 c1 poller="" k
		shift
		: >"$W/a.log"
		c0=$(rdv_counters)
		rm -f "$SCRATCH"/st.*
		if [[ -n ${SENDER:-} ]]; then
			(for ((k = 0; ; k++)); do
				"$SRMUDP" status --json >"$SCRATCH/st.$k" 2>/dev/null
				sleep 0.5
			done) &
			poller=$!
		fi
		"$@"
		[[ -n $poller ]] && { kill "$poller"; wait "$poller" 2>/dev/null; }
		c1=$(rdv_counters)
		if grep -q "path: relayed through the rendezvous server over the WebSocket" "$W/a.log" &&
			! grep -q "path: direct" "$W/a.log"; then
			rec "$key.path_ws" 1
		else
			rec "$key.path_ws" 0
			note "  $key: a's session did not go (only) over the WebSocket (a's log: $OUT/$key.a.log)"
			cp "$W/a.log" "$OUT/$key.a.log"
		fi
		python3 - "${SENDER:-}" "${RECEIVER:-}" "$SCRATCH" "$c0" "$c1" <<-'EOF' | kv "$key"
		import glob, json, sys
		sender, receiver, d, c0, c1 = sys.argv[1:]
		a = dict(x.split("=", 1) for x in c0.split())
		b = dict(x.split("=", 1) for x in c1.split())
		for k in ("ws_queue_drops", "ws_throttled", "relay_limited", "relay_packets",
		          "rdv_udp_rcvbuf_errors", "b_udp_rcvbuf_errors"):
		    if k in a and k in b:
		        print(f"{'' if k.startswith(('rdv', 'b_')) else 'rdv_'}{k} {int(b[k]) - int(a[k])}")
		best = None
		for f in glob.glob(d + "/st.*"):
		    try:
		        docs = json.load(open(f))
		    except ValueError:
		        continue
		    for e in docs:
		        if e.get("key") != sender:
		            continue
		        for p in e.get("peers", []):
		            if p.get("key") == receiver and (best is None or
		                                              p["packets_out"] > best[1]["packets_out"]):
		                best = (e, p)
		if best:
		    e, p = best
		    for k in ("packets_out", "packets_retransmitted", "packets_lost"):
		        print(f"snd_{k} {p[k]}")
		    print(f"snd_ws_queue_drops {e['relay_ws']['queue_drops']}")
		    print(f"snd_path {p['path']['kind']}")
		EOF
	}
	# shellcheck disable=SC2046
	redis_ws() {
		: >"$SCRATCH/redis.csv"
		lab_exec a env $(ws_env "$PBR") timeout 120 "$SRMUDP" run -- redis-benchmark -h b -p 6480 \
			-t set,get -n 20000 -c 1 -P 1 --csv >"$SCRATCH/redis.csv" 2>>"$LOG"
	}
	# shellcheck disable=SC2046
	ttfb_ws() {
		: >"$SCRATCH/ttfb"
		lab_exec a env $(ws_env "$PBE") timeout 60 "$SRMUDP" run -- \
			python3 "$root/tests/bench/latency.py" ttfb b 7200 11 >"$SCRATCH/ttfb" 2>>"$LOG"
	}
	# The first session of a fresh a process waits 1.5 s of UDP silence
	# before the WebSocket: iperf3's control connection absorbs it, and -O 1
	# omits the first second of data.
	for ((i = 0; i < RUNS; i++)); do
		SENDER=$PA RECEIVER=$PBI ws_run relay.fwd.ws iperf ws relay.fwd.ws "$SECS" -O 1
		iperf socat relay.fwd.socat "$SECS" -O 1
		SENDER=$PBI RECEIVER=$PA ws_run relay.rev.ws iperf ws relay.rev.ws "$SECS" -O 1 -R
		iperf socat relay.rev.socat "$SECS" -O 1 -R
		for who in ws socat; do
			if [[ $who == socat ]]; then
				out=$(lab_exec a timeout 120 redis-benchmark -h "$RDV4" -p 6479 -t set,get -n 20000 -c 1 -P 1 --csv 2>>"$LOG")
			else
				ws_run relay.redis redis_ws
				out=$(<"$SCRATCH/redis.csv")
			fi
			redis_rec relay.redis "$who" <<<"$out"
		done
	done
	note "relay: time to first byte, UDP dropped"
	for ((i = 0; i < TTFB_RUNS; i++)); do
		lab_exec a timeout 60 python3 "$root/tests/bench/latency.py" ttfb "$RDV4" 7001 11 2>>"$LOG" |
			kv relay.ttfb.socat
		ws_run relay.ttfb.ws ttfb_ws
		kv relay.ttfb.ws <"$SCRATCH/ttfb"
		# From the engine's start (before main()) to the session, by a's log.
		awk '
			function ms(ts) { split(substr(ts, 12, 12), t, ":"); return (t[1] * 3600 + t[2] * 60 + t[3]) * 1000 }
			/engine started/ { t0 = ms($1); next } # (the last: pyenv execs shims first)
			t0 && /session established/ { printf "engine_to_session_ms %.1f\n", ms($1) - t0; exit }' \
			"$W/a.log" | kv relay.ttfb.ws
	done
	ip netns exec "$(lab_ns nata)" nft delete table inet srmblock
fi

if want gate; then
	# Issue 17: a session relayed by a gate (`srmudp gate` on rdv) against
	# the same session direct, on the same hosts in the same run.  With no
	# NAT in this lab, a and b would reach each other: the inet router drops
	# UDP between their networks while the gate carries them, and lets it
	# through for the direct runs.  The gate's own time goes into CPU/GB.
	note "gate: one stream and redis -c 1 through srmudp gate on rdv vs direct"
	RDV4=$(lab_addr rdv v4)
	GATE_ADDR=$RDV4:4500
	PG=$("$SRMUDP" keygen "$W/g.key")
	PBG=$("$SRMUDP" keygen "$W/bg.key")
	PBG2=$("$SRMUDP" keygen "$W/bg2.key")
	lab_bg rdv env SRMUDP_KEY="$W/g.key" SRMUDP_LISTEN="$GATE_ADDR" \
		SRMUDP_PEERS="a=$PA,b=$PBG,b2=$PBG2" SRMUDP_LOG=info "$SRMUDP" gate
	GATE_PID=$LAB_LAST_PID
	srm_wait_log "$LAB_LAST_LOG" "gate on UDP port" 5 || note "the gate did not start"
	# gate_env PEERKEY: a's client through the gate, b being that key's server.
	gate_env() { echo SRMUDP_KEY="$W/a.key" SRMUDP_LISTEN=0 SRMUDP_PEERS="b=$1,gate=$PG@$GATE_ADDR" \
		SRMUDP_GATES=gate SRMUDP_LOG=info SRMUDP_LOG_FILE="$W/ga.log"; }
	GB_ENV=(SRMUDP_PEERS="a=$PA,gate=$PG@$GATE_ADDR" SRMUDP_GATES=gate SRMUDP_LOG=info)
	lab_bg b env SRMUDP_KEY="$W/bg.key" "${GB_ENV[@]}" SRMUDP_LOG_FILE="$W/bg.log" \
		"$SRMUDP" run -- iperf3 -s -p 5402
	lab_bg b env SRMUDP_KEY="$W/bg2.key" "${GB_ENV[@]}" SRMUDP_LOG_FILE="$W/bg2.log" \
		"$SRMUDP" run -- redis-server --port 6580 --save '' --appendonly no --protected-mode no
	for p in 5402 6580; do lab_wait_port b tcp "$p" 10 || note "port $p did not open on b"; done
	for k in bg bg2; do
		srm_wait_log "$W/$k.log" "registered; our public" 10 || note "b's $k server did not register"
	done
	# The floor under any relay on these hosts: the same engines through
	# udp_forward on rdv (no crypto, no parsing, batches of 64), each side
	# given the forwarder's port as the other's endpoint.
	lab_bg rdv "$BUILD/lab/udp_forward" "$RDV4" 5500 5501
	FWD_PID=$LAB_LAST_PID
	PBP=$("$SRMUDP" keygen "$W/bp.key")
	lab_bg b env SRMUDP_KEY="$W/bp.key" SRMUDP_PEERS="a=$PA@$RDV4:5501" SRMUDP_LOG=info \
		SRMUDP_LOG_FILE="$W/bp.log" "$SRMUDP" run -- iperf3 -s -p 5502
	lab_wait_port b tcp 5502 10 || note "port 5502 did not open on b"
	# gate_run KEY CMD...: CMD through the gate with a's log fresh;
	# records KEY.path_gate (1: relayed by the gate, never direct).
	gate_run() {
		local key=$1
		shift
		: >"$W/ga.log"
		"$@"
		if grep -q "peer=b: path: relayed through" "$W/ga.log" &&
			! grep -q "peer=b: path: direct" "$W/ga.log"; then
			rec "$key.path_gate" 1
		else
			rec "$key.path_gate" 0
			note "  $key: a's session did not go (only) through the gate (a's log: $OUT/$key.a.log)"
			cp "$W/ga.log" "$OUT/$key.a.log"
		fi
	}
	# shellcheck disable=SC2046
	redis_gate() {
		lab_exec a env $(gate_env "$PBG2") timeout 120 "$SRMUDP" run -- redis-benchmark -h b -p 6580 \
			-t set,get -n 20000 -c 1 -P 1 --csv >"$SCRATCH/redis.csv" 2>>"$LOG"
	}
	for ((i = 0; i < RUNS; i++)); do
		lab_udp_a_b off
		gate_run gate.fwd.gate iperf gate gate.fwd.gate "$SECS" -O 1
		gate_run gate.rev.gate iperf gate gate.rev.gate "$SECS" -O 1 -R
		iperf plain gate.fwd.plain "$SECS" -O 1
		iperf plain gate.rev.plain "$SECS" -O 1 -R
		: >"$SCRATCH/redis.csv"
		gate_run gate.redis redis_gate
		redis_rec gate.redis gate <"$SCRATCH/redis.csv"
		lab_udp_a_b on
		iperf ours gate.fwd.direct "$SECS" -O 1
		iperf ours gate.rev.direct "$SECS" -O 1 -R
		# shellcheck disable=SC2046
		out=$(lab_exec a env $(cli_env 4001) timeout 120 "$SRMUDP" run -- \
			redis-benchmark -h b -p 6380 -t set,get -n 20000 -c 1 -P 1 --csv 2>>"$LOG")
		redis_rec gate.redis direct <<<"$out"
	done
	lab_udp_a_b on
	lab_stop "$GATE_PID"
	lab_stop "$FWD_PID"
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
