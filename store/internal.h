/*
 * internal.h — the store handle and the library-internal entry points other
 * parts of libkvsplit (watch, gc, fsck) build on. Nothing here is public API;
 * everything non-static is prefixed kvs__ and hidden by -fvisibility=hidden.
 */
#ifndef KVS_INTERNAL_H
#define KVS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "cache.h"
#include "chunker.h"
#include "manifest.h"
#include "names.h"
#include "segment.h"

/* Defaults and hard limits of kvs_options (docs/design.md "Sizes"). */
#define KVS__DEF_STORE "default"
#define KVS__DEF_CHUNK_MIN (16u * 1024u)
#define KVS__DEF_CHUNK_AVG (64u * 1024u)
#define KVS__DEF_CHUNK_MAX (256u * 1024u)
#define KVS__DEF_INLINE_MAX (64u * 1024u)
#define KVS__DEF_SEGMENT_TARGET (960u * 1024u)
#define KVS__DEF_CONCURRENCY 8u
#define KVS__MAX_CONCURRENCY 64u
#define KVS__DEF_CACHE_BYTES (64ull << 20)
#define KVS__DEF_TOUCH_WINDOW_S 600u
#define KVS__MAX_LZ4_ACCEL 65537u
#define KVS__DEF_MAX_WORKERS 4u     /* default workers: online CPUs, at most this */
#define KVS__MAX_WORKERS 8u
#define KVS__DEF_PUT_RETRIES 32u    /* blind put: attempts on 409 */
/* Room for everything in an index manifest that is not the inline blob. */
#define KVS__INDEX_OVERHEAD 4096u

struct kvs_store {
	kvs_backend *be;                  /* owned */
	char name[KVS__STORE_NAME_MAX + 1];
	kvs_options opts;                 /* resolved: no zero fields; opts.name == name */
	kvs__cdc cdc;                     /* chunker of new puts */
	kvs__cache *cache;                /* never NULL (may have capacity 0) */
	uint64_t manifest_max;            /* index manifest cap before indirect */
	uint64_t seg_cap;                 /* min(segment_target, max_object_bytes) */
	unsigned int put_retries;
	unsigned int workers;             /* threads of a put / whole-value get (1 = caller's only) */
	uint32_t history;                 /* older versions a commit keeps (0: none; history.c) */
	/* be->ops->batch if the backend's vtable has the kvs_op layout we use
	 * (version >= 2), else NULL: call through kvs__batch() */
	int (*batch)(kvs_backend *b, kvs_op *ops, size_t n);
	uint32_t map_run_target;          /* maps: raw bytes of a run before cutting */
	uint32_t map_inline_max;          /* maps: raw bytes of inline runs in an index */
	uint32_t map_basetab_min;         /* maps: smallest base table kept out of the index
	                                   * (0: KVS__MAP_BASETAB_MIN; UINT32_MAX: never) */
	int map_minor_always;             /* maps, tests: a minor compaction whenever the
	                                   * deltas are below the base's size */
	uint64_t map_minors;              /* maps, tests: minor compactions committed */
	/* be->ops->head (version >= 2), else NULL: KVS_OP_HEAD then runs as a
	 * get whose data kvs__batch() drops */
	int (*head)(kvs_backend *b, kvs_object **out, const char *name);
};

/* ---- knobs for tests and benchmarks ------------------------------------- */

/* Largest manifest kept in the index before going indirect (default
 * KVS__MF_INDEX_MAX; at least 1024). */
int kvs__store_set_manifest_max(kvs_store *s, uint64_t bytes);
/* Threads per put / get (1..KVS__MAX_WORKERS); kvs_options.workers at open. */
int kvs__store_set_workers(kvs_store *s, unsigned int n);
/* Map layout (design.md "Maps"): run target and inline budget, raw bytes;
 * 0 keeps the default. */
int kvs__store_set_map_layout(kvs_store *s, uint32_t run_target, uint32_t inline_max);

/* ---- backend calls (store.c) ---------------------------------------------- */

/*
 * Run `n` ops (one batch when the backend has a usable batch method and
 * n > 1, else one by one). KVS_OP_HEAD ops of a backend without head run
 * as gets, their data dropped. Clears each op's out/result/detail first. 0 when
 * every op ran: each op's result and detail (never "" on failure) say how;
 * < 0 for a failure of the batch as a whole (outs freed).
 */
int kvs__batch(kvs_store *s, kvs_op *ops, size_t n);

/* ---- reading (get.c) ------------------------------------------------------ */

/*
 * Decode the manifest of an index object fetched for `key` (key may be NULL
 * when unknown, e.g. in a listing): checks the key matches, and resolves an
 * indirect manifest by reading and verifying its body from segments, so *m
 * is always a KVS__MF_BLOB. `*requests` (may be NULL) is increased by the
 * backend calls made. KVS_ECORRUPT / KVS_EUNSUPPORTED / KVS_ENOTFOUND (a body
 * segment is missing) / KVS_EIO...
 */
int kvs__index_load(kvs__manifest *m, kvs_store *s, const kvs_object *index,
                    const char *key, size_t key_len, uint64_t *requests);

/*
 * Resolve a decoded manifest: an indirect one's body is read, verified and
 * decoded (the result keeps the outer generation and history fields); any
 * other kind is moved as it is. Takes *outer (cleared on return, success or
 * not). `what` names it in errors.
 */
int kvs__manifest_resolve(kvs__manifest *m, kvs_store *s, kvs__manifest *outer,
                          const char *what, uint64_t *requests);

/*
 * Like kvs__index_load but without resolving indirection (no backend calls):
 * *m may be KVS__MF_INDIRECT. Used by stat.
 */
int kvs__index_decode(kvs__manifest *m, const kvs_store *s, const kvs_object *index,
                      const char *key, size_t key_len);

/* Segment fetch through the cache: a reference to the segment (release with
 * kvs__seg_unref). KVS_ENOTFOUND names the segment. */
int kvs__segment_fetch(kvs__segment **out, kvs_store *s, const uint8_t addr[16],
                       uint64_t *requests);

/*
 * Deliver the verified value described by blob manifest `m` (inline or
 * chunked) to `write`, in order, chunk by chunk; verifies every chunk and,
 * at the end, the whole-value hash. `what` names the key in errors.
 */
int kvs__value_read(kvs_store *s, const kvs__manifest *m, const char *what,
                    kvs_write_cb write, void *ctx, const kvs_get_options *opts,
                    uint64_t *requests);

/* Same, into one malloc'd buffer of m->length bytes (non-NULL even for 0). */
int kvs__value_read_buf(uint8_t **out, kvs_store *s, const kvs__manifest *m,
                        const char *what, const kvs_get_options *opts, uint64_t *requests);

/* Index object name of a key, after validating the key (KVS_EINVAL). */
int kvs__key_to_index(char out[KVS__NAME_BUF], const kvs_store *s, const char *key,
                      size_t *key_len);

/* A monotonic clock in ms (touch windows), and in ns (timing a stage). */
int64_t kvs__mono_ms(void);
uint64_t kvs__mono_ns(void);

#endif
