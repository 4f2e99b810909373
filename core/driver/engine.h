/*
 * engine.h — internal to the engine's I/O driver (engine*.c).
 *
 * The driver is the only part of core/ that owns sockets, epoll, a thread
 * and the clock.  It feeds datagrams and the time into the sans-I/O
 * session (crypto) and conn (transport) state machines, and bridges each
 * transport stream to a local stream fd.
 *
 * Locking: one mutex, e->lock, guards everything below.  The engine thread
 * holds it while it handles a batch of events; API calls take it briefly
 * and wake the thread through wake_fd.
 */
#ifndef SRMUDP_ENGINE_H
#define SRMUDP_ENGINE_H

#include <pthread.h>
#include <stdbool.h>
#include <uthash.h>

#include "srmudp.h"
#include "clock.h"
#include "sys.h"
#include "wire.h"
#include "session.h"
#include "conn.h"
#include "ends.h"
#include "rendezvous.h"
#include "udp_batch.h"
#include "rdv_ws.h"
#include "path.h"
#include "ratelimit.h"
#include "log.h"
#include "gate_cache.h"

/* What an epoll registration points at. */
enum ev_kind {
	EV_UDP, EV_WAKE, EV_BRIDGE, EV_CONTROL, EV_PROBE_SOCKET, EV_ADDRWATCH, EV_WS, EV_GATE_WS
};
struct ev_tag {
	enum ev_kind kind;
};

/* One transport stream bridged to a local stream fd (the engine's end of
 * an AF_UNIX pair, or a TCP connection to a forwarding target). */
struct bridge {
	struct ev_tag tag;
	uint64_t handle;           /* public handle (srm_stream_*) */
	struct peer *peer;
	uint64_t stream_id;        /* conn's id */
	int fd;
	int state;                 /* SRM_ERR_AGAIN opening, 0 open, < 0 failed */
	size_t prefill;            /* filler bytes still to discard */
	bool is_tcp;               /* fd is TCP (a real RST is possible) */
	bool tcp_connecting;       /* forward mode: TCP connect in progress */
	bool fd_eof;               /* the local side finished sending */
	bool peer_fin;             /* the peer finished sending */
	bool wr_shut;              /* shutdown(SHUT_WR) done on fd */
	bool parked;               /* removed from epoll: the local end hung up */
	bool dead;                 /* freed (bridge_free), its memory not yet: */
	struct bridge *next_dead;  /* e->graveyard, until bridge_reap */
	uint32_t events;           /* current epoll interest */
	uint8_t *in_buf;           /* read from fd, not yet taken by conn */
	size_t in_len, in_off;
	uint8_t *out_buf;          /* read from conn, not yet written to fd */
	size_t out_len, out_off;
	uint16_t listen_port;      /* accepted streams: the port they came to */
	uint16_t open_port;        /* opened streams: the port we asked for */
	uint64_t opened_ms;        /* opened streams: when (a handshake attempt
				    * older than the stream does not fail it) */
	struct sockaddr_storage tcp_local; /* forward mode: our TCP source */
	uint64_t tcp_written;      /* forward mode: bytes written to the TCP fd */
	UT_hash_handle hh;         /* e->bridges, by handle */
	UT_hash_handle hh_peer;    /* peer->bridges, by stream_id */
};

/* An extra UDP socket opened to get through a hard NAT (engine_path.c);
 * paths name it by id (struct path_addr.sock). */
struct probe_socket {
	struct ev_tag tag;
	uint32_t id;
	int fd;
	UT_hash_handle hh;         /* e->probes, by id */
};

/*
 * One remote engine of a configured peer.  Usually one per peer, but
 * several processes may run under one identity (two preloaded clients on
 * one host, a forked child): each is a separate engine with its own
 * session and streams, so each gets its own slot.  e->peers holds the
 * configured peers, by the API's index; extra instances of them live in
 * e->extras, created when a handshake arrives from a new address while
 * the configured slot is busy with another instance.  A slot without a
 * session is empty: a reaped extra, or a peer a reload removed.
 */
struct peer {
	int index;                 /* configured slots: the API's index; extras: -1 */
	int parent;                /* the configured peer's index (the API's) */
	bool extra;                /* an extra instance slot */
	struct srm_peer_config cfg;
	struct session *session;
	struct conn *conn;         /* NULL until first needed */
	uint64_t conn_boot_id;     /* peer's boot id the conn belongs to; 0 unknown */
	struct peer_paths *paths;  /* where packets go (core/protocol/path.c) */
	/* SRMUDP_RATE / SRMUDP_RATE_PACKETS: token buckets on what we accept. */
	double rate_bytes, rate_packets;
	uint64_t drops[SRM_DROP_REASONS]; /* this peer's packets we dropped */
	uint64_t refused[SRM_REFUSALS]; /* its streams we refused (configured
					 * slots: all instances together) */
	uint64_t rate_refill_us;
	struct auth_seen rx_seen;  /* what authenticated (engine_receive.c) */
	struct bridge *bridges;
	/* A stream to this peer just failed because the peer did not answer
	 * (engine_send.c): new streams fail at once until then, unless the
	 * peer handshook with us after unreachable_ms. */
	uint64_t unreachable_ms, unreachable_until_ms;
	bool unreachable_told;     /* the at-once failures were logged */
	uint32_t rx_last_index;    /* our receiver index of its last DATA */
	bool closed_by_peer;       /* its CLOSE came, under closed_index's keys */
	uint32_t closed_index;
	double via_tokens;         /* bytes it may still have us forward (engine_via.c) */
	uint64_t via_refill_us;
};

/* How long a peer just found unreachable fails new streams at once: long
 * enough for a program's next try at the peer's other address (getaddrinfo
 * gives an IPv4 and an IPv6 one; libpq, redis-cli and curl try both),
 * short enough that a retry by hand really tries again. */
#define UNREACHABLE_HOLD_MS 3000

struct accept_slot {
	int fd;                    /* the application's end */
	int peer;
};

/* Extra instances (processes sharing one identity) an engine tracks at
 * once, over all peers; each costs a session and possibly a conn. */
#define MAX_EXTRA_INSTANCES 64
/* A configured slot counts as busy with its instance while packets came
 * from it this recently (keepalives arrive every 15 s). */
#define INSTANCE_BUSY_MS 20000

/* INITs seen recently from listed keys, by their ephemeral key: a copy (of
 * one answered, or superseded by a newer one) replayed from
 * another address while the key's slot is busy must not open an extra
 * instance (a new session remembers no timestamps, and the freshness check
 * admits any within RESPONDER_WAIT_MAX_SKEW_MS).  Kept for twice that;
 * 1,024 answers a minute is far above any real handshake rate. */
#define INIT_SEEN 1024
#define INIT_SEEN_MS (2 * RESPONDER_WAIT_MAX_SKEW_MS)
struct init_seen {
	uint64_t tag;              /* the INIT's ephemeral public key, 8 bytes of it */
	uint64_t ms;
};

#define ACCEPT_BACKLOG 128

/* Entries of the index of forwarding peers by address (engine_via.c). */
#define VIA_FROM_SLOTS 1024

struct listener {
	uint16_t port;
	bool forward;
	bool handoff;              /* forward: accept() claims the stream (srm_listen_handoff) */
	bool loopback;             /* the local socket is bound to loopback only:
				    * SRMUDP_EXPOSE decides (srm_access_check) */
	struct sockaddr_storage target;
	socklen_t target_len;
	int event_fd;              /* queue mode: readable while streams wait */
	struct accept_slot queue[ACCEPT_BACKLOG];
	size_t queued;
	UT_hash_handle hh;
};

/* fds beyond this are not tracked by srm_engine_owns_fd (1 Mi fds, the
 * usual hard limit; 128 KiB of bits). */
#define OWNED_FD_LIMIT (1u << 20)

/* One fd read or write moves at most this much; large enough to amortise
 * syscalls, small enough to keep every stream served in turn. */
#define BRIDGE_CHUNK (64 * 1024)

#define RECV_BATCH 32
/* With GRO, one buffer takes a whole coalesced run (up to 64 KiB). */
#define RECV_GRO_BATCH 8
#define RECV_GRO_BYTES 65536
#define PACKET_BUF (WIRE_MAX_UDP_PAYLOAD + 64)

/* A registration with one more of our gates, over UDP, beside the one in
 * use (engine_rdv.c, "Our other gates"). */
struct gate_reg {
	struct rdv_client *c;
	size_t server;                /* its index in servers */
	struct sockaddr_storage addr; /* the gate's, in our socket's family */
	socklen_t len;
	bool told;                    /* its registration was logged */
};
#define ENGINE_GATE_REGS SRM_GATES_MAX

/* Our gates, the rendezvous servers, the gates we learned. */
#define ENGINE_SERVERS_MAX (SRM_GATES_MAX + SRM_RENDEZVOUS_MAX + GATE_CACHE_MAX)

struct srm_engine {
	pthread_mutex_t lock;
	pthread_cond_t cond;       /* stream state changes (srm_stream_wait) */
	pthread_t thread;
	bool stopping;
	bool draining;             /* srm_engine_drain() waits */
	bool drained;              /* ...and every stream ended cleanly */

	int epfd, udp_fd, wake_fd;
	int family;                /* of udp_fd */
	uint64_t busy_poll_until_us; /* engine thread only (busy_poll) */
	struct ev_tag udp_tag, wake_tag;

	struct srm_config cfg;     /* copy; cfg.peers not owned */
	struct identity *identity;
	struct handshake_guard *guard;
	struct index_table *indices;
	uint64_t boot_id;

	/* Configured peers by the API's index (srm_peer_find, srm_stream_open,
	 * the preload's virtual addresses).  A reload appends the peers it
	 * adds and leaves a removed peer's slot empty, never reusing its
	 * index: a program may still hold the old virtual address, which must
	 * fail, not reach another peer.  Growing moves the array
	 * (engine_reload.c fixes the bridges' pointers); nothing else keeps a
	 * pointer into it across a release of e->lock. */
	struct peer *peers;
	size_t peer_count;         /* indices given out, removed peers included */
	size_t peer_cap;
	struct peer *extras;       /* MAX_EXTRA_INSTANCES slots, never moved */
	size_t extra_count;        /* extra slots ever used */
	struct session_config session_cfg;
	struct bridge *bridges;
	/* Bridges freed since the engine thread last waited for events: an
	 * event for one may sit in the batch it took from epoll before it got
	 * the lock (any thread may free a bridge: an abort, a reload), so the
	 * memory goes only when no batch is outstanding (bridge_reap). */
	struct bridge *graveyard;
	uint64_t next_handle;
	struct listener *listeners;
	struct log_ratelimit refuse_log; /* access refusals (engine_listen.c) */
	struct ends_board *ends;    /* streams that ended abnormally, and why:
				    * for srm_stream_state (SO_ERROR) and for
				    * forked or exec'd holders of the stream */

	struct init_seen init_seen[INIT_SEEN]; /* a ring (engine_receive.c) */
	unsigned init_seen_next;
	struct auth_limit auth_fail; /* failed DATA opens (engine_receive.c) */

	struct srm_engine_stats stats;
	uint64_t started_ms;

	int control_fd;            /* `srmudp status` (engine_control.c) */
	struct ev_tag control_tag;
	bool control_ready;        /* a client waits on control_fd */
	char control_path[256];

	struct pathman *paths;      /* path decisions (core/protocol/path.c) */
	int addrwatch_fd;           /* netlink: our addresses (engine_addrwatch.c) */
	struct ev_tag addrwatch_tag;
	uint64_t addr_change_ms;    /* act on a change then; 0: none pending */
	struct probe_socket *probes; /* by id */
	uint32_t next_probe_id;
	struct rdv_client *rdv;     /* NULL without SRMUDP_RENDEZVOUS or SRMUDP_RELAY */
	struct ws_link *ws;         /* NULL without SRMUDP_RELAY (engine_ws.c) */
	/* SRMUDP_GATE=on: the rendezvous server we run for our peers
	 * (engine_gate.c), and its directory. */
	struct rdv_server *gate;
	struct rdv_store *gate_store;
	/* ...and its WebSocket side (srm_engine_gate_ws_listen): rdv_ws's
	 * sockets sit in an epoll set of their own (they tag events with
	 * numbers, ours with pointers), itself in e->epfd. */
	struct rdv_ws *gate_ws;
	int gate_ws_epfd;
	struct ev_tag gate_ws_tag;
	/* Connect via (engine_via.c): the configured peers with direct
	 * sessions now (one more than a peer may use: itself excepted), and
	 * what we forwarded and refused. */
	uint32_t via_ids[PATH_MAX_VIAS + 1];
	size_t via_count;
	/* The slots with direct sessions by address, slot + 1 (open
	 * addressing, checked on use): which peer a WIRE_VIA came from
	 * without a walk of every slot per packet.  Rebuilt on a miss, once
	 * a pass at most; full: too many to index, walk instead. */
	uint32_t via_from[VIA_FROM_SLOTS];
	bool via_from_built, via_from_full;
	struct {
		uint64_t forwarded, forwarded_bytes, received, refused;
	} via_stats;
	/* The rendezvous servers, in the order they are tried: our gates
	 * (SRMUDP_GATES: each a listed peer's endpoint, its key pinned), then
	 * SRMUDP_RENDEZVOUS, then the gates we learned (engine_gatebook.c).
	 * The one in use over UDP is servers[rdv_at], its
	 * address in our socket's family (len 0: none configured). */
	struct srm_rendezvous_config servers[ENGINE_SERVERS_MAX];
	size_t server_count;
	size_t rdv_at;
	bool rdv_refusal_told;      /* warned that it does not register us */
	bool server_gate[ENGINE_SERVERS_MAX]; /* servers[i] is a gate */
	/* A registration with each gate (at most ENGINE_GATE_REGS), the one
	 * in use (rdv_at) paused: the main client is registered there.  A
	 * packet relayed through gate_regs[k] comes from, and goes back
	 * over, PATH_RDV_RELAY with sock k + 1. */
	struct gate_reg gate_regs[ENGINE_GATE_REGS];
	size_t gate_reg_count;
	/* The WebSocket relays, in the order they are tried: SRMUDP_RELAY,
	 * then each server's that is a gate with a WebSocket we know of.
	 * relay_server[i]: that server's index in servers, or -1 (an
	 * SRMUDP_RELAY: the same server, reached another way). */
	struct srm_relay_config relays[SRM_RELAY_MAX];
	int relay_server[SRM_RELAY_MAX];
	size_t relay_count;
	/* Gates announced to us (engine_gatebook.c), and the file that keeps
	 * them ("" none); as a gate, our own WebSocket port (0: none). */
	struct gate_cache_entry known_gates[GATE_CACHE_MAX];
	size_t known_gate_count;
	char gate_cache_path[4096];
	uint16_t gate_ws_port;
	uint8_t gate_wss;
	struct sockaddr_storage rdv_server;
	socklen_t rdv_server_len;

	/* Which fds are the engine's (srm_engine_owns_fd), one bit each, read
	 * without the lock by the preload's close/dup hooks. */
	_Atomic uint8_t *owned;
	size_t owned_bytes;

	/* Outgoing datagrams, flushed with sendmmsg and UDP GSO. */
	struct udp_batch tx;

	/* Engine-thread buffers (kept out of TLS: a preloaded library's
	 * static TLS is scarce). */
	bool gro;                  /* UDP_GRO is on: large receive buffers */
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} gro_ctrl[RECV_GRO_BATCH];
	uint8_t recv_buf[RECV_GRO_BATCH * RECV_GRO_BYTES];
	uint8_t scratch[BRIDGE_CHUNK];
};

/* engine_gatebook.c: read SRMUDP_GATE_CACHE (the gates we list as peers);
 * add those gates to the servers; build relays (SRMUDP_RELAY, then the
 * gates' WebSockets); tell our members, as a gate, the gates we know;
 * keep what a gate announced to us. */
void engine_gatebook_open(struct srm_engine *e);
void engine_gatebook_servers(struct srm_engine *e);
void engine_gatebook_relays(struct srm_engine *e);
void engine_gatebook_announce(struct srm_engine *e);
void engine_gatebook_learn(struct srm_engine *e, size_t from, const struct rdv_gate *gates,
			   size_t n); /* from: the announcing gate's index in servers */

/* engine.c */
int engine_fd_adopt(struct srm_engine *e, int fd);
void engine_fd_close(struct srm_engine *e, int fd);
void engine_epoll_set(struct srm_engine *e, struct bridge *b, uint32_t events);
void engine_remember_end(struct srm_engine *e, uint64_t handle, int error);
/* Wake the engine thread (its timers, or new work under the lock). */
void engine_wake(struct srm_engine *e);
/* From an application thread, under e->lock: what p has to send leaves
 * from this thread at once (waiting for the engine thread to wake would
 * add a scheduler wake-up, e.g. to every connect()), then the engine
 * thread is woken for its timers. */
void engine_peer_push(struct srm_engine *e, struct peer *p, uint64_t now_us);
struct conn *engine_peer_conn(struct srm_engine *e, struct peer *p, uint64_t now_us);
void engine_peer_drop_conn(struct srm_engine *e, struct peer *p, int error);
/* The conn belongs to one run of the peer (its boot id): a restarted peer
 * has forgotten our streams, so they end. */
void engine_peer_boot(struct srm_engine *e, struct peer *p, uint64_t boot);
void engine_peer_check_restart(struct srm_engine *e, struct peer *p);

/* Every slot, configured peers then extra instances: for i in
 * [0, engine_slot_count(e)), engine_slot(e, i).  Empty ones have no
 * session. */
static inline size_t engine_slot_count(const struct srm_engine *e)
{
	return e->peer_count + e->extra_count;
}

static inline struct peer *engine_slot(const struct srm_engine *e, size_t i)
{
	return i < e->peer_count ? &e->peers[i] : &e->extras[i - e->peer_count];
}

static inline void engine_drop(struct srm_engine *e, enum srm_drop_reason why)
{
	e->stats.drops[why]++;
}

/* engine_udp.c: the socket, batched datagrams out and in */
bool engine_path_is_ipv6(const struct peer *p);
const char *engine_addr_text(const struct sockaddr_storage *a, char *buf, size_t len);
socklen_t engine_addr_for_socket(const struct srm_engine *e, const struct sockaddr_storage *in,
				 socklen_t inlen, struct sockaddr_storage *out);
int engine_udp_open(struct srm_engine *e, char *err, size_t errlen);
void engine_send(struct srm_engine *e, const struct sockaddr_storage *to, socklen_t tolen,
		 const uint8_t *pkt, size_t len);
/* The next free slot of the send batch (flushing when full), to seal into;
 * engine_send_commit queues what was written there. */
uint8_t *engine_send_slot(struct srm_engine *e);
void engine_send_commit(struct srm_engine *e, const struct sockaddr_storage *to, socklen_t tolen,
			size_t len);
void engine_send_flush(struct srm_engine *e);
/* Read datagrams from fd: the engine's socket (sock 0) or probe socket sock. */
void engine_udp_receive(struct srm_engine *e, int fd, uint32_t sock, uint64_t now_us);

/* engine_receive.c: what a datagram means */
void engine_receive(struct srm_engine *e, uint32_t sock, uint8_t *pkt, size_t len,
		    const struct sockaddr_storage *src, socklen_t srclen, uint64_t now_us);
/* A datagram from `from` (relayed_from: the peer a relay says sent it). */
void engine_handle_datagram(struct srm_engine *e, uint8_t *pkt, size_t len,
			    const struct path_addr *from, struct peer *relayed_from, uint64_t now_us);
struct peer *engine_instance_new(struct srm_engine *e, struct peer *configured);
bool engine_instance_reap(struct srm_engine *e, struct peer *p, uint64_t now_ms);

/* engine_send.c: what a peer sends */
void engine_peer_flush(struct srm_engine *e, struct peer *p, uint64_t now_us);
/* An opening stream to p failed because p never answered: logged at warn
 * (once per hold: the program sees this failure), and new streams to p
 * fail at once for UNREACHABLE_HOLD_MS. */
void engine_peer_unreachable(struct srm_engine *e, struct peer *p, uint64_t now_ms);
/* New streams to p fail at once now (SRM_ERR_UNREACHABLE); logs that once. */
bool engine_peer_held(struct peer *p, uint64_t now_ms);

/* engine_rdv.c */
/* e->servers from the configuration (the peers are set up). */
void engine_rdv_list_servers(struct srm_engine *e);
int engine_rdv_start(struct srm_engine *e, char *err, size_t errlen);
void engine_rdv_free(struct srm_engine *e);
uint64_t engine_rdv_deadline(struct srm_engine *e);
void engine_rdv_poll(struct srm_engine *e, uint64_t now_us);
void engine_rdv_lookup(struct srm_engine *e, struct peer *p, uint64_t now_ms);
/* The registration a relayed path goes through: gate_regs[sock - 1]'s
 * client and address, or the main client and server's (sock 0, or that
 * gate is the one in use).  false: none. */
bool engine_rdv_relay_link(struct srm_engine *e, uint32_t sock, struct rdv_client **c,
			   const struct sockaddr_storage **to, socklen_t *len);
bool engine_rdv_receive(struct srm_engine *e, const uint8_t *pkt, size_t len,
			const struct sockaddr_storage *src, uint64_t now_us);
/* Our host addresses (with our UDP port) to the server, again if changed. */
void engine_rdv_announce(struct srm_engine *e, uint64_t now_ms);
/* The configured peers' keys, as the consent list of our registration. */
void engine_rdv_set_peers(struct srm_engine *e, uint64_t now_ms);

/* A rendezvous or relay packet that came over the WebSocket. */
void engine_rdv_ws_receive(struct srm_engine *e, const uint8_t *pkt, size_t len, uint64_t now_us);
/* The WebSocket is up: register over it, resend pending lookups. */
void engine_rdv_link_up(struct srm_engine *e, uint64_t now_us);
/* The server in use stopped answering over UDP: the next one in
 * SRMUDP_RENDEZVOUS.  Registered with at once over UDP; over the
 * WebSocket, only UDP probes go there until it answers. */
void engine_rdv_next_server(struct srm_engine *e, uint64_t now_ms);
/* Register again now over the link the path manager chose, pending
 * lookups too, pinning the key of the server in use. */
void engine_rdv_relink(struct srm_engine *e, uint64_t now_ms);
/* A packet for the rendezvous server, over the link the path manager chose. */
void engine_rdv_send(struct srm_engine *e, const uint8_t *pkt, size_t len, bool expects_answer);

/* engine_ws.c: the WebSocket link to the relay (SRMUDP_RELAY) */
struct srm_ws_stats {
	uint64_t attempts, connects, failures;
	uint64_t tx_messages, rx_messages, tx_bytes, rx_bytes;
	uint64_t queue_drops, malformed;
	size_t queued;             /* bytes waiting for the socket */
};
int engine_ws_setup(struct srm_engine *e, char *err, size_t errlen);
void engine_ws_free(struct srm_engine *e);
/* PATH_DO_WS_OPEN: connect (and reconnect) until engine_ws_close. */
void engine_ws_open(struct srm_engine *e, uint64_t now_ms);
void engine_ws_close(struct srm_engine *e);
/* One datagram as one binary message; false (dropped) when the link is
 * not open or its queue is full. */
bool engine_ws_send(struct srm_engine *e, const uint8_t *pkt, size_t len);
/* What engine_ws_send queued during this pass leaves (engine_send_flush). */
void engine_ws_flush(struct srm_engine *e);
void engine_ws_event(struct srm_engine *e, uint32_t events, uint64_t now_us);
void engine_ws_run(struct srm_engine *e, uint64_t now_us);
uint64_t engine_ws_deadline(const struct srm_engine *e);
bool engine_ws_up(const struct srm_engine *e);
/* The server the WebSocket in use belongs to (relay_server), or -1. */
int engine_ws_server(const struct srm_engine *e);
/* For status: counters, state name, the relay in use, the last error. */
void engine_ws_stats(const struct srm_engine *e, struct srm_ws_stats *out, const char **state,
		     const char **url, const char **error);

/* engine_gate.c: SRMUDP_GATE=on, introducing and relaying for our peers */
int engine_gate_start(struct srm_engine *e, char *err, size_t errlen);
void engine_gate_free(struct srm_engine *e);
/* A rendezvous or relay packet from a member (false: not ours, we are no gate). */
bool engine_gate_receive(struct srm_engine *e, const uint8_t *pkt, size_t len,
			 const struct sockaddr_storage *src, socklen_t srclen, uint64_t now_us);
void engine_gate_run(struct srm_engine *e, uint64_t now_us);
/* The gate's WebSocket sockets have events. */
void engine_gate_ws_event(struct srm_engine *e, uint64_t now_us);
/* What the gate queued for WebSocket members leaves (engine_send_flush). */
void engine_gate_ws_flush(struct srm_engine *e);
uint64_t engine_gate_deadline(const struct srm_engine *e);

/* engine_via.c: forwarding between two of our peers ("connect via") */
/* Tell the path manager which peers may forward to which (each pass). */
void engine_via_update(struct srm_engine *e, uint64_t now_ms);
/* pkt for p, through configured peer `via`. */
void engine_via_send(struct srm_engine *e, struct peer *p, uint32_t via, const uint8_t *pkt,
		     size_t len);
/* A WIRE_VIA packet from `from` (a direct UDP source). */
void engine_via_receive(struct srm_engine *e, uint8_t *pkt, size_t len, const struct path_addr *from,
			uint64_t now_us);

/* engine_addrwatch.c */
void engine_addrwatch_open(struct srm_engine *e);
void engine_addrwatch_read(struct srm_engine *e, uint64_t now_us);
uint64_t engine_addrwatch_deadline(const struct srm_engine *e);
void engine_addrwatch_run(struct srm_engine *e, uint64_t now_us);

/* engine_path.c */
/* The path manager and every configured peer's paths (after engine_udp_open:
 * endpoints are stored in the socket's family). */
int engine_paths_setup(struct srm_engine *e);
void engine_probes_free(struct srm_engine *e);
/* What the path manager wants done for p now; when it next does. */
void engine_path_run(struct srm_engine *e, struct peer *p, uint64_t now_us);
/* What the path manager wants done engine-wide (the server's link). */
void engine_paths_run(struct srm_engine *e, uint64_t now_us);
uint64_t engine_path_deadline(struct srm_engine *e, struct peer *p, uint64_t now_us);
void engine_send_path(struct srm_engine *e, struct peer *p, const struct path_addr *path,
		      const uint8_t *pkt, size_t len);
void engine_send_handshake(struct srm_engine *e, struct peer *p, const uint8_t *pkt, size_t len,
			   const struct path_addr *targets, size_t n);
/* An authenticated packet from p came over `from`. */
void engine_path_received(struct srm_engine *e, struct peer *p, const struct path_addr *from,
			  uint64_t now_ms);
void engine_path_fit_mtu(struct peer *p, uint64_t now_us);
void engine_path_send_failed(struct srm_engine *e, const struct sockaddr_storage *to, int err);

/* engine_control.c */
int engine_control_open(struct srm_engine *e);
void engine_control_close(struct srm_engine *e);
/* Answer the clients waiting on the control socket.  Engine thread,
 * without e->lock (it takes it as it needs). */
void engine_control_serve(struct srm_engine *e);

/* engine_reload.c */
struct json_out;
/* The control socket's "reload": read the configuration again (this
 * process's environment and its SRMUDP_CONFIG file) and apply it; the
 * answer's one line into out.  Without e->lock. */
void engine_reload_request(struct json_out *out, void *ctx);
/* Mark fd as the engine's (srm_engine_owns_fd) without moving it. */
void engine_fd_mark(struct srm_engine *e, int fd);

/* engine_bridge.c */
struct bridge *bridge_new(struct srm_engine *e, struct peer *p, uint64_t stream_id, int fd);
void bridge_on_fd(struct srm_engine *e, struct bridge *b, uint32_t events, uint64_t now_us);
void bridge_conn_events(struct srm_engine *e, struct peer *p, uint64_t now_us);
void bridge_fail(struct srm_engine *e, struct bridge *b, int error, bool send_reset);
void bridge_free(struct srm_engine *e, struct bridge *b);
/* The memory of freed bridges; the engine thread, before it waits. */
void bridge_reap(struct srm_engine *e);
/* A forwarded stream moves from its TCP connection to fd (a socket pair's
 * end), with front (the n bytes already written to the TCP connection,
 * taken back from its other end) delivered first. */
int bridge_hand_over(struct srm_engine *e, struct bridge *b, int fd, const uint8_t *front, size_t n);
bool bridge_drain(struct srm_engine *e, struct bridge *b);

/* engine_listen.c */
void listen_incoming(struct srm_engine *e, struct peer *p, uint64_t stream_id, uint16_t port);
void listen_tcp_connected(struct srm_engine *e, struct bridge *b);
/* A stream the peer opened in its handshake: wait (briefly) for our
 * connection to its forwarding target, so the RESP can tell accepted from
 * refused. */
void listen_settle(struct srm_engine *e, struct peer *p, uint64_t stream_id);
void listen_free_all(struct srm_engine *e);

#endif
