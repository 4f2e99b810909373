/*
 * srmudp.h — the public API of the srmudp engine.
 *
 * The engine carries reliable, encrypted byte streams between peers that
 * are pinned by public key, over one UDP socket, through NAT.  It runs its
 * own thread; every function here is thread-safe unless it says otherwise.
 *
 * Streams are handed to the application as ordinary local stream sockets:
 * the engine owns one end of an AF_UNIX socket pair (or a loopback TCP
 * connection) and moves bytes between it and the peer.  So read(), write(),
 * shutdown(), close(), poll() and epoll work on a stream as on TCP, and the
 * "pollable fd" of the API is the stream itself.
 *
 * Errors are negative values of enum srm_error; 0 or a non-negative result
 * means success.  srm_strerror() names them.  Example: docs/API.md and
 * tools/example_echo.c.
 */
#ifndef SRMUDP_H
#define SRMUDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SRM_MUST_CHECK __attribute__((warn_unused_result))
#define SRM_EXPORT __attribute__((visibility("default")))
#else
#define SRM_MUST_CHECK
#define SRM_EXPORT
#endif

#define SRM_KEY_BYTES 32
/* A public key as text: unpadded URL-safe base64 of 32 bytes (43 chars). */
#define SRM_PUBKEY_TEXT_LEN 43
#define SRM_PUBKEY_TEXT_BYTES (SRM_PUBKEY_TEXT_LEN + 1)
#define SRM_PEER_NAME_MAX 63
#define SRM_MAX_PEERS 1024

enum srm_error {
	SRM_OK = 0,
	SRM_ERR_INVALID = -1,     /* bad argument, configuration or input */
	SRM_ERR_NOMEM = -2,       /* allocation failed or a bound was reached */
	SRM_ERR_IO = -3,          /* a system call failed; errno says why */
	SRM_ERR_AUTH = -4,        /* authentication or decryption failed */
	SRM_ERR_REFUSED = -5,     /* nothing listens on that port at the peer */
	SRM_ERR_TIMEOUT = -6,     /* the peer did not answer in time */
	SRM_ERR_RESET = -7,       /* the peer aborted the stream */
	SRM_ERR_UNREACHABLE = -8, /* no path to the peer (handshake failed) */
	SRM_ERR_VERSION = -9,     /* protocol version or capability mismatch */
	SRM_ERR_NOTFOUND = -10,   /* no such peer, stream or listener */
	SRM_ERR_EXISTS = -11,     /* already exists (file, peer, listener) */
	SRM_ERR_PERM = -12,       /* permission problem (e.g. key file mode) */
	SRM_ERR_AGAIN = -13,      /* not yet; try again later */
	SRM_ERR_CLOSED = -14,     /* the engine or stream is closed */
};

SRM_EXPORT const char *srm_strerror(int err);

/* ---- Identity keys ------------------------------------------------------ */

/* Create a new private key file at path (mode 0600, never overwriting an
 * existing file) and write its public key as text.  Returns 0,
 * SRM_ERR_EXISTS, SRM_ERR_IO. */
SRM_EXPORT SRM_MUST_CHECK int srm_key_generate(const char *path,
					       char pub_text[SRM_PUBKEY_TEXT_BYTES]);

/* Load a private key file.  A file readable by group or others, or not
 * owned by the caller, is refused with SRM_ERR_PERM.  err gets a one-line
 * message naming the file.  Returns 0, SRM_ERR_PERM, SRM_ERR_INVALID,
 * SRM_ERR_IO. */
SRM_EXPORT SRM_MUST_CHECK int srm_key_load(const char *path,
					   uint8_t secret[SRM_KEY_BYTES],
					   uint8_t pub[SRM_KEY_BYTES],
					   char *err, size_t errlen);

SRM_EXPORT void srm_pubkey_encode(const uint8_t pub[SRM_KEY_BYTES],
				  char text[SRM_PUBKEY_TEXT_BYTES]);
/* Returns 0 or SRM_ERR_INVALID. */
SRM_EXPORT SRM_MUST_CHECK int srm_pubkey_decode(const char *text,
						uint8_t pub[SRM_KEY_BYTES]);

/* ---- Configuration ------------------------------------------------------ */

enum srm_log_level { SRM_LOG_ERROR, SRM_LOG_WARN, SRM_LOG_INFO, SRM_LOG_DEBUG };
enum srm_compress { SRM_COMPRESS_AUTO, SRM_COMPRESS_ON, SRM_COMPRESS_OFF };
enum srm_cc { SRM_CC_BBR, SRM_CC_CUBIC, SRM_CC_NEWRENO };
/* Padding of DATA packets against traffic analysis: none, up to a size
 * bucket (128, 256, 512, 1024 or the path MTU), or always the path MTU. */
enum srm_pad { SRM_PAD_OFF, SRM_PAD_BUCKET, SRM_PAD_MTU };
/* SRMUDP_WARMUP, read by the preload (the engine ignores it): start the
 * engine, and with it the handshakes with peers of known address, when the
 * program starts instead of on its first connect().  auto: only in the
 * program `srmudp run` started, and not with a fixed SRMUDP_LISTEN port
 * (a wrapper such as `sh -c` must not take the port its child needs). */
enum srm_warmup { SRM_WARMUP_AUTO, SRM_WARMUP_ON, SRM_WARMUP_OFF };

struct srm_peer_config {
	char name[SRM_PEER_NAME_MAX + 1];
	uint8_t pubkey[SRM_KEY_BYTES];
	struct sockaddr_storage endpoint; /* endpoint_len 0: not known */
	socklen_t endpoint_len;
};

/* SRMUDP_RELAY: one WebSocket relay, and where its TCP connection goes:
 * the HTTP proxy that leads there, if any, else the relay itself (names
 * are resolved when the configuration is read, as for SRMUDP_RENDEZVOUS). */
#define SRM_RELAY_MAX 8
struct srm_relay_config {
	char url[512];   /* ws:// or wss:// */
	char proxy[512]; /* http:// proxy URL; "" connects directly */
	struct sockaddr_storage connect_to;
	socklen_t connect_len;
};

/* One SRMUDP_RENDEZVOUS entry, HOST:PORT or KEY@HOST:PORT: with a key
 * (pinned), only answers authenticated under it count. */
#define SRM_RENDEZVOUS_MAX 8
#define SRM_GATES_MAX 8
struct srm_rendezvous_config {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	uint8_t key[SRM_KEY_BYTES];
	int pinned;
};

/* SRMUDP_ALLOW: the peer named peer may reach port; port 0 stands for
 * every port (NAME=*).  By name, not index: a rule means the same peer
 * in any process and across a change of the peer list. */
struct srm_allow_rule {
	char peer[SRM_PEER_NAME_MAX + 1];
	uint16_t port;
};

struct srm_config {
	char key_path[4096];
	struct srm_peer_config *peers;
	size_t peer_count;
	struct sockaddr_storage listen; /* UDP bind address; port 0 = ephemeral */
	socklen_t listen_len;
	/* SRMUDP_RENDEZVOUS: the servers, in order; the engine uses one at a
	 * time and moves to the next when it stops answering (docs/NAT.md). */
	struct srm_rendezvous_config rendezvous[SRM_RENDEZVOUS_MAX];
	size_t rendezvous_count;
	enum srm_log_level log_level;
	char log_file[4096]; /* empty: stderr */
	enum srm_compress compress;
	enum srm_cc cc;
	uint32_t connect_timeout_ms;
	uint32_t idle_timeout_ms; /* dead-peer detection */
	/* Per-peer limits on what we accept (0: none); excess packets are
	 * dropped before decryption and counted as SRM_DROP_RATELIMIT. */
	uint64_t rate_bytes;      /* bytes per second */
	uint64_t rate_packets;    /* packets per second */
	enum srm_pad pad;
	/* SRMUDP_GSO=off: one datagram per send and per receive, no UDP
	 * segmentation offload (packet captures on this host then show each
	 * datagram as it is on the wire). */
	int gso_off;
	/* After a wake-up that moved packets, the engine thread polls this
	 * many microseconds before it sleeps (SRMUDP_BUSY_POLL; 0: never),
	 * yielding the CPU on every turn: a request's answer is then picked up
	 * without a scheduler wake-up.  srm_config_defaults sets 100. */
	uint32_t busy_poll_us;
	enum srm_warmup warmup;
	/* SRMUDP_RELAY, tried in order where UDP to the rendezvous server
	 * gets no answer (docs/NAT.md); SRMUDP_PROXY (proxy_set: given, even
	 * empty, which means no proxy) and SRMUDP_RELAY_CA (a CA file for
	 * wss://; "" the system's). */
	struct srm_relay_config relays[SRM_RELAY_MAX];
	size_t relay_count;
	char proxy[512];
	int proxy_set;
	char relay_ca[4096];
	/* Access control (docs/SECURITY.md, srm_access_check).  expose: the
	 * ports of listeners bound to a loopback address that peers may
	 * reach anyway (SRMUDP_EXPOSE), sorted, each once.  allow (when
	 * allow_set): which peer may reach which port (SRMUDP_ALLOW), sorted
	 * by peer name then port; a peer without a rule reaches nothing.  Both are
	 * allocated; srm_config_free releases them, and the engine keeps its
	 * own copy. */
	uint16_t *expose;
	size_t expose_count;
	struct srm_allow_rule *allow;
	size_t allow_count;
	int allow_set;
	/* Gates (docs/NAT.md "Gates").  gate: this engine also introduces and
	 * relays for its peers (SRMUDP_GATE=on; `srmudp gate` does only that).
	 * gates: SRMUDP_GATES, the names of configured peers with an endpoint
	 * that introduce and relay for us; tried in order before the
	 * rendezvous servers, as the servers are. */
	int gate;
	char gates[SRM_GATES_MAX][SRM_PEER_NAME_MAX + 1];
	size_t gate_count;
	/* SRMUDP_VIA=off: never forward between two of our peers that cannot
	 * reach each other otherwise ("connect via", docs/NAT.md). */
	int via_off;
	/* SRMUDP_GATE_CACHE: the file that keeps the gates our gates announced
	 * (docs/NAT.md "Gates"); "" the default ($XDG_STATE_HOME/srmudp/gates,
	 * else ~/.local/state/srmudp/gates); gate_cache_off: none. */
	char gate_cache[4096];
	int gate_cache_off;
};

/* Fill cfg with defaults, then the optional file named by SRMUDP_CONFIG,
 * then the SRMUDP_* environment (which wins).  On error returns
 * SRM_ERR_INVALID and err holds one line naming the variable (or file and
 * line) and the offending token.  Release with srm_config_free(). */
SRM_EXPORT SRM_MUST_CHECK int srm_config_from_env(struct srm_config *cfg,
						  char *err, size_t errlen);
SRM_EXPORT void srm_config_defaults(struct srm_config *cfg);
SRM_EXPORT void srm_config_free(struct srm_config *cfg);
/* The configured peer whose name is a typo away from name (at most two
 * edits, one per three letters), for a hint; NULL if none is. */
SRM_EXPORT const char *srm_peer_suggest(const struct srm_config *cfg, const char *name);

/* Why a stream a peer opened was refused (the peer's connect() gets
 * ECONNREFUSED in every case, as for a closed TCP port); counted per
 * engine and per peer (srm_engine_stats, srmudp status). */
enum srm_refusal {
	SRM_REFUSED_NONE,     /* not refused: srm_access_check allows it */
	SRM_REFUSED_CLOSED,   /* nothing listens on the port */
	SRM_REFUSED_LOOPBACK, /* the listener is bound to loopback and the
			       * port is not in SRMUDP_EXPOSE */
	SRM_REFUSED_PEER,     /* SRMUDP_ALLOW does not let this peer reach it */
	SRM_REFUSALS
};
/* The access rule, for every way a peer reaches a local port (preloaded
 * listeners, srmudp serve --expose, gates): may the peer named peer (a
 * configured name, lowercase) open a stream to port, served by a
 * listener bound to a loopback address only (loopback != 0) or not?  An
 * explicit exposure (srmudp serve --expose, a gate) passes loopback 0.
 * Uses only cfg's expose and allow fields.  Returns SRM_REFUSED_NONE,
 * SRM_REFUSED_LOOPBACK or SRM_REFUSED_PEER.  Pure: no lock, no I/O. */
SRM_EXPORT enum srm_refusal srm_access_check(const struct srm_config *cfg, const char *peer,
					     uint16_t port, int loopback);
/* "closed", "loopback", "not-allowed" ("" for SRM_REFUSED_NONE). */
SRM_EXPORT const char *srm_refusal_name(enum srm_refusal r);

/* ---- Engine ------------------------------------------------------------- */

typedef struct srm_engine srm_engine;

/* Load the key, bind the UDP socket, start the engine thread.  All fds the
 * engine makes are CLOEXEC and numbered above FD_SETSIZE where possible. */
SRM_EXPORT SRM_MUST_CHECK int srm_engine_start(const struct srm_config *cfg,
					       srm_engine **out,
					       char *err, size_t errlen);
/* Apply a new configuration to a running engine (`srmudp reload`, SIGHUP
 * of `srmudp serve`; docs/OPERATIONS.md).  Peers are matched by name:
 * added ones are usable at once, removed ones and ones with a new key
 * have their sessions closed (keys wiped, the peer told) and their
 * streams reset before this returns; endpoints are taken as given (parse
 * with srm_config_from_env to resolve host names again).  Peers that stay
 * keep their index; a removed peer's index is never reused (srm_peer_get
 * then says NOTFOUND).  Logging, rate limits, padding and busy polling
 * change at once; the access rules for streams peers open after; compression, congestion control and the timeouts for
 * sessions and streams that start after.  cfg->key_path must be the
 * running key (else INVALID, nothing changes); the listen address, GSO,
 * the rendezvous server, relays, proxy and warm-up keep their running
 * values, and msg names those that differ as needing a restart.  msg gets
 * one line: what changed, or why nothing did.  The caller keeps cfg.
 * Returns 0, INVALID, NOMEM (nothing changed) or CLOSED. */
SRM_EXPORT int srm_engine_reload(srm_engine *e, const struct srm_config *cfg, char *msg,
				 size_t msglen);
/* Abort every stream, stop the thread, close every fd, wipe every key. */
SRM_EXPORT void srm_engine_stop(srm_engine *e);
/* Finish every stream as if the application had closed its end: send
 * what it wrote, then FIN, and wait up to timeout_ms until the peers have
 * acknowledged all of it.  For a program that is exiting: its kernel would
 * keep sending a TCP socket's data, but the engine dies with the process.
 * Returns 0, or SRM_ERR_TIMEOUT if data was still unacknowledged. */
SRM_EXPORT int srm_engine_drain(srm_engine *e, int timeout_ms);
/* For a child after fork(), where the engine's thread does not exist:
 * close the child's copies of the engine's fds (the parent's engine keeps
 * serving its streams) and forget the engine without freeing it. */
SRM_EXPORT void srm_engine_abandon(srm_engine *e);

/* Nonzero if fd is one of the engine's own descriptors (its socket, epoll,
 * event and stream fds).  Lock-free; for the preload's close/dup hooks,
 * which must never let the application close or overwrite them. */
SRM_EXPORT int srm_engine_owns_fd(srm_engine *e, int fd);

/* The bound UDP port (useful with an ephemeral port). */
SRM_EXPORT int srm_engine_udp_port(srm_engine *e);

/* A gate (cfg.gate, `srmudp gate --ws-listen`) also takes members over
 * WebSocket on the TCP address addr (path /srmudp), for members whose
 * network blocks UDP (docs/NAT.md "Gates"); wss:// with tls_cert and
 * tls_key (PEM files, both or neither; the first call decides for all).
 * text names the address in logs and errors.  Returns 0, or
 * SRM_ERR_INVALID (no gate), SRM_ERR_IO or SRM_ERR_NOMEM with err
 * filled. */
SRM_EXPORT SRM_MUST_CHECK int srm_engine_gate_ws_listen(srm_engine *e, const struct sockaddr *addr,
							socklen_t len, const char *text,
							const char *tls_cert, const char *tls_key,
							char *err, size_t errlen);

/* Returns the peer index (>= 0) for a configured name, or SRM_ERR_NOTFOUND. */
SRM_EXPORT int srm_peer_find(srm_engine *e, const char *name);
/* Copy the configuration of peer index into out.  Returns 0 or NOTFOUND. */
SRM_EXPORT int srm_peer_get(srm_engine *e, int peer, struct srm_peer_config *out);

/* ---- Streams ------------------------------------------------------------ */

/* Open a stream to port on peer, bridged to fd.  The engine takes ownership
 * of fd (its end of an AF_UNIX SOCK_STREAM pair, or an accepted TCP
 * connection, which a refusal or reset then resets) even on failure.  The
 * caller may have written prefill filler bytes into its own end, to hold
 * POLLOUT low until the stream opens; the engine discards exactly those
 * bytes when the stream opens or fails.  *stream gets a handle for
 * srm_stream_state/wait/abort.  Returns 0, NOTFOUND, NOMEM, CLOSED, or
 * UNREACHABLE at once while the peer was just found unreachable (an open
 * failed so within the last 3 s, and the peer has not handshaken since). */
SRM_EXPORT SRM_MUST_CHECK int srm_stream_open(srm_engine *e, int peer, uint16_t port,
					      int fd, size_t prefill, uint64_t *stream);

/* 0 once open, SRM_ERR_AGAIN while opening, or why it failed or ended
 * abnormally: REFUSED, TIMEOUT, UNREACHABLE, RESET.  A stream that ended
 * cleanly and was forgotten reports 0. */
SRM_EXPORT int srm_stream_state(srm_engine *e, uint64_t stream);
/* Wait until the stream is no longer opening, at most timeout_ms (-1: the
 * engine's connect timeout).  Returns as srm_stream_state. */
SRM_EXPORT int srm_stream_wait(srm_engine *e, uint64_t stream, int timeout_ms);
struct srm_stream_stats {
	int peer;              /* peer index */
	uint16_t port;         /* the port it was opened to, or accepted on */
	int outgoing;          /* we opened it */
	int state;             /* as srm_stream_state() */
	uint64_t tx_buffered;  /* bytes sent and not yet acknowledged */
	uint64_t rx_buffered;  /* bytes received and not yet delivered */
};
/* Returns 0, or SRM_ERR_NOTFOUND once the stream has ended. */
SRM_EXPORT int srm_stream_stats(srm_engine *e, uint64_t stream, struct srm_stream_stats *out);

/* How streams ended abnormally, reported once across processes, as TCP
 * reports a reset once per socket.  A child forked after the stream
 * opened keeps using the engine's board; an image it exec'd attaches to
 * the board of the engine in process engine_pid (kept in the runtime
 * directory, so only the same user can).  srm_ends_take returns what
 * srm_stream_state says for a stream that ended abnormally (RESET,
 * TIMEOUT, ...) to its first caller, and 0 after, or if the stream is not
 * known to have ended so.  Lock-free. */
typedef struct ends_board srm_ends;
SRM_EXPORT srm_ends *srm_engine_ends(srm_engine *e);
SRM_EXPORT srm_ends *srm_ends_attach(pid_t engine_pid);
SRM_EXPORT int srm_ends_take(srm_ends *ends, uint64_t stream);
SRM_EXPORT void srm_ends_detach(srm_ends *ends);

/* Abort: the peer sees a reset (like close with SO_LINGER {1,0}). */
SRM_EXPORT void srm_stream_abort(srm_engine *e, uint64_t stream);

/* Accept streams that peers open to port.
 * forward_to != NULL: the engine connects each stream by TCP to that
 *   address and bridges it; if that connect is refused the peer's open is
 *   refused.  srm_forwarded_peer() maps such a TCP connection back.
 * forward_to == NULL: streams queue for srm_accept(); the returned value is
 *   then a pollable fd, readable while streams are waiting.
 * Returns 0 (forwarding), a fd >= 0 (queueing), EXISTS, NOMEM. */
SRM_EXPORT int srm_listen(srm_engine *e, uint16_t port,
			  const struct sockaddr *forward_to, socklen_t forward_len);
/* srm_listen with forward_to, for a listening socket of this process that
 * claims each connection it accepts with srm_forwarded_claim: the TCP
 * connection only makes the listener readable and gives accept()
 * something to return; the bytes then travel through a socket pair (the
 * loopback TCP stack costs more per message).  Returns 0, EXISTS, NOMEM,
 * INVALID. */
SRM_EXPORT int srm_listen_handoff(srm_engine *e, uint16_t port,
				  const struct sockaddr *forward_to, socklen_t forward_len);
/* srm_listen with flags: SRM_LISTEN_HANDOFF is srm_listen_handoff;
 * SRM_LISTEN_LOOPBACK says the local socket is bound to a loopback
 * address only, so peers reach it only if the configuration exposes the
 * port (SRMUDP_EXPOSE; srm_access_check).  The first registration of a
 * port decides.  Returns as srm_listen. */
#define SRM_LISTEN_HANDOFF 1u
#define SRM_LISTEN_LOOPBACK 2u
SRM_EXPORT int srm_listen_flags(srm_engine *e, uint16_t port, const struct sockaddr *forward_to,
				socklen_t forward_len, unsigned flags);
SRM_EXPORT int srm_unlisten(srm_engine *e, uint16_t port);
/* Take a queued stream: returns its fd (the application's end) and the
 * peer index in *peer, or SRM_ERR_AGAIN. */
SRM_EXPORT int srm_accept(srm_engine *e, uint16_t port, int *peer);
/* For a TCP connection accepted from a forwarding listener, whose remote
 * address is local_src: which peer opened it.  Returns the peer index or
 * SRM_ERR_NOTFOUND. */
SRM_EXPORT int srm_forwarded_peer(srm_engine *e, const struct sockaddr *local_src,
				  socklen_t len);
/* For a TCP connection tcp_fd accepted from a handoff listener, whose
 * remote address is local_src: take the stream over.  Returns the
 * application's end of its socket pair (blocking, close-on-exec; put it in
 * tcp_fd's place) with the stream's handle in *stream (srm_stream_state,
 * the ends board); what the engine had written to the TCP connection is
 * read from tcp_fd and comes first on the pair.  Negative: NOTFOUND (not a
 * handoff stream), AGAIN (bytes still on their way), NOMEM, IO; the
 * stream then stays on TCP, untouched. */
SRM_EXPORT int srm_forwarded_claim(srm_engine *e, const struct sockaddr *local_src,
				   socklen_t len, int tcp_fd, uint64_t *stream);

/* ---- Statistics --------------------------------------------------------- */

struct srm_peer_stats {
	int established;          /* a session is up */
	int relayed;              /* the path goes through a relay */
	struct sockaddr_storage path;
	uint32_t srtt_us, rttvar_us, min_rtt_us;
	uint64_t cwnd_bytes;
	uint32_t pmtu;            /* UDP payload bytes */
	uint64_t bytes_sent, bytes_received;       /* UDP payload bytes */
	uint64_t stream_bytes_sent, stream_bytes_received; /* application bytes */
	uint64_t packets_sent, packets_received, packets_lost, packets_retransmitted;
	uint32_t streams;
	uint64_t handshake_age_ms;
	/* Streams whose OPEN rode in the handshake (ours answered in the
	 * peer's RESP, or the peer's answered in ours): connect() took one
	 * round trip although the session was new. */
	uint64_t early_opens;
	/* Streams this peer opened to us that we refused, by reason. */
	uint64_t refused[SRM_REFUSALS];
};

enum srm_drop_reason {
	SRM_DROP_MALFORMED,  /* too short, bad type, bad frame */
	SRM_DROP_VERSION,    /* unknown protocol version */
	SRM_DROP_MAC,        /* mac1/mac2 check failed */
	SRM_DROP_AUTH,       /* AEAD authentication failed */
	SRM_DROP_REPLAY,     /* counter already seen or too old */
	SRM_DROP_UNKNOWN_PEER, /* key not configured */
	SRM_DROP_UNKNOWN_INDEX, /* no session with that receiver index */
	SRM_DROP_RATELIMIT,  /* handshake or peer rate limit */
	SRM_DROP_COOKIE,     /* under load and no valid cookie */
	SRM_DROP_STALE,      /* old handshake timestamp or expired keys */
	SRM_DROP_REASONS
};

struct srm_engine_stats {
	uint32_t peers, sessions, streams;
	uint64_t packets_received, packets_sent;
	uint64_t drops[SRM_DROP_REASONS];
	uint64_t refused[SRM_REFUSALS]; /* streams peers opened, refused */
};

SRM_EXPORT int srm_peer_stats(srm_engine *e, int peer, struct srm_peer_stats *out);
SRM_EXPORT void srm_engine_stats(srm_engine *e, struct srm_engine_stats *out);
SRM_EXPORT const char *srm_drop_reason_name(enum srm_drop_reason r);

/* ---- Status (srmudp status) --------------------------------------------- */

/* Every engine serves a JSON description of itself (peers, paths, RTT,
 * loss, windows, streams, drop counters; docs/OPERATIONS.md) to its own
 * user on an AF_UNIX socket RUNDIR/PID.sock.  RUNDIR is
 * $XDG_RUNTIME_DIR/srmudp, else /run/user/UID/srmudp, else
 * /dev/shm/srmudp-UID, else /tmp/srmudp-UID; it is created with mode 0700.
 * If that directory is not ours alone (another user made it first, it is
 * open to others, or it is a link), RUNDIR is a private RUNDIR.XXXXXX
 * beside it instead (made once, found again by every process of ours;
 * one warning per process).  Returns 0, SRM_ERR_IO, or SRM_ERR_PERM when
 * no private directory can be made either. */
SRM_EXPORT int srm_runtime_dir(char *out, size_t len);
/* Remove sockets in dir whose process is gone. */
SRM_EXPORT void srm_control_sweep(const char *dir);

#ifdef __cplusplus
}
#endif
#endif
