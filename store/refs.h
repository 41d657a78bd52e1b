/*
 * refs.h — what an index references: the one place that knows, for every
 * manifest kind, which segments an index object holds on to and what
 * verifies them. gc (marking), fsck (checking), a blind put's rebase and a
 * writer's check of the segments it reuses all ask here, so a new manifest
 * kind (key-split maps) is added in refs.c alone: gc.c and fsck.c need no
 * change for it.
 *
 * An index references *groups*: each an ordered list of chunks over a
 * table of segments, checked as a whole by a length and an XXH3-128 over
 * the chunks' raw bytes in order (or, for a small value, one inline blob
 * and no segment). A blob manifest is one group (the value); an indirect
 * manifest is two: its body (the encoded blob manifest, stored like a
 * value) and then, once the body has been read and verified, the value.
 * A key-split map is one group per segment its run table references, the
 * runs in it as chunks and no whole hash (hash NULL: each run is checked by
 * its address alone). After the committed version's groups come those of
 * each older version its history keeps (history.h): the history object (one
 * chunk, the version's manifest), then that version's own groups as above.
 */
#ifndef KVS_REFS_H
#define KVS_REFS_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

typedef enum kvs__ref_role {
	KVS__REF_VALUE = 1,   /* bytes of the value (or of one run of a map) */
	KVS__REF_BODY = 2,    /* an indirect manifest's body: verified by reading it */
	KVS__REF_HISTORY = 3  /* a history object: one older version's manifest, verified by
	                       * reading it (history.h) */
} kvs__ref_role;

/* One group, as a checker needs it. Pointers are valid during the callback. */
typedef struct kvs__refgroup {
	kvs__ref_role role;
	const char *what;                 /* "value", "manifest body" (for reports) */
	const kvs__seg_desc *segs;        /* segment table */
	uint32_t nsegs;
	const kvs__chunk_ref *chunks;     /* chunks in order; chunks[i].seg indexes segs */
	uint32_t nchunks;
	int is_inline;                    /* no segment: the bytes are inline_blob */
	const uint8_t *inline_blob;
	uint32_t inline_len;
	uint64_t length;                  /* raw bytes of the group */
	const uint8_t *hash;              /* XXH3-128 of them, 16 bytes; NULL: the chunks
	                                   * are independent (map runs), each checked by
	                                   * its address alone */
	uint32_t chunk_max;               /* no chunk is longer (scratch size) */
	uint64_t generation;              /* 0: the committed version; else the older version
	                                   * of the key's history this group belongs to */
} kvs__refgroup;

/*
 * Callbacks of a walk, each optional (NULL). They return 0 to go on or a
 * negative KVS_E code, which stops the walk and is returned by it.
 *  - index: once, when the index's own manifest decoded: its key.
 *  - group: each group, before its segments.
 *  - segment: each segment of each group, with its object name.
 */
typedef struct kvs__refs_cb {
	int (*index)(void *ctx, const char *key, size_t key_len);
	int (*group)(void *ctx, const kvs__refgroup *g);
	int (*segment)(void *ctx, const kvs__refgroup *g, uint32_t i, const char *name);
} kvs__refs_cb;

/* Where a walk that failed stopped (*stage). */
enum {
	KVS__REFS_OK = 0,
	KVS__REFS_DECODE = 1,     /* the index's manifest does not decode: nothing delivered */
	KVS__REFS_LOAD = 2,       /* a part reached through it (an indirect body) cannot be
	                           * read; the groups delivered before it stand */
	KVS__REFS_CALLBACK = 3,   /* a callback returned the error */
	KVS__REFS_HISTORY = 4     /* the history (its table, an object, or a part reached
	                           * through it) cannot be read; everything of the committed
	                           * version was delivered before it */
};

/*
 * Walk everything index object `index` references. `key` (may be NULL)
 * is the key it must hold. An indirect body is read through the segment
 * cache and verified (`*requests`, may be NULL, counts the backend calls).
 * Returns 0, or the error with *stage (may be NULL) saying where.
 */
int kvs__refs_walk(kvs_store *s, const kvs_object *index, const char *key, size_t key_len,
                   const kvs__refs_cb *cb, void *ctx, int *stage, uint64_t *requests);

/*
 * The sorted, distinct addresses of every segment `index` references
 * (*out malloc'd, free it; *n may be 0). On a walk error the addresses
 * delivered before it are kept and the error is returned with *stage.
 */
int kvs__refs_segments(uint8_t (**out)[16], size_t *n, kvs_store *s, const kvs_object *index,
                       int *stage, uint64_t *requests);

/*
 * The same for the committed version alone, without the versions its history
 * keeps (no history object is read): what a blind write's rebase asks, where
 * a segment it misses is simply touched, which is always safe.
 */
int kvs__refs_segments_current(uint8_t (**out)[16], size_t *n, kvs_store *s,
                               const kvs_object *index, int *stage, uint64_t *requests);

/* Is `addr` in a sorted address array from kvs__refs_segments? */
int kvs__refs_has(uint8_t (*addrs)[16], size_t n, const uint8_t addr[16]);

#endif
