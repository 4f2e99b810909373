/*
 * cli.h — what the srmudp subcommands share: the dispatch entry points and
 * a few helpers (tools/cli.c).  Tools include the public srmudp.h and,
 * for what the engine and the tools share, a few core headers (quote.h:
 * bad input is quoted as the configuration errors quote it).
 *
 * Exit codes, common to every subcommand:
 *   0 success, 1 runtime or configuration error, 2 usage error.
 * Subcommands document any others in their --help.
 */
#ifndef SRMUDP_CLI_H
#define SRMUDP_CLI_H

#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>

#include "quote.h"
#include "srmudp.h"

#define EXIT_CONFIG 1
#define EXIT_USAGE 2

int cmd_keygen(int argc, char **argv);
int cmd_pubkey(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_gate(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_rendezvous(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_reload(int argc, char **argv);

/* "srmudp" or "srmudp CMD": the prefix of every message. */
extern const char *cli_name;

/* "srmudp CMD: message" on stderr, one line. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* SIGHUP, SIGINT and SIGTERM no longer kill: each writes its number to a
 * pipe, whose read end (non-blocking) this returns for the caller's poll
 * loop, so that it can end its streams properly.  -1 on failure. */
int cli_signal_pipe(void);

/* 1 if argv[1..] asks for help (-h / --help before any "--"). */
int cli_wants_help(int argc, char **argv);

/* A port 1..65535 in decimal; 0 or SRM_ERR_INVALID. */
int cli_parse_port(const char *s, uint16_t *port);

/* "HOST:PORT" or "[V6]:PORT" into a socket address.  numeric: addresses
 * only, for binding (a server binds what it is told); else names are
 * resolved once.  0 or SRM_ERR_INVALID. */
int cli_parse_hostport(const char *s, int numeric, struct sockaddr_storage *ss, socklen_t *len);

/*
 * Everything an engine-starting subcommand checks before doing anything:
 * srm_config_from_env(), SRMUDP_KEY set, the key file loads (mode, owner,
 * format), no peer carries this host's own key, the log file can be
 * opened.  On failure prints the one-line error and returns nonzero (the
 * config is then released).  pub gets this host's public key.
 */
int cli_load_config(struct srm_config *cfg, uint8_t pub[SRM_KEY_BYTES]);

/* What connect, forward and serve do before their work: cli_load_config,
 * SIGPIPE ignored, the log opened where SRMUDP_LOG / SRMUDP_LOG_FILE say
 * (the engine logs through it), the engine started.  *idle_ms (when not
 * NULL) gets SRMUDP_IDLE_TIMEOUT, for the drain at the end.  On failure
 * prints the one-line error and returns nonzero. */
int cli_start_engine(srm_engine **e, uint32_t *idle_ms);

/* Daemons (serve, gate): block SIGINT, SIGTERM and SIGHUP before the
 * engine thread exists, so it inherits the mask; then wait for them,
 * reloading the configuration on SIGHUP (srm_engine_reload, what `srmudp
 * reload` does; a bad one changes nothing, one line either way) and
 * returning on the others. */
void cli_block_signals(sigset_t *stop);
void cli_run_until_stopped(srm_engine *e, const sigset_t *stop);

/* The configured name behind what a user (or ssh's %h) typed: case folded,
 * as srm_config stores names, and "NAME.srmudp" or "NAME." accepted as the
 * preload accepts them.  0, or -1 when it cannot be a peer name. */
int cli_peer_name(const char *arg, char name[SRM_PEER_NAME_MAX + 1]);

#endif
