/*
 * warmup.c — start the engine when the program starts (SRMUDP_WARMUP).
 *
 * Started by the first connect() to a peer, the engine makes that connect
 * pay for its start (configuration, key, sockets, thread: about a
 * millisecond) and for the handshake.  Started at load, on a thread of its
 * own, it does both while the program is still starting up: the engine
 * handshakes at once with every peer whose address it knows, and the first
 * connect() finds a session, or at least an engine, ready.
 *
 * Where (docs/CONFIG.md): by default only in the program `srmudp run`
 * started, which is the one that asked for peers, and not in the children
 * of a wrapper; never with a fixed UDP port unless asked, because a
 * wrapper (`sh -c 'server & ...'`) must not hold the port its child needs.
 */
#include <pthread.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include "engine_glue.h"
#include "fork.h"

/* True in the process `srmudp run` exec'd (tools/cmd_run.c sets this). */
static int started_by_run(void)
{
	const char *v = getenv("SRMUDP_RUN_PID");
	char *end;
	long pid;

	if (!v || !*v)
		return 0;
	pid = strtol(v, &end, 10);
	return *end == '\0' && pid == (long)getpid();
}

static int wanted(const struct srm_config *c)
{
	switch (c->warmup) {
	case SRM_WARMUP_ON:
		return 1;
	case SRM_WARMUP_OFF:
		return 0;
	case SRM_WARMUP_AUTO:
		break;
	}
	return started_by_run() && !glue_fixed_udp_port();
}

static void *warm_up(void *arg)
{
	(void)arg;
	glue_warm_up();
	return NULL;
}

__attribute__((constructor)) static void warmup_at_load(void)
{
	const char *v = getenv("SRMUDP_WARMUP");
	const struct srm_config *c;
	pthread_t t;
	pthread_attr_t a;

	/* From the environment alone: a process that is not to warm up (the
	 * child of a wrapper, with the default) starts no thread and reads no
	 * configuration, so it reports nothing before it uses the engine. */
	if (!glue_enabled() || !(started_by_run() || (v && !strcasecmp(v, "on"))))
		return;
	/* The configuration is read here, before main(): programs rewrite
	 * their environment as they start (Redis moves it for its process
	 * title, clearing it first), and a thread reading it meanwhile would
	 * find SRMUDP_KEY gone. */
	c = glue_config();
	if (!c || !wanted(c))
		return;
	fork_install(); /* before the thread can take the glue lock */
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, warm_up, NULL) != 0)
		glue_log(SRM_LOG_INFO, "no warm-up thread; the engine starts on first use");
	pthread_attr_destroy(&a);
}
