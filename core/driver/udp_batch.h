/*
 * udp_batch.h — datagrams queued, then sent together: one sendmmsg per run
 * of one socket, and UDP GSO for runs of equal-sized datagrams to one
 * address (one message with a UDP_SEGMENT size, which the kernel cuts late
 * in the stack for a fraction of a send path per datagram).  The engine's
 * socket uses it, and so does `srmudp rendezvous`, whose relay carried one
 * stream twice as fast with GSO (docs/BENCHMARKS.md, section 6).
 */
#ifndef SRMUDP_UDP_BATCH_H
#define SRMUDP_UDP_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* 64 datagrams: one GSO message at most (the kernel's segment limit). */
#define UDP_BATCH_MAX 64
/* Room for any datagram either user sends (the engine's packets and the
 * rendezvous server's RDV_MAX_PACKET). */
#define UDP_BATCH_BUF 2048

struct udp_batch {
	unsigned count;
	bool gso_off; /* one datagram per message: asked for, or refused once */
	int fd[UDP_BATCH_MAX];
	struct sockaddr_storage addr[UDP_BATCH_MAX];
	socklen_t addr_len[UDP_BATCH_MAX];
	struct iovec iov[UDP_BATCH_MAX];
	uint8_t buf[UDP_BATCH_MAX][UDP_BATCH_BUF];
	/* udp_batch_flush's messages: one per run sent together. */
	struct mmsghdr msgs[UDP_BATCH_MAX];
	unsigned first[UDP_BATCH_MAX], segs[UDP_BATCH_MAX];
	union { /* aligned for struct cmsghdr */
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl[UDP_BATCH_MAX];
};

/* A datagram the kernel refused (it is dropped, as a router would): where
 * it was going, and errno. */
typedef void udp_batch_failed_fn(void *ctx, const struct sockaddr_storage *to, int err);

/* The next free buffer (UDP_BATCH_BUF bytes), or NULL when the batch is
 * full: flush first. */
uint8_t *udp_batch_slot(struct udp_batch *b);
/* Queue the len bytes written to the last slot, for fd to `to`. */
void udp_batch_commit(struct udp_batch *b, int fd, const struct sockaddr_storage *to,
		      socklen_t tolen, size_t len);
/* Send everything queued; failed (may be NULL) hears of each datagram
 * refused.  Returns the datagrams the kernel took. */
uint64_t udp_batch_flush(struct udp_batch *b, udp_batch_failed_fn *failed, void *ctx);

#endif
