/*
 * session.c — per-peer handshake state machine, keypairs, rekey, and
 * DATA sealing/opening.
 *
 * Keypair slots, as in WireGuard:
 *   current   sends and receives;
 *   previous  receives only, until it expires (rekey overlap);
 *   next      a responder's new keypair, receive only, until the first
 *             authenticated packet under it confirms that the initiator
 *             has it (key confirmation); then it becomes current.
 *
 * Simultaneous initiation: whoever has an INIT outstanding when the
 * peer's INIT arrives compares static public keys; the higher key ignores
 * the peer's INIT, the lower one abandons its own attempt and answers.  So
 * exactly one of two crossing handshakes completes.  docs/PROTOCOL.md
 * walks through the cases.
 */
#include "session.h"

#include <stdlib.h>
#include <string.h>

#include "aead.h"
#include "replay.h"

struct keypair {
	struct aead_key send, recv; /* first: AES state wants 16-byte alignment */
	struct replay_window replay;
	uint32_t local_index, remote_index;
	uint64_t birth_ms;
	uint64_t sent;
	uint64_t peer_boot_id;
	int initiator;
	int confirmable; /* as next: the first packet may make it current */
};

struct session {
	const struct identity *id;
	struct index_table *indices;
	struct session_config cfg;
	uint32_t caps; /* advertised */
	uint8_t peer_pub[NOISE_KEY_BYTES];
	uint8_t ss[NOISE_KEY_BYTES];
	uint8_t peer_mac1_key[NOISE_KEY_BYTES], peer_cookie_key[NOISE_KEY_BYTES];
	int we_are_higher; /* our static key sorts after the peer's */

	struct keypair *cur, *prev, *next;
	uint64_t keypairs_created;

	/* Our initiation. */
	struct noise_handshake hs;
	int hs_sent;             /* hs holds an outstanding INIT */
	uint8_t last_init[INIT_BYTES]; /* hs's INIT, for an immediate resend */
	int resend_init;
	int attempt;             /* we want a (new) keypair */
	uint64_t attempt_start, next_send_ms;
	uint32_t retry_ms;       /* 0: nothing sent in this attempt yet */
	int failed, error;
	uint64_t last_ts_sent;
	uint8_t early[NOISE_EARLY_BYTES]; /* frames for our INITs */
	struct noise_init_prep prep; /* the next INIT's key tokens */
	int have_prep;

	/* The peer's initiations. */
	uint64_t peer_last_ts;
	int have_peer_ts;
	uint64_t responded_ms;
	int responded;
	uint64_t peer_init_ms;   /* the peer's last INIT we accepted; 0: none */

	/* When the newest current keypair was made, kept after it expires
	 * (status shows the age of the last handshake, not "never"). */
	uint64_t last_cur_ms;
	int had_cur;

	/* Cookie for mac2, and the mac1 a cookie reply must answer. */
	uint8_t cookie[COOKIE_BYTES];
	uint64_t cookie_ms;
	int have_cookie;
	uint8_t last_mac1[MAC_BYTES];
	uint32_t last_mac1_index;
	int have_last_mac1;
};

uint32_t session_local_caps(void)
{
	return aead_aes_available() ? CAP_AES256GCM : 0;
}

static void rnd(struct session *s, void *buf, size_t len)
{
	srm_random(s->cfg.rng, s->cfg.rng_ctx, buf, len);
}

/* ---- Keypairs ----------------------------------------------------------- */

static void keypair_free(struct session *s, struct keypair *kp)
{
	if (!kp)
		return;
	index_table_remove(s->indices, kp->local_index);
	sodium_memzero(kp, sizeof(*kp));
	free(kp);
}

static struct keypair *keypair_new(struct session *s, const struct noise_keys *keys,
				   uint32_t peer_caps, int initiator, uint32_t local_index,
				   uint32_t remote_index, uint64_t boot_id, uint64_t now_ms)
{
	void *mem = NULL;
	if (posix_memalign(&mem, 64, sizeof(struct keypair)) != 0)
		return NULL;
	struct keypair *kp = mem;
	memset(kp, 0, sizeof(*kp));
	enum aead_alg alg = (s->caps & peer_caps & CAP_AES256GCM) ? AEAD_AES256GCM
								 : AEAD_CHACHA20POLY1305;
	if (aead_key_init(&kp->send, alg, keys->send) != 0 ||
	    aead_key_init(&kp->recv, alg, keys->recv) != 0) {
		sodium_memzero(kp, sizeof(*kp));
		free(kp);
		return NULL;
	}
	replay_init(&kp->replay);
	kp->local_index = local_index;
	kp->remote_index = remote_index;
	kp->birth_ms = now_ms;
	kp->initiator = initiator;
	kp->confirmable = !initiator;
	kp->peer_boot_id = boot_id;
	s->keypairs_created++;
	return kp;
}

static int usable(const struct keypair *kp, uint64_t now_ms)
{
	return kp && now_ms - kp->birth_ms < REJECT_AFTER_MS && kp->sent < REJECT_AFTER_PACKETS;
}

static int expired(const struct keypair *kp, uint64_t now_ms)
{
	return now_ms - kp->birth_ms >= REJECT_AFTER_MS;
}

/* Keys past REJECT_AFTER_MS are never used again: wipe them now. */
static void expire(struct session *s, uint64_t now_ms)
{
	struct keypair **slots[] = { &s->cur, &s->prev, &s->next };
	for (size_t i = 0; i < 3; i++) {
		if (*slots[i] && expired(*slots[i], now_ms)) {
			keypair_free(s, *slots[i]);
			*slots[i] = NULL;
		}
	}
	if (s->have_cookie && now_ms - s->cookie_ms >= COOKIE_USE_MAX_AGE_MS) {
		sodium_memzero(s->cookie, sizeof(s->cookie));
		s->have_cookie = 0;
	}
}

static int rekey_due(const struct session *s, uint64_t now_ms)
{
	const struct keypair *kp = s->cur;
	if (!kp)
		return 0;
	uint64_t age = now_ms - kp->birth_ms;
	uint64_t limit = s->cfg.rekey_after_packets;
	return kp->sent >= limit ||
	       age >= (kp->initiator ? REKEY_AFTER_MS : REKEY_RESPONDER_AFTER_MS);
}

/* ---- Life cycle --------------------------------------------------------- */

struct session *session_new(const struct identity *id, const uint8_t peer_pub[NOISE_KEY_BYTES],
			    const struct session_config *cfg, struct index_table *indices)
{
	if (sodium_memcmp(id->pub, peer_pub, NOISE_KEY_BYTES) == 0)
		return NULL; /* talking to ourselves would make the tie-break meaningless */
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = id;
	s->indices = indices;
	s->cfg = *cfg;
	if (!s->cfg.connect_timeout_ms)
		s->cfg.connect_timeout_ms = CONNECT_TIMEOUT_DEFAULT_MS;
	if (!s->cfg.rekey_after_packets || s->cfg.rekey_after_packets > REKEY_AFTER_PACKETS)
		s->cfg.rekey_after_packets = REKEY_AFTER_PACKETS;
	if (!s->cfg.min_version)
		s->cfg.min_version = WIRE_VERSION;
	if (!s->cfg.max_version)
		s->cfg.max_version = WIRE_VERSION;
	s->caps = s->cfg.local_caps;
	if (s->cfg.force_chacha || !aead_aes_available())
		s->caps &= ~CAP_AES256GCM;
	memcpy(s->peer_pub, peer_pub, NOISE_KEY_BYTES);
	if (noise_precompute_ss(id, peer_pub, s->ss) != 0) {
		session_free(s);
		return NULL;
	}
	cookie_derive_keys(peer_pub, s->peer_mac1_key, s->peer_cookie_key);
	s->we_are_higher = memcmp(id->pub, peer_pub, NOISE_KEY_BYTES) > 0;
	return s;
}

static void abandon_handshake(struct session *s)
{
	if (s->hs_sent)
		index_table_remove(s->indices, s->hs.local_index);
	noise_handshake_wipe(&s->hs);
	s->hs_sent = 0;
	s->resend_init = 0;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	abandon_handshake(s);
	noise_init_prep_wipe(&s->prep);
	keypair_free(s, s->cur);
	keypair_free(s, s->prev);
	keypair_free(s, s->next);
	sodium_memzero(s, sizeof(*s));
	free(s);
}

bool session_index_is_newest(const struct session *s, uint32_t idx)
{
	const struct keypair *newest = s->next ? s->next : s->cur;
	return newest && newest->local_index == idx;
}

const uint8_t *session_peer_pub(const struct session *s)
{
	return s->peer_pub;
}

/* ---- Initiation --------------------------------------------------------- */

static void begin_attempt(struct session *s, uint64_t now_ms)
{
	if (s->attempt)
		return;
	s->attempt = 1;
	s->attempt_start = now_ms;
	s->retry_ms = 0;
	s->next_send_ms = now_ms;
	/* We just answered the peer's INIT: its confirmation is on the way,
	 * and an INIT of ours now would only cross it. */
	if (s->responded && s->next && now_ms - s->responded_ms < REKEY_TIMEOUT_MS)
		s->next_send_ms = s->responded_ms + REKEY_TIMEOUT_MS;
}

static void end_attempt(struct session *s)
{
	s->attempt = 0;
	s->retry_ms = 0;
	abandon_handshake(s);
}

void session_want_handshake(struct session *s, uint64_t now_ms)
{
	expire(s, now_ms);
	s->failed = 0;
	s->error = 0;
	if (usable(s->cur, now_ms) && !rekey_due(s, now_ms))
		return;
	/* An attempt that timed out but was not yet reaped starts over. */
	if (s->attempt && !usable(s->cur, now_ms) &&
	    now_ms - s->attempt_start >= s->cfg.connect_timeout_ms)
		end_attempt(s);
	begin_attempt(s, now_ms);
}

void session_handshake_now(struct session *s, uint64_t now_ms)
{
	session_want_handshake(s, now_ms);
	if (s->attempt && s->next_send_ms > now_ms)
		s->next_send_ms = now_ms;
}

static int cookie_fresh(const struct session *s, uint64_t now_ms)
{
	return s->have_cookie && now_ms - s->cookie_ms < COOKIE_USE_MAX_AGE_MS;
}

static uint32_t jitter(struct session *s, uint32_t max)
{
	uint32_t r;
	rnd(s, &r, sizeof(r));
	return max ? r % (max + 1) : 0;
}

void session_set_early(struct session *s, const uint8_t *frames, size_t len)
{
	uint8_t early[NOISE_EARLY_BYTES] = { 0 };
	if (len <= NOISE_EARLY_BYTES && len)
		memcpy(early, frames, len);
	if (!memcmp(early, s->early, NOISE_EARLY_BYTES))
		return;
	memcpy(s->early, early, NOISE_EARLY_BYTES);
	/* New frames while an INIT without them is on its way (the engine
	 * handshakes with a known peer as soon as it starts): a new INIT now,
	 * rather than a round trip of DATA after this one. */
	if (s->hs_sent && !sodium_is_zero(early, NOISE_EARLY_BYTES))
		s->next_send_ms = 0;
}

void session_prepare_init(struct session *s)
{
	uint8_t e_priv[NOISE_KEY_BYTES];

	if (s->have_prep || !s->attempt)
		return;
	rnd(s, e_priv, sizeof(e_priv));
	s->have_prep = noise_prepare_init(s->id, s->peer_pub, s->ss, e_priv, &s->prep) == 0;
	sodium_memzero(e_priv, sizeof(e_priv));
}

size_t session_handshake_packet(struct session *s, uint64_t now_ms, uint8_t *out, size_t cap)
{
	expire(s, now_ms);
	if (!s->attempt)
		return 0;
	int have = usable(s->cur, now_ms);
	if (have && !rekey_due(s, now_ms)) {
		end_attempt(s); /* e.g. the peer's handshake got there first */
		return 0;
	}
	if (!have && now_ms - s->attempt_start >= s->cfg.connect_timeout_ms) {
		end_attempt(s);
		s->failed = 1;
		s->error = SRM_ERR_UNREACHABLE;
		return 0;
	}
	if (cap < INIT_BYTES)
		return 0;
	if (s->resend_init && s->hs_sent) {
		s->resend_init = 0;
		memcpy(out, s->last_init, INIT_BYTES);
		return INIT_BYTES;
	}
	if (now_ms < s->next_send_ms)
		return 0;

	abandon_handshake(s);
	uint32_t idx;
	if (index_table_insert(s->indices, s, &idx) != 0) {
		s->next_send_ms = now_ms + HANDSHAKE_RETRY_MIN_MS;
		return 0;
	}
	session_prepare_init(s);
	if (!s->have_prep) {
		index_table_remove(s->indices, idx);
		s->next_send_ms = now_ms + HANDSHAKE_RETRY_MIN_MS;
		return 0;
	}
	uint64_t wall = now_ms + (uint64_t)s->cfg.wall_offset_ms;
	struct noise_payload pl = {
		.timestamp_ms = wall > s->last_ts_sent ? wall : s->last_ts_sent + 1,
		.boot_id = s->cfg.boot_id,
		.caps = s->caps,
		.min_version = s->cfg.min_version,
		.max_version = s->cfg.max_version,
	};
	memcpy(pl.early, s->early, NOISE_EARLY_BYTES);
	noise_create_init(&s->prep, idx, &pl, &s->hs, out);
	s->have_prep = 0;
	s->hs_sent = 1;
	s->last_ts_sent = pl.timestamp_ms;
	cookie_add_macs(out, INIT_BYTES, s->peer_mac1_key, cookie_fresh(s, now_ms) ? s->cookie : NULL,
			s->last_mac1);
	s->last_mac1_index = idx;
	s->have_last_mac1 = 1;
	memcpy(s->last_init, out, INIT_BYTES);
	s->resend_init = 0;
	s->retry_ms = !s->retry_ms ? HANDSHAKE_RETRY_MIN_MS
		      : s->retry_ms >= HANDSHAKE_RETRY_MAX_MS / 2 ? HANDSHAKE_RETRY_MAX_MS
								 : s->retry_ms * 2;
	s->next_send_ms = now_ms + s->retry_ms + jitter(s, HANDSHAKE_RETRY_JITTER_MS);
	return INIT_BYTES;
}

size_t session_punch_packet(struct session *s, uint8_t *out, size_t cap)
{
	if (cap < PUNCH_BYTES)
		return 0;
	wire_put_header(out, WIRE_PUNCH);
	rnd(s, out + PUNCH_OFF_NONCE, PUNCH_OFF_MAC1 - PUNCH_OFF_NONCE);
	cookie_add_macs(out, PUNCH_BYTES, s->peer_mac1_key, NULL, NULL);
	return PUNCH_BYTES;
}

uint64_t session_next_deadline(const struct session *s, uint64_t now_ms)
{
	uint64_t d = UINT64_MAX;
	if (s->attempt) {
		d = s->resend_init && s->hs_sent ? now_ms : s->next_send_ms;
		if (!s->cur && s->attempt_start + s->cfg.connect_timeout_ms < d)
			d = s->attempt_start + s->cfg.connect_timeout_ms;
	}
	const struct keypair *slots[] = { s->cur, s->prev, s->next };
	for (size_t i = 0; i < 3; i++)
		if (slots[i] && slots[i]->birth_ms + REJECT_AFTER_MS < d)
			d = slots[i]->birth_ms + REJECT_AFTER_MS; /* wipe it then */
	return d;
}

/* ---- Versions ----------------------------------------------------------- */

/* WIRE_VERSION, which these messages are framed in, must lie in both
 * ranges, and the peer may require no capability we do not know. */
static int compatible(const struct session *s, const struct noise_payload *pl)
{
	if (pl->min_version > WIRE_VERSION || pl->max_version < WIRE_VERSION)
		return 0;
	if (s->cfg.min_version > WIRE_VERSION || s->cfg.max_version < WIRE_VERSION)
		return 0;
	return !(pl->caps & CAP_REQUIRED_MASK & ~CAP_KNOWN);
}

static void fail(struct session *s, int error)
{
	end_attempt(s);
	s->failed = 1;
	s->error = error;
}

/* ---- Receiving handshake messages -------------------------------------- */

int session_receive_init(struct session *s, const struct noise_init *in, uint64_t now_ms,
			 session_early_fn *early, void *early_ctx,
			 uint8_t *resp, size_t cap, size_t *resp_len)
{
	struct noise_init st;
	struct noise_payload pl;
	struct noise_keys keys;
	int rc;

	*resp_len = 0;
	if (cap < RESP_BYTES)
		return SRM_ERR_INVALID;
	if (sodium_memcmp(in->peer_pub, s->peer_pub, NOISE_KEY_BYTES) != 0)
		return SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER);
	expire(s, now_ms);
	st = *in;
	rc = noise_finish_init(&st, s->ss, &pl);
	if (rc != 0)
		goto out;
	/* Timestamps only grow: a replayed or duplicated INIT stops here. */
	if (s->have_peer_ts && pl.timestamp_ms <= s->peer_last_ts) {
		rc = SRM_DROP_CODE(SRM_DROP_REPLAY);
		goto out;
	}
	s->peer_last_ts = pl.timestamp_ms;
	s->have_peer_ts = 1;
	/* The peer reached us: our own attempt timing out (it may have gone
	 * to a stale endpoint, or before the peer started) no longer means
	 * it is unreachable, and must not fail what this INIT opens. */
	s->failed = 0;
	s->error = 0;
	s->peer_init_ms = now_ms;

	if (s->hs_sent && s->attempt) {
		if (s->we_are_higher) {
			/* Ours wins; the peer yields when it sees it.  Its INIT
			 * got here, so the path (and, when punching, its NAT)
			 * is open now: send ours again at once, the very same
			 * bytes, so that a RESP already on its way still fits
			 * (a duplicate is dropped there as a replay). */
			s->resend_init = 1;
			rc = 0;
			goto out;
		}
		abandon_handshake(s); /* we yield: answer theirs instead */
	}

	struct noise_payload mine = {
		.boot_id = s->cfg.boot_id,
		.caps = s->caps,
		.min_version = s->cfg.min_version,
		.max_version = s->cfg.max_version,
	};
	int ok = compatible(s, &pl);
	uint32_t idx = 0; /* a refusing RESP names no index: nothing to send to */
	if (ok && (rc = index_table_insert(s->indices, s, &idx)) != 0)
		goto out;
	/* An old INIT replayed to a restarted responder passes the timestamp
	 * check (its memory is empty), but not this one. */
	uint64_t wall = now_ms + (uint64_t)s->cfg.wall_offset_ms;
	int fresh = pl.timestamp_ms + RESPONDER_WAIT_MAX_SKEW_MS >= wall &&
		    pl.timestamp_ms <= wall + RESPONDER_WAIT_MAX_SKEW_MS;
	if (ok && fresh && early && !sodium_is_zero(pl.early, NOISE_EARLY_BYTES))
		early(early_ctx, pl.early, pl.boot_id, mine.early);
	uint8_t e_priv[NOISE_KEY_BYTES];
	rnd(s, e_priv, sizeof(e_priv));
	rc = noise_create_resp(&st, e_priv, idx, &mine, resp, &keys);
	sodium_memzero(e_priv, sizeof(e_priv));
	if (rc != 0) {
		if (idx)
			index_table_remove(s->indices, idx);
		goto out;
	}
	cookie_add_macs(resp, RESP_BYTES, s->peer_mac1_key,
			cookie_fresh(s, now_ms) ? s->cookie : NULL, s->last_mac1);
	s->last_mac1_index = idx;
	s->have_last_mac1 = idx != 0;
	*resp_len = RESP_BYTES;
	if (!ok) {
		fail(s, SRM_ERR_VERSION);
		rc = SRM_ERR_VERSION;
		goto out;
	}
	struct keypair *kp = keypair_new(s, &keys, pl.caps, 0, idx, in->sender_index, pl.boot_id,
					 now_ms);
	if (!kp) {
		index_table_remove(s->indices, idx);
		*resp_len = 0;
		rc = SRM_ERR_NOMEM;
		goto out;
	}
	keypair_free(s, s->next);
	s->next = kp;
	/* Wait for the initiator's confirmation rather than cross it with an
	 * INIT of ours -- unless the INIT is far from our wall clock: an old
	 * INIT replayed to a restarted responder must not hold us back. */
	s->responded = fresh;
	s->responded_ms = now_ms;
	if (s->responded && s->attempt && s->next_send_ms < now_ms + REKEY_TIMEOUT_MS)
		s->next_send_ms = now_ms + REKEY_TIMEOUT_MS;
	rc = 0;
out:
	noise_init_wipe(&st);
	sodium_memzero(&keys, sizeof(keys));
	return rc;
}

int session_check_init_fresh(const struct session *s, const struct noise_init *in,
			     uint64_t now_ms)
{
	struct noise_init st;
	struct noise_payload pl;
	if (sodium_memcmp(in->peer_pub, s->peer_pub, NOISE_KEY_BYTES) != 0)
		return SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER);
	st = *in;
	int rc = noise_finish_init(&st, s->ss, &pl);
	noise_init_wipe(&st);
	if (rc)
		return rc;
	uint64_t wall = now_ms + (uint64_t)s->cfg.wall_offset_ms;
	if (pl.timestamp_ms + RESPONDER_WAIT_MAX_SKEW_MS < wall ||
	    pl.timestamp_ms > wall + RESPONDER_WAIT_MAX_SKEW_MS)
		return SRM_DROP_CODE(SRM_DROP_STALE);
	return 0;
}

int session_receive_resp(struct session *s, const uint8_t *pkt, size_t len, uint64_t now_ms,
			 uint8_t early[NOISE_EARLY_BYTES])
{
	struct noise_payload pl;
	struct noise_keys keys;
	int rc = noise_check_header(pkt, len, WIRE_HANDSHAKE_RESP, RESP_BYTES);

	if (early)
		memset(early, 0, NOISE_EARLY_BYTES);
	if (rc)
		return rc;
	if (!s->hs_sent)
		return SRM_DROP_CODE(SRM_DROP_UNKNOWN_INDEX); /* duplicate or stale */
	uint32_t idx = s->hs.local_index;
	rc = noise_consume_resp(s->id, &s->hs, pkt, len, &pl, &keys);
	if (rc)
		return rc;
	s->hs_sent = 0; /* idx now belongs to the keypair */
	expire(s, now_ms);
	if (!compatible(s, &pl)) {
		index_table_remove(s->indices, idx);
		fail(s, SRM_ERR_VERSION);
		rc = SRM_ERR_VERSION;
		goto out;
	}
	struct keypair *kp = keypair_new(s, &keys, pl.caps, 1, idx,
					 get_le32(pkt + RESP_OFF_SENDER), pl.boot_id, now_ms);
	if (!kp) {
		index_table_remove(s->indices, idx);
		rc = SRM_ERR_NOMEM;
		goto out;
	}
	/* The old current stays for receiving (the peer may still send on
	 * it).  An unconfirmed next stays receive-only too but may no longer
	 * become current: the peer either never got it (it yielded, or this
	 * was a stale INIT) or will switch to ours when our first packet
	 * arrives.  Promoting it later could leave the two sides on
	 * different keypairs. */
	keypair_free(s, s->prev);
	s->prev = s->cur;
	s->cur = kp;
	s->last_cur_ms = kp->birth_ms;
	s->had_cur = 1;
	if (s->next)
		s->next->confirmable = 0;
	s->responded = 0;
	s->attempt = 0;
	s->retry_ms = 0;
	s->failed = 0;
	s->error = 0;
	memset(s->early, 0, NOISE_EARLY_BYTES);
	if (early)
		memcpy(early, pl.early, NOISE_EARLY_BYTES);
	rc = 0;
out:
	sodium_memzero(&keys, sizeof(keys));
	return rc;
}

int session_receive_cookie(struct session *s, const uint8_t *pkt, size_t len, uint64_t now_ms)
{
	int rc = noise_check_header(pkt, len, WIRE_COOKIE_REPLY, COOKIE_REPLY_BYTES);
	if (rc)
		return rc;
	if (!s->have_last_mac1 || get_le32(pkt + COOKIE_OFF_RECEIVER) != s->last_mac1_index)
		return SRM_DROP_CODE(SRM_DROP_UNKNOWN_INDEX);
	uint8_t cookie[COOKIE_BYTES];
	rc = cookie_open_reply(pkt, len, s->peer_cookie_key, s->last_mac1, cookie);
	if (rc == 0) {
		memcpy(s->cookie, cookie, COOKIE_BYTES);
		s->cookie_ms = now_ms;
		s->have_cookie = 1;
		s->have_last_mac1 = 0; /* one reply per message */
	}
	sodium_memzero(cookie, sizeof(cookie));
	return rc;
}

/* ---- Data --------------------------------------------------------------- */

int session_seal(struct session *s, uint64_t pn, const uint8_t *plain, size_t len,
		 uint8_t *out, size_t cap, uint64_t now_ms)
{
	if (cap < WIRE_DATA_OVERHEAD || cap - WIRE_DATA_OVERHEAD < len || len > INT32_MAX / 2 ||
	    pn >= REJECT_AFTER_PACKETS)
		return SRM_ERR_INVALID;
	expire(s, now_ms);
	struct keypair *kp = s->cur;
	if (!usable(kp, now_ms))
		return SRM_ERR_AGAIN;
	wire_put_header(out, WIRE_DATA);
	put_le32(out + WIRE_HEADER_BYTES, kp->remote_index);
	put_le64(out + WIRE_HEADER_BYTES + 4, pn);
	aead_seal(&kp->send, pn, out, WIRE_DATA_HEADER_BYTES, plain, len,
		  out + WIRE_DATA_HEADER_BYTES);
	kp->sent++;
	if (rekey_due(s, now_ms))
		begin_attempt(s, now_ms);
	return (int)(len + WIRE_DATA_OVERHEAD);
}

int session_open(struct session *s, const uint8_t *pkt, size_t len, uint8_t *plain,
		 size_t cap, uint64_t *pn, uint64_t now_ms)
{
	int rc = noise_check_header(pkt, len, WIRE_DATA, WIRE_DATA_OVERHEAD);
	if (rc)
		return rc;
	if (len - WIRE_DATA_OVERHEAD > cap || len > INT32_MAX / 2)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	uint32_t idx = get_le32(pkt + WIRE_HEADER_BYTES);
	struct keypair *kp = NULL;
	struct keypair *slots[] = { s->cur, s->prev, s->next };
	for (size_t i = 0; i < 3 && !kp; i++)
		if (slots[i] && slots[i]->local_index == idx)
			kp = slots[i];
	if (!kp)
		return SRM_DROP_CODE(SRM_DROP_UNKNOWN_INDEX);
	if (expired(kp, now_ms)) {
		expire(s, now_ms);
		return SRM_DROP_CODE(SRM_DROP_STALE);
	}
	uint64_t n = get_le64(pkt + WIRE_HEADER_BYTES + 4);
	if (n >= REJECT_AFTER_PACKETS || replay_check(&kp->replay, n) != 0)
		return SRM_DROP_CODE(SRM_DROP_REPLAY);
	if (aead_open(&kp->recv, n, pkt, WIRE_DATA_HEADER_BYTES, pkt + WIRE_DATA_HEADER_BYTES,
		      len - WIRE_DATA_HEADER_BYTES, plain) != 0)
		return SRM_DROP_CODE(SRM_DROP_AUTH);
	if (replay_accept(&kp->replay, n) != 0)
		return SRM_DROP_CODE(SRM_DROP_REPLAY);
	if (kp == s->next && kp->confirmable) {
		/* Key confirmation: the initiator has these keys. */
		keypair_free(s, s->prev);
		s->prev = s->cur;
		s->cur = kp;
		s->last_cur_ms = kp->birth_ms;
		s->had_cur = 1;
		s->next = NULL;
		s->responded = 0;
	}
	if (kp == s->cur && rekey_due(s, now_ms))
		begin_attempt(s, now_ms);
	*pn = n;
	return (int)(len - WIRE_DATA_OVERHEAD);
}

/* ---- Queries ------------------------------------------------------------ */

int session_established(const struct session *s)
{
	return s->cur && s->cur->sent < REJECT_AFTER_PACKETS;
}

uint64_t session_peer_init_ms(const struct session *s)
{
	return s->peer_init_ms;
}

int session_failed(const struct session *s)
{
	return s->failed;
}

int session_error(const struct session *s)
{
	return s->error;
}

uint64_t session_peer_boot_id(const struct session *s)
{
	/* An answered INIT counts before its key confirmation if it was fresh
	 * (an old one replayed to a restarted responder does not). */
	const struct keypair *latest = s->next && s->responded ? s->next : s->cur;
	return latest ? latest->peer_boot_id : 0;
}

uint64_t session_handshake_age_ms(const struct session *s, uint64_t now_ms)
{
	return s->had_cur ? now_ms - s->last_cur_ms : UINT64_MAX;
}

const char *session_cipher_name(const struct session *s)
{
	if (!s->cur)
		return "none";
	return s->cur->send.alg == AEAD_AES256GCM ? "aes-256-gcm" : "chacha20-poly1305";
}

int session_receiver_index(const uint8_t *pkt, size_t len, uint32_t *idx)
{
	if (len < WIRE_HEADER_BYTES)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	if (pkt[1] != WIRE_VERSION)
		return SRM_DROP_CODE(SRM_DROP_VERSION);
	size_t at;
	switch (pkt[0]) {
	case WIRE_HANDSHAKE_RESP: at = RESP_OFF_RECEIVER; break;
	case WIRE_COOKIE_REPLY: at = COOKIE_OFF_RECEIVER; break;
	case WIRE_DATA: at = WIRE_HEADER_BYTES; break;
	default: return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	}
	if (len < at + 4)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	*idx = get_le32(pkt + at);
	return 0;
}

int session_current_keys(const struct session *s, uint8_t send[NOISE_KEY_BYTES],
			 uint8_t recv[NOISE_KEY_BYTES])
{
	if (!s->cur)
		return SRM_ERR_NOTFOUND;
	memcpy(send, s->cur->send.key, NOISE_KEY_BYTES);
	memcpy(recv, s->cur->recv.key, NOISE_KEY_BYTES);
	return 0;
}

int session_keypair_count(const struct session *s)
{
	return !!s->cur + !!s->prev + !!s->next;
}

uint64_t session_keypairs_created(const struct session *s)
{
	return s->keypairs_created;
}
