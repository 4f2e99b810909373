/*
 * log.h — process-wide logging for the engine and the tools.
 *
 * One line per event:
 *   2026-11-22T05:57:30.123Z srmudp[1234] warn peer=db: handshake timed out
 * (UTC time with milliseconds, pid, level, the peer when there is one, the
 * message).  Each line is built in a local buffer and written with a single
 * write() to a file opened O_APPEND, so lines from several threads or
 * processes never interleave.  Control characters in the message or peer
 * name become '?', so a name chosen by a remote party cannot forge lines.
 *
 * NEVER pass secrets to these functions: no private keys, shared secrets,
 * session keys, nonces of live keys or decrypted application data.  Public
 * keys, fingerprints, addresses and counters are fine.
 *
 * Logging never fails and never crashes the process: write errors (disk
 * full, closed pipe) are ignored, SIGPIPE is suppressed, errno is preserved.
 * The default before log_open() is level warn on stderr, so a wrapped
 * program's own output stays clean.
 *
 * Internal to srmudp (hidden from the preload's exported symbols, so an
 * application with its own log_write() cannot collide with ours).
 */
#ifndef SRMUDP_LOG_H
#define SRMUDP_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "srmudp.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LOG_INTERNAL __attribute__((visibility("hidden")))

/* One event per line; longer messages are cut.  Large enough for a peer
 * name (63), an address and a sentence, small enough for the stack. */
#define LOG_LINE_MAX 1024

/* Set the threshold and destination.  path NULL or "" means stderr.  A file
 * is created mode 0600 and appended to.  If it cannot be opened, logging
 * goes to stderr and one warning says why.  May be called again at any time
 * (a running writer never sees a closed fd: the file is swapped in place). */
LOG_INTERNAL void log_open(enum srm_log_level lvl, const char *path);
/* Open the log file again under its name, at the same level (after
 * logrotate moved it away: SIGHUP of srmudp rendezvous, a reload); nothing
 * when logging to stderr. */
LOG_INTERNAL void log_reopen(void);

/* Nonzero when events of level lvl are written.  The LOG_* macros use it to
 * skip formatting entirely below the threshold. */
LOG_INTERNAL int log_enabled(enum srm_log_level lvl);

/* The fd log lines go to (2 for stderr).  The preload shields it from an
 * application's close_range()/closefrom(). */
LOG_INTERNAL int log_fd(void);

/* Write one line.  peer may be NULL.  Long messages are cut with "...". */
LOG_INTERNAL void log_write(enum srm_log_level lvl, const char *peer, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The line log_write() writes, built into line[0..cap) (cap at least 64),
 * ending in '\n'; returns its length.  It calls no function the preload
 * hooks (only the clock, getpid and the printf family), so the preload
 * formats its own lines with it and writes them through its real write(). */
LOG_INTERNAL size_t log_format(char *line, size_t cap, enum srm_log_level lvl, const char *peer,
			       const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

#define LOG_AT_(lvl, peer, ...)                                   \
	do {                                                      \
		if (log_enabled(lvl))                             \
			log_write((lvl), (peer), __VA_ARGS__);    \
	} while (0)
#define LOG_ERR(peer, ...) LOG_AT_(SRM_LOG_ERROR, peer, __VA_ARGS__)
#define LOG_WARN(peer, ...) LOG_AT_(SRM_LOG_WARN, peer, __VA_ARGS__)
#define LOG_INFO(peer, ...) LOG_AT_(SRM_LOG_INFO, peer, __VA_ARGS__)
#define LOG_DEBUG(peer, ...) LOG_AT_(SRM_LOG_DEBUG, peer, __VA_ARGS__)

/*
 * Rate limiting for events a remote party can trigger at will (unknown keys,
 * bad packets): at most one line per interval per limiter.  Zero-initialise.
 *   last_ms: time of the last event let through, plus one (0: none yet),
 *            so a clock that starts at 0 is handled;
 *   suppressed: events dropped since then.
 * log_ratelimit_ok() returns 0 to drop the event, or 1 + the number of
 * events suppressed since the previous one let through (so the caller can
 * say "(N more suppressed)"), and resets that count.  now_ms must come from
 * a monotonic clock; the limiter is not locked (keep it per thread/peer or
 * under the caller's lock).
 */
struct log_ratelimit {
	uint64_t last_ms;
	uint32_t suppressed;
};

LOG_INTERNAL int log_ratelimit_ok(struct log_ratelimit *rl, uint64_t now_ms,
				  uint32_t interval_ms);

/* "error", "warn", "info", "debug". */
LOG_INTERNAL const char *log_level_name(enum srm_log_level lvl);

#ifdef __cplusplus
}
#endif
#endif
