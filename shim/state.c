/*
 * state.c — the fd table (see state.h).
 *
 * Chunks of the table are allocated on first use and never freed, so a
 * lock-free reader can never see freed table memory; socks themselves
 * are only dereferenced under a reference.
 */
#include "state.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <unistd.h>

#include "real.h"
#include "vaddr.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CHUNK_BITS 10
#define CHUNK_FDS (1 << CHUNK_BITS)
#define CHUNKS 1024 /* fds below 1M; RLIMIT_NOFILE caps lower in practice */

static struct shim_sock **chunks[CHUNKS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int live;     /* socks of kind STREAM or ACCEPTED */
static int imported; /* SRMUDP_INHERIT looked at */

static void import_inherited(void);

void state_lock(void)
{
	pthread_mutex_lock(&lock);
}

void state_unlock(void)
{
	pthread_mutex_unlock(&lock);
}

static struct shim_sock **slot(int fd, int create)
{
	struct shim_sock **c;

	if (fd < 0 || fd >= CHUNKS * CHUNK_FDS)
		return NULL;
	c = __atomic_load_n(&chunks[fd >> CHUNK_BITS], __ATOMIC_ACQUIRE);
	if (!c && create) {
		c = calloc(CHUNK_FDS, sizeof(*c));
		if (!c)
			return NULL;
		__atomic_store_n(&chunks[fd >> CHUNK_BITS], c, __ATOMIC_RELEASE);
	}
	return c ? &c[fd & (CHUNK_FDS - 1)] : NULL;
}

int state_peek(int fd)
{
	struct shim_sock **p;

	if (__builtin_expect(!__atomic_load_n(&imported, __ATOMIC_RELAXED), 0))
		import_inherited();
	p = slot(fd, 0);

	return p && __atomic_load_n(p, __ATOMIC_RELAXED) != NULL;
}

static void unref_locked(struct shim_sock *s)
{
	if (--s->refs == 0) {
		if (s->kind == SHIM_STREAM || s->kind == SHIM_ACCEPTED)
			__atomic_fetch_sub(&live, 1, __ATOMIC_RELAXED);
		free(s);
	}
}

static int same_file(const struct shim_sock *s, int fd)
{
	struct stat st;
	int saved = errno, r;

	r = fstat(fd, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino;
	errno = saved;
	return r;
}

struct shim_sock *state_get(int fd)
{
	struct shim_sock **p, *s = NULL;

	if (!state_peek(fd))
		return NULL;
	pthread_mutex_lock(&lock);
	p = slot(fd, 0);
	if (p && *p) {
		if (same_file(*p, fd)) {
			s = *p;
			s->refs++;
		} else {
			unref_locked(*p); /* stale: closed behind our back */
			__atomic_store_n(p, NULL, __ATOMIC_RELAXED);
		}
	}
	pthread_mutex_unlock(&lock);
	return s;
}

enum write_mode state_write_mode(int fd)
{
	struct shim_sock **p;
	enum write_mode m = WRITE_PLAIN;

	if (!state_peek(fd))
		return WRITE_PLAIN;
	pthread_mutex_lock(&lock);
	p = slot(fd, 0);
	if (p && *p && (*p)->kind == SHIM_STREAM)
		m = (*p)->accepted ? WRITE_ACCEPTED
				   : (*p)->sndbuf_restore ? WRITE_OPENING : WRITE_OPENED;
	pthread_mutex_unlock(&lock);
	return m;
}

void state_put(struct shim_sock *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&lock);
	unref_locked(s);
	pthread_mutex_unlock(&lock);
}

void state_rebind(struct shim_sock *s, int fd)
{
	struct stat st;
	int saved = errno;

	if (fstat(fd, &st) == 0) {
		s->dev = st.st_dev;
		s->ino = st.st_ino;
	}
	errno = saved;
}

struct shim_sock *state_new(enum shim_kind kind, int fd)
{
	struct shim_sock *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->refs = 1;
	s->kind = kind;
	s->peer = -1;
	if (kind == SHIM_STREAM || kind == SHIM_ACCEPTED)
		__atomic_fetch_add(&live, 1, __ATOMIC_RELAXED);
	state_rebind(s, fd);
	return s;
}

void state_set(int fd, struct shim_sock *s)
{
	struct shim_sock **p;

	pthread_mutex_lock(&lock);
	p = slot(fd, 1);
	if (p) {
		if (*p)
			unref_locked(*p);
		s->refs++;
		__atomic_store_n(p, s, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&lock);
}

struct shim_sock *state_take(int fd)
{
	struct shim_sock **p, *s = NULL;

	if (!state_peek(fd))
		return NULL;
	pthread_mutex_lock(&lock);
	p = slot(fd, 0);
	if (p && *p) {
		s = *p;
		__atomic_store_n(p, NULL, __ATOMIC_RELAXED);
		if (!same_file(s, fd)) {
			unref_locked(s); /* stale entry: fd is someone else's now */
			s = NULL;
		}
	}
	pthread_mutex_unlock(&lock);
	return s;
}

int state_last(struct shim_sock *s)
{
	int r;

	pthread_mutex_lock(&lock);
	r = s->refs == 1;
	pthread_mutex_unlock(&lock);
	return r;
}

void state_each(unsigned first, unsigned last, void (*fn)(int fd, void *arg), void *arg)
{
	unsigned hi = (unsigned)CHUNKS * CHUNK_FDS - 1;

	if (last > hi)
		last = hi;
	pthread_mutex_lock(&lock);
	for (unsigned c = first >> CHUNK_BITS; c <= (last >> CHUNK_BITS) && first <= last; c++) {
		struct shim_sock **ch = chunks[c];

		if (!ch)
			continue;
		for (unsigned i = 0; i < CHUNK_FDS; i++) {
			unsigned fd = (c << CHUNK_BITS) | i;

			if (fd >= first && fd <= last && ch[i])
				fn((int)fd, arg);
		}
	}
	pthread_mutex_unlock(&lock);
}

int state_listener_ports(uint16_t *ports, int max)
{
	int n = 0;

	pthread_mutex_lock(&lock);
	for (unsigned c = 0; c < CHUNKS; c++) {
		struct shim_sock **ch = chunks[c];

		for (unsigned i = 0; ch && i < CHUNK_FDS; i++) {
			struct shim_sock *s = ch[i];
			int dup = 0;

			if (!s || s->kind != SHIM_LISTENER)
				continue;
			for (int k = 0; k < n; k++)
				dup |= ports[k] == s->port;
			if (!dup && n < max)
				ports[n++] = s->port;
		}
	}
	pthread_mutex_unlock(&lock);
	return n;
}

void state_child_after_fork(void)
{
	pthread_mutex_init(&lock, NULL);
	/* The parent's engine keeps serving inherited streams through the
	 * shared socket pairs; the child can no longer ask it anything. */
	for (unsigned c = 0; c < CHUNKS; c++) {
		struct shim_sock **ch = chunks[c];

		for (unsigned i = 0; ch && i < CHUNK_FDS; i++)
			if (ch[i] && ch[i]->kind == SHIM_STREAM)
				ch[i]->engine = NULL;
	}
}

int state_live(void)
{
	return __atomic_load_n(&live, __ATOMIC_RELAXED) > 0;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ntohs(((const struct sockaddr_in *)ss)->sin_port); /* same offset in sin6 */
}

size_t state_export(char *buf, size_t len)
{
	size_t n = 0;

	if (!state_live() || len < 2)
		return 0;
	pthread_mutex_lock(&lock);
	for (unsigned c = 0; c < CHUNKS; c++) {
		struct shim_sock **ch = chunks[c];

		for (unsigned i = 0; ch && i < CHUNK_FDS; i++) {
			struct shim_sock *s = ch[i];
			int fd = (int)((c << CHUNK_BITS) | i), fl, idx, mapped, w;

			if (!s || (s->kind != SHIM_STREAM && s->kind != SHIM_ACCEPTED))
				continue;
			fl = real_fcntl(fd, F_GETFD, NULL);
			if (fl < 0 || (fl & FD_CLOEXEC))
				continue; /* gone at exec anyway */
			idx = vaddr_index((const struct sockaddr *)&s->remote, s->remote_len);
			if (idx < 0)
				continue;
			mapped = s->remote.ss_family == AF_INET6 &&
				 IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&s->remote)->sin6_addr);
			w = snprintf(buf + n, len - n, "%s%c,%lu,%d,%d,%d,%u,%u,%d,%llu", n ? ";" : "",
				     s->kind != SHIM_STREAM ? 'a' : s->accepted ? 'c' : 's',
				     (unsigned long)s->ino,
				     s->remote.ss_family, mapped, idx, port_of(&s->remote),
				     s->kind == SHIM_STREAM ? port_of(&s->local) : 0,
				     s->kind == SHIM_STREAM ? (int)s->engine_pid : 0,
				     s->kind == SHIM_STREAM ? (unsigned long long)s->stream : 0ull);
			if (w < 0 || (size_t)w >= len - n)
				goto out; /* full: pass on what fits */
			n += (size_t)w;
		}
	}
out:
	pthread_mutex_unlock(&lock);
	buf[n] = 0;
	return n;
}

/* Rebuild one inherited sock (see state_export) on fd. */
static void import_one(int fd, char kind, int family, int mapped, int idx, unsigned rport,
		       unsigned lport, int engine_pid, unsigned long long stream)
{
	int stream_kind = kind == 's' || kind == 'c';
	struct shim_sock *s = state_new(stream_kind ? SHIM_STREAM : SHIM_ACCEPTED, fd);

	if (!s)
		return;
	s->accepted = kind == 'c';
	s->family = family == AF_INET6 && mapped ? AF_INET6 : family;
	s->peer = idx;
	s->conn = CONN_CONNECTED;
	s->engine = NULL; /* served by the engine of the process that exec'd */
	s->ends = NULL;   /* attached when first needed (stream_take_reset) */
	s->engine_pid = engine_pid;
	s->stream = stream;
	s->remote_len = vaddr_make(family, mapped, idx, (uint16_t)rport, &s->remote);
	if (stream_kind) {
		memset(&s->local, 0, sizeof(s->local));
		if (family == AF_INET) {
			struct sockaddr_in *l = (struct sockaddr_in *)&s->local;

			l->sin_family = AF_INET;
			l->sin_port = htons((uint16_t)lport);
			l->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			s->local_len = sizeof(*l);
		} else {
			struct sockaddr_in6 *l = (struct sockaddr_in6 *)&s->local;

			l->sin6_family = AF_INET6;
			l->sin6_port = htons((uint16_t)lport);
			l->sin6_addr = in6addr_loopback;
			s->local_len = sizeof(*l);
		}
	}
	state_set(fd, s);
	state_put(s);
}

/* A process exec'd by a preloaded one finds its inherited streams and
 * peer connections again by socket inode (fd numbers may have moved). */
static void import_inherited(void)
{
	const char *v;
	DIR *d;
	struct dirent *de;
	int saved = errno;

	if (__atomic_exchange_n(&imported, 1, __ATOMIC_ACQ_REL))
		return;
	v = getenv("SRMUDP_INHERIT");
	if (!v || !*v || !(d = opendir("/proc/self/fd")))
		return;
	while ((de = readdir(d))) {
		struct stat st;
		const char *p = v;
		int fd = atoi(de->d_name);

		if (de->d_name[0] < '0' || de->d_name[0] > '9' || fd == dirfd(d) ||
		    fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
			continue;
		while (p && *p) {
			char kind;
			unsigned long ino;
			int family, mapped, idx;
			unsigned rport, lport;
			int engine_pid;
			unsigned long long stream;

			if (sscanf(p, "%c,%lu,%d,%d,%d,%u,%u,%d,%llu", &kind, &ino, &family, &mapped,
				   &idx, &rport, &lport, &engine_pid, &stream) == 9 &&
			    ino == (unsigned long)st.st_ino &&
			    (kind == 's' || kind == 'c' || kind == 'a') &&
			    (family == AF_INET || family == AF_INET6) && idx >= 0 &&
			    idx <= VADDR_MAX_INDEX) {
				import_one(fd, kind, family, mapped, idx, rport, lport, engine_pid,
					   stream);
				break;
			}
			p = strchr(p, ';');
			p = p ? p + 1 : NULL;
		}
	}
	closedir(d);
	errno = saved;
}
