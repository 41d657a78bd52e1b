/*
 * test_mem.c — what only the in-memory backend has: fault injection, hooks,
 * the cluster clock, corruption, compaction, statistics and its own
 * validation details. Always runs on memory, whatever KVS_TEST_BACKEND says.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/fixture.h"

static kvs_backend *mb;

static void setup(void)
{
	int rc = kvs_backend_mem(&mb, NULL);
	cr_assert_eq(rc, 0, "kvs_backend_mem: %s", kvs_error_last());
}

static void teardown(void)
{
	kvs_backend_free(mb);
	mb = NULL;
}

TestSuite(mem, .init = setup, .fini = teardown, .timeout = 30);

static kvs_object *mk(const char *name, const char *data)
{
	kvs_object *o = kvs_object_new(name);

	cr_assert_not_null(o);
	cr_assert_eq(kvs_object_add_data(o, "d", data, strlen(data)), 0);
	return o;
}

static int create(kvs_backend *b, const char *name, const char *data)
{
	kvs_object *o = mk(name, data);
	int rc = b->ops->create(b, NULL, o);

	kvs_object_free(o);
	return rc;
}

static int exists(kvs_backend *b, const char *name)
{
	kvs_object *o = NULL;
	int rc = b->ops->get(b, &o, name);

	kvs_object_free(o);
	cr_assert(rc == 0 || rc == KVS_ENOTFOUND, "get %s: %s", name, kvs_error_last());
	return rc == 0;
}

static char *rv_of(kvs_backend *b, const char *name)
{
	kvs_object *o = NULL;

	cr_assert_eq(b->ops->get(b, &o, name), 0);
	char *rv = strdup(o->resource_version);
	kvs_object_free(o);
	return rv;
}

Test(mem, fail_nth_fails_exactly_that_call_and_leaves_state_unchanged)
{
	kvs_mem_fail_nth(mb, 3, KVS_EIO);
	cr_expect_eq(create(mb, "n1", "x"), 0);
	cr_expect_eq(create(mb, "n2", "x"), 0);
	cr_expect_eq(create(mb, "n3", "x"), KVS_EIO);
	cr_expect_eq(create(mb, "n4", "x"), 0);
	cr_expect(!exists(mb, "n3"));
	cr_expect_eq(create(mb, "n3", "x"), 0, "only the third call fails");
}

Test(mem, failed_replace_by_fail_nth_keeps_revision_and_data)
{
	cr_assert_eq(create(mb, "keep", "v1"), 0);
	char *rv = rv_of(mb, "keep");
	kvs_object *o = mk("keep", "v2");
	kvs_mem_fail_nth(mb, 1, KVS_EIO);
	cr_expect_eq(mb->ops->replace(mb, NULL, o), KVS_EIO);
	kvs_object_free(o);
	char *rv2 = rv_of(mb, "keep");
	cr_expect_str_eq(rv2, rv);
	free(rv);
	free(rv2);
}

Test(mem, fail_kind_fails_every_call_of_that_kind_only_until_cleared)
{
	cr_assert_eq(create(mb, "k", "v1"), 0);
	kvs_mem_fail_kind(mb, KVS_MEM_REPLACE, KVS_ETIMEOUT);
	kvs_object *o = mk("k", "v2");
	cr_expect_eq(mb->ops->replace(mb, NULL, o), KVS_ETIMEOUT);
	cr_expect_eq(mb->ops->replace(mb, NULL, o), KVS_ETIMEOUT);
	cr_expect(exists(mb, "k"), "get is not affected");
	cr_expect_eq(create(mb, "k2", "x"), 0, "create is not affected");
	kvs_mem_fail_kind(mb, KVS_MEM_REPLACE, 0);
	cr_expect_eq(mb->ops->replace(mb, NULL, o), 0);
	kvs_object_free(o);
}

Test(mem, crash_after_fails_every_later_call_with_eio_and_no_effect)
{
	kvs_backend *peer = NULL;

	cr_assert_eq(kvs_backend_mem_clone(&peer, mb), 0);
	kvs_mem_crash_after(mb, 2);
	cr_expect_eq(create(mb, "c1", "x"), 0);
	cr_expect_eq(create(mb, "c2", "x"), 0);
	cr_expect_eq(create(mb, "c3", "x"), KVS_EIO);
	cr_expect_eq(mb->ops->remove(mb, "c1", NULL, NULL), KVS_EIO);
	kvs_object *o = NULL;
	cr_expect_eq(mb->ops->get(mb, &o, "c1"), KVS_EIO);
	/* The cluster is fine: another client sees exactly the first two. */
	cr_expect(exists(peer, "c1"));
	cr_expect(exists(peer, "c2"));
	cr_expect(!exists(peer, "c3"));
	kvs_backend_free(peer);
}

struct hook_log {
	char calls[16][64];
	int n;
	kvs_backend *peer;
	int interleave;
	int refuse;
};

static int hook(void *ctx, kvs_mem_call kind, const char *name)
{
	struct hook_log *h = ctx;

	if (h->n < 16)
		snprintf(h->calls[h->n++], 64, "%d:%s", (int)kind, name ? name : "-");
	if (h->interleave && kind == KVS_MEM_REPLACE) {
		/* Another writer commits just before our replace takes effect. */
		h->interleave = 0;
		kvs_object *o = mk(name, "peer");
		cr_assert_eq(h->peer->ops->replace(h->peer, NULL, o), 0, "%s", kvs_error_last());
		kvs_object_free(o);
	}
	return h->refuse;
}

Test(mem, hook_sees_kind_and_object_name_of_every_call)
{
	struct hook_log h = { 0 };
	kvs_object_list *l = NULL;

	kvs_mem_set_hook(mb, hook, &h);
	cr_assert_eq(create(mb, "h1", "x"), 0);
	cr_assert(exists(mb, "h1"));
	cr_assert_eq(mb->ops->list(mb, &l, NULL, 0, NULL, 0), 0);
	kvs_object_list_free(l);
	cr_assert_eq(mb->ops->remove(mb, "h1", NULL, NULL), 0);
	cr_assert_eq(h.n, 4);
	cr_expect_str_eq(h.calls[0], "1:h1");
	cr_expect_str_eq(h.calls[1], "0:h1");
	cr_expect_str_eq(h.calls[2], "5:-");
	cr_expect_str_eq(h.calls[3], "4:h1");
}

Test(mem, hook_can_interleave_a_peer_write_before_the_call_takes_effect)
{
	struct hook_log h = { 0 };

	cr_assert_eq(kvs_backend_mem_clone(&h.peer, mb), 0);
	cr_assert_eq(create(mb, "race", "v1"), 0);
	char *rv = rv_of(mb, "race");
	kvs_object *o = mk("race", "mine");
	kvs_object_set_rv(o, rv);
	h.interleave = 1;
	kvs_mem_set_hook(mb, hook, &h);
	cr_expect_eq(mb->ops->replace(mb, NULL, o), KVS_ECONFLICT, "%s", kvs_error_last());
	kvs_object_free(o);
	kvs_object *g = NULL;
	cr_assert_eq(mb->ops->get(mb, &g, "race"), 0);
	cr_expect_eq(memcmp(kvs_object_data(g, "d")->data, "peer", 4), 0);
	kvs_object_free(g);
	free(rv);
	kvs_backend_free(h.peer);
}

Test(mem, hook_returning_error_fails_the_call_without_effect)
{
	struct hook_log h = { .refuse = KVS_EDENIED };

	kvs_mem_set_hook(mb, hook, &h);
	cr_expect_eq(create(mb, "refused", "x"), KVS_EDENIED);
	kvs_mem_set_hook(mb, NULL, NULL);
	cr_expect(!exists(mb, "refused"));
}

Test(mem, corrupt_flips_one_bit_without_changing_rv)
{
	cr_assert_eq(create(mb, "bits", "ABCD"), 0);
	char *rv = rv_of(mb, "bits");
	cr_assert_eq(kvs_mem_corrupt(mb, "bits", "d", 2), 0);
	kvs_object *g = NULL;
	cr_assert_eq(mb->ops->get(mb, &g, "bits"), 0);
	const kvs_blob *d = kvs_object_data(g, "d");
	cr_expect_eq(d->data[0], 'A');
	cr_expect_eq(d->data[1], 'B');
	cr_expect_eq(__builtin_popcount((unsigned)(d->data[2] ^ 'C')), 1);
	cr_expect_eq(d->data[3], 'D');
	cr_expect_str_eq(g->resource_version, rv);
	kvs_object_free(g);
	free(rv);
	cr_expect_eq(kvs_mem_corrupt(mb, "bits", "d", 4), KVS_EINVAL);
	cr_expect_eq(kvs_mem_corrupt(mb, "bits", "nope", 0), KVS_ENOTFOUND);
	cr_expect_eq(kvs_mem_corrupt(mb, "nope", "d", 0), KVS_ENOTFOUND);
}

Test(mem, clone_shares_objects_and_revision_counter_but_not_faults)
{
	kvs_backend *peer = NULL;
	kvs_object *out = NULL;

	cr_assert_eq(kvs_backend_mem_clone(&peer, mb), 0);
	cr_assert_eq(create(mb, "one", "x"), 0);
	char *rv1 = rv_of(mb, "one");
	kvs_object *o = mk("two", "y");
	cr_assert_eq(peer->ops->create(peer, &out, o), 0);
	cr_expect_eq(strtoull(out->resource_version, NULL, 10), strtoull(rv1, NULL, 10) + 1);
	cr_expect(exists(peer, "one"));
	cr_expect(exists(mb, "two"));
	kvs_mem_fail_kind(mb, KVS_MEM_GET, KVS_EIO);
	cr_expect(exists(peer, "one"), "faults are per handle");
	kvs_object_free(o);
	kvs_object_free(out);
	free(rv1);
	/* The cluster outlives the first handle. */
	kvs_backend_free(mb);
	mb = NULL;
	cr_expect(exists(peer, "two"));
	kvs_backend_free(peer);
}

Test(mem, stats_count_calls_and_data_bytes_per_handle)
{
	kvs_mem_stats st;
	kvs_object *g = NULL;

	cr_assert_eq(create(mb, "s1", "0123456789"), 0);
	cr_assert_eq(create(mb, "s2", "abc"), 0);
	cr_assert_eq(mb->ops->get(mb, &g, "s1"), 0);
	kvs_object_free(g);
	kvs_mem_get_stats(mb, &st);
	cr_expect_eq(st.calls[KVS_MEM_CREATE], 2);
	cr_expect_eq(st.calls[KVS_MEM_GET], 1);
	cr_expect_eq(st.bytes_written, 13);
	cr_expect_eq(st.bytes_read, 10);
	cr_expect_eq(st.objects, 2);
	cr_expect_eq(st.stored_bytes, 13);
	kvs_mem_reset_stats(mb);
	cr_assert_eq(mb->ops->remove(mb, "s1", NULL, NULL), 0);
	kvs_mem_get_stats(mb, &st);
	cr_expect_eq(st.calls[KVS_MEM_CREATE], 0);
	cr_expect_eq(st.calls[KVS_MEM_REMOVE], 1);
	cr_expect_eq(st.objects, 1);
	cr_expect_eq(st.stored_bytes, 3);
}

Test(mem, batch_ops_count_as_calls_and_hit_faults_one_by_one)
{
	kvs_object *o = mk("bn", "x");
	kvs_op ops[3] = {
		{ .kind = KVS_OP_CREATE, .in = o },
		{ .kind = KVS_OP_GET, .name = "bn" },
		{ .kind = KVS_OP_GET, .name = "bn" },
	};
	kvs_mem_stats st;

	kvs_mem_fail_nth(mb, 2, KVS_EIO);
	cr_assert_eq(mb->ops->batch(mb, ops, 3), 0);
	cr_expect_eq(ops[0].result, 0);
	cr_expect_eq(ops[1].result, KVS_EIO);
	cr_expect_eq(ops[2].result, 0);
	kvs_mem_get_stats(mb, &st);
	cr_expect_eq(st.calls[KVS_MEM_GET], 2);
	cr_expect_eq(st.calls[KVS_MEM_CREATE], 1);
	for (int i = 0; i < 3; i++)
		kvs_object_free(ops[i].out);
	kvs_object_free(o);
}

Test(mem, clock_advance_moves_now_and_created_ms)
{
	int64_t t0, t1;
	kvs_object *g = NULL;

	cr_assert_eq(mb->ops->now(mb, &t0), 0);
	cr_expect_gt(t0, 1700000000000LL, "starts at real time");
	kvs_mem_advance_clock(mb, 3600 * 1000);
	cr_assert_eq(mb->ops->now(mb, &t1), 0);
	cr_expect_geq(t1 - t0, 3600 * 1000);
	cr_expect_lt(t1 - t0, 3600 * 1000 + 5000);
	cr_assert_eq(create(mb, "late", "x"), 0);
	cr_assert_eq(mb->ops->get(mb, &g, "late"), 0);
	cr_expect_geq(g->created_ms, t0 + 3600 * 1000 - 1000);
	cr_expect_leq(g->created_ms, t1 + 5000);
	cr_expect_eq(g->created_ms % 1000, 0, "creationTimestamp has whole seconds");
	kvs_object_free(g);
}

static int next_ev(kvs_backend_watch *w, kvs_event *ev)
{
	return mb->ops->watch_next(w, ev, 0);
}

Test(mem, compact_gives_egone_to_a_lagging_open_watch)
{
	kvs_backend_watch *w = NULL;
	kvs_event ev = { 0 };

	cr_assert_eq(create(mb, "a", "x"), 0);
	char *rv = rv_of(mb, "a");
	cr_assert_eq(mb->ops->watch_open(mb, &w, NULL, rv), 0);
	cr_assert_eq(create(mb, "b", "x"), 0);
	kvs_mem_compact(mb);
	cr_expect_eq(next_ev(w, &ev), KVS_EGONE, "%s", kvs_error_last());
	mb->ops->watch_close(w);
	free(rv);
}

Test(mem, compact_spares_a_watch_that_is_caught_up)
{
	kvs_backend_watch *w = NULL;
	kvs_event ev = { 0 };

	cr_assert_eq(create(mb, "a", "x"), 0);
	char *rv = rv_of(mb, "a");
	cr_assert_eq(mb->ops->watch_open(mb, &w, NULL, rv), 0);
	kvs_mem_compact(mb);
	cr_assert_eq(create(mb, "b", "x"), 0);
	cr_expect_eq(next_ev(w, &ev), 0, "%s", kvs_error_last());
	cr_expect_eq(ev.type, KVS_EVENT_ADDED);
	kvs_event_clear(&ev);
	mb->ops->watch_close(w);
	free(rv);
}

Test(mem, history_ring_overflow_gives_egone_to_older_revisions)
{
	kvs_mem_options opts = KVS_MEM_OPTIONS_INIT;
	kvs_backend *small = NULL;
	kvs_backend_watch *watch = NULL;

	opts.history = 4;
	cr_assert_eq(kvs_backend_mem(&small, &opts), 0);
	for (int i = 0; i < 6; i++) {
		char name[16];
		snprintf(name, sizeof(name), "o%d", i);
		cr_assert_eq(create(small, name, "x"), 0);
	}
	/* Revisions 1..6 written, 3..6 kept: from 2 is fine, from 1 is gone. */
	cr_expect_eq(small->ops->watch_open(small, &watch, NULL, "1"), KVS_EGONE);
	cr_assert_eq(small->ops->watch_open(small, &watch, NULL, "2"), 0, "%s", kvs_error_last());
	small->ops->watch_close(watch);
	kvs_backend_free(small);
}

Test(mem, short_idle_wait_times_out_and_long_one_gives_bookmark)
{
	kvs_backend_watch *w = NULL;
	kvs_event ev = { 0 };

	cr_assert_eq(mb->ops->watch_open(mb, &w, NULL, "0"), 0);
	cr_expect_eq(mb->ops->watch_next(w, &ev, 10), KVS_ETIMEOUT);
	cr_expect_eq(mb->ops->watch_next(w, &ev, 150), 0);
	cr_expect_eq(ev.type, KVS_EVENT_BOOKMARK);
	kvs_event_clear(&ev);
	mb->ops->watch_close(w);
}

Test(mem, watch_outlives_the_backend_handle)
{
	kvs_backend *peer = NULL;
	kvs_backend_watch *w = NULL;
	kvs_event ev = { 0 };

	cr_assert_eq(kvs_backend_mem_clone(&peer, mb), 0);
	cr_assert_eq(mb->ops->watch_open(mb, &w, NULL, ""), 0);
	const kvs_backend_ops *ops = mb->ops;
	kvs_backend_free(mb);
	mb = NULL;
	cr_assert_eq(create(peer, "late", "x"), 0);
	cr_expect_eq(ops->watch_next(w, &ev, 0), 0);
	cr_expect_str_eq(ev.object->name, "late");
	kvs_event_clear(&ev);
	ops->watch_close(w);
	kvs_backend_free(peer);
}

Test(mem, malformed_label_selectors_are_einval)
{
	static const char *const bad[] = {
		"a=b=c", "a in", "a in (b", "=b", "a,", "!", "a notin b",
		"a>x", "Bad Key=1", "a=b!", "a=" "0123456789012345678901234567890123456789"
		"012345678901234567890123456789",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kvs_object_list *l = NULL;
		cr_expect_eq(mb->ops->list(mb, &l, bad[i], 0, NULL, 0), KVS_EINVAL,
		             "selector \"%s\" accepted", bad[i]);
		kvs_object_list_free(l);
	}
}

Test(mem, well_formed_label_selectors_are_accepted)
{
	static const char *const good[] = {
		"", "a", "!a", "a=", "a = b", "a==b", "a!=b", "a in (b, c)", "a notin (in, notin)",
		"a in ()", /* the set {""}, as k8s.io/apimachinery/pkg/labels parses it */
		"x.io/a=b,c", "a>3", "a<2", " a ,  b = c ",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		kvs_object_list *l = NULL;
		cr_expect_eq(mb->ops->list(mb, &l, good[i], 0, NULL, 0), 0,
		             "selector \"%s\": %s", good[i], kvs_error_last());
		kvs_object_list_free(l);
	}
}

Test(mem, invalid_data_keys_are_einvalobj)
{
	static const char *const bad[] = { "", "a/b", "sp ace", ".", "..", "..x" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kvs_object *o = kvs_object_new("keys");
		cr_assert_eq(kvs_object_add_data(o, bad[i], "x", 1), 0);
		cr_expect_eq(mb->ops->create(mb, NULL, o), KVS_EINVALOBJ, "key \"%s\" accepted",
		             bad[i]);
		kvs_object_free(o);
	}
}

Test(mem, duplicate_data_keys_are_einvalobj)
{
	kvs_object *o = kvs_object_new("dups");

	cr_assert_eq(kvs_object_add_data(o, "k", "x", 1), 0);
	cr_assert_eq(kvs_object_add_data(o, "k", "y", 1), 0);
	cr_expect_eq(mb->ops->create(mb, NULL, o), KVS_EINVALOBJ);
	kvs_object_free(o);
}

Test(mem, write_results_carry_new_metadata_without_data)
{
	kvs_object *o = mk("meta-out", "payload"), *out = NULL;

	cr_assert_eq(mb->ops->create(mb, &out, o), 0);
	cr_expect_str_eq(out->resource_version, "1");
	cr_expect_neq(out->uid[0], '\0');
	cr_expect_eq(out->ndata, 0);
	cr_expect_eq(out->data_bytes, 7);
	kvs_object_free(out);
	kvs_object_free(o);
}

Test(mem, create_with_resource_version_set_is_einval)
{
	kvs_object *o = mk("has-rv", "x");

	kvs_object_set_rv(o, "5");
	cr_expect_eq(mb->ops->create(mb, NULL, o), KVS_EINVAL);
	kvs_object_free(o);
}

Test(mem, malformed_continue_token_is_einval)
{
	kvs_object_list *l = NULL;

	cr_expect_eq(mb->ops->list(mb, &l, NULL, 1, "garbage", 0), KVS_EINVAL);
}

Test(mem, custom_max_object_bytes_is_enforced_and_reported)
{
	kvs_mem_options opts = KVS_MEM_OPTIONS_INIT;
	kvs_backend *small = NULL;

	opts.max_object_bytes = 8;
	cr_assert_eq(kvs_backend_mem(&small, &opts), 0);
	cr_expect_eq(small->max_object_bytes, 8);
	cr_expect_eq(create(small, "fits", "12345678"), 0);
	cr_expect_eq(create(small, "over", "123456789"), KVS_ETOOBIG);
	cr_expect(strstr(kvs_error_last(), "at most 8 bytes") != NULL, "%s", kvs_error_last());
	kvs_backend_free(small);
}

Test(mem, free_functions_and_controls_accept_null_and_foreign_handles)
{
	kvs_backend_free(NULL);
	kvs_mem_fail_nth(NULL, 1, KVS_EIO);
	kvs_mem_compact(NULL);
	kvs_mem_advance_clock(NULL, 1);
	kvs_mem_stats st;
	kvs_mem_get_stats(NULL, &st);
	cr_expect_eq(st.objects, 0);
	cr_expect_eq(kvs_mem_corrupt(NULL, "a", "b", 0), KVS_EINVAL);
}

/* The fixture's data generators (used by every suite's large values). */

Test(fixture, fx_json_fills_exactly_len_bytes_of_closed_json_deterministically)
{
	static const size_t lens[] = { 12, 100, 4096, 100003 };

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = lens[i];
		char *a = malloc(n + 1), *b = malloc(n + 1);
		a[n] = b[n] = 'X';
		fx_json(a, n, 7);
		fx_json(b, n, 7);
		cr_expect_eq(a[n], 'X', "wrote past %zu", n);
		cr_expect_eq(memcmp(a, b, n), 0, "not deterministic at %zu", n);
		cr_expect_eq(memcmp(a, "{\"nodes\":{", 10), 0);
		cr_expect_eq(memcmp(a + n - 2, "}}", 2), 0);
		for (size_t j = 0; j < n; j++)
			cr_assert(a[j] >= 0x20 && a[j] < 0x7f, "byte %zu of %zu is %d", j, n, a[j]);
		free(a);
		free(b);
	}
}

Test(fixture, fx_json_differs_by_seed_and_looks_like_argo_nodes)
{
	char a[8192], b[8192];

	fx_json(a, sizeof(a), 1);
	fx_json(b, sizeof(b), 2);
	cr_expect_neq(memcmp(a, b, sizeof(a)), 0);
	a[sizeof(a) - 1] = '\0';
	cr_expect(strstr(a, "\"phase\":\"Succeeded\"") != NULL);
	cr_expect(strstr(a, "\"templateName\":\"") != NULL);
	cr_expect(strstr(a, "\"startedAt\":\"20") != NULL);
}

Test(fixture, fx_random_is_deterministic_and_seed_dependent)
{
	uint8_t a[37], b[37], c[37];

	fx_random(a, sizeof(a), 5);
	fx_random(b, sizeof(b), 5);
	fx_random(c, sizeof(c), 6);
	cr_expect_eq(memcmp(a, b, sizeof(a)), 0);
	cr_expect_neq(memcmp(a, c, sizeof(a)), 0);
}

/* ------------------------------------------------------------------------ */
/* Shared data (backend.h, vtable version 3)                                */

/* An immutable object created with shared data is stored and handed back
 * by reference: the bytes a get returns are the very bytes given to create,
 * still there after the creator freed its object. */
Test(mem, immutable_shared_data_is_stored_and_read_without_a_copy)
{
	kvs_object *o = mk("seg", "0123456789"), *got = NULL, *again = NULL;
	const uint8_t *bytes;

	o->immutable = 1;
	cr_assert_eq(kvs_object_share_data(o), 0);
	cr_assert_not_null(o->share);
	bytes = o->data[0].data;
	cr_assert_eq(mb->ops->create(mb, NULL, o), 0, "%s", kvs_error_last());
	kvs_object_free(o);
	cr_assert_eq(mb->ops->get(mb, &got, "seg"), 0);
	cr_assert_eq(got->ndata, 1);
	cr_expect_eq(got->data[0].data, bytes, "get copied the bytes of a shared immutable object");
	cr_expect_eq(got->data_bytes, 10);
	cr_expect(memcmp(got->data[0].data, "0123456789", 10) == 0);
	/* a copy of a shared object shares too (kvs_object_dup) */
	cr_assert_eq(kvs_object_dup(&again, got), 0);
	cr_expect_eq(again->data[0].data, bytes);
	kvs_object_free(got);
	kvs_object_free(again);
	cr_assert_eq(mb->ops->get(mb, &got, "seg"), 0);
	cr_expect(memcmp(got->data[0].data, "0123456789", 10) == 0);
	kvs_object_free(got);
}

/* Unshared data given to create is copied, and a stored immutable object
 * is shared from then on; a mutable object is always copied (it may be
 * replaced, and callers may edit what they read). */
Test(mem, unshared_data_is_copied_once_and_mutable_objects_always)
{
	kvs_object *o = mk("imm", "abc"), *m = mk("mut", "xyz"), *g1 = NULL, *g2 = NULL;

	o->immutable = 1;
	cr_assert_eq(mb->ops->create(mb, NULL, o), 0);
	cr_assert_eq(mb->ops->create(mb, NULL, m), 0);
	cr_assert_eq(mb->ops->get(mb, &g1, "imm"), 0);
	cr_assert_eq(mb->ops->get(mb, &g2, "imm"), 0);
	cr_expect_neq(g1->data[0].data, o->data[0].data);
	cr_expect_eq(g1->data[0].data, g2->data[0].data);
	kvs_object_free(g1);
	kvs_object_free(g2);
	cr_assert_eq(mb->ops->get(mb, &g1, "mut"), 0);
	cr_assert_eq(mb->ops->get(mb, &g2, "mut"), 0);
	cr_expect_null(g1->share);
	cr_expect_neq(g1->data[0].data, g2->data[0].data);
	g1->data[0].data[0] = 'Q';   /* the caller's own copy */
	kvs_object_free(g1);
	kvs_object_free(g2);
	cr_assert_eq(mb->ops->get(mb, &g1, "mut"), 0);
	cr_expect(memcmp(g1->data[0].data, "xyz", 3) == 0);
	kvs_object_free(g1);
	kvs_object_free(o);
	kvs_object_free(m);
}

/* Shared data is read-only: adders refuse, own_data makes a private copy. */
Test(mem, shared_data_refuses_adders_and_own_data_makes_it_private)
{
	kvs_object *o = mk("s", "hello"), *d = NULL;

	cr_assert_eq(kvs_object_share_data(o), 0);
	cr_assert_eq(kvs_object_share_data(o), 0);   /* idempotent */
	cr_expect_eq(kvs_object_add_data(o, "e", "x", 1), KVS_EINVAL);
	cr_expect_eq(o->ndata, 1);
	cr_assert_eq(kvs_object_dup(&d, o), 0);
	cr_assert_eq(d->data[0].data, o->data[0].data);
	cr_assert_eq(kvs_object_own_data(d), 0);
	cr_expect_null(d->share);
	cr_expect_neq(d->data[0].data, o->data[0].data);
	d->data[0].data[0] = 'J';
	cr_expect(memcmp(o->data[0].data, "hello", 5) == 0);
	cr_expect_eq(d->data_bytes, 5);
	cr_expect_eq(kvs_object_add_data(d, "e", "x", 1), 0);
	kvs_object_clear_data(d);
	cr_expect_eq(d->ndata, 0);
	kvs_object_free(d);
	kvs_object_free(o);
}

/* kvs_mem_corrupt damages the stored object only: what a reader already
 * holds (a cache's segment) keeps the bytes it verified. */
Test(mem, corrupt_of_shared_data_leaves_what_readers_hold_intact)
{
	kvs_object *o = mk("seg", "0123456789"), *held = NULL, *now = NULL;

	o->immutable = 1;
	cr_assert_eq(kvs_object_share_data(o), 0);
	cr_assert_eq(mb->ops->create(mb, NULL, o), 0);
	cr_assert_eq(mb->ops->get(mb, &held, "seg"), 0);
	cr_assert_eq(kvs_mem_corrupt(mb, "seg", "d", 3), 0, "%s", kvs_error_last());
	cr_assert_eq(mb->ops->get(mb, &now, "seg"), 0);
	cr_expect_eq(now->data[0].data[3], '3' ^ 0x01);
	cr_expect(memcmp(held->data[0].data, "0123456789", 10) == 0);
	cr_expect(memcmp(o->data[0].data, "0123456789", 10) == 0);
	kvs_object_free(held);
	kvs_object_free(now);
	kvs_object_free(o);
}

/* The store shares the segments it writes: the in-memory backend then
 * holds the put's blobs themselves (a segment read twice is the same bytes,
 * and the bytes the backend reads back are the ones a get verifies). */
Test(mem, segments_a_put_writes_are_shared_with_the_backend)
{
	kvs_store *s;
	kvs_object_list *l = NULL;
	kvs_object *a = NULL, *b = NULL;
	size_t n = 2u << 20;
	uint8_t *v = malloc(n);
	const char *seg = NULL;

	cr_assert_eq(kvs_open(&s, mb, NULL), 0);
	fx_random(v, n, 9);
	cr_assert_eq(kvs_put(NULL, s, "k", v, n, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(mb->ops->list(mb, &l, "kvsplit.io/role=segment", 0, NULL,
	                           KVS_LIST_METADATA_ONLY), 0, "%s", kvs_error_last());
	cr_assert_gt(l->count, 0);
	seg = l->items[0]->name;
	cr_assert_eq(mb->ops->get(mb, &a, seg), 0);
	cr_assert_eq(mb->ops->get(mb, &b, seg), 0);
	cr_assert_gt(a->ndata, 0);
	cr_expect_not_null(a->share);
	cr_expect_eq(a->data[0].data, b->data[0].data);
	kvs_object_free(a);
	kvs_object_free(b);
	kvs_object_list_free(l);
	kvs_close(s);
	mb = NULL;   /* kvs_close freed it */
	free(v);
}
