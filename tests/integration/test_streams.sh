#!/usr/bin/env bash
# test_streams.sh — 1000 concurrent streams on one session, across the NAT
# lab: a preloaded python3 client on a opens 1000 TCP connections to a
# preloaded asyncio echo server on b (both through the preload, so all 1000
# ride one srmudp session), keeps them all open, sends a different 4 KiB on
# each and checks every echo.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
srm_lab
STREAMS=${SRM_STREAMS:-1000}

lab_up --nat-a cone --nat-b cone
srm_lab_keys
env_a=(SRMUDP_KEY="$work/a.key" SRMUDP_LISTEN=4000 SRMUDP_PEERS="b=$pub_b@$(lab_addr natb v4):4000")
env_b=(SRMUDP_KEY="$work/b.key" SRMUDP_LISTEN=4000 SRMUDP_PEERS="a=$pub_a@$(lab_addr nata v4):4000")

cat >"$work/echo.py" <<'EOF'
import asyncio
async def echo(r, w):
    while data := await r.read(65536):
        w.write(data)
        await w.drain()
    w.close()
async def main():
    srv = await asyncio.start_server(echo, "0.0.0.0", 9000, backlog=2048)
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
EOF
cat >"$work/client.py" <<'EOF'
import os, selectors, socket, sys, time
n = int(sys.argv[1])
socks = []
for i in range(n):
    s = socket.create_connection(("b", 9000), timeout=30)
    s.setblocking(False)
    socks.append(s)
want = {s: os.urandom(4096) for s in socks}
got = {s: b"" for s in socks}
sel = selectors.DefaultSelector()
for s in socks:
    view = memoryview(want[s])
    while view:
        try:
            k = s.send(view)
            view = view[k:]
        except BlockingIOError:
            time.sleep(0.001)
    sel.register(s, selectors.EVENT_READ)
deadline = time.time() + 120
left = n
while left and time.time() < deadline:
    for key, _ in sel.select(1):
        s = key.fileobj
        d = s.recv(65536)
        got[s] += d
        if len(got[s]) >= 4096 or not d:
            sel.unregister(s)
            left -= 1
bad = sum(1 for s in socks if got[s] != want[s])
print(f"{n} streams open at once, {n - bad} echoed intact, {bad} wrong or missing")
sys.exit(1 if bad else 0)
EOF

lab_bg b bash -c "ulimit -n 16384; exec env ${env_b[*]} $SRMUDP run -- python3 $work/echo.py"
lab_wait_port b tcp 9000 10
rc=0
lab_exec a bash -c "ulimit -n 16384; exec env ${env_a[*]} timeout 180 $SRMUDP run -- python3 $work/client.py $STREAMS" || rc=$?
if ((rc == 0)); then
	ok "$STREAMS concurrent streams on one session, every echo intact"
else
	fail "$STREAMS concurrent streams (exit $rc)"
fi
srm_finish
