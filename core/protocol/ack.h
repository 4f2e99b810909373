/*
 * ack.h — which packet numbers we received, and the ACK frame that says so.
 *
 * Receiver side of RFC 9002 loss recovery.  The tracker remembers received
 * packet numbers as at most ACK_MAX_RANGES disjoint ranges (the newest
 * ones; the oldest range is forgotten when a new gap would exceed the
 * bound) and decides when an ACK is due.  Sans-I/O: the caller passes the
 * current time and asks for the deadline.
 *
 * Wire format (inside a decrypted DATA packet, QUIC varints, wire.h):
 *
 *   FRAME_ACK | largest | ack_delay_us | range_count | first_range
 *             | (gap | range_len) * range_count
 *
 *   largest      largest packet number acknowledged
 *   ack_delay_us microseconds between receiving `largest` and sending
 *                this frame (the peer subtracts it from its RTT sample)
 *   range_count  number of (gap, range_len) pairs after the first range
 *   first_range  the first range is [largest - first_range, largest]
 *   gap          next range's hi = previous lo - gap - 2
 *   range_len    next range is [hi - range_len, hi]
 *
 * Ranges are strictly descending and never touch (gap >= 0 implies at least
 * one missing packet between them).  A frame whose ranges would go below
 * packet number 0, or with range_count >= ACK_MAX_RANGES, is rejected.
 */
#ifndef SRMUDP_ACK_H
#define SRMUDP_ACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srmudp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bound on remembered and transmitted ranges: 64 ranges describe the
 * recent history of even a 10% lossy window while keeping a worst-case
 * ACK frame (~1 + 4*8 + 63*2*8 bytes) inside one minimum-size packet. */
#define ACK_MAX_RANGES 64
/* How long a receiver may sit on an ack-eliciting packet (RFC 9000
 * max_ack_delay).  Both sides use the same constant; recovery.h adds it
 * to the PTO. */
#define ACK_MAX_DELAY_US 25000
/* Acknowledge at once after this many ack-eliciting packets (RFC 9000
 * 13.2.2: every second packet keeps the sender's clock running). */
#define ACK_ELICITING_THRESHOLD 2
/* A range goes into this many ACK frames after it last changed, then is
 * left out (the gap before the next range reported simply widens).  The
 * sender has processed it by then unless that many ACKs in a row were
 * lost, and then it only retransmits spuriously.  Without this every ACK
 * would repeat all 64 ranges: ~200 bytes per ACK at 1% loss, and the
 * sender's work per ACK grows with it. */
#define ACK_RANGE_REPEATS 4
/* Largest encoded ACK frame: type + 4 header varints + 2 per extra range. */
#define ACK_FRAME_MAX_BYTES (1 + 4 * 8 + (ACK_MAX_RANGES - 1) * 2 * 8)

/* An inclusive range of packet numbers, lo <= hi. */
struct ack_range {
	uint64_t lo, hi;
};

/* A decoded ACK frame.  r[0] is the highest range (r[0].hi == largest),
 * then strictly descending and non-adjacent. */
struct ack_ranges {
	uint64_t largest;
	uint64_t ack_delay_us;
	size_t count; /* 1 .. ACK_MAX_RANGES */
	struct ack_range r[ACK_MAX_RANGES];
};

struct ack_tracker {
	struct ack_range r[ACK_MAX_RANGES]; /* descending, like ack_ranges */
	uint8_t sent[ACK_MAX_RANGES];       /* ACK frames carrying r[i] since
					     * it last changed */
	size_t count;
	uint64_t largest_recv_us;   /* when r[0].hi arrived */
	uint64_t deadline_us;       /* UINT64_MAX: no ACK pending */
	uint32_t unacked_eliciting; /* ack-eliciting packets since last ACK */
	bool pending;               /* something new to acknowledge */
	bool immediate;             /* reordering/gap seen: ACK now */
};

void ack_tracker_init(struct ack_tracker *t);

/* Record that packet pn was received (authenticated) at now_us.
 * Returns 1 if pn is new, 0 if it is a duplicate of a remembered packet
 * or older than everything remembered (the caller may still process it:
 * replay protection is the crypto layer's job, this is only bookkeeping). */
int ack_tracker_on_packet(struct ack_tracker *t, uint64_t pn, bool ack_eliciting,
			  uint64_t now_us);

/* When the next ACK must be sent: UINT64_MAX if none is pending, a time
 * <= now if it is due immediately (2 ack-eliciting packets, or a gap or
 * reordering was seen), else first-unacked-receive + ACK_MAX_DELAY_US.
 * Only ack-eliciting packets arm it; a pending non-eliciting receipt is
 * acknowledged whenever ack_frame_write is next called. */
uint64_t ack_tracker_deadline(const struct ack_tracker *t);
bool ack_tracker_due(const struct ack_tracker *t, uint64_t now_us);
/* true if ack_frame_write would write something new (use it to piggyback
 * an ACK on an outgoing data packet even before it is due). */
bool ack_tracker_pending(const struct ack_tracker *t);

/* Write an ACK frame describing the remembered ranges into buf: the
 * newest range always, older ones until each was sent ACK_RANGE_REPEATS
 * times since it last changed.  If cap is too small, the newest ranges
 * that fit are written.  Returns bytes written (and clears the pending
 * state and deadline), or 0 if nothing was ever received or not even one
 * range fits. */
size_t ack_frame_write(struct ack_tracker *t, uint64_t now_us, uint8_t *buf,
		       size_t cap);

/* Forget everything below pn: the peer has seen an ACK of ours covering
 * it (optional "ack of ack" pruning; the range bound holds regardless). */
void ack_tracker_forget_below(struct ack_tracker *t, uint64_t pn);

/* Encode a ranges struct (used by ack_frame_write; exposed for tests).
 * Returns bytes written, 0 if it does not fit or a is not well formed. */
size_t ack_frame_encode(const struct ack_ranges *a, uint8_t *buf, size_t cap);

/* Parse an ACK frame starting at p[0] == FRAME_ACK.  On success fills out,
 * sets *consumed and returns 0.  Returns SRM_ERR_INVALID for a wrong type,
 * truncated input, a range below packet number 0, range_count >=
 * ACK_MAX_RANGES, or a value above VARINT_MAX. */
SRM_MUST_CHECK int ack_frame_parse(const uint8_t *p, size_t len,
				   struct ack_ranges *out, size_t *consumed);

#ifdef __cplusplus
}
#endif
#endif
