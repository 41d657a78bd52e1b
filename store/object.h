/*
 * store/object.h — private additions to the kvs_object helpers of
 * kvsplit/backend.h (store/object.c): data that lives in a buffer the
 * object took over, so a backend hands out what it received without
 * copying it (the Kubernetes backend: binaryData inside a protobuf
 * response).
 */
#ifndef KVS_STORE_OBJECT_H
#define KVS_STORE_OBJECT_H

#include <stddef.h>
#include <stdint.h>

#include "kvsplit/backend.h"

/**
 * Give `obj` (no data yet, not shared) a data share that owns `buf`
 * (malloc'd, `len` bytes): entries added by kvs__object_add_view may then
 * point into it. `buf` is the object's from this call on, whatever it
 * returns: freed once, with the share (kvs_object_free, clear_data,
 * own_data). The data is shared as by kvs_object_share_data (read-only,
 * referenced by kvs_object_ref_data). 0, KVS_EINVAL (obj has data or a
 * share), KVS_ENOMEM.
 */
int kvs__object_adopt_buffer(kvs_object *obj, void *buf, size_t len);

/**
 * Append a data entry to an object that adopted a buffer and whose share
 * nobody else references yet: the key is copied; `data` is referenced if
 * it lies inside the buffer, else copied. data_bytes grows by len. 0,
 * KVS_EINVAL, KVS_ENOMEM.
 */
int kvs__object_add_view(kvs_object *obj, const char *key, const uint8_t *data, size_t len);

#endif
