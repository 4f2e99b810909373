/*
 * url.h — where the relay is (SRMUDP_RELAY: ws:// and wss:// URLs) and
 * which HTTP proxy, if any, leads there (SRMUDP_PROXY, else the curl
 * variables https_proxy/HTTPS_PROXY for wss://, http_proxy for ws://,
 * both subject to no_proxy/NO_PROXY).  Parsing only: no name is resolved.
 *
 * Errors are SRM_ERR_INVALID with one line in err naming the variable and
 * quoting the offending token, e.g.
 *   SRMUDP_RELAY: "ftp://x" is not a ws:// or wss:// URL
 */
#ifndef SRMUDP_URL_H
#define SRMUDP_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srmudp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* SRMUDP_RELAY names at most this many relays (tried in turn). */
#define RELAY_URL_MAX 8
#define RELAY_HOST_MAX 256	/* a DNS name is at most 253 characters */
#define RELAY_PATH_MAX 256
/* "[" host "]:" port and the NUL */
#define RELAY_HOST_HEADER_MAX (RELAY_HOST_MAX + 8)
/* base64 of "user:password", each at most 255 bytes once decoded */
#define PROXY_AUTH_MAX 690
/* curl's default proxy port, for a proxy URL without one */
#define PROXY_DEFAULT_PORT 1080

struct relay_url {
	bool tls;			     /* wss:// */
	char host[RELAY_HOST_MAX];	     /* name or address, IPv6 without brackets */
	uint16_t port;			     /* 80 for ws://, 443 for wss:// if not given */
	char path[RELAY_PATH_MAX];	     /* "/" when the URL has none */
	char host_header[RELAY_HOST_HEADER_MAX]; /* Host: host[:port], port only if not default */
};

struct proxy_url {
	char host[RELAY_HOST_MAX];	/* IPv6 without brackets */
	uint16_t port;			/* PROXY_DEFAULT_PORT if not given */
	char auth[PROXY_AUTH_MAX];	/* base64 "user:password" for Proxy-Authorization:
					 * Basic, "" without userinfo */
};

/* One ws:// or wss:// URL: scheme case-insensitive, host a DNS name, an
 * IPv4 address or [IPv6], optional :port (1-65535), optional path of
 * printable ASCII.  Userinfo, query and fragment are refused.  where names
 * the variable in err.  Returns 0 or SRM_ERR_INVALID. */
SRM_MUST_CHECK int relay_url_parse(const char *where, const char *s, struct relay_url *u,
				   char *err, size_t errlen);

/* A comma-separated list of such URLs (spaces around items ignored) into
 * out[0..*n).  An empty or blank s gives *n = 0; an empty item or more
 * than RELAY_URL_MAX items is an error.  Returns 0 or SRM_ERR_INVALID. */
SRM_MUST_CHECK int relay_url_list_parse(const char *where, const char *s,
					struct relay_url out[RELAY_URL_MAX], size_t *n,
					char *err, size_t errlen);

/* An HTTP proxy: http://[user[:password]@]host[:port][/], or without the
 * scheme, as curl takes it; userinfo is percent-decoded into p->auth.
 * https://, socks and other schemes are refused.  Returns 0 or
 * SRM_ERR_INVALID. */
SRM_MUST_CHECK int proxy_url_parse(const char *where, const char *s, struct proxy_url *p,
				   char *err, size_t errlen);

/* Whether no_proxy (curl's rules) exempts host: "*" exempts every host;
 * otherwise a list separated by commas or spaces of names, which match
 * the host itself and any subdomain (a leading dot changes nothing), and
 * IP addresses, which match exactly (IPv6 with or without brackets); a
 * ":port" on an item is ignored.  Case-insensitive. */
bool relay_no_proxy_match(const char *no_proxy, const char *host);

/* The proxy for u: srmudp_proxy (SRMUDP_PROXY) when not NULL, where an
 * empty value means "no proxy" and overrides the curl variables; else,
 * read through get (getenv in production, which fits the type), https_proxy then HTTPS_PROXY
 * for wss://, http_proxy for ws:// (curl reads no upper-case HTTP_PROXY:
 * under CGI it is the client's Proxy: header).  Empty variables count as
 * unset.  Then, as curl does for every proxy, no_proxy (else NO_PROXY)
 * may exempt u->host.  Returns 1 with *p filled (go through it), 0 (connect
 * directly) or SRM_ERR_INVALID when the chosen value is not a proxy URL
 * (err names the variable it came from). */
SRM_MUST_CHECK int relay_proxy_for(const struct relay_url *u, const char *srmudp_proxy,
				   char *(*get)(const char *name), struct proxy_url *p,
				   char *err, size_t errlen);

/* One relay entry (struct srm_relay_config, srmudp.h) for the URL text
 * url (len bytes, already parsed into u): its proxy (relay_proxy_for) and
 * the address its TCP connection goes to, resolved now.  Returns 0, or
 * SRM_ERR_INVALID with err naming where.  (config.c: SRMUDP_RELAY, and
 * the engine for the WebSocket of a gate it learned.) */
struct srm_relay_config;
SRM_MUST_CHECK int relay_config_make(const char *where, const char *url, size_t len,
				     const struct relay_url *u, const char *srmudp_proxy,
				     struct srm_relay_config *r, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
