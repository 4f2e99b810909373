/*
 * cc.c — BBR-style, CUBIC and NewReno congestion control, and pacing.
 * Interface, constants and the reason for each: cc.h and docs/TRANSPORT.md
 * "Congestion control and pacing".
 */
#include "cc.h"

#include <string.h>

#define USEC 1000000ull

/* BBR gains, in thousandths. 2885 = 2/ln 2: the smallest gain that doubles
 * the delivery rate each round in STARTUP; DRAIN uses its inverse. */
#define BBR_STARTUP_GAIN 2885
#define BBR_DRAIN_GAIN 347
#define BBR_CWND_GAIN 2000
#define BBR_PROBE_RTT_CWND_GAIN 500 /* BBRv2: half a BDP keeps bytes moving */
#define BBR_FULL_BW_GROWTH 1250     /* STARTUP ends when bw grows < 25% ... */
#define BBR_FULL_BW_ROUNDS 3        /* ... three rounds in a row */
#define BBR_CYCLE_LEN 8
#define BBR_CYCLE_START 2           /* enter PROBE_BW cruising, not probing */
/* Extra window for ACK aggregation and delayed ACKs (ack every 2nd packet). */
#define BBR_CWND_QUANTA_PACKETS 3
static const uint32_t bbr_cycle_gain[BBR_CYCLE_LEN] = {
	1250, 750, 1000, 1000, 1000, 1000, 1000, 1000,
};

/* Window-based controllers pace at a multiple of cwnd/srtt (Linux uses
 * 2x in slow start, 1.2x after): pacing only smooths, cwnd still limits. */
#define WINDOW_PACING_SS_GAIN 2000
#define WINDOW_PACING_CA_GAIN 1250

static uint64_t mul_div(uint64_t a, uint64_t b, uint64_t c)
{
	if (c == 0)
		return UINT64_MAX;
	unsigned __int128 x = (unsigned __int128)a * b / c;
	return x > UINT64_MAX ? UINT64_MAX : (uint64_t)x;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* Integer cube root (bitwise, exact floor). */
static uint64_t icbrt(uint64_t x)
{
	uint64_t y = 0;

	for (int s = 63; s >= 0; s -= 3) {
		y <<= 1;
		uint64_t b = 3 * y * (y + 1) + 1;
		if ((x >> s) >= b) {
			x -= b << s;
			y++;
		}
	}
	return y;
}

static uint64_t min_window(const struct cc *c)
{
	return (uint64_t)(c->algo == SRM_CC_BBR ? CC_BBR_MIN_WINDOW_PACKETS
						: CC_MIN_WINDOW_PACKETS) * c->mtu;
}

static uint64_t clamp_window(const struct cc *c, uint64_t w)
{
	return max_u64(min_window(c), min_u64(w, CC_MAX_WINDOW_BYTES));
}

/* ---- pacing ------------------------------------------------------------- */

static uint64_t burst_bytes(const struct cc *c)
{
	return max_u64((uint64_t)CC_PACING_BURST_PACKETS * c->mtu,
		       mul_div(c->pacing_rate, CC_PACING_BURST_US, USEC));
}

static int64_t tokens_at(const struct cc *c, uint64_t now_us)
{
	int64_t burst = (int64_t)min_u64(burst_bytes(c), INT64_MAX / 2);
	uint64_t dt = now_us > c->tokens_us ? now_us - c->tokens_us : 0;
	uint64_t add = mul_div(dt, c->pacing_rate, USEC);
	if (add >= (uint64_t)burst)
		return burst;
	int64_t t = c->tokens + (int64_t)add;
	return t > burst ? burst : t;
}

uint64_t cc_pacing_next(const struct cc *c, uint32_t bytes, uint64_t now_us)
{
	int64_t t = tokens_at(c, now_us);
	if (t >= (int64_t)bytes)
		return now_us;
	uint64_t deficit = (uint64_t)((int64_t)bytes - t);
	/* round up so the bucket really holds `bytes` at that time */
	uint64_t wait = mul_div(deficit, USEC, c->pacing_rate);
	if (wait != UINT64_MAX && mul_div(wait, c->pacing_rate, USEC) < deficit)
		wait++;
	return wait > UINT64_MAX - now_us ? UINT64_MAX : now_us + wait;
}

uint64_t cc_pacing_delay(const struct cc *c, uint32_t bytes, uint64_t now_us)
{
	uint64_t t = cc_pacing_next(c, bytes, now_us);
	return t > now_us ? t - now_us : 0;
}

static void window_pacing(struct cc *c)
{
	uint64_t gain = c->cwnd < c->ssthresh ? WINDOW_PACING_SS_GAIN
					      : WINDOW_PACING_CA_GAIN;
	uint64_t srtt = c->last_srtt_us ? c->last_srtt_us : CC_INITIAL_RTT_US;
	c->pacing_rate = max_u64(1, mul_div(c->cwnd * gain / 1000, USEC, srtt));
}

/* ---- NewReno (RFC 9002 section 7) --------------------------------------- */

/* RFC 9002 7.3.2: one reduction per round trip; packets sent before the
 * last reduction do not cause another. */
static bool in_recovery(const struct cc *c, uint64_t sent_us)
{
	return c->in_recovery && sent_us <= c->recovery_start_us;
}

static void slow_start_or(struct cc *c, const struct cc_ack *a, bool *done)
{
	*done = false;
	if (c->cwnd < c->ssthresh) {
		c->cwnd = clamp_window(c, c->cwnd + a->acked_bytes);
		*done = true;
	}
}

/* RFC 9002 7.8: do not grow a window the sender is not using. */
static bool cwnd_limited(const struct cc *c, const struct cc_ack *a)
{
	return a->prior_in_flight * 2 >= c->cwnd;
}

static void reno_on_ack(struct cc *c, const struct cc_ack *a)
{
	bool done;

	if (in_recovery(c, a->newest_acked_sent_us) || !cwnd_limited(c, a))
		return;
	slow_start_or(c, a, &done);
	if (done)
		return;
	c->reno_acked += a->acked_bytes;
	while (c->reno_acked >= c->cwnd) {
		c->reno_acked -= c->cwnd;
		c->cwnd = clamp_window(c, c->cwnd + c->mtu);
	}
}

static void reno_on_loss(struct cc *c, const struct cc_loss *l)
{
	if (in_recovery(c, l->newest_lost_sent_us))
		return;
	c->in_recovery = true;
	c->recovery_start_us = l->now_us;
	c->ssthresh = clamp_window(c, c->cwnd / 2);
	c->cwnd = c->ssthresh;
	c->reno_acked = 0;
}

/* ---- CUBIC (RFC 9438) --------------------------------------------------- */

/* W_cubic(t) = C (t - K)^3 + W_max, in bytes, t in microseconds. */
static uint64_t cubic_window(const struct cc *c, uint64_t t_us)
{
	double t = ((double)t_us - (double)c->cubic.k_us) / 1e6;
	double w = (double)CC_CUBIC_C_MILLI / 1000.0 * t * t * t * c->mtu
		 + (double)c->cubic.w_max;
	if (w < 0)
		return 0;
	if (w > (double)CC_MAX_WINDOW_BYTES)
		return CC_MAX_WINDOW_BYTES;
	return (uint64_t)w;
}

static void cubic_epoch_start(struct cc *c, uint64_t now_us)
{
	c->cubic.epoch_us = now_us ? now_us : 1;
	c->cubic.w_est = c->cwnd;
	c->cubic.acked_accum = 0;
	if (c->cwnd < c->cubic.w_max) {
		/* K = cbrt((W_max - cwnd) / C), in segments and seconds;
		 * computed as cbrt(x * 1e12) * 100 us to stay in integers. */
		double x = (double)(c->cubic.w_max - c->cwnd) / c->mtu
			 / ((double)CC_CUBIC_C_MILLI / 1000.0);
		c->cubic.k_us = icbrt((uint64_t)(x * 1e12)) * 100;
	} else {
		/* No reduction preceded (slow start ended by ssthresh):
		 * start on the convex side at the current window. */
		c->cubic.k_us = 0;
		c->cubic.w_max = c->cwnd;
	}
}

static void cubic_on_ack(struct cc *c, const struct cc_ack *a)
{
	bool done;

	if (in_recovery(c, a->newest_acked_sent_us) || !cwnd_limited(c, a))
		return;
	slow_start_or(c, a, &done);
	if (done)
		return;
	if (c->cubic.epoch_us == 0)
		cubic_epoch_start(c, a->now_us);

	uint64_t t = a->now_us - c->cubic.epoch_us;
	uint64_t rtt = a->srtt_us ? a->srtt_us : CC_INITIAL_RTT_US;
	uint64_t target = cubic_window(c, t + rtt);
	target = max_u64(c->cwnd, min_u64(target, c->cwnd + c->cwnd / 2));

	/* Reno-friendly estimate (RFC 9438 4.3): alpha = 3(1-b)/(1+b),
	 * 1 once W_est passes W_max. */
	uint64_t alpha_milli = c->cubic.w_est >= c->cubic.w_max
		? 1000
		: 3000 * (1000 - CC_CUBIC_BETA_MILLI) / (1000 + CC_CUBIC_BETA_MILLI);
	c->cubic.acked_accum += a->acked_bytes;
	uint64_t inc = mul_div(mul_div(c->cubic.acked_accum, alpha_milli, 1000),
			       c->mtu, c->cwnd);
	if (inc > 0) {
		c->cubic.w_est += inc;
		c->cubic.acked_accum = 0;
	}

	if (cubic_window(c, t) < c->cubic.w_est) {
		c->cwnd = clamp_window(c, max_u64(c->cwnd, c->cubic.w_est));
	} else {
		uint64_t grow = mul_div(target - c->cwnd, a->acked_bytes, c->cwnd);
		c->cwnd = clamp_window(c, c->cwnd + grow);
	}
}

static void cubic_on_loss(struct cc *c, const struct cc_loss *l)
{
	if (in_recovery(c, l->newest_lost_sent_us))
		return;
	c->in_recovery = true;
	c->recovery_start_us = l->now_us;
	/* Fast convergence (RFC 9438 4.7): a flow whose window shrank since
	 * the last reduction gives up bandwidth to newcomers. */
	if (c->cwnd < c->cubic.w_last_max) {
		c->cubic.w_last_max = c->cwnd;
		c->cubic.w_max = c->cwnd * (1000 + CC_CUBIC_BETA_MILLI) / 2000;
	} else {
		c->cubic.w_last_max = c->cwnd;
		c->cubic.w_max = c->cwnd;
	}
	c->ssthresh = clamp_window(c, c->cwnd * CC_CUBIC_BETA_MILLI / 1000);
	c->cwnd = c->ssthresh;
	c->cubic.epoch_us = 0;
}

/* ---- BBR ---------------------------------------------------------------- */

static uint64_t bbr_bw(const struct cc *c)
{
	return min_u64(c->bbr.bw, c->bbr.bw_lo);
}

static uint64_t bbr_bdp(const struct cc *c, uint32_t gain_milli)
{
	if (c->bbr.bw == 0 || c->bbr.min_rtt_us == UINT64_MAX)
		return (uint64_t)CC_INITIAL_WINDOW_PACKETS * c->mtu * gain_milli / 1000;
	return mul_div(mul_div(bbr_bw(c), c->bbr.min_rtt_us, USEC), gain_milli, 1000);
}

/* The BDP the window is sized from: as bbr_bdp, but with the RTT floored
 * at BBR_WINDOW_MIN_RTT_US.  Both ends are user-space engines that are
 * scheduled, batch ACKs and wake on timers, so on a sub-millisecond path
 * (loopback, a LAN, a veth) the RTT under load is many times min_rtt; a
 * window of 2 x bw x min_rtt then settles at a few packets and the rate at
 * cwnd / (scheduling delay).  Pacing keeps using the real model, and the
 * floor costs at most 1 ms of queue at the model's rate (Linux BBR's
 * extra_acked term serves the same purpose). */
#define BBR_WINDOW_MIN_RTT_US 1000
static uint64_t bbr_window_bdp(const struct cc *c, uint32_t gain_milli)
{
	if (c->bbr.bw == 0 || c->bbr.min_rtt_us == UINT64_MAX)
		return bbr_bdp(c, gain_milli);
	uint64_t rtt = max_u64(c->bbr.min_rtt_us, BBR_WINDOW_MIN_RTT_US);
	return mul_div(mul_div(bbr_bw(c), rtt, USEC), gain_milli, 1000);
}

static void bbr_set_state(struct cc *c, enum cc_bbr_state s, uint64_t now_us)
{
	c->bbr.state = s;
	switch (s) {
	case BBR_STARTUP:
		c->bbr.pacing_gain_milli = BBR_STARTUP_GAIN;
		c->bbr.cwnd_gain_milli = BBR_CWND_GAIN;
		break;
	case BBR_DRAIN:
		c->bbr.pacing_gain_milli = BBR_DRAIN_GAIN;
		c->bbr.cwnd_gain_milli = BBR_CWND_GAIN;
		break;
	case BBR_PROBE_BW:
		c->bbr.cycle_index = BBR_CYCLE_START;
		c->bbr.cycle_stamp_us = now_us;
		c->bbr.pacing_gain_milli = bbr_cycle_gain[c->bbr.cycle_index];
		c->bbr.cwnd_gain_milli = BBR_CWND_GAIN;
		break;
	case BBR_PROBE_RTT:
		c->bbr.pacing_gain_milli = 1000;
		c->bbr.cwnd_gain_milli = BBR_CWND_GAIN;
		c->bbr.probe_rtt_done_us = 0;
		c->bbr.prior_cwnd = c->cwnd;
		break;
	}
}

static void bbr_reset_model(struct cc *c, uint64_t now_us)
{
	memset(c->bbr.bw_samples, 0, sizeof(c->bbr.bw_samples));
	c->bbr.bw = 0;
	c->bbr.bw_lo = UINT64_MAX;
	c->bbr.inflight_lo = UINT64_MAX;
	c->bbr.round_min_rtt_us = UINT64_MAX;
	c->bbr.full_bw = 0;
	c->bbr.full_bw_rounds = 0;
	c->bbr.full_bw_reached = false;
	bbr_set_state(c, BBR_STARTUP, now_us);
}

static void bbr_update_bw(struct cc *c, const struct cc_ack *a)
{
	uint64_t *slot = &c->bbr.bw_samples[c->bbr.round_count % CC_BBR_BW_WINDOW_ROUNDS];

	/* An app-limited sample only says the path is at least that fast. */
	if (a->delivery_rate == 0 || (a->app_limited && a->delivery_rate < c->bbr.bw))
		return;
	if (a->delivery_rate > *slot)
		*slot = a->delivery_rate;
	if (*slot > c->bbr.bw)
		c->bbr.bw = *slot;
}

static void bbr_recompute_bw(struct cc *c)
{
	c->bbr.bw = 0;
	for (size_t i = 0; i < CC_BBR_BW_WINDOW_ROUNDS; i++)
		c->bbr.bw = max_u64(c->bbr.bw, c->bbr.bw_samples[i]);
}

/* End of a round trip: judge its loss rate, age the bandwidth filter. */
static void bbr_round_end(struct cc *c, const struct cc_ack *a)
{
	uint64_t lost = c->bbr.round_lost_bytes, total = lost + c->bbr.round_acked_bytes;
	bool heavy = c->bbr.round_lost_packets >= CC_BBR_LOSS_MIN_PACKETS &&
		     lost * 1000 > total * CC_BBR_LOSS_THRESH_PERMILLE;
	uint64_t min_rtt = c->bbr.min_rtt_us;
	bool queue = min_rtt != UINT64_MAX && c->bbr.round_min_rtt_us != UINT64_MAX &&
		     c->bbr.round_min_rtt_us > min_rtt + max_u64(min_rtt / CC_BBR_QUEUE_RTT_DIV, CC_BBR_QUEUE_MIN_US);
	bool congested = queue && c->bbr.round_lost_packets >= CC_BBR_QUEUE_LOSS_MIN_PACKETS &&
			 lost * 1000 > total * CC_BBR_QUEUE_LOSS_THRESH_PERMILLE;

	if (heavy || congested) {
		uint64_t base = min_u64(c->cwnd, c->bbr.inflight_lo);
		c->bbr.inflight_lo = max_u64(min_window(c),
					     mul_div(base, CC_BBR_BETA_PERMILLE, 1000));
	}
	if (heavy || congested) {
		/* BBRv2 bw_lo = max(bw_latest, beta x bw_lo): back off, but
		 * never below what the path delivered this round. */
		uint64_t cur = bbr_bw(c);
		uint64_t latest = c->bbr.bw_samples[c->bbr.round_count % CC_BBR_BW_WINDOW_ROUNDS];
		c->bbr.bw_lo = max_u64(min_u64(latest, cur),
				       mul_div(cur, CC_BBR_BETA_PERMILLE, 1000));
		if (c->bbr.bw_lo == 0)
			c->bbr.bw_lo = UINT64_MAX;
		if (c->bbr.state == BBR_STARTUP)
			c->bbr.full_bw_reached = true;
	}
	/* STARTUP exit: bandwidth stopped growing by 25% for 3 rounds. */
	if (!c->bbr.full_bw_reached && !a->app_limited && c->bbr.bw > 0) {
		if (c->bbr.bw * 1000 >= c->bbr.full_bw * BBR_FULL_BW_GROWTH) {
			c->bbr.full_bw = c->bbr.bw;
			c->bbr.full_bw_rounds = 0;
		} else if (++c->bbr.full_bw_rounds >= BBR_FULL_BW_ROUNDS) {
			c->bbr.full_bw_reached = true;
		}
	}
	c->bbr.round_lost_bytes = c->bbr.round_lost_packets = 0;
	c->bbr.round_acked_bytes = c->bbr.round_acked_packets = 0;
	c->bbr.round_min_rtt_us = UINT64_MAX;
	c->bbr.round_count++;
	c->bbr.bw_samples[c->bbr.round_count % CC_BBR_BW_WINDOW_ROUNDS] = 0;
	bbr_recompute_bw(c);
}

static void bbr_advance_cycle(struct cc *c, const struct cc_ack *a)
{
	uint32_t gain = c->bbr.pacing_gain_milli;
	bool full = a->now_us - c->bbr.cycle_stamp_us > c->bbr.min_rtt_us;
	bool next;

	if (gain > 1000) /* probing: until the pipe holds gain x BDP or
			  * the path starts dropping (a bound may keep the
			  * pipe from ever filling) */
		next = full && (c->bbr.cycle_lost || a->prior_in_flight >= bbr_bdp(c, gain));
	else if (gain < 1000) /* draining: stop as soon as the queue is gone */
		next = full || a->bytes_in_flight <= bbr_bdp(c, 1000);
	else
		next = full;
	if (!next)
		return;
	c->bbr.cycle_index = (c->bbr.cycle_index + 1) % BBR_CYCLE_LEN;
	c->bbr.cycle_stamp_us = a->now_us;
	c->bbr.cycle_lost = false;
	c->bbr.pacing_gain_milli = bbr_cycle_gain[c->bbr.cycle_index];
	if (c->bbr.cycle_index == 0) {
		/* probing again: forget the bounds */
		c->bbr.bw_lo = UINT64_MAX;
		c->bbr.inflight_lo = UINT64_MAX;
	}
}

static void bbr_update_min_rtt(struct cc *c, const struct cc_ack *a)
{
	bool expired = a->now_us > c->bbr.min_rtt_stamp_us + CC_BBR_MIN_RTT_WINDOW_US;

	if (a->latest_rtt_us && (a->latest_rtt_us <= c->bbr.min_rtt_us || expired)) {
		c->bbr.min_rtt_us = a->latest_rtt_us;
		c->bbr.min_rtt_stamp_us = a->now_us;
	}
	if (expired && c->bbr.state != BBR_PROBE_RTT && c->bbr.min_rtt_us != UINT64_MAX)
		bbr_set_state(c, BBR_PROBE_RTT, a->now_us);
	if (c->bbr.state != BBR_PROBE_RTT)
		return;
	uint64_t low = max_u64(min_window(c), bbr_bdp(c, BBR_PROBE_RTT_CWND_GAIN));
	if (c->bbr.probe_rtt_done_us == 0 && a->bytes_in_flight <= low) {
		c->bbr.probe_rtt_done_us = a->now_us + CC_BBR_PROBE_RTT_US;
	} else if (c->bbr.probe_rtt_done_us && a->now_us >= c->bbr.probe_rtt_done_us) {
		c->bbr.min_rtt_stamp_us = a->now_us;
		c->cwnd = max_u64(c->cwnd, c->bbr.prior_cwnd);
		bbr_set_state(c, c->bbr.full_bw_reached ? BBR_PROBE_BW : BBR_STARTUP,
			      a->now_us);
	}
}

static void bbr_on_ack(struct cc *c, const struct cc_ack *a)
{
	c->bbr.round_acked_bytes += a->acked_bytes;
	c->bbr.round_acked_packets++;
	if (a->latest_rtt_us && a->latest_rtt_us < c->bbr.round_min_rtt_us)
		c->bbr.round_min_rtt_us = a->latest_rtt_us;
	bbr_update_bw(c, a);
	if (a->prior_delivered >= c->bbr.next_round_delivered) {
		c->bbr.next_round_delivered = a->delivered;
		bbr_round_end(c, a);
	}
	if (c->bbr.min_rtt_us != UINT64_MAX || a->latest_rtt_us)
		bbr_update_min_rtt(c, a);

	if (c->bbr.state == BBR_STARTUP && c->bbr.full_bw_reached)
		bbr_set_state(c, BBR_DRAIN, a->now_us);
	if (c->bbr.state == BBR_DRAIN && a->bytes_in_flight <= bbr_bdp(c, 1000))
		bbr_set_state(c, BBR_PROBE_BW, a->now_us);
	if (c->bbr.state == BBR_PROBE_BW)
		bbr_advance_cycle(c, a);

	/* Window: cwnd_gain x BDP plus a few packets for ACK aggregation.
	 * Losses never shrink it; only the model (bw_lo) does. */
	uint64_t target = bbr_window_bdp(c, c->bbr.cwnd_gain_milli) +
			  (uint64_t)BBR_CWND_QUANTA_PACKETS * c->mtu;
	if (c->bbr.full_bw_reached)
		c->cwnd = min_u64(c->cwnd + a->acked_bytes, target);
	else if (c->cwnd < target || a->delivered < (uint64_t)CC_INITIAL_WINDOW_PACKETS * c->mtu)
		c->cwnd += a->acked_bytes;
	if (c->bbr.state == BBR_PROBE_RTT)
		c->cwnd = min_u64(c->cwnd, max_u64(min_window(c),
						   bbr_bdp(c, BBR_PROBE_RTT_CWND_GAIN)));
	c->cwnd = min_u64(c->cwnd, c->bbr.inflight_lo);
	c->cwnd = clamp_window(c, c->cwnd);

	/* Pacing: gain x model bandwidth; before the first sample, gain x
	 * initial window per RTT.  STARTUP never lowers the rate. */
	uint64_t rate;
	if (c->bbr.bw == 0) {
		uint64_t srtt = a->srtt_us ? a->srtt_us : CC_INITIAL_RTT_US;
		rate = mul_div(c->cwnd, (uint64_t)c->bbr.pacing_gain_milli * 1000, srtt);
	} else {
		rate = mul_div(bbr_bw(c), c->bbr.pacing_gain_milli, 1000);
	}
	if (c->bbr.state == BBR_STARTUP && rate < c->pacing_rate)
		rate = c->pacing_rate;
	c->pacing_rate = max_u64(rate, 1);
}

static void bbr_on_loss(struct cc *c, const struct cc_loss *l)
{
	c->bbr.round_lost_bytes += l->lost_bytes;
	c->bbr.round_lost_packets += l->lost_packets;
	c->bbr.cycle_lost = true;
}

/* ---- interface ---------------------------------------------------------- */

void cc_init(struct cc *c, enum srm_cc algo, uint32_t mtu, uint64_t now_us)
{
	memset(c, 0, sizeof(*c));
	c->algo = algo;
	c->mtu = mtu ? mtu : 1200;
	c->cwnd = (uint64_t)CC_INITIAL_WINDOW_PACKETS * c->mtu;
	c->ssthresh = UINT64_MAX;
	c->last_srtt_us = CC_INITIAL_RTT_US;
	c->bbr.min_rtt_us = UINT64_MAX;
	c->bbr.min_rtt_stamp_us = now_us;
	c->bbr.bw_lo = UINT64_MAX;
	if (algo == SRM_CC_BBR) {
		bbr_reset_model(c, now_us);
		c->pacing_rate = mul_div(c->cwnd, (uint64_t)BBR_STARTUP_GAIN * 1000,
					 CC_INITIAL_RTT_US);
	} else {
		window_pacing(c);
	}
	c->tokens = (int64_t)burst_bytes(c);
	c->tokens_us = now_us;
}

void cc_set_mtu(struct cc *c, uint32_t mtu)
{
	if (mtu == 0)
		return;
	c->mtu = mtu;
	c->cwnd = clamp_window(c, c->cwnd);
	if (c->ssthresh != UINT64_MAX)
		c->ssthresh = clamp_window(c, c->ssthresh);
}

void cc_on_sent(struct cc *c, uint32_t bytes, uint64_t bytes_in_flight,
		uint64_t now_us)
{
	(void)bytes_in_flight;
	c->tokens = tokens_at(c, now_us) - (int64_t)bytes;
	/* The bucket may owe at most one burst (PTO probes bypass pacing). */
	int64_t floor = -(int64_t)min_u64(burst_bytes(c), INT64_MAX / 2);
	if (c->tokens < floor)
		c->tokens = floor;
	c->tokens_us = now_us;
}

void cc_on_ack(struct cc *c, const struct cc_ack *a)
{
	if (a->srtt_us)
		c->last_srtt_us = a->srtt_us;
	switch (c->algo) {
	case SRM_CC_BBR:
		bbr_on_ack(c, a);
		return;
	case SRM_CC_CUBIC:
		cubic_on_ack(c, a);
		break;
	case SRM_CC_NEWRENO:
		reno_on_ack(c, a);
		break;
	}
	window_pacing(c);
}

void cc_on_loss(struct cc *c, const struct cc_loss *l)
{
	if (l->lost_packets == 0)
		return;
	switch (c->algo) {
	case SRM_CC_BBR:
		bbr_on_loss(c, l);
		return;
	case SRM_CC_CUBIC:
		cubic_on_loss(c, l);
		break;
	case SRM_CC_NEWRENO:
		reno_on_loss(c, l);
		break;
	}
	window_pacing(c);
}

void cc_on_persistent_congestion(struct cc *c, uint64_t now_us)
{
	if (c->algo == SRM_CC_BBR) {
		/* The path changed or went dark: relearn it from scratch. */
		c->cwnd = min_window(c);
		bbr_reset_model(c, now_us);
		c->bbr.min_rtt_us = UINT64_MAX;
		c->bbr.min_rtt_stamp_us = now_us;
		return;
	}
	c->cwnd = min_window(c);
	c->cubic.epoch_us = 0;
	c->cubic.w_max = c->cubic.w_last_max = 0;
	c->in_recovery = false;
	window_pacing(c);
}

uint64_t cc_cwnd(const struct cc *c) { return c->cwnd; }
uint64_t cc_pacing_rate(const struct cc *c) { return c->pacing_rate; }

uint64_t cc_bandwidth(const struct cc *c)
{
	if (c->algo == SRM_CC_BBR && c->bbr.bw > 0)
		return bbr_bw(c);
	uint64_t srtt = c->last_srtt_us ? c->last_srtt_us : CC_INITIAL_RTT_US;
	return mul_div(c->cwnd, USEC, srtt);
}

uint64_t cc_min_rtt(const struct cc *c)
{
	return c->algo == SRM_CC_BBR && c->bbr.min_rtt_us != UINT64_MAX
		? c->bbr.min_rtt_us : 0;
}

const char *cc_name(enum srm_cc algo)
{
	switch (algo) {
	case SRM_CC_BBR:
		return "bbr";
	case SRM_CC_CUBIC:
		return "cubic";
	case SRM_CC_NEWRENO:
		return "newreno";
	}
	return "?";
}
