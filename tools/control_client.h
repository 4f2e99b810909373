/*
 * control_client.h — the client side of the control sockets
 * (core/driver/control.h): finding every engine and rendezvous server of
 * this user, and asking one of them.  Shared by `srmudp status` and
 * `srmudp reload`.
 */
#ifndef SRMUDP_CONTROL_CLIENT_H
#define SRMUDP_CONTROL_CLIENT_H

#include <stddef.h>
#include <sys/un.h>

/* Engines listed at most (a socket each). */
#define CONTROL_MAX_SOCKETS 4096

struct control_socket {
	long pid;
	unsigned nth; /* PID-N.sock: the Nth server of one process */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* Every control socket of ours, sorted by process: in own (the runtime
 * directory of this environment, srm_runtime_dir) and in every other
 * place an engine of ours may have put it, private fallbacks included.
 * Only directories we may trust are read (ours,
 * closed to group and others), and ours are swept of stale sockets.
 * others (root only): every user's too.  npids > 0: only those processes
 * (decimal strings).  Returns how many went into out (at most max). */
size_t control_find(const char *own, struct control_socket *out, size_t max, int others,
		    int npids, char **pids);

/* srm_runtime_dir, or the one-line error (`srmudp CMD: runtime directory
 * ...`): 0 or negative. */
int control_own_dir(char *dir, size_t len);

/* Send request ("status" or "reload") to the socket at path and read the
 * whole answer (at most max bytes, NUL-terminated) into *answer (free()
 * it), waiting at most timeout_ms for each read.  Returns 0, or -1 (gone,
 * refused, stuck, not ours, or too long): errno says why. */
int control_ask(const char *path, const char *request, int timeout_ms, size_t max, char **answer,
		size_t *len);

#endif
