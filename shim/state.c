/*
 * state.c — the fd table (see state.h).
 *
 * Chunks of the table are allocated on first use and never freed, so a
 * lock-free reader can never see freed table memory; socks themselves
 * are only dereferenced under a reference.
 */
#include "state.h"

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
	struct shim_sock **p = slot(fd, 0);

	return p && __atomic_load_n(p, __ATOMIC_RELAXED) != NULL;
}

static void unref_locked(struct shim_sock *s)
{
	if (--s->refs == 0)
		free(s);
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
