/*
 * conn.c — the per-peer transport: packets in and out, timers, and the
 * sent-packet log that turns recovery's ack/loss reports back into stream
 * ranges and control frames.  conn_stream.c has the stream side.
 *
 * A packet is built in this order: ACK (if due, or piggybacked), the
 * connection's own frames (PATH_*, CLOSE, orphan RESETs, MAX_DATA), the
 * streams' control frames (OPEN, ACCEPT, MAX_STREAM_DATA, RESET), then
 * stream data round-robin, one chunk per stream in turn; a PING when
 * nothing else elicits an ACK but one is wanted (keepalive, PTO probe,
 * the very first packet).  Every ack-eliciting packet gets a slot in the
 * log (its recovery meta) listing what it carried, so a loss re-queues
 * exactly the ranges and frames that still matter.
 */
#include <stdlib.h>

#include "conn_priv.h"

#define LOG_NONE UINT32_MAX

/* ---- Sent-packet log ---------------------------------------------------- */

static int log_grow(struct conn *c)
{
	uint32_t ncap = c->log_cap ? c->log_cap * 2 : SENT_LOG_INITIAL;
	if (ncap > RECOVERY_RING_MAX)
		ncap = RECOVERY_RING_MAX;
	if (ncap <= c->log_cap)
		return SRM_ERR_NOMEM;
	struct sent_rec *l = realloc(c->log, (size_t)ncap * sizeof(*l));
	if (!l)
		return SRM_ERR_NOMEM;
	for (uint32_t i = c->log_cap; i < ncap; i++) {
		l[i].in_use = false;
		l[i].next_free = i + 1 < ncap ? i + 1 : c->log_free;
	}
	c->log_free = c->log_cap;
	c->log = l;
	c->log_cap = ncap;
	return 0;
}

static uint32_t log_alloc(struct conn *c)
{
	if (c->log_free == LOG_NONE && log_grow(c) < 0)
		return LOG_NONE;
	uint32_t m = c->log_free;
	struct sent_rec *r = &c->log[m];
	c->log_free = r->next_free;
	r->in_use = true;
	r->nframes = 0;
	r->probe = false;
	r->size = 0;
	c->log_used++;
	return m;
}

static void log_release(struct conn *c, uint32_t m)
{
	if (m >= c->log_cap || !c->log[m].in_use)
		return;
	c->log[m].in_use = false;
	c->log[m].next_free = c->log_free;
	c->log_free = m;
	c->log_used--;
}

static void log_frame(struct sent_rec *r, struct sent_frame f)
{
	if (r->nframes < SENT_FRAMES_MAX)
		r->f[r->nframes++] = f;
}

/* ---- Recovery callbacks ------------------------------------------------- */

static void pmtu_result(struct conn *c, const struct sent_rec *r, bool acked, uint64_t now)
{
	uint32_t before = pmtu_current(&c->pmtu);
	if (r->probe) {
		if (acked)
			pmtu_on_probe_acked(&c->pmtu, r->size, now);
		else
			pmtu_on_probe_lost(&c->pmtu, r->size, now);
	} else if (acked) {
		pmtu_on_packet_acked(&c->pmtu, r->size, now);
	} else {
		pmtu_on_packet_lost(&c->pmtu, r->size, now);
	}
	if (pmtu_current(&c->pmtu) != before)
		c->mtu_changed = true; /* recovery_set_mtu after the callbacks */
}

static void on_acked(void *ctx, const struct recovery_event *ev)
{
	struct conn *c = ctx;
	if (ev->meta >= c->log_cap || !c->log[ev->meta].in_use)
		return;
	struct sent_rec *r = &c->log[ev->meta];
	pmtu_result(c, r, true, c->now_us);
	for (unsigned i = 0; i < r->nframes; i++) {
		const struct sent_frame *f = &r->f[i];
		struct cstream *cs = conn_find(c, f->id);
		if (!cs)
			continue;
		if (f->type == FRAME_STREAM) {
			uint64_t b0 = stream_send_buffered(&cs->s);
			stream_send_acked(&cs->s, f->off, f->len, f->fin);
			c->tx_buffered -= b0 - stream_send_buffered(&cs->s);
			conn_stream_after_ack(c, cs);
		} else if (f->type == FRAME_RESET && cs->s.state == STREAM_RESET) {
			cs->reset_acked = true;
			conn_stream_maybe_free(c, cs);
		}
	}
	log_release(c, ev->meta);
}

static void on_lost(void *ctx, const struct recovery_event *ev)
{
	struct conn *c = ctx;
	if (ev->meta >= c->log_cap || !c->log[ev->meta].in_use)
		return;
	struct sent_rec *r = &c->log[ev->meta];
	pmtu_result(c, r, false, c->now_us);
	for (unsigned i = 0; i < r->nframes; i++) {
		const struct sent_frame *f = &r->f[i];
		if (f->type == FRAME_MAX_DATA) {
			c->need_max_data = true;
			continue;
		}
		if (f->type == FRAME_CLOSE) {
			c->need_close = c->closing;
			continue;
		}
		struct cstream *cs = conn_find(c, f->id);
		if (!cs) {
			if (f->type == FRAME_RESET && f->orphan && c->n_orphans < ORPHAN_RESETS_MAX)
				c->orphans[c->n_orphans++] = (struct orphan_reset){ f->id, f->reason };
			continue;
		}
		enum stream_state st = cs->s.state;
		switch (f->type) {
		case FRAME_STREAM:
			stream_send_lost(&cs->s, f->off, f->len, f->fin);
			conn_stream_enqueue(c, cs);
			break;
		case FRAME_OPEN:
			if (st == STREAM_OPENING)
				conn_stream_ctl(c, cs, CTL_OPEN);
			break;
		case FRAME_ACCEPT:
			if (st == STREAM_OPEN && !cs->local)
				conn_stream_ctl(c, cs, CTL_ACCEPT);
			break;
		case FRAME_RESET:
			if (st == STREAM_RESET && !cs->reset_acked)
				conn_stream_ctl(c, cs, CTL_RESET);
			break;
		case FRAME_MAX_STREAM_DATA:
			if (st == STREAM_OPEN && !cs->s.rx.fin_known)
				conn_stream_ctl(c, cs, CTL_MAX_STREAM_DATA);
			break;
		default:
			break;
		}
	}
	log_release(c, ev->meta);
}

static void apply_mtu(struct conn *c)
{
	if (c->mtu_changed) {
		c->mtu_changed = false;
		recovery_set_mtu(&c->rec, pmtu_current(&c->pmtu));
	}
}

/* ---- Lifecycle ---------------------------------------------------------- */

struct conn *conn_new(const struct conn_config *cfg, uint64_t now_us)
{
	if (!cfg || (cfg->stream_id_parity != 0 && cfg->stream_id_parity != 1))
		return NULL;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cfg = *cfg;
	if (!c->cfg.idle_timeout_ms)
		c->cfg.idle_timeout_ms = CONN_DEFAULT_IDLE_TIMEOUT_MS;
	if (!c->cfg.keepalive_ms)
		c->cfg.keepalive_ms = CONN_DEFAULT_KEEPALIVE_MS;
	if (!c->cfg.open_timeout_ms)
		c->cfg.open_timeout_ms = CONN_DEFAULT_OPEN_TIMEOUT_MS;
	if (!c->cfg.max_streams)
		c->cfg.max_streams = CONN_DEFAULT_MAX_STREAMS;
	if (!c->cfg.max_udp_payload)
		c->cfg.max_udp_payload = WIRE_MAX_UDP_PAYLOAD;
	pmtu_init(&c->pmtu, c->cfg.max_udp_payload, now_us);
	if (recovery_init(&c->rec, c->cfg.cc, pmtu_current(&c->pmtu), now_us) < 0) {
		free(c);
		return NULL;
	}
	ack_tracker_init(&c->acks);
	rangeset_init(&c->peer_ids, PEER_IDS_RANGES_MAX);
	dl_init(&c->send_q);
	dl_init(&c->ctl_q);
	dl_init(&c->ev_q);
	dl_init(&c->open_q);
	dl_init(&c->wblock_q);
	c->log_free = LOG_NONE;
	if (log_grow(c) < 0) {
		recovery_free(&c->rec);
		free(c);
		return NULL;
	}
	c->next_local_id = (uint64_t)c->cfg.stream_id_parity;
	c->rx_max = c->rx_window = c->tx_max = SESSION_WINDOW_INITIAL;
	c->now_us = c->last_recv_us = c->last_send_us = c->rx_window_start_us = now_us;
	return c;
}

void conn_free(struct conn *c)
{
	if (!c)
		return;
	conn_free_streams(c);
	compress_ctx_free(&c->zstd);
	recovery_free(&c->rec);
	rangeset_free(&c->peer_ids);
	free(c->log);
	free(c);
}

size_t conn_mtu_payload(const struct conn *c)
{
	return pmtu_current(&c->pmtu) - WIRE_DATA_OVERHEAD;
}

void conn_on_too_big(struct conn *c, uint32_t udp_size, uint32_t mtu_hint, uint64_t now_us)
{
	uint32_t before = pmtu_current(&c->pmtu);
	pmtu_on_too_big(&c->pmtu, udp_size, mtu_hint, now_us);
	if (pmtu_current(&c->pmtu) != before)
		recovery_set_mtu(&c->rec, pmtu_current(&c->pmtu));
}

void conn_set_max_udp_payload(struct conn *c, uint32_t max, uint64_t now_us)
{
	if (pmtu_set_max(&c->pmtu, max, now_us))
		recovery_set_mtu(&c->rec, pmtu_current(&c->pmtu));
}

int conn_is_dead(const struct conn *c)
{
	return c->dead;
}

static void die(struct conn *c, uint32_t reason, bool by_peer)
{
	if (c->dead)
		return;
	c->dead = true;
	c->closed_by_peer = by_peer;
	c->dead_reason = reason;
	conn_kill_streams(c, by_peer ? RESET_SHUTDOWN : RESET_TIMEOUT, false);
	c->ev_conn = 1;
}

void conn_close(struct conn *c, uint32_t reason)
{
	if (c->dead || c->closing)
		return;
	conn_kill_streams(c, RESET_SHUTDOWN, true);
	c->closing = true;
	c->need_close = true;
	c->close_reason = reason;
}

void conn_path_challenge(struct conn *c, const uint8_t data[8])
{
	memcpy(c->challenge.b, data, FRAME_PATH_DATA_BYTES);
	c->need_challenge = true;
}

/* ---- Building packets --------------------------------------------------- */

static bool conn_frames_pending(const struct conn *c)
{
	return c->n_path_resp || c->need_challenge || c->n_orphans || c->need_max_data ||
	       (c->need_close && !c->close_sent);
}

/* Is there anything a stream could send now?  send_q may hold streams only
 * blocked by the session credit, which do not count. */
static bool streams_sendable(const struct conn *c)
{
	if (!dl_empty(&c->ctl_q))
		return true;
	if (dl_empty(&c->send_q))
		return false;
	if (c->tx_max > c->tx_total)
		return true;
	for (const struct dl *n = c->send_q.next; n != &c->send_q; n = n->next) {
		const struct cstream *cs = dl_entry(n, send_node);
		uint64_t o;
		size_t l;
		bool fin;
		if (stream_send_next(&cs->s, 1024, 0, &o, &l, &fin))
			return true;
	}
	return false;
}

static bool want_ping(const struct conn *c, uint64_t now)
{
	return !c->ever_sent || c->rec.probes_due > 0 ||
	       now - c->last_send_us >= (uint64_t)c->cfg.keepalive_ms * 1000;
}

struct pkt {
	uint8_t *buf;
	size_t off, room;
	struct sent_rec *rec;
	bool eliciting, retransmit;
};

static bool pkt_full(const struct pkt *p)
{
	return p->rec && p->rec->nframes >= SENT_FRAMES_MAX;
}

static void put_conn_frames(struct conn *c, struct pkt *p)
{
	size_t n;
	while (c->n_path_resp > 0) {
		n = frame_put_path(p->buf + p->off, p->room - p->off, FRAME_PATH_RESPONSE,
				   c->path_resp[c->n_path_resp - 1].b);
		if (!n)
			return;
		p->off += n;
		p->eliciting = true;
		c->n_path_resp--;
	}
	if (c->need_challenge) {
		n = frame_put_path(p->buf + p->off, p->room - p->off, FRAME_PATH_CHALLENGE,
				   c->challenge.b);
		if (!n)
			return;
		p->off += n;
		p->eliciting = true;
		c->need_challenge = false;
	}
	if (c->need_close && !c->close_sent) {
		n = frame_put_close(p->buf + p->off, p->room - p->off, c->close_reason);
		if (!n)
			return;
		p->off += n;
		p->eliciting = true;
		c->close_sent = true;
		c->need_close = false;
		log_frame(p->rec, (struct sent_frame){ .type = FRAME_CLOSE });
	}
	while (c->n_orphans > 0 && !pkt_full(p)) {
		struct orphan_reset *o = &c->orphans[c->n_orphans - 1];
		n = frame_put_reset(p->buf + p->off, p->room - p->off, o->id, o->reason, 0);
		if (!n)
			return;
		p->off += n;
		p->eliciting = true;
		log_frame(p->rec, (struct sent_frame){ .type = FRAME_RESET, .id = o->id,
						      .reason = o->reason, .orphan = true });
		c->n_orphans--;
	}
	if (c->need_max_data && !pkt_full(p)) {
		n = frame_put_max_data(p->buf + p->off, p->room - p->off, c->rx_max);
		if (!n)
			return;
		p->off += n;
		p->eliciting = true;
		log_frame(p->rec, (struct sent_frame){ .type = FRAME_MAX_DATA, .off = c->rx_max });
		c->need_max_data = false;
	}
}

/* One stream's control frames; false when the packet is full. */
static bool put_stream_ctl(struct pkt *p, struct cstream *cs)
{
	uint64_t id = cs->s.id;
	if (cs->s.state == STREAM_RESET)
		cs->ctl &= CTL_RESET;
	while (cs->ctl) {
		size_t n = 0, cap = p->room - p->off;
		uint8_t *b = p->buf + p->off;
		uint32_t flag = cs->ctl & -cs->ctl;
		if (pkt_full(p))
			return false;
		switch (flag) {
		case CTL_OPEN:
			n = frame_put_open(b, cap, id, cs->s.port);
			if (n)
				log_frame(p->rec, (struct sent_frame){ .type = FRAME_OPEN, .id = id,
								      .port = cs->s.port });
			break;
		case CTL_ACCEPT:
			n = frame_put_accept(b, cap, id);
			if (n)
				log_frame(p->rec, (struct sent_frame){ .type = FRAME_ACCEPT, .id = id });
			break;
		case CTL_MAX_STREAM_DATA:
			n = frame_put_max_stream_data(b, cap, id, cs->s.rx.max);
			if (n)
				log_frame(p->rec, (struct sent_frame){ .type = FRAME_MAX_STREAM_DATA,
								      .id = id, .off = cs->s.rx.max });
			break;
		default:
			n = frame_put_reset(b, cap, id, cs->out_reason, cs->reset_final);
			if (n)
				log_frame(p->rec, (struct sent_frame){ .type = FRAME_RESET, .id = id,
								      .off = cs->reset_final,
								      .reason = cs->out_reason });
			break;
		}
		if (!n)
			return false;
		p->off += n;
		p->eliciting = true;
		cs->ctl &= ~flag;
	}
	return true;
}

static void put_stream_data(struct conn *c, struct pkt *p)
{
	struct dl parked;
	dl_init(&parked);
	while (!dl_empty(&c->send_q) && !pkt_full(p)) {
		struct cstream *cs = dl_entry(c->send_q.next, send_node);
		size_t avail = p->room - p->off;
		size_t hdr = 1 + varint_size(cs->s.id) + varint_size(cs->s.tx.end) + 2;
		if (avail <= hdr)
			break;
		dl_del(&cs->send_node);
		uint64_t credit = c->tx_max > c->tx_total ? c->tx_max - c->tx_total : 0;
		uint64_t off;
		size_t len;
		bool fin;
		if (!stream_send_next(&cs->s, avail - hdr, credit, &off, &len, &fin)) {
			if (stream_send_pending(&cs->s))
				dl_push(&parked, &cs->send_node); /* session credit */
			continue;
		}
		size_t h = frame_put_stream_header(p->buf + p->off, avail, cs->s.id, off, len, fin);
		if (!h) { /* cannot happen: hdr was an upper bound */
			dl_push(&parked, &cs->send_node);
			break;
		}
		stream_send_copy(&cs->s, off, len, p->buf + p->off + h);
		p->off += h + len;
		p->eliciting = true;
		if (off < cs->s.tx.next)
			p->retransmit = true;
		log_frame(p->rec, (struct sent_frame){ .type = FRAME_STREAM, .id = cs->s.id,
						      .off = off, .len = (uint32_t)len, .fin = fin });
		c->tx_total += stream_send_sent(&cs->s, off, len, fin);
		if (stream_send_pending(&cs->s))
			dl_push(&c->send_q, &cs->send_node); /* to the back: round-robin */
	}
	while (!dl_empty(&parked)) {
		struct dl *n = parked.next;
		dl_del(n);
		dl_push(&c->send_q, n);
	}
}

/* A padded PING of probe bytes (UDP payload): a lost probe costs no data. */
static size_t build_probe(struct conn *c, uint64_t now, uint8_t *buf, uint32_t probe,
			  uint64_t *pn)
{
	uint32_t meta = log_alloc(c);
	if (meta == LOG_NONE)
		return 0;
	struct sent_rec *r = &c->log[meta];
	size_t len = probe - WIRE_DATA_OVERHEAD, off = 0;
	if (ack_tracker_pending(&c->acks))
		off += ack_frame_write(&c->acks, now, buf, len - 1);
	off += frame_put_ping(buf + off, len - off);
	frame_put_padding(buf + off, len - off);
	r->probe = true;
	r->size = probe;
	*pn = c->next_pn++;
	pmtu_on_probe_sent(&c->pmtu, probe, now);
	recovery_on_sent(&c->rec, *pn, probe,
			 RECOVERY_ACK_ELICITING | RECOVERY_IN_FLIGHT | RECOVERY_PMTU_PROBE, meta, now);
	return len;
}

size_t conn_build_packet(struct conn *c, uint64_t now_us, uint8_t *buf, size_t cap,
			 uint64_t *pn)
{
	c->now_us = now_us;
	if (c->dead)
		return 0;
	uint32_t mtu = pmtu_current(&c->pmtu);
	size_t room = mtu - WIRE_DATA_OVERHEAD;
	/* PTO probes stay at the size every path carries: if the path MTU
	 * shrank without any ICMP (a black hole), only small packets get
	 * through, and their ACKs are what lets loss and black-hole
	 * detection run (recovery.h). */
	if (c->rec.probes_due > 0 && room > WIRE_BASE_UDP_PAYLOAD - WIRE_DATA_OVERHEAD)
		room = WIRE_BASE_UDP_PAYLOAD - WIRE_DATA_OVERHEAD;
	if (room > cap)
		room = cap;
	bool ack_due = ack_tracker_due(&c->acks, now_us);
	bool can = recovery_can_send(&c->rec, mtu, now_us);
	bool close_now = c->need_close && !c->close_sent;

	/* Probe only once the path has carried something (RTT known): the
	 * first packets stay small and a probe's loss is then judged by a
	 * real RTT. */
	if (can && c->rec.rtt.has_sample) {
		uint32_t probe = pmtu_probe_size_due(&c->pmtu, now_us);
		if (probe > mtu && probe - WIRE_DATA_OVERHEAD <= cap &&
		    recovery_can_send(&c->rec, probe, now_us)) {
			size_t n = build_probe(c, now_us, buf, probe, pn);
			if (n) {
				c->packets_sent++;
				c->bytes_sent += probe;
				c->last_send_us = now_us;
				c->ever_sent = true;
				return n;
			}
		}
	}
	bool more = can && (conn_frames_pending(c) || streams_sendable(c) || want_ping(c, now_us));
	if (!more && !ack_due && !close_now) {
		if (can)
			recovery_on_app_limited(&c->rec);
		return 0;
	}

	struct pkt p = { .buf = buf, .room = room };
	uint32_t meta = LOG_NONE;
	if (more || close_now) {
		meta = log_alloc(c);
		if (meta != LOG_NONE)
			p.rec = &c->log[meta];
		else
			more = close_now = false; /* log full: ACK only */
	}
	if (ack_tracker_pending(&c->acks) && (ack_due || more || close_now))
		p.off += ack_frame_write(&c->acks, now_us, buf, room);
	if (more || close_now)
		put_conn_frames(c, &p);
	if (more) {
		while (!dl_empty(&c->ctl_q)) {
			struct cstream *cs = dl_entry(c->ctl_q.next, ctl_node);
			if (!put_stream_ctl(&p, cs))
				break;
			dl_del(&cs->ctl_node);
		}
		put_stream_data(c, &p);
		if (!p.eliciting && want_ping(c, now_us)) {
			size_t n = frame_put_ping(buf + p.off, room - p.off);
			p.off += n;
			p.eliciting = n > 0;
		}
	}
	if (p.off == 0) {
		if (meta != LOG_NONE)
			log_release(c, meta);
		if (can)
			recovery_on_app_limited(&c->rec);
		return 0;
	}
	unsigned flags = 0;
	uint32_t size = (uint32_t)(p.off + WIRE_DATA_OVERHEAD);
	if (p.eliciting) {
		flags = RECOVERY_ACK_ELICITING | RECOVERY_IN_FLIGHT;
		p.rec->size = size;
	} else if (meta != LOG_NONE) {
		log_release(c, meta);
		meta = 0;
	}
	*pn = c->next_pn++;
	recovery_on_sent(&c->rec, *pn, size, flags, meta == LOG_NONE ? 0 : meta, now_us);
	c->packets_sent++;
	c->bytes_sent += size;
	if (p.retransmit)
		c->packets_retransmitted++;
	c->last_send_us = now_us;
	c->ever_sent = true;
	return p.off;
}

/* ---- Receiving ---------------------------------------------------------- */

/* Walk the frames of a payload.  act == false: only validate. */
static int walk(struct conn *c, uint64_t now, const uint8_t *p, size_t len, bool act,
		bool *eliciting, bool *no_ack)
{
	struct recovery_callbacks cb = { on_acked, on_lost, c };
	size_t off = 0;

	if (len == 0)
		return SRM_ERR_INVALID;
	while (off < len) {
		if (p[off] == FRAME_ACK) {
			struct ack_ranges a;
			size_t used = 0;
			if (ack_frame_parse(p + off, len - off, &a, &used) < 0 || used == 0)
				return SRM_ERR_INVALID;
			off += used;
			if (act && recovery_on_ack(&c->rec, &a, now, &cb) < 0)
				return SRM_ERR_INVALID;
			continue;
		}
		struct frame f;
		int used = frame_decode(p + off, len - off, &f);
		if (used < 0)
			return SRM_ERR_INVALID;
		off += (size_t)used;
		if (f.type != FRAME_PADDING)
			*eliciting = true;
		if (!act)
			continue;
		switch (f.type) {
		case FRAME_PADDING:
		case FRAME_PING:
		case FRAME_CONTROL: /* carried by control.h's owner, not conn */
			break;
		case FRAME_CLOSE:
			die(c, (uint32_t)f.reason, true);
			return 0;
		case FRAME_PATH_CHALLENGE:
			if (c->n_path_resp < PATH_RESPONSES_MAX)
				memcpy(c->path_resp[c->n_path_resp++].b, f.path,
				       FRAME_PATH_DATA_BYTES);
			break;
		case FRAME_PATH_RESPONSE:
			if (c->n_path_events < PATH_RESPONSES_MAX)
				memcpy(c->path_events[c->n_path_events++].b, f.path,
				       FRAME_PATH_DATA_BYTES);
			break;
		default:
			if (conn_rx_frame(c, &f, now, no_ack) < 0)
				return SRM_ERR_INVALID;
			break;
		}
	}
	return 0;
}

int conn_handle_packet(struct conn *c, uint64_t now_us, uint64_t pn,
		       const uint8_t *payload, size_t len)
{
	bool eliciting = false, no_ack = false;
	c->now_us = now_us;
	if (c->dead)
		return 0;
	if (walk(c, now_us, payload, len, false, &eliciting, &no_ack) < 0) {
		c->packets_malformed++;
		return SRM_ERR_INVALID;
	}
	c->last_recv_us = now_us;
	c->packets_received++;
	c->bytes_received += len + WIRE_DATA_OVERHEAD;
	eliciting = false;
	int r = walk(c, now_us, payload, len, true, &eliciting, &no_ack);
	apply_mtu(c);
	conn_wake_writers(c);
	if (r < 0) {
		c->packets_malformed++;
		return r;
	}
	if (c->dead)
		return 0;
	if (no_ack)
		c->packets_unacked++;
	else
		ack_tracker_on_packet(&c->acks, pn, eliciting, now_us);
	return 0;
}

/* ---- Timers ------------------------------------------------------------- */

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t conn_next_deadline(struct conn *c, uint64_t now_us)
{
	c->now_us = now_us;
	if (c->dead)
		return UINT64_MAX;
	uint64_t d = c->last_recv_us + (uint64_t)c->cfg.idle_timeout_ms * 1000;
	d = min64(d, ack_tracker_deadline(&c->acks));
	d = min64(d, recovery_deadline(&c->rec));
	if (c->need_close && !c->close_sent)
		d = now_us;
	if (!dl_empty(&c->open_q))
		d = min64(d, dl_entry(c->open_q.next, open_node)->open_deadline_us);
	if (c->nstreams > 0)
		d = min64(d, c->last_trim_us + CONN_TRIM_US);

	/* When we would like to send something ack-eliciting, and when cwnd
	 * and pacing let us. */
	uint32_t mtu = pmtu_current(&c->pmtu);
	uint64_t want = UINT64_MAX;
	if (!c->ever_sent || c->rec.probes_due > 0 || conn_frames_pending(c) ||
	    streams_sendable(c))
		want = now_us;
	want = min64(want, c->last_send_us + (uint64_t)c->cfg.keepalive_ms * 1000);
	uint32_t size = mtu;
	if (c->rec.rtt.has_sample) {
		want = min64(want, pmtu_deadline(&c->pmtu));
		uint32_t probe = pmtu_probe_size_due(&c->pmtu, now_us);
		if (probe > size)
			size = probe; /* a due probe waits for its own pacing */
	}
	if (want != UINT64_MAX) {
		uint64_t t = recovery_next_send_time(&c->rec, size, now_us);
		d = min64(d, want > t ? want : t);
	}
	return d;
}

void conn_on_timeout(struct conn *c, uint64_t now_us)
{
	struct recovery_callbacks cb = { on_acked, on_lost, c };
	c->now_us = now_us;
	if (c->dead)
		return;
	if (now_us - c->last_recv_us >= (uint64_t)c->cfg.idle_timeout_ms * 1000) {
		die(c, RESET_TIMEOUT, false);
		return;
	}
	if (now_us >= recovery_deadline(&c->rec))
		recovery_on_timeout(&c->rec, now_us, &cb);
	apply_mtu(c);
	if (now_us - c->last_trim_us >= CONN_TRIM_US)
		conn_trim(c);
	while (!dl_empty(&c->open_q)) {
		struct cstream *cs = dl_entry(c->open_q.next, open_node);
		if (cs->open_deadline_us > now_us)
			break;
		dl_del(&cs->open_node);
		if (cs->s.state == STREAM_OPENING)
			conn_stream_local_reset(c, cs, RESET_TIMEOUT, true);
	}
}

void conn_get_stats(struct conn *c, struct srm_peer_stats *out)
{
	const struct rtt_estimator *rtt = &c->rec.rtt;
	out->srtt_us = (uint32_t)rtt->smoothed_us;
	out->rttvar_us = (uint32_t)rtt->var_us;
	out->min_rtt_us = (uint32_t)rtt->min_us;
	out->cwnd_bytes = cc_cwnd(&c->rec.cc);
	out->pmtu = pmtu_current(&c->pmtu);
	out->bytes_sent = c->bytes_sent;
	out->bytes_received = c->bytes_received;
	out->stream_bytes_sent = c->stream_bytes_sent;
	out->stream_bytes_received = c->stream_bytes_received;
	out->packets_sent = c->packets_sent;
	out->packets_received = c->packets_received;
	out->packets_lost = c->rec.stats.packets_lost;
	out->packets_retransmitted = c->packets_retransmitted;
	out->streams = (uint32_t)c->nstreams;
	out->early_opens = c->early_opens;
}
