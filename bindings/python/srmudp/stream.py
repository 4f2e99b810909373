"""Streams as sockets: the application's end of the engine's socket pair.

A Stream is a socket.socket (AF_UNIX, SOCK_STREAM) whose other end the
engine bridges to the peer, so recv/send/sendall/shutdown/settimeout,
makefile() and select/selectors work as on a TCP socket.  What a TCP
socket reports and a socket pair cannot is added here: a peer's abort (or
its death) reads as a plain EOF on the pair, and the engine keeps how the
stream ended on its "ends board" (srm_ends_take), so at EOF, or when a
send finds the engine's end closed, the stream asks it and raises
ConnectionResetError (or TimeoutError) once, as TCP does.
"""
import ctypes
import errno
import select
import socket
import struct
import sys
import time

from . import _core as C
from .errors import check, ending, error


class Stream(socket.socket):
    """A stream to (or from) a peer.  peer: the peer's name; port: the port
    it was opened to, or accepted on."""

    # Class-level defaults: socket.dup() and friends build plain instances.
    peer = None
    port = None
    _engine = None
    _handle = None

    @classmethod
    def _adopt(cls, sock, engine, handle, peer, port):
        s = cls(fileno=sock.detach())
        s._engine, s._handle, s.peer, s.port = engine, handle, peer, port
        return s

    def __repr__(self):
        return "<srmudp.Stream fd=%d peer=%r port=%r>" % (self.fileno(), self.peer, self.port)

    def _ended(self, exc=None):
        """How the stream ended abnormally, as an exception (else exc)."""
        if self._handle is None or self._engine is None or self._engine.closed:
            return exc
        lib = C.lib()
        code = lib.srm_ends_take(lib.srm_engine_ends(self._engine._ptr()), self._handle)
        return ending(code, "%s:%s" % (self.peer, self.port)) or exc

    def recv(self, bufsize, flags=0):
        try:
            data = super().recv(bufsize, flags)
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise self._ended(exc) from None
        if not data and bufsize:
            exc = self._ended()
            if exc:
                raise exc
        return data

    def recv_into(self, buffer, nbytes=0, flags=0):
        try:
            n = super().recv_into(buffer, nbytes, flags)
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise self._ended(exc) from None
        if n == 0 and (nbytes or len(buffer)):
            exc = self._ended()
            if exc:
                raise exc
        return n

    def send(self, data, flags=0):
        try:
            return super().send(data, flags)
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise self._ended(exc) from None

    def sendall(self, data, flags=0):
        try:
            return super().sendall(data, flags)
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise self._ended(exc) from None

    def abort(self):
        """Close with a reset: the peer's reads raise ConnectionResetError
        (like close() after SO_LINGER {1, 0} on TCP).  Streams from
        Listener.accept() that stayed on TCP (see Listener) abort as TCP
        sockets do, with SO_LINGER {1, 0}."""
        if self._handle is not None and self._engine is not None and not self._engine.closed:
            C.lib().srm_stream_abort(self._engine._ptr(), self._handle)
        elif self.family != socket.AF_UNIX:
            self.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def stats(self):
        """{peer, port, outgoing, state, tx_buffered, rx_buffered} while the
        stream lives (srm_stream_stats), else None."""
        if self._handle is None or self._engine is None:
            return None
        buf = C.StreamStatsBuf()
        if C.lib().srm_stream_stats(self._engine._ptr(), self._handle, ctypes.byref(buf)) != 0:
            return None
        v = buf.v
        return {"peer": self._engine._peer_name(v.peer), "port": v.port,
                "outgoing": bool(v.outgoing), "state": v.state,
                "tx_buffered": v.tx_buffered, "rx_buffered": v.rx_buffered}


def _sockaddr_in(addr):
    """('127.0.0.1', port) -> (struct sockaddr_in, its length)."""
    host, port = addr
    raw = (socket.AF_INET.to_bytes(2, sys.byteorder) + port.to_bytes(2, "big")
           + socket.inet_aton(host) + bytes(8))
    return ctypes.create_string_buffer(raw, len(raw)), len(raw)


# As the kernel's default for listen(): the engine queues nothing itself.
ACCEPT_BACKLOG = 128


class Listener:
    """Streams peers open to port.  The engine hands each over the way it
    does to a preloaded server (srm_listen_handoff): it rings a loopback
    TCP listener of ours, and accept() claims the stream behind that
    connection (srm_forwarded_claim) as a socket pair with a handle, so
    accepted streams can abort() and report a peer's abort like opened
    ones.  (srm_accept's queue gives no handle.)  A stream the engine
    cannot hand over yet stays on its loopback TCP connection, where an
    abort is a real RST.  Connections from anything but the engine are
    closed.  fileno() is that listener's: readable while streams wait."""

    def __init__(self, engine, port):
        self.engine = engine
        self.port = port
        self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._tcp.bind(("127.0.0.1", 0))
            self._tcp.listen(ACCEPT_BACKLOG)
            self._tcp.setblocking(False)
            target, tlen = _sockaddr_in(self._tcp.getsockname())
            rc = C.lib().srm_listen_handoff(engine._ptr(), port, target, tlen)
            if rc == C.ERR_EXISTS:
                raise OSError(errno.EADDRINUSE, "listen %d: already listened on in this engine" % port)
            check(rc, "listen %d" % port)
        except BaseException:
            self._tcp.close()
            raise

    def fileno(self):
        return self._tcp.fileno()

    def accept_nowait(self):
        """The next waiting stream, or None."""
        if self._tcp.fileno() < 0:
            raise error(C.ERR_CLOSED, "listen %d" % self.port)
        lib, e = C.lib(), self.engine._ptr()
        while True:
            try:
                conn, addr = self._tcp.accept()
            except BlockingIOError:
                return None
            src, slen = _sockaddr_in(addr)
            peer = lib.srm_forwarded_peer(e, src, slen)
            if peer < 0:
                conn.close()  # not the engine's
                continue
            handle = ctypes.c_uint64()
            fd = lib.srm_forwarded_claim(e, src, slen, conn.fileno(), ctypes.byref(handle))
            if fd >= 0:
                conn.close()
                sock, h = socket.socket(fileno=fd), handle.value
            else:
                sock, h = conn, None
            sock.setblocking(True)
            return Stream._adopt(sock, self.engine, h, self.engine._peer_name(peer), self.port)

    def accept(self, timeout=None):
        """(stream, peer name); timeout in seconds (None: wait forever)
        raises TimeoutError."""
        poller = select.poll()
        poller.register(self._tcp.fileno(), select.POLLIN)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            s = self.accept_nowait()
            if s is not None:
                return s, s.peer
            left = None if deadline is None else max(0.0, deadline - time.monotonic()) * 1000
            if not poller.poll(left) and deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(errno.ETIMEDOUT, "accept %d: timed out" % self.port)

    def close(self):
        """Stop accepting: peers' new streams are refused."""
        if self._tcp.fileno() >= 0:
            if not self.engine.closed:
                C.lib().srm_unlisten(self.engine._ptr(), self.port)
            self._tcp.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
