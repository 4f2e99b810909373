/*
 * ends.h — how streams ended, readable by other processes.
 *
 * A stream reset by the peer reaches the application as a plain EOF (the
 * engine closes its end of the socket pair); TCP would say ECONNRESET.  The
 * preload turns the EOF back into the error by asking the engine how the
 * stream ended.  A forked child or an exec'd image holding the stream
 * cannot ask the parent's engine (no thread, no lock of its own), so the
 * record lives in a small shared file, RUNDIR/PID.ends, that the engine
 * writes and the holders map.  TCP reports a reset once per socket, to
 * whichever process asks first; so does the board (ends_take).
 */
#ifndef SRM_ENDS_H
#define SRM_ENDS_H

#include <stdint.h>
#include <sys/types.h>

/* Entries kept: the newest ends win; an older one reads as "not known". */
#define ENDS_RING 4096

struct ends_board;

/* The engine's own board (in this process's runtime-dir file when it can
 * have one, else in private memory).  NULL only when out of memory. */
struct ends_board *ends_create(void);
/* Unmap; remove the file if this process owns it. */
void ends_destroy(struct ends_board *b);
/* Record that stream handle ended with error (a negative SRM_ERR_*). */
void ends_record(struct ends_board *b, uint64_t handle, int error);
/* The error handle ended with, or 0 if not recorded.  Lock-free. */
int ends_lookup(const struct ends_board *b, uint64_t handle);
/* The same, but only to the first caller in any process. */
int ends_take(struct ends_board *b, uint64_t handle);
/* Map the board of the engine in process pid, or NULL. */
struct ends_board *ends_attach(pid_t pid);

#endif
