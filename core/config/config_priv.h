/*
 * config_priv.h — what core/config/config.c (values, environment) and
 * core/config/config_file.c (the SRMUDP_CONFIG file) share.  Internal: nothing
 * here is part of the public API.
 */
#ifndef SRMUDP_CONFIG_PRIV_H
#define SRMUDP_CONFIG_PRIV_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "quote.h"

#define CONFIG_INTERNAL __attribute__((visibility("hidden")))

enum config_key {
	K_KEY,
	K_PEERS,
	K_LISTEN,
	K_RENDEZVOUS,
	K_LOG,
	K_LOG_FILE,
	K_COMPRESS,
	K_CC,
	K_CONNECT_TIMEOUT,
	K_IDLE_TIMEOUT,
	K_RATE,
	K_RATE_PACKETS,
	K_PAD,
	K_GSO,
	K_BUSY_POLL,
	K_WARMUP,
	K_PROXY,    /* before K_RELAY: a relay's proxy is chosen as it is parsed */
	K_RELAY_CA,
	K_RELAY,
	K_EXPOSE,
	K_ALLOW,    /* after K_PEERS: its rules name peers */
	K_GATE,
	K_GATES,    /* after K_PEERS: it names peers */
	K_VIA,
	K_GATE_CACHE,
	K_COUNT
};

/* "SRMUDP_KEY", ... indexed by enum config_key. */
CONFIG_INTERNAL extern const char *const config_key_names[K_COUNT];

/* One value and where it came from, for error messages. */
struct source {
	const char *value;
	char where[PATH_MAX + 64]; /* "VAR" or "FILE:LINE: VAR" */
	const char *base_dir;      /* for relative paths; NULL = cwd */
};

/* The values of a configuration file, before they are parsed. */
struct file_values {
	char *text; /* the file; values are NUL-terminated in place */
	char *dir;  /* directory of the file, for relative paths */
	struct source one[K_COUNT];
	int have[K_COUNT];
	int first_line[K_COUNT];
	struct source *peers; /* every SRMUDP_PEERS line, in order */
	size_t peer_lines;
};

/* Read and split the file at path into fv.  Returns 0, SRM_ERR_INVALID
 * (err says "FILE:LINE: ..." or "SRMUDP_CONFIG: ...") or SRM_ERR_NOMEM.
 * Release with config_file_free() in every case. */
CONFIG_INTERNAL int config_file_read(const char *path, struct file_values *fv, char *err,
				     size_t errlen);
CONFIG_INTERNAL void config_file_free(struct file_values *fv);

/* The configuration variable that name[0..n) is probably a typo of
 * ("SRMUDP_PEER" -> "SRMUDP_PEERS"), or NULL. */
CONFIG_INTERNAL const char *config_suggest(const char *name, size_t n);

/* A decimal port, 1 to 65535 (0 too with allow_zero): 0 or SRM_ERR_INVALID. */
CONFIG_INTERNAL int config_parse_port(const char *s, size_t len, int allow_zero, uint16_t *out);
/* Split "HOST:PORT", "[V6]:PORT" (and, if port_only_ok, "PORT") into host
 * (without brackets) and port; *bracketed: an [IPv6] literal.  NULL, or a
 * short reason. */
CONFIG_INTERNAL const char *config_split_host_port(const char *s, size_t len, int port_only_ok,
						   int allow_zero, char *host_buf, size_t host_size,
						   uint16_t *port, int *bracketed);
/* host (numeric first, then a lookup unless numeric_only) and port into
 * out.  0 or an EAI_* code. */
CONFIG_INTERNAL int config_resolve(const char *host, uint16_t port, int numeric_only, int passive,
				   struct sockaddr_storage *out, socklen_t *out_len);

struct srm_config;
/* SRMUDP_EXPOSE and SRMUDP_ALLOW (access.c) into cfg; ALLOW needs
 * cfg->peers.  Return 0, SRM_ERR_INVALID (err says why) or SRM_ERR_NOMEM. */
CONFIG_INTERNAL int access_parse_expose(const struct source *src, struct srm_config *cfg,
					char *err, size_t errlen);
CONFIG_INTERNAL int access_parse_allow(const struct source *src, struct srm_config *cfg,
				       char *err, size_t errlen);
/* The index of the configured peer named name[0..len) (any case), or -1
 * with the error written ("unknown peer ..., did you mean ...?"). */
CONFIG_INTERNAL int config_peer_index(const struct source *src, const struct srm_config *cfg,
				      const char *name, size_t len, char *err, size_t errlen);

/* "WHERE: message" into err (nothing if err is NULL or errlen 0). */
CONFIG_INTERNAL void config_err(char *err, size_t errlen, const char *where, const char *fmt,
				...) __attribute__((format(printf, 4, 5)));
CONFIG_INTERNAL int config_is_space(char c);
/* Trim in place; returns the start, NUL-terminates the end. */
CONFIG_INTERNAL char *config_trim(char *s);

#endif
