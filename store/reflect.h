/*
 * reflect.h — a backend (the kvs_backend vtable) as a reflector source
 * (kube/reflector.h), with kvs_object items: what key watches run on, on
 * any backend, and what tests drive the reflector with.
 */
#ifndef KVS_REFLECT_H
#define KVS_REFLECT_H

#include "kvsplit/backend.h"
#include "kube/reflector.h"

/**
 * The source's state; the caller owns it and keeps it alive as long as the
 * reflector. Items are kvs_object (key: the object name).
 */
typedef struct kvs__obj_source {
	kvs_backend *be;
	unsigned int list_flags;     /**< passed to list (KVS_LIST_METADATA_ONLY) */
	/**
	 * Non-NULL: the source holds at most this one object, and a listing is
	 * a one-item metadata-only list (for the revision) then one GET of the
	 * name, whatever the selector matches otherwise.
	 */
	const char *exact_name;
} kvs__obj_source;

extern const kvs__rf_source_ops kvs__obj_source_ops;
extern const kvs__rf_item_ops kvs__obj_item_ops;

#endif
