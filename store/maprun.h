/*
 * maprun.h — the pieces of a key-split map (docs/format.md §5): sorted runs
 * of msgpack entry records, the run table a map manifest carries, and the
 * merge of runs (newest wins, tombstones hide).
 *
 * A run is the concatenation of records, strictly increasing by field name:
 *     fixarray 3 [ bin name, uint version, bin value | str json | nil ]
 * nil is a tombstone; version 0 means "the run's seq" (a delta run is
 * written before its generation is known, so it does not depend on its
 * base). A run is addressed by the XXH3-128 of its raw bytes and stored as
 * a chunk blob: inline in the run table, or as one entry of a segment.
 *
 * Nothing here talks to a backend except kvs__mrun_load (segment fetch
 * through the store's cache).
 */
#ifndef KVS_MAPRUN_H
#define KVS_MAPRUN_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "internal.h"

/* Caps (format.md §5). */
#define KVS__MAP_RUN_RAW_MAX (768u * 1024u)   /* raw bytes of one run */
#define KVS__MAP_RUNS_MAX (1u << 20)          /* runs in one table */
#define KVS__MAP_REC_OVERHEAD 16u             /* record bytes beyond name+value, at most */

/* Defaults of the layout (design.md "Maps"). */
#define KVS__MAP_RUN_TARGET (64u * 1024u)     /* raw bytes of a run before cutting */
#define KVS__MAP_INLINE_MAX (256u * 1024u)    /* raw bytes of inline runs in an index */
#define KVS__MAP_L0_GROUPS_MAX 64u            /* deltas before compaction regardless of size */
#define KVS__MAP_OOL_GROUPS_MAX 6u            /* out-of-line deltas a minor compaction leaves */
#define KVS__MAP_OOL_FRACTION 8u              /* major once deltas reach 1/this of the base */
#define KVS__MAP_MINOR_RATIO 4u               /* minor when a major would rewrite > this x */
#define KVS__MAP_MINOR 1                      /* kvs__map_policy: merge inline deltas out of line */
#define KVS__MAP_MAJOR 2                      /* kvs__map_policy: merge every delta into the base */

typedef enum kvs__mval {
	KVS__MV_TOMB = 0,   /* nil: deleted */
	KVS__MV_BIN = 1,    /* bin: bytes */
	KVS__MV_JSON = 2    /* str: one compact JSON value */
} kvs__mval;

/* One entry; pointers into a run (or a batch) that outlives it. */
typedef struct kvs__ment {
	const uint8_t *name;
	uint32_t nlen;
	const uint8_t *val;
	uint32_t vlen;
	uint64_t ver;
	kvs__mval type;
} kvs__ment;

/* Bytewise order of names (shorter first on a common prefix). */
int kvs__mname_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn);

/* ---- run codec ------------------------------------------------------------ */

/* Encoded size of one record (an upper bound, exact for msgpack-c). */
size_t kvs__mrec_size(const kvs__ment *e);
/* Its exact size as kvs__mbuild_add encodes it (msgpack-c's smallest
 * headers): run cuts computed ahead of building agree with the builder's. */
size_t kvs__mrec_len(const kvs__ment *e);

/* Builds one run with msgpack-c's packer; entries must come in order. */
typedef struct kvs__mbuild {
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint32_t n;
} kvs__mbuild;

void kvs__mbuild_init(kvs__mbuild *b);
/* Init with `cap` bytes ready (the run's size from kvs__mrec_len: no
 * realloc while it fills). 0 or KVS_ENOMEM. */
int kvs__mbuild_init_cap(kvs__mbuild *b, size_t cap);
/* The records built (malloc, the caller frees; *len their size); the
 * builder is left empty, ready for more. */
uint8_t *kvs__mbuild_take(kvs__mbuild *b, size_t *len);
/* 0 or KVS_ENOMEM. */
int kvs__mbuild_add(kvs__mbuild *b, const kvs__ment *e);
/* Forget the records (keeps the buffer). */
void kvs__mbuild_reset(kvs__mbuild *b);
void kvs__mbuild_free(kvs__mbuild *b);

/* A cursor over the records of a run. */
typedef struct kvs__mcur {
	const uint8_t *p;
	size_t n, off;
} kvs__mcur;

/* Next record: 0, KVS_EITER_DONE at the end, KVS_ECORRUPT (no detail). */
int kvs__mcur_next(kvs__mcur *c, kvs__ment *e);

/* ---- run table ------------------------------------------------------------ */

#define KVS__MRUN_INLINE 0x1u
#define KVS__MRUN_NOSEG UINT32_MAX

typedef struct kvs__mrun {
	uint8_t level;        /* 0 delta, 1 base */
	uint8_t flags;        /* KVS__MRUN_INLINE */
	uint64_t seq;         /* generation that wrote it */
	uint32_t nent, ntomb;
	uint32_t raw_len, stored_len;
	uint8_t addr[16];     /* XXH3-128 of the raw run */
	uint32_t seg;         /* index into the segment table, or KVS__MRUN_NOSEG */
	uint8_t *min, *max;   /* owned */
	uint16_t minlen, maxlen;
	uint8_t *raw;         /* inline runs: the raw bytes (owned) */
} kvs__mrun;

/*
 * The base table (format version 4, format.md §5.5): the level-1 run
 * records, encoded as a run table of their own and stored as one chunk blob
 * in segment `seg` of the segment table, so that a batch over an unchanged
 * base sends only its deltas and this reference.
 */
typedef struct kvs__mbtab {
	uint32_t seg;           /* index into the segment table */
	uint8_t addr[16];       /* XXH3-128 of the raw base table */
	uint32_t raw_len, stored_len;
	uint32_t nruns;         /* base runs it holds */
} kvs__mbtab;

/* Below this many raw bytes a base table stays in the index (version 2). */
#define KVS__MAP_BASETAB_MIN 4096u
/* v4 run table header: nbase, seg, addr, raw_len, stored_len */
#define KVS__MAP_BTREF_LEN (4u + 4u + 16u + 4u + 4u)

typedef struct kvs__mapidx {
	kvs__mrun *runs;
	uint32_t nruns, cap;
	kvs__seg_desc *segs;
	uint32_t nsegs, capsegs;
	uint64_t gen;
	/* format version 4: the base runs (level 1) came from, or go to, a base
	 * table in a segment; bt_pending: decoded, base runs not loaded yet */
	int has_bt, bt_pending;
	kvs__mbtab bt;
} kvs__mapidx;

void kvs__mapidx_clear(kvs__mapidx *ix);
void kvs__mrun_clear(kvs__mrun *r);

/* Decode and check the run table of map manifest `m` (takes nothing from m;
 * copies). KVS_ECORRUPT with detail naming `what`. A version 4 table is
 * decoded up to its base table reference (ix->bt_pending): the base runs
 * are read by kvs__mapidx_load_base. */
int kvs__mapidx_decode(kvs__mapidx *ix, const kvs__manifest *m, const char *what);

/*
 * Version 4: fetch the base table ix->bt from its segment (through the
 * store's segment cache), verify it (stored size, decompression, XXH3-128,
 * every record, level 1 only, the count) and append its runs; then check
 * the whole table as format.md §5.3 says. Nothing to do when !bt_pending.
 * KVS_ENOTFOUND when its segment or chunk is gone, KVS_ECORRUPT naming
 * `what` for anything else wrong; ix is cleared on failure.
 */
int kvs__mapidx_load_base(kvs__mapidx *ix, kvs_store *s, const char *what, kvs_map_stats *st);

/*
 * Version 4, a reader that keeps what it read (a watch): take the base
 * runs of `from` — a table read before whose base table had the same
 * address, so the same records — instead of fetching it, then check the
 * whole table. KVS_EINVAL (ix unchanged) when the addresses differ.
 */
int kvs__mapidx_adopt_base(kvs__mapidx *ix, const kvs__mapidx *from, const char *what);

/* A copy of ix's base runs and base table reference (no segment table). */
/* Append a deep copy of run r to ix (the caller's r is unchanged); past
 * KVS__MAP_RUNS_MAX runs fail with too_many (KVS_ECORRUPT for a table being
 * read, KVS_ETOOBIG for one being written). */
int kvs__mapidx_append(kvs__mapidx *ix, const kvs__mrun *r, int too_many);
int kvs__mapidx_copy_base(kvs__mapidx *out, const kvs__mapidx *ix);

/* decode + load_base. */
int kvs__mapidx_read(kvs__mapidx *ix, kvs_store *s, const kvs__manifest *m, const char *what,
                     kvs_map_stats *st);

/* Raw size of the base table of ix's level-1 runs (format.md §5.5). */
uint64_t kvs__mapidx_basetab_size(const kvs__mapidx *ix);

/* Encode ix's level-1 runs as a base table: *raw (malloc) of *len bytes. */
int kvs__mapidx_basetab(uint8_t **raw, size_t *len, const kvs__mapidx *ix);

/* Encode ix's run table into m->runtab/runtab_len/runtab_raw and copy its
 * segment table into m->segs (m owns them). Checks as the decoder does.
 * With ix->has_bt (ix->bt set, its segment in the table) the base runs are
 * left out and the table is of format version 4 (m->map_v4). */
int kvs__mapidx_encode(kvs__manifest *m, const kvs__mapidx *ix, int accel);

/*
 * Describe a raw run: check every record (order, types, sizes), count
 * entries and tombstones, take min/max. The run owns nothing; r->raw is left
 * alone. KVS_ECORRUPT / KVS_EINVAL (empty) / KVS_ENOMEM.
 */
int kvs__mrun_describe(kvs__mrun *r, const uint8_t *raw, size_t len);

/*
 * The raw bytes of run `r` of `ix`, verified (hash and records): *raw points
 * into the inline run, or into *owned (malloc, caller frees).
 */
int kvs__mrun_load(const uint8_t **raw, uint8_t **owned, kvs_store *s, const kvs__mapidx *ix,
                   const kvs__mrun *r, const char *what, kvs_map_stats *st);

/* ---- merge ---------------------------------------------------------------- */

/* A source: a sequence of non-overlapping runs of one precedence. */
typedef struct kvs__msrc {
	uint32_t first, n;    /* runs [first, first+n) of the table */
	uint32_t next;        /* next run to load (relative) */
	uint8_t *owned;
	kvs__mcur c;
	uint64_t seq;
	kvs__ment head;
	int has, done;
} kvs__msrc;

typedef struct kvs__mmerge {
	kvs_store *s;
	const kvs__mapidx *ix;
	kvs__msrc *src;
	size_t nsrc;
	uint8_t *lo, *hi;     /* bounds [lo, hi), owned copies; NULL = open */
	size_t lolen, hilen;
	int tombs;            /* also return tombstones */
	const char *what;
	kvs_map_stats *st;
} kvs__mmerge;

/* Set up a merge of every run of ix, newest first (levels 0 then 1), or of
 * level 0 only when `l0_only`. Bounds may be NULL. */
int kvs__mmerge_init(kvs__mmerge *mg, kvs_store *s, const kvs__mapidx *ix, int l0_only,
                     const void *lo, size_t lolen, const void *hi, size_t hilen,
                     const char *what, kvs_map_stats *st);
/* Next entry in name order (versions resolved): 0, KVS_EITER_DONE, error.
 * The entry points into a run held until the next call. */
int kvs__mmerge_next(kvs__mmerge *mg, kvs__ment *e);
void kvs__mmerge_free(kvs__mmerge *mg);

/*
 * Point lookup: the newest entry for `name` across the runs of ix (a
 * tombstone counts: *found = 1, type KVS__MV_TOMB). Fetches only runs whose
 * range covers the name, newest first, and stops at the first hit. The
 * entry's bytes are copied into *val (malloc; NULL if not found).
 */
int kvs__map_lookup(int *found, kvs__ment *e, uint8_t **val, kvs_store *s, const kvs__mapidx *ix,
                    const uint8_t *name, size_t nlen, const char *what, kvs_map_stats *st);

#endif
