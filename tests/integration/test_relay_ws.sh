#!/usr/bin/env bash
# test_relay_ws.sh — networks that block UDP: the WebSocket relay
# (SRMUDP_RELAY) in the NAT lab (tests/lab/lab.sh), with real programs.
#
#      rdv: srmudp rendezvous --listen :3478 (UDP) --ws-listen :8080 (TCP)
#            |
#      a --(nata: cone, UDP from a's LAN dropped)--+--(natb: cone)-- b
#
# b registers over UDP as usual; a's UDP never leaves its network, so its
# engine moves to the WebSocket 1.5 s after the server went unanswered and
# the relay joins its two ends (docs/NAT.md, "The WebSocket relay").
#   1. redis-cli, ssh (both ends preloaded) and a 64 MiB curl (sha256), the
#      first reply within 5 s of the engine's start; `srmudp status` says
#      relay-ws; a capture on the relay host finds no application byte;
#   2. UDP allowed again mid-transfer: the session moves to direct, the
#      file arrives whole;
#   3. the relay restarts mid-transfer: the session recovers, file whole;
#   4. only an HTTP proxy (tinyproxy on a's router) leaves a's network:
#      through CONNECT, with SRMUDP_PROXY and with http_proxy;
#   5. wss:// with a test CA (SRMUDP_RELAY_CA), refused without it;
#   6. nginx terminating TLS in front of --ws-listen;
#   7. UDP blocked on both sides: both ends on their own WebSocket;
#   8. a relay that closes every upgrade: the retries back off.
#
# Exit 0 pass, 1 fail, 77 skipped (no root / namespaces / programs).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
srm_lab --shim
srm_require_tools redis-server redis-cli curl tinyproxy nginx openssl tshark

lab_up --nat-a cone --nat-b cone
srm_lab_keys
RDV4=$(lab_addr rdv v4)
NATA_LAN=$(lab_addr nata lan4)
WS_URL=ws://$RDV4:8080/srmudp

# --- the pieces ---------------------------------------------------------------

# block_a MODE: what a's router lets out of a's LAN: all, tcp (UDP
# dropped), none (nothing: only the router's own proxy gets out).
# block_b MODE: the same on b's router.
block_a() { block_lan nata "$1"; }
block_b() { block_lan natb "$1"; }
block_lan() {
	local ns rule=""
	ns=$(lab_ns "$1")
	shift
	ip netns exec "$ns" nft delete table inet srmblock 2>/dev/null
	case $1 in
	all) return 0 ;;
	tcp) rule='iifname "lan0" meta l4proto udp drop' ;;
	none) rule='iifname "lan0" drop' ;;
	esac
	ip netns exec "$ns" nft -f - <<-EOF
	table inet srmblock {
		chain block {
			type filter hook forward priority 0; policy accept;
			$rule
		}
	}
	EOF
}

RDV_PID="" RDV_LOG=""
# relay_start [ARGS...]: the rendezvous server on rdv (UDP 3478), with
# --ws-listen and whatever else ARGS say.
relay_start() {
	lab_bg rdv "$SRMUDP" rendezvous --listen "$RDV4:3478" --relay-rate 1G "$@"
	RDV_PID=$LAB_LAST_PID RDV_LOG=$LAB_LAST_LOG
	srm_wait_log "$RDV_LOG" "WebSocket on" 5
}
relay_stop() { [[ -z $RDV_PID ]] || lab_stop "$RDV_PID"; RDV_PID=""; }

# Both sides name the server both ways; only a's network blocks UDP.
env_a() { echo SRMUDP_KEY="$work/a.key" SRMUDP_PEERS="b=$pub_b" SRMUDP_RENDEZVOUS="$RDV4:3478" \
	SRMUDP_RELAY="$1" SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/a.log"; }
# redis (6379) and sshd (2222) on b listen on 127.0.0.1: exposed by name.
ENV_B=(SRMUDP_KEY="$work/b.key" SRMUDP_PEERS="a=$pub_a" SRMUDP_RENDEZVOUS="$RDV4:3478"
       SRMUDP_RELAY="$WS_URL" SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/b.log"
       SRMUDP_EXPOSE=6379,2222)
# on_a RELAY_URL CMD...: CMD on a, preloaded through srmudp run (the
# timeout outside: a preloaded timeout(1) would be an engine of its own).
on_a() {
	local url=$1
	shift
	# shellcheck disable=SC2046
	lab_exec a env $(env_a "$url") timeout 300 "$SRMUDP" run -- "$@"
}

# ping_b RELAY_URL [VAR=VALUE...]: redis-cli PING from a to b's redis.
ping_b() {
	local url=$1
	shift
	# shellcheck disable=SC2046
	lab_exec a env $(env_a "$url") "$@" timeout 60 "$SRMUDP" run -- redis-cli -h b PING 2>&1
}

# Servers on b, preloaded, one at a time: each process is an engine of its
# own under b's key, and the rendezvous server knows one place per key.
B_PID=""
on_b() { # PORT CMD...: CMD on b, preloaded, until the next on_b
	local port=$1
	shift
	[[ -z $B_PID ]] || lab_stop "$B_PID"
	lab_bg b env "${ENV_B[@]}" "$SRMUDP" run -- "$@"
	B_PID=$LAB_LAST_PID
	lab_wait_port b tcp "$port" 10 || echo "  note: nothing listens on b:$port"
	srm_wait_log "$work/b.log" "registered; our public" 5
}
redis_on_b() { on_b 6379 redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no \
	--protected-mode no; }
web_on_b() { on_b 8000 python3 -m http.server 8000 --bind 0.0.0.0 --directory "$work"; }
head -c $((64 << 20)) /dev/urandom >"$work/blob"
blob_sum=$(sha256sum <"$work/blob" | cut -d' ' -f1)
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$work/hostkey" && ssh-keygen -q -t ed25519 -N '' -f "$work/userkey"
cp "$work/userkey.pub" "$work/authorized_keys"
printf '%s\n' "ListenAddress 127.0.0.1" "HostKey $work/hostkey" \
	"AuthorizedKeysFile $work/authorized_keys" "PasswordAuthentication no" \
	"KbdInteractiveAuthentication no" "PermitRootLogin prohibit-password" "StrictModes no" \
	"UsePAM no" "PidFile none" >"$work/sshd_config"
relay_start --ws-listen "$RDV4:8080"
SSH_OPTS=(-F none -i "$work/userkey" -o IdentitiesOnly=yes -o BatchMode=yes
	  -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
	  -o ConnectTimeout=20)

# ms_between LOG REGEX1 REGEX2: milliseconds from the first line matching
# REGEX1 to the first line after it matching REGEX2 (log timestamps).
ms_between() {
	awk -v a="$2" -v b="$3" '
		function ms(ts) { split(substr(ts, 12, 12), t, ":"); return (t[1] * 3600 + t[2] * 60 + t[3]) * 1000 }
		!t0 && $0 ~ a { t0 = ms($1); next }
		t0 && $0 ~ b { print int(ms($1) - t0); exit }' "$1"
}

# fetch URL OUT [RELAY]: the blob from b's web server, through the relay.
fetch() { on_a "${3:-$WS_URL}" curl -sS --max-time 280 -o "$2" "$1"; }
same_blob() { [[ $(sha256sum <"$1" | cut -d' ' -f1) == "$blob_sum" ]]; }

# --- 1. UDP blocked on a's side -------------------------------------------------
echo "-- 1. UDP dropped by a's NAT: redis, ssh, curl over the WebSocket relay"
block_a tcp
lab_exec rdv tshark -q -i eth0 -f "tcp port 8080" -w "$work/relay.pcap" >/dev/null 2>&1 &
tshark_pid=$!
lab_on_exit "kill $tshark_pid 2>/dev/null"
redis_on_b
: >"$work/a.log"
got=$(on_a "$WS_URL" redis-cli -h b SET secret "plaintext-marker-7f3a9c" 2>&1)
check "redis-cli SET answered over the relay ($got)" test "$got" = OK
first=$(ms_between "$work/a.log" "engine started" "session established|handshake answered")
echo "    first session $first ms after the engine started"
check "first reply path within 5 s of the engine's start" test "${first:-99999}" -lt 5000
check "a's engine moved to the WebSocket after UDP went unanswered" \
	has "$work/a.log" "no answer for 1.5 s over UDP; using the WebSocket relay"
check "the session is relayed over the WebSocket" \
	has "$work/a.log" "path: relayed through the rendezvous server over the WebSocket"
got=$(on_a "$WS_URL" redis-cli -h b GET secret 2>&1)
check "redis-cli GET gives the value back" test "$got" = "plaintext-marker-7f3a9c"
lab_bg a env $(env_a "$WS_URL") "$SRMUDP" run -- redis-cli -h b -r 40 -i 0.2 PING
pinger=$LAB_LAST_PID
sleep 4
"$SRMUDP" status >"$work/status.txt" 2>&1
lab_stop "$pinger"
check "srmudp status shows a's path as relay-ws" has "$work/status.txt" "relay-ws"
check "srmudp status shows the WebSocket link open" has "$work/status.txt" "relay-ws: open"
on_b 2222 /usr/sbin/sshd -D -e -f "$work/sshd_config" -p 2222
got=$(on_a "$WS_URL" ssh "${SSH_OPTS[@]}" -p 2222 root@b 'echo over-the-ws-relay' \
	</dev/null 2>&1)
check "ssh (both ends preloaded) over the relay ($got)" test "$got" = over-the-ws-relay
web_on_b
: >"$work/a.log"
fetch "http://b:8000/blob" "$work/got1"
check "curl 64 MiB over the relay, sha256 equal" same_blob "$work/got1"
kill "$tshark_pid" 2>/dev/null
wait "$tshark_pid" 2>/dev/null
check "the capture on the relay host holds the WebSocket upgrade" \
	grep -aq "Upgrade: websocket" "$work/relay.pcap"
check "...and not one application byte (the redis value)" \
	not grep -aq "plaintext-marker-7f3a9c" "$work/relay.pcap"

# --- 2. UDP becomes allowed mid-transfer ------------------------------------------
echo "-- 2. UDP allowed again mid-transfer: the session goes direct, nothing lost"
lab_impair wa --rate 20
: >"$work/a.log"
(sleep 4; block_a all) &
fetch "http://b:8000/blob" "$work/got2"
check "curl 64 MiB across the move, sha256 equal" same_blob "$work/got2"
check "the session moved from the relay to a direct path" \
	has "$work/a.log" "path: direct to"
moved=$(ms_between "$work/a.log" "path: relayed through" "path: direct to")
echo "    direct ${moved:-?} ms after the session started on the relay"
lab_clear_impair wa

# --- 3. the relay restarts mid-transfer --------------------------------------------
echo "-- 3. the relay restarts mid-transfer"
block_a tcp
lab_impair wa --rate 20
: >"$work/a.log"
fetch "http://b:8000/blob" "$work/got3" &
fetcher=$!
sleep 5
relay_stop
sleep 1
relay_start --ws-listen "$RDV4:8080"
wait "$fetcher"
check "curl 64 MiB across a relay restart, sha256 equal" same_blob "$work/got3"
check "a's engine reconnected the WebSocket" \
	test "$(grep -c 'relay ws://.*: connected' "$work/a.log")" -ge 2
lab_clear_impair wa

# --- 4. only an HTTP proxy leaves a's network ---------------------------------------
echo "-- 4. nothing but tinyproxy (on a's router) leaves a's network"
block_a none
redis_on_b
cat >"$work/tinyproxy.conf" <<EOF
Port 8888
Listen $NATA_LAN
Timeout 600
Allow 10.1.0.0/24
ConnectPort 8080
ConnectPort 8443
LogLevel Info
MaxClients 100
EOF
lab_bg nata tinyproxy -d -c "$work/tinyproxy.conf"
proxy_log=$LAB_LAST_LOG
lab_wait_port nata tcp 8888 5
: >"$work/a.log"
got=$(ping_b "$WS_URL" SRMUDP_PROXY="http://$NATA_LAN:8888")
check "redis-cli through CONNECT (SRMUDP_PROXY): $got" test "$got" = PONG
check "a's engine said it went through the proxy" has "$work/a.log" "connected through http://"
got=$(ping_b "$WS_URL" http_proxy="http://$NATA_LAN:8888")
check "redis-cli through CONNECT (http_proxy, as curl reads it): $got" test "$got" = PONG
check "tinyproxy saw the CONNECTs" has "$proxy_log" "CONNECT"

# --- 5. wss:// with a test CA ---------------------------------------------------------
echo "-- 5. wss:// with a test CA"
block_a tcp
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=srmudp test CA" \
	-keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$RDV4" \
	-keyout "$work/relay.key" -out "$work/relay.csr" 2>/dev/null
printf 'subjectAltName=IP:%s\n' "$RDV4" >"$work/san.ext"
openssl x509 -req -in "$work/relay.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
	-days 2 -extfile "$work/san.ext" -out "$work/relay.pem" 2>/dev/null
relay_stop
relay_start --ws-listen "$RDV4:8443" --tls-cert "$work/relay.pem" --tls-key "$work/relay.key"
WSS_URL=wss://$RDV4:8443/srmudp
: >"$work/a.log"
got=$(ping_b "$WSS_URL" SRMUDP_RELAY_CA="$work/ca.pem")
check "redis-cli over wss:// (test CA pinned): $got" test "$got" = PONG
: >"$work/a.log"
ping_b "$WSS_URL" SRMUDP_CONNECT_TIMEOUT=4s >/dev/null
check "without the CA the relay's certificate is refused" has "$work/a.log" "certificate"

# --- 6. nginx terminating TLS in front of the relay --------------------------------------
echo "-- 6. nginx terminates TLS in front of --ws-listen"
relay_stop
relay_start --ws-listen "127.0.0.1:8080"
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log info;
events { worker_connections 1024; }
http {
	access_log $work/nginx/access.log;
	client_body_temp_path $work/nginx;
	proxy_temp_path $work/nginx;
	fastcgi_temp_path $work/nginx;
	uwsgi_temp_path $work/nginx;
	scgi_temp_path $work/nginx;
	server {
		listen $RDV4:443 ssl;
		ssl_certificate $work/relay.pem;
		ssl_certificate_key $work/relay.key;
		location /srmudp {
			proxy_pass http://127.0.0.1:8080;
			proxy_http_version 1.1;
			proxy_set_header Upgrade \$http_upgrade;
			proxy_set_header Connection "upgrade";
			proxy_read_timeout 3600s;
			proxy_send_timeout 3600s;
		}
	}
}
EOF
lab_bg rdv nginx -c "$work/nginx/nginx.conf"
lab_wait_port rdv tcp 443 5
: >"$work/a.log"
got=$(ping_b "wss://$RDV4/srmudp" SRMUDP_RELAY_CA="$work/ca.pem")
check "redis-cli over wss:// through nginx: $got" test "$got" = PONG
check "nginx passed the upgrade" has "$work/nginx/access.log" '"GET /srmudp HTTP/1.1" 101'

# --- 7. UDP blocked on both sides ---------------------------------------------------------
echo "-- 7. UDP dropped by both NATs: each end on its own WebSocket"
relay_stop
relay_start --ws-listen "$RDV4:8080"
block_a tcp
block_b tcp
: >"$work/b.log"
redis_on_b
srm_wait_log "$work/b.log" "registered over the WebSocket relay" 10
: >"$work/a.log"
got=$(ping_b "$WS_URL")
check "redis-cli with both ends on the WebSocket: $got" test "$got" = PONG
check "b's engine registered over the WebSocket too" \
	has "$work/b.log" "registered over the WebSocket relay"
check "the relay joined two WebSocket clients" has "$RDV_LOG" "relaying"
block_b all

# --- 8. a relay that closes every WebSocket right after the upgrade -----------------------
echo "-- 8. a relay that closes every upgrade: the retries back off"
cat >"$work/closer.py" <<'EOF'
import socket, sys
from wshttp import accept_key, read_head
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
n = 0
while True:
    c, _ = srv.accept()
    head, _ = read_head(c)
    key = next((l.split(":", 1)[1].strip() for l in head.split("\r\n")
                if l.lower().startswith("sec-websocket-key:")), "")
    c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept_key(key) +
               "\r\n\r\n").encode())
    c.close()
    n += 1
    print("upgraded and closed", n, flush=True)
EOF
lab_bg rdv env PYTHONPATH="$root/tests/integration" python3 "$work/closer.py" "$RDV4" 8090
closer_log=$LAB_LAST_LOG
lab_wait_port rdv tcp 8090 5
block_a tcp
ping_b "ws://$RDV4:8090/srmudp" SRMUDP_CONNECT_TIMEOUT=8s >/dev/null
closes=$(grep -c "upgraded and closed" "$closer_log")
echo "    $closes upgrades in about 8 s"
check "the engine reconnected, but with backoff ($closes upgrades, at most 12)" \
	test "$closes" -ge 2 -a "$closes" -le 12

[[ -z $B_PID ]] || lab_stop "$B_PID"
srm_finish "$work/a.log" "$work/b.log" "$RDV_LOG"
