/*
 * fsck.c — check a store against its own hashes, like git fsck / restic
 * check: every index decodes and is named for its key, every referenced
 * segment exists with the right labels, and (on a deterministic sample of
 * segments, chosen by address) every referenced chunk decompresses to its
 * declared size and hashes to its address, the segment's content hashes to
 * its name, and the whole value hashes to the manifest's hash.
 *
 * Metadata checks (existence, labels, names) are always made; reading data
 * is limited to the sampled share (`read_data`). A key whose value is broken
 * is reported with exactly the byte ranges that are lost; fsck never deletes
 * or rewrites a key. Repair only deletes orphan segments, with the very rule
 * and preconditions of gc (gc.h), so it is as safe as gc.
 *
 * Orphans inside the grace period are normal (a put in flight, a version just
 * superseded): they are reported and counted in `orphans` but not in
 * `problems`; orphans past grace that remain are problems.
 *
 * What an index references is asked of refs.c, group by group, so a new
 * manifest kind needs no change here.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"

#include "codec.h"
#include "gc.h"
#include "listing.h"
#include "base/options.h"
#include "refs.h"

#define DETAIL_MAX 2048

typedef struct range {
	uint64_t off, len;
} range;

/* Per segment of the manifest being checked. */
typedef struct segstate {
	int missing;           /* not in the store */
	int corrupt;           /* a chunk of ours failed */
	int unusable;          /* fetched but malformed: every chunk in it is lost */
	char why[160];         /* first failure */
	range *lost;           /* byte ranges of the value it takes with it */
	size_t nlost, caplost;
} segstate;

typedef struct fsck {
	kvs_store *s;
	kvs_fsck_options o;
	kvs_fsck_report rep;
	kvs__segtab t;
	uint64_t sample_below;   /* sampled iff first 8 address bytes < this (or all) */
	int sample_all, sample_none;
	uint8_t *name_bad;       /* per table entry: content does not hash to its name */
	uint8_t *corrupt_seen;   /* per table entry: a chunk in it failed */
	int unreadable;          /* an index did not decode: repair deletes nothing (as gc) */
} fsck;

static void problem(fsck *f, kvs_fsck_kind kind, const char *key, const char *object,
                    int counts, int repaired, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

static void problem(fsck *f, kvs_fsck_kind kind, const char *key, const char *object,
                    int counts, int repaired, const char *fmt, ...)
{
	char detail[DETAIL_MAX];
	kvs_fsck_problem p;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (counts && !repaired)
		f->rep.problems++;
	if (repaired)
		f->rep.repaired++;
	if (!f->o.on_problem)
		return;
	p.kind = kind;
	p.key = key;
	p.object = object;
	p.detail = detail;
	p.repaired = repaired;
	f->o.on_problem(f->o.ctx, &p);
}

static int sampled(const fsck *f, const uint8_t addr[16])
{
	uint64_t v = 0;

	if (f->sample_all)
		return 1;
	if (f->sample_none)
		return 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | addr[i];
	return v < f->sample_below;
}

static int add_lost(segstate *ss, uint64_t off, uint64_t len)
{
	if (ss->nlost && ss->lost[ss->nlost - 1].off + ss->lost[ss->nlost - 1].len == off) {
		ss->lost[ss->nlost - 1].len += len;
		return 0;
	}
	if (ss->nlost == ss->caplost) {
		size_t n = ss->caplost ? ss->caplost * 2 : 8;
		range *nr = realloc(ss->lost, n * sizeof(*nr));
		if (!nr)
			return kvs_error_set(KVS_ENOMEM, "fsck: out of memory");
		ss->lost = nr;
		ss->caplost = n;
	}
	ss->lost[ss->nlost].off = off;
	ss->lost[ss->nlost].len = len;
	ss->nlost++;
	return 0;
}

/* "bytes 0-65535, 131072-196607 (131072 bytes)" within `cap`. */
static void format_lost(char *out, size_t cap, const segstate *ss)
{
	size_t o = 0;
	uint64_t total = 0;

	out[0] = '\0';
	for (size_t i = 0; i < ss->nlost; i++)
		total += ss->lost[i].len;
	o += (size_t)snprintf(out + o, cap - o, "bytes ");
	for (size_t i = 0; i < ss->nlost && o < cap - 64; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%llu-%llu", i ? ", " : "",
		                      (unsigned long long)ss->lost[i].off,
		                      (unsigned long long)(ss->lost[i].off + ss->lost[i].len - 1));
	if (o >= cap - 64)
		o = cap - 64;
	snprintf(out + o, cap - o, "%s (%llu bytes)", o >= cap - 64 ? ", ..." : "",
	         (unsigned long long)total);
}

static int labels_ok(const kvs_object *o, const char *store, const char *role, char *why,
                     size_t cap)
{
	const char *v;

	if (!(v = kvs_object_label(o, KVS__LABEL_STORE)) || strcmp(v, store) != 0)
		snprintf(why, cap, "label %s is \"%s\", want \"%s\"", KVS__LABEL_STORE, v ? v : "",
		         store);
	else if (!(v = kvs_object_label(o, KVS__LABEL_ROLE)) || strcmp(v, role) != 0)
		snprintf(why, cap, "label %s is \"%s\", want \"%s\"", KVS__LABEL_ROLE, v ? v : "",
		         role);
	else if (!(v = kvs_object_label(o, KVS__LABEL_MANAGED)) ||
	         strcmp(v, KVS__LABEL_MANAGED_VALUE) != 0)
		snprintf(why, cap, "label %s is \"%s\", want \"%s\"", KVS__LABEL_MANAGED, v ? v : "",
		         KVS__LABEL_MANAGED_VALUE);
	else
		return 1;
	return 0;
}

/*
 * Metadata of every segment a manifest references: mark it referenced, and
 * find out whether it exists and is labelled right. A segment that is not
 * in the step-(a) listing is looked up by name: it may have been created
 * since, or carry labels that hide it from the selector.
 */
static int check_seg_meta(fsck *f, const char *key, const kvs__refgroup *m, segstate *st)
{
	char name[KVS__NAME_BUF], why[256];

	for (uint32_t i = 0; i < m->nsegs; i++) {
		kvs__segent *e = kvs__segtab_find(&f->t, m->segs[i].addr);
		kvs__segment_name(name, f->s->name, m->segs[i].addr);
		if (e) {
			e->referenced = 1;
			if (!e->managed_ok)
				problem(f, KVS_FSCK_BAD_LABELS, key, name, 1, 0, "label %s is not \"%s\"",
				        KVS__LABEL_MANAGED, KVS__LABEL_MANAGED_VALUE);
			continue;
		}
		kvs_object *obj = NULL;
		int rc = f->s->be->ops->get(f->s->be, &obj, name);
		if (rc == KVS_ENOTFOUND) {
			st[i].missing = 1;
			continue;
		}
		if (rc < 0)
			return rc;
		if (!labels_ok(obj, f->s->name, KVS__ROLE_SEGMENT, why, sizeof(why)))
			problem(f, KVS_FSCK_BAD_LABELS, key, name, 1, 0, "%s", why);
		kvs_object_free(obj);
	}
	return 0;
}

/* Deep check of one chunk; 0 = good, 1 = bad (why filled), < 0 operational. */
static int check_chunk(fsck *f, const kvs__chunk_ref *c, kvs__segment *sg, uint8_t *scratch,
                       char *why, size_t cap)
{
	const kvs_blob *b = kvs__seg_find(sg, c->addr);
	uint8_t a[16];

	(void)f;
	if (!b) {
		snprintf(why, cap, "chunk is not in the segment");
		return 1;
	}
	if (b->len != c->stored_len) {
		snprintf(why, cap, "chunk stored size %zu, manifest says %u", b->len, c->stored_len);
		return 1;
	}
	if (kvs__blob_decode(scratch, c->raw_len, b->data, b->len) < 0) {
		snprintf(why, cap, "chunk does not decompress to %u bytes", c->raw_len);
		return 1;
	}
	kvs__addr_of(a, scratch, c->raw_len);
	if (memcmp(a, c->addr, 16) != 0) {
		snprintf(why, cap, "chunk fails its XXH3-128 check");
		return 1;
	}
	return 0;
}

/*
 * A sampled segment as the cluster holds it now: never from the cache,
 * whose copy was verified when it was fetched and says nothing about the
 * server's copy today. Not inserted either (a damaged one must not be).
 */
static int fetch_fresh(kvs__segment **out, fsck *f, const uint8_t addr[16])
{
	char name[KVS__NAME_BUF];
	kvs_object *obj = NULL;
	int rc;

	*out = NULL;
	kvs__segment_name(name, f->s->name, addr);
	rc = f->s->be->ops->get(f->s->be, &obj, name);
	if (rc == KVS_ENOTFOUND)
		return kvs_error_set(KVS_ENOTFOUND, "segment %s is missing", name);
	if (rc < 0)
		return rc;
	return kvs__seg_open(out, obj, addr, f->s->be->max_object_bytes);
}

/*
 * One group of chunks an index references (a value; refs.h): chunks in
 * order, each deep-checked when its segment is sampled, the group's whole
 * hash when every segment was.
 */
static int check_value(fsck *f, const char *key, const char *index_name,
                       const kvs__refgroup *m)
{
	segstate *st = NULL;
	uint8_t *scratch = NULL;
	XXH3_state_t whole;
	XXH128_canonical_t h;
	int rc = 0, complete = 1;
	kvs__segment *held = NULL;
	uint32_t held_seg = 0;
	uint64_t off = 0;
	char segname[KVS__NAME_BUF], lost[DETAIL_MAX / 2];

	XXH3_128bits_reset(&whole);
	if (m->is_inline) {
		if (f->sample_none)
			return 0;
		if (!(scratch = malloc(m->length ? (size_t)m->length : 1)))
			return kvs_error_set(KVS_ENOMEM, "fsck: out of memory");
		if (kvs__blob_decode(scratch, (size_t)m->length, m->inline_blob, m->inline_len) < 0) {
			problem(f, KVS_FSCK_BAD_INDEX, key, index_name, 1, 0,
			        "inline value does not decompress to %llu bytes: all bytes lost",
			        (unsigned long long)m->length);
		} else {
			XXH3_128bits_update(&whole, scratch, (size_t)m->length);
			XXH128_canonicalFromHash(&h, XXH3_128bits_digest(&whole));
			if (memcmp(h.digest, m->hash, 16) != 0)
				problem(f, KVS_FSCK_BAD_VALUE_HASH, key, index_name, 1, 0,
				        "inline value fails its XXH3-128 check: all %llu bytes lost",
				        (unsigned long long)m->length);
			else {
				f->rep.chunks_verified++;
				f->rep.bytes_verified += m->length;
			}
		}
		free(scratch);
		return 0;
	}

	if (!(st = calloc(m->nsegs ? m->nsegs : 1, sizeof(*st))) ||
	    !(scratch = malloc(m->chunk_max ? m->chunk_max : 1))) {
		rc = kvs_error_set(KVS_ENOMEM, "fsck: out of memory");
		goto out;
	}
	if ((rc = check_seg_meta(f, key, m, st)) < 0)
		goto out;

	for (uint32_t i = 0; i < m->nchunks; i++) {
		const kvs__chunk_ref *c = &m->chunks[i];
		segstate *ss = &st[c->seg];
		uint64_t coff = off;
		char why[160];

		off += c->raw_len;
		if (!ss->missing && !ss->unusable) {
			if (!sampled(f, m->segs[c->seg].addr)) {
				complete = 0;
				continue;
			}
			/* one segment held locally, read from the server: its
			 * chunks are mostly adjacent */
			if (!held || held_seg != c->seg) {
				kvs__seg_unref(held);
				held = NULL;
				rc = fetch_fresh(&held, f, m->segs[c->seg].addr);
				if (rc == KVS_ENOTFOUND) {
					ss->missing = 1;
				} else if (rc == KVS_ECORRUPT) {
					ss->unusable = 1;
					snprintf(ss->why, sizeof(ss->why), "%.150s", kvs_error_last());
				} else if (rc < 0) {
					goto out;
				} else {
					kvs__segent *e = kvs__segtab_find(&f->t, held->addr);
					held_seg = c->seg;
					if (e && !e->deep_done) {
						e->deep_done = 1;
						if (!held->verified)
							f->name_bad[e - f->t.v] = 1;
					}
				}
				rc = 0;
			}
			if (held && held_seg == c->seg) {
				if (!check_chunk(f, c, held, scratch, why, sizeof(why))) {
					f->rep.chunks_verified++;
					f->rep.bytes_verified += c->raw_len;
					XXH3_128bits_update(&whole, scratch, c->raw_len);
					continue;
				}
				kvs__cache_drop(f->s->cache, held->addr);
				kvs__segent *e = kvs__segtab_find(&f->t, held->addr);
				if (e)
					f->corrupt_seen[e - f->t.v] = 1;
				if (!ss->corrupt)
					snprintf(ss->why, sizeof(ss->why), "chunk %u: %.130s", i, why);
				ss->corrupt = 1;
			}
		}
		/* this chunk is lost */
		complete = 0;
		if ((rc = add_lost(ss, coff, c->raw_len)) < 0)
			goto out;
	}

	for (uint32_t j = 0; j < m->nsegs; j++) {
		if (!st[j].missing && !st[j].corrupt && !st[j].unusable)
			continue;
		kvs__segment_name(segname, f->s->name, m->segs[j].addr);
		format_lost(lost, sizeof(lost), &st[j]);
		if (st[j].missing)
			problem(f, KVS_FSCK_MISSING_SEGMENT, key, segname, 1, 0,
			        "segment is missing: %s of key \"%.200s\" are lost", lost, key);
		else
			problem(f, KVS_FSCK_CORRUPT_SEGMENT, key, segname, 1, 0,
			        "%s: %s of key \"%.200s\" are lost", st[j].why, lost, key);
	}
	if (complete && m->hash) {
		XXH128_canonicalFromHash(&h, XXH3_128bits_digest(&whole));
		if (memcmp(h.digest, m->hash, 16) != 0)
			problem(f, KVS_FSCK_BAD_VALUE_HASH, key, index_name, 1, 0,
			        "every chunk verifies but the whole value (%llu bytes) fails its "
			        "XXH3-128 check", (unsigned long long)m->length);
	}
out:
	kvs__seg_unref(held);
	if (st)
		for (uint32_t j = 0; j < m->nsegs; j++)
			free(st[j].lost);
	free(st);
	free(scratch);
	return rc;
}

/* One index being checked, for the references walk's callbacks. */
typedef struct idxcheck {
	fsck *f;
	const kvs_object *idx;
	char key[KVS_KEY_MAX + 1];
	const char *keyp;        /* the key, once known */
} idxcheck;

static int on_index(void *ctx, const char *key, size_t key_len)
{
	idxcheck *x = ctx;
	char name[KVS__NAME_BUF];

	/* From here on the manifest's own key is authoritative. */
	snprintf(x->key, sizeof(x->key), "%s", key);
	x->keyp = x->key;
	kvs__index_name(name, x->f->s->name, key, key_len);
	if (strcmp(name, x->idx->name) != 0)
		problem(x->f, KVS_FSCK_BAD_LABELS, x->keyp, x->idx->name, 1, 0,
		        "index holds key \"%.200s\", whose index name is %s", x->key, name);
	return 0;
}

static int on_group(void *ctx, const kvs__refgroup *g)
{
	idxcheck *x = ctx;
	fsck *f = x->f;
	char name[KVS__NAME_BUF];
	segstate *st;
	int rc;

	if (g->role == KVS__REF_VALUE && g->generation) {
		/* a version the key's history keeps: reported as key@version */
		char kv[KVS_KEY_MAX + 32];
		snprintf(kv, sizeof(kv), "%s@%llu", x->keyp ? x->keyp : "?",
		         (unsigned long long)g->generation);
		return check_value(f, kv, x->idx->name, g);
	}
	if (g->role == KVS__REF_VALUE)
		return check_value(f, x->keyp, x->idx->name, g);
	/* An indirect manifest's body: its segments are checked for existence
	 * and labels here; the body itself is read and verified by the walk. */
	if (!(st = calloc(g->nsegs ? g->nsegs : 1, sizeof(*st))))
		return kvs_error_set(KVS_ENOMEM, "fsck: out of memory");
	rc = check_seg_meta(f, x->keyp, g, st);
	for (uint32_t j = 0; rc == 0 && j < g->nsegs; j++) {
		if (!st[j].missing)
			continue;
		kvs__segment_name(name, f->s->name, g->segs[j].addr);
		if (g->role == KVS__REF_HISTORY)
			problem(f, KVS_FSCK_MISSING_SEGMENT, x->keyp, name, 1, 0,
			        "history object is missing: version %llu of key \"%.200s\" is lost "
			        "(the committed value is not affected)",
			        (unsigned long long)g->generation, x->key);
		else
			problem(f, KVS_FSCK_MISSING_SEGMENT, x->keyp, name, 1, 0,
			        "%smanifest body segment is missing: the whole value of key "
			        "\"%.200s\" is lost", g->generation ? "an older version's " : "", x->key);
	}
	free(st);
	return rc;
}

/*
 * Everything about one index object. What it references comes from refs.c
 * (every manifest kind: a new kind needs no change here); fsck checks each
 * group it is given.
 */
static int check_index(fsck *f, const kvs_object *idx)
{
	static const kvs__refs_cb cb = { on_index, on_group, NULL };
	idxcheck x;
	char why[256];
	int rc, stage;

	memset(&x, 0, sizeof(x));
	x.f = f;
	x.idx = idx;
	f->rep.indexes++;
	if (kvs__index_name_key(x.key, sizeof(x.key), f->s->name, idx->name) == 0)
		x.keyp = x.key;
	if (!labels_ok(idx, f->s->name, KVS__ROLE_INDEX, why, sizeof(why)))
		problem(f, KVS_FSCK_BAD_LABELS, x.keyp, idx->name, 1, 0, "%s", why);

	rc = kvs__refs_walk(f->s, idx, NULL, 0, &cb, &x, &stage, NULL);
	if (rc == 0 || stage == KVS__REFS_CALLBACK)
		return rc;
	if (rc == KVS_ENOMEM ||
	    (stage == KVS__REFS_LOAD && (rc == KVS_EIO || rc == KVS_EDENIED || rc == KVS_ETIMEOUT)))
		return rc;
	if (stage == KVS__REFS_HISTORY && (rc == KVS_EIO || rc == KVS_EDENIED || rc == KVS_ETIMEOUT))
		return rc;
	f->unreadable = 1;
	if (stage == KVS__REFS_HISTORY) {
		/* The committed value was checked; an older version cannot be read (a
		 * missing history object was reported by on_group). gc deletes nothing
		 * while this stands, and neither does --repair. */
		if (rc != KVS_ENOTFOUND)
			problem(f, KVS_FSCK_BAD_INDEX, x.keyp, idx->name, 1, 0, "%s", kvs_error_last());
		return 0;
	}
	/* A missing body segment was reported as such by on_group. */
	if (stage == KVS__REFS_DECODE || rc != KVS_ENOTFOUND)
		problem(f, KVS_FSCK_BAD_INDEX, x.keyp, idx->name, 1, 0, "%s; the whole value is lost",
		        kvs_error_last());
	return 0;
}

static int check_all(fsck *f)
{
	kvs__listing it;
	const kvs_object *o;
	int rc;

	kvs__listing_open(&it, f->s, KVS__ROLE_INDEX, KVS__GC_INDEX_PAGE, 0, NULL);
	while ((rc = kvs__listing_next(&it, &o)) > 0)
		if ((rc = check_index(f, o)) < 0)
			break;
	kvs__listing_close(&it);
	return rc;
}

static int check_one(fsck *f, const char *key)
{
	char name[KVS__NAME_BUF];
	kvs_object *idx = NULL;
	int rc;

	if ((rc = kvs__key_to_index(name, f->s, key, NULL)) < 0)
		return rc;
	rc = f->s->be->ops->get(f->s->be, &idx, name);
	if (rc == KVS_ENOTFOUND)
		return kvs_error_set(KVS_ENOTFOUND, "fsck: key \"%.200s\" not found", key);
	if (rc < 0)
		return rc;
	rc = check_index(f, idx);
	kvs_object_free(idx);
	return rc;
}

/* Orphans (whole-store runs only) and segments whose content does not hash
 * to their name. */
static int check_segments(fsck *f, int whole_store, int64_t now_ms)
{
	int64_t grace_ms = (int64_t)f->o.grace_s * 1000;
	int rc;

	for (size_t i = 0; i < f->t.n; i++)
		if (f->name_bad[i] && !f->corrupt_seen[i])
			problem(f, KVS_FSCK_BAD_LABELS, NULL, f->t.v[i].name, 1, 0,
			        "segment content does not hash to its name");
	if (!whole_store)
		return 0;
	for (size_t i = 0; i < f->t.n; i++) {
		const kvs__segent *e = &f->t.v[i];
		int outcome = KVS__GC_YOUNG, old;

		if (e->referenced)
			continue;
		f->rep.orphans++;
		old = e->t_ms != INT64_MAX && now_ms - e->t_ms > grace_ms;
		if (!e->managed_ok)
			problem(f, KVS_FSCK_BAD_LABELS, NULL, e->name, 1, 0, "label %s is not \"%s\"",
			        KVS__LABEL_MANAGED, KVS__LABEL_MANAGED_VALUE);
		if (!old) {
			problem(f, KVS_FSCK_ORPHAN, NULL, e->name, 0, 0,
			        "no index references it; inside the grace period (a put in flight or "
			        "a version just replaced), gc will collect it later");
			continue;
		}
		/* gc's rule: an index that cannot be decoded may reference any
		 * segment, so nothing is deleted (design.md). */
		if (f->o.repair && !f->unreadable &&
		    (rc = kvs__gc_collect_one(&outcome, f->s, e, now_ms, grace_ms, 0)) < 0)
			return rc;
		switch (outcome) {
		case KVS__GC_DELETED:
			problem(f, KVS_FSCK_ORPHAN, NULL, e->name, 1, 1,
			        "no index references it; deleted (%llu bytes)",
			        (unsigned long long)e->bytes);
			break;
		case KVS__GC_GONE:
			problem(f, KVS_FSCK_ORPHAN, NULL, e->name, 1, 1,
			        "no index referenced it; someone else deleted it meanwhile");
			break;
		case KVS__GC_RACED:
			problem(f, KVS_FSCK_ORPHAN, NULL, e->name, 0, 0,
			        "no index referenced it, but it was touched or reused meanwhile: kept");
			break;
		default:
			if (f->o.repair && f->unreadable)
				problem(f, KVS_FSCK_ORPHAN, NULL, e->name, 1, 0,
				        "no readable index references it (%llu bytes); past the grace "
				        "period, but kept: an index that cannot be decoded may reference it",
				        (unsigned long long)e->bytes);
			else
				problem(f, KVS_FSCK_ORPHAN, NULL, e->name, 1, 0,
				        "no index references it (%llu bytes); past the grace period: "
				        "`gc` or `fsck --repair` removes it", (unsigned long long)e->bytes);
			break;
		}
	}
	return 0;
}

int kvs_fsck(kvs_fsck_report *out, kvs_store *s, const kvs_fsck_options *opts)
{
	fsck f;
	int64_t now_ms = 0;
	int rc;

	memset(&f, 0, sizeof(f));
	if (out)
		memset(out, 0, sizeof(*out));
	if (!s)
		return kvs_error_set(KVS_EINVAL, "kvs_fsck: store is NULL");
	f.s = s;
	f.o = (kvs_fsck_options)KVS_FSCK_OPTIONS_INIT;
	if ((rc = KVS__OPTS(&f.o, opts, fsck)) < 0)
		return rc;
	if (isnan(f.o.read_data) || f.o.read_data > 1.0)
		return kvs_error_set(KVS_EINVAL, "kvs_fsck: read_data must be within 0..1");
	if (f.o.read_data == 0.0 || f.o.read_data >= 1.0)
		f.sample_all = 1;
	else if (f.o.read_data < 0.0)
		f.sample_none = 1;
	else
		f.sample_below = (uint64_t)ldexp(f.o.read_data, 64);
	if (!f.o.grace_s)
		f.o.grace_s = KVS__GC_DEF_GRACE_S;
	if (f.o.repair && f.o.grace_s <= s->opts.touch_window_s)
		return kvs_error_set(KVS_EINVAL, "kvs_fsck: grace %u s must exceed the touch window "
		                     "%u s", f.o.grace_s, s->opts.touch_window_s);

	/* Same order as gc: segments first, then indexes (design.md). */
	if ((rc = kvs__segtab_list(&f.t, s)) < 0)
		return rc;
	f.rep.segments = f.t.n;
	if (!(f.name_bad = calloc(f.t.n ? f.t.n : 1, 1)) ||
	    !(f.corrupt_seen = calloc(f.t.n ? f.t.n : 1, 1))) {
		rc = kvs_error_set(KVS_ENOMEM, "fsck: out of memory");
		goto done;
	}
	/* The server time of the orphan rule is read before any index, as in
	 * gc (design.md): a run that is slow or suspended while it checks the
	 * indexes must not judge a segment by a later clock. */
	if (!f.o.key && (rc = s->be->ops->now(s->be, &now_ms)) < 0)
		goto done;
	rc = f.o.key ? check_one(&f, f.o.key) : check_all(&f);
	if (rc == 0)
		rc = check_segments(&f, f.o.key == NULL, now_ms);
done:
	free(f.name_bad);
	free(f.corrupt_seen);
	kvs__segtab_clear(&f.t);
	if (out)
		*out = f.rep;
	return rc;
}
