/*
 * rdv_control.c — the control socket of `srmudp rendezvous`, so that
 * `srmudp status` lists rendezvous servers next to engines.
 *
 * The socket is an engine's (core/driver/control.c: same place, same rules,
 * same accept loop); only the document differs: "kind":"rendezvous" and a
 * "counters" object (the server's statistics, as SIGUSR1 prints them)
 * instead of peers, and with --ws-listen a "websocket" object: its
 * listeners and one entry per connected client (rdv_put_status).
 *
 * It runs in the server's own event loop (the loop owns the server state;
 * no lock, no thread): rdv_control_open registers the socket in the
 * loop's epoll set under a tag, and the loop calls rdv_control_answer
 * when that tag is ready.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "rdv_control.h"
#include "clock.h"
#include "control.h"
#include "log.h"

static char control_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static uint64_t started_ms;
static int udp_port;

int rdv_control_open(int epfd, uint64_t tag, int udp_fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(udp_fd, (struct sockaddr *)&ss, &sl) == 0)
		udp_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
						    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	int fd = control_listen(control_path, sizeof(control_path));
	if (fd < 0) {
		control_path[0] = '\0';
		return -1;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		rdv_control_close(fd);
		return -1;
	}
	started_ms = clock_now_ms();
	return fd;
}

void rdv_control_close(int fd)
{
	if (fd >= 0)
		close(fd);
	control_remove(control_path);
}

struct doc_args {
	const struct rdv_server *s;
	const char *store_name;
	const struct rdv_ws *ws;
};

static void put_document(struct json_out *d, void *ctx)
{
	const struct doc_args *a = ctx;
	control_doc_begin(d);
	json_out_printf(d, ",\"kind\":\"rendezvous\",\"udp_port\":%d,\"uptime_ms\":%llu,\"store\":",
			udp_port, (unsigned long long)(clock_now_ms() - started_ms));
	json_out_string(d, a->store_name);
	json_out_printf(d, ",\"server_id\":\"%016llx\",", (unsigned long long)rdv_server_id(a->s));
	rdv_put_status(d, a->s, a->ws, clock_now_ms());
	json_out_printf(d, "}\n");
}

/* `srmudp reload`: what SIGHUP does (cmd_rendezvous.c).  The server's
 * settings come from its command line, which cannot change: only the log
 * file is opened again (after logrotate moved it). */
static void reload(struct json_out *d, void *ctx)
{
	(void)ctx;
	log_reopen();
	LOG_INFO(NULL, "rendezvous: reload: log file reopened");
	json_out_printf(d, "ok: log file reopened; the other settings come from the command "
			   "line (restart to change them)\n");
}

void rdv_control_answer(int fd, const struct rdv_server *s, const char *store_name,
			const struct rdv_ws *ws)
{
	static const struct control_ops ops = { put_document, reload };
	struct doc_args a = { s, store_name, ws };

	control_serve(fd, &ops, &a);
}
