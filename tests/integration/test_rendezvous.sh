#!/usr/bin/env bash
# test_rendezvous.sh: `srmudp rendezvous` on loopback, with real sockets.
#
#   redis-server 127.0.0.1:R  (private to this test: no disk, random port)
#        |            |
#   S1 127.0.0.1:P1   S2 127.0.0.1:P2      two rendezvous servers sharing
#      [::1]:P1                            their records through Redis
#
# Peers are `srmudp rendezvous probe` clients (core/rdv_client.c over a
# UDP socket).  Checks: registration and reflexive address (v4 and v6),
# lookup across servers with the punch request delivered by the other
# server, not-found, relay (v6 -> v4), amplification of an unauthenticated
# REGISTER, counters on SIGUSR1 and at exit, records in Redis, survival of
# a Redis outage, and argument errors.
#
# Exit 0 pass, 1 fail, 77 skipped (no redis-server or python3).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${SRM_BUILD:-$root/build}
SRM="$build/srmudp"
for c in redis-server redis-cli python3; do
	if ! command -v "$c" >/dev/null 2>&1; then
		echo "SKIP: $c is missing (run: make deps)"
		exit 77
	fi
done
[[ -x $SRM ]] || { echo "FAIL: $SRM is not built"; exit 1; }

tmp=$(mktemp -d /tmp/srm-rdv.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

checks=0 failures=0
expect() {
	local name=$1
	shift
	checks=$((checks + 1))
	if "$@"; then
		echo "  ok    $name"
	else
		echo "  FAIL  $name"
		failures=$((failures + 1))
	fi
}
has() { grep -Eq -- "$2" "$1"; }
not() { ! "$@"; }
wait_for() { # FILE PATTERN [SECONDS]
	local i
	for ((i = 0; i < ${3:-5} * 20; i++)); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
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

"$SRM" rendezvous --listen "127.0.0.1:$P1" --listen "[::1]:$P1" --store "redis://127.0.0.1:$R" \
	--log-level debug >"$tmp/s1.out" 2>"$tmp/s1.log" &
s1=$!
pids+=("$s1")
"$SRM" rendezvous --listen "127.0.0.1:$P2" --store "redis://127.0.0.1:$R" \
	>"$tmp/s2.out" 2>"$tmp/s2.log" &
s2=$!
pids+=("$s2")
expect "server 1 listens (v4 and v6)" wait_for "$tmp/s1.log" "listening on \[::1\]:$P1"
expect "server 2 listens" wait_for "$tmp/s2.log" "listening on 127.0.0.1:$P2"

for k in a b c; do "$SRM" keygen "$tmp/$k.key" >"$tmp/$k.pub"; done
A=$(<"$tmp/a.pub") B=$(<"$tmp/b.pub") C=$(<"$tmp/c.pub")

echo "-- lookup across two servers sharing Redis"
"$SRM" rendezvous probe --server "127.0.0.1:$P2" --key "$tmp/b.key" \
	--candidate 10.9.8.7:4000 --stay 6 >"$tmp/b.out" 2>&1 &
bp=$!
pids+=("$bp")
expect "b registers on server 2" wait_for "$tmp/b.out" "^registered reflexive=127\.0\.0\.1:[0-9]+$"
b_refl=$(sed -n 's/^registered reflexive=//p' "$tmp/b.out")
"$SRM" rendezvous probe --server "127.0.0.1:$P1" --key "$tmp/a.key" --lookup "$B" \
	>"$tmp/a.out" 2>&1
expect "a (server 1) finds b: reflexive first, then its candidate" \
	has "$tmp/a.out" "^peer $B candidates=$b_refl,10\.9\.8\.7:4000$"
expect "b is told to punch towards a (through server 2)" \
	wait_for "$tmp/b.out" "^punch-request $A candidates=127\.0\.0\.1:[0-9]+$"
expect "server 1 left a note, server 2 delivered it" \
	wait_for "$tmp/s1.log" "lookup by $A for $B: found"
expect "records are in Redis" \
	test "$(redis-cli -p "$R" --scan --pattern 'srmudp:rdv:r:*' | wc -l)" -ge 2

echo "-- not found"
"$SRM" rendezvous probe --server "127.0.0.1:$P1" --key "$tmp/a.key" --lookup "$C" \
	>"$tmp/a2.out" 2>&1
expect "unknown key: notfound" has "$tmp/a2.out" "^notfound $C$"

echo "-- relay (IPv6 sender, IPv4 receiver, one server)"
"$SRM" rendezvous probe --server "127.0.0.1:$P1" --key "$tmp/c.key" --stay 5 \
	>"$tmp/c.out" 2>&1 &
pids+=("$!")
expect "c registers on server 1" wait_for "$tmp/c.out" "^registered"
"$SRM" rendezvous probe --server "[::1]:$P1" --key "$tmp/a.key" --lookup "$C" \
	--relay-to "$C" --message "hello through the relay" >"$tmp/a3.out" 2>&1
expect "a registers over IPv6" has "$tmp/a3.out" "^registered reflexive=\[::1\]:[0-9]+$"
expect "c receives a's packet, named as from a" \
	wait_for "$tmp/c.out" "^relayed $A bytes=27 text=hello through the relay$"

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
expect "short REGISTER: no answer" has "$tmp/amp.out" "^short 7 0$"
expect "padded REGISTER: a CHALLENGE no larger" \
	awk '$1 == "padded" { exit !($3 > 0 && $3 <= $2) }' "$tmp/amp.out"

echo "-- counters"
kill -USR1 "$s1"
expect "SIGUSR1 prints counters" wait_for "$tmp/s1.out" "^rendezvous stats: .*auth_ok=[1-9]"
expect "relay counted" has "$tmp/s1.out" "relay_packets=1 "
expect "note counted" has "$tmp/s1.out" "notes_sent=1 "

echo "-- Redis goes away: the servers keep serving"
kill "$redis_pid"
wait "$redis_pid" 2>/dev/null
"$SRM" rendezvous probe --server "127.0.0.1:$P1" --key "$tmp/b.key" --lookup "$A" \
	>"$tmp/b2.out" 2>&1
expect "registration still answered without the store" has "$tmp/b2.out" "^registered"
expect "lookup answered (not found) without the store" has "$tmp/b2.out" "^notfound $A$"
expect "server 1 still running" kill -0 "$s1"

echo "-- exit"
kill -TERM "$s1" "$s2"
wait "$s1"
rc1=$?
wait "$s2"
expect "server 1 exits 0 on SIGTERM" test "$rc1" -eq 0
expect "counters printed at exit, store errors counted" \
	has "$tmp/s1.out" "^rendezvous stats: store=redis://127\.0\.0\.1:$R .*store_errors=[1-9]"
expect "server 2 delivered the punch note" has "$tmp/s2.out" "punches=1 notes_sent=0 notes_received=1 "

echo "-- argument errors"
"$SRM" rendezvous --listen nonsense >/dev/null 2>"$tmp/e1" </dev/null
expect "bad listen address: usage error, quoted" \
	eval "[[ $? -eq 2 ]] && grep -q '\"nonsense\"' '$tmp/e1'"
"$SRM" rendezvous --listen "127.0.0.1:$P1" --store "redis://127.0.0.1:$R" \
	>/dev/null 2>"$tmp/e2" </dev/null
expect "unreachable Redis: refuses to start" \
	eval "[[ $? -eq 1 ]] && grep -q 'cannot connect' '$tmp/e2'"
"$SRM" rendezvous --listen "127.0.0.1:$P1" --relay-rate fast >/dev/null 2>"$tmp/e3" </dev/null
expect "bad relay rate: usage error" eval "[[ $? -eq 2 ]]"
"$SRM" rendezvous probe --server "127.0.0.1:$P2" --key "$tmp/a.key" >/dev/null 2>"$tmp/e4"
expect "probe without a server: exit 1, says so" \
	eval "[[ $? -eq 1 ]] && grep -q 'no answer' '$tmp/e4'"

echo "$((checks - failures))/$checks checks passed"
if ((failures > 0)); then
	for f in s1.log s2.log; do echo "== $f"; tail -n 20 "$tmp/$f"; done
	exit 1
fi
exit 0
