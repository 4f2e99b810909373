# tests/shim/programs.sh — real programs through the preload, as checks
# (sourced by test_shim_programs.sh on loopback and test_shim_lab.sh across
# the NAT lab).  The driver defines where things run:
#   A CMD...            client side, preloaded, foreground
#   A_env CMD...        client side, SRMUDP_* set, no preload
#   Bg NAME CMD...      server side, preloaded, background (sets BG_PID,
#                       output in WORK/NAME.log); CMD may start with
#                       VAR=VALUE settings (it runs under env)
#   Bg_env NAME CMD...  server side, SRMUDP_* set, no preload
#   Bg_plain NAME CMD.. server side, nothing set
#   wait_b_port PORT S  until the server side listens on TCP PORT
#   free_port           a TCP port free on the server side
# and then calls program_checks.

have() { command -v "$1" >/dev/null 2>&1 || { echo "  skip  $1 is not installed"; return 1; }; }
stop() { kill "$1" 2>/dev/null; for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; kill -9 "$1" 2>/dev/null; }

# --- nc ---------------------------------------------------------------------
nc_test() {
	local p got
	p=$(free_port)
	# Bound to loopback: peers reach it because SRMUDP_EXPOSE names it.
	Bg nc-server SRMUDP_EXPOSE="$p" nc -l 127.0.0.1 "$p"
	local sp=$BG_PID
	wait_b_port "$p" 10 || return 1
	printf 'hello from a\n' | A timeout 20 nc -N b "$p"
	for _ in $(seq 50); do grep -q 'hello from a' "$WORK/nc-server.log" && break; sleep 0.1; done
	stop "$sp"
	got=$(cat "$WORK/nc-server.log")
	[[ $got == "hello from a" ]] || { echo "    server got: $got"; return 1; }
}

# --- socat --------------------------------------------------------------------
socat_test() {
	local p got
	p=$(free_port)
	Bg socat-server socat TCP-LISTEN:"$p",reuseaddr,fork SYSTEM:'tr a-z A-Z'
	local sp=$BG_PID
	wait_b_port "$p" 10 || return 1
	got=$(printf 'shout this\n' | A timeout 20 socat - TCP:b:"$p")
	local got6
	got6=$(printf 'and this\n' | A timeout 20 socat - TCP6:b:"$p")
	stop "$sp"
	[[ $got == "SHOUT THIS" && $got6 == "AND THIS" ]] || { echo "    got: '$got' '$got6'"; return 1; }
}

# --- curl and python3 http.server, 100 MiB ------------------------------------
http_test() {
	local p
	p=$(free_port)
	mkdir -p "$WORK/www"
	head -c $((100 << 20)) /dev/urandom >"$WORK/www/blob"
	Bg http-server python3 -m http.server "$p" --bind 0.0.0.0 --directory "$WORK/www"
	local sp=$BG_PID
	wait_b_port "$p" 10 || return 1
	A timeout 300 curl -sS --max-time 280 -o "$WORK/got" "http://b:$p/blob" || return 1
	stop "$sp"
	local s1 s2
	s1=$(sha256sum <"$WORK/www/blob" | cut -d' ' -f1)
	s2=$(sha256sum <"$WORK/got" | cut -d' ' -f1)
	echo "    sha256 $s1 (server) $s2 (client)"
	rm -f "$WORK/got" "$WORK/www/blob"
	[[ $s1 == "$s2" ]]
}

# --- redis ------------------------------------------------------------------------
redis_test() {
	local p got
	p=$(free_port)
	# Peers arrive with their virtual (non-loopback) address, so redis's
	# loopback-only protected mode applies to them, as it should.  Started
	# by `srmudp run`, as users do: Redis rewrites its environment as it
	# starts (process title), which the preload must not trip over.
	# Bound to loopback, so exposed by name (SRMUDP_EXPOSE).
	Bg_env redis-server SRMUDP_EXPOSE="$p" "$CLI" run -- redis-server --port "$p" --bind 127.0.0.1 --save '' \
		--appendonly no --protected-mode no
	local sp=$BG_PID
	wait_b_port "$p" 10 || return 1
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
	p=$(free_port)
	Bg_plain sshd-plain /usr/sbin/sshd -D -e -f "$WORK/sshd_config" -p "$p"
	local sp=$BG_PID
	wait_b_port "$p" 10 || return 1
	Bg_env serve "$CLI" serve --expose "$p"
	local vp=$BG_PID
	sleep 0.5
	got=$(A_env timeout 60 ssh "${SSH_OPTS[@]}" -p "$p" \
		-o ProxyCommand="$CLI connect %h %p" root@b 'echo over-proxycommand; hostname' </dev/null)
	stop "$vp"
	stop "$sp"
	[[ $got == over-proxycommand* ]] || { echo "    got: $got"; tail -n5 "$WORK/serve.log"; return 1; }
}
ssh_preloaded_test() {
	local p got
	p=$(free_port)
	# sshd itself preloaded: it listens, forks per connection, closes fds.
	# ListenAddress 127.0.0.1: exposed by name.
	Bg_env sshd-preloaded SRMUDP_EXPOSE="$p" "$CLI" run -- /usr/sbin/sshd -D -e -f "$WORK/sshd_config" -p "$p"
	local sp=$BG_PID
	wait_b_port "$p" 10 || return 1
	got=$(A_env timeout 60 "$CLI" run -- ssh "${SSH_OPTS[@]}" -p "$p" root@b \
		'echo preloaded-both-ends; echo "$SSH_CLIENT"' </dev/null)
	stop "$sp"
	echo "    $got" | head -n2
	# sshd saw the client as peer a's virtual address.
	[[ $got == preloaded-both-ends*239.83.0.1* ]] || { tail -n5 "$WORK/sshd-preloaded.log"; return 1; }
}

# --- iperf3 -----------------------------------------------------------------------------
iperf_test() {
	local p rc1 rc2
	p=$(free_port)
	Bg iperf-server iperf3 -s -p "$p"
	local sp=$BG_PID
	wait_b_port "$p" 10 || return 1
	A timeout 60 iperf3 -c b -p "$p" -t 3 >"$WORK/iperf-up.txt" 2>&1
	rc1=$?
	A timeout 60 iperf3 -c b -p "$p" -t 3 -R >"$WORK/iperf-down.txt" 2>&1
	rc2=$?
	stop "$sp"
	grep -E 'receiver$' "$WORK/iperf-up.txt" | sed 's/^/    up:   /'
	grep -E 'receiver$' "$WORK/iperf-down.txt" | sed 's/^/    down: /'
	((rc1 == 0 && rc2 == 0)) || { tail -n3 "$WORK/iperf-up.txt" "$WORK/iperf-down.txt"; return 1; }
}


# --- node (libuv, threads with small stacks) ---------------------------------------
node_test() {
	local p got
	p=$(free_port)
	mkdir -p "$WORK/nodewww" && echo "hello node" >"$WORK/nodewww/f"
	Bg node-http python3 -m http.server "$p" --bind 0.0.0.0 --directory "$WORK/nodewww"
	local sp=$BG_PID
	wait_b_port "$p" 10 || return 1
	got=$(A timeout 30 node -e "
require('http').get('http://b:$p/f', r => { let s = ''; r.on('data', d => s += d);
  r.on('end', () => process.stdout.write(s)); }).on('error', e => console.log('error ' + e.code));" \
		2>"$WORK/node.err")
	stop "$sp"
	[[ $got == "hello node" ]] || { echo "    got: $got"; return 1; }
	# nothing on stderr: a preload with large static TLS breaks node's
	# small-stack threads ("pthread_create: Invalid argument")
	[[ ! -s $WORK/node.err ]] || { sed 's/^/    stderr: /' "$WORK/node.err" | head -n3; return 1; }
}

program_checks() {
	have nc && check "nc -> nc (server on b got the line)" nc_test
	have socat && check "socat -> socat (echo through tr, IPv4 and IPv6 names)" socat_test
	have curl && check "curl -> python3 http.server: 100 MiB, sha256 equal" http_test
	have redis-server && have redis-cli && check "redis-cli and redis-benchmark -> redis-server" redis_test
	if have ssh && [[ -x /usr/sbin/sshd ]] && ssh_setup; then
		check "ssh with ProxyCommand 'srmudp connect' -> srmudp serve --expose -> sshd" ssh_proxycommand_test
		check "ssh preloaded (srmudp run) -> sshd preloaded (srmudp run)" ssh_preloaded_test
	fi
	have iperf3 && check "iperf3 both directions (3 s each)" iperf_test
	have node && check "node http.get -> python3 http.server, clean stderr" node_test
}
