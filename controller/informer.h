/*
 * informer.h — a label-scoped informer over the generic reflector
 * (kube/reflector.h) and the Kubernetes client's cJSON objects: list, then
 * watch with the member's selector, keep a local cache of only its share,
 * tell handlers what changed. client-go's SharedIndexInformer, cut to what a
 * sharded controller needs:
 *
 *  - the selector is `base_selector` AND the virtual-shard selector of the
 *    shards the member holds (vshard.h); kvc_informer_set_shards rebuilds
 *    the watch when that set changes (debounced by rebuild_delay_ns), so
 *    memory is the member's share only;
 *  - objects that leave the cache because the selector changed (their shard
 *    was handed off) are reported KVC_INF_LEFT, never KVC_INF_DELETED; a
 *    DELETED from the watch is confirmed with a GET (confirm_deletes): an
 *    object that still exists but no longer matches (its labels changed) is
 *    LEFT too. A controller cleans up on DELETED only;
 *  - a transform hook runs on every object before it is cached (keep only
 *    the fields the controller reads: kvc_informer_metadata keeps metadata);
 *  - single-valued indexes (kvc_informer_add_index) over cached objects;
 *  - resume after a dropped stream and relist after 410 are the reflector's;
 *  - `unsharded`: instead of the shard selector, watch the objects that do
 *    not carry the virtual-shard label yet (the stamper's view; any member
 *    may stamp them, see kvc_vshard_stamp).
 *
 * Handlers run on the informer's thread and should only enqueue keys
 * (kvc_queue_add); workers read the cache with kvc_informer_get.
 *
 * Threads: kvc_informer_start runs the informer on its own thread;
 * kvc_informer_step runs one round on the caller's (tests). Everything else
 * may be called from any thread.
 */
#ifndef KVC_INFORMER_H
#define KVC_INFORMER_H

#include <stddef.h>
#include <stdint.h>

#include <kvsplit/kube.h>

#include "controller/vshard.h"

/** Why a handler is called. */
typedef enum kvc_inf_event {
	KVC_INF_ADDED = 1,   /**< new in the cache (created, or its shard came to us) */
	KVC_INF_UPDATED = 2, /**< changed */
	KVC_INF_DELETED = 3, /**< deleted from the server (obj: its last cached state) */
	KVC_INF_LEFT = 4,    /**< no longer ours: shard handed off or labels changed (not deleted) */
	KVC_INF_RESYNC = 5   /**< periodic resync: unchanged, reconcile again */
} kvc_inf_event;

typedef struct kvc_informer_handlers {
	void *ctx;
	/** key is "namespace/name"; shard is the object's vshard label (-1 if
	 *  none); obj is the cached (transformed) object, valid during the call. */
	void (*on_event)(void *ctx, kvc_inf_event ev, const char *key, int shard, const cJSON *obj);
} kvc_informer_handlers;

/**
 * Transform an object before it is cached. Takes ownership of `obj` and
 * returns what to keep (obj itself, or a new tree after freeing obj), or
 * NULL when out of memory.
 */
typedef cJSON *(*kvc_informer_transform)(void *ctx, cJSON *obj);

/** A transform keeping apiVersion, kind and metadata minus managedFields. */
cJSON *kvc_informer_metadata(void *ctx, cJSON *obj);

/**
 * An index function: write the object's index value into buf (cap bytes)
 * and return 1, or 0 when the object is not indexed.
 */
typedef int (*kvc_informer_index_fn)(void *ctx, const cJSON *obj, char *buf, size_t cap);
#define KVC_INFORMER_INDEX_MAX 4
#define KVC_INFORMER_INDEX_VALUE_MAX 256

#define KVC_INFORMER_OPTS_VERSION 1
typedef struct kvc_informer_opts {
	unsigned int version;            /**< KVC_INFORMER_OPTS_VERSION */
	const char *name;                /**< names it in errors; default "informer" */
	const kvs_kube_resource *resource; /**< required */
	const char *ns;                  /**< NULL: the client's namespace */
	const char *base_selector;       /**< ANDed with the shard selector; NULL: none */
	int unsharded;                   /**< watch objects without the vshard label */
	unsigned vshards;                /**< V; default KVC_VSHARDS_DEFAULT */
	kvc_informer_transform transform; /**< NULL: keep whole objects */
	void *transform_ctx;
	size_t page_limit;               /**< list page size; default 500 */
	int confirm_deletes;             /**< GET on a watch DELETED to tell LEFT apart; default 1, < 0 off */
	int64_t rebuild_delay_ns;        /**< debounce of shard-set changes; default 100 ms */
	int64_t resync_ns;               /**< RESYNC every cached key this often; 0: never */
	size_t max_items;                /**< cache cap (KVS_ETOOBIG past it); default 1<<22 */
} kvc_informer_opts;
#define KVC_INFORMER_OPTS_INIT { KVC_INFORMER_OPTS_VERSION, NULL, NULL, NULL, NULL, 0, 0, NULL, \
	                         NULL, 0, 0, 0, 0, 0 }

typedef struct kvc_informer_stats {
	size_t objects;          /**< cached now */
	size_t bytes;            /**< estimated bytes of the cache (keys, versions, trees) */
	uint64_t events;         /**< handler calls */
	uint64_t added, updated, deleted, left;
	uint64_t rebuilds;       /**< selector changes applied */
	uint64_t errors;         /**< failed rounds (the reflector retries) */
	int synced;              /**< the current selector's listing is complete */
} kvc_informer_stats;

typedef struct kvc_informer kvc_informer;

/**
 * @param[out] out  free with kvc_informer_free
 * @param kube      borrowed; must outlive the informer
 * @param h         copied; may be NULL
 * Nothing is watched until the first kvc_informer_set_shards (an
 * `unsharded` informer watches from the first step).
 * @return 0, KVS_EINVAL, KVS_ENOMEM
 */
int kvc_informer_new(kvc_informer **out, kvs_kube *kube, const kvc_informer_opts *opts,
                     const kvc_informer_handlers *h);
/** Stop (if started) and free; NULL is fine. */
void kvc_informer_free(kvc_informer *inf);

/** Add an index before the informer runs. @return 0, KVS_EINVAL, KVS_ETOOBIG */
int kvc_informer_add_index(kvc_informer *inf, const char *name, kvc_informer_index_fn fn,
                           void *ctx);

/** The member's shard set changed (or was first known): rebuild the watch. */
void kvc_informer_set_shards(kvc_informer *inf, const kvc_shardset *held);

/** One round: apply a pending shard set, wait up to timeout_ms for an event. */
int kvc_informer_step(kvc_informer *inf, int timeout_ms);

/** Run kvc_informer_step on a thread of its own until kvc_informer_stop. */
int kvc_informer_start(kvc_informer *inf);
void kvc_informer_stop(kvc_informer *inf);

/**
 * A copy of the cached object: 1 with *out (cJSON_Delete it; out may be
 * NULL) and *shard (may be NULL), 0 if the key is not cached.
 */
int kvc_informer_get(kvc_informer *inf, const char *key, cJSON **out, int *shard);

/**
 * The keys whose index `name` has `value`: *keys is a malloc'd array of n
 * malloc'd strings (kvc_informer_keys_free). @return 0, KVS_EINVAL, KVS_ENOMEM
 */
int kvc_informer_by_index(kvc_informer *inf, const char *name, const char *value, char ***keys,
                          size_t *n);
void kvc_informer_keys_free(char **keys, size_t n);

/** The cached keys (a snapshot), as for kvc_informer_by_index. */
int kvc_informer_keys(kvc_informer *inf, char ***keys, size_t *n);

void kvc_informer_stats_get(kvc_informer *inf, kvc_informer_stats *out);

/**
 * The selector the informer uses for `held` into buf: 0 and "" when there
 * is nothing to watch, the length, or KVS_ETOOBIG.
 */
int kvc_informer_selector(char *buf, size_t cap, const char *base, const kvc_shardset *held,
                          unsigned v, int unsharded);

/**
 * Stamp an unlabelled object with its virtual-shard label, computed from
 * its uid: a merge patch conditional on its resourceVersion. 0 when stamped
 * or already labelled, or when someone else changed it first (a 409: they
 * stamped it, or the next event will bring it back), KVS_ENOTFOUND when it
 * is gone, another error of the client.
 */
int kvc_vshard_stamp(kvs_kube *kube, const kvs_kube_resource *res, const char *ns,
                     const cJSON *obj, unsigned v);

#endif
