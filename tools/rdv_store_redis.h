/*
 * rdv_store_redis.h — the rendezvous record store in Redis, so several
 * `srmudp rendezvous` servers share one directory.  Lives in tools/ so
 * that only the CLI links hiredis (never the preload or libsrmudp-core).
 */
#ifndef SRMUDP_RDV_STORE_REDIS_H
#define SRMUDP_RDV_STORE_REDIS_H

#include <stddef.h>

#include "rendezvous.h"

/* url: "redis://HOST[:PORT]" (PORT 6379 by default; IPv6 in brackets).
 * Connects at once (the server refuses to start without its store);
 * later failures reconnect at most once a second.  NULL with a one-line
 * message in err on a bad URL or a failed connection. */
struct rdv_store *rdv_store_redis_new(const char *url, char *err, size_t errlen);

#endif
