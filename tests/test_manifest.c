/*
 * test_manifest.c — suite "manifest": encoding round trips, the strict
 * decoder's refusals, and values whose manifest goes indirect.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "codec.h"
#include "internal.h"
#include "manifest.h"
#include "support/fixture.h"

static void sample(kvs__manifest *m, uint32_t nchunks, uint32_t nsegs)
{
	memset(m, 0, sizeof(*m));
	m->kind = KVS__MF_BLOB;
	m->key = strdup("some/key");
	m->key_len = 8;
	m->generation = 3;
	m->codec = 1;
	m->cdc_min = 16384;
	m->cdc_avg = 65536;
	m->cdc_max = 262144;
	m->nchunks = nchunks;
	m->nsegs = nsegs;
	m->chunks = calloc(nchunks, sizeof(*m->chunks));
	m->segs = calloc(nsegs, sizeof(*m->segs));
	for (uint32_t i = 0; i < nsegs; i++) {
		m->segs[i].addr[0] = (uint8_t)i;
		m->segs[i].bytes = 500000;
		m->segs[i].nchunks = 10;
	}
	for (uint32_t i = 0; i < nchunks; i++) {
		m->chunks[i].addr[1] = (uint8_t)i;
		m->chunks[i].seg = i % nsegs;
		m->chunks[i].raw_len = 60000 + i;
		m->chunks[i].stored_len = 9000 + i;
		m->length += 60000 + i;
	}
	m->hash[5] = 7;
}

Test(manifest, encode_decode_roundtrip_preserves_every_field)
{
	kvs__manifest m, d;
	uint8_t *buf;
	size_t len;

	sample(&m, 50, 4);
	cr_assert_eq(kvs__manifest_encode(&buf, &len, &m, 1 << 20), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs__manifest_decode(&d, buf, len, "test"), 0, "%s", kvs_error_last());
	cr_assert_eq(d.kind, KVS__MF_BLOB);
	cr_assert_eq(d.key_len, 8);
	cr_assert_str_eq(d.key, "some/key");
	cr_assert_eq(d.length, m.length);
	cr_assert_eq(d.generation, 3);
	cr_assert_eq(d.cdc_avg, 65536);
	cr_assert(memcmp(d.hash, m.hash, 16) == 0);
	cr_assert_eq(d.nchunks, 50);
	cr_assert_eq(d.nsegs, 4);
	cr_assert(memcmp(d.chunks, m.chunks, 50 * sizeof(*m.chunks)) == 0);
	cr_assert(memcmp(d.segs, m.segs, 4 * sizeof(*m.segs)) == 0);
	kvs__manifest_clear(&d);
	kvs__manifest_clear(&m);
	free(buf);
}

Test(manifest, every_flipped_bit_is_rejected)
{
	kvs__manifest m, d;
	uint8_t *buf;
	size_t len;

	sample(&m, 5, 2);
	cr_assert_eq(kvs__manifest_encode(&buf, &len, &m, 1 << 20), 0);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			buf[i] ^= (uint8_t)(1 << bit);
			int rc = kvs__manifest_decode(&d, buf, len, "test");
			cr_assert_eq(rc, KVS_ECORRUPT, "byte %zu bit %d: %d", i, bit, rc);
			kvs__manifest_clear(&d);
			buf[i] ^= (uint8_t)(1 << bit);
		}
	}
	kvs__manifest_clear(&m);
	free(buf);
}

Test(manifest, every_truncation_is_rejected)
{
	kvs__manifest m, d;
	uint8_t *buf;
	size_t len;

	sample(&m, 5, 2);
	cr_assert_eq(kvs__manifest_encode(&buf, &len, &m, 1 << 20), 0);
	for (size_t n = 0; n < len; n++) {
		cr_assert_eq(kvs__manifest_decode(&d, buf, n, "test"), KVS_ECORRUPT, "len %zu", n);
		kvs__manifest_clear(&d);
	}
	kvs__manifest_clear(&m);
	free(buf);
}

Test(manifest, encoder_refuses_inconsistent_manifest)
{
	kvs__manifest m;
	uint8_t *buf;
	size_t len;

	sample(&m, 5, 2);
	m.length += 1;    /* chunk sizes no longer add up */
	cr_assert_lt(kvs__manifest_encode(&buf, &len, &m, 1 << 20), 0);
	m.length -= 1;
	m.chunks[2].seg = 9; /* out of range */
	cr_assert_lt(kvs__manifest_encode(&buf, &len, &m, 1 << 20), 0);
	kvs__manifest_clear(&m);
}

Test(manifest, encoder_reports_etoobig_over_cap)
{
	kvs__manifest m;
	uint8_t *buf;
	size_t len;

	sample(&m, 200, 2);
	cr_assert_eq(kvs__manifest_encode(&buf, &len, &m, 1000), KVS_ETOOBIG);
	kvs__manifest_clear(&m);
}

/* Build a manifest by hand with msgpack to test version/kind handling. */
#include <msgpack.h>
#include <xxhash.h>
static size_t handmade(uint8_t *out, unsigned version, const char *kind)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint64_t h;
	size_t n;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str(&pk, 1); msgpack_pack_str_body(&pk, "v", 1);
	msgpack_pack_uint32(&pk, version);
	msgpack_pack_str(&pk, 4); msgpack_pack_str_body(&pk, "kind", 4);
	msgpack_pack_str(&pk, strlen(kind)); msgpack_pack_str_body(&pk, kind, strlen(kind));
	h = XXH3_64bits(sb.data, sb.size);
	memcpy(out, sb.data, sb.size);
	n = sb.size;
	for (int i = 0; i < 8; i++)
		out[n + (size_t)i] = (uint8_t)(h >> (56 - 8 * i));
	msgpack_sbuffer_destroy(&sb);
	return n + 8;
}

Test(manifest, unknown_format_version_is_eunsupported)
{
	uint8_t buf[64];
	kvs__manifest d;
	size_t n = handmade(buf, 5, "blob");   /* 4 is the map's base table version */
	cr_assert_eq(kvs__manifest_decode(&d, buf, n, "test"), KVS_EUNSUPPORTED);
	kvs__manifest_clear(&d);
}

/* Format version 2 only adds kind map: a version 2 blob is corrupt. */
Test(manifest, version_2_is_only_for_maps)
{
	uint8_t buf[64];
	kvs__manifest d;
	size_t n = handmade(buf, 2, "blob");
	cr_assert_eq(kvs__manifest_decode(&d, buf, n, "test"), KVS_ECORRUPT);
	kvs__manifest_clear(&d);
	n = handmade(buf, 4, "blob");   /* and so is version 4 (format.md §5.5) */
	cr_assert_eq(kvs__manifest_decode(&d, buf, n, "test"), KVS_ECORRUPT);
	kvs__manifest_clear(&d);
}

/* Kind map exists from format version 2 on (format.md §5): a version 1
 * manifest of kind map is corrupt, and one without its fields too. */
Test(manifest, map_kind_needs_version_2_and_its_fields)
{
	uint8_t buf[64];
	kvs__manifest d;
	size_t n = handmade(buf, 1, "map");
	int rc = kvs__manifest_decode(&d, buf, n, "test");
	cr_assert_eq(rc, KVS_ECORRUPT, "%d %s", rc, kvs_error_last());
	kvs__manifest_clear(&d);
	n = handmade(buf, 2, "map");
	rc = kvs__manifest_decode(&d, buf, n, "test");
	cr_assert_eq(rc, KVS_ECORRUPT, "%d %s", rc, kvs_error_last());
	kvs__manifest_clear(&d);
}

Test(manifest, huge_declared_container_is_rejected_without_allocating)
{
	/* an array of 2^32-1 elements, with a valid trailer */
	uint8_t buf[16] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	kvs__manifest d;
	uint64_t h = XXH3_64bits(buf, 5);
	for (int i = 0; i < 8; i++)
		buf[5 + i] = (uint8_t)(h >> (56 - 8 * i));
	cr_assert_eq(kvs__manifest_decode(&d, buf, 13, "test"), KVS_ECORRUPT);
	kvs__manifest_clear(&d);
}

Test(manifest, inline_manifest_roundtrips)
{
	kvs__manifest m, d;
	uint8_t *buf;
	size_t len;
	const char *v = "hello hello hello hello";

	memset(&m, 0, sizeof(m));
	m.kind = KVS__MF_BLOB;
	m.key = strdup("k");
	m.key_len = 1;
	m.codec = 1;
	m.cdc_min = 16384; m.cdc_avg = 65536; m.cdc_max = 262144;
	m.length = strlen(v);
	m.is_inline = 1;
	m.inline_blob = malloc(kvs__blob_bound(m.length));
	m.inline_len = (uint32_t)kvs__blob_encode(m.inline_blob, kvs__blob_bound(m.length),
	                                          (const uint8_t *)v, m.length, 1);
	cr_assert_eq(kvs__manifest_encode(&buf, &len, &m, 4096), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs__manifest_decode(&d, buf, len, "t"), 0, "%s", kvs_error_last());
	cr_assert_eq(d.is_inline, 1);
	cr_assert_eq(d.inline_len, m.inline_len);
	cr_assert(memcmp(d.inline_blob, m.inline_blob, m.inline_len) == 0);
	kvs__manifest_clear(&d);
	kvs__manifest_clear(&m);
	free(buf);
}

Test(manifest, value_with_indirect_manifest_roundtrips_and_edits)
{
	kvs_backend *b;
	kvs_store *s;
	kvs_options o = KVS_OPTIONS_INIT;
	size_t n = 24u << 20;
	uint8_t *d = malloc(n);
	void *p;
	size_t pl;
	kvs_stat st;

	fx_json((char *)d, n, 99);
	cr_assert_eq(kvs_backend_mem(&b, NULL), 0);
	o.chunk_min = 1024; o.chunk_avg = 4096; o.chunk_max = 16384;  /* many chunks */
	cr_assert_eq(kvs_open(&s, b, &o), 0);
	cr_assert_eq(kvs__store_set_manifest_max(s, 16 * 1024), 0);
	cr_assert_eq(kvs_put(NULL, s, "ind", d, n, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_stat_key(&st, s, "ind", NULL), 0);
	cr_assert_lt(st.index_bytes, 16 * 1024);
	cr_assert_gt(st.chunks, 16 * 1024 / 28, "the chunk table would not fit: must be indirect");
	cr_assert_eq(kvs_get(&p, &pl, NULL, s, "ind", NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(pl, n);
	cr_assert(memcmp(p, d, n) == 0);
	kvs_free(p);
	/* an edit reuses chunks through the indirect base */
	kvs_put_stats ps;
	kvs_put_options po = KVS_PUT_OPTIONS_INIT;
	po.stats = &ps;
	memcpy(d + n / 3, "changed!", 8);
	cr_assert_eq(kvs_put(NULL, s, "ind", d, n, &po), 0, "%s", kvs_error_last());
	cr_assert_lt(ps.bytes_written, ps.stored_bytes / 5);
	cr_assert_eq(kvs_get(&p, &pl, NULL, s, "ind", NULL), 0, "%s", kvs_error_last());
	cr_assert(pl == n && memcmp(p, d, n) == 0);
	kvs_free(p);
	free(d);
	kvs_close(s);
}

/* ---- format version 3: history fields (docs/format.md §6) ----------------- */

Test(manifest, version_3_roundtrips_time_added_and_history)
{
	kvs__manifest m, d;
	uint8_t *buf, tab[2 * 72];
	size_t len;

	sample(&m, 5, 2);
	memset(tab, 0, sizeof(tab));
	kvs__put_be64(tab, 2);
	kvs__put_be64(tab + 72, 1);
	m.v3 = 1;
	m.time_ms = 1700000000123ull;
	m.added = 4242;
	m.hist = malloc(sizeof(tab));
	memcpy(m.hist, tab, sizeof(tab));
	m.hist_len = sizeof(tab);
	cr_assert_eq(kvs__manifest_encode(&buf, &len, &m, 1 << 20), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs__manifest_decode(&d, buf, len, "test"), 0, "%s", kvs_error_last());
	cr_assert(d.v3);
	cr_assert_eq(d.time_ms, 1700000000123ull);
	cr_assert_eq(d.added, 4242);
	cr_assert_eq(d.hist_len, sizeof(tab));
	cr_assert(memcmp(d.hist, tab, sizeof(tab)) == 0);
	cr_assert_eq(d.nchunks, 5);
	kvs__manifest_clear(&d);
	free(buf);
	/* without history fields the encoding stays format version 1 */
	free(m.hist);
	m.hist = NULL;
	m.hist_len = 0;
	m.v3 = 0;
	m.time_ms = m.added = 0;
	cr_assert_eq(kvs__manifest_encode(&buf, &len, &m, 1 << 20), 0);
	cr_assert_eq(kvs__manifest_decode(&d, buf, len, "test"), 0);
	cr_assert(!d.v3);
	cr_assert_eq(d.hist_len, 0);
	kvs__manifest_clear(&d);
	kvs__manifest_clear(&m);
	free(buf);
}

/* A history table over its cap does not make the value unreadable: the
 * manifest decodes, and the table is marked bad for history.c to refuse. */
Test(manifest, oversized_history_table_leaves_the_value_readable)
{
	kvs__manifest m, d;
	uint8_t *buf;
	size_t len;

	sample(&m, 3, 1);
	m.v3 = 1;
	m.hist_len = KVS__MF_HIST_MAX;
	m.hist = calloc(1, m.hist_len);
	cr_assert_eq(kvs__manifest_encode(&buf, &len, &m, 1 << 20), 0, "%s", kvs_error_last());
	free(buf);
	free(m.hist);
	m.hist_len = KVS__MF_HIST_MAX + 72;
	m.hist = calloc(1, m.hist_len);
	cr_assert_eq(kvs__manifest_encode(&buf, &len, &m, 1 << 20), KVS_ERROR,
	             "the encoder refuses a table over the cap");
	/* a hostile writer's oversized table, encoded by hand: cap it at decode */
	m.hist_len = KVS__MF_HIST_MAX;
	cr_assert_eq(kvs__manifest_encode(&buf, &len, &m, 1 << 20), 0);
	{
		/* grow the bin in place: msgpack bin16 length, then fix the trailer */
		uint8_t *big = malloc(len + 72);
		size_t body = len - 8, at = 0;
		for (size_t i = 0; i + 3 < body; i++)
			if (buf[i] == 0xc5 && kvs__get_be16(buf + i + 1) == KVS__MF_HIST_MAX)
				at = i;
		cr_assert_neq(at, 0, "hist bin not found");
		memcpy(big, buf, at);
		big[at] = 0xc5;
		kvs__put_be16(big + at + 1, KVS__MF_HIST_MAX + 72);
		memset(big + at + 3, 0, KVS__MF_HIST_MAX + 72);
		memcpy(big + at + 3 + KVS__MF_HIST_MAX + 72, buf + at + 3 + KVS__MF_HIST_MAX,
		       body - at - 3 - KVS__MF_HIST_MAX);
		body += 72;
		kvs__put_be64(big + body, XXH3_64bits(big, body));
		cr_assert_eq(kvs__manifest_decode(&d, big, body + 8, "test"), 0, "%s", kvs_error_last());
		cr_assert(d.hist_bad);
		cr_assert_eq(d.hist_len, 0);
		cr_assert_eq(d.nchunks, 3);
		kvs__manifest_clear(&d);
		free(big);
	}
	free(buf);
	kvs__manifest_clear(&m);
}

Test(manifest, history_fields_need_version_3_and_no_map)
{
	kvs__manifest m;
	uint8_t *buf = NULL;
	size_t len;

	sample(&m, 3, 1);
	m.added = 1;   /* a version 3 field in a version 1 manifest */
	cr_assert_eq(kvs__manifest_encode(&buf, &len, &m, 1 << 20), KVS_ERROR);
	kvs__manifest_clear(&m);
}
