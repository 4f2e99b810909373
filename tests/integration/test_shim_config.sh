#!/usr/bin/env bash
# test_shim_config.sh: every malformed SRMUDP_* variable, through the preload
# and through `srmudp run`:
#   - the preloaded program prints exactly one line "srmudp: VARIABLE: ..."
#     (docs/CONFIG.md "Errors"), however often it tries a peer;
#   - its connection to the peer fails with an errno (by name and by virtual
#     address), it does not crash, and its local traffic still works;
#   - `srmudp run` refuses to start it: one line naming the variable, exit 1.
# And with a good configuration but a peer that never answers (issue 18,
# item 4): a program that tries each address of the peer's name (IPv4 and
# IPv6, as libpq and redis-cli do) fails after one connect timeout, not
# two, with one warning on its stderr.  One log line says the engine
# started, and a name one typo from a peer's gets a hint.
#
# Exit 0 pass, 1 fail.
set -uo pipefail
source "$(dirname "$0")/../shim/lib.sh"
shim_init
shim_pair

# A small client: two tries by name, one by virtual address, then a local
# connection that must still work.  Prints one word per try.
cat >"$WORK/probe.py" <<'EOF'
import socket, sys, threading
port = int(sys.argv[1])
out = []
for target in (("b", port), ("b", port), ("239.83.0.1", port)):
    try:
        socket.create_connection(target, timeout=5).close()
        out.append("connected")
    except OSError as e:
        out.append("failed")
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
threading.Thread(target=lambda: srv.accept()[0].sendall(b"L"), daemon=True).start()
c = socket.create_connection(srv.getsockname(), timeout=5)
out.append("local-ok" if c.recv(1) == b"L" else "local-broken")
print(" ".join(out))
EOF

bad_perm_key=$WORK/loose.key
"$CLI" keygen "$bad_perm_key" >/dev/null
chmod 644 "$bad_perm_key"

# VARIABLE VALUE: what the message must name (the variable, or for key
# problems the key file).
cases=(
	"SRMUDP_PEERS|b|SRMUDP_PEERS"
	"SRMUDP_PEERS|b=abc|SRMUDP_PEERS"
	"SRMUDP_PEERS|b=$PUB_B@127.0.0.1|SRMUDP_PEERS"
	"SRMUDP_PEERS|b=$PUB_B@127.0.0.1:99999|SRMUDP_PEERS"
	"SRMUDP_PEERS|b=$PUB_B@[::1:4000|SRMUDP_PEERS"
	"SRMUDP_PEERS|b=$PUB_B b=$PUB_A|SRMUDP_PEERS"
	"SRMUDP_PEERS|b_1=$PUB_B|SRMUDP_PEERS"
	"SRMUDP_PEERS|1234=$PUB_B|SRMUDP_PEERS"
	"SRMUDP_PEERS|me=$PUB_A|SRMUDP_PEERS"
	"SRMUDP_LISTEN|myhost:4000|SRMUDP_LISTEN"
	"SRMUDP_LISTEN|70000|SRMUDP_LISTEN"
	"SRMUDP_LISTEN|-1|SRMUDP_LISTEN"
	"SRMUDP_RENDEZVOUS|nohostport|SRMUDP_RENDEZVOUS"
	"SRMUDP_LOG|verbose|SRMUDP_LOG"
	"SRMUDP_COMPRESS|maybe|SRMUDP_COMPRESS"
	"SRMUDP_CC|fast|SRMUDP_CC"
	"SRMUDP_CONNECT_TIMEOUT|10 s|SRMUDP_CONNECT_TIMEOUT"
	"SRMUDP_IDLE_TIMEOUT|0|SRMUDP_IDLE_TIMEOUT"
	"SRMUDP_WARMUP|early|SRMUDP_WARMUP"
	"SRMUDP_EXPOSE|http|SRMUDP_EXPOSE"
	"SRMUDP_ALLOW|c=22|SRMUDP_ALLOW"
	"SRMUDP_CONFIG|$WORK/no-such-file|SRMUDP_CONFIG"
	"SRMUDP_KEY||SRMUDP_KEY is not set"
	"SRMUDP_KEY|$WORK/no-such-key|SRMUDP_KEY: .*no-such-key"
	"SRMUDP_KEY|$bad_perm_key|SRMUDP_KEY: .*loose.key"
)

port=$(srm_free_port)
for c in "${cases[@]}"; do
	IFS='|' read -r var val want <<<"$c"
	label="$var=\"${val:0:40}\""

	# through the preload
	timeout 60 env "${ENV_A[@]}" SRMUDP_LOG_FILE= "$var=$val" LD_PRELOAD="$SHIM" \
		python3 "$WORK/probe.py" "$port" >"$WORK/out" 2>"$WORK/err"
	rc=$?
	preload_ok() {
		local lines
		lines=$(grep -c . "$WORK/err")
		((rc == 0)) || { echo "    exit $rc"; cat "$WORK/err"; return 1; }
		[[ $(cat "$WORK/out") == "failed failed failed local-ok" ]] ||
			{ echo "    probe: $(cat "$WORK/out")"; return 1; }
		((lines == 1)) || { echo "    $lines lines on stderr:"; cat "$WORK/err"; return 1; }
		grep -q "^srmudp: .*$want" "$WORK/err" || { echo "    stderr: $(cat "$WORK/err")"; return 1; }
	}
	check "preload, $label: one line, peer unreachable, local fine" preload_ok
	sed 's/^/      /' "$WORK/err" | head -n1

	# through srmudp run
	timeout 30 env "${ENV_A[@]}" SRMUDP_LOG_FILE= "$var=$val" "$CLI" run -- true >"$WORK/out" 2>"$WORK/err"
	rc=$?
	run_ok() {
		((rc == 1)) || { echo "    exit $rc"; cat "$WORK/err"; return 1; }
		(($(grep -c . "$WORK/err") == 1)) || { cat "$WORK/err"; return 1; }
		grep -q "^srmudp run: .*$want" "$WORK/err" || { echo "    stderr: $(cat "$WORK/err")"; return 1; }
	}
	check "srmudp run, $label: refused with one line, exit 1" run_ok
done

# A peer that never answers (nothing on UDP_B): every address of "b" is
# tried in turn, like libpq; the second fails at once.
cat >"$WORK/both.py" <<'EOF'
import errno, socket, sys, time
t0 = time.monotonic()
addrs = socket.getaddrinfo("b", int(sys.argv[1]), type=socket.SOCK_STREAM)
out = []
for fam, typ, proto, _, sa in addrs:
    s = socket.socket(fam, typ, proto)
    try:
        s.connect(sa)
        out.append("connected")
    except OSError as e:
        out.append(errno.errorcode.get(e.errno, str(e.errno)))
    s.close()
print("%d %s %.2f" % (len(addrs), ",".join(out), time.monotonic() - t0))
EOF
timeout 60 env "${ENV_A[@]}" SRMUDP_LOG=warn SRMUDP_LOG_FILE= SRMUDP_CONNECT_TIMEOUT=2s \
	"$CLI" run -- python3 "$WORK/both.py" "$port" >"$WORK/out" 2>"$WORK/err"
read -r naddr results secs <"$WORK/out"
echo "      ${naddr:-?} addresses: ${results:-?} in ${secs:-?} s; stderr: $(tr '\n' '|' <"$WORK/err")"
want=$(for ((i = 0; i < ${naddr:-1}; i++)); do printf 'EHOSTUNREACH\n'; done | paste -sd,)
check "unreachable peer: both addresses tried" test "${naddr:-0}" -ge 2
check "unreachable peer: every try fails EHOSTUNREACH" test "${results:-}" = "$want"
check "unreachable peer: one connect timeout in all (${secs:-?} s, timeout 2 s)" \
	awk -v s="${secs:-99}" 'BEGIN { exit !(s >= 1.8 && s < 3.5) }'
check "unreachable peer: one warning on the program's stderr" \
	test "$(grep -c 'handshake failed' "$WORK/err")" -eq 1

# One line for the engine's start, and a hint for a mistyped peer name
# (issue 18, item 7): "bpb" goes to the system resolver, with a hint.
timeout 60 env "${ENV_A[@]}" SRMUDP_PEERS="bob=$PUB_B@127.0.0.1:$UDP_B" SRMUDP_LOG_FILE="$WORK/typo.log" \
	SRMUDP_LISTEN=127.0.0.1:0 SRMUDP_WARMUP=on LD_PRELOAD="$SHIM" python3 -c '
import socket, time
try:
    socket.getaddrinfo("bpb", 80)
except OSError:
    pass
time.sleep(0.5)' >/dev/null 2>&1
# (the engine's own line, with its peer count; not a second one from the preload)
check "one log line for the engine's start" \
	bash -c "grep -q 'engine started' '$WORK/typo.log' && ! grep 'engine started' '$WORK/typo.log' | grep -vq ' with [0-9]* peers'"
check "a mistyped peer name gets a hint" grep -q 'no peer named bpb (did you mean bob?)' "$WORK/typo.log"
srm_finish
