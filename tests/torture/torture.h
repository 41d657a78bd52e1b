/*
 * torture.h — allocation-failure injection for the torture suite (curl's
 * torture mode): build/test-torture is linked with -Wl,--wrap for every
 * allocator our code calls, so each allocation made by libkvsplit.a and the
 * test objects goes through tests/torture/wrap.c. Shared libraries (libc
 * internals, msgpack-c, cJSON, libyaml, lz4, libcurl, Criterion) resolve
 * malloc themselves and are neither counted nor failed.
 */
#ifndef KVS_TORTURE_H
#define KVS_TORTURE_H

#include <stdint.h>

/*
 * Count allocations from now on and fail the n-th one (1 = the next); n == 0
 * only counts. Thread-safe: every thread's allocations share one counter.
 */
void torture_arm(uint64_t n);
/* Stop counting and failing; returns how many allocations were counted
 * (including the failed one) since torture_arm. */
uint64_t torture_disarm(void);
/* 1 if the armed failure was injected since the last torture_arm. */
int torture_hit(void);

#endif
