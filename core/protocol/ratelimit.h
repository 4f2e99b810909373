/*
 * ratelimit.h — per-source token buckets for handshake messages, and the
 * engine-wide limit on failed authentications of DATA packets.
 *
 * Fixed memory whatever arrives: a set-associative table of
 * RATELIMIT_SETS x RATELIMIT_WAYS buckets, indexed by a keyed hash of the
 * source, so a spoofing flood can only evict entries (which then start
 * full again), never grow the table, and cannot aim collisions.  IPv6
 * sources count per /64, like WireGuard: one host usually owns a whole /64.
 * The port is ignored: NATs rotate it freely.
 */
#ifndef SRMUDP_RATELIMIT_H
#define SRMUDP_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RATELIMIT_SETS 1024
#define RATELIMIT_WAYS 4
/* A well-behaved peer sends an INIT at most every ~200 ms when retrying;
 * 20/s with a burst of 10 leaves room for simultaneous open and roaming. */
#define RATELIMIT_PER_SEC 20
#define RATELIMIT_BURST 10

struct ratelimit;

struct ratelimit *ratelimit_new(void);
/* Deterministic key for tests (the hash key is random otherwise). */
struct ratelimit *ratelimit_new_keyed(const uint8_t key[16], uint32_t per_sec, uint32_t burst);
void ratelimit_free(struct ratelimit *rl);
/* Take one token for src at now_ms.  Returns 1 if allowed, 0 if over the
 * limit; an address family it cannot parse is not allowed. */
int ratelimit_allow(struct ratelimit *rl, const struct sockaddr *src, socklen_t len,
		    uint64_t now_ms);
/* The same, taking cost tokens (e.g. bytes, for a byte-rate table). */
int ratelimit_allow_cost(struct ratelimit *rl, const struct sockaddr *src, socklen_t len,
			 uint64_t cost, uint64_t now_ms);
/* Entries in use (for tests: never more than SETS * WAYS). */
size_t ratelimit_count(const struct ratelimit *rl);

/*
 * Failed authentications of DATA packets, engine-wide.
 *
 * Only the AEAD tells a forged DATA packet (a captured receiver index,
 * anything after it) from a real one, so no budget that forgeries can
 * spend may decide whether a packet is opened: that would starve the peer
 * (SRMUDP_RATE is charged after authentication, engine_receive.c).  This
 * limit only bounds the CPU spent on garbage.  While failed opens stay
 * under AUTH_FAIL_PER_SEC every packet is opened; above it, only packets
 * whose number is plausible for their keys (auth_seen_plausible) are,
 * and the rest are dropped unopened except when a token has refilled.  A
 * forgery with a random counter is implausible (2^-44 odds), a real
 * packet practically never is, so the peer keeps its throughput; an
 * attacker who sees the traffic and aims its counters still costs one
 * open per packet, as it would without any limit.
 */
/* A failed open costs 2.3 us (ChaCha20-Poly1305) or 0.7 us (AES-GCM) for
 * 1.2 KB on the 2-core test machine: 20,000 a second is at most 46 ms of
 * CPU a second, and no real peer fails that often (a tampering path
 * flips a few percent of its packets).  The burst is one second's worth. */
#define AUTH_FAIL_PER_SEC 20000
#define AUTH_FAIL_BURST AUTH_FAIL_PER_SEC
/* Packet numbers past the highest authenticated one (for the same keys)
 * that still count as plausible: 18 times the largest congestion window
 * (CC_MAX_WINDOW_BYTES, 64 MiB = 56,000 full packets) lost in a row. */
#define AUTH_PLAUSIBLE_AHEAD (UINT64_C(1) << 20)

struct auth_limit {
	uint64_t tokens;   /* thousandths */
	uint64_t last_ms;  /* 0: never used (the first call fills it) */
};

/* The receive keys of one peer that authenticated DATA last (around a
 * rekey, the new ones and the previous ones), by receiver index, each with
 * one past the highest packet number it authenticated. */
struct auth_seen {
	uint32_t index[2];
	uint64_t top[2];   /* 0: slot unused */
	unsigned newest;   /* the slot that came last */
};

/* May a DATA packet be opened at now_ms?  plausible: auth_seen_plausible
 * for it.  Takes no token: only a failed open does. */
int auth_limit_may_open(struct auth_limit *l, int plausible, uint64_t now_ms)
	__attribute__((warn_unused_result));
/* An open failed authentication: one token (none left is fine). */
void auth_limit_failed(struct auth_limit *l, uint64_t now_ms);
/* Is packet number pn under receiver index plausible?  Below the top
 * of its keys it is (the replay window judges it), above by up to
 * AUTH_PLAUSIBLE_AHEAD; under keys not seen yet, below that. */
int auth_seen_plausible(const struct auth_seen *s, uint32_t index, uint64_t pn);
/* pn under index authenticated. */
void auth_seen_note(struct auth_seen *s, uint32_t index, uint64_t pn);

#endif
