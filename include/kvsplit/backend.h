/*
 * kvsplit/backend.h — for backend authors (libgit2's git2/sys/ idea).
 *
 * A backend stores named objects with Kubernetes ConfigMap semantics: each
 * object has labels, annotations, binary data entries, a resourceVersion
 * drawn from ONE global revision counter, a uid, a server creation time and
 * an immutable flag. The store relies on exactly these semantics:
 *
 *  - create fails with KVS_EEXISTS if the name exists;
 *  - replace succeeds only if obj->resource_version equals the current one
 *    (KVS_ECONFLICT otherwise, KVS_ENOTFOUND if gone); an empty
 *    resource_version means unconditional;
 *  - an immutable object's data can never change, but its labels and
 *    annotations can (and that bumps its resourceVersion);
 *  - delete honours resourceVersion / uid preconditions (KVS_ECONFLICT);
 *  - one object's data (sum of value lengths) is limited to max_object_bytes
 *    (KVS_ETOOBIG over it);
 *  - list filters by label selector and pages with a continue token; a list
 *    reports the revision it was served at;
 *  - watch delivers every change after a resourceVersion in revision order,
 *    with BOOKMARKs, or KVS_EGONE when that history was compacted.
 *
 * Every method must be safe to call from several threads at once. Methods
 * return 0 or a negative KVS_E code and put the detail into the per-thread
 * error with kvs_error_set().
 */
#ifndef KVSPLIT_BACKEND_H
#define KVSPLIT_BACKEND_H

#include "../kvsplit.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Read-only data that several objects share (see kvs_object.share). */
typedef struct kvs_share kvs_share;

/** A key/value string pair (label or annotation). */
typedef struct kvs_kv {
	char *key;
	char *value;
} kvs_kv;

/** One binaryData entry. */
typedef struct kvs_blob {
	char *key;      /**< [-._a-zA-Z0-9]+ */
	uint8_t *data;
	size_t len;
} kvs_blob;

/**
 * An object as the backend stores it. Strings are NUL-terminated and owned by
 * the object; release with kvs_object_free(). Objects returned by list with
 * KVS_LIST_METADATA_ONLY and by head (KVS_OP_HEAD) have ndata == 0;
 * data_bytes is then what the backend knows of the size (informational: 0
 * when it cannot tell).
 */
typedef struct kvs_object {
	char *name;
	char *resource_version;   /**< "" when unset */
	char *uid;                /**< "" when unset */
	int64_t created_ms;       /**< server creation time, Unix ms (0 unknown) */
	int immutable;
	kvs_kv *labels;
	size_t nlabels;
	kvs_kv *annotations;
	size_t nannotations;
	kvs_blob *data;
	size_t ndata;
	uint64_t data_bytes;      /**< total data bytes (set by backends on reads) */
	/**
	 * Server time of the object's last change, Unix ms, 0 unknown; set by
	 * backends on what they return (reads and write responses), ignored on
	 * what they are given. A real API server keeps it per field manager in
	 * metadata.managedFields[].time (whole seconds): the latest of them.
	 */
	int64_t updated_ms;
	/**
	 * (vtable version 3) NULL, or the reference that keeps this object's
	 * data alive when the data is shared (kvs_object_share_data): the keys
	 * and bytes of data[] then belong to the share, read-only, and only the
	 * data[] array to the object. kvs_object_free drops the reference.
	 */
	kvs_share *share;
} kvs_object;

/* Helpers to build and read objects (all allocate with the library allocator). */
KVS_API kvs_object *kvs_object_new(const char *name);
KVS_API void kvs_object_free(kvs_object *obj);
KVS_API int kvs_object_dup(kvs_object **out, const kvs_object *src);
/** Set (replace) a label/annotation; copies both strings. */
KVS_API int kvs_object_set_label(kvs_object *obj, const char *key, const char *value);
KVS_API int kvs_object_set_annotation(kvs_object *obj, const char *key, const char *value);
/** Append a data entry, copying `len` bytes. */
KVS_API int kvs_object_add_data(kvs_object *obj, const char *key, const void *data, size_t len);
/**
 * Append a data entry taking ownership of `data` (allocated with malloc).
 * Both adders refuse (KVS_EINVAL) an object whose data is shared.
 */
KVS_API int kvs_object_add_data_owned(kvs_object *obj, const char *key, uint8_t *data, size_t len);
/**
 * (vtable version 3) Shared data, so that a backend that keeps objects in
 * memory stores and returns them without copying their bytes.
 *
 * kvs_object_share_data moves the object's own data entries into a new
 * reference-counted share (no byte is copied; a no-op if already shared).
 * From then on nobody may write to or free those bytes: they are freed
 * with the last object that references them.
 *
 * kvs_object_ref_data gives `dst`, which must have no data yet, the data
 * of `src`: a new reference when `src` is shared, a copy otherwise. Its
 * data_bytes grows by the bytes added. A backend's copy on create and get
 * is then a reference: the store shares the data of every segment it
 * creates (immutable, never written again).
 *
 * kvs_object_own_data makes an object's data its own again (copying the
 * bytes if they are shared), so it may be changed in place.
 * kvs_object_clear_data drops every data entry (data_bytes stays).
 * All return 0 or KVS_ENOMEM (share: KVS_EINVAL for NULL).
 */
KVS_API int kvs_object_share_data(kvs_object *obj);
KVS_API int kvs_object_ref_data(kvs_object *dst, const kvs_object *src);
KVS_API int kvs_object_own_data(kvs_object *obj);
KVS_API void kvs_object_clear_data(kvs_object *obj);
KVS_API const char *kvs_object_label(const kvs_object *obj, const char *key);
KVS_API const char *kvs_object_annotation(const kvs_object *obj, const char *key);
KVS_API const kvs_blob *kvs_object_data(const kvs_object *obj, const char *key);
KVS_API int kvs_object_set_rv(kvs_object *obj, const char *rv);

/** A page of objects; release with kvs_object_list_free(). */
typedef struct kvs_object_list {
	kvs_object **items;
	size_t count;
	char *next;               /**< continue token, NULL on the last page */
	char *resource_version;   /**< revision the list was served at */
} kvs_object_list;
KVS_API void kvs_object_list_free(kvs_object_list *list);

#define KVS_LIST_METADATA_ONLY 0x1u /**< omit data (PartialObjectMetadataList) */

typedef enum kvs_event_type {
	KVS_EVENT_ADDED = 1,
	KVS_EVENT_MODIFIED = 2,
	KVS_EVENT_DELETED = 3,
	KVS_EVENT_BOOKMARK = 4   /**< object holds only resource_version */
} kvs_event_type;

typedef struct kvs_event {
	kvs_event_type type;
	kvs_object *object;      /**< owned by the event; release with kvs_event_clear */
} kvs_event;
KVS_API void kvs_event_clear(kvs_event *ev);

typedef struct kvs_backend_watch kvs_backend_watch;

/**
 * One operation of a batch (see kvs_backend_ops.batch): lets a backend run
 * many object transfers in parallel (curl multi, HTTP/2 streams).
 */
typedef enum kvs_op_kind {
	KVS_OP_GET = 1,     /**< name → out */
	KVS_OP_CREATE = 2,  /**< in → out (out may be left NULL) */
	/**
	 * name → out, metadata only (see kvs_backend_ops.head). The store sends
	 * it to batch only when the backend's head is not NULL.
	 */
	KVS_OP_HEAD = 3
} kvs_op_kind;

#define KVS_OP_DETAIL_MAX 256

typedef struct kvs_op {
	kvs_op_kind kind;
	const char *name;         /**< GET */
	const kvs_object *in;     /**< CREATE */
	kvs_object *out;          /**< result, owned by the caller afterwards */
	int result;               /**< 0 or KVS_E code, per operation */
	/**
	 * (vtable version 2) why this operation failed, NUL-terminated, "" on
	 * success: what kvs_error_last() said right after the failure, which
	 * the thread's last error cannot carry for every op of a batch. Set it
	 * with kvs_op_result().
	 */
	char detail[KVS_OP_DETAIL_MAX];
} kvs_op;

/**
 * Record the outcome of one batch operation: op->result = rc, and
 * op->detail = kvs_error_last() when rc < 0 ("" otherwise). Returns rc.
 * Call it right after the failing call, before anything else can set the
 * thread's error.
 */
KVS_API int kvs_op_result(kvs_op *op, int rc);

/*
 * Vtable versions:
 *  1  the first; kvs_op without `detail`. The store never calls the batch
 *     method of a version 1 backend (the op array's layout changed) and runs
 *     its operations one by one through get/create instead.
 *  2  kvs_op.detail, filled by batch for every failed operation; the
 *     optional method head and KVS_OP_HEAD (appended before version 2 was
 *     released, so still version 2). A backend with head == NULL never
 *     gets KVS_OP_HEAD: the store reads with get instead and drops the data.
 *  3  objects may carry shared data (kvs_object.share, kvs_object_share_data,
 *     kvs_object_ref_data): the objects the store hands to create are
 *     shared when they are segments, and a backend may keep a reference
 *     (kvs_object_ref_data) instead of a copy of their bytes, and hand out
 *     references on get. No method changed: a version 2 backend that
 *     copies the data it is given, and builds what it returns with
 *     kvs_object_new and the adders, works as before.
 * kvs_open refuses version 0 and versions newer than the library's.
 */
#define KVS_BACKEND_OPS_VERSION 3

/**
 * The backend vtable. New methods are only ever appended; `version` tells
 * which are present. Optional methods may be NULL.
 */
typedef struct kvs_backend_ops {
	unsigned int version;   /**< KVS_BACKEND_OPS_VERSION */
	const char *name;       /**< "memory", "kubernetes", ... */

	/** Fetch an object. KVS_ENOTFOUND if absent. */
	int (*get)(kvs_backend *b, kvs_object **out, const char *name);

	/** Create; KVS_EEXISTS if present. `out` (may be NULL) gets the stored object's metadata. */
	int (*create)(kvs_backend *b, kvs_object **out, const kvs_object *obj);

	/**
	 * Replace the whole object (labels, annotations, data). Conditional on
	 * obj->resource_version when it is not "". `out` (may be NULL) gets the
	 * stored object's metadata (new resourceVersion).
	 */
	int (*replace)(kvs_backend *b, kvs_object **out, const kvs_object *obj);

	/**
	 * Merge `annotations` into an existing object's annotations without
	 * sending or changing its data (a metadata-only update, allowed on
	 * immutable objects). Bumps resourceVersion. `out` (may be NULL) gets the
	 * new metadata. KVS_ENOTFOUND if absent.
	 */
	int (*annotate)(kvs_backend *b, kvs_object **out, const char *name,
	                const kvs_kv *annotations, size_t n);

	/** Delete with optional preconditions (NULL or "" = none). */
	int (*remove)(kvs_backend *b, const char *name, const char *expect_rv,
	              const char *expect_uid);

	/**
	 * List objects matching a label selector (Kubernetes syntax, NULL = all),
	 * at most `limit` per page (0 = backend default), from `token` (NULL =
	 * first page). `flags`: KVS_LIST_METADATA_ONLY.
	 */
	int (*list)(kvs_backend *b, kvs_object_list **out, const char *selector,
	            size_t limit, const char *token, unsigned int flags);

	/**
	 * Start a watch of objects matching `selector` for every change after
	 * `from_rv` ("" = current objects as ADDED first). KVS_EGONE (now or from
	 * watch_next) when that history is compacted.
	 */
	int (*watch_open)(kvs_backend *b, kvs_backend_watch **out, const char *selector,
	                  const char *from_rv);
	/**
	 * Next event, waiting up to timeout_ms (-1 forever). KVS_ETIMEOUT if none
	 * came, KVS_EGONE after compaction, KVS_EIO when the stream broke (the
	 * caller reopens from the last resourceVersion it saw).
	 */
	int (*watch_next)(kvs_backend_watch *w, kvs_event *out, int timeout_ms);
	void (*watch_close)(kvs_backend_watch *w);

	/**
	 * Optional: run `n` independent operations, in parallel where possible.
	 * Returns 0 when every op ran (each op->result and op->detail say how it
	 * went: set them with kvs_op_result), or a code for a failure of the
	 * batch as a whole. NULL: the store runs them one by one through
	 * get/create.
	 */
	int (*batch)(kvs_backend *b, kvs_op *ops, size_t n);

	/** Server time, Unix ms (used for gc grace periods). */
	int (*now)(kvs_backend *b, int64_t *out_ms);

	/** Free the backend. */
	void (*free)(kvs_backend *b);

	/**
	 * Optional (version 2): fetch an object's metadata only — name,
	 * resource_version, uid, created_ms, immutable, labels, annotations —
	 * with ndata == 0, without transferring its data (Kubernetes: a GET
	 * with Accept PartialObjectMetadata). `immutable` is -1 when the
	 * backend cannot tell (PartialObjectMetadata does not carry that
	 * ConfigMap field). KVS_ENOTFOUND if absent. A backend
	 * that has it must also accept KVS_OP_HEAD in batch. NULL: the store
	 * uses get.
	 */
	int (*head)(kvs_backend *b, kvs_object **out, const char *name);
} kvs_backend_ops;

/**
 * Base of every backend: backends embed it first and cast.
 */
struct kvs_backend {
	const kvs_backend_ops *ops;
	uint64_t max_object_bytes;  /**< data limit per object (1048576 on Kubernetes) */
};

/** Record the detail of a failure for kvs_error_last(); returns `code`. */
KVS_API int kvs_error_set(int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* ------------------------------------------------------------------------ */
/* In-memory backend                                                        */

#define KVS_MEM_OPTIONS_VERSION 1
typedef struct kvs_mem_options {
	unsigned int version;        /**< KVS_MEM_OPTIONS_VERSION */
	uint64_t max_object_bytes;   /**< default 1048576 */
	size_t history;              /**< watch events kept; default 1000 */
	size_t list_page_default;    /**< default page when limit == 0: 500 */
} kvs_mem_options;
#define KVS_MEM_OPTIONS_INIT { KVS_MEM_OPTIONS_VERSION, 0, 0, 0 }

/** Create an in-memory backend. Release with its free (or by kvs_close). */
KVS_API int kvs_backend_mem(kvs_backend **out, const kvs_mem_options *opts);

/**
 * Share one in-memory "cluster" between several backend handles (several
 * clients of the same server): the new handle sees the same objects, counter
 * and watch history. Faults and stats are per handle.
 */
KVS_API int kvs_backend_mem_clone(kvs_backend **out, kvs_backend *mem);

#ifdef __cplusplus
}
#endif
#endif /* KVSPLIT_BACKEND_H */
