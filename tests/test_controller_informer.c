/*
 * test_controller_informer.c — suite "controller_informer": label-scoped
 * informers (controller/informer.h) over the API test server: only the
 * held shards are cached, transformed; a handoff is LEFT, a deletion is
 * DELETED; indexes; relist after compaction; stamping.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "kvsplit.h"
#include "kvsplit/kube.h"
#include "controller/informer.h"
#include "support/fixture_kube.h"

#define V 16

static fx_kapi *srv;
static kvs_kube *kube;

typedef struct seen {
	unsigned n[6];
	char last_key[6][300];
} seen;

static void on_event(void *ctx, kvc_inf_event ev, const char *key, int shard, const cJSON *obj)
{
	seen *s = ctx;
	s->n[ev]++;
	snprintf(s->last_key[ev], sizeof(s->last_key[ev]), "%s", key);
}

static void setup(void)
{
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	cr_assert_eq(fx_kapi_start(&srv, 0, NULL), 0, "%s", kvs_error_last());
	ko.kubeconfig = fx_kapi_kubeconfig(srv);
	cr_assert_eq(kvs_kube_open(&kube, &ko), 0, "%s", kvs_error_last());
}

static void teardown(void)
{
	kvs_kube_free(kube);
	fx_kapi_stop(srv);
}

TestSuite(controller_informer, .init = setup, .fini = teardown, .timeout = 60);

/* A ConfigMap "cm-i" with data, labelled app=t and (shard >= 0) the vshard label. */
static void make_cm(int i, int shard)
{
	char name[32], lab[16];
	snprintf(name, sizeof(name), "cm-%d", i);
	cJSON *o = cJSON_CreateObject();
	cJSON *md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", name);
	cJSON *l = cJSON_AddObjectToObject(md, "labels");
	cJSON_AddStringToObject(l, "app", "t");
	if (shard >= 0) {
		snprintf(lab, sizeof(lab), "%d", shard);
		cJSON_AddStringToObject(l, KVC_VSHARD_LABEL, lab);
	}
	cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "data"), "payload",
	                        "0123456789012345678901234567890123456789");
	cr_assert_eq(kvs_kube_create(NULL, kube, &kvs_kube_configmaps, NULL, o, NULL), 0, "%s",
	             kvs_error_last());
	cJSON_Delete(o);
}

static void relabel(int i, const char *shard)
{
	char name[32];
	snprintf(name, sizeof(name), "cm-%d", i);
	cJSON *p = cJSON_CreateObject();
	cJSON *l = cJSON_AddObjectToObject(cJSON_AddObjectToObject(p, "metadata"), "labels");
	cJSON_AddStringToObject(l, KVC_VSHARD_LABEL, shard);
	cr_assert_eq(kvs_kube_patch(NULL, kube, &kvs_kube_configmaps, NULL, name,
	                            KVS_KUBE_PATCH_MERGE, p, NULL, NULL), 0, "%s", kvs_error_last());
	cJSON_Delete(p);
}

static void del(int i)
{
	char name[32];
	snprintf(name, sizeof(name), "cm-%d", i);
	cr_assert_eq(kvs_kube_delete(NULL, kube, &kvs_kube_configmaps, NULL, name, NULL, NULL), 0);
}

static void set_range(kvc_shardset *s, unsigned lo, unsigned hi)
{
	kvc_set_clear(s);
	for (unsigned i = lo; i < hi; i++)
		kvc_set_add(s, i);
}

/* Step until the informer is synced and pred holds, at most ~10 s. */
static void step_until(kvc_informer *inf, int (*pred)(void *), void *ctx)
{
	kvc_informer_stats st;
	for (int i = 0; i < 500; i++) {
		kvc_informer_step(inf, 20);
		kvc_informer_stats_get(inf, &st);
		if (st.synced && (!pred || pred(ctx)))
			return;
	}
	cr_assert_fail("informer did not get there");
}

static kvc_informer *open_inf(seen *s, int transform)
{
	kvc_informer *inf;
	kvc_informer_opts o = KVC_INFORMER_OPTS_INIT;
	kvc_informer_handlers h = { s, on_event };
	o.resource = &kvs_kube_configmaps;
	o.base_selector = "app=t";
	o.vshards = V;
	o.rebuild_delay_ns = 1;
	o.page_limit = 7; /* several pages */
	if (transform)
		o.transform = kvc_informer_metadata;
	cr_assert_eq(kvc_informer_new(&inf, kube, &o, &h), 0, "%s", kvs_error_last());
	return inf;
}

Test(controller_informer, caches_only_the_held_shards_transformed)
{
	for (int i = 0; i < 32; i++)
		make_cm(i, i % V);
	make_cm(100, -1); /* no label: not anyone's share */
	seen s = { { 0 }, { { 0 } } };
	kvc_informer *inf = open_inf(&s, 1);
	kvc_shardset h;
	set_range(&h, 0, 4);
	kvc_informer_set_shards(inf, &h);
	step_until(inf, NULL, NULL);
	kvc_informer_stats st;
	kvc_informer_stats_get(inf, &st);
	cr_assert_eq(st.objects, 8, "cached %zu", st.objects);
	cr_assert_eq(s.n[KVC_INF_ADDED], 8);
	cJSON *obj = NULL;
	int shard = -1;
	cr_assert_eq(kvc_informer_get(inf, "kvs-test/cm-17", &obj, &shard), 1);
	cr_assert_eq(shard, 1);
	cr_assert_null(cJSON_GetObjectItem(obj, "data"), "the transform keeps metadata only");
	cr_assert_not_null(cJSON_GetObjectItem(obj, "metadata"));
	cJSON_Delete(obj);
	cr_assert_eq(kvc_informer_get(inf, "kvs-test/cm-4", NULL, NULL), 0);
	cr_assert_eq(kvc_informer_get(inf, "kvs-test/cm-100", NULL, NULL), 0);
	cr_assert(st.bytes > 0);
	kvc_informer_free(inf);
}

Test(controller_informer, whole_objects_without_transform)
{
	make_cm(1, 1);
	seen s = { { 0 }, { { 0 } } };
	kvc_informer *inf = open_inf(&s, 0);
	kvc_shardset h;
	set_range(&h, 0, V);
	kvc_informer_set_shards(inf, &h);
	step_until(inf, NULL, NULL);
	cJSON *obj = NULL;
	cr_assert_eq(kvc_informer_get(inf, "kvs-test/cm-1", &obj, NULL), 1);
	cr_assert_not_null(cJSON_GetObjectItem(obj, "data"));
	cJSON_Delete(obj);
	kvc_informer_free(inf);
}

static int has_left(void *ctx)
{
	return ((seen *)ctx)->n[KVC_INF_LEFT] > 0;
}
static int has_deleted(void *ctx)
{
	return ((seen *)ctx)->n[KVC_INF_DELETED] > 0;
}

Test(controller_informer, handoff_is_left_and_deletion_is_deleted)
{
	for (int i = 0; i < 16; i++)
		make_cm(i, i);
	seen s = { { 0 }, { { 0 } } };
	kvc_informer *inf = open_inf(&s, 1);
	kvc_shardset h;
	set_range(&h, 0, 8);
	kvc_informer_set_shards(inf, &h);
	step_until(inf, NULL, NULL);
	cr_assert_eq(s.n[KVC_INF_ADDED], 8);

	/* Shards 4..7 handed off: LEFT, never DELETED. */
	set_range(&h, 0, 4);
	kvc_informer_set_shards(inf, &h);
	step_until(inf, has_left, &s);
	cr_assert_eq(s.n[KVC_INF_LEFT], 4);
	cr_assert_eq(s.n[KVC_INF_DELETED], 0);
	kvc_informer_stats st;
	kvc_informer_stats_get(inf, &st);
	cr_assert_eq(st.objects, 4);

	/* A real deletion from the watch. */
	del(1);
	step_until(inf, has_deleted, &s);
	cr_assert_eq(s.n[KVC_INF_DELETED], 1);
	cr_assert_str_eq(s.last_key[KVC_INF_DELETED], "kvs-test/cm-1");

	/* Labels changed to a shard we do not hold: the watch says DELETED,
	 * the informer says LEFT (the object still exists). */
	relabel(2, "9");
	for (int i = 0; i < 200 && s.n[KVC_INF_LEFT] < 5; i++)
		kvc_informer_step(inf, 20);
	cr_assert_eq(s.n[KVC_INF_LEFT], 5);
	cr_assert_str_eq(s.last_key[KVC_INF_LEFT], "kvs-test/cm-2");
	cr_assert_eq(s.n[KVC_INF_DELETED], 1);

	/* Shards come back: their objects are ADDED again; unchanged ones are silent. */
	unsigned added = s.n[KVC_INF_ADDED], updated = s.n[KVC_INF_UPDATED];
	set_range(&h, 0, 10);
	kvc_informer_set_shards(inf, &h);
	for (int i = 0; i < 200 && s.n[KVC_INF_ADDED] < added + 7; i++)
		kvc_informer_step(inf, 20);
	step_until(inf, NULL, NULL);
	cr_assert_eq(s.n[KVC_INF_ADDED], added + 7, "shards 4..9: cm-4..cm-9 and cm-2 (now 9)");
	cr_assert_eq(s.n[KVC_INF_UPDATED], updated);
	kvc_informer_stats_get(inf, &st);
	cr_assert_eq(st.objects, 10 - 1); /* cm-1 deleted */
	kvc_informer_free(inf);
}

Test(controller_informer, deletion_during_a_rebuild_is_deleted)
{
	for (int i = 0; i < 8; i++)
		make_cm(i, i);
	seen s = { { 0 }, { { 0 } } };
	kvc_informer *inf = open_inf(&s, 1);
	kvc_shardset h;
	set_range(&h, 0, 4);
	kvc_informer_set_shards(inf, &h);
	step_until(inf, NULL, NULL);
	/* Delete while the informer is not watching, then grow the set: the
	 * relist does not show cm-3 and the sweep reports it deleted. */
	set_range(&h, 0, 6);
	kvc_informer_set_shards(inf, &h);
	del(3);
	step_until(inf, has_deleted, &s);
	cr_assert_eq(s.n[KVC_INF_DELETED], 1);
	cr_assert_str_eq(s.last_key[KVC_INF_DELETED], "kvs-test/cm-3");
	cr_assert_eq(s.n[KVC_INF_LEFT], 0);
	kvc_informer_free(inf);
}

Test(controller_informer, empty_set_watches_nothing_and_empties_the_cache)
{
	make_cm(0, 0);
	seen s = { { 0 }, { { 0 } } };
	kvc_informer *inf = open_inf(&s, 1);
	kvc_shardset h;
	set_range(&h, 0, 1);
	kvc_informer_set_shards(inf, &h);
	step_until(inf, NULL, NULL);
	kvc_set_clear(&h);
	kvc_informer_set_shards(inf, &h);
	step_until(inf, has_left, &s);
	kvc_informer_stats st;
	kvc_informer_stats_get(inf, &st);
	cr_assert_eq(st.objects, 0);
	cr_assert_eq(s.n[KVC_INF_LEFT], 1);
	kvc_informer_free(inf);
}

static int owner_index(void *ctx, const cJSON *obj, char *buf, size_t cap)
{
	const cJSON *md = cJSON_GetObjectItem(obj, "metadata");
	const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(md, "labels"), KVC_VSHARD_LABEL);
	if (!cJSON_IsString(v))
		return 0;
	snprintf(buf, cap, "s%s", v->valuestring);
	return 1;
}

Test(controller_informer, index_follows_updates)
{
	for (int i = 0; i < 6; i++)
		make_cm(i, i % 2);
	seen s = { { 0 }, { { 0 } } };
	kvc_informer *inf = open_inf(&s, 1);
	cr_assert_eq(kvc_informer_add_index(inf, "shard", owner_index, NULL), 0);
	kvc_shardset h;
	set_range(&h, 0, V);
	kvc_informer_set_shards(inf, &h);
	step_until(inf, NULL, NULL);
	char **keys;
	size_t n;
	cr_assert_eq(kvc_informer_by_index(inf, "shard", "s1", &keys, &n), 0);
	cr_assert_eq(n, 3);
	kvc_informer_keys_free(keys, n);
	relabel(1, "0");
	for (int i = 0; i < 200 && s.n[KVC_INF_UPDATED] < 1; i++)
		kvc_informer_step(inf, 20);
	cr_assert_eq(kvc_informer_by_index(inf, "shard", "s1", &keys, &n), 0);
	cr_assert_eq(n, 2);
	kvc_informer_keys_free(keys, n);
	cr_assert_eq(kvc_informer_by_index(inf, "shard", "s0", &keys, &n), 0);
	cr_assert_eq(n, 4);
	kvc_informer_keys_free(keys, n);
	cr_assert_eq(kvc_informer_by_index(inf, "nope", "s0", &keys, &n), KVS_EINVAL);
	kvc_informer_free(inf);
}

Test(controller_informer, relists_after_compaction)
{
	for (int i = 0; i < 4; i++)
		make_cm(i, 0);
	seen s = { { 0 }, { { 0 } } };
	kvc_informer *inf = open_inf(&s, 1);
	kvc_shardset h;
	set_range(&h, 0, 1);
	kvc_informer_set_shards(inf, &h);
	step_until(inf, NULL, NULL);
	for (int i = 0; i < 10; i++)
		kvc_informer_step(inf, 10); /* the watch is open */
	cr_assert_eq(fx_kapi_faults(srv, "{\"stall_watch\":true}"), 0);
	del(2);
	make_cm(9, 0);
	cr_assert_eq(fx_kapi_call(srv, "POST", "/kapi/compact", "", NULL), 200);
	cr_assert_eq(fx_kapi_faults(srv, "{\"stall_watch\":false}"), 0);
	for (int i = 0; i < 300 && (s.n[KVC_INF_DELETED] < 1 || s.n[KVC_INF_ADDED] < 5); i++)
		kvc_informer_step(inf, 20);
	cr_assert_eq(s.n[KVC_INF_DELETED], 1);
	cr_assert_eq(s.n[KVC_INF_ADDED], 5);
	cr_assert_eq(kvc_informer_get(inf, "kvs-test/cm-9", NULL, NULL), 1);
	kvc_informer_free(inf);
}

Test(controller_informer, stamping_is_coordination_free)
{
	make_cm(0, -1);
	seen s = { { 0 }, { { 0 } } };
	kvc_informer *inf;
	kvc_informer_opts o = KVC_INFORMER_OPTS_INIT;
	kvc_informer_handlers hd = { &s, on_event };
	o.resource = &kvs_kube_configmaps;
	o.base_selector = "app=t";
	o.unsharded = 1;
	o.vshards = V;
	cr_assert_eq(kvc_informer_new(&inf, kube, &o, &hd), 0);
	step_until(inf, NULL, NULL);
	cr_assert_eq(s.n[KVC_INF_ADDED], 1);
	cJSON *obj;
	cr_assert_eq(kvc_informer_get(inf, "kvs-test/cm-0", &obj, NULL), 1);
	/* Two replicas stamp from the same read: one writes, the other's 409 is fine. */
	cr_assert_eq(kvc_vshard_stamp(kube, &kvs_kube_configmaps, NULL, obj, V), 0, "%s",
	             kvs_error_last());
	cr_assert_eq(kvc_vshard_stamp(kube, &kvs_kube_configmaps, NULL, obj, V), 0, "%s",
	             kvs_error_last());
	const char *uid = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "uid")->valuestring;
	char want[16];
	snprintf(want, sizeof(want), "%u", kvc_vshard_of(uid, V));
	cJSON_Delete(obj);
	cr_assert_eq(kvs_kube_get(&obj, kube, &kvs_kube_configmaps, NULL, "cm-0", NULL, NULL), 0);
	const cJSON *lab = cJSON_GetObjectItem(
	        cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "labels"), KVC_VSHARD_LABEL);
	cr_assert(cJSON_IsString(lab));
	cr_assert_str_eq(lab->valuestring, want);
	cJSON_Delete(obj);
	/* The stamped object leaves the unlabelled view: LEFT, not DELETED. */
	step_until(inf, has_left, &s);
	cr_assert_eq(s.n[KVC_INF_DELETED], 0);
	kvc_informer_free(inf);
}
