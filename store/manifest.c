/*
 * manifest.c — encode and strictly decode manifests (docs/format.md
 * "Manifest").
 *
 * Encoding goes through msgpack-c's packer. Decoding first checks the XXH3-64
 * trailer, then runs a small pre-scan of the top-level map that admits only
 * scalar values (integers, strings, binaries): msgpack-c allocates the
 * storage of an array or map from its *declared* count before reading any
 * element, so a 5-byte input could otherwise make it allocate gigabytes. Only
 * then does msgpack_unpack_next build the object, which we walk field by
 * field with caps on every count and size. The two big tables (chunks,
 * segments) are binaries of fixed-width big-endian records: compact, and no
 * per-element allocation when decoding.
 */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include "base/hash.h"

#include "chunker.h"
#include "codec.h"
#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "manifest.h"
#include "names.h"

#define TRAILER 8u
#define MAX_FIELDS 32u
#define INLINE_MAX_RAW (1u << 20)  /* an inline value never exceeds an object */
#define SEG_BYTES_MAX (1ull << 31)

void kvs__manifest_clear(kvs__manifest *m)
{
	if (!m)
		return;
	free(m->key);
	free(m->inline_blob);
	free(m->segs);
	free(m->chunks);
	free(m->runtab);
	free(m->hist);
	memset(m, 0, sizeof(*m));
}

/* ---- checks shared by encoder and decoder -------------------------------- */

/* check()'s reason when it could not allocate: not a property of the
 * manifest, so callers report KVS_ENOMEM for it. */
static const char check_oom[] = "out of memory";

/* Every entry of the segment table within its bounds. */
static int segs_ok(const kvs__manifest *m)
{
	for (uint32_t i = 0; i < m->nsegs; i++) {
		const kvs__seg_desc *s = &m->segs[i];
		if (s->nchunks == 0 || s->nchunks > KVS__MF_MAX_CHUNKS || s->bytes < s->nchunks ||
		    s->bytes > SEG_BYTES_MAX)
			return 0;
	}
	return 1;
}

/* The map kind (format.md §5): the run table is checked by mapindex.c; here
 * only its envelope and the segment table. */
static const char *check_map(const kvs__manifest *m)
{
	if (m->codec != 1)
		return "codec";
	if (m->is_inline || m->nchunks || m->chunks)
		return "map manifest with chunks or an inline value";
	if (m->nsegs > KVS__MF_MAX_SEGS)
		return "more than 2^20 segments";
	if (!segs_ok(m))
		return "segment entry out of range";
	if (m->runtab_raw < 4 || m->runtab_raw > KVS__MF_RUNTAB_MAX)
		return "run table size out of range";
	if (!m->runtab || m->runtab_len < 1 || m->runtab_len > kvs__blob_bound(m->runtab_raw))
		return "run table blob size";
	return NULL;
}

/* Everything about a manifest that must hold, whichever side we are on.
 * Returns a static reason (check_oom if out of memory) or NULL. */
static const char *check(const kvs__manifest *m)
{
	kvs__cdc cdc;
	uint64_t sum = 0;
	uint8_t *used = NULL;

	if (m->kind != KVS__MF_BLOB && m->kind != KVS__MF_INDIRECT && m->kind != KVS__MF_MAP)
		return "unknown kind";
	if (!m->key || m->key_len == 0 || m->key_len > KVS_KEY_MAX ||
	    kvs__key_check(m->key, m->key_len) < 0)
		return "bad key";
	if (m->kind == KVS__MF_MAP)
		return m->v3 || m->hist ? "history fields in a map manifest" : check_map(m);
	if (!m->v3 && (m->hist || m->hist_len || m->time_ms || m->added))
		return "history fields in a format version 1 manifest";
	if (m->hist_len > KVS__MF_HIST_MAX || (m->hist_len && !m->hist))
		return "history table over its cap";
	if (m->length > KVS__MF_MAX_LENGTH)
		return "length over 2^40";
	if (m->codec != 1)
		return "codec";
	if (kvs__cdc_init(&cdc, m->cdc_min, m->cdc_avg, m->cdc_max) < 0)
		return "bad chunker parameters";
	if (m->is_inline) {
		if (m->kind != KVS__MF_BLOB)
			return "inline indirect manifest";
		if (m->length > INLINE_MAX_RAW)
			return "inline value over 1 MiB";
		if (m->inline_len < 1 || m->inline_len > kvs__blob_bound(m->length))
			return "inline blob size";
		if (m->nsegs || m->nchunks)
			return "inline manifest with chunks";
		return NULL;
	}
	if (m->nchunks > KVS__MF_MAX_CHUNKS)
		return "more than 2^22 chunks";
	if (m->nsegs > KVS__MF_MAX_SEGS)
		return "more than 2^20 segments";
	if (m->nchunks == 0 || m->nsegs == 0)
		return "chunked manifest without chunks";
	if (m->kind == KVS__MF_INDIRECT) {
		if (m->body_len == 0 || m->body_len > KVS__MF_MAX_ENCODED)
			return "indirect body length";
		if (m->v_chunks == 0 || m->v_chunks > KVS__MF_MAX_CHUNKS ||
		    m->v_segs == 0 || m->v_segs > KVS__MF_MAX_SEGS)
			return "indirect summary";
	}
	if (!segs_ok(m))
		return "segment entry out of range";
	used = calloc(m->nsegs, 1);
	if (!used)
		return check_oom;
	for (uint32_t i = 0; i < m->nchunks; i++) {
		const kvs__chunk_ref *c = &m->chunks[i];
		if (c->seg >= m->nsegs || c->raw_len == 0 || c->raw_len > m->cdc_max ||
		    c->stored_len == 0 || c->stored_len > kvs__blob_bound(c->raw_len) ||
		    c->stored_len > m->segs[c->seg].bytes) {
			free(used);
			return "chunk entry out of range";
		}
		used[c->seg] = 1;
		sum += c->raw_len;
	}
	for (uint32_t i = 0; i < m->nsegs; i++) {
		if (!used[i]) {
			free(used);
			return "segment referenced by no chunk";
		}
	}
	free(used);
	if (sum != (m->kind == KVS__MF_INDIRECT ? m->body_len : m->length))
		return "chunk sizes do not add up to the length";
	return NULL;
}

/* ---- encoder ------------------------------------------------------------- */

static int pk_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

static int pk_kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
	return pk_str(pk, k) || msgpack_pack_uint64(pk, v);
}

static int pk_kv_bin(msgpack_packer *pk, const char *k, const void *p, size_t n)
{
	return pk_str(pk, k) || msgpack_pack_bin(pk, n) || (n && msgpack_pack_bin_body(pk, p, n));
}

static int pk_tables(msgpack_packer *pk, const kvs__manifest *m, int with_chunks)
{
	uint8_t rec[KVS__MF_CHUNK_REC];

	if (pk_str(pk, "segs") || msgpack_pack_bin(pk, (size_t)m->nsegs * KVS__MF_SEG_REC))
		return -1;
	for (uint32_t i = 0; i < m->nsegs; i++) {
		memcpy(rec, m->segs[i].addr, 16);
		kvs__put_be64(rec + 16, m->segs[i].bytes);
		kvs__put_be32(rec + 24, m->segs[i].nchunks);
		if (msgpack_pack_bin_body(pk, rec, KVS__MF_SEG_REC))
			return -1;
	}
	if (!with_chunks)
		return 0;
	if (pk_str(pk, "chunks") || msgpack_pack_bin(pk, (size_t)m->nchunks * KVS__MF_CHUNK_REC))
		return -1;
	for (uint32_t i = 0; i < m->nchunks; i++) {
		memcpy(rec, m->chunks[i].addr, 16);
		kvs__put_be32(rec + 16, m->chunks[i].seg);
		kvs__put_be32(rec + 20, m->chunks[i].raw_len);
		kvs__put_be32(rec + 24, m->chunks[i].stored_len);
		if (msgpack_pack_bin_body(pk, rec, KVS__MF_CHUNK_REC))
			return -1;
	}
	return 0;
}

int kvs__manifest_encode(uint8_t **out, size_t *out_len, const kvs__manifest *m, uint64_t cap)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	const char *why;
	uint64_t est;
	size_t nfields;
	int bad;

	*out = NULL;
	*out_len = 0;
	if ((why = check(m)) != NULL)
		return kvs_error_set(why == check_oom ? KVS_ENOMEM : KVS_ERROR,
		                     "refusing to encode manifest of key \"%.*s\": %s",
		                     (int)(m->key ? m->key_len : 0), m->key ? m->key : "", why);
	est = 256 + m->key_len + m->inline_len + (uint64_t)m->nsegs * KVS__MF_SEG_REC +
	      (uint64_t)m->nchunks * KVS__MF_CHUNK_REC + m->runtab_len + m->hist_len;
	if (est > cap + 256)
		return kvs_error_set(KVS_ETOOBIG, "manifest of key \"%.*s\" would be about %llu bytes, over %llu",
		                     (int)m->key_len, m->key, (unsigned long long)est,
		                     (unsigned long long)cap);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (m->kind == KVS__MF_MAP) {
		bad = msgpack_pack_map(&pk, 9) ||
		      pk_kv_u64(&pk, "v", m->map_v4 ? KVS__MF_VERSION_MAPBASE : KVS__MF_VERSION_MAP) ||
		      pk_str(&pk, "kind") || pk_str(&pk, "map") ||
		      pk_str(&pk, "key") || msgpack_pack_str(&pk, m->key_len) ||
		      msgpack_pack_str_body(&pk, m->key, m->key_len) ||
		      pk_kv_u64(&pk, "len", m->length) ||
		      pk_kv_u64(&pk, "gen", m->generation) ||
		      pk_kv_u64(&pk, "codec", m->codec) ||
		      pk_tables(&pk, m, 0) ||
		      pk_kv_bin(&pk, "runs", m->runtab, m->runtab_len) ||
		      pk_kv_u64(&pk, "rlen", m->runtab_raw);
		goto trailer;
	}
	nfields = 10 + (m->is_inline ? 1 : 2) + (m->kind == KVS__MF_INDIRECT ? 6 : 0) +
	          (m->v3 ? 2 + (m->hist_len ? 1 : 0) : 0);
	bad = msgpack_pack_map(&pk, nfields) ||
	      pk_kv_u64(&pk, "v", m->v3 ? KVS__MF_VERSION_HIST : KVS__MF_VERSION) ||
	      pk_str(&pk, "kind") || pk_str(&pk, m->kind == KVS__MF_BLOB ? "blob" : "indirect") ||
	      pk_str(&pk, "key") || msgpack_pack_str(&pk, m->key_len) ||
	      msgpack_pack_str_body(&pk, m->key, m->key_len) ||
	      pk_kv_u64(&pk, "len", m->length) ||
	      pk_kv_bin(&pk, "hash", m->hash, 16) ||
	      pk_kv_u64(&pk, "gen", m->generation) ||
	      pk_kv_u64(&pk, "codec", m->codec) ||
	      pk_kv_u64(&pk, "cmin", m->cdc_min) ||
	      pk_kv_u64(&pk, "cavg", m->cdc_avg) ||
	      pk_kv_u64(&pk, "cmax", m->cdc_max);
	if (!bad && m->is_inline)
		bad = pk_kv_bin(&pk, "inline", m->inline_blob, m->inline_len);
	else if (!bad)
		bad = pk_tables(&pk, m, 1);
	if (!bad && m->kind == KVS__MF_INDIRECT)
		bad = pk_kv_u64(&pk, "blen", m->body_len) ||
		      pk_kv_bin(&pk, "bhash", m->body_hash, 16) ||
		      pk_kv_u64(&pk, "vchunks", m->v_chunks) ||
		      pk_kv_u64(&pk, "vsegs", m->v_segs) ||
		      pk_kv_u64(&pk, "vstored", m->v_stored) ||
		      pk_kv_u64(&pk, "vsegb", m->v_segbytes);
	if (!bad && m->v3)
		bad = pk_kv_u64(&pk, "time", m->time_ms) || pk_kv_u64(&pk, "added", m->added) ||
		      (m->hist_len && pk_kv_bin(&pk, "hist", m->hist, m->hist_len));
trailer:
	if (!bad) {
		uint8_t tr[TRAILER];
		kvs__put_be64(tr, XXH3_64bits(sb.data, sb.size));
		bad = msgpack_sbuffer_write(&sb, (const char *)tr, TRAILER);
	}
	if (bad) {
		msgpack_sbuffer_destroy(&sb);
		return kvs_error_set(KVS_ENOMEM, "out of memory encoding manifest");
	}
	if (sb.size > cap) {
		size_t n = sb.size;
		msgpack_sbuffer_destroy(&sb);
		return kvs_error_set(KVS_ETOOBIG, "manifest of key \"%.*s\" is %zu bytes, over %llu",
		                     (int)m->key_len, m->key, n, (unsigned long long)cap);
	}
	*out_len = sb.size;
	*out = (uint8_t *)msgpack_sbuffer_release(&sb);
	return 0;
}

/* ---- decoder ------------------------------------------------------------- */

/* Size of the scalar msgpack element at p (at most n bytes), 0 if it is not
 * an admitted scalar or is truncated. */
static size_t scalar_size(const uint8_t *p, size_t n)
{
	uint64_t body = 0, head;
	uint8_t t;

	if (n < 1)
		return 0;
	t = p[0];
	if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
		return 1;
	if (t >= 0xa0 && t <= 0xbf) {
		head = 1;
		body = t & 0x1f;
	} else {
		switch (t) {
		case 0xcc: case 0xd0: return n >= 2 ? 2 : 0;
		case 0xcd: case 0xd1: return n >= 3 ? 3 : 0;
		case 0xce: case 0xd2: return n >= 5 ? 5 : 0;
		case 0xcf: case 0xd3: return n >= 9 ? 9 : 0;
		case 0xd9: case 0xc4: head = 2; break;
		case 0xda: case 0xc5: head = 3; break;
		case 0xdb: case 0xc6: head = 5; break;
		default: return 0;
		}
		if (n < head)
			return 0;
		body = head == 2 ? p[1] : head == 3 ? (uint64_t)(p[1] << 8 | p[2]) : kvs__get_be32(p + 1);
	}
	if (body > n - head)
		return 0;
	return (size_t)(head + body);
}

/* The top level must be a map of at most MAX_FIELDS string keys and scalar
 * values, filling the body exactly. */
static int prescan(const uint8_t *p, size_t n)
{
	size_t count, off;

	if (n < 1)
		return -1;
	if (p[0] >= 0x80 && p[0] <= 0x8f) {
		count = p[0] & 0x0f;
		off = 1;
	} else if (p[0] == 0xde && n >= 3) {
		count = (size_t)(p[1] << 8 | p[2]);
		off = 3;
	} else {
		return -1;
	}
	if (count > MAX_FIELDS)
		return -1;
	for (size_t i = 0; i < 2 * count; i++) {
		size_t k = scalar_size(p + off, n - off);
		if (k == 0)
			return -1;
		if (i % 2 == 0 && !((p[off] >= 0xa0 && p[off] <= 0xbf) || p[off] == 0xd9))
			return -1;  /* keys are short strings */
		off += k;
	}
	return off == n ? 0 : -1;
}

static int key_is(const msgpack_object *k, const char *s)
{
	size_t n = strlen(s);
	return k->via.str.size == n && memcmp(k->via.str.ptr, s, n) == 0;
}

enum {
	F_V, F_KIND, F_KEY, F_LEN, F_HASH, F_GEN, F_CODEC, F_CMIN, F_CAVG, F_CMAX,
	F_INLINE, F_SEGS, F_CHUNKS, F_BLEN, F_BHASH, F_VCHUNKS, F_VSEGS, F_VSTORED, F_VSEGB,
	F_RUNS, F_RLEN, F_TIME, F_ADDED, F_HIST,
	F_COUNT
};
static const char *const field_names[F_COUNT] = {
	"v", "kind", "key", "len", "hash", "gen", "codec", "cmin", "cavg", "cmax",
	"inline", "segs", "chunks", "blen", "bhash", "vchunks", "vsegs", "vstored", "vsegb",
	"runs", "rlen", "time", "added", "hist"
};

static int corrupt(const char *what, const char *why)
{
	return kvs_error_set(KVS_ECORRUPT, "manifest of %s: %s", what, why);
}

static int get_u(const msgpack_object *o, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	*v = o->via.u64;
	return 0;
}

static int get_u32(const msgpack_object *o, uint32_t *v)
{
	uint64_t x;
	if (get_u(o, &x) < 0 || x > UINT32_MAX)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

static int get_bin16(const msgpack_object *o, uint8_t out[16])
{
	if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != 16)
		return -1;
	memcpy(out, o->via.bin.ptr, 16);
	return 0;
}

static int decode_segs(kvs__manifest *m, const msgpack_object *s, const char *what)
{
	const uint8_t *p;

	if (s->type != MSGPACK_OBJECT_BIN || s->via.bin.size % KVS__MF_SEG_REC ||
	    s->via.bin.size / KVS__MF_SEG_REC > KVS__MF_MAX_SEGS)
		return corrupt(what, "bad segment table size");
	m->nsegs = s->via.bin.size / KVS__MF_SEG_REC;
	if (!(m->segs = calloc(m->nsegs ? m->nsegs : 1, sizeof(*m->segs))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	p = (const uint8_t *)s->via.bin.ptr;
	for (uint32_t i = 0; i < m->nsegs; i++, p += KVS__MF_SEG_REC) {
		memcpy(m->segs[i].addr, p, 16);
		m->segs[i].bytes = kvs__get_be64(p + 16);
		m->segs[i].nchunks = kvs__get_be32(p + 24);
	}
	return 0;
}

/* The key field: a string of 1..KVS_KEY_MAX bytes, copied NUL-terminated. */
static int decode_key(kvs__manifest *m, const msgpack_object *k, const char *what)
{
	if (k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0 || k->via.str.size > KVS_KEY_MAX)
		return corrupt(what, "bad key");
	if (!(m->key = malloc(k->via.str.size + 1)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	memcpy(m->key, k->via.str.ptr, k->via.str.size);
	m->key[k->via.str.size] = '\0';
	m->key_len = k->via.str.size;
	return 0;
}

/* Kind map (format version 2, format.md §5.1): exactly these fields. */
static int decode_map(kvs__manifest *m, const msgpack_object *f[F_COUNT], uint64_t v,
                      const char *what)
{
	static const int has[] = { F_V, F_KIND, F_KEY, F_LEN, F_GEN, F_CODEC, F_SEGS, F_RUNS, F_RLEN };
	const msgpack_object *k = f[F_KEY], *r = f[F_RUNS];
	int rc;

	if (v != KVS__MF_VERSION_MAP && v != KVS__MF_VERSION_MAPBASE)
		return corrupt(what, "kind map in a format version 1 or 3 manifest");
	m->map_v4 = v == KVS__MF_VERSION_MAPBASE;
	for (int i = 0; i < F_COUNT; i++) {
		int want = 0;
		for (size_t j = 0; j < sizeof(has) / sizeof(has[0]); j++)
			want |= has[j] == i;
		if (want != (f[i] != NULL))
			return kvs_error_set(KVS_ECORRUPT, "manifest of %s: field \"%s\" %s", what,
			                     field_names[i], want ? "missing" : "not allowed here");
	}
	m->kind = KVS__MF_MAP;
	if ((rc = decode_key(m, k, what)) < 0)
		return rc;
	if (get_u(f[F_LEN], &m->length) < 0 || get_u(f[F_GEN], &m->generation) < 0 ||
	    get_u32(f[F_RLEN], &m->runtab_raw) < 0)
		return corrupt(what, "bad scalar field");
	if ((rc = decode_segs(m, f[F_SEGS], what)) < 0)
		return rc;
	if (r->type != MSGPACK_OBJECT_BIN || r->via.bin.size == 0 ||
	    r->via.bin.size > kvs__blob_bound(KVS__MF_RUNTAB_MAX))
		return corrupt(what, "bad run table");
	m->runtab_len = r->via.bin.size;
	if (!(m->runtab = malloc(r->via.bin.size)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	memcpy(m->runtab, r->via.bin.ptr, r->via.bin.size);
	return 0;
}

static int decode_fields(kvs__manifest *m, const msgpack_object *f[F_COUNT], uint64_t v,
                         const char *what)
{
	uint64_t x;

	if (!f[F_KIND] || f[F_KIND]->type != MSGPACK_OBJECT_STR)
		return corrupt(what, "kind missing");
	if (key_is(f[F_KIND], "blob"))
		m->kind = KVS__MF_BLOB;
	else if (key_is(f[F_KIND], "indirect"))
		m->kind = KVS__MF_INDIRECT;
	else if (key_is(f[F_KIND], "map"))
		m->kind = KVS__MF_MAP;
	else
		return kvs_error_set(KVS_EUNSUPPORTED, "manifest of %s: kind \"%.*s\" is not supported",
		                     what, (int)(f[F_KIND]->via.str.size > 32 ? 32 : f[F_KIND]->via.str.size),
		                     f[F_KIND]->via.str.ptr);
	if (!f[F_CODEC] || get_u(f[F_CODEC], &x) < 0)
		return corrupt(what, "codec missing");
	if (x != 1)
		return kvs_error_set(KVS_EUNSUPPORTED, "manifest of %s: codec %llu is not supported",
		                     what, (unsigned long long)x);
	m->codec = 1;
	if (m->kind == KVS__MF_MAP)
		return decode_map(m, f, v, what);
	if (v == KVS__MF_VERSION_MAP || v == KVS__MF_VERSION_MAPBASE)
		return corrupt(what, "format versions 2 and 4 are only for kind map");
	m->v3 = v == KVS__MF_VERSION_HIST;
	/* Which fields this kind has, exactly. */
	for (int i = 0; i < F_COUNT; i++) {
		int want;
		if (i <= F_CMAX)
			want = 1;
		else if (i == F_INLINE)
			want = m->kind == KVS__MF_BLOB && f[F_INLINE] != NULL;
		else if (i == F_SEGS || i == F_CHUNKS)
			want = !(m->kind == KVS__MF_BLOB && f[F_INLINE] != NULL);
		else if (i == F_RUNS || i == F_RLEN)
			want = 0;
		else if (i == F_TIME || i == F_ADDED)
			want = m->v3;
		else if (i == F_HIST)
			want = m->v3 && f[F_HIST] != NULL;   /* optional in version 3 */
		else
			want = m->kind == KVS__MF_INDIRECT;
		if (want != (f[i] != NULL))
			return kvs_error_set(KVS_ECORRUPT, "manifest of %s: field \"%s\" %s", what,
			                     field_names[i], want ? "missing" : "not allowed here");
	}
	{
		int rc = decode_key(m, f[F_KEY], what);
		if (rc < 0)
			return rc;
	}
	if (get_u(f[F_LEN], &m->length) < 0 || get_bin16(f[F_HASH], m->hash) < 0 ||
	    get_u(f[F_GEN], &m->generation) < 0 || get_u32(f[F_CMIN], &m->cdc_min) < 0 ||
	    get_u32(f[F_CAVG], &m->cdc_avg) < 0 || get_u32(f[F_CMAX], &m->cdc_max) < 0)
		return corrupt(what, "bad scalar field");
	if (m->length > KVS__MF_MAX_LENGTH)
		return corrupt(what, "length over 2^40");
	if (f[F_INLINE]) {
		const msgpack_object *o = f[F_INLINE];
		if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size == 0 ||
		    o->via.bin.size > INLINE_MAX_RAW + 64)
			return corrupt(what, "bad inline blob");
		m->is_inline = 1;
		m->inline_len = o->via.bin.size;
		if (!(m->inline_blob = malloc(o->via.bin.size)))
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		memcpy(m->inline_blob, o->via.bin.ptr, o->via.bin.size);
	} else {
		const msgpack_object *s = f[F_SEGS], *c = f[F_CHUNKS];
		const uint8_t *p;
		if (s->type != MSGPACK_OBJECT_BIN || s->via.bin.size % KVS__MF_SEG_REC ||
		    s->via.bin.size / KVS__MF_SEG_REC > KVS__MF_MAX_SEGS ||
		    c->type != MSGPACK_OBJECT_BIN || c->via.bin.size % KVS__MF_CHUNK_REC ||
		    c->via.bin.size / KVS__MF_CHUNK_REC > KVS__MF_MAX_CHUNKS)
			return corrupt(what, "bad segment or chunk table size");
		m->nsegs = s->via.bin.size / KVS__MF_SEG_REC;
		m->nchunks = c->via.bin.size / KVS__MF_CHUNK_REC;
		m->segs = calloc(m->nsegs ? m->nsegs : 1, sizeof(*m->segs));
		m->chunks = calloc(m->nchunks ? m->nchunks : 1, sizeof(*m->chunks));
		if (!m->segs || !m->chunks)
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		p = (const uint8_t *)s->via.bin.ptr;
		for (uint32_t i = 0; i < m->nsegs; i++, p += KVS__MF_SEG_REC) {
			memcpy(m->segs[i].addr, p, 16);
			m->segs[i].bytes = kvs__get_be64(p + 16);
			m->segs[i].nchunks = kvs__get_be32(p + 24);
		}
		p = (const uint8_t *)c->via.bin.ptr;
		for (uint32_t i = 0; i < m->nchunks; i++, p += KVS__MF_CHUNK_REC) {
			memcpy(m->chunks[i].addr, p, 16);
			m->chunks[i].seg = kvs__get_be32(p + 16);
			m->chunks[i].raw_len = kvs__get_be32(p + 20);
			m->chunks[i].stored_len = kvs__get_be32(p + 24);
		}
	}
	if (m->kind == KVS__MF_INDIRECT) {
		if (get_u(f[F_BLEN], &m->body_len) < 0 || get_bin16(f[F_BHASH], m->body_hash) < 0 ||
		    get_u(f[F_VCHUNKS], &m->v_chunks) < 0 || get_u(f[F_VSEGS], &m->v_segs) < 0 ||
		    get_u(f[F_VSTORED], &m->v_stored) < 0 || get_u(f[F_VSEGB], &m->v_segbytes) < 0)
			return corrupt(what, "bad indirect field");
	}
	if (m->v3) {
		const msgpack_object *h = f[F_HIST];
		if (get_u(f[F_TIME], &m->time_ms) < 0 || get_u(f[F_ADDED], &m->added) < 0)
			return corrupt(what, "bad time or added field");
		/* The history table is checked where it is used (history.c): a
		 * damaged one must not make the current value unreadable. */
		if (h && (h->type != MSGPACK_OBJECT_BIN || h->via.bin.size > KVS__MF_HIST_MAX)) {
			m->hist_bad = 1;
		} else if (h && h->via.bin.size) {
			m->hist_len = h->via.bin.size;
			if (!(m->hist = malloc(h->via.bin.size)))
				return kvs_error_set(KVS_ENOMEM, "out of memory");
			memcpy(m->hist, h->via.bin.ptr, h->via.bin.size);
		}
	}
	return 0;
}

int kvs__manifest_decode(kvs__manifest *m, const uint8_t *buf, size_t len, const char *what)
{
	msgpack_unpacked up;
	const msgpack_object *f[F_COUNT] = { 0 };
	const char *why;
	size_t body, off = 0;
	uint64_t v = 0;
	int rc, unknown = 0;

	memset(m, 0, sizeof(*m));
	if (!buf || len < TRAILER + 1)
		return corrupt(what, "truncated");
	if (len > KVS__MF_MAX_ENCODED)
		return corrupt(what, "larger than any manifest can be");
	body = len - TRAILER;
	if (XXH3_64bits(buf, body) != kvs__get_be64(buf + body))
		return corrupt(what, "checksum mismatch");
	if (prescan(buf, body) < 0)
		return corrupt(what, "not a map of scalar fields");
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, (const char *)buf, body, &off) != MSGPACK_UNPACK_SUCCESS ||
	    off != body || up.data.type != MSGPACK_OBJECT_MAP) {
		msgpack_unpacked_destroy(&up);
		return corrupt(what, "msgpack does not decode");
	}
	rc = 0;
	for (uint32_t i = 0; i < up.data.via.map.size && rc == 0; i++) {
		const msgpack_object_kv *kv = &up.data.via.map.ptr[i];
		int j;
		if (kv->key.type != MSGPACK_OBJECT_STR) {
			rc = corrupt(what, "non-string field name");
			break;
		}
		for (j = 0; j < F_COUNT; j++)
			if (key_is(&kv->key, field_names[j]))
				break;
		if (j == F_COUNT)
			unknown = 1;
		else if (f[j])
			rc = corrupt(what, "duplicate field");
		else
			f[j] = &kv->val;
	}
	/* The version decides how to read everything else. */
	if (rc == 0 && (!f[F_V] || get_u(f[F_V], &v) < 0))
		rc = corrupt(what, "format version missing");
	if (rc == 0 && v != KVS__MF_VERSION && v != KVS__MF_VERSION_MAP && v != KVS__MF_VERSION_HIST &&
	    v != KVS__MF_VERSION_MAPBASE)
		rc = kvs_error_set(KVS_EUNSUPPORTED, "manifest of %s: format version %llu is not supported",
		                   what, (unsigned long long)v);
	if (rc == 0 && unknown)
		rc = corrupt(what, "unknown field");
	if (rc == 0)
		rc = decode_fields(m, f, v, what);
	msgpack_unpacked_destroy(&up);
	if (rc == 0 && (why = check(m)) != NULL)
		rc = why == check_oom ? kvs_error_set(KVS_ENOMEM, "manifest of %s: %s", what, why)
		                      : corrupt(what, why);
	return rc;
}
