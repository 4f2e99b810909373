/*
 * ws_fuzz.c — libFuzzer harness for the WebSocket/HTTP codec
 * (core/protocol/ws.c) and the relay and proxy URL parsers
 * (core/config/url.c).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icore \
 *     -Icore/protocol -Icore/config tests/fuzz/ws_fuzz.c core/protocol/ws.c \
 *     core/config/url.c core/config/config.c core/config/config_file.c \
 *     core/config/quote.c core/config/log.c core/config/keyfile.c \
 *     -lsodium -lssl -lcrypto -o build/ws_fuzz
 *   build/ws_fuzz -max_total_time=60
 *
 * The first byte picks the parser, the rest is its input:
 *   0 ws_server_request   (a 101 must answer with a 28-character accept)
 *   1 ws_client_response
 *   2 http_connect_response
 *   3 ws_frame_next, client frames; 4 server frames (every frame must lie
 *     inside the buffer; the second byte sets max_payload)
 *   5 relay_url_list_parse: every URL must make a request our own server
 *     accepts, and a proxy choice (the input also plays the environment)
 *   6 proxy_url_parse: a parsed proxy must make a CONNECT request
 *   7 relay_no_proxy_match: no_proxy, a NUL, the host
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"
#include "ws.h"

static const uint8_t nonce[WS_NONCE_BYTES] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

static char *env_value;

static char *fake_getenv(const char *name)
{
	(void)name;
	return env_value;
}

static void check_err(const char *err)
{
	if (err[0] == '\0' || strchr(err, '\n') || strstr(err, ": ") == NULL)
		abort();
}

static void server_request(const uint8_t *d, size_t n)
{
	struct ws_handshake h;
	char out[512];
	int rc = ws_server_request(d, n, "/srmudp", &h);

	if (rc > (int)n || (rc < 0 && h.status != 431))
		abort();
	if (rc <= 0 && h.status != 431)
		return;
	if (h.status == 101 && strlen(h.accept) != WS_ACCEPT_CHARS)
		abort();
	if (ws_server_response(&h, out, sizeof(out)) == 0)
		abort();
}

static void frames(const uint8_t *d, size_t n, bool from_client)
{
	uint8_t *buf;
	size_t off = 0, max = n ? (size_t)d[0] * 16 : 0;
	struct ws_frame f;
	int rc;

	if (n == 0)
		return;
	buf = malloc(n - 1 ? n - 1 : 1);
	memcpy(buf, d + 1, n - 1);
	while ((rc = ws_frame_next(buf + off, n - 1 - off, from_client, max, &f)) > 0) {
		if (f.payload < buf + off || f.payload + f.len != buf + off + rc)
			abort();
		if (f.opcode == WS_OP_BINARY ? f.len > max : f.len > WS_CONTROL_MAX)
			abort();
		off += (size_t)rc;
	}
	/* Round trip: the input as one binary payload. */
	{
		uint8_t *fr = malloc(WS_FRAME_HEADER_MAX + n), mask[WS_MASK_BYTES] = { 0 };
		size_t h;

		memcpy(mask, d, n < WS_MASK_BYTES ? n : WS_MASK_BYTES);
		h = ws_frame_header(fr, WS_OP_BINARY, n, from_client ? mask : NULL);
		memcpy(fr + h, d, n);
		if (from_client)
			ws_mask(fr + h, n, mask);
		rc = ws_frame_next(fr, h + n, from_client, n, &f);
		if (rc != (int)(h + n) || f.len != n || memcmp(f.payload, d, n) != 0)
			abort();
		free(fr);
	}
	free(buf);
}

/* Our request for u, answered by our server, accepted by our client. */
static void handshake(const struct relay_url *u)
{
	char req[1024], resp[512];
	struct ws_handshake h;
	size_t n = ws_client_request(u->host_header, u->path, nonce, req, sizeof(req));
	int status;

	if (n == 0)
		abort();
	if (ws_server_request((const uint8_t *)req, n, u->path, &h) != (int)n || h.status != 101)
		abort();
	n = ws_server_response(&h, resp, sizeof(resp));
	if (ws_client_response((const uint8_t *)resp, n, nonce, &status) != (int)n || status != 101)
		abort();
}

static void relay_list(const char *s)
{
	struct relay_url u[RELAY_URL_MAX];
	struct proxy_url p;
	char err[256] = "", req[2048];
	size_t n;

	if (relay_url_list_parse("SRMUDP_RELAY", s, u, &n, err, sizeof(err)) != 0) {
		check_err(err);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		handshake(&u[i]);
		env_value = (char *)s;
		err[0] = '\0';
		int rc = relay_proxy_for(&u[i], i & 1 ? s : NULL, fake_getenv, &p, err, sizeof(err));
		if (rc < 0)
			check_err(err);
		else if (rc == 1 && http_connect_request(p.host, p.port, p.auth, req, sizeof(req)) == 0)
			abort();
	}
}

static void proxy(const char *s)
{
	struct proxy_url p;
	char err[256] = "", req[2048];

	if (proxy_url_parse("SRMUDP_PROXY", s, &p, err, sizeof(err)) != 0) {
		check_err(err);
		return;
	}
	if (http_connect_request(p.host, p.port, p.auth, req, sizeof(req)) == 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *d = data + 1;
	size_t n = size ? size - 1 : 0;
	char *s;
	int status;

	if (size < 1)
		return 0;
	switch (data[0] % 8) {
	case 0:
		server_request(d, n);
		break;
	case 1:
		if (ws_client_response(d, n, nonce, &status) > (int)n)
			abort();
		break;
	case 2:
		if (http_connect_response(d, n, &status) > (int)n)
			abort();
		break;
	case 3:
	case 4:
		frames(d, n, data[0] % 8 == 3);
		break;
	default:
		s = malloc(n + 1);
		memcpy(s, d, n);
		s[n] = '\0';
		if (data[0] % 8 == 5)
			relay_list(s);
		else if (data[0] % 8 == 6)
			proxy(s);
		else
			(void)relay_no_proxy_match(s, s + strlen(s) + (strlen(s) < n));
		free(s);
		break;
	}
	return 0;
}
