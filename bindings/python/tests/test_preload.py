"""Python clients of unmodified servers preloaded with libsrmudp.so
(`srmudp run`), on loopback: the same protocol through two front ends."""
import asyncio
import hashlib
import os
import subprocess
import sys
import textwrap
import time

import pytest
import srmudp
from conftest import free_port, udp_port

CLI = os.environ.get("SRM_CLI")
pytestmark = pytest.mark.skipif(not CLI, reason="SRM_CLI (the srmudp command) not given")

ABORTER = textwrap.dedent("""
    import socket, struct, sys
    s = socket.create_server(("0.0.0.0", int(sys.argv[1])))
    print("ready", flush=True)
    c, _ = s.accept()
    c.recv(100)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
""")


def listening(port):
    """Something listens on TCP port (IPv4 or IPv6)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    return True
    return False


class Preloaded:
    """srmudp run -- ARGV with b's key, peer a, and a fixed UDP port."""

    def __init__(self, keys, tmp_path, argv, tcp_port):
        self.udp = udp_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SRMUDP_")}
        env.update(SRMUDP_KEY=keys["b"][0], SRMUDP_LISTEN=str(self.udp),
                   SRMUDP_PEERS="a=" + keys["a"][1], SRMUDP_LOG_FILE=str(tmp_path / "b.log"))
        self.proc = subprocess.Popen([CLI, "run", "--"] + argv, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not listening(tcp_port):
            assert self.proc.poll() is None, "the preloaded server exited"
            assert time.monotonic() < deadline, "the preloaded server never listened"
            time.sleep(0.05)
        self.client = srmudp.Engine(key=keys["a"][0], connect_timeout=5,
                                    peers={"b": (keys["b"][1], ("127.0.0.1", self.udp))})

    def close(self):
        self.client.close()
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def http(keys, tmp_path):
    docs = tmp_path / "www"
    docs.mkdir()
    blob = os.urandom(1 << 20)
    (docs / "blob").write_bytes(blob)
    port = free_port()
    srv = Preloaded(keys, tmp_path, [sys.executable, "-m", "http.server", str(port),
                                      "--bind", "0.0.0.0", "--directory", str(docs)], port)
    srv.port, srv.sha = port, hashlib.sha256(blob).hexdigest()
    yield srv
    srv.close()


def body(response):
    head, _, rest = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head[:80]
    return rest


def test_http_get_socket(http):
    with srmudp.create_connection(("b", http.port), engine=http.client) as s:
        s.sendall(b"GET /blob HTTP/1.0\r\nHost: b\r\n\r\n")
        response = s.makefile("rb").read()
    assert hashlib.sha256(body(response)).hexdigest() == http.sha


def test_http_get_asyncio(http):
    async def get():
        reader, writer = await srmudp.open_connection("b", http.port, engine=http.client)
        writer.write(b"GET /blob HTTP/1.0\r\nHost: b\r\n\r\n")
        response = await reader.read()
        writer.close()
        return response

    async def many():
        return await asyncio.gather(*(get() for _ in range(8)))

    for response in asyncio.run(asyncio.wait_for(many(), 60)):
        assert hashlib.sha256(body(response)).hexdigest() == http.sha


def test_preloaded_abort_resets(keys, tmp_path):
    port = free_port()
    srv = Preloaded(keys, tmp_path, [sys.executable, "-c", ABORTER, str(port)], port)
    try:
        with srmudp.create_connection(("b", port), engine=srv.client) as s:
            s.sendall(b"hello")
            with pytest.raises(ConnectionResetError):
                s.recv(100)
    finally:
        srv.close()


def test_preloaded_refused(http):
    with pytest.raises(ConnectionRefusedError):
        srmudp.create_connection(("b", free_port()), engine=http.client)
