/*
 * stream.h — one reliable byte stream: the send buffer with retransmission
 * of lost ranges, receive reassembly, per-stream flow control and the
 * stream state.  Sans-I/O and frame-agnostic: conn.c turns what a stream
 * wants to send into frames and feeds received frames back.
 *
 * Offsets count bytes of the stream as carried on the wire (for a
 * compressed stream: record bytes, compress.h).  Both buffers are rings
 * indexed by offset, allocated on first use, grown by doubling and
 * released by stream_trim once drained, so an idle stream costs only this
 * struct and two small rings (STREAM_IDLE_BUF).
 *
 * Flow control (docs/TRANSPORT.md): the receiver advertises max, the
 * highest offset the peer may send.  Each side starts from
 * STREAM_WINDOW_INITIAL without a frame.  When the reader has consumed
 * half of the window, a new max = read + window is due; the window
 * doubles (up to STREAM_WINDOW_MAX) whenever the previous one was used up
 * in less than STREAM_AUTOTUNE_RTTS round trips, and is never below
 * 2 x the BDP the caller passes.  A reader that stops reading stops
 * advancing max, so the sender stops: the receive ring never holds more
 * than the window, the send ring never more than the caller's limit.
 */
#ifndef SRMUDP_STREAM_H
#define SRMUDP_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rangeset.h"
#include "srmudp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Credit each direction starts with, known to both sides without a frame.
 * 256 KiB fills 20 Mbit/s at 100 ms before the first update arrives. */
#define STREAM_WINDOW_INITIAL (256u << 10)
/* Hard cap of one stream's window: 2 x BDP of 670 Mbit/s at 100 ms. */
#define STREAM_WINDOW_MAX (16u << 20)
/* Grow the window when the last one was consumed within this many RTTs. */
#define STREAM_AUTOTUNE_RTTS 2
/* Rings start (and an idle stream keeps) this small. */
#define STREAM_IDLE_BUF 2048
/* Holes the reassembly tolerates; a packet whose data would create more
 * is not acknowledged, so the sender retransmits it later. */
#define STREAM_RECV_RANGES_MAX 512
/* Acked/lost ranges the sender tracks (about one per packet in flight). */
#define STREAM_SEND_RANGES_MAX 65536

enum stream_state {
	STREAM_OPENING,   /* our OPEN sent, no ACCEPT yet */
	STREAM_INCOMING,  /* the peer's OPEN arrived, not answered yet */
	STREAM_OPEN,      /* accepted; see the fin flags for half-close */
	STREAM_RESET,     /* reset by either side */
};

struct stream_send {
	uint8_t *buf;
	size_t cap;          /* power of two, 0 before first use */
	uint64_t base;       /* lowest unacknowledged offset: buf holds [base, end) */
	uint64_t end;        /* end of written data */
	uint64_t next;       /* first offset never sent */
	uint64_t max;        /* the peer's credit (MAX_STREAM_DATA) */
	struct rangeset acked; /* acknowledged ranges above base */
	struct rangeset lost;  /* to retransmit, within [base, next) */
	bool fin;            /* shutdown: the stream ends at end */
	bool fin_sent, fin_acked, fin_lost;
};

struct stream_recv {
	uint8_t *buf;
	size_t cap;          /* power of two; holds [read, highest) */
	uint64_t read;       /* delivered to the reader */
	uint64_t highest;    /* end of the highest byte received */
	uint64_t max;        /* our advertised credit */
	uint64_t window;     /* current window size (auto-tuned) */
	uint64_t window_start_us; /* when the current window was advertised */
	uint64_t final_size;
	bool fin_known;
	struct rangeset got; /* received ranges at or above read */
};

struct stream {
	uint64_t id;
	enum stream_state state;
	uint16_t port;
	uint32_t reset_reason;
	struct stream_send tx;
	struct stream_recv rx;
};

/* Initialise st in place (no allocation). */
void stream_init(struct stream *s, uint64_t id, enum stream_state state);
/* Release the buffers (the struct itself is the caller's). */
void stream_free_buffers(struct stream *s);
/* Bytes of heap the stream holds (buffers and range arrays). */
size_t stream_memory(const struct stream *s);
/* Release rings that grew and are now empty (call it periodically: an
 * idle stream then costs only the struct and two STREAM_IDLE_BUF rings). */
void stream_trim(struct stream *s);

/* ---- Send side ---------------------------------------------------------- */

/* Bytes buffered: written and not yet acknowledged. */
static inline uint64_t stream_send_buffered(const struct stream *s)
{
	return s->tx.end - s->tx.base;
}
/* Append n bytes (the caller checked its own buffer limit).  Returns 0 or
 * SRM_ERR_NOMEM (allocation), SRM_ERR_CLOSED (after shutdown). */
int stream_send_write(struct stream *s, const void *p, size_t n);
void stream_send_shutdown(struct stream *s);

/* What to send next, at most maxlen bytes: lost ranges first (already
 * within credit), then new data within the stream's credit and
 * session_credit (bytes of new data the session still allows).  *fin is
 * set when the chunk ends the stream (len may then be 0).  Returns false
 * if there is nothing to send. */
bool stream_send_next(const struct stream *s, size_t maxlen, uint64_t session_credit,
		      uint64_t *off, size_t *len, bool *fin);
/* Copy [off, off+len) out of the send ring. */
void stream_send_copy(const struct stream *s, uint64_t off, size_t len, void *dst);
/* The chunk returned by stream_send_next left in a packet.  Returns how
 * many bytes of it were new (counted against the session credit). */
uint64_t stream_send_sent(struct stream *s, uint64_t off, size_t len, bool fin);
/* A packet carrying [off, off+len) (and the FIN if fin) was acknowledged
 * or lost.  Duplicates and stale reports are harmless. */
void stream_send_acked(struct stream *s, uint64_t off, size_t len, bool fin);
void stream_send_lost(struct stream *s, uint64_t off, size_t len, bool fin);
/* The peer raised our credit (lower values are ignored).  Returns true if
 * it grew. */
bool stream_send_credit(struct stream *s, uint64_t max);
/* Everything, FIN included, is acknowledged. */
static inline bool stream_send_done(const struct stream *s)
{
	return s->tx.fin && s->tx.fin_acked && s->tx.base == s->tx.end;
}
/* Something (new data, a retransmission or the FIN) waits to be sent,
 * ignoring the session credit. */
bool stream_send_pending(const struct stream *s);
/* New data is held back only by the stream's credit. */
static inline bool stream_send_blocked(const struct stream *s)
{
	return s->tx.next < s->tx.end && s->tx.next >= s->tx.max;
}

/* ---- Receive side ------------------------------------------------------- */

/* A STREAM frame.  Returns how far it raised the highest received offset
 * (the session flow-control charge, >= 0), SRM_ERR_INVALID (beyond our
 * credit, or contradicting a known final size: a protocol violation) or
 * SRM_ERR_NOMEM (too fragmented or allocation failed: do not acknowledge
 * the packet; nothing was stored). */
int64_t stream_recv_data(struct stream *s, uint64_t off, const uint8_t *p, size_t len,
			 bool fin);
/* RESET from the peer: like a FIN at final_size without the data.
 * Returns the session charge as stream_recv_data, or SRM_ERR_INVALID. */
int64_t stream_recv_reset(struct stream *s, uint64_t final_size);
/* Contiguous in-order bytes available at the read offset (may be fewer
 * than all readable when the ring wraps: call again after consuming). */
size_t stream_recv_peek(const struct stream *s, const uint8_t **p);
/* Total in-order bytes available. */
uint64_t stream_recv_readable(const struct stream *s);
void stream_recv_consume(struct stream *s, size_t n);
/* The peer's FIN arrived and everything before it was consumed. */
static inline bool stream_recv_finished(const struct stream *s)
{
	return s->rx.fin_known && s->rx.read == s->rx.final_size;
}
/* Should a MAX_STREAM_DATA go out now?  If so, auto-tunes the window
 * (srtt_us: current smoothed RTT; bdp: bytes, 0 if unknown), raises
 * rx.max and returns true; the caller sends rx.max. */
bool stream_recv_update(struct stream *s, uint64_t now_us, uint64_t srtt_us, uint64_t bdp);

#ifdef __cplusplus
}
#endif
#endif
