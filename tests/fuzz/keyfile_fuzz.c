/*
 * keyfile_fuzz.c — libFuzzer harness for key files and public keys as
 * text (core/config/keyfile.c): srm_key_load on fuzzed file contents (a private
 * file of ours, so the contents, not the mode, decide), and
 * srm_pubkey_decode on the same bytes as a string.
 *
 * Checked: a load either fails with a one-line message naming the file,
 * or yields a secret whose public key matches, and the key's text form
 * round-trips; a decoded public key re-encodes to the same 43 characters.
 *
 *   tests/fuzz/run.sh 60 keyfile_fuzz
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "srmudp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	uint8_t secret[SRM_KEY_BYTES], pub[SRM_KEY_BYTES], check[SRM_KEY_BYTES];
	char err[512], text[SRM_PUBKEY_TEXT_BYTES];

	if (path[0] == '\0') {
		if (sodium_init() < 0)
			abort();
		snprintf(path, sizeof(path), "/tmp/srmudp-keyfile-fuzz-%d.key", (int)getpid());
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	close(fd);
	err[0] = '\0';
	int rc = srm_key_load(path, secret, pub, err, sizeof(err));
	if (rc == 0) {
		crypto_scalarmult_base(check, secret);
		if (memcmp(check, pub, sizeof(pub)) != 0)
			abort();
		srm_pubkey_encode(pub, text);
		if (strlen(text) != SRM_PUBKEY_TEXT_LEN || srm_pubkey_decode(text, check) != 0 ||
		    memcmp(check, pub, sizeof(pub)) != 0)
			abort();
	} else if (rc == SRM_ERR_PERM || rc == SRM_ERR_INVALID) {
		if (strstr(err, path) == NULL || strchr(err, '\n') != NULL)
			abort(); /* one line naming the file */
	}
	sodium_memzero(secret, sizeof(secret));

	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (srm_pubkey_decode(s, pub) == 0) {
		srm_pubkey_encode(pub, text);
		if (strcmp(text, s) != 0)
			abort(); /* one key, one text: no malleable encodings */
	}
	free(s);
	return 0;
}
