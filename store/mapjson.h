/*
 * mapjson.h — JSON for key-split maps: a map read and written as one JSON
 * object (`{field: value, ...}`), through cJSON.
 */
#ifndef KVS_MAPJSON_H
#define KVS_MAPJSON_H

#include <stddef.h>
#include <stdint.h>

#include "maprun.h"

/* The end of the one JSON value at p (RFC 8259, nesting <= 1000), or NULL
 * if there is none there; nothing is allocated (mapjson.c). */
const char *kvs__json_skip(const char *p, const char *end);

/* Parse `len` bytes as exactly one JSON value and print it compact into
 * *out (malloc). KVS_EINVAL if it is not one JSON value. */
int kvs__json_compact(char **out, size_t *out_len, const char *json, size_t len);

/* map.c: replace a whole map with sorted, distinct entries. */
int kvs__map_replace(kvs_ver *out, kvs_store *s, const char *key, const kvs__ment *ents,
                     size_t n, const kvs_map_write_options *o);
/* map.c: add an op whose JSON text is known compact and valid. */
int kvs__map_batch_put_compact_json(kvs_map_batch *b, const void *field, size_t flen,
                                    const char *json, size_t jlen);
/* map.c: the compaction policy over a run table. */
int kvs__map_policy(const kvs__mapidx *ix, uint32_t inline_max);

#endif
