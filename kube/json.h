/*
 * kube/json.h — ConfigMap JSON ⇄ kvs_object, Kubernetes Status objects and
 * base64, for the Kubernetes backend (private to the library).
 *
 * Everything parsed here comes from the network and is untrusted: types,
 * base64 and sizes are checked, and a malformed document is KVS_ECORRUPT with
 * a detail that names the request (`what`, e.g. "get configmap ns/name") and
 * the offending field.
 */
#ifndef KVS_KUBE_JSON_H
#define KVS_KUBE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"

#include <cjson/cJSON.h>

/* Caps on what the server may send us. */
#define KVS__KUBE_MAX_OBJECT (4u * 1024u * 1024u)   /* one object's JSON */
#define KVS__KUBE_MAX_LIST (64u * 1024u * 1024u)    /* one list page */
#define KVS__KUBE_MAX_EVENT (4u * 1024u * 1024u)    /* one watch event line */
/* Labels and annotations of one object (each insert searches the others). */
#define KVS__KUBE_MAX_META_KV 4096u

/*
 * Cap on the JSON values of a body: one per this many bytes of its byte cap
 * (at least 1024). cJSON spends ~100 bytes per value, so a parse stays
 * within about twice the cap whatever the body's shape; real Kubernetes
 * JSON runs 20-30 bytes per value, so a body at its full byte cap needs
 * long strings (ConfigMap data) — a list of small objects is refused past
 * 1.4 M values per 64 MiB page (ask for smaller pages).
 */
#define KVS__JSON_BYTES_PER_VALUE 48u

/** Upper bound of the values cJSON would allocate for the text (no parse). */
size_t kvs__json_values(const char *p, size_t n);
/** Values a body under byte cap `cap` may hold. */
size_t kvs__json_max_values(size_t cap);
/**
 * cJSON_ParseWithLength() behind both caps: over `cap` bytes or over
 * kvs__json_max_values(cap) values is KVS_EIO, not JSON is KVS_ECORRUPT
 * (*rc set, detail names `what`); NULL then.
 */
cJSON *kvs__json_parse(const char *body, size_t len, size_t cap, const char *what, int *rc);

/**
 * Annotation the backend adds to every object it writes: the object's data
 * size, so that a metadata-only list (PartialObjectMetadataList, which
 * carries no data) can still report data_bytes. Hidden from callers on read.
 */
#define KVS__KUBE_DATA_BYTES "kvsplit.io/data-bytes"

/** Bytes of the standard padded base64 of n bytes (no NUL), or 0 on overflow. */
size_t kvs__b64_len(size_t n);
/** Encode n bytes into dst (kvs__b64_len(n) bytes + NUL); returns the length. */
size_t kvs__b64_encode(char *dst, const uint8_t *src, size_t n);
/**
 * Strictly decode standard padded base64 (no whitespace). Returns 0 and a
 * malloc'd buffer (non-NULL even when empty), or -1 if `src` is not valid.
 */
int kvs__b64_decode(uint8_t **out, size_t *out_len, const char *src, size_t n);
/**
 * The same into dst, which holds at least n / 4 * 3 bytes; *out_len gets the
 * decoded length. 0, or -1 if `src` is not valid (dst then holds garbage).
 */
int kvs__b64_decode_into(uint8_t *dst, size_t *out_len, const char *src, size_t n);

/** RFC 3339 timestamp → Unix ms; -1 if unparsable. */
int64_t kvs__rfc3339_ms(const char *s);

/**
 * Serialize an object as a ConfigMap request body. metadata.resourceVersion
 * is included when `with_rv` and the object has one. Data keys must be
 * [-._a-zA-Z0-9]+ (KVS_EINVAL otherwise). The big base64 strings are written
 * straight into the body: linear in the data size. *out is malloc'd.
 */
int kvs__kube_body_object(char **out, size_t *out_len, const kvs_object *obj,
                          const char *ns, int with_rv);

/** Data keys must be [-._a-zA-Z0-9]+, 1..253 bytes: 0, or KVS_EINVAL naming the key. */
int kvs__kube_check_data_keys(const kvs_object *obj);

/** Merge patch that sets `annotations` (metadata only). *out is malloc'd. */
int kvs__kube_body_annotate(char **out, size_t *out_len, const kvs_kv *annotations,
                            size_t n);

/** DeleteOptions with preconditions (either may be NULL/""). *out malloc'd. */
int kvs__kube_body_delete(char **out, size_t *out_len, const char *rv, const char *uid);

/**
 * Parse flag: keep metadata only. Data is not decoded (its base64 is still
 * validated cheaply: length and padding) and data_bytes is computed from it.
 */
#define KVS__KJ_META_ONLY 0x1u
/**
 * Parse flag: never decode binaryData from the body in place (the short way
 * of kvs__kube_object_parse); for tests and the fuzzer, which compare both.
 */
#define KVS__KJ_NO_SPANS 0x2u

/**
 * A ConfigMap (or PartialObjectMetadata) JSON item → object. data_bytes is
 * set. `what` names the request for error details.
 */
int kvs__kube_object_from_json(kvs_object **out, const struct cJSON *item, unsigned flags,
                               const char *what);
/*
 * The checks and the assembly of a kvs_object from a ConfigMap that both
 * readers (JSON here, protobuf in kube/proto.c) share, so both wires give
 * the same object or the same refusal (KVS_ECORRUPT naming `what`):
 * kvs__kube_obj_new: metadata.name present, at most 253 bytes;
 * kvs__kube_obj_check_rv: resourceVersion shorter than KVS_VER_MAX;
 * kvs__kube_obj_kv: one label or annotation (the KVS__KUBE_DATA_BYTES
 * annotation is not kept: it sets *hint), KVS_EIO past
 * KVS__KUBE_MAX_META_KV of them; kvs__kube_obj_check_key: a
 * binaryData (`binary`) or data entry whose value is a string under a valid
 * key; kvs__kube_obj_hint: the size of an object without data (had_data: a
 * binaryData or data field was there) from the hint.
 */
int kvs__kube_obj_new(kvs_object **out, const char *name, const char *what);
int kvs__kube_obj_check_rv(const kvs_object *o, const char *what);
int kvs__kube_obj_kv(kvs_object *o, int labels, const char *key, const char *value,
                     int64_t *hint, const char *what);
int kvs__kube_obj_check_key(const char *key, int is_string, int binary, const char *what);
void kvs__kube_obj_hint(kvs_object *o, int had_data, int64_t hint);

/** Parse a response body holding one ConfigMap. */
int kvs__kube_object_parse(kvs_object **out, const char *body, size_t len, unsigned flags,
                           const char *what);
/** Parse a ConfigMapList or PartialObjectMetadataList page. */
int kvs__kube_list_parse(kvs_object_list **out, const char *body, size_t len, unsigned flags,
                         const char *what);

/**
 * Parse one watch event line. ADDED/MODIFIED/DELETED/BOOKMARK fill *out. An
 * ERROR event is returned as the code its Status maps to (KVS_EGONE for 410)
 * with the detail set.
 */
int kvs__kube_event_parse(kvs_event *out, const char *line, size_t len, const char *what);

/** Fields of a Status object (all may be empty). */
typedef struct kvs__kube_status {
	int code;
	char reason[64];
	char message[1024];
	char details_kind[64];
	char details_name[256];
	int too_long;          /* a cause or the message says "Too long" / FieldValueTooLong */
	unsigned retry_after_s; /* details.retryAfterSeconds (0: none) */
} kvs__kube_status;

/** Fields of a parsed Status object (best effort, as below). */
void kvs__kube_status_from_json(kvs__kube_status *st, const cJSON *root);
/** Parse a Status body (best effort: a non-Status body leaves fields empty). */
void kvs__kube_status_parse(kvs__kube_status *st, const char *body, size_t len);

/**
 * Map an HTTP error response to a KVS code and set the detail
 * "<what>: HTTP <status> <reason>: <message>". `retried_after_transport`
 * marks a request re-sent after a lost response (AlreadyExists/Conflict then
 * may come from our own earlier attempt; the detail says so).
 */
int kvs__kube_http_error(long http, const char *body, size_t len, const char *what,
                         const char *ns, int retried_after_transport);

/** kvs__kube_http_error() with the body's Status already decoded (either wire). */
int kvs__kube_http_error_st(long http, const kvs__kube_status *st, const char *body,
                            size_t len, const char *what, const char *ns, int retried);

/*
 * What both Status readers (JSON here, protobuf in kube/proto.c) do with a
 * field, so that both fill a kvs__kube_status alike: text is truncated to
 * its buffer and its control bytes blanked; a code outside 0..999 and a
 * retry outside 1..86400 s are ignored; a cause or a message that says
 * "Too long" (FieldValueTooLong) sets too_long (kvs__kube_status_end last).
 */
void kvs__kube_status_text(char *dst, size_t cap, const char *s, size_t n);
void kvs__kube_status_code_of(kvs__kube_status *st, double code);
void kvs__kube_status_retry_of(kvs__kube_status *st, double s);
void kvs__kube_status_cause(kvs__kube_status *st, const char *reason, const char *message);
void kvs__kube_status_end(kvs__kube_status *st);

/** Map a parsed Status (from a watch ERROR event or a body) to a KVS code. */
int kvs__kube_status_code(const kvs__kube_status *st, long http);

#endif
