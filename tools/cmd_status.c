/*
 * cmd_status.c — srmudp status [--json] [--watch] [PID...]: every running
 * srmudp engine this user may see, read from the engines' control sockets
 * (found and asked by control_client.c; core/driver/control.c answers
 * "status" with one JSON document).
 *
 * The documents are read with the tolerant JSON reader (core/config/json.h):
 * unknown fields are carried and ignored, missing ones print as "-", so an
 * older or newer engine never breaks the table.  docs/OPERATIONS.md explains each column.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "control_client.h"
#include "json.h"

/* An engine answers from its event loop; one that takes longer than this
 * is stuck and is reported as such rather than stalling the whole list. */
#define STATUS_READ_TIMEOUT_MS 2000
/* Engines cut their document at JSON_OUT_MAX; accept more, so a cut
 * document is never mistaken for a truncated read. */
#define STATUS_DOC_MAX (2 * JSON_OUT_MAX)
/* The table lists this many streams per peer; --json has them all. */
#define STREAMS_SHOWN 16

/* A string field made safe for a terminal (no control characters). */
static const char *jstr(const struct json_node *obj, const char *key, char *buf, size_t len)
{
	const struct json_node *n = json_get(obj, key);
	if (!n || n->type != JSON_STR || !n->str[0])
		return "-";
	snprintf(buf, len, "%s", n->str);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return buf;
}

/* ---- Human-readable units ------------------------------------------------ */

static const char *fmt_bytes(char *buf, size_t len, const struct json_node *obj, const char *key)
{
	double v;
	if (!json_get_num(obj, key, &v)) {
		snprintf(buf, len, "-"); /* callers may print buf itself */
		return buf;
	}
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;
	while (v >= 1024 && u < 4)
		v /= 1024, u++;
	snprintf(buf, len, u ? "%.1f%s" : "%.0f%s", v, unit[u]);
	return buf;
}

static const char *fmt_age(char *buf, size_t len, double ms)
{
	if (ms < 0)
		snprintf(buf, len, "never");
	else if (ms < 1000)
		snprintf(buf, len, "%.0fms", ms);
	else if (ms < 120000)
		snprintf(buf, len, "%.1fs", ms / 1000);
	else if (ms < 7200000)
		snprintf(buf, len, "%.0fm", ms / 60000);
	else
		snprintf(buf, len, "%.1fh", ms / 3600000);
	return buf;
}

/* ---- One engine's table -------------------------------------------------- */

static void print_streams(FILE *f, const struct json_node *peer)
{
	const struct json_node *streams = json_get(peer, "streams");
	if (!streams || streams->type != JSON_ARR || !streams->child)
		return;
	size_t shown = 0, total = 0;
	char b1[64], b2[64];
	for (const struct json_node *s = streams->child; s; s = s->next, total++) {
		if (shown == STREAMS_SHOWN)
			continue;
		double id = -1, port = -1;
		json_get_num(s, "id", &id);
		json_get_num(s, "port", &port);
		fprintf(f, "      stream %-6.0f %-3s port %-5.0f %s\n", id,
			jstr(s, "direction", b1, sizeof(b1)), port, jstr(s, "state", b2, sizeof(b2)));
		shown++;
	}
	if (total > shown)
		fprintf(f, "      ... and %zu more streams (srmudp status --json lists all)\n",
			total - shown);
}

/* The non-zero counters of a "drops" object; engines count them per
 * engine (most drops happen before a packet is tied to a peer), and a
 * peer object may carry its own.  The same for "refused" (streams that
 * peers opened and we refused), printed only when one is not zero. */
static void print_counts(FILE *f, const struct json_node *doc, const char *key,
			 const char *label, int quiet, const char *indent)
{
	const struct json_node *obj = json_get(doc, key);
	int any = 0;
	if (obj && obj->type == JSON_OBJ)
		for (const struct json_node *d = obj->child; d; d = d->next)
			if (d->type == JSON_NUM && d->num > 0 && d->key) {
				if (!any)
					fprintf(f, "%s%s", indent, label);
				fprintf(f, " %s %.0f", d->key, d->num);
				any = 1;
			}
	if (any)
		fprintf(f, "\n");
	else if (!quiet)
		fprintf(f, "%s%s none\n", indent, label);
}

static void print_drops(FILE *f, const struct json_node *doc, const char *indent)
{
	print_counts(f, doc, "drops", "drops:", 0, indent);
	print_counts(f, doc, "refused", "refused streams:", 1, indent);
}

static void print_peer(FILE *f, const struct json_node *p)
{
	char name[80], fp[16], path[96], rtt[24], loss[16], cwnd[24], pmtu[16], in[24], out[24],
		ratio[16], age[24], b[64];
	double v;
	const struct json_node *pa = json_get(p, "path");
	const char *kind = jstr(pa, "kind", b, sizeof(b));
	char addr[64];
	/* A session that ended keeps its last path: say it was. */
	const char *was = json_get_true(p, "established") ? "" : "was ";
	if (strcmp(kind, "direct") == 0 || strcmp(kind, "via") == 0)
		snprintf(path, sizeof(path), "%s%s %s", was, kind, jstr(pa, "address", addr, sizeof(addr)));
	else if (strcmp(kind, "relayed") == 0 || strcmp(kind, "relay-ws") == 0)
		snprintf(path, sizeof(path), "%s%s", was, kind);
	else
		snprintf(path, sizeof(path), "-");
	if (json_get_num(p, "rtt_ms", &v) && json_get_true(p, "established"))
		snprintf(rtt, sizeof(rtt), "%.1fms", v);
	else
		snprintf(rtt, sizeof(rtt), "-");
	if (json_get_num(p, "loss", &v))
		snprintf(loss, sizeof(loss), "%.1f%%", v * 100);
	else
		snprintf(loss, sizeof(loss), "-");
	fmt_bytes(cwnd, sizeof(cwnd), p, "cwnd_bytes");
	if (json_get_num(p, "pmtu", &v) && v > 0)
		snprintf(pmtu, sizeof(pmtu), "%.0f", v);
	else
		snprintf(pmtu, sizeof(pmtu), "-");
	if (json_get_num(p, "compression_ratio", &v) && v > 0)
		snprintf(ratio, sizeof(ratio), "%.2f", v);
	else
		snprintf(ratio, sizeof(ratio), "-");
	if (json_get_num(p, "handshake_age_ms", &v))
		fmt_age(age, sizeof(age), v);
	else
		snprintf(age, sizeof(age), "-");
	fprintf(f, "    %-14s %-9s %-28s %8s %6s %9s %5s %9s %9s %5s %s\n",
		jstr(p, "name", name, sizeof(name)), jstr(p, "fingerprint", fp, sizeof(fp)), path, rtt,
		loss, cwnd, pmtu, fmt_bytes(in, sizeof(in), p, "bytes_in"),
		fmt_bytes(out, sizeof(out), p, "bytes_out"), ratio, age);
	if (json_get(p, "drops"))
		print_drops(f, p, "      ");
	print_streams(f, p);
}

/* A server's numbers (a rendezvous server's document, an engine's gate),
 * after label. */
static void print_counters(FILE *f, const struct json_node *server, const char *label)
{
	const struct json_node *c = json_get(server, "counters");
	if (!c || c->type != JSON_OBJ)
		return;
	int col = fprintf(f, "  %s:", label);
	for (const struct json_node *n = c->child; n; n = n->next) {
		if (n->type != JSON_NUM || !n->key)
			continue;
		int w = (int)strlen(n->key) + 22;
		if (col + w > 100) {
			fprintf(f, "\n           ");
			col = 11;
		}
		col += fprintf(f, " %s %.0f", n->key, n->num);
	}
	fprintf(f, "\n");
}

/* A rendezvous server's WebSocket clients, one line each. */
static void print_ws_clients(FILE *f, const struct json_node *doc)
{
	const struct json_node *ws = json_get(doc, "websocket");
	const struct json_node *cl = json_get(ws, "clients");
	if (!cl || cl->type != JSON_ARR)
		return;
	if (!cl->child) {
		fprintf(f, "  no WebSocket clients\n");
		return;
	}
	fprintf(f, "    %-40s %-9s %-9s %9s %9s %9s %6s %s\n", "WEBSOCKET CLIENT", "KEY", "STATE",
		"IN", "OUT", "QUEUE", "DROPS", "AGE");
	for (const struct json_node *c = cl->child; c; c = c->next) {
		char addr[64], key[64], state[16], in[24], out[24], queue[24], age[24];
		double drops = 0, v;
		json_get_num(c, "drops", &drops);
		fmt_bytes(in, sizeof(in), c, "bytes_in");
		fmt_bytes(out, sizeof(out), c, "bytes_out");
		fmt_bytes(queue, sizeof(queue), c, "queue");
		fprintf(f, "    %-40s %-9.8s %-9s %9s %9s %9s %6.0f %s\n",
			jstr(c, "address", addr, sizeof(addr)), jstr(c, "key", key, sizeof(key)),
			jstr(c, "state", state, sizeof(state)), in, out, queue, drops,
			json_get_num(c, "age_ms", &v) ? fmt_age(age, sizeof(age), v) : "-");
	}
}

static void print_engine(FILE *f, const struct json_node *doc)
{
	char prog[80], key[64], b[64], up[24];
	double pid = -1, port = -1, v;
	json_get_num(doc, "pid", &pid);
	json_get_num(doc, "udp_port", &port);
	const struct json_node *rdv = json_get(doc, "rendezvous");
	const char *rs = "none";
	char rtext[160], sbuf[64];
	const char *server = jstr(rdv, "server", sbuf, sizeof(sbuf));
	bool named = strcmp(server, "-") != 0; /* none over UDP: WebSocket relays only */
	if (json_get_true(rdv, "registered")) {
		snprintf(rtext, sizeof(rtext), "registered%s%s, public %s", named ? " at " : "",
			 named ? server : "", jstr(rdv, "public_address", b, sizeof(b)));
		rs = rtext;
	} else if (json_get_true(rdv, "configured")) {
		snprintf(rtext, sizeof(rtext), "not registered%s%s", named ? ", trying " : "",
			 named ? server : "");
		rs = rtext;
	}
	const char *kind = jstr(doc, "kind", b, sizeof(b));
	fprintf(f, "%s %.0f  %s  udp %.0f", strcmp(kind, "rendezvous") == 0 ? "rendezvous" : "engine",
		pid, jstr(doc, "program", prog, sizeof(prog)), port);
	if (json_get(doc, "key"))
		fprintf(f, "  key %.8s", jstr(doc, "key", key, sizeof(key)));
	if (json_get(doc, "store"))
		fprintf(f, "  store %s", jstr(doc, "store", key, sizeof(key)));
	fprintf(f, "  up %s", json_get_num(doc, "uptime_ms", &v) ? fmt_age(up, sizeof(up), v) : "-");
	if (rdv)
		fprintf(f, "  rendezvous: %s", rs);
	fprintf(f, "\n");
	const struct json_node *others = json_get(rdv, "other_gates");
	for (const struct json_node *g = others && others->type == JSON_ARR ? others->child : NULL; g;
	     g = g->next)
		fprintf(f, "  also %s gate %s\n",
			json_get_true(g, "registered") ? "registered with" : "registering with",
			jstr(g, "gate", b, sizeof(b)));
	double pin = 0, pout = 0;
	if (json_get_num(doc, "packets_in", &pin) | json_get_num(doc, "packets_out", &pout))
		fprintf(f, "  packets: in %.0f out %.0f\n", pin, pout);
	const struct json_node *ws = json_get(doc, "relay_ws");
	const char *wstate = ws ? jstr(ws, "state", b, sizeof(b)) : "off";
	if (strcmp(wstate, "off") != 0) {
		char url[128], err[160];
		double drops = 0;
		json_get_num(ws, "queue_drops", &drops);
		fprintf(f, "  relay-ws: %s %s", wstate, jstr(ws, "url", url, sizeof(url)));
		const char *why = jstr(ws, "last_error", err, sizeof(err));
		if (strcmp(wstate, "open") != 0 && strcmp(why, "-") != 0)
			fprintf(f, " (last error: %s)", why);
		fprintf(f, "  queue drops %.0f\n", drops);
	}
	if (json_get(doc, "drops"))
		print_drops(f, doc, "  ");
	print_counters(f, doc, "counters");
	print_ws_clients(f, doc);
	const struct json_node *gate = json_get(doc, "gate");
	if (gate) {
		print_counters(f, gate, "gate");
		print_ws_clients(f, gate);
	}
	const struct json_node *peers = json_get(doc, "peers");
	if (!peers || peers->type != JSON_ARR)
		return;
	if (!peers->child) {
		fprintf(f, "  no peers configured\n");
		return;
	}
	fprintf(f, "    %-14s %-9s %-28s %8s %6s %9s %5s %9s %9s %5s %s\n", "PEER", "KEY", "PATH",
		"RTT", "LOSS", "CWND", "PMTU", "IN", "OUT", "RATIO", "HANDSHAKE");
	for (const struct json_node *p = peers->child; p; p = p->next)
		print_peer(f, p);
}

/* ---- Reading the engines ------------------------------------------------ */

struct engine_doc {
	char *text;
	size_t len;
	struct json_node *doc;
};

/* Read one engine's document.  Returns 0, or -1 (gone, refused, stuck,
 * not ours, or not a JSON object: the caller skips it). */
static int read_doc(const char *path, struct engine_doc *d)
{
	char *buf;
	size_t len;
	if (control_ask(path, "status", STATUS_READ_TIMEOUT_MS, STATUS_DOC_MAX, &buf, &len) != 0)
		return -1;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	buf[len] = '\0';
	d->doc = json_parse(buf, len);
	if (!d->doc || d->doc->type != JSON_OBJ) {
		json_free(d->doc);
		d->doc = NULL;
		free(buf);
		return -1;
	}
	d->text = buf;
	d->len = len;
	return 0;
}

/* Every engine's document, in process order. */
static size_t collect(const char *own, struct control_socket *socks, struct engine_doc *docs,
		      int npids, char **pids)
{
	/* Root sees every user's engines. */
	size_t n = control_find(own, socks, CONTROL_MAX_SOCKETS, 1, npids, pids), count = 0;
	for (size_t i = 0; i < n; i++)
		if (read_doc(socks[i].path, &docs[count]) == 0)
			count++;
	return count;
}

static void release(struct engine_doc *docs, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		json_free(docs[i].doc);
		free(docs[i].text);
	}
}

static void render(FILE *f, const struct engine_doc *docs, size_t count, int json)
{
	if (json) {
		fprintf(f, "[");
		for (size_t i = 0; i < count; i++)
			fprintf(f, "%s\n%s", i ? "," : "", docs[i].text);
		fprintf(f, "%s]\n", count ? "\n" : "");
		return;
	}
	if (!count)
		fprintf(f, "no srmudp engines running\n");
	for (size_t i = 0; i < count; i++) {
		if (i)
			fprintf(f, "\n");
		print_engine(f, docs[i].doc);
	}
}

/* ---- The command ---------------------------------------------------------- */

static volatile sig_atomic_t stop_watch;

static void on_signal(int sig)
{
	(void)sig;
	stop_watch = 1;
}

static void help(FILE *f)
{
	fprintf(f, "Usage: srmudp status [--json] [--watch] [PID...]\n\n"
		   "Show every running srmudp engine of this user (all users' for root):\n"
		   "preloaded programs, srmudp serve/connect, programs using the library, and\n"
		   "srmudp rendezvous servers (their counters).\n"
		   "Per peer: name, key fingerprint, path, RTT, loss, congestion window, path\n"
		   "MTU, bytes in/out, compression ratio, handshake age, and its streams;\n"
		   "per engine: packet and drop counters by reason.  Sockets left by crashed\n"
		   "engines are removed.\n\n"
		   "  --json      print one JSON array of the engines' documents\n"
		   "  --watch     refresh every second until interrupted (like top)\n"
		   "  PID...      only these processes\n\n"
		   "Fields are explained in docs/OPERATIONS.md.  Exit 0, or 1 when the\n"
		   "runtime directory is unusable.\n");
}

int cmd_status(int argc, char **argv)
{
	int json = 0, watch = 0, npids = 0;
	char **pids = calloc((size_t)argc, sizeof(char *)), q[QUOTE_BUF], dir[200];

	if (!pids)
		return EXIT_CONFIG;
	if (cli_wants_help(argc, argv)) {
		help(stdout);
		free(pids);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--watch") == 0 || strcmp(argv[i], "-w") == 0) {
			watch = 1;
		} else if (argv[i][0] != '-' && strtol(argv[i], &end, 10) > 0 && *end == '\0') {
			pids[npids++] = argv[i];
		} else {
			cli_error("%s %s", argv[i][0] == '-' ? "unknown option" : "not a process id",
				  quote_str(q, argv[i]));
			help(stderr);
			free(pids);
			return EXIT_USAGE;
		}
	}
	if (control_own_dir(dir, sizeof(dir)) < 0) {
		free(pids);
		return EXIT_CONFIG;
	}
	struct engine_doc *docs = calloc(CONTROL_MAX_SOCKETS, sizeof(*docs));
	struct control_socket *socks = calloc(CONTROL_MAX_SOCKETS, sizeof(*socks));
	if (!docs || !socks) {
		free(docs);
		free(socks);
		free(pids);
		return EXIT_CONFIG;
	}
	if (watch) {
		struct sigaction sa = { .sa_handler = on_signal };
		sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: the sleep ends */
		sigaction(SIGTERM, &sa, NULL);
	}
	do {
		size_t count = collect(dir, socks, docs, npids, pids);
		if (watch) {
			/* One write per frame: the screen never shows half a frame. */
			char *frame = NULL;
			size_t flen = 0;
			FILE *m = open_memstream(&frame, &flen);
			if (m) {
				time_t t = time(NULL);
				struct tm tm;
				localtime_r(&t, &tm);
				fprintf(m, "\033[H\033[2J");
				if (!json)
					fprintf(m, "srmudp status  %02d:%02d:%02d  %zu engine%s  (Ctrl-C quits)\n\n",
						tm.tm_hour, tm.tm_min, tm.tm_sec, count, count == 1 ? "" : "s");
				render(m, docs, count, json);
				fclose(m);
				fwrite(frame, 1, flen, stdout);
				free(frame);
			}
		} else {
			render(stdout, docs, count, json);
		}
		fflush(stdout);
		release(docs, count);
		if (watch && !stop_watch) {
			struct timespec ts = { 1, 0 };
			nanosleep(&ts, NULL);
		}
	} while (watch && !stop_watch);
	free(docs);
	free(socks);
	free(pids);
	return ferror(stdout) ? EXIT_CONFIG : 0;
}
