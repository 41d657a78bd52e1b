/*
 * test_cache.c — the segment cache's admission rule (scan resistance).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "internal.h"
#include "support/fixture.h"

static kvs_store *open_mem(uint64_t cache_bytes)
{
	kvs_backend *be;
	kvs_store *st;
	kvs_options o = KVS_OPTIONS_INIT;

	o.cache_bytes = cache_bytes;
	cr_assert_eq(kvs_backend_mem(&be, NULL), 0);
	cr_assert_eq(kvs_open(&st, be, &o), 0, "%s", kvs_error_last());
	return st;
}

static kvs__cache_stats stats_after_get(kvs_store *st, size_t len)
{
	uint8_t *v = malloc(len);
	void *out;
	size_t n;
	kvs__cache_stats cs;

	fx_random(v, len, 7);
	cr_assert_eq(kvs_put(NULL, st, "k", v, len, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_get(&out, &n, NULL, st, "k", NULL), 0, "%s", kvs_error_last());
	cr_assert(n == len && memcmp(out, v, len) == 0);
	kvs_free(out);
	free(v);
	kvs__cache_get_stats(st->cache, &cs);
	return cs;
}

Test(cache, value_under_half_the_cache_is_cached)
{
	kvs_store *st = open_mem(8u << 20);
	kvs__cache_stats cs = stats_after_get(st, 2u << 20); /* ~2 MiB stored of 8 */

	cr_assert_gt(cs.entries, 0, "a value using a quarter of the cache should be cached");
	kvs_close(st);
}

Test(cache, value_over_half_the_cache_reads_through_without_filling_it)
{
	kvs_store *st = open_mem(2u << 20);
	kvs__cache_stats cs = stats_after_get(st, 3u << 20); /* ~3 MiB stored of 2 */

	cr_assert_eq(cs.entries, 0, "a scan larger than half the cache must not be admitted "
	             "(%llu entries, %llu bytes)", (unsigned long long)cs.entries,
	             (unsigned long long)cs.bytes);
	kvs_close(st);
}
