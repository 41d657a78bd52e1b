/*
 * manifest_fuzzer.c — the strict manifest decoder on arbitrary bytes. The
 * trailer checksum would stop almost every mutation at once, so the harness
 * also decodes the input with a freshly computed trailer appended: that
 * drives the msgpack pre-scan and field checks. Whatever decodes must encode
 * again and decode to the same thing, and its history table (format version
 * 3, checked lazily by history.c) must parse or be refused cleanly.
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "kvsplit.h"
#include "history.h"
#include "manifest.h"

static void check_history(const kvs__manifest *m)
{
	kvs__hentry *e = NULL;
	uint32_t n = 0;

	if (kvs__hist_parse(&e, &n, m, "fuzz") == 0) {
		uint64_t prev = m->generation;
		if ((n && !e) || (uint64_t)n * KVS__HIST_REC != m->hist_len)
			abort();
		for (uint32_t i = 0; i < n; i++) {
			if (e[i].gen == 0 || e[i].gen >= prev)
				abort();
			prev = e[i].gen;
		}
	}
	free(e);
}

static void check_roundtrip(const kvs__manifest *m)
{
	check_history(m);
	uint8_t *enc = NULL;
	size_t n = 0;
	kvs__manifest d;

	if (kvs__manifest_encode(&enc, &n, m, KVS__MF_MAX_ENCODED) != 0)
		abort();   /* decoded means consistent: encoding must work */
	if (kvs__manifest_decode(&d, enc, n, "fuzz") != 0 || d.length != m->length ||
	    d.nchunks != m->nchunks || d.nsegs != m->nsegs || d.v3 != m->v3 ||
	    d.hist_len != m->hist_len)
		abort();
	kvs__manifest_clear(&d);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kvs__manifest m;
	uint8_t *buf;
	uint64_t h;

	if (kvs__manifest_decode(&m, data, size, "fuzz") == 0)
		check_roundtrip(&m);
	kvs__manifest_clear(&m);
	if (size > (1u << 22) || !(buf = malloc(size + 8)))
		return 0;
	memcpy(buf, data, size);
	h = XXH3_64bits(buf, size);
	for (int i = 0; i < 8; i++)
		buf[size + (size_t)i] = (uint8_t)(h >> (56 - 8 * i));
	if (kvs__manifest_decode(&m, buf, size + 8, "fuzz") == 0)
		check_roundtrip(&m);
	kvs__manifest_clear(&m);
	free(buf);
	return 0;
}
