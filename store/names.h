/*
 * names.h — how kvsplit names things in the cluster (docs/design.md
 * "Objects", docs/format.md "Objects"): store names, key validation, index
 * and segment object names, the labels and annotations every object carries,
 * and the hex form of XXH3-128 addresses.
 *
 * An address is always the 16-byte *canonical* (big-endian) form of an
 * XXH3-128 hash (XXH128_canonicalFromHash), so hex(addr) is what people see.
 */
#ifndef KVS_NAMES_H
#define KVS_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"

#define KVS__STORE_NAME_MAX 40   /* [a-z0-9-], alnum at both ends */
#define KVS__OBJ_NAME_MAX 253    /* DNS-1123 subdomain */
#define KVS__NAME_BUF (KVS__OBJ_NAME_MAX + 1)
#define KVS__ADDR_LEN 16
#define KVS__ADDR_HEX 32

/* Labels (every object) and annotations (index: informative only; segment:
 * touched). */
#define KVS__LABEL_MANAGED "app.kubernetes.io/managed-by"
#define KVS__LABEL_MANAGED_VALUE "kvsplit"
#define KVS__LABEL_STORE "kvsplit.io/store"
#define KVS__LABEL_ROLE "kvsplit.io/role"
#define KVS__ROLE_INDEX "index"
#define KVS__ROLE_SEGMENT "segment"
#define KVS__ANN_KEY "kvsplit.io/key"
#define KVS__ANN_LENGTH "kvsplit.io/length"
#define KVS__ANN_GENERATION "kvsplit.io/generation"
#define KVS__ANN_TOUCHED "kvsplit.io/touched"
/* binaryData key of the index object that holds the manifest. */
#define KVS__INDEX_DATA_KEY "manifest"

/* 0 if `name` is a valid store name, else KVS_EINVAL with detail. */
int kvs__store_name_check(const char *name);

/*
 * 0 if key[0..len) is a valid key: 1..KVS_KEY_MAX bytes of well-formed UTF-8
 * with no control characters (C0, DEL, C1). KVS_EINVAL with detail otherwise.
 */
int kvs__key_check(const char *key, size_t len);

/*
 * Index object name of a key (key must pass kvs__key_check):
 * "kvs.<store>.i-<escaped>", or "kvs.<store>.h-<32 hex XXH3-128(key)>" when
 * the escaped form would exceed 253 characters. `out` holds KVS__NAME_BUF.
 */
void kvs__index_name(char out[KVS__NAME_BUF], const char *store, const char *key, size_t len);

/* Segment object name "kvs.<store>.s-<32 hex>". */
void kvs__segment_name(char out[KVS__NAME_BUF], const char *store,
                       const uint8_t addr[KVS__ADDR_LEN]);

/*
 * Parse a segment object name of `store` back into its address. 0 or
 * KVS_EINVAL (not a segment name of this store).
 */
int kvs__segment_name_parse(uint8_t addr[KVS__ADDR_LEN], const char *store, const char *name);

/* Label selectors: "kvsplit.io/store=<store>,kvsplit.io/role=<role>". */
void kvs__selector(char out[KVS__NAME_BUF], const char *store, const char *role);

/* Set the three labels of design.md on `obj` (role: KVS__ROLE_*). */
int kvs__set_labels(kvs_object *obj, const char *store, const char *role);

/* 1 if p[0..len) is well-formed UTF-8 (shortest form, no surrogates). */
int kvs__utf8_valid(const void *p, size_t len);

/* Lowercase hex of n bytes into out (2n+1 bytes incl. NUL). */
void kvs__hex(char *out, const uint8_t *bytes, size_t n);
/* Parse exactly 2n lowercase hex digits; 0 or -1. */
int kvs__unhex(uint8_t *out, const char *hex, size_t n);

/* XXH3-128 of bytes in canonical (big-endian) form. */
void kvs__addr_of(uint8_t out[KVS__ADDR_LEN], const void *data, size_t len);

#endif
