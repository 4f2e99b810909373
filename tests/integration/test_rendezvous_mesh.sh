#!/usr/bin/env bash
# test_rendezvous_mesh.sh — several rendezvous servers sharing one Redis
# (issue 18 item 11), with real programs in the NAT lab (tests/lab/lab.sh):
#
#      rdv: redis-server 127.0.0.1:6390 (inside rdv only)
#           S1 198.18.0.2:3478   S2 198.18.0.2:3479   (nothing on :3477)
#            |                    |
#      a --(nata, symmetric)--+   +--(natb, symmetric)-- b
#
# Both NATs symmetric, and b's router drops UDP between a and b (a's
# router's IPv4 address, a's own IPv6 address), both ways: punching
# cannot work, so every byte goes through the relay.  a lists "3477
# (dead), S1, S2", b only S2.
#   1. a gives up on the dead server after 3 s and registers on S1; redis-cli
#      on a reaches redis on b (1 MiB value, sha256 equal) through S1 and S2:
#      S1 wraps a's relayed packets for S2 (MESH), S2 hands them to b;
#   2. S1 stops while a pings b once a second over one connection: a moves
#      to S2 and the connection carries on;
#   3. 200 MESH packets forged by a host that is not a server of the store
#      (unknown server ids, no valid MAC) are dropped and counted.
#
# Exit 0 pass, 1 fail, 77 skipped (not root / no namespaces / programs).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
srm_lab --shim
srm_require_tools redis-server redis-cli python3

lab_up --nat-a symmetric --nat-b symmetric
srm_lab_keys
RDV4=$(lab_addr rdv v4)
S1=$RDV4:3478 S2=$RDV4:3479 DEAD=$RDV4:3477
ip netns exec "$(lab_ns natb)" nft -f - <<EOF || fail "cannot keep the two NATs apart"
table inet srmapart {
	chain in {
		type filter hook prerouting priority -300; policy accept;
		ip saddr $(lab_addr nata v4) meta l4proto udp drop
		ip daddr $(lab_addr nata v4) meta l4proto udp drop
		ip6 saddr $(lab_addr a v6) meta l4proto udp drop
		ip6 daddr $(lab_addr a v6) meta l4proto udp drop
	}
}
EOF

lab_bg rdv redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no --dir "$work"
lab_wait_port rdv tcp 6390 || { fail "redis-server did not start"; srm_finish; }
# server NAME ADDR: a server sharing the store; its pid in NAME_pid, its
# output (log and counters) in NAME_log.
server() {
	lab_bg rdv "$SRMUDP" rendezvous --listen "$2" --store redis://127.0.0.1:6390 \
		--relay-rate 64M --log-level info
	printf -v "$1_pid" %s "$LAB_LAST_PID"
	printf -v "$1_log" %s "$LAB_LAST_LOG"
	srm_wait_log "$LAB_LAST_LOG" "listening on $2" 5 || fail "server $1 did not start"
}
server s1 "$S1"
server s2 "$S2"
# stat NAME COUNTER: one counter of server NAME (SIGUSR1).
stat() {
	local pid=$1_pid log=$1_log
	srm_rdv_stats "${!pid}" "${!log}" | sed -n "s/^$2=//p"
}

ENV_A=(SRMUDP_KEY="$work/a.key" SRMUDP_PEERS="b=$pub_b" SRMUDP_RENDEZVOUS="$DEAD,$S1,$S2"
       SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/a.log" SRMUDP_CONNECT_TIMEOUT=30s)
ENV_B=(SRMUDP_KEY="$work/b.key" SRMUDP_PEERS="a=$pub_a" SRMUDP_RENDEZVOUS="$S2"
       SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/b.log" SRMUDP_EXPOSE=6379)
on_a() { lab_exec a env "${ENV_A[@]}" timeout 120 "$SRMUDP" run -- "$@"; }

lab_bg b env "${ENV_B[@]}" "$SRMUDP" run -- redis-server --port 6379 --bind 127.0.0.1 \
	--save '' --appendonly no --protected-mode no
lab_wait_port b tcp 6379 10 || fail "redis on b did not start"
srm_wait_log "$work/b.log" "registered; our public" 10 || fail "b did not register on S2"

# --- 1 ------------------------------------------------------------------------
echo "-- 1. failover from a dead server; the relay joins a (S1) and b (S2)"
head -c $((1 << 20)) /dev/urandom | base64 -w0 >"$work/value"
got=$(on_a redis-cli -h b -x SET big <"$work/value" 2>&1)
check "redis-cli SET of a 1 MiB value answered ($got)" test "$got" = OK
check "a gave up on the dead server and tried S1" \
	has "$work/a.log" "rendezvous: ${DEAD//./\\.} does not answer; trying ${S1//./\\.}"
check "a registered on S1" has "$work/a.log" "rendezvous: registered; our public address"
grep -E "path:" "$work/a.log" | head -3 | sed -E 's/^[0-9-]+T([0-9:.]+)Z srmudp\[[0-9]+\] /    a: \1 /'
check "the session is relayed (both NATs symmetric)" \
	has "$work/a.log" "path: relayed through the rendezvous server"
on_a redis-cli -h b --raw GET big >"$work/back" 2>&1
check "GET gives the 1 MiB value back (sha256 equal)" \
	test "$(head -c $((4 << 20)) "$work/back" | tr -d '\n' | sha256sum)" = "$(sha256sum <"$work/value")"
check "S1 relays a's packets through b's server" has "$s1_log" "relaying .* \(through its server\)"
# Issue 18 item 6: the direct attempts fail, the relay carries the
# connection; the program's stderr (where warnings go by default) stays
# clean.
got=$(lab_exec a env SRMUDP_KEY="$work/a.key" SRMUDP_PEERS="b=$pub_b" SRMUDP_RENDEZVOUS="$S1" \
	timeout 60 "$SRMUDP" run -- redis-cli -h b PING 2>"$work/quiet.err")
check "relayed first connection, default logging: PONG ($got), nothing on stderr" \
	test "$got" = PONG -a ! -s "$work/quiet.err"
[[ -s $work/quiet.err ]] && sed 's/^/    stderr: /' "$work/quiet.err"
out=$(stat s1 mesh_out) in=$(stat s2 mesh_in)
echo "    S1 mesh_out=${out:-?}, S2 mesh_in=${in:-?}"
check "S1 sent MESH packets (mesh_out=$out)" test "${out:-0}" -gt 500
check "S2 delivered them (mesh_in=$in)" test "${in:-0}" -gt 500

# --- 2 ------------------------------------------------------------------------
echo "-- 2. S1 stops mid-session: a moves to S2, the connection carries on"
: >"$work/a.log"
lab_bg a env "${ENV_A[@]}" "$SRMUDP" run -- redis-cli -h b -r 40 -i 1 PING
pinger=$LAB_LAST_PID pings=$LAB_LAST_LOG
srm_wait_log "$pings" PONG 20 || fail "the pinger got no PONG"
lab_stop "$s1_pid"
t0=$SECONDS
stopped=$(grep -c PONG "$pings")
wait_done() { ! kill -0 "$pinger" 2>/dev/null; }
for _ in $(seq 60); do wait_done && break; sleep 1; done
total=$(grep -c PONG "$pings")
grep -E "path|does not answer|registered" "$work/a.log" |
	sed -E 's/^[0-9-]+T([0-9:.]+)Z srmudp\[[0-9]+\] /    a: \1 /' | head -12
echo "    PONGs: $stopped before S1 stopped, $total in all (40 asked, 1 s apart);" \
	"the rest took $((SECONDS - t0)) s"
check "no ping waited long (the rest took $((SECONDS - t0)) s for $((40 - stopped)))" \
	test $((SECONDS - t0)) -le $((40 - stopped + 20))
check "a noticed S1 was gone and moved to S2" \
	has "$work/a.log" "rendezvous: ${S1//./\\.} does not answer; trying ${S2//./\\.}"
check "the pings went on after S1 stopped ($((total - stopped)) more)" \
	test "$((total - stopped))" -ge 20
check "the pinger ended cleanly (no error line)" not grep -qi "error\|reset" "$pings"

# --- 3 ------------------------------------------------------------------------
echo "-- 3. MESH packets from a stranger are dropped and counted"
bad0=$(stat s2 mesh_bad)
lab_exec inet python3 - "$RDV4" 3479 "$pub_b" <<'PY'
import base64, os, socket, struct, sys
host, port, key = sys.argv[1], int(sys.argv[2]), base64.urlsafe_b64decode(sys.argv[3] + "=")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(200):
    # WIRE_MESH, version 1 | server id | time | target b | sender | inner | MAC
    pkt = bytes([10, 1, 0, 0]) + struct.pack("<QQ", i + 1, 0) + key + os.urandom(32 + 120 + 16)
    s.sendto(pkt, (host, port))
PY
sleep 0.5
bad1=$(stat s2 mesh_bad)
echo "    S2 mesh_bad ${bad0:-?} -> ${bad1:-?}"
check "S2 counted the forged MESH packets" test "$((${bad1:-0} - ${bad0:-0}))" -ge 190
check "b's redis still answers" test "$(on_a redis-cli -h b PING 2>&1)" = PONG

srm_finish "$work/a.log" "$work/b.log" "$s1_log" "$s2_log"
