"""The engine: one UDP socket, one thread, many peers and streams.

An Engine starts on first use (a connect, a listen, a statistic) and stops
at close(), or when the interpreter exits: then, like the preload, it
first drains what streams still have to send (as the kernel would for a
TCP socket), for at most the idle timeout or 10 s.
"""
import atexit
import ctypes
import errno
import os
import socket
import threading
import weakref
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from . import _core as C
from . import config as _config
from .errors import ConfigError, check, error
from .stream import Listener, Stream

# As the preload's exit drain: well under the idle timeout, for the port
# a restarted program may want back.
EXIT_DRAIN_MAX_MS = 10000
_SUFFIX = ".srmudp"


def sockaddr(ss, length=None):
    """A sockaddr_storage -> (host, port), or None if empty."""
    if length == 0 or ss.ss_family not in (socket.AF_INET, socket.AF_INET6):
        return None
    raw = ctypes.string_at(ctypes.addressof(ss), ctypes.sizeof(ss))
    port = int.from_bytes(raw[2:4], "big")
    if ss.ss_family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    if raw[8:20] == bytes(10) + b"\xff\xff":  # IPv4-mapped: the IPv4 address
        return socket.inet_ntop(socket.AF_INET, raw[20:24]), port
    return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port


@dataclass(frozen=True)
class PeerStats:
    """One peer (srm_peer_stats): the session, its path, RTT, congestion
    window, path MTU and counters.  path is (host, port) or None."""
    name: str
    established: bool
    relayed: bool
    path: Optional[Tuple[str, int]]
    srtt_us: int
    rttvar_us: int
    min_rtt_us: int
    cwnd_bytes: int
    pmtu: int
    bytes_sent: int
    bytes_received: int
    stream_bytes_sent: int
    stream_bytes_received: int
    packets_sent: int
    packets_received: int
    packets_lost: int
    packets_retransmitted: int
    streams: int
    handshake_age_ms: int
    early_opens: int
    refused: Dict[str, int]  # streams it opened that we refused, by reason


@dataclass(frozen=True)
class EngineStats:
    """The engine as a whole (srm_engine_stats); drops by reason name."""
    peers: int
    sessions: int
    streams: int
    packets_received: int
    packets_sent: int
    drops: Dict[str, int]
    refused: Dict[str, int]  # streams peers opened that we refused, by reason


def _refusals(counts):
    """srm_*_stats' refused[] by reason name ("closed", "loopback", ...)."""
    lib = C.lib()
    return {lib.srm_refusal_name(i).decode(): counts[i] for i in range(1, C.REFUSALS)}


def keygen(path):
    """Create a private key file (mode 0600; FileExistsError rather than
    overwrite) and return its public key as text."""
    pub = ctypes.create_string_buffer(C.PUBKEY_TEXT_BYTES)
    check(C.lib().srm_key_generate(_path(path), pub), str(path))
    return pub.value.decode()


def pubkey(path):
    """The public key of a private key file, as text."""
    lib = C.lib()
    secret = (ctypes.c_uint8 * C.KEY_BYTES)()
    pub = (ctypes.c_uint8 * C.KEY_BYTES)()
    err = ctypes.create_string_buffer(512)
    try:
        rc = lib.srm_key_load(_path(path), secret, pub, err, len(err))
    finally:
        ctypes.memset(secret, 0, C.KEY_BYTES)
    if rc != 0:
        raise error(rc, None, err.value.decode(errors="replace") or None)
    text = ctypes.create_string_buffer(C.PUBKEY_TEXT_BYTES)
    lib.srm_pubkey_encode(pub, text)
    return text.value.decode()


def _path(p):
    return os.fsencode(p)


_live = weakref.WeakSet()


@atexit.register
def _at_exit():
    for e in list(_live):
        e.close(drain=True)


class Engine:
    """An engine configured by keyword arguments over the SRMUDP_*
    environment and SRMUDP_CONFIG (srmudp.config, docs/CONFIG.md).  The
    configuration is read, and errors raised (ConfigError), here; the
    engine itself starts on first use, or with start()."""

    def __init__(self, **settings):
        env = _config.settings(settings)
        self._cfg = _config.read(env)
        self._e = None
        self._lock = threading.Lock()
        self.closed = False

    # -- life ---------------------------------------------------------------
    def start(self):
        """Start the engine (bind its UDP socket, load the key) if it is
        not running yet; returns self."""
        self._ptr()
        return self

    def _ptr(self):
        e = self._e
        if e is not None:
            return e
        with self._lock:
            if self.closed:
                raise error(C.ERR_CLOSED, "srmudp", "the engine is closed")
            if self._e is None:
                out = ctypes.c_void_p()
                err = ctypes.create_string_buffer(1024)
                rc = C.lib().srm_engine_start(ctypes.byref(self._cfg), ctypes.byref(out),
                                              err, len(err))
                if rc != 0:
                    msg = err.value.decode(errors="replace")
                    if rc == C.ERR_INVALID:
                        raise ConfigError(msg)
                    raise error(rc, None, msg or None)
                self._e = out.value
                _live.add(self)
            return self._e

    def close(self, drain=False):
        """Stop the engine: every stream still open is reset (drain=True:
        finished first, as at exit).  Idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            e, self._e = self._e, None
        lib = C.lib()
        if e is not None:
            if drain:
                idle = self._cfg.v.idle_timeout_ms
                lib.srm_engine_drain(e, min(idle or EXIT_DRAIN_MAX_MS, EXIT_DRAIN_MAX_MS))
            lib.srm_engine_stop(e)
        _config.free(self._cfg)
        _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def running(self):
        return self._e is not None

    @property
    def udp_port(self):
        """The bound UDP port (starts the engine)."""
        return C.lib().srm_engine_udp_port(self._ptr())

    # -- peers ----------------------------------------------------------------
    def peers(self):
        """The configured peer names."""
        return _config.peer_names(self._cfg)

    def _peer_name(self, index):
        names = self.peers()
        return names[index] if 0 <= index < len(names) else None

    def _peer_index(self, name):
        if name.lower().endswith(_SUFFIX):
            name = name[:-len(_SUFFIX)]
        idx = C.lib().srm_peer_find(self._ptr(), name.encode())
        if idx >= 0:
            return idx
        near = C.lib().srm_peer_suggest(ctypes.byref(self._cfg), name.encode())
        hint = " (did you mean %s?)" % near.decode() if near else ""
        # As getaddrinfo for an unknown host name.
        raise socket.gaierror(socket.EAI_NONAME,
                              "no peer named %r in SRMUDP_PEERS%s" % (name, hint))

    def peer_stats(self, name):
        """PeerStats for a configured peer."""
        buf = C.PeerStatsBuf()
        idx = self._peer_index(name)
        check(C.lib().srm_peer_stats(self._ptr(), idx, ctypes.byref(buf)), name)
        v = buf.v
        f = {k: getattr(v, k) for k, _ in C.PeerStats._fields_
             if k not in ("established", "relayed", "path", "refused")}
        return PeerStats(name=self._peer_name(idx), established=bool(v.established),
                         relayed=bool(v.relayed), path=sockaddr(v.path),
                         refused=_refusals(v.refused), **f)

    def stats(self):
        """EngineStats."""
        lib = C.lib()
        buf = C.EngineStatsBuf()
        lib.srm_engine_stats(self._ptr(), ctypes.byref(buf))
        v = buf.v
        drops = {lib.srm_drop_reason_name(i).decode(): v.drops[i] for i in range(C.DROP_REASONS)}
        return EngineStats(v.peers, v.sessions, v.streams, v.packets_received,
                           v.packets_sent, drops, _refusals(v.refused))

    # -- streams --------------------------------------------------------------
    def _open(self, name, port, nonblocking=False):
        """Open a stream; returns (our socket, handle, the send buffer size
        to restore once open).  nonblocking: our end is filled first
        (docs/API.md), so that it turns writable when the open is decided."""
        e = self._ptr()
        idx = self._peer_index(name)
        if not 0 < port < 65536:
            raise OverflowError("port must be 1-65535")
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fill, sndbuf = _prefill(mine) if nonblocking else (0, 0)
        handle = ctypes.c_uint64()
        # The engine owns theirs from here, even on failure.
        rc = C.lib().srm_stream_open(e, idx, port, theirs.detach(), fill, ctypes.byref(handle))
        if rc != 0:
            mine.close()
            raise error(rc, "%s:%d" % (name, port))
        return mine, handle.value, sndbuf

    def connect(self, name, port, timeout=None):
        """A Stream to port on peer name; timeout in seconds bounds the
        open (None: the engine's connect timeout) and is then set on the
        stream, as socket.create_connection does."""
        sock, h, _ = self._open(name, port)
        ms = -1 if timeout is None else max(0, int(timeout * 1000))
        st = C.lib().srm_stream_wait(self._e, h, ms)
        if st == C.ERR_AGAIN:
            C.lib().srm_stream_abort(self._e, h)
            sock.close()
            raise TimeoutError(errno.ETIMEDOUT, "%s:%d: timed out" % (name, port))
        if st < 0 and st != C.ERR_RESET:  # RESET: it opened, then ended
            sock.close()
            raise error(st, "%s:%d" % (name, port))
        s = Stream._adopt(sock, self, h, self._peer_name(self._peer_index(name)), port)
        s.settimeout(timeout)
        return s

    def listen(self, port):
        """A Listener for streams peers open to port."""
        return Listener(self, port)


# The filler that holds POLLOUT low on a non-blocking open (docs/API.md):
# the buffer is made as small as it goes first, then restored once open.
_FILLER = bytes(4096)


def _prefill(sock):
    """Fill sock; returns (bytes written, the SO_SNDBUF value to restore)."""
    sock.setblocking(False)
    # setsockopt doubles what it is given; getsockopt shows the double.
    before = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) // 2
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)
    total = 0
    for _ in range(1024):  # bounded: the buffer is finite
        try:
            n = sock.send(_FILLER)
        except BlockingIOError:
            break
        total += n
        if n < len(_FILLER):
            break
    return total, before
