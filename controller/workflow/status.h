/*
 * status.h — the Workflow's status: a summary and a reference, never the
 * nodes. Its size does not grow with the task count (a 100,000-task
 * workflow's status is a few hundred bytes), so `kubectl get -w` and every
 * informer see each change while the node status lives in kvsplit.
 *
 *   status:
 *     phase: Running              # Pending, Running, Succeeded, Failed
 *     message: "..."              # why it failed, or "invalid spec: ..."
 *     observedGeneration: 1
 *     progress: "37/100"          # final tasks / total
 *     tasks: {total, pending, running, succeeded, failed, skipped}
 *     startedAt, finishedAt
 *     stateRef: {store, key, version, hash}
 */
#ifndef KVC_WF_STATUS_H
#define KVC_WF_STATUS_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "controller/workflow/node.h"

typedef enum kvc_wf_wphase {
	KVC_WF_W_PENDING = 0,
	KVC_WF_W_RUNNING,
	KVC_WF_W_SUCCEEDED,
	KVC_WF_W_FAILED
} kvc_wf_wphase;

const char *kvc_wf_wphase_name(kvc_wf_wphase p);

typedef struct kvc_wf_counts {
	uint32_t total, pending, running, succeeded, failed, skipped;
} kvc_wf_counts;

#define KVC_WF_STORE_MAX 64u
#define KVC_WF_STATE_KEY_MAX 512u
#define KVC_WF_STATE_VER_MAX 128u

/** Where a workflow's node status is: the map `key` in kvsplit store `store`. */
typedef struct kvc_wf_ref {
	char store[KVC_WF_STORE_MAX];
	char key[KVC_WF_STATE_KEY_MAX];
	char version[KVC_WF_STATE_VER_MAX]; /**< the map's version; "" while none is stored */
	uint64_t hash;                      /**< kvc_wf_entry_hash summed over its fields */
} kvc_wf_ref;

typedef struct kvc_wf_summary {
	kvc_wf_wphase phase;
	const char *message;        /**< NULL: none */
	int64_t generation;
	kvc_wf_counts counts;
	int64_t started, finished;  /**< unix seconds, 0 unset */
	const kvc_wf_ref *ref;      /**< NULL: no stateRef (an invalid spec) */
} kvc_wf_summary;

/** The status object (caller frees with cJSON_Delete). */
int kvc_wf_status_json(cJSON **out, const kvc_wf_summary *s);

/** The phase a status object carries; -1 if none or unknown. */
int kvc_wf_status_phase(const cJSON *status);

#endif
