/*
 * pmtu.h — datagram packetization-layer path MTU discovery (RFC 8899).
 *
 * All sizes are UDP payload bytes (what conn may put in one datagram,
 * including the DATA header and tag).  The search starts from the safe
 * WIRE_BASE_UDP_PAYLOAD (1200) and probes upward with padded,
 * ack-eliciting packets (RECOVERY_PMTU_PROBE: their loss is not congestion):
 *
 *   1. probe the maximum first (most paths are plain 1500-byte Ethernet,
 *      so one probe usually finishes the search);
 *   2. otherwise binary-search between the largest confirmed size and the
 *      smallest failed size, down to PMTU_SEARCH_STEP bytes;
 *   a size fails after PMTU_MAX_PROBES lost probes (or at once on
 *   EMSGSIZE / ICMP packet-too-big, pmtu_on_too_big).
 *
 * Black hole (RFC 8899 4.3): PMTU_BLACK_HOLE_LOSSES consecutive lost
 * packets larger than the base while at least one smaller ack-eliciting
 * packet was acknowledged meanwhile (or twice as many with no evidence
 * either way): fall back to the base size and search again at once,
 * maximum first (the path MTU probably just shrank; after a false alarm
 * one probe restores the size).  Conn helps by making PTO probes small
 * (a PING) when full-size packets keep getting lost.  After a completed search
 * the larger sizes are re-probed every PMTU_RAISE_INTERVAL_US, so a grown
 * path MTU is found too.
 *
 * Sans-I/O: conn asks pmtu_probe_size_due(now) when it may send, reports
 * the probe with pmtu_on_probe_sent, and forwards ack/loss events for
 * probes and for ordinary packets.  A due probe must take priority: when
 * recovery_can_send(probe size) says no, send nothing else until it does,
 * or a window kept full of smaller packets starves the probe forever.  Never sends anything larger than
 * pmtu_current() except probes, so IP never fragments (the engine sets
 * IP_PMTUDISC_PROBE / IPV6_PMTUDISC_PROBE, DF on).
 */
#ifndef SRMUDP_PMTU_H
#define SRMUDP_PMTU_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1500 Ethernet - 40 IPv6 - 8 UDP (IPv4: WIRE_MAX_UDP_PAYLOAD 1472). */
#define PMTU_MAX_UDP6_PAYLOAD 1452
#define PMTU_MAX_PROBES 3        /* RFC 8899 MAX_PROBES */
#define PMTU_SEARCH_STEP 16      /* stop when the bracket is this narrow */
/* Spacing after a lost probe.  Loss detection already waits ~1 RTT, so
 * this only caps probing at 10 per second on very short paths. */
#define PMTU_PROBE_INTERVAL_US 100000
/* Consecutive losses of large packets that mean "black hole": 10% random
 * loss produces 6 in a row about once per million large packets (a false
 * alarm costs one probe); a black hole produces them within one RTT. */
#define PMTU_BLACK_HOLE_LOSSES 6
/* RFC 8899 PMTU_RAISE_TIMER (600 s): re-probe upward after a completed
 * search or after a black-hole fallback settled. */
#define PMTU_RAISE_INTERVAL_US (600ull * 1000000)

enum pmtu_state {
	PMTU_SEARCHING,      /* probes in progress */
	PMTU_SEARCH_DONE,    /* settled; raise timer armed */
};

struct pmtu {
	enum pmtu_state state;
	uint32_t base;         /* WIRE_BASE_UDP_PAYLOAD */
	uint32_t max;          /* largest size probed: the path's ceiling */
	uint32_t current;      /* confirmed; what conn fills packets to */
	uint32_t lo;           /* largest confirmed size in this search */
	uint32_t hi;           /* smallest failed size (max + 1 if none) */
	uint32_t probe_size;   /* probe in flight (0: none) */
	uint32_t probe_losses; /* lost probes of probe_size */
	uint64_t next_probe_us;/* earliest next probe */
	uint32_t bh_losses;    /* consecutive lost packets > base */
	bool bh_small_acked;   /* a packet <= base was acked after the
				* last acked large one */
	uint64_t black_holes;  /* fallbacks, for stats */
};

/* max_payload: WIRE_MAX_UDP_PAYLOAD for IPv4, PMTU_MAX_UDP6_PAYLOAD for
 * IPv6, less any relay encapsulation; clamped to >= base. */
void pmtu_init(struct pmtu *p, uint32_t max_payload, uint64_t now_us);

/* The active path changed its ceiling: a relay wraps every packet, an
 * IPv6 path carries less than IPv4.  A lower one applies at once (probes
 * cannot find it: a relay's TCP leg carries anything, and its UDP leg
 * fragments what does not fit); a higher one is searched for at once.
 * Returns true when pmtu_current() changed. */
bool pmtu_set_max(struct pmtu *p, uint32_t max_payload, uint64_t now_us);

/* Largest datagram conn may send (>= WIRE_BASE_UDP_PAYLOAD). */
uint32_t pmtu_current(const struct pmtu *p);

/* Size of the probe to send now, or 0 (no probe due, or one in flight). */
uint32_t pmtu_probe_size_due(const struct pmtu *p, uint64_t now_us);
/* Earliest time a probe may become due (UINT64_MAX: never). */
uint64_t pmtu_deadline(const struct pmtu *p);

void pmtu_on_probe_sent(struct pmtu *p, uint32_t size, uint64_t now_us);
/* A probe of size was acknowledged (raises pmtu_current) or lost.  Like
 * every pmtu_on_* below, returns true when pmtu_current() changed (conn
 * then calls recovery_set_mtu and fills packets to the new size). */
bool pmtu_on_probe_acked(struct pmtu *p, uint32_t size, uint64_t now_us);
bool pmtu_on_probe_lost(struct pmtu *p, uint32_t size, uint64_t now_us);
/* sendmsg said EMSGSIZE or ICMP packet-too-big arrived: size does not fit.
 * mtu_hint: the reported payload size that fits, or 0 if unknown. */
bool pmtu_on_too_big(struct pmtu *p, uint32_t size, uint32_t mtu_hint,
		     uint64_t now_us);

/* Ordinary (non-probe) packets, for black-hole detection. */
bool pmtu_on_packet_acked(struct pmtu *p, uint32_t size, uint64_t now_us);
bool pmtu_on_packet_lost(struct pmtu *p, uint32_t size, uint64_t now_us);

#ifdef __cplusplus
}
#endif
#endif
