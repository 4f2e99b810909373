/*
 * config.c — struct srm_config from SRMUDP_* variables and SRMUDP_CONFIG
 * (the file itself is split into values by config_file.c).
 *
 * Precedence: built-in defaults, then the file named by SRMUDP_CONFIG, then
 * the environment.  A variable that is set but empty counts as unset (so
 * `SRMUDP_LOG= cmd` restores the default).  The environment replaces a file
 * value as a whole; in particular SRMUDP_PEERS from the environment replaces
 * every SRMUDP_PEERS line of the file.  docs/CONFIG.md is the user's view.
 *
 * Representation choices the engine relies on:
 *  - listen: always filled.  The default, "PORT" alone and "[::]:PORT" give
 *    in6addr_any (AF_INET6, listen_len = sizeof(struct sockaddr_in6)); the
 *    engine binds that with IPV6_V6ONLY=0, so it is dual stack, and falls
 *    back to 0.0.0.0 where IPv6 is unavailable.  "0.0.0.0:PORT" or any other
 *    IPv4 address gives an AF_INET socket, IPv4 only.  Port 0 = ephemeral.
 *  - peer endpoints and the rendezvous address keep their own family: an
 *    AF_INET sockaddr_in for IPv4.  A dual-stack engine maps it to
 *    ::ffff:a.b.c.d before sendto().
 *  - peer names are stored lowercase (DNS names are case-insensitive), so
 *    lookups must fold case too.
 *  - relative paths (SRMUDP_KEY, SRMUDP_LOG_FILE) are made absolute at parse
 *    time: from the environment against the current directory, from the
 *    file against the file's directory.  A daemon that chdir("/") before
 *    the engine starts still finds its key.
 *
 * Host names are resolved here, once: getaddrinfo with AI_NUMERICHOST
 * first, which never reaches a resolver (or a preload's name hooks), then a
 * normal lookup for real names.
 *
 * Errors are one line, "WHERE: message", where WHERE is the variable name or
 * "FILE:LINE: VARIABLE", and the message quotes the offending token.  Unknown
 * SRMUDP_* environment variables only warn (other tools may own some);
 * unknown keys in the file are errors (the file is ours alone).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_priv.h"
#include "log.h"
#include "srmudp.h"
#include "url.h"

extern char **environ;

#define DEFAULT_CONNECT_TIMEOUT_MS 10000u /* a few handshake retries */
#define DEFAULT_IDLE_TIMEOUT_MS 30000u    /* conntrack forgets UDP after 30 s */
/* A request's answer usually comes back within 100 us on a LAN or
 * between local processes (docs/BENCHMARKS.md, redis); longer polling
 * burns CPU for answers that take a network round trip anyway. */
#define DEFAULT_BUSY_POLL_US 100u
#define MAX_BUSY_POLL_US 10000u
/* Timeouts above a day are typos, and they keep ms arithmetic in 32 bits. */
#define MAX_TIMEOUT_MS 86400000ull

/* SRMUDP_* variables that are not configuration keys but are read by other
 * parts of srmudp; they never draw an "unknown variable" warning. */
static const char *const other_vars[] = {
	"SRMUDP_CONFIG",
	"SRMUDP_PRELOAD", /* srmudp run: which libsrmudp.so */
	"SRMUDP_INHERIT", /* the preload: peer sockets passed across exec */
	"SRMUDP_RUN_PID", /* srmudp run: the process it started (warm-up) */
};

const char *const config_key_names[K_COUNT] = {
	"SRMUDP_KEY",	   "SRMUDP_PEERS",    "SRMUDP_LISTEN",		"SRMUDP_RENDEZVOUS",
	"SRMUDP_LOG",	   "SRMUDP_LOG_FILE", "SRMUDP_COMPRESS",	"SRMUDP_CC",
	"SRMUDP_CONNECT_TIMEOUT", "SRMUDP_IDLE_TIMEOUT", "SRMUDP_RATE", "SRMUDP_RATE_PACKETS",
	"SRMUDP_PAD", "SRMUDP_GSO", "SRMUDP_BUSY_POLL", "SRMUDP_WARMUP",
	"SRMUDP_PROXY", "SRMUDP_RELAY_CA", "SRMUDP_RELAY", "SRMUDP_EXPOSE", "SRMUDP_ALLOW",
	"SRMUDP_GATE", "SRMUDP_GATES", "SRMUDP_VIA", "SRMUDP_GATE_CACHE",
};

void config_err(char *err, size_t errlen, const char *where, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL || errlen == 0)
		return;
	n = snprintf(err, errlen, "%s: ", where);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

int config_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

char *config_trim(char *s)
{
	size_t n;

	while (config_is_space(*s))
		s++;
	n = strlen(s);
	while (n > 0 && config_is_space(s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* ---- Scalars --------------------------------------------------------- */

int config_parse_port(const char *s, size_t len, int allow_zero, uint16_t *out)
{
	unsigned long v = 0;

	if (len == 0 || len > 5)
		return SRM_ERR_INVALID;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return SRM_ERR_INVALID;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535 || (v == 0 && !allow_zero))
		return SRM_ERR_INVALID;
	*out = (uint16_t)v;
	return 0;
}

/* "500", "500ms", "10s", "2m", "1h": an integer with an optional unit. */
static int parse_timeout(const struct source *src, uint32_t *out, char *err, size_t errlen)
{
	const char *s = src->value, *p = s;
	unsigned long long v = 0, mul;
	char qb[QUOTE_BUF];

	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (unsigned long long)(*p - '0');
		if (v > MAX_TIMEOUT_MS)
			break;
		p++;
	}
	if (p == s)
		goto bad;
	if (*p >= '0' && *p <= '9')
		goto range;
	if (*p == '\0' || strcmp(p, "ms") == 0)
		mul = 1;
	else if (strcmp(p, "s") == 0)
		mul = 1000;
	else if (strcmp(p, "m") == 0 || strcmp(p, "min") == 0)
		mul = 60000;
	else if (strcmp(p, "h") == 0)
		mul = 3600000;
	else
		goto bad;
	if (v == 0 || v * mul > MAX_TIMEOUT_MS)
		goto range;
	*out = (uint32_t)(v * mul);
	return 0;
bad:
	config_err(err, errlen, src->where,
		"bad duration %s (expected milliseconds or a number with ms, s, m or h, e.g. 10s)",
		quote_str(qb, s));
	return SRM_ERR_INVALID;
range:
	config_err(err, errlen, src->where, "duration %s out of range (1ms to 24h)", quote_str(qb, s));
	return SRM_ERR_INVALID;
}

/* "off" or "0" (never), "100", "100us": microseconds of polling. */
static int parse_busy_poll(const struct source *src, uint32_t *out, char *err, size_t errlen)
{
	const char *s = src->value, *p = s;
	unsigned long v = 0;
	char qb[QUOTE_BUF];

	if (strcasecmp(s, "off") == 0) {
		*out = 0;
		return 0;
	}
	while (*p >= '0' && *p <= '9' && v <= MAX_BUSY_POLL_US)
		v = v * 10 + (unsigned long)(*p++ - '0');
	if (p == s || (*p != '\0' && strcmp(p, "us") != 0) || v > MAX_BUSY_POLL_US) {
		config_err(err, errlen, src->where,
			   "bad busy-poll time %s (expected off or microseconds up to %u, e.g. 100us)",
			   quote_str(qb, s), MAX_BUSY_POLL_US);
		return SRM_ERR_INVALID;
	}
	*out = (uint32_t)v;
	return 0;
}

/* "0" (no limit), "500000", "64k", "10M", "1G" (k, M, G multiply by
 * 1024): a rate per second. */
static int parse_rate(const struct source *src, uint64_t *out, char *err, size_t errlen)
{
	const char *s = src->value, *p = s;
	uint64_t v = 0, mul = 1;
	char qb[QUOTE_BUF];

	while (*p >= '0' && *p <= '9' && v < (UINT64_C(1) << 40))
		v = v * 10 + (uint64_t)(*p++ - '0');
	if (p == s || (*p >= '0' && *p <= '9'))
		goto bad;
	if (*p == 'k' || *p == 'K')
		mul = 1024, p++;
	else if (*p == 'm' || *p == 'M')
		mul = 1024 * 1024, p++;
	else if (*p == 'g' || *p == 'G')
		mul = 1024 * 1024 * 1024, p++;
	if (*p != '\0')
		goto bad;
	*out = v * mul;
	return 0;
bad:
	config_err(err, errlen, src->where,
		   "bad rate %s (expected a number per second, optionally with k, M or G, e.g. 10M)",
		   quote_str(qb, s));
	return SRM_ERR_INVALID;
}

/* Case-insensitive choice among names; index or -1. */
static int pick(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

static int parse_choice(const struct source *src, const char *const *names, size_t n,
			const char *expected, int *out, char *err, size_t errlen)
{
	char qb[QUOTE_BUF];
	int i = pick(src->value, names, n);

	if (i < 0) {
		config_err(err, errlen, src->where, "bad value %s (expected %s)", quote_str(qb, src->value),
			expected);
		return SRM_ERR_INVALID;
	}
	*out = i;
	return 0;
}

/* Absolute path into out[4096]: relative ones against base_dir or cwd. */
static int parse_path(const struct source *src, char out[4096], char *err, size_t errlen)
{
	char cwd[PATH_MAX], qb[QUOTE_BUF];
	const char *base = src->base_dir;
	int n;

	if (src->value[0] == '/') {
		n = snprintf(out, 4096, "%s", src->value);
	} else {
		if (base == NULL) {
			if (getcwd(cwd, sizeof(cwd)) == NULL) {
				config_err(err, errlen, src->where,
					"relative path %s but the current directory is unknown: %s",
					quote_str(qb, src->value), strerror(errno));
				return SRM_ERR_INVALID;
			}
			base = cwd;
		}
		n = snprintf(out, 4096, "%s/%s", strcmp(base, "/") == 0 ? "" : base, src->value);
	}
	if (n < 0 || n >= 4096) {
		config_err(err, errlen, src->where, "path too long: %s", quote_str(qb, src->value));
		return SRM_ERR_INVALID;
	}
	return 0;
}

/* ---- Addresses ------------------------------------------------------- */

/* Resolve host (numeric first, then a real lookup unless numeric_only) and
 * port into out.  Returns 0 or an EAI_* code. */
int config_resolve(const char *host, uint16_t port, int numeric_only, int passive,
		   struct sockaddr_storage *out, socklen_t *out_len)
{
	struct addrinfo hints, *res = NULL;
	char service[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	snprintf(service, sizeof(service), "%u", (unsigned)port);
	rc = getaddrinfo(host, service, &hints, &res);
	if (rc == EAI_NONAME && !numeric_only) {
		hints.ai_flags &= ~AI_NUMERICHOST;
		rc = getaddrinfo(host, service, &hints, &res);
	}
	if (rc != 0)
		return rc;
	if (res == NULL || res->ai_addrlen > sizeof(*out)) {
		freeaddrinfo(res);
		return EAI_FAIL;
	}
	memset(out, 0, sizeof(*out));
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*out_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Split "HOST:PORT", "[V6]:PORT" (and, if port_only_ok, "PORT") into host
 * and port.  host_buf gets the host, without brackets ("" for PORT alone).
 * *bracketed says whether the host was an [IPv6] literal.  Returns 0 or a
 * short reason for the caller's message. */
const char *config_split_host_port(const char *s, size_t len, int port_only_ok,
				   int allow_zero, char *host_buf, size_t host_size,
				   uint16_t *port, int *bracketed)
{
	size_t h = 0, hlen, pstart; /* host at s[h..h+hlen), port from pstart */

	*bracketed = 0;
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (close == NULL)
			return "missing ']'";
		hlen = (size_t)(close - s) - 1;
		h = 1;
		if (h + hlen + 1 >= len || s[h + hlen + 1] != ':')
			return "expected [ADDR]:PORT";
		pstart = h + hlen + 2;
		*bracketed = 1;
	} else {
		const char *first = memchr(s, ':', len), *last = NULL;

		for (size_t i = len; i > 0 && last == NULL; i--)
			if (s[i - 1] == ':')
				last = s + i - 1;
		if (last == NULL) {
			if (!port_only_ok)
				return "expected HOST:PORT";
			hlen = 0;
			pstart = 0;
		} else {
			if (first != last)
				return "IPv6 addresses need brackets: [ADDR]:PORT";
			hlen = (size_t)(last - s);
			if (hlen == 0)
				return "empty host";
			pstart = hlen + 1;
		}
	}
	if (*bracketed && hlen == 0)
		return "empty host";
	if (hlen >= host_size)
		return "host name too long";
	memcpy(host_buf, s + h, hlen);
	host_buf[hlen] = '\0';
	if (config_parse_port(s + pstart, len - pstart, allow_zero, port) != 0)
		return allow_zero ? "bad port (expected 0 to 65535)" : "bad port (expected 1 to 65535)";
	return NULL;
}

/* "HOST:PORT" for the rendezvous server or a peer endpoint.  what names the
 * thing in messages ("for peer \"db\"" or ""). */
static int parse_endpoint(const struct source *src, const char *s, size_t len, const char *what,
			  struct sockaddr_storage *out, socklen_t *out_len, char *err,
			  size_t errlen)
{
	char host[256], qb[QUOTE_BUF];
	uint16_t port;
	int bracketed, rc;
	const char *why = config_split_host_port(s, len, 0, 0, host, sizeof(host), &port, &bracketed);

	if (why != NULL) {
		config_err(err, errlen, src->where, "bad endpoint %s%s: %s", quote_bytes(qb, s, len), what, why);
		return SRM_ERR_INVALID;
	}
	rc = config_resolve(host, port, bracketed, 0, out, out_len);
	if (rc != 0) {
		config_err(err, errlen, src->where, "cannot resolve %s%s: %s", quote_str(qb, host), what,
			gai_strerror(rc));
		return SRM_ERR_INVALID;
	}
	if (bracketed && out->ss_family != AF_INET6) {
		config_err(err, errlen, src->where, "bad endpoint %s%s: brackets are for IPv6 only",
			quote_bytes(qb, s, len), what);
		return SRM_ERR_INVALID;
	}
	return 0;
}

/* One SRMUDP_RENDEZVOUS entry: "HOST:PORT", or "KEY@HOST:PORT" to pin the
 * server's public key (srmudp rendezvous --key).  Host names hold no '@'. */
static int parse_rendezvous_one(const struct source *src, const char *v, size_t len,
				struct srm_rendezvous_config *r, char *err, size_t errlen)
{
	const char *at = memchr(v, '@', len);
	char keytext[SRM_PUBKEY_TEXT_BYTES + 8], qb[QUOTE_BUF];

	memset(r, 0, sizeof(*r));
	if (at == NULL)
		return parse_endpoint(src, v, len, "", &r->addr, &r->addr_len, err, errlen);
	size_t klen = (size_t)(at - v);
	if (klen == 0 || klen >= sizeof(keytext)) {
		config_err(err, errlen, src->where, "bad server key %s: expected KEY@HOST:PORT",
			   quote_bytes(qb, v, klen));
		return SRM_ERR_INVALID;
	}
	memcpy(keytext, v, klen);
	keytext[klen] = '\0';
	if (srm_pubkey_decode(keytext, r->key) != 0) {
		config_err(err, errlen, src->where, "bad server key %s: expected KEY@HOST:PORT",
			   quote_bytes(qb, v, klen));
		return SRM_ERR_INVALID;
	}
	r->pinned = 1;
	return parse_endpoint(src, at + 1, len - klen - 1, "", &r->addr, &r->addr_len, err, errlen);
}

/* SRMUDP_RENDEZVOUS: one server or a comma-separated list, used in order
 * with failover. */
static int parse_rendezvous(const struct source *src, struct srm_config *cfg, char *err,
			    size_t errlen)
{
	const char *s = src->value;
	size_t n = 0;
	char qb[QUOTE_BUF];

	for (;;) {
		while (*s == ',' || config_is_space(*s))
			s++;
		if (*s == '\0')
			break;
		size_t len = strcspn(s, ", \t\n\r\v\f");
		if (n == SRM_RENDEZVOUS_MAX) {
			config_err(err, errlen, src->where, "too many servers at %s (at most %d)",
				   quote_bytes(qb, s, len), SRM_RENDEZVOUS_MAX);
			return SRM_ERR_INVALID;
		}
		if (parse_rendezvous_one(src, s, len, &cfg->rendezvous[n], err, errlen) != 0)
			return SRM_ERR_INVALID;
		n++;
		s += len;
	}
	if (n == 0) {
		config_err(err, errlen, src->where, "no server in %s: expected [KEY@]HOST:PORT[,...]",
			   quote_str(qb, src->value));
		return SRM_ERR_INVALID;
	}
	cfg->rendezvous_count = n;
	return 0;
}

int relay_config_make(const char *where, const char *url, size_t len, const struct relay_url *u,
		      const char *srmudp_proxy, struct srm_relay_config *r, char *err,
		      size_t errlen)
{
	struct proxy_url proxy;
	char qb[QUOTE_BUF];
	memset(r, 0, sizeof(*r));
	snprintf(r->url, sizeof(r->url), "%.*s", (int)len, url);
	int rc = relay_proxy_for(u, srmudp_proxy, getenv, &proxy, err, errlen);
	if (rc < 0)
		return SRM_ERR_INVALID;
	const char *host = rc ? proxy.host : u->host;
	uint16_t port = rc ? proxy.port : u->port;
	if (rc) {
		/* For logs and status: the proxy without its credentials. */
		bool v6 = strchr(proxy.host, ':') != NULL;
		snprintf(r->proxy, sizeof(r->proxy), "http://%s%s%s:%u", v6 ? "[" : "", proxy.host,
			 v6 ? "]" : "", (unsigned)proxy.port);
	}
	int gai = config_resolve(host, port, 0, 0, &r->connect_to, &r->connect_len);
	if (gai != 0) {
		config_err(err, errlen, where, "cannot resolve %s%s: %s", quote_str(qb, host),
			   rc ? " (the proxy)" : "", gai_strerror(gai));
		return SRM_ERR_INVALID;
	}
	return 0;
}

/* SRMUDP_RELAY: each URL, the proxy that leads to it (SRMUDP_PROXY, read
 * before this, or the curl variables) and the address to connect to. */
static int parse_relays(const struct source *src, struct srm_config *cfg, char *err,
			size_t errlen)
{
	struct relay_url urls[RELAY_URL_MAX];
	size_t n = 0;
	int rc = relay_url_list_parse(src->where, src->value, urls, &n, err, errlen);

	if (rc != 0)
		return SRM_ERR_INVALID;
	/* The list again, item by item, to keep each URL as given. */
	const char *s = src->value;
	for (size_t i = 0; i < n; i++) {
		while (*s == ',' || config_is_space(*s))
			s++;
		size_t len = strcspn(s, ", \t\n\r\v\f");
		if (relay_config_make(src->where, s, len, &urls[i], cfg->proxy_set ? cfg->proxy : NULL,
				      &cfg->relays[i], err, errlen) != 0)
			return SRM_ERR_INVALID;
		s += len;
	}
	cfg->relay_count = n;
	return 0;
}

/* "[ADDR:]PORT"; ADDR is numeric. */
static int parse_listen(const struct source *src, struct srm_config *cfg, char *err,
			size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 32], qb[QUOTE_BUF], qh[QUOTE_BUF];
	const char *s = src->value;
	uint16_t port;
	int bracketed, rc;
	const char *why = config_split_host_port(s, strlen(s), 1, 1, host, sizeof(host), &port,
					  &bracketed);

	if (why != NULL) {
		config_err(err, errlen, src->where, "bad listen address %s: %s", quote_str(qb, s), why);
		return SRM_ERR_INVALID;
	}
	if (host[0] == '\0' || strcmp(host, "*") == 0)
		strcpy(host, "::");
	rc = config_resolve(host, port, 1, 1, &cfg->listen, &cfg->listen_len);
	if (rc != 0) {
		config_err(err, errlen, src->where,
			"bad listen address %s: %s is not a numeric IPv4 or [IPv6] address",
			quote_str(qb, s), quote_str(qh, host));
		return SRM_ERR_INVALID;
	}
	return 0;
}

/* ---- Peers ----------------------------------------------------------- */

/* A single DNS label: letters, digits and '-', not at either end, not all
 * digits (a numeric name would read as an address).  Folded to lowercase. */
static const char *check_name(const char *s, size_t len, char out[SRM_PEER_NAME_MAX + 1])
{
	int alpha = 0;

	if (len == 0)
		return "empty name";
	if (len > SRM_PEER_NAME_MAX)
		return "longer than 63 characters";
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (isalpha((unsigned char)c) && (unsigned char)c < 0x80)
			alpha = 1;
		else if (c == '-')
			alpha = 1;
		else if (!(c >= '0' && c <= '9'))
			return "use only letters, digits and '-'";
		out[i] = (char)tolower((unsigned char)c);
	}
	out[len] = '\0';
	if (s[0] == '-' || s[len - 1] == '-')
		return "a name cannot start or end with '-'";
	if (!alpha)
		return "a name cannot be all digits";
	if (strcmp(out, "localhost") == 0)
		return "\"localhost\" is reserved";
	return NULL;
}

static int add_peer(const struct source *src, struct srm_config *cfg, size_t *cap,
		    const char *tok, size_t len, char *err, size_t errlen)
{
	char qb[QUOTE_BUF], qn[QUOTE_BUF], qk[QUOTE_BUF];
	char what[QUOTE_MAX * 4 + 24];
	char keytext[SRM_PUBKEY_TEXT_LEN + 8];
	const char *eq = memchr(tok, '=', len), *at, *why;
	struct srm_peer_config p;

	memset(&p, 0, sizeof(p));
	if (eq == NULL || eq == tok) {
		config_err(err, errlen, src->where, "expected NAME=PUBKEY[@HOST:PORT], got %s",
			quote_bytes(qb, tok, len));
		return SRM_ERR_INVALID;
	}
	why = check_name(tok, (size_t)(eq - tok), p.name);
	if (why != NULL) {
		config_err(err, errlen, src->where, "bad peer name %s: %s",
			   quote_bytes(qb, tok, (size_t)(eq - tok)), why);
		return SRM_ERR_INVALID;
	}
	quote_str(qn, p.name);
	const char *key = eq + 1, *end = tok + len;

	at = memchr(key, '@', (size_t)(end - key));
	size_t klen = (size_t)((at ? at : end) - key);

	if (klen == 0 || klen >= sizeof(keytext)) {
		config_err(err, errlen, src->where, "bad public key %s for peer %s",
			   quote_bytes(qb, key, klen), qn);
		return SRM_ERR_INVALID;
	}
	memcpy(keytext, key, klen);
	keytext[klen] = '\0';
	if (srm_pubkey_decode(keytext, p.pubkey) != 0) {
		config_err(err, errlen, src->where, "bad public key %s for peer %s",
			   quote_bytes(qb, key, klen), qn);
		return SRM_ERR_INVALID;
	}
	if (at != NULL) {
		snprintf(what, sizeof(what), " for peer %s", qn);
		int rc = parse_endpoint(src, at + 1, (size_t)(end - at - 1), what, &p.endpoint,
					&p.endpoint_len, err, errlen);
		if (rc != 0)
			return rc;
	}
	for (size_t i = 0; i < cfg->peer_count; i++) {
		const struct srm_peer_config *o = &cfg->peers[i];

		if (strcmp(o->name, p.name) == 0) {
			config_err(err, errlen, src->where, "duplicate peer name %s", qn);
			return SRM_ERR_INVALID;
		}
		if (memcmp(o->pubkey, p.pubkey, SRM_KEY_BYTES) == 0) {
			config_err(err, errlen, src->where,
				"peers %s and %s have the same public key %s", quote_str(qb, o->name), qn,
				quote_bytes(qk, key, klen));
			return SRM_ERR_INVALID;
		}
	}
	if (cfg->peer_count >= SRM_MAX_PEERS) {
		config_err(err, errlen, src->where, "more than %d peers (at %s)", SRM_MAX_PEERS, qn);
		return SRM_ERR_INVALID;
	}
	if (cfg->peer_count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		struct srm_peer_config *np;

		if (ncap > SRM_MAX_PEERS)
			ncap = SRM_MAX_PEERS;
		np = realloc(cfg->peers, ncap * sizeof(*np));
		if (np == NULL) {
			config_err(err, errlen, src->where, "out of memory");
			return SRM_ERR_NOMEM;
		}
		cfg->peers = np;
		*cap = ncap;
	}
	cfg->peers[cfg->peer_count++] = p;
	return 0;
}

/* The next item of a list separated by whitespace or commas: its start,
 * with its length in *len (0 at the end of the list). */
static const char *next_item(const char *s, size_t *len)
{
	while (*s == ',' || config_is_space(*s))
		s++;
	for (*len = 0; s[*len] != '\0' && s[*len] != ',' && !config_is_space(s[*len]); (*len)++)
		;
	return s;
}

/* Entries separated by whitespace or commas. */
static int parse_peers(const struct source *src, struct srm_config *cfg, size_t *cap,
		       char *err, size_t errlen)
{
	const char *s = src->value;

	for (;;) {
		size_t len;
		int rc;

		s = next_item(s, &len);
		if (len == 0)
			return 0;
		rc = add_peer(src, cfg, cap, s, len, err, errlen);
		if (rc != 0)
			return rc;
		s += len;
	}
}

/* SRMUDP_GATES: names of configured peers with an endpoint, separated
 * by commas or whitespace, each once. */
static int parse_gates(const struct source *src, struct srm_config *cfg, char *err,
		       size_t errlen)
{
	char qb[QUOTE_BUF];
	const char *s = src->value;

	cfg->gate_count = 0;
	for (;;) {
		size_t len;

		s = next_item(s, &len);
		if (len == 0)
			return 0;
		int i = config_peer_index(src, cfg, s, len, err, errlen);
		if (i < 0)
			return SRM_ERR_INVALID;
		const struct srm_peer_config *p = &cfg->peers[i];
		if (p->endpoint_len == 0) {
			config_err(err, errlen, src->where,
				   "gate %s has no endpoint (list it as %s=KEY@HOST:PORT in SRMUDP_PEERS)",
				   quote_bytes(qb, s, len), p->name);
			return SRM_ERR_INVALID;
		}
		for (size_t k = 0; k < cfg->gate_count; k++)
			if (strcmp(cfg->gates[k], p->name) == 0) {
				config_err(err, errlen, src->where, "gate %s listed twice",
					   quote_bytes(qb, s, len));
				return SRM_ERR_INVALID;
			}
		if (cfg->gate_count == SRM_GATES_MAX) {
			config_err(err, errlen, src->where, "more than %d gates (at %s)", SRM_GATES_MAX,
				   quote_bytes(qb, s, len));
			return SRM_ERR_INVALID;
		}
		strcpy(cfg->gates[cfg->gate_count++], p->name);
		s += len;
	}
}

/* ---- Putting it together --------------------------------------------- */

static const char *const log_names[] = { "error", "warn", "info", "debug" };
static const char *const compress_names[] = { "auto", "on", "off" };
static const char *const cc_names[] = { "bbr", "cubic", "newreno" };
static const char *const pad_names[] = { "off", "bucket", "mtu" };
static const char *const gso_names[] = { "auto", "off" };
/* In the order of enum srm_warmup. */
static const char *const warmup_names[] = { "auto", "on", "off" };
static const char *const off_on_names[] = { "off", "on" };

static int parse_one(int id, const struct source *src, struct srm_config *cfg, char *err,
		     size_t errlen)
{
	int v, rc;

	switch (id) {
	case K_KEY:
		return parse_path(src, cfg->key_path, err, errlen);
	case K_LOG_FILE:
		return parse_path(src, cfg->log_file, err, errlen);
	case K_LISTEN:
		return parse_listen(src, cfg, err, errlen);
	case K_RENDEZVOUS:
		return parse_rendezvous(src, cfg, err, errlen);
	case K_LOG:
		rc = parse_choice(src, log_names, 4, "error, warn, info or debug", &v, err, errlen);
		if (rc == 0)
			cfg->log_level = (enum srm_log_level)v;
		return rc;
	case K_COMPRESS:
		rc = parse_choice(src, compress_names, 3, "auto, on or off", &v, err, errlen);
		if (rc == 0)
			cfg->compress = (enum srm_compress)v;
		return rc;
	case K_CC:
		rc = parse_choice(src, cc_names, 3, "bbr, cubic or newreno", &v, err, errlen);
		if (rc == 0)
			cfg->cc = (enum srm_cc)v;
		return rc;
	case K_CONNECT_TIMEOUT:
		return parse_timeout(src, &cfg->connect_timeout_ms, err, errlen);
	case K_IDLE_TIMEOUT:
		return parse_timeout(src, &cfg->idle_timeout_ms, err, errlen);
	case K_RATE:
		return parse_rate(src, &cfg->rate_bytes, err, errlen);
	case K_RATE_PACKETS:
		return parse_rate(src, &cfg->rate_packets, err, errlen);
	case K_GSO:
		rc = parse_choice(src, gso_names, 2, "auto or off", &v, err, errlen);
		if (rc == 0)
			cfg->gso_off = v == 1;
		return rc;
	case K_PAD:
		rc = parse_choice(src, pad_names, 3, "off, bucket or mtu", &v, err, errlen);
		if (rc == 0)
			cfg->pad = (enum srm_pad)v;
		return rc;
	case K_BUSY_POLL:
		return parse_busy_poll(src, &cfg->busy_poll_us, err, errlen);
	case K_WARMUP:
		rc = parse_choice(src, warmup_names, 3, "auto, on or off", &v, err, errlen);
		if (rc == 0)
			cfg->warmup = (enum srm_warmup)v;
		return rc;
	case K_PROXY: {
		/* Checked here, chosen per relay in parse_relays.  "none":
		 * connect directly, whatever https_proxy or http_proxy say. */
		struct proxy_url p;
		const char *v = strcmp(src->value, "none") == 0 ? "" : src->value;
		if (v[0] != '\0' && proxy_url_parse(src->where, v, &p, err, errlen) != 0)
			return SRM_ERR_INVALID;
		if (strlen(v) >= sizeof(cfg->proxy)) {
			config_err(err, errlen, src->where, "too long");
			return SRM_ERR_INVALID;
		}
		strcpy(cfg->proxy, v);
		cfg->proxy_set = 1;
		return 0;
	}
	case K_RELAY_CA:
		return parse_path(src, cfg->relay_ca, err, errlen);
	case K_RELAY:
		return parse_relays(src, cfg, err, errlen);
	case K_EXPOSE:
		return access_parse_expose(src, cfg, err, errlen);
	case K_ALLOW:
		return access_parse_allow(src, cfg, err, errlen);
	case K_GATE:
		return parse_choice(src, off_on_names, 2, "on or off", &cfg->gate, err, errlen);
	case K_GATES:
		return parse_gates(src, cfg, err, errlen);
	case K_VIA:
		rc = parse_choice(src, off_on_names, 2, "on or off", &v, err, errlen);
		if (rc == 0)
			cfg->via_off = v == 0;
		return rc;
	case K_GATE_CACHE:
		cfg->gate_cache_off = strcmp(src->value, "off") == 0;
		return cfg->gate_cache_off ? 0 : parse_path(src, cfg->gate_cache, err, errlen);
	}
	return SRM_ERR_INVALID;
}

static const char *env_value(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Edit distance of a[0..an) and b, capped: enough to suggest a fix for a
 * typo ("SRMUDP_PEER" -> "SRMUDP_PEERS").  Names are at most 64 bytes. */
static size_t distance(const char *a, size_t an, const char *b)
{
	size_t bn = strlen(b), row[65];

	if (an > 64 || bn > 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= bn; j++)
		row[j] = j;
	for (size_t i = 1; i <= an; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= bn; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[bn];
}

const char *config_suggest(const char *name, size_t n)
{
	const char *near = NULL;
	size_t best = 3; /* two edits at most, or it is no typo */

	for (int i = 0; i < K_COUNT; i++) {
		size_t d = distance(name, n, config_key_names[i]);

		/* ...and at most one edit per three letters of the key's own
		 * part, so FOO is not "nearly" LOG. */
		if (d < best && d * 3 <= strlen(config_key_names[i]) - 7) {
			best = d;
			near = config_key_names[i];
		}
	}
	return near;
}

const char *srm_peer_suggest(const struct srm_config *cfg, const char *name)
{
	char low[SRM_PEER_NAME_MAX + 1];
	size_t n = strlen(name), best = 3;
	const char *near = NULL;

	if (n == 0 || n > SRM_PEER_NAME_MAX)
		return NULL;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	for (size_t i = 0; i < cfg->peer_count; i++) {
		size_t d = distance(low, n, cfg->peers[i].name);

		/* one edit per three letters at most: "db" is no typo of "ab" */
		if (d > 0 && d < best && d * 3 <= strlen(cfg->peers[i].name)) {
			best = d;
			near = cfg->peers[i].name;
		}
	}
	return near;
}

/* Unknown SRMUDP_* variables are probably typos: say so, but carry on. */
static void warn_unknown_env(const struct srm_config *cfg)
{
	if (cfg->log_level < SRM_LOG_WARN || environ == NULL)
		return;
	for (char **e = environ; *e != NULL; e++) {
		const char *eq = strchr(*e, '='), *near;
		size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
		int known = 0;

		if (strncmp(*e, "SRMUDP_", 7) != 0)
			continue;
		for (int i = 0; i < K_COUNT && !known; i++)
			known = strlen(config_key_names[i]) == n &&
				strncmp(*e, config_key_names[i], n) == 0;
		for (size_t i = 0; i < sizeof(other_vars) / sizeof(other_vars[0]) && !known; i++)
			known = strlen(other_vars[i]) == n && strncmp(*e, other_vars[i], n) == 0;
		if (known)
			continue;
		near = config_suggest(*e, n);
		if (near != NULL)
			log_write(SRM_LOG_WARN, NULL, "%.*s: unknown variable, ignored (did you mean %s?)",
				  (int)(n > 64 ? 64 : n), *e, near);
		else
			log_write(SRM_LOG_WARN, NULL, "%.*s: unknown variable, ignored",
				  (int)(n > 64 ? 64 : n), *e);
	}
}

void srm_config_defaults(struct srm_config *cfg)
{
	struct sockaddr_in6 *any = (struct sockaddr_in6 *)&cfg->listen;

	memset(cfg, 0, sizeof(*cfg));
	any->sin6_family = AF_INET6;
	any->sin6_addr = in6addr_any;
	any->sin6_port = 0;
	cfg->listen_len = sizeof(struct sockaddr_in6);
	cfg->log_level = SRM_LOG_WARN;
	cfg->compress = SRM_COMPRESS_AUTO;
	cfg->cc = SRM_CC_BBR;
	cfg->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
	cfg->idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
	cfg->busy_poll_us = DEFAULT_BUSY_POLL_US;
}

void srm_config_free(struct srm_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->peers);
	cfg->peers = NULL;
	cfg->peer_count = 0;
	free(cfg->expose);
	cfg->expose = NULL;
	cfg->expose_count = 0;
	free(cfg->allow);
	cfg->allow = NULL;
	cfg->allow_count = 0;
	cfg->allow_set = 0;
}

int srm_config_from_env(struct srm_config *cfg, char *err, size_t errlen)
{
	struct file_values fv;
	struct source src;
	size_t cap = 0;
	const char *path;
	int rc = 0;

	memset(&fv, 0, sizeof(fv));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	srm_config_defaults(cfg);
	path = env_value("SRMUDP_CONFIG");
	if (path != NULL) {
		rc = config_file_read(path, &fv, err, errlen);
		if (rc == SRM_ERR_NOMEM)
			config_err(err, errlen, "SRMUDP_CONFIG", "out of memory");
		if (rc != 0)
			goto out;
	}
	for (int id = 0; id < K_COUNT; id++) {
		const char *v = env_value(config_key_names[id]);

		if (v != NULL) {
			src.value = v;
			src.base_dir = NULL;
			snprintf(src.where, sizeof(src.where), "%s", config_key_names[id]);
			rc = id == K_PEERS ? parse_peers(&src, cfg, &cap, err, errlen)
					   : parse_one(id, &src, cfg, err, errlen);
		} else if (id == K_PEERS) {
			for (size_t i = 0; i < fv.peer_lines && rc == 0; i++)
				rc = parse_peers(&fv.peers[i], cfg, &cap, err, errlen);
		} else if (fv.have[id] && fv.one[id].value[0] != '\0') {
			rc = parse_one(id, &fv.one[id], cfg, err, errlen);
		}
		if (rc != 0)
			goto out;
	}
	warn_unknown_env(cfg);
out:
	config_file_free(&fv);
	if (rc != 0) {
		srm_config_free(cfg);
		srm_config_defaults(cfg);
		return rc == SRM_ERR_NOMEM ? SRM_ERR_NOMEM : SRM_ERR_INVALID;
	}
	return 0;
}
