#!/usr/bin/env bash
# test_nat.sh — NAT traversal in the lab (tests/lab/lab.sh), each case with
# an unmodified socat moving random data through the preload on both ends,
# checked by sha256, reporting the path (direct or relayed) and the time.
#
#   1 no NAT                          manual endpoints      direct
#   2 cone NAT on both sides          manual endpoints      direct
#   3 one side symmetric              rendezvous            direct or relayed
#   4 both sides symmetric            rendezvous            relayed
#   5 IPv6 without NAT                manual v6 endpoints   direct
#   6 cone both, peers found by key   rendezvous only       direct
#   7 manual endpoints, b starts 20 s late                  direct
#   8 cone both, both NATs' conntrack flushed mid-transfer  rendezvous
#   9 a's NAT changes its public address mid-transfer       rendezvous
#  10 the rendezvous server restarted mid-transfer          rendezvous
set -euo pipefail
trap 'echo "test_nat: command failed at line $LINENO" >&2' ERR
root=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SRM_BUILD:-$root/build}
SRMUDP=$BUILD/srmudp
# shellcheck source=../lab/lab.sh
source "$root/tests/lab/lab.sh"
lab_require_root
[[ -x $SRMUDP ]] || { echo "FAIL: $SRMUDP not built"; exit 1; }

SIZE_MB=${SRM_NAT_SIZE_MB:-8}
failures=0
report=()

keys() {
	work=$LAB_DIR/w
	mkdir -p "$work"
	chmod 700 "$work"
	pub_a=$("$SRMUDP" keygen "$work/a.key")
	pub_b=$("$SRMUDP" keygen "$work/b.key")
}

start_rendezvous() {
	lab_bg rdv "$SRMUDP" rendezvous --listen 198.18.0.2:3478 --listen '[2001:db8::2]:3478' \
		--relay-rate 64M --log-level info
	rdv_log=$LAB_LAST_LOG
	rdv_pid=$LAB_LAST_PID
	lab_wait_port rdv udp 3478 10
}

# mid_event SECONDS CMD...: run CMD in the background SECONDS after the
# transfer starts (the link is rate-limited so the transfer lasts).
mid_event() {
	mid=("$@")
}

# transfer NAME DELAY_S: socat on b receives, socat on a sends; env_a and
# env_b hold each side's SRMUDP_* settings.  b starts DELAY_S after a.
transfer() {
	local name=$1 delay=${2:-0} blob=$work/blob out=$work/out t0 t1 path srv
	head -c $((SIZE_MB << 20)) /dev/urandom >"$blob"
	rm -f "$out"
	if ((delay == 0)); then
		lab_bg b env "${env_b[@]}" SRMUDP_LOG_FILE="$work/b.log" "$SRMUDP" run -- \
			socat -u TCP-LISTEN:9000,reuseaddr "OPEN:$out,creat,trunc"
		srv=$LAB_LAST_PID
		lab_wait_port b tcp 9000 10
	else
		# a comes first and keeps trying; b appears later.
		(sleep "$delay"; lab_exec b env "${env_b[@]}" SRMUDP_LOG_FILE="$work/b.log" \
			"$SRMUDP" run -- socat -u TCP-LISTEN:9000,reuseaddr "OPEN:$out,creat,trunc") &
		srv=$!
		LAB_PIDS+=("$srv")
	fi
	t0=$(date +%s.%N)
	if ((${#mid[@]})); then
		(sleep "${mid[0]}"; "${mid[@]:1}") &
		LAB_PIDS+=("$!")
	fi
	# socat retries its connect while b is not there yet (bounded).
	lab_exec a env "${env_a[@]}" SRMUDP_LOG_FILE="$work/a.log" timeout 120 "$SRMUDP" run -- \
		socat -u "FILE:$blob" "TCP:b:9000,retry=60,interval=1" || true
	t1=$(date +%s.%N)
	for ((i = 0; i < 300; i++)); do kill -0 "$srv" 2>/dev/null || break; sleep 0.1; done
	# The path the session ended on, from a's log (docs/NAT.md).
	path=$(grep -oE "path: (relayed|direct)" "$work/a.log" 2>/dev/null | tail -1 | cut -d' ' -f2)
	path=${path:-unknown}
	if [[ -f $out ]] && cmp -s "$blob" "$out"; then
		report+=("ok    $name: $path, $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s for ${SIZE_MB} MiB, sha256 equal")
		last_path=$path
		return 0
	fi
	report+=("FAIL  $name: data differs or missing ($(stat -c %s "$out" 2>/dev/null || echo 0) bytes)")
	echo "--- a.log"; tail -20 "$work/a.log" 2>/dev/null || true
	echo "--- b.log"; tail -20 "$work/b.log" 2>/dev/null || true
	failures=$((failures + 1))
	last_path=none
	return 1
}

manual_envs() { # A_ENDPOINT_OF_B B_ENDPOINT_OF_A
	env_a=(SRMUDP_KEY="$work/a.key" SRMUDP_LISTEN=4000 SRMUDP_PEERS="b=$pub_b@$1" SRMUDP_LOG=info)
	env_b=(SRMUDP_KEY="$work/b.key" SRMUDP_LISTEN=4000 SRMUDP_PEERS="a=$pub_a@$2" SRMUDP_LOG=info)
}

# IPv4 only: the lab's global IPv6 prefixes are routed without NAT, so a
# dual-stack engine would (rightly) find a direct IPv6 path past any NAT.
rdv_envs() {
	env_a=(SRMUDP_KEY="$work/a.key" SRMUDP_LISTEN=0.0.0.0:4000 SRMUDP_PEERS="b=$pub_b"
	       SRMUDP_RENDEZVOUS=198.18.0.2:3478 SRMUDP_LOG=info SRMUDP_CONNECT_TIMEOUT=20s)
	env_b=(SRMUDP_KEY="$work/b.key" SRMUDP_LISTEN=0.0.0.0:4000 SRMUDP_PEERS="a=$pub_a"
	       SRMUDP_RENDEZVOUS=198.18.0.2:3478 SRMUDP_LOG=info SRMUDP_CONNECT_TIMEOUT=20s)
}

case_run() { # NAME NAT_A NAT_B SETUP [DELAY]
	# SRM_NAT_CASES="8 9": run only those cases (while developing).
	if [[ -n ${SRM_NAT_CASES:-} && " $SRM_NAT_CASES " != *" ${1%% *} "* ]]; then
		last_path=skipped
		return 0
	fi
	lab_up --nat-a "$2" --nat-b "$3"
	keys
	mid=()
	$4
	transfer "$1" "${5:-0}" || true
	lab_down
}

# Slow the link so a transfer takes several seconds, for mid-transfer events.
slow_rdv() { c_rdv; lab_impair wa --rate 30; }
flush_conntrack() {
	lab_exec nata conntrack -F >/dev/null 2>&1
	lab_exec natb conntrack -F >/dev/null 2>&1
}
move_nat_a() { # a's NAT gets a new public address; the old one goes away
	# (deleting the primary address takes the default route with it)
	lab_exec nata ip addr del 198.18.1.2/24 dev wan0
	lab_exec nata ip addr add 198.18.1.3/24 dev wan0
	lab_exec nata ip route replace default via 198.18.1.1
	lab_exec nata conntrack -F >/dev/null 2>&1
}
restart_rendezvous() {
	lab_stop "$rdv_pid"
	lab_bg rdv "$SRMUDP" rendezvous --listen 198.18.0.2:3478 --relay-rate 64M --log-level info
}
c8() { slow_rdv; mid_event 1.5 flush_conntrack; }
c9() { slow_rdv; mid_event 1.5 move_nat_a; }
c10() { slow_rdv; mid_event 1.5 restart_rendezvous; }

c1() { manual_envs "$(lab_addr b v4):4000" "$(lab_addr a v4):4000"; }
c2() { manual_envs "$(lab_addr natb v4):4000" "$(lab_addr nata v4):4000"; }
c_rdv() { start_rendezvous; rdv_envs; }
c5() { manual_envs "[$(lab_addr b v6)]:4000" "[$(lab_addr a v6)]:4000"; }

case_run "1 no NAT" none none c1
case_run "2 cone NAT both sides" cone cone c2
case_run "3 one side symmetric" symmetric cone c_rdv
case_run "4 both sides symmetric" symmetric symmetric c_rdv
[[ $last_path == relayed || $last_path == skipped ]] || { report+=("FAIL  4: expected the relay, got $last_path"); failures=$((failures + 1)); }
case_run "5 IPv6 without NAT" none none c5
case_run "6 cone both, found through rendezvous" cone cone c_rdv
[[ $last_path == direct || $last_path == skipped ]] || { report+=("FAIL  6: expected a direct path, got $last_path"); failures=$((failures + 1)); }
case_run "7 manual endpoints, b starts 20 s late" cone cone c2 20
SIZE_MB=${SRM_NAT_SLOW_SIZE_MB:-16}
case_run "8 conntrack flushed on both NATs mid-transfer" cone cone c8
case_run "9 a's NAT changes its public address mid-transfer" cone cone c9
case_run "10 rendezvous server restarted mid-transfer" cone cone c10

printf '%s\n' "${report[@]}"
((failures == 0))
