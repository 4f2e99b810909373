"""asyncio: standard StreamReader/StreamWriter, 100 streams at once."""
import asyncio
import hashlib
import os

import pytest
import srmudp

STREAMS = 100


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_hundred_concurrent_streams(pair):
    async def handle(reader, writer):
        assert isinstance(reader, asyncio.StreamReader)
        assert isinstance(writer, asyncio.StreamWriter) and writer.peer == "a"
        data = await reader.read()  # until the client's EOF
        writer.write(hashlib.sha256(data).digest())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def one(i):
        payload = os.urandom(16384 + 997 * i)
        reader, writer = await srmudp.open_connection("b", 7100, engine=pair.a)
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        digest = await reader.read()
        writer.close()
        await writer.wait_closed()
        return digest == hashlib.sha256(payload).digest()

    async def main():
        async with await srmudp.start_server(handle, 7100, engine=pair.b) as server:
            assert server.is_serving()
            results = await asyncio.gather(*(one(i) for i in range(STREAMS)))
        return results

    assert run(main()) == [True] * STREAMS
    assert pair.a.peer_stats("b").established


def test_peername_and_default_engine(keys):
    """The module's engine (configure) and a server on an explicit one."""
    server_engine = srmudp.Engine(key=keys["b"][0], listen=("127.0.0.1", 0),
                                  peers={"a": keys["a"][1]})
    try:
        srmudp.configure(key=keys["a"][0],
                         peers={"b": (keys["b"][1], ("127.0.0.1", server_engine.udp_port))})

        async def handle(reader, writer):
            line = await reader.readline()
            writer.write(line.upper())
            await writer.drain()
            writer.close()

        async def main():
            server = await srmudp.start_server(handle, 7101, engine=server_engine)
            reader, writer = await srmudp.open_connection("b", 7101)
            assert writer.get_extra_info("peername") == ("b", 7101)
            writer.write(b"hello\n")
            answer = await reader.readline()
            writer.close()
            server.close()
            await server.wait_closed()
            return answer

        assert run(main()) == b"HELLO\n"
    finally:
        srmudp.default_engine().close()
        server_engine.close()


def test_open_timeout_is_a_timeout(pair, keys):
    """timeout= bounds the open even when the engine's own is longer."""
    far = srmudp.Engine(key=keys["a"][0], peers={"b": (keys["b"][1], ("192.0.2.1", 9))},
                        connect_timeout=30)
    try:
        with pytest.raises(TimeoutError):
            run(srmudp.open_connection("b", 1, engine=far, timeout=0.3))
    finally:
        far.close()
