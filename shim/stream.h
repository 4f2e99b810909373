/*
 * stream.h — the life of a connect()ed stream as the socket API shows it:
 * engine state -> connect()/SO_ERROR/errno semantics of a TCP socket.
 */
#ifndef SHIM_STREAM_H
#define SHIM_STREAM_H

#include "state.h"

/* errno for an engine error (REFUSED -> ECONNREFUSED, ...). */
int stream_errno(int srm_err);
/* Bring s->conn up to date with the engine (or, in a forked child that
 * cannot ask the parent's engine, with what the fd shows).  fd is the
 * application's fd naming s. */
void stream_refresh(struct shim_sock *s, int fd);
/* The same for the stream fd names, if any (a write on WRITE_OPENING). */
void stream_refresh_fd(int fd);
/* connect() fills the stream's fd with a small socket buffer (see
 * connect.c); once it is open the fd gets its usual size back. */
void stream_give_sndbuf(struct shim_sock *s, int fd);
/* The error a reset or failed stream should surface once (ECONNRESET on
 * read after the peer aborted), consuming it; 0 when there is none. */
int stream_take_reset(struct shim_sock *s, int fd);

#endif
