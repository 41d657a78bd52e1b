/*
 * gc.c — garbage collection of unreferenced segments, exactly the three steps
 * of docs/design.md "Acknowledged means durable — and the gc race":
 *
 *   (a) list the store's segments, metadata only: r(S) and t(S);
 *   (b) then list every index and mark what it references (refs.c, for
 *       every manifest kind: a new kind needs no change here); one index
 *       that cannot be decoded stops the run before anything is deleted;
 *   (c) at the server time read when (b) starts, delete each unreferenced
 *       segment whose t(S) is older than the grace period, conditioned on r(S).
 *
 * The order matters and is the whole safety argument: (b) must read every
 * key after (a) listed the segments, the server time must be read before
 * (b) reads any key (a time read later would let a gc suspended inside (b)
 * take a segment committed after it read the key),
 * and the delete must carry r(S) so a touch or re-creation since (a) makes it
 * fail (409 = "raced", counted, never retried within the run).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gc.h"
#include "listing.h"
#include "base/options.h"
#include "refs.h"

/* ------------------------------------------------------------------------ */
/* Small helpers shared with fsck and watch                                  */

int kvs__parse_i64(const char *s, int64_t *out)
{
	int64_t v = 0;

	if (!s || !*s || strlen(s) > 19)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		if (v > (INT64_MAX - (*p - '0')) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	*out = v;
	return 0;
}

static int hexdigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int kvs__index_name_key(char *out, size_t cap, const char *store, const char *name)
{
	size_t sl = strlen(store), o = 0;
	const char *p;

	if (!cap || strncmp(name, "kvs.", 4) != 0 || strncmp(name + 4, store, sl) != 0 ||
	    strncmp(name + 4 + sl, ".i-", 3) != 0)
		return -1;
	for (p = name + 4 + sl + 3; *p; ) {
		int c;
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) {
			c = *p++;
		} else if (*p == '-' && hexdigit(p[1]) >= 0 && hexdigit(p[2]) >= 0) {
			c = hexdigit(p[1]) * 16 + hexdigit(p[2]);
			p += 3;
		} else {
			return -1;
		}
		if (o + 1 >= cap || c == 0)
			return -1;
		out[o++] = (char)c;
	}
	if (o == 0)
		return -1;
	out[o] = '\0';
	/* one spelling per key: "-61" for "a", a control byte or broken UTF-8
	 * is no key's name (fuzz/names_fuzzer.c) */
	{
		char back[KVS__NAME_BUF], saved[1024];
		int bad;

		/* only a report's helper: leave the thread's error detail alone */
		snprintf(saved, sizeof(saved), "%s", kvs_error_last());
		bad = kvs__key_check(out, o) < 0;
		kvs_error_set(0, "%s", saved);
		if (bad)
			return -1;
		kvs__index_name(back, store, out, o);
		if (strcmp(back, name) != 0)
			return -1;
	}
	return 0;
}

void kvs__index_describe(char *out, size_t cap, const char *store, const kvs_object *index)
{
	char key[KVS_KEY_MAX + 1];

	if (kvs__index_name_key(key, sizeof(key), store, index->name) == 0)
		snprintf(out, cap, "key \"%.200s\" (index %.253s)", key, index->name);
	else
		snprintf(out, cap, "index %.253s", index->name);
}

/* ------------------------------------------------------------------------ */
/* Step (a): the segment table                                               */

static int cmp_segent(const void *a, const void *b)
{
	return memcmp(((const kvs__segent *)a)->addr, ((const kvs__segent *)b)->addr, 16);
}

static char *dupstr(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p)
		memcpy(p, s, n);
	return p;
}

void kvs__segtab_clear(kvs__segtab *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].name);
		free(t->v[i].rv);
	}
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/*
 * t(S): the later of the creation time and the `touched` annotation (both
 * server ms). Anything we cannot read makes the segment look brand new:
 * an unreadable time must never make a segment eligible.
 */
static int64_t seg_time(const kvs_object *o)
{
	const char *touched = kvs_object_annotation(o, KVS__ANN_TOUCHED);
	int64_t t = o->created_ms, tt;

	if (t <= 0)
		return INT64_MAX;
	if (touched) {
		if (kvs__parse_i64(touched, &tt) < 0)
			return INT64_MAX;
		if (tt > t)
			t = tt;
	}
	return t;
}

static int segtab_add(kvs__segtab *t, const char *store, const kvs_object *o)
{
	kvs__segent *e;
	uint8_t addr[16];

	if (kvs__segment_name_parse(addr, store, o->name) < 0) {
		t->foreign++; /* not ours to judge, never deleted */
		return 0;
	}
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 256;
		if (ncap > KVS__GC_MAX_SEGMENTS)
			return kvs_error_set(KVS_ETOOBIG, "store %s has more than %u segments", store,
			                     KVS__GC_MAX_SEGMENTS);
		kvs__segent *nv = realloc(t->v, ncap * sizeof(*nv));
		if (!nv)
			return kvs_error_set(KVS_ENOMEM, "out of memory listing segments");
		t->v = nv;
		t->cap = ncap;
	}
	e = &t->v[t->n];
	memset(e, 0, sizeof(*e));
	memcpy(e->addr, addr, 16);
	e->name = dupstr(o->name);
	e->rv = dupstr(o->resource_version ? o->resource_version : "");
	if (!e->name || !e->rv) {
		free(e->name);
		free(e->rv);
		return kvs_error_set(KVS_ENOMEM, "out of memory listing segments");
	}
	e->t_ms = seg_time(o);
	e->bytes = o->data_bytes;
	{
		const char *m = kvs_object_label(o, KVS__LABEL_MANAGED);
		e->managed_ok = m && strcmp(m, KVS__LABEL_MANAGED_VALUE) == 0;
	}
	t->n++;
	return 0;
}

int kvs__segtab_list(kvs__segtab *t, kvs_store *s)
{
	kvs__listing it;
	const kvs_object *o;
	int rc;

	memset(t, 0, sizeof(*t));
	kvs__listing_open(&it, s, KVS__ROLE_SEGMENT, KVS__GC_SEG_PAGE, KVS_LIST_METADATA_ONLY, NULL);
	while ((rc = kvs__listing_next(&it, &o)) > 0)
		if ((rc = segtab_add(t, s->name, o)) < 0)
			break;
	kvs__listing_close(&it);
	if (rc < 0) {
		kvs__segtab_clear(t);
		return rc;
	}
	if (t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), cmp_segent);
	/* The same name twice (a backend serving overlapping pages) keeps one. */
	size_t w = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (w && memcmp(t->v[w - 1].addr, t->v[i].addr, 16) == 0) {
			free(t->v[i].name);
			free(t->v[i].rv);
			continue;
		}
		t->v[w++] = t->v[i];
	}
	t->n = w;
	return 0;
}

kvs__segent *kvs__segtab_find(const kvs__segtab *t, const uint8_t addr[16])
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(t->v[mid].addr, addr, 16);
		if (c == 0)
			return &t->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Step (c)                                                                  */

int kvs__gc_collect_one(int *outcome, kvs_store *s, const kvs__segent *e, int64_t now_ms,
                        int64_t grace_ms, int dry_run)
{
	int rc;

	*outcome = KVS__GC_YOUNG;
	if (e->referenced || e->t_ms == INT64_MAX || now_ms - e->t_ms <= grace_ms)
		return 0;
	if (dry_run) {
		*outcome = KVS__GC_DELETED;
		return 0;
	}
	/* An empty r(S) would make the delete unconditional: never. */
	if (!e->rv[0])
		return 0;
	rc = s->be->ops->remove(s->be, e->name, e->rv, NULL);
	if (rc == 0)
		*outcome = KVS__GC_DELETED;
	else if (rc == KVS_ECONFLICT)
		*outcome = KVS__GC_RACED;
	else if (rc == KVS_ENOTFOUND)
		*outcome = KVS__GC_GONE;
	else
		return rc;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Step (b)                                                                  */

static int mark_seg(void *ctx, const kvs__refgroup *g, uint32_t i, const char *name)
{
	kvs__segent *e = kvs__segtab_find(ctx, g->segs[i].addr);

	(void)name;
	if (e)
		e->referenced = 1;
	return 0;
}

/*
 * Mark every segment one index references, whatever its manifest kind
 * (refs.c knows them; an indirect manifest's body segments count too). Any
 * failure is fatal to the run.
 */
static int mark_index(kvs__segtab *t, kvs_store *s, const kvs_object *index)
{
	static const kvs__refs_cb cb = { NULL, NULL, mark_seg };
	char what[512];
	int rc = kvs__refs_walk(s, index, NULL, 0, &cb, t, NULL, NULL);

	if (rc < 0) {
		char detail[1024];
		snprintf(detail, sizeof(detail), "%s", kvs_error_last());
		kvs__index_describe(what, sizeof(what), s->name, index);
		return kvs_error_set(rc == KVS_ENOMEM || rc == KVS_EIO || rc == KVS_ETIMEOUT ||
		                     rc == KVS_EDENIED ? rc : KVS_ECORRUPT,
		                     "gc: %s cannot be read, nothing deleted: %s", what, detail);
	}
	return 0;
}

static int mark_all(kvs__segtab *t, kvs_store *s, uint64_t *indexes)
{
	kvs__listing it;
	const kvs_object *o;
	int rc;

	kvs__listing_open(&it, s, KVS__ROLE_INDEX, KVS__GC_INDEX_PAGE, 0, NULL);
	while ((rc = kvs__listing_next(&it, &o)) > 0) {
		rc = mark_index(t, s, o);
		(*indexes)++;
		if (rc < 0)
			break;
	}
	kvs__listing_close(&it);
	return rc;
}

/* ------------------------------------------------------------------------ */

static void sleep_until(struct timespec *when)
{
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, when, NULL) == EINTR)
		;
}

static void ts_add_ns(struct timespec *t, int64_t ns)
{
	t->tv_sec += (time_t)(ns / 1000000000);
	t->tv_nsec += (long)(ns % 1000000000);
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

int kvs_gc(kvs_gc_report *out, kvs_store *s, const kvs_gc_options *opts)
{
	kvs_gc_options o = KVS_GC_OPTIONS_INIT;
	kvs_gc_report rep;
	kvs__segtab t;
	int64_t now_ms = 0, grace_ms;
	struct timespec next_delete = { 0, 0 };
	int64_t spacing_ns = 0;
	int rc;

	memset(&rep, 0, sizeof(rep));
	if (out)
		*out = rep;
	if (!s)
		return kvs_error_set(KVS_EINVAL, "kvs_gc: store is NULL");
	if ((rc = KVS__OPTS(&o, opts, gc)) < 0)
		return rc;
	if (!o.grace_s)
		o.grace_s = KVS__GC_DEF_GRACE_S;
	/* G must exceed W (design.md): refuse a grace that breaks the argument. */
	if (o.grace_s <= s->opts.touch_window_s)
		return kvs_error_set(KVS_EINVAL, "kvs_gc: grace %u s must exceed the touch window "
		                     "%u s", o.grace_s, s->opts.touch_window_s);
	if (!(o.max_deletes_per_s >= 0.0) || o.max_deletes_per_s > 1e6)
		return kvs_error_set(KVS_EINVAL, "kvs_gc: max_deletes_per_s out of range");
	if (o.max_deletes_per_s > 0)
		spacing_ns = (int64_t)(1e9 / o.max_deletes_per_s);
	grace_ms = (int64_t)o.grace_s * 1000;

	/* (a) */
	if ((rc = kvs__segtab_list(&t, s)) < 0)
		return rc;
	rep.segments = t.n;
	/* Server time, before (b): every key is read at or after it, so a
	 * segment older than G at this time was older than G when gc read any
	 * key that might reference it (design.md). Read after (b), a gc that is
	 * slow or suspended inside (b) would judge a segment committed after it
	 * read that key by a later clock. */
	if ((rc = s->be->ops->now(s->be, &now_ms)) < 0)
		goto done;
	/* (b) */
	if ((rc = mark_all(&t, s, &rep.indexes)) < 0)
		goto done;
	for (size_t i = 0; i < t.n; i++)
		rep.referenced += t.v[i].referenced;
	/* (c) */
	clock_gettime(CLOCK_MONOTONIC, &next_delete);
	for (size_t i = 0; i < t.n; i++) {
		const kvs__segent *e = &t.v[i];
		int outcome;

		if (e->referenced)
			continue;
		if (spacing_ns && !o.dry_run && now_ms - e->t_ms > grace_ms && e->t_ms != INT64_MAX) {
			sleep_until(&next_delete);
			clock_gettime(CLOCK_MONOTONIC, &next_delete);
			ts_add_ns(&next_delete, spacing_ns);
		}
		if ((rc = kvs__gc_collect_one(&outcome, s, e, now_ms, grace_ms, o.dry_run)) < 0) {
			char detail[1024];
			snprintf(detail, sizeof(detail), "%s", kvs_error_last());
			rc = kvs_error_set(rc, "gc: deleting segment %s: %s", e->name, detail);
			goto done;
		}
		switch (outcome) {
		case KVS__GC_YOUNG:
			rep.young++;
			break;
		case KVS__GC_DELETED:
			rep.deleted++;
			rep.bytes_freed += e->bytes;
			if (o.on_segment && o.on_segment(o.ctx, e->name, e->bytes) != 0) {
				rc = kvs_error_set(KVS_ECANCELED, "gc: stopped by on_segment after %s",
				                   e->name);
				goto done;
			}
			break;
		case KVS__GC_RACED:
			rep.raced++;
			break;
		default: /* already gone: someone else collected it */
			break;
		}
	}
	rc = 0;
done:
	kvs__segtab_clear(&t);
	if (out)
		*out = rep;
	return rc;
}
