/*
 * test_crash.c — suite "crash" (memory backend only): a put that dies after
 * its k-th backend call, or sees one failure at call k, for every k until
 * the put goes through, leaves the old value readable and intact, and the
 * put can be re-run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <kvsplit.h>
#include <kvsplit/backend.h>

#include "support/fixture.h"

#define N1 (1536u * 1024u)

static kvs_options small_opts(void)
{
	kvs_options o = KVS_OPTIONS_INIT;
	o.segment_target = 96 * 1024;   /* many segments, many calls */
	o.concurrency = 3;
	o.cache_bytes = UINT64_MAX;
	o.history = KVS_HISTORY_OFF;    /* counts exactly the segments a put creates */
	return o;
}

static kvs_store *store_on(kvs_backend *b)
{
	kvs_options o = small_opts();
	kvs_store *s;
	cr_assert_eq(kvs_open(&s, b, &o), 0, "%s", kvs_error_last());
	return s;
}

static kvs_store *peer(kvs_backend *main)
{
	kvs_backend *b;
	cr_assert_eq(kvs_backend_mem_clone(&b, main), 0);
	return store_on(b);
}

static void expect(kvs_store *s, const uint8_t *want, size_t n)
{
	void *p = NULL;
	size_t len;
	int rc = kvs_get(&p, &len, NULL, s, "k", NULL);
	cr_assert_eq(rc, 0, "get: %s", kvs_error_last());
	cr_assert_eq(len, n);
	cr_assert(memcmp(p, want, n) == 0, "value differs");
	kvs_free(p);
}

/* Old value, and a new one that shares half its chunks with it and has
 * 600 KiB of incompressible new bytes (several new segments). */
#define NEW (600u * 1024u)
static void values(uint8_t **v1, uint8_t **v2)
{
	*v1 = malloc(N1);
	*v2 = malloc(N1 + NEW);
	fx_json((char *)*v1, N1, 7);
	memcpy(*v2, *v1, N1 / 2);
	fx_random(*v2 + N1 / 2, NEW, 8);
	memcpy(*v2 + N1 / 2 + NEW, *v1 + N1 / 2, N1 / 2);
}

static void run(int crash)
{
	uint8_t *v1, *v2;
	int succeeded = 0;
	uint64_t k;

	values(&v1, &v2);
	for (k = 1; k < 500 && !succeeded; k++) {
		kvs_backend *main;
		cr_assert_eq(kvs_backend_mem(&main, NULL), 0);
		kvs_store *s0 = store_on(main);
		cr_assert_eq(kvs_put(NULL, s0, "k", v1, N1, NULL), 0);

		kvs_backend *h;
		cr_assert_eq(kvs_backend_mem_clone(&h, main), 0);
		kvs_store *sw = store_on(h);
		if (crash)
			kvs_mem_crash_after(h, k);   /* calls 1..k work, k+1 on die */
		else
			kvs_mem_fail_nth(h, k, KVS_EIO);
		int rc = kvs_put(NULL, sw, "k", v2, N1 + NEW, NULL);
		kvs_store *reader = peer(main);
		if (rc == 0) {
			succeeded = 1;
			expect(reader, v2, N1 + NEW);
		} else {
			expect(reader, v1, N1);   /* old value intact */
			kvs_store *again = crash ? peer(main) : sw;
			cr_assert_eq(kvs_put(NULL, again, "k", v2, N1 + NEW, NULL), 0,
			             "re-run after failure at call %llu: %s", (unsigned long long)k,
			             kvs_error_last());
			expect(reader, v2, N1 + NEW);
			if (again != sw)
				kvs_close(again);
		}
		kvs_close(reader);
		kvs_close(sw);
		kvs_close(s0);
	}
	cr_assert(succeeded, "put never succeeded");
	cr_assert_gt(k, 5, "too few calls to be meaningful (%llu)", (unsigned long long)k);
	free(v1);
	free(v2);
}

Test(crash, put_killed_after_any_call_leaves_old_value_and_can_be_rerun, .timeout = 120)
{
	run(1);
}

Test(crash, single_failure_at_any_call_leaves_old_value_and_can_be_rerun, .timeout = 120)
{
	run(0);
}

/* ------------------------------------------------------------------------ */
/* Lost responses: a call takes effect but its response never arrives.      */

#define SMALL (20u * 1024u)    /* inline in the index */
#define BIG (400u * 1024u)     /* several segments of ~96 KiB */

enum lose_form { LOSE_EIO, LOSE_TIMEOUT, LOSE_RETRY, NFORMS };
static const char *const form_names[NFORMS] = { "EIO", "ETIMEOUT", "retry" };

static void lose_nth(kvs_backend *h, uint64_t k, enum lose_form f)
{
	if (f == LOSE_RETRY)
		kvs_mem_lose_response_nth_retry(h, k);
	else
		kvs_mem_lose_response_nth(h, k, f == LOSE_TIMEOUT ? KVS_ETIMEOUT : 0);
}

/* Counts the calls that reach the hook (all of them, without other faults)
 * and notes whether call `target` is the commit of the index. */
typedef struct tally {
	uint64_t calls, target, commit_at;
	int target_is_commit;
} tally;

static int is_index_commit(kvs_mem_call kind, const char *name)
{
	return (kind == KVS_MEM_CREATE || kind == KVS_MEM_REPLACE) && name &&
	       strstr(name, ".i-") != NULL;
}

static int tally_hook(void *ctx, kvs_mem_call kind, const char *name)
{
	tally *t = ctx;
	t->calls++;
	if (is_index_commit(kind, name)) {
		t->commit_at = t->calls;
		if (t->calls == t->target)
			t->target_is_commit = 1;
	}
	return 0;
}

/* v1 (old) and v2 (new) of `len` bytes sharing their first half; the new
 * half of v2 is incompressible. */
static void lost_values(uint8_t **v1, uint8_t **v2, size_t len)
{
	*v1 = malloc(len);
	*v2 = malloc(len);
	cr_assert(*v1 && *v2);
	fx_json((char *)*v1, len, 11);
	memcpy(*v2, *v1, len / 2);
	fx_random(*v2 + len / 2, len - len / 2, 12);
}

static void expect_absent(kvs_store *s)
{
	void *p = NULL;
	size_t len;
	cr_assert_eq(kvs_get(&p, &len, NULL, s, "k", NULL), KVS_ENOTFOUND,
	             "the key exists after a failed put of a new key");
}

/*
 * For every form and every call k of the put (of a new key, or over an old
 * value; blind, or conditional on what the writer read): lose the response
 * of call k. The put must return 0 with exactly the new value committed at
 * the version it returned, or fail (never with a conflict: nobody else
 * writes) with the old value intact; when call k was the commit, it must
 * return 0.
 */
static void run_lost(int existing, size_t len, int conditional)
{
	uint8_t *v1, *v2;

	lost_values(&v1, &v2, len);
	for (int f = 0; f < NFORMS; f++) {
		int saw_commit = 0, done = 0;
		for (uint64_t k = 1; !done; k++) {
			kvs_backend *main, *h;
			kvs_ver v0 = { { 0 } }, v = { { 0 } }, got = { { 0 } };
			kvs_put_stats st;
			kvs_put_options po = KVS_PUT_OPTIONS_INIT;
			tally t = { 0, k, 0, 0 };

			cr_assert_lt(k, 400, "put never finished");
			cr_assert_eq(kvs_backend_mem(&main, NULL), 0);
			kvs_store *s0 = store_on(main);
			if (existing)
				cr_assert_eq(kvs_put(&v0, s0, "k", v1, len, NULL), 0, "%s", kvs_error_last());
			cr_assert_eq(kvs_backend_mem_clone(&h, main), 0);
			kvs_store *sw = store_on(h);
			kvs_mem_set_hook(h, tally_hook, &t);
			lose_nth(h, k, (enum lose_form)f);
			memset(&st, 0, sizeof(st));
			po.stats = &st;
			if (conditional)
				po.expect_version = existing ? v0.str : "";
			int rc = kvs_put(&v, sw, "k", v2, len, &po);
			kvs_store *reader = peer(main);
			done = t.calls < k;   /* the put needed fewer calls: nothing was lost */
			if (rc == 0) {
				void *p = NULL;
				size_t n = 0;
				cr_assert_eq(kvs_get(&p, &n, &got, reader, "k", NULL), 0, "%s", kvs_error_last());
				cr_assert(n == len && memcmp(p, v2, len) == 0,
				          "%s at call %llu: put returned 0 but the new value is not there",
				          form_names[f], (unsigned long long)k);
				cr_assert_str_eq(v.str, got.str, "returned version is not the committed one");
				cr_assert_eq(st.raw_bytes, len, "stats not filled");
				kvs_free(p);
				/* committed once: the writer recognised its own commit */
				kvs_stat ks;
				cr_assert_eq(kvs_stat_key(&ks, reader, "k", NULL), 0, "%s", kvs_error_last());
				cr_assert_eq(ks.generation, existing ? 2 : 1,
				             "%s at call %llu: generation %llu: committed more than once",
				             form_names[f], (unsigned long long)k,
				             (unsigned long long)ks.generation);
			} else {
				cr_assert(rc != KVS_ECONFLICT && rc != KVS_EEXISTS,
				          "%s at call %llu: a lone writer got %s: %s", form_names[f],
				          (unsigned long long)k, kvs_strerror(rc), kvs_error_last());
				if (existing)
					expect(reader, v1, len);
				else
					expect_absent(reader);
			}
			if (t.target_is_commit) {
				saw_commit = 1;
				cr_assert_eq(rc, 0, "%s on the commit (call %llu): the value was committed "
				             "but the put returned %s: %s", form_names[f],
				             (unsigned long long)k, kvs_strerror(rc), kvs_error_last());
			}
			kvs_close(reader);
			kvs_close(sw);
			kvs_close(s0);
		}
		cr_assert(saw_commit, "%s: the commit call was never hit", form_names[f]);
	}
	free(v1);
	free(v2);
}

Test(crash, lost_response_at_any_call_of_a_new_inline_put, .timeout = 120)
{
	run_lost(0, SMALL, 0);
}

Test(crash, lost_response_at_any_call_of_a_new_chunked_put, .timeout = 120)
{
	run_lost(0, BIG, 0);
}

Test(crash, lost_response_at_any_call_of_an_inline_put_over_a_value, .timeout = 120)
{
	run_lost(1, SMALL, 0);
}

Test(crash, lost_response_at_any_call_of_a_chunked_put_over_a_value, .timeout = 120)
{
	run_lost(1, BIG, 0);
}

Test(crash, conditional_put_never_reports_conflict_for_its_own_lost_commit, .timeout = 120)
{
	run_lost(1, BIG, 1);
}

Test(crash, create_only_put_never_reports_exists_for_its_own_lost_create, .timeout = 120)
{
	run_lost(0, SMALL, 1);
}

/* The call number of the commit of a put of v2 over v1 (deterministic). */
static uint64_t commit_call(const uint8_t *v1, const uint8_t *v2, size_t len)
{
	kvs_backend *main, *h;
	tally t = { 0, 0, 0, 0 };

	cr_assert_eq(kvs_backend_mem(&main, NULL), 0);
	kvs_store *s0 = store_on(main);
	cr_assert_eq(kvs_put(NULL, s0, "k", v1, len, NULL), 0);
	cr_assert_eq(kvs_backend_mem_clone(&h, main), 0);
	kvs_store *sw = store_on(h);
	kvs_mem_set_hook(h, tally_hook, &t);
	cr_assert_eq(kvs_put(NULL, sw, "k", v2, len, NULL), 0);
	kvs_close(sw);
	kvs_close(s0);
	cr_assert_gt(t.commit_at, 0);
	return t.commit_at;
}

/* Put v2 over v1 on a fresh cluster; call `c` (the commit) of the writer
 * fails without effect, or has its response lost, and with `fail_next` the
 * call after it fails too. Returns the put's code and its detail in msg, and
 * leaves the committed value in *now. */
static int put_over(const uint8_t *v1, const uint8_t *v2, size_t len, uint64_t c,
                    int lose_commit, int fail_next, void **now, size_t *now_len, char msg[1024])
{
	kvs_backend *main, *h;

	cr_assert_eq(kvs_backend_mem(&main, NULL), 0);
	kvs_store *s0 = store_on(main);
	cr_assert_eq(kvs_put(NULL, s0, "k", v1, len, NULL), 0);
	cr_assert_eq(kvs_backend_mem_clone(&h, main), 0);
	kvs_store *sw = store_on(h);
	if (lose_commit)
		kvs_mem_lose_response_nth(h, c, KVS_EIO);
	else
		kvs_mem_fail_nth(h, c, KVS_EIO);
	if (fail_next)
		kvs_mem_fail_nth(h, c + 1, KVS_EIO);
	int rc = kvs_put(NULL, sw, "k", v2, len, NULL);
	snprintf(msg, 1024, "%s", kvs_error_last());
	cr_assert_eq(kvs_get(now, now_len, NULL, s0, "k", NULL), 0, "%s", kvs_error_last());
	kvs_close(sw);
	kvs_close(s0);
	return rc;
}

Test(crash, commit_that_did_not_apply_returns_the_error_and_keeps_old_value, .timeout = 60)
{
	uint8_t *v1, *v2;
	void *now = NULL;
	size_t n = 0;

	lost_values(&v1, &v2, BIG);
	uint64_t c = commit_call(v1, v2, BIG);
	char msg[1024];
	int rc = put_over(v1, v2, BIG, c, 0, 0, &now, &n, msg);
	cr_assert_eq(rc, KVS_EIO, "got %s: %s", kvs_strerror(rc), msg);
	cr_assert(strstr(msg, "did not apply"), "detail: %s", msg);
	cr_assert(n == BIG && memcmp(now, v1, BIG) == 0, "old value not intact");
	kvs_free(now);
	free(v1);
	free(v2);
}

Test(crash, lost_commit_whose_reread_fails_reports_an_unknown_outcome, .timeout = 60)
{
	uint8_t *v1, *v2;
	void *now = NULL;
	size_t n = 0;

	lost_values(&v1, &v2, BIG);
	uint64_t c = commit_call(v1, v2, BIG);
	char msg[1024];
	int rc = put_over(v1, v2, BIG, c, 1, 1, &now, &n, msg);
	cr_assert_eq(rc, KVS_EIO, "got %s: %s", kvs_strerror(rc), msg);
	cr_assert(strstr(msg, "outcome of the commit is unknown") && strstr(msg, "kvsplit stat k"),
	          "detail: %s", msg);
	/* and indeed it had applied */
	cr_assert(n == BIG && memcmp(now, v2, BIG) == 0, "the new value is not committed");
	kvs_free(now);
	free(v1);
	free(v2);
}

/* Two writers, both conditional on the same state, writing the same bytes:
 * writer B's whole put runs just before writer A's commit. */
typedef struct racer {
	kvs_store *b;
	const uint8_t *v;
	size_t len;
	const char *expect;
	int rc, ran;
} racer;

static int race_hook(void *ctx, kvs_mem_call kind, const char *name)
{
	racer *r = ctx;
	if (!r->ran && is_index_commit(kind, name)) {
		kvs_put_options po = KVS_PUT_OPTIONS_INIT;
		po.expect_version = r->expect;
		r->ran = 1;
		r->rc = kvs_put(NULL, r->b, "k", r->v, r->len, &po);
	}
	return 0;
}

static void race_identical(int existing, size_t len)
{
	uint8_t *v1, *v2;
	kvs_backend *main, *ha, *hb;
	kvs_ver v0 = { { 0 } };
	kvs_put_options po = KVS_PUT_OPTIONS_INIT;

	lost_values(&v1, &v2, len);
	cr_assert_eq(kvs_backend_mem(&main, NULL), 0);
	kvs_store *s0 = store_on(main);
	if (existing)
		cr_assert_eq(kvs_put(&v0, s0, "k", v1, len, NULL), 0);
	cr_assert_eq(kvs_backend_mem_clone(&ha, main), 0);
	cr_assert_eq(kvs_backend_mem_clone(&hb, main), 0);
	kvs_store *sa = store_on(ha), *sb = store_on(hb);
	racer r = { sb, v2, len, existing ? v0.str : "", 0, 0 };
	kvs_mem_set_hook(ha, race_hook, &r);
	po.expect_version = r.expect;
	int rc = kvs_put(NULL, sa, "k", v2, len, &po);
	int lost = existing ? KVS_ECONFLICT : KVS_EEXISTS;
	cr_assert(r.ran, "writer B never ran");
	cr_assert_eq(r.rc, 0, "writer B: %s", kvs_strerror(r.rc));
	cr_assert_eq(rc, lost, "writer A: got %s, want %s (both cannot have won)", kvs_strerror(rc),
	             kvs_strerror(lost));
	expect(s0, v2, len);
	kvs_close(sa);
	kvs_close(sb);
	kvs_close(s0);
	free(v1);
	free(v2);
}

Test(crash, racing_create_only_writers_of_identical_bytes_get_one_success, .timeout = 60)
{
	race_identical(0, SMALL);
}

Test(crash, racing_conditional_writers_of_identical_bytes_get_one_success, .timeout = 60)
{
	race_identical(1, BIG);
}

/* ------------------------------------------------------------------------ */
/* Partial batches: segment counts that are not multiples of concurrency.   */

/*
 * The put creates new segments `concurrency` (3) at a time; a value whose
 * count of new segments is a multiple of 3 never has a partial last batch,
 * so a put that created only its last partial batch after the commit would
 * pass the crash test above. These values have 1, 2, 4, 5 and 7 new
 * segments. The writer is killed after every call k in turn, and before
 * every call that reaches the backend (and after the put) a reader on
 * another handle reads the key: what is committed must read back exactly,
 * old or new, so a committed index never references a segment not yet
 * created; a failed put leaves the old value, a successful one the new.
 *
 * Checked to fail: with put.c changed locally to create the last partial
 * batch after the commit (the two flush() calls before the commit in
 * do_put removed, one flush() after a successful commit added), each of
 * these tests fails (a writer killed between the commit and that flush
 * leaves a committed index whose segment "is missing") while the crash
 * tests above still pass.
 */
#define PB_OLD (256u * 1024u)

typedef struct watcher {
	kvs_store *reader;
	const uint8_t *v1, *v2;
	size_t n1, n2;
	uint64_t checks;
	int saw_new;
} watcher;

/* 1 if the committed value is v1, 2 if v2; fails the test otherwise. */
static int committed_value(watcher *w, const char *when)
{
	void *p = NULL;
	size_t len = 0;
	int rc = kvs_get(&p, &len, NULL, w->reader, "k", NULL);
	int which = 0;

	cr_assert_eq(rc, 0, "%s: the committed value does not read: %s: %s", when, kvs_strerror(rc),
	             kvs_error_last());
	if (len == w->n1 && memcmp(p, w->v1, len) == 0)
		which = 1;
	else if (len == w->n2 && memcmp(p, w->v2, len) == 0)
		which = 2;
	kvs_free(p);
	cr_assert(which, "%s: the committed value is neither the old nor the new one", when);
	w->checks++;
	return which;
}

static int watch_hook(void *ctx, kvs_mem_call kind, const char *name)
{
	watcher *w = ctx;
	char when[300];
	static const char *const kinds[KVS_MEM_NCALLS] = { "get", "create", "replace", "annotate",
	                                                   "remove", "list", "watch", "head" };
	snprintf(when, sizeof(when), "before %s %s", (unsigned)kind < KVS_MEM_NCALLS ? kinds[kind] : "?",
	         name ? name : "-");
	if (committed_value(w, when) == 2)
		w->saw_new = 1;
	return 0;
}

/* The new value: old's first half, `fresh` random bytes, old's second half. */
static uint8_t *pb_value(const uint8_t *v1, size_t fresh, uint64_t seed)
{
	uint8_t *v = malloc(PB_OLD + fresh);
	cr_assert(v);
	memcpy(v, v1, PB_OLD / 2);
	fx_random(v + PB_OLD / 2, fresh, seed);
	memcpy(v + PB_OLD / 2 + fresh, v1 + PB_OLD / 2, PB_OLD / 2);
	return v;
}

/* New segments a put of v2 over v1 creates, on a fresh cluster. */
static uint64_t pb_segments(const uint8_t *v1, const uint8_t *v2, size_t n2)
{
	kvs_backend *main;
	kvs_put_stats st;
	kvs_put_options po = KVS_PUT_OPTIONS_INIT;

	cr_assert_eq(kvs_backend_mem(&main, NULL), 0);
	kvs_store *s = store_on(main);
	cr_assert_eq(kvs_put(NULL, s, "k", v1, PB_OLD, NULL), 0);
	memset(&st, 0, sizeof(st));
	po.stats = &st;
	cr_assert_eq(kvs_put(NULL, s, "k", v2, n2, &po), 0, "%s", kvs_error_last());
	kvs_close(s);
	return st.segments_written;
}

static void crash_partial(uint64_t want)
{
	uint8_t *v1 = malloc(PB_OLD), *v2 = NULL;
	size_t fresh, n2 = 0;
	uint64_t k;
	int succeeded = 0;

	cr_assert(v1);
	fx_json((char *)v1, PB_OLD, 21);
	/* the smallest edit (in steps of 8 KiB) that makes `want` new segments */
	for (fresh = 8 * 1024; fresh <= 2048u * 1024u; fresh += 8 * 1024) {
		v2 = pb_value(v1, fresh, want);
		n2 = PB_OLD + fresh;
		if (pb_segments(v1, v2, n2) == want)
			break;
		free(v2);
		v2 = NULL;
	}
	cr_assert_not_null(v2, "no edit makes exactly %llu new segments", (unsigned long long)want);
	for (k = 1; k < 500 && !succeeded; k++) {
		kvs_backend *main, *h;
		char when[64];
		cr_assert_eq(kvs_backend_mem(&main, NULL), 0);
		kvs_store *s0 = store_on(main);
		cr_assert_eq(kvs_put(NULL, s0, "k", v1, PB_OLD, NULL), 0);
		cr_assert_eq(kvs_backend_mem_clone(&h, main), 0);
		kvs_store *sw = store_on(h);
		watcher w = { peer(main), v1, v2, PB_OLD, n2, 0, 0 };
		kvs_mem_set_hook(h, watch_hook, &w);
		kvs_mem_crash_after(h, k);   /* calls 1..k work, k+1 on die */
		int rc = kvs_put(NULL, sw, "k", v2, n2, NULL);
		snprintf(when, sizeof(when), "after a put killed after call %llu", (unsigned long long)k);
		int now = committed_value(&w, when);
		if (rc == 0) {
			succeeded = 1;
			cr_assert_eq(now, 2, "the put returned 0 but the old value is committed");
		} else {
			cr_assert_eq(now, 1, "killed after call %llu: the put failed (%s) but its value is "
			             "committed", (unsigned long long)k, kvs_strerror(rc));
			cr_assert_eq(w.saw_new, 0);
		}
		cr_assert_gt(w.checks, k < 2 ? 1 : 2);
		kvs_close(w.reader);
		kvs_close(sw);
		kvs_close(s0);
	}
	cr_assert(succeeded, "put never succeeded");
	cr_assert_gt(k, want + 2, "%llu calls for %llu new segments", (unsigned long long)k,
	             (unsigned long long)want);
	free(v1);
	free(v2);
}

Test(crash, killed_put_with_1_new_segment_commits_only_created_segments, .timeout = 120)
{
	crash_partial(1);
}

Test(crash, killed_put_with_2_new_segments_commits_only_created_segments, .timeout = 120)
{
	crash_partial(2);
}

Test(crash, killed_put_with_4_new_segments_commits_only_created_segments, .timeout = 120)
{
	crash_partial(4);
}

Test(crash, killed_put_with_5_new_segments_commits_only_created_segments, .timeout = 120)
{
	crash_partial(5);
}

Test(crash, killed_put_with_7_new_segments_commits_only_created_segments, .timeout = 120)
{
	crash_partial(7);
}
