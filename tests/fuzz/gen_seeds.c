/*
 * gen_seeds.c — writes the seed corpus of the fuzz targets from real
 * traffic: the handshake and DATA packets of an actual session
 * (fuzz_pair.h), and the plaintext payloads of an actual transport
 * exchange (two conns moving a stream both ways).  Not a fuzz target.
 *
 *   tests/fuzz/run.sh 0            (builds build-fuzz/libcore.a), then
 *   clang -g -D_GNU_SOURCE -Icore -Icore/protocol -Icore/driver -Icore/config \
 *     -fsanitize=address,undefined tests/fuzz/gen_seeds.c \
 *     build-fuzz/libcore.a -lsodium -lzstd -lmsgpackc -lpthread -ldl -o build-fuzz/gen_seeds
 *   build-fuzz/gen_seeds tests/fuzz/corpus
 */
#include <stdio.h>
#include <sys/stat.h>

#include "conn.h"
#include "fuzz_pair.h"

static const char *dir;
static int count;

static void put(const char *target, uint8_t mode, const uint8_t *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/real-%03d", dir, target, count++);
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		abort();
	if (mode != 0xff)
		fputc(mode, f);
	fwrite(p, 1, n, f);
	fclose(f);
}

static void sessions(void)
{
	struct fuzz_side a, b;
	uint8_t init[INIT_BYTES], reply[INIT_BYTES], plain[256], data[256];
	size_t n, rl;

	fuzz_rng_state = 42;
	fuzz_side_init(&a, 0x0a000001);
	fuzz_side_init(&b, 0x0a000002);
	fuzz_side_connect(&a, &b, 0xaaaa);
	fuzz_side_connect(&b, &a, 0xbbbb);
	session_want_handshake(a.s, 1000);
	n = session_handshake_packet(a.s, 1000, init, sizeof(init));
	put("packet_fuzz", 0, init, n);
	put("handshake_fuzz", 0, init + 1, n - 1);
	if (fuzz_receive(&b, init, n, &a.addr, 1000, reply, &rl, plain, sizeof(plain)) != 0)
		abort();
	put("packet_fuzz", 0, reply, rl);
	put("handshake_fuzz", 1, reply + 1, rl - 1);
	if (fuzz_receive(&a, reply, rl, &b.addr, 1000, init, &n, plain, sizeof(plain)) != 0)
		abort();
	uint8_t ping = FRAME_PING;
	int len = session_seal(a.s, 1000, &ping, 1, data, sizeof(data), 1000);
	put("packet_fuzz", 0, data, (size_t)len);
	put("packet_fuzz", 4, data, (size_t)len);
	/* Sealed-record mode: in order, a duplicate, an old one, a far jump. */
	uint8_t recs[] = { 1, 0, 0, 1, FRAME_PING, 2, 0, 0, 1, FRAME_PING, 2, 0, 0, 1, FRAME_PING,
			   0, 0, 0, 1, FRAME_PING, 0, 0, 1, 3, 0x0b, 0, 0 };
	put("packet_fuzz", 1, recs, sizeof(recs));
	uint8_t cookie[COOKIE_REPLY_BYTES];
	cookie_create_reply(cookie, 0x11223344, (const uint8_t *)"0123456789abcdefghijklmn",
			    (const uint8_t *)"cookiecookiecook", b.id.cookie_key, init + INIT_OFF_MAC1);
	put("packet_fuzz", 0, cookie, sizeof(cookie));
	put("handshake_fuzz", 2 | 8, cookie + 1, sizeof(cookie) - 1);
	put("handshake_fuzz", 2 | 0x10, cookie + 1, sizeof(cookie) - 1);
	fuzz_side_free(&a);
	fuzz_side_free(&b);
}

/* Two conns talk; every payload B receives becomes a seed. */
static void transport(void)
{
	struct conn_config ca = { 0 }, cb = { 0 };
	uint8_t buf[WIRE_MAX_UDP_PAYLOAD], rec[4096], rd[4096];
	size_t rlen = 0;
	uint64_t now = 1000000, pn, id;
	static uint8_t big[20000];

	cb.stream_id_parity = 1;
	ca.compress = SRM_COMPRESS_ON;
	struct conn *a = conn_new(&ca, now), *b = conn_new(&cb, now);
	if (a == NULL || b == NULL || conn_stream_open(a, 80, now, &id) != 0)
		abort();
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)("srmudp seed "[i % 12] + i / 1000);
	(void)conn_stream_write(a, id, big, sizeof(big));
	(void)conn_stream_shutdown(a, id);
	for (int round = 0; round < 40; round++) {
		size_t n;
		while ((n = conn_build_packet(a, now, buf, sizeof(buf), &pn)) > 0) {
			put("frame_fuzz", 0xff, buf, n);
			if (rlen + n + 3 <= sizeof(rec)) {
				rec[rlen++] = (uint8_t)n;
				rec[rlen++] = (uint8_t)(n >> 8);
				memcpy(rec + rlen, buf, n);
				rlen += n;
				rec[rlen++] = 1;
			}
			(void)conn_handle_packet(b, now, pn, buf, n);
		}
		struct conn_event ev;
		while (conn_poll_event(b, &ev)) {
			if (ev.type == CONN_EV_INCOMING)
				(void)conn_stream_accept(b, ev.stream);
			if (ev.type == CONN_EV_READABLE)
				while (conn_stream_read(b, ev.stream, rd, sizeof(rd)) > 0)
					;
			if (ev.type == CONN_EV_FIN) {
				(void)conn_stream_write(b, ev.stream, "bye", 3);
				(void)conn_stream_shutdown(b, ev.stream);
			}
		}
		while ((n = conn_build_packet(b, now, buf, sizeof(buf), &pn)) > 0) {
			put("frame_fuzz", 0xff, buf, n);
			(void)conn_handle_packet(a, now, pn, buf, n);
		}
		while (conn_poll_event(a, &ev))
			;
		now += 5000;
	}
	uint8_t sel = 0x04; /* cc bbr, compression on */
	uint8_t seed[sizeof(rec) + 1];
	seed[0] = sel;
	memcpy(seed + 1, rec, rlen);
	put("conn_fuzz", 0xff, seed, rlen + 1);
	conn_free(a);
	conn_free(b);
}

/* A PUNCH from a to b (seeded last, so earlier seeds keep their names). */
static void punch(void)
{
	struct fuzz_side a, b;
	uint8_t pkt[PUNCH_BYTES], reply[INIT_BYTES], plain[64];
	size_t rl;

	fuzz_side_init(&a, 0x0a000001);
	fuzz_side_init(&b, 0x0a000002);
	fuzz_side_connect(&a, &b, 0xaaaa);
	size_t n = session_punch_packet(a.s, pkt, sizeof(pkt));
	if (fuzz_receive(&b, pkt, n, &a.addr, 1000, reply, &rl, plain, sizeof(plain)) != 0 || rl)
		abort();
	put("packet_fuzz", 0, pkt, n);
	fuzz_side_free(&a);
	fuzz_side_free(&b);
}

int main(int argc, char **argv)
{
	if (argc != 2 || sodium_init() < 0)
		return 2;
	dir = argv[1];
	sessions();
	transport();
	punch();
	printf("%d seeds in %s\n", count, dir);
	return 0;
}
