#!/usr/bin/env bash
# test_js.sh: the JavaScript package (bindings/js: the protocol core in
# WebAssembly, driven from Node) against a C engine, through the WebSocket
# relay, on loopback.
#
#   node test/fetch.js --ws--> srmudp rendezvous --listen U --ws-listen W
#   (wasm core, key "js")                 |  relay (RELAY packets, sealed)
#                                         | udp
#                          srmudp serve --expose H  (C engine, key "b")
#                                         |
#                          python3 -m http.server H (127.0.0.1)
#
#   chromium (test/browser.html) --ws--> the same relay <--udp--
#                          srmudp run -- python3 -m http.server (key "web")
#
# Checks: the wasm core builds (bindings/js/build.sh, from Debian sources)
# and computes docs/PROTOCOL.md's test vectors (test/vectors.c);
# a key written by the JS keygen is the one `srmudp pubkey` reads; the
# client registers over the WebSocket, handshakes with the pinned C peer
# through the relay and fetches a 4 MiB file of random bytes, sha256
# equal; none of 64 samples of that file crossed the relay in clear; a
# compressible text crosses it zstd-compressed;
# 4 streams at once on one client; a C-made key file works in JS; the
# relay restarts mid-transfer and the file still arrives whole; the C peer
# restarts between two streams of one client; 30,000 forged relay
# messages are dropped and the client works on; a gate's WebSocket (its
# key pinned; refused, with the reason, without); wss://
# with a test CA, refused without it; a port
# nothing listens on is ECONNREFUSED; a peer that does not list our key
# and an unknown key are refused by the relay (EHOSTUNREACH, quickly); a
# bad key and a bad relay URL are clear errors; a page in headless
# Chromium (Debian's chromium, npm's playwright-core) fetches the file from
# a preloaded python3 http.server through the relay, sha256 equal (a
# "skip" line without chromium).  About 45 s.
#
# Exit 0 pass, 1 fail, 77 skipped (no node, or no emscripten to build the
# core with: run bindings/js/deps.sh).
set -uo pipefail

source "$(dirname "$0")/../lib.sh"
source "$root/bindings/js/test/env.sh"
srm_require_built
checks=0 failures=0 pids=()
echo "-- build"
js_prepare
srm_tmpdir js
srm_clean_env
srm_private_runtime

echo "-- docs/PROTOCOL.md's test vectors, computed by the wasm build"
if [[ -f $js/build/wasm/vectors.js ]]; then
	doc=$root/docs/PROTOCOL.md
	vec() { sed -n "s/^$1  *\([0-9a-f]\{2,\}\).*/\1/p" "$doc" | head -n1; }
	vectors=("$(vec 'initiator static secret')" "$(vec 'responder static secret')"
		"$(vec 'initiator ephemeral')" "$(vec 'responder ephemeral')"
		"$(vec 'initiator static pub')" "$(vec 'responder static pub')"
		"$(grep -E '^[0-9a-f]{352}$' "$doc" | head -n1)" "$(grep -E '^[0-9a-f]{248}$' "$doc" | head -n1)"
		"$(vec 'T1 initiator -> responder')" "$(vec 'T2 responder -> initiator')"
		"$(grep -A1 '^ChaCha20-Poly1305, pn 0' "$doc" | grep -E '^04[0-9a-f]+$')")
	node "$js/build/wasm/vectors.js" "${vectors[@]}" >"$tmp/vectors.out" 2>&1
	rc=$?
	sed 's/^/  /' "$tmp/vectors.out"
	check "INIT, RESP, transport keys and a DATA packet equal the document's" \
		test $rc = 0 -a "$(grep -c '^  ok' "$tmp/vectors.out")" = 8
else
	skip "test vectors: no wasm build here (emscripten missing)"
fi

echo "-- keys"
jsnode -e 'require(process.argv[1]).keygen(process.argv[2]).then((k) => console.log(k.publicKey))' \
	"$js" "$tmp/js.key" >"$tmp/js.pub" 2>"$tmp/keygen.err"
check "JS keygen writes a 0600 key file" test "$(stat -c %a "$tmp/js.key" 2>/dev/null)" = 600
check "srmudp pubkey reads it: the same public key" \
	test "$("$SRMUDP" pubkey "$tmp/js.key" 2>&1)" = "$(cat "$tmp/js.pub")"
srm_keygen b c other
check "JS publicKey() of a C-made key equals srmudp keygen's" \
	test "$(jsnode -e 'const s = require(process.argv[1]);
		s.publicKey(s.loadKey(process.argv[2])).then(console.log)' "$js" "$tmp/c.key")" = "$(cat "$tmp/c.pub")"

echo "-- relay, C peer, web server"
udp=$(srm_free_port udp) wsp=$(srm_free_port) http=$(srm_free_port)
mkdir "$tmp/www"
head -c $((4 << 20)) /dev/urandom >"$tmp/www/blob"
want=$(sha256sum <"$tmp/www/blob" | cut -d' ' -f1)
# A raised relay rate: the default 1 MiB/s per peer would make this slow.
rdv_start() {
	"$SRMUDP" rendezvous --listen "127.0.0.1:$udp" --ws-listen "127.0.0.1:$wsp" \
		--relay-rate 67108864 --log-level info >>"$tmp/rdv.log" 2>&1 &
	rdv_pid=$!
	pids+=($rdv_pid)
	srm_wait_log "$tmp/rdv.log" "WebSocket on 127.0.0.1:$wsp" 5
}
rdv_start
python3 -m http.server "$http" --bind 127.0.0.1 --directory "$tmp/www" >"$tmp/http.log" 2>&1 &
pids+=($!)
# b_start: the C peer, srmudp serve in front of the web server.
b_start() {
	SRMUDP_KEY="$tmp/b.key" SRMUDP_RENDEZVOUS="127.0.0.1:$udp" SRMUDP_LOG=info \
		SRMUDP_LOG_FILE="$tmp/b.log" SRMUDP_PEERS="js=$(cat "$tmp/js.pub") c=$(cat "$tmp/c.pub")" \
		"$SRMUDP" serve --expose "$http" >>"$tmp/serve.log" 2>&1 &
	b_pid=$!
	pids+=($b_pid)
	srm_wait_log "$tmp/b.log" "rendezvous: registered" 10 ||
		fail "the C peer registers with the rendezvous server"
}
b_start
# tcp_wait PORT: until something accepts on 127.0.0.1:PORT (5 s): a
# python3 server takes a moment to start, and a fetch before that is refused.
tcp_wait() {
	local i
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
tcp_wait "$http" || fail "the web server listens"
relay="ws://127.0.0.1:$wsp/srmudp"
bpeer="b=$(cat "$tmp/b.pub")"

# fetch NAME KEY PEERS PEER PORT PATH [ENV...]: test/fetch.js's output in
# $tmp/NAME.out (stderr in NAME.err), its exit status.
fetch() {
	local name=$1 key=$2 peers=$3 peer=$4 port=$5 path=$6
	shift 6
	env "$@" timeout 60 node "${node_flags[@]}" "$js/test/fetch.js" "$relay" "$tmp/$key" "$peers" \
		"$peer" "$port" "$path" "$tmp/$name.body" >"$tmp/$name.out" 2>"$tmp/$name.err"
}

echo "-- a file through the relay"
t0=$SECONDS
fetch one js.key "$bpeer" b "$http" /blob FETCH_SPY=1 SRMUDP_JS_LOG=1
rc=$?
cat "$tmp/one.out" "$tmp/one.err" | sed 's/^/    /'
check "fetch.js exits 0" test $rc = 0
check "status 200, 4 MiB, sha256 equal to the file's" \
	has "$tmp/one.out" "^status 200 bytes $((4 << 20)) sha256 $want$"
check "registered over the WebSocket, session with b relayed" \
	has "$tmp/one.err" "session established \(relayed\)|handshake answered \(relayed"
check "the C engine answered through the relay" \
	has "$tmp/b.log" "peer=js: .*relayed"
read -r _ _ msgs _ bytes _ clear < <(grep '^relay messages' "$tmp/one.out")
check "the relay carried at least the file's size ($bytes bytes in $msgs messages)" \
	test "${bytes:-0}" -ge $((4 << 20))
check "none of 64 samples of the file crossed the relay in clear" test "${clear:-x}" = 0
echo "    $((SECONDS - t0)) s"

echo "-- a compressible file: zstd in the wasm core"
# Log-like text: zstd (SRMUDP_COMPRESS=auto on both sides) shrinks it
# several times, so the relay carries far less than the file.
python3 -c 'import sys
for i in range(60000):
    sys.stdout.write("2026-12-06T13:%02d:%02d.%03dZ srmudp[%d] info peer=web: request %d served\n"
                     % (i // 3600 % 60, i // 60 % 60, i % 1000, 4000 + i % 7, i))' >"$tmp/www/log.txt"
text_sum=$(sha256sum <"$tmp/www/log.txt" | cut -d' ' -f1)
text_len=$(stat -c %s "$tmp/www/log.txt")
fetch text js.key "$bpeer" b "$http" /log.txt FETCH_SPY=1
sed 's/^/    /' "$tmp/text.out"
check "the text arrives whole (sha256 equal)" has "$tmp/text.out" "^status 200 bytes $text_len sha256 $text_sum$"
read -r _ _ _ _ bytes _ clear < <(grep '^relay messages' "$tmp/text.out")
check "the relay carried less than a third of its $text_len bytes (${bytes:-?})" \
	test "${bytes:-$text_len}" -lt $((text_len / 3))

echo "-- 4 streams at once, C-made key"
# c's key is a C keygen's; b lists c too.
fetch four c.key "$bpeer" b "$http" /blob FETCH_STREAMS=4 FETCH_STATS=1
check "4 concurrent fetches, all sha256 equal" \
	test "$(grep -c "^status 200 bytes $((4 << 20)) sha256 $want$" "$tmp/four.out")" = 4
sed -n 's/^stats /    /p' "$tmp/four.out"
check "peerStats: established, an RTT, at least the 16 MiB received" python3 -c 'import json, sys
s = json.loads(sys.argv[1])
sys.exit(not (s["established"] and s["rttMs"] > 0 and s["streamBytesReceived"] >= 4 << 22
              and s["packetsReceived"] > 0 and s["pmtu"] >= 1200))' "$(sed -n 's/^stats //p' "$tmp/four.out")"
cat "$tmp/four.err" | sed 's/^/    /'

echo "-- the relay restarts mid-transfer"
# The reader takes 1 MiB/s, so the transfer lasts 4 s; the relay is down
# from 1 s to 2 s.  The client reconnects and registers again, the C
# engine registers again on the server's NOTREG hint, the transport
# resends what was lost.
fetch restart js.key "$bpeer" b "$http" /blob FETCH_RATE=1048576 SRMUDP_JS_LOG=1 &
fetch_pid=$!
sleep 1
kill "$rdv_pid"
wait "$rdv_pid" 2>/dev/null
sleep 1
: >"$tmp/rdv.log"
rdv_start
wait "$fetch_pid"
rc=$?
sed 's/^/    /' "$tmp/restart.out" "$tmp/restart.err"
check "the file arrives whole across the restart (sha256 equal)" \
	has "$tmp/restart.out" "^status 200 bytes $((4 << 20)) sha256 $want$"
check "the client reconnected and registered again" \
	test "$(grep -c 'registered$' "$tmp/restart.err")" -ge 2

echo "-- the C peer restarts between two streams of one client"
# Its new instance knows no keys: the client must see the old session end
# (b's CLOSE) and handshake afresh for the second stream.
fetch again js.key "$bpeer" b "$http" /blob FETCH_AGAIN_AFTER="$tmp/go" SRMUDP_JS_LOG=1 &
fetch_pid=$!
srm_wait_log "$tmp/again.out" "^status 200" 30
kill "$b_pid"
wait "$b_pid" 2>/dev/null
: >"$tmp/b.log"
b_start
touch "$tmp/go"
wait "$fetch_pid"
sed 's/^/    /' "$tmp/again.out" "$tmp/again.err"
check "both fetches, before and after the restart, are whole" \
	test "$(grep -c "^status 200 bytes $((4 << 20)) sha256 $want$" "$tmp/again.out")" = 2
check "the client handshook with b's new instance" \
	awk '/reset by the peer/ { r = 1 } r && /session established|handshake answered/ { f = 1 }
		END { exit !f }' "$tmp/again.err"

echo "-- wss:// (TLS) with a test CA"
# A second relay, with TLS, and a C peer (key d) registered with it; Node
# trusts the test CA through NODE_EXTRA_CA_CERTS, as a deployment would
# through its system store.
if command -v openssl >/dev/null 2>&1; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=srmudp test CA" -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$tmp/relay.key" -out "$tmp/relay.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1\n' >"$tmp/san.ext"
	openssl x509 -req -in "$tmp/relay.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
		-days 2 -extfile "$tmp/san.ext" -out "$tmp/relay.pem" 2>/dev/null
	udp2=$(srm_free_port udp) wss=$(srm_free_port)
	"$SRMUDP" rendezvous --listen "127.0.0.1:$udp2" --ws-listen "127.0.0.1:$wss" \
		--tls-cert "$tmp/relay.pem" --tls-key "$tmp/relay.key" --relay-rate 67108864 \
		>"$tmp/rdv2.log" 2>&1 &
	pids+=($!)
	srm_keygen d
	SRMUDP_KEY="$tmp/d.key" SRMUDP_RENDEZVOUS="127.0.0.1:$udp2" SRMUDP_LOG=info \
		SRMUDP_LOG_FILE="$tmp/d.log" SRMUDP_PEERS="js=$(cat "$tmp/js.pub")" \
		"$SRMUDP" serve --expose "$http" >"$tmp/serve2.log" 2>&1 &
	pids+=($!)
	srm_wait_log "$tmp/d.log" "rendezvous: registered" 10 || fail "d registers with the TLS relay"
	relay=wss://127.0.0.1:$wss/srmudp fetch wss js.key "d=$(cat "$tmp/d.pub")" d "$http" /blob \
		NODE_EXTRA_CA_CERTS="$tmp/ca.pem"
	sed 's/^/    /' "$tmp/wss.out" "$tmp/wss.err"
	check "over wss:// the file arrives whole (sha256 equal)" \
		has "$tmp/wss.out" "^status 200 bytes $((4 << 20)) sha256 $want$"
	relay=wss://127.0.0.1:$wss/srmudp fetch wssnoca js.key "d=$(cat "$tmp/d.pub")" d "$http" /blob
	check "without the CA the relay is refused" \
		has "$tmp/wssnoca.err" "relay wss://127.0.0.1:$wss/srmudp: connection closed"
else
	skip "wss://: no openssl"
fi

echo "-- forged relay messages"
# The relay's header carries no MAC: whoever is on the path can inject
# messages.  30,000 forged ones (random, rendezvous-looking, and RELAY
# packets from b with mangled handshakes and DATA) are all dropped, and
# the client still fetches the file.
timeout 60 node "${node_flags[@]}" "$js/test/garbage.js" "$relay" "$tmp/js.key" "$bpeer" b "$http" /blob 30000 \
	>"$tmp/garbage.out" 2>&1
rc=$?
sed 's/^/    /' "$tmp/garbage.out"
check "garbage.js survives and exits 0" test $rc = 0
check "every forged message dropped" has "$tmp/garbage.out" "^forged 30000 dropped 30000$"
check "the client then fetches the file whole" has "$tmp/garbage.out" "^status 200 bytes $((4 << 20)) sha256 $want$"

echo "-- a gate's WebSocket"
# srmudp gate: a member's own rendezvous and relay, which admits only the
# keys it lists, and only when they pin its key (the gate option).
srm_keygen g m
gudp=$(srm_free_port udp) gws=$(srm_free_port)
SRMUDP_KEY="$tmp/g.key" SRMUDP_LISTEN="127.0.0.1:$gudp" SRMUDP_LOG=info SRMUDP_LOG_FILE="$tmp/g.log" \
	SRMUDP_PEERS="js=$(cat "$tmp/js.pub") m=$(cat "$tmp/m.pub")" \
	"$SRMUDP" gate --ws-listen "127.0.0.1:$gws" >"$tmp/gatesrv.out" 2>&1 &
pids+=($!)
srm_wait_log "$tmp/gatesrv.out" "WebSocket on" 5 || fail "the gate listens"
SRMUDP_KEY="$tmp/m.key" SRMUDP_LISTEN=127.0.0.1:0 SRMUDP_GATES=gate SRMUDP_LOG=info \
	SRMUDP_LOG_FILE="$tmp/m.log" \
	SRMUDP_PEERS="js=$(cat "$tmp/js.pub"),gate=$(cat "$tmp/g.pub")@127.0.0.1:$gudp" \
	"$SRMUDP" serve --expose "$http" >"$tmp/serve3.log" 2>&1 &
pids+=($!)
srm_wait_log "$tmp/m.log" "registered" 10 || fail "the member registers with the gate"
gpeers="gate=$(cat "$tmp/g.pub") m=$(cat "$tmp/m.pub")"
relay=ws://127.0.0.1:$gws/srmudp fetch gate js.key "$gpeers" m "$http" /blob FETCH_GATE=gate
sed 's/^/    /' "$tmp/gate.out" "$tmp/gate.err"
check "through the gate's WebSocket the file arrives whole (sha256 equal)" \
	has "$tmp/gate.out" "^status 200 bytes $((4 << 20)) sha256 $want$"
t0=$SECONDS
relay=ws://127.0.0.1:$gws/srmudp fetch nopin js.key "$gpeers" m "$http" /blob
check "without the gate's key pinned: refused, and said why ($((SECONDS - t0)) s)" \
	has "$tmp/nopin.err" "not registered after 10 s: it answers but does not take us"

echo "-- refusals and errors"
closed=$(srm_free_port)
fetch refused js.key "$bpeer" b "$closed" / 
check "a port b does not expose: ECONNREFUSED" has "$tmp/refused.err" "connection refused by the peer \(ECONNREFUSED\)"
t0=$SECONDS
fetch notlisted other.key "$bpeer" b "$http" /
check "b does not list our key: refused at once (EHOSTUNREACH)" \
	has "$tmp/notlisted.err" "peer b is not registered with the relay \(or does not list our key\) \(EHOSTUNREACH\)"
check "... within 5 s" test $((SECONDS - t0)) -le 5
fetch unknown js.key "x=$(cat "$tmp/other.pub")" x "$http" /
check "a key the relay does not know: EHOSTUNREACH" has "$tmp/unknown.err" "peer x is not registered"
fetch badpeer js.key "b=abc" b "$http" /
check "a bad peer key is named" has "$tmp/badpeer.err" 'peers: peer "b": bad key "abc"'
relay=http://127.0.0.1:$wsp/srmudp fetch badurl js.key "$bpeer" b "$http" /
check "an http:// relay URL is refused" has "$tmp/badurl.err" "is not a ws:// or wss:// URL"
relay=ws://127.0.0.1:$closed/srmudp fetch norelay js.key "$bpeer" b "$http" /
check "no relay listening: a clear error" has "$tmp/norelay.err" "relay ws://127.0.0.1:$closed/srmudp: connection closed"
chmod 644 "$tmp/js.key"
fetch openkey js.key "$bpeer" b "$http" /
check "a key file others may read is refused" \
	has "$tmp/openkey.err" "has mode 0644: group or others can access it; refusing it"
chmod 600 "$tmp/js.key"

echo "-- a browser: headless Chromium, a preloaded http.server"
# The page loads the package as any page would (two scripts, the wasm next
# to them); playwright-core only drives the browser.
if js_have_browser; then
	srm_keygen web
	web=$(srm_free_port) page=$(srm_free_port)
	# An unmodified server under the preload (key "web"), as a member
	# behind NAT would run it; --bind 0.0.0.0: reachable by peers.
	SRMUDP_KEY="$tmp/web.key" SRMUDP_RENDEZVOUS="127.0.0.1:$udp" SRMUDP_LOG=info \
		SRMUDP_LOG_FILE="$tmp/web.log" SRMUDP_PEERS="js=$(cat "$tmp/js.pub")" \
		"$SRMUDP" run -- python3 -m http.server "$web" --bind 0.0.0.0 --directory "$tmp/www" \
		>"$tmp/webserver.log" 2>&1 &
	pids+=($!)
	python3 -m http.server "$page" --bind 127.0.0.1 --directory "$js" >"$tmp/page.log" 2>&1 &
	pids+=($!)
	tcp_wait "$page" || fail "the page's web server listens"
	srm_wait_log "$tmp/web.log" "peers may open streams to port $web" 10 &&
		srm_wait_log "$tmp/web.log" "rendezvous: registered" 10 ||
		fail "the preloaded http.server listens and registers with the rendezvous server"
	t0=$SECONDS
	timeout 90 node "$js/test/browser_test.js" "http://127.0.0.1:$page/test/browser.html" "$relay" \
		"$tmp/js.key" "web=$(cat "$tmp/web.pub")" web "$web" /blob >"$tmp/browser.out" 2>"$tmp/browser.err"
	rc=$?
	cat "$tmp/browser.out" | sed 's/^/    /'
	grep -v 'unexpected operator' "$tmp/browser.err" | sed 's/^/    /'
	check "the page fetched the 4 MiB file through the relay, sha256 equal ($((SECONDS - t0)) s)" \
		has "$tmp/browser.out" "^status 200 bytes $((4 << 20)) sha256 $want$"
	check "the preloaded server answered the page's handshake through the relay" \
		has "$tmp/web.log" "peer=js: .*relayed"
fi

srm_finish "$tmp/b.log" "$tmp/rdv.log"
