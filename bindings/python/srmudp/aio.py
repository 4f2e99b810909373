"""asyncio: open_connection and start_server with standard StreamReader
and StreamWriter objects.

Opens never block the loop: our end of the pair is filled first, so it
turns writable exactly when the engine has decided the open (docs/API.md,
"Non-blocking opens"), and the loop waits for that like for a TCP connect.
The transport reads and writes through a Stream (srmudp.stream), so a
peer's abort reaches the reader as ConnectionResetError.
"""
import asyncio
import errno
import socket

from . import _core as C
from .errors import error
from .stream import Stream

_LIMIT = 2 ** 16  # asyncio's default StreamReader limit


class StreamWriter(asyncio.StreamWriter):
    """An asyncio.StreamWriter that knows its peer and can abort."""

    def __init__(self, transport, protocol, reader, loop, stream):
        super().__init__(transport, protocol, reader, loop)
        self._srm_stream = stream

    @property
    def peer(self):
        return self._srm_stream.peer

    @property
    def port(self):
        return self._srm_stream.port

    def get_extra_info(self, name, default=None):
        # The pair's own peer name is ""; the peer's name and port mean more.
        if name == "peername":
            return (self.peer, self.port)
        return super().get_extra_info(name, default)

    def abort(self):
        """Close with a reset (Stream.abort)."""
        s = self._srm_stream
        if s._handle is not None and not s._engine.closed:
            C.lib().srm_stream_abort(s._engine._ptr(), s._handle)
        self.transport.abort()

    def stats(self):
        return self._srm_stream.stats()


async def _streams(loop, stream, limit):
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock=stream)
    return reader, StreamWriter(transport, protocol, reader, loop, stream)


async def _decided(loop, engine, sock, handle):
    """Wait until the open is decided; returns srm_stream_state."""
    lib = C.lib()
    fd = sock.fileno()
    while True:
        st = lib.srm_stream_state(engine._ptr(), handle)
        if st != C.ERR_AGAIN:
            return st
        fut = loop.create_future()
        loop.add_writer(fd, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            loop.remove_writer(fd)
        if lib.srm_stream_state(engine._ptr(), handle) == C.ERR_AGAIN:
            await asyncio.sleep(0.001)  # writable, not yet recorded: no spinning


async def open_connection(name, port, *, engine=None, limit=_LIMIT, timeout=None):
    """(reader, writer) for a stream to port on peer name.  timeout in
    seconds bounds the open (None: the engine's connect timeout)."""
    from . import default_engine
    engine = engine or default_engine()
    loop = asyncio.get_running_loop()
    sock, handle, sndbuf = engine._open(name, port, nonblocking=True)
    where = "%s:%d" % (name, port)
    try:
        st = await asyncio.wait_for(_decided(loop, engine, sock, handle), timeout)
    except BaseException as exc:
        if not engine.closed:
            C.lib().srm_stream_abort(engine._ptr(), handle)
        sock.close()
        if isinstance(exc, asyncio.TimeoutError):  # not TimeoutError before 3.11
            raise TimeoutError(errno.ETIMEDOUT, where + ": timed out") from None
        raise
    if st < 0 and st != C.ERR_RESET:  # RESET: it opened, then ended
        sock.close()
        raise error(st, where)
    if sndbuf > 0:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    stream = Stream._adopt(sock, engine, handle, engine._peer_name(engine._peer_index(name)), port)
    return await _streams(loop, stream, limit)


class Server:
    """Streams peers open to port, each handed to cb(reader, writer) (a
    coroutine function or a plain one), like asyncio.Server."""

    def __init__(self, cb, port, engine, limit):
        self._loop = asyncio.get_running_loop()
        self._cb = cb
        self._limit = limit
        self.engine = engine
        self.port = port
        self._listener = engine.listen(port)
        self._tasks = set()
        self._loop.add_reader(self._listener.fileno(), self._ready)

    def _ready(self):
        while self._listener is not None:
            stream = self._listener.accept_nowait()
            if stream is None:
                return
            task = self._loop.create_task(self._serve(stream))
            self._tasks.add(task)
            task.add_done_callback(self._done)

    async def _serve(self, stream):
        reader, writer = await _streams(self._loop, stream, self._limit)
        try:
            res = self._cb(reader, writer)
            if asyncio.iscoroutine(res):
                await res
        except Exception as exc:
            writer.transport.close()
            raise exc

    def _done(self, task):
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._loop.call_exception_handler({
                "message": "srmudp: unhandled exception in client_connected_cb",
                "exception": task.exception()})

    def is_serving(self):
        return self._listener is not None

    def close(self):
        """Stop accepting; streams already handed out live on."""
        if self._listener is not None:
            self._loop.remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None

    async def wait_closed(self):
        pass

    async def serve_forever(self):
        try:
            await self._loop.create_future()
        finally:
            self.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()


async def start_server(client_connected_cb, port, *, engine=None, limit=_LIMIT):
    """A Server for streams peers open to port (it serves at once)."""
    from . import default_engine
    return Server(client_connected_cb, port, engine or default_engine(), limit)
