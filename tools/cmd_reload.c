/*
 * cmd_reload.c — srmudp reload [--pid PID]...: every running engine of
 * this user reads its configuration again, without a restart (the
 * "reload" request on its control socket; what it changes is in
 * core/driver/engine_reload.c and docs/OPERATIONS.md).
 *
 * Each engine answers one line, printed as "engine PID (PROGRAM): ok: ..."
 * on stdout, or as an error on stderr.  Rendezvous servers are asked too:
 * they open their log file again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "control_client.h"

/* A reload parses a file and may resolve host names (a slow resolver:
 * seconds); a stuck engine must not stall the others for longer. */
#define RELOAD_TIMEOUT_MS 10000
#define RELOAD_ANSWER_MAX 4096

static void help(FILE *f)
{
	fprintf(f, "Usage: srmudp reload [--pid PID]...\n\n"
		   "Make every running srmudp engine of this user (preloaded programs,\n"
		   "srmudp serve/connect, programs using the library) read its configuration\n"
		   "again, without a restart: its SRMUDP_CONFIG file as it is now, and the\n"
		   "environment it started with.  Added peers are usable at once; removed or\n"
		   "re-keyed peers lose their sessions and streams; endpoint host names are\n"
		   "resolved again.  Settings that need a restart (SRMUDP_KEY, SRMUDP_LISTEN,\n"
		   "SRMUDP_RENDEZVOUS, ...) are named in the answer.  A configuration that\n"
		   "does not parse changes nothing.  Rendezvous servers open their log file\n"
		   "again.  `srmudp serve` also reloads on SIGHUP.\n\n"
		   "  --pid PID   only the engines of process PID (may be repeated; root may\n"
		   "              name another user's)\n\n"
		   "Prints one line per engine.  Exit 0 when every engine reloaded, 1 when\n"
		   "one did not (its error is printed) or none is running.\n");
}

/* The program's name, for the report (the engine's document has it too,
 * but a reload needs no document). */
static void program_of(long pid, char *out, size_t len)
{
	char path[64];
	snprintf(out, len, "?");
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(out, (int)len, f))
		out[strcspn(out, "\n")] = '\0';
	fclose(f);
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/* One engine: 0 reloaded, -1 not. */
static int reload_one(const struct control_socket *s)
{
	char prog[64], *answer;
	size_t len;
	program_of(s->pid, prog, sizeof(prog));
	if (control_ask(s->path, "reload", RELOAD_TIMEOUT_MS, RELOAD_ANSWER_MAX, &answer, &len) != 0) {
		cli_error("engine %ld (%s): no answer: %s", s->pid, prog,
			  errno == EAGAIN ? "timed out" : strerror(errno));
		return -1;
	}
	answer[strcspn(answer, "\n")] = '\0';
	for (char *p = answer; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	int rc = 0;
	if (strncmp(answer, "ok: ", 4) == 0) {
		printf("engine %ld (%s): %s\n", s->pid, prog, answer);
	} else if (strncmp(answer, "error: ", 7) == 0) {
		cli_error("engine %ld (%s): %s; it runs on with its configuration", s->pid, prog,
			  answer + 7);
		rc = -1;
	} else {
		/* A status document: an engine older than the reload request. */
		cli_error("engine %ld (%s): cannot reload (it predates srmudp reload): restart it",
			  s->pid, prog);
		rc = -1;
	}
	free(answer);
	return rc;
}

int cmd_reload(int argc, char **argv)
{
	char q[QUOTE_BUF], dir[200];
	if (cli_wants_help(argc, argv)) {
		help(stdout);
		return 0;
	}
	int npids = 0;
	char **pids = calloc((size_t)argc + 1, sizeof(char *));
	if (!pids)
		return EXIT_CONFIG;
	for (int i = 1; i < argc; i++) {
		char *end;
		const char *v = NULL;
		if (strcmp(argv[i], "--pid") == 0 && i + 1 < argc)
			v = argv[++i];
		else if (strncmp(argv[i], "--pid=", 6) == 0)
			v = argv[i] + 6;
		if (!v) {
			cli_error("%s %s", strcmp(argv[i], "--pid") == 0 ? "missing PID after" :
					   argv[i][0] == '-' ? "unknown option" : "unexpected argument",
				  quote_str(q, argv[i]));
			help(stderr);
			free(pids);
			return EXIT_USAGE;
		}
		if (strtol(v, &end, 10) <= 0 || *end != '\0') {
			cli_error("not a process id %s", quote_str(q, v));
			free(pids);
			return EXIT_USAGE;
		}
		pids[npids++] = (char *)v;
	}
	if (control_own_dir(dir, sizeof(dir)) < 0) {
		free(pids);
		return EXIT_CONFIG;
	}
	struct control_socket *socks = calloc(CONTROL_MAX_SOCKETS, sizeof(*socks));
	if (!socks) {
		free(pids);
		return EXIT_CONFIG;
	}
	/* Root reloads another user's engine only when it names the process:
	 * not every program on the host at once. */
	size_t n = control_find(dir, socks, CONTROL_MAX_SOCKETS, npids > 0, npids, pids);
	int failed = 0;
	for (size_t i = 0; i < n; i++)
		failed |= reload_one(&socks[i]) != 0;
	/* A script that reloads expects something to have reloaded. */
	for (int i = 0; i < npids; i++) {
		int found = 0;
		for (size_t k = 0; k < n && !found; k++)
			found = socks[k].pid == strtol(pids[i], NULL, 10);
		if (!found) {
			cli_error("no srmudp engine in process %s", pids[i]);
			failed = 1;
		}
	}
	if (n == 0 && npids == 0) {
		cli_error("no srmudp engines running");
		failed = 1;
	}
	free(socks);
	free(pids);
	fflush(stdout);
	return failed ? EXIT_CONFIG : 0;
}
