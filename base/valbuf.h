/*
 * valbuf.h — the buffers of whole values the library hands out (kvs_get,
 * kvs_watch_next with values), and the one it keeps for the next get.
 *
 * A fresh buffer costs the kernel's zeroing of every page it touches; for a
 * large value that is as much as decompressing it (docs/design.md "Get").
 * So a large value's buffer is 2 MiB-aligned with transparent huge pages
 * advised, and kvs_free keeps the last large one it is given, its pages
 * handed back lazily (MADV_FREE), for the next get of a like size.
 */
#ifndef KVS_BASE_VALBUF_H
#define KVS_BASE_VALBUF_H

#include <stddef.h>
#include <stdint.h>

/* A buffer for a value of len bytes (1 byte for 0), released with
 * kvs_free() or free(); NULL when out of memory. */
void *kvs__valbuf_alloc(size_t len);

/* kvs_free's body: keeps a large buffer for reuse, frees anything else. */
void kvs__valbuf_free(void *p);

/* For tests: how long a kept buffer may go unused (10 s by default). */
void kvs__valbuf_set_keep_ns(uint64_t ns);

#endif
