/*
 * control_client.c — finding the control sockets of our engines and
 * asking them (see control_client.h; the server side is
 * core/driver/control.c).
 */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "control_client.h"

/* Directories looked at, at most (the usual four, their fallbacks, and
 * for root every user's). */
#define SEEN_MAX 64
#define DIR_MAX 200

static int cmp_socket(const void *a, const void *b)
{
	const struct control_socket *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->nth < y->nth ? -1 : x->nth > y->nth;
}

static int wanted(long pid, int npids, char **pids)
{
	if (npids == 0)
		return 1;
	for (int i = 0; i < npids; i++)
		if (strtol(pids[i], NULL, 10) == pid)
			return 1;
	return 0;
}

struct scan {
	struct control_socket *out;
	size_t max, count;
	int others, npids;
	char **pids;
	char seen[SEEN_MAX][DIR_MAX];
	size_t nseen;
};

/* The sockets in dir: PID.sock, PID-N.sock. */
static void scan_dir(struct scan *s, const char *dir)
{
	DIR *dh = opendir(dir);
	struct dirent *de;
	if (!dh)
		return;
	while ((de = readdir(dh)) && s->count < s->max) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		unsigned nth = 0;
		if (end == de->d_name || pid <= 0)
			continue;
		if (*end == '-')
			nth = (unsigned)strtoul(end + 1, &end, 10);
		if (strcmp(end, ".sock") != 0 || !wanted(pid, s->npids, s->pids))
			continue;
		struct control_socket *c = &s->out[s->count];
		memset(c, 0, sizeof(*c));
		c->pid = pid;
		c->nth = nth;
		if ((size_t)snprintf(c->path, sizeof(c->path), "%s/%s", dir, de->d_name) <
		    sizeof(c->path))
			s->count++;
	}
	closedir(dh);
}

/* Scan dir if it is a runtime directory we may trust: a directory (not a
 * link), closed to group and others, owned by us (or, for root, by
 * anyone: engines answer root).  Ours are swept of stale sockets too. */
static void scan_trusted(struct scan *s, const char *dir)
{
	struct stat st;
	for (size_t i = 0; i < s->nseen; i++)
		if (strcmp(s->seen[i], dir) == 0)
			return;
	if (s->nseen == SEEN_MAX || strlen(dir) >= DIR_MAX)
		return;
	snprintf(s->seen[s->nseen++], DIR_MAX, "%s", dir);
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 077) ||
	    (st.st_uid != geteuid() && (geteuid() != 0 || !s->others)))
		return;
	if (st.st_uid == geteuid())
		srm_control_sweep(dir);
	scan_dir(s, dir);
}

static void scan_glob(struct scan *s, const char *pattern)
{
	glob_t g;
	if (glob(pattern, 0, NULL, &g) != 0)
		return;
	for (size_t i = 0; i < g.gl_pathc; i++)
		scan_trusted(s, g.gl_pathv[i]);
	globfree(&g);
}

int control_own_dir(char *dir, size_t len)
{
	/* Creates the directory if need be, so a first engine finds it right. */
	int rc = srm_runtime_dir(dir, len);
	if (rc < 0)
		cli_error("runtime directory %s: %s", dir,
			  rc == SRM_ERR_PERM ? "not owned by us alone (mode must be 0700)"
					     : strerror(errno));
	return rc;
}

size_t control_find(const char *own, struct control_socket *out, size_t max, int others,
		    int npids, char **pids)
{
	struct scan *s = calloc(1, sizeof(*s));
	char dir[DIR_MAX + 16];
	unsigned uid = (unsigned)geteuid();
	if (!s)
		return 0;
	s->out = out;
	s->max = max;
	s->others = others;
	s->npids = npids;
	s->pids = pids;
	/* The runtime directory of this environment and the other
	 * srm_runtime_dir() choices (an engine started from another session,
	 * without or with XDG_RUNTIME_DIR), then their private fallbacks
	 * (DIR.XXXXXX, made where another user squatted the usual one). */
	static const char *const usual[] = { "/run/user/%u/srmudp", "/dev/shm/srmudp-%u",
					     "/tmp/srmudp-%u" };
	char pattern[DIR_MAX + 24];
	scan_trusted(s, own);
	for (size_t i = 0; i < sizeof(usual) / sizeof(usual[0]); i++) {
		snprintf(dir, sizeof(dir), usual[i], uid);
		scan_trusted(s, dir);
	}
	for (size_t i = 0; i <= sizeof(usual) / sizeof(usual[0]); i++) {
		if (i)
			snprintf(dir, sizeof(dir), usual[i - 1], uid);
		snprintf(pattern, sizeof(pattern), "%s.??????", i ? dir : own);
		scan_glob(s, pattern);
	}
	if (uid == 0 && others) {
		scan_glob(s, "/run/user/*/srmudp");
		scan_glob(s, "/dev/shm/srmudp-*");
		scan_glob(s, "/tmp/srmudp-*");
	}
	size_t count = s->count;
	free(s);
	qsort(out, count, sizeof(out[0]), cmp_socket);
	return count;
}

int control_ask(const char *path, const char *request, int timeout_ms, size_t max, char **answer,
		size_t *len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char line[64];
	int n = snprintf(line, sizeof(line), "%s\n", request);
	*answer = NULL;
	*len = 0;
	if (n < 0 || (size_t)n >= sizeof(line) || strlen(path) >= sizeof(sa.sun_path)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	/* The request goes at once, and our side ends after it: the server
	 * never waits for more.  A server from before requests existed may
	 * have answered and gone already (EPIPE): its answer is still there
	 * to read. */
	if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n && errno != EPIPE && errno != ECONNRESET) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	shutdown(fd, SHUT_WR);
	size_t cap = 4096, got = 0;
	char *buf = malloc(cap);
	int saved = 0;
	for (;;) {
		if (!buf) {
			saved = ENOMEM;
			break;
		}
		if (got + 1 >= cap) {
			if (cap >= max) {
				saved = EMSGSIZE;
				break;
			}
			char *nb = realloc(buf, cap * 2 < max ? cap * 2 : max);
			if (!nb) {
				saved = ENOMEM;
				break;
			}
			buf = nb;
			cap = cap * 2 < max ? cap * 2 : max;
		}
		ssize_t r = read(fd, buf + got, cap - 1 - got);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* A server that closes without reading our request
			 * (one from before requests existed) resets the
			 * connection after its whole answer: that is its end.
			 * (A cut answer is caught by its reader.) */
			if (errno == ECONNRESET && got > 0)
				break;
			saved = errno; /* timed out or reset: a stuck engine */
			break;
		}
		got += (size_t)r;
	}
	close(fd);
	if (saved) {
		free(buf);
		errno = saved;
		return -1;
	}
	buf[got] = '\0';
	*answer = buf;
	*len = got;
	return 0;
}
