"""The engine's error codes (enum srm_error) as the usual Python exceptions.

The mapping follows what the preload gives a C program's errno
(shim/stream.c), so a Python program sees the same failures a preloaded
one does, as the exceptions Python's own socket module raises for them.
"""
import ctypes
import errno

from . import _core as C


class ConfigError(ValueError):
    """A bad setting: the engine's one line naming the variable (or file
    and line) and quoting the bad value."""


class PeerUnreachableError(TimeoutError):
    """No handshake with the peer within the connect timeout (or the peer
    was found so within the last 3 s).  A TimeoutError, as a TCP connect to
    a silent host is, with errno EHOSTUNREACH: the engine knows the peer
    never answered at all."""


# code -> (exception class, errno)
_MAP = {
    C.ERR_REFUSED: (ConnectionRefusedError, errno.ECONNREFUSED),
    C.ERR_TIMEOUT: (TimeoutError, errno.ETIMEDOUT),
    C.ERR_RESET: (ConnectionResetError, errno.ECONNRESET),
    C.ERR_UNREACHABLE: (PeerUnreachableError, errno.EHOSTUNREACH),
    C.ERR_AUTH: (OSError, errno.EHOSTUNREACH),
    C.ERR_VERSION: (OSError, errno.EHOSTUNREACH),
    C.ERR_CLOSED: (ConnectionAbortedError, errno.ECONNABORTED),
    C.ERR_NOMEM: (OSError, errno.ENOBUFS),
    C.ERR_AGAIN: (BlockingIOError, errno.EAGAIN),
    C.ERR_EXISTS: (FileExistsError, errno.EEXIST),
    C.ERR_PERM: (PermissionError, errno.EACCES),
    C.ERR_NOTFOUND: (FileNotFoundError, errno.ENOENT),
    C.ERR_INVALID: (OSError, errno.EINVAL),
}


def error(code, context, message=None):
    """The exception for a negative engine code; message replaces the
    engine's own name for it.  The code is kept as .srm_error."""
    if code == C.ERR_IO:
        num = ctypes.get_errno() or errno.EIO
        cls = OSError
    else:
        cls, num = _MAP.get(code, (OSError, errno.EIO))
    text = message or C.strerror(code)
    exc = cls(num, "%s: %s" % (context, text) if context else text)
    exc.srm_error = code
    return exc


def check(code, context, message=None):
    """code if it is not negative, else raise error(code, context)."""
    if code < 0:
        raise error(code, context, message)
    return code


def ending(code, context):
    """The exception for how a stream ended (srm_ends_take), or None when
    it ended cleanly or has not ended."""
    if code in (C.ERR_RESET, C.ERR_TIMEOUT, C.ERR_UNREACHABLE):
        return error(code, context)
    return None


__all__ = ["ConfigError", "PeerUnreachableError", "error", "check", "ending"]
