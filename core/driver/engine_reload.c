/*
 * engine_reload.c — a running engine takes a new configuration
 * (srm_engine_reload): `srmudp reload` through the control socket, SIGHUP
 * of `srmudp serve`.
 *
 * What a reload can change, and why the rest needs a restart:
 *  - the peers (SRMUDP_PEERS), matched by name.  An added peer is usable at
 *    once; a removed one, or one whose key changed, has its sessions
 *    (extra instances too) closed with a CLOSE to the peer, its keys
 *    wiped and its streams reset, before srm_engine_reload returns.  Its
 *    endpoint is resolved again (srm_config_from_env resolves host names):
 *    a changed one becomes where handshakes go.
 *  - what is read per packet or per new stream: SRMUDP_LOG, SRMUDP_LOG_FILE,
 *    SRMUDP_RATE, SRMUDP_RATE_PACKETS, SRMUDP_PAD, SRMUDP_BUSY_POLL at once;
 *    SRMUDP_EXPOSE and SRMUDP_ALLOW for streams peers open after (their
 *    rules name peers, so they mean the same across a reload);
 *    SRMUDP_COMPRESS, SRMUDP_CC, SRMUDP_IDLE_TIMEOUT and
 *    SRMUDP_CONNECT_TIMEOUT for sessions and streams that start after.
 *  - not SRMUDP_KEY: the identity is the engine (every session, cookie and
 *    the rendezvous registration derive from it).  A reload that names
 *    another key is refused as a whole: a peer list written for another
 *    identity should not be half applied to this one.
 *  - not SRMUDP_LISTEN, SRMUDP_GSO (the bound socket), SRMUDP_RENDEZVOUS,
 *    SRMUDP_RELAY, SRMUDP_PROXY, SRMUDP_RELAY_CA (the server link and its
 *    registration), SRMUDP_WARMUP (read once by the preload),
 *    SRMUDP_GATE, SRMUDP_GATES, SRMUDP_GATE_CACHE (the servers, listed at
 *    start): a change is
 *    named in the answer as needing a restart, and the rest applies.
 *
 * A peer's index (the API's, and the preload's virtual address) is its
 * slot: peers that stay keep theirs, added ones get new ones, and a
 * removed peer's index is never given to another (see struct srm_engine).
 * So a configuration's peer positions are not the engine's indices after
 * a reload: whatever names peers by position must be mapped through
 * old[] below.
 *
 * The new configuration is parsed by the caller, outside e->lock (files,
 * DNS); srm_engine_reload applies it under the lock in one step, so the
 * engine thread and the API never see half of it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "json.h"
#include "log.h"
#include "quote.h"

/* Peer indices an engine may give out over its life: the preload's
 * virtual addresses number peers in 16 bits (shim/vaddr.h). */
#define ENGINE_PEER_INDICES 65535
/* Names listed per kind of change in the answer; the rest are counted. */
#define NAMES_LISTED 8

/* ---- The answer line ------------------------------------------------------ */

struct line {
	char *buf;
	size_t cap, len;
};

static void put(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct line *l, const char *fmt, ...)
{
	if (l->len + 1 >= l->cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(l->buf + l->len, l->cap - l->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len = l->len + (size_t)n < l->cap ? l->len + (size_t)n : l->cap - 1;
}

/* "; added a, b and 3 more": one kind of change, with its names. */
struct change {
	const char *what;
	size_t count;
	char names[NAMES_LISTED][SRM_PEER_NAME_MAX + 1];
};

static void note(struct change *c, const char *name)
{
	if (c->count < NAMES_LISTED)
		snprintf(c->names[c->count], sizeof(c->names[0]), "%s", name);
	c->count++;
}

static void put_change(struct line *l, const struct change *c)
{
	if (!c->count)
		return;
	put(l, "; %s ", c->what);
	for (size_t i = 0; i < c->count && i < NAMES_LISTED; i++)
		put(l, "%s%s", i ? ", " : "", c->names[i]);
	if (c->count > NAMES_LISTED)
		put(l, " and %zu more", c->count - NAMES_LISTED);
}

/* ---- Slots ------------------------------------------------------------------ */

/* End p's session for good: the peer hears a CLOSE (its streams reset
 * now, not at its idle timeout), ours reset (ECONNRESET in the program),
 * the keys are wiped.  The slot is left empty. */
static void slot_close(struct srm_engine *e, struct peer *p, uint64_t now_us)
{
	if (!p->session)
		return;
	if (p->conn && session_established(p->session)) {
		conn_close(p->conn, RESET_SHUTDOWN);
		engine_peer_flush(e, p, now_us);
		engine_send_flush(e);
	}
	engine_peer_drop_conn(e, p, SRM_ERR_RESET);
	session_free(p->session);
	p->session = NULL;
	path_peer_free(p->paths);
	p->paths = NULL;
}

/* The configured peer at index i and its extra instances. */
static void peer_close(struct srm_engine *e, size_t i, uint64_t now_us)
{
	for (size_t x = 0; x < e->extra_count; x++) {
		struct peer *p = &e->extras[x];
		if (p->session && p->parent == (int)i) {
			slot_close(e, p, now_us);
			memset(p, 0, sizeof(*p));
		}
	}
	slot_close(e, &e->peers[i], now_us);
}

/* Room for n configured slots.  The array moves: the bridges' pointers
 * follow (nothing else keeps one across e->lock). */
static int peers_grow(struct srm_engine *e, size_t n)
{
	if (n <= e->peer_cap)
		return 0;
	size_t cap = e->peer_cap * 2 > n ? e->peer_cap * 2 : n;
	if (cap > ENGINE_PEER_INDICES)
		cap = ENGINE_PEER_INDICES;
	struct peer *np = calloc(cap, sizeof(*np));
	if (!np)
		return SRM_ERR_NOMEM;
	memcpy(np, e->peers, e->peer_count * sizeof(*np));
	struct bridge *b, *tmp;
	HASH_ITER(hh, e->bridges, b, tmp)
		if (!b->peer->extra)
			b->peer = &np[b->peer->index];
	free(e->peers);
	e->peers = np;
	e->peer_cap = cap;
	return 0;
}

static bool endpoint_equal(const struct srm_peer_config *a, const struct srm_peer_config *b)
{
	if (a->endpoint_len != b->endpoint_len)
		return false;
	return !a->endpoint_len || path_sockaddr_equal(&a->endpoint, (const struct sockaddr *)&b->endpoint);
}

static struct peer_paths *paths_for(struct srm_engine *e, const struct srm_peer_config *pc,
				    uint64_t now_ms)
{
	struct sockaddr_storage home;
	socklen_t len = 0;
	if (pc->endpoint_len)
		len = engine_addr_for_socket(e, &pc->endpoint, pc->endpoint_len, &home);
	return path_peer_new(e->paths, pc->name, &home, len, now_ms);
}

/* ---- Settings ---------------------------------------------------------------- */

static bool relays_equal(const struct srm_config *a, const struct srm_config *b)
{
	if (a->relay_count != b->relay_count)
		return false;
	for (size_t i = 0; i < a->relay_count; i++)
		if (strcmp(a->relays[i].url, b->relays[i].url) != 0 ||
		    strcmp(a->relays[i].proxy, b->relays[i].proxy) != 0)
			return false;
	return true;
}

static bool addr_equal(const struct sockaddr_storage *a, socklen_t alen,
		       const struct sockaddr_storage *b, socklen_t blen)
{
	return alen == blen && (!alen || path_sockaddr_equal(a, (const struct sockaddr *)b));
}

static bool rendezvous_equal(const struct srm_config *a, const struct srm_config *b)
{
	if (a->rendezvous_count != b->rendezvous_count)
		return false;
	for (size_t i = 0; i < a->rendezvous_count; i++) {
		const struct srm_rendezvous_config *x = &a->rendezvous[i], *y = &b->rendezvous[i];
		if (!addr_equal(&x->addr, x->addr_len, &y->addr, y->addr_len) ||
		    x->pinned != y->pinned || memcmp(x->key, y->key, SRM_KEY_BYTES) != 0)
			return false;
	}
	return true;
}

static bool gates_equal(const struct srm_config *a, const struct srm_config *b)
{
	if (a->gate_count != b->gate_count)
		return false;
	for (size_t i = 0; i < a->gate_count; i++)
		if (strcmp(a->gates[i], b->gates[i]) != 0)
			return false;
	return true;
}

/* Settings that need a restart and differ: "SRMUDP_LISTEN, ..." into l. */
static void restart_only(const struct srm_config *run, const struct srm_config *cfg, struct line *l)
{
	const char *sep = "";
	struct {
		bool differs;
		const char *name;
	} const s[] = {
		{ !addr_equal(&run->listen, run->listen_len, &cfg->listen, cfg->listen_len), "SRMUDP_LISTEN" },
		{ !rendezvous_equal(run, cfg), "SRMUDP_RENDEZVOUS" },
		{ !relays_equal(run, cfg), "SRMUDP_RELAY" },
		{ strcmp(run->proxy, cfg->proxy) != 0 || run->proxy_set != cfg->proxy_set, "SRMUDP_PROXY" },
		{ strcmp(run->relay_ca, cfg->relay_ca) != 0, "SRMUDP_RELAY_CA" },
		{ run->gso_off != cfg->gso_off, "SRMUDP_GSO" },
		{ run->warmup != cfg->warmup, "SRMUDP_WARMUP" },
		{ run->gate != cfg->gate, "SRMUDP_GATE" },
		{ !gates_equal(run, cfg), "SRMUDP_GATES" },
		{ strcmp(run->gate_cache, cfg->gate_cache) != 0 ||
			  run->gate_cache_off != cfg->gate_cache_off, "SRMUDP_GATE_CACHE" },
	};
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		if (s[i].differs) {
			put(l, "%s%s", sep, s[i].name);
			sep = ", ";
		}
}

static void *memdup(const void *p, size_t n)
{
	void *q = n ? malloc(n) : NULL;
	return q ? memcpy(q, p, n) : NULL;
}

/* The access rules, copied (the caller keeps cfg): in *expose and *allow,
 * or SRM_ERR_NOMEM. */
static int copy_access(const struct srm_config *cfg, uint16_t **expose,
		       struct srm_allow_rule **allow)
{
	*expose = memdup(cfg->expose, cfg->expose_count * sizeof(*cfg->expose));
	*allow = memdup(cfg->allow, cfg->allow_count * sizeof(*cfg->allow));
	if ((cfg->expose_count && !*expose) || (cfg->allow_count && !*allow)) {
		free(*expose);
		free(*allow);
		return SRM_ERR_NOMEM;
	}
	return 0;
}

/* Swap in the access rules (expose, allow: copies of cfg's, now the
 * engine's); the old ones into *expose and *allow, to be freed. */
static bool swap_access(struct srm_config *run, const struct srm_config *cfg, uint16_t **expose,
			struct srm_allow_rule **allow, struct line *l, const char **sep)
{
	bool ex = run->expose_count != cfg->expose_count ||
		  (cfg->expose_count &&
		   memcmp(run->expose, cfg->expose, cfg->expose_count * sizeof(*cfg->expose)));
	bool al = run->allow_set != cfg->allow_set || run->allow_count != cfg->allow_count ||
		  (cfg->allow_count &&
		   memcmp(run->allow, cfg->allow, cfg->allow_count * sizeof(*cfg->allow)));
	uint16_t *old_expose = run->expose;
	struct srm_allow_rule *old_allow = run->allow;
	run->expose = *expose;
	run->expose_count = cfg->expose_count;
	run->allow = *allow;
	run->allow_count = cfg->allow_count;
	run->allow_set = cfg->allow_set;
	*expose = old_expose;
	*allow = old_allow;
	if (ex) {
		put(l, "%sSRMUDP_EXPOSE", *sep);
		*sep = ", ";
	}
	if (al) {
		put(l, "%sSRMUDP_ALLOW", *sep);
		*sep = ", ";
	}
	return ex || al;
}

/* Apply what may change at run time; "SRMUDP_LOG, ..." into l.  expose
 * and allow: see swap_access. */
static void apply_settings(struct srm_engine *e, const struct srm_config *cfg, uint16_t **expose,
			   struct srm_allow_rule **allow, struct line *l)
{
	struct srm_config *run = &e->cfg;
	const char *sep = "";
	swap_access(run, cfg, expose, allow, l, &sep);
#define CHANGE(field, name)                          \
	do {                                         \
		if (run->field != cfg->field) {      \
			run->field = cfg->field;     \
			put(l, "%s%s", sep, name);   \
			sep = ", ";                  \
		}                                    \
	} while (0)
	bool log_changed = run->log_level != cfg->log_level || strcmp(run->log_file, cfg->log_file);
	CHANGE(log_level, "SRMUDP_LOG");
	if (strcmp(run->log_file, cfg->log_file) != 0) {
		memcpy(run->log_file, cfg->log_file, sizeof(run->log_file));
		put(l, "%sSRMUDP_LOG_FILE", sep);
		sep = ", ";
	}
	CHANGE(compress, "SRMUDP_COMPRESS");
	CHANGE(cc, "SRMUDP_CC");
	CHANGE(connect_timeout_ms, "SRMUDP_CONNECT_TIMEOUT");
	CHANGE(idle_timeout_ms, "SRMUDP_IDLE_TIMEOUT");
	CHANGE(rate_bytes, "SRMUDP_RATE");
	CHANGE(rate_packets, "SRMUDP_RATE_PACKETS");
	CHANGE(pad, "SRMUDP_PAD");
	CHANGE(busy_poll_us, "SRMUDP_BUSY_POLL");
	CHANGE(via_off, "SRMUDP_VIA");
#undef CHANGE
	e->session_cfg.connect_timeout_ms = run->connect_timeout_ms;
	if (log_changed) {
		log_open(run->log_level, run->log_file);
		/* A program's closefrom() must spare a new log file too. */
		if (log_fd() != STDERR_FILENO)
			engine_fd_mark(e, log_fd());
	}
}

/* ---- The reload ------------------------------------------------------------- */

/* Checks that need no lock: the key, and no peer with our own key. */
static int check(struct srm_engine *e, const struct srm_config *cfg, struct line *l)
{
	char q1[QUOTE_BUF], q2[QUOTE_BUF];
	if (strcmp(cfg->key_path, e->cfg.key_path) != 0) {
		put(l, "SRMUDP_KEY: %s is not the running key %s: a new key needs a restart; "
		       "nothing reloaded",
		    quote_str(q1, cfg->key_path), quote_str(q2, e->cfg.key_path));
		return SRM_ERR_INVALID;
	}
	uint8_t mine[SRM_KEY_BYTES];
	identity_public_key(e->identity, mine);
	for (size_t i = 0; i < cfg->peer_count; i++)
		if (memcmp(cfg->peers[i].pubkey, mine, SRM_KEY_BYTES) == 0) {
			put(l, "SRMUDP_PEERS: peer %s has this host's own public key",
			    quote_str(q1, cfg->peers[i].name));
			return SRM_ERR_INVALID;
		}
	return 0;
}

/* Under e->lock: what becomes of each new peer (old[j]: its slot, or -1:
 * added) and the sessions and paths the new or re-keyed ones need, made
 * before anything changes, so that running out of memory changes
 * nothing. */
static int prepare(struct srm_engine *e, const struct srm_config *cfg, int *old,
		   struct session **fresh, struct peer_paths **paths, struct line *l)
{
	size_t added = 0;
	uint64_t now_ms = clock_now_ms();
	for (size_t j = 0; j < cfg->peer_count; j++) {
		old[j] = -1;
		for (size_t i = 0; i < e->peer_count && old[j] < 0; i++)
			if (e->peers[i].session && strcmp(e->peers[i].cfg.name, cfg->peers[j].name) == 0)
				old[j] = (int)i;
		added += old[j] < 0;
	}
	if (e->peer_count + added > ENGINE_PEER_INDICES) {
		put(l, "SRMUDP_PEERS: %zu peers were added since the engine started, the most "
		       "one engine can number: restart it",
		    e->peer_count);
		return SRM_ERR_NOMEM;
	}
	if (peers_grow(e, e->peer_count + added) != 0)
		goto nomem;
	for (size_t j = 0; j < cfg->peer_count; j++) {
		const struct srm_peer_config *pc = &cfg->peers[j];
		if (old[j] >= 0 && memcmp(e->peers[old[j]].cfg.pubkey, pc->pubkey, SRM_KEY_BYTES) == 0)
			continue;
		fresh[j] = session_new(e->identity, pc->pubkey, &e->session_cfg, e->indices);
		paths[j] = paths_for(e, pc, now_ms);
		if (!fresh[j] || !paths[j])
			goto nomem;
	}
	return 0;
nomem:
	for (size_t j = 0; j < cfg->peer_count; j++) {
		session_free(fresh[j]);
		path_peer_free(paths[j]);
		fresh[j] = NULL;
		paths[j] = NULL;
	}
	put(l, "out of memory; nothing reloaded");
	return SRM_ERR_NOMEM;
}

int srm_engine_reload(srm_engine *e, const struct srm_config *cfg, char *msg, size_t msglen)
{
	char scratch[8];
	struct line l = { msglen ? msg : scratch, msglen ? msglen : sizeof(scratch), 0 };
	l.buf[0] = '\0';
	if (!e || !cfg)
		return SRM_ERR_INVALID;
	int rc = check(e, cfg, &l);
	if (rc < 0) {
		LOG_WARN(NULL, "reload refused: %s", l.buf);
		return rc;
	}
	size_t n = cfg->peer_count;
	uint16_t *expose = NULL;
	struct srm_allow_rule *allow = NULL;
	if (copy_access(cfg, &expose, &allow) != 0) {
		put(&l, "out of memory; nothing reloaded");
		return SRM_ERR_NOMEM;
	}
	int *old = calloc(n + 1, sizeof(*old));
	struct session **fresh = calloc(n + 1, sizeof(*fresh));
	struct peer_paths **paths = calloc(n + 1, sizeof(*paths));
	struct change added = { .what = "added" }, removed = { .what = "removed" },
		      rekeyed = { .what = "re-keyed" }, moved = { .what = "new endpoint for" };
	char changed[256] = "", restart[256] = "";
	struct line lc = { changed, sizeof(changed), 0 }, lr = { restart, sizeof(restart), 0 };

	pthread_mutex_lock(&e->lock);
	if (!old || !fresh || !paths) {
		put(&l, "out of memory; nothing reloaded");
		rc = SRM_ERR_NOMEM;
	} else if (e->stopping) {
		put(&l, "the engine is stopping");
		rc = SRM_ERR_CLOSED;
	} else {
		rc = prepare(e, cfg, old, fresh, paths, &l);
	}
	if (rc < 0) {
		pthread_mutex_unlock(&e->lock);
		free(old);
		free(fresh);
		free(paths);
		free(expose);
		free(allow);
		LOG_WARN(NULL, "reload failed: %s", l.buf);
		return rc;
	}
	/* From here on nothing fails. */
	uint64_t now_us = clock_now_us();
	for (size_t i = 0; i < e->peer_count; i++) {
		bool kept = false;
		for (size_t j = 0; j < n && !kept; j++)
			kept = old[j] == (int)i;
		if (kept || !e->peers[i].session)
			continue;
		note(&removed, e->peers[i].cfg.name);
		LOG_INFO(e->peers[i].cfg.name, "reload: peer removed; its session ends");
		peer_close(e, i, now_us);
		struct peer *p = &e->peers[i];
		memset(p, 0, sizeof(*p));
		p->index = p->parent = (int)i; /* empty for good */
	}
	for (size_t j = 0; j < n; j++) {
		const struct srm_peer_config *pc = &cfg->peers[j];
		struct peer *p;
		if (old[j] < 0) {
			p = &e->peers[e->peer_count];
			memset(p, 0, sizeof(*p));
			p->index = p->parent = (int)e->peer_count++;
			note(&added, pc->name);
			LOG_INFO(pc->name, "reload: peer added");
		} else if (fresh[j]) {
			p = &e->peers[old[j]];
			note(&rekeyed, pc->name);
			LOG_INFO(pc->name, "reload: new public key; the old key's session ends");
			peer_close(e, (size_t)old[j], now_us);
			int index = p->index;
			memset(p, 0, sizeof(*p));
			p->index = p->parent = index;
		} else {
			p = &e->peers[old[j]];
			if (!endpoint_equal(&p->cfg, pc)) {
				note(&moved, pc->name);
				struct sockaddr_storage home;
				socklen_t len = 0;
				if (pc->endpoint_len)
					len = engine_addr_for_socket(e, &pc->endpoint, pc->endpoint_len,
								     &home);
				path_peer_set_home(p->paths, &home, len, now_us / 1000);
				LOG_INFO(pc->name, "reload: new endpoint");
			}
			p->cfg = *pc;
			continue;
		}
		p->cfg = *pc;
		p->session = fresh[j];
		p->paths = paths[j];
	}
	restart_only(&e->cfg, cfg, &lr);
	apply_settings(e, cfg, &expose, &allow, &lc);
	/* Who may find us, and (a gate) whom we serve, follow the new list. */
	engine_rdv_set_peers(e, clock_now_ms());
	if (e->gate)
		rdv_server_readmit(e->gate);
	size_t live = 0;
	for (size_t i = 0; i < e->peer_count; i++)
		live += e->peers[i].session != NULL;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	engine_wake(e); /* new peers' timers, handshakes */
	free(old);
	free(fresh);
	free(paths);
	free(expose); /* the rules replaced */
	free(allow);

	put(&l, "%zu peer%s", live, live == 1 ? "" : "s");
	put_change(&l, &added);
	put_change(&l, &removed);
	put_change(&l, &rekeyed);
	put_change(&l, &moved);
	if (changed[0])
		put(&l, "; changed %s", changed);
	if (!added.count && !removed.count && !rekeyed.count && !moved.count && !changed[0])
		put(&l, ", nothing changed");
	if (restart[0]) {
		put(&l, "; not applied, needs a restart: %s", restart);
		LOG_WARN(NULL, "reloaded: %s", l.buf);
	} else {
		LOG_INFO(NULL, "reloaded: %s", l.buf);
	}
	return 0;
}

void engine_reload_request(struct json_out *out, void *ctx)
{
	struct srm_engine *e = ctx;
	struct srm_config cfg;
	char err[1024] = "", msg[1024] = "";
	/* This process's environment as it is now (normally as the program
	 * started: nobody outside can change it) and the SRMUDP_CONFIG file
	 * as it is now: the file is what an operator edits. */
	int rc = srm_config_from_env(&cfg, err, sizeof(err));
	if (rc < 0) {
		LOG_WARN(NULL, "reload failed: %s; the running configuration stays", err);
		json_out_printf(out, "error: %s\n", err[0] ? err : srm_strerror(rc));
		return;
	}
	rc = srm_engine_reload(e, &cfg, msg, sizeof(msg));
	srm_config_free(&cfg);
	json_out_printf(out, "%s: %s\n", rc < 0 ? "error" : "ok", msg);
}
