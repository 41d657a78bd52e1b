/*
 * kvsplit/kube.h — the Kubernetes client of libkvsplit.
 *
 * One client layer for everything in kvsplit that talks to an API server:
 * the ConfigMap backend (kvs_backend_kube() is a thin mapping of the backend
 * vtable onto it), the CLI's connection, and the sharded controller (Leases,
 * custom resources with a status subresource, Pods, Events).
 *
 * A kvs_kube handle holds the credentials (kubeconfig, in-cluster service
 * account; see kvs_kube_options in kvsplit.h), a pool of warm connections,
 * the client-side rate limiter and the retry policy: transient failures (429
 * honouring Retry-After, 500/502/503/504, broken connections) are retried
 * with capped exponential backoff and full jitter, each request on its own.
 *
 * Objects are cJSON trees (<cjson/cJSON.h>, from the same libcjson the
 * library links). Every body the server sends is untrusted: it is capped in
 * bytes (4 MiB for one object or a watch event, 64 MiB for a list page) and
 * in JSON values (one per 48 bytes of the cap, so a hostile body of
 * `[],[],...` cannot turn a 64 MiB page into gigabytes of tree), and a body
 * over a cap is refused (KVS_EIO) before it is parsed.
 *
 * Conventions (those of kvsplit.h): functions return 0 or a negative KVS_E
 * code with the detail in kvs_error_last(); out-parameters come first; what
 * comes back through them belongs to the caller; option structs start with
 * `unsigned int version` and have an _INIT macro, are read by the size
 * their version declares (a version of 0, or one newer than the library's,
 * is KVS_EINVAL naming the struct), and NULL options mean the defaults.
 *
 * Errors: an error response is a Kubernetes Status. Its code and reason map
 * to one KVS_E code:
 *
 *   404 NotFound                      KVS_ENOTFOUND
 *   409 AlreadyExists                 KVS_EEXISTS
 *   409 Conflict (stale rv, failed delete precondition)   KVS_ECONFLICT
 *   410 Gone / Expired                KVS_EGONE
 *   422 Invalid                       KVS_EINVALOBJ; KVS_ETOOBIG when a cause is
 *                                     FieldValueTooLong ("Too long: ...")
 *   413 RequestEntityTooLarge         KVS_ETOOBIG
 *   401 / 403                         KVS_EDENIED
 *   400 BadRequest                    KVS_EINVAL
 *   429, 504, Timeout (after retries) KVS_ETIMEOUT
 *   other 5xx (after retries)         KVS_EIO
 *   transport failures                KVS_EIO (KVS_ETIMEOUT for a timeout)
 *
 * kvs_error_last() then reads "<what>: HTTP <code> <reason>: <server
 * message>". Callers that need to tell cases apart pass a kvs_kube_status
 * and look at its fields (http, reason, details), never at the text.
 *
 * Thread safety: a kvs_kube may be used from several threads at once; a
 * kvs_kube_watch belongs to one thread at a time.
 */
#ifndef KVSPLIT_KUBE_H
#define KVSPLIT_KUBE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../kvsplit.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Client                                                                   */

typedef struct kvs_kube kvs_kube;

/**
 * Open a client.
 * @param[out] out   release with kvs_kube_free()
 * @param[in]  opts  NULL = defaults (kubeconfig as kubectl finds it, 50 qps,
 *                   burst 100, 30 s per request, 6 retries, 8 transfers in
 *                   parallel); borrowed during the call only
 * @return 0, KVS_EINVAL (bad options), KVS_ECONFIG (kubeconfig missing or
 *         malformed, no credentials, a namespace that is not a DNS-1123
 *         label: kvs_error_last names the file and field), KVS_ENOMEM
 */
KVS_API int kvs_kube_open(kvs_kube **out, const kvs_kube_options *opts);

/** Free a client. Accepts NULL. Every watch of it must be closed first. */
KVS_API void kvs_kube_free(kvs_kube *kube);

/** The default namespace (kvs_kube_options.namespace_, the context's, else "default"). */
KVS_API const char *kvs_kube_namespace(const kvs_kube *kube);

/** The server's base URL, without a trailing slash. */
KVS_API const char *kvs_kube_server(const kvs_kube *kube);

/**
 * 1 when the kubeconfig turned TLS certificate verification off
 * (insecure-skip-tls-verify): the server is not authenticated, and whoever
 * answers gets the credentials. A program should say so where its user
 * sees it (the kvsplit CLI warns on stderr); 0 otherwise or for NULL.
 */
KVS_API int kvs_kube_tls_insecure(const kvs_kube *kube);

/** Requests a kvs_kube_run() keeps in flight at once (kvs_kube_options.concurrency). */
KVS_API unsigned int kvs_kube_concurrency(const kvs_kube *kube);

/**
 * Server time in Unix ms: the Date header of the latest response plus the
 * monotonic time since; one GET /version when no response was seen yet.
 * @return 0, KVS_EIO (no Date header), transport errors
 */
KVS_API int kvs_kube_now(int64_t *out_ms, kvs_kube *kube);

/* ------------------------------------------------------------------------ */
/* Resources                                                                */

/**
 * Which resource a request addresses: /api/v1/... for the core group (""),
 * /apis/<group>/<version>/... otherwise; namespaced resources live under
 * namespaces/<ns>/.
 */
typedef struct kvs_kube_resource {
	const char *group;     /**< "" for the core group */
	const char *version;   /**< "v1" */
	const char *resource;  /**< plural, lower case: "configmaps" */
	int namespaced;        /**< 1: namespaced, 0: cluster-scoped */
} kvs_kube_resource;

/** Initializer for a descriptor of your own (a custom resource). */
#define KVS_KUBE_RESOURCE_INIT(group, version, resource, namespaced) \
	{ (group), (version), (resource), (namespaced) }

/* Ready-made descriptors. */
KVS_API extern const kvs_kube_resource kvs_kube_configmaps;  /**< v1 configmaps */
KVS_API extern const kvs_kube_resource kvs_kube_leases;      /**< coordination.k8s.io/v1 leases */
KVS_API extern const kvs_kube_resource kvs_kube_pods;        /**< v1 pods */
KVS_API extern const kvs_kube_resource kvs_kube_events;      /**< v1 events */
KVS_API extern const kvs_kube_resource kvs_kube_namespaces;  /**< v1 namespaces (cluster-scoped) */
KVS_API extern const kvs_kube_resource kvs_kube_crds;        /**< apiextensions.k8s.io/v1 customresourcedefinitions (cluster-scoped) */

/**
 * Namespace arguments: NULL = the client's default namespace;
 * KVS_KUBE_ALL_NAMESPACES = every namespace (list and watch of a namespaced
 * resource only). Cluster-scoped resources ignore the argument.
 */
#define KVS_KUBE_ALL_NAMESPACES ""

/* ------------------------------------------------------------------------ */
/* Status                                                                   */

#define KVS_KUBE_STATUS_VERSION 1
/**
 * What the server answered, for callers that classify errors. Filled on
 * success too (http 200/201, empty reason). Strings are NUL-terminated and
 * truncated to their buffers.
 */
typedef struct kvs_kube_status {
	unsigned int version;     /**< KVS_KUBE_STATUS_VERSION */
	long http;                /**< HTTP status of the last response; 0: none came (transport) */
	int code;                 /**< Status.code (watch ERROR events: the only source) */
	char reason[64];          /**< Status.reason: "NotFound", "AlreadyExists", "Conflict", "Invalid", ... */
	char message[1024];       /**< Status.message, as the server wrote it */
	char details_kind[64];    /**< Status.details.kind ("configmaps", "namespaces", ...) */
	char details_name[256];   /**< Status.details.name */
	int too_long;             /**< a cause is FieldValueTooLong (or the message says "Too long") */
	unsigned int retry_after_s; /**< Retry-After header or details.retryAfterSeconds; 0: none */
	unsigned int attempts;    /**< attempts made (1 + retries) */
	int resent_after_loss;    /**< re-sent after an attempt whose outcome is unknown: an
	                               AlreadyExists/Conflict may come from our own earlier attempt */
} kvs_kube_status;
#define KVS_KUBE_STATUS_INIT { KVS_KUBE_STATUS_VERSION, 0, 0, "", "", "", "", 0, 0, 0, 0 }

/* ------------------------------------------------------------------------ */
/* Verbs                                                                    */
/*
 * Common parameters: `res` the resource; `ns` the namespace (see above);
 * `status` (may be NULL) receives what the server answered. Returned objects
 * are cJSON trees owned by the caller: free with cJSON_Delete(). Object
 * arguments are borrowed and never modified.
 */

#define KVS_KUBE_GET_OPTIONS_VERSION 1
typedef struct kvs_kube_get_options {
	unsigned int version;      /**< KVS_KUBE_GET_OPTIONS_VERSION */
	const char *subresource;   /**< NULL, or "status" */
	int metadata_only;         /**< ask for a PartialObjectMetadata (no spec, data or status) */
} kvs_kube_get_options;
#define KVS_KUBE_GET_OPTIONS_INIT { KVS_KUBE_GET_OPTIONS_VERSION, NULL, 0 }

/**
 * Read one object.
 * @param[out] out  the object; cJSON_Delete() it
 * @return 0, KVS_ENOTFOUND, KVS_EDENIED, KVS_EINVAL (bad name or namespace),
 *         KVS_ECORRUPT (not a JSON object), KVS_EIO, KVS_ETIMEOUT, KVS_ENOMEM
 */
KVS_API int kvs_kube_get(cJSON **out, kvs_kube *kube, const kvs_kube_resource *res,
                         const char *ns, const char *name, const kvs_kube_get_options *opts,
                         kvs_kube_status *status);

#define KVS_KUBE_LIST_OPTIONS_VERSION 1
typedef struct kvs_kube_list_options {
	unsigned int version;            /**< KVS_KUBE_LIST_OPTIONS_VERSION */
	const char *label_selector;      /**< "app=x,tier in (a,b)"; NULL = all */
	const char *field_selector;      /**< "metadata.name=x"; NULL = all */
	size_t limit;                    /**< page size; 0 = the server's (everything) */
	const char *continue_token;      /**< from the previous page; NULL = first page */
	const char *resource_version;    /**< NULL = most recent; "0" = any (watch cache) */
	const char *resource_version_match; /**< NULL, "Exact" or "NotOlderThan" */
	int metadata_only;               /**< PartialObjectMetadataList: items carry metadata only */
} kvs_kube_list_options;
#define KVS_KUBE_LIST_OPTIONS_INIT \
	{ KVS_KUBE_LIST_OPTIONS_VERSION, NULL, NULL, 0, NULL, NULL, NULL, 0 }

/** One page of a list. Release with kvs_kube_page_free(). */
typedef struct kvs_kube_page {
	cJSON *doc;                   /**< the whole list document */
	const cJSON *items;           /**< its "items" array (never NULL; may be empty) */
	size_t count;                 /**< items in it */
	const char *resource_version; /**< the revision the list was served at ("" if none) */
	const char *continue_token;   /**< NULL on the last page */
} kvs_kube_page;

/**
 * List one page. Follow continue_token for the next; every page of one
 * listing is served from the first page's snapshot, and a watch from
 * resource_version then misses nothing.
 * @param[out] out  release with kvs_kube_page_free()
 * @return 0, KVS_EGONE (the continue token expired: relist), KVS_EINVAL
 *         (selector syntax: HTTP 400), KVS_EDENIED, KVS_ECORRUPT, KVS_EIO,
 *         KVS_ETIMEOUT, KVS_ENOMEM
 */
KVS_API int kvs_kube_list(kvs_kube_page **out, kvs_kube *kube, const kvs_kube_resource *res,
                          const char *ns, const kvs_kube_list_options *opts,
                          kvs_kube_status *status);
/** Free a page. Accepts NULL. */
KVS_API void kvs_kube_page_free(kvs_kube_page *page);

#define KVS_KUBE_WATCH_OPTIONS_VERSION 1
typedef struct kvs_kube_watch_options {
	unsigned int version;            /**< KVS_KUBE_WATCH_OPTIONS_VERSION */
	const char *label_selector;
	const char *field_selector;
	const char *resource_version;    /**< every change after it; NULL/"" = the current
	                                      objects as ADDED first, then changes */
	int allow_bookmarks;             /**< BOOKMARK events (default on) */
	unsigned int timeout_s;          /**< the server ends the stream after this;
	                                      0 = a random 5-10 minutes (client-go's habit) */
	int metadata_only;               /**< objects as PartialObjectMetadata */
} kvs_kube_watch_options;
#define KVS_KUBE_WATCH_OPTIONS_INIT \
	{ KVS_KUBE_WATCH_OPTIONS_VERSION, NULL, NULL, NULL, 1, 0, 0 }

typedef struct kvs_kube_watch kvs_kube_watch;

typedef enum kvs_kube_event_type {
	KVS_KUBE_ADDED = 1,
	KVS_KUBE_MODIFIED = 2,
	KVS_KUBE_DELETED = 3,   /**< object: its last state */
	KVS_KUBE_BOOKMARK = 4   /**< object: only metadata.resourceVersion (and annotations) */
} kvs_kube_event_type;

typedef struct kvs_kube_event {
	kvs_kube_event_type type;
	cJSON *object;                  /**< owned by the event: kvs_kube_event_clear() */
	const char *resource_version;   /**< the object's metadata.resourceVersion (inside object) */
} kvs_kube_event;

/**
 * Open a watch and wait (up to the request timeout) for the server to accept it.
 * @param[out] out  release with kvs_kube_watch_close()
 * @return 0, KVS_EGONE (resource_version compacted, when the server says so
 *         at once), KVS_EDENIED, KVS_EINVAL, KVS_EIO, KVS_ETIMEOUT, KVS_ENOMEM
 */
KVS_API int kvs_kube_watch_open(kvs_kube_watch **out, kvs_kube *kube,
                                const kvs_kube_resource *res, const char *ns,
                                const kvs_kube_watch_options *opts, kvs_kube_status *status);

/**
 * Next event, waiting up to timeout_ms (-1 = forever).
 * @param[out] out  the event; kvs_kube_event_clear() it
 * @return 0; KVS_ETIMEOUT when nothing came (the watch goes on); and, after
 *         which the watch is dead (close it, open a new one): KVS_EGONE for an
 *         ERROR event with code 410 (the history is compacted: relist), the
 *         mapped code of any other ERROR event (`status` says which), KVS_EIO
 *         when the stream broke or the server ended it (reopen from the last
 *         resourceVersion seen, bookmarks included), KVS_ECORRUPT for an
 *         event that is not a watch event
 */
KVS_API int kvs_kube_watch_next(kvs_kube_event *out, kvs_kube_watch *watch, int timeout_ms,
                                kvs_kube_status *status);
KVS_API void kvs_kube_watch_close(kvs_kube_watch *watch);
KVS_API void kvs_kube_event_clear(kvs_kube_event *ev);

/**
 * Create an object (POST). metadata.name (or generateName) comes from `obj`.
 * @param[out] out  the stored object (may be NULL: not wanted)
 * @return 0, KVS_EEXISTS (AlreadyExists), KVS_ENOTFOUND (namespace missing),
 *         KVS_EINVALOBJ, KVS_ETOOBIG, KVS_EINVAL, KVS_EDENIED, KVS_EIO, ...
 */
KVS_API int kvs_kube_create(cJSON **out, kvs_kube *kube, const kvs_kube_resource *res,
                            const char *ns, const cJSON *obj, kvs_kube_status *status);

/**
 * Replace an object (PUT), named by obj's metadata.name. With
 * metadata.resourceVersion set the update is conditional on it
 * (KVS_ECONFLICT when stale). Where the resource has a status subresource,
 * the server ignores `status` here.
 * @return 0, KVS_ECONFLICT, KVS_ENOTFOUND, KVS_EINVALOBJ, KVS_ETOOBIG, ...
 */
KVS_API int kvs_kube_update(cJSON **out, kvs_kube *kube, const kvs_kube_resource *res,
                            const char *ns, const cJSON *obj, kvs_kube_status *status);

/**
 * Replace the status subresource (PUT .../status): the server takes only
 * `status` from obj (spec and metadata changes are ignored), conditional on
 * metadata.resourceVersion when set.
 * @return as kvs_kube_update(); KVS_ENOTFOUND also when the resource has no
 *         status subresource
 */
KVS_API int kvs_kube_update_status(cJSON **out, kvs_kube *kube, const kvs_kube_resource *res,
                                   const char *ns, const cJSON *obj, kvs_kube_status *status);

typedef enum kvs_kube_patch_type {
	KVS_KUBE_PATCH_MERGE = 1,   /**< application/merge-patch+json (RFC 7386): an object */
	KVS_KUBE_PATCH_JSON = 2     /**< application/json-patch+json (RFC 6902): an array of ops */
} kvs_kube_patch_type;

#define KVS_KUBE_PATCH_OPTIONS_VERSION 1
typedef struct kvs_kube_patch_options {
	unsigned int version;       /**< KVS_KUBE_PATCH_OPTIONS_VERSION */
	const char *subresource;    /**< NULL, or "status" */
} kvs_kube_patch_options;
#define KVS_KUBE_PATCH_OPTIONS_INIT { KVS_KUBE_PATCH_OPTIONS_VERSION, NULL }

/**
 * Patch an object. A metadata.resourceVersion in a merge patch is a
 * precondition (KVS_ECONFLICT); a JSON patch "test" op that fails is
 * KVS_EINVALOBJ.
 * @return 0, KVS_ENOTFOUND, KVS_ECONFLICT, KVS_EINVALOBJ, KVS_EINVAL (patch of
 *         the wrong shape), KVS_ETOOBIG, KVS_EDENIED, KVS_EIO, ...
 */
KVS_API int kvs_kube_patch(cJSON **out, kvs_kube *kube, const kvs_kube_resource *res,
                           const char *ns, const char *name, kvs_kube_patch_type type,
                           const cJSON *patch, const kvs_kube_patch_options *opts,
                           kvs_kube_status *status);

#define KVS_KUBE_DELETE_OPTIONS_VERSION 1
typedef struct kvs_kube_delete_options {
	unsigned int version;            /**< KVS_KUBE_DELETE_OPTIONS_VERSION */
	const char *resource_version;    /**< precondition (NULL/"" = none) */
	const char *uid;                 /**< precondition (NULL/"" = none) */
	const char *propagation_policy;  /**< NULL = the server's default; "Background",
	                                      "Foreground" or "Orphan" */
	long long grace_period_s;        /**< < 0: the object's default */
} kvs_kube_delete_options;
#define KVS_KUBE_DELETE_OPTIONS_INIT \
	{ KVS_KUBE_DELETE_OPTIONS_VERSION, NULL, NULL, NULL, -1 }

/**
 * Delete an object.
 * @param[out] out  the server's answer (a Status, or the deleted object for
 *                  custom resources; may be NULL: not wanted)
 * @return 0, KVS_ENOTFOUND, KVS_ECONFLICT (a precondition failed),
 *         KVS_EINVALOBJ (bad propagation policy), KVS_EDENIED, KVS_EIO, ...
 */
KVS_API int kvs_kube_delete(cJSON **out, kvs_kube *kube, const kvs_kube_resource *res,
                            const char *ns, const char *name,
                            const kvs_kube_delete_options *opts, kvs_kube_status *status);

/* ------------------------------------------------------------------------ */
/* Raw requests (hot paths)                                                 */

typedef enum kvs_kube_verb {
	KVS_KUBE_VERB_GET = 1,     /**< GET a named object */
	KVS_KUBE_VERB_LIST = 2,    /**< GET the collection */
	KVS_KUBE_VERB_CREATE = 3,  /**< POST to the collection */
	KVS_KUBE_VERB_UPDATE = 4,  /**< PUT a named object */
	KVS_KUBE_VERB_PATCH = 5,   /**< PATCH a named object (set content_type) */
	KVS_KUBE_VERB_DELETE = 6   /**< DELETE a named object (body: DeleteOptions, optional) */
} kvs_kube_verb;

#define KVS_KUBE_REQUEST_VERSION 1
/**
 * One request of kvs_kube_run(), with the body already encoded and the
 * response left unparsed, for callers with their own encoders (the ConfigMap
 * backend writes ~1.4 MB base64 bodies in one pass).
 */
typedef struct kvs_kube_request {
	unsigned int version;            /**< KVS_KUBE_REQUEST_VERSION */
	/* in (borrowed until kvs_kube_run returns) */
	kvs_kube_verb verb;
	const kvs_kube_resource *resource;
	const char *ns;                  /**< as for the verbs */
	const char *name;                /**< GET, UPDATE, PATCH, DELETE */
	const char *subresource;         /**< NULL, or "status" */
	const char *query;               /**< "labelSelector=a%3Db&limit=5", escaped; NULL = none */
	const char *content_type;        /**< of the body; NULL = application/json */
	const char *accept;              /**< NULL = application/json */
	const char *body;
	size_t body_len;
	size_t max_response;             /**< response cap; 0 = 4 MiB (64 MiB for LIST) */
	const char *what;                /**< names the request in error details; NULL = verb and path */
	/* out */
	int result;                      /**< 0: a 2xx response; else the KVS_E code it maps to */
	kvs_kube_status status;
	char *response;                  /**< the body (NUL-terminated), also on errors; kvs_free() it,
	                                      or kvs_kube_request_clear() */
	size_t response_len;
	char detail[512];                /**< the error detail when result < 0 */
} kvs_kube_request;
#define KVS_KUBE_REQUEST_INIT \
	{ KVS_KUBE_REQUEST_VERSION, (kvs_kube_verb)0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
	  NULL, 0, 0, NULL, 0, KVS_KUBE_STATUS_INIT, NULL, 0, "" }

/**
 * Run `n` requests in parallel (up to kvs_kube_concurrency() in flight,
 * multiplexed on one HTTP/2 connection or on parallel HTTP/1.1 keep-alive
 * connections), each retried on its own. Outputs of a previous run are
 * cleared first.
 * @return 0 when every request ran (see each request's result; the thread's
 *         error detail is that of the last failed one), KVS_EINVAL (a
 *         malformed request: nothing was sent), KVS_ENOMEM
 */
KVS_API int kvs_kube_run(kvs_kube *kube, kvs_kube_request *reqs, size_t n);

/** Free a request's response and clear its outputs. Accepts NULL. */
KVS_API void kvs_kube_request_clear(kvs_kube_request *req);

/**
 * Parse a response body into a tree with the client's caps (`cap` bytes,
 * one JSON value per 48 bytes of it; 0 = 4 MiB). For raw callers.
 * @return 0, KVS_EIO (over a cap), KVS_ECORRUPT (not JSON), KVS_ENOMEM
 */
KVS_API int kvs_kube_parse(cJSON **out, const char *body, size_t len, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* KVSPLIT_KUBE_H */
