"""wshttp.py -- the HTTP side of a WebSocket upgrade (RFC 6455 section 4.2),
for the test scripts' own WebSocket clients and servers (test_relay_ws.sh,
test_rendezvous_ws.sh: PYTHONPATH=tests/integration)."""
import base64
import hashlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key):
    """The Sec-WebSocket-Accept that answers the client's Sec-WebSocket-Key."""
    if isinstance(key, str):
        key = key.encode()
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def read_head(s):
    """Bytes from socket s up to the blank line: (the head as text, what
    came after it)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head.decode(errors="replace"), rest
