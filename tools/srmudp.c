/*
 * srmudp.c — the srmudp command: a table of subcommands, one file each
 * (tools/cmd_*.c), in the manner of wireguard-tools' wg.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "wire.h" /* WIRE_VERSION, for --version */

#ifndef SRMUDP_VERSION
#define SRMUDP_VERSION "0.1.0"
#endif

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "keygen", cmd_keygen, "Create a private key file and print its public key" },
	{ "pubkey", cmd_pubkey, "Print the public key of a private key file" },
	{ "run", cmd_run, "Run a program with its peer connections carried by srmudp" },
	{ "serve", cmd_serve, "Expose local TCP ports to the configured peers" },
	{ "gate", cmd_gate, "Introduce and relay for the configured peers (a group's own rendezvous)" },
	{ "connect", cmd_connect, "Bridge stdin/stdout to a port on a peer (ssh ProxyCommand)" },
	{ "forward", cmd_forward, "Forward a local TCP port to a port on a peer (like ssh -L)" },
	{ "rendezvous", cmd_rendezvous, "Run the rendezvous and relay server (NAT traversal)" },
	{ "status", cmd_status, "Show the running engines: peers, paths, RTT, streams, drops" },
	{ "reload", cmd_reload, "Make the running engines read their configuration again" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: srmudp COMMAND [ARGS...]\n\n"
		   "Authenticated, encrypted, reliable streams to pinned peers over UDP.\n\n"
		   "Commands:\n");
	int width = 0;

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if ((int)strlen(commands[i].name) > width)
			width = (int)strlen(commands[i].name);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-*s  %s\n", width, commands[i].name, commands[i].help);
	fprintf(f, "\n`srmudp COMMAND --help` describes a command; `srmudp --version` prints the\n"
		   "version.  Configuration comes from SRMUDP_* variables or SRMUDP_CONFIG\n"
		   "(see docs/CONFIG.md).\n");
}

int main(int argc, char **argv)
{
	static char name[64];
	char q[QUOTE_BUF];

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("srmudp %s (protocol version %d)\n", SRMUDP_VERSION, WIRE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0) {
			snprintf(name, sizeof(name), "srmudp %s", commands[i].name);
			cli_name = name;
			return commands[i].fn(argc - 1, argv + 1);
		}
	}
	cli_error("unknown command %s (try: srmudp --help)", quote_str(q, argv[1]));
	return EXIT_USAGE;
}
