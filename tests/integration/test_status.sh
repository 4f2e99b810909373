#!/usr/bin/env bash
# test_status.sh: `srmudp status` against real engines on loopback.
#
#   engine S: srmudp serve --expose P   (P: a socat echo service on 127.0.0.1)
#   engine C: srmudp run -- socat ...   (a preloaded program, stream to S:P open)
#
#   - status lists both engines (pid, program, UDP port), their peers with
#     fingerprint, direct path and address, the open stream with its port;
#   - --json is one JSON array with the same, and drop counters by reason
#     (made non-zero by datagrams this test sends to S: a bad version, a
#     DATA packet for an unknown receiver index);
#   - documents with unknown fields are shown, truncated ones and stuck
#     engines skipped (fake engines on sockets this test makes); a peer
#     whose session ended shows "was direct ADDR" and no RTT;
#   - a `srmudp rendezvous` is listed with its counters;
#   - --watch redraws (ANSI clear) and stops on SIGINT with exit 0;
#   - kill -9 of C leaves its socket; the next status removes it;
#   - a runtime directory another user made first is not used: engines
#     and status use a private one beside it, and say so once;
#   - runtime directory 0700, sockets 0600, and another uid (nobody, via
#     setpriv, when root) can neither connect nor see the engines.
# Traffic stays on 127.0.0.1.
#
# Usage: test_status.sh [BUILD]   Exit 0 pass, 1 fail, 77 skipped.
set -uo pipefail

source "$(dirname "$0")/../lib.sh"
srm_build "${1:-}"
srm_require_built --shim
srm_require_tools socat python3

srm_tmpdir status --cd
srm_on_exit 'exec 3>&- 2>/dev/null'
chmod 0755 "$tmp" # nobody must reach the runtime directory's parent

srm_clean_env
# A private runtime directory: this test's engines only.
srm_private_runtime
rundir="$XDG_RUNTIME_DIR/srmudp"
srm_keygen s c
S=$(cat s.pub)
C=$(cat c.pub)
# Fixed ports, spread by PID so parallel runs rarely collide.
base=$((20000 + ($$ % 2000) * 4))
uS=$((base)) uC=$((base + 1)) echo_port=$((base + 2))

socat TCP-LISTEN:$echo_port,bind=127.0.0.1,reuseaddr,fork EXEC:cat 2>echo.err &
pids+=($!)
env SRMUDP_KEY=s.key SRMUDP_LISTEN=127.0.0.1:$uS "SRMUDP_PEERS=cli=$C" \
	timeout 120 "$SRMUDP" serve --expose "$echo_port" >serve.out 2>serve.err &
tpid=$!
pids+=($tpid)
for _ in $(seq 50); do grep -q '^srmudp serve: UDP port' serve.err && break; sleep 0.1; done
spid=$(pgrep -P "$tpid" | head -n1) # the engine is timeout's child

# The preloaded client: socat with its stdin held open on a fifo.
mkfifo cin
env SRMUDP_KEY=c.key SRMUDP_LISTEN=127.0.0.1:$uC "SRMUDP_PEERS=srv=$S@127.0.0.1:$uS" \
	"$SRMUDP" run -- socat -u - TCP:srv:$echo_port <cin >cout 2>cerr &
cpid=$!
pids+=($cpid)
exec 3>cin
printf 'hello through srmudp\n' >&3

# Wait until the client's stream shows up as open.
# Root also sees other users' engines (and other tests' ones): every
# status call below names this test's processes.
for _ in $(seq 100); do
	timeout 10 "$SRMUDP" status "$spid" "$cpid" >st.txt 2>st.err
	[[ $(grep -cE "stream .* port $echo_port +open$" st.txt) -ge 2 ]] && [[ $(grep -c '^engine ' st.txt) -ge 2 ]] && break
	sleep 0.1
done

echo "== status table"
check "status lists the serve engine (pid, UDP port)" \
	grep -qE "^engine $spid +srmudp +udp $uS " st.txt
check "status lists the preloaded socat (pid, program, UDP port)" \
	grep -qE "^engine $cpid +socat +udp $uC " st.txt
check "peer srv: fingerprint and direct path to S" \
	grep -qE "^ +srv +${S:0:8} +direct 127\.0\.0\.1:$uS " st.txt
check "peer cli: fingerprint and direct path to C" \
	grep -qE "^ +cli +${C:0:8} +direct 127\.0\.0\.1:$uC " st.txt
check "the stream, with its port and state, on both sides" \
	test "$(grep -cE "stream +[0-9]+ +(in|out) +port $echo_port +open$" st.txt)" -eq 2
check "a peer table header with every column" \
	grep -qE 'PEER +KEY +PATH +RTT +LOSS +CWND +PMTU +IN +OUT +RATIO +HANDSHAKE' st.txt
check "drop counters line" grep -q '^  drops:' st.txt

echo "== drops and --json"
# Bad version byte (type DATA, version 9), then a well-formed DATA header
# for a receiver index nobody holds: two drop reasons at S.
python3 - "$uS" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
port = int(sys.argv[1])
s.sendto(bytes([4, 9, 0, 0]) + bytes(60), ("127.0.0.1", port))
s.sendto(bytes([4, 1, 0, 0]) + (0x5eed5eed).to_bytes(4, "little") + (7).to_bytes(8, "little") + bytes(40), ("127.0.0.1", port))
EOF
sleep 0.3
timeout 10 "$SRMUDP" status --json "$spid" "$cpid" >st.json 2>st.err
rc=$?
check "--json exits 0" test "$rc" -eq 0
cat >check.py <<'EOF'
import json, sys
docs = json.load(open("st.json"))
spid, cpid, port, uS, uC = (int(x) for x in sys.argv[1:6])
by = {d["pid"]: d for d in docs}
assert isinstance(docs, list) and spid in by and cpid in by, "both engines"
s, c = by[spid], by[cpid]
assert c["program"] == "socat" and s["udp_port"] == uS and c["udp_port"] == uC
ps, pc = s["peers"][0], c["peers"][0]
assert ps["name"] == "cli" and pc["name"] == "srv"
assert ps["path"] == {"kind": "direct", "address": "127.0.0.1:%d" % uC}, ps["path"]
assert pc["established"] and pc["handshake_age_ms"] >= 0
for p in (ps, pc):
    assert p["pmtu"] >= 1200 and p["cwnd_bytes"] > 0 and p["rtt_ms"] >= 0
    assert p["bytes_in"] > 0 and p["bytes_out"] > 0
    assert any(x["port"] == port and x["state"] == "open" for x in p["streams"]), p["streams"]
assert s["drops"]["version"] >= 1, s["drops"]
assert s["drops"]["unknown-index"] >= 1, s["drops"]
assert set(c["drops"]) >= {"malformed", "mac", "auth", "replay"}
print("ok")
EOF
check "--json: both documents with peers, paths, streams and drop reasons" \
	bash -c "python3 check.py $spid $cpid $echo_port $uS $uC >check.out 2>&1 || { cat check.out; false; }"
timeout 10 "$SRMUDP" status "$spid" >st2.txt 2>&1
check "the table shows the drops by reason" grep -qE '^  drops:.*version [0-9]+.*unknown-index [0-9]+' st2.txt
timeout 10 "$SRMUDP" status --json "$cpid" >one.json
check "status PID: only that engine" \
	python3 -c "import json; d=json.load(open('one.json')); assert [e['pid'] for e in d]==[$cpid]"
timeout 10 "$SRMUDP" status --bogus >/dev/null 2>err
rc=$?
check "an unknown option: exit 2, quoted" bash -c "[[ $rc -eq 2 ]] && grep -q '\"--bogus\"' err"

echo "== tolerance: odd documents from other versions, garbage, a stuck engine"
cat >fake.py <<'EOF'
import os, socket, sys, threading, time
d = sys.argv[1]
docs = {
    # A newer engine: unknown fields everywhere, a missing peer field,
    # escapes, a control character in the name, nested extras.
    "3999991": b'{"pid":3999991,"program":"fu\\u0001ture","future":{"x":[1,2,{"y":null}]},'
               b'"udp_port":7,"drops":{"new-reason":5,"auth":0},"peers":[{"name":"p\\"q",'
               b'"fingerprint":"ABCDEFGH","path":{"kind":"direct","address":"[::1]:9"},'
               b'"established":true,"rtt_ms":1.5e0,"streams":[{"id":1,"port":80,"state":"open",'
               b'"direction":"out","extra":true}],"more":"x","drops":{"auth":3}}]}\n',
    # a session that ended: its last path, no RTT, the last handshake's age
    "3999994": b'{"pid":3999994,"program":"ended","udp_port":8,"peers":[{"name":"gone",'
               b'"fingerprint":"ZYXWVUTS","path":{"kind":"direct","address":"127.0.0.1:9"},'
               b'"established":false,"handshake_age_ms":200000,"streams":[]}]}\n',
    "3999992": b'{"pid": 3999992, "peers": [ {"name": "trunc',   # cut short
    "3999993": None,                                           # never answers
}
socks = []
for name, body in docs.items():
    path = os.path.join(d, name + ".sock")
    s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(8); socks.append((s, body))
def serve(s, body):
    while True:
        c, _ = s.accept()
        if body is None:
            threading.Thread(target=lambda c=c: (time.sleep(30), c.close()), daemon=True).start()
            continue
        try:
            c.sendall(body)
        except OSError:
            pass  # a sweep only connects and closes
        c.close()
for s, body in socks:
    threading.Thread(target=serve, args=(s, body), daemon=True).start()
print("ready", flush=True)
time.sleep(60)
EOF
python3 fake.py "$rundir" >fake.out 2>fake.err &
fpid=$!
pids+=($fpid)
for _ in $(seq 50); do grep -q ready fake.out && break; sleep 0.1; done
timeout 20 "$SRMUDP" status 3999991 3999992 3999993 "$spid" >odd.txt 2>odd.err
rc=$?
check "odd documents: status still exits 0" test "$rc" -eq 0
check "a document with unknown fields is shown (name escaped, control char replaced, peer drops)" \
	bash -c "grep -qE '^engine 3999991 +fu\?ture +udp 7' odd.txt && grep -qE '^ +p\"q +ABCDEFGH +direct \[::1\]:9 ' odd.txt && grep -q 'new-reason 5' odd.txt && grep -qE '^      drops: auth 3\$' odd.txt"
check "a truncated document and a stuck engine are skipped, the real one shown" \
	bash -c "! grep -qE '^engine 399999[23]' odd.txt && grep -qE '^engine $spid ' odd.txt"
timeout 20 "$SRMUDP" status 3999994 >ended.txt 2>&1
check "a session that ended: 'was direct', no RTT, the last handshake's age (not never)" \
	grep -qE '^ +gone +ZYXWVUTS +was direct 127\.0\.0\.1:9 +- .* 3m$' ended.txt
timeout 20 "$SRMUDP" status --json 3999991 3999992 3999993 >odd.json 2>&1
check "--json: only the well-formed document, valid JSON" \
	python3 -c "import json; d=json.load(open('odd.json')); assert [e['pid'] for e in d]==[3999991]"
kill "$fpid" 2>/dev/null
wait "$fpid" 2>/dev/null
rm -f "$rundir"/39999*.sock

echo "== a rendezvous server"
rport=$((base + 3))
timeout 120 "$SRMUDP" rendezvous --listen 127.0.0.1:$rport >rdv.out 2>rdv.err &
rtpid=$!
pids+=($rtpid)
sleep 0.3
rpid=$(pgrep -P "$rtpid" | head -n1)
python3 -c "import socket; socket.socket(type=socket.SOCK_DGRAM).sendto(bytes([8,1,0,0,0x81,0,1]) + bytes(130), ('127.0.0.1', $rport))"
for _ in $(seq 30); do
	timeout 10 "$SRMUDP" status "$rpid" >rdv.txt 2>&1
	grep -q 'malformed 1' rdv.txt && break
	sleep 0.1
done
check "status lists the rendezvous server with its UDP port and store" \
	grep -qE "^rendezvous $rpid +srmudp +udp $rport +store memory" rdv.txt
check "... and its counters (one malformed packet, one received)" \
	bash -c "grep -qE 'rx_packets 1( |$)' rdv.txt && grep -qE 'malformed 1( |$)' rdv.txt"
timeout 10 "$SRMUDP" status --json "$rpid" >rdv.json 2>&1
check "--json: kind rendezvous with counters" \
	python3 -c "import json; d=json.load(open('rdv.json'))[0]; assert d['kind']=='rendezvous' and d['counters']['malformed']==1 and d['udp_port']==$rport"
kill -TERM "$rpid"
for _ in $(seq 50); do kill -0 "$rpid" 2>/dev/null || break; sleep 0.1; done
check "the rendezvous server removes its socket on exit" test ! -e "$rundir/$rpid.sock"

echo "== --watch"
timeout --preserve-status -s INT 3.5 "$SRMUDP" status --watch "$spid" "$cpid" >watch.out 2>&1
rc=$?
check "--watch stops on SIGINT with exit 0" test "$rc" -eq 0
check "--watch redrew at least twice (ANSI clear)" \
	test "$(grep -o $'\e\\[2J' watch.out | wc -l)" -ge 2
check "--watch shows the engines" grep -qE "^engine $cpid +socat" watch.out

echo "== modes and other users"
check "runtime directory mode 0700" test "$(stat -c %a "$rundir")" = 700
check "control sockets mode 0600" \
	bash -c "[[ -S $rundir/$spid.sock && \$(stat -c %a $rundir/$spid.sock) == 600 ]]"
if [[ $(id -u) -eq 0 ]] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
	as_nobody=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
	"${as_nobody[@]}" socat -u "UNIX-CONNECT:$rundir/$spid.sock" - >nobody.out 2>nobody.err
	check "another uid cannot connect to the socket" \
		bash -c "[[ ! -s nobody.out ]] && grep -qi 'permission denied' nobody.err"
	"${as_nobody[@]}" env -u XDG_RUNTIME_DIR HOME=/ TMPDIR=/tmp timeout 10 "$SRMUDP" status --json \
		>nobody.json 2>nobody.err
	check "another uid's status does not list our engines" \
		bash -c "! grep -q '\"pid\":$spid' nobody.json"
	# Even past the directory, the engine checks SO_PEERCRED: a copy of
	# the socket path in a world-reachable place gets no document.
	mkdir -m 0711 pub
	ln "$rundir/$spid.sock" pub/s.sock 2>/dev/null && chmod 0666 pub/s.sock
	if [[ -S pub/s.sock ]]; then
		"${as_nobody[@]}" socat -u "UNIX-CONNECT:$tmp/pub/s.sock" - >nobody2.out 2>/dev/null
		check "the engine refuses another uid (SO_PEERCRED): no document" test ! -s nobody2.out
		rm -f pub/s.sock
	fi
else
	echo "  note  not root or no setpriv/nobody: other-uid checks skipped"
fi

echo "== a crashed engine's socket"
check "C's socket exists while it runs" test -S "$rundir/$cpid.sock"
kill -9 "$cpid"
wait "$cpid" 2>/dev/null
exec 3>&-
check "kill -9 leaves C's socket behind" test -S "$rundir/$cpid.sock"
timeout 10 "$SRMUDP" status "$spid" "$cpid" >st3.txt 2>&1
check "the next status removes the stale socket" test ! -e "$rundir/$cpid.sock"
check "... and lists only S" \
	bash -c "grep -qE '^engine $spid ' st3.txt && ! grep -qE '^engine $cpid ' st3.txt"
check "S's socket is untouched" test -S "$rundir/$spid.sock"

kill -TERM "$spid"
for _ in $(seq 100); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
check "serve removes its socket on exit" test ! -e "$rundir/$spid.sock"
timeout 10 "$SRMUDP" status "$spid" "$cpid" >st4.txt 2>&1
check "no engines: says so" grep -q 'no srmudp engines running' st4.txt
timeout 10 "$SRMUDP" status --json "$spid" "$cpid" >st4.json 2>&1
check "no engines: --json prints []" python3 -c "import json; assert json.load(open('st4.json')) == []"


echo "== a squatted runtime directory (issue 18, item 5)"
# Another user made the directory first (root: really another uid; else
# one open to everyone): engines and status use a private one beside it.
squat=$tmp/squat
mkdir -p "$squat" && chmod 0700 "$squat"
mkdir -m 0777 "$squat/srmudp" && chmod 0777 "$squat/srmudp"
[[ $(id -u) -eq 0 ]] && chown nobody "$squat/srmudp" 2>/dev/null
env XDG_RUNTIME_DIR="$squat" SRMUDP_KEY=c.key SRMUDP_LISTEN=127.0.0.1:0 "SRMUDP_PEERS=srv=$S@127.0.0.1:$uS" \
	SRMUDP_WARMUP=on SRMUDP_LOG_FILE=squat.log "$SRMUDP" run -- sleep 30 >/dev/null 2>&1 &
qpid=$!
pids+=($qpid)
for _ in $(seq 50); do
	XDG_RUNTIME_DIR=$squat timeout 10 "$SRMUDP" status "$qpid" >sq.txt 2>sq.err
	grep -qE "^engine $qpid " sq.txt && break
	sleep 0.1
done
check "status finds the engine past a squatted runtime directory" grep -qE "^engine $qpid +sleep" sq.txt
check "status says the directory is not ours, and where it looks instead" \
	grep -qE "runtime directory $squat/srmudp is not ours alone .*: using $squat/srmudp\.[A-Za-z0-9]{6}" sq.err
check "the engine warned once" test "$(grep -c 'is not ours alone' squat.log)" -eq 1
check "the private directory is ours, mode 0700" \
	bash -c "stat -c '%a %u' $squat/srmudp.?????? | grep -qx '700 $(id -u)'"
check "nothing of ours in the squatted one" bash -c "! ls $squat/srmudp | grep -q ."
kill "$qpid" 2>/dev/null

srm_finish
