/*
 * roundtrip_fuzzer.c — what is put is what is got, through the whole store
 * on the in-memory backend, with chunker, inline and segment settings small
 * enough that a few KiB of input make many chunks and segments.
 *
 * Input: byte 0 picks the mode and settings, then
 *
 *   mode 0 (blob): two values separated by the first 0xff byte. Put the
 *      first, read it back (kvs_get and kvs_get_stream) equal; put the
 *      second over it, read it back equal; the version moved; fsck clean.
 *   mode 1 (map): a batch of operations, each `op field-len field value-len
 *      value` (one byte each length): put or delete. The harness keeps the
 *      expected map (last operation on a field wins, as documented) and
 *      after the commit every field the batch named reads back as expected.
 *      A second commit of the same batch leaves the same contents.
 *
 * Any failure of the store on valid input aborts: the in-memory backend
 * never fails on its own.
 */
#include <stdlib.h>
#include <string.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "internal.h"

#include <stdio.h>

/* A violated property: say where and what the library said, then abort. */
#define FAIL() fail(__LINE__)
static void fail(int line)
{
	fprintf(stderr, "roundtrip_fuzzer.c:%d: property violated (last error: %s)\n", line,
	        kvs_error_last());
	abort();
}

static kvs_store *open_store(uint8_t sel)
{
	kvs_backend *be = NULL;
	kvs_store *s = NULL;
	kvs_options o = KVS_OPTIONS_INIT;
	static const uint32_t inl[] = { 1, 16, 100, 1000 };

	o.chunk_min = 64;
	o.chunk_avg = (sel & 1) ? 256 : 512;
	o.chunk_max = o.chunk_avg * 4;
	o.inline_max = inl[(sel >> 1) & 3];
	o.segment_target = (sel & 8) ? 1024 : 4096;
	o.workers = (sel & 16) ? 2 : 1;
	o.cache_bytes = (sel & 32) ? KVS_CACHE_OFF : 0;
	if (kvs_backend_mem(&be, NULL) != 0)
		FAIL();
	if (kvs_open(&s, be, &o) != 0)
		FAIL();
	return s;
}

struct sink {
	const uint8_t *want;
	size_t len, off;
};

static int sink_write(void *ctx, const void *buf, size_t len)
{
	struct sink *k = ctx;

	if (len > k->len - k->off || memcmp(k->want + k->off, buf, len) != 0)
		FAIL();
	k->off += len;
	return 0;
}

static void check_value(kvs_store *s, const char *key, const uint8_t *want, size_t len,
                        const char *ver)
{
	void *got = NULL;
	size_t glen = 0;
	kvs_ver v, sv;
	struct sink k = { want, len, 0 };

	if (kvs_get(&got, &glen, &v, s, key, NULL) != 0 || !got || glen != len ||
	    (len && memcmp(got, want, len) != 0) || strcmp(v.str, ver) != 0)
		FAIL();
	kvs_free(got);
	if (kvs_get_stream(&sv, s, key, sink_write, &k, NULL) != 0 || k.off != len ||
	    strcmp(sv.str, ver) != 0)
		FAIL();
}

static void on_problem(void *ctx, const kvs_fsck_problem *p)
{
	(void)ctx;
	if (p->kind != KVS_FSCK_ORPHAN)
		FAIL();   /* overwritten values leave orphans, nothing else */
}

static void fsck_clean(kvs_store *s)
{
	kvs_fsck_report r;
	kvs_fsck_options fo = KVS_FSCK_OPTIONS_INIT;

	fo.on_problem = on_problem;
	if (kvs_fsck(&r, s, &fo) != 0 || r.problems != 0)
		FAIL();
}

static void blob(kvs_store *s, const uint8_t *p, size_t n)
{
	const uint8_t *sep = memchr(p, 0xff, n);
	size_t la = sep ? (size_t)(sep - p) : n;
	const uint8_t *b = sep ? sep + 1 : p;
	size_t lb = sep ? n - la - 1 : n / 2;
	kvs_ver va, vb;

	if (kvs_put(&va, s, "k", p, la, NULL) != 0)
		FAIL();
	check_value(s, "k", p, la, va.str);
	if (kvs_put(&vb, s, "k", b, lb, NULL) != 0 || strcmp(va.str, vb.str) == 0)
		FAIL();
	check_value(s, "k", b, lb, vb.str);
	fsck_clean(s);
}

/* The expected map: fields the batch named, last operation wins. */
struct fop {
	const uint8_t *f, *v;
	size_t fl, vl;
	int del;
};

static int same_field(const struct fop *a, const struct fop *b)
{
	return a->fl == b->fl && (a->fl == 0 || memcmp(a->f, b->f, a->fl) == 0);
}

static void check_map(kvs_store *s, const struct fop *ops, size_t nops)
{
	for (size_t i = 0; i < nops; i++) {
		const struct fop *last = &ops[i];
		void *got = NULL;
		size_t glen = 0;
		int rc;

		for (size_t j = i + 1; j < nops; j++)
			if (same_field(&ops[j], &ops[i]))
				last = &ops[j];
		rc = kvs_map_get(&got, &glen, NULL, NULL, s, "m", ops[i].f, ops[i].fl, NULL);
		if (last->del) {
			if (rc != KVS_ENOTFOUND)
				FAIL();
		} else if (rc != 0 || glen != last->vl || (glen && memcmp(got, last->v, glen) != 0)) {
			FAIL();
		}
		kvs_free(got);
	}
}

static void map(kvs_store *s, const uint8_t *p, size_t n)
{
	struct fop ops[64];
	size_t nops = 0, off = 0;
	kvs_map_batch *b = NULL;
	kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
	uint64_t count = 0, live = 0;

	if (kvs__store_set_map_layout(s, 256, (n && (p[0] & 1)) ? 1 : 0) != 0 ||
	    kvs_map_batch_new(&b) != 0)
		FAIL();
	while (nops < 64 && off + 2 <= n) {
		struct fop *o = &ops[nops];
		o->del = p[off] & 1;
		o->fl = p[off + 1] % 24 + 1;   /* fields are 1..KVS_MAP_FIELD_MAX bytes */
		off += 2;
		if (o->fl > n - off)
			break;
		o->f = p + off;
		off += o->fl;
		o->vl = 0;
		o->v = p + off;
		if (!o->del) {
			if (off >= n)
				break;
			o->vl = p[off++];
			if (o->vl > n - off)
				o->vl = n - off;
			o->v = p + off;
			off += o->vl;
		}
		if ((o->del ? kvs_map_batch_delete(b, o->f, o->fl)
		            : kvs_map_batch_put(b, o->f, o->fl, o->v, o->vl)) != 0)
			FAIL();
		nops++;
	}
	if (!nops) {
		kvs_map_batch_free(b);
		return;
	}
	wo.compact = (n && (p[0] & 2)) ? KVS_MAP_COMPACT_FORCE : KVS_MAP_COMPACT_AUTO;
	if (kvs_map_commit(NULL, s, "m", b, &wo) != 0)
		FAIL();
	check_map(s, ops, nops);
	/* again on top of itself: the same contents */
	if (kvs_map_commit(NULL, s, "m", b, NULL) != 0)
		FAIL();
	check_map(s, ops, nops);
	/* the count is the number of distinct fields whose last operation is a put */
	for (size_t i = 0; i < nops; i++) {
		const struct fop *last = &ops[i];
		int first = 1;
		for (size_t j = 0; j < i; j++)
			if (same_field(&ops[j], &ops[i]))
				first = 0;
		if (!first)
			continue;
		for (size_t j = i + 1; j < nops; j++)
			if (same_field(&ops[j], &ops[i]))
				last = &ops[j];
		live += !last->del;
	}
	if (kvs_map_count(&count, NULL, s, "m", NULL) != 0 || count != live)
		FAIL();
	fsck_clean(s);
	kvs_map_batch_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kvs_store *s;

	if (size < 1 || size > 64 * 1024)
		return 0;
	s = open_store(data[0] >> 1);
	if (data[0] & 1)
		map(s, data + 1, size - 1);
	else
		blob(s, data + 1, size - 1);
	kvs_close(s);
	return 0;
}
