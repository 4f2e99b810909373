#!/usr/bin/env bash
# test_via.sh — "connect via" (docs/NAT.md): two members that cannot reach
# each other, with no rendezvous server and no gate, talk through a third
# peer that holds sessions with both, in the NAT lab with three NATed hosts
# (tests/lab/lab.sh --nat-c):
#
#      a --(nata: symmetric)--+--(natb: symmetric)-- b
#                             |
#                           (natc: routed) -- c  (listens on 10.3.0.2:4600)
#
# a and b list c with its endpoint and each other without one; c lists
# both without endpoints.  Nobody can tell a where b is, so a's handshake
# goes via c at once.
#   1. a 64 MiB curl from b's http.server (sha256) and a marker file, via
#      c; c forwarded them and a capture at c finds no marker byte;
#   2. SRMUDP_VIA=off at c (its configuration file, reloaded): a new
#      connection fails, and c counts the refusal.
#
# Exit 0 pass, 1 fail, 77 skipped (no root / namespaces / programs).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
srm_lab --shim
srm_require_tools curl tshark

lab_up --nat-a symmetric --nat-b symmetric --nat-c none
srm_lab_keys
pub_c=$("$SRMUDP" keygen "$work/c.key")
C_AT=$(lab_addr c v4):4600

# c: an engine with nothing to serve but forwarding (srmudp serve needs a
# port: 7, where nothing listens).  Its settings in a file, to reload.
printf 'SRMUDP_KEY = %s\nSRMUDP_LISTEN = 0.0.0.0:4600\nSRMUDP_PEERS = a=%s,b=%s\nSRMUDP_LOG = info\nSRMUDP_VIA = on\n' \
	"$work/c.key" "$pub_a" "$pub_b" >"$work/c.conf"
lab_bg c env SRMUDP_CONFIG="$work/c.conf" SRMUDP_LOG_FILE="$work/c.log" "$SRMUDP" serve --expose 7
C_PID=$LAB_LAST_PID C_OUT=$LAB_LAST_LOG
srm_wait_log "$C_OUT" "UDP port 4600" 5

# IPv4 only: the lab's global IPv6 prefixes are routed without NAT, so a
# dual-stack engine would (rightly) find a direct IPv6 path past any NAT.
member_env() { # NAME OTHER OTHER_PUB
	echo SRMUDP_LISTEN=0.0.0.0:0 SRMUDP_KEY="$work/$1.key" SRMUDP_PEERS="$2=$3,c=$pub_c@$C_AT" \
		SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/$1.log"
}
head -c $((64 << 20)) /dev/urandom >"$work/blob"
blob_sum=$(sha256sum <"$work/blob" | cut -d' ' -f1)
echo "plaintext-marker-c41a9e" >"$work/marker"
# shellcheck disable=SC2046
lab_bg b env $(member_env b a "$pub_a") "$SRMUDP" run -- \
	python3 -m http.server 8000 --bind 0.0.0.0 --directory "$work"
lab_wait_port b tcp 8000 10
check "b holds a session with c" srm_wait_log "$work/b.log" "peer=c: session established" 10

echo "-- 1. a reaches b via c"
lab_exec c tshark -q -i eth0 -f "udp port 4600" -w "$work/c.pcap" >/dev/null 2>&1 &
tshark_pid=$!
lab_on_exit "kill $tshark_pid 2>/dev/null"
sleep 1
c_via() { # COUNTER: c's via counter, from srmudp status --json
	"$SRMUDP" status --json 2>/dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e.get("udp_port") == 4600:
        print(e["via"][sys.argv[1]])' "$1"
}
a_curl() { # OUT URL-PATH [VAR=VALUE...]
	local out=$1 path=$2
	shift 2
	# shellcheck disable=SC2046
	lab_exec a env $(member_env a b "$pub_b") "$@" timeout 300 "$SRMUDP" run -- \
		curl -sS --max-time 280 -o "$out" "http://b:8000/$path"
}
a_curl "$work/got" blob
check "curl 64 MiB via c, sha256 equal" test "$(sha256sum <"$work/got" | cut -d' ' -f1)" = "$blob_sum"
a_curl "$work/got-marker" marker
check "...and the marker file" cmp -s "$work/marker" "$work/got-marker"
check "a's session with b went via c" has "$work/a.log" "peer=b: path: via c"
check "b's session with a went via c" has "$work/b.log" "peer=a: path: via c"
kill "$tshark_pid" 2>/dev/null
wait "$tshark_pid" 2>/dev/null
check "the capture at c holds no marker byte" not grep -aq "plaintext-marker-c41a9e" "$work/c.pcap"
fwd=$(c_via forwarded_bytes)
echo "    c forwarded ${fwd:-?} bytes"
check "c's status counts what it forwarded (more than the file)" test "${fwd:-0}" -gt $((64 << 20))

echo "-- 2. SRMUDP_VIA=off at c"
sed -i 's/^SRMUDP_VIA = on$/SRMUDP_VIA = off/' "$work/c.conf"
kill -HUP "$C_PID"
check "c reloaded with SRMUDP_VIA changed" srm_wait_log "$C_OUT" "reloaded: .*SRMUDP_VIA" 5
before=$(c_via refused)
a_curl "$work/got2" marker SRMUDP_CONNECT_TIMEOUT=3s
check "a new connection fails when c refuses to forward" not cmp -s "$work/marker" "$work/got2"
after=$(c_via refused)
check "c counts the refused packets ($before -> $after)" test "${after:-0}" -gt "${before:-0}"
srm_finish
