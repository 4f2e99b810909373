/*
 * index_table.c — random, unique receiver indices (uthash).
 */
#include "index_table.h"

#include <stdlib.h>
#include <uthash.h>

/* With at most INDEX_TABLE_MAX of 2^32 in use a random pick collides with
 * probability < 2^-19; this many tries cannot all fail in practice. */
#define INDEX_TRIES 64

struct ix_entry {
	uint32_t idx;
	struct session *s;
	UT_hash_handle hh;
};

struct index_table {
	struct ix_entry *map;
	size_t count;
	srm_rng_fn *rng;
	void *rng_ctx;
};

struct index_table *index_table_new_rng(srm_rng_fn *rng, void *ctx)
{
	struct index_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->rng = rng;
	t->rng_ctx = ctx;
	return t;
}

struct index_table *index_table_new(void)
{
	return index_table_new_rng(NULL, NULL);
}

void index_table_free(struct index_table *t)
{
	if (!t)
		return;
	struct ix_entry *e, *tmp;
	HASH_ITER(hh, t->map, e, tmp) {
		HASH_DEL(t->map, e);
		free(e);
	}
	free(t);
}

static struct ix_entry *find(struct index_table *t, uint32_t idx)
{
	struct ix_entry *e = NULL;
	HASH_FIND(hh, t->map, &idx, sizeof(idx), e);
	return e;
}

int index_table_insert(struct index_table *t, struct session *s, uint32_t *idx)
{
	if (t->count >= INDEX_TABLE_MAX)
		return SRM_ERR_NOMEM;
	for (int i = 0; i < INDEX_TRIES; i++) {
		uint32_t v;
		srm_random(t->rng, t->rng_ctx, &v, sizeof(v));
		if (v == 0 || find(t, v))
			continue;
		struct ix_entry *e = malloc(sizeof(*e));
		if (!e)
			return SRM_ERR_NOMEM;
		e->idx = v;
		e->s = s;
		HASH_ADD(hh, t->map, idx, sizeof(e->idx), e);
		t->count++;
		*idx = v;
		return 0;
	}
	return SRM_ERR_NOMEM;
}

void index_table_remove(struct index_table *t, uint32_t idx)
{
	struct ix_entry *e = find(t, idx);
	if (!e)
		return;
	HASH_DEL(t->map, e);
	free(e);
	t->count--;
}

struct session *index_table_lookup(struct index_table *t, uint32_t idx)
{
	struct ix_entry *e = find(t, idx);
	return e ? e->s : NULL;
}

size_t index_table_count(const struct index_table *t)
{
	return t->count;
}
