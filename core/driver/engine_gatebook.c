/*
 * engine_gatebook.c — the gates this engine knows beyond SRMUDP_GATES
 * (docs/NAT.md "Gates"): a gate announces itself and the gates it knows
 * in every REGISTERED (rdv_gate), its members keep them in
 * SRMUDP_GATE_CACHE (gate_cache.h), and from the next start a member
 * tries them after its configured servers, over UDP and, where the gate
 * has one, over its WebSocket.  So a member whose network later blocks
 * UDP reaches the group through a gate it was never configured with.
 *
 * Only gates whose key we list as a peer are kept or used: their key is
 * then pinned, and an announcement can only name members of our group.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "gate_cache.h"
#include "log.h"
#include "url.h"

/* A day: an announcement repeated every 25 s rewrites the file only when
 * something changed or its time is this old. */
#define SEEN_REWRITE_S 86400

static bool listed(const struct srm_engine *e, const uint8_t key[SRM_KEY_BYTES])
{
	if (memcmp(key, e->identity->pub, SRM_KEY_BYTES) == 0)
		return false;
	for (size_t i = 0; i < e->peer_count; i++)
		if (e->peers[i].session && memcmp(e->peers[i].cfg.pubkey, key, SRM_KEY_BYTES) == 0)
			return true;
	return false;
}

static struct gate_cache_entry *known(struct srm_engine *e, const uint8_t key[SRM_KEY_BYTES])
{
	for (size_t i = 0; i < e->known_gate_count; i++)
		if (memcmp(e->known_gates[i].key, key, SRM_KEY_BYTES) == 0)
			return &e->known_gates[i];
	return NULL;
}

void engine_gatebook_open(struct srm_engine *e)
{
	struct gate_cache_entry all[GATE_CACHE_MAX];
	char warn[512];
	if (e->cfg.gate_cache_off)
		return;
	if (e->cfg.gate_cache[0])
		snprintf(e->gate_cache_path, sizeof(e->gate_cache_path), "%s", e->cfg.gate_cache);
	else if (gate_cache_default_path(e->gate_cache_path, sizeof(e->gate_cache_path)) != 0)
		return;
	size_t n = gate_cache_load(e->gate_cache_path, (uint64_t)time(NULL), all, GATE_CACHE_MAX,
				   warn, sizeof(warn));
	if (warn[0])
		LOG_WARN(NULL, "SRMUDP_GATE_CACHE: %s (line skipped)", warn);
	for (size_t i = 0; i < n; i++)
		if (listed(e, all[i].key) && !known(e, all[i].key))
			e->known_gates[e->known_gate_count++] = all[i];
}

void engine_gatebook_servers(struct srm_engine *e)
{
	for (size_t i = 0; i < e->known_gate_count; i++) {
		const struct gate_cache_entry *g = &e->known_gates[i];
		bool have = false;
		for (size_t s = 0; s < e->server_count && !have; s++)
			have = e->servers[s].pinned && memcmp(e->servers[s].key, g->key, SRM_KEY_BYTES) == 0;
		if (have || e->server_count == ENGINE_SERVERS_MAX)
			continue;
		e->server_gate[e->server_count] = true;
		struct srm_rendezvous_config *r = &e->servers[e->server_count++];
		memset(r, 0, sizeof(*r));
		memcpy(&r->addr, &g->udp, sizeof(r->addr));
		r->addr_len = g->udp_len;
		memcpy(r->key, g->key, SRM_KEY_BYTES);
		r->pinned = 1;
	}
}

/* "ws://HOST:PORT/srmudp" for a gate's WebSocket, at its UDP host. */
static int ws_url(const struct gate_cache_entry *g, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN];
	bool v6 = g->udp.ss_family == AF_INET6;
	const void *a = v6 ? (const void *)&((const struct sockaddr_in6 *)&g->udp)->sin6_addr
			   : (const void *)&((const struct sockaddr_in *)&g->udp)->sin_addr;
	if (!inet_ntop(g->udp.ss_family, a, host, sizeof(host)))
		return -1;
	int n = snprintf(out, cap, "%s://%s%s%s:%u/srmudp", g->wss ? "wss" : "ws", v6 ? "[" : "",
			 host, v6 ? "]" : "", (unsigned)g->ws_port);
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

void engine_gatebook_relays(struct srm_engine *e)
{
	e->relay_count = 0;
	for (size_t i = 0; i < e->cfg.relay_count; i++) {
		e->relays[e->relay_count] = e->cfg.relays[i];
		e->relay_server[e->relay_count++] = -1;
	}
	for (size_t s = 0; s < e->server_count && e->relay_count < SRM_RELAY_MAX; s++) {
		const struct gate_cache_entry *g = e->servers[s].pinned ? known(e, e->servers[s].key) : NULL;
		char url[128], err[256];
		struct relay_url u;
		if (!g || !g->ws_port || ws_url(g, url, sizeof(url)) != 0 ||
		    relay_url_parse("SRMUDP_GATE_CACHE", url, &u, err, sizeof(err)) != 0)
			continue;
		if (relay_config_make("SRMUDP_GATE_CACHE", url, strlen(url), &u,
				      e->cfg.proxy_set ? e->cfg.proxy : NULL,
				      &e->relays[e->relay_count], err, sizeof(err)) != 0) {
			LOG_WARN(NULL, "gate %s: %s", url, err);
			continue;
		}
		e->relay_server[e->relay_count++] = (int)s;
	}
}

static void to_rdv(const struct gate_cache_entry *g, struct rdv_gate *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->key, g->key, SRM_KEY_BYTES);
	memcpy(&out->udp.addr, &g->udp, sizeof(out->udp.addr));
	out->udp.len = g->udp_len;
	out->ws_port = g->ws_port;
	out->wss = g->wss;
}

void engine_gatebook_announce(struct srm_engine *e)
{
	struct rdv_gate list[RDV_MAX_GATES];
	size_t n = 0;
	if (!e->gate)
		return;
	/* Ourselves first, with no UDP endpoint: a member knows where it
	 * reached us better than we know our public address. */
	memset(&list[n], 0, sizeof(list[n]));
	memcpy(list[n].key, e->identity->pub, SRM_KEY_BYTES);
	list[n].ws_port = e->gate_ws_port;
	list[n++].wss = e->gate_wss;
	/* Then the gates we use (where we reach them), then those we heard of. */
	for (size_t s = 0; s < e->server_count && n < RDV_MAX_GATES; s++) {
		const struct srm_rendezvous_config *r = &e->servers[s];
		if (!r->pinned)
			continue;
		const struct gate_cache_entry *g = known(e, r->key);
		struct gate_cache_entry c = { .udp_len = r->addr_len };
		memcpy(c.key, r->key, SRM_KEY_BYTES);
		memcpy(&c.udp, &r->addr, sizeof(c.udp));
		if (g) {
			c.ws_port = g->ws_port;
			c.wss = g->wss;
		}
		to_rdv(&c, &list[n++]);
	}
	for (size_t i = 0; i < e->known_gate_count && n < RDV_MAX_GATES; i++) {
		bool have = false;
		for (size_t j = 0; j < n && !have; j++)
			have = memcmp(list[j].key, e->known_gates[i].key, SRM_KEY_BYTES) == 0;
		if (!have)
			to_rdv(&e->known_gates[i], &list[n++]);
	}
	rdv_server_set_gates(e->gate, list, n);
}

void engine_gatebook_learn(struct srm_engine *e, size_t from, const struct rdv_gate *gates,
			   size_t n)
{
	const struct srm_rendezvous_config *at = &e->servers[from];
	uint64_t now = (uint64_t)time(NULL);
	bool changed = false;
	for (size_t i = 0; i < n; i++) {
		bool news = false;
		const struct rdv_gate *g = &gates[i];
		struct gate_cache_entry c = { .ws_port = g->ws_port, .wss = g->wss, .seen = now };
		if (!listed(e, g->key))
			continue;
		memcpy(c.key, g->key, SRM_KEY_BYTES);
		if (g->udp.len) {
			memcpy(&c.udp, &g->udp.addr, sizeof(c.udp));
			c.udp_len = g->udp.len;
		} else if (from < e->server_count && memcmp(at->key, g->key, SRM_KEY_BYTES) == 0) {
			memcpy(&c.udp, &at->addr, sizeof(c.udp)); /* the announcing gate */
			c.udp_len = at->addr_len;
		} else {
			continue;
		}
		struct gate_cache_entry *k = known(e, g->key);
		if (!k && e->known_gate_count == GATE_CACHE_MAX)
			continue;
		if (!k) {
			k = &e->known_gates[e->known_gate_count++];
			char text[SRM_PUBKEY_TEXT_BYTES];
			srm_pubkey_encode(c.key, text);
			LOG_INFO(NULL, "gate: learned gate %s%s", text,
				 c.ws_port ? " (with a WebSocket)" : "");
			news = true;
		} else {
			news = k->udp_len != c.udp_len || memcmp(&k->udp, &c.udp, c.udp_len) != 0 ||
			       k->ws_port != c.ws_port || k->wss != c.wss ||
			       k->seen + SEEN_REWRITE_S < now;
		}
		if (news)
			*k = c;
		changed |= news;
	}
	if (!changed)
		return;
	char err[512];
	if (e->gate_cache_path[0] &&
	    gate_cache_save(e->gate_cache_path, e->known_gates, e->known_gate_count, err,
			    sizeof(err)) != 0)
		LOG_WARN(NULL, "SRMUDP_GATE_CACHE: %s", err);
	engine_gatebook_announce(e);
}
