/*
 * kvsplit.h — the public API of libkvsplit.
 *
 * libkvsplit stores values of any size in a Kubernetes cluster's own etcd,
 * through the ordinary API: a value is cut into content-defined chunks,
 * compressed with lz4, named by XXH3-128, packed into immutable segment
 * ConfigMaps, and committed by replacing one small index ConfigMap per key
 * with an expected resourceVersion. See docs/design.md.
 *
 * Conventions (libgit2/SQLite style):
 *  - every function returns 0 on success or a negative KVS_E... code;
 *    kvs_error_last() gives the detail of the last failure on this thread.
 *    Decide what to do from the code, never from the detail's text: the
 *    text is for people and may change in any release;
 *  - out-parameters come first and are called `out`; memory returned through
 *    them belongs to the caller and is released with the matching free
 *    function named in each comment;
 *  - option structs start with `unsigned int version` and have an _INIT macro;
 *    passing NULL means "all defaults";
 *  - the library never prints, exits or aborts.
 *
 * Option structs grow. Each has a KVS_..._OPTIONS_VERSION; a field added
 * later says "(version N)". Set `version` with the _INIT macro (or to the
 * _VERSION constant of the header you compile against): the library reads
 * exactly the fields that version has, no byte past them, and gives every
 * later field its default. So a program built against an older header keeps
 * working with a newer library. A version of 0, or one newer than the
 * library knows, is KVS_EINVAL, with a detail naming the struct and both
 * versions.
 *
 * Zero means "default" in every option field. Where a field can also be
 * turned off, "off" has its own named constant (KVS_CACHE_OFF,
 * KVS_MAX_BYTES_UNLIMITED, KVS_KUBE_QPS_OFF, KVS_KUBE_NO_RETRIES,
 * KVS_FSCK_READ_NONE) — never 0.
 *
 * Thread safety: a kvs_store may be used from several threads at once; every
 * other handle (watch, iterator) belongs to one thread at a time.
 *
 * Threads the library starts (docs/design.md "Threads"). None outlives the
 * call that started it, and no handle owns a background thread:
 *  - kvs_put / kvs_put_stream / kvs_put_fd compress new chunks on up to
 *    kvs_options.workers threads (the caller's thread and workers - 1 more,
 *    started for each 4 MiB window of the value and joined before the next);
 *  - kvs_get, and kvs_watch_next with KVS_WATCH_VALUES, decode and verify a
 *    run of segments on up to kvs_options.workers threads the same way;
 *    streaming gets (kvs_get_stream, kvs_get_fd) use the caller's thread;
 *  - the Kubernetes backend and client (kvsplit/kube.h) run their
 *    transfers on the calling thread (one libcurl multi handle, up to
 *    kvs_kube_options.concurrency transfers per batch); libcurl may start
 *    a short-lived thread per DNS lookup of a server given by host name
 *    (its threaded resolver);
 *  - watches, gc and fsck start none.
 * Default workers: the online CPUs, at most 4; workers = 1 does everything
 * on the caller's thread. Each put or whole-value get in progress has its
 * own workers - 1 helpers: a process running many at once should size
 * workers down (1 or 2) and get its parallelism from its own threads.
 */
#ifndef KVSPLIT_H
#define KVSPLIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(KVS_BUILDING_LIBRARY) && defined(__GNUC__)
#define KVS_API __attribute__((visibility("default")))
#else
#define KVS_API
#endif

#define KVS_VERSION_MAJOR 0
#define KVS_VERSION_MINOR 1
#define KVS_VERSION_PATCH 0
#define KVS_VERSION_NUMBER \
	(KVS_VERSION_MAJOR * 10000 + KVS_VERSION_MINOR * 100 + KVS_VERSION_PATCH)

/** Version of the library linked at run time (KVS_VERSION_NUMBER form). */
KVS_API int kvs_version(void);

/*
 * Error codes. FROZEN: numbers never change once released; new codes are only
 * appended (more negative).
 */
typedef enum kvs_error_code {
	KVS_OK = 0,
	KVS_ERROR = -1,          /**< unclassified failure (see kvs_error_last) */
	KVS_ENOTFOUND = -2,      /**< key, object or referenced segment does not exist */
	KVS_ECONFLICT = -3,      /**< expected version is not the committed one (HTTP 409) */
	KVS_EEXISTS = -4,        /**< object already exists (create) */
	KVS_ECORRUPT = -5,       /**< stored bytes fail verification (hash, size, decode) */
	KVS_ETOOBIG = -6,        /**< object or value over a limit (HTTP 422 too long) */
	KVS_EIO = -7,            /**< transport failure: connection, TLS, server 5xx */
	KVS_ENOMEM = -8,         /**< out of memory */
	KVS_EINVAL = -9,         /**< invalid argument (bad key, bad option) */
	KVS_EGONE = -10,         /**< watch history compacted (HTTP 410) */
	KVS_EDENIED = -11,       /**< unauthorized or forbidden (HTTP 401/403) */
	KVS_ETIMEOUT = -12,      /**< deadline passed, or the server kept throttling */
	KVS_ECANCELED = -13,     /**< a user callback asked to stop */
	KVS_EUNSUPPORTED = -14,  /**< format version or feature this build does not know */
	KVS_ECONFIG = -15,       /**< bad configuration: kubeconfig, credentials, options */
	KVS_EINVALOBJ = -16,     /**< the server refused an object as invalid (HTTP 422) */
	KVS_EITER_DONE = -17,    /**< iteration finished; not an error */
	/**
	 * the put's segments may have been collected: it took longer than its
	 * touch window (kvs_options.touch_window_s) between creating a segment
	 * and committing. Nothing was committed; retrying the put is safe.
	 */
	KVS_ESTALE = -18
} kvs_error_code;

/** Static, human-readable name of an error code; never NULL. */
KVS_API const char *kvs_strerror(int code);

/**
 * Detail of the last failure on the calling thread ("segment kvs.x.s.1f2e...:
 * chunk 3 fails XXH3-128 check"); never NULL (empty string when none). Valid
 * until the next libkvsplit call on this thread.
 */
KVS_API const char *kvs_error_last(void);

/** Release memory returned by the library (values, strings). Accepts NULL. */
KVS_API void kvs_free(void *ptr);

/*
 * Versions. A key's version is the resourceVersion of its index object: an
 * opaque string compared only for equality. kvs_ver carries it by value.
 */
#define KVS_VER_MAX 64
typedef struct kvs_ver {
	char str[KVS_VER_MAX]; /**< NUL-terminated; "" means "no version / absent" */
} kvs_ver;

/* ------------------------------------------------------------------------ */
/* Store                                                                    */

typedef struct kvs_store kvs_store;
typedef struct kvs_backend kvs_backend; /* see kvsplit/backend.h */

#define KVS_OPTIONS_VERSION 2
/** kvs_options.cache_bytes: no segment cache at all. */
#define KVS_CACHE_OFF UINT64_MAX
/**
 * Store options. Zero fields take the documented default, so
 * `kvs_options o = KVS_OPTIONS_INIT;` then setting a few fields is enough.
 */
typedef struct kvs_options {
	unsigned int version;     /**< KVS_OPTIONS_VERSION */
	const char *name;         /**< store name: [a-z0-9-], 1..40 chars; default "default" */
	uint32_t chunk_min;       /**< content-defined chunking; default 16 KiB */
	uint32_t chunk_avg;       /**< default 64 KiB; power of two */
	uint32_t chunk_max;       /**< default 256 KiB; at most 1 MiB */
	uint32_t inline_max;      /**< values up to this many bytes live in the index; default 64 KiB */
	uint32_t segment_target;  /**< pack chunks into segments up to ~this many stored bytes; default 960 KiB */
	unsigned int concurrency; /**< segments in flight per operation; default 8 */
	uint64_t cache_bytes;     /**< local segment cache (shared by get and watch); default 64 MiB; KVS_CACHE_OFF = none */
	unsigned int lz4_accel;   /**< LZ4 acceleration; default 1 */
	uint32_t touch_window_s;  /**< a put must commit within this long of creating or touching a segment; default 600 s (keep < gc grace) */
	/**
	 * (version 2) threads per put or whole-value get, counting the caller's
	 * (see "Threads" at the top); default the online CPUs, at most 4;
	 * 1 = only the caller's thread; at most 8.
	 */
	unsigned int workers;
} kvs_options;
#define KVS_OPTIONS_INIT { KVS_OPTIONS_VERSION, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/**
 * Open a store on a backend.
 *
 * @param[out] out      the store; release with kvs_close()
 * @param[in]  backend  ownership passes to the store on success (it is freed
 *                      by kvs_close); on failure the caller still owns it
 * @param[in]  opts     NULL for defaults
 * @return 0, KVS_EINVAL (bad options, or a backend vtable version this
 *         library does not know), KVS_ENOMEM
 */
KVS_API int kvs_open(kvs_store **out, kvs_backend *backend, const kvs_options *opts);

/** Close a store and free its backend. Accepts NULL. */
KVS_API void kvs_close(kvs_store *store);

/* ------------------------------------------------------------------------ */
/* Put                                                                      */

/** Figures of one put, filled when kvs_put_options.stats is not NULL. */
typedef struct kvs_put_stats {
	uint64_t raw_bytes;        /**< value length */
	uint64_t chunks;           /**< chunks in the value */
	uint64_t chunks_written;   /**< chunks that had to be uploaded */
	uint64_t segments_written; /**< segment objects created */
	uint64_t bytes_written;    /**< stored bytes of created segments + index manifest */
	uint64_t requests;         /**< backend calls made */
	uint64_t stored_bytes;     /**< total stored bytes the committed value references */
} kvs_put_stats;

#define KVS_PUT_OPTIONS_VERSION 1
typedef struct kvs_put_options {
	unsigned int version;        /**< KVS_PUT_OPTIONS_VERSION */
	/**
	 * NULL: blind write (last writer wins, retried internally on conflict).
	 * "": create only; KVS_EEXISTS if the key exists.
	 * otherwise: the version the caller read; KVS_ECONFLICT if it is no
	 * longer the committed one. Nothing changes on failure.
	 */
	const char *expect_version;
	kvs_put_stats *stats;        /**< optional figures */
	/** optional progress: bytes consumed so far; non-zero return cancels */
	int (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
} kvs_put_options;
#define KVS_PUT_OPTIONS_INIT { KVS_PUT_OPTIONS_VERSION, NULL, NULL, NULL, NULL }

/**
 * Store `len` bytes under `key`, atomically: readers see the whole old value
 * or the whole new one.
 *
 * @param[out] out  the new version (may be NULL)
 * @param key       1..KVS_KEY_MAX bytes, no NUL
 * @return 0, KVS_ECONFLICT, KVS_EEXISTS, KVS_EINVAL, KVS_ETOOBIG, KVS_EIO,
 *         KVS_EDENIED, KVS_ETIMEOUT, KVS_ENOMEM, KVS_ECANCELED, KVS_ESTALE
 *         (slower than the touch window; nothing committed)
 */
KVS_API int kvs_put(kvs_ver *out, kvs_store *store, const char *key,
                    const void *data, size_t len, const kvs_put_options *opts);

#define KVS_KEY_MAX 1024

/**
 * Source of a streaming put. Fill `buf` with up to `cap` bytes and set *got;
 * *got == 0 means end of value. A non-zero return aborts the put
 * (KVS_ECANCELED) and nothing is committed.
 */
typedef int (*kvs_read_cb)(void *ctx, void *buf, size_t cap, size_t *got);

/** Streaming put: memory stays bounded by a few segments whatever the size. */
KVS_API int kvs_put_stream(kvs_ver *out, kvs_store *store, const char *key,
                           kvs_read_cb read, void *ctx, const kvs_put_options *opts);

/** Streaming put reading `fd` to end of file. */
KVS_API int kvs_put_fd(kvs_ver *out, kvs_store *store, const char *key, int fd,
                       const kvs_put_options *opts);

/* ------------------------------------------------------------------------ */
/* Get                                                                      */

/** max_bytes: no cap on the value's length. */
#define KVS_MAX_BYTES_UNLIMITED UINT64_MAX
/** Default kvs_get_options.max_bytes of kvs_get (whole value in memory): 1 GiB. */
#define KVS_GET_MAX_BYTES_DEFAULT (1ull << 30)

#define KVS_GET_OPTIONS_VERSION 2
typedef struct kvs_get_options {
	unsigned int version;  /**< KVS_GET_OPTIONS_VERSION */
	int (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
	/**
	 * (version 2) largest value length this read accepts. The length a
	 * manifest declares is checked before anything is allocated for it:
	 * over the cap is KVS_ETOOBIG naming both sizes, and nothing is read.
	 * 0 = default: KVS_GET_MAX_BYTES_DEFAULT for kvs_get, no cap for
	 * kvs_get_stream / kvs_get_fd (their memory stays bounded by a few
	 * segments whatever the length). KVS_MAX_BYTES_UNLIMITED = no cap.
	 */
	uint64_t max_bytes;
} kvs_get_options;
#define KVS_GET_OPTIONS_INIT { KVS_GET_OPTIONS_VERSION, NULL, NULL, 0 }

/**
 * Read a whole value. Every byte returned was verified against its chunk's
 * XXH3-128 address and the whole-value hash.
 *
 * @param[out] out      the value, release with kvs_free(); a 0-byte value
 *                      gives a non-NULL pointer
 * @param[out] out_len  its length
 * @param[out] out_ver  its version (may be NULL)
 * @return 0, KVS_ENOTFOUND (no such key, or a referenced segment is
 *         missing: kvs_error_last says which), KVS_ETOOBIG (longer than
 *         max_bytes, 1 GiB by default), KVS_ECORRUPT, KVS_EIO, ...
 */
KVS_API int kvs_get(void **out, size_t *out_len, kvs_ver *out_ver, kvs_store *store,
                    const char *key, const kvs_get_options *opts);

/**
 * Sink of a streaming get: consume `len` verified bytes. Non-zero return
 * aborts with KVS_ECANCELED.
 */
typedef int (*kvs_write_cb)(void *ctx, const void *buf, size_t len);

/**
 * Streaming get: bytes are delivered in order, each chunk verified before it
 * is delivered. If a later chunk fails verification the call returns
 * KVS_ECORRUPT after some verified bytes were delivered: a caller writing to
 * a file should write to a temporary and rename on success (the CLI does).
 */
KVS_API int kvs_get_stream(kvs_ver *out_ver, kvs_store *store, const char *key,
                           kvs_write_cb write, void *ctx, const kvs_get_options *opts);

/** Streaming get writing to `fd`. */
KVS_API int kvs_get_fd(kvs_ver *out_ver, kvs_store *store, const char *key, int fd,
                       const kvs_get_options *opts);

/* ------------------------------------------------------------------------ */
/* Delete, stat, list                                                       */

#define KVS_DELETE_OPTIONS_VERSION 1
typedef struct kvs_delete_options {
	unsigned int version;        /**< KVS_DELETE_OPTIONS_VERSION */
	/**
	 * NULL or "": delete whatever is committed; otherwise KVS_ECONFLICT
	 * unless it is the committed version.
	 */
	const char *expect_version;
} kvs_delete_options;
#define KVS_DELETE_OPTIONS_INIT { KVS_DELETE_OPTIONS_VERSION, NULL }

/**
 * Delete a key. Segments are left to kvs_gc.
 *
 * @param opts  NULL for defaults (an unconditional delete)
 * @return 0, KVS_ENOTFOUND (no such key), KVS_ECONFLICT, KVS_EINVAL, KVS_EIO, ...
 */
KVS_API int kvs_delete(kvs_store *store, const char *key, const kvs_delete_options *opts);

typedef struct kvs_stat {
	kvs_ver version;          /**< committed version */
	uint64_t length;          /**< value length in bytes */
	uint64_t generation;      /**< 1 for the first put, +1 per put */
	uint64_t chunks;          /**< chunk count (0 for inline values) */
	uint64_t segments;        /**< distinct segments referenced */
	uint64_t stored_bytes;    /**< compressed bytes of the chunks referenced */
	uint64_t segment_bytes;   /**< total bytes of the segments referenced (>= stored) */
	uint32_t index_bytes;     /**< size of the index manifest */
	int is_inline;            /**< value lives in the index */
	uint8_t hash[16];         /**< XXH3-128 of the whole value, big-endian */
} kvs_stat;

#define KVS_STAT_OPTIONS_VERSION 1
/** Options of kvs_stat_key; none yet beyond the version (room to grow). */
typedef struct kvs_stat_options {
	unsigned int version;        /**< KVS_STAT_OPTIONS_VERSION */
} kvs_stat_options;
#define KVS_STAT_OPTIONS_INIT { KVS_STAT_OPTIONS_VERSION }

/**
 * Describe a key without reading its data (one request).
 *
 * @param opts  NULL for defaults
 * @return 0, KVS_ENOTFOUND, KVS_ECORRUPT (the index does not decode), ...
 */
KVS_API int kvs_stat_key(kvs_stat *out, kvs_store *store, const char *key,
                         const kvs_stat_options *opts);

/** One entry of a listing. */
typedef struct kvs_entry {
	char *key;        /**< the key, NUL-terminated */
	kvs_ver version;
	uint64_t length;
} kvs_entry;

/** A page of keys; release with kvs_list_free(). */
typedef struct kvs_list {
	kvs_entry *entries;
	size_t count;
	char *next;       /**< continue token for the next page, NULL at the end */
} kvs_list;

#define KVS_LIST_OPTIONS_VERSION 1
typedef struct kvs_list_options {
	unsigned int version;        /**< KVS_LIST_OPTIONS_VERSION */
	const char *prefix;          /**< only keys starting with it; NULL or "" = all */
	size_t limit;                /**< entries per page at most; default 500; at most 10000 */
	const char *token;           /**< kvs_list.next of the previous page; NULL = first page */
} kvs_list_options;
#define KVS_LIST_OPTIONS_INIT { KVS_LIST_OPTIONS_VERSION, NULL, 0, NULL }

/**
 * List a page of keys. Keys come in the backend's object-name order, not
 * key order. A page may hold fewer than `limit` entries (even none) while
 * `next` is set: keep going until next is NULL.
 *
 * @param[out] out  the page; release with kvs_list_free()
 * @param opts      NULL for defaults (all keys, first page of 500)
 */
KVS_API int kvs_list_keys(kvs_list **out, kvs_store *store, const kvs_list_options *opts);
KVS_API void kvs_list_free(kvs_list *list);


/* ------------------------------------------------------------------------ */
/* Kubernetes backend                                                       */

#define KVS_KUBE_OPTIONS_VERSION 1
/**
 * Where and how to reach the API server. Unset fields follow kubectl:
 * kubeconfig from `kubeconfig`, else $KUBECONFIG (colon-separated list,
 * merged), else ~/.kube/config, else the in-cluster service account
 * (/var/run/secrets/kubernetes.io/serviceaccount, KUBERNETES_SERVICE_HOST/PORT).
 */
typedef struct kvs_kube_options {
	unsigned int version;      /**< KVS_KUBE_OPTIONS_VERSION */
	const char *kubeconfig;    /**< path, or NULL */
	const char *context;       /**< NULL = current-context */
	const char *namespace_;    /**< NULL = the context's, else "default" */
	const char *server;        /**< override the cluster URL (tests) */
	unsigned int concurrency;  /**< parallel transfers; default 8 */
	double qps;                /**< client-side rate limit, requests/s; default 50; KVS_KUBE_QPS_OFF (any value < 0) = no limit */
	unsigned int burst;        /**< default 100 */
	unsigned int timeout_ms;   /**< per request; default 30000 */
	unsigned int retries;      /**< transient failures retried; default 6; KVS_KUBE_NO_RETRIES = none */
	const char *user_agent;    /**< default "kvsplit/VERSION" */
} kvs_kube_options;
#define KVS_KUBE_NO_RETRIES (~0u) /**< kvs_kube_options.retries: fail at the first transient error */
#define KVS_KUBE_QPS_OFF (-1.0)   /**< kvs_kube_options.qps: no client-side rate limit */
#define KVS_KUBE_OPTIONS_INIT { KVS_KUBE_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, NULL }

/**
 * Create a Kubernetes backend (ConfigMaps in one namespace).
 * @param[out] out  release with kvs_close() of the store that owns it, or
 *                  kvs_backend_free() if never given to a store
 * @return 0, KVS_ECONFIG (kubeconfig missing or malformed, no credentials:
 *         kvs_error_last names the file and field), KVS_ENOMEM
 */
KVS_API int kvs_backend_kube(kvs_backend **out, const kvs_kube_options *opts);

/** Free a backend that was not handed to kvs_open(). Accepts NULL. */
KVS_API void kvs_backend_free(kvs_backend *backend);

/** The namespace a Kubernetes backend works in (NULL for other backends). */
KVS_API const char *kvs_backend_namespace(const kvs_backend *backend);

/** Defined when kvs_backend_namespace_check() exists (added in 0.1.0). */
#define KVS_HAVE_NAMESPACE_CHECK 1
/**
 * Whether the namespace a Kubernetes backend works in exists (one GET of
 * the Namespace). A list or a get in a missing namespace is answered as in
 * an empty one, so this is the only way to tell the two apart.
 * @return 0 (it exists), KVS_ENOTFOUND (the server says it does not),
 *         KVS_EDENIED (may not read namespaces: the answer is unknown),
 *         KVS_EUNSUPPORTED (not a Kubernetes backend), KVS_EIO,
 *         KVS_ETIMEOUT, KVS_ENOMEM
 */
KVS_API int kvs_backend_namespace_check(kvs_backend *backend);

/* ------------------------------------------------------------------------ */
/* Watch                                                                    */

typedef struct kvs_watch kvs_watch;

#define KVS_WATCH_PREFIX  0x1u  /**< `key` is a prefix ("" = every key) */
#define KVS_WATCH_VALUES  0x2u  /**< deliver each new value, verified */

/** Default kvs_watch_options.max_bytes: 256 MiB. */
#define KVS_WATCH_MAX_BYTES_DEFAULT (256ull << 20)

#define KVS_WATCH_OPTIONS_VERSION 2
typedef struct kvs_watch_options {
	unsigned int version;      /**< KVS_WATCH_OPTIONS_VERSION */
	unsigned int flags;        /**< KVS_WATCH_PREFIX | KVS_WATCH_VALUES */
	/** Start after this store-wide version (resourceVersion); NULL = first
	 *  report the current state of every matching key as a PUT event. */
	const char *since;
	/**
	 * (version 2) with KVS_WATCH_VALUES: the longest value delivered. A
	 * change to a longer one is reported by kvs_watch_next as KVS_ETOOBIG
	 * naming the key, the version and both sizes, before anything is
	 * allocated for it; that version counts as delivered and the next call
	 * goes on. 0 = KVS_WATCH_MAX_BYTES_DEFAULT; KVS_MAX_BYTES_UNLIMITED = no cap.
	 */
	uint64_t max_bytes;
} kvs_watch_options;
#define KVS_WATCH_OPTIONS_INIT { KVS_WATCH_OPTIONS_VERSION, 0, NULL, 0 }

typedef enum kvs_watch_kind {
	KVS_WATCH_PUT = 1,     /**< key committed with a new value */
	KVS_WATCH_DELETE = 2   /**< key deleted */
} kvs_watch_kind;

/**
 * One change. Pointers are valid until the next kvs_watch_next() or
 * kvs_watch_close() on the same watch.
 */
typedef struct kvs_watch_event {
	kvs_watch_kind kind;
	const char *key;
	kvs_ver version;          /**< version of the key after the change */
	uint64_t generation;
	uint64_t length;
	const void *value;        /**< with KVS_WATCH_VALUES: the whole verified value */
	size_t value_len;
	int resync;               /**< 1 if reported from a relist after a gap (410 Gone) */
} kvs_watch_event;

/** Watch a key, or with KVS_WATCH_PREFIX every key under a prefix. */
KVS_API int kvs_watch_open(kvs_watch **out, kvs_store *store, const char *key,
                           const kvs_watch_options *opts);
/**
 * Wait up to timeout_ms (-1 = forever) for the next change. Survives dropped
 * connections and compaction internally. KVS_ETIMEOUT if nothing came.
 */
KVS_API int kvs_watch_next(kvs_watch_event *out, kvs_watch *watch, int timeout_ms);
KVS_API void kvs_watch_close(kvs_watch *watch);

/* ------------------------------------------------------------------------ */
/* Garbage collection                                                       */

#define KVS_GC_OPTIONS_VERSION 1
typedef struct kvs_gc_options {
	unsigned int version;      /**< KVS_GC_OPTIONS_VERSION */
	uint32_t grace_s;          /**< only segments untouched this long go; default 3600, must exceed writers' touch_window_s */
	int dry_run;               /**< report, delete nothing */
	double max_deletes_per_s;  /**< rate limit, deletes/s; 0 = unlimited (the default) */
	/** called per deleted (or, in a dry run, deletable) segment; non-zero stops */
	int (*on_segment)(void *ctx, const char *name, uint64_t bytes);
	void *ctx;
} kvs_gc_options;
#define KVS_GC_OPTIONS_INIT { KVS_GC_OPTIONS_VERSION, 0, 0, 0, NULL, NULL }

typedef struct kvs_gc_report {
	uint64_t indexes;          /**< committed indexes read */
	uint64_t segments;         /**< segments listed */
	uint64_t referenced;       /**< segments some index references */
	uint64_t young;            /**< unreferenced but inside the grace period */
	uint64_t deleted;          /**< deleted (or deletable, dry run) */
	uint64_t bytes_freed;
	uint64_t raced;            /**< delete refused: touched or reused meanwhile */
} kvs_gc_report;

/** Collect unreferenced segments (docs/design.md argues why this is safe). */
KVS_API int kvs_gc(kvs_gc_report *out, kvs_store *store, const kvs_gc_options *opts);

/* ------------------------------------------------------------------------ */
/* fsck                                                                     */

typedef enum kvs_fsck_kind {
	KVS_FSCK_BAD_INDEX = 1,        /**< manifest fails to decode or its checksum */
	KVS_FSCK_MISSING_SEGMENT = 2,  /**< a referenced segment does not exist */
	KVS_FSCK_CORRUPT_SEGMENT = 3,  /**< a chunk fails size/decompression/hash */
	KVS_FSCK_BAD_VALUE_HASH = 4,   /**< chunks verify but the whole value does not */
	KVS_FSCK_BAD_LABELS = 5,       /**< labels or name inconsistent with content */
	KVS_FSCK_ORPHAN = 6            /**< segment no index references */
} kvs_fsck_kind;

typedef struct kvs_fsck_problem {
	kvs_fsck_kind kind;
	const char *key;          /**< key concerned, or NULL (orphans) */
	const char *object;       /**< object name concerned */
	const char *detail;       /**< one line */
	int repaired;             /**< 1 if --repair fixed it */
} kvs_fsck_problem;

/** kvs_fsck_options.read_data: check metadata only, read no segment data. */
#define KVS_FSCK_READ_NONE (-1.0)

#define KVS_FSCK_OPTIONS_VERSION 1
typedef struct kvs_fsck_options {
	unsigned int version;      /**< KVS_FSCK_OPTIONS_VERSION */
	const char *key;           /**< check only this key (NULL = whole store) */
	double read_data;          /**< fraction of segments deep-checked, 0..1; default 1; KVS_FSCK_READ_NONE (any value < 0) = none */
	int repair;                /**< delete orphans past grace; never drops a key */
	uint32_t grace_s;          /**< for orphan repair; default 3600 */
	/** called per problem; pointers valid during the call only */
	void (*on_problem)(void *ctx, const kvs_fsck_problem *p);
	void *ctx;
} kvs_fsck_options;
#define KVS_FSCK_OPTIONS_INIT { KVS_FSCK_OPTIONS_VERSION, NULL, 0, 0, 0, NULL, NULL }

typedef struct kvs_fsck_report {
	uint64_t indexes;
	uint64_t segments;
	uint64_t chunks_verified;
	uint64_t bytes_verified;
	uint64_t problems;
	uint64_t repaired;
	uint64_t orphans;
} kvs_fsck_report;

/** Check a store; problems go to on_problem and the counts to *out. */
KVS_API int kvs_fsck(kvs_fsck_report *out, kvs_store *store, const kvs_fsck_options *opts);

#ifdef __cplusplus
}
#endif
#endif /* KVSPLIT_H */
