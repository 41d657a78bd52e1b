/*
 * watch.c — watches on keys (docs/design.md "Watches keep working").
 *
 * Every commit replaces a key's index object, so a backend watch on the
 * store's index objects (label selector) sees every committed change. This
 * file turns that stream into events on keys:
 *
 *  - the key comes from the decoded manifest (never from annotations); for a
 *    single key, or a prefix whose escaped form is a name prefix, objects
 *    that cannot match are skipped by name without decoding;
 *  - the only state kept per watched key is its index name, its key and the
 *    last version delivered (bounded memory);
 *  - a dropped stream (KVS_EIO) is reopened from the last resourceVersion
 *    seen, bookmarks included; compacted history (KVS_EGONE) triggers a
 *    relist that reports, marked resync, a PUT for every key whose version
 *    differs from the one last delivered and a DELETE for every key that
 *    disappeared, so the final state of every key is always delivered;
 *  - with KVS_WATCH_VALUES the whole value is read and verified through the
 *    store's segment cache (only segments not already held are fetched); a
 *    value that fails verification is an error naming the key, and the next
 *    call goes on with the next change.
 *
 * Versions are opaque, but a backend's resourceVersions come from one
 * revision counter: when two are both decimal, a smaller one is older. That
 * order is used only to drop replays older than what was delivered (a list
 * served across pages from newer states, then a watch from the first page).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gc.h"
#include "options.h"

#define WATCH_LIST_PAGE KVS__GC_INDEX_PAGE /* whole manifests: keep pages small */
#define WATCH_BACKOFF_MIN_MS 10
#define WATCH_BACKOFF_MAX_MS 1000

typedef struct known {
	char *name;              /* index object name (sorted by it) */
	char *key;
	kvs_ver ver;             /* last version delivered */
	uint64_t epoch;          /* last relist that saw it */
} known;

struct kvs_watch {
	kvs_store *s;
	char *key;               /* key, or prefix */
	size_t key_len;
	int prefix, values;
	kvs_get_options gopts;   /* how values are read: max_bytes of the watch */
	char sel[KVS__NAME_BUF];
	char iprefix[KVS__NAME_BUF];   /* "kvs.<store>.i-" */
	char name_filter[KVS__NAME_BUF]; /* exact index name (single key) or escaped prefix, "" = none */
	int name_exact;

	kvs_backend_watch *bw;
	char rv[KVS_VER_MAX];    /* last resourceVersion seen */
	int complete;            /* known[] reflects a full listing */
	int backoff_ms;

	known *tab;
	size_t n, cap;

	/* a relist in progress */
	int listing, list_resync, sweeping;
	uint64_t epoch;
	kvs_object_list *page;
	size_t page_pos, sweep_pos;
	char *token;
	char list_rv[KVS_VER_MAX];

	/* a stream event whose handling failed transiently: retried first */
	kvs_event pending;
	int has_pending;

	/* storage of the event returned last */
	char *ev_key;
	uint8_t *ev_value;
};

/* ------------------------------------------------------------------------ */
/* The table of known keys                                                   */

static size_t tab_pos(const kvs_watch *w, const char *name, int *found)
{
	size_t lo = 0, hi = w->n;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(w->tab[mid].name, name);
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

static known *tab_find(const kvs_watch *w, const char *name)
{
	int found;
	size_t i = tab_pos(w, name, &found);

	return found ? &w->tab[i] : NULL;
}

static void tab_remove(kvs_watch *w, known *k)
{
	size_t i = (size_t)(k - w->tab);

	free(k->name);
	free(k->key);
	memmove(&w->tab[i], &w->tab[i + 1], (w->n - i - 1) * sizeof(*w->tab));
	w->n--;
}

static char *dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static int tab_set(kvs_watch *w, const char *name, const char *key, const char *ver)
{
	int found;
	size_t i = tab_pos(w, name, &found);
	known *k;

	if (!found) {
		if (w->n == w->cap) {
			size_t ncap = w->cap ? w->cap * 2 : 16;
			known *nt = realloc(w->tab, ncap * sizeof(*nt));
			if (!nt)
				return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
			w->tab = nt;
			w->cap = ncap;
		}
		char *nname = dupn(name, strlen(name)), *nkey = dupn(key, strlen(key));
		if (!nname || !nkey) {
			free(nname);
			free(nkey);
			return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
		}
		memmove(&w->tab[i + 1], &w->tab[i], (w->n - i) * sizeof(*w->tab));
		w->n++;
		k = &w->tab[i];
		memset(k, 0, sizeof(*k));
		k->name = nname;
		k->key = nkey;
	}
	k = &w->tab[i];
	snprintf(k->ver.str, sizeof(k->ver.str), "%s", ver);
	k->epoch = w->epoch;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Versions                                                                  */

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

/* 1 if `ver` is the delivered version or (both decimal) older than it. */
static int not_newer(const char *ver, const char *delivered)
{
	uint64_t a, b;

	if (strcmp(ver, delivered) == 0)
		return 1;
	return rv_num(ver, &a) == 0 && rv_num(delivered, &b) == 0 && a < b;
}

/* 1 if both versions are decimal and `ver` is strictly older. A deletion
 * carries the revision of the delete itself, which is never the delivered
 * one, so equality must not drop it. */
static int older(const char *ver, const char *delivered)
{
	uint64_t a, b;

	return rv_num(ver, &a) == 0 && rv_num(delivered, &b) == 0 && a < b;
}

static void note_rv(kvs_watch *w, const char *rv)
{
	if (rv && *rv && strlen(rv) < sizeof(w->rv))
		snprintf(w->rv, sizeof(w->rv), "%s", rv);
}

/* ------------------------------------------------------------------------ */
/* Objects → events                                                          */

/* 0 = the name cannot belong to a watched key; 1 = it may. */
static int name_may_match(const kvs_watch *w, const char *name)
{
	if (!w->name_filter[0])
		return 1;
	if (w->name_exact)
		return strcmp(name, w->name_filter) == 0;
	/* hashed names ("h-") give nothing away: decode those */
	if (strncmp(name, w->iprefix, strlen(w->iprefix)) != 0)
		return 1;
	return strncmp(name, w->name_filter, strlen(w->name_filter)) == 0;
}

static int key_matches(const kvs_watch *w, const char *key, size_t len)
{
	if (w->prefix)
		return len >= w->key_len && memcmp(key, w->key, w->key_len) == 0;
	return len == w->key_len && memcmp(key, w->key, len) == 0;
}

static int transient(int rc)
{
	return rc == KVS_EIO || rc == KVS_ETIMEOUT || rc == KVS_ENOMEM || rc == KVS_EDENIED;
}

static int emit_delete(kvs_watch *w, kvs_watch_event *out, known *k, int resync)
{
	w->ev_key = k->key;
	k->key = NULL;
	tab_remove(w, k);
	memset(out, 0, sizeof(*out));
	out->kind = KVS_WATCH_DELETE;
	out->key = w->ev_key;
	out->resync = resync;
	return 1;
}

/*
 * A deleted index object. Only keys we told the caller about are reported,
 * unless the watch started from `since` without a full picture, where the
 * object's last state says whose key it was.
 */
static int on_deleted(kvs_watch *w, kvs_watch_event *out, const kvs_object *obj, int resync)
{
	known *k = tab_find(w, obj->name);
	kvs__manifest m;

	if (k) {
		/* a replay from before the version delivered (a listing whose
		 * later pages came from newer states): history, drop it */
		if (older(obj->resource_version, k->ver.str))
			return 0;
		return emit_delete(w, out, k, resync);
	}
	if (w->complete || !name_may_match(w, obj->name))
		return 0;
	if (kvs__index_decode(&m, w->s, obj, NULL, 0) < 0 || !key_matches(w, m.key, m.key_len)) {
		kvs__manifest_clear(&m);
		return 0;
	}
	w->ev_key = m.key;
	m.key = NULL;
	kvs__manifest_clear(&m);
	memset(out, 0, sizeof(*out));
	out->kind = KVS_WATCH_DELETE;
	out->key = w->ev_key;
	out->resync = resync;
	return 1;
}

/*
 * A present index object (added, modified, or seen in a relist).
 * 1 = event in *out, 0 = nothing for the caller, < 0 = error (transient
 * ones leave no trace, so the same object can be handled again).
 */
static int on_present(kvs_watch *w, kvs_watch_event *out, const kvs_object *obj, int resync)
{
	known *k;
	kvs__manifest m;
	char what[KVS_KEY_MAX + 64], keyguess[KVS_KEY_MAX + 1];
	uint8_t *val = NULL;
	int rc;

	if (!name_may_match(w, obj->name))
		return 0;
	k = tab_find(w, obj->name);
	if (k) {
		k->epoch = w->epoch;
		if (not_newer(obj->resource_version, k->ver.str))
			return 0;
	}
	rc = kvs__index_load(&m, w->s, obj, NULL, 0, NULL);
	if (rc < 0) {
		char detail[1024];
		if (transient(rc)) {
			kvs__manifest_clear(&m);
			return rc;
		}
		/* Ours only if the name says so; then remember the bad version
		 * so it is reported once, and go on. */
		kvs__manifest_clear(&m);
		if (k) {
			snprintf(keyguess, sizeof(keyguess), "%s", k->key);
		} else if (!(w->name_exact ||
		             (kvs__index_name_key(keyguess, sizeof(keyguess), w->s->name, obj->name) == 0 &&
		              key_matches(w, keyguess, strlen(keyguess))))) {
			return 0;
		} else if (w->name_exact) {
			snprintf(keyguess, sizeof(keyguess), "%s", w->key);
		}
		snprintf(detail, sizeof(detail), "%s", kvs_error_last());
		if (tab_set(w, obj->name, keyguess, obj->resource_version) < 0)
			return KVS_ENOMEM;
		return kvs_error_set(rc, "watch: key \"%.200s\" version %s: %s", keyguess,
		                     obj->resource_version, detail);
	}
	if (!key_matches(w, m.key, m.key_len)) {
		kvs__manifest_clear(&m);
		return 0;
	}
	if (w->values) {
		snprintf(what, sizeof(what), "watch: key \"%.200s\" version %s", m.key,
		         obj->resource_version);
		rc = kvs__value_read_buf(&val, w->s, &m, what, &w->gopts, NULL);
		if (rc < 0) {
			if (!transient(rc) && tab_set(w, obj->name, m.key, obj->resource_version) < 0)
				rc = KVS_ENOMEM;
			kvs__manifest_clear(&m);
			return rc;
		}
	}
	if ((rc = tab_set(w, obj->name, m.key, obj->resource_version)) < 0) {
		free(val);
		kvs__manifest_clear(&m);
		return rc;
	}
	memset(out, 0, sizeof(*out));
	out->kind = KVS_WATCH_PUT;
	w->ev_key = m.key;
	m.key = NULL;
	out->key = w->ev_key;
	snprintf(out->version.str, sizeof(out->version.str), "%s", obj->resource_version);
	out->generation = m.generation;
	out->length = m.length;
	if (w->values) {
		w->ev_value = val;
		out->value = val;
		out->value_len = (size_t)m.length;
	}
	out->resync = resync;
	kvs__manifest_clear(&m);
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Listing: the initial state, and resync after a gap                        */

static void list_reset(kvs_watch *w)
{
	kvs_object_list_free(w->page);
	w->page = NULL;
	free(w->token);
	w->token = NULL;
	w->page_pos = 0;
	w->sweep_pos = 0;
	w->sweeping = 0;
	w->list_rv[0] = '\0';
}

static void start_listing(kvs_watch *w, int resync)
{
	if (w->bw) {
		w->s->be->ops->watch_close(w->bw);
		w->bw = NULL;
	}
	list_reset(w);
	w->listing = 1;
	w->list_resync = resync;
	w->epoch++;
}

/* Load the next page; for a single key, the listing is one GET after a
 * one-item list that gives the revision to watch from. */
static int load_page(kvs_watch *w)
{
	kvs_object_list *l = NULL;
	int first = w->list_rv[0] == '\0';
	int rc;

	if (w->name_exact) {
		kvs_object *obj = NULL;
		if ((rc = w->s->be->ops->list(w->s->be, &l, w->sel, 1, NULL,
		                              KVS_LIST_METADATA_ONLY)) < 0)
			return rc;
		if (l->resource_version)
			snprintf(w->list_rv, sizeof(w->list_rv), "%s", l->resource_version);
		for (size_t i = 0; i < l->count; i++)
			kvs_object_free(l->items[i]);
		l->count = 0;
		free(l->next);
		l->next = NULL;
		rc = w->s->be->ops->get(w->s->be, &obj, w->name_filter);
		if (rc == 0) {
			kvs_object **items = realloc(l->items, sizeof(*items));
			if (!items) {
				kvs_object_free(obj);
				kvs_object_list_free(l);
				return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
			}
			l->items = items;
			l->items[l->count++] = obj;
		} else if (rc != KVS_ENOTFOUND) {
			kvs_object_list_free(l);
			return rc;
		}
	} else {
		if ((rc = w->s->be->ops->list(w->s->be, &l, w->sel, WATCH_LIST_PAGE, w->token, 0)) < 0)
			return rc;
		if (first && l->resource_version)
			snprintf(w->list_rv, sizeof(w->list_rv), "%s", l->resource_version);
	}
	free(w->token);
	w->token = NULL;
	if (l->next && !(w->token = dupn(l->next, strlen(l->next)))) {
		kvs_object_list_free(l);
		return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
	}
	kvs_object_list_free(w->page);
	w->page = l;
	w->page_pos = 0;
	return 0;
}

/* One step of a listing: 1 = event, 0 = listing finished, < 0 = error. */
static int list_step(kvs_watch *w, kvs_watch_event *out)
{
	int rc;

	while (!w->sweeping) {
		if (!w->page) {
			if ((rc = load_page(w)) < 0)
				return rc;
		}
		while (w->page_pos < w->page->count) {
			rc = on_present(w, out, w->page->items[w->page_pos], w->list_resync);
			if (rc < 0 && transient(rc))
				return rc;
			w->page_pos++;
			if (rc != 0)
				return rc;
		}
		if (!w->token) {
			w->sweeping = 1;
			w->sweep_pos = 0;
			break;
		}
		kvs_object_list_free(w->page);
		w->page = NULL;
	}
	/* keys not seen by this listing are gone */
	while (w->sweep_pos < w->n) {
		known *k = &w->tab[w->sweep_pos];
		if (k->epoch != w->epoch)
			return emit_delete(w, out, k, w->list_resync);
		w->sweep_pos++;
	}
	note_rv(w, w->list_rv);
	list_reset(w);
	w->listing = 0;
	w->complete = 1;
	return 0;
}

/* ------------------------------------------------------------------------ */

static int64_t mono_ms(void)
{
	return kvs__mono_ms();
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void free_event_storage(kvs_watch *w)
{
	free(w->ev_key);
	free(w->ev_value);
	w->ev_key = NULL;
	w->ev_value = NULL;
}

int kvs_watch_open(kvs_watch **out, kvs_store *s, const char *key,
                   const kvs_watch_options *opts)
{
	kvs_watch_options o = KVS_WATCH_OPTIONS_INIT;
	kvs_watch *w;
	size_t len;
	int rc;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "kvs_watch_open: out is NULL");
	*out = NULL;
	if (!s || !key)
		return kvs_error_set(KVS_EINVAL, "kvs_watch_open: store or key is NULL");
	if ((rc = KVS__OPTS(&o, opts, watch)) < 0)
		return rc;
	if (!o.max_bytes)
		o.max_bytes = KVS_WATCH_MAX_BYTES_DEFAULT;
	if (o.flags & ~(KVS_WATCH_PREFIX | KVS_WATCH_VALUES))
		return kvs_error_set(KVS_EINVAL, "kvs_watch_open: unknown flags 0x%x", o.flags);
	if (!s->be->ops->watch_open || !s->be->ops->watch_next || !s->be->ops->watch_close)
		return kvs_error_set(KVS_EUNSUPPORTED, "kvs_watch_open: backend %s cannot watch",
		                     s->be->ops->name);
	len = strnlen(key, KVS_KEY_MAX + 1);
	if (len > KVS_KEY_MAX)
		return kvs_error_set(KVS_EINVAL, "kvs_watch_open: key is over %d bytes", KVS_KEY_MAX);
	if (!(o.flags & KVS_WATCH_PREFIX) || len > 0) {
		if ((rc = kvs__key_check(key, len)) < 0)
			return rc;
	}
	if (o.since && (!*o.since || strlen(o.since) >= KVS_VER_MAX))
		return kvs_error_set(KVS_EINVAL, "kvs_watch_open: since must be a version (1..%d "
		                     "characters)", KVS_VER_MAX - 1);
	if (!(w = calloc(1, sizeof(*w))) || !(w->key = dupn(key, len))) {
		free(w);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	w->s = s;
	w->key_len = len;
	w->prefix = !!(o.flags & KVS_WATCH_PREFIX);
	w->values = !!(o.flags & KVS_WATCH_VALUES);
	w->gopts = (kvs_get_options)KVS_GET_OPTIONS_INIT;
	w->gopts.max_bytes = o.max_bytes;
	kvs__selector(w->sel, s->name, KVS__ROLE_INDEX);
	snprintf(w->iprefix, sizeof(w->iprefix), "kvs.%s.i-", s->name);
	if (len) {
		kvs__index_name(w->name_filter, s->name, key, len);
		w->name_exact = !w->prefix;
		/* a prefix whose escaped form is hashed cannot filter by name */
		if (w->prefix && strncmp(w->name_filter, w->iprefix, strlen(w->iprefix)) != 0)
			w->name_filter[0] = '\0';
	}
	w->backoff_ms = WATCH_BACKOFF_MIN_MS;
	if (o.since) {
		snprintf(w->rv, sizeof(w->rv), "%s", o.since);
	} else {
		/* The watch starts now: the first page (for a single key, the
		 * whole state) is read before returning; later pages may be served
		 * from newer states, which the version order absorbs. */
		start_listing(w, 0);
		if ((rc = load_page(w)) < 0) {
			kvs_watch_close(w);
			return rc;
		}
	}
	*out = w;
	return 0;
}

void kvs_watch_close(kvs_watch *w)
{
	if (!w)
		return;
	if (w->bw)
		w->s->be->ops->watch_close(w->bw);
	if (w->has_pending)
		kvs_event_clear(&w->pending);
	list_reset(w);
	for (size_t i = 0; i < w->n; i++) {
		free(w->tab[i].name);
		free(w->tab[i].key);
	}
	free(w->tab);
	free_event_storage(w);
	free(w->key);
	free(w);
}

/* Handle one stream event; same return convention as on_present. */
static int on_event(kvs_watch *w, kvs_watch_event *out, const kvs_event *ev)
{
	switch (ev->type) {
	case KVS_EVENT_ADDED:
	case KVS_EVENT_MODIFIED:
		return on_present(w, out, ev->object, 0);
	case KVS_EVENT_DELETED:
		return on_deleted(w, out, ev->object, 0);
	case KVS_EVENT_BOOKMARK:
		return 0;
	}
	return 0;
}

int kvs_watch_next(kvs_watch_event *out, kvs_watch *w, int timeout_ms)
{
	int64_t deadline = 0;
	int rc;

	if (!out || !w)
		return kvs_error_set(KVS_EINVAL, "kvs_watch_next: out or watch is NULL");
	memset(out, 0, sizeof(*out));
	free_event_storage(w);
	if (timeout_ms > 0)
		deadline = mono_ms() + timeout_ms;

	for (;;) {
		int left = -1;
		if (timeout_ms >= 0) {
			int64_t l = timeout_ms > 0 ? deadline - mono_ms() : 0;
			left = l < 0 ? 0 : (int)l;
		}

		if (w->has_pending) {
			rc = on_event(w, out, &w->pending);
			if (rc < 0 && transient(rc))
				goto retry;
			kvs_event_clear(&w->pending);
			w->has_pending = 0;
			if (rc != 0)
				return rc < 0 ? rc : 0;
			continue;
		}
		if (w->listing) {
			rc = list_step(w, out);
			if (rc == 1) {
				w->backoff_ms = WATCH_BACKOFF_MIN_MS;
				return 0;
			}
			if (rc < 0 && transient(rc)) {
				/* start the listing over: what it delivered is remembered */
				start_listing(w, w->list_resync);
				goto retry;
			}
			if (rc < 0)
				return rc;
			continue;
		}
		if (!w->bw) {
			rc = w->s->be->ops->watch_open(w->s->be, &w->bw, w->sel, w->rv);
			if (rc == KVS_EGONE) {
				start_listing(w, 1);
				continue;
			}
			if (rc < 0) {
				w->bw = NULL;
				if (transient(rc))
					goto retry;
				return rc;
			}
		}

		kvs_event ev = { KVS_EVENT_BOOKMARK, NULL };
		rc = w->s->be->ops->watch_next(w->bw, &ev, left);
		if (rc == KVS_ETIMEOUT) {
			kvs_event_clear(&ev);
			return kvs_error_set(KVS_ETIMEOUT, "watch: no change within %d ms", timeout_ms);
		}
		if (rc == KVS_EGONE) {
			kvs_event_clear(&ev);
			start_listing(w, 1);
			continue;
		}
		if (rc < 0) {
			/* the stream broke: reopen from the last revision seen */
			kvs_event_clear(&ev);
			w->s->be->ops->watch_close(w->bw);
			w->bw = NULL;
			if (transient(rc))
				goto retry;
			return rc;
		}
		w->backoff_ms = WATCH_BACKOFF_MIN_MS;
		if (ev.object)
			note_rv(w, ev.object->resource_version);
		if (!ev.object) {
			continue;
		}
		rc = on_event(w, out, &ev);
		if (rc < 0 && transient(rc)) {
			w->pending = ev;
			w->has_pending = 1;
			return rc;
		}
		kvs_event_clear(&ev);
		if (rc != 0)
			return rc < 0 ? rc : 0;
		continue;

retry:
		/* a transient failure: back off within the caller's deadline */
		{
			char detail[1024];
			snprintf(detail, sizeof(detail), "%s", kvs_error_last());
			int wait = w->backoff_ms;
			if (timeout_ms >= 0) {
				int64_t l = timeout_ms > 0 ? deadline - mono_ms() : 0;
				if (l <= 0)
					return kvs_error_set(rc, "watch: %s", detail);
				if (wait > l)
					wait = (int)l;
			}
			sleep_ms(wait);
			w->backoff_ms = w->backoff_ms * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS
			                                                      : w->backoff_ms * 2;
		}
	}
}
