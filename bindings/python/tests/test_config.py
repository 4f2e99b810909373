"""Configuration (environment, SRMUDP_CONFIG, keywords), keys, the ABI."""
import os
import shutil
import subprocess

import pytest
import srmudp
from srmudp import _core


def test_keywords_win_over_environment_over_file(keys, tmp_path, monkeypatch):
    conf = tmp_path / "srmudp.conf"
    conf.write_text("KEY = %s\nPEERS = file=%s\n" % (keys["a"][0], keys["b"][1]))
    monkeypatch.setenv("SRMUDP_CONFIG", str(conf))
    assert srmudp.Engine().peers() == ["file"]
    monkeypatch.setenv("SRMUDP_PEERS", "env=" + keys["b"][1])
    assert srmudp.Engine().peers() == ["env"]
    e = srmudp.Engine(peers={"kw": keys["b"][1]}, connect_timeout=2.5, idle_timeout="1m")
    assert e.peers() == ["kw"]
    assert e._cfg.v.connect_timeout_ms == 2500 and e._cfg.v.idle_timeout_ms == 60000
    # The keyword was in the environment only while the engine read it.
    assert os.environ["SRMUDP_PEERS"] == "env=" + keys["b"][1]
    assert srmudp.Engine(peers=None).peers() == ["file"]  # None: unset for this read


def test_bad_settings(keys):
    with pytest.raises(srmudp.ConfigError, match='SRMUDP_PEERS: bad public key "abc"'):
        srmudp.Engine(peers="db=abc")
    with pytest.raises(TypeError, match="unknown setting 'peer'"):
        srmudp.Engine(peer="x")
    with pytest.raises(srmudp.ConfigError, match="SRMUDP_CONNECT_TIMEOUT"):
        srmudp.Engine(connect_timeout="soon")


def test_keygen_and_pubkey(tmp_path):
    path = str(tmp_path / "k")
    pub = srmudp.keygen(path)
    assert len(pub) == 43 and srmudp.pubkey(path) == pub
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        srmudp.keygen(path)
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError):
        srmudp.pubkey(path)
    with pytest.raises(OSError):
        srmudp.pubkey(str(tmp_path / "absent"))


def test_engine_start_errors(keys, tmp_path):
    with pytest.raises(OSError):  # no key file
        srmudp.Engine(key=str(tmp_path / "absent")).start()
    e = srmudp.Engine(key=keys["a"][0])
    e.close()
    with pytest.raises(ConnectionAbortedError):
        e.connect("b", 1)


# The structures ctypes mirrors, checked against the header by a C probe.
STRUCTS = {"srm_peer_config": _core.PeerConfig, "srm_relay_config": _core.RelayConfig,
           "srm_allow_rule": _core.AllowRule,
           "srm_config": _core.Config, "srm_stream_stats": _core.StreamStats,
           "srm_peer_stats": _core.PeerStats, "srm_engine_stats": _core.EngineStats}


def test_abi_matches_header(tmp_path):
    root = os.environ.get("SRM_ROOT") or os.path.join(os.path.dirname(__file__), "..", "..", "..")
    header = os.path.join(root, "core", "srmudp.h")
    cc = shutil.which("cc")
    if not (cc and os.path.exists(header)):
        pytest.skip("no C compiler or core/srmudp.h")
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "srmudp.h"', "int main(void) {"]
    for cname, cls in STRUCTS.items():
        lines.append('printf("%s %%zu\\n", sizeof(struct %s));' % (cname, cname))
        for field, _ in cls._fields_:
            lines.append('printf("%s.%s %%zu\\n", offsetof(struct %s, %s));'
                         % (cname, field, cname, field))
    lines += ['printf("drops %d\\n", (int)SRM_DROP_REASONS);',
              'printf("refusals %d\\n", (int)SRM_REFUSALS);',
              'printf("pubkey %d\\n", (int)SRM_PUBKEY_TEXT_BYTES);', "return 0; }"]
    src = tmp_path / "probe.c"
    src.write_text("\n".join(lines) + "\n")
    subprocess.run([cc, "-I", os.path.dirname(header), "-o", str(tmp_path / "probe"), str(src)],
                   check=True)
    out = subprocess.run([str(tmp_path / "probe")], check=True, capture_output=True, text=True)
    want = {}
    for cname, cls in STRUCTS.items():
        want[cname] = _core.ctypes.sizeof(cls)
        for field, _ in cls._fields_:
            want[cname + "." + field] = getattr(cls, field).offset
    want["drops"] = _core.DROP_REASONS
    want["refusals"] = _core.REFUSALS
    want["pubkey"] = _core.PUBKEY_TEXT_BYTES
    got = dict(line.split() for line in out.stdout.splitlines())
    assert {k: int(v) for k, v in got.items()} == want
