# shellcheck shell=bash
# tests/lib.sh — what every test script shares (sourced, not run).
#
#   source "$(dirname "$0")/../lib.sh"       # from tests/integration/, tests/bench/
#
# Sourcing it sets root (the repository, found from this file, not from the
# caller) and BUILD/SRMUDP/SHIM from $SRM_BUILD (default build).  Table of
# functions: docs/TESTING.md "The helper library".  Nothing here starts a
# process or sets a trap until a function is called, so the NAT lab's own
# EXIT trap (tests/lab/lab.sh, lab_on_exit) and srm_tmpdir's never meet in
# one script.

[[ -n ${_SRM_LIB:-} ]] && return 0 # sourced once (tests/lab/lab.sh sources it too)
_SRM_LIB=1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
checks=0 failures=0
SRM_RESULTS=() # every ok/FAIL line, for srm_recap
pids=()        # background processes srm_cleanup stops
SRM_EXIT_HOOKS=()

# srm_build [DIR]: BUILD (absolute; a relative DIR is taken from the
# repository), SRMUDP and SHIM.  DIR defaults to $SRM_BUILD, then build.
srm_build() {
	BUILD=${1:-${SRM_BUILD:-build}}
	[[ $BUILD == /* ]] || BUILD=$root/$BUILD
	SRMUDP=$BUILD/srmudp
	SHIM=$BUILD/libsrmudp.so
}
srm_build

# srm_require_built [--shim]: exit 1 (a failure, not a skip) unless the CLI
# (and with --shim the preload library) is built.
srm_require_built() {
	local what=$SRMUDP
	[[ ${1:-} == --shim ]] && what+=" or $SHIM"
	if [[ ! -x $SRMUDP || (${1:-} == --shim && ! -f $SHIM) ]]; then
		echo "FAIL: $what is not built (run make)"
		exit 1
	fi
}

# srm_require_tools TOOL...: exit 77 (skip) naming the first one missing.
srm_require_tools() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 && continue
		echo "SKIP: $t is not installed (run: make deps)"
		exit 77
	done
}

# ---- checks ----------------------------------------------------------------
# One line per check, "  ok    TEXT" / "  FAIL  TEXT" / "  skip  TEXT";
# checks and failures count them.
_srm_line() { SRM_RESULTS+=("$1"); echo "$1"; }
ok() { checks=$((checks + 1)); _srm_line "  ok    $*"; }
fail() { checks=$((checks + 1)) failures=$((failures + 1)); _srm_line "  FAIL  $*"; }
skip() { echo "  skip  $*"; }

# check NAME CMD...: ok NAME if CMD succeeds, else fail NAME and return 1
# (so `check ... || show_more` works).  Under set -e it returns 0: a failed
# check is counted, it does not end the script.
check() {
	local name=$1
	shift
	"$@" && { ok "$name"; return 0; }
	fail "$name"
	[[ $- == *e* ]] && return 0
	return 1
}
not() { ! "$@"; }
has() { grep -Eq -- "$2" "$1"; } # FILE REGEX
# is_num VALUE...: every VALUE is a (possibly negative) integer.
is_num() {
	local v
	(($#)) || return 1
	for v in "$@"; do [[ $v =~ ^-?[0-9]+$ ]] || return 1; done
}

# srm_wait_log FILE REGEX [SECONDS]: until a line of FILE matches (default 5 s).
srm_wait_log() {
	local i n=$((${3:-5} * 20))
	for ((i = 0; i < n; i++)); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# srm_recap: every ok/FAIL line again, at the end of a long log.
srm_recap() {
	echo "== results"
	printf '%s\n' "${SRM_RESULTS[@]}"
}

# srm_finish [LOG...]: the summary line; on failure the tail of each LOG;
# exits 0 when nothing failed, else 1.
srm_finish() {
	local f
	echo "$((checks - failures)) of $checks checks passed"
	((failures == 0)) && exit 0
	for f in "$@"; do
		[[ -e $f ]] || continue
		echo "--- $f (tail)"
		tail -n 20 "$f"
	done
	exit 1
}

# ---- scratch directory and processes -----------------------------------------

# srm_tmpdir NAME [--cd]: a private directory /tmp/srmudp-NAME.XXXXXX in
# $tmp (with --cd also the working directory); on exit srm_cleanup stops
# $pids and removes it (kept, and named, when SRM_KEEP_TMP is set).  Not for
# lab tests: lab_up owns the EXIT trap there (use lab_on_exit).
srm_tmpdir() {
	tmp=$(mktemp -d "/tmp/srmudp-$1.XXXXXX") || exit 1
	chmod 700 "$tmp"
	trap srm_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	[[ ${2:-} != --cd ]] || cd "$tmp" || exit 1
}
srm_on_exit() { SRM_EXIT_HOOKS+=("$1"); } # CMD: run first by srm_cleanup

# srm_cleanup: exit hooks; TERM to every $pids, 2 s grace, KILL; remove $tmp.
srm_cleanup() {
	local h p i alive
	for h in "${SRM_EXIT_HOOKS[@]}"; do eval "$h"; done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for ((i = 0; i < 20; i++)); do
		alive=0
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	for p in "${pids[@]}"; do
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	[[ -n ${tmp:-} ]] || return 0
	if [[ -n ${SRM_KEEP_TMP:-} ]]; then
		echo "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}

# srm_clean_env: unset every SRMUDP_* so only what a test sets reaches the
# programs it starts.
srm_clean_env() {
	local v
	for v in $(env | sed -n 's/^\(SRMUDP_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
}

# srm_private_runtime: XDG_RUNTIME_DIR=$tmp/xdg (0700), so `srmudp status`
# sees this test's engines only; umask 077 for the key files.
srm_private_runtime() {
	export XDG_RUNTIME_DIR="$tmp/xdg"
	mkdir -m 0700 "$XDG_RUNTIME_DIR"
	umask 077
}

# srm_keygen NAME...: $tmp/NAME.key and $tmp/NAME.pub (its public key);
# exit 1 if keygen fails.
srm_keygen() {
	local n
	for n in "$@"; do
		"$SRMUDP" keygen "$tmp/$n.key" >"$tmp/$n.pub" || { echo "FAIL: keygen"; exit 1; }
	done
}

# srm_free_port [tcp|udp]: a port the kernel picked as free on 127.0.0.1.
srm_free_port() {
	python3 -c 'import socket, sys
s = socket.socket(type=socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' "${1:-tcp}"
}

# rss_kb PID: its resident set in kB; 0 once it is gone.
# srm_rdv_stats PID FILE: ask the rendezvous server PID for its counters
# (SIGUSR1 prints a "rendezvous stats:" line on its stdout, FILE) and print
# the newest line's NAME=VALUE pairs, one a line.
srm_rdv_stats() {
	local n k
	n=$(grep -c '^rendezvous stats:' "$2")
	kill -USR1 "$1" || return 1
	for ((k = 0; k < 40; k++)); do
		(($(grep -c '^rendezvous stats:' "$2") > n)) && break
		sleep 0.05
	done
	grep '^rendezvous stats:' "$2" | tail -1 | tr ' ' '\n' | grep '='
}

rss_kb() { awk '/^VmRSS/ { v = $2 } END { print v + 0 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# srm_lab [--shim]: the NAT lab library (tests/lab/lab.sh) loaded; exit 77
# unless root and namespaces are there, exit 1 unless built (srm_require_built).
srm_lab() {
	# shellcheck source=lab/lab.sh
	source "$root/tests/lab/lab.sh"
	lab_require_root
	srm_require_built "$@"
}

# srm_lab_keys: after lab_up, work=$LAB_DIR/w (mode 0700) with the keys
# a.key and b.key; their public keys in pub_a and pub_b.
srm_lab_keys() {
	work=$LAB_DIR/w
	mkdir -p "$work"
	chmod 700 "$work"
	pub_a=$("$SRMUDP" keygen "$work/a.key")
	pub_b=$("$SRMUDP" keygen "$work/b.key")
}
