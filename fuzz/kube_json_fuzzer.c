/*
 * kube_json_fuzzer.c — the Kubernetes API server's answers from arbitrary
 * bytes. The first byte chooses the parser, the rest is the document:
 *
 *   0  one ConfigMap (full decode)          1  one ConfigMap, metadata only
 *   2  a ConfigMapList page (full decode)   3  a PartialObjectMetadataList
 *   4  a Status body, mapped as an HTTP error (code from the selector byte)
 *   5  a watch stream: split into lines the way the stream reader does
 *      (LF, an optional CR stripped, blank lines skipped, the line cap) and
 *      every line parsed as a watch event
 *   6  base64 (strict decode)               7  an RFC 3339 timestamp
 *
 * Nothing may crash, leak or read out of bounds. What parses must make
 * sense: data_bytes matches the decoded data, a ConfigMap serialises again
 * and parses back to the same keys and bytes, decoded base64 re-encodes and
 * decodes to the same bytes. A full ConfigMap parse (0) decodes binaryData
 * in place when it can: it must agree with the whole-tree parse
 * (KVS__KJ_NO_SPANS) on the result, the object and the error detail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/json_roundtrip.h"
#include "kube/json.h"

static void check_object(const kvs_object *o, unsigned flags)
{
	uint64_t sum = 0;

	if (!o || !o->name || !o->name[0] || !o->resource_version || !o->uid ||
	    strlen(o->resource_version) >= KVS_VER_MAX)
		abort();
	for (size_t i = 0; i < o->ndata; i++) {
		if (!o->data[i].key || (o->data[i].len && !o->data[i].data))
			abort();
		sum += o->data[i].len;
	}
	if (flags & KVS__KJ_META_ONLY) {
		if (o->ndata)
			abort();   /* metadata only: nothing decoded */
		return;
	}
	/* without any data the size may come from our annotation (informational) */
	if (o->ndata && sum != o->data_bytes)
		abort();
	/* what we read we can write, and read back the same */
	json_roundtrip(o, 1);
}

static int same_kvs(const kvs_kv *a, size_t na, const kvs_kv *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i].key, b[i].key) != 0 || strcmp(a[i].value, b[i].value) != 0)
			return 0;
	return 1;
}

/* The in-place decoding of binaryData (the short way of a full parse) must
 * give what the whole-tree parse gives: the same result, object or detail. */
static void check_same_as_whole_tree(const char *p, size_t n, int rc, const kvs_object *o)
{
	kvs_object *w = NULL;
	char detail[1024];
	int wrc;

	snprintf(detail, sizeof(detail), "%s", kvs_error_last());
	wrc = kvs__kube_object_parse(&w, p, n, KVS__KJ_NO_SPANS, "fuzz get");
	if (wrc != rc)
		abort();
	if (rc != 0) {
		if (strcmp(detail, kvs_error_last()) != 0)
			abort();
		return;
	}
	if (strcmp(o->name, w->name) || strcmp(o->resource_version, w->resource_version) ||
	    strcmp(o->uid, w->uid) || o->immutable != w->immutable ||
	    o->data_bytes != w->data_bytes || o->created_ms != w->created_ms ||
	    o->updated_ms != w->updated_ms || o->ndata != w->ndata ||
	    !same_kvs(o->labels, o->nlabels, w->labels, w->nlabels) ||
	    !same_kvs(o->annotations, o->nannotations, w->annotations, w->nannotations))
		abort();
	for (size_t i = 0; i < o->ndata; i++)
		if (strcmp(o->data[i].key, w->data[i].key) != 0 || o->data[i].len != w->data[i].len ||
		    (o->data[i].len && memcmp(o->data[i].data, w->data[i].data, o->data[i].len)))
			abort();
	kvs_object_free(w);
}

static void fuzz_object(const char *p, size_t n, unsigned flags)
{
	kvs_object *o = NULL;
	int rc = kvs__kube_object_parse(&o, p, n, flags, "fuzz get");

	if (rc == 0)
		check_object(o, flags);
	else if (o)
		abort();   /* an error leaves nothing behind */
	if (flags == 0)
		check_same_as_whole_tree(p, n, rc, o);
	kvs_object_free(o);
}

static void fuzz_list(const char *p, size_t n, unsigned flags)
{
	kvs_object_list *l = NULL;

	if (kvs__kube_list_parse(&l, p, n, flags, "fuzz list") == 0) {
		if (!l || !l->resource_version || strlen(l->resource_version) >= KVS_VER_MAX ||
		    (l->next && !l->next[0]))
			abort();
		for (size_t i = 0; i < l->count; i++)
			check_object(l->items[i], flags);
	} else if (l) {
		abort();
	}
	kvs_object_list_free(l);
}

static void fuzz_status(uint8_t sel, const char *p, size_t n)
{
	static const long codes[] = { 400, 401, 403, 404, 409, 410, 413, 422, 429, 500, 503, 504,
		                      200, 0, 302, 999 };
	kvs__kube_status st;
	long http = codes[(sel >> 3) % (sizeof(codes) / sizeof(codes[0]))];
	int rc;

	kvs__kube_status_parse(&st, p, n);
	if (st.code < 0 || st.code >= 1000 || !memchr(st.reason, '\0', sizeof(st.reason)) ||
	    !memchr(st.message, '\0', sizeof(st.message)) ||
	    !memchr(st.details_kind, '\0', sizeof(st.details_kind)) ||
	    !memchr(st.details_name, '\0', sizeof(st.details_name)))
		abort();
	rc = kvs__kube_http_error(http, p, n, "fuzz request", (sel & 0x80) ? "ns" : NULL,
	                          (sel >> 7) & 1);
	if (rc >= 0)
		abort();   /* an HTTP error is always an error */
	if (kvs__kube_status_code(&st, http) >= 0)
		abort();
}

/* The watch stream reader's framing (kube_http.c st_body/push_line). */
static void fuzz_watch(const char *p, size_t n)
{
	size_t off = 0;

	while (off < n) {
		const char *nl = memchr(p + off, '\n', n - off);
		size_t len = nl ? (size_t)(nl - (p + off)) : n - off;
		kvs_event ev;
		char *line;

		if (len > KVS__KUBE_MAX_EVENT)
			return;   /* the reader ends the watch: line over the cap */
		if (!nl)
			return;   /* a partial line at the end of the stream is dropped */
		line = malloc(len + 1);
		if (!line)
			return;
		memcpy(line, p + off, len);
		off += len + 1;
		if (len && line[len - 1] == '\r')
			len--;
		line[len] = '\0';
		if (len == 0) {
			free(line);
			continue;
		}
		memset(&ev, 0, sizeof(ev));
		if (kvs__kube_event_parse(&ev, line, len, "fuzz watch") == 0) {
			if (!ev.object || !ev.type)
				abort();
			if (ev.type == KVS_EVENT_BOOKMARK) {
				if (strlen(ev.object->resource_version) >= KVS_VER_MAX)
					abort();
			} else {
				check_object(ev.object, 0);
			}
		} else if (ev.object || ev.type) {
			abort();
		}
		kvs_event_clear(&ev);
		free(line);
	}
}

static void fuzz_b64(const char *p, size_t n)
{
	uint8_t *dec = NULL, *again = NULL;
	size_t dlen = 0, alen = 0;
	char *enc;

	if (kvs__b64_decode(&dec, &dlen, p, n) != 0) {
		if (dec)
			abort();
		return;
	}
	if (!dec || dlen > n / 4 * 3)
		abort();
	enc = malloc(kvs__b64_len(dlen) + 1);
	if (enc) {
		size_t elen = kvs__b64_encode(enc, dec, dlen);
		if (elen != n || kvs__b64_decode(&again, &alen, enc, elen) != 0 || alen != dlen ||
		    (dlen && memcmp(again, dec, dlen)))
			abort();
		free(again);
		free(enc);
	}
	free(dec);
}

static void fuzz_time(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		return;
	memcpy(s, p, n);
	s[n] = '\0';
	(void)kvs__rfc3339_ms(s);
	free(s);
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
	switch (data[0] & 7) {
	case 0: fuzz_object(p, n, 0); break;
	case 1: fuzz_object(p, n, KVS__KJ_META_ONLY); break;
	case 2: fuzz_list(p, n, 0); break;
	case 3: fuzz_list(p, n, KVS__KJ_META_ONLY); break;
	case 4: fuzz_status(data[0], p, n); break;
	case 5: fuzz_watch(p, n); break;
	case 6: fuzz_b64(p, n); break;
	default: fuzz_time(p, n); break;
	}
	return 0;
}
