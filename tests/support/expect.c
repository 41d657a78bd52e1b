/*
 * expect.c — Criterion checks the suites share (expect.h).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "expect.h"

void fx_expect_value(kvs_store *s, const char *key, const uint8_t *want, size_t n)
{
	void *got = NULL;
	size_t len = 0;
	int rc = kvs_get(&got, &len, NULL, s, key, NULL);

	cr_assert_eq(rc, 0, "get %s: %s", key, kvs_error_last());
	cr_assert_eq(len, n, "get %s: %zu bytes, want %zu", key, len, n);
	cr_assert(n == 0 || memcmp(got, want, n) == 0, "get %s: bytes differ", key);
	kvs_free(got);
}
