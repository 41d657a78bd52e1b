/*
 * kube_client_fuzzer.c — the Kubernetes client's decoding of responses
 * (kube/client.c, kube/json.c) on arbitrary bytes. Byte 0 picks:
 *
 *   0  a GET/POST/PUT answer as run_one parses it (kvs_kube_parse with the
 *      object cap): a tree or an error code, never both; what parses as an
 *      object and holds a ConfigMap converts (kvs__kube_object_from_json)
 *      to a sane kvs_object or fails leaving nothing;
 *   1  a list answer: kvs_kube_parse with the list cap, then
 *      kvs__kube_page_decode: count equals the items, resourceVersion
 *      shorter than KVS_VER_MAX, continue token NULL or non-empty; each
 *      item converts as in 0 (the ConfigMap backend's list);
 *   2  an error answer (HTTP code from byte 0): kvs__kube_http_error always
 *      fails, with the code kvs__kube_status_code gives for the parsed
 *      Status (the mapping is one function, whatever the path), and a
 *      detail that carries no control character (a hostile server's bytes
 *      must not reach a terminal or a log line as escapes or new lines);
 *      the fields of the parsed Status are NUL-terminated and the code in
 *      range.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvsplit.h"
#include "kvsplit/kube.h"
#include "kube/client.h"
#include "kube/json.h"

#define FAIL() fail(__LINE__)
static void fail(int line)
{
	fprintf(stderr, "kube_client_fuzzer.c:%d: property violated (last error: %s)\n", line,
	        kvs_error_last());
	abort();
}

static void check_item(const cJSON *item)
{
	kvs_object *o = NULL;
	uint64_t sum = 0;

	if (kvs__kube_object_from_json(&o, item, 0, "fuzz item") != 0) {
		if (o)
			FAIL();
		return;
	}
	if (!o || !o->name || !o->name[0] || !o->resource_version ||
	    strlen(o->resource_version) >= KVS_VER_MAX)
		FAIL();
	for (size_t i = 0; i < o->ndata; i++)
		sum += o->data[i].len;
	if (o->ndata && sum != o->data_bytes)
		FAIL();
	kvs_object_free(o);
}

static void object(const char *p, size_t n)
{
	cJSON *j = NULL;
	int rc = kvs_kube_parse(&j, p, n, 0);

	if (rc < 0) {
		if (j || (rc != KVS_EIO && rc != KVS_ECORRUPT && rc != KVS_ENOMEM))
			FAIL();
		return;
	}
	if (!j)
		FAIL();
	if (cJSON_IsObject(j))
		check_item(j);
	cJSON_Delete(j);
}

static void list(const char *p, size_t n)
{
	cJSON *j = NULL, *it;
	kvs_kube_page *pg = NULL;
	size_t count = 0;
	int rc = kvs_kube_parse(&j, p, n, KVS__KUBE_MAX_LIST);

	if (rc < 0 || !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return;
	}
	rc = kvs__kube_page_decode(&pg, j, "fuzz list");   /* takes j */
	if (rc < 0) {
		if (pg || rc != KVS_ECORRUPT)
			FAIL();
		return;
	}
	if (!pg || !pg->doc || !cJSON_IsArray(pg->items) || !pg->resource_version ||
	    strlen(pg->resource_version) >= KVS_VER_MAX ||
	    (pg->continue_token && !pg->continue_token[0]))
		FAIL();
	cJSON_ArrayForEach(it, pg->items) {
		count++;
		if (cJSON_IsObject(it))
			check_item(it);
	}
	if (count != pg->count)
		FAIL();
	kvs_kube_page_free(pg);
}

static void error_answer(uint8_t sel, const char *p, size_t n)
{
	static const long codes[] = { 400, 401, 403, 404, 409, 410, 413, 422,
		                      429, 500, 502, 503, 504, 301, 0, 999 };
	long http = codes[(sel >> 2) % (sizeof(codes) / sizeof(codes[0]))];
	kvs__kube_status st;
	const char *d;
	int rc;

	kvs__kube_status_parse(&st, p, n);
	if (st.code < 0 || st.code >= 1000 || !memchr(st.reason, '\0', sizeof(st.reason)) ||
	    !memchr(st.message, '\0', sizeof(st.message)) ||
	    !memchr(st.details_kind, '\0', sizeof(st.details_kind)) ||
	    !memchr(st.details_name, '\0', sizeof(st.details_name)))
		FAIL();
	rc = kvs__kube_http_error(http, p, n, "get configmaps ns/x", (sel & 0x40) ? "ns" : NULL,
	                          (sel >> 7) & 1);
	if (rc >= 0 || rc != kvs__kube_status_code(&st, http))
		FAIL();
	for (d = kvs_error_last(); *d; d++)
		if ((unsigned char)*d < 0x20 || *d == 0x7f)
			FAIL();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p;
	size_t n;

	if (size < 1)
		return 0;
	p = (const char *)data + 1;
	n = size - 1;
	switch (data[0] & 3) {
	case 0: object(p, n); break;
	case 1: list(p, n); break;
	default: error_answer(data[0], p, n); break;
	}
	return 0;
}
