/*
 * tls.h — a TLS client as a byte transformer (OpenSSL over memory BIOs),
 * for wss:// relays.
 *
 * The driver moves every byte itself (sys_recv / sys_send on its own
 * socket): OpenSSL never touches a file descriptor, so none of its reads
 * or writes can land in the preload's hooks, and the connection's state
 * machine stays in engine_ws.c.  Ciphertext from the network goes in with
 * tls_feed; ciphertext for the network comes out with tls_take.
 */
#ifndef SRMUDP_TLS_H
#define SRMUDP_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tls;

/* A client for host (certificate name check; SNI unless host is an IP
 * address), trusting ca_file or, when it is NULL or "", the system's
 * CAs.  NULL with a line in err. */
struct tls *tls_client_new(const char *host, const char *ca_file, char *err, size_t errlen);
void tls_free(struct tls *t);

/* Ciphertext that came from the network.  0, or -1 (out of memory). */
int tls_feed(struct tls *t, const uint8_t *p, size_t n);
/* Drive the handshake: 1 done, 0 waiting for the network, -1 failed
 * (certificate, protocol: the reason in err). */
int tls_handshake(struct tls *t, char *err, size_t errlen);
/* Plaintext that arrived: > 0 bytes, 0 none now, -1 the peer closed or
 * the stream is corrupt. */
ssize_t tls_read(struct tls *t, uint8_t *out, size_t cap);
/* Plaintext to send (after the handshake): 0, or -1. */
int tls_write(struct tls *t, const uint8_t *p, size_t n);
/* Ciphertext waiting for the network, at most cap bytes of it: how many. */
size_t tls_take(struct tls *t, uint8_t *out, size_t cap);

#endif
