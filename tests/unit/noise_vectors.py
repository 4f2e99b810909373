#!/usr/bin/env python3
"""noise_vectors.py: the handshake test vectors of docs/PROTOCOL.md section 13,
computed independently of core/ (Python `cryptography` and hashlib), so that
tests/unit/noise_test.cc checks our C against a second implementation.

    python3 tests/unit/noise_vectors.py

prints every vector; noise_test.cc and PROTOCOL.md hold the same hex.
"""
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

S_I = bytes.fromhex("a696ace7f2ca732e13bc55a81b2cbce412b7d229fc900a6e442cbca5c83dc8c0")
S_R = bytes.fromhex("4521b901ea4dbe33232e7cebc5dd5515d4de0236040bf9bfdc273d44326d940c")
E_I = bytes.fromhex("74536361412c271008967144aa53174421d9c9dc23a4c863f9b7ea2b813e6f3e")
E_R = bytes.fromhex("80642fa90b052d8f5351c46b6886c4efbbc9b3477a270a16de555617229ccbbc")
IDX_I, IDX_R = 0x11223344, 0x55667788
EARLY = 16
# Early frames: the INIT opens stream 0 to port 6379, the RESP accepts it.
EARLY_INIT = bytes([0x03, 0x00]) + struct.pack("<H", 6379)
EARLY_RESP = bytes([0x04, 0x00])
COOKIE_SECRET = bytes.fromhex("2e20e699d980b5ba96486e76f43522c79e7c63db13c8d77f2231b01d1af7102f")


def pub(priv):
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def dh(priv, peer):
    return X25519PrivateKey.from_private_bytes(priv).exchange(X25519PublicKey.from_public_bytes(peer))


def hkdf(ck, ikm, n):
    prk = hmac.new(ck, ikm, hashlib.sha256).digest()
    out, t = [], b""
    for i in range(1, n + 1):
        t = hmac.new(prk, t + bytes([i]), hashlib.sha256).digest()
        out.append(t)
    return out


def mac(key, msg):
    return hashlib.blake2b(msg, digest_size=16, key=key).digest()


class Sym:
    def __init__(self, responder_pub):
        self.h = b"Noise_IK_25519_ChaChaPoly_SHA256"
        self.ck = self.h
        self.mix_hash(b"srmudp v1")
        self.mix_hash(responder_pub)
        self.k = None

    def mix_hash(self, x):
        self.h = hashlib.sha256(self.h + x).digest()

    def mix_key(self, x):
        self.ck, self.k = hkdf(self.ck, x, 2)

    def encrypt_and_hash(self, p):
        c = ChaCha20Poly1305(self.k).encrypt(bytes(12), p, self.h)
        self.mix_hash(c)
        return c


def init_payload(ts, boot, caps, early):
    return struct.pack("<QQIBBH", ts, boot, caps, 1, 1, 0) + early.ljust(EARLY, b"\0")


def resp_payload(boot, caps, early):
    return struct.pack("<QIBBH", boot, caps, 1, 1, 0) + early.ljust(EARLY, b"\0")


def hchacha20(key, nonce16):
    def rotl(v, n):
        return ((v << n) & 0xffffffff) | (v >> (32 - n))

    def qr(x, a, b, c, d):
        x[a] = (x[a] + x[b]) & 0xffffffff; x[d] = rotl(x[d] ^ x[a], 16)
        x[c] = (x[c] + x[d]) & 0xffffffff; x[b] = rotl(x[b] ^ x[c], 12)
        x[a] = (x[a] + x[b]) & 0xffffffff; x[d] = rotl(x[d] ^ x[a], 8)
        x[c] = (x[c] + x[d]) & 0xffffffff; x[b] = rotl(x[b] ^ x[c], 7)

    x = list(struct.unpack("<4I", b"expand 32-byte k")) + list(struct.unpack("<8I", key)) + \
        list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        qr(x, 0, 4, 8, 12); qr(x, 1, 5, 9, 13); qr(x, 2, 6, 10, 14); qr(x, 3, 7, 11, 15)
        qr(x, 0, 5, 10, 15); qr(x, 1, 6, 11, 12); qr(x, 2, 7, 8, 13); qr(x, 3, 4, 9, 14)
    return struct.pack("<8I", *(x[0:4] + x[12:16]))


def xchacha_encrypt(key, nonce24, plain, ad):
    sub = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(sub).encrypt(bytes(4) + nonce24[16:], plain, ad)


def main():
    pub_i, pub_r = pub(S_I), pub(S_R)
    mac1_key_r = hashlib.sha256(b"mac1----" + pub_r).digest()
    mac1_key_i = hashlib.sha256(b"mac1----" + pub_i).digest()
    cookie_key_r = hashlib.sha256(b"cookie--" + pub_r).digest()

    # INIT: -> e, es, s, ss, payload
    st = Sym(pub_r)
    e_i = pub(E_I)
    st.mix_hash(e_i)
    st.mix_key(dh(E_I, pub_r))
    enc_static = st.encrypt_and_hash(pub_i)
    st.mix_key(dh(S_I, pub_r))
    enc_payload = st.encrypt_and_hash(init_payload(1700000000000, 0x0102030405060708, 1, EARLY_INIT))
    body = bytes([1, 1, 0, 0]) + struct.pack("<I", IDX_I) + e_i + enc_static + enc_payload
    init_no_macs = body
    init = body + mac(mac1_key_r, body) + bytes(16)

    # RESP: <- e, ee, se, payload
    e_r = pub(E_R)
    st.mix_hash(e_r)
    st.ck, _ = hkdf(st.ck, dh(E_R, e_i), 2)
    st.mix_key(dh(E_R, pub_i))
    enc = st.encrypt_and_hash(resp_payload(0x1112131415161718, 1, EARLY_RESP))
    body = bytes([2, 1, 0, 0]) + struct.pack("<II", IDX_R, IDX_I) + e_r + enc
    resp = body + mac(mac1_key_i, body) + bytes(16)
    t1, t2 = hkdf(st.ck, b"", 2)

    # DATA under T1
    hdr = bytes([4, 1, 0, 0]) + struct.pack("<IQ", IDX_R, 0)
    data_chacha = hdr + ChaCha20Poly1305(t1).encrypt(bytes(4) + struct.pack("<Q", 0), b"\x01", hdr)
    pn = 0x0102030405
    hdr = bytes([4, 1, 0, 0]) + struct.pack("<IQ", IDX_R, pn)
    data_aes = hdr + AESGCM(t1).encrypt(bytes(4) + struct.pack("<Q", pn), b"\x01\x00\x00", hdr)

    # Cookie for 192.0.2.1:51820, the reply to the INIT, and the INIT's mac2
    cookie = mac(COOKIE_SECRET, bytes([192, 0, 2, 1]) + struct.pack(">H", 51820))
    nonce = bytes(range(24))
    init_mac1 = init[len(init_no_macs):len(init_no_macs) + 16]
    reply = bytes([3, 1, 0, 0]) + struct.pack("<I", IDX_I) + nonce + \
        xchacha_encrypt(cookie_key_r, nonce, cookie, init_mac1)
    mac2 = mac(cookie, init_no_macs + init_mac1)

    for name, v in [("initiator static pub", pub_i), ("responder static pub", pub_r),
                    ("mac1 key (to responder)", mac1_key_r), ("cookie key (responder)", cookie_key_r),
                    ("HANDSHAKE_INIT (%d bytes)" % len(init), init),
                    ("HANDSHAKE_RESP (%d bytes)" % len(resp), resp),
                    ("T1 initiator -> responder", t1), ("T2 responder -> initiator", t2),
                    ("DATA ChaCha20-Poly1305", data_chacha), ("DATA AES-256-GCM", data_aes),
                    ("cookie", cookie), ("COOKIE_REPLY", reply), ("INIT mac2", mac2)]:
        print(f"{name:28} {v.hex()}")


if __name__ == "__main__":
    main()
