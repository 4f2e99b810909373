/*
 * cmd_gate.c — srmudp gate: an engine that only introduces and relays for
 * the members in SRMUDP_PEERS (docs/NAT.md "Gates").  It is the engine of
 * any program with SRMUDP_GATE=on, without a program: run it on a host
 * members can reach (a public address or a forwarded UDP port, given in
 * SRMUDP_LISTEN), and name it in the members' SRMUDP_GATES.  Runs until
 * SIGINT or SIGTERM; SIGHUP (or `srmudp reload`) reads the configuration
 * again, so members can be added and removed live.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help(FILE *f)
{
	fprintf(f,
		"Usage: srmudp gate\n\n"
		"Introduce and relay for the members listed in SRMUDP_PEERS: each registers\n"
		"with the gate under its key (pinned: the gate's public key in the member's\n"
		"SRMUDP_PEERS, its name in the member's SRMUDP_GATES), learns its public\n"
		"address, finds the other members, punches through to them, and falls back to\n"
		"the gate's relay, which carries end-to-end encrypted packets only.  Keys\n"
		"not in SRMUDP_PEERS can neither register nor look anyone up.\n"
		"Needs SRMUDP_KEY, SRMUDP_PEERS and a reachable SRMUDP_LISTEN (a fixed UDP\n"
		"port).  Runs until SIGINT or SIGTERM; SIGHUP (or `srmudp reload`) reads the\n"
		"configuration again.\n");
}

int cmd_gate(int argc, char **argv)
{
	char q[QUOTE_BUF];
	srm_engine *e = NULL;
	sigset_t stop;

	if (cli_wants_help(argc, argv)) {
		help(stdout);
		return 0;
	}
	if (argc > 1) {
		cli_error("unexpected argument %s", quote_str(q, argv[1]));
		help(stderr);
		return EXIT_USAGE;
	}
	if (!getenv("SRMUDP_LISTEN")) {
		cli_error("SRMUDP_LISTEN: not set (a gate needs a fixed UDP port members can reach)");
		return EXIT_CONFIG;
	}
	setenv("SRMUDP_GATE", "on", 1);
	cli_block_signals(&stop);
	if (cli_start_engine(&e, NULL) != 0)
		return EXIT_CONFIG;
	fprintf(stderr, "%s: gate on UDP port %d\n", cli_name, srm_engine_udp_port(e));
	cli_run_until_stopped(e, &stop);
	srm_engine_stop(e);
	return 0;
}
