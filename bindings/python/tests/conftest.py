"""Fixtures: keys, and two engines that reach each other on loopback.

tests/integration/test_python.sh runs these with the package installed in
a venv and LIBSRMUDP_CORE naming the built library; SRMUDP (the srmudp
command) enables the tests against preloaded servers, SRM_LAB the ones
across the NAT lab (test_lab.py, run inside the lab's namespace a).
"""
import os
import socket

import pytest
import srmudp

# Generous for a loaded CI machine, short enough for a failing test.
CONNECT_TIMEOUT = 5.0


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Only what a test sets reaches its engines (not the caller's SRMUDP_*)."""
    if os.environ.get("SRM_LAB"):
        return  # the lab's tests are configured by the environment
    for k in list(os.environ):
        if k.startswith("SRMUDP_"):
            monkeypatch.delenv(k)


@pytest.fixture
def keys(tmp_path):
    """{name: (key path, public key)} for a and b."""
    os.chmod(tmp_path, 0o700)
    return {n: (str(tmp_path / (n + ".key")), srmudp.keygen(str(tmp_path / (n + ".key"))))
            for n in ("a", "b")}


def udp_port():
    """A UDP port free on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pair:
    """b listens on a fixed loopback port; a knows b's endpoint."""

    def __init__(self, keys, **a_settings):
        self.b_port = udp_port()
        self.b = srmudp.Engine(key=keys["b"][0], listen=("127.0.0.1", self.b_port),
                               peers={"a": keys["a"][1]}, connect_timeout=CONNECT_TIMEOUT)
        self.b.start()
        settings = dict(key=keys["a"][0], listen=("127.0.0.1", 0),
                        peers={"b": (keys["b"][1], ("127.0.0.1", self.b_port))},
                        connect_timeout=CONNECT_TIMEOUT)
        settings.update(a_settings)
        self.a = srmudp.Engine(**settings)

    def close(self):
        self.a.close()
        self.b.close()


@pytest.fixture
def pair(keys):
    p = Pair(keys)
    yield p
    p.close()


def free_port():
    """A TCP port free on this host now (for preloaded servers)."""
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]
