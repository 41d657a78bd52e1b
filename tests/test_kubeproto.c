/*
 * test_kubeproto.c — suite `kubeproto`: the protobuf reader of ConfigMap
 * GETs (kube/proto.c) on byte buffers built here (tests/support/pbenc.h):
 * the object it makes is the one the JSON reader makes from the same
 * object's JSON, field order and unknown fields do not matter, and every
 * malformed input is refused with an error that says what was wrong. Also
 * the protobuf Status of error answers and the Content-Type dispatch.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/json.h"
#include "kube/proto.h"
#include "support/pbenc.h"

TestSuite(kubeproto, .timeout = 60);

/* ------------------------------------------------------------------------ */
/* one ConfigMap, as JSON and as protobuf                                   */

#define T_CREATED 1709208000LL /* 2024-02-29T12:00:00Z */
#define T_M1 1709208005LL      /* 2024-02-29T12:00:05Z */
#define T_M2 1709208060LL      /* 2024-02-29T12:01:00Z */

static uint8_t bin0[300], bin1[5];

static void fill_bins(void)
{
	for (size_t i = 0; i < sizeof(bin0); i++)
		bin0[i] = (uint8_t)(i * 37 + 11); /* holds 0x00 and 0xff */
	memcpy(bin1, "\0\xff\0\x7f\x80", 5);
}

static char *sample_json(void)
{
	char b0[512], b1[16], *js = NULL;

	fill_bins();
	kvs__b64_encode(b0, bin0, sizeof(bin0));
	kvs__b64_encode(b1, bin1, sizeof(bin1));
	cr_assert(asprintf(&js,
	                   "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{"
	                   "\"name\":\"seg-abc\",\"namespace\":\"kvs-test\",\"uid\":\"u-123\","
	                   "\"resourceVersion\":\"42\",\"creationTimestamp\":\"2024-02-29T12:00:00Z\","
	                   "\"labels\":{\"app\":\"kvsplit\",\"kvsplit.io/kind\":\"segment\"},"
	                   "\"annotations\":{\"kvsplit.io/data-bytes\":\"7\",\"note\":\"hi\"},"
	                   "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
	                   "\"name\":\"idx\",\"uid\":\"u-9\",\"controller\":true}],"
	                   "\"finalizers\":[\"kvsplit.io/hold\"],"
	                   "\"managedFields\":[{\"manager\":\"a\",\"operation\":\"Update\","
	                   "\"apiVersion\":\"v1\",\"time\":\"2024-02-29T12:00:05Z\","
	                   "\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:data\":{}}},"
	                   "{\"manager\":\"b\",\"operation\":\"Update\",\"apiVersion\":\"v1\","
	                   "\"time\":\"2024-02-29T12:01:00Z\",\"fieldsType\":\"FieldsV1\","
	                   "\"fieldsV1\":{}}]},"
	                   "\"immutable\":true,\"data\":{\"s\":\"text\"},"
	                   "\"binaryData\":{\"b0\":\"%s\",\"b1\":\"%s\"}}",
	                   b0, b1) > 0);
	return js;
}

/* Unknown fields of every skippable wire type, numbered past what the
 * reader knows. */
static void unknowns(pbenc *e)
{
	pbe_uint(e, 99, 123456789);
	pbe_fixed(e, 98, 0x1122334455667788ull, 8);
	pbe_str(e, 97, "ignored");
	pbe_fixed(e, 96, 0xdeadbeef, 4);
}

enum { V_PLAIN = 0, V_REVERSED = 1, V_UNKNOWN = 2 };

static void managed(pbenc *meta, const char *mgr, int64_t t, int v)
{
	pbenc e = { 0 }, fv = { 0 }, tm = { 0 };

	pbe_str(&fv, 1, "{\"f:data\":{}}");
	pbe_uint(&tm, 1, (uint64_t)t);
	if (v & V_UNKNOWN)
		unknowns(&tm);
	pbe_str(&e, 1, mgr);
	pbe_str(&e, 2, "Update");
	pbe_str(&e, 3, "v1");
	pbe_msg(&e, 4, &tm);
	pbe_str(&e, 6, "FieldsV1");
	pbe_msg(&e, 7, &fv);
	pbe_str(&e, 8, "");
	pbe_msg(meta, 17, &e);
	pbe_free(&e);
	pbe_free(&fv);
	pbe_free(&tm);
}

static void objmeta(pbenc *m, int v)
{
	pbenc own = { 0 };

	pbe_str(&own, 1, "ConfigMap");
	pbe_str(&own, 3, "idx");
	pbe_str(&own, 4, "u-9");
	pbe_str(&own, 5, "v1");
	pbe_uint(&own, 6, 1);
	if (v & V_REVERSED) {
		managed(m, "b", T_M2, v);
		managed(m, "a", T_M1, v);
		pbe_str(m, 14, "kvsplit.io/hold");
		pbe_msg(m, 13, &own);
		pbe_entry(m, 12, "note", "hi", 2);
		pbe_entry(m, 12, "kvsplit.io/data-bytes", "7", 1);
		pbe_entry(m, 11, "kvsplit.io/kind", "segment", 7);
		pbe_entry(m, 11, "app", "kvsplit", 7);
		pbe_time(m, 8, T_CREATED, 0);
		pbe_uint(m, 7, 0);
		pbe_str(m, 6, "42");
		pbe_str(m, 5, "u-123");
		pbe_str(m, 4, "");
		pbe_str(m, 3, "kvs-test");
		pbe_str(m, 2, "");
		pbe_str(m, 1, "seg-abc");
	} else {
		pbe_str(m, 1, "seg-abc");
		pbe_str(m, 2, "");
		pbe_str(m, 3, "kvs-test");
		pbe_str(m, 4, "");
		pbe_str(m, 5, "u-123");
		pbe_str(m, 6, "42");
		pbe_uint(m, 7, 0);
		pbe_time(m, 8, T_CREATED, 0);
		pbe_entry(m, 11, "app", "kvsplit", 7);
		pbe_entry(m, 11, "kvsplit.io/kind", "segment", 7);
		pbe_entry(m, 12, "kvsplit.io/data-bytes", "7", 1);
		pbe_entry(m, 12, "note", "hi", 2);
		pbe_msg(m, 13, &own);
		pbe_str(m, 14, "kvsplit.io/hold");
		managed(m, "a", T_M1, v);
		managed(m, "b", T_M2, v);
	}
	if (v & V_UNKNOWN)
		unknowns(m);
	pbe_free(&own);
}

/* A map entry with its value first, then its key (any order is valid). */
static void entry_backwards(pbenc *e, unsigned num, const char *key, const void *val, size_t n)
{
	pbenc m = { 0 };

	pbe_bytes(&m, 2, val, n);
	pbe_str(&m, 1, key);
	pbe_msg(e, num, &m);
	pbe_free(&m);
}

/* The ConfigMap message (no envelope). */
static void sample_cm(pbenc *cm, int v)
{
	pbenc meta = { 0 };

	fill_bins();
	objmeta(&meta, v);
	if (v & V_REVERSED) {
		pbe_uint(cm, 4, 1);
		entry_backwards(cm, 3, "b1", bin1, sizeof(bin1));
		entry_backwards(cm, 3, "b0", bin0, sizeof(bin0));
		entry_backwards(cm, 2, "s", "text", 4);
		if (v & V_UNKNOWN)
			unknowns(cm);
		pbe_msg(cm, 1, &meta);
	} else {
		pbe_msg(cm, 1, &meta);
		pbe_entry(cm, 2, "s", "text", 4);
		pbe_entry(cm, 3, "b0", bin0, sizeof(bin0));
		pbe_entry(cm, 3, "b1", bin1, sizeof(bin1));
		pbe_uint(cm, 4, 1);
		if (v & V_UNKNOWN)
			unknowns(cm);
	}
	pbe_free(&meta);
}

static void sample_body(pbenc *body, int v)
{
	pbenc cm = { 0 };

	sample_cm(&cm, v);
	pbe_envelope(body, "ConfigMap", &cm);
	pbe_free(&cm);
}

/* Field by field; data and labels by key (their order is the wire's). */
static void same_object(const kvs_object *a, const kvs_object *b)
{
	cr_assert_str_eq(a->name, b->name);
	cr_expect_str_eq(a->resource_version, b->resource_version);
	cr_expect_str_eq(a->uid, b->uid);
	cr_expect_eq(a->created_ms, b->created_ms, "%lld vs %lld", (long long)a->created_ms,
	             (long long)b->created_ms);
	cr_expect_eq(a->updated_ms, b->updated_ms, "%lld vs %lld", (long long)a->updated_ms,
	             (long long)b->updated_ms);
	cr_expect_eq(a->immutable, b->immutable);
	cr_expect_eq(a->data_bytes, b->data_bytes, "%llu vs %llu",
	             (unsigned long long)a->data_bytes, (unsigned long long)b->data_bytes);
	cr_assert_eq(a->nlabels, b->nlabels);
	for (size_t i = 0; i < a->nlabels; i++) {
		const char *v = kvs_object_label(b, a->labels[i].key);
		cr_expect(v && strcmp(v, a->labels[i].value) == 0, "label %s", a->labels[i].key);
	}
	cr_assert_eq(a->nannotations, b->nannotations);
	for (size_t i = 0; i < a->nannotations; i++) {
		const char *v = kvs_object_annotation(b, a->annotations[i].key);
		cr_expect(v && strcmp(v, a->annotations[i].value) == 0, "annotation %s",
		          a->annotations[i].key);
	}
	cr_assert_eq(a->ndata, b->ndata);
	for (size_t i = 0; i < a->ndata; i++) {
		const kvs_blob *d = kvs_object_data(b, a->data[i].key);
		cr_assert(d, "data %s", a->data[i].key);
		cr_expect_eq(d->len, a->data[i].len, "data %s", a->data[i].key);
		cr_expect(d->len == a->data[i].len && memcmp(d->data, a->data[i].data, d->len) == 0,
		          "data %s bytes", a->data[i].key);
	}
}

static kvs_object *from_json(unsigned flags)
{
	char *js = sample_json();
	kvs_object *o = NULL;

	cr_assert_eq(kvs__kube_object_parse(&o, js, strlen(js), flags, "get configmap t"), 0, "%s",
	             kvs_error_last());
	free(js);
	return o;
}

static kvs_object *from_proto(int v, unsigned flags)
{
	pbenc body = { 0 };
	kvs_object *o = NULL;

	sample_body(&body, v);
	cr_assert_eq(kvs__kube_proto_object(&o, body.p, body.n, flags, "get configmap t"), 0, "%s",
	             kvs_error_last());
	pbe_free(&body);
	return o;
}

Test(kubeproto, configmap_with_every_field_gives_the_object_the_json_reader_gives)
{
	kvs_object *j = from_json(0), *p = from_proto(V_PLAIN, 0);

	/* what the object must hold, so the comparison cannot pass on two
	 * empty objects */
	cr_assert_eq(p->ndata, 3);
	cr_expect_str_eq(p->data[0].key, "b0"); /* binaryData first, as from JSON */
	cr_expect_str_eq(p->data[2].key, "s");
	cr_expect_eq(p->created_ms, T_CREATED * 1000);
	cr_expect_eq(p->updated_ms, T_M2 * 1000);
	cr_expect_eq(p->immutable, 1);
	cr_expect_eq(p->nannotations, 1); /* the size hint is not kept */
	cr_expect_eq(p->data_bytes, sizeof(bin0) + sizeof(bin1) + 4);
	same_object(j, p);
	for (size_t i = 0; i < j->ndata; i++)
		cr_expect_str_eq(j->data[i].key, p->data[i].key, "data[] order");
	kvs_object_free(j);
	kvs_object_free(p);
}

Test(kubeproto, metadata_only_read_counts_the_data_as_the_json_reader_does)
{
	kvs_object *j = from_json(KVS__KJ_META_ONLY), *p = from_proto(V_PLAIN, KVS__KJ_META_ONLY);

	cr_expect_eq(p->ndata, 0);
	cr_expect_eq(p->data_bytes, sizeof(bin0) + sizeof(bin1) + 4);
	same_object(j, p);
	kvs_object_free(j);
	kvs_object_free(p);
}

Test(kubeproto, fields_out_of_order_and_unknown_fields_are_accepted)
{
	kvs_object *j = from_json(0);
	int variants[] = { V_UNKNOWN, V_REVERSED, V_REVERSED | V_UNKNOWN };

	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		kvs_object *p = from_proto(variants[i], 0);

		same_object(j, p);
		kvs_object_free(p);
	}
	kvs_object_free(j);
}

/* PartialObjectMetadata-like: no data field, the size from the hint. */
Test(kubeproto, object_without_data_takes_its_size_from_the_hint_as_from_json)
{
	const char *js = "{\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"3\","
	                 "\"annotations\":{\"kvsplit.io/data-bytes\":\"1234\"}}}";
	pbenc meta = { 0 }, cm = { 0 }, body = { 0 };
	kvs_object *j = NULL, *p = NULL;

	pbe_str(&meta, 1, "x");
	pbe_str(&meta, 6, "3");
	pbe_entry(&meta, 12, "kvsplit.io/data-bytes", "1234", 4);
	pbe_msg(&cm, 1, &meta);
	pbe_envelope(&body, "ConfigMap", &cm);
	cr_assert_eq(kvs__kube_object_parse(&j, js, strlen(js), KVS__KJ_META_ONLY, "t"), 0);
	cr_assert_eq(kvs__kube_proto_object(&p, body.p, body.n, KVS__KJ_META_ONLY, "t"), 0, "%s",
	             kvs_error_last());
	cr_expect_eq(p->data_bytes, 1234);
	same_object(j, p);
	kvs_object_free(j);
	kvs_object_free(p);
	pbe_free(&meta);
	pbe_free(&cm);
	pbe_free(&body);
}

Test(kubeproto, creation_time_nanos_become_milliseconds)
{
	pbenc meta = { 0 }, cm = { 0 }, body = { 0 };
	kvs_object *p = NULL;

	pbe_str(&meta, 1, "x");
	pbe_time(&meta, 8, T_CREATED, 250999999);
	pbe_msg(&cm, 1, &meta);
	pbe_envelope(&body, "ConfigMap", &cm);
	cr_assert_eq(kvs__kube_proto_object(&p, body.p, body.n, 0, "t"), 0, "%s", kvs_error_last());
	cr_expect_eq(p->created_ms, T_CREATED * 1000 + 250);
	kvs_object_free(p);
	pbe_free(&meta);
	pbe_free(&cm);
	pbe_free(&body);
}

/* ------------------------------------------------------------------------ */
/* refusals                                                                 */

static void refused(const uint8_t *p, size_t n, int want_rc, const char *want_detail)
{
	kvs_object *o = (kvs_object *)1;
	int rc = kvs__kube_proto_object(&o, p, n, 0, "get configmap ns/x");

	cr_expect_eq(rc, want_rc, "rc %d (want %d): %s", rc, want_rc, kvs_error_last());
	cr_expect_null(o);
	cr_expect(strstr(kvs_error_last(), want_detail), "detail \"%s\" lacks \"%s\"",
	          kvs_error_last(), want_detail);
	cr_expect(strstr(kvs_error_last(), "get configmap ns/x"), "%s", kvs_error_last());
	if (rc == 0)
		kvs_object_free(o);
}

/* A ConfigMap whose metadata is `meta` plus the name (when `name`). */
static void body_with_meta(pbenc *body, const pbenc *extra, int name)
{
	pbenc meta = { 0 }, cm = { 0 };

	if (name)
		pbe_str(&meta, 1, "x");
	if (extra)
		pbe_raw(&meta, extra->p, extra->n);
	pbe_msg(&cm, 1, &meta);
	pbe_envelope(body, "ConfigMap", &cm);
	pbe_free(&meta);
	pbe_free(&cm);
}

/* A ConfigMap message of raw bytes in a valid envelope. */
static void body_with_cm(pbenc *body, const void *cm, size_t n)
{
	pbenc m = { 0 };

	pbe_raw(&m, cm, n);
	pbe_envelope(body, "ConfigMap", &m);
	pbe_free(&m);
}

Test(kubeproto, groups_are_refused)
{
	for (unsigned wt = 3; wt <= 4; wt++) {
		uint8_t cm[] = { (uint8_t)(5 << 3 | wt), 0 };
		pbenc body = { 0 };

		body_with_cm(&body, cm, sizeof(cm));
		refused(body.p, body.n, KVS_ECORRUPT, "is a group");
		pbe_free(&body);
	}
}

Test(kubeproto, unknown_wire_types_are_refused)
{
	uint8_t cm[] = { (uint8_t)(5 << 3 | 6), 0 };
	pbenc body = { 0 };

	body_with_cm(&body, cm, sizeof(cm));
	refused(body.p, body.n, KVS_ECORRUPT, "unknown wire type 6");
	pbe_free(&body);
}

Test(kubeproto, every_truncation_of_a_valid_body_is_refused)
{
	pbenc body = { 0 };
	kvs_object *o = NULL;

	sample_body(&body, V_PLAIN);
	for (size_t n = 0; n < body.n; n++) {
		int rc = kvs__kube_proto_object(&o, body.p, n, 0, "t");

		cr_assert_lt(rc, 0, "a body cut at %zu of %zu bytes was taken", n, body.n);
		cr_assert_null(o);
	}
	cr_expect_eq(kvs__kube_proto_object(&o, body.p, body.n, 0, "t"), 0);
	kvs_object_free(o);
	pbe_free(&body);
}

Test(kubeproto, truncated_varint_and_fixed_are_refused)
{
	uint8_t cm1[] = { 4 << 3 | 0, 0x80 };           /* immutable: varint cut */
	uint8_t cm2[] = { 9 << 3 | 1, 1, 2, 3 };        /* fixed64 cut */
	uint8_t cm3[] = { 9 << 3 | 5, 1, 2 };           /* fixed32 cut */
	pbenc b1 = { 0 }, b2 = { 0 }, b3 = { 0 };

	body_with_cm(&b1, cm1, sizeof(cm1));
	body_with_cm(&b2, cm2, sizeof(cm2));
	body_with_cm(&b3, cm3, sizeof(cm3));
	refused(b1.p, b1.n, KVS_ECORRUPT, "truncated varint");
	refused(b2.p, b2.n, KVS_ECORRUPT, "truncated fixed64");
	refused(b3.p, b3.n, KVS_ECORRUPT, "truncated fixed32");
	pbe_free(&b1);
	pbe_free(&b2);
	pbe_free(&b3);
}

Test(kubeproto, varint_of_more_than_10_bytes_is_refused)
{
	uint8_t cm[] = { 4 << 3 | 0, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x81, 0 };
	pbenc body = { 0 };

	body_with_cm(&body, cm, sizeof(cm));
	refused(body.p, body.n, KVS_ECORRUPT, "varint longer than 10 bytes");
	pbe_free(&body);
}

Test(kubeproto, varint_over_64_bits_is_refused)
{
	/* ten bytes whose last holds more than the 64th bit */
	uint8_t cm[] = { 4 << 3 | 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02 };
	uint8_t ok[] = { 4 << 3 | 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	pbenc body = { 0 }, good = { 0 }, meta = { 0 };
	kvs_object *o = NULL;

	body_with_cm(&body, cm, sizeof(cm));
	refused(body.p, body.n, KVS_ECORRUPT, "varint overflows 64 bits");
	/* 2^64 - 1 is a varint, so is taken (with a valid metadata) */
	pbe_str(&meta, 1, "x");
	pbe_msg(&good, 1, &meta);
	pbe_raw(&good, ok, sizeof(ok));
	pbe_free(&body);
	body_with_cm(&body, good.p, good.n);
	cr_expect_eq(kvs__kube_proto_object(&o, body.p, body.n, 0, "t"), 0, "%s", kvs_error_last());
	cr_expect(o && o->immutable == 1);
	kvs_object_free(o);
	pbe_free(&body);
	pbe_free(&good);
	pbe_free(&meta);
}

Test(kubeproto, length_beyond_the_message_is_refused)
{
	uint8_t cm[] = { 1 << 3 | 2, 0x7f, 0x0a, 0x01, 'x' }; /* metadata says 127 bytes */
	pbenc body = { 0 };

	body_with_cm(&body, cm, sizeof(cm));
	refused(body.p, body.n, KVS_ECORRUPT, "length 127 beyond the end of the message");
	pbe_free(&body);
	/* a huge length (2^63) must not wrap a pointer */
	uint8_t cm2[] = { 1 << 3 | 2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
	body_with_cm(&body, cm2, sizeof(cm2));
	refused(body.p, body.n, KVS_ECORRUPT, "beyond the end of the message");
	pbe_free(&body);
}

Test(kubeproto, known_field_of_the_wrong_wire_type_is_refused)
{
	pbenc extra = { 0 }, body = { 0 };

	pbe_uint(&extra, 6, 42); /* resourceVersion as a varint */
	body_with_meta(&body, &extra, 1);
	refused(body.p, body.n, KVS_ECORRUPT, "ObjectMeta.resourceVersion (field 6) has wire type 0");
	pbe_free(&body);
	/* immutable as bytes */
	uint8_t cm[] = { 1 << 3 | 2, 3, 0x0a, 1, 'x', 4 << 3 | 2, 0 };
	body_with_cm(&body, cm, sizeof(cm));
	refused(body.p, body.n, KVS_ECORRUPT, "ConfigMap.immutable (field 4) has wire type 2");
	pbe_free(&body);
	pbe_free(&extra);
}

Test(kubeproto, missing_magic_is_refused)
{
	pbenc body = { 0 };

	sample_body(&body, V_PLAIN);
	body.p[3] = 'x';
	refused(body.p, body.n, KVS_ECORRUPT, "magic");
	refused((const uint8_t *)"{}", 2, KVS_ECORRUPT, "magic");
	refused((const uint8_t *)"", 0, KVS_ECORRUPT, "magic");
	pbe_free(&body);
}

Test(kubeproto, other_kind_and_encoded_raw_are_refused)
{
	pbenc cm = { 0 }, body = { 0 }, tm = { 0 };

	sample_cm(&cm, V_PLAIN);
	pbe_envelope(&body, "Secret", &cm);
	refused(body.p, body.n, KVS_ECORRUPT, "kind \"Secret\" is not ConfigMap");
	pbe_free(&body);
	pbe_envelope(&body, "Status", &cm);
	refused(body.p, body.n, KVS_ECORRUPT, "kind \"Status\" is not ConfigMap");
	pbe_free(&body);
	/* no typeMeta at all */
	pbe_raw(&body, "k8s\0", 4);
	pbe_msg(&body, 2, &cm);
	refused(body.p, body.n, KVS_ECORRUPT, "is not ConfigMap");
	pbe_free(&body);
	/* raw compressed */
	pbe_envelope(&body, "ConfigMap", &cm);
	pbe_str(&body, 3, "gzip");
	refused(body.p, body.n, KVS_ECORRUPT, "contentEncoding \"gzip\"");
	pbe_free(&body);
	/* raw of another serialization */
	pbe_envelope(&body, "ConfigMap", &cm);
	pbe_str(&body, 4, "application/json");
	refused(body.p, body.n, KVS_ECORRUPT, "contentType \"application/json\"");
	pbe_free(&body);
	/* empty ones are what the Go encoder writes: taken */
	kvs_object *o = NULL;
	pbe_envelope(&body, "ConfigMap", &cm);
	pbe_str(&body, 3, "");
	pbe_str(&body, 4, "");
	cr_expect_eq(kvs__kube_proto_object(&o, body.p, body.n, 0, "t"), 0, "%s", kvs_error_last());
	kvs_object_free(o);
	pbe_free(&body);
	pbe_free(&cm);
	pbe_free(&tm);
}

/* The checks the JSON reader makes, with its words. */
Test(kubeproto, object_checks_are_the_json_readers)
{
	pbenc extra = { 0 }, body = { 0 }, cm = { 0 }, meta = { 0 };
	char longname[300], longrv[KVS_VER_MAX + 8];

	body_with_meta(&body, NULL, 0);
	refused(body.p, body.n, KVS_ECORRUPT, "metadata.name missing");
	pbe_free(&body);

	memset(longname, 'n', 254);
	longname[254] = '\0';
	pbe_str(&extra, 1, longname);
	body_with_meta(&body, &extra, 0);
	refused(body.p, body.n, KVS_ECORRUPT, "metadata.name longer than 253 characters");
	pbe_free(&body);
	pbe_free(&extra);

	memset(longrv, '7', KVS_VER_MAX);
	longrv[KVS_VER_MAX] = '\0';
	pbe_str(&extra, 6, longrv);
	body_with_meta(&body, &extra, 1);
	refused(body.p, body.n, KVS_ECORRUPT, "metadata.resourceVersion longer than");
	pbe_free(&body);
	pbe_free(&extra);

	pbe_time(&extra, 8, -5, 0);
	body_with_meta(&body, &extra, 1);
	refused(body.p, body.n, KVS_ECORRUPT, "metadata.creationTimestamp");
	pbe_free(&body);
	pbe_free(&extra);

	pbe_bytes(&extra, 1, "a\0b", 3);
	body_with_meta(&body, &extra, 0);
	refused(body.p, body.n, KVS_ECORRUPT, "ObjectMeta.name holds a NUL byte");
	pbe_free(&body);
	pbe_free(&extra);

	/* no metadata */
	pbe_uint(&cm, 4, 1);
	body_with_cm(&body, cm.p, cm.n);
	refused(body.p, body.n, KVS_ECORRUPT, "metadata missing");
	pbe_free(&body);
	pbe_free(&cm);

	/* a binaryData and a data key that a ConfigMap cannot have */
	for (unsigned num = 2; num <= 3; num++) {
		pbe_str(&meta, 1, "x");
		pbe_msg(&cm, 1, &meta);
		pbe_entry(&cm, num, "a/b", "v", 1);
		body_with_cm(&body, cm.p, cm.n);
		refused(body.p, body.n, KVS_ECORRUPT,
		        num == 3 ? "binaryData entry \"a/b\" is not a string under a valid key"
		                 : "data entry \"a/b\" is not a string under a valid key");
		pbe_free(&body);
		pbe_free(&cm);
		pbe_free(&meta);
	}
}

/* Many tiny entries: refused at the cap that bounds the JSON reader's
 * values, not turned into ~50 bytes of allocations per 7 bytes of body. */
Test(kubeproto, entries_are_capped_as_json_values_are)
{
	pbenc cm = { 0 }, meta = { 0 }, body = { 0 };
	size_t cap = kvs__json_max_values(KVS__KUBE_MAX_OBJECT);
	char k[16];

	pbe_str(&meta, 1, "x");
	pbe_msg(&cm, 1, &meta);
	for (size_t i = 0; i <= cap; i++) {
		snprintf(k, sizeof(k), "%zx", i);
		pbe_entry(&cm, 3, k, "", 0);
	}
	cr_assert_lt(cm.n, (size_t)KVS__KUBE_MAX_OBJECT);
	body_with_cm(&body, cm.p, cm.n);
	/* metadata only, so that the entries are counted, not added: adding
	 * grows the data array by one each time (in place with glibc, a copy
	 * each time under ASan, minutes for 87k) */
	kvs_object *o = (kvs_object *)1;
	cr_expect_eq(kvs__kube_proto_object(&o, body.p, body.n, KVS__KJ_META_ONLY, "t"), KVS_EIO,
	             "%s", kvs_error_last());
	cr_expect_null(o);
	cr_expect(strstr(kvs_error_last(), "map entries"), "%s", kvs_error_last());
	pbe_free(&body);
	pbe_free(&cm);
	pbe_free(&meta);
}

/* Labels and annotations are capped on both wires (each insert looks its
 * key up among the others: 87k of them took 23 s); the cap itself passes. */
Test(kubeproto, labels_and_annotations_are_capped_on_both_wires)
{
	for (unsigned n = KVS__KUBE_MAX_META_KV; n <= KVS__KUBE_MAX_META_KV + 1; n++) {
		pbenc extra = { 0 }, body = { 0 };
		char *js = malloc((size_t)n * 32 + 64), k[16];
		size_t off = 0;
		kvs_object *o = NULL;
		int want = n > KVS__KUBE_MAX_META_KV ? KVS_EIO : 0;

		cr_assert_not_null(js);
		off += (size_t)sprintf(js, "{\"metadata\":{\"name\":\"x\",\"labels\":{");
		for (unsigned i = 0; i < n; i++) {
			int label = i < n / 2;

			snprintf(k, sizeof(k), "l%x", i);
			pbe_entry(&extra, label ? 11 : 12, k, "v", 1);
			if (i == n / 2)
				off += (size_t)sprintf(js + off, "},\"annotations\":{");
			off += (size_t)sprintf(js + off, "%s\"%s\":\"v\"",
			                       i == 0 || i == n / 2 ? "" : ",", k);
		}
		sprintf(js + off, "}}}");
		body_with_meta(&body, &extra, 1);
		cr_expect_eq(kvs__kube_proto_object(&o, body.p, body.n, 0, "t"), want, "%u: %s", n,
		             kvs_error_last());
		if (want)
			cr_expect(strstr(kvs_error_last(), "labels and annotations"), "%s",
			          kvs_error_last());
		kvs_object_free(o);
		o = NULL;
		cr_expect_eq(kvs__kube_object_parse(&o, js, strlen(js), 0, "t"), want, "json %u: %s", n,
		             kvs_error_last());
		kvs_object_free(o);
		free(js);
		pbe_free(&body);
		pbe_free(&extra);
	}
}

Test(kubeproto, body_over_the_object_cap_is_refused_unread)
{
	kvs_object *o = NULL;
	static uint8_t big[KVS__KUBE_MAX_OBJECT + 1];

	cr_expect_eq(kvs__kube_proto_object(&o, big, sizeof(big), 0, "t"), KVS_EIO);
	cr_expect(strstr(kvs_error_last(), "over the"), "%s", kvs_error_last());
}

/* ------------------------------------------------------------------------ */
/* Status                                                                   */

static void status_body(pbenc *body, int code, const char *reason, const char *message,
                        const char *kind, const char *name, int retry, const char *cause)
{
	pbenc st = { 0 }, d = { 0 }, lm = { 0 }, c = { 0 };

	pbe_msg(&st, 1, &lm);
	pbe_str(&st, 2, "Failure");
	pbe_str(&st, 3, message);
	pbe_str(&st, 4, reason);
	pbe_str(&d, 1, name);
	pbe_str(&d, 2, "");
	pbe_str(&d, 3, kind);
	if (cause) {
		pbe_str(&c, 1, cause);
		pbe_str(&c, 2, "must have at most 1048576 bytes");
		pbe_str(&c, 3, "data");
		pbe_msg(&d, 4, &c);
	}
	pbe_uint(&d, 5, (uint64_t)(int64_t)retry);
	pbe_str(&d, 6, "");
	pbe_msg(&st, 5, &d);
	pbe_uint(&st, 6, (uint64_t)(int64_t)code);
	pbe_envelope(body, "Status", &st);
	pbe_free(&st);
	pbe_free(&d);
	pbe_free(&lm);
	pbe_free(&c);
}

Test(kubeproto, status_404_gives_code_404_reason_notfound)
{
	pbenc body = { 0 };
	kvs__kube_status st, sj;
	const char *js = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
	                 "\"message\":\"configmaps \\\"x\\\" not found\",\"reason\":\"NotFound\","
	                 "\"details\":{\"name\":\"x\",\"kind\":\"configmaps\"},\"code\":404}";

	status_body(&body, 404, "NotFound", "configmaps \"x\" not found", "configmaps", "x", 0, NULL);
	cr_assert_eq(kvs__kube_proto_status(&st, body.p, body.n), 0, "%s", kvs_error_last());
	cr_expect_eq(st.code, 404);
	cr_expect_str_eq(st.reason, "NotFound");
	cr_expect_str_eq(st.message, "configmaps \"x\" not found");
	cr_expect_str_eq(st.details_kind, "configmaps");
	cr_expect_str_eq(st.details_name, "x");
	cr_expect_eq(kvs__kube_status_code(&st, 404), KVS_ENOTFOUND);
	kvs__kube_status_parse(&sj, js, strlen(js));
	cr_expect_eq(memcmp(&st, &sj, sizeof(st)), 0, "the JSON Status of the same answer differs");
	/* and through the dispatch of an error answer */
	kvs__kube_status_decode(&sj, "application/vnd.kubernetes.protobuf", (const char *)body.p,
	                        body.n);
	cr_expect_eq(memcmp(&st, &sj, sizeof(st)), 0);
	pbe_free(&body);
}

Test(kubeproto, status_retry_after_and_too_long_cause_are_read)
{
	pbenc body = { 0 };
	kvs__kube_status st;

	status_body(&body, 429, "TooManyRequests", "slow down", "", "", 7, NULL);
	cr_assert_eq(kvs__kube_proto_status(&st, body.p, body.n), 0, "%s", kvs_error_last());
	cr_expect_eq(st.code, 429);
	cr_expect_eq(st.retry_after_s, 7);
	cr_expect_eq(kvs__kube_status_code(&st, 429), KVS_ETIMEOUT);
	pbe_free(&body);

	status_body(&body, 422, "Invalid", "ConfigMap \"x\" is invalid", "configmaps", "x", 0,
	            "FieldValueTooLong");
	cr_assert_eq(kvs__kube_proto_status(&st, body.p, body.n), 0, "%s", kvs_error_last());
	cr_expect_eq(st.too_long, 1);
	cr_expect_eq(kvs__kube_status_code(&st, 422), KVS_ETOOBIG);
	pbe_free(&body);

	/* a negative code (an int32 as a 10-byte varint) is ignored, as in JSON */
	status_body(&body, -1, "Conflict", "m", "configmaps", "x", -3, NULL);
	cr_assert_eq(kvs__kube_proto_status(&st, body.p, body.n), 0, "%s", kvs_error_last());
	cr_expect_eq(st.code, 0);
	cr_expect_eq(st.retry_after_s, 0);
	cr_expect_eq(kvs__kube_status_code(&st, 409), KVS_ECONFLICT);
	pbe_free(&body);
}

Test(kubeproto, status_of_another_kind_or_malformed_is_refused)
{
	pbenc body = { 0 };
	kvs__kube_status st;

	sample_body(&body, V_PLAIN);
	cr_expect_eq(kvs__kube_proto_status(&st, body.p, body.n), KVS_ECORRUPT);
	cr_expect(strstr(kvs_error_last(), "is not Status"), "%s", kvs_error_last());
	cr_expect_eq(st.code, 0);
	pbe_free(&body);
	status_body(&body, 404, "NotFound", "m", "configmaps", "x", 0, NULL);
	cr_expect_eq(kvs__kube_proto_status(&st, body.p, body.n - 1), KVS_ECORRUPT);
	pbe_free(&body);
}

/* ------------------------------------------------------------------------ */
/* dispatch on the Content-Type                                             */

Test(kubeproto, content_type_picks_the_reader)
{
	cr_expect_eq(kvs__kube_wire_of("application/vnd.kubernetes.protobuf"), KVS__WIRE_PROTOBUF);
	cr_expect_eq(kvs__kube_wire_of("Application/Vnd.Kubernetes.Protobuf; charset=x"),
	             KVS__WIRE_PROTOBUF);
	cr_expect_eq(kvs__kube_wire_of("application/json"), KVS__WIRE_JSON);
	cr_expect_eq(kvs__kube_wire_of("application/json;charset=utf-8"), KVS__WIRE_JSON);
	cr_expect_eq(kvs__kube_wire_of(
	                 "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"),
	             KVS__WIRE_JSON);
	cr_expect_eq(kvs__kube_wire_of(""), KVS__WIRE_JSON);
	cr_expect_eq(kvs__kube_wire_of(NULL), KVS__WIRE_JSON);
	cr_expect_eq(kvs__kube_wire_of("text/html"), KVS__WIRE_OTHER);
	cr_expect_eq(kvs__kube_wire_of("application/jsonx"), KVS__WIRE_OTHER);
	cr_expect_eq(kvs__kube_wire_of("application/vnd.kubernetes.protobuf;stream=watch"),
	             KVS__WIRE_PROTOBUF);
}

Test(kubeproto, decode_dispatches_and_names_an_unknown_content_type)
{
	pbenc body = { 0 };
	char *js = sample_json();
	kvs_object *a = NULL, *b = NULL;

	sample_body(&body, V_PLAIN);
	cr_assert_eq(kvs__kube_object_decode(&a, "application/vnd.kubernetes.protobuf",
	                                     (const char *)body.p, body.n, 0, "t"),
	             0, "%s", kvs_error_last());
	cr_assert_eq(kvs__kube_object_decode(&b, "application/json", js, strlen(js), 0, "t"), 0,
	             "%s", kvs_error_last());
	same_object(a, b);
	kvs_object_free(a);
	kvs_object_free(b);
	/* the protobuf body under a JSON type, and the other way round */
	cr_expect_eq(kvs__kube_object_decode(&a, "application/json", (const char *)body.p, body.n,
	                                     0, "t"),
	             KVS_ECORRUPT);
	cr_expect_eq(kvs__kube_object_decode(&a, "application/vnd.kubernetes.protobuf", js,
	                                     strlen(js), 0, "t"),
	             KVS_ECORRUPT);
	cr_expect(strstr(kvs_error_last(), "magic"), "%s", kvs_error_last());
	cr_expect_eq(kvs__kube_object_decode(&a, "text/html; charset=utf-8", js, strlen(js), 0,
	                                     "get configmap ns/x"),
	             KVS_ECORRUPT);
	cr_expect(strstr(kvs_error_last(), "Content-Type \"text/html; charset=utf-8\""), "%s",
	          kvs_error_last());
	cr_expect(strstr(kvs_error_last(), "get configmap ns/x"), "%s", kvs_error_last());
	cr_expect_null(a);
	free(js);
	pbe_free(&body);
}

/* ------------------------------------------------------------------------ */
/* request bodies                                                           */

/* A write body in protobuf carries what its JSON twin carries: both read
 * back give the same object, for a segment-sized object of several chunks
 * (lengths whose varints take 1, 2 and 3 bytes) with an update's rv, and
 * the protobuf body is its exact size, a quarter smaller. */
Test(kubeproto, write_body_carries_what_the_json_body_carries)
{
	static const size_t lens[] = { 0, 1, 127, 128, 16383, 16384, 300000, 700000 };
	kvs_object *o = kvs_object_new("seg-abc"), *fj = NULL, *fp = NULL;
	char *js = NULL, *pb = NULL;
	size_t jn = 0, pn = 0, data = 0;

	cr_assert_not_null(o);
	cr_assert_eq(kvs_object_set_label(o, "kvsplit.io/kind", "segment"), 0);
	cr_assert_eq(kvs_object_set_annotation(o, "a", ""), 0);
	cr_assert_eq(kvs_object_set_annotation(o, KVS__KUBE_DATA_BYTES, "999"), 0);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint8_t *b = malloc(lens[i] + 1);
		char key[16];

		cr_assert_not_null(b);
		for (size_t j = 0; j < lens[i]; j++)
			b[j] = (uint8_t)(j * 31 + i);
		snprintf(key, sizeof(key), "c%zu", i);
		cr_assert_eq(kvs_object_add_data(o, key, b, lens[i]), 0);
		data += lens[i];
		free(b);
	}
	o->immutable = 1;
	cr_assert_eq(kvs_object_set_rv(o, "123"), 0);
	for (int with_rv = 0; with_rv < 2; with_rv++) {
		cr_assert_eq(kvs__kube_body_object(&js, &jn, o, "ns1", with_rv), 0, "%s",
		             kvs_error_last());
		cr_assert_eq(kvs__kube_proto_body_object(&pb, &pn, o, "ns1", with_rv), 0, "%s",
		             kvs_error_last());
		cr_assert_eq(kvs__kube_object_parse(&fj, js, jn, 0, "json"), 0, "%s", kvs_error_last());
		cr_assert_eq(kvs__kube_proto_object(&fp, (const uint8_t *)pb, pn, 0, "proto"), 0, "%s",
		             kvs_error_last());
		same_object(fj, fp);
		cr_expect_str_eq(fp->resource_version, with_rv ? "123" : "");
		cr_expect_eq(fp->data_bytes, data);
		cr_expect_eq(fp->nannotations, 1, "data-bytes hidden, given once");
		cr_expect(pn < data + 400 && pn * 4 < jn * 3 + 1000, "%zu protobuf vs %zu JSON bytes",
		          pn, jn);
		kvs_object_free(fj);
		kvs_object_free(fp);
		free(js);
		free(pb);
	}
	kvs_object_free(o);
}

/* A data key the JSON body refuses, the protobuf body refuses alike. */
Test(kubeproto, write_body_refuses_a_bad_data_key)
{
	kvs_object *o = kvs_object_new("x");
	char *pb = NULL;
	size_t pn = 0;

	cr_assert_not_null(o);
	cr_assert_eq(kvs_object_add_data(o, "a/b", "x", 1), 0);
	cr_expect_eq(kvs__kube_proto_body_object(&pb, &pn, o, "ns1", 0), KVS_EINVAL);
	cr_expect(strstr(kvs_error_last(), "a/b"), "%s", kvs_error_last());
	cr_expect_null(pb);
	kvs_object_free(o);
}
