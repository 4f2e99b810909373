/*
 * index_table.h — receiver index -> session.
 *
 * Every handshake and keypair gets a random 32-bit index that the peer
 * puts in front of its packets to us (WireGuard's design): sessions are
 * found by index, not by source address, so they survive NAT rebinding and
 * roaming, and an index reveals nothing.  Bounded at INDEX_TABLE_MAX.
 */
#ifndef SRMUDP_INDEX_TABLE_H
#define SRMUDP_INDEX_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "noise.h"
#include "srmudp.h"

/* A session holds at most 4 indices (handshake, current, previous, next). */
#define INDEX_TABLE_MAX (4 * SRM_MAX_PEERS + 64)

struct session;
struct index_table;

struct index_table *index_table_new(void);
/* Deterministic indices for tests. */
struct index_table *index_table_new_rng(srm_rng_fn *rng, void *ctx);
void index_table_free(struct index_table *t);
/* Pick a random index not in use (never 0) and map it to s.  Returns 0
 * with *idx set, or SRM_ERR_NOMEM when full. */
int index_table_insert(struct index_table *t, struct session *s, uint32_t *idx)
	__attribute__((warn_unused_result));
void index_table_remove(struct index_table *t, uint32_t idx);
/* NULL if idx is not in use. */
struct session *index_table_lookup(struct index_table *t, uint32_t idx);
size_t index_table_count(const struct index_table *t);

#endif
