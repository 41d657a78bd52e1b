/*
 * test_valbuf.c — suite "valbuf": kvs_free keeps the buffer of a large
 * value for the next get of a like size (base/valbuf.c). It is kept only
 * when its buffer is 4 MiB to 256 MiB, taken only by a value that fills at least half of
 * it, one at a time, released by kvs_release_memory() or once unused for
 * the keep time; a value read into it is exactly its own bytes, and two
 * readers never share it.
 *
 * Each Criterion test runs in a process of its own, so each starts with
 * nothing kept.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "base/valbuf.h"
#include "support/fixture.h"

#define MIB ((size_t)1 << 20)

static kvs_store *store_with(const char *key, size_t n, uint64_t seed, uint8_t **bytes)
{
	static kvs_store *s;
	kvs_backend *b = NULL;
	uint8_t *d = malloc(n);

	cr_assert_not_null(d);
	if (!s) {
		cr_assert_eq(fx_backend(&b), 0, "backend: %s", kvs_error_last());
		cr_assert_eq(kvs_open(&s, b, NULL), 0, "open: %s", kvs_error_last());
	}
	fx_random(d, n, seed);
	cr_assert_eq(kvs_put(NULL, s, key, d, n, NULL), 0, "put %s: %s", key, kvs_error_last());
	if (bytes)
		*bytes = d;
	else
		free(d);
	return s;
}

static void *get_checked(kvs_store *s, const char *key, const uint8_t *want, size_t n)
{
	void *v = NULL;
	size_t len = 0;

	cr_assert_eq(kvs_get(&v, &len, NULL, s, key, NULL), 0, "get %s: %s", key, kvs_error_last());
	cr_assert_eq(len, n, "get %s: %zu bytes, want %zu", key, len, n);
	cr_assert(memcmp(v, want, n) == 0, "get %s: wrong bytes", key);
	return v;
}

Test(valbuf, a_freed_large_value_is_kept_until_released)
{
	uint8_t *d;
	kvs_store *s = store_with("k", 8 * MIB, 1, &d);

	kvs_free(get_checked(s, "k", d, 8 * MIB));
	size_t n = kvs_release_memory();
	cr_assert_geq(n, 8 * MIB, "kvs_free kept %zu bytes of an 8 MiB value", n);
	cr_assert_eq(kvs_release_memory(), 0, "released twice");
	free(d);
}

Test(valbuf, the_next_get_reads_into_the_kept_buffer)
{
	uint8_t *a, *b;
	kvs_store *s = store_with("a", 8 * MIB, 2, &a);

	store_with("b", 8 * MIB - 12345, 3, &b);
	kvs_free(get_checked(s, "a", a, 8 * MIB));
	/* another value of a like size takes it, and reads as its own bytes */
	void *v = get_checked(s, "b", b, 8 * MIB - 12345);
	cr_assert_eq(kvs_release_memory(), 0, "the get did not take the kept buffer");
	kvs_free(v);
	cr_assert_geq(kvs_release_memory(), 8 * MIB - 12345, "its buffer was not kept in turn");
	free(a);
	free(b);
}

Test(valbuf, a_small_value_is_not_kept)
{
	uint8_t *d;
	kvs_store *s = store_with("k", 3 * MIB, 4, &d);

	kvs_free(get_checked(s, "k", d, 3 * MIB));
	cr_assert_eq(kvs_release_memory(), 0, "a 3 MiB value was kept");
	free(d);
}

Test(valbuf, a_buffer_over_256_mib_is_not_kept)
{
	/* kvs_free takes any malloc'd memory; its size is read, not assumed */
	void *big = malloc(257 * MIB), *fit = malloc(16 * MIB);

	cr_assert(big && fit);
	kvs_free(fit);
	kvs_free(big);
	size_t n = kvs_release_memory();
	cr_assert(n >= 16 * MIB && n < 17 * MIB, "kept %zu bytes: the 16 MiB buffer was not kept, "
	          "or the 257 MiB one replaced it", n);
}

Test(valbuf, a_much_smaller_value_leaves_the_kept_buffer)
{
	uint8_t *big, *small;
	kvs_store *s = store_with("big", 32 * MIB, 5, &big);

	store_with("small", 8 * MIB, 6, &small);
	kvs_free(get_checked(s, "big", big, 32 * MIB));
	void *v = get_checked(s, "small", small, 8 * MIB);
	size_t n = kvs_release_memory();
	cr_assert_geq(n, 32 * MIB, "an 8 MiB value took a 32 MiB buffer (%zu left kept)", n);
	kvs_free(v);
	free(big);
	free(small);
}

Test(valbuf, an_unused_buffer_goes_back_after_the_keep_time)
{
	uint8_t *a, *b;
	kvs_store *s = store_with("a", 8 * MIB, 7, &a);
	struct timespec ms20 = { 0, 20 * 1000 * 1000 };

	store_with("b", 32 * MIB, 8, &b);
	kvs__valbuf_set_keep_ns(10 * 1000 * 1000);   /* 10 ms */
	kvs_free(get_checked(s, "a", a, 8 * MIB));
	nanosleep(&ms20, NULL);
	/* a get that cannot use it (32 MiB is over its size) still drops it */
	void *v = get_checked(s, "b", b, 32 * MIB);
	cr_assert_eq(kvs_release_memory(), 0, "a buffer unused past the keep time stayed");
	kvs_free(v);
	free(a);
	free(b);
}

/* Four threads reading four values of a like size through one store, each
 * freeing its value before the next read: the one kept buffer passes from
 * thread to thread, and every value reads as its own bytes. */
struct reader {
	kvs_store *s;
	char key[16];
	uint8_t *want;
	size_t n;
	int bad;
};

static void *read_loop(void *arg)
{
	struct reader *r = arg;

	for (int i = 0; i < 25 && !r->bad; i++) {
		void *v = NULL;
		size_t len = 0;

		if (kvs_get(&v, &len, NULL, r->s, r->key, NULL) != 0 || len != r->n ||
		    memcmp(v, r->want, r->n) != 0)
			r->bad = 1;
		kvs_free(v);
	}
	return NULL;
}

Test(valbuf, readers_on_four_threads_never_share_it)
{
	struct reader r[4];
	pthread_t th[4];
	kvs_store *s = NULL;

	for (int i = 0; i < 4; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		snprintf(r[i].key, sizeof(r[i].key), "t%d", i);
		r[i].n = 4 * MIB + (size_t)i * 100000;
		s = store_with(r[i].key, r[i].n, 10 + (uint64_t)i, &r[i].want);
	}
	for (int i = 0; i < 4; i++) {
		r[i].s = s;
		cr_assert_eq(pthread_create(&th[i], NULL, read_loop, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(r[i].bad, 0, "thread %d read wrong bytes or failed", i);
		free(r[i].want);
	}
}
