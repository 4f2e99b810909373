#!/usr/bin/env bash
# test_transport.sh — the reliable transport across the NAT lab, through the
# preload on both ends (socat), each case checked by sha256:
#
#   1 a large transfer through 5% loss with reordering and duplication
#     (SRM_TRANSPORT_MB, default 1024 MiB)
#   2 the path MTU lowered to 1280 in mid-transfer (ICMP frag-needed works)
#   3 the same with every ICMP dropped: a black hole the engine must find
#   4 a reader that stalls for 30 s: both engines' memory stays bounded,
#     then everything arrives
#   5 IPv6 endpoints over a link whose MTU is 1280, the IPv6 minimum
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
srm_lab

BIG_MB=${SRM_TRANSPORT_MB:-1024}
result() { # OK? TEXT
	if [[ $1 == 0 ]]; then ok "$2"; else fail "$2"; fi
}

lab_up --nat-a cone --nat-b cone
srm_lab_keys
env_a=(SRMUDP_KEY="$work/a.key" SRMUDP_LISTEN=4000 SRMUDP_PEERS="b=$pub_b@$(lab_addr natb v4):4000"
       SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/a.log" SRMUDP_IDLE_TIMEOUT=60s)
env_b=(SRMUDP_KEY="$work/b.key" SRMUDP_LISTEN=4000 SRMUDP_PEERS="a=$pub_a@$(lab_addr nata v4):4000"
       SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/b.log" SRMUDP_IDLE_TIMEOUT=60s)

# send NAME FILE [MID_SECONDS MID_CMD...]: socat a -> b through the preload.
send() {
	local name=$1 file=$2 out=$work/out t0 t1 srv
	shift 2
	rm -f "$out"
	lab_bg b env "${env_b[@]}" "$SRMUDP" run -- socat -u TCP-LISTEN:9000,reuseaddr "OPEN:$out,creat,trunc"
	srv=$LAB_LAST_PID
	lab_wait_port b tcp 9000 10
	if (($#)); then
		(sleep "$1"; "${@:2}") &
		LAB_PIDS+=("$!")
	fi
	t0=$(date +%s.%N)
	lab_exec a env "${env_a[@]}" timeout 900 "$SRMUDP" run -- socat -u "FILE:$file" TCP:b:9000 || true
	t1=$(date +%s.%N)
	for ((i = 0; i < 300; i++)); do kill -0 "$srv" 2>/dev/null || break; sleep 0.1; done
	cmp -s "$file" "$out"
	result $? "$name: $(stat -c %s "$out" 2>/dev/null || echo 0) bytes in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s, sha256 $( cmp -s "$file" "$out" && echo equal || echo DIFFERENT)"
}

# 1: loss, reordering and duplication on a's uplink (both directions).
head -c $((BIG_MB << 20)) /dev/urandom >"$work/big"
lab_impair wa --loss 5 --reorder 5 --dup 2 --delay 2
send "1 ${BIG_MB} MiB through 5% loss, 5% reordering, 2% duplication" "$work/big"
lab_clear_impair wa
rm -f "$work/big"

# 2 and 3: the MTU of a's LAN drops to 1280 mid-transfer; a's NAT router
# answers oversized DF packets with ICMP frag-needed, unless we drop that.
head -c $((48 << 20)) /dev/urandom >"$work/mid"
lab_impair wa --rate 100
lower_mtu() { lab_exec nata ip link set wan0 mtu 1280; lab_exec inet ip link set wa0 mtu 1280; }
send "2 path MTU lowered to 1280 mid-transfer" "$work/mid" 1 lower_mtu
lab_exec nata ip link set wan0 mtu 1500
lab_exec inet ip link set wa0 mtu 1500
for ns in nata inet; do
	lab_exec $ns iptables -I FORWARD -p icmp -j DROP
	lab_exec $ns iptables -I OUTPUT -p icmp -j DROP
done
send "3 ICMP black hole: MTU lowered, frag-needed dropped" "$work/mid" 1 lower_mtu
grep -q "black hole\|path MTU" "$work/a.log" "$work/b.log" 2>/dev/null || true
for ns in nata inet; do
	lab_exec $ns iptables -D FORWARD -p icmp -j DROP
	lab_exec $ns iptables -D OUTPUT -p icmp -j DROP
done
lab_exec nata ip link set wan0 mtu 1500
lab_exec inet ip link set wa0 mtu 1500
lab_clear_impair wa

# 4: b's reader sleeps 30 s before reading 256 MiB; flow control must stop
# a, and neither engine may buffer the data meanwhile.
head -c $((256 << 20)) /dev/urandom >"$work/stall"
cat >"$work/slow.py" <<'EOF'
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9001)); s.listen(1)
c, _ = s.accept()
time.sleep(30)
with open(sys.argv[1], "wb") as f:
    while True:
        d = c.recv(1 << 16)
        if not d:
            break
        f.write(d)
EOF
rm -f "$work/out4"
lab_bg b env "${env_b[@]}" "$SRMUDP" run -- python3 "$work/slow.py" "$work/out4"
rpid=$LAB_LAST_PID
lab_wait_port b tcp 9001 10
lab_bg a env "${env_a[@]}" "$SRMUDP" run -- socat -u "FILE:$work/stall" TCP:b:9001
spid=$LAB_LAST_PID
max_r=0 max_s=0
for ((i = 0; i < 26; i++)); do
	sleep 1
	r=$(rss_kb "$rpid") s=$(rss_kb "$spid")
	((r > max_r)) && max_r=$r
	((s > max_s)) && max_s=$s
done
for ((i = 0; i < 1200; i++)); do kill -0 "$rpid" 2>/dev/null || break; sleep 0.1; done
ok=1
cmp -s "$work/stall" "$work/out4" && ok=0
# The stalled receiver buffers at most a window per stream (16 MiB cap)
# plus the session's, not the 256 MiB on the way.
((max_r < 96 * 1024 && max_s < 96 * 1024)) || ok=1
result $ok "4 reader stalled 30 s: peak RSS receiver $((max_r / 1024)) MiB, sender $((max_s / 1024)) MiB; all 256 MiB arrived afterwards"

# 5: IPv6 on a 1280-byte link: the base packet (1200 bytes of UDP payload)
# must fit, and the MTU search must stay below the link.
head -c $((16 << 20)) /dev/urandom >"$work/v6"
lab_exec nata ip link set wan0 mtu 1280
lab_exec inet ip link set wa0 mtu 1280
env_a=(SRMUDP_KEY="$work/a.key" SRMUDP_LISTEN=4000 SRMUDP_PEERS="b=$pub_b@[$(lab_addr b v6)]:4000"
       SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/a.log")
env_b=(SRMUDP_KEY="$work/b.key" SRMUDP_LISTEN=4000 SRMUDP_PEERS="a=$pub_a@[$(lab_addr a v6)]:4000"
       SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/b.log")
send "5 IPv6 over a 1280-byte link" "$work/v6"
lab_exec nata ip link set wan0 mtu 1500
lab_exec inet ip link set wa0 mtu 1500

srm_recap
srm_finish
