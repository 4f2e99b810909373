/*
 * conn_priv.h — the insides of struct conn, shared by conn.c (packets,
 * timers, loss) and conn_stream.c (the stream API, events, flow control).
 * Nothing outside those two files includes it.
 */
#ifndef SRMUDP_CONN_PRIV_H
#define SRMUDP_CONN_PRIV_H

#include <stdbool.h>
#include <uthash.h>

#include "ack.h"
#include "compress.h"
#include "conn.h"
#include "frame.h"
#include "pmtu.h"
#include "rangeset.h"
#include "recovery.h"
#include "stream.h"

/* Session credit each side starts with (no frame needed); it auto-tunes
 * like a stream window, doubling up to SESSION_WINDOW_MAX.  Session credit
 * is shared by all streams, so unread data of stalled streams holds it:
 * 16 MiB lets 64 streams stall at their initial window before the others
 * of the same peer feel it. */
#define SESSION_WINDOW_INITIAL (16u << 20)
/* Bounds one peer's receive memory (with STREAM_WINDOW_MAX per stream). */
#define SESSION_WINDOW_MAX (128u << 20)
/* All streams' send buffers together, per peer. */
#define SESSION_SEND_BUF_MAX (64u << 20)
/* A stream's send buffer: at least this, else 2 x max(2 x BDP, cwnd). */
#define STREAM_SEND_BUF_MIN (256u << 10)
/* Report WRITABLE once this much room is back (avoid an event per ACK). */
#define STREAM_WRITABLE_LOW (16u << 10)
/* Frames remembered per sent packet; the builder stops adding frames to a
 * packet when its record is full. */
#define SENT_FRAMES_MAX 16
#define SENT_LOG_INITIAL 256
/* PATH_CHALLENGEs we owe a response to (more are dropped: the peer
 * retries). */
#define PATH_RESPONSES_MAX 4
/* RESETs for streams we never created (refused for max_streams). */
#define ORPHAN_RESETS_MAX 64
/* How often drained stream rings are given back (stream_trim). */
#define CONN_TRIM_US 2000000
/* Distinct ranges of peer stream ids we remember as opened. */
#define PEER_IDS_RANGES_MAX 4096

/* Intrusive doubly linked list node; a node is unlinked when prev == NULL. */
struct dl {
	struct dl *prev, *next;
};

/* Control frames a stream owes the peer (cstream.ctl). */
enum {
	CTL_OPEN = 1,
	CTL_ACCEPT = 2,
	CTL_RESET = 4,
	CTL_MAX_STREAM_DATA = 8,
};

/* Events a stream owes the engine (cstream.ev), reported in bit order. */
enum {
	EVF_INCOMING = 1,
	EVF_OPENED = 2,
	EVF_READABLE = 4,
	EVF_WRITABLE = 8,
	EVF_FIN = 16,
	EVF_RESET = 32,
};

struct cstream {
	struct stream s;
	UT_hash_handle hh;
	struct dl send_node, ctl_node, ev_node, open_node, wblock_node;
	uint32_t ctl;
	uint32_t ev;
	bool local;           /* we opened it */
	bool released;        /* the engine let go of it */
	bool discard;         /* incoming data is dropped (reset/released) */
	bool peer_reset;      /* the peer reset it */
	bool reset_acked;     /* our RESET was acknowledged */
	bool fin_reported;
	uint32_t out_reason;  /* reason of our RESET */
	uint64_t reset_final; /* final size our RESET carries */
	uint64_t acct;        /* received bytes counted as consumed (session) */
	uint64_t open_deadline_us;
	struct compress_tx ztx;
	struct compress_rx zrx;
};

/* What one frame of a sent packet said, to act on its ack or loss.  Built
 * with designated initialisers: unnamed fields are zero. */
struct sent_frame {
	uint8_t type;         /* enum wire_frame */
	bool fin : 1;         /* STREAM: carried the FIN */
	/* RESET of a stream no longer held (refused, or freed): a loss
	 * resends it from this record alone */
	bool orphan : 1;
	uint16_t port;        /* OPEN */
	union {
		uint32_t len;     /* STREAM */
		uint32_t reason;  /* RESET */
	};
	uint64_t id;
	uint64_t off;         /* STREAM offset; MAX_* value; RESET final size */
};
/* Every packet in flight holds SENT_FRAMES_MAX of these. */
_Static_assert(sizeof(struct sent_frame) == 24, "sent_frame grew");

struct sent_rec {
	uint32_t next_free;   /* free list link */
	uint32_t size;        /* UDP payload bytes */
	uint16_t nframes;
	bool probe;
	bool in_use;
	struct sent_frame f[SENT_FRAMES_MAX];
};

struct path_data {
	uint8_t b[FRAME_PATH_DATA_BYTES];
};

struct orphan_reset {
	uint64_t id;
	uint32_t reason;
};

struct conn {
	struct conn_config cfg;
	struct recovery rec;
	struct ack_tracker acks;
	struct pmtu pmtu;
	uint64_t next_pn;

	struct cstream *streams;      /* uthash by s.id */
	size_t nstreams;
	uint64_t next_local_id;
	struct rangeset peer_ids;     /* (id >> 1) of peer streams ever opened */
	struct dl send_q, ctl_q, ev_q, open_q; /* open_q: OPENING, by deadline */
	struct dl wblock_q;           /* writers cut short, waiting for room */

	/* sent-packet log, indexed by recovery meta */
	struct sent_rec *log;
	uint32_t log_cap, log_used, log_free;

	/* session flow control */
	uint64_t rx_max;              /* credit we advertised */
	uint64_t rx_window;
	uint64_t rx_window_start_us;
	uint64_t rx_total;            /* sum of highest offsets received */
	uint64_t rx_consumed;         /* of those, consumed or discarded */
	bool need_max_data;
	uint64_t tx_max;              /* the peer's credit */
	uint64_t tx_total;            /* new stream bytes sent */
	uint64_t tx_buffered;         /* sum of send buffers */

	/* pending connection-level frames */
	struct path_data path_resp[PATH_RESPONSES_MAX];
	unsigned n_path_resp;
	struct path_data challenge;
	bool need_challenge;
	struct orphan_reset orphans[ORPHAN_RESETS_MAX];
	unsigned n_orphans;
	uint64_t early_opens;         /* streams opened inside the handshake */
	bool need_close, close_sent;
	uint32_t close_reason;

	/* liveness */
	uint64_t now_us;              /* latest time the caller gave */
	uint64_t last_recv_us, last_send_us;
	bool ever_sent;
	bool dead, closed_by_peer, closing;
	uint32_t ev_conn;             /* pending DEAD / CLOSED events (bits) */
	uint32_t dead_reason;
	struct path_data path_events[PATH_RESPONSES_MAX];
	unsigned n_path_events;
	bool mtu_changed;             /* apply after recovery callbacks */
	struct compress_ctx zstd;     /* shared by all streams (compress.h) */
	uint64_t last_trim_us;

	/* stats */
	uint64_t bytes_sent, bytes_received, packets_sent, packets_received;
	uint64_t packets_retransmitted, stream_bytes_sent, stream_bytes_received;
	uint64_t packets_malformed, packets_unacked;

	uint8_t scratch[COMPRESS_RECORD_MAX + 2048]; /* compress output */
};

/* dl helpers */
static inline void dl_init(struct dl *h) { h->prev = h->next = h; }
static inline bool dl_linked(const struct dl *n) { return n->prev != NULL; }
static inline bool dl_empty(const struct dl *h) { return h->next == h; }
static inline void dl_push(struct dl *h, struct dl *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}
static inline void dl_del(struct dl *n)
{
	if (!n->prev)
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
}
#define dl_entry(ptr, member) \
	((struct cstream *)((char *)(ptr) - offsetof(struct cstream, member)))

/* conn_stream.c, for conn.c */
struct cstream *conn_find(struct conn *c, uint64_t id);
void conn_stream_enqueue(struct conn *c, struct cstream *cs);
void conn_stream_ctl(struct conn *c, struct cstream *cs, uint32_t flag);
void conn_stream_event(struct conn *c, struct cstream *cs, uint32_t flag);
void conn_stream_maybe_free(struct conn *c, struct cstream *cs);
/* Reset cs from our side (RESET frame queued unless the conn is dead);
 * event: also report CONN_EV_RESET with why to the engine. */
void conn_stream_local_reset(struct conn *c, struct cstream *cs, uint32_t why, bool event);
void conn_stream_after_ack(struct conn *c, struct cstream *cs);
/* WRITABLE for blocked writers that have room again (after ACKs). */
void conn_wake_writers(struct conn *c);
int conn_rx_frame(struct conn *c, const struct frame *f, uint64_t now_us, bool *no_ack);
void conn_kill_streams(struct conn *c, uint32_t reason, bool send_reset);
void conn_free_streams(struct conn *c);
uint64_t conn_bdp(const struct conn *c);
uint64_t conn_srtt(const struct conn *c);
void conn_trim(struct conn *c);


#endif
