/*
 * expect.h — Criterion checks the suites share (test binary only: the
 * evaluation tools link fixture.c without Criterion).
 */
#ifndef KVS_TEST_EXPECT_H
#define KVS_TEST_EXPECT_H

#include <stddef.h>
#include <stdint.h>

#include <kvsplit.h>

/** kvs_get of `key` succeeds and returns exactly `want` (n bytes). */
void fx_expect_value(kvs_store *s, const char *key, const uint8_t *want, size_t n);

#endif
