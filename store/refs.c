/*
 * refs.c — what an index references, by manifest kind (refs.h).
 *
 * Adding a manifest kind means: decode it (manifest.c) and add a case to
 * walk() that delivers its groups. Nothing else that reads references —
 * gc, fsck, a put's rebase or its check of reused segments — changes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "maprun.h"
#include "refs.h"

/* The group of a blob manifest's value (inline or chunked). */
static void value_group(kvs__refgroup *g, const kvs__manifest *m)
{
	memset(g, 0, sizeof(*g));
	g->role = KVS__REF_VALUE;
	g->what = "value";
	g->segs = m->segs;
	g->nsegs = m->nsegs;
	g->chunks = m->chunks;
	g->nchunks = m->nchunks;
	g->is_inline = m->is_inline;
	g->inline_blob = m->inline_blob;
	g->inline_len = m->inline_len;
	g->length = m->length;
	g->hash = m->hash;
	g->chunk_max = m->cdc_max;
}

/* The body group of an indirect manifest. */
static void body_group(kvs__refgroup *g, const kvs__manifest *m)
{
	memset(g, 0, sizeof(*g));
	g->role = KVS__REF_BODY;
	g->what = "manifest body";
	g->segs = m->segs;
	g->nsegs = m->nsegs;
	g->chunks = m->chunks;
	g->nchunks = m->nchunks;
	g->length = m->body_len;
	g->hash = m->body_hash;
	g->chunk_max = m->cdc_max;
}

static int deliver(kvs_store *s, const kvs__refgroup *g, const kvs__refs_cb *cb, void *ctx);

/*
 * A key-split map (format.md §5): one group per segment its run table
 * references, holding the out-of-line runs in that segment as chunks (each
 * a blob addressed by the XXH3-128 of the raw run). A group has no whole
 * hash: runs are independent, each checked by its address. The run table
 * itself, inline runs included, is verified by decoding it: a table that
 * does not decode is a DECODE failure, like a manifest that does not.
 */
static int map_groups(kvs_store *s, const kvs_object *index, const kvs__manifest *m,
                      const kvs__refs_cb *cb, void *ctx, int *where)
{
	char what[KVS__NAME_BUF + 16];
	kvs__chunk_ref *ch = NULL;
	kvs__mapidx ix;
	kvs__refgroup g;
	int rc;

	snprintf(what, sizeof(what), "index %s", index->name);
	*where = KVS__REFS_DECODE;
	if ((rc = kvs__mapidx_decode(&ix, m, what)) < 0)
		return rc;
	if (ix.has_bt) {
		/* format version 4: the base table is one chunk (addressed by its
		 * XXH3-128) in a segment of the table; delivered first, so its
		 * segment is marked and checked before the runs it lists */
		kvs__chunk_ref bc;
		memcpy(bc.addr, ix.bt.addr, 16);
		bc.seg = 0;
		bc.raw_len = ix.bt.raw_len;
		bc.stored_len = ix.bt.stored_len;
		memset(&g, 0, sizeof(g));
		g.role = KVS__REF_VALUE;
		g.what = "map base table";
		g.segs = &ix.segs[ix.bt.seg];
		g.nsegs = 1;
		g.chunks = &bc;
		g.nchunks = 1;
		g.length = bc.raw_len;
		g.chunk_max = bc.raw_len;
		*where = KVS__REFS_CALLBACK;
		if ((rc = deliver(s, &g, cb, ctx)) < 0) {
			kvs__mapidx_clear(&ix);
			return rc;
		}
		/* what the base runs are is in it: unreadable, like an indirect
		 * manifest's body (fsck reports it, gc deletes nothing) */
		*where = KVS__REFS_LOAD;
		if ((rc = kvs__mapidx_load_base(&ix, s, what, NULL)) < 0)
			return rc;
	}
	*where = KVS__REFS_CALLBACK;
	if (ix.nruns && !(ch = malloc((size_t)ix.nruns * sizeof(*ch)))) {
		kvs__mapidx_clear(&ix);
		return kvs_error_set(KVS_ENOMEM, "out of memory walking the runs of %s", index->name);
	}
	rc = 0;
	for (uint32_t j = 0; j < ix.nsegs && rc == 0; j++) {
		uint32_t n = 0, max = 0;
		uint64_t len = 0;
		for (uint32_t i = 0; i < ix.nruns; i++) {
			const kvs__mrun *r = &ix.runs[i];
			if ((r->flags & KVS__MRUN_INLINE) || r->seg != j)
				continue;
			memcpy(ch[n].addr, r->addr, 16);
			ch[n].seg = 0;
			ch[n].raw_len = r->raw_len;
			ch[n].stored_len = r->stored_len;
			n++;
			len += r->raw_len;
			if (r->raw_len > max)
				max = r->raw_len;
		}
		if (n == 0 && ix.has_bt && j == ix.bt.seg)
			continue;   /* the base table's own segment, delivered above */
		memset(&g, 0, sizeof(g));
		g.role = KVS__REF_VALUE;
		g.what = "map runs";
		g.segs = &ix.segs[j];
		g.nsegs = 1;
		g.chunks = ch;
		g.nchunks = n;
		g.length = len;
		g.hash = NULL;
		g.chunk_max = max;
		rc = deliver(s, &g, cb, ctx);
	}
	free(ch);
	kvs__mapidx_clear(&ix);
	return rc;
}

/*
 * The history of a blob or indirect manifest `cur` (its own groups already
 * delivered): for each older version, its history object as a group of one
 * chunk (the encoded manifest, addressed by its XXH3-128), then, once that
 * object was read and verified, the version's own groups. Any failure to
 * read is KVS__REFS_HISTORY: the committed version stands, but what an
 * older one references is unknown (gc then deletes nothing).
 */
static int history_groups(kvs_store *s, const kvs__manifest *cur, const kvs__refs_cb *cb,
                          void *ctx, int *where, uint64_t *requests)
{
	char what[KVS_KEY_MAX + 48];
	kvs__hentry *e = NULL;
	uint32_t n = 0;
	int rc;

	*where = KVS__REFS_HISTORY;
	snprintf(what, sizeof(what), "key \"%.200s\"", cur->key);
	if ((rc = kvs__hist_parse(&e, &n, cur, what)) < 0)
		return rc;
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		kvs__seg_desc sd;
		kvs__chunk_ref ch;
		kvs__manifest vm, vv;
		kvs__refgroup g;

		memcpy(sd.addr, e[i].seg, 16);
		sd.bytes = e[i].stored_len;
		sd.nchunks = 1;
		memcpy(ch.addr, e[i].addr, 16);
		ch.seg = 0;
		ch.raw_len = e[i].raw_len;
		ch.stored_len = e[i].stored_len;
		memset(&g, 0, sizeof(g));
		g.role = KVS__REF_HISTORY;
		g.what = "history object";
		g.segs = &sd;
		g.nsegs = 1;
		g.chunks = &ch;
		g.nchunks = 1;
		g.length = e[i].raw_len;
		g.hash = e[i].addr;
		g.chunk_max = e[i].raw_len;
		g.generation = e[i].gen;
		*where = KVS__REFS_CALLBACK;
		if ((rc = deliver(s, &g, cb, ctx)) < 0)
			break;
		*where = KVS__REFS_HISTORY;
		if ((rc = kvs__hist_open(&vm, s, &e[i], cur->key, cur->key_len, requests)) < 0)
			break;
		if (vm.kind == KVS__MF_INDIRECT) {
			body_group(&g, &vm);
			g.generation = e[i].gen;
			*where = KVS__REFS_CALLBACK;
			if ((rc = deliver(s, &g, cb, ctx)) < 0) {
				kvs__manifest_clear(&vm);
				break;
			}
			*where = KVS__REFS_HISTORY;
		}
		snprintf(what, sizeof(what), "version %llu of key \"%.200s\"",
		         (unsigned long long)e[i].gen, cur->key);
		if ((rc = kvs__manifest_resolve(&vv, s, &vm, what, requests)) < 0)
			break;
		value_group(&g, &vv);
		g.generation = e[i].gen;
		*where = KVS__REFS_CALLBACK;
		rc = deliver(s, &g, cb, ctx);
		kvs__manifest_clear(&vv);
		if (rc == 0)
			*where = KVS__REFS_HISTORY;
	}
	free(e);
	return rc;
}

static int deliver(kvs_store *s, const kvs__refgroup *g, const kvs__refs_cb *cb, void *ctx)
{
	char name[KVS__NAME_BUF];
	int rc;

	if (cb->group && (rc = cb->group(ctx, g)) < 0)
		return rc;
	if (!cb->segment)
		return 0;
	for (uint32_t i = 0; i < g->nsegs; i++) {
		kvs__segment_name(name, s->name, g->segs[i].addr);
		if ((rc = cb->segment(ctx, g, i, name)) < 0)
			return rc;
	}
	return 0;
}

static int walk(kvs_store *s, const kvs_object *index, const char *key, size_t key_len,
                const kvs__refs_cb *cb, void *ctx, int *stage, uint64_t *requests,
                int with_history)
{
	kvs__manifest m;
	kvs__refgroup g;
	int rc, where = KVS__REFS_DECODE;

	memset(&m, 0, sizeof(m));
	if ((rc = kvs__index_decode(&m, s, index, key, key_len)) < 0)
		goto out;
	where = KVS__REFS_CALLBACK;
	if (cb->index && (rc = cb->index(ctx, m.key, m.key_len)) < 0)
		goto out;
	switch (m.kind) {
	case KVS__MF_BLOB:
		value_group(&g, &m);
		if ((rc = deliver(s, &g, cb, ctx)) == 0)
			rc = with_history ? history_groups(s, &m, cb, ctx, &where, requests) : 0;
		break;
	case KVS__MF_INDIRECT:
		body_group(&g, &m);
		if ((rc = deliver(s, &g, cb, ctx)) < 0)
			break;
		/* The value's own tables are in the body: read and verify it. */
		kvs__manifest_clear(&m);
		where = KVS__REFS_LOAD;
		if ((rc = kvs__index_load(&m, s, index, key, key_len, requests)) < 0)
			break;
		where = KVS__REFS_CALLBACK;
		value_group(&g, &m);
		if ((rc = deliver(s, &g, cb, ctx)) == 0)
			rc = with_history ? history_groups(s, &m, cb, ctx, &where, requests) : 0;
		break;
	case KVS__MF_MAP:
		rc = map_groups(s, index, &m, cb, ctx, &where);
		break;
	default:
		/* the decoder refuses kinds it does not know */
		where = KVS__REFS_DECODE;
		rc = kvs_error_set(KVS_EUNSUPPORTED, "index %s: manifest kind %d has no references "
		                   "walker", index->name, (int)m.kind);
		break;
	}
out:
	kvs__manifest_clear(&m);
	if (stage)
		*stage = rc < 0 ? where : KVS__REFS_OK;
	return rc;
}

int kvs__refs_walk(kvs_store *s, const kvs_object *index, const char *key, size_t key_len,
                   const kvs__refs_cb *cb, void *ctx, int *stage, uint64_t *requests)
{
	return walk(s, index, key, key_len, cb, ctx, stage, requests, 1);
}

/* ---- the set of addresses ------------------------------------------------ */

typedef struct addrset {
	uint8_t (*v)[16];
	size_t n, cap;
} addrset;

static int add_addr(void *ctx, const kvs__refgroup *g, uint32_t i, const char *name)
{
	addrset *a = ctx;

	(void)name;
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 64;
		uint8_t (*nv)[16] = realloc(a->v, nc * sizeof(*nv));
		if (!nv)
			return kvs_error_set(KVS_ENOMEM, "out of memory collecting segment references");
		a->v = nv;
		a->cap = nc;
	}
	memcpy(a->v[a->n++], g->segs[i].addr, 16);
	return 0;
}

static int cmp_addr(const void *x, const void *y)
{
	return memcmp(x, y, 16);
}

static int segments(uint8_t (**out)[16], size_t *n, kvs_store *s, const kvs_object *index,
                    int *stage, uint64_t *requests, int with_history)
{
	static const kvs__refs_cb cb = { NULL, NULL, add_addr };
	addrset a = { NULL, 0, 0 };
	size_t w = 0;
	int rc = walk(s, index, NULL, 0, &cb, &a, stage, requests, with_history);

	if (a.n > 1)
		qsort(a.v, a.n, sizeof(*a.v), cmp_addr);
	for (size_t i = 0; i < a.n; i++)
		if (w == 0 || memcmp(a.v[w - 1], a.v[i], 16) != 0)
			memmove(a.v[w++], a.v[i], 16);
	*out = a.v;
	*n = w;
	return rc;
}

int kvs__refs_segments(uint8_t (**out)[16], size_t *n, kvs_store *s, const kvs_object *index,
                       int *stage, uint64_t *requests)
{
	return segments(out, n, s, index, stage, requests, 1);
}

int kvs__refs_segments_current(uint8_t (**out)[16], size_t *n, kvs_store *s,
                               const kvs_object *index, int *stage, uint64_t *requests)
{
	return segments(out, n, s, index, stage, requests, 0);
}

int kvs__refs_has(uint8_t (*addrs)[16], size_t n, const uint8_t addr[16])
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(addrs[mid], addr, 16);
		if (c == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}
