#!/usr/bin/env bash
# test_shim_programs.sh: real, unmodified programs from Debian talk to each
# other through the preload, between two engines on loopback ("a" is the
# client side, "b" the server side; each names the other in SRMUDP_PEERS):
#
#   nc -> nc, socat -> socat            bytes both ways, half-close
#   curl -> python3 -m http.server      100 MiB, sha256 equal
#   redis-cli, redis-benchmark -> redis-server
#   ssh -> sshd: ProxyCommand 'srmudp connect' to `srmudp serve --expose`,
#                and preloaded ssh to a preloaded sshd (fork, closefrom)
#   iperf3 -> iperf3, both directions (3 s, no rate asserted)
#   passthrough: with the preload but no designated traffic, nothing starts
#
# A program that is not installed is skipped with a note; the test fails
# only on a check that ran.  Exit 0 pass, 1 fail.
set -uo pipefail
source "$(dirname "$0")/../shim/lib.sh"
shim_init
shim_pair

A() { env "${ENV_A[@]}" LD_PRELOAD="$SHIM" "$@"; }
Bg() { local n=$1; shift; shim_bg "$n" env "${ENV_B[@]}" LD_PRELOAD="$SHIM" "$@"; }
have() { command -v "$1" >/dev/null 2>&1 || { echo "  skip  $1 is not installed"; return 1; }; }
stop() { kill "$1" 2>/dev/null; for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; kill -9 "$1" 2>/dev/null; }

# --- passthrough and laziness ------------------------------------------------
# SRMUDP_PEERS set, but the program only talks to a local server: no engine
# thread, no UDP socket.
no_engine_without_designated_use() {
	# A client-only process: connects locally, resolves a real name.
	local p out
	p=$(shim_free_port)
	python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',$p)); s.listen(); c=s.accept()[0]; c.sendall(b'x'); time.sleep(1)" &
	local spid=$!
	shim_wait_port "$p" 5
	out=$(A python3 -c "
import os, socket
c = socket.create_connection(('127.0.0.1', $p)); assert c.recv(1) == b'x'
socket.getaddrinfo('localhost', 80)
def kind(f):
    try: return os.readlink('/proc/self/fd/' + f)
    except OSError: return ''
print(len(os.listdir('/proc/self/task')), sum(1 for f in os.listdir('/proc/self/fd') if 'socket' in kind(f)))
")
	wait "$spid" 2>/dev/null
	[[ $out == "1 1" ]] || { echo "    threads, sockets: $out (want 1 1)"; return 1; }
}
plain_curl_passthrough() {
	local p
	p=$(shim_free_port)
	mkdir -p "$WORK/pt" && echo passthrough >"$WORK/pt/f"
	shim_bg pt-http python3 -m http.server "$p" --bind 127.0.0.1 --directory "$WORK/pt"
	local hp=$SHIM_LAST_PID
	shim_wait_port "$p" 10 || return 1
	local got
	got=$(env LD_PRELOAD="$SHIM" curl -sS --max-time 10 "http://127.0.0.1:$p/f")
	stop "$hp"
	[[ $got == passthrough ]]
}
check "passthrough: curl to a local server with the preload and no SRMUDP_PEERS" plain_curl_passthrough
check "laziness: a local-only client starts no engine thread and no UDP socket" no_engine_without_designated_use

# --- nc ---------------------------------------------------------------------
nc_test() {
	local p got
	p=$(shim_free_port)
	Bg nc-server nc -l 127.0.0.1 "$p"
	local sp=$SHIM_LAST_PID
	shim_wait_port "$p" 10 || return 1
	printf 'hello from a\n' | A timeout 20 nc -N b "$p"
	for _ in $(seq 50); do grep -q 'hello from a' "$WORK/nc-server.log" && break; sleep 0.1; done
	stop "$sp"
	got=$(cat "$WORK/nc-server.log")
	[[ $got == "hello from a" ]] || { echo "    server got: $got"; return 1; }
}
have nc && check "nc -> nc (server on b got the line)" nc_test

# --- socat --------------------------------------------------------------------
socat_test() {
	local p got
	p=$(shim_free_port)
	Bg socat-server socat TCP-LISTEN:"$p",reuseaddr,fork SYSTEM:'tr a-z A-Z'
	local sp=$SHIM_LAST_PID
	shim_wait_port "$p" 10 || return 1
	got=$(printf 'shout this\n' | A timeout 20 socat - TCP:b:"$p")
	local got6
	got6=$(printf 'and this\n' | A timeout 20 socat - TCP6:b:"$p")
	stop "$sp"
	[[ $got == "SHOUT THIS" && $got6 == "AND THIS" ]] || { echo "    got: '$got' '$got6'"; return 1; }
}
have socat && check "socat -> socat (echo through tr, IPv4 and IPv6 names)" socat_test

# --- curl and python3 http.server, 100 MiB ------------------------------------
http_test() {
	local p
	p=$(shim_free_port)
	mkdir -p "$WORK/www"
	head -c $((100 << 20)) /dev/urandom >"$WORK/www/blob"
	Bg http-server python3 -m http.server "$p" --bind 0.0.0.0 --directory "$WORK/www"
	local sp=$SHIM_LAST_PID
	shim_wait_port "$p" 10 || return 1
	A timeout 300 curl -sS --max-time 280 -o "$WORK/got" "http://b:$p/blob" || return 1
	stop "$sp"
	local s1 s2
	s1=$(sha256sum <"$WORK/www/blob" | cut -d' ' -f1)
	s2=$(sha256sum <"$WORK/got" | cut -d' ' -f1)
	echo "    sha256 $s1 (server) $s2 (client)"
	rm -f "$WORK/got" "$WORK/www/blob"
	[[ $s1 == "$s2" ]]
}
have curl && check "curl -> python3 http.server: 100 MiB, sha256 equal" http_test

# --- redis ------------------------------------------------------------------------
redis_test() {
	local p got
	p=$(shim_free_port)
	# Peers arrive with their virtual (non-loopback) address, so redis's
	# loopback-only protected mode applies to them, as it should.
	Bg redis-server redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no \
		--protected-mode no
	local sp=$SHIM_LAST_PID
	shim_wait_port "$p" 10 || return 1
	A timeout 20 redis-cli -h b -p "$p" SET greeting "across srmudp" >/dev/null || return 1
	got=$(A timeout 20 redis-cli -h b -p "$p" GET greeting)
	[[ $got == "across srmudp" ]] || { echo "    GET gave '$got'"; stop "$sp"; return 1; }
	# The server sees the client as peer "a" (its virtual address).
	got=$(A timeout 20 redis-cli -h b -p "$p" CLIENT LIST)
	echo "    CLIENT LIST: ${got:0:80}"
	[[ $got == *"addr=239.83.0.1:"* ]] || { stop "$sp"; return 1; }
	A timeout 120 redis-benchmark -h b -p "$p" -n 2000 -c 4 -q -t set,get >"$WORK/redis-bench.txt" 2>&1
	local rc=$?
	sed 's/\r/\n/g' "$WORK/redis-bench.txt" | grep -E '^(SET|GET):' | tail -n2 | sed 's/^/    /'
	stop "$sp"
	((rc == 0)) && grep -q 'SET:' "$WORK/redis-bench.txt" && grep -q 'GET:' "$WORK/redis-bench.txt"
}
have redis-server && have redis-cli && check "redis-cli and redis-benchmark -> redis-server" redis_test

# --- ssh ----------------------------------------------------------------------------
ssh_setup() {
	[[ $(id -u) -eq 0 ]] || { echo "  skip  ssh: sshd needs root here"; return 1; }
	mkdir -p /run/sshd
	ssh-keygen -q -t ed25519 -N '' -f "$WORK/hostkey" || return 1
	ssh-keygen -q -t ed25519 -N '' -f "$WORK/userkey" || return 1
	cat >"$WORK/sshd_config" <<EOF
ListenAddress 127.0.0.1
HostKey $WORK/hostkey
AuthorizedKeysFile $WORK/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile none
EOF
	cp "$WORK/userkey.pub" "$WORK/authorized_keys"
	SSH_OPTS=(-F none -i "$WORK/userkey" -o IdentitiesOnly=yes -o BatchMode=yes
		  -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
		  -o ConnectTimeout=20)
}
ssh_proxycommand_test() {
	local p got
	p=$(shim_free_port)
	shim_bg sshd-plain /usr/sbin/sshd -D -e -f "$WORK/sshd_config" -p "$p"
	local sp=$SHIM_LAST_PID
	shim_wait_port "$p" 10 || return 1
	shim_bg serve env "${ENV_B[@]}" "$CLI" serve --expose "$p"
	local vp=$SHIM_LAST_PID
	sleep 0.5
	got=$(env "${ENV_A[@]}" timeout 60 ssh "${SSH_OPTS[@]}" -p "$p" \
		-o ProxyCommand="$CLI connect %h %p" root@b 'echo over-proxycommand; hostname' </dev/null)
	stop "$vp"
	stop "$sp"
	[[ $got == over-proxycommand* ]] || { echo "    got: $got"; tail -n5 "$WORK/serve.log"; return 1; }
}
ssh_preloaded_test() {
	local p got
	p=$(shim_free_port)
	# sshd itself preloaded: it listens, forks per connection, closes fds.
	shim_bg sshd-preloaded env "${ENV_B[@]}" "$CLI" run -- /usr/sbin/sshd -D -e -f "$WORK/sshd_config" -p "$p"
	local sp=$SHIM_LAST_PID
	shim_wait_port "$p" 10 || return 1
	got=$(env "${ENV_A[@]}" timeout 60 "$CLI" run -- ssh "${SSH_OPTS[@]}" -p "$p" root@b \
		'echo preloaded-both-ends; echo "$SSH_CLIENT"' </dev/null)
	stop "$sp"
	echo "    $got" | head -n2
	# sshd saw the client as peer a's virtual address.
	[[ $got == preloaded-both-ends*239.83.0.1* ]] || { tail -n5 "$WORK/sshd-preloaded.log"; return 1; }
}
if have ssh && have sshd 2>/dev/null || [[ -x /usr/sbin/sshd ]]; then
	if ssh_setup; then
		check "ssh with ProxyCommand 'srmudp connect' -> srmudp serve --expose -> sshd" ssh_proxycommand_test
		check "ssh preloaded (srmudp run) -> sshd preloaded (srmudp run)" ssh_preloaded_test
	fi
fi

# --- iperf3 -----------------------------------------------------------------------------
iperf_test() {
	local p rc1 rc2
	p=$(shim_free_port)
	Bg iperf-server iperf3 -s -p "$p"
	local sp=$SHIM_LAST_PID
	shim_wait_port "$p" 10 || return 1
	A timeout 60 iperf3 -c b -p "$p" -t 3 >"$WORK/iperf-up.txt" 2>&1
	rc1=$?
	A timeout 60 iperf3 -c b -p "$p" -t 3 -R >"$WORK/iperf-down.txt" 2>&1
	rc2=$?
	stop "$sp"
	grep -E 'receiver$' "$WORK/iperf-up.txt" | sed 's/^/    up:   /'
	grep -E 'receiver$' "$WORK/iperf-down.txt" | sed 's/^/    down: /'
	((rc1 == 0 && rc2 == 0)) || { tail -n3 "$WORK/iperf-up.txt" "$WORK/iperf-down.txt"; return 1; }
}
have iperf3 && check "iperf3 both directions (3 s each)" iperf_test

if ((failures)); then
	echo "--- engine logs (tails)"
	tail -n 15 "$WORK/engine-a.log" "$WORK/engine-b.log" 2>/dev/null
fi
shim_finish
