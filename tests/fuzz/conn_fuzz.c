/*
 * conn_fuzz.c — libFuzzer harness for conn_handle_packet on arbitrary
 * (already authenticated) plaintext: what a malicious listed peer can send
 * (core/protocol/conn.c, conn_stream.c, stream.c, frame.c, ack.c, recovery.c,
 * cc.c, pmtu.c, compress.c, rangeset.c).
 *
 * Input: records [u16le length, payload, u8 time step], each handed to
 * one conn as the next packet; in between, the conn builds what it wants
 * to send (bounded), its events are served like an engine would (accept
 * incoming streams, read what is readable, write a little), and timers
 * run.  Byte 0 picks the conn's congestion controller and compression.
 *
 * Checked: no crash, leak or undefined behaviour; the heap the conn holds
 * stays bounded whatever the peer claims (offsets, credits, streams);
 * every packet it builds fits the buffer it was given.
 *
 *   tests/fuzz/run.sh 60 conn_fuzz
 */
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "wire.h"

/* Far above any legitimate use by one peer, far below "unbounded". */
#define MEMORY_BOUND (256u << 20)

static void serve(struct conn *c, uint64_t now)
{
	static uint8_t buf[WIRE_MAX_UDP_PAYLOAD + 64], rd[4096];
	struct conn_event ev;
	uint64_t pn;

	for (int i = 0; i < 64 && conn_poll_event(c, &ev); i++) {
		switch (ev.type) {
		case CONN_EV_INCOMING:
			if (ev.port == 7)
				(void)conn_stream_reset(c, ev.stream, RESET_REFUSED);
			else
				(void)conn_stream_accept(c, ev.stream);
			break;
		case CONN_EV_READABLE:
			for (int k = 0; k < 16 && conn_stream_read(c, ev.stream, rd, sizeof(rd)) > 0; k++)
				;
			(void)conn_stream_write(c, ev.stream, "pong", 4);
			break;
		case CONN_EV_FIN:
			(void)conn_stream_shutdown(c, ev.stream);
			break;
		case CONN_EV_RESET:
			conn_stream_release(c, ev.stream);
			break;
		default:
			break;
		}
	}
	for (int i = 0; i < 32; i++) {
		size_t n = conn_build_packet(c, now, buf, sizeof(buf) - 64, &pn);
		if (n == 0)
			break;
		if (n > sizeof(buf) - 64)
			abort();
	}
	if (conn_memory(c) > MEMORY_BOUND)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conn_config cfg = { 0 };
	uint64_t now = 1000000, pn = 0, id;
	static const char hello[] = "hello, peer";

	if (size < 1)
		return 0;
	cfg.stream_id_parity = 1;
	cfg.cc = (enum srm_cc)(data[0] % 3);
	cfg.compress = (enum srm_compress)((data[0] >> 2) % 3);
	cfg.max_streams = 64;
	struct conn *c = conn_new(&cfg, now);
	if (c == NULL)
		abort();
	/* Our own stream, so the peer's frames can aim at a live one. */
	if (conn_stream_open(c, 80, now, &id) == 0)
		(void)conn_stream_write(c, id, hello, sizeof(hello));
	serve(c, now);

	for (size_t off = 1; off + 2 <= size;) {
		size_t len = (size_t)data[off] | (size_t)data[off + 1] << 8;
		off += 2;
		if (len > size - off)
			len = size - off;
		(void)conn_handle_packet(c, now, pn++, data + off, len);
		off += len;
		if (off < size)
			now += (uint64_t)data[off++] * 1000;
		serve(c, now);
		uint64_t d = conn_next_deadline(c, now);
		if (d <= now)
			conn_on_timeout(c, now);
	}
	conn_free(c);
	return 0;
}
