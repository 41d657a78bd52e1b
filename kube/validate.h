/*
 * kube/validate.h — the API server's validation of names, labels,
 * annotations and ConfigMap data keys (k8s.io/apimachinery/pkg/util/
 * validation, pkg/api/validation), with its messages. Private (kvs__).
 *
 * Shared by the in-memory backend and the Kubernetes API test server:
 * nothing here allocates or needs the rest of the library, so the test
 * server links this object alone. Two levels:
 *
 *  - kvs__is_*: one string against one rule, giving the rule's messages
 *    (the []string of the Go functions: static strings, valid forever);
 *  - kvs__validate_*: a field of an object, calling back once per field
 *    error as field.Invalid / field.TooLong would add it to an ErrorList.
 *    kvs__field_err_format renders one as the server does
 *    (`metadata.labels: Invalid value: "x": <message>`).
 */
#ifndef KVS_KUBE_VALIDATE_H
#define KVS_KUBE_VALIDATE_H

#include <stddef.h>

#include "kvsplit/backend.h"   /* kvs_kv (header only) */

#define KVS__DNS1123_SUBDOMAIN_MAX 253u
#define KVS__DNS1123_LABEL_MAX 63u
#define KVS__LABEL_VALUE_MAX 63u
#define KVS__ANNOTATIONS_MAX (256u * 1024u)  /* TotalAnnotationSizeLimitB */

/** The messages of one check; `n` of them, in the server's order. */
#define KVS__VERRS_MAX 4
typedef struct kvs__verrs {
	const char *msg[KVS__VERRS_MAX];
	size_t n;
} kvs__verrs;

/*
 * Each returns the number of messages (0 = valid) and fills *e (may be
 * NULL) with them.
 */
size_t kvs__is_dns1123_subdomain(kvs__verrs *e, const char *s); /**< IsDNS1123Subdomain */
size_t kvs__is_dns1123_label(kvs__verrs *e, const char *s);     /**< IsDNS1123Label */
size_t kvs__is_qualified_name(kvs__verrs *e, const char *s);    /**< IsQualifiedName (label keys) */
size_t kvs__is_label_value(kvs__verrs *e, const char *s);       /**< IsValidLabelValue */
size_t kvs__is_config_key(kvs__verrs *e, const char *s);        /**< IsConfigMapKey */

/** One field error (field.Error). */
typedef enum kvs__ferr_type {
	KVS__FERR_INVALID = 1,   /**< "FieldValueInvalid": value + detail */
	KVS__FERR_TOO_LONG = 2,  /**< "FieldValueTooLong": limit (bytes) */
	KVS__FERR_REQUIRED = 3   /**< "FieldValueRequired": detail */
} kvs__ferr_type;

typedef struct kvs__field_err {
	kvs__ferr_type type;
	const char *field;       /**< "metadata.name", "metadata.labels", "data" ... */
	const char *field_key;   /**< NULL, or the map key: the field is field[field_key] */
	const char *value;       /**< INVALID: the value refused */
	const char *detail;      /**< INVALID / REQUIRED: the message */
	size_t limit;            /**< TOO_LONG */
} kvs__field_err;

typedef void (*kvs__ferr_fn)(void *ctx, const kvs__field_err *e);

/** The CauseType of a field error ("FieldValueInvalid", ...). */
const char *kvs__ferr_reason(const kvs__field_err *e);

/**
 * Render a field error as snprintf would, into buf of size n (may be 0):
 * the field path (with [key]) when `with_field`, then the body (Go's
 * ErrorBody: `Invalid value: "v": detail`, `Too long: must have at most N
 * bytes`, `Required value: detail`). Returns the length it needs.
 */
size_t kvs__ferr_format(char *buf, size_t n, const kvs__field_err *e, int with_field);

/** metadata.name: a DNS-1123 subdomain, or with `label` a DNS-1123 label
 *  (namespaces); "" is left to the caller (generateName rules). */
void kvs__validate_name(const char *name, int label, kvs__ferr_fn fn, void *ctx);

/** metadata.labels: keys qualified names, values label values. NULL keys
 *  are skipped (the caller's own error); NULL values count as "". */
void kvs__validate_labels(const kvs_kv *kv, size_t n, kvs__ferr_fn fn, void *ctx);

/** metadata.annotations: keys qualified names (case-insensitively), and
 *  keys plus values at most KVS__ANNOTATIONS_MAX bytes in all. */
void kvs__validate_annotations(const kvs_kv *kv, size_t n, kvs__ferr_fn fn, void *ctx);

/** One ConfigMap key of `bag` ("data" or "binaryData"): field bag[key]. */
void kvs__validate_config_key(const char *bag, const char *key, kvs__ferr_fn fn, void *ctx);

#endif
