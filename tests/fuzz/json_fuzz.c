/*
 * json_fuzz.c — libFuzzer harness for the JSON reader (core/config/json.c),
 * which `srmudp status` runs on whatever answers on a control socket.
 *
 * Checked: a parse never crashes, leaks or overruns; a tree it returns,
 * written back with the JSON writer, parses again to the same tree (types,
 * keys, numbers, and strings of printable ASCII, which the writer keeps
 * as they are); the writer's quoting of the raw input always parses back
 * to a string.
 *
 *   tests/fuzz/run.sh 60 json_fuzz
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static void write_tree(struct json_out *o, const struct json_node *n)
{
	switch (n->type) {
	case JSON_NULL: json_out_printf(o, "null"); break;
	case JSON_BOOL: json_out_printf(o, n->num ? "true" : "false"); break;
	case JSON_NUM: json_out_printf(o, "%.17g", isfinite(n->num) ? n->num : 0); break;
	case JSON_STR: json_out_string(o, n->str); break;
	case JSON_ARR:
	case JSON_OBJ:
		json_out_printf(o, n->type == JSON_OBJ ? "{" : "[");
		for (const struct json_node *c = n->child; c; c = c->next) {
			if (c != n->child)
				json_out_printf(o, ",");
			if (n->type == JSON_OBJ) {
				json_out_string(o, c->key);
				json_out_printf(o, ":");
			}
			write_tree(o, c);
		}
		json_out_printf(o, n->type == JSON_OBJ ? "}" : "]");
		break;
	}
}

static int printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return 0;
	return 1;
}

static void same(const struct json_node *a, const struct json_node *b)
{
	for (; a || b; a = a->next, b = b->next) {
		if (!a || !b || a->type != b->type)
			abort();
		if ((a->key == NULL) != (b->key == NULL))
			abort();
		if (a->key && printable(a->key) && strcmp(a->key, b->key) != 0)
			abort();
		if (a->type == JSON_NUM && isfinite(a->num) && a->num != b->num)
			abort();
		if (a->type == JSON_BOOL && a->num != b->num)
			abort();
		if (a->type == JSON_STR && printable(a->str) && strcmp(a->str, b->str) != 0)
			abort();
		same(a->child, b->child);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_node *n = json_parse((const char *)data, size);

	if (n) {
		struct json_out o = { 0 };
		write_tree(&o, n);
		if (!o.cut) {
			struct json_node *again = json_parse(o.buf, o.len);
			if (!again)
				abort();
			same(n, again);
			json_free(again);
		}
		json_out_free(&o);
		json_get(n, "pid");
		json_free(n);
	}

	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	struct json_out q = { 0 };
	json_out_string(&q, s);
	struct json_node *str = json_parse(q.buf, q.len);
	if (!str || str->type != JSON_STR || (printable(s) && strcmp(str->str, s) != 0))
		abort();
	json_free(str);
	json_out_free(&q);
	free(s);
	return 0;
}
