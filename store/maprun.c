/*
 * maprun.c — runs, the run table and the merge of a key-split map
 * (docs/format.md §5, docs/design.md "Maps").
 *
 * Records are written with msgpack-c's packer. They are read with a cursor
 * that admits exactly the record grammar (a 3-array of bin, uint and
 * bin|str|nil) with every length bounded before it is used: msgpack-c's
 * object unpacker would allocate containers from their declared counts
 * (manifest.c explains why that matters for hostile input), and a run of
 * 64 KiB holds hundreds of records, so a cursor that allocates nothing is
 * also the fast path.
 */
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"

#include "codec.h"
#include "maprun.h"

int kvs__mname_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	if (c)
		return c;
	return an < bn ? -1 : an > bn;
}

/* ---- records -------------------------------------------------------------- */

size_t kvs__mrec_size(const kvs__ment *e)
{
	return 1 + 5 + e->nlen + 9 + (e->type == KVS__MV_TOMB ? 1 : 5 + (size_t)e->vlen);
}

/* msgpack-c's header sizes: bin 8/16/32, str fix/8/16/32, uint fix/8/16/32/64. */
static size_t bin_hdr(size_t n)
{
	return n < 256 ? 2 : n < 65536 ? 3 : 5;
}

static size_t str_hdr(size_t n)
{
	return n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5;
}

static size_t uint_len(uint64_t v)
{
	return v < 128 ? 1 : v < 256 ? 2 : v < 65536 ? 3 : v <= UINT32_MAX ? 5 : 9;
}

size_t kvs__mrec_len(const kvs__ment *e)
{
	size_t n = 1 + bin_hdr(e->nlen) + e->nlen + uint_len(e->ver);

	switch (e->type) {
	case KVS__MV_TOMB:
		return n + 1;
	case KVS__MV_BIN:
		return n + bin_hdr(e->vlen) + e->vlen;
	case KVS__MV_JSON:
		return n + str_hdr(e->vlen) + e->vlen;
	}
	return n;
}

int kvs__mbuild_init_cap(kvs__mbuild *b, size_t cap)
{
	kvs__mbuild_init(b);
	if (cap && !(b->sb.data = malloc(cap)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	b->sb.alloc = cap;
	return 0;
}

uint8_t *kvs__mbuild_take(kvs__mbuild *b, size_t *len)
{
	*len = b->sb.size;
	b->n = 0;
	return (uint8_t *)msgpack_sbuffer_release(&b->sb);
}

void kvs__mbuild_init(kvs__mbuild *b)
{
	msgpack_sbuffer_init(&b->sb);
	msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
	b->n = 0;
}

int kvs__mbuild_add(kvs__mbuild *b, const kvs__ment *e)
{
	int bad = msgpack_pack_array(&b->pk, 3) ||
	          msgpack_pack_bin(&b->pk, e->nlen) ||
	          msgpack_pack_bin_body(&b->pk, e->name, e->nlen) ||
	          msgpack_pack_uint64(&b->pk, e->ver);
	if (!bad) {
		switch (e->type) {
		case KVS__MV_TOMB:
			bad = msgpack_pack_nil(&b->pk);
			break;
		case KVS__MV_BIN:
			bad = msgpack_pack_bin(&b->pk, e->vlen) ||
			      (e->vlen && msgpack_pack_bin_body(&b->pk, e->val, e->vlen));
			break;
		case KVS__MV_JSON:
			bad = msgpack_pack_str(&b->pk, e->vlen) ||
			      (e->vlen && msgpack_pack_str_body(&b->pk, e->val, e->vlen));
			break;
		}
	}
	if (bad)
		return kvs_error_set(KVS_ENOMEM, "out of memory encoding a map run");
	b->n++;
	return 0;
}

void kvs__mbuild_reset(kvs__mbuild *b)
{
	b->sb.size = 0;
	b->n = 0;
}

void kvs__mbuild_free(kvs__mbuild *b)
{
	msgpack_sbuffer_destroy(&b->sb);
	b->n = 0;
}

/* Length of a bin (or, with `str`, a str) header at p: *len and the header
 * size, or 0. */
static size_t hdr_len(const uint8_t *p, size_t n, int str, uint32_t *len)
{
	if (n < 1)
		return 0;
	if (str && p[0] >= 0xa0 && p[0] <= 0xbf) {
		*len = p[0] & 0x1f;
		return 1;
	}
	switch (p[0]) {
	case 0xc4: case 0xd9:
		if ((p[0] == 0xd9) != !!str || n < 2)
			return 0;
		*len = p[1];
		return 2;
	case 0xc5: case 0xda:
		if ((p[0] == 0xda) != !!str || n < 3)
			return 0;
		*len = kvs__get_be16(p + 1);
		return 3;
	case 0xc6: case 0xdb:
		if ((p[0] == 0xdb) != !!str || n < 5)
			return 0;
		*len = kvs__get_be32(p + 1);
		return 5;
	default:
		return 0;
	}
}

int kvs__mcur_next(kvs__mcur *c, kvs__ment *e)
{
	const uint8_t *p = c->p + c->off;
	size_t n = c->n - c->off, h, o;
	uint32_t len;

	if (n == 0)
		return KVS_EITER_DONE;
	if (p[0] != 0x93)
		return KVS_ECORRUPT;
	o = 1;
	if (!(h = hdr_len(p + o, n - o, 0, &len)) || len == 0 || len > KVS_MAP_FIELD_MAX ||
	    len > n - o - h)
		return KVS_ECORRUPT;
	e->name = p + o + h;
	e->nlen = len;
	o += h + len;
	if (o >= n)
		return KVS_ECORRUPT;
	if (p[o] <= 0x7f) {
		e->ver = p[o];
		o += 1;
	} else {
		size_t w = p[o] == 0xcc ? 1 : p[o] == 0xcd ? 2 : p[o] == 0xce ? 4 : p[o] == 0xcf ? 8 : 0;
		if (!w || n - o < 1 + w)
			return KVS_ECORRUPT;
		e->ver = 0;
		for (size_t i = 0; i < w; i++)
			e->ver = e->ver << 8 | p[o + 1 + i];
		o += 1 + w;
	}
	if (o >= n)
		return KVS_ECORRUPT;
	if (p[o] == 0xc0) {
		e->type = KVS__MV_TOMB;
		e->val = NULL;
		e->vlen = 0;
		o += 1;
	} else {
		int str = (p[o] >= 0xa0 && p[o] <= 0xbf) || p[o] == 0xd9 || p[o] == 0xda || p[o] == 0xdb;
		if (!(h = hdr_len(p + o, n - o, str, &len)) || len > KVS_MAP_VALUE_MAX ||
		    len > n - o - h)
			return KVS_ECORRUPT;
		e->type = str ? KVS__MV_JSON : KVS__MV_BIN;
		e->val = p + o + h;
		e->vlen = len;
		o += h + len;
	}
	c->off += o;
	return 0;
}

/* ---- run table ------------------------------------------------------------ */

void kvs__mrun_clear(kvs__mrun *r)
{
	if (!r)
		return;
	free(r->min);
	free(r->max);
	free(r->raw);
	memset(r, 0, sizeof(*r));
}

void kvs__mapidx_clear(kvs__mapidx *ix)
{
	if (!ix)
		return;
	for (uint32_t i = 0; i < ix->nruns; i++)
		kvs__mrun_clear(&ix->runs[i]);
	free(ix->runs);
	free(ix->segs);
	memset(ix, 0, sizeof(*ix));
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

int kvs__mrun_describe(kvs__mrun *r, const uint8_t *raw, size_t len)
{
	kvs__mcur c = { raw, len, 0 };
	kvs__ment e, prev = { 0 };
	int rc;

	r->nent = r->ntomb = 0;
	free(r->min);
	free(r->max);
	r->min = r->max = NULL;
	if (len > KVS__MAP_RUN_RAW_MAX)
		return kvs_error_set(KVS_ECORRUPT, "map run of %zu bytes, over the cap", len);
	while ((rc = kvs__mcur_next(&c, &e)) == 0) {
		if (r->nent && kvs__mname_cmp(prev.name, prev.nlen, e.name, e.nlen) >= 0)
			return kvs_error_set(KVS_ECORRUPT, "map run: fields out of order");
		if (r->nent == 0)
			r->minlen = (uint16_t)e.nlen, r->min = dup_bytes(e.name, e.nlen);
		r->nent++;
		r->ntomb += e.type == KVS__MV_TOMB;
		prev = e;
	}
	if (rc != KVS_EITER_DONE)
		return kvs_error_set(KVS_ECORRUPT, "map run: malformed record at byte %zu", c.off);
	if (r->nent == 0)
		return kvs_error_set(KVS_ECORRUPT, "map run without entries");
	r->maxlen = (uint16_t)prev.nlen;
	r->max = dup_bytes(prev.name, prev.nlen);
	if (!r->min || !r->max)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	r->raw_len = (uint32_t)len;
	kvs__addr_of(r->addr, raw, len);
	return 0;
}

#define RUN_FIXED (1 + 1 + 8 + 4 + 4 + 4 + 4 + 16 + 4)

static int tcorrupt(const char *what, const char *why, uint32_t i)
{
	return kvs_error_set(KVS_ECORRUPT, "map run table of %s: run %u: %s", what, i, why);
}

/* The rules of format.md §5.3 over a decoded table. */
static int check_table(const kvs__mapidx *ix, const char *what)
{
	uint8_t *used;
	int l1 = 0;

	if (ix->nruns > KVS__MAP_RUNS_MAX)
		return kvs_error_set(KVS_ECORRUPT, "map run table of %s: too many runs", what);
	for (uint32_t i = 0; i < ix->nruns; i++) {
		const kvs__mrun *r = &ix->runs[i], *p = i ? &ix->runs[i - 1] : NULL;
		if (r->level > 1)
			return tcorrupt(what, "unknown level", i);
		if (r->flags & ~KVS__MRUN_INLINE)
			return tcorrupt(what, "unknown flags", i);
		if (r->nent == 0 || r->ntomb > r->nent || r->raw_len == 0 ||
		    r->raw_len > KVS__MAP_RUN_RAW_MAX || r->stored_len == 0 ||
		    r->stored_len > kvs__blob_bound(r->raw_len))
			return tcorrupt(what, "sizes out of range", i);
		if (r->minlen == 0 || r->minlen > KVS_MAP_FIELD_MAX || r->maxlen == 0 ||
		    r->maxlen > KVS_MAP_FIELD_MAX ||
		    kvs__mname_cmp(r->min, r->minlen, r->max, r->maxlen) > 0)
			return tcorrupt(what, "bad field range", i);
		if ((r->flags & KVS__MRUN_INLINE) ? r->seg != KVS__MRUN_NOSEG || r->stored_len != r->raw_len
		                                  : r->seg >= ix->nsegs)
			return tcorrupt(what, "bad segment reference", i);
		if (r->seq == 0 || r->seq > ix->gen)
			return tcorrupt(what, "seq outside 1..generation", i);
		if (r->level == 1) {
			if (r->ntomb)
				return tcorrupt(what, "tombstones in the base", i);
			if (l1 && kvs__mname_cmp(p->max, p->maxlen, r->min, r->minlen) >= 0)
				return tcorrupt(what, "base runs overlap or are out of order", i);
			l1 = 1;
		} else {
			if (l1)
				return tcorrupt(what, "delta after the base", i);
			if (p && p->seq < r->seq)
				return tcorrupt(what, "deltas not newest first", i);
			if (p && p->seq == r->seq &&
			    kvs__mname_cmp(p->max, p->maxlen, r->min, r->minlen) >= 0)
				return tcorrupt(what, "runs of one delta overlap", i);
		}
	}
	if (!(used = calloc(ix->nsegs ? ix->nsegs : 1, 1)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	for (uint32_t i = 0; i < ix->nruns; i++)
		if (!(ix->runs[i].flags & KVS__MRUN_INLINE))
			used[ix->runs[i].seg] = 1;
	if (ix->has_bt) {
		if (ix->bt.seg >= ix->nsegs) {
			free(used);
			return kvs_error_set(KVS_ECORRUPT, "map run table of %s: base table in segment %u "
			                     "of %u", what, ix->bt.seg, ix->nsegs);
		}
		used[ix->bt.seg] = 1;
	}
	for (uint32_t i = 0; i < ix->nsegs; i++) {
		if (!used[i]) {
			free(used);
			return kvs_error_set(KVS_ECORRUPT, "map run table of %s: segment %u referenced "
			                     "by no run", what, i);
		}
	}
	free(used);
	return 0;
}

/* Append `nruns` run records from p[*off, n) to ix, each of level `level`
 * (-1: any). Every length is checked before use; inline runs are verified
 * (hash, records, description). */
static int parse_records(kvs__mapidx *ix, const uint8_t *p, size_t n, size_t *offp,
                         uint32_t nruns, int level, const char *what)
{
	size_t off = *offp;
	uint32_t base = ix->nruns;
	int rc;

	if (nruns > KVS__MAP_RUNS_MAX - base || nruns > (n - off) / RUN_FIXED)
		return kvs_error_set(KVS_ECORRUPT, "map run table of %s: bad run count", what);
	if (base + nruns > ix->cap) {
		uint32_t nc = base + nruns;
		kvs__mrun *np = realloc(ix->runs, (size_t)(nc ? nc : 1) * sizeof(*np));
		if (!np)
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		memset(np + base, 0, (size_t)(nc - base) * sizeof(*np));
		ix->runs = np;
		ix->cap = nc;
	}
	for (uint32_t k = 0; k < nruns; k++) {
		uint32_t i = base + k;
		kvs__mrun *r = &ix->runs[i];
		if (n - off < RUN_FIXED + 4)
			return tcorrupt(what, "truncated", i);
		ix->nruns = i + 1;
		r->level = p[off];
		r->flags = p[off + 1];
		r->seq = kvs__get_be64(p + off + 2);
		r->nent = kvs__get_be32(p + off + 10);
		r->ntomb = kvs__get_be32(p + off + 14);
		r->raw_len = kvs__get_be32(p + off + 18);
		r->stored_len = kvs__get_be32(p + off + 22);
		memcpy(r->addr, p + off + 26, 16);
		r->seg = kvs__get_be32(p + off + 42);
		off += RUN_FIXED;
		if (level >= 0 && r->level != level)
			return tcorrupt(what, level ? "a delta in the base table" :
			                "a base run beside a base table", i);
		r->minlen = kvs__get_be16(p + off);
		off += 2;
		if (r->minlen == 0 || r->minlen > KVS_MAP_FIELD_MAX || n - off < (size_t)r->minlen + 2)
			return tcorrupt(what, "bad minimum field", i);
		r->min = dup_bytes(p + off, r->minlen);
		off += r->minlen;
		r->maxlen = kvs__get_be16(p + off);
		off += 2;
		if (r->maxlen == 0 || r->maxlen > KVS_MAP_FIELD_MAX || n - off < r->maxlen)
			return tcorrupt(what, "bad maximum field", i);
		r->max = dup_bytes(p + off, r->maxlen);
		off += r->maxlen;
		if (!r->min || !r->max)
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		if (r->flags & KVS__MRUN_INLINE) {
			kvs__mrun chk;
			uint8_t a[16];
			if (r->raw_len > KVS__MAP_RUN_RAW_MAX || n - off < r->raw_len)
				return tcorrupt(what, "truncated inline run", i);
			kvs__addr_of(a, p + off, r->raw_len);
			if (memcmp(a, r->addr, 16) != 0)
				return tcorrupt(what, "inline run fails its XXH3-128 check", i);
			memset(&chk, 0, sizeof(chk));
			rc = kvs__mrun_describe(&chk, p + off, r->raw_len);
			if (rc == 0 && (chk.nent != r->nent || chk.ntomb != r->ntomb ||
			                kvs__mname_cmp(chk.min, chk.minlen, r->min, r->minlen) ||
			                kvs__mname_cmp(chk.max, chk.maxlen, r->max, r->maxlen)))
				rc = tcorrupt(what, "inline run does not match its description", i);
			kvs__mrun_clear(&chk);
			if (rc < 0)
				return rc;
			if (!(r->raw = dup_bytes(p + off, r->raw_len)))
				return kvs_error_set(KVS_ENOMEM, "out of memory");
			off += r->raw_len;
		}
	}
	*offp = off;
	return 0;
}

int kvs__mapidx_decode(kvs__mapidx *ix, const kvs__manifest *m, const char *what)
{
	uint8_t *raw = NULL;
	const uint8_t *p;
	size_t n, off = 0;
	uint32_t nruns;
	int rc;

	memset(ix, 0, sizeof(*ix));
	if (m->kind != KVS__MF_MAP)
		return kvs_error_set(KVS_EINVAL, "%s is not a map", what);
	ix->gen = m->generation;
	/* the manifest decoder checks these too; this decoder stands alone */
	if (m->runtab_raw < 4 || m->runtab_raw > KVS__MF_RUNTAB_MAX || (m->nsegs && !m->segs) ||
	    (m->map_v4 && m->runtab_raw < KVS__MAP_BTREF_LEN + 4))
		return kvs_error_set(KVS_ECORRUPT, "map run table of %s: size %u out of range", what,
		                     m->runtab_raw);
	if (!(raw = malloc(m->runtab_raw)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if (kvs__blob_decode(raw, m->runtab_raw, m->runtab, m->runtab_len) < 0) {
		free(raw);
		return kvs_error_set(KVS_ECORRUPT, "map run table of %s does not decode", what);
	}
	p = raw;
	n = m->runtab_raw;
	if (!(ix->segs = calloc(m->nsegs ? m->nsegs : 1, sizeof(*ix->segs)))) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto fail;
	}
	ix->capsegs = m->nsegs ? m->nsegs : 1;
	if (m->nsegs)
		memcpy(ix->segs, m->segs, (size_t)m->nsegs * sizeof(*ix->segs));
	ix->nsegs = m->nsegs;
	if (m->map_v4) {
		kvs__mbtab *bt = &ix->bt;
		bt->nruns = kvs__get_be32(p);
		bt->seg = kvs__get_be32(p + 4);
		memcpy(bt->addr, p + 8, 16);
		bt->raw_len = kvs__get_be32(p + 24);
		bt->stored_len = kvs__get_be32(p + 28);
		off = KVS__MAP_BTREF_LEN;
		if (bt->seg >= ix->nsegs || bt->nruns == 0 || bt->nruns > KVS__MAP_RUNS_MAX ||
		    bt->raw_len < 4 || bt->raw_len > KVS__MF_RUNTAB_MAX ||
		    bt->nruns > (bt->raw_len - 4) / RUN_FIXED || bt->stored_len == 0 ||
		    bt->stored_len > kvs__blob_bound(bt->raw_len)) {
			rc = kvs_error_set(KVS_ECORRUPT, "map run table of %s: bad base table reference",
			                   what);
			goto fail;
		}
		ix->has_bt = ix->bt_pending = 1;
	}
	if (n - off < 4) {
		rc = kvs_error_set(KVS_ECORRUPT, "map run table of %s: truncated", what);
		goto fail;
	}
	nruns = kvs__get_be32(p + off);
	off += 4;
	if ((rc = parse_records(ix, p, n, &off, nruns, m->map_v4 ? 0 : -1, what)) < 0)
		goto fail;
	if (off != n) {
		rc = kvs_error_set(KVS_ECORRUPT, "map run table of %s: trailing bytes", what);
		goto fail;
	}
	if (!ix->bt_pending && (rc = check_table(ix, what)) < 0)
		goto fail;
	free(raw);
	return 0;
fail:
	free(raw);
	kvs__mapidx_clear(ix);
	return rc;
}

int kvs__mapidx_load_base(kvs__mapidx *ix, kvs_store *s, const char *what, kvs_map_stats *st)
{
	char name[KVS__NAME_BUF], hex[KVS__ADDR_HEX + 1];
	const kvs__mbtab *bt = &ix->bt;
	kvs__segment *sg = NULL;
	const kvs_blob *b;
	uint64_t req = 0;
	uint8_t *buf = NULL, a[16];
	size_t off = 4;
	int rc;

	if (!ix->bt_pending)
		return 0;
	rc = kvs__segment_fetch(&sg, s, ix->segs[bt->seg].addr, &req);
	if (st) {
		st->requests += req;
		st->segments_read += req;
	}
	kvs__segment_name(name, s->name, ix->segs[bt->seg].addr);
	kvs__hex(hex, bt->addr, 16);
	if (rc < 0) {
		rc = kvs_error_set(rc, "%s: base table %s: %s", what, hex, kvs_error_last());
		goto fail;
	}
	b = kvs__seg_find(sg, bt->addr);
	if (!b || b->len != bt->stored_len) {
		rc = kvs_error_set(b ? KVS_ECORRUPT : KVS_ENOTFOUND, "%s: base table %s is %s segment %s",
		                   what, hex, b ? "of the wrong size in" : "missing from", name);
		goto fail;
	}
	if (!(buf = malloc(bt->raw_len))) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto fail;
	}
	rc = kvs__blob_decode(buf, bt->raw_len, b->data, b->len);
	kvs__seg_unref(sg);
	sg = NULL;
	if (rc == 0)
		kvs__addr_of(a, buf, bt->raw_len);
	if (rc < 0 || memcmp(a, bt->addr, 16) != 0) {
		rc = kvs_error_set(KVS_ECORRUPT, "%s: base table %s in segment %s fails verification",
		                   what, hex, name);
		goto fail;
	}
	if (kvs__get_be32(buf) != bt->nruns) {
		rc = kvs_error_set(KVS_ECORRUPT, "%s: base table %s holds %u runs, its reference says %u",
		                   what, hex, kvs__get_be32(buf), bt->nruns);
		goto fail;
	}
	if ((rc = parse_records(ix, buf, bt->raw_len, &off, bt->nruns, 1, what)) < 0)
		goto fail;
	if (off != bt->raw_len) {
		rc = kvs_error_set(KVS_ECORRUPT, "%s: base table %s: trailing bytes", what, hex);
		goto fail;
	}
	ix->bt_pending = 0;
	if ((rc = check_table(ix, what)) < 0)
		goto fail;
	free(buf);
	return 0;
fail:
	kvs__seg_unref(sg);
	free(buf);
	kvs__mapidx_clear(ix);
	return rc;
}

int kvs__mapidx_append(kvs__mapidx *ix, const kvs__mrun *r, int too_many)
{
	kvs__mrun *d;

	if (ix->nruns >= KVS__MAP_RUNS_MAX)
		return kvs_error_set(too_many, "map of more than %u runs", KVS__MAP_RUNS_MAX);
	if (ix->nruns == ix->cap) {
		uint32_t nc = ix->cap ? ix->cap * 2 : 16;
		kvs__mrun *np = realloc(ix->runs, (size_t)nc * sizeof(*np));
		if (!np)
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		ix->runs = np;
		ix->cap = nc;
	}
	d = &ix->runs[ix->nruns];
	*d = *r;
	d->min = dup_bytes(r->min, r->minlen);
	d->max = dup_bytes(r->max, r->maxlen);
	d->raw = (r->flags & KVS__MRUN_INLINE) ? dup_bytes(r->raw, r->raw_len) : NULL;
	if (!d->min || !d->max || ((r->flags & KVS__MRUN_INLINE) && !d->raw)) {
		kvs__mrun_clear(d);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	ix->nruns++;
	return 0;
}

int kvs__mapidx_copy_base(kvs__mapidx *out, const kvs__mapidx *ix)
{
	int rc;

	memset(out, 0, sizeof(*out));
	out->gen = ix->gen;
	out->has_bt = ix->has_bt;
	out->bt = ix->bt;
	for (uint32_t i = 0; i < ix->nruns; i++)
		if (ix->runs[i].level == 1 && (rc = kvs__mapidx_append(out, &ix->runs[i], KVS_ECORRUPT)) < 0) {
			kvs__mapidx_clear(out);
			return rc;
		}
	return 0;
}

int kvs__mapidx_adopt_base(kvs__mapidx *ix, const kvs__mapidx *from, const char *what)
{
	int rc = 0;

	if (!ix->bt_pending || !from->has_bt || memcmp(ix->bt.addr, from->bt.addr, 16) != 0 ||
	    ix->bt.raw_len != from->bt.raw_len || ix->bt.nruns != from->bt.nruns)
		return kvs_error_set(KVS_EINVAL, "%s: not the base table kept", what);
	for (uint32_t i = 0; i < from->nruns && rc == 0; i++)
		if (from->runs[i].level == 1)
			rc = kvs__mapidx_append(ix, &from->runs[i], KVS_ECORRUPT);
	ix->bt_pending = 0;
	if (rc == 0)
		rc = check_table(ix, what);
	if (rc < 0)
		kvs__mapidx_clear(ix);
	return rc;
}

int kvs__mapidx_read(kvs__mapidx *ix, kvs_store *s, const kvs__manifest *m, const char *what,
                     kvs_map_stats *st)
{
	int rc = kvs__mapidx_decode(ix, m, what);

	return rc < 0 ? rc : kvs__mapidx_load_base(ix, s, what, st);
}

static uint64_t rec_size(const kvs__mrun *r)
{
	return RUN_FIXED + 4 + r->minlen + r->maxlen + ((r->flags & KVS__MRUN_INLINE) ? r->raw_len : 0);
}

static uint8_t *put_rec(uint8_t *p, const kvs__mrun *r)
{
	p[0] = r->level;
	p[1] = r->flags;
	kvs__put_be64(p + 2, r->seq);
	kvs__put_be32(p + 10, r->nent);
	kvs__put_be32(p + 14, r->ntomb);
	kvs__put_be32(p + 18, r->raw_len);
	kvs__put_be32(p + 22, r->stored_len);
	memcpy(p + 26, r->addr, 16);
	kvs__put_be32(p + 42, r->seg);
	p += RUN_FIXED;
	kvs__put_be16(p, r->minlen);
	memcpy(p + 2, r->min, r->minlen);
	p += 2 + r->minlen;
	kvs__put_be16(p, r->maxlen);
	memcpy(p + 2, r->max, r->maxlen);
	p += 2 + r->maxlen;
	if (r->flags & KVS__MRUN_INLINE) {
		memcpy(p, r->raw, r->raw_len);
		p += r->raw_len;
	}
	return p;
}

uint64_t kvs__mapidx_basetab_size(const kvs__mapidx *ix)
{
	uint64_t need = 4;

	for (uint32_t i = 0; i < ix->nruns; i++)
		if (ix->runs[i].level == 1)
			need += rec_size(&ix->runs[i]);
	return need;
}

int kvs__mapidx_basetab(uint8_t **raw, size_t *len, const kvs__mapidx *ix)
{
	uint64_t need = kvs__mapidx_basetab_size(ix);
	uint32_t nb = 0;
	uint8_t *p;

	*raw = NULL;
	*len = 0;
	if (need > KVS__MF_RUNTAB_MAX)
		return kvs_error_set(KVS_ETOOBIG, "map base table of %llu bytes, over %u",
		                     (unsigned long long)need, KVS__MF_RUNTAB_MAX);
	if (!(*raw = malloc(need)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	p = *raw + 4;
	for (uint32_t i = 0; i < ix->nruns; i++)
		if (ix->runs[i].level == 1) {
			p = put_rec(p, &ix->runs[i]);
			nb++;
		}
	kvs__put_be32(*raw, nb);
	*len = need;
	return 0;
}

int kvs__mapidx_encode(kvs__manifest *m, const kvs__mapidx *ix, int accel)
{
	uint64_t need = 4, total = 0;
	uint32_t nd = 0, nb = 0;
	uint8_t *raw, *p;
	size_t bound;
	int rc;

	if (ix->bt_pending)
		return kvs_error_set(KVS_ERROR, "refusing to encode: a map index without its base runs");
	if ((rc = check_table(ix, "a new map index")) < 0)
		return kvs_error_set(rc == KVS_ENOMEM ? rc : KVS_ERROR, "refusing to encode: %s",
		                     kvs_error_last());
	if (ix->has_bt)
		need += KVS__MAP_BTREF_LEN;
	for (uint32_t i = 0; i < ix->nruns; i++) {
		const kvs__mrun *r = &ix->runs[i];
		total += r->raw_len;
		if (ix->has_bt && r->level == 1) {
			nb++;
			continue;
		}
		need += rec_size(r);
		nd++;
	}
	if (ix->has_bt && nb != ix->bt.nruns)
		return kvs_error_set(KVS_ERROR, "refusing to encode: base table of %u runs for %u",
		                     ix->bt.nruns, nb);
	if (need > KVS__MF_RUNTAB_MAX)
		return kvs_error_set(KVS_ETOOBIG, "map run table of %llu bytes, over %u",
		                     (unsigned long long)need, KVS__MF_RUNTAB_MAX);
	if (!(raw = malloc(need)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	p = raw;
	if (ix->has_bt) {
		kvs__put_be32(p, ix->bt.nruns);
		kvs__put_be32(p + 4, ix->bt.seg);
		memcpy(p + 8, ix->bt.addr, 16);
		kvs__put_be32(p + 24, ix->bt.raw_len);
		kvs__put_be32(p + 28, ix->bt.stored_len);
		p += KVS__MAP_BTREF_LEN;
	}
	kvs__put_be32(p, nd);
	p += 4;
	for (uint32_t i = 0; i < ix->nruns; i++)
		if (!(ix->has_bt && ix->runs[i].level == 1))
			p = put_rec(p, &ix->runs[i]);
	bound = kvs__blob_bound(need);
	free(m->runtab);
	free(m->segs);
	m->segs = NULL;
	if (!(m->runtab = malloc(bound)) ||
	    !(m->segs = malloc((ix->nsegs ? ix->nsegs : 1) * sizeof(*m->segs)))) {
		free(raw);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	m->runtab_len = (uint32_t)kvs__blob_encode(m->runtab, bound, raw, need, accel);
	m->runtab_raw = (uint32_t)need;
	if (ix->nsegs)
		memcpy(m->segs, ix->segs, (size_t)ix->nsegs * sizeof(*m->segs));
	m->nsegs = ix->nsegs;
	m->kind = KVS__MF_MAP;
	m->codec = 1;
	m->generation = ix->gen;
	m->length = total;
	m->map_v4 = ix->has_bt;
	free(raw);
	return 0;
}

/* ---- loading runs ---------------------------------------------------------- */

int kvs__mrun_load(const uint8_t **raw, uint8_t **owned, kvs_store *s, const kvs__mapidx *ix,
                   const kvs__mrun *r, const char *what, kvs_map_stats *st)
{
	char name[KVS__NAME_BUF], hex[KVS__ADDR_HEX + 1];
	kvs__segment *sg = NULL;
	const kvs_blob *b;
	uint64_t req = 0;
	kvs__mrun chk;
	uint8_t *buf, a[16];
	int rc;

	*owned = NULL;
	if (r->flags & KVS__MRUN_INLINE) {
		*raw = r->raw;   /* verified when the table was decoded */
		return 0;
	}
	rc = kvs__segment_fetch(&sg, s, ix->segs[r->seg].addr, &req);
	if (st) {
		st->requests += req;
		st->segments_read += req;
	}
	if (rc < 0)
		return kvs_error_set(rc, "%s: %s", what, kvs_error_last());
	kvs__segment_name(name, s->name, ix->segs[r->seg].addr);
	kvs__hex(hex, r->addr, 16);
	b = kvs__seg_find(sg, r->addr);
	if (!b || b->len != r->stored_len) {
		kvs__seg_unref(sg);
		return kvs_error_set(b ? KVS_ECORRUPT : KVS_ENOTFOUND, "%s: run %s is %s segment %s",
		                     what, hex, b ? "of the wrong size in" : "missing from", name);
	}
	if (!(buf = malloc(r->raw_len))) {
		kvs__seg_unref(sg);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	rc = kvs__blob_decode(buf, r->raw_len, b->data, b->len);
	kvs__seg_unref(sg);
	if (rc == 0) {
		kvs__addr_of(a, buf, r->raw_len);
		if (memcmp(a, r->addr, 16) != 0)
			rc = KVS_ECORRUPT;
	}
	if (rc < 0) {
		free(buf);
		return kvs_error_set(KVS_ECORRUPT, "%s: run %s in segment %s fails verification",
		                     what, hex, name);
	}
	memset(&chk, 0, sizeof(chk));
	rc = kvs__mrun_describe(&chk, buf, r->raw_len);
	if (rc == 0 && (chk.nent != r->nent || chk.ntomb != r->ntomb ||
	                kvs__mname_cmp(chk.min, chk.minlen, r->min, r->minlen) ||
	                kvs__mname_cmp(chk.max, chk.maxlen, r->max, r->maxlen)))
		rc = kvs_error_set(KVS_ECORRUPT, "%s: run %s does not match its description", what, hex);
	kvs__mrun_clear(&chk);
	if (rc < 0) {
		free(buf);
		return rc == KVS_ENOMEM ? rc : kvs_error_set(KVS_ECORRUPT, "%s: %s", what, kvs_error_last());
	}
	*raw = *owned = buf;
	return 0;
}

/* ---- merge ----------------------------------------------------------------- */

int kvs__mmerge_init(kvs__mmerge *mg, kvs_store *s, const kvs__mapidx *ix, int l0_only,
                     const void *lo, size_t lolen, const void *hi, size_t hilen,
                     const char *what, kvs_map_stats *st)
{
	size_t n = 0;

	memset(mg, 0, sizeof(*mg));
	mg->s = s;
	mg->ix = ix;
	mg->what = what;
	mg->st = st;
	if (!(mg->src = calloc(ix->nruns ? ix->nruns : 1, sizeof(*mg->src))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	for (uint32_t i = 0; i < ix->nruns;) {
		const kvs__mrun *r = &ix->runs[i];
		uint32_t j = i + 1;
		if (l0_only && r->level)
			break;
		while (j < ix->nruns && ix->runs[j].level == r->level &&
		       (r->level == 1 || ix->runs[j].seq == r->seq))
			j++;
		mg->src[n].first = i;
		mg->src[n].n = j - i;
		n++;
		i = j;
	}
	mg->nsrc = n;
	if (lo && !(mg->lo = dup_bytes(lo, lolen)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if (hi && !(mg->hi = dup_bytes(hi, hilen)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	mg->lolen = lolen;
	mg->hilen = hilen;
	return 0;
}

static int below_lo(const kvs__mmerge *mg, const uint8_t *n, size_t len)
{
	return mg->lo && kvs__mname_cmp(n, len, mg->lo, mg->lolen) < 0;
}

static int at_or_above_hi(const kvs__mmerge *mg, const uint8_t *n, size_t len)
{
	return mg->hi && kvs__mname_cmp(n, len, mg->hi, mg->hilen) >= 0;
}

/* Make src->head the source's next entry within bounds, loading runs as
 * needed. */
static int fill(kvs__mmerge *mg, kvs__msrc *src)
{
	int rc;

	while (!src->has && !src->done) {
		if (src->c.p) {
			rc = kvs__mcur_next(&src->c, &src->head);
			if (rc == 0) {
				if (below_lo(mg, src->head.name, src->head.nlen))
					continue;
				if (at_or_above_hi(mg, src->head.name, src->head.nlen)) {
					src->done = 1;
					break;
				}
				if (src->head.ver == 0)
					src->head.ver = src->seq;
				src->has = 1;
				continue;
			}
			if (rc != KVS_EITER_DONE)
				return kvs_error_set(KVS_ECORRUPT, "%s: malformed run", mg->what);
			free(src->owned);
			src->owned = NULL;
			memset(&src->c, 0, sizeof(src->c));
			continue;
		}
		if (src->next >= src->n) {
			src->done = 1;
			break;
		}
		{
			const kvs__mrun *r = &mg->ix->runs[src->first + src->next++];
			const uint8_t *raw;
			if (below_lo(mg, r->max, r->maxlen))
				continue;
			if (at_or_above_hi(mg, r->min, r->minlen)) {
				src->done = 1;
				break;
			}
			if ((rc = kvs__mrun_load(&raw, &src->owned, mg->s, mg->ix, r, mg->what, mg->st)) < 0)
				return rc;
			src->c.p = raw;
			src->c.n = r->raw_len;
			src->c.off = 0;
			src->seq = r->seq;
		}
	}
	return 0;
}

int kvs__mmerge_next(kvs__mmerge *mg, kvs__ment *e)
{
	int rc;

	for (;;) {
		kvs__msrc *best = NULL;
		for (size_t i = 0; i < mg->nsrc; i++) {
			kvs__msrc *sr = &mg->src[i];
			if ((rc = fill(mg, sr)) < 0)
				return rc;
			if (sr->has && (!best || kvs__mname_cmp(sr->head.name, sr->head.nlen,
			                                        best->head.name, best->head.nlen) < 0))
				best = sr;
		}
		if (!best)
			return KVS_EITER_DONE;
		*e = best->head;
		for (size_t i = 0; i < mg->nsrc; i++) {
			kvs__msrc *sr = &mg->src[i];
			if (sr->has && kvs__mname_cmp(sr->head.name, sr->head.nlen, e->name, e->nlen) == 0)
				sr->has = 0;
		}
		if (e->type != KVS__MV_TOMB || mg->tombs)
			return 0;
	}
}

void kvs__mmerge_free(kvs__mmerge *mg)
{
	if (!mg)
		return;
	for (size_t i = 0; i < mg->nsrc; i++)
		free(mg->src[i].owned);
	free(mg->src);
	free(mg->lo);
	free(mg->hi);
	memset(mg, 0, sizeof(*mg));
}

int kvs__map_lookup(int *found, kvs__ment *e, uint8_t **val, kvs_store *s, const kvs__mapidx *ix,
                    const uint8_t *name, size_t nlen, const char *what, kvs_map_stats *st)
{
	*found = 0;
	*val = NULL;
	for (uint32_t i = 0; i < ix->nruns; i++) {
		const kvs__mrun *r = &ix->runs[i];
		const uint8_t *raw;
		uint8_t *owned = NULL;
		kvs__mcur c;
		int rc;

		if (kvs__mname_cmp(name, nlen, r->min, r->minlen) < 0 ||
		    kvs__mname_cmp(name, nlen, r->max, r->maxlen) > 0)
			continue;
		if ((rc = kvs__mrun_load(&raw, &owned, s, ix, r, what, st)) < 0)
			return rc;
		c.p = raw;
		c.n = r->raw_len;
		c.off = 0;
		while ((rc = kvs__mcur_next(&c, e)) == 0) {
			int cmp = kvs__mname_cmp(e->name, e->nlen, name, nlen);
			if (cmp > 0)
				break;
			if (cmp < 0)
				continue;
			if (e->ver == 0)
				e->ver = r->seq;
			*found = 1;
			if (!(*val = dup_bytes(e->val, e->vlen))) {
				free(owned);
				return kvs_error_set(KVS_ENOMEM, "out of memory");
			}
			e->name = NULL;
			e->val = *val;
			free(owned);
			return 0;
		}
		free(owned);
		if (rc < 0 && rc != KVS_EITER_DONE)
			return kvs_error_set(KVS_ECORRUPT, "%s: malformed run", what);
		/* Runs of one delta (and of the base) do not overlap: at most one
		 * of each covers the name, and a later one of the same group
		 * cannot; but skipping them costs nothing, the ranges say so. */
	}
	return 0;
}
