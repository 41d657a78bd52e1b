/* The garbage collector's dependency graph: owner uid -> the objects whose
 * metadata.ownerReferences name it (kube-controller-manager's GC keeps the
 * same, uidToNode, from its informers). store.c keeps it with every write,
 * so a delete finds its dependents, and a Foreground owner whether anything
 * still blocks it, without scanning every object of every resource.
 *
 * Two chained hash tables: (owner uid, resource, key) -> dep, for O(1)
 * insert and remove, and owner uid -> owner, whose dependents are a doubly
 * linked list. Everything here runs under the store lock. */
#include "kapi.h"

#include <stdlib.h>
#include <string.h>

struct owner;

struct dep {
	struct dep *hnext;       /* chain in the dep table */
	struct dep *prev, *next; /* the owner's dependents */
	struct owner *own;
	struct resource *r;
	char *key;
	uint64_t h;
};

struct owner {
	struct owner *hnext;
	char *uid;
	uint64_t h;
	struct dep *head;
	size_t n;
};

static struct dep **dtab;
static size_t dcap, dn;
static struct owner **otab;
static size_t ocap, on;

#define FNV_OFF 1469598103934665603ull
#define FNV_PRIME 1099511628211ull

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * FNV_PRIME;
	return h;
}

static uint64_t owner_hash(const char *uid)
{
	return fnv(FNV_OFF, uid, strlen(uid));
}

static uint64_t dep_hash(uint64_t oh, const struct resource *r, const char *key)
{
	uint64_t h = fnv(oh, &r, sizeof r);
	return fnv(h, key, strlen(key) + 1);
}

static void dgrow(void)
{
	size_t nc = dcap ? dcap * 2 : 1024;
	struct dep **t = xmalloc(nc * sizeof *t);
	memset(t, 0, nc * sizeof *t);
	for (size_t i = 0; i < dcap; i++)
		for (struct dep *d = dtab[i], *nx; d; d = nx) {
			nx = d->hnext;
			d->hnext = t[d->h & (nc - 1)];
			t[d->h & (nc - 1)] = d;
		}
	free(dtab);
	dtab = t;
	dcap = nc;
}

static void ogrow(void)
{
	size_t nc = ocap ? ocap * 2 : 256;
	struct owner **t = xmalloc(nc * sizeof *t);
	memset(t, 0, nc * sizeof *t);
	for (size_t i = 0; i < ocap; i++)
		for (struct owner *o = otab[i], *nx; o; o = nx) {
			nx = o->hnext;
			o->hnext = t[o->h & (nc - 1)];
			t[o->h & (nc - 1)] = o;
		}
	free(otab);
	otab = t;
	ocap = nc;
}

static struct owner *owner_find(const char *uid, uint64_t h)
{
	for (struct owner *o = ocap ? otab[h & (ocap - 1)] : NULL; o; o = o->hnext)
		if (o->h == h && strcmp(o->uid, uid) == 0)
			return o;
	return NULL;
}

/* The link that points at the dep, or at the NULL ending its chain. */
static struct dep **dep_link(const char *uid, const struct resource *r, const char *key, uint64_t h)
{
	struct dep **l = &dtab[h & (dcap - 1)];
	for (; *l; l = &(*l)->hnext)
		if ((*l)->h == h && (*l)->r == r && strcmp((*l)->key, key) == 0 && strcmp((*l)->own->uid, uid) == 0)
			break;
	return l;
}

static void dep_add(const char *uid, struct resource *r, const char *key)
{
	uint64_t oh = owner_hash(uid), h = dep_hash(oh, r, key);
	if (dn + 1 > dcap * 3 / 4)
		dgrow();
	struct dep **l = dep_link(uid, r, key, h);
	if (*l)
		return; /* the same owner named twice */
	struct owner *o = owner_find(uid, oh);
	if (!o) {
		if (on + 1 > ocap * 3 / 4)
			ogrow();
		o = xmalloc(sizeof *o);
		o->uid = xstrdup(uid);
		o->h = oh;
		o->head = NULL;
		o->n = 0;
		o->hnext = otab[oh & (ocap - 1)];
		otab[oh & (ocap - 1)] = o;
		on++;
	}
	struct dep *d = xmalloc(sizeof *d);
	d->hnext = NULL;
	d->own = o;
	d->r = r;
	d->key = xstrdup(key);
	d->h = h;
	d->prev = NULL;
	d->next = o->head;
	if (o->head)
		o->head->prev = d;
	o->head = d;
	o->n++;
	*l = d;
	dn++;
}

static void dep_del(const char *uid, const struct resource *r, const char *key)
{
	if (!dcap)
		return;
	uint64_t h = dep_hash(owner_hash(uid), r, key);
	struct dep **l = dep_link(uid, r, key, h), *d = *l;
	if (!d)
		return;
	*l = d->hnext;
	dn--;
	struct owner *o = d->own;
	if (d->prev)
		d->prev->next = d->next;
	else
		o->head = d->next;
	if (d->next)
		d->next->prev = d->prev;
	if (--o->n == 0) {
		struct owner **ol = &otab[o->h & (ocap - 1)];
		while (*ol != o)
			ol = &(*ol)->hnext;
		*ol = o->hnext;
		on--;
		free(o->uid);
		free(o);
	}
	free(d->key);
	free(d);
}

static const cJSON *refs_of(const cJSON *obj)
{
	return obj ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
	                                              "ownerReferences")
	           : NULL;
}

static const char *ref_uid(const cJSON *ref)
{
	const char *u = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "uid"));
	return u && *u ? u : NULL;
}

static bool names_uid(const cJSON *refs, const char *uid)
{
	const cJSON *ref;
	cJSON_ArrayForEach(ref, refs) {
		const char *u = ref_uid(ref);
		if (u && strcmp(u, uid) == 0)
			return true;
	}
	return false;
}

void owners_update_locked(struct resource *r, const char *key, const cJSON *oldo, const cJSON *newo)
{
	const cJSON *a = refs_of(oldo), *b = refs_of(newo), *ref;
	if (cJSON_GetArraySize(a) == 0 && cJSON_GetArraySize(b) == 0)
		return;
	if (a && b && cJSON_Compare(a, b, true))
		return;
	cJSON_ArrayForEach(ref, a) {
		const char *u = ref_uid(ref);
		if (u && !names_uid(b, u))
			dep_del(u, r, key);
	}
	cJSON_ArrayForEach(ref, b) {
		const char *u = ref_uid(ref);
		if (u && !names_uid(a, u))
			dep_add(u, r, key);
	}
}

struct snap {
	size_t ri;
	struct objver *o;
};

static int cmp_snap(const void *x, const void *y)
{
	const struct snap *a = x, *b = y;
	if (a->ri != b->ri)
		return a->ri < b->ri ? -1 : 1;
	return strcmp(a->o->key, b->o->key);
}

size_t owners_dependents_locked(const char *uid, struct objver ***out)
{
	uint64_t oh = owner_hash(uid);
	struct owner *o = owner_find(uid, oh);
	*out = NULL;
	if (!o)
		return 0;
	struct snap *s = xmalloc(o->n * sizeof *s);
	size_t n = 0, nres = resource_count();
	for (struct dep *d = o->head; d; d = d->next) {
		struct objver *v = store_get_key_locked(d->r, d->key);
		if (!v)
			continue;
		size_t ri = 0;
		while (ri < nres && g_store.res[ri] != d->r)
			ri++;
		s[n++] = (struct snap){ri, v};
	}
	qsort(s, n, sizeof *s, cmp_snap);
	struct objver **v = xmalloc((n ? n : 1) * sizeof *v);
	for (size_t i = 0; i < n; i++)
		v[i] = s[i].o;
	free(s);
	*out = v;
	return n;
}

size_t owners_edges_locked(void)
{
	return dn;
}
