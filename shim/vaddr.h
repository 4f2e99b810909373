/*
 * vaddr.h — the virtual addresses that stand for peers inside a preloaded
 * program.
 *
 * Peer index i (its position in SRMUDP_PEERS) maps to
 *   IPv4  239.83.H.L            where H.L = i + 1   (239/8: multicast)
 *   IPv6  ff01::5352:0:N        where N = i + 1     (ff01::/16: interface-local multicast)
 *   and the IPv4-mapped form ::ffff:239.83.H.L on IPv6 sockets.
 * The kernel refuses a TCP connect to any multicast address itself
 * (ENETUNREACH, before routing), so a connect that escapes the shim fails
 * on the spot instead of leaking.  240.0.0.0/4 and 100::/64 were measured
 * on this machine: both are routed like unicast through the default route
 * (a TCP connect to 240.0.0.1 completed), see docs/SHIM.md.
 */
#ifndef SHIM_VADDR_H
#define SHIM_VADDR_H

#include <stdint.h>
#include <sys/socket.h>

#define VADDR_V4_A 239
#define VADDR_V4_B 83
#define VADDR_V6_TAG 0x5352 /* "SR" */
#define VADDR_MAX_INDEX 65534

/* The peer index a virtual address stands for, or -1.  No system call,
 * no lock: this is the test every connect() pays. */
int vaddr_index(const struct sockaddr *sa, socklen_t len);
/* Same for a bare address: family AF_INET (4 bytes) or AF_INET6 (16). */
int vaddr_index_raw(int family, const void *addr);
/* Write the virtual address of peer index idx with port (host order) in
 * the given family (AF_INET, AF_INET6, or AF_INET6 with mapped != 0 for
 * ::ffff:239.83.H.L).  Returns the sockaddr length. */
socklen_t vaddr_make(int family, int mapped, int idx, uint16_t port,
		     struct sockaddr_storage *out);
/* Copy a sockaddr out the way the kernel does: truncate to *len, report
 * the full length in *len. */
void vaddr_copy_out(const struct sockaddr_storage *src, socklen_t srclen,
		    struct sockaddr *dst, socklen_t *len);

#endif
