/*
 * manifest.h — the manifest of a key (docs/format.md "Manifest"): a msgpack
 * map followed by an 8-byte XXH3-64 trailer. Encoding is deterministic;
 * decoding is strict (caps on every count and size, every index in range,
 * every field present exactly once, the trailer checked first) and never
 * trusts anything it reads.
 *
 * Kinds:
 *  - KVS__MF_BLOB: a value, either inline (`inline_blob`, a chunk blob) or a
 *    chunk list over a segment table.
 *  - KVS__MF_INDIRECT: the index holds only this small manifest; the real
 *    (blob) manifest, encoded, is itself stored as chunks in segments
 *    (`segs`/`chunks` describe the *body*, body_len/body_hash check it).
 *    Depth is at most 1: the body must be a non-inline blob manifest.
 *  - KVS__MF_MAP (format version 2): a key-split map. `segs` lists the
 *    segments its out-of-line runs live in; `runtab` is the run table as a
 *    chunk blob of `runtab_raw` raw bytes, decoded by store/mapindex.c
 *    (docs/format.md §5). No chunks, no inline value, no value hash.
 */
#ifndef KVS_MANIFEST_H
#define KVS_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#define KVS__MF_VERSION 1u
#define KVS__MF_VERSION_MAP 2u   /* kind map was added in format version 2 */
/* Format version 3: a blob or indirect manifest with its commit's time and
 * bytes added, and optionally the key's history table (docs/format.md §6).
 * Written only when the store keeps history; versions 1 and 2 still read. */
#define KVS__MF_VERSION_HIST 3u
/* Format version 4: a map manifest whose run table holds the deltas and a
 * reference to its base table, a chunk in a segment (docs/format.md §5.5).
 * Written only when the base table is large; version 2 maps still read. */
#define KVS__MF_VERSION_MAPBASE 4u
/* Largest history table a manifest may carry (records of history.h). */
#define KVS__MF_HIST_MAX (64u * 72u)
/* Largest raw run table of a map manifest (docs/format.md §5.2). */
#define KVS__MF_RUNTAB_MAX (8u << 20)

/* Caps (format.md). */
#define KVS__MF_MAX_CHUNKS (1u << 22)
#define KVS__MF_MAX_SEGS (1u << 20)
#define KVS__MF_MAX_LENGTH (1ull << 40)
#define KVS__MF_CHUNK_REC 28u   /* addr16 | seg u32 | raw u32 | stored u32 */
#define KVS__MF_SEG_REC 28u     /* addr16 | bytes u64 | nchunks u32 */
/* Largest encoded manifest accepted at all (a body of 2^22 chunks + 2^20
 * segments + fixed fields). */
#define KVS__MF_MAX_ENCODED \
	((uint64_t)KVS__MF_MAX_CHUNKS * KVS__MF_CHUNK_REC + \
	 (uint64_t)KVS__MF_MAX_SEGS * KVS__MF_SEG_REC + 4096u + (1u << 20) + 16u)
/* Default largest manifest kept in the index object before going indirect. */
#define KVS__MF_INDEX_MAX (768u * 1024u)

typedef enum kvs__mf_kind {
	KVS__MF_BLOB = 1,
	KVS__MF_MAP = 2,       /* key-split map, format version 2 */
	KVS__MF_INDIRECT = 3
} kvs__mf_kind;

/* One chunk of a value (or of an indirect body), in value order. */
typedef struct kvs__chunk_ref {
	uint8_t addr[16];     /* XXH3-128 of the raw bytes (canonical) */
	uint32_t seg;         /* index into the manifest's segment table */
	uint32_t raw_len;     /* 1..chunk_max */
	uint32_t stored_len;  /* blob length in the segment, 1..bound(raw_len) */
} kvs__chunk_ref;

/* One segment the value references. */
typedef struct kvs__seg_desc {
	uint8_t addr[16];     /* segment address (its name's 32 hex) */
	uint64_t bytes;       /* total stored bytes of ALL chunks in the segment */
	uint32_t nchunks;     /* chunks in the segment (all, not only ours) */
} kvs__seg_desc;

typedef struct kvs__manifest {
	kvs__mf_kind kind;
	char *key;              /* NUL-terminated copy, key_len bytes */
	size_t key_len;
	uint64_t length;        /* value length */
	uint8_t hash[16];       /* XXH3-128 of the whole value (canonical) */
	uint64_t generation;    /* 1 for the first put; 0 in an indirect body */
	uint32_t codec;         /* 1: chunk blobs of codec.h */
	uint32_t cdc_min, cdc_avg, cdc_max;
	int is_inline;
	uint8_t *inline_blob;   /* when is_inline: a chunk blob of `length` raw bytes */
	uint32_t inline_len;
	kvs__seg_desc *segs;
	uint32_t nsegs;
	kvs__chunk_ref *chunks;
	uint32_t nchunks;
	/* KVS__MF_INDIRECT only: the body (encoded blob manifest) and a summary
	 * of the value for kvs_stat_key without reading segments. */
	uint64_t body_len;
	uint8_t body_hash[16];
	uint64_t v_chunks, v_segs, v_stored, v_segbytes;
	/* KVS__MF_MAP only: the run table, a chunk blob of runtab_raw bytes. */
	uint8_t *runtab;
	uint32_t runtab_len;
	uint32_t runtab_raw;
	int map_v4;             /* format version 4: the run table has a base table reference */
	/* Format version 3 (blob and indirect kinds only, docs/format.md §6):
	 * v3 set means `time` and `added` are present; `hist` is the history
	 * table as stored (parsed and checked by history.c when used, so a
	 * damaged table never makes the current value unreadable). */
	int v3;
	uint64_t time_ms;       /* server time of this version's commit, Unix ms */
	uint64_t added;         /* stored bytes its commit wrote (history.c) */
	uint8_t *hist;
	uint32_t hist_len;
	int hist_bad;           /* a `hist` field that is not a binary within the cap */
} kvs__manifest;

/* Free the arrays and strings of *m and zero it. Accepts NULL. */
void kvs__manifest_clear(kvs__manifest *m);

/*
 * Encode *m. *out (malloc, caller frees) gets the bytes. Checks the same
 * invariants the decoder does (an encoder bug is KVS_ERROR, never a manifest
 * that cannot be read back). `cap` bounds the result (KVS_ETOOBIG over it).
 */
int kvs__manifest_encode(uint8_t **out, size_t *out_len, const kvs__manifest *m, uint64_t cap);

/*
 * Strictly decode `len` bytes into *m (zeroed first; clear it after use even
 * on failure). KVS_ECORRUPT for garbage, truncation, checksum or cap
 * violations; KVS_EUNSUPPORTED for an unknown format version or kind;
 * KVS_ENOMEM. `what` names the source in error details ("index kvs.x.i-a").
 */
int kvs__manifest_decode(kvs__manifest *m, const uint8_t *buf, size_t len, const char *what);

/* Big-endian fields of the binary tables (format.md §4.3, §5.2). */
static inline void kvs__put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void kvs__put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static inline void kvs__put_be64(uint8_t *p, uint64_t v)
{
	kvs__put_be32(p, (uint32_t)(v >> 32));
	kvs__put_be32(p + 4, (uint32_t)v);
}

static inline uint16_t kvs__get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t kvs__get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t kvs__get_be64(const uint8_t *p)
{
	return (uint64_t)kvs__get_be32(p) << 32 | kvs__get_be32(p + 4);
}

#endif
