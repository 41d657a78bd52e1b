/*
 * workqueue.c — the work queue: a FIFO of ready items, a hash of every item
 * known (dirty / processing / waiting / failures), and a min-heap of
 * delayed items keyed by the time they become ready.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/workqueue.h"

typedef struct item {
	struct item *next;   /* hash chain */
	char *key;
	int dirty;           /* queued (ready) or to be queued after done */
	int processing;
	size_t heap_at;      /* index+1 in the delay heap; 0 when not waiting */
	int64_t ready_at;
	int64_t added_at;    /* when it became dirty (latency) */
	unsigned failures;
} item;

struct kvc_queue {
	kvc_queue_opts o;
	const kvc_clock *clk;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int shut;
	item **tab;
	size_t nbuckets, nitems;
	item **fifo;            /* ring of ready items */
	size_t fcap, fhead, flen;
	item **heap;
	size_t hlen, hcap;
	double tokens;
	int64_t refill_at;
	kvc_queue_stats st;
};

int kvc_queue_new(kvc_queue **out, const kvc_queue_opts *opts, const kvc_clock *clk)
{
	kvc_queue_opts o = opts ? *opts : (kvc_queue_opts)KVC_QUEUE_OPTS_INIT;
	kvc_queue *q;

	*out = NULL;
	o.base_delay_ns = o.base_delay_ns > 0 ? o.base_delay_ns : 5 * KVC_MS;
	o.max_delay_ns = o.max_delay_ns > 0 ? o.max_delay_ns : 1000 * KVC_S;
	o.qps = o.qps > 0 ? o.qps : 10.0;
	o.burst = o.burst ? o.burst : 100;
	o.max_items = o.max_items ? o.max_items : 1000000;
	if (!(q = calloc(1, sizeof(*q))))
		return kvs_error_set(KVS_ENOMEM, "queue: out of memory");
	q->o = o;
	q->clk = clk;
	q->nbuckets = 1024;
	q->tab = calloc(q->nbuckets, sizeof(*q->tab));
	if (!q->tab) {
		free(q);
		return kvs_error_set(KVS_ENOMEM, "queue: out of memory");
	}
	q->tokens = (double)o.burst;
	q->refill_at = kvc_now(clk);
	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = q;
	return 0;
}

void kvc_queue_free(kvc_queue *q)
{
	if (!q)
		return;
	for (size_t b = 0; b < q->nbuckets; b++)
		for (item *it = q->tab[b], *nx; it; it = nx) {
			nx = it->next;
			free(it->key);
			free(it);
		}
	free(q->tab);
	free(q->fifo);
	free(q->heap);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q);
}

static size_t bucket(const kvc_queue *q, const char *key)
{
	return (size_t)(XXH3_64bits(key, strlen(key)) & (q->nbuckets - 1));
}

static item *lookup(kvc_queue *q, const char *key, int create, int *rc)
{
	size_t b = bucket(q, key);
	for (item *it = q->tab[b]; it; it = it->next)
		if (strcmp(it->key, key) == 0)
			return it;
	if (!create)
		return NULL;
	if (q->nitems >= q->o.max_items) {
		*rc = kvs_error_set(KVS_ETOOBIG, "queue: over %zu items", q->o.max_items);
		return NULL;
	}
	if (q->nitems >= q->nbuckets * 2) {
		size_t nb = q->nbuckets * 4;
		item **nt = calloc(nb, sizeof(*nt));
		if (nt) {
			for (size_t i = 0; i < q->nbuckets; i++)
				for (item *it = q->tab[i], *nx; it; it = nx) {
					nx = it->next;
					size_t h = (size_t)(XXH3_64bits(it->key, strlen(it->key)) & (nb - 1));
					it->next = nt[h];
					nt[h] = it;
				}
			free(q->tab);
			q->tab = nt;
			q->nbuckets = nb;
			b = bucket(q, key);
		}
	}
	item *it = calloc(1, sizeof(*it));
	if (!it || !(it->key = strdup(key))) {
		free(it);
		*rc = kvs_error_set(KVS_ENOMEM, "queue: out of memory");
		return NULL;
	}
	it->next = q->tab[b];
	q->tab[b] = it;
	q->nitems++;
	return it;
}

/* Free an item nobody needs any more (not queued, waiting, processed or failing). */
static void maybe_drop(kvc_queue *q, item *it)
{
	if (it->dirty || it->processing || it->heap_at || it->failures)
		return;
	item **pp = &q->tab[bucket(q, it->key)];
	while (*pp != it)
		pp = &(*pp)->next;
	*pp = it->next;
	q->nitems--;
	free(it->key);
	free(it);
}

static int fifo_push(kvc_queue *q, item *it)
{
	if (q->flen == q->fcap) {
		size_t nc = q->fcap ? q->fcap * 2 : 64;
		item **nf = malloc(nc * sizeof(*nf));
		if (!nf)
			return kvs_error_set(KVS_ENOMEM, "queue: out of memory");
		for (size_t i = 0; i < q->flen; i++)
			nf[i] = q->fifo[(q->fhead + i) % q->fcap];
		free(q->fifo);
		q->fifo = nf, q->fcap = nc, q->fhead = 0;
	}
	q->fifo[(q->fhead + q->flen++) % q->fcap] = it;
	return 0;
}

static void heap_swap(kvc_queue *q, size_t a, size_t b)
{
	item *t = q->heap[a];
	q->heap[a] = q->heap[b];
	q->heap[b] = t;
	q->heap[a]->heap_at = a + 1;
	q->heap[b]->heap_at = b + 1;
}

static void heap_up(kvc_queue *q, size_t i)
{
	while (i > 0 && q->heap[(i - 1) / 2]->ready_at > q->heap[i]->ready_at) {
		heap_swap(q, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(kvc_queue *q, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < q->hlen && q->heap[l]->ready_at < q->heap[m]->ready_at)
			m = l;
		if (r < q->hlen && q->heap[r]->ready_at < q->heap[m]->ready_at)
			m = r;
		if (m == i)
			return;
		heap_swap(q, i, m);
		i = m;
	}
}

static item *heap_pop(kvc_queue *q)
{
	item *top = q->heap[0];
	heap_swap(q, 0, q->hlen - 1);
	q->hlen--;
	top->heap_at = 0;
	if (q->hlen)
		heap_down(q, 0);
	return top;
}

/* Make `it` ready now (client-go's Add). */
static int add_locked(kvc_queue *q, item *it, int64_t now)
{
	if (it->dirty)
		return 0;
	it->dirty = 1;
	it->added_at = now;
	q->st.adds++;
	if (it->processing)
		return 0; /* queued again by done() */
	int rc = fifo_push(q, it);
	if (rc < 0)
		it->dirty = 0;
	else
		pthread_cond_signal(&q->cv);
	return rc;
}

/* Move delayed items whose time came into the ready FIFO. */
static void promote(kvc_queue *q, int64_t now)
{
	while (q->hlen && q->heap[0]->ready_at <= now) {
		item *it = heap_pop(q);
		add_locked(q, it, now);
	}
}

int kvc_queue_add(kvc_queue *q, const char *key)
{
	return kvc_queue_add_after(q, key, 0);
}

int kvc_queue_add_after(kvc_queue *q, const char *key, int64_t delay_ns)
{
	int rc = 0;

	pthread_mutex_lock(&q->mu);
	if (q->shut) {
		pthread_mutex_unlock(&q->mu);
		return kvs_error_set(KVS_ECANCELED, "queue: shut down");
	}
	int64_t now = kvc_now(q->clk);
	item *it = lookup(q, key, 1, &rc);
	if (it && delay_ns <= 0) {
		rc = add_locked(q, it, now);
	} else if (it) {
		int64_t at = now + delay_ns;
		if (!it->heap_at) {
			if (q->hlen == q->hcap) {
				size_t nc = q->hcap ? q->hcap * 2 : 64;
				item **nh = realloc(q->heap, nc * sizeof(*nh));
				if (!nh) {
					rc = kvs_error_set(KVS_ENOMEM, "queue: out of memory");
					goto out;
				}
				q->heap = nh, q->hcap = nc;
			}
			it->ready_at = at;
			q->heap[q->hlen++] = it;
			it->heap_at = q->hlen;
			heap_up(q, q->hlen - 1);
		} else if (at < it->ready_at) {
			it->ready_at = at;
			heap_up(q, it->heap_at - 1);
		}
		pthread_cond_signal(&q->cv);
	}
out:
	if (it && rc < 0)
		maybe_drop(q, it);
	pthread_mutex_unlock(&q->mu);
	return rc;
}

int kvc_queue_add_rate_limited(kvc_queue *q, const char *key)
{
	int rc = 0;
	int64_t delay;

	pthread_mutex_lock(&q->mu);
	item *it = q->shut ? NULL : lookup(q, key, 1, &rc);
	if (!it) {
		pthread_mutex_unlock(&q->mu);
		return q->shut ? kvs_error_set(KVS_ECANCELED, "queue: shut down") : rc;
	}
	/* Per item: base * 2^failures, capped. */
	unsigned f = it->failures++;
	delay = q->o.max_delay_ns;
	if (f < 62 && (q->o.base_delay_ns <= (q->o.max_delay_ns >> f)))
		delay = q->o.base_delay_ns << f;
	/* Overall: a token bucket; a reservation when empty (rate.Limiter). */
	int64_t now = kvc_now(q->clk);
	q->tokens += (double)(now - q->refill_at) / 1e9 * q->o.qps;
	if (q->tokens > (double)q->o.burst)
		q->tokens = (double)q->o.burst;
	q->refill_at = now;
	q->tokens -= 1.0;
	if (q->tokens < 0) {
		int64_t wait = (int64_t)(-q->tokens / q->o.qps * 1e9);
		delay = wait > delay ? wait : delay;
	}
	q->st.retries++;
	pthread_mutex_unlock(&q->mu);
	return kvc_queue_add_after(q, key, delay);
}

void kvc_queue_forget(kvc_queue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	item *it = lookup(q, key, 0, NULL);
	if (it) {
		it->failures = 0;
		maybe_drop(q, it);
	}
	pthread_mutex_unlock(&q->mu);
}

unsigned kvc_queue_requeues(kvc_queue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	item *it = lookup(q, key, 0, NULL);
	unsigned n = it ? it->failures : 0;
	pthread_mutex_unlock(&q->mu);
	return n;
}

int kvc_queue_get(kvc_queue *q, const char **out, int64_t timeout_ns)
{
	struct timespec dl;
	int64_t until = 0;

	*out = NULL;
	if (timeout_ns > 0) {
		clock_gettime(CLOCK_MONOTONIC, &dl);
		until = (int64_t)dl.tv_sec * KVC_S + dl.tv_nsec + timeout_ns;
	}
	pthread_mutex_lock(&q->mu);
	for (;;) {
		int64_t now = kvc_now(q->clk);
		promote(q, now);
		if (q->flen) {
			item *it = q->fifo[q->fhead];
			q->fhead = (q->fhead + 1) % q->fcap;
			q->flen--;
			it->dirty = 0;
			it->processing = 1;
			int64_t lat = now - it->added_at;
			q->st.gets++;
			q->st.latency_sum_ns += lat;
			if (lat > q->st.latency_max_ns)
				q->st.latency_max_ns = lat;
			*out = it->key;
			pthread_mutex_unlock(&q->mu);
			return 0;
		}
		if (q->shut) {
			pthread_mutex_unlock(&q->mu);
			return KVS_ECANCELED;
		}
		if (timeout_ns == 0)
			break;
		/* Sleep until the timeout, or the first delayed item (real time). */
		struct timespec now_rt;
		clock_gettime(CLOCK_MONOTONIC, &now_rt);
		int64_t rt = (int64_t)now_rt.tv_sec * KVC_S + now_rt.tv_nsec;
		int64_t wake = timeout_ns > 0 ? until : rt + 3600 * KVC_S;
		if (q->hlen && rt + (q->heap[0]->ready_at - now) < wake)
			wake = rt + (q->heap[0]->ready_at - now);
		if (timeout_ns > 0 && rt >= until)
			break;
		dl.tv_sec = (time_t)(wake / KVC_S);
		dl.tv_nsec = (long)(wake % KVC_S);
		pthread_cond_timedwait(&q->cv, &q->mu, &dl);
	}
	pthread_mutex_unlock(&q->mu);
	return KVS_ETIMEOUT;
}

void kvc_queue_done(kvc_queue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	item *it = lookup(q, key, 0, NULL);
	if (it && it->processing) {
		it->processing = 0;
		if (it->dirty && fifo_push(q, it) == 0)
			pthread_cond_signal(&q->cv);
		else
			it->dirty = 0;
		if (!it->dirty)
			maybe_drop(q, it);
	}
	pthread_mutex_unlock(&q->mu);
}

void kvc_queue_shutdown(kvc_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->shut = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

void kvc_queue_kick(kvc_queue *q)
{
	pthread_mutex_lock(&q->mu);
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

void kvc_queue_stats_get(kvc_queue *q, kvc_queue_stats *out)
{
	pthread_mutex_lock(&q->mu);
	*out = q->st;
	out->depth = q->flen;
	out->waiting = q->hlen;
	out->processing = 0;
	for (size_t b = 0; b < q->nbuckets; b++)
		for (item *it = q->tab[b]; it; it = it->next)
			out->processing += (size_t)it->processing;
	pthread_mutex_unlock(&q->mu);
}
