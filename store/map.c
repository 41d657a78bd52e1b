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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "codec.h"
#include "maprun.h"
#include "mapjson.h"

#define ANN_COMMIT "kvsplit.io/commit"
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

typedef struct fresh {
	uint8_t addr[16];
	uint64_t bytes;
	uint32_t nchunks;
	int64_t t_mono, t_srv;
} fresh;

/* One write (batch, import or compaction) in progress. */
typedef struct mw {
	kvs_store *s;
	const char *key;
	size_t klen;
	char iname[KVS__NAME_BUF];
	char what[KVS_KEY_MAX + 32];
	kvs_map_stats st;
	/* base */
	int has_base;
	char base_rv[KVS_VER_MAX];
	kvs__mapidx base;
	uint32_t base_index_bytes;
	/* segments created or touched by this write */
	fresh *fr;
	size_t nfr, capfr;
} mw;

static void mw_free(mw *w)
{
	kvs__mapidx_clear(&w->base);
	free(w->fr);
}

static void merge_stats(kvs_map_stats *dst, const kvs_map_stats *src)
{
	if (!dst)
		return;
	dst->requests += src->requests;
	dst->bytes_written += src->bytes_written;
	dst->segments_written += src->segments_written;
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
	rc = kvs__mapidx_decode(ix, &m, w->what);
	if (mflen)
		*mflen = b ? (uint32_t)b->len : 0;
	kvs__manifest_clear(&m);
	return rc;
}

/* Take `idx` (consumed; NULL = absent) as the base of w. */
static int set_base(mw *w, kvs_object *idx)
{
	int rc = 0;

	kvs__mapidx_clear(&w->base);
	if (!idx) {
		w->has_base = 0;
		w->base_rv[0] = '\0';
		return 0;
	}
	w->has_base = 1;
	snprintf(w->base_rv, sizeof(w->base_rv), "%s", idx->resource_version);
	rc = decode_index(w, idx, &w->base, &w->base_index_bytes);
	kvs_object_free(idx);
	return rc;
}

/* GET the index and make it the base. */
static int read_base(mw *w)
{
	kvs_object *idx = NULL;
	int rc;

	w->st.requests++;
	rc = w->s->be->ops->get(w->s->be, &idx, w->iname);
	if (rc == KVS_ENOTFOUND)
		return set_base(w, NULL);
	if (rc < 0)
		return rc;
	return set_base(w, idx);
}

static int check_expect_version(mw *w, const char *ev)
{
	if (!ev)
		return 0;
	if (!*ev && w->has_base)
		return kvs_error_set(KVS_EEXISTS, "key \"%s\" exists (create-only)", w->key);
	if (*ev && !w->has_base)
		return kvs_error_set(KVS_ECONFLICT, "key \"%s\" does not exist (expected version %s)",
		                     w->key, ev);
	if (*ev && strcmp(ev, w->base_rv) != 0)
		return kvs_error_set(KVS_ECONFLICT, "key \"%s\" is at version %s, not %s", w->key,
		                     w->base_rv, ev);
	return 0;
}

/* GET + decode for the readers. */
static int read_map(mw *w, kvs_ver *ver)
{
	int rc = read_base(w);

	if (rc < 0)
		return rc;
	if (!w->has_base)
		return kvs_error_set(KVS_ENOTFOUND, "key \"%s\" not found", w->key);
	if (ver)
		snprintf(ver->str, sizeof(ver->str), "%s", w->base_rv);
	w->st.index_bytes = w->base_index_bytes;
	return 0;
}

static int check_read_opts(const kvs_map_read_options *o)
{
	if (o && (o->version < 1 || o->version > KVS_MAP_READ_OPTIONS_VERSION))
		return kvs_error_set(KVS_EINVAL, "kvs_map_read_options version %u is not supported",
		                     o->version);
	return 0;
}

static int check_write_opts(const kvs_map_write_options *o)
{
	if (o && (o->version < 1 || o->version > KVS_MAP_WRITE_OPTIONS_VERSION))
		return kvs_error_set(KVS_EINVAL, "kvs_map_write_options version %u is not supported",
		                     o->version);
	if (o && o->compact > KVS_MAP_COMPACT_FORCE)
		return kvs_error_set(KVS_EINVAL, "kvs_map_write_options.compact %u is not valid",
		                     o->compact);
	return 0;
}

/* ---- reads ------------------------------------------------------------------ */

int kvs_map_get(void **out, size_t *out_len, uint64_t *out_fver, kvs_ver *out_ver, kvs_store *s,
                const char *key, const void *field, size_t flen, const kvs_map_read_options *opts)
{
	mw w;
	kvs__ment e;
	uint8_t *val = NULL;
	int rc, found = 0;

	if (!out || !out_len)
		return kvs_error_set(KVS_EINVAL, "kvs_map_get: out is NULL");
	*out = NULL;
	*out_len = 0;
	if ((rc = check_read_opts(opts)) < 0)
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
	if (opts && opts->stats)
		merge_stats(opts->stats, &w.st);
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
                      const kvs_map_iter_options *o)
{
	kvs_map_iter *it;
	const void *lo = NULL, *hi = NULL;
	size_t lolen = 0, hilen = 0;
	int rc;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "kvs_map_iter_open: out is NULL");
	*out = NULL;
	if (o && (o->version < 1 || o->version > KVS_MAP_ITER_OPTIONS_VERSION))
		return kvs_error_set(KVS_EINVAL, "kvs_map_iter_options version %u is not supported",
		                     o->version);
	if (!(it = calloc(1, sizeof(*it))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if ((rc = mw_init(&it->w, s, key)) < 0 || (rc = read_map(&it->w, out_ver)) < 0)
		goto fail;
	if (o) {
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
	if (o && o->stats)
		merge_stats(o->stats, &it->w.st);
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
		merge_stats(it->stats, &it->w.st);
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
	if ((rc = check_read_opts(opts)) < 0)
		return rc;
	io.stats = opts ? opts->stats : NULL;
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

int kvs_map_stat_key(kvs_map_stat *out, kvs_store *s, const char *key)
{
	mw w;
	int rc;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "kvs_map_stat_key: out is NULL");
	memset(out, 0, sizeof(*out));
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

static int server_now(mw *w, int64_t *ms)
{
	w->st.requests++;
	*ms = 0;
	return w->s->be->ops->now(w->s->be, ms);
}

static int touch(mw *w, fresh *f)
{
	char name[KVS__NAME_BUF], now[32];
	int64_t ms;
	kvs_kv kv;
	int rc;

	kvs__segment_name(name, w->s->name, f->addr);
	if ((rc = server_now(w, &ms)) < 0)
		return rc;
	snprintf(now, sizeof(now), "%lld", (long long)ms);
	kv.key = (char *)KVS__ANN_TOUCHED;
	kv.value = now;
	w->st.requests++;
	if ((rc = w->s->be->ops->annotate(w->s->be, NULL, name, &kv, 1)) == 0) {
		f->t_mono = kvs__mono_ms();
		f->t_srv = ms;
	}
	return rc;
}

/* A blob waiting to be packed: one run. */
typedef struct pblob {
	uint8_t addr[16];
	uint8_t *blob;
	uint32_t len;
	kvs__mrun *run;      /* whose seg to set (index into the fresh list + tag) */
} pblob;

/*
 * Pack blobs into segments of at most seg_cap bytes, create them
 * (AlreadyExists: touch; gone by then: create again), and record each as a
 * fresh segment. Each pblob's run gets seg = KVS__MRUN_NOSEG - 1 - (fresh
 * index) as a placeholder resolved by assemble(). Consumes the blobs.
 */
#define FRESH_TAG(i) (KVS__MRUN_NOSEG - 1u - (uint32_t)(i))
#define IS_FRESH_TAG(s) ((s) >= KVS__MRUN_NOSEG - 1u - (1u << 20) && (s) != KVS__MRUN_NOSEG)

static int create_one(mw *w, kvs_object *obj, fresh *f)
{
	int64_t srv;
	int rc;

	if ((rc = server_now(w, &srv)) < 0)
		return rc;
	w->st.requests++;
	rc = w->s->be->ops->create(w->s->be, NULL, obj);
	if (rc == 0) {
		w->st.segments_written++;
		w->st.bytes_written += f->bytes;
		f->t_mono = kvs__mono_ms();
		f->t_srv = srv;
		return 0;
	}
	if (rc != KVS_EEXISTS)
		return kvs_error_set(rc, "%s: creating segment %s: %s", w->what, obj->name,
		                     kvs_error_last());
	rc = touch(w, f);
	if (rc == KVS_ENOTFOUND) {
		if ((rc = server_now(w, &srv)) < 0)
			return rc;
		w->st.requests++;
		rc = w->s->be->ops->create(w->s->be, NULL, obj);
		if (rc == 0) {
			w->st.segments_written++;
			w->st.bytes_written += f->bytes;
			f->t_mono = kvs__mono_ms();
			f->t_srv = srv;
		}
	}
	if (rc < 0)
		return kvs_error_set(rc, "%s: segment %s: %s", w->what, obj->name, kvs_error_last());
	return 0;
}

static int pack_and_create(mw *w, pblob *pb, size_t n)
{
	size_t i = 0;
	int rc = 0;

	while (i < n) {
		kvs__seg_entry *e;
		kvs_object *obj = NULL;
		size_t j = i, k;
		uint64_t bytes = 0;
		fresh *f;
		while (j < n && (j == i || bytes + pb[j].len <= w->s->seg_cap))
			bytes += pb[j++].len;
		if (!(e = calloc(j - i, sizeof(*e)))) {
			rc = kvs_error_set(KVS_ENOMEM, "out of memory");
			break;
		}
		for (k = i; k < j; k++) {
			memcpy(e[k - i].addr, pb[k].addr, 16);
			e[k - i].blob = pb[k].blob;
			e[k - i].len = pb[k].len;
			pb[k].blob = NULL;
		}
		if (w->nfr == w->capfr) {
			size_t nc = w->capfr ? w->capfr * 2 : 8;
			fresh *nf = realloc(w->fr, nc * sizeof(*nf));
			if (!nf) {
				for (k = 0; k < j - i; k++)
					free(e[k].blob);
				free(e);
				rc = kvs_error_set(KVS_ENOMEM, "out of memory");
				break;
			}
			w->fr = nf;
			w->capfr = nc;
		}
		f = &w->fr[w->nfr];
		memset(f, 0, sizeof(*f));
		/* Dedupe within a segment: the same run twice (identical deltas
		 * within one compaction) is one entry. */
		{
			size_t m = 0;
			for (k = 0; k < j - i; k++) {
				size_t q;
				for (q = 0; q < m; q++)
					if (memcmp(e[q].addr, e[k].addr, 16) == 0)
						break;
				if (q < m) {
					free(e[k].blob);
					continue;
				}
				e[m++] = e[k];
			}
			f->nchunks = (uint32_t)m;
			f->bytes = 0;
			for (k = 0; k < m; k++)
				f->bytes += e[k].len;
			rc = kvs__seg_build(&obj, f->addr, w->s->name, e, m);
		}
		free(e);
		if (rc < 0)
			break;
		rc = create_one(w, obj, f);
		kvs_object_free(obj);
		if (rc < 0)
			break;
		for (k = i; k < j; k++)
			pb[k].run->seg = FRESH_TAG(w->nfr);
		w->nfr++;
		i = j;
	}
	for (size_t k = 0; k < n; k++) {
		free(pb[k].blob);
		pb[k].blob = NULL;
	}
	return rc;
}

/* design.md "Put" step 4, for the fresh segments the new index references. */
static int refresh(mw *w, const uint8_t *used)
{
	int64_t win = (int64_t)w->s->opts.touch_window_s * 1000;
	int rc, any = 0;

	for (size_t i = 0; i < w->nfr; i++)
		any |= used[i];
	if (!any)
		return 0;
	for (int pass = 0; pass < 4; pass++) {
		int64_t now = kvs__mono_ms(), srv;
		int touched = 0;
		if ((rc = server_now(w, &srv)) < 0)
			return rc;
		for (size_t i = 0; i < w->nfr; i++) {
			fresh *f = &w->fr[i];
			if (!used[i] || (now - f->t_mono < win / 2 && srv - f->t_srv < win / 2))
				continue;
			rc = touch(w, f);
			if (rc == KVS_ENOTFOUND)
				return kvs_error_set(KVS_ETIMEOUT, "%s: a segment vanished before the commit "
				                     "(the write took longer than the touch window)", w->what);
			if (rc < 0)
				return rc;
			touched = 1;
		}
		if (!touched)
			return 0;
	}
	return kvs_error_set(KVS_ETIMEOUT, "%s: segments keep outliving the touch window before "
	                     "the commit", w->what);
}

/* ---- assembling and committing an index ---------------------------------------- */

static int ix_add_run(kvs__mapidx *ix, const kvs__mrun *r)
{
	kvs__mrun *d;

	if (ix->nruns >= KVS__MAP_RUNS_MAX)
		return kvs_error_set(KVS_ETOOBIG, "map of more than %u runs", KVS__MAP_RUNS_MAX);
	if (ix->nruns == ix->cap) {
		uint32_t nc = ix->cap ? ix->cap * 2 : 16;
		kvs__mrun *np = realloc(ix->runs, (size_t)nc * sizeof(*np));
		if (!np)
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		ix->runs = np;
		ix->cap = nc;
	}
	d = &ix->runs[ix->nruns];
	*d = *r;
	d->min = malloc(r->minlen);
	d->max = malloc(r->maxlen);
	d->raw = (r->flags & KVS__MRUN_INLINE) ? malloc(r->raw_len) : NULL;
	if (!d->min || !d->max || ((r->flags & KVS__MRUN_INLINE) && !d->raw)) {
		free(d->min);
		free(d->max);
		free(d->raw);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	memcpy(d->min, r->min, r->minlen);
	memcpy(d->max, r->max, r->maxlen);
	if (d->raw)
		memcpy(d->raw, r->raw, r->raw_len);
	ix->nruns++;
	return 0;
}

/*
 * Resolve segment references of the runs of `ix` (base segment indices refer
 * to `base`, FRESH_TAG to w->fr) into a fresh segment table of only the
 * segments referenced. `used` (nfr bytes) marks the fresh ones kept.
 */
static int assemble(mw *w, kvs__mapidx *ix, const kvs__mapidx *base, uint8_t *used)
{
	uint32_t *bmap = NULL, *fmap = NULL;
	int rc = 0;

	free(ix->segs);
	ix->segs = NULL;
	ix->nsegs = 0;
	memset(used, 0, w->nfr ? w->nfr : 1);
	bmap = malloc(((size_t)base->nsegs + 1) * sizeof(*bmap));
	fmap = malloc((w->nfr + 1) * sizeof(*fmap));
	ix->segs = malloc(((size_t)base->nsegs + w->nfr + 1) * sizeof(*ix->segs));
	if (!bmap || !fmap || !ix->segs) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < base->nsegs; i++)
		bmap[i] = KVS__MRUN_NOSEG;
	for (size_t i = 0; i < w->nfr; i++)
		fmap[i] = KVS__MRUN_NOSEG;
	for (uint32_t i = 0; i < ix->nruns; i++) {
		kvs__mrun *r = &ix->runs[i];
		uint32_t *slot;
		if (r->flags & KVS__MRUN_INLINE)
			continue;
		if (IS_FRESH_TAG(r->seg)) {
			size_t fi = KVS__MRUN_NOSEG - 1u - r->seg;
			slot = &fmap[fi];
			if (*slot == KVS__MRUN_NOSEG) {
				*slot = ix->nsegs;
				memcpy(ix->segs[ix->nsegs].addr, w->fr[fi].addr, 16);
				ix->segs[ix->nsegs].bytes = w->fr[fi].bytes;
				ix->segs[ix->nsegs].nchunks = w->fr[fi].nchunks;
				ix->nsegs++;
				used[fi] = 1;
			}
		} else {
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

static int new_commit_id(char out[17])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[8];
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kvs_error_set(KVS_ERROR, "getrandom: %s", strerror(errno));
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(r); i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[16] = '\0';
	return 0;
}

/*
 * Replace the index with manifest `mf` conditioned on the base version (or
 * create it). As in put.c: a lost response is recognised by re-reading the
 * index and finding our commit id with exactly our manifest. Returns 0,
 * KVS_ECONFLICT (not at the base any more; *seen gets the index as re-read,
 * NULL when absent), or another error.
 */
static int commit_index(mw *w, const uint8_t *mf, size_t mflen, uint64_t gen, uint64_t length,
                        kvs_ver *out, kvs_object **seen, int blind)
{
	kvs_object *idx = kvs_object_new(w->iname), *res = NULL, *cur = NULL;
	char num[32], id[17], err[512];
	const kvs_blob *b;
	const char *a;
	int rc, rrc;

	*seen = NULL;
	if (!idx)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	snprintf(num, sizeof(num), "%llu", (unsigned long long)gen);
	if ((rc = new_commit_id(id)) < 0 ||
	    (rc = kvs__set_labels(idx, w->s->name, KVS__ROLE_INDEX)) < 0 ||
	    (rc = kvs_object_set_annotation(idx, KVS__ANN_KEY, w->key)) < 0 ||
	    (rc = kvs_object_set_annotation(idx, KVS__ANN_GENERATION, num)) < 0 ||
	    (snprintf(num, sizeof(num), "%llu", (unsigned long long)length),
	     rc = kvs_object_set_annotation(idx, KVS__ANN_LENGTH, num)) < 0 ||
	    (rc = kvs_object_set_annotation(idx, ANN_COMMIT, id)) < 0 ||
	    (rc = kvs_object_add_data(idx, KVS__INDEX_DATA_KEY, mf, mflen)) < 0)
		goto out;
	w->st.requests++;
	if (w->has_base) {
		if ((rc = kvs_object_set_rv(idx, w->base_rv)) < 0)
			goto out;
		rc = w->s->be->ops->replace(w->s->be, &res, idx);
	} else {
		rc = w->s->be->ops->create(w->s->be, &res, idx);
	}
	if (rc == 0) {
		w->st.bytes_written += mflen;
		w->st.index_bytes = mflen;
		if (out)
			snprintf(out->str, sizeof(out->str), "%s", res ? res->resource_version : "");
		goto out;
	}
	if (rc == KVS_ENOTFOUND && w->has_base)
		rc = KVS_ECONFLICT;
	else if (rc == KVS_EEXISTS)
		rc = KVS_ECONFLICT;
	else if (rc != KVS_ECONFLICT && rc != KVS_EIO && rc != KVS_ETIMEOUT)
		goto out;
	snprintf(err, sizeof(err), "%s", kvs_error_last());
	w->st.requests++;
	rrc = w->s->be->ops->get(w->s->be, &cur, w->iname);
	if (rrc < 0 && rrc != KVS_ENOTFOUND) {
		rc = kvs_error_set(rc == KVS_ECONFLICT ? rrc : rc,
		                   "%s: the outcome of the commit is unknown (%s; re-reading the index "
		                   "failed: %s); check with `kvsplit stat %s`", w->what, err,
		                   kvs_error_last(), w->key);
		goto out;
	}
	if (rrc == 0 && (a = kvs_object_annotation(cur, ANN_COMMIT)) && strcmp(a, id) == 0 &&
	    (b = kvs_object_data(cur, KVS__INDEX_DATA_KEY)) && b->len == mflen &&
	    memcmp(b->data, mf, mflen) == 0) {
		w->st.bytes_written += mflen;
		w->st.index_bytes = mflen;
		if (out)
			snprintf(out->str, sizeof(out->str), "%s", cur->resource_version);
		rc = 0;
		goto out;
	}
	if (rc == KVS_ECONFLICT) {
		*seen = cur;
		cur = NULL;
		kvs_error_set(rc, "%s", err);
		goto out;
	}
	if (rrc == KVS_ENOTFOUND ? !w->has_base
	                         : w->has_base && strcmp(cur->resource_version, w->base_rv) == 0) {
		rc = kvs_error_set(rc, "%s: the commit did not apply, the old map is intact (%s)",
		                   w->what, err);
	} else if (blind) {
		*seen = cur;
		cur = NULL;
		rc = kvs_error_set(KVS_ECONFLICT, "%s: committed by another writer (%s)", w->what, err);
	} else {
		rc = kvs_error_set(rc, "%s: the outcome of the commit is unknown (%s), and the key has "
		                   "moved on since (another writer); check with `kvsplit stat %s`",
		                   w->what, err, w->key);
	}
out:
	kvs_object_free(idx);
	kvs_object_free(res);
	kvs_object_free(cur);
	return rc;
}

/* Encode ix (segments already resolved) as the key's manifest and commit. */
static int encode_commit(mw *w, kvs__mapidx *ix, const uint8_t *used, kvs_ver *out,
                         kvs_object **seen, int blind)
{
	kvs__manifest m;
	uint8_t *mf = NULL;
	size_t mflen = 0;
	int rc;

	memset(&m, 0, sizeof(m));
	m.key = (char *)w->key;
	m.key_len = w->klen;
	if ((rc = kvs__mapidx_encode(&m, ix, (int)w->s->opts.lz4_accel)) == 0)
		rc = kvs__manifest_encode(&mf, &mflen, &m, w->s->manifest_max);
	m.key = NULL;
	if (rc == KVS_ETOOBIG)
		rc = kvs_error_set(KVS_ETOOBIG, "%s: the map index does not fit the index object (%s); "
		                   "compact it", w->what, kvs_error_last());
	if (rc == 0 && (rc = refresh(w, used)) == 0)
		rc = commit_index(w, mf, mflen, ix->gen, m.length, out, seen, blind);
	kvs__manifest_clear(&m);
	free(mf);
	return rc;
}

/* ---- batches: the write path -------------------------------------------------- */

/* The compaction policy (design.md "Compaction"): deltas past half the inline
 * budget, any delta out of line (a point read would fetch it), or too many
 * deltas. */
int kvs__map_policy(const kvs__mapidx *ix, uint32_t inline_max)
{
	uint64_t raw = 0;
	uint32_t groups = 0;
	int ool = 0;

	for (uint32_t i = 0; i < ix->nruns && ix->runs[i].level == 0; i++) {
		raw += ix->runs[i].raw_len;
		ool |= !(ix->runs[i].flags & KVS__MRUN_INLINE);
		groups += i == 0 || ix->runs[i - 1].seq != ix->runs[i].seq;
	}
	return raw > inline_max / 2 || ool || groups > KVS__MAP_L0_GROUPS_MAX;
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

/* Compress runs into pblobs (run pointers into rs). */
static int runs_blobs(pblob **out, runs *rs, size_t from, int accel)
{
	pblob *pb;
	size_t n = rs->n - from;

	*out = NULL;
	if (!(pb = calloc(n ? n : 1, sizeof(*pb))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		kvs__mrun *r = &rs->r[from + i];
		size_t bound = kvs__blob_bound(r->raw_len);
		if (!(pb[i].blob = malloc(bound))) {
			for (size_t j = 0; j < i; j++)
				free(pb[j].blob);
			free(pb);
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		}
		pb[i].len = (uint32_t)kvs__blob_encode(pb[i].blob, bound, r->raw, r->raw_len, accel);
		memcpy(pb[i].addr, r->addr, 16);
		pb[i].run = r;
		r->stored_len = pb[i].len;
	}
	*out = pb;
	return 0;
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

static int compact_key(kvs_ver *out, mw *w, int force, const char *ev, int blind);

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
 * Commit the delta `rs` on top of w's base: the new table is the delta
 * (inline if it fits the budget, else in segments created once and kept
 * across rebases) followed by the base's runs. A blind write that loses the
 * race takes the new index as its base and commits again.
 */
static int commit_delta(kvs_ver *out, mw *w, runs *rs, const kvs_map_batch *b, const char *ev,
                        int blind)
{
	kvs__mapidx ix;
	uint8_t *used = NULL;
	int rc = 0, ool = 0;

	memset(&ix, 0, sizeof(ix));
	for (unsigned attempt = 0;; attempt++) {
		kvs_object *seen = NULL;
		uint64_t draw = 0;
		int inl;

		if (b && (rc = check_expectations(w, b)) < 0)
			break;
		for (size_t i = 0; i < rs->n; i++)
			draw += rs->r[i].raw_len;
		inl = !ool && draw + inline_raw(&w->base) <= w->s->map_inline_max;
		if (!inl && !ool) {
			pblob *pb = NULL;
			if ((rc = runs_blobs(&pb, rs, 0, (int)w->s->opts.lz4_accel)) < 0)
				break;
			rc = pack_and_create(w, pb, rs->n);
			free(pb);
			if (rc < 0)
				break;
			ool = 1;
		}
		kvs__mapidx_clear(&ix);
		ix.gen = w->base.gen + 1;
		for (size_t i = 0; i < rs->n && rc == 0; i++) {
			kvs__mrun r = rs->r[i];
			r.seq = ix.gen;
			if (inl) {
				r.flags = KVS__MRUN_INLINE;
				r.seg = KVS__MRUN_NOSEG;
				r.stored_len = r.raw_len;
			} else {
				r.flags = 0;
				r.raw = NULL;
			}
			rc = ix_add_run(&ix, &r);
		}
		for (uint32_t i = 0; i < w->base.nruns && rc == 0; i++)
			rc = ix_add_run(&ix, &w->base.runs[i]);
		free(used);
		used = NULL;
		if (rc < 0 || !(used = calloc(w->nfr + 1, 1))) {
			rc = rc < 0 ? rc : kvs_error_set(KVS_ENOMEM, "out of memory");
			break;
		}
		if ((rc = assemble(w, &ix, &w->base, used)) < 0)
			break;
		w->st.delta_inline = inl;
		rc = encode_commit(w, &ix, used, out, &seen, blind);
		if (rc != KVS_ECONFLICT || !blind || attempt + 1 >= MAP_RETRIES) {
			kvs_object_free(seen);
			if (rc == KVS_ECONFLICT && !blind)
				rc = ev && !*ev ? kvs_error_set(KVS_EEXISTS, "key \"%s\" was created "
				                                "concurrently", w->key)
				                : kvs_error_set(KVS_ECONFLICT, "key \"%s\" changed since "
				                                "version %s", w->key, ev ? ev : "");
			else if (rc == KVS_ECONFLICT)
				rc = kvs_error_set(KVS_ECONFLICT, "%s: lost the commit race %u times",
				                   w->what, MAP_RETRIES);
			break;
		}
		/* Rebase: the delta does not depend on the base. */
		w->st.rebases++;
		if ((rc = set_base(w, seen)) < 0)
			break;
	}
	if (rc == 0) {
		/* the committed index is the new base (for a compaction after it) */
		kvs__mapidx_clear(&w->base);
		w->base = ix;
		memset(&ix, 0, sizeof(ix));
		w->has_base = 1;
		if (out)
			snprintf(w->base_rv, sizeof(w->base_rv), "%s", out->str);
	}
	free(used);
	kvs__mapidx_clear(&ix);
	return rc;
}

/* Auto-compaction after a successful write: best effort. */
static void after_write(mw *w, kvs_ver *out, unsigned compact)
{
	kvs_ver v;
	int rc;

	if (compact == KVS_MAP_COMPACT_NEVER || !kvs__map_policy(&w->base, w->s->map_inline_max))
		return;
	w->nfr = 0;
	rc = compact_key(&v, w, 0, w->base_rv, 0);
	if (rc == 0 && w->st.compacted && out)
		*out = v;
	/* a failed compaction changes nothing: the batch stands */
}

int kvs_map_commit(kvs_ver *out, kvs_store *s, const char *key, const kvs_map_batch *b,
                   const kvs_map_write_options *o)
{
	const char *ev = o ? o->expect_version : NULL;
	runs rs = { 0 };
	kvs_ver v;
	mw w;
	int rc;

	if (!b)
		return kvs_error_set(KVS_EINVAL, "kvs_map_commit: batch is NULL");
	if ((rc = check_write_opts(o)) < 0 || (rc = mw_init(&w, s, key)) < 0)
		return rc;
	if ((rc = build_delta(&rs, b, s->map_run_target)) < 0)
		goto out;
	if ((rc = read_base(&w)) < 0 || (rc = check_expect_version(&w, ev)) < 0)
		goto out;
	if (rs.n == 0) {
		/* nothing to write: succeed at the current version if expectations hold */
		if ((rc = check_expectations(&w, b)) == 0 && out)
			snprintf(out->str, sizeof(out->str), "%s", w.base_rv);
		goto out;
	}
	if ((rc = commit_delta(&v, &w, &rs, b, ev, !ev)) < 0)
		goto out;
	if (out)
		*out = v;
	after_write(&w, out, o ? o->compact : KVS_MAP_COMPACT_AUTO);
out:
	if (o && o->stats)
		merge_stats(o->stats, &w.st);
	runs_free(&rs);
	mw_free(&w);
	return rc;
}

/* ---- import: a whole map from sorted entries ------------------------------------ */

/*
 * Replace the map with sorted, distinct entries (import): every run is a
 * base run, in segments; the new index does not reference the old one's
 * segments at all.
 */
int kvs__map_replace(kvs_ver *out, kvs_store *s, const char *key, const kvs__ment *ents,
                     size_t n, const kvs_map_write_options *o)
{
	const char *ev = o ? o->expect_version : NULL;
	kvs__mapidx ix, empty;
	kvs__mbuild mb;
	runs rs = { 0 };
	pblob *pb = NULL;
	uint8_t *used = NULL;
	mw w;
	int rc;

	memset(&ix, 0, sizeof(ix));
	memset(&empty, 0, sizeof(empty));
	if ((rc = check_write_opts(o)) < 0 || (rc = mw_init(&w, s, key)) < 0)
		return rc;
	if ((rc = read_base(&w)) < 0 && rc != KVS_EINVAL)
		goto out;
	if (rc == KVS_EINVAL) {
		/* a plain value is replaced by the map, like a put replaces a map */
		kvs_object *idx = NULL;
		w.st.requests++;
		if ((rc = s->be->ops->get(s->be, &idx, w.iname)) < 0)
			goto out;
		w.has_base = 1;
		snprintf(w.base_rv, sizeof(w.base_rv), "%s", idx->resource_version);
		kvs_object_free(idx);
		kvs__mapidx_clear(&w.base);
	}
	if ((rc = check_expect_version(&w, ev)) < 0)
		goto out;
	/* Field versions are the generation of the import: re-encode once the
	 * generation is known (it only changes on a blind rebase, rarely). */
	for (unsigned attempt = 0;; attempt++) {
		kvs_object *seen = NULL;
		uint64_t gen = w.base.gen + 1;
		if (attempt == 0 || rs.n == 0 || rs.r[0].seq != gen) {
			/* field versions are the generation of the import */
			/* rewrite versions: rebuild runs with the generation */
			runs r2 = { 0 };
			kvs__mbuild_init(&mb);
			for (size_t i = 0; i < n && rc == 0; i++) {
				kvs__ment e = ents[i];
				e.ver = gen;
				rc = runs_add(&r2, &mb, &e, 1, s->map_run_target);
			}
			if (rc == 0)
				rc = runs_emit(&r2, &mb, 1);
			kvs__mbuild_free(&mb);
			runs_free(&rs);
			rs = r2;
			if (rc < 0)
				break;
			for (size_t i = 0; i < rs.n; i++)
				rs.r[i].seq = gen;
			w.nfr = 0;
			if (rs.n) {
				if ((rc = runs_blobs(&pb, &rs, 0, (int)s->opts.lz4_accel)) < 0)
					break;
				rc = pack_and_create(&w, pb, rs.n);
				free(pb);
				pb = NULL;
				if (rc < 0)
					break;
			}
		}
		kvs__mapidx_clear(&ix);
		ix.gen = gen;
		for (size_t i = 0; i < rs.n && rc == 0; i++) {
			kvs__mrun r = rs.r[i];
			r.raw = NULL;
			r.flags = 0;
			rc = ix_add_run(&ix, &r);
		}
		free(used);
		used = NULL;
		if (rc < 0 || !(used = calloc(w.nfr + 1, 1))) {
			rc = rc < 0 ? rc : kvs_error_set(KVS_ENOMEM, "out of memory");
			break;
		}
		if ((rc = assemble(&w, &ix, &empty, used)) < 0)
			break;
		rc = encode_commit(&w, &ix, used, out, &seen, !ev);
		if (rc != KVS_ECONFLICT || ev || attempt + 1 >= MAP_RETRIES) {
			kvs_object_free(seen);
			break;
		}
		w.st.rebases++;
		if ((rc = set_base(&w, seen)) == KVS_EINVAL) {
			kvs__mapidx_clear(&w.base);
			rc = 0;
		}
		if (rc < 0)
			break;
	}
out:
	if (o && o->stats)
		merge_stats(o->stats, &w.st);
	free(used);
	runs_free(&rs);
	kvs__mapidx_clear(&ix);
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
static int compact_once(kvs_ver *out, mw *w, int blind)
{
	kvs__mmerge mg;
	kvs__mbuild mb;
	kvs__mapidx ix;
	ents es = { 0 };
	runs rs = { 0 };
	pblob *pb = NULL;
	uint8_t *used = NULL, *keep = NULL;
	uint32_t *owner = NULL;
	size_t capowner = 0, di = 0;
	uint64_t *live = NULL, before = w->st.bytes_written;
	uint32_t first_l1 = 0, nl1, ngroups;
	kvs_object *seen = NULL;
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
	w->nfr = 0;
	if (rs.n) {
		if ((rc = runs_blobs(&pb, &rs, 0, (int)w->s->opts.lz4_accel)) < 0)
			goto out;
		rc = pack_and_create(w, pb, rs.n);
		free(pb);
		pb = NULL;
		if (rc < 0)
			goto out;
	}
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
	if (!(used = calloc(w->nfr + 1, 1))) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = assemble(w, &ix, &w->base, used)) < 0)
		goto out;
	rc = encode_commit(w, &ix, used, out, &seen, blind);
	if (rc == 0) {
		w->st.compacted = 1;
		w->st.compact_bytes_written += w->st.bytes_written - before;
	}
out:
	kvs_object_free(seen);
	kvs__mmerge_free(&mg);
	kvs__mbuild_free(&mb);
	ents_free(&es);
	runs_free(&rs);
	free(pb);
	free(used);
	free(keep);
	free(live);
	free(owner);
	kvs__mapidx_clear(&ix);
	return rc;
}

static int compact_key(kvs_ver *out, mw *w, int force, const char *ev, int blind)
{
	int rc = 0;

	for (unsigned attempt = 0; attempt < MAP_RETRIES; attempt++) {
		int has_l0 = w->base.nruns && w->base.runs[0].level == 0;
		if (attempt > 0) {
			if ((rc = read_base(w)) < 0)
				return rc;
			if (!w->has_base)
				return kvs_error_set(KVS_ENOTFOUND, "key \"%s\" not found", w->key);
			has_l0 = w->base.nruns && w->base.runs[0].level == 0;
		}
		if (!has_l0 || (!force && !kvs__map_policy(&w->base, w->s->map_inline_max))) {
			if (out)
				snprintf(out->str, sizeof(out->str), "%s", w->base_rv);
			return 0;
		}
		w->nfr = 0;
		rc = compact_once(out, w, 0);
		(void)ev;
		if (rc != KVS_ECONFLICT || !blind)
			return rc;
	}
	return rc;
}

int kvs_map_compact(kvs_ver *out, kvs_store *s, const char *key, const kvs_map_write_options *o)
{
	const char *ev = o ? o->expect_version : NULL;
	mw w;
	int rc;

	if ((rc = check_write_opts(o)) < 0 || (rc = mw_init(&w, s, key)) < 0)
		return rc;
	if ((rc = read_base(&w)) < 0)
		goto out;
	if (!w.has_base) {
		rc = kvs_error_set(KVS_ENOTFOUND, "key \"%s\" not found", key);
		goto out;
	}
	if ((rc = check_expect_version(&w, ev && *ev ? ev : NULL)) < 0)
		goto out;
	rc = compact_key(out, &w, o && o->compact == KVS_MAP_COMPACT_FORCE, ev, !ev);
out:
	if (o && o->stats)
		merge_stats(o->stats, &w.st);
	mw_free(&w);
	return rc;
}
