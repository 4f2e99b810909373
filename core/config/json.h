/*
 * json.h — the one small JSON writer and reader of srmudp: engines and
 * rendezvous servers write their status documents with it, `srmudp status`
 * reads them back.  No I/O.  Internal to srmudp.
 *
 * The writer appends printf-formatted text and escaped strings to a growing
 * buffer.  The reader is tolerant, for documents from older or newer
 * engines: it builds a tree, keeps every member in order, and the caller
 * looks up what it knows and ignores the rest.
 */
#ifndef SRMUDP_JSON_H
#define SRMUDP_JSON_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JSON_INTERNAL __attribute__((visibility("hidden")))

/* A document is cut here (10,000 streams of one engine fit). */
#define JSON_OUT_MAX (4u << 20)
/* Deeper nesting than this is not one of our documents. */
#define JSON_MAX_DEPTH 32

/* ---- Writer --------------------------------------------------------------- */

/* Zero-initialise; release with json_out_free().  A write that would pass
 * JSON_OUT_MAX, or finds no memory, sets cut and every later write is
 * ignored: the text then ends where the last whole write did. */
struct json_out {
	char *buf; /* NUL-terminated once anything was written */
	size_t len, cap;
	bool cut;
};

JSON_INTERNAL void json_out_printf(struct json_out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* s as a JSON string: in quotes, '"' and '\' backslashed, every byte
 * outside printable ASCII as \u00XX (so the text is ASCII, safe in any
 * terminal and any reader). */
JSON_INTERNAL void json_out_string(struct json_out *o, const char *s);
JSON_INTERNAL void json_out_free(struct json_out *o);

/* ---- Reader --------------------------------------------------------------- */

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

struct json_node {
	enum json_type type;
	double num;             /* JSON_NUM; JSON_BOOL as 0 or 1 */
	char *str;              /* JSON_STR, decoded (UTF-8), NUL-terminated */
	char *key;              /* the member's name, inside an object */
	struct json_node *child; /* the first member or element */
	struct json_node *next;  /* the next sibling */
};

/* text[0..len) as one JSON value (whitespace around it allowed), or NULL
 * (not JSON, nested deeper than JSON_MAX_DEPTH, or no memory).  Lenient
 * where it costs nothing: unknown escapes stand for their character,
 * surrogates become '?'.  Release with json_free(). */
JSON_INTERNAL struct json_node *json_parse(const char *text, size_t len);
/* n, its children and its later siblings. */
JSON_INTERNAL void json_free(struct json_node *n);

/* The member key of object obj, or NULL (obj NULL or not an object too). */
JSON_INTERNAL const struct json_node *json_get(const struct json_node *obj, const char *key);
/* true and *v when member key is a number or a boolean. */
JSON_INTERNAL bool json_get_num(const struct json_node *obj, const char *key, double *v);
/* true when member key is the boolean true. */
JSON_INTERNAL bool json_get_true(const struct json_node *obj, const char *key);

#ifdef __cplusplus
}
#endif
#endif
