/*
 * control.h — the control socket that `srmudp status` reads: one per engine
 * (engine_control.c) and one per rendezvous server (tools/rdv_control.c).
 *
 * The socket is RUNDIR/PID.sock (the Nth in one process: PID-N.sock), where
 * RUNDIR is srm_runtime_dir(), mode 0600 in a directory of mode 0700 that
 * must belong to us (else a private RUNDIR.XXXXXX beside it).  Only a
 * client of the same user (or root, checked with SO_PEERCRED) is served.
 * Sockets left by crashed processes are removed by the next server or
 * status client that finds nobody answering on them (srm_control_sweep).
 *
 * The protocol: the client sends one request line and the server answers,
 * then closes.
 *   "status\n"  one JSON document (what `srmudp status` reads).
 *   "reload\n"  read the configuration again; one line back, "ok: ..." or
 *               "error: ..." (`srmudp reload`).
 * A client that sends nothing within CONTROL_REQUEST_WAIT_MS, or closes
 * its side at once, asks for status: clients from before requests existed
 * (and `socat - UNIX-CONNECT:...` by hand) still work.  A request is at
 * most CONTROL_REQUEST_MAX bytes; anything else is answered "error:
 * unknown request ...".
 *
 * Single-threaded: each server answers from its own loop, which owns the
 * state the answers describe or change.
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

/* A request line, newline included: longer ones are refused. */
#define CONTROL_REQUEST_MAX 64
/* How long a client may take to send its request (the clients send it
 * right after connect(); this only bounds a silent one). */
#define CONTROL_REQUEST_WAIT_MS 250

enum control_request {
	CONTROL_STATUS,
	CONTROL_RELOAD,
	CONTROL_BAD,
};

/* What the client sent, len bytes (maybe none, maybe cut at
 * CONTROL_REQUEST_MAX): the request it makes.  Pure. */
enum control_request control_request_parse(const char *buf, size_t len);

/* How a server answers.  status writes the JSON document; reload does the
 * reload and writes its one line ("ok: ...\n" or "error: ...\n").  Both
 * run in the server's loop thread, without any lock of the caller's. */
struct control_ops {
	void (*status)(struct json_out *out, void *ctx);
	void (*reload)(struct json_out *out, void *ctx);
};

/* Serve the clients waiting on the listening fd (call when it is
 * readable): each is read for its request (waiting at most
 * CONTROL_REQUEST_WAIT_MS) and answered. */
void control_serve(int fd, const struct control_ops *ops, void *ctx);

/* Every document begins so: {"pid":N,"program":"NAME" (no closing brace). */
void control_doc_begin(struct json_out *out);

/* Remove the socket named by path (if any) and clear path. */
void control_remove(char *path);

#endif
