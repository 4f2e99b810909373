/*
 * control.c — the status control socket shared by engines and rendezvous
 * servers (see control.h), and the runtime directory it lives in (with a
 * private fallback when another user squats the usual one).
 */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sys.h"
#include "clock.h"
#include "control.h"
#include "quote.h"
#include "log.h"
#include "srmudp.h"

/* A status client gets its document within this time or not at all: the
 * server's event loop must not wait on a stuck reader. */
#define CONTROL_SEND_TIMEOUT_MS 500
/* Accepts per wakeup, so a flood of status clients cannot starve the
 * loop's UDP sockets. */
#define CONTROL_ACCEPTS_PER_WAKE 4

/* A directory we may put sockets in: a real directory (not a link), ours,
 * closed to group and others. */
static bool dir_is_ours(const char *dir, struct stat *st)
{
	return lstat(dir, st) == 0 && S_ISDIR(st->st_mode) && st->st_uid == geteuid() &&
	       !(st->st_mode & 077);
}

/* The usual place: the first of $XDG_RUNTIME_DIR/srmudp, /run/user/UID/srmudp,
 * /dev/shm/srmudp-UID, /tmp/srmudp-UID whose parent exists. */
static void usual_dir(char *out, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	if (xdg && xdg[0] == '/' && stat(xdg, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(out, len, "%s/srmudp", xdg);
	else if (snprintf(out, len, "/run/user/%u", (unsigned)geteuid()) > 0 &&
		 stat(out, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(out, len, "/run/user/%u/srmudp", (unsigned)geteuid());
	else if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode))
		/* tmpfs, like /run/user: creating the ends board on a disk
		 * file system (/tmp) costs a cold connect() up to 0.7 ms. */
		snprintf(out, len, "/dev/shm/srmudp-%u", (unsigned)geteuid());
	else
		snprintf(out, len, "/tmp/srmudp-%u", (unsigned)geteuid());
}

/* The first private fallback USUAL.XXXXXX that is ours, into out. */
static bool find_fallback(const char *usual, char *out, size_t len)
{
	char pattern[PATH_MAX];
	glob_t g;
	struct stat st;
	bool found = false;
	if ((size_t)snprintf(pattern, sizeof(pattern), "%s.??????", usual) >= sizeof(pattern) ||
	    glob(pattern, 0, NULL, &g) != 0)
		return false;
	for (size_t i = 0; i < g.gl_pathc && !found; i++)
		if (dir_is_ours(g.gl_pathv[i], &st) && strlen(g.gl_pathv[i]) < len) {
			snprintf(out, len, "%s", g.gl_pathv[i]);
			found = true;
		}
	globfree(&g);
	return found;
}

/* The usual directory exists but is not ours alone (another local user
 * made it first, or it is a link): the sockets go to a private directory
 * beside it instead, USUAL.XXXXXX (mkdtemp: a fresh name of ours, mode
 * 0700), which every later process of ours finds again (the first of them
 * that is ours) and `srmudp status` scans too.  Told once per process. */
static int fall_back(const char *usual, const struct stat *bad, char *out, size_t len)
{
	static atomic_bool told;
	char made[PATH_MAX];
	if (!find_fallback(usual, out, len)) {
		if ((size_t)snprintf(made, sizeof(made), "%s.XXXXXX", usual) >= sizeof(made) ||
		    !mkdtemp(made)) {
			snprintf(out, len, "%s", usual);
			return SRM_ERR_PERM;
		}
		/* Another process may have made one at the same time: all
		 * settle on the first. */
		if (!find_fallback(usual, out, len)) {
			rmdir(made);
			snprintf(out, len, "%s", usual);
			return SRM_ERR_PERM;
		}
		if (strcmp(out, made) != 0)
			rmdir(made);
	}
	if (!atomic_exchange(&told, true)) {
		if (S_ISLNK(bad->st_mode))
			log_write(SRM_LOG_WARN, NULL, "runtime directory %s is a symbolic link: using %s",
				  usual, out);
		else
			log_write(SRM_LOG_WARN, NULL,
				  "runtime directory %s is not ours alone (owner uid %u, mode %04o): "
				  "using %s",
				  usual, (unsigned)bad->st_uid, (unsigned)(bad->st_mode & 07777), out);
	}
	return 0;
}

int srm_runtime_dir(char *out, size_t len)
{
	char usual[PATH_MAX];
	struct stat st;
	usual_dir(usual, sizeof(usual));
	if (mkdir(usual, 0700) != 0 && errno != EEXIST) {
		snprintf(out, len, "%s", usual);
		return SRM_ERR_IO;
	}
	if (dir_is_ours(usual, &st)) {
		if ((size_t)snprintf(out, len, "%s", usual) >= len)
			return SRM_ERR_INVALID;
		return 0;
	}
	/* Someone else's directory, one others may write to, or a link, is
	 * not ours to put a socket in. */
	if (lstat(usual, &st) != 0) {
		snprintf(out, len, "%s", usual);
		return SRM_ERR_IO;
	}
	return fall_back(usual, &st, out, len);
}

static bool has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), k = strlen(suffix);
	return n > k && strcmp(name + n - k, suffix) == 0;
}

/* Remove what engines that are gone (crashed, killed) left in dir: their
 * sockets (PID.sock or PID-N.sock) and ends boards (PID.ends).  A
 * kill(PID, 0) first spares live engines the wake-up (this runs on the
 * preload's first connect). */
void srm_control_sweep(const char *dir)
{
	DIR *dh = opendir(dir);
	struct dirent *de;
	if (!dh)
		return;
	while ((de = readdir(dh))) {
		bool board = has_suffix(de->d_name, ".ends");
		if (!board && !has_suffix(de->d_name, ".sock"))
			continue;
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (pid <= 0 || (*end != '.' && *end != '-'))
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue; /* alive, or someone else's */
		if (board) {
			/* Only its holders' reset reports are lost if a process
			 * in another PID namespace still writes it. */
			unlinkat(dirfd(dh), de->d_name, 0);
			continue;
		}
		/* The name's process is gone; remove the socket unless something
		 * still answers on it (a process in another PID namespace). */
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, de->d_name) >=
		    sizeof(sa.sun_path))
			continue;
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			break;
		if (sys_connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno == ECONNREFUSED)
			unlink(sa.sun_path);
		sys_close(fd);
	}
	closedir(dh);
}

int control_listen(char *path, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	/* PID.sock; a second server in the same process gets PID-N.sock. */
	static _Atomic unsigned servers_here;
	int rc = srm_runtime_dir(path, len);

	if (rc < 0)
		return rc;
	srm_control_sweep(path);
	char dir[sizeof(sa.sun_path)];
	if ((size_t)snprintf(dir, sizeof(dir), "%s", path) >= sizeof(dir))
		return SRM_ERR_INVALID;
	unsigned nth = atomic_fetch_add(&servers_here, 1);
	if (nth)
		snprintf(path, len, "%s/%d-%u.sock", dir, (int)getpid(), nth + 1);
	else
		snprintf(path, len, "%s/%d.sock", dir, (int)getpid());
	if (strlen(path) >= sizeof(sa.sun_path)) {
		path[0] = '\0';
		return SRM_ERR_INVALID;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		path[0] = '\0';
		return SRM_ERR_IO;
	}
	unlink(path); /* stale: a crashed process had our PID */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || sys_listen(fd, 8) != 0) {
		sys_close(fd);
		path[0] = '\0';
		return SRM_ERR_IO;
	}
	chmod(path, 0600);
	return fd;
}

void control_doc_begin(struct json_out *out)
{
	char comm[64] = "?";
	FILE *f = fopen("/proc/self/comm", "re");

	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	json_out_printf(out, "{\"pid\":%d,\"program\":", (int)getpid());
	json_out_string(out, comm);
}

enum control_request control_request_parse(const char *buf, size_t len)
{
	/* One line: what comes after a newline is not looked at. */
	const char *nl = memchr(buf, '\n', len);
	if (nl)
		len = (size_t)(nl - buf);
	else if (len >= CONTROL_REQUEST_MAX)
		return CONTROL_BAD; /* cut: no complete line */
	if (len && buf[len - 1] == '\r')
		len--;
	if (len == 0 || (len == 6 && memcmp(buf, "status", 6) == 0))
		return CONTROL_STATUS;
	if (len == 6 && memcmp(buf, "reload", 6) == 0)
		return CONTROL_RELOAD;
	return CONTROL_BAD;
}

/* Read the client's request: until a newline, its end, CONTROL_REQUEST_MAX
 * bytes or the deadline, whichever comes first. */
static size_t read_request(int c, char *buf)
{
	uint64_t deadline = clock_now_ms() + CONTROL_REQUEST_WAIT_MS;
	size_t len = 0;
	while (len < CONTROL_REQUEST_MAX && !memchr(buf, '\n', len)) {
		uint64_t now = clock_now_ms();
		if (now >= deadline)
			break;
		uint64_t left = deadline - now;
		struct timeval tv = { 0, (suseconds_t)(left * 1000) };
		sys_setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		ssize_t n = sys_recv(c, buf + len, CONTROL_REQUEST_MAX - len, 0);
		if (n <= 0 && !(n < 0 && errno == EINTR))
			break; /* its end, or the deadline */
		if (n > 0)
			len += (size_t)n;
	}
	return len;
}

void control_serve(int fd, const struct control_ops *ops, void *ctx)
{
	for (int i = 0; i < CONTROL_ACCEPTS_PER_WAKE; i++) {
		int c = sys_accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			return;
		struct ucred cred;
		socklen_t len = sizeof(cred);
		if (sys_getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
		    (cred.uid != geteuid() && cred.uid != 0)) {
			sys_close(c);
			continue;
		}
		char req[CONTROL_REQUEST_MAX];
		size_t n = read_request(c, req);
		struct timeval tv = { 0, CONTROL_SEND_TIMEOUT_MS * 1000 };
		sys_setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		struct json_out out = { 0 };
		switch (control_request_parse(req, n)) {
		case CONTROL_STATUS:
			ops->status(&out, ctx);
			break;
		case CONTROL_RELOAD:
			ops->reload(&out, ctx);
			break;
		case CONTROL_BAD: {
			char q[QUOTE_BUF];
			const char *nl = memchr(req, '\n', n);
			json_out_printf(&out, "error: unknown request %s (expected status or reload)\n",
					quote_bytes(q, req, nl ? (size_t)(nl - req) : n));
			break;
		}
		}
		for (size_t off = 0; out.buf && off < out.len;) {
			ssize_t w = sys_send(c, out.buf + off, out.len - off, MSG_NOSIGNAL);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		json_out_free(&out);
		sys_close(c);
	}
}

void control_remove(char *path)
{
	if (path[0]) {
		unlink(path);
		path[0] = '\0';
	}
}
