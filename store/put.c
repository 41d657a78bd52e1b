/*
 * put.c — opaque values: what a put of a value of any size does that no
 * other value kind does (docs/design.md "Put"). It streams the value
 * through a window: FastCDC cuts it (on a few threads, with the serial cut
 * points: chunker.h), each chunk is hashed (XXH3-128) by the thread that cut
 * it and looked up among the chunks already known (the base manifest's, and
 * this put's own); new chunks are lz4-compressed (by a few threads; a buffer
 * put cuts the next window in the same round: ingest_buffer) and handed, in
 * value order, to the segment writer (segwrite.c),
 * which packs, creates and verifies segments. When the whole value is in,
 * sparse base segments may be repacked (design.md "Sizes"), the manifest is
 * built (inline, chunked or indirect), and the commit step (commit.c)
 * replaces the index with the base resourceVersion. Nothing is visible
 * before that commit, so every failure leaves the old value as it was.
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
#include <unistd.h>

#include "base/hash.h"

#include "codec.h"
#include "commit.h"
#include "history.h"
#include "internal.h"
#include "base/options.h"
#include "segwrite.h"

#define WINDOW (4u << 20)
#define MAX_KNOWN (1u << 24)
#define NO_SLOT UINT32_MAX

/* A distinct chunk this put knows about. */
typedef struct known {
	uint8_t addr[16];
	uint32_t slot;        /* segment writer slot; NO_SLOT while being compressed */
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
	uint8_t addr[16];     /* XXH3-128 of the chunk (by the thread that cut it) */
} job;

#define MAX_WORKERS 8

typedef struct put {
	kvs_store *s;
	const char *key;
	size_t klen;
	const kvs_put_options *po;
	kvs__commit c;        /* the base version and what is committed */
	kvs__segw w;          /* segments and their slots */
	kvs__wstats ws;       /* requests and bytes, shared by w and c */
	kvs__hstage h;        /* what the commit keeps of the base (history.c) */
	uint64_t base_gen;
	/* chunks */
	known *kn;
	size_t nkn, capkn;
	uint32_t *tab;        /* open addressing: known index + 1 */
	size_t tabcap;
	/* window */
	job *jobs;
	size_t njobs, capjobs;
	uint8_t *scratch[MAX_WORKERS]; /* one lz4 output per thread, kept warm across windows */
	uint32_t *cuts, *cutscratch;   /* the window's chunk lengths (kvs__cdc_cut_all) */
	uint8_t (*addrs)[16], (*addrscratch)[16];   /* and their addresses */
	size_t capcuts;
	unsigned cutth;       /* threads cutscratch has room for */
	/* figures */
	kvs_put_stats st;
	int quiet;            /* no progress reports (indirect body) */
	int inl;              /* the manifest is inline */
	/* what a rebase needs to build the manifest again */
	clist *val, *body;
	const uint8_t *inline_src;
	uint64_t stored;
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

/* Hand one compressed chunk (takes `blob`) to the segment writer. */
static int pack(put *P, uint32_t k, uint8_t *blob, uint32_t blen)
{
	uint32_t sl;
	int rc = kvs__segw_add(&P->w, P->kn[k].addr, blob, blen, &sl);

	if (rc < 0)
		return rc;
	P->kn[k].slot = sl;
	P->kn[k].stored_len = blen;
	return 0;
}

/* ---- the window --------------------------------------------------------- */

/*
 * The window's parallel steps: first every chunk's address (hash), then
 * the fresh chunks' blobs (compress). Each thread compresses into its own
 * scratch of the largest blob a chunk can become, allocated once per put
 * and reused window after window, and copies out only the blob's bytes: no
 * bound-sized allocation and shrinking realloc per chunk, and no fresh
 * pages to fault in on every window.
 */
typedef struct pool {
	job *jobs;
	size_t n;
	size_t next;          /* atomic */
	int accel;
	int failed;           /* atomic */
	uint8_t **scratch;
	kvs__cdc_piece *pieces;   /* the next window's, cut first (pipelined put) */
	size_t npieces;
	size_t pnext;         /* atomic */
} pool;

typedef struct worker {
	pool *pl;
	uint8_t *scratch;
} worker;

static void work_some(pool *pl, uint8_t *scratch)
{
	for (;;) {
		size_t i = __atomic_fetch_add(&pl->pnext, 1, __ATOMIC_RELAXED);
		if (i >= pl->npieces)
			break;
		kvs__cdc_piece_run(&pl->pieces[i]);
	}
	for (;;) {
		size_t i = __atomic_fetch_add(&pl->next, 1, __ATOMIC_RELAXED);
		job *j;
		if (i >= pl->n)
			return;
		j = &pl->jobs[i];
		if (!j->fresh)
			continue;
		j->blen = (uint32_t)kvs__blob_encode_new(&j->blob, scratch, j->p, j->len, pl->accel);
		if (!j->blob)
			__atomic_store_n(&pl->failed, 1, __ATOMIC_RELAXED);
	}
}

static void *work_thread(void *arg)
{
	worker *w = arg;
	work_some(w->pl, w->scratch);
	return NULL;
}

/* Start up to `want` - 1 helpers on `pl` (fewer if threads cannot start). */
static size_t start_helpers(pthread_t *th, worker *wk, pool *pl, size_t want)
{
	size_t nt = 0;

	for (; nt + 1 < want && nt + 1 < MAX_WORKERS; nt++) {
		wk[nt].pl = pl;
		wk[nt].scratch = pl->scratch ? pl->scratch[nt + 1] : NULL;
		if (pthread_create(&th[nt], NULL, work_thread, &wk[nt]) != 0)
			break;
	}
	return nt;
}

/* The whole-value hash of the window's bytes (in value order: the caller). */
static void hash_whole(put *P, clist *cl)
{
	if (P->njobs)
		XXH3_128bits_update(&cl->hash, P->jobs[0].p,
		                    (size_t)(P->jobs[P->njobs - 1].p - P->jobs[0].p) +
		                    P->jobs[P->njobs - 1].len);
}

/* A step the caller runs while the helpers compress (a streaming put's
 * read and cut of the next window), told whether chunks of the window are
 * still waiting for a thread; its result is compress_window's. */
typedef int (*meanwhile_fn)(void *ctx, int busy);

/*
 * Compress the fresh jobs of the window, on up to s->workers threads; the
 * caller first feeds the whole-value hash (the helpers compress meanwhile),
 * runs `meanwhile` (if any), then helps. With `pieces`, the next window's
 * pieces are cut (and addressed) in the same round, first, so the cut of
 * window k+1 overlaps the compression of window k (design.md
 * "Performance").
 */
static int compress_window(put *P, clist *cl, size_t nfresh, kvs__cdc_piece *pieces,
                           size_t npieces, meanwhile_fn meanwhile, void *mctx)
{
	pthread_t th[MAX_WORKERS];
	worker wk[MAX_WORKERS];
	size_t nt, want, cap = kvs__blob_scratch_size(P->s->cdc.max);
	pool pl = { P->jobs, P->njobs, 0, (int)P->s->opts.lz4_accel, 0, P->scratch,
	            pieces, npieces, 0 };
	int mrc = 0;

	if (!nfresh && !npieces) {
		hash_whole(P, cl);
		return meanwhile ? meanwhile(mctx, 0) : 0;
	}
	want = P->s->workers;
	if (want > nfresh + npieces)
		want = nfresh + npieces;
	if (want > MAX_WORKERS)
		want = MAX_WORKERS;
	for (size_t i = 0; i < want; i++)
		if (!P->scratch[i]) {
			if (!(P->scratch[i] = malloc(cap)))
				return kvs_error_set(KVS_ENOMEM, "out of memory compressing chunks");
			kvs__blob_scratch_init(P->scratch[i]);
		}
	nt = start_helpers(th, wk, &pl, want);
	hash_whole(P, cl);
	if (meanwhile)
		mrc = meanwhile(mctx, __atomic_load_n(&pl.next, __ATOMIC_RELAXED) < pl.n);
	work_some(&pl, P->scratch[0]);
	for (size_t i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	if (mrc < 0)
		return mrc;
	if (pl.failed)
		return kvs_error_set(KVS_ENOMEM, "out of memory compressing chunks");
	return 0;
}

/* Look up the window's chunks (addressed by the cut) among the known ones,
 * in order; the new ones are added, to be compressed. */
static int lookup_window(put *P, clist *cl, size_t *nfresh)
{
	int rc;

	*nfresh = 0;
	for (size_t i = 0; i < P->njobs; i++) {
		job *j = &P->jobs[i];
		const uint8_t *a = j->addr;
		long k;
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
			(*nfresh)++;
		}
		if ((rc = cl_add(cl, j->k, j->len)) < 0)
			return rc;
	}
	return 0;
}

/* Pack the window's new chunks in order, and empty the window. */
static int pack_window(put *P, int rc)
{
	for (size_t i = 0; rc == 0 && i < P->njobs; i++) {
		job *j = &P->jobs[i];
		if (!j->fresh)
			continue;
		rc = pack(P, j->k, j->blob, j->blen);
		j->blob = NULL;
	}
	for (size_t i = 0; i < P->njobs; i++) {
		free(P->jobs[i].blob);
		P->jobs[i].blob = NULL;
	}
	P->njobs = 0;
	return rc;
}

/* The window's chunk lists: `cap` entries, and `pieces` pieces of scratch. */
static int cut_bufs(put *P, size_t cap, unsigned pieces)
{
	uint32_t *c, *x;
	uint8_t (*a)[16], (*ax)[16];

	if (cap <= P->capcuts && pieces <= P->cutth)
		return 0;
	c = realloc(P->cuts, cap * sizeof(*c));
	if (c)
		P->cuts = c;
	a = realloc(P->addrs, cap * 16);
	if (a)
		P->addrs = a;
	x = realloc(P->cutscratch, pieces * cap * sizeof(*x));
	if (x)
		P->cutscratch = x;
	ax = realloc(P->addrscratch, pieces * cap * 16);
	if (ax)
		P->addrscratch = ax;
	if (!c || !a || !x || !ax)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	P->capcuts = cap;
	P->cutth = pieces;
	return 0;
}

static unsigned cut_threads(const put *P)
{
	unsigned th = P->s->workers > KVS__CDC_MAX_THREADS ? KVS__CDC_MAX_THREADS : P->s->workers;

	return th < 1 ? 1 : th;
}

/* The window's jobs from the lists kvs__cdc_cut_all / kvs__cdc_merge made. */
static int fill_jobs(put *P, const uint8_t *p, size_t nc)
{
	int rc;

	if ((rc = grow((void **)&P->jobs, &P->capjobs, P->njobs + nc, sizeof(job), 1u << 20)) < 0)
		return rc;
	for (size_t i = 0, off = 0; i < nc; off += P->cuts[i++]) {
		P->jobs[P->njobs].p = p + off;
		P->jobs[P->njobs].len = P->cuts[i];
		P->jobs[P->njobs].blob = NULL;
		memcpy(P->jobs[P->njobs].addr, P->addrs[i], 16);
		P->njobs++;
	}
	return 0;
}

/* Cut [p, p+n) into the window's jobs (leaving a tail shorter than
 * chunk_max unless `final`); the bytes consumed through *used. The cut
 * runs on up to s->workers threads (kvs__cdc_cut_all: the same cut points
 * as one thread), each chunk addressed by the thread that cut it, into
 * lists kept for the whole put. */
static int cut_jobs(put *P, const uint8_t *p, size_t n, int final, size_t *used)
{
	size_t cap = n / P->s->cdc.min + 2, nc = 0;
	unsigned th = cut_threads(P);
	int rc;

	if ((rc = cut_bufs(P, cap, th)) < 0 ||
	    (rc = kvs__cdc_cut_all(&P->s->cdc, p, n, final, P->cuts, P->addrs, cap, &nc, used, th,
	                           P->cutscratch, P->addrscratch)) < 0)
		return rc;
	return fill_jobs(P, p, nc);
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

/*
 * A buffer put, pipelined: the bytes stay where the caller has them, so
 * while window k compresses, window k+1 is already cut (in pieces, on the
 * same threads, first: compress_window) and is merged, looked up and
 * turned into jobs right after window k is packed. The cut points are
 * kvs__cdc_merge's, the serial ones; the windows, their order and so the
 * stored bytes are those of a window-by-window put.
 */
static int ingest_buffer(put *P, clist *cl, const source *src)
{
	const kvs__cdc *c = &P->s->cdc;
	size_t pos = 0, used = 0, n = src->len > WINDOW ? WINDOW : src->len;
	int final = n == src->len, rc;

	if ((rc = cut_jobs(P, src->data, n, final, &used)) < 0)
		return rc;
	for (;;) {
		kvs__cdc_piece pcs[KVS__CDC_MAX_THREADS];
		const uint8_t *np = src->data + pos + used;
		size_t nn = 0, nfresh = 0, cap = 0, nc = 0;
		unsigned npc = 0;
		int nfinal = 0;

		if ((rc = lookup_window(P, cl, &nfresh)) < 0)
			return pack_window(P, rc);
		if (!final) {
			nn = src->len - pos - used > WINDOW ? WINDOW : src->len - pos - used;
			nfinal = pos + used + nn == src->len;
			cap = nn / c->min + 2;
			npc = kvs__cdc_pieces(c, nn, cut_threads(P));
			if ((rc = cut_bufs(P, cap, npc)) < 0)
				return pack_window(P, rc);
			for (unsigned k = 0; k < npc; k++)
				kvs__cdc_piece_init(&pcs[k], c, np, nn, nfinal, nn / npc * k,
				                    k + 1 < npc ? nn / npc * (k + 1) : nn,
				                    P->cutscratch + (size_t)k * cap,
				                    P->addrscratch + (size_t)k * cap, cap);
		}
		rc = compress_window(P, cl, nfresh, pcs, npc, NULL, NULL);
		if ((rc = pack_window(P, rc)) < 0)
			return rc;
		pos += used;
		if ((rc = progress(P, pos, src->len)) < 0 || final)
			return rc;
		if ((rc = kvs__cdc_merge(c, np, nn, nfinal, pcs, npc, P->cuts, P->addrs, cap, &nc,
		                         &used)) < 0 ||
		    (rc = fill_jobs(P, np, nc)) < 0)
			return rc;
		final = nfinal;
	}
}

/* Read from a streaming source into buf[*have, cap) until it is full or
 * the source ends (*eof). */
static int fill(put *P, const source *src, uint8_t *buf, size_t cap, size_t *have, int *eof)
{
	while (*have < cap && !*eof) {
		size_t got = 0;
		if (src->read(src->ctx, buf + *have, cap - *have, &got) != 0)
			return kvs_error_set(KVS_ECANCELED, "key \"%s\": the read callback failed", P->key);
		if (got > cap - *have)
			return kvs_error_set(KVS_EINVAL, "key \"%s\": read callback returned too much",
			                     P->key);
		*eof = got == 0;
		*have += got;
	}
	return 0;
}

/* The next window of a streaming put, read and cut while the current one
 * compresses (ingest_stream). */
typedef struct next_win {
	put *P;
	const source *src;
	uint64_t before;        /* value bytes in the windows before it */
	const uint8_t *tail;    /* the current window's uncut bytes */
	size_t tail_len;
	uint8_t *buf;
	size_t cap;
	size_t have, used, nc;  /* out: its bytes; those its chunks take, and how many */
	int eof;                /* in: the source had ended; out: it has */
} next_win;

static int read_and_cut(void *ctx, int busy)
{
	next_win *n = ctx;
	put *P = n->P;
	size_t ccap;
	unsigned th;
	int rc;

	memcpy(n->buf, n->tail, n->tail_len);
	n->have = n->tail_len;
	if ((rc = fill(P, n->src, n->buf, n->cap, &n->have, &n->eof)) < 0)
		return rc;
	if (n->before + n->have > KVS__MF_MAX_LENGTH)
		return kvs_error_set(KVS_ETOOBIG, "key \"%s\": value longer than 2^40 bytes", P->key);
	/* while chunks still wait to be compressed, the other threads have
	 * work and the caller cuts alone; once they are all taken (quick ones:
	 * raw, incompressible data) the cut takes every thread */
	th = busy ? 1 : cut_threads(P);
	ccap = n->have / P->s->cdc.min + 2;
	if ((rc = cut_bufs(P, ccap, th)) < 0)
		return rc;
	return kvs__cdc_cut_all(&P->s->cdc, n->buf, n->have, n->eof, P->cuts, P->addrs, ccap,
	                        &n->nc, &n->used, th, P->cutscratch, P->addrscratch);
}

/*
 * A streaming put (kvs_put_stream, kvs_put_fd), pipelined as far as a
 * source read on the caller's thread allows. Two window buffers: while the
 * helpers compress window k (its jobs point into one), the caller reads
 * window k+1 into the other, after k's uncut tail, and cuts it; then it
 * helps compress. The callback is called on the caller's thread, in order,
 * as before; the windows (each filled to WINDOW + chunk_max), their cut
 * points and so the stored bytes are those of a window-by-window put.
 */
static int ingest_stream(put *P, clist *cl, const source *src)
{
	size_t cap = WINDOW + P->s->cdc.max, have = 0, used = 0;
	uint8_t *win[2] = { malloc(cap), malloc(cap) };
	int cur = 0, eof = 0, rc;

	if (!win[0] || !win[1]) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = fill(P, src, win[0], cap, &have, &eof)) < 0)
		goto out;
	if ((rc = cut_jobs(P, win[0], have, eof, &used)) < 0)
		goto out;
	for (;;) {
		next_win n = { P, src, cl->length + used, win[cur] + used, have - used,
		               win[!cur], cap, 0, 0, 0, eof };
		size_t nfresh = 0;
		int last = eof;

		if ((rc = lookup_window(P, cl, &nfresh)) < 0) {
			rc = pack_window(P, rc);
			goto out;
		}
		rc = compress_window(P, cl, nfresh, NULL, 0, last ? NULL : read_and_cut, &n);
		if ((rc = pack_window(P, rc)) < 0 || (rc = progress(P, cl->length, 0)) < 0 || last)
			goto out;
		if ((rc = fill_jobs(P, n.buf, n.nc)) < 0)
			goto out;
		cur = !cur;
		have = n.have;
		used = n.used;
		eof = n.eof;
	}
out:
	free(win[0]);
	free(win[1]);
	return rc;
}

static int ingest(put *P, clist *cl, const source *src)
{
	if (src->data || !src->read)
		return ingest_buffer(P, cl, src);
	return ingest_stream(P, cl, src);
}

/* ---- base manifest ------------------------------------------------------ */

/*
 * Make the chunks of a base manifest reusable: one slot per segment. The
 * segments are checked first (kvs__segw_check_reuse: there, immutable and
 * ours, by their metadata, and touched when the base was committed `late`);
 * the chunks of one that fails are not adopted, so the put writes them
 * again from the value it is given.
 */
static int adopt(put *P, const kvs__manifest *m, int late)
{
	uint32_t first = (uint32_t)P->w.nslots, k;
	int rc = 0;

	if (m->is_inline)
		return 0;
	for (uint32_t i = 0; i < m->nsegs; i++) {
		uint32_t sl;
		if ((rc = kvs__segw_slot_add(&P->w, &sl)) < 0)
			return rc;
		memcpy(P->w.slots[sl].addr, m->segs[i].addr, 16);
		P->w.slots[sl].bytes = m->segs[i].bytes;
		P->w.slots[sl].nchunks = m->segs[i].nchunks;
	}
	if ((rc = kvs__segw_check_reuse(&P->w, first, m->nsegs, late)) < 0)
		return rc;
	for (uint32_t i = 0; i < m->nchunks; i++) {
		const kvs__chunk_ref *c = &m->chunks[i];
		kvs__slot_state st = P->w.slots[first + c->seg].state;
		if ((st != KVS__SLOT_REUSED && st != KVS__SLOT_TOUCHED) || kn_find(P, c->addr) >= 0)
			continue;
		if ((rc = kn_add(P, c->addr, first + c->seg, c->raw_len, c->stored_len, &k)) < 0)
			return rc;
	}
	return 0;
}

/* Steps 1–2: read the base index (commit.c checks the expected version) and
 * adopt its chunks. */
static int read_base(put *P)
{
	kvs_object *idx = NULL;
	kvs__manifest outer, inner;
	int rc;

	P->base_gen = 0;
	if ((rc = kvs__commit_read_base(&P->c, &idx)) < 0)
		return rc;
	if ((rc = kvs__hist_prepare(&P->h, &P->w, idx, P->key, P->klen)) < 0 || !idx) {
		kvs_object_free(idx);
		return rc;
	}
	memset(&outer, 0, sizeof(outer));
	memset(&inner, 0, sizeof(inner));
	/* A base that does not decode is simply not reused: the put replaces it. */
	if (kvs__index_decode(&outer, P->s, idx, P->key, P->klen) == 0) {
		int late = kvs__index_late(P->s, idx);
		P->base_gen = outer.generation;
		if (outer.kind == KVS__MF_INDIRECT &&
		    kvs__index_load(&inner, P->s, idx, P->key, P->klen, &P->ws.requests) == 0) {
			if ((rc = adopt(P, &inner, late)) == 0)
				rc = adopt(P, &outer, late);
		} else if (outer.kind == KVS__MF_BLOB) {
			rc = adopt(P, &outer, late);
		}
	}
	kvs__manifest_clear(&inner);
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
			P->w.slots[k->slot].live += k->stored_len;
			total += k->stored_len;
		}
	}
	return total;
}

static int cmp_live(const void *a, const void *b, void *arg)
{
	const kvs__slot *s = arg;
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

	if (!(cand = malloc((P->w.nslots ? P->w.nslots : 1) * sizeof(*cand))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	for (uint32_t i = 0; i < P->w.nslots; i++) {
		const kvs__slot *sl = &P->w.slots[i];
		if (sl->state == KVS__SLOT_REUSED && sl->live && sl->live * 2 < sl->bytes)
			cand[nc++] = i;
	}
	qsort_r(cand, nc, sizeof(*cand), cmp_live, P->w.slots);
	for (size_t c = 0; c < nc && rc == 0; c++) {
		uint32_t sl = cand[c];
		kvs__segment *sg = NULL;
		if (spent + P->w.slots[sl].live > budget)
			break;
		if (kvs__segment_fetch(&sg, P->s, P->w.slots[sl].addr, &P->ws.requests) < 0)
			continue;   /* leave the reference as it is */
		spent += P->w.slots[sl].live;
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
			P->w.slots[sl].live -= kn->stored_len;
			rc = pack(P, (uint32_t)k, copy, (uint32_t)b->len);
			if (rc == 0)
				P->w.slots[P->kn[k].slot].live += kn->stored_len;
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

	for (size_t i = 0; i < P->w.nslots; i++)
		P->w.slots[i].out = NO_SLOT;
	m->chunks = calloc(cl->n ? cl->n : 1, sizeof(*m->chunks));
	m->segs = calloc(P->w.nslots ? P->w.nslots : 1, sizeof(*m->segs));
	if (!m->chunks || !m->segs)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	for (size_t i = 0; i < cl->n; i++) {
		const known *k = &P->kn[cl->k[i]];
		kvs__slot *sl = &P->w.slots[k->slot];
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
	if ((rc = kvs__hist_apply(&m, &P->h, P->s, kvs__hist_added(&P->h, &P->w))) < 0)
		goto out;
	rc = kvs__manifest_encode(out, out_len, &m, P->s->manifest_max);
	if (rc != KVS_ETOOBIG)
		goto out;
	/* Too big for the index: store the manifest itself as a value. */
	kvs__hist_detach(&m);
	m.v3 = 0;
	m.time_ms = m.added = 0;
	m.generation = 0;
	if ((rc = kvs__manifest_encode(&enc, &enclen, &m, KVS__MF_MAX_ENCODED)) < 0)
		goto out;
	{
		source src = { enc, enclen, NULL, NULL };
		P->quiet = 1;
		rc = ingest(P, body, &src);
		P->quiet = 0;
		if (rc < 0 || (rc = kvs__segw_seal(&P->w)) < 0 || (rc = kvs__segw_flush(&P->w)) < 0)
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
	if ((rc = to_tables(P, body, &ind)) == 0 &&
	    (rc = kvs__hist_apply(&ind, &P->h, P->s, kvs__hist_added(&P->h, &P->w))) == 0)
		rc = kvs__manifest_encode(out, out_len, &ind, P->s->manifest_max);
	kvs__hist_detach(&ind);
	if (rc == KVS_ETOOBIG)
		rc = kvs_error_set(KVS_ETOOBIG, "key \"%s\": even the indirect manifest does not fit "
		                   "the index", P->key);
	mf_release(&ind);
out:
	kvs__hist_detach(&m);
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
	rc = kvs__hist_apply(&m, &P->h, P->s, m.inline_len);
	if (rc == 0)
		rc = kvs__manifest_encode(out, out_len, &m, P->s->manifest_max);
	kvs__hist_detach(&m);
	P->st.stored_bytes = m.inline_len;
	P->inl = rc == 0;
	mf_release(&m);
	return rc;
}
static void put_free(put *P)
{
	for (size_t i = 0; i < P->njobs; i++)
		free(P->jobs[i].blob);
	kvs__segw_free(&P->w);
	kvs__commit_clear(&P->c);
	kvs__hstage_clear(&P->h);
	for (size_t i = 0; i < MAX_WORKERS; i++)
		free(P->scratch[i]);
	free(P->kn);
	free(P->tab);
	free(P->jobs);
	free(P->cuts);
	free(P->cutscratch);
	free(P->addrs);
	free(P->addrscratch);
}

/* ---- commit hooks ------------------------------------------------------- */

/* Step 5 before every commit attempt. */
static int put_before_commit(void *ctx)
{
	put *P = ctx;

	return kvs__segw_refresh(&P->w);
}

/*
 * A blind put lost the commit race: the index as re-read (`idx`, NULL when
 * absent) is the new base. The segments reused from the old base must be
 * in the new one or touched now (kvs__segw_rebase: the rule design.md's gc
 * argument needs), and the generation is part of the manifest, so it is
 * encoded again.
 */
static int put_rebase(void *ctx, kvs__commit *c, const kvs_object *idx)
{
	put *P = ctx;
	kvs__manifest m;
	uint8_t *mf = NULL;
	size_t mflen = 0;
	int rc;

	P->base_gen = 0;
	if (idx) {
		if (kvs__index_decode(&m, P->s, idx, P->key, P->klen) == 0)
			P->base_gen = m.generation;
		kvs__manifest_clear(&m);
	}
	if ((rc = kvs__segw_rebase(&P->w, idx)) < 0)
		return rc;
	/* the new base is the version the history keeps now */
	if ((rc = kvs__hist_prepare(&P->h, &P->w, idx, P->key, P->klen)) < 0 ||
	    (rc = kvs__hist_write(&P->h, &P->w)) < 0)
		return rc;
	if (P->inl) {
		rc = inline_manifest(P, P->val, P->inline_src, &mf, &mflen);
	} else {
		P->body->n = 0;
		P->body->length = 0;
		XXH3_128bits_reset(&P->body->hash);
		rc = build_manifest(P, P->val, P->body, &mf, &mflen, P->stored);
	}
	if (rc < 0)
		return rc;
	kvs__commit_set(c, mf, mflen, P->val->length, P->base_gen + 1);
	return 0;
}

/*
 * One put. A buffer put whose value fits inline never chunks; everything
 * else goes through ingest. A blind put that loses the commit race rebases
 * and commits the same segments again (bounded, commit.c).
 */
static int do_put(kvs_ver *out, kvs_store *s, const char *key, const source *src,
                  const kvs_put_options *po)
{
	put P;
	clist val, body;
	uint8_t *mf = NULL;
	size_t mflen = 0;
	uint64_t stored = 0;
	int rc;
	uint8_t *small = NULL;

	memset(&P, 0, sizeof(P));
	memset(&val, 0, sizeof(val));
	memset(&body, 0, sizeof(body));
	XXH3_128bits_reset(&val.hash);
	XXH3_128bits_reset(&body.hash);
	if (!s)
		return kvs_error_set(KVS_EINVAL, "store is NULL");
	kvs__segw_init(&P.w, s, key, &P.ws);
	if ((rc = kvs__commit_init(&P.c, s, key, po ? po->expect_version : NULL, &P.ws)) < 0)
		return rc;
	P.c.w = &P.w;
	P.klen = P.c.key_len;
	if (src->data == NULL && src->read == NULL && src->len)
		return kvs_error_set(KVS_EINVAL, "key \"%s\": data is NULL", key);
	if (src->len > KVS__MF_MAX_LENGTH)
		return kvs_error_set(KVS_ETOOBIG, "key \"%s\": value longer than 2^40 bytes", key);
	P.s = s;
	P.key = key;
	P.po = po;

	if ((rc = read_base(&P)) < 0)
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
	/* segments sealed while the value streams in are built at each flush,
	 * side by side on the workers (segwrite.h) */
	P.w.seal_workers = s->workers > 1 ? s->workers : 0;
	/* and created in the background while the next windows compress */
	P.w.async = s->workers > 1;
	if ((rc = ingest(&P, &val, src)) < 0 || (rc = kvs__segw_wait(&P.w)) < 0)
		goto out;
	if (src->read && val.length <= s->opts.inline_max) {
		/* A short stream: its bytes are still here, compressed, in the
		 * open segment (unless reused from the base): decode them back
		 * rather than re-read anything. */
		if (!(small = malloc(val.length ? val.length : 1))) {
			rc = kvs_error_set(KVS_ENOMEM, "out of memory");
			goto out;
		}
		rc = 0;
		{
			uint64_t off = 0;
			for (size_t i = 0; i < val.n && rc == 0; i++) {
				known *k = &P.kn[val.k[i]];
				const kvs__seg_entry *e = kvs__segw_open_find(&P.w, k->addr);
				if (!e || k->slot != P.w.bslot)
					rc = 1;   /* chunk reused from the base: fall back to chunks */
				else
					rc = kvs__blob_decode(small + off, k->raw_len, e->blob, e->len);
				off += k->raw_len;
			}
		}
		if (rc == 0 && P.w.npend == 0 && P.ws.segments_written == 0) {
			rc = inline_manifest(&P, &val, small, &mf, &mflen);
			if (rc != KVS_ETOOBIG) {
				if (rc == 0)
					kvs__segw_discard_open(&P.w);
				goto commit;
			}
		}
		rc = 0;
	}
	if ((rc = kvs__segw_seal(&P.w)) < 0 || (rc = kvs__segw_flush(&P.w)) < 0)
		goto out;
	stored = mark_live(&P, &val);
	if ((rc = repack(&P, stored)) < 0 || (rc = kvs__segw_seal(&P.w)) < 0 ||
	    (rc = kvs__segw_flush(&P.w)) < 0)
		goto out;
	if ((rc = build_manifest(&P, &val, &body, &mf, &mflen, stored)) < 0)
		goto out;
	P.st.stored_bytes = stored;
commit:
	P.w.seal_workers = 0;   /* history.c reads the address right after a seal */
	P.w.async = 0;
	if (rc < 0)
		goto out;
	/* The base's history object, created (or touched) before the commit like
	 * every segment the new index references. */
	if ((rc = kvs__hist_write(&P.h, &P.w)) < 0)
		goto out;
	{
		kvs__commit_hooks h = { put_before_commit, put_rebase, &P };
		P.val = &val;
		P.body = &body;
		P.inline_src = small ? small : src->data;
		P.stored = stored;
		kvs__commit_set(&P.c, mf, mflen, val.length, P.base_gen + 1);
		mf = NULL;
		rc = kvs__commit_run(out, &P.c, &h);
	}
out:
	if (rc == 0 && po && po->stats) {
		P.st.raw_bytes = val.length;
		P.st.chunks = val.n;
		P.st.requests = P.ws.requests;
		P.st.segments_written = P.ws.segments_written;
		P.st.chunks_written = P.ws.chunks_written;
		P.st.bytes_written = P.ws.bytes_written;
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
	kvs_put_options o = KVS_PUT_OPTIONS_INIT;
	int rc;

	if ((rc = KVS__OPTS(&o, opts, put)) < 0)
		return rc;
	if (!data && len)
		return kvs_error_set(KVS_EINVAL, "kvs_put: data is NULL");
	if (!data)
		src.data = (const uint8_t *)"";
	return do_put(out, s, key, &src, &o);
}

int kvs_put_stream(kvs_ver *out, kvs_store *s, const char *key, kvs_read_cb read, void *ctx,
                   const kvs_put_options *opts)
{
	source src = { NULL, 0, read, ctx };
	kvs_put_options o = KVS_PUT_OPTIONS_INIT;
	int rc;

	if ((rc = KVS__OPTS(&o, opts, put)) < 0)
		return rc;
	if (!read)
		return kvs_error_set(KVS_EINVAL, "kvs_put_stream: read callback is NULL");
	return do_put(out, s, key, &src, &o);
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
