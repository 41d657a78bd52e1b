/*
 * test_api.c — suite "api": the promises of the public API itself, on the
 * in-memory backend:
 *
 *  - option structs are read by the size their version declares (a caller
 *    built against an older header, with a struct of exactly the old size,
 *    works and gets the defaults of the later fields), and an unknown
 *    version is KVS_EINVAL naming the struct, at every entry point; the
 *    backend vtable's version likewise;
 *  - a read refuses a value longer than its max_bytes from the length the
 *    manifest declares, before allocating anything for it;
 *  - batch operations carry their own result and detail, and the store
 *    reports a failed op from its own detail, never from the thread's last
 *    error;
 *  - a put whose segments were collected before its commit says so with its
 *    own code, KVS_ESTALE;
 *  - the "off" values of options have names, and the old values still work.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "internal.h"
#include "manifest.h"
#include "names.h"
#include "base/options.h"
#include "support/fixture.h"

#define MIB (1024u * 1024u)

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */

static kvs_backend *mem_backend(uint64_t max_object_bytes)
{
	kvs_mem_options mo = KVS_MEM_OPTIONS_INIT;
	kvs_backend *b = NULL;

	mo.max_object_bytes = max_object_bytes;
	cr_assert_eq(kvs_backend_mem(&b, &mo), 0, "%s", kvs_error_last());
	return b;
}

static kvs_store *open_on(kvs_backend *b, uint64_t cache_bytes)
{
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_store *s = NULL;

	o.cache_bytes = cache_bytes;
	cr_assert_eq(kvs_open(&s, b, &o), 0, "%s", kvs_error_last());
	return s;
}

static int has(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

/*
 * Commit an index for `key` whose manifest declares a value of `nchunks`
 * chunks of 1 MiB (nchunks MiB), all in one segment that does not exist: what
 * a hostile or broken writer could leave. The manifest itself is valid
 * (checksum, caps, sizes add up), so only the declared length stops a read.
 */
static void craft_index(kvs_backend *b, const char *store, const char *key, uint32_t nchunks)
{
	kvs__manifest m;
	char name[KVS__NAME_BUF];
	kvs_object *obj;
	uint8_t *buf = NULL;
	size_t len = 0;

	memset(&m, 0, sizeof(m));
	m.kind = KVS__MF_BLOB;
	m.key = strdup(key);
	m.key_len = strlen(key);
	m.generation = 1;
	m.codec = 1;
	m.cdc_min = 256u * 1024u;
	m.cdc_avg = 512u * 1024u;
	m.cdc_max = MIB;
	m.hash[0] = 0x5a;
	m.nsegs = 1;
	m.segs = calloc(1, sizeof(*m.segs));
	m.nchunks = nchunks;
	m.chunks = calloc(nchunks, sizeof(*m.chunks));
	cr_assert(m.key && m.segs && m.chunks);
	m.segs[0].addr[0] = 0xaa;
	m.segs[0].bytes = 4096;
	m.segs[0].nchunks = 1;
	for (uint32_t i = 0; i < nchunks; i++) {
		m.chunks[i].addr[0] = 0xbb;
		m.chunks[i].seg = 0;
		m.chunks[i].raw_len = MIB;
		m.chunks[i].stored_len = 100;
	}
	m.length = (uint64_t)nchunks * MIB;
	cr_assert_eq(kvs__manifest_encode(&buf, &len, &m, KVS__MF_MAX_ENCODED), 0, "%s",
	             kvs_error_last());
	kvs__manifest_clear(&m);
	kvs__index_name(name, store, key, strlen(key));
	cr_assert_not_null(obj = kvs_object_new(name));
	cr_assert_eq(kvs__set_labels(obj, store, KVS__ROLE_INDEX), 0);
	cr_assert_eq(kvs_object_add_data_owned(obj, KVS__INDEX_DATA_KEY, buf, len), 0);
	cr_assert_eq(b->ops->create(b, NULL, obj), 0, "%s", kvs_error_last());
	kvs_object_free(obj);
}

/*
 * `size` bytes that end exactly where an unreadable page begins: a read of
 * one byte past them faults in every build, not only under ASan.
 */
static void *guarded(size_t size, void **base)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	cr_assert_eq(mprotect(p + pg, pg, PROT_NONE), 0);
	*base = p;
	memset(p + pg - size, 0, size);
	return p + pg - size;
}

static void unguard(void *base)
{
	munmap(base, 2 * (size_t)sysconf(_SC_PAGESIZE));
}

static int count_progress(void *ctx, uint64_t done, uint64_t total)
{
	(*(int *)ctx)++;
	return 0;
}

static int count_writes(void *ctx, const void *buf, size_t len)
{
	(*(int *)ctx)++;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* A forwarding backend whose vtable version and batch a test chooses.      */

typedef struct wrap {
	kvs_backend base;
	kvs_backend *inner;
	kvs_backend_ops ops;
	int batches;                        /* batch calls */
	/* after the inner batch: may rewrite results (inject failures) */
	void (*after_batch)(struct wrap *w, kvs_op *ops, size_t n);
} wrap;

static kvs_backend *win(kvs_backend *b) { return ((wrap *)b)->inner; }
static int w_get(kvs_backend *b, kvs_object **o, const char *n)
{ return win(b)->ops->get(win(b), o, n); }
static int w_create(kvs_backend *b, kvs_object **o, const kvs_object *obj)
{ return win(b)->ops->create(win(b), o, obj); }
static int w_replace(kvs_backend *b, kvs_object **o, const kvs_object *obj)
{ return win(b)->ops->replace(win(b), o, obj); }
static int w_annotate(kvs_backend *b, kvs_object **o, const char *n, const kvs_kv *a, size_t k)
{ return win(b)->ops->annotate(win(b), o, n, a, k); }
static int w_remove(kvs_backend *b, const char *n, const char *rv, const char *uid)
{ return win(b)->ops->remove(win(b), n, rv, uid); }
static int w_list(kvs_backend *b, kvs_object_list **o, const char *sel, size_t lim,
                  const char *tok, unsigned f)
{ return win(b)->ops->list(win(b), o, sel, lim, tok, f); }
static int w_watch_open(kvs_backend *b, kvs_backend_watch **o, const char *sel, const char *rv)
{ return win(b)->ops->watch_open(win(b), o, sel, rv); }
static int w_now(kvs_backend *b, int64_t *ms) { return win(b)->ops->now(win(b), ms); }
static void w_free(kvs_backend *b)
{
	kvs_backend_free(win(b));
	free(b);
}
static int w_batch(kvs_backend *b, kvs_op *ops, size_t n)
{
	wrap *w = (wrap *)b;
	int rc;

	w->batches++;
	if ((rc = win(b)->ops->batch(win(b), ops, n)) < 0)
		return rc;
	if (w->after_batch)
		w->after_batch(w, ops, n);
	return 0;
}

static wrap *wrap_new(kvs_backend *inner, unsigned int version)
{
	wrap *w = calloc(1, sizeof(*w));

	cr_assert_not_null(w);
	w->ops = *inner->ops;
	w->ops.version = version;
	w->ops.name = "wrap";
	w->ops.get = w_get;
	w->ops.create = w_create;
	w->ops.replace = w_replace;
	w->ops.annotate = w_annotate;
	w->ops.remove = w_remove;
	w->ops.list = w_list;
	w->ops.watch_open = w_watch_open;
	w->ops.batch = w_batch;
	w->ops.now = w_now;
	w->ops.free = w_free;
	w->ops.head = NULL;   /* not wrapped: the store reads with get */
	w->base.ops = &w->ops;
	w->base.max_object_bytes = inner->max_object_bytes;
	w->inner = inner;
	return w;
}

/* ------------------------------------------------------------------------ */
/* max_bytes: the declared length is checked before anything is allocated  */

Test(api, get_refuses_a_manifest_declaring_2_40_bytes_with_etoobig)
{
	kvs_backend *b = mem_backend(64ull * MIB);   /* room for a 2^20-chunk index */
	kvs_store *s = open_on(b, 0);
	void *out = (void *)1;
	size_t n = 7;

	craft_index(b, "default", "huge", 1u << 20);   /* 2^20 chunks of 1 MiB = 2^40 */
	int rc = kvs_get(&out, &n, NULL, s, "huge", NULL);
	cr_assert_eq(rc, KVS_ETOOBIG, "%s: %s", kvs_strerror(rc), kvs_error_last());
	cr_expect(has(kvs_error_last(), "1099511627776"), "%s", kvs_error_last());
	cr_expect(has(kvs_error_last(), "1073741824"), "%s", kvs_error_last());
	cr_expect(has(kvs_error_last(), "\"huge\""), "%s", kvs_error_last());
	cr_expect_null(out);
	cr_expect_eq(n, 0);
	kvs_close(s);
}

/*
 * In a child whose address space is capped at what it uses plus 512 MiB, a
 * manifest declaring 4 GiB: the default cap (1 GiB) refuses it with
 * KVS_ETOOBIG — had the reader tried to allocate the 4 GiB, it would have
 * failed with KVS_ENOMEM. With the cap lifted the same read does try, and
 * gets KVS_ENOMEM: proof that the limit would have caught an allocation.
 */
static int child_get(kvs_store *s, uint64_t max_bytes)
{
	kvs_get_options go = KVS_GET_OPTIONS_INIT;
	void *out = NULL;
	size_t n = 0;

	go.max_bytes = max_bytes;
	return kvs_get(&out, &n, NULL, s, "big", &go);
}

static long vm_size(void)
{
	long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return pages * sysconf(_SC_PAGESIZE);
}

Test(api, get_over_max_bytes_allocates_nothing_for_the_value)
{
	kvs_backend *b;
	kvs_store *s;
	int st;
	pid_t pid;

	if (UNDER_ASAN)
		cr_skip_test("RLIMIT_AS and ASan's shadow memory do not mix");
	b = mem_backend(0);
	s = open_on(b, 0);
	craft_index(b, "default", "big", 4096);   /* 4 GiB */
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		struct rlimit rl;
		long have = vm_size();
		int r1, r2;
		if (have <= 0)
			_exit(10);
		rl.rlim_cur = rl.rlim_max = (rlim_t)have + 512ull * MIB;
		if (setrlimit(RLIMIT_AS, &rl) != 0)
			_exit(11);
		r1 = child_get(s, 0);                         /* default: 1 GiB */
		r2 = child_get(s, KVS_MAX_BYTES_UNLIMITED);   /* tries to allocate 4 GiB */
		_exit(r1 == KVS_ETOOBIG && r2 == KVS_ENOMEM ? 0 : r1 == KVS_ETOOBIG ? 2 : 1);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "child died (signal %d)", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	cr_assert_neq(WEXITSTATUS(st), 1, "the default cap did not refuse a 4 GiB value");
	cr_assert_neq(WEXITSTATUS(st), 2, "the address-space limit caught nothing: test is blind");
	cr_assert_eq(WEXITSTATUS(st), 0, "child setup failed: %d", WEXITSTATUS(st));
	kvs_close(s);
}

Test(api, max_bytes_is_honoured_exactly_and_by_streaming_gets)
{
	kvs_store *s = open_on(mem_backend(0), 0);
	kvs_get_options go = KVS_GET_OPTIONS_INIT;
	uint8_t val[1000];
	void *out = NULL;
	size_t n = 0;
	int calls = 0;

	fx_random(val, sizeof(val), 1);
	cr_assert_eq(kvs_put(NULL, s, "k", val, sizeof(val), NULL), 0, "%s", kvs_error_last());
	go.max_bytes = sizeof(val) - 1;
	cr_expect_eq(kvs_get(&out, &n, NULL, s, "k", &go), KVS_ETOOBIG);
	cr_expect(has(kvs_error_last(), "1000 bytes") && has(kvs_error_last(), "999"), "%s",
	          kvs_error_last());
	cr_expect_eq(kvs_get_stream(NULL, s, "k", count_writes, &calls, &go),
	             KVS_ETOOBIG);
	cr_expect_eq(calls, 0, "a refused stream delivered bytes");
	go.max_bytes = sizeof(val);
	cr_assert_eq(kvs_get(&out, &n, NULL, s, "k", &go), 0, "%s", kvs_error_last());
	cr_expect_eq(n, sizeof(val));
	cr_expect(memcmp(out, val, n) == 0);
	kvs_free(out);
	kvs_close(s);
}

static int discard(void *ctx, const void *buf, size_t len)
{
	return 0;
}

/* A streaming get keeps its memory bounded, so by default it has no cap: a
 * 2 GiB manifest gets as far as its (missing) segment. */
Test(api, streaming_get_has_no_default_cap)
{
	kvs_backend *b = mem_backend(0);
	kvs_store *s = open_on(b, 0);
	void *out = NULL;
	size_t n = 0;

	craft_index(b, "default", "two-gib", 2048);
	int rc = kvs_get_stream(NULL, s, "two-gib", discard, NULL, NULL);
	cr_expect_eq(rc, KVS_ENOTFOUND, "%s: %s", kvs_strerror(rc), kvs_error_last());
	cr_expect_eq(kvs_get(&out, &n, NULL, s, "two-gib", NULL), KVS_ETOOBIG);
	kvs_close(s);
}

Test(api, watch_values_over_max_bytes_are_refused_and_the_watch_goes_on)
{
	kvs_backend *b = mem_backend(0);
	kvs_store *s = open_on(b, 0);
	kvs_watch_options wo = KVS_WATCH_OPTIONS_INIT;
	kvs_watch *w = NULL;
	kvs_watch_event ev;
	uint8_t big[200], small[50];
	int rc;

	fx_random(big, sizeof(big), 2);
	fx_random(small, sizeof(small), 3);
	wo.flags = KVS_WATCH_PREFIX | KVS_WATCH_VALUES;
	wo.max_bytes = 100;
	cr_assert_eq(kvs_watch_open(&w, s, "w/", &wo), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_put(NULL, s, "w/big", big, sizeof(big), NULL), 0);
	cr_assert_eq(kvs_put(NULL, s, "w/small", small, sizeof(small), NULL), 0);
	rc = kvs_watch_next(&ev, w, 2000);
	cr_assert_eq(rc, KVS_ETOOBIG, "%s: %s", kvs_strerror(rc), kvs_error_last());
	cr_expect(has(kvs_error_last(), "w/big") && has(kvs_error_last(), "200 bytes"), "%s",
	          kvs_error_last());
	rc = kvs_watch_next(&ev, w, 2000);
	cr_assert_eq(rc, 0, "%s: %s", kvs_strerror(rc), kvs_error_last());
	cr_expect_str_eq(ev.key, "w/small");
	cr_expect_eq(ev.value_len, sizeof(small));
	cr_expect(memcmp(ev.value, small, sizeof(small)) == 0);
	kvs_watch_close(w);
	kvs_close(s);
}

/* ------------------------------------------------------------------------ */
/* Older callers: structs of exactly an old version's size                  */

/* The version 1 layouts, as a program built against the 0.1.0 header has them. */
typedef struct get_options_v1 {
	unsigned int version;
	int (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
} get_options_v1;

typedef struct watch_options_v1 {
	unsigned int version;
	unsigned int flags;
	const char *since;
} watch_options_v1;

typedef struct options_v1 {
	unsigned int version;
	const char *name;
	uint32_t chunk_min, chunk_avg, chunk_max, inline_max, segment_target;
	unsigned int concurrency;
	uint64_t cache_bytes;
	unsigned int lz4_accel;
	uint32_t touch_window_s;
} options_v1;

Test(api, v1_layouts_are_prefixes_of_the_current_structs)
{
	cr_expect_eq(offsetof(get_options_v1, progress), offsetof(kvs_get_options, progress));
	cr_expect_eq(offsetof(get_options_v1, progress_ctx), offsetof(kvs_get_options, progress_ctx));
	cr_expect_leq(kvs__opts_size(&kvs__opt_get, 1), sizeof(get_options_v1));
	cr_expect_eq(offsetof(watch_options_v1, since), offsetof(kvs_watch_options, since));
	cr_expect_leq(kvs__opts_size(&kvs__opt_watch, 1), sizeof(watch_options_v1));
	cr_expect_eq(offsetof(options_v1, touch_window_s), offsetof(kvs_options, touch_window_s));
	cr_expect_eq(offsetof(options_v1, cache_bytes), offsetof(kvs_options, cache_bytes));
	cr_expect_leq(kvs__opts_size(&kvs__opt_store, 1), sizeof(options_v1));
	/* and every descriptor's current size is its struct's */
	cr_expect_leq(kvs__opts_size(&kvs__opt_get, KVS_GET_OPTIONS_VERSION), sizeof(kvs_get_options));
	cr_expect_eq(kvs__opts_size(&kvs__opt_get, KVS_GET_OPTIONS_VERSION + 1), 0);
}

static void v1_get_reads_within_its_size(const kvs_get_options *go, kvs_store *s, int *calls)
{
	void *out = NULL;
	size_t n = 0;
	int rc;

	/* the v1 fields are read: the progress callback is called */
	*calls = 0;
	cr_assert_eq(kvs_get(&out, &n, NULL, s, "small", go), 0, "%s", kvs_error_last());
	cr_expect_eq(n, 300 * 1024);
	cr_expect_gt(*calls, 0, "the v1 progress callback was not called");
	kvs_free(out);
	/* the field v1 lacks gets its default: 1 GiB */
	rc = kvs_get(&out, &n, NULL, s, "gib-and-a-mib", go);
	cr_expect_eq(rc, KVS_ETOOBIG, "%s: %s", kvs_strerror(rc), kvs_error_last());
	cr_expect(has(kvs_error_last(), "1073741824"), "%s", kvs_error_last());
	rc = kvs_get(&out, &n, NULL, s, "gib", go);
	cr_expect_eq(rc, KVS_ENOTFOUND, "exactly 1 GiB is allowed: %s: %s", kvs_strerror(rc),
	             kvs_error_last());
	cr_expect(has(kvs_error_last(), "missing"), "%s", kvs_error_last());
}

Test(api, a_v1_get_options_struct_works_and_gets_the_default_cap)
{
	kvs_backend *b = mem_backend(0);
	kvs_store *s = open_on(b, KVS_CACHE_OFF);
	uint8_t *val = malloc(300 * 1024);
	void *base;
	int calls;

	cr_assert_not_null(val);
	fx_random(val, 300 * 1024, 4);
	cr_assert_eq(kvs_put(NULL, s, "small", val, 300 * 1024, NULL), 0, "%s", kvs_error_last());
	free(val);
	craft_index(b, "default", "gib-and-a-mib", 1025);
	craft_index(b, "default", "gib", 1024);

	/* exactly the v1 size, followed by an unreadable page */
	get_options_v1 *g = guarded(sizeof(*g), &base);
	g->version = 1;
	g->progress = count_progress;
	g->progress_ctx = &calls;
	v1_get_reads_within_its_size((const kvs_get_options *)g, s, &calls);
	unguard(base);

	/* exactly the v1 size from malloc (ASan reports any over-read) */
	g = malloc(sizeof(*g));
	cr_assert_not_null(g);
	g->version = 1;
	g->progress = count_progress;
	g->progress_ctx = &calls;
	v1_get_reads_within_its_size((const kvs_get_options *)g, s, &calls);
	free(g);
	kvs_close(s);
}

Test(api, a_v1_watch_options_struct_gets_the_default_value_cap)
{
	kvs_backend *b = mem_backend(0);
	kvs_store *s = open_on(b, 0);
	kvs_watch *w = NULL;
	kvs_watch_event ev;
	void *base;
	int rc;

	watch_options_v1 *wo = guarded(sizeof(*wo), &base);
	wo->version = 1;
	wo->flags = KVS_WATCH_PREFIX | KVS_WATCH_VALUES;
	cr_assert_eq(kvs_watch_open(&w, s, "", (const kvs_watch_options *)wo), 0, "%s",
	             kvs_error_last());
	craft_index(b, "default", "too-big", 257);   /* 257 MiB > 256 MiB default */
	rc = kvs_watch_next(&ev, w, 2000);
	cr_expect_eq(rc, KVS_ETOOBIG, "%s: %s", kvs_strerror(rc), kvs_error_last());
	cr_expect(has(kvs_error_last(), "too-big") && has(kvs_error_last(), "268435456"), "%s",
	          kvs_error_last());
	cr_assert_eq(kvs_put(NULL, s, "fine", "abc", 3, NULL), 0);
	rc = kvs_watch_next(&ev, w, 2000);
	cr_assert_eq(rc, 0, "%s: %s", kvs_strerror(rc), kvs_error_last());
	cr_expect_str_eq(ev.key, "fine");
	cr_expect_eq(ev.value_len, 3);
	kvs_watch_close(w);
	unguard(base);
	kvs_close(s);
}

Test(api, a_v1_store_options_struct_opens_with_default_workers)
{
	kvs_store *s = NULL;
	void *base;

	options_v1 *o = guarded(sizeof(*o), &base);
	o->version = 1;
	o->name = "old-caller";
	o->touch_window_s = 300;
	cr_assert_eq(kvs_open(&s, mem_backend(0), (const kvs_options *)o), 0, "%s", kvs_error_last());
	unguard(base);
	cr_expect_str_eq(s->name, "old-caller");
	cr_expect_eq(s->opts.touch_window_s, 300);
	cr_expect(s->workers >= 1 && s->workers <= KVS__DEF_MAX_WORKERS, "workers %u", s->workers);
	cr_expect_eq(s->opts.version, KVS_OPTIONS_VERSION);
	kvs_close(s);
}

Test(api, workers_option_sizes_the_threads_and_is_bounded)
{
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_backend *b = mem_backend(0);
	kvs_store *s = NULL;

	o.workers = KVS__MAX_WORKERS + 1;
	cr_expect_eq(kvs_open(&s, b, &o), KVS_EINVAL);
	cr_expect(has(kvs_error_last(), "workers"), "%s", kvs_error_last());
	o.workers = 1;
	cr_assert_eq(kvs_open(&s, b, &o), 0, "%s", kvs_error_last());
	cr_expect_eq(s->workers, 1);
	kvs_close(s);
}

/* ------------------------------------------------------------------------ */
/* Unknown versions                                                         */

static int put_cb_eof(void *ctx, void *buf, size_t cap, size_t *got)
{
	*got = 0;
	return 0;
}

/* Call every entry point with option structs of `version` (via the first
 * field: every struct starts with it) and check what each says. */
static void expect_refused(unsigned int version, const char *how)
{
	kvs_store *s = open_on(mem_backend(0), 0);
	kvs_backend *b = NULL;
	kvs_store *s2 = NULL;
	void *out = NULL;
	size_t n = 0;
	kvs_list *l = NULL;
	kvs_stat st;
	kvs_watch *w = NULL;
	kvs_gc_report gr;
	kvs_fsck_report fr;
	char want[64];
	int fd = open("/dev/null", O_RDWR);

	kvs_options so = KVS_OPTIONS_INIT;
	kvs_put_options po = KVS_PUT_OPTIONS_INIT;
	kvs_get_options go = KVS_GET_OPTIONS_INIT;
	kvs_delete_options dopt = KVS_DELETE_OPTIONS_INIT;
	kvs_stat_options sopt = KVS_STAT_OPTIONS_INIT;
	kvs_list_options lo = KVS_LIST_OPTIONS_INIT;
	kvs_watch_options wo = KVS_WATCH_OPTIONS_INIT;
	kvs_gc_options gco = KVS_GC_OPTIONS_INIT;
	kvs_fsck_options fo = KVS_FSCK_OPTIONS_INIT;
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	kvs_mem_options mo = KVS_MEM_OPTIONS_INIT;
	kvs_map_write_options mwo = KVS_MAP_WRITE_OPTIONS_INIT;
	kvs_map_read_options mro = KVS_MAP_READ_OPTIONS_INIT;
	kvs_map_iter_options mio = KVS_MAP_ITER_OPTIONS_INIT;
	kvs_map_stat_options mso = KVS_MAP_STAT_OPTIONS_INIT;
	kvs_map_stat mst;
	kvs_map_batch *mb = NULL;
	kvs_map_iter *mit = NULL;
	uint64_t cnt = 0;

	cr_assert_geq(fd, 0);
	cr_assert_eq(kvs_put(NULL, s, "k", "v", 1, NULL), 0);
	so.version = po.version = go.version = dopt.version = sopt.version = lo.version = version;
	wo.version = gco.version = fo.version = ko.version = mo.version = version;
	mwo.version = mro.version = mio.version = mso.version = version;
	cr_assert_eq(kvs_map_batch_new(&mb), 0);
	cr_assert_eq(kvs_map_batch_put(mb, "f", 1, "v", 1), 0);
	cr_assert_eq(kvs_map_commit(NULL, s, "m", mb, NULL), 0, "%s", kvs_error_last());
	if (version) {
		/* "newer": one past each struct's own current version */
		so.version = KVS_OPTIONS_VERSION + 1;
		po.version = KVS_PUT_OPTIONS_VERSION + 1;
		go.version = KVS_GET_OPTIONS_VERSION + 1;
		dopt.version = KVS_DELETE_OPTIONS_VERSION + 1;
		sopt.version = KVS_STAT_OPTIONS_VERSION + 1;
		lo.version = KVS_LIST_OPTIONS_VERSION + 1;
		wo.version = KVS_WATCH_OPTIONS_VERSION + 1;
		gco.version = KVS_GC_OPTIONS_VERSION + 1;
		fo.version = KVS_FSCK_OPTIONS_VERSION + 1;
		ko.version = KVS_KUBE_OPTIONS_VERSION + 1;
		mo.version = KVS_MEM_OPTIONS_VERSION + 1;
		mwo.version = KVS_MAP_WRITE_OPTIONS_VERSION + 1;
		mro.version = KVS_MAP_READ_OPTIONS_VERSION + 1;
		mio.version = KVS_MAP_ITER_OPTIONS_VERSION + 1;
		mso.version = KVS_MAP_STAT_OPTIONS_VERSION + 1;
	}
#define REFUSED(call, sname, v)                                                             \
	do {                                                                                \
		int rc_ = (call);                                                           \
		snprintf(want, sizeof(want), "%s: version %u ", sname, (unsigned)(v));    \
		cr_expect_eq(rc_, KVS_EINVAL, "%s: %s (%s)", #call, kvs_strerror(rc_),      \
		             kvs_error_last());                                             \
		cr_expect(has(kvs_error_last(), want) && has(kvs_error_last(), how),        \
		          "%s: detail \"%s\" lacks \"%s\" / \"%s\"", #call, kvs_error_last(), \
		          want, how);                                                       \
	} while (0)

	REFUSED(kvs_backend_mem(&b, &mo), "kvs_mem_options", mo.version);
	REFUSED(kvs_backend_kube(&b, &ko), "kvs_kube_options", ko.version);
	cr_assert_eq(kvs_backend_mem(&b, NULL), 0);
	REFUSED(kvs_open(&s2, b, &so), "kvs_options", so.version);
	kvs_backend_free(b);
	REFUSED(kvs_put(NULL, s, "k", "v", 1, &po), "kvs_put_options", po.version);
	REFUSED(kvs_put_stream(NULL, s, "k", put_cb_eof, NULL, &po), "kvs_put_options", po.version);
	REFUSED(kvs_put_fd(NULL, s, "k", fd, &po), "kvs_put_options", po.version);
	REFUSED(kvs_get(&out, &n, NULL, s, "k", &go), "kvs_get_options", go.version);
	REFUSED(kvs_get_stream(NULL, s, "k", discard, NULL, &go), "kvs_get_options", go.version);
	REFUSED(kvs_get_fd(NULL, s, "k", fd, &go), "kvs_get_options", go.version);
	REFUSED(kvs_delete(s, "k", &dopt), "kvs_delete_options", dopt.version);
	REFUSED(kvs_stat_key(&st, s, "k", &sopt), "kvs_stat_options", sopt.version);
	REFUSED(kvs_list_keys(&l, s, &lo), "kvs_list_options", lo.version);
	REFUSED(kvs_watch_open(&w, s, "k", &wo), "kvs_watch_options", wo.version);
	REFUSED(kvs_gc(&gr, s, &gco), "kvs_gc_options", gco.version);
	REFUSED(kvs_fsck(&fr, s, &fo), "kvs_fsck_options", fo.version);
	REFUSED(kvs_map_commit(NULL, s, "m", mb, &mwo), "kvs_map_write_options", mwo.version);
	REFUSED(kvs_map_compact(NULL, s, "m", &mwo), "kvs_map_write_options", mwo.version);
	REFUSED(kvs_map_import_json(NULL, s, "m", "{}", 2, &mwo), "kvs_map_write_options",
	        mwo.version);
	REFUSED(kvs_map_patch_json(NULL, s, "m", "{}", 2, &mwo), "kvs_map_write_options",
	        mwo.version);
	REFUSED(kvs_map_get(&out, &n, NULL, NULL, s, "m", "f", 1, &mro), "kvs_map_read_options",
	        mro.version);
	REFUSED(kvs_map_count(&cnt, NULL, s, "m", &mro), "kvs_map_read_options", mro.version);
	REFUSED(kvs_map_export_json(NULL, s, "m", discard, NULL, &mro), "kvs_map_read_options",
	        mro.version);
	REFUSED(kvs_map_iter_open(&mit, NULL, s, "m", &mio), "kvs_map_iter_options", mio.version);
	cr_expect_null(mit);
	REFUSED(kvs_map_stat_key(&mst, s, "m", &mso), "kvs_map_stat_options", mso.version);
	kvs_map_batch_free(mb);
#undef REFUSED
	cr_expect_null(l);
	cr_expect_null(w);
	cr_expect_null(out);
	/* nothing changed: the key is still there */
	cr_expect_eq(kvs_stat_key(&st, s, "k", NULL), 0, "%s", kvs_error_last());
	close(fd);
	kvs_close(s);
}

Test(api, every_entry_point_refuses_version_0_naming_the_struct)
{
	expect_refused(0, "initialize it with KVS_");
}

Test(api, every_entry_point_refuses_a_newer_version_naming_the_struct)
{
	expect_refused(1, "newer than this library knows (versions 1 to ");
}

Test(api, backend_vtable_version_is_checked)
{
	kvs_store *s = NULL;
	wrap *w;

	w = wrap_new(mem_backend(0), 0);
	cr_expect_eq(kvs_open(&s, &w->base, NULL), KVS_EINVAL);
	cr_expect(has(kvs_error_last(), "kvs_backend_ops of backend \"wrap\": version 0"), "%s",
	          kvs_error_last());
	w->ops.version = KVS_BACKEND_OPS_VERSION + 1;
	cr_expect_eq(kvs_open(&s, &w->base, NULL), KVS_EINVAL);
	cr_expect(has(kvs_error_last(), "newer than this library"), "%s", kvs_error_last());
	cr_expect_null(s);
	kvs_backend_free(&w->base);
}

/* A version 1 backend has the old kvs_op layout: the store must not call its
 * batch (it would walk the array with the wrong stride) and still works. */
static void roundtrip_multi_segment(kvs_store *s)
{
	size_t len = 3 * MIB;
	uint8_t *val = malloc(len);
	void *out = NULL;
	size_t n = 0;

	cr_assert_not_null(val);
	fx_random(val, len, 5);
	cr_assert_eq(kvs_put(NULL, s, "multi", val, len, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_get(&out, &n, NULL, s, "multi", NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(n, len);
	cr_expect(memcmp(out, val, len) == 0);
	kvs_free(out);
	free(val);
}

Test(api, a_version_1_backend_is_never_given_a_batch)
{
	wrap *w1 = wrap_new(mem_backend(0), 1);
	wrap *w2 = wrap_new(mem_backend(0), KVS_BACKEND_OPS_VERSION);
	kvs_store *s1 = open_on(&w1->base, KVS_CACHE_OFF);
	kvs_store *s2 = open_on(&w2->base, KVS_CACHE_OFF);

	roundtrip_multi_segment(s1);
	cr_expect_eq(w1->batches, 0, "a version 1 backend got %d batches", w1->batches);
	roundtrip_multi_segment(s2);
	cr_expect_gt(w2->batches, 0, "the current version got no batch: the test is blind");
	kvs_close(s1);
	kvs_close(s2);
}

/* ------------------------------------------------------------------------ */
/* Per-operation results and details                                        */

Test(api, memory_batch_gives_each_failed_op_its_own_detail)
{
	kvs_backend *b = mem_backend(0);
	kvs_object *o = kvs_object_new("there");
	kvs_op ops[3];

	cr_assert_eq(kvs_object_add_data(o, "d", "x", 1), 0);
	cr_assert_eq(b->ops->create(b, NULL, o), 0);
	memset(ops, 0, sizeof(ops));
	ops[0].kind = KVS_OP_GET;
	ops[0].name = "missing-one";
	ops[1].kind = KVS_OP_GET;
	ops[1].name = "there";
	ops[2].kind = KVS_OP_GET;
	ops[2].name = "missing-two";
	strcpy(ops[1].detail, "stale text");
	cr_assert_eq(b->ops->batch(b, ops, 3), 0, "%s", kvs_error_last());
	cr_expect_eq(ops[0].result, KVS_ENOTFOUND);
	cr_expect(has(ops[0].detail, "missing-one"), "%s", ops[0].detail);
	cr_expect_eq(ops[1].result, 0);
	cr_expect_str_eq(ops[1].detail, "");
	cr_expect_eq(ops[2].result, KVS_ENOTFOUND);
	cr_expect(has(ops[2].detail, "missing-two"), "%s", ops[2].detail);
	for (int i = 0; i < 3; i++)
		kvs_object_free(ops[i].out);
	kvs_object_free(o);
	kvs_backend_free(b);
}

/* Fail the first op of every batch with its own detail, then leave the
 * thread's last error saying something else, as a later op of a parallel
 * batch would. */
static void fail_first_op(wrap *w, kvs_op *ops, size_t n)
{
	kvs_object_free(ops[0].out);
	ops[0].out = NULL;
	kvs_op_result(&ops[0], kvs_error_set(KVS_EINVALOBJ, "injected: op 0 refused"));
	kvs_error_set(KVS_EIO, "unrelated: the last error of another op");
}

Test(api, store_reports_a_failed_batch_op_from_its_own_detail)
{
	wrap *w = wrap_new(mem_backend(0), KVS_BACKEND_OPS_VERSION);
	kvs_store *s = open_on(&w->base, KVS_CACHE_OFF);
	size_t len = 3 * MIB;
	uint8_t *val = malloc(len);
	void *out = NULL;
	size_t n = 0;
	int rc;

	cr_assert_not_null(val);
	fx_random(val, len, 6);
	/* put: the segment creates */
	w->after_batch = fail_first_op;
	rc = kvs_put(NULL, s, "k", val, len, NULL);
	cr_expect_eq(rc, KVS_EINVALOBJ, "%s: %s", kvs_strerror(rc), kvs_error_last());
	cr_expect(has(kvs_error_last(), "injected: op 0 refused"), "%s", kvs_error_last());
	cr_expect(has(kvs_error_last(), "creating segment kvs.default.s-"), "%s", kvs_error_last());
	cr_expect(!has(kvs_error_last(), "unrelated"), "%s", kvs_error_last());
	/* get: the segment reads */
	w->after_batch = NULL;
	cr_assert_eq(kvs_put(NULL, s, "k", val, len, NULL), 0, "%s", kvs_error_last());
	w->after_batch = fail_first_op;
	rc = kvs_get(&out, &n, NULL, s, "k", NULL);
	cr_expect_eq(rc, KVS_EINVALOBJ, "%s: %s", kvs_strerror(rc), kvs_error_last());
	cr_expect(has(kvs_error_last(), "injected: op 0 refused"), "%s", kvs_error_last());
	cr_expect(has(kvs_error_last(), "segment kvs.default.s-"), "%s", kvs_error_last());
	cr_expect(!has(kvs_error_last(), "unrelated"), "%s", kvs_error_last());
	free(val);
	kvs_close(s);
}

/* ------------------------------------------------------------------------ */
/* Codes, not messages                                                       */

typedef struct stale {
	kvs_backend *peer;
	int advanced, removed;
} stale;

/* The writer's segments are created, then its clock jumps past half the
 * touch window and gc (the peer) collects a segment before the put's
 * pre-commit touch reaches it. */
static int stale_hook(void *ctx, kvs_mem_call kind, const char *name)
{
	stale *t = ctx;

	if (kind == KVS_MEM_CREATE && name && has(name, ".s-") && !t->advanced) {
		kvs_mem_advance_clock(t->peer, 400 * 1000);
		t->advanced = 1;
	}
	if (kind == KVS_MEM_ANNOTATE && name && has(name, ".s-") && !t->removed) {
		t->peer->ops->remove(t->peer, name, NULL, NULL);
		t->removed = 1;
	}
	return 0;
}

Test(api, a_put_whose_segment_was_collected_before_commit_is_estale)
{
	kvs_backend *b = mem_backend(0), *peer = NULL;
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_store *s = NULL;
	stale t = { NULL, 0, 0 };
	size_t len = 200 * 1024;
	uint8_t *val = malloc(len);
	kvs_stat st;
	int rc;

	cr_assert_not_null(val);
	fx_random(val, len, 7);
	cr_assert_eq(kvs_backend_mem_clone(&peer, b), 0);
	o.touch_window_s = 600;
	cr_assert_eq(kvs_open(&s, b, &o), 0, "%s", kvs_error_last());
	t.peer = peer;
	kvs_mem_set_hook(b, stale_hook, &t);
	rc = kvs_put(NULL, s, "slow", val, len, NULL);
	kvs_mem_set_hook(b, NULL, NULL);
	cr_expect(t.advanced && t.removed, "the scenario did not happen");
	cr_expect_eq(rc, KVS_ESTALE, "%s: %s", kvs_strerror(rc), kvs_error_last());
	cr_expect_eq(kvs_stat_key(&st, s, "slow", NULL), KVS_ENOTFOUND, "something was committed");
	cr_expect_str_neq(kvs_strerror(KVS_ESTALE), "unknown error");
	free(val);
	kvs_backend_free(peer);
	kvs_close(s);
}

Test(api, fd_read_and_write_failures_are_eio_not_ecanceled)
{
	kvs_store *s = open_on(mem_backend(0), 0);
	uint8_t val[100 * 1024];
	int rd = open("/dev/null", O_RDONLY), wr = open("/dev/null", O_WRONLY);
	int rc;

	cr_assert(rd >= 0 && wr >= 0);
	fx_random(val, sizeof(val), 8);
	cr_assert_eq(kvs_put(NULL, s, "k", val, sizeof(val), NULL), 0);
	/* a write-only fd cannot be read, a read-only one cannot be written */
	rc = kvs_put_fd(NULL, s, "k2", wr, NULL);
	cr_expect_eq(rc, KVS_EIO, "%s: %s", kvs_strerror(rc), kvs_error_last());
	cr_expect(has(kvs_error_last(), strerror(EBADF)), "%s", kvs_error_last());
	rc = kvs_get_fd(NULL, s, "k", rd, NULL);
	cr_expect_eq(rc, KVS_EIO, "%s: %s", kvs_strerror(rc), kvs_error_last());
	cr_expect(has(kvs_error_last(), strerror(EBADF)), "%s", kvs_error_last());
	close(rd);
	close(wr);
	kvs_close(s);
}

/* ------------------------------------------------------------------------ */
/* Named "off" values; the old values keep working                          */

_Static_assert(KVS_CACHE_OFF == UINT64_MAX, "cache_bytes off was UINT64_MAX");
_Static_assert(KVS_ESTALE == -18 && KVS_EITER_DONE == -17, "error codes are frozen");

/* Floating comparisons are no integer constant expressions (clang refuses
 * them in _Static_assert): checked at run time. */
Test(api, floating_off_values_are_negative_as_before)
{
	cr_expect_lt(KVS_KUBE_QPS_OFF, 0.0, "qps off was any negative value");
	cr_expect_lt(KVS_FSCK_READ_NONE, 0.0, "read_data none was any negative value");
}

static int stop_at_once(void *ctx, uint64_t done, uint64_t total)
{
	return 1;
}

Test(api, fsck_read_none_reads_no_data_and_old_negative_values_still_do)
{
	kvs_store *s = open_on(mem_backend(0), KVS_CACHE_OFF);
	kvs_fsck_options fo = KVS_FSCK_OPTIONS_INIT;
	kvs_fsck_report r;
	uint8_t *val = malloc(2 * MIB);

	cr_assert_not_null(val);
	fx_random(val, 2 * MIB, 9);
	cr_assert_eq(kvs_put(NULL, s, "k", val, 2 * MIB, NULL), 0);
	free(val);
	cr_assert_eq(kvs_fsck(&r, s, &fo), 0, "%s", kvs_error_last());
	cr_expect_gt(r.bytes_verified, 0, "default: everything is read");
	fo.read_data = KVS_FSCK_READ_NONE;
	cr_assert_eq(kvs_fsck(&r, s, &fo), 0, "%s", kvs_error_last());
	cr_expect_eq(r.bytes_verified, 0);
	fo.read_data = -0.5;
	cr_assert_eq(kvs_fsck(&r, s, &fo), 0, "%s", kvs_error_last());
	cr_expect_eq(r.bytes_verified, 0);
	kvs_close(s);
}

Test(api, progress_cancel_through_get_fd_stays_ecanceled)
{
	kvs_store *s = open_on(mem_backend(0), 0);
	kvs_get_options go = KVS_GET_OPTIONS_INIT;
	uint8_t *val = malloc(2 * MIB);
	int fd = open("/dev/null", O_WRONLY);

	cr_assert(val && fd >= 0);
	fx_random(val, 2 * MIB, 10);
	cr_assert_eq(kvs_put(NULL, s, "k", val, 2 * MIB, NULL), 0);
	free(val);
	go.progress = stop_at_once;
	int rc = kvs_get_fd(NULL, s, "k", fd, &go);
	cr_expect_eq(rc, KVS_ECANCELED, "%s: %s", kvs_strerror(rc), kvs_error_last());
	close(fd);
	kvs_close(s);
}
