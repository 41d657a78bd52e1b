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
 *    with workers >= 2, while the backend's creates take 1 ms or more (a
 *    server, not the in-memory backend), each batch of concurrency / 2
 *    sealed segments is created on one more thread while the next windows
 *    compress (at most one such batch at a time, joined before the put
 *    returns);
 *  - kvs_get, and kvs_watch_next with KVS_WATCH_VALUES, decode and verify a
 *    run of segments on up to kvs_options.workers threads the same way;
 *    streaming gets (kvs_get_stream, kvs_get_fd) use the caller's thread;
 *  - key-split map writes (kvs_map_import_json, kvs_map_commit,
 *    kvs_map_compact, kvs_map_patch_json) build and compress the runs they
 *    write on up to kvs_options.workers threads, joined before they return;
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
	KVS_ESTALE = -18,
	/**
	 * the caller's buffer is too small for the value (kvs_get_into): the
	 * length it needs comes back through out_len; nothing was written.
	 */
	KVS_ERANGE = -19
} kvs_error_code;

/** Static, human-readable name of an error code; never NULL. */
KVS_API const char *kvs_strerror(int code);

/**
 * Detail of the last failure on the calling thread ("segment kvs.x.s.1f2e...:
 * chunk 3 fails XXH3-128 check"); never NULL (empty string when none). Valid
 * until the next libkvsplit call on this thread.
 */
KVS_API const char *kvs_error_last(void);

/**
 * Release memory returned by the library (values, strings). Accepts NULL.
 *
 * The buffer of a large value (4 MiB to 256 MiB) is kept for the next
 * kvs_get of a like size instead of going back to the system, so a caller
 * that reads the same large value over and over does not pay the kernel's
 * zeroing of fresh pages each time. One buffer is kept at most; its pages
 * are given back lazily (MADV_FREE: the kernel takes them whenever it needs
 * memory), and it is released after 10 s unused or by kvs_release_memory().
 * free() also releases anything the library returns (it just keeps nothing).
 */
KVS_API void kvs_free(void *ptr);

/**
 * Release the value buffer kvs_free() keeps for reuse, at once (as
 * sqlite3_release_memory does for SQLite's caches). Thread-safe.
 *
 * @return the bytes released; 0 when nothing was kept
 */
KVS_API size_t kvs_release_memory(void);

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

#define KVS_OPTIONS_VERSION 3
/** kvs_options.cache_bytes: no segment cache at all. */
#define KVS_CACHE_OFF UINT64_MAX
/** kvs_options.history: keep no older version (history off). */
#define KVS_HISTORY_OFF UINT32_MAX
/** kvs_options.history default: older versions kept per key. */
#define KVS_HISTORY_DEFAULT 10u
/** kvs_options.history: the most older versions a key keeps. */
#define KVS_HISTORY_MAX 64u
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
	/**
	 * (version 3) older versions of each key a commit of this handle keeps
	 * in the key's history (kvs_history, kvs_get_options.generation,
	 * kvs_rollback): the last this many before the committed one, each
	 * costing only the segments it alone uses plus a small object holding
	 * its manifest. 0 = KVS_HISTORY_DEFAULT (10); KVS_HISTORY_OFF keeps
	 * none (a commit then drops the key's history); at most
	 * KVS_HISTORY_MAX. Map keys keep no history.
	 */
	uint32_t history;
} kvs_options;
#define KVS_OPTIONS_INIT { KVS_OPTIONS_VERSION, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

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
/* History and rollback                                                     */

/** One version of a key, as kvs_history lists it. */
typedef struct kvs_version_info {
	uint64_t generation;  /**< the version number: 1 for the first put, +1 per commit */
	int64_t time_ms;      /**< server time of its commit, Unix ms; -1 unknown (written
	                       *   before history existed) */
	uint64_t length;      /**< value length */
	int64_t added;        /**< stored bytes its commit wrote: new segments, or the inline
	                       *   value; 0 for a rollback or an unchanged re-put; -1 unknown */
	int current;          /**< 1 for the committed version (the first entry) */
} kvs_version_info;

#define KVS_HISTORY_OPTIONS_VERSION 1
typedef struct kvs_history_options {
	unsigned int version;  /**< KVS_HISTORY_OPTIONS_VERSION */
} kvs_history_options;
#define KVS_HISTORY_OPTIONS_INIT { KVS_HISTORY_OPTIONS_VERSION }

/**
 * List the versions of a key: the committed one first, then the older
 * ones its history keeps, newest first. Reads the index only (one request):
 * a version listed can be read with kvs_get_options.generation as long as
 * it stays listed (gc and fsck count what history references).
 *
 * @param[out] out      the versions, release with kvs_free()
 * @param[out] n        how many (at least 1)
 * @param[out] out_ver  the key's committed version (may be NULL)
 * @return 0, KVS_ENOTFOUND (no such key), KVS_EUNSUPPORTED (a map key:
 *         maps keep no history), KVS_ECORRUPT (the index, or its history
 *         table, is damaged: the detail says which; a damaged history
 *         leaves the committed value readable), KVS_EIO, ...
 */
KVS_API int kvs_history(kvs_version_info **out, size_t *n, kvs_ver *out_ver, kvs_store *store,
                        const char *key, const kvs_history_options *opts);

#define KVS_ROLLBACK_OPTIONS_VERSION 1
typedef struct kvs_rollback_options {
	unsigned int version;        /**< KVS_ROLLBACK_OPTIONS_VERSION */
	/** As kvs_put_options.expect_version (NULL blind, else the version read). */
	const char *expect_version;
	kvs_put_stats *stats;        /**< optional figures */
} kvs_rollback_options;
#define KVS_ROLLBACK_OPTIONS_INIT { KVS_ROLLBACK_OPTIONS_VERSION, NULL, NULL }

/**
 * Make version `generation` of a key (kvs_history) the committed value
 * again, as a new commit (generation + 1 of the current one) that keeps the
 * current version in the history like a put would. No value data is sent:
 * the new index references the old version's segments, each checked first
 * (it must exist, be this store's, immutable, of its recorded size).
 *
 * @param[out] out  the new version (may be NULL)
 * @return 0, KVS_ENOTFOUND (no such key, or no such version kept),
 *         KVS_ECONFLICT (expect_version is not the committed version),
 *         KVS_EUNSUPPORTED (a map key), KVS_ECORRUPT (the version's
 *         manifest or a segment it needs is missing or damaged: nothing
 *         changes), KVS_EIO, ...
 */
KVS_API int kvs_rollback(kvs_ver *out, kvs_store *store, const char *key, uint64_t generation,
                         const kvs_rollback_options *opts);

/* ------------------------------------------------------------------------ */
/* Get                                                                      */

/** max_bytes: no cap on the value's length. */
#define KVS_MAX_BYTES_UNLIMITED UINT64_MAX
/** Default kvs_get_options.max_bytes of kvs_get (whole value in memory): 1 GiB. */
#define KVS_GET_MAX_BYTES_DEFAULT (1ull << 30)

#define KVS_GET_OPTIONS_VERSION 3
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
	/**
	 * (version 3) which version to read: 0 = the committed one; otherwise
	 * the generation of the committed version or of one kept in the key's
	 * history (kvs_history). KVS_ENOTFOUND if the key keeps no such
	 * version; KVS_ECORRUPT if its history is damaged (the committed
	 * value still reads). *out_ver is then the key's committed version.
	 */
	uint64_t generation;
} kvs_get_options;
#define KVS_GET_OPTIONS_INIT { KVS_GET_OPTIONS_VERSION, NULL, NULL, 0, 0 }

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
 * Read a whole value into the caller's buffer: no allocation of the value,
 * so a caller that reuses a warm buffer reads at the decompression floor.
 * Verification is as for kvs_get. max_bytes applies as for kvs_get (its
 * default, 1 GiB, too).
 *
 * @param[out] out_len  the value's length; with KVS_ERANGE, the length the
 *                      buffer needs
 * @param[out] out_ver  its version (may be NULL)
 * @param[out] buf      where the value goes; may be NULL when cap is 0
 * @param[in]  cap      bytes available at buf
 * @return 0, KVS_ERANGE (cap is under the value's length: nothing was
 *         written to buf), KVS_ENOTFOUND, KVS_ETOOBIG, KVS_ECORRUPT,
 *         KVS_EIO, ... On an error other than KVS_ERANGE the first
 *         *out_len bytes of buf hold unspecified (unverified) bytes;
 *         nothing past the value's length is ever written.
 */
KVS_API int kvs_get_into(size_t *out_len, kvs_ver *out_ver, kvs_store *store, const char *key,
                         void *buf, size_t cap, const kvs_get_options *opts);

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
/* Key-split maps                                                           */
/*
 * A map key holds a map of fields: byte-string names (1..KVS_MAP_FIELD_MAX
 * bytes) to byte-string values (0..KVS_MAP_VALUE_MAX bytes), stored like an
 * LSM tree (docs/design.md "Maps"): a batch commits one small delta run, so
 * an update costs about the bytes it changes. A map key is an ordinary key:
 * kvs_delete, kvs_list_keys, gc and fsck handle it; kvs_get on it is
 * KVS_EINVAL, and kvs_put replaces it with a plain value.
 */
#define KVS_MAP_FIELD_MAX 1024u
#define KVS_MAP_VALUE_MAX (256u * 1024u)
#define KVS_MAP_BATCH_MAX (1u << 20)  /**< operations in one batch */

/** A batch of field operations, applied atomically by kvs_map_commit. */
typedef struct kvs_map_batch kvs_map_batch;

/** New empty batch; release with kvs_map_batch_free(). 0 or KVS_ENOMEM. */
KVS_API int kvs_map_batch_new(kvs_map_batch **out);
KVS_API void kvs_map_batch_free(kvs_map_batch *batch);

/**
 * Set a field (the bytes are copied). A later operation on the same field in
 * the same batch replaces an earlier one. KVS_EINVAL (sizes), KVS_ETOOBIG
 * (more than KVS_MAP_BATCH_MAX operations), KVS_ENOMEM.
 */
KVS_API int kvs_map_batch_put(kvs_map_batch *batch, const void *field, size_t field_len,
                              const void *value, size_t value_len);
/**
 * Set a field to a JSON value: `json` must be one JSON value (KVS_EINVAL
 * otherwise); its text is stored as given and kvs_map_export_json writes it back as
 * that value, its text kept as given (kvs_map_batch_put values are exported as
 * JSON strings).
 */
KVS_API int kvs_map_batch_put_json(kvs_map_batch *batch, const void *field, size_t field_len,
                                   const char *json, size_t json_len);
/** Delete a field (deleting an absent field is not an error). */
KVS_API int kvs_map_batch_delete(kvs_map_batch *batch, const void *field, size_t field_len);
/**
 * Make the batch conditional on one field: it commits only if the field is
 * at field version `fver` (kvs_map_entry.version), or absent when `fver` is
 * 0. Otherwise kvs_map_commit fails with KVS_ECONFLICT naming the field.
 */
KVS_API int kvs_map_batch_expect(kvs_map_batch *batch, const void *field, size_t field_len,
                                 uint64_t fver);
/** Operations in the batch (expectations not counted). */
KVS_API size_t kvs_map_batch_count(const kvs_map_batch *batch);

/** Figures of one map operation, filled when the options' stats is set. */
typedef struct kvs_map_stats {
	uint64_t requests;          /**< backend calls made */
	uint64_t bytes_written;     /**< segment data + index manifests sent */
	uint64_t index_bytes;       /**< size of the last index manifest sent (or read) */
	uint64_t segments_written;  /**< segment objects created */
	uint64_t segments_read;     /**< segments fetched (not from the cache) */
	uint64_t rebases;           /**< blind commits rebased after losing a race */
	int delta_inline;           /**< the batch's delta went inline into the index */
	int compacted;              /**< a compaction committed (kvs_map_compact, or after a batch) */
	uint64_t compact_bytes_written; /**< of which written by that compaction */
} kvs_map_stats;

#define KVS_MAP_COMPACT_AUTO 0u   /**< compact after a batch when the policy says so */
#define KVS_MAP_COMPACT_NEVER 1u  /**< never compact as part of this call */
#define KVS_MAP_COMPACT_FORCE 2u  /**< kvs_map_compact: merge every delta even below the threshold */

#define KVS_MAP_WRITE_OPTIONS_VERSION 1
typedef struct kvs_map_write_options {
	unsigned int version;        /**< KVS_MAP_WRITE_OPTIONS_VERSION */
	/**
	 * NULL: blind batch; a lost race is rebased on the new version and
	 * retried (a delta does not depend on its base), so writers touching
	 * different fields never fail. "": create only (KVS_EEXISTS if the key
	 * exists). Otherwise the key's version the caller read (KVS_ECONFLICT
	 * if it moved). Nothing changes on failure.
	 */
	const char *expect_version;
	unsigned int compact;        /**< KVS_MAP_COMPACT_* */
	kvs_map_stats *stats;        /**< optional figures */
} kvs_map_write_options;
#define KVS_MAP_WRITE_OPTIONS_INIT { KVS_MAP_WRITE_OPTIONS_VERSION, NULL, 0, NULL }

/**
 * Apply a batch to map `key` atomically (a missing key becomes a map):
 * readers see all of it or none of it.
 *
 * @param[out] out  the key's new version (may be NULL)
 * @return 0, KVS_ECONFLICT (key version or a field expectation), KVS_EEXISTS,
 *         KVS_EINVAL (the key holds a plain value; bad batch), KVS_ETOOBIG,
 *         KVS_EIO, KVS_ETIMEOUT, KVS_ENOMEM, KVS_ECORRUPT (stored map)
 */
KVS_API int kvs_map_commit(kvs_ver *out, kvs_store *store, const char *key,
                           const kvs_map_batch *batch, const kvs_map_write_options *opts);

#define KVS_MAP_READ_OPTIONS_VERSION 1
typedef struct kvs_map_read_options {
	unsigned int version;        /**< KVS_MAP_READ_OPTIONS_VERSION */
	kvs_map_stats *stats;        /**< optional figures */
} kvs_map_read_options;
#define KVS_MAP_READ_OPTIONS_INIT { KVS_MAP_READ_OPTIONS_VERSION, NULL }

/**
 * Read one field, verified. Fetches only the runs whose range covers it.
 *
 * @param[out] out       the value, release with kvs_free() (non-NULL even
 *                       when empty)
 * @param[out] out_len   its length
 * @param[out] out_fver  its field version (may be NULL)
 * @param[out] out_ver   the key's version read (may be NULL)
 * @return 0, KVS_ENOTFOUND (no such key or field), KVS_EINVAL (not a map),
 *         KVS_ECORRUPT, KVS_EIO, ...
 */
KVS_API int kvs_map_get(void **out, size_t *out_len, uint64_t *out_fver, kvs_ver *out_ver,
                        kvs_store *store, const char *key, const void *field, size_t field_len,
                        const kvs_map_read_options *opts);

/** Streaming iterator over the fields of one version of a map, in order. */
typedef struct kvs_map_iter kvs_map_iter;

#define KVS_MAP_ITER_OPTIONS_VERSION 1
typedef struct kvs_map_iter_options {
	unsigned int version;        /**< KVS_MAP_ITER_OPTIONS_VERSION */
	const void *start;           /**< first field >= start (NULL: from the first) */
	size_t start_len;
	const void *end;             /**< only fields < end (NULL: to the last) */
	size_t end_len;
	const void *prefix;          /**< only fields starting with prefix (NULL: all) */
	size_t prefix_len;
	kvs_map_stats *stats;        /**< optional figures, updated as it goes */
} kvs_map_iter_options;
#define KVS_MAP_ITER_OPTIONS_INIT { KVS_MAP_ITER_OPTIONS_VERSION, NULL, 0, NULL, 0, NULL, 0, NULL }

/** One field. Pointers are valid until the next call on the iterator. */
typedef struct kvs_map_entry {
	const void *field;
	size_t field_len;
	const void *value;
	size_t value_len;
	uint64_t version;            /**< field version: the key generation that wrote it */
	int is_json;                 /**< value was set as JSON (kvs_map_batch_put_json) */
} kvs_map_entry;

/**
 * Open an iterator on the committed version of `key` (one GET). Memory stays
 * bounded by a few runs whatever the map's size; the runs are fetched as
 * the iteration reaches them.
 * @param[out] out      release with kvs_map_iter_close()
 * @param[out] out_ver  the version iterated (may be NULL)
 */
KVS_API int kvs_map_iter_open(kvs_map_iter **out, kvs_ver *out_ver, kvs_store *store,
                              const char *key, const kvs_map_iter_options *opts);
/** Next field: 0, KVS_EITER_DONE at the end, or an error (the iterator is then done). */
KVS_API int kvs_map_iter_next(kvs_map_entry *out, kvs_map_iter *iter);
KVS_API void kvs_map_iter_close(kvs_map_iter *iter);

/** Number of fields of the committed version (reads every run). */
KVS_API int kvs_map_count(uint64_t *out, kvs_ver *out_ver, kvs_store *store, const char *key,
                          const kvs_map_read_options *opts);

/**
 * Replace the whole map with the JSON object `json` (`{field: value, ...}`,
 * e.g. a workflow's status.nodes). Conditional like kvs_map_commit.
 */
KVS_API int kvs_map_import_json(kvs_ver *out, kvs_store *store, const char *key,
                                const char *json, size_t len, const kvs_map_write_options *opts);
/**
 * Apply the JSON object `json` as one batch: each member sets a field to
 * that JSON value; a `null` member deletes the field.
 */
KVS_API int kvs_map_patch_json(kvs_ver *out, kvs_store *store, const char *key,
                               const char *json, size_t len, const kvs_map_write_options *opts);
/**
 * Write the whole map as one JSON object, fields in order, streaming (one
 * version, verified). Values set as bytes are written as JSON strings
 * (KVS_EINVAL if a name or such a value is not UTF-8).
 */
KVS_API int kvs_map_export_json(kvs_ver *out_ver, kvs_store *store, const char *key,
                                kvs_write_cb write, void *ctx, const kvs_map_read_options *opts);

/**
 * Merge the map's delta runs into its base (docs/design.md "Compaction"),
 * as an ordinary commit: atomic, conditional (opts->expect_version), safe
 * under gc. With KVS_MAP_COMPACT_FORCE every delta is merged; otherwise
 * only when the policy's threshold is passed (0 with nothing done).
 */
KVS_API int kvs_map_compact(kvs_ver *out, kvs_store *store, const char *key,
                            const kvs_map_write_options *opts);

/** Shape of a map, from its index alone (one request). */
typedef struct kvs_map_stat {
	kvs_ver version;
	uint64_t generation;
	uint32_t delta_runs;         /**< level 0: deltas not yet compacted */
	uint32_t delta_inline;       /**< of which inline in the index */
	uint32_t base_runs;          /**< level 1 */
	uint64_t delta_entries;      /**< entries and tombstones in deltas */
	uint64_t base_entries;       /**< fields in the base */
	uint64_t raw_bytes;          /**< raw bytes of every run */
	uint64_t stored_bytes;       /**< compressed bytes of every run */
	uint32_t segments;           /**< segments referenced */
	uint64_t segment_bytes;      /**< their total bytes (>= stored out of line) */
	uint32_t index_bytes;        /**< size of the index manifest */
} kvs_map_stat;

#define KVS_MAP_STAT_OPTIONS_VERSION 1
/** Options of kvs_map_stat_key; none yet beyond the version (room to grow). */
typedef struct kvs_map_stat_options {
	unsigned int version;        /**< KVS_MAP_STAT_OPTIONS_VERSION */
} kvs_map_stat_options;
#define KVS_MAP_STAT_OPTIONS_INIT { KVS_MAP_STAT_OPTIONS_VERSION }

/**
 * Describe a map key from its index alone (one request).
 *
 * @param opts  NULL for defaults
 * @return 0, KVS_EINVAL if `key` is not a map (or a bad opts version),
 *         KVS_ENOTFOUND if absent, KVS_ECORRUPT, KVS_EIO, ...
 */
KVS_API int kvs_map_stat_key(kvs_map_stat *out, kvs_store *store, const char *key,
                             const kvs_map_stat_options *opts);


/* ------------------------------------------------------------------------ */
/* Kubernetes backend                                                       */

#define KVS_KUBE_OPTIONS_VERSION 2
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
	/**
	 * (version 2) 1: every request asks for JSON only and sends JSON
	 * bodies. Default 0: the Kubernetes backend's GETs of one ConfigMap ask
	 * for protobuf first (`Accept: application/vnd.kubernetes.protobuf,
	 * application/json`, as client-go does), which carries binaryData as
	 * raw bytes instead of base64, and its ConfigMap creates and updates
	 * send protobuf bodies; a server that answers JSON is read as before,
	 * and one that answers 415 to a protobuf body gets JSON bodies from
	 * then on.
	 */
	int json_only;
} kvs_kube_options;
#define KVS_KUBE_NO_RETRIES (~0u) /**< kvs_kube_options.retries: fail at the first transient error */
#define KVS_KUBE_QPS_OFF (-1.0)   /**< kvs_kube_options.qps: no client-side rate limit */
#define KVS_KUBE_OPTIONS_INIT { KVS_KUBE_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, NULL, 0 }

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

/**
 * 1 when a Kubernetes backend's kubeconfig turned TLS certificate
 * verification off (insecure-skip-tls-verify; kvs_kube_tls_insecure): the
 * program should warn its user. 0 otherwise, for other backends and NULL.
 */
KVS_API int kvs_backend_tls_insecure(const kvs_backend *backend);

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
#define KVS_WATCH_VALUES  0x2u  /**< deliver each new value, verified (a map key: with
                                     *   KVS_WATCH_FIELDS, the new values of its fields) */
#define KVS_WATCH_FIELDS  0x4u  /**< map keys: which fields each change added, changed
                                     *   or deleted (kvs_watch_fields) */

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
	 * A map key's event (KVS_WATCH_FIELDS) is never refused: its field
	 * values are delivered in field order while their total stays within
	 * max_bytes, and from the first that would pass it on, each change
	 * carries value NULL with value_len its length (kvs_map_field_change).
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

typedef enum kvs_map_field_kind {
	KVS_MAP_FIELD_ADDED = 1,    /**< the field did not exist before the change */
	KVS_MAP_FIELD_CHANGED = 2,  /**< written since (its version moved) */
	KVS_MAP_FIELD_DELETED = 3   /**< gone */
} kvs_map_field_kind;

/** One field of a map key that a change touched (kvs_watch_fields). */
typedef struct kvs_map_field_change {
	kvs_map_field_kind kind;
	const void *field;
	size_t field_len;
	/** With KVS_WATCH_VALUES, for ADDED and CHANGED: the new value, verified
	 *  (non-NULL even when empty); else NULL. NULL for an ADDED or CHANGED
	 *  change under KVS_WATCH_VALUES means withheld: the event's values
	 *  passed kvs_watch_options.max_bytes here (this and every later change
	 *  of the event); value_len is still its length, kvs_map_get reads it. */
	const void *value;
	size_t value_len;
	int is_json;              /**< the value was written as JSON text */
	uint64_t version;         /**< the field's version after the change (0: deleted) */
} kvs_map_field_change;

/** Watch a key, or with KVS_WATCH_PREFIX every key under a prefix. */
KVS_API int kvs_watch_open(kvs_watch **out, kvs_store *store, const char *key,
                           const kvs_watch_options *opts);
/**
 * Wait up to timeout_ms (-1 = forever) for the next change. Survives dropped
 * connections and compaction internally. KVS_ETIMEOUT if nothing came.
 */
KVS_API int kvs_watch_next(kvs_watch_event *out, kvs_watch *watch, int timeout_ms);
KVS_API void kvs_watch_close(kvs_watch *watch);

/**
 * With KVS_WATCH_FIELDS: the fields that the PUT event last returned by
 * kvs_watch_next() changed, in field order. The first event of a map key
 * on this watch (its current state, or the first change seen after
 * `since`) reports every field ADDED; later ones what changed since the
 * previous event of that key, also across a resync (410 Gone: the change
 * may cover several commits). A compaction changes no field (no entries).
 * A key that is not a map, and a DELETE event, have none.
 *
 * Only the runs that the new version added are fetched, and the base runs a
 * compaction rewrote; the watch keeps every field name and version of each
 * map key it watches (memory: the names, not the values).
 *
 * @param[out] out  the changes, valid until the next kvs_watch_next() or
 *                  kvs_watch_close(); NULL when there are none
 * @param[out] n    how many
 * @return 0, or KVS_EINVAL (NULL argument, or the watch has no
 *         KVS_WATCH_FIELDS)
 */
KVS_API int kvs_watch_fields(const kvs_map_field_change **out, size_t *n, kvs_watch *watch);

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
