/*
 * informer.c — a label-scoped informer (informer.h) on the reflector.
 *
 * The reflector keeps keys and versions only; the informer keeps its own
 * cache (a chained hash of key -> transformed object) under a lock so that
 * workers can read it while the informer's thread applies events. Only that
 * thread changes the cache, so it reads it without the lock.
 *
 * A shard-set change closes the reflector and opens one with the new
 * selector: entries of shards no longer held leave at once (LEFT); the new
 * listing refreshes the rest (silently when the version is unchanged) and
 * adds the new shards' objects; once it is complete, entries of held shards
 * it did not show were deleted meanwhile (confirmed like a watch DELETED).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "kube/reflector.h"
#include "controller/informer.h"

/* ------------------------------------------------------------------------ */
/* The Kubernetes client as a reflector source; items are inf_item.          */

typedef struct inf_item {
	char *key;
	char *rv;
	int shard;
	cJSON *obj;
} inf_item;

typedef struct smap_node {
	struct smap_node *next;
	uint64_t h;
	char *k;
	void *v;
} smap_node;

typedef struct smap {
	smap_node **b;
	size_t nb, n;
} smap;

typedef struct centry {
	char *key;
	char *rv;
	char *uid;
	int shard;
	cJSON *obj;
	char *idx[KVC_INFORMER_INDEX_MAX];
	uint64_t gen;
	size_t bytes;
} centry;

typedef struct ilist {
	centry **a;
	size_t n, cap;
} ilist;

typedef struct inf_index {
	char name[64];
	kvc_informer_index_fn fn;
	void *ctx;
	smap values; /* value -> ilist */
} inf_index;

struct kvc_informer {
	kvc_informer_opts o;
	char name[64];
	char ns[254];
	char *base;
	kvs_kube *kube;
	kvc_informer_handlers h;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	smap cache;              /* key -> centry */
	inf_index idx[KVC_INFORMER_INDEX_MAX];
	unsigned nidx;
	kvc_informer_stats st;

	/* shard set: wanted (set by any thread) and current (informer thread) */
	int pending;
	int64_t pending_at;
	kvc_shardset want, cur;
	int have_cur;
	uint64_t gen;

	kvs__reflector *r;
	int swept;               /* the post-rebuild sweep ran */
	int64_t next_resync;

	pthread_t th;
	int running, stop;
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static char *dupstr(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

static const char *str_of(const cJSON *o, const char *field)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
	return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

/* The vshard label of an object: its number if decimal and < v, else -1. */
static int label_shard(const cJSON *obj, unsigned v)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels");
	const char *s = str_of(labels, KVC_VSHARD_LABEL);
	unsigned n = 0;

	if (!s || !*s || strlen(s) > 5)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		n = n * 10 + (unsigned)(*p - '0');
	}
	return n < v ? (int)n : -1;
}

static void item_free(void *p)
{
	inf_item *it = p;
	free(it->key);
	free(it->rv);
	cJSON_Delete(it->obj);
	free(it);
}

static const char *item_key(const void *p)
{
	return ((const inf_item *)p)->key;
}

static const char *item_rv(const void *p)
{
	const char *rv = ((const inf_item *)p)->rv;
	return rv ? rv : "";
}

static const kvs__rf_item_ops item_ops = { item_key, item_rv, item_free };

/*
 * Wrap one object of the server (owned) as an item. Objects without a name
 * are dropped (*out NULL, 0): the reflector cannot key them.
 */
static int make_item(kvc_informer *inf, cJSON *obj, inf_item **out)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const char *name = str_of(md, "name"), *ns = str_of(md, "namespace");
	const char *rv = str_of(md, "resourceVersion");
	inf_item *it;

	*out = NULL;
	if (!name || !*name || strlen(name) > 253 || (ns && strlen(ns) > 253)) {
		cJSON_Delete(obj);
		return 0;
	}
	if (!(it = calloc(1, sizeof(*it))))
		goto oom;
	it->shard = label_shard(obj, inf->o.vshards);
	size_t kl = strlen(ns ? ns : inf->ns) + strlen(name) + 2;
	if (!(it->key = malloc(kl)) || !(it->rv = dupstr(rv ? rv : "")))
		goto oom;
	snprintf(it->key, kl, "%s/%s", ns ? ns : inf->ns, name);
	if (inf->o.transform) {
		cJSON *t = inf->o.transform(inf->o.transform_ctx, obj);
		obj = NULL;
		if (!t)
			goto oom;
		it->obj = t;
	} else {
		it->obj = obj;
	}
	*out = it;
	return 0;
oom:
	cJSON_Delete(obj);
	if (it)
		item_free(it);
	return kvs_error_set(KVS_ENOMEM, "%s: out of memory", inf->name);
}

static int src_list(void *src, kvs__rf_page *out, const char *selector, size_t limit,
                    const char *token)
{
	kvc_informer *inf = src;
	kvs_kube_list_options lo = KVS_KUBE_LIST_OPTIONS_INIT;
	kvs_kube_page *p = NULL;
	int rc;

	lo.label_selector = selector;
	lo.limit = limit;
	lo.continue_token = token;
	if ((rc = kvs_kube_list(&p, inf->kube, inf->o.resource, inf->ns, &lo, NULL)) < 0)
		return rc;
	memset(out, 0, sizeof(*out));
	if (p->count && !(out->items = calloc(p->count, sizeof(*out->items))))
		goto oom;
	cJSON *arr = (cJSON *)p->items, *it;
	while ((it = cJSON_DetachItemFromArray(arr, 0)) != NULL) {
		inf_item *item;
		if ((rc = make_item(inf, it, &item)) < 0)
			goto fail;
		if (item && out->count < p->count)
			out->items[out->count++] = item;
		else if (item)
			item_free(item);
	}
	if (p->continue_token && *p->continue_token && !(out->next = dupstr(p->continue_token)))
		goto oom;
	if (p->resource_version && *p->resource_version &&
	    !(out->rv = dupstr(p->resource_version)))
		goto oom;
	kvs_kube_page_free(p);
	return 0;
oom:
	rc = kvs_error_set(KVS_ENOMEM, "%s: out of memory", inf->name);
fail:
	for (size_t i = 0; i < out->count; i++)
		item_free(out->items[i]);
	free(out->items);
	free(out->next);
	free(out->rv);
	memset(out, 0, sizeof(*out));
	kvs_kube_page_free(p);
	return rc;
}

typedef struct inf_watch {
	kvc_informer *inf;
	kvs_kube_watch *w;
} inf_watch;

static int src_watch_open(void *src, void **out, const char *selector, const char *from_rv)
{
	kvc_informer *inf = src;
	kvs_kube_watch_options wo = KVS_KUBE_WATCH_OPTIONS_INIT;
	inf_watch *w = calloc(1, sizeof(*w));
	int rc;

	*out = NULL;
	if (!w)
		return kvs_error_set(KVS_ENOMEM, "%s: out of memory", inf->name);
	w->inf = inf;
	wo.label_selector = selector;
	wo.resource_version = from_rv;
	wo.allow_bookmarks = 1;
	if ((rc = kvs_kube_watch_open(&w->w, inf->kube, inf->o.resource, inf->ns, &wo, NULL)) < 0) {
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

static int src_watch_next(void *watch, kvs__rf_wevent *out, int timeout_ms)
{
	inf_watch *w = watch;
	kvs_kube_event ev = { KVS_KUBE_BOOKMARK, NULL, NULL };
	int rc = kvs_kube_watch_next(&ev, w->w, timeout_ms, NULL);

	if (rc < 0)
		return rc;
	out->item = NULL;
	out->rv[0] = '\0';
	switch (ev.type) {
	case KVS_KUBE_ADDED: out->type = KVS__RF_ADDED; break;
	case KVS_KUBE_MODIFIED: out->type = KVS__RF_MODIFIED; break;
	case KVS_KUBE_DELETED: out->type = KVS__RF_DELETED; break;
	case KVS_KUBE_BOOKMARK:
	default:
		out->type = KVS__RF_BOOKMARK;
		break;
	}
	if (out->type == KVS__RF_BOOKMARK) {
		if (ev.resource_version && strlen(ev.resource_version) < sizeof(out->rv))
			memcpy(out->rv, ev.resource_version, strlen(ev.resource_version) + 1);
		kvs_kube_event_clear(&ev);
		return 0;
	}
	cJSON *obj = ev.object;
	ev.object = NULL;
	kvs_kube_event_clear(&ev);
	inf_item *it;
	if ((rc = make_item(w->inf, obj, &it)) < 0)
		return rc;
	if (!it) {
		out->type = KVS__RF_BOOKMARK; /* unkeyable: skip it */
		return 0;
	}
	out->item = it;
	return 0;
}

static void src_watch_close(void *watch)
{
	inf_watch *w = watch;
	kvs_kube_watch_close(w->w);
	free(w);
}

static const kvs__rf_source_ops src_ops = {
	KVS__RF_SOURCE_OPS_VERSION, src_list, src_watch_open, src_watch_next, src_watch_close
};

/* ------------------------------------------------------------------------ */
/* String map                                                                */

static uint64_t hstr(const char *s)
{
	return XXH3_64bits(s, strlen(s));
}

static smap_node **smap_slot(const smap *m, const char *k, uint64_t h)
{
	if (!m->nb)
		return NULL;
	smap_node **pp = &m->b[h & (m->nb - 1)];
	while (*pp && ((*pp)->h != h || strcmp((*pp)->k, k) != 0))
		pp = &(*pp)->next;
	return pp;
}

static void *smap_get(const smap *m, const char *k)
{
	smap_node **pp = smap_slot(m, k, hstr(k));
	return pp && *pp ? (*pp)->v : NULL;
}

static int smap_grow(smap *m)
{
	size_t nb = m->nb ? m->nb * 2 : 64;
	smap_node **b = calloc(nb, sizeof(*b));
	if (!b)
		return KVS_ENOMEM;
	for (size_t i = 0; i < m->nb; i++)
		for (smap_node *x = m->b[i], *nx; x; x = nx) {
			nx = x->next;
			x->next = b[x->h & (nb - 1)];
			b[x->h & (nb - 1)] = x;
		}
	free(m->b);
	m->b = b, m->nb = nb;
	return 0;
}

/* Insert k -> v (k is borrowed: the node points at it, so it must live as long). */
static int smap_put(smap *m, char *k, void *v)
{
	uint64_t h = hstr(k);
	if (m->n >= m->nb && smap_grow(m) < 0)
		return KVS_ENOMEM;
	smap_node **pp = smap_slot(m, k, h);
	if (*pp) {
		(*pp)->v = v;
		(*pp)->k = k;
		return 0;
	}
	smap_node *x = malloc(sizeof(*x));
	if (!x)
		return KVS_ENOMEM;
	x->next = NULL, x->h = h, x->k = k, x->v = v;
	*pp = x;
	m->n++;
	return 0;
}

static void *smap_del(smap *m, const char *k)
{
	smap_node **pp = smap_slot(m, k, hstr(k));
	if (!pp || !*pp)
		return NULL;
	smap_node *x = *pp;
	void *v = x->v;
	*pp = x->next;
	free(x);
	m->n--;
	return v;
}

static void smap_free(smap *m, void (*fv)(void *))
{
	for (size_t i = 0; i < m->nb; i++)
		for (smap_node *x = m->b[i], *nx; x; x = nx) {
			nx = x->next;
			if (fv)
				fv(x->v);
			free(x);
		}
	free(m->b);
	memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------------ */
/* Cache and indexes (writers hold inf->mu)                                   */

static size_t tree_bytes(const cJSON *o)
{
	size_t n = 0;
	for (; o; o = o->next) {
		n += sizeof(cJSON);
		if (o->string)
			n += strlen(o->string) + 1;
		if (o->valuestring)
			n += strlen(o->valuestring) + 1;
		n += tree_bytes(o->child);
	}
	return n;
}

/* Index entries hold a copy of the value as the map key (the node borrows it). */
typedef struct ival {
	ilist l;
	char v[];
} ival;

static void ival_free(void *p)
{
	ival *iv = p;
	if (iv)
		free(iv->l.a);
	free(iv);
}

static void index_remove(kvc_informer *inf, centry *e)
{
	for (unsigned i = 0; i < inf->nidx; i++) {
		if (!e->idx[i])
			continue;
		ival *iv = smap_get(&inf->idx[i].values, e->idx[i]);
		if (iv) {
			for (size_t j = 0; j < iv->l.n; j++)
				if (iv->l.a[j] == e) {
					iv->l.a[j] = iv->l.a[--iv->l.n];
					break;
				}
			if (iv->l.n == 0) {
				smap_del(&inf->idx[i].values, iv->v);
				ival_free(iv);
			}
		}
		free(e->idx[i]);
		e->idx[i] = NULL;
	}
}

static int index_add(kvc_informer *inf, centry *e)
{
	char buf[KVC_INFORMER_INDEX_VALUE_MAX];
	for (unsigned i = 0; i < inf->nidx; i++) {
		if (!inf->idx[i].fn(inf->idx[i].ctx, e->obj, buf, sizeof(buf)))
			continue;
		buf[sizeof(buf) - 1] = '\0';
		ival *iv = smap_get(&inf->idx[i].values, buf);
		if (!iv) {
			size_t n = strlen(buf) + 1;
			if (!(iv = calloc(1, sizeof(*iv) + n)))
				return KVS_ENOMEM;
			memcpy(iv->v, buf, n);
			if (smap_put(&inf->idx[i].values, iv->v, iv) < 0) {
				free(iv);
				return KVS_ENOMEM;
			}
		}
		if (iv->l.n == iv->l.cap) {
			size_t nc = iv->l.cap ? iv->l.cap * 2 : 4;
			centry **na = realloc(iv->l.a, nc * sizeof(*na));
			if (!na)
				return KVS_ENOMEM;
			iv->l.a = na, iv->l.cap = nc;
		}
		if (!(e->idx[i] = dupstr(buf)))
			return KVS_ENOMEM;
		iv->l.a[iv->l.n++] = e;
	}
	return 0;
}

static void centry_free(void *p)
{
	centry *e = p;
	if (!e)
		return;
	for (unsigned i = 0; i < KVC_INFORMER_INDEX_MAX; i++)
		free(e->idx[i]);
	free(e->key);
	free(e->rv);
	free(e->uid);
	cJSON_Delete(e->obj);
	free(e);
}

static int entry_set(centry *e, inf_item *it)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(it->obj, "metadata");
	const char *uid = str_of(md, "uid");
	char *rv = dupstr(it->rv ? it->rv : "");
	if (!rv)
		return KVS_ENOMEM;
	free(e->rv);
	e->rv = rv;
	cJSON_Delete(e->obj);
	e->obj = it->obj, it->obj = NULL;
	e->shard = it->shard;
	free(e->uid);
	e->uid = uid ? dupstr(uid) : NULL;
	e->bytes = sizeof(*e) + strlen(e->key) + 1 + strlen(e->rv) + 1 +
	           (e->uid ? strlen(e->uid) + 1 : 0) + tree_bytes(e->obj) + sizeof(smap_node);
	return 0;
}

/* Remove an entry from the cache; the caller frees it after the handler. */
static void cache_remove(kvc_informer *inf, centry *e)
{
	pthread_mutex_lock(&inf->mu);
	index_remove(inf, e);
	smap_del(&inf->cache, e->key);
	inf->st.objects = inf->cache.n;
	inf->st.bytes -= e->bytes;
	pthread_mutex_unlock(&inf->mu);
}

static void notify(kvc_informer *inf, kvc_inf_event ev, const centry *e)
{
	switch (ev) {
	case KVC_INF_ADDED: inf->st.added++; break;
	case KVC_INF_UPDATED: inf->st.updated++; break;
	case KVC_INF_DELETED: inf->st.deleted++; break;
	case KVC_INF_LEFT: inf->st.left++; break;
	case KVC_INF_RESYNC:
	default:
		break;
	}
	inf->st.events++;
	if (inf->h.on_event)
		inf->h.on_event(inf->h.ctx, ev, e->key, e->shard, e->obj);
}

/* An object present on the server at a version: add or update it. */
static int on_present(kvc_informer *inf, inf_item *it)
{
	centry *e = smap_get(&inf->cache, it->key);
	int rc = 0;

	if (!it->obj)
		return 0; /* redelivered after we took it */
	if (e) {
		e->gen = inf->gen;
		if (strcmp(e->rv, it->rv) == 0)
			return 0; /* the relist after a rebuild shows what we have */
		pthread_mutex_lock(&inf->mu);
		index_remove(inf, e);
		inf->st.bytes -= e->bytes;
		rc = entry_set(e, it);
		inf->st.bytes += e->bytes;
		if (rc == 0)
			rc = index_add(inf, e);
		pthread_mutex_unlock(&inf->mu);
		notify(inf, KVC_INF_UPDATED, e);
		return rc < 0 ? kvs_error_set(rc, "%s: out of memory", inf->name) : 0;
	}
	if (inf->cache.n >= inf->o.max_items)
		return kvs_error_set(KVS_ETOOBIG, "%s: over %zu objects", inf->name, inf->o.max_items);
	if (!(e = calloc(1, sizeof(*e))) || !(e->key = dupstr(it->key))) {
		free(e);
		return kvs_error_set(KVS_ENOMEM, "%s: out of memory", inf->name);
	}
	e->gen = inf->gen;
	if (entry_set(e, it) < 0) {
		centry_free(e);
		return kvs_error_set(KVS_ENOMEM, "%s: out of memory", inf->name);
	}
	pthread_mutex_lock(&inf->mu);
	if ((rc = smap_put(&inf->cache, e->key, e)) == 0) {
		inf->st.objects = inf->cache.n;
		inf->st.bytes += e->bytes;
		rc = index_add(inf, e);
	}
	pthread_mutex_unlock(&inf->mu);
	if (rc < 0 && !smap_get(&inf->cache, e->key)) {
		centry_free(e);
		return kvs_error_set(KVS_ENOMEM, "%s: out of memory", inf->name);
	}
	notify(inf, KVC_INF_ADDED, e);
	return rc < 0 ? kvs_error_set(rc, "%s: out of memory", inf->name) : 0;
}

/*
 * An object left our watch: deleted, or still there with labels we no
 * longer select. A GET tells them apart (same uid still there: LEFT); when
 * the GET fails we say LEFT, the answer that makes no controller clean up
 * what may still exist.
 */
static kvc_inf_event classify_gone(kvc_informer *inf, const centry *e)
{
	if (inf->o.confirm_deletes < 0)
		return KVC_INF_DELETED;
	const char *slash = strchr(e->key, '/');
	cJSON *obj = NULL;
	kvs_kube_get_options go = KVS_KUBE_GET_OPTIONS_INIT;
	go.metadata_only = 1;
	int rc = kvs_kube_get(&obj, inf->kube, inf->o.resource, inf->ns, slash ? slash + 1 : e->key,
	                      &go, NULL);
	kvc_inf_event ev = KVC_INF_LEFT;
	if (rc == KVS_ENOTFOUND) {
		ev = KVC_INF_DELETED;
	} else if (rc == 0) {
		const char *uid = str_of(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "uid");
		if (e->uid && uid && strcmp(uid, e->uid) != 0)
			ev = KVC_INF_DELETED; /* deleted and created again */
	}
	cJSON_Delete(obj);
	return ev;
}

static void on_gone(kvc_informer *inf, const char *key)
{
	centry *e = smap_get(&inf->cache, key);
	if (!e)
		return;
	kvc_inf_event ev = classify_gone(inf, e);
	cache_remove(inf, e);
	notify(inf, ev, e);
	centry_free(e);
}

static int selected(const kvc_informer *inf, int shard)
{
	if (inf->o.unsharded)
		return shard < 0;
	return shard >= 0 && kvc_set_has(&inf->cur, (unsigned)shard);
}

/* After a rebuild's listing: held-shard entries it did not show are gone. */
static void sweep(kvc_informer *inf)
{
	char **keys = NULL;
	size_t n = 0, cap = 0;
	for (size_t i = 0; i < inf->cache.nb; i++)
		for (smap_node *x = inf->cache.b[i]; x; x = x->next) {
			centry *e = x->v;
			if (e->gen == inf->gen)
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 16;
				char **nk = realloc(keys, nc * sizeof(*nk));
				if (!nk)
					goto out;
				keys = nk, cap = nc;
			}
			if (!(keys[n] = dupstr(e->key)))
				goto out;
			n++;
		}
	for (size_t i = 0; i < n; i++)
		on_gone(inf, keys[i]);
out:
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	inf->swept = 1;
}

/* Entries whose shard is no longer selected leave at once. */
static void drop_unselected(kvc_informer *inf)
{
	for (size_t i = 0; i < inf->cache.nb; i++) {
		smap_node *x = inf->cache.b[i];
		while (x) {
			centry *e = x->v;
			x = x->next;
			if (selected(inf, e->shard))
				continue;
			cache_remove(inf, e);
			notify(inf, KVC_INF_LEFT, e);
			centry_free(e);
		}
	}
}

int kvc_informer_selector(char *buf, size_t cap, const char *base, const kvc_shardset *held,
                          unsigned v, int unsharded)
{
	char *sh = NULL;
	int n;

	if (cap == 0)
		return kvs_error_set(KVS_ETOOBIG, "selector: no room");
	buf[0] = '\0';
	if (base && !*base)
		base = NULL;
	if (unsharded) {
		n = snprintf(buf, cap, "%s%s!%s", base ? base : "", base ? "," : "", KVC_VSHARD_LABEL);
	} else {
		if (!(sh = malloc(KVC_SHARDSET_TEXT_MAX)))
			return kvs_error_set(KVS_ENOMEM, "selector: out of memory");
		n = kvc_set_selector(sh, KVC_SHARDSET_TEXT_MAX, held, v);
		if (n > 0)
			n = snprintf(buf, cap, "%s%s%s", base ? base : "", base ? "," : "", sh);
		free(sh);
		if (n <= 0) {
			buf[0] = '\0';
			return n;
		}
	}
	if ((size_t)n >= cap) {
		buf[0] = '\0';
		return kvs_error_set(KVS_ETOOBIG, "selector: over %zu bytes", cap);
	}
	return n;
}

static int rebuild(kvc_informer *inf, const kvc_shardset *want)
{
	char *sel = malloc(KVC_SHARDSET_TEXT_MAX + 1024);
	int rc;

	if (!sel)
		return kvs_error_set(KVS_ENOMEM, "%s: out of memory", inf->name);
	kvs__reflector_close(inf->r);
	inf->r = NULL;
	inf->cur = *want;
	inf->have_cur = 1;
	inf->gen++;
	inf->st.rebuilds++;
	drop_unselected(inf);
	rc = kvc_informer_selector(sel, KVC_SHARDSET_TEXT_MAX + 1024, inf->base, want,
	                           inf->o.vshards, inf->o.unsharded);
	if (rc <= 0) {
		free(sel);
		inf->swept = 1;
		pthread_mutex_lock(&inf->mu);
		inf->st.synced = rc == 0;
		pthread_mutex_unlock(&inf->mu);
		return rc;
	}
	kvs__reflector_options ro = KVS__REFLECTOR_OPTIONS_INIT;
	ro.name = inf->name;
	ro.selector = sel;
	ro.page_limit = inf->o.page_limit;
	ro.max_items = inf->o.max_items;
	pthread_mutex_lock(&inf->mu);
	inf->st.synced = 0;
	pthread_mutex_unlock(&inf->mu);
	rc = kvs__reflector_open(&inf->r, &src_ops, inf, &item_ops, &ro);
	free(sel);
	inf->swept = 0;
	return rc;
}

/* ------------------------------------------------------------------------ */
/* API                                                                        */

int kvc_informer_new(kvc_informer **out, kvs_kube *kube, const kvc_informer_opts *opts,
                     const kvc_informer_handlers *h)
{
	kvc_informer *inf;
	const char *ns;

	*out = NULL;
	if (!kube || !opts || !opts->resource)
		return kvs_error_set(KVS_EINVAL, "informer: client and resource are required");
	ns = opts->ns ? opts->ns : kvs_kube_namespace(kube);
	if (!ns || strlen(ns) >= sizeof(inf->ns) ||
	    (opts->vshards && opts->vshards > KVC_VSHARDS_MAX))
		return kvs_error_set(KVS_EINVAL, "informer: bad namespace or V");
	if (!(inf = calloc(1, sizeof(*inf))))
		return kvs_error_set(KVS_ENOMEM, "informer: out of memory");
	inf->o = *opts;
	snprintf(inf->name, sizeof(inf->name), "%s", opts->name ? opts->name : "informer");
	inf->o.name = inf->name;
	memcpy(inf->ns, ns, strlen(ns) + 1);
	inf->o.ns = inf->ns;
	if (opts->base_selector && !(inf->base = dupstr(opts->base_selector))) {
		free(inf);
		return kvs_error_set(KVS_ENOMEM, "informer: out of memory");
	}
	inf->o.base_selector = inf->base;
	if (!inf->o.vshards)
		inf->o.vshards = KVC_VSHARDS_DEFAULT;
	if (!inf->o.page_limit)
		inf->o.page_limit = 500;
	if (!inf->o.confirm_deletes)
		inf->o.confirm_deletes = 1;
	if (inf->o.rebuild_delay_ns <= 0)
		inf->o.rebuild_delay_ns = 100 * 1000000ll;
	if (!inf->o.max_items)
		inf->o.max_items = (size_t)1 << 22;
	inf->kube = kube;
	if (h)
		inf->h = *h;
	pthread_mutex_init(&inf->mu, NULL);
	pthread_cond_init(&inf->cv, NULL);
	if (inf->o.unsharded) {
		inf->pending = 1; /* the stamper's view needs no shard set */
		inf->pending_at = 0;
	}
	*out = inf;
	return 0;
}

void kvc_informer_free(kvc_informer *inf)
{
	if (!inf)
		return;
	kvc_informer_stop(inf);
	kvs__reflector_close(inf->r);
	for (unsigned i = 0; i < inf->nidx; i++)
		smap_free(&inf->idx[i].values, ival_free);
	smap_free(&inf->cache, centry_free);
	pthread_cond_destroy(&inf->cv);
	pthread_mutex_destroy(&inf->mu);
	free(inf->base);
	free(inf);
}

int kvc_informer_add_index(kvc_informer *inf, const char *name, kvc_informer_index_fn fn,
                           void *ctx)
{
	if (!name || !fn || strlen(name) >= sizeof(inf->idx[0].name) || inf->running ||
	    inf->cache.n)
		return kvs_error_set(KVS_EINVAL, "%s: index needs a name and a function, before start",
		                     inf->name);
	if (inf->nidx == KVC_INFORMER_INDEX_MAX)
		return kvs_error_set(KVS_ETOOBIG, "%s: at most %d indexes", inf->name,
		                     KVC_INFORMER_INDEX_MAX);
	inf_index *x = &inf->idx[inf->nidx++];
	snprintf(x->name, sizeof(x->name), "%s", name);
	x->fn = fn;
	x->ctx = ctx;
	return 0;
}

void kvc_informer_set_shards(kvc_informer *inf, const kvc_shardset *held)
{
	pthread_mutex_lock(&inf->mu);
	if (!inf->pending && inf->have_cur && kvc_set_equal(&inf->cur, held)) {
		pthread_mutex_unlock(&inf->mu);
		return;
	}
	if (!inf->pending)
		inf->pending_at = mono_ns() + inf->o.rebuild_delay_ns;
	inf->want = *held;
	inf->pending = 1;
	pthread_cond_broadcast(&inf->cv);
	pthread_mutex_unlock(&inf->mu);
}

static void resync(kvc_informer *inf, int64_t now)
{
	if (inf->o.resync_ns <= 0)
		return;
	if (!inf->next_resync)
		inf->next_resync = now + inf->o.resync_ns;
	if (now < inf->next_resync)
		return;
	inf->next_resync = now + inf->o.resync_ns;
	for (size_t i = 0; i < inf->cache.nb; i++)
		for (smap_node *x = inf->cache.b[i]; x; x = x->next)
			notify(inf, KVC_INF_RESYNC, x->v);
}

int kvc_informer_step(kvc_informer *inf, int timeout_ms)
{
	int64_t now = mono_ns(), deadline = now + (int64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000;
	kvc_shardset want;
	int apply = 0, rc = 0;

	pthread_mutex_lock(&inf->mu);
	if (inf->pending && now >= inf->pending_at) {
		want = inf->want;
		inf->pending = 0;
		apply = 1;
	} else if (inf->pending && inf->pending_at < deadline) {
		deadline = inf->pending_at;
	}
	pthread_mutex_unlock(&inf->mu);
	if (apply && (rc = rebuild(inf, &want)) < 0) {
		/* Try again shortly with the latest set. */
		pthread_mutex_lock(&inf->mu);
		if (!inf->pending) {
			inf->want = want;
			inf->pending = 1;
		}
		inf->pending_at = mono_ns() + 5 * inf->o.rebuild_delay_ns;
		inf->st.errors++;
		pthread_mutex_unlock(&inf->mu);
		return rc;
	}
	if (!inf->r) {
		pthread_mutex_lock(&inf->mu);
		if (!inf->pending && !inf->stop && deadline > now) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + (deadline - now);
			ts.tv_sec = t / 1000000000, ts.tv_nsec = t % 1000000000;
			pthread_cond_timedwait(&inf->cv, &inf->mu, &ts);
		}
		pthread_mutex_unlock(&inf->mu);
		resync(inf, mono_ns());
		return 0;
	}
	int wait_ms = (int)((deadline - now) / 1000000);
	kvs__rf_event ev;
	rc = kvs__reflector_next(&ev, inf->r, wait_ms < 0 ? 0 : wait_ms);
	if (rc == 0) {
		if (ev.type == KVS__RF_DELETED)
			on_gone(inf, ev.key);
		else if (ev.item && (rc = on_present(inf, ev.item)) < 0)
			kvs__reflector_redeliver(inf->r, rc);
	} else if (rc == KVS_ETIMEOUT) {
		rc = 0;
	}
	if (rc < 0) {
		pthread_mutex_lock(&inf->mu);
		inf->st.errors++;
		pthread_mutex_unlock(&inf->mu);
	}
	if (!inf->swept && kvs__reflector_synced(inf->r)) {
		sweep(inf);
		pthread_mutex_lock(&inf->mu);
		inf->st.synced = 1;
		pthread_mutex_unlock(&inf->mu);
	}
	resync(inf, mono_ns());
	return rc;
}

static void *run(void *arg)
{
	kvc_informer *inf = arg;
	for (;;) {
		pthread_mutex_lock(&inf->mu);
		int stop = inf->stop;
		pthread_mutex_unlock(&inf->mu);
		if (stop)
			break;
		if (kvc_informer_step(inf, 200) < 0) {
			struct timespec ts = { 0, 50 * 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

int kvc_informer_start(kvc_informer *inf)
{
	if (inf->running)
		return kvs_error_set(KVS_EINVAL, "%s: already started", inf->name);
	inf->stop = 0;
	if (pthread_create(&inf->th, NULL, run, inf) != 0)
		return kvs_error_set(KVS_ENOMEM, "%s: cannot start its thread", inf->name);
	inf->running = 1;
	return 0;
}

void kvc_informer_stop(kvc_informer *inf)
{
	if (!inf || !inf->running)
		return;
	pthread_mutex_lock(&inf->mu);
	inf->stop = 1;
	pthread_cond_broadcast(&inf->cv);
	pthread_mutex_unlock(&inf->mu);
	pthread_join(inf->th, NULL);
	inf->running = 0;
}

int kvc_informer_get(kvc_informer *inf, const char *key, cJSON **out, int *shard)
{
	int found = 0;
	if (out)
		*out = NULL;
	pthread_mutex_lock(&inf->mu);
	centry *e = smap_get(&inf->cache, key);
	if (e) {
		found = 1;
		if (shard)
			*shard = e->shard;
		if (out && !(*out = cJSON_Duplicate(e->obj, 1)))
			found = kvs_error_set(KVS_ENOMEM, "%s: out of memory", inf->name);
	}
	pthread_mutex_unlock(&inf->mu);
	return found;
}

void kvc_informer_keys_free(char **keys, size_t n)
{
	for (size_t i = 0; keys && i < n; i++)
		free(keys[i]);
	free(keys);
}

static int copy_keys(kvc_informer *inf, centry *const *a, size_t n, smap *all, char ***keys,
                     size_t *nout)
{
	size_t total = all ? all->n : n, k = 0;
	char **v = calloc(total ? total : 1, sizeof(*v));
	if (!v)
		return kvs_error_set(KVS_ENOMEM, "%s: out of memory", inf->name);
	if (all) {
		for (size_t i = 0; i < all->nb; i++)
			for (smap_node *x = all->b[i]; x; x = x->next)
				if (!(v[k++] = dupstr(x->k)))
					goto oom;
	} else {
		for (size_t i = 0; i < n; i++)
			if (!(v[k++] = dupstr(a[i]->key)))
				goto oom;
	}
	*keys = v, *nout = k;
	return 0;
oom:
	kvc_informer_keys_free(v, k);
	return kvs_error_set(KVS_ENOMEM, "%s: out of memory", inf->name);
}

int kvc_informer_by_index(kvc_informer *inf, const char *name, const char *value, char ***keys,
                          size_t *n)
{
	int rc = kvs_error_set(KVS_EINVAL, "%s: no index %s", inf->name, name);
	*keys = NULL, *n = 0;
	pthread_mutex_lock(&inf->mu);
	for (unsigned i = 0; i < inf->nidx; i++) {
		if (strcmp(inf->idx[i].name, name) != 0)
			continue;
		ival *iv = smap_get(&inf->idx[i].values, value);
		rc = copy_keys(inf, iv ? iv->l.a : NULL, iv ? iv->l.n : 0, NULL, keys, n);
		break;
	}
	pthread_mutex_unlock(&inf->mu);
	return rc;
}

int kvc_informer_keys(kvc_informer *inf, char ***keys, size_t *n)
{
	pthread_mutex_lock(&inf->mu);
	int rc = copy_keys(inf, NULL, 0, &inf->cache, keys, n);
	pthread_mutex_unlock(&inf->mu);
	return rc;
}

void kvc_informer_stats_get(kvc_informer *inf, kvc_informer_stats *out)
{
	pthread_mutex_lock(&inf->mu);
	*out = inf->st;
	pthread_mutex_unlock(&inf->mu);
}

cJSON *kvc_informer_metadata(void *ctx, cJSON *obj)
{
	cJSON *t = cJSON_CreateObject();
	if (!t) {
		cJSON_Delete(obj);
		return NULL;
	}
	static const char *const keep[] = { "apiVersion", "kind", "metadata" };
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(obj, keep[i]);
		if (v)
			cJSON_AddItemToObject(t, keep[i], v);
	}
	cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "metadata"),
	                                        "managedFields");
	cJSON_Delete(obj);
	return t;
}

int kvc_vshard_stamp(kvs_kube *kube, const kvs_kube_resource *res, const char *ns,
                     const cJSON *obj, unsigned v)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const char *name = str_of(md, "name"), *uid = str_of(md, "uid");
	const char *rv = str_of(md, "resourceVersion");
	char num[16];
	int rc;

	if (!name || !uid || !rv || !v || v > KVC_VSHARDS_MAX)
		return kvs_error_set(KVS_EINVAL, "stamp: object without name, uid or resourceVersion");
	if (str_of(cJSON_GetObjectItemCaseSensitive(md, "labels"), KVC_VSHARD_LABEL))
		return 0;
	snprintf(num, sizeof(num), "%u", kvc_vshard_of(uid, v));
	cJSON *p = cJSON_CreateObject(), *pm = cJSON_AddObjectToObject(p, "metadata");
	cJSON *pl = pm ? cJSON_AddObjectToObject(pm, "labels") : NULL;
	if (!pl || !cJSON_AddStringToObject(pm, "resourceVersion", rv) ||
	    !cJSON_AddStringToObject(pl, KVC_VSHARD_LABEL, num)) {
		cJSON_Delete(p);
		return kvs_error_set(KVS_ENOMEM, "stamp: out of memory");
	}
	rc = kvs_kube_patch(NULL, kube, res, ns, name, KVS_KUBE_PATCH_MERGE, p, NULL, NULL);
	cJSON_Delete(p);
	return rc == KVS_ECONFLICT ? 0 : rc;
}
