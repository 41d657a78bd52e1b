/*
 * segwrite.c — the segment writer (segwrite.h; docs/design.md "Put").
 *
 * Why AlreadyExists is not trusted as it comes: the name of a segment is
 * the hash of the bytes it should hold, so an object under that name is
 * *meant* to be this segment, but anything with write access to the
 * namespace can put any object there, and damage can change an object's
 * bytes. A write that references such an object is acknowledged and
 * unreadable. So an object found under our name is touched first (from then
 * on gc cannot take it: its resourceVersion changed and it is young) and
 * then read back and judged:
 *
 *  - immutable, labelled as ours, content hashing to its name: it *is* the
 *    segment; reuse it;
 *  - not immutable, or not labelled as ours: replace it in place, with the
 *    precondition of the version just judged, by exactly the segment (the
 *    API server lets a mutable object take any data and an immutable one
 *    new labels with the same data). The name never stops resolving, so an
 *    index that already reads it keeps reading it. Then touch it again;
 *  - immutable and holding other bytes: refuse (KVS_ECORRUPT naming it).
 *    Its data can never change, and deleting it to re-create it would leave
 *    a moment — forever, if the writer dies in it — in which an index that
 *    reads its intact chunks finds nothing. fsck reports it; an operator
 *    deletes it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refs.h"
#include "segwrite.h"

/* Rounds of create / touch / verify / fix for one segment name. */
#define EXISTS_ROUNDS 4

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

void kvs__segw_init(kvs__segw *w, kvs_store *s, const char *key, kvs__wstats *st)
{
	memset(w, 0, sizeof(*w));
	w->s = s;
	w->key = key;
	w->st = st;
	w->t_check = -1;
}

static void flight_free(struct kvs__segw_flight *F);

void kvs__segw_free(kvs__segw *w)
{
	if (!w)
		return;
	flight_free(w->fl);
	for (size_t i = 0; i < w->nbent; i++)
		free(w->bent[i].blob);
	for (size_t i = 0; i < w->npend; i++) {
		kvs_object_free(w->pend[i]);
		for (size_t j = 0; j < w->npent[i]; j++)
			free(w->pent[i][j].blob);
		free(w->pent[i]);
	}
	free(w->bent);
	free(w->slots);
	memset(w, 0, sizeof(*w));
}

int kvs__segw_slot_add(kvs__segw *w, uint32_t *out)
{
	int rc = grow((void **)&w->slots, &w->capslots, w->nslots + 1, sizeof(kvs__slot),
	              2 * (size_t)KVS__MF_MAX_SEGS);
	if (rc < 0)
		return rc;
	memset(&w->slots[w->nslots], 0, sizeof(kvs__slot));
	*out = (uint32_t)w->nslots++;
	return 0;
}

static void mark_at(kvs__segw *w, uint32_t sl, kvs__slot_state state, int64_t mono,
                    int64_t srv)
{
	w->slots[sl].state = state;
	w->slots[sl].t_mono = mono;
	w->slots[sl].t_srv = srv;
}

static void mark(kvs__segw *w, uint32_t sl, kvs__slot_state state, int64_t srv)
{
	mark_at(w, sl, state, kvs__mono_ms(), srv);
}

/* ---- backend calls ------------------------------------------------------ */

static int server_now(kvs__segw *w, int64_t *ms)
{
	w->st->requests++;
	*ms = 0;
	return w->s->be->ops->now(w->s->be, ms);
}

/* A metadata-only update that bumps the segment's resourceVersion, so a gc
 * that listed it earlier cannot delete it, and dates it (design.md). */
static int touch_name(kvs__segw *w, const char *name, int64_t *ms)
{
	char now[32];
	kvs_kv kv;
	int rc;

	if ((rc = server_now(w, ms)) < 0)
		return rc;
	snprintf(now, sizeof(now), "%lld", (long long)*ms);
	kv.key = (char *)KVS__ANN_TOUCHED;
	kv.value = now;
	w->st->requests++;
	return w->s->be->ops->annotate(w->s->be, NULL, name, &kv, 1);
}

int kvs__segw_touch(kvs__segw *w, uint32_t sl)
{
	char name[KVS__NAME_BUF];
	int64_t ms;
	int rc;

	if ((rc = kvs__segw_wait(w)) < 0)
		return rc;

	kvs__segment_name(name, w->s->name, w->slots[sl].addr);
	if ((rc = touch_name(w, name, &ms)) == 0)
		mark(w, sl, KVS__SLOT_TOUCHED, ms);
	return rc;
}

/* Context for a failed segment call: the key, the segment, and the detail
 * of that very call (the op's own, after a batch: the ops of a batch
 * overwrite the thread's last error). The backends' details usually name the
 * object already ("create configmap ns/NAME: ..."): name it only if not.
 * Wording only; the code is the call's. */
static int seg_fail(kvs__segw *w, int rc, const char *what, const char *name,
                    const char *detail)
{
	if (strstr(detail, name))
		return kvs_error_set(rc, "key \"%s\": %s", w->key, detail);
	return kvs_error_set(rc, "key \"%s\": %s %s: %s", w->key, what, name, detail);
}

/* ---- judging an object found under a segment's name ---------------------- */

enum { SEG_GOOD = 0, SEG_FIXABLE, SEG_WRONG };

static int labels_ours(const kvs_object *o, const char *store)
{
	const char *v;

	return (v = kvs_object_label(o, KVS__LABEL_STORE)) && strcmp(v, store) == 0 &&
	       (v = kvs_object_label(o, KVS__LABEL_ROLE)) && strcmp(v, KVS__ROLE_SEGMENT) == 0 &&
	       (v = kvs_object_label(o, KVS__LABEL_MANAGED)) &&
	       strcmp(v, KVS__LABEL_MANAGED_VALUE) == 0;
}

/*
 * Is `obj` (consumed) the segment of address `addr`? *verdict: SEG_GOOD,
 * SEG_FIXABLE (right bytes but mutable or not labelled as ours, or mutable
 * with wrong bytes: replaceable in place) or SEG_WRONG (immutable, wrong
 * bytes), with `why` filled. *sg (may be NULL) gets the opened segment of a
 * good one. Returns 0 or KVS_ENOMEM.
 */
static int judge(kvs__segw *w, kvs_object *obj, const uint8_t addr[16], int *verdict,
                 char *why, size_t cap, kvs__segment **sgp)
{
	int immutable = obj->immutable, ours = labels_ours(obj, w->s->name), right;
	kvs__segment *sg = NULL;
	int rc;

	if (sgp)
		*sgp = NULL;
	why[0] = '\0';
	rc = kvs__seg_open(&sg, obj, addr, w->s->be->max_object_bytes);
	if (rc == KVS_ENOMEM)
		return rc;
	right = rc == 0 && sg->verified;
	if (rc < 0)
		snprintf(why, cap, "%.200s", kvs_error_last());
	else if (!right)
		snprintf(why, cap, "its %zu entries (%llu bytes) do not hash to its name", sg->n,
		         (unsigned long long)sg->bytes);
	else if (!immutable)
		snprintf(why, cap, "it is not immutable");
	else if (!ours)
		snprintf(why, cap, "it is not labelled as a segment of store %s", w->s->name);
	if (!right && immutable)
		*verdict = SEG_WRONG;
	else if (!right || !immutable || !ours)
		*verdict = SEG_FIXABLE;
	else
		*verdict = SEG_GOOD;
	if (sgp && *verdict == SEG_GOOD)
		*sgp = sg;
	else
		kvs__seg_unref(sg);
	return 0;
}

/*
 * A create of segment `obj` (slot `sl`) met AlreadyExists: make the object
 * under that name this segment, touched, or fail (file comment). `srv` is a
 * server time read before the create.
 */
static int settle_existing(kvs__segw *w, uint32_t sl, kvs_object *obj, int64_t srv)
{
	char why[256];
	int fixed = 0, rc = 0;

	for (int round = 0; round < EXISTS_ROUNDS; round++) {
		kvs_object *cur = NULL;
		int64_t ms;
		int verdict;

		rc = touch_name(w, obj->name, &ms);
		if (rc == KVS_ENOTFOUND) {
			/* gone (collected, or deleted by hand) since: create it again */
			w->st->requests++;
			rc = w->s->be->ops->create(w->s->be, NULL, obj);
			if (rc == 0) {
				mark(w, sl, KVS__SLOT_CREATED, srv);
				w->st->segments_written++;
				w->st->bytes_written += w->slots[sl].bytes;
				return 0;
			}
			if (rc == KVS_EEXISTS)
				continue;
			return seg_fail(w, rc, "segment", obj->name, kvs_error_last());
		}
		if (rc < 0)
			return seg_fail(w, rc, "segment", obj->name, kvs_error_last());
		if (fixed) {
			/* replaced by exactly this segment, then touched */
			mark(w, sl, KVS__SLOT_TOUCHED, ms);
			return 0;
		}
		w->st->requests++;
		rc = w->s->be->ops->get(w->s->be, &cur, obj->name);
		if (rc == KVS_ENOTFOUND)
			continue;
		if (rc < 0)
			return seg_fail(w, rc, "reading back segment", obj->name, kvs_error_last());
		char rv[KVS_VER_MAX];
		snprintf(rv, sizeof(rv), "%s", cur->resource_version ? cur->resource_version : "");
		if ((rc = judge(w, cur, w->slots[sl].addr, &verdict, why, sizeof(why), NULL)) < 0)
			return rc;
		if (verdict == SEG_GOOD) {
			mark(w, sl, KVS__SLOT_TOUCHED, ms);
			return 0;
		}
		if (verdict == SEG_WRONG)
			return kvs_error_set(KVS_ECORRUPT, "key \"%s\": segment %s already exists but is "
			                     "not the segment its name addresses (%s): planted or damaged; "
			                     "nothing was committed. `kvsplit fsck` reports what uses it; "
			                     "delete it by hand and put again", w->key, obj->name, why);
		/* Fixable: replace it in place, conditioned on what we judged. */
		if (!rv[0])
			return kvs_error_set(KVS_ECORRUPT, "key \"%s\": segment %s already exists but %s, "
			                     "and the backend gave no version to replace it at", w->key,
			                     obj->name, why);
		if ((rc = kvs_object_set_rv(obj, rv)) < 0)
			return rc;
		w->st->requests++;
		rc = w->s->be->ops->replace(w->s->be, NULL, obj);
		{
			int rrc = kvs_object_set_rv(obj, "");
			if (rc == 0 && rrc < 0)
				return rrc;
		}
		if (rc == 0) {
			fixed = 1;
			w->st->bytes_written += w->slots[sl].bytes;
			continue;
		}
		if (rc == KVS_ECONFLICT || rc == KVS_ENOTFOUND)
			continue;   /* changed since we judged it: judge again */
		{
			char detail[512];
			snprintf(detail, sizeof(detail), "%s", kvs_error_last());
			return kvs_error_set(rc == KVS_EINVALOBJ ? KVS_ECORRUPT : rc,
			                     "key \"%s\": segment %s already exists but %s, and replacing "
			                     "it failed: %s", w->key, obj->name, why, detail);
		}
	}
	return kvs_error_set(KVS_ECORRUPT, "key \"%s\": segment %s keeps changing under the "
	                     "writer (%d attempts to create, verify or fix it)", w->key, obj->name,
	                     EXISTS_ROUNDS);
}

/* ---- packing and creating ------------------------------------------------ */

/*
 * One flush: the sealed segments it creates, moved out of the writer, and
 * what their creation answered. What runs in the background (flight_run)
 * reads and writes only this and the store's configuration and backend,
 * never the writer's slots (which the caller may grow meanwhile); the
 * caller takes the answers (flight_finish).
 */
typedef struct kvs__segw_flight {
	kvs_store *s;
	const char *key;
	unsigned int seal_workers;
	size_t n;
	uint32_t slot[KVS__MAX_CONCURRENCY];
	kvs_object *obj[KVS__MAX_CONCURRENCY];      /* built at the seal, or by build_one */
	kvs__seg_entry *ent[KVS__MAX_CONCURRENCY];  /* not built yet: its entries */
	size_t nent[KVS__MAX_CONCURRENCY];
	uint8_t addr[KVS__MAX_CONCURRENCY][16];     /* what build_one found */
	unsigned char built[KVS__MAX_CONCURRENCY];  /* addr is the slot's new address */
	kvs_op ops[KVS__MAX_CONCURRENCY];
	int64_t srv;          /* server time before the creates (a lower bound) */
	int64_t mono;         /* monotonic ms before the creates (a lower bound) */
	uint64_t batch_ns;    /* how long the creates took */
	uint64_t requests;
	int rc;               /* of the build, the time or the batch call (not the ops) */
	char err[KVS_OP_DETAIL_MAX * 2];
	pthread_t th;
	int running;          /* th started and not joined */
} kvs__segw_flight;

/*
 * Building a sealed segment's object: sort its entries, hash them into its
 * address (a pass over every stored byte), name and label it, share its
 * data (backend.h v3). Deferred to the flush when w->seal_workers is set,
 * so that the segments of one flush are built side by side.
 */
static int build_obj(kvs_object **out, uint8_t addr[16], const kvs_store *s,
                     kvs__seg_entry *ent, size_t nent)
{
	kvs_object *obj = NULL;
	int rc = kvs__seg_build(&obj, addr, s->name, ent, nent);

	/* Shared (backend.h, version 3): a backend that keeps objects in
	 * memory keeps a reference to the blobs rather than a copy. */
	if (rc == 0 && (rc = kvs_object_share_data(obj)) < 0)
		kvs_object_free(obj);
	if (rc == 0)
		*out = obj;
	return rc;
}

static int build_one(kvs__segw_flight *F, size_t i)
{
	int rc = build_obj(&F->obj[i], F->addr[i], F->s, F->ent[i], F->nent[i]);

	free(F->ent[i]);
	F->ent[i] = NULL;
	F->nent[i] = 0;
	F->built[i] = rc == 0;
	return rc;
}

typedef struct bpool {
	kvs__segw_flight *F;
	size_t next;          /* atomic */
	int failed;           /* atomic: the first error code */
} bpool;

static void *build_some(void *arg)
{
	bpool *bp = arg;

	for (;;) {
		size_t i = __atomic_fetch_add(&bp->next, 1, __ATOMIC_RELAXED);
		int rc;
		if (i >= bp->F->n)
			return NULL;
		if (!bp->F->ent[i])
			continue;
		if ((rc = build_one(bp->F, i)) < 0) {
			int zero = 0;
			__atomic_compare_exchange_n(&bp->failed, &zero, rc, 0, __ATOMIC_RELAXED,
			                            __ATOMIC_RELAXED);
		}
	}
}

static int build_pending(kvs__segw_flight *F)
{
	pthread_t th[8];
	bpool bp = { F, 0, 0 };
	size_t todo = 0, nt = 0, want = F->seal_workers;

	for (size_t i = 0; i < F->n; i++)
		todo += F->ent[i] != NULL;
	if (!todo)
		return 0;
	if (want > todo)
		want = todo;
	for (; nt + 1 < want && nt < 8; nt++)
		if (pthread_create(&th[nt], NULL, build_some, &bp) != 0)
			break;
	build_some(&bp);
	for (size_t i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	if (bp.failed)   /* the detail was set on the thread that failed */
		return kvs_error_set(bp.failed, "key \"%s\": building a sealed segment failed "
		                     "(out of memory)", F->key);
	return 0;
}

/* Build what is not built, read the server's time, create the batch. The
 * part of a flush that may run on a thread of its own. */
static void flight_run(kvs__segw_flight *F)
{
	memset(F->ops, 0, F->n * sizeof(F->ops[0]));
	F->err[0] = '\0';
	F->srv = 0;
	if ((F->rc = build_pending(F)) < 0)
		goto out;
	/* both clocks before the creates: lower bounds of their creation */
	F->mono = kvs__mono_ms();
	F->requests++;
	if ((F->rc = F->s->be->ops->now(F->s->be, &F->srv)) < 0)
		goto out;
	for (size_t i = 0; i < F->n; i++) {
		F->ops[i].kind = KVS_OP_CREATE;
		F->ops[i].in = F->obj[i];
	}
	F->requests += F->n;
	F->batch_ns = kvs__mono_ns();
	F->rc = kvs__batch(F->s, F->ops, F->n);
	F->batch_ns = kvs__mono_ns() - F->batch_ns;
out:
	if (F->rc < 0)
		snprintf(F->err, sizeof(F->err), "%s", kvs_error_last());
}

static void *flight_thread(void *arg)
{
	flight_run(arg);
	return NULL;
}

static void flight_clear(kvs__segw_flight *F)
{
	for (size_t i = 0; i < F->n; i++) {
		kvs_object_free(F->ops[i].out);
		F->ops[i].out = NULL;
		kvs_object_free(F->obj[i]);
		F->obj[i] = NULL;
		for (size_t j = 0; j < F->nent[i]; j++)
			free(F->ent[i][j].blob);
		free(F->ent[i]);
		F->ent[i] = NULL;
		F->nent[i] = 0;
	}
	F->n = 0;
}

#define ASYNC_MIN_NS 1000000u

/* Join a flight still running (a put that failed while it ran: what it
 * created is garbage for gc), and free it. Accepts NULL. */
static void flight_free(kvs__segw_flight *F)
{
	if (!F)
		return;
	if (F->running)
		pthread_join(F->th, NULL);
	flight_clear(F);
	free(F);
}

/* Move the writer's sealed segments into a flight (not running). */
static int flight_take(kvs__segw *w, kvs__segw_flight **out)
{
	kvs__segw_flight *F = w->fl;

	if (!F && !(F = w->fl = calloc(1, sizeof(*F))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	F->s = w->s;
	F->key = w->key;
	F->seal_workers = w->seal_workers;
	F->requests = 0;
	F->rc = 0;
	F->n = w->npend;
	for (size_t i = 0; i < w->npend; i++) {
		F->slot[i] = w->pslot[i];
		F->obj[i] = w->pend[i];
		F->ent[i] = w->pent[i];
		F->nent[i] = w->npent[i];
		F->built[i] = 0;
		w->pend[i] = NULL;
		w->pent[i] = NULL;
		w->npent[i] = 0;
	}
	w->npend = 0;
	*out = F;
	return 0;
}

/* Take the answers of a flight that has run: the slots' addresses and
 * states, the counters, and an object met under a segment's name
 * (settle_existing). The first failure is the flush's. */
static int flight_finish(kvs__segw *w, kvs__segw_flight *F)
{
	int rc = 0;

	/* creates faster than this (the in-memory backend: references, no
	 * transfer) are not worth a thread: it would only compete with the
	 * compression for the cores; the next flushes stay on the caller */
	w->fast_creates = F->rc == 0 && F->batch_ns < ASYNC_MIN_NS;
	w->st->requests += F->requests;
	for (size_t i = 0; i < F->n; i++)
		if (F->built[i])
			memcpy(w->slots[F->slot[i]].addr, F->addr[i], 16);
	if (F->rc < 0) {
		rc = kvs_error_set(F->rc, "%s", F->err);
		flight_clear(F);
		return rc;
	}
	for (size_t i = 0; i < F->n; i++) {
		uint32_t sl = F->slot[i];
		int r = 0;

		if (F->ops[i].result == 0) {
			mark_at(w, sl, KVS__SLOT_CREATED, F->mono, F->srv);
			w->st->segments_written++;
			w->st->chunks_written += w->slots[sl].nchunks;
			w->st->bytes_written += w->slots[sl].bytes;
		} else if (rc == 0 && F->ops[i].result == KVS_EEXISTS) {
			r = settle_existing(w, sl, F->obj[i], F->srv);
		} else if (rc == 0) {
			r = seg_fail(w, F->ops[i].result, "creating segment", F->obj[i]->name,
			             F->ops[i].detail);
		}
		if (rc == 0)
			rc = r;
	}
	flight_clear(F);
	return rc;
}

int kvs__segw_wait(kvs__segw *w)
{
	kvs__segw_flight *F = w->fl;

	if (!F || !F->running)
		return 0;
	pthread_join(F->th, NULL);
	F->running = 0;
	return flight_finish(w, F);
}

int kvs__segw_flush(kvs__segw *w)
{
	kvs__segw_flight *F;
	int rc;

	if ((rc = kvs__segw_wait(w)) < 0)
		return rc;
	if (w->npend == 0)
		return 0;
	if ((rc = flight_take(w, &F)) < 0)
		return rc;
	flight_run(F);
	return flight_finish(w, F);
}

/* Hand the sealed segments to a thread; where none starts, flush here. */
static int flush_async(kvs__segw *w)
{
	kvs__segw_flight *F;
	int rc;

	if ((rc = kvs__segw_wait(w)) < 0 || (rc = flight_take(w, &F)) < 0)
		return rc;
	if (pthread_create(&F->th, NULL, flight_thread, F) == 0) {
		F->running = 1;
		return 0;
	}
	flight_run(F);
	return flight_finish(w, F);
}

int kvs__segw_seal(kvs__segw *w)
{
	kvs__slot *sl;
	size_t i;
	int rc;

	if (w->nbent == 0)
		return 0;
	sl = &w->slots[w->bslot];
	sl->bytes = w->bbytes;
	sl->nchunks = (uint32_t)w->nbent;
	i = w->npend++;
	w->pslot[i] = w->bslot;
	w->pend[i] = NULL;
	/* the entries go with the sealed segment; the next open one starts a
	 * fresh list */
	w->pent[i] = w->bent;
	w->npent[i] = w->nbent;
	w->bent = NULL;
	w->capbent = 0;
	w->nbent = 0;
	w->bbytes = 0;
	if (!w->seal_workers) {
		/* built now: a value kind may read the address right away */
		rc = build_obj(&w->pend[i], sl->addr, w->s, w->pent[i], w->npent[i]);
		free(w->pent[i]);
		w->pent[i] = NULL;
		w->npent[i] = 0;
		if (rc < 0) {
			w->npend--;
			return rc;
		}
	}
	if (w->async && w->seal_workers && !w->fast_creates) {
		size_t half = w->s->opts.concurrency / 2;
		if (w->npend >= (half ? half : 1))
			return flush_async(w);
		return 0;
	}
	if (w->npend >= w->s->opts.concurrency)
		return kvs__segw_flush(w);
	return 0;
}

int kvs__segw_add(kvs__segw *w, const uint8_t addr[16], uint8_t *blob, uint32_t len,
                  uint32_t *slot)
{
	int rc;

	if (w->nbent && w->bbytes + len > w->s->seg_cap && (rc = kvs__segw_seal(w)) < 0) {
		free(blob);
		return rc;
	}
	if (w->nbent == 0 && (rc = kvs__segw_slot_add(w, &w->bslot)) < 0) {
		free(blob);
		return rc;
	}
	if ((rc = grow((void **)&w->bent, &w->capbent, w->nbent + 1, sizeof(kvs__seg_entry),
	               1u << 20)) < 0) {
		free(blob);
		return rc;
	}
	memcpy(w->bent[w->nbent].addr, addr, 16);
	w->bent[w->nbent].blob = blob;
	w->bent[w->nbent].len = len;
	w->nbent++;
	w->bbytes += len;
	*slot = w->bslot;
	return 0;
}

const kvs__seg_entry *kvs__segw_open_find(const kvs__segw *w, const uint8_t addr[16])
{
	const kvs__seg_entry *e = NULL;

	for (size_t j = 0; j < w->nbent; j++)
		if (memcmp(w->bent[j].addr, addr, 16) == 0)
			e = &w->bent[j];
	return e;
}

void kvs__segw_discard_open(kvs__segw *w)
{
	for (size_t j = 0; j < w->nbent; j++)
		free(w->bent[j].blob);
	w->nbent = 0;
	w->bbytes = 0;
}

/* ---- reuse --------------------------------------------------------------- */

/*
 * By metadata only (design.md "Put"): a segment is reused when it exists, is
 * not known to be mutable (a Kubernetes metadata read cannot tell) and
 * carries our labels, and, when the backend knows its data
 * size, that size is the one the base recorded. Its bytes are not read: the
 * full check (read back and hash against the name) is for objects met by a
 * create (settle_existing), which a planted object meets when the chunks of
 * a segment found unusable here are written again. An immutable, labelled
 * object of other bytes under the name is found by reads (KVS_ECORRUPT) and
 * fsck, not here.
 */
int kvs__segw_check_reuse(kvs__segw *w, uint32_t first, size_t n, int late)
{
	kvs_op ops[KVS__MAX_CONCURRENCY];
	char names[KVS__MAX_CONCURRENCY][KVS__NAME_BUF];
	size_t conc = w->s->opts.concurrency;
	int rc = 0;

	if ((rc = kvs__segw_wait(w)) < 0)
		return rc;

	for (size_t at = 0; at < n && rc == 0; at += conc) {
		size_t nops = n - at < conc ? n - at : conc;
		memset(ops, 0, sizeof(ops));
		for (size_t k = 0; k < nops; k++) {
			kvs__segment_name(names[k], w->s->name, w->slots[first + at + k].addr);
			ops[k].kind = KVS_OP_HEAD;
			ops[k].name = names[k];
		}
		w->st->requests += nops;
		rc = kvs__batch(w->s, ops, nops);
		for (size_t k = 0; k < nops; k++) {
			kvs__slot *sl = &w->slots[first + at + k];
			kvs_object *obj = ops[k].out;

			ops[k].out = NULL;
			if (rc < 0) {
				kvs_object_free(obj);
				continue;
			}
			if (ops[k].result == KVS_ENOTFOUND) {
				kvs_object_free(obj);
				sl->state = KVS__SLOT_UNUSABLE;
				continue;
			}
			if (ops[k].result < 0) {
				kvs_object_free(obj);
				rc = seg_fail(w, ops[k].result, "reading base segment", names[k],
				              ops[k].detail);
				continue;
			}
			if (!obj) {
				rc = kvs_error_set(KVS_EIO, "backend returned no object for %s", names[k]);
				rc = seg_fail(w, rc, "reading base segment", names[k], kvs_error_last());
				continue;
			}
			/* immutable: 1, or -1 when the backend cannot tell (backend.h) */
			sl->state = obj->immutable != 0 && labels_ours(obj, w->s->name) &&
			            (obj->data_bytes == 0 || obj->data_bytes == sl->bytes)
			            ? KVS__SLOT_REUSED : KVS__SLOT_UNUSABLE;
			kvs_object_free(obj);
		}
	}
	/* A late base protects nothing (design.md "The pause hole closed"): what
	 * is reused from it is touched, as on AlreadyExists; a touch that finds
	 * it gone makes the slot unusable, so its chunks are written anew. */
	for (size_t i = 0; late && rc == 0 && i < n; i++) {
		kvs__slot *sl = &w->slots[first + i];
		if (sl->state != KVS__SLOT_REUSED)
			continue;
		rc = kvs__segw_touch(w, first + (uint32_t)i);
		if (rc == KVS_ENOTFOUND) {
			sl->state = KVS__SLOT_UNUSABLE;
			rc = 0;
		} else if (rc < 0) {
			char name[KVS__NAME_BUF];
			kvs__segment_name(name, w->s->name, sl->addr);
			rc = seg_fail(w, rc, "touching base segment", name, kvs_error_last());
		}
	}
	return rc;
}

/* ---- late commits ---------------------------------------------------------- */

/* W/2 in ms, and the slack of a server time of whole seconds (design.md). */
static int64_t half_window_ms(const kvs_store *s)
{
	return (int64_t)s->opts.touch_window_s * 1000 / 2;
}
#define KVS__SECOND_SLACK_MS 999

/* Is a commit at server time `commit_ms` (whole seconds: up to 999 ms
 * later really) more than W/2 after `t_check`? Unknown times are late. */
static int is_late(const kvs_store *s, int64_t commit_ms, int64_t t_check)
{
	if (commit_ms <= 0 || commit_ms > INT64_MAX / 2 || t_check < 0 ||
	    t_check > commit_ms + KVS__SECOND_SLACK_MS)
		return 1;
	return commit_ms + KVS__SECOND_SLACK_MS - t_check > half_window_ms(s);
}

int kvs__index_late(const kvs_store *s, const kvs_object *idx)
{
	const char *a = kvs_object_annotation(idx, KVS__ANN_CHECKED);
	long long chk;
	char *end;

	if (!a || !*a)
		return 1;   /* written before T_check was recorded, or not by us */
	if (strcmp(a, "-") == 0)
		return 0;   /* it created or touched nothing: all it has is its base's */
	if (*a < '0' || *a > '9')
		return 1;
	errno = 0;
	chk = strtoll(a, &end, 10);
	if (errno || *end)
		return 1;
	return is_late(s, idx->updated_ms, (int64_t)chk);
}

int kvs__segw_touch_base(kvs__segw *w, const uint8_t (*addrs)[16], size_t n)
{
	int wrc = kvs__segw_wait(w);

	if (wrc < 0)
		return wrc;
	for (size_t i = 0; i < n; i++) {
		char name[KVS__NAME_BUF];
		uint32_t sl;
		int rc;

		if ((rc = kvs__segw_slot_add(w, &sl)) < 0)
			return rc;
		memcpy(w->slots[sl].addr, addrs[i], 16);
		w->slots[sl].ref = 1;
		rc = kvs__segw_touch(w, sl);
		if (rc == 0)
			continue;
		kvs__segment_name(name, w->s->name, addrs[i]);
		if (rc == KVS_ENOTFOUND)
			return kvs_error_set(KVS_ESTALE, "key \"%s\": segment %s of the committed value is "
			                     "gone (its commit landed late, after a gc had judged it): "
			                     "nothing was committed; `kvsplit fsck` reports what is lost",
			                     w->key, name);
		return seg_fail(w, rc, "touching base segment", name, kvs_error_last());
	}
	return 0;
}

int kvs__segw_after_commit(kvs__segw *w, int64_t commit_ms)
{
	int wrc = kvs__segw_wait(w);

	if (wrc < 0)
		return wrc;
	if (w->t_check < 0 || !is_late(w->s, commit_ms, w->t_check))
		return 0;
	for (size_t i = 0; i < w->nslots; i++) {
		kvs__slot *sl = &w->slots[i];
		char name[KVS__NAME_BUF];
		int rc;

		if (!kvs__slot_fresh(sl) || !sl->ref)
			continue;
		if ((rc = kvs__segw_touch(w, (uint32_t)i)) == 0)
			continue;
		kvs__segment_name(name, w->s->name, sl->addr);
		if (rc == KVS_ENOTFOUND)
			return kvs_error_set(KVS_ESTALE, "key \"%s\": the commit landed %lld ms after the "
			                     "last touch check (more than half the touch window) and segment "
			                     "%s was collected meanwhile: the committed value is unreadable; "
			                     "put it again", w->key,
			                     commit_ms > 0 ? (long long)(commit_ms - w->t_check) : -1LL, name);
		{
			char detail[512];
			snprintf(detail, sizeof(detail), "%s", kvs_error_last());
			return kvs_error_set(rc, "key \"%s\": committed late, and touching segment %s "
			                     "after the commit failed, so the value is not known to be "
			                     "readable (%s)", w->key, name, detail);
		}
	}
	return 0;
}

/* ---- before the commit --------------------------------------------------- */

/*
 * Half the window is the threshold, leaving the other half for the commit
 * itself. A touch takes time too, so the check is repeated until a pass
 * touches nothing (bounded: a writer that cannot keep up fails).
 */
int kvs__segw_refresh(kvs__segw *w)
{
	int64_t win = (int64_t)w->s->opts.touch_window_s * 1000;
	int rc, any = 0;

	if ((rc = kvs__segw_wait(w)) < 0)
		return rc;

	w->t_check = -1;
	for (size_t i = 0; i < w->nslots; i++)
		any |= kvs__slot_fresh(&w->slots[i]) && w->slots[i].ref;
	if (!any)
		return 0;
	for (int pass = 0; pass < 4; pass++) {
		int64_t now = kvs__mono_ms(), srv;
		int touched = 0;
		if ((rc = server_now(w, &srv)) < 0)
			return rc;
		for (size_t i = 0; i < w->nslots; i++) {
			kvs__slot *sl = &w->slots[i];
			char name[KVS__NAME_BUF];
			if (!kvs__slot_fresh(sl) || !sl->ref ||
			    (now - sl->t_mono < win / 2 && srv - sl->t_srv < win / 2))
				continue;
			rc = kvs__segw_touch(w, (uint32_t)i);
			if (rc == KVS_ENOTFOUND) {
				kvs__segment_name(name, w->s->name, sl->addr);
				return kvs_error_set(KVS_ESTALE, "key \"%s\": segment %s vanished before the "
				                     "commit (put took longer than the touch window)", w->key,
				                     name);
			}
			if (rc < 0)
				return rc;
			touched = 1;
		}
		if (!touched) {
			w->t_check = srv;   /* T_check: the commit that follows carries it */
			return 0;
		}
	}
	return kvs_error_set(KVS_ETIMEOUT, "key \"%s\": segments keep outliving the touch window "
	                     "before the commit; the writer is too slow", w->key);
}

int kvs__segw_rebase(kvs__segw *w, const kvs_object *idx)
{
	uint8_t (*in_base)[16] = NULL;
	size_t nbase = 0, need = 0;
	int rc = 0;

	if ((rc = kvs__segw_wait(w)) < 0)
		return rc;

	for (size_t i = 0; i < w->nslots; i++)
		need += w->slots[i].state == KVS__SLOT_REUSED && w->slots[i].ref;
	if (!need)
		return 0;   /* nothing reused: nothing the new base must protect */
	/* What the new base's committed version references. A base that cannot
	 * be read (or memory that runs out collecting it), or that was committed
	 * late, protects nothing: everything is touched, which is always safe;
	 * so is a segment the new base keeps only in its history (not read here:
	 * each history object would cost a GET on every lost race). */
	if (idx && !kvs__index_late(w->s, idx))
		(void)kvs__refs_segments_current(&in_base, &nbase, w->s, idx, NULL, &w->st->requests);
	for (size_t i = 0; i < w->nslots; i++) {
		kvs__slot *sl = &w->slots[i];
		if (sl->state != KVS__SLOT_REUSED || !sl->ref)
			continue;
		if (kvs__refs_has(in_base, nbase, sl->addr))
			continue;
		rc = kvs__segw_touch(w, (uint32_t)i);
		if (rc == KVS_ENOTFOUND)
			rc = kvs_error_set(KVS_ECONFLICT, "key \"%s\": a concurrent writer replaced the value "
			                   "and a reused segment was collected; retry the put", w->key);
		if (rc < 0)
			break;
	}
	free(in_base);
	return rc < 0 ? rc : 0;
}
