/*
 * keyfile.c — private key files, public key text, and srm_strerror.
 *
 * A key file holds one line: the 32-byte X25519 private key in unpadded
 * URL-safe base64 (43 characters), then a newline.  It is created 0600
 * with O_EXCL (never overwriting), and refused at load time when group or
 * others have any access or someone else owns it, like ssh does for
 * private keys.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "srmudp.h"

/* A key line is 43 characters; allow whitespace and CRLF around it. */
#define KEYFILE_MAX_BYTES 256

const char *srm_strerror(int err)
{
	switch (err) {
	case SRM_OK: return "success";
	case SRM_ERR_INVALID: return "invalid argument or input";
	case SRM_ERR_NOMEM: return "out of memory or a limit was reached";
	case SRM_ERR_IO: return "system call failed";
	case SRM_ERR_AUTH: return "authentication failed";
	case SRM_ERR_REFUSED: return "connection refused by the peer";
	case SRM_ERR_TIMEOUT: return "timed out";
	case SRM_ERR_RESET: return "reset by the peer";
	case SRM_ERR_UNREACHABLE: return "peer unreachable (handshake failed)";
	case SRM_ERR_VERSION: return "protocol version or capability mismatch";
	case SRM_ERR_NOTFOUND: return "not found";
	case SRM_ERR_EXISTS: return "already exists";
	case SRM_ERR_PERM: return "permission problem";
	case SRM_ERR_AGAIN: return "not yet, try again";
	case SRM_ERR_CLOSED: return "closed";
	default: return "unknown error";
	}
}

void srm_pubkey_encode(const uint8_t pub[SRM_KEY_BYTES], char text[SRM_PUBKEY_TEXT_BYTES])
{
	sodium_bin2base64(text, SRM_PUBKEY_TEXT_BYTES, pub, SRM_KEY_BYTES,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* Exactly 43 characters of unpadded URL-safe base64 (no trailing junk). */
static int decode32(const char *text, size_t len, uint8_t out[SRM_KEY_BYTES])
{
	size_t bin_len = 0;
	const char *end = NULL;
	if (len != SRM_PUBKEY_TEXT_LEN)
		return SRM_ERR_INVALID;
	if (sodium_base642bin(out, SRM_KEY_BYTES, text, len, NULL, &bin_len, &end,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    bin_len != SRM_KEY_BYTES || end != text + len)
		return SRM_ERR_INVALID;
	/* One key, one text: libsodium 1.0.18 also accepts some bytes
	 * outside the alphabet and unused trailing bits, so only the
	 * canonical encoding of what was decoded is taken. */
	char canon[SRM_PUBKEY_TEXT_BYTES];
	sodium_bin2base64(canon, sizeof(canon), out, SRM_KEY_BYTES,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if (memcmp(canon, text, SRM_PUBKEY_TEXT_LEN) != 0) {
		sodium_memzero(out, SRM_KEY_BYTES);
		return SRM_ERR_INVALID;
	}
	return 0;
}

int srm_pubkey_decode(const char *text, uint8_t pub[SRM_KEY_BYTES])
{
	if (!text)
		return SRM_ERR_INVALID;
	return decode32(text, strlen(text), pub);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int srm_key_generate(const char *path, char pub_text[SRM_PUBKEY_TEXT_BYTES])
{
	uint8_t secret[SRM_KEY_BYTES], pub[SRM_KEY_BYTES];
	char line[SRM_PUBKEY_TEXT_BYTES + 1];

	if (!path || !*path)
		return SRM_ERR_INVALID;
	if (sodium_init() < 0)
		return SRM_ERR_IO;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return errno == EEXIST ? SRM_ERR_EXISTS : SRM_ERR_IO;
	do {
		randombytes_buf(secret, sizeof(secret));
	} while (crypto_scalarmult_base(pub, secret) != 0);
	srm_pubkey_encode(secret, line);
	size_t n = strlen(line);
	line[n++] = '\n';
	int rc = 0;
	/* umask may have left less than 0600 (harmless) but never more. */
	if (fchmod(fd, 0600) != 0 || write_all(fd, line, n) != 0 || fsync(fd) != 0)
		rc = SRM_ERR_IO;
	int saved = errno;
	if (close(fd) != 0 && rc == 0) {
		rc = SRM_ERR_IO;
		saved = errno;
	}
	if (rc != 0) {
		unlink(path);
	} else if (pub_text) {
		srm_pubkey_encode(pub, pub_text);
	}
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(line, sizeof(line));
	errno = saved;
	return rc;
}

int srm_key_load(const char *path, uint8_t secret[SRM_KEY_BYTES], uint8_t pub[SRM_KEY_BYTES],
		 char *err, size_t errlen)
{
	char buf[KEYFILE_MAX_BYTES + 1];
	struct stat st;
	int rc = SRM_ERR_IO;

	if (err && errlen)
		err[0] = '\0';
	if (!path || !*path) {
		if (err)
			snprintf(err, errlen, "no key file given");
		return SRM_ERR_INVALID;
	}
	if (sodium_init() < 0)
		return SRM_ERR_IO;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (err)
			snprintf(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
		return SRM_ERR_IO;
	}
	/* fstat the opened file, so a swapped path cannot dodge the check. */
	if (fstat(fd, &st) != 0) {
		if (err)
			snprintf(err, errlen, "cannot stat key file %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		if (err)
			snprintf(err, errlen, "key file %s is not a regular file", path);
		rc = SRM_ERR_INVALID;
		goto out;
	}
	if (st.st_uid != geteuid()) {
		if (err)
			snprintf(err, errlen,
				 "key file %s is owned by uid %u, not by you (uid %u); refusing it",
				 path, (unsigned)st.st_uid, (unsigned)geteuid());
		rc = SRM_ERR_PERM;
		goto out;
	}
	if (st.st_mode & 077) {
		if (err)
			snprintf(err, errlen,
				 "key file %s has mode %04o: group or others can access it; "
				 "refusing it (run: chmod 600 %s)",
				 path, (unsigned)(st.st_mode & 07777), path);
		rc = SRM_ERR_PERM;
		goto out;
	}
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			if (err)
				snprintf(err, errlen, "cannot read key file %s: %s", path,
					 strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == sizeof(buf) - 1)
			break;
	}
	buf[n] = '\0';
	size_t a = 0, b = n;
	while (a < b && strchr(" \t\r\n", buf[a]))
		a++;
	while (b > a && strchr(" \t\r\n", buf[b - 1]))
		b--;
	rc = SRM_ERR_INVALID;
	if (n == sizeof(buf) - 1 || decode32(buf + a, b - a, secret) != 0) {
		if (err)
			snprintf(err, errlen,
				 "key file %s does not hold a key (one line of 43 base64url "
				 "characters, as srmudp keygen writes)", path);
		goto out;
	}
	if (crypto_scalarmult_base(pub, secret) != 0) {
		sodium_memzero(secret, SRM_KEY_BYTES);
		if (err)
			snprintf(err, errlen, "key file %s holds an unusable key", path);
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(buf, sizeof(buf));
	close(fd);
	return rc;
}
