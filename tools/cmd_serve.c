/*
 * cmd_serve.c — srmudp serve --expose PORT[,PORT...]: make local TCP
 * services that are not preloaded (sshd, databases) reachable by the
 * configured peers.  Each stream a peer opens to an exposed port is
 * forwarded by the engine to 127.0.0.1:PORT, or to the HOST:PORT given as
 * PORT=HOST:PORT.  Runs until SIGINT or SIGTERM, then stops the engine
 * (which aborts open streams and wipes the keys).  SIGHUP reloads the
 * configuration (srm_engine_reload; what `srmudp reload` does), as daemons
 * do: stopping on it, as before, turned a routine reload into an outage.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "cli.h"

/* Every port at most once: 65535 exposures is the natural bound. */
#define MAX_EXPOSE 65535

struct expose {
	uint16_t port;
	struct sockaddr_storage to;
	socklen_t to_len;
	char to_text[300];
};

static void help(FILE *f)
{
	fprintf(f,
		"Usage: srmudp serve --expose PORT[,PORT...] [--expose PORT=HOST:PORT ...]\n\n"
		"Accept streams from the peers in SRMUDP_PEERS and forward each to a local TCP\n"
		"port: PORT alone goes to 127.0.0.1:PORT, PORT=HOST:PORT goes to HOST:PORT\n"
		"(HOST may be [IPv6]).  Example, ssh without touching sshd:\n"
		"  srmudp serve --expose 22\n"
		"Each PORT is an explicit exposure (SRMUDP_EXPOSE is not needed); SRMUDP_ALLOW\n"
		"limits which peer may reach which port.\n"
		"Runs until SIGINT or SIGTERM; SIGHUP (or `srmudp reload`) reads the\n"
		"configuration again (peers, endpoints, log settings).  Prints the UDP port\n"
		"it listens on.\n");
}

static int resolve_tcp(const char *host, const char *port, struct expose *x)
{
	struct addrinfo hints, *res = NULL;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc == EAI_NONAME) {
		hints.ai_flags = AI_NUMERICSERV;
		rc = getaddrinfo(host, port, &hints, &res);
	}
	if (rc != 0)
		return rc;
	memcpy(&x->to, res->ai_addr, res->ai_addrlen);
	x->to_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* One "PORT" or "PORT=HOST:PORT" item. */
static int parse_item(const char *item, struct expose *x)
{
	char buf[300], q[QUOTE_BUF], host[256];
	const char *eq = strchr(item, '='), *target, *colon;
	uint16_t tport;
	int rc;

	memset(x, 0, sizeof(*x));
	snprintf(buf, sizeof(buf), "%.*s", eq ? (int)(eq - item) : (int)strlen(item), item);
	if (cli_parse_port(buf, &x->port) != 0) {
		cli_error("--expose: bad port %s (expected 1 to 65535)", quote_str(q, buf));
		return -1;
	}
	if (eq == NULL) {
		struct sockaddr_in *in = (struct sockaddr_in *)&x->to;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		in->sin_port = htons(x->port);
		x->to_len = sizeof(*in);
		snprintf(x->to_text, sizeof(x->to_text), "127.0.0.1:%u", x->port);
		return 0;
	}
	target = eq + 1;
	if (target[0] == '[') {
		const char *close = strchr(target, ']');

		if (close == NULL || close[1] != ':' || close - target - 1 >= (long)sizeof(host))
			goto bad_target;
		snprintf(host, sizeof(host), "%.*s", (int)(close - target - 1), target + 1);
		colon = close + 1;
	} else {
		colon = strrchr(target, ':');
		if (colon == NULL || colon == target || strchr(target, ':') != colon ||
		    colon - target >= (long)sizeof(host))
			goto bad_target;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - target), target);
	}
	if (cli_parse_port(colon + 1, &tport) != 0)
		goto bad_target;
	rc = resolve_tcp(host, colon + 1, x);
	if (rc != 0) {
		cli_error("--expose: cannot resolve %s: %s", quote_str(q, host), gai_strerror(rc));
		return -1;
	}
	snprintf(x->to_text, sizeof(x->to_text), "%s", target);
	return 0;
bad_target:
	cli_error("--expose: bad target %s (expected PORT=HOST:PORT or PORT=[IPv6]:PORT)",
		  quote_str(q, item));
	return -1;
}

/* Append every item of a "A,B=H:P,..." list. */
static int parse_list(const char *list, struct expose **xs, size_t *n)
{
	char *copy = strdup(list), *save = NULL, q[QUOTE_BUF];
	int rc = 0;

	if (copy == NULL)
		return -1;
	if (list[0] == '\0' || list[strlen(list) - 1] == ',' || strstr(list, ",,") != NULL ||
	    list[0] == ',') {
		cli_error("--expose: empty item in %s", quote_str(q, list));
		free(copy);
		return -1;
	}
	for (char *item = strtok_r(copy, ",", &save); item != NULL && rc == 0;
	     item = strtok_r(NULL, ",", &save)) {
		struct expose x, *grown;

		if (parse_item(item, &x) != 0) {
			rc = -1;
			break;
		}
		for (size_t i = 0; i < *n; i++)
			if ((*xs)[i].port == x.port) {
				cli_error("--expose: port %u given twice", x.port);
				rc = -1;
			}
		if (rc != 0 || *n >= MAX_EXPOSE)
			break;
		grown = realloc(*xs, (*n + 1) * sizeof(**xs));
		if (grown == NULL) {
			rc = -1;
			break;
		}
		*xs = grown;
		(*xs)[(*n)++] = x;
	}
	free(copy);
	return rc;
}

int cmd_serve(int argc, char **argv)
{
	struct expose *xs = NULL;
	size_t n = 0;
	char q[QUOTE_BUF];
	srm_engine *e = NULL;
	sigset_t stop;
	int rc, status = EXIT_CONFIG;

	if (cli_wants_help(argc, argv)) {
		help(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		const char *list = NULL;

		if (strcmp(argv[i], "--expose") == 0 || strcmp(argv[i], "-e") == 0) {
			if (i + 1 >= argc) {
				cli_error("%s needs PORT[,PORT...]", argv[i]);
				free(xs);
				return EXIT_USAGE;
			}
			list = argv[++i];
		} else if (strncmp(argv[i], "--expose=", 9) == 0) {
			list = argv[i] + 9;
		} else {
			cli_error("unexpected argument %s", quote_str(q, argv[i]));
			free(xs);
			help(stderr);
			return EXIT_USAGE;
		}
		if (parse_list(list, &xs, &n) != 0) {
			free(xs);
			return EXIT_USAGE;
		}
	}
	if (n == 0) {
		cli_error("nothing to serve: give --expose PORT");
		help(stderr);
		return EXIT_USAGE;
	}
	cli_block_signals(&stop);
	if (cli_start_engine(&e, NULL) != 0) {
		free(xs);
		return EXIT_CONFIG;
	}
	for (size_t i = 0; i < n; i++) {
		rc = srm_listen(e, xs[i].port, (const struct sockaddr *)&xs[i].to, xs[i].to_len);
		if (rc < 0) {
			cli_error("cannot expose port %u: %s", xs[i].port, srm_strerror(rc));
			goto out;
		}
	}
	fprintf(stderr, "%s: UDP port %d; exposing", cli_name, srm_engine_udp_port(e));
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "%s %u -> %s", i ? "," : "", xs[i].port, xs[i].to_text);
	fprintf(stderr, "\n");

	cli_run_until_stopped(e, &stop);
	status = 0;
out:
	srm_engine_stop(e);
	free(xs);
	return status;
}
