/*
 * reflector.c — list, watch from the list's revision, resume, relist on 410
 * (kube/reflector.h says what and why; client-go's Reflector is the model).
 *
 * State: a table of the keys seen, sorted by key (binary search), each with
 * the last version seen, the epoch of the last listing that showed it, and
 * with keep_objects the object. A listing in progress is a page, a position
 * in it and a continue token; after the last page, keys whose epoch is not
 * the listing's are reported gone (the sweep). The resume point is the last
 * resourceVersion seen on the stream (bookmarks included) or the revision
 * of the last listing's first page.
 *
 * Items are consumed as they are handled: an item is freed, moved into the
 * table (keep_objects) or held as the storage of the event returned last.
 */
#include "kube/reflector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvsplit/backend.h"   /* kvs_error_set */

typedef struct rf_ent {
	char *key;
	char rv[KVS__RF_RV_MAX];   /* last version seen */
	uint64_t epoch;            /* last listing that showed it */
	void *obj;                 /* keep_objects: the latest version */
} rf_ent;

struct kvs__reflector {
	const kvs__rf_source_ops *ops;
	void *src;
	const kvs__rf_item_ops *iops;
	char *name, *selector;
	size_t page_limit, max_items;
	int keep;
	int (*want)(void *ctx, const char *key);
	void *want_ctx;
	int backoff_min, backoff_max, backoff_ms;

	void *watch;               /* open stream or NULL */
	char rv[KVS__RF_RV_MAX];   /* resume point */
	int synced;                /* a full listing was reported */
	unsigned gone_streak;      /* KVS_EGONE answers without an event between */

	rf_ent *tab;
	size_t n, cap;

	/* a listing in progress */
	int listing, list_resync, sweeping, have_page;
	uint64_t epoch;
	kvs__rf_page page;
	size_t page_pos, sweep_pos;
	char *token;
	char list_rv[KVS__RF_RV_MAX];

	/* storage of the event returned last, and its redelivery */
	kvs__rf_event last;
	char *ev_key;
	void *ev_item;
	char ev_rv[KVS__RF_RV_MAX];
	int redeliver, redeliver_code;
	char redeliver_detail[1024];
};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static char *dupstr(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p)
		memcpy(p, s, n);
	return p;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int transient(int rc)
{
	return rc == KVS_EIO || rc == KVS_ETIMEOUT || rc == KVS_ENOMEM || rc == KVS_EDENIED;
}

static int rv_num(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s || strlen(s) > 19)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* 1 if both versions are decimal and `ver` is strictly older. */
static int older(const char *ver, const char *seen)
{
	uint64_t a, b;

	return rv_num(ver, &a) == 0 && rv_num(seen, &b) == 0 && a < b;
}

/* 1 if `ver` is the version seen or older: nothing new. */
static int not_newer(const char *ver, const char *seen)
{
	return strcmp(ver, seen) == 0 || older(ver, seen);
}

static void note_rv(kvs__reflector *r, const char *rv)
{
	if (rv && *rv && strlen(rv) < sizeof(r->rv))
		memcpy(r->rv, rv, strlen(rv) + 1);
}

/* ------------------------------------------------------------------------ */
/* The table of keys                                                         */

static size_t tab_pos(const kvs__reflector *r, const char *key, int *found)
{
	size_t lo = 0, hi = r->n;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->tab[mid].key, key);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static rf_ent *tab_find(const kvs__reflector *r, const char *key)
{
	int found;
	size_t i = tab_pos(r, key, &found);

	return found ? &r->tab[i] : NULL;
}

/* Insert a new key (not present): KVS_ENOMEM, or KVS_ETOOBIG over the cap. */
static int tab_insert(kvs__reflector *r, rf_ent **out, const char *key)
{
	int found;
	size_t i = tab_pos(r, key, &found);
	char *k;

	if (r->n >= r->max_items)
		return kvs_error_set(KVS_ETOOBIG, "%s: more than %zu objects", r->name,
		                     r->max_items);
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 16;
		rf_ent *nt = realloc(r->tab, ncap * sizeof(*nt));
		if (!nt)
			return kvs_error_set(KVS_ENOMEM, "%s: out of memory", r->name);
		r->tab = nt;
		r->cap = ncap;
	}
	if (!(k = dupstr(key)))
		return kvs_error_set(KVS_ENOMEM, "%s: out of memory", r->name);
	memmove(&r->tab[i + 1], &r->tab[i], (r->n - i) * sizeof(*r->tab));
	r->n++;
	memset(&r->tab[i], 0, sizeof(r->tab[i]));
	r->tab[i].key = k;
	*out = &r->tab[i];
	return 0;
}

/* Remove an entry; its key string and object go to the caller. */
static void tab_remove(kvs__reflector *r, rf_ent *e)
{
	size_t i = (size_t)(e - r->tab);

	memmove(&r->tab[i], &r->tab[i + 1], (r->n - i - 1) * sizeof(*r->tab));
	r->n--;
}

/* ------------------------------------------------------------------------ */
/* Items → events                                                            */

static void clear_event(kvs__reflector *r)
{
	free(r->ev_key);
	r->ev_key = NULL;
	if (r->ev_item)
		r->iops->free(r->ev_item);
	r->ev_item = NULL;
	memset(&r->last, 0, sizeof(r->last));
}

/* An item's key and version within the caps; else KVS_ECORRUPT. */
static int check_item(const kvs__reflector *r, const void *item)
{
	const char *key = r->iops->key(item), *rv = r->iops->rv(item);
	size_t kl = strnlen(key, KVS__RF_KEY_MAX + 1);

	if (kl == 0 || kl > KVS__RF_KEY_MAX)
		return kvs_error_set(KVS_ECORRUPT, "%s: an object's key is empty or over %u bytes",
		                     r->name, KVS__RF_KEY_MAX);
	if (strnlen(rv, KVS__RF_RV_MAX) >= KVS__RF_RV_MAX)
		return kvs_error_set(KVS_ECORRUPT, "%s: object \"%.200s\": resourceVersion is over "
		                     "%d characters", r->name, key, KVS__RF_RV_MAX - 1);
	return 0;
}

static void set_out(kvs__reflector *r, kvs__rf_event *out, kvs__rf_type type,
                    const char *key, const char *rv, void *item, int resync)
{
	if (rv != r->ev_rv)
		snprintf(r->ev_rv, sizeof(r->ev_rv), "%s", rv);
	out->type = type;
	out->key = key;
	out->rv = r->ev_rv;
	out->item = item;
	out->resync = resync;
}

/*
 * A present item (listed, ADDED or MODIFIED). 1 = event in *out, 0 =
 * nothing new; < 0 = error. The item is consumed except when a transient
 * error (out of memory) is returned.
 */
static int on_present(kvs__reflector *r, kvs__rf_event *out, void *item, int resync)
{
	const char *key, *rv;
	rf_ent *e;
	kvs__rf_type type = KVS__RF_MODIFIED;
	int rc;

	if ((rc = check_item(r, item)) < 0) {
		r->iops->free(item);
		return rc;
	}
	key = r->iops->key(item);
	rv = r->iops->rv(item);
	if (r->want && !r->want(r->want_ctx, key)) {
		r->iops->free(item);
		return 0;
	}
	if ((e = tab_find(r, key))) {
		e->epoch = r->epoch;
		if (not_newer(rv, e->rv)) {
			r->iops->free(item);
			return 0;
		}
	} else {
		if ((rc = tab_insert(r, &e, key)) < 0) {
			if (rc != KVS_ENOMEM)
				r->iops->free(item);
			return rc;
		}
		e->epoch = r->epoch;
		type = KVS__RF_ADDED;
	}
	snprintf(e->rv, sizeof(e->rv), "%s", rv);
	if (r->keep) {
		if (e->obj)
			r->iops->free(e->obj);
		e->obj = item;
	} else {
		r->ev_item = item;
	}
	set_out(r, out, type, e->key, e->rv, item, resync);
	return 1;
}

/* A DELETED event from the stream; same conventions as on_present. */
static int on_deleted(kvs__reflector *r, kvs__rf_event *out, void *item)
{
	const char *key, *rv;
	rf_ent *e;
	int rc;

	if ((rc = check_item(r, item)) < 0) {
		r->iops->free(item);
		return rc;
	}
	key = r->iops->key(item);
	rv = r->iops->rv(item);
	if (r->want && !r->want(r->want_ctx, key)) {
		r->iops->free(item);
		return 0;
	}
	if ((e = tab_find(r, key))) {
		/* A deletion carries its own (newer) revision, never the one
		 * seen: only an older one is a replay of history. */
		if (older(rv, e->rv)) {
			r->iops->free(item);
			return 0;
		}
		free(e->key);
		if (e->obj)
			r->iops->free(e->obj);
		tab_remove(r, e);
	} else if (r->synced) {
		/* never seen, and the picture is complete: not ours to report */
		r->iops->free(item);
		return 0;
	}
	r->ev_item = item;
	set_out(r, out, KVS__RF_DELETED, r->iops->key(item), rv, item, 0);
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Listing                                                                   */

static void page_free(kvs__reflector *r)
{
	for (size_t i = 0; i < r->page.count; i++)
		if (r->page.items[i])
			r->iops->free(r->page.items[i]);
	free(r->page.items);
	free(r->page.next);
	free(r->page.rv);
	memset(&r->page, 0, sizeof(r->page));
	r->have_page = 0;
	r->page_pos = 0;
}

static void list_reset(kvs__reflector *r)
{
	page_free(r);
	free(r->token);
	r->token = NULL;
	r->sweeping = 0;
	r->sweep_pos = 0;
	r->list_rv[0] = '\0';
}

static void start_listing(kvs__reflector *r, int resync)
{
	if (r->watch) {
		r->ops->watch_close(r->watch);
		r->watch = NULL;
	}
	list_reset(r);
	r->listing = 1;
	r->list_resync = resync;
	r->epoch++;
}

static int load_page(kvs__reflector *r)
{
	kvs__rf_page pg;
	int rc;

	memset(&pg, 0, sizeof(pg));
	if ((rc = r->ops->list(r->src, &pg, r->selector, r->page_limit, r->token)) < 0)
		return rc;
	page_free(r);
	r->page = pg;
	r->have_page = 1;
	if (!r->list_rv[0] && pg.rv && *pg.rv) {
		if (strlen(pg.rv) >= sizeof(r->list_rv)) {
			page_free(r);
			return kvs_error_set(KVS_ECORRUPT, "%s: list resourceVersion is over %d "
			                     "characters", r->name, KVS__RF_RV_MAX - 1);
		}
		memcpy(r->list_rv, pg.rv, strlen(pg.rv) + 1);
	}
	free(r->token);
	r->token = NULL;
	if (pg.next && *pg.next) {
		r->token = pg.next;
		r->page.next = NULL;
	}
	return 0;
}

/* One step of a listing: 1 = event, 0 = listing finished, < 0 = error. */
static int list_step(kvs__reflector *r, kvs__rf_event *out)
{
	int rc;

	while (!r->sweeping) {
		if (!r->have_page && (rc = load_page(r)) < 0)
			return rc;
		while (r->page_pos < r->page.count) {
			void *item = r->page.items[r->page_pos];
			if (!item) {
				r->page_pos++;
				continue;
			}
			rc = on_present(r, out, item, r->list_resync);
			if (rc == KVS_ENOMEM)
				return rc;    /* the item stays: handled again */
			r->page.items[r->page_pos++] = NULL;
			if (rc != 0)
				return rc;
		}
		if (!r->token) {
			r->sweeping = 1;
			r->sweep_pos = 0;
			break;
		}
		page_free(r);
	}
	/* keys this listing did not show are gone */
	while (r->sweep_pos < r->n) {
		rf_ent *e = &r->tab[r->sweep_pos];
		if (e->epoch != r->epoch) {
			r->ev_key = e->key;
			r->ev_item = e->obj;
			snprintf(r->ev_rv, sizeof(r->ev_rv), "%s", e->rv);
			tab_remove(r, e);
			set_out(r, out, KVS__RF_DELETED, r->ev_key, r->ev_rv, r->ev_item,
			        r->list_resync);
			return 1;
		}
		r->sweep_pos++;
	}
	if (!r->list_rv[0] && !r->rv[0]) {
		list_reset(r);
		r->epoch++;
		return kvs_error_set(KVS_ECORRUPT, "%s: the list carried no resourceVersion to "
		                     "watch from", r->name);
	}
	note_rv(r, r->list_rv);
	list_reset(r);
	r->listing = 0;
	r->synced = 1;
	return 0;
}

/* ------------------------------------------------------------------------ */

int kvs__reflector_open(kvs__reflector **out, const kvs__rf_source_ops *ops, void *src,
                        const kvs__rf_item_ops *iops, const kvs__reflector_options *opts)
{
	kvs__reflector_options o = KVS__REFLECTOR_OPTIONS_INIT;
	kvs__reflector *r;
	int rc;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "kvs__reflector_open: out is NULL");
	*out = NULL;
	if (!ops || !iops || !ops->list || !ops->watch_open || !ops->watch_next ||
	    !ops->watch_close || !iops->key || !iops->rv || !iops->free)
		return kvs_error_set(KVS_EINVAL, "kvs__reflector_open: incomplete source or item ops");
	if (ops->version < 1 || ops->version > KVS__RF_SOURCE_OPS_VERSION)
		return kvs_error_set(KVS_EINVAL, "reflector source ops version %u is not supported",
		                     ops->version);
	if (opts) {
		if (opts->version < 1 || opts->version > KVS__REFLECTOR_OPTIONS_VERSION)
			return kvs_error_set(KVS_EINVAL, "reflector options version %u is not "
			                     "supported", opts->version);
		o = *opts;
	}
	if (o.since && (!*o.since || strlen(o.since) >= KVS__RF_RV_MAX))
		return kvs_error_set(KVS_EINVAL, "reflector: since must be a version (1..%d "
		                     "characters)", KVS__RF_RV_MAX - 1);
	if (o.backoff_min_ms < 0 || o.backoff_max_ms < 0)
		return kvs_error_set(KVS_EINVAL, "reflector: negative backoff");
	if (!(r = calloc(1, sizeof(*r))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	r->name = dupstr(o.name ? o.name : "reflector");
	r->selector = o.selector ? dupstr(o.selector) : NULL;
	if (!r->name || (o.selector && !r->selector)) {
		kvs__reflector_close(r);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	r->ops = ops;
	r->src = src;
	r->iops = iops;
	r->page_limit = o.page_limit;
	r->keep = !!o.keep_objects;
	r->want = o.want;
	r->want_ctx = o.want_ctx;
	r->max_items = o.max_items ? o.max_items : KVS__RF_DEF_MAX_ITEMS;
	r->backoff_min = o.backoff_min_ms ? o.backoff_min_ms : KVS__RF_DEF_BACKOFF_MIN_MS;
	r->backoff_max = o.backoff_max_ms ? o.backoff_max_ms : KVS__RF_DEF_BACKOFF_MAX_MS;
	if (r->backoff_max < r->backoff_min)
		r->backoff_max = r->backoff_min;
	r->backoff_ms = r->backoff_min;
	if (o.since) {
		note_rv(r, o.since);
	} else {
		start_listing(r, 0);
		if ((rc = load_page(r)) < 0) {
			kvs__reflector_close(r);
			return rc;
		}
	}
	*out = r;
	return 0;
}

void kvs__reflector_close(kvs__reflector *r)
{
	if (!r)
		return;
	if (r->watch)
		r->ops->watch_close(r->watch);
	list_reset(r);
	clear_event(r);
	for (size_t i = 0; i < r->n; i++) {
		free(r->tab[i].key);
		if (r->tab[i].obj)
			r->iops->free(r->tab[i].obj);
	}
	free(r->tab);
	free(r->name);
	free(r->selector);
	free(r);
}

void kvs__reflector_redeliver(kvs__reflector *r, int code)
{
	if (!r || !r->last.type)
		return;
	r->redeliver = 1;
	r->redeliver_code = code < 0 ? code : KVS_EIO;
	snprintf(r->redeliver_detail, sizeof(r->redeliver_detail), "%s", kvs_error_last());
}

/* Wait one backoff step inside the deadline: 0 after waiting, -1 when the
 * deadline leaves no room (nothing waited). */
static int backoff_wait(kvs__reflector *r, int timeout_ms, int64_t deadline)
{
	int wait = r->backoff_ms;

	if (timeout_ms >= 0) {
		int64_t l = timeout_ms > 0 ? deadline - mono_ms() : 0;
		if (l <= 0)
			return -1;
		if (wait > l)
			wait = (int)l;
	}
	sleep_ms(wait);
	r->backoff_ms = r->backoff_ms > r->backoff_max / 2 ? r->backoff_max : r->backoff_ms * 2;
	return 0;
}

/* Handle one stream event; 1 = event, 0 = nothing, < 0 = error. */
static int on_stream_event(kvs__reflector *r, kvs__rf_event *out, kvs__rf_wevent *ev)
{
	char rv[KVS__RF_RV_MAX];
	int rc;

	if (ev->type == KVS__RF_BOOKMARK || !ev->item) {
		if (ev->item)
			r->iops->free(ev->item);
		ev->rv[sizeof(ev->rv) - 1] = '\0';
		note_rv(r, ev->rv);
		return 0;
	}
	snprintf(rv, sizeof(rv), "%s", r->iops->rv(ev->item));
	switch (ev->type) {
	case KVS__RF_ADDED:
	case KVS__RF_MODIFIED:
		rc = on_present(r, out, ev->item, 0);
		break;
	case KVS__RF_DELETED:
		rc = on_deleted(r, out, ev->item);
		break;
	case KVS__RF_BOOKMARK:
	default:
		r->iops->free(ev->item);
		return 0;
	}
	if (rc == KVS_ENOMEM) {
		/* not handled: reopen from before it, so it comes again */
		r->iops->free(ev->item);
		return rc;
	}
	note_rv(r, rv);
	return rc;
}

int kvs__reflector_next(kvs__rf_event *out, kvs__reflector *r, int timeout_ms)
{
	int64_t deadline = 0;
	int rc;

	if (!out || !r)
		return kvs_error_set(KVS_EINVAL, "kvs__reflector_next: out or reflector is NULL");
	memset(out, 0, sizeof(*out));
	if (timeout_ms > 0)
		deadline = mono_ms() + timeout_ms;

	if (r->redeliver) {
		if (backoff_wait(r, timeout_ms, deadline) < 0)
			return kvs_error_set(r->redeliver_code, "%s", r->redeliver_detail);
		r->redeliver = 0;
		*out = r->last;
		return 0;
	}
	clear_event(r);

	for (;;) {
		int left = -1;
		if (timeout_ms >= 0) {
			int64_t l = timeout_ms > 0 ? deadline - mono_ms() : 0;
			left = l < 0 ? 0 : (int)l;
		}

		if (r->listing) {
			rc = list_step(r, out);
			if (rc == 1) {
				r->backoff_ms = r->backoff_min;
				r->last = *out;
				return 0;
			}
			if (rc == 0)
				continue;
			if (transient(rc))
				goto retry;   /* the same page or item again */
			if (rc == KVS_EGONE) {
				/* the continue token expired: list from the start */
				start_listing(r, r->list_resync);
				goto retry;
			}
			return rc;
		}
		if (!r->watch) {
			rc = r->ops->watch_open(r->src, &r->watch, r->selector, r->rv);
			if (rc < 0) {
				r->watch = NULL;
				if (rc == KVS_EGONE) {
					start_listing(r, 1);
					if (r->gone_streak++ == 0)
						continue;
				}
				if (transient(rc) || rc == KVS_EGONE)
					goto retry;
				return rc;
			}
		}

		kvs__rf_wevent ev;
		memset(&ev, 0, sizeof(ev));
		rc = r->ops->watch_next(r->watch, &ev, left);
		if (rc == KVS_ETIMEOUT) {
			if (ev.item)
				r->iops->free(ev.item);
			return kvs_error_set(KVS_ETIMEOUT, "%s: no change within %d ms", r->name,
			                     timeout_ms);
		}
		if (rc < 0) {
			if (ev.item)
				r->iops->free(ev.item);
			r->ops->watch_close(r->watch);
			r->watch = NULL;
			if (rc == KVS_EGONE) {
				start_listing(r, 1);
				if (r->gone_streak++ == 0)
					continue;
				goto retry;
			}
			if (transient(rc))
				goto retry;   /* reopen from the last revision seen */
			return rc;
		}
		r->backoff_ms = r->backoff_min;
		r->gone_streak = 0;
		rc = on_stream_event(r, out, &ev);
		if (rc == 1) {
			r->last = *out;
			return 0;
		}
		if (rc == KVS_ENOMEM) {
			r->ops->watch_close(r->watch);
			r->watch = NULL;
			goto retry;
		}
		if (rc < 0)
			return rc;
		continue;

retry:
		/* a transient failure: back off within the caller's deadline */
		{
			char detail[1024];
			snprintf(detail, sizeof(detail), "%s", kvs_error_last());
			if (backoff_wait(r, timeout_ms, deadline) < 0)
				return kvs_error_set(rc, "%s: %s", r->name, detail);
		}
	}
}

int kvs__reflector_get(const kvs__reflector *r, const char *key, const char **rv, void **item)
{
	const rf_ent *e = r && key ? tab_find(r, key) : NULL;

	if (rv)
		*rv = e ? e->rv : NULL;
	if (item)
		*item = e ? e->obj : NULL;
	return e != NULL;
}

size_t kvs__reflector_count(const kvs__reflector *r)
{
	return r ? r->n : 0;
}

void kvs__reflector_at(const kvs__reflector *r, size_t i, const char **key, const char **rv,
                       void **item)
{
	const rf_ent *e = r && i < r->n ? &r->tab[i] : NULL;

	if (key)
		*key = e ? e->key : NULL;
	if (rv)
		*rv = e ? e->rv : NULL;
	if (item)
		*item = e ? e->obj : NULL;
}

int kvs__reflector_synced(const kvs__reflector *r)
{
	return r && r->synced;
}

const char *kvs__reflector_rv(const kvs__reflector *r)
{
	return r ? r->rv : "";
}
