/*
 * tls.c — see tls.h.  OpenSSL does the TLS; this file only keeps it away
 * from file descriptors.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct tls {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *in, *out; /* network -> SSL, SSL -> network */
};

static void reason(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "unknown error";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, buf);
	ERR_clear_error();
}

static int is_ip_literal(const char *host)
{
	uint8_t buf[16];
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

struct tls *tls_client_new(const char *host, const char *ca_file, char *err, size_t errlen)
{
	struct tls *t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ctx) {
		reason(err, errlen, "TLS");
		goto fail;
	}
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	if (ca_file && ca_file[0]) {
		if (SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) != 1) {
			reason(err, errlen, "SRMUDP_RELAY_CA");
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
		reason(err, errlen, "the system's CAs");
		goto fail;
	}
	t->ssl = SSL_new(t->ctx);
	t->in = BIO_new(BIO_s_mem());
	t->out = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->in || !t->out) {
		BIO_free(t->in);
		BIO_free(t->out);
		t->in = t->out = NULL;
		reason(err, errlen, "TLS");
		goto fail;
	}
	SSL_set_bio(t->ssl, t->in, t->out); /* the SSL owns them now */
	/* A memory BIO that is empty means "wait", not end of file. */
	BIO_set_mem_eof_return(t->in, -1);
	int ok;
	if (is_ip_literal(host)) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
		ok = X509_VERIFY_PARAM_set1_ip_asc(vp, host);
	} else {
		ok = SSL_set_tlsext_host_name(t->ssl, host) && SSL_set1_host(t->ssl, host);
	}
	if (ok != 1) {
		reason(err, errlen, "TLS host name");
		goto fail;
	}
	SSL_set_connect_state(t->ssl);
	return t;
fail:
	tls_free(t);
	return NULL;
}

void tls_free(struct tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl); /* and its BIOs */
	SSL_CTX_free(t->ctx);
	free(t);
}

int tls_feed(struct tls *t, const uint8_t *p, size_t n)
{
	return n == 0 || BIO_write(t->in, p, (int)n) == (int)n ? 0 : -1;
}

int tls_handshake(struct tls *t, char *err, size_t errlen)
{
	int rc = SSL_do_handshake(t->ssl);
	if (rc == 1)
		return 1;
	int e = SSL_get_error(t->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	long v = SSL_get_verify_result(t->ssl);
	if (v != X509_V_OK)
		snprintf(err, errlen, "TLS: certificate not trusted: %s",
			 X509_verify_cert_error_string(v));
	else
		reason(err, errlen, "TLS handshake");
	return -1;
}

ssize_t tls_read(struct tls *t, uint8_t *out, size_t cap)
{
	int n = SSL_read(t->ssl, out, (int)cap);
	if (n > 0)
		return n;
	int e = SSL_get_error(t->ssl, n);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	ERR_clear_error();
	return -1;
}

int tls_write(struct tls *t, const uint8_t *p, size_t n)
{
	/* A memory BIO takes everything: a write never stops half way. */
	if (n == 0)
		return 0;
	if (SSL_write(t->ssl, p, (int)n) == (int)n)
		return 0;
	ERR_clear_error();
	return -1;
}

size_t tls_take(struct tls *t, uint8_t *out, size_t cap)
{
	int n = BIO_read(t->out, out, (int)cap);
	return n > 0 ? (size_t)n : 0;
}
