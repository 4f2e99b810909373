/*
 * session.h — one peer's secure session: the handshake state machine, the
 * transport keypairs, rekeying, and sealing/opening DATA packets.
 *
 * Sans-I/O: every call takes the current time (now_ms, a monotonic clock
 * in milliseconds) and returns what to send.  The engine owns the socket.
 *
 * Engine contract, in short (docs/PROTOCOL.md has the whole story):
 *  - Outgoing traffic: session_seal(); on SRM_ERR_AGAIN call
 *    session_want_handshake() and queue the data.
 *  - After every session_* call and whenever session_next_deadline()
 *    passes, call session_handshake_packet() and send what it writes.
 *  - Incoming, by the type byte (wire.h):
 *      INIT:   handshake_guard_check -> noise_consume_init -> find the
 *              session by ni.peer_pub (unknown: refuse, log rate-limited)
 *              -> session_receive_init; send resp if *resp_len > 0 (even
 *              when it returns SRM_ERR_VERSION); noise_init_wipe(&ni).
 *      RESP:   handshake_guard_check -> session_receiver_index ->
 *              index_table_lookup -> session_receive_resp.  On 0 the
 *              session is established: send a packet at once (the
 *              transport sends a PING) so that the responder may use the
 *              keys (key confirmation).
 *      COOKIE: session_receiver_index -> lookup -> session_receive_cookie.
 *      DATA:   session_receiver_index -> lookup -> session_open.  On
 *              success the source address is the peer's current endpoint
 *              (roaming: only authenticated packets move it).
 *  - Negative results <= -100 are drops: count SRM_DROP_OF(rc) and send
 *    nothing.  -1..-99 are enum srm_error.
 *  - session_peer_boot_id() changing means the peer restarted: reset the
 *    transport.
 */
#ifndef SRMUDP_SESSION_H
#define SRMUDP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "srmudp.h"
#include "wire.h"
#include "noise.h"
#include "cookie.h"
#include "index_table.h"

/* WireGuard's timers (whitepaper section 6.1), same reasons. */
#define REKEY_AFTER_MS 120000      /* initiator starts a new handshake */
#define REJECT_AFTER_MS 180000     /* keys older than this never used */
#define REKEY_TIMEOUT_MS 5000      /* retransmit cap; responder waits this long */
#define KEEPALIVE_TIMEOUT_MS 10000
/* A responder rekeys itself only this late, so that normally only the
 * initiator does and simultaneous rekeys are rare. */
#define REKEY_RESPONDER_AFTER_MS (REJECT_AFTER_MS - KEEPALIVE_TIMEOUT_MS - REKEY_TIMEOUT_MS)
#define REKEY_AFTER_PACKETS (UINT64_C(1) << 60)
/* Nonce reuse margin: the replay window must never see a wrapped number. */
#define REJECT_AFTER_PACKETS (UINT64_MAX - (UINT64_C(1) << 13))
/* First retransmit after 200..500 ms (most RTTs fit), doubling to 5 s. */
#define HANDSHAKE_RETRY_MIN_MS 200
#define HANDSHAKE_RETRY_JITTER_MS 300
#define HANDSHAKE_RETRY_MAX_MS REKEY_TIMEOUT_MS
#define CONNECT_TIMEOUT_DEFAULT_MS 10000
/* A responder waits for key confirmation only after an INIT whose
 * timestamp is this close to its own wall clock (peers' clocks are NTP
 * synchronised; a replayed old INIT is not). */
#define RESPONDER_WAIT_MAX_SKEW_MS 60000

struct session_config {
	uint32_t local_caps;          /* session_local_caps() */
	uint64_t boot_id;             /* random per engine instance */
	int force_chacha;             /* never negotiate AES-256-GCM */
	uint32_t connect_timeout_ms;  /* 0: CONNECT_TIMEOUT_DEFAULT_MS */
	/* Wall clock = now_ms + wall_offset_ms, for the INIT timestamp that
	 * must keep increasing across restarts.  The engine sets it once:
	 * clock_wall_offset_ms(). */
	int64_t wall_offset_ms;
	uint64_t rekey_after_packets; /* 0: REKEY_AFTER_PACKETS (tests lower it) */
	uint8_t min_version, max_version; /* 0: WIRE_VERSION (tests change them) */
	srm_rng_fn *rng;              /* NULL: randombytes_buf */
	void *rng_ctx;
};

struct session;

/* Capabilities of this host: CAP_AES256GCM if the CPU has it. */
uint32_t session_local_caps(void);

/* id and indices must outlive the session.  NULL: NOMEM, or peer_pub is
 * invalid (low order) or our own key. */
struct session *session_new(const struct identity *id, const uint8_t peer_pub[NOISE_KEY_BYTES],
			    const struct session_config *cfg, struct index_table *indices);
/* Wipes every key and releases every index. */
void session_free(struct session *s);
const uint8_t *session_peer_pub(const struct session *s);
/* Our receiver index idx belongs to the newest keys we hold (those of the
 * latest handshake, confirmed or not). */
bool session_index_is_newest(const struct session *s, uint32_t idx);

/* Traffic waits: start initiating unless a usable keypair exists or an
 * attempt is running; clears session_failed().  A session that just
 * answered the peer's INIT waits up to REKEY_TIMEOUT_MS for the peer's
 * key confirmation before initiating itself. */
void session_want_handshake(struct session *s, uint64_t now_ms);
/* ...and with one under way, its INIT leaves again now rather than at the
 * next retransmission: a new path to try (the relay) just opened. */
void session_handshake_now(struct session *s, uint64_t now_ms);
/* A HANDSHAKE_INIT to send now (its length), or 0.  Retransmits with
 * exponential backoff and jitter; after connect_timeout_ms without a
 * usable keypair the attempt fails (session_failed() until the next
 * want_handshake).  Also expires old keypairs.  cap >= INIT_BYTES. */
size_t session_handshake_packet(struct session *s, uint64_t now_ms, uint8_t *out, size_t cap);
/* A PUNCH for this peer (PUNCH_BYTES, cap permitting): 0 when cap is short. */
size_t session_punch_packet(struct session *s, uint8_t *out, size_t cap);
/* When session_handshake_packet wants calling again; UINT64_MAX: never. */
uint64_t session_next_deadline(const struct session *s, uint64_t now_ms);
/* While a handshake attempt runs, compute the next INIT's key tokens now
 * (two X25519), off the path of the packet that will need them; a no-op
 * otherwise or when done already. */
void session_prepare_init(struct session *s);

/* Early frames (NOISE_EARLY_BYTES at most): transport frames that every
 * INIT of ours carries from now on, so that the responder can act on them
 * (the first stream's OPEN) without waiting for a round trip of DATA.
 * len 0 clears them.  New frames while an INIT is outstanding make the
 * next session_handshake_packet send a new INIT at once.  They are not forward-secret (an IK INIT payload
 * never is), and a restarted responder may act on a replayed INIT's
 * frames, so only idempotent frames belong here. */
void session_set_early(struct session *s, const uint8_t *frames, size_t len);

/* The responder's side of early frames: called by session_receive_init for
 * an INIT it answers, fresh by our wall clock (RESPONDER_WAIT_MAX_SKEW_MS)
 * and carrying early frames, before the RESP is built.  `in` holds the
 * INIT's frames (zero padded), peer_boot_id its boot id; the callee writes
 * its answering frames (up to NOISE_EARLY_BYTES, zero padded) to `out`,
 * which the RESP carries. */
typedef void session_early_fn(void *ctx, const uint8_t in[NOISE_EARLY_BYTES],
			      uint64_t peer_boot_id, uint8_t out[NOISE_EARLY_BYTES]);

/* After noise_consume_init found this session's peer.  Checks the
 * timestamp (replay), settles simultaneous initiation (the side with the
 * lower static public key yields and answers; the higher one ignores the
 * peer's INIT while its own is outstanding), answers with a RESP in resp
 * (cap >= RESP_BYTES).  Returns 0 (*resp_len 0 when ignored),
 * SRM_ERR_VERSION (no common version or unknown required capability; a
 * RESP telling the peer our versions may still be in resp), or a drop
 * code: UNKNOWN_PEER, AUTH, REPLAY. */
int session_receive_init(struct session *s, const struct noise_init *in, uint64_t now_ms,
			 session_early_fn *early, void *early_ctx,
			 uint8_t *resp, size_t cap, size_t *resp_len)
	__attribute__((warn_unused_result));
/* Read-only: does this INIT authenticate for s, with a timestamp within
 * RESPONDER_WAIT_MAX_SKEW_MS of our wall clock?  For an engine about to
 * create a fresh session for a known key (whose replay memory is empty):
 * an old INIT replayed from elsewhere fails here.  Costs no DH.  Returns 0
 * or a drop code: UNKNOWN_PEER, AUTH, STALE. */
int session_check_init_fresh(const struct session *s, const struct noise_init *in,
			     uint64_t now_ms) __attribute__((warn_unused_result));
/* Returns 0 (a new keypair is current: send something now; the RESP's
 * early frames, zero padded, are in early unless it is NULL, and our own
 * early frames are cleared), SRM_ERR_VERSION (the attempt failed:
 * session_error() says so), or a drop code: MALFORMED, VERSION, MAC,
 * UNKNOWN_INDEX, AUTH. */
int session_receive_resp(struct session *s, const uint8_t *pkt, size_t len, uint64_t now_ms,
			 uint8_t early[NOISE_EARLY_BYTES]) __attribute__((warn_unused_result));
/* Stores the cookie for mac2 of later handshake messages.  Returns 0 or a
 * drop code: MALFORMED, VERSION, UNKNOWN_INDEX, AUTH. */
int session_receive_cookie(struct session *s, const uint8_t *pkt, size_t len, uint64_t now_ms)
	__attribute__((warn_unused_result));

/* Seal a DATA packet numbered pn (the caller's, increasing, never reused
 * in this session) into out (cap >= len + WIRE_DATA_OVERHEAD; out may not
 * overlap plain).  Returns the packet length, SRM_ERR_AGAIN when no usable
 * keypair (call session_want_handshake), SRM_ERR_INVALID for a short cap. */
int session_seal(struct session *s, uint64_t pn, const uint8_t *plain, size_t len,
		 uint8_t *out, size_t cap, uint64_t now_ms) __attribute__((warn_unused_result));
/* Open a DATA packet.  plain may be pkt + WIRE_DATA_HEADER_BYTES (in
 * place); cap >= len - WIRE_DATA_OVERHEAD.  Returns the plaintext length
 * with *pn set, or a drop code: MALFORMED, VERSION, UNKNOWN_INDEX, STALE
 * (expired keys), REPLAY, AUTH. */
int session_open(struct session *s, const uint8_t *pkt, size_t len, uint8_t *plain,
		 size_t cap, uint64_t *pn, uint64_t now_ms) __attribute__((warn_unused_result));

/* A usable current keypair exists (session_seal will work). */
int session_established(const struct session *s);
/* The last attempt failed; session_error() says why: SRM_ERR_UNREACHABLE
 * (timeout) or SRM_ERR_VERSION. */
int session_failed(const struct session *s);
int session_error(const struct session *s);
/* When the peer's last INIT passed (authenticated and fresh: the peer
 * reached us); 0 if none has. */
uint64_t session_peer_init_ms(const struct session *s);
/* The peer's boot id from the latest handshake; 0 before any.  A fresh
 * INIT we answered counts before its key confirmation (a restarted peer's
 * early frames belong to its new boot). */
uint64_t session_peer_boot_id(const struct session *s);
/* Time since the last handshake completed (the newest current keypair was
 * made), also after its keys expired; UINT64_MAX if none ever did. */
uint64_t session_handshake_age_ms(const struct session *s, uint64_t now_ms);
/* AEAD in use on the current keypair (for logs): "chacha20-poly1305",
 * "aes-256-gcm" or "none". */
const char *session_cipher_name(const struct session *s);

/* Receiver index of a RESP, COOKIE_REPLY or DATA packet.  Returns 0, or a
 * drop code: MALFORMED, VERSION. */
int session_receiver_index(const uint8_t *pkt, size_t len, uint32_t *idx)
	__attribute__((warn_unused_result));

/* The drop reason to count for a negative result of any session_*,
 * noise_* or handshake_guard_* call: the drop code's reason, VERSION for
 * SRM_ERR_VERSION, MALFORMED for anything else. */
static inline enum srm_drop_reason session_drop_reason(int rc)
{
	if (SRM_IS_DROP(rc))
		return SRM_DROP_OF(rc);
	return rc == SRM_ERR_VERSION ? SRM_DROP_VERSION : SRM_DROP_MALFORMED;
}
#define handshake_guard_reason session_drop_reason
/* Where the receiver index sits (the engine's names). */
#define HANDSHAKE_RESP_RECEIVER_AT RESP_OFF_RECEIVER
#define COOKIE_REPLY_RECEIVER_AT COOKIE_OFF_RECEIVER
#define DATA_RECEIVER_AT WIRE_HEADER_BYTES

/* ---- For tests ---------------------------------------------------------- */
/* Copy the current keypair's keys; 0, or SRM_ERR_NOTFOUND without one. */
int session_current_keys(const struct session *s, uint8_t send[NOISE_KEY_BYTES],
			 uint8_t recv[NOISE_KEY_BYTES]);
/* Keypairs held: current + previous + next. */
int session_keypair_count(const struct session *s);
/* Keypairs ever derived by this session (both roles). */
uint64_t session_keypairs_created(const struct session *s);

#endif
