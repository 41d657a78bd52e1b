/*
 * kube/proto.h — the Kubernetes protobuf wire for ConfigMap GETs (private).
 *
 * The API server serves built-in types as protobuf when the client prefers
 * it (`Accept: application/vnd.kubernetes.protobuf, application/json`):
 * the body is the magic "k8s\0" and a runtime.Unknown {typeMeta, raw,
 * contentEncoding, contentType} whose raw bytes are the ConfigMap (or, for
 * an error, the Status). binaryData is raw bytes there: no base64 to decode
 * and a quarter fewer bytes on the socket.
 *
 * The reader is bounded like the JSON one: every length is checked against
 * what is left of its message, varints are at most 10 bytes and may not
 * overflow, groups (wire types 3 and 4) and unknown wire types are refused,
 * unknown fields of wire types 0, 1, 2 and 5 are skipped, a known field of
 * the wrong wire type is refused, and the decoded entries are capped as the
 * JSON values are (kvs__json_max_values of the body cap), so memory stays
 * bounded by the body. It builds the object through the checks of
 * kube/json.c (kvs__kube_obj_*), so both wires give the same kvs_object.
 */
#ifndef KVS_KUBE_PROTO_H
#define KVS_KUBE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "kube/json.h"

/** The media type of the Kubernetes protobuf wire. */
#define KVS__KUBE_PROTOBUF "application/vnd.kubernetes.protobuf"
/** The Accept of a request that prefers protobuf and takes JSON. */
#define KVS__KUBE_ACCEPT_PROTOBUF KVS__KUBE_PROTOBUF ", application/json"

/** What a response's Content-Type says its body is. */
typedef enum kvs__kube_wire {
	KVS__WIRE_JSON = 0,     /**< application/json (any parameters), or no Content-Type */
	KVS__WIRE_PROTOBUF = 1, /**< application/vnd.kubernetes.protobuf */
	KVS__WIRE_OTHER = 2     /**< anything else */
} kvs__kube_wire;

/** Classify a Content-Type header value (NULL or "": JSON). */
kvs__kube_wire kvs__kube_wire_of(const char *content_type);

/**
 * A protobuf body holding one ConfigMap → object, exactly as
 * kvs__kube_object_parse() makes it from the same object's JSON (flags:
 * KVS__KJ_META_ONLY). KVS_ECORRUPT naming `what` and what was wrong, KVS_EIO
 * over the body cap or the entry cap, KVS_ENOMEM.
 */
int kvs__kube_proto_object(kvs_object **out, const uint8_t *body, size_t len, unsigned flags,
                           const char *what);

/**
 * kvs__kube_proto_object() that may take the body (malloc'd): an
 * immutable object's binaryData then points into it, not copied, and the
 * object frees it (store/object.h: shared data, read-only). *body is NULL
 * when it was taken (also when this then fails: it is freed), else left.
 */
int kvs__kube_proto_object_take(kvs_object **out, char **body, size_t len, unsigned flags,
                                const char *what);

/**
 * A protobuf body holding a Status → *st (zeroed first; filled as
 * kvs__kube_status_from_json() fills it from JSON). 0, or KVS_ECORRUPT naming
 * what was wrong (st then holds what was read before it).
 */
int kvs__kube_proto_status(kvs__kube_status *st, const uint8_t *body, size_t len);

/**
 * A response body holding one ConfigMap, read by its Content-Type: JSON
 * (kvs__kube_object_parse), protobuf (kvs__kube_proto_object), else
 * KVS_ECORRUPT naming the content type.
 */
int kvs__kube_object_decode(kvs_object **out, const char *content_type, const char *body,
                            size_t len, unsigned flags, const char *what);

/** kvs__kube_object_decode() that may take a protobuf body (as above). */
int kvs__kube_object_decode_take(kvs_object **out, const char *content_type, char **body,
                                 size_t len, unsigned flags, const char *what);

/** A Status body read by its Content-Type (best effort, as kvs__kube_status_parse). */
void kvs__kube_status_decode(kvs__kube_status *st, const char *content_type, const char *body,
                             size_t len);

/**
 * Serialize an object as a protobuf ConfigMap request body (create, update):
 * "k8s\0" + runtime.Unknown {typeMeta {"v1", "ConfigMap"}, raw = the
 * ConfigMap, contentEncoding "", contentType ""}, with the fields of
 * kvs__kube_body_object (metadata name, namespace, resourceVersion when
 * `with_rv` and set, labels, annotations with KVS__KUBE_DATA_BYTES;
 * binaryData as raw bytes; immutable when set). One malloc of the exact
 * size, the data copied once. KVS_EINVAL (a data key), KVS_ETOOBIG,
 * KVS_ENOMEM.
 */
int kvs__kube_proto_body_object(char **out, size_t *out_len, const kvs_object *obj,
                                const char *ns, int with_rv);

#endif
