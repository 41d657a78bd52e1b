/*
 * kapi-server: an in-memory Kubernetes API test server for kvsplit.
 *
 * Private header shared by the files of tests/kapi/. Layering:
 *   util.c      buffers, time, uuid, rng, base64 (libcrypto), merge patch
 *   bigjson.c   bodies and objects with long strings (ConfigMap binaryData):
 *               parse and print them without cJSON's byte loops
 *   validate.c  Status objects and the object validation of the real server
 *   proto.c     Kubernetes protobuf: ConfigMap and Status as kube-apiserver
 *               writes them ("k8s\0" + runtime.Unknown)
 *   protoread.c ConfigMap create/update bodies in protobuf, read into the
 *               JSON path's tree
 * Label and field selectors and the validators of names, labels,
 * annotations and ConfigMap keys are the library's (kube/selector.c,
 * kube/validate.c, linked in), shared with the in-memory backend.
 *   store.c     the objects, the one revision counter, the watch history ring
 *   crd.c       CustomResourceDefinitions: applying one serves its resource
 *   schema.c    a CRD's structural schema: types, pruning, printer columns
 *   pods.c      Pods: defaults, status, the spec update rules; Events
 *   meta.c      metadata validation (labels, annotations, ownerReferences), Lease times
 *   smp.c       strategic merge patch with the merge keys of the served kinds
 *   finalize.c  deletion: finalizers, graceful deletion, GC, namespace lifecycle
 *   owners.c    the GC's dependency graph: owner uid -> dependents, kept per write
 *   api.c       HTTP routing and the verbs (libmicrohttpd callbacks)
 *   main.c      command line, daemon start, signals
 */
#ifndef KAPI_H
#define KAPI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <sys/types.h>

#include "kube/selector.h"
#include "kube/validate.h"

#define KAPI_MAX_BODY (3u * 1024u * 1024u) /* kube-apiserver's request limit */
#define KAPI_MAX_CM_BYTES 1048576u         /* core.MaxSecretSize */

/* ---- util.c -------------------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
};

void buf_add(struct buf *b, const void *data, size_t n);
/* Room for n more bytes (and the NUL) in one allocation of that size. */
void buf_reserve(struct buf *b, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(struct buf *b);
/* Take ownership of the bytes (NUL-terminated); the buffer is reset. */
char *buf_take(struct buf *b, size_t *len);

void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void now_rfc3339(char out[32]);
int64_t rfc3339_age(const char *ts); /* seconds since ts, -1 if unparsable */
void human_duration(int64_t secs, char out[32]);
void uuid_v4(char out[37]);
uint64_t rng_next(void);
void rng_seed(uint64_t seed);
double rng_unit(void);
uint64_t mono_ms(void);

/* Strictly validate standard padded base64 as Go's StdEncoding does (CR/LF are
 * ignored), decode with EVP_DecodeBlock and re-encode canonically with
 * EVP_EncodeBlock. Returns 0 and sets *canon (malloc) and *decoded_len, or -1
 * with *bad_at set to the index of the first offending input byte. *canon is
 * NULL when `in` is canonical already (nothing decoded or encoded: keep it). */
int b64_canon(const char *in, char **canon, size_t *decoded_len, size_t *bad_at);
char *b64_encode(const unsigned char *in, size_t n);
/* Returns malloc'd bytes or NULL if invalid. */
unsigned char *b64_decode(const char *in, size_t *out_len);

/* RFC 7386 JSON merge patch; returns the new target (target consumed). */
cJSON *merge_patch(cJSON *target, const cJSON *patch, bool strategic);
/* RFC 6902 JSON patch applied in place to *doc; 0 or -1 with *err set (static). */
int json_patch(cJSON **doc, const cJSON *ops, const char **err);
/* Sort the members of an object by key (Go marshals maps sorted). */
void json_sort_object(cJSON *obj);

/* ---- bigjson.c ----------------------------------------------------------- */

/* cJSON_ParseWithLengthOpts(b->p, b->len, end, 0), with the body's long
 * escape-free string values copied into the tree whole instead of through
 * cJSON's byte loops; the same tree (or NULL and *end) in every case. The
 * tree may take b's memory for one of them (b is then empty). */
cJSON *json_parse_body(struct buf *b, const char **end);
/* cJSON_PrintUnformatted(obj) (malloc'd, *len its length), with the long
 * strings that need no escaping copied whole; the same bytes. */
char *json_print(const cJSON *obj, size_t *len);
/* How many long strings were parsed whole and printed whole (/kapi/stats). */
void json_long_stats(uint64_t *parsed, uint64_t *printed);

/* ---- proto.c ------------------------------------------------------------ */

#define PROTO_CT "application/vnd.kubernetes.protobuf"

struct status;

/* A binaryData value of a protobuf request body: its bytes (in the body)
 * and the base64 text made of them (the tree's string). */
struct pb_raw {
	const char *text;
	const unsigned char *p;
	size_t n;
};

/* The binaryData values of one protobuf body, sorted by text pointer. */
struct pb_body {
	struct pb_raw *v;
	size_t n, cap;
};

/* Bytes of an encoded message, borrowed. */
struct proto_item {
	const unsigned char *p;
	size_t n;
};

/* The protobuf body kube-apiserver answers for a ConfigMap: "k8s\0" +
 * runtime.Unknown{typeMeta{"v1","ConfigMap"}, raw = the ConfigMap message,
 * contentEncoding "", contentType ""}, binaryData decoded into place; *raw
 * (if not NULL) is where the ConfigMap message is in it.
 * malloc'd, exactly *len bytes (plus 3 of slack); NULL if the object holds
 * what protobuf cannot carry (a binaryData value that is not canonical
 * base64, a time that is not RFC 3339). A binaryData value whose text is in
 * src (may be NULL) is copied from the bytes it was made of, not decoded. */
unsigned char *proto_configmap(const cJSON *obj, size_t *len, struct proto_item *raw,
                               const struct pb_body *src);
/* A ConfigMapList (kind "ConfigMapList"): {1 metadata ListMeta from
 * list_meta (resourceVersion, continue, remainingItemCount), 2 items}, the
 * items' messages copied once into the one buffer. */
unsigned char *proto_configmap_list(const cJSON *list_meta, const struct proto_item *items,
                                    size_t n, size_t *len);
/* The same for a Status (kind "Status"), from its JSON text (status_new). */
unsigned char *proto_status(const char *json, size_t *len);

/* ---- protoread.c --------------------------------------------------------- */

/* A ConfigMap create or update body in protobuf ("k8s\0" + runtime.Unknown
 * {typeMeta, raw = ConfigMap}) as the cJSON tree the same object has as a
 * JSON body (typeMeta as kind and apiVersion, for check_kind), binaryData
 * as canonical base64 whose bytes are noted in *raw (filled; the spans
 * point into body, which must outlive it). NULL and *out, or a 400 Status
 * naming what is malformed. */
struct status *proto_read_configmap(const unsigned char *body, size_t len, cJSON **out,
                                    struct pb_body *raw);
const struct pb_raw *pb_body_find(const struct pb_body *b, const char *text);
void pb_body_free(struct pb_body *b);

/* ---- select.c ------------------------------------------------------------ */

/* Selectors: kube/selector.h. Whether an object's labels (a cJSON object,
 * or NULL) satisfy a label selector (store.c). */
bool labels_match(const kvs__selector *s, const cJSON *labels);

/* ---- resources and objects (store.c) ------------------------------------- */

enum res_type { RES_CONFIGMAP, RES_LEASE, RES_NAMESPACE, RES_CUSTOM, RES_POD, RES_EVENT };

struct objver;

struct resource {
	enum res_type type;
	char *group;       /* "" for the core group */
	char *version;
	char *plural;
	char *singular;
	char *kind;
	char *api_version; /* "v1" or "group/version" */
	char *qualified;   /* "configmaps" or "leases.coordination.k8s.io" */
	char *qkind;       /* "ConfigMap" or "Lease.coordination.k8s.io" */
	char *short_name;  /* may be NULL */
	bool namespaced;
	bool typed;        /* built-in: list items omit kind/apiVersion, delete returns Status */
	bool readonly;
	bool allow_create_on_update;
	bool allow_unconditional_update;
	bool status_sub;   /* has the status subresource (CRD subresources.status) */
	bool crd;          /* the customresourcedefinitions resource itself */
	bool removed;      /* its CRD was deleted: not served (atomic; kept for reuse) */
	char *crd_name;    /* "<plural>.<group>" of the CRD that serves it, or NULL */
	cJSON *schema;     /* the version's openAPIV3Schema (CRD), or NULL */
	cJSON *columns;    /* the version's additionalPrinterColumns (CRD), or NULL */
	/* sorted by key (etcd order of "<ns>/<name>"), protected by the store lock */
	struct objver **items;
	size_t n, cap;
};

/* One immutable version of one object; shared by the index, the history ring
 * and readers through a reference count. Never modified once published. */
struct objver {
	int refs;                 /* atomic */
	uint64_t rv;
	struct resource *res;
	char *ns;                 /* "" when cluster-scoped */
	char *name;
	char *key;                /* "<ns>/<name>" or "<name>" */
	cJSON *obj;               /* full object, kind+apiVersion first */
	char *json;               /* serialized obj */
	size_t len;
	size_t hdr;               /* bytes of `{"kind":..,"apiVersion":..,` (item form: "{" + json+hdr) */
	/* A ConfigMap's protobuf body (proto.c), made once, on the first
	 * protobuf read of this version (objver_pb); NULL before, and after if
	 * the object holds what protobuf cannot carry. Read only once
	 * objver_pb returned. */
	unsigned char *pb;
	size_t pb_len;
	struct proto_item pb_obj; /* the ConfigMap message inside pb (a list's item) */
	pthread_mutex_t pb_lock;  /* held while pb is made */
	int pb_done;              /* atomic: pb is made (or cannot be) */
};

void objver_ref(struct objver *o);
void objver_unref(struct objver *o);
/* The version's protobuf form, made now if it was not yet: true and o->pb
 * set, or false if protobuf cannot carry the object (or it is not a
 * ConfigMap). Thread-safe; takes o->pb_lock, then the store lock to count
 * the bytes in the history (never call it with the store lock held). */
bool objver_pb(struct objver *o);
/* The same, a binaryData value found in src copied from its bytes. */
bool objver_pb_from(struct objver *o, const struct pb_body *src);

enum ev_type { EV_ADDED, EV_MODIFIED, EV_DELETED };

struct event {
	enum ev_type type;
	uint64_t rv;
	struct resource *res;
	struct objver *cur;  /* NULL for DELETED */
	struct objver *prev; /* NULL for ADDED */
	struct objver *gone; /* prev content stamped with rv; set for DELETED or label change */
	uint64_t ms;         /* mono_ms() when written (the watch cache's age) */
	size_t bytes;        /* what it adds to ring_bytes (grows when cur's protobuf form is made) */
};

struct store {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	uint64_t rv;           /* the one global revision counter */
	uint64_t compacted_rv; /* etcd's compaction: lists at rv < this are 410 */
	uint64_t ring_floor;   /* events with rv <= this left the ring */
	uint64_t wc_reset_rv;  /* the watch caches were emptied at this revision */
	struct event *ring;
	size_t ring_cap, ring_head, ring_n;
	size_t ring_bytes, ring_max_bytes;
	unsigned watch_gen;    /* bumped by /kapi/drop-watches */
	bool watch_abort;      /* how the last drop closes: abort instead of clean end */
	bool shutting_down;
	size_t fg_pending;     /* objects deleting with the foregroundDeletion finalizer */
	uint64_t pb_built;     /* protobuf forms made (objver_pb) */
	struct resource **res;
	size_t nres;
};

extern struct store g_store;

void store_init(size_t history, size_t history_bytes);
struct resource *resource_add(enum res_type type, const char *group, const char *version,
                              const char *plural, const char *kind);
/* Served resources (not removed). resource_add may run while requests are
 * served (a CRD is applied): the array never moves (KAPI_MAX_RESOURCES) and
 * nres is published with a release store; callers of resource_add hold the
 * store lock once the daemon runs. */
#define KAPI_MAX_RESOURCES 256
struct resource *resource_find(const char *group, const char *version, const char *plural);
struct resource *resource_find_any(const char *group, const char *version, const char *plural);
size_t resource_count(void);
bool resource_served(const struct resource *r);

/* Under the lock. */
struct objver *store_get_locked(struct resource *r, const char *ns, const char *name);
struct objver *store_get_key_locked(struct resource *r, const char *key);
/* Publish obj (consumed) as a new version; assigns the next revision, stamps
 * metadata.resourceVersion, appends the event. prev may be NULL. Under the lock.
 * Returns the new version (borrowed, owned by the index). */
struct objver *store_put_locked(struct resource *r, cJSON *obj, struct objver *prev);
void store_delete_locked(struct objver *prev);
void store_compact_locked(void);
/* Empty every watch cache (as if its window had moved past every event). */
void store_drop_watch_cache_locked(void);
/* The oldest revision a watch of r may start from (the cacher's oldest-1):
 * the watch cache keeps r's last wc_size events and any younger than
 * wc_ms. Under the lock. */
uint64_t store_watch_floor_locked(const struct resource *r);
/* Event with revision rv, or NULL if outside the ring. Under the lock. */
struct event *store_event_locked(uint64_t rv);

char *obj_key(const struct resource *r, const char *ns, const char *name);
/* Serialize obj into a new objver (refs = 1); obj consumed. */
struct objver *objver_new(struct resource *r, cJSON *obj, uint64_t rv);

/* A consistent list: every object of r in namespace ns (NULL = all) as of
 * revision *at_rv (clamped to the current one, which is stored back) that sorts after the key `after` (NULL = from the start) and
 * passes the selectors. At most limit items (0 = all); *more tells whether any
 * further item passes and *remaining (if not NULL) how many. Items are referenced; caller unrefs and frees.
 * Returns 0, or -1 if at_rv is older than the history window. Takes the lock. */
int store_list(struct resource *r, const char *ns, uint64_t *at_rv, const char *after,
               const kvs__selector *ls, const kvs__selector *fs, size_t limit,
               struct objver ***out, size_t *n, bool *more, size_t *remaining);

struct ferrs;
struct status;

/* ---- crd.c --------------------------------------------------------------- */

/* Validate a CustomResourceDefinition body for create/update (NULL or a
 * 422/400 Status); fill its status (NamesAccepted, Established). */
struct status *crd_validate(cJSON *crd, const char *name);
/* After a CRD was written: serve (or re-flag) its resources. Under the lock. */
struct status *crd_apply_locked(const cJSON *crd);
/* After a CRD was deleted: delete every object of its resources and stop
 * serving them. Under the lock. */
void crd_remove_locked(const cJSON *crd);

/* ---- schema.c ------------------------------------------------------------ */

/* Check the types of obj against r's structural schema and prune unknown
 * fields (x-kubernetes-preserve-unknown-fields keeps them). Errors go to fe
 * as the real server words them. No-op without a schema. */
void schema_apply(const struct resource *r, cJSON *obj, struct ferrs *fe);
/* The Table columns of a custom resource (additionalPrinterColumns, or Age
 * when there are none) after Name; a row's cells likewise. */
void schema_columns(const struct resource *r, cJSON *cols);
void schema_cells(const struct resource *r, const cJSON *obj, cJSON *cells);

/* ---- pods.c -------------------------------------------------------------- */

/* Defaults and server-set fields of a new Pod (spec defaults, the
 * DefaultTolerationSeconds tolerations, status Pending + qosClass). */
void pod_defaults(cJSON *pod);
/* Validation of a Pod body (create and update). */
void pod_validate(const cJSON *pod, struct ferrs *fe);
/* ValidatePodUpdate: only images, activeDeadlineSeconds, added
 * tolerations and terminationGracePeriodSeconds may change. */
void pod_validate_update(const cJSON *oldp, const cJSON *newp, struct ferrs *fe);
void event_validate(const struct resource *r, const cJSON *ev, const char *ns, struct ferrs *fe);

/* ---- meta.c -------------------------------------------------------------- */

/* ObjectMeta validation the real server does on every kind: label keys and
 * values, annotation keys, ownerReferences, finalizer names. */
void validate_meta(const cJSON *obj, bool core, struct ferrs *fe);
/* Lease spec: leaseTransitions >= 0; MicroTime fields strictly
 * "2006-01-02T15:04:05.000000Z07:00" (400 otherwise), stored in UTC. */
struct status *lease_times(const struct resource *r, cJSON *obj, struct ferrs *fe);

/* ---- smp.c --------------------------------------------------------------- */

/* Strategic merge patch of target (consumed) with patch for kind r: maps
 * merge ($patch: replace/delete), lists with a merge key merge by key,
 * merge-strategy primitive lists ($deleteFromPrimitiveList) union.
 * Returns the result or NULL with *err (static) set. */
cJSON *smp_apply(const struct resource *r, cJSON *target, const cJSON *patch, const char **err);

/* ---- finalize.c ---------------------------------------------------------- */

struct delete_opts {
	const char *policy; /* propagationPolicy or NULL */
	int64_t grace;      /* gracePeriodSeconds, -1 = the kind's default */
	bool dry;
};

bool obj_deleting(const cJSON *obj);
bool obj_has_finalizers(const cJSON *obj);
/* Deleting and waiting for its dependents (the foregroundDeletion finalizer). */
bool obj_fg_pending(const cJSON *obj);
/* DELETE of o: with finalizers (or Foreground, or a grace period) it is
 * marked (deletionTimestamp) and stays; else it goes at once with the GC's
 * cascade. *out: what to answer with (referenced); *removed: it is gone.
 * Under the lock. */
struct status *obj_delete_locked(struct resource *r, struct objver *o, const struct delete_opts *d,
                                 struct objver **out, bool *removed);
/* Remove o now, cascade to its dependents (or orphan them), finish
 * Foreground owners and Terminating namespaces. Under the lock. */
void obj_remove_locked(struct objver *o, bool orphan);
void gc_sweep_locked(void);
bool ns_terminating_locked(const char *ns);
void finalizers_update_check(const cJSON *oldo, const cJSON *newo, struct ferrs *fe);

/* ---- owners.c ------------------------------------------------------------ */

/* The object at key of r went from oldo to newo (either NULL): keep the
 * owner uid -> dependents index. Under the lock (store.c calls it). */
void owners_update_locked(struct resource *r, const char *key, const cJSON *oldo, const cJSON *newo);
/* The current objects whose ownerReferences name uid, in store order
 * (resource, then key); *out malloc'd, the objects borrowed. Under the lock. */
size_t owners_dependents_locked(const char *uid, struct objver ***out);
/* Edges in the index (one per object and owner it names). Under the lock. */
size_t owners_edges_locked(void);

/* ---- validate.c ---------------------------------------------------------- */

struct status {
	int code;
	char *json; /* serialized Status object */
};

/* reason NULL = StatusReasonUnknown (omitted); details NULL = omitted. */
struct status *status_new(int code, const char *reason, const char *message, cJSON *details);
void status_free(struct status *s);
struct status *st_not_found(const struct resource *r, const char *name);
struct status *st_already_exists(const struct resource *r, const char *name);
struct status *st_conflict(const struct resource *r, const char *name, const char *why);
struct status *st_bad_request(const char *msg);
struct status *st_internal(const char *msg);
struct status *st_forbidden(const struct resource *r, const char *name, const char *verb,
                            const char *ns, const char *user);
struct status *st_path_not_found(void);
struct status *st_method_not_allowed(void);
struct status *st_expired(const char *msg);

/* Field errors collected for a 422 Invalid Status. */
struct ferrs {
	cJSON *causes;  /* array of {reason,message,field} */
	struct buf msg; /* "field: body" strings joined by ", " */
	int n;
};
void ferr_add(struct ferrs *e, const char *reason, const char *field, const char *body);
struct status *st_invalid(const struct resource *r, const char *name, struct ferrs *e);

/* Normalize and validate a body for r (metadata handled by the caller).
 * Returns NULL or a Status (400 for undecodable, 422 Invalid). */
struct status *validate_object(struct resource *r, cJSON *obj, const char *name, struct ferrs *fe);
void validate_name(const struct resource *r, const char *name, const char *gen_name,
                   struct ferrs *fe);
void validate_immutable(const cJSON *oldo, const cJSON *newo, struct ferrs *fe);
/* The binaryData object of the body this thread's request is answering
 * when its values are canonical base64 by construction (made from a
 * protobuf body's bytes): their validation takes the decoded length from
 * the text's length, without a pass over it. NULL otherwise (api.c resets
 * it for each request). */
extern __thread const cJSON *tl_b64_made;
/* Keep known fields in Go struct order; sort map members. */
void normalize_object(struct resource *r, cJSON *obj);

/* ---- api.c / main.c ------------------------------------------------------ */

struct faults {
	unsigned latency_ms;
	double fail_rate, throttle_rate, drop_rate;
	unsigned retry_after;
	bool stall_watch;
};

struct forbid {
	char *verb;     /* "*" or a verb */
	char *resource; /* "*" or a plural */
};

struct config {
	char **tokens;
	size_t ntokens;
	char *user;
	struct forbid *forbids;
	size_t nforbids;
	unsigned bookmark_ms;
	unsigned wc_size;  /* watch cache: events kept per resource at least */
	unsigned wc_ms;    /* ... and every event younger than this */
	int port;
	bool tls;
};

extern struct config g_cfg;
extern struct faults g_faults; /* protected by g_store.lock */

enum MHD_Result api_handler(void *cls, struct MHD_Connection *conn, const char *url,
                            const char *method, const char *version, const char *upload_data,
                            size_t *upload_data_size, void **con_cls);
void api_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                   enum MHD_RequestTerminationCode toe);

#endif
