/*
 * fork.c — fork() keeps the shim's locks sane and gives the child an
 * engine of its own.
 *
 * The parent keeps everything.  The child cannot use the parent's engine
 * (its thread did not survive fork), so it abandons it; inherited streams
 * keep working because their socket pairs are served by the parent's
 * engine while the parent lives.  The child's own new connections start a
 * fresh engine lazily (on an ephemeral UDP port if the parent holds the
 * configured one).  Listening sockets the child inherited are handed to a
 * new engine by a small thread that retries until the configured UDP port
 * is free (probing with one bind, backing off to every 2 s): that is what
 * keeps a daemonizing server reachable once its parent has exited.  With
 * the parent alive (a pre-forking server) the parent's engine keeps
 * forwarding into the shared listening socket.
 */
#include <pthread.h>
#include <time.h>

#include "engine_glue.h"
#include "fork.h"
#include "listen.h"
#include "real.h"
#include "state.h"

#define ADOPT_RETRY_MS 100      /* a daemonizing parent exits within ms */
#define ADOPT_RETRY_MAX_MS 2000 /* a long-lived parent: probe rarely */

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void prepare(void)
{
	glue_lock();
	state_lock();
}

static void parent(void)
{
	state_unlock();
	glue_unlock();
}

static void *adopt(void *arg)
{
	long wait_ms = ADOPT_RETRY_MS;

	(void)arg;
	for (;;) {
		uint16_t ports[1];
		struct timespec ts = { wait_ms / 1000, (wait_ms % 1000) * 1000000L };

		if (state_listener_ports(ports, 1) == 0)
			return NULL; /* every inherited listener was closed */
		/* A pre-forked worker may wait here for its parent's whole life:
		 * probe with one bind, and back off, before a full start. */
		if (glue_udp_port_free() && glue_start_for_listeners() == 0) {
			srm_engine *e = glue_engine_if_running();

			if (e)
				listen_register_all(e);
			return NULL;
		}
		nanosleep(&ts, NULL);
		if (wait_ms < ADOPT_RETRY_MAX_MS)
			wait_ms *= 2;
	}
}

static void child(void)
{
	uint16_t ports[1];
	pthread_t t;
	pthread_attr_t a;

	state_child_after_fork();
	glue_child_after_fork();
	/* Only a fixed UDP port is worth adopting: peers know no other. */
	if (state_listener_ports(ports, 1) > 0 && glue_fixed_udp_port()) {
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &a, adopt, NULL) != 0)
			glue_log(SRM_LOG_WARN, "cannot adopt inherited listeners");
		pthread_attr_destroy(&a);
	}
}

static void install(void)
{
	pthread_atfork(prepare, parent, child);
}

void fork_install(void)
{
	pthread_once(&once, install);
}
