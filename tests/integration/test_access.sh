#!/usr/bin/env bash
# test_access.sh: who may reach which port (issue 18 item 1, docs/SECURITY.md
# "Access control"), with real programs over loopback.
#
#   a (curl, srmudp connect) ──┐
#                              ├── UDP 127.0.0.1 ──> b: python3 http.server (preloaded),
#   c (curl, srmudp connect) ──┘                        srmudp serve --expose, socat
#
# a and c are two client keys on this host; b lists both, as alice and carol.
#   - http.server bound to 127.0.0.1 on b: curl from a says "Connection
#     refused"; b logs the refusal and counts it (srmudp status); local
#     clients on b still reach it;
#   - the same with SRMUDP_EXPOSE=PORT: a gets the file;
#   - bound to the wildcard, without SRMUDP_EXPOSE: a gets the file;
#   - SRMUDP_ALLOW="a=PORT": a gets the file, c is refused (logged,
#     counted for peer c);
#   - srmudp serve --expose under SRMUDP_ALLOW: the same rule;
#   - a bad SRMUDP_ALLOW stops srmudp run with one line and a hint.
#
# Exit 0 pass, 1 fail.
set -uo pipefail
source "$(dirname "$0")/../shim/lib.sh"
srm_require_tools python3 curl socat
shim_init
srm_private_runtime
shim_pair

PUB_C=$("$CLI" keygen "$WORK/c.key")
UDP_C=$(srm_free_port udp)
PEERS_B="alice=$PUB_A@127.0.0.1:$UDP_A carol=$PUB_C@127.0.0.1:$UDP_C"
ENV_B=(SRMUDP_KEY="$WORK/b.key" SRMUDP_LISTEN="127.0.0.1:$UDP_B" SRMUDP_PEERS="$PEERS_B"
       SRMUDP_LOG=info SRMUDP_LOG_FILE="$WORK/engine-b.log")
ENV_C=(SRMUDP_KEY="$WORK/c.key" SRMUDP_LISTEN="127.0.0.1:$UDP_C"
       SRMUDP_PEERS="b=$PUB_B@127.0.0.1:$UDP_B" SRMUDP_LOG=warn SRMUDP_LOG_FILE="$WORK/engine-c.log")

mkdir -p "$WORK/www"
echo "the file on b" >"$WORK/www/f"

# web NAME PORT BIND [VAR=VALUE...]: python3 http.server on b, preloaded
# by srmudp run, bound to BIND, with extra settings; sets WEB.
web() {
	local name=$1 port=$2 bind=$3
	shift 3
	shim_wait_udp_free "$UDP_B"
	shim_bg "$name" env "${ENV_B[@]}" "$@" "$CLI" run -- \
		python3 -m http.server "$port" --bind "$bind" --directory "$WORK/www"
	WEB=$SHIM_LAST_PID
	shim_wait_port "$port" 10
}
stop_web() {
	kill "$WEB" 2>/dev/null
	wait "$WEB" 2>/dev/null
	shim_wait_udp_free "$UDP_B"
}
# fetch FROM PORT: curl http://b:PORT/f as a or c, preloaded; output in
# WORK/curl.out, errors in WORK/curl.err.
fetch() {
	local -n env_ref="ENV_${1^^}"
	env "${env_ref[@]}" "$CLI" run -- curl -v --max-time 20 "http://b:$2/f" \
		>"$WORK/curl.out" 2>"$WORK/curl.err"
}
got_file() { grep -qx "the file on b" "$WORK/curl.out"; }
# curl -v says why each address failed: "connect to 239.83.0.1 port P
# failed: Connection refused", as for a closed port (ECONNREFUSED).
refused() { grep -q "failed: Connection refused" "$WORK/curl.err"; }
at_least() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= $2)); } # VALUE MIN
# status_refused PEER REASON: b's count of refused streams for PEER ("" for
# the engine's) by REASON, from srmudp status --json.
status_refused() {
	"$CLI" status --json 2>/dev/null | python3 -c '
import json, sys
peer, why = sys.argv[1], sys.argv[2]
for d in json.load(sys.stdin):
    if d.get("pid") != int(sys.argv[3]):
        continue
    if not peer:
        print(d.get("refused", {}).get(why, "none")); sys.exit()
    for p in d.get("peers", []):
        if p.get("name") == peer:
            print(p.get("refused", {}).get(why, "none")); sys.exit()
print("none")' "$1" "$2" "$3"
}
# engine_pid: the preloaded http.server's process (srmudp run execs it).
engine_pid() { echo "$WEB"; }

echo "== a service bound to 127.0.0.1 stays local"
P1=$(srm_free_port)
web web1 "$P1" 127.0.0.1
fetch a "$P1"
grep -E "failed|^curl:" "$WORK/curl.err" | sed 's/^/    /'
check "curl from peer a: Connection refused" refused
check "... and no file" not got_file
check "b logs the refusal (peer alice, port $P1, loopback)" \
	srm_wait_log "$WORK/engine-b.log" "warn peer=alice: refused a stream to port $P1: it is bound to loopback and not in SRMUDP_EXPOSE"
# curl tries b's IPv4 and IPv6 addresses: one refusal each.
check "b counts it: srmudp status, peer alice, refused loopback >= 1" \
	at_least "$(status_refused alice loopback "$(engine_pid)")" 1
check "b counts it: srmudp status, engine, refused loopback >= 1" \
	at_least "$(status_refused "" loopback "$(engine_pid)")" 1
"$CLI" status "$(engine_pid)" | grep -E "refused streams" | head -n2 | sed 's/^/    /'
check "srmudp status prints the refusal" \
	sh -c "'$CLI' status $(engine_pid) | grep -Eq 'refused streams: loopback [1-9]'"
check "local clients on b still reach it" \
	sh -c "curl -sS --max-time 10 http://127.0.0.1:$P1/f | grep -qx 'the file on b'"
stop_web

echo "== SRMUDP_EXPOSE names it"
web web2 "$P1" 127.0.0.1 SRMUDP_EXPOSE="1,$P1"
fetch a "$P1"
check "curl from peer a gets the file (SRMUDP_EXPOSE=1,$P1)" got_file
stop_web

echo "== a service bound to the wildcard is reachable as before"
P2=$(srm_free_port)
web web3 "$P2" 0.0.0.0
fetch a "$P2"
check "curl from peer a gets the file (0.0.0.0, no SRMUDP_EXPOSE)" got_file
fetch c "$P2"
check "... and from peer c" got_file
stop_web

echo "== SRMUDP_ALLOW lets a in and keeps c out"
web web4 "$P2" 0.0.0.0 SRMUDP_ALLOW="alice=$P2"
fetch a "$P2"
check "curl from peer a gets the file (SRMUDP_ALLOW=alice=$P2)" got_file
fetch c "$P2"
grep -E "failed|^curl:" "$WORK/curl.err" | sed 's/^/    /'
check "curl from peer c: Connection refused" refused
check "b logs the refusal (peer c, SRMUDP_ALLOW)" \
	srm_wait_log "$WORK/engine-b.log" "warn peer=carol: refused a stream to port $P2: SRMUDP_ALLOW does not let this peer reach it"
check "b counts it for peer c (refused not-allowed >= 1)" \
	at_least "$(status_refused carol not-allowed "$(engine_pid)")" 1
check "... and none for peer a" test "$(status_refused alice not-allowed "$(engine_pid)")" = 0
stop_web

echo "== srmudp serve --expose: an explicit exposure, SRMUDP_ALLOW applies"
P3=$(srm_free_port)
socat TCP-LISTEN:"$P3",bind=127.0.0.1,reuseaddr,fork SYSTEM:'tr a-z A-Z' 2>"$WORK/socat.err" &
pids+=($!)
shim_wait_port "$P3" 10
shim_bg serve env "${ENV_B[@]}" SRMUDP_ALLOW="carol=$P3 alice=1" "$CLI" serve --expose "$P3"
SERVE=$SHIM_LAST_PID
for _ in $(seq 50); do grep -q '^srmudp serve: UDP port' "$WORK/serve.log" && break; sleep 0.1; done
got=$(echo hello | env "${ENV_C[@]}" timeout 20 "$CLI" connect b "$P3" 2>"$WORK/connect.err")
check "peer c through serve --expose $P3 (SRMUDP_ALLOW=carol=$P3): echoed" test "$got" = HELLO
echo hello | env "${ENV_A[@]}" timeout 20 "$CLI" connect b "$P3" >"$WORK/connect.out" 2>"$WORK/connect.err"
rc=$?
echo "    srmudp connect as a: exit $rc: $(head -c 200 "$WORK/connect.err")"
check "peer a refused: exit 3, 'refused'" \
	sh -c "test $rc -eq 3 && grep -qi refused '$WORK/connect.err'"
check "serve logs the refusal for peer a" \
	srm_wait_log "$WORK/engine-b.log" "warn peer=alice: refused a stream to port $P3: SRMUDP_ALLOW"
check "serve counts it (srmudp status, peer a, not-allowed 1)" \
	test "$(status_refused alice not-allowed "$SERVE")" = 1
kill "$SERVE" 2>/dev/null
wait "$SERVE" 2>/dev/null

echo "== configuration errors"
env "${ENV_B[@]}" SRMUDP_LOG_FILE= SRMUDP_ALLOW="carl=22" "$CLI" run -- true >"$WORK/out" 2>"$WORK/err"
rc=$?
echo "    $(cat "$WORK/err")"
check "SRMUDP_ALLOW naming no peer: exit 1, one line with a hint" \
	sh -c "test $rc -eq 1 && test \$(grep -c . '$WORK/err') -eq 1 && grep -qx 'srmudp run: SRMUDP_ALLOW: unknown peer \"carl\" (did you mean carol?)' '$WORK/err'"
env "${ENV_B[@]}" SRMUDP_LOG_FILE= SRMUDP_EXPOSE="http" "$CLI" run -- true >"$WORK/out" 2>"$WORK/err"
rc=$?
echo "    $(cat "$WORK/err")"
check "SRMUDP_EXPOSE=http: exit 1, one line" \
	sh -c "test $rc -eq 1 && grep -qx 'srmudp run: SRMUDP_EXPOSE: bad port \"http\" (expected 1 to 65535)' '$WORK/err'"

srm_finish "$WORK/engine-b.log" "$WORK/serve.log"
