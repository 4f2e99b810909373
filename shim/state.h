/*
 * state.h — which fds are ours, and what they stand for.
 *
 * A two-level table indexed by fd maps each of our fds to a refcounted
 * struct shim_sock (dup'd fds share one).  state_peek() is a lock-free
 * load, the only cost a foreign fd pays.  Everything that dereferences a
 * sock holds a reference taken under the table lock.
 *
 * Entries can go stale behind our back (fclose() closes through libc's
 * internal close, which no hook sees), so state_get() checks that the fd
 * is still the same open file (st_dev/st_ino) and forgets it otherwise.
 */
#ifndef SHIM_STATE_H
#define SHIM_STATE_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "srmudp.h"

enum shim_kind {
	SHIM_STREAM = 1, /* a connect() we turned into an engine stream */
	SHIM_LISTENER,   /* a TCP listening socket the engine forwards to */
	SHIM_ACCEPTED,   /* a TCP connection the engine forwarded to us */
};

enum shim_conn {
	CONN_OPENING, /* connect in progress */
	CONN_OPEN,    /* established; not yet confirmed by a second connect() */
	CONN_CONNECTED, /* established and reported: connect() says EISCONN */
	CONN_FAILED,  /* the open failed; error_pending says why until read */
};

#define SHIM_MAX_OPTS 16

struct shim_opt {
	int level, name;
	socklen_t len;
	unsigned char val[16];
};

struct shim_sock {
	int refs; /* fds naming it + temporary holders; under the table lock */
	enum shim_kind kind;
	int family; /* the family the application created: AF_INET/AF_INET6 */
	dev_t dev;  /* identity of the open file when registered */
	ino_t ino;

	/* SHIM_STREAM */
	int accepted;       /* taken over by accept(), not opened by connect() */
	srm_engine *engine; /* NULL once inherited by a forked child */
	srm_ends *ends;     /* how its engine says streams ended */
	pid_t engine_pid;   /* whose engine that is (passed on at exec) */
	uint64_t stream;
	int peer;
	enum shim_conn conn;
	int error_pending;  /* positive errno SO_ERROR still has to report */
	int reset_reported; /* 1: the reset/failure was surfaced once; 2: also
			     * the failed connect: the next connect() is a new attempt */
	int linger_abort;   /* SO_LINGER {1,0}: close aborts */
	int sndbuf_restore; /* SO_SNDBUF to give the fd once open (0: done) */
	struct sockaddr_storage local, remote;
	socklen_t local_len, remote_len;
	struct shim_opt opts[SHIM_MAX_OPTS]; /* swallowed TCP/IP options */
	int nopts;

	/* SHIM_LISTENER */
	uint16_t port;
	int loopback; /* bound to a loopback address: SRM_LISTEN_LOOPBACK */
};

/* Lock-free: non-NULL when fd may be ours (not validated, do not deref). */
int state_peek(int fd);
/* A referenced, validated sock for fd, or NULL.  Release with state_put. */
struct shim_sock *state_get(int fd);
/* How a write on fd goes, from its entry without validating it against
 * the open file (no fstat; io.c stays right on a stale entry):
 * WRITE_PLAIN not a stream of ours, WRITE_OPENED a stream connect()
 * opened, WRITE_OPENING one whose socket buffer is still connect()'s small
 * one (stream_refresh gives it its size back), WRITE_ACCEPTED a stream
 * accept() took over. */
enum write_mode { WRITE_PLAIN, WRITE_OPENED, WRITE_OPENING, WRITE_ACCEPTED };
enum write_mode state_write_mode(int fd);
void state_put(struct shim_sock *s);
/* A new sock (refs 1, owned by the caller) with identity taken from fd. */
struct shim_sock *state_new(enum shim_kind kind, int fd);
/* Refresh the sock's identity from fd (after dup3 replaced the file). */
void state_rebind(struct shim_sock *s, int fd);
/* Make fd name s (takes its own reference); forgets what fd named. */
void state_set(int fd, struct shim_sock *s);
/* fd stops naming its sock.  Returns the sock with the table's reference
 * handed to the caller (state_put it), or NULL when fd was not ours. */
struct shim_sock *state_take(int fd);
/* True when s is referenced by the caller only (the last fd is gone). */
int state_last(struct shim_sock *s);
/* Call fn for every fd in [first, last] that is ours (under the lock, so
 * fn must not call back into state_*); used by close_range. */
void state_each(unsigned first, unsigned last, void (*fn)(int fd, void *arg), void *arg);
/* Listener ports that still have a listening fd (for a forked child). */
int state_listener_ports(uint16_t *ports, int max);

/* exec: describe our stream and accepted fds that survive exec, as
 * "k,ino,family,mapped,peer,rport,lport;..." (k: s stream, a accepted)
 * for SRMUDP_INHERIT.  No allocation (safe after vfork).  Returns the
 * length written (0: nothing to pass on). */
size_t state_export(char *buf, size_t len);
/* Live stream/accepted socks (cheap test before any exec work). */
int state_live(void);

void state_lock(void);
void state_unlock(void);
/* After fork, in the child: locks fresh, streams marked inherited. */
void state_child_after_fork(void);

#endif
