/*
 * bigjson_fuzzer.c — libFuzzer harness: kapi-server's long-string parse and
 * print (tests/kapi/bigjson.c) against cJSON's own on arbitrary bytes. The
 * tree must print the same, a refused body must be refused at the same
 * offset (and keep its memory), json_print must give cJSON's bytes. Built
 * with "long" meaning 4 bytes, so that short inputs take the short way:
 *
 *   clang -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined \
 *     -fno-sanitize-recover=undefined -DKAPI_BIG_MIN=4 -Iinclude -I. -Istore \
 *     $(pkg-config --cflags libcjson) -o build/fuzz-bigjson \
 *     tests/kapi/fuzz/bigjson_fuzzer.c tests/kapi/bigjson.c tests/kapi/util.c \
 *     -lcjson -lcrypto -lpthread
 *   build/fuzz-bigjson -max_total_time=150 CORPUS_DIR
 *
 * (Not in `make fuzz`: those harnesses link only the library.)
 */
#include "tests/kapi/kapi.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *d, size_t n);

int LLVMFuzzerTestOneInput(const unsigned char *d, size_t n)
{
	const char *ea = NULL, *eb = NULL;
	struct buf b = {0};

	buf_add(&b, d, n);
	char *orig = b.p;
	cJSON *x = cJSON_ParseWithLengthOpts((const char *)d, n, &ea, 0);
	cJSON *y = json_parse_body(&b, &eb);
	if (!x != !y)
		abort();
	if (!x) {
		if (b.p != orig || (ea ? ea - (const char *)d : -1) != (eb ? eb - orig : -1))
			abort();
	} else {
		char *px = cJSON_PrintUnformatted(x), *py = cJSON_PrintUnformatted(y);
		size_t l = 0;
		char *pz = json_print(y, &l);
		if (!px != !py || (px && (strcmp(px, py) || strcmp(px, pz) || l != strlen(pz))))
			abort();
		free(px);
		free(py);
		free(pz);
	}
	cJSON_Delete(x);
	cJSON_Delete(y);
	buf_free(&b);
	return 0;
}
