#!/usr/bin/env bash
# test_js_lab.sh — the JavaScript package (bindings/js) across the NAT lab
# (tests/lab/lab.sh): a client in a network that lets no UDP out, a
# preloaded web server behind a symmetric NAT, the relay between them.
#
#      rdv: srmudp rendezvous --listen :3478 (UDP) --ws-listen :8080 (TCP)
#            |
#      a --(nata: cone, UDP from a's LAN dropped)--+--(natb: symmetric)-- b
#
#   a: node test/fetch.js, and headless Chromium on test/browser.html
#      (served on a's loopback), both over ws://rdv:8080/srmudp only
#   b: srmudp run -- python3 -m http.server 8000 (key b, lists a's key),
#      registered over UDP through its NAT
#
# Checks: Node fetches a 16 MiB file from b, sha256 equal, no sample of it
# in clear on the relay, b's engine saw the session relayed; a page in
# headless Chromium fetches it too (a skip line without chromium); a's
# UDP really does not get out.
#
# Exit 0 pass, 1 fail, 77 skipped (no root / namespaces, no node, no
# emscripten).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$root/bindings/js/test/env.sh"
srm_lab --shim
checks=0 failures=0
echo "-- build"
js_prepare

lab_up --nat-a cone --nat-b symmetric
srm_lab_keys
RDV4=$(lab_addr rdv v4)
relay=ws://$RDV4:8080/srmudp

# a's router drops UDP from its LAN: a browser's network, as far as srmudp
# can tell (TCP to the relay is all there is).
ip netns exec "$(lab_ns nata)" nft -f - <<EOF
table inet srmjsblock {
	chain block {
		type filter hook forward priority 0; policy accept;
		iifname "lan0" meta l4proto udp drop
	}
}
EOF

lab_bg rdv "$SRMUDP" rendezvous --listen "$RDV4:3478" --ws-listen "$RDV4:8080" --relay-rate 1G \
	--log-level info
srm_wait_log "$LAB_LAST_LOG" "WebSocket on" 5 || fail "the rendezvous server listens"

mkdir -p "$work/www"
head -c $((16 << 20)) /dev/urandom >"$work/www/blob"
want=$(sha256sum <"$work/www/blob" | cut -d' ' -f1)
lab_bg b env SRMUDP_KEY="$work/b.key" SRMUDP_PEERS="js=$pub_a" SRMUDP_RENDEZVOUS="$RDV4:3478" \
	SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/b.log" \
	"$SRMUDP" run -- python3 -m http.server 8000 --bind 0.0.0.0 --directory "$work/www"
lab_wait_port b tcp 8000 10 || fail "b's http.server listens"
srm_wait_log "$work/b.log" "registered; our public" 10 || fail "b registers over UDP"

echo "-- a's UDP does not get out"
# register_from HOST: a REGISTER over UDP from HOST to the server, which
# answers any with a CHALLENGE (docs/NAT.md): "answered" or "silent".
register_from() {
	lab_exec "$1" python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.5)
s.sendto(bytes([8, 1, 0, 0, 0x82, 0, 1, 11, 0xc4, 118]) + bytes(118), (sys.argv[1], 3478))
try:
    s.recvfrom(2048); print("answered")
except socket.timeout:
    print("silent")' "$RDV4"
}
got=$(register_from a)
check "a REGISTER over UDP from a goes unanswered ($got)" test "$got" = silent
got=$(register_from b)
check "... while one from b is answered ($got)" test "$got" = answered

echo "-- Node on a fetches 16 MiB from b through the relay"
t0=$SECONDS
lab_exec a env FETCH_SPY=1 SRMUDP_JS_LOG=1 timeout 90 node "${node_flags[@]}" "$js/test/fetch.js" \
	"$relay" "$work/a.key" "b=$pub_b" b 8000 /blob "$work/node.body" >"$work/node.out" 2>"$work/node.err"
rc=$?
sed 's/^/    /' "$work/node.out" "$work/node.err"
check "fetch.js exits 0" test $rc = 0
check "status 200, 16 MiB, sha256 equal ($((SECONDS - t0)) s)" \
	has "$work/node.out" "^status 200 bytes $((16 << 20)) sha256 $want$"
read -r _ _ _ _ bytes _ clear < <(grep '^relay messages' "$work/node.out")
check "the relay carried at least the file's size" test "${bytes:-0}" -ge $((16 << 20))
check "none of 64 samples of the file crossed the relay in clear" test "${clear:-x}" = 0
check "b's engine answered a's handshake through the relay" has "$work/b.log" "peer=js: .*relayed"

echo "-- a page on a (headless Chromium) fetches it"
if js_have_browser; then
	lab_bg a python3 -m http.server 8100 --bind 127.0.0.1 --directory "$js"
	lab_wait_port a tcp 8100 5 || fail "the page's server on a listens"
	t0=$SECONDS
	lab_exec a timeout 120 node "$js/test/browser_test.js" "http://127.0.0.1:8100/test/browser.html" \
		"$relay" "$work/a.key" "b=$pub_b" b 8000 /blob >"$work/browser.out" 2>"$work/browser.err"
	sed 's/^/    /' "$work/browser.out"
	grep -v 'unexpected operator' "$work/browser.err" | sed 's/^/    /'
	check "the page fetched 16 MiB, sha256 equal ($((SECONDS - t0)) s)" \
		has "$work/browser.out" "^status 200 bytes $((16 << 20)) sha256 $want$"
fi

srm_finish "$work/b.log"
