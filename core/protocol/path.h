/*
 * path.h — the path manager: where a peer's packets go (sans-I/O).
 *
 * A peer can be reached over several paths: straight over UDP to its
 * configured endpoint ("home") or to an address the rendezvous server
 * reported (a candidate), from the engine's socket or from a probe socket
 * opened to get through a hard NAT; or wrapped for the rendezvous server's
 * relay.  The manager decides which path carries the session, when to
 * punch, when to fall back to the relay, when a silent path needs repair,
 * when to try a hard NAT, and keeps the peer's NAT pinhole open while it
 * is idle.  Engine-wide, it decides how the rendezvous server itself is
 * reached: over UDP, or over the WebSocket relay (SRMUDP_RELAY) where UDP
 * gets no answer.  The driver only carries out what it says.
 *
 * Like conn.c: events and the time go in (path_on_*), actions and the next
 * deadline come out (path_poll, path_deadline), plus where each packet
 * goes (path_active for DATA, path_handshake_targets for an INIT).
 * Nothing here reads a clock or touches a socket, so tests/unit/
 * path_sim.h runs it through simulated NATs, thousands of seeds a second.
 *
 * Adding a kind of path (a WebSocket relay, a gate, a route through a
 * mutual peer): a value in enum path_kind, and its place in the rules of
 * path.c (when it is tried, what it yields to); the driver learns to send
 * on it.  Nothing else changes.  (A gate is a rendezvous server to its
 * members, so its relay is PATH_RDV_RELAY or PATH_WS_RELAY.)
 */
#ifndef SRMUDP_PATH_H
#define SRMUDP_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "noise.h" /* srm_rng_fn */

enum path_kind {
	PATH_NONE = 0,
	PATH_UDP,       /* straight to addr, from socket `sock` */
	PATH_RDV_RELAY, /* wrapped for the rendezvous server's relay, over UDP */
	PATH_WS_RELAY,  /* the same relay, over the WebSocket (SRMUDP_RELAY) */
	PATH_VIA,       /* forwarded by a mutual peer (`sock`: its id, via.h) */
};

/* Relayed: through the rendezvous server (or a gate), over either link, or
 * forwarded by a mutual peer.  Each wraps our packets in a header of
 * RDV_RELAY_OVERHEAD (= VIA_OVERHEAD) bytes. */
static inline bool path_is_relay(enum path_kind k)
{
	return k == PATH_RDV_RELAY || k == PATH_WS_RELAY || k == PATH_VIA;
}

struct path_addr {
	enum path_kind kind;
	uint32_t sock;                /* PATH_UDP: 0 the engine's socket, else a probe socket;
				       * PATH_RDV_RELAY: 0 the server in use, else another
				       * gate we registered with (the driver's id);
				       * PATH_VIA: the forwarding peer's id (the driver's) */
	socklen_t len;                /* PATH_UDP: 0 means no address */
	struct sockaddr_storage addr; /* PATH_UDP: the peer's address, in our socket's family */
};

/* Punching to a peer with a known address starts at once, and a failed
 * handshake is retried at this interval (under conntrack's 30 s, so our
 * own mapping stays open for a peer that starts late) for PUNCH_PERSIST_MS
 * after the engine starts or new candidates arrive. */
#define PATH_PUNCH_RETRY_MS 15000
#define PATH_PUNCH_PERSIST_MS (5 * 60 * 1000)
/* ...the first attempt waits this long: an engine started by a connect()
 * gets that stream's OPEN within it, and the first INIT carries it. */
#define PATH_PUNCH_FIRST_DELAY_MS 5
/* Punching gets this long on its own before the relay is tried too: a few
 * handshake retransmissions, enough for both sides' punches to cross. */
#define PATH_RELAY_AFTER_MS 2500
/* A path is silent when we keep sending and nothing authenticated comes
 * back for 4 RTTs (1 s at least, PATH_SILENT_MS at most, and without an RTT
 * estimate): NAT mapping lost, public address changed, or the peer moved. */
#define PATH_SILENT_MS 3000
/* A receiver whose incoming data stopped dead probes every address of the
 * peer (both NATs may have forgotten the flow, and a receiver that only
 * acknowledges would never reopen its own): after 4 RTTs of nothing, then
 * twice as late, at most this many times until data flows again. */
#define PATH_RX_PROBES 3
/* While silent, a probe goes to every known address this often, and the
 * rendezvous server is asked again this often; re-registration (to learn
 * a new public address of ours) at most every PATH_REREGISTER_MS. */
#define PATH_SPRAY_MS 250
#define PATH_REPAIR_MS 2000
#define PATH_REREGISTER_MS 5000
/* A peer the server does not know yet is asked for again this often. */
#define PATH_LOOKUP_MS 2000
/* While relayed, the peer is looked up and every candidate probed this often. */
#define PATH_REPROBE_MS 10000
/* A relayed packet does not take the session off a direct path that
 * carried an authenticated packet this recently. */
#define PATH_DIRECT_FRESH_MS 3000
/* A peer with a configured endpoint gets a PUNCH packet at least this
 * often while nothing else goes to it: conntrack forgets idle UDP after
 * 30 s, and then the peer's first INIT would find our NAT closed. */
#define PATH_PINHOLE_MS 15000

/* The rendezvous server is reached over the WebSocket relay when a packet
 * to it over UDP got no answer for this long (a REGISTER and its first
 * retransmission), or at once when sending UDP fails outright.  While on
 * the WebSocket, UDP is tried again every PATH_REPROBE_MS; once it answers,
 * the WebSocket closes after PATH_WS_LINGER_MS (packets relayed in the
 * meantime still arrive over it). */
#define PATH_WS_AFTER_MS 1500
#define PATH_WS_LINGER_MS 5000
/* With the server reached over the WebSocket, UDP already went unanswered
 * for PATH_WS_AFTER_MS: a peer's handshakes go through the relay from the
 * start of punching, beside the punches (whichever answers first wins, and
 * a direct path that works later takes over within PATH_REPROBE_MS). */
#define PATH_WS_RELAY_AFTER_MS 0
/* Failover (SRMUDP_RENDEZVOUS lists several servers): without a WebSocket
 * relay, the next server is tried once UDP to this one got no answer for
 * this long (a REGISTER and two retransmissions, 1 s apart then 2 s), or
 * at once when sending fails outright.  With one, the WebSocket takes
 * over first (PATH_WS_AFTER_MS) and each UDP probe that went unanswered
 * moves the next probe to the next server. */
#define PATH_FAILOVER_MS 3000

/* Connect via (via.h): a peer we cannot reach directly, nor through a
 * server or gate, gets its handshakes through up to PATH_MAX_VIAS peers we
 * hold direct sessions with (path_set_vias): at once when there is nothing
 * else to try (no address, no server), after PATH_RELAY_AFTER_MS of
 * punching without a server, and with one only after the relay had
 * PATH_VIA_AFTER_RELAY_MS more (its INIT and two retransmissions, 1 s
 * apart then 2 s: a session that can go through the server's relay does,
 * rather than through a member's uplink).  A direct path that answers
 * later takes over, as from the relay. */
#define PATH_MAX_VIAS 4
#define PATH_VIA_AFTER_RELAY_MS 4000

/* Hard NAT (birthday probing, see path.c): the hard side opens this many
 * sockets, the easy side guesses this many ports per round, in bursts. */
#define PATH_HARDNAT_SOCKETS 128
#define PATH_HARDNAT_PROBES 1024
#define PATH_HARDNAT_BURST 128

struct path_config {
	size_t servers;        /* rendezvous servers over UDP (SRMUDP_RENDEZVOUS); 0: none */
	bool ws;               /* ...and/or over the WebSocket relay (SRMUDP_RELAY) */
	uint16_t local_port;   /* our UDP port (hard NAT: does our NAT keep it?) */
	srm_rng_fn *rng;       /* NULL: randombytes_buf */
	void *rng_ctx;
};

/* What the driver tells about a peer at each poll. */
struct path_status {
	bool session_up;       /* keys are established */
	bool has_conn;         /* there is transport state (streams or traffic) */
	uint32_t srtt_ms;      /* the transport's smoothed RTT; 0: unknown */
	uint64_t rx_stream_bytes; /* stream bytes received so far (only growth matters) */
};

enum path_action_kind {
	PATH_DO_HANDSHAKE = 1, /* start a handshake, or send its INIT again now */
	PATH_DO_LOOKUP,        /* ask the rendezvous server where the peer is */
	PATH_DO_REGISTER,      /* register again (a changed public address shows) */
	PATH_DO_PUNCH,         /* a PUNCH packet to each target */
	PATH_DO_OPEN_SOCKETS,  /* open `count` probe sockets; path_sockets_opened */
	PATH_DO_CLOSE_SOCKETS, /* close the probe sockets targets[].sock */
	PATH_DO_PROBE,         /* one sealed packet with a PATH_CHALLENGE to each target */
	/* Engine-wide (pathman_poll): */
	PATH_DO_WS_OPEN,       /* connect the WebSocket relay (and keep it up) */
	PATH_DO_WS_CLOSE,      /* close it: UDP to the server works */
	PATH_DO_SERVER_PROBE,  /* a REGISTER to the server over UDP: does UDP work again? */
	PATH_DO_NEXT_SERVER,   /* the server does not answer over UDP: the next one listed */
};

struct path_action {
	enum path_action_kind kind;
	size_t count;                   /* targets, or sockets to open */
	const struct path_addr *targets; /* valid until the next path_* call */
};

struct pathman;    /* one per engine: our public address, the hard-NAT attempt */
struct peer_paths; /* one per peer */

struct pathman *pathman_new(const struct path_config *cfg);
void pathman_free(struct pathman *pm);
/* The rendezvous server told us our public address.  When it changed (our
 * NAT rebound, or we moved), every peer with traffic looks its peer up
 * again, which makes the server tell both sides to punch. */
void pathman_on_public_address(struct pathman *pm, const struct sockaddr_storage *addr,
			       socklen_t len);
void pathman_set_local_port(struct pathman *pm, uint16_t port);
/* An address of this host came or went (another network, a new lease):
 * paths that worked may not any more.  Every peer with traffic looks its
 * peer up again and probes every address it knows, at once. */
void pathman_on_local_change(struct pathman *pm);

/* ---- The rendezvous server's link (engine-wide) ---- */

/* How the server is reached now: PATH_RDV_RELAY (UDP), PATH_WS_RELAY, or
 * PATH_NONE (no server configured).  Relayed paths use the same kind. */
enum path_kind pathman_server(const struct pathman *pm);
/* A packet went to the server over UDP (it expects an answer). */
void pathman_on_server_sent(struct pathman *pm, uint64_t now_ms);
/* A packet from the server, authenticated or a CHALLENGE, came over `over`. */
void pathman_on_server_heard(struct pathman *pm, enum path_kind over, uint64_t now_ms);
/* Sending to the server over UDP failed outright. */
void pathman_on_server_send_failed(struct pathman *pm, uint64_t now_ms);
/* Engine-wide actions (PATH_DO_WS_*, PATH_DO_SERVER_PROBE, PATH_DO_REGISTER),
 * one per call: call until false.  pathman_deadline: when next. */
bool pathman_poll(struct pathman *pm, uint64_t now_ms, struct path_action *act);
uint64_t pathman_deadline(const struct pathman *pm);

/* name is for log lines (copied, cut at PATH_NAME_BYTES - 1); home (len
 * 0: none) is the configured endpoint, in our socket's family. */
#define PATH_NAME_BYTES 64
struct peer_paths *path_peer_new(struct pathman *pm, const char *name,
				 const struct sockaddr_storage *home, socklen_t home_len,
				 uint64_t now_ms);
void path_peer_free(struct peer_paths *pp);
/* The configured endpoint changed (a reload); home_len 0: none any more. */
void path_peer_set_home(struct peer_paths *pp, const struct sockaddr_storage *home,
			socklen_t home_len, uint64_t now_ms);

/* ---- Events ---- */

/* An authenticated packet came over `from`: that is where the peer is now
 * (roaming, NAT rebinding, relay).  Returns true when the active path
 * changed. */
bool path_on_receive(struct peer_paths *pp, const struct path_addr *from, uint64_t now_ms);
/* A packet of ours left on `to` (one on the active path expects an answer). */
void path_on_sent(struct peer_paths *pp, const struct path_addr *to, uint64_t now_ms);
/* Sending on `to` failed outright (EPERM, ENETUNREACH...: UDP is blocked
 * here): the relay is tried at once instead of after PATH_RELAY_AFTER_MS. */
void path_on_send_failed(struct peer_paths *pp, const struct path_addr *to, uint64_t now_ms);
/* The rendezvous server's answer (or the peer's punch request): the peer's
 * addresses, its public one first, then those it announced. */
void path_on_candidates(struct peer_paths *pp, const struct path_addr *cands, size_t n,
			uint64_t now_ms);
/* The peers that may forward to this one now (ids the driver gives
 * PATH_VIA paths, at most PATH_MAX_VIAS): its direct sessions, the peer
 * itself excepted.  Called as they change, or every pass. */
void path_set_vias(struct peer_paths *pp, const uint32_t *ids, size_t n);
/* The driver opened the probe sockets a PATH_DO_OPEN_SOCKETS asked for
 * (maybe fewer: out of fds). */
void path_sockets_opened(struct peer_paths *pp, const uint32_t *socks, size_t n);

/* ---- Actions ---- */

/* The next thing to do for this peer, or false when there is nothing now;
 * call until false (a bounded number of times per pass). */
bool path_poll(struct peer_paths *pp, const struct path_status *st, uint64_t now_ms,
	       struct path_action *act);
/* When path_poll has something next; UINT64_MAX: only an event changes it. */
uint64_t path_deadline(const struct peer_paths *pp, const struct path_status *st, uint64_t now_ms);

/* ---- Where packets go ---- */

/* Every path a handshake INIT goes to: where the peer may be (none: no
 * address yet, and no handshake can leave).  Tell path_on_sent about each. */
#define PATH_MAX_TARGETS 12
size_t path_handshake_targets(const struct peer_paths *pp, uint64_t now_ms, struct path_addr *out,
			      size_t cap);

/* path_handshake_targets would name at least one path (cheap). */
bool path_can_handshake(const struct peer_paths *pp, uint64_t now_ms);

/* ---- State, for the driver and status ---- */

const struct path_addr *path_active(const struct peer_paths *pp);
/* An authenticated packet came over the active path. */
bool path_confirmed(const struct peer_paths *pp);
uint64_t path_last_rx_ms(const struct peer_paths *pp);
bool path_silent(const struct peer_paths *pp, uint64_t now_ms);
/* a is one of the peer's direct addresses (configured, reported or active). */
bool path_is_known(const struct peer_paths *pp, const struct path_addr *a);

/* Same place: both through the same relay, or the same address from the
 * same socket. */
bool path_same(const struct path_addr *a, const struct path_addr *b);
bool path_sockaddr_equal(const struct sockaddr_storage *a, const struct sockaddr *b);

#endif
