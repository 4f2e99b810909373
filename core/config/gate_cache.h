/*
 * gate_cache.h — the file that keeps the gates an engine learned
 * (SRMUDP_GATE_CACHE, docs/NAT.md "Gates"): announced by its gates, used
 * from the next start, so that a member whose network blocks UDP later
 * can try a gate it was never configured with.
 *
 * One gate per line, five fields separated by spaces:
 *   PUBKEY UDP WS TLS SEEN
 *   PUBKEY  the gate's key (as in SRMUDP_PEERS)
 *   UDP     where it takes UDP: 1.2.3.4:4500 or [2001:db8::1]:4500
 *   WS      its WebSocket port (0: none), at UDP's host; TLS 1: wss://
 *   SEEN    when it was last announced (Unix seconds)
 * Lines starting with '#' are comments.  The engine writes the file
 * (mode 0600, replaced whole by a rename); a line it cannot read is
 * skipped with one warning naming the file, line and token.
 */
#ifndef SRMUDP_GATE_CACHE_H
#define SRMUDP_GATE_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "srmudp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* More than SRMUDP_GATES holds: gates may announce each other. */
#define GATE_CACHE_MAX 16
/* A gate not announced for this long is forgotten. */
#define GATE_CACHE_TTL_S (30u * 24 * 3600)

struct gate_cache_entry {
	uint8_t key[SRM_KEY_BYTES];
	struct sockaddr_storage udp;
	socklen_t udp_len;
	uint16_t ws_port;
	uint8_t wss;
	uint64_t seen; /* Unix seconds */
};

/* One line (without its newline).  Returns 1 with *out filled, 0 for a
 * blank or comment line, or SRM_ERR_INVALID with err naming the offending
 * token. */
int gate_cache_parse_line(const char *line, size_t len, struct gate_cache_entry *out,
			  char *err, size_t errlen);
/* The line for e, newline included; 0 if it does not fit. */
size_t gate_cache_format_line(const struct gate_cache_entry *e, char *buf, size_t cap);

/* The default file: $XDG_STATE_HOME/srmudp/gates, else
 * $HOME/.local/state/srmudp/gates.  0, or SRM_ERR_INVALID (neither set). */
int gate_cache_default_path(char *out, size_t cap);

/* Read path into out (at most cap entries, those seen within
 * GATE_CACHE_TTL_S of now_s).  A missing file is no error.  Bad lines are
 * skipped; the first one's reason goes to warn (empty if none).  Returns
 * the count. */
size_t gate_cache_load(const char *path, uint64_t now_s, struct gate_cache_entry *out,
		       size_t cap, char *warn, size_t warnlen);
/* Write n entries to path (its directory made, mode 0700, if missing):
 * a temporary file, then a rename.  0 or SRM_ERR_IO (err says why). */
int gate_cache_save(const char *path, const struct gate_cache_entry *in, size_t n, char *err,
		    size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
