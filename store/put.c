/*
 * put.c — the commit protocol (docs/design.md "Put").
 *
 * A put reads the base index, then streams the value through a window:
 * FastCDC cuts it, each chunk is hashed (XXH3-128) and looked up among the
 * chunks already known (the base manifest's, and this put's own); new chunks
 * are lz4-compressed (by a few threads, one window at a time) and packed in
 * value order into segments of about segment_target stored bytes, which are
 * created `concurrency` at a time. AlreadyExists means the segment is there:
 * it is touched (metadata-only update) so gc cannot take it. When the whole
 * value is in, sparse base segments may be repacked (design.md "Sizes"),
 * segments created or touched too long ago are touched again, and the index
 * is committed with the base resourceVersion. Nothing is visible before that
 * commit, so every failure leaves the old value as it was.
 *
 * Memory: the window (4 MiB + chunk_max), its compressed chunks, the open
 * segment and at most `concurrency` sealed segments, plus a few dozen bytes
 * per chunk of the value — never the value itself.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "codec.h"
#include "internal.h"

/* The writer's random id of one commit attempt (docs/format.md §1.1). */
#define ANN_COMMIT "kvsplit.io/commit"
#define COMMIT_ID_LEN 16

#define WINDOW (4u << 20)
#define MAX_KNOWN (1u << 24)
#define NO_SLOT UINT32_MAX

/* A segment this put may reference. */
typedef struct slot {
	uint8_t addr[16];
	uint64_t bytes;       /* stored bytes of all its chunks */
	uint32_t nchunks;
	int fresh;            /* created or touched by this put (else reused from base) */
	int64_t t_mono;       /* when created/touched (fresh only), local monotonic ms */
	int64_t t_srv;        /* the same on the server clock (a lower bound) */
	uint64_t live;        /* distinct referenced stored bytes */
	uint32_t out;         /* index in the manifest being built */
	int ref;              /* referenced by a manifest this put built */
} slot;

/* A distinct chunk this put knows about. */
typedef struct known {
	uint8_t addr[16];
	uint32_t slot;        /* NO_SLOT while being compressed */
	uint32_t raw_len;
	uint32_t stored_len;
	uint8_t used, seen;   /* referenced by the value / counted in live */
} known;

/* An ordered chunk list (the value's, or an indirect body's). */
typedef struct clist {
	uint32_t *k;          /* known index per chunk */
	size_t n, cap;
	uint64_t length;
	XXH3_state_t hash;
} clist;

/* One chunk of the current window. */
typedef struct job {
	const uint8_t *p;
	uint32_t len;
	uint32_t k;
	int fresh;
	uint8_t *blob;
	uint32_t blen;
} job;

typedef struct put {
	kvs_store *s;
	const char *key;
	size_t klen;
	char iname[KVS__NAME_BUF];
	const kvs_put_options *po;
	/* base */
	int has_base;
	char base_rv[KVS_VER_MAX];
	uint64_t base_gen;
	/* segments and chunks */
	slot *slots;
	size_t nslots, capslots;
	known *kn;
	size_t nkn, capkn;
	uint32_t *tab;        /* open addressing: known index + 1 */
	size_t tabcap;
	/* open segment */
	kvs__seg_entry *bent;
	size_t nbent, capbent;
	uint64_t bbytes;
	uint32_t bslot;
	/* sealed, not yet created */
	kvs_object *pend[KVS__MAX_CONCURRENCY];
	uint32_t pslot[KVS__MAX_CONCURRENCY];
	size_t npend;
	/* window */
	job *jobs;
	size_t njobs, capjobs;
	/* figures */
	kvs_put_stats st;
	int quiet;            /* no progress reports (indirect body) */
	int inl;              /* the manifest is inline */
} put;

/* ---- small helpers ------------------------------------------------------ */

static int grow(void **p, size_t *cap, size_t need, size_t elem, size_t hard)
{
	size_t nc;
	void *np;

	if (need <= *cap)
		return 0;
	if (need > hard)
		return kvs_error_set(KVS_ETOOBIG, "more than %zu entries", hard);
	nc = *cap ? *cap * 2 : 64;
	while (nc < need)
		nc *= 2;
	if (nc > hard)
		nc = hard;
	if (!(np = realloc(*p, nc * elem)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	*p = np;
	*cap = nc;
	return 0;
}

static uint64_t addr_hash(const uint8_t a[16])
{
	uint64_t h;
	memcpy(&h, a, 8);
	return h;
}

static int tab_rehash(put *P, size_t ncap)
{
	uint32_t *t = calloc(ncap, sizeof(*t));

	if (!t)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	for (size_t i = 0; i < P->nkn; i++) {
		size_t j = (size_t)addr_hash(P->kn[i].addr) & (ncap - 1);
		while (t[j])
			j = (j + 1) & (ncap - 1);
		t[j] = (uint32_t)i + 1;
	}
	free(P->tab);
	P->tab = t;
	P->tabcap = ncap;
	return 0;
}

/* Index of a known chunk, or -1. */
static long kn_find(const put *P, const uint8_t a[16])
{
	size_t j;

	if (!P->tabcap)
		return -1;
	j = (size_t)addr_hash(a) & (P->tabcap - 1);
	while (P->tab[j]) {
		if (memcmp(P->kn[P->tab[j] - 1].addr, a, 16) == 0)
			return (long)P->tab[j] - 1;
		j = (j + 1) & (P->tabcap - 1);
	}
	return -1;
}

static int kn_add(put *P, const uint8_t a[16], uint32_t slotno, uint32_t raw, uint32_t stored,
                  uint32_t *out)
{
	int rc;
	size_t j;

	if ((rc = grow((void **)&P->kn, &P->capkn, P->nkn + 1, sizeof(known), MAX_KNOWN)) < 0)
		return rc;
	if ((P->nkn + 1) * 2 > P->tabcap &&
	    (rc = tab_rehash(P, P->tabcap ? P->tabcap * 2 : 1024)) < 0)
		return rc;
	memset(&P->kn[P->nkn], 0, sizeof(known));
	memcpy(P->kn[P->nkn].addr, a, 16);
	P->kn[P->nkn].slot = slotno;
	P->kn[P->nkn].raw_len = raw;
	P->kn[P->nkn].stored_len = stored;
	j = (size_t)addr_hash(a) & (P->tabcap - 1);
	while (P->tab[j])
		j = (j + 1) & (P->tabcap - 1);
	P->tab[j] = (uint32_t)P->nkn + 1;
	*out = (uint32_t)P->nkn++;
	return 0;
}

static int slot_add(put *P, uint32_t *out)
{
	int rc = grow((void **)&P->slots, &P->capslots, P->nslots + 1, sizeof(slot),
	              2 * (size_t)KVS__MF_MAX_SEGS);
	if (rc < 0)
		return rc;
	memset(&P->slots[P->nslots], 0, sizeof(slot));
	*out = (uint32_t)P->nslots++;
	return 0;
}

static int cl_add(clist *c, uint32_t k, uint32_t raw)
{
	int rc = grow((void **)&c->k, &c->cap, c->n + 1, sizeof(uint32_t), KVS__MF_MAX_CHUNKS);
	if (rc == KVS_ETOOBIG)
		return kvs_error_set(rc, "value needs more than 2^22 chunks (raise chunk_avg)");
	if (rc < 0)
		return rc;
	c->k[c->n++] = k;
	c->length += raw;
	return 0;
}

/* ---- backend calls ------------------------------------------------------ */

static int server_now(put *P, int64_t *ms)
{
	P->st.requests++;
	*ms = 0;
	return P->s->be->ops->now(P->s->be, ms);
}

/* Touch a segment: a metadata-only update that bumps its resourceVersion,
 * so a gc that listed it earlier cannot delete it (design.md). */
static int touch(put *P, uint32_t sl)
{
	char name[KVS__NAME_BUF], now[32];
	int64_t ms;
	kvs_kv kv;
	int rc;

	kvs__segment_name(name, P->s->name, P->slots[sl].addr);
	if ((rc = server_now(P, &ms)) < 0)
		return rc;
	snprintf(now, sizeof(now), "%lld", (long long)ms);
	kv.key = (char *)KVS__ANN_TOUCHED;
	kv.value = now;
	P->st.requests++;
	rc = P->s->be->ops->annotate(P->s->be, NULL, name, &kv, 1);
	if (rc == 0) {
		P->slots[sl].fresh = 1;
		P->slots[sl].t_mono = kvs__mono_ms();
		P->slots[sl].t_srv = ms;
	}
	return rc;
}

/* Context for a failed segment call: the backends' details usually name the
 * object already ("create configmap ns/NAME: ..."); name it only if not. */
static int seg_fail(put *P, int rc, const char *what, const char *name)
{
	if (strstr(kvs_error_last(), name))
		return kvs_error_set(rc, "key \"%s\": %s", P->key, kvs_error_last());
	return kvs_error_set(rc, "key \"%s\": %s %s: %s", P->key, what, name, kvs_error_last());
}

/* Create the sealed segments (one batch when the backend has one). */
static int flush(put *P)
{
	kvs_op ops[KVS__MAX_CONCURRENCY];
	size_t n = P->npend;
	int64_t srv;
	int rc = 0;

	if (n == 0)
		return 0;
	/* server time before the creates: a lower bound of their creation */
	if ((rc = server_now(P, &srv)) < 0)
		return rc;
	memset(ops, 0, sizeof(ops));
	for (size_t i = 0; i < n; i++) {
		ops[i].kind = KVS_OP_CREATE;
		ops[i].in = P->pend[i];
	}
	P->st.requests += n;
	if (P->s->be->ops->batch && n > 1) {
		rc = P->s->be->ops->batch(P->s->be, ops, n);
	} else {
		for (size_t i = 0; i < n; i++)
			ops[i].result = P->s->be->ops->create(P->s->be, NULL, P->pend[i]);
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t sl = P->pslot[i];
		kvs_object_free(ops[i].out);
		if (rc < 0)
			continue;
		if (ops[i].result == 0) {
			P->slots[sl].fresh = 1;
			P->slots[sl].t_mono = kvs__mono_ms();
			P->slots[sl].t_srv = srv;
			P->st.segments_written++;
			P->st.chunks_written += P->slots[sl].nchunks;
			P->st.bytes_written += P->slots[sl].bytes;
		} else if (ops[i].result == KVS_EEXISTS) {
			rc = touch(P, sl);
			if (rc == KVS_ENOTFOUND) {
				/* deleted between our create and touch: create it again */
				P->st.requests++;
				rc = P->s->be->ops->create(P->s->be, NULL, P->pend[i]);
				if (rc == 0) {
					P->slots[sl].fresh = 1;
					P->slots[sl].t_mono = kvs__mono_ms();
					P->slots[sl].t_srv = srv;
					P->st.segments_written++;
					P->st.bytes_written += P->slots[sl].bytes;
				}
			}
			if (rc < 0)
				rc = seg_fail(P, rc, "segment", P->pend[i]->name);
		} else {
			/* After a batch the detail is that of the op that failed last:
			 * report the segment it names, with that op's code. */
			size_t j = i;
			for (size_t k = 0; k < n; k++)
				if (ops[k].result < 0 && ops[k].result != KVS_EEXISTS &&
				    strstr(kvs_error_last(), P->pend[k]->name))
					j = k;
			rc = seg_fail(P, ops[j].result, "creating segment", P->pend[j]->name);
		}
	}
	for (size_t i = 0; i < n; i++) {
		kvs_object_free(P->pend[i]);
		P->pend[i] = NULL;
	}
	P->npend = 0;
	return rc;
}

/* Close the open segment: compute its address, build its object, queue it. */
static int seal(put *P)
{
	kvs_object *obj;
	slot *sl;
	int rc;

	if (P->nbent == 0)
		return 0;
	sl = &P->slots[P->bslot];
	rc = kvs__seg_build(&obj, sl->addr, P->s->name, P->bent, P->nbent);
	sl->bytes = P->bbytes;
	sl->nchunks = (uint32_t)P->nbent;
	P->nbent = 0;
	P->bbytes = 0;
	if (rc < 0)
		return rc;
	P->pend[P->npend] = obj;
	P->pslot[P->npend++] = P->bslot;
	if (P->npend >= P->s->opts.concurrency)
		return flush(P);
	return 0;
}

/* Add one compressed chunk (takes `blob`) to the open segment. */
static int pack(put *P, uint32_t k, uint8_t *blob, uint32_t blen)
{
	int rc;

	if (P->nbent && P->bbytes + blen > P->s->seg_cap && (rc = seal(P)) < 0) {
		free(blob);
		return rc;
	}
	if (P->nbent == 0 && (rc = slot_add(P, &P->bslot)) < 0) {
		free(blob);
		return rc;
	}
	if ((rc = grow((void **)&P->bent, &P->capbent, P->nbent + 1, sizeof(kvs__seg_entry),
	               1u << 20)) < 0) {
		free(blob);
		return rc;
	}
	memcpy(P->bent[P->nbent].addr, P->kn[k].addr, 16);
	P->bent[P->nbent].blob = blob;
	P->bent[P->nbent].len = blen;
	P->nbent++;
	P->bbytes += blen;
	P->kn[k].slot = P->bslot;
	P->kn[k].stored_len = blen;
	return 0;
}

/* ---- the window --------------------------------------------------------- */

typedef struct pool {
	job *jobs;
	size_t n;
	size_t next;          /* atomic */
	int accel;
	int failed;           /* atomic */
} pool;

static void compress_some(pool *pl)
{
	for (;;) {
		size_t i = __atomic_fetch_add(&pl->next, 1, __ATOMIC_RELAXED);
		job *j;
		size_t bound;
		if (i >= pl->n)
			return;
		j = &pl->jobs[i];
		if (!j->fresh)
			continue;
		bound = kvs__blob_bound(j->len);
		if (!(j->blob = malloc(bound))) {
			__atomic_store_n(&pl->failed, 1, __ATOMIC_RELAXED);
			continue;
		}
		j->blen = (uint32_t)kvs__blob_encode(j->blob, bound, j->p, j->len, pl->accel);
		if (j->blen < bound / 2) {   /* give back what lz4 did not need */
			uint8_t *b = realloc(j->blob, j->blen);
			if (b)
				j->blob = b;
		}
	}
}

static void *compress_thread(void *arg)
{
	compress_some(arg);
	return NULL;
}

/* Compress the fresh jobs of the window, on up to s->workers threads. */
static int compress_window(put *P, size_t nfresh)
{
	pthread_t th[8];
	size_t nt = 0, want;
	pool pl = { P->jobs, P->njobs, 0, (int)P->s->opts.lz4_accel, 0 };

	want = P->s->workers;
	if (want > nfresh)
		want = nfresh;
	for (; nt + 1 < want; nt++)
		if (pthread_create(&th[nt], NULL, compress_thread, &pl) != 0)
			break;
	compress_some(&pl);
	for (size_t i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	if (pl.failed)
		return kvs_error_set(KVS_ENOMEM, "out of memory compressing chunks");
	return 0;
}

/* Hash, look up, compress and pack the chunks of the window, in order. */
static int run_window(put *P, clist *cl)
{
	size_t nfresh = 0;
	int rc = 0;

	for (size_t i = 0; i < P->njobs; i++) {
		job *j = &P->jobs[i];
		uint8_t a[16];
		long k;
		kvs__addr_of(a, j->p, j->len);
		XXH3_128bits_update(&cl->hash, j->p, j->len);
		k = kn_find(P, a);
		j->fresh = 0;
		j->blob = NULL;
		if (k >= 0 && P->kn[k].raw_len == j->len) {
			j->k = (uint32_t)k;
		} else if (k >= 0) {
			return kvs_error_set(KVS_ECORRUPT, "key \"%s\": two chunks of different sizes share "
			                     "the address of one (XXH3-128 collision or corrupt base)", P->key);
		} else {
			if ((rc = kn_add(P, a, NO_SLOT, j->len, 0, &j->k)) < 0)
				return rc;
			j->fresh = 1;
			nfresh++;
		}
		if ((rc = cl_add(cl, j->k, j->len)) < 0)
			return rc;
	}
	if (nfresh && (rc = compress_window(P, nfresh)) < 0)
		goto out;
	for (size_t i = 0; i < P->njobs; i++) {
		job *j = &P->jobs[i];
		if (!j->fresh)
			continue;
		rc = pack(P, j->k, j->blob, j->blen);
		j->blob = NULL;
		if (rc < 0)
			goto out;
	}
out:
	for (size_t i = 0; i < P->njobs; i++) {
		free(P->jobs[i].blob);
		P->jobs[i].blob = NULL;
	}
	P->njobs = 0;
	return rc;
}

/* Cut [p, p+n) into chunks (leaving a tail shorter than chunk_max unless
 * `final`) and run them. Returns the bytes consumed through *used. */
static int cut_region(put *P, clist *cl, const uint8_t *p, size_t n, int final, size_t *used)
{
	size_t off = 0;
	int rc;

	while (off < n) {
		size_t c;
		if (!final && n - off < P->s->cdc.max)
			break;
		c = kvs__cdc_cut(&P->s->cdc, p + off, n - off);
		if ((rc = grow((void **)&P->jobs, &P->capjobs, P->njobs + 1, sizeof(job), 1u << 20)) < 0)
			return rc;
		P->jobs[P->njobs].p = p + off;
		P->jobs[P->njobs].len = (uint32_t)c;
		P->jobs[P->njobs].blob = NULL;
		P->njobs++;
		off += c;
	}
	*used = off;
	return run_window(P, cl);
}

typedef struct source {
	const uint8_t *data;  /* buffer put */
	size_t len;
	kvs_read_cb read;     /* streaming put */
	void *ctx;
} source;

static int progress(put *P, uint64_t done, uint64_t total)
{
	if (!P->quiet && P->po && P->po->progress && P->po->progress(P->po->progress_ctx, done, total) != 0)
		return kvs_error_set(KVS_ECANCELED, "key \"%s\": canceled by the progress callback", P->key);
	return 0;
}

static int ingest(put *P, clist *cl, const source *src)
{
	size_t cap, have = 0, used;
	uint8_t *win;
	int eof = 0, rc = 0;

	if (src->data || !src->read) {
		for (size_t pos = 0; pos < src->len || (pos == 0 && src->len == 0);) {
			size_t n = src->len - pos > WINDOW ? WINDOW : src->len - pos;
			int final = pos + n == src->len;
			if ((rc = cut_region(P, cl, src->data + pos, n, final, &used)) < 0)
				return rc;
			pos += used;
			if ((rc = progress(P, pos, src->len)) < 0 || final)
				return rc;
		}
		return 0;
	}
	cap = WINDOW + P->s->cdc.max;
	if (!(win = malloc(cap)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	while (!eof) {
		while (have < cap && !eof) {
			size_t got = 0;
			if (src->read(src->ctx, win + have, cap - have, &got) != 0) {
				rc = kvs_error_set(KVS_ECANCELED, "key \"%s\": the read callback failed", P->key);
				goto out;
			}
			if (got > cap - have) {
				rc = kvs_error_set(KVS_EINVAL, "key \"%s\": read callback returned too much", P->key);
				goto out;
			}
			eof = got == 0;
			have += got;
		}
		if (cl->length + have > KVS__MF_MAX_LENGTH) {
			rc = kvs_error_set(KVS_ETOOBIG, "key \"%s\": value longer than 2^40 bytes", P->key);
			goto out;
		}
		if ((rc = cut_region(P, cl, win, have, eof, &used)) < 0)
			goto out;
		memmove(win, win + used, have - used);
		have -= used;
		if ((rc = progress(P, cl->length, 0)) < 0)
			goto out;
	}
out:
	free(win);
	return rc;
}

/* ---- base manifest ------------------------------------------------------ */

/* Make the chunks of a base manifest reusable: one slot per segment. */
static int adopt(put *P, const kvs__manifest *m)
{
	uint32_t first = (uint32_t)P->nslots, k;
	int rc;

	if (m->is_inline)
		return 0;
	for (uint32_t i = 0; i < m->nsegs; i++) {
		uint32_t sl;
		if ((rc = slot_add(P, &sl)) < 0)
			return rc;
		memcpy(P->slots[sl].addr, m->segs[i].addr, 16);
		P->slots[sl].bytes = m->segs[i].bytes;
		P->slots[sl].nchunks = m->segs[i].nchunks;
	}
	for (uint32_t i = 0; i < m->nchunks; i++) {
		const kvs__chunk_ref *c = &m->chunks[i];
		if (kn_find(P, c->addr) >= 0)
			continue;
		if ((rc = kn_add(P, c->addr, first + c->seg, c->raw_len, c->stored_len, &k)) < 0)
			return rc;
	}
	return 0;
}

/* Step 1: read the base index and check the expected version. */
static int read_base(put *P, int adopt_chunks)
{
	kvs_object *idx = NULL;
	kvs__manifest outer, inner;
	const char *ev = P->po ? P->po->expect_version : NULL;
	int rc;

	P->st.requests++;
	rc = P->s->be->ops->get(P->s->be, &idx, P->iname);
	if (rc == KVS_ENOTFOUND) {
		P->has_base = 0;
		P->base_gen = 0;
		P->base_rv[0] = '\0';
		if (ev && *ev)
			return kvs_error_set(KVS_ECONFLICT, "key \"%s\" does not exist (expected version %s)",
			                     P->key, ev);
		return 0;
	}
	if (rc < 0)
		return rc;
	P->has_base = 1;
	snprintf(P->base_rv, sizeof(P->base_rv), "%s", idx->resource_version);
	if (ev && !*ev) {
		kvs_object_free(idx);
		return kvs_error_set(KVS_EEXISTS, "key \"%s\" exists (create-only put)", P->key);
	}
	if (ev && strcmp(ev, P->base_rv) != 0) {
		kvs_object_free(idx);
		return kvs_error_set(KVS_ECONFLICT, "key \"%s\" is at version %s, not %s", P->key,
		                     P->base_rv, ev);
	}
	/* A base that does not decode is simply not reused: the put replaces it. */
	P->base_gen = 0;
	if (kvs__index_decode(&outer, P->s, idx, P->key, P->klen) == 0) {
		P->base_gen = outer.generation;
		if (adopt_chunks && outer.kind == KVS__MF_INDIRECT &&
		    kvs__index_load(&inner, P->s, idx, P->key, P->klen, &P->st.requests) == 0) {
			if ((rc = adopt(P, &inner)) == 0)
				rc = adopt(P, &outer);
			kvs__manifest_clear(&inner);
		} else if (adopt_chunks && outer.kind == KVS__MF_BLOB) {
			rc = adopt(P, &outer);
		}
	}
	kvs__manifest_clear(&outer);
	kvs_object_free(idx);
	return rc < 0 ? rc : 0;
}

/* ---- repack and manifest ------------------------------------------------ */

/* Mark the chunks a list uses and sum each slot's live bytes. */
static uint64_t mark_live(put *P, const clist *cl)
{
	uint64_t total = 0;

	for (size_t i = 0; i < cl->n; i++) {
		known *k = &P->kn[cl->k[i]];
		k->used = 1;
		if (!k->seen) {
			k->seen = 1;
			P->slots[k->slot].live += k->stored_len;
			total += k->stored_len;
		}
	}
	return total;
}

static int cmp_live(const void *a, const void *b, void *arg)
{
	const slot *s = arg;
	uint64_t x = s[*(const uint32_t *)a].live, y = s[*(const uint32_t *)b].live;
	return x < y ? -1 : x > y;
}

/*
 * Repack rule (design.md "Sizes"): a reused base segment whose live bytes are
 * under half its size has its live chunks copied into new segments, cheapest
 * first, as long as the copies cost at most a tenth of the value's stored
 * bytes. Blobs are copied as stored (no recompression), after verification.
 */
static int repack(put *P, uint64_t value_stored)
{
	uint32_t *cand = NULL;
	size_t nc = 0;
	uint64_t budget = value_stored / 10, spent = 0;
	int rc = 0;

	if (!(cand = malloc((P->nslots ? P->nslots : 1) * sizeof(*cand))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	for (uint32_t i = 0; i < P->nslots; i++)
		if (!P->slots[i].fresh && P->slots[i].live && P->slots[i].live * 2 < P->slots[i].bytes)
			cand[nc++] = i;
	qsort_r(cand, nc, sizeof(*cand), cmp_live, P->slots);
	for (size_t c = 0; c < nc && rc == 0; c++) {
		uint32_t sl = cand[c];
		kvs__segment *sg = NULL;
		if (spent + P->slots[sl].live > budget)
			break;
		if (kvs__segment_fetch(&sg, P->s, P->slots[sl].addr, &P->st.requests) < 0)
			continue;   /* leave the reference as it is */
		spent += P->slots[sl].live;
		for (size_t k = 0; k < P->nkn && rc == 0; k++) {
			known *kn = &P->kn[k];
			const kvs_blob *b;
			uint8_t *copy, *raw, a[16];
			if (kn->slot != sl || !kn->used)
				continue;
			b = kvs__seg_find(sg, kn->addr);
			if (!b || b->len != kn->stored_len)
				continue;
			if (!(raw = malloc(kn->raw_len))) {
				rc = kvs_error_set(KVS_ENOMEM, "out of memory");
				break;
			}
			if (kvs__blob_decode(raw, kn->raw_len, b->data, b->len) < 0 ||
			    (kvs__addr_of(a, raw, kn->raw_len), memcmp(a, kn->addr, 16) != 0)) {
				free(raw);
				continue;
			}
			free(raw);
			if (!(copy = malloc(b->len))) {
				rc = kvs_error_set(KVS_ENOMEM, "out of memory");
				break;
			}
			memcpy(copy, b->data, b->len);
			P->slots[sl].live -= kn->stored_len;
			rc = pack(P, (uint32_t)k, copy, (uint32_t)b->len);
			if (rc == 0)
				P->slots[P->kn[k].slot].live += kn->stored_len;
		}
		kvs__seg_unref(sg);
	}
	free(cand);
	return rc;
}

/* The segment table and chunk list of a manifest from a chunk list. */
static int to_tables(put *P, const clist *cl, kvs__manifest *m)
{
	uint32_t ns = 0;

	for (size_t i = 0; i < P->nslots; i++)
		P->slots[i].out = NO_SLOT;
	m->chunks = calloc(cl->n ? cl->n : 1, sizeof(*m->chunks));
	m->segs = calloc(P->nslots ? P->nslots : 1, sizeof(*m->segs));
	if (!m->chunks || !m->segs)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	for (size_t i = 0; i < cl->n; i++) {
		const known *k = &P->kn[cl->k[i]];
		slot *sl = &P->slots[k->slot];
		sl->ref = 1;
		if (sl->out == NO_SLOT) {
			if (ns >= KVS__MF_MAX_SEGS)
				return kvs_error_set(KVS_ETOOBIG, "key \"%s\": more than 2^20 segments", P->key);
			sl->out = ns;
			memcpy(m->segs[ns].addr, sl->addr, 16);
			m->segs[ns].bytes = sl->bytes;
			m->segs[ns].nchunks = sl->nchunks;
			ns++;
		}
		memcpy(m->chunks[i].addr, k->addr, 16);
		m->chunks[i].seg = sl->out;
		m->chunks[i].raw_len = k->raw_len;
		m->chunks[i].stored_len = k->stored_len;
	}
	m->nsegs = ns;
	m->nchunks = (uint32_t)cl->n;
	return 0;
}

static void base_fields(put *P, kvs__manifest *m, const clist *cl)
{
	XXH128_canonical_t h;

	m->kind = KVS__MF_BLOB;
	m->key = (char *)P->key;
	m->key_len = P->klen;
	m->length = cl->length;
	XXH128_canonicalFromHash(&h, XXH3_128bits_digest(&cl->hash));
	memcpy(m->hash, h.digest, 16);
	m->generation = P->base_gen + 1;
	m->codec = 1;
	m->cdc_min = P->s->cdc.min;
	m->cdc_avg = P->s->cdc.avg;
	m->cdc_max = P->s->cdc.max;
}

/* Release a manifest whose key points at the caller's key. */
static void mf_release(kvs__manifest *m)
{
	m->key = NULL;
	kvs__manifest_clear(m);
}

/* ---- commit ------------------------------------------------------------- */

/* A fresh commit id: COMMIT_ID_LEN lowercase hex digits from getrandom(2). */
static int new_commit_id(char out[COMMIT_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[COMMIT_ID_LEN / 2];
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kvs_error_set(KVS_ERROR, "getrandom: %s", strerror(errno));
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(r); i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[COMMIT_ID_LEN] = '\0';
	return 0;
}

/* Is `idx` (as re-read) the object our commit `id` of manifest `mf` wrote? */
static int is_our_commit(const kvs_object *idx, const char *id, const uint8_t *mf, size_t mflen)
{
	const char *a = kvs_object_annotation(idx, ANN_COMMIT);
	const kvs_blob *b = kvs_object_data(idx, KVS__INDEX_DATA_KEY);

	return a && strcmp(a, id) == 0 && b && b->len == mflen && memcmp(b->data, mf, mflen) == 0;
}

/*
 * Step 5. Returns 0 (committed; *out is the new version), KVS_ECONFLICT (the
 * index is not at the base any more and our commit is not there: *seen
 * holds the index as re-read, NULL when absent, for a blind put's rebase),
 * or another error.
 *
 * The response to the commit may be lost after the server applied it: the
 * Kubernetes backend then re-sends it and gets Conflict/AlreadyExists
 * caused by our own commit, or the call ends in KVS_EIO/KVS_ETIMEOUT with
 * the outcome unknown. So on those codes the index is read back: if it
 * carries our commit id and exactly our manifest, the commit applied.
 */
static int commit(put *P, const uint8_t *mf, size_t mflen, uint64_t length, uint64_t gen,
                  kvs_ver *out, kvs_object **seen)
{
	kvs_object *idx = kvs_object_new(P->iname), *res = NULL, *cur = NULL;
	char num[32], id[COMMIT_ID_LEN + 1], err[512], rerr[512];
	int rc, rrc;

	*seen = NULL;
	if (!idx)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if ((rc = new_commit_id(id)) < 0)
		goto out;
	if ((rc = kvs__set_labels(idx, P->s->name, KVS__ROLE_INDEX)) < 0)
		goto out;
	if ((rc = kvs_object_set_annotation(idx, KVS__ANN_KEY, P->key)) < 0)
		goto out;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)length);
	if ((rc = kvs_object_set_annotation(idx, KVS__ANN_LENGTH, num)) < 0)
		goto out;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)gen);
	if ((rc = kvs_object_set_annotation(idx, KVS__ANN_GENERATION, num)) < 0 ||
	    (rc = kvs_object_set_annotation(idx, ANN_COMMIT, id)) < 0 ||
	    (rc = kvs_object_add_data(idx, KVS__INDEX_DATA_KEY, mf, mflen)) < 0)
		goto out;
	P->st.requests++;
	if (P->has_base) {
		if ((rc = kvs_object_set_rv(idx, P->base_rv)) < 0)
			goto out;
		rc = P->s->be->ops->replace(P->s->be, &res, idx);
	} else {
		rc = P->s->be->ops->create(P->s->be, &res, idx);
	}
	if (rc == 0) {
		P->st.bytes_written += mflen;
		if (out)
			snprintf(out->str, sizeof(out->str), "%s", res ? res->resource_version : "");
		goto out;
	}
	if (rc == KVS_ENOTFOUND && P->has_base) {
		rc = KVS_ECONFLICT;   /* deleted since we read it: it cannot hold our commit */
		goto reread;
	}
	if (rc != KVS_ECONFLICT && rc != KVS_EEXISTS && rc != KVS_EIO && rc != KVS_ETIMEOUT)
		goto out;
	if (rc == KVS_EEXISTS)
		rc = KVS_ECONFLICT;   /* created since we read it, or by our own lost create */
reread:
	snprintf(err, sizeof(err), "%s", kvs_error_last());
	P->st.requests++;
	rrc = P->s->be->ops->get(P->s->be, &cur, P->iname);
	if (rrc < 0 && rrc != KVS_ENOTFOUND) {
		snprintf(rerr, sizeof(rerr), "%s", kvs_error_last());
		rc = kvs_error_set(rc == KVS_ECONFLICT ? rrc : rc,
		                   "key \"%s\": the outcome of the commit is unknown (%s; re-reading "
		                   "the index failed: %s); check with `kvsplit stat %s` (version, "
		                   "length, hash), or whether ConfigMap %s has annotation "
		                   ANN_COMMIT "=%s", P->key, err, rerr, P->key, P->iname, id);
		goto out;
	}
	if (rrc == 0 && is_our_commit(cur, id, mf, mflen)) {
		/* Applied: its response was lost, or a re-send of it conflicted with it. */
		P->st.bytes_written += mflen;
		if (out)
			snprintf(out->str, sizeof(out->str), "%s", cur->resource_version);
		rc = 0;
		goto out;
	}
	if (rc == KVS_ECONFLICT) {
		*seen = cur;
		cur = NULL;
		kvs_error_set(rc, "%s", err);
		goto out;
	}
	/* KVS_EIO / KVS_ETIMEOUT, and the index does not hold our commit */
	if (rrc == KVS_ENOTFOUND ? !P->has_base
	                         : P->has_base && strcmp(cur->resource_version, P->base_rv) == 0) {
		rc = kvs_error_set(rc, "key \"%s\": the commit did not apply, the old value is intact "
		                   "(%s)", P->key, err);
	} else if (!P->po || !P->po->expect_version) {
		/* Moved on under us: for a blind put, exactly a lost race. */
		*seen = cur;
		cur = NULL;
		rc = kvs_error_set(KVS_ECONFLICT, "key \"%s\": committed by another writer (%s)",
		                   P->key, err);
	} else {
		rc = kvs_error_set(rc, "key \"%s\": the outcome of the commit is unknown (%s), and "
		                   "the key has moved on from version %s to %s since (another writer); "
		                   "check with `kvsplit stat %s`", P->key, err,
		                   P->has_base ? P->base_rv : "(none)",
		                   cur ? cur->resource_version : "(deleted)", P->key);
	}
out:
	kvs_object_free(idx);
	kvs_object_free(res);
	kvs_object_free(cur);
	return rc;
}

/*
 * Step 4: every fresh segment must have been created/touched within the
 * touch window; touch it again otherwise (gone: KVS_ETIMEOUT). The age is
 * measured on the local monotonic clock (design.md) and, as a second guard
 * against a writer that was suspended or a server clock running fast, on the
 * server clock; half the window is the threshold, leaving the other half for
 * the commit itself. A touch takes time too, so the check is repeated until
 * a pass touches nothing (bounded: a writer that cannot keep up fails).
 */
static int refresh(put *P)
{
	int64_t w = (int64_t)P->s->opts.touch_window_s * 1000;
	int rc, any = 0;

	for (size_t i = 0; i < P->nslots; i++)
		any |= P->slots[i].fresh && P->slots[i].ref;
	if (!any)
		return 0;
	for (int pass = 0; pass < 4; pass++) {
		int64_t now = kvs__mono_ms(), srv;
		int touched = 0;
		if ((rc = server_now(P, &srv)) < 0)
			return rc;
		for (size_t i = 0; i < P->nslots; i++) {
			slot *sl = &P->slots[i];
			char name[KVS__NAME_BUF];
			if (!sl->fresh || !sl->ref ||
			    (now - sl->t_mono < w / 2 && srv - sl->t_srv < w / 2))
				continue;
			rc = touch(P, (uint32_t)i);
			if (rc == KVS_ENOTFOUND) {
				kvs__segment_name(name, P->s->name, sl->addr);
				return kvs_error_set(KVS_ETIMEOUT, "key \"%s\": segment %s vanished before the "
				                     "commit (put took longer than the touch window)", P->key, name);
			}
			if (rc < 0)
				return rc;
			touched = 1;
		}
		if (!touched)
			return 0;
	}
	return kvs_error_set(KVS_ETIMEOUT, "key \"%s\": segments keep outliving the touch window "
	                     "before the commit; the writer is too slow", P->key);
}

/*
 * After a blind put lost the commit race: take the index as commit() re-read
 * it (`idx`, NULL when absent; consumed) as the new base, and make sure every
 * segment we reuse from the *old* base is either in the new base or touched
 * by us now — the rule design.md's gc argument needs.
 */
static int rebase(put *P, kvs_object *idx)
{
	kvs__manifest outer, inner;
	int rc = 0;

	memset(&outer, 0, sizeof(outer));
	memset(&inner, 0, sizeof(inner));
	if (!idx) {
		P->has_base = 0;
		P->base_gen = 0;
		P->base_rv[0] = '\0';
	} else {
		P->has_base = 1;
		snprintf(P->base_rv, sizeof(P->base_rv), "%s", idx->resource_version);
		P->base_gen = 0;
		if (kvs__index_decode(&outer, P->s, idx, P->key, P->klen) == 0) {
			P->base_gen = outer.generation;
			if (outer.kind == KVS__MF_INDIRECT)
				kvs__index_load(&inner, P->s, idx, P->key, P->klen, &P->st.requests);
		}
	}
	kvs_object_free(idx);
	for (size_t i = 0; i < P->nslots; i++) {
		slot *sl = &P->slots[i];
		int in_base = 0;
		if (sl->fresh || !sl->ref)
			continue;
		for (uint32_t j = 0; j < outer.nsegs && !in_base; j++)
			in_base = memcmp(outer.segs[j].addr, sl->addr, 16) == 0;
		for (uint32_t j = 0; j < inner.nsegs && !in_base; j++)
			in_base = memcmp(inner.segs[j].addr, sl->addr, 16) == 0;
		if (in_base)
			continue;
		rc = touch(P, (uint32_t)i);
		if (rc == KVS_ENOTFOUND)
			rc = kvs_error_set(KVS_ECONFLICT, "key \"%s\": a concurrent writer replaced the value "
			                   "and a reused segment was collected; retry the put", P->key);
		if (rc < 0)
			break;
	}
	kvs__manifest_clear(&outer);
	kvs__manifest_clear(&inner);
	return rc < 0 ? rc : 0;
}

/* Encode the final manifest: inline, chunked, or indirect. */
static int build_manifest(put *P, clist *val, clist *body, uint8_t **out, size_t *out_len,
                          uint64_t value_stored)
{
	kvs__manifest m, ind;
	uint8_t *enc = NULL;
	size_t enclen = 0;
	int rc;

	memset(&m, 0, sizeof(m));
	base_fields(P, &m, val);
	if ((rc = to_tables(P, val, &m)) < 0)
		goto out;
	rc = kvs__manifest_encode(out, out_len, &m, P->s->manifest_max);
	if (rc != KVS_ETOOBIG)
		goto out;
	/* Too big for the index: store the manifest itself as a value. */
	m.generation = 0;
	if ((rc = kvs__manifest_encode(&enc, &enclen, &m, KVS__MF_MAX_ENCODED)) < 0)
		goto out;
	{
		source src = { enc, enclen, NULL, NULL };
		P->quiet = 1;
		rc = ingest(P, body, &src);
		P->quiet = 0;
		if (rc < 0 || (rc = seal(P)) < 0 || (rc = flush(P)) < 0)
			goto out;
	}
	mark_live(P, body);
	memset(&ind, 0, sizeof(ind));
	base_fields(P, &ind, body);             /* for the body's hash */
	memcpy(ind.body_hash, ind.hash, 16);
	base_fields(P, &ind, val);
	ind.kind = KVS__MF_INDIRECT;
	ind.body_len = body->length;
	ind.v_chunks = m.nchunks;
	ind.v_segs = m.nsegs;
	ind.v_stored = value_stored;
	ind.v_segbytes = 0;
	for (uint32_t i = 0; i < m.nsegs; i++)
		ind.v_segbytes += m.segs[i].bytes;
	if ((rc = to_tables(P, body, &ind)) == 0)
		rc = kvs__manifest_encode(out, out_len, &ind, P->s->manifest_max);
	if (rc == KVS_ETOOBIG)
		rc = kvs_error_set(KVS_ETOOBIG, "key \"%s\": even the indirect manifest does not fit "
		                   "the index", P->key);
	mf_release(&ind);
out:
	free(enc);
	mf_release(&m);
	return rc;
}

static int inline_manifest(put *P, const clist *cl, const uint8_t *data, uint8_t **out,
                           size_t *out_len)
{
	kvs__manifest m;
	int rc;

	memset(&m, 0, sizeof(m));
	base_fields(P, &m, cl);
	m.is_inline = 1;
	if (!(m.inline_blob = malloc(kvs__blob_bound(cl->length))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	m.inline_len = (uint32_t)kvs__blob_encode(m.inline_blob, kvs__blob_bound(cl->length), data,
	                                          cl->length, (int)P->s->opts.lz4_accel);
	rc = kvs__manifest_encode(out, out_len, &m, P->s->manifest_max);
	P->st.stored_bytes = m.inline_len;
	P->inl = rc == 0;
	mf_release(&m);
	return rc;
}

static void put_free(put *P)
{
	for (size_t i = 0; i < P->nbent; i++)
		free(P->bent[i].blob);
	for (size_t i = 0; i < P->npend; i++)
		kvs_object_free(P->pend[i]);
	for (size_t i = 0; i < P->njobs; i++)
		free(P->jobs[i].blob);
	free(P->bent);
	free(P->slots);
	free(P->kn);
	free(P->tab);
	free(P->jobs);
}

/*
 * One put. A buffer put whose value fits inline never chunks; everything
 * else goes through ingest. A blind put that loses the commit race rebases
 * and commits the same segments again (bounded).
 */
static int do_put(kvs_ver *out, kvs_store *s, const char *key, const source *src,
                  const kvs_put_options *po)
{
	put P;
	clist val, body;
	uint8_t *mf = NULL;
	size_t mflen = 0;
	uint64_t stored = 0;
	int rc, blind = !po || !po->expect_version;
	uint8_t *small = NULL;

	memset(&P, 0, sizeof(P));
	memset(&val, 0, sizeof(val));
	memset(&body, 0, sizeof(body));
	XXH3_128bits_reset(&val.hash);
	XXH3_128bits_reset(&body.hash);
	if (!s)
		return kvs_error_set(KVS_EINVAL, "store is NULL");
	if (po && (po->version < 1 || po->version > KVS_PUT_OPTIONS_VERSION))
		return kvs_error_set(KVS_EINVAL, "kvs_put_options version %u is not supported", po->version);
	if ((rc = kvs__key_to_index(P.iname, s, key, &P.klen)) < 0)
		return rc;
	if (src->data == NULL && src->read == NULL && src->len)
		return kvs_error_set(KVS_EINVAL, "key \"%s\": data is NULL", key);
	if (src->len > KVS__MF_MAX_LENGTH)
		return kvs_error_set(KVS_ETOOBIG, "key \"%s\": value longer than 2^40 bytes", key);
	P.s = s;
	P.key = key;
	P.po = po;

	if ((rc = read_base(&P, 1)) < 0)
		goto out;
	if (!src->read && src->len <= s->opts.inline_max) {
		XXH3_128bits_update(&val.hash, src->data, src->len);
		val.length = src->len;
		rc = inline_manifest(&P, &val, src->data, &mf, &mflen);
		if (rc != KVS_ETOOBIG)
			goto commit;
		val.length = 0;   /* does not fit (tiny manifest_max): chunk it */
		XXH3_128bits_reset(&val.hash);
	}
	if ((rc = ingest(&P, &val, src)) < 0)
		goto out;
	if (src->read && val.length <= s->opts.inline_max) {
		/* A short stream: the bytes are all still reachable through the
		 * jobs' blobs only compressed; re-read them from the segments is not
		 * worth it — decode them back from the open segment instead. */
		if (!(small = malloc(val.length ? val.length : 1))) {
			rc = kvs_error_set(KVS_ENOMEM, "out of memory");
			goto out;
		}
		rc = 0;
		{
			uint64_t off = 0;
			for (size_t i = 0; i < val.n && rc == 0; i++) {
				known *k = &P.kn[val.k[i]];
				const kvs__seg_entry *e = NULL;
				for (size_t j = 0; j < P.nbent; j++)
					if (memcmp(P.bent[j].addr, k->addr, 16) == 0)
						e = &P.bent[j];
				if (!e || k->slot != P.bslot)
					rc = 1;   /* chunk reused from the base: fall back to chunks */
				else
					rc = kvs__blob_decode(small + off, k->raw_len, e->blob, e->len);
				off += k->raw_len;
			}
		}
		if (rc == 0 && P.npend == 0 && P.st.segments_written == 0) {
			for (size_t j = 0; j < P.nbent; j++)
				free(P.bent[j].blob);
			P.nbent = 0;
			rc = inline_manifest(&P, &val, small, &mf, &mflen);
			if (rc != KVS_ETOOBIG)
				goto commit;
		}
		rc = 0;
	}
	if ((rc = seal(&P)) < 0 || (rc = flush(&P)) < 0)
		goto out;
	stored = mark_live(&P, &val);
	if ((rc = repack(&P, stored)) < 0 || (rc = seal(&P)) < 0 || (rc = flush(&P)) < 0)
		goto out;
	if ((rc = build_manifest(&P, &val, &body, &mf, &mflen, stored)) < 0)
		goto out;
	P.st.stored_bytes = stored;
commit:
	if (rc < 0)
		goto out;
	for (unsigned attempt = 0;; attempt++) {
		kvs_object *seen = NULL;
		if ((rc = refresh(&P)) < 0)
			goto out;
		rc = commit(&P, mf, mflen, val.length, P.base_gen + 1, out, &seen);
		if (rc != KVS_ECONFLICT || !blind || attempt + 1 >= s->put_retries)
			kvs_object_free(seen);
		if (rc != KVS_ECONFLICT)
			break;
		if (!blind) {
			if (*po->expect_version == '\0')
				rc = kvs_error_set(KVS_EEXISTS, "key \"%s\" was created concurrently", key);
			else
				rc = kvs_error_set(KVS_ECONFLICT, "key \"%s\" changed since version %s", key,
				                   po->expect_version);
			goto out;
		}
		if (attempt + 1 >= s->put_retries) {
			rc = kvs_error_set(KVS_ECONFLICT, "key \"%s\": lost the commit race %u times", key,
			                   s->put_retries);
			goto out;
		}
		if ((rc = rebase(&P, seen)) < 0)
			goto out;
		/* The generation is part of the manifest: re-encode with the new one. */
		free(mf);
		mf = NULL;
		if (P.inl) {
			const uint8_t *d = small ? small : src->data;
			rc = inline_manifest(&P, &val, d, &mf, &mflen);
		} else {
			memset(&body, 0, sizeof(body));
			XXH3_128bits_reset(&body.hash);
			rc = build_manifest(&P, &val, &body, &mf, &mflen, stored);
		}
		if (rc < 0)
			goto out;
	}
out:
	if (rc == 0 && po && po->stats) {
		P.st.raw_bytes = val.length;
		P.st.chunks = val.n;
		*po->stats = P.st;
	}
	free(small);
	free(mf);
	free(val.k);
	free(body.k);
	put_free(&P);
	return rc;
}

int kvs_put(kvs_ver *out, kvs_store *s, const char *key, const void *data, size_t len,
            const kvs_put_options *opts)
{
	source src = { data, len, NULL, NULL };

	if (!data && len)
		return kvs_error_set(KVS_EINVAL, "kvs_put: data is NULL");
	if (!data)
		src.data = (const uint8_t *)"";
	return do_put(out, s, key, &src, opts);
}

int kvs_put_stream(kvs_ver *out, kvs_store *s, const char *key, kvs_read_cb read, void *ctx,
                   const kvs_put_options *opts)
{
	source src = { NULL, 0, read, ctx };

	if (!read)
		return kvs_error_set(KVS_EINVAL, "kvs_put_stream: read callback is NULL");
	return do_put(out, s, key, &src, opts);
}

/* The descriptor of kvs_put_fd and the errno of its failed read. */
typedef struct fd_src {
	int fd;
	int err;
} fd_src;

static int fd_read(void *ctx, void *buf, size_t cap, size_t *got)
{
	fd_src *f = ctx;

	for (;;) {
		ssize_t n = read(f->fd, buf, cap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			f->err = errno;
			kvs_error_set(KVS_EIO, "read from fd %d: %s", f->fd, strerror(f->err));
			return -1;
		}
		*got = (size_t)n;
		return 0;
	}
}

int kvs_put_fd(kvs_ver *out, kvs_store *s, const char *key, int fd, const kvs_put_options *opts)
{
	fd_src f = { fd, 0 };
	int rc = kvs_put_stream(out, s, key, fd_read, &f, opts);

	/* the put reports a failed read as a cancel: give the system's reason */
	if (rc == KVS_ECANCELED && f.err)
		rc = kvs_error_set(KVS_EIO, "reading fd %d for key \"%s\" failed: %s", fd, key,
		                   strerror(f.err));
	return rc;
}
