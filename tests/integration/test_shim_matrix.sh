#!/usr/bin/env bash
# test_shim_matrix.sh: the behaviour matrix (tests/shim/matrix.c) run twice —
# over kernel TCP on loopback, then through the preload between two engines
# (client "a" -> server "b", both preloaded) — and the two transcripts
# compared line by line, client side and server side.  Any difference is a
# behaviour an application could tell apart from TCP.
#
# Exit 0 pass, 1 fail.
set -uo pipefail
source "$(dirname "$0")/../shim/lib.sh"
shim_init

cc -O1 -g -Wall -Wextra -o "$WORK/matrix" "$root/tests/shim/matrix.c" -lpthread || exit 1
M=$WORK/matrix

# --- reference: kernel TCP -------------------------------------------------
port=$(srm_free_port)
closed=$(srm_free_port)
shim_bg kernel-server "$M" server "$port" - "$WORK/server-kernel.txt"
kpid=$SHIM_LAST_PID
shim_wait_port "$port" 10 || { echo "kernel matrix server did not start"; exit 1; }
timeout 300 "$M" client 127.0.0.1 ::1 "$port" "$closed" >"$WORK/client-kernel.txt" 2>"$WORK/client-kernel.err"
check "kernel run completes" grep -qx done "$WORK/client-kernel.txt"
kill "$kpid" 2>/dev/null

# --- through the shim --------------------------------------------------------
shim_pair
port=$(srm_free_port)
closed=$(srm_free_port)
shim_bg shim-server env "${ENV_B[@]}" LD_PRELOAD="$SHIM" "$M" server "$port" a "$WORK/server-shim.txt"
shim_wait_port "$port" 10 || { echo "preloaded matrix server did not start"; exit 1; }
timeout 300 env "${ENV_A[@]}" LD_PRELOAD="$SHIM" "$M" client b b "$port" "$closed" \
	>"$WORK/client-shim.txt" 2>"$WORK/client-shim.err"
check "shim run completes" grep -qx done "$WORK/client-shim.txt"

same_client() { diff -u "$WORK/client-kernel.txt" "$WORK/client-shim.txt"; }
same_server() { diff -u <(sort "$WORK/server-kernel.txt") <(sort "$WORK/server-shim.txt"); }
check "client transcripts equal (kernel TCP vs shim)" same_client
check "server transcripts equal (kernel TCP vs shim)" same_server
# Separately: the child's engine shares the parent's identity, and the peer
# must keep both sessions (engine requirement: several programs, one key).
fork_new() {
	local out
	out=$(timeout 120 env "${ENV_A[@]}" LD_PRELOAD="$SHIM" "$M" fork-new b "$port")
	echo "$out" | sed 's/^/    /'
	[[ $(grep -c ': ok$' <<<"$out") == 3 ]]
}
check "a forked child opens its own stream next to its parent's engine" fork_new
srm_finish "$WORK/client-shim.err" "$WORK/engine-a.log" "$WORK/engine-b.log"
