/*
 * conn_stream.c — the stream half of conn: the stream API, stream frames
 * received, session flow control and events.  conn.c owns packets,
 * timers and loss recovery.
 *
 * A stream lives until it is released by the engine and finished both
 * ways: our data and FIN acknowledged and the peer's FIN read (or
 * discarded); or, once reset, our RESET acknowledged and the peer's RESET
 * received.  A RESET from the peer is answered with our own RESET, so each
 * side learns the other's final size and the session credit of both stays
 * exact (QUIC gets the same from STOP_SENDING).
 */
#include <stdlib.h>

#include "conn_priv.h"

struct cstream *conn_find(struct conn *c, uint64_t id)
{
	struct cstream *cs = NULL;
	HASH_FIND(hh, c->streams, &id, sizeof(id), cs);
	return cs;
}

static bool is_local(const struct conn *c, uint64_t id)
{
	return (int)(id & 1) == c->cfg.stream_id_parity;
}

static bool peer_seen(const struct conn *c, uint64_t id)
{
	return rangeset_contains(&c->peer_ids, id >> 1, (id >> 1) + 1);
}

static void peer_mark(struct conn *c, uint64_t id)
{
	if (rangeset_add(&c->peer_ids, id >> 1, (id >> 1) + 1) == 0)
		return;
	/* Too fragmented: merge the two oldest ranges (a late OPEN for an id
	 * in the gap is then ignored and times out at the opener). */
	rangeset_add(&c->peer_ids, c->peer_ids.r[0].lo, c->peer_ids.r[1].hi);
	rangeset_add(&c->peer_ids, id >> 1, (id >> 1) + 1);
}

static struct cstream *cs_new(struct conn *c, uint64_t id, enum stream_state st)
{
	struct cstream *cs = calloc(1, sizeof(*cs));
	if (!cs)
		return NULL;
	stream_init(&cs->s, id, st);
	compress_tx_init(&cs->ztx, c->cfg.compress);
	compress_rx_init(&cs->zrx);
	HASH_ADD(hh, c->streams, s.id, sizeof(uint64_t), cs);
	c->nstreams++;
	return cs;
}

static void cs_free(struct conn *c, struct cstream *cs)
{
	dl_del(&cs->send_node);
	dl_del(&cs->ctl_node);
	dl_del(&cs->ev_node);
	dl_del(&cs->open_node);
	dl_del(&cs->wblock_node);
	HASH_DEL(c->streams, cs);
	c->tx_buffered -= stream_send_buffered(&cs->s);
	stream_free_buffers(&cs->s);
	compress_rx_free(&cs->zrx);
	free(cs);
	c->nstreams--;
}

void conn_free_streams(struct conn *c)
{
	struct cstream *cs, *tmp;
	HASH_ITER(hh, c->streams, cs, tmp)
		cs_free(c, cs);
}

void conn_stream_enqueue(struct conn *c, struct cstream *cs)
{
	if (!dl_linked(&cs->send_node) && stream_send_pending(&cs->s))
		dl_push(&c->send_q, &cs->send_node);
}

void conn_stream_ctl(struct conn *c, struct cstream *cs, uint32_t flag)
{
	if (c->dead)
		return;
	cs->ctl |= flag;
	if (!dl_linked(&cs->ctl_node))
		dl_push(&c->ctl_q, &cs->ctl_node);
}

void conn_stream_event(struct conn *c, struct cstream *cs, uint32_t flag)
{
	if (cs->released)
		return;
	if (flag == EVF_RESET)
		cs->ev &= ~(uint32_t)(EVF_READABLE | EVF_WRITABLE | EVF_FIN);
	else if (cs->ev & EVF_RESET)
		return;
	cs->ev |= flag;
	if (!dl_linked(&cs->ev_node))
		dl_push(&c->ev_q, &cs->ev_node);
}

void conn_stream_maybe_free(struct conn *c, struct cstream *cs)
{
	if (!cs->released)
		return;
	bool done;
	if (cs->s.state == STREAM_RESET)
		done = c->dead || (cs->peer_reset && (cs->reset_acked || !(cs->ctl & CTL_RESET)));
	else
		done = stream_send_done(&cs->s) && stream_recv_finished(&cs->s);
	if (done || c->dead)
		cs_free(c, cs);
}

/* ---- Session flow control ----------------------------------------------- */

uint64_t conn_bdp(const struct conn *c)
{
	return recovery_bdp(&c->rec);
}

uint64_t conn_srtt(const struct conn *c)
{
	return c->rec.rtt.has_sample ? c->rec.rtt.smoothed_us : 0;
}

static void session_update(struct conn *c)
{
	uint64_t target = 2 * conn_bdp(c);
	if (target > c->rx_window)
		c->rx_window = target < SESSION_WINDOW_MAX ? target : SESSION_WINDOW_MAX;
	if (c->rx_max - c->rx_consumed > c->rx_window / 2)
		return;
	uint64_t srtt = conn_srtt(c);
	if (srtt > 0 && c->now_us - c->rx_window_start_us < STREAM_AUTOTUNE_RTTS * srtt) {
		c->rx_window *= 2;
		if (c->rx_window > SESSION_WINDOW_MAX)
			c->rx_window = SESSION_WINDOW_MAX;
	}
	c->rx_window_start_us = c->now_us;
	c->rx_max = c->rx_consumed + c->rx_window;
	c->need_max_data = true;
}

/* A stream whose data nobody will read: drop what is readable and count
 * everything received as consumed. */
static void flush_discard(struct conn *c, struct cstream *cs)
{
	uint64_t n;
	while ((n = stream_recv_readable(&cs->s)) > 0)
		stream_recv_consume(&cs->s, (size_t)n);
	if (cs->s.rx.highest > cs->acct) {
		c->rx_consumed += cs->s.rx.highest - cs->acct;
		cs->acct = cs->s.rx.highest;
	}
	/* Keep granting credit, so a peer still sending to a closed stream
	 * can reach its FIN instead of stalling forever. */
	if (stream_recv_update(&cs->s, c->now_us, conn_srtt(c), conn_bdp(c)))
		conn_stream_ctl(c, cs, CTL_MAX_STREAM_DATA);
	session_update(c);
}

static void stream_flow_update(struct conn *c, struct cstream *cs)
{
	if (stream_recv_update(&cs->s, c->now_us, conn_srtt(c), conn_bdp(c)))
		conn_stream_ctl(c, cs, CTL_MAX_STREAM_DATA);
	session_update(c);
}

static void check_fin(struct conn *c, struct cstream *cs)
{
	if (cs->s.state == STREAM_OPEN && !cs->fin_reported && !cs->discard &&
	    stream_recv_finished(&cs->s) && compress_rx_idle(&cs->zrx)) {
		cs->fin_reported = true;
		conn_stream_event(c, cs, EVF_FIN);
	}
}

/* ---- Resets ------------------------------------------------------------- */

void conn_stream_local_reset(struct conn *c, struct cstream *cs, uint32_t why, bool event)
{
	if (cs->s.state == STREAM_RESET)
		return;
	bool was_incoming = cs->s.state == STREAM_INCOMING;
	cs->s.state = STREAM_RESET;
	cs->s.reset_reason = why;
	cs->out_reason = why;
	cs->reset_final = cs->s.tx.next;
	cs->ctl &= ~(uint32_t)(CTL_OPEN | CTL_ACCEPT | CTL_MAX_STREAM_DATA);
	/* Nothing will be retransmitted: drop the send buffer now. */
	c->tx_buffered -= stream_send_buffered(&cs->s);
	cs->s.tx.base = cs->s.tx.end = cs->s.tx.next;
	dl_del(&cs->send_node);
	dl_del(&cs->open_node);
	if (c->dead)
		cs->reset_acked = true;
	else
		conn_stream_ctl(c, cs, CTL_RESET);
	cs->discard = true;
	flush_discard(c, cs);
	if (event) {
		conn_stream_event(c, cs, EVF_RESET);
	} else {
		cs->ev = 0;
		dl_del(&cs->ev_node);
	}
	if (was_incoming)
		cs->released = true; /* refused: the engine never owned it */
	conn_stream_maybe_free(c, cs);
}

void conn_kill_streams(struct conn *c, uint32_t reason, bool send_reset)
{
	struct cstream *cs, *tmp;
	HASH_ITER(hh, c->streams, cs, tmp) {
		if (cs->s.state == STREAM_RESET) {
			conn_stream_maybe_free(c, cs);
			continue;
		}
		if (!send_reset)
			cs->reset_acked = cs->peer_reset = true;
		conn_stream_local_reset(c, cs, reason, true);
	}
}

/* ---- Frames from the peer ----------------------------------------------- */

static int session_charge(struct conn *c, struct cstream *cs, int64_t charge)
{
	c->rx_total += (uint64_t)charge;
	if (c->rx_total > c->rx_max)
		return SRM_ERR_INVALID; /* beyond the session credit we gave */
	if (cs->discard)
		flush_discard(c, cs);
	return 0;
}

static int rx_open(struct conn *c, const struct frame *f)
{
	if (is_local(c, f->stream))
		return SRM_ERR_INVALID;
	if (conn_find(c, f->stream) || peer_seen(c, f->stream))
		return 0; /* a duplicate, or for a stream long gone */
	peer_mark(c, f->stream);
	uint32_t why = c->closing ? RESET_SHUTDOWN : RESET_INTERNAL;
	struct cstream *cs = NULL;
	if (!c->closing && c->nstreams < c->cfg.max_streams)
		cs = cs_new(c, f->stream, STREAM_INCOMING);
	if (!cs) {
		if (c->n_orphans < ORPHAN_RESETS_MAX)
			c->orphans[c->n_orphans++] = (struct orphan_reset){ f->stream, why };
		return 0;
	}
	cs->s.port = f->port;
	conn_stream_event(c, cs, EVF_INCOMING);
	return 0;
}

/* Frames naming a stream must name one that can exist. */
static int check_id(struct conn *c, uint64_t id, bool mark)
{
	if (is_local(c, id))
		return id < c->next_local_id ? 0 : SRM_ERR_INVALID;
	if (peer_seen(c, id))
		return 0;
	if (!mark)
		return SRM_ERR_INVALID;
	peer_mark(c, id);
	return 0;
}

static int rx_accept(struct conn *c, const struct frame *f)
{
	if (!is_local(c, f->stream) || f->stream >= c->next_local_id)
		return SRM_ERR_INVALID;
	struct cstream *cs = conn_find(c, f->stream);
	if (!cs || cs->s.state != STREAM_OPENING)
		return 0;
	cs->s.state = STREAM_OPEN;
	cs->ctl &= ~(uint32_t)CTL_OPEN;
	dl_del(&cs->open_node);
	conn_stream_event(c, cs, EVF_OPENED);
	if (stream_recv_readable(&cs->s) > 0)
		conn_stream_event(c, cs, EVF_READABLE);
	check_fin(c, cs);
	conn_stream_enqueue(c, cs);
	return 0;
}

static int rx_reset(struct conn *c, const struct frame *f)
{
	/* A RESET may overtake its OPEN: remember the id as used. */
	if (check_id(c, f->stream, true) < 0)
		return SRM_ERR_INVALID;
	struct cstream *cs = conn_find(c, f->stream);
	if (!cs || cs->peer_reset)
		return 0;
	int64_t charge = stream_recv_reset(&cs->s, f->value);
	if (charge < 0)
		return SRM_ERR_INVALID;
	cs->peer_reset = true;
	bool was_incoming = cs->s.state == STREAM_INCOMING;
	if (cs->s.state != STREAM_RESET) {
		conn_stream_local_reset(c, cs, (uint32_t)f->reason, !was_incoming);
		if (was_incoming) {
			/* The opener gave up before the engine answered:
			 * it has already seen INCOMING, so tell it. */
			cs->released = false;
			conn_stream_event(c, cs, EVF_RESET);
		}
	}
	int r = session_charge(c, cs, charge);
	conn_stream_maybe_free(c, cs);
	return r;
}

static int rx_stream(struct conn *c, const struct frame *f, bool *no_ack)
{
	if (check_id(c, f->stream, false) < 0)
		return SRM_ERR_INVALID;
	struct cstream *cs = conn_find(c, f->stream);
	if (!cs)
		return 0; /* finished and freed: a late duplicate */
	int64_t charge = stream_recv_data(&cs->s, f->offset, f->data, f->len, f->fin);
	if (charge == SRM_ERR_NOMEM) {
		*no_ack = true; /* too fragmented now: the sender will resend */
		return 0;
	}
	if (charge < 0)
		return SRM_ERR_INVALID;
	if (session_charge(c, cs, charge) < 0)
		return SRM_ERR_INVALID;
	if (cs->discard) {
		conn_stream_maybe_free(c, cs);
		return 0;
	}
	if (cs->s.state == STREAM_OPEN) {
		if (stream_recv_readable(&cs->s) > 0)
			conn_stream_event(c, cs, EVF_READABLE);
		check_fin(c, cs);
	}
	return 0;
}

int conn_rx_frame(struct conn *c, const struct frame *f, uint64_t now_us, bool *no_ack)
{
	struct cstream *cs;
	(void)now_us;
	switch (f->type) {
	case FRAME_OPEN:
		return rx_open(c, f);
	case FRAME_ACCEPT:
		return rx_accept(c, f);
	case FRAME_RESET:
		return rx_reset(c, f);
	case FRAME_STREAM:
	case FRAME_STREAM_FIN:
		return rx_stream(c, f, no_ack);
	case FRAME_MAX_DATA:
		if (f->value > c->tx_max)
			c->tx_max = f->value;
		return 0;
	case FRAME_MAX_STREAM_DATA:
		if (check_id(c, f->stream, false) < 0)
			return SRM_ERR_INVALID;
		cs = conn_find(c, f->stream);
		if (cs && stream_send_credit(&cs->s, f->value))
			conn_stream_enqueue(c, cs);
		return 0;
	default:
		return 0;
	}
}

/* ---- Early frames (conn.h) ---------------------------------------------- */

size_t conn_early_open(struct conn *c, uint8_t *out, size_t cap)
{
	if (dl_empty(&c->open_q))
		return 0;
	const struct cstream *cs = dl_entry(c->open_q.next, open_node);
	return frame_put_open(out, cap, cs->s.id, cs->s.port);
}

int conn_receive_early(struct conn *c, const uint8_t *p, size_t len, uint64_t now_us,
		       uint64_t *opened)
{
	*opened = UINT64_MAX;
	for (size_t off = 0; off < len && p[off] != FRAME_PADDING;) {
		struct frame f;
		int used = frame_decode(p + off, len - off, &f);
		if (used < 0 ||
		    (f.type != FRAME_OPEN && f.type != FRAME_ACCEPT && f.type != FRAME_RESET))
			return SRM_ERR_INVALID;
		const struct cstream *before = conn_find(c, f.stream);
		bool was_opening = before && before->s.state == STREAM_OPENING;
		bool no_ack = false;
		int rc = conn_rx_frame(c, &f, now_us, &no_ack);
		if (rc < 0)
			return rc;
		const struct cstream *after = conn_find(c, f.stream);
		if ((f.type == FRAME_OPEN && !before && after) ||
		    (f.type == FRAME_ACCEPT && was_opening && after && after->s.state == STREAM_OPEN))
			c->early_opens++;
		if (f.type == FRAME_OPEN)
			*opened = f.stream;
		off += (size_t)used;
	}
	return 0;
}

size_t conn_early_answer(struct conn *c, uint64_t id, uint8_t *out, size_t cap)
{
	const struct cstream *cs = conn_find(c, id);
	if (!cs)
		return 0;
	if (cs->s.state == STREAM_RESET)
		return frame_put_reset(out, cap, id, cs->out_reason, cs->reset_final);
	return frame_put_accept(out, cap, id);
}

/* ---- The stream API ----------------------------------------------------- */

int conn_stream_open(struct conn *c, uint16_t port, uint64_t now_us, uint64_t *id)
{
	if (c->dead || c->closing)
		return SRM_ERR_CLOSED;
	if (c->nstreams >= c->cfg.max_streams)
		return SRM_ERR_NOMEM;
	struct cstream *cs = cs_new(c, c->next_local_id, STREAM_OPENING);
	if (!cs)
		return SRM_ERR_NOMEM;
	c->next_local_id += 2;
	cs->local = true;
	cs->s.port = port;
	cs->open_deadline_us = now_us + (uint64_t)c->cfg.open_timeout_ms * 1000;
	dl_push(&c->open_q, &cs->open_node);
	conn_stream_ctl(c, cs, CTL_OPEN);
	*id = cs->s.id;
	return 0;
}

int conn_stream_accept(struct conn *c, uint64_t id)
{
	struct cstream *cs = conn_find(c, id);
	if (!cs || cs->released)
		return SRM_ERR_NOTFOUND;
	if (cs->s.state != STREAM_INCOMING)
		return SRM_ERR_INVALID;
	cs->s.state = STREAM_OPEN;
	conn_stream_ctl(c, cs, CTL_ACCEPT);
	if (stream_recv_readable(&cs->s) > 0)
		conn_stream_event(c, cs, EVF_READABLE);
	check_fin(c, cs);
	conn_stream_enqueue(c, cs);
	return 0;
}

/* The send buffer a stream may fill: enough for 2 x the window the path
 * needs, never above the stream window cap. */
static uint64_t send_limit(const struct conn *c)
{
	uint64_t bdp = conn_bdp(c), cwnd = cc_cwnd(&c->rec.cc);
	uint64_t want = 2 * (2 * bdp > cwnd ? 2 * bdp : cwnd);
	if (want < STREAM_SEND_BUF_MIN)
		want = STREAM_SEND_BUF_MIN;
	return want < STREAM_WINDOW_MAX ? want : STREAM_WINDOW_MAX;
}

/* Wire bytes the stream may still buffer. */
static uint64_t send_room(const struct conn *c, const struct cstream *cs)
{
	if (cs->s.state == STREAM_RESET || cs->s.tx.fin || cs->released)
		return 0;
	uint64_t lim = send_limit(c), used = stream_send_buffered(&cs->s);
	uint64_t room = lim > used ? lim - used : 0;
	uint64_t sroom = SESSION_SEND_BUF_MAX > c->tx_buffered
				 ? SESSION_SEND_BUF_MAX - c->tx_buffered : 0;
	return room < sroom ? room : sroom;
}

/* Largest record input whose worst-case encoding fits in room. */
static size_t chunk_for(uint64_t room, size_t want)
{
	size_t n = want < COMPRESS_RECORD_MAX ? want : COMPRESS_RECORD_MAX;
	if (compress_tx_bound(n) <= room)
		return n;
	if (room <= compress_tx_bound(1))
		return 0;
	n = (size_t)(room - room / 256 - (compress_tx_bound(1) + 64));
	while (n > 0 && compress_tx_bound(n) > room)
		n -= n / 64 + 1;
	return n;
}

ssize_t conn_stream_write(struct conn *c, uint64_t id, const void *p, size_t n)
{
	struct cstream *cs = conn_find(c, id);
	const uint8_t *in = p;
	size_t taken = 0;

	if (!cs || cs->released)
		return SRM_ERR_NOTFOUND;
	if (cs->s.state == STREAM_RESET || cs->s.tx.fin)
		return SRM_ERR_CLOSED;
	while (taken < n) {
		size_t chunk = chunk_for(send_room(c, cs), n - taken);
		if (chunk == 0)
			break;
		if (!compress_tx_wants(&cs->ztx, chunk)) {
			/* RAW: header and payload straight into the ring. */
			uint8_t hdr[COMPRESS_HEADER_MAX];
			size_t h = compress_tx_raw_header(&cs->ztx, chunk, hdr);
			if (stream_send_write(&cs->s, hdr, h) < 0 ||
			    stream_send_write(&cs->s, in + taken, chunk) < 0)
				return taken ? (ssize_t)taken : SRM_ERR_NOMEM;
			c->tx_buffered += h + chunk;
			c->stream_bytes_sent += chunk;
			taken += chunk;
			continue;
		}
		bool timed = c->cfg.cpu_clock_us != NULL;
		uint64_t t0 = timed ? c->cfg.cpu_clock_us(c->cfg.cpu_clock_arg) : 0;
		ssize_t len = compress_tx_record(&cs->ztx, &c->zstd, in + taken, chunk, c->scratch,
						 sizeof(c->scratch));
		if (len < 0)
			return taken ? (ssize_t)taken : len;
		if (timed) {
			uint64_t t1 = c->cfg.cpu_clock_us(c->cfg.cpu_clock_arg);
			compress_tx_note_cpu(&cs->ztx, chunk, t1 > t0 ? t1 - t0 : 0,
					     cc_bandwidth(&c->rec.cc));
		}
		int r = stream_send_write(&cs->s, c->scratch, (size_t)len);
		if (r < 0)
			return taken ? (ssize_t)taken : r; /* allocation failed */
		c->tx_buffered += (uint64_t)len;
		c->stream_bytes_sent += chunk;
		taken += chunk;
	}
	if (taken < n && !dl_linked(&cs->wblock_node))
		dl_push(&c->wblock_q, &cs->wblock_node);
	conn_stream_enqueue(c, cs);
	return (ssize_t)taken;
}

/* After acknowledgements freed send buffer: WRITABLE once enough room is
 * back, and maybe the stream is finished. */
void conn_stream_after_ack(struct conn *c, struct cstream *cs)
{
	conn_stream_maybe_free(c, cs);
}

/* Room can come back from this stream's ACKs or, under the session cap,
 * from any other stream's: check every blocked writer (a short list). */
void conn_wake_writers(struct conn *c)
{
	struct dl *n = c->wblock_q.next;
	while (n != &c->wblock_q) {
		struct cstream *cs = dl_entry(n, wblock_node);
		n = n->next;
		if (cs->released || cs->s.state == STREAM_RESET || cs->s.tx.fin) {
			dl_del(&cs->wblock_node);
		} else if (send_room(c, cs) >= compress_tx_bound(STREAM_WRITABLE_LOW)) {
			dl_del(&cs->wblock_node);
			conn_stream_event(c, cs, EVF_WRITABLE);
		}
	}
}

ssize_t conn_stream_read(struct conn *c, uint64_t id, void *p, size_t n)
{
	struct cstream *cs = conn_find(c, id);
	uint8_t *out = p;
	size_t got = 0;

	if (!cs || cs->released)
		return SRM_ERR_NOTFOUND;
	if (cs->s.state == STREAM_RESET)
		return SRM_ERR_RESET;
	if (cs->s.state != STREAM_OPEN)
		return 0; /* data before ACCEPT waits for it */
	while (got < n) {
		const uint8_t *in = NULL;
		size_t k = stream_recv_peek(&cs->s, &in), used = 0;
		ssize_t r = compress_rx_decode(&cs->zrx, &c->zstd, in, k, &used, out + got,
					       n - got);
		if (r < 0) {
			/* Corrupt or a decompression bomb: the stream is
			 * unusable; abort it both ways. */
			conn_stream_local_reset(c, cs, RESET_INTERNAL, false);
			return SRM_ERR_RESET;
		}
		stream_recv_consume(&cs->s, used);
		cs->acct += used;
		c->rx_consumed += used;
		got += (size_t)r;
		if (used == 0 && r == 0)
			break;
	}
	c->stream_bytes_received += got;
	stream_flow_update(c, cs);
	if (stream_recv_finished(&cs->s) && !compress_rx_idle(&cs->zrx) && got == 0) {
		/* The peer ended the stream inside a record. */
		conn_stream_local_reset(c, cs, RESET_INTERNAL, false);
		return SRM_ERR_RESET;
	}
	check_fin(c, cs);
	return (ssize_t)got;
}

/* FIN after the buffered data. */
static void finish_sending(struct conn *c, struct cstream *cs)
{
	if (cs->s.tx.fin)
		return;
	stream_send_shutdown(&cs->s);
	conn_stream_enqueue(c, cs);
}

int conn_stream_shutdown(struct conn *c, uint64_t id)
{
	struct cstream *cs = conn_find(c, id);
	if (!cs || cs->released)
		return SRM_ERR_NOTFOUND;
	if (cs->s.state == STREAM_RESET)
		return SRM_ERR_CLOSED;
	finish_sending(c, cs);
	return 0;
}

int conn_stream_reset(struct conn *c, uint64_t id, enum wire_reset_reason why)
{
	struct cstream *cs = conn_find(c, id);
	if (!cs || cs->released)
		return SRM_ERR_NOTFOUND;
	conn_stream_local_reset(c, cs, why, false);
	return 0;
}

void conn_stream_release(struct conn *c, uint64_t id)
{
	struct cstream *cs = conn_find(c, id);
	if (!cs || cs->released)
		return;
	if (cs->s.state == STREAM_INCOMING) {
		conn_stream_local_reset(c, cs, RESET_REFUSED, false);
		return;
	}
	cs->released = true;
	cs->ev = 0;
	dl_del(&cs->ev_node);
	if (cs->s.state != STREAM_RESET) {
		finish_sending(c, cs); /* close() implies FIN */
		cs->discard = true;
		flush_discard(c, cs);
	}
	conn_stream_maybe_free(c, cs);
}

int conn_poll_event(struct conn *c, struct conn_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	while (!dl_empty(&c->ev_q)) {
		struct cstream *cs = dl_entry(c->ev_q.next, ev_node);
		if (cs->ev == 0) {
			dl_del(&cs->ev_node);
			continue;
		}
		uint32_t bit = cs->ev & -cs->ev;
		cs->ev &= ~bit;
		if (cs->ev == 0)
			dl_del(&cs->ev_node);
		ev->stream = cs->s.id;
		ev->port = cs->s.port;
		switch (bit) {
		case EVF_INCOMING: ev->type = CONN_EV_INCOMING; break;
		case EVF_OPENED: ev->type = CONN_EV_OPENED; break;
		case EVF_READABLE: ev->type = CONN_EV_READABLE; break;
		case EVF_WRITABLE: ev->type = CONN_EV_WRITABLE; break;
		case EVF_FIN: ev->type = CONN_EV_FIN; break;
		default:
			ev->type = CONN_EV_RESET;
			ev->reason = cs->s.reset_reason;
			break;
		}
		return 1;
	}
	if (c->n_path_events > 0) {
		ev->type = CONN_EV_PATH_RESPONSE;
		memcpy(ev->path_data, c->path_events[0].b, FRAME_PATH_DATA_BYTES);
		c->n_path_events--;
		memmove(&c->path_events[0], &c->path_events[1],
			c->n_path_events * sizeof(c->path_events[0]));
		return 1;
	}
	if (c->ev_conn) {
		ev->type = c->closed_by_peer ? CONN_EV_CLOSED : CONN_EV_DEAD;
		ev->reason = c->dead_reason;
		c->ev_conn = 0;
		return 1;
	}
	return 0;
}

size_t conn_memory(const struct conn *c)
{
	size_t total = (size_t)c->log_cap * sizeof(struct sent_rec) +
		       c->peer_ids.cap * sizeof(struct range) + compress_ctx_memory(&c->zstd);
	for (const struct cstream *cs = c->streams; cs; cs = cs->hh.next)
		total += sizeof(*cs) + stream_memory(&cs->s) + compress_rx_memory(&cs->zrx);
	return total;
}

int conn_stream_buffered(const struct conn *c, uint64_t id, uint64_t *tx, uint64_t *rx)
{
	struct cstream *cs = conn_find((struct conn *)c, id);
	if (!cs)
		return SRM_ERR_NOTFOUND;
	if (tx)
		*tx = stream_send_buffered(&cs->s);
	if (rx)
		*rx = cs->s.rx.highest - cs->s.rx.read;
	return 0;
}

void conn_trim(struct conn *c)
{
	c->last_trim_us = c->now_us;
	for (struct cstream *cs = c->streams; cs; cs = cs->hh.next)
		stream_trim(&cs->s);
}
