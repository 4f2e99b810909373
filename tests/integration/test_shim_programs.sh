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

source "$root/tests/shim/programs.sh"

# Each side's engine port is fixed: wait until the previous program on that
# side has finished exiting (its exit drain holds the port) before the next.
A() { shim_wait_udp_free "$UDP_A"; env "${ENV_A[@]}" LD_PRELOAD="$SHIM" "$@"; }
A_env() { shim_wait_udp_free "$UDP_A"; env "${ENV_A[@]}" "$@"; }
Bg() { local n=$1; shift; shim_wait_udp_free "$UDP_B"; shim_bg "$n" env "${ENV_B[@]}" LD_PRELOAD="$SHIM" "$@"; BG_PID=$SHIM_LAST_PID; }
Bg_env() { local n=$1; shift; shim_wait_udp_free "$UDP_B"; shim_bg "$n" env "${ENV_B[@]}" "$@"; BG_PID=$SHIM_LAST_PID; }
Bg_plain() { local n=$1; shift; shim_bg "$n" "$@"; BG_PID=$SHIM_LAST_PID; }
wait_b_port() { shim_wait_port "$@"; }
free_port() { srm_free_port; }

# --- passthrough and laziness ------------------------------------------------
# SRMUDP_PEERS set, but the program only talks to a local server: no engine
# thread, no UDP socket.
no_engine_without_designated_use() {
	# A client-only process: connects locally, resolves a real name.
	local p out
	p=$(srm_free_port)
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
	p=$(srm_free_port)
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

# SRMUDP_WARMUP: the program `srmudp run` starts handshakes with its peers
# before any connect() (its status shows the session, with no stream), its
# children do not, and off starts nothing until use.
warmup_probe() {
	# Prints: "<established in its own status> <streams> <a child's threads>".
	cat <<EOF
import json, os, subprocess, sys, time
env = dict(os.environ); env.pop("LD_PRELOAD", None)
seen = (False, 0)
for _ in range(50):
    out = subprocess.run(["$CLI", "status", "--json", str(os.getpid())], env=env,
                         capture_output=True, text=True).stdout
    docs = json.loads(out or "[]")
    peers = docs[0]["peers"] if docs else []
    seen = (peers[0]["established"], len(peers[0]["streams"])) if peers else (False, 0)
    if seen[0]:
        break
    time.sleep(0.1)
child = subprocess.run([sys.executable, "-c",
    "import os,time; time.sleep(0.3); print(len(os.listdir('/proc/self/task')))"],
    capture_output=True, text=True).stdout.strip()
print(str(seen[0]).lower(), seen[1], child)
EOF
}
warmup_test() {
	local p out
	p=$(free_port)
	Bg warm-b python3 -c "import socket,time; s=socket.socket(); s.bind(('0.0.0.0',$p)); s.listen(); time.sleep(20)"
	local bp=$BG_PID
	wait_b_port "$p" 10 || return 1
	out=$(env "${ENV_A[@]}" SRMUDP_LISTEN=0 "$CLI" run -- python3 -c "$(warmup_probe)")
	[[ $out == "true 0 1" ]] || { echo "    auto: $out (want: true 0 1)"; stop "$bp"; return 1; }
	out=$(env "${ENV_A[@]}" SRMUDP_LISTEN=0 SRMUDP_WARMUP=off "$CLI" run -- python3 -c \
		"import os,time; time.sleep(0.5); print(len(os.listdir('/proc/self/task')))")
	[[ $out == 1 ]] || { echo "    off: $out threads (want 1)"; stop "$bp"; return 1; }
	out=$(env "${ENV_A[@]}" SRMUDP_LISTEN=0 SRMUDP_WARMUP=on LD_PRELOAD="$SHIM" python3 -c "$(warmup_probe)")
	stop "$bp"
	[[ $out == "true 0 "* ]] || { echo "    on, plain preload: $out (want: true 0 ...)"; return 1; }
}
check "warm-up: srmudp run's program handshakes before connect(), its children and off do not" warmup_test

# connect() fills the stream with a tiny socket buffer to hold POLLOUT low
# until the peer accepts; once open the fd has a full-size buffer again, for
# blocking and non-blocking connects, and the size set while opening wins.
sndbuf_test() {
	local p out
	p=$(free_port)
	Bg sndbuf-b python3 -c "
import socket, threading
s = socket.socket(); s.bind(('0.0.0.0', $p)); s.listen()
while True:
    c = s.accept()[0]
    threading.Thread(target=lambda c=c: [c.sendall(b) for b in iter(lambda: c.recv(65536), b'')], daemon=True).start()"
	local bp=$BG_PID
	wait_b_port "$p" 10 || return 1
	out=$(A python3 -c "
import select, socket
def size(s): return s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
a = socket.create_connection(('b', $p), timeout=10)        # non-blocking inside, SO_ERROR
b = socket.socket(); b.connect(('b', $p))                    # blocking
c = socket.socket(); c.setblocking(False)                    # non-blocking, no SO_ERROR
c.connect_ex(('b', $p)); select.select([], [c], [], 10); c.send(b'x')
d = socket.socket(); d.setblocking(False)                    # size set while opening
d.connect_ex(('b', $p)); d.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 50000)
select.select([], [d], [], 10); d.send(b'x')
print(size(a) >= 65536, size(b) >= 65536, size(c) >= 65536, size(d) == 100000)")
	stop "$bp"
	[[ $out == "True True True True" ]] || { echo "    full size again (a b c) and the app's (d): $out"; return 1; }
}
check "connect: the stream's socket buffer is full size once open" sndbuf_test

# Naming as libc users see it (getent uses getaddrinfo/gethostbyaddr).
naming_test() {
	local v4 v6 fq rev unknown
	v4=$(A getent ahostsv4 b | awk 'NR==1 {print $1}')
	v6=$(A getent ahostsv6 b | awk 'NR==1 {print $1}')
	fq=$(A getent ahostsv4 b.srmudp | awk 'NR==1 {print $1}')
	rev=$(A getent hosts 239.83.0.1 | awk '{print $2}')
	unknown=$(A getent ahosts no-such-peer.invalid; echo "rc=$?")
	echo "    b -> $v4, $v6; b.srmudp -> $fq; 239.83.0.1 -> $rev; unknown -> $unknown"
	[[ $v4 == 239.83.0.1 && $v6 == ff01::5352:0:1 && $fq == 239.83.0.1 && $rev == b && $unknown == "rc=2" ]]
}
check "naming: b, b.srmudp, IPv6 form, reverse lookup, unknown names untouched" naming_test

# A server that listens, then daemonizes (fork, the parent exits): the
# child must take the engine's UDP port over and keep accepting peers.
daemon_test() {
	local p got dpid=""
	p=$(free_port)
	cat >"$WORK/daemon.py" <<'PY'
import os, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
if os.fork():
    os._exit(0)                      # the parent (the engine's owner) leaves
os.setsid()
open(sys.argv[2], "w").write(str(os.getpid()))
for _ in range(20):                  # bounded: at most 20 clients
    c, addr = s.accept()
    c.sendall(("daemon sees %s\n" % addr[0]).encode()); c.close()
PY
	# Bound to loopback and exposed: the child that takes the listener
	# over keeps the exposure (a loopback listener it re-registers).
	Bg daemon-parent SRMUDP_EXPOSE="$p" python3 "$WORK/daemon.py" "$p" "$WORK/daemon.pid"
	wait_b_port "$p" 10 || return 1
	for _ in $(seq 50); do [[ -s $WORK/daemon.pid ]] && break; sleep 0.1; done
	dpid=$(cat "$WORK/daemon.pid" 2>/dev/null)
	[[ -n $dpid ]] && pids+=("$dpid")
	got=$(A timeout 30 python3 -c "
import socket, sys
c = socket.create_connection(('b', $p), timeout=20)
sys.stdout.write(c.makefile().readline())")
	echo "    $got"
	[[ -n $dpid ]] && stop "$dpid"
	[[ $got == "daemon sees 239.83.0.1" ]]
}
check "a server that daemonizes after listen() keeps accepting peers" daemon_test

# The application cannot close or overwrite the engine's fds (they sit at
# or above FD_SETSIZE): close -> EBADF, dup2 onto one -> EBUSY, and the
# stream keeps working afterwards.
engine_fds_test() {
	local p got
	p=$(free_port)
	Bg guard-server socat TCP-LISTEN:"$p",reuseaddr,fork SYSTEM:cat
	local sp=$BG_PID
	wait_b_port "$p" 10 || return 1
	got=$(A timeout 30 python3 -c "
import errno, os, socket
c = socket.create_connection(('b', $p), timeout=20)
c.sendall(b'1'); assert c.recv(1) == b'1'
high = [int(f) for f in os.listdir('/proc/self/fd') if int(f) >= 1024]
res = []
for fd in high:
    what = os.readlink('/proc/self/fd/%d' % fd)
    try: os.close(fd); res.append('closed')
    except OSError as e: res.append(errno.errorcode[e.errno])
    if res[-1] == 'closed': res.append('closed:' + what)
    try: os.dup2(0, fd); res.append('overwritten')
    except OSError as e: res.append(errno.errorcode[e.errno])
c.sendall(b'2'); ok = c.recv(1) == b'2'
print(len(high) > 0, sorted(set(res)), 'stream-ok' if ok else 'stream-broken')
")
	stop "$sp"
	echo "    $got"
	[[ $got == "True ['EBADF', 'EBUSY'] stream-ok" ]] # closed:PATH names an unguarded fd
}
check "engine fds: close gives EBADF, dup2 onto them EBUSY, streams survive" engine_fds_test

# Many threads connecting, echoing and closing at once (the fd table, the
# engine start race, and per-stream state under concurrency).
threads_test() {
	local p got
	p=$(free_port)
	Bg threads-server socat TCP-LISTEN:"$p",reuseaddr,fork,backlog=64 SYSTEM:cat
	local sp=$BG_PID
	wait_b_port "$p" 10 || return 1
	got=$(A timeout 60 python3 -c "
import os, socket, threading
ok = []
def one(i):
    for k in range(5):
        c = socket.create_connection(('b', $p), timeout=30)
        msg = os.urandom(4096 * (i % 4 + 1))
        c.sendall(msg); c.shutdown(socket.SHUT_WR)
        got = b''
        while True:
            d = c.recv(65536)
            if not d: break
            got += d
        c.close()
        ok.append(got == msg)
ts = [threading.Thread(target=one, args=(i,)) for i in range(16)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sum(ok), len(ok))
")
	stop "$sp"
	echo "    echoed correctly: $got"
	[[ $got == "80 80" ]]
}
check "16 threads x 5 streams at once, echoed intact" threads_test

program_checks

srm_finish "$WORK/engine-a.log" "$WORK/engine-b.log"
