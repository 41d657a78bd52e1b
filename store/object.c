/*
 * object.c — the backend object model (a ConfigMap as the store sees it) and
 * its helpers. Every allocation failure is reported as KVS_ENOMEM; nothing
 * here aborts.
 */
#include <stdlib.h>
#include <string.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "store/object.h"

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p)
		memcpy(p, s, n);
	return p;
}

kvs_object *kvs_object_new(const char *name)
{
	kvs_object *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->name = xstrdup(name ? name : "");
	o->resource_version = xstrdup("");
	o->uid = xstrdup("");
	if (!o->name || !o->resource_version || !o->uid) {
		kvs_object_free(o);
		return NULL;
	}
	return o;
}

static void free_kvs(kvs_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

/* Data shared by several objects (backend.h): the entries, owning their
 * keys and bytes (but for bytes inside `buf`, which the share owns whole:
 * kvs__object_adopt_buffer), and the number of objects that reference them. */
struct kvs_share {
	size_t refs;          /* atomic */
	kvs_blob *blobs;
	size_t n;
	uint8_t *buf;         /* NULL, or a buffer some entries point into */
	size_t buf_len;
};

static int in_buf(const kvs_share *sh, const uint8_t *p)
{
	return sh->buf && p >= sh->buf && p < sh->buf + sh->buf_len;
}

static void share_unref(kvs_share *sh)
{
	if (!sh || __atomic_sub_fetch(&sh->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (size_t i = 0; i < sh->n; i++) {
		free(sh->blobs[i].key);
		if (!in_buf(sh, sh->blobs[i].data))
			free(sh->blobs[i].data);
	}
	free(sh->blobs);
	free(sh->buf);
	free(sh);
}

int kvs__object_adopt_buffer(kvs_object *o, void *buf, size_t len)
{
	kvs_share *sh;

	if (!o || o->ndata || o->share) {
		free(buf);
		return kvs_error_set(KVS_EINVAL, "kvs__object_adopt_buffer: the object has data");
	}
	if (!(sh = calloc(1, sizeof(*sh)))) {
		free(buf);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	sh->refs = 1;
	sh->buf = buf;
	sh->buf_len = len;
	o->share = sh;
	return 0;
}

/* Both arrays grow by one: the share's (owning) and the object's view. */
int kvs__object_add_view(kvs_object *o, const char *key, const uint8_t *data, size_t len)
{
	kvs_share *sh = o->share;
	kvs_blob *nb, *nv, e;

	if (!sh || !sh->buf || __atomic_load_n(&sh->refs, __ATOMIC_ACQUIRE) != 1 ||
	    o->ndata != sh->n)
		return kvs_error_set(KVS_EINVAL, "object %s: no buffer of its own to add to", o->name);
	if (len && data + len > sh->buf + sh->buf_len && in_buf(sh, data))
		return kvs_error_set(KVS_EINVAL, "object %s: entry runs past its buffer", o->name);
	e.len = len;
	if (!(e.key = xstrdup(key)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if (in_buf(sh, data)) {
		e.data = (uint8_t *)data;
	} else if ((e.data = malloc(len ? len : 1))) {
		if (len)
			memcpy(e.data, data, len);
	} else {
		free(e.key);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	nb = realloc(sh->blobs, (sh->n + 1) * sizeof(*nb));
	if (nb)
		sh->blobs = nb;
	nv = nb ? realloc(o->data, (o->ndata + 1) * sizeof(*nv)) : NULL;
	if (nv)
		o->data = nv;
	if (!nb || !nv) {
		free(e.key);
		if (!in_buf(sh, e.data))
			free(e.data);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	sh->blobs[sh->n++] = e;
	o->data[o->ndata++] = e;
	o->data_bytes += len;
	return 0;
}

void kvs_object_clear_data(kvs_object *o)
{
	if (!o)
		return;
	if (o->share) {
		share_unref(o->share);
		o->share = NULL;
	} else {
		for (size_t i = 0; i < o->ndata; i++) {
			free(o->data[i].key);
			free(o->data[i].data);
		}
	}
	free(o->data);
	o->data = NULL;
	o->ndata = 0;
}

void kvs_object_free(kvs_object *o)
{
	if (!o)
		return;
	free(o->name);
	free(o->resource_version);
	free(o->uid);
	free_kvs(o->labels, o->nlabels);
	free_kvs(o->annotations, o->nannotations);
	kvs_object_clear_data(o);
	free(o);
}

/*
 * The share takes the object's entries as they are (keys and bytes move,
 * nothing is copied); the object keeps an array of its own that points
 * into them, so an object's array may be reordered or shortened (the
 * store's tests shorten an entry's len) without touching the share.
 */
int kvs_object_share_data(kvs_object *o)
{
	kvs_share *sh;
	kvs_blob *view;

	if (!o)
		return kvs_error_set(KVS_EINVAL, "kvs_object_share_data: object is NULL");
	if (o->share)
		return 0;
	sh = calloc(1, sizeof(*sh));
	view = malloc((o->ndata ? o->ndata : 1) * sizeof(*view));
	if (!sh || !view) {
		free(sh);
		free(view);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	if (o->ndata)
		memcpy(view, o->data, o->ndata * sizeof(*view));
	sh->refs = 1;
	sh->blobs = o->data;
	sh->n = o->ndata;
	o->data = view;
	o->share = sh;
	return 0;
}

int kvs_object_ref_data(kvs_object *dst, const kvs_object *src)
{
	kvs_blob *view;

	if (!src->share) {
		for (size_t i = 0; i < src->ndata; i++) {
			int rc = kvs_object_add_data(dst, src->data[i].key, src->data[i].data,
			                             src->data[i].len);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	if (dst->ndata || dst->share)
		return kvs_error_set(KVS_EINVAL, "kvs_object_ref_data: the object has data already");
	if (!(view = malloc((src->ndata ? src->ndata : 1) * sizeof(*view))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if (src->ndata)
		memcpy(view, src->data, src->ndata * sizeof(*view));
	free(dst->data);
	dst->data = view;
	dst->ndata = src->ndata;
	for (size_t i = 0; i < src->ndata; i++)
		dst->data_bytes += src->data[i].len;
	__atomic_add_fetch(&src->share->refs, 1, __ATOMIC_RELAXED);
	dst->share = src->share;
	return 0;
}

int kvs_object_own_data(kvs_object *o)
{
	kvs_object tmp;
	uint64_t bytes;
	int rc;

	if (!o->share)
		return 0;
	memset(&tmp, 0, sizeof(tmp));
	for (size_t i = 0; i < o->ndata; i++)
		if ((rc = kvs_object_add_data(&tmp, o->data[i].key, o->data[i].data,
		                              o->data[i].len)) < 0) {
			kvs_object_clear_data(&tmp);
			return rc;
		}
	bytes = o->data_bytes;
	kvs_object_clear_data(o);
	o->data = tmp.data;
	o->ndata = tmp.ndata;
	o->data_bytes = bytes;
	return 0;
}

static int set_kv(kvs_kv **arr, size_t *n, const char *key, const char *value)
{
	char *v;

	for (size_t i = 0; i < *n; i++) {
		if (strcmp((*arr)[i].key, key) == 0) {
			if (!(v = xstrdup(value)))
				return kvs_error_set(KVS_ENOMEM, "out of memory");
			free((*arr)[i].value);
			(*arr)[i].value = v;
			return 0;
		}
	}
	kvs_kv *na = realloc(*arr, (*n + 1) * sizeof(**arr));
	if (!na)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	*arr = na;
	na[*n].key = xstrdup(key);
	na[*n].value = xstrdup(value);
	if (!na[*n].key || !na[*n].value) {
		free(na[*n].key);
		free(na[*n].value);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	(*n)++;
	return 0;
}

int kvs_object_set_label(kvs_object *o, const char *key, const char *value)
{
	return set_kv(&o->labels, &o->nlabels, key, value);
}

int kvs_object_set_annotation(kvs_object *o, const char *key, const char *value)
{
	return set_kv(&o->annotations, &o->nannotations, key, value);
}

int kvs_object_add_data_owned(kvs_object *o, const char *key, uint8_t *data, size_t len)
{
	kvs_blob *nd;

	if (o->share) {
		free(data);
		return kvs_error_set(KVS_EINVAL, "object %s: its data is shared (read-only)", o->name);
	}
	if (!(nd = realloc(o->data, (o->ndata + 1) * sizeof(*nd)))) {
		free(data);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	o->data = nd;
	nd[o->ndata].key = xstrdup(key);
	if (!nd[o->ndata].key) {
		free(data);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	nd[o->ndata].data = data;
	nd[o->ndata].len = len;
	o->ndata++;
	o->data_bytes += len;
	return 0;
}

int kvs_object_add_data(kvs_object *o, const char *key, const void *data, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if (len)
		memcpy(copy, data, len);
	return kvs_object_add_data_owned(o, key, copy, len);
}

static const char *get_kv(const kvs_kv *arr, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(arr[i].key, key) == 0)
			return arr[i].value;
	return NULL;
}

const char *kvs_object_label(const kvs_object *o, const char *key)
{
	return get_kv(o->labels, o->nlabels, key);
}

const char *kvs_object_annotation(const kvs_object *o, const char *key)
{
	return get_kv(o->annotations, o->nannotations, key);
}

const kvs_blob *kvs_object_data(const kvs_object *o, const char *key)
{
	for (size_t i = 0; i < o->ndata; i++)
		if (strcmp(o->data[i].key, key) == 0)
			return &o->data[i];
	return NULL;
}

int kvs_object_set_rv(kvs_object *o, const char *rv)
{
	char *v = xstrdup(rv ? rv : "");

	if (!v)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	free(o->resource_version);
	o->resource_version = v;
	return 0;
}

int kvs_object_dup(kvs_object **out, const kvs_object *src)
{
	kvs_object *o = kvs_object_new(src->name);
	int rc = 0;

	*out = NULL;
	if (!o)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	free(o->uid);
	o->uid = xstrdup(src->uid);
	if (!o->uid || (rc = kvs_object_set_rv(o, src->resource_version)) < 0)
		goto fail;
	o->created_ms = src->created_ms;
	o->updated_ms = src->updated_ms;
	o->immutable = src->immutable;
	for (size_t i = 0; i < src->nlabels; i++)
		if ((rc = kvs_object_set_label(o, src->labels[i].key, src->labels[i].value)) < 0)
			goto fail;
	for (size_t i = 0; i < src->nannotations; i++)
		if ((rc = kvs_object_set_annotation(o, src->annotations[i].key,
		                                    src->annotations[i].value)) < 0)
			goto fail;
	if ((rc = kvs_object_ref_data(o, src)) < 0)
		goto fail;
	o->data_bytes = src->data_bytes;
	*out = o;
	return 0;
fail:
	kvs_object_free(o);
	return rc < 0 ? rc : kvs_error_set(KVS_ENOMEM, "out of memory");
}

void kvs_object_list_free(kvs_object_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		kvs_object_free(l->items[i]);
	free(l->items);
	free(l->next);
	free(l->resource_version);
	free(l);
}

void kvs_event_clear(kvs_event *ev)
{
	if (!ev)
		return;
	kvs_object_free(ev->object);
	ev->object = NULL;
}

void kvs_backend_free(kvs_backend *b)
{
	if (b && b->ops && b->ops->free)
		b->ops->free(b);
}
