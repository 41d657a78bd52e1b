/*
 * get.c — the read protocol (docs/design.md "Get"): one GET of the index,
 * a strict manifest decode, then the referenced segments fetched a few at a
 * time (through the cache), every chunk checked for size, decompressed with
 * LZ4_decompress_safe into exactly its declared size, and compared with its
 * XXH3-128 address before a byte of it is delivered; the whole value is
 * checked against the manifest's hash at the end.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/hash.h"
#include "base/valbuf.h"

#include "codec.h"
#include "history.h"
#include "internal.h"
#include "base/options.h"

int kvs__key_to_index(char out[KVS__NAME_BUF], const kvs_store *s, const char *key,
                      size_t *key_len)
{
	size_t n;
	int rc;

	if (!key)
		return kvs_error_set(KVS_EINVAL, "key is NULL");
	n = strnlen(key, KVS_KEY_MAX + 1);
	if ((rc = kvs__key_check(key, n)) < 0)
		return rc;
	kvs__index_name(out, s->name, key, n);
	if (key_len)
		*key_len = n;
	return 0;
}

int kvs__index_decode(kvs__manifest *m, const kvs_store *s, const kvs_object *index,
                      const char *key, size_t key_len)
{
	char what[KVS__NAME_BUF + 16];
	const kvs_blob *b = kvs_object_data(index, KVS__INDEX_DATA_KEY);
	int rc;

	(void)s;
	memset(m, 0, sizeof(*m));
	snprintf(what, sizeof(what), "index %s", index->name);
	if (!b)
		return kvs_error_set(KVS_ECORRUPT, "index %s has no manifest", index->name);
	if ((rc = kvs__manifest_decode(m, b->data, b->len, what)) < 0)
		return rc;
	if (key && (m->key_len != key_len || memcmp(m->key, key, key_len) != 0))
		return kvs_error_set(KVS_ECORRUPT, "index %s holds key \"%.*s\", not \"%.*s\"",
		                     index->name, (int)(m->key_len > 64 ? 64 : m->key_len), m->key,
		                     (int)(key_len > 64 ? 64 : key_len), key);
	return 0;
}

int kvs__segment_fetch(kvs__segment **out, kvs_store *s, const uint8_t addr[16],
                       uint64_t *requests)
{
	char name[KVS__NAME_BUF];
	kvs_object *obj = NULL;
	int rc;

	if ((*out = kvs__cache_get(s->cache, addr)) != NULL)
		return 0;
	kvs__segment_name(name, s->name, addr);
	if (requests)
		(*requests)++;
	rc = s->be->ops->get(s->be, &obj, name);
	if (rc == KVS_ENOTFOUND)
		return kvs_error_set(KVS_ENOTFOUND, "segment %s is missing", name);
	if (rc < 0)
		return rc;
	if ((rc = kvs__seg_open(out, obj, addr, s->be->max_object_bytes)) < 0)
		return rc;
	kvs__cache_put(s->cache, *out);
	return 0;
}

/* Fetch the n segments of `want` (indices into m->segs) into segs[]. Cached
 * ones come from the cache, the others in one batch (or one by one). */
/*
 * Scan resistance: a value whose segments would fill more than half the
 * cache is read through without being inserted. Caching it would only evict
 * everything else (and its own first segments before the last arrive), and
 * it would make a streaming get of a huge value hold a full cache on top of
 * the segments in flight. Smaller values, and the segments a watch keeps
 * between versions, are cached as usual.
 */
static int cacheable(const kvs_store *s, const kvs__manifest *m)
{
	uint64_t cap = kvs__cache_capacity(s->cache), total = 0;

	for (uint32_t i = 0; i < m->nsegs; i++) {
		total += m->segs[i].bytes;
		if (total > cap / 2)
			return 0;
	}
	return 1;
}

static int fetch_run(kvs__segment **segs, kvs_store *s, const kvs__manifest *m,
                     const uint32_t *want, size_t n, const char *what, uint64_t *requests)
{
	kvs_op ops[KVS__MAX_CONCURRENCY];
	char names[KVS__MAX_CONCURRENCY][KVS__NAME_BUF];
	size_t map[KVS__MAX_CONCURRENCY], nops = 0;
	int rc = 0, keep = cacheable(s, m);

	for (size_t i = 0; i < n; i++) {
		segs[i] = kvs__cache_get(s->cache, m->segs[want[i]].addr);
		if (segs[i])
			continue;
		kvs__segment_name(names[nops], s->name, m->segs[want[i]].addr);
		memset(&ops[nops], 0, sizeof(ops[nops]));
		ops[nops].kind = KVS_OP_GET;
		ops[nops].name = names[nops];
		map[nops++] = i;
	}
	if (nops == 0)
		return 0;
	if (requests)
		*requests += nops;
	if ((rc = kvs__batch(s, ops, nops)) < 0)
		return rc;
	for (size_t k = 0; k < nops; k++) {
		kvs_object *obj = ops[k].out;
		ops[k].out = NULL;
		if (rc == 0 && ops[k].result == KVS_ENOTFOUND)
			rc = kvs_error_set(KVS_ENOTFOUND, "%s: segment %s is missing", what, names[k]);
		else if (rc == 0 && ops[k].result < 0)   /* the op's own detail, named once */
			rc = strstr(ops[k].detail, names[k])
			         ? kvs_error_set(ops[k].result, "%s: %s", what, ops[k].detail)
			         : kvs_error_set(ops[k].result, "%s: segment %s: %s", what, names[k],
			                         ops[k].detail);
		else if (rc == 0 && !obj)
			rc = kvs_error_set(KVS_EIO, "%s: backend returned no object for %s", what, names[k]);
		if (rc < 0) {
			kvs_object_free(obj);
			continue;
		}
		/* read through: every chunk is checked against its own address,
		 * so the whole-segment hash would only be one more pass */
		rc = (keep ? kvs__seg_open : kvs__seg_open_unhashed)(&segs[map[k]], obj,
		                                                     m->segs[want[map[k]]].addr,
		                                                     s->be->max_object_bytes);
		if (rc < 0)
			rc = kvs_error_set(rc, "%s: %s", what, kvs_error_last());
		else if (keep)
			kvs__cache_put(s->cache, segs[map[k]]);
	}
	return rc;
}

/* Where verified chunks go: into a buffer, or to a callback through a
 * scratch buffer. */
typedef struct sink {
	uint8_t *buf;            /* whole-value buffer, or NULL */
	uint8_t *scratch;        /* one chunk, when buf is NULL */
	kvs_write_cb write;
	void *ctx;
} sink;

static int chunk_fail(const char *what, const char *segname, uint32_t i,
                      const kvs__chunk_ref *c, const char *why)
{
	char hex[KVS__ADDR_HEX + 1];

	kvs__hex(hex, c->addr, 16);
	return kvs_error_set(KVS_ECORRUPT, "%s: segment %s: chunk %u (%s): %s", what, segname, i,
	                     hex, why);
}

/* What can be wrong with one chunk (decided off the main thread). */
enum { CK_OK = 0, CK_MISSING, CK_SIZE, CK_DECODE, CK_HASH };
static const char *const ck_why[] = {
	"ok", "not in the segment", "stored size differs from the manifest",
	"does not decompress to its declared size", "fails its XXH3-128 check"
};

static kvs__segment *seg_of(kvs__segment **segs, const uint32_t *want, size_t nwant, uint32_t seg)
{
	for (size_t k = 0; k < nwant; k++)
		if (want[k] == seg)
			return segs[k];
	return NULL;
}

/* Size check, decompression into exactly raw_len bytes, address check. */
static int verify_chunk(const kvs__segment *sg, const kvs__chunk_ref *c, uint8_t *dst)
{
	const kvs_blob *b = kvs__seg_find(sg, c->addr);
	uint8_t a[16];

	if (!b)
		return CK_MISSING;
	if (b->len != c->stored_len)
		return CK_SIZE;
	if (kvs__blob_decode(dst, c->raw_len, b->data, b->len) < 0)
		return CK_DECODE;
	kvs__addr_of(a, dst, c->raw_len);
	return memcmp(a, c->addr, 16) == 0 ? CK_OK : CK_HASH;
}

/*
 * A run of chunks decoded into the value buffer by a few threads. The
 * whole-value hash must see the bytes in order. Whoever has just decoded
 * and verified a chunk feeds the hash with every chunk that is next in
 * order and done (its own among them, while it is still in that thread's
 * cache: a chunk hashed later by another thread is read from memory, which
 * made that pass cost several times the per-chunk one), one thread at a
 * time (the `hashing` flag; a thread that finds it taken goes on
 * decoding). After the helpers are joined, the caller hashes whatever is
 * left in order; the hashing stops before the first chunk that did not
 * verify (read_chunks reports it).
 */
#define CK_PENDING 0xff

typedef struct dec {
	const kvs__manifest *m;
	kvs__segment **segs;
	const uint32_t *want;
	size_t nwant;
	uint8_t *buf;
	const uint64_t *offs;
	uint8_t *status;      /* per chunk; atomic */
	uint32_t end;
	uint32_t next;        /* atomic: the next chunk to decode */
	XXH3_state_t *whole;
	uint32_t h;           /* the next chunk to hash; under `hashing` */
	int hashing;          /* atomic: a thread is feeding `whole` */
} dec;

/* Hash the chunks that are next in order and verified, unless another
 * thread is at it. A chunk that verifies while the flag is held by
 * another thread is seen by that thread's look after it lets go. */
static void hash_ready(dec *d)
{
	while (__atomic_exchange_n(&d->hashing, 1, __ATOMIC_SEQ_CST) == 0) {
		uint32_t h = d->h;
		while (h < d->end && __atomic_load_n(&d->status[h], __ATOMIC_SEQ_CST) == CK_OK) {
			XXH3_128bits_update(d->whole, d->buf + d->offs[h], d->m->chunks[h].raw_len);
			h++;
		}
		d->h = h;
		__atomic_store_n(&d->hashing, 0, __ATOMIC_SEQ_CST);
		if (h >= d->end || __atomic_load_n(&d->status[h], __ATOMIC_SEQ_CST) != CK_OK)
			return;
	}
}

/* Decode the next chunk nobody took, then hash what is ready; 0 when none
 * is left. */
static int decode_one(dec *d)
{
	uint32_t i = __atomic_fetch_add(&d->next, 1, __ATOMIC_RELAXED);
	const kvs__chunk_ref *c;
	int st;

	if (i >= d->end)
		return 0;
	c = &d->m->chunks[i];
	st = verify_chunk(seg_of(d->segs, d->want, d->nwant, c->seg), c, d->buf + d->offs[i]);
	__atomic_store_n(&d->status[i], (uint8_t)st, __ATOMIC_SEQ_CST);
	if (st == CK_OK)
		hash_ready(d);
	return 1;
}

static void *decode_thread(void *arg)
{
	while (decode_one(arg))
		;
	return NULL;
}

/* Decode chunks [start, d->end) and hash into d->whole, in order, those
 * that verify up to the first that does not (read_chunks reports it). */
static void decode_run(kvs_store *s, dec *d, uint32_t start)
{
	pthread_t th[8];
	size_t nt = 0, want = s->workers;

	d->next = start;
	d->h = start;
	d->hashing = 0;
	for (uint32_t i = start; i < d->end; i++)
		d->status[i] = CK_PENDING;
	if (want > d->end - start)
		want = d->end - start;
	for (; nt + 1 < want && nt < 8; nt++)
		if (pthread_create(&th[nt], NULL, decode_thread, d) != 0)
			break;
	while (decode_one(d))   /* every status set, as read_chunks expects */
		;
	for (size_t k = 0; k < nt; k++)
		pthread_join(th[k], NULL);
	/* what is left: the helpers' last chunks, when their look found the
	 * flag taken */
	for (; d->h < d->end && d->status[d->h] == CK_OK; d->h++)
		XXH3_128bits_update(d->whole, d->buf + d->offs[d->h], d->m->chunks[d->h].raw_len);
}

/*
 * A run: chunks [i, j) of the manifest and the (at most `conc`) segments
 * they need, fetched together.
 */
typedef struct run {
	uint32_t i, j;
	uint32_t want[KVS__MAX_CONCURRENCY];
	size_t nwant;
	kvs__segment *segs[KVS__MAX_CONCURRENCY];
} run;

/* The longest run from chunk i that needs at most `conc` segments. */
static void run_plan(run *r, const kvs__manifest *m, uint32_t i, size_t conc)
{
	uint32_t j;

	memset(r, 0, sizeof(*r));
	r->i = i;
	for (j = i; j < m->nchunks; j++) {
		size_t k;
		for (k = 0; k < r->nwant && r->want[k] != m->chunks[j].seg; k++)
			;
		if (k == r->nwant) {
			if (r->nwant == conc)
				break;
			r->want[r->nwant++] = m->chunks[j].seg;
		}
	}
	r->j = j;
}

static void run_release(run *r)
{
	for (size_t k = 0; k < r->nwant; k++) {
		kvs__seg_unref(r->segs[k]);
		r->segs[k] = NULL;
	}
}

/*
 * The fetch pipeline (docs/design.md "Get"). Runs are planned in order and
 * held in a ring of `depth` slots (run k in slot k % depth): a run is
 * fetched into its slot, the caller decodes it, and the slot is free again.
 * Once fetching pays for a thread (a run's fetch waited AHEAD_MIN_NS or
 * more: not the in-memory backend, which answers at once), up to `nf` fetch
 * threads of the get's own take the next runs in order, each one batch,
 * while the caller decodes the earliest one that has arrived: the transfers
 * of the runs after k overlap the decompression of run k, and the first
 * bytes are decoded after one small run has arrived, not after a run of
 * `concurrency` segments. Nothing is planned past `depth` runs ahead of
 * what the caller has released, so the memory held is bounded by
 * depth * run_len segments, whatever the value's size. Thread-local error
 * details of a fetch are carried in its slot as text and set again on the
 * caller's thread when the caller reaches that run.
 */
#define AHEAD_MIN_NS 50000u

typedef struct slot {
	run r;
	int state;            /* SLOT_FREE, SLOT_FETCHING, SLOT_FETCHED */
	int rc;
	char err[1024];
} slot;

enum { SLOT_FREE = 0, SLOT_FETCHING, SLOT_FETCHED };

typedef struct fpipe {
	kvs_store *s;
	const kvs__manifest *m;
	const char *what;
	size_t run_len;       /* segments per run */
	size_t depth;         /* slots */
	slot *slots;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t plan_at;     /* first chunk of the next run to plan */
	size_t planned;       /* runs claimed for fetching */
	size_t released;      /* runs the caller is done with */
	uint64_t requests;
	int failed;           /* a fetch failed: plan nothing more */
	int stop;             /* the caller is leaving: plan nothing more */
} fpipe;

/* Under mu: may the next run be claimed? */
static int pipe_can_claim(const fpipe *p)
{
	return !p->stop && !p->failed && p->plan_at < p->m->nchunks &&
	       p->planned < p->released + p->depth;
}

/* CPU time of the calling thread, ns (0 where the clock is missing). */
static uint64_t thread_cpu_ns(void)
{
	struct timespec t;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0)
		return 0;
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Claim the next run (under mu, pipe_can_claim true), fetch it without the
 * lock, and publish it. Returns how long the fetch waited: its time less
 * the thread's CPU time in it (opening and hashing the segments is work a
 * fetch thread would only take from the decoding; waiting for a server is
 * what it overlaps). */
static uint64_t pipe_fetch_next(fpipe *p)
{
	slot *sl = &p->slots[p->planned % p->depth];
	uint64_t req = 0, t0, c0, ns;
	int rc;

	run_plan(&sl->r, p->m, p->plan_at, p->run_len);
	p->plan_at = sl->r.j;
	p->planned++;
	sl->state = SLOT_FETCHING;
	sl->err[0] = '\0';
	pthread_mutex_unlock(&p->mu);
	t0 = kvs__mono_ns();
	c0 = thread_cpu_ns();
	rc = fetch_run(sl->r.segs, p->s, p->m, sl->r.want, sl->r.nwant, p->what, &req);
	ns = kvs__mono_ns() - t0;
	c0 = thread_cpu_ns() - c0;
	ns = ns > c0 ? ns - c0 : 0;
	if (rc < 0)
		snprintf(sl->err, sizeof(sl->err), "%s", kvs_error_last());
	pthread_mutex_lock(&p->mu);
	sl->rc = rc;
	sl->state = SLOT_FETCHED;
	p->requests += req;
	if (rc < 0)
		p->failed = 1;
	pthread_cond_broadcast(&p->cv);
	return ns;
}

static void *fetch_thread(void *arg)
{
	fpipe *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!pipe_can_claim(p) && !p->stop && !p->failed && p->plan_at < p->m->nchunks)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!pipe_can_claim(p))
			break;
		(void)pipe_fetch_next(p);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Decode, verify and deliver the chunks of a fetched run. */
static int run_read(kvs_store *s, const kvs__manifest *m, const char *what, sink *out,
                    XXH3_state_t *whole, run *r, const uint64_t *offs, uint8_t *status,
                    uint64_t *off)
{
	int rc = 0;

	if (out->buf) {
		dec d = { m, r->segs, r->want, r->nwant, out->buf, offs, status, r->j, 0, whole, 0, 0 };
		decode_run(s, &d, r->i);   /* and hashed */
	}
	for (uint32_t i = r->i; i < r->j; i++) {
		const kvs__chunk_ref *c = &m->chunks[i];
		kvs__segment *sg = seg_of(r->segs, r->want, r->nwant, c->seg);
		uint8_t *dst = out->buf ? out->buf + *off : out->scratch;
		int st = out->buf ? status[i] : verify_chunk(sg, c, dst);
		if (st != CK_OK) {
			char segname[KVS__NAME_BUF];
			kvs__segment_name(segname, s->name, sg->addr);
			rc = chunk_fail(what, segname, i, c, ck_why[st]);
			kvs__cache_drop(s->cache, sg->addr);
			return rc;
		}
		if (!out->buf) {   /* (a buffer's chunks are hashed by decode_run) */
			XXH3_128bits_update(whole, dst, c->raw_len);
			if (out->write(out->ctx, dst, c->raw_len) != 0)
				return kvs_error_set(KVS_ECANCELED, "%s: the write callback stopped the get",
				                     what);
		}
		*off += c->raw_len;
	}
	return 0;
}

/*
 * The chunks of a value, run by run through the fetch pipeline above. Run
 * lengths and depth: a whole-value get holds at most 2 * concurrency
 * segments (runs of concurrency / 4), a streaming get at most concurrency
 * (its memory is bounded by what is in flight, not by the value), and at
 * most `concurrency` segments are in flight. With `workers` 1, or while
 * runs arrive in under AHEAD_MIN_NS, every run is fetched on the caller's
 * thread just before it is decoded. An error of run k is reported before
 * anything of run k+1 is looked at: the runs fetched after it are waited
 * for and dropped.
 */
static int read_chunks(kvs_store *s, const kvs__manifest *m, const char *what, sink *out,
                       XXH3_state_t *whole, const kvs_get_options *opts, uint64_t *requests)
{
	size_t conc = s->opts.concurrency ? s->opts.concurrency : 1, nf = 0, nt = 0, sync_len;
	fpipe p;
	pthread_t th[4];
	uint64_t off = 0, *offs = NULL;
	uint8_t *status = NULL;
	int rc = 0, ahead = s->workers > 1;

	if (m->nchunks == 0)
		return 0;
	memset(&p, 0, sizeof(p));
	p.s = s;
	p.m = m;
	p.what = what;
	p.run_len = conc / 4 ? conc / 4 : 1;
	sync_len = out->buf || conc < 2 ? conc : conc / 2;
	if (out->buf)
		p.depth = 2 * conc / p.run_len;
	else if (conc >= 2)
		p.depth = conc / p.run_len;
	else {
		p.depth = 1;   /* one segment held: nothing can be fetched ahead */
		ahead = 0;
	}
	if (p.depth < 1)
		p.depth = 1;
	nf = conc / p.run_len;
	if (nf > p.depth - 1)
		nf = p.depth - 1;
	if (nf > sizeof(th) / sizeof(th[0]))
		nf = sizeof(th) / sizeof(th[0]);
	if (nf == 0)
		ahead = 0;
	if (out->buf) {
		offs = malloc((size_t)m->nchunks * sizeof(*offs));
		status = malloc(m->nchunks);
	}
	p.slots = calloc(p.depth, sizeof(*p.slots));
	if (!p.slots || (out->buf && (!offs || !status))) {
		free(offs);
		free(status);
		free(p.slots);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	if (offs)
		for (uint32_t k = 0; k < m->nchunks; k++) {
			offs[k] = off;
			off += m->chunks[k].raw_len;
		}
	off = 0;
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	pthread_mutex_lock(&p.mu);
	for (size_t k = 0; rc == 0; k++) {
		slot *sl;
		/* run k: fetched here while fetching does not pay for threads */
		if (p.planned == k) {
			if (!pipe_can_claim(&p))
				break;   /* every run read */
			if (pipe_fetch_next(&p) >= AHEAD_MIN_NS && ahead && nt == 0)
				for (; nt < nf; nt++)
					if (pthread_create(&th[nt], NULL, fetch_thread, &p) != 0)
						break;
			if (nt == 0)   /* one run at a time: fewer, longer runs decode faster */
				p.run_len = sync_len;
		}
		sl = &p.slots[k % p.depth];
		while (sl->state != SLOT_FETCHED)
			pthread_cond_wait(&p.cv, &p.mu);
		pthread_mutex_unlock(&p.mu);
		if ((rc = sl->rc) < 0)
			rc = kvs_error_set(rc, "%s", sl->err);
		else
			rc = run_read(s, m, what, out, whole, &sl->r, offs, status, &off);
		run_release(&sl->r);
		if (rc == 0 && opts && opts->progress &&
		    opts->progress(opts->progress_ctx, off, m->length) != 0)
			rc = kvs_error_set(KVS_ECANCELED, "%s: canceled by the progress callback", what);
		pthread_mutex_lock(&p.mu);
		sl->state = SLOT_FREE;
		p.released = k + 1;
		if (rc < 0)
			p.stop = 1;
		pthread_cond_broadcast(&p.cv);
	}
	p.stop = 1;
	pthread_cond_broadcast(&p.cv);
	pthread_mutex_unlock(&p.mu);
	if (rc < 0) {   /* run k's error stands; the fetches after it are only waited for */
		char keep[1024];
		snprintf(keep, sizeof(keep), "%s", kvs_error_last());
		for (size_t t = 0; t < nt; t++)
			pthread_join(th[t], NULL);
		kvs_error_set(rc, "%s", keep);
	} else
		for (size_t t = 0; t < nt; t++)
			pthread_join(th[t], NULL);
	for (size_t k = 0; k < p.depth; k++)
		run_release(&p.slots[k].r);
	if (requests)
		*requests += p.requests;
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.mu);
	free(p.slots);
	free(offs);
	free(status);
	return rc;
}

static int value_read(kvs_store *s, const kvs__manifest *m, const char *what, sink *out,
                      const kvs_get_options *opts, uint64_t *requests)
{
	XXH3_state_t whole;
	XXH128_canonical_t h;
	int rc;

	XXH3_128bits_reset(&whole);
	if (m->is_inline) {
		uint8_t *dst = out->buf ? out->buf : out->scratch;
		if (kvs__blob_decode(dst, m->length, m->inline_blob, m->inline_len) < 0)
			return kvs_error_set(KVS_ECORRUPT, "%s: inline value: %s", what, kvs_error_last());
		XXH3_128bits_update(&whole, dst, m->length);
		XXH128_canonicalFromHash(&h, XXH3_128bits_digest(&whole));
		if (memcmp(h.digest, m->hash, 16) != 0)
			return kvs_error_set(KVS_ECORRUPT, "%s: inline value fails its XXH3-128 check", what);
		if (!out->buf && m->length && out->write(out->ctx, dst, m->length) != 0)
			return kvs_error_set(KVS_ECANCELED, "%s: the write callback stopped the get", what);
		return 0;
	}
	if ((rc = read_chunks(s, m, what, out, &whole, opts, requests)) < 0)
		return rc;
	XXH128_canonicalFromHash(&h, XXH3_128bits_digest(&whole));
	if (memcmp(h.digest, m->hash, 16) != 0)
		return kvs_error_set(KVS_ECORRUPT, "%s: the whole value fails its XXH3-128 check", what);
	return 0;
}

/*
 * The cap of a read (kvs_get_options.max_bytes, resolved by the entry
 * point; NULL opts: none), checked against the length the manifest declares
 * before anything is allocated for it: a hostile manifest may declare 2^40.
 */
static int over_cap(const kvs__manifest *m, const char *what, const kvs_get_options *opts)
{
	if (!opts || !opts->max_bytes || opts->max_bytes == KVS_MAX_BYTES_UNLIMITED ||
	    m->length <= opts->max_bytes)
		return 0;
	return kvs_error_set(KVS_ETOOBIG, "%s: the value is %llu bytes, over the %llu bytes this "
	                     "read allows (max_bytes)", what, (unsigned long long)m->length,
	                     (unsigned long long)opts->max_bytes);
}

int kvs__value_read(kvs_store *s, const kvs__manifest *m, const char *what,
                    kvs_write_cb write, void *ctx, const kvs_get_options *opts,
                    uint64_t *requests)
{
	sink out = { NULL, NULL, write, ctx };
	int rc;

	if ((rc = over_cap(m, what, opts)) < 0)
		return rc;

	if (!(out.scratch = malloc(m->is_inline ? (m->length ? m->length : 1) : m->cdc_max)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	rc = value_read(s, m, what, &out, opts, requests);
	free(out.scratch);
	return rc;
}

int kvs__value_read_buf(uint8_t **outp, kvs_store *s, const kvs__manifest *m,
                        const char *what, const kvs_get_options *opts, uint64_t *requests)
{
	sink out = { NULL, NULL, NULL, NULL };
	int rc;

	*outp = NULL;
	if ((rc = over_cap(m, what, opts)) < 0)
		return rc;
	if (m->length > SIZE_MAX - 1 || !(out.buf = kvs__valbuf_alloc((size_t)m->length)))
		return kvs_error_set(KVS_ENOMEM, "%s: cannot allocate %llu bytes", what,
		                     (unsigned long long)m->length);
	if ((rc = value_read(s, m, what, &out, opts, requests)) < 0) {
		free(out.buf);
		return rc;
	}
	*outp = out.buf;
	return 0;
}

int kvs__manifest_resolve(kvs__manifest *m, kvs_store *s, kvs__manifest *outer,
                          const char *what, uint64_t *requests)
{
	kvs__manifest body;
	char bwhat[KVS__NAME_BUF + 64];
	uint8_t *buf = NULL;
	int rc;

	memset(m, 0, sizeof(*m));
	if (outer->kind != KVS__MF_INDIRECT) {
		*m = *outer;
		memset(outer, 0, sizeof(*outer));
		return 0;
	}
	/* Read the body as if it were a value of its own. */
	body = *outer;
	body.kind = KVS__MF_BLOB;
	body.length = outer->body_len;
	memcpy(body.hash, outer->body_hash, 16);
	snprintf(bwhat, sizeof(bwhat), "%s (manifest body)", what);
	rc = kvs__value_read_buf(&buf, s, &body, bwhat, NULL, requests);
	if (rc == 0)
		rc = kvs__manifest_decode(m, buf, outer->body_len, bwhat);
	free(buf);
	if (rc == 0 && (m->kind != KVS__MF_BLOB || m->is_inline || m->v3 ||
	                m->key_len != outer->key_len ||
	                memcmp(m->key, outer->key, outer->key_len) != 0 ||
	                m->length != outer->length || memcmp(m->hash, outer->hash, 16) != 0))
		rc = kvs_error_set(KVS_ECORRUPT, "%s does not match its index", bwhat);
	if (rc == 0) {
		m->generation = outer->generation;
		/* the index's own history fields stay with the resolved manifest */
		m->v3 = outer->v3;
		m->time_ms = outer->time_ms;
		m->added = outer->added;
		m->hist = outer->hist;
		m->hist_len = outer->hist_len;
		m->hist_bad = outer->hist_bad;
		outer->hist = NULL;
		outer->hist_len = 0;
	} else {
		kvs__manifest_clear(m);
	}
	kvs__manifest_clear(outer);
	return rc;
}

int kvs__index_load(kvs__manifest *m, kvs_store *s, const kvs_object *index,
                    const char *key, size_t key_len, uint64_t *requests)
{
	kvs__manifest outer;
	char what[KVS__NAME_BUF + 16];
	int rc;

	memset(m, 0, sizeof(*m));   /* callers clear *m on every failure */
	if ((rc = kvs__index_decode(&outer, s, index, key, key_len)) < 0) {
		kvs__manifest_clear(&outer);
		return rc;
	}
	snprintf(what, sizeof(what), "index %s", index->name);
	return kvs__manifest_resolve(m, s, &outer, what, requests);
}

/* GET + load the index of a key. */
static int load_key(kvs__manifest *m, kvs_ver *ver, kvs_store *s, const char *key,
                    uint64_t gen, uint64_t *requests)
{
	char name[KVS__NAME_BUF];
	kvs_object *idx = NULL;
	size_t klen;
	int rc;

	memset(m, 0, sizeof(*m));
	if (!s)
		return kvs_error_set(KVS_EINVAL, "store is NULL");
	if ((rc = kvs__key_to_index(name, s, key, &klen)) < 0)
		return rc;
	(*requests)++;
	rc = s->be->ops->get(s->be, &idx, name);
	if (rc == KVS_ENOTFOUND)
		return kvs_error_set(KVS_ENOTFOUND, "key \"%s\" not found", key);
	if (rc < 0)
		return rc;
	if (gen)   /* a version by number: the committed one or one its history keeps */
		rc = kvs__hist_load(m, s, idx, key, klen, gen, requests);
	else
		rc = kvs__index_load(m, s, idx, key, klen, requests);
	if (rc == 0 && m->kind == KVS__MF_MAP) {
		kvs__manifest_clear(m);
		rc = kvs_error_set(KVS_EINVAL, "key \"%s\" holds a map: read it with kvs_map_get, "
		                   "kvs_map_iter_open or kvs_map_export_json", key);
	}
	if (rc == 0 && ver)
		snprintf(ver->str, sizeof(ver->str), "%s", idx->resource_version);
	kvs_object_free(idx);
	return rc;
}

int kvs_get(void **out, size_t *out_len, kvs_ver *out_ver, kvs_store *s, const char *key,
            const kvs_get_options *opts)
{
	kvs_get_options o = KVS_GET_OPTIONS_INIT;
	kvs__manifest m;
	char what[KVS_KEY_MAX + 16];
	uint64_t req = 0;
	uint8_t *buf = NULL;
	kvs_ver v = { "" };
	int rc;

	if (!out || !out_len)
		return kvs_error_set(KVS_EINVAL, "kvs_get: out is NULL");
	*out = NULL;
	*out_len = 0;
	if ((rc = KVS__OPTS(&o, opts, get)) < 0)
		return rc;
	if (!o.max_bytes)
		o.max_bytes = KVS_GET_MAX_BYTES_DEFAULT;
	if ((rc = load_key(&m, &v, s, key, o.generation, &req)) == 0) {
		snprintf(what, sizeof(what), "key \"%s\"", key);
		rc = kvs__value_read_buf(&buf, s, &m, what, &o, &req);
	}
	if (rc == 0) {
		*out = buf;
		*out_len = (size_t)m.length;
		if (out_ver)
			*out_ver = v;
	}
	kvs__manifest_clear(&m);
	return rc;
}

/* kvs_get_into: the cap and the buffer's size are both checked against the
 * manifest's length before a byte is written. */
int kvs_get_into(size_t *out_len, kvs_ver *out_ver, kvs_store *s, const char *key, void *buf,
                 size_t cap, const kvs_get_options *opts)
{
	kvs_get_options o = KVS_GET_OPTIONS_INIT;
	kvs__manifest m;
	char what[KVS_KEY_MAX + 16];
	uint64_t req = 0;
	kvs_ver v = { "" };
	sink out = { NULL, NULL, NULL, NULL };
	int rc;

	if (!out_len)
		return kvs_error_set(KVS_EINVAL, "kvs_get_into: out_len is NULL");
	*out_len = 0;
	if (!buf && cap)
		return kvs_error_set(KVS_EINVAL, "kvs_get_into: buf is NULL");
	if ((rc = KVS__OPTS(&o, opts, get)) < 0)
		return rc;
	if (!o.max_bytes)
		o.max_bytes = KVS_GET_MAX_BYTES_DEFAULT;
	if ((rc = load_key(&m, &v, s, key, o.generation, &req)) < 0)
		goto out;
	snprintf(what, sizeof(what), "key \"%s\"", key);
	if ((rc = over_cap(&m, what, &o)) < 0)
		goto out;
	if (m.length > cap) {
		*out_len = m.length > SIZE_MAX ? SIZE_MAX : (size_t)m.length;
		rc = kvs_error_set(KVS_ERANGE, "%s: the value is %llu bytes, the buffer %zu", what,
		                   (unsigned long long)m.length, cap);
		goto out;
	}
	/* a 0-byte value writes nothing; buf may be NULL then */
	out.buf = buf ? buf : (uint8_t *)what;
	if ((rc = value_read(s, &m, what, &out, &o, &req)) == 0) {
		*out_len = (size_t)m.length;
		if (out_ver)
			*out_ver = v;
	}
out:
	kvs__manifest_clear(&m);
	return rc;
}

int kvs_get_stream(kvs_ver *out_ver, kvs_store *s, const char *key, kvs_write_cb write,
                   void *ctx, const kvs_get_options *opts)
{
	kvs_get_options o = KVS_GET_OPTIONS_INIT;
	kvs__manifest m;
	char what[KVS_KEY_MAX + 16];
	uint64_t req = 0;
	kvs_ver v = { "" };
	int rc;

	if (!write)
		return kvs_error_set(KVS_EINVAL, "kvs_get_stream: write callback is NULL");
	if ((rc = KVS__OPTS(&o, opts, get)) < 0)
		return rc;
	if (!o.max_bytes)
		o.max_bytes = KVS_MAX_BYTES_UNLIMITED;   /* memory is bounded anyway */
	if ((rc = load_key(&m, &v, s, key, o.generation, &req)) == 0) {
		snprintf(what, sizeof(what), "key \"%s\"", key);
		rc = kvs__value_read(s, &m, what, write, ctx, &o, &req);
	}
	if (rc == 0 && out_ver)
		*out_ver = v;
	kvs__manifest_clear(&m);
	return rc;
}

/* The descriptor of kvs_get_fd and the errno of its failed write. */
typedef struct fd_dst {
	int fd;
	int err;
} fd_dst;

static int fd_write(void *ctx, const void *buf, size_t len)
{
	fd_dst *f = ctx;
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(f->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			f->err = n < 0 ? errno : EIO;
			kvs_error_set(KVS_EIO, "write to fd %d: %s", f->fd, strerror(f->err));
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int kvs_get_fd(kvs_ver *out_ver, kvs_store *s, const char *key, int fd,
               const kvs_get_options *opts)
{
	fd_dst f = { fd, 0 };
	int rc = kvs_get_stream(out_ver, s, key, fd_write, &f, opts);

	/* the write callback failed: report the I/O error, not a cancel */
	if (rc == KVS_ECANCELED && f.err)
		rc = kvs_error_set(KVS_EIO, "writing key \"%s\" to fd %d failed: %s", key, fd,
		                   strerror(f.err));
	return rc;
}
