"""srmudp for Python: the srmudp engine (libsrmudp-core) through ctypes.

Streams to peers pinned by public key, across NAT, encrypted and reliable,
as sockets and as asyncio streams.  No second implementation of the
protocol: every byte goes through the engine library.  docs/API.md
("Python") describes it; the configuration is docs/CONFIG.md's.

    import srmudp
    s = srmudp.create_connection(("bob", 8000))      # a socket
    reader, writer = await srmudp.open_connection("bob", 8000)
    server = await srmudp.start_server(handle, 8000)

Module-level functions use one engine per process, made from the
environment (or from configure(**settings)) and started on first use;
srmudp.Engine(**settings) makes others.
"""
import socket
import threading

from .aio import Server, StreamWriter, open_connection, start_server
from .config import KEYWORDS as SETTINGS
from .engine import Engine, EngineStats, PeerStats, keygen, pubkey
from .errors import ConfigError, PeerUnreachableError
from .stream import Listener, Stream

__version__ = "0.1.0"
__all__ = [
    "Engine", "EngineStats", "PeerStats", "Stream", "Listener", "Server", "StreamWriter",
    "ConfigError", "PeerUnreachableError", "SETTINGS", "configure", "default_engine",
    "create_connection", "create_server", "open_connection", "start_server",
    "keygen", "pubkey", "peer_stats", "stats", "peers",
]

_default = None
_default_lock = threading.Lock()


def configure(**settings):
    """Configure the process's engine: keyword arguments over the
    environment (srmudp.SETTINGS lists them).  Only before it has started;
    RuntimeError after."""
    global _default
    with _default_lock:
        if _default is not None and _default.running:
            raise RuntimeError("srmudp: the engine has started; configure() it before first use")
        new = Engine(**settings)
        old, _default = _default, new
    if old is not None:
        old.close()
    return new


def default_engine():
    """The process's engine (configured from the environment unless
    configure() was called)."""
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            _default = Engine()
        return _default


def create_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, *, engine=None):
    """Like socket.create_connection: address is (peer name, port); returns
    a Stream (a socket.socket).  timeout: seconds for the open and the
    socket after (the default: socket.getdefaulttimeout(); None: the
    engine's connect timeout, then blocking)."""
    name, port = address
    if timeout is socket._GLOBAL_DEFAULT_TIMEOUT:
        timeout = socket.getdefaulttimeout()
    return (engine or default_engine()).connect(name, port, timeout)


def create_server(port, *, engine=None):
    """A Listener for streams peers open to port (accept() -> (stream, peer))."""
    return (engine or default_engine()).listen(port)


def peer_stats(name, *, engine=None):
    """PeerStats of a configured peer."""
    return (engine or default_engine()).peer_stats(name)


def stats(*, engine=None):
    """EngineStats: sessions, streams, packets, drops by reason."""
    return (engine or default_engine()).stats()


def peers(*, engine=None):
    """The configured peer names."""
    return (engine or default_engine()).peers()
