/*
 * test_kubeclient.c — suite `kubeclient`: the Kubernetes client of
 * include/kvsplit/kube.h against the project's API test server
 * (build/kapi-server): every verb on ConfigMaps, Leases and a custom
 * resource registered by applying its CRD (with the status subresource),
 * both patch types, delete preconditions and propagation, list pagination,
 * selectors and metadata-only lists, watch from a list's resourceVersion
 * with bookmarks and 410 after compaction, the Status mapping, the raw
 * batch entry point, and the memory bound of response parsing.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "kvsplit/kube.h"
#include "kube/json.h"
#include "support/fixture_kube.h"

TestSuite(kubeclient, .timeout = 60);

/* ------------------------------------------------------------------------ */
/* memory bound of parsing (no server)                                      */

/* A counting allocator for cJSON: bytes asked for plus 16 per block (what
 * glibc's malloc adds at least). Past `refuse_over` it fails, so that the
 * old unbounded parse stops early instead of eating gigabytes here. */
static size_t m_cur, m_peak, m_refuse_over;
static int m_refused;

static void *count_malloc(size_t n)
{
	size_t *p;

	if (m_cur + n + 16 > m_refuse_over) {
		m_refused = 1;
		return NULL;
	}
	if (!(p = malloc(n + sizeof(size_t) * 2)))
		return NULL;
	p[0] = n;
	m_cur += n + 16;
	if (m_cur > m_peak)
		m_peak = m_cur;
	return p + 2;
}

static void count_free(void *q)
{
	size_t *p = q;

	if (!p)
		return;
	p -= 2;
	m_cur -= p[0] + 16;
	free(p);
}

static void count_hooks(size_t refuse_over)
{
	cJSON_Hooks h = { count_malloc, count_free };

	m_cur = m_peak = 0;
	m_refused = 0;
	m_refuse_over = refuse_over;
	cJSON_InitHooks(&h);
}

/* `{"items":[` + unit * n + `]}`, units separated by commas. */
static char *repeat_body(const char *head, const char *unit, const char *tail, size_t total,
                         size_t *len)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail), off = 0;
	char *b = malloc(total + 1);

	cr_assert_not_null(b);
	memcpy(b, head, hl);
	off = hl;
	while (off + ul + 1 + tl <= total) {
		if (off > hl)
			b[off++] = ',';
		memcpy(b + off, unit, ul);
		off += ul;
	}
	memcpy(b + off, tail, tl);
	off += tl;
	b[off] = '\0';
	*len = off;
	return b;
}

/* The defect: a 64 MiB list page of `[],[],...` (under the byte cap) drove
 * the parse to 1.77 GiB before the items were refused. Whatever the body,
 * the tree must stay within 3x the cap; this one is refused before parsing. */
Test(kubeclient, hostile_list_body_parse_memory_is_bounded_by_the_cap)
{
	size_t len, cap = KVS__KUBE_MAX_LIST;
	char *body = repeat_body("{\"items\":[", "[]", "]}", cap - 16, &len);
	kvs_object_list *l = NULL;
	int rc;

	count_hooks(4 * (size_t)cap);
	rc = kvs__kube_list_parse(&l, body, len, 0, "list configmaps");
	cr_expect_lt(rc, 0);
	cr_expect_null(l);
	cr_expect_eq(m_refused, 0, "the parse asked for more than 4x the cap");
	cr_expect_leq(m_peak, 3 * (size_t)cap, "peak %zu bytes of tree for a %zu-byte body", m_peak,
	              len);
	cr_expect_eq(rc, KVS_EIO, "rc %d: %s", rc, kvs_error_last());
	cr_expect(strstr(kvs_error_last(), "JSON values"), "%s", kvs_error_last());
	free(body);
}

/* The same for one object, a watch event line and raw callers. */
Test(kubeclient, hostile_object_event_and_raw_bodies_are_refused_before_parsing)
{
	size_t len;
	char *body = repeat_body("{\"metadata\":{\"name\":\"x\"},\"data\":[", "1", "]}",
	                         KVS__KUBE_MAX_OBJECT - 16, &len);
	kvs_object *o = NULL;
	kvs_event ev;
	cJSON *j = NULL;

	count_hooks(4 * (size_t)KVS__KUBE_MAX_OBJECT);
	cr_expect_eq(kvs__kube_object_parse(&o, body, len, 0, "get configmap x"), KVS_EIO);
	cr_expect_eq(kvs__kube_event_parse(&ev, body, len, "watch"), KVS_EIO);
	cr_expect_eq(kvs_kube_parse(&j, body, len, 0), KVS_EIO);
	cr_expect_null(j);
	cr_expect_eq(m_refused, 0);
	cr_expect_leq(m_peak, 3 * (size_t)KVS__KUBE_MAX_OBJECT);
	free(body);
}

/* Bodies just under the value cap still parse, and then within 3x the cap:
 * the worst shapes per value (empty strings with empty keys). */
Test(kubeclient, structure_heavy_body_under_the_value_cap_parses_within_3x_the_cap)
{
	size_t cap = KVS__KUBE_MAX_OBJECT, max = kvs__json_max_values(cap), len;
	/* each unit `"":""` is one value behind one comma; build max - 16 */
	size_t units = max - 16;
	char *body = repeat_body("{", "\"\":\"\"", "}", 2 + units * 6 - 1, &len);
	cJSON *j = NULL;
	int rc;

	cr_assert_leq(kvs__json_values(body, len), max);
	count_hooks(4 * cap);
	rc = kvs_kube_parse(&j, body, len, cap);
	cr_expect_eq(rc, 0, "rc %d: %s", rc, kvs_error_last());
	cr_expect_eq(m_refused, 0);
	cr_expect_leq(m_peak, 3 * cap, "peak %zu for %zu values", m_peak, units);
	cr_expect_gt(m_peak, cap / 4, "the measure measures nothing (peak %zu)", m_peak);
	cJSON_Delete(j);
	free(body);
}

/* Escaped quotes do not end a string: a `\"` inside a string hides no
 * structure, and an even run of backslashes does end it. */
Test(kubeclient, value_count_skips_strings_with_escapes)
{
	const char *a = "{\"k\":\"a\\\",b,c,[{\",\"x\":[1,2]}";
	const char *b = "[\"\\\\\",1,2]";

	cr_expect_eq(kvs__json_values(a, strlen(a)), 5); /* 1 + { + , + [ + , */
	cr_expect_eq(kvs__json_values(b, strlen(b)), 4);
}
