/*
 * commit.h — the commit step every value kind ends with (docs/design.md
 * "Put", steps 1 and 6): read the key's index as the base, then replace it
 * with the base's resourceVersion as precondition (compare-and-swap), or
 * create it for a new key. Each attempt carries a fresh random commit id;
 * after a lost response (Conflict/AlreadyExists caused by our own re-sent
 * request, or KVS_EIO / KVS_ETIMEOUT with the outcome unknown) the index is
 * read back and our own commit recognised by that id and its exact bytes.
 *
 * Semantics by `expect`: NULL is a blind write (last writer wins: a lost
 * race rebuilds the manifest on the new base through the value kind's
 * rebase hook and retries, bounded); "" is create-only (KVS_EEXISTS if the
 * key exists); anything else is the version the caller read (KVS_ECONFLICT
 * unless it is still the committed one).
 *
 * The index object is the same for every kind: the store's labels, the
 * informative annotations (key, length, generation, commit id) and one
 * binaryData entry "manifest" holding the encoded manifest; what the
 * manifest says is the value kind's business.
 */
#ifndef KVS_COMMIT_H
#define KVS_COMMIT_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "segwrite.h"

/* The writer's random id of one commit attempt (docs/format.md §1.1). */
#define KVS__ANN_COMMIT "kvsplit.io/commit"
#define KVS__COMMIT_ID_LEN 16

typedef struct kvs__commit {
	kvs_store *s;
	const char *key;
	size_t key_len;
	char iname[KVS__NAME_BUF];
	const char *expect;           /* NULL blind, "" create-only, else a version */
	kvs__wstats *st;
	/* the write's segments (set by the value kind): its T_check goes into
	 * each attempt, and a commit that lands late touches them again
	 * (kvs__segw_after_commit) before it counts as done */
	kvs__segw *w;
	/* the base: the index as last read */
	int has_base;
	char base_rv[KVS_VER_MAX];
	/* what the next attempt commits (kvs__commit_set) */
	uint8_t *payload;             /* owned: the encoded manifest */
	size_t payload_len;
	uint64_t length;              /* annotation kvsplit.io/length */
	uint64_t generation;          /* annotation kvsplit.io/generation */
} kvs__commit;

/* Validate `key` (KVS_EINVAL) and name its index. `st` counts requests. */
int kvs__commit_init(kvs__commit *c, kvs_store *s, const char *key, const char *expect,
                     kvs__wstats *st);

/*
 * Step 1: read the index as the base and check `expect` against it
 * (KVS_ECONFLICT, or KVS_EEXISTS for create-only). *base gets the index
 * object (NULL for a new key); the caller frees it.
 */
int kvs__commit_read_base(kvs__commit *c, kvs_object **base);

/* What to commit next: takes `payload` (malloc'd), also when replacing. */
void kvs__commit_set(kvs__commit *c, uint8_t *payload, size_t len, uint64_t length,
                     uint64_t generation);

typedef struct kvs__commit_hooks {
	/* Before every attempt (the segment writer's touch-window refresh). */
	int (*before)(void *ctx);
	/*
	 * A blind write lost the race: `idx` is the index as re-read (NULL: the
	 * key is gone), already taken as the new base (c->has_base, c->base_rv).
	 * Make the write valid on it (kvs__segw_rebase) and kvs__commit_set the
	 * manifest rebuilt for it (its generation follows the new base's).
	 */
	int (*rebase)(void *ctx, kvs__commit *c, const kvs_object *idx);
	void *ctx;
} kvs__commit_hooks;

/*
 * Steps 5–6 until committed: before(), one attempt, and for a blind write
 * that lost the race, rebase() and again (s->put_retries attempts at most).
 * 0 and *out (may be NULL) the committed version, or an error; on any
 * error the index is as it was or holds another writer's commit.
 */
int kvs__commit_run(kvs_ver *out, kvs__commit *c, const kvs__commit_hooks *h);

void kvs__commit_clear(kvs__commit *c);

#endif
