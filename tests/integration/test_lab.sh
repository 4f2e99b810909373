#!/usr/bin/env bash
# test_lab.sh: proves the NAT lab (tests/lab/lab.sh) does what later tests
# rely on:
#   - NATed hosts reach the rendezvous host and each other's NAT, v4 and v6;
#   - cone NAT keeps one public port per inner socket and drops unsolicited
#     inbound; symmetric NAT picks a port per destination; hole punching
#     works cone<->cone and fails against symmetric;
#   - every impairment kind measurably changes what crosses a link.
# Bounds are generous: the machine is noisy, so only effects that noise
# cannot produce (a minimum RTT below the configured delay is impossible, a
# rate far above a shaped one too) are asserted.
#
# Exit 0 pass, 1 fail, 77 skipped (not root / no namespaces).
set -uo pipefail

source "$(dirname "$0")/../lib.sh"
# shellcheck source=../lab/lab.sh
source "$root/tests/lab/lab.sh"
lab_require_root

PROBE="$root/tests/lab/probe.py"

# Float comparisons for check: ge A B, le A B.
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }

# ping_rtt HOST DEST COUNT [ping args]: print "min avg max received" (ms).
ping_rtt() {
	local host=$1 dest=$2 count=$3
	shift 3
	lab_exec "$host" ping -q -n -c "$count" -i 0.05 -W 2 "$@" "$dest" 2>/dev/null | awk '
		/packets transmitted/ { rx = $4 }
		/^rtt|^round-trip/ { split($4, v, "/"); mn = v[1]; av = v[2]; mx = v[3] }
		END { printf "%s %s %s %d\n", mn + 0, av + 0, mx + 0, rx + 0 }'
}

# reaches HOST DEST [ping args]: one of 3 pings answered.
reaches() {
	local host=$1 dest=$2
	shift 2
	lab_exec "$host" ping -q -n -c 3 -i 0.1 -W 2 "$@" "$dest" >/dev/null 2>&1
}

# udp_burst N PPS: A sends N numbered datagrams to rdv:5000 at PPS; print
# "received distinct inversions" as rdv saw them.
udp_burst() {
	local n=$1 pps=$2 pid log
	lab_bg rdv python3 "$PROBE" recv --port 5000 --secs 30 --idle 1.5
	pid=$LAB_LAST_PID log=$LAB_LAST_LOG
	lab_wait_log "$log" listening || { echo "0 0 0"; return; }
	lab_exec a python3 "$PROBE" send --to "$(lab_addr rdv):5000" --count "$n" --pps "$pps"
	wait "$pid" 2>/dev/null
	awk '$1 != "listening" { n++; if (!seen[$4]++) d++; if (n > 1 && $4 + 0 < prev) inv++; prev = $4 + 0 }
		END { printf "%d %d %d\n", n, d, inv }' "$log"
}

# iperf_mbit: A -> rdv TCP throughput for 2 s, in Mbit/s.
iperf_mbit() {
	lab_exec a timeout 20 iperf3 -c "$(lab_addr rdv)" -t 2 -J 2>/dev/null |
		python3 -c 'import json, sys
try: print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))
except Exception: print(0)'
}

lab_up --nat-a cone --nat-b cone
RDV=$(lab_addr rdv)
RDV6=$(lab_addr rdv v6)
NATA=$(lab_addr nata)
NATB=$(lab_addr natb)

echo "reachability (cone/cone)"
check "A pings the rendezvous host" reaches a "$RDV"
check "B pings the rendezvous host" reaches b "$RDV"
check "A pings B's NAT public address" reaches a "$NATB"
check "B pings A's NAT public address" reaches b "$NATA"
check "the rendezvous host cannot reach A's private address" not reaches rdv "$(lab_addr a)"

echo "cone NAT: mapping and filtering"
lab_bg rdv python3 "$PROBE" recv --port 5001 --port 5002 --echo --secs 15 --idle 4
rdv_pid=$LAB_LAST_PID rdv_log=$LAB_LAST_LOG
lab_wait_log "$rdv_log" listening
lab_bg a python3 "$PROBE" send --bind 40000 --to "$RDV:5001" --to "$RDV:5002" --count 3 --then-recv 3
a_pid=$LAB_LAST_PID a_log=$LAB_LAST_LOG
lab_wait_log "$rdv_log" " 5002 2$" 5
# From an endpoint A never sent to: a home router drops it.
lab_exec rdv python3 "$PROBE" send --bind 5003 --to "$NATA:40000" --count 3
wait "$a_pid" "$rdv_pid"
ports=$(awk '$3 == 5001 || $3 == 5002 { print $1 ":" $2 }' "$rdv_log" | sort -u | paste -sd' ')
check "A's one socket seen as one public address:port toward two destinations ($ports)" \
	test "$ports" == "$NATA:40000"
check "replies from contacted endpoints reach A" grep -q "^$RDV 5001 40000 " "$a_log"
check "unsolicited inbound from another endpoint is dropped" not grep -q "^$RDV 5003 " "$a_log"

echo "hole punching through each other's NAT"
lab_bg a python3 "$PROBE" punch --bind 41000 --peer "$NATB:41000" --secs 8
pa=$LAB_LAST_PID
lab_bg b python3 "$PROBE" punch --bind 41000 --peer "$NATA:41000" --secs 8
pb=$LAB_LAST_PID
wait "$pa"; ra=$?
wait "$pb"; rb=$?
check "cone<->cone: A and B reach each other's NAT public port" test "$ra$rb" == 00

echo "IPv6"
check "A pings the rendezvous host over v6" reaches a "$RDV6"
check "A pings B's global v6 address (ICMP passes the firewall)" reaches a "$(lab_addr b v6)"
lab_bg rdv python3 "$PROBE" recv --port 5006 --secs 10 --idle 2
rdv_pid=$LAB_LAST_PID rdv_log=$LAB_LAST_LOG
lab_wait_log "$rdv_log" listening
lab_exec a python3 "$PROBE" send --to "[$RDV6]:5006" --count 2 --bind 40006
lab_exec a python3 "$PROBE" send --to "[$RDV6]:5006" --count 2 --bind 40007 --src "$(lab_addr a ula)"
wait "$rdv_pid"
check "global v6 crosses untranslated" grep -q "^$(lab_addr a v6) 40006 " "$rdv_log"
check "ULA v6 is masqueraded to the NAT's v6 address" grep -q "^$(lab_addr nata v6) 40007 " "$rdv_log"

echo "symmetric NAT (B)"
lab_nat natb symmetric
lab_bg rdv python3 "$PROBE" recv --port 5011 --port 5012 --secs 10 --idle 2
rdv_pid=$LAB_LAST_PID rdv_log=$LAB_LAST_LOG
lab_wait_log "$rdv_log" listening
lab_exec b python3 "$PROBE" send --bind 40000 --to "$RDV:5011" --to "$RDV:5012" --count 3
wait "$rdv_pid"
p1=$(awk '$3 == 5011 { print $1 ":" $2; exit }' "$rdv_log")
p2=$(awk '$3 == 5012 { print $1 ":" $2; exit }' "$rdv_log")
check "B reaches the rendezvous host through symmetric NAT" test -n "$p1" -a -n "$p2"
check "one socket, two destinations, two public ports ($p1 $p2)" test "$p1" != "$p2"
lab_bg a python3 "$PROBE" punch --bind 42000 --peer "$NATB:42000" --secs 3
pa=$LAB_LAST_PID
lab_bg b python3 "$PROBE" punch --bind 42000 --peer "$NATA:42000" --secs 3
pb=$LAB_LAST_PID
wait "$pa"; ra=$?
wait "$pb"; rb=$?
check "cone<->symmetric: naive punching fails, as it must" test "$ra$rb" == 11

echo "no NAT (A)"
lab_nat nata none
check "the rendezvous host reaches A's address directly" reaches rdv "$(lab_addr a)"
lab_nat nata cone
lab_nat natb cone

echo "impairments"
lab_bg rdv iperf3 -s
lab_bg rdv python3 "$PROBE" tcpserve --port 7000 --secs 240
lab_wait_port rdv tcp 5201
lab_wait_port rdv tcp 7000

read -r mn av mx _ < <(ping_rtt a "$RDV" 10)
check "clean path: RTT avg $av ms < 20 ms" le "$av" 20

lab_impair r --delay 40
read -r mn av mx _ < <(ping_rtt a "$RDV" 10)
check "delay 40 ms each way: ping RTT min $mn ms >= 78" ge "$mn" 78
read -r mn av mx _ < <(ping_rtt a "$RDV6" 5 -6)
check "delay applies to v6: ping RTT min $mn ms >= 78" ge "$mn" 78
tcp=$(lab_exec a python3 "$PROBE" tcping --to "$RDV:7000" --count 3)
check "delay applies to TCP: connect time ${tcp:-none} ms >= 78" ge "${tcp:-0}" 78

lab_impair r --delay 40 --to rdv
read -r mn av mx _ < <(ping_rtt a "$RDV" 5)
lab_clear_impair r
stages=$(lab_impair_stats r | wc -l)
check "delay 40 ms --to rdv: ping RTT min $mn ms >= 39" ge "$mn" 39
check "--to rdv: one direction only ($stages stage ran)" test "$stages" -eq 1

lab_impair r --delay 40 --jitter 30
read -r mn av mx _ < <(ping_rtt a "$RDV" 30)
# Both directions draw from [10, 70] ms: a sum under 70 is likely (about a
# third of pings) and impossible for a fixed 40 ms each way.
check "jitter 30 ms: ping RTT min $mn ms < 70 (fixed delay cannot)" le "$mn" 70
check "jitter 30 ms: ping RTT spread $mn..$mx ms wider than 20" ge "$(awk -v a="$mx" -v b="$mn" 'BEGIN { print a - b }')" 20
lab_clear_impair r

read -r n d inv < <(udp_burst 1000 2000)
check "clean path: $n/1000 datagrams, in order ($inv inversions)" test "$n" -ge 990 -a "$d" -eq "$n" -a "$inv" -eq 0

lab_impair r --loss 20
read -r n d inv < <(udp_burst 1000 2000)
check "loss 20% (iptables statistic): $n/1000 datagrams arrive (600..920)" test "$n" -ge 600 -a "$n" -le 920

lab_impair r --loss 20 --delay 1
read -r n d inv < <(udp_burst 1000 2000)
check "loss 20% (impairment stage): $n/1000 datagrams arrive (600..920)" test "$n" -ge 600 -a "$n" -le 920

lab_impair r --dup 30
read -r n d inv < <(udp_burst 1000 2000)
check "duplication 30%: $n datagrams for $d distinct (1100..1500)" test "$n" -ge 1100 -a "$n" -le 1500 -a "$d" -ge 990

lab_impair r --reorder 20
read -r n d inv < <(udp_burst 1000 2000)
check "reordering 20%: $inv sequence inversions among $n (>= 50)" test "$inv" -ge 50 -a "$d" -ge 990
lab_clear_impair r

base=$(iperf_mbit)
check "clean path: TCP $base Mbit/s > 100" test "$base" -gt 100
lab_impair wa --rate 20
shaped=$(iperf_mbit)
check "rate 20 Mbit/s: TCP $shaped Mbit/s in 5..30" test "$shaped" -ge 5 -a "$shaped" -le 30
lab_clear_impair wa

check "clean path: a 1400-byte DF ping passes" reaches a "$RDV" -M "do" -s 1400
lab_impair wa --mtu 1280
check "MTU 1280: a 1400-byte DF ping fails" not reaches a "$RDV" -M "do" -s 1400
check "MTU 1280: a 1200-byte DF ping passes" reaches a "$RDV" -M "do" -s 1200
check "MTU 1280: a 1400-byte v6 ping fails" not reaches a "$RDV6" -M "do" -s 1400
lab_clear_impair wa

srm_finish
