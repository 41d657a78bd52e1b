/*
 * test_crash.c — suite "crash" (memory backend only): a put that dies after
 * its k-th backend call, or sees one failure at call k, for every k until
 * the put goes through, leaves the old value readable and intact, and the
 * put can be re-run.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <kvsplit.h>
#include <kvsplit/backend.h>

#include "support/fixture.h"

#define N1 (1536u * 1024u)

static kvs_options small_opts(void)
{
	kvs_options o = KVS_OPTIONS_INIT;
	o.segment_target = 96 * 1024;   /* many segments, many calls */
	o.concurrency = 3;
	o.cache_bytes = UINT64_MAX;
	return o;
}

static kvs_store *store_on(kvs_backend *b)
{
	kvs_options o = small_opts();
	kvs_store *s;
	cr_assert_eq(kvs_open(&s, b, &o), 0, "%s", kvs_error_last());
	return s;
}

static kvs_store *peer(kvs_backend *main)
{
	kvs_backend *b;
	cr_assert_eq(kvs_backend_mem_clone(&b, main), 0);
	return store_on(b);
}

static void expect(kvs_store *s, const uint8_t *want, size_t n)
{
	void *p = NULL;
	size_t len;
	int rc = kvs_get(&p, &len, NULL, s, "k", NULL);
	cr_assert_eq(rc, 0, "get: %s", kvs_error_last());
	cr_assert_eq(len, n);
	cr_assert(memcmp(p, want, n) == 0, "value differs");
	kvs_free(p);
}

/* Old value, and a new one that shares half its chunks with it and has
 * 600 KiB of incompressible new bytes (several new segments). */
#define NEW (600u * 1024u)
static void values(uint8_t **v1, uint8_t **v2)
{
	*v1 = malloc(N1);
	*v2 = malloc(N1 + NEW);
	fx_json((char *)*v1, N1, 7);
	memcpy(*v2, *v1, N1 / 2);
	fx_random(*v2 + N1 / 2, NEW, 8);
	memcpy(*v2 + N1 / 2 + NEW, *v1 + N1 / 2, N1 / 2);
}

static void run(int crash)
{
	uint8_t *v1, *v2;
	int succeeded = 0;
	uint64_t k;

	values(&v1, &v2);
	for (k = 1; k < 500 && !succeeded; k++) {
		kvs_backend *main;
		cr_assert_eq(kvs_backend_mem(&main, NULL), 0);
		kvs_store *s0 = store_on(main);
		cr_assert_eq(kvs_put(NULL, s0, "k", v1, N1, NULL), 0);

		kvs_backend *h;
		cr_assert_eq(kvs_backend_mem_clone(&h, main), 0);
		kvs_store *sw = store_on(h);
		if (crash)
			kvs_mem_crash_after(h, k);   /* calls 1..k work, k+1 on die */
		else
			kvs_mem_fail_nth(h, k, KVS_EIO);
		int rc = kvs_put(NULL, sw, "k", v2, N1 + NEW, NULL);
		kvs_store *reader = peer(main);
		if (rc == 0) {
			succeeded = 1;
			expect(reader, v2, N1 + NEW);
		} else {
			expect(reader, v1, N1);   /* old value intact */
			kvs_store *again = crash ? peer(main) : sw;
			cr_assert_eq(kvs_put(NULL, again, "k", v2, N1 + NEW, NULL), 0,
			             "re-run after failure at call %llu: %s", (unsigned long long)k,
			             kvs_error_last());
			expect(reader, v2, N1 + NEW);
			if (again != sw)
				kvs_close(again);
		}
		kvs_close(reader);
		kvs_close(sw);
		kvs_close(s0);
	}
	cr_assert(succeeded, "put never succeeded");
	cr_assert_gt(k, 5, "too few calls to be meaningful (%llu)", (unsigned long long)k);
	free(v1);
	free(v2);
}

Test(crash, put_killed_after_any_call_leaves_old_value_and_can_be_rerun, .timeout = 120)
{
	run(1);
}

Test(crash, single_failure_at_any_call_leaves_old_value_and_can_be_rerun, .timeout = 120)
{
	run(0);
}
