/*
 * cc.h — congestion control and pacing, one interface, three algorithms.
 *
 *   SRM_CC_BBR      default.  Models bottleneck bandwidth (windowed max of
 *                   delivery-rate samples) and min RTT; cwnd = 2 x BDP,
 *                   pacing = gain x bandwidth.  Phases STARTUP, DRAIN,
 *                   PROBE_BW (gain cycle 1.25, 0.75, 1 x 6), PROBE_RTT.
 *                   Random loss is ignored; only a round losing more than
 *                   CC_BBR_LOSS_THRESH_PERMILLE of its packets (and at least
 *                   CC_BBR_LOSS_MIN_PACKETS), or losing > 3% while a
 *                   standing queue shows (CC_BBR_QUEUE_*), lowers
 *                   short-term bounds on bandwidth and window by
 *                   CC_BBR_BETA, as BBRv2's bw_lo/inflight_lo do.
 *   SRM_CC_CUBIC    RFC 9438 (C = 0.4, beta = 0.7, Reno-friendly region,
 *                   fast convergence).
 *   SRM_CC_NEWRENO  RFC 9002 section 7.
 *
 * The controller owns no packets: recovery.c feeds it acknowledgements
 * (with a delivery-rate sample), losses and sends, and asks for the
 * window and the next send time.  All sizes are bytes, times microseconds,
 * rates bytes per second.  Deterministic: no clock, no randomness.
 *
 * Pacing is a token bucket refilled at cc_pacing_rate(); the bucket holds
 * max(CC_PACING_BURST_PACKETS packets, CC_PACING_BURST_US of rate), so a
 * 2-core machine sends small bursts instead of arming a timer per packet.
 */
#ifndef SRMUDP_CC_H
#define SRMUDP_CC_H

#include <stdbool.h>
#include <stdint.h>

#include "srmudp.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CC_INITIAL_WINDOW_PACKETS 10 /* RFC 9002 kInitialWindow */
#define CC_MIN_WINDOW_PACKETS 2      /* RFC 9002 kMinimumWindow */
#define CC_BBR_MIN_WINDOW_PACKETS 4  /* BBR: keep the ack clock in PROBE_RTT */
/* Upper bound for any window: 64 MiB is 2 x BDP of 2.5 Gbit/s at 100 ms,
 * and keeps recovery's sent-packet ring bounded (recovery.h). */
#define CC_MAX_WINDOW_BYTES (64u << 20)
#define CC_PACING_BURST_PACKETS 10 /* burst allowance after idle/timer */
#define CC_PACING_BURST_US 1000    /* ... or 1 ms of data at high rates */
/* BBR heavy-loss response (BBRv2 style but tolerant of random loss). */
#define CC_BBR_LOSS_THRESH_PERMILLE 200 /* > 20% of a round's packets */
#define CC_BBR_LOSS_MIN_PACKETS 8       /* ... and at least 8 of them */
#define CC_BBR_BETA_PERMILLE 700        /* multiply bw_lo by 0.7 */
/* Congestion (not random) loss: a round losing > 3% (and >= 3 packets)
 * while even its smallest RTT sample shows a standing queue of
 * max(min_rtt / 16, 2 ms).  Random loss builds no queue, so it never
 * matches; a full drop-tail queue shared with other flows does, and
 * backing off there (inflight_lo = 0.7 x cwnd, bw_lo as for heavy loss,
 * both forgotten at the next bandwidth probe) is what makes sessions
 * share a bottleneck: plain BBRv1 lets a long-RTT flow's 2 x BDP window
 * starve a short-RTT one. */
#define CC_BBR_QUEUE_LOSS_THRESH_PERMILLE 30
#define CC_BBR_QUEUE_LOSS_MIN_PACKETS 3
#define CC_BBR_QUEUE_MIN_US 2000
#define CC_BBR_QUEUE_RTT_DIV 16
#define CC_BBR_BW_WINDOW_ROUNDS 10      /* bandwidth max-filter length */
#define CC_BBR_MIN_RTT_WINDOW_US 10000000 /* min_rtt expires after 10 s */
#define CC_BBR_PROBE_RTT_US 200000      /* time spent in PROBE_RTT */
#define CC_CUBIC_C_MILLI 400            /* RFC 9438 C = 0.4 */
#define CC_CUBIC_BETA_MILLI 700         /* RFC 9438 beta_cubic = 0.7 */
/* Before any RTT sample (RFC 9002 kInitialRtt). */
#define CC_INITIAL_RTT_US 333000

enum cc_bbr_state { BBR_STARTUP, BBR_DRAIN, BBR_PROBE_BW, BBR_PROBE_RTT };

/* What one ACK frame did, for cc_on_ack. */
struct cc_ack {
	uint64_t now_us;
	uint64_t acked_bytes;     /* in-flight bytes newly acknowledged */
	uint64_t prior_in_flight; /* bytes in flight before this ACK */
	uint64_t bytes_in_flight; /* after removing acked and lost bytes */
	uint64_t newest_acked_sent_us; /* send time of the newest packet acked */
	uint64_t latest_rtt_us;   /* 0: this ACK gave no RTT sample */
	uint64_t srtt_us;         /* current smoothed RTT (initial if none) */
	uint64_t min_rtt_us;      /* 0: no sample yet */
	/* Delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation),
	 * taken from the newest packet this ACK acknowledged. */
	uint64_t delivered;       /* total bytes delivered, after this ACK */
	uint64_t prior_delivered; /* total delivered when that packet was sent */
	uint64_t delivery_rate;   /* bytes/s; 0 when no valid sample */
	bool app_limited;         /* the sample was taken while app-limited */
};

/* Packets declared lost together, for cc_on_loss.  PMTU probes are never
 * reported here: their loss says nothing about congestion. */
struct cc_loss {
	uint64_t now_us;
	uint64_t lost_bytes;
	uint32_t lost_packets;
	uint64_t newest_lost_sent_us; /* starts a recovery period if newer */
	uint64_t bytes_in_flight;     /* after removing the lost bytes */
};

struct cc {
	enum srm_cc algo;
	uint32_t mtu;           /* max datagram size, bytes */
	uint64_t cwnd;
	uint64_t ssthresh;      /* UINT64_MAX until the first loss */
	uint64_t pacing_rate;   /* bytes/s */
	uint64_t recovery_start_us; /* RFC 9002 congestion recovery period */
	bool in_recovery;
	uint64_t last_srtt_us;  /* for pacing of window-based controllers */

	/* pacing token bucket */
	int64_t tokens;         /* bytes, may dip below 0 by one packet */
	uint64_t tokens_us;     /* time of the last refill */

	/* NewReno: bytes acked toward the next +1 MTU in avoidance */
	uint64_t reno_acked;

	struct {
		uint64_t w_max;        /* bytes, window before the last reduction */
		uint64_t w_last_max;   /* for fast convergence */
		uint64_t k_us;         /* time to reach w_max again */
		uint64_t epoch_us;     /* start of the avoidance epoch; 0 none */
		uint64_t w_est;        /* Reno-friendly estimate, bytes */
		uint64_t acked_accum;  /* bytes acked toward next +1 MTU growth */
	} cubic;

	struct {
		enum cc_bbr_state state;
		uint64_t bw_samples[CC_BBR_BW_WINDOW_ROUNDS]; /* max per round */
		uint64_t bw;            /* max of bw_samples: bottleneck estimate */
		uint64_t bw_lo;         /* heavy-loss bound; UINT64_MAX none */
		uint64_t inflight_lo;   /* congestion bound on cwnd; UINT64_MAX none */
		uint64_t round_min_rtt_us; /* smallest RTT sample this round */
		uint64_t min_rtt_us;    /* UINT64_MAX until sampled */
		uint64_t min_rtt_stamp_us;
		uint64_t round_count;
		uint64_t next_round_delivered;
		uint64_t round_lost_bytes, round_lost_packets;
		uint64_t round_acked_bytes, round_acked_packets;
		uint64_t full_bw;       /* STARTUP exit detection */
		uint32_t full_bw_rounds;
		bool full_bw_reached;
		uint32_t cycle_index;   /* PROBE_BW gain cycle position */
		bool cycle_lost;        /* a loss since the phase began */
		uint64_t cycle_stamp_us;
		uint64_t probe_rtt_done_us; /* 0: not yet at the low window */
		uint64_t prior_cwnd;    /* restored after PROBE_RTT */
		uint32_t pacing_gain_milli, cwnd_gain_milli;
	} bbr;
};

void cc_init(struct cc *c, enum srm_cc algo, uint32_t mtu, uint64_t now_us);
/* The datagram size changed (PMTU); windows counted in packets follow. */
void cc_set_mtu(struct cc *c, uint32_t mtu);

/* A packet of bytes entered flight at now_us (bytes_in_flight excludes it). */
void cc_on_sent(struct cc *c, uint32_t bytes, uint64_t bytes_in_flight,
		uint64_t now_us);
void cc_on_ack(struct cc *c, const struct cc_ack *a);
void cc_on_loss(struct cc *c, const struct cc_loss *l);
/* RFC 9002 7.6: collapse to the minimum window (BBR restarts STARTUP). */
void cc_on_persistent_congestion(struct cc *c, uint64_t now_us);

/* Congestion window, bytes: send while bytes_in_flight + size <= cwnd. */
uint64_t cc_cwnd(const struct cc *c);
/* Pacing rate, bytes/s. */
uint64_t cc_pacing_rate(const struct cc *c);
/* Bottleneck bandwidth estimate in bytes/s (BBR: the model; CUBIC/NewReno:
 * cwnd / srtt).  With cc_min_rtt this sizes flow-control windows to
 * >= 2 x BDP. */
uint64_t cc_bandwidth(const struct cc *c);
/* BBR's min RTT; for the others 0 (use recovery's min_rtt). */
uint64_t cc_min_rtt(const struct cc *c);

/* Earliest time a packet of `bytes` may leave under pacing (<= now_us: now). */
uint64_t cc_pacing_next(const struct cc *c, uint32_t bytes, uint64_t now_us);
/* Microseconds to wait before sending `bytes` (0: send now). */
uint64_t cc_pacing_delay(const struct cc *c, uint32_t bytes, uint64_t now_us);

const char *cc_name(enum srm_cc algo);

#ifdef __cplusplus
}
#endif
#endif
