/*
 * test_reflector.c — suite `reflector`: the reflector (kube/reflector.h)
 * driven directly over the in-memory backend (store/reflect.h): it resumes
 * a dropped stream from the last resourceVersion or bookmark without
 * duplicates or gaps, relists after 410 Gone and reports what changed while
 * away (over several pages), drops replays older than what it saw, keeps an
 * object cache on request, and backs off while the source is down. Always
 * runs on memory (it needs the backend's compaction and counters).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/reflector.h"
#include "store/reflect.h"
#include "support/fixture.h"

#define SEL "app=rf"
#define WAIT_MS 2000

/*
 * A source that forwards to the backend source and breaks the stream on
 * demand, as a dropped connection does: watch_next fails with KVS_EIO
 * `drop` times; while `down`, watch_open fails too. It records every
 * watch_open's from_rv and counts lists and opens.
 */
typedef struct tsrc {
	kvs__obj_source inner;
	int drop, down;
	unsigned lists, opens, drops_done;
	char from[64][KVS_VER_MAX];
} tsrc;

static tsrc T;
static kvs_backend *wb, *rb;      /* writer and reflector handles of one cluster */

static int t_list(void *src, kvs__rf_page *out, const char *sel, size_t limit, const char *tok)
{
	T.lists++;
	return kvs__obj_source_ops.list(&T.inner, out, sel, limit, tok);
}

static int t_watch_open(void *src, void **out, const char *sel, const char *from_rv)
{
	*out = NULL;
	snprintf(T.from[T.opens % 64], sizeof(T.from[0]), "%s", from_rv);
	T.opens++;
	if (T.down)
		return kvs_error_set(KVS_EIO, "test source: connection refused");
	return kvs__obj_source_ops.watch_open(&T.inner, out, sel, from_rv);
}

static int t_watch_next(void *w, kvs__rf_wevent *out, int timeout_ms)
{
	if (T.down || T.drop > 0) {
		if (T.drop > 0)
			T.drop--;
		T.drops_done++;
		return kvs_error_set(KVS_EIO, "test source: connection reset");
	}
	return kvs__obj_source_ops.watch_next(w, out, timeout_ms);
}

static void t_watch_close(void *w)
{
	kvs__obj_source_ops.watch_close(w);
}

static const kvs__rf_source_ops t_ops = {
	KVS__RF_SOURCE_OPS_VERSION, t_list, t_watch_open, t_watch_next, t_watch_close,
};

static void setup(void)
{
	kvs_mem_options o = KVS_MEM_OPTIONS_INIT;

	o.history = 100;
	cr_assert_eq(kvs_backend_mem(&wb, &o), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_backend_mem_clone(&rb, wb), 0, "%s", kvs_error_last());
	memset(&T, 0, sizeof(T));
	T.inner.be = rb;
	/* a fresh cluster is at revision 0, where "watch from 0" means "the
	 * current state": move off it */
	kvs_object *o0 = kvs_object_new("warm-up");
	cr_assert_eq(wb->ops->create(wb, NULL, o0), 0, "%s", kvs_error_last());
	kvs_object_free(o0);
}

static void teardown(void)
{
	kvs_backend_free(rb);
	kvs_backend_free(wb);
}

TestSuite(reflector, .init = setup, .fini = teardown, .timeout = 60);

/* Create or replace `name` (labelled app=rf unless `unlabelled`); returns
 * the new resourceVersion in rv. */
static void put_obj(char rv[KVS_VER_MAX], const char *name, const char *data, int unlabelled)
{
	kvs_object *o = kvs_object_new(name), *out = NULL;
	cr_assert_not_null(o);
	if (!unlabelled)
		cr_assert_eq(kvs_object_set_label(o, "app", "rf"), 0);
	cr_assert_eq(kvs_object_add_data(o, "d", data, strlen(data)), 0);
	int rc = wb->ops->create(wb, &out, o);
	if (rc == KVS_EEXISTS)
		rc = wb->ops->replace(wb, &out, o);
	cr_assert_eq(rc, 0, "put %s: %s", name, kvs_error_last());
	if (rv)
		snprintf(rv, KVS_VER_MAX, "%s", out->resource_version);
	kvs_object_free(out);
	kvs_object_free(o);
}

static void del_obj(const char *name)
{
	cr_assert_eq(wb->ops->remove(wb, name, NULL, NULL), 0, "delete %s: %s", name,
	             kvs_error_last());
}

static kvs__reflector *open_rf(size_t page_limit, int keep)
{
	kvs__reflector_options o = KVS__REFLECTOR_OPTIONS_INIT;
	kvs__reflector *r = NULL;

	o.name = "test";
	o.selector = SEL;
	o.page_limit = page_limit;
	o.keep_objects = keep;
	int rc = kvs__reflector_open(&r, &t_ops, &T, &kvs__obj_item_ops, &o);
	cr_assert_eq(rc, 0, "kvs__reflector_open: %s (%s)", kvs_strerror(rc), kvs_error_last());
	return r;
}

typedef struct got {
	kvs__rf_type type;
	char key[64];
	char rv[KVS_VER_MAX];
	int resync;
	int has_item;
} got;

/* Collect events until the reflector stays quiet for 300 ms. */
static size_t drain(kvs__reflector *r, got *g, size_t cap)
{
	size_t n = 0;
	for (;;) {
		kvs__rf_event ev;
		int rc = kvs__reflector_next(&ev, r, 300);
		if (rc == KVS_ETIMEOUT)
			return n;
		cr_assert_eq(rc, 0, "next: %s (%s)", kvs_strerror(rc), kvs_error_last());
		cr_assert_lt(n, cap, "more events than expected (%s)", ev.key);
		g[n].type = ev.type;
		snprintf(g[n].key, sizeof(g[n].key), "%s", ev.key);
		snprintf(g[n].rv, sizeof(g[n].rv), "%s", ev.rv);
		g[n].resync = ev.resync;
		g[n].has_item = ev.item != NULL;
		n++;
	}
}

static const got *find(const got *g, size_t n, const char *key)
{
	const got *hit = NULL;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(g[i].key, key) == 0) {
			cr_assert_null(hit, "%s reported twice", key);
			hit = &g[i];
		}
	}
	return hit;
}

/* ------------------------------------------------------------------------ */

Test(reflector, lists_then_reports_each_write_once_in_order)
{
	char rv[8][KVS_VER_MAX];
	put_obj(NULL, "a", "1", 0);
	put_obj(NULL, "b", "1", 0);
	put_obj(NULL, "other", "1", 1);
	kvs__reflector *r = open_rf(0, 0);
	got g[16];
	size_t n = drain(r, g, 16);
	cr_assert_eq(n, 2);
	cr_assert(g[0].type == KVS__RF_ADDED && strcmp(g[0].key, "a") == 0);
	cr_assert(g[1].type == KVS__RF_ADDED && strcmp(g[1].key, "b") == 0);
	cr_assert(kvs__reflector_synced(r));

	put_obj(rv[0], "a", "2", 0);
	put_obj(rv[1], "c", "1", 0);
	del_obj("b");
	n = drain(r, g, 16);
	cr_assert_eq(n, 3);
	cr_assert(g[0].type == KVS__RF_MODIFIED && strcmp(g[0].key, "a") == 0);
	cr_assert_str_eq(g[0].rv, rv[0]);
	cr_assert(g[1].type == KVS__RF_ADDED && strcmp(g[1].key, "c") == 0);
	cr_assert_str_eq(g[1].rv, rv[1]);
	cr_assert(g[2].type == KVS__RF_DELETED && strcmp(g[2].key, "b") == 0);
	cr_assert_eq(g[0].resync + g[1].resync + g[2].resync, 0);
	cr_assert_eq(kvs__reflector_count(r), 2);
	kvs__reflector_close(r);
}

Test(reflector, resumes_a_dropped_stream_from_the_last_rv_without_duplicates_or_gaps)
{
	put_obj(NULL, "a", "0", 0);
	kvs__reflector *r = open_rf(0, 0);
	got g[32];
	cr_assert_eq(drain(r, g, 32), 1);

	for (int round = 0; round < 4; round++) {
		char rv[6][KVS_VER_MAX], name[32], data[32];
		for (int i = 0; i < 6; i++) {
			snprintf(name, sizeof(name), "k%d", i % 3);
			snprintf(data, sizeof(data), "%d.%d", round, i);
			put_obj(rv[i], name, data, 0);
		}
		/* read two, then the stream breaks in the middle of the burst */
		for (int i = 0; i < 2; i++) {
			kvs__rf_event ev;
			cr_assert_eq(kvs__reflector_next(&ev, r, WAIT_MS), 0, "%s", kvs_error_last());
			cr_assert_str_eq(ev.rv, rv[i], "round %d event %d", round, i);
		}
		char resume[KVS_VER_MAX];
		snprintf(resume, sizeof(resume), "%s", kvs__reflector_rv(r));
		cr_assert_str_eq(resume, rv[1], "resume point is not the last event's version");
		unsigned opens = T.opens, lists = T.lists;
		T.drop = 1 + round % 2;
		size_t n = drain(r, g, 32);
		cr_assert_eq(n, 4, "round %d: %zu events after the drop, want 4", round, n);
		for (size_t i = 0; i < 4; i++)
			cr_assert_str_eq(g[i].rv, rv[i + 2], "round %d: gap or duplicate at %zu",
			                 round, i);
		cr_assert_gt(T.opens, opens, "the stream was never reopened");
		cr_assert_str_eq(T.from[opens % 64], resume, "reopened from %s, not from %s",
		                 T.from[opens % 64], resume);
		cr_assert_eq(T.lists, lists, "relisted after a dropped stream");
	}
	cr_assert_geq(T.drops_done, 6);
	kvs__reflector_close(r);
}

Test(reflector, resumes_from_a_bookmark)
{
	char rv_a[KVS_VER_MAX], rv_last[KVS_VER_MAX];
	put_obj(rv_a, "a", "1", 0);
	kvs__reflector *r = open_rf(0, 0);
	got g[8];
	cr_assert_eq(drain(r, g, 8), 1);

	/* unrelated writes the stream reads past while idle (fewer than the
	 * 100 the history keeps): the server's bookmark carries the revision */
	char name[32];
	unsigned lists0 = T.lists;
	for (int i = 0; i < 80; i++) {
		snprintf(name, sizeof(name), "noise-%d", i);
		put_obj(rv_last, name, "x", 1);
	}
	kvs__rf_event ev;
	cr_assert_eq(kvs__reflector_next(&ev, r, 300), KVS_ETIMEOUT);
	cr_assert_eq(T.lists, lists0, "relisted while idle");
	cr_assert_str_eq(kvs__reflector_rv(r), rv_last, "no bookmark was noted (rv %s, a at %s)",
	                 kvs__reflector_rv(r), rv_a);
	/* more of them: now a's version is compacted away, the bookmark's is not */
	for (int i = 80; i < 160; i++) {
		snprintf(name, sizeof(name), "noise-%d", i);
		put_obj(NULL, name, "x", 1);
	}
	unsigned opens = T.opens, lists = T.lists;
	T.drop = 1;
	char rv2[KVS_VER_MAX];
	put_obj(rv2, "a", "2", 0);
	cr_assert_eq(kvs__reflector_next(&ev, r, WAIT_MS), 0, "%s", kvs_error_last());
	cr_assert_eq(ev.type, KVS__RF_MODIFIED);
	cr_assert_str_eq(ev.rv, rv2);
	cr_assert_eq(ev.resync, 0, "resumed by relisting");
	cr_assert_eq(T.lists, lists, "relisted: the reopen did not start from the bookmark");
	cr_assert_str_eq(T.from[opens % 64], rv_last);
	kvs__reflector_close(r);
}

Test(reflector, relists_after_410_and_reports_adds_modifies_deletes_while_away)
{
	put_obj(NULL, "same", "s", 0);
	put_obj(NULL, "changed", "c", 0);
	put_obj(NULL, "deleted", "d", 0);
	kvs__reflector *r = open_rf(0, 0);
	got g[16];
	cr_assert_eq(drain(r, g, 16), 3);

	char vc[KVS_VER_MAX], vn[KVS_VER_MAX], vd[KVS_VER_MAX];
	const char *vdp;
	cr_assert(kvs__reflector_get(r, "deleted", &vdp, NULL));
	snprintf(vd, sizeof(vd), "%s", vdp);
	put_obj(NULL, "changed", "c2", 0);
	put_obj(vc, "changed", "c3", 0);
	del_obj("deleted");
	put_obj(vn, "new", "n", 0);
	kvs_mem_compact(wb);
	unsigned lists = T.lists;
	T.drop = 1; /* the reopen from the old revision meets 410 */

	size_t n = drain(r, g, 16);
	cr_assert_eq(n, 3, "%zu events, want 3", n);
	const got *c = find(g, n, "changed"), *d = find(g, n, "deleted"), *nw = find(g, n, "new");
	cr_assert_null(find(g, n, "same"), "unchanged key reported");
	cr_assert(c && d && nw);
	cr_assert_eq(c->type, KVS__RF_MODIFIED);
	cr_assert_str_eq(c->rv, vc, "relist reported an old version");
	cr_assert_eq(d->type, KVS__RF_DELETED);
	cr_assert_str_eq(d->rv, vd, "a key found gone reports its last version");
	cr_assert_eq(d->has_item, 0);
	cr_assert_eq(nw->type, KVS__RF_ADDED);
	cr_assert_str_eq(nw->rv, vn);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(g[i].resync, 1, "%s not marked resync", g[i].key);
	cr_assert_gt(T.lists, lists, "no relist");
	cr_assert_eq(kvs__reflector_count(r), 3);
	cr_assert_not(kvs__reflector_get(r, "deleted", NULL, NULL));
	kvs__reflector_close(r);
}

Test(reflector, relist_over_several_pages_reports_every_change)
{
	char name[32];
	for (int i = 0; i < 9; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		put_obj(NULL, name, "0", 0);
	}
	unsigned lists0 = T.lists;
	kvs__reflector *r = open_rf(2, 0);
	got g[32];
	cr_assert_eq(drain(r, g, 32), 9);
	cr_assert_geq(T.lists - lists0, 5, "the listing was not paged");

	char v1[KVS_VER_MAX], v4[KVS_VER_MAX], v7[KVS_VER_MAX], v9[KVS_VER_MAX];
	put_obj(v1, "p1", "1", 0);
	put_obj(v4, "p4", "1", 0);
	put_obj(v7, "p7", "1", 0);
	del_obj("p2");
	del_obj("p8");
	put_obj(v9, "p9", "1", 0);
	kvs_mem_compact(wb);
	unsigned lists = T.lists;
	T.drop = 1;
	size_t n = drain(r, g, 32);
	cr_assert_eq(n, 6, "%zu events, want 6", n);
	cr_assert_geq(T.lists - lists, 4, "the relist was not paged");
	const char *mod[] = { "p1", "p4", "p7" }, *modv[] = { v1, v4, v7 };
	for (int i = 0; i < 3; i++) {
		const got *e = find(g, n, mod[i]);
		cr_assert(e && e->type == KVS__RF_MODIFIED && e->resync, "%s", mod[i]);
		cr_assert_str_eq(e->rv, modv[i]);
	}
	cr_assert(find(g, n, "p2") && find(g, n, "p2")->type == KVS__RF_DELETED);
	cr_assert(find(g, n, "p8") && find(g, n, "p8")->type == KVS__RF_DELETED);
	const got *a = find(g, n, "p9");
	cr_assert(a && a->type == KVS__RF_ADDED && a->resync);
	cr_assert_str_eq(a->rv, v9);
	cr_assert_eq(kvs__reflector_count(r), 8);
	kvs__reflector_close(r);
}

/*
 * The first page is read at open; the second comes from a newer state (the
 * in-memory backend serves each page from the current state). A key on the
 * second page deleted and created again in between is listed at its new
 * version; the watch from the first page's revision then replays its
 * deletion and re-creation, both older than or equal to what was listed:
 * history, dropped.
 */
Test(reflector, drops_a_stale_replay_older_than_the_listed_version)
{
	put_obj(NULL, "a0", "1", 0);
	put_obj(NULL, "a1", "1", 0);
	put_obj(NULL, "k", "old", 0);
	kvs__reflector *r = open_rf(2, 0); /* page 1: a0, a1 */
	char vk[KVS_VER_MAX];
	del_obj("k");
	put_obj(vk, "k", "new", 0);

	got g[16];
	size_t n = drain(r, g, 16);
	cr_assert_eq(n, 3, "%zu events, want 3 (the replayed delete or add was reported)", n);
	const got *k = find(g, n, "k");
	cr_assert(k && k->type == KVS__RF_ADDED);
	cr_assert_str_eq(k->rv, vk);
	const char *held;
	cr_assert(kvs__reflector_get(r, "k", &held, NULL), "the reflector lost k");
	cr_assert_str_eq(held, vk);
	/* the replay did happen: the stream went past k's re-creation */
	cr_assert_geq(strtoull(kvs__reflector_rv(r), NULL, 10), strtoull(vk, NULL, 10));
	kvs__reflector_close(r);
}

Test(reflector, keeps_objects_when_asked)
{
	put_obj(NULL, "a", "one", 0);
	kvs__reflector *r = open_rf(0, 1);
	got g[8];
	cr_assert_eq(drain(r, g, 8), 1);
	char rv[KVS_VER_MAX];
	put_obj(rv, "a", "two", 0);
	cr_assert_eq(drain(r, g, 8), 1);
	void *item;
	const char *held;
	cr_assert(kvs__reflector_get(r, "a", &held, &item));
	cr_assert_str_eq(held, rv);
	const kvs_blob *b = kvs_object_data(item, "d");
	cr_assert(b && b->len == 3 && memcmp(b->data, "two", 3) == 0, "cache holds an old object");

	/* a key found gone by a relist comes with its last state */
	del_obj("a");
	kvs_mem_compact(wb);
	T.drop = 1;
	size_t n = drain(r, g, 8);
	cr_assert_eq(n, 1);
	cr_assert_eq(g[0].type, KVS__RF_DELETED);
	cr_assert(g[0].has_item, "the cached object was not handed with the deletion");
	cr_assert_not(kvs__reflector_get(r, "a", NULL, NULL));
	kvs__reflector_close(r);
}

Test(reflector, backs_off_while_the_source_is_down_and_recovers)
{
	put_obj(NULL, "a", "1", 0);
	kvs__reflector *r = open_rf(0, 0);
	got g[8];
	cr_assert_eq(drain(r, g, 8), 1);
	T.down = 1;
	unsigned opens = T.opens;
	kvs__rf_event ev;
	int rc = kvs__reflector_next(&ev, r, 400);
	cr_assert_eq(rc, KVS_EIO, "during an outage: %s", kvs_strerror(rc));
	cr_assert(strstr(kvs_error_last(), "connection refused"), "%s", kvs_error_last());
	/* 10, 20, 40, 80, 160 ms ... inside 400 ms: a handful of attempts */
	unsigned tries = T.opens - opens;
	cr_assert(tries >= 3 && tries <= 8, "%u reopen attempts in 400 ms", tries);
	T.down = 0;
	char rv[KVS_VER_MAX];
	put_obj(rv, "a", "2", 0);
	cr_assert_eq(kvs__reflector_next(&ev, r, WAIT_MS), 0, "%s", kvs_error_last());
	cr_assert_str_eq(ev.rv, rv);
	kvs__reflector_close(r);
}

Test(reflector, redelivers_an_event_the_caller_could_not_handle)
{
	put_obj(NULL, "a", "1", 0);
	kvs__reflector *r = open_rf(0, 0);
	kvs__rf_event ev, again;
	cr_assert_eq(kvs__reflector_next(&ev, r, WAIT_MS), 0);
	kvs_error_set(KVS_EIO, "caller: segment fetch failed");
	kvs__reflector_redeliver(r, KVS_EIO);
	/* no time for the backoff: the caller's error comes back */
	cr_assert_eq(kvs__reflector_next(&again, r, 0), KVS_EIO);
	cr_assert(strstr(kvs_error_last(), "segment fetch failed"), "%s", kvs_error_last());
	cr_assert_eq(kvs__reflector_next(&again, r, WAIT_MS), 0);
	cr_assert_eq(again.type, KVS__RF_ADDED);
	cr_assert_str_eq(again.key, "a");
	cr_assert_eq(again.item, ev.item);
	got g[4];
	cr_assert_eq(drain(r, g, 4), 0, "the event came a third time");
	kvs__reflector_close(r);
}

Test(reflector, rejects_bad_arguments)
{
	kvs__reflector *r = (kvs__reflector *)1;
	kvs__reflector_options o = KVS__REFLECTOR_OPTIONS_INIT;
	cr_assert_eq(kvs__reflector_open(&r, NULL, &T, &kvs__obj_item_ops, NULL), KVS_EINVAL);
	cr_assert_null(r);
	o.version = 99;
	cr_assert_eq(kvs__reflector_open(&r, &t_ops, &T, &kvs__obj_item_ops, &o), KVS_EINVAL);
	o.version = KVS__REFLECTOR_OPTIONS_VERSION;
	o.since = "";
	cr_assert_eq(kvs__reflector_open(&r, &t_ops, &T, &kvs__obj_item_ops, &o), KVS_EINVAL);
	kvs__reflector_close(NULL);
}
