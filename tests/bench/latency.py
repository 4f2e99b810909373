#!/usr/bin/env python3
"""latency.py: connection and request latency probes for make bench.

  latency.py serve PORT
      PORT:   echo server (answers every byte it reads)
      PORT+1: sink (reads and discards)
  latency.py ttfb HOST PORT N
      N fresh connections, one after another: each measures connect() time
      and the time from before connect() to the first byte of the answer to
      a one-byte request.  The first connection of a process is "cold" (for
      the shim: the engine's first handshake with the peer happens then),
      the others "warm".  Prints key value lines, times in ms.
  latency.py load HOST PORT SECONDS
      Ping-pong (64 bytes every 10 ms) on PORT, first alone for 2 s, then
      while a bulk sender saturates PORT+1 on a second connection from the
      same process.  Prints p50/p99 of both phases and the bulk rate that
      reached the receiver (start of bulk to its last byte).

Plain sockets only, so that the same code runs directly and under the
srmudp preload, which is what is compared.
"""
import os
import socket
import statistics
import sys
import threading
import time


def serve(port):
    def echo(c):
        with c:
            while True:
                b = c.recv(65536)
                if not b:
                    return
                c.sendall(b)

    def sink(c):
        # Reads until the sender half-closes, then answers how many bytes
        # arrived, so the sender can compute the rate that got through.
        with c:
            n = 0
            while True:
                b = c.recv(1 << 20)
                if not b:
                    break
                n += len(b)
            c.sendall(str(n).encode() + b"\n")

    def loop(p, fn):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", p))
        s.listen(64)
        while True:
            c, _ = s.accept()
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=fn, args=(c,), daemon=True).start()

    threading.Thread(target=loop, args=(port + 1, sink), daemon=True).start()
    loop(port, echo)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def ttfb(host, port, n):
    conn, first = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        s = socket.create_connection((host, port), timeout=10)
        t1 = time.perf_counter()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"x")
        if s.recv(1) != b"x":
            sys.exit("ttfb: no answer")
        t2 = time.perf_counter()
        s.close()
        conn.append((t1 - t0) * 1e3)
        first.append((t2 - t0) * 1e3)
    print(f"connect_cold_ms {conn[0]:.3f}\nttfb_cold_ms {first[0]:.3f}")
    if n > 1:
        print(f"connect_warm_ms {statistics.median(conn[1:]):.3f}")
        print(f"ttfb_warm_ms {statistics.median(first[1:]):.3f}")


def pings(s, secs, out):
    msg = b"p" * 64
    end = time.perf_counter() + secs
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        s.sendall(msg)
        got = 0
        while got < len(msg):
            b = s.recv(len(msg) - got)
            if not b:
                sys.exit("load: echo closed")
            got += len(b)
        out.append((time.perf_counter() - t0) * 1e3)
        time.sleep(0.01)


def load(host, port, secs):
    p = socket.create_connection((host, port), timeout=30)
    p.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    idle, busy = [], []
    pings(p, 2.0, idle)
    stop = threading.Event()
    got = [0]

    def bulk():
        b = socket.create_connection((host, port + 1), timeout=60)
        # Incompressible, and with a period (8 MiB) longer than any
        # compressor's window: srmudp compresses by default, and a repeated
        # pattern would cross the bottleneck as a trickle.
        pool = os.urandom(8 << 20)
        off = 0
        while not stop.is_set():
            b.sendall(pool[off:off + 65536])
            off = (off + 65536) % len(pool)
        # The receiver's count, once everything buffered on the way has
        # arrived: what the sender's socket accepted says nothing.
        b.shutdown(socket.SHUT_WR)
        got[0] = int(b.makefile().readline() or 0)
        b.close()

    t0 = time.perf_counter()
    t = threading.Thread(target=bulk, daemon=True)
    t.start()
    time.sleep(1.0)  # let the bulk stream fill the path first
    pings(p, secs, busy)
    stop.set()
    t.join(timeout=60)
    rate = got[0] * 8 / (time.perf_counter() - t0) / 1e6
    print(f"idle_p50_ms {pct(idle, 50):.3f}\nidle_p99_ms {pct(idle, 99):.3f}")
    print(f"load_p50_ms {pct(busy, 50):.3f}\nload_p99_ms {pct(busy, 99):.3f}")
    print(f"load_bulk_mbps {rate:.1f}")


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[:1] == ["serve"]:
        serve(int(a[1]))
    elif a[:1] == ["ttfb"]:
        ttfb(a[1], int(a[2]), int(a[3]))
    elif a[:1] == ["load"]:
        load(a[1], int(a[2]), float(a[3]))
    else:
        sys.exit(__doc__)
