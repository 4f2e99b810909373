/*
 * ratelimit.h — per-source token buckets for handshake messages.
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
/* Entries in use (for tests: never more than SETS * WAYS). */
size_t ratelimit_count(const struct ratelimit *rl);

#endif
