/*
 * test_reads.c — suite "reads" (memory backend): every read path meets the
 * same damage and none returns a byte that was not verified. The paths are
 * kvs_get (whole buffer), kvs_get_stream (callback), kvs_get_fd (what the
 * CLI's get uses) and kvs_get_into (the caller's buffer); the damage: a flipped bit in a segment, a missing
 * segment, a manifest whose whole-value hash is wrong, a flipped bit in an
 * inline or chunked manifest, an inline value altered under a valid
 * manifest checksum, a flipped bit in an indirect manifest's body.
 *
 * A buffer get must return the error and no buffer. A streaming get may
 * deliver verified bytes before it meets the damage (kvsplit.h), so what it
 * delivered must be a prefix of the true value, never a wrong byte, and it
 * must return the error.
 *
 * Checked to fail: with get.c changed locally to let a chunk that fails its
 * XXH3-128 check through on the streaming path only (read_chunks: CK_HASH
 * treated as CK_OK when there is no whole-value buffer), the segment cases
 * fail for kvs_get_stream and kvs_get_fd on the delivered bytes (the end of
 * the get still reports the whole-value hash, which is why the suites that
 * only looked at return codes passed).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "support/fixture.h"
#include "internal.h" /* manifests: forge a bad hash, force indirect */

#define KIB 1024u
#define MIB (1024u * 1024u)

TestSuite(reads, .timeout = 120);

/* What a read path gave back. */
typedef struct got {
	uint8_t *p;
	size_t n, cap;
	int rc;
	char err[1024];
} got;

static int collect(void *ctx, const void *buf, size_t len)
{
	got *g = ctx;
	if (g->n + len > g->cap) {
		size_t c = g->cap ? g->cap : 64 * KIB;
		while (c < g->n + len)
			c *= 2;
		g->p = realloc(g->p, c);
		cr_assert_not_null(g->p);
		g->cap = c;
	}
	memcpy(g->p + g->n, buf, len);
	g->n += len;
	return 0;
}

static void via_get(got *g, kvs_store *s, const char *key)
{
	void *p = (void *)1;
	size_t n = 1;
	g->rc = kvs_get(&p, &n, NULL, s, key, NULL);
	if (g->rc == 0) {
		if (n)
			collect(g, p, n);
		kvs_free(p);
	} else {
		cr_assert_null(p, "kvs_get failed with a buffer");
		cr_assert_eq(n, 0, "kvs_get failed with a length");
	}
}

static void via_stream(got *g, kvs_store *s, const char *key)
{
	g->rc = kvs_get_stream(NULL, s, key, collect, g, NULL);
}

static void via_fd(got *g, kvs_store *s, const char *key)
{
	int fd = memfd_create("kvs-reads", 0);
	uint8_t buf[64 * 1024];
	ssize_t r;

	cr_assert_geq(fd, 0);
	g->rc = kvs_get_fd(NULL, s, key, fd, NULL);
	snprintf(g->err, sizeof(g->err), "%s", kvs_error_last());
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		collect(g, buf, (size_t)r);
	cr_assert_eq(r, 0);
	close(fd);
}

/* kvs_get_into: asked with no buffer first (KVS_ERANGE gives the length),
 * then into a buffer of exactly that length with a guard after it. */
static void via_into(got *g, kvs_store *s, const char *key)
{
	size_t need = 0, n = 0;
	uint8_t *buf;

	g->rc = kvs_get_into(&need, NULL, s, key, NULL, 0, NULL);
	if (g->rc != KVS_ERANGE) {
		cr_assert(g->rc != 0 || need == 0, "kvs_get_into: success with no buffer");
		return;
	}
	cr_assert_not_null(buf = malloc(need + 4096));
	memset(buf + need, 0x5a, 4096);
	g->rc = kvs_get_into(&n, NULL, s, key, buf, need, NULL);
	for (size_t i = 0; i < 4096; i++)
		cr_assert_eq(buf[need + i], 0x5a, "kvs_get_into wrote past the value (rc %d)", g->rc);
	if (g->rc == 0) {
		cr_assert_eq(n, need);
		if (n)
			collect(g, buf, n);
	}
	free(buf);
}

typedef struct path {
	const char *name;
	void (*read)(got *g, kvs_store *s, const char *key);
	int streams;   /* may deliver verified bytes before an error */
} path;

static const path paths[] = {
	{ "kvs_get", via_get, 0 },
	{ "kvs_get_stream", via_stream, 1 },
	{ "kvs_get_fd", via_fd, 1 },
	{ "kvs_get_into", via_into, 0 },
};
#define NPATHS (sizeof(paths) / sizeof(paths[0]))

static void read_by(got *g, const path *pa, kvs_store *s, const char *key)
{
	memset(g, 0, sizeof(*g));
	pa->read(g, s, key);
	if (!g->err[0])
		snprintf(g->err, sizeof(g->err), "%s", kvs_error_last());
}

/* The read must fail with `code` (detail containing `needle`, if any), and
 * whatever it delivered must be a prefix of the true value. */
static void expect_fails(const path *pa, kvs_store *s, const char *key, const uint8_t *want,
                         size_t n, int code, const char *needle, const char *what)
{
	got g;
	read_by(&g, pa, s, key);
	cr_assert_eq(g.rc, code, "%s, %s: got %s (%s), want %s", what, pa->name, kvs_strerror(g.rc),
	             g.err, kvs_strerror(code));
	if (!pa->streams)
		cr_assert_eq(g.n, 0, "%s, %s: bytes returned with an error", what, pa->name);
	cr_assert_leq(g.n, n, "%s, %s: %zu bytes delivered, the value has %zu", what, pa->name, g.n, n);
	cr_assert(g.n == 0 || memcmp(g.p, want, g.n) == 0,
	          "%s, %s: delivered bytes that are not the value's (an unverified chunk)", what,
	          pa->name);
	cr_assert(!needle || strstr(g.err, needle), "%s, %s: detail \"%s\" does not name %s", what,
	          pa->name, g.err, needle);
	free(g.p);
}

static void expect_exact(const path *pa, kvs_store *s, const char *key, const uint8_t *want,
                         size_t n, const char *what)
{
	got g;
	read_by(&g, pa, s, key);
	cr_assert_eq(g.rc, 0, "%s, %s: %s", what, pa->name, g.err);
	cr_assert(g.n == n && (n == 0 || memcmp(g.p, want, n) == 0), "%s, %s: wrong bytes", what,
	          pa->name);
	free(g.p);
}

static kvs_store *open_on(kvs_backend **bout)
{
	kvs_backend *b;
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_store *s;

	cr_assert_eq(kvs_backend_mem(&b, NULL), 0);
	o.segment_target = 128 * KIB;   /* several segments */
	o.cache_bytes = UINT64_MAX;     /* every read goes to the backend */
	o.concurrency = 2;              /* several fetch runs per get */
	cr_assert_eq(kvs_open(&s, b, &o), 0, "%s", kvs_error_last());
	*bout = b;
	return s;
}

static uint8_t *make(size_t n, int json, uint64_t seed)
{
	uint8_t *d = malloc(n ? n : 1);
	cr_assert(d);
	if (json)
		fx_json((char *)d, n, seed);
	else
		fx_random(d, n, seed);
	return d;
}

/* The index object of `key` and its decoded manifest. */
static kvs_object *index_of(kvs_backend *b, const char *key, kvs__manifest *m)
{
	char name[256];
	kvs_object *o = NULL;
	snprintf(name, sizeof(name), "kvs.default.i-%s", key);
	cr_assert_eq(b->ops->get(b, &o, name), 0, "%s", kvs_error_last());
	const kvs_blob *bl = kvs_object_data(o, "manifest");
	cr_assert_not_null(bl);
	if (m)
		cr_assert_eq(kvs__manifest_decode(m, bl->data, bl->len, "test"), 0, "%s",
		             kvs_error_last());
	return o;
}

/* Replace the index's manifest with the encoding of *m. */
static void rewrite_index(kvs_backend *b, kvs_object *o, const kvs__manifest *m)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	kvs_blob *bl = (kvs_blob *)kvs_object_data(o, "manifest");
	cr_assert_eq(kvs__manifest_encode(&buf, &len, m, 4 * MIB), 0, "%s", kvs_error_last());
	free(bl->data);
	bl->data = buf;
	bl->len = len;
	cr_assert_eq(b->ops->replace(b, NULL, o), 0, "%s", kvs_error_last());
}

static void seg_name(char out[256], const uint8_t addr[16])
{
	char hex[33];
	kvs__hex(hex, addr, 16);
	snprintf(out, 256, "kvs.default.s-%s", hex);
}

/*
 * One bit flipped in a chunk of every segment of the value, at the first,
 * second, middle and last byte of the entry: KVS_ECORRUPT naming the
 * segment on every path, and never a byte of the damaged chunk delivered.
 * Over JSON (lz4 chunks: most flips break decompression) and random bytes
 * (raw chunks: a flip decodes, only the hash catches it).
 */
static void segment_flips(int json)
{
	kvs_backend *b;
	kvs_store *s = open_on(&b);
	size_t n = json ? 2 * MIB : MIB;
	uint8_t *d = make(n, json, 31);
	kvs__manifest m;

	cr_assert_eq(kvs_put(NULL, s, "v", d, n, NULL), 0, "%s", kvs_error_last());
	kvs_object_free(index_of(b, "v", &m));
	cr_assert_gt(m.nsegs, 2, "%u segments: too few to be meaningful", m.nsegs);
	for (uint32_t i = 0; i < m.nsegs; i++) {
		char name[256], what[512];
		kvs_object *obj = NULL;
		seg_name(name, m.segs[i].addr);
		cr_assert_eq(b->ops->get(b, &obj, name), 0);
		for (size_t e = 0; e < obj->ndata; e += (obj->ndata > 3 ? obj->ndata / 3 : 1)) {
			size_t len = obj->data[e].len;
			size_t offs[] = { 0, 1, len / 2, len - 1 };
			for (size_t k = 0; k < 4; k++) {
				cr_assert_eq(kvs_mem_corrupt(b, name, obj->data[e].key, offs[k]), 0);
				snprintf(what, sizeof(what), "segment %u entry %zu offset %zu", i, e, offs[k]);
				for (size_t p = 0; p < NPATHS; p++)
					expect_fails(&paths[p], s, "v", d, n, KVS_ECORRUPT, name, what);
				cr_assert_eq(kvs_mem_corrupt(b, name, obj->data[e].key, offs[k]), 0);
			}
		}
		kvs_object_free(obj);
	}
	for (size_t p = 0; p < NPATHS; p++)
		expect_exact(&paths[p], s, "v", d, n, "repaired");
	kvs__manifest_clear(&m);
	free(d);
	kvs_close(s);
}

Test(reads, flipped_bit_in_an_lz4_chunk_is_ecorrupt_on_every_path) { segment_flips(1); }
Test(reads, flipped_bit_in_a_raw_chunk_is_ecorrupt_on_every_path) { segment_flips(0); }

/* Each segment in turn removed: KVS_ENOTFOUND naming it, on every path. */
Test(reads, missing_segment_is_enotfound_on_every_path)
{
	kvs_backend *b;
	kvs_store *s = open_on(&b);
	size_t n = MIB;
	uint8_t *d = make(n, 0, 61);
	kvs__manifest m;

	cr_assert_eq(kvs_put(NULL, s, "gone", d, n, NULL), 0);
	kvs_object_free(index_of(b, "gone", &m));
	cr_assert_gt(m.nsegs, 2);
	for (uint32_t i = 0; i < m.nsegs; i++) {
		char name[256], what[300];
		kvs_object *obj = NULL;
		seg_name(name, m.segs[i].addr);
		cr_assert_eq(b->ops->get(b, &obj, name), 0);
		cr_assert_eq(b->ops->remove(b, name, NULL, NULL), 0);
		snprintf(what, sizeof(what), "segment %u of %u removed", i, m.nsegs);
		for (size_t p = 0; p < NPATHS; p++)
			expect_fails(&paths[p], s, "gone", d, n, KVS_ENOTFOUND, name, what);
		kvs_object_set_rv(obj, "");
		cr_assert_eq(b->ops->create(b, NULL, obj), 0, "%s", kvs_error_last());
		kvs_object_free(obj);
	}
	for (size_t p = 0; p < NPATHS; p++)
		expect_exact(&paths[p], s, "gone", d, n, "restored");
	kvs__manifest_clear(&m);
	free(d);
	kvs_close(s);
}

/*
 * A manifest whose whole-value hash is wrong (re-encoded, so its checksum
 * holds): every chunk verifies, only the end of the get can tell. The error
 * must come on every path, chunked or inline.
 */
Test(reads, wrong_whole_value_hash_is_ecorrupt_on_every_path)
{
	kvs_backend *b;
	kvs_store *s = open_on(&b);
	size_t n = MIB, small = 10 * KIB;
	uint8_t *d = make(n, 1, 71);
	const char *keys[] = { "chunked", "inline" };
	size_t lens[] = { n, small };

	cr_assert_eq(kvs_put(NULL, s, "chunked", d, n, NULL), 0);
	cr_assert_eq(kvs_put(NULL, s, "inline", d, small, NULL), 0);
	for (int k = 0; k < 2; k++) {
		kvs__manifest m;
		kvs_object *o = index_of(b, keys[k], &m);
		cr_assert_eq(m.is_inline, k == 1);
		m.hash[7] ^= 0x10;
		rewrite_index(b, o, &m);
		for (size_t p = 0; p < NPATHS; p++)
			expect_fails(&paths[p], s, keys[k], d, lens[k], KVS_ECORRUPT, "XXH3-128", keys[k]);
		kvs__manifest_clear(&m);
		kvs_object_free(o);
	}
	free(d);
	kvs_close(s);
}

/* Bits flipped across an inline and a chunked manifest (the checksum, the
 * caps and the decode catch them): KVS_ECORRUPT, nothing delivered. */
Test(reads, flipped_bit_in_a_manifest_is_ecorrupt_on_every_path)
{
	kvs_backend *b;
	kvs_store *s = open_on(&b);
	size_t n = MIB, small = 20 * KIB;
	uint8_t *d = make(n, 1, 41);
	const char *keys[] = { "m", "i" }, *idx[] = { "kvs.default.i-m", "kvs.default.i-i" };
	size_t lens[] = { n, small };

	cr_assert_eq(kvs_put(NULL, s, "m", d, n, NULL), 0);
	cr_assert_eq(kvs_put(NULL, s, "i", d, small, NULL), 0);
	for (int k = 0; k < 2; k++) {
		kvs_object *o = index_of(b, keys[k], NULL);
		size_t len = kvs_object_data(o, "manifest")->len;
		kvs_object_free(o);
		for (size_t off = 0; off < len; off += 1 + len / 40) {
			char what[64];
			snprintf(what, sizeof(what), "%s manifest, offset %zu", keys[k], off);
			cr_assert_eq(kvs_mem_corrupt(b, idx[k], "manifest", off), 0);
			for (size_t p = 0; p < NPATHS; p++) {
				expect_fails(&paths[p], s, keys[k], d, lens[k], KVS_ECORRUPT, NULL, what);
			}
			cr_assert_eq(kvs_mem_corrupt(b, idx[k], "manifest", off), 0);
		}
		for (size_t p = 0; p < NPATHS; p++)
			expect_exact(&paths[p], s, keys[k], d, lens[k], "repaired");
	}
	free(d);
	kvs_close(s);
}

/* An inline value altered under a valid manifest checksum (the manifest
 * re-encoded around the damaged blob): KVS_ECORRUPT, nothing delivered. */
Test(reads, altered_inline_value_is_ecorrupt_on_every_path)
{
	kvs_backend *b;
	kvs_store *s = open_on(&b);
	const size_t n = 30 * KIB;
	uint8_t *d[2] = { make(n, 1, 81), make(n, 0, 82) };   /* lz4 blob, raw blob */

	for (int k = 0; k < 2; k++) {
		char key[8];
		snprintf(key, sizeof(key), "in%c", k ? '1' : '0');
		cr_assert_eq(kvs_put(NULL, s, key, d[k], n, NULL), 0);
		kvs__manifest m;
		kvs_object *o = index_of(b, key, &m);
		cr_assert(m.is_inline);
		uint32_t offs[] = { 1, m.inline_len / 2, m.inline_len - 1 };
		for (int j = 0; j < 3; j++) {
			char what[64];
			m.inline_blob[offs[j]] ^= 0x04;
			rewrite_index(b, o, &m);
			kvs_object_free(o);
			o = index_of(b, key, NULL);   /* its new resourceVersion */
			snprintf(what, sizeof(what), "%s blob byte %u", key, offs[j]);
			for (size_t p = 0; p < NPATHS; p++)
				expect_fails(&paths[p], s, key, d[k], n, KVS_ECORRUPT, NULL, what);
			m.inline_blob[offs[j]] ^= 0x04;
		}
		rewrite_index(b, o, &m);
		for (size_t p = 0; p < NPATHS; p++)
			expect_exact(&paths[p], s, key, d[k], n, "restored");
		kvs__manifest_clear(&m);
		kvs_object_free(o);
	}
	free(d[0]);
	free(d[1]);
	kvs_close(s);
}

/* An indirect manifest (the chunk list stored in segments): a bit flipped
 * in a segment of its body is KVS_ECORRUPT naming it, on every path. */
Test(reads, flipped_bit_in_an_indirect_manifest_body_is_ecorrupt_on_every_path)
{
	kvs_backend *b;
	kvs_store *s = open_on(&b);
	size_t n = 4 * MIB;   /* ~64 chunks: a chunk list over 1 KiB */
	uint8_t *d = make(n, 0, 91);
	kvs__manifest m;

	cr_assert_eq(kvs__store_set_manifest_max(s, 1024), 0);
	cr_assert_eq(kvs_put(NULL, s, "big", d, n, NULL), 0, "%s", kvs_error_last());
	kvs_object_free(index_of(b, "big", &m));
	cr_assert_eq(m.kind, KVS__MF_INDIRECT);
	for (uint32_t i = 0; i < m.nsegs; i++) {
		char name[256], what[300];
		kvs_object *obj = NULL;
		seg_name(name, m.segs[i].addr);
		cr_assert_eq(b->ops->get(b, &obj, name), 0);
		for (size_t e = 0; e < obj->ndata; e++) {
			size_t offs[] = { 1, obj->data[e].len / 2 };
			for (size_t k = 0; k < 2; k++) {
				cr_assert_eq(kvs_mem_corrupt(b, name, obj->data[e].key, offs[k]), 0);
				snprintf(what, sizeof(what), "body segment %u entry %zu offset %zu", i, e,
				         offs[k]);
				for (size_t p = 0; p < NPATHS; p++) {
					expect_fails(&paths[p], s, "big", d, n, KVS_ECORRUPT, name, what);
				}
				cr_assert_eq(kvs_mem_corrupt(b, name, obj->data[e].key, offs[k]), 0);
			}
		}
		kvs_object_free(obj);
	}
	for (size_t p = 0; p < NPATHS; p++)
		expect_exact(&paths[p], s, "big", d, n, "repaired");
	kvs__manifest_clear(&m);
	free(d);
	kvs_close(s);
}
