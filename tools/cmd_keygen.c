/*
 * cmd_keygen.c — srmudp keygen FILE: a new identity.
 *
 * The private key goes to FILE (mode 0600, never overwriting); the public
 * key is printed alone on stdout so that `PUB=$(srmudp keygen k)` works.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void help(FILE *f)
{
	fprintf(f, "Usage: srmudp keygen FILE\n\n"
		   "Create a new private key in FILE (mode 0600) and print its public key, one\n"
		   "token to paste into the peers' SRMUDP_PEERS.  An existing FILE is never\n"
		   "overwritten.\n");
}

int cmd_keygen(int argc, char **argv)
{
	char pub[SRM_PUBKEY_TEXT_BYTES], q[QUOTE_BUF];
	int rc;

	if (cli_wants_help(argc, argv)) {
		help(stdout);
		return 0;
	}
	if (argc != 2 || argv[1][0] == '\0' || (argv[1][0] == '-' && argv[1][1] != '\0')) {
		if (argc >= 2 && argv[1][0] == '-')
			cli_error("unknown option %s", quote_str(q, argv[1]));
		help(stderr);
		return EXIT_USAGE;
	}
	rc = srm_key_generate(argv[1], pub);
	if (rc == SRM_ERR_EXISTS) {
		cli_error("%s already exists; refusing to overwrite it", quote_str(q, argv[1]));
		return EXIT_CONFIG;
	}
	if (rc != 0) {
		cli_error("cannot create %s: %s", quote_str(q, argv[1]),
			  rc == SRM_ERR_IO ? strerror(errno) : srm_strerror(rc));
		return EXIT_CONFIG;
	}
	printf("%s\n", pub);
	return fflush(stdout) == 0 ? 0 : EXIT_CONFIG;
}
