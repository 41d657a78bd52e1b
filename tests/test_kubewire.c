/*
 * test_kubewire.c — suite `kubewire`: a value's whole path through the
 * Kubernetes backend and the project's API test server on each wire the
 * backend can speak. The segment GETs of a get go as protobuf unless
 * json_only is set (the server's /kapi/stats counts its protobuf answers),
 * and a value stored by a client on one wire reads back byte for byte
 * through a client on the other.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "support/expect.h"
#include "support/fixture_kube.h"

TestSuite(kubewire, .timeout = 120);

#define VALUE_BYTES ((size_t)3 << 20) /* a few segments */

static fx_kapi *start(void)
{
	fx_kapi *k = NULL;

	cr_assert_eq(fx_kapi_start(&k, 0, NULL), 0, "kapi-server: %s", kvs_error_last());
	return k;
}

static double stat_of(fx_kapi *k, const char *name)
{
	char *s = NULL;
	cJSON *root, *v;
	double d;

	cr_assert_eq(fx_kapi_call(k, "GET", "/kapi/stats", NULL, &s), 200);
	root = cJSON_Parse(s);
	v = cJSON_GetObjectItemCaseSensitive(root, name);
	cr_assert(cJSON_IsNumber(v), "no %s in /kapi/stats: %s", name, s);
	d = v->valuedouble;
	cJSON_Delete(root);
	free(s);
	return d;
}

static kvs_store *open_store(fx_kapi *k, int json_only)
{
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_backend *b = NULL;
	kvs_store *s = NULL;

	ko.json_only = json_only;
	o.cache_bytes = 0; /* every get goes to the server */
	cr_assert_eq(fx_kapi_backend(&b, k, &ko), 0, "backend: %s", kvs_error_last());
	cr_assert_eq(kvs_open(&s, b, &o), 0, "open: %s", kvs_error_last());
	return s;
}

/* Half text, half incompressible: both kinds of chunk, several segments. */
static uint8_t *value(size_t n, uint64_t seed)
{
	uint8_t *v = malloc(n);

	cr_assert_not_null(v);
	fx_json((char *)v, n / 2, seed);
	fx_random(v + n / 2, n - n / 2, seed);
	return v;
}

Test(kubewire, segment_gets_are_protobuf_unless_json_only)
{
	fx_kapi *k = start();
	kvs_store *pb = open_store(k, 0), *js = open_store(k, 1);
	uint8_t *v = value(VALUE_BYTES, 7);
	double before, after;

	cr_assert_eq(kvs_put(NULL, pb, "wire/a", v, VALUE_BYTES, NULL), 0, "%s", kvs_error_last());

	before = stat_of(k, "protobuf_responses");
	fx_expect_value(pb, "wire/a", v, VALUE_BYTES);
	after = stat_of(k, "protobuf_responses");
	/* the index and at least two segments */
	cr_assert_geq(after - before, 3, "protobuf answers %g -> %g", before, after);

	before = after;
	fx_expect_value(js, "wire/a", v, VALUE_BYTES);
	after = stat_of(k, "protobuf_responses");
	cr_assert_eq(after, before, "a json_only client got %g protobuf answers", after - before);

	kvs_close(pb);
	kvs_close(js);
	free(v);
	fx_kapi_stop(k);
}

Test(kubewire, a_value_put_on_one_wire_reads_back_on_the_other)
{
	fx_kapi *k = start();
	kvs_store *pb = open_store(k, 0), *js = open_store(k, 1);
	uint8_t *a = value(VALUE_BYTES, 11), *b = value(VALUE_BYTES + 12345, 13);

	cr_assert_eq(kvs_put(NULL, pb, "wire/pb", a, VALUE_BYTES, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_put(NULL, js, "wire/js", b, VALUE_BYTES + 12345, NULL), 0, "%s",
	             kvs_error_last());
	fx_expect_value(js, "wire/pb", a, VALUE_BYTES);
	fx_expect_value(pb, "wire/js", b, VALUE_BYTES + 12345);
	fx_expect_value(pb, "wire/pb", a, VALUE_BYTES);
	fx_expect_value(js, "wire/js", b, VALUE_BYTES + 12345);

	kvs_close(pb);
	kvs_close(js);
	free(a);
	free(b);
	fx_kapi_stop(k);
}

Test(kubewire, a_missing_segment_is_enotfound_naming_it_on_the_protobuf_wire)
{
	fx_kapi *k = start();
	kvs_store *pb = open_store(k, 0);
	uint8_t *v = value(VALUE_BYTES, 17);
	char *list = NULL, *body = NULL, path[512];
	const cJSON *items, *it;
	cJSON *root;
	void *got = NULL;
	size_t len = 0;
	double st0;
	int rc, deleted = 0;

	cr_assert_eq(kvs_put(NULL, pb, "wire/gone", v, VALUE_BYTES, NULL), 0, "%s",
	             kvs_error_last());
	/* delete one segment behind the store's back */
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", fx_kapi_ns(k));
	cr_assert_eq(fx_kapi_call(k, "GET", path, NULL, &list), 200);
	root = cJSON_Parse(list);
	items = cJSON_GetObjectItemCaseSensitive(root, "items");
	cJSON_ArrayForEach(it, items) {
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(it, "metadata");
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(m, "name");
		const cJSON *bd = cJSON_GetObjectItemCaseSensitive(it, "binaryData");

		/* a segment: many chunks in binaryData (the index holds a manifest) */
		if (!deleted && cJSON_GetArraySize(bd) > 1 && cJSON_IsString(n)) {
			snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/%s",
			         fx_kapi_ns(k), n->valuestring);
			cr_assert_eq(fx_kapi_call(k, "DELETE", path, NULL, &body), 200);
			free(body);
			deleted = 1;
		}
	}
	cJSON_Delete(root);
	free(list);
	cr_assert(deleted, "no segment found to delete");

	st0 = stat_of(k, "protobuf_status");
	rc = kvs_get(&got, &len, NULL, pb, "wire/gone", NULL);
	cr_assert_eq(rc, KVS_ENOTFOUND, "get of a value with a deleted segment: %d (%s)", rc,
	             kvs_error_last());
	cr_assert(strstr(kvs_error_last(), "segment"), "detail does not name the segment: %s",
	          kvs_error_last());
	cr_assert_geq(stat_of(k, "protobuf_status") - st0, 1, "the 404 was not a protobuf Status");

	kvs_close(pb);
	free(v);
	fx_kapi_stop(k);
}
