/*
 * reload_fuzz.c — libFuzzer harness for the reload path (issue 18 item 2):
 * the control socket's request parser (core/driver/control.c) and a running
 * engine taking configuration after configuration (srm_engine_reload,
 * core/driver/engine_reload.c), as `srmudp reload` drives them.
 *
 * The first input byte picks:
 *  - even: the rest is what a client sent on the control socket.  The
 *    parse must agree with the protocol (control.h): the first line, a
 *    trailing CR dropped, is "status", "reload" or empty; a line not
 *    ended within CONTROL_REQUEST_MAX bytes is refused.
 *  - odd: the rest is an SRMUDP_CONFIG file.  What parses is applied to
 *    one engine that lives across inputs (peers added, removed, re-keyed,
 *    moved, over and over), with its own key forced when the second bit
 *    is set (else a reload naming another key must be refused).  The
 *    answer must be one line; after a reload that succeeded, every
 *    configured name finds its key, and nothing else is found.
 *
 * getaddrinfo is numeric-only (no DNS from a fuzzer), and every endpoint
 * is moved to the loopback discard port before the reload, so the engine
 * never sends to an address the input chose.
 *
 *   tests/fuzz/run.sh 60 reload_fuzz
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "srmudp.h"

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	static int (*real)(const char *, const char *, const struct addrinfo *,
			   struct addrinfo **);
	struct addrinfo h = hints ? *hints : (struct addrinfo){ 0 };

	if (real == NULL)
		real = (int (*)(const char *, const char *, const struct addrinfo *,
				struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
	h.ai_flags |= AI_NUMERICHOST;
	return real(node, service, &h, res);
}

static void check_request(const uint8_t *d, size_t n)
{
	enum control_request r = control_request_parse((const char *)d, n);
	const uint8_t *nl = memchr(d, '\n', n);
	size_t len = nl ? (size_t)(nl - d) : n;
	enum control_request want;
	if (!nl && n >= CONTROL_REQUEST_MAX)
		want = CONTROL_BAD;
	else {
		if (len && d[len - 1] == '\r')
			len--;
		if (len == 0 || (len == 6 && !memcmp(d, "status", 6)))
			want = CONTROL_STATUS;
		else if (len == 6 && !memcmp(d, "reload", 6))
			want = CONTROL_RELOAD;
		else
			want = CONTROL_BAD;
	}
	if (r != want)
		abort();
}

static srm_engine *engine;
static struct srm_config running;
static char dir[64];

static void start_engine(void)
{
	char pub[SRM_PUBKEY_TEXT_BYTES], err[256];
	snprintf(dir, sizeof(dir), "/tmp/srm-reload-fuzz-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	srm_config_defaults(&running);
	snprintf(running.key_path, sizeof(running.key_path), "%s/key", dir);
	if (srm_key_generate(running.key_path, pub) != 0)
		abort();
	struct sockaddr_in *l = (struct sockaddr_in *)&running.listen;
	memset(&running.listen, 0, sizeof(running.listen));
	l->sin_family = AF_INET;
	l->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	running.listen_len = sizeof(*l);
	running.log_level = SRM_LOG_ERROR;
	if (srm_engine_start(&running, &engine, err, sizeof(err)) != 0)
		abort();
}

static void check_reload(const uint8_t *d, size_t n, int own_key)
{
	char path[128], err[1024], msg[1024];
	struct srm_config cfg;
	snprintf(path, sizeof(path), "%s/conf", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		abort();
	fwrite(d, 1, n, f);
	fclose(f);
	setenv("SRMUDP_CONFIG", path, 1);
	if (srm_config_from_env(&cfg, err, sizeof(err)) != 0)
		return; /* config_fuzz covers the errors */
	if (own_key)
		memcpy(cfg.key_path, running.key_path, sizeof(cfg.key_path));
	/* Nothing leaves for an address the input chose. */
	for (size_t i = 0; i < cfg.peer_count; i++) {
		struct srm_peer_config *p = &cfg.peers[i];
		if (!p->endpoint_len)
			continue;
		uint16_t port = ((struct sockaddr_in *)&p->endpoint)->sin_port;
		struct sockaddr_in *a = (struct sockaddr_in *)&p->endpoint;
		memset(&p->endpoint, 0, sizeof(p->endpoint));
		a->sin_family = AF_INET;
		a->sin_port = port & 1 ? htons(9) : htons(13); /* endpoints still change */
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		p->endpoint_len = sizeof(*a);
	}
	cfg.log_level = SRM_LOG_ERROR;
	cfg.log_file[0] = '\0';
	int rc = srm_engine_reload(engine, &cfg, msg, sizeof(msg));
	if (strchr(msg, '\n') || !msg[0])
		abort();
	if (!own_key && strcmp(cfg.key_path, running.key_path) != 0 && rc != SRM_ERR_INVALID)
		abort();
	if (rc == 0) {
		for (size_t i = 0; i < cfg.peer_count; i++) {
			struct srm_peer_config pc;
			int idx = srm_peer_find(engine, cfg.peers[i].name);
			if (idx < 0 || srm_peer_get(engine, idx, &pc) != 0 ||
			    memcmp(pc.pubkey, cfg.peers[i].pubkey, SRM_KEY_BYTES) != 0)
				abort();
		}
		struct srm_engine_stats st;
		srm_engine_stats(engine, &st);
		if (st.peers != cfg.peer_count)
			abort();
	}
	srm_config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (!(data[0] & 1)) {
		check_request(data + 1, size - 1);
		return 0;
	}
	if (!engine)
		start_engine();
	check_reload(data + 1, size - 1, data[0] & 2);
	return 0;
}
