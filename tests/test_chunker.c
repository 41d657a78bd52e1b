/*
 * test_chunker.c — suite "chunker": FastCDC cut points.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "chunker.h"
#include "names.h"
#include "kvsplit.h"
#include "support/fixture.h"

static kvs__cdc def(void)
{
	kvs__cdc c;
	cr_assert_eq(kvs__cdc_init(&c, 16384, 65536, 262144), 0);
	return c;
}

Test(chunker, rejects_bad_parameters)
{
	kvs__cdc c;
	cr_assert_eq(kvs__cdc_init(&c, 16384, 60000, 262144), KVS_EINVAL);   /* not a power of 2 */
	cr_assert_eq(kvs__cdc_init(&c, 65536, 65536, 262144), KVS_EINVAL);   /* min == avg */
	cr_assert_eq(kvs__cdc_init(&c, 16384, 65536, 65536), KVS_EINVAL);    /* max == avg */
	cr_assert_eq(kvs__cdc_init(&c, 16384, 65536, 2u << 20), KVS_EINVAL); /* max > 1 MiB */
	cr_assert_eq(kvs__cdc_init(&c, 8, 256, 1024), KVS_EINVAL);           /* min too small */
}

Test(chunker, chunks_respect_min_and_max_and_cover_input)
{
	kvs__cdc c = def();
	size_t n = 8u << 20, off = 0, count = 0;
	uint8_t *d = malloc(n);

	fx_random(d, n, 1);
	while (off < n) {
		size_t k = kvs__cdc_cut(&c, d + off, n - off);
		cr_assert_leq(k, 262144);
		if (off + k < n)
			cr_assert_geq(k, 16384);
		cr_assert_gt(k, 0);
		off += k;
		count++;
	}
	cr_assert_eq(off, n);
	/* normalized chunking keeps the mean near avg */
	double mean = (double)n / (double)count;
	cr_assert(mean > 40000 && mean < 100000, "mean chunk %.0f", mean);
	free(d);
}

Test(chunker, cut_is_content_defined_after_an_insert)
{
	kvs__cdc c = def();
	size_t n = 4u << 20;
	uint8_t *a = malloc(n), *b = malloc(n + 100);
	size_t ca[200], cb[200], na = 0, nb = 0, off;

	fx_json((char *)a, n, 3);
	memcpy(b, a, n / 2);
	memset(b + n / 2, 'X', 100);
	memcpy(b + n / 2 + 100, a + n / 2, n / 2);
	for (off = 0; off < n; na++) off += ca[na] = kvs__cdc_cut(&c, a + off, n - off);
	for (off = 0; off < n + 100; nb++) off += cb[nb] = kvs__cdc_cut(&c, b + off, n + 100 - off);
	/* the last chunks (after the insert re-synchronizes) are identical */
	size_t same = 0;
	while (same < na && same < nb && ca[na - 1 - same] == cb[nb - 1 - same])
		same++;
	cr_assert_gt(same, na / 3, "only %zu of %zu trailing chunks match", same, na);
	free(a);
	free(b);
}

Test(chunker, short_input_is_one_chunk)
{
	kvs__cdc c = def();
	uint8_t d[100] = { 0 };
	cr_assert_eq(kvs__cdc_cut(&c, d, 100), 100);
	cr_assert_eq(kvs__cdc_cut(&c, d, 0), 0);
}

/* The serial reference of kvs__cdc_cut_all: chunk by chunk from buf[0]. */
static size_t serial_cuts(const kvs__cdc *c, const uint8_t *d, size_t n, int final, uint32_t *lens,
                          size_t *used)
{
	size_t off = 0, k = 0;

	while (off < n && (final || n - off >= c->max)) {
		size_t x = kvs__cdc_cut(c, d + off, n - off);
		lens[k++] = (uint32_t)x;
		off += x;
	}
	*used = off;
	return k;
}

/* kvs__cdc_cut_all on 1..8 threads gives exactly the serial cuts of `d`. */
static void same_as_serial(const kvs__cdc *c, const uint8_t *d, size_t n, const char *what)
{
	size_t cap = n / c->min + 2;
	uint32_t *ref = malloc(cap * sizeof(*ref)), *got = malloc(cap * sizeof(*got));
	uint32_t *scratch = malloc(KVS__CDC_MAX_THREADS * cap * sizeof(*scratch));
	uint8_t (*addrs)[16] = malloc(cap * 16), (*ascratch)[16] = malloc(KVS__CDC_MAX_THREADS * cap * 16);

	cr_assert(ref && got && scratch && addrs && ascratch);
	for (int final = 0; final <= 1; final++) {
		size_t rused, nref = serial_cuts(c, d, n, final, ref, &rused);
		for (unsigned th = 1; th <= KVS__CDC_MAX_THREADS; th++) {
			size_t ngot = 0, gused = 0, off = 0;
			int with_addrs = th % 2 == 0;   /* both ways */
			cr_assert_eq(kvs__cdc_cut_all(c, d, n, final, got, with_addrs ? addrs : NULL, cap,
			                              &ngot, &gused, th, scratch, ascratch), 0,
			             "%s: %s", what, kvs_error_last());
			cr_assert_eq(ngot, nref, "%s, final %d, %u threads: %zu chunks, serial %zu", what,
			             final, th, ngot, nref);
			cr_assert_eq(gused, rused, "%s, final %d, %u threads: %zu bytes cut, serial %zu",
			             what, final, th, gused, rused);
			/* the pipelined put's way: every piece, the first included, cut
			 * apart (here in turn), then merged */
			if (th > 1) {
				kvs__cdc_piece pcs[KVS__CDC_MAX_THREADS];
				unsigned np = kvs__cdc_pieces(c, n, th);
				size_t nm = 0, mused = 0;
				uint32_t *mg = malloc(cap * sizeof(*mg));
				cr_assert(mg);
				for (unsigned k = 0; k < np; k++) {
					kvs__cdc_piece_init(&pcs[k], c, d, n, final, n / np * k,
					                    k + 1 < np ? n / np * (k + 1) : n, scratch + k * cap,
					                    ascratch + k * cap, cap);
					kvs__cdc_piece_run(&pcs[k]);
				}
				cr_assert_eq(kvs__cdc_merge(c, d, n, final, pcs, np, mg, NULL, cap, &nm, &mused), 0);
				cr_assert_eq(nm, nref, "%s, final %d, %u pieces merged: %zu chunks, serial %zu",
				             what, final, np, nm, nref);
				cr_assert_eq(mused, rused);
				for (size_t i = 0; i < nref; i++)
					cr_assert_eq(mg[i], ref[i], "%s, final %d, %u pieces merged: chunk %zu", what,
					             final, np, i);
				free(mg);
			}
			for (size_t i = 0; i < nref; i++) {
				uint8_t a[16];
				cr_assert_eq(got[i], ref[i], "%s, final %d, %u threads: chunk %zu is %u bytes, "
				             "serial %u", what, final, th, i, got[i], ref[i]);
				kvs__addr_of(a, d + off, ref[i]);
				cr_assert(!with_addrs || memcmp(a, addrs[i], 16) == 0,
				          "%s, final %d, %u threads: chunk %zu has a wrong address", what, final,
				          th, i);
				off += ref[i];
			}
		}
	}
	free(addrs);
	free(ascratch);
	free(ref);
	free(got);
	free(scratch);
}

Test(chunker, parallel_cuts_equal_serial_cuts_on_random_bytes)
{
	kvs__cdc c = def();
	size_t n = 4u << 20;
	uint8_t *d = malloc(n + 262144);

	fx_random(d, n + 262144, 7);
	same_as_serial(&c, d, n, "random 4 MiB");
	same_as_serial(&c, d, n + 262144, "random 4 MiB + max");
	same_as_serial(&c, d, n + 12345, "random, odd length");
	free(d);
}

Test(chunker, parallel_cuts_equal_serial_cuts_on_json)
{
	kvs__cdc c = def(), small;
	size_t n = (4u << 20) + 262144;
	char *d = malloc(n);

	fx_json(d, n, 11);
	same_as_serial(&c, (uint8_t *)d, n, "json");
	/* small chunks: many pieces meet the true chain within a chunk or two */
	cr_assert_eq(kvs__cdc_init(&small, 64, 256, 1024), 0);
	same_as_serial(&small, (uint8_t *)d, 1u << 20, "json, 256-byte chunks");
	free(d);
}

/* Inputs with no cut points (every chunk is chunk_max, so a speculative
 * piece never meets the true chain unless its start is a multiple of max),
 * a repeating period, and regions too short to split. */
Test(chunker, parallel_cuts_equal_serial_cuts_on_edge_inputs)
{
	kvs__cdc c = def();
	size_t n = 4u << 20;
	uint8_t *d = calloc(1, n + 1);

	cr_assert(d);
	same_as_serial(&c, d, n, "zeros, 4 MiB");
	same_as_serial(&c, d, n + 1, "zeros, 4 MiB + 1");
	for (size_t i = 0; i < n; i++)
		d[i] = (uint8_t)(i % 251);
	same_as_serial(&c, d, n, "period 251");
	fx_random(d, 4096, 3);
	for (size_t i = 4096; i < n; i++)
		d[i] = d[i % 4096];
	same_as_serial(&c, d, n, "period 4096 random");
	same_as_serial(&c, d, 0, "empty");
	same_as_serial(&c, d, 100, "100 bytes");
	same_as_serial(&c, d, 262144 * 4 * 2 - 1, "just under two pieces");
	same_as_serial(&c, d, 262144 * 4 * 2, "exactly two pieces");
	free(d);
}

Test(chunker, cut_all_refuses_a_too_small_list)
{
	kvs__cdc c = def();
	size_t n = 1u << 20, ngot, used;
	uint8_t *d = malloc(n);
	uint32_t lens[4];

	fx_random(d, n, 5);
	cr_assert_eq(kvs__cdc_cut_all(&c, d, n, 1, lens, NULL, 4, &ngot, &used, 1, NULL, NULL),
	             KVS_ETOOBIG);
	free(d);
}
