/*
 * kube/client.h — private parts of the Kubernetes client (kube/client.c)
 * shared with the ConfigMap backend. The API is include/kvsplit/kube.h.
 */
#ifndef KVS_KUBE_CLIENT_H
#define KVS_KUBE_CLIENT_H

#include "kvsplit/kube.h"

/**
 * The client-side check of an object name (`what` names the request in the
 * detail): 1..1024 bytes, not "." or "..". KVS_EINVAL otherwise. The server
 * judges the rest.
 */
int kvs__kube_check_name(const char *what, const char *name);

/**
 * Decode one line of a watch stream (what kvs_kube_watch_next does with
 * each line the stream gives): 0 and *out (object owned by *out), or an
 * error code with the detail set and *out zeroed; an ERROR event fills
 * *last from its Status and returns the code it maps to. `what` names the
 * watch in details. Exposed for fuzz/watch_stream_fuzzer.c.
 */
int kvs__kube_watch_decode(kvs_kube_event *out, kvs_kube_status *last, const char *what,
                           const char *line, size_t len);

/**
 * A list response (parsed JSON object, ownership taken whatever happens)
 * into a page: items an array (absent or null: none), resourceVersion
 * shorter than KVS_VER_MAX, continue token bounded. KVS_ECORRUPT naming
 * `what`, KVS_ENOMEM. Exposed for fuzz/kube_client_fuzzer.c.
 */
int kvs__kube_page_decode(kvs_kube_page **out, cJSON *doc, const char *what);

/**
 * kvs_kube_run() with `each` (may be NULL) called once per request as soon
 * as it is final, with its result, status and response set and `type` the
 * response's Content-Type ("" when none came), on the calling thread while
 * the other requests are in flight. `each` may take the response (set it
 * NULL) or clear the request. When this returns an error (KVS_EINVAL,
 * KVS_ENOMEM: nothing was sent), `each` was not called. An error answer's
 * Status is read by its Content-Type (JSON or protobuf, kube/proto.h).
 */
int kvs__kube_run_each(kvs_kube *k, kvs_kube_request *reqs, size_t n,
                       void (*each)(kvs_kube_request *r, size_t i, const char *type, void *ctx),
                       void *ctx);

/**
 * 1 when GETs of one ConfigMap may ask for protobuf (the default), 0 when
 * kvs_kube_options.json_only turned it off.
 */
int kvs__kube_protobuf(const kvs_kube *k);

/**
 * 1 when ConfigMap creates and updates may send protobuf bodies: protobuf
 * is on and no protobuf write has met 415 UnsupportedMediaType yet.
 * kvs__kube_protobuf_writes_off() records that one did: writes are JSON
 * from then on, for every thread using the client (an atomic flag).
 */
int kvs__kube_protobuf_writes(const kvs_kube *k);
void kvs__kube_protobuf_writes_off(kvs_kube *k);

#endif
