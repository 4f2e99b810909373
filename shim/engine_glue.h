/*
 * engine_glue.h — the one engine of this process, started lazily.
 *
 * With neither SRMUDP_PEERS nor SRMUDP_CONFIG in the environment the shim
 * is inert: every call passes straight through.  Otherwise the
 * configuration is parsed on first need (a name lookup, a connect to a
 * virtual address, a listen) and the engine is started on the first
 * designated connect or listen, or at load time by warmup.c.  A configuration
 * or start error is printed once to stderr; the designated operation then
 * fails with the errno the caller chooses.
 */
#ifndef SHIM_ENGINE_GLUE_H
#define SHIM_ENGINE_GLUE_H

#include "srmudp.h"

/* True when SRMUDP_PEERS or SRMUDP_CONFIG is set (cheap, cached). */
int glue_enabled(void);
/* True while this thread parses the configuration or starts the engine:
 * the calls it makes are the engine's, not the program's. */
int glue_busy(void);
/* The parsed configuration, or NULL (error already reported once). */
const struct srm_config *glue_config(void);
/* The peer index for a name (NAME or NAME.srmudp), or -1.  Once the engine
 * runs, its indices (a reload adds and removes peers; those that stay
 * keep theirs); before, the position in the configuration, which is what
 * the engine starts with. */
int glue_peer_index(const char *name);
/* Name of peer index idx (in a per-thread buffer, or the configuration),
 * or NULL: none, or removed by a reload. */
const char *glue_peer_name(int idx);
/* The running engine, started now if needed; NULL on failure. */
srm_engine *glue_engine(void);
/* warmup.c: start the engine now, unless the program is exiting already
 * (a short-lived program may be done before its warm-up begins). */
void glue_warm_up(void);
/* The running engine if it was started, without starting it. */
srm_engine *glue_engine_if_running(void);
/* idx itself while the engine has that peer, else SRM_ERR_NOTFOUND. */
int glue_engine_peer(srm_engine *e, int idx);
/* True when fd belongs to the engine: close/dup2/close_range keep off. */
int glue_fd_is_engine(int fd);
/* The ends board of the engine in process pid (cached), or NULL: for
 * streams an exec'd image inherited. */
srm_ends *glue_ends(pid_t pid);
void glue_log(enum srm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* name is no peer's: if it is one edit from one (a typo), say so at info. */
void glue_peer_hint(const char *name);

/* The configured UDP port (SRMUDP_LISTEN), 0 when ephemeral. */
int glue_fixed_udp_port(void);

/* fork handling (fork.c). */
void glue_lock(void);
void glue_unlock(void);
void glue_child_after_fork(void);
/* Start the engine in a forked child that inherited listeners; retried by
 * fork.c until the configured UDP port is free.  Returns 0 or an error. */
int glue_start_for_listeners(void);
/* Cheap probe (one bind): could the configured UDP port be bound now? */
int glue_udp_port_free(void);

#endif
