/*
 * resolve.c — peer NAMEs (and NAME.srmudp) resolve to their virtual
 * addresses; those addresses resolve back to the NAME.
 *
 * Like torsocks, the forward lookup lets the real getaddrinfo do the work
 * on the numeric address string, so service names, socket types, flags
 * and the memory layout freeaddrinfo expects all stay libc's own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "engine_glue.h"
#include "real.h"
#include "vaddr.h"

static int peer_of_name(const char *name)
{
	int idx;

	if (!name || !*name || !glue_enabled())
		return -1;
	idx = glue_peer_index(name);
	if (idx < 0)
		glue_peer_hint(name); /* "bpb": the system resolver will not know it */
	return idx;
}

static int lookup_family(int idx, int family, const char *name, const char *service,
			 const struct addrinfo *hints, struct addrinfo **res)
{
	struct sockaddr_storage ss;
	char text[INET6_ADDRSTRLEN];
	struct addrinfo h;
	const void *a;

	vaddr_make(family, 0, idx, 0, &ss);
	a = family == AF_INET ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
			      : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
	inet_ntop(family, a, text, sizeof(text));
	if (hints) {
		h = *hints;
	} else {
		memset(&h, 0, sizeof(h));
	}
	h.ai_family = family;
	h.ai_flags |= AI_NUMERICHOST;
	h.ai_flags &= ~(AI_ADDRCONFIG | AI_V4MAPPED | AI_ALL);
	int r = real_getaddrinfo(text, service, &h, res);

	if (r == 0 && (h.ai_flags & AI_CANONNAME) && *res) {
		char *cn = strdup(name);

		if (cn) {
			free((*res)->ai_canonname);
			(*res)->ai_canonname = cn;
		}
	}
	return r;
}

static int lookup_peer(int idx, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res)
{
	const char *name = glue_peer_name(idx);
	int family = hints ? hints->ai_family : AF_UNSPEC;
	struct addrinfo *v4 = NULL, *v6 = NULL, *tail;
	int r4 = EAI_FAMILY, r6 = EAI_FAMILY;

	if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
		return EAI_FAMILY;
	if (family != AF_INET6)
		r4 = lookup_family(idx, AF_INET, name, service, hints, &v4);
	if (family != AF_INET)
		r6 = lookup_family(idx, AF_INET6, name, service, hints, &v6);
	if (r4 != 0 && r6 != 0)
		return family == AF_INET6 ? r6 : r4;
	if (r4 != 0) {
		*res = v6;
		return 0;
	}
	if (v6) { /* IPv4 first: the form every program can use */
		for (tail = v4; tail->ai_next; tail = tail->ai_next)
			;
		tail->ai_next = v6;
		if (v6->ai_canonname && v4->ai_canonname) {
			free(v6->ai_canonname);
			v6->ai_canonname = NULL;
		}
	}
	*res = v4;
	return 0;
}

SHIM_EXPORT int getaddrinfo(const char *node, const char *service,
			    const struct addrinfo *hints, struct addrinfo **res)
{
	int idx, saved = errno, r;

	if ((hints && (hints->ai_flags & AI_NUMERICHOST)) || (idx = peer_of_name(node)) < 0)
		return real_getaddrinfo(node, service, hints, res);
	r = lookup_peer(idx, service, hints, res);
	errno = saved;
	return r;
}

SHIM_EXPORT int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
			    socklen_t hostlen, char *serv, socklen_t servlen, int flags)
{
	const char *name;
	size_t n;
	int idx, r = 0;

	if (!host || !hostlen || (flags & NI_NUMERICHOST) || !glue_enabled() ||
	    (idx = vaddr_index(sa, salen)) < 0 || !(name = glue_peer_name(idx)))
		return real_getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
	if (serv && servlen)
		r = real_getnameinfo(sa, salen, NULL, 0, serv, servlen, flags);
	if (r != 0)
		return r;
	n = strlen(name);
	if (n + 1 > hostlen)
		return EAI_OVERFLOW;
	memcpy(host, name, n + 1);
	return 0;
}

/* ---- the old hostent interface ---- */

struct hostent_buf {
	char *addrs[2];
	char *aliases[1];
	unsigned char addr[16];
	char name[SRM_PEER_NAME_MAX + 1];
};

static int fill_hostent(int idx, int family, struct hostent *h, char *buf, size_t buflen)
{
	struct hostent_buf *b;
	struct sockaddr_storage ss;
	uintptr_t p = ((uintptr_t)buf + 15) & ~(uintptr_t)15;
	const char *name = glue_peer_name(idx);

	if (!name)
		return ENOENT;
	if (p + sizeof(*b) > (uintptr_t)buf + buflen)
		return ERANGE;
	b = (struct hostent_buf *)p;
	memset(b, 0, sizeof(*b));
	vaddr_make(family, 0, idx, 0, &ss);
	if (family == AF_INET)
		memcpy(b->addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
	else
		memcpy(b->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
	strncpy(b->name, name, sizeof(b->name) - 1);
	b->addrs[0] = (char *)b->addr;
	h->h_name = b->name;
	h->h_aliases = b->aliases;
	h->h_addrtype = family;
	h->h_length = family == AF_INET ? 4 : 16;
	h->h_addr_list = b->addrs;
	return 0;
}

static __thread struct hostent tls_host;
static __thread char tls_buf[sizeof(struct hostent_buf) + 16];

SHIM_EXPORT struct hostent *gethostbyname2(const char *name, int af)
{
	static struct hostent *(*fn)(const char *, int);
	int idx = (af == AF_INET || af == AF_INET6) ? peer_of_name(name) : -1;

	if (idx >= 0 && fill_hostent(idx, af, &tls_host, tls_buf, sizeof(tls_buf)) == 0)
		return &tls_host;
	if (!fn)
		fn = (struct hostent * (*)(const char *, int)) real_symbol("gethostbyname2");
	return fn(name, af);
}

SHIM_EXPORT struct hostent *gethostbyname(const char *name)
{
	static struct hostent *(*fn)(const char *);
	int idx = peer_of_name(name);

	if (idx >= 0 && fill_hostent(idx, AF_INET, &tls_host, tls_buf, sizeof(tls_buf)) == 0)
		return &tls_host;
	if (!fn)
		fn = (struct hostent * (*)(const char *)) real_symbol("gethostbyname");
	return fn(name);
}

SHIM_EXPORT int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf,
				 size_t buflen, struct hostent **result, int *h_errnop)
{
	static int (*fn)(const char *, int, struct hostent *, char *, size_t,
			 struct hostent **, int *);
	int idx = (af == AF_INET || af == AF_INET6) ? peer_of_name(name) : -1;

	if (idx >= 0) {
		int r = fill_hostent(idx, af, ret, buf, buflen);

		*result = r ? NULL : ret;
		if (r && h_errnop)
			*h_errnop = NETDB_INTERNAL;
		return r;
	}
	if (!fn)
		fn = (int (*)(const char *, int, struct hostent *, char *, size_t,
			      struct hostent **, int *))real_symbol("gethostbyname2_r");
	return fn(name, af, ret, buf, buflen, result, h_errnop);
}

SHIM_EXPORT int gethostbyname_r(const char *name, struct hostent *ret, char *buf,
				size_t buflen, struct hostent **result, int *h_errnop)
{
	static int (*fn)(const char *, struct hostent *, char *, size_t, struct hostent **,
			 int *);
	int idx = peer_of_name(name);

	if (idx >= 0) {
		int r = fill_hostent(idx, AF_INET, ret, buf, buflen);

		*result = r ? NULL : ret;
		if (r && h_errnop)
			*h_errnop = NETDB_INTERNAL;
		return r;
	}
	if (!fn)
		fn = (int (*)(const char *, struct hostent *, char *, size_t, struct hostent **,
			      int *))real_symbol("gethostbyname_r");
	return fn(name, ret, buf, buflen, result, h_errnop);
}

SHIM_EXPORT struct hostent *gethostbyaddr(const void *addr, socklen_t len, int type)
{
	static struct hostent *(*fn)(const void *, socklen_t, int);
	int idx = -1;

	if (glue_enabled() && addr && ((type == AF_INET && len == 4) || (type == AF_INET6 && len == 16)))
		idx = vaddr_index_raw(type, addr);
	if (idx >= 0 && fill_hostent(idx, type, &tls_host, tls_buf, sizeof(tls_buf)) == 0)
		return &tls_host;
	if (!fn)
		fn = (struct hostent * (*)(const void *, socklen_t, int)) real_symbol("gethostbyaddr");
	return fn(addr, len, type);
}
