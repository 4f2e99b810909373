#!/usr/bin/env python3
"""report.py RAW.tsv DOCS_DIR: turn the samples of tests/bench/run.sh into
DOCS_DIR/BENCHMARKS.md and DOCS_DIR/bench/*.png (gnuplot).

Every figure is the median of its samples with min-max; every comparison
is a ratio of medians against a baseline from the same run.  The method
text comes from tests/bench/header.md and the analysis of what limits us
from tests/bench/bounds.md (both hand-written); the rest is generated.
"""
import os
import re
import statistics
import subprocess
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
raw, docs = sys.argv[1], sys.argv[2]
S = defaultdict(list)
for line in open(raw):
    k, _, v = line.rstrip("\n").partition("\t")
    if k:
        S[k].append(v)


def vals(k):
    out = []
    for v in S.get(k, []):
        try:
            out.append(float(v))
        except ValueError:
            pass
    return out


def med(k):
    v = vals(k)
    return statistics.median(v) if v else None


def text(k):
    return S[k][-1] if S.get(k) else "?"


def num(x, digits=None):
    if x is None:
        return "n/a"
    if digits is None:
        digits = 0 if abs(x) >= 100 else 1 if abs(x) >= 10 else 2 if abs(x) >= 1 else 3
    return f"{x:,.{digits}f}"


def fig(k, digits=None, scale=1.0):
    """median (min-max) of key k."""
    v = vals(k)
    if not v:
        return "n/a"
    m = statistics.median(v) * scale
    if len(v) == 1:
        return num(m, digits)
    return f"{num(m, digits)} ({num(min(v) * scale, digits)}–{num(max(v) * scale, digits)})"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def rtxt(r, digits=2):
    return "n/a" if r is None else f"{r:.{digits}f}×"


md = []
w = md.append

# ---------------------------------------------------------------------------
# Header and targets.
w(open(os.path.join(HERE, "header.md")).read().rstrip() + "\n")
w(f"\nThis run: {text('meta.date')}, commit `{text('meta.commit')}`, "
  f"{text('meta.cpu')} × {text('meta.cores')} cores, kernel {text('meta.kernel')}, "
  f"load average at the start {text('meta.load')}, {text('meta.runs')} runs per figure "
  f"({text('meta.ttfb_runs')} for time to first byte). "
  "Figures are median (min–max).\n")
if len(S.get("runlog", [])) > 1:
    w("The samples come from these invocations (a later one replaced the sections it "
      "names; comparisons are always within one section, hence within one invocation):\n")
    for line in S["runlog"]:
        w(f"- {line}")
    w("")

ceil_mbps = med("aead.aead_ceiling_MBps")
ceil_mbps = ceil_mbps * 8 if ceil_mbps else None
ours1 = med("bulk.fwd.ours")
kcp1 = med("bulk.fwd.kcptun")
g = lambda prof, who: med(f"grid.{prof}.{who}")  # noqa: E731
p1 = "rtt50_loss1_reo0"
p5 = "rtt50_loss5_reo0"
targets = []


def target(name, ok, measured):
    status = "n/a" if ok is None else ("**met**" if ok else "**not met**")
    targets.append(f"| {name} | {status} | {measured} |")


r = ratio(ours1, ceil_mbps)
target("Single stream ≥ 50 % of the AEAD ceiling", None if r is None else r >= 0.5,
       f"{num(ours1)} Mbit/s = {num(r * 100 if r else None, 0)} % of {num(ceil_mbps)} Mbit/s")
r = ratio(ours1, kcp1)
target("Single stream ≥ 5× kcptun", None if r is None else r >= 5,
       f"{rtxt(r)} ({num(ours1)} vs {num(kcp1)} Mbit/s)")
r = ratio(g(p1, "ours"), g(p1, "bbr"))
target("50 ms RTT, 1 % loss: ≥ kernel TCP bbr", None if r is None else r >= 1,
       f"{rtxt(r)} ({num(g(p1, 'ours'))} vs {num(g(p1, 'bbr'))} Mbit/s)")
r = ratio(g(p1, "ours"), g(p1, "cubic"))
target("50 ms RTT, 1 % loss: ≥ 3× kernel TCP cubic", None if r is None else r >= 3,
       f"{rtxt(r)} ({num(g(p1, 'ours'))} vs {num(g(p1, 'cubic'))} Mbit/s)")
r = ratio(g(p5, "ours"), g(p5, "cubic"))
target("5 % loss (50 ms RTT): ≥ 5× cubic", None if r is None else r >= 5,
       f"{rtxt(r)} ({num(g(p5, 'ours'))} vs {num(g(p5, 'cubic'))} Mbit/s)")
rr = []
for c in (1, 10):
    for t in ("SET", "GET"):
        rr.append((c, t, ratio(med(f"redis.c{c}.{t}.ours.rps"), med(f"redis.c{c}.{t}.tcp.rps"))))
worst = min((x for x in rr if x[2] is not None), key=lambda x: x[2], default=None)
target("redis-benchmark ≥ 60 % of direct TCP ops/s",
       None if worst is None else worst[2] >= 0.6,
       "; ".join(f"-c {c} {t} {num(x * 100 if x else None, 0)} %" for c, t, x in rr))
def ttfb_bound(rtt, kind):
    """TCP's connect of the same kind + one round trip + 1 ms.  The round
    trip is the path's, as TCP's own warm connect measures it in this run
    (SYN to SYN-ACK), not the delay added on top of the lab's own."""
    tcpc = med(f"ttfb.rtt{rtt}.tcp.connect_{kind}_ms")
    path_rtt = med(f"ttfb.rtt{rtt}.tcp.connect_warm_ms")
    if tcpc is None or path_rtt is None:
        return None
    return tcpc + path_rtt + 1


tt = []
ok_all = None
for rtt in (10, 50):
    for kind in ("cold", "warm"):
        ours = med(f"ttfb.rtt{rtt}.ours.ttfb_{kind}_ms")
        bound = ttfb_bound(rtt, kind)
        if ours is None or bound is None:
            continue
        ok = ours <= bound
        ok_all = ok if ok_all is None else ok_all and ok
        tt.append(f"{rtt} ms {kind}: {num(ours)} vs bound {num(bound)} ms")
target("Time to first byte ≤ TCP connect + 1 RTT + 1 ms", ok_all, "; ".join(tt) or "n/a")
ps = None
if med("scale.server_rss_streams_kib") is not None:
    n = med("scale.streams") - med("scale.peers")
    ps_s = (med("scale.server_rss_streams_kib") - med("scale.server_rss_peers_kib")) / n
    ps_c = (med("scale.client_rss_streams_kib") - med("scale.client_rss_peers_kib")) / n
    ps = max(ps_s, ps_c)
fit = med("scale.server_accepted")
target("Idle stream ≤ 16 KiB", None if ps is None else ps <= 16,
       f"{num(ps)} KiB (worse of the two ends)")
target("10,000 streams in one process", None if fit is None else fit >= 10000,
       f"{num(fit, 0)} streams accepted by one engine (200 peers)")

r = ratio(med("relay.fwd.ws"), med("relay.fwd.socat"))
target("WebSocket relay, one stream ≥ 50 % of TCP through socat on the relay host",
       None if r is None else r >= 0.5,
       f"{num(r * 100 if r else None, 0)} % ({num(med('relay.fwd.ws'))} vs "
       f"{num(med('relay.fwd.socat'))} Mbit/s)")
rr = [(t, ratio(med(f"relay.redis.{t}.ws.rps"), med(f"relay.redis.{t}.socat.rps")))
      for t in ("SET", "GET")]
known = [x for _, x in rr if x is not None]
target("WebSocket relay, redis-benchmark -c 1 ≥ 50 % of socat",
       None if not known else min(known) >= 0.5,
       "; ".join(f"{t} {num(x * 100 if x else None, 0)} %" for t, x in rr))

for m, label in (("fwd", "a→b"), ("rev", "b→a")):
    r = ratio(med(f"gate.{m}.gate"), med(f"gate.{m}.direct"))
    target(f"Through a gate, one stream {label} ≥ 80 % of direct", None if r is None else r >= 0.8,
           f"{num(r * 100 if r else None, 0)} % ({num(med(f'gate.{m}.gate'))} vs "
           f"{num(med(f'gate.{m}.direct'))} Mbit/s)")

w("\n## Targets\n")
w("| target | status | measured in this run |")
w("|---|---|---|")
md.extend(targets)

# ---------------------------------------------------------------------------
w("\n## 1. Bulk throughput, clean path\n")
w("iperf3, 1 s omitted, through the preload on both ends (`ours`), kernel TCP "
  "(the kernel default, bbr here), kcptun; Mbit/s at the receiver.  The AEAD "
  f"ceiling ({text('aead.aead_cipher')}, one core sealing and opening 1400-byte packets) is "
  f"**{fig('aead.aead_ceiling_MBps', scale=8)} Mbit/s** "
  f"(seal alone {fig('aead.aead_seal_MBps', scale=8)}, open alone {fig('aead.aead_open_MBps', scale=8)}).\n")
w("| mode | ours | kernel TCP | kcptun | ours / TCP | ours / kcptun | ours / ceiling |")
w("|---|---|---|---|---|---|---|")
for m, label in (("fwd", "1 stream a→b"), ("rev", "1 stream, -R (b→a)"), ("p4", "4 streams (-P 4)")):
    o, t, k = (med(f"bulk.{m}.{x}") for x in ("ours", "tcp", "kcptun"))
    w(f"| {label} | {fig(f'bulk.{m}.ours')} | {fig(f'bulk.{m}.tcp')} | {fig(f'bulk.{m}.kcptun')} | "
      f"{rtxt(ratio(o, t), 3)} | {rtxt(ratio(o, k))} | {rtxt(ratio(o, ceil_mbps))} |")
w("\nCPU seconds per GB moved (both processes: iperf3 client and server, which for `ours` "
  "includes the in-process engine; for kcptun plus both kcptun processes):\n")
w("| mode | ours | kernel TCP | kcptun | ours / TCP | ours / kcptun |")
w("|---|---|---|---|---|---|")
for m, label in (("fwd", "1 stream"), ("rev", "-R"), ("p4", "-P 4")):
    o, t, k = (med(f"bulk.{m}.{x}.cpu") for x in ("ours", "tcp", "kcptun"))
    w(f"| {label} | {fig(f'bulk.{m}.ours.cpu')} | {fig(f'bulk.{m}.tcp.cpu')} | "
      f"{fig(f'bulk.{m}.kcptun.cpu')} | {rtxt(ratio(o, t))} | {rtxt(ratio(o, k))} |")
w("\n![bulk](bench/bulk.png)\n")

# ---------------------------------------------------------------------------
w("\n## 2. Goodput under impairment\n")
w("iperf3 a→b, Mbit/s at the receiver.  RTT is added delay split over both directions "
  "(plus the lab's own ~0.1 ms); loss is random and applies to *each* direction "
  "(data and ACKs).  Kernel TCP with `-C cubic` and `-C bbr`; kcptun as in §1.  "
  "`reo 2` holds 2 % of packets back behind the next 3.\n")
w("| RTT ms | loss % | reorder % | ours | cubic | bbr | kcptun | ours/cubic | ours/bbr | ours/kcptun |")
w("|---|---|---|---|---|---|---|---|---|---|")
GRID_KEY = re.compile(r"^grid\.(rtt(\d+)_loss([\d.]+)_reo([\d.]+))\.")
cells = {m.group(1): (int(m.group(2)), float(m.group(3)), float(m.group(4)))
         for m in (GRID_KEY.match(k) for k in S) if m}
for p in sorted(cells, key=lambda p: cells[p]):
    rtt, loss, reo = p.split("_")
    rtt, loss, reo = rtt[3:], loss[4:], reo[3:]
    o, c, b, k = (g(p, x) for x in ("ours", "cubic", "bbr", "kcptun"))
    w(f"| {rtt} | {loss} | {reo} | {fig(f'grid.{p}.ours')} | {fig(f'grid.{p}.cubic')} | "
      f"{fig(f'grid.{p}.bbr')} | {fig(f'grid.{p}.kcptun')} | {rtxt(ratio(o, c), 1)} | "
      f"{rtxt(ratio(o, b))} | {rtxt(ratio(o, k))} |")
w("\n![grid](bench/grid.png)\n")

# ---------------------------------------------------------------------------
w("\n## 3. Latency\n")
w("### redis-benchmark (SET, GET; no pipelining; 20,000 requests), clean path\n")
w("| clients | command | ours ops/s | direct ops/s | ours / direct | ours p50 ms | direct p50 ms | ours p99 ms | direct p99 ms |")
w("|---|---|---|---|---|---|---|---|---|")
for c in (1, 10):
    for t in ("SET", "GET"):
        b = f"redis.c{c}.{t}"
        w(f"| {c} | {t} | {fig(b + '.ours.rps')} | {fig(b + '.tcp.rps')} | "
          f"{rtxt(ratio(med(b + '.ours.rps'), med(b + '.tcp.rps')))} | {fig(b + '.ours.p50')} | "
          f"{fig(b + '.tcp.p50')} | {fig(b + '.ours.p99')} | {fig(b + '.tcp.p99')} |")
w("\n### Time to first byte of a new connection\n")
w("`latency.py ttfb`: connect(), send one byte, wait for the echo; ms from before connect() to "
  "the answer.  *Cold*: the first connection of a fresh process started by `srmudp run`, "
  "which warms up (SRMUDP_WARMUP=auto: the engine starts and handshakes while the program "
  "starts; at 50 ms the handshake is still on its way when connect() comes, and connect() "
  "replaces it with one that carries the OPEN); *cold, no warm-up*: the same with "
  "SRMUDP_WARMUP=off (engine start and handshake inside connect()); *warm*: median of the next "
  "10 (session already up).\n")
w("| added RTT ms | kind | ours connect | ours first byte | TCP connect | TCP first byte | ours − TCP first byte | bound (TCP connect + RTT + 1 ms; RTT = TCP's warm connect) |")
w("|---|---|---|---|---|---|---|---|")
for rtt in (0, 10, 50):
    for kind, ours, label in (("cold", "ours", "cold"), ("cold", "ours_nowarm", "cold, no warm-up"),
                              ("warm", "ours", "warm")):
        b = f"ttfb.rtt{rtt}"
        o, t = med(f"{b}.{ours}.ttfb_{kind}_ms"), med(f"{b}.tcp.ttfb_{kind}_ms")
        w(f"| {rtt} | {label} | {fig(f'{b}.{ours}.connect_{kind}_ms')} | {fig(f'{b}.{ours}.ttfb_{kind}_ms')} | "
          f"{fig(f'{b}.tcp.connect_{kind}_ms')} | {fig(f'{b}.tcp.ttfb_{kind}_ms')} | "
          f"{num(o - t if o is not None and t is not None else None)} | "
          f"{num(ttfb_bound(rtt, kind))} |")
w("\n### Latency under load\n")
w("A 100 Mbit/s bottleneck (tbf, 50 ms of queue) with 10 ms RTT on wa.  One process opens a "
  "ping-pong connection (64 bytes every 10 ms) and, after 2 s alone, a bulk connection that "
  "sends as fast as it can; ms per round trip.  For ours both connections are streams of the "
  "same session.  The bulk rate is what reached the receiver, from the start of the bulk stream to its last byte (so data buffered on the way counts only once it arrived).\n")
w("| | ours | kernel TCP | ours / TCP |")
w("|---|---|---|---|")
for k, label in (("idle_p50_ms", "ping p50, idle"), ("idle_p99_ms", "ping p99, idle"),
                 ("load_p50_ms", "ping p50, under load"), ("load_p99_ms", "ping p99, under load"),
                 ("load_bulk_mbps", "bulk Mbit/s (received)")):
    w(f"| {label} | {fig('load.ours.' + k)} | {fig('load.tcp.' + k)} | "
      f"{rtxt(ratio(med('load.ours.' + k), med('load.tcp.' + k)))} |")
w("\n![latency](bench/latency.png)\n")

# ---------------------------------------------------------------------------
w("\n## 4. Scale and cost\n")
if med("scale.streams") is not None:
    npeers, nstreams = med("scale.peers"), med("scale.streams")
    per = lambda side, a, b, n: statistics.median(  # noqa: E731
        [(x - y) / n for x, y in zip(vals(f"scale.{side}_rss_{a}_kib"), vals(f"scale.{side}_rss_{b}_kib"))]
    ) if vals(f"scale.{side}_rss_{a}_kib") else None
    w(f"`bench_scale`: one engine knows {num(npeers, 0)} peers and accepts; a second process runs "
      f"{num(npeers, 0)} client engines that open {num(nstreams, 0)} idle streams over socketpairs "
      "(`srm_stream_open`), 50 per peer (the per-peer limit is 4096).  VmRSS of each side; the "
      "applications' ends of the socketpairs live in a third process (RLIMIT_NOFILE is 20,000 "
      "here and cannot be raised without CAP_SYS_RESOURCE).  Kernel socket memory is not in RSS.\n")
    w("| | accepting engine (1 engine, 200 peers) | opening side (200 engines) |")
    w("|---|---|---|")
    w(f"| RSS, engines started | {fig('scale.server_rss_base_kib')} KiB | {fig('scale.client_rss_engines_kib')} KiB |")
    w(f"| RSS, 1 session + 1 stream per peer | {fig('scale.server_rss_peers_kib')} KiB | {fig('scale.client_rss_peers_kib')} KiB |")
    w(f"| RSS, {num(nstreams, 0)} streams | {fig('scale.server_rss_streams_kib')} KiB | {fig('scale.client_rss_streams_kib')} KiB |")
    w(f"| **per peer** (session + 1 stream) | {num(per('server', 'peers', 'base', npeers))} KiB | "
      f"{num(per('client', 'peers', 'engines', npeers))} KiB |")
    w(f"| per client engine (thread, socket, tables) | — | {num(per('client', 'engines', 'base', npeers))} KiB |")
    w(f"| **per idle stream** | {num(per('server', 'streams', 'peers', nstreams - npeers))} KiB | "
      f"{num(per('client', 'streams', 'peers', nstreams - npeers))} KiB |")
    w(f"\nStreams accepted by the one engine: {fig('scale.server_accepted')}; "
      f"time to open them all: {fig('scale.client_open_s')} s.\n")
w(f"Handshakes per second on one core (`bench_handshake`, sans-I/O session layer, fresh "
  f"initiator and responder per handshake, both sides' work): **{fig('hs.handshakes_per_s')}**.\n")
ir, nb = med("cg.instructions"), med("cg.bytes")
if ir and nb:
    w(f"Instructions per GB (callgrind, `bench_xfer`: one process, two engines on loopback, one "
      f"stream, 32 MiB of random data, compression off; both ends and all threads counted): "
      f"**{ir / nb * 1e9 / 1e9:.2f} G instructions per GB** ({ir / nb:.1f} per byte; "
      f"{num(ir, 0)} in total).  Top functions: `build/bench/callgrind-top.txt`.\n")
w("CPU seconds per GB through iperf3: see §1.\n")

# ---------------------------------------------------------------------------
w("\n## 5. Compression\n")
w("`bench_xfer`, 64 MiB over one stream on loopback (one process, two engines): *text* is "
  "JSON log lines with varying timestamps, paths and numbers (as services write them), *random* is /dev/urandom.  "
  "Wire bytes are the engine's UDP payload bytes sent (`bytes_sent` of the peer statistics, "
  "headers, tags and retransmissions included).\n")
w("| data | mode | MB/s | wire bytes / stream bytes | vs off: throughput | vs off: wire bytes |")
w("|---|---|---|---|---|---|")
for d in ("text", "random"):
    for m in ("auto", "off"):
        b = f"cmp.{d}.{m}"
        wr = [x / y for x, y in zip(vals(b + ".wire_bytes_sent"), vals(b + ".stream_bytes_sent")) if y]
        wr_m = statistics.median(wr) if wr else None
        off = [x / y for x, y in zip(vals(f"cmp.{d}.off.wire_bytes_sent"), vals(f"cmp.{d}.off.stream_bytes_sent")) if y]
        off_m = statistics.median(off) if off else None
        w(f"| {d} | {m} | {fig(b + '.xfer_MBps')} | {num(wr_m, 3)} | "
          f"{rtxt(ratio(med(b + '.xfer_MBps'), med(f'cmp.{d}.off.xfer_MBps')))} | {rtxt(ratio(wr_m, off_m), 3)} |")

# ---------------------------------------------------------------------------
w("\n## 6. WebSocket relay (UDP blocked)\n")
nws = len(vals("relay.fwd.ws.path_ws") + vals("relay.rev.ws.path_ws") + vals("relay.redis.path_ws")
          + vals("relay.ttfb.ws.path_ws"))
okws = sum(vals("relay.fwd.ws.path_ws") + vals("relay.rev.ws.path_ws") + vals("relay.redis.path_ws")
           + vals("relay.ttfb.ws.path_ws"))
w("a's router drops UDP both ways (nftables on `nata`, NAT off), so a's engine reaches the "
  "rendezvous server on `rdv` over a WebSocket (`SRMUDP_RELAY=ws://rdv:8080/srmudp`, "
  "plain, no TLS) and the server relays the session to b, which talks UDP to it: "
  "a ⇄ TCP ⇄ rdv ⇄ UDP ⇄ b. The server runs with `--relay-rate 1G --ws-rate 1G`: its "
  "defaults (1 MiB/s per key, 2 MiB/s per connection) are a deployment's policy, not the "
  "relay's capacity. Both ends run under `srmudp run` with default settings. *socat*: "
  "kernel TCP through `socat TCP-LISTEN,fork TCP:b` on the same relay host, in front of "
  "the plain servers of §1 and §3. a's log said the session was relayed over the "
  f"WebSocket, and never direct, in **{num(okws, 0)} of {num(nws, 0)}** measured runs.\n")
w("| iperf3, one stream | relay | socat | relay / socat | relay CPU s/GB | socat CPU s/GB |")
w("|---|---|---|---|---|---|")
for m, label in (("fwd", "a→b (a sends over the WebSocket)"), ("rev", "-R, b→a (the relay sends over it)")):
    w(f"| {label} | {fig(f'relay.{m}.ws')} | {fig(f'relay.{m}.socat')} | "
      f"{rtxt(ratio(med(f'relay.{m}.ws'), med(f'relay.{m}.socat')))} | {fig(f'relay.{m}.ws.cpu')} | "
      f"{fig(f'relay.{m}.socat.cpu')} |")
w("\nMbit/s at the receiver, 1 s omitted. CPU seconds per GB: both iperf3 processes (with "
  "the engines inside them) and the relay process (the rendezvous server; socat and its "
  "per-connection children).\n")
w("| redis-benchmark -c 1 | relay ops/s | socat ops/s | relay / socat | relay p50 ms | socat p50 ms | relay p99 ms | socat p99 ms |")
w("|---|---|---|---|---|---|---|---|")
for t in ("SET", "GET"):
    b = f"relay.redis.{t}"
    w(f"| {t} | {fig(b + '.ws.rps')} | {fig(b + '.socat.rps')} | "
      f"{rtxt(ratio(med(b + '.ws.rps'), med(b + '.socat.rps')))} | {fig(b + '.ws.p50')} | "
      f"{fig(b + '.socat.p50')} | {fig(b + '.ws.p99')} | {fig(b + '.socat.p99')} |")
w("\nTime to first byte (`latency.py ttfb`, as in §3; ms). *Cold* is the first connection of "
  "a fresh `srmudp run` process, with warm-up: its engine's UDP to the server goes "
  "unanswered for 1.5 s (`PATH_WS_AFTER_MS`), the WebSocket opens, and the handshake goes "
  "through the relay at once (`PATH_WS_RELAY_AFTER_MS` = 0), beside the punches. "
  "*Engine start to session*: a's log, from the engine's start (before `main()`) to "
  "\"session established\".\n")
w("| | relay | socat |")
w("|---|---|---|")
w(f"| cold: connect | {fig('relay.ttfb.ws.connect_cold_ms')} | {fig('relay.ttfb.socat.connect_cold_ms')} |")
w(f"| cold: first byte | {fig('relay.ttfb.ws.ttfb_cold_ms')} | {fig('relay.ttfb.socat.ttfb_cold_ms')} |")
w(f"| cold: engine start to session | {fig('relay.ttfb.ws.engine_to_session_ms')} | — |")
w(f"| warm: first byte (median of 10) | {fig('relay.ttfb.ws.ttfb_warm_ms')} | {fig('relay.ttfb.socat.ttfb_warm_ms')} |")
w("\nTwo reliable layers (end-to-end transport over the relay's TCP): what the sending "
  "engine counted during each iperf3 run (`srmudp status --json`, sampled every 0.5 s, the "
  "last sample), the drops of the sender's WebSocket queue (`relay_ws.queue_drops`, "
  "`WS_OUT_MAX`), the rendezvous server's (`ws_queue_drops`, SIGUSR1), and the datagrams "
  "the kernels dropped for a full UDP socket buffer (`RcvbufErrors` of `/proc/net/snmp`, "
  "in the relay host's and b's namespaces). Median (min–max) per run. *Retransmitted − "
  "lost*: retransmissions without a declared loss (probes on timeout), an upper bound on "
  "the spurious ones; a loss declared for a packet that was only delayed would show as "
  "lost packets beyond the drops counted on the right.\n")
w("| direction | packets sent | retransmitted | lost | retransmitted % | retransmitted − lost | sender's WS queue drops | relay's WS queue drops | relay host UDP buffer drops | b UDP buffer drops |")
w("|---|---|---|---|---|---|---|---|---|---|")
for m, label in (("fwd", "a→b"), ("rev", "-R, b→a")):
    b = f"relay.{m}.ws"
    pct = [x / y * 100 for x, y in zip(vals(b + ".snd_packets_retransmitted"), vals(b + ".snd_packets_out")) if y]
    pm = statistics.median(pct) if pct else None
    cnt = [fig(f"{b}.{k}", 0) for k in ("snd_packets_out", "snd_packets_retransmitted", "snd_packets_lost")]
    drops = [fig(f"{b}.{k}", 0) for k in ("snd_ws_queue_drops", "rdv_ws_queue_drops",
                                          "rdv_udp_rcvbuf_errors", "b_udp_rcvbuf_errors")]
    extra = [x - y for x, y in zip(vals(b + ".snd_packets_retransmitted"), vals(b + ".snd_packets_lost"))]
    w(f"| {label} | {' | '.join(cnt)} | {num(pm, 2)} | "
      f"{num(statistics.median(extra) if extra else None, 0)} | {' | '.join(drops)} |")

w("\n## 7. Through a gate\n")
ng = len(vals("gate.fwd.gate.path_gate") + vals("gate.rev.gate.path_gate") + vals("gate.redis.path_gate"))
okg = int(sum(vals("gate.fwd.gate.path_gate") + vals("gate.rev.gate.path_gate") + vals("gate.redis.path_gate")))
w("`srmudp gate` on the public host rdv introduces and relays for a and b (`SRMUDP_GATES`), "
  "with no rendezvous server; the lab's router drops UDP between a's and b's networks while "
  "the gate carries them, and lets it through for *direct*: the same engines' sessions on "
  "the same hosts, in the same run. Both ends run under `srmudp run` with default "
  f"settings. a's log said the session was relayed by the gate in {okg} of {ng} runs.\n")
w("| iperf3, one stream | gate | plain forwarder | direct | gate / direct | forwarder / direct | "
  "gate CPU s/GB | forwarder CPU s/GB | direct CPU s/GB |")
w("|---|---|---|---|---|---|---|---|---|")
for m, label in (("fwd", "a→b"), ("rev", "-R, b→a")):
    w(f"| {label} | {fig(f'gate.{m}.gate')} | {fig(f'gate.{m}.plain')} | {fig(f'gate.{m}.direct')} | "
      f"{rtxt(ratio(med(f'gate.{m}.gate'), med(f'gate.{m}.direct')))} | "
      f"{rtxt(ratio(med(f'gate.{m}.plain'), med(f'gate.{m}.direct')))} | {fig(f'gate.{m}.gate.cpu')} | "
      f"{fig(f'gate.{m}.plain.cpu')} | {fig(f'gate.{m}.direct.cpu')} |")
w("\n*Plain forwarder*: the same engines through `build/lab/udp_forward` on rdv, two UDP "
  "ports and nothing else (no crypto, no parsing; UDP GRO in, GSO out, a run of up to 64 KiB "
  "per system call): the floor "
  "under any user-space relay on these two cores. CPU s/GB: both iperf3 processes (with the "
  "engines inside them) and the gate or forwarder process.\n")
w("| redis-benchmark -c 1 | gate ops/s | direct ops/s | gate / direct | gate p50 ms | direct p50 ms |")
w("|---|---|---|---|---|---|")
for t in ("SET", "GET"):
    b = f"gate.redis.{t}"
    w(f"| {t} | {fig(b + '.gate.rps', 0)} | {fig(b + '.direct.rps', 0)} | "
      f"{rtxt(ratio(med(b + '.gate.rps'), med(b + '.direct.rps')))} | {fig(b + '.gate.p50', 3)} | "
      f"{fig(b + '.direct.p50', 3)} |")

w("\n" + open(os.path.join(HERE, "bounds.md")).read().rstrip() + "\n")

# ---------------------------------------------------------------------------
# Plots.
pdir = os.path.join(docs, "bench")
os.makedirs(pdir, exist_ok=True)
dat = os.path.join(os.path.dirname(os.path.abspath(raw)), "plot-data")  # beside raw.tsv
os.makedirs(dat, exist_ok=True)


def mmm(k):
    v = vals(k)
    return (statistics.median(v), min(v), max(v)) if v else None


with open(os.path.join(dat, "bulk.dat"), "w") as f:
    for i, (m, label) in enumerate((("fwd", "1-stream"), ("rev", "reverse"), ("p4", "4-streams"))):
        row = [str(i), label]
        for who in ("ours", "tcp", "kcptun"):
            x = mmm(f"bulk.{m}.{who}") or (float("nan"),) * 3
            row += [f"{y:.3f}" for y in x]
        f.write(" ".join(row) + "\n")
with open(os.path.join(dat, "grid.dat"), "w") as f:
    for rtt in (10, 50, 200):
        for loss in ("0", "0.5", "2", "5"):
            p = f"rtt{rtt}_loss{loss}_reo0"
            row = [str(rtt), loss]
            for who in ("ours", "cubic", "bbr", "kcptun"):
                x = mmm(f"grid.{p}.{who}") or (float("nan"),) * 3
                row += [f"{max(y, 0.01):.3f}" for y in x]
            f.write(" ".join(row) + "\n")
        f.write("\n\n")
with open(os.path.join(dat, "latency.dat"), "w") as f:
    for i, (k, label) in enumerate((("idle_p50_ms", "idle-p50"), ("idle_p99_ms", "idle-p99"),
                                    ("load_p50_ms", "load-p50"), ("load_p99_ms", "load-p99"))):
        row = [str(i), label]
        for who in ("ours", "tcp"):
            x = mmm(f"load.{who}.{k}") or (float("nan"),) * 3
            row += [f"{y:.3f}" for y in x]
        f.write(" ".join(row) + "\n")

ceil = ceil_mbps or 0
gp = f"""
set terminal pngcairo size 900,520 font ",10"
set style fill solid 0.8 border -1
set grid ytics
set key top right

set output '{pdir}/bulk.png'
set title 'Clean-path bulk throughput (median, min-max), AEAD ceiling dashed'
set ylabel 'Mbit/s (log)'
set logscale y
set xrange [-0.5:2.5]
set boxwidth 0.25
set xtics ("1 stream" 0, "reverse (-R)" 1, "4 streams (-P 4)" 2)
plot '{dat}/bulk.dat' u ($1-0.27):3:4:5:(0.25) w boxerrorbars t 'srmudp', \\
     '' u ($1):6:7:8:(0.25) w boxerrorbars t 'kernel TCP', \\
     '' u ($1+0.27):9:10:11:(0.25) w boxerrorbars t 'kcptun', \\
     {ceil} w l dt 2 lw 2 lc rgb 'black' t 'AEAD ceiling (1 core)'
@@SPLIT@@
set terminal pngcairo size 1200,420 font ",10"
set output '{pdir}/grid.png'
set grid ytics
set logscale y
set multiplot layout 1,3 title 'Goodput under loss (loss each way), median with min-max'
unset xtics
set xtics ("0" 0, "0.5" 1, "2" 2, "5" 3)
set xrange [-0.3:3.3]
set xlabel 'loss %'
set ylabel 'Mbit/s (log)'
set key bottom left
do for [i=0:2] {{
  set title sprintf('RTT %s ms', word("10 50 200", i+1))
  plot '{dat}/grid.dat' index i u ($0-0.06):3:4:5 w yerrorlines t 'srmudp', \\
       '' index i u ($0-0.02):6:7:8 w yerrorlines t 'TCP cubic', \\
       '' index i u ($0+0.02):9:10:11 w yerrorlines t 'TCP bbr', \\
       '' index i u ($0+0.06):12:13:14 w yerrorlines t 'kcptun'
}}
unset multiplot
@@SPLIT@@
set terminal pngcairo size 900,520 font ",10"
set style fill solid 0.8 border -1
set grid ytics
set output '{pdir}/latency.png'
set yrange [0:*]
set title 'Ping-pong round trip, idle and beside a bulk stream (100 Mbit/s, 10 ms RTT)'
unset logscale y
set ylabel 'ms'
unset xlabel
set xrange [-0.5:3.5]
set boxwidth 0.35
set key top left
set xtics ("p50 idle" 0, "p99 idle" 1, "p50 loaded" 2, "p99 loaded" 3)
plot '{dat}/latency.dat' u ($1-0.18):3:4:5:(0.35) w boxerrorbars t 'srmudp', \\
     '' u ($1+0.18):6:7:8:(0.35) w boxerrorbars t 'kernel TCP'
"""
for part in gp.split("@@SPLIT@@"):  # one plot failing (no data) spares the others
    r = subprocess.run(["gnuplot"], input=part, text=True, capture_output=True)
    if r.returncode != 0:
        print("report: gnuplot failed:\n" + r.stderr[-600:], file=sys.stderr)

out = os.path.join(docs, "BENCHMARKS.md")
with open(out, "w") as f:
    f.write("\n".join(md) + "\n")
print(f"report: wrote {out} and {pdir}/*.png")
