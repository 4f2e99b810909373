/*
 * log.c — one-line, thread-safe, never-failing logging (see log.h).
 *
 * Never log secrets: keys, shared secrets, nonces of live keys or
 * decrypted application data must not reach log_write().
 *
 * Concurrency without a lock: the threshold and the fd are atomics.  The
 * fd of a log file is a fixed "slot" number; log_open() later replaces the
 * file behind that number with dup3(), which is atomic, so a writer that
 * read the fd a moment earlier writes to the old or the new file, never to
 * a closed or reused fd.  No lock also means fork() can never inherit one
 * held.  Going back to stderr leaves the slot open (pointing at the old
 * file, no longer written) for the same reason.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Log files live above the select() range so that an application using
 * select() with low fds never sees ours (and closefrom(3) in typical
 * daemons is less likely to hit a number it uses itself). */
#define LOG_FD_FLOOR 1024

static atomic_int threshold = SRM_LOG_WARN;
static atomic_int out_fd = STDERR_FILENO;
static atomic_int slot_fd = -1; /* our file fd, once a file was opened */

static const char *const level_names[] = { "error", "warn", "info", "debug" };

const char *log_level_name(enum srm_log_level lvl)
{
	if ((unsigned)lvl > SRM_LOG_DEBUG)
		return "?";
	return level_names[lvl];
}

int log_enabled(enum srm_log_level lvl)
{
	return (int)lvl <= atomic_load_explicit(&threshold, memory_order_relaxed);
}

int log_fd(void)
{
	return atomic_load_explicit(&out_fd, memory_order_relaxed);
}

/* Move fd above the select() range when the limit allows; CLOEXEC always. */
static int raise_fd(int fd)
{
	int high = fcntl(fd, F_DUPFD_CLOEXEC, LOG_FD_FLOOR);

	if (high < 0)
		return fd;
	close(fd);
	return high;
}

/* Point the slot at the open file description of fd (consumes fd). */
static void install(int fd)
{
	int slot = atomic_load(&slot_fd);

	if (slot < 0) {
		atomic_store(&slot_fd, fd);
		atomic_store(&out_fd, fd);
		return;
	}
	if (fd != slot) {
		dup3(fd, slot, O_CLOEXEC);
		close(fd);
	}
	atomic_store(&out_fd, slot);
}

/* The file log_open() last opened ("" for stderr), for log_reopen().
 * Written by log_open only, which its callers do not race (start, reload,
 * SIGHUP: one thread at a time). */
static char cur_path[PATH_MAX];

void log_open(enum srm_log_level lvl, const char *path)
{
	int saved = errno;

	if (path != cur_path)
		snprintf(cur_path, sizeof(cur_path), "%s", path ? path : "");

	if ((unsigned)lvl > SRM_LOG_DEBUG)
		lvl = SRM_LOG_DEBUG;
	atomic_store(&threshold, (int)lvl);
	if (path == NULL || path[0] == '\0') {
		/* Back to fd 2 itself.  A file slot stays open (a writer may
		 * still hold its number) and is reused by the next log_open. */
		atomic_store(&out_fd, STDERR_FILENO);
		errno = saved;
		return;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);

	if (fd < 0) {
		int why = errno;

		atomic_store(&out_fd, STDERR_FILENO);
		log_write(SRM_LOG_WARN, NULL, "cannot open log file \"%s\": %s; logging to stderr",
			  path, strerror(why));
		errno = saved;
		return;
	}
	install(raise_fd(fd));
	errno = saved;
}

/* Replace bytes that would break the one-line format or a terminal. */
static void sanitize(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			s[i] = '?';
	}
}

/* write() that cannot raise SIGPIPE and ignores every error.  SIGPIPE is
 * blocked for this thread around the write; if the write raised one that
 * was not already pending, it is consumed so nobody sees it. */
static void write_quiet(int fd, const char *buf, size_t len)
{
	sigset_t pipe_set, old, pending;
	int was_pending;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);

	ssize_t n;
	do
		n = write(fd, buf, len);
	while (n < 0 && errno == EINTR);

	if (n < 0 && errno == EPIPE && !was_pending) {
		struct timespec zero = { 0, 0 };

		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

size_t log_format(char *line, size_t cap, enum srm_log_level lvl, const char *peer,
		  const char *fmt, va_list ap)
{
	struct timespec ts;
	struct tm tm;
	size_t len, start;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ srmudp[%ld] %s",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000000L, (long)getpid(), log_level_name(lvl));
	len = n > 0 ? (size_t)n : 0;
	if (peer != NULL && peer[0] != '\0') {
		start = len + 6; /* after " peer=" */
		n = snprintf(line + len, cap - len, " peer=%.63s", peer);
		if (n > 0) {
			len += (size_t)n;
			sanitize(line + start, len - start);
		}
	}
	if (len + 2 < cap) {
		line[len++] = ':';
		line[len++] = ' ';
	}
	start = len;
	n = vsnprintf(line + len, cap - len, fmt, ap);
	if (n < 0)
		n = 0;
	/* Room for the newline: cut long messages and mark the cut. */
	if ((size_t)n >= cap - len - 1) {
		len = cap - 1;
		memcpy(line + len - 3, "...", 3);
	} else {
		len += (size_t)n;
	}
	sanitize(line + start, len - start);
	line[len++] = '\n';
	return len;
}

void log_write(enum srm_log_level lvl, const char *peer, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	int saved = errno;
	va_list ap;

	if (!log_enabled(lvl))
		return;
	va_start(ap, fmt);
	size_t len = log_format(line, sizeof(line), lvl, peer, fmt, ap);
	va_end(ap);
	write_quiet(log_fd(), line, len);
	errno = saved;
}

int log_ratelimit_ok(struct log_ratelimit *rl, uint64_t now_ms, uint32_t interval_ms)
{
	/* last_ms holds the time plus one, so 0 can mean "never". */
	if (rl->last_ms != 0 && now_ms + 1 >= rl->last_ms &&
	    now_ms + 1 - rl->last_ms < interval_ms) {
		if (rl->suppressed < UINT32_MAX)
			rl->suppressed++;
		return 0;
	}
	uint32_t dropped = rl->suppressed;

	rl->last_ms = now_ms + 1;
	rl->suppressed = 0;
	return dropped >= (uint32_t)INT_MAX ? INT_MAX : (int)dropped + 1;
}

void log_reopen(void)
{
	if (cur_path[0])
		log_open((enum srm_log_level)atomic_load(&threshold), cur_path);
}
