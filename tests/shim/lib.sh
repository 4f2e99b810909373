# tests/shim/lib.sh — helpers for the preload tests (sourced, not run), on
# top of tests/lib.sh (root, BUILD, SHIM, check, srm_finish, srm_free_port).
#
# Two identities "a" and "b" on loopback, each naming the other with a fixed
# 127.0.0.1 UDP endpoint, so two preloaded programs in one namespace talk
# through two engines without root.  Background processes are tracked by
# PID and stopped (and the work directory removed) on exit.
#
#   shim_init                 CLI, WORK (a private temporary directory); the exit trap
#   shim_pair                 keys and ENV_A / ENV_B (arrays for env)
#   shim_bg NAME CMD...       start CMD in the background, log in WORK/NAME.log
#   shim_wait_port PORT [S]   until something listens on TCP PORT (S seconds)
#   shim_wait_udp_free PORT [S]  until nothing holds UDP PORT

# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
CLI=$SRMUDP

shim_init() {
	srm_require_built --shim
	srm_tmpdir shim
	WORK=$tmp
}

shim_pair() {
	PUB_A=$("$CLI" keygen "$WORK/a.key")
	PUB_B=$("$CLI" keygen "$WORK/b.key")
	UDP_A=$(srm_free_port udp)
	UDP_B=$(srm_free_port udp)
	ENV_A=(SRMUDP_KEY="$WORK/a.key" SRMUDP_LISTEN="127.0.0.1:$UDP_A"
	       SRMUDP_PEERS="b=$PUB_B@127.0.0.1:$UDP_B" SRMUDP_LOG=info SRMUDP_LOG_FILE="$WORK/engine-a.log")
	ENV_B=(SRMUDP_KEY="$WORK/b.key" SRMUDP_LISTEN="127.0.0.1:$UDP_B"
	       SRMUDP_PEERS="a=$PUB_A@127.0.0.1:$UDP_A" SRMUDP_LOG=info SRMUDP_LOG_FILE="$WORK/engine-b.log")
}

shim_bg() {
	local name=$1
	shift
	"$@" >"$WORK/$name.log" 2>&1 &
	pids+=($!)
	SHIM_LAST_PID=$!
}

shim_wait_port() {
	local port=$1 secs=${2:-10} i
	for ((i = 0; i < secs * 10; i++)); do
		if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# shim_wait_udp_free PORT [S]: until nothing holds UDP PORT (an exiting
# preloaded program drains its streams first, holding its engine's port).
shim_wait_udp_free() {
	local port=$1 secs=${2:-35} i
	for ((i = 0; i < secs * 10; i++)); do
		ss -Huln "sport = :$port" 2>/dev/null | grep -q . || return 0
		sleep 0.1
	done
	return 1
}
