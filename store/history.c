/*
 * history.c — older versions of a key, and rolling back to one (history.h;
 * docs/design.md "History", docs/format.md §6).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "commit.h"
#include "history.h"
#include "base/options.h"

/* ---- the table ---------------------------------------------------------- */

static int hist_corrupt(const char *what, const char *why)
{
	return kvs_error_set(KVS_ECORRUPT, "history of %s is damaged (%s); the committed value "
	                     "still reads", what, why);
}

int kvs__hist_parse(kvs__hentry **out, uint32_t *n, const kvs__manifest *m, const char *what)
{
	const uint8_t *p = m->hist;
	uint64_t prev = m->generation;
	uint32_t cnt;
	kvs__hentry *e;

	*out = NULL;
	*n = 0;
	if (m->hist_bad)
		return hist_corrupt(what, "the table is not a binary of at most 4608 bytes");
	if (!m->hist_len)
		return 0;
	if (m->hist_len % KVS__HIST_REC || m->hist_len > KVS__MF_HIST_MAX)
		return hist_corrupt(what, "the table is not a whole number of 72-byte records");
	cnt = m->hist_len / KVS__HIST_REC;
	if (!(e = calloc(cnt, sizeof(*e))))
		return kvs_error_set(KVS_ENOMEM, "out of memory reading history");
	for (uint32_t i = 0; i < cnt; i++, p += KVS__HIST_REC) {
		kvs__hentry *x = &e[i];
		x->gen = kvs__get_be64(p);
		x->time_ms = kvs__get_be64(p + 8);
		x->length = kvs__get_be64(p + 16);
		x->added = kvs__get_be64(p + 24);
		memcpy(x->seg, p + 32, 16);
		memcpy(x->addr, p + 48, 16);
		x->raw_len = kvs__get_be32(p + 64);
		x->stored_len = kvs__get_be32(p + 68);
		if (x->gen == 0 || x->gen >= prev) {
			free(e);
			return hist_corrupt(what, "versions are not older than the committed one, newest "
			                    "first");
		}
		if (x->length > KVS__MF_MAX_LENGTH || x->raw_len < 9 || x->raw_len > KVS__HIST_MF_MAX ||
		    x->stored_len == 0 || x->stored_len > kvs__blob_bound(x->raw_len)) {
			free(e);
			return hist_corrupt(what, "a record is out of range");
		}
		prev = x->gen;
	}
	*out = e;
	*n = cnt;
	return 0;
}

static void put_rec(uint8_t *p, const kvs__hentry *x)
{
	kvs__put_be64(p, x->gen);
	kvs__put_be64(p + 8, x->time_ms);
	kvs__put_be64(p + 16, x->length);
	kvs__put_be64(p + 24, x->added);
	memcpy(p + 32, x->seg, 16);
	memcpy(p + 48, x->addr, 16);
	kvs__put_be32(p + 64, x->raw_len);
	kvs__put_be32(p + 68, x->stored_len);
}

/* ---- reading a version -------------------------------------------------- */

int kvs__hist_open(kvs__manifest *m, kvs_store *s, const kvs__hentry *e, const char *key,
                   size_t key_len, uint64_t *requests)
{
	char what[KVS__NAME_BUF + 64], name[KVS__NAME_BUF];
	kvs__segment *sg = NULL;
	const kvs_blob *b;
	uint8_t *raw = NULL, a[16];
	int rc;

	memset(m, 0, sizeof(*m));
	snprintf(what, sizeof(what), "version %llu of key \"%.200s\"", (unsigned long long)e->gen,
	         key);
	kvs__segment_name(name, s->name, e->seg);
	if ((rc = kvs__segment_fetch(&sg, s, e->seg, requests)) < 0) {
		if (rc == KVS_ENOTFOUND)
			return kvs_error_set(KVS_ENOTFOUND, "%s: its history object %s is missing", what,
			                     name);
		return rc;
	}
	b = kvs__seg_find(sg, e->addr);
	if (!b || b->len != e->stored_len) {
		rc = kvs_error_set(KVS_ECORRUPT, "%s: history object %s does not hold its manifest",
		                   what, name);
		goto out;
	}
	if (!(raw = malloc(e->raw_len))) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto out;
	}
	if (kvs__blob_decode(raw, e->raw_len, b->data, b->len) < 0 ||
	    (kvs__addr_of(a, raw, e->raw_len), memcmp(a, e->addr, 16) != 0)) {
		rc = kvs_error_set(KVS_ECORRUPT, "%s: the manifest in history object %s fails its "
		                   "XXH3-128 check", what, name);
		goto out;
	}
	if ((rc = kvs__manifest_decode(m, raw, e->raw_len, what)) < 0)
		goto out;
	if ((m->kind != KVS__MF_BLOB && m->kind != KVS__MF_INDIRECT) || m->key_len != key_len ||
	    memcmp(m->key, key, key_len) != 0 || m->generation != e->gen ||
	    m->length != e->length || m->hist_len || m->hist_bad)
		rc = kvs_error_set(KVS_ECORRUPT, "%s: history object %s holds another manifest", what,
		                   name);
out:
	if (rc < 0)
		kvs__manifest_clear(m);
	free(raw);
	kvs__seg_unref(sg);
	return rc;
}

/* Find version `gen` in the history of decoded index manifest `cur`. */
static int find_entry(kvs__hentry *out, const kvs__manifest *cur, const char *key, uint64_t gen)
{
	char what[KVS_KEY_MAX + 16];
	kvs__hentry *e = NULL;
	uint32_t n = 0;
	int rc;

	snprintf(what, sizeof(what), "key \"%.200s\"", key);
	if ((rc = kvs__hist_parse(&e, &n, cur, what)) < 0)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		if (e[i].gen == gen) {
			*out = e[i];
			free(e);
			return 0;
		}
	}
	rc = kvs_error_set(KVS_ENOTFOUND, "key \"%.200s\" keeps no version %llu (committed: %llu; "
	                   "oldest kept: %llu; see `kvsplit log`)", key, (unsigned long long)gen,
	                   (unsigned long long)cur->generation,
	                   (unsigned long long)(n ? e[n - 1].gen : cur->generation));
	free(e);
	return rc;
}

/* The index manifest (unresolved) of version `gen` of `idx`'s key. */
static int version_manifest(kvs__manifest *m, kvs_store *s, const kvs_object *idx,
                            const char *key, size_t key_len, uint64_t gen, uint64_t *requests)
{
	kvs__hentry e;
	int rc;

	if ((rc = kvs__index_decode(m, s, idx, key, key_len)) < 0)
		return rc;
	if (m->kind == KVS__MF_MAP) {
		kvs__manifest_clear(m);
		return kvs_error_set(KVS_EUNSUPPORTED, "key \"%.200s\" holds a map: maps keep no "
		                     "history", key);
	}
	if (gen == m->generation)
		return 0;
	rc = find_entry(&e, m, key, gen);
	kvs__manifest_clear(m);
	if (rc < 0)
		return rc;
	return kvs__hist_open(m, s, &e, key, key_len, requests);
}

int kvs__hist_load(kvs__manifest *m, kvs_store *s, const kvs_object *idx, const char *key,
                   size_t key_len, uint64_t gen, uint64_t *requests)
{
	kvs__manifest v;
	char what[KVS_KEY_MAX + 48];
	int rc;

	memset(m, 0, sizeof(*m));
	if ((rc = version_manifest(&v, s, idx, key, key_len, gen, requests)) < 0) {
		kvs__manifest_clear(&v);
		return rc;
	}
	snprintf(what, sizeof(what), "version %llu of key \"%.200s\"", (unsigned long long)gen, key);
	return kvs__manifest_resolve(m, s, &v, what, requests);
}

/* ---- the writer's side -------------------------------------------------- */

void kvs__hstage_clear(kvs__hstage *h)
{
	if (!h)
		return;
	free(h->blob);
	free(h->tab);
	memset(h, 0, sizeof(*h));
}

int kvs__hist_prepare(kvs__hstage *h, kvs__segw *w, const kvs_object *base, const char *key,
                      size_t key_len)
{
	kvs_store *s = w->s;
	kvs__manifest bm;
	kvs__hentry *old = NULL, rec;
	kvs__seg_entry se;
	uint32_t nold = 0, n, kept = 0;
	int late;
	uint8_t *raw = NULL;
	size_t rawlen = 0, bound;
	char what[KVS_KEY_MAX + 16];
	int rc;

	if (h->has_slot)
		w->slots[h->slot].ref = 0;   /* the old base's history object: not referenced now */
	kvs__hstage_clear(h);
	h->on = s->history > 0;
	if (!h->on || !base)
		return 0;
	memset(&bm, 0, sizeof(bm));
	/* A base that does not decode, or a map, is not kept (it cannot be read anyway, or
	 * maps keep no history): the new table starts empty. */
	if (kvs__index_decode(&bm, s, base, key, key_len) < 0 || bm.kind == KVS__MF_MAP) {
		kvs__manifest_clear(&bm);
		return 0;
	}
	snprintf(what, sizeof(what), "key \"%.200s\"", key);
	if (kvs__hist_parse(&old, &nold, &bm, what) < 0)
		nold = 0;   /* a damaged table is dropped: fewer records is always safe */
	/* The history object: the base's manifest without its own table. */
	free(bm.hist);
	bm.hist = NULL;
	bm.hist_len = 0;
	bm.hist_bad = 0;
	if ((rc = kvs__manifest_encode(&raw, &rawlen, &bm, KVS__HIST_MF_MAX)) < 0)
		goto out;
	kvs__addr_of(h->addr, raw, rawlen);
	h->raw_len = (uint32_t)rawlen;
	bound = kvs__blob_bound(rawlen);
	if (!(h->blob = malloc(bound))) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto out;
	}
	h->blob_len = (uint32_t)kvs__blob_encode(h->blob, bound, raw, rawlen, (int)s->opts.lz4_accel);
	memset(&rec, 0, sizeof(rec));
	rec.gen = bm.generation;
	rec.time_ms = bm.v3 ? bm.time_ms : KVS__HIST_UNKNOWN;
	rec.length = bm.length;
	rec.added = bm.v3 ? bm.added : KVS__HIST_UNKNOWN;
	memcpy(rec.addr, h->addr, 16);
	rec.raw_len = h->raw_len;
	rec.stored_len = h->blob_len;
	/* Its segment's address, as the segment writer will seal it (one chunk). */
	memcpy(se.addr, h->addr, 16);
	se.blob = h->blob;
	se.len = h->blob_len;
	kvs__seg_address(rec.seg, &se, 1);
	n = 1 + nold;
	if (n > s->history)
		n = s->history;
	if (!(h->tab = malloc((size_t)n * KVS__HIST_REC))) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto out;
	}
	put_rec(h->tab, &rec);
	late = kvs__index_late(s, base);
	for (uint32_t i = 0; i + 1 < n && i < nold; i++) {
		/* A base committed late protects nothing it references (docs/design.md,
		 * *The pause hole closed*): its history object, created by that late
		 * writer, may already be judged by a gc that read the index before. Each
		 * carried record's object is touched first, like a reused segment; one
		 * found gone is dropped (fewer records is always safe). */
		if (late) {
			uint32_t sl;
			if ((rc = kvs__segw_slot_add(w, &sl)) < 0)
				goto out;
			memcpy(w->slots[sl].addr, old[i].seg, 16);
			w->slots[sl].ref = 1;
			if ((rc = kvs__segw_touch(w, sl)) == KVS_ENOTFOUND) {
				w->slots[sl].ref = 0;
				continue;
			}
			if (rc < 0)
				goto out;
		}
		put_rec(h->tab + (size_t)(1 + kept) * KVS__HIST_REC, &old[i]);
		kept++;
	}
	h->tab_len = (1 + kept) * KVS__HIST_REC;
	rc = 0;
out:
	free(raw);
	free(old);
	kvs__manifest_clear(&bm);
	if (rc < 0) {
		kvs__hstage_clear(h);
		h->on = s->history > 0;
	}
	return rc;
}

int kvs__hist_write(kvs__hstage *h, kvs__segw *w)
{
	uint8_t seg[16];
	uint8_t *blob;
	uint32_t sl;
	int rc;

	if (!h->on || !h->blob)
		return 0;
	/* a segment of its own: exactly the address the table records */
	if ((rc = kvs__segw_seal(w)) < 0)
		return rc;
	blob = h->blob;
	h->blob = NULL;
	if ((rc = kvs__segw_add(w, h->addr, blob, h->blob_len, &sl)) < 0)
		return rc;
	if ((rc = kvs__segw_seal(w)) < 0)
		return rc;
	memcpy(seg, h->tab + 32, 16);
	if (memcmp(w->slots[sl].addr, seg, 16) != 0)
		return kvs_error_set(KVS_ERROR, "internal: history object sealed under another address");
	w->slots[sl].ref = 1;
	h->slot = sl;
	h->has_slot = 1;
	return kvs__segw_flush(w);
}

int kvs__hist_apply(kvs__manifest *m, const kvs__hstage *h, kvs_store *s, uint64_t added)
{
	int64_t now = 0;
	int rc;

	if (!h->on)
		return 0;
	if ((rc = s->be->ops->now(s->be, &now)) < 0)
		return rc;
	m->v3 = 1;
	m->time_ms = now > 0 ? (uint64_t)now : 0;
	m->added = added;
	m->hist = h->tab;
	m->hist_len = h->tab_len;
	return 0;
}

void kvs__hist_detach(kvs__manifest *m)
{
	m->hist = NULL;
	m->hist_len = 0;
}

uint64_t kvs__hist_added(const kvs__hstage *h, const kvs__segw *w)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < w->nslots; i++)
		if (w->slots[i].state == KVS__SLOT_CREATED && w->slots[i].ref &&
		    !(h->has_slot && i == h->slot))
			sum += w->slots[i].bytes;
	return sum;
}

/* ---- kvs_history -------------------------------------------------------- */

static int64_t known(uint64_t v)
{
	return v == KVS__HIST_UNKNOWN || v > INT64_MAX ? -1 : (int64_t)v;
}

int kvs_history(kvs_version_info **out, size_t *n, kvs_ver *out_ver, kvs_store *s,
                const char *key, const kvs_history_options *opts)
{
	kvs_history_options o = KVS_HISTORY_OPTIONS_INIT;
	char name[KVS__NAME_BUF], what[KVS_KEY_MAX + 16];
	kvs_object *idx = NULL;
	kvs__manifest m;
	kvs__hentry *e = NULL;
	kvs_version_info *v = NULL;
	uint32_t ne = 0;
	size_t klen;
	int rc;

	if (!out || !n)
		return kvs_error_set(KVS_EINVAL, "kvs_history: out is NULL");
	*out = NULL;
	*n = 0;
	memset(&m, 0, sizeof(m));
	if ((rc = KVS__OPTS(&o, opts, history)) < 0)
		return rc;
	if (!s)
		return kvs_error_set(KVS_EINVAL, "store is NULL");
	if ((rc = kvs__key_to_index(name, s, key, &klen)) < 0)
		return rc;
	rc = s->be->ops->get(s->be, &idx, name);
	if (rc == KVS_ENOTFOUND)
		return kvs_error_set(KVS_ENOTFOUND, "key \"%s\" not found", key);
	if (rc < 0)
		return rc;
	if ((rc = kvs__index_decode(&m, s, idx, key, klen)) < 0)
		goto out;
	if (m.kind == KVS__MF_MAP) {
		rc = kvs_error_set(KVS_EUNSUPPORTED, "key \"%.200s\" holds a map: maps keep no history",
		                   key);
		goto out;
	}
	snprintf(what, sizeof(what), "key \"%.200s\"", key);
	if ((rc = kvs__hist_parse(&e, &ne, &m, what)) < 0)
		goto out;
	if (!(v = calloc((size_t)ne + 1, sizeof(*v)))) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto out;
	}
	v[0].generation = m.generation;
	v[0].time_ms = m.v3 ? known(m.time_ms) : -1;
	v[0].length = m.length;
	v[0].added = m.v3 ? known(m.added) : -1;
	v[0].current = 1;
	for (uint32_t i = 0; i < ne; i++) {
		v[i + 1].generation = e[i].gen;
		v[i + 1].time_ms = known(e[i].time_ms);
		v[i + 1].length = e[i].length;
		v[i + 1].added = known(e[i].added);
	}
	*out = v;
	*n = (size_t)ne + 1;
	if (out_ver)
		snprintf(out_ver->str, sizeof(out_ver->str), "%s", idx->resource_version);
out:
	free(e);
	kvs__manifest_clear(&m);
	kvs_object_free(idx);
	return rc;
}

/* ---- kvs_rollback ------------------------------------------------------- */

typedef struct rollback {
	kvs_store *s;
	const char *key;
	size_t klen;
	uint64_t target;
	kvs__commit c;
	kvs__segw w;
	kvs__wstats ws;
	kvs__hstage h;
	kvs__manifest src;     /* the version's index manifest (blob or indirect) */
	uint64_t base_gen;
} rollback;

/* Slots for the segments of one table, checked by their metadata; every one must be usable:
 * a rollback sends no value data, so it cannot write a damaged segment again. */
static int adopt_segs(rollback *R, const kvs__manifest *m, const char *part)
{
	uint32_t first = (uint32_t)R->w.nslots;
	char name[KVS__NAME_BUF];
	int rc;

	if (m->is_inline || !m->nsegs)
		return 0;
	for (uint32_t i = 0; i < m->nsegs; i++) {
		uint32_t sl;
		if ((rc = kvs__segw_slot_add(&R->w, &sl)) < 0)
			return rc;
		memcpy(R->w.slots[sl].addr, m->segs[i].addr, 16);
		R->w.slots[sl].bytes = m->segs[i].bytes;
		R->w.slots[sl].nchunks = m->segs[i].nchunks;
		R->w.slots[sl].ref = 1;
	}
	/* Touched, not just checked (`late` = 1): what a rollback reuses is protected
	 * only through the base's history, which the pause-hole argument does not
	 * cover; a rollback is rare, a touch per segment is cheap beside it. */
	if ((rc = kvs__segw_check_reuse(&R->w, first, m->nsegs, 1)) < 0)
		return rc;
	for (uint32_t i = 0; i < m->nsegs; i++) {
		if (R->w.slots[first + i].state == KVS__SLOT_REUSED ||
		    R->w.slots[first + i].state == KVS__SLOT_TOUCHED)
			continue;
		kvs__segment_name(name, R->s->name, m->segs[i].addr);
		return kvs_error_set(KVS_ECORRUPT, "key \"%.200s\": version %llu cannot be rolled back: "
		                     "%s segment %s is missing or damaged (run `kvsplit fsck`); nothing "
		                     "changed", R->key, (unsigned long long)R->target, part, name);
	}
	return 0;
}

/* The new index manifest: the version's, at the next generation, with history. */
static int rb_build(rollback *R)
{
	kvs__manifest m = R->src;
	uint8_t *mf = NULL;
	size_t mflen = 0;
	int rc;

	m.generation = R->base_gen + 1;
	m.v3 = 0;
	m.time_ms = 0;
	m.added = 0;
	m.hist = NULL;
	m.hist_len = 0;
	m.hist_bad = 0;
	if ((rc = kvs__hist_apply(&m, &R->h, R->s, 0)) < 0)
		return rc;
	rc = kvs__manifest_encode(&mf, &mflen, &m, R->s->manifest_max);
	if (rc < 0)
		return rc;
	kvs__commit_set(&R->c, mf, mflen, m.length, m.generation);
	return 0;
}

static int base_generation(rollback *R, const kvs_object *idx, uint64_t *gen)
{
	kvs__manifest m;
	int rc = kvs__index_decode(&m, R->s, idx, R->key, R->klen);

	*gen = m.generation;
	kvs__manifest_clear(&m);
	return rc;
}

static int rb_before(void *ctx)
{
	rollback *R = ctx;

	return kvs__segw_refresh(&R->w);
}

/* A blind rollback lost the race: the same version on the new base. */
static int rb_rebase(void *ctx, kvs__commit *c, const kvs_object *idx)
{
	rollback *R = ctx;
	int rc;

	(void)c;
	if (!idx)
		return kvs_error_set(KVS_ECONFLICT, "key \"%.200s\" was deleted during the rollback",
		                     R->key);
	if ((rc = base_generation(R, idx, &R->base_gen)) < 0)
		return rc;
	if ((rc = kvs__segw_rebase(&R->w, idx)) < 0)
		return rc;
	if ((rc = kvs__hist_prepare(&R->h, &R->w, idx, R->key, R->klen)) < 0 ||
	    (rc = kvs__hist_write(&R->h, &R->w)) < 0)
		return rc;
	return rb_build(R);
}

int kvs_rollback(kvs_ver *out, kvs_store *s, const char *key, uint64_t generation,
                 const kvs_rollback_options *opts)
{
	kvs_rollback_options o = KVS_ROLLBACK_OPTIONS_INIT;
	kvs_object *base = NULL;
	kvs__manifest val;
	char what[KVS_KEY_MAX + 48];
	rollback R;
	int rc;

	if ((rc = KVS__OPTS(&o, opts, rollback)) < 0)
		return rc;
	if (!s)
		return kvs_error_set(KVS_EINVAL, "store is NULL");
	if (generation == 0)
		return kvs_error_set(KVS_EINVAL, "kvs_rollback: version 0 does not exist (versions "
		                     "start at 1)");
	memset(&R, 0, sizeof(R));
	memset(&val, 0, sizeof(val));
	R.s = s;
	R.key = key;
	R.target = generation;
	kvs__segw_init(&R.w, s, key, &R.ws);
	if ((rc = kvs__commit_init(&R.c, s, key, o.expect_version, &R.ws)) < 0)
		goto out;
	R.klen = R.c.key_len;
	if ((rc = kvs__commit_read_base(&R.c, &base)) < 0)
		goto out;
	if (!base) {
		rc = kvs_error_set(KVS_ENOTFOUND, "key \"%s\" not found", key);
		goto out;
	}
	if ((rc = base_generation(&R, base, &R.base_gen)) < 0 ||
	    (rc = version_manifest(&R.src, s, base, key, R.klen, generation, &R.ws.requests)) < 0)
		goto out;
	if (R.src.kind == KVS__MF_INDIRECT) {
		/* its body's segments, then (from the body) its value's */
		if ((rc = adopt_segs(&R, &R.src, "manifest body")) < 0)
			goto out;
		snprintf(what, sizeof(what), "version %llu of key \"%.200s\"",
		         (unsigned long long)generation, key);
		{
			kvs__manifest copy;
			/* resolve takes its argument: resolve a shallow decode of the same bytes */
			memset(&copy, 0, sizeof(copy));
			rc = version_manifest(&copy, s, base, key, R.klen, generation, &R.ws.requests);
			if (rc == 0)
				rc = kvs__manifest_resolve(&val, s, &copy, what, &R.ws.requests);
			else
				kvs__manifest_clear(&copy);
		}
		if (rc < 0)
			goto out;
		if ((rc = adopt_segs(&R, &val, "value")) < 0)
			goto out;
	} else if ((rc = adopt_segs(&R, &R.src, "value")) < 0) {
		goto out;
	}
	if ((rc = kvs__hist_prepare(&R.h, &R.w, base, key, R.klen)) < 0 ||
	    (rc = kvs__hist_write(&R.h, &R.w)) < 0 || (rc = rb_build(&R)) < 0)
		goto out;
	{
		kvs__commit_hooks hk = { rb_before, rb_rebase, &R };
		rc = kvs__commit_run(out, &R.c, &hk);
	}
	if (rc == 0 && o.stats) {
		memset(o.stats, 0, sizeof(*o.stats));
		o.stats->raw_bytes = R.src.length;
		o.stats->chunks = R.src.kind == KVS__MF_INDIRECT ? val.nchunks : R.src.nchunks;
		o.stats->requests = R.ws.requests;
		o.stats->segments_written = R.ws.segments_written;
		o.stats->chunks_written = R.ws.chunks_written;
		o.stats->bytes_written = R.ws.bytes_written;
	}
out:
	kvs_object_free(base);
	kvs__manifest_clear(&val);
	kvs__manifest_clear(&R.src);
	kvs__hstage_clear(&R.h);
	kvs__segw_free(&R.w);
	kvs__commit_clear(&R.c);
	return rc;
}
