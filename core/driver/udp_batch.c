/*
 * udp_batch.c — sendmmsg with UDP GSO runs (udp_batch.h).
 */
#include "udp_batch.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>

#include "log.h"

/* One message must fit a UDP length field. */
#define GSO_MAX_BYTES 65000

uint8_t *udp_batch_slot(struct udp_batch *b)
{
	return b->count < UDP_BATCH_MAX ? b->buf[b->count] : NULL;
}

void udp_batch_commit(struct udp_batch *b, int fd, const struct sockaddr_storage *to,
		      socklen_t tolen, size_t len)
{
	unsigned i = b->count++;
	b->fd[i] = fd;
	memcpy(&b->addr[i], to, tolen);
	b->addr_len[i] = tolen;
	b->iov[i] = (struct iovec){ b->buf[i], len };
}

static bool same_dest(const struct udp_batch *b, unsigned x, unsigned y)
{
	return b->fd[x] == b->fd[y] && b->addr_len[x] == b->addr_len[y] &&
	       memcmp(&b->addr[x], &b->addr[y], b->addr_len[x]) == 0;
}

/* Messages for the queued datagrams: with GSO, each run of one size (the
 * last may be shorter) to one address is one message. */
static unsigned build(struct udp_batch *b)
{
	unsigned n = 0;
	for (unsigned i = 0; i < b->count; n++) {
		size_t size = b->iov[i].iov_len;
		unsigned j = i + 1;
		while (!b->gso_off && j < b->count && same_dest(b, i, j) &&
		       b->iov[j - 1].iov_len == size && b->iov[j].iov_len <= size &&
		       (j - i + 1) * size <= GSO_MAX_BYTES)
			j++;
		b->msgs[n].msg_hdr = (struct msghdr){
			.msg_name = &b->addr[i],
			.msg_namelen = b->addr_len[i],
			.msg_iov = &b->iov[i],
			.msg_iovlen = j - i,
		};
		if (j - i > 1) {
			struct cmsghdr *cm = &b->ctl[n].align;
			uint16_t gso = (uint16_t)size;
			b->msgs[n].msg_hdr.msg_control = cm;
			b->msgs[n].msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
			memcpy(CMSG_DATA(cm), &gso, sizeof(gso));
		}
		b->first[n] = i;
		b->segs[n] = j - i;
		i = j;
	}
	return n;
}

/* A GSO message the kernel will never take (EIO, EINVAL: no segmentation
 * on this path) rather than one it cannot take now. */
static bool gso_refused(const struct udp_batch *b, unsigned m, int err)
{
	return b->segs[m] > 1 && (err == EIO || err == EINVAL);
}

uint64_t udp_batch_flush(struct udp_batch *b, udp_batch_failed_fn *failed, void *ctx)
{
	uint64_t sent = 0;
	unsigned n = build(b), done = 0;
	while (done < n) {
		unsigned run = done + 1; /* messages for one socket go together */
		while (run < n && b->fd[b->first[run]] == b->fd[b->first[done]])
			run++;
		int k = sendmmsg(b->fd[b->first[done]], &b->msgs[done], run - done, MSG_DONTWAIT);
		if (k > 0) {
			for (unsigned m = done; m < done + (unsigned)k; m++)
				sent += b->segs[m];
			done += (unsigned)k;
			continue;
		}
		if (gso_refused(b, done, errno)) {
			LOG_INFO(NULL, "UDP GSO unavailable here (%s): one datagram per send",
				 strerror(errno));
			/* The rest again, one datagram per message. */
			unsigned from = b->first[done], left = b->count - from;
			memmove(b->fd, b->fd + from, left * sizeof(b->fd[0]));
			memmove(b->addr, b->addr + from, left * sizeof(b->addr[0]));
			memmove(b->addr_len, b->addr_len + from, left * sizeof(b->addr_len[0]));
			for (unsigned i = 0; i < left; i++)
				b->iov[i] = (struct iovec){ b->buf[i], b->iov[from + i].iov_len };
			memmove(b->buf, b->buf + from, left * sizeof(b->buf[0]));
			b->count = left;
			b->gso_off = true;
			return sent + udp_batch_flush(b, failed, ctx);
		}
		/* EAGAIN (buffer full) or a per-destination error such as
		 * EMSGSIZE, ECONNREFUSED, EPERM: this message is lost; loss
		 * recovery treats it like any lost packet. */
		if (failed)
			failed(ctx, &b->addr[b->first[done]], errno);
		done++;
	}
	b->count = 0;
	return sent;
}
