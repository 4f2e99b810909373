"""Across the NAT lab: a Python client on host a, behind its NAT, and an
unmodified server preloaded on host b, behind another (test_python.sh sets
it up and runs this file inside a's namespace).  Configured by the
environment alone: SRMUDP_KEY, SRMUDP_PEERS (b at its NAT's address),
SRMUDP_LISTEN; SRM_LAB_PORT, SRM_LAB_SHA and SRM_LAB_NAT_B describe b."""
import asyncio
import hashlib
import os

import pytest
import srmudp

pytestmark = pytest.mark.skipif(not os.environ.get("SRM_LAB"), reason="not in the NAT lab")

REQUEST = b"GET /blob HTTP/1.0\r\nHost: b\r\n\r\n"


def check_body(response):
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head[:80]
    assert hashlib.sha256(body).hexdigest() == os.environ["SRM_LAB_SHA"]


def test_get_through_two_nats():
    with srmudp.create_connection(("b", int(os.environ["SRM_LAB_PORT"])), timeout=20) as s:
        s.sendall(REQUEST)
        check_body(s.makefile("rb").read())
    st = srmudp.peer_stats("b")
    assert st.established and not st.relayed
    assert st.path == (os.environ["SRM_LAB_NAT_B"], 4000)


def test_asyncio_through_two_nats():
    async def get():
        reader, writer = await srmudp.open_connection("b", int(os.environ["SRM_LAB_PORT"]))
        writer.write(REQUEST)
        response = await reader.read()
        writer.close()
        return response

    async def main():
        return await asyncio.wait_for(asyncio.gather(*(get() for _ in range(20))), 60)

    for response in asyncio.run(main()):
        check_body(response)


def test_refused_through_two_nats():
    with pytest.raises(ConnectionRefusedError):
        srmudp.create_connection(("b", 1), timeout=20)
