/*
 * kubeops.h — kvc_wf_ops over a real API server: Pods through the
 * Kubernetes client (listed from the member's shard-scoped Pod informer),
 * the Workflow's status through its status subresource and the finalizer
 * through an update, both conditional on the resourceVersion read, and the
 * node map in a kvsplit store in the Workflow's namespace.
 *
 * The node map is a key-split map (docs/controller.md, "Node state
 * storage"): one field per task, value the record's JSON; a commit is one
 * kvs_map_commit batch of the changed fields, conditional on the version
 * the reconcile read (KVS_ECONFLICT / KVS_EEXISTS), so it sends about the
 * changed nodes' bytes.
 */
#ifndef KVC_WF_KUBEOPS_H
#define KVC_WF_KUBEOPS_H

#include <kvsplit.h>
#include <kvsplit/kube.h>

#include "controller/informer.h"
#include "controller/workflow/reconcile.h"

/** workflows.kvsplit.io/v1alpha1 workflows, namespaced. */
extern const kvs_kube_resource kvc_wf_workflows;

/** The Pod informer's index of task Pods by their workflow-uid label. */
#define KVC_WF_INDEX_UID "workflow-uid"
int kvc_wf_index_uid(void *ctx, const cJSON *pod, char *buf, size_t cap);

typedef struct kvc_wf_kube kvc_wf_kube;

/**
 * @param kube        borrowed; outlives the handle
 * @param store_opts  how to reach the cluster for the kvsplit stores (one
 *                    per namespace, opened on first use); copied
 * @param store       the store name ("workflows" if NULL)
 * @param pods        a Pod informer with the KVC_WF_INDEX_UID index, or
 *                    NULL (list from the server)
 */
int kvc_wf_kube_new(kvc_wf_kube **out, kvs_kube *kube, const kvs_kube_options *store_opts,
                    const char *store, kvc_informer *pods);
void kvc_wf_kube_free(kvc_wf_kube *k);

/** The ops; their ctx is the kvc_wf_kube. */
const kvc_wf_ops *kvc_wf_kube_ops(void);

/** Figures since start (for metrics and the evaluation). */
typedef struct kvc_wf_kube_stats {
	uint64_t state_bytes_sent;   /**< bytes the node-map commits sent (runs + index) */
	uint64_t state_commits;
	uint64_t pods_created, pods_exists, pods_deleted;
	uint64_t pods_completed;       /**< finished Pods labelled completed (or gone) */
	uint64_t pods_complete_failed; /**< ... labels that failed (retried by a later reconcile) */
} kvc_wf_kube_stats;
void kvc_wf_kube_stats_get(kvc_wf_kube *k, kvc_wf_kube_stats *out);

/**
 * Collect the garbage of the node store in namespace `ns` (kvs_gc on the
 * store the reconciles write, opened on first use). For the controller's
 * singleton gc task; safe beside running reconciles and other collectors
 * (docs/design.md, "Garbage collection").
 */
int kvc_wf_kube_gc(kvc_wf_kube *k, const char *ns, const kvs_gc_options *opts, kvs_gc_report *out);

#endif
