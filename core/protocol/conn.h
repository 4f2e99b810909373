/*
 * conn.h — the per-peer reliable transport, sans-I/O.
 *
 * A conn multiplexes many bidirectional byte streams over the decrypted
 * payloads of one peer session.  It owns no socket and no clock: the caller
 * feeds it decrypted payloads and the current time, asks it for the next
 * payload to encrypt and send, and calls it back at conn_next_deadline().
 * It assembles frame.c (wire encoding), stream.c (buffers, reassembly,
 * flow control), compress.c (stream-level zstd) with the loss recovery,
 * congestion control, ACK and path MTU modules (recovery.h, cc.h, ack.h,
 * pmtu.h).  docs/TRANSPORT.md describes the behaviour.
 *
 * Stream ids are u64; ours are 2n + stream_id_parity, the peer's have the
 * other parity.  Not thread-safe: one conn belongs to one engine thread.
 *
 * Semantics, as an application sees them (TCP-like): ordered, exactly-once
 * bytes; OPEN towards a port answered by ACCEPT or RESET(REFUSED); an open
 * unanswered after open_timeout_ms resets with RESET_TIMEOUT; half-close
 * per direction; RESET with a reason; backpressure through per-stream and
 * session flow control with bounded memory on both sides.
 */
#ifndef SRMUDP_CONN_H
#define SRMUDP_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "srmudp.h"
#include "wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Conntrack forgets idle UDP after 30 s: ping at half of that. */
#define CONN_DEFAULT_KEEPALIVE_MS 15000
#define CONN_DEFAULT_IDLE_TIMEOUT_MS 30000
#define CONN_DEFAULT_OPEN_TIMEOUT_MS 10000
#define CONN_DEFAULT_MAX_STREAMS 4096

struct conn_config {
	int stream_id_parity;     /* 0 or 1: our stream ids are 2n+parity; the
				   * engine sets it by comparing public keys */
	enum srm_cc cc;
	enum srm_compress compress;
	uint32_t idle_timeout_ms; /* nothing received this long: CONN_EV_DEAD; 0 = default */
	uint32_t keepalive_ms;    /* PING when nothing was sent this long; 0 = default 15000 */
	uint32_t open_timeout_ms; /* OPEN unanswered: RESET_TIMEOUT; 0 = default */
	size_t max_streams;       /* live streams, both directions; 0 = default */
	uint32_t max_udp_payload; /* PMTU search ceiling: WIRE_MAX_UDP_PAYLOAD
				   * (IPv4, the default for 0) or
				   * PMTU_MAX_UDP6_PAYLOAD (IPv6), less any
				   * relay encapsulation */
	/* Optional CPU clock (e.g. CLOCK_THREAD_CPUTIME_ID in us) used only to
	 * measure zstd's throughput for SRM_COMPRESS_AUTO; NULL: compression
	 * is then switched off only for data that does not shrink. */
	uint64_t (*cpu_clock_us)(void *arg);
	void *cpu_clock_arg;
};

struct conn;

/* Returns NULL on allocation failure or an invalid config. */
struct conn *conn_new(const struct conn_config *cfg, uint64_t now_us);
void conn_free(struct conn *c);

/* Build the plaintext payload of the next packet to send now into buf (at
 * most cap bytes; conn decides the size from its PMTU state minus
 * WIRE_DATA_OVERHEAD; the caller passes cap >= WIRE_MAX_UDP_PAYLOAD).
 * Returns the length (0: nothing may or needs to be sent now: cwnd, pacing,
 * nothing pending) and the packet number in *pn.  A returned length larger
 * than conn_mtu_payload() means a PMTU probe: the caller sends it with DF.
 * Call it in a loop until it returns 0.  The first call on a fresh conn
 * returns a PING (the handshake initiator must send something at once). */
size_t conn_build_packet(struct conn *c, uint64_t now_us, uint8_t *buf, size_t cap,
			 uint64_t *pn);

/* A decrypted payload (pn already replay-checked by the crypto layer).
 * Returns 0, or SRM_ERR_INVALID for malformed frames (the whole packet is
 * then ignored and counted; frames before the bad one may have acted,
 * which is harmless because every frame is idempotent). */
int conn_handle_packet(struct conn *c, uint64_t now_us, uint64_t pn,
		       const uint8_t *payload, size_t len);

/* When to call conn_on_timeout()/conn_build_packet() again (absolute, us).
 * UINT64_MAX: never (a dead conn). */
uint64_t conn_next_deadline(struct conn *c, uint64_t now_us);
void conn_on_timeout(struct conn *c, uint64_t now_us);

/* Largest plaintext payload of a normal (non-probe) packet right now. */
size_t conn_mtu_payload(const struct conn *c);
/* sendmsg said EMSGSIZE, or ICMP packet-too-big arrived, for a datagram of
 * udp_size bytes; mtu_hint is the UDP payload that fits, or 0. */
void conn_on_too_big(struct conn *c, uint32_t udp_size, uint32_t mtu_hint, uint64_t now_us);
/* The largest datagram the active path can carry changed (pmtu_set_max). */
void conn_set_max_udp_payload(struct conn *c, uint32_t max, uint64_t now_us);

/* ---- Streams ------------------------------------------------------------ */

/* Sends OPEN (reliably); CONN_EV_OPENED or CONN_EV_RESET (REFUSED,
 * TIMEOUT, ...) answers.  Returns 0, SRM_ERR_NOMEM (max_streams or
 * allocation), SRM_ERR_CLOSED (conn dead or closed). */
int conn_stream_open(struct conn *c, uint16_t port, uint64_t now_us, uint64_t *id);
/* Answer an incoming OPEN.  Returns 0, SRM_ERR_NOTFOUND, SRM_ERR_INVALID
 * (not an unanswered incoming stream). */
int conn_stream_accept(struct conn *c, uint64_t id);
/* Bytes taken (0 = buffer full: backpressure, wait for CONN_EV_WRITABLE),
 * SRM_ERR_NOTFOUND, SRM_ERR_CLOSED (shut down or reset).  Writing to a
 * stream still opening is allowed; nothing is sent before the ACCEPT. */
ssize_t conn_stream_write(struct conn *c, uint64_t id, const void *p, size_t n);
/* Bytes delivered in order (0 = nothing now, or the end: see
 * CONN_EV_FIN), SRM_ERR_NOTFOUND, SRM_ERR_RESET (the peer reset it). */
ssize_t conn_stream_read(struct conn *c, uint64_t id, void *p, size_t n);
/* FIN after buffered data.  Returns 0, SRM_ERR_NOTFOUND, SRM_ERR_CLOSED. */
int conn_stream_shutdown(struct conn *c, uint64_t id);
/* Abort both directions; the peer gets CONN_EV_RESET with why (and
 * answers with its own RESET, so both sides agree on the bytes sent).
 * Refusing an incoming OPEN is conn_stream_reset(c, id, RESET_REFUSED),
 * which also releases it.  Returns 0 or SRM_ERR_NOTFOUND. */
int conn_stream_reset(struct conn *c, uint64_t id, enum wire_reset_reason why);
/* The local side no longer uses the stream (like close()): it implies FIN
 * after the buffered data, data still arriving is discarded, no more events
 * are reported, and the stream is freed once finished both ways (or once
 * both RESETs crossed).  Every stream the engine learned about (opened, or
 * INCOMING and accepted) must be released, reset ones included.  The id is
 * invalid after. */
void conn_stream_release(struct conn *c, uint64_t id);

/* Early frames (session.h): the first OPEN of a fresh transport rides in
 * the handshake, and its answer in the handshake's response.  They are the
 * ordinary frames, so everything stays idempotent: the OPEN also repeats
 * in DATA unless the answer arrived first, and the ACCEPT follows in DATA.
 *
 * conn_early_open: the OPEN of the oldest stream still opening, or 0.
 * conn_receive_early: apply OPEN, ACCEPT and RESET frames (PADDING ends
 * them) as if they came in a packet; *opened is the id of an OPEN among
 * them, UINT64_MAX if none.  Returns 0 or SRM_ERR_INVALID (another frame
 * type, or one the conn rejects).
 * conn_early_answer: the answer so far to the peer's stream id: ACCEPT
 * unless it was refused (RESET), 0 when the conn holds no such stream. */
size_t conn_early_open(struct conn *c, uint8_t *out, size_t cap);
int conn_receive_early(struct conn *c, const uint8_t *p, size_t len, uint64_t now_us,
		       uint64_t *opened);
size_t conn_early_answer(struct conn *c, uint64_t id, uint8_t *out, size_t cap);

enum conn_event_type {
	CONN_EV_INCOMING,  /* OPEN arrived: port; answer with accept or reset */
	CONN_EV_OPENED,    /* our open was accepted */
	CONN_EV_READABLE,  /* new in-order bytes: read until conn_stream_read
			    * returns 0 (edge-triggered) */
	CONN_EV_WRITABLE,  /* write space after a write returned 0 or short */
	CONN_EV_FIN,       /* the peer finished sending and all was read */
	CONN_EV_RESET,     /* reason: enum wire_reset_reason; the stream is dead */
	CONN_EV_DEAD,      /* idle timeout: peer gone; all streams are reset
			    * with RESET_TIMEOUT (their RESET events come first) */
	CONN_EV_CLOSED,    /* the peer sent CLOSE (reason); streams were reset
			    * with RESET_SHUTDOWN */
	CONN_EV_PATH_RESPONSE, /* PATH_RESPONSE arrived carrying path_data */
};

struct conn_event {
	enum conn_event_type type;
	uint64_t stream;
	uint16_t port;
	uint32_t reason;
	uint8_t path_data[8];
};

/* 1 and fills ev, or 0.  Events are coalesced per stream (one READABLE
 * until the stream is read again, etc.), so the queue stays bounded. */
int conn_poll_event(struct conn *c, struct conn_event *ev);

/* Say goodbye: reset all streams with RESET_SHUTDOWN and queue a CLOSE
 * frame carrying reason (sent by the next conn_build_packet). */
void conn_close(struct conn *c, uint32_t reason);
/* Queue a PATH_CHALLENGE with these 8 bytes (the engine validates a new
 * peer address by sending the next packet there). */
void conn_path_challenge(struct conn *c, const uint8_t data[8]);
/* 1 once the peer was declared dead or closed the session. */
int conn_is_dead(const struct conn *c);

/* Heap bytes the conn holds for buffers (stream rings, zstd contexts,
 * the sent-packet log): what a stalled reader costs. */
size_t conn_memory(const struct conn *c);
/* Bytes buffered in one stream: *tx written and not yet acknowledged,
 * *rx received and not yet read (either may be NULL).  Returns 0 or
 * SRM_ERR_NOTFOUND. */
int conn_stream_buffered(const struct conn *c, uint64_t id, uint64_t *tx, uint64_t *rx);

/* Fills rtt, cwnd, pmtu, counters, streams (the session fields
 * established/relayed/path/handshake_age_ms are left untouched). */
void conn_get_stats(struct conn *c, struct srm_peer_stats *out);

#ifdef __cplusplus
}
#endif
#endif
