/*
 * ack_fuzz.c — libFuzzer harness for the ACK frame parser and for what
 * recovery does with a hostile but well-formed ACK (core/protocol/ack.c,
 * core/protocol/recovery.c, core/protocol/cc.c).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icore \
 *     tests/fuzz/ack_fuzz.c core/protocol/ack.c core/protocol/recovery.c core/protocol/cc.c \
 *     -o build/ack_fuzz
 *   build/ack_fuzz -max_total_time=60
 *
 * Input: byte 0 picks how many packets were "sent" (with gaps), byte 1
 * the congestion controller; the rest is an ACK frame (its type byte is
 * forced to FRAME_ACK so every input reaches the parser body).  Checked:
 * the parser never overreads and yields well-formed ranges that re-encode
 * to an equivalent frame; recovery never crashes, never reports a packet
 * twice, and keeps bytes in flight equal to what is outstanding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ack.h"
#include "recovery.h"
#include "wire.h"

static uint8_t reported[1024];
static unsigned reports;

static void on_event(void *ctx, const struct recovery_event *ev)
{
	(void)ctx;
	if (ev->meta >= sizeof(reported) || reported[ev->meta]++)
		abort(); /* unknown or reported twice */
	reports++;
}

static void check_ranges(const struct ack_ranges *a)
{
	if (a->count < 1 || a->count > ACK_MAX_RANGES || a->r[0].hi != a->largest)
		abort();
	for (size_t i = 0; i < a->count; i++) {
		if (a->r[i].lo > a->r[i].hi)
			abort();
		if (i > 0 && a->r[i].hi + 1 >= a->r[i - 1].lo)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ack_ranges a, b;
	struct recovery r;
	uint8_t frame[4096], out[ACK_FRAME_MAX_BYTES];
	size_t used, n;

	if (size < 3 || size - 2 > sizeof(frame))
		return 0;
	memcpy(frame, data + 2, size - 2);
	frame[0] = FRAME_ACK;
	if (ack_frame_parse(frame, size - 2, &a, &used) != 0)
		return 0;
	if (used > size - 2)
		abort();
	check_ranges(&a);
	n = ack_frame_encode(&a, out, sizeof(out));
	if (n == 0 || ack_frame_parse(out, n, &b, &used) != 0 || used != n ||
	    b.count != a.count || memcmp(b.r, a.r, a.count * sizeof(a.r[0])) != 0)
		abort();

	if (recovery_init(&r, (enum srm_cc)(data[1] % 3), 1200, 0) != 0)
		return 0;
	unsigned sent = data[0] * 4u;
	uint64_t pn = 0, largest_sent = 0;
	for (unsigned i = 0; i < sent; i++) {
		recovery_on_sent(&r, pn, 1200, RECOVERY_ACK_ELICITING | RECOVERY_IN_FLIGHT, i,
				 (uint64_t)i * 1000);
		largest_sent = pn;
		pn += 1 + (i % 5 == 4); /* skip some numbers */
	}
	memset(reported, 0, sizeof(reported));
	reports = 0;
	struct recovery_callbacks cb = { on_event, on_event, NULL };
	int rc = recovery_on_ack(&r, &a, (uint64_t)sent * 1000 + 50000, &cb);
	/* Rejected exactly when it acknowledges beyond what was sent. */
	if ((rc < 0) != (sent == 0 || a.largest > largest_sent))
		abort();
	if (rc >= 0) {
		/* Whatever was not reported is still in flight. */
		if (recovery_bytes_in_flight(&r) != (uint64_t)(sent - reports) * 1200)
			abort();
		while (recovery_deadline(&r) != UINT64_MAX && reports < sent) {
			uint64_t d = recovery_deadline(&r);
			if (recovery_on_timeout(&r, d, &cb) > 0)
				break; /* a PTO: nothing more will be declared */
		}
	}
	recovery_free(&r);
	return 0;
}
