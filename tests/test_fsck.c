/*
 * test_fsck.c — suite `fsck`: every kind of damage is found and attributed
 * to the right key and object, a clean store is reported clean, and repair
 * removes only orphans past grace while reporting (never dropping) keys
 * whose value is lost.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kvsplit.h>
#include <kvsplit/backend.h>

#include "support/fixture.h"
#include "internal.h" /* kvs__store_set_manifest_max: indirect manifests */

#define STORE "fk"
#define SEG_SELECTOR "kvsplit.io/store=" STORE ",kvsplit.io/role=segment"
#define GRACE_S 3600u
#define PAST_GRACE_MS ((int64_t)(GRACE_S + 60) * 1000)

static void skip_unless_memory(void)
{
	if (strcmp(fx_backend_kind(), "memory") != 0)
		cr_skip_test("needs the in-memory backend's damage injection (backend is %s)",
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

static void put_ok(kvs_store *st, const char *key, const void *v, size_t len)
{
	int rc = kvs_put(NULL, st, key, v, len, NULL);
	cr_assert_eq(rc, 0, "put %s: %s", key, kvs_error_last());
}

/* Problems collected from on_problem. */
typedef struct got {
	size_t n;
	struct {
		kvs_fsck_kind kind;
		char key[64];
		char object[256];
		char detail[2048];
		int repaired;
	} p[64];
} got;

static void collect(void *ctx, const kvs_fsck_problem *p)
{
	got *g = ctx;
	if (g->n == 64)
		return;
	g->p[g->n].kind = p->kind;
	snprintf(g->p[g->n].key, sizeof(g->p[g->n].key), "%s", p->key ? p->key : "");
	snprintf(g->p[g->n].object, sizeof(g->p[g->n].object), "%s", p->object ? p->object : "");
	snprintf(g->p[g->n].detail, sizeof(g->p[g->n].detail), "%s", p->detail ? p->detail : "");
	g->p[g->n].repaired = p->repaired;
	g->n++;
}

static int run_fsck(kvs_fsck_report *rep, got *g, kvs_store *st, const char *key, int repair,
                    double read_data)
{
	kvs_fsck_options o = KVS_FSCK_OPTIONS_INIT;
	o.key = key;
	o.repair = repair;
	o.read_data = read_data;
	o.grace_s = GRACE_S;
	o.on_problem = collect;
	o.ctx = g;
	memset(g, 0, sizeof(*g));
	return kvs_fsck(rep, st, &o);
}

/* Exactly one problem, of this kind, key and object. */
static void assert_one(const got *g, kvs_fsck_kind kind, const char *key, const char *object)
{
	for (size_t i = 0; i < g->n; i++)
		cr_log_info("problem %zu: kind %d key %s object %s: %s", i, g->p[i].kind,
		            g->p[i].key, g->p[i].object, g->p[i].detail);
	cr_assert_eq(g->n, 1, "%zu problems, want 1", g->n);
	cr_assert_eq(g->p[0].kind, kind, "kind %d, want %d (%s)", g->p[0].kind, kind,
	             g->p[0].detail);
	cr_assert_str_eq(g->p[0].key, key ? key : "");
	if (object)
		cr_assert_str_eq(g->p[0].object, object);
}

/* Name of one segment of the store (the first listed). */
static char *first_segment(kvs_backend *b)
{
	kvs_object_list *l = NULL;
	cr_assert_eq(b->ops->list(b, &l, SEG_SELECTOR, 0, NULL, KVS_LIST_METADATA_ONLY), 0);
	cr_assert_gt(l->count, 0);
	char *name = strdup(l->items[0]->name);
	kvs_object_list_free(l);
	return name;
}

static size_t count_segments(kvs_backend *b)
{
	kvs_object_list *l = NULL;
	cr_assert_eq(b->ops->list(b, &l, SEG_SELECTOR, 100000, NULL, KVS_LIST_METADATA_ONLY), 0);
	size_t n = l->count;
	kvs_object_list_free(l);
	return n;
}

/* A store with two keys: "victim" (several segments) and "bystander". */
static void populate(kvs_store *st, char **v, size_t *len)
{
	*len = 150000;
	*v = malloc(*len);
	fx_random(*v, *len, 1);
	put_ok(st, "bystander", *v + 1000, 40000);
	put_ok(st, "small", "tiny inline value", 17);
}

/* ------------------------------------------------------------------------ */

Test(fsck, clean_store_reports_clean)
{
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	char *v;
	size_t len;
	populate(st, &v, &len);
	put_ok(st, "victim", v, len);

	kvs_fsck_report r;
	got g;
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 0, 0), 0, "%s", kvs_error_last());
	cr_assert_eq(g.n, 0, "clean store has problems: %s", g.n ? g.p[0].detail : "");
	cr_assert_eq(r.problems, 0);
	cr_assert_eq(r.indexes, 3);
	cr_assert_eq(r.segments, count_segments(b));
	cr_assert_gt(r.chunks_verified, 3);
	cr_assert_eq(r.bytes_verified, len + 40000 + 17);
	cr_assert_eq(r.orphans, 0);
	free(v);
	kvs_close(st);
}

Test(fsck, missing_segment_is_reported_with_key_segment_and_lost_bytes)
{
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	char *v = malloc(150000);
	fx_random(v, 150000, 2);
	put_ok(st, "victim", v, 150000);
	char *seg = first_segment(b);
	cr_assert_eq(b->ops->remove(b, seg, NULL, NULL), 0);

	kvs_fsck_report r;
	got g;
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 0, 0), 0, "%s", kvs_error_last());
	assert_one(&g, KVS_FSCK_MISSING_SEGMENT, "victim", seg);
	cr_assert(strstr(g.p[0].detail, "bytes ") != NULL, "no byte ranges: %s", g.p[0].detail);
	cr_assert_eq(r.problems, 1);
	free(seg);
	free(v);
	kvs_close(st);
}

Test(fsck, missing_segment_is_found_without_reading_data)
{
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	char *v = malloc(150000);
	fx_random(v, 150000, 3);
	put_ok(st, "victim", v, 150000);
	char *seg = first_segment(b);
	cr_assert_eq(b->ops->remove(b, seg, NULL, NULL), 0);

	kvs_fsck_report r;
	got g;
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 0, -1), 0, "%s", kvs_error_last());
	assert_one(&g, KVS_FSCK_MISSING_SEGMENT, "victim", seg);
	cr_assert_eq(r.chunks_verified, 0, "read_data < 0 read data");
	free(seg);
	free(v);
	kvs_close(st);
}

Test(fsck, flipped_byte_in_a_segment_is_a_corrupt_segment_of_that_key)
{
	skip_unless_memory();
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	char *v;
	size_t len;
	populate(st, &v, &len);
	kvs_object_list *l0 = NULL, *l = NULL;
	cr_assert_eq(b->ops->list(b, &l0, SEG_SELECTOR, 100000, NULL, KVS_LIST_METADATA_ONLY), 0);
	put_ok(st, "victim", v, len);
	cr_assert_eq(b->ops->list(b, &l, SEG_SELECTOR, 100000, NULL, 0), 0);
	/* a segment that the put of "victim" created */
	size_t pick = l->count;
	for (size_t i = 0; i < l->count && pick == l->count; i++) {
		size_t j;
		for (j = 0; j < l0->count && strcmp(l0->items[j]->name, l->items[i]->name); j++)
			;
		if (j == l0->count)
			pick = i;
	}
	cr_assert_lt(pick, l->count);
	char seg[256], entry[64];
	snprintf(seg, sizeof(seg), "%s", l->items[pick]->name);
	snprintf(entry, sizeof(entry), "%s", l->items[pick]->data[0].key);
	kvs_object_list_free(l);
	kvs_object_list_free(l0);
	cr_assert_eq(kvs_mem_corrupt(b, seg, entry, 3), 0);

	kvs_fsck_report r;
	got g;
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 0, 0), 0, "%s", kvs_error_last());
	assert_one(&g, KVS_FSCK_CORRUPT_SEGMENT, "victim", seg);
	cr_assert(strstr(g.p[0].detail, "bytes ") != NULL, "no byte ranges: %s", g.p[0].detail);
	cr_assert_eq(r.problems, 1);
	/* the other keys still verify */
	cr_assert_gt(r.chunks_verified, 1);
	free(v);
	kvs_close(st);
}

Test(fsck, flipped_byte_in_an_unsampled_segment_goes_unseen)
{
	skip_unless_memory();
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	char *v = malloc(150000);
	fx_random(v, 150000, 4);
	put_ok(st, "victim", v, 150000);
	kvs_object *o = NULL;
	char *seg = first_segment(b);
	cr_assert_eq(b->ops->get(b, &o, seg), 0);
	cr_assert_eq(kvs_mem_corrupt(b, seg, o->data[0].key, 3), 0);
	kvs_object_free(o);

	kvs_fsck_report r;
	got g;
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 0, -1), 0, "%s", kvs_error_last());
	cr_assert_eq(g.n, 0, "metadata-only check read data");
	/* and a sampled check of every segment finds it */
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 0, 1.0), 0, "%s", kvs_error_last());
	assert_one(&g, KVS_FSCK_CORRUPT_SEGMENT, "victim", seg);
	free(seg);
	free(v);
	kvs_close(st);
}

Test(fsck, sampling_is_deterministic_and_proportional)
{
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	char *v = malloc(600000);
	fx_random(v, 600000, 5);
	put_ok(st, "big", v, 600000);

	kvs_fsck_report r1, r2, all;
	got g;
	cr_assert_eq(run_fsck(&all, &g, st, NULL, 0, 1.0), 0);
	cr_assert_eq(run_fsck(&r1, &g, st, NULL, 0, 0.5), 0);
	cr_assert_eq(run_fsck(&r2, &g, st, NULL, 0, 0.5), 0);
	cr_assert_eq(r1.chunks_verified, r2.chunks_verified, "sampling is not deterministic");
	cr_assert_lt(r1.chunks_verified, all.chunks_verified);
	cr_assert_gt(r1.chunks_verified, 0);
	cr_assert_eq(g.n, 0);
	free(v);
	kvs_close(st);
}

Test(fsck, flipped_byte_in_a_manifest_is_a_bad_index_of_that_key)
{
	skip_unless_memory();
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	char *v;
	size_t len;
	populate(st, &v, &len);
	put_ok(st, "victim", v, len);
	cr_assert_eq(kvs_mem_corrupt(b, "kvs." STORE ".i-victim", "manifest", 20), 0);

	kvs_fsck_report r;
	got g;
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 0, 0), 0, "%s", kvs_error_last());
	/* its segments now look unreferenced, but they are young: not problems */
	size_t bad = 0;
	for (size_t i = 0; i < g.n; i++) {
		if (g.p[i].kind == KVS_FSCK_ORPHAN)
			continue;
		bad++;
		cr_assert_eq(g.p[i].kind, KVS_FSCK_BAD_INDEX, "%s", g.p[i].detail);
		cr_assert_str_eq(g.p[i].key, "victim");
		cr_assert_str_eq(g.p[i].object, "kvs." STORE ".i-victim");
	}
	cr_assert_eq(bad, 1);
	cr_assert_eq(r.problems, 1);
	free(v);
	kvs_close(st);
}

Test(fsck, wrong_managed_by_label_on_a_segment_is_bad_labels)
{
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	char *v = malloc(150000);
	fx_random(v, 150000, 6);
	put_ok(st, "victim", v, 150000);
	char *seg = first_segment(b);
	kvs_object *o = NULL;
	cr_assert_eq(b->ops->get(b, &o, seg), 0);
	cr_assert_eq(kvs_object_set_label(o, "app.kubernetes.io/managed-by", "helm"), 0);
	cr_assert_eq(b->ops->replace(b, NULL, o), 0, "%s", kvs_error_last());
	kvs_object_free(o);

	kvs_fsck_report r;
	got g;
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 0, 0), 0, "%s", kvs_error_last());
	assert_one(&g, KVS_FSCK_BAD_LABELS, "victim", seg);
	free(seg);
	free(v);
	kvs_close(st);
}

Test(fsck, segment_hidden_by_a_wrong_role_label_is_bad_labels_not_missing)
{
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	char *v = malloc(150000);
	fx_random(v, 150000, 7);
	put_ok(st, "victim", v, 150000);
	char *seg = first_segment(b);
	kvs_object *o = NULL;
	cr_assert_eq(b->ops->get(b, &o, seg), 0);
	cr_assert_eq(kvs_object_set_label(o, "kvsplit.io/role", "index"), 0);
	cr_assert_eq(b->ops->replace(b, NULL, o), 0, "%s", kvs_error_last());
	kvs_object_free(o);

	kvs_fsck_report r;
	got g;
	int rc = run_fsck(&r, &g, st, NULL, 0, 0);
	/* it now also shows up among the indexes, as an index that does not decode */
	cr_assert_eq(rc, 0, "%s", kvs_error_last());
	int labels = 0;
	for (size_t i = 0; i < g.n; i++) {
		cr_log_info("problem: %d %s %s %s", g.p[i].kind, g.p[i].key, g.p[i].object,
		            g.p[i].detail);
		cr_assert_neq(g.p[i].kind, KVS_FSCK_MISSING_SEGMENT, "reported missing");
		if (g.p[i].kind == KVS_FSCK_BAD_LABELS && strcmp(g.p[i].object, seg) == 0 &&
		    strcmp(g.p[i].key, "victim") == 0)
			labels++;
	}
	cr_assert_eq(labels, 1);
	free(seg);
	free(v);
	kvs_close(st);
}

Test(fsck, wrong_store_label_on_an_index_is_bad_labels)
{
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	put_ok(st, "victim", "short", 5);
	kvs_object *o = NULL;
	cr_assert_eq(b->ops->get(b, &o, "kvs." STORE ".i-victim"), 0);
	cr_assert_eq(kvs_object_set_label(o, "app.kubernetes.io/managed-by", "someone"), 0);
	cr_assert_eq(b->ops->replace(b, NULL, o), 0, "%s", kvs_error_last());
	kvs_object_free(o);

	kvs_fsck_report r;
	got g;
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 0, 0), 0, "%s", kvs_error_last());
	assert_one(&g, KVS_FSCK_BAD_LABELS, "victim", "kvs." STORE ".i-victim");
	kvs_close(st);
}

Test(fsck, index_under_the_wrong_name_is_bad_labels)
{
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	put_ok(st, "victim", "short", 5);
	kvs_object *o = NULL, *copy = NULL;
	cr_assert_eq(b->ops->get(b, &o, "kvs." STORE ".i-victim"), 0);
	cr_assert_eq(kvs_object_dup(&copy, o), 0);
	free(copy->name);
	copy->name = strdup("kvs." STORE ".i-other");
	kvs_object_set_rv(copy, "");
	cr_assert_eq(b->ops->create(b, NULL, copy), 0, "%s", kvs_error_last());
	kvs_object_free(o);
	kvs_object_free(copy);

	kvs_fsck_report r;
	got g;
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 0, 0), 0, "%s", kvs_error_last());
	assert_one(&g, KVS_FSCK_BAD_LABELS, "victim", "kvs." STORE ".i-other");
	kvs_close(st);
}

Test(fsck, orphans_are_counted_and_young_ones_are_not_problems)
{
	skip_unless_memory();
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	char *v = malloc(150000);
	fx_random(v, 150000, 8);
	kvs_mem_crash_after(b, 3); /* a put killed after creating segments */
	cr_assert_neq(kvs_put(NULL, st, "ghost", v, 150000, NULL), 0);
	kvs_mem_crash_after(b, 0);
	size_t orphans = count_segments(b);
	cr_assert_gt(orphans, 0);

	kvs_fsck_report r;
	got g;
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 0, 0), 0, "%s", kvs_error_last());
	cr_assert_eq(r.orphans, orphans);
	cr_assert_eq(r.problems, 0, "young orphans counted as problems");
	cr_assert_eq(g.n, orphans);
	for (size_t i = 0; i < g.n; i++) {
		cr_assert_eq(g.p[i].kind, KVS_FSCK_ORPHAN);
		cr_assert_str_eq(g.p[i].key, "");
	}

	kvs_mem_advance_clock(b, PAST_GRACE_MS);
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 0, 0), 0, "%s", kvs_error_last());
	cr_assert_eq(r.problems, orphans, "old orphans are problems");
	cr_assert_eq(r.repaired, 0);
	cr_assert_eq(count_segments(b), orphans, "fsck without repair deleted something");
	free(v);
	kvs_close(st);
}

Test(fsck, repair_removes_orphans_past_grace_and_keeps_broken_keys)
{
	skip_unless_memory();
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	char *v = malloc(150000), *w = malloc(150000);
	fx_random(v, 150000, 9);
	fx_random(w, 150000, 10);
	put_ok(st, "victim", v, 150000);
	char *seg = first_segment(b);
	put_ok(st, "old", w, 150000);
	cr_assert_eq(kvs_delete(st, "old", NULL), 0); /* its segments become orphans */
	kvs_mem_advance_clock(b, PAST_GRACE_MS);
	put_ok(st, "fresh", w, 150000); /* young again: touched by this put */
	cr_assert_eq(kvs_delete(st, "fresh", NULL), 0);
	cr_assert_eq(b->ops->remove(b, seg, NULL, NULL), 0); /* and "victim" is broken */

	kvs_fsck_report r;
	got g;
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 1, 0), 0, "%s", kvs_error_last());
	cr_assert_eq(r.repaired, 0, "young orphans (touched by the last put) were deleted");
	cr_assert_eq(r.problems, 1);
	/* the put of "fresh" touched the orphans of "old" (same content) */
	kvs_mem_advance_clock(b, PAST_GRACE_MS);
	size_t before = count_segments(b);
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 1, 0), 0, "%s", kvs_error_last());
	cr_assert_gt(r.repaired, 0);
	cr_assert_eq(r.orphans, r.repaired);
	cr_assert_eq(count_segments(b), before - r.repaired);
	int lost = 0;
	for (size_t i = 0; i < g.n; i++) {
		if (g.p[i].kind == KVS_FSCK_ORPHAN) {
			cr_assert_eq(g.p[i].repaired, 1);
			continue;
		}
		cr_assert_eq(g.p[i].kind, KVS_FSCK_MISSING_SEGMENT);
		cr_assert_str_eq(g.p[i].key, "victim");
		cr_assert_str_eq(g.p[i].object, seg);
		cr_assert(strstr(g.p[i].detail, "lost") != NULL, "%s", g.p[i].detail);
		cr_assert_eq(g.p[i].repaired, 0);
		lost++;
	}
	cr_assert_eq(lost, 1);
	cr_assert_eq(r.problems, 1, "the broken key is a problem left");
	kvs_stat s;
	cr_assert_eq(kvs_stat_key(&s, st, "victim", NULL), 0, "repair dropped the broken key");
	free(seg);
	free(v);
	free(w);
	kvs_close(st);
}

Test(fsck, one_key_checks_only_that_key)
{
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	char *v = malloc(150000);
	fx_random(v, 150000, 11);
	put_ok(st, "victim", v, 150000);
	char *seg = first_segment(b);
	cr_assert_eq(b->ops->remove(b, seg, NULL, NULL), 0);
	put_ok(st, "fine", v, 500);

	kvs_fsck_report r;
	got g;
	cr_assert_eq(run_fsck(&r, &g, st, "fine", 0, 0), 0, "%s", kvs_error_last());
	cr_assert_eq(g.n, 0);
	cr_assert_eq(r.indexes, 1);
	cr_assert_eq(run_fsck(&r, &g, st, "victim", 0, 0), 0, "%s", kvs_error_last());
	assert_one(&g, KVS_FSCK_MISSING_SEGMENT, "victim", seg);
	cr_assert_eq(run_fsck(&r, &g, st, "absent", 0, 0), KVS_ENOTFOUND);
	free(seg);
	free(v);
	kvs_close(st);
}

Test(fsck, rejects_bad_options)
{
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	kvs_fsck_options o = KVS_FSCK_OPTIONS_INIT;
	kvs_fsck_report r;
	o.read_data = 1.5;
	cr_assert_eq(kvs_fsck(&r, st, &o), KVS_EINVAL);
	o.read_data = 0;
	o.repair = 1;
	o.grace_s = 60; /* below the touch window */
	cr_assert_eq(kvs_fsck(&r, st, &o), KVS_EINVAL);
	o.version = 0;
	cr_assert_eq(kvs_fsck(&r, st, &o), KVS_EINVAL);
	kvs_close(st);
}

Test(fsck, indirect_manifest_is_checked_through_its_body)
{
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	cr_assert_eq(kvs__store_set_manifest_max(st, 1024), 0);
	size_t len = 700000;
	char *v = malloc(len);
	fx_random(v, len, 12);
	put_ok(st, "big", v, len);

	kvs_fsck_report r;
	got g;
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 0, 0), 0, "%s", kvs_error_last());
	cr_assert_eq(g.n, 0, "%s", g.n ? g.p[0].detail : "");
	cr_assert_eq(r.bytes_verified, len);
	cr_assert_eq(r.orphans, 0, "body segments counted as orphans");
	free(v);
	kvs_close(st);
}

Test(fsck, repair_deletes_nothing_while_an_index_cannot_be_decoded)
{
	skip_unless_memory();
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	char *v = malloc(150000);
	fx_random(v, 150000, 13);
	put_ok(st, "victim", v, 150000);
	size_t segs = count_segments(b);
	cr_assert_gt(segs, 1);
	/* The manifest no longer decodes (as well: a newer format version):
	 * what it references is unknown, so nothing may be taken, as in gc. */
	cr_assert_eq(kvs_mem_corrupt(b, "kvs." STORE ".i-victim", "manifest", 20), 0);
	kvs_mem_advance_clock(b, PAST_GRACE_MS);

	kvs_gc_options go = KVS_GC_OPTIONS_INIT;
	kvs_gc_report gr;
	go.grace_s = GRACE_S;
	cr_assert_eq(kvs_gc(&gr, st, &go), KVS_ECORRUPT);
	cr_assert_eq(count_segments(b), segs);

	kvs_fsck_report r;
	got g;
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 1, 0), 0, "%s", kvs_error_last());
	cr_assert_eq(r.repaired, 0, "fsck --repair deleted what gc refuses to judge");
	cr_assert_eq(count_segments(b), segs, "fsck --repair deleted segments of an index it "
	             "could not read");
	for (size_t i = 0; i < g.n; i++)
		cr_assert_eq(g.p[i].repaired, 0, "%s", g.p[i].detail);
	cr_assert_geq(r.problems, 1);
	free(v);
	kvs_close(st);
}

/*
 * fsck checks what the cluster holds. A long-lived handle has the segments
 * of values it read in its cache (verified when fetched); damage done on the
 * server since must still be found, not hidden behind the cached copy.
 */
Test(fsck, damage_behind_a_cached_segment_is_found)
{
	skip_unless_memory();
	kvs_backend *b;
	cr_assert_eq(fx_backend(&b), 0);
	kvs_store *st = open_store(b);
	char *v = malloc(150000);
	fx_random(v, 150000, 14);
	put_ok(st, "victim", v, 150000);
	void *got_v = NULL;
	size_t got_len = 0;
	cr_assert_eq(kvs_get(&got_v, &got_len, NULL, st, "victim", NULL), 0, "%s",
	             kvs_error_last());
	kvs_free(got_v);
	kvs__cache_stats cs;
	kvs__cache_get_stats(st->cache, &cs);
	cr_assert_gt(cs.entries, 0, "the get cached nothing");

	kvs_object_list *l = NULL;
	cr_assert_eq(b->ops->list(b, &l, SEG_SELECTOR, 100000, NULL, 0), 0);
	cr_assert_gt(l->count, 0);
	char seg[256], entry[64];
	snprintf(seg, sizeof(seg), "%s", l->items[0]->name);
	snprintf(entry, sizeof(entry), "%s", l->items[0]->data[0].key);
	kvs_object_list_free(l);
	cr_assert_eq(kvs_mem_corrupt(b, seg, entry, 3), 0);

	kvs_fsck_report r;
	got g;
	cr_assert_eq(run_fsck(&r, &g, st, NULL, 0, 0), 0, "%s", kvs_error_last());
	assert_one(&g, KVS_FSCK_CORRUPT_SEGMENT, "victim", seg);
	free(v);
	kvs_close(st);
}
