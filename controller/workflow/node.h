/*
 * node.h — one task's node status and its state machine.
 *
 * The node status of a workflow is a key-split map: field "%05u" (the task
 * index, zero-padded so fields sort by index) -> one JSON object
 *
 *   {"phase":"Running","attempts":2,"pod":"wf-7-2","startedAt":"...",
 *    "finishedAt":"...","exitCode":1,"message":"..."}
 *
 * A task with no field is Pending with no attempt. Phases:
 *
 *   Pending ──create Pod──> Running ──Pod Succeeded──> Succeeded
 *      ^                       │
 *      └─ attempts < max ──────┤ Pod Failed, or deleted before it finished
 *                              └─ attempts = max ──> Failed
 *   Pending, Running ──outcome decided──> Skipped (not started, or its
 *                                         Pod deleted: TerminateRemaining)
 *
 * Succeeded, Failed and Skipped are final. A record read from the store is
 * untrusted (KVS_ECORRUPT on anything malformed).
 */
#ifndef KVC_WF_NODE_H
#define KVC_WF_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "controller/workflow/pod.h"

typedef enum kvc_wf_phase {
	KVC_WF_PENDING = 0,
	KVC_WF_RUNNING,
	KVC_WF_SUCCEEDED,
	KVC_WF_FAILED,
	KVC_WF_SKIPPED
} kvc_wf_phase;

#define KVC_WF_FIELD_LEN 5u              /**< "%05u": indexes below 100,000 */
#define KVC_WF_NODE_JSON_MAX 1024u       /**< a stored record, bytes */
#define KVC_WF_MESSAGE_MAX 255u

typedef struct kvc_wf_node {
	kvc_wf_phase phase;
	uint32_t attempts;       /**< Pods created; the current one is attempt `attempts` */
	int64_t started;         /**< current attempt's start, unix seconds; 0 unset */
	int64_t finished;        /**< when it became final; 0 unset */
	int has_exit;
	int exit_code;           /**< of the last finished attempt */
	char *message;           /**< NULL or malloc'd, at most KVC_WF_MESSAGE_MAX bytes */
	uint64_t hash;           /**< XXH3-64 of its stored field and value; 0 if not stored */
	unsigned char dirty;     /**< changed since the last commit */
} kvc_wf_node;

static inline int kvc_wf_phase_final(kvc_wf_phase p)
{
	return p == KVC_WF_SUCCEEDED || p == KVC_WF_FAILED || p == KVC_WF_SKIPPED;
}

const char *kvc_wf_phase_name(kvc_wf_phase p);

/** The map field of task `index`: KVC_WF_FIELD_LEN digits and a NUL. */
void kvc_wf_field(char out[KVC_WF_FIELD_LEN + 1], uint32_t index);
/** The index a field names, if < total; -1 otherwise. */
int64_t kvc_wf_field_index(const void *field, size_t len, uint32_t total);

/**
 * The record as stored (JSON text, malloc'd) for task `index` of workflow
 * `wf` (the Pod name is derived from them).
 */
int kvc_wf_node_encode(char **out, size_t *out_len, const kvc_wf_node *n, const char *wf, uint32_t index);
/** Read a stored record into *out (message malloc'd). KVS_ECORRUPT if malformed. */
int kvc_wf_node_decode(kvc_wf_node *out, const void *json, size_t len, uint32_t max_attempts);

/** Set the message (copied, truncated to KVC_WF_MESSAGE_MAX); NULL clears it. */
int kvc_wf_node_set_message(kvc_wf_node *n, const char *msg);

/**
 * Fold the observation of the node's current Pod (obs->attempt ==
 * n->attempts) into the node, following the state machine above. Marks it
 * dirty if anything changed. `now` is for a missing finish time.
 * Returns 1 if the attempt ended (finished or failed), else 0.
 */
int kvc_wf_node_observe(kvc_wf_node *n, const kvc_wf_pod_obs *obs, uint32_t max_attempts, int64_t now);

/**
 * The node's current Pod is gone before it finished (deleted, evicted and
 * collected): a failed attempt, retried if attempts are left.
 */
int kvc_wf_node_lost(kvc_wf_node *n, const char *pod, uint32_t max_attempts, int64_t now);

/**
 * The multiset hash of a map's content (the Workflow's stateRef.hash):
 * the sum mod 2^64 of XXH3-64(field || 0x00 || value) over every field.
 * It is updated per changed field, and anyone can check it from
 * `kvsplit map export` (docs/controller.md).
 */
uint64_t kvc_wf_entry_hash(const void *field, size_t flen, const void *value, size_t vlen);

#endif
