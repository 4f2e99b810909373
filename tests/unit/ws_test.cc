// ws_test.cc — core/protocol/ws.c: the WebSocket upgrade (both sides), HTTP
// CONNECT, and RFC 6455 frames, with RFC 6455's sample key as golden vector.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ws.h"

namespace {

// RFC 6455 1.3: "the sample nonce" and the Sec-WebSocket-Accept it earns.
const uint8_t kSampleNonce[WS_NONCE_BYTES] = { 't', 'h', 'e', ' ', 's', 'a', 'm', 'p',
					       'l', 'e', ' ', 'n', 'o', 'n', 'c', 'e' };
const char kSampleKey[] = "dGhlIHNhbXBsZSBub25jZQ==";
const char kSampleAccept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

const uint8_t *U(const std::string &s)
{
	return reinterpret_cast<const uint8_t *>(s.data());
}

std::string Request(const std::string &extra_headers, const std::string &line = "GET /srmudp HTTP/1.1")
{
	return line + "\r\n" + extra_headers + "\r\n";
}

const std::string kGoodHeaders = std::string("Host: relay.example:8080\r\n"
					     "Upgrade: websocket\r\n"
					     "Connection: Upgrade\r\n"
					     "Sec-WebSocket-Key: ") +
				 kSampleKey + "\r\nSec-WebSocket-Version: 13\r\n";

int ServerStatus(const std::string &req)
{
	struct ws_handshake h;
	int rc = ws_server_request(U(req), req.size(), "/srmudp", &h);
	EXPECT_EQ(rc, (int)req.size()) << req;
	return h.status;
}

std::string Answer101()
{
	return std::string("HTTP/1.1 101 Switching Protocols\r\n"
			   "Upgrade: websocket\r\n"
			   "Connection: Upgrade\r\n"
			   "Sec-WebSocket-Accept: ") +
	       kSampleAccept + "\r\n\r\n";
}

TEST(WsHandshake, ClientRequestCarriesTheSampleKey)
{
	char out[512];
	size_t n = ws_client_request("relay.example:8080", "/srmudp", kSampleNonce, out, sizeof(out));
	EXPECT_EQ(std::string(out, n), Request(kGoodHeaders));
	EXPECT_EQ(ws_client_request("relay.example:8080", "/srmudp", kSampleNonce, out, n), 0u);
	EXPECT_EQ(ws_client_request("a b", "/srmudp", kSampleNonce, out, sizeof(out)), 0u);
	EXPECT_EQ(ws_client_request("a\r\nX: y", "/srmudp", kSampleNonce, out, sizeof(out)), 0u);
	EXPECT_EQ(ws_client_request("a", "srmudp", kSampleNonce, out, sizeof(out)), 0u);
}

TEST(WsHandshake, ServerAcceptsTheSampleKey)
{
	std::string req = Request(kGoodHeaders);
	struct ws_handshake h;
	char out[512];

	ASSERT_EQ(ws_server_request(U(req), req.size(), "/srmudp", &h), (int)req.size());
	EXPECT_EQ(h.status, 101);
	EXPECT_STREQ(h.accept, kSampleAccept);
	size_t n = ws_server_response(&h, out, sizeof(out));
	EXPECT_EQ(std::string(out, n), Answer101());
	EXPECT_EQ(ws_server_response(&h, out, n), 0u);
}

TEST(WsHandshake, ServerToleratesBrowsersAndProxies)
{
	// Firefox's Connection, nginx's spacing, any case, a query, extra headers.
	EXPECT_EQ(ServerStatus(Request(std::string("host:x\r\nUPGRADE:  WebSocket \r\n"
						   "connection: keep-alive, Upgrade\r\n"
						   "sec-websocket-key:\t") +
				       kSampleKey + "\t\r\nSEC-WEBSOCKET-VERSION: 13\r\n"
						    "Sec-WebSocket-Extensions: permessage-deflate\r\n"
						    "User-Agent: Mozilla/5.0 (X11) \xc3\xa9\r\n",
				       "GET /srmudp?token=1 HTTP/1.1")),
		  101);
	// Connection and Upgrade split over several lines.
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders + "Connection: keep-alive\r\nUpgrade: h2c\r\n")),
		  101);
}

TEST(WsHandshake, ServerErrorStatuses)
{
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders, "GET /other HTTP/1.1")), 404);
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders, "GET /srmudp/ HTTP/1.1")), 404);
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders, "POST /srmudp HTTP/1.1")), 405);
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders, "get /srmudp HTTP/1.1")), 405);
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders, "GET /srmudp HTTP/1.0")), 400);
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders, "GET  /srmudp HTTP/1.1")), 400);
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders, "GET /srmudp")), 400);
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders, "G(T /srmudp HTTP/1.1")), 400);

	auto without = [](const std::string &name) {
		std::string h = kGoodHeaders;
		size_t at = h.find(name);
		h.erase(at, h.find("\r\n", at) + 2 - at);
		return Request(h);
	};
	EXPECT_EQ(ServerStatus(without("Host:")), 400);
	EXPECT_EQ(ServerStatus(without("Upgrade:")), 400);
	EXPECT_EQ(ServerStatus(without("Connection:")), 400);
	EXPECT_EQ(ServerStatus(without("Sec-WebSocket-Key:")), 400);
	EXPECT_EQ(ServerStatus(without("Sec-WebSocket-Version:")), 426);
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders + "Sec-WebSocket-Version: 8\r\n")), 426);
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders + "Host: y\r\n")), 400);
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders + "Sec-WebSocket-Key: " + kSampleKey + "\r\n")), 400);

	std::string h = kGoodHeaders;
	std::string bad_key = h;
	bad_key.replace(bad_key.find(kSampleKey), 24, "dGhlIHNhbXBsZSBub25jZQ=!");
	EXPECT_EQ(ServerStatus(Request(bad_key)), 400);
	bad_key = h;
	bad_key.replace(bad_key.find(kSampleKey), 24, "dGhlIHNhbXBsZSBub25j");
	EXPECT_EQ(ServerStatus(Request(bad_key)), 400);
	EXPECT_EQ(ServerStatus(Request(std::string("Upgrade: websocket\r\n Connection: Upgrade\r\n") +
				       kGoodHeaders)),
		  400); // obs-fold
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders + "X-A : b\r\n")), 400);
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders + "no colon\r\n")), 400);
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders + std::string("X-A: b\0c\r\n", 10))), 400);
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders + "X-A: b\x01\r\n")), 400);
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders + "X-A: b\nX-B: c\r\n")), 400);
	// A malformed header makes a 404 a 400.
	EXPECT_EQ(ServerStatus(Request(kGoodHeaders + " fold\r\n", "GET / HTTP/1.1")), 400);
}

TEST(WsHandshake, ServerErrorAnswers)
{
	struct ws_handshake h = {};
	char out[512];

	h.status = 426;
	EXPECT_EQ(std::string(out, ws_server_response(&h, out, sizeof(out))),
		  "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
		  "Connection: close\r\nContent-Length: 0\r\n\r\n");
	h.status = 405;
	EXPECT_EQ(std::string(out, ws_server_response(&h, out, sizeof(out))),
		  "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\n"
		  "Connection: close\r\nContent-Length: 0\r\n\r\n");
	h.status = 404;
	EXPECT_EQ(std::string(out, ws_server_response(&h, out, sizeof(out))),
		  "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
}

TEST(WsHandshake, ServerIncrementalAndOversized)
{
	std::string req = Request(kGoodHeaders) + "\x82\x80";
	struct ws_handshake h;
	size_t head = req.size() - 2;

	for (size_t i = 0; i < head; i++)
		ASSERT_EQ(ws_server_request(U(req), i, "/srmudp", &h), 0) << i;
	EXPECT_EQ(ws_server_request(U(req), req.size(), "/srmudp", &h), (int)head);
	EXPECT_EQ(h.status, 101);

	std::string big = "GET /srmudp HTTP/1.1\r\nX: " + std::string(WS_MAX_HEAD, 'a');
	EXPECT_EQ(ws_server_request(U(big), WS_MAX_HEAD - 1, "/srmudp", &h), 0);
	EXPECT_EQ(ws_server_request(U(big), WS_MAX_HEAD, "/srmudp", &h), SRM_ERR_NOMEM);
	EXPECT_EQ(h.status, 431);
	char out[256];
	EXPECT_NE(std::string(out, ws_server_response(&h, out, sizeof(out))).find("431"),
		  std::string::npos);
}

TEST(WsHandshake, ClientChecksTheAnswerAtEveryByte)
{
	std::string ans = Answer101() + "\x82\x01x";
	size_t head = ans.size() - 3;
	int status = -1;

	for (size_t i = 0; i < head; i++)
		ASSERT_EQ(ws_client_response(U(ans), i, kSampleNonce, &status), 0) << i;
	EXPECT_EQ(ws_client_response(U(ans), ans.size(), kSampleNonce, &status), (int)head);
	EXPECT_EQ(status, 101);
}

TEST(WsHandshake, ClientRejections)
{
	int status = -1;
	auto rc = [&](const std::string &a) {
		return ws_client_response(U(a), a.size(), kSampleNonce, &status);
	};
	EXPECT_EQ(rc("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"), SRM_ERR_REFUSED);
	EXPECT_EQ(status, 404);
	EXPECT_EQ(rc("HTTP/1.1 200\r\n\r\n"), SRM_ERR_REFUSED);
	EXPECT_EQ(status, 200);
	EXPECT_EQ(rc("SSH-2.0-OpenSSH_9.2\r\n\r\n"), SRM_ERR_INVALID);
	EXPECT_EQ(status, 0);
	EXPECT_EQ(rc("HTTP/1.1 1O1 x\r\n\r\n"), SRM_ERR_INVALID);
	EXPECT_EQ(rc("HTTP/1.1 101x\r\n\r\n"), SRM_ERR_INVALID);

	std::string a = Answer101();
	std::string wrong = a;
	wrong.replace(wrong.find(kSampleAccept), 1, "t");
	EXPECT_EQ(rc(wrong), SRM_ERR_AUTH);
	EXPECT_EQ(status, 101);
	std::string missing = a;
	missing.erase(missing.find("Sec-WebSocket-Accept"));
	EXPECT_EQ(rc(missing + "\r\n"), SRM_ERR_AUTH);
	std::string twice = a.substr(0, a.size() - 2) + "Sec-WebSocket-Accept: " + kSampleAccept + "\r\n\r\n";
	EXPECT_EQ(rc(twice), SRM_ERR_AUTH);
	std::string no_upgrade = a;
	no_upgrade.replace(no_upgrade.find("websocket"), 9, "h2c");
	EXPECT_EQ(rc(no_upgrade), SRM_ERR_INVALID);
	std::string no_conn = a;
	no_conn.replace(no_conn.find("Connection: Upgrade"), 19, "Connection: close");
	EXPECT_EQ(rc(no_conn), SRM_ERR_INVALID);
	EXPECT_EQ(rc(a.substr(0, a.size() - 2) + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
		  SRM_ERR_INVALID);
	EXPECT_EQ(rc(a.substr(0, a.size() - 2) + "X: \x7f\r\n\r\n"), SRM_ERR_INVALID);
	// Case-insensitive names and tokens are fine.
	std::string lower = "HTTP/1.1 101 ok\r\nupgrade: WEBSOCKET\r\nconnection: keep-alive,upgrade\r\n"
			    "sec-websocket-accept:  " + std::string(kSampleAccept) + " \r\n\r\n";
	EXPECT_EQ(rc(lower), (int)lower.size());

	std::string big = "HTTP/1.1 101 ok\r\n" + std::string(WS_MAX_HEAD, 'a');
	EXPECT_EQ(rc(big), SRM_ERR_NOMEM);
}

TEST(WsConnect, Request)
{
	char out[512];
	EXPECT_EQ(std::string(out, http_connect_request("relay.example", 443, NULL, out, sizeof(out))),
		  "CONNECT relay.example:443 HTTP/1.1\r\nHost: relay.example:443\r\n\r\n");
	EXPECT_EQ(std::string(out, http_connect_request("2001:db8::1", 80, "", out, sizeof(out))),
		  "CONNECT [2001:db8::1]:80 HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n");
	EXPECT_EQ(std::string(out, http_connect_request("10.0.0.1", 8443, "dXNlcjpwYXNz", out, sizeof(out))),
		  "CONNECT 10.0.0.1:8443 HTTP/1.1\r\nHost: 10.0.0.1:8443\r\n"
		  "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n");
	EXPECT_EQ(http_connect_request("a\r\nb", 1, NULL, out, sizeof(out)), 0u);
	EXPECT_EQ(http_connect_request("", 1, NULL, out, sizeof(out)), 0u);
	EXPECT_EQ(http_connect_request("a", 1, "x y", out, sizeof(out)), 0u);
	EXPECT_EQ(http_connect_request("relay.example", 443, NULL, out, 20), 0u);
}

TEST(WsConnect, Response)
{
	int status = -1;
	auto rc = [&](const std::string &a) { return http_connect_response(U(a), a.size(), &status); };

	std::string ok = "HTTP/1.1 200 Connection established\r\nProxy-Agent: tinyproxy/1.11\r\n"
			 "Via: 1.1 proxy\r\n\r\n";
	EXPECT_EQ(rc(ok + "\x16\x03\x01"), (int)ok.size());
	EXPECT_EQ(status, 200);
	EXPECT_EQ(rc("HTTP/1.0 200 Connection established\r\n\r\n"), 39);
	std::string deny = "HTTP/1.1 407 Proxy Authentication Required\r\n"
			   "Proxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 5\r\n\r\n";
	EXPECT_EQ(rc(deny + "nope!"), (int)deny.size());
	EXPECT_EQ(status, 407);
	for (size_t i = 0; i < ok.size(); i++)
		ASSERT_EQ(http_connect_response(U(ok), i, &status), 0) << i;
	EXPECT_EQ(rc("<html>garbage</html>\r\n\r\n"), SRM_ERR_INVALID);
	EXPECT_EQ(rc("HTTP/1.1 200 OK\r\nX y\r\n\r\n"), SRM_ERR_INVALID);
	EXPECT_EQ(rc("HTTP/2 200\r\n\r\n"), SRM_ERR_INVALID);
	EXPECT_EQ(rc("HTTP/1.1 999 x\r\n\r\n"), SRM_ERR_INVALID);
	EXPECT_EQ(rc("HTTP/1.1 200 OK\r\n" + std::string(WS_MAX_HEAD, 'x')), SRM_ERR_NOMEM);
}

std::vector<uint8_t> Frame(uint8_t op, const std::vector<uint8_t> &payload, const uint8_t *mask)
{
	std::vector<uint8_t> f(WS_FRAME_HEADER_MAX);
	size_t h = ws_frame_header(f.data(), op, payload.size(), mask);
	f.resize(h);
	f.insert(f.end(), payload.begin(), payload.end());
	if (mask)
		ws_mask(f.data() + h, payload.size(), mask);
	return f;
}

const uint8_t kMask[4] = { 0x37, 0xfa, 0x21, 0x3d };

TEST(WsFrame, HeaderLengths)
{
	uint8_t h[WS_FRAME_HEADER_MAX];
	EXPECT_EQ(ws_frame_header(h, WS_OP_BINARY, 0, NULL), 2u);
	EXPECT_EQ(h[0], 0x82);
	EXPECT_EQ(h[1], 0x00);
	EXPECT_EQ(ws_frame_header(h, WS_OP_BINARY, 125, kMask), 6u);
	EXPECT_EQ(h[1], 0x80 | 125);
	EXPECT_EQ(ws_frame_header(h, WS_OP_BINARY, 126, NULL), 4u);
	EXPECT_EQ(h[1], 126);
	EXPECT_EQ(h[3], 126);
	EXPECT_EQ(ws_frame_header(h, WS_OP_BINARY, 65535, kMask), 8u);
	EXPECT_EQ(h[2], 0xff);
	EXPECT_EQ(h[3], 0xff);
	EXPECT_EQ(ws_frame_header(h, WS_OP_BINARY, 65536, kMask), 14u);
	EXPECT_EQ(h[1], 0x80 | 127);
	EXPECT_EQ(std::vector<uint8_t>(h + 2, h + 10), (std::vector<uint8_t>{ 0, 0, 0, 0, 0, 1, 0, 0 }));
	EXPECT_EQ(std::vector<uint8_t>(h + 10, h + 14), std::vector<uint8_t>(kMask, kMask + 4));
}

TEST(WsFrame, Rfc6455Examples)
{
	// RFC 6455 5.7: "Hello" unmasked and masked (as pong, we take no text).
	uint8_t masked[] = { 0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
	struct ws_frame f;
	ASSERT_EQ(ws_frame_next(masked, sizeof(masked), true, 2048, &f), (int)sizeof(masked));
	EXPECT_EQ(f.opcode, WS_OP_PONG);
	EXPECT_EQ(std::string((const char *)f.payload, f.len), "Hello");
	uint8_t plain[] = { 0x89, 0x05, 'H', 'e', 'l', 'l', 'o' };
	ASSERT_EQ(ws_frame_next(plain, sizeof(plain), false, 2048, &f), (int)sizeof(plain));
	EXPECT_EQ(f.opcode, WS_OP_PING);
	// 256 bytes binary, 16-bit length.
	std::vector<uint8_t> p(256, 0xab), fr = Frame(WS_OP_BINARY, p, NULL);
	EXPECT_EQ(std::vector<uint8_t>(fr.begin(), fr.begin() + 4), (std::vector<uint8_t>{ 0x82, 0x7e, 0x01, 0x00 }));
}

TEST(WsFrame, RoundTripsAtEverySplit)
{
	for (size_t size : { 0, 1, 125, 126, 2048, 65535, 65536, 70000 }) {
		std::vector<uint8_t> p(size);
		for (size_t i = 0; i < size; i++)
			p[i] = (uint8_t)(i * 7 + 3);
		for (bool client : { true, false }) {
			std::vector<uint8_t> fr = Frame(WS_OP_BINARY, p, client ? kMask : NULL);
			if (client && size > 4) {
				EXPECT_NE(std::vector<uint8_t>(fr.end() - size, fr.end()), p);
			}
			struct ws_frame f;
			size_t step = size > 2048 ? 997 : 1;
			for (size_t cut = 0; cut < fr.size(); cut += step) {
				ASSERT_EQ(ws_frame_next(fr.data(), cut, client, 70000, &f), 0)
					<< size << " " << cut;
			}
			ASSERT_EQ(ws_frame_next(fr.data(), fr.size(), client, 70000, &f), (int)fr.size());
			EXPECT_EQ(f.opcode, WS_OP_BINARY);
			EXPECT_EQ(std::vector<uint8_t>(f.payload, f.payload + f.len), p);
		}
	}
}

TEST(WsFrame, SeveralFramesInOneBuffer)
{
	std::vector<uint8_t> a = Frame(WS_OP_BINARY, { 1, 2, 3 }, kMask);
	std::vector<uint8_t> b = Frame(WS_OP_PING, { 9 }, kMask);
	std::vector<uint8_t> buf = a;
	buf.insert(buf.end(), b.begin(), b.end());
	struct ws_frame f;
	int n = ws_frame_next(buf.data(), buf.size(), true, 2048, &f);
	ASSERT_EQ(n, (int)a.size());
	EXPECT_EQ(f.len, 3u);
	EXPECT_EQ(f.payload[2], 3);
	ASSERT_EQ(ws_frame_next(buf.data() + n, buf.size() - n, true, 2048, &f), (int)b.size());
	EXPECT_EQ(f.opcode, WS_OP_PING);
	EXPECT_EQ(f.payload[0], 9);
}

TEST(WsFrame, SixtyFourBitLengths)
{
	struct ws_frame f;
	// Non-minimal: 5 bytes in the 64-bit form is accepted.
	uint8_t nm[15] = { 0x82, 127, 0, 0, 0, 0, 0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e' };
	ASSERT_EQ(ws_frame_next(nm, sizeof(nm), false, 2048, &f), 15);
	EXPECT_EQ(f.len, 5u);
	// The top bit must be clear.
	uint8_t top[10] = { 0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1 };
	EXPECT_EQ(ws_frame_next(top, sizeof(top), false, SIZE_MAX, &f), SRM_ERR_INVALID);
	// Too large for max_payload: refused from the header alone.
	uint8_t huge[10] = { 0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0 };
	EXPECT_EQ(ws_frame_next(huge, sizeof(huge), false, 2048, &f), SRM_ERR_NOMEM);
	EXPECT_EQ(ws_frame_next(huge, sizeof(huge), false, SIZE_MAX, &f), SRM_ERR_NOMEM);
	uint8_t over[4] = { 0x82, 126, 0x08, 0x01 };
	EXPECT_EQ(ws_frame_next(over, sizeof(over), false, 2048, &f), SRM_ERR_NOMEM);
	over[3] = 0x00;
	EXPECT_EQ(ws_frame_next(over, sizeof(over), false, 2048, &f), 0);
}

TEST(WsFrame, Rejections)
{
	struct ws_frame f;
	auto rc = [&](std::vector<uint8_t> b, bool client) {
		return ws_frame_next(b.data(), b.size(), client, 2048, &f);
	};
	std::vector<uint8_t> good = Frame(WS_OP_BINARY, { 1, 2 }, kMask);
	ASSERT_EQ(rc(good, true), (int)good.size());
	for (uint8_t rsv : { 0x40, 0x20, 0x10 }) {
		std::vector<uint8_t> b = good;
		b[0] |= rsv;
		EXPECT_EQ(rc(b, true), SRM_ERR_INVALID) << (int)rsv;
	}
	for (int op = 0; op < 16; op++) {
		if (op == WS_OP_BINARY || op == WS_OP_CLOSE || op == WS_OP_PING || op == WS_OP_PONG)
			continue;
		std::vector<uint8_t> b = Frame((uint8_t)op, { 1 }, kMask);
		EXPECT_EQ(rc(b, true), SRM_ERR_INVALID) << op;
		b.resize(2); // judged from the header alone
		EXPECT_EQ(rc(b, true), SRM_ERR_INVALID) << op;
	}
	for (uint8_t op : { WS_OP_BINARY, WS_OP_PING, WS_OP_CLOSE }) {
		std::vector<uint8_t> b = Frame(op, {}, kMask);
		b[0] &= 0x7f; // not FIN
		EXPECT_EQ(rc(b, true), SRM_ERR_INVALID) << (int)op;
	}
	EXPECT_EQ(rc(Frame(WS_OP_BINARY, { 1 }, NULL), true), SRM_ERR_INVALID); // unmasked client
	EXPECT_EQ(rc(Frame(WS_OP_BINARY, { 1 }, kMask), false), SRM_ERR_INVALID); // masked server
	EXPECT_EQ(rc(Frame(WS_OP_PING, std::vector<uint8_t>(126), kMask), true), SRM_ERR_INVALID);
	EXPECT_EQ(rc(Frame(WS_OP_PONG, std::vector<uint8_t>(125), kMask), true), 6 + 125);
	EXPECT_EQ(rc(Frame(WS_OP_CLOSE, { 3 }, NULL), false), SRM_ERR_INVALID);
	for (int code : { 0, 999, 1004, 1005, 1006, 1012, 1015, 2999, 5000, 65535 })
		EXPECT_EQ(rc(Frame(WS_OP_CLOSE, { (uint8_t)(code >> 8), (uint8_t)code }, NULL), false),
			  SRM_ERR_INVALID)
			<< code;
}

TEST(WsFrame, Close)
{
	uint8_t out[WS_CLOSE_FRAME_MAX];
	struct ws_frame f;
	size_t n = ws_close_frame(out, WS_CLOSE_PROTOCOL, kMask);
	ASSERT_EQ(n, 8u);
	ASSERT_EQ(ws_frame_next(out, n, true, 0, &f), 8);
	EXPECT_EQ(f.opcode, WS_OP_CLOSE);
	EXPECT_EQ(f.close_code, WS_CLOSE_PROTOCOL);
	n = ws_close_frame(out, 4000, NULL);
	ASSERT_EQ(n, 4u);
	ASSERT_EQ(ws_frame_next(out, n, false, 0, &f), 4);
	EXPECT_EQ(f.close_code, 4000);
	std::vector<uint8_t> reason = Frame(WS_OP_CLOSE, { 0x03, 0xe8, 'b', 'y', 'e' }, NULL);
	ASSERT_EQ(ws_frame_next(reason.data(), reason.size(), false, 0, &f), 7);
	EXPECT_EQ(f.close_code, WS_CLOSE_NORMAL);
	EXPECT_EQ(f.len, 5u);
	std::vector<uint8_t> empty = Frame(WS_OP_CLOSE, {}, kMask);
	ASSERT_EQ(ws_frame_next(empty.data(), empty.size(), true, 0, &f), 6);
	EXPECT_EQ(f.close_code, WS_CLOSE_NO_STATUS);
}

TEST(WsFrame, MaskRoundTrip)
{
	std::vector<uint8_t> p(37), q;
	for (size_t i = 0; i < p.size(); i++)
		p[i] = (uint8_t)i;
	q = p;
	ws_mask(q.data(), q.size(), kMask);
	EXPECT_EQ(q[0], 0x37);
	EXPECT_EQ(q[5], 5 ^ 0xfa);
	ws_mask(q.data(), q.size(), kMask);
	EXPECT_EQ(q, p);
}

} // namespace
