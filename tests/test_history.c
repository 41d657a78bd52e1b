/*
 * test_history.c — suite `history`: a store keeps the last K versions of
 * each key (kvs_options.history), kvs_history lists them, a get reads any
 * of them (kvs_get_options.generation), kvs_rollback makes one current
 * again without sending value data; gc and fsck count what history
 * references, a version listed stays readable, and a damaged history never
 * makes the committed value unreadable. Runs on the in-memory backend and
 * through the API test server (KVS_TEST_BACKEND=kube).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvsplit.h>
#include <kvsplit/backend.h>

#include "support/fixture.h"
#include "history.h"
#include "internal.h"   /* kvs__store_set_manifest_max: indirect manifests */

#define STORE "hist"
#define SEG_SELECTOR "kvsplit.io/store=" STORE ",kvsplit.io/role=segment"
#define GRACE_S 2u      /* above the touch window of 1 s; the kube runs sleep past it */

static kvs_store *open_store(kvs_backend *b, uint32_t history)
{
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_store *st = NULL;

	o.name = STORE;
	o.chunk_min = 2048;
	o.chunk_avg = 8192;
	o.chunk_max = 32768;
	o.inline_max = 1024;
	o.segment_target = 24 * 1024;
	o.cache_bytes = KVS_CACHE_OFF;   /* every read goes to the server */
	o.touch_window_s = 1;
	o.history = history;
	int rc = kvs_open(&st, b, &o);
	cr_assert_eq(rc, 0, "kvs_open: %s", kvs_error_last());
	return st;
}

/* A writer and a gc/fsck handle on the same cluster. */
static void open_pair(kvs_store **w, kvs_store **g, uint32_t history)
{
	kvs_backend *b = NULL, *peer = NULL;

	cr_assert_eq(fx_backend(&b), 0);
	cr_assert_eq(fx_backend_peer(&peer, b), 0);
	*w = open_store(b, history);
	*g = open_store(peer, history);
}

static kvs_backend *backend_of(kvs_store *s)
{
	return s->be;
}

/* Move past gc's grace: the in-memory clock, or real time on the test server. */
static void past_grace(kvs_store *s)
{
	if (strcmp(fx_backend_kind(), "memory") == 0)
		kvs_mem_advance_clock(backend_of(s), (int64_t)(GRACE_S + 2) * 1000);
	else
		sleep(GRACE_S + 2);
}

static size_t count_segments(kvs_store *s)
{
	size_t n = 0;
	int rc = fx_count_objects(backend_of(s), SEG_SELECTOR, &n);

	cr_assert_eq(rc, 0, "list: %s", kvs_error_last());
	return n;
}

static void put_ok(kvs_store *st, const char *key, const void *v, size_t len)
{
	int rc = kvs_put(NULL, st, key, v, len, NULL);
	cr_assert_eq(rc, 0, "put %s: %s", key, kvs_error_last());
}

/* Version `gen` of `key` (0: the committed one) reads back exactly `want`. */
static void assert_version(kvs_store *st, const char *key, uint64_t gen, const void *want,
                           size_t len, const char *when)
{
	kvs_get_options o = KVS_GET_OPTIONS_INIT;
	void *got = NULL;
	size_t got_len = 0;
	int rc;

	o.generation = gen;
	rc = kvs_get(&got, &got_len, NULL, st, key, &o);
	cr_assert_eq(rc, 0, "%s: get %s@%llu: %s (%s)", when, key, (unsigned long long)gen,
	             kvs_strerror(rc), kvs_error_last());
	cr_assert_eq(got_len, len, "%s: %s@%llu has %zu bytes, want %zu", when, key,
	             (unsigned long long)gen, got_len, len);
	cr_assert(memcmp(got, want, len) == 0, "%s: %s@%llu differs", when, key,
	          (unsigned long long)gen);
	kvs_free(got);
}

static int get_version_rc(kvs_store *st, const char *key, uint64_t gen)
{
	kvs_get_options o = KVS_GET_OPTIONS_INIT;
	void *got = NULL;
	size_t got_len = 0;
	int rc;

	o.generation = gen;
	rc = kvs_get(&got, &got_len, NULL, st, key, &o);
	kvs_free(got);
	return rc;
}

static size_t list_versions(kvs_store *st, const char *key, kvs_version_info **out)
{
	size_t n = 0;
	int rc = kvs_history(out, &n, NULL, st, key, NULL);

	cr_assert_eq(rc, 0, "history %s: %s", key, kvs_error_last());
	return n;
}

static void gc_ok(kvs_store *g, kvs_gc_report *r)
{
	kvs_gc_options o = KVS_GC_OPTIONS_INIT;
	int rc;

	o.grace_s = GRACE_S;
	memset(r, 0, sizeof(*r));
	rc = kvs_gc(r, g, &o);
	cr_assert_eq(rc, 0, "gc: %s", kvs_error_last());
}

static void fsck_problem(void *ctx, const kvs_fsck_problem *p)
{
	(void)ctx;
	cr_log_info("fsck: %s %s: %s", p->key ? p->key : "-", p->object ? p->object : "-",
	            p->detail ? p->detail : "");
}

static uint64_t fsck_problems(kvs_store *g)
{
	kvs_fsck_options o = KVS_FSCK_OPTIONS_INIT;
	kvs_fsck_report r;
	int rc;

	o.grace_s = GRACE_S;
	o.on_problem = fsck_problem;
	memset(&r, 0, sizeof(r));
	rc = kvs_fsck(&r, g, &o);
	cr_assert_eq(rc, 0, "fsck: %s", kvs_error_last());
	return r.problems;
}

/* Three values that share most chunks (an edit in the middle). */
static void values(char **v1, char **v2, size_t len)
{
	*v1 = malloc(len);
	*v2 = malloc(len);
	fx_random(*v1, len, 11);
	memcpy(*v2, *v1, len);
	fx_random(*v2 + len / 2, 4096, 12);
}

/* ------------------------------------------------------------------------ */

Test(history, put_put_rollback_and_gc_past_grace_leave_every_version_readable, .timeout = 60)
{
	kvs_store *w, *g;
	char *v1, *v2;
	size_t len = 200000;
	kvs_version_info *vi = NULL;
	kvs_gc_report r;
	kvs_put_stats ps;
	kvs_rollback_options ro = KVS_ROLLBACK_OPTIONS_INIT;

	open_pair(&w, &g, 0);
	values(&v1, &v2, len);
	put_ok(w, "k", v1, len);
	put_ok(w, "k", v2, len);
	ro.stats = &ps;
	cr_assert_eq(kvs_rollback(NULL, w, "k", 1, &ro), 0, "rollback: %s", kvs_error_last());
	/* no value data sent: only the history object of version 2 */
	cr_assert_eq(ps.chunks_written, 1, "rollback wrote %llu chunks",
	             (unsigned long long)ps.chunks_written);
	cr_assert_eq(ps.segments_written, 1);
	assert_version(w, "k", 0, v1, len, "after the rollback");

	cr_assert_eq(list_versions(w, "k", &vi), 3);
	cr_assert_eq(vi[0].generation, 3);
	cr_assert(vi[0].current);
	cr_assert_eq(vi[0].added, 0, "a rollback adds no bytes (%lld)", (long long)vi[0].added);
	cr_assert_eq(vi[1].generation, 2);
	cr_assert_eq(vi[2].generation, 1);
	cr_assert_gt(vi[2].added, 0);
	cr_assert_lt(vi[1].added, vi[2].added, "version 2 shares most of version 1's segments");
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(vi[i].length, len);
		cr_assert_gt(vi[i].time_ms, 0);
	}
	kvs_free(vi);

	past_grace(g);
	gc_ok(g, &r);
	past_grace(g);
	gc_ok(g, &r);
	assert_version(w, "k", 3, v1, len, "after gc");
	assert_version(w, "k", 2, v2, len, "after gc");
	assert_version(w, "k", 1, v1, len, "after gc");
	cr_assert_eq(fsck_problems(g), 0);
	free(v1);
	free(v2);
	kvs_close(w);
	kvs_close(g);
}

Test(history, off_keeps_nothing_and_gc_collects_the_old_version, .timeout = 60)
{
	kvs_store *w, *g;
	char *v1 = malloc(100000), *v2 = malloc(100000);
	kvs_version_info *vi = NULL;
	kvs_gc_report r;
	kvs_stat stt;

	open_pair(&w, &g, KVS_HISTORY_OFF);
	fx_random(v1, 100000, 1);
	fx_random(v2, 100000, 2);
	put_ok(w, "k", v1, 100000);
	put_ok(w, "k", v2, 100000);
	cr_assert_eq(list_versions(w, "k", &vi), 1);
	cr_assert_eq(vi[0].generation, 2);
	kvs_free(vi);
	cr_assert_eq(get_version_rc(w, "k", 1), KVS_ENOTFOUND);
	cr_assert_eq(kvs_rollback(NULL, w, "k", 1, NULL), KVS_ENOTFOUND);
	past_grace(g);
	gc_ok(g, &r);
	cr_assert_gt(r.deleted, 0, "the first version's segments were collected");
	cr_assert_eq(kvs_stat_key(&stt, w, "k", NULL), 0);
	cr_assert_eq(count_segments(g), stt.segments, "only the committed value's segments remain");
	assert_version(w, "k", 0, v2, 100000, "after gc");
	cr_assert_eq(fsck_problems(g), 0);
	free(v1);
	free(v2);
	kvs_close(w);
	kvs_close(g);
}

Test(history, keeps_the_last_k_and_gc_collects_what_only_trimmed_versions_used, .timeout = 60)
{
	kvs_store *w, *g;
	enum { N = 5, LEN = 20000 };   /* one segment each (segment_target 24 KiB) */
	char *v[N];
	kvs_version_info *vi = NULL;
	kvs_gc_report r;
	size_t before, after;

	open_pair(&w, &g, 2);
	for (int i = 0; i < N; i++) {
		v[i] = malloc(LEN);
		fx_random(v[i], LEN, 100 + (uint64_t)i);   /* nothing shared */
		put_ok(w, "k", v[i], LEN);
	}
	cr_assert_eq(list_versions(w, "k", &vi), 3, "the committed version and the last 2");
	cr_assert_eq(vi[0].generation, 5);
	cr_assert_eq(vi[1].generation, 4);
	cr_assert_eq(vi[2].generation, 3);
	kvs_free(vi);
	cr_assert_eq(get_version_rc(w, "k", 2), KVS_ENOTFOUND);
	cr_assert_eq(get_version_rc(w, "k", 1), KVS_ENOTFOUND);

	before = count_segments(g);
	past_grace(g);
	gc_ok(g, &r);
	after = count_segments(g);
	cr_assert_eq(before - after, r.deleted);
	/* versions 1 and 2 went: their value segments, and the history objects of
	 * versions 1 and 2 (version 3's and 4's stay, listed) */
	{
		kvs_stat s5;
		uint64_t per = 0;
		cr_assert_eq(kvs_stat_key(&s5, w, "k", NULL), 0);
		per = s5.segments;
		cr_assert_eq(per, 1);
		cr_assert_eq(r.deleted, 2 * per + 2, "deleted %llu, want %llu",
		             (unsigned long long)r.deleted, (unsigned long long)(2 * per + 2));
		cr_assert_eq(after, 3 * per + 2);
	}
	for (int i = 2; i < N; i++)
		assert_version(w, "k", (uint64_t)i + 1, v[i], LEN, "after gc");
	cr_assert_eq(fsck_problems(g), 0);
	for (int i = 0; i < N; i++)
		free(v[i]);
	kvs_close(w);
	kvs_close(g);
}

/* Replace the history table of `key`'s index with `tab` (a planted or damaged
 * one, as a hostile writer could), keeping everything else. */
static void plant_history(kvs_store *s, const char *key, const uint8_t *tab, uint32_t len)
{
	kvs_backend *b = backend_of(s);
	char name[KVS__NAME_BUF];
	kvs_object *idx = NULL, *res = NULL;
	kvs__manifest m;
	uint8_t *enc = NULL;
	size_t enclen = 0;
	const kvs_blob *d;

	cr_assert_eq(kvs__key_to_index(name, s, key, NULL), 0);
	cr_assert_eq(b->ops->get(b, &idx, name), 0);
	d = kvs_object_data(idx, "manifest");
	cr_assert_not_null(d);
	cr_assert_eq(kvs__manifest_decode(&m, d->data, d->len, "test"), 0, "%s", kvs_error_last());
	cr_assert(m.v3);
	free(m.hist);
	m.hist = malloc(len ? len : 1);
	memcpy(m.hist, tab, len);
	m.hist_len = len;
	cr_assert_eq(kvs__manifest_encode(&enc, &enclen, &m, 1u << 20), 0, "%s", kvs_error_last());
	kvs__manifest_clear(&m);
	{
		kvs_object *n = kvs_object_new(name);
		const char *labels[][2] = { { "app.kubernetes.io/managed-by", "kvsplit" },
		                            { "kvsplit.io/store", STORE },
		                            { "kvsplit.io/role", "index" } };
		for (int i = 0; i < 3; i++)
			cr_assert_eq(kvs_object_set_label(n, labels[i][0], labels[i][1]), 0);
		cr_assert_eq(kvs_object_add_data(n, "manifest", enc, enclen), 0);
		cr_assert_eq(kvs_object_set_rv(n, idx->resource_version), 0);
		cr_assert_eq(b->ops->replace(b, &res, n), 0, "%s", kvs_error_last());
		kvs_object_free(n);
	}
	free(enc);
	kvs_object_free(idx);
	kvs_object_free(res);
}

/* The history table of `key` as stored. */
static uint32_t read_table(kvs_store *s, const char *key, uint8_t *out, uint32_t cap)
{
	kvs_backend *b = backend_of(s);
	char name[KVS__NAME_BUF];
	kvs_object *idx = NULL;
	kvs__manifest m;
	uint32_t n;
	const kvs_blob *d;

	cr_assert_eq(kvs__key_to_index(name, s, key, NULL), 0);
	cr_assert_eq(b->ops->get(b, &idx, name), 0);
	d = kvs_object_data(idx, "manifest");
	cr_assert_eq(kvs__manifest_decode(&m, d->data, d->len, "test"), 0);
	n = m.hist_len;
	cr_assert_leq(n, cap);
	memcpy(out, m.hist, n);
	kvs__manifest_clear(&m);
	kvs_object_free(idx);
	return n;
}

Test(history, a_planted_entry_gives_a_clear_error_and_the_committed_value_reads, .timeout = 60)
{
	kvs_store *w, *g;
	char *v1, *v2;
	size_t len = 100000;
	uint8_t tab[KVS__MF_HIST_MAX];
	uint32_t n;
	kvs_version_info *vi = NULL;
	kvs_gc_report r;
	kvs_gc_options go = KVS_GC_OPTIONS_INIT;
	int rc;

	open_pair(&w, &g, 0);
	values(&v1, &v2, len);
	put_ok(w, "k", v1, len);
	put_ok(w, "k", v2, len);
	n = read_table(w, "k", tab, sizeof(tab));
	cr_assert_eq(n, KVS__HIST_REC);
	/* version 1's record now names a history object that does not exist */
	tab[32] ^= 0xff;
	plant_history(w, "k", tab, n);

	assert_version(w, "k", 0, v2, len, "with a planted history");
	cr_assert_eq(list_versions(w, "k", &vi), 2);
	kvs_free(vi);
	rc = get_version_rc(w, "k", 1);
	cr_assert_eq(rc, KVS_ENOTFOUND, "%s", kvs_strerror(rc));
	cr_assert(strstr(kvs_error_last(), "version 1") && strstr(kvs_error_last(), "history object"),
	          "detail: %s", kvs_error_last());
	cr_assert_eq(kvs_rollback(NULL, w, "k", 1, NULL), KVS_ENOTFOUND);
	assert_version(w, "k", 0, v2, len, "after the refused rollback");

	/* gc cannot know what version 1 references: it deletes nothing */
	past_grace(g);
	go.grace_s = GRACE_S;
	rc = kvs_gc(&r, g, &go);
	cr_assert_eq(rc, KVS_ECORRUPT, "gc: %s", kvs_strerror(rc));
	cr_assert(strstr(kvs_error_last(), "nothing deleted"), "%s", kvs_error_last());
	cr_assert_gt(fsck_problems(g), 0);

	/* a table that is not whole records: log says so, the value still reads */
	plant_history(w, "k", tab, n - 1);
	assert_version(w, "k", 0, v2, len, "with a damaged history table");
	rc = kvs_history(&vi, &(size_t){ 0 }, NULL, w, "k", NULL);
	cr_assert_eq(rc, KVS_ECORRUPT);
	cr_assert(strstr(kvs_error_last(), "committed value still reads"), "%s", kvs_error_last());
	cr_assert_eq(get_version_rc(w, "k", 1), KVS_ECORRUPT);

	/* the next put drops the damaged table: history works again */
	put_ok(w, "k", v1, len);
	cr_assert_eq(list_versions(w, "k", &vi), 2);
	cr_assert_eq(vi[1].generation, 2);
	kvs_free(vi);
	assert_version(w, "k", 2, v2, len, "after the repairing put");
	free(v1);
	free(v2);
	kvs_close(w);
	kvs_close(g);
}

Test(history, rollback_is_conditional_like_a_put)
{
	kvs_store *w, *g;
	kvs_ver v1, v2, v3;
	kvs_rollback_options ro = KVS_ROLLBACK_OPTIONS_INIT;
	int rc;

	open_pair(&w, &g, 0);
	cr_assert_eq(kvs_put(&v1, w, "c", "one", 3, NULL), 0);
	cr_assert_eq(kvs_put(&v2, w, "c", "two", 3, NULL), 0);
	ro.expect_version = v1.str;
	rc = kvs_rollback(NULL, w, "c", 1, &ro);
	cr_assert_eq(rc, KVS_ECONFLICT, "%s", kvs_strerror(rc));
	assert_version(w, "c", 0, "two", 3, "after the refused rollback");
	ro.expect_version = v2.str;
	cr_assert_eq(kvs_rollback(&v3, w, "c", 1, &ro), 0, "%s", kvs_error_last());
	cr_assert_str_neq(v3.str, v2.str);
	assert_version(w, "c", 0, "one", 3, "after the rollback");
	assert_version(w, "c", 2, "two", 3, "after the rollback");
	cr_assert_eq(kvs_rollback(NULL, w, "c", 0, NULL), KVS_EINVAL);
	cr_assert_eq(kvs_rollback(NULL, w, "c", 9, NULL), KVS_ENOTFOUND);
	cr_assert_eq(kvs_rollback(NULL, w, "nope", 1, NULL), KVS_ENOTFOUND);
	cr_assert_eq(get_version_rc(w, "c", 9), KVS_ENOTFOUND);
	kvs_close(w);
	kvs_close(g);
}

Test(history, indirect_manifests_keep_history_too, .timeout = 60)
{
	kvs_store *w, *g;
	char *v1, *v2;
	size_t len = 300000;
	kvs_gc_report r;

	open_pair(&w, &g, 0);
	/* ~40 chunks of 28 bytes: over a 1 KiB index manifest, so indirect */
	cr_assert_eq(kvs__store_set_manifest_max(w, 1024), 0);
	values(&v1, &v2, len);
	put_ok(w, "big", v1, len);
	put_ok(w, "big", v2, len);
	cr_assert_eq(kvs_rollback(NULL, w, "big", 1, NULL), 0, "%s", kvs_error_last());
	past_grace(g);
	gc_ok(g, &r);
	assert_version(w, "big", 0, v1, len, "after gc");
	assert_version(w, "big", 2, v2, len, "after gc");
	assert_version(w, "big", 1, v1, len, "after gc");
	cr_assert_eq(fsck_problems(g), 0);
	free(v1);
	free(v2);
	kvs_close(w);
	kvs_close(g);
}

Test(history, an_index_written_without_history_reads_and_becomes_history)
{
	kvs_backend *b = NULL, *peer = NULL;
	kvs_store *old, *w;
	kvs_version_info *vi = NULL;

	cr_assert_eq(fx_backend(&b), 0);
	cr_assert_eq(fx_backend_peer(&peer, b), 0);
	old = open_store(b, KVS_HISTORY_OFF);   /* writes format version 1 manifests */
	w = open_store(peer, 0);
	cr_assert_eq(kvs_put(NULL, old, "o", "old", 3, NULL), 0);
	cr_assert_eq(list_versions(w, "o", &vi), 1);
	cr_assert_eq(vi[0].time_ms, -1);
	cr_assert_eq(vi[0].added, -1);
	kvs_free(vi);
	cr_assert_eq(kvs_put(NULL, w, "o", "new", 3, NULL), 0);
	cr_assert_eq(list_versions(w, "o", &vi), 2);
	cr_assert_eq(vi[1].generation, 1);
	cr_assert_eq(vi[1].time_ms, -1);
	cr_assert_gt(vi[0].time_ms, 0);
	kvs_free(vi);
	assert_version(w, "o", 1, "old", 3, "old version");
	assert_version(old, "o", 0, "new", 3, "current");
	kvs_close(old);
	kvs_close(w);
}

Test(history, map_keys_keep_no_history)
{
	kvs_store *w, *g;
	kvs_map_batch *mb = NULL;
	kvs_version_info *vi = NULL;
	size_t n = 0;

	open_pair(&w, &g, 0);
	cr_assert_eq(kvs_map_batch_new(&mb), 0);
	cr_assert_eq(kvs_map_batch_put(mb, "f", 1, "v", 1), 0);
	cr_assert_eq(kvs_map_commit(NULL, w, "m", mb, NULL), 0, "%s", kvs_error_last());
	kvs_map_batch_free(mb);
	cr_assert_eq(kvs_history(&vi, &n, NULL, w, "m", NULL), KVS_EUNSUPPORTED);
	cr_assert(strstr(kvs_error_last(), "map"), "%s", kvs_error_last());
	cr_assert_eq(kvs_rollback(NULL, w, "m", 1, NULL), KVS_EUNSUPPORTED);
	kvs_close(w);
	kvs_close(g);
}

Test(history, store_option_is_capped)
{
	kvs_backend *b = NULL;
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_store *st = NULL;

	cr_assert_eq(fx_backend(&b), 0);
	o.history = KVS_HISTORY_MAX + 1;
	cr_assert_eq(kvs_open(&st, b, &o), KVS_EINVAL);
	cr_assert(strstr(kvs_error_last(), "history"), "%s", kvs_error_last());
	o.history = KVS_HISTORY_MAX;
	cr_assert_eq(kvs_open(&st, b, &o), 0, "%s", kvs_error_last());
	kvs_close(st);
}

/* The way out of a history gc cannot read (docs/operations.md): roll back to
 * the committed version itself with history off; gc then works again. */
Test(history, rollback_to_the_current_version_without_history_unblocks_gc, .timeout = 60)
{
	kvs_backend *b = NULL, *peer = NULL, *p2 = NULL;
	kvs_store *w, *g, *off;
	char *v1, *v2;
	size_t len = 100000;
	uint8_t tab[KVS__MF_HIST_MAX];
	uint32_t n;
	kvs_version_info *vi = NULL;
	kvs_gc_report r;
	kvs_gc_options go = KVS_GC_OPTIONS_INIT;

	cr_assert_eq(fx_backend(&b), 0);
	cr_assert_eq(fx_backend_peer(&peer, b), 0);
	cr_assert_eq(fx_backend_peer(&p2, b), 0);
	w = open_store(b, 0);
	g = open_store(peer, 0);
	off = open_store(p2, KVS_HISTORY_OFF);
	values(&v1, &v2, len);
	put_ok(w, "k", v1, len);
	put_ok(w, "k", v2, len);
	n = read_table(w, "k", tab, sizeof(tab));
	tab[32] ^= 0xff;   /* names a history object that does not exist */
	plant_history(w, "k", tab, n);
	go.grace_s = GRACE_S;
	cr_assert_eq(kvs_gc(&r, g, &go), KVS_ECORRUPT);

	cr_assert_eq(kvs_rollback(NULL, off, "k", 2, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(list_versions(w, "k", &vi), 1);
	cr_assert_eq(vi[0].generation, 3);
	kvs_free(vi);
	assert_version(w, "k", 0, v2, len, "after the rollback to itself");
	past_grace(g);
	gc_ok(g, &r);
	cr_assert_gt(r.deleted, 0, "version 1's segments and history object go");
	assert_version(w, "k", 0, v2, len, "after gc");
	cr_assert_eq(fsck_problems(g), 0);
	free(v1);
	free(v2);
	kvs_close(w);
	kvs_close(g);
	kvs_close(off);
}

/* Another writer commits right before the rollback's commit (in-memory hook). */
typedef struct interloper {
	kvs_store *other;
	const char *v;
	size_t len;
	int done;
} interloper;

static int interlope(void *ctx, kvs_mem_call kind, const char *name)
{
	interloper *x = ctx;

	if (!x->done && kind == KVS_MEM_REPLACE && name && strstr(name, ".i-")) {
		x->done = 1;
		cr_assert_eq(kvs_put(NULL, x->other, "k", x->v, x->len, NULL), 0, "%s",
		             kvs_error_last());
	}
	return 0;
}

Test(history, a_blind_rollback_that_loses_the_race_rebases_and_keeps_every_version,
     .timeout = 60)
{
	if (strcmp(fx_backend_kind(), "memory") != 0)
		cr_skip_test("needs the in-memory backend's hooks");
	kvs_backend *b = NULL, *peer = NULL, *p2 = NULL;
	kvs_store *w, *g, *other;
	char *v1, *v2, *v3;
	size_t len = 100000;
	kvs_version_info *vi = NULL;
	kvs_gc_report r;
	kvs_rollback_options ro = KVS_ROLLBACK_OPTIONS_INIT;
	kvs_ver cur;
	interloper x = { NULL, NULL, 0, 0 };

	cr_assert_eq(fx_backend(&b), 0);
	cr_assert_eq(fx_backend_peer(&peer, b), 0);
	cr_assert_eq(fx_backend_peer(&p2, b), 0);
	w = open_store(b, 0);
	g = open_store(peer, 0);
	other = open_store(p2, 0);
	values(&v1, &v2, len);
	v3 = malloc(len);
	fx_random(v3, len, 33);
	put_ok(w, "k", v1, len);
	put_ok(w, "k", v2, len);

	/* conditional: the interloper's commit makes it a conflict, nothing changes */
	cr_assert_eq(kvs_history(&vi, &(size_t){ 0 }, &cur, w, "k", NULL), 0);
	kvs_free(vi);
	x.other = other;
	x.v = v3;
	x.len = len;
	kvs_mem_set_hook(b, interlope, &x);
	ro.expect_version = cur.str;
	cr_assert_eq(kvs_rollback(NULL, w, "k", 1, &ro), KVS_ECONFLICT);
	kvs_mem_set_hook(b, NULL, NULL);
	assert_version(w, "k", 0, v3, len, "after the refused rollback");

	/* blind: rebased on the interloper's version 4 (v2 again), committed as 5 */
	x.done = 0;
	x.v = v2;
	kvs_mem_set_hook(b, interlope, &x);
	cr_assert_eq(kvs_rollback(NULL, w, "k", 1, NULL), 0, "%s", kvs_error_last());
	kvs_mem_set_hook(b, NULL, NULL);
	cr_assert(x.done);
	cr_assert_eq(list_versions(w, "k", &vi), 5);
	cr_assert_eq(vi[0].generation, 5);
	kvs_free(vi);
	past_grace(g);
	gc_ok(g, &r);
	assert_version(w, "k", 5, v1, len, "after gc");
	assert_version(w, "k", 4, v2, len, "after gc");
	assert_version(w, "k", 3, v3, len, "after gc");
	assert_version(w, "k", 2, v2, len, "after gc");
	assert_version(w, "k", 1, v1, len, "after gc");
	cr_assert_eq(fsck_problems(g), 0);
	free(v1);
	free(v2);
	free(v3);
	kvs_close(w);
	kvs_close(g);
	kvs_close(other);
}

/*
 * The pause hole (docs/design.md) with history: a base committed late — here
 * an index without its touch-check time, as a writer paused inside its commit
 * or an old release leaves it — protects nothing it references. The history
 * object that late writer created may already be gone to a gc that read the
 * index before; the next put touches every record it carries and drops one
 * found gone, so every version it lists still reads.
 */
Test(history, a_put_over_a_late_base_drops_a_history_object_found_gone)
{
	kvs_backend *b = NULL;
	kvs_store *w;
	kvs_version_info *vi = NULL;
	uint8_t tab[4 * KVS__HIST_REC];
	char name[KVS__NAME_BUF];
	kvs__manifest m;
	kvs__hentry *e = NULL;
	uint32_t len, ne = 0;
	size_t n;

	cr_assert_eq(fx_backend(&b), 0);
	w = open_store(b, 0);
	put_ok(w, "k", "one", 3);
	put_ok(w, "k", "two", 3);
	put_ok(w, "k", "three", 5);
	len = read_table(w, "k", tab, sizeof(tab));
	cr_assert_eq(len, 2 * KVS__HIST_REC);
	memset(&m, 0, sizeof(m));
	m.generation = 3;   /* the committed version: "three" */
	m.hist = tab;
	m.hist_len = len;
	cr_assert_eq(kvs__hist_parse(&e, &ne, &m, "test"), 0, "%s", kvs_error_last());
	cr_assert_eq(ne, 2);
	cr_assert_eq(e[1].gen, 1);
	/* gc took version 1's history object; the index loses its touch-check time */
	kvs__segment_name(name, STORE, e[1].seg);
	cr_assert_eq(b->ops->remove(b, name, NULL, NULL), 0, "remove %s: %s", name, kvs_error_last());
	plant_history(w, "k", tab, len);
	free(e);

	put_ok(w, "k", "four", 4);
	n = list_versions(w, "k", &vi);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(get_version_rc(w, "k", vi[i].current ? 0 : vi[i].generation), 0,
		             "version %llu is listed but does not read: %s",
		             (unsigned long long)vi[i].generation, kvs_error_last());
	cr_assert_eq(n, 3, "versions listed: %zu (4, 3, 2; 1 is gone)", n);
	kvs_free(vi);
	assert_version(w, "k", 2, "two", 3, "version 2");
	kvs_close(w);
}
