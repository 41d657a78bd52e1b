/*
 * reflect.c — the backend vtable as a reflector source (reflect.h). A page
 * of kvs_object_list is moved, not copied, into the reflector's page; a
 * watch handle pairs the backend's handle with its backend.
 */
#include "reflect.h"

#include <stdlib.h>
#include <string.h>

typedef struct obj_watch {
	kvs__obj_source *s;
	kvs_backend_watch *bw;
} obj_watch;

static int to_page(kvs__rf_page *out, kvs_object_list *l)
{
	if (l->count) {
		if (!(out->items = malloc(l->count * sizeof(*out->items)))) {
			kvs_object_list_free(l);
			return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
		}
		for (size_t i = 0; i < l->count; i++)
			out->items[i] = l->items[i];
	}
	out->count = l->count;
	out->next = l->next;
	out->rv = l->resource_version;
	l->count = 0;
	l->next = NULL;
	l->resource_version = NULL;
	kvs_object_list_free(l);
	return 0;
}

static int src_list(void *src, kvs__rf_page *out, const char *selector, size_t limit,
                    const char *token)
{
	kvs__obj_source *s = src;
	kvs_object_list *l = NULL;
	kvs_object *obj = NULL;
	int rc;

	if (!s->exact_name) {
		if ((rc = s->be->ops->list(s->be, &l, selector, limit, token, s->list_flags)) < 0)
			return rc;
		return to_page(out, l);
	}
	if ((rc = s->be->ops->list(s->be, &l, selector, 1, NULL, KVS_LIST_METADATA_ONLY)) < 0)
		return rc;
	for (size_t i = 0; i < l->count; i++)
		kvs_object_free(l->items[i]);
	l->count = 0;
	free(l->next);
	l->next = NULL;
	rc = s->be->ops->get(s->be, &obj, s->exact_name);
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
	return to_page(out, l);
}

static int src_watch_open(void *src, void **out, const char *selector, const char *from_rv)
{
	kvs__obj_source *s = src;
	obj_watch *w = calloc(1, sizeof(*w));
	int rc;

	*out = NULL;
	if (!w)
		return kvs_error_set(KVS_ENOMEM, "watch: out of memory");
	w->s = s;
	if ((rc = s->be->ops->watch_open(s->be, &w->bw, selector, from_rv)) < 0) {
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

static int src_watch_next(void *watch, kvs__rf_wevent *out, int timeout_ms)
{
	obj_watch *w = watch;
	kvs_event ev = { KVS_EVENT_BOOKMARK, NULL };
	int rc = w->s->be->ops->watch_next(w->bw, &ev, timeout_ms);

	if (rc < 0) {
		kvs_event_clear(&ev);
		return rc;
	}
	switch (ev.type) {
	case KVS_EVENT_ADDED: out->type = KVS__RF_ADDED; break;
	case KVS_EVENT_MODIFIED: out->type = KVS__RF_MODIFIED; break;
	case KVS_EVENT_DELETED: out->type = KVS__RF_DELETED; break;
	case KVS_EVENT_BOOKMARK:
	default:
		out->type = KVS__RF_BOOKMARK;
		break;
	}
	if (out->type == KVS__RF_BOOKMARK || !ev.object) {
		out->type = KVS__RF_BOOKMARK;
		out->rv[0] = '\0';
		if (ev.object && ev.object->resource_version &&
		    strlen(ev.object->resource_version) < sizeof(out->rv))
			memcpy(out->rv, ev.object->resource_version,
			       strlen(ev.object->resource_version) + 1);
		kvs_event_clear(&ev);
		return 0;
	}
	out->item = ev.object;
	return 0;
}

static void src_watch_close(void *watch)
{
	obj_watch *w = watch;

	w->s->be->ops->watch_close(w->bw);
	free(w);
}

const kvs__rf_source_ops kvs__obj_source_ops = {
	KVS__RF_SOURCE_OPS_VERSION, src_list, src_watch_open, src_watch_next, src_watch_close,
};

static const char *item_key(const void *item)
{
	const kvs_object *o = item;

	return o->name ? o->name : "";
}

static const char *item_rv(const void *item)
{
	const kvs_object *o = item;

	return o->resource_version ? o->resource_version : "";
}

static void item_free(void *item)
{
	kvs_object_free(item);
}

const kvs__rf_item_ops kvs__obj_item_ops = { item_key, item_rv, item_free };
