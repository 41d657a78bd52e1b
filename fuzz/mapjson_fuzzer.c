/*
 * mapjson_fuzzer.c — the JSON validator of map import and patch
 * (kvs__json_skip, store/mapjson.c) against cJSON: whatever it accepts as
 * one value cJSON must parse too and end at the same place (unless a number
 * is longer than cJSON's 63-character buffer, which is valid JSON), and
 * kvs__json_compact must agree with it.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kvsplit.h"
#include "mapjson.h"

static int has_long_number(const char *p, size_t n)
{
	size_t run = 0;

	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E')
			run++;
		else
			run = 0;
		if (run >= 63)
			return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *e;
	char *out = NULL;
	size_t olen = 0;

	if (size > (1u << 20))
		return 0;
	e = kvs__json_skip(p, end);
	if (e) {
		const char *pe = NULL;
		cJSON *c;
		if (e <= p || e > end)
			abort();
		c = cJSON_ParseWithLengthOpts(p, (size_t)(e - p), &pe, 0);
		if (!c && !has_long_number(p, (size_t)(e - p)))
			abort();   /* we accepted what cJSON refuses */
		if (c && pe != e)
			abort();   /* and must agree where it ends */
		cJSON_Delete(c);
	}
	/* the compactor accepts exactly one value and trailing whitespace */
	if (kvs__json_compact(&out, &olen, p, size) == 0) {
		if (!e || olen > size)
			abort();
		free(out);
	}
	return 0;
}
