/*
 * config_file.c — the optional SRMUDP_CONFIG file: `KEY = value` lines.
 *
 * This only splits the file into values and remembers where each came
 * from ("FILE:LINE: VARIABLE"); config.c parses them exactly as it parses
 * the environment, so a value means the same in both places.
 *
 * Format (docs/CONFIG.md): KEY with or without the SRMUDP_ prefix, any
 * case; '#' starts a comment at the start of a line or after whitespace,
 * outside quotes; a value may be wrapped in "..." or '...'; PEERS lines add
 * up, any other key may appear once; unknown keys are errors (the file is
 * ours alone, so a typo must not pass silently).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_priv.h"
#include "srmudp.h"

/* The file is a few lines of text; refuse anything that is clearly not. */
#define CONFIG_FILE_MAX (1u << 20)

static int key_lookup(const char *name)
{
	char full[64];

	if (strncasecmp(name, "SRMUDP_", 7) == 0)
		name += 7;
	if (strlen(name) + 8 > sizeof(full))
		return -1;
	snprintf(full, sizeof(full), "SRMUDP_%s", name);
	for (int i = 0; i < K_COUNT; i++)
		if (strcasecmp(full, config_key_names[i]) == 0)
			return i;
	return -1;
}

void config_file_free(struct file_values *fv)
{
	free(fv->text);
	free(fv->dir);
	free(fv->peers);
	memset(fv, 0, sizeof(*fv));
}

static int read_file(const char *path, char **out, char *err, size_t errlen)
{
	char qb[QUOTE_BUF];
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0 || fstat(fd, &st) != 0) {
		config_err(err, errlen, "SRMUDP_CONFIG", "cannot read %s: %s", quote_str(qb, path),
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return SRM_ERR_INVALID;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)CONFIG_FILE_MAX) {
		config_err(err, errlen, "SRMUDP_CONFIG", "%s is not a regular file under 1 MiB",
			quote_str(qb, path));
		close(fd);
		return SRM_ERR_INVALID;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		config_err(err, errlen, "SRMUDP_CONFIG", "out of memory");
		return SRM_ERR_NOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			config_err(err, errlen, "SRMUDP_CONFIG", "cannot read %s: %s", quote_str(qb, path),
				strerror(errno));
			free(buf);
			close(fd);
			return SRM_ERR_INVALID;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	if (memchr(buf, '\0', got) != NULL) {
		config_err(err, errlen, "SRMUDP_CONFIG", "%s is not a text file", quote_str(qb, path));
		free(buf);
		return SRM_ERR_INVALID;
	}
	*out = buf;
	return 0;
}

/* Strip an inline "# comment" (a '#' at the start or after whitespace,
 * outside quotes) and one pair of surrounding quotes. */
static const char *unquote(char *v, int *ok)
{
	char q = 0;

	*ok = 1;
	v = config_trim(v);
	for (char *p = v; *p; p++) {
		if (q) {
			if (*p == q)
				q = 0;
		} else if (*p == '"' || *p == '\'') {
			q = *p;
		} else if (*p == '#' && (p == v || config_is_space(p[-1]))) {
			*p = '\0';
			break;
		}
	}
	if (q) {
		*ok = 0;
		return v;
	}
	v = config_trim(v);
	size_t n = strlen(v);

	if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
		v[n - 1] = '\0';
		v++;
	}
	return v;
}

int config_file_read(const char *path, struct file_values *fv, char *err, size_t errlen)
{
	char where[PATH_MAX + 32], qb[QUOTE_BUF];
	char *line, *next;
	int lineno = 0, rc;

	rc = read_file(path, &fv->text, err, errlen);
	if (rc != 0)
		return rc;
	{
		char *copy = strdup(path), *slash;

		if (copy == NULL)
			return SRM_ERR_NOMEM;
		slash = strrchr(copy, '/');
		if (slash == NULL) {
			free(copy);
			copy = getcwd(NULL, 0);
			if (copy == NULL)
				copy = strdup(".");
			if (copy == NULL)
				return SRM_ERR_NOMEM;
		} else if (slash == copy) {
			slash[1] = '\0';
		} else {
			*slash = '\0';
		}
		fv->dir = copy;
	}
	for (line = fv->text; line != NULL; line = next) {
		char *eq, *key, *val;
		int id, ok;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		line = config_trim(line);
		if (line[0] == '\0' || line[0] == '#')
			continue;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		eq = strchr(line, '=');
		if (eq == NULL) {
			config_err(err, errlen, where, "expected KEY = value, got %s", quote_str(qb, line));
			return SRM_ERR_INVALID;
		}
		*eq = '\0';
		key = config_trim(line);
		id = key_lookup(key);
		if (id < 0) {
			char full[72];
			const char *near;
			size_t n = 0;

			n = (size_t)snprintf(full, sizeof(full), "%s%.63s",
					     strncasecmp(key, "SRMUDP_", 7) == 0 ? "" : "SRMUDP_", key);
			for (size_t i = 0; i < n && i < sizeof(full); i++)
				full[i] = (char)toupper((unsigned char)full[i]);
			near = config_suggest(full, n < sizeof(full) ? n : sizeof(full) - 1);
			if (near != NULL)
				config_err(err, errlen, where, "unknown key %s (did you mean %s?)",
					   quote_str(qb, key), near);
			else
				config_err(err, errlen, where, "unknown key %s", quote_str(qb, key));
			return SRM_ERR_INVALID;
		}
		val = (char *)unquote(eq + 1, &ok);
		snprintf(where, sizeof(where), "%s:%d: %s", path, lineno, config_key_names[id]);
		if (!ok) {
			config_err(err, errlen, where, "unterminated quote in %s", quote_str(qb, val));
			return SRM_ERR_INVALID;
		}
		if (id == K_PEERS) {
			struct source *np = realloc(fv->peers, (fv->peer_lines + 1) * sizeof(*np));

			if (np == NULL)
				return SRM_ERR_NOMEM;
			fv->peers = np;
			np[fv->peer_lines].value = val;
			np[fv->peer_lines].base_dir = fv->dir;
			snprintf(np[fv->peer_lines].where, sizeof(np->where), "%s", where);
			fv->peer_lines++;
			continue;
		}
		if (fv->have[id]) {
			config_err(err, errlen, where, "set twice (first on line %d)", fv->first_line[id]);
			return SRM_ERR_INVALID;
		}
		fv->have[id] = 1;
		fv->first_line[id] = lineno;
		fv->one[id].value = val;
		fv->one[id].base_dir = fv->dir;
		snprintf(fv->one[id].where, sizeof(fv->one[id].where), "%s", where);
	}
	return 0;
}
