/*
 * test_golden.c — suite "golden": what a put stores is fixed by the format,
 * not by how the put is computed. For deterministic inputs and chunker
 * settings, the names and data bytes of every object the put leaves in an
 * in-memory backend (indexes: manifests, so cut points; segments: chunk
 * blobs and their packing) are digested and compared with digests recorded
 * from the code before the put pipeline was reworked (issue 14, at c2974a3).
 * A change of cut points, chunk order, codec choice, packing or manifest
 * encoding changes a digest.
 *
 * If a format change is intended, it comes with a docs/format.md note and
 * new digests (the failure message prints them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "support/expect.h"
#include "support/fixture.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

static int cmp_obj(const void *a, const void *b)
{
	return strcmp((*(kvs_object *const *)a)->name, (*(kvs_object *const *)b)->name);
}

/* XXH3-128 of every object's name and data entries, by name. */
static void digest_objects(char hex[33], kvs_backend *b, size_t *nobj)
{
	kvs_object_list *l = NULL;
	XXH3_state_t *h = XXH3_createState();
	XXH128_canonical_t c;

	cr_assert(h);
	cr_assert_eq(b->ops->list(b, &l, NULL, 0, NULL, 0), 0, "list: %s", kvs_error_last());
	cr_assert_null(l->next, "one page expected");
	qsort(l->items, l->count, sizeof(*l->items), cmp_obj);
	XXH3_128bits_reset(h);
	for (size_t i = 0; i < l->count; i++) {
		const kvs_object *o = l->items[i];
		XXH3_128bits_update(h, o->name, strlen(o->name) + 1);
		for (size_t d = 0; d < o->ndata; d++) {
			uint64_t n = o->data[d].len;
			XXH3_128bits_update(h, o->data[d].key, strlen(o->data[d].key) + 1);
			XXH3_128bits_update(h, &n, sizeof(n));
			XXH3_128bits_update(h, o->data[d].data, o->data[d].len);
		}
	}
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h));
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", c.digest[i]);
	*nobj = l->count;
	kvs_object_list_free(l);
	XXH3_freeState(h);
}

/* JSON with a 48 KiB run of random bytes every 200 KiB: chunks that are
 * compressible, incompressible, and mixed within one chunk. */
static void fx_mixed(uint8_t *p, size_t n, uint64_t seed)
{
	fx_json((char *)p, n, seed);
	for (size_t off = 100 * KIB; off + 48 * KIB <= n; off += 200 * KIB)
		fx_random(p + off, 48 * KIB, seed + off);
}

typedef struct mem_src {
	const uint8_t *p;
	size_t n, off, step;
} mem_src;

static int src_read(void *ctx, void *buf, size_t cap, size_t *got)
{
	mem_src *m = ctx;
	size_t k = m->n - m->off;

	if (k > cap)
		k = cap;
	if (k > m->step)
		k = m->step;
	memcpy(buf, m->p + m->off, k);
	m->off += k;
	*got = k;
	return 0;
}

/*
 * The scenario: a JSON value, a random one, a mixed one put as a stream,
 * then the JSON value again after a 1% edit in its middle (dedup against
 * the base, segment reuse, repack), and a small value (inline).
 */
static void scenario(char hex[33], size_t *nobj, const kvs_options *o, size_t scale)
{
	kvs_backend *b = NULL;
	kvs_store *s = NULL;
	size_t nj = 6 * scale, nr = 3 * scale, nm = 4 * scale;
	uint8_t *j = malloc(nj), *r = malloc(nr), *m = malloc(nm), small[3000];
	mem_src src;

	cr_assert(j && r && m);
	fx_json((char *)j, nj, 7);
	fx_random(r, nr, 8);
	fx_mixed(m, nm, 9);
	fx_json((char *)small, sizeof(small), 10);
	cr_assert_eq(kvs_backend_mem(&b, NULL), 0);
	cr_assert_eq(kvs_open(&s, b, o), 0, "open: %s", kvs_error_last());
	cr_assert_eq(kvs_put(NULL, s, "g/json", j, nj, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_put(NULL, s, "g/rand", r, nr, NULL), 0, "%s", kvs_error_last());
	src = (mem_src){ m, nm, 0, 300 * KIB + 17 };
	cr_assert_eq(kvs_put_stream(NULL, s, "g/mixed", src_read, &src, NULL), 0, "%s",
	             kvs_error_last());
	for (size_t i = nj / 2; i < nj / 2 + nj / 100; i++)
		if (j[i] >= '0' && j[i] <= '9')
			j[i] = (uint8_t)('0' + (j[i] - '0' + 1) % 10);
	cr_assert_eq(kvs_put(NULL, s, "g/json", j, nj, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_put(NULL, s, "g/small", small, sizeof(small), NULL), 0, "%s",
	             kvs_error_last());
	digest_objects(hex, b, nobj);
	kvs_close(s);
	free(j);
	free(r);
	free(m);
}

Test(golden, default_chunker_stores_the_same_bytes)
{
	kvs_options o = KVS_OPTIONS_INIT;
	char hex[33];
	size_t n = 0;

	o.workers = 2;
	o.history = KVS_HISTORY_OFF;   /* the digests predate history (format v3) */
	scenario(hex, &n, &o, MIB);
	cr_expect_str_eq(hex, "a6e5de7367e72aae4cfaac1d8ebc91aa", "digest of the stored objects changed: %s "
	                 "(%zu objects)", hex, n);
}

Test(golden, small_chunker_stores_the_same_bytes)
{
	kvs_options o = KVS_OPTIONS_INIT;
	char hex[33];
	size_t n = 0;

	o.chunk_min = 2 * KIB;
	o.chunk_avg = 8 * KIB;
	o.chunk_max = 32 * KIB;
	o.segment_target = 128 * KIB;
	o.inline_max = 4 * KIB;
	o.workers = 2;
	o.history = KVS_HISTORY_OFF;   /* the digests predate history (format v3) */
	scenario(hex, &n, &o, MIB / 2);
	cr_expect_str_eq(hex, "162775cf8bc05834516705f9cbf064f1", "digest of the stored objects changed: %s "
	                 "(%zu objects)", hex, n);
}

/* Threads change nothing: one worker stores what two store. */
Test(golden, one_worker_stores_the_same_bytes)
{
	kvs_options o = KVS_OPTIONS_INIT;
	char hex[33];
	size_t n = 0;

	o.workers = 1;
	o.history = KVS_HISTORY_OFF;
	scenario(hex, &n, &o, MIB);
	cr_expect_str_eq(hex, "a6e5de7367e72aae4cfaac1d8ebc91aa", "digest of the stored objects changed: %s "
	                 "(%zu objects)", hex, n);
}

/* Nor do more threads: with 3, 4 and 8 workers each window is cut in that
 * many speculative pieces (as many as fit), and segments are built side by
 * side at each flush; the cut points and the bytes are the same. */
Test(golden, more_workers_store_the_same_bytes)
{
	static const unsigned w[] = { 3, 4, 8 };

	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		kvs_options o = KVS_OPTIONS_INIT;
		char hex[33];
		size_t n = 0;

		o.workers = w[i];
		o.history = KVS_HISTORY_OFF;
		scenario(hex, &n, &o, MIB);
		cr_expect_str_eq(hex, "a6e5de7367e72aae4cfaac1d8ebc91aa", "%u workers: digest of the "
		                 "stored objects changed: %s (%zu objects)", w[i], hex, n);
		o.chunk_min = 2 * KIB;
		o.chunk_avg = 8 * KIB;
		o.chunk_max = 32 * KIB;
		o.segment_target = 128 * KIB;
		o.inline_max = 4 * KIB;
		scenario(hex, &n, &o, MIB / 2);
		cr_expect_str_eq(hex, "162775cf8bc05834516705f9cbf064f1", "%u workers, small chunker: "
		                 "digest of the stored objects changed: %s (%zu objects)", w[i], hex, n);
	}
}

/*
 * A stream over several windows (each read and cut while the one before
 * compresses: put.c ingest_stream) stores what a buffer put of the same
 * bytes stores, object for object, with the default chunker and a small
 * one, one worker and two, and reads of an odd size.
 */
static void put_one(char hex[33], const kvs_options *o, const uint8_t *d, size_t n, size_t step)
{
	kvs_backend *b = NULL;
	kvs_store *s = NULL;
	size_t nobj = 0;
	int rc;

	cr_assert_eq(kvs_backend_mem(&b, NULL), 0);
	cr_assert_eq(kvs_open(&s, b, o), 0, "open: %s", kvs_error_last());
	if (step) {
		mem_src src = { d, n, 0, step };
		rc = kvs_put_stream(NULL, s, "g/stream", src_read, &src, NULL);
	} else {
		rc = kvs_put(NULL, s, "g/stream", d, n, NULL);
	}
	cr_assert_eq(rc, 0, "put (%s): %s", step ? "stream" : "buffer", kvs_error_last());
	fx_expect_value(s, "g/stream", d, n);
	digest_objects(hex, b, &nobj);
	kvs_close(s);
}

Test(golden, a_stream_over_several_windows_stores_what_a_buffer_put_stores, .timeout = 120)
{
	size_t n = 19 * MIB + 12345;
	uint8_t *d = malloc(n);

	cr_assert(d);
	fx_mixed(d, n, 21);
	for (int small = 0; small < 2; small++)
		for (unsigned w = 1; w <= 2; w++) {
			kvs_options o = KVS_OPTIONS_INIT;
			char hb[33], hs[33];

			o.workers = w;
			o.history = KVS_HISTORY_OFF;
			if (small) {
				o.chunk_min = 2 * KIB;
				o.chunk_avg = 8 * KIB;
				o.chunk_max = 32 * KIB;
				o.segment_target = 128 * KIB;
			}
			put_one(hb, &o, d, n, 0);
			put_one(hs, &o, d, n, 300 * KIB + 17);
			cr_expect_str_eq(hs, hb, "%s chunker, %u worker(s): the stream stored other objects "
			                 "than the buffer put", small ? "small" : "default", w);
		}
	free(d);
}
