/*
 * ws.c — RFC 6455 framing and the HTTP/1.1 heads around it (ws.h).
 *
 * The HTTP side is deliberately narrow: one head, CRLF line ends (RFC 9112
 * 2.2 lets a recipient refuse bare LF, and every client we meet sends
 * CRLF), no obs-fold, no control bytes.  Everything is checked on a
 * complete head, so a caller may feed the same growing buffer again and
 * again; the work is bounded by WS_MAX_HEAD.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "ws.h"

/* RFC 6455 1.3: appended to the key before hashing, proves the server
 * speaks WebSocket rather than echoing a cached or generic answer. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_CHARS 24 /* base64 of WS_NONCE_BYTES */
/* "Proxy-Authorization: Basic " and CRLF around url.h's PROXY_AUTH_MAX
 * (690) characters of credentials. */
#define PROXY_AUTH_LINE_MAX 768

/* ---- HTTP head ----------------------------------------------------------- */

/* Length of the head through its blank line, 0 when not complete within
 * len (or WS_MAX_HEAD) bytes. */
static size_t head_end(const uint8_t *buf, size_t len)
{
	size_t n = len < WS_MAX_HEAD ? len : WS_MAX_HEAD;

	for (size_t i = 3; i < n; i++)
		if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
			return i + 1;
	return 0;
}

/* 0 = need more, <0 = too large, else the head length. */
static int head_find(const uint8_t *buf, size_t len)
{
	size_t end = head_end(buf, len);

	if (end > 0)
		return (int)end;
	return len >= WS_MAX_HEAD ? SRM_ERR_NOMEM : 0;
}

struct cursor {
	const char *p, *end;
};

/* The next line (without CRLF) of a complete head; false after the blank
 * line.  head_end guarantees every line ends in CRLF. */
static bool next_line(struct cursor *c, const char **line, size_t *n)
{
	const char *s = c->p;

	while (c->p + 1 < c->end && !(c->p[0] == '\r' && c->p[1] == '\n'))
		c->p++;
	*line = s;
	*n = (size_t)(c->p - s);
	c->p += 2;
	return *n > 0;
}

/* RFC 9110 5.6.2 tchar. */
static bool is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* field-vchar, SP, HTAB: everything but the other control bytes. */
static bool is_text(unsigned char ch)
{
	return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

static bool all_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_text((unsigned char)s[i]))
			return false;
	return true;
}

static bool is_ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

struct header {
	const char *name, *val;
	size_t nlen, vlen;
};

/* The next header line: 1 parsed, 0 end of head, -1 malformed (obs-fold,
 * space before the colon, no colon, control bytes). */
static int next_header(struct cursor *c, struct header *h)
{
	const char *line;
	size_t n, i = 0;

	if (!next_line(c, &line, &n))
		return 0;
	if (!all_text(line, n))
		return -1;
	while (i < n && is_tchar((unsigned char)line[i]))
		i++;
	if (i == 0 || i == n || line[i] != ':')
		return -1;
	h->name = line;
	h->nlen = i++;
	while (i < n && is_ows(line[i]))
		i++;
	while (n > i && is_ows(line[n - 1]))
		n--;
	h->val = line + i;
	h->vlen = n - i;
	return 1;
}

static bool name_is(const struct header *h, const char *name)
{
	return h->nlen == strlen(name) && strncasecmp(h->name, name, h->nlen) == 0;
}

/* Whether a comma-separated list (Connection, Upgrade) holds tok. */
static bool list_has(const char *v, size_t n, const char *tok)
{
	size_t tlen = strlen(tok), i = 0;

	while (i < n) {
		size_t s, e;

		while (i < n && (is_ows(v[i]) || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && is_ows(v[e - 1]))
			e--;
		if (e - s == tlen && strncasecmp(v + s, tok, tlen) == 0)
			return true;
	}
	return false;
}

/* "HTTP/1.x SP 3DIGIT [SP reason]": the status (100-599), or -1. */
static int status_line(struct cursor *c)
{
	const char *l;
	size_t n;
	int st;

	if (!next_line(c, &l, &n) || !all_text(l, n))
		return -1;
	if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || l[7] < '0' || l[7] > '9' || l[8] != ' ')
		return -1;
	for (int i = 9; i < 12; i++)
		if (l[i] < '0' || l[i] > '9')
			return -1;
	if (n > 12 && l[12] != ' ')
		return -1;
	st = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
	return st >= 100 && st <= 599 ? st : -1;
}

/* A response head in buf: its length (> 0) with *c just past the status
 * line and *status its code; 0 when incomplete; SRM_ERR_NOMEM (too large)
 * or SRM_ERR_INVALID (no status line).  *status is 0 unless > 0. */
static int response_head(const uint8_t *buf, size_t len, int *status, struct cursor *c)
{
	int end = head_find(buf, len);

	*status = 0;
	if (end <= 0)
		return end;
	c->p = (const char *)buf;
	c->end = c->p + end;
	*status = status_line(c);
	if (*status < 0) {
		*status = 0;
		return SRM_ERR_INVALID;
	}
	return end;
}

/* Every header of the rest of the head well-formed. */
static bool headers_ok(struct cursor *c)
{
	struct header h;
	int rc;

	while ((rc = next_header(c, &h)) > 0)
		;
	return rc == 0;
}

/* The Sec-WebSocket-Accept for a key (as sent, base64), NUL-terminated. */
static bool accept_for(const char *key, size_t klen, char out[WS_ACCEPT_CHARS + 1])
{
	uint8_t in[WS_KEY_CHARS + sizeof(WS_GUID) - 1], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (klen != WS_KEY_CHARS)
		return false;
	memcpy(in, key, klen);
	memcpy(in + klen, WS_GUID, sizeof(WS_GUID) - 1);
	if (EVP_Digest(in, sizeof(in), md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
		return false;
	sodium_bin2base64(out, WS_ACCEPT_CHARS + 1, md, mdlen, sodium_base64_VARIANT_ORIGINAL);
	return true;
}

/* No space or control byte: safe inside a request line or header. */
static bool is_word(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* snprintf's length as a size_t, 0 when it did not fit. */
static size_t fitted(int n, size_t cap)
{
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* ---- Client handshake ---------------------------------------------------- */

size_t ws_client_request(const char *host_header, const char *path,
			 const uint8_t nonce[WS_NONCE_BYTES], char *out, size_t cap)
{
	char key[WS_KEY_CHARS + 1];

	if (!is_word(host_header) || !is_word(path) || path[0] != '/')
		return 0;
	sodium_bin2base64(key, sizeof(key), nonce, WS_NONCE_BYTES, sodium_base64_VARIANT_ORIGINAL);
	return fitted(snprintf(out, cap,
			       "GET %s HTTP/1.1\r\n"
			       "Host: %s\r\n"
			       "Upgrade: websocket\r\n"
			       "Connection: Upgrade\r\n"
			       "Sec-WebSocket-Key: %s\r\n"
			       "Sec-WebSocket-Version: 13\r\n"
			       "\r\n",
			       path, host_header, key),
		      cap);
}

int ws_client_response(const uint8_t *buf, size_t len, const uint8_t nonce[WS_NONCE_BYTES],
		       int *status)
{
	char key[WS_KEY_CHARS + 1], want[WS_ACCEPT_CHARS + 1];
	bool upgrade = false, connection = false, accepted = false, extra = false;
	int st, rc, accepts = 0;
	struct cursor c;
	struct header h;
	int end = response_head(buf, len, &st, &c);

	if (status)
		*status = st;
	if (end <= 0)
		return end;
	if (st != 101)
		return SRM_ERR_REFUSED;
	sodium_bin2base64(key, sizeof(key), nonce, WS_NONCE_BYTES, sodium_base64_VARIANT_ORIGINAL);
	if (!accept_for(key, WS_KEY_CHARS, want))
		return SRM_ERR_INVALID;
	while ((rc = next_header(&c, &h)) > 0) {
		if (name_is(&h, "Upgrade"))
			upgrade |= list_has(h.val, h.vlen, "websocket");
		else if (name_is(&h, "Connection"))
			connection |= list_has(h.val, h.vlen, "upgrade");
		else if (name_is(&h, "Sec-WebSocket-Accept"))
			accepted = ++accepts == 1 && h.vlen == WS_ACCEPT_CHARS &&
				   memcmp(h.val, want, WS_ACCEPT_CHARS) == 0;
		else if (name_is(&h, "Sec-WebSocket-Extensions") ||
			 name_is(&h, "Sec-WebSocket-Protocol"))
			extra = true;
	}
	if (rc < 0 || !upgrade || !connection || extra)
		return SRM_ERR_INVALID;
	return accepted ? end : SRM_ERR_AUTH;
}

/* ---- Server handshake ---------------------------------------------------- */

/* "GET SP target SP HTTP/1.1": the status the request line earns (101 to
 * go on). */
static int request_line(struct cursor *c, const char *want_path)
{
	const char *l, *sp1, *sp2, *q;
	size_t n;

	if (!next_line(c, &l, &n) || !all_text(l, n))
		return 400;
	sp1 = memchr(l, ' ', n);
	if (sp1 == NULL || sp1 == l)
		return 400;
	for (const char *p = l; p < sp1; p++)
		if (!is_tchar((unsigned char)*p))
			return 400;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(l + n - sp1 - 1));
	if (sp2 == NULL || sp2 == sp1 + 1 || (size_t)(l + n - sp2 - 1) != 8 ||
	    memcmp(sp2 + 1, "HTTP/1.1", 8) != 0)
		return 400;
	for (const char *p = sp1 + 1; p < sp2; p++)
		if (*p == '\t')
			return 400;
	q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
	if (q == NULL)
		q = sp2;
	if ((size_t)(q - sp1 - 1) != strlen(want_path) || memcmp(sp1 + 1, want_path, (size_t)(q - sp1 - 1)) != 0)
		return 404;
	if (sp1 - l != 3 || memcmp(l, "GET", 3) != 0)
		return 405;
	return 101;
}

static int request_headers(struct cursor *c, struct ws_handshake *hs)
{
	bool upgrade = false, connection = false, version = false, bad_version = false;
	int hosts = 0, keys = 0, rc;
	const char *key = NULL;
	size_t klen = 0;
	struct header h;

	while ((rc = next_header(c, &h)) > 0) {
		if (name_is(&h, "Host")) {
			hosts++;
			if (h.vlen == 0)
				return 400;
		} else if (name_is(&h, "Upgrade")) {
			upgrade |= list_has(h.val, h.vlen, "websocket");
		} else if (name_is(&h, "Connection")) {
			connection |= list_has(h.val, h.vlen, "upgrade");
		} else if (name_is(&h, "Sec-WebSocket-Key")) {
			keys++;
			key = h.val;
			klen = h.vlen;
		} else if (name_is(&h, "Sec-WebSocket-Version")) {
			if (h.vlen == 2 && memcmp(h.val, "13", 2) == 0)
				version = true;
			else
				bad_version = true;
		}
	}
	if (rc < 0 || hosts != 1 || !upgrade || !connection || keys != 1)
		return 400;
	{
		uint8_t nonce[WS_NONCE_BYTES + 1];
		size_t nlen = 0;
		const char *b64end = NULL;

		if (klen != WS_KEY_CHARS ||
		    sodium_base642bin(nonce, sizeof(nonce), key, klen, NULL, &nlen, &b64end,
				      sodium_base64_VARIANT_ORIGINAL) != 0 ||
		    nlen != WS_NONCE_BYTES || b64end != key + klen)
			return 400;
	}
	if (!version || bad_version)
		return 426;
	return accept_for(key, klen, hs->accept) ? 101 : 400;
}

int ws_server_request(const uint8_t *buf, size_t len, const char *want_path,
		      struct ws_handshake *h)
{
	int end = head_find(buf, len);
	struct cursor c;

	memset(h, 0, sizeof(*h));
	if (end == SRM_ERR_NOMEM)
		h->status = 431;
	if (end <= 0)
		return end;
	c.p = (const char *)buf;
	c.end = c.p + end;
	h->status = request_line(&c, want_path);
	if (h->status == 101)
		h->status = request_headers(&c, h);
	else if (h->status != 400 && !headers_ok(&c))
		h->status = 400;
	if (h->status != 101)
		memset(h->accept, 0, sizeof(h->accept));
	return end;
}

static const char *reason(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	default: return "Error";
	}
}

size_t ws_server_response(const struct ws_handshake *h, char *out, size_t cap)
{
	if (h->status == 101)
		return fitted(snprintf(out, cap,
				       "HTTP/1.1 101 Switching Protocols\r\n"
				       "Upgrade: websocket\r\n"
				       "Connection: Upgrade\r\n"
				       "Sec-WebSocket-Accept: %s\r\n"
				       "\r\n",
				       h->accept),
			      cap);
	return fitted(snprintf(out, cap,
			       "HTTP/1.1 %03d %s\r\n"
			       "%s"
			       "Connection: close\r\n"
			       "Content-Length: 0\r\n"
			       "\r\n",
			       h->status < 100 || h->status > 599 ? 500 : h->status, reason(h->status),
			       h->status == 426   ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
			       : h->status == 405 ? "Allow: GET\r\n"
						  : ""),
		      cap);
}

/* ---- HTTP CONNECT -------------------------------------------------------- */

size_t http_connect_request(const char *host, uint16_t port, const char *basic_auth, char *out,
			    size_t cap)
{
	bool v6 = strchr(host, ':') != NULL;
	char auth[PROXY_AUTH_LINE_MAX] = "";

	if (!is_word(host) || host[0] == '\0' || (basic_auth && !is_word(basic_auth)))
		return 0;
	if (basic_auth && basic_auth[0] &&
	    fitted(snprintf(auth, sizeof(auth), "Proxy-Authorization: Basic %s\r\n", basic_auth),
		   sizeof(auth)) == 0)
		return 0;
	return fitted(snprintf(out, cap,
			       "CONNECT %s%s%s:%u HTTP/1.1\r\n"
			       "Host: %s%s%s:%u\r\n"
			       "%s"
			       "\r\n",
			       v6 ? "[" : "", host, v6 ? "]" : "", (unsigned)port, v6 ? "[" : "", host,
			       v6 ? "]" : "", (unsigned)port, auth),
		      cap);
}

int http_connect_response(const uint8_t *buf, size_t len, int *status)
{
	struct cursor c;
	int st, end = response_head(buf, len, &st, &c);

	if (end > 0 && !headers_ok(&c))
		end = SRM_ERR_INVALID;
	if (status)
		*status = end > 0 ? st : 0;
	return end;
}

/* ---- Frames -------------------------------------------------------------- */

size_t ws_frame_header(uint8_t out[WS_FRAME_HEADER_MAX], uint8_t opcode, size_t payload_len,
		       const uint8_t *mask)
{
	uint64_t plen = payload_len;
	size_t n = 2;

	out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
	if (plen <= WS_CONTROL_MAX) {
		out[1] = (uint8_t)plen;
	} else if (plen <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(plen >> 8);
		out[3] = (uint8_t)plen;
		n = 4;
	} else {
		out[1] = 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)(plen >> (56 - 8 * i));
		n = 10;
	}
	if (mask) {
		out[1] |= 0x80;
		memcpy(out + n, mask, WS_MASK_BYTES);
		n += WS_MASK_BYTES;
	}
	return n;
}

void ws_mask(uint8_t *p, size_t n, const uint8_t mask[WS_MASK_BYTES])
{
	/* Eight bytes at a time (every datagram of the relay passes here):
	 * the key repeats every 4 bytes, so twice over it is a 64-bit key. */
	uint8_t key8[8];
	uint64_t k, v;
	size_t i = 0;
	for (int j = 0; j < 8; j++)
		key8[j] = mask[j & 3];
	memcpy(&k, key8, sizeof(k));
	for (; i + 8 <= n; i += 8) {
		memcpy(&v, p + i, sizeof(v));
		v ^= k;
		memcpy(p + i, &v, sizeof(v));
	}
	for (; i < n; i++)
		p[i] ^= mask[i & 3];
}

size_t ws_close_frame(uint8_t out[WS_CLOSE_FRAME_MAX], uint16_t code, const uint8_t *mask)
{
	size_t n = ws_frame_header(out, WS_OP_CLOSE, 2, mask);

	out[n] = (uint8_t)(code >> 8);
	out[n + 1] = (uint8_t)code;
	if (mask)
		ws_mask(out + n, 2, mask);
	return n + 2;
}

/* RFC 6455 7.4: codes an endpoint may put in a close frame. */
static bool close_code_ok(uint16_t code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
	       (code >= 3000 && code <= 4999);
}

int ws_frame_next(uint8_t *buf, size_t len, bool from_client, size_t max_payload,
		  struct ws_frame *f)
{
	uint8_t op, *mask = NULL;
	size_t hdr = 2;
	uint64_t plen;

	if (len < 2)
		return 0;
	op = buf[0] & 0x0f;
	/* RSV1-3: no extension was negotiated.  FIN: one datagram is one
	 * frame, and control frames are never fragmented. */
	if ((buf[0] & 0x70) || !(buf[0] & 0x80))
		return SRM_ERR_INVALID;
	if (op != WS_OP_BINARY && op != WS_OP_CLOSE && op != WS_OP_PING && op != WS_OP_PONG)
		return SRM_ERR_INVALID;
	if (!(buf[1] & 0x80) != !from_client)
		return SRM_ERR_INVALID;
	plen = buf[1] & 0x7f;
	if (op != WS_OP_BINARY && plen > WS_CONTROL_MAX)
		return SRM_ERR_INVALID;
	if (plen == 126) {
		if (len < 4)
			return 0;
		plen = (uint64_t)buf[2] << 8 | buf[3];
		hdr = 4;
	} else if (plen == 127) {
		if (len < 10)
			return 0;
		plen = 0;
		for (int i = 0; i < 8; i++)
			plen = plen << 8 | buf[2 + i];
		if (plen >> 63)
			return SRM_ERR_INVALID;
		hdr = 10;
	}
	if (op == WS_OP_BINARY && plen > max_payload)
		return SRM_ERR_NOMEM;
	if (plen > (uint64_t)INT_MAX - WS_FRAME_HEADER_MAX)
		return SRM_ERR_NOMEM;
	if (op == WS_OP_CLOSE && plen == 1)
		return SRM_ERR_INVALID;
	if (from_client) {
		if (len < hdr + WS_MASK_BYTES)
			return 0;
		mask = buf + hdr;
		hdr += WS_MASK_BYTES;
	}
	if (len - hdr < plen)
		return 0;
	if (mask)
		ws_mask(buf + hdr, (size_t)plen, mask);
	f->opcode = op;
	f->payload = buf + hdr;
	f->len = (size_t)plen;
	f->close_code = 0;
	if (op == WS_OP_CLOSE) {
		f->close_code = WS_CLOSE_NO_STATUS;
		if (plen >= 2) {
			f->close_code = (uint16_t)(buf[hdr] << 8 | buf[hdr + 1]);
			if (!close_code_ok(f->close_code))
				return SRM_ERR_INVALID;
		}
	}
	return (int)(hdr + plen);
}
