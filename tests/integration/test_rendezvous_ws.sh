#!/usr/bin/env bash
# test_rendezvous_ws.sh: `srmudp rendezvous --ws-listen`, the rendezvous and
# relay server over WebSocket (for networks that block UDP), on loopback.
#
#                     +-- S1 udp U1, ws W1 (relay and inbound rates raised)
#   wsclient.py ------+-- S2 udp U2, wss W2 (--tls-cert/--tls-key, a test CA)
#   (Python, below)   +-- S3 udp U3, ws W3 (4 clients, 3 per address, 256 KiB/s)
#                     +-- S4 udp U4, ws W4 (defaults: the 1,000-client RSS)
#                     +-- nginx 127.0.0.1:N (TLS) --proxy_pass + Upgrade--> S1's W1
#   srmudp rendezvous probe (UDP) -- S1
#
# Checks: the upgrade and REGISTER -> CHALLENGE over ws:// and wss://; a
# full registration (X25519 from python3-cryptography: skipped without it)
# and relaying WebSocket <-> UDP; wrong path 404, missing headers 400/426,
# an oversized head 431; bad frames closed (1002/1009) and counted;
# slowloris and a silent TLS client closed at the 10 s header timeout with
# nothing sent; a client that never answers pings closed at the 75 s idle
# timeout after 2 pings; per-address and global connection limits; the
# inbound rate limit; a client that never reads (its queue stays bounded,
# datagrams dropped and counted); 1,000 idle clients, plain and TLS, with
# the server's RSS printed and bounded; nginx terminating TLS in front;
# `srmudp status`; the counters on SIGUSR1 and at exit; argument errors.
# Takes about 90 s (the idle timeout runs alongside the rest).
#
# Exit 0 pass, 1 fail, 77 skipped (no python3 or openssl).
set -uo pipefail

source "$(dirname "$0")/../lib.sh"
srm_require_tools python3 openssl
srm_require_built
srm_tmpdir rdvws
srm_clean_env
srm_private_runtime
ulimit -n 8192 2>/dev/null || ulimit -n 4096 2>/dev/null || true
have_crypto=1
python3 -c 'import cryptography.hazmat.primitives.asymmetric.x25519' 2>/dev/null || have_crypto=0

cat >"$tmp/wsclient.py" <<'PY'
#!/usr/bin/env python3
"""wsclient.py -- WebSocket clients of `srmudp rendezvous --ws-listen` for
test_rendezvous_ws.sh.  Standard library, except register/relay/flood (a full
registration: X25519 from python3-cryptography).  Options first: --tls CAFILE
(wss://, server name "localhost"), --src IP (bind the client there).

  register HOST PORT              upgrade, REGISTER -> "challenge LEN" (-1: not a CHALLENGE)
  request HOST PORT PATH [HDR..]  a raw GET (HDR replace the upgrade headers) -> "status N"
  slowloris HOST PORT             half a head, then wait -> "closed after S answer N"
  silent HOST PORT                connect, send nothing -> "closed after S answer N"
  badframe HOST PORT KIND         upgrade, then an unmasked/text/huge/garbage frame -> "close CODE"
  many HOST PORT N PREFIX FLAG    N idle upgraded clients from PREFIX.2.. (16 per address)
                                  -> "open N"; at FLAG (a file) -> "alive N"
  count HOST PORT N SRC           N upgrades from SRC -> "upgraded U refused R"
  mute HOST PORT                  upgrade, never answer pings -> "close CODE after S s, P pings"
  relay HOST PORT PEER TEXT OUT   register, relay TEXT to PEER, write relayed packets to OUT
                                  for $WS_STAY (8) s
  flood HOST PORT MIB FLAG        two registered clients: one never reads (small buffer),
                                  the other relays MIB MiB to it; stay until FLAG
"""
import base64, hashlib, os, select, socket, ssl, struct, sys, time
from wshttp import accept_key, read_head

REGISTER = bytes([8, 1, 0, 0, 0x82, 0, 1, 11, 0xc4, 118]) + bytes(118)

def connect(host, port, tls=None, src=None, timeout=5, rcvbuf=0):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(timeout)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if src:
        s.bind((src, 0))
    s.connect((host, port))
    if tls:
        ctx = ssl.create_default_context(cafile=tls)
        s = ctx.wrap_socket(s, server_hostname="localhost")
    return s

def request(s, host, path="/srmudp", extra=None):
    key = base64.b64encode(os.urandom(16)).decode()
    hdrs = extra if extra is not None else [
        "Upgrade: websocket", "Connection: Upgrade",
        "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n\r\n" % (path, host, "\r\n".join(hdrs))).encode())
    return key

def upgrade(s, host):
    key = request(s, host)
    head, rest = read_head(s)
    want = accept_key(key)
    if not head.startswith("HTTP/1.1 101") or want not in head:
        raise SystemExit("upgrade failed: " + head.splitlines()[0] if head else "upgrade failed: no answer")
    return rest

def frame(op, payload, mask=True, fin=True):
    b = bytes([(0x80 if fin else 0) | op])
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        b += bytes([m | n])
    elif n < 65536:
        b += bytes([m | 126]) + struct.pack(">H", n)
    else:
        b += bytes([m | 127]) + struct.pack(">Q", n)
    if mask:
        k = os.urandom(4)
        b += k + bytes(c ^ k[i % 4] for i, c in enumerate(payload))
    else:
        b += payload
    return b

class Reader:
    def __init__(self, s, rest=b""):
        self.s, self.buf = s, rest
    def need(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
    def frame(self):
        self.need(2)
        op, n = self.buf[0] & 15, self.buf[1] & 127
        off = 2
        if n == 126:
            self.need(4); n = struct.unpack(">H", self.buf[2:4])[0]; off = 4
        elif n == 127:
            self.need(10); n = struct.unpack(">Q", self.buf[2:10])[0]; off = 10
        self.need(off + n)
        p = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return op, p
    def binary(self):
        while True:
            op, p = self.frame()
            if op == 2:
                return p
            if op == 9:
                self.s.sendall(frame(10, p))
            elif op == 8:
                raise EOFError

def mp_map(p):
    """The rendezvous message's msgpack map: {key: int | bytes | [bytes]}."""
    def val(i):
        t = p[i]
        if t < 0x80: return t, i + 1
        if t == 0xcc: return p[i+1], i + 2
        if t == 0xcd: return struct.unpack(">H", p[i+1:i+3])[0], i + 3
        if t == 0xce: return struct.unpack(">I", p[i+1:i+5])[0], i + 5
        if t == 0xcf: return struct.unpack(">Q", p[i+1:i+9])[0], i + 9
        if t == 0xc4: return p[i+2:i+2+p[i+1]], i + 2 + p[i+1]
        if t & 0xf0 == 0x90:
            out, i = [], i + 1
            for _ in range(t & 15):
                v, i = val(i); out.append(v)
            return out, i
        raise ValueError("msgpack type %x" % t)
    assert p[0] == 8 and p[4] & 0xf0 == 0x80
    m, i = {}, 5
    for _ in range(p[4] & 15):
        k, i = val(i)
        m[k], i = val(i)
    return m

def keypair():
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives import serialization
    sk = X25519PrivateKey.generate()
    return sk, sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

def pair_tag(a, b):
    # docs/NAT.md, consent: the server relays only between keys that list each other
    lo, hi = sorted((a, b))
    return hashlib.blake2b(lo + hi, digest_size=8, key=b"srmudp rdv pair\0").digest()

def register(host, port, tls=None, src=None, rcvbuf=0, key=None, allow=()):
    """A full registration (needs python3-cryptography) under key (a fresh
    one by default), consenting to meet the keys in allow: the socket, its
    reader and the public key."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    sk, pub = key or keypair()
    s = connect(host, port, tls, src, rcvbuf=rcvbuf)
    r = Reader(s, upgrade(s, "%s:%d" % (host, port)))
    s.sendall(frame(2, REGISTER))
    ch = mp_map(r.binary())
    eph, ctime, cookie = ch[2], ch[3], ch[4]
    dh = sk.exchange(X25519PublicKey.from_public_bytes(eph))
    k_auth = hashlib.blake2b(b"auth" + pub + eph, digest_size=32, key=dh).digest()
    b = lambda x: bytes([0xc4, len(x)]) + x
    u64 = lambda v: b"\xcf" + struct.pack(">Q", v)
    tags = b"".join(pair_tag(pub, k) for k in allow)
    pkt = (bytes([8, 1, 0, 0, 0x88, 0, 3, 1]) + b(pub) + b"\x02" + b(eph) + b"\x03" + u64(ctime)
           + b"\x04" + b(cookie) + b"\x05" + u64(int(time.time() * 1000)) + b"\x0d" + b(tags)
           + b"\x0c\xc4\x10")
    pkt += hashlib.blake2b(pkt, digest_size=16, key=k_auth).digest()
    s.sendall(frame(2, pkt))
    reg = mp_map(r.binary())
    if reg[0] != 4:
        raise SystemExit("not registered: kind %d" % reg[0])
    return s, r, pub

def b64(k): return base64.urlsafe_b64encode(k).decode().rstrip("=")

def relay_frame(peer, text):
    return frame(2, bytes([9, 1, 0, 0]) + peer + bytes([4, 1, 0, 0]) + text)

def main():
    a = sys.argv[1:]
    tls = src = None
    while a and a[0].startswith("--"):
        if a[0] == "--tls": tls = a[1]
        if a[0] == "--src": src = a[1]
        a = a[2:]
    cmd, host, port = a[0], a[1], int(a[2])
    if cmd == "register":
        s = connect(host, port, tls, src)
        r = Reader(s, upgrade(s, "%s:%d" % (host, port)))
        s.sendall(frame(2, REGISTER))
        p = r.binary()
        print("challenge", len(p) if mp_map(p)[0] == 2 else -1)
    elif cmd == "request":
        s = connect(host, port, tls, src)
        request(s, "%s:%d" % (host, port), a[3], a[4:] if len(a) > 4 else None)
        head, _ = read_head(s)
        print("status", head.split(" ")[1] if head else "none")
    elif cmd in ("slowloris", "silent"):
        s = connect(host, port, timeout=30)
        if cmd == "slowloris":
            s.sendall(b"GET /srmudp HTTP/1.1\r\nHost: x\r\nUpgr")
        t = time.time()
        try:
            d = s.recv(100)
        except ConnectionResetError:
            d = b""
        print("closed after %.1f answer %d" % (time.time() - t, len(d)))
    elif cmd == "badframe":
        s = connect(host, port)
        r = Reader(s, upgrade(s, "%s:%d" % (host, port)))
        kind = a[3]
        if kind == "unmasked":
            s.sendall(frame(2, REGISTER, mask=False))
        elif kind == "text":
            s.sendall(frame(1, b"hello"))
        elif kind == "huge":
            s.sendall(frame(2, bytes(4096)))
        elif kind == "garbage":
            s.sendall(os.urandom(64))
        try:
            while True:
                op, p = r.frame()
                if op == 8:
                    print("close", struct.unpack(">H", p[:2])[0] if len(p) >= 2 else 0)
                    break
        except (EOFError, ConnectionResetError):
            print("eof")
    elif cmd == "many":
        n, prefix, flag = int(a[3]), a[4], a[5]
        socks = []
        for i in range(n):
            s = connect(host, port, tls, src="%s.%d" % (prefix, 2 + i // 16), timeout=10)
            request(s, "%s:%d" % (host, port))
            socks.append(s)
        for s in socks:
            head, _ = read_head(s)
            if not head.startswith("HTTP/1.1 101"):
                raise SystemExit("not upgraded: " + head[:40])
        print("open", len(socks), flush=True)
        while not os.path.exists(flag):
            time.sleep(0.1)
        alive = 0
        for s in socks:
            s.setblocking(False)
            try:
                alive += s.recv(1) != b""
            except (BlockingIOError, ssl.SSLWantReadError):
                alive += 1
        print("alive", alive, flush=True)
    elif cmd == "count":
        n, src = int(a[3]), a[4]
        socks, up, refused = [], 0, 0
        for i in range(n):
            s = connect(host, port, tls, src)
            socks.append(s)
            try:
                request(s, "%s:%d" % (host, port))
                head, _ = read_head(s)
            except (OSError, ssl.SSLError):
                head = ""
            if head.startswith("HTTP/1.1 101"):
                up += 1
            else:
                refused += 1
        print("upgraded", up, "refused", refused)
    elif cmd == "mute":
        s = connect(host, port, timeout=120)
        r = Reader(s, upgrade(s, "%s:%d" % (host, port)))
        t, pings = time.time(), 0
        try:
            while True:
                op, p = r.frame()
                if op == 9:
                    pings += 1  # never answered: a dead client
                elif op == 8:
                    print("close %d after %.0f s, %d pings" % (struct.unpack(">H", p[:2])[0], time.time() - t, pings))
                    break
        except (EOFError, OSError):
            print("eof after %.0f s, %d pings" % (time.time() - t, pings))
    elif cmd == "relay":
        peer = base64.urlsafe_b64decode(a[3] + "=")
        text, out = a[4].encode(), a[5]
        s, r, pub = register(host, port, tls, src, allow=[peer])
        print("registered", b64(pub), flush=True)
        # WS_GO: a file to wait for, so that the peer can list this key first
        go = os.environ.get("WS_GO")
        while go and not os.path.exists(go):
            time.sleep(0.05)
        s.sendall(relay_frame(peer, text))
        s.settimeout(1)
        end = time.time() + float(os.environ.get("WS_STAY", "8"))
        with open(out, "w") as f:
            while time.time() < end:
                try:
                    p = r.binary()
                except socket.timeout:
                    continue
                except EOFError:
                    break
                if p[0] == 9:
                    f.write("relayed %s text=%s\n" % (b64(p[4:36]), p[40:].decode(errors="replace")))
                    f.flush()
    elif cmd == "flood":
        mb, flag = int(a[3]), a[4]
        rk, sk = keypair(), keypair()
        rs, rr, rpub = register(host, port, tls, src, rcvbuf=4096, key=rk, allow=[sk[1]])  # never reads
        ss, sr, spub = register(host, port, tls, src, key=sk, allow=[rk[1]])
        print("receiver", b64(rpub), flush=True)
        f = relay_frame(rpub, bytes(1400))
        ss.settimeout(60)
        for _ in range(mb * 1024 * 1024 // len(f)):
            ss.sendall(f)
        print("sent", mb, "MiB", flush=True)
        while not os.path.exists(flag):
            time.sleep(0.1)

main()
PY
ws() { PYTHONPATH="$root/tests/integration" python3 "$tmp/wsclient.py" "$@"; }
# counter PID NAME: NAME in the stats line the server prints on SIGUSR1.
counter() { srm_rdv_stats "$1" "$tmp/$1.out" | sed -n "s/^$2=//p"; }
# start NAME ARGS...: a server; its pid in $NAME, its stdout in $tmp/PID.out,
# its log in $tmp/NAME.log.
start() {
	local name=$1
	shift
	"$SRMUDP" rendezvous "$@" --log-level info >"$tmp/$name.stdout" 2>"$tmp/$name.log" &
	pids+=("$!")
	printf -v "$name" %s "$!"
	ln -sf "$tmp/$name.stdout" "$tmp/$!.out"
}

echo "-- a test CA and a certificate for localhost"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=srmudp test CA" \
	-keyout "$tmp/ca.key" -out "$tmp/ca.pem" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
	-keyout "$tmp/server.key" -out "$tmp/server.csr" >/dev/null 2>&1
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$tmp/san.ext"
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
	-CAcreateserial -days 2 -extfile "$tmp/san.ext" -out "$tmp/server.pem" >/dev/null 2>&1
check "certificate made" test -s "$tmp/server.pem"

U1=$(srm_free_port udp) W1=$(srm_free_port) U2=$(srm_free_port udp) W2=$(srm_free_port)
U3=$(srm_free_port udp) W3=$(srm_free_port) U4=$(srm_free_port udp) W4=$(srm_free_port)
N=$(srm_free_port)
# S1: rates raised so the never-reading client's queue fills within a
# second; nginx in front of it comes from one address, hence --ws-max-per-ip.
start s1 --listen "127.0.0.1:$U1" --ws-listen "127.0.0.1:$W1" --relay-rate 64M --ws-rate 64M \
	--ws-max-per-ip 64
start s2 --listen "127.0.0.1:$U2" --ws-listen "127.0.0.1:$W2" \
	--tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key"
start s3 --listen "127.0.0.1:$U3" --ws-listen "127.0.0.1:$W3" --ws-max-clients 4 \
	--ws-max-per-ip 3 --ws-rate 256k
start s4 --listen "127.0.0.1:$U4" --ws-listen "127.0.0.1:$W4"
check "S1 listens for WebSocket clients" \
	srm_wait_log "$tmp/s1.log" "WebSocket on 127\.0\.0\.1:$W1, path /srmudp"
check "S2 listens for wss://" srm_wait_log "$tmp/s2.log" "WebSocket \(TLS\) on 127\.0\.0\.1:$W2"
srm_wait_log "$tmp/s3.log" "WebSocket on" && srm_wait_log "$tmp/s4.log" "WebSocket on"

echo "-- slow, silent and mute clients (checked at the end: their timeouts run meanwhile)"
ws slowloris 127.0.0.1 "$W1" >"$tmp/slow.out" 2>&1 &
slow_pid=$!
ws silent 127.0.0.1 "$W2" >"$tmp/silent.out" 2>&1 &
silent_pid=$!
ws mute 127.0.0.1 "$W1" >"$tmp/mute.out" 2>&1 &
mute_pid=$!

echo "-- upgrade, REGISTER -> CHALLENGE"
ws register 127.0.0.1 "$W1" >"$tmp/reg.out" 2>&1
check "ws://: a padded REGISTER gets a CHALLENGE, no larger" \
	awk '$1 == "challenge" { ok = $2 > 0 && $2 <= 128 } END { exit !ok }' "$tmp/reg.out"
ws --tls "$tmp/ca.pem" register 127.0.0.1 "$W2" >"$tmp/reg_tls.out" 2>&1
check "wss:// (certificate checked against the test CA): a CHALLENGE" \
	has "$tmp/reg_tls.out" "^challenge [0-9]+$"
ws request 127.0.0.1 "$W2" /srmudp >"$tmp/plain_to_tls.out" 2>&1
check "plain HTTP to the TLS port: no HTTP answer" not has "$tmp/plain_to_tls.out" "^status [0-9]"

echo "-- HTTP errors"
hdrs=("Upgrade: websocket" "Connection: Upgrade" "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
ws request 127.0.0.1 "$W1" /other "${hdrs[@]}" "Sec-WebSocket-Version: 13" >"$tmp/h1.out" 2>&1
check "wrong path: 404" has "$tmp/h1.out" "^status 404$"
ws request 127.0.0.1 "$W1" /srmudp "Connection: keep-alive" >"$tmp/h2.out" 2>&1
check "no Upgrade header: 400" has "$tmp/h2.out" "^status 400$"
ws request 127.0.0.1 "$W1" /srmudp "${hdrs[@]}" >"$tmp/h3.out" 2>&1
check "no Sec-WebSocket-Version: 426" has "$tmp/h3.out" "^status 426$"
python3 - "$W1" >"$tmp/h4.out" 2>&1 <<'PYBIG'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /srmudp HTTP/1.1\r\nX: " + b"a" * 9000)
print(s.recv(100).split(b"\r\n")[0].decode(errors="replace"))
PYBIG
check "a head over 8 KiB: 431" has "$tmp/h4.out" "^HTTP/1.1 431"

echo "-- bad frames close the connection"
for kind in unmasked text huge garbage; do
	ws badframe 127.0.0.1 "$W1" "$kind" >"$tmp/bad_$kind.out" 2>&1
done
check "unmasked frame: close 1002" has "$tmp/bad_unmasked.out" "^close 1002$"
check "text frame: close 1002" has "$tmp/bad_text.out" "^close 1002$"
check "frame over 2048 bytes: close 1009" has "$tmp/bad_huge.out" "^close 1009$"
check "random bytes: closed" has "$tmp/bad_garbage.out" "^(close 100[29]|eof)$"
check "bad input counted (ws_malformed >= 6)" test "$(counter "$s1" ws_malformed)" -ge 6
check "S1 still running" kill -0 "$s1"

echo "-- connection limits (S3: 4 clients, 3 per address)"
ws count 127.0.0.1 "$W3" 5 127.0.0.7 >"$tmp/perip.out" 2>&1
check "per-address limit: 3 upgraded, 2 refused" has "$tmp/perip.out" "^upgraded 3 refused 2$"
ws many 127.0.0.1 "$W3" 3 127.0.8 "$tmp/hold.flag" >"$tmp/hold.out" 2>&1 &
hold=$!
srm_wait_log "$tmp/hold.out" "^open 3$" 10
ws count 127.0.0.1 "$W3" 3 127.0.0.9 >"$tmp/global.out" 2>&1
touch "$tmp/hold.flag"
wait "$hold"
check "global limit: 3 held + 1 upgraded, 2 refused" has "$tmp/global.out" "^upgraded 1 refused 2$"
check "refusals counted (ws_rejected)" test "$(counter "$s3" ws_rejected)" -eq 4
check "refusals logged with the reason" has "$tmp/s3.log" "refused: --ws-max-(per-ip|clients) reached"

if ((have_crypto)); then
	echo "-- full registration, relay WebSocket <-> UDP"
	srm_keygen c
	C=$(<"$tmp/c.pub")
	WS_GO="$tmp/go.flag" WS_STAY=6 ws relay 127.0.0.1 "$W1" "$C" "hello from ws" \
		"$tmp/relayed.out" >"$tmp/a.out" 2>&1 &
	apid=$!
	check "a registers over WebSocket" srm_wait_log "$tmp/a.out" "^registered "
	A=$(sed -n 's/^registered //p' "$tmp/a.out")
	# The relay carries packets only between keys that list each other.
	"$SRMUDP" rendezvous probe --server "127.0.0.1:$U1" --key "$tmp/c.key" --stay 8 \
		--allow "$A" >"$tmp/c.out" 2>&1 &
	pids+=("$!")
	check "c registers over UDP" srm_wait_log "$tmp/c.out" "^registered"
	touch "$tmp/go.flag"
	check "c receives a's packet, named as from a (WebSocket -> UDP)" \
		srm_wait_log "$tmp/c.out" "^relayed $A bytes=17 text=hello from ws$"
	"$SRMUDP" rendezvous probe --server "127.0.0.1:$U1" --key "$tmp/c.key" --relay-to "$A" \
		--message "hello from udp" >"$tmp/c2.out" 2>&1
	check "a receives c's packet (UDP -> WebSocket)" \
		srm_wait_log "$tmp/relayed.out" "^relayed $C text=hello from udp$"
	"$SRMUDP" status --json >"$tmp/status.json" 2>&1
	"$SRMUDP" status >"$tmp/status.txt" 2>&1
	check "srmudp status --json: the client, its key, bytes in/out, queue, age" \
		python3 - "$tmp/status.json" "$s1" "$A" <<'PYCHECK'
import json, sys
d = [x for x in json.load(open(sys.argv[1])) if x["pid"] == int(sys.argv[2])][0]
c = [c for c in d["websocket"]["clients"] if c.get("key") == sys.argv[3]][0]
assert c["state"] == "open" and c["bytes_in"] > 0 and c["bytes_out"] > 0, c
assert c["queue"] == 0 and c["age_ms"] > 0 and c["address"].startswith("127.0.0.1:"), c
assert d["counters"]["ws_clients"] >= 1 and d["counters"]["ws_upgrades"] >= 1, d["counters"]
PYCHECK
	check "srmudp status: the WebSocket counters" has "$tmp/status.txt" "ws_clients [1-9]"
	wait "$apid"

	echo "-- a client that never reads: its queue stays bounded, datagrams are dropped"
	rss_before=$(rss_kb "$s1")
	ws flood 127.0.0.1 "$W1" 16 "$tmp/flood.flag" >"$tmp/flood.out" 2>&1 &
	fpid=$!
	srm_wait_log "$tmp/flood.out" "^sent" 60
	sleep 0.5
	"$SRMUDP" status --json >"$tmp/status2.json" 2>&1
	rss_flood=$(rss_kb "$s1")
	touch "$tmp/flood.flag"
	wait "$fpid"
	R=$(sed -n 's/^receiver //p' "$tmp/flood.out")
	check "16 MiB relayed towards a client that never reads" has "$tmp/flood.out" "^sent 16 MiB$"
	check "its queue stays <= 256 KiB (+1 KiB for control), drops counted" \
		python3 - "$tmp/status2.json" "$s1" "$R" <<'PYCHECK'
import json, sys
d = [x for x in json.load(open(sys.argv[1])) if x["pid"] == int(sys.argv[2])][0]
c = [c for c in d["websocket"]["clients"] if c.get("key") == sys.argv[3]][0]
print("    receiver: queue %d bytes, %d datagrams dropped, %d bytes sent" % (c["queue"], c["drops"], c["bytes_out"]))
assert 0 < c["queue"] <= 256 * 1024 + 1024 and c["drops"] > 1000, c
assert d["counters"]["ws_queue_drops"] == c["drops"], d["counters"]
PYCHECK
	echo "    S1 RSS ${rss_before} kB before, ${rss_flood} kB with the queue full"
	check "memory bounded under the flood (< 8 MiB more)" test $((rss_flood - rss_before)) -lt 8192
	check "drops logged" has "$tmp/s1.log" "queue full \([0-9]+ bytes\), datagram dropped"

	echo "-- inbound rate limit (S3: 256 KiB/s per connection)"
	ws flood 127.0.0.1 "$W3" 2 "$tmp/flood3.flag" >"$tmp/flood3.out" 2>&1 &
	f3=$!
	srm_wait_log "$tmp/flood3.out" "^receiver" 10
	sleep 2
	check "a sender over --ws-rate is throttled" test "$(counter "$s3" ws_throttled)" -ge 1
	check "... and read at about that rate" \
		test "$(counter "$s3" ws_rx_bytes)" -lt $((256 * 1024 * 5))
	touch "$tmp/flood3.flag"
	wait "$f3"
else
	skip "full registration, relay, status, queue and rate (python3-cryptography is not installed)"
fi

echo "-- 1,000 idle WebSocket clients (16 per source address), RSS measured"
# measure NAME PORT PID [--tls CA]: 1,000 clients from 127.0.1.2 to .64.
measure() {
	local name=$1 port=$2 pid=$3 before after clients mp
	shift 3
	before=$(rss_kb "$pid")
	ws "$@" many 127.0.0.1 "$port" 1000 127.0.1 "$tmp/$name.flag" >"$tmp/$name.out" 2>&1 &
	mp=$!
	srm_wait_log "$tmp/$name.out" "^open 1000$" 120
	after=$(rss_kb "$pid")
	clients=$(counter "$pid" ws_clients)
	touch "$tmp/$name.flag"
	wait "$mp"
	echo "    $name: server RSS ${before} kB before, ${after} kB with $clients clients"
	check "$name: 1,000 clients upgraded and kept" \
		eval "grep -q '^alive 1000$' '$tmp/$name.out' && [[ $clients -eq 1000 ]]"
	check "$name: RSS with 1,000 clients < 64 MiB" test "$after" -gt 0 -a "$after" -lt 65536
}
measure plain "$W4" "$s4"
measure tls "$W2" "$s2" --tls "$tmp/ca.pem"

echo "-- nginx terminating TLS in front of --ws-listen"
if command -v nginx >/dev/null 2>&1; then
	mkdir -p "$tmp/nginx/logs"
	cat >"$tmp/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
error_log $tmp/nginx/error.log;
pid $tmp/nginx/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx;
    proxy_temp_path $tmp/nginx;
    map \$http_upgrade \$connection_upgrade {
        default upgrade;
        ''      close;
    }
    server {
        listen 127.0.0.1:$N ssl;
        server_name localhost;
        ssl_certificate     $tmp/server.pem;
        ssl_certificate_key $tmp/server.key;
        location = /srmudp {
            proxy_pass http://127.0.0.1:$W1;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_set_header Host \$host;
            proxy_read_timeout 120s;
            proxy_send_timeout 120s;
            proxy_buffering off;
        }
    }
}
EOF
	nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" >"$tmp/nginx/stdout" 2>&1 &
	pids+=("$!")
	for ((i = 0; i < 100; i++)); do
		ws --tls "$tmp/ca.pem" request 127.0.0.1 "$N" /other >/dev/null 2>&1 && break
		sleep 0.1
	done
	ws --tls "$tmp/ca.pem" register 127.0.0.1 "$N" >"$tmp/nginx_reg.out" 2>&1
	check "wss:// through nginx: a CHALLENGE" has "$tmp/nginx_reg.out" "^challenge [0-9]+$"
	if ((have_crypto)); then
		WS_STAY=1 ws --tls "$tmp/ca.pem" relay 127.0.0.1 "$N" "$C" "via nginx" \
			"$tmp/nginx_relayed.out" >"$tmp/nginx_a.out" 2>&1
		check "wss:// through nginx: a full registration" has "$tmp/nginx_a.out" "^registered "
	fi
	ws --tls "$tmp/ca.pem" request 127.0.0.1 "$N" /srmudp "Connection: close" >"$tmp/nginx_h.out" 2>&1
	check "through nginx, a request without Upgrade gets our 400" has "$tmp/nginx_h.out" "^status 400$"
else
	skip "nginx is not installed (make deps)"
fi

echo "-- timeouts"
wait "$slow_pid" "$silent_pid"
check "slowloris (half a head): closed after the 10 s header timeout, nothing sent" \
	awk '$1 == "closed" { ok = $3 >= 9.5 && $3 <= 12 && $5 == 0 } END { exit !ok }' "$tmp/slow.out"
check "silent TLS client: closed after 10 s, nothing sent" \
	awk '$1 == "closed" { ok = $3 >= 9.5 && $3 <= 12 && $5 == 0 } END { exit !ok }' "$tmp/silent.out"
wait "$mute_pid"
check "a client that never answers: pinged at 25 and 50 s, closed (1001) at 75 s" \
	awk '$1 == "close" { ok = $2 == 1001 && $4 >= 74 && $4 <= 78 && $6 == 2 } END { exit !ok }' "$tmp/mute.out"
check "timeouts logged with the reason" \
	eval "grep -q 'closed: header timeout' '$tmp/s1.log' && grep -q 'closed: idle timeout' '$tmp/s1.log'"

echo "-- counters at exit"
kill -TERM "$s1" "$s2"
wait "$s1"
rc1=$?
wait "$s2"
check "S1 exits 0 on SIGTERM" test "$rc1" -eq 0
check "S1's counters at exit: ws_ counters after the server's" \
	has "$tmp/$s1.out" "store_errors=0 mesh_out=0 mesh_in=0 mesh_bad=0 ws_clients=0 ws_accepted=[0-9]+ ws_upgrades=[0-9]+ .*ws_timeouts=[2-9]"
check "S2 counts the failed TLS handshake and the timeout" \
	has "$tmp/$s2.out" "ws_timeouts=1 ws_malformed=0 ws_tls_failed=[1-9]"

echo "-- argument errors"
"$SRMUDP" rendezvous --listen "127.0.0.1:$U1" --ws-listen nonsense >/dev/null 2>"$tmp/e1" </dev/null
check "bad --ws-listen: usage error, quoted" eval "[[ $? -eq 2 ]] && grep -q '\"nonsense\"' '$tmp/e1'"
"$SRMUDP" rendezvous --listen "127.0.0.1:$U1" --ws-listen "127.0.0.1:$W1" --tls-cert "$tmp/server.pem" \
	>/dev/null 2>"$tmp/e2" </dev/null
check "--tls-cert without --tls-key: usage error" eval "[[ $? -eq 2 ]]"
"$SRMUDP" rendezvous --listen "127.0.0.1:$U1" --ws-listen "127.0.0.1:$W1" \
	--tls-cert "$tmp/missing.pem" --tls-key "$tmp/server.key" >/dev/null 2>"$tmp/e3" </dev/null
check "unreadable certificate: refuses to start, names it" \
	eval "[[ $? -eq 1 ]] && grep -q 'missing.pem' '$tmp/e3'"
"$SRMUDP" rendezvous --listen "127.0.0.1:$U1" --ws-listen "127.0.0.1:$W1" --ws-max-clients 0 \
	>/dev/null 2>"$tmp/e4" </dev/null
check "--ws-max-clients 0: usage error" eval "[[ $? -eq 2 ]]"
"$SRMUDP" rendezvous --listen "127.0.0.1:$U1" --ws-rate 1M >/dev/null 2>"$tmp/e5" </dev/null
check "--ws-rate without --ws-listen: usage error" eval "[[ $? -eq 2 ]]"

srm_finish "$tmp/s1.log" "$tmp/s2.log" "$tmp/s3.log"
