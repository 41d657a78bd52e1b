/*
 * test_map.c — suite "map": key-split maps. Behaviour through the public
 * API (batches, reads, iteration, JSON, compaction, expectations), hostile
 * run tables, and a randomised model test: thousands of random batches
 * with compactions, blind races between two writers and crashes at backend
 * calls interleaved, checked against an in-memory reference map after
 * every step, with a reader checking at every backend call of the writer
 * that it never sees half a batch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <cjson/cJSON.h>

#include "support/fixture.h"
#include "codec.h"
#include "internal.h"
#include "maprun.h"
#include "mapjson.h"

static kvs_store *open_on(kvs_backend *b)
{
	kvs_store *s = NULL;
	cr_assert_eq(kvs_open(&s, b, NULL), 0, "open: %s", kvs_error_last());
	return s;
}

static kvs_store *open_mem(kvs_backend **bout)
{
	kvs_backend *b = NULL;
	cr_assert_eq(kvs_backend_mem(&b, NULL), 0);
	if (bout)
		*bout = b;
	return open_on(b);
}

static void put1(kvs_store *s, const char *key, const char *f, const char *v)
{
	kvs_map_batch *b;
	cr_assert_eq(kvs_map_batch_new(&b), 0);
	cr_assert_eq(kvs_map_batch_put(b, f, strlen(f), v, strlen(v)), 0);
	cr_assert_eq(kvs_map_commit(NULL, s, key, b, NULL), 0, "commit: %s", kvs_error_last());
	kvs_map_batch_free(b);
}

static void expect_field(kvs_store *s, const char *key, const char *f, const char *v)
{
	void *out = NULL;
	size_t n = 0;
	int rc = kvs_map_get(&out, &n, NULL, NULL, s, key, f, strlen(f), NULL);
	if (!v) {
		cr_assert_eq(rc, KVS_ENOTFOUND, "field %s: rc %d", f, rc);
		return;
	}
	cr_assert_eq(rc, 0, "get %s: %s", f, kvs_error_last());
	cr_assert_eq(n, strlen(v), "field %s: %zu bytes", f, n);
	cr_assert(memcmp(out, v, n) == 0, "field %s: wrong value", f);
	kvs_free(out);
}

Test(map, batch_get_delete_and_iterate_in_order)
{
	kvs_store *s = open_mem(NULL);
	kvs_map_batch *b;
	kvs_map_iter *it;
	kvs_map_entry e;
	const char *want[] = { "a", "b", "d" };
	uint64_t n;
	size_t i = 0;

	cr_assert_eq(kvs_map_batch_new(&b), 0);
	kvs_map_batch_put(b, "d", 1, "4", 1);
	kvs_map_batch_put(b, "b", 1, "2", 1);
	kvs_map_batch_put(b, "a", 1, "x", 1);
	kvs_map_batch_put(b, "a", 1, "1", 1);   /* later op wins */
	kvs_map_batch_put(b, "c", 1, "3", 1);
	cr_assert_eq(kvs_map_commit(NULL, s, "m", b, NULL), 0, "%s", kvs_error_last());
	kvs_map_batch_free(b);
	cr_assert_eq(kvs_map_batch_new(&b), 0);
	kvs_map_batch_delete(b, "c", 1);
	cr_assert_eq(kvs_map_commit(NULL, s, "m", b, NULL), 0, "%s", kvs_error_last());
	kvs_map_batch_free(b);

	expect_field(s, "m", "a", "1");
	expect_field(s, "m", "c", NULL);
	cr_assert_eq(kvs_map_iter_open(&it, NULL, s, "m", NULL), 0);
	while (kvs_map_iter_next(&e, it) == 0) {
		cr_assert_lt(i, 3);
		cr_assert_eq(e.field_len, 1);
		cr_assert(memcmp(e.field, want[i], 1) == 0, "entry %zu", i);
		i++;
	}
	kvs_map_iter_close(it);
	cr_assert_eq(i, 3);
	cr_assert_eq(kvs_map_count(&n, NULL, s, "m", NULL), 0);
	cr_assert_eq(n, 3);
	/* a map is not a plain value */
	{
		void *v;
		size_t len;
		cr_assert_eq(kvs_get(&v, &len, NULL, s, "m", NULL), KVS_EINVAL);
	}
	kvs_close(s);
}

Test(map, conditional_batch_and_field_expectations)
{
	kvs_store *s = open_mem(NULL);
	kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
	kvs_map_batch *b;
	kvs_ver v1, v2;
	uint64_t fver = 0;
	void *out;
	size_t n;

	cr_assert_eq(kvs_map_batch_new(&b), 0);
	kvs_map_batch_put(b, "x", 1, "1", 1);
	wo.expect_version = "";
	cr_assert_eq(kvs_map_commit(&v1, s, "m", b, &wo), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_map_commit(NULL, s, "m", b, &wo), KVS_EEXISTS);
	wo.expect_version = v1.str;
	cr_assert_eq(kvs_map_commit(&v2, s, "m", b, &wo), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_map_commit(NULL, s, "m", b, &wo), KVS_ECONFLICT);
	kvs_map_batch_free(b);

	cr_assert_eq(kvs_map_get(&out, &n, &fver, NULL, s, "m", "x", 1, NULL), 0);
	kvs_free(out);
	cr_assert_gt(fver, 0);
	/* expectation on the field's version */
	cr_assert_eq(kvs_map_batch_new(&b), 0);
	kvs_map_batch_put(b, "x", 1, "2", 1);
	kvs_map_batch_expect(b, "x", 1, fver + 100);
	cr_assert_eq(kvs_map_commit(NULL, s, "m", b, NULL), KVS_ECONFLICT);
	kvs_map_batch_free(b);
	expect_field(s, "m", "x", "1");
	cr_assert_eq(kvs_map_batch_new(&b), 0);
	kvs_map_batch_put(b, "x", 1, "2", 1);
	kvs_map_batch_expect(b, "x", 1, fver);
	kvs_map_batch_expect(b, "y", 1, 0);    /* absent */
	cr_assert_eq(kvs_map_commit(NULL, s, "m", b, NULL), 0, "%s", kvs_error_last());
	kvs_map_batch_free(b);
	expect_field(s, "m", "x", "2");
	cr_assert_eq(kvs_map_batch_new(&b), 0);
	kvs_map_batch_put(b, "z", 1, "2", 1);
	kvs_map_batch_expect(b, "x", 1, 0);    /* exists: fails */
	cr_assert_eq(kvs_map_commit(NULL, s, "m", b, NULL), KVS_ECONFLICT);
	kvs_map_batch_free(b);
	expect_field(s, "m", "z", NULL);
	kvs_close(s);
}

/* Many batches with a small layout: deltas go inline, then out of line, and
 * compaction folds them into base runs in segments; every field survives. */
Test(map, compaction_keeps_every_field_and_drops_tombstones)
{
	kvs_store *s = open_mem(NULL);
	kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
	kvs_map_stat st;
	char f[32], v[64];

	kvs__store_set_map_layout(s, 512, 2048);
	wo.compact = KVS_MAP_COMPACT_NEVER;
	for (int i = 0; i < 400; i++) {
		kvs_map_batch *b;
		cr_assert_eq(kvs_map_batch_new(&b), 0);
		snprintf(f, sizeof(f), "f%05d", (i * 7919) % 1000);
		snprintf(v, sizeof(v), "value-%d", i);
		kvs_map_batch_put(b, f, strlen(f), v, strlen(v));
		if (i % 10 == 9) {
			snprintf(f, sizeof(f), "f%05d", ((i - 5) * 7919) % 1000);
			kvs_map_batch_delete(b, f, strlen(f));
		}
		wo.compact = i % 3 ? KVS_MAP_COMPACT_NEVER : KVS_MAP_COMPACT_AUTO;
		cr_assert_eq(kvs_map_commit(NULL, s, "m", b, &wo), 0, "batch %d: %s", i, kvs_error_last());
		kvs_map_batch_free(b);
	}
	wo.compact = KVS_MAP_COMPACT_FORCE;
	cr_assert_eq(kvs_map_compact(NULL, s, "m", &wo), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_map_stat_key(&st, s, "m", NULL), 0);
	cr_assert_eq(st.delta_runs, 0);
	cr_assert_gt(st.base_runs, 1, "base runs %u", st.base_runs);
	for (int i = 0; i < 400; i++) {
		int deleted = 0;
		snprintf(f, sizeof(f), "f%05d", (i * 7919) % 1000);
		for (int j = i + 1; j < 400; j++)
			if ((j * 7919) % 1000 == (i * 7919) % 1000)
				goto later;
		for (int j = i; j < 400; j++)
			if (j % 10 == 9 && ((j - 5) * 7919) % 1000 == (i * 7919) % 1000)
				deleted = 1;
		snprintf(v, sizeof(v), "value-%d", i);
		expect_field(s, "m", f, deleted ? NULL : v);
later:;
	}
	kvs_close(s);
}

/* A point read fetches only runs that cover the field: at most 2 segments
 * beyond the index with auto compaction. */
Test(map, point_read_fetches_at_most_two_segments)
{
	kvs_backend *be;
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_map_read_options ro = KVS_MAP_READ_OPTIONS_INIT;
	kvs_map_stats st;
	kvs_store *s;
	char f[32], v[200];

	o.cache_bytes = UINT64_MAX;   /* off: count every fetch */
	cr_assert_eq(kvs_backend_mem(&be, NULL), 0);
	cr_assert_eq(kvs_open(&s, be, &o), 0);
	kvs__store_set_map_layout(s, 1024, 4096);
	for (int i = 0; i < 60; i++) {
		kvs_map_batch *b;
		cr_assert_eq(kvs_map_batch_new(&b), 0);
		for (int k = 0; k < 10; k++) {
			snprintf(f, sizeof(f), "node-%04d", (i * 37 + k * 101) % 2000);
			memset(v, 'a' + k, sizeof(v));
			kvs_map_batch_put(b, f, strlen(f), v, sizeof(v));
		}
		cr_assert_eq(kvs_map_commit(NULL, s, "m", b, NULL), 0, "%s", kvs_error_last());
		kvs_map_batch_free(b);
		for (int k = 0; k < 10; k++) {
			void *out;
			size_t n;
			memset(&st, 0, sizeof(st));
			ro.stats = &st;
			snprintf(f, sizeof(f), "node-%04d", (i * 13 + k * 7) % 2000);
			kvs_map_get(&out, &n, NULL, NULL, s, "m", f, strlen(f), &ro);
			kvs_free(out);
			cr_assert_leq(st.segments_read, 2, "read of %s fetched %llu segments", f,
			              (unsigned long long)st.segments_read);
		}
	}
	kvs_close(s);
}

static int sink(void *ctx, const void *buf, size_t len)
{
	cJSON *j = ctx;
	char **acc = (char **)j;
	size_t have = *acc ? strlen(*acc) : 0;
	char *n = realloc(*acc, have + len + 1);
	cr_assert(n);
	memcpy(n + have, buf, len);
	n[have + len] = 0;
	*acc = n;
	return 0;
}

Test(map, json_import_export_patch_round_trip)
{
	kvs_store *s = open_mem(NULL);
	const char *doc = "{\"b\": {\"phase\": \"Running\", \"n\": 12345678901234567890},"
	                  " \"a\": [1, 2.5, \"x\\u00e9\"], \"c\": null, \"d\": \"s\"}";
	const char *patch = "{\"d\": null, \"e\": true, \"a\": 7}";
	char *got = NULL;
	cJSON *want, *have;

	kvs__store_set_map_layout(s, 256, 0);
	cr_assert_eq(kvs_map_import_json(NULL, s, "wf", doc, strlen(doc), NULL), 0, "%s",
	             kvs_error_last());
	cr_assert_eq(kvs_map_export_json(NULL, s, "wf", sink, &got, NULL), 0, "%s", kvs_error_last());
	want = cJSON_Parse(doc);
	have = cJSON_Parse(got);
	cr_assert(have, "export is not JSON: %s", got);
	cr_assert(cJSON_Compare(want, have, 1), "export %s", got);
	cr_assert(strstr(got, "12345678901234567890"), "big integer changed: %s", got);
	cJSON_Delete(want);
	cJSON_Delete(have);
	free(got);
	got = NULL;
	cr_assert_eq(kvs_map_patch_json(NULL, s, "wf", patch, strlen(patch), NULL), 0, "%s",
	             kvs_error_last());
	cr_assert_eq(kvs_map_export_json(NULL, s, "wf", sink, &got, NULL), 0);
	want = cJSON_Parse("{\"a\":7,\"b\":{\"phase\":\"Running\",\"n\":12345678901234567890},"
	                   "\"c\":null,\"e\":true}");
	have = cJSON_Parse(got);
	cr_assert(cJSON_Compare(want, have, 1), "after patch: %s", got);
	cJSON_Delete(want);
	cJSON_Delete(have);
	free(got);
	/* hostile JSON changes nothing */
	cr_assert_eq(kvs_map_patch_json(NULL, s, "wf", "{\"a\": 1,", 8, NULL), KVS_EINVAL);
	cr_assert_eq(kvs_map_patch_json(NULL, s, "wf", "[1]", 3, NULL), KVS_EINVAL);
	expect_field(s, "wf", "a", "7");
	kvs_close(s);
}

/* An object of `n` members of about 300 bytes each (malloc'd). */
static char *gen_object(size_t *len, int n, int changed)
{
	size_t cap = (size_t)n * 400 + 16, o = 0;
	char *d = malloc(cap);
	cr_assert(d);
	d[o++] = '{';
	for (int i = 0; i < n; i++)
		o += (size_t)snprintf(d + o, cap - o, "%s\"node-%05d\": {\"phase\": \"%s\", "
		                      "\"pad\": \"%0240d\"}", i ? ", " : "", i,
		                      i == changed ? "Failed" : "Succeeded", i);
	d[o++] = '}';
	*len = o;
	return d;
}

Test(map, reimport_writes_only_the_runs_that_changed)
{
	kvs_store *s = open_mem(NULL);
	kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
	kvs_map_stats st;
	kvs_map_stat ms;
	uint64_t first;
	size_t len;
	char *doc = gen_object(&len, 3000, -1), *doc2;

	wo.stats = &st;
	memset(&st, 0, sizeof(st));
	cr_assert_eq(kvs_map_import_json(NULL, s, "wf", doc, len, &wo), 0, "%s", kvs_error_last());
	first = st.bytes_written;
	cr_assert_gt(st.segments_written, 0);
	cr_assert_eq(kvs_map_stat_key(&ms, s, "wf", NULL), 0);
	cr_assert_gt(ms.base_runs, 4, "want several runs, got %u", (unsigned)ms.base_runs);
	/* the same JSON again: no segment is written, only the index */
	memset(&st, 0, sizeof(st));
	cr_assert_eq(kvs_map_import_json(NULL, s, "wf", doc, len, &wo), 0, "%s", kvs_error_last());
	cr_assert_eq(st.segments_written, 0, "re-import wrote %llu segments",
	             (unsigned long long)st.segments_written);
	cr_assert_lt(st.bytes_written, first / 20, "re-import sent %llu of %llu bytes",
	             (unsigned long long)st.bytes_written, (unsigned long long)first);
	/* one member changed: one run is written again */
	doc2 = gen_object(&len, 3000, 1500);
	memset(&st, 0, sizeof(st));
	cr_assert_eq(kvs_map_import_json(NULL, s, "wf", doc2, len, &wo), 0, "%s", kvs_error_last());
	cr_assert_eq(st.segments_written, 1);
	cr_assert_lt(st.bytes_written, first / 4);
	kvs_close(s);
	free(doc);
	free(doc2);
}

/* kvs__mrec_len is the size msgpack-c's packer writes, at every header
 * boundary of names, values and versions (import cuts runs by it). */
Test(map, record_length_is_what_the_builder_writes)
{
	static const uint32_t lens[] = { 0, 1, 30, 31, 32, 33, 127, 128, 254, 255, 256, 257,
	                                 1024, 65534, 65535, 65536, 65537, 200000 };
	static const uint64_t vers[] = { 0, 1, 127, 128, 255, 256, 65535, 65536, UINT32_MAX,
	                                 (uint64_t)UINT32_MAX + 1 };
	static const kvs__mval types[] = { KVS__MV_TOMB, KVS__MV_BIN, KVS__MV_JSON };
	uint8_t *buf = calloc(1, 200000);
	kvs__mbuild mb;

	cr_assert(buf);
	kvs__mbuild_init(&mb);
	for (size_t a = 0; a < sizeof(lens) / sizeof(lens[0]); a++) {
		for (size_t b = 0; b < sizeof(lens) / sizeof(lens[0]); b++) {
			for (size_t v = 0; v < sizeof(vers) / sizeof(vers[0]); v++) {
				for (size_t t = 0; t < 3; t++) {
					kvs__ment e = { buf, lens[a] % 1025, buf, lens[b], vers[v], types[t] };
					if (e.nlen == 0)
						e.nlen = 1;
					kvs__mbuild_reset(&mb);
					cr_assert_eq(kvs__mbuild_add(&mb, &e), 0);
					cr_assert_eq(kvs__mrec_len(&e), mb.sb.size,
					             "name %u value %u version %llu type %d: %zu, built %zu",
					             e.nlen, e.vlen, (unsigned long long)e.ver, (int)e.type,
					             kvs__mrec_len(&e), mb.sb.size);
				}
			}
		}
	}
	kvs__mbuild_free(&mb);
	free(buf);
}

/*
 * An import cuts its runs where adding records one by one would (cut
 * before the record that takes the run past the target): the run count and
 * raw bytes of the map equal those of that reference, with names and
 * values around msgpack's header sizes.
 */
Test(map, import_cuts_runs_where_the_record_builder_would)
{
	kvs_store *s = open_mem(NULL);
	kvs_map_stat ms;
	size_t cap = 3000 * 400, o = 0;
	char *doc = malloc(cap);
	kvs__mbuild mb;
	uint64_t runs = 0, raw = 0;
	uint8_t addrs[200][16];
	char name[64], val[400];

	cr_assert(doc);
	kvs__store_set_map_layout(s, 4096, 0);
	doc[o++] = '{';
	kvs__mbuild_init(&mb);
	for (int i = 0; i < 3000; i++) {
		/* names sort in i's order; value text lengths sweep 1..300 */
		int nl = snprintf(name, sizeof(name), "n%05d%.*s", i, (i * 7) % 40,
		                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		int vl = 1 + (i * 37) % 300;
		kvs__ment e;
		memset(val, '7', (size_t)vl);
		o += (size_t)snprintf(doc + o, cap - o, "%s\"%s\":%.*s", i ? "," : "", name, vl, val);
		e.name = (const uint8_t *)name;
		e.nlen = (uint32_t)nl;
		e.val = (const uint8_t *)val;
		e.vlen = (uint32_t)vl;
		e.ver = 0;
		e.type = KVS__MV_JSON;
		if (mb.n && mb.sb.size + kvs__mrec_size(&e) > 4096) {
			cr_assert_lt(runs, 200);
			kvs__addr_of(addrs[runs++], (const uint8_t *)mb.sb.data, mb.sb.size);
			raw += mb.sb.size;
			kvs__mbuild_reset(&mb);
		}
		cr_assert_eq(kvs__mbuild_add(&mb, &e), 0);
	}
	kvs__addr_of(addrs[runs++], (const uint8_t *)mb.sb.data, mb.sb.size);
	raw += mb.sb.size;
	kvs__mbuild_free(&mb);
	doc[o++] = '}';
	cr_assert_eq(kvs_map_import_json(NULL, s, "m", doc, o, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_map_stat_key(&ms, s, "m", NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(ms.base_runs, runs, "import made %u runs, the builder %llu", ms.base_runs,
	             (unsigned long long)runs);
	cr_assert_eq(ms.raw_bytes, raw);
	cr_assert_eq(ms.base_entries, 3000);
	/* and the same runs, by address, in order */
	{
		kvs_object *idx = NULL;
		char iname[KVS__NAME_BUF];
		kvs__manifest m;
		kvs__mapidx ix;
		const kvs_blob *b;
		kvs__index_name(iname, s->name, "m", 1);
		cr_assert_eq(s->be->ops->get(s->be, &idx, iname), 0);
		b = kvs_object_data(idx, KVS__INDEX_DATA_KEY);
		cr_assert_eq(kvs__manifest_decode(&m, b->data, b->len, "t"), 0);
		cr_assert_eq(kvs__mapidx_read(&ix, s, &m, "t", NULL), 0, "%s", kvs_error_last());
		cr_assert_eq(ix.nruns, runs);
		for (uint32_t i = 0; i < ix.nruns; i++)
			cr_assert(memcmp(ix.runs[i].addr, addrs[i], 16) == 0, "run %u differs", i);
		kvs__mapidx_clear(&ix);
		kvs__manifest_clear(&m);
		kvs_object_free(idx);
	}
	free(doc);
	kvs_close(s);
}

Test(map, json_validator_accepts_rfc8259_only)
{
	static const char *good[] = {
		"0", "-0", "1.5e+10", "-12.0E-3", "\"a\\u00e9\\ud83d\\ude00\"", "[]", "{}",
		"[1, [2, {\"a\": [true, false, null]}]]", " \t\r\n{\"k\" : \"v\"} ",
	};
	static const char *bad[] = {
		"01", "1.", ".5", "+1", "1e", "-", "tru", "nul", "\"\\ud83d\"", "\"\\ude00\"",
		"\"\\x\"", "\"a\tb\"", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{1:2}", "[1 2]",
		"\"unterminated", "[", "\f1",
	};
	char deep[2100];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const char *e = good[i] + strlen(good[i]);
		const char *p = good[i];
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		const char *end = kvs__json_skip(p, e);
		cr_assert(end, "refused %s", good[i]);
		cJSON *c = cJSON_ParseWithLength(good[i], strlen(good[i]));
		cr_assert(c, "cJSON refuses %s", good[i]);
		cJSON_Delete(c);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *e = bad[i] + strlen(bad[i]);
		const char *end = kvs__json_skip(bad[i], e);
		cr_assert(!end || end != e, "accepted %s", bad[i]);
	}
	/* nesting is capped at cJSON's limit */
	memset(deep, '[', 1000);
	memset(deep + 1000, ']', 1000);
	cr_assert_not_null(kvs__json_skip(deep, deep + 2000));
	memset(deep, '[', 1001);
	memset(deep + 1001, ']', 1001);
	cr_assert_null(kvs__json_skip(deep, deep + 2002));
}

/* ---- hostile run tables --------------------------------------------------- */

static void encode_table(kvs__manifest *m, kvs__mapidx *ix)
{
	memset(m, 0, sizeof(*m));
	cr_assert_eq(kvs__mapidx_encode(m, ix, 1), 0, "%s", kvs_error_last());
}

Test(map, run_table_decoder_rejects_every_broken_field)
{
	kvs__mapidx ix, back;
	kvs__mbuild mb;
	kvs__manifest m;
	kvs__mrun r;
	kvs__ment e = { (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, 0, KVS__MV_BIN };

	memset(&ix, 0, sizeof(ix));
	memset(&r, 0, sizeof(r));
	kvs__mbuild_init(&mb);
	cr_assert_eq(kvs__mbuild_add(&mb, &e), 0);
	cr_assert_eq(kvs__mrun_describe(&r, (uint8_t *)mb.sb.data, mb.sb.size), 0);
	r.raw = malloc(r.raw_len);
	memcpy(r.raw, mb.sb.data, r.raw_len);
	r.flags = KVS__MRUN_INLINE;
	r.seg = KVS__MRUN_NOSEG;
	r.stored_len = r.raw_len;
	r.seq = 1;
	ix.runs = &r;
	ix.nruns = 1;
	ix.gen = 1;
	encode_table(&m, &ix);
	m.key = strdup("k");
	m.key_len = 1;
	cr_assert_eq(kvs__mapidx_decode(&back, &m, "t"), 0, "%s", kvs_error_last());
	kvs__mapidx_clear(&back);
	/* Flip every byte of the raw table in turn: never accepted as different
	 * content, never a crash. */
	{
		uint8_t *raw = malloc(m.runtab_raw);
		uint8_t *orig = m.runtab;
		uint32_t olen = m.runtab_len;
		cr_assert_eq(kvs__blob_decode(raw, m.runtab_raw, m.runtab, m.runtab_len), 0);
		for (uint32_t i = 0; i < m.runtab_raw; i++) {
			uint8_t *blob = malloc(m.runtab_raw + 1);
			int rc;
			raw[i] ^= 0x41;
			blob[0] = 0;
			memcpy(blob + 1, raw, m.runtab_raw);
			m.runtab = blob;
			m.runtab_len = m.runtab_raw + 1;
			rc = kvs__mapidx_decode(&back, &m, "t");
			cr_assert(rc == KVS_ECORRUPT || (rc == 0 && back.runs[0].seq != 1) ||
			          (rc == 0 && back.runs[0].nent == 1),
			          "byte %u: rc %d", i, rc);
			/* if accepted, the run must still verify against its address */
			if (rc == 0) {
				uint8_t a[16];
				kvs__addr_of(a, back.runs[0].raw, back.runs[0].raw_len);
				cr_assert(memcmp(a, back.runs[0].addr, 16) == 0, "byte %u", i);
			}
			kvs__mapidx_clear(&back);
			free(blob);
			raw[i] ^= 0x41;
		}
		m.runtab = orig;
		m.runtab_len = olen;
		free(raw);
	}
	kvs__manifest_clear(&m);
	kvs__mbuild_free(&mb);
	free(r.raw);
	free(r.min);
	free(r.max);
}

Test(map, hostile_records_are_rejected)
{
	kvs__mrun r;
	/* array of 3 with a declared huge bin */
	const uint8_t huge[] = { 0x93, 0xc6, 0x7f, 0xff, 0xff, 0xff, 'a' };
	/* names out of order */
	const uint8_t order[] = { 0x93, 0xc4, 1, 'b', 0, 0xc0, 0x93, 0xc4, 1, 'a', 0, 0xc0 };
	/* nested array as a value */
	const uint8_t nested[] = { 0x93, 0xc4, 1, 'a', 0, 0xdd, 0xff, 0xff, 0xff, 0xff };

	memset(&r, 0, sizeof(r));
	cr_assert_eq(kvs__mrun_describe(&r, huge, sizeof(huge)), KVS_ECORRUPT);
	cr_assert_eq(kvs__mrun_describe(&r, order, sizeof(order)), KVS_ECORRUPT);
	cr_assert_eq(kvs__mrun_describe(&r, nested, sizeof(nested)), KVS_ECORRUPT);
	kvs__mrun_clear(&r);
}

/* A v1 reader's view: a map manifest says format version 2. */
Test(map, map_manifest_is_format_version_2)
{
	kvs_store *s = open_mem(NULL);
	kvs_backend *be = s->be;
	kvs_object *idx = NULL;
	char name[KVS__NAME_BUF];
	kvs__manifest m;
	const kvs_blob *b;

	put1(s, "m", "f", "v");
	kvs__index_name(name, s->name, "m", 1);
	cr_assert_eq(be->ops->get(be, &idx, name), 0);
	b = kvs_object_data(idx, KVS__INDEX_DATA_KEY);
	cr_assert_eq(kvs__manifest_decode(&m, b->data, b->len, "t"), 0);
	cr_assert_eq(m.kind, KVS__MF_MAP);
	kvs__manifest_clear(&m);
	/* "v" is the first field: fixmap, fixstr "v", then the version */
	cr_assert_eq(b->data[3], 2, "format version byte %u", b->data[3]);
	kvs_object_free(idx);
	kvs_close(s);
}

/* ---- the randomised model test -------------------------------------------- */

#define NF 200
#define VMAX 300

typedef struct model {
	int present[NF];
	uint8_t val[NF][VMAX];
	uint16_t len[NF];
} model;

static void fname(char *out, int i)
{
	sprintf(out, "n%03d", i);
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

typedef struct rbatch {
	int n;
	int f[16];
	int del[16];
	uint16_t len[16];
	uint8_t val[16][VMAX];
} rbatch;

static void random_batch(rbatch *rb)
{
	rb->n = 1 + (int)(rnd() % 12);
	for (int i = 0; i < rb->n; i++) {
		rb->f[i] = (int)(rnd() % NF);
		rb->del[i] = rnd() % 4 == 0;
		rb->len[i] = (uint16_t)(rnd() % VMAX);
		for (int k = 0; k < rb->len[i]; k++)
			rb->val[i][k] = (uint8_t)('a' + (rnd() % 26));
	}
}

static kvs_map_batch *to_batch(const rbatch *rb)
{
	kvs_map_batch *b;
	char f[16];

	cr_assert_eq(kvs_map_batch_new(&b), 0);
	for (int i = 0; i < rb->n; i++) {
		fname(f, rb->f[i]);
		if (rb->del[i])
			cr_assert_eq(kvs_map_batch_delete(b, f, strlen(f)), 0);
		else
			cr_assert_eq(kvs_map_batch_put(b, f, strlen(f), rb->val[i], rb->len[i]), 0);
	}
	return b;
}

static void apply(model *m, const rbatch *rb)
{
	for (int i = 0; i < rb->n; i++) {
		int f = rb->f[i];
		m->present[f] = !rb->del[i];
		m->len[f] = rb->len[i];
		memcpy(m->val[f], rb->val[i], rb->len[i]);
	}
}

/* 1 if the committed map equals the model (0 if not; -1 if unreadable). */
static int equals(kvs_store *s, const model *m)
{
	kvs_map_iter *it = NULL;
	kvs_map_entry e;
	int seen[NF] = { 0 }, rc;

	rc = kvs_map_iter_open(&it, NULL, s, "m", NULL);
	if (rc == KVS_ENOTFOUND) {
		for (int i = 0; i < NF; i++)
			if (m->present[i])
				return 0;
		return 1;
	}
	if (rc < 0)
		return -1;
	while ((rc = kvs_map_iter_next(&e, it)) == 0) {
		char num[4] = { 0 };
		int f;
		if (e.field_len == 4)
			memcpy(num, (const char *)e.field + 1, 3);   /* the field is not a C string */
		if (e.field_len != 4 || sscanf(num, "%3d", &f) != 1 || f < 0 ||
		    f >= NF || !m->present[f] || e.value_len != m->len[f] ||
		    memcmp(e.value, m->val[f], e.value_len) != 0) {
			kvs_map_iter_close(it);
			return 0;
		}
		seen[f] = 1;
	}
	kvs_map_iter_close(it);
	if (rc != KVS_EITER_DONE)
		return -1;
	for (int i = 0; i < NF; i++)
		if (m->present[i] && !seen[i])
			return 0;
	return 1;
}

/* The reader's check at every writer call: old or new, nothing between. */
typedef struct watcher {
	kvs_store *reader;
	const model *before, *after;
	int calls, bad;
	/* a second writer racing in once, at the index commit */
	kvs_store *racer;
	const rbatch *race;
	int raced;
	char iname[KVS__NAME_BUF];
} watcher;

static int hook(void *ctx, kvs_mem_call kind, const char *name)
{
	watcher *w = ctx;

	w->calls++;
	if (w->reader) {
		int a = equals(w->reader, w->before), b = w->after ? equals(w->reader, w->after) : 0;
		if (a != 1 && b != 1)
			w->bad++;
	}
	if (w->race && !w->raced && name && strcmp(name, w->iname) == 0 &&
	    (kind == KVS_MEM_REPLACE || kind == KVS_MEM_CREATE)) {
		kvs_map_batch *b = to_batch(w->race);
		w->raced = 1;
		if (kvs_map_commit(NULL, w->racer, "m", b, NULL) != 0)
			w->bad += 1000;
		kvs_map_batch_free(b);
	}
	return 0;
}

static int v4seen;

/* 1 if the index of "m" is of format version 4 (a base table). */
static int index_v4(kvs_backend *be, kvs_store *s)
{
	char iname[KVS__NAME_BUF];
	kvs_object *idx = NULL;
	kvs__manifest mf;
	const kvs_blob *b;
	int v4 = 0;

	memset(&mf, 0, sizeof(mf));
	kvs__index_name(iname, s->name, "m", 1);
	if (be->ops->get(be, &idx, iname) != 0)
		return 0;
	b = kvs_object_data(idx, KVS__INDEX_DATA_KEY);
	if (b && kvs__manifest_decode(&mf, b->data, b->len, "t") == 0)
		v4 = mf.map_v4;
	kvs__manifest_clear(&mf);
	kvs_object_free(idx);
	return v4;
}

/* btmin: the writers' smallest base table kept out of the index (0: the
 * default, which this layout stays under; 1: always, format version 4) */
static void model_run(uint32_t btmin, int minor)
{
	kvs_backend *be, *peer, *rbe;
	kvs_store *s, *racer, *reader;
	model *m = calloc(1, sizeof(*m)), *next = calloc(1, sizeof(*next));
	kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
	int batches = 0, crashes = 0, races = 0, compactions = 0, failed = 0;
	kvs_options o = KVS_OPTIONS_INIT;

	rng_state = 0x9e3779b97f4a7c15ull;
	o.cache_bytes = 1u << 20;
	cr_assert_eq(kvs_backend_mem(&be, NULL), 0);
	cr_assert_eq(kvs_backend_mem_clone(&peer, be), 0);
	cr_assert_eq(kvs_backend_mem_clone(&rbe, be), 0);
	cr_assert_eq(kvs_open(&s, be, &o), 0);
	cr_assert_eq(kvs_open(&racer, peer, &o), 0);
	cr_assert_eq(kvs_open(&reader, rbe, &o), 0);
	/* a small layout, so that runs are cut, deltas spill out of line and
	 * compaction runs often */
	kvs__store_set_map_layout(s, 600, 3000);
	kvs__store_set_map_layout(racer, 600, 3000);
	s->map_basetab_min = racer->map_basetab_min = btmin;
	s->map_minor_always = racer->map_minor_always = minor;
	v4seen = 0;

	for (int step = 0; step < 2500; step++) {
		rbatch rb, rb2;
		kvs_map_batch *b;
		watcher w;
		int mode = (int)(rnd() % 20), rc, eq;
		kvs_ver v;

		memset(&w, 0, sizeof(w));
		kvs__index_name(w.iname, s->name, "m", 1);
		random_batch(&rb);
		*next = *m;
		apply(next, &rb);
		w.before = m;
		w.after = next;
		if (step % 25 == 0)
			w.reader = reader;    /* check atomic visibility at every call */
		wo.expect_version = NULL;
		wo.compact = rnd() % 2 ? KVS_MAP_COMPACT_AUTO : KVS_MAP_COMPACT_NEVER;

		if (mode < 3) {
			/* a blind race: the other writer commits first */
			random_batch(&rb2);
			w.racer = racer;
			w.race = &rb2;
			*next = *m;
			apply(next, &rb2);
			apply(next, &rb);
			w.reader = NULL;   /* the race itself is a third state */
			kvs_mem_set_hook(be, hook, &w);
			b = to_batch(&rb);
			rc = kvs_map_commit(&v, s, "m", b, &wo);
			kvs_map_batch_free(b);
			kvs_mem_set_hook(be, NULL, NULL);
			cr_assert_eq(rc, 0, "step %d: blind batch lost a race: %s", step, kvs_error_last());
			cr_assert_eq(w.bad, 0, "step %d: the racing writer failed", step);
			races += w.raced;
			*m = *next;
		} else if (mode < 7) {
			/* crash after a random number of calls, or lose a response */
			int n = (int)(rnd() % 5);
			if (rnd() % 3 == 0)
				kvs_mem_lose_response_nth(be, (uint64_t)n + 1, 0);
			else
				kvs_mem_crash_after(be, (uint64_t)n);
			kvs_mem_set_hook(be, hook, &w);
			b = to_batch(&rb);
			rc = kvs_map_commit(&v, s, "m", b, &wo);
			kvs_map_batch_free(b);
			kvs_mem_set_hook(be, NULL, NULL);
			kvs_mem_crash_after(be, 0);
			kvs_mem_lose_response_nth(be, 0, 0);
			crashes++;
			eq = equals(reader, next);
			if (rc == 0) {
				cr_assert_eq(eq, 1, "step %d: acknowledged batch not visible", step);
				*m = *next;
			} else if (eq == 1) {
				*m = *next;   /* applied, outcome unknown to the writer */
			} else {
				cr_assert_eq(equals(reader, m), 1, "step %d: failed batch (%s) left a "
				             "partial state", step, kvs_error_last());
				failed++;
			}
		} else {
			int cond = rnd() % 2;
			kvs_map_stat st;
			if (cond && kvs_map_stat_key(&st, s, "m", NULL) == 0)
				wo.expect_version = st.version.str;
			kvs_mem_set_hook(be, hook, &w);
			b = to_batch(&rb);
			rc = kvs_map_commit(&v, s, "m", b, &wo);
			kvs_map_batch_free(b);
			kvs_mem_set_hook(be, NULL, NULL);
			cr_assert_eq(rc, 0, "step %d: %s", step, kvs_error_last());
			*m = *next;
		}
		batches++;
		cr_assert_eq(w.bad, 0, "step %d: a reader saw half a batch", step);
		if (step % 17 == 0) {
			kvs_map_write_options co = KVS_MAP_WRITE_OPTIONS_INIT;
			co.compact = KVS_MAP_COMPACT_FORCE;
			if (rnd() % 2)
				kvs_mem_crash_after(be, rnd() % 8);
			rc = kvs_map_compact(NULL, s, "m", &co);
			kvs_mem_crash_after(be, 0);
			compactions += rc == 0;
		}
		cr_assert_eq(equals(reader, m), 1, "step %d: map differs from the model", step);
		v4seen += index_v4(be, s);
		/* a few point reads through the writer's handle */
		for (int k = 0; k < 3; k++) {
			int f = (int)(rnd() % NF);
			char fn[16];
			void *out = NULL;
			size_t n = 0;
			fname(fn, f);
			rc = kvs_map_get(&out, &n, NULL, NULL, s, "m", fn, strlen(fn), NULL);
			if (m->present[f]) {
				cr_assert_eq(rc, 0, "step %d: get %s: %s", step, fn, kvs_error_last());
				cr_assert(n == m->len[f] && memcmp(out, m->val[f], n) == 0, "step %d: %s", step, fn);
			} else {
				cr_assert(rc == KVS_ENOTFOUND || rc == 0 ? rc == KVS_ENOTFOUND : 0,
				          "step %d: get %s: rc %d", step, fn, rc);
			}
			kvs_free(out);
		}
	}
	cr_log_info("model: %d batches, %d races, %d crashes (%d left the old map), %d compactions",
	            batches, races, crashes, failed, compactions);
	cr_assert_gt(races, 100);
	cr_assert_gt(failed, 50);
	cr_assert_gt(compactions, 50);
	if (btmin == 1)
		cr_assert_gt(v4seen, 100, "only %d steps ended on a base table", v4seen);
	cr_log_info("model: %llu minor compactions", (unsigned long long)s->map_minors);
	if (minor)
		cr_assert_gt(s->map_minors, 100, "only %llu minor compactions",
		             (unsigned long long)s->map_minors);
	kvs_close(s);
	kvs_close(racer);
	kvs_close(reader);
	free(m);
	free(next);
}

Test(map, model_random_batches_races_crashes_compactions, .timeout = 600)
{
	model_run(0, 0);
}

/* The same with every base table out of the index (format version 4): the
 * base table segment written by compactions, reused by batches and races,
 * and crashes at every point of both. */
Test(map, model_with_a_base_table_in_a_segment, .timeout = 600)
{
	model_run(1, 0);
}

/* The same with minor compactions whenever the policy allows them (the
 * deltas merged out of line, the base left as it is; a forced compaction
 * still merges them into it), with and without a base table. */
Test(map, model_with_minor_compactions, .timeout = 600)
{
	model_run(0, 1);
}

Test(map, model_with_minor_compactions_and_a_base_table, .timeout = 600)
{
	model_run(1, 1);
}

/* Crash at every backend call of one batch and of one compaction, in turn:
 * afterwards the map is the old one or the new one, never anything else. */
static void crash_every_call(uint32_t btmin)
{
	/* what: 0 a batch, 1 a forced compaction, 2 a minor compaction */
	for (int what = 0; what < 3; what++) {
		for (uint64_t n = 1;; n++) {   /* 0 would disable the crash */
			kvs_backend *be, *rbe;
			kvs_store *s, *r;
			model *before = calloc(1, sizeof(*before)), *after = calloc(1, sizeof(*after));
			kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
			kvs_mem_stats ms;
			uint64_t calls = 0;
			rbatch rb;
			int rc;

			rng_state = 42;
			cr_assert_eq(kvs_backend_mem(&be, NULL), 0);
			cr_assert_eq(kvs_backend_mem_clone(&rbe, be), 0);
			s = open_on(be);
			r = open_on(rbe);
			kvs__store_set_map_layout(s, 300, 1000);
			s->map_basetab_min = btmin;
			wo.compact = KVS_MAP_COMPACT_NEVER;
			for (int i = 0; i < 20; i++) {
				kvs_map_batch *b;
				random_batch(&rb);
				b = to_batch(&rb);
				cr_assert_eq(kvs_map_commit(NULL, s, "m", b, &wo), 0, "%s", kvs_error_last());
				kvs_map_batch_free(b);
				apply(before, &rb);
			}
			if (btmin) {
				/* a base, and its table in a segment */
				kvs_map_write_options co = KVS_MAP_WRITE_OPTIONS_INIT;
				co.compact = KVS_MAP_COMPACT_FORCE;
				cr_assert_eq(kvs_map_compact(NULL, s, "m", &co), 0, "%s", kvs_error_last());
				cr_assert_eq(index_v4(be, s), 1);
			}
			if (what == 2) {
				/* a base, then deltas for the policy to merge out of line */
				kvs_map_write_options co = KVS_MAP_WRITE_OPTIONS_INIT;
				co.compact = KVS_MAP_COMPACT_FORCE;
				cr_assert_eq(kvs_map_compact(NULL, s, "m", &co), 0, "%s", kvs_error_last());
				for (int i = 0; i < 5; i++) {
					kvs_map_batch *b;
					random_batch(&rb);
					b = to_batch(&rb);
					cr_assert_eq(kvs_map_commit(NULL, s, "m", b, &wo), 0, "%s",
					             kvs_error_last());
					kvs_map_batch_free(b);
					apply(before, &rb);
				}
				s->map_minor_always = 1;
			}
			random_batch(&rb);
			for (int i = 0; i < rb.n; i++)
				rb.len[i] = VMAX - 1;   /* big: goes out of line */
			*after = *before;
			if (what == 0)
				apply(after, &rb);
			kvs_mem_reset_stats(be);
			kvs_mem_crash_after(be, n);
			if (what == 0) {
				kvs_map_batch *b = to_batch(&rb);
				rc = kvs_map_commit(NULL, s, "m", b, &wo);
				kvs_map_batch_free(b);
			} else {
				wo.compact = what == 1 ? KVS_MAP_COMPACT_FORCE : KVS_MAP_COMPACT_AUTO;
				rc = kvs_map_compact(NULL, s, "m", &wo);
				if (rc == 0 && what == 2)
					cr_assert_eq(s->map_minors, 1, "no minor compaction");
			}
			kvs_mem_get_stats(be, &ms);
			for (int k = 0; k < KVS_MEM_NCALLS; k++)
				calls += ms.calls[k];
			kvs_mem_crash_after(be, 0);
			cr_assert(equals(r, before) == 1 || equals(r, after) == 1,
			          "%s crashed after %llu calls: partial state", what ? "compaction" : "batch",
			          (unsigned long long)n);
			if (rc == 0)
				cr_assert_eq(equals(r, after), 1);
			kvs_close(s);
			kvs_close(r);
			free(before);
			free(after);
			if (rc == 0)
				break;   /* n reached the number of calls a whole run makes */
			cr_assert_lt(n, 200);
			cr_log_info("%s: %llu calls", what == 0 ? "batch" : what == 1 ? "compaction" : "minor compaction", (unsigned long long)calls);
		}
	}
}

Test(map, crash_at_every_call_of_a_batch_and_a_compaction)
{
	crash_every_call(0);
}

/* The same when the base table is in a segment (a compaction writes a new
 * one; the batch reuses it). */
Test(map, crash_at_every_call_with_a_base_table)
{
	crash_every_call(1);
}

static void count_problem(void *ctx, const kvs_fsck_problem *p)
{
	if (p->kind != KVS_FSCK_ORPHAN)
		(*(int *)ctx)++;
}

/* gc keeps every segment a map references and collects the ones compaction
 * replaced; fsck checks a map's runs and reports a damaged one. */
Test(map, gc_keeps_map_segments_and_fsck_checks_runs)
{
	kvs_backend *be;
	kvs_store *s = open_mem(&be);
	kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
	kvs_gc_options go = KVS_GC_OPTIONS_INIT;
	kvs_fsck_options fo = KVS_FSCK_OPTIONS_INIT;
	kvs_gc_report gr;
	kvs_fsck_report fr;
	model *m = calloc(1, sizeof(*m));
	int problems = 0;

	rng_state = 7;
	kvs__store_set_map_layout(s, 400, 1200);
	for (int i = 0; i < 80; i++) {
		rbatch rb;
		kvs_map_batch *b;
		random_batch(&rb);
		b = to_batch(&rb);
		cr_assert_eq(kvs_map_commit(NULL, s, "m", b, &wo), 0, "%s", kvs_error_last());
		kvs_map_batch_free(b);
		apply(m, &rb);
	}
	kvs_mem_advance_clock(be, 2 * 3600 * 1000);
	cr_assert_eq(kvs_gc(&gr, s, &go), 0, "gc: %s", kvs_error_last());
	cr_assert_gt(gr.deleted, 0, "compaction left nothing to collect?");
	cr_assert_gt(gr.referenced, 0);
	cr_assert_eq(equals(s, m), 1, "map broken by gc");
	fo.on_problem = count_problem;
	fo.ctx = &problems;
	cr_assert_eq(kvs_fsck(&fr, s, &fo), 0, "%s", kvs_error_last());
	cr_assert_eq(problems, 0);
	cr_assert_gt(fr.chunks_verified, 0);
	/* damage one segment of the map: fsck reports it, reads fail verified */
	{
		kvs_object_list *l = NULL;
		char sel[KVS__NAME_BUF];
		kvs__selector(sel, s->name, KVS__ROLE_SEGMENT);
		cr_assert_eq(be->ops->list(be, &l, sel, 0, NULL, 0), 0);
		cr_assert_gt(l->count, 0);
		cr_assert_eq(kvs_mem_corrupt(be, l->items[0]->name, l->items[0]->data[0].key, 3), 0);
		kvs_object_list_free(l);
	}
	problems = 0;
	cr_assert_eq(kvs_fsck(&fr, s, &fo), 0);
	cr_assert_gt(problems, 0, "fsck missed a damaged map run");
	kvs_close(s);
	free(m);
}

/*
 * A map index that does not say when its writer last checked its touch
 * window (written before T_check was recorded, or committed late) protects
 * nothing (design.md "The pause hole closed"): the next batch touches every
 * segment the base references before its commit; over an on-time base it
 * touches none.
 */
#include "refs.h"
#include "segwrite.h"
#include "store/mem/faults.h"

static uint64_t annotates(kvs_backend *b)
{
	kvs_mem_stats st;
	kvs_mem_get_stats(b, &st);
	return st.calls[KVS_MEM_ANNOTATE];
}

Test(map, batch_over_a_base_without_touch_check_touches_its_segments)
{
	kvs_backend *be;
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_store *s;
	char f[32], v[200], iname[KVS__NAME_BUF];
	size_t klen, nsegs = 0;
	uint8_t (*segs)[16] = NULL;
	kvs_object *idx = NULL;

	cr_assert_eq(kvs_backend_mem(&be, NULL), 0);
	cr_assert_eq(kvs_open(&s, be, &o), 0);
	kvs__store_set_map_layout(s, 1024, 4096);
	for (int i = 0; i < 20; i++) {
		snprintf(f, sizeof(f), "node-%04d", i);
		memset(v, 'a' + i % 26, sizeof(v));
		v[sizeof(v) - 1] = '\0';
		put1(s, "m", f, v);
	}
	cr_assert_eq(kvs_map_compact(NULL, s, "m", NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs__key_to_index(iname, s, "m", &klen), 0);
	cr_assert_eq(be->ops->get(be, &idx, iname), 0);
	cr_assert_eq(kvs__refs_segments(&segs, &nsegs, s, idx, NULL, NULL), 0);
	cr_assert_gt(nsegs, 0, "the map's runs are all inline");
	kvs_object_free(idx);
	free(segs);

	uint64_t a0 = annotates(be);
	put1(s, "m", "node-9000", "on time");
	cr_assert_eq(annotates(be) - a0, 0, "a batch over an on-time base touched");

	kvs_kv kv = { (char *)KVS__ANN_CHECKED, NULL };
	cr_assert_eq(be->ops->annotate(be, NULL, iname, &kv, 1), 0);
	cr_assert_eq(be->ops->get(be, &idx, iname), 0);
	cr_assert_eq(kvs__refs_segments(&segs, &nsegs, s, idx, NULL, NULL), 0);
	kvs_object_free(idx);
	free(segs);
	a0 = annotates(be);
	put1(s, "m", "node-9001", "after");
	cr_assert_geq(annotates(be) - a0, nsegs, "%llu touches for %zu base segments",
	              (unsigned long long)(annotates(be) - a0), nsegs);
	memset(v, 'a' + 3, sizeof(v));
	v[sizeof(v) - 1] = '\0';
	expect_field(s, "m", "node-0003", v);
	expect_field(s, "m", "node-9001", "after");
	kvs_close(s);
}
