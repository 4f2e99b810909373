#!/usr/bin/env bash
# test_shim_lab.sh: the preload across the NAT lab — host a and host b each
# behind its own cone NAT (tests/lab/lab.sh), public endpoints exchanged by
# hand (SRMUDP_PEERS names the other side's NAT address, UDP port 4000 on
# both, which the cone NATs preserve):
#
#   a (10.1.0.2) -- NAT A --+-- inet --+-- NAT B -- b (10.2.0.2)
#
#   - the behaviour matrix, client on a, server on b, compared with the
#     same program over kernel TCP on loopback;
#   - the real programs of test_shim_programs.sh (nc, socat, curl 100 MiB,
#     redis, ssh both ways, iperf3 both directions), clients on a, servers
#     on b, all unmodified.
#
# Exit 0 pass, 1 fail, 77 skipped (no root / namespaces).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
srm_lab --shim
source "$root/tests/shim/lib.sh"
source "$root/tests/shim/programs.sh"

lab_up --nat-a cone --nat-b cone
WORK=$LAB_DIR/shim
mkdir -p "$WORK"
chmod 700 "$WORK"

PUB_A=$("$CLI" keygen "$WORK/a.key")
PUB_B=$("$CLI" keygen "$WORK/b.key")
NAT_A=$(lab_addr nata v4)
NAT_B=$(lab_addr natb v4)
ENV_A=(SRMUDP_KEY="$WORK/a.key" SRMUDP_LISTEN=4000 SRMUDP_PEERS="b=$PUB_B@$NAT_B:4000"
       SRMUDP_LOG=info SRMUDP_LOG_FILE="$WORK/engine-a.log")
ENV_B=(SRMUDP_KEY="$WORK/b.key" SRMUDP_LISTEN=4000 SRMUDP_PEERS="a=$PUB_A@$NAT_A:4000"
       SRMUDP_LOG=info SRMUDP_LOG_FILE="$WORK/engine-b.log")
echo "a: 10.1.0.2 behind $NAT_A; b: 10.2.0.2 behind $NAT_B"

# Both engines use UDP 4000: wait until the previous program on that host
# has finished exiting (its exit drain holds the port) before the next.
udp_free() {
	local i
	for ((i = 0; i < 350; i++)); do
		lab_exec "$1" ss -Huln "sport = :4000" 2>/dev/null | grep -q . || return 0
		sleep 0.1
	done
}
A() { udp_free a; lab_exec a env "${ENV_A[@]}" LD_PRELOAD="$SHIM" "$@"; }
A_env() { udp_free a; lab_exec a env "${ENV_A[@]}" "$@"; }
_bg() { local n=$1; shift; lab_bg b "$@"; BG_PID=$LAB_LAST_PID; ln -sf "$LAB_LAST_LOG" "$WORK/$n.log"; }
Bg() { local n=$1; shift; udp_free b; _bg "$n" env "${ENV_B[@]}" LD_PRELOAD="$SHIM" "$@"; }
Bg_env() { local n=$1; shift; udp_free b; _bg "$n" env "${ENV_B[@]}" "$@"; }
Bg_plain() { local n=$1; shift; _bg "$n" "$@"; }
wait_b_port() { lab_wait_port b tcp "$1" "${2:-10}"; }
# b's namespace is fresh, so any port is free; a file keeps the counter
# across the $(...) subshells callers use.
echo 20000 >"$WORK/next-port"
free_port() { local n; n=$(($(<"$WORK/next-port") + 1)); echo "$n" >"$WORK/next-port"; echo "$n"; }

# --- the behaviour matrix across two NATs -----------------------------------
cc -O1 -g -Wall -Wextra -o "$WORK/matrix" "$root/tests/shim/matrix.c" -lpthread || exit 1
M=$WORK/matrix
kport=$(srm_free_port)
"$M" server "$kport" - "$WORK/server-kernel.txt" >"$WORK/kernel-server.log" 2>&1 &
kpid=$!
lab_on_exit "kill $kpid 2>/dev/null"
shim_wait_port "$kport" 10
timeout 300 "$M" client 127.0.0.1 ::1 "$kport" "$(srm_free_port)" >"$WORK/client-kernel.txt" 2>&1
kill "$kpid" 2>/dev/null

mport=$(free_port)
Bg matrix-server "$M" server "$mport" a "$WORK/server-shim.txt"
wait_b_port "$mport" 10 || echo "matrix server on b did not start"
lab_exec a timeout 300 env "${ENV_A[@]}" LD_PRELOAD="$SHIM" "$M" client b b "$mport" "$(free_port)" \
	>"$WORK/client-shim.txt" 2>"$WORK/client-shim.err"
mpid=$BG_PID
check "matrix across two NATs completes" grep -qx done "$WORK/client-shim.txt"
same_client() { diff -u "$WORK/client-kernel.txt" "$WORK/client-shim.txt"; }
same_server() { diff -u <(sort "$WORK/server-kernel.txt") <(sort "$WORK/server-shim.txt"); }
check "matrix client transcript equals kernel TCP's" same_client
check "matrix server transcript equals kernel TCP's" same_server
# (No fork-new check here: a forked child's own engine has a new UDP port,
# and b's NAT drops a first packet from an endpoint b never sent to; that
# needs the rendezvous to punch, see docs/SHIM.md.  test_shim_matrix.sh
# covers it on loopback.)
stop "$mpid"

# --- real programs across two NATs --------------------------------------------
program_checks

check "the session went direct through both NATs (no relay)" \
	grep -q "session established.*direct" "$WORK/engine-a.log"
srm_finish "$WORK/engine-a.log" "$WORK/engine-b.log"
