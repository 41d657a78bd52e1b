/*
 * spec.h — a Workflow (workflows.kvsplit.io/v1alpha1) as the controller reads
 * it: its identity from metadata and its spec, parsed and validated.
 *
 * The Workflow comes from the API server but was written by a user: every
 * field is checked, every list and string is capped, and an invalid spec is
 * KVS_EINVAL with a message naming the field (kvs_error_last()), which the
 * reconcile puts in the Workflow's status. The limits are the KVC_WF_*_MAX
 * below (docs/controller.md, "Workflow controller").
 */
#ifndef KVC_WF_SPEC_H
#define KVC_WF_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define KVC_WF_GROUP "workflows.kvsplit.io"
#define KVC_WF_VERSION "v1alpha1"
#define KVC_WF_API_VERSION KVC_WF_GROUP "/" KVC_WF_VERSION
#define KVC_WF_KIND "Workflow"
#define KVC_WF_FINALIZER KVC_WF_GROUP "/state"

/* Labels on every task Pod. The uid label selects a workflow's Pods (a name
 * may be longer than a label value's 63 characters; a uid never is). */
#define KVC_WF_LABEL_UID KVC_WF_GROUP "/workflow-uid"
#define KVC_WF_LABEL_NAME KVC_WF_GROUP "/workflow"
#define KVC_WF_LABEL_INDEX KVC_WF_GROUP "/task-index"
#define KVC_WF_LABEL_ATTEMPT KVC_WF_GROUP "/attempt"
/* Set ("true") once the Pod's result is committed to the node status; the
 * controller's Pod informer selects only Pods without it (Argo's
 * workflows.argoproj.io/completed), so a finished Pod leaves every cache. */
#define KVC_WF_LABEL_COMPLETED KVC_WF_GROUP "/completed"

#define KVC_WF_TASKS_MAX 100000u       /**< tasks in one workflow */
#define KVC_WF_KEY_MAX 1024u           /**< bytes of one withKeys key or matrix value */
#define KVC_WF_DIMS_MAX 8u             /**< withMatrix dimensions */
#define KVC_WF_DIM_NAME_MAX 63u        /**< bytes of a dimension name */
#define KVC_WF_ATTEMPTS_MAX 100u       /**< retries.maxAttemptsPerTask */
#define KVC_WF_TEMPLATE_MAX (64u * 1024u) /**< template, as compact JSON */
#define KVC_WF_NAME_MAX 253u           /**< metadata.name; less if Pod names would not fit */
#define KVC_WF_UID_MAX 128u

typedef enum kvc_wf_kind {
	KVC_WF_WITH_COUNT = 1,
	KVC_WF_WITH_KEYS,
	KVC_WF_WITH_MATRIX
} kvc_wf_kind;

typedef enum kvc_wf_strategy {
	KVC_WF_ALL_SUCCESSFUL = 0, /**< default */
	KVC_WF_ANY_SUCCESSFUL
} kvc_wf_strategy;

typedef enum kvc_wf_on_complete {
	KVC_WF_WAIT_FOR_REMAINING = 0, /**< default */
	KVC_WF_TERMINATE_REMAINING
} kvc_wf_on_complete;

/** One withMatrix dimension. */
typedef struct kvc_wf_dim {
	char *name;            /**< as written */
	char *env;             /**< TASK_MATRIX_<NAME>: upper case, [A-Z0-9_] */
	uint32_t nvalues;
	char **values;
	size_t len_max;        /**< longest value, bytes */
} kvc_wf_dim;

typedef struct kvc_wf_spec {
	kvc_wf_kind kind;
	uint32_t total;               /**< tasks: 1..KVC_WF_TASKS_MAX */
	char **keys;                  /**< withKeys: total keys */
	size_t key_len_max;           /**< longest key, bytes */
	uint32_t ndims;               /**< withMatrix, in the order written */
	kvc_wf_dim dims[KVC_WF_DIMS_MAX];
	uint32_t max_concurrency;     /**< 0: no limit but the controller's per-reconcile cap */
	uint32_t max_attempts;        /**< 1..KVC_WF_ATTEMPTS_MAX, default 1 */
	kvc_wf_strategy strategy;
	kvc_wf_on_complete on_complete;
	cJSON *template;              /**< spec.template (a PodTemplateSpec), owned copy */
} kvc_wf_spec;

/** Who the Workflow is: from metadata. */
typedef struct kvc_wf_ident {
	char name[KVC_WF_NAME_MAX + 1];
	char ns[64];
	char uid[KVC_WF_UID_MAX + 1];
	char vshard[16];              /**< its kvsplit.io/vshard label, "" if absent */
	int64_t generation;
	int deleting;                 /**< metadata.deletionTimestamp is set */
	int has_finalizer;            /**< KVC_WF_FINALIZER is in metadata.finalizers */
} kvc_wf_ident;

/**
 * Read metadata: name, namespace and uid must be there (KVS_EINVAL
 * otherwise: nothing can be done for such an object).
 */
int kvc_wf_ident_parse(kvc_wf_ident *out, const cJSON *workflow);

/**
 * Parse and validate the Workflow's spec for the Workflow named `name`
 * (Pod names are derived from it, so its length is checked against the
 * task count and attempts). On error *out is zeroed and kvs_error_last()
 * says which field and why. Release with kvc_wf_spec_free().
 */
int kvc_wf_spec_parse(kvc_wf_spec *out, const cJSON *workflow, const char *name);
void kvc_wf_spec_free(kvc_wf_spec *spec);

/** Decimal digits of v (1 for 0). */
unsigned kvc_wf_digits(uint32_t v);

#endif
