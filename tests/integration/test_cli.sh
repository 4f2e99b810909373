#!/usr/bin/env bash
# test_cli.sh: the srmudp command, from the outside.
#   - keygen: mode 0600, never overwrites, prints what `pubkey` prints;
#     a key file readable by group/others is refused with a message saying so;
#   - usage/--help/--version for every subcommand;
#   - `srmudp run` with each kind of bad configuration: non-zero exit, exactly
#     one line naming the variable and the token, never a signal;
#   - `srmudp run` refuses setuid, statically linked programs (and Go, if
#     one is at hand), runs a normal one with libsrmudp.so first in
#     LD_PRELOAD and passes its exit status through;
#   - serve + connect over loopback: data both ways, half-close, refused
#     port, unknown peer;
#   - make install / pkg-config / make uninstall into a temporary prefix.
# Traffic stays on 127.0.0.1.
#
# Usage: test_cli.sh [BUILD]   (BUILD defaults to $SRM_BUILD or build)
# Exit 0 pass, 1 fail.
set -uo pipefail

source "$(dirname "$0")/../lib.sh"
srm_build "${1:-}"
srm_require_built
srm_tmpdir cli --cd
# Only SRMUDP_* set by a test may reach the commands.
srm_clean_env

# run_cli OUT ERR ARGS...: run srmudp with a time bound; sets $rc.
run_cli() {
	local out=$1 err=$2
	shift 2
	timeout 20 "$SRMUDP" "$@" >"$out" 2>"$err" </dev/null
	rc=$?
}

# expect_error NAME WANT ENV... : `srmudp run true` under ENV fails with exit
# 1, no signal, exactly one line on stderr, containing WANT.
expect_error() {
	local name=$1 want=$2
	shift 2
	env "$@" timeout 20 "$SRMUDP" run true >out 2>err </dev/null
	rc=$?
	local lines
	lines=$(wc -l <err)
	if [[ $rc -eq 1 && $lines -eq 1 ]] && grep -qF -- "$want" err; then
		ok "bad config: $name"
	else
		fail "bad config: $name (exit $rc, $lines lines, want '$want'): $(head -c 300 err)"
	fi
}

echo "== keys"
run_cli pub1 err keygen a.key
check "keygen exits 0" test "$rc" -eq 0
check "keygen prints one 43-character token" \
	grep -qxE '[A-Za-z0-9_-]{43}' pub1
check "key file mode is 0600" test "$(stat -c %a a.key)" = 600
before=$(sha256sum a.key)
run_cli out err keygen a.key
check "keygen refuses to overwrite (exit 1)" test "$rc" -eq 1
check "keygen says the file exists" grep -q 'already exists' err
check "the existing key is untouched" test "$(sha256sum a.key)" = "$before"
run_cli pub2 err pubkey a.key
check "pubkey prints the keygen key" cmp -s pub1 pub2
umask 077
run_cli out err keygen sub/dir/none.key
check "keygen into a missing directory fails cleanly" test "$rc" -eq 1
run_cli pubc err keygen c.key
A=$(cat pub1)
C=$(cat pubc)
check "two keys differ" test "$A" != "$C"

cp a.key open.key
chmod 0644 open.key
run_cli out err pubkey open.key
check "pubkey refuses a 0644 key file" test "$rc" -eq 1
check "... saying group/others can read it" grep -qiE 'group|others' err
expect_error "0644 key refused by run" "group or others" SRMUDP_KEY=open.key
printf 'not a key\n' >junk.key
chmod 600 junk.key
run_cli out err pubkey junk.key
check "pubkey refuses a malformed key file" test "$rc" -eq 1

echo "== usage"
run_cli out err
check "no arguments: usage on stderr, exit 2" \
	bash -c "[[ $rc -eq 2 ]] && grep -q 'Usage: srmudp' err"
run_cli out err --help
check "--help: usage on stdout, exit 0" \
	bash -c "[[ $rc -eq 0 ]] && grep -q 'Usage: srmudp' out"
run_cli out err --version
check "--version" bash -c "[[ $rc -eq 0 ]] && grep -qE '^srmudp [0-9]' out"
for c in keygen pubkey run serve connect status rendezvous; do
	run_cli out err "$c" --help
	check "$c --help" bash -c "[[ $rc -eq 0 ]] && grep -q 'Usage: srmudp $c' out"
done
run_cli out err frobnicate
check "unknown command quoted" bash -c "[[ $rc -eq 2 ]] && grep -q '\"frobnicate\"' err"
run_cli out err connect onlyname
check "connect with one argument: usage error" test "$rc" -eq 2
run_cli out err connect db 99999
check "connect with a bad port quotes it" \
	bash -c "[[ $rc -eq 2 ]] && grep -q '\"99999\"' err"
run_cli out err serve
check "serve without --expose: usage error" test "$rc" -eq 2
run_cli out err serve --expose 22,abc
check "serve --expose quotes a bad port" \
	bash -c "[[ $rc -eq 2 ]] && grep -q '\"abc\"' err"
run_cli out err serve --expose 22,22
check "serve --expose refuses a repeated port" test "$rc" -eq 2
run_cli out err serve --expose 22=nowhere
check "serve --expose refuses a bad target" \
	bash -c "[[ $rc -eq 2 ]] && grep -q '\"22=nowhere\"' err"

echo "== run: bad configuration"
K="SRMUDP_KEY=$tmp/a.key"
expect_error "no key" "SRMUDP_KEY is not set"
expect_error "missing key file" "nokey" SRMUDP_KEY=nokey
expect_error "malformed key file" "junk.key" SRMUDP_KEY=junk.key
expect_error "peer without =" 'SRMUDP_PEERS: expected NAME=PUBKEY[@HOST:PORT], got "abc"' \
	"$K" SRMUDP_PEERS=abc
expect_error "bad public key" 'SRMUDP_PEERS: bad public key "abc" for peer "db"' \
	"$K" SRMUDP_PEERS=db=abc
expect_error "bad peer name" 'SRMUDP_PEERS: bad peer name "d_b"' "$K" "SRMUDP_PEERS=d_b=$C"
expect_error "numeric peer name" 'bad peer name "42"' "$K" "SRMUDP_PEERS=42=$C"
expect_error "endpoint without port" 'bad endpoint "10.0.0.1" for peer "db"' \
	"$K" "SRMUDP_PEERS=db=$C@10.0.0.1"
expect_error "endpoint port out of range" 'bad endpoint "10.0.0.1:70000"' \
	"$K" "SRMUDP_PEERS=db=$C@10.0.0.1:70000"
expect_error "bare IPv6 endpoint" 'IPv6 addresses need brackets' \
	"$K" "SRMUDP_PEERS=db=$C@::1:5000"
expect_error "duplicate peer" 'SRMUDP_PEERS: duplicate peer name "db"' \
	"$K" "SRMUDP_PEERS=db=$C db=$A"
expect_error "duplicate key" 'have the same public key' \
	"$K" "SRMUDP_PEERS=db=$C,web=$C"
expect_error "own key as a peer" "SRMUDP_PEERS: peer \"me\" has this host's own public key" \
	"$K" "SRMUDP_PEERS=me=$A"
expect_error "listen" 'SRMUDP_LISTEN: bad listen address "99999"' "$K" SRMUDP_LISTEN=99999
expect_error "listen host" '"myhost" is not a numeric' "$K" SRMUDP_LISTEN=myhost:1
expect_error "rendezvous" 'SRMUDP_RENDEZVOUS: bad endpoint "10.0.0.1"' \
	"$K" SRMUDP_RENDEZVOUS=10.0.0.1
expect_error "log level" 'SRMUDP_LOG: bad value "loud"' "$K" SRMUDP_LOG=loud
expect_error "log file" "SRMUDP_LOG_FILE: cannot open \"$tmp/no/dir/log\"" \
	"$K" SRMUDP_LOG_FILE=no/dir/log
expect_error "compress" 'SRMUDP_COMPRESS: bad value "maybe"' "$K" SRMUDP_COMPRESS=maybe
expect_error "cc" 'SRMUDP_CC: bad value "vegas"' "$K" SRMUDP_CC=vegas
expect_error "connect timeout" 'SRMUDP_CONNECT_TIMEOUT: bad duration "10x"' \
	"$K" SRMUDP_CONNECT_TIMEOUT=10x
expect_error "idle timeout" 'SRMUDP_IDLE_TIMEOUT: duration "0"' "$K" SRMUDP_IDLE_TIMEOUT=0
expect_error "missing config file" 'SRMUDP_CONFIG: cannot read' "$K" SRMUDP_CONFIG=none.conf
printf '# test\nSRMUDP_LOG = warn\nSRMUDP_CC = fast\n' >bad.conf
expect_error "config file line" "bad.conf:3: SRMUDP_CC: bad value \"fast\"" \
	"$K" SRMUDP_CONFIG=bad.conf
printf 'NOPE = 1\n' >bad2.conf
expect_error "config file unknown key" 'bad2.conf:1: unknown key "NOPE"' \
	"$K" SRMUDP_CONFIG=bad2.conf
printf 'KEY = a.key\nPEERS = db=%s\n' "$C" >good.conf
env SRMUDP_CONFIG=good.conf timeout 20 "$SRMUDP" run true >out 2>err
check "a good config file passes (key relative to the file)" test $? -eq 0

echo "== run: what it refuses and what it runs"
run_env=(env "$K" "SRMUDP_PEERS=db=$C@127.0.0.1:9")
cp "$(type -P true)" sutrue
chmod u+s sutrue
"${run_env[@]}" timeout 20 "$SRMUDP" run ./sutrue >out 2>err
rc=$?
check "setuid program refused (exit 126)" test "$rc" -eq 126
check "... with a message that says setuid" grep -q 'is setuid' err
cp "$(type -P true)" sgtrue
chmod g+s sgtrue
"${run_env[@]}" timeout 20 "$SRMUDP" run ./sgtrue >out 2>err
check "setgid program refused" bash -c "[[ $? -eq 126 ]] && grep -q 'is setgid' err"

printf 'int main(void) { return 0; }\n' >static.c
if gcc -static -o static static.c 2>/dev/null; then
	"${run_env[@]}" timeout 20 "$SRMUDP" run ./static >out 2>err
	rc=$?
	check "static program refused (exit 126)" test "$rc" -eq 126
	check "... with a message that says statically linked" grep -q 'statically linked' err
	printf '#!%s/static\n' "$tmp" >via-static.sh
	chmod +x via-static.sh
	"${run_env[@]}" timeout 20 "$SRMUDP" run ./via-static.sh >out 2>err
	check "script whose interpreter is static refused" test $? -eq 126
else
	echo "  note  no static libc (gcc -static failed): static-binary case skipped"
fi
gobin=""
for g in /usr/lib/go*/bin/* /usr/local/go/bin/go /usr/lib/google-cloud-sdk/bin/kubectl; do
	[[ -f $g && -x $g ]] && grep -qa 'go.buildid\|\.go\.buildinfo' "$g" 2>/dev/null && gobin=$g && break
done
if [[ -n $gobin ]]; then
	"${run_env[@]}" timeout 20 "$SRMUDP" run "$gobin" >out 2>err
	check "Go program refused ($gobin)" bash -c "[[ $? -eq 126 ]] && grep -q 'Go program' err"
else
	echo "  note  no Go binary on this machine: Go case skipped"
fi
"${run_env[@]}" timeout 20 "$SRMUDP" run no-such-command-xyz >out 2>err
check "missing command: exit 127, quoted" \
	bash -c "[[ $? -eq 127 ]] && grep -q '\"no-such-command-xyz\": command not found' err"

"${run_env[@]}" LD_PRELOAD= timeout 20 "$SRMUDP" run -- sh -c 'echo "$LD_PRELOAD"; exit 7' >out 2>err
rc=$?
check "run passes the exit status through" test "$rc" -eq 7
check "libsrmudp.so is preloaded" grep -q "^$SHIM\$" out
"${run_env[@]}" SRMUDP_PRELOAD=/nonexistent/lib.so timeout 20 "$SRMUDP" run true >out 2>err
check "SRMUDP_PRELOAD pointing nowhere is an error" \
	bash -c "[[ $? -eq 1 ]] && grep -q 'SRMUDP_PRELOAD' err"

# ssh_proxy_check: ssh to a private sshd through `srmudp serve` and
# ProxyCommand='srmudp connect %h %p' (needs root and sshd; else a note).
ssh_proxy_check() {
	local sshd port d="$tmp/ssh" sspid s3 u3 want
	sshd=$(type -P sshd || echo /usr/sbin/sshd)
	if [[ $(id -u) -ne 0 || ! -x $sshd ]] || ! command -v ssh >/dev/null; then
		echo "  note  no sshd or not root: ssh ProxyCommand case skipped"
		return 0
	fi
	mkdir -p "$d" /run/sshd
	if ! ssh-keygen -q -t ed25519 -N '' -f "$d/host" || ! ssh-keygen -q -t ed25519 -N '' -f "$d/user"; then
		fail "ssh-keygen"
		return 0
	fi
	cp "$d/user.pub" "$d/authorized_keys"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	printf '%s\n' "Port $port" "ListenAddress 127.0.0.1" "HostKey $d/host" \
		"AuthorizedKeysFile $d/authorized_keys" "PasswordAuthentication no" \
		"KbdInteractiveAuthentication no" "UsePAM no" "StrictModes no" \
		"PermitRootLogin prohibit-password" "PidFile $d/sshd.pid" >"$d/sshd_config"
	"$sshd" -D -f "$d/sshd_config" -E "$d/sshd.log" &
	sspid=$!
	pids+=($sspid)
	env SRMUDP_KEY=a.key SRMUDP_LISTEN=127.0.0.1:0 "SRMUDP_PEERS=cli=$C" \
		timeout 120 "$SRMUDP" serve --expose "$port" >serve3.out 2>serve3.err &
	s3=$!
	pids+=($s3)
	for _ in $(seq 50); do grep -q '^srmudp serve: UDP port' serve3.err && break; sleep 0.1; done
	u3=$(sed -n 's/^srmudp serve: UDP port \([0-9]*\).*/\1/p' serve3.err)
	env SRMUDP_KEY="$tmp/c.key" "SRMUDP_PEERS=box=$A@127.0.0.1:$u3" timeout 60 \
		ssh -F /dev/null -i "$d/user" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o BatchMode=yes -o LogLevel=ERROR -o ProxyCommand="$SRMUDP connect %h %p" \
		-p "$port" root@box 'echo ssh-ok; head -c 2000000 /dev/zero | sha256sum' >ssh.out 2>ssh.err
	want=$(head -c 2000000 /dev/zero | sha256sum | cut -c1-64)
	if grep -qx ssh-ok ssh.out && grep -q "^$want" ssh.out; then
		ok "ssh with ProxyCommand='srmudp connect %h %p' through srmudp serve"
	else
		fail "ssh through srmudp: $(head -c 300 ssh.err)"
	fi
	kill "$s3" "$sspid" 2>/dev/null
	wait "$s3" "$sspid" 2>/dev/null
}

echo "== serve and connect over loopback"
have_python=0
command -v python3 >/dev/null && have_python=1
if [[ $have_python -eq 1 ]]; then
	# A TCP service that echoes until EOF, then says goodbye and closes.
	cat >echo.py <<'EOF'
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.sendall(b"bye\n")
    c.close()
EOF
	python3 echo.py >echo.port 2>echo.err &
	pids+=($!)
	for _ in $(seq 50); do [[ -s echo.port ]] && break; sleep 0.1; done
	tport=$(cat echo.port)
	# Default SRMUDP_LISTEN: an ephemeral port, dual stack.  Port 7 is an
	# alias of the echo service (PORT=HOST:PORT).
	env SRMUDP_KEY=a.key "SRMUDP_PEERS=cli=$C" \
		timeout 120 "$SRMUDP" serve --expose "$tport,7=127.0.0.1:$tport" >serve.out 2>serve.err &
	spid=$!
	pids+=($spid)
	for _ in $(seq 50); do grep -q '^srmudp serve: UDP port' serve.err && break; sleep 0.1; done
	uport=$(sed -n 's/^srmudp serve: UDP port \([0-9]*\).*/\1/p' serve.err)
	if [[ -z $uport ]]; then
		fail "serve started: $(cat serve.err)"
	else
		ok "serve started on UDP port $uport"
		cenv=(env SRMUDP_KEY=c.key "SRMUDP_PEERS=SRV=$A@127.0.0.1:$uport")
		head -c 3000000 /dev/urandom >data
		{ cat data; } | "${cenv[@]}" timeout 60 "$SRMUDP" connect srv "$tport" >got 2>cerr
		rc=$?
		check "connect exits 0 after the peer's end of stream" test "$rc" -eq 0
		printf 'bye\n' >>data
		check "3 MB echoed intact, then the server's last words (half-close)" cmp -s data got
		echo alias | "${cenv[@]}" timeout 60 "$SRMUDP" connect Srv.srmudp 7 >got 2>cerr
		check "--expose 7=127.0.0.1:PORT forwards there (peer named as Srv.srmudp)" \
			bash -c "printf 'alias\nbye\n' | cmp -s - got"
		if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
			echo v6 | env SRMUDP_KEY=c.key "SRMUDP_PEERS=srv=$A@[::1]:$uport" \
				timeout 60 "$SRMUDP" connect srv "$tport" >got 2>cerr
			check "the default listen socket is dual stack (peer endpoint [::1])" \
				bash -c "printf 'v6\nbye\n' | cmp -s - got"
		else
			echo "  note  no IPv6 loopback: dual-stack case skipped"
		fi
		"${cenv[@]}" timeout 60 "$SRMUDP" connect srv 1 </dev/null >got 2>cerr
		rc=$?
		check "connect to an unexposed port: exit 3, says refused" \
			bash -c "[[ $rc -eq 3 ]] && grep -q 'refused' cerr"
		"${cenv[@]}" timeout 60 "$SRMUDP" connect nobody "$tport" </dev/null >got 2>cerr
		rc=$?
		check "connect to an unknown peer: exit 1, quoted" \
			bash -c "[[ $rc -eq 1 ]] && grep -q '\"nobody\"' cerr"
		ssh_proxy_check
		kill -TERM "$spid"
		for _ in $(seq 100); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
		wait "$spid"
		rc=$?
		check "serve stops cleanly on SIGTERM" test "$rc" -eq 0
	fi
else
	echo "  note  no python3: serve/connect case skipped"
fi

echo "== install, pkg-config, uninstall"
prefix="$tmp/prefix"
if make -C "$root" --no-print-directory BUILD="$BUILD" PREFIX="$prefix" install >install.log 2>&1; then
	ok "make install PREFIX=$prefix"
	check "installed srmudp runs" "$prefix/bin/srmudp" --version
	pc=(env PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config)
	flags=$("${pc[@]}" --cflags --libs srmudp 2>&1)
	check "pkg-config --cflags --libs srmudp: $flags" \
		bash -c "[[ '$flags' == *-I$prefix/include* && '$flags' == *-L$prefix/lib* && '$flags' == *-lsrmudp-core* ]]"
	cat >use.c <<'EOF'
#include <srmudp.h>
#include <stdio.h>
int main(void)
{
	struct srm_config cfg;
	srm_config_defaults(&cfg);
	printf("%s %u\n", srm_strerror(SRM_ERR_TIMEOUT), cfg.connect_timeout_ms);
	srm_config_free(&cfg);
	return 0;
}
EOF
	# shellcheck disable=SC2046
	if gcc -o use use.c $("${pc[@]}" --cflags --libs srmudp) 2>cc.err; then
		check "a program built with pkg-config flags runs against the installed library" \
			bash -c "LD_LIBRARY_PATH='$prefix/lib' ./use | grep -q ' 10000\$'"
	else
		fail "compile with pkg-config flags: $(head -c 300 cc.err)"
	fi
	"${run_env[@]}" LD_PRELOAD= "$prefix/bin/srmudp" run -- sh -c 'echo "$LD_PRELOAD"' >out 2>err
	check "installed srmudp finds ../lib/libsrmudp.so" grep -qx "$prefix/lib/libsrmudp.so" out
	if make -C "$root" --no-print-directory BUILD="$BUILD" PREFIX="$prefix" uninstall >>install.log 2>&1; then
		left=$(find "$prefix" ! -type d)
		check "make uninstall leaves no file behind${left:+: $left}" test -z "$left"
	else
		fail "make uninstall: $(tail -5 install.log)"
	fi
else
	fail "make install: $(tail -5 install.log)"
fi

srm_finish
