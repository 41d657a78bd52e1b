/*
 * test_pipeline.c — suite "pipeline" (memory backend behind a counting
 * wrapper): a get fetches the next run of segments while the current one is
 * decoded (docs/design.md "Get"), and an error of run k is still the one
 * reported when run k+1 is damaged too.
 *
 * Checked to fail: against the get.c before the read-ahead (each run
 * fetched only after the one before it was delivered), both overlap tests
 * fail: no segment of the next run is asked for while a run is
 * delivered (stream) or its progress is reported (whole value).
 *
 * The put side: a streaming put goes on while a batch of its segments is
 * being created (segwrite.c creates in the background), and a batch in
 * which one create fails and a later one meets an existing segment fails
 * the put (the first failure is the flush's). Checked to fail: with the
 * flush on the caller's thread no read happens during a create; with each
 * op's answer overwriting the last, the put succeeded and its value could
 * not be read back. A streaming put reads its next window while the one
 * before compresses (a read past the first window sees a helper thread:
 * checked to fail with the read after the compression), and a source that
 * fails there fails the put as before (with the read's error dropped on
 * both paths of compress_window, the put never ends).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "support/expect.h"
#include "support/fixture.h"
#include "internal.h"
#include "mem/faults.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

TestSuite(pipeline, .timeout = 120);

/* Forwards to the memory backend, counting the segment gets it is asked and
 * taking 2 ms for each, as a transfer would (a run fetched in under 1 ms is
 * read without a thread: get.c AHEAD_MIN_NS). */
typedef struct counting {
	kvs_backend base;
	kvs_backend *inner;
	unsigned seg_gets;   /* atomic: asked for */
	unsigned seg_done;   /* atomic: answered */
	unsigned create_ms;  /* a batch of creates takes this long (0: no wait) */
	unsigned get_ms;     /* a segment get takes this long (0: 2 ms) */
	int in_create;       /* atomic: a batch of creates is under way */
} counting;

static kvs_backend *cin(kvs_backend *b) { return ((counting *)b)->inner; }
static void count(kvs_backend *b, const char *name)
{
	if (strstr(name, ".s-")) {
		unsigned ms = ((counting *)b)->get_ms ? ((counting *)b)->get_ms : 2;
		__atomic_add_fetch(&((counting *)b)->seg_gets, 1, __ATOMIC_SEQ_CST);
		nanosleep(&(struct timespec){ 0, (long)ms * 1000000 }, NULL);
	}
}
static void counted(kvs_backend *b, const char *name)
{
	if (strstr(name, ".s-"))
		__atomic_add_fetch(&((counting *)b)->seg_done, 1, __ATOMIC_SEQ_CST);
}
static int c_get(kvs_backend *b, kvs_object **o, const char *n)
{
	count(b, n);
	int rc = cin(b)->ops->get(cin(b), o, n);
	counted(b, n);
	return rc;
}
static int c_create(kvs_backend *b, kvs_object **o, const kvs_object *obj)
{ return cin(b)->ops->create(cin(b), o, obj); }
static int c_replace(kvs_backend *b, kvs_object **o, const kvs_object *obj)
{ return cin(b)->ops->replace(cin(b), o, obj); }
static int c_annotate(kvs_backend *b, kvs_object **o, const char *n, const kvs_kv *a, size_t k)
{ return cin(b)->ops->annotate(cin(b), o, n, a, k); }
static int c_remove(kvs_backend *b, const char *n, const char *rv, const char *uid)
{ return cin(b)->ops->remove(cin(b), n, rv, uid); }
static int c_list(kvs_backend *b, kvs_object_list **o, const char *sel, size_t lim,
                  const char *tok, unsigned f)
{ return cin(b)->ops->list(cin(b), o, sel, lim, tok, f); }
static int c_watch_open(kvs_backend *b, kvs_backend_watch **w, const char *sel, const char *rv)
{ return cin(b)->ops->watch_open(cin(b), w, sel, rv); }
static int c_now(kvs_backend *b, int64_t *ms) { return cin(b)->ops->now(cin(b), ms); }
static int c_batch(kvs_backend *b, kvs_op *ops, size_t n)
{
	counting *c = (counting *)b;
	int creates = 0, rc = 0;

	for (size_t i = 0; i < n; i++) {
		if (ops[i].kind == KVS_OP_GET)
			count(b, ops[i].name);
		creates |= ops[i].kind == KVS_OP_CREATE;
	}
	if (creates && c->create_ms) {
		__atomic_store_n(&c->in_create, 1, __ATOMIC_SEQ_CST);
		nanosleep(&(struct timespec){ 0, (long)c->create_ms * 1000000 }, NULL);
	}
	if (cin(b)->ops->batch) {
		rc = cin(b)->ops->batch(cin(b), ops, n);
	} else {
		for (size_t i = 0; i < n; i++)
			ops[i].result = ops[i].kind == KVS_OP_GET
			                    ? cin(b)->ops->get(cin(b), &ops[i].out, ops[i].name)
			                    : cin(b)->ops->create(cin(b), &ops[i].out, ops[i].in);
	}
	if (creates)
		__atomic_store_n(&c->in_create, 0, __ATOMIC_SEQ_CST);
	for (size_t i = 0; i < n; i++)
		if (ops[i].kind == KVS_OP_GET)
			counted(b, ops[i].name);
	return rc;
}
static void c_free(kvs_backend *b)
{
	kvs_backend_free(cin(b));
	free(b);
}

static kvs_backend_ops counting_ops;

static counting *counting_open(void)
{
	counting *c = calloc(1, sizeof(*c));
	kvs_backend *mem;

	cr_assert_not_null(c);
	cr_assert_eq(kvs_backend_mem(&mem, NULL), 0);
	counting_ops = *mem->ops;
	counting_ops.name = "counting";
	counting_ops.get = c_get;
	counting_ops.create = c_create;
	counting_ops.replace = c_replace;
	counting_ops.annotate = c_annotate;
	counting_ops.remove = c_remove;
	counting_ops.list = c_list;
	counting_ops.watch_open = c_watch_open;
	counting_ops.now = c_now;
	counting_ops.batch = c_batch;
	counting_ops.free = c_free;
	counting_ops.head = NULL;   /* reads with get */
	c->base.ops = &counting_ops;
	c->base.max_object_bytes = mem->max_object_bytes;
	c->inner = mem;
	return c;
}

static kvs_store *open_counting(counting **cout, size_t concurrency)
{
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_store *s;
	counting *c = counting_open();

	o.segment_target = 128 * KIB;   /* many segments */
	o.cache_bytes = UINT64_MAX;     /* as test_reads.c: reads go to the backend */
	o.concurrency = concurrency;
	o.workers = 2;                  /* read-ahead needs a second thread */
	cr_assert_eq(kvs_open(&s, &c->base, &o), 0, "%s", kvs_error_last());
	*cout = c;
	return s;
}

/* Wait up to 5 s for more than `base` segment gets; 1 if they came. */
static int more_gets_within(counting *c, unsigned base)
{
	for (int i = 0; i < 5000; i++) {
		if (__atomic_load_n(&c->seg_gets, __ATOMIC_SEQ_CST) > base)
			return 1;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	return 0;
}

typedef struct watch_first {
	counting *c;
	uint64_t calls;
	unsigned run0;       /* the segments of run 0 */
	unsigned at_first;   /* segment gets when run 0 was first delivered */
	unsigned done_first; /* segment gets answered then */
	int overlapped;      /* run 1 was asked for while run 0 was delivered */
	size_t delivered;
	size_t trigger;      /* on_write: look when this many bytes are delivered */
	unsigned most;       /* segment gets seen then, at most */
} watch_first;

static int on_write(void *ctx, const void *buf, size_t len)
{
	watch_first *w = ctx;

	(void)buf;
	if (w->run0 && w->delivered >= w->trigger && w->calls++ == 0) {
		w->at_first = __atomic_load_n(&w->c->seg_gets, __ATOMIC_SEQ_CST);
		w->done_first = __atomic_load_n(&w->c->seg_done, __ATOMIC_SEQ_CST);
		w->overlapped = more_gets_within(w->c, w->run0);
		w->most = __atomic_load_n(&w->c->seg_gets, __ATOMIC_SEQ_CST);
	}
	w->delivered += len;
	return 0;
}

static int on_progress(void *ctx, uint64_t done, uint64_t total)
{
	watch_first *w = ctx;

	(void)total;
	if (w->calls++ == 0 && done) {
		w->at_first = __atomic_load_n(&w->c->seg_gets, __ATOMIC_SEQ_CST);
		w->done_first = __atomic_load_n(&w->c->seg_done, __ATOMIC_SEQ_CST);
		w->overlapped = more_gets_within(w->c, w->run0);
	}
	return 0;
}

static uint8_t *put_value(kvs_store *s, const char *key, size_t n, uint64_t seed,
                          kvs__manifest *m, kvs_backend *inner)
{
	uint8_t *d = malloc(n);
	char name[256];
	kvs_object *o = NULL;

	cr_assert_not_null(d);
	fx_random(d, n, seed);   /* raw chunks: many segments */
	cr_assert_eq(kvs_put(NULL, s, key, d, n, NULL), 0, "%s", kvs_error_last());
	snprintf(name, sizeof(name), "kvs.default.i-%s", key);
	cr_assert_eq(inner->ops->get(inner, &o, name), 0, "%s", kvs_error_last());
	const kvs_blob *bl = kvs_object_data(o, "manifest");
	cr_assert_not_null(bl);
	cr_assert_eq(kvs__manifest_decode(m, bl->data, bl->len, "test"), 0, "%s", kvs_error_last());
	kvs_object_free(o);
	return d;
}

/*
 * Streaming, concurrency 4: runs of 1 segment (concurrency / 4), four runs
 * held at most (concurrency segments). While the chunks of the 4th segment
 * are delivered (run 3), the runs after it are asked for, and no more than
 * three beyond it: at most 7 segments by then. One run of 4 segments
 * fetched after the other (the old way) stays at 4 gets then.
 */
Test(pipeline, stream_fetches_the_next_run_while_delivering)
{
	counting *c;
	kvs_store *s = open_counting(&c, 4);
	kvs__manifest m;
	uint8_t *d = put_value(s, "v", 2 * MIB, 5, &m, c->inner);
	watch_first w = { .c = c, .run0 = 4 };
	uint32_t segs = 0, last = UINT32_MAX;

	cr_assert_gt(m.nsegs, 6, "%u segments: too few runs", m.nsegs);
	for (uint32_t i = 0; i < m.nchunks; i++) {   /* where the 4th segment starts */
		if (m.chunks[i].seg != last && ++segs == 4)
			break;
		last = m.chunks[i].seg;
		w.trigger += m.chunks[i].raw_len;
	}
	c->seg_gets = 0;
	cr_assert_eq(kvs_get_stream(NULL, s, "v", on_write, &w, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(w.delivered, 2 * MIB);
	cr_assert(w.overlapped, "run 2 was not fetched while run 1 was delivered (%u gets)",
	          w.at_first);
	cr_assert_leq(w.most, 7, "%u segments asked for by the 4th: more than four held", w.most);
	/* every segment once (the value's chunks are in segment order) */
	cr_assert_eq(c->seg_gets, m.nsegs, "%u segment gets for %u segments", c->seg_gets, m.nsegs);
	kvs__manifest_clear(&m);
	free(d);
	kvs_close(s);
}

/* Whole value, concurrency 2 (runs of 1 segment): run 1 asked for before
 * run 0's progress is reported. */
Test(pipeline, get_fetches_the_next_run_while_decoding)
{
	counting *c;
	kvs_store *s = open_counting(&c, 2);
	kvs__manifest m;
	uint8_t *d = put_value(s, "v", 2 * MIB, 6, &m, c->inner);
	kvs_get_options go = KVS_GET_OPTIONS_INIT;
	watch_first w = { .c = c, .run0 = 2 };
	void *p = NULL;
	size_t n = 0;

	cr_assert_gt(m.nsegs, 4);
	go.progress = on_progress;
	go.progress_ctx = &w;
	c->seg_gets = 0;
	cr_assert_eq(kvs_get(&p, &n, NULL, s, "v", &go), 0, "%s", kvs_error_last());
	cr_assert(n == 2 * MIB && memcmp(p, d, n) == 0, "wrong value");
	cr_assert_geq(w.at_first, 1);
	cr_assert(w.overlapped, "run 1 was not fetched while run 0 was decoded");
	cr_assert_eq(c->seg_gets, m.nsegs);
	kvs_free(p);
	kvs__manifest_clear(&m);
	free(d);
	kvs_close(s);
}

/*
 * Concurrency 8, streaming and whole value: the first bytes are delivered
 * once the first small run (concurrency / 4 = 2 segments) has arrived, not
 * after a whole run of the old kind. Checked to fail: with the runs this
 * replaced (concurrency / 2 segments streaming, concurrency for a whole
 * value), 4 and 8 segments had been answered first.
 */
Test(pipeline, the_first_bytes_follow_a_small_first_run)
{
	counting *c;
	kvs_store *s = open_counting(&c, 8);
	kvs__manifest m;
	uint8_t *d = put_value(s, "v", 4 * MIB, 8, &m, c->inner);
	watch_first w = { .c = c, .run0 = 1 };
	kvs_get_options go = KVS_GET_OPTIONS_INIT;
	void *p = NULL;
	size_t n = 0;

	cr_assert_gt(m.nsegs, 16, "%u segments: too few runs", m.nsegs);
	c->get_ms = 10;   /* the next runs take 20 ms: the first byte comes well before */
	c->seg_gets = c->seg_done = 0;
	cr_assert_eq(kvs_get_stream(NULL, s, "v", on_write, &w, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(w.delivered, 4 * MIB);
	cr_assert_geq(w.done_first, 2, "%u segments answered", w.done_first);
	cr_assert_lt(w.done_first, 4, "%u segments answered before the first byte was delivered",
	             w.done_first);
	cr_assert_eq(c->seg_gets, m.nsegs, "%u segment gets for %u segments", c->seg_gets, m.nsegs);

	memset(&w, 0, sizeof(w));
	w.c = c;
	w.run0 = 2;
	go.progress = on_progress;
	go.progress_ctx = &w;
	c->seg_gets = c->seg_done = 0;
	cr_assert_eq(kvs_get(&p, &n, NULL, s, "v", &go), 0, "%s", kvs_error_last());
	cr_assert(n == 4 * MIB && memcmp(p, d, n) == 0, "wrong value");
	cr_assert_lt(w.done_first, 8, "%u segments answered before the first progress",
	             w.done_first);
	cr_assert_eq(c->seg_gets, m.nsegs);
	kvs_free(p);
	kvs__manifest_clear(&m);
	free(d);
	kvs_close(s);
}

static void seg_name(char out[256], const uint8_t addr[16])
{
	char hex[33];
	kvs__hex(hex, addr, 16);
	snprintf(out, 256, "kvs.default.s-%s", hex);
}

/*
 * Run 0 corrupted and run 1 missing: run 1 is fetched (and fails) while
 * run 0 is decoded, but the error is run 0's, as when runs were read one
 * after the other; no buffer comes back, and a stream delivers only
 * verified bytes. Then run 0 repaired: run 1's ENOTFOUND.
 */
Test(pipeline, run_k_error_wins_over_run_k_plus_1)
{
	counting *c;
	kvs_store *s = open_counting(&c, 2);
	kvs__manifest m;
	uint8_t *d = put_value(s, "v", 2 * MIB, 7, &m, c->inner);
	char first[256], second[256];
	kvs_object *o = NULL, *gone = NULL;
	void *p = (void *)1;
	size_t n = 1;
	watch_first w = { .c = c, .run0 = 0 /* no waiting */ };

	cr_assert_gt(m.nsegs, 4);
	seg_name(first, m.segs[m.chunks[0].seg].addr);
	seg_name(second, m.segs[m.nsegs - 1].addr);   /* in a later run */
	cr_assert_eq(c->inner->ops->get(c->inner, &o, first), 0);
	cr_assert_eq(kvs_mem_corrupt(c->inner, first, o->data[0].key, 3), 0);
	cr_assert_eq(c->inner->ops->get(c->inner, &gone, second), 0);
	cr_assert_eq(c->inner->ops->remove(c->inner, second, NULL, NULL), 0);

	cr_assert_eq(kvs_get(&p, &n, NULL, s, "v", NULL), KVS_ECORRUPT, "%s", kvs_error_last());
	cr_assert(strstr(kvs_error_last(), first), "detail \"%s\" does not name %s",
	          kvs_error_last(), first);
	cr_assert_null(p);
	cr_assert_eq(n, 0);
	cr_assert_eq(kvs_get_stream(NULL, s, "v", on_write, &w, NULL), KVS_ECORRUPT);
	cr_assert(strstr(kvs_error_last(), first), "%s", kvs_error_last());

	/* only the missing segment left: its own error, on both paths */
	cr_assert_eq(kvs_mem_corrupt(c->inner, first, o->data[0].key, 3), 0);
	p = (void *)1;
	cr_assert_eq(kvs_get(&p, &n, NULL, s, "v", NULL), KVS_ENOTFOUND, "%s", kvs_error_last());
	cr_assert(strstr(kvs_error_last(), second), "%s", kvs_error_last());
	cr_assert_null(p);
	cr_assert_eq(kvs_get_stream(NULL, s, "v", on_write, &w, NULL), KVS_ENOTFOUND);
	cr_assert(strstr(kvs_error_last(), second), "%s", kvs_error_last());

	kvs_object_set_rv(gone, "");
	cr_assert_eq(c->inner->ops->create(c->inner, NULL, gone), 0, "%s", kvs_error_last());
	p = NULL;
	cr_assert_eq(kvs_get(&p, &n, NULL, s, "v", NULL), 0, "%s", kvs_error_last());
	cr_assert(n == 2 * MIB && memcmp(p, d, n) == 0);
	kvs_free(p);
	kvs_object_free(o);
	kvs_object_free(gone);
	kvs__manifest_clear(&m);
	free(d);
	kvs_close(s);
}

/* ---- the put: segments created in the background ----------------------- */

typedef struct stream_src {
	const uint8_t *d;
	size_t n, off;
	counting *c;
	unsigned windows;    /* progress reports */
	int overlapped;      /* a create was under way when window 1 was done */
} stream_src;

static int src_read(void *ctx, void *buf, size_t cap, size_t *got)
{
	stream_src *r = ctx;
	size_t k = r->n - r->off < cap ? r->n - r->off : cap;

	memcpy(buf, r->d + r->off, k);
	r->off += k;
	*got = k;
	return 0;
}

/* After the first window is packed (the caller's thread): is a batch of its
 * segments being created? Wait up to 2 s for one to show (the flush thread
 * builds the batch's objects before it sends them); with the flush on this
 * thread, none can. */
static int src_progress(void *ctx, uint64_t done, uint64_t total)
{
	stream_src *r = ctx;

	(void)done;
	(void)total;
	if (r->windows++ == 0)
		for (int i = 0; i < 2000 && !r->overlapped; i++) {
			r->overlapped = __atomic_load_n(&r->c->in_create, __ATOMIC_SEQ_CST);
			if (!r->overlapped)
				nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
		}
	return 0;
}

/*
 * 6 MiB of raw chunks, segments of 512 KiB, 4 in flight; a batch of creates
 * takes 100 ms. When the stream's first window has been compressed and
 * packed, a batch of its segments is still being created (the caller goes
 * on meanwhile), and the value reads back whole.
 */
Test(pipeline, put_stream_goes_on_while_segments_are_created)
{
	counting *c;
	kvs_store *s;
	size_t n = 6 * MIB;
	uint8_t *d = malloc(n);
	stream_src r = { 0 };
	kvs_put_stats st;
	kvs_put_options po = KVS_PUT_OPTIONS_INIT;
	kvs_options o = KVS_OPTIONS_INIT;
	void *p = NULL;
	size_t len = 0;

	cr_assert_not_null(d);
	c = counting_open();
	o.segment_target = 512 * KIB;
	o.concurrency = 4;
	o.workers = 2;
	cr_assert_eq(kvs_open(&s, &c->base, &o), 0, "%s", kvs_error_last());
	fx_random(d, n, 11);
	r.d = d;
	r.n = n;
	r.c = c;
	c->create_ms = 100;
	po.stats = &st;
	po.progress = src_progress;
	po.progress_ctx = &r;
	cr_assert_eq(kvs_put_stream(NULL, s, "v", src_read, &r, &po), 0, "%s", kvs_error_last());
	c->create_ms = 0;
	cr_assert_geq(st.segments_written, 10, "%llu segments",
	              (unsigned long long)st.segments_written);
	cr_assert_geq(r.windows, 2, "%u progress reports", r.windows);
	cr_assert(r.overlapped, "no segment was being created when the first window was packed");
	cr_assert_eq(kvs_get(&p, &len, NULL, s, "v", NULL), 0, "%s", kvs_error_last());
	cr_assert(len == n && memcmp(p, d, n) == 0, "wrong value");
	kvs_free(p);
	free(d);
	kvs_close(s);
}

typedef struct fail_one {
	char name[256];
	int armed;
} fail_one;

static int fail_create_of(void *ctx, kvs_mem_call kind, const char *name)
{
	fail_one *f = ctx;

	if (kind == KVS_MEM_CREATE && f->armed && name && strcmp(name, f->name) == 0) {
		f->armed = 0;
		return KVS_EIO;
	}
	return 0;
}

/*
 * The value's first segment is gone and its create fails; the other
 * segments of the same batch exist already (an earlier put of the same
 * bytes), so their creates meet them and settle. The put must fail, naming
 * the segment, and commit nothing — on the caller's thread (workers 1) and
 * in the background (workers 2).
 */
static void first_failure_is_the_flush_s(unsigned workers)
{
	kvs_backend *mem;
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_store *s;
	kvs__manifest m;
	kvs_object *idx = NULL;
	fail_one f = { { 0 }, 0 };
	size_t n = 2 * MIB;
	uint8_t *d = malloc(n);
	void *p = NULL;
	size_t len = 0;

	cr_assert_not_null(d);
	cr_assert_eq(kvs_backend_mem(&mem, NULL), 0);
	o.segment_target = 128 * KIB;
	o.concurrency = 8;
	o.workers = workers;
	o.cache_bytes = KVS_CACHE_OFF;
	cr_assert_eq(kvs_open(&s, mem, &o), 0, "%s", kvs_error_last());
	fx_random(d, n, 12);
	cr_assert_eq(kvs_put(NULL, s, "a", d, n, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(mem->ops->get(mem, &idx, "kvs.default.i-a"), 0, "%s", kvs_error_last());
	const kvs_blob *bl = kvs_object_data(idx, "manifest");
	cr_assert_not_null(bl);
	cr_assert_eq(kvs__manifest_decode(&m, bl->data, bl->len, "test"), 0, "%s", kvs_error_last());
	cr_assert_gt(m.nsegs, 8);
	seg_name(f.name, m.segs[m.chunks[0].seg].addr);
	cr_assert_eq(mem->ops->remove(mem, f.name, NULL, NULL), 0, "%s", kvs_error_last());

	f.armed = 1;
	kvs_mem_set_hook(mem, fail_create_of, &f);
	cr_assert_eq(kvs_put(NULL, s, "b", d, n, NULL), KVS_EIO,
	             "workers %u: a put whose segment create failed did not fail (%s)", workers,
	             kvs_error_last());
	cr_assert(strstr(kvs_error_last(), f.name), "detail \"%s\" does not name %s",
	          kvs_error_last(), f.name);
	kvs_mem_set_hook(mem, NULL, NULL);
	cr_assert_eq(f.armed, 0, "the create was never made");
	cr_assert_eq(kvs_get(&p, &len, NULL, s, "b", NULL), KVS_ENOTFOUND, "%s", kvs_error_last());
	/* and again, with nothing failing: it lands and reads back */
	cr_assert_eq(kvs_put(NULL, s, "b", d, n, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_get(&p, &len, NULL, s, "b", NULL), 0, "%s", kvs_error_last());
	cr_assert(len == n && memcmp(p, d, n) == 0);
	kvs_free(p);
	kvs_object_free(idx);
	kvs__manifest_clear(&m);
	free(d);
	kvs_close(s);
}

Test(pipeline, put_batch_first_failure_wins_on_the_caller)
{
	first_failure_is_the_flush_s(1);
}

Test(pipeline, put_batch_first_failure_wins_in_the_background)
{
	first_failure_is_the_flush_s(2);
}

/* Threads of this process, from /proc/self/task. */
static int task_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* The next at most 256 KiB of d[n] from *off into buf (a read callback's
 * answer), and an in-memory store with `workers` threads. */
static int copy_out(const uint8_t *d, size_t n, size_t *off, void *buf, size_t cap, size_t *got)
{
	size_t k = n - *off;

	if (k > cap)
		k = cap;
	if (k > 256 * KIB)
		k = 256 * KIB;
	memcpy(buf, d + *off, k);
	*off += k;
	*got = k;
	return 0;
}

static kvs_store *mem_store_with(unsigned workers)
{
	kvs_backend *b = NULL;
	kvs_store *s = NULL;
	kvs_options o = KVS_OPTIONS_INIT;

	o.workers = workers;
	cr_assert_eq(kvs_backend_mem(&b, NULL), 0);
	cr_assert_eq(kvs_open(&s, b, &o), 0, "%s", kvs_error_last());
	return s;
}

typedef struct counted_src {
	const uint8_t *d;
	size_t n, off;
	int calls, most_tasks;   /* the most threads seen by a read after the first window */
} counted_src;

static int counted_read(void *ctx, void *buf, size_t cap, size_t *got)
{
	counted_src *r = ctx;

	if (r->off >= 4 * MIB) {   /* past the first window */
		int t = task_count();
		if (t > r->most_tasks)
			r->most_tasks = t;
	}
	r->calls++;
	return copy_out(r->d, r->n, &r->off, buf, cap, got);
}

/*
 * A streaming put reads the next window while the helpers compress the
 * one before (put.c ingest_stream): a read past the first window sees a
 * helper thread alive. In-memory backend, whose flushes stay on the
 * caller's thread, so the only new threads are the compressing ones;
 * 2 workers. Checked to fail with the next window read after the
 * compression (the reads saw one thread), and the value reads back whole.
 */
Test(pipeline, put_stream_reads_the_next_window_while_this_one_compresses)
{
	kvs_store *s;
	size_t n = 20 * MIB;
	uint8_t *d = malloc(n);
	counted_src r = { 0 };

	cr_assert_not_null(d);
	fx_json((char *)d, n, 31);
	s = mem_store_with(2);
	int base = task_count();   /* Criterion's own threads */
	cr_assert_geq(base, 1);
	r.d = d;
	r.n = n;
	cr_assert_eq(kvs_put_stream(NULL, s, "v", counted_read, &r, NULL), 0, "%s",
	             kvs_error_last());
	cr_assert_gt(r.most_tasks, base, "no read after the first window ran beside a compressing "
	             "thread (%d calls, %d threads at most, %d before)", r.calls, r.most_tasks, base);
	fx_expect_value(s, "v", d, n);
	free(d);
	kvs_close(s);
}

/* A source that fails (rc) or overfills (bad) once `at` bytes are read. */
typedef struct failing_src {
	const uint8_t *d;
	size_t n, off, at;
	int overfill;
} failing_src;

static int failing_read(void *ctx, void *buf, size_t cap, size_t *got)
{
	failing_src *r = ctx;

	if (r->off >= r->at) {
		if (!r->overfill)
			return -1;
		*got = cap + 1;
		return 0;
	}
	return copy_out(r->d, r->n, &r->off, buf, cap, got);
}

/*
 * A source that fails while the window before is compressing (its read
 * runs beside the helpers: put.c ingest_stream) fails the put as it did
 * between windows: KVS_ECANCELED for a failed read, KVS_EINVAL for a read
 * that says it gave more than it was asked; the key keeps its value, and
 * a put after it goes through.
 */
Test(pipeline, put_stream_source_failing_beside_the_compression)
{
	kvs_store *s;
	size_t n = 14 * MIB;
	uint8_t *d = malloc(n), *old = malloc(n);

	cr_assert(d && old);
	fx_json((char *)d, n, 33);
	fx_json((char *)old, n, 34);
	s = mem_store_with(2);
	cr_assert_eq(kvs_put(NULL, s, "v", old, n, NULL), 0, "%s", kvs_error_last());
	for (int overfill = 0; overfill < 2; overfill++)
		for (size_t at = 5 * MIB; at <= 10 * MIB; at += 5 * MIB) {
			failing_src r = { d, n, 0, at, overfill };
			int rc = kvs_put_stream(NULL, s, "v", failing_read, &r, NULL);

			cr_assert_eq(rc, overfill ? KVS_EINVAL : KVS_ECANCELED,
			             "%s at %zu MiB: %d (%s)", overfill ? "overfill" : "failure",
			             at / MIB, rc, kvs_error_last());
			fx_expect_value(s, "v", old, n);
		}
	failing_src ok = { d, n, 0, n + 1, 0 };
	cr_assert_eq(kvs_put_stream(NULL, s, "v", failing_read, &ok, NULL), 0, "%s",
	             kvs_error_last());
	fx_expect_value(s, "v", d, n);
	free(d);
	free(old);
	kvs_close(s);
}
