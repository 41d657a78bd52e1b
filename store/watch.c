/*
 * watch.c — watches on keys (docs/design.md "Watches keep working").
 *
 * Every commit replaces a key's index object, so a backend watch on the
 * store's index objects (label selector) sees every committed change. A
 * reflector (kube/reflector.h) over the backend (reflect.h) does the
 * listing and watching: it lists, watches from the list's revision, resumes
 * a dropped stream from the last resourceVersion or bookmark, relists after
 * compaction (KVS_EGONE) and reports, marked resync, what changed while
 * away, and drops replays older than what it saw. This file turns its
 * object events into events on keys:
 *
 *  - the key comes from the decoded manifest (never from annotations); for a
 *    single key, or a prefix whose escaped form is a name prefix, objects
 *    that cannot match are filtered by name, before the reflector keeps
 *    anything for them, and never decoded; for a single key, a listing is
 *    one GET (after a one-item list that gives the revision);
 *  - the only state per watched object is the reflector's (index name and
 *    last version) plus, for hashed index names ("h-"), which say nothing
 *    of their key, the key last delivered; a deletion's key is read back
 *    from the index name otherwise (names are injective);
 *  - with KVS_WATCH_VALUES the whole value is read and verified through the
 *    store's segment cache (only segments not already held are fetched); a
 *    value that fails verification is an error naming the key, that version
 *    counts as delivered, and the next call goes on with the next change;
 *    a transient failure (KVS_EIO, ...) handling an event makes the
 *    reflector hand the same event again after a backoff.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "mapwatch.h"
#include "base/options.h"
#include "reflect.h"

#define WATCH_LIST_PAGE KVS__GC_INDEX_PAGE /* whole manifests: keep pages small */

/* The field state of a map key, for KVS_WATCH_FIELDS (mapwatch.h). */
typedef struct mkey {
	char *key;
	kvs__mfstate *st;
} mkey;

/* A hashed index name and the key it was delivered for. */
typedef struct hashed {
	char *name;
	char *key;
} hashed;

struct kvs_watch {
	kvs_store *s;
	char *key;               /* key, or prefix */
	size_t key_len;
	int prefix, values, fields;
	kvs_get_options gopts;   /* how values are read: max_bytes of the watch */
	char sel[KVS__NAME_BUF];
	char iprefix[KVS__NAME_BUF];   /* "kvs.<store>.i-" */
	char name_filter[KVS__NAME_BUF]; /* exact index name (single key) or escaped prefix, "" = none */
	int name_exact;

	kvs__obj_source src;
	kvs__reflector *rf;

	hashed *hv;              /* sorted by name */
	size_t hn, hcap;

	mkey *mk;                /* map keys with a field state (KVS_WATCH_FIELDS) */
	size_t nmk, capmk;

	/* storage of the event returned last */
	char *ev_key;
	uint8_t *ev_value;
	kvs__mfchanges ev_fields;
};

/* ------------------------------------------------------------------------ */
/* Field states of map keys (a linear list: one per watched map key)          */

static mkey *mk_find(kvs_watch *w, const char *key)
{
	for (size_t i = 0; i < w->nmk; i++)
		if (strcmp(w->mk[i].key, key) == 0)
			return &w->mk[i];
	return NULL;
}

static void mk_drop(kvs_watch *w, const char *key)
{
	mkey *k = mk_find(w, key);

	if (!k)
		return;
	free(k->key);
	kvs__mfstate_free(k->st);
	*k = w->mk[--w->nmk];
}

static mkey *mk_get(kvs_watch *w, const char *key)
{
	mkey *k = mk_find(w, key);

	if (k)
		return k;
	if (w->nmk == w->capmk) {
		size_t nc = w->capmk ? w->capmk * 2 : 4;
		mkey *nv = realloc(w->mk, nc * sizeof(*nv));
		if (!nv)
			return NULL;
		w->mk = nv;
		w->capmk = nc;
	}
	k = &w->mk[w->nmk];
	if (!(k->key = strdup(key)))
		return NULL;
	k->st = NULL;
	w->nmk++;
	return k;
}

/* ------------------------------------------------------------------------ */
/* Keys of hashed index names                                                */

static size_t h_pos(const kvs_watch *w, const char *name, int *found)
{
	size_t lo = 0, hi = w->hn;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(w->hv[mid].name, name);
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

static const char *h_find(const kvs_watch *w, const char *name)
{
	int found;
	size_t i = h_pos(w, name, &found);

	return found ? w->hv[i].key : NULL;
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

static int h_set(kvs_watch *w, const char *name, const char *key)
{
	int found;
	size_t i = h_pos(w, name, &found);
	char *nk = dupn(key, strlen(key)), *nn = NULL;

	if (!nk || (!found && !(nn = dupn(name, strlen(name))))) {
		free(nk);
		return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
	}
	if (found) {
		free(w->hv[i].key);
		w->hv[i].key = nk;
		return 0;
	}
	if (w->hn == w->hcap) {
		size_t ncap = w->hcap ? w->hcap * 2 : 8;
		hashed *nv = realloc(w->hv, ncap * sizeof(*nv));
		if (!nv) {
			free(nk);
			free(nn);
			return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
		}
		w->hv = nv;
		w->hcap = ncap;
	}
	memmove(&w->hv[i + 1], &w->hv[i], (w->hn - i) * sizeof(*w->hv));
	w->hn++;
	w->hv[i].name = nn;
	w->hv[i].key = nk;
	return 0;
}

/* Remove and return the key of a hashed name (caller frees), or NULL. */
static char *h_take(kvs_watch *w, const char *name)
{
	int found;
	size_t i = h_pos(w, name, &found);
	char *key;

	if (!found)
		return NULL;
	key = w->hv[i].key;
	free(w->hv[i].name);
	memmove(&w->hv[i], &w->hv[i + 1], (w->hn - i - 1) * sizeof(*w->hv));
	w->hn--;
	return key;
}

/* ------------------------------------------------------------------------ */
/* Objects → events                                                          */

static int is_hashed(const kvs_watch *w, const char *name)
{
	return strncmp(name, w->iprefix, strlen(w->iprefix)) != 0;
}

/* 0 = the name cannot belong to a watched key; 1 = it may. */
static int name_may_match(void *ctx, const char *name)
{
	const kvs_watch *w = ctx;

	if (!w->name_filter[0])
		return 1;
	if (w->name_exact)
		return strcmp(name, w->name_filter) == 0;
	/* hashed names ("h-") give nothing away: decode those */
	if (is_hashed(w, name))
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

/*
 * The key an index object stands for, without its manifest: from the name
 * (or the key last delivered for a hashed name). Into `out`; 0, or -1 if
 * the name says nothing or names another key.
 */
static int key_of_name(const kvs_watch *w, char *out, size_t cap, const char *name)
{
	const char *k;

	if (w->name_exact) {
		snprintf(out, cap, "%s", w->key);
		return 0;
	}
	if (is_hashed(w, name)) {
		if (!(k = h_find(w, name)))
			return -1;
		snprintf(out, cap, "%s", k);
		return 0;
	}
	if (kvs__index_name_key(out, cap, w->s->name, name) < 0 || !key_matches(w, out, strlen(out)))
		return -1;
	return 0;
}

static void emit_delete(kvs_watch *w, kvs_watch_event *out, char *key, int resync)
{
	mk_drop(w, key);
	w->ev_key = key;
	memset(out, 0, sizeof(*out));
	out->kind = KVS_WATCH_DELETE;
	out->key = w->ev_key;
	out->resync = resync;
}

/*
 * A deleted index object (from the stream, with its last state, or found
 * gone by a relist, without). 1 = event, 0 = nothing for the caller.
 */
static int on_deleted(kvs_watch *w, kvs_watch_event *out, const kvs__rf_event *ev)
{
	char key[KVS_KEY_MAX + 1];
	const kvs_object *obj = ev->item;
	kvs__manifest m;
	char *k;

	if (is_hashed(w, ev->key) && !w->name_exact) {
		if ((k = h_take(w, ev->key))) {
			emit_delete(w, out, k, ev->resync);
			return 1;
		}
		/* Never delivered here; without a full picture (a watch from
		 * `since`) the object's last state says whose key it was. */
		if (!obj || kvs__reflector_synced(w->rf))
			return 0;
		if (kvs__index_decode(&m, w->s, obj, NULL, 0) < 0 || !key_matches(w, m.key, m.key_len)) {
			kvs__manifest_clear(&m);
			return 0;
		}
		emit_delete(w, out, m.key, ev->resync);
		m.key = NULL;
		kvs__manifest_clear(&m);
		return 1;
	}
	if (key_of_name(w, key, sizeof(key), ev->key) < 0)
		return 0;
	if (!(k = dupn(key, strlen(key))))
		return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
	emit_delete(w, out, k, ev->resync);
	return 1;
}

/*
 * A present index object (added, modified, or seen in a relist).
 * 1 = event in *out, 0 = nothing for the caller, < 0 = error (transient
 * ones leave no trace, so the same object can be handled again).
 */
static int on_present(kvs_watch *w, kvs_watch_event *out, const kvs__rf_event *ev)
{
	const kvs_object *obj = ev->item;
	kvs__manifest m;
	char what[KVS_KEY_MAX + 64], keyguess[KVS_KEY_MAX + 1];
	uint8_t *val = NULL;
	int rc;

	rc = kvs__index_load(&m, w->s, obj, NULL, 0, NULL);
	if (rc < 0) {
		char detail[1024];
		kvs__manifest_clear(&m);
		if (transient(rc))
			return rc;
		/* Ours only if the name says so; that version counts as
		 * delivered (the reflector has it), so it is reported once. */
		if (key_of_name(w, keyguess, sizeof(keyguess), obj->name) < 0)
			return 0;
		snprintf(detail, sizeof(detail), "%s", kvs_error_last());
		return kvs_error_set(rc, "watch: key \"%.200s\" version %s: %s", keyguess,
		                     obj->resource_version, detail);
	}
	if (!key_matches(w, m.key, m.key_len)) {
		kvs__manifest_clear(&m);
		return 0;
	}
	snprintf(what, sizeof(what), "watch: key \"%.200s\" version %s", m.key,
	         obj->resource_version);
	if (m.kind == KVS__MF_MAP) {
		/* a map has no opaque value: with KVS_WATCH_FIELDS, its field changes */
		if (w->fields) {
			mkey *k = mk_get(w, m.key);
			if (!k) {
				kvs__manifest_clear(&m);
				return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
			}
			if ((rc = kvs__mapwatch_diff(&k->st, &w->ev_fields, w->s, &m, w->values,
			                             w->gopts.max_bytes, what)) < 0) {
				kvs__manifest_clear(&m);
				return rc;
			}
		}
	} else {
		mk_drop(w, m.key);
		if (w->values && (rc = kvs__value_read_buf(&val, w->s, &m, what, &w->gopts, NULL)) < 0) {
			kvs__manifest_clear(&m);
			return rc;
		}
	}
	if (is_hashed(w, obj->name) && (rc = h_set(w, obj->name, m.key)) < 0) {
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
	if (val) {
		w->ev_value = val;
		out->value = val;
		out->value_len = (size_t)m.length;
	}
	out->resync = ev->resync;
	kvs__manifest_clear(&m);
	return 1;
}

/* ------------------------------------------------------------------------ */

static void free_event_storage(kvs_watch *w)
{
	free(w->ev_key);
	free(w->ev_value);
	w->ev_key = NULL;
	w->ev_value = NULL;
	kvs__mfchanges_clear(&w->ev_fields);
}

int kvs_watch_fields(const kvs_map_field_change **out, size_t *n, kvs_watch *w)
{
	if (!out || !n || !w)
		return kvs_error_set(KVS_EINVAL, "kvs_watch_fields: NULL argument");
	*out = NULL;
	*n = 0;
	if (!w->fields)
		return kvs_error_set(KVS_EINVAL, "kvs_watch_fields: the watch was opened without "
		                     "KVS_WATCH_FIELDS");
	*out = w->ev_fields.n ? w->ev_fields.v : NULL;
	*n = w->ev_fields.n;
	return 0;
}

int kvs_watch_open(kvs_watch **out, kvs_store *s, const char *key,
                   const kvs_watch_options *opts)
{
	kvs_watch_options o = KVS_WATCH_OPTIONS_INIT;
	kvs__reflector_options ro = KVS__REFLECTOR_OPTIONS_INIT;
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
	if (o.flags & ~(KVS_WATCH_PREFIX | KVS_WATCH_VALUES | KVS_WATCH_FIELDS))
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
	w->fields = !!(o.flags & KVS_WATCH_FIELDS);
	w->gopts = (kvs_get_options)KVS_GET_OPTIONS_INIT;
	w->gopts.max_bytes = o.max_bytes;
	kvs__selector(w->sel, s->name, KVS__ROLE_INDEX);
	snprintf(w->iprefix, sizeof(w->iprefix), "kvs.%s.i-", s->name);
	if (len) {
		kvs__index_name(w->name_filter, s->name, key, len);
		w->name_exact = !w->prefix;
		/* a prefix whose escaped form is hashed cannot filter by name */
		if (w->prefix && is_hashed(w, w->name_filter))
			w->name_filter[0] = '\0';
	}
	w->src.be = s->be;
	w->src.exact_name = w->name_exact ? w->name_filter : NULL;

	/* Without `since` the watch starts now: the reflector reads the first
	 * page (for a single key, the whole state) before returning; later
	 * pages may be served from newer states, which the version order
	 * absorbs. */
	ro.name = "watch";
	ro.selector = w->sel;
	ro.page_limit = WATCH_LIST_PAGE;
	ro.since = o.since;
	ro.want = name_may_match;
	ro.want_ctx = w;
	if ((rc = kvs__reflector_open(&w->rf, &kvs__obj_source_ops, &w->src, &kvs__obj_item_ops,
	                              &ro)) < 0) {
		kvs_watch_close(w);
		return rc;
	}
	*out = w;
	return 0;
}

void kvs_watch_close(kvs_watch *w)
{
	if (!w)
		return;
	kvs__reflector_close(w->rf);
	for (size_t i = 0; i < w->hn; i++) {
		free(w->hv[i].name);
		free(w->hv[i].key);
	}
	free(w->hv);
	while (w->nmk)
		mk_drop(w, w->mk[0].key);
	free(w->mk);
	free_event_storage(w);
	free(w->key);
	free(w);
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
		deadline = kvs__mono_ms() + timeout_ms;

	for (;;) {
		kvs__rf_event ev;
		int left = -1;
		if (timeout_ms >= 0) {
			int64_t l = timeout_ms > 0 ? deadline - kvs__mono_ms() : 0;
			left = l < 0 ? 0 : (int)l;
		}
		if ((rc = kvs__reflector_next(&ev, w->rf, left)) < 0) {
			if (rc == KVS_ETIMEOUT)
				return kvs_error_set(KVS_ETIMEOUT, "watch: no change within %d ms",
				                     timeout_ms);
			return rc;
		}
		rc = ev.type == KVS__RF_DELETED ? on_deleted(w, out, &ev) : on_present(w, out, &ev);
		if (rc < 0 && transient(rc)) {
			kvs__reflector_redeliver(w->rf, rc);
			continue;
		}
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
}
