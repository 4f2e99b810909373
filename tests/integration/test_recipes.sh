#!/usr/bin/env bash
# test_recipes.sh: the recipes of docs/OPERATIONS.md §7, run as written, on
# loopback.  "box" (the service side) and "me" (the client) are two keys
# on this host; each recipe's service runs on a free high port, and
# `srmudp serve --expose STD=127.0.0.1:PORT` maps the recipe's standard
# port to it, so the client commands are the documented ones verbatim.
#
#   ssh     serve --expose 22 -> sshd;   ssh -o ProxyCommand='srmudp connect %h %p' box
#   rsync   rsync -a -e "ssh -o ProxyCommand='srmudp connect %h %p'" src/ box:dst/
#   redis   serve --expose 6379 -> redis-server;  srmudp run -- redis-cli -h box ping
#           and redis-benchmark
#   http    srmudp run -- python3 -m http.server (preloaded);  srmudp run -- curl http://box:PORT/
#   iperf3  serve --expose 5201 -> iperf3 -s;  srmudp run -- iperf3 -c box -t 2 (and -R)
#
# Each recipe whose programs are missing is skipped with a note (ssh and
# rsync also need root, for sshd); the script skips (77) if none could run.
# Traffic stays on 127.0.0.1.
#
# Usage: test_recipes.sh [BUILD]   Exit 0 pass, 1 fail, 77 skipped.
set -uo pipefail

source "$(dirname "$0")/../lib.sh"
srm_build "${1:-}"
srm_require_built --shim
if ! command -v python3 >/dev/null; then
	echo "SKIP: python3 is needed (free ports, http server)"
	exit 77
fi

srm_tmpdir recipes --cd
ran=0
note() { echo "  note  $1"; }
have() { for t in "$@"; do command -v "$t" >/dev/null || return 1; done; }

srm_clean_env
srm_private_runtime
srm_keygen box me
BOX_PUB=$(cat box.pub)
ME_PUB=$(cat me.pub)
# `srmudp` on PATH, as in the recipes.
mkdir bin && ln -s "$SRMUDP" bin/srmudp && export PATH="$tmp/bin:$PATH"

wait_tcp() { # PORT: until something listens (5 s at most)
	for _ in $(seq 50); do
		python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# box_serve NAME EXPOSE: `srmudp serve --expose EXPOSE` as box; sets $box_udp.
box_serve() {
	local name=$1 expose=$2 u
	u=$(srm_free_port udp)
	env SRMUDP_KEY=box.key SRMUDP_LISTEN=127.0.0.1:$u "SRMUDP_PEERS=me=$ME_PUB" \
		timeout 300 srmudp serve --expose "$expose" >"$name.serve.out" 2>"$name.serve.err" &
	pids+=($!)
	for _ in $(seq 50); do grep -q '^srmudp serve: UDP port' "$name.serve.err" && break; sleep 0.1; done
	box_udp=$u
}
# me_env UDP: the client's environment towards box's engine on UDP port.
me_env() { echo "SRMUDP_KEY=$tmp/me.key" "SRMUDP_PEERS=box=$BOX_PUB@127.0.0.1:$1"; }

echo "== ssh and rsync over ssh"
sshd=$(type -P sshd || echo /usr/sbin/sshd)
if [[ $(id -u) -ne 0 || ! -x $sshd ]] || ! have ssh ssh-keygen; then
	note "not root or no sshd/ssh: ssh and rsync recipes skipped"
else
	mkdir -p ssh /run/sshd
	ssh-keygen -q -t ed25519 -N '' -f ssh/host && ssh-keygen -q -t ed25519 -N '' -f ssh/user
	cp ssh/user.pub ssh/authorized_keys
	sport=$(srm_free_port)
	printf '%s\n' "Port $sport" "ListenAddress 127.0.0.1" "HostKey $tmp/ssh/host" \
		"AuthorizedKeysFile $tmp/ssh/authorized_keys" "PasswordAuthentication no" \
		"KbdInteractiveAuthentication no" "UsePAM no" "StrictModes no" \
		"PermitRootLogin prohibit-password" "PidFile $tmp/ssh/sshd.pid" >ssh/sshd_config
	"$sshd" -D -f "$tmp/ssh/sshd_config" -E "$tmp/ssh/sshd.log" &
	pids+=($!)
	wait_tcp "$sport"
	box_serve ssh "22=127.0.0.1:$sport"
	# ssh options that only make the test self-contained (no ~/.ssh).
	sshopts="-F /dev/null -i $tmp/ssh/user -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
	# The recipe: ssh -o ProxyCommand='srmudp connect %h %p' box
	env $(me_env "$box_udp") timeout 60 \
		ssh $sshopts -o ProxyCommand='srmudp connect %h %p' root@box 'echo ssh-ok; uname -s' >ssh.out 2>ssh.err
	if grep -qx ssh-ok ssh.out; then ok "ssh -o ProxyCommand='srmudp connect %h %p' box"; else fail "ssh: $(head -c 300 ssh.err)"; fi
	# The ~/.ssh/config form, with the client's settings in a config file.
	mkdir -p home/.config/srmudp home/.ssh
	printf '%s\n' "KEY = $tmp/me.key" "PEERS = box=$BOX_PUB@127.0.0.1:$box_udp" >home/.config/srmudp/client.conf
	printf '%s\n' "Host box" \
		'    ProxyCommand env SRMUDP_CONFIG=$HOME/.config/srmudp/client.conf srmudp connect %h %p' \
		"    User root" "    IdentityFile $tmp/ssh/user" "    StrictHostKeyChecking no" \
		"    UserKnownHostsFile /dev/null" "    BatchMode yes" "    LogLevel ERROR" >home/.ssh/config
	env HOME="$tmp/home" timeout 60 ssh -F "$tmp/home/.ssh/config" box 'echo config-ok' >ssh2.out 2>ssh2.err
	if grep -qx config-ok ssh2.out; then ok "ssh box with ProxyCommand in ~/.ssh/config (SRMUDP_CONFIG=\$HOME/...)"; else fail "ssh config: $(head -c 300 ssh2.err)"; fi
	ran=$((ran + 1))
	if have rsync; then
		mkdir -p src/sub && head -c 1500000 /dev/urandom >src/blob && seq 100000 >src/sub/text
		ln -s blob src/link
		# The recipe: rsync -a -e "ssh -o ProxyCommand='srmudp connect %h %p'" ./site/ box:/srv/site/
		env $(me_env "$box_udp") timeout 120 \
			rsync -a -e "ssh $sshopts -o ProxyCommand='srmudp connect %h %p'" ./src/ "root@box:$tmp/dst/" \
			>rsync.out 2>rsync.err
		if diff -r src dst >/dev/null 2>&1 && [[ -L dst/link ]]; then
			ok "rsync -a over ssh with ProxyCommand (1.5 MB + tree + symlink identical)"
		else
			fail "rsync: $(head -c 300 rsync.err)"
		fi
		echo change >>src/sub/text
		env $(me_env "$box_udp") timeout 120 \
			rsync -a --stats -e "ssh $sshopts -o ProxyCommand='srmudp connect %h %p'" ./src/ "root@box:$tmp/dst/" \
			>rsync2.out 2>rsync2.err
		if diff -r src dst >/dev/null 2>&1 && grep -q 'Number of regular files transferred: 1' rsync2.out; then
			ok "rsync again sends only the changed file"
		else
			fail "rsync update: $(head -c 300 rsync2.err)"
		fi
	else
		note "no rsync: rsync recipe skipped (apt-get install rsync)"
	fi
fi

echo "== redis"
if have redis-server redis-cli; then
	rport=$(srm_free_port)
	redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >redis.log 2>&1 &
	pids+=($!)
	wait_tcp "$rport"
	box_serve redis "6379=127.0.0.1:$rport"
	env $(me_env "$box_udp") timeout 60 srmudp run -- redis-cli -h box ping >redis.out 2>redis.err
	if grep -qx PONG redis.out; then ok "srmudp run -- redis-cli -h box ping"; else fail "redis-cli: $(head -c 300 redis.err)"; fi
	env $(me_env "$box_udp") timeout 60 srmudp run -- redis-cli -h box set recipe srmudp >/dev/null 2>&1
	got=$(redis-cli -p "$rport" get recipe 2>/dev/null)
	if [[ $got == srmudp ]]; then ok "the value set through srmudp is in the server"; else fail "redis set: got '$got'"; fi
	if have redis-benchmark; then
		env $(me_env "$box_udp") timeout 120 srmudp run -- redis-benchmark -h box -q -n 2000 -t set,get \
			>bench.out 2>bench.err
		tr '\r' '\n' <bench.out >bench.txt # progress lines end in CR
		if grep -qE '^SET: .*requests per second' bench.txt && grep -qE '^GET: .*requests per second' bench.txt; then
			ok "srmudp run -- redis-benchmark -h box -q -n 2000 -t set,get"
		else
			fail "redis-benchmark: $(head -c 300 bench.err) $(tail -n 3 bench.txt)"
		fi
	fi
	ran=$((ran + 1))
else
	note "no redis-server/redis-cli: redis recipe skipped"
fi

echo "== curl / http"
if have curl; then
	hport=$(srm_free_port)
	hudp=$(srm_free_port udp)
	mkdir www && head -c 2000000 /dev/urandom >www/file
	# The recipe: SRMUDP_LISTEN=4000 srmudp run -- python3 -m http.server 8000
	# (bound to loopback here, so exposed by name: SRMUDP_EXPOSE)
	(cd www && env SRMUDP_KEY="$tmp/box.key" SRMUDP_LISTEN=127.0.0.1:$hudp "SRMUDP_PEERS=me=$ME_PUB" \
		SRMUDP_EXPOSE="$hport" \
		timeout 300 srmudp run -- python3 -m http.server "$hport" --bind 127.0.0.1 >../http.log 2>&1) &
	pids+=($!)
	wait_tcp "$hport"
	env $(me_env "$hudp") timeout 60 srmudp run -- curl -sS -o got.file "http://box:$hport/file" 2>curl.err
	if cmp -s www/file got.file; then ok "srmudp run -- curl http://box:PORT/file (2 MB, preloaded server)"; else fail "curl: $(head -c 300 curl.err)"; fi
	if have wget; then
		env $(me_env "$hudp") timeout 60 srmudp run -- wget -q -O got2.file "http://box:$hport/file" 2>wget.err
		if cmp -s www/file got2.file; then ok "srmudp run -- wget -O- http://box:PORT/file"; else fail "wget: $(head -c 300 wget.err)"; fi
	fi
	ran=$((ran + 1))
else
	note "no curl: http recipe skipped"
fi

echo "== iperf3"
if have iperf3; then
	iport=$(srm_free_port)
	iperf3 -s -p "$iport" -B 127.0.0.1 >iperf-server.log 2>&1 &
	pids+=($!)
	wait_tcp "$iport"
	box_serve iperf "5201=127.0.0.1:$iport"
	env $(me_env "$box_udp") timeout 60 srmudp run -- iperf3 -c box -t 2 >iperf.out 2>iperf.err
	if grep -qE 'bits/sec.*receiver' iperf.out; then
		ok "srmudp run -- iperf3 -c box -t 2: $(grep -E 'receiver' iperf.out | grep -oE '[0-9.]+ [KMG]?bits/sec' | head -n1)"
	else
		fail "iperf3: $(head -c 300 iperf.err) $(tail -n 3 iperf.out)"
	fi
	env $(me_env "$box_udp") timeout 60 srmudp run -- iperf3 -c box -t 2 -R >iperfR.out 2>iperfR.err
	if grep -qE 'bits/sec.*receiver' iperfR.out; then
		ok "srmudp run -- iperf3 -c box -t 2 -R: $(grep -E 'receiver' iperfR.out | grep -oE '[0-9.]+ [KMG]?bits/sec' | head -n1)"
	else
		fail "iperf3 -R: $(head -c 300 iperfR.err) $(tail -n 3 iperfR.out)"
	fi
	ran=$((ran + 1))
else
	note "no iperf3: iperf3 recipe skipped"
fi

if [[ $ran -eq 0 ]]; then
	echo "SKIP: no recipe could run here"
	exit 77
fi
srm_finish
