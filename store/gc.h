/*
 * gc.h — what garbage collection, fsck and watch share (private to the
 * library): the table of a store's segments as gc step (a) lists them, the
 * deletion rule of step (c), and reading a key back out of an index name.
 * docs/design.md "Acknowledged means durable — and the gc race" is the
 * protocol; gc.c and fsck.c are its only users that delete.
 */
#ifndef KVS_GC_H
#define KVS_GC_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define KVS__GC_DEF_GRACE_S 3600u
#define KVS__GC_SEG_PAGE 500u     /* metadata-only pages are small */
/* Index pages carry whole manifests (up to ~1 MiB each): keep a page well
 * under the Kubernetes backend's 64 MiB page cap even when base64'd. */
#define KVS__GC_INDEX_PAGE 40u
/* Segments a store may hold for gc/fsck to work on (memory: ~100 B each). */
#define KVS__GC_MAX_SEGMENTS (1u << 24)

/* One segment as listed in step (a). */
typedef struct kvs__segent {
	uint8_t addr[16];
	char *name;
	char *rv;            /* resourceVersion r(S) of step (a) */
	int64_t t_ms;        /* last create-or-touch, server ms; INT64_MAX = unknown (never eligible) */
	uint64_t bytes;      /* data bytes */
	unsigned referenced : 1;
	unsigned managed_ok : 1; /* managed-by label is right */
	unsigned deep_done : 1;  /* fsck: canonical encoding checked */
} kvs__segent;

typedef struct kvs__segtab {
	kvs__segent *v;      /* sorted by addr */
	size_t n, cap;
	uint64_t foreign;    /* objects under the selector whose names are not this store's segments */
} kvs__segtab;

/* Step (a): list every segment of the store, metadata only. */
int kvs__segtab_list(kvs__segtab *t, kvs_store *s);
kvs__segent *kvs__segtab_find(const kvs__segtab *t, const uint8_t addr[16]);
void kvs__segtab_clear(kvs__segtab *t);

/*
 * Step (c) for one segment: delete `e` if it is unreferenced and its
 * last create-or-touch time is older than `grace_ms` at `now_ms`, with the
 * precondition resourceVersion = e->rv. *outcome: 0 not eligible (young),
 * 1 deleted (or deletable when dry_run), 2 raced (409: touched or re-created
 * since step (a)), 3 already gone (404). Returns 0 or an operational error.
 */
enum { KVS__GC_YOUNG = 0, KVS__GC_DELETED = 1, KVS__GC_RACED = 2, KVS__GC_GONE = 3 };
int kvs__gc_collect_one(int *outcome, kvs_store *s, const kvs__segent *e, int64_t now_ms,
                        int64_t grace_ms, int dry_run);

/*
 * The key an index object name stands for ("kvs.<store>.i-<escaped>"),
 * unescaped into out (cap bytes incl. NUL). 0, or -1 when the name is
 * hashed ("h-"), malformed or not of this store. Used only to name a key in
 * a report when its manifest cannot be decoded: names are injective.
 */
int kvs__index_name_key(char *out, size_t cap, const char *store, const char *name);

/* Describe an index for error messages: "key \"k\" (index NAME)". */
void kvs__index_describe(char *out, size_t cap, const char *store, const kvs_object *index);

/* Strict decimal int64 (annotation values); 0 or -1. */
int kvs__parse_i64(const char *s, int64_t *out);

#endif
