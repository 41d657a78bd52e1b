/*
 * kube/selector.h — label selectors (k8s.io/apimachinery/pkg/labels) and
 * the field selectors every resource supports (metadata.name,
 * metadata.namespace; k8s.io/apimachinery/pkg/fields), with the messages
 * of the real API server. Private (kvs__ prefix).
 *
 * Shared by the in-memory backend (labels as kvs_kv arrays) and the
 * Kubernetes API test server (labels in cJSON): nothing here needs
 * libcurl, cJSON or the rest of the library (no kvs_error_set; errors come
 * back as a message in the caller's buffer), so the test server links this
 * object alone.
 *
 * Label selector grammar (labels.Parse): comma-separated requirements,
 *   key | !key | key=v | key==v | key!=v | key in (v,...) | key notin (v,...)
 *   | key>n | key<n
 * with keys checked as qualified names and values as label values. A
 * label a requirement needs that the object lacks: `!=`, `notin` and `!key`
 * match, everything else does not.
 */
#ifndef KVS_KUBE_SELECTOR_H
#define KVS_KUBE_SELECTOR_H

#include <stddef.h>

#include "kvsplit/backend.h"   /* kvs_kv, KVS_E codes (header only) */

/** Longest selector text accepted (KVS_EINVAL over it). */
#define KVS__SELECTOR_MAX (64u * 1024u)

typedef struct kvs__selector kvs__selector;

/**
 * Parse a label selector. NULL or "" (or only blanks) selects everything:
 * then *out is NULL, which every function here accepts as "everything".
 *
 * @param[out] out  the selector; free with kvs__selector_free
 * @param[out] msg  on KVS_EINVAL, the server's message ("unable to parse
 *                  requirement: ...", "found 'x', expected: ..."),
 *                  truncated to msg_size; may be NULL
 * @return 0, KVS_EINVAL (syntax, bad key or value), KVS_ENOMEM
 */
int kvs__label_selector_parse(kvs__selector **out, const char *text, char *msg,
                              size_t msg_size);

/**
 * Parse a field selector (fields.ParseSelector: terms `field=value`,
 * `field==value`, `field!=value` split on unescaped commas; `\,` `\=` `\\`
 * escape). Only metadata.name and metadata.namespace are supported, as for
 * ConfigMaps ("field label not supported: x" otherwise). Same conventions
 * as kvs__label_selector_parse.
 */
int kvs__field_selector_parse(kvs__selector **out, const char *text, char *msg,
                              size_t msg_size);

void kvs__selector_free(kvs__selector *s);

/** 1 if the selector selects everything (NULL, or no requirement). */
int kvs__selector_empty(const kvs__selector *s);

/** Label lookup: the value of label `key`, or NULL when absent. */
typedef const char *(*kvs__label_fn)(void *ctx, const char *key);

/** 1 if labels (given by `get`) satisfy every requirement of a label selector. */
int kvs__selector_match(const kvs__selector *s, kvs__label_fn get, void *ctx);

/** Same, labels as an array of n pairs (NULL values count as ""). */
int kvs__selector_match_kv(const kvs__selector *s, const kvs_kv *labels, size_t n);

/** 1 if an object `namespace`/`name` satisfies a field selector. */
int kvs__field_selector_match(const kvs__selector *s, const char *ns, const char *name);

#endif
