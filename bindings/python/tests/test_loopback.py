"""Sockets between two engines on loopback: a Python client, a Python server."""
import hashlib
import os
import socket
import threading

import pytest
import srmudp


def echo_server(listener, count=1):
    """Accept count streams; echo each until EOF, then close."""
    def run():
        for _ in range(count):
            s, _peer = listener.accept(timeout=10)
            with s:
                while True:
                    data = s.recv(65536)
                    if not data:
                        break
                    s.sendall(data)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_echo_and_half_close(pair):
    with pair.b.listen(7000) as lst:
        t = echo_server(lst)
        with pair.a.connect("b", 7000) as s:
            assert isinstance(s, socket.socket)
            assert (s.peer, s.port) == ("b", 7000)
            s.sendall(b"hello")
            assert s.recv(5) == b"hello"
            s.shutdown(socket.SHUT_WR)  # the server sees EOF, then closes
            assert s.recv(10) == b""
        t.join(10)


def test_bulk_through_makefile(pair):
    blob = os.urandom(8 << 20)
    with pair.b.listen(7001) as lst:
        got = {}

        def serve():
            s, peer = lst.accept(timeout=10)
            with s, s.makefile("rb") as f:
                got["peer"] = peer
                got["sha"] = hashlib.sha256(f.read()).hexdigest()
                s.sendall(got["sha"].encode())
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        with pair.a.connect("b", 7001) as s:
            s.sendall(blob)
            s.shutdown(socket.SHUT_WR)
            answer = s.makefile("rb").read()
        t.join(30)
    assert got["peer"] == "a"
    assert answer.decode() == hashlib.sha256(blob).hexdigest()


def test_default_engine_and_module_functions(keys, monkeypatch):
    """configure() (keywords) for the process's engine; create_connection
    and create_server as in the socket module; NAME.srmudp works too."""
    server = srmudp.Engine(key=keys["b"][0], listen=("127.0.0.1", 0), peers={"a": keys["a"][1]})
    try:
        port = server.udp_port
        eng = srmudp.configure(key=keys["a"][0],
                               peers="b=%s@127.0.0.1:%d" % (keys["b"][1], port))
        assert srmudp.default_engine() is eng and srmudp.peers() == ["b"]
        with server.listen(7002) as lst:
            t = echo_server(lst)
            with srmudp.create_connection(("b.srmudp", 7002), timeout=5) as s:
                assert s.gettimeout() == 5
                s.sendall(b"x" * 1000)
                assert s.recv(1000, socket.MSG_WAITALL) == b"x" * 1000
            t.join(10)
        st = srmudp.peer_stats("b")
        assert st.established and not st.relayed and st.path == ("127.0.0.1", port)
        assert st.stream_bytes_sent >= 1000 and st.srtt_us > 0 and st.pmtu > 0
        es = srmudp.stats()
        assert es.sessions == 1 and "auth" in es.drops
        with pytest.raises(RuntimeError):
            srmudp.configure()  # it has started
    finally:
        srmudp.default_engine().close()
        server.close()


def test_create_server_and_stream_stats(pair):
    with srmudp.create_server(7003, engine=pair.b) as lst:
        t = echo_server(lst)
        with srmudp.create_connection(("b", 7003), engine=pair.a) as s:
            st = s.stats()
            assert st["peer"] == "b" and st["port"] == 7003 and st["outgoing"]
            s.sendall(b"ping")
            assert s.recv(4) == b"ping"
        t.join(10)  # before the engines stop (which resets what is open)


def test_unknown_peer_is_a_name_error(keys):
    with srmudp.Engine(key=keys["a"][0], peers={"bob": keys["b"][1]}) as e:
        with pytest.raises(socket.gaierror, match="did you mean bob"):
            e.connect("bobb", 7000)


def test_listen_twice(pair):
    with pair.b.listen(7004):
        with pytest.raises(OSError) as e:
            pair.b.listen(7004)
        assert e.value.errno == 98  # EADDRINUSE


def test_accept_timeout(pair):
    with pair.b.listen(7005) as lst:
        with pytest.raises(TimeoutError):
            lst.accept(timeout=0.2)
