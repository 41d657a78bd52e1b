/* The object store: one global revision counter (etcd's), a sorted index per
 * resource, and a bounded ring of every write event, which serves watches,
 * 410 decisions and consistent paginated lists. One mutex guards it all;
 * object versions are immutable and reference-counted so that readers
 * serialize and write to sockets without holding the lock. */
#include "kapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store g_store;

void objver_ref(struct objver *o)
{
	__atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
}

void objver_unref(struct objver *o)
{
	if (!o || __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	cJSON_Delete(o->obj);
	free(o->json);
	free(o->pb);
	free(o->ns);
	free(o->name);
	free(o->key);
	pthread_mutex_destroy(&o->pb_lock);
	free(o);
}

char *obj_key(const struct resource *r, const char *ns, const char *name)
{
	return r->namespaced ? xasprintf("%s/%s", ns, name) : xstrdup(name);
}

static void set_rv(cJSON *obj, uint64_t rv)
{
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	char s[24];
	snprintf(s, sizeof s, "%llu", (unsigned long long)rv);
	cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
	if (cJSON_IsString(v))
		cJSON_SetValuestring(v, s);
	else {
		cJSON_DeleteItemFromObjectCaseSensitive(meta, "resourceVersion");
		cJSON_AddStringToObject(meta, "resourceVersion", s);
	}
}

struct objver *objver_new(struct resource *r, cJSON *obj, uint64_t rv)
{
	struct objver *o = xmalloc(sizeof *o);
	o->refs = 1;
	o->rv = rv;
	o->res = r;
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "namespace"));
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "name"));
	o->ns = xstrdup(r->namespaced && ns ? ns : "");
	o->name = xstrdup(name ? name : "");
	o->key = obj_key(r, o->ns, o->name);
	o->obj = obj;
	o->json = json_print(obj, &o->len);
	o->pb = NULL;
	o->pb_len = 0;
	o->pb_obj.p = NULL;
	o->pb_obj.n = 0;
	pthread_mutex_init(&o->pb_lock, NULL);
	o->pb_done = 0;
	char *pre = xasprintf("{\"kind\":\"%s\",\"apiVersion\":\"%s\",", r->kind, r->api_version);
	size_t pl = strlen(pre);
	o->hdr = o->len > pl && memcmp(o->json, pre, pl) == 0 ? pl : 0;
	free(pre);
	return o;
}

void store_init(size_t history, size_t history_bytes)
{
	pthread_mutex_init(&g_store.lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g_store.changed, &ca);
	pthread_condattr_destroy(&ca);
	g_store.ring_cap = history ? history : 1;
	g_store.ring = xmalloc(g_store.ring_cap * sizeof *g_store.ring);
	g_store.ring_max_bytes = history_bytes;
}

static char *lower(const char *s)
{
	char *r = xstrdup(s);
	for (char *p = r; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return r;
}

struct resource *resource_add(enum res_type type, const char *group, const char *version,
                              const char *plural, const char *kind)
{
	struct resource *r = xmalloc(sizeof *r);
	memset(r, 0, sizeof *r);
	r->type = type;
	r->group = xstrdup(group);
	r->version = xstrdup(version);
	r->plural = xstrdup(plural);
	r->singular = lower(kind);
	r->kind = xstrdup(kind);
	r->api_version = *group ? xasprintf("%s/%s", group, version) : xstrdup(version);
	r->qualified = *group ? xasprintf("%s.%s", plural, group) : xstrdup(plural);
	r->qkind = *group ? xasprintf("%s.%s", kind, group) : xstrdup(kind);
	r->namespaced = type != RES_NAMESPACE;
	r->typed = type != RES_CUSTOM;
	r->readonly = false;
	r->status_sub = type == RES_POD;
	/* leaseStrategy.AllowCreateOnUpdate is true; configmaps' and CRs' false */
	r->allow_create_on_update = type == RES_LEASE;
	r->allow_unconditional_update = type != RES_CUSTOM;
	if (type == RES_CONFIGMAP)
		r->short_name = xstrdup("cm");
	else if (type == RES_NAMESPACE)
		r->short_name = xstrdup("ns");
	else if (type == RES_POD)
		r->short_name = xstrdup("po");
	else if (type == RES_EVENT)
		r->short_name = xstrdup("ev");
	if (!g_store.res)
		g_store.res = xmalloc(KAPI_MAX_RESOURCES * sizeof *g_store.res);
	if (g_store.nres == KAPI_MAX_RESOURCES) {
		fprintf(stderr, "kapi-server: more than %d resources\n", KAPI_MAX_RESOURCES);
		abort();
	}
	g_store.res[g_store.nres] = r;
	__atomic_store_n(&g_store.nres, g_store.nres + 1, __ATOMIC_RELEASE);
	return r;
}

size_t resource_count(void)
{
	return __atomic_load_n(&g_store.nres, __ATOMIC_ACQUIRE);
}

bool resource_served(const struct resource *r)
{
	return !__atomic_load_n(&r->removed, __ATOMIC_ACQUIRE);
}

struct resource *resource_find_any(const char *group, const char *version, const char *plural)
{
	size_t n = resource_count();
	for (size_t i = 0; i < n; i++) {
		struct resource *r = g_store.res[i];
		if (strcmp(r->group, group) == 0 && strcmp(r->version, version) == 0 &&
		    strcmp(r->plural, plural) == 0)
			return r;
	}
	return NULL;
}

struct resource *resource_find(const char *group, const char *version, const char *plural)
{
	struct resource *r = resource_find_any(group, version, plural);
	return r && resource_served(r) ? r : NULL;
}

/* First index whose key is >= key (or > key when strict). */
static size_t lower_bound(const struct resource *r, const char *key, bool strict)
{
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->items[mid]->key, key);
		if (c < 0 || (strict && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct objver *store_get_locked(struct resource *r, const char *ns, const char *name)
{
	char *key = obj_key(r, ns, name);
	size_t i = lower_bound(r, key, false);
	struct objver *o = i < r->n && strcmp(r->items[i]->key, key) == 0 ? r->items[i] : NULL;
	free(key);
	return o;
}

struct objver *store_get_key_locked(struct resource *r, const char *key)
{
	size_t i = lower_bound(r, key, false);
	return i < r->n && strcmp(r->items[i]->key, key) == 0 ? r->items[i] : NULL;
}

/* Every write keeps the GC's dependency index and the count of Foreground
 * deletions waiting (finalize.c reads both instead of scanning). */
static void track(struct resource *r, const char *key, const cJSON *oldo, const cJSON *newo)
{
	owners_update_locked(r, key, oldo, newo);
	if (oldo && obj_fg_pending(oldo))
		g_store.fg_pending--;
	if (newo && obj_fg_pending(newo))
		g_store.fg_pending++;
}

/* What an event keeps alive: the JSON texts, then (objver_pb adds it) the
 * protobuf form of a ConfigMap once made (decoded binaryData: about 3/4 of
 * the JSON again). Each event remembers what it added (e->bytes), so that
 * its eviction takes away exactly that, whenever the form was made. */
static size_t ev_bytes(const struct event *e)
{
	return (e->cur ? e->cur->len : 0) + (e->gone ? e->gone->len : 0);
}

static void evict_oldest(void)
{
	struct event *e = &g_store.ring[g_store.ring_head];
	g_store.ring_bytes -= e->bytes;
	objver_unref(e->cur);
	objver_unref(e->prev);
	objver_unref(e->gone);
	g_store.ring_head = (g_store.ring_head + 1) % g_store.ring_cap;
	g_store.ring_n--;
	g_store.ring_floor++;
	if (g_store.compacted_rv < g_store.ring_floor)
		g_store.compacted_rv = g_store.ring_floor;
}

static void trim_ring(void)
{
	while (g_store.ring_n > 1 && g_store.ring_bytes > g_store.ring_max_bytes)
		evict_oldest();
}

static void push_event(enum ev_type t, struct resource *r, struct objver *cur, struct objver *prev,
                       struct objver *gone)
{
	if (g_store.ring_n == g_store.ring_cap)
		evict_oldest();
	struct event *e = &g_store.ring[(g_store.ring_head + g_store.ring_n) % g_store.ring_cap];
	e->type = t;
	e->rv = g_store.rv;
	e->res = r;
	e->cur = cur;
	e->prev = prev;
	e->gone = gone;
	e->ms = mono_ms();
	if (cur)
		objver_ref(cur);
	if (prev)
		objver_ref(prev);
	g_store.ring_n++;
	e->bytes = ev_bytes(e);
	g_store.ring_bytes += e->bytes;
	trim_ring();
	pthread_cond_broadcast(&g_store.changed);
}

/*
 * The protobuf form is made lazily: a version written as JSON and never
 * read as protobuf costs no base64 decode (the put path of a JSON client
 * pays nothing for protobuf readers it may not have). Once per version,
 * under a mutex of the version's own rather than the store lock: the
 * decode of ~1.4 MB of base64 takes a millisecond or two, which would
 * stall every other request if it held the one store lock; two readers of
 * the same version wait for one build, readers of others do not wait at
 * all. The store lock is taken after, briefly, to count the bytes in the
 * history: on the event whose cur this version is, if it is still in the
 * ring (e->bytes grows with it, and its eviction takes both away), else
 * nowhere, as the index's own versions are not counted either.
 */
bool objver_pb(struct objver *o)
{
	return objver_pb_from(o, NULL);
}

bool objver_pb_from(struct objver *o, const struct pb_body *src)
{
	if (__atomic_load_n(&o->pb_done, __ATOMIC_ACQUIRE))
		return o->pb != NULL;
	pthread_mutex_lock(&o->pb_lock);
	if (!o->pb_done) {
		if (o->res->type == RES_CONFIGMAP)
			o->pb = proto_configmap(o->obj, &o->pb_len, &o->pb_obj, src);
		if (!o->pb)
			o->pb_len = 0;
		pthread_mutex_lock(&g_store.lock);
		g_store.pb_built += o->pb != NULL;
		struct event *e = o->rv ? store_event_locked(o->rv) : NULL;
		if (o->pb && e && e->cur == o) {
			e->bytes += o->pb_len;
			g_store.ring_bytes += o->pb_len;
			trim_ring();
		}
		pthread_mutex_unlock(&g_store.lock);
		__atomic_store_n(&o->pb_done, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&o->pb_lock);
	return o->pb != NULL;
}

struct event *store_event_locked(uint64_t rv)
{
	if (rv <= g_store.ring_floor || rv > g_store.rv)
		return NULL;
	size_t off = (size_t)(rv - g_store.ring_floor - 1);
	return &g_store.ring[(g_store.ring_head + off) % g_store.ring_cap];
}

/* etcd's compaction: the history stays in the watch caches (the ring), so
 * watches from recent revisions go on; lists at older revisions are 410. */
void store_compact_locked(void)
{
	g_store.compacted_rv = g_store.rv;
	pthread_cond_broadcast(&g_store.changed);
}

void store_drop_watch_cache_locked(void)
{
	g_store.wc_reset_rv = g_store.rv;
	pthread_cond_broadcast(&g_store.changed);
}

uint64_t store_watch_floor_locked(const struct resource *r)
{
	uint64_t floor = g_store.ring_floor > g_store.wc_reset_rv ? g_store.ring_floor : g_store.wc_reset_rv;
	uint64_t now = mono_ms(), oldest = 0;
	size_t kept = 0;
	for (uint64_t rv = g_store.rv; rv > floor; rv--) {
		const struct event *e = store_event_locked(rv);
		if (e->res != r)
			continue;
		if (kept >= g_cfg.wc_size && now - e->ms >= g_cfg.wc_ms)
			return oldest ? oldest - 1 : rv; /* e left the cache */
		kept++;
		oldest = rv;
	}
	return floor;
}

/* The previous content stamped with the revision of the event that removed it
 * from a watcher's view (the cacher's DELETED object). */
static struct objver *gone_copy(struct objver *prev, uint64_t rv)
{
	cJSON *c = cJSON_Duplicate(prev->obj, 1);
	set_rv(c, rv);
	return objver_new(prev->res, c, rv);
}

struct objver *store_put_locked(struct resource *r, cJSON *obj, struct objver *prev)
{
	uint64_t rv = ++g_store.rv;
	set_rv(obj, rv);
	normalize_object(r, obj);
	struct objver *o = objver_new(r, obj, rv);
	struct objver *gone = NULL;
	track(r, o->key, prev ? prev->obj : NULL, o->obj);
	if (prev) {
		size_t i = lower_bound(r, prev->key, false);
		r->items[i] = o; /* the index reference moves to the event below */
		const cJSON *ol = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(prev->obj, "metadata"), "labels");
		const cJSON *nl = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "labels");
		if (!(ol == NULL && nl == NULL) && !(ol && nl && cJSON_Compare(ol, nl, 1)))
			gone = gone_copy(prev, rv);
		push_event(EV_MODIFIED, r, o, prev, gone);
		objver_unref(prev);
	} else {
		size_t i = lower_bound(r, o->key, false);
		if (r->n == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 64;
			r->items = xrealloc(r->items, r->cap * sizeof *r->items);
		}
		memmove(r->items + i + 1, r->items + i, (r->n - i) * sizeof *r->items);
		r->items[i] = o;
		r->n++;
		push_event(EV_ADDED, r, o, NULL, NULL);
	}
	return o;
}

void store_delete_locked(struct objver *prev)
{
	struct resource *r = prev->res;
	uint64_t rv = ++g_store.rv;
	track(r, prev->key, prev->obj, NULL);
	size_t i = lower_bound(r, prev->key, false);
	memmove(r->items + i, r->items + i + 1, (r->n - i - 1) * sizeof *r->items);
	r->n--;
	push_event(EV_DELETED, r, NULL, prev, gone_copy(prev, rv));
	objver_unref(prev);
}

struct touched {
	const char *key;
	uint64_t rv;
	struct objver *then; /* state at the list revision; NULL if absent then */
};

static int cmp_touched(const void *a, const void *b)
{
	const struct touched *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c)
		return c;
	return x->rv < y->rv ? -1 : x->rv > y->rv;
}

static const char *json_label(void *ctx, const char *key)
{
	const cJSON *l = cJSON_GetObjectItemCaseSensitive((const cJSON *)ctx, key);

	return cJSON_IsString(l) ? l->valuestring : NULL;
}

bool labels_match(const kvs__selector *s, const cJSON *labels)
{
	return kvs__selector_match(s, json_label, (void *)labels);
}

static bool passes(const struct objver *o, const kvs__selector *ls, const kvs__selector *fs)
{
	if (!kvs__field_selector_match(fs, o->ns, o->name))
		return false;
	if (kvs__selector_empty(ls))
		return true;
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(o->obj, "metadata"), "labels");
	return labels_match(ls, labels);
}

/* The state at at_rv is the current index with every later write undone:
 * for a key written after at_rv, its state then is the `prev` of the first
 * such event. The ring holds every event after compacted_rv, so any
 * at_rv >= compacted_rv can be served exactly. */
int store_list(struct resource *r, const char *ns, uint64_t *at_rvp, const char *after,
               const kvs__selector *ls, const kvs__selector *fs, size_t limit,
               struct objver ***out, size_t *n, bool *more, size_t *remaining)
{
	char *lo = ns ? xasprintf("%s/", ns) : xstrdup("");
	char *hi = ns ? xasprintf("%s0", ns) : NULL; /* '0' follows '/' */
	const char *start = after && strcmp(after, lo) >= 0 ? after : lo;
	bool strict = start == after;
	*out = NULL;
	*n = 0;
	*more = false;
	if (remaining)
		*remaining = 0;
	pthread_mutex_lock(&g_store.lock);
	if (*at_rvp > g_store.rv)
		*at_rvp = g_store.rv;
	uint64_t at_rv = *at_rvp;
	if (at_rv < g_store.compacted_rv) {
		pthread_mutex_unlock(&g_store.lock);
		free(lo);
		free(hi);
		return -1;
	}
	struct touched *t = NULL;
	size_t nt = 0, ct = 0;
	for (uint64_t rv = at_rv + 1; rv <= g_store.rv; rv++) {
		struct event *e = store_event_locked(rv);
		if (e->res != r)
			continue;
		const char *key = (e->cur ? e->cur : e->prev)->key;
		int c = strcmp(key, start);
		if (c < 0 || (strict && c == 0) || (hi && strcmp(key, hi) >= 0))
			continue;
		if (nt == ct) {
			ct = ct ? ct * 2 : 16;
			t = xrealloc(t, ct * sizeof *t);
		}
		t[nt++] = (struct touched){key, rv, e->prev};
	}
	if (nt)
		qsort(t, nt, sizeof *t, cmp_touched);
	size_t w = 0;
	for (size_t k = 0; k < nt; k++)
		if (w == 0 || strcmp(t[w - 1].key, t[k].key) != 0)
			t[w++] = t[k];
	nt = w;
	size_t i = lower_bound(r, start, strict), j = 0, cap = 0;
	for (;;) {
		struct objver *ci = i < r->n && (!hi || strcmp(r->items[i]->key, hi) < 0) ? r->items[i] : NULL;
		struct touched *tj = j < nt ? &t[j] : NULL;
		if (!ci && !tj)
			break;
		struct objver *cand;
		int c = !ci ? 1 : !tj ? -1 : strcmp(ci->key, tj->key);
		if (c < 0) {
			cand = ci;
			i++;
		} else {
			cand = tj->then;
			j++;
			if (c == 0)
				i++;
		}
		if (!cand || !passes(cand, ls, fs))
			continue;
		if (limit && *n == limit) {
			*more = true;
			if (!remaining)
				break;
			(*remaining)++;
			continue;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*out = xrealloc(*out, cap * sizeof **out);
		}
		objver_ref(cand);
		(*out)[(*n)++] = cand;
	}
	pthread_mutex_unlock(&g_store.lock);
	free(t);
	free(lo);
	free(hi);
	return 0;
}
