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
#include "rdv_ws.h"

static void help(FILE *f)
{
	fprintf(f,
		"Usage: srmudp gate [--ws-listen ADDR:PORT ... [--tls-cert FILE --tls-key FILE]]\n\n"
		"Introduce and relay for the members listed in SRMUDP_PEERS: each registers\n"
		"with the gate under its key (pinned: the gate's public key in the member's\n"
		"SRMUDP_PEERS, its name in the member's SRMUDP_GATES), learns its public\n"
		"address, finds the other members, punches through to them, and falls back to\n"
		"the gate's relay, which carries end-to-end encrypted packets only.  Keys\n"
		"not in SRMUDP_PEERS can neither register nor look anyone up.\n"
		"  --ws-listen ADDR:PORT  also take members over WebSocket (TCP, path /srmudp),\n"
		"                         for members whose network blocks UDP: they set\n"
		"                         SRMUDP_RELAY=ws://HOST:PORT/srmudp (at most %d)\n"
		"  --tls-cert FILE        PEM certificate chain: serve wss:// (with --tls-key)\n"
		"  --tls-key FILE         PEM private key of --tls-cert\n"
		"Needs SRMUDP_KEY, SRMUDP_PEERS and a reachable SRMUDP_LISTEN (a fixed UDP\n"
		"port).  Runs until SIGINT or SIGTERM; SIGHUP (or `srmudp reload`) reads the\n"
		"configuration again.\n", RDV_WS_MAX_LISTEN);
}

int cmd_gate(int argc, char **argv)
{
	char q[QUOTE_BUF], err[512];
	srm_engine *e = NULL;
	sigset_t stop;
	const char *ws[RDV_WS_MAX_LISTEN], *cert = NULL, *key = NULL;
	struct sockaddr_storage ws_addr[RDV_WS_MAX_LISTEN];
	socklen_t ws_len[RDV_WS_MAX_LISTEN];
	size_t nws = 0;

	if (cli_wants_help(argc, argv)) {
		help(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(opt, "--ws-listen") != 0 && strcmp(opt, "--tls-cert") != 0 &&
		    strcmp(opt, "--tls-key") != 0) {
			cli_error("unexpected argument %s", quote_str(q, opt));
			help(stderr);
			return EXIT_USAGE;
		}
		if (val == NULL) {
			cli_error("%s needs a value", opt);
			return EXIT_USAGE;
		}
		i++;
		if (strcmp(opt, "--tls-cert") == 0) {
			cert = val;
		} else if (strcmp(opt, "--tls-key") == 0) {
			key = val;
		} else if (nws == RDV_WS_MAX_LISTEN) {
			cli_error("at most %d --ws-listen addresses", RDV_WS_MAX_LISTEN);
			return EXIT_USAGE;
		} else if (cli_parse_hostport(val, 1, &ws_addr[nws], &ws_len[nws]) != 0) {
			cli_error("--ws-listen: bad address %s (expected ADDR:PORT or [IPv6]:PORT)",
				  quote_str(q, val));
			return EXIT_USAGE;
		} else {
			ws[nws++] = val;
		}
	}
	if (!cert != !key) {
		cli_error("--tls-cert and --tls-key go together");
		return EXIT_USAGE;
	}
	if (cert && !nws) {
		cli_error("--tls-cert and --tls-key need --ws-listen");
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
	for (size_t i = 0; i < nws; i++)
		if (srm_engine_gate_ws_listen(e, (const struct sockaddr *)&ws_addr[i], ws_len[i], ws[i],
					      cert, key, err, sizeof(err)) != 0) {
			cli_error("%s", err);
			srm_engine_stop(e);
			return EXIT_CONFIG;
		}
	fprintf(stderr, "%s: gate on UDP port %d", cli_name, srm_engine_udp_port(e));
	for (size_t i = 0; i < nws; i++)
		fprintf(stderr, "%s %s://%s/srmudp", i ? "," : "; WebSocket on", cert ? "wss" : "ws",
			ws[i]);
	fprintf(stderr, "\n");
	cli_run_until_stopped(e, &stop);
	srm_engine_stop(e);
	return 0;
}
