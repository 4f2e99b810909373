# shellcheck shell=bash
# lab.sh: the srmudp NAT lab, a bash library for integration tests.
#
#   source tests/lab/lab.sh
#   lab_require_root            # exit 77 (skip) without root / netns
#   lab_up --nat-a cone --nat-b symmetric
#   lab_exec a ping -c1 "$(lab_addr rdv)"
#   # lab_down runs by itself on EXIT, INT and TERM, failures included.
#
# Topology (one network namespace per box, veth pairs between them; the
# link names in [brackets] are what lab_impair takes).  The dotted column,
# natc and c, exists only with `lab_up --nat-c MODE`: most tests need two
# NATed peers, and a third one (a mesh, a peer joining late) costs two more
# namespaces that the others should not pay for.
#
#              rdv  198.18.0.2   2001:db8::2        (rendezvous host, public)
#               | eth0
#              [r]
#               | r0  198.18.0.1  2001:db8::1
#    +--------- inet ---------+- - - - - - - - - - - -+
#    | wa0 198.18.1.1         | wb0 198.18.2.1        : wc0 198.18.3.1
#    |     2001:db8:1::1      |     2001:db8:2::1     :     2001:db8:3::1
#   [wa]                     [wb]                    [wc]
#    | wan0 198.18.1.2        | wan0 198.18.2.2       : wan0 198.18.3.2
#    |      2001:db8:1::2     |      2001:db8:2::2    :      2001:db8:3::2
#   nata (NAT router A)      natb (NAT router B)     natc (NAT router C)
#    | lan0 10.1.0.1          | lan0 10.2.0.1         : lan0 10.3.0.1
#    |      fd00:a::1         |      fd00:b::1        :      fd00:c::1
#    |      2001:db8:a::1     |      2001:db8:b::1    :      2001:db8:c::1
#   [a]                      [b]                     [c]
#    | eth0 10.1.0.2          | eth0 10.2.0.2         : eth0 10.3.0.2
#    |      fd00:a::2         |      fd00:b::2        :      fd00:c::2
#    |      2001:db8:a::2     |      2001:db8:b::2    :      2001:db8:c::2
#    a  (private host A)      b  (private host B)     c  (private host C)
#
# inet is the "internet" router (public; it routes no private prefix).
# Every address lives only inside these namespaces: 198.18.0.0/15 is the
# benchmarking range (RFC 2544), 2001:db8::/32 the documentation prefix,
# 10/8 and fd00::/8 are private.  Nothing here reaches the host's network.
#
# NAT modes, per router (--nat-a / --nat-b / --nat-c):
#   none       plain routing: inet routes the LAN prefixes (10.x, fd00, 2001:db8:x)
#              to the router, nothing is translated or filtered.
#   cone       address-and-port preserving NAT: nftables masquerade keeps the
#              source port when it is free, so one inner socket has one
#              public port for every destination (endpoint-independent
#              mapping).  Unsolicited inbound is dropped like a home router
#              does (`iifname wan0 ct state new drop`, ICMP excepted), which is
#              what lets hole punching work on Linux conntrack.
#   symmetric  masquerade fully-random: a new public port for every
#              destination (endpoint-dependent mapping), same inbound filter.
# IPv6 in cone/symmetric mode: the ULA prefix (fd00:x::/64) is masqueraded
# the same way (NAT66), while the global prefix (2001:db8:x::/64) is routed
# untranslated behind the same stateful inbound filter, as home routers do.
# In none mode both v6 prefixes are routed.
#
# Namespaces are named "$LAB_PREFIX<host>"; the prefix defaults to
# "srm<pid>-", so parallel runs never collide.  Hosts: inet rdv nata natb a b,
# plus natc c with --nat-c.
#
# Impairments (lab_impair) use no netem (this kernel has none):
#   delay, jitter, reordering, duplication, loss  -> tests/lab/impair.c, an
#       NFQUEUE stage fed from each receiving end's raw PREROUTING (before
#       conntrack, so NAT state is untouched); loss alone uses iptables
#       `statistic` instead (no userspace hop);
#   rate  -> tbf on each end's egress;   mtu -> ip link set mtu on both ends.
# All of them apply to every IP packet (TCP, UDP, ICMP) alike; IPv6 neighbour
# discovery is exempt so a lossy link does not also lose its neighbours.

# ---------------------------------------------------------------------------
# State.  Everything the lab creates is listed here so lab_down can undo it.

LAB_PREFIX=${LAB_PREFIX:-srm$$-}
LAB_HOSTS=(inet rdv nata natb a b) # + natc c while a --nat-c lab is up
LAB_DIR=""          # scratch directory: logs of background processes
LAB_PIDS=()         # processes started by lab_bg, stopped by PID
LAB_LAST_PID=""     # set by lab_bg
LAB_LAST_LOG=""     # set by lab_bg
LAB_UP=0
LAB_EXIT_HOOKS=()
declare -gA LAB_NAT=()          # router -> none|cone|symmetric
declare -gA LAB_IMPAIR_PIDS=()  # link -> "pid pid" of its impair stages
declare -gA LAB_IMPAIR_LOGS=()  # link -> their log files

# root, BUILD and the shared helpers (srm_wait_log); sourced once.
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# Link table: "<ns1> <dev1> <ns2> <dev2> <queue>".  Queue numbers are per
# namespace in the kernel; giving each link its own keeps a router with two
# impaired links from mixing them up.
declare -gA LAB_LINKS=(
	[a]="a eth0 nata lan0 1"
	[b]="b eth0 natb lan0 2"
	[wa]="nata wan0 inet wa0 3"
	[wb]="natb wan0 inet wb0 4"
	[r]="rdv eth0 inet r0 5"
)
# The optional column's links, entered in LAB_LINKS only while it is up, so
# that lab_impair refuses them (unknown link) in a lab without c rather than
# reaching for namespaces that do not exist.
declare -gA LAB_LINKS_C=(
	[c]="c eth0 natc lan0 6"
	[wc]="natc wan0 inet wc0 7"
)

# Address book: "<host>.<kind>" -> address.  Kinds: v4, v6 (global), ula,
# lan4/lan6 (a router's LAN side).
declare -gA LAB_ADDRS=(
	[rdv.v4]=198.18.0.2     [rdv.v6]=2001:db8::2
	[inet.v4]=198.18.0.1    [inet.v6]=2001:db8::1
	[nata.v4]=198.18.1.2    [nata.v6]=2001:db8:1::2
	[natb.v4]=198.18.2.2    [natb.v6]=2001:db8:2::2
	[natc.v4]=198.18.3.2    [natc.v6]=2001:db8:3::2
	[nata.lan4]=10.1.0.1    [nata.lan6]=2001:db8:a::1  [nata.ula]=fd00:a::1
	[natb.lan4]=10.2.0.1    [natb.lan6]=2001:db8:b::1  [natb.ula]=fd00:b::1
	[natc.lan4]=10.3.0.1    [natc.lan6]=2001:db8:c::1  [natc.ula]=fd00:c::1
	[a.v4]=10.1.0.2         [a.v6]=2001:db8:a::2       [a.ula]=fd00:a::2
	[b.v4]=10.2.0.2         [b.v6]=2001:db8:b::2       [b.ula]=fd00:b::2
	[c.v4]=10.3.0.2         [c.v6]=2001:db8:c::2       [c.ula]=fd00:c::2
)
# (natc's and c's entries are always here; lab_addr still refuses them in a
# lab without c, since _lab_host only knows the hosts that are up.)

# ---------------------------------------------------------------------------
# Small helpers.

_lab_die() { echo "lab: $*" >&2; exit 1; }
_lab_host() {
	local h=${1,,}
	[[ " ${LAB_HOSTS[*]} " == *" $h "* ]] || _lab_die "unknown host '$1' (hosts: ${LAB_HOSTS[*]})"
	echo "$h"
}
_lab_sysctl() { ip netns exec "$(lab_ns "$1")" sysctl -qw "$2" >/dev/null; }

# lab_ns HOST: print the namespace name of HOST (for `ip -n`, `ip netns exec`).
lab_ns() { echo "${LAB_PREFIX}$(_lab_host "$1")"; }

# lab_addr HOST [v4|v6|ula|lan4|lan6]: print HOST's address of that kind
# (default v4).  For a NAT router, v4/v6 are its public (wan) addresses.
lab_addr() {
	local h k
	h=$(_lab_host "$1")
	k=${2:-v4}
	[[ -n ${LAB_ADDRS[$h.$k]:-} ]] || _lab_die "host '$h' has no '$k' address"
	echo "${LAB_ADDRS[$h.$k]}"
}

# lab_public_addr HOST [v4|v6]: the address the internet sees HOST's
# traffic come from: its router's wan address when behind NAT (v4; v6 is
# only translated for ULA sources, so v6 answers the global address).
lab_public_addr() {
	local h r
	h=$(_lab_host "$1")
	case $h in a) r=nata ;; b) r=natb ;; c) r=natc ;; *) r="" ;; esac
	if [[ -n $r && ${2:-v4} == v4 && ${LAB_NAT[$r]} != none ]]; then
		lab_addr "$r" v4
	else
		lab_addr "$h" "${2:-v4}"
	fi
}

# lab_exec HOST CMD...: run CMD inside HOST's namespace, in the foreground.
lab_exec() {
	local ns
	ns=$(lab_ns "$1") || return
	shift
	ip netns exec "$ns" "$@"
}

# lab_bg HOST CMD...: start CMD in HOST's namespace in the background, its
# output to a log file.  Sets LAB_LAST_PID and LAB_LAST_LOG (call it
# directly, not in $(...), or the variables are lost).  lab_down stops it
# by PID; lab_stop PID stops it earlier.
lab_bg() {
	local ns
	ns=$(lab_ns "$1") || return
	shift
	LAB_LAST_LOG="$LAB_DIR/bg-${#LAB_PIDS[@]}-$ns.log"
	# `ip netns exec` execs CMD in place, so $! is CMD's own PID.
	ip netns exec "$ns" "$@" >"$LAB_LAST_LOG" 2>&1 </dev/null &
	LAB_LAST_PID=$!
	LAB_PIDS+=("$LAB_LAST_PID")
}

# A zombie (exited, not yet reaped) counts as gone.
_lab_alive() {
	local s
	# (not $(<file): under set -e a missing file there exits the shell)
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) } # the state follows the command name, which may hold spaces
	[[ ${s:0:1} != Z ]]
}

# lab_stop PID...: stop background processes by PID: TERM, up to 2 s of
# grace, then KILL.  Returns once they are gone.
lab_stop() {
	local pid i
	for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "$@"; do
		for ((i = 0; i < 40; i++)); do
			_lab_alive "$pid" || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}

# lab_wait_log FILE PATTERN [SECONDS]: wait (default 5 s) until FILE holds a
# line matching the extended regex PATTERN; non-zero on timeout.  For
# "server is listening" style readiness.
lab_wait_log() { srm_wait_log "$@"; }

# lab_wait_port HOST udp|tcp PORT [SECONDS]: wait (default 5 s) until
# something listens on PORT inside HOST.
lab_wait_port() {
	local i n=$((${4:-5} * 20)) flag=-ltn
	[[ $2 == udp ]] && flag=-lun
	for ((i = 0; i < n; i++)); do
		lab_exec "$1" ss -H "$flag" "sport = :$3" 2>/dev/null | grep -q . && return 0
		sleep 0.05
	done
	return 1
}

# lab_on_exit CMD: run CMD (a string, eval'd) at teardown, before the
# namespaces go.  Use it instead of your own EXIT trap, which would replace
# lab_down's.
lab_on_exit() { LAB_EXIT_HOOKS+=("$1"); }

# Skip (exit 77) with a reason; under CI=true the lab must run, so fail.
_lab_skip() {
	if [[ ${CI:-} == true ]]; then
		echo "FAIL: $* -- CI runs as root, where the NAT lab must run" >&2
		exit 1
	fi
	echo "SKIP: $*" >&2
	exit 77
}

# lab_require_root: skip the calling test (exit 77, with the reason) unless
# it runs as root with network namespaces, nftables, iptables and tc.  With
# CI=true these are required, and their absence fails the test instead.
lab_require_root() {
	local c probe="${LAB_PREFIX}probe"
	[[ $(id -u) -eq 0 ]] || _lab_skip "the NAT lab needs root (network namespaces, nftables)"
	for c in ip nft iptables ip6tables tc ping conntrack python3; do
		command -v "$c" >/dev/null 2>&1 || _lab_skip "'$c' is missing (run: make deps)"
	done
	ip netns add "$probe" 2>/dev/null || _lab_skip "cannot create network namespaces here"
	ip netns del "$probe"
}

# ---------------------------------------------------------------------------
# Building and tearing down.

_lab_link() { # NS1 DEV1 NS2 DEV2: a veth pair created straight inside the
	# namespaces, so its names never touch the host's (parallel-safe).
	ip -n "$(lab_ns "$1")" link add "$2" type veth peer name "$4" netns "$(lab_ns "$3")"
	ip -n "$(lab_ns "$1")" link set "$2" up
	ip -n "$(lab_ns "$3")" link set "$4" up
}

_lab_addr() { # HOST DEV ADDR/LEN...
	local ns a
	ns=$(lab_ns "$1")
	for a in "${@:3}"; do
		if [[ $a == *:* ]]; then
			ip -n "$ns" -6 addr add "$a" dev "$2" nodad
		else
			ip -n "$ns" addr add "$a" dev "$2"
		fi
	done
}

# lab_nat ROUTER MODE: switch ROUTER (nata, natb, or natc when built) to MODE
# (none, cone, symmetric) while the lab is up.  Its conntrack table is
# flushed, so flows through it start afresh; nothing else is touched.
lab_nat() {
	local r mode=$2 lan4 ula random="" ns inet
	r=$(_lab_host "$1")
	case $r in
	nata) lan4=10.1.0.0/24 ula=fd00:a::/64 ;;
	natb) lan4=10.2.0.0/24 ula=fd00:b::/64 ;;
	natc) lan4=10.3.0.0/24 ula=fd00:c::/64 ;;
	*) _lab_die "lab_nat: '$r' is not a NAT router (nata, natb, natc)" ;;
	esac
	[[ $mode == none || $mode == cone || $mode == symmetric ]] ||
		_lab_die "NAT mode '$mode' is not none, cone or symmetric"
	ns=$(lab_ns "$r")
	inet=$(lab_ns inet)
	ip netns exec "$ns" nft delete table inet srmlab 2>/dev/null || true
	ip -n "$inet" route del "$lan4" 2>/dev/null || true
	ip -n "$inet" -6 route del "$ula" 2>/dev/null || true
	ip netns exec "$ns" conntrack -F >/dev/null 2>&1 || true
	ip netns exec "$ns" conntrack -F -f ipv6 >/dev/null 2>&1 || true
	LAB_NAT[$r]=$mode
	if [[ $mode == none ]]; then
		ip -n "$inet" route add "$lan4" via "$(lab_addr "$r" v4)" &&
			ip -n "$inet" -6 route add "$ula" via "$(lab_addr "$r" v6)"
		return
	fi
	[[ $mode == symmetric ]] && random=fully-random
	ip netns exec "$ns" nft -f - <<-EOF
	table inet srmlab {
		chain postrouting {
			type nat hook postrouting priority srcnat; policy accept;
			oifname "wan0" ip saddr $lan4 masquerade $random
			oifname "wan0" ip6 saddr $ula masquerade $random
		}
		# Before NAT and forwarding (priority mangle), so an unsolicited
		# packet never leaves a conntrack entry that would steal the
		# port a later outbound flow wants.
		chain inbound {
			type filter hook prerouting priority mangle; policy accept;
			iifname "wan0" meta l4proto { icmp, ipv6-icmp } accept
			iifname "wan0" ct state new drop
		}
	}
	EOF
}

# lab_up [--nat-a MODE] [--nat-b MODE] [--nat-c MODE]: build the lab (modes:
# none, cone, symmetric; default cone) and install lab_down as the
# EXIT/INT/TERM trap.  natc and c are built only when --nat-c is given.
# Takes about a second.  Dies (exit 1) if any step fails.
lab_up() {
	local nat_a=cone nat_b=cone nat_c="" with_c=0 modes h
	while (($#)); do
		case $1 in
		--nat-a) nat_a=$2; shift 2 ;;
		--nat-b) nat_b=$2; shift 2 ;;
		--nat-c) nat_c=$2 with_c=1; shift 2 ;;
		*) _lab_die "lab_up: unknown option '$1'" ;;
		esac
	done
	modes=("$nat_a" "$nat_b")
	((with_c)) && modes+=("$nat_c")
	for h in "${modes[@]}"; do
		[[ $h == none || $h == cone || $h == symmetric ]] ||
			_lab_die "NAT mode '$h' is not none, cone or symmetric"
	done
	((LAB_UP)) && _lab_die "lab_up: the lab is already up"

	local errexit=0
	[[ $- == *e* ]] && errexit=1
	trap 'lab_down' EXIT
	trap 'lab_down; exit 130' INT
	trap 'lab_down; exit 143' TERM
	LAB_UP=1
	LAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/srmlab.XXXXXX")
	# Listed before anything is built, so that a failure half-way still
	# has lab_down delete c's namespaces.
	if ((with_c)); then
		LAB_HOSTS+=(natc c)
		for h in "${!LAB_LINKS_C[@]}"; do LAB_LINKS[$h]=${LAB_LINKS_C[$h]}; done
	fi

	set -e # any failure below exits, and the EXIT trap tears down
	for h in "${LAB_HOSTS[@]}"; do
		ip netns add "$(lab_ns "$h")"
		ip -n "$(lab_ns "$h")" link set lo up
		# No duplicate address detection (link-locals would stay
		# tentative for a second and v6 would stall) and no router
		# advertisements: every address and route here is static.
		ip netns exec "$(lab_ns "$h")" sysctl -qw net.ipv6.conf.default.accept_dad=0 \
			net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_ra=0 \
			net.ipv6.conf.default.router_solicitations=0 >/dev/null
	done
	for h in inet nata natb; do
		_lab_sysctl "$h" net.ipv4.ip_forward=1
		_lab_sysctl "$h" net.ipv6.conf.all.forwarding=1
	done

	_lab_link rdv eth0 inet r0
	_lab_link nata wan0 inet wa0
	_lab_link natb wan0 inet wb0
	_lab_link a eth0 nata lan0
	_lab_link b eth0 natb lan0

	_lab_addr rdv eth0 198.18.0.2/24 2001:db8::2/64
	_lab_addr inet r0 198.18.0.1/24 2001:db8::1/64
	_lab_addr inet wa0 198.18.1.1/24 2001:db8:1::1/64
	_lab_addr inet wb0 198.18.2.1/24 2001:db8:2::1/64
	_lab_addr nata wan0 198.18.1.2/24 2001:db8:1::2/64
	_lab_addr natb wan0 198.18.2.2/24 2001:db8:2::2/64
	_lab_addr nata lan0 10.1.0.1/24 fd00:a::1/64 2001:db8:a::1/64
	_lab_addr natb lan0 10.2.0.1/24 fd00:b::1/64 2001:db8:b::1/64
	_lab_addr a eth0 10.1.0.2/24 fd00:a::2/64 2001:db8:a::2/64
	_lab_addr b eth0 10.2.0.2/24 fd00:b::2/64 2001:db8:b::2/64

	ip -n "$(lab_ns rdv)" route add default via 198.18.0.1
	ip -n "$(lab_ns rdv)" -6 route add default via 2001:db8::1
	ip -n "$(lab_ns nata)" route add default via 198.18.1.1
	ip -n "$(lab_ns nata)" -6 route add default via 2001:db8:1::1
	ip -n "$(lab_ns natb)" route add default via 198.18.2.1
	ip -n "$(lab_ns natb)" -6 route add default via 2001:db8:2::1
	ip -n "$(lab_ns a)" route add default via 10.1.0.1
	ip -n "$(lab_ns a)" -6 route add default via 2001:db8:a::1
	ip -n "$(lab_ns b)" route add default via 10.2.0.1
	ip -n "$(lab_ns b)" -6 route add default via 2001:db8:b::1
	# The global v6 LANs are routed in every mode; private ones only in none.
	ip -n "$(lab_ns inet)" -6 route add 2001:db8:a::/64 via 2001:db8:1::2
	ip -n "$(lab_ns inet)" -6 route add 2001:db8:b::/64 via 2001:db8:2::2

	lab_nat nata "$nat_a"
	lab_nat natb "$nat_b"

	# The third NATed host, the same as a and b in every respect.
	if ((with_c)); then
		_lab_sysctl natc net.ipv4.ip_forward=1
		_lab_sysctl natc net.ipv6.conf.all.forwarding=1
		_lab_link natc wan0 inet wc0
		_lab_link c eth0 natc lan0
		_lab_addr inet wc0 198.18.3.1/24 2001:db8:3::1/64
		_lab_addr natc wan0 198.18.3.2/24 2001:db8:3::2/64
		_lab_addr natc lan0 10.3.0.1/24 fd00:c::1/64 2001:db8:c::1/64
		_lab_addr c eth0 10.3.0.2/24 fd00:c::2/64 2001:db8:c::2/64
		ip -n "$(lab_ns natc)" route add default via 198.18.3.1
		ip -n "$(lab_ns natc)" -6 route add default via 2001:db8:3::1
		ip -n "$(lab_ns c)" route add default via 10.3.0.1
		ip -n "$(lab_ns c)" -6 route add default via 2001:db8:c::1
		ip -n "$(lab_ns inet)" -6 route add 2001:db8:c::/64 via 2001:db8:3::2
		lab_nat natc "$nat_c"
	fi
	((errexit)) || set +e
}

# lab_down: stop every process started in the lab (recorded PIDs first,
# then any stragglers found inside the lab's namespaces, by PID), delete
# the namespaces (which destroys the veths, qdiscs and rules with them) and
# the scratch directory.  Safe to call twice; installed as the exit trap.
lab_down() {
	local rc=$? h ns pids=() hook errexit=0
	((LAB_UP)) || return "$rc"
	LAB_UP=0
	[[ $- == *e* ]] && errexit=1
	set +e # tear down as much as possible, whatever fails
	for hook in "${LAB_EXIT_HOOKS[@]}"; do eval "$hook"; done
	((${#LAB_PIDS[@]})) && lab_stop "${LAB_PIDS[@]}"
	for h in "${LAB_HOSTS[@]}"; do
		ns=$(lab_ns "$h")
		[[ -e /run/netns/$ns ]] || continue
		mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$ns" 2>/dev/null)
	done
	((${#pids[@]})) && lab_stop "${pids[@]}"
	for h in "${LAB_HOSTS[@]}"; do
		ns=$(lab_ns "$h")
		[[ -e /run/netns/$ns ]] && ip netns del "$ns" 2>/dev/null
	done
	if [[ -n $LAB_DIR && -d $LAB_DIR ]]; then
		# SRM_KEEP_TMP: keep the logs for a post-mortem (as srm_tmpdir does).
		if [[ -n ${SRM_KEEP_TMP:-} ]]; then echo "kept $LAB_DIR" >&2; else rm -rf "$LAB_DIR"; fi
	fi
	LAB_PIDS=()
	# Every stage was in LAB_PIDS and is gone: a later lab must not stop
	# these PIDs again (they may belong to someone else by then).
	LAB_IMPAIR_PIDS=()
	# Back to the two-peer lab, so that a following lab_up without --nat-c
	# knows nothing of c.
	LAB_HOSTS=(inet rdv nata natb a b)
	for h in "${!LAB_LINKS_C[@]}"; do unset "LAB_LINKS[$h]"; done
	unset "LAB_NAT[natc]"
	((errexit)) && set -e
	return "$rc"
}

# ---------------------------------------------------------------------------
# Impairments.

_lab_impair_bin() {
	local b=${LAB_IMPAIR:-$BUILD/lab/impair}
	[[ -x $b ]] || _lab_die "impairment stage '$b' is not built (run: make)"
	echo "$b"
}

# _lab_queue_rules HOST DEV CHAIN QUEUE|loss:PCT: divert what HOST receives on
# DEV, v4 and v6, into CHAIN (in the raw table: before conntrack).
_lab_queue_rules() {
	local ns dev=$2 chain=$3 what=$4 ipt t target
	ns=$(lab_ns "$1") || return
	if [[ $what == loss:* ]]; then
		target=(-m statistic --mode random --probability "$(awk -v p="${what#loss:}" 'BEGIN { printf "%.6f", p / 100 }')" -j DROP)
	else
		target=(-j NFQUEUE --queue-num "$what" --queue-bypass)
	fi
	for ipt in iptables ip6tables; do
		ip netns exec "$ns" "$ipt" -w -t raw -N "$chain"
		if [[ $ipt == ip6tables ]]; then
			for t in router-solicitation router-advertisement neighbour-solicitation \
				neighbour-advertisement redirect; do
				ip netns exec "$ns" ip6tables -w -t raw -A "$chain" -p icmpv6 --icmpv6-type "$t" -j RETURN
			done
		fi
		ip netns exec "$ns" "$ipt" -w -t raw -A "$chain" "${target[@]}"
		ip netns exec "$ns" "$ipt" -w -t raw -A PREROUTING -i "$dev" -j "$chain"
	done
}

# lab_impair LINK [--delay MS] [--jitter MS] [--loss PCT] [--reorder PCT]
#            [--dup PCT] [--rate MBIT] [--mtu N] [--to HOST] [--seed S]
# Impair LINK (a b wa wb r, and c wc with --nat-c; see the drawing),
# replacing what it had.
# Each direction is impaired on its own, so --delay 20 adds 40 ms of RTT;
# --to HOST restricts delay/jitter/loss/reorder/dup to packets travelling
# toward HOST (one end of LINK).  Jitter spreads each packet's delay
# uniformly over [delay-jitter, delay+jitter] and so also reorders, as
# netem does.  --reorder holds a packet back behind the next 3.  --rate
# shapes both ends' egress with tbf; --mtu sets both ends' MTU.
lab_impair() {
	local link=$1 delay=0 jitter=0 loss=0 reorder=0 dup=0 rate="" mtu="" to="" seed=""
	[[ -n ${LAB_LINKS[$link]:-} ]] || _lab_die "unknown link '$link' (links: ${!LAB_LINKS[*]})"
	shift
	while (($#)); do
		case $1 in
		--delay) delay=$2 ;;
		--jitter) jitter=$2 ;;
		--loss) loss=$2 ;;
		--reorder) reorder=$2 ;;
		--dup) dup=$2 ;;
		--rate) rate=$2 ;;
		--mtu) mtu=$2 ;;
		--to) to=$(_lab_host "$2") ;;
		--seed) seed=$2 ;;
		*) _lab_die "lab_impair: unknown option '$1'" ;;
		esac
		[[ -n ${2:-} ]] || _lab_die "lab_impair: $1 needs a value"
		shift 2
	done
	lab_clear_impair "$link"
	LAB_IMPAIR_LOGS[$link]=""

	local ends n1 d1 n2 d2 q
	read -r n1 d1 n2 d2 q <<<"${LAB_LINKS[$link]}"
	if [[ -n $mtu ]]; then
		ip -n "$(lab_ns "$n1")" link set "$d1" mtu "$mtu" || return 1
		ip -n "$(lab_ns "$n2")" link set "$d2" mtu "$mtu" || return 1
	fi
	if [[ -n $rate ]]; then
		# burst: 10 ms at the rate, at least a few full frames; queue: 50 ms.
		local burst
		burst=$(awk -v r="$rate" 'BEGIN { b = r * 1e6 / 8 / 100; if (b < 4500) b = 4500; printf "%d", b }')
		tc -n "$(lab_ns "$n1")" qdisc replace dev "$d1" root tbf rate "${rate}mbit" burst "$burst" latency 50ms || return 1
		tc -n "$(lab_ns "$n2")" qdisc replace dev "$d2" root tbf rate "${rate}mbit" burst "$burst" latency 50ms || return 1
	fi

	# Packets toward host X are caught where X receives them.
	local stage_only_loss=0
	if [[ $delay == 0 && $jitter == 0 && $reorder == 0 && $dup == 0 ]]; then
		[[ $loss == 0 ]] && return 0
		stage_only_loss=1
	fi
	local rx rxdev tx txdev bin args
	for ends in "$n1 $d1 $n2 $d2" "$n2 $d2 $n1 $d1"; do
		read -r rx rxdev tx txdev <<<"$ends"
		[[ -z $to || $to == "$rx" ]] || continue
		if ((stage_only_loss)); then
			_lab_queue_rules "$rx" "$rxdev" "srm-$link" "loss:$loss" || return 1
			continue
		fi
		bin=$(_lab_impair_bin)
		args=(--queue "$q" --delay "$delay" --jitter "$jitter" --loss "$loss" --reorder "$reorder")
		[[ $dup != 0 ]] && args+=(--dup "$dup" --dup-netns "/run/netns/$(lab_ns "$tx")" --dup-dev "$txdev")
		[[ -n $seed ]] && args+=(--seed "$seed")
		lab_bg "$rx" "$bin" "${args[@]}"
		LAB_IMPAIR_PIDS[$link]+="$LAB_LAST_PID "
		LAB_IMPAIR_LOGS[$link]+="$LAB_LAST_LOG "
		lab_wait_log "$LAB_LAST_LOG" "queue $q ready" 5 || {
			cat "$LAB_LAST_LOG" >&2
			_lab_die "impairment stage for link '$link' did not start"
		}
		_lab_queue_rules "$rx" "$rxdev" "srm-$link" "$q" || return 1
	done
}

# lab_clear_impair LINK: remove every impairment from LINK: rules, stages
# (stopped by PID; they release what they hold), qdiscs, MTU back to 1500.
# lab_udp_a_b on|off: whether UDP (v4 and v6) passes between a's and b's
# networks at the inet router; everything else (rdv, TCP) still does.  A
# relay or gate on rdv then carries a and b where a direct path would not.
lab_udp_a_b() {
	ip netns exec "$(lab_ns inet)" nft delete table inet srmudpab 2>/dev/null
	[[ $1 == on ]] && return 0
	ip netns exec "$(lab_ns inet)" nft -f - <<-EOF
	table inet srmudpab {
		chain block {
			type filter hook forward priority 0; policy accept;
			iifname "wa0" oifname "wb0" meta l4proto udp drop
			iifname "wb0" oifname "wa0" meta l4proto udp drop
		}
	}
	EOF
}

lab_clear_impair() {
	local link=$1 n1 d1 n2 d2 q ns dev ipt
	[[ -n ${LAB_LINKS[$link]:-} ]] || _lab_die "unknown link '$link'"
	read -r n1 d1 n2 d2 q <<<"${LAB_LINKS[$link]}"
	for ends in "$n1 $d1" "$n2 $d2"; do
		read -r ns dev <<<"$ends"
		ns=$(lab_ns "$ns")
		for ipt in iptables ip6tables; do
			# Absent when the link was not impaired: not an error.
			ip netns exec "$ns" "$ipt" -w -t raw -D PREROUTING -i "$dev" -j "srm-$link" 2>/dev/null || true
			ip netns exec "$ns" "$ipt" -w -t raw -F "srm-$link" 2>/dev/null || true
			ip netns exec "$ns" "$ipt" -w -t raw -X "srm-$link" 2>/dev/null || true
		done
		tc -n "$ns" qdisc del dev "$dev" root 2>/dev/null || true
		ip -n "$ns" link set "$dev" mtu 1500 || true
	done
	if [[ -n ${LAB_IMPAIR_PIDS[$link]:-} ]]; then
		# shellcheck disable=SC2086 # a list of PIDs
		lab_stop ${LAB_IMPAIR_PIDS[$link]}
		LAB_IMPAIR_PIDS[$link]=""
	fi
	return 0
}

# lab_impair_stats LINK: print the counters of LINK's impairment stages
# (they write them when stopped, so call lab_clear_impair first).
lab_impair_stats() {
	local f
	for f in ${LAB_IMPAIR_LOGS[$1]:-}; do
		grep -h "^impair: queue .* seen" "$f" 2>/dev/null || true
	done
	return 0
}
