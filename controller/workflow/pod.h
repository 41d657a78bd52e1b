/*
 * pod.h — task Pods: rendering one from the template, and reading back what
 * the API server says about one.
 *
 * A task attempt's Pod is named <workflow>-<index>-<attempt> (attempts
 * count from 1): a repeat after a crash or a handoff is AlreadyExists,
 * never a second Pod. It carries an owner reference to the Workflow
 * (controller, blockOwnerDeletion), the Workflow's kvsplit.io/vshard label
 * (so the member watching that shard sees it), and the labels
 * workflows.kvsplit.io/{workflow-uid,workflow,task-index,attempt}.
 * Every container (and init container) gets TASK_INDEX, TASK_KEY
 * (withKeys) or TASK_MATRIX_<NAME> (withMatrix) in its env, and
 * ${task.*} substituted in its command and args. restartPolicy is Never.
 */
#ifndef KVC_WF_POD_H
#define KVC_WF_POD_H

#include "controller/workflow/spec.h"

#define KVC_WF_POD_NAME_MAX KVC_WF_NAME_MAX

/** The Pod name of attempt `attempt` (>= 1) of task `index`. */
void kvc_wf_pod_name(char out[KVC_WF_POD_NAME_MAX + 1], const char *workflow, uint32_t index,
                     uint32_t attempt);

/** A new Pod document (caller frees with cJSON_Delete). */
int kvc_wf_pod_render(cJSON **out, const kvc_wf_spec *spec, const kvc_wf_ident *wf, uint32_t index,
                      uint32_t attempt);

typedef enum kvc_wf_pod_phase {
	KVC_WF_POD_PENDING = 0,   /**< Pending, Unknown, or no status yet */
	KVC_WF_POD_RUNNING,
	KVC_WF_POD_SUCCEEDED,
	KVC_WF_POD_FAILED
} kvc_wf_pod_phase;

/** What the controller reads of a task Pod. */
typedef struct kvc_wf_pod_obs {
	char name[KVC_WF_POD_NAME_MAX + 1];
	char owner_uid[KVC_WF_UID_MAX + 1]; /**< the workflow-uid label */
	uint32_t index, attempt;
	kvc_wf_pod_phase phase;
	int has_exit;
	int exit_code;            /**< first non-zero terminated exit code, else 0 */
	int64_t started;          /**< status.startTime, unix seconds, 0 if absent */
	int64_t finished;         /**< latest terminated.finishedAt, 0 if absent */
	int deleting;             /**< metadata.deletionTimestamp is set */
	int completed;            /**< labelled KVC_WF_LABEL_COMPLETED=true (its result is recorded) */
	char message[256];        /**< reason: message of the failure, truncated */
	char result[256];         /**< a succeeded container's termination message (its result), truncated */
} kvc_wf_pod_obs;

/**
 * Read a Pod (untrusted): name, the task labels (KVS_EINVAL when they are
 * missing or malformed: not a task Pod), phase, exit code, times, message.
 */
int kvc_wf_pod_observe(kvc_wf_pod_obs *out, const cJSON *pod);

/** RFC 3339 seconds ("2024-05-01T10:00:00Z") to unix seconds; -1 if malformed. */
int64_t kvc_wf_time_parse(const char *s);
/** Unix seconds to RFC 3339 (buf of at least 21 bytes). */
void kvc_wf_time_format(char *buf, size_t cap, int64_t t);

#endif
