#!/usr/bin/env python3
"""probe: small, bounded UDP/TCP probes for the NAT lab (tests/lab/lab.sh).

  probe.py recv --port P [--port P2 ...] [--secs S] [--idle S] [--echo]
      Listen (IPv4 and IPv6) and print one line per datagram:
      "<src-addr> <src-port> <local-port> <seq>".  Prints "listening" first;
      stops after --secs in total, or --idle seconds after the last datagram.
      --echo sends every datagram back to its source, from the same socket.
  probe.py send --to ADDR:PORT [--to ...] [--bind PORT] [--src ADDR]
                [--count N] [--pps N] [--size B] [--then-recv S]
      From ONE socket, send datagrams numbered 0..N-1 to every target (so a
      NAT's mapping of that one socket can be seen per target).  --then-recv
      keeps the socket S seconds longer and prints what arrives, like recv.
  probe.py punch --bind PORT --peer ADDR:PORT [--secs S]
      Hole punching: send to the peer every 50 ms; once the peer's datagrams
      arrive, send 10 more and exit 0.  Exit 1 if nothing came within S.
  probe.py tcpserve --port P [--secs S]
      Accept TCP connections (v4 and v6) for S seconds, echo what they send.
  probe.py tcping --to ADDR:PORT [--count N]
      Connect N times, print the smallest connect time in ms (1 RTT).

Every loop is bounded in count and time.  IPv6 endpoints as "[addr]:port".
"""
import argparse
import select
import socket
import sys
import time


def endpoint(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def plain(addr):
    return addr[7:] if addr.startswith("::ffff:") else addr


def dual_socket(kind, port):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("::", port))
    return s


def print_datagrams(socks, secs, idle, echo=False):
    # The idle clock starts with the first datagram, so a sender that is
    # slow to start (a loaded machine) is not missed; secs bounds it all.
    start = time.monotonic()
    last = None
    while True:
        now = time.monotonic()
        left = start + secs - now
        if last is not None:
            left = min(left, last + idle - now)
        if left <= 0:
            return
        ready, _, _ = select.select(socks, [], [], left)
        for s in ready:
            try:
                data, src = s.recvfrom(65535)
            except OSError:  # ICMP error from an earlier send
                continue
            last = time.monotonic()
            seq = data.split(b" ", 1)[0].decode(errors="replace")
            print(plain(src[0]), src[1], s.getsockname()[1], seq, flush=True)
            if echo:
                try:
                    s.sendto(data, src)
                except OSError:
                    pass


def recv(a):
    socks = [dual_socket(socket.SOCK_DGRAM, p) for p in a.port]
    print("listening", flush=True)
    print_datagrams(socks, a.secs, a.idle, a.echo)


def send(a):
    targets = [endpoint(t) for t in a.to]
    fam = family(targets[0][0])
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((a.src or ("::" if fam == socket.AF_INET6 else "0.0.0.0"), a.bind))
    gap = 1.0 / a.pps if a.pps else 0
    t0 = time.monotonic()
    for i in range(a.count):
        msg = (b"%d " % i).ljust(a.size, b"x")
        for t in targets:
            try:
                s.sendto(msg, t)
            except OSError:  # an ICMP error from an earlier datagram
                pass
        if gap:
            delay = t0 + (i + 1) * gap - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    if a.then_recv:
        print_datagrams([s], a.then_recv, a.then_recv)


def punch(a):
    peer = endpoint(a.peer)
    fam = family(peer[0])
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", a.bind))
    end = time.monotonic() + a.secs
    more = None
    while time.monotonic() < end and (more is None or more > 0):
        try:
            s.sendto(b"punch", peer)
        except OSError:
            pass
        if more is not None:
            more -= 1
        r, _, _ = select.select([s], [], [], 0.05)
        if r:
            try:
                _, src = s.recvfrom(2048)
            except OSError:  # ICMP unreachable before the peer's hole opened
                continue
            if more is None:
                print("got", plain(src[0]), src[1], flush=True)
                more = 10
    sys.exit(0 if more is not None else 1)


def tcpserve(a):
    ls = dual_socket(socket.SOCK_STREAM, a.port)
    ls.listen(64)
    print("listening", flush=True)
    conns = []
    end = time.monotonic() + a.secs
    while time.monotonic() < end:
        r, _, _ = select.select([ls] + conns, [], [], max(0, end - time.monotonic()))
        for s in r:
            if s is ls:
                c, _ = ls.accept()
                conns.append(c)
                continue
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if data:
                s.sendall(data)
            else:
                s.close()
                conns.remove(s)


def tcping(a):
    host, port = endpoint(a.to)
    best = None
    for _ in range(a.count):
        s = socket.socket(family(host), socket.SOCK_STREAM)
        s.settimeout(5)
        t = time.monotonic()
        try:
            s.connect((host, port))
        except OSError as e:
            print("connect failed:", e, file=sys.stderr)
            sys.exit(1)
        ms = (time.monotonic() - t) * 1000
        s.close()
        best = ms if best is None else min(best, ms)
    print("%.1f" % best)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, action="append", required=True)
    r.add_argument("--secs", type=float, default=10)
    r.add_argument("--idle", type=float, default=3)
    r.add_argument("--echo", action="store_true")
    s = sub.add_parser("send")
    s.add_argument("--to", action="append", required=True)
    s.add_argument("--bind", type=int, default=0)
    s.add_argument("--src", default="")
    s.add_argument("--count", type=int, default=100)
    s.add_argument("--pps", type=float, default=0)
    s.add_argument("--size", type=int, default=64)
    s.add_argument("--then-recv", type=float, default=0)
    p = sub.add_parser("punch")
    p.add_argument("--bind", type=int, required=True)
    p.add_argument("--peer", required=True)
    p.add_argument("--secs", type=float, default=10)
    t = sub.add_parser("tcpserve")
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--secs", type=float, default=30)
    c = sub.add_parser("tcping")
    c.add_argument("--to", required=True)
    c.add_argument("--count", type=int, default=5)
    a = ap.parse_args()
    if a.cmd == "send" and not 0 < a.count <= 1000000:
        ap.error("--count must be 1..1000000")
    if a.cmd == "tcping" and not 0 < a.count <= 1000:
        ap.error("--count must be 1..1000")
    for limit in ("secs", "idle", "then_recv"):
        if getattr(a, limit, 0) > 600:
            ap.error("--%s is at most 600 seconds" % limit.replace("_", "-"))
    {"recv": recv, "send": send, "punch": punch,
     "tcpserve": tcpserve, "tcping": tcping}[a.cmd](a)


if __name__ == "__main__":
    main()
