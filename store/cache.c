/*
 * cache.c — LRU-by-bytes cache of verified segments, one mutex. Lookups are
 * a chained hash on the first 8 bytes of the (uniformly distributed)
 * segment address.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "kvsplit.h"

#define NBUCKETS 1024u

typedef struct node {
	kvs__segment *seg;
	struct node *prev, *next;   /* LRU list, head = most recent */
	struct node *hnext;         /* bucket chain */
} node;

struct kvs__cache {
	pthread_mutex_t mu;
	uint64_t cap, bytes;
	node *head, *tail;
	node *buckets[NBUCKETS];
	kvs__cache_stats st;
};

static size_t bucket(const uint8_t a[16])
{
	uint64_t h;

	memcpy(&h, a, sizeof(h));
	return (size_t)(h % NBUCKETS);
}

uint64_t kvs__cache_capacity(const kvs__cache *c)
{
	return c ? c->cap : 0;
}

int kvs__cache_new(kvs__cache **out, uint64_t cap)
{
	kvs__cache *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if (pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c);
		return kvs_error_set(KVS_ENOMEM, "cannot create cache mutex");
	}
	c->cap = cap;
	*out = c;
	return 0;
}

static void lru_unlink(kvs__cache *c, node *n)
{
	if (n->prev) n->prev->next = n->next; else c->head = n->next;
	if (n->next) n->next->prev = n->prev; else c->tail = n->prev;
	n->prev = n->next = NULL;
}

static void lru_push(kvs__cache *c, node *n)
{
	n->next = c->head;
	n->prev = NULL;
	if (c->head) c->head->prev = n;
	c->head = n;
	if (!c->tail) c->tail = n;
}

static node **find(kvs__cache *c, const uint8_t a[16])
{
	node **p = &c->buckets[bucket(a)];

	while (*p && memcmp((*p)->seg->addr, a, 16) != 0)
		p = &(*p)->hnext;
	return p;
}

/* Unlink from both lists and free; the segment reference is dropped. */
static void remove_node(kvs__cache *c, node **slot)
{
	node *n = *slot;

	*slot = n->hnext;
	lru_unlink(c, n);
	c->bytes -= n->seg->bytes;
	c->st.entries--;
	kvs__seg_unref(n->seg);
	free(n);
}

void kvs__cache_free(kvs__cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < NBUCKETS; i++)
		while (c->buckets[i])
			remove_node(c, &c->buckets[i]);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

kvs__segment *kvs__cache_get(kvs__cache *c, const uint8_t addr[16])
{
	kvs__segment *s = NULL;
	node **p;

	pthread_mutex_lock(&c->mu);
	p = find(c, addr);
	if (*p) {
		s = (*p)->seg;
		kvs__seg_ref(s);
		lru_unlink(c, *p);
		lru_push(c, *p);
		c->st.hits++;
	} else {
		c->st.misses++;
	}
	pthread_mutex_unlock(&c->mu);
	return s;
}

void kvs__cache_put(kvs__cache *c, kvs__segment *s)
{
	node **p, *n;

	if (!s->verified || s->bytes > c->cap)
		return;
	pthread_mutex_lock(&c->mu);
	p = find(c, s->addr);
	if (*p || !(n = calloc(1, sizeof(*n)))) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	kvs__seg_ref(s);
	n->seg = s;
	n->hnext = NULL;
	*p = n;
	lru_push(c, n);
	c->bytes += s->bytes;
	c->st.entries++;
	while (c->bytes > c->cap && c->tail) {
		node *victim = c->tail;
		c->st.evictions++;
		remove_node(c, find(c, victim->seg->addr));
	}
	pthread_mutex_unlock(&c->mu);
}

void kvs__cache_drop(kvs__cache *c, const uint8_t addr[16])
{
	node **p;

	pthread_mutex_lock(&c->mu);
	p = find(c, addr);
	if (*p)
		remove_node(c, p);
	pthread_mutex_unlock(&c->mu);
}

void kvs__cache_get_stats(kvs__cache *c, kvs__cache_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->st;
	out->bytes = c->bytes;
	pthread_mutex_unlock(&c->mu);
}
