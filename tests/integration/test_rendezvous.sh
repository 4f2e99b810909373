#!/usr/bin/env bash
# test_rendezvous.sh: `srmudp rendezvous` on loopback, with real sockets.
#
#   redis-server 127.0.0.1:R  (private to this test: no disk, random port)
#        |            |
#   S1 127.0.0.1:P1   S2 127.0.0.1:P2      two rendezvous servers sharing
#      [::1]:P1                            their records through Redis
#
# Peers are `srmudp rendezvous probe` clients (core/protocol/rdv_client.c over a
# UDP socket).  Checks: registration and reflexive address (v4 and v6),
# lookup across servers with the punch request delivered by the other
# server, not-found, relay (v6 -> v4), amplification of an unauthenticated
# REGISTER, counters on SIGUSR1 and at exit, records in Redis, survival of
# a Redis outage, argument errors, and a server key pinned by clients
# (--key; KEY@HOST:PORT).
#
# Exit 0 pass, 1 fail, 77 skipped (no redis-server or python3).
set -uo pipefail

source "$(dirname "$0")/../lib.sh"
srm_require_tools redis-server redis-cli python3
srm_require_built
srm_tmpdir rdv
# Distinct free high ports (bound then released: a small race, retried by
# the caller failing loudly rather than silently).
read -r R P1 P2 < <(python3 - <<'PY'
import socket
socks, ports = [], []
for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
    ports.append(s.getsockname()[1])
print(*ports)
PY
)

redis-server --port "$R" --bind 127.0.0.1 --save '' --appendonly no \
	--dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
for ((i = 0; i < 100; i++)); do
	redis-cli -p "$R" ping >/dev/null 2>&1 && break
	sleep 0.05
done

"$SRMUDP" rendezvous --listen "127.0.0.1:$P1" --listen "[::1]:$P1" --store "redis://127.0.0.1:$R" \
	--log-level debug >"$tmp/s1.out" 2>"$tmp/s1.log" &
s1=$!
pids+=("$s1")
"$SRMUDP" rendezvous --listen "127.0.0.1:$P2" --store "redis://127.0.0.1:$R" \
	>"$tmp/s2.out" 2>"$tmp/s2.log" &
s2=$!
pids+=("$s2")
check "server 1 listens (v4 and v6)" srm_wait_log "$tmp/s1.log" "listening on \[::1\]:$P1"
check "server 2 listens" srm_wait_log "$tmp/s2.log" "listening on 127.0.0.1:$P2"

srm_keygen a b c
A=$(<"$tmp/a.pub") B=$(<"$tmp/b.pub") C=$(<"$tmp/c.pub")

echo "-- lookup across two servers sharing Redis"
"$SRMUDP" rendezvous probe --server "127.0.0.1:$P2" --key "$tmp/b.key" \
	--candidate 10.9.8.7:4000 --stay 6 --allow "$A" >"$tmp/b.out" 2>&1 &
bp=$!
pids+=("$bp")
check "b registers on server 2" srm_wait_log "$tmp/b.out" "^registered reflexive=127\.0\.0\.1:[0-9]+$"
b_refl=$(sed -n 's/^registered reflexive=//p' "$tmp/b.out")
"$SRMUDP" rendezvous probe --server "127.0.0.1:$P1" --key "$tmp/a.key" --lookup "$B" \
	>"$tmp/a.out" 2>&1
check "a (server 1) finds b: reflexive first, then its candidate" \
	has "$tmp/a.out" "^peer $B candidates=$b_refl,10\.9\.8\.7:4000$"
check "b is told to punch towards a (through server 2)" \
	srm_wait_log "$tmp/b.out" "^punch-request $A candidates=127\.0\.0\.1:[0-9]+$"
check "server 1 left a note, server 2 delivered it" \
	srm_wait_log "$tmp/s1.log" "lookup by $A for $B: found"
check "records are in Redis" \
	test "$(redis-cli -p "$R" --scan --pattern 'srmudp:rdv:r:*' | wc -l)" -ge 2

echo "-- not found"
"$SRMUDP" rendezvous probe --server "127.0.0.1:$P1" --key "$tmp/a.key" --lookup "$C" \
	>"$tmp/a2.out" 2>&1
check "unknown key: notfound" has "$tmp/a2.out" "^notfound $C$"

echo "-- relay (IPv6 sender, IPv4 receiver, one server)"
"$SRMUDP" rendezvous probe --server "127.0.0.1:$P1" --key "$tmp/c.key" --stay 5 \
	--allow "$A" >"$tmp/c.out" 2>&1 &
pids+=("$!")
check "c registers on server 1" srm_wait_log "$tmp/c.out" "^registered"
"$SRMUDP" rendezvous probe --server "[::1]:$P1" --key "$tmp/a.key" --lookup "$C" \
	--relay-to "$C" --message "hello through the relay" >"$tmp/a3.out" 2>&1
check "a registers over IPv6" has "$tmp/a3.out" "^registered reflexive=\[::1\]:[0-9]+$"
check "c receives a's packet, named as from a" \
	srm_wait_log "$tmp/c.out" "^relayed $A bytes=27 text=hello through the relay$"

echo "-- consent (issue 18 item 9): a stranger who knows c's key learns nothing, relays nothing"
srm_keygen s
"$SRMUDP" rendezvous probe --server "127.0.0.1:$P1" --key "$tmp/s.key" --lookup "$C" \
	--relay-to "$C" --message "spam from a stranger" >"$tmp/s.out" 2>&1
check "the stranger's lookup of c (registered): notfound, as for an absent key" \
	has "$tmp/s.out" "^notfound $C$"
"$SRMUDP" rendezvous probe --server "127.0.0.1:$P2" --key "$tmp/s.key" --lookup "$C" \
	>"$tmp/s2.out" 2>&1
check "the same through the other server (the consent is in the shared record)" \
	has "$tmp/s2.out" "^notfound $C$"
sleep 0.3
check "c received nothing from the stranger" not has "$tmp/c.out" "stranger"
check "c was not told to punch towards the stranger" not has "$tmp/c.out" "^punch-request $(<"$tmp/s.pub")"

echo "-- amplification: an unpadded REGISTER gets nothing, a padded one no more bytes"
python3 - "$P1" >"$tmp/amp.out" <<'PY'
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
def ask(pkt):
    s.sendto(pkt, ("127.0.0.1", port))
    try:
        return len(s.recv(4096))
    except socket.timeout:
        return 0
short = bytes([8, 1, 0, 0, 0x81, 0, 1])                   # {kind: REGISTER}
padded = bytes([8, 1, 0, 0, 0x82, 0, 1, 11, 0xc4, 118]) + bytes(118)
print("short", len(short), ask(short))
print("padded", len(padded), ask(padded))
PY
check "short REGISTER: no answer" has "$tmp/amp.out" "^short 7 0$"
check "padded REGISTER: a CHALLENGE no larger" \
	awk '$1 == "padded" { exit !($3 > 0 && $3 <= $2) }' "$tmp/amp.out"

echo "-- counters"
kill -USR1 "$s1"
check "SIGUSR1 prints counters" srm_wait_log "$tmp/s1.out" "^rendezvous stats: .*auth_ok=[1-9]"
check "relay counted" has "$tmp/s1.out" "relay_packets=1 "
check "note counted" has "$tmp/s1.out" "notes_sent=1 "
check "refused lookup and relay counted" has "$tmp/s1.out" "lookup_refused=1 relay_refused=1 "

echo "-- Redis goes away: the servers keep serving"
kill "$redis_pid"
wait "$redis_pid" 2>/dev/null
"$SRMUDP" rendezvous probe --server "127.0.0.1:$P1" --key "$tmp/b.key" --lookup "$A" \
	>"$tmp/b2.out" 2>&1
check "registration still answered without the store" has "$tmp/b2.out" "^registered"
check "lookup answered (not found) without the store" has "$tmp/b2.out" "^notfound $A$"
check "server 1 still running" kill -0 "$s1"

echo "-- exit"
kill -TERM "$s1" "$s2"
wait "$s1"
rc1=$?
wait "$s2"
check "server 1 exits 0 on SIGTERM" test "$rc1" -eq 0
check "counters printed at exit, store errors counted" \
	has "$tmp/s1.out" "^rendezvous stats: store=redis://127\.0\.0\.1:$R .*store_errors=[1-9]"
check "server 2 delivered the punch note" has "$tmp/s2.out" "punches=1 notes_sent=0 notes_received=1 "

echo "-- argument errors"
"$SRMUDP" rendezvous --listen nonsense >/dev/null 2>"$tmp/e1" </dev/null
check "bad listen address: usage error, quoted" \
	eval "[[ $? -eq 2 ]] && grep -q '\"nonsense\"' '$tmp/e1'"
"$SRMUDP" rendezvous --listen "127.0.0.1:$P1" --store "redis://127.0.0.1:$R" \
	>/dev/null 2>"$tmp/e2" </dev/null
check "unreachable Redis: refuses to start" \
	eval "[[ $? -eq 1 ]] && grep -q 'cannot connect' '$tmp/e2'"
"$SRMUDP" rendezvous --listen "127.0.0.1:$P1" --relay-rate fast >/dev/null 2>"$tmp/e3" </dev/null
check "bad relay rate: usage error" eval "[[ $? -eq 2 ]]"
"$SRMUDP" rendezvous probe --server "127.0.0.1:$P2" --key "$tmp/a.key" >/dev/null 2>"$tmp/e4"
check "probe without a server: exit 1, says so" \
	eval "[[ $? -eq 1 ]] && grep -q 'no answer' '$tmp/e4'"

echo "-- a pinned server key (issue 18 item 10): SRMUDP_RENDEZVOUS=KEY@HOST:PORT"
srm_keygen k w
K=$(<"$tmp/k.pub") W=$(<"$tmp/w.pub")
"$SRMUDP" rendezvous --listen "127.0.0.1:$P1" --key "$tmp/k.key" >"$tmp/s3.out" 2>"$tmp/s3.log" &
s3=$!
pids+=("$s3")
check "server 3 prints the key clients pin" srm_wait_log "$tmp/s3.log" "server key $K "
"$SRMUDP" rendezvous probe --server "$K@127.0.0.1:$P1" --key "$tmp/a.key" >"$tmp/p1.out" 2>&1
check "a client pinning the server's key registers" has "$tmp/p1.out" "^registered"
"$SRMUDP" rendezvous probe --server "127.0.0.1:$P1" --key "$tmp/b.key" >"$tmp/p2.out" 2>&1
check "an unpinned client registers with a keyed server too" has "$tmp/p2.out" "^registered"
"$SRMUDP" rendezvous probe --server "$W@127.0.0.1:$P1" --key "$tmp/c.key" --lookup "$A" \
	>"$tmp/p3.out" 2>&1
check "a client pinning another key: never registered, no candidates, exit 1" \
	eval "[[ $? -eq 1 ]] && ! grep -q '^registered\|^peer' '$tmp/p3.out' && grep -q 'no answer' '$tmp/p3.out'"
check "the server refused its AUTH" has "$tmp/s3.log" "refused: pinned another server key"
"$SRMUDP" rendezvous probe --server "nokey@127.0.0.1:$P1" --key "$tmp/c.key" >/dev/null 2>"$tmp/e5"
check "a bad server key: usage error, quoted" \
	eval "[[ $? -eq 2 ]] && grep -q 'nokey@' '$tmp/e5'"
"$SRMUDP" rendezvous --listen "127.0.0.1:$P2" --key "$tmp/missing.key" >/dev/null 2>"$tmp/e6" </dev/null
check "a missing --key file: refuses to start, names it" \
	eval "[[ $? -eq 1 ]] && grep -q 'missing.key' '$tmp/e6'"
kill -TERM "$s3"
wait "$s3"

srm_finish "$tmp/s1.log" "$tmp/s2.log"
