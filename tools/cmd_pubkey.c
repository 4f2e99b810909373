/*
 * cmd_pubkey.c — srmudp pubkey FILE: the public key of a private key file.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void help(FILE *f)
{
	fprintf(f, "Usage: srmudp pubkey FILE\n\n"
		   "Print the public key of the private key in FILE.  The file must be readable\n"
		   "by its owner only (chmod 600).\n");
}

int cmd_pubkey(int argc, char **argv)
{
	uint8_t secret[SRM_KEY_BYTES], pub[SRM_KEY_BYTES];
	char text[SRM_PUBKEY_TEXT_BYTES], err[512], q[QUOTE_BUF];
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
	err[0] = '\0';
	rc = srm_key_load(argv[1], secret, pub, err, sizeof(err));
	explicit_bzero(secret, sizeof(secret));
	if (rc != 0) {
		cli_error("%s", err[0] ? err : srm_strerror(rc));
		return EXIT_CONFIG;
	}
	srm_pubkey_encode(pub, text);
	printf("%s\n", text);
	return fflush(stdout) == 0 ? 0 : EXIT_CONFIG;
}
