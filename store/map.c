/*
 * map.c — key-split maps (docs/design.md "Maps"): batches, reads, the
 * write path and compaction.
 *
 * A map key's index holds a map manifest: a run table (store/maprun.c)
 * listing level-0 delta runs (newest first; small ones inline in the table)
 * and level-1 base runs (sorted, non-overlapping, in segments). A batch is
 * sorted into one delta that does not depend on its base (field versions
 * inside it are 0, meaning "the run's seq"), so a blind batch that loses the
 * commit race is put on top of the new base and committed again, unchanged.
 * Compaction merges the deltas into only the base runs they touch, as an
 * ordinary conditional commit.
 *
 * Segments are created and touched under the rules of design.md "Put"
 * (touch on AlreadyExists, refresh within the touch window before the
 * commit), and the index commit carries a commit id so that a lost response
 * is recognised by re-reading; see map_commit_index.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "commit.h"
#include "maprun.h"
#include "mapjson.h"
#include "refs.h"
#include "base/options.h"

#define MAP_RETRIES 8u

/* ---- batches ---------------------------------------------------------------- */

typedef struct bop {
	uint8_t *name;
	uint32_t nlen;
	uint8_t *val;
	uint32_t vlen;
	kvs__mval type;
	uint64_t ver;        /* expectations: the expected field version (0 = absent) */
	size_t order;
} bop;

struct kvs_map_batch {
	bop *ops;
	size_t n, cap;
	bop *exp;
	size_t nexp, capexp;
};

int kvs_map_batch_new(kvs_map_batch **out)
{
	if (!out)
		return kvs_error_set(KVS_EINVAL, "kvs_map_batch_new: out is NULL");
	if (!(*out = calloc(1, sizeof(**out))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	return 0;
}

void kvs_map_batch_free(kvs_map_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		free(b->ops[i].name);
	for (size_t i = 0; i < b->nexp; i++)
		free(b->exp[i].name);
	free(b->ops);
	free(b->exp);
	free(b);
}

size_t kvs_map_batch_count(const kvs_map_batch *b)
{
	return b ? b->n : 0;
}

static int add_op(bop **ops, size_t *n, size_t *cap, const void *field, size_t flen,
                  const void *val, size_t vlen, kvs__mval type, uint64_t ver)
{
	bop *o;

	if (!field || flen == 0 || flen > KVS_MAP_FIELD_MAX)
		return kvs_error_set(KVS_EINVAL, "map field name of %zu bytes (1..%u)", flen,
		                     KVS_MAP_FIELD_MAX);
	if (vlen > KVS_MAP_VALUE_MAX)
		return kvs_error_set(KVS_EINVAL, "map value of %zu bytes, over %u", vlen, KVS_MAP_VALUE_MAX);
	if (vlen && !val)
		return kvs_error_set(KVS_EINVAL, "map value is NULL");
	if (*n >= KVS_MAP_BATCH_MAX)
		return kvs_error_set(KVS_ETOOBIG, "more than %u operations in one batch",
		                     KVS_MAP_BATCH_MAX);
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		bop *np = realloc(*ops, nc * sizeof(*np));
		if (!np)
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		*ops = np;
		*cap = nc;
	}
	o = &(*ops)[*n];
	memset(o, 0, sizeof(*o));
	/* one allocation: name then value */
	if (!(o->name = malloc(flen + vlen + 1)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	memcpy(o->name, field, flen);
	o->nlen = (uint32_t)flen;
	o->val = o->name + flen;
	if (vlen)
		memcpy(o->val, val, vlen);
	o->vlen = (uint32_t)vlen;
	o->type = type;
	o->ver = ver;
	o->order = *n;
	(*n)++;
	return 0;
}

int kvs_map_batch_put(kvs_map_batch *b, const void *field, size_t flen, const void *val,
                      size_t vlen)
{
	if (!b)
		return kvs_error_set(KVS_EINVAL, "batch is NULL");
	return add_op(&b->ops, &b->n, &b->cap, field, flen, val, vlen, KVS__MV_BIN, 0);
}

int kvs_map_batch_put_json(kvs_map_batch *b, const void *field, size_t flen, const char *json,
                           size_t jlen)
{
	char *compact = NULL;
	size_t clen = 0;
	int rc;

	if (!b)
		return kvs_error_set(KVS_EINVAL, "batch is NULL");
	if ((rc = kvs__json_compact(&compact, &clen, json, jlen)) < 0)
		return rc;
	rc = add_op(&b->ops, &b->n, &b->cap, field, flen, compact, clen, KVS__MV_JSON, 0);
	free(compact);
	return rc;
}

int kvs_map_batch_delete(kvs_map_batch *b, const void *field, size_t flen)
{
	if (!b)
		return kvs_error_set(KVS_EINVAL, "batch is NULL");
	return add_op(&b->ops, &b->n, &b->cap, field, flen, NULL, 0, KVS__MV_TOMB, 0);
}

int kvs_map_batch_expect(kvs_map_batch *b, const void *field, size_t flen, uint64_t fver)
{
	if (!b)
		return kvs_error_set(KVS_EINVAL, "batch is NULL");
	return add_op(&b->exp, &b->nexp, &b->capexp, field, flen, NULL, 0, KVS__MV_TOMB, fver);
}

/* Internal: add an op taking the JSON text as already compact and valid. */
int kvs__map_batch_put_compact_json(kvs_map_batch *b, const void *field, size_t flen,
                                    const char *json, size_t jlen)
{
	return add_op(&b->ops, &b->n, &b->cap, field, flen, json, jlen, KVS__MV_JSON, 0);
}

static int cmp_bop(const void *a, const void *b)
{
	const bop *x = a, *y = b;
	int c = kvs__mname_cmp(x->name, x->nlen, y->name, y->nlen);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* ---- common ----------------------------------------------------------------- */

/*
 * One write (batch, import or compaction) or read in progress. Writes go
 * through the commit layer: segments through the segment writer
 * (segwrite.h: packing, AlreadyExists, the touch window), the index through
 * the commit step (commit.h: compare-and-swap, commit id, the re-read after
 * a lost response, the rebase of a blind write).
 */
typedef struct mw {
	kvs_store *s;
	const char *key;
	size_t klen;
	char iname[KVS__NAME_BUF];
	char what[KVS_KEY_MAX + 32];
	kvs_map_stats st;
	kvs__wstats ws;          /* the write layer's counters, folded into st */
	/* base */
	int has_base;
	char base_rv[KVS_VER_MAX];
	kvs__mapidx base;
	uint32_t base_index_bytes;
	int plain_ok;            /* a plain value as base counts as an empty map (import) */
	/* a base committed late (kvs__index_late) protects nothing: the segments
	 * it references, touched before the next commit attempt (mc_before) */
	uint8_t (*late_segs)[16];
	size_t nlate;
	/* segments this write created or found: runs refer to its slots */
	kvs__segw sw;
	/* the base table this write created (place_basetab), kept across rebases */
	int bt_written;
	uint8_t bt_addr[16];
	uint32_t bt_slot, bt_stored;
} mw;

static void mw_free(mw *w)
{
	kvs__mapidx_clear(&w->base);
	free(w->late_segs);
	w->late_segs = NULL;
	kvs__segw_free(&w->sw);
}

/* Add w's figures to *dst (may be NULL). */
static void mw_stats(kvs_map_stats *dst, const mw *w)
{
	const kvs_map_stats *src = &w->st;

	if (!dst)
		return;
	dst->requests += src->requests + w->ws.requests;
	dst->bytes_written += src->bytes_written + w->ws.bytes_written;
	dst->segments_written += src->segments_written + w->ws.segments_written;
	dst->segments_read += src->segments_read;
	dst->rebases += src->rebases;
	if (src->index_bytes)
		dst->index_bytes = src->index_bytes;
	dst->delta_inline |= src->delta_inline;
	dst->compacted |= src->compacted;
	dst->compact_bytes_written += src->compact_bytes_written;
}

static int mw_init(mw *w, kvs_store *s, const char *key)
{
	int rc;

	memset(w, 0, sizeof(*w));
	if (!s)
		return kvs_error_set(KVS_EINVAL, "store is NULL");
	if ((rc = kvs__key_to_index(w->iname, s, key, &w->klen)) < 0)
		return rc;
	w->s = s;
	w->key = key;
	snprintf(w->what, sizeof(w->what), "map \"%s\"", key);
	kvs__segw_init(&w->sw, s, key, &w->ws);
	return 0;
}

/* Decode index object `idx` as the map of w->key into *ix. */
static int decode_index(mw *w, const kvs_object *idx, kvs__mapidx *ix, uint32_t *mflen)
{
	kvs__manifest m;
	const kvs_blob *b = kvs_object_data(idx, KVS__INDEX_DATA_KEY);
	int rc;

	if ((rc = kvs__index_decode(&m, w->s, idx, w->key, w->klen)) < 0) {
		kvs__manifest_clear(&m);
		return rc;
	}
	if (m.kind != KVS__MF_MAP) {
		kvs__manifest_clear(&m);
		return kvs_error_set(KVS_EINVAL, "key \"%s\" holds a plain value, not a map", w->key);
	}
	rc = kvs__mapidx_read(ix, w->s, &m, w->what, &w->st);
	if (mflen)
		*mflen = b ? (uint32_t)b->len : 0;
	kvs__manifest_clear(&m);
	return rc;
}

/* Take `idx` (NULL = absent) as the base of w. */
static int set_base(mw *w, const kvs_object *idx)
{
	int rc;

	kvs__mapidx_clear(&w->base);
	free(w->late_segs);
	w->late_segs = NULL;
	w->nlate = 0;
	w->base_index_bytes = 0;
	w->has_base = idx != NULL;
	snprintf(w->base_rv, sizeof(w->base_rv), "%s", idx ? idx->resource_version : "");
	if (!idx)
		return 0;
	rc = decode_index(w, idx, &w->base, &w->base_index_bytes);
	if (rc == 0 && kvs__index_late(w->s, idx) &&
	    (rc = kvs__refs_segments(&w->late_segs, &w->nlate, w->s, idx, NULL,
	                             &w->ws.requests)) < 0) {
		free(w->late_segs);
		w->late_segs = NULL;
		w->nlate = 0;
		return rc;
	}
	if (rc == KVS_EINVAL && w->plain_ok) {
		/* a plain value is replaced by the map, like a put replaces a map */
		kvs__mapidx_clear(&w->base);
		rc = 0;
	}
	return rc;
}

/*
 * Read the index as the base (commit.h step 1), checking `ev` as a write
 * conditioned on it does (NULL: none).
 */
static int read_base(mw *w, const char *ev)
{
	kvs__commit c;
	kvs_object *idx = NULL;
	int rc;

	if ((rc = kvs__commit_init(&c, w->s, w->key, ev, &w->ws)) < 0)
		return rc;
	if ((rc = kvs__commit_read_base(&c, &idx)) == 0)
		rc = set_base(w, idx);
	kvs_object_free(idx);
	kvs__commit_clear(&c);
	return rc;
}

/* GET + decode for the readers. */
static int read_map(mw *w, kvs_ver *ver)
{
	int rc = read_base(w, NULL);

	if (rc < 0)
		return rc;
	if (!w->has_base)
		return kvs_error_set(KVS_ENOTFOUND, "key \"%s\" not found", w->key);
	if (ver)
		snprintf(ver->str, sizeof(ver->str), "%s", w->base_rv);
	w->st.index_bytes = w->base_index_bytes;
	return 0;
}

/* The caller's options (may be NULL) read by their version into *o
 * (options.h), then checked. */
static int read_opts(kvs_map_read_options *o, const kvs_map_read_options *opts)
{
	*o = (kvs_map_read_options)KVS_MAP_READ_OPTIONS_INIT;
	return KVS__OPTS(o, opts, map_read);
}

static int write_opts(kvs_map_write_options *o, const kvs_map_write_options *opts)
{
	int rc;

	*o = (kvs_map_write_options)KVS_MAP_WRITE_OPTIONS_INIT;
	if ((rc = KVS__OPTS(o, opts, map_write)) < 0)
		return rc;
	if (o->compact > KVS_MAP_COMPACT_FORCE)
		return kvs_error_set(KVS_EINVAL, "kvs_map_write_options.compact %u is not valid",
		                     o->compact);
	return 0;
}

/* ---- reads ------------------------------------------------------------------ */

int kvs_map_get(void **out, size_t *out_len, uint64_t *out_fver, kvs_ver *out_ver, kvs_store *s,
                const char *key, const void *field, size_t flen, const kvs_map_read_options *opts)
{
	kvs_map_read_options o;
	mw w;
	kvs__ment e;
	uint8_t *val = NULL;
	int rc, found = 0;

	if (!out || !out_len)
		return kvs_error_set(KVS_EINVAL, "kvs_map_get: out is NULL");
	*out = NULL;
	*out_len = 0;
	if ((rc = read_opts(&o, opts)) < 0)
		return rc;
	if (!field || flen == 0 || flen > KVS_MAP_FIELD_MAX)
		return kvs_error_set(KVS_EINVAL, "map field name of %zu bytes (1..%u)", flen,
		                     KVS_MAP_FIELD_MAX);
	if ((rc = mw_init(&w, s, key)) < 0)
		return rc;
	if ((rc = read_map(&w, out_ver)) < 0)
		goto out;
	rc = kvs__map_lookup(&found, &e, &val, s, &w.base, field, flen, w.what, &w.st);
	if (rc == 0 && (!found || e.type == KVS__MV_TOMB)) {
		free(val);
		val = NULL;
		rc = kvs_error_set(KVS_ENOTFOUND, "map \"%s\" has no field \"%.*s\"", key,
		                   (int)(flen > 64 ? 64 : flen), (const char *)field);
	}
	if (rc == 0) {
		*out = val;
		*out_len = e.vlen;
		if (out_fver)
			*out_fver = e.ver;
	}
out:
	mw_stats(o.stats, &w);
	mw_free(&w);
	return rc;
}

struct kvs_map_iter {
	mw w;
	kvs__mmerge mg;
	uint8_t *prefix;
	size_t prefix_len;
	kvs_map_stats *stats;
	int done;
};

int kvs_map_iter_open(kvs_map_iter **out, kvs_ver *out_ver, kvs_store *s, const char *key,
                      const kvs_map_iter_options *opts)
{
	kvs_map_iter_options oo = KVS_MAP_ITER_OPTIONS_INIT;
	const kvs_map_iter_options *o = &oo;
	kvs_map_iter *it;
	const void *lo = NULL, *hi = NULL;
	size_t lolen = 0, hilen = 0;
	int rc;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "kvs_map_iter_open: out is NULL");
	*out = NULL;
	if ((rc = KVS__OPTS(&oo, opts, map_iter)) < 0)
		return rc;
	if (!(it = calloc(1, sizeof(*it))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if ((rc = mw_init(&it->w, s, key)) < 0 || (rc = read_map(&it->w, out_ver)) < 0)
		goto fail;
	{
		if ((o->start && o->start_len > KVS_MAP_FIELD_MAX) ||
		    (o->end && o->end_len > KVS_MAP_FIELD_MAX) ||
		    (o->prefix && o->prefix_len > KVS_MAP_FIELD_MAX)) {
			rc = kvs_error_set(KVS_EINVAL, "iterator bound longer than a field name");
			goto fail;
		}
		lo = o->start;
		lolen = o->start_len;
		hi = o->end;
		hilen = o->end_len;
		it->stats = o->stats;
		if (o->prefix && o->prefix_len) {
			if (!(it->prefix = malloc(o->prefix_len))) {
				rc = kvs_error_set(KVS_ENOMEM, "out of memory");
				goto fail;
			}
			memcpy(it->prefix, o->prefix, o->prefix_len);
			it->prefix_len = o->prefix_len;
			if (!lo || kvs__mname_cmp(lo, lolen, o->prefix, o->prefix_len) < 0) {
				lo = o->prefix;
				lolen = o->prefix_len;
			}
		}
	}
	if ((rc = kvs__mmerge_init(&it->mg, s, &it->w.base, 0, lo, lolen, hi, hilen, it->w.what,
	                           &it->w.st)) < 0)
		goto fail;
	*out = it;
	return 0;
fail:
	mw_stats(o->stats, &it->w);
	kvs__mmerge_free(&it->mg);
	mw_free(&it->w);
	free(it->prefix);
	free(it);
	return rc;
}

int kvs_map_iter_next(kvs_map_entry *out, kvs_map_iter *it)
{
	kvs__ment e;
	int rc;

	if (!out || !it)
		return kvs_error_set(KVS_EINVAL, "kvs_map_iter_next: NULL argument");
	if (it->done)
		return KVS_EITER_DONE;
	rc = kvs__mmerge_next(&it->mg, &e);
	if (rc == 0 && it->prefix &&
	    (e.nlen < it->prefix_len || memcmp(e.name, it->prefix, it->prefix_len) != 0))
		rc = KVS_EITER_DONE;   /* past the prefix: names are in order */
	if (rc < 0) {
		it->done = 1;
		return rc;
	}
	out->field = e.name;
	out->field_len = e.nlen;
	out->value = e.vlen ? (const void *)e.val : (const void *)"";
	out->value_len = e.vlen;
	out->version = e.ver;
	out->is_json = e.type == KVS__MV_JSON;
	return 0;
}

void kvs_map_iter_close(kvs_map_iter *it)
{
	if (!it)
		return;
	if (it->stats)
		mw_stats(it->stats, &it->w);
	kvs__mmerge_free(&it->mg);
	mw_free(&it->w);
	free(it->prefix);
	free(it);
}

int kvs_map_count(uint64_t *out, kvs_ver *out_ver, kvs_store *s, const char *key,
                  const kvs_map_read_options *opts)
{
	kvs_map_iter_options io = KVS_MAP_ITER_OPTIONS_INIT;
	kvs_map_iter *it = NULL;
	kvs_map_entry e;
	uint64_t n = 0;
	int rc;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "kvs_map_count: out is NULL");
	*out = 0;
	kvs_map_read_options o;
	if ((rc = read_opts(&o, opts)) < 0)
		return rc;
	io.stats = o.stats;
	if ((rc = kvs_map_iter_open(&it, out_ver, s, key, &io)) < 0)
		return rc;
	while ((rc = kvs_map_iter_next(&e, it)) == 0)
		n++;
	kvs_map_iter_close(it);
	if (rc != KVS_EITER_DONE)
		return rc;
	*out = n;
	return 0;
}

int kvs_map_stat_key(kvs_map_stat *out, kvs_store *s, const char *key,
                     const kvs_map_stat_options *opts)
{
	kvs_map_stat_options o = KVS_MAP_STAT_OPTIONS_INIT;
	mw w;
	int rc;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "kvs_map_stat_key: out is NULL");
	memset(out, 0, sizeof(*out));
	if ((rc = KVS__OPTS(&o, opts, map_stat)) < 0)
		return rc;
	if ((rc = mw_init(&w, s, key)) < 0)
		return rc;
	if ((rc = read_map(&w, &out->version)) == 0) {
		out->generation = w.base.gen;
		for (uint32_t i = 0; i < w.base.nruns; i++) {
			const kvs__mrun *r = &w.base.runs[i];
			if (r->level == 0) {
				out->delta_runs++;
				out->delta_inline += !!(r->flags & KVS__MRUN_INLINE);
				out->delta_entries += r->nent;
			} else {
				out->base_runs++;
				out->base_entries += r->nent;
			}
			out->raw_bytes += r->raw_len;
			out->stored_bytes += r->stored_len;
		}
		out->segments = w.base.nsegs;
		for (uint32_t i = 0; i < w.base.nsegs; i++)
			out->segment_bytes += w.base.segs[i].bytes;
		out->index_bytes = w.base_index_bytes;
	}
	mw_free(&w);
	return rc;
}

/* ---- segments ----------------------------------------------------------------- */

/* A blob waiting to be packed: one run. */
typedef struct pblob {
	uint8_t addr[16];
	uint8_t *blob;
	uint32_t len;
	kvs__mrun *run;      /* whose seg to set to FRESH_TAG(its slot) */
} pblob;

/*
 * Runs written by this write refer to the segment writer's slot i as
 * FRESH_TAG(i) until assemble() builds the segment table.
 */
#define FRESH_TAG(i) (KVS__MRUN_NOSEG - 1u - (uint32_t)(i))
#define IS_FRESH_TAG(s) ((s) >= KVS__MRUN_NOSEG - 1u - (1u << 20) && (s) != KVS__MRUN_NOSEG)

/*
 * Hand the blobs to the segment writer (packed toward the segment size,
 * created `concurrency` at a time, AlreadyExists settled) and create them
 * all. Consumes the blobs. The same run twice in one segment (identical
 * deltas within one compaction) is one entry.
 */
static int pack_and_create(mw *w, pblob *pb, size_t n)
{
	int rc = 0;

	for (size_t k = 0; k < n && rc == 0; k++) {
		uint32_t slot;
		if (kvs__segw_open_find(&w->sw, pb[k].addr)) {
			free(pb[k].blob);
			pb[k].blob = NULL;
			pb[k].run->seg = FRESH_TAG(w->sw.bslot);
			continue;
		}
		rc = kvs__segw_add(&w->sw, pb[k].addr, pb[k].blob, pb[k].len, &slot);
		pb[k].blob = NULL;
		if (rc == 0)
			pb[k].run->seg = FRESH_TAG(slot);
	}
	if (rc == 0 && (rc = kvs__segw_seal(&w->sw)) == 0)
		rc = kvs__segw_flush(&w->sw);
	for (size_t k = 0; k < n; k++) {
		free(pb[k].blob);
		pb[k].blob = NULL;
	}
	if (rc < 0)
		kvs__segw_discard_open(&w->sw);
	return rc;
}

/* ---- assembling and committing an index ---------------------------------------- */

static int ix_add_run(kvs__mapidx *ix, const kvs__mrun *r)
{
	return kvs__mapidx_append(ix, r, KVS_ETOOBIG);
}

/*
 * Resolve segment references of the runs of `ix` (base segment indices refer
 * to `base`, FRESH_TAG to the writer's slots) into a fresh segment table of
 * only the segments referenced, and mark the slots it references (the
 * writer's refresh touches only those).
 */
static int assemble(mw *w, kvs__mapidx *ix, const kvs__mapidx *base)
{
	size_t nsl = w->sw.nslots;
	uint32_t *bmap = NULL, *fmap = NULL;
	int rc = 0;

	free(ix->segs);
	ix->segs = NULL;
	ix->nsegs = 0;
	for (size_t i = 0; i < nsl; i++)
		w->sw.slots[i].ref = 0;
	bmap = malloc(((size_t)base->nsegs + 1) * sizeof(*bmap));
	fmap = malloc((nsl + 1) * sizeof(*fmap));
	ix->segs = malloc(((size_t)base->nsegs + nsl + 1) * sizeof(*ix->segs));
	if (!bmap || !fmap || !ix->segs) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < base->nsegs; i++)
		bmap[i] = KVS__MRUN_NOSEG;
	for (size_t i = 0; i < nsl; i++)
		fmap[i] = KVS__MRUN_NOSEG;
	/* the base runs' segments first: their indices, which a base table
	 * (format.md §5.5) holds, then depend on the base runs alone */
	for (uint32_t k = 0; k < 2u * ix->nruns; k++) {
		kvs__mrun *r = &ix->runs[k % ix->nruns];
		uint32_t *slot;
		if ((r->flags & KVS__MRUN_INLINE) || (k < ix->nruns) != (r->level == 1))
			continue;
		if (IS_FRESH_TAG(r->seg)) {
			size_t fi = KVS__MRUN_NOSEG - 1u - r->seg;
			kvs__slot *sl = &w->sw.slots[fi];
			if (fi >= nsl || !kvs__slot_fresh(sl)) {
				rc = kvs_error_set(KVS_ERROR, "%s: internal: run in an unwritten segment",
				                   w->what);
				goto out;
			}
			slot = &fmap[fi];
			if (*slot == KVS__MRUN_NOSEG) {
				*slot = ix->nsegs;
				memcpy(ix->segs[ix->nsegs].addr, sl->addr, 16);
				ix->segs[ix->nsegs].bytes = sl->bytes;
				ix->segs[ix->nsegs].nchunks = sl->nchunks;
				ix->nsegs++;
				sl->ref = 1;
			}
		} else {
			if (r->seg >= base->nsegs) {
				rc = kvs_error_set(KVS_ERROR, "%s: internal: base segment %u of %u", w->what,
				                   r->seg, base->nsegs);
				goto out;
			}
			slot = &bmap[r->seg];
			if (*slot == KVS__MRUN_NOSEG) {
				*slot = ix->nsegs;
				ix->segs[ix->nsegs++] = base->segs[r->seg];
			}
		}
		r->seg = *slot;
	}
	ix->capsegs = ix->nsegs;
out:
	free(bmap);
	free(fmap);
	return rc;
}

/*
 * Where the base runs of ix go (format.md §5.5, design.md "Maps"): a base
 * table under the store's minimum stays in the index (format version 2); a
 * larger one is one chunk in a segment of its own, the base's when the
 * table is unchanged (a batch: protected like every segment it reuses from
 * its base), else written here once per write and kept across rebases.
 * Called after assemble(): the base runs' segment indices are final.
 */
static int place_basetab(mw *w, kvs__mapidx *ix)
{
	uint32_t min = w->s->map_basetab_min ? w->s->map_basetab_min : KVS__MAP_BASETAB_MIN;
	kvs__seg_desc d;
	uint8_t *raw = NULL, addr[16];
	uint32_t stored, fresh = KVS__MRUN_NOSEG, si;
	size_t len;
	int rc;

	ix->has_bt = ix->bt_pending = 0;
	memset(&ix->bt, 0, sizeof(ix->bt));
	for (si = 0; si < ix->nruns && ix->runs[si].level != 1; si++)
		;
	if (si == ix->nruns || min == UINT32_MAX || kvs__mapidx_basetab_size(ix) < min)
		return 0;   /* no base, or a small one */
	if ((rc = kvs__mapidx_basetab(&raw, &len, ix)) < 0)
		return rc;
	ix->bt.nruns = kvs__get_be32(raw);
	ix->bt.raw_len = (uint32_t)len;
	kvs__addr_of(addr, raw, len);
	if (w->base.has_bt && memcmp(addr, w->base.bt.addr, 16) == 0) {
		d = w->base.segs[w->base.bt.seg];
		stored = w->base.bt.stored_len;
	} else {
		if (!w->bt_written || memcmp(addr, w->bt_addr, 16) != 0) {
			size_t bound = kvs__blob_bound(len);
			uint8_t *blob = malloc(bound);
			uint32_t slot, blen;
			if (!blob) {
				free(raw);
				return kvs_error_set(KVS_ENOMEM, "out of memory");
			}
			blen = (uint32_t)kvs__blob_encode(blob, bound, raw, len, (int)w->s->opts.lz4_accel);
			if (blen > w->s->seg_cap) {
				/* over a segment (~18,000 base runs): in the index, if it fits */
				free(blob);
				free(raw);
				memset(&ix->bt, 0, sizeof(ix->bt));
				return 0;
			}
			/* the runs were created (pack_and_create): nothing else is
			 * open, so the table is a segment of its own */
			rc = kvs__segw_add(&w->sw, addr, blob, blen, &slot);
			if (rc == 0 && (rc = kvs__segw_seal(&w->sw)) == 0)
				rc = kvs__segw_flush(&w->sw);
			if (rc < 0) {
				kvs__segw_discard_open(&w->sw);
				free(raw);
				return rc;
			}
			w->bt_written = 1;
			memcpy(w->bt_addr, addr, 16);
			w->bt_slot = slot;
			w->bt_stored = blen;
		}
		{
			const kvs__slot *sl = &w->sw.slots[w->bt_slot];
			memcpy(d.addr, sl->addr, 16);
			d.bytes = sl->bytes;
			d.nchunks = sl->nchunks;
		}
		stored = w->bt_stored;
		fresh = w->bt_slot;
	}
	free(raw);
	for (si = 0; si < ix->nsegs; si++)
		if (memcmp(ix->segs[si].addr, d.addr, 16) == 0)
			break;
	if (si == ix->nsegs) {
		kvs__seg_desc *ns = realloc(ix->segs, ((size_t)ix->nsegs + 1) * sizeof(*ns));
		if (!ns)
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		ix->segs = ns;
		ix->segs[ix->nsegs++] = d;
		ix->capsegs = ix->nsegs;
	}
	if (fresh != KVS__MRUN_NOSEG)
		w->sw.slots[fresh].ref = 1;
	ix->has_bt = 1;
	ix->bt.seg = si;
	memcpy(ix->bt.addr, addr, 16);
	ix->bt.stored_len = stored;
	return 0;
}

/*
 * What a commit builds: the new run table on w's current base (runs of the
 * base keep their base segment indices, runs written here FRESH_TAG).
 * Called again on the new base when a blind commit lost the race.
 */
typedef int (*build_fn)(mw *w, void *ctx, kvs__mapidx *ix);

typedef struct mcommit {
	mw *w;
	build_fn build;
	void *ctx;
	kvs__mapidx ix;          /* what the next attempt commits */
	kvs__commit c;
} mcommit;

/* Build, assemble and encode the table; hand the manifest to the commit. */
static int mc_prepare(mcommit *mc)
{
	mw *w = mc->w;
	kvs__manifest m;
	uint8_t *mf = NULL;
	size_t mflen = 0;
	int rc;

	kvs__mapidx_clear(&mc->ix);
	if ((rc = mc->build(w, mc->ctx, &mc->ix)) < 0 || (rc = assemble(w, &mc->ix, &w->base)) < 0)
		return rc;
	if ((rc = place_basetab(w, &mc->ix)) < 0)
		return rc;
	memset(&m, 0, sizeof(m));
	m.key = (char *)w->key;
	m.key_len = w->klen;
	if ((rc = kvs__mapidx_encode(&m, &mc->ix, (int)w->s->opts.lz4_accel)) == 0)
		rc = kvs__manifest_encode(&mf, &mflen, &m, w->s->manifest_max);
	m.key = NULL;
	if (rc == KVS_ETOOBIG)
		rc = kvs_error_set(KVS_ETOOBIG, "%s: the map index does not fit the index object (%s); "
		                   "compact it", w->what, kvs_error_last());
	if (rc == 0)
		kvs__commit_set(&mc->c, mf, mflen, m.length, mc->ix.gen);
	else
		free(mf);
	kvs__manifest_clear(&m);
	return rc;
}

/* Before each attempt: touch what a late base references (once per base),
 * then the touch window (kvs__segw_refresh). */
static int mc_before(void *ctx)
{
	mw *w = ((mcommit *)ctx)->w;
	int rc;

	if (w->nlate) {
		rc = kvs__segw_touch_base(&w->sw, (const uint8_t (*)[16])w->late_segs, w->nlate);
		free(w->late_segs);
		w->late_segs = NULL;
		w->nlate = 0;
		if (rc < 0)
			return rc;
	}
	return kvs__segw_refresh(&w->sw);
}

/* A blind commit lost the race: the new index is the base; build again. */
static int mc_rebase(void *ctx, kvs__commit *c, const kvs_object *idx)
{
	mcommit *mc = ctx;
	int rc;

	(void)c;
	mc->w->st.rebases++;
	if ((rc = kvs__segw_rebase(&mc->w->sw, idx)) < 0 || (rc = set_base(mc->w, idx)) < 0)
		return rc;
	return mc_prepare(mc);
}

/*
 * Commit what `build` makes of w's base, conditioned on `expect` (commit.h:
 * NULL blind, "" create-only, else a version). On success the committed
 * table becomes w's base (for a compaction after a batch).
 */
static int mw_commit(kvs_ver *out, mw *w, const char *expect, build_fn build, void *ctx)
{
	static const kvs__commit_hooks proto = { mc_before, mc_rebase, NULL };
	kvs__commit_hooks h = proto;
	mcommit mc;
	kvs_ver v;
	int rc;

	memset(&mc, 0, sizeof(mc));
	mc.w = w;
	mc.build = build;
	mc.ctx = ctx;
	h.ctx = &mc;
	if ((rc = kvs__commit_init(&mc.c, w->s, w->key, expect, &w->ws)) < 0)
		return rc;
	mc.c.w = &w->sw;
	mc.c.has_base = w->has_base;
	snprintf(mc.c.base_rv, sizeof(mc.c.base_rv), "%s", w->base_rv);
	if ((rc = mc_prepare(&mc)) == 0)
		rc = kvs__commit_run(&v, &mc.c, &h);
	if (rc == 0) {
		w->st.index_bytes = mc.c.payload_len;
		kvs__mapidx_clear(&w->base);
		w->base = mc.ix;
		memset(&mc.ix, 0, sizeof(mc.ix));
		w->has_base = 1;
		snprintf(w->base_rv, sizeof(w->base_rv), "%s", v.str);
		w->base_index_bytes = (uint32_t)mc.c.payload_len;
		if (out)
			*out = v;
	}
	kvs__commit_clear(&mc.c);
	kvs__mapidx_clear(&mc.ix);
	return rc;
}

/* ---- batches: the write path -------------------------------------------------- */

/*
 * The deltas a minor compaction merges (design.md "Compaction"): a prefix of
 * the delta groups, newest first, holding every inline one (so the trigger
 * clears), extended size-tiered (the next group while it is no bigger than
 * what is merged so far, so out-of-line groups grow geometrically and stay
 * about log2(their bytes / the trigger's) in number), and further while
 * more than KVS__MAP_OOL_GROUPS_MAX - 1 out-of-line groups would remain
 * behind. Returns the prefix's run count; *nsrc its groups.
 */
static uint32_t minor_span(const kvs__mapidx *ix, uint32_t *nsrc)
{
	uint32_t nl0 = 0, lastin = 0, end = 0, ng = 0, rest = 0;
	uint64_t acc = 0;

	while (nl0 < ix->nruns && ix->runs[nl0].level == 0) {
		if (ix->runs[nl0].flags & KVS__MRUN_INLINE)
			lastin = nl0 + 1;
		nl0++;
	}
	for (uint32_t i = 0; i < nl0; i++)
		rest += i == 0 || ix->runs[i - 1].seq != ix->runs[i].seq;
	while (end < nl0) {
		uint32_t j = end;
		uint64_t graw = 0;
		while (j < nl0 && ix->runs[j].seq == ix->runs[end].seq)
			graw += ix->runs[j++].raw_len;
		if (ng > 0 && end >= lastin && graw > acc && rest <= KVS__MAP_OOL_GROUPS_MAX - 1)
			break;
		acc += graw;
		ng++;
		rest--;
		end = j;
	}
	*nsrc = ng;
	return end;
}

/*
 * The compaction policy (design.md "Compaction"). It triggers on inline
 * deltas past half the inline budget, more than KVS__MAP_L0_GROUPS_MAX
 * deltas or more than KVS__MAP_OOL_GROUPS_MAX out of line, then picks:
 *  - KVS__MAP_MINOR: merge a prefix of the deltas (minor_span) into one
 *    delta written out of line, the base as it is (cost ~ those deltas'
 *    bytes), when a merge into the base would rewrite more than
 *    KVS__MAP_MINOR_RATIO x the inline deltas' bytes (estimate: stored
 *    bytes of the base runs their ranges overlap, an upper bound);
 *  - KVS__MAP_MAJOR: merge every delta into the base, when that is cheap
 *    or once the deltas' raw bytes reach 1/KVS__MAP_OOL_FRACTION of the
 *    base's (nearly every base run is touched then, and the merge rewrites
 *    about KVS__MAP_OOL_FRACTION x the bytes the deltas gathered).
 */
static int policy_mode(const kvs__mapidx *ix, uint32_t inline_max, int force, int always)
{
	uint64_t raw = 0, l0raw = 0, baseraw = 0, touched = 0;
	uint32_t groups = 0, ogroups = 0, nl0 = 0;

	while (nl0 < ix->nruns && ix->runs[nl0].level == 0)
		nl0++;
	for (uint32_t i = 0; i < nl0; i++) {
		const kvs__mrun *r = &ix->runs[i];
		int ng = i == 0 || ix->runs[i - 1].seq != r->seq;
		groups += ng;
		l0raw += r->raw_len;
		if (r->flags & KVS__MRUN_INLINE)
			raw += r->raw_len;
		else
			ogroups += ng;
	}
	if (force)
		return KVS__MAP_MAJOR;
	if (!(raw > inline_max / 2 || groups > KVS__MAP_L0_GROUPS_MAX ||
	      ogroups > KVS__MAP_OOL_GROUPS_MAX))
		return 0;
	for (uint32_t j = nl0; j < ix->nruns; j++) {
		const kvs__mrun *b = &ix->runs[j];
		baseraw += b->raw_len;
		for (uint32_t i = 0; i < nl0; i++) {
			const kvs__mrun *r = &ix->runs[i];
			if ((r->flags & KVS__MRUN_INLINE) &&
			    kvs__mname_cmp(r->min, r->minlen, b->max, b->maxlen) <= 0 &&
			    kvs__mname_cmp(r->max, r->maxlen, b->min, b->minlen) >= 0) {
				touched += b->stored_len;
				break;
			}
		}
	}
	if (always)
		return l0raw >= baseraw ? KVS__MAP_MAJOR : KVS__MAP_MINOR;
	if (touched <= KVS__MAP_MINOR_RATIO * raw || l0raw * KVS__MAP_OOL_FRACTION >= baseraw)
		return KVS__MAP_MAJOR;
	return KVS__MAP_MINOR;
}

int kvs__map_policy(const kvs__mapidx *ix, uint32_t inline_max)
{
	return policy_mode(ix, inline_max, 0, 0);
}

static uint64_t inline_raw(const kvs__mapidx *ix)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < ix->nruns; i++)
		if (ix->runs[i].flags & KVS__MRUN_INLINE)
			n += ix->runs[i].raw_len;
	return n;
}

/* Runs under construction: raw bytes + description. */
typedef struct runs {
	kvs__mrun *r;
	size_t n, cap;
} runs;

static void runs_free(runs *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		kvs__mrun_clear(&rs->r[i]);
	free(rs->r);
	memset(rs, 0, sizeof(*rs));
}

/* Close the builder's records as one run (raw kept in r->raw) at `level`. */
static int runs_emit(runs *rs, kvs__mbuild *b, uint8_t level)
{
	kvs__mrun *r;
	int rc;

	if (b->n == 0)
		return 0;
	if (rs->n == rs->cap) {
		size_t nc = rs->cap ? rs->cap * 2 : 8;
		kvs__mrun *np = realloc(rs->r, nc * sizeof(*np));
		if (!np)
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		rs->r = np;
		rs->cap = nc;
	}
	r = &rs->r[rs->n];
	memset(r, 0, sizeof(*r));
	if ((rc = kvs__mrun_describe(r, (const uint8_t *)b->sb.data, b->sb.size)) < 0 ||
	    !(r->raw = malloc(b->sb.size))) {
		kvs__mrun_clear(r);
		return rc < 0 ? rc : kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	memcpy(r->raw, b->sb.data, b->sb.size);
	r->level = level;
	r->seg = KVS__MRUN_NOSEG;
	rs->n++;
	kvs__mbuild_reset(b);
	return 0;
}

/* Add one entry, cutting a run at the target size. */
static int runs_add(runs *rs, kvs__mbuild *b, const kvs__ment *e, uint8_t level, uint32_t target)
{
	int rc;

	if (b->n && b->sb.size + kvs__mrec_size(e) > target && (rc = runs_emit(rs, b, level)) < 0)
		return rc;
	return kvs__mbuild_add(b, e);
}

/* Compress runs [from, n) of rs into pblobs (run pointers into rs), on the
 * store's worker threads. */
static int runs_blobs(pblob **out, runs *rs, size_t from, kvs_store *s)
{
	size_t n = rs->n - from;
	kvs__bjob *jb;
	pblob *pb;
	int rc;

	*out = NULL;
	if (!(pb = calloc(n ? n : 1, sizeof(*pb))) || !(jb = calloc(n ? n : 1, sizeof(*jb)))) {
		free(pb);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		jb[i].p = rs->r[from + i].raw;
		jb[i].len = rs->r[from + i].raw_len;
	}
	rc = kvs__blob_encode_all(jb, n, s->workers, (int)s->opts.lz4_accel);
	for (size_t i = 0; i < n; i++) {
		kvs__mrun *r = &rs->r[from + i];
		pb[i].blob = jb[i].blob;
		pb[i].len = jb[i].blen;
		memcpy(pb[i].addr, r->addr, 16);
		pb[i].run = r;
		r->stored_len = pb[i].len;
	}
	free(jb);
	if (rc < 0) {
		for (size_t i = 0; i < n; i++)
			free(pb[i].blob);
		free(pb);
		return rc;
	}
	*out = pb;
	return 0;
}

/* Compress every run of rs and create them in the writer's segments (each
 * run's `seg` then names its fresh slot). */
static int create_runs(mw *w, runs *rs)
{
	pblob *pb = NULL;
	int rc;

	if (!rs->n)
		return 0;
	if ((rc = runs_blobs(&pb, rs, 0, w->s)) < 0)
		return rc;
	rc = pack_and_create(w, pb, rs->n);
	free(pb);
	return rc;
}

static int check_expectations(mw *w, const kvs_map_batch *b)
{
	for (size_t i = 0; i < b->nexp; i++) {
		const bop *x = &b->exp[i];
		kvs__ment e;
		uint8_t *val = NULL;
		int found = 0, rc;
		rc = kvs__map_lookup(&found, &e, &val, w->s, &w->base, x->name, x->nlen, w->what, &w->st);
		free(val);
		if (rc < 0)
			return rc;
		if (found && e.type == KVS__MV_TOMB)
			found = 0;
		if (x->ver == 0 && found)
			return kvs_error_set(KVS_ECONFLICT, "%s: field \"%.*s\" exists (at %llu), expected "
			                     "absent", w->what, (int)(x->nlen > 64 ? 64 : x->nlen),
			                     (const char *)x->name, (unsigned long long)e.ver);
		if (x->ver && (!found || e.ver != x->ver))
			return kvs_error_set(KVS_ECONFLICT, "%s: field \"%.*s\" is %s%llu, expected %llu",
			                     w->what, (int)(x->nlen > 64 ? 64 : x->nlen),
			                     (const char *)x->name, found ? "at " : "absent",
			                     found ? (unsigned long long)e.ver : 0ull,
			                     (unsigned long long)x->ver);
	}
	return 0;
}

static int compact_key(kvs_ver *out, mw *w, int force, int blind);

/*
 * The batch's delta: ops sorted by name, the last op on a name winning,
 * cut into runs of the target size (records carry version 0: "this run's
 * seq", so the bytes do not depend on the base).
 */
static int build_delta(runs *rs, const kvs_map_batch *b, uint32_t target)
{
	kvs__mbuild mb;
	bop *ops;
	int rc = 0;

	if (b->n == 0)
		return 0;
	if (!(ops = malloc(b->n * sizeof(*ops))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	memcpy(ops, b->ops, b->n * sizeof(*ops));
	if (b->n > 1)
		qsort(ops, b->n, sizeof(*ops), cmp_bop);
	kvs__mbuild_init(&mb);
	for (size_t i = 0; i < b->n && rc == 0; i++) {
		kvs__ment e;
		if (i + 1 < b->n && kvs__mname_cmp(ops[i].name, ops[i].nlen, ops[i + 1].name,
		                                   ops[i + 1].nlen) == 0)
			continue;   /* a later op on the same field wins */
		e.name = ops[i].name;
		e.nlen = ops[i].nlen;
		e.val = ops[i].val;
		e.vlen = ops[i].vlen;
		e.type = ops[i].type;
		e.ver = 0;
		rc = runs_add(rs, &mb, &e, 0, target);
	}
	if (rc == 0)
		rc = runs_emit(rs, &mb, 0);
	kvs__mbuild_free(&mb);
	free(ops);
	return rc;
}

/*
 * The new table of a batch: its delta (inline if it fits the budget, else
 * in segments created once and kept across rebases) followed by the base's
 * runs. Per-field expectations are checked against each base it is built
 * on; a blind batch that lost the race is built again on the new base.
 */
typedef struct delta_ctx {
	runs *rs;
	const kvs_map_batch *b;
	int ool;                 /* the delta's runs are in segments already */
} delta_ctx;

static int build_delta_ix(mw *w, void *ctx, kvs__mapidx *ix)
{
	delta_ctx *d = ctx;
	runs *rs = d->rs;
	uint64_t draw = 0;
	int rc, inl;

	if (d->b && (rc = check_expectations(w, d->b)) < 0)
		return rc;
	for (size_t i = 0; i < rs->n; i++)
		draw += rs->r[i].raw_len;
	inl = !d->ool && draw + inline_raw(&w->base) <= w->s->map_inline_max;
	if (!inl && !d->ool) {
		if ((rc = create_runs(w, rs)) < 0)
			return rc;
		d->ool = 1;
	}
	ix->gen = w->base.gen + 1;
	for (size_t i = 0; i < rs->n; i++) {
		kvs__mrun r = rs->r[i];
		r.seq = ix->gen;
		if (inl) {
			r.flags = KVS__MRUN_INLINE;
			r.seg = KVS__MRUN_NOSEG;
			r.stored_len = r.raw_len;
		} else {
			r.flags = 0;
			r.raw = NULL;
		}
		if ((rc = ix_add_run(ix, &r)) < 0)
			return rc;
	}
	for (uint32_t i = 0; i < w->base.nruns; i++)
		if ((rc = ix_add_run(ix, &w->base.runs[i])) < 0)
			return rc;
	w->st.delta_inline = inl;
	return 0;
}

/* Auto-compaction after a successful write: best effort. */
static void after_write(mw *w, kvs_ver *out, unsigned compact)
{
	kvs_ver v;
	int rc;

	if (compact == KVS_MAP_COMPACT_NEVER ||
	    !policy_mode(&w->base, w->s->map_inline_max, 0, w->s->map_minor_always))
		return;
	rc = compact_key(&v, w, 0, 0);
	if (rc == 0 && w->st.compacted && out)
		*out = v;
	/* a failed compaction changes nothing: the batch stands */
}

int kvs_map_commit(kvs_ver *out, kvs_store *s, const char *key, const kvs_map_batch *b,
                   const kvs_map_write_options *opts)
{
	kvs_map_write_options o;
	const char *ev;
	runs rs = { 0 };
	delta_ctx dc;
	kvs_ver v;
	mw w;
	int rc;

	if (!b)
		return kvs_error_set(KVS_EINVAL, "kvs_map_commit: batch is NULL");
	if ((rc = write_opts(&o, opts)) < 0 || (rc = mw_init(&w, s, key)) < 0)
		return rc;
	ev = o.expect_version;
	if ((rc = build_delta(&rs, b, s->map_run_target)) < 0)
		goto out;
	if ((rc = read_base(&w, ev)) < 0)
		goto out;
	if (rs.n == 0) {
		/* nothing to write: succeed at the current version if expectations hold */
		if ((rc = check_expectations(&w, b)) == 0 && out)
			snprintf(out->str, sizeof(out->str), "%s", w.base_rv);
		goto out;
	}
	dc.rs = &rs;
	dc.b = b;
	dc.ool = 0;
	if ((rc = mw_commit(&v, &w, ev, build_delta_ix, &dc)) < 0)
		goto out;
	if (out)
		*out = v;
	after_write(&w, out, o.compact);
out:
	mw_stats(o.stats, &w);
	runs_free(&rs);
	mw_free(&w);
	return rc;
}

/* ---- import: a whole map from sorted entries ------------------------------------ */

/*
 * The table of an import: every run a base run, cut from the sorted
 * entries at the run target, with field versions 0 ("the run's seq"), so a
 * run's bytes depend on its entries alone. A run the base already holds,
 * out of line at level 1 under the same address, is reused where it is
 * (its seq, so its fields' versions, stay those of the commit that wrote
 * it): importing the JSON a map already holds, or one that differs in a few
 * places, compresses and sends only the runs that changed, as a put of an
 * opaque value reuses its base's chunks. The base's segments are protected
 * by the commit's precondition on that base; a blind rebase builds again on
 * the new one, writing what it no longer holds.
 */
/*
 * An import's runs are cut ahead of building (kvs__mrec_len is the exact
 * record size, so the cuts are those runs_add makes), and each run is then
 * built, described (its address), looked up among the base's runs and, if
 * new, compressed on the store's worker threads: one pass over the
 * document's bytes after validation, and the raw run lives only while its
 * worker holds it (it is built again if a later attempt needs it).
 */
typedef struct ijob {
	uint8_t *blob;           /* compressed, until handed to the segment writer */
	uint32_t blen;
	const kvs__mrun *reuse;  /* the base run with its address, this attempt */
	int described;           /* im->rs.r[i] describes the run */
	int rc;                  /* a worker's failure (its detail is on its thread) */
} ijob;

typedef struct import_ctx {
	const kvs__ment *ents;
	size_t n;
	runs rs;                 /* the runs; seg FRESH_TAG once written */
	size_t *from;            /* run i holds ents [from[i], from[i+1]) */
	ijob *jobs;
	int planned;
	/* the attempt under way, read by the workers */
	const kvs__mrun **have;  /* the base's out-of-line base runs, by address */
	size_t nhave;
	kvs_store *s;
	size_t next;             /* atomic: the next run to take */
} import_ctx;

static int cmp_run_addr(const void *a, const void *b)
{
	const kvs__mrun *x = *(const kvs__mrun *const *)a, *y = *(const kvs__mrun *const *)b;
	return memcmp(x->addr, y->addr, 16);
}

/* Cut the entries into runs as runs_add would (target raw bytes each). */
static int import_plan(import_ctx *im, uint32_t target)
{
	size_t nr = 0, cur = 0, cap = 16;

	if (!(im->from = malloc(cap * sizeof(*im->from))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	for (size_t i = 0; i < im->n; i++) {
		kvs__ment e = im->ents[i];
		size_t len;
		e.ver = 0;
		len = kvs__mrec_len(&e);
		if (i == 0 || cur + kvs__mrec_size(&e) > target) {
			if (nr + 2 > cap) {
				size_t *np = realloc(im->from, cap * 2 * sizeof(*np));
				if (!np)
					return kvs_error_set(KVS_ENOMEM, "out of memory");
				im->from = np;
				cap *= 2;
			}
			im->from[nr++] = i;
			cur = 0;
		}
		cur += len;
	}
	im->from[nr] = im->n;
	if (nr > KVS__MAP_RUNS_MAX)
		return kvs_error_set(KVS_ETOOBIG, "map of more than %u runs", KVS__MAP_RUNS_MAX);
	if (!(im->rs.r = calloc(nr ? nr : 1, sizeof(*im->rs.r))) ||
	    !(im->jobs = calloc(nr ? nr : 1, sizeof(*im->jobs))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	im->rs.n = im->rs.cap = nr;
	for (size_t i = 0; i < nr; i++)
		im->rs.r[i].seg = KVS__MRUN_NOSEG;
	im->planned = 1;
	return 0;
}

/* Build run i's raw records (version 0) into *raw. */
static int import_build(uint8_t **raw, size_t *len, const import_ctx *im, size_t i)
{
	kvs__mbuild mb;
	size_t need = 0;
	int rc = 0;

	for (size_t k = im->from[i]; k < im->from[i + 1]; k++) {
		kvs__ment e = im->ents[k];
		e.ver = 0;
		need += kvs__mrec_len(&e);
	}
	if ((rc = kvs__mbuild_init_cap(&mb, need)) < 0)
		return rc;
	for (size_t k = im->from[i]; k < im->from[i + 1] && rc == 0; k++) {
		kvs__ment e = im->ents[k];
		e.ver = 0;
		rc = kvs__mbuild_add(&mb, &e);
	}
	if (rc == 0 && mb.sb.size != need)
		rc = KVS_ERROR;   /* kvs__mrec_len disagrees with msgpack-c */
	*raw = kvs__mbuild_take(&mb, len);
	if (rc < 0 || !*raw) {
		free(*raw);
		*raw = NULL;
		return rc < 0 ? rc : KVS_ENOMEM;
	}
	return 0;
}

/* One run of this attempt: describe, look up, compress if new. */
static int import_one(import_ctx *im, size_t i)
{
	kvs__mrun *r = &im->rs.r[i], *kp = r;
	ijob *j = &im->jobs[i];
	const kvs__mrun **hit;
	uint8_t *raw = NULL;
	size_t len = 0, bound;
	int rc;

	if (!j->described) {
		if ((rc = import_build(&raw, &len, im, i)) < 0)
			return rc;
		if ((rc = kvs__mrun_describe(r, raw, len)) < 0) {
			free(raw);
			return rc;
		}
		r->level = 1;
		j->described = 1;
	}
	hit = im->nhave ? bsearch(&kp, im->have, im->nhave, sizeof(*im->have), cmp_run_addr) : NULL;
	j->reuse = hit && (*hit)->raw_len == r->raw_len && (*hit)->nent == r->nent ? *hit : NULL;
	if (!j->reuse && !IS_FRESH_TAG(r->seg) && !j->blob) {
		if (!raw && (rc = import_build(&raw, &len, im, i)) < 0)
			return rc;
		bound = kvs__blob_bound(len);
		if (!(j->blob = malloc(bound))) {
			free(raw);
			return KVS_ENOMEM;
		}
		j->blen = (uint32_t)kvs__blob_encode(j->blob, bound, raw, len, (int)im->s->opts.lz4_accel);
		if (j->blen < bound / 2) {   /* give back what lz4 did not need */
			uint8_t *sh = realloc(j->blob, j->blen);
			if (sh)
				j->blob = sh;
		}
	}
	free(raw);
	return 0;
}

static void *import_worker(void *arg)
{
	import_ctx *im = arg;

	for (;;) {
		size_t i = __atomic_fetch_add(&im->next, 1, __ATOMIC_RELAXED);
		if (i >= im->rs.n)
			return NULL;
		im->jobs[i].rc = import_one(im, i);
	}
}

/* Every run of this attempt, on up to the store's `workers` threads. */
static int import_runs(import_ctx *im)
{
	pthread_t th[KVS__MAX_WORKERS];
	size_t nt = 0, want = im->s->workers;

	if (want > im->rs.n)
		want = im->rs.n ? im->rs.n : 1;
	im->next = 0;
	for (; nt + 1 < want && nt < KVS__MAX_WORKERS; nt++)
		if (pthread_create(&th[nt], NULL, import_worker, im) != 0)
			break;
	import_worker(im);
	for (size_t i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	for (size_t i = 0; i < im->rs.n; i++) {
		int rc = im->jobs[i].rc;
		if (rc == KVS_ENOMEM)
			return kvs_error_set(rc, "out of memory building map runs");
		if (rc < 0)
			return kvs_error_set(rc, "map import: run %zu of %zu: %s", i, im->rs.n,
			                     rc == KVS_ERROR ? "internal: record sizes disagree"
			                                     : kvs_strerror(rc));
	}
	return 0;
}

static int build_import_ix(mw *w, void *ctx, kvs__mapidx *ix)
{
	import_ctx *im = ctx;
	size_t nwrite = 0;
	pblob *pb = NULL;
	int rc = 0;

	if (!im->planned && (rc = import_plan(im, w->s->map_run_target)) < 0)
		return rc;
	free(im->have);
	im->nhave = 0;
	im->s = w->s;
	if (!(im->have = malloc(((size_t)w->base.nruns + 1) * sizeof(*im->have))) ||
	    !(pb = calloc(im->rs.n + 1, sizeof(*pb))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	for (uint32_t i = 0; i < w->base.nruns; i++)
		if (w->base.runs[i].level == 1 && !(w->base.runs[i].flags & KVS__MRUN_INLINE))
			im->have[im->nhave++] = &w->base.runs[i];
	if (im->nhave > 1)
		qsort(im->have, im->nhave, sizeof(*im->have), cmp_run_addr);
	if ((rc = import_runs(im)) < 0)
		goto out;
	for (size_t i = 0; i < im->rs.n; i++) {
		ijob *j = &im->jobs[i];
		if (j->reuse || IS_FRESH_TAG(im->rs.r[i].seg))
			continue;   /* in the base, or written by an earlier attempt */
		memcpy(pb[nwrite].addr, im->rs.r[i].addr, 16);
		pb[nwrite].run = &im->rs.r[i];
		pb[nwrite].blob = j->blob;
		pb[nwrite].len = j->blen;
		im->rs.r[i].stored_len = j->blen;
		j->blob = NULL;   /* the segment writer's now */
		nwrite++;
	}
	if (nwrite && (rc = pack_and_create(w, pb, nwrite)) < 0)
		goto out;
	ix->gen = w->base.gen + 1;
	for (size_t i = 0; i < im->rs.n && rc == 0; i++) {
		kvs__mrun r;
		if (im->jobs[i].reuse) {
			rc = ix_add_run(ix, im->jobs[i].reuse);
			continue;
		}
		r = im->rs.r[i];
		r.raw = NULL;
		r.flags = 0;
		r.level = 1;
		r.seq = ix->gen;
		rc = ix_add_run(ix, &r);
	}
out:
	free(pb);
	return rc;
}

static void import_free(import_ctx *im)
{
	for (size_t i = 0; im->jobs && i < im->rs.n; i++)
		free(im->jobs[i].blob);
	free(im->jobs);
	free(im->from);
	free(im->have);
	runs_free(&im->rs);
}

/* Replace the map with sorted, distinct entries (import). */
int kvs__map_replace(kvs_ver *out, kvs_store *s, const char *key, const kvs__ment *ents,
                     size_t n, const kvs_map_write_options *opts)
{
	kvs_map_write_options o;
	const char *ev;
	import_ctx im;
	mw w;
	int rc;

	memset(&im, 0, sizeof(im));
	im.ents = ents;
	im.n = n;
	if ((rc = write_opts(&o, opts)) < 0 || (rc = mw_init(&w, s, key)) < 0)
		return rc;
	ev = o.expect_version;
	w.plain_ok = 1;
	if ((rc = read_base(&w, ev)) == 0)
		rc = mw_commit(out, &w, ev, build_import_ix, &im);
	mw_stats(o.stats, &w);
	import_free(&im);
	mw_free(&w);
	return rc;
}

/* ---- compaction -------------------------------------------------------------- */

/* The level-0 entries, newest winning, copied (they outlive their runs). */
typedef struct ents {
	kvs__ment *e;
	size_t n, cap;
	uint8_t **bufs;
	size_t nbufs, capbufs;
} ents;

static void ents_free(ents *es)
{
	for (size_t i = 0; i < es->nbufs; i++)
		free(es->bufs[i]);
	free(es->bufs);
	free(es->e);
	memset(es, 0, sizeof(*es));
}

static int ents_add(ents *es, const kvs__ment *e)
{
	uint8_t *p;

	if (es->n == es->cap) {
		size_t nc = es->cap ? es->cap * 2 : 64;
		kvs__ment *np = realloc(es->e, nc * sizeof(*np));
		if (!np)
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		es->e = np;
		es->cap = nc;
	}
	if (es->nbufs == es->capbufs) {
		size_t nc = es->capbufs ? es->capbufs * 2 : 64;
		uint8_t **np = realloc(es->bufs, nc * sizeof(*np));
		if (!np)
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		es->bufs = np;
		es->capbufs = nc;
	}
	if (!(p = malloc((size_t)e->nlen + e->vlen + 1)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	es->bufs[es->nbufs++] = p;
	memcpy(p, e->name, e->nlen);
	if (e->vlen)
		memcpy(p + e->nlen, e->val, e->vlen);
	es->e[es->n] = *e;
	es->e[es->n].name = p;
	es->e[es->n].val = p + e->nlen;
	es->n++;
	return 0;
}

/*
 * Merge run `r` of the base (may be NULL: no base run) with the level-0
 * entries d[0..nd) (all of which belong to its range), newest winning,
 * tombstones dropped, into rs as base runs.
 */
static int merge_group(mw *w, runs *rs, kvs__mbuild *mb, const kvs__mrun *r, const kvs__ment *d,
                       size_t nd)
{
	const uint8_t *raw = NULL;
	uint8_t *owned = NULL;
	kvs__mcur c = { 0 };
	kvs__ment be;
	int rc = 0, hb = 0;
	size_t i = 0;

	if (r) {
		if ((rc = kvs__mrun_load(&raw, &owned, w->s, &w->base, r, w->what, &w->st)) < 0)
			return rc;
		c.p = raw;
		c.n = r->raw_len;
	}
	for (;;) {
		const kvs__ment *pick;
		int cmp;
		if (r && !hb) {
			rc = kvs__mcur_next(&c, &be);
			if (rc == 0) {
				hb = 1;
				if (be.ver == 0)
					be.ver = r->seq;
			} else if (rc != KVS_EITER_DONE) {
				rc = kvs_error_set(KVS_ECORRUPT, "%s: malformed run", w->what);
				break;
			} else {
				r = NULL;
				rc = 0;
			}
		}
		if (!hb && i >= nd)
			break;
		if (hb && i < nd)
			cmp = kvs__mname_cmp(be.name, be.nlen, d[i].name, d[i].nlen);
		else
			cmp = hb ? -1 : 1;
		if (cmp < 0) {
			pick = &be;
			hb = 0;
		} else {
			pick = &d[i++];
			if (cmp == 0)
				hb = 0;
		}
		if (pick->type == KVS__MV_TOMB)
			continue;
		if ((rc = runs_add(rs, mb, pick, 1, w->s->map_run_target)) < 0)
			break;
	}
	free(owned);
	return rc;
}

/* Add an unchanged raw run (already verified) to rs. */
static int runs_add_raw(runs *rs, const uint8_t *raw, uint32_t len, uint8_t level)
{
	kvs__mbuild mb;
	int rc;

	kvs__mbuild_init(&mb);
	if (msgpack_sbuffer_write(&mb.sb, (const char *)raw, len) != 0) {
		kvs__mbuild_free(&mb);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	mb.n = 1;
	rc = runs_emit(rs, &mb, level);
	kvs__mbuild_free(&mb);
	return rc;
}

static int owner_set(uint32_t **owner, size_t *cap, size_t from, size_t to, uint32_t j)
{
	if (to > *cap) {
		size_t nc = *cap ? *cap : 16;
		uint32_t *np;
		while (nc < to)
			nc *= 2;
		if (!(np = realloc(*owner, nc * sizeof(*np))))
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		*owner = np;
		*cap = nc;
	}
	for (size_t k = from; k < to; k++)
		(*owner)[k] = j;
	return 0;
}

/*
 * One compaction attempt on w's base: merge every level-0 delta into only
 * the base runs whose ranges they touch (a field between two runs goes to
 * the run before it; one before the first run to the first), keep the
 * others by reference, copy the kept runs of segments that would be left
 * less than half live, and commit at the base version.
 */
/* The compaction's table, built once before the commit (never blind). */
static int build_copy(mw *w, void *ctx, kvs__mapidx *ix)
{
	const kvs__mapidx *src = ctx;
	int rc;

	(void)w;
	ix->gen = src->gen;
	for (uint32_t i = 0; i < src->nruns; i++)
		if ((rc = ix_add_run(ix, &src->runs[i])) < 0)
			return rc;
	return 0;
}

/* Commit a compaction's index, conditioned on the base it merged (a
 * compaction is never blind), and count what it wrote since `before`. */
static int compact_commit(kvs_ver *out, mw *w, kvs__mapidx *ix, uint64_t before)
{
	char expect[KVS_VER_MAX];
	int rc;

	snprintf(expect, sizeof(expect), "%s", w->base_rv);
	rc = mw_commit(out, w, w->has_base ? expect : "", build_copy, ix);
	if (rc == 0) {
		w->st.compacted = 1;
		w->st.compact_bytes_written += w->ws.bytes_written - before;
	}
	return rc;
}

static int compact_once(kvs_ver *out, mw *w)
{
	kvs__mmerge mg;
	kvs__mbuild mb;
	kvs__mapidx ix;
	ents es = { 0 };
	runs rs = { 0 };
	uint8_t *keep = NULL;
	uint32_t *owner = NULL;
	size_t capowner = 0, di = 0;
	uint64_t *live = NULL, before = w->ws.bytes_written;
	uint32_t first_l1 = 0, nl1, ngroups;
	kvs__ment e;
	int rc;

	memset(&ix, 0, sizeof(ix));
	memset(&mg, 0, sizeof(mg));
	kvs__mbuild_init(&mb);
	while (first_l1 < w->base.nruns && w->base.runs[first_l1].level == 0)
		first_l1++;
	nl1 = w->base.nruns - first_l1;
	ngroups = nl1 ? nl1 : 1;
	ix.gen = w->base.gen + 1;
	if ((rc = kvs__mmerge_init(&mg, w->s, &w->base, 1, NULL, 0, NULL, 0, w->what, &w->st)) < 0)
		goto out;
	mg.tombs = 1;
	while ((rc = kvs__mmerge_next(&mg, &e)) == 0)
		if ((rc = ents_add(&es, &e)) < 0)
			break;
	if (rc != KVS_EITER_DONE)
		goto out;
	rc = 0;
	if (!(keep = calloc(ngroups, 1)) || !(live = calloc(w->base.nsegs + 1, sizeof(*live)))) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto out;
	}
	/* Merge each touched group; mark the untouched base runs kept. */
	for (uint32_t j = 0; j < ngroups; j++) {
		const kvs__mrun *r = nl1 ? &w->base.runs[first_l1 + j] : NULL;
		const kvs__mrun *nx = j + 1 < nl1 ? r + 1 : NULL;
		size_t d0 = di, n0 = rs.n;
		while (di < es.n && (!nx || kvs__mname_cmp(es.e[di].name, es.e[di].nlen, nx->min,
		                                           nx->minlen) < 0))
			di++;
		if (di == d0) {
			keep[j] = 1;
			continue;
		}
		if ((rc = merge_group(w, &rs, &mb, r, es.e + d0, di - d0)) < 0 ||
		    (rc = runs_emit(&rs, &mb, 1)) < 0 ||
		    (rc = owner_set(&owner, &capowner, n0, rs.n, j)) < 0)
			goto out;
		for (size_t k = n0; k < rs.n; k++)
			rs.r[k].seq = ix.gen;
	}
	/* Space: a kept run whose segment would be left less than half live is
	 * copied (as verified raw bytes) into the new segments. */
	for (uint32_t j = 0; j < nl1; j++)
		if (keep[j])
			live[w->base.runs[first_l1 + j].seg] += w->base.runs[first_l1 + j].stored_len;
	for (uint32_t j = 0; j < nl1; j++) {
		const kvs__mrun *r = &w->base.runs[first_l1 + j];
		const uint8_t *raw;
		uint8_t *owned = NULL;
		size_t n0 = rs.n;
		if (!keep[j] || live[r->seg] * 2 >= w->base.segs[r->seg].bytes)
			continue;
		if ((rc = kvs__mrun_load(&raw, &owned, w->s, &w->base, r, w->what, &w->st)) < 0)
			goto out;
		rc = runs_add_raw(&rs, raw, r->raw_len, 1);
		free(owned);
		if (rc < 0 || (rc = owner_set(&owner, &capowner, n0, rs.n, j)) < 0)
			goto out;
		rs.r[n0].seq = r->seq;
		keep[j] = 0;
	}
	if ((rc = create_runs(w, &rs)) < 0)
		goto out;
	/* The new base, in key order: kept runs, and each group's new runs. */
	for (uint32_t j = 0; j < ngroups && rc == 0; j++) {
		if (nl1 && keep[j]) {
			rc = ix_add_run(&ix, &w->base.runs[first_l1 + j]);
			continue;
		}
		for (size_t k = 0; k < rs.n && rc == 0; k++) {
			kvs__mrun r;
			if (owner[k] != j)
				continue;
			r = rs.r[k];
			r.raw = NULL;
			r.flags = 0;
			r.level = 1;
			rc = ix_add_run(&ix, &r);
		}
	}
	if (rc < 0)
		goto out;
	rc = compact_commit(out, w, &ix, before);
out:
	kvs__mmerge_free(&mg);
	kvs__mbuild_free(&mb);
	ents_free(&es);
	runs_free(&rs);
	free(keep);
	free(live);
	free(owner);
	kvs__mapidx_clear(&ix);
	return rc;
}

/*
 * A minor compaction (design.md "Compaction"): merge the deltas of
 * minor_span into one delta of
 * sorted, non-overlapping runs written out of line, tombstones and field
 * versions kept (records carry their versions, so the new seq changes
 * nothing), and keep every other run by reference.
 */
static int compact_minor(kvs_ver *out, mw *w)
{
	kvs__mmerge mg;
	kvs__mbuild mb;
	kvs__mapidx ix;
	runs rs = { 0 };
	uint64_t before = w->ws.bytes_written;
	uint32_t pend, nsrc;
	kvs__ment e;
	int rc;

	memset(&ix, 0, sizeof(ix));
	memset(&mg, 0, sizeof(mg));
	kvs__mbuild_init(&mb);
	pend = minor_span(&w->base, &nsrc);
	ix.gen = w->base.gen + 1;
	if ((rc = kvs__mmerge_init(&mg, w->s, &w->base, 1, NULL, 0, NULL, 0, w->what, &w->st)) < 0)
		goto out;
	if (nsrc > mg.nsrc) {
		rc = kvs_error_set(KVS_ERROR, "%s: minor compaction: bad delta count", w->what);
		goto out;
	}
	mg.nsrc = nsrc;   /* the sources are the deltas in table order */
	mg.tombs = 1;
	while ((rc = kvs__mmerge_next(&mg, &e)) == 0)
		if ((rc = runs_add(&rs, &mb, &e, 0, w->s->map_run_target)) < 0)
			break;
	if (rc != KVS_EITER_DONE)
		goto out;
	if ((rc = runs_emit(&rs, &mb, 0)) < 0)
		goto out;
	if ((rc = create_runs(w, &rs)) < 0)
		goto out;
	for (size_t k = 0; k < rs.n && rc == 0; k++) {
		kvs__mrun r = rs.r[k];
		r.raw = NULL;
		r.flags = 0;
		r.level = 0;
		r.seq = ix.gen;
		rc = ix_add_run(&ix, &r);
	}
	for (uint32_t i = pend; i < w->base.nruns && rc == 0; i++)
		rc = ix_add_run(&ix, &w->base.runs[i]);
	if (rc < 0)
		goto out;
	if ((rc = compact_commit(out, w, &ix, before)) == 0)
		w->s->map_minors++;
out:
	kvs__mmerge_free(&mg);
	kvs__mbuild_free(&mb);
	runs_free(&rs);
	kvs__mapidx_clear(&ix);
	return rc;
}

static int compact_key(kvs_ver *out, mw *w, int force, int blind)
{
	int rc = 0, mode;

	for (unsigned attempt = 0; attempt < MAP_RETRIES; attempt++) {
		int has_l0 = w->base.nruns && w->base.runs[0].level == 0;
		if (attempt > 0) {
			if ((rc = read_base(w, NULL)) < 0)
				return rc;
			if (!w->has_base)
				return kvs_error_set(KVS_ENOTFOUND, "key \"%s\" not found", w->key);
			has_l0 = w->base.nruns && w->base.runs[0].level == 0;
		}
		mode = has_l0 ? policy_mode(&w->base, w->s->map_inline_max, force,
		                              w->s->map_minor_always) : 0;
		if (!mode) {
			if (out)
				snprintf(out->str, sizeof(out->str), "%s", w->base_rv);
			return 0;
		}
		rc = mode == KVS__MAP_MINOR ? compact_minor(out, w) : compact_once(out, w);
		if (rc != KVS_ECONFLICT || !blind)
			return rc;
	}
	return rc;
}

int kvs_map_compact(kvs_ver *out, kvs_store *s, const char *key,
                    const kvs_map_write_options *opts)
{
	kvs_map_write_options o;
	const char *ev;
	mw w;
	int rc;

	if ((rc = write_opts(&o, opts)) < 0 || (rc = mw_init(&w, s, key)) < 0)
		return rc;
	ev = o.expect_version;
	if ((rc = read_base(&w, ev && *ev ? ev : NULL)) < 0)
		goto out;
	if (!w.has_base) {
		rc = kvs_error_set(KVS_ENOTFOUND, "key \"%s\" not found", key);
		goto out;
	}
	rc = compact_key(out, &w, o.compact == KVS_MAP_COMPACT_FORCE, !ev);
out:
	mw_stats(o.stats, &w);
	mw_free(&w);
	return rc;
}
