"""Configuration: the SRMUDP_* environment, SRMUDP_CONFIG, keyword arguments.

The engine's own parser (srm_config_from_env) reads all of it, so Python
accepts exactly what the preload and the srmudp command accept
(docs/CONFIG.md).  Keyword arguments take precedence over the environment,
which takes precedence over the file: each keyword is the variable's name
without SRMUDP_, in lower case, and is put in the environment only while
the engine reads it (under a lock, then restored).  None unsets a variable
for that read.
"""
import ctypes
import ipaddress
import os
import threading
from collections.abc import Mapping

from . import _core as C
from .errors import ConfigError

# Keyword -> how a Python value becomes the variable's text.
def _text(v):
    return os.fspath(v) if isinstance(v, os.PathLike) else str(v)


def _hostport(v):
    """(host, port) -> HOST:PORT, an IPv6 address in brackets."""
    if isinstance(v, tuple):
        host, port = v
        try:
            if ipaddress.ip_address(host).version == 6:
                host = "[%s]" % host
        except ValueError:
            pass  # a name
        return "%s:%d" % (host, port)
    return _text(v)


def _listen(v):
    return str(v) if isinstance(v, int) else _hostport(v)


def _seconds(v):
    """Seconds (int or float) -> milliseconds text; text as it is."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return "%dms" % max(1, round(v * 1000))
    return _text(v)


def _onoff(v):
    if v is True:
        return "on"
    if v is False:
        return "off"
    return _text(v)


def _gso(v):
    return "auto" if v is True else _onoff(v)


def _peer(name, v):
    """name, PUBKEY[@HOST:PORT] or (PUBKEY, (HOST, PORT)) -> NAME=..."""
    if isinstance(v, tuple):
        pub, endpoint = v
        v = pub if endpoint is None else "%s@%s" % (pub, _hostport(endpoint))
    return "%s=%s" % (name, v)


def _peers(v):
    if isinstance(v, Mapping):
        return ",".join(_peer(n, p) for n, p in v.items())
    if isinstance(v, (list, tuple)):
        return ",".join(v)
    return _text(v)


def _list(v):
    return ",".join(v) if isinstance(v, (list, tuple)) else _text(v)


def _servers(v):
    """(host, port), "HOST:PORT" or a list of them -> the comma-separated
    SRMUDP_RENDEZVOUS list, tried in order with failover."""
    if isinstance(v, list):
        return ",".join(_hostport(s) for s in v)
    return _hostport(v)


def _ports(v):
    """8080, [22, 8080] or "22,8080" -> 22,8080"""
    if isinstance(v, (list, tuple)):
        return ",".join(str(p) for p in v)
    return _text(str(v))


def _allow(v):
    """{"laptop": [22, 8080], "ci": "*"} -> laptop=22,8080 ci=*"""
    if isinstance(v, Mapping):
        return " ".join("%s=%s" % (n, _ports(p)) for n, p in v.items())
    return _text(v)


KEYWORDS = {
    "key": _text, "peers": _peers, "listen": _listen, "rendezvous": _servers,
    "relay": _list, "proxy": _text, "relay_ca": _text, "log": _text,
    "log_file": _text, "compress": _onoff, "cc": _text,
    "connect_timeout": _seconds, "idle_timeout": _seconds, "rate": _text,
    "rate_packets": _text, "pad": _onoff, "gso": _gso, "busy_poll": _onoff,
    "warmup": _onoff, "config": _text, "expose": _ports, "allow": _allow,
}

_env_lock = threading.Lock()


def settings(kwargs):
    """Keyword arguments -> {SRMUDP_NAME: text or None}; TypeError for an
    unknown keyword (the engine would only warn about it)."""
    out = {}
    for k, v in kwargs.items():
        conv = KEYWORDS.get(k)
        if conv is None:
            raise TypeError("srmudp: unknown setting %r (settings: %s)"
                            % (k, ", ".join(sorted(KEYWORDS))))
        out["SRMUDP_" + k.upper()] = None if v is None else conv(v)
    return out


def _apply(env):
    """Set each variable of env, or unset it where its value is None."""
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def read(env):
    """A ConfigBuf filled by srm_config_from_env with env applied on top of
    os.environ; raises ConfigError.  Release with free()."""
    lib = C.lib()
    cfg = C.ConfigBuf()
    err = ctypes.create_string_buffer(1024)
    with _env_lock:
        saved = {k: os.environ.get(k) for k in env}
        try:
            _apply(env)
            rc = lib.srm_config_from_env(ctypes.byref(cfg), err, len(err))
        finally:
            _apply(saved)
    if rc != 0:
        raise ConfigError(err.value.decode(errors="replace"))
    return cfg


def free(cfg):
    C.lib().srm_config_free(ctypes.byref(cfg))


def peer_names(cfg):
    c = cfg.v
    return [c.peers[i].name.decode() for i in range(c.peer_count)]
