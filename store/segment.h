/*
 * segment.h — segments (docs/format.md "Segment"): immutable ConfigMaps that
 * hold chunk blobs as binaryData[<32 hex chunk address>]. Canonical encoding
 * = for each chunk in ascending address order: address (16) ‖ u32 BE stored
 * length ‖ blob; the segment address is the XXH3-128 of that, and the
 * object is named kvs.<store>.s-<hex(segment address)>.
 *
 * A decoded segment (kvs__segment) is reference-counted so that the cache and
 * several readers can share it; it owns the object it came from.
 */
#ifndef KVS_SEGMENT_H
#define KVS_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "kvsplit/backend.h"

/* One chunk going into a segment. The builder takes ownership of `blob`
 * (malloc). */
typedef struct kvs__seg_entry {
	uint8_t addr[16];
	uint8_t *blob;
	uint32_t len;
} kvs__seg_entry;

/*
 * Build the object of a segment from `n` distinct entries (any order; they
 * are sorted by address): address, name, labels, immutable, data. Takes
 * ownership of every entry's blob, also on failure (entries' blobs are
 * set to NULL). `addr` gets the segment address.
 */
int kvs__seg_build(kvs_object **out, uint8_t addr[16], const char *store,
                   kvs__seg_entry *e, size_t n);

/* XXH3-128 canonical encoding address of a set of entries (sorted in place). */
void kvs__seg_address(uint8_t out[16], kvs__seg_entry *e, size_t n);

typedef struct kvs__segment {
	uint8_t addr[16];       /* the address the object is named by */
	int verified;           /* 1: canonical encoding hashes to addr */
	kvs_object *obj;        /* owned */
	const kvs_blob **sorted; /* blobs sorted by key (hex address) for lookup */
	size_t n;
	uint64_t bytes;         /* total stored bytes */
	int refs;               /* reference count (atomic builtins) */
} kvs__segment;

/*
 * Wrap a fetched object as a segment (takes ownership of obj, also on
 * failure). Checks the shape (every key is 32 lowercase hex, no duplicates,
 * sizes bounded by max_object_bytes) — KVS_ECORRUPT otherwise — and computes
 * whether the canonical encoding hashes to `addr` (->verified); a segment
 * that does not verify may still serve the chunks that do.
 */
int kvs__seg_open(kvs__segment **out, kvs_object *obj, const uint8_t addr[16],
                  uint64_t max_object_bytes);
/*
 * The same without the whole-segment hash (->verified stays 0, so the
 * cache never keeps it): for a reader that checks every chunk it uses
 * against its own address anyway and will not cache the segment (a read
 * through, get.c), the hash would be one more pass over every byte.
 */
int kvs__seg_open_unhashed(kvs__segment **out, kvs_object *obj, const uint8_t addr[16],
                           uint64_t max_object_bytes);

/* The blob of chunk `addr`, or NULL. Valid while a reference is held. */
const kvs_blob *kvs__seg_find(const kvs__segment *s, const uint8_t addr[16]);

void kvs__seg_ref(kvs__segment *s);
/* Drop a reference; frees at zero. Accepts NULL. */
void kvs__seg_unref(kvs__segment *s);

#endif
