/*
 * cache.h — a bounded, thread-safe cache of fetched segments, keyed by
 * segment address (content-addressed: an entry can never be stale, only
 * evicted). Least recently used entries go first once the sum of cached
 * segments' stored bytes exceeds the capacity. Only segments whose canonical
 * encoding verified are ever inserted. Shared by get and watch.
 */
#ifndef KVS_CACHE_H
#define KVS_CACHE_H

#include <stdint.h>

#include "segment.h"

typedef struct kvs__cache kvs__cache;

/* cap_bytes 0 = a cache that keeps nothing. */
int kvs__cache_new(kvs__cache **out, uint64_t cap_bytes);
void kvs__cache_free(kvs__cache *c);

/* A new reference to the cached segment, or NULL. */
kvs__segment *kvs__cache_get(kvs__cache *c, const uint8_t addr[16]);

/* Insert (the cache takes its own reference; no-op if present, unverified
 * or larger than the capacity). */
void kvs__cache_put(kvs__cache *c, kvs__segment *s);

/* Capacity in bytes (0 for a cache that keeps nothing). */
uint64_t kvs__cache_capacity(const kvs__cache *c);

/* Drop one segment (e.g. after it failed a check). */
void kvs__cache_drop(kvs__cache *c, const uint8_t addr[16]);

typedef struct kvs__cache_stats {
	uint64_t hits, misses, bytes, entries, evictions;
} kvs__cache_stats;
void kvs__cache_get_stats(kvs__cache *c, kvs__cache_stats *out);

#endif
