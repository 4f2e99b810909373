/*
 * vaddr.c — peer index <-> virtual address (see vaddr.h for the ranges
 * and why they are multicast).
 */
#include "vaddr.h"

#include <netinet/in.h>
#include <string.h>

static int v4_index(const uint8_t *a)
{
	int n;

	if (a[0] != VADDR_V4_A || a[1] != VADDR_V4_B)
		return -1;
	n = (a[2] << 8) | a[3];
	return n >= 1 ? n - 1 : -1;
}

static const uint8_t v6_prefix[12] = { 0xff, 0x01, 0, 0, 0, 0, 0, 0,
				       0, 0, VADDR_V6_TAG >> 8, VADDR_V6_TAG & 0xff };
static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int vaddr_index_raw(int family, const void *addr)
{
	const uint8_t *a = addr;
	int n;

	if (family == AF_INET)
		return v4_index(a);
	if (family != AF_INET6)
		return -1;
	if (!memcmp(a, v4mapped_prefix, 12))
		return v4_index(a + 12);
	if (memcmp(a, v6_prefix, 12) || a[12] || a[13])
		return -1;
	n = (a[14] << 8) | a[15];
	return n >= 1 ? n - 1 : -1;
}

int vaddr_index(const struct sockaddr *sa, socklen_t len)
{
	if (!sa || len < (socklen_t)sizeof(sa_family_t))
		return -1;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in))
		return vaddr_index_raw(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr);
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6))
		return vaddr_index_raw(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr);
	return -1;
}

socklen_t vaddr_make(int family, int mapped, int idx, uint16_t port,
		     struct sockaddr_storage *out)
{
	unsigned n = (unsigned)idx + 1;

	memset(out, 0, sizeof(*out));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;
		uint8_t *a = (uint8_t *)&s4->sin_addr;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		a[0] = VADDR_V4_A;
		a[1] = VADDR_V4_B;
		a[2] = (uint8_t)(n >> 8);
		a[3] = (uint8_t)n;
		return sizeof(*s4);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
	uint8_t *a = s6->sin6_addr.s6_addr;

	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	if (mapped) {
		memcpy(a, v4mapped_prefix, 12);
		a[12] = VADDR_V4_A;
		a[13] = VADDR_V4_B;
	} else {
		memcpy(a, v6_prefix, 12);
	}
	a[14] = (uint8_t)(n >> 8);
	a[15] = (uint8_t)n;
	return sizeof(*s6);
}

void vaddr_copy_out(const struct sockaddr_storage *src, socklen_t srclen,
		    struct sockaddr *dst, socklen_t *len)
{
	if (!dst || !len)
		return;
	memcpy(dst, src, *len < srclen ? *len : srclen);
	*len = srclen;
}
