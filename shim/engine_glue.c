/*
 * engine_glue.c — lazy configuration and engine start (see engine_glue.h).
 *
 * Lock order: glue lock before the state lock; nothing here is called with
 * the state lock held.
 */
#include "engine_glue.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fork.h"
#include "log.h" /* core/config/log.h: the one line format */
#include "real.h"
#include "vaddr.h"

#define ERR_LEN 512

static pthread_mutex_t glue_mtx = PTHREAD_MUTEX_INITIALIZER;
static int enabled = -1;
static int cfg_state; /* 0 not parsed, 1 ok, -1 invalid (reported) */
static struct srm_config cfg;
static srm_engine *engine;
static int start_failed;
static int forked_child; /* a fork child of an engine owner */
/* A thread parses the configuration or starts the engine under the lock
 * (warmup.c's, or another of the program's): the files it reads and the
 * engine's fds exist before the engine can claim them. */
static int starting;
static int exiting; /* glue_at_exit ran: no warm-up start after it */
/* Set while this thread parses the configuration or starts the engine:
 * both call hooked functions (config.c resolves endpoint host names with
 * getaddrinfo), which must then pass through instead of re-entering. */
static __thread int busy;

int glue_busy(void)
{
	return busy;
}

/* This thread parses the configuration or starts the engine (under the
 * lock): its hooked calls pass through, and other threads that would close
 * fds wait for it (glue_engine_if_running). */
static void own_work_begin(void)
{
	busy++;
	__atomic_store_n(&starting, 1, __ATOMIC_RELEASE);
}

static void own_work_end(void)
{
	__atomic_store_n(&starting, 0, __ATOMIC_RELEASE);
	busy--;
}

void glue_lock(void)
{
	pthread_mutex_lock(&glue_mtx);
}

void glue_unlock(void)
{
	pthread_mutex_unlock(&glue_mtx);
}

int glue_enabled(void)
{
	int e = __atomic_load_n(&enabled, __ATOMIC_RELAXED);

	if (e < 0) {
		const char *p = getenv("SRMUDP_PEERS"), *c = getenv("SRMUDP_CONFIG");

		e = (p && *p) || (c && *c);
		__atomic_store_n(&enabled, e, __ATOMIC_RELAXED);
	}
	return e;
}

/* The engine's line format (log_format), written with the real write():
 * log_write() would re-enter the write() hook, and writes to the engine's
 * log fd, which does not exist before the engine starts.  The file is
 * opened per line: the glue logs rarely. */
static void vlog_line(enum srm_log_level level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n = log_format(line, sizeof(line), level, NULL, fmt, ap);
	int fd = 2;

	if (cfg_state == 1 && cfg.log_file[0]) {
		fd = open(cfg.log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			fd = 2;
	}
	if (real_write(fd, line, n) < 0) {
		/* nowhere left to report it */
	}
	if (fd != 2)
		real_close(fd);
}

void glue_log(enum srm_log_level level, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;
	enum srm_log_level max = cfg_state == 1 ? cfg.log_level : SRM_LOG_ERROR;

	if (level > max)
		return;
	va_start(ap, fmt);
	vlog_line(level, fmt, ap);
	va_end(ap);
	errno = saved;
}

/* The documented one-line error, always shown (even with SRMUDP_LOG
 * quiet): a bad configuration must never fail silently. */
static void report(const char *what, const char *msg)
{
	char line[768];
	int n = snprintf(line, sizeof(line), "srmudp: %s%s\n", what, msg);

	if (n > 0 && real_write(2, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0) {
		/* stderr closed: nothing to do */
	}
}

static const struct srm_config *config_locked(void)
{
	char err[ERR_LEN] = "";

	if (cfg_state == 0) {
		int r;

		fork_install();
		own_work_begin();
		r = srm_config_from_env(&cfg, err, sizeof(err));
		own_work_end();
		if (r == 0) {
			cfg_state = 1;
		} else {
			cfg_state = -1;
			report("", err[0] ? err : "invalid configuration");
		}
	}
	return cfg_state == 1 ? &cfg : NULL;
}

const struct srm_config *glue_config(void)
{
	const struct srm_config *c;
	int saved = errno;

	if (!glue_enabled() || busy)
		return NULL;
	pthread_mutex_lock(&glue_mtx);
	c = config_locked();
	pthread_mutex_unlock(&glue_mtx);
	errno = saved;
	return c;
}

int glue_peer_index(const char *name)
{
	const struct srm_config *c;
	srm_engine *e;
	size_t len;
	static const char suffix[] = ".srmudp";

	if (!name || !glue_enabled() || !(c = glue_config()))
		return -1;
	len = strlen(name);
	if (len && name[len - 1] == '.') /* fully qualified form */
		len--;
	if (len > sizeof(suffix) - 1 &&
	    !strncasecmp(name + len - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1))
		len -= sizeof(suffix) - 1;
	e = glue_engine_if_running();
	if (e) {
		/* The engine numbers its peers, which a reload changes: the
		 * names it holds now (stored lowercase). */
		char low[SRM_PEER_NAME_MAX + 1];
		int idx;

		if (len > SRM_PEER_NAME_MAX)
			return -1;
		for (size_t i = 0; i < len; i++)
			low[i] = (char)tolower((unsigned char)name[i]);
		low[len] = '\0';
		idx = srm_peer_find(e, low);
		return idx >= 0 && idx <= VADDR_MAX_INDEX ? idx : -1;
	}
	for (size_t i = 0; i < c->peer_count && i <= VADDR_MAX_INDEX; i++)
		if (strlen(c->peers[i].name) == len && !strncasecmp(c->peers[i].name, name, len))
			return (int)i;
	return -1;
}

void glue_peer_hint(const char *name)
{
	const struct srm_config *c;
	const char *near;

	if (!name || !glue_enabled() || !(c = glue_config()) || !(near = srm_peer_suggest(c, name)))
		return;
	glue_log(SRM_LOG_INFO, "no peer named %s (did you mean %s?); asking the system resolver",
		 name, near);
}

const char *glue_peer_name(int idx)
{
	/* Per thread: the engine's copy may change under a reload. */
	static __thread char name[SRM_PEER_NAME_MAX + 1];
	const struct srm_config *c = glue_config();
	srm_engine *e;

	if (!c || idx < 0)
		return NULL;
	e = glue_engine_if_running();
	if (e) {
		/* Virtual addresses are the engine's peer indices: one that
		 * a reload removed stands for nobody any more. */
		struct srm_peer_config pc;

		if (srm_peer_get(e, idx, &pc) != 0)
			return NULL;
		memcpy(name, pc.name, sizeof(name));
		return name;
	}
	if ((size_t)idx >= c->peer_count)
		return NULL;
	return c->peers[idx].name;
}

static int glue_fixed_udp_port_locked(const struct srm_config *c)
{
	if (!c->listen_len)
		return 0;
	return ntohs(((const struct sockaddr_in *)&c->listen)->sin_port);
}

/* What `srmudp run` checks before it starts a program (tools/cli.c), with
 * the same words, so a preloaded program reports the same one line. */
static int preflight(const struct srm_config *c)
{
	uint8_t secret[SRM_KEY_BYTES], pub[SRM_KEY_BYTES];
	char err[ERR_LEN] = "", line[ERR_LEN + 64];
	int r;

	if (!c->key_path[0]) {
		report("", "SRMUDP_KEY is not set (make a key with: srmudp keygen FILE)");
		return -1;
	}
	r = srm_key_load(c->key_path, secret, pub, err, sizeof(err));
	explicit_bzero(secret, sizeof(secret));
	if (r != 0) {
		report("SRMUDP_KEY: ", err[0] ? err : srm_strerror(r));
		return -1;
	}
	for (size_t i = 0; i < c->peer_count; i++) {
		if (!memcmp(c->peers[i].pubkey, pub, SRM_KEY_BYTES)) {
			snprintf(line, sizeof(line), "peer \"%s\" has this host's own public key",
				 c->peers[i].name);
			report("SRMUDP_PEERS: ", line);
			return -1;
		}
	}
	return 0;
}

static srm_engine *start_locked(int allow_ephemeral_fallback)
{
	const struct srm_config *c = config_locked();
	char err[ERR_LEN] = "";
	int r;

	if (engine || !c)
		return engine;
	own_work_begin();
	if (preflight(c) != 0) {
		own_work_end();
		start_failed = 1;
		return NULL;
	}
	r = srm_engine_start(c, &engine, err, sizeof(err));
	if (r == SRM_ERR_IO && allow_ephemeral_fallback && glue_fixed_udp_port_locked(c)) {
		/* A forked child while its parent still holds the configured
		 * UDP port (errno does not survive the engine's cleanup, so
		 * any I/O failure of a fixed port counts): outgoing streams
		 * work from an ephemeral port. */
		struct srm_config alt = *c;

		if (alt.listen.ss_family == AF_INET)
			((struct sockaddr_in *)&alt.listen)->sin_port = 0;
		else
			((struct sockaddr_in6 *)&alt.listen)->sin6_port = 0;
		glue_log(SRM_LOG_INFO, "UDP port busy (parent process?), using an ephemeral port");
		r = srm_engine_start(&alt, &engine, err, sizeof(err));
	}
	own_work_end();
	if (r < 0) {
		engine = NULL;
		if (!start_failed)
			report(err[0] ? "" : "engine start failed: ", err[0] ? err : srm_strerror(r));
		start_failed = 1;
		return NULL;
	}
	return engine; /* the engine logs its start */
}

srm_engine *glue_engine(void)
{
	srm_engine *e;
	int saved = errno;

	if (!glue_enabled() || busy)
		return NULL;
	e = __atomic_load_n(&engine, __ATOMIC_ACQUIRE);
	if (e)
		return e;
	pthread_mutex_lock(&glue_mtx);
	e = start_failed ? NULL : start_locked(forked_child);
	pthread_mutex_unlock(&glue_mtx);
	errno = saved;
	return e;
}

void glue_warm_up(void)
{
	int saved = errno;

	pthread_mutex_lock(&glue_mtx);
	if (!exiting && !start_failed)
		start_locked(forked_child);
	pthread_mutex_unlock(&glue_mtx);
	errno = saved;
}

srm_engine *glue_engine_if_running(void)
{
	/* A program that closes every fd early (ssh's closefrom) must not
	 * close the files of a start still under way: wait for it (that
	 * thread holds the lock; its own calls pass). */
	if (__atomic_load_n(&starting, __ATOMIC_ACQUIRE) && !busy) {
		pthread_mutex_lock(&glue_mtx);
		pthread_mutex_unlock(&glue_mtx);
	}
	return __atomic_load_n(&engine, __ATOMIC_ACQUIRE);
}

int glue_udp_port_free(void)
{
	const struct srm_config *c = glue_config();
	int fd, r, off = 0;

	if (!c || !c->listen_len)
		return 1;
	fd = socket(c->listen.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 1;
	if (c->listen.ss_family == AF_INET6) /* the engine binds dual stack */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	r = bind(fd, (const struct sockaddr *)&c->listen, c->listen_len);
	real_close(fd);
	return r == 0;
}

int glue_start_for_listeners(void)
{
	int r;
	int saved = errno;

	pthread_mutex_lock(&glue_mtx);
	if (engine) {
		r = 0;
	} else {
		/* No ephemeral fallback: peers expect the configured port.
		 * Quietly retried by the caller while the port is busy. */
		int was = start_failed;

		start_failed = 1; /* silence the report while retrying */
		r = config_locked() && start_locked(0) ? 0 : -1;
		start_failed = r == 0 ? 0 : was;
	}
	pthread_mutex_unlock(&glue_mtx);
	errno = saved;
	return r;
}

int glue_fixed_udp_port(void)
{
	const struct srm_config *c = glue_config();

	return c ? glue_fixed_udp_port_locked(c) : 0;
}

int glue_engine_peer(srm_engine *e, int idx)
{
	struct srm_peer_config pc;

	/* The engine's indices are the virtual addresses' (glue_peer_name). */
	return srm_peer_get(e, idx, &pc) == 0 ? idx : SRM_ERR_NOTFOUND;
}

int glue_fd_is_engine(int fd)
{
	srm_engine *e = glue_engine_if_running();

	/* The engine's own calls never reach our hooks (core/driver/sys.h):
	 * only the application's close() or dup2() meets this. */
	return e && fd >= 0 && srm_engine_owns_fd(e, fd) > 0;
}

/* Boards of the engines whose streams we inherited: usually one. */
#define ENDS_CACHE 4
static struct {
	pid_t pid;
	srm_ends *ends;
} ends_cache[ENDS_CACHE];

srm_ends *glue_ends(pid_t pid)
{
	srm_ends *ends = NULL;
	int i;

	pthread_mutex_lock(&glue_mtx);
	for (i = 0; i < ENDS_CACHE && ends_cache[i].pid; i++)
		if (ends_cache[i].pid == pid)
			ends = ends_cache[i].ends;
	if (!ends && i < ENDS_CACHE && (ends = srm_ends_attach(pid))) {
		ends_cache[i].pid = pid;
		ends_cache[i].ends = ends;
	}
	pthread_mutex_unlock(&glue_mtx);
	return ends;
}

void glue_child_after_fork(void)
{
	pthread_mutex_init(&glue_mtx, NULL);
	if (!engine && !forked_child)
		return;
	if (engine)
		srm_engine_abandon(engine);
	engine = NULL;
	start_failed = 0;
	forked_child = 1;
}

/* The program is exiting (exit() or return from main).  Its kernel would
 * keep sending what it wrote to TCP sockets; our engine dies with the
 * process, so first let it deliver every stream and its FIN, bounded by
 * the idle timeout in case a peer is gone. */
/* Bounded tighter than the idle timeout: the exiting process holds its
 * UDP port until then, and a restarted program may want it back. */
#define EXIT_DRAIN_MAX_MS 10000

__attribute__((destructor)) static void glue_at_exit(void)
{
	srm_engine *e;
	const struct srm_config *c;
	int saved = errno;

	/* The lock waits out a start in progress (warmup.c's thread), and
	 * none begins after this. */
	pthread_mutex_lock(&glue_mtx);
	exiting = 1;
	e = __atomic_exchange_n(&engine, NULL, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&glue_mtx);
	if (!e)
		return; /* no engine: nothing to drain, and no config to parse */
	c = cfg_state == 1 ? &cfg : NULL;
	int ms = c && c->idle_timeout_ms && c->idle_timeout_ms < EXIT_DRAIN_MAX_MS
			 ? (int)c->idle_timeout_ms : EXIT_DRAIN_MAX_MS;
	if (srm_engine_drain(e, ms) != 0)
		glue_log(SRM_LOG_WARN, "exiting with data not yet acknowledged by the peer");
	srm_engine_stop(e);
	errno = saved;
}
