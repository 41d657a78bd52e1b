/*
 * test_backend.c — the conformance suite every backend must pass.
 *
 * Only fx_backend()/fx_backend_peer()/fx_compact()/fx_touch() and the vtable are used,
 * so the suite runs unchanged against the Kubernetes backend
 * (KVS_TEST_BACKEND=kube). Each test proves one ConfigMap behaviour the
 * store relies on.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/fixture.h"

static kvs_backend *be;

static void setup(void)
{
	int rc = fx_backend(&be);
	cr_assert_eq(rc, 0, "fx_backend: %s", kvs_error_last());
}

static void teardown(void)
{
	kvs_backend_free(be);
	be = NULL;
}

TestSuite(backend, .init = setup, .fini = teardown, .timeout = 60);

/* An object with one label app=<app> (NULL: none) and one data entry. */
static kvs_object *mk(const char *name, const char *app, const char *data)
{
	kvs_object *o = kvs_object_new(name);

	cr_assert_not_null(o);
	if (app)
		cr_assert_eq(kvs_object_set_label(o, "app", app), 0);
	if (data)
		cr_assert_eq(kvs_object_add_data(o, "d", data, strlen(data)), 0);
	return o;
}

/* Create `o` (freed), return the new resourceVersion in rv. */
static void put_new(kvs_object *o, char rv[64])
{
	kvs_object *out = NULL;
	int rc = be->ops->create(be, &out, o);

	cr_assert_eq(rc, 0, "create %s: %s", o->name, kvs_error_last());
	cr_assert_not_null(out);
	if (rv)
		snprintf(rv, 64, "%s", out->resource_version);
	kvs_object_free(out);
	kvs_object_free(o);
}

static kvs_object *get(const char *name)
{
	kvs_object *o = NULL;
	int rc = be->ops->get(be, &o, name);

	cr_assert_eq(rc, 0, "get %s: %s", name, kvs_error_last());
	return o;
}

static const char *data_str(const kvs_object *o, char *buf, size_t cap)
{
	const kvs_blob *d = kvs_object_data(o, "d");

	cr_assert_not_null(d, "%s has no data entry d", o->name);
	cr_assert_lt(d->len, cap);
	memcpy(buf, d->data, d->len);
	buf[d->len] = '\0';
	return buf;
}

static unsigned long long rv_num(const char *rv)
{
	char *end;
	unsigned long long v = strtoull(rv, &end, 10);

	cr_assert(*rv && !*end, "resourceVersion \"%s\" is not an integer", rv);
	return v;
}

Test(backend, create_then_get_round_trips_labels_annotations_and_all_byte_values)
{
	kvs_object *o = kvs_object_new("round-trip");
	uint8_t bytes[512];

	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)(i * 7 + 3);
	cr_assert_eq(kvs_object_set_label(o, "kvsplit.io/role", "segment"), 0);
	cr_assert_eq(kvs_object_set_label(o, "app", "x"), 0);
	cr_assert_eq(kvs_object_set_annotation(o, "kvsplit.io/key", "a b/c\n\"é\""), 0);
	cr_assert_eq(kvs_object_add_data(o, "all-bytes", bytes, sizeof(bytes)), 0);
	cr_assert_eq(kvs_object_add_data(o, "empty", "", 0), 0);
	o->immutable = 1;
	put_new(o, NULL);

	kvs_object *g = get("round-trip");
	cr_expect_str_eq(g->name, "round-trip");
	cr_expect_str_eq(kvs_object_label(g, "kvsplit.io/role"), "segment");
	cr_expect_str_eq(kvs_object_label(g, "app"), "x");
	cr_expect_str_eq(kvs_object_annotation(g, "kvsplit.io/key"), "a b/c\n\"é\"");
	cr_expect_eq(g->immutable, 1);
	cr_expect_neq(g->uid[0], '\0');
	cr_expect_neq(g->resource_version[0], '\0');
	cr_expect_gt(g->created_ms, 0);
	const kvs_blob *d = kvs_object_data(g, "all-bytes");
	cr_assert_not_null(d);
	cr_assert_eq(d->len, sizeof(bytes));
	cr_expect_eq(memcmp(d->data, bytes, sizeof(bytes)), 0);
	d = kvs_object_data(g, "empty");
	cr_assert_not_null(d);
	cr_expect_eq(d->len, 0);
	cr_expect_eq(g->data_bytes, sizeof(bytes));
	kvs_object_free(g);
}

Test(backend, get_of_missing_object_is_enotfound)
{
	kvs_object *o = NULL;

	cr_expect_eq(be->ops->get(be, &o, "nothing-here"), KVS_ENOTFOUND);
	cr_expect_null(o);
}

Test(backend, create_of_existing_name_is_eexists)
{
	put_new(mk("dup", NULL, "one"), NULL);
	kvs_object *o = mk("dup", NULL, "two");
	cr_expect_eq(be->ops->create(be, NULL, o), KVS_EEXISTS, "%s", kvs_error_last());
	kvs_object_free(o);
	char buf[16];
	kvs_object *g = get("dup");
	cr_expect_str_eq(data_str(g, buf, sizeof(buf)), "one");
	kvs_object_free(g);
}

Test(backend, invalid_object_name_is_einvalobj)
{
	kvs_object *o = mk("Not_A-DNS-Name", NULL, "x");

	cr_expect_eq(be->ops->create(be, NULL, o), KVS_EINVALOBJ, "%s", kvs_error_last());
	kvs_object_free(o);
}

/* Both backends validate metadata with the API server's rules and words
 * (kube/validate.c): the in-memory one directly, the Kubernetes one
 * through the API test server. */
static void expect_refused(kvs_object *o, const char *want)
{
	int rc = be->ops->create(be, NULL, o);
	cr_expect(rc == KVS_EINVALOBJ || rc == KVS_ETOOBIG, "%s accepted: %s (%s)", o->name,
	          kvs_strerror(rc), kvs_error_last());
	cr_expect(strstr(kvs_error_last(), want) != NULL, "%s: detail lacks '%s': %s", o->name,
	          want, kvs_error_last());
	kvs_object_free(o);
	kvs_object *g = NULL;
	cr_expect_eq(be->ops->get(be, &g, "bad-meta"), KVS_ENOTFOUND, "a refused object was stored");
	kvs_object_free(g);
}

Test(backend, invalid_label_key_is_refused_with_the_server_message)
{
	kvs_object *o = mk("bad-meta", NULL, "x");
	cr_assert_eq(kvs_object_set_label(o, "bad key", "v"), 0);
	expect_refused(o, "metadata.labels: Invalid value: \"bad key\": name part must consist of "
	               "alphanumeric characters, '-', '_' or '.', and must start and end with an "
	               "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
	               "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
}

Test(backend, invalid_label_value_is_refused_with_the_server_message)
{
	kvs_object *o = mk("bad-meta", NULL, "x");
	cr_assert_eq(kvs_object_set_label(o, "app", "-starts-with-a-dash"), 0);
	expect_refused(o, "metadata.labels: Invalid value: \"-starts-with-a-dash\": a valid label "
	               "must be an empty string or consist of alphanumeric characters");
}

Test(backend, annotations_over_256_kib_are_refused_with_the_server_message)
{
	size_t n = 256 * 1024;
	char *big = malloc(n + 1);
	cr_assert_not_null(big);
	memset(big, 'a', n);
	big[n] = '\0';
	kvs_object *o = mk("bad-meta", NULL, "x");
	cr_assert_eq(kvs_object_set_annotation(o, "k", big), 0);
	free(big);
	expect_refused(o, "metadata.annotations: Too long: must have at most 262144 bytes");
}

Test(backend, replace_with_stale_rv_is_econflict_and_leaves_object_unchanged)
{
	char rv1[64], buf[16];
	kvs_object *out = NULL;

	put_new(mk("cas", NULL, "v1"), rv1);
	kvs_object *o = mk("cas", NULL, "v2");
	kvs_object_set_rv(o, rv1);
	cr_assert_eq(be->ops->replace(be, &out, o), 0, "%s", kvs_error_last());
	char rv2[64];
	snprintf(rv2, sizeof(rv2), "%s", out->resource_version);
	kvs_object_free(out);
	kvs_object_free(o);

	o = mk("cas", NULL, "v3");
	kvs_object_set_rv(o, rv1);  /* stale */
	cr_expect_eq(be->ops->replace(be, NULL, o), KVS_ECONFLICT, "%s", kvs_error_last());
	kvs_object_free(o);
	kvs_object *g = get("cas");
	cr_expect_str_eq(data_str(g, buf, sizeof(buf)), "v2");
	cr_expect_str_eq(g->resource_version, rv2);
	kvs_object_free(g);
}

Test(backend, replace_without_rv_is_unconditional)
{
	char rv1[64], buf[16];
	kvs_object *out = NULL;

	put_new(mk("blind", NULL, "v1"), rv1);
	kvs_object *o = mk("blind", "new", "v2");
	cr_assert_eq(be->ops->replace(be, &out, o), 0, "%s", kvs_error_last());
	cr_expect_str_neq(out->resource_version, rv1);
	kvs_object_free(out);
	kvs_object_free(o);
	kvs_object *g = get("blind");
	cr_expect_str_eq(data_str(g, buf, sizeof(buf)), "v2");
	cr_expect_str_eq(kvs_object_label(g, "app"), "new");
	kvs_object_free(g);
}

Test(backend, replace_of_missing_object_is_enotfound)
{
	kvs_object *o = mk("never-created", NULL, "v");

	cr_expect_eq(be->ops->replace(be, NULL, o), KVS_ENOTFOUND, "%s", kvs_error_last());
	kvs_object_free(o);
}

Test(backend, remove_with_stale_rv_precondition_is_econflict)
{
	char rv1[64];
	kvs_object *out = NULL;

	put_new(mk("rm", NULL, "v1"), rv1);
	kvs_object *o = mk("rm", NULL, "v2");
	cr_assert_eq(be->ops->replace(be, &out, o), 0);
	kvs_object_free(o);
	cr_expect_eq(be->ops->remove(be, "rm", rv1, NULL), KVS_ECONFLICT, "%s", kvs_error_last());
	kvs_object *g = get("rm");  /* still there */
	kvs_object_free(g);
	cr_expect_eq(be->ops->remove(be, "rm", out->resource_version, out->uid), 0, "%s",
	             kvs_error_last());
	kvs_object_free(out);
}

Test(backend, remove_with_other_uid_precondition_is_econflict)
{
	put_new(mk("rm-uid", NULL, "v1"), NULL);
	cr_expect_eq(be->ops->remove(be, "rm-uid", NULL, "00000000-0000-4000-8000-000000000000"),
	             KVS_ECONFLICT, "%s", kvs_error_last());
	kvs_object_free(get("rm-uid"));
}

Test(backend, remove_of_missing_object_is_enotfound)
{
	cr_expect_eq(be->ops->remove(be, "not-there", NULL, NULL), KVS_ENOTFOUND);
}

Test(backend, immutable_object_refuses_data_change)
{
	char buf[16];
	kvs_object *o = mk("frozen", NULL, "v1");

	o->immutable = 1;
	put_new(o, NULL);
	o = mk("frozen", NULL, "v2");
	o->immutable = 1;
	cr_expect_eq(be->ops->replace(be, NULL, o), KVS_EINVALOBJ, "%s", kvs_error_last());
	cr_expect(strstr(kvs_error_last(), "immutable") != NULL, "%s", kvs_error_last());
	kvs_object_free(o);
	kvs_object *g = get("frozen");
	cr_expect_str_eq(data_str(g, buf, sizeof(buf)), "v1");
	kvs_object_free(g);
}

Test(backend, immutable_object_refuses_clearing_immutable)
{
	kvs_object *o = mk("frozen2", NULL, "v1");

	o->immutable = 1;
	put_new(o, NULL);
	o = mk("frozen2", NULL, "v1");
	o->immutable = 0;
	cr_expect_eq(be->ops->replace(be, NULL, o), KVS_EINVALOBJ, "%s", kvs_error_last());
	kvs_object_free(o);
}

Test(backend, immutable_object_accepts_label_change_with_same_data)
{
	kvs_object *o = mk("frozen3", "a", "v1"), *out = NULL;
	char rv1[64];

	o->immutable = 1;
	put_new(o, rv1);
	o = mk("frozen3", "b", "v1");
	o->immutable = 1;
	cr_expect_eq(be->ops->replace(be, &out, o), 0, "%s", kvs_error_last());
	kvs_object_free(o);
	kvs_object *g = get("frozen3");
	cr_expect_str_eq(kvs_object_label(g, "app"), "b");
	kvs_object_free(g);
	kvs_object_free(out);
}

Test(backend, annotate_is_allowed_on_immutable_object_and_bumps_rv)
{
	char rv1[64], buf[16];
	kvs_object *o = mk("touched", NULL, "v1"), *out = NULL;
	kvs_kv ann = { (char *)"kvsplit.io/touched", (char *)"12345" };

	o->immutable = 1;
	cr_assert_eq(kvs_object_set_annotation(o, "keep", "me"), 0);
	put_new(o, rv1);
	cr_assert_eq(be->ops->annotate(be, &out, "touched", &ann, 1), 0, "%s", kvs_error_last());
	cr_expect_gt(rv_num(out->resource_version), rv_num(rv1));
	kvs_object *g = get("touched");
	cr_expect_str_eq(g->resource_version, out->resource_version);
	cr_expect_str_eq(kvs_object_annotation(g, "kvsplit.io/touched"), "12345");
	cr_expect_str_eq(kvs_object_annotation(g, "keep"), "me");
	cr_expect_str_eq(data_str(g, buf, sizeof(buf)), "v1");
	kvs_object_free(g);
	kvs_object_free(out);
}

Test(backend, annotate_of_missing_object_is_enotfound)
{
	kvs_kv ann = { (char *)"a", (char *)"b" };

	cr_expect_eq(be->ops->annotate(be, NULL, "absent", &ann, 1), KVS_ENOTFOUND);
}

static int create_sized(const char *name, size_t len)
{
	kvs_object *o = kvs_object_new(name);
	uint8_t *buf = malloc(len);

	fx_random(buf, len, len);
	cr_assert_eq(kvs_object_add_data_owned(o, "big", buf, len), 0);
	int rc = be->ops->create(be, NULL, o);
	kvs_object_free(o);
	return rc;
}

Test(backend, data_over_1048576_bytes_is_etoobig_with_server_message)
{
	cr_expect_eq(create_sized("too-big", 1048577), KVS_ETOOBIG, "%s", kvs_error_last());
	cr_expect(strstr(kvs_error_last(), "Too long: must have at most 1048576 bytes") != NULL,
	          "%s", kvs_error_last());
	kvs_object *o = NULL;
	cr_expect_eq(be->ops->get(be, &o, "too-big"), KVS_ENOTFOUND);
}

Test(backend, data_of_exactly_1048576_bytes_is_accepted)
{
	cr_expect_eq(create_sized("just-fits", 1048576), 0, "%s", kvs_error_last());
	kvs_object *g = get("just-fits");
	cr_expect_eq(g->data_bytes, 1048576);
	kvs_object_free(g);
}

/* Names of a list in order, comma-separated. */
static void list_names(const char *sel, char *buf, size_t cap)
{
	kvs_object_list *l = NULL;
	int rc = be->ops->list(be, &l, sel, 0, NULL, 0);

	cr_assert_eq(rc, 0, "list %s: %s", sel ? sel : "(all)", kvs_error_last());
	buf[0] = '\0';
	for (size_t i = 0; i < l->count; i++) {
		if (i)
			strncat(buf, ",", cap - strlen(buf) - 1);
		strncat(buf, l->items[i]->name, cap - strlen(buf) - 1);
	}
	kvs_object_list_free(l);
}

static void make_selector_fixture(void)
{
	put_new(mk("s-a", "web", "1"), NULL);
	put_new(mk("s-b", "db", "2"), NULL);
	put_new(mk("s-c", "cache", "3"), NULL);
	put_new(mk("s-d", NULL, "4"), NULL);
}

Test(backend, list_selector_equality_filters_and_sorts_by_name)
{
	char buf[256];

	make_selector_fixture();
	list_names("app=web", buf, sizeof(buf));
	cr_expect_str_eq(buf, "s-a");
	list_names("app==db", buf, sizeof(buf));
	cr_expect_str_eq(buf, "s-b");
	list_names("app!=web", buf, sizeof(buf));
	cr_expect_str_eq(buf, "s-b,s-c,s-d");
	list_names(NULL, buf, sizeof(buf));
	cr_expect_str_eq(buf, "s-a,s-b,s-c,s-d");
}

Test(backend, list_selector_set_based_filters)
{
	char buf[256];

	make_selector_fixture();
	list_names("app in (web, cache)", buf, sizeof(buf));
	cr_expect_str_eq(buf, "s-a,s-c");
	list_names("app notin (web)", buf, sizeof(buf));
	cr_expect_str_eq(buf, "s-b,s-c,s-d");
	list_names("app", buf, sizeof(buf));
	cr_expect_str_eq(buf, "s-a,s-b,s-c");
	list_names("!app", buf, sizeof(buf));
	cr_expect_str_eq(buf, "s-d");
	list_names("app,app notin (db,cache)", buf, sizeof(buf));
	cr_expect_str_eq(buf, "s-a");
}

Test(backend, pagination_with_small_limit_visits_every_object_exactly_once)
{
	enum { N = 23 };
	int seen[N] = { 0 };
	char *token = NULL;
	size_t pages = 0;

	for (int i = 0; i < N; i++) {
		char name[32];
		snprintf(name, sizeof(name), "page-%02d", i);
		put_new(mk(name, i % 3 ? "in" : "out", "x"), NULL);
	}
	do {
		kvs_object_list *l = NULL;
		int rc = be->ops->list(be, &l, "app=in", 4, token, 0);
		cr_assert_eq(rc, 0, "%s", kvs_error_last());
		cr_assert_leq(l->count, 4);
		for (size_t i = 0; i < l->count; i++) {
			int k = atoi(l->items[i]->name + 5);
			cr_assert(k >= 0 && k < N && k % 3, "unexpected %s", l->items[i]->name);
			seen[k]++;
		}
		free(token);
		token = l->next ? strdup(l->next) : NULL;
		kvs_object_list_free(l);
		cr_assert_lt(++pages, 20);
	} while (token);
	for (int i = 0; i < N; i++)
		cr_expect_eq(seen[i], i % 3 ? 1 : 0, "page-%02d seen %d times", i, seen[i]);
}

Test(backend, metadata_only_list_omits_data_but_reports_data_bytes)
{
	kvs_object_list *l = NULL;

	put_new(mk("meta", "m", "0123456789"), NULL);
	cr_assert_eq(be->ops->list(be, &l, "app=m", 0, NULL, KVS_LIST_METADATA_ONLY), 0);
	cr_assert_eq(l->count, 1);
	cr_expect_eq(l->items[0]->ndata, 0);
	cr_expect_eq(l->items[0]->data_bytes, 10);
	cr_expect_str_eq(kvs_object_label(l->items[0], "app"), "m");
	cr_expect_neq(l->items[0]->resource_version[0], '\0');
	kvs_object_list_free(l);
}

Test(backend, revisions_increase_across_objects)
{
	char r1[64], r2[64], r3[64];
	kvs_object_list *l = NULL;

	put_new(mk("rev-a", NULL, "1"), r1);
	put_new(mk("rev-b", NULL, "2"), r2);
	put_new(mk("rev-c", NULL, "3"), r3);
	cr_expect_lt(rv_num(r1), rv_num(r2));
	cr_expect_lt(rv_num(r2), rv_num(r3));
	cr_assert_eq(be->ops->list(be, &l, NULL, 0, NULL, 0), 0);
	cr_expect_geq(rv_num(l->resource_version), rv_num(r3));
	kvs_object_list_free(l);
}

/* Next event other than a bookmark, within a few seconds. */
static int next_event(kvs_backend_watch *w, kvs_event *ev)
{
	for (int i = 0; i < 50; i++) {
		int rc = be->ops->watch_next(w, ev, 200);
		if (rc == KVS_ETIMEOUT)
			continue;
		if (rc < 0)
			return rc;
		if (ev->type != KVS_EVENT_BOOKMARK)
			return 0;
		kvs_event_clear(ev);
	}
	return KVS_ETIMEOUT;
}

static const char *list_rv(const char *sel, char rv[64])
{
	kvs_object_list *l = NULL;

	cr_assert_eq(be->ops->list(be, &l, sel, 0, NULL, 0), 0);
	snprintf(rv, 64, "%s", l->resource_version);
	kvs_object_list_free(l);
	return rv;
}

static void expect_event(kvs_backend_watch *w, kvs_event_type type, const char *name)
{
	kvs_event ev = { 0 };
	int rc = next_event(w, &ev);

	cr_assert_eq(rc, 0, "watch_next: %s", kvs_error_last());
	cr_expect_eq(ev.type, type, "event type %d, want %d (%s)", ev.type, type, ev.object->name);
	cr_expect_str_eq(ev.object->name, name);
	cr_expect_neq(ev.object->resource_version[0], '\0');
	kvs_event_clear(&ev);
}

Test(backend, watch_from_list_rv_sees_added_modified_deleted_in_order)
{
	char rv[64];
	kvs_backend_watch *w = NULL;

	put_new(mk("before", "w", "0"), NULL);
	list_rv("app=w", rv);
	cr_assert_eq(be->ops->watch_open(be, &w, "app=w", rv), 0, "%s", kvs_error_last());
	put_new(mk("w-obj", "w", "1"), NULL);
	put_new(mk("other", "not-w", "1"), NULL);
	kvs_object *o = mk("w-obj", "w", "2");
	cr_assert_eq(be->ops->replace(be, NULL, o), 0);
	kvs_object_free(o);
	cr_assert_eq(be->ops->remove(be, "w-obj", NULL, NULL), 0);
	expect_event(w, KVS_EVENT_ADDED, "w-obj");
	expect_event(w, KVS_EVENT_MODIFIED, "w-obj");
	expect_event(w, KVS_EVENT_DELETED, "w-obj");
	be->ops->watch_close(w);
}

Test(backend, watch_from_empty_rv_starts_with_current_objects_as_added)
{
	kvs_backend_watch *w = NULL;

	put_new(mk("cur-1", "c", "0"), NULL);
	put_new(mk("cur-2", "c", "0"), NULL);
	cr_assert_eq(be->ops->watch_open(be, &w, "app=c", ""), 0, "%s", kvs_error_last());
	expect_event(w, KVS_EVENT_ADDED, "cur-1");
	expect_event(w, KVS_EVENT_ADDED, "cur-2");
	put_new(mk("cur-3", "c", "0"), NULL);
	expect_event(w, KVS_EVENT_ADDED, "cur-3");
	be->ops->watch_close(w);
}

Test(backend, watch_reports_object_leaving_selector_as_deleted_and_entering_as_added)
{
	char rv[64];
	kvs_backend_watch *w = NULL;

	list_rv(NULL, rv);
	cr_assert_eq(be->ops->watch_open(be, &w, "app=in", rv), 0, "%s", kvs_error_last());
	put_new(mk("mover", "out", "0"), NULL);
	kvs_object *o = mk("mover", "in", "0");
	cr_assert_eq(be->ops->replace(be, NULL, o), 0);
	kvs_object_free(o);
	o = mk("mover", "out", "0");
	cr_assert_eq(be->ops->replace(be, NULL, o), 0);
	kvs_object_free(o);
	expect_event(w, KVS_EVENT_ADDED, "mover");
	expect_event(w, KVS_EVENT_DELETED, "mover");
	be->ops->watch_close(w);
}

Test(backend, watch_from_compacted_rv_is_egone)
{
	char rv[64];
	kvs_backend_watch *w = NULL;
	kvs_event ev = { 0 };

	put_new(mk("old", NULL, "0"), rv);
	put_new(mk("newer", NULL, "0"), NULL);
	put_new(mk("newest", NULL, "0"), NULL);
	cr_assert_eq(fx_compact(be), 0, "fx_compact: %s", kvs_error_last());
	int rc = be->ops->watch_open(be, &w, NULL, rv);
	if (rc == 0) {
		rc = next_event(w, &ev);
		kvs_event_clear(&ev);
		be->ops->watch_close(w);
	}
	cr_expect_eq(rc, KVS_EGONE, "got %d: %s", rc, kvs_error_last());
}

Test(backend, idle_watch_receives_bookmark_with_current_rv)
{
	char rv[64];
	kvs_backend_watch *w = NULL;
	kvs_event ev = { 0 };
	int got = 0;

	put_new(mk("idle", NULL, "0"), NULL);
	list_rv(NULL, rv);
	cr_assert_eq(be->ops->watch_open(be, &w, NULL, rv), 0, "%s", kvs_error_last());
	cr_assert_eq(fx_touch(be), 0, "%s", kvs_error_last()); /* a newer revision elsewhere */
	for (int i = 0; i < 30 && !got; i++) {
		int rc = be->ops->watch_next(w, &ev, 300);
		if (rc == KVS_ETIMEOUT)
			continue;
		cr_assert_eq(rc, 0, "%s", kvs_error_last());
		cr_assert_eq(ev.type, KVS_EVENT_BOOKMARK, "unexpected event %d", ev.type);
		cr_expect_geq(rv_num(ev.object->resource_version), rv_num(rv));
		got = 1;
		kvs_event_clear(&ev);
	}
	cr_expect(got, "no bookmark arrived");
	be->ops->watch_close(w);
}

Test(backend, batch_gives_each_get_and_create_its_own_result)
{
	char buf[16];

	if (!be->ops->batch)
		cr_skip_test("backend has no batch");
	put_new(mk("b-have", NULL, "have"), NULL);
	kvs_object *n1 = mk("b-new", NULL, "new"), *n2 = mk("b-have", NULL, "dup");
	kvs_op ops[4] = {
		{ .kind = KVS_OP_GET, .name = "b-have" },
		{ .kind = KVS_OP_GET, .name = "b-missing" },
		{ .kind = KVS_OP_CREATE, .in = n1 },
		{ .kind = KVS_OP_CREATE, .in = n2 },
	};
	cr_assert_eq(be->ops->batch(be, ops, 4), 0, "%s", kvs_error_last());
	cr_expect_eq(ops[0].result, 0);
	cr_assert_not_null(ops[0].out);
	cr_expect_str_eq(data_str(ops[0].out, buf, sizeof(buf)), "have");
	cr_expect_eq(ops[1].result, KVS_ENOTFOUND);
	cr_expect_eq(ops[2].result, 0);
	cr_expect_eq(ops[3].result, KVS_EEXISTS);
	for (int i = 0; i < 4; i++)
		kvs_object_free(ops[i].out);
	kvs_object_free(n1);
	kvs_object_free(n2);
	kvs_object *g = get("b-new");
	cr_expect_str_eq(data_str(g, buf, sizeof(buf)), "new");
	kvs_object_free(g);
}

/* A parallel batch overwrites the thread's last error: each failed op must
 * carry its own detail (and a successful one none). */
Test(backend, batch_gives_each_failed_op_its_own_detail)
{
	if (!be->ops->batch)
		cr_skip_test("backend has no batch");
	put_new(mk("d-have", NULL, "have"), NULL);
	kvs_object *dup = mk("d-have", NULL, "dup");
	kvs_op ops[3] = {
		{ .kind = KVS_OP_GET, .name = "d-missing-one" },
		{ .kind = KVS_OP_CREATE, .in = dup },
		{ .kind = KVS_OP_GET, .name = "d-have" },
	};
	strcpy(ops[2].detail, "stale");
	cr_assert_eq(be->ops->batch(be, ops, 3), 0, "%s", kvs_error_last());
	cr_expect_eq(ops[0].result, KVS_ENOTFOUND);
	cr_expect_not_null(strstr(ops[0].detail, "d-missing-one"), "%s", ops[0].detail);
	cr_expect_eq(ops[1].result, KVS_EEXISTS);
	cr_expect_not_null(strstr(ops[1].detail, "d-have"), "%s", ops[1].detail);
	cr_expect_eq(ops[2].result, 0);
	cr_expect_str_eq(ops[2].detail, "");
	for (int i = 0; i < 3; i++)
		kvs_object_free(ops[i].out);
	kvs_object_free(dup);
}

enum { RACE_N = 40 };

struct racer {
	kvs_backend *b;
	pthread_barrier_t *bar;
	int rc[RACE_N];
};

static void *race(void *arg)
{
	struct racer *r = arg;

	for (int i = 0; i < RACE_N; i++) {
		char name[32];
		snprintf(name, sizeof(name), "race-%02d", i);
		kvs_object *o = kvs_object_new(name);
		kvs_object_add_data(o, "d", name, strlen(name));
		pthread_barrier_wait(r->bar);
		r->rc[i] = r->b->ops->create(r->b, NULL, o);
		kvs_object_free(o);
	}
	return NULL;
}

Test(backend, concurrent_creates_of_same_name_have_exactly_one_winner)
{
	pthread_barrier_t bar;
	struct racer a = { .bar = &bar }, b = { .bar = &bar };
	pthread_t ta, tb;

	a.b = be;
	cr_assert_eq(fx_backend_peer(&b.b, be), 0, "%s", kvs_error_last());
	pthread_barrier_init(&bar, NULL, 2);
	pthread_create(&ta, NULL, race, &a);
	pthread_create(&tb, NULL, race, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&bar);
	for (int i = 0; i < RACE_N; i++) {
		int wins = (a.rc[i] == 0) + (b.rc[i] == 0);
		int loses = (a.rc[i] == KVS_EEXISTS) + (b.rc[i] == KVS_EEXISTS);
		cr_expect(wins == 1 && loses == 1, "race-%02d: %d / %d", i, a.rc[i], b.rc[i]);
	}
	kvs_backend_free(b.b);
}

Test(backend, peer_handle_sees_the_same_objects)
{
	kvs_backend *peer = NULL;
	kvs_object *o = NULL;

	cr_assert_eq(fx_backend_peer(&peer, be), 0, "%s", kvs_error_last());
	put_new(mk("shared", NULL, "x"), NULL);
	cr_expect_eq(peer->ops->get(peer, &o, "shared"), 0, "%s", kvs_error_last());
	kvs_object_free(o);
	kvs_backend_free(peer);
}
