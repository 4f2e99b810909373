/*
 * quote.h — a token quoted for a one-line error message, the one way the
 * configuration, the key files and the srmudp command quote bad input:
 *   "text", '"' and '\' backslashed, other bytes outside printable ASCII as
 *   \xNN, cut after QUOTE_MAX bytes with "...".
 * So a value chosen by someone else can neither break the line nor hide
 * what it really contains.  Internal to srmudp.
 */
#ifndef SRMUDP_QUOTE_H
#define SRMUDP_QUOTE_H

#include <stddef.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Long tokens are cut so the message stays one short line; the buffer
 * holds every byte escaped (\xNN) plus the quotes, "..." and the NUL. */
#define QUOTE_MAX 64
#define QUOTE_BUF (QUOTE_MAX * 4 + 8)

/* s[0..len) quoted into buf; returns buf. */
__attribute__((visibility("hidden"))) const char *quote_bytes(char buf[QUOTE_BUF], const char *s,
							      size_t len);

/* A NUL-terminated s quoted into buf; returns buf. */
static inline const char *quote_str(char buf[QUOTE_BUF], const char *s)
{
	return quote_bytes(buf, s, strlen(s));
}

#ifdef __cplusplus
}
#endif
#endif
