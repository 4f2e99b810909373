#!/usr/bin/env bash
# test_nat_idle.sh — the plainest use: a server started first, a client
# later, both behind NAT with endpoints given by hand, no rendezvous server.
#
#   a (10.1.0.2) -- nata (cone) -- inet -- natb (cone) -- b (10.2.0.2)
#   client: srmudp connect b 9000          server: srmudp serve --expose 9000
#                                                  -> socat echo on 127.0.0.1:9000
#
#   1 the client comes 12 s after the server started: inside the window in
#     which the server's own handshake towards the client had timed out
#     (issue 18, item 3: the first connection was dropped);
#   2 the client comes back after SRM_IDLE_S (default 300) seconds of
#     silence: the server kept its NAT pinhole open for the client's
#     endpoint (issue 15, item 3: unreachable after about 2 minutes idle),
#     so the client's first handshake gets through at once.
# Each visit sends a line and expects it echoed, within a bounded time.
set -euo pipefail
trap 'echo "test_nat_idle: command failed at line $LINENO" >&2' ERR
source "$(dirname "$0")/../lib.sh"
srm_lab
srm_require_tools socat

IDLE_S=${SRM_IDLE_S:-300}

lab_up --nat-a cone --nat-b cone
srm_lab_keys
env_a=(SRMUDP_KEY="$work/a.key" SRMUDP_LISTEN=4000 SRMUDP_PEERS="b=$pub_b@198.18.2.2:4000" SRMUDP_LOG=info)
env_b=(SRMUDP_KEY="$work/b.key" SRMUDP_LISTEN=4000 SRMUDP_PEERS="a=$pub_a@198.18.1.2:4000" SRMUDP_LOG=info)

lab_bg b socat TCP-LISTEN:9000,bind=127.0.0.1,reuseaddr,fork EXEC:cat
lab_wait_port b tcp 9000 10
lab_bg b env "${env_b[@]}" SRMUDP_LOG_FILE="$work/b.log" "$SRMUDP" serve --expose 9000
server_started=$SECONDS
lab_wait_port b udp 4000 10

# visit NAME: one line through the tunnel; ok when echoed within 5 s (a
# handshake that has to wait for a retry takes longer than that).
visit() {
	local name=$1 t0 got took
	t0=$(date +%s.%N)
	got=$(echo "hello $name" | lab_exec a env "${env_a[@]}" SRMUDP_LOG_FILE="$work/a.log" \
		timeout 20 "$SRMUDP" connect b 9000 2>>"$work/a.err" | head -n1) || true
	took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
	if [[ $got == "hello $name" ]] && awk -v t="$took" 'BEGIN { exit !(t < 5) }'; then
		ok "$name: echoed in $took s"
	else
		fail "$name: got \"$got\" after $took s"
		echo "--- a.err"; tail -5 "$work/a.err" 2>/dev/null || true
		echo "--- a.log"; tail -15 "$work/a.log" 2>/dev/null || true
		echo "--- b.log"; tail -15 "$work/b.log" 2>/dev/null || true
	fi
}

sleep $((12 - (SECONDS - server_started)))
visit "1 first client 12 s after the server started"
last=$SECONDS
echo "  ..    silence for $IDLE_S s"
sleep "$IDLE_S"
visit "2 the client back after $((SECONDS - last)) s of silence"
punches=$(lab_exec natb conntrack -L -p udp --dport 4000 2>/dev/null | grep -c 'dport=4000' || true)
echo "  ..    natb UDP flows towards a's port 4000 at the end: $punches"
srm_recap
srm_finish "$work/b.log"
