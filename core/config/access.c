/*
 * access.c — which peer may reach which local port: SRMUDP_EXPOSE and
 * SRMUDP_ALLOW (parsed here, for config.c) and the rule every way in
 * applies (srm_access_check: preloaded listeners, srmudp serve, gates).
 *
 * The rule (docs/SECURITY.md, "Access control"):
 *  - a listener bound to a loopback address only is for this host: peers
 *    reach it only if its port is in SRMUDP_EXPOSE.  Wildcard and other
 *    local addresses, and explicit exposures (srmudp serve --expose), are
 *    reachable;
 *  - SRMUDP_ALLOW, when set, narrows that per peer: NAME=PORT[,PORT...] or
 *    NAME=*; a peer it does not name reaches nothing.  Unset: every peer
 *    reaches every exposed port.
 * A refusal looks like a closed port to the peer (ECONNREFUSED): it learns
 * nothing it could not learn by trying a closed one.
 *
 * Representation: sorted arrays (srmudp.h), searched with bsearch; a
 * stream open is rare enough that nothing cleverer pays.  Rules name
 * peers, not indices, so they survive a change of the peer list.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config_priv.h"
#include "srmudp.h"

/* Every port at most once, and 1024 peers with a few ports each: bounds
 * a hostile or mistaken value's memory. */
#define EXPOSE_MAX 65535u
#define ALLOW_RULES_MAX 65536u

static int cmp_port(const void *a, const void *b)
{
	uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;

	return (x > y) - (x < y);
}

static int cmp_rule(const void *a, const void *b)
{
	const struct srm_allow_rule *x = a, *y = b;
	int c = strcmp(x->peer, y->peer);

	if (c != 0)
		return c;
	return (x->port > y->port) - (x->port < y->port);
}

/* s[0..len) as a port 1..65535, or 0. */
static uint16_t port_of(const char *s, size_t len)
{
	unsigned long v = 0;

	if (len == 0 || len > 5)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	return v <= 65535 ? (uint16_t)v : 0;
}

/* Sort and drop repeats (a port named twice means it once). */
static size_t unique_ports(uint16_t *p, size_t n)
{
	size_t out = 0;

	qsort(p, n, sizeof(*p), cmp_port);
	for (size_t i = 0; i < n; i++)
		if (out == 0 || p[out - 1] != p[i])
			p[out++] = p[i];
	return out;
}

/* "PORT[,PORT...]", commas or whitespace between ports. */
int access_parse_expose(const struct source *src, struct srm_config *cfg, char *err,
			size_t errlen)
{
	const char *s = src->value;
	char qb[QUOTE_BUF];
	size_t n = 0, cap = 0;
	uint16_t *ports = NULL;

	for (;;) {
		size_t len;

		while (*s == ',' || config_is_space(*s))
			s++;
		if (*s == '\0')
			break;
		len = strcspn(s, ", \t\n\r\v\f");
		uint16_t port = port_of(s, len);
		if (port == 0) {
			config_err(err, errlen, src->where, "bad port %s (expected 1 to 65535)",
				   quote_bytes(qb, s, len));
			goto fail;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			uint16_t *np;

			if (cap >= EXPOSE_MAX) { /* repeats only: a value of 65535+ ports */
				config_err(err, errlen, src->where, "more than %u ports (at %s)",
					   EXPOSE_MAX, quote_bytes(qb, s, len));
				goto fail;
			}
			np = realloc(ports, ncap * sizeof(*np));
			if (np == NULL) {
				config_err(err, errlen, src->where, "out of memory");
				free(ports);
				return SRM_ERR_NOMEM;
			}
			ports = np;
			cap = ncap;
		}
		ports[n++] = port;
		s += len;
	}
	if (n == 0) {
		config_err(err, errlen, src->where, "no port in %s (expected PORT[,PORT...])",
			   quote_str(qb, src->value));
		goto fail;
	}
	free(cfg->expose);
	cfg->expose = ports;
	cfg->expose_count = unique_ports(ports, n);
	return 0;
fail:
	free(ports);
	return SRM_ERR_INVALID;
}

static int add_rule(struct srm_config *cfg, size_t *cap, const char *peer, uint16_t port)
{
	if (cfg->allow_count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		struct srm_allow_rule *np;

		if (*cap >= ALLOW_RULES_MAX)
			return SRM_ERR_INVALID;
		np = realloc(cfg->allow, ncap * sizeof(*np));
		if (np == NULL)
			return SRM_ERR_NOMEM;
		cfg->allow = np;
		*cap = ncap;
	}
	struct srm_allow_rule *r = &cfg->allow[cfg->allow_count++];

	memset(r, 0, sizeof(*r));
	strcpy(r->peer, peer); /* a configured name: fits */
	r->port = port;
	return 0;
}

int config_peer_index(const struct source *src, const struct srm_config *cfg, const char *name,
		      size_t len, char *err, size_t errlen)
{
	char low[SRM_PEER_NAME_MAX + 1], qb[QUOTE_BUF];
	const char *near;

	if (len > 0 && len <= SRM_PEER_NAME_MAX) {
		for (size_t i = 0; i < len; i++)
			low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
		low[len] = '\0';
		for (size_t i = 0; i < cfg->peer_count; i++)
			if (strcmp(cfg->peers[i].name, low) == 0)
				return (int)i;
		near = srm_peer_suggest(cfg, low);
		if (near != NULL) {
			config_err(err, errlen, src->where, "unknown peer %s (did you mean %s?)",
				   quote_bytes(qb, name, len), near);
			return -1;
		}
	}
	config_err(err, errlen, src->where, "unknown peer %s (not in SRMUDP_PEERS)",
		   quote_bytes(qb, name, len));
	return -1;
}

/* One "NAME=PORT[,PORT...]" or "NAME=*" rule. */
static int allow_entry(const struct source *src, struct srm_config *cfg, size_t *cap,
		       bool seen[SRM_MAX_PEERS], const char *tok, size_t len, char *err,
		       size_t errlen)
{
	const char *eq = memchr(tok, '=', len), *p, *end = tok + len;
	char qb[QUOTE_BUF], qn[QUOTE_BUF];
	int peer, rc;

	if (eq == NULL || eq == tok || eq + 1 == end) {
		config_err(err, errlen, src->where, "expected NAME=PORT[,PORT...] or NAME=*, got %s",
			   quote_bytes(qb, tok, len));
		return SRM_ERR_INVALID;
	}
	peer = config_peer_index(src, cfg, tok, (size_t)(eq - tok), err, errlen);
	if (peer < 0)
		return SRM_ERR_INVALID;
	quote_str(qn, cfg->peers[peer].name);
	if (seen[peer]) {
		config_err(err, errlen, src->where, "peer %s has two rules", qn);
		return SRM_ERR_INVALID;
	}
	seen[peer] = true;
	if (end - eq == 2 && eq[1] == '*')
		return add_rule(cfg, cap, cfg->peers[peer].name, 0) == SRM_ERR_NOMEM ? SRM_ERR_NOMEM
											 : 0;
	for (p = eq + 1; p < end;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t plen = (size_t)((comma ? comma : end) - p);
		uint16_t port = port_of(p, plen);

		if (port == 0) {
			config_err(err, errlen, src->where,
				   "bad port %s for peer %s (expected 1 to 65535, or * alone)",
				   quote_bytes(qb, p, plen), qn);
			return SRM_ERR_INVALID;
		}
		rc = add_rule(cfg, cap, cfg->peers[peer].name, port);
		if (rc == SRM_ERR_NOMEM) {
			config_err(err, errlen, src->where, "out of memory");
			return rc;
		}
		if (rc != 0) {
			config_err(err, errlen, src->where, "more than %u rules (at peer %s)",
				   ALLOW_RULES_MAX, qn);
			return rc;
		}
		p += plen + (comma != NULL);
		if (comma != NULL && p == end) {
			config_err(err, errlen, src->where, "bad port \"\" for peer %s (trailing ',')", qn);
			return SRM_ERR_INVALID;
		}
	}
	return 0;
}

/* Rules separated by whitespace (commas separate ports within one). */
int access_parse_allow(const struct source *src, struct srm_config *cfg, char *err,
		       size_t errlen)
{
	const char *s = src->value;
	char qb[QUOTE_BUF];
	bool seen[SRM_MAX_PEERS] = { false };
	size_t cap = 0;

	free(cfg->allow);
	cfg->allow = NULL;
	cfg->allow_count = 0;
	for (;;) {
		size_t len;
		int rc;

		while (config_is_space(*s))
			s++;
		if (*s == '\0')
			break;
		len = strcspn(s, " \t\n\r\v\f");
		rc = allow_entry(src, cfg, &cap, seen, s, len, err, errlen);
		if (rc != 0)
			return rc;
		s += len;
	}
	if (cfg->allow_count == 0) {
		config_err(err, errlen, src->where,
			   "no rule in %s (expected NAME=PORT[,PORT...] or NAME=*)",
			   quote_str(qb, src->value));
		return SRM_ERR_INVALID;
	}
	qsort(cfg->allow, cfg->allow_count, sizeof(*cfg->allow), cmp_rule);
	size_t out = 0;
	for (size_t i = 0; i < cfg->allow_count; i++)
		if (out == 0 || cmp_rule(&cfg->allow[out - 1], &cfg->allow[i]) != 0)
			cfg->allow[out++] = cfg->allow[i];
	cfg->allow_count = out;
	cfg->allow_set = 1;
	return 0;
}

static bool allowed(const struct srm_config *cfg, const char *peer, uint16_t port)
{
	struct srm_allow_rule key;

	if (peer == NULL || strlen(peer) > SRM_PEER_NAME_MAX || cfg->allow_count == 0)
		return false;
	memset(&key, 0, sizeof(key));
	strcpy(key.peer, peer);
	if (bsearch(&key, cfg->allow, cfg->allow_count, sizeof(key), cmp_rule) != NULL)
		return true; /* NAME=* */
	key.port = port;
	return bsearch(&key, cfg->allow, cfg->allow_count, sizeof(key), cmp_rule) != NULL;
}

enum srm_refusal srm_access_check(const struct srm_config *cfg, const char *peer, uint16_t port,
				  int loopback)
{
	if (loopback && (cfg->expose_count == 0 ||
			 !bsearch(&port, cfg->expose, cfg->expose_count, sizeof(port), cmp_port)))
		return SRM_REFUSED_LOOPBACK;
	if (cfg->allow_set && !allowed(cfg, peer, port))
		return SRM_REFUSED_PEER;
	return SRM_REFUSED_NONE;
}

const char *srm_refusal_name(enum srm_refusal r)
{
	static const char *const names[SRM_REFUSALS] = {
		[SRM_REFUSED_NONE] = "",
		[SRM_REFUSED_CLOSED] = "closed",
		[SRM_REFUSED_LOOPBACK] = "loopback",
		[SRM_REFUSED_PEER] = "not-allowed",
	};

	return (unsigned)r < SRM_REFUSALS ? names[r] : "?";
}
