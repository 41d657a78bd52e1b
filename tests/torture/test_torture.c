/*
 * test_torture.c — suite "torture" (memory backend): every public operation
 * is run with its n-th allocation failing, for n = 1, 2, 3, ... until the
 * operation goes through without meeting the failure (curl's torture mode).
 * Each failing run must return a negative code (KVS_ENOMEM expected; any
 * other is accepted but printed) with a non-empty kvs_error_last(); then,
 * with allocations working again, the stored data must be the old state or
 * the new one, exact and readable through another client, and the operation
 * must succeed when re-run. Leaks and invalid accesses on those error paths
 * are caught by ASan (make asan).
 *
 * Only allocations made by libkvsplit.a and the test objects are failed (see
 * torture.h); msgpack-c, cJSON, libyaml, lz4 and libc internals allocate
 * with their own malloc and are not injected.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <kvsplit.h>
#include <kvsplit/backend.h>

#include "../support/fixture.h"
#include "internal.h"
#include "torture.h"

/* Under ASan, each test ends with a leak check: Criterion ignores what
 * LeakSanitizer reports at a worker's exit, so a leak must fail the test. */
#if defined(__SANITIZE_ADDRESS__)
#define TORTURE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TORTURE_LSAN 1
#endif
#endif
#ifdef TORTURE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#define BIG (3u * 1024u * 1024u)   /* multi-segment JSON value */
#define SMALL (20u * 1024u)         /* inline in the index */
#define DENSE 300u                  /* every n up to here, then sampled */
#define MAX_RUNS 400u               /* failing runs per operation at most */
#define GRACE_S 60u

typedef struct tc tc;
struct tc {
	const char *name;
	unsigned int workers;          /* compression threads of the store (1 = deterministic) */
	void (*setup)(tc *t);          /* prior state; t->s is the store under test */
	int (*op)(tc *t);              /* the operation, run armed */
	void (*after)(tc *t, int rc);  /* disarmed: check state, re-run */

	kvs_backend *be;               /* cluster (owned by t->s unless no store) */
	kvs_store *s;
	const char *key;
	const uint8_t *oldv, *newv;    /* oldv NULL: key absent before */
	size_t oldlen, newlen;
	void *aux;                     /* op-specific */
	uint64_t aux_n[4];
};

static uint8_t *v_big, *v_edit, *v_small, *v_other;

static void make_values(void)
{
	if (v_big)
		return;
	v_big = malloc(BIG);
	v_edit = malloc(BIG);
	v_small = malloc(SMALL);
	v_other = malloc(BIG / 3);
	cr_assert(v_big && v_edit && v_small && v_other);
	fx_json((char *)v_big, BIG, 21);
	/* a 1% edit: ten runs of ~3 KiB of fresh bytes spread over the value */
	memcpy(v_edit, v_big, BIG);
	for (int i = 0; i < 10; i++)
		fx_random(v_edit + (size_t)i * (BIG / 10) + 4096, BIG / 1000, 100 + (uint64_t)i);
	fx_json((char *)v_small, SMALL, 22);
	fx_json((char *)v_other, BIG / 3, 23);
}

static kvs_options topts(void)
{
	kvs_options o = KVS_OPTIONS_INIT;
	o.segment_target = 128 * 1024;   /* several segments per big value */
	o.concurrency = 3;
	o.touch_window_s = GRACE_S / 2;  /* gc and fsck grace must exceed it */
	return o;
}

static kvs_store *open_on(kvs_backend *b, unsigned int workers)
{
	kvs_options o = topts();
	kvs_store *s;
	cr_assert_eq(kvs_open(&s, b, &o), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs__store_set_workers(s, workers), 0);
	return s;
}

/* A fresh client of t's cluster, with a cold cache. */
static kvs_store *peer(tc *t)
{
	kvs_backend *b;
	cr_assert_eq(kvs_backend_mem_clone(&b, t->be), 0);
	return open_on(b, 1);
}

static void fresh(tc *t)
{
	cr_assert_eq(kvs_backend_mem(&t->be, NULL), 0);
	t->s = open_on(t->be, t->workers ? t->workers : 1);
}

static void put_ok(kvs_store *s, const char *key, const void *v, size_t n)
{
	cr_assert_eq(kvs_put(NULL, s, key, v, n, NULL), 0, "put %s: %s", key, kvs_error_last());
}

/* The value of `key` seen by a fresh client: 1 if it is exactly v, 0 if
 * absent, fails otherwise. */
static int value_is(tc *t, const char *key, const uint8_t *v, size_t n)
{
	kvs_store *r = peer(t);
	void *p = NULL;
	size_t len = 0;
	int rc = kvs_get(&p, &len, NULL, r, key, NULL);
	int same = rc == 0 && len == n && memcmp(p, v, n) == 0;
	kvs_free(p);
	kvs_close(r);
	if (rc == KVS_ENOTFOUND)
		return 0;
	cr_assert_eq(rc, 0, "get %s: %s (%s)", key, kvs_strerror(rc), kvs_error_last());
	return same ? 1 : -1;
}

static void expect_value(tc *t, const char *key, const uint8_t *v, size_t n)
{
	cr_assert_eq(value_is(t, key, v, n), 1, "%s: %s is not the expected value", t->name, key);
}

/* After a failed op the key holds the old value (or is absent if there was
 * none) or the new one; returns 1 for new. */
static int old_or_new(tc *t)
{
	if (t->newv && value_is(t, t->key, t->newv, t->newlen) == 1)
		return 1;
	if (t->oldv)
		expect_value(t, t->key, t->oldv, t->oldlen);
	else
		cr_assert_eq(value_is(t, t->key, v_small, 0), 0,
		             "%s: key exists after a failed create", t->name);
	return 0;
}

static void close_all(tc *t)
{
	if (t->s)
		kvs_close(t->s);
	else
		kvs_backend_free(t->be);
	t->s = NULL;
	t->be = NULL;
}

/*
 * The driver. A first run counts the allocations of the op; then n runs
 * over 1..DENSE and, past that, every step-th value, so that at most about
 * MAX_RUNS failing runs happen; the last run has n beyond the count and
 * must succeed.
 */
static void torture(tc *t)
{
	uint64_t total, step, n, runs = 0, enomem = 0, other = 0, survived = 0;
	int rc;

	make_values();
	t->setup(t);
	kvs_error_set(0, NULL);
	torture_arm(0);
	rc = t->op(t);
	total = torture_disarm();
	cr_assert_eq(rc, 0, "%s without failures: %s (%s)", t->name, kvs_strerror(rc),
	             kvs_error_last());
	t->after(t, rc);
	close_all(t);

	step = total > MAX_RUNS ? (total - DENSE) / (MAX_RUNS - DENSE) + 1 : 1;
	for (n = 1;; n += n < DENSE ? 1 : step) {
		t->setup(t);
		kvs_error_set(0, NULL);
		torture_arm(n);
		rc = t->op(t);
		uint64_t seen = torture_disarm();
		if (!torture_hit()) {
			cr_assert_eq(rc, 0, "%s: n=%" PRIu64 " beyond %" PRIu64 " allocations: %s (%s)",
			             t->name, n, seen, kvs_strerror(rc), kvs_error_last());
			t->after(t, rc);
			close_all(t);
			break;
		}
		runs++;
		if (rc == 0) {
			survived++;
		} else {
			cr_assert_lt(rc, 0, "%s: n=%" PRIu64 ": positive return %d", t->name, n, rc);
			cr_assert(kvs_error_last()[0] != '\0',
			          "%s: n=%" PRIu64 ": %s with an empty kvs_error_last()", t->name, n,
			          kvs_strerror(rc));
			if (rc == KVS_ENOMEM) {
				enomem++;
			} else {
				other++;
				fprintf(stderr, "torture %s: n=%" PRIu64 " returned %s (%s)\n", t->name, n,
				        kvs_strerror(rc), kvs_error_last());
			}
		}
		t->after(t, rc);
		close_all(t);
		cr_assert_lt(runs, 100000, "%s: does not terminate", t->name);
	}
	if (total > 0)
		cr_assert_gt(runs, 0);
	fprintf(stderr,
	        "torture %-22s %6" PRIu64 " allocations, %4" PRIu64 " failing runs (step %" PRIu64
	        " past %u): %" PRIu64 " ENOMEM, %" PRIu64 " other, %" PRIu64 " succeeded anyway\n",
	        t->name, total, runs, step, DENSE, enomem, other, survived);
#ifdef TORTURE_LSAN
	cr_assert_eq(__lsan_do_recoverable_leak_check(), 0,
	             "%s: memory leaked (LeakSanitizer's report above says where)", t->name);
#endif
}

/* ------------------------------------------------------------------------ */
/* open                                                                     */

static void setup_open(tc *t)
{
	cr_assert_eq(kvs_backend_mem(&t->be, NULL), 0);
	t->s = NULL;
}

static int op_open(tc *t)
{
	kvs_options o = topts();
	return kvs_open(&t->s, t->be, &o);
}

static void after_open(tc *t, int rc)
{
	if (rc < 0) {
		cr_assert_null(t->s, "kvs_open failed but set *out");
		t->s = open_on(t->be, 1);   /* the backend is still ours */
	}
	put_ok(t->s, "k", v_small, SMALL);
	expect_value(t, "k", v_small, SMALL);
}

Test(torture, open)
{
	tc t = { .name = "open", .setup = setup_open, .op = op_open, .after = after_open };
	torture(&t);
}

/* ------------------------------------------------------------------------ */
/* put                                                                      */

static void setup_put(tc *t)
{
	fresh(t);
	if (t->oldv)
		put_ok(t->s, t->key, t->oldv, t->oldlen);
}

static int op_put(tc *t)
{
	return kvs_put(NULL, t->s, t->key, t->newv, t->newlen, NULL);
}

static void after_put(tc *t, int rc)
{
	if (rc == 0) {
		expect_value(t, t->key, t->newv, t->newlen);
		return;
	}
	old_or_new(t);
	put_ok(t->s, t->key, t->newv, t->newlen);
	expect_value(t, t->key, t->newv, t->newlen);
}

Test(torture, put_new_inline, .timeout = 300)
{
	make_values();
	tc t = { .name = "put_new_inline", .setup = setup_put, .op = op_put, .after = after_put,
	         .key = "k", .newv = v_small, .newlen = SMALL };
	torture(&t);
}

Test(torture, put_new_big, .timeout = 300)
{
	make_values();
	tc t = { .name = "put_new_big", .setup = setup_put, .op = op_put, .after = after_put,
	         .key = "k", .newv = v_big, .newlen = BIG };
	torture(&t);
}

Test(torture, put_existing_edit, .timeout = 300)
{
	make_values();
	tc t = { .name = "put_existing_edit", .setup = setup_put, .op = op_put,
	         .after = after_put, .key = "k", .oldv = v_big, .oldlen = BIG, .newv = v_edit,
	         .newlen = BIG };
	torture(&t);
}

/* The same with compression threads: failures land in worker threads too. */
Test(torture, put_existing_edit_threads, .timeout = 300)
{
	make_values();
	tc t = { .name = "put_existing_threads", .workers = 4, .setup = setup_put, .op = op_put,
	         .after = after_put, .key = "k", .oldv = v_big, .oldlen = BIG, .newv = v_edit,
	         .newlen = BIG };
	torture(&t);
}

/* ------------------------------------------------------------------------ */
/* history: rollback, and reading an older version                          */

static void setup_rollback(tc *t)
{
	fresh(t);
	put_ok(t->s, t->key, v_big, BIG);     /* version 1 */
	put_ok(t->s, t->key, v_edit, BIG);    /* version 2 */
}

static int op_rollback(tc *t)
{
	return kvs_rollback(NULL, t->s, t->key, 1, NULL);
}

static void after_rollback(tc *t, int rc)
{
	if (rc == 0) {
		expect_value(t, t->key, v_big, BIG);
		return;
	}
	old_or_new(t);   /* version 2 as it was, or version 1 again if the commit landed */
	cr_assert_eq(kvs_rollback(NULL, t->s, t->key, 1, NULL), 0, "%s: %s", t->name,
	             kvs_error_last());
	expect_value(t, t->key, v_big, BIG);
}

Test(torture, rollback, .timeout = 300)
{
	make_values();
	tc t = { .name = "rollback", .setup = setup_rollback, .op = op_rollback,
	         .after = after_rollback, .key = "k", .oldv = v_edit, .oldlen = BIG, .newv = v_big,
	         .newlen = BIG };
	torture(&t);
}

static int op_get_version(tc *t)
{
	kvs_get_options go = KVS_GET_OPTIONS_INIT;
	kvs_version_info *vi = NULL;
	size_t n = 0, len = 0;
	void *v = NULL;
	int rc;

	if ((rc = kvs_history(&vi, &n, NULL, t->s, t->key, NULL)) < 0)
		return rc;
	kvs_free(vi);
	go.generation = 1;
	if ((rc = kvs_get(&v, &len, NULL, t->s, t->key, &go)) < 0)
		return rc;
	if (len != BIG || memcmp(v, v_big, BIG) != 0)
		cr_assert_fail("%s: version 1 read back different bytes", t->name);
	kvs_free(v);
	return 0;
}

static void after_get_version(tc *t, int rc)
{
	(void)rc;
	expect_value(t, t->key, v_edit, BIG);
}

Test(torture, get_older_version, .timeout = 300)
{
	make_values();
	tc t = { .name = "get_older_version", .setup = setup_rollback, .op = op_get_version,
	         .after = after_get_version, .key = "k" };
	torture(&t);
}

/*
 * AlreadyExists: the value's segments are there already (the same bytes
 * under another key), so every create meets them and each is touched, read
 * back and verified (segwrite.c); "planted" also leaves a mutable copy under
 * one segment's name, which the put replaces in place.
 */
static void setup_put_twin(tc *t)
{
	fresh(t);
	put_ok(t->s, "twin", t->newv, t->newlen);
	if (!t->aux_n[0])
		return;
	kvs_object_list *l = NULL;
	kvs_object *o = NULL;
	cr_assert_eq(t->be->ops->list(t->be, &l, "kvsplit.io/role=segment", 1, NULL, 0), 0);
	cr_assert_eq(l->count, 1);
	cr_assert_eq(kvs_object_dup(&o, l->items[0]), 0);
	kvs_object_list_free(l);
	cr_assert_eq(t->be->ops->remove(t->be, o->name, NULL, NULL), 0);
	o->immutable = 0;
	cr_assert_eq(kvs_object_set_rv(o, ""), 0);
	cr_assert_eq(t->be->ops->create(t->be, NULL, o), 0, "%s", kvs_error_last());
	kvs_object_free(o);
}

Test(torture, put_over_existing_segments, .timeout = 300)
{
	make_values();
	tc t = { .name = "put_over_existing", .setup = setup_put_twin, .op = op_put,
	         .after = after_put, .key = "k", .newv = v_other, .newlen = BIG / 3 };
	torture(&t);
}

Test(torture, put_over_a_planted_mutable_segment, .timeout = 300)
{
	make_values();
	tc t = { .name = "put_over_planted", .setup = setup_put_twin, .op = op_put,
	         .after = after_put, .key = "k", .newv = v_other, .newlen = BIG / 3,
	         .aux_n = { 1 } };
	torture(&t);
}

/* ------------------------------------------------------------------------ */
/* streams                                                                  */

typedef struct cursor {
	const uint8_t *v;
	size_t len, pos;
	int differs;
} cursor;

static int rd_cb(void *ctx, void *buf, size_t cap, size_t *got)
{
	cursor *c = ctx;
	size_t n = c->len - c->pos;
	if (n > cap)
		n = cap;
	if (n > 100000)
		n = 100000;
	memcpy(buf, c->v + c->pos, n);
	c->pos += n;
	*got = n;
	return 0;
}

static int wr_cb(void *ctx, const void *buf, size_t len)
{
	cursor *c = ctx;
	if (len > c->len - c->pos || memcmp(buf, c->v + c->pos, len) != 0)
		c->differs = 1;
	else
		c->pos += len;
	return c->differs;
}

static int op_put_stream(tc *t)
{
	cursor c = { t->newv, t->newlen, 0, 0 };
	return kvs_put_stream(NULL, t->s, t->key, rd_cb, &c, NULL);
}

static void after_put_stream(tc *t, int rc)
{
	if (rc < 0)
		old_or_new(t);
	cursor c = { t->newv, t->newlen, 0, 0 };
	cr_assert_eq(kvs_put_stream(NULL, t->s, t->key, rd_cb, &c, NULL), 0, "%s",
	             kvs_error_last());
	expect_value(t, t->key, t->newv, t->newlen);
}

Test(torture, put_stream_existing_edit, .timeout = 300)
{
	make_values();
	tc t = { .name = "put_stream", .setup = setup_put, .op = op_put_stream,
	         .after = after_put_stream, .key = "k", .oldv = v_big, .oldlen = BIG,
	         .newv = v_edit, .newlen = BIG };
	torture(&t);
}

/* A stream over three windows: each read and cut while the one before it
 * compresses (put.c ingest_stream), so a failure may land in the read and
 * cut of the next window, beside the compression of this one. */
#define THREE_WINDOWS (9u * 1024u * 1024u)

Test(torture, put_stream_over_three_windows, .timeout = 600)
{
	static uint8_t *v_old, *v_new;
	size_t n = THREE_WINDOWS;

	if (!v_old) {
		v_old = malloc(n);
		v_new = malloc(n);
		cr_assert(v_old && v_new);
		fx_json((char *)v_old, n, 24);
		memcpy(v_new, v_old, n);
		for (int i = 0; i < 10; i++)
			fx_random(v_new + (size_t)i * (n / 10) + 4096, n / 1000, 200 + (uint64_t)i);
	}
	tc t = { .name = "put_stream_windows", .setup = setup_put, .op = op_put_stream,
	         .after = after_put_stream, .key = "k", .oldv = v_old, .oldlen = n,
	         .newv = v_new, .newlen = n };
	torture(&t);
}

/* ------------------------------------------------------------------------ */
/* reads: the op runs on a fresh client (cold cache)                        */

/* The data is written by one client; the op runs on another (cold cache). */
static void setup_reader(tc *t)
{
	kvs_backend *w, *r;
	cr_assert_eq(kvs_backend_mem(&w, NULL), 0);
	cr_assert_eq(kvs_backend_mem_clone(&r, w), 0);
	kvs_store *ws = open_on(w, 1);
	put_ok(ws, "k", v_big, BIG);
	put_ok(ws, "small", v_small, SMALL);
	put_ok(ws, "other", v_other, BIG / 3);
	kvs_close(ws);   /* the cluster lives on in r */
	t->be = r;
	t->s = open_on(r, 1);
	t->aux = NULL;
}

static void check_all_values(tc *t)
{
	expect_value(t, "k", v_big, BIG);
	expect_value(t, "small", v_small, SMALL);
	expect_value(t, "other", v_other, BIG / 3);
}

static int op_get(tc *t)
{
	void *p = NULL;
	size_t len = 0;
	int rc = kvs_get(&p, &len, NULL, t->s, "k", NULL);
	if (rc == 0)
		t->aux_n[0] = len == BIG && memcmp(p, v_big, BIG) == 0;
	else if (p)
		t->aux_n[1] = 1;   /* out set on failure */
	kvs_free(p);
	return rc;
}

static void after_get(tc *t, int rc)
{
	if (rc == 0)
		cr_assert(t->aux_n[0], "get returned a wrong value");
	cr_assert_eq(t->aux_n[1], 0, "get failed but returned a buffer");
	t->aux_n[0] = 0;
	cr_assert_eq(op_get(t), 0, "re-run: %s", kvs_error_last());
	cr_assert(t->aux_n[0], "re-run get returned a wrong value");
	check_all_values(t);
}

Test(torture, get, .timeout = 300)
{
	tc t = { .name = "get", .setup = setup_reader, .op = op_get, .after = after_get };
	torture(&t);
}

static int op_get_stream(tc *t)
{
	cursor c = { v_big, BIG, 0, 0 };
	int rc = kvs_get_stream(NULL, t->s, "k", wr_cb, &c, NULL);
	t->aux_n[0] = c.differs;
	t->aux_n[1] = c.pos;
	return rc;
}

static void after_get_stream(tc *t, int rc)
{
	cr_assert_eq(t->aux_n[0], 0, "get_stream delivered bytes that differ");
	if (rc == 0)
		cr_assert_eq(t->aux_n[1], BIG);
	cr_assert_eq(op_get_stream(t), 0, "re-run: %s", kvs_error_last());
	cr_assert_eq(t->aux_n[0], 0);
	cr_assert_eq(t->aux_n[1], BIG);
	check_all_values(t);
}

Test(torture, get_stream, .timeout = 300)
{
	tc t = { .name = "get_stream", .setup = setup_reader, .op = op_get_stream,
	         .after = after_get_stream };
	torture(&t);
}

static int op_stat(tc *t)
{
	kvs_stat st;
	memset(&st, 0, sizeof(st));
	int rc = kvs_stat_key(&st, t->s, "k", NULL);
	t->aux_n[0] = st.length;
	t->aux_n[1] = st.chunks;
	return rc;
}

static void after_stat(tc *t, int rc)
{
	if (rc == 0)
		cr_assert_eq(t->aux_n[0], BIG);
	cr_assert_eq(op_stat(t), 0, "re-run: %s", kvs_error_last());
	cr_assert_eq(t->aux_n[0], BIG);
	cr_assert_gt(t->aux_n[1], 1);
	check_all_values(t);
}

Test(torture, stat_key, .timeout = 300)
{
	tc t = { .name = "stat_key", .setup = setup_reader, .op = op_stat, .after = after_stat };
	torture(&t);
}

static int op_list(tc *t)
{
	kvs_list *l = NULL;
	kvs_list_options lo = KVS_LIST_OPTIONS_INIT;
	lo.limit = 2;                                     /* pages of 2: a token too */
	int rc = kvs_list_keys(&l, t->s, &lo);
	if (rc == 0) {
		t->aux_n[0] = l->count;
		t->aux_n[1] = l->next != NULL;
	} else {
		t->aux_n[2] = l != NULL;
	}
	kvs_list_free(l);
	return rc;
}

static void after_list(tc *t, int rc)
{
	cr_assert_eq(t->aux_n[2], 0, "list failed but set *out");
	if (rc == 0)
		cr_assert(t->aux_n[0] == 2 && t->aux_n[1], "list: %" PRIu64 " entries, next %" PRIu64,
		          t->aux_n[0], t->aux_n[1]);
	cr_assert_eq(op_list(t), 0, "re-run: %s", kvs_error_last());
	cr_assert(t->aux_n[0] == 2 && t->aux_n[1], "re-run: %" PRIu64 " entries, next %" PRIu64,
	          t->aux_n[0], t->aux_n[1]);
	check_all_values(t);
}

Test(torture, list_keys, .timeout = 300)
{
	tc t = { .name = "list_keys", .setup = setup_reader, .op = op_list, .after = after_list };
	torture(&t);
}

/* ------------------------------------------------------------------------ */
/* delete                                                                   */

static int op_delete(tc *t)
{
	return kvs_delete(t->s, t->key, NULL);
}

static void after_delete(tc *t, int rc)
{
	int present = value_is(t, t->key, t->oldv, t->oldlen);
	cr_assert_neq(present, -1);
	if (rc == 0)
		cr_assert_eq(present, 0, "deleted key still readable");
	if (present)
		cr_assert_eq(kvs_delete(t->s, t->key, NULL), 0, "re-run: %s", kvs_error_last());
	cr_assert_eq(value_is(t, t->key, t->oldv, t->oldlen), 0);
	expect_value(t, "small", v_small, SMALL);
	expect_value(t, "other", v_other, BIG / 3);
}

Test(torture, delete, .timeout = 300)
{
	make_values();
	tc t = { .name = "delete", .setup = setup_reader, .op = op_delete, .after = after_delete,
	         .key = "k", .oldv = v_big, .oldlen = BIG };
	torture(&t);
}

/* A key too long for an object name has a hashed index name: delete reads
 * the index first to check whose it is. */
static char long_key[301];

static void setup_long(tc *t)
{
	setup_reader(t);
	put_ok(t->s, long_key, v_small, SMALL);
}

Test(torture, delete_hashed_key, .timeout = 300)
{
	make_values();
	memset(long_key, 'x', sizeof(long_key) - 1);
	tc t = { .name = "delete_hashed_key", .setup = setup_long, .op = op_delete,
	         .after = after_delete, .key = long_key, .oldv = v_small, .oldlen = SMALL };
	torture(&t);
}

/* ------------------------------------------------------------------------ */
/* gc and fsck: a store with live values and orphans past grace             */

static void setup_orphans(tc *t)
{
	setup_reader(t);
	/* overwrite "other": its old segments become orphans */
	put_ok(t->s, "other", v_edit, BIG / 3);
	put_ok(t->s, "gone", v_other, BIG / 3);
	cr_assert_eq(kvs_delete(t->s, "gone", NULL), 0);
	kvs_mem_advance_clock(t->be, (int64_t)(GRACE_S + 10) * 1000);
}

static void check_live(tc *t)
{
	expect_value(t, "k", v_big, BIG);
	expect_value(t, "small", v_small, SMALL);
	expect_value(t, "other", v_edit, BIG / 3);
}

static int op_gc(tc *t)
{
	kvs_gc_options o = KVS_GC_OPTIONS_INIT;
	kvs_gc_report r;
	memset(&r, 0, sizeof(r));
	o.grace_s = GRACE_S;
	int rc = kvs_gc(&r, t->s, &o);
	t->aux_n[0] = r.deleted;
	return rc;
}

static void after_gc(tc *t, int rc)
{
	check_live(t);
	cr_assert_eq(op_gc(t), 0, "re-run: %s", kvs_error_last());
	cr_assert_eq(op_gc(t), 0, "second re-run: %s", kvs_error_last());
	cr_assert_eq(t->aux_n[0], 0, "gc left orphans behind");
	check_live(t);
}

Test(torture, gc, .timeout = 300)
{
	tc t = { .name = "gc", .setup = setup_orphans, .op = op_gc, .after = after_gc };
	torture(&t);
}

typedef struct fsck_count {
	uint64_t orphans, others;
} fsck_count;

static void on_problem(void *ctx, const kvs_fsck_problem *p)
{
	fsck_count *c = ctx;
	if (p->kind == KVS_FSCK_ORPHAN)
		c->orphans++;
	else
		c->others++;
}

static int run_fsck(tc *t, int repair)
{
	kvs_fsck_options o = KVS_FSCK_OPTIONS_INIT;
	kvs_fsck_report r;
	fsck_count c = { 0, 0 };
	memset(&r, 0, sizeof(r));
	o.repair = repair;
	o.grace_s = GRACE_S;
	o.on_problem = on_problem;
	o.ctx = &c;
	int rc = kvs_fsck(&r, t->s, &o);
	t->aux_n[0] = c.others;
	t->aux_n[1] = c.orphans;
	return rc;
}

static int op_fsck(tc *t)
{
	return run_fsck(t, 1);
}

static void after_fsck(tc *t, int rc)
{
	cr_assert_eq(t->aux_n[0], 0, "fsck reported %" PRIu64 " false problems", t->aux_n[0]);
	check_live(t);
	cr_assert_eq(run_fsck(t, 1), 0, "re-run: %s", kvs_error_last());
	cr_assert_eq(t->aux_n[0], 0);
	cr_assert_eq(run_fsck(t, 0), 0, "re-run: %s", kvs_error_last());
	cr_assert_eq(t->aux_n[0], 0);
	cr_assert_eq(t->aux_n[1], 0, "repair left orphans");
	check_live(t);
}

Test(torture, fsck_repair, .timeout = 300)
{
	tc t = { .name = "fsck_repair", .setup = setup_orphans, .op = op_fsck,
	         .after = after_fsck };
	torture(&t);
}

/* ------------------------------------------------------------------------ */
/* watch                                                                    */

/* Next event until the PUT of "k", compared with its value. */
static int watch_k(tc *t, kvs_watch *w)
{
	kvs_watch_event ev;
	int rc;

	for (int i = 0; i < 8; i++) {
		if ((rc = kvs_watch_next(&ev, w, 2000)) < 0)
			return rc;
		if (ev.kind == KVS_WATCH_PUT && strcmp(ev.key, "k") == 0) {
			t->aux_n[0] = ev.value_len == BIG && memcmp(ev.value, v_big, BIG) == 0;
			return 0;
		}
	}
	return kvs_error_set(KVS_ERROR, "no event for k");
}

static int op_watch(tc *t)
{
	kvs_watch_options o = KVS_WATCH_OPTIONS_INIT;
	kvs_watch *w = NULL;
	o.flags = KVS_WATCH_VALUES;
	int rc = kvs_watch_open(&w, t->s, "k", &o);
	if (rc == 0)
		rc = watch_k(t, w);
	kvs_watch_close(w);
	return rc;
}

static void after_watch(tc *t, int rc)
{
	if (rc == 0)
		cr_assert(t->aux_n[0], "watch delivered a wrong value");
	t->aux_n[0] = 0;
	cr_assert_eq(op_watch(t), 0, "re-run: %s", kvs_error_last());
	cr_assert(t->aux_n[0]);
	check_all_values(t);
}

Test(torture, watch_open_next, .timeout = 300)
{
	tc t = { .name = "watch_open_next", .setup = setup_reader, .op = op_watch,
	         .after = after_watch };
	torture(&t);
}

/* A failed kvs_watch_next must not lose the change: the next call on the
 * same watch delivers it. */
static void setup_watch(tc *t)
{
	kvs_watch_options o = KVS_WATCH_OPTIONS_INIT;
	kvs_watch *w;
	setup_reader(t);
	o.flags = KVS_WATCH_VALUES;
	cr_assert_eq(kvs_watch_open(&w, t->s, "k", &o), 0, "%s", kvs_error_last());
	t->aux = w;
}

static int op_watch_next(tc *t)
{
	return watch_k(t, t->aux);
}

static void after_watch_next(tc *t, int rc)
{
	if (rc < 0) {
		t->aux_n[0] = 0;
		cr_assert_eq(watch_k(t, t->aux), 0, "next after a failed next: %s",
		             kvs_error_last());
	}
	cr_assert(t->aux_n[0], "watch delivered a wrong value");
	kvs_watch_close(t->aux);
	t->aux = NULL;
}

Test(torture, watch_next_retried, .timeout = 300)
{
	tc t = { .name = "watch_next_retried", .setup = setup_watch, .op = op_watch_next,
	         .after = after_watch_next };
	torture(&t);
}
