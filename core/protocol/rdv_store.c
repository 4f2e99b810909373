/*
 * rdv_store.c — the rendezvous record directory: the interface's helpers
 * and the in-memory store, the default for a single server.
 *
 * Bounded: at most max_records records and RDV_STORE_MAX_NOTES notes.
 * Records sit in a uthash table whose iteration order is insertion order;
 * a refresh deletes and re-adds, so the head is always the least recently
 * refreshed record: expiry and eviction both look only at the head.
 */
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "rendezvous.h"

/* Kept encoded (about 60 bytes for a typical record instead of the 1.2 KB
 * of a struct rdv_record full of sockaddr_storage): 100k records cost
 * about 20 MB. */
struct mem_rec {
	uint8_t pub[RDV_KEY_BYTES];
	uint64_t expires_ms;
	UT_hash_handle hh;
	size_t len;
	uint8_t enc[];
};

struct mem_note {
	uint64_t server_id, expires_ms;
	size_t len;
	uint8_t *msg;
};

struct mem_card {
	struct rdv_card card;
	uint64_t expires_ms; /* 0: free slot */
};

struct mem_store {
	struct rdv_store st;
	struct mem_card cards[RDV_MESH_SERVERS];
	struct mem_rec *recs;
	size_t count, max;
	struct mem_note notes[RDV_STORE_MAX_NOTES]; /* ring */
	size_t note_head, note_count;
};

static void drop_rec(struct mem_store *m, struct mem_rec *e)
{
	HASH_DEL(m->recs, e);
	free(e);
	m->count--;
}

/* Records are refreshed in order, so expired ones gather at the head.
 * (A record put with a shorter ttl may hide behind a longer one; get()
 * checks expiry itself, so that only delays freeing it.) */
static void sweep(struct mem_store *m, uint64_t now_ms)
{
	while (m->recs != NULL && m->recs->expires_ms <= now_ms)
		drop_rec(m, m->recs);
}

static int mem_put(void *ctx, const struct rdv_record *r, uint32_t ttl_ms, uint64_t now_ms)
{
	struct mem_store *m = ctx;
	struct mem_rec *e;
	uint8_t enc[RDV_MAX_PACKET];
	size_t len = rdv_record_encode(r, enc, sizeof(enc));

	if (len == 0)
		return SRM_ERR_INVALID;
	sweep(m, now_ms);
	HASH_FIND(hh, m->recs, r->pub, RDV_KEY_BYTES, e);
	if (e != NULL)
		drop_rec(m, e); /* re-added at the tail: most recent */
	else if (m->count >= m->max)
		drop_rec(m, m->recs); /* least recently refreshed */
	e = calloc(1, sizeof(*e) + len);
	if (e == NULL)
		return SRM_ERR_NOMEM;
	memcpy(e->pub, r->pub, RDV_KEY_BYTES);
	memcpy(e->enc, enc, len);
	e->len = len;
	e->expires_ms = now_ms + ttl_ms;
	HASH_ADD(hh, m->recs, pub, RDV_KEY_BYTES, e);
	m->count++;
	return 0;
}

static int mem_get(void *ctx, const uint8_t pub[RDV_KEY_BYTES], uint64_t now_ms,
		   struct rdv_record *out)
{
	struct mem_store *m = ctx;
	struct mem_rec *e;

	HASH_FIND(hh, m->recs, pub, RDV_KEY_BYTES, e);
	if (e == NULL || e->expires_ms <= now_ms)
		return SRM_ERR_NOTFOUND;
	return rdv_record_decode(e->enc, e->len, out) == 0 ? 0 : SRM_ERR_IO;
}

static int mem_del(void *ctx, const uint8_t pub[RDV_KEY_BYTES])
{
	struct mem_store *m = ctx;
	struct mem_rec *e;

	HASH_FIND(hh, m->recs, pub, RDV_KEY_BYTES, e);
	if (e != NULL)
		drop_rec(m, e);
	return 0;
}

static void note_pop(struct mem_store *m)
{
	struct mem_note *n = &m->notes[m->note_head];

	free(n->msg);
	memset(n, 0, sizeof(*n));
	m->note_head = (m->note_head + 1) % RDV_STORE_MAX_NOTES;
	m->note_count--;
}

static int mem_note(void *ctx, uint64_t server_id, const uint8_t *msg, size_t len,
		    uint32_t ttl_ms, uint64_t now_ms)
{
	struct mem_store *m = ctx;
	struct mem_note *n;
	uint8_t *copy;

	if (len == 0 || len > RDV_MAX_PACKET)
		return SRM_ERR_INVALID;
	copy = malloc(len);
	if (copy == NULL)
		return SRM_ERR_NOMEM;
	if (m->note_count == RDV_STORE_MAX_NOTES)
		note_pop(m); /* oldest first: it is the likeliest to be stale */
	n = &m->notes[(m->note_head + m->note_count) % RDV_STORE_MAX_NOTES];
	memcpy(copy, msg, len);
	n->msg = copy;
	n->len = len;
	n->server_id = server_id;
	n->expires_ms = now_ms + ttl_ms;
	m->note_count++;
	return 0;
}

/* The first live note for server_id; notes for other servers stay queued
 * in order (a memory store is shared only inside one process, in tests). */
static int mem_take_note(void *ctx, uint64_t server_id, uint8_t *buf, size_t cap,
			 uint64_t now_ms)
{
	struct mem_store *m = ctx;

	while (m->note_count > 0 && m->notes[m->note_head].expires_ms <= now_ms)
		note_pop(m);
	for (size_t i = 0; i < m->note_count; i++) {
		size_t at = (m->note_head + i) % RDV_STORE_MAX_NOTES;
		struct mem_note *n = &m->notes[at];
		size_t len = n->len;
		if (n->server_id != server_id || n->expires_ms <= now_ms)
			continue;
		if (len > cap)
			return SRM_ERR_INVALID;
		memcpy(buf, n->msg, len);
		free(n->msg);
		/* Close the gap: shift the later notes down by one. */
		for (size_t j = i; j + 1 < m->note_count; j++)
			m->notes[(m->note_head + j) % RDV_STORE_MAX_NOTES] =
				m->notes[(m->note_head + j + 1) % RDV_STORE_MAX_NOTES];
		memset(&m->notes[(m->note_head + m->note_count - 1) % RDV_STORE_MAX_NOTES], 0,
		       sizeof(struct mem_note));
		m->note_count--;
		return (int)len;
	}
	return 0;
}

/* A server's slot, or the first free or expired one (the oldest when all
 * are live: a dead server's card goes first). */
static int mem_card_put(void *ctx, const struct rdv_card *c, uint32_t ttl_ms, uint64_t now_ms)
{
	struct mem_store *m = ctx;
	struct mem_card *slot = &m->cards[0];

	for (size_t i = 0; i < RDV_MESH_SERVERS; i++) {
		struct mem_card *k = &m->cards[i];
		if (k->expires_ms > now_ms && k->card.server_id == c->server_id) {
			slot = k;
			break;
		}
		if (k->expires_ms < slot->expires_ms)
			slot = k;
	}
	slot->card = *c;
	slot->expires_ms = now_ms + ttl_ms;
	return 0;
}

static int mem_card_get(void *ctx, uint64_t server_id, uint64_t now_ms, struct rdv_card *out)
{
	struct mem_store *m = ctx;

	for (size_t i = 0; i < RDV_MESH_SERVERS; i++)
		if (m->cards[i].expires_ms > now_ms && m->cards[i].card.server_id == server_id) {
			*out = m->cards[i].card;
			return 0;
		}
	return SRM_ERR_NOTFOUND;
}

static size_t mem_count(void *ctx)
{
	return ((struct mem_store *)ctx)->count;
}

static void mem_free(void *ctx)
{
	struct mem_store *m = ctx;
	struct mem_rec *e, *tmp;

	HASH_ITER(hh, m->recs, e, tmp) {
		HASH_DEL(m->recs, e);
		free(e);
	}
	while (m->note_count > 0)
		note_pop(m);
	free(m);
}

static const struct rdv_store_ops mem_ops = {
	.put = mem_put,
	.get = mem_get,
	.del = mem_del,
	.note = mem_note,
	.take_note = mem_take_note,
	.card_put = mem_card_put,
	.card_get = mem_card_get,
	.count = mem_count,
	.free = mem_free,
};

struct rdv_store *rdv_store_memory_new(size_t max_records)
{
	struct mem_store *m;

	if (max_records == 0)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->max = max_records;
	m->st.ops = &mem_ops;
	m->st.ctx = m;
	m->st.name = "memory";
	return &m->st;
}

void rdv_store_free(struct rdv_store *st)
{
	if (st != NULL)
		st->ops->free(st->ctx);
}
