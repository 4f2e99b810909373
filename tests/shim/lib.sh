# tests/shim/lib.sh — helpers for the preload tests (sourced, not run).
#
# Two identities "a" and "b" on loopback, each naming the other with a fixed
# 127.0.0.1 UDP endpoint, so two preloaded programs in one namespace talk
# through two engines without root.  Background processes are tracked by
# PID and killed (and the work directory removed) on exit.
#
#   shim_init                 BUILD, SHIM, CLI, WORK; the exit trap
#   shim_pair                 keys and ENV_A / ENV_B (arrays for env)
#   shim_bg NAME CMD...       start CMD in the background, log in WORK/NAME.log
#   shim_wait_port PORT [S]   until something listens on TCP PORT (S seconds)
#   shim_free_port            an unused port number
#   check NAME CMD...         one named check; counts failures
#   shim_finish               summary line and exit status

shim_init() {
	root=${SRM_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
	BUILD=${SRM_BUILD:-$root/build}
	SHIM=$BUILD/libsrmudp.so
	CLI=$BUILD/srmudp
	if [[ ! -f $SHIM || ! -x $CLI ]]; then
		echo "FAIL: $SHIM or $CLI is not built (make first)" >&2
		exit 1
	fi
	WORK=$(mktemp -d /tmp/srmudp-shim.XXXXXX)
	chmod 700 "$WORK"
	SHIM_PIDS=()
	checks=0
	failures=0
	trap shim_cleanup EXIT
	trap 'exit 130' INT TERM
}

shim_cleanup() {
	local p
	for p in "${SHIM_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${SHIM_PIDS[@]}"; do
		# bounded: give each a moment, then force
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$p" 2>/dev/null
	done
	if [[ -n ${SHIM_KEEP:-} ]]; then
		echo "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}

shim_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

shim_free_udp_port() {
	python3 -c 'import socket; s=socket.socket(type=socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

shim_pair() {
	PUB_A=$("$CLI" keygen "$WORK/a.key")
	PUB_B=$("$CLI" keygen "$WORK/b.key")
	UDP_A=$(shim_free_udp_port)
	UDP_B=$(shim_free_udp_port)
	ENV_A=(SRMUDP_KEY="$WORK/a.key" SRMUDP_LISTEN="127.0.0.1:$UDP_A"
	       SRMUDP_PEERS="b=$PUB_B@127.0.0.1:$UDP_B" SRMUDP_LOG=info SRMUDP_LOG_FILE="$WORK/engine-a.log")
	ENV_B=(SRMUDP_KEY="$WORK/b.key" SRMUDP_LISTEN="127.0.0.1:$UDP_B"
	       SRMUDP_PEERS="a=$PUB_A@127.0.0.1:$UDP_A" SRMUDP_LOG=info SRMUDP_LOG_FILE="$WORK/engine-b.log")
}

shim_bg() {
	local name=$1
	shift
	"$@" >"$WORK/$name.log" 2>&1 &
	SHIM_PIDS+=($!)
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

check() {
	local name=$1
	shift
	checks=$((checks + 1))
	if "$@"; then
		echo "  ok    $name"
	else
		echo "  FAIL  $name"
		failures=$((failures + 1))
	fi
}

shim_finish() {
	echo "$((checks - failures)) of $checks checks passed"
	((failures == 0))
	exit $?
}
