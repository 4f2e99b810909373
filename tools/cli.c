/*
 * cli.c — helpers shared by the srmudp subcommands (see cli.h).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"

const char *cli_name = "srmudp";

void cli_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", cli_name, msg);
}

static int sig_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
	unsigned char b = (unsigned char)sig;
	int saved = errno;

	if (write(sig_pipe[1], &b, 1) < 0) {
		/* the pipe is full: a signal is already pending */
	}
	errno = saved;
}

int cli_signal_pipe(void)
{
	struct sigaction sa;

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	return sig_pipe[0];
}

int cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return 1;
	}
	return 0;
}

int cli_parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 5)
			return SRM_ERR_INVALID;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || v == 0 || v > 65535)
		return SRM_ERR_INVALID;
	*port = (uint16_t)v;
	return 0;
}

int cli_parse_hostport(const char *s, int numeric, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon, *h = s;
	size_t hl;
	struct addrinfo hints = { 0 }, *ai = NULL;
	uint16_t port;

	if (*s == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return SRM_ERR_INVALID;
		h = s + 1;
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		/* An IPv6 address needs its brackets: "::1:80" is ambiguous. */
		colon = strrchr(s, ':');
		if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
			return SRM_ERR_INVALID;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof(host) || cli_parse_port(colon + 1, &port) != 0)
		return SRM_ERR_INVALID;
	memcpy(host, h, hl);
	host[hl] = '\0';
	hints.ai_flags = numeric ? AI_NUMERICHOST | AI_PASSIVE : 0;
	hints.ai_socktype = SOCK_DGRAM;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || ai == NULL)
		return SRM_ERR_INVALID;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

int cli_load_config(struct srm_config *cfg, uint8_t pub[SRM_KEY_BYTES])
{
	uint8_t secret[SRM_KEY_BYTES];
	char err[1024], q[QUOTE_BUF];
	int rc, fd;

	rc = srm_config_from_env(cfg, err, sizeof(err));
	if (rc != 0) {
		cli_error("%s", err[0] ? err : srm_strerror(rc));
		return rc;
	}
	if (cfg->key_path[0] == '\0') {
		cli_error("SRMUDP_KEY is not set (make a key with: srmudp keygen FILE)");
		goto fail;
	}
	err[0] = '\0';
	rc = srm_key_load(cfg->key_path, secret, pub, err, sizeof(err));
	explicit_bzero(secret, sizeof(secret));
	if (rc != 0) {
		cli_error("SRMUDP_KEY: %s", err[0] ? err : srm_strerror(rc));
		goto fail;
	}
	for (size_t i = 0; i < cfg->peer_count; i++) {
		if (memcmp(cfg->peers[i].pubkey, pub, SRM_KEY_BYTES) == 0) {
			cli_error("SRMUDP_PEERS: peer %s has this host's own public key",
				  quote_str(q, cfg->peers[i].name));
			goto fail;
		}
	}
	if (cfg->log_file[0] != '\0') {
		fd = open(cfg->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
		if (fd < 0) {
			cli_error("SRMUDP_LOG_FILE: cannot open %s: %s", quote_str(q, cfg->log_file),
				  strerror(errno));
			goto fail;
		}
		close(fd);
	}
	return 0;
fail:
	srm_config_free(cfg);
	return SRM_ERR_INVALID;
}

int cli_start_engine(srm_engine **e, uint32_t *idle_ms)
{
	struct srm_config cfg;
	uint8_t pub[SRM_KEY_BYTES];
	char err[1024];

	if (cli_load_config(&cfg, pub) != 0)
		return EXIT_CONFIG;
	signal(SIGPIPE, SIG_IGN);
	log_open(cfg.log_level, cfg.log_file);
	if (idle_ms)
		*idle_ms = cfg.idle_timeout_ms;
	err[0] = '\0';
	int rc = srm_engine_start(&cfg, e, err, sizeof(err));
	srm_config_free(&cfg);
	if (rc != 0) {
		cli_error("cannot start the engine: %s", err[0] ? err : srm_strerror(rc));
		return EXIT_CONFIG;
	}
	return 0;
}

int cli_peer_name(const char *arg, char name[SRM_PEER_NAME_MAX + 1])
{
	static const char suffix[] = ".srmudp";
	size_t n = strlen(arg);

	if (n > 0 && arg[n - 1] == '.')
		n--;
	if (n > sizeof(suffix) - 1 &&
	    strncasecmp(arg + n - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1) == 0)
		n -= sizeof(suffix) - 1;
	if (n == 0 || n > SRM_PEER_NAME_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		name[i] = (char)tolower((unsigned char)arg[i]);
	name[n] = '\0';
	return 0;
}

/* SIGHUP: the configuration again, from the environment and the
 * SRMUDP_CONFIG file; a bad one changes nothing.  One line either way. */
static void reload(srm_engine *e)
{
	struct srm_config cfg;
	char err[1024] = "", msg[1024] = "";
	int rc = srm_config_from_env(&cfg, err, sizeof(err));
	if (rc != 0) {
		cli_error("reload: %s; the running configuration stays", err[0] ? err : srm_strerror(rc));
		return;
	}
	rc = srm_engine_reload(e, &cfg, msg, sizeof(msg));
	srm_config_free(&cfg);
	if (rc != 0)
		cli_error("reload: %s; the running configuration stays", msg);
	else
		fprintf(stderr, "%s: reloaded: %s\n", cli_name, msg);
}

void cli_block_signals(sigset_t *stop)
{
	sigemptyset(stop);
	sigaddset(stop, SIGINT);
	sigaddset(stop, SIGTERM);
	sigaddset(stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, stop, NULL);
}

void cli_run_until_stopped(srm_engine *e, const sigset_t *stop)
{
	int rc, sig;
	for (;;) {
		do
			rc = sigwait(stop, &sig);
		while (rc == EINTR);
		if (sig != SIGHUP)
			return;
		reload(e);
	}
}
