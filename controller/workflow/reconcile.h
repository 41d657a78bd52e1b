/*
 * reconcile.h — the workflow controller's level-based reconcile.
 *
 * kvc_wf_reconcile reads a Workflow, its task Pods and its node status and
 * converges: it folds every Pod's state into the task nodes, decides the
 * outcome exactly as spec.completion says, creates the Pods of the next
 * attempts (up to maxConcurrency) or, once the outcome is decided, skips
 * what has not started and (TerminateRemaining) deletes what runs; then it
 * commits the nodes it changed in one batch, conditional on the version it
 * read, and writes the summary status. A repeat, a missed event, a crash
 * between any two steps or a handoff does no harm: Pods have deterministic
 * names (AlreadyExists is adoption), and a commit that loses a race fails
 * whole (KVS_ECONFLICT) and the next reconcile starts from what is stored.
 *
 * Everything outside goes through kvc_wf_ops, so the same code runs on
 * fakes in tests and on the Kubernetes client, kvsplit maps and the
 * informers' caches in kvsplit-controller.
 */
#ifndef KVC_WF_RECONCILE_H
#define KVC_WF_RECONCILE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "controller/workflow/status.h"

/** One changed node field, as committed. */
typedef struct kvc_wf_entry {
	const char *field;
	size_t field_len;
	const char *value;       /**< JSON text */
	size_t value_len;
} kvc_wf_entry;

/** Called for each stored field; a negative return stops the load with it. */
typedef int (*kvc_wf_entry_cb)(void *arg, const void *field, size_t flen, const void *value, size_t vlen);

#define KVC_WF_OPS_VERSION 1
/**
 * What the reconcile needs of the world. Each returns 0 or a negative
 * KVS_E code (with kvs_error_set detail); `ctx` is kvc_wf_reconciler_new's.
 * Versions are written into a buffer of `cap` bytes.
 */
typedef struct kvc_wf_ops {
	unsigned int version; /**< KVC_WF_OPS_VERSION */
	/** The Pods labelled KVC_WF_LABEL_UID=uid and not KVC_WF_LABEL_COMPLETED (a cache may lag); *out a JSON array. */
	int (*list_pods)(void *ctx, const char *ns, const char *uid, cJSON **out);
	/** One Pod, read from the server; KVS_ENOTFOUND if it does not exist. */
	int (*get_pod)(void *ctx, const char *ns, const char *name, cJSON **out);
	/** Create a Pod; KVS_EEXISTS if the name is taken. */
	int (*create_pod)(void *ctx, const char *ns, const cJSON *pod);
	/** Delete a Pod; KVS_ENOTFOUND if already gone. */
	int (*delete_pod)(void *ctx, const char *ns, const char *name);
	/** Optional: the map's committed version without reading it (KVS_ENOTFOUND: no map). */
	int (*state_version)(void *ctx, const char *ns, const char *key, char *ver, size_t cap);
	/** Every field of the map, in order, and the version read; KVS_ENOTFOUND: no map. */
	int (*load_state)(void *ctx, const char *ns, const char *key, kvc_wf_entry_cb each, void *arg, char *ver,
	                  size_t cap);
	/**
	 * Set these fields in one atomic batch if the map is still at `expect`
	 * ("" : only if no map exists); KVS_ECONFLICT / KVS_EEXISTS otherwise.
	 */
	int (*commit_state)(void *ctx, const char *ns, const char *key, const kvc_wf_entry *e, size_t n,
	                    const char *expect, char *ver, size_t cap);
	/** Delete the map; KVS_ENOTFOUND if there is none. */
	int (*delete_state)(void *ctx, const char *ns, const char *key);
	/** Replace the Workflow's status (its status subresource), conditional on its resourceVersion. */
	int (*update_status)(void *ctx, const cJSON *workflow, const cJSON *status);
	/** Add (present 1) or remove (0) KVC_WF_FINALIZER, conditional on its resourceVersion. */
	int (*set_finalizer)(void *ctx, const cJSON *workflow, int present);
	/** Wall clock, unix seconds (times written to the status and nodes). */
	int64_t (*now)(void *ctx);
	/**
	 * Optional (NULL: Pods are never marked): label these finished Pods
	 * KVC_WF_LABEL_COMPLETED=true, their results being committed, so that
	 * list_pods no longer shows them. Best effort: a Pod not marked is
	 * listed again and marked by a later reconcile.
	 */
	int (*mark_completed)(void *ctx, const char *ns, const char *const *names, size_t n);
} kvc_wf_ops;

#define KVC_WF_RECONCILER_OPTS_VERSION 1
typedef struct kvc_wf_reconciler_opts {
	unsigned int version;   /**< KVC_WF_RECONCILER_OPTS_VERSION */
	const char *store;      /**< the kvsplit store named in stateRef; default "workflows" */
	uint32_t max_creates;   /**< Pods created per reconcile (then requeue); default 100 */
	uint32_t max_deletes;   /**< Pods deleted per reconcile; default 100 */
} kvc_wf_reconciler_opts;
#define KVC_WF_RECONCILER_OPTS_INIT { KVC_WF_RECONCILER_OPTS_VERSION, NULL, 0, 0 }

typedef struct kvc_wf_reconciler kvc_wf_reconciler;

/** What one reconcile did. */
typedef struct kvc_wf_result {
	int requeue;             /**< more to do now (creates capped, finalizer added) */
	uint32_t created;        /**< Pods created */
	uint32_t adopted;        /**< Pods found (AlreadyExists, or listed) and taken as the attempt */
	uint32_t deleted;        /**< Pods deleted */
	uint32_t marked;         /**< finished Pods labelled completed (their results committed) */
	uint32_t committed;      /**< node fields committed (0: no commit) */
	uint32_t loaded;         /**< node fields read from the store (0: cache was current) */
	int status_written;      /**< the status changed and was written */
	kvc_wf_wphase phase;     /**< the phase now */
} kvc_wf_result;

int kvc_wf_reconciler_new(kvc_wf_reconciler **out, const kvc_wf_ops *ops, void *ctx,
                          const kvc_wf_reconciler_opts *opts);
/** Accepts NULL. */
void kvc_wf_reconciler_free(kvc_wf_reconciler *r);

/**
 * Reconcile one Workflow (as the informer holds it). Thread-safe for
 * different workflows; one workflow must be reconciled by one thread at a
 * time (the work queue's guarantee). An invalid spec is not an error: it
 * is written to the status (phase Failed, "invalid spec: ...") and nothing
 * is created.
 */
int kvc_wf_reconcile(kvc_wf_reconciler *r, const cJSON *workflow, kvc_wf_result *res);

/** Drop what is cached of the workflow with this uid (its shard was released). */
void kvc_wf_reconciler_forget(kvc_wf_reconciler *r, const char *uid);

/** The state key of a workflow: "workflow/<name>/<uid>" into buf (KVS_ETOOBIG if it does not fit). */
int kvc_wf_state_key(char *buf, size_t cap, const kvc_wf_ident *id);

#endif
