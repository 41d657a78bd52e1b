/*
 * test_watch.c — suite `watch`: a watch on a key or a prefix delivers every
 * committed change in order, whole verified values on request, and always
 * ends at the final state of every key even across dropped connections and
 * compacted history.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kvsplit.h>
#include <kvsplit/backend.h>

#include "support/fixture.h"

#define STORE "wt"
#define SEG_SELECTOR "kvsplit.io/store=" STORE ",kvsplit.io/role=segment"
#define WAIT_MS 2000

static int is_memory(void)
{
	return strcmp(fx_backend_kind(), "memory") == 0;
}

static void skip_unless_memory(void)
{
	if (!is_memory())
		cr_skip_test("needs the in-memory backend's fault injection (backend is %s)",
		             fx_backend_kind());
}

static kvs_store *open_store(kvs_backend *b)
{
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_store *st = NULL;

	o.name = STORE;
	o.chunk_min = 2048;
	o.chunk_avg = 8192;
	o.chunk_max = 32768;
	o.inline_max = 1024;
	o.segment_target = 24 * 1024;
	int rc = kvs_open(&st, b, &o);
	cr_assert_eq(rc, 0, "kvs_open: %s", kvs_error_last());
	return st;
}

/* A writer store and a watcher store on two handles of one cluster. */
static void open_pair(kvs_backend **wb, kvs_store **wst, kvs_backend **rb, kvs_store **rst)
{
	cr_assert_eq(fx_backend(wb), 0, "%s", kvs_error_last());
	cr_assert_eq(fx_backend_peer(rb, *wb), 0, "%s", kvs_error_last());
	*wst = open_store(*wb);
	*rst = open_store(*rb);
	/* A fresh in-memory cluster is at revision 0, and a watch "from 0"
	 * means "the current state" (Kubernetes semantics), not "after 0". A
	 * real cluster is never at 0: move off it with a write elsewhere. */
	kvs_object *o = kvs_object_new("unrelated-warm-up");
	cr_assert_eq((*wb)->ops->create(*wb, NULL, o), 0, "%s", kvs_error_last());
	kvs_object_free(o);
}

static kvs_watch *watch_open(kvs_store *st, const char *key, unsigned flags, const char *since)
{
	kvs_watch_options o = KVS_WATCH_OPTIONS_INIT;
	kvs_watch *w = NULL;

	o.flags = flags;
	o.since = since;
	int rc = kvs_watch_open(&w, st, key, &o);
	cr_assert_eq(rc, 0, "kvs_watch_open: %s (%s)", kvs_strerror(rc), kvs_error_last());
	return w;
}

static void put_ok(kvs_ver *out, kvs_store *st, const char *key, const void *v, size_t len)
{
	int rc = kvs_put(out, st, key, v, len, NULL);
	cr_assert_eq(rc, 0, "put %s: %s", key, kvs_error_last());
}

static void next_ok(kvs_watch_event *ev, kvs_watch *w)
{
	int rc = kvs_watch_next(ev, w, WAIT_MS);
	cr_assert_eq(rc, 0, "kvs_watch_next: %s (%s)", kvs_strerror(rc), kvs_error_last());
}

static void expect_quiet(kvs_watch *w)
{
	kvs_watch_event ev;
	int rc = kvs_watch_next(&ev, w, 100);
	cr_assert_eq(rc, KVS_ETIMEOUT, "unexpected event: rc=%s key=%s", kvs_strerror(rc),
	             rc == 0 ? ev.key : "");
}

/* ------------------------------------------------------------------------ */

Test(watch, reports_current_value_first_when_since_is_null)
{
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst;
	open_pair(&wb, &wst, &rb, &rst);
	kvs_ver v;
	put_ok(&v, wst, "k", "hello", 5);

	kvs_watch *w = watch_open(rst, "k", 0, NULL);
	kvs_watch_event ev;
	next_ok(&ev, w);
	cr_assert_eq(ev.kind, KVS_WATCH_PUT);
	cr_assert_str_eq(ev.key, "k");
	cr_assert_str_eq(ev.version.str, v.str);
	cr_assert_eq(ev.length, 5);
	cr_assert_eq(ev.generation, 1);
	cr_assert_eq(ev.resync, 0);
	cr_assert_null(ev.value, "value delivered without KVS_WATCH_VALUES");
	expect_quiet(w);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

Test(watch, sees_every_committed_version_in_order_when_keeping_up)
{
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst;
	open_pair(&wb, &wst, &rb, &rst);
	kvs_watch *w = watch_open(rst, "k", 0, NULL);
	char buf[64];

	for (int i = 1; i <= 8; i++) {
		kvs_ver v;
		int n = snprintf(buf, sizeof(buf), "value number %d", i);
		put_ok(&v, wst, "k", buf, (size_t)n);
		put_ok(NULL, wst, "other", buf, 1); /* noise on another key */
		kvs_watch_event ev;
		next_ok(&ev, w);
		cr_assert_eq(ev.kind, KVS_WATCH_PUT);
		cr_assert_str_eq(ev.key, "k");
		cr_assert_str_eq(ev.version.str, v.str, "version %d out of order", i);
		cr_assert_eq(ev.generation, (uint64_t)i);
		cr_assert_eq(ev.length, (uint64_t)n);
	}
	expect_quiet(w);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

Test(watch, sees_every_version_in_order_when_reading_after_a_burst)
{
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst;
	open_pair(&wb, &wst, &rb, &rst);
	kvs_watch *w = watch_open(rst, "k", 0, NULL);
	kvs_ver vers[20];
	char buf[64];

	for (int i = 0; i < 20; i++) {
		int n = snprintf(buf, sizeof(buf), "v%d", i);
		put_ok(&vers[i], wst, "k", buf, (size_t)n);
	}
	for (int i = 0; i < 20; i++) {
		kvs_watch_event ev;
		next_ok(&ev, w);
		cr_assert_str_eq(ev.version.str, vers[i].str, "event %d", i);
		cr_assert_eq(ev.generation, (uint64_t)i + 1);
	}
	expect_quiet(w);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

Test(watch, reports_deletion)
{
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst;
	open_pair(&wb, &wst, &rb, &rst);
	put_ok(NULL, wst, "k", "x", 1);
	kvs_watch *w = watch_open(rst, "k", 0, NULL);
	kvs_watch_event ev;
	next_ok(&ev, w);
	cr_assert_eq(ev.kind, KVS_WATCH_PUT);
	cr_assert_eq(kvs_delete(wst, "k", NULL), 0);
	next_ok(&ev, w);
	cr_assert_eq(ev.kind, KVS_WATCH_DELETE);
	cr_assert_str_eq(ev.key, "k");
	cr_assert_str_eq(ev.version.str, "");
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

Test(watch, prefix_watch_sees_only_its_keys)
{
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst;
	open_pair(&wb, &wst, &rb, &rst);
	put_ok(NULL, wst, "app/old", "0", 1);
	put_ok(NULL, wst, "ap", "0", 1);
	kvs_watch *w = watch_open(rst, "app/", KVS_WATCH_PREFIX, NULL);
	const char *writes[] = { "app/a", "other/a", "app", "app/b", "apq/x", "app/a/deep",
	                         "APP/a" };
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++)
		put_ok(NULL, wst, writes[i], "v", 1);
	cr_assert_eq(kvs_delete(wst, "ap", NULL), 0);
	cr_assert_eq(kvs_delete(wst, "app/old", NULL), 0);

	const char *want[] = { "app/old", "app/a", "app/b", "app/a/deep", "app/old" };
	kvs_watch_kind kinds[] = { KVS_WATCH_PUT, KVS_WATCH_PUT, KVS_WATCH_PUT, KVS_WATCH_PUT,
	                           KVS_WATCH_DELETE };
	for (size_t i = 0; i < 5; i++) {
		kvs_watch_event ev;
		next_ok(&ev, w);
		cr_assert_str_eq(ev.key, want[i], "event %zu", i);
		cr_assert_eq(ev.kind, kinds[i], "event %zu", i);
	}
	expect_quiet(w);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

Test(watch, empty_prefix_watches_every_key)
{
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst;
	open_pair(&wb, &wst, &rb, &rst);
	kvs_watch *w = watch_open(rst, "", KVS_WATCH_PREFIX, NULL);
	put_ok(NULL, wst, "a", "1", 1);
	put_ok(NULL, wst, "Z z", "2", 1);
	kvs_watch_event ev;
	next_ok(&ev, w);
	cr_assert_str_eq(ev.key, "a");
	next_ok(&ev, w);
	cr_assert_str_eq(ev.key, "Z z");
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

Test(watch, values_are_delivered_exact)
{
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst;
	open_pair(&wb, &wst, &rb, &rst);
	size_t len = 300000;
	char *v = malloc(len);
	fx_json(v, len, 1);
	kvs_watch *w = watch_open(rst, "doc", KVS_WATCH_VALUES, NULL);

	for (int i = 0; i < 4; i++) {
		/* a small edit each time, plus one inline-sized value */
		size_t n = i == 3 ? 100 : len;
		v[len / 3 + (size_t)i * 1000] ^= 0x5;
		kvs_ver ver;
		put_ok(&ver, wst, "doc", v, n);
		kvs_watch_event ev;
		next_ok(&ev, w);
		cr_assert_str_eq(ev.version.str, ver.str);
		cr_assert_eq(ev.value_len, n);
		cr_assert_eq(ev.length, n);
		cr_assert_not_null(ev.value);
		cr_assert(memcmp(ev.value, v, n) == 0, "value %d differs", i);
	}
	free(v);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

Test(watch, since_starts_after_that_version)
{
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst;
	open_pair(&wb, &wst, &rb, &rst);
	kvs_ver v1, v2;
	put_ok(&v1, wst, "k", "1", 1);
	put_ok(&v2, wst, "k", "22", 2);
	kvs_watch *w = watch_open(rst, "k", 0, v1.str);
	kvs_watch_event ev;
	next_ok(&ev, w);
	cr_assert_str_eq(ev.version.str, v2.str);
	cr_assert_eq(ev.length, 2);
	expect_quiet(w);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

Test(watch, rejects_bad_arguments)
{
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	kvs_watch *w = (kvs_watch *)1;
	cr_assert_eq(kvs_watch_open(&w, st, "", NULL), KVS_EINVAL);
	cr_assert_null(w);
	cr_assert_eq(kvs_watch_open(&w, st, NULL, NULL), KVS_EINVAL);
	kvs_watch_options o = KVS_WATCH_OPTIONS_INIT;
	o.version = 99;
	cr_assert_eq(kvs_watch_open(&w, st, "k", &o), KVS_EINVAL);
	kvs_watch_close(NULL);
	kvs_close(st);
}

/* ------------------------------------------------------------------------ */
/* Gaps: dropped connections and compacted history                          */

/*
 * A backend that forwards to another one and breaks watch streams on
 * demand, the way a real connection drops: watch_next fails with KVS_EIO
 * (`drop` times, or always while `down`), and while `down` reopening fails
 * too. (The in-memory backend's fault injection covers watch_open only.)
 */
typedef struct flaky {
	kvs_backend base;
	kvs_backend *inner;
	int drop, down;
	unsigned drops_done;
} flaky;

typedef struct flaky_watch {
	flaky *f;
	kvs_backend_watch *inner;
} flaky_watch;

static kvs_backend *fin(kvs_backend *b) { return ((flaky *)b)->inner; }
static int fl_get(kvs_backend *b, kvs_object **o, const char *n)
{ return fin(b)->ops->get(fin(b), o, n); }
static int fl_create(kvs_backend *b, kvs_object **o, const kvs_object *obj)
{ return fin(b)->ops->create(fin(b), o, obj); }
static int fl_replace(kvs_backend *b, kvs_object **o, const kvs_object *obj)
{ return fin(b)->ops->replace(fin(b), o, obj); }
static int fl_annotate(kvs_backend *b, kvs_object **o, const char *n, const kvs_kv *a, size_t k)
{ return fin(b)->ops->annotate(fin(b), o, n, a, k); }
static int fl_remove(kvs_backend *b, const char *n, const char *rv, const char *uid)
{ return fin(b)->ops->remove(fin(b), n, rv, uid); }
static int fl_list(kvs_backend *b, kvs_object_list **o, const char *sel, size_t lim,
                   const char *tok, unsigned f)
{ return fin(b)->ops->list(fin(b), o, sel, lim, tok, f); }
static int fl_now(kvs_backend *b, int64_t *ms) { return fin(b)->ops->now(fin(b), ms); }
static int fl_batch(kvs_backend *b, kvs_op *ops, size_t n)
{
	if (fin(b)->ops->batch)
		return fin(b)->ops->batch(fin(b), ops, n);
	for (size_t i = 0; i < n; i++)
		ops[i].result = ops[i].kind == KVS_OP_GET
		                    ? fin(b)->ops->get(fin(b), &ops[i].out, ops[i].name)
		                    : fin(b)->ops->create(fin(b), &ops[i].out, ops[i].in);
	return 0;
}

static int fl_watch_open(kvs_backend *b, kvs_backend_watch **out, const char *sel,
                         const char *rv)
{
	flaky *f = (flaky *)b;
	flaky_watch *w;
	int rc;

	*out = NULL;
	if (f->down)
		return kvs_error_set(KVS_EIO, "flaky: connection refused");
	if (!(w = calloc(1, sizeof(*w))))
		return KVS_ENOMEM;
	w->f = f;
	if ((rc = f->inner->ops->watch_open(f->inner, &w->inner, sel, rv)) < 0) {
		free(w);
		return rc;
	}
	*out = (kvs_backend_watch *)w;
	return 0;
}

static int fl_watch_next(kvs_backend_watch *bw, kvs_event *ev, int timeout_ms)
{
	flaky_watch *w = (flaky_watch *)bw;

	if (w->f->down || w->f->drop > 0) {
		if (w->f->drop > 0)
			w->f->drop--;
		w->f->drops_done++;
		return kvs_error_set(KVS_EIO, "flaky: connection reset");
	}
	return w->f->inner->ops->watch_next(w->inner, ev, timeout_ms);
}

static void fl_watch_close(kvs_backend_watch *bw)
{
	flaky_watch *w = (flaky_watch *)bw;

	if (!w)
		return;
	w->f->inner->ops->watch_close(w->inner);
	free(w);
}

static void fl_free(kvs_backend *b)
{
	kvs_backend_free(fin(b));
	free(b);
}

static const kvs_backend_ops flaky_ops = {
	KVS_BACKEND_OPS_VERSION, "flaky", fl_get, fl_create, fl_replace, fl_annotate,
	fl_remove, fl_list, fl_watch_open, fl_watch_next, fl_watch_close, fl_batch, fl_now,
	fl_free, NULL /* head: reads with get */
};

static flaky *flaky_wrap(kvs_backend *inner)
{
	flaky *f = calloc(1, sizeof(*f));
	cr_assert_not_null(f);
	f->base.ops = &flaky_ops;
	f->base.max_object_bytes = inner->max_object_bytes;
	f->inner = inner;
	return f;
}

typedef struct seen {
	char key[32];
	int present;
	kvs_ver ver;
	char value[64];
	size_t len;
} seen;

/* Apply events to a table until the watch stays quiet. */
static int drain(kvs_watch *w, seen *tab, size_t n, int *resyncs)
{
	int events = 0;
	for (;;) {
		kvs_watch_event ev;
		int rc = kvs_watch_next(&ev, w, 300);
		if (rc == KVS_ETIMEOUT)
			return events;
		cr_assert_eq(rc, 0, "kvs_watch_next: %s (%s)", kvs_strerror(rc), kvs_error_last());
		events++;
		if (ev.resync && resyncs)
			(*resyncs)++;
		size_t i;
		for (i = 0; i < n && strcmp(tab[i].key, ev.key) != 0; i++)
			;
		cr_assert_lt(i, n, "event for unwatched key %s", ev.key);
		tab[i].present = ev.kind == KVS_WATCH_PUT;
		tab[i].ver = ev.version;
		if (ev.value) {
			cr_assert_leq(ev.value_len, sizeof(tab[i].value));
			memcpy(tab[i].value, ev.value, ev.value_len);
			tab[i].len = ev.value_len;
		}
	}
}

/* The table equals what the store holds now. */
static void assert_final(kvs_store *st, const seen *tab, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		void *val = NULL;
		size_t len = 0;
		kvs_ver ver;
		int rc = kvs_get(&val, &len, &ver, st, tab[i].key, NULL);
		if (rc == KVS_ENOTFOUND) {
			cr_assert_not(tab[i].present, "%s deleted but the watcher still has it",
			              tab[i].key);
			continue;
		}
		cr_assert_eq(rc, 0, "%s", kvs_error_last());
		cr_assert(tab[i].present, "watcher missed %s", tab[i].key);
		cr_assert_str_eq(tab[i].ver.str, ver.str, "watcher has an old version of %s",
		                 tab[i].key);
		cr_assert_eq(tab[i].len, len);
		cr_assert(memcmp(tab[i].value, val, len) == 0, "watcher has wrong bytes of %s",
		          tab[i].key);
		kvs_free(val);
	}
}

static void churn(kvs_store *st, seen *tab, size_t n, int round)
{
	char buf[64];
	for (size_t i = 0; i < n; i++) {
		if ((i + (size_t)round) % 4 == 0) {
			int rc = kvs_delete(st, tab[i].key, NULL);
			cr_assert(rc == 0 || rc == KVS_ENOTFOUND);
		} else {
			int len = snprintf(buf, sizeof(buf), "%s@%d", tab[i].key, round);
			put_ok(NULL, st, tab[i].key, buf, (size_t)len);
		}
	}
}

static void init_table(seen *tab, size_t n)
{
	memset(tab, 0, n * sizeof(*tab));
	for (size_t i = 0; i < n; i++)
		snprintf(tab[i].key, sizeof(tab[i].key), "p/key%zu", i);
}

Test(watch, ends_at_final_state_after_dropped_connections)
{
	kvs_backend *wb, *rb;
	cr_assert_eq(fx_backend(&wb), 0, "%s", kvs_error_last());
	cr_assert_eq(fx_backend_peer(&rb, wb), 0, "%s", kvs_error_last());
	flaky *f = flaky_wrap(rb);
	kvs_store *wst = open_store(wb), *rst = open_store(&f->base);
	seen tab[9];
	init_table(tab, 9);
	kvs_watch *w = watch_open(rst, "p/", KVS_WATCH_PREFIX | KVS_WATCH_VALUES, NULL);

	for (int round = 0; round < 6; round++) {
		churn(wst, tab, 9, round);
		/* one dropped stream right away, then a longer outage */
		f->drop = 1 + round % 2;
		drain(w, tab, 9, NULL);
		f->down = 1;
		churn(wst, tab, 9, round + 100);
		kvs_watch_event ev;
		int rc = kvs_watch_next(&ev, w, 50);
		cr_assert_eq(rc, KVS_EIO, "during an outage: %s", kvs_strerror(rc));
		f->down = 0;
		drain(w, tab, 9, NULL);
		assert_final(wst, tab, 9);
	}
	cr_assert_geq(f->drops_done, 12, "the streams were never broken");
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

Test(watch, ends_at_final_state_after_compaction_with_resync_events)
{
	kvs_backend *wb, *rb;
	cr_assert_eq(fx_backend(&wb), 0, "%s", kvs_error_last());
	cr_assert_eq(fx_backend_peer(&rb, wb), 0, "%s", kvs_error_last());
	flaky *f = flaky_wrap(rb);
	kvs_store *wst = open_store(wb), *rst = open_store(&f->base);
	seen tab[9];
	init_table(tab, 9);
	kvs_watch *w = watch_open(rst, "p/", KVS_WATCH_PREFIX | KVS_WATCH_VALUES, NULL);
	int total_resync = 0;

	for (int round = 0; round < 6; round++) {
		churn(wst, tab, 9, round);
		/* the watcher was away while history got compacted */
		cr_assert_eq(fx_compact(wb), 0, "%s", kvs_error_last());
		/* a real server keeps an open stream going across compaction:
		 * break it, so the reopen from the old revision meets 410 */
		f->drop = 1;
		int resyncs = 0;
		drain(w, tab, 9, &resyncs);
		total_resync += resyncs;
		assert_final(wst, tab, 9);
	}
	cr_assert_gt(total_resync, 0, "no event was marked resync after compaction");
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

Test(watch, resync_reports_only_keys_that_changed)
{
	kvs_backend *wb, *rb;
	cr_assert_eq(fx_backend(&wb), 0, "%s", kvs_error_last());
	cr_assert_eq(fx_backend_peer(&rb, wb), 0, "%s", kvs_error_last());
	flaky *f = flaky_wrap(rb);
	kvs_store *wst = open_store(wb), *rst = open_store(&f->base);
	put_ok(NULL, wst, "p/same", "s", 1);
	put_ok(NULL, wst, "p/changed", "c", 1);
	put_ok(NULL, wst, "p/deleted", "d", 1);
	kvs_watch *w = watch_open(rst, "p/", KVS_WATCH_PREFIX, NULL);
	kvs_watch_event ev;
	for (int i = 0; i < 3; i++)
		next_ok(&ev, w);
	expect_quiet(w);

	kvs_ver vc;
	put_ok(NULL, wst, "p/changed", "c2", 2);
	put_ok(&vc, wst, "p/changed", "c3", 2);
	cr_assert_eq(kvs_delete(wst, "p/deleted", NULL), 0);
	put_ok(NULL, wst, "p/new", "n", 1);
	cr_assert_eq(fx_compact(wb), 0, "%s", kvs_error_last());
	f->drop = 1; /* see ends_at_final_state_after_compaction_with_resync_events */

	int got_changed = 0, got_deleted = 0, got_new = 0;
	for (int i = 0; i < 3; i++) {
		next_ok(&ev, w);
		cr_assert_eq(ev.resync, 1, "%s not marked resync", ev.key);
		if (strcmp(ev.key, "p/changed") == 0) {
			got_changed = 1;
			cr_assert_eq(ev.kind, KVS_WATCH_PUT);
			cr_assert_str_eq(ev.version.str, vc.str, "resync skipped to an old version");
		} else if (strcmp(ev.key, "p/deleted") == 0) {
			got_deleted = 1;
			cr_assert_eq(ev.kind, KVS_WATCH_DELETE);
		} else if (strcmp(ev.key, "p/new") == 0) {
			got_new = 1;
			cr_assert_eq(ev.kind, KVS_WATCH_PUT);
		} else {
			cr_assert_fail("unchanged key %s reported", ev.key);
		}
	}
	cr_assert(got_changed && got_deleted && got_new);
	expect_quiet(w);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

static size_t list_segments(kvs_backend *b, char ***out)
{
	kvs_object_list *l = NULL;
	cr_assert_eq(b->ops->list(b, &l, SEG_SELECTOR, 100000, NULL, KVS_LIST_METADATA_ONLY), 0);
	char **names = calloc(l->count + 1, sizeof(*names));
	for (size_t i = 0; i < l->count; i++)
		names[i] = strdup(l->items[i]->name);
	size_t n = l->count;
	kvs_object_list_free(l);
	*out = names;
	return n;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

Test(watch, corrupt_segment_is_an_error_naming_the_key_and_the_watch_goes_on)
{
	skip_unless_memory();
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst;
	open_pair(&wb, &wst, &rb, &rst);
	size_t len = 200000;
	char *v = malloc(len);
	fx_random(v, len, 7);
	kvs_watch *w = watch_open(rst, "victim", KVS_WATCH_VALUES, NULL);
	char **before;
	size_t nbefore = list_segments(wb, &before);

	put_ok(NULL, wst, "victim", v, len);
	/* flip a byte in one of the segments that put created */
	char **after;
	size_t nafter = list_segments(wb, &after);
	cr_assert_gt(nafter, nbefore);
	kvs_object *seg = NULL;
	cr_assert_eq(wb->ops->get(wb, &seg, after[0]), 0);
	cr_assert_gt(seg->ndata, 0);
	cr_assert_eq(kvs_mem_corrupt(wb, seg->name, seg->data[0].key, 1), 0);
	kvs_object_free(seg);

	kvs_watch_event ev;
	int rc = kvs_watch_next(&ev, w, WAIT_MS);
	cr_assert_eq(rc, KVS_ECORRUPT, "corrupt value delivered: %s", kvs_strerror(rc));
	cr_assert(strstr(kvs_error_last(), "victim") != NULL,
	          "error does not name the key: %s", kvs_error_last());

	/* the watch goes on */
	fx_random(v, len, 8);
	kvs_ver ver;
	put_ok(&ver, wst, "victim", v, len);
	next_ok(&ev, w);
	cr_assert_str_eq(ev.version.str, ver.str);
	cr_assert_eq(ev.value_len, len);
	cr_assert(memcmp(ev.value, v, len) == 0);
	free_names(before, nbefore);
	free_names(after, nafter);
	free(v);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

Test(watch, values_fetch_only_segments_not_already_held)
{
	skip_unless_memory();
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst;
	open_pair(&wb, &wst, &rb, &rst);
	size_t len = 600000;
	char *v = malloc(len);
	fx_random(v, len, 9);
	kvs_watch *w = watch_open(rst, "big", KVS_WATCH_VALUES, NULL);
	put_ok(NULL, wst, "big", v, len);
	kvs_watch_event ev;
	next_ok(&ev, w);
	cr_assert_eq(ev.value_len, len);

	/* a 1% edit: the watcher should read a small part of the value again */
	fx_random(v + len / 2, len / 100, 10);
	kvs_put_stats ps;
	kvs_put_options po = KVS_PUT_OPTIONS_INIT;
	po.stats = &ps;
	cr_assert_eq(kvs_put(NULL, wst, "big", v, len, &po), 0);
	kvs_mem_reset_stats(rb);
	next_ok(&ev, w);
	cr_assert(memcmp(ev.value, v, len) == 0);
	kvs_mem_stats s;
	kvs_mem_get_stats(rb, &s);
	cr_assert_lt(s.bytes_read, len / 4,
	             "the watcher read %llu bytes for a 1%% edit of %zu",
	             (unsigned long long)s.bytes_read, len);
	free(v);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

static void unrelated_writes(kvs_backend *b, int from, int n)
{
	char name[64];
	for (int i = from; i < from + n; i++) {
		snprintf(name, sizeof(name), "unrelated-%d", i);
		kvs_object *o = kvs_object_new(name);
		cr_assert_eq(b->ops->create(b, NULL, o), 0, "%s", kvs_error_last());
		kvs_object_free(o);
	}
}

Test(watch, bookmarks_let_a_dropped_stream_resume_without_relisting)
{
	skip_unless_memory();
	kvs_backend *wb, *rb;
	cr_assert_eq(fx_backend(&wb), 0, "%s", kvs_error_last());
	cr_assert_eq(fx_backend_peer(&rb, wb), 0, "%s", kvs_error_last());
	flaky *f = flaky_wrap(rb);
	kvs_store *wst = open_store(wb), *rst = open_store(&f->base);
	kvs_ver v;
	put_ok(&v, wst, "k", "1", 1);
	kvs_watch *w = watch_open(rst, "k", 0, NULL);
	kvs_watch_event ev;
	next_ok(&ev, w);

	/* lots of changes the watcher does not care about (the default history
	 * keeps 1000 events), read past while idle: the server's bookmark
	 * carries the revision forward */
	unrelated_writes(wb, 0, 900);
	cr_assert_eq(kvs_watch_next(&ev, w, 300), KVS_ETIMEOUT);
	unrelated_writes(wb, 900, 900);
	kvs_mem_stats s0, s1;
	kvs_mem_get_stats(rb, &s0);
	f->drop = 1;
	put_ok(&v, wst, "k", "2", 1);
	next_ok(&ev, w);
	cr_assert_str_eq(ev.version.str, v.str);
	cr_assert_eq(ev.resync, 0, "resumed by relisting");
	kvs_mem_get_stats(rb, &s1);
	cr_assert_eq(s1.calls[KVS_MEM_LIST], s0.calls[KVS_MEM_LIST], "relisted after a drop");
	cr_assert_eq(f->drops_done, 1);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

/*
 * The initial listing's first page is read at open; later pages come from
 * newer states (the in-memory backend, like a real server whose continue
 * token expired). A key on a later page that was deleted and created again
 * in between is delivered at its new version by the listing; the watch then
 * starts from the first page's revision and replays the deletion, which is
 * older than the version delivered: it must be dropped like any older event
 * (design.md "Watches"), not reported as a DELETE of a key that exists.
 */
Test(watch, replayed_deletion_older_than_the_listed_version_is_dropped)
{
	skip_unless_memory();
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst;
	open_pair(&wb, &wst, &rb, &rst);
	char key[16];
	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "a%02d", i);
		put_ok(NULL, wst, key, "1", 1);
	}
	put_ok(NULL, wst, "k", "old", 3);
	kvs_watch *w = watch_open(rst, "", KVS_WATCH_PREFIX, NULL); /* page 1: a00..a39 */
	cr_assert_eq(kvs_delete(wst, "k", NULL), 0);
	kvs_ver v;
	put_ok(&v, wst, "k", "new", 3);

	kvs_watch_event ev;
	for (int i = 0; i < 40; i++) {
		next_ok(&ev, w);
		cr_assert_eq(ev.kind, KVS_WATCH_PUT);
	}
	next_ok(&ev, w);
	cr_assert_eq(ev.kind, KVS_WATCH_PUT);
	cr_assert_str_eq(ev.key, "k");
	cr_assert_str_eq(ev.version.str, v.str);
	/* the stream from page 1's revision replays the deletion and the
	 * re-creation: both are history the caller already has */
	expect_quiet(w);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

/* ------------------------------------------------------------------------ */
/* Watches on key-split maps: field events                                   */

static void map_put(kvs_store *st, const char *key, const char *const *kv, size_t n,
                    const char *const *del, size_t nd, unsigned compact)
{
	kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
	kvs_map_batch *b = NULL;

	wo.compact = compact;
	cr_assert_eq(kvs_map_batch_new(&b), 0);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(kvs_map_batch_put(b, kv[2 * i], strlen(kv[2 * i]), kv[2 * i + 1],
		                               strlen(kv[2 * i + 1])), 0);
	for (size_t i = 0; i < nd; i++)
		cr_assert_eq(kvs_map_batch_delete(b, del[i], strlen(del[i])), 0);
	cr_assert_eq(kvs_map_commit(NULL, st, key, b, &wo), 0, "map commit: %s", kvs_error_last());
	kvs_map_batch_free(b);
}

static void map_compact(kvs_store *st, const char *key)
{
	kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
	kvs_map_stats ms;

	memset(&ms, 0, sizeof(ms));
	wo.compact = KVS_MAP_COMPACT_FORCE;
	wo.stats = &ms;
	cr_assert_eq(kvs_map_compact(NULL, st, key, &wo), 0, "compact: %s", kvs_error_last());
	cr_assert_eq(ms.compacted, 1, "nothing compacted");
}

/* The field changes of the event last returned, as "K:field=value" lines
 * sorted by field (K = A, C, D), into buf. */
static const char *fields_of(char *buf, size_t cap, kvs_watch *w)
{
	const kvs_map_field_change *fc = NULL;
	size_t n = 0, o = 0;

	cr_assert_eq(kvs_watch_fields(&fc, &n, w), 0, "%s", kvs_error_last());
	buf[0] = '\0';
	for (size_t i = 0; i < n && o < cap; i++) {
		char k = fc[i].kind == KVS_MAP_FIELD_ADDED ? 'A' : fc[i].kind == KVS_MAP_FIELD_CHANGED
		                                                      ? 'C' : 'D';
		if (i)
			cr_assert_lt(memcmp(fc[i - 1].field, fc[i].field, 1) <= 0 ? 0 : 1, 1,
			             "not in field order");
		o += (size_t)snprintf(buf + o, cap - o, "%s%c:%.*s=%.*s", i ? " " : "", k,
		                      (int)fc[i].field_len, (const char *)fc[i].field,
		                      fc[i].value ? (int)fc[i].value_len : 1,
		                      fc[i].value ? (const char *)fc[i].value : "-");
	}
	return buf;
}

Test(watch, map_key_reports_puts_without_a_decode_error)
{
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst;
	open_pair(&wb, &wst, &rb, &rst);
	static const char *const kv[] = { "a", "1", "b", "2" };
	map_put(wst, "m", kv, 2, NULL, 0, KVS_MAP_COMPACT_NEVER);

	kvs_watch *w = watch_open(rst, "m", KVS_WATCH_VALUES, NULL);
	kvs_watch_event ev;
	next_ok(&ev, w);
	cr_assert_eq(ev.kind, KVS_WATCH_PUT);
	cr_assert_str_eq(ev.key, "m");
	cr_assert_eq(ev.generation, 1);
	cr_assert_null(ev.value, "a map has no opaque value");
	map_put(wst, "m", kv, 1, NULL, 0, KVS_MAP_COMPACT_NEVER);
	next_ok(&ev, w);
	cr_assert_eq(ev.generation, 2);
	expect_quiet(w);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

Test(watch, map_fields_added_changed_deleted_with_values)
{
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst;
	char buf[512];
	open_pair(&wb, &wst, &rb, &rst);
	static const char *const kv1[] = { "a", "1", "b", "2", "c", "3" };
	static const char *const kv2[] = { "b", "20", "d", "4" };
	static const char *const del2[] = { "c", "zz" };
	map_put(wst, "m", kv1, 3, NULL, 0, KVS_MAP_COMPACT_NEVER);

	kvs_watch *w = watch_open(rst, "m", KVS_WATCH_FIELDS | KVS_WATCH_VALUES, NULL);
	kvs_watch_event ev;
	next_ok(&ev, w);
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "A:a=1 A:b=2 A:c=3", "initial: %s", buf);
	map_put(wst, "m", kv2, 2, del2, 2, KVS_MAP_COMPACT_NEVER);
	next_ok(&ev, w);
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "C:b=20 D:c=- A:d=4", "batch: %s", buf);
	/* a compaction changes no field: an event with none */
	map_compact(wst, "m");
	next_ok(&ev, w);
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "", "compaction: %s", buf);
	expect_quiet(w);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

Test(watch, map_fields_without_values_and_across_a_compaction)
{
	kvs_backend *wb, *rb;
	char buf[512];
	cr_assert_eq(fx_backend(&wb), 0, "%s", kvs_error_last());
	cr_assert_eq(fx_backend_peer(&rb, wb), 0, "%s", kvs_error_last());
	flaky *f = flaky_wrap(rb);
	kvs_store *wst = open_store(wb), *rst = open_store(&f->base);
	static const char *const kv1[] = { "a", "1", "b", "2" };
	static const char *const kv2[] = { "a", "10", "e", "5" };
	static const char *const del2[] = { "b" };
	map_put(wst, "m", kv1, 2, NULL, 0, KVS_MAP_COMPACT_NEVER);

	kvs_watch *w = watch_open(rst, "m", KVS_WATCH_FIELDS, NULL);
	kvs_watch_event ev;
	next_ok(&ev, w);
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "A:a=- A:b=-", "initial: %s", buf);
	/* a batch and a compaction (which drops the tombstone of b) while the
	 * watcher is away and history is compacted: it sees the end state at
	 * once, from a relist, and b is still reported deleted */
	map_put(wst, "m", kv2, 2, del2, 1, KVS_MAP_COMPACT_NEVER);
	map_compact(wst, "m");
	cr_assert_eq(fx_compact(wb), 0, "%s", kvs_error_last());
	f->drop = 1;
	next_ok(&ev, w);
	cr_assert_eq(ev.resync, 1);
	cr_assert_eq(ev.generation, 3);
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "C:a=- D:b=- A:e=-", "after: %s", buf);
	expect_quiet(w);
	/* a key that is not a map has no field changes */
	put_ok(NULL, wst, "m", "plain", 5);
	next_ok(&ev, w);
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "", "plain value: %s", buf);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

Test(watch, map_field_events_of_a_batch_fetch_no_base_run)
{
	skip_unless_memory();
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst;
	kvs_options ro = KVS_OPTIONS_INIT;
	kvs_mem_stats s1, s2;
	char buf[512], *doc;
	size_t o = 0;
	open_pair(&wb, &wst, &rb, &rst);
	/* no segment cache on the watcher: every run it reads is a GET */
	kvs_close(rst);
	cr_assert_eq(fx_backend_peer(&rb, wb), 0, "%s", kvs_error_last());
	ro.name = STORE;
	ro.cache_bytes = UINT64_MAX;
	cr_assert_eq(kvs_open(&rst, rb, &ro), 0, "%s", kvs_error_last());
	/* a map of 2,000 fields, its base runs in segments */
	doc = malloc(2000 * 300 + 16);
	cr_assert(doc);
	doc[o++] = '{';
	for (int i = 0; i < 2000; i++)
		o += (size_t)sprintf(doc + o, "%s\"f%04d\": \"%0250d\"", i ? "," : "", i, i);
	doc[o++] = '}';
	cr_assert_eq(kvs_map_import_json(NULL, wst, "m", doc, o, NULL), 0, "%s", kvs_error_last());
	free(doc);

	kvs_watch *w = watch_open(rst, "m", KVS_WATCH_FIELDS | KVS_WATCH_VALUES, NULL);
	kvs_watch_event ev;
	const kvs_map_field_change *fc;
	size_t n;
	next_ok(&ev, w);
	cr_assert_eq(kvs_watch_fields(&fc, &n, w), 0);
	cr_assert_eq(n, 2000);
	static const char *const kv[] = { "f0100", "x", "f1900", "y" };
	map_put(wst, "m", kv, 2, NULL, 0, KVS_MAP_COMPACT_NEVER);
	kvs_mem_get_stats(rb, &s1);
	next_ok(&ev, w);
	kvs_mem_get_stats(rb, &s2);
	cr_assert_eq(s2.calls[KVS_MEM_GET] - s1.calls[KVS_MEM_GET], 0,
	             "the watcher fetched %llu objects for an inline delta",
	             (unsigned long long)(s2.calls[KVS_MEM_GET] - s1.calls[KVS_MEM_GET]));
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "C:f0100=x C:f1900=y", "%s", buf);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

/*
 * max_bytes caps the field values of one event, in field order: values go
 * out while their total fits, from the first that does not on each change
 * carries value NULL and its true length; names and kinds stay complete.
 */
Test(watch, map_field_values_are_capped_by_max_bytes)
{
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst;
	kvs_watch_options o = KVS_WATCH_OPTIONS_INIT;
	kvs_watch_event ev;
	const kvs_map_field_change *fc;
	kvs_watch *w = NULL;
	char buf[512];
	size_t n;
	open_pair(&wb, &wst, &rb, &rst);
	static const char *const kv1[] = { "a", "11111", "b", "22222", "c", "33333" };
	static const char *const kv2[] = { "a", "4444", "b", "5555", "c", "6" };
	map_put(wst, "m", kv1, 3, NULL, 0, KVS_MAP_COMPACT_NEVER);

	o.flags = KVS_WATCH_FIELDS | KVS_WATCH_VALUES;
	o.max_bytes = 12;   /* two of the five-byte values, not three */
	cr_assert_eq(kvs_watch_open(&w, rst, "m", &o), 0, "%s", kvs_error_last());
	next_ok(&ev, w);
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "A:a=11111 A:b=22222 A:c=-", "%s", buf);
	cr_assert_eq(kvs_watch_fields(&fc, &n, w), 0);
	cr_assert_eq(n, 3);
	cr_assert_null(fc[2].value);
	cr_assert_eq(fc[2].value_len, 5, "a withheld value keeps its length");
	cr_assert_eq(fc[2].version, 1);
	/* the budget is per event: 4 + 4 + 1 bytes fit */
	map_put(wst, "m", kv2, 3, NULL, 0, KVS_MAP_COMPACT_NEVER);
	next_ok(&ev, w);
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "C:a=4444 C:b=5555 C:c=6", "%s", buf);
	kvs_watch_close(w);

	/* the cap applies per event, and a value bigger than it is withheld
	 * first thing, with every later one */
	o.max_bytes = 3;
	cr_assert_eq(kvs_watch_open(&w, rst, "m", &o), 0, "%s", kvs_error_last());
	next_ok(&ev, w);
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "A:a=- A:b=- A:c=-", "%s", buf);
	cr_assert_eq(kvs_watch_fields(&fc, &n, w), 0);
	cr_assert_eq(fc[2].value_len, 1);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}
