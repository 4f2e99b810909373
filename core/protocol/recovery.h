/*
 * recovery.h — sender side of RFC 9002: sent packets, RTT, loss, PTO.
 *
 * One struct recovery per session (one packet-number space).  The caller
 * (conn.c) reports every packet it sends and every ACK frame it receives;
 * recovery tells it, through callbacks, which packets were acknowledged
 * and which were lost, each identified by the opaque `meta` the caller gave
 * at send time (conn uses it to find the frames it put in that packet and
 * re-queues the lost ones).  Recovery owns the congestion controller
 * (cc.h) and gates sending by cwnd and pacing.
 *
 * Constants (RFC 9002 section 6):
 *   packet threshold   RECOVERY_PACKET_THRESHOLD = 3, raised (up to
 *                      RECOVERY_MAX_PACKET_THRESHOLD) past the reordering
 *                      distance whenever a lost packet turns out to have
 *                      been only reordered (RFC 9002 6.1.1)
 *   time threshold     9/8 x max(srtt, latest_rtt), at least 1 ms
 *   PTO                srtt + max(4 x rttvar, 1 ms) + ACK_MAX_DELAY_US,
 *                      doubled per consecutive PTO (pto_count)
 *   persistent cong.   lost ack-eliciting packets spanning
 *                      3 x (srtt + max(4 rttvar, 1 ms) + max_ack_delay)
 *
 * Storage: sent packets live in a ring ordered by packet number, grown by
 * doubling from RECOVERY_RING_INITIAL up to RECOVERY_RING_MAX records (no
 * allocation per packet).  When the ring is full, recovery_can_send() says
 * no until ACKs drain it.  Packets that are neither ack-eliciting nor in
 * flight (pure ACKs) are not stored: nobody acknowledges them.
 *
 * Packet numbers given to recovery_on_sent must strictly increase (they
 * may skip).  Times are microseconds from any fixed origin and must not
 * go backwards.  cwnd and pacing apply to in-flight packets only: a
 * pure-ACK packet may always be sent.
 *
 * Not thread-safe; one owner (the engine thread).
 */
#ifndef SRMUDP_RECOVERY_H
#define SRMUDP_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ack.h"
#include "cc.h"
#include "srmudp.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RECOVERY_PACKET_THRESHOLD 3      /* RFC 9002 kPacketThreshold */
/* Reordering beyond this many packets is left to the time threshold (9/8
 * RTT), so real losses are still found within about one RTT. */
#define RECOVERY_MAX_PACKET_THRESHOLD 64
/* Recently declared-lost packets remembered to notice a late ACK of one
 * (a spurious loss: the path reorders). */
#define RECOVERY_RECENT_LOST 32
#define RECOVERY_TIME_THRESHOLD_NUM 9    /* RFC 9002 kTimeThreshold 9/8 */
#define RECOVERY_TIME_THRESHOLD_DEN 8
#define RECOVERY_GRANULARITY_US 1000     /* RFC 9002 kGranularity */
#define RECOVERY_PERSISTENT_CONGESTION_THRESHOLD 3
#define RECOVERY_MAX_PTO_BACKOFF 16      /* cap 2^pto_count (overflow) */
/* Probes per PTO (RFC 9002 6.2.4 allows two): one lost probe on a lossy
 * path then does not cost a doubled timeout. */
#define RECOVERY_PTO_PROBES 2
#define RECOVERY_RING_INITIAL 256
/* 65536 x ~1.2 KB > CC_MAX_WINDOW_BYTES: the ring never limits a full
 * window; the bound keeps a stalled peer from costing more than ~5 MB. */
#define RECOVERY_RING_MAX 65536

/* Flags of a sent packet (recovery_on_sent, recovery_event.flags). */
enum {
	RECOVERY_ACK_ELICITING = 1, /* carries a frame other than ACK/PADDING */
	RECOVERY_IN_FLIGHT = 2,     /* counts toward bytes_in_flight / cwnd */
	RECOVERY_PMTU_PROBE = 4,    /* padded PMTU probe: loss is not congestion */
};

/* Reported to the caller for each packet acknowledged or declared lost. */
struct recovery_event {
	uint64_t pn;
	uint64_t sent_us;
	uint32_t bytes;
	uint32_t meta;  /* the caller's value from recovery_on_sent */
	uint8_t flags;  /* RECOVERY_* */
};

typedef void (*recovery_fn)(void *ctx, const struct recovery_event *ev);

/* acked/lost may be NULL.  Callbacks must not call back into recovery. */
struct recovery_callbacks {
	recovery_fn acked;
	recovery_fn lost;
	void *ctx;
};

struct sent_packet {
	uint64_t pn;
	uint64_t sent_us;
	/* delivery-rate snapshot at send time */
	uint64_t delivered;
	uint64_t delivered_us;
	uint64_t first_sent_us;
	uint32_t bytes;
	uint32_t meta;
	uint8_t flags;
	uint8_t state;          /* outstanding, acked, lost (recovery.c) */
	bool app_limited;
};

struct rtt_estimator {
	uint64_t latest_us;
	uint64_t smoothed_us;   /* CC_INITIAL_RTT_US until the first sample */
	uint64_t var_us;
	uint64_t min_us;        /* 0 until the first sample */
	uint64_t first_sample_us; /* when the first sample was taken; 0 none */
	bool has_sample;
};

struct recovery_stats {
	uint64_t packets_sent, packets_acked, packets_lost;
	uint64_t bytes_sent, bytes_acked, bytes_lost;
	uint64_t pto_count_total;          /* PTOs fired */
	uint64_t spurious_losses;          /* declared lost, then acked */
	uint64_t persistent_congestion;
};

struct recovery {
	struct sent_packet *ring;
	size_t cap, head, count;   /* records [head, head+count) mod cap */

	struct rtt_estimator rtt;
	struct cc cc;
	struct recovery_stats stats;

	uint64_t largest_sent;     /* valid if any_sent */
	uint64_t largest_acked;    /* valid if any_acked */
	bool any_sent, any_acked;
	uint64_t bytes_in_flight;
	uint64_t eliciting_in_flight; /* ack-eliciting packets outstanding */
	uint64_t last_eliciting_sent_us;
	uint64_t loss_time_us;     /* earliest time-threshold loss; 0 none */
	uint32_t pto_count;        /* consecutive PTOs (backoff exponent) */
	uint32_t probes_due;       /* PTO probes that may bypass cwnd/pacing */
	uint32_t packet_threshold; /* adaptive, RECOVERY_PACKET_THRESHOLD.. */
	struct {
		uint64_t pn;       /* UINT64_MAX: empty */
		uint64_t largest;  /* largest_acked when it was declared lost */
	} recent_lost[RECOVERY_RECENT_LOST];
	size_t recent_next;        /* ring position for the next entry */
	size_t recent_count;       /* entries that may be live */

	/* delivery-rate estimation state */
	uint64_t delivered;        /* total bytes acknowledged */
	uint64_t delivered_us;
	uint64_t first_sent_us;
	uint64_t app_limited_until; /* 'delivered' mark; 0: not app-limited */
};

/* Allocates the ring.  mtu is the current max UDP payload (pmtu_current).
 * Returns 0 or SRM_ERR_NOMEM. */
SRM_MUST_CHECK int recovery_init(struct recovery *r, enum srm_cc algo,
				 uint32_t mtu, uint64_t now_us);
void recovery_free(struct recovery *r);
/* PMTU changed: windows counted in packets follow. */
void recovery_set_mtu(struct recovery *r, uint32_t mtu);

/* Record a sent packet.  flags: RECOVERY_*.  A packet with neither
 * ACK_ELICITING nor IN_FLIGHT is only remembered as largest_sent.  An
 * ack-eliciting packet consumes one pending PTO probe. */
void recovery_on_sent(struct recovery *r, uint64_t pn, uint32_t bytes,
		      unsigned flags, uint32_t meta, uint64_t now_us);

/* The caller had cwnd room but nothing to send: mark delivery-rate samples
 * as app-limited until what is in flight now is acknowledged (so BBR does
 * not mistake an idle application for a slow path). */
void recovery_on_app_limited(struct recovery *r);

/* Process a parsed ACK frame received at now_us, in RFC 9002 order: acked
 * callbacks (ascending pn), RTT sample, window growth, then loss detection
 * with lost callbacks (ascending pn) and window reduction.  A late ACK of
 * a packet already reported lost reports nothing (it raises the packet
 * threshold).  Returns the number of newly acknowledged packets
 * (>= 0), or SRM_ERR_INVALID if it acknowledges a packet number never
 * sent (a protocol violation: the caller should close the session). */
SRM_MUST_CHECK int recovery_on_ack(struct recovery *r, const struct ack_ranges *a,
				   uint64_t now_us,
				   const struct recovery_callbacks *cb);

/* Next timer: the time-threshold loss time or the PTO, UINT64_MAX if
 * none.  Call recovery_on_timeout when now >= it. */
uint64_t recovery_deadline(const struct recovery *r);

/* Timer fired.  Declares time-threshold losses (lost callbacks) or, for a
 * PTO, doubles the backoff and returns the number of probe packets
 * (RECOVERY_PTO_PROBES) the caller must send now, ack-eliciting, bypassing
 * cwnd and pacing: new data if any, else a retransmission of the oldest
 * outstanding data (recovery_oldest_outstanding) or a PING.  Returns 0 if
 * nothing is to be sent (or the timer was not due).
 *
 * Keep PTO probes no larger than WIRE_BASE_UDP_PAYLOAD: when the path MTU
 * shrank silently (a black hole) only small packets get through, and
 * their ACKs are what lets loss detection and pmtu.c's black-hole
 * detection run at all. */
int recovery_on_timeout(struct recovery *r, uint64_t now_us,
			const struct recovery_callbacks *cb);

/* Meta of up to max oldest outstanding ack-eliciting packets, oldest
 * first, for PTO probes that resend their data.  Returns how many. */
size_t recovery_oldest_outstanding(const struct recovery *r, uint32_t *metas,
				   size_t max);

/* May a packet of `bytes` be sent at now_us?  True if a PTO probe is due,
 * else only if cwnd has room, the ring has room and pacing allows. */
bool recovery_can_send(const struct recovery *r, uint32_t bytes, uint64_t now_us);
/* cwnd room only (no pacing): bytes that may still enter flight. */
uint64_t recovery_cwnd_room(const struct recovery *r);
/* When pacing next allows a packet of `bytes` (<= now_us: now).  Returns
 * UINT64_MAX when the window (not pacing) blocks: wait for an ACK. */
uint64_t recovery_next_send_time(const struct recovery *r, uint32_t bytes,
				 uint64_t now_us);

uint64_t recovery_bytes_in_flight(const struct recovery *r);
/* PTO base, no backoff: srtt + max(4 rttvar, 1 ms) + ACK_MAX_DELAY_US. */
uint64_t recovery_pto_base(const struct recovery *r);
/* Bandwidth-delay product estimate in bytes (cc bandwidth x min RTT, at
 * least cwnd): conn sizes flow-control windows to >= 2 x this. */
uint64_t recovery_bdp(const struct recovery *r);

#ifdef __cplusplus
}
#endif
#endif
