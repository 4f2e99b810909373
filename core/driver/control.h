/*
 * control.h — the control socket that `srmudp status` reads: one per engine
 * (engine_control.c) and one per rendezvous server (tools/rdv_control.c).
 *
 * The socket is RUNDIR/PID.sock (the Nth in one process: PID-N.sock), where
 * RUNDIR is srm_runtime_dir(), mode 0600 in a directory of mode 0700 that
 * must belong to us (else a private RUNDIR.XXXXXX beside it).  A client of the same user (or root, checked with
 * SO_PEERCRED) that connects gets one JSON document and the connection
 * closes.  Sockets left by crashed processes are removed by the next
 * server or status client that finds nobody answering on them
 * (srm_control_sweep).
 *
 * Single-threaded: each server answers from its own event loop, which owns
 * the state the document describes.
 */
#ifndef SRMUDP_CONTROL_H
#define SRMUDP_CONTROL_H

#include <stddef.h>

#include "json.h"

/* Create the socket, listening and non-blocking, after sweeping RUNDIR;
 * path (len bytes) gets its name.  Returns the fd, or SRM_ERR_IO or
 * SRM_ERR_PERM (RUNDIR unusable: path then names RUNDIR) or SRM_ERR_INVALID
 * (the name is too long for a socket). */
int control_listen(char *path, size_t len);

/* Serve the clients waiting on the listening fd (call when it is
 * readable): each gets the document that doc(out, ctx) writes. */
void control_answer(int fd, void (*doc)(struct json_out *out, void *ctx), void *ctx);

/* Every document begins so: {"pid":N,"program":"NAME" (no closing brace). */
void control_doc_begin(struct json_out *out);

/* Remove the socket named by path (if any) and clear path. */
void control_remove(char *path);

#endif
