/*
 * json.c — the small JSON writer and reader (see json.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* ---- Writer --------------------------------------------------------------- */

static void cut(struct json_out *o)
{
	o->cut = true;
	if (o->buf)
		o->buf[o->len] = '\0'; /* a failed vsnprintf may have written past len */
}

/* Room for need bytes in all; false (and cut) when there is none. */
static bool reserve(struct json_out *o, size_t need)
{
	size_t want = o->cap ? o->cap : 4096;

	if (need <= o->cap)
		return true;
	if (need > JSON_OUT_MAX) {
		cut(o);
		return false;
	}
	while (want < need)
		want *= 2;
	if (want > JSON_OUT_MAX)
		want = JSON_OUT_MAX;
	char *nb = realloc(o->buf, want);
	if (!nb) {
		cut(o);
		return false;
	}
	o->buf = nb;
	o->cap = want;
	return true;
}

void json_out_printf(struct json_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->cut)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		cut(o);
		return;
	}
	if (o->len + (size_t)n >= o->cap) {
		if (!reserve(o, o->len + (size_t)n + 1))
			return;
		va_start(ap, fmt);
		vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
	}
	o->len += (size_t)n;
}

void json_out_string(struct json_out *o, const char *s)
{
	json_out_printf(o, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			json_out_printf(o, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			json_out_printf(o, "\\u%04x", c);
		else
			json_out_printf(o, "%c", c);
	}
	json_out_printf(o, "\"");
}

void json_out_free(struct json_out *o)
{
	free(o->buf);
	memset(o, 0, sizeof(*o));
}

/* ---- Reader --------------------------------------------------------------- */

struct parser {
	const char *p, *end;
	int depth;
};

void json_free(struct json_node *n)
{
	while (n) {
		struct json_node *next = n->next;

		json_free(n->child);
		free(n->str);
		free(n->key);
		free(n);
		n = next;
	}
}

static void skip_ws(struct parser *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static void put_utf8(char *out, size_t *o, unsigned cp)
{
	if (cp < 0x80) {
		out[(*o)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*o)++] = (char)(0xc0 | cp >> 6);
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[(*o)++] = (char)(0xe0 | cp >> 12);
		out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	}
}

static unsigned hex_digit(char h)
{
	return (unsigned)(h >= '0' && h <= '9'   ? h - '0'
			  : h >= 'a' && h <= 'f' ? h - 'a' + 10
			  : h >= 'A' && h <= 'F' ? h - 'A' + 10
						 : 0);
}

/* A string at j->p (after the quote); returns it decoded or NULL. */
static char *parse_string(struct parser *j)
{
	const char *s = j->p;
	size_t n = 0;

	while (s + n < j->end && s[n] != '"')
		n += (s[n] == '\\' && s + n + 1 < j->end) ? 2 : 1;
	if (s + n >= j->end)
		return NULL;
	/* Decoded text is never longer than its escaped form (\uXXXX, six
	 * bytes, decodes to at most three). */
	char *out = malloc(n + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c != '\\') {
			out[o++] = c;
			continue;
		}
		c = s[++i];
		switch (c) {
		case 'b': out[o++] = '\b'; break;
		case 'f': out[o++] = '\f'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'u': {
			unsigned cp = 0;

			if (i + 4 >= n) {
				free(out);
				return NULL;
			}
			for (int k = 1; k <= 4; k++)
				cp = cp * 16 + hex_digit(s[i + k]);
			i += 4;
			/* Surrogates are not worth pairing for a status table. */
			put_utf8(out, &o, cp >= 0xd800 && cp < 0xe000 ? '?' : cp);
			break;
		}
		default: out[o++] = c; break; /* \" \\ \/ and anything lenient */
		}
	}
	out[o] = '\0';
	j->p = s + n + 1;
	return out;
}

static struct json_node *parse_value(struct parser *j);

/* Members or elements up to the closing bracket; with_keys for objects. */
static int parse_members(struct parser *j, struct json_node *parent, char close, bool with_keys)
{
	struct json_node **tail = &parent->child;

	skip_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		return 0;
	}
	for (;;) {
		char *key = NULL;

		skip_ws(j);
		if (with_keys) {
			if (j->p >= j->end || *j->p != '"')
				return -1;
			j->p++;
			if (!(key = parse_string(j)))
				return -1;
			skip_ws(j);
			if (j->p >= j->end || *j->p != ':') {
				free(key);
				return -1;
			}
			j->p++;
		}
		struct json_node *v = parse_value(j);

		if (!v) {
			free(key);
			return -1;
		}
		v->key = key;
		*tail = v;
		tail = &v->next;
		skip_ws(j);
		if (j->p >= j->end)
			return -1;
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p == close) {
			j->p++;
			return 0;
		}
		return -1;
	}
}

static bool literal(struct parser *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return false;
	j->p += n;
	return true;
}

static bool parse_number(struct parser *j, struct json_node *n)
{
	char buf[64], *e;
	size_t k = 0;

	while (j->p + k < j->end && k < sizeof(buf) - 1 && j->p[k] != '\0' &&
	       strchr("+-.eE0123456789", j->p[k]))
		k++;
	memcpy(buf, j->p, k);
	buf[k] = '\0';
	n->type = JSON_NUM;
	n->num = strtod(buf, &e);
	j->p += k;
	return k > 0 && e == buf + k;
}

static struct json_node *parse_value(struct parser *j)
{
	skip_ws(j);
	if (j->p >= j->end || j->depth > JSON_MAX_DEPTH)
		return NULL;
	struct json_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	char c = *j->p;
	bool ok = true;

	if (c == '{' || c == '[') {
		j->p++;
		j->depth++;
		n->type = c == '{' ? JSON_OBJ : JSON_ARR;
		ok = parse_members(j, n, c == '{' ? '}' : ']', c == '{') == 0;
		j->depth--;
	} else if (c == '"') {
		j->p++;
		n->type = JSON_STR;
		ok = (n->str = parse_string(j)) != NULL;
	} else if (literal(j, "true")) {
		n->type = JSON_BOOL;
		n->num = 1;
	} else if (literal(j, "false")) {
		n->type = JSON_BOOL;
	} else if (literal(j, "null")) {
		n->type = JSON_NULL;
	} else if (c == '-' || (c >= '0' && c <= '9')) {
		ok = parse_number(j, n);
	} else {
		ok = false;
	}
	if (!ok) {
		json_free(n);
		return NULL;
	}
	return n;
}

struct json_node *json_parse(const char *text, size_t len)
{
	struct parser j = { text, text + len, 0 };
	struct json_node *n = parse_value(&j);

	skip_ws(&j);
	if (n && j.p != j.end) {
		json_free(n);
		return NULL;
	}
	return n;
}

const struct json_node *json_get(const struct json_node *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJ)
		return NULL;
	for (const struct json_node *c = obj->child; c; c = c->next)
		if (c->key && strcmp(c->key, key) == 0)
			return c;
	return NULL;
}

bool json_get_num(const struct json_node *obj, const char *key, double *v)
{
	const struct json_node *n = json_get(obj, key);

	if (!n || (n->type != JSON_NUM && n->type != JSON_BOOL))
		return false;
	*v = n->num;
	return true;
}

bool json_get_true(const struct json_node *obj, const char *key)
{
	const struct json_node *n = json_get(obj, key);

	return n && n->type == JSON_BOOL && n->num != 0;
}
