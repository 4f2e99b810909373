/*
 * config_fuzz.c — libFuzzer harness for the configuration parser
 * (core/config/config.c, core/config/config_file.c).
 *
 * The first input byte picks a variable of vars[], or past the last one
 * the SRMUDP_CONFIG file, or past that a gate cache file (gate_cache.c:
 * every entry it reads must format and read back the same);
 * the rest is its value.  A parse must never crash, leak or overrun, and an
 * error must be one line of the form "WHERE: message".
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icore \
 *     tests/fuzz/config_fuzz.c core/config/config.c core/config/config_file.c core/config/log.c \
 *     core/config/keyfile.c -lsodium -ldl -o build/config_fuzz
 *   build/config_fuzz -max_total_time=60
 *
 * getaddrinfo is replaced by a numeric-only wrapper: a fuzzer must never
 * send a DNS query.
 */
#include <dlfcn.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gate_cache.h"
#include "srmudp.h"

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	static int (*real)(const char *, const char *, const struct addrinfo *,
			   struct addrinfo **);
	struct addrinfo h = *hints;

	if (real == NULL)
		real = (int (*)(const char *, const char *, const struct addrinfo *,
				struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
	h.ai_flags |= AI_NUMERICHOST;
	return real(node, service, &h, res);
}

static const char *const vars[] = {
	"SRMUDP_KEY",	   "SRMUDP_PEERS",    "SRMUDP_LISTEN",		"SRMUDP_RENDEZVOUS",
	"SRMUDP_LOG",	   "SRMUDP_LOG_FILE", "SRMUDP_COMPRESS",	"SRMUDP_CC",
	"SRMUDP_CONNECT_TIMEOUT", "SRMUDP_IDLE_TIMEOUT", "SRMUDP_RATE", "SRMUDP_RATE_PACKETS",
	"SRMUDP_PAD", "SRMUDP_GSO", "SRMUDP_BUSY_POLL", "SRMUDP_WARMUP",
	"SRMUDP_PROXY", "SRMUDP_RELAY_CA", "SRMUDP_RELAY", "SRMUDP_EXPOSE", "SRMUDP_ALLOW",
	/* read by SRMUDP_RELAY when SRMUDP_PROXY is unset */
	"https_proxy", "http_proxy", "no_proxy",
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))
/* SRMUDP_ALLOW names peers: fuzzed with these two listed, so its rules
 * get past "unknown peer". */
#define ALLOW_PEERS                                        \
	"db=ju1bJYb7VStF4tVvvv1ErYVi6sHS4FWC52qeVF5ykBY " \
	"web=aQCb0uM0gha1tWLFplKqdoTuXP0UsaGTgBRvdloXOyU"

/* The gate cache file at path: whatever it holds, each entry read
 * survives a round trip through its line. */
static void gate_cache(const char *path)
{
	struct gate_cache_entry got[GATE_CACHE_MAX], again;
	char warn[512], line[256];
	size_t n = gate_cache_load(path, 0, got, GATE_CACHE_MAX, warn, sizeof(warn));
	if (strchr(warn, '\n') != NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		size_t len = gate_cache_format_line(&got[i], line, sizeof(line));
		if (len == 0 || gate_cache_parse_line(line, len - 1, &again, warn, sizeof(warn)) != 1 ||
		    memcmp(again.key, got[i].key, sizeof(again.key)) != 0 ||
		    again.udp_len != got[i].udp_len || memcmp(&again.udp, &got[i].udp, again.udp_len) != 0 ||
		    again.ws_port != got[i].ws_port || again.wss != got[i].wss || again.seen != got[i].seen)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct srm_config cfg;
	char err[256], *value;
	unsigned pick;

	if (size < 1)
		return 0;
	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/tmp/srmudp-config-fuzz-%d.conf", (int)getpid());
	for (unsigned i = 0; i < NVARS; i++)
		unsetenv(vars[i]);
	unsetenv("SRMUDP_CONFIG");
	unsetenv("HTTPS_PROXY");
	unsetenv("NO_PROXY");
	value = malloc(size);
	if (value == NULL)
		return 0;
	memcpy(value, data + 1, size - 1);
	value[size - 1] = '\0';
	pick = data[0] % (NVARS + 2);
	if (pick == NVARS + 1) {
		FILE *f = fopen(path, "w");
		if (f != NULL) {
			fwrite(data + 1, 1, size - 1, f);
			fclose(f);
			gate_cache(path);
		}
		free(value);
		return 0;
	}
	if (pick == NVARS) {
		FILE *f = fopen(path, "w");

		if (f == NULL) {
			free(value);
			return 0;
		}
		fwrite(data + 1, 1, size - 1, f);
		fclose(f);
		setenv("SRMUDP_CONFIG", path, 1);
	} else if (value[0] != '\0') {
		setenv(vars[pick], value, 1);
		if (strcmp(vars[pick], "SRMUDP_ALLOW") == 0)
			setenv("SRMUDP_PEERS", ALLOW_PEERS, 1);
	}
	if (srm_config_from_env(&cfg, err, sizeof(err)) != 0 &&
	    (strstr(err, ": ") == NULL || strchr(err, '\n') != NULL))
		abort(); /* every error is one "WHERE: message" line */
	srm_config_free(&cfg);
	free(value);
	return 0;
}
