/*
 * store/mem/mem.c — the in-memory backend: a small, faithful model of a
 * Kubernetes API server serving ConfigMaps, for tests and benchmarks.
 *
 * A "cluster" holds the objects, ONE global revision counter, the watch
 * history and the clock; several backend handles (clients) may share one
 * cluster (kvs_backend_mem_clone). Faults, hooks and statistics belong to a
 * handle. Everything in a cluster is guarded by one mutex; watchers wait on
 * one condition variable that every write broadcasts.
 *
 * Semantics follow the real server where the store depends on them:
 *
 *  - resourceVersion is the decimal revision of the write that produced the
 *    object; every successful write (create, replace, annotate, remove) bumps
 *    the one counter of the cluster, so revisions grow across objects.
 *  - names are DNS-1123 subdomains (<= 253); data keys are config keys
 *    ([-._a-zA-Z0-9]+, <= 253, not "." / "..", not starting with ".."),
 *    labels and annotations are validated like the real server; a refused
 *    object is KVS_EINVALOBJ with the server's message. Data over
 *    max_object_bytes is KVS_ETOOBIG ("... []: Too long: must have at most
 *    1048576 bytes"); a whole object over max_object_bytes + 512 KiB (keys,
 *    labels, annotations included) is KVS_ETOOBIG like etcd's
 *    "request is too large".
 *  - creationTimestamp has whole-second resolution on the real server, so
 *    created_ms is the cluster clock truncated to a multiple of 1000; so is
 *    updated_ms, the time of the write that produced the object (the real
 *    server's managedFields[].time: each write the store makes changes a
 *    field, which moves its manager's time).
 *  - the cluster clock starts at the real time when the cluster is created,
 *    then moves with the (monotonic) real time plus whatever
 *    kvs_mem_advance_clock() added; now() returns it.
 *  - create/replace/annotate return in `out` the stored object's METADATA
 *    only (ndata == 0, data_bytes set): copying back a megabyte the caller
 *    just sent would double the cost of every write. get and list (without
 *    KVS_LIST_METADATA_ONLY) always return the data; head (KVS_OP_HEAD)
 *    never does (counted as KVS_MEM_HEAD, no bytes_read).
 *  - annotate merges: an annotation whose value is NULL is removed (JSON
 *    merge-patch null).
 *  - list pages are served from the current state (names after the last one
 *    of the previous page); the continue token never expires. The list
 *    resourceVersion is the revision the page was served at.
 *  - watch history is a ring of the last `history` events; each event keeps
 *    a reference to the object snapshots (stored objects are never modified
 *    after being stored, except by kvs_mem_corrupt), so history costs no
 *    copies. Watching from "" or "0" first delivers the current matching
 *    objects as ADDED (sorted by name); from "N" it delivers every event
 *    after revision N, or KVS_EGONE when N is older than the oldest kept
 *    event. An object that stops matching the watch's selector is DELETED
 *    for that watcher (its previous state, at the event's revision); one that
 *    starts matching is ADDED.
 *  - watch_next with a timeout: when it waited at least 100 ms and nothing
 *    matched, it returns a BOOKMARK carrying the current revision (as the
 *    real server sends bookmarks to idle watchers) instead of KVS_ETIMEOUT;
 *    shorter waits time out with KVS_ETIMEOUT.
 *
 * Faults and hooks: every vtable call except now() and the calls on a watch
 * handle (watch_next/close) counts as one call of its kind; a batch counts
 * each op. A call is counted, then checked against crash_after, fail_nth and
 * fail_kind in that order, then the hook runs (without any lock held), and
 * only then does the call take effect: a failed call changes nothing.
 *
 * A lost response (kvs_mem_lose_response_nth) is the opposite: the call
 * takes full effect, then its result is thrown away and the call returns the
 * chosen code (as when a connection drops after the server applied a
 * request). In the "retry" form the handle then re-sends the same call once,
 * like the Kubernetes backend does, without counting it, checking faults or
 * running the hook, and returns that second call's result (a replace
 * conditioned on the old resourceVersion gets Conflict, a create gets
 * AlreadyExists, ...), with a note in the error detail.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "store/mem/faults.h"
#include "base/options.h"
#include "kube/selector.h"
#include "kube/validate.h"

#define MEM_DEFAULT_MAX_BYTES   1048576u
#define MEM_DEFAULT_HISTORY     1000u
#define MEM_MAX_HISTORY         (1u << 22)
#define MEM_DEFAULT_PAGE        500u
#define MEM_REQUEST_SLACK       (512u * 1024u)  /* etcd request limit over the data cap */
#define KVS_ERRBUF_MEM          1024u  /* an error detail holds no more */
#define MEM_BOOKMARK_AFTER_MS   100

/* ------------------------------------------------------------------------ */
/* Cluster                                                                  */

/* A stored object snapshot, shared by the table and the watch history. */
typedef struct mobj {
	kvs_object *o;
	size_t refs;
} mobj;

/* One event of the history; `prev` is the state before (MODIFIED, DELETED). */
typedef struct mev {
	uint64_t rev;
	kvs_event_type type;
	mobj *cur;
	mobj *prev;
} mev;

typedef struct cluster {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t refs;              /* handles + open watches */

	uint64_t max_bytes;
	size_t page_default;

	mobj **objs;              /* sorted by name */
	size_t nobjs, capobjs;
	uint64_t stored_bytes;

	uint64_t rev;             /* last revision written */
	/* History: events with revision floor+1 .. rev, oldest at ring[head]. */
	uint64_t floor;
	mev *ring;
	size_t ring_cap, ring_head, ring_n;

	uint64_t uid_seed, uid_seq;
	int64_t base_real_ms, base_mono_ms, offset_ms;
} cluster;

typedef struct mem_backend {
	kvs_backend base;         /* first: the vtable sees a kvs_backend */
	cluster *c;
	/* Everything below is guarded by c->mu. */
	uint64_t ncalls;
	uint64_t fail_at;         /* absolute call number that fails, 0 = none */
	int fail_code;
	int kind_code[KVS_MEM_NCALLS];
	uint64_t crash_limit;     /* calls allowed; valid when crash_on */
	int crash_on;
	uint64_t lose_at;         /* absolute call number whose response is lost, 0 = none */
	int lose_code;            /* what it returns; 0 = re-send once (retry form) */
	kvs_mem_hook hook;
	void *hook_ctx;
	kvs_mem_stats stats;
} mem_backend;

static const kvs_backend_ops mem_ops;

static const char *const call_names[KVS_MEM_NCALLS] = {
	"get", "create", "replace", "annotate", "remove", "list", "watch", "head"
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Cluster clock; caller holds c->mu. */
static int64_t cluster_now(const cluster *c)
{
	return c->base_real_ms + (mono_ms() - c->base_mono_ms) + c->offset_ms;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void mobj_unref(mobj *m)
{
	if (m && --m->refs == 0) {
		kvs_object_free(m->o);
		free(m);
	}
}

static void cluster_unref(cluster *c)
{
	size_t left;

	pthread_mutex_lock(&c->mu);
	left = --c->refs;
	pthread_mutex_unlock(&c->mu);
	if (left)
		return;
	for (size_t i = 0; i < c->nobjs; i++)
		mobj_unref(c->objs[i]);
	for (size_t i = 0; i < c->ring_n; i++) {
		mev *e = &c->ring[(c->ring_head + i) % c->ring_cap];
		mobj_unref(e->cur);
		mobj_unref(e->prev);
	}
	free(c->objs);
	free(c->ring);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* Binary search by name: index of the object, or where it would go. */
static size_t find_pos(const cluster *c, const char *name, int *found)
{
	size_t lo = 0, hi = c->nobjs;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(c->objs[mid]->o->name, name);
		if (cmp == 0) {
			*found = 1;
			return mid;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static mobj *find_obj(const cluster *c, const char *name)
{
	int found;
	size_t i = find_pos(c, name, &found);

	return found ? c->objs[i] : NULL;
}

/* Make room for one more object; the only allocation an insert needs. */
static int reserve_obj(cluster *c)
{
	if (c->nobjs < c->capobjs)
		return 0;
	size_t ncap = c->capobjs ? c->capobjs * 2 : 64;
	if (ncap > SIZE_MAX / sizeof(*c->objs))
		return kvs_error_set(KVS_ENOMEM, "memory backend: object table full");
	mobj **n = realloc(c->objs, ncap * sizeof(*n));
	if (!n)
		return kvs_error_set(KVS_ENOMEM, "memory backend: out of memory growing object table");
	c->objs = n;
	c->capobjs = ncap;
	return 0;
}

/*
 * Record one event at revision c->rev (already bumped). Never fails: the
 * ring is preallocated and the oldest event is dropped when it is full,
 * which moves the floor (watches older than it get KVS_EGONE).
 */
static void push_event(cluster *c, kvs_event_type type, mobj *cur, mobj *prev)
{
	if (c->ring_n == c->ring_cap) {
		mev *old = &c->ring[c->ring_head];
		mobj_unref(old->cur);
		mobj_unref(old->prev);
		c->ring_head = (c->ring_head + 1) % c->ring_cap;
		c->ring_n--;
		c->floor++;
	}
	mev *e = &c->ring[(c->ring_head + c->ring_n) % c->ring_cap];
	e->rev = c->rev;
	e->type = type;
	e->cur = cur;
	e->prev = prev;
	if (cur)
		cur->refs++;
	if (prev)
		prev->refs++;
	c->ring_n++;
	pthread_cond_broadcast(&c->cv);
}

/* ------------------------------------------------------------------------ */
/* Copies                                                                   */

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p)
		memcpy(p, s, n);
	return p;
}

static void free_kv_array(kvs_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

static int copy_kv_array(kvs_kv **out, const kvs_kv *src, size_t n)
{
	*out = NULL;
	if (n == 0)
		return 0;
	kvs_kv *a = calloc(n, sizeof(*a));
	if (!a)
		return -1;
	for (size_t i = 0; i < n; i++) {
		a[i].key = xstrdup(src[i].key);
		a[i].value = xstrdup(src[i].value ? src[i].value : "");
		if (!a[i].key || !a[i].value) {
			free_kv_array(a, i + 1);
			return -1;
		}
	}
	*out = a;
	return 0;
}

/*
 * Copy of an object: metadata always, data when `with_data`. The copy
 * gets data_bytes = `data_bytes`. The data of an immutable object is shared
 * (backend.h, version 3), never copied: a stored immutable object holds a
 * reference (taken from what create was given when that is shared, else
 * made from a copy: obj_store), and gets hand out more references. The
 * data of a mutable object is copied, as a server would. NULL on out of
 * memory.
 */
static kvs_object *obj_copy(const kvs_object *src, int with_data, uint64_t data_bytes)
{
	kvs_object *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->name = xstrdup(src->name);
	o->resource_version = xstrdup(src->resource_version ? src->resource_version : "");
	o->uid = xstrdup(src->uid ? src->uid : "");
	o->created_ms = src->created_ms;
	o->updated_ms = src->updated_ms;
	o->immutable = src->immutable ? 1 : 0;
	if (!o->name || !o->resource_version || !o->uid)
		goto fail;
	if (copy_kv_array(&o->labels, src->labels, src->nlabels) < 0)
		goto fail;
	o->nlabels = src->nlabels;
	if (copy_kv_array(&o->annotations, src->annotations, src->nannotations) < 0)
		goto fail;
	o->nannotations = src->nannotations;
	if (with_data && src->ndata) {
		if (src->share && src->immutable) {
			if (kvs_object_ref_data(o, src) < 0)
				goto fail;
		} else {
			o->data = calloc(src->ndata, sizeof(*o->data));
			if (!o->data)
				goto fail;
			for (size_t i = 0; i < src->ndata; i++) {
				const kvs_blob *s = &src->data[i];
				kvs_blob *d = &o->data[i];
				d->key = xstrdup(s->key);
				d->data = malloc(s->len ? s->len : 1);
				d->len = s->len;
				o->ndata = i + 1;
				if (!d->key || !d->data)
					goto fail;
				if (s->len)
					memcpy(d->data, s->data, s->len);
			}
		}
	}
	o->data_bytes = data_bytes;
	return o;
fail:
	kvs_object_free(o);
	return NULL;
}

/* The snapshot a write stores: a copy whose data, when immutable, is shared. */
static kvs_object *obj_store(const kvs_object *src, uint64_t data_bytes)
{
	kvs_object *o = obj_copy(src, 1, data_bytes);

	if (o && o->immutable && kvs_object_share_data(o) < 0) {
		kvs_object_free(o);
		return NULL;
	}
	return o;
}

static int set_str(char **field, const char *value)
{
	char *v = xstrdup(value);

	if (!v)
		return -1;
	free(*field);
	*field = v;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Validation (k8s.io/apimachinery/pkg/util/validation)                     */

/* The field errors of one object, aggregated as errors.NewInvalid does:
 * "<a>" alone, "[<a>, <b>]" for several. */
typedef struct verrs {
	char msg[KVS_ERRBUF_MEM];
	size_t len;
	int n;
} verrs;

static void verr_add(void *ctx, const kvs__field_err *e)
{
	verrs *a = ctx;

	if (a->n++ && a->len < sizeof(a->msg))
		a->len += (size_t)snprintf(a->msg + a->len, sizeof(a->msg) - a->len, ", ");
	if (a->len < sizeof(a->msg))
		a->len += kvs__ferr_format(a->msg + a->len, sizeof(a->msg) - a->len, e, 1);
	if (a->len >= sizeof(a->msg))
		a->len = sizeof(a->msg) - 1;
}

static int verr_result(const verrs *a, const char *name)
{
	if (a->n == 0)
		return 0;
	if (a->n == 1)
		return kvs_error_set(KVS_EINVALOBJ, "ConfigMap \"%.300s\" is invalid: %s", name, a->msg);
	return kvs_error_set(KVS_EINVALOBJ, "ConfigMap \"%.300s\" is invalid: [%s]", name, a->msg);
}

static int cmp_blob_ptr(const void *a, const void *b)
{
	const kvs_blob *x = *(const kvs_blob *const *)a;
	const kvs_blob *y = *(const kvs_blob *const *)b;

	return strcmp(x->key, y->key);
}

/* Data entries sorted by key (caller frees); NULL with n == 0 is fine. */
static int sorted_blobs(const kvs_blob ***out, const kvs_object *o)
{
	*out = NULL;
	if (o->ndata == 0)
		return 0;
	const kvs_blob **v = malloc(o->ndata * sizeof(*v));
	if (!v)
		return kvs_error_set(KVS_ENOMEM, "memory backend: out of memory");
	for (size_t i = 0; i < o->ndata; i++)
		v[i] = &o->data[i];
	qsort(v, o->ndata, sizeof(*v), cmp_blob_ptr);
	*out = v;
	return 0;
}

/* Labels or annotations: shapes the API cannot express (NULL, duplicate
 * keys) here, then the server's rules (kube/validate.c) into `v`. */
static int check_kvs(const kvs_object *o, const kvs_kv *kv, size_t n, int labels,
                     uint64_t *total, verrs *v)
{
	const char *what = labels ? "metadata.labels" : "metadata.annotations";
	uint64_t sum = 0;

	if (n && !kv)
		return kvs_error_set(KVS_EINVAL, "ConfigMap \"%.300s\": %s array is NULL", o->name, what);
	for (size_t i = 0; i < n; i++) {
		if (!kv[i].key)
			return kvs_error_set(KVS_EINVAL, "ConfigMap \"%.300s\": %s[%zu] has a NULL key",
			                     o->name, what, i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(kv[j].key, kv[i].key) == 0)
				return kvs_error_set(KVS_EINVALOBJ, "ConfigMap \"%.300s\" is invalid: %s: "
				                     "Duplicate value: \"%.200s\"", o->name, what, kv[i].key);
		sum += strlen(kv[i].key) + (kv[i].value ? strlen(kv[i].value) : 0);
	}
	if (labels)
		kvs__validate_labels(kv, n, verr_add, v);
	else
		kvs__validate_annotations(kv, n, verr_add, v);
	*total += sum;
	return 0;
}

/*
 * Validate an object as the API server would on create or update; sets
 * *out_bytes to its data size. Order: name, labels, annotations, data keys,
 * data size, whole request size.
 */
static int validate_object(const cluster *c, const kvs_object *o, uint64_t *out_bytes)
{
	uint64_t data = 0, meta = 0;
	const kvs_blob **sorted = NULL;
	verrs v;
	int rc;

	if (!o->name)
		return kvs_error_set(KVS_EINVAL, "memory backend: object has no name");
	memset(&v, 0, sizeof(v));
	kvs__validate_name(o->name, 0, verr_add, &v);
	if (!*o->name) {
		kvs__field_err e = { KVS__FERR_REQUIRED, "metadata.name", NULL, NULL,
		                     "name or generateName is required", 0 };
		verr_add(&v, &e);
	}
	meta = strlen(o->name);
	if ((rc = check_kvs(o, o->labels, o->nlabels, 1, &meta, &v)) < 0 ||
	    (rc = check_kvs(o, o->annotations, o->nannotations, 0, &meta, &v)) < 0)
		return rc;
	if (o->ndata && !o->data)
		return kvs_error_set(KVS_EINVAL, "ConfigMap \"%.300s\": data array is NULL", o->name);
	for (size_t i = 0; i < o->ndata; i++) {
		const kvs_blob *d = &o->data[i];
		if (!d->key)
			return kvs_error_set(KVS_EINVAL, "ConfigMap \"%.300s\": data[%zu] has a NULL key",
			                     o->name, i);
		if (d->len && !d->data)
			return kvs_error_set(KVS_EINVAL, "ConfigMap \"%.300s\": binaryData[%.200s] has "
			                     "NULL bytes of length %zu", o->name, d->key, d->len);
		kvs__validate_config_key("binaryData", d->key, verr_add, &v);
		if ((uint64_t)d->len > UINT64_MAX - data)
			return kvs_error_set(KVS_ETOOBIG, "ConfigMap \"%.300s\": data size overflows",
			                     o->name);
		data += d->len;
		meta += strlen(d->key);
	}
	if ((rc = verr_result(&v, o->name)) < 0)
		return rc;
	if ((rc = sorted_blobs(&sorted, o)) < 0)
		return rc;
	for (size_t i = 1; i < o->ndata; i++) {
		if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0) {
			rc = kvs_error_set(KVS_EINVALOBJ, "ConfigMap \"%.300s\" is invalid: "
			                   "binaryData[%.200s]: Duplicate value: \"%.200s\"",
			                   o->name, sorted[i]->key, sorted[i]->key);
			free(sorted);
			return rc;
		}
	}
	free(sorted);
	if (data > c->max_bytes)
		return kvs_error_set(KVS_ETOOBIG, "ConfigMap \"%.300s\" is invalid: []: Too long: "
		                     "must have at most %" PRIu64 " bytes", o->name, c->max_bytes);
	uint64_t request_max = c->max_bytes > UINT64_MAX - MEM_REQUEST_SLACK ?
	                       UINT64_MAX : c->max_bytes + MEM_REQUEST_SLACK;
	if (meta > request_max - data)
		return kvs_error_set(KVS_ETOOBIG, "ConfigMap \"%.300s\": etcdserver: request is too "
		                     "large", o->name);
	*out_bytes = data;
	return 0;
}

/* Same data (as maps: order does not matter)? Returns 1, 0, or a KVS_E code. */
static int same_data(const kvs_object *a, const kvs_object *b)
{
	const kvs_blob **x = NULL, **y = NULL;
	int rc, same = 1;

	if (a->ndata != b->ndata)
		return 0;
	if ((rc = sorted_blobs(&x, a)) < 0)
		return rc;
	if ((rc = sorted_blobs(&y, b)) < 0) {
		free(x);
		return rc;
	}
	for (size_t i = 0; i < a->ndata && same; i++)
		same = strcmp(x[i]->key, y[i]->key) == 0 && x[i]->len == y[i]->len &&
		       (x[i]->len == 0 || memcmp(x[i]->data, y[i]->data, x[i]->len) == 0);
	free(x);
	free(y);
	return same;
}

/* ------------------------------------------------------------------------ */
/* Label selectors: the API server's parser and matching (kube/selector.c)  */

static int selector_parse(kvs__selector **out, const char *text)
{
	char msg[512];
	int rc = kvs__label_selector_parse(out, text, msg, sizeof(msg));

	if (rc == KVS_ENOMEM)
		return kvs_error_set(rc, "memory backend: out of memory parsing a selector");
	if (rc < 0)
		return kvs_error_set(rc, "memory backend: labelSelector \"%.300s\": %s", text, msg);
	return 0;
}

static int sel_match(const kvs__selector *s, const kvs_object *o)
{
	return kvs__selector_match_kv(s, o->labels, o->nlabels);
}

/* ------------------------------------------------------------------------ */
/* Calls: counting, faults, hooks                                           */

static mem_backend *as_mem(kvs_backend *b)
{
	return b && b->ops == &mem_ops ? (mem_backend *)b : NULL;
}

/*
 * How one vtable call goes: whether its response is to be lost (set by
 * begin_call), and whether it is the internal re-send of a lost call (which
 * begin_call lets through without counting, faults or hook).
 */
typedef struct mcall {
	int lost;                 /* the response of this call is lost */
	int lose_code;            /* returned instead; 0 = re-send once */
	uint64_t n;               /* its call number */
	int resend;               /* this is the internal re-send */
} mcall;

/*
 * Count a call and decide whether it fails before taking effect. The hook
 * runs with no lock held, so it may drive other handles of this cluster.
 * `mc` may be NULL (calls whose response cannot be lost).
 */
static int begin_call(mem_backend *m, kvs_mem_call kind, const char *name, mcall *mc)
{
	cluster *c = m->c;
	kvs_mem_hook hook;
	void *ctx;
	int code = 0;
	uint64_t n;

	if (mc && mc->resend)
		return 0;
	pthread_mutex_lock(&c->mu);
	n = ++m->ncalls;
	m->stats.calls[kind]++;
	if (m->crash_on && n > m->crash_limit) {
		code = KVS_EIO;
	} else if (m->fail_at && n == m->fail_at) {
		code = m->fail_code;
		m->fail_at = 0;
	} else if (m->kind_code[kind]) {
		code = m->kind_code[kind];
	}
	if (m->lose_at && n == m->lose_at) {
		if (!code && mc) {
			mc->lost = 1;
			mc->lose_code = m->lose_code;
			mc->n = n;
		}
		m->lose_at = 0;
	}
	hook = m->hook;
	ctx = m->hook_ctx;
	pthread_mutex_unlock(&c->mu);

	if (code)
		return kvs_error_set(code, "memory backend: injected %s on call %" PRIu64 " (%s %s)",
		                     m->crash_on && n > m->crash_limit ? "crash" : "fault", n,
		                     call_names[kind], name ? name : "-");
	if (hook) {
		int rc = hook(ctx, kind, name);
		if (rc)
			return kvs_error_set(rc < 0 ? rc : KVS_ERROR, "memory backend: hook failed %s %s "
			                     "with %d", call_names[kind], name ? name : "-", rc);
	}
	return 0;
}

static int oom(const char *what, const char *name)
{
	return kvs_error_set(KVS_ENOMEM, "memory backend: out of memory %s %.300s", what,
	                     name ? name : "");
}

static void format_rv(char *buf, size_t n, uint64_t rev)
{
	snprintf(buf, n, "%" PRIu64, rev);
}

/* Strict decimal resourceVersion; 0 on success. */
static int parse_rv(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s || strlen(s) > 20)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* get / create / replace / annotate / remove                               */

/* get (kind KVS_MEM_GET: with the data) or head (KVS_MEM_HEAD: metadata
 * only, data_bytes set, nothing counted in bytes_read). */
static int get_call(mcall *mc, kvs_backend *b, kvs_object **out, const char *name,
                    kvs_mem_call kind)
{
	mem_backend *m = as_mem(b);
	int with_data = kind == KVS_MEM_GET, rc;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "memory backend %s: out is NULL", call_names[kind]);
	*out = NULL;
	if (!name)
		return kvs_error_set(KVS_EINVAL, "memory backend %s: name is NULL", call_names[kind]);
	if ((rc = begin_call(m, kind, name, mc)) < 0)
		return rc;
	pthread_mutex_lock(&m->c->mu);
	mobj *o = find_obj(m->c, name);
	if (!o) {
		pthread_mutex_unlock(&m->c->mu);
		return kvs_error_set(KVS_ENOTFOUND, "configmaps \"%.300s\" not found", name);
	}
	kvs_object *copy = obj_copy(o->o, with_data, o->o->data_bytes);
	if (copy && with_data)
		m->stats.bytes_read += copy->data_bytes;
	pthread_mutex_unlock(&m->c->mu);
	if (!copy)
		return oom("copying", name);
	*out = copy;
	return 0;
}

/* The metadata-only copy handed back by writes. */
static int write_result(kvs_object **out, const mobj *o)
{
	if (!out)
		return 0;
	if (!(*out = obj_copy(o->o, 0, o->o->data_bytes)))
		return oom("copying", o->o->name);
	return 0;
}

/* A new uid in UUID v4 layout; the low 48 bits are a sequence (unique). */
static void make_uid(cluster *c, char *buf, size_t n)
{
	uint64_t r = splitmix64(&c->uid_seed);
	uint64_t seq = ++c->uid_seq;

	snprintf(buf, n, "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-%04" PRIx64 "-%012" PRIx64,
	         r >> 32, (r >> 16) & 0xffff, (r >> 4) & 0xfff,
	         0x8000 | ((r & 0xf) << 8) | ((seq >> 48) & 0xff), seq & UINT64_C(0xffffffffffff));
}

static int create_call(mcall *mc, kvs_backend *b, kvs_object **out, const kvs_object *obj)
{
	mem_backend *m = as_mem(b);
	cluster *c;
	uint64_t bytes;
	char rv[24], uid[40];
	int rc, found;

	if (out)
		*out = NULL;
	if (!obj || !obj->name)
		return kvs_error_set(KVS_EINVAL, "memory backend create: object or name is NULL");
	if ((rc = begin_call(m, KVS_MEM_CREATE, obj->name, mc)) < 0)
		return rc;
	c = m->c;
	if ((rc = validate_object(c, obj, &bytes)) < 0)
		return rc;
	if (obj->resource_version && obj->resource_version[0])
		return kvs_error_set(KVS_EINVAL, "ConfigMap \"%.300s\": resourceVersion should not be "
		                     "set on objects to be created", obj->name);
	/* The copy (or the reference) of the data happens outside the lock. */
	mobj *nm = calloc(1, sizeof(*nm));
	kvs_object *no = obj_store(obj, bytes);
	if (!nm || !no) {
		free(nm);
		kvs_object_free(no);
		return oom("storing", obj->name);
	}
	nm->o = no;
	nm->refs = 1;

	pthread_mutex_lock(&c->mu);
	size_t pos = find_pos(c, obj->name, &found);
	if (found) {
		pthread_mutex_unlock(&c->mu);
		mobj_unref(nm);
		return kvs_error_set(KVS_EEXISTS, "configmaps \"%.300s\" already exists", obj->name);
	}
	format_rv(rv, sizeof(rv), c->rev + 1);
	make_uid(c, uid, sizeof(uid));
	no->created_ms = cluster_now(c) / 1000 * 1000;
	no->updated_ms = no->created_ms;
	if (reserve_obj(c) < 0 || set_str(&no->resource_version, rv) < 0 ||
	    set_str(&no->uid, uid) < 0 || write_result(out, nm) < 0) {
		pthread_mutex_unlock(&c->mu);
		mobj_unref(nm);
		return oom("storing", obj->name);
	}
	memmove(&c->objs[pos + 1], &c->objs[pos], (c->nobjs - pos) * sizeof(*c->objs));
	c->objs[pos] = nm;
	c->nobjs++;
	c->stored_bytes += bytes;
	c->rev++;
	push_event(c, KVS_EVENT_ADDED, nm, NULL);
	m->stats.bytes_written += bytes;
	pthread_mutex_unlock(&c->mu);
	return 0;
}

static int replace_call(mcall *mc, kvs_backend *b, kvs_object **out, const kvs_object *obj)
{
	mem_backend *m = as_mem(b);
	cluster *c;
	uint64_t bytes;
	char rv[24];
	int rc, found;

	if (out)
		*out = NULL;
	if (!obj || !obj->name)
		return kvs_error_set(KVS_EINVAL, "memory backend replace: object or name is NULL");
	if ((rc = begin_call(m, KVS_MEM_REPLACE, obj->name, mc)) < 0)
		return rc;
	c = m->c;
	if ((rc = validate_object(c, obj, &bytes)) < 0)
		return rc;
	mobj *nm = calloc(1, sizeof(*nm));
	kvs_object *no = obj_store(obj, bytes);
	if (!nm || !no) {
		free(nm);
		kvs_object_free(no);
		return oom("storing", obj->name);
	}
	nm->o = no;
	nm->refs = 1;

	pthread_mutex_lock(&c->mu);
	size_t pos = find_pos(c, obj->name, &found);
	if (!found) {
		rc = kvs_error_set(KVS_ENOTFOUND, "configmaps \"%.300s\" not found", obj->name);
		goto fail;
	}
	mobj *old = c->objs[pos];
	const char *want = obj->resource_version ? obj->resource_version : "";
	if (want[0] && strcmp(want, old->o->resource_version) != 0) {
		rc = kvs_error_set(KVS_ECONFLICT, "Operation cannot be fulfilled on configmaps "
		                   "\"%.300s\": the object has been modified; please apply your changes "
		                   "to the latest version and try again (have %.40s, current %s)",
		                   obj->name, want, old->o->resource_version);
		goto fail;
	}
	if (obj->uid && obj->uid[0] && strcmp(obj->uid, old->o->uid) != 0) {
		rc = kvs_error_set(KVS_ECONFLICT, "Precondition failed: UID in precondition: %.60s, "
		                   "UID in object meta: %s", obj->uid, old->o->uid);
		goto fail;
	}
	if (old->o->immutable) {
		if (!obj->immutable) {
			rc = kvs_error_set(KVS_EINVALOBJ, "ConfigMap \"%.300s\" is invalid: immutable: "
			                   "Forbidden: field is immutable when `immutable` is set", obj->name);
			goto fail;
		}
		if ((rc = same_data(old->o, obj)) <= 0) {
			if (rc == 0)
				rc = kvs_error_set(KVS_EINVALOBJ, "ConfigMap \"%.300s\" is invalid: "
				                   "binaryData: Forbidden: field is immutable when `immutable` "
				                   "is set", obj->name);
			goto fail;
		}
	}
	format_rv(rv, sizeof(rv), c->rev + 1);
	no->created_ms = old->o->created_ms;
	no->updated_ms = cluster_now(c) / 1000 * 1000;
	if (set_str(&no->resource_version, rv) < 0 || set_str(&no->uid, old->o->uid) < 0 ||
	    write_result(out, nm) < 0) {
		rc = oom("storing", obj->name);
		goto fail;
	}
	c->objs[pos] = nm;
	c->stored_bytes = c->stored_bytes - old->o->data_bytes + bytes;
	c->rev++;
	push_event(c, KVS_EVENT_MODIFIED, nm, old);
	mobj_unref(old);
	m->stats.bytes_written += bytes;
	pthread_mutex_unlock(&c->mu);
	return 0;
fail:
	pthread_mutex_unlock(&c->mu);
	mobj_unref(nm);
	return rc;
}

static int annotate_call(mcall *mc, kvs_backend *b, kvs_object **out, const char *name,
                         const kvs_kv *annotations, size_t n)
{
	mem_backend *m = as_mem(b);
	cluster *c;
	char rv[24];
	int rc;

	if (out)
		*out = NULL;
	if (!name || (n && !annotations))
		return kvs_error_set(KVS_EINVAL, "memory backend annotate: name or annotations NULL");
	for (size_t i = 0; i < n; i++)
		if (!annotations[i].key)
			return kvs_error_set(KVS_EINVAL, "memory backend annotate %.300s: annotation %zu "
			                     "has a NULL key", name, i);
	if ((rc = begin_call(m, KVS_MEM_ANNOTATE, name, mc)) < 0)
		return rc;
	c = m->c;
	pthread_mutex_lock(&c->mu);
	mobj *old = find_obj(c, name);
	if (!old) {
		pthread_mutex_unlock(&c->mu);
		return kvs_error_set(KVS_ENOTFOUND, "configmaps \"%.300s\" not found", name);
	}
	/*
	 * The new snapshot shares no metadata with the old one (history keeps
	 * the old); a mutable object's data is copied under the lock (one
	 * memcpy, as on a server), an immutable one's shared.
	 */
	mobj *nm = calloc(1, sizeof(*nm));
	kvs_object *no = obj_copy(old->o, 1, old->o->data_bytes);
	if (!nm || !no) {
		rc = oom("annotating", name);
		goto fail_new;
	}
	nm->o = no;
	nm->refs = 1;
	for (size_t i = 0; i < n; i++) {
		if (annotations[i].value) {
			rc = kvs_object_set_annotation(no, annotations[i].key, annotations[i].value);
		} else {
			rc = 0;
			for (size_t j = 0; j < no->nannotations; j++) {
				if (strcmp(no->annotations[j].key, annotations[i].key) == 0) {
					free(no->annotations[j].key);
					free(no->annotations[j].value);
					no->annotations[j] = no->annotations[--no->nannotations];
					break;
				}
			}
		}
		if (rc < 0)
			goto fail;
	}
	uint64_t meta = 0;
	verrs v;
	memset(&v, 0, sizeof(v));
	if ((rc = check_kvs(no, no->annotations, no->nannotations, 0, &meta, &v)) < 0 ||
	    (rc = verr_result(&v, no->name)) < 0)
		goto fail;
	format_rv(rv, sizeof(rv), c->rev + 1);
	no->updated_ms = cluster_now(c) / 1000 * 1000;
	if (set_str(&no->resource_version, rv) < 0 || write_result(out, nm) < 0) {
		rc = oom("annotating", name);
		goto fail;
	}
	size_t pos;
	int found;
	pos = find_pos(c, name, &found);
	c->objs[pos] = nm;
	c->rev++;
	push_event(c, KVS_EVENT_MODIFIED, nm, old);
	mobj_unref(old);
	pthread_mutex_unlock(&c->mu);
	return 0;
fail:
	mobj_unref(nm);
	pthread_mutex_unlock(&c->mu);
	return rc;
fail_new:
	free(nm);
	kvs_object_free(no);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static int remove_call(mcall *mc, kvs_backend *b, const char *name, const char *expect_rv,
                       const char *expect_uid)
{
	mem_backend *m = as_mem(b);
	cluster *c;
	int rc, found;

	if (!name)
		return kvs_error_set(KVS_EINVAL, "memory backend remove: name is NULL");
	if ((rc = begin_call(m, KVS_MEM_REMOVE, name, mc)) < 0)
		return rc;
	c = m->c;
	pthread_mutex_lock(&c->mu);
	size_t pos = find_pos(c, name, &found);
	if (!found) {
		pthread_mutex_unlock(&c->mu);
		return kvs_error_set(KVS_ENOTFOUND, "configmaps \"%.300s\" not found", name);
	}
	mobj *old = c->objs[pos];
	if (expect_uid && expect_uid[0] && strcmp(expect_uid, old->o->uid) != 0) {
		rc = kvs_error_set(KVS_ECONFLICT, "Precondition failed: UID in precondition: %.60s, "
		                   "UID in object meta: %s", expect_uid, old->o->uid);
		pthread_mutex_unlock(&c->mu);
		return rc;
	}
	if (expect_rv && expect_rv[0] && strcmp(expect_rv, old->o->resource_version) != 0) {
		rc = kvs_error_set(KVS_ECONFLICT, "Precondition failed: ResourceVersion in "
		                   "precondition: %.40s, ResourceVersion in object meta: %s (%.300s)",
		                   expect_rv, old->o->resource_version, name);
		pthread_mutex_unlock(&c->mu);
		return rc;
	}
	memmove(&c->objs[pos], &c->objs[pos + 1], (c->nobjs - pos - 1) * sizeof(*c->objs));
	c->nobjs--;
	c->stored_bytes -= old->o->data_bytes;
	c->rev++;
	push_event(c, KVS_EVENT_DELETED, NULL, old);
	mobj_unref(old);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* list                                                                     */

#define TOKEN_PREFIX "m1/"

static int list_call(mcall *mc, kvs_backend *b, kvs_object_list **out, const char *sel_text,
                     size_t limit, const char *token, unsigned int flags)
{
	mem_backend *m = as_mem(b);
	cluster *c;
	kvs__selector *sel = NULL;
	kvs_object_list *l = NULL;
	const char *after = NULL;
	char rv[24];
	int rc;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "memory backend list: out is NULL");
	*out = NULL;
	if ((rc = begin_call(m, KVS_MEM_LIST, NULL, mc)) < 0)
		return rc;
	if (token && token[0]) {
		/* "m1/<revision>/<last name>": opaque to callers. */
		const char *p = token + strlen(TOKEN_PREFIX);
		if (strncmp(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0 || !strchr(p, '/') ||
		    strlen(token) > 300)
			return kvs_error_set(KVS_EINVAL, "memory backend list: malformed continue token "
			                     "\"%.100s\"", token);
		after = strchr(p, '/') + 1;
	}
	if ((rc = selector_parse(&sel, sel_text)) < 0)
		return rc;
	c = m->c;
	if (limit == 0)
		limit = c->page_default;
	if (!(l = calloc(1, sizeof(*l)))) {
		kvs__selector_free(sel);
		return oom("listing", NULL);
	}

	pthread_mutex_lock(&c->mu);
	size_t start = 0;
	if (after) {
		int found;
		start = find_pos(c, after, &found);
		if (found)
			start++;
	}
	size_t cap = c->nobjs - start < limit ? c->nobjs - start : limit;
	if (cap && !(l->items = calloc(cap, sizeof(*l->items))))
		goto nomem;
	uint64_t read = 0;
	size_t i;
	for (i = start; i < c->nobjs; i++) {
		const kvs_object *o = c->objs[i]->o;
		if (!sel_match(sel, o))
			continue;
		if (l->count == limit) {
			/* Another match exists: this page is not the last. */
			const kvs_object *last = l->items[l->count - 1];
			size_t tn = strlen(TOKEN_PREFIX) + 24 + strlen(last->name) + 2;
			if (!(l->next = malloc(tn)))
				goto nomem;
			snprintf(l->next, tn, TOKEN_PREFIX "%" PRIu64 "/%s", c->rev, last->name);
			break;
		}
		int with_data = !(flags & KVS_LIST_METADATA_ONLY);
		kvs_object *copy = obj_copy(o, with_data, o->data_bytes);
		if (!copy)
			goto nomem;
		l->items[l->count++] = copy;
		if (with_data)
			read += o->data_bytes;
	}
	format_rv(rv, sizeof(rv), c->rev);
	if (!(l->resource_version = xstrdup(rv)))
		goto nomem;
	m->stats.bytes_read += read;
	pthread_mutex_unlock(&c->mu);
	kvs__selector_free(sel);
	*out = l;
	return 0;
nomem:
	pthread_mutex_unlock(&c->mu);
	kvs__selector_free(sel);
	kvs_object_list_free(l);
	return oom("listing", NULL);
}

/* ------------------------------------------------------------------------ */
/* watch                                                                    */

struct kvs_backend_watch {
	cluster *c;
	kvs__selector *sel;
	uint64_t pos;             /* last revision considered */
	mobj **initial;           /* synthetic ADDED still to deliver */
	size_t ninitial, next_initial;
};

static void watch_close(kvs_backend_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->c->mu);
	for (size_t i = w->next_initial; i < w->ninitial; i++)
		mobj_unref(w->initial[i]);
	pthread_mutex_unlock(&w->c->mu);
	free(w->initial);
	kvs__selector_free(w->sel);
	cluster_unref(w->c);
	free(w);
}

static int watch_open_call(mcall *mc, kvs_backend *b, kvs_backend_watch **out,
                           const char *sel_text, const char *from_rv)
{
	mem_backend *m = as_mem(b);
	cluster *c;
	kvs_backend_watch *w;
	uint64_t from = 0;
	int rc, initial;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "memory backend watch: out is NULL");
	*out = NULL;
	if ((rc = begin_call(m, KVS_MEM_WATCH, NULL, mc)) < 0)
		return rc;
	if (!from_rv)
		from_rv = "";
	initial = from_rv[0] == '\0' || strcmp(from_rv, "0") == 0;
	if (!initial && parse_rv(from_rv, &from) < 0)
		return kvs_error_set(KVS_EINVAL, "memory backend watch: resourceVersion \"%.40s\" is "
		                     "not a revision", from_rv);
	if (!(w = calloc(1, sizeof(*w))))
		return oom("opening watch", NULL);
	if ((rc = selector_parse(&w->sel, sel_text)) < 0) {
		free(w);
		return rc;
	}
	c = m->c;
	pthread_mutex_lock(&c->mu);
	if (initial) {
		from = c->rev;
		if (c->nobjs && !(w->initial = malloc(c->nobjs * sizeof(*w->initial)))) {
			pthread_mutex_unlock(&c->mu);
			kvs__selector_free(w->sel);
			free(w);
			return oom("opening watch", NULL);
		}
		for (size_t i = 0; i < c->nobjs; i++) {
			if (sel_match(w->sel, c->objs[i]->o)) {
				c->objs[i]->refs++;
				w->initial[w->ninitial++] = c->objs[i];
			}
		}
	} else if (from < c->floor) {
		pthread_mutex_unlock(&c->mu);
		kvs__selector_free(w->sel);
		free(w);
		return kvs_error_set(KVS_EGONE, "too old resource version: %" PRIu64 " (%" PRIu64 ")",
		                     from, c->floor);
	}
	w->pos = from;
	w->c = c;
	c->refs++;
	pthread_mutex_unlock(&c->mu);
	*out = w;
	return 0;
}

/* An event object: a full copy, with the revision of the event for DELETED. */
static int deliver(kvs_event *out, kvs_event_type type, const mobj *src, uint64_t rev)
{
	kvs_object *o = obj_copy(src->o, 1, src->o->data_bytes);
	char rv[24];

	if (!o)
		return oom("delivering event for", src->o->name);
	if (type == KVS_EVENT_DELETED) {
		format_rv(rv, sizeof(rv), rev);
		if (set_str(&o->resource_version, rv) < 0) {
			kvs_object_free(o);
			return oom("delivering event for", src->o->name);
		}
	}
	out->type = type;
	out->object = o;
	return 0;
}

static int bookmark(kvs_event *out, uint64_t rev)
{
	char rv[24];
	kvs_object *o = kvs_object_new("");

	format_rv(rv, sizeof(rv), rev);
	if (!o || kvs_object_set_rv(o, rv) < 0) {
		kvs_object_free(o);
		return oom("delivering bookmark", NULL);
	}
	out->type = KVS_EVENT_BOOKMARK;
	out->object = o;
	return 0;
}

/*
 * The next event for this watcher at or after w->pos + 1, applying the
 * selector transitions; caller holds the lock. 1 = delivered, 0 = nothing
 * (w->pos caught up with the cluster), < 0 = error.
 */
static int next_from_history(kvs_backend_watch *w, kvs_event *out)
{
	cluster *c = w->c;

	while (w->pos < c->rev) {
		uint64_t r = w->pos + 1;
		const mev *e = &c->ring[(c->ring_head + (r - c->floor - 1)) % c->ring_cap];
		int was = e->prev && sel_match(w->sel, e->prev->o);
		int is = e->cur && sel_match(w->sel, e->cur->o);
		int rc = 0;

		if (was && is)
			rc = deliver(out, KVS_EVENT_MODIFIED, e->cur, r);
		else if (is)
			rc = deliver(out, KVS_EVENT_ADDED, e->cur, r);
		else if (was)
			rc = deliver(out, KVS_EVENT_DELETED, e->prev, r);
		else {
			w->pos = r;
			continue;
		}
		if (rc < 0)
			return rc;   /* position unchanged: the event is retried */
		w->pos = r;
		return 1;
	}
	return 0;
}

static int mem_watch_next(kvs_backend_watch *w, kvs_event *out, int timeout_ms)
{
	cluster *c;
	struct timespec deadline;
	int64_t start = mono_ms();
	int rc;

	if (!w || !out)
		return kvs_error_set(KVS_EINVAL, "memory backend watch_next: watch or out is NULL");
	out->type = KVS_EVENT_BOOKMARK;
	out->object = NULL;
	c = w->c;
	if (timeout_ms >= 0) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&c->mu);
	for (int timed_out = 0;;) {
		if (w->pos < c->floor) {
			rc = kvs_error_set(KVS_EGONE, "too old resource version: %" PRIu64 " (%" PRIu64
			                   ")", w->pos, c->floor);
			break;
		}
		if (w->next_initial < w->ninitial) {
			mobj *o = w->initial[w->next_initial];
			if ((rc = deliver(out, KVS_EVENT_ADDED, o, 0)) == 0) {
				w->next_initial++;
				mobj_unref(o);
			}
			break;
		}
		if ((rc = next_from_history(w, out)) != 0) {
			if (rc > 0)
				rc = 0;
			break;
		}
		if (timed_out) {
			if (mono_ms() - start >= MEM_BOOKMARK_AFTER_MS)
				rc = bookmark(out, c->rev);
			else
				rc = kvs_error_set(KVS_ETIMEOUT, "memory backend watch: no event within "
				                   "%d ms", timeout_ms);
			break;
		}
		if (timeout_ms < 0)
			pthread_cond_wait(&c->cv, &c->mu);
		else if (timeout_ms == 0 ||
		         pthread_cond_timedwait(&c->cv, &c->mu, &deadline) == ETIMEDOUT)
			timed_out = 1;  /* one last look, then bookmark or time out */
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* The vtable calls: the above, plus lost responses                         */

/* The response of a call that took effect is lost: report `mc->lose_code`. */
static int lose(const mcall *mc, kvs_mem_call kind, const char *name)
{
	return kvs_error_set(mc->lose_code, "memory backend: injected lost response on call %" PRIu64
	                     " (%s %.300s): the call took effect", mc->n, call_names[kind],
	                     name ? name : "-");
}

/* The result of the re-send of a lost call, with a note on failure (as the
 * Kubernetes backend adds). */
static int resent(int rc)
{
	char msg[512];

	if (rc >= 0)
		return rc;
	snprintf(msg, sizeof(msg), "%s", kvs_error_last());
	return kvs_error_set(rc, "%s (after a retry of a request whose response was lost: our "
	                     "own earlier attempt may have applied)", msg);
}

static int get_or_head(kvs_backend *b, kvs_object **out, const char *name, kvs_mem_call kind)
{
	mcall mc = { 0 };
	int rc = get_call(&mc, b, out, name, kind);

	if (!mc.lost)
		return rc;
	kvs_object_free(*out);
	*out = NULL;
	if (mc.lose_code)
		return lose(&mc, kind, name);
	mc.resend = 1;
	return resent(get_call(&mc, b, out, name, kind));
}

static int mem_get(kvs_backend *b, kvs_object **out, const char *name)
{
	return get_or_head(b, out, name, KVS_MEM_GET);
}

static int mem_head(kvs_backend *b, kvs_object **out, const char *name)
{
	return get_or_head(b, out, name, KVS_MEM_HEAD);
}

static int mem_create(kvs_backend *b, kvs_object **out, const kvs_object *obj)
{
	mcall mc = { 0 };
	int rc = create_call(&mc, b, out, obj);

	if (!mc.lost)
		return rc;
	if (out) {
		kvs_object_free(*out);
		*out = NULL;
	}
	if (mc.lose_code)
		return lose(&mc, KVS_MEM_CREATE, obj->name);
	mc.resend = 1;
	return resent(create_call(&mc, b, out, obj));
}

static int mem_replace(kvs_backend *b, kvs_object **out, const kvs_object *obj)
{
	mcall mc = { 0 };
	int rc = replace_call(&mc, b, out, obj);

	if (!mc.lost)
		return rc;
	if (out) {
		kvs_object_free(*out);
		*out = NULL;
	}
	if (mc.lose_code)
		return lose(&mc, KVS_MEM_REPLACE, obj->name);
	mc.resend = 1;
	return resent(replace_call(&mc, b, out, obj));
}

static int mem_annotate(kvs_backend *b, kvs_object **out, const char *name,
                        const kvs_kv *annotations, size_t n)
{
	mcall mc = { 0 };
	int rc = annotate_call(&mc, b, out, name, annotations, n);

	if (!mc.lost)
		return rc;
	if (out) {
		kvs_object_free(*out);
		*out = NULL;
	}
	if (mc.lose_code)
		return lose(&mc, KVS_MEM_ANNOTATE, name);
	mc.resend = 1;
	return resent(annotate_call(&mc, b, out, name, annotations, n));
}

static int mem_remove(kvs_backend *b, const char *name, const char *expect_rv,
                      const char *expect_uid)
{
	mcall mc = { 0 };
	int rc = remove_call(&mc, b, name, expect_rv, expect_uid);

	if (!mc.lost)
		return rc;
	if (mc.lose_code)
		return lose(&mc, KVS_MEM_REMOVE, name);
	mc.resend = 1;
	return resent(remove_call(&mc, b, name, expect_rv, expect_uid));
}

static int mem_list(kvs_backend *b, kvs_object_list **out, const char *sel_text,
                    size_t limit, const char *token, unsigned int flags)
{
	mcall mc = { 0 };
	int rc = list_call(&mc, b, out, sel_text, limit, token, flags);

	if (!mc.lost)
		return rc;
	kvs_object_list_free(*out);
	*out = NULL;
	if (mc.lose_code)
		return lose(&mc, KVS_MEM_LIST, NULL);
	mc.resend = 1;
	return resent(list_call(&mc, b, out, sel_text, limit, token, flags));
}

static int mem_watch_open(kvs_backend *b, kvs_backend_watch **out, const char *sel_text,
                          const char *from_rv)
{
	mcall mc = { 0 };
	int rc = watch_open_call(&mc, b, out, sel_text, from_rv);

	if (!mc.lost)
		return rc;
	if (*out)
		watch_close(*out);
	*out = NULL;
	if (mc.lose_code)
		return lose(&mc, KVS_MEM_WATCH, NULL);
	mc.resend = 1;
	return resent(watch_open_call(&mc, b, out, sel_text, from_rv));
}

/* ------------------------------------------------------------------------ */
/* batch, now, free                                                         */

static int mem_batch(kvs_backend *b, kvs_op *ops, size_t n)
{
	if (n && !ops)
		return kvs_error_set(KVS_EINVAL, "memory backend batch: ops is NULL");
	for (size_t i = 0; i < n; i++) {
		kvs_op *op = &ops[i];
		op->out = NULL;
		switch (op->kind) {
		case KVS_OP_GET:
			kvs_op_result(op, mem_get(b, &op->out, op->name));
			break;
		case KVS_OP_CREATE:
			kvs_op_result(op, mem_create(b, &op->out, op->in));
			break;
		case KVS_OP_HEAD:
			kvs_op_result(op, mem_head(b, &op->out, op->name));
			break;
		default:
			kvs_op_result(op, kvs_error_set(KVS_EINVAL, "memory backend batch: op %zu has "
			                                "unknown kind %d", i, (int)op->kind));
			break;
		}
	}
	return 0;
}

static int mem_now(kvs_backend *b, int64_t *out_ms)
{
	mem_backend *m = as_mem(b);

	if (!out_ms)
		return kvs_error_set(KVS_EINVAL, "memory backend now: out is NULL");
	pthread_mutex_lock(&m->c->mu);
	*out_ms = cluster_now(m->c);
	pthread_mutex_unlock(&m->c->mu);
	return 0;
}

static void mem_free(kvs_backend *b)
{
	mem_backend *m = as_mem(b);

	if (!m)
		return;
	cluster_unref(m->c);
	free(m);
}

static const kvs_backend_ops mem_ops = {
	KVS_BACKEND_OPS_VERSION,
	"memory",
	mem_get,
	mem_create,
	mem_replace,
	mem_annotate,
	mem_remove,
	mem_list,
	mem_watch_open,
	mem_watch_next,
	watch_close,
	mem_batch,
	mem_now,
	mem_free,
	mem_head,
};

/* ------------------------------------------------------------------------ */
/* Public: constructors and test controls                                   */

static mem_backend *handle_new(cluster *c)
{
	mem_backend *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->base.ops = &mem_ops;
	m->base.max_object_bytes = c->max_bytes;
	m->c = c;
	return m;
}

int kvs_backend_mem(kvs_backend **out, const kvs_mem_options *opts)
{
	kvs_mem_options o = KVS_MEM_OPTIONS_INIT;
	cluster *c;
	pthread_condattr_t ca;
	mem_backend *m;
	int rc;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "kvs_backend_mem: out is NULL");
	*out = NULL;
	if ((rc = KVS__OPTS(&o, opts, mem)) < 0)
		return rc;
	if (o.history > MEM_MAX_HISTORY)
		return kvs_error_set(KVS_EINVAL, "kvs_backend_mem: history %zu over the cap %u",
		                     o.history, MEM_MAX_HISTORY);
	if (!(c = calloc(1, sizeof(*c))))
		return oom("creating cluster", NULL);
	c->max_bytes = o.max_object_bytes ? o.max_object_bytes : MEM_DEFAULT_MAX_BYTES;
	c->page_default = o.list_page_default ? o.list_page_default : MEM_DEFAULT_PAGE;
	c->ring_cap = o.history ? o.history : MEM_DEFAULT_HISTORY;
	if (!(c->ring = calloc(c->ring_cap, sizeof(*c->ring)))) {
		free(c);
		return oom("creating cluster", NULL);
	}
	c->refs = 1;
	c->base_real_ms = real_ms();
	c->base_mono_ms = mono_ms();
	c->uid_seed = (uint64_t)c->base_real_ms ^ ((uint64_t)(uintptr_t)c << 16);
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (!(m = handle_new(c))) {
		cluster_unref(c);
		return oom("creating backend", NULL);
	}
	*out = &m->base;
	return 0;
}

int kvs_backend_mem_clone(kvs_backend **out, kvs_backend *mem)
{
	mem_backend *src = as_mem(mem), *m;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "kvs_backend_mem_clone: out is NULL");
	*out = NULL;
	if (!src)
		return kvs_error_set(KVS_EINVAL, "kvs_backend_mem_clone: not a memory backend");
	if (!(m = handle_new(src->c)))
		return oom("cloning backend", NULL);
	pthread_mutex_lock(&src->c->mu);
	src->c->refs++;
	pthread_mutex_unlock(&src->c->mu);
	*out = &m->base;
	return 0;
}

void kvs_mem_fail_nth(kvs_backend *mem, uint64_t n, int code)
{
	mem_backend *m = as_mem(mem);

	if (!m)
		return;
	pthread_mutex_lock(&m->c->mu);
	m->fail_at = n ? m->ncalls + n : 0;
	m->fail_code = code ? code : KVS_EIO;
	pthread_mutex_unlock(&m->c->mu);
}

void kvs_mem_lose_response_nth(kvs_backend *mem, uint64_t n, int code)
{
	mem_backend *m = as_mem(mem);

	if (!m)
		return;
	pthread_mutex_lock(&m->c->mu);
	m->lose_at = n ? m->ncalls + n : 0;
	m->lose_code = code ? code : KVS_EIO;
	pthread_mutex_unlock(&m->c->mu);
}

void kvs_mem_lose_response_nth_retry(kvs_backend *mem, uint64_t n)
{
	mem_backend *m = as_mem(mem);

	if (!m)
		return;
	pthread_mutex_lock(&m->c->mu);
	m->lose_at = n ? m->ncalls + n : 0;
	m->lose_code = 0;
	pthread_mutex_unlock(&m->c->mu);
}

void kvs_mem_fail_kind(kvs_backend *mem, kvs_mem_call kind, int code)
{
	mem_backend *m = as_mem(mem);

	if (!m || (unsigned)kind >= KVS_MEM_NCALLS)
		return;
	pthread_mutex_lock(&m->c->mu);
	m->kind_code[kind] = code;
	pthread_mutex_unlock(&m->c->mu);
}

void kvs_mem_crash_after(kvs_backend *mem, uint64_t n)
{
	mem_backend *m = as_mem(mem);

	if (!m)
		return;
	pthread_mutex_lock(&m->c->mu);
	m->crash_on = n != 0;
	m->crash_limit = m->ncalls + n;
	pthread_mutex_unlock(&m->c->mu);
}

void kvs_mem_get_stats(kvs_backend *mem, kvs_mem_stats *out)
{
	mem_backend *m = as_mem(mem);

	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (!m)
		return;
	pthread_mutex_lock(&m->c->mu);
	*out = m->stats;
	out->objects = m->c->nobjs;
	out->stored_bytes = m->c->stored_bytes;
	pthread_mutex_unlock(&m->c->mu);
}

void kvs_mem_reset_stats(kvs_backend *mem)
{
	mem_backend *m = as_mem(mem);

	if (!m)
		return;
	pthread_mutex_lock(&m->c->mu);
	memset(&m->stats, 0, sizeof(m->stats));
	pthread_mutex_unlock(&m->c->mu);
}

void kvs_mem_set_hook(kvs_backend *mem, kvs_mem_hook hook, void *ctx)
{
	mem_backend *m = as_mem(mem);

	if (!m)
		return;
	pthread_mutex_lock(&m->c->mu);
	m->hook = hook;
	m->hook_ctx = ctx;
	pthread_mutex_unlock(&m->c->mu);
}

void kvs_mem_advance_clock(kvs_backend *mem, int64_t ms)
{
	mem_backend *m = as_mem(mem);

	if (!m)
		return;
	pthread_mutex_lock(&m->c->mu);
	m->c->offset_ms += ms;
	pthread_mutex_unlock(&m->c->mu);
}

int kvs_mem_corrupt(kvs_backend *mem, const char *name, const char *key, size_t offset)
{
	mem_backend *m = as_mem(mem);
	int rc = 0;

	if (!m || !name || !key)
		return kvs_error_set(KVS_EINVAL, "kvs_mem_corrupt: not a memory backend, or NULL "
		                     "name/key");
	pthread_mutex_lock(&m->c->mu);
	mobj *o = find_obj(m->c, name);
	kvs_blob *d = NULL;
	for (size_t i = 0; o && i < o->o->ndata; i++)
		if (strcmp(o->o->data[i].key, key) == 0)
			d = &o->o->data[i];
	if (!o)
		rc = kvs_error_set(KVS_ENOTFOUND, "kvs_mem_corrupt: configmaps \"%.300s\" not found",
		                   name);
	else if (!d)
		rc = kvs_error_set(KVS_ENOTFOUND, "kvs_mem_corrupt: %.300s has no data key %.200s",
		                   name, key);
	else if (offset >= d->len)
		rc = kvs_error_set(KVS_EINVAL, "kvs_mem_corrupt: offset %zu beyond %.300s[%.200s] "
		                   "(%zu bytes)", offset, name, key, d->len);
	else if ((rc = kvs_object_own_data(o->o)) == 0 &&   /* what others hold stays intact */
	         (rc = kvs_object_share_data(o->o)) == 0) {
		for (size_t i = 0; i < o->o->ndata; i++)
			if (strcmp(o->o->data[i].key, key) == 0)
				o->o->data[i].data[offset] ^= 0x01;
	}
	pthread_mutex_unlock(&m->c->mu);
	return rc;
}

void kvs_mem_compact(kvs_backend *mem)
{
	mem_backend *m = as_mem(mem);

	if (!m)
		return;
	cluster *c = m->c;
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->ring_n; i++) {
		mev *e = &c->ring[(c->ring_head + i) % c->ring_cap];
		mobj_unref(e->cur);
		mobj_unref(e->prev);
	}
	c->ring_head = 0;
	c->ring_n = 0;
	c->floor = c->rev;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}
