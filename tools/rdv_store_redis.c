/*
 * rdv_store_redis.c — rendezvous records in Redis (hiredis, synchronous).
 *
 * Keys:
 *   srmudp:rdv:r:<64 hex of the public key>  the encoded record
 *                                            (rdv_record_encode), PX ttl
 *   srmudp:rdv:n:<16 hex of a server id>     a list of notes for that
 *                                            server (RPUSH / LPOP), trimmed
 *                                            to RDV_STORE_MAX_NOTES and
 *                                            expiring with its newest note
 * Every call blocks for at most IO_TIMEOUT_MS: a rendezvous server and its
 * Redis sit in one data centre, and a stuck Redis must not stall relaying
 * for long.  After an error the context is dropped and the next call
 * reconnects, at most once per RECONNECT_MS.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "log.h"
#include "rdv_store_redis.h"
#include "clock.h"

#define IO_TIMEOUT_MS 200
#define RECONNECT_MS 1000
#define KEY_PREFIX "srmudp:rdv:"

struct redis_store {
	struct rdv_store st;
	redisContext *c;
	char host[256];
	int port;
	char name[300];
	uint64_t last_attempt_ms;
	struct log_ratelimit log_rl;
};

static int connect_now(struct redis_store *r, char *err, size_t errlen)
{
	struct timeval tv = { IO_TIMEOUT_MS / 1000, (IO_TIMEOUT_MS % 1000) * 1000 };

	r->last_attempt_ms = clock_now_ms();
	r->c = redisConnectWithTimeout(r->host, r->port, tv);
	if (r->c == NULL || r->c->err) {
		if (err != NULL)
			snprintf(err, errlen, "cannot connect to %s: %s", r->name,
				 r->c ? r->c->errstr : "out of memory");
		else if (log_ratelimit_ok(&r->log_rl, r->last_attempt_ms, 10000))
			LOG_WARN(NULL, "rendezvous: cannot reconnect to %s: %s", r->name,
				 r->c ? r->c->errstr : "out of memory");
		if (r->c)
			redisFree(r->c);
		r->c = NULL;
		return SRM_ERR_IO;
	}
	redisSetTimeout(r->c, tv);
	return 0;
}

static int ensure(struct redis_store *r)
{
	if (r->c != NULL)
		return 0;
	if (clock_now_ms() - r->last_attempt_ms < RECONNECT_MS)
		return SRM_ERR_IO;
	if (connect_now(r, NULL, 0) != 0)
		return SRM_ERR_IO;
	LOG_INFO(NULL, "rendezvous: reconnected to %s", r->name);
	return 0;
}

/* Run a command; NULL (and the context dropped) on any I/O or Redis error. */
static redisReply *cmd(struct redis_store *r, const char *fmt, ...)
{
	redisReply *rep;
	va_list ap;

	if (ensure(r) != 0)
		return NULL;
	va_start(ap, fmt);
	rep = redisvCommand(r->c, fmt, ap);
	va_end(ap);
	if (rep == NULL || r->c->err) {
		if (log_ratelimit_ok(&r->log_rl, clock_now_ms(), 10000))
			LOG_WARN(NULL, "rendezvous: %s: %s", r->name, r->c->errstr);
		if (rep)
			freeReplyObject(rep);
		redisFree(r->c);
		r->c = NULL;
		return NULL;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		if (log_ratelimit_ok(&r->log_rl, clock_now_ms(), 10000))
			LOG_WARN(NULL, "rendezvous: %s: %.*s", r->name, (int)rep->len, rep->str);
		freeReplyObject(rep);
		return NULL;
	}
	return rep;
}

static void rec_key(char key[80], const uint8_t pub[RDV_KEY_BYTES])
{
	static const char hex[] = "0123456789abcdef";
	char *p = key + sprintf(key, KEY_PREFIX "r:");

	for (int i = 0; i < RDV_KEY_BYTES; i++) {
		*p++ = hex[pub[i] >> 4];
		*p++ = hex[pub[i] & 15];
	}
	*p = '\0';
}

/* SET key to len bytes, gone after ttl_ms. */
static int set_bytes(struct redis_store *r, const char *key, const uint8_t *p, size_t len,
		     uint32_t ttl_ms)
{
	redisReply *rep;

	if (len == 0)
		return SRM_ERR_INVALID;
	rep = cmd(r, "SET %s %b PX %u", key, (const char *)p, len, ttl_ms);
	if (rep == NULL)
		return SRM_ERR_IO;
	freeReplyObject(rep);
	return 0;
}

/* GET key into buf: its length, SRM_ERR_NOTFOUND, or SRM_ERR_IO (also for
 * a value larger than cap: nothing we wrote). */
static int get_bytes(struct redis_store *r, const char *key, uint8_t *buf, size_t cap)
{
	redisReply *rep = cmd(r, "GET %s", key);
	int rc;

	if (rep == NULL)
		return SRM_ERR_IO;
	if (rep->type == REDIS_REPLY_NIL) {
		rc = SRM_ERR_NOTFOUND;
	} else if (rep->type != REDIS_REPLY_STRING || rep->len > cap) {
		rc = SRM_ERR_IO;
	} else {
		memcpy(buf, rep->str, rep->len);
		rc = (int)rep->len;
	}
	freeReplyObject(rep);
	return rc;
}

static int r_put(void *ctx, const struct rdv_record *rec, uint32_t ttl_ms, uint64_t now_ms)
{
	uint8_t enc[RDV_MAX_PACKET];
	char key[80];

	(void)now_ms;
	rec_key(key, rec->pub);
	return set_bytes(ctx, key, enc, rdv_record_encode(rec, enc, sizeof(enc)), ttl_ms);
}

static int r_get(void *ctx, const uint8_t pub[RDV_KEY_BYTES], uint64_t now_ms,
		 struct rdv_record *out)
{
	uint8_t enc[RDV_MAX_PACKET];
	char key[80];
	int n;

	(void)now_ms;
	rec_key(key, pub);
	n = get_bytes(ctx, key, enc, sizeof(enc));
	if (n < 0)
		return n;
	/* Not ours, or corrupt: never trust it. */
	if (rdv_record_decode(enc, (size_t)n, out) != 0 || memcmp(out->pub, pub, RDV_KEY_BYTES) != 0)
		return SRM_ERR_IO;
	return 0;
}

static int r_del(void *ctx, const uint8_t pub[RDV_KEY_BYTES])
{
	struct redis_store *r = ctx;
	char key[80];
	redisReply *rep;

	rec_key(key, pub);
	rep = cmd(r, "DEL %s", key);
	if (rep == NULL)
		return SRM_ERR_IO;
	freeReplyObject(rep);
	return 0;
}

static int r_note(void *ctx, uint64_t server_id, const uint8_t *msg, size_t len,
		  uint32_t ttl_ms, uint64_t now_ms)
{
	struct redis_store *r = ctx;
	char key[64];
	redisReply *rep;

	(void)now_ms;
	if (len == 0 || len > RDV_MAX_PACKET)
		return SRM_ERR_INVALID;
	snprintf(key, sizeof(key), KEY_PREFIX "n:%016llx", (unsigned long long)server_id);
	/* Pipelined: one round trip for the three. */
	if (ensure(r) != 0)
		return SRM_ERR_IO;
	redisAppendCommand(r->c, "RPUSH %s %b", key, (const char *)msg, len);
	redisAppendCommand(r->c, "LTRIM %s -%d -1", key, RDV_STORE_MAX_NOTES);
	redisAppendCommand(r->c, "PEXPIRE %s %u", key, ttl_ms);
	for (int i = 0; i < 3; i++) {
		void *v = NULL;
		if (redisGetReply(r->c, &v) != REDIS_OK) {
			redisFree(r->c);
			r->c = NULL;
			return SRM_ERR_IO;
		}
		rep = v;
		int bad = rep->type == REDIS_REPLY_ERROR;
		freeReplyObject(rep);
		if (bad)
			return SRM_ERR_IO;
	}
	return 0;
}

static int r_take_note(void *ctx, uint64_t server_id, uint8_t *buf, size_t cap, uint64_t now_ms)
{
	struct redis_store *r = ctx;
	char key[64];
	redisReply *rep;
	int rc;

	(void)now_ms;
	snprintf(key, sizeof(key), KEY_PREFIX "n:%016llx", (unsigned long long)server_id);
	rep = cmd(r, "LPOP %s", key);
	if (rep == NULL)
		return SRM_ERR_IO;
	if (rep->type == REDIS_REPLY_NIL)
		rc = 0;
	else if (rep->type != REDIS_REPLY_STRING || rep->len > cap || rep->len == 0)
		rc = SRM_ERR_IO;
	else {
		memcpy(buf, rep->str, rep->len);
		rc = (int)rep->len;
	}
	freeReplyObject(rep);
	return rc;
}

static void card_key(char key[64], uint64_t server_id)
{
	snprintf(key, 64, KEY_PREFIX "s:%016llx", (unsigned long long)server_id);
}

static int r_card_put(void *ctx, const struct rdv_card *c, uint32_t ttl_ms, uint64_t now_ms)
{
	uint8_t enc[RDV_CARD_MAX_BYTES];
	char key[64];

	(void)now_ms;
	card_key(key, c->server_id);
	return set_bytes(ctx, key, enc, rdv_card_encode(c, enc, sizeof(enc)), ttl_ms);
}

static int r_card_get(void *ctx, uint64_t server_id, uint64_t now_ms, struct rdv_card *out)
{
	uint8_t enc[RDV_CARD_MAX_BYTES];
	char key[64];
	int n;

	(void)now_ms;
	card_key(key, server_id);
	n = get_bytes(ctx, key, enc, sizeof(enc));
	if (n < 0)
		return n;
	/* Corrupt, or not its own: never trust it. */
	if (rdv_card_decode(enc, (size_t)n, out) != 0 || out->server_id != server_id)
		return SRM_ERR_IO;
	return 0;
}

static size_t r_count(void *ctx)
{
	(void)ctx;
	return 0; /* shared: only Redis knows (DBSIZE, SCAN) */
}

static void r_free(void *ctx)
{
	struct redis_store *r = ctx;

	if (r->c)
		redisFree(r->c);
	free(r);
}

static const struct rdv_store_ops redis_ops = {
	.put = r_put,
	.get = r_get,
	.del = r_del,
	.note = r_note,
	.take_note = r_take_note,
	.card_put = r_card_put,
	.card_get = r_card_get,
	.count = r_count,
	.free = r_free,
};

/* "redis://HOST[:PORT]", "redis://[V6]:PORT". */
static int parse_url(const char *url, char *host, size_t hcap, int *port)
{
	const char *p, *end;
	char *e;
	long v = 6379;

	if (strncmp(url, "redis://", 8) != 0)
		return -1;
	p = url + 8;
	if (*p == '[') {
		end = strchr(p, ']');
		if (end == NULL)
			return -1;
		p++;
		if ((size_t)(end - p) >= hcap || end == p)
			return -1;
		memcpy(host, p, (size_t)(end - p));
		host[end - p] = '\0';
		p = end + 1;
	} else {
		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) >= hcap || end == p || memchr(p, '/', (size_t)(end - p)))
			return -1;
		memcpy(host, p, (size_t)(end - p));
		host[end - p] = '\0';
		p = end;
	}
	if (*p == ':') {
		v = strtol(p + 1, &e, 10);
		if (e == p + 1 || (*e != '\0' && strcmp(e, "/") != 0) || v < 1 || v > 65535)
			return -1;
	} else if (*p != '\0' && strcmp(p, "/") != 0) {
		return -1;
	}
	*port = (int)v;
	return 0;
}

struct rdv_store *rdv_store_redis_new(const char *url, char *err, size_t errlen)
{
	struct redis_store *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (parse_url(url, r->host, sizeof(r->host), &r->port) != 0) {
		snprintf(err, errlen, "bad store \"%.200s\" (expected redis://HOST:PORT)", url);
		free(r);
		return NULL;
	}
	snprintf(r->name, sizeof(r->name), "redis://%s%s%s:%d", strchr(r->host, ':') ? "[" : "",
		 r->host, strchr(r->host, ':') ? "]" : "", r->port);
	if (connect_now(r, err, errlen) != 0) {
		free(r);
		return NULL;
	}
	r->st.ops = &redis_ops;
	r->st.ctx = r;
	r->st.name = r->name;
	return &r->st;
}
