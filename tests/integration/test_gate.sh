#!/usr/bin/env bash
# test_gate.sh — gates (SRMUDP_GATE, SRMUDP_GATES, `srmudp gate`) in the NAT
# lab (tests/lab/lab.sh), with real programs and no rendezvous server:
#
#      rdv: srmudp gate, SRMUDP_LISTEN 198.18.0.2:4500, members a and b,
#           --ws-listen 198.18.0.2:8080
#            |
#      a --(nata)--+                  +--(natb)-- b
#
# Members name the gate in SRMUDP_GATES and list it as a peer with its
# endpoint; they register with it under their pinned keys (docs/NAT.md,
# "Gates").
#   1. symmetric/symmetric: punching cannot work, the gate relays: redis
#      and a 64 MiB curl (sha256); a capture at the gate finds no
#      application byte;
#   2. a key the gate does not list is refused: it registers nowhere and
#      learns nothing, and the gate says why (log, `srmudp status`);
#   3. the gate restarts mid-transfer: the file arrives whole;
#   4. cone/cone with UDP between the NATs blocked, then let through
#      mid-transfer: the session leaves the gate for the direct path within
#      10 s (PATH_REPROBE_MS), file whole; then a fresh connection: the
#      gate introduces a and b, direct;
#   5. UDP blocked in a's network: a reaches b through the gate's
#      WebSocket (64 MiB, sha256);
#   6. b removed from the gate's list (reloaded): its registration goes,
#      and a finds it no more;
#   7. a gate a was never configured with: a second gate (4600, WebSocket
#      8081) that the first one uses is announced to a, which keeps it in
#      its cache file; with the first gate down and UDP blocked, a fresh
#      engine on a reaches b through the second gate's WebSocket;
#   8. members whose first gates differ (a: gate, gate2; b: gate2, gate),
#      behind symmetric NATs: each registers with both, so a finds b at
#      its first gate, which relays; b answers through its registration
#      there (64 MiB, sha256).
#
# Exit 0 pass, 1 fail, 77 skipped (no root / namespaces / programs).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
srm_lab --shim
srm_require_tools redis-server redis-cli curl tshark nft

lab_up --nat-a symmetric --nat-b symmetric
srm_lab_keys
pub_g=$("$SRMUDP" keygen "$work/g.key")
pub_x=$("$SRMUDP" keygen "$work/x.key")
RDV4=$(lab_addr rdv v4)
GATE=$RDV4:4500

GATE_PID="" GATE_LOG=$work/gate.log
# The gate's members in a file, to reload (part 6).
printf 'SRMUDP_PEERS = a=%s b=%s\nSRMUDP_GATE_CACHE = off\n' "$pub_a" "$pub_b" >"$work/gate.conf"
gate_start() {
	lab_bg rdv env SRMUDP_KEY="$work/g.key" SRMUDP_LISTEN="$GATE" SRMUDP_CONFIG="$work/gate.conf" \
		SRMUDP_LOG=info SRMUDP_LOG_FILE="$GATE_LOG" \
		"$SRMUDP" gate --ws-listen "$RDV4:8080"
	GATE_PID=$LAB_LAST_PID GATE_OUT=$LAB_LAST_LOG
	srm_wait_log "$LAB_LAST_LOG" "gate on UDP port 4500; WebSocket on ws://$RDV4:8080" 5
}
gate_stop() { [[ -z $GATE_PID ]] || lab_stop "$GATE_PID"; GATE_PID=""; }

# IPv4 only: the lab's global IPv6 prefixes are routed without NAT, so a
# dual-stack engine would (rightly) find a direct IPv6 path past any NAT.
member_env() { # NAME OTHER OTHER_PUB: a member's environment
	echo SRMUDP_LISTEN=0.0.0.0:0 SRMUDP_KEY="$work/$1.key" SRMUDP_PEERS="$2=$3,gate=$pub_g@$GATE" SRMUDP_GATES=gate \
		SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/$1.log" SRMUDP_GATE_CACHE="$work/$1.gates" $A_RELAY
}
A_RELAY="" # a's SRMUDP_RELAY (part 5)
a_udp() { # on|off: UDP from a's network (parts 5 and 7)
	if [[ $1 == on ]]; then
		ip netns exec "$(lab_ns nata)" nft delete table inet srmblock
		return
	fi
	ip netns exec "$(lab_ns nata)" nft -f - <<-EOF
		table inet srmblock {
			chain block {
				type filter hook forward priority 0; policy accept;
				iifname "lan0" meta l4proto udp drop
			}
		}
	EOF
}
# Servers on b, preloaded, one at a time (one registration per key).
B_PID=""
on_b() { # PORT CMD...
	local port=$1
	shift
	[[ -z $B_PID ]] || lab_stop "$B_PID"
	: >"$work/b.log"
	# shellcheck disable=SC2046
	lab_bg b env $(member_env b a "$pub_a") SRMUDP_EXPOSE=6379 "$SRMUDP" run -- "$@"
	B_PID=$LAB_LAST_PID
	lab_wait_port b tcp "$port" 10 || echo "  note: nothing listens on b:$port"
	srm_wait_log "$work/b.log" "registered; our public" 10
}
on_a() { # CMD...: preloaded on a (timeout outside: it would be an engine itself)
	# shellcheck disable=SC2046
	lab_exec a env $(member_env a b "$pub_b") timeout 300 "$SRMUDP" run -- "$@"
}
head -c $((64 << 20)) /dev/urandom >"$work/blob"
blob_sum=$(sha256sum <"$work/blob" | cut -d' ' -f1)
same_blob() { [[ -f $1 && $(sha256sum <"$1" | cut -d' ' -f1) == "$blob_sum" ]]; }
fetch() { on_a curl -sS --max-time 280 -o "$1" "http://b:8000/blob"; }

gate_start

# --- 1. symmetric/symmetric: relayed by the gate ------------------------------
echo "-- 1. symmetric NATs on both sides: the gate relays"
lab_exec rdv tshark -q -i eth0 -f "udp port 4500" -w "$work/gate.pcap" >/dev/null 2>&1 &
tshark_pid=$!
lab_on_exit "kill $tshark_pid 2>/dev/null"
sleep 1
on_b 6379 redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --protected-mode no
check "b registered with the gate" has "$work/b.log" "registered; our public address is $(lab_addr natb v4)"
: >"$work/a.log"
got=$(on_a redis-cli -h b SET secret "plaintext-marker-5e1d07" 2>&1)
check "redis-cli SET through the gate ($got)" test "$got" = OK
got=$(on_a redis-cli -h b GET secret 2>&1)
check "redis-cli GET gives the value back" test "$got" = "plaintext-marker-5e1d07"
grep -E "path:|hard NAT|candidate" "$work/a.log" | head -4 | cut -c1-150 | sed 's/^/    a: /'
check "a's session is relayed by the gate" has "$work/a.log" "path: relayed through"
on_b 8000 python3 -m http.server 8000 --bind 0.0.0.0 --directory "$work"
fetch "$work/got1"
check "curl 64 MiB through the gate, sha256 equal" same_blob "$work/got1"
kill "$tshark_pid" 2>/dev/null
wait "$tshark_pid" 2>/dev/null
mib=$(tshark -r "$work/gate.pcap" -T fields -e frame.len 2>/dev/null |
	awk '{ s += $1 } END { print int(s / 1048576) }')
check "the capture at the gate holds the relayed file, in and out ($mib MiB)" test "$mib" -ge 128
check "...and not one application byte (the redis value)" \
	not grep -aq "plaintext-marker-5e1d07" "$work/gate.pcap"

# --- 2. a key the gate does not list -------------------------------------------
echo "-- 2. a stranger's key is refused"
lab_exec a "$SRMUDP" rendezvous probe --server "$pub_g@$GATE" --key "$work/x.key" \
	--lookup "$pub_b" >"$work/x.out" 2>&1
check "the stranger does not register (exit $?)" not has "$work/x.out" "^registered"
check "...and learns nothing about b" not has "$work/x.out" "candidates|^peer"
check "the gate refused it as no member" has "$GATE_LOG" "refused: not a member"
"$SRMUDP" status >"$work/status.txt" 2>&1
check "srmudp status shows the gate's counters: the refusal" \
	has "$work/status.txt" "not_member [1-9]"
check "...and the relayed packets" has "$work/status.txt" "relay_packets [1-9][0-9]{4}"

# --- 3. the gate restarts mid-transfer -----------------------------------------
echo "-- 3. the gate restarts mid-transfer"
lab_impair wa --rate 100
fetch "$work/got3" &
fetcher=$!
sleep 3
gate_stop
sleep 1
gate_start
wait "$fetcher"
check "curl 64 MiB across the gate's restart, sha256 equal" same_blob "$work/got3"
lab_clear_impair wa

# --- 4. cone/cone: introduced by the gate, then direct -------------------------
echo "-- 4. a direct path appears mid-transfer: the session leaves the gate"
lab_nat nata cone
lab_nat natb cone
lab_udp_a_b off
on_b 8000 python3 -m http.server 8000 --bind 0.0.0.0 --directory "$work"
lab_impair wa --rate 50
: >"$work/a.log"
fetch "$work/got4a" &
fetcher=$!
srm_wait_log "$work/a.log" "peer=b: path: relayed through" 10
lab_udp_a_b on
opened=$(date +%s%3N)
srm_wait_log "$work/a.log" "peer=b: path: direct to" 15
moved=$(($(date +%s%3N) - opened))
wait "$fetcher"
check "curl 64 MiB across the move, sha256 equal" same_blob "$work/got4a"
check "the session went direct within 10 s of UDP passing ($moved ms, polled)" test "$moved" -le 11000
lab_clear_impair wa
echo "-- 4b. cone NATs: the gate introduces, the session goes direct"
on_b 8000 python3 -m http.server 8000 --bind 0.0.0.0 --directory "$work"
: >"$work/a.log"
fetch "$work/got4"
check "curl 64 MiB, sha256 equal" same_blob "$work/got4"
check "the gate told a where b is" has "$work/a.log" "rendezvous: [0-9]+ candidate"
check "a's session went direct to b's NAT" has "$work/a.log" "path: direct to $(lab_addr natb v4)"

# --- 5. UDP blocked in a's network: the gate's WebSocket -----------------------
echo "-- 5. UDP dropped by a's NAT: through the gate's WebSocket"
a_udp off
A_RELAY="SRMUDP_RELAY=ws://$RDV4:8080/srmudp"
: >"$work/a.log"
fetch "$work/got5"
check "curl 64 MiB over the gate's WebSocket, sha256 equal" same_blob "$work/got5"
check "a registered with the gate over the WebSocket" \
	has "$work/a.log" "registered over the WebSocket relay"
check "the session is relayed over the WebSocket" \
	has "$work/a.log" "path: relayed through the rendezvous server over the WebSocket"

# --- 6. a member removed from the gate's list -----------------------------------
echo "-- 6. b removed from the gate's list, reloaded"
gate_records() {
	"$SRMUDP" status --json 2>/dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e.get("udp_port") == 4500 and "gate" in e:
        print(e["gate"]["counters"]["records"])'
}
before=$(gate_records)
printf 'SRMUDP_PEERS = a=%s\nSRMUDP_GATE_CACHE = off\n' "$pub_a" >"$work/gate.conf"
kill -HUP "$GATE_PID"
check "the gate reloaded, b removed" srm_wait_log "$GATE_OUT" "reloaded: .*removed" 5
after=$(gate_records)
check "b's registration went at once (records $before -> $after)" test "${after:-9}" -lt "${before:-0}"
: >"$work/a.log"
on_a curl -sS --max-time 20 -o "$work/got6" "http://b:8000/blob" 2>/dev/null
check "a reaches b no more" not same_blob "$work/got6"
check "the gate told a that b is not found" has "$work/a.log" "peer=b: rendezvous: the peer is not registered"

# --- 7. a gate announced, cached, and used over its WebSocket ------------------
echo "-- 7. a gate a was never configured with, through its WebSocket"
pub_g2=$("$SRMUDP" keygen "$work/g2.key")
GATE2=$RDV4:4600
lab_bg rdv env SRMUDP_KEY="$work/g2.key" SRMUDP_LISTEN="$GATE2" SRMUDP_GATE_CACHE=off \
	SRMUDP_PEERS="a=$pub_a,b=$pub_b,gate=$pub_g" "$SRMUDP" gate --ws-listen "$RDV4:8081"
srm_wait_log "$LAB_LAST_LOG" "WebSocket on ws://$RDV4:8081" 5
# The first gate uses the second (a member of it, as any engine can be).
gate_stop
printf 'SRMUDP_PEERS = a=%s b=%s gate2=%s@%s\nSRMUDP_GATES = gate2\nSRMUDP_GATE_CACHE = off\n' \
	"$pub_a" "$pub_b" "$pub_g2" "$GATE2" >"$work/gate.conf"
gate_start
# Keys are base64: '+' and '/' are no regex, so these greps are fixed strings.
hasf() { grep -qF -- "$2" "$1"; }
for _ in $(seq 50); do hasf "$GATE_LOG" "learned gate $pub_g2 (with a WebSocket)" && break; sleep 0.2; done
check "the first gate learned the second's WebSocket from it" \
	hasf "$GATE_LOG" "learned gate $pub_g2 (with a WebSocket)"
# b uses the second gate only; a lists it by key alone (no endpoint).
lab_stop "$B_PID"
lab_bg b env SRMUDP_LISTEN=0.0.0.0:0 SRMUDP_KEY="$work/b.key" SRMUDP_PEERS="a=$pub_a,gate2=$pub_g2@$GATE2" \
	SRMUDP_GATES=gate2 SRMUDP_GATE_CACHE=off SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/b.log" \
	"$SRMUDP" run -- python3 -m http.server 8000 --bind 0.0.0.0 --directory "$work"
B_PID=$LAB_LAST_PID
lab_wait_port b tcp 8000 10
a_udp on
A_RELAY=""
a7() { # CMD...: a, with gate2 known by its key only
	lab_exec a env SRMUDP_LISTEN=0.0.0.0:0 SRMUDP_KEY="$work/a.key" \
		SRMUDP_PEERS="b=$pub_b,gate=$pub_g@$GATE,gate2=$pub_g2" SRMUDP_GATES=gate \
		SRMUDP_GATE_CACHE="$work/a.gates" SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/a.log" \
		timeout 120 "$SRMUDP" run -- "$@"
}
rm -f "$work/a.gates"
: >"$work/a.log"
a7 curl -s --max-time 4 -o /dev/null "http://b:8000/blob"
check "a learned the second gate from its own" hasf "$work/a.log" "learned gate $pub_g2 (with a WebSocket)"
check "a's cache file keeps it, with its UDP endpoint and WebSocket port" \
	hasf "$work/a.gates" "$pub_g2 $GATE2 8081 0 "
check "...and the first gate, with its WebSocket port" hasf "$work/a.gates" "$pub_g $GATE 8080 0 "
gate_stop
a_udp off
: >"$work/a.log"
a7 curl -sS --max-time 100 -o "$work/got7" "http://b:8000/blob"
check "with its gate down and UDP blocked, curl 64 MiB through the learned gate, sha256 equal" \
	same_blob "$work/got7"
check "a registered with the learned gate over its WebSocket" \
	has "$work/a.log" "relay ws://$RDV4:8081/srmudp: connected"
check "...and the session is relayed over it" \
	has "$work/a.log" "peer=b: path: relayed through the rendezvous server over the WebSocket"

# --- 8. every gate at once -----------------------------------------------------
echo "-- 8. first gates that differ: each member registers with both"
a_udp on
lab_nat nata symmetric
lab_nat natb symmetric
gate_start
lab_stop "$B_PID"
: >"$work/b.log"
lab_bg b env SRMUDP_LISTEN=0.0.0.0:0 SRMUDP_KEY="$work/b.key" \
	SRMUDP_PEERS="a=$pub_a,gate=$pub_g@$GATE,gate2=$pub_g2@$GATE2" SRMUDP_GATES=gate2,gate \
	SRMUDP_GATE_CACHE=off SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/b.log" \
	"$SRMUDP" run -- python3 -m http.server 8000 --bind 0.0.0.0 --directory "$work"
B_PID=$LAB_LAST_PID
lab_wait_port b tcp 8000 10
check "b registered with gate2, then with its other gate as well" \
	srm_wait_log "$work/b.log" "registered with our gate $GATE as well" 10
"$SRMUDP" status >"$work/status8.txt" 2>&1
check "srmudp status lists b's second registration" \
	has "$work/status8.txt" "also registered with gate $GATE"
: >"$work/a.log"
lab_exec a env SRMUDP_LISTEN=0.0.0.0:0 SRMUDP_KEY="$work/a.key" \
	SRMUDP_PEERS="b=$pub_b,gate=$pub_g@$GATE,gate2=$pub_g2@$GATE2" SRMUDP_GATES=gate,gate2 \
	SRMUDP_GATE_CACHE=off SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/a.log" \
	timeout 120 "$SRMUDP" run -- curl -sS --max-time 100 -o "$work/got8" "http://b:8000/blob"
check "curl 64 MiB between members with different first gates, sha256 equal" same_blob "$work/got8"
check "a's session is relayed by a gate" has "$work/a.log" "peer=b: path: relayed through"
# Whichever side's handshake wins, one of them reaches the other through
# its registration with its second gate.
second_gate_used() {
	has "$work/a.log" "peer=b: path: relayed through our gate $GATE2" ||
		has "$work/b.log" "peer=a: path: relayed through our gate $GATE"
}
check "...through a registration with a member's second gate" second_gate_used
srm_finish
