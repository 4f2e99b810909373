/*
 * url.c — relay URLs, proxy URLs and the proxy choice (url.h).
 *
 * Every parser works on a (pointer, length) slice so a list item is parsed
 * where it stands, and every error quotes the item, never the whole list.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "config_priv.h"
#include "url.h"

/* Userinfo longer than this is not a proxy password anyone types; the
 * bound keeps its base64 within PROXY_AUTH_MAX. */
#define PROXY_USERINFO_MAX 511

static bool is_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

/* "host[:port]" or "[v6][:port]" in a[0..n) into host and *port (dflt
 * without one).  NULL, or why not. */
static const char *parse_hostport(const char *a, size_t n, char host[RELAY_HOST_MAX],
				  uint16_t *port, uint16_t dflt)
{
	const char *h = a, *colon;
	size_t hlen;
	unsigned long v = 0;

	if (n > 0 && a[0] == '[') {
		const char *close = memchr(a, ']', n);
		struct in6_addr a6;

		if (close == NULL)
			return "missing ']'";
		h = a + 1;
		hlen = (size_t)(close - h);
		if (hlen == 0 || hlen >= INET6_ADDRSTRLEN)
			return "bad IPv6 address";
		memcpy(host, h, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return "bad IPv6 address";
		colon = close + 1;
		if (colon < a + n && *colon != ':')
			return "junk after ']'";
	} else {
		colon = memchr(a, ':', n);
		hlen = colon ? (size_t)(colon - a) : n;
		if (hlen == 0)
			return "no host";
		if (hlen > 253)
			return "host name too long";
		for (size_t i = 0; i < hlen; i++)
			if (!is_host_char(a[i]))
				return "bad character in host name";
		memcpy(host, a, hlen);
		host[hlen] = '\0';
	}
	*port = dflt;
	if (colon == NULL || colon == a + n)
		return NULL;
	if (colon + 1 == a + n)
		return "empty port";
	if ((size_t)(a + n - colon - 1) > 5)
		return "bad port";
	for (const char *p = colon + 1; p < a + n; p++) {
		if (*p < '0' || *p > '9')
			return "bad port";
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v == 0 || v > 65535)
		return "port out of range (1-65535)";
	*port = (uint16_t)v;
	return NULL;
}

/* s[0..len) as a ws:// or wss:// URL. */
static int parse_ws(const char *where, const char *s, size_t len, struct relay_url *u, char *err,
		    size_t errlen)
{
	char qb[QUOTE_BUF];
	const char *rest, *end = s + len, *auth_end, *why;
	size_t plen;
	bool v6;

	memset(u, 0, sizeof(*u));
	if (len >= 6 && strncasecmp(s, "wss://", 6) == 0) {
		u->tls = true;
		rest = s + 6;
	} else if (len >= 5 && strncasecmp(s, "ws://", 5) == 0) {
		rest = s + 5;
	} else {
		config_err(err, errlen, where, "%s is not a ws:// or wss:// URL",
			   quote_bytes(qb, s, len));
		return SRM_ERR_INVALID;
	}
	for (auth_end = rest; auth_end < end && !strchr("/?#", *auth_end); auth_end++)
		;
	if (memchr(rest, '@', (size_t)(auth_end - rest)))
		why = "user information is not allowed";
	else
		why = parse_hostport(rest, (size_t)(auth_end - rest), u->host, &u->port,
				     u->tls ? 443 : 80);
	plen = (size_t)(end - auth_end);
	if (why == NULL && (memchr(auth_end, '?', plen) || memchr(auth_end, '#', plen)))
		why = "a query or fragment is not allowed";
	for (size_t i = 0; why == NULL && i < plen; i++)
		if ((unsigned char)auth_end[i] <= 0x20 || (unsigned char)auth_end[i] >= 0x7f)
			why = "bad character in path";
	if (why == NULL && plen >= RELAY_PATH_MAX)
		why = "path too long";
	if (why) {
		config_err(err, errlen, where, "bad relay URL %s: %s", quote_bytes(qb, s, len), why);
		return SRM_ERR_INVALID;
	}
	if (plen == 0)
		strcpy(u->path, "/");
	else
		memcpy(u->path, auth_end, plen);
	v6 = strchr(u->host, ':') != NULL;
	if (u->port == (u->tls ? 443 : 80))
		snprintf(u->host_header, sizeof(u->host_header), "%s%s%s", v6 ? "[" : "", u->host,
			 v6 ? "]" : "");
	else
		snprintf(u->host_header, sizeof(u->host_header), "%s%s%s:%u", v6 ? "[" : "",
			 u->host, v6 ? "]" : "", (unsigned)u->port);
	return 0;
}

int relay_url_parse(const char *where, const char *s, struct relay_url *u, char *err,
		    size_t errlen)
{
	return parse_ws(where, s, strlen(s), u, err, errlen);
}

int relay_url_list_parse(const char *where, const char *s, struct relay_url out[RELAY_URL_MAX],
			 size_t *n, char *err, size_t errlen)
{
	char qb[QUOTE_BUF];
	const char *p = s;

	*n = 0;
	while (*p && config_is_space(*p))
		p++;
	if (*p == '\0')
		return 0;
	for (;;) {
		const char *e = strchr(p, ','), *b;
		size_t len;
		int rc;

		if (e == NULL)
			e = p + strlen(p);
		b = e;
		while (p < b && config_is_space(*p))
			p++;
		while (b > p && config_is_space(b[-1]))
			b--;
		len = (size_t)(b - p);
		if (len == 0) {
			config_err(err, errlen, where, "empty URL in list %s", quote_str(qb, s));
			return SRM_ERR_INVALID;
		}
		if (*n == RELAY_URL_MAX) {
			config_err(err, errlen, where, "more than %d URLs (at %s)", RELAY_URL_MAX,
				   quote_bytes(qb, p, len));
			return SRM_ERR_INVALID;
		}
		rc = parse_ws(where, p, len, &out[*n], err, errlen);
		if (rc < 0)
			return rc;
		(*n)++;
		if (*e == '\0')
			return 0;
		p = e + 1;
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..n) onto out at *o.  false on a bad escape or NUL. */
static bool pct_decode(const char *s, size_t n, char *out, size_t *o)
{
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(s[i + 2]) : -1;

			if (i + 2 >= n || hi < 0 || lo < 0)
				return false;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c == 0)
			return false;
		out[(*o)++] = (char)c;
	}
	return true;
}

/* user[:password] into "user:password", base64, into p->auth. */
static const char *proxy_auth(const char *s, size_t n, struct proxy_url *p)
{
	char plain[PROXY_USERINFO_MAX + 1];
	const char *colon = memchr(s, ':', n);
	size_t o = 0, ulen = colon ? (size_t)(colon - s) : n;

	if (n > PROXY_USERINFO_MAX)
		return "user information too long";
	if (!pct_decode(s, ulen, plain, &o))
		return "bad %-escape in user name";
	plain[o++] = ':';
	if (colon && !pct_decode(colon + 1, (size_t)(s + n - colon - 1), plain, &o))
		return "bad %-escape in password";
	sodium_bin2base64(p->auth, sizeof(p->auth), (const unsigned char *)plain, o,
			  sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(plain, sizeof(plain));
	return NULL;
}

int proxy_url_parse(const char *where, const char *s, struct proxy_url *p, char *err,
		    size_t errlen)
{
	char qb[QUOTE_BUF];
	const char *rest = s, *sep = strstr(s, "://"), *auth_end, *at = NULL, *why = NULL;

	memset(p, 0, sizeof(*p));
	if (sep) {
		if (sep - s != 4 || strncasecmp(s, "http", 4) != 0) {
			config_err(err, errlen, where,
				   "%s is not an http:// proxy URL (only HTTP proxies are supported)",
				   quote_str(qb, s));
			return SRM_ERR_INVALID;
		}
		rest = sep + 3;
	}
	auth_end = rest + strcspn(rest, "/?#");
	for (const char *c = rest; c < auth_end; c++)
		if (*c == '@')
			at = c;
	if (at)
		why = proxy_auth(rest, (size_t)(at - rest), p);
	if (why == NULL)
		why = parse_hostport(at ? at + 1 : rest, (size_t)(auth_end - (at ? at + 1 : rest)),
				     p->host, &p->port, PROXY_DEFAULT_PORT);
	if (why == NULL && strcmp(auth_end, "") != 0 && strcmp(auth_end, "/") != 0)
		why = "a path, query or fragment is not allowed";
	if (why) {
		sodium_memzero(p->auth, sizeof(p->auth));
		/* The password stays out of the message. */
		config_err(err, errlen, where, "bad proxy URL %s: %s",
			   at ? quote_str(qb, at + 1) : quote_str(qb, s), why);
		return SRM_ERR_INVALID;
	}
	return 0;
}

/* Whether host (no brackets) is an IP address. */
static bool is_ip(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* One no_proxy item t[0..n) against host[0..hlen). */
static bool no_proxy_item(const char *t, size_t n, const char *host, size_t hlen, bool ip)
{
	const char *c;

	if (n == 1 && t[0] == '*')
		return true;
	if (n > 0 && t[0] == '[') {
		c = memchr(t, ']', n);
		if (c == NULL)
			return false;
		t++;
		n = (size_t)(c - t);
	} else if ((c = memchr(t, ':', n)) != NULL && memchr(c + 1, ':', (size_t)(t + n - c - 1)) == NULL) {
		n = (size_t)(c - t); /* name:port or v4:port */
	}
	if (!ip && n > 0 && t[0] == '.') {
		t++;
		n--;
	}
	if (n > 0 && t[n - 1] == '.')
		n--;
	if (n == 0 || n > hlen)
		return false;
	if (strncasecmp(host + hlen - n, t, n) != 0)
		return false;
	/* An address matches only itself; a name also its subdomains. */
	return n == hlen || (!ip && host[hlen - n - 1] == '.');
}

bool relay_no_proxy_match(const char *no_proxy, const char *host)
{
	size_t hlen = strlen(host);
	char h[RELAY_HOST_MAX];
	const char *p = no_proxy;
	bool ip;

	if (no_proxy == NULL || hlen == 0)
		return false;
	if (host[0] == '[' && host[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	if (hlen == 0 || hlen >= sizeof(h))
		return false;
	memcpy(h, host, hlen);
	h[hlen] = '\0';
	ip = is_ip(h);
	while (*p) {
		size_t n = strcspn(p, ", \t");

		if (n > 0 && no_proxy_item(p, n, h, hlen, ip))
			return true;
		p += n;
		if (*p)
			p++;
	}
	return false;
}

static const char *nonempty(const char *s)
{
	return s && s[0] ? s : NULL;
}

int relay_proxy_for(const struct relay_url *u, const char *srmudp_proxy,
		    char *(*get)(const char *name), struct proxy_url *p, char *err, size_t errlen)
{
	const char *where, *val, *np;
	int rc;

	if (srmudp_proxy) {
		where = "SRMUDP_PROXY";
		val = nonempty(srmudp_proxy);
	} else if (u->tls) {
		where = "https_proxy";
		val = nonempty(get(where));
		if (val == NULL) {
			where = "HTTPS_PROXY";
			val = nonempty(get(where));
		}
	} else {
		where = "http_proxy";
		val = nonempty(get(where));
	}
	if (val == NULL)
		return 0;
	rc = proxy_url_parse(where, val, p, err, errlen);
	if (rc < 0)
		return rc;
	np = nonempty(get("no_proxy"));
	if (np == NULL)
		np = nonempty(get("NO_PROXY"));
	if (relay_no_proxy_match(np, u->host)) {
		sodium_memzero(p, sizeof(*p));
		return 0;
	}
	return 1;
}
