"""The engine library through ctypes: its structures and prototypes.

Mirrors core/srmudp.h.  ctypes cannot read a header, so the structures are
written out again here; tests/test_abi.py compiles a probe against the
header and checks every size and offset, so a change there fails the tests
instead of corrupting memory.  Buffers the engine writes into (the
configuration and the statistics) carry SLACK spare bytes after the mirrored
fields, so a field the header appends at the end cannot overrun them even
before the tests catch up.
"""
import ctypes
import ctypes.util
import os
import threading

# Overridable library path.  Not SRMUDP_*: the engine warns about every
# SRMUDP_ variable it does not know.
LIB_ENV = "LIBSRMUDP_CORE"
LIB_NAME = "libsrmudp-core.so"

KEY_BYTES = 32
PUBKEY_TEXT_BYTES = 44
PEER_NAME_MAX = 63
RELAY_MAX = 8
RENDEZVOUS_MAX = 8
GATES_MAX = 8
DROP_REASONS = 10
REFUSALS = 4  # enum srm_refusal
SLACK = 4096

OK = 0
ERR_INVALID = -1
ERR_NOMEM = -2
ERR_IO = -3
ERR_AUTH = -4
ERR_REFUSED = -5
ERR_TIMEOUT = -6
ERR_RESET = -7
ERR_UNREACHABLE = -8
ERR_VERSION = -9
ERR_NOTFOUND = -10
ERR_EXISTS = -11
ERR_PERM = -12
ERR_AGAIN = -13
ERR_CLOSED = -14

socklen_t = ctypes.c_uint32


class SockaddrStorage(ctypes.Structure):
    # glibc: sa_family_t, padding, an unsigned long for alignment (128 bytes).
    _fields_ = [("ss_family", ctypes.c_ushort),
                ("_padding", ctypes.c_char * (128 - 2 - 8)),
                ("_align", ctypes.c_ulong)]


class PeerConfig(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * (PEER_NAME_MAX + 1)),
                ("pubkey", ctypes.c_uint8 * KEY_BYTES),
                ("endpoint", SockaddrStorage),
                ("endpoint_len", socklen_t)]


class RelayConfig(ctypes.Structure):
    _fields_ = [("url", ctypes.c_char * 512),
                ("proxy", ctypes.c_char * 512),
                ("connect_to", SockaddrStorage),
                ("connect_len", socklen_t)]


class AllowRule(ctypes.Structure):
    _fields_ = [("peer", ctypes.c_char * 64),
                ("port", ctypes.c_uint16)]


class RendezvousConfig(ctypes.Structure):
    _fields_ = [("addr", SockaddrStorage),
                ("addr_len", socklen_t),
                ("key", ctypes.c_uint8 * 32),
                ("pinned", ctypes.c_int)]


class Config(ctypes.Structure):
    _fields_ = [("key_path", ctypes.c_char * 4096),
                ("peers", ctypes.POINTER(PeerConfig)),
                ("peer_count", ctypes.c_size_t),
                ("listen", SockaddrStorage),
                ("listen_len", socklen_t),
                ("rendezvous", RendezvousConfig * RENDEZVOUS_MAX),
                ("rendezvous_count", ctypes.c_size_t),
                ("log_level", ctypes.c_int),
                ("log_file", ctypes.c_char * 4096),
                ("compress", ctypes.c_int),
                ("cc", ctypes.c_int),
                ("connect_timeout_ms", ctypes.c_uint32),
                ("idle_timeout_ms", ctypes.c_uint32),
                ("rate_bytes", ctypes.c_uint64),
                ("rate_packets", ctypes.c_uint64),
                ("pad", ctypes.c_int),
                ("gso_off", ctypes.c_int),
                ("busy_poll_us", ctypes.c_uint32),
                ("warmup", ctypes.c_int),
                ("relays", RelayConfig * RELAY_MAX),
                ("relay_count", ctypes.c_size_t),
                ("proxy", ctypes.c_char * 512),
                ("proxy_set", ctypes.c_int),
                ("relay_ca", ctypes.c_char * 4096),
                ("expose", ctypes.POINTER(ctypes.c_uint16)),
                ("expose_count", ctypes.c_size_t),
                ("allow", ctypes.POINTER(AllowRule)),
                ("allow_count", ctypes.c_size_t),
                ("allow_set", ctypes.c_int),
                ("gate", ctypes.c_int),
                ("gates", (ctypes.c_char * 64) * GATES_MAX),
                ("gate_count", ctypes.c_size_t),
                ("via_off", ctypes.c_int),
                ("gate_cache", ctypes.c_char * 4096),
                ("gate_cache_off", ctypes.c_int)]


class StreamStats(ctypes.Structure):
    _fields_ = [("peer", ctypes.c_int),
                ("port", ctypes.c_uint16),
                ("outgoing", ctypes.c_int),
                ("state", ctypes.c_int),
                ("tx_buffered", ctypes.c_uint64),
                ("rx_buffered", ctypes.c_uint64)]


class PeerStats(ctypes.Structure):
    _fields_ = [("established", ctypes.c_int),
                ("relayed", ctypes.c_int),
                ("path", SockaddrStorage),
                ("srtt_us", ctypes.c_uint32),
                ("rttvar_us", ctypes.c_uint32),
                ("min_rtt_us", ctypes.c_uint32),
                ("cwnd_bytes", ctypes.c_uint64),
                ("pmtu", ctypes.c_uint32),
                ("bytes_sent", ctypes.c_uint64),
                ("bytes_received", ctypes.c_uint64),
                ("stream_bytes_sent", ctypes.c_uint64),
                ("stream_bytes_received", ctypes.c_uint64),
                ("packets_sent", ctypes.c_uint64),
                ("packets_received", ctypes.c_uint64),
                ("packets_lost", ctypes.c_uint64),
                ("packets_retransmitted", ctypes.c_uint64),
                ("streams", ctypes.c_uint32),
                ("handshake_age_ms", ctypes.c_uint64),
                ("early_opens", ctypes.c_uint64),
                ("refused", ctypes.c_uint64 * REFUSALS)]


class EngineStats(ctypes.Structure):
    _fields_ = [("peers", ctypes.c_uint32),
                ("sessions", ctypes.c_uint32),
                ("streams", ctypes.c_uint32),
                ("packets_received", ctypes.c_uint64),
                ("packets_sent", ctypes.c_uint64),
                ("drops", ctypes.c_uint64 * DROP_REASONS),
                ("refused", ctypes.c_uint64 * REFUSALS)]


def padded(struct):
    """struct followed by SLACK spare bytes, for the engine to write into."""
    return type(struct.__name__ + "Buf", (ctypes.Structure,),
                {"_fields_": [("v", struct), ("_slack", ctypes.c_char * SLACK)]})


ConfigBuf = padded(Config)
StreamStatsBuf = padded(StreamStats)
PeerStatsBuf = padded(PeerStats)
EngineStatsBuf = padded(EngineStats)

P = ctypes.c_void_p
I = ctypes.c_int
U64P = ctypes.POINTER(ctypes.c_uint64)
S = ctypes.c_char_p
PROTOTYPES = {
    "srm_strerror": (S, [I]),
    "srm_key_generate": (I, [S, ctypes.c_char_p]),
    "srm_key_load": (I, [S, P, P, ctypes.c_char_p, ctypes.c_size_t]),
    "srm_pubkey_encode": (None, [P, ctypes.c_char_p]),
    "srm_config_from_env": (I, [ctypes.POINTER(ConfigBuf), ctypes.c_char_p, ctypes.c_size_t]),
    "srm_config_free": (None, [ctypes.POINTER(ConfigBuf)]),
    "srm_peer_suggest": (S, [ctypes.POINTER(ConfigBuf), S]),
    "srm_engine_start": (I, [ctypes.POINTER(ConfigBuf), ctypes.POINTER(P),
                             ctypes.c_char_p, ctypes.c_size_t]),
    "srm_engine_stop": (None, [P]),
    "srm_engine_drain": (I, [P, I]),
    "srm_engine_udp_port": (I, [P]),
    "srm_peer_find": (I, [P, S]),
    "srm_stream_open": (I, [P, I, ctypes.c_uint16, I, ctypes.c_size_t, U64P]),
    "srm_stream_state": (I, [P, ctypes.c_uint64]),
    "srm_stream_wait": (I, [P, ctypes.c_uint64, I]),
    "srm_stream_stats": (I, [P, ctypes.c_uint64, ctypes.POINTER(StreamStatsBuf)]),
    "srm_stream_abort": (None, [P, ctypes.c_uint64]),
    "srm_engine_ends": (P, [P]),
    "srm_ends_take": (I, [P, ctypes.c_uint64]),
    "srm_listen_handoff": (I, [P, ctypes.c_uint16, P, socklen_t]),
    "srm_unlisten": (I, [P, ctypes.c_uint16]),
    "srm_forwarded_peer": (I, [P, P, socklen_t]),
    "srm_forwarded_claim": (I, [P, P, socklen_t, I, U64P]),
    "srm_peer_stats": (I, [P, I, ctypes.POINTER(PeerStatsBuf)]),
    "srm_engine_stats": (None, [P, ctypes.POINTER(EngineStatsBuf)]),
    "srm_drop_reason_name": (S, [I]),
    "srm_refusal_name": (S, [I]),
}

_lib = None
_lib_lock = threading.Lock()


def candidates():
    """Where the library is looked for, in order."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    if os.environ.get(LIB_ENV):
        out.append(os.environ[LIB_ENV])
    out.append(os.path.join(here, LIB_NAME))
    # Imported from a source tree: bindings/python/srmudp -> build/.
    out.append(os.path.normpath(os.path.join(here, "..", "..", "..", "build", LIB_NAME)))
    found = ctypes.util.find_library("srmudp-core")
    if found:
        out.append(found)
    out += ["/usr/local/lib/" + LIB_NAME, "/usr/lib/" + LIB_NAME]
    return out


def lib():
    """The loaded library (loaded on first use, once)."""
    global _lib
    if _lib is not None:
        return _lib
    with _lib_lock:
        if _lib is None:
            _lib = _load()
    return _lib


def _load():
    tried = []
    for path in candidates():
        # An explicit LIBSRMUDP_CORE must load; the other places may be absent.
        if os.sep in path and not os.path.exists(path) and path != os.environ.get(LIB_ENV):
            tried.append(path + " (absent)")
            continue
        try:
            # use_errno: SRM_ERR_IO means "errno says why".
            handle = ctypes.CDLL(path, use_errno=True)
        except OSError as exc:
            tried.append("%s (%s)" % (path, exc))
            if path == os.environ.get(LIB_ENV):
                break
            continue
        for name, (restype, argtypes) in PROTOTYPES.items():
            fn = getattr(handle, name)
            fn.restype = restype
            fn.argtypes = argtypes
        return handle
    raise OSError("srmudp: cannot load %s; set %s to its path (tried: %s)"
                  % (LIB_NAME, LIB_ENV, "; ".join(tried)))


def strerror(code):
    return lib().srm_strerror(code).decode()
