/*
 * gate_cache.c — reading and writing SRMUDP_GATE_CACHE (gate_cache.h).
 * The file is ours, but anyone with the account may edit it: it is parsed
 * as strictly as configuration, and the engine uses an entry only for a
 * key it lists as a peer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_priv.h"
#include "gate_cache.h"
#include "quote.h"

/* The next space-separated token of [*s, end): its start, length in *n. */
static const char *token(const char **s, const char *end, size_t *n)
{
	while (*s < end && (**s == ' ' || **s == '\t'))
		(*s)++;
	const char *t = *s;
	while (*s < end && **s != ' ' && **s != '\t')
		(*s)++;
	*n = (size_t)(*s - t);
	return t;
}

static int number(const char *t, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		uint64_t d = (uint64_t)(t[i] - '0');
		if (t[i] < '0' || t[i] > '9' || d > max || v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* "1.2.3.4:5" or "[v6]:5", numeric, port not 0. */
static int endpoint(const char *t, size_t n, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN];
	uint16_t port;
	int bracketed;
	if (config_split_host_port(t, n, 0, 0, host, sizeof(host), &port, &bracketed) != NULL)
		return -1;
	return config_resolve(host, port, 1, 0, ss, len) == 0 ? 0 : -1;
}

int gate_cache_parse_line(const char *line, size_t len, struct gate_cache_entry *out,
			  char *err, size_t errlen)
{
	static const char *const what[] = { "public key", "UDP endpoint", "WebSocket port",
					    "TLS flag (0 or 1)", "time" };
	const char *s = line, *end = line + len, *t[5];
	size_t n[5];
	char keytext[SRM_PUBKEY_TEXT_BYTES], qb[QUOTE_BUF];
	uint64_t v;

	memset(out, 0, sizeof(*out));
	const char *first = token(&s, end, &n[0]);
	if (n[0] == 0 || first[0] == '#')
		return 0;
	t[0] = first;
	for (int i = 1; i < 5; i++)
		t[i] = token(&s, end, &n[i]);
	size_t extra;
	const char *more = token(&s, end, &extra);
	int bad = -1;
	if (n[0] != SRM_PUBKEY_TEXT_LEN)
		bad = 0;
	else {
		memcpy(keytext, t[0], n[0]);
		keytext[n[0]] = '\0';
		if (srm_pubkey_decode(keytext, out->key) != 0)
			bad = 0;
	}
	if (bad < 0 && endpoint(t[1], n[1], &out->udp, &out->udp_len) != 0)
		bad = 1;
	if (bad < 0 && config_parse_port(t[2], n[2], 1, &out->ws_port) != 0)
		bad = 2;
	if (bad < 0 && number(t[3], n[3], 1, &v) == 0)
		out->wss = (uint8_t)v;
	else if (bad < 0)
		bad = 3;
	if (bad < 0 && number(t[4], n[4], UINT64_MAX, &out->seen) != 0)
		bad = 4;
	if (bad >= 0) {
		snprintf(err, errlen, "bad %s %s", what[bad], quote_bytes(qb, t[bad], n[bad]));
		return SRM_ERR_INVALID;
	}
	if (extra) {
		snprintf(err, errlen, "unexpected %s after the time", quote_bytes(qb, more, extra));
		return SRM_ERR_INVALID;
	}
	return 1;
}

size_t gate_cache_format_line(const struct gate_cache_entry *e, char *buf, size_t cap)
{
	char key[SRM_PUBKEY_TEXT_BYTES], host[INET6_ADDRSTRLEN];
	uint16_t port;
	bool v6 = e->udp.ss_family == AF_INET6;
	if (v6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&e->udp;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
	} else if (e->udp.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&e->udp;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
	} else {
		return 0;
	}
	srm_pubkey_encode(e->key, key);
	int n = snprintf(buf, cap, "%s %s%s%s:%u %u %u %llu\n", key, v6 ? "[" : "", host,
			 v6 ? "]" : "", (unsigned)port, (unsigned)e->ws_port, (unsigned)e->wss,
			 (unsigned long long)e->seen);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

int gate_cache_default_path(char *out, size_t cap)
{
	const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	int n;
	if (state && state[0] == '/')
		n = snprintf(out, cap, "%s/srmudp/gates", state);
	else if (home && home[0] == '/')
		n = snprintf(out, cap, "%s/.local/state/srmudp/gates", home);
	else
		return SRM_ERR_INVALID;
	return n > 0 && (size_t)n < cap ? 0 : SRM_ERR_INVALID;
}

/* A file this short holds GATE_CACHE_MAX lines with room to spare. */
#define FILE_MAX 8192

size_t gate_cache_load(const char *path, uint64_t now_s, struct gate_cache_entry *out,
		       size_t cap, char *warn, size_t warnlen)
{
	char text[FILE_MAX + 1], why[256];
	size_t count = 0, got = 0;
	unsigned line = 0;
	warn[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	ssize_t r;
	while (got < FILE_MAX && (r = read(fd, text + got, FILE_MAX - got)) > 0)
		got += (size_t)r;
	close(fd);
	text[got] = '\0';
	for (const char *s = text; s < text + got && count < cap; line++) {
		const char *nl = memchr(s, '\n', (size_t)(text + got - s));
		size_t len = nl ? (size_t)(nl - s) : (size_t)(text + got - s);
		struct gate_cache_entry e;
		int rc = gate_cache_parse_line(s, len, &e, why, sizeof(why));
		if (rc < 0 && !warn[0])
			snprintf(warn, warnlen, "%s:%u: %s", path, line + 1, why);
		if (rc == 1 && e.seen + GATE_CACHE_TTL_S >= now_s)
			out[count++] = e;
		s += len + 1;
	}
	return count;
}

int gate_cache_save(const char *path, const struct gate_cache_entry *in, size_t n, char *err,
		    size_t errlen)
{
	char dir[4096], tmp[4200], text[FILE_MAX];
	size_t len = 0;
	const char *slash = strrchr(path, '/');
	if (slash && slash != path && (size_t)(slash - path) < sizeof(dir)) {
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
		/* Each missing level (~/.local/state/srmudp on a fresh account). */
		for (char *p = dir + 1;; p++) {
			bool last = *p == '\0';
			if (*p != '/' && !last)
				continue;
			*p = '\0';
			if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
				snprintf(err, errlen, "cannot make %s: %s", dir, strerror(errno));
				return SRM_ERR_IO;
			}
			if (last)
				break;
			*p = '/';
		}
	}
	len += (size_t)snprintf(text, sizeof(text),
				"# gates announced to this srmudp engine (SRMUDP_GATE_CACHE)\n");
	for (size_t i = 0; i < n; i++) {
		size_t k = gate_cache_format_line(&in[i], text + len, sizeof(text) - len);
		if (k == 0)
			break;
		len += k;
	}
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		return SRM_ERR_IO;
	}
	bool ok = write(fd, text, len) == (ssize_t)len;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return SRM_ERR_IO;
	}
	return 0;
}
