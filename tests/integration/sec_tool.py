#!/usr/bin/env python3
"""sec_tool.py -- the attacker and helpers of test_attack.sh and test_faults.sh.
Every address it is given is inside the lab's namespaces; every loop is bounded.

  send HOST PORT TEXT           preloaded TCP client: send TEXT, expect the count back
  sendfile HOST PORT FILE       the same with a file's contents
  sink PORT DIR                 preloaded TCP server: each connection's bytes -> DIR/conn-N, replies "N\n" with the count
  blast HOST PORT SECONDS       preloaded TCP client: sends for SECONDS, prints "bytes seconds"
  blast2 HOST PORT SECONDS FLAG one connection: baseline window, wait for FLAG, second window
  replay FILE DST PORT [--flip|--trunc] [--src-port P]   send hex payloads from FILE (one per line)
  spoof FILE SRC SPORT DST DPORT [--flip]   same, with a forged source (raw socket)
  flood PUBKEY_HEX DST PORT COUNT RATE [--spoof]        valid-mac1 INITs, random keys and (with --spoof) random sources
  amp DST PORT KIND COUNT       send COUNT requests of KIND, print "in out" bytes (answers to this socket)
  junk DST PORT COUNT           COUNT random packets of every type and size
  killtest HOST PORT FLAG       send until the (killed) peer fails us; then reconnect
  idle HOST PORT SECS           a connection idle for SECS between two writes must survive
  storm HOST PORT N             fork/exec storm in a preloaded program with a live connection
  churn HOST PORT N             N connections opened and closed; fd and thread counts compared
  series HOST PORT SECS OUT     send for SECS, bytes per second to OUT
  relay LISTEN_IP LPORT UP_IP UPORT FLIP_PCT DROP_PCT SECONDS STATS   tampering UDP forwarder, one upstream socket per client
"""
import hashlib, os, random, select, socket, struct, sys, time

def u16(x): return struct.pack('<H', x)

def hexlines(path):
    """Captured UDP payloads, one hex string per line; offload-merged
    captures (GSO/GRO, larger than any datagram) are left out."""
    out = []
    for line in open(path):
        line = line.strip().replace(':', '')
        if line:
            p = bytes.fromhex(line.split(',')[0])
            if len(p) <= 1472:
                out.append(p)
    return out

def checksum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

def raw_udp(src, sport, dst, dport, payload):
    ulen = 8 + len(payload)
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    pseudo = s + d + struct.pack('!BBH', 0, 17, ulen)
    udp = struct.pack('!HHHH', sport, dport, ulen, 0) + payload
    c = checksum(pseudo + udp) or 0xffff
    udp = struct.pack('!HHHH', sport, dport, ulen, c) + payload
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + ulen, random.randrange(65536), 0, 64, 17, 0, s, d)
    ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
    return ip + udp

def mutate(p, mode, rnd):
    if mode == 'flip':
        b = bytearray(p); i = rnd.randrange(len(b)); b[i] ^= 1 << rnd.randrange(8); return bytes(b)
    if mode == 'trunc':
        return p[:rnd.randrange(1, len(p))] if len(p) > 1 else p
    return p

def cmd_sink(port, d):
    import threading
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('0.0.0.0', int(port))); srv.listen(128)
    n = [0]
    lock = threading.Lock()
    def serve(c, k):
        total = 0
        with open(os.path.join(d, 'conn-%d' % k), 'wb') as f:
            try:
                while True:
                    b = c.recv(1 << 16)
                    if not b: break
                    f.write(b); total += len(b)
                c.sendall(b'%d\n' % total)
            except OSError:
                pass
        c.close()
    while True:
        c, _ = srv.accept()
        with lock:
            n[0] += 1; k = n[0]
        threading.Thread(target=serve, args=(c, k), daemon=True).start()

def cmd_send(host, port, text):
    s = socket.create_connection((host, int(port)), timeout=30)
    s.settimeout(30)
    s.sendall(text.encode()); s.shutdown(socket.SHUT_WR)
    ack = s.recv(64)
    sys.exit(0 if ack.strip() == str(len(text.encode())).encode() else 1)

def cmd_sendfile(host, port, path):
    s = socket.create_connection((host, int(port)), timeout=60)
    s.settimeout(120)
    data = open(path, 'rb').read()
    s.sendall(data); s.shutdown(socket.SHUT_WR)
    ack = s.recv(64)
    sys.exit(0 if ack.strip() == str(len(data)).encode() else 1)

def cmd_blast(host, port, secs):
    s = socket.create_connection((host, int(port)), timeout=30)
    buf = os.urandom(1 << 16)
    t0 = time.time(); sent = 0
    while time.time() - t0 < float(secs):
        sent += s.send(buf)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(60)
    ack = b''
    while not ack.endswith(b'\n'):
        b = s.recv(64)
        if not b: break
        ack += b
    t1 = time.time()
    got = int(ack or b'0')
    print(got, '%.3f' % (t1 - t0), sent)
    sys.exit(0 if got == sent else 1)

def cmd_blast2(host, port, secs, flag):
    """One connection, two windows: SECS of sending (baseline), then touch
    FLAG.1 and wait for FLAG (the attack has started), then SECS more.
    Prints both rates in bytes/s and whether every byte was acknowledged."""
    s = socket.create_connection((host, int(port)), timeout=30)
    buf = os.urandom(1 << 16)
    def window():
        t0 = time.time(); n = 0
        while time.time() - t0 < float(secs):
            n += s.send(buf)
        return n, time.time() - t0
    n1, t1 = window()
    open(flag + '.1', 'w').close()
    deadline = time.time() + 60
    while not os.path.exists(flag) and time.time() < deadline:
        time.sleep(0.05)
    n2, t2 = window()
    s.shutdown(socket.SHUT_WR)
    s.settimeout(120)
    ack = b''
    while not ack.endswith(b'\n'):
        b = s.recv(64)
        if not b: break
        ack += b
    got = int(ack or b'0')
    print(int(n1 / t1), int(n2 / t2), 'intact' if got == n1 + n2 else 'short')
    sys.exit(0 if got == n1 + n2 else 1)

def cmd_replay(path, dst, port, *opts):
    mode = 'flip' if '--flip' in opts else 'trunc' if '--trunc' in opts else ''
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if '--src-port' in opts:
        s.bind(('0.0.0.0', int(opts[opts.index('--src-port') + 1])))
    rnd = random.Random(1)
    n = 0
    for p in hexlines(path):
        s.sendto(mutate(p, mode, rnd), (dst, int(port))); n += 1
        if n % 200 == 0: time.sleep(0.01)
    print(n)

def cmd_spoof(path, src, sport, dst, dport, *opts):
    mode = 'flip' if '--flip' in opts else ''
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    rnd = random.Random(2)
    n = 0
    for p in hexlines(path):
        s.sendto(raw_udp(src, int(sport), dst, int(dport), mutate(p, mode, rnd)), (dst, 0)); n += 1
        if n % 200 == 0: time.sleep(0.01)
    print(n)

def fake_init(mac1_key, rnd):
    # HANDSHAKE_INIT (docs/PROTOCOL.md 2.1): 176 bytes, mac1 over bytes 0..143
    body = b'\x01\x01\x00\x00' + rnd.randbytes(140)   # random index, ephemeral, static, payload
    mac1 = hashlib.blake2b(body, key=mac1_key, digest_size=16).digest()
    return body + mac1 + b'\0' * 16

def cmd_flood(pub_hex, dst, port, count, rate, *opts):
    mac1_key = hashlib.sha256(b'mac1----' + bytes.fromhex(pub_hex)).digest()
    rnd = random.Random(3)
    pool = [fake_init(mac1_key, rnd) for _ in range(2048)]
    count, rate = int(count), float(rate)
    spoof = '--spoof' in opts
    if spoof:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
    t0 = time.time(); replies = 0
    for i in range(count):
        p = pool[i & 2047]
        if spoof:
            src = '198.19.%d.%d' % (rnd.randrange(256), rnd.randrange(1, 255))
            s.sendto(raw_udp(src, 40000 + (i & 1023), dst, int(port), p), (dst, 0))
        else:
            try:
                s.sendto(p, (dst, int(port)))
            except BlockingIOError:
                pass
            try:
                while s.recv(2048): replies += 1
            except BlockingIOError:
                pass
        if i % 256 == 255:
            ahead = (i + 1) / rate - (time.time() - t0)
            if ahead > 0: time.sleep(ahead)
    print(count, '%.2f' % (time.time() - t0), replies)

def amp_packets(kind, pub_hex, rnd, n):
    if kind == 'init':          # valid mac1, random rest: costs a DH, answered by nothing (or a cookie under load)
        k = hashlib.sha256(b'mac1----' + bytes.fromhex(pub_hex)).digest()
        return [fake_init(k, rnd) for _ in range(n)]
    if kind.startswith('file:'):
        ps = hexlines(kind[5:])
        return [ps[i % len(ps)] for i in range(n)] if ps else []
    t = {'junk': None, 'resp': 2, 'cookie': 3, 'data': 4, 'rdv': 8, 'relay': 9}[kind]
    out = []
    for i in range(n):
        L = rnd.choice([4, 7, 16, 40, 64, 108, 124, 128, 160, 176, 200, 600, 1400])
        b = bytearray(rnd.randbytes(L))
        if t is not None:
            b[0] = t; b[1] = 1
            if L > 3: b[2] = b[3] = 0
        out.append(bytes(b))
    return out

def cmd_amp(dst, port, kind, count, pub_hex='00' * 32):
    rnd = random.Random(4)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('0.0.0.0', 0)); s.setblocking(False)
    bin_ = bout = 0
    def drain():
        nonlocal bout
        try:
            while True: bout += len(s.recv(4096))
        except BlockingIOError:
            pass
    for i, p in enumerate(amp_packets(kind, pub_hex, rnd, int(count))):
        s.sendto(p, (dst, int(port))); bin_ += len(p)
        if i % 64 == 63: time.sleep(0.005); drain()
    t = time.time() + 1.5
    while time.time() < t:
        select.select([s], [], [], 0.1); drain()
    print(bin_, bout)

def cmd_junk(dst, port, count):
    rnd = random.Random(5)
    pool = []
    for i in range(4096):
        L = rnd.randrange(1, 1473)
        b = bytearray(rnd.randbytes(L))
        b[0] = rnd.choice([0, 1, 2, 3, 4, 4, 4, 5, 8, 9, 255])
        if L > 1 and i % 3: b[1] = 1
        pool.append(bytes(b))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    count = int(count); sent = 0; t0 = time.time()
    for i in range(count):
        p = pool[i & 4095]
        if i >= 4096:    # not the same 4096 packets again: vary the index / counter bytes
            p = p[:4] + struct.pack('<I', i) + p[8:] if len(p) >= 8 else p
        try:
            s.sendto(p, (dst, int(port))); sent += 1
        except BlockingIOError:
            select.select([], [s], [], 0.01)
        if i % 4096 == 0 and time.time() - t0 > 240: break   # bounded
    print(sent, '%.1f' % (time.time() - t0))

def cmd_relay(lip, lport, uip, uport, flip_pct, drop_pct, secs, stats_path):
    """A UDP forwarder in front of the rendezvous server that tampers with
    relayed traffic: each client gets its own upstream socket (so the
    server still sees distinct sources), and WIRE_RELAY (type 9) packets in
    either direction get one bit of their inner packet flipped (FLIP_PCT)
    or are dropped (DROP_PCT).  Other packets pass untouched."""
    rnd = random.Random(6)
    flip_pct, drop_pct = float(flip_pct), float(drop_pct)
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind((lip, int(lport)))
    up = {}      # client addr -> upstream socket
    back = {}    # upstream socket fileno -> client addr
    st = {'relay': 0, 'flipped': 0, 'dropped': 0, 'other': 0}
    end = time.time() + float(secs)
    last = 0
    def tamper(p):
        if len(p) > 36 and p[0] == 9:
            st['relay'] += 1
            r = rnd.random() * 100
            if r < drop_pct:
                st['dropped'] += 1; return None
            if r < drop_pct + flip_pct:
                b = bytearray(p); i = rnd.randrange(36, len(b)); b[i] ^= 1 << rnd.randrange(8)
                st['flipped'] += 1; return bytes(b)
        else:
            st['other'] += 1
        return p
    while time.time() < end:
        socks = [front] + list(up.values())
        r, _, _ = select.select(socks, [], [], 0.2)
        for s in r:
            p, addr = s.recvfrom(4096)
            if s is not front and addr != (uip, int(uport)):
                continue   # only the server talks to an upstream socket: no back door past the relay
            if s is front:
                u = up.get(addr)
                if u is None:
                    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((lip, 0))
                    up[addr] = u; back[u.fileno()] = addr
                q = tamper(p)
                if q is not None: u.sendto(q, (uip, int(uport)))
            else:
                q = tamper(p)
                if q is not None: front.sendto(q, back[s.fileno()])
        if time.time() - last > 0.5:
            last = time.time()
            with open(stats_path + '.tmp', 'w') as f:
                f.write('%(relay)d %(flipped)d %(dropped)d %(other)d\n' % st)
            os.replace(stats_path + '.tmp', stats_path)

def _ack(s):
    ack = b''
    while not ack.endswith(b'\n'):
        b = s.recv(64)
        if not b: break
        ack += b
    return ack

def cmd_killtest(host, port, flag):
    """Send until the connection fails (the peer is killed meanwhile): print
    the errno name and the seconds from FLAG.killed (written by the test
    when it kills the peer) to the error; then wait for FLAG.restarted and
    reconnect from this same process (same engine)."""
    import errno
    s = socket.create_connection((host, int(port)), timeout=30)
    s.settimeout(None)
    buf = os.urandom(1 << 14)
    open(flag + '.sending', 'w').close()
    err = 'none'
    t_end = time.time() + 120
    while time.time() < t_end:
        try:
            s.send(buf)
        except OSError as e:
            err = errno.errorcode.get(e.errno, str(e.errno)); break
    t_err = time.time()
    try:
        t_kill = os.stat(flag + '.killed').st_mtime
    except OSError:
        t_kill = t_err
    s.close()
    print('error', err, '%.1f' % (t_err - t_kill), flush=True)
    deadline = time.time() + 60
    while not os.path.exists(flag + '.restarted') and time.time() < deadline:
        time.sleep(0.1)
    for attempt in range(30):
        try:
            s = socket.create_connection((host, int(port)), timeout=20)
            s.settimeout(20)
            s.sendall(b'again'); s.shutdown(socket.SHUT_WR)
            ok = _ack(s).strip() == b'5'
            print('reconnect', 'ok' if ok else 'bad-ack', attempt, flush=True)
            sys.exit(0 if ok else 1)
        except OSError as e:
            time.sleep(1)
    print('reconnect failed', flush=True)
    sys.exit(1)

def cmd_idle(host, port, secs):
    """A connection that stays idle for SECS between two writes must live."""
    s = socket.create_connection((host, int(port)), timeout=30)
    s.sendall(b'a')
    time.sleep(float(secs))
    try:
        s.sendall(b'b'); s.shutdown(socket.SHUT_WR)
        s.settimeout(30)
        ok = _ack(s).strip() == b'2'
    except OSError as e:
        print('idle connection died:', e); sys.exit(1)
    sys.exit(0 if ok else 1)

def cmd_storm(host, port, n):
    """A preloaded program with a live connection forks N children: a third
    exec /bin/true, a third exec a preloaded Python that resolves the
    peer's name, a third exit without exec.  Then the parent's connection must still
    work.  Prints the number of failures."""
    s = socket.create_connection((host, int(port)), timeout=30)
    s.sendall(b'parent-before;')
    bad = 0
    kids = []
    for i in range(int(n)):
        pid = os.fork()
        if pid == 0:
            try:
                if i % 3 == 0:
                    os.execv('/bin/true', ['true'])
                elif i % 3 == 1:
                    # A preloaded image starts up and resolves the peer's
                    # name (no stream of its own: two engines with one key
                    # disturb each other, a documented limit, docs/SHIM.md).
                    os.execv(sys.executable, [sys.executable, '-c',
                             'import socket,sys; sys.exit(0 if socket.getaddrinfo(sys.argv[1], 0) else 3)', host])
                else:
                    os._exit(0)
            finally:
                os._exit(99)
        kids.append(pid)
        if len(kids) >= 16:
            _, st = os.waitpid(kids.pop(0), 0)
            bad += st != 0
    for k in kids:
        _, st = os.waitpid(k, 0)
        bad += st != 0
    s.sendall(b'parent-after'); s.shutdown(socket.SHUT_WR)
    s.settimeout(30)
    ok = _ack(s).strip() == str(len('parent-before;parent-after')).encode()
    print(bad, 'parent-ok' if ok else 'parent-broken')
    sys.exit(0 if ok and bad == 0 else 1)

def _counts():
    return len(os.listdir('/proc/self/fd')), len(os.listdir('/proc/self/task'))

def cmd_churn(host, port, n):
    """Open, use and close N connections; compare this process's fds and
    threads after the first one (the engine is running then) and at the
    end (letting the engine settle for up to 10 s)."""
    def one(i):
        s = socket.create_connection((host, int(port)), timeout=30)
        s.settimeout(30)
        s.sendall(b'x'); s.shutdown(socket.SHUT_WR)
        ok = _ack(s).strip() == b'1'
        s.close()
        return ok
    one(0)
    time.sleep(0.5)
    fd0, th0 = _counts()
    bad = sum(not one(i) for i in range(1, int(n)))
    for _ in range(100):
        fd1, th1 = _counts()
        if fd1 <= fd0 and th1 <= th0: break
        time.sleep(0.1)
    print(bad, fd0, fd1, th0, th1)
    sys.exit(0 if bad == 0 and fd1 <= fd0 and th1 <= th0 else 1)

def cmd_series(host, port, secs, out):
    """Send for SECS seconds, writing the bytes accepted in each second to
    OUT (one line per second); then check every byte was acknowledged."""
    s = socket.create_connection((host, int(port)), timeout=30)
    s.settimeout(0.2)
    buf = os.urandom(1 << 14)
    total = 0; per = []
    t0 = time.time()
    while time.time() - t0 < float(secs):
        sec = int(time.time() - t0)
        while len(per) <= sec: per.append(0)
        try:
            n = s.send(buf); total += n; per[sec] += n
        except socket.timeout:
            pass
        with open(out, 'w') as f:
            f.write('\n'.join(map(str, per)) + '\n')
    s.settimeout(120)
    s.shutdown(socket.SHUT_WR)
    got = int(_ack(s) or b'0')
    print(total, got, 'intact' if got == total else 'short')
    sys.exit(0 if got == total else 1)

def _rdv_map(p):
    """The flat map of a rendezvous message: small uint keys, uint or bin
    values (enough for CHALLENGE and REGISTERED's first fields)."""
    m, i, n = {}, 5, p[4] & 0x0f
    for _ in range(n):
        k, t = p[i], p[i + 1]
        i += 2
        if t < 0x80:
            v = t
        elif t in (0xcc, 0xcd, 0xce, 0xcf):
            w = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[t]
            v = int.from_bytes(p[i:i + w], 'big'); i += w
        elif t == 0xc4:
            v = p[i + 1:i + 1 + p[i]]; i += 1 + p[i]
        else:
            break
        m[k] = v
    return m

def _rdv_register(s, srv, allow):
    """A full rendezvous registration (docs/NAT.md) under a fresh key from
    socket s, consenting to meet the keys in allow (python3-cryptography)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives import serialization
    import hashlib
    sk = X25519PrivateKey.generate()
    pub = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    s.sendto(bytes([8, 1, 0, 0, 0x82, 0, 1, 11, 0xc4, 118]) + bytes(118), srv)
    ch = _rdv_map(s.recv(2048))
    eph, ctime, cookie = ch[2], ch[3], ch[4]
    dh = sk.exchange(X25519PublicKey.from_public_bytes(eph))
    k_auth = hashlib.blake2b(b'auth' + pub + eph, digest_size=32, key=dh).digest()
    tag = lambda a, b: hashlib.blake2b(min(a, b) + max(a, b), digest_size=8,
                                       key=b'srmudp rdv pair\0').digest()
    tags = b''.join(tag(pub, k) for k in allow)
    b = lambda x: bytes([0xc4, len(x)]) + x
    u64 = lambda v: b'\xcf' + struct.pack('>Q', v)
    pkt = (bytes([8, 1, 0, 0, 0x88, 0, 3, 1]) + b(pub) + b'\x02' + b(eph) + b'\x03' + u64(ctime)
           + b'\x04' + b(cookie) + b'\x05' + u64(int(time.time() * 1000)) + b'\x0d' + b(tags)
           + b'\x0c\xc4\x10')
    s.sendto(pkt + hashlib.blake2b(pkt, digest_size=16, key=k_auth).digest(), srv)
    if _rdv_map(s.recv(2048))[0] != 4:
        raise SystemExit('not registered')
    return pub

def cmd_relayflood(host, port, target_b64, keys, secs):
    """The open-relay flood of issue 18 item 9: KEYS throwaway keys
    registered from this host (each listing the target, which lists none of
    them), each pushing 1,200-byte relay packets at the target's key as
    fast as it can for SECS seconds.  Prints the bytes sent."""
    import base64
    srv = (host, int(port))
    target = base64.urlsafe_b64decode(target_b64 + '=')
    socks = []
    for _ in range(int(keys)):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        _rdv_register(s, srv, [target])
        s.setblocking(False)
        socks.append(s)
    inner = bytes([4, 1, 0, 0]) + os.urandom(1200 - 36 - 4)  # a DATA packet's header, noise
    pkt = bytes([9, 1, 0, 0]) + target + inner
    sent = 0
    end = time.time() + float(secs)
    while time.time() < end:
        for s in socks:
            try:
                s.sendto(pkt, srv)
                sent += len(pkt)
            except BlockingIOError:
                time.sleep(0.0005)
    print(sent)

if __name__ == '__main__':
    cmd = sys.argv[1].replace('-', '_')
    globals()['cmd_' + cmd](*sys.argv[2:])
