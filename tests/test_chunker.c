/*
 * test_chunker.c — suite "chunker": FastCDC cut points.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "chunker.h"
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
