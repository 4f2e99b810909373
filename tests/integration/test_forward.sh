#!/usr/bin/env bash
# test_forward.sh: `srmudp forward [ADDR:]PORT NAME:PORT`, the local TCP
# port forwarder (like ssh -L) for programs that cannot be wrapped.
#   - b: `srmudp serve --expose` in front of a python3 http.server and of
#     redis; a: `srmudp forward` to each;
#   - 50 concurrent curl downloads through one forwarder, sha256 equal;
#   - redis-cli (unwrapped) through the forwarder;
#   - a port the peer does not expose resets the local connection;
#   - SIGTERM ends the forwarder cleanly; bad arguments are usage errors.
# Traffic stays on 127.0.0.1.
#
# Exit 0 pass, 1 fail.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
srm_build "${1:-}"
srm_require_built
srm_tmpdir forward --cd
srm_clean_env

A=$("$SRMUDP" keygen a.key)
B=$("$SRMUDP" keygen b.key)
UDP_B=$(srm_free_port udp)
WEB=$(srm_free_port) REDIS=$(srm_free_port) CLOSED=$(srm_free_port)
FWD_WEB=$(srm_free_port) FWD_REDIS=$(srm_free_port) FWD_CLOSED=$(srm_free_port)
pids=()

mkdir www
head -c $((4 << 20)) /dev/urandom >www/blob
want=$(sha256sum <www/blob | cut -d' ' -f1)
python3 -m http.server "$WEB" --bind 127.0.0.1 --directory www >web.log 2>&1 &
pids+=($!)
have_redis=0
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
	redis-server --port "$REDIS" --bind 127.0.0.1 --save '' --appendonly no >redis.log 2>&1 &
	pids+=($!)
	have_redis=1
fi
SRMUDP_KEY=b.key SRMUDP_LISTEN="127.0.0.1:$UDP_B" SRMUDP_PEERS="a=$A" SRMUDP_LOG=info \
	"$SRMUDP" serve --expose "$WEB,$REDIS" >serve.log 2>&1 &
pids+=($!)
fwd() { # LOCAL TARGET LOG: a forwarder in the background; its pid in $fpid
	SRMUDP_KEY=a.key SRMUDP_PEERS="b=$B@127.0.0.1:$UDP_B" SRMUDP_LOG=info \
		"$SRMUDP" forward "$1" "$2" >"$3" 2>&1 &
	fpid=$!
	pids+=("$fpid")
}
fwd "$FWD_WEB" "b:$WEB" fwd-web.log
web_pid=$fpid
fwd "127.0.0.1:$FWD_CLOSED" "b:$CLOSED" fwd-closed.log
((have_redis)) && fwd "$FWD_REDIS" "b:$REDIS" fwd-redis.log
# until something listens on TCP port $1 of 127.0.0.1 (10 s at most)
wait_port() {
	for _ in $(seq 200); do
		ss -Hltn "sport = :$1" | grep -q . && return 0
		sleep 0.05
	done
	return 1
}
for p in "$WEB" "$FWD_WEB" "$FWD_CLOSED"; do wait_port "$p" || echo "  note: nothing on port $p"; done
((have_redis)) && { wait_port "$REDIS"; wait_port "$FWD_REDIS"; }
srm_wait_log serve.log "exposing" 5

echo "== 50 concurrent connections through one forwarder"
seq 50 | xargs -P 50 -I{} sh -c \
	"curl -sS --max-time 120 -o got.{} http://127.0.0.1:$FWD_WEB/blob || echo fail {} >>curl.err"
good=0
for i in $(seq 50); do
	[[ -f got.$i && $(sha256sum <"got.$i" | cut -d' ' -f1) == "$want" ]] && good=$((good + 1))
done
check "50 concurrent curl downloads of 4 MiB, all sha256 equal ($good of 50)" test "$good" -eq 50
check "one engine carried them all (one session in the forwarder's log)" \
	test "$(grep -c 'session established' fwd-web.log)" -le 1

if ((have_redis)); then
	echo "== redis-cli, not wrapped at all"
	got=$(timeout 20 redis-cli -p "$FWD_REDIS" SET k forwarded >/dev/null && timeout 20 redis-cli -p "$FWD_REDIS" GET k)
	check "redis-cli SET/GET through the forwarder ($got)" test "$got" = forwarded
fi

echo "== a port the peer does not expose"
refused=$(timeout 20 python3 - "$FWD_CLOSED" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(15)
try:
    print("data" if s.recv(10) else "eof")
except ConnectionResetError:
    print("reset")
except socket.timeout:
    print("timeout")
EOF
)
check "the local connection is reset, as a refused port would be ($refused)" test "$refused" = reset
check "the server side logged the refusal" \
	srm_wait_log serve.log "refused a stream to port $CLOSED" 5

echo "== arguments and signals"
"$SRMUDP" forward 80 >out 2>err </dev/null
check "one argument is a usage error (exit 2)" test $? -eq 2
SRMUDP_KEY=a.key SRMUDP_PEERS="b=$B@127.0.0.1:$UDP_B" "$SRMUDP" forward 127.0.0.1:x b:80 >out 2>err
check "a bad local address is a usage error naming it" grep -q '127.0.0.1:x' err
SRMUDP_KEY=a.key SRMUDP_PEERS="b=$B@127.0.0.1:$UDP_B" "$SRMUDP" forward "$(srm_free_port)" c:80 >out 2>err
check "an unknown peer is a configuration error naming it (exit $?)" grep -q 'no peer named "c"' err
kill -TERM "$web_pid"
for _ in $(seq 100); do kill -0 "$web_pid" 2>/dev/null || break; sleep 0.1; done
wait "$web_pid"
check "SIGTERM ends the forwarder with status 0" test $? -eq 0

srm_finish fwd-web.log fwd-closed.log serve.log
