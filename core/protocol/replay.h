/*
 * replay.h — sliding replay window for packet numbers (RFC 6479).
 *
 * A ring of REPLAY_BITS bits kept as 64-bit words; advancing the window
 * clears whole words, so each packet costs O(1) however far it jumps.  The
 * usable window is REPLAY_BITS - 64 packets behind the highest accepted
 * number (WireGuard keeps the same 8192-bit ring).
 */
#ifndef SRMUDP_REPLAY_H
#define SRMUDP_REPLAY_H

#include <stdint.h>

#define REPLAY_BITS 8192
#define REPLAY_WORDS (REPLAY_BITS / 64)
#define REPLAY_WINDOW (REPLAY_BITS - 64) /* packets reliably tracked behind the top */

struct replay_window {
	uint64_t top;    /* highest number accepted + 1; 0: none yet */
	uint64_t bits[REPLAY_WORDS];
};

void replay_init(struct replay_window *r);
/* May pn still be accepted?  Read-only: call it before spending an AEAD
 * open on the packet.  Returns 0, or -1 for a replay or a number too old. */
int replay_check(const struct replay_window *r, uint64_t pn) __attribute__((warn_unused_result));
/* Mark pn seen after the packet authenticated.  Returns 0, or -1 if it was
 * seen already or is too old (then nothing changes). */
int replay_accept(struct replay_window *r, uint64_t pn) __attribute__((warn_unused_result));

#endif
