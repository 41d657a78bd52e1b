/*
 * kube/reflector.h — list, then watch from the list's revision, and keep
 * going across dropped streams and compacted history (client-go's
 * Reflector / ListWatch). Private to the library (kvs__ prefix).
 *
 * A reflector runs over two small vtables, so the same code serves key
 * watches on any backend (items are kvs_object, store/reflect.c) and the
 * controller's informers (items are the Kubernetes client's JSON objects):
 *
 *  - a *source* lists one page of objects matching a selector and opens a
 *    watch from a resourceVersion (kvs__rf_source_ops);
 *  - an *item* type says what an object's key and resourceVersion are and
 *    how to free it (kvs__rf_item_ops).
 *
 * What the reflector does, in order:
 *
 *  1. List every page (selector, page limit, continue token), reporting
 *     each object as ADDED (unknown key) or MODIFIED (known key at another
 *     version), then DELETED for every known key that the listing did not
 *     show. The first listing is read by kvs__reflector_open (its first
 *     page before open returns), unless `since` says where to start.
 *  2. Watch from the revision of the listing's first page. Every event's
 *     resourceVersion, bookmarks included, becomes the resume point.
 *  3. When the stream fails with a transient error (KVS_EIO, KVS_ETIMEOUT
 *     from a request, KVS_ENOMEM, KVS_EDENIED), reopen from the resume
 *     point, with exponential backoff (backoff_min_ms doubling to
 *     backoff_max_ms) inside the caller's timeout.
 *  4. When the source answers KVS_EGONE (history compacted, HTTP 410),
 *     list again; what changed while away is reported, marked `resync`:
 *     ADDED/MODIFIED for every key whose version differs from the last one
 *     seen, DELETED for every key that disappeared.
 *
 * Versions are opaque strings compared for equality, with one use of
 * order: when two are both decimal (one revision counter, as on every
 * Kubernetes server), an event older than the version last seen for its
 * key is history and is dropped (a list whose later pages were served from
 * newer states, then a watch from the first page's revision replays it).
 *
 * The reflector keeps, per key, the key and the last version seen (and the
 * object itself with `keep_objects`, an informer's cache); nothing else.
 *
 * Threads: one reflector belongs to one thread at a time. The source may be
 * shared if its own methods are thread-safe.
 */
#ifndef KVS_KUBE_REFLECTOR_H
#define KVS_KUBE_REFLECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "kvsplit.h"

#define KVS__RF_KEY_MAX 1024u        /* longest item key ("namespace/name") */
#define KVS__RF_RV_MAX KVS_VER_MAX   /* resourceVersion buffer, NUL included */
#define KVS__RF_DEF_MAX_ITEMS (1u << 24)
#define KVS__RF_DEF_BACKOFF_MIN_MS 10
#define KVS__RF_DEF_BACKOFF_MAX_MS 1000

/** Event types (from the source, and to the caller; BOOKMARK only from the source). */
typedef enum kvs__rf_type {
	KVS__RF_ADDED = 1,
	KVS__RF_MODIFIED = 2,
	KVS__RF_DELETED = 3,
	KVS__RF_BOOKMARK = 4
} kvs__rf_type;

/**
 * The item type. Items are opaque to the reflector; it only asks these.
 */
typedef struct kvs__rf_item_ops {
	/** The item's identity, stable across its versions ("name" or
	 *  "namespace/name"); never NULL while the item lives. */
	const char *(*key)(const void *item);
	/** Its resourceVersion ("" when unset); never NULL. */
	const char *(*rv)(const void *item);
	/** Free an item (NULL never passed). */
	void (*free)(void *item);
} kvs__rf_item_ops;

/**
 * One page of a listing, filled by kvs__rf_source_ops.list. Everything in it
 * is allocated with malloc and owned by the reflector once list returned 0:
 * `items` (an array of `count` items, freed with free() after each item
 * with kvs__rf_item_ops.free), `next` and `rv` (free()).
 */
typedef struct kvs__rf_page {
	void **items;
	size_t count;
	char *next;              /**< continue token; NULL or "" on the last page */
	char *rv;                /**< revision the page was served at; NULL if unknown */
} kvs__rf_page;

/** One event of a watch stream, filled by kvs__rf_source_ops.watch_next. */
typedef struct kvs__rf_wevent {
	kvs__rf_type type;
	void *item;              /**< owned by the reflector after 0 is returned; NULL for BOOKMARK */
	char rv[KVS__RF_RV_MAX]; /**< BOOKMARK: its revision (other types: ignored, the item says) */
} kvs__rf_wevent;

#define KVS__RF_SOURCE_OPS_VERSION 1

/**
 * Where items come from. Every method returns 0 or a negative KVS_E code
 * with kvs_error_set() detail; `src` is the pointer given to
 * kvs__reflector_open.
 */
typedef struct kvs__rf_source_ops {
	unsigned int version;    /**< KVS__RF_SOURCE_OPS_VERSION */
	/**
	 * List one page: objects matching `selector` (NULL = all), at most
	 * `limit` (0 = the source's default), from `token` (NULL = first page).
	 * On 0, *out is filled (see kvs__rf_page). KVS_EGONE when the token
	 * expired (the reflector lists again from the start).
	 */
	int (*list)(void *src, kvs__rf_page *out, const char *selector, size_t limit,
	            const char *token);
	/**
	 * Open a watch of every change after `from_rv` (never ""). KVS_EGONE
	 * when that history is compacted. *out is the watch handle.
	 */
	int (*watch_open)(void *src, void **out, const char *selector, const char *from_rv);
	/**
	 * Next event, waiting up to timeout_ms (-1 forever, 0 do not wait).
	 * KVS_ETIMEOUT if none came, KVS_EGONE after compaction, another code
	 * when the stream broke (the reflector closes the handle and reopens).
	 */
	int (*watch_next)(void *watch, kvs__rf_wevent *out, int timeout_ms);
	/** Close a watch handle (never NULL). */
	void (*watch_close)(void *watch);
} kvs__rf_source_ops;

#define KVS__REFLECTOR_OPTIONS_VERSION 1

typedef struct kvs__reflector_options {
	unsigned int version;    /**< KVS__REFLECTOR_OPTIONS_VERSION */
	/** Names the reflector in error details ("watch", "informer pods"); default "reflector". */
	const char *name;
	const char *selector;    /**< passed to list and watch_open; NULL = everything */
	size_t page_limit;       /**< list page size; 0 = the source's default */
	/** Start watching after this resourceVersion without listing first
	 *  (then deletes of keys the reflector never saw are reported too, since
	 *  it has no full picture until a relist). NULL = list first. */
	const char *since;
	/** Keep each item's latest version (an informer's cache, read with
	 *  kvs__reflector_get); otherwise only keys and versions are kept. */
	int keep_objects;
	/** Optional filter on keys: items whose key it refuses (returns 0)
	 *  are neither kept nor reported. Must depend on the key only. */
	int (*want)(void *ctx, const char *key);
	void *want_ctx;
	int backoff_min_ms;      /**< 0 = KVS__RF_DEF_BACKOFF_MIN_MS */
	int backoff_max_ms;      /**< 0 = KVS__RF_DEF_BACKOFF_MAX_MS */
	size_t max_items;        /**< keys kept at most (KVS_ETOOBIG over it); 0 = KVS__RF_DEF_MAX_ITEMS */
} kvs__reflector_options;
#define KVS__REFLECTOR_OPTIONS_INIT { KVS__REFLECTOR_OPTIONS_VERSION, NULL, NULL, 0, NULL, \
	                              0, NULL, NULL, 0, 0, 0 }

/** A change, as kvs__reflector_next reports it. */
typedef struct kvs__rf_event {
	kvs__rf_type type;       /**< ADDED, MODIFIED or DELETED */
	const char *key;
	/** Version after the change; for DELETED the deletion's revision, or
	 *  the last version seen when a relist found the key gone. */
	const char *rv;
	/**
	 * The item: its new state, or for DELETED its last state. NULL for a
	 * DELETED found by a relist when objects are not kept.
	 */
	void *item;
	int resync;              /**< 1 when reported by a relist after a gap (410) */
} kvs__rf_event;

typedef struct kvs__reflector kvs__reflector;

/**
 * Create a reflector over `ops`/`src` with items of type `iops`. Unless
 * opts->since is set, the first page of the initial listing is read before
 * returning (its errors are returned here), so the listing starts from the
 * state at the time of the call. The reflector copies `opts` and its
 * strings; `ops`, `src` and `iops` must outlive it.
 *
 * @param[out] out   the reflector; release with kvs__reflector_close
 * @return 0, KVS_EINVAL (arguments), KVS_ENOMEM, or the first list's error
 */
int kvs__reflector_open(kvs__reflector **out, const kvs__rf_source_ops *ops, void *src,
                        const kvs__rf_item_ops *iops, const kvs__reflector_options *opts);

/**
 * Wait up to timeout_ms (-1 = forever, 0 = do not wait) for the next
 * change. Pointers in *out (key, rv, item) are valid until the next call
 * of kvs__reflector_next or kvs__reflector_close; the item stays owned by
 * the reflector (with keep_objects it is the cached object itself).
 *
 * @return 0 with *out filled; KVS_ETIMEOUT when nothing came; the
 * transient error of the source (KVS_EIO, ...) when the timeout expired
 * while it failed (the reflector stays usable and retries on the next
 * call); KVS_ECORRUPT for an item whose key or version is over the caps
 * (it is skipped; the next call goes on); KVS_ETOOBIG over max_items;
 * another error of the source as it came (the reflector stays usable).
 */
int kvs__reflector_next(kvs__rf_event *out, kvs__reflector *r, int timeout_ms);

/**
 * The caller could not handle the event returned last because of a
 * transient failure `code` (its detail is in kvs_error_last()): the next
 * call to kvs__reflector_next waits one backoff step (inside its timeout;
 * if the timeout is shorter it returns `code` with that detail) and then
 * returns the same event again. The kept versions are not changed twice.
 */
void kvs__reflector_redeliver(kvs__reflector *r, int code);

/**
 * What the reflector holds for `key`: 1 and *rv (may be NULL) the last
 * version seen and *item (may be NULL) the kept object (NULL without
 * keep_objects); 0 if it holds nothing for that key. Pointers are valid
 * until the next kvs__reflector_next or kvs__reflector_close.
 */
int kvs__reflector_get(const kvs__reflector *r, const char *key, const char **rv,
                       void **item);

/** Keys held now; and the i-th of them in key order (0 <= i < count). */
size_t kvs__reflector_count(const kvs__reflector *r);
void kvs__reflector_at(const kvs__reflector *r, size_t i, const char **key, const char **rv,
                       void **item);

/** 1 once a full listing has been reported (the picture is complete). */
int kvs__reflector_synced(const kvs__reflector *r);

/** The resume point: the last resourceVersion seen ("" before any). */
const char *kvs__reflector_rv(const kvs__reflector *r);

/** Free the reflector, its kept items and its open watch. NULL is fine. */
void kvs__reflector_close(kvs__reflector *r);

#endif
