/*
 * test_getinto.c — suite "get_into": kvs_get_into reads a whole value into
 * the caller's buffer. A buffer too small is KVS_ERANGE with the length it
 * needs and not a byte written; max_bytes still applies first; chunked,
 * inline and empty values read exactly, nothing past the value touched.
 * (Damage on the read path: suite "reads", which runs kvs_get_into too.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "support/fixture.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

static kvs_store *open_store(void)
{
	kvs_backend *b = NULL;
	kvs_store *s = NULL;

	cr_assert_eq(fx_backend(&b), 0, "backend: %s", kvs_error_last());
	cr_assert_eq(kvs_open(&s, b, NULL), 0, "open: %s", kvs_error_last());
	return s;
}

static uint8_t *guarded(size_t cap, size_t guard)
{
	uint8_t *p = malloc(cap + guard);
	cr_assert_not_null(p);
	memset(p, 0xa5, cap + guard);
	return p;
}

static void expect_untouched(const uint8_t *p, size_t from, size_t to, const char *what)
{
	for (size_t i = from; i < to; i++)
		cr_assert_eq(p[i], 0xa5, "%s: byte %zu was written", what, i);
}

/* Chunked (JSON, random) and inline values land exactly; the rest of a
 * larger buffer stays as it was. */
static void reads_exactly(size_t n, int json)
{
	kvs_store *s = open_store();
	uint8_t *d = malloc(n), *buf = guarded(n + 8192, 0);
	kvs_ver pv, gv;
	size_t len = 1;

	cr_assert_not_null(d);
	if (json)
		fx_json((char *)d, n, 41);
	else
		fx_random(d, n, 42);
	cr_assert_eq(kvs_put(&pv, s, "k", d, n, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_get_into(&len, &gv, s, "k", buf, n + 8192, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(len, n);
	cr_assert(memcmp(buf, d, n) == 0, "wrong bytes");
	cr_assert_str_eq(gv.str, pv.str);
	expect_untouched(buf, n, n + 8192, "larger buffer");
	free(buf);
	free(d);
	kvs_close(s);
}

Test(get_into, reads_a_chunked_json_value_exactly) { reads_exactly(5 * MIB + 333, 1); }
Test(get_into, reads_a_chunked_random_value_exactly) { reads_exactly(3 * MIB + 1, 0); }
Test(get_into, reads_an_inline_value_exactly) { reads_exactly(3000, 1); }

/* One byte short: KVS_ERANGE, the needed length, not a byte written. */
static void too_small(size_t n)
{
	kvs_store *s = open_store();
	uint8_t *d = malloc(n), *buf = guarded(n, 0);
	size_t len = 0;
	int rc;

	cr_assert_not_null(d);
	fx_json((char *)d, n, 43);
	cr_assert_eq(kvs_put(NULL, s, "k", d, n, NULL), 0, "%s", kvs_error_last());
	rc = kvs_get_into(&len, NULL, s, "k", buf, n - 1, NULL);
	cr_assert_eq(rc, KVS_ERANGE, "got %s: %s", kvs_strerror(rc), kvs_error_last());
	cr_assert_eq(len, n, "needed length %zu, want %zu", len, n);
	cr_assert(strstr(kvs_error_last(), "buffer"), "detail: %s", kvs_error_last());
	expect_untouched(buf, 0, n, "too small a buffer");
	/* and no buffer at all asks for the length */
	len = 0;
	cr_assert_eq(kvs_get_into(&len, NULL, s, "k", NULL, 0, NULL), KVS_ERANGE);
	cr_assert_eq(len, n);
	free(buf);
	free(d);
	kvs_close(s);
}

Test(get_into, too_small_a_buffer_for_a_chunked_value_is_erange_and_writes_nothing)
{
	too_small(2 * MIB);
}

Test(get_into, too_small_a_buffer_for_an_inline_value_is_erange_and_writes_nothing)
{
	too_small(1000);
}

Test(get_into, max_bytes_is_checked_before_the_buffer)
{
	kvs_store *s = open_store();
	kvs_get_options go = KVS_GET_OPTIONS_INIT;
	size_t n = 300 * KIB, len = 7;
	uint8_t *d = malloc(n), *buf = guarded(n, 0);
	int rc;

	cr_assert_not_null(d);
	fx_json((char *)d, n, 44);
	cr_assert_eq(kvs_put(NULL, s, "k", d, n, NULL), 0, "%s", kvs_error_last());
	go.max_bytes = n - 1;
	rc = kvs_get_into(&len, NULL, s, "k", buf, n, &go);
	cr_assert_eq(rc, KVS_ETOOBIG, "got %s: %s", kvs_strerror(rc), kvs_error_last());
	cr_assert_eq(len, 0);
	expect_untouched(buf, 0, n, "over max_bytes");
	free(buf);
	free(d);
	kvs_close(s);
}

Test(get_into, empty_value_needs_no_buffer)
{
	kvs_store *s = open_store();
	size_t len = 9;

	cr_assert_eq(kvs_put(NULL, s, "k", "", 0, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_get_into(&len, NULL, s, "k", NULL, 0, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(len, 0);
	kvs_close(s);
}

Test(get_into, missing_key_and_bad_arguments)
{
	kvs_store *s = open_store();
	uint8_t b[16];
	size_t len = 5;

	cr_assert_eq(kvs_get_into(&len, NULL, s, "nope", b, sizeof(b), NULL), KVS_ENOTFOUND);
	cr_assert_eq(len, 0);
	cr_assert_eq(kvs_get_into(NULL, NULL, s, "nope", b, sizeof(b), NULL), KVS_EINVAL);
	cr_assert_eq(kvs_get_into(&len, NULL, s, "nope", NULL, 16, NULL), KVS_EINVAL);
	cr_assert_eq(kvs_strerror(KVS_ERANGE)[0] != 0 && strcmp(kvs_strerror(KVS_ERANGE),
	             "unknown error") != 0, 1);
	kvs_close(s);
}

/* The allocating get of a value past the huge-page threshold still returns
 * exactly the value, released by kvs_free. */
Test(get_into, allocating_get_of_a_large_value_is_exact)
{
	kvs_store *s = open_store();
	size_t n = 9 * MIB + 5, len = 0;
	uint8_t *d = malloc(n);
	void *got = NULL;

	cr_assert_not_null(d);
	fx_json((char *)d, n, 45);
	cr_assert_eq(kvs_put(NULL, s, "k", d, n, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_get(&got, &len, NULL, s, "k", NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(len, n);
	cr_assert(memcmp(got, d, n) == 0);
	kvs_free(got);
	free(d);
	kvs_close(s);
}

_Static_assert(KVS_ERANGE == -19, "error codes are frozen");

/* Anonymous huge pages of this process, KiB (-1: unknown). */
static long anon_huge_kib(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char l[256];
	long k = -1;

	if (!f)
		return -1;
	while (fgets(l, sizeof(l), f))
		if (sscanf(l, "AnonHugePages: %ld", &k) == 1)
			break;
	fclose(f);
	return k;
}

/*
 * Where THP is offered on request ([madvise] or [always]), the buffer of a
 * large allocating get is backed by huge pages. (Checked to fail with the
 * madvise removed, THP in madvise mode.)
 */
Test(get_into, allocating_get_of_a_large_value_asks_for_huge_pages)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char mode[128] = "";
	kvs_store *s;
	size_t n = 32 * MIB, len = 0;
	uint8_t *d;
	void *got = NULL;
	long before, after;

	if (f) {
		if (!fgets(mode, sizeof(mode), f))
			mode[0] = 0;
		fclose(f);
	}
	if (!strstr(mode, "[madvise]") && !strstr(mode, "[always]"))
		cr_skip_test("transparent huge pages are not offered here (%s)", mode);
	s = open_store();
	cr_assert_not_null(d = malloc(n));
	fx_json((char *)d, n, 46);
	cr_assert_eq(kvs_put(NULL, s, "k", d, n, NULL), 0, "%s", kvs_error_last());
	before = anon_huge_kib();
	cr_assert_eq(kvs_get(&got, &len, NULL, s, "k", NULL), 0, "%s", kvs_error_last());
	after = anon_huge_kib();
	cr_assert_geq(before, 0, "no AnonHugePages in smaps_rollup");
	cr_expect_geq(after - before, 2048, "huge pages %ld KiB before the get, %ld after", before,
	              after);
	kvs_free(got);
	free(d);
	kvs_close(s);
}
