"""The engine's errors as Python's: refused, reset, timed out."""
import asyncio
import errno
import socket
import time

import pytest
import srmudp


def test_refused_port(pair):
    with pytest.raises(ConnectionRefusedError) as e:
        pair.a.connect("b", 7200)
    assert e.value.errno == errno.ECONNREFUSED and "b:7200" in str(e.value)
    # b counted it: nothing listens there.
    assert pair.b.stats().refused["closed"] == 1
    assert pair.b.peer_stats("a").refused == {"closed": 1, "loopback": 0, "not-allowed": 0}


def test_refused_port_asyncio(pair):
    with pytest.raises(ConnectionRefusedError):
        asyncio.run(srmudp.open_connection("b", 7200, engine=pair.a))


def test_closed_listener_refuses(pair):
    pair.b.listen(7201).close()
    with pytest.raises(ConnectionRefusedError):
        pair.a.connect("b", 7201)


def test_server_abort_resets_client(pair):
    with pair.b.listen(7202) as lst:
        c = pair.a.connect("b", 7202)
        s, _ = lst.accept(timeout=5)
        s.abort()
        with pytest.raises(ConnectionResetError) as e:
            c.recv(10)
        assert e.value.errno == errno.ECONNRESET
        assert c.recv(10) == b""  # reported once, as TCP does
        c.close()


def test_client_abort_resets_server(pair):
    with pair.b.listen(7203) as lst:
        c = pair.a.connect("b", 7203)
        c.sendall(b"partial")
        s, _ = lst.accept(timeout=5)
        assert s.recv(7, socket.MSG_WAITALL) == b"partial"
        c.abort()
        with pytest.raises(ConnectionResetError):
            s.recv(10)
        s.close()


def test_abort_asyncio(pair):
    async def handle(reader, writer):
        await reader.readexactly(2)
        writer.abort()

    async def main():
        server = await srmudp.start_server(handle, 7204, engine=pair.b)
        reader, writer = await srmudp.open_connection("b", 7204, engine=pair.a)
        writer.write(b"hi")
        try:
            with pytest.raises(ConnectionResetError):
                await reader.read()
        finally:
            writer.close()
            server.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def silent_udp():
    """A UDP socket that never answers (no ICMP either: it is bound)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def test_unreachable_peer_times_out(keys, monkeypatch):
    """A peer that never answers the handshake: TimeoutError after
    SRMUDP_CONNECT_TIMEOUT (errno EHOSTUNREACH: it never answered), and at
    once for the next 3 s."""
    monkeypatch.setenv("SRMUDP_CONNECT_TIMEOUT", "500ms")
    with silent_udp() as hole:
        e = srmudp.Engine(key=keys["a"][0],
                          peers={"b": (keys["b"][1], hole.getsockname())})
        try:
            t0 = time.monotonic()
            with pytest.raises(TimeoutError) as exc:
                e.connect("b", 80)
            assert 0.4 < time.monotonic() - t0 < 3
            assert isinstance(exc.value, srmudp.PeerUnreachableError)
            assert exc.value.errno == errno.EHOSTUNREACH
            t0 = time.monotonic()
            with pytest.raises(TimeoutError):
                asyncio.run(srmudp.open_connection("b", 80, engine=e))
            assert time.monotonic() - t0 < 0.4
        finally:
            e.close()


def test_own_timeout_shorter_than_the_engines(keys):
    with silent_udp() as hole:
        with srmudp.Engine(key=keys["a"][0], connect_timeout=30,
                           peers={"b": (keys["b"][1], hole.getsockname())}) as e:
            t0 = time.monotonic()
            with pytest.raises(TimeoutError) as exc:
                srmudp.create_connection(("b", 80), timeout=0.3, engine=e)
            assert exc.value.errno == errno.ETIMEDOUT
            assert time.monotonic() - t0 < 2
