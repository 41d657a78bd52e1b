/*
 * test_mapbase.c — suite "mapbase": the base table of a key-split map
 * (docs/format.md §5.5, format version 4). A big map keeps its base run
 * records in a segment, so a batch sends its delta and a small index; maps
 * written as version 2 still read and write; a base table that is damaged
 * or planted is refused with a clear error and nothing stored changes; gc
 * keeps it, fsck checks it and reports it missing; a watch reports exactly
 * the changed fields across batches and a compaction, and fetches nothing
 * for a base table it already holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "support/fixture.h"
#include "codec.h"
#include "internal.h"
#include "manifest.h"
#include "maprun.h"
#include "segwrite.h"
#include "store/mem/faults.h"

#define NFIELDS 2000
#define VLEN 200

static kvs_store *open_mem(kvs_backend **bout)
{
	kvs_backend *b = NULL;
	kvs_store *s = NULL;

	cr_assert_eq(kvs_backend_mem(&b, NULL), 0);
	cr_assert_eq(kvs_open(&s, b, NULL), 0, "open: %s", kvs_error_last());
	/* runs of 1 KiB: 2,000 fields of 200 bytes make ~400 base runs, a
	 * base table of ~30 KB (as a 64 MiB map has at 64 KiB runs) */
	cr_assert_eq(kvs__store_set_map_layout(s, 1024, 0), 0);
	*bout = b;
	return s;
}

/* A value for field i at generation g: hex of a hash, so lz4 does not
 * shrink it to nothing (node status is not that compressible either). */
static void value_of(char *v, int i, int g)
{
	uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ull ^ (uint64_t)g * 0xbf58476d1ce4e5b9ull;
	for (int k = 0; k < VLEN; k++) {
		x ^= x >> 31;
		x *= 0x94d049bb133111ebull;
		v[k] = "0123456789abcdef"[x >> 60];
	}
	v[VLEN] = '\0';
}

static void import_big(kvs_store *s, const char *key)
{
	size_t cap = (size_t)NFIELDS * (VLEN + 16) + 16, o = 0;
	char *doc = malloc(cap), v[VLEN + 1];

	cr_assert(doc);
	doc[o++] = '{';
	for (int i = 0; i < NFIELDS; i++) {
		value_of(v, i, 0);
		o += (size_t)snprintf(doc + o, cap - o, "%s\"f%04d\":\"%s\"", i ? "," : "", i, v);
	}
	doc[o++] = '}';
	cr_assert_eq(kvs_map_import_json(NULL, s, key, doc, o, NULL), 0, "%s", kvs_error_last());
	free(doc);
}

/* The value read back for field i, compared with what generation g wrote. */
static void expect(kvs_store *s, const char *key, int i, int g)
{
	char f[16], v[VLEN + 3];
	void *out = NULL;
	size_t n = 0;

	snprintf(f, sizeof(f), "f%04d", i);
	v[0] = '"';
	value_of(v + 1, i, g);
	v[VLEN + 1] = '"';
	v[VLEN + 2] = '\0';
	cr_assert_eq(kvs_map_get(&out, &n, NULL, NULL, s, key, f, strlen(f), NULL), 0, "get %s: %s",
	             f, kvs_error_last());
	cr_assert_eq(n, VLEN + 2, "%s: %zu bytes", f, n);
	cr_assert(memcmp(out, v, n) == 0, "%s: wrong value", f);
	kvs_free(out);
}

/* 20 scattered fields (every 100th from `first`) at generation g; *raw
 * gets their names' and values' bytes. */
static void scattered(kvs_store *s, const char *key, int first, int g, size_t *raw,
                      unsigned compact)
{
	kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
	kvs_map_batch *b;
	char f[16], v[VLEN + 3];

	wo.compact = compact;
	cr_assert_eq(kvs_map_batch_new(&b), 0);
	if (raw)
		*raw = 0;
	for (int i = first; i < NFIELDS; i += 100) {
		snprintf(f, sizeof(f), "f%04d", i);
		v[0] = '"';
		value_of(v + 1, i, g);
		v[VLEN + 1] = '"';
		v[VLEN + 2] = '\0';
		cr_assert_eq(kvs_map_batch_put_json(b, f, strlen(f), v, strlen(v)), 0);
		if (raw)
			*raw += strlen(f) + strlen(v);
	}
	cr_assert_eq(kvs_map_commit(NULL, s, key, b, &wo), 0, "commit: %s", kvs_error_last());
	kvs_map_batch_free(b);
}

/* A compaction, forced (the policy would wait for more deltas). */
static void compact(kvs_store *s)
{
	kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
	kvs_map_stats ms;

	memset(&ms, 0, sizeof(ms));
	wo.compact = KVS_MAP_COMPACT_FORCE;
	wo.stats = &ms;
	cr_assert_eq(kvs_map_compact(NULL, s, "m", &wo), 0, "compact: %s", kvs_error_last());
	cr_assert_eq(ms.compacted, 1, "nothing compacted");
}

static kvs_object *get_index(kvs_backend *be, kvs_store *s, const char *key)
{
	char iname[KVS__NAME_BUF];
	kvs_object *idx = NULL;

	kvs__index_name(iname, s->name, key, strlen(key));
	cr_assert_eq(be->ops->get(be, &idx, iname), 0);
	return idx;
}

/* The index's manifest (decoded) and its table read whole. */
static void read_index(kvs__manifest *m, kvs__mapidx *ix, kvs_backend *be, kvs_store *s,
                       const char *key)
{
	kvs_object *idx = get_index(be, s, key);
	const kvs_blob *b = kvs_object_data(idx, KVS__INDEX_DATA_KEY);

	cr_assert(b);
	cr_assert_eq(kvs__manifest_decode(m, b->data, b->len, "t"), 0, "%s", kvs_error_last());
	if (ix)
		cr_assert_eq(kvs__mapidx_read(ix, s, m, "t", NULL), 0, "%s", kvs_error_last());
	kvs_object_free(idx);
}

static int index_is_v4(kvs_backend *be, kvs_store *s, const char *key)
{
	kvs__manifest m;
	int v4;

	read_index(&m, NULL, be, s, key);
	v4 = m.map_v4;
	kvs__manifest_clear(&m);
	return v4;
}

/* The issue 12 target at a small scale: a reconcile of 20 scattered
 * fields on a big map sends its delta and a small index, not the base's
 * run records (about 30 KB here; 56 KB in a 64 MiB map). */
Test(mapbase, scattered_batch_on_a_big_map_sends_about_its_delta)
{
	kvs_backend *be;
	kvs_store *s = open_mem(&be);
	kvs_mem_stats ms;
	size_t raw;

	import_big(s, "m");
	cr_assert_eq(index_is_v4(be, s, "m"), 1, "a big map's index is not of format version 4");
	for (int g = 1; g <= 3; g++) {
		kvs_mem_reset_stats(be);
		scattered(s, "m", g * 7, g, &raw, KVS_MAP_COMPACT_NEVER);
		kvs_mem_get_stats(be, &ms);
		cr_assert_lt(ms.bytes_written, 2 * raw + 2048 + (g - 1) * raw,
		             "batch %d of %zu raw bytes wrote %llu bytes", g, raw,
		             (unsigned long long)ms.bytes_written);
		cr_assert_eq(ms.calls[KVS_MEM_CREATE], 0, "a batch over an unchanged base wrote a segment");
	}
	for (int g = 1; g <= 3; g++)
		expect(s, "m", g * 7, g);
	expect(s, "m", 1, 0);
	kvs_close(s);
}

/* A map written with no base table (version 2, as the code before it
 * wrote) reads, takes batches and compacts; its first commit with the
 * base table writes it, and the result reads the same. */
Test(mapbase, version_2_map_is_still_read_and_written)
{
	kvs_backend *be;
	kvs_store *s = open_mem(&be);

	s->map_basetab_min = UINT32_MAX;   /* the writer before format version 4 */
	import_big(s, "m");
	scattered(s, "m", 3, 1, NULL, KVS_MAP_COMPACT_NEVER);
	cr_assert_eq(index_is_v4(be, s, "m"), 0);
	s->map_basetab_min = 0;
	expect(s, "m", 3, 1);
	expect(s, "m", 4, 0);
	scattered(s, "m", 5, 2, NULL, KVS_MAP_COMPACT_NEVER);
	cr_assert_eq(index_is_v4(be, s, "m"), 1, "the first batch with the base table kept version 2");
	expect(s, "m", 3, 1);
	expect(s, "m", 5, 2);
	expect(s, "m", 6, 0);
	compact(s);
	expect(s, "m", 3, 1);
	expect(s, "m", 5, 2);
	expect(s, "m", 1999, 0);
	/* and a version 4 map a writer without it takes back to version 2 */
	s->map_basetab_min = UINT32_MAX;
	scattered(s, "m", 8, 3, NULL, KVS_MAP_COMPACT_NEVER);
	cr_assert_eq(index_is_v4(be, s, "m"), 0);
	expect(s, "m", 8, 3);
	expect(s, "m", 5, 2);
	kvs_close(s);
}

/* Store `raw` as the only chunk of a new segment; its descriptor. */
static kvs__seg_desc plant_segment(kvs_store *s, uint8_t *raw, size_t len, uint8_t addr[16],
                                   uint32_t *stored, int damage)
{
	kvs__wstats ws;
	kvs__segw sw;
	kvs__seg_desc d;
	size_t bound = kvs__blob_bound(len);
	uint8_t *blob = malloc(bound);
	uint32_t slot;

	memset(&ws, 0, sizeof(ws));
	cr_assert(blob);
	kvs__addr_of(addr, raw, len);
	if (damage)
		raw[len / 2] ^= 0x20;   /* stored under the address of other bytes */
	*stored = (uint32_t)kvs__blob_encode(blob, bound, raw, len, 1);
	kvs__segw_init(&sw, s, "m", &ws);
	cr_assert_eq(kvs__segw_add(&sw, addr, blob, *stored, &slot), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs__segw_seal(&sw), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs__segw_flush(&sw), 0, "%s", kvs_error_last());
	memcpy(d.addr, sw.slots[slot].addr, 16);
	d.bytes = sw.slots[slot].bytes;
	d.nchunks = sw.slots[slot].nchunks;
	kvs__segw_free(&sw);
	return d;
}

enum { P_HASH, P_DELTA, P_ORDER, P_OVERLAP, P_SEG, P_COUNT, P_TOMB };

/*
 * Replace the map's base table by a planted one (damaged as `how` says) in
 * a segment of its own, and commit an index referencing it, as a hostile
 * or broken writer would.
 */
static void plant(kvs_backend *be, kvs_store *s, int how)
{
	kvs__manifest m, nm;
	kvs__mapidx ix;
	kvs_object *idx;
	uint8_t *raw = NULL, addr[16], *mf = NULL;
	size_t len, mflen;
	uint32_t stored;

	read_index(&m, &ix, be, s, "m");
	cr_assert_eq(ix.has_bt, 1);
	{
		/* a copy of the base runs, damaged before encoding */
		kvs__mapidx bx;
		cr_assert_eq(kvs__mapidx_copy_base(&bx, &ix), 0);
		kvs__mrun *r0 = &bx.runs[0], *r1 = &bx.runs[1];
		if (how == P_ORDER) {
			kvs__mrun t = *r0;
			*r0 = *r1;
			*r1 = t;
		} else if (how == P_OVERLAP) {
			free(r1->min);
			r1->min = malloc(r0->maxlen);
			memcpy(r1->min, r0->max, r0->maxlen);
			r1->minlen = r0->maxlen;
		} else if (how == P_SEG) {
			r1->seg = ix.nsegs + 3;
		} else if (how == P_TOMB) {
			r1->ntomb = 1;
		}
		cr_assert_eq(kvs__mapidx_basetab(&raw, &len, &bx), 0);
		kvs__mapidx_clear(&bx);
		if (how == P_DELTA)
			raw[4] = 0;   /* the first record's level: a delta */
		if (how == P_COUNT)
			kvs__put_be32(raw, kvs__get_be32(raw) - 1);
	}
	ix.segs[ix.bt.seg] = plant_segment(s, raw, len, addr, &stored, how == P_HASH);
	memcpy(ix.bt.addr, addr, 16);
	ix.bt.raw_len = (uint32_t)len;
	ix.bt.stored_len = stored;
	memset(&nm, 0, sizeof(nm));
	nm.key = m.key;
	nm.key_len = m.key_len;
	cr_assert_eq(kvs__mapidx_encode(&nm, &ix, 1), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs__manifest_encode(&mf, &mflen, &nm, UINT32_MAX), 0, "%s", kvs_error_last());
	nm.key = NULL;
	idx = get_index(be, s, "m");
	for (size_t i = 0; i < idx->ndata; i++)
		if (strcmp(idx->data[i].key, KVS__INDEX_DATA_KEY) == 0) {
			free(idx->data[i].data);
			idx->data[i].data = mf;
			idx->data[i].len = mflen;
		}
	cr_assert_eq(be->ops->replace(be, NULL, idx), 0, "%s", kvs_error_last());
	kvs_object_free(idx);
	kvs__manifest_clear(&nm);
	kvs__manifest_clear(&m);
	kvs__mapidx_clear(&ix);
	free(raw);
}

static const struct {
	int how;
	const char *says;
} planted[] = {
	{ P_HASH, "fails verification" },
	{ P_DELTA, "a delta in the base table" },
	{ P_ORDER, "out of order" },
	{ P_OVERLAP, "overlap" },
	{ P_SEG, "bad segment reference" },
	{ P_COUNT, "runs, its reference says" },
	{ P_TOMB, "tombstones in the base" },
};

/* Every planted base table is refused, by reads, batches, compaction and
 * fsck, with an error naming it; the index stays as it was. */
Test(mapbase, damaged_or_planted_base_table_is_refused)
{
	for (size_t k = 0; k < sizeof(planted) / sizeof(planted[0]); k++) {
		kvs_backend *be;
		kvs_store *s = open_mem(&be);
		kvs_fsck_options fo = KVS_FSCK_OPTIONS_INIT;
		kvs_fsck_report fr;
		kvs_object *before, *after;
		void *out = NULL;
		size_t n;
		int rc;

		import_big(s, "m");
		plant(be, s, planted[k].how);
		before = get_index(be, s, "m");
		rc = kvs_map_get(&out, &n, NULL, NULL, s, "m", "f0001", 5, NULL);
		cr_assert_eq(rc, KVS_ECORRUPT, "case %zu: get gave %d (%s)", k, rc, kvs_error_last());
		cr_assert(strstr(kvs_error_last(), planted[k].says) != NULL,
		          "case %zu: \"%s\" does not say \"%s\"", k, kvs_error_last(), planted[k].says);
		cr_assert(strstr(kvs_error_last(), "base table") || strstr(kvs_error_last(), "run table"),
		          "case %zu: %s", k, kvs_error_last());
		{
			kvs_map_batch *b;
			cr_assert_eq(kvs_map_batch_new(&b), 0);
			cr_assert_eq(kvs_map_batch_put(b, "f0002", 5, "x", 1), 0);
			rc = kvs_map_commit(NULL, s, "m", b, NULL);
			kvs_map_batch_free(b);
		}
		cr_assert_eq(rc, KVS_ECORRUPT, "case %zu: a batch over it gave %d", k, rc);
		cr_assert_eq(kvs_map_compact(NULL, s, "m", NULL), KVS_ECORRUPT, "case %zu", k);
		after = get_index(be, s, "m");
		cr_assert_str_eq(before->resource_version, after->resource_version,
		                 "case %zu: the index changed", k);
		kvs_object_free(before);
		kvs_object_free(after);
		fo.key = "m";
		cr_assert_eq(kvs_fsck(&fr, s, &fo), 0, "%s", kvs_error_last());
		cr_assert_gt(fr.problems, 0, "case %zu: fsck found the map sound", k);
		kvs_close(s);
	}
}

static void count_kind(void *ctx, const kvs_fsck_problem *p)
{
	int *c = ctx;
	c[p->kind]++;
}

/* gc keeps the base table's segment (and every run it lists) while the
 * index references it, collects the one a compaction replaced; fsck checks
 * it, and reports it missing when it is gone (gc then deletes nothing). */
Test(mapbase, gc_keeps_and_fsck_checks_the_base_table)
{
	kvs_backend *be;
	kvs_store *s = open_mem(&be);
	kvs_gc_options go = KVS_GC_OPTIONS_INIT;
	kvs_fsck_options fo = KVS_FSCK_OPTIONS_INIT;
	kvs_gc_report gr;
	kvs_fsck_report fr;
	kvs__manifest m;
	kvs__mapidx ix;
	char bname[KVS__NAME_BUF];
	int kinds[8] = { 0 };

	import_big(s, "m");
	scattered(s, "m", 11, 1, NULL, KVS_MAP_COMPACT_NEVER);
	compact(s);
	scattered(s, "m", 12, 2, NULL, KVS_MAP_COMPACT_NEVER);
	kvs_mem_advance_clock(be, 2 * 3600 * 1000);
	cr_assert_eq(kvs_gc(&gr, s, &go), 0, "gc: %s", kvs_error_last());
	cr_assert_gt(gr.deleted, 0, "the replaced base table and runs were not collected");
	read_index(&m, &ix, be, s, "m");
	cr_assert_eq(ix.has_bt, 1);
	kvs__segment_name(bname, s->name, ix.segs[ix.bt.seg].addr);
	kvs__mapidx_clear(&ix);
	kvs__manifest_clear(&m);
	{
		/* a fresh client reads it all back */
		kvs_store *s2 = NULL;
		kvs_backend *b2 = NULL;
		cr_assert_eq(fx_backend_peer(&b2, be), 0, "%s", kvs_error_last());
		cr_assert_eq(kvs_open(&s2, b2, NULL), 0);
		expect(s2, "m", 11, 1);
		expect(s2, "m", 12, 2);
		expect(s2, "m", 13, 0);
		kvs_close(s2);
	}
	fo.on_problem = count_kind;
	fo.ctx = kinds;
	cr_assert_eq(kvs_fsck(&fr, s, &fo), 0, "%s", kvs_error_last());
	cr_assert_eq(fr.problems, 0, "fsck of a sound map: %llu problems",
	             (unsigned long long)fr.problems);
	cr_assert_gt(fr.chunks_verified, 400);
	/* the base table's segment gone */
	cr_assert_eq(be->ops->remove(be, bname, NULL, NULL), 0, "%s", kvs_error_last());
	memset(kinds, 0, sizeof(kinds));
	cr_assert_eq(kvs_fsck(&fr, s, &fo), 0, "%s", kvs_error_last());
	cr_assert_eq(kinds[KVS_FSCK_MISSING_SEGMENT], 1, "fsck missing-segment reports: %d",
	             kinds[KVS_FSCK_MISSING_SEGMENT]);
	{
		/* a gc that cannot read the base table (a client without it in its
		 * cache) does not know what the map references: it deletes nothing */
		kvs_store *s3 = NULL;
		kvs_backend *b3 = NULL;
		char sel[KVS__NAME_BUF];
		size_t n0 = 0, n1 = 0;
		kvs__selector(sel, s->name, KVS__ROLE_SEGMENT);
		cr_assert_eq(fx_count_objects(be, sel, &n0), 0);
		cr_assert_eq(fx_backend_peer(&b3, be), 0, "%s", kvs_error_last());
		cr_assert_eq(kvs_open(&s3, b3, NULL), 0);
		kvs_mem_advance_clock(be, 2 * 3600 * 1000);
		cr_assert_eq(kvs_gc(&gr, s3, &go), KVS_ECORRUPT, "gc over a map whose base runs are unknown");
		cr_assert(strstr(kvs_error_last(), "nothing deleted"), "%s", kvs_error_last());
		cr_assert_eq(fx_count_objects(be, sel, &n1), 0);
		cr_assert_eq(n1, n0, "gc deleted %zu segments", n0 - n1);
		kvs_close(s3);
	}
	kvs_close(s);
}

/* The field changes of the event last returned, "K:field=value" joined. */
static const char *fields_of(char *buf, size_t cap, kvs_watch *w)
{
	const kvs_map_field_change *fc = NULL;
	size_t n = 0, o = 0;

	cr_assert_eq(kvs_watch_fields(&fc, &n, w), 0, "%s", kvs_error_last());
	buf[0] = '\0';
	for (size_t i = 0; i < n && o < cap; i++) {
		char k = fc[i].kind == KVS_MAP_FIELD_ADDED ? 'A' : fc[i].kind == KVS_MAP_FIELD_CHANGED
		                                                      ? 'C' : 'D';
		o += (size_t)snprintf(buf + o, cap - o, "%s%c:%.*s=%.*s", i ? " " : "", k,
		                      (int)fc[i].field_len, (const char *)fc[i].field,
		                      fc[i].value ? (int)fc[i].value_len : 1,
		                      fc[i].value ? (const char *)fc[i].value : "-");
	}
	return buf;
}

static void small_batch(kvs_store *s, const char *const *kv, size_t n, const char *del)
{
	kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
	kvs_map_batch *b;

	wo.compact = KVS_MAP_COMPACT_NEVER;
	cr_assert_eq(kvs_map_batch_new(&b), 0);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(kvs_map_batch_put(b, kv[2 * i], strlen(kv[2 * i]), kv[2 * i + 1],
		                               strlen(kv[2 * i + 1])), 0);
	if (del)
		cr_assert_eq(kvs_map_batch_delete(b, del, strlen(del)), 0);
	cr_assert_eq(kvs_map_commit(NULL, s, "m", b, &wo), 0, "%s", kvs_error_last());
	kvs_map_batch_free(b);
}

static uint64_t gets(kvs_backend *b)
{
	kvs_mem_stats st;
	kvs_mem_get_stats(b, &st);
	return st.calls[KVS_MEM_GET];
}

/* A watch with KVS_WATCH_FIELDS on a map with a base table reports exactly
 * the fields each batch changed, nothing for a compaction, and fetches
 * nothing for a base table it holds already (no segment cache here). */
Test(mapbase, watch_fields_across_batches_and_a_compaction)
{
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst = NULL;
	kvs_options ro = KVS_OPTIONS_INIT;
	kvs_watch_options wo = KVS_WATCH_OPTIONS_INIT;
	kvs_watch *w = NULL;
	kvs_watch_event ev;
	const kvs_map_field_change *fc;
	char buf[512];
	size_t n;
	uint64_t g0;

	if (strcmp(fx_backend_kind(), "memory") != 0)
		cr_skip_test("counts the in-memory backend's calls");
	cr_assert_eq(fx_backend(&wb), 0, "%s", kvs_error_last());
	cr_assert_eq(fx_backend_peer(&rb, wb), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_open(&wst, wb, NULL), 0);
	cr_assert_eq(kvs__store_set_map_layout(wst, 1024, 0), 0);
	ro.cache_bytes = UINT64_MAX;   /* no segment cache: every fetch is a GET */
	cr_assert_eq(kvs_open(&rst, rb, &ro), 0, "%s", kvs_error_last());
	{
		/* move the fresh cluster off revision 0 (a watch from 0 is "now") */
		kvs_object *o = kvs_object_new("unrelated-warm-up");
		cr_assert_eq(wb->ops->create(wb, NULL, o), 0);
		kvs_object_free(o);
	}
	import_big(wst, "m");
	cr_assert_eq(index_is_v4(wb, wst, "m"), 1);
	wo.flags = KVS_WATCH_FIELDS | KVS_WATCH_VALUES;
	cr_assert_eq(kvs_watch_open(&w, rst, "m", &wo), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_watch_next(&ev, w, 5000), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_watch_fields(&fc, &n, w), 0);
	cr_assert_eq(n, NFIELDS);

	static const char *const kv1[] = { "f0100", "x", "f1900", "y" };
	small_batch(wst, kv1, 2, "f0500");
	g0 = gets(rb);
	cr_assert_eq(kvs_watch_next(&ev, w, 5000), 0, "%s", kvs_error_last());
	cr_assert_eq(gets(rb) - g0, 0, "the watcher fetched %llu objects for an inline delta "
	             "over the base table it holds", (unsigned long long)(gets(rb) - g0));
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "C:f0100=x D:f0500=- C:f1900=y", "%s", buf);

	/* a compaction rewrites the base table: no field changes */
	compact(wst);
	cr_assert_eq(index_is_v4(wb, wst, "m"), 1);
	cr_assert_eq(kvs_watch_next(&ev, w, 5000), 0, "%s", kvs_error_last());
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "", "compaction: %s", buf);

	/* and after it, a batch over the new base table */
	static const char *const kv2[] = { "f0100", "z", "f0500", "back", "g-new", "n" };
	small_batch(wst, kv2, 3, "f1999");
	g0 = gets(rb);
	cr_assert_eq(kvs_watch_next(&ev, w, 5000), 0, "%s", kvs_error_last());
	cr_assert_eq(gets(rb) - g0, 0, "the watcher fetched the new base table again");
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "C:f0100=z A:f0500=back D:f1999=- A:g-new=n",
	                 "%s", buf);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}

/* A base table that would not fit one segment stays in the index (the
 * index's own cap then applies, as before format version 4). */
Test(mapbase, base_table_over_a_segment_stays_in_the_index)
{
	kvs_backend *be;
	kvs_store *s = open_mem(&be);

	s->seg_cap = 8192;   /* the ~30 KB base table does not fit */
	import_big(s, "m");
	cr_assert_eq(index_is_v4(be, s, "m"), 0, "a base table larger than a segment was written");
	scattered(s, "m", 9, 1, NULL, KVS_MAP_COMPACT_NEVER);
	compact(s);
	cr_assert_eq(index_is_v4(be, s, "m"), 0);
	expect(s, "m", 9, 1);
	expect(s, "m", 10, 0);
	kvs_close(s);
}

typedef struct touched {
	char name[KVS__NAME_BUF];
	int hit;
} touched;

static int on_call(void *ctx, kvs_mem_call kind, const char *name)
{
	touched *t = ctx;
	if (kind == KVS_MEM_ANNOTATE && name && strcmp(name, t->name) == 0)
		t->hit++;
	return 0;
}

/* A base committed late (here: an index without T_check) protects
 * nothing (design.md "The pause hole closed"): the next batch touches the
 * segments it takes from it, the base table's among them. */
Test(mapbase, batch_over_a_late_base_touches_the_base_table)
{
	kvs_backend *be;
	kvs_store *s = open_mem(&be);
	kvs__manifest m;
	kvs__mapidx ix;
	touched t;
	char iname[KVS__NAME_BUF];
	kvs_kv kv = { (char *)KVS__ANN_CHECKED, NULL };

	import_big(s, "m");
	read_index(&m, &ix, be, s, "m");
	cr_assert_eq(ix.has_bt, 1);
	memset(&t, 0, sizeof(t));
	kvs__segment_name(t.name, s->name, ix.segs[ix.bt.seg].addr);
	kvs__mapidx_clear(&ix);
	kvs__manifest_clear(&m);
	/* on time: no touch */
	kvs_mem_set_hook(be, on_call, &t);
	scattered(s, "m", 1, 1, NULL, KVS_MAP_COMPACT_NEVER);
	cr_assert_eq(t.hit, 0, "a batch over an on-time base touched its base table");
	/* late: touched before the commit */
	kvs__index_name(iname, s->name, "m", 1);
	kvs_mem_set_hook(be, NULL, NULL);
	cr_assert_eq(be->ops->annotate(be, NULL, iname, &kv, 1), 0);
	kvs_mem_set_hook(be, on_call, &t);
	scattered(s, "m", 2, 2, NULL, KVS_MAP_COMPACT_NEVER);
	kvs_mem_set_hook(be, NULL, NULL);
	cr_assert_geq(t.hit, 1, "a batch over a late base did not touch its base table %s", t.name);
	expect(s, "m", 1, 1);
	expect(s, "m", 2, 2);
	kvs_close(s);
}

/* Out-of-line delta groups at the head of the table (minor compactions'
 * output: these scattered batches are all inline themselves). */
static uint32_t ool_groups(kvs_backend *be, kvs_store *s)
{
	kvs__manifest m;
	kvs__mapidx ix;
	uint32_t n = 0;

	memset(&ix, 0, sizeof(ix));
	read_index(&m, &ix, be, s, "m");
	for (uint32_t i = 0; i < ix.nruns && ix.runs[i].level == 0; i++)
		n += !(ix.runs[i].flags & KVS__MRUN_INLINE) &&
		     (i == 0 || ix.runs[i - 1].seq != ix.runs[i].seq);
	kvs__mapidx_clear(&ix);
	kvs__manifest_clear(&m);
	return n;
}

#define TIER_BATCHES 96
#define TIER_FIELDS 4

/* TIER_FIELDS scattered fields at generation g (every 500th from a
 * g-dependent start); *raw gets their bytes; last[] their generations. */
static void scattered_few(kvs_store *s, int g, uint64_t *raw, int *last)
{
	kvs_map_batch *b;
	char f[16], v[VLEN + 3];

	cr_assert_eq(kvs_map_batch_new(&b), 0);
	for (int k = 0; k < TIER_FIELDS; k++) {
		int i = (g * 131 + k * 500) % NFIELDS;
		snprintf(f, sizeof(f), "f%04d", i);
		v[0] = '"';
		value_of(v + 1, i, g);
		v[VLEN + 1] = '"';
		v[VLEN + 2] = '\0';
		cr_assert_eq(kvs_map_batch_put_json(b, f, strlen(f), v, strlen(v)), 0);
		*raw += strlen(f) + strlen(v);
		last[i] = g;
	}
	cr_assert_eq(kvs_map_commit(NULL, s, "m", b, NULL), 0, "commit: %s", kvs_error_last());
	kvs_map_batch_free(b);
}

/* Scattered batches on a big map under the automatic policy: minor
 * compactions merge the inline deltas out of line instead of rewriting
 * the base runs each gathering touches: the bytes written over the
 * batches, index rewrites included, were 8.8x the deltas' raw bytes, and
 * 16.3x when every gathering was merged into the base (the bound is 12x);
 * a point read by a fresh
 * reader fetches at most one run per out-of-line delta, a base run and the
 * base table, and the out-of-line deltas stay within their bound. */
Test(mapbase, scattered_batches_take_minor_compactions)
{
	kvs_backend *be, *rbe;
	kvs_store *s = open_mem(&be), *r;
	kvs_options ro = KVS_OPTIONS_INIT;
	kvs_map_read_options mro = KVS_MAP_READ_OPTIONS_INIT;
	kvs_mem_stats ms;
	uint64_t raw = 0;
	uint32_t most = 0;
	int *last = calloc(NFIELDS, sizeof(*last));

	/* inline deltas compact past 2 KiB: every third batch */
	cr_assert_eq(kvs__store_set_map_layout(s, 1024, 4096), 0);
	import_big(s, "m");
	cr_assert_eq(index_is_v4(be, s, "m"), 1);
	kvs_mem_reset_stats(be);
	for (int g = 1; g <= TIER_BATCHES; g++) {
		uint32_t og;
		scattered_few(s, g, &raw, last);
		og = ool_groups(be, s);
		cr_assert_leq(og, KVS__MAP_OOL_GROUPS_MAX);
		most = og > most ? og : most;
	}
	kvs_mem_get_stats(be, &ms);
	cr_log_info("%d batches, %llu raw bytes: wrote %llu bytes, at most %u out-of-line deltas",
	            TIER_BATCHES, (unsigned long long)raw, (unsigned long long)ms.bytes_written, most);
	cr_assert_gt(most, 1, "no minor compaction");
	cr_assert_lt(ms.bytes_written, 12 * raw, "%d scattered batches of %llu raw bytes wrote %llu",
	             TIER_BATCHES, (unsigned long long)raw, (unsigned long long)ms.bytes_written);
	for (int i = 0; i < NFIELDS; i++)
		if (last[i] || i % 97 == 0)
			expect(s, "m", i, last[i]);
	/* point reads: a fresh reader without a segment cache */
	ro.cache_bytes = UINT64_MAX;
	cr_assert_eq(kvs_backend_mem_clone(&rbe, be), 0);
	cr_assert_eq(kvs_open(&r, rbe, &ro), 0);
	for (int i = 0; i < NFIELDS; i += 37) {
		kvs_map_stats st;
		void *out = NULL;
		size_t n = 0;
		char f[16];
		memset(&st, 0, sizeof(st));
		mro.stats = &st;
		snprintf(f, sizeof(f), "f%04d", i);
		cr_assert_eq(kvs_map_get(&out, &n, NULL, NULL, r, "m", f, strlen(f), &mro), 0, "%s",
		             kvs_error_last());
		kvs_free(out);
		cr_assert_leq(st.segments_read, ool_groups(be, s) + 2, "read of %s fetched %llu segments",
		              f, (unsigned long long)st.segments_read);
	}
	kvs_close(r);
	kvs_close(s);
	free(last);
}

/* A watch with KVS_WATCH_FIELDS reports exactly the changed fields across
 * a minor compaction (the deltas merged out of line, tombstones kept) and
 * a major one (merged into the base), and nothing for either. */
Test(mapbase, watch_fields_across_a_minor_and_a_major_compaction)
{
	kvs_backend *wb, *rb;
	kvs_store *wst, *rst = NULL;
	kvs_watch_options wo = KVS_WATCH_OPTIONS_INIT;
	kvs_map_write_options co = KVS_MAP_WRITE_OPTIONS_INIT;
	kvs_watch *w = NULL;
	kvs_watch_event ev;
	const kvs_map_field_change *fc;
	char buf[512];
	size_t n;

	cr_assert_eq(fx_backend(&wb), 0, "%s", kvs_error_last());
	cr_assert_eq(fx_backend_peer(&rb, wb), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_open(&wst, wb, NULL), 0);
	/* inline deltas past 32 raw bytes trigger the policy; minor whenever
	 * the deltas are smaller than the base */
	cr_assert_eq(kvs__store_set_map_layout(wst, 1024, 64), 0);
	wst->map_minor_always = 1;
	cr_assert_eq(kvs_open(&rst, rb, NULL), 0, "%s", kvs_error_last());
	{
		kvs_object *o = kvs_object_new("unrelated-warm-up");
		cr_assert_eq(wb->ops->create(wb, NULL, o), 0);
		kvs_object_free(o);
	}
	import_big(wst, "m");
	wo.flags = KVS_WATCH_FIELDS | KVS_WATCH_VALUES;
	cr_assert_eq(kvs_watch_open(&w, rst, "m", &wo), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_watch_next(&ev, w, 5000), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_watch_fields(&fc, &n, w), 0);
	cr_assert_eq(n, NFIELDS);

	static const char *const kv1[] = { "f0100", "x", "f1900", "y" };
	small_batch(wst, kv1, 2, "f0500");
	cr_assert_eq(kvs_watch_next(&ev, w, 5000), 0, "%s", kvs_error_last());
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "C:f0100=x D:f0500=- C:f1900=y", "%s", buf);
	static const char *const kv2[] = { "f0200", "p" };
	small_batch(wst, kv2, 1, NULL);
	cr_assert_eq(kvs_watch_next(&ev, w, 5000), 0, "%s", kvs_error_last());
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "C:f0200=p", "%s", buf);

	/* the policy's compaction: a minor one */
	cr_assert_eq(kvs_map_compact(NULL, wst, "m", &co), 0, "%s", kvs_error_last());
	cr_assert_eq(wst->map_minors, 1, "no minor compaction");
	cr_assert_eq(ool_groups(wb, wst), 1);
	cr_assert_eq(kvs_watch_next(&ev, w, 5000), 0, "%s", kvs_error_last());
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "", "minor compaction: %s", buf);

	static const char *const kv3[] = { "f0100", "z", "f0500", "back" };
	small_batch(wst, kv3, 2, "f1999");
	cr_assert_eq(kvs_watch_next(&ev, w, 5000), 0, "%s", kvs_error_last());
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "C:f0100=z A:f0500=back D:f1999=-", "%s",
	                 buf);

	/* a forced compaction: a major one, every delta into the base */
	compact(wst);
	cr_assert_eq(wst->map_minors, 1);
	cr_assert_eq(ool_groups(wb, wst), 0);
	cr_assert_eq(kvs_watch_next(&ev, w, 5000), 0, "%s", kvs_error_last());
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "", "major compaction: %s", buf);

	static const char *const kv4[] = { "f0200", "q", "f0500", "again" };
	small_batch(wst, kv4, 2, "f1900");
	cr_assert_eq(kvs_watch_next(&ev, w, 5000), 0, "%s", kvs_error_last());
	cr_assert_str_eq(fields_of(buf, sizeof(buf), w), "C:f0200=q C:f0500=again D:f1900=-", "%s",
	                 buf);
	kvs_watch_close(w);
	kvs_close(wst);
	kvs_close(rst);
}
