/*
 * via_fuzz.c — libFuzzer harness for the WIRE_VIA codec
 * (core/protocol/via.c): any bytes either parse into a view that lies
 * inside them and wraps back to the same bytes, or are refused.
 *
 *   tests/fuzz/run.sh 60 via_fuzz
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "via.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct via_view v;
	if (via_parse(data, size, &v) != 0)
		return 0;
	if (v.key != data + WIRE_HEADER_BYTES || v.inner != data + VIA_OVERHEAD ||
	    v.inner_len != size - VIA_OVERHEAD || (v.dir != VIA_TO && v.dir != VIA_FROM))
		abort();
	uint8_t *again = malloc(size);
	if (!again)
		return 0;
	if (via_wrap(v.dir, v.key, v.inner, v.inner_len, again, size) != size ||
	    memcmp(again, data, size) != 0)
		abort();
	uint8_t origin[VIA_KEY_BYTES] = { 7 };
	via_turn(again, origin);
	struct via_view w;
	if (via_parse(again, size, &w) != 0 || w.dir != VIA_FROM || w.inner_len != v.inner_len)
		abort();
	free(again);
	return 0;
}
