/*
 * tasks.h — task expansion: which task index i is, for each parallelism kind.
 *
 *   withCount: N         tasks 0..N-1, no key;
 *   withKeys: [k...]     task i has key k[i];
 *   withMatrix: {d: [v...], ...}
 *                        every combination, the dimensions in the order
 *                        written and the last varying fastest (nested
 *                        loops): {a: [x, y], b: [1, 2, 3]} is x1 x2 x3 y1 y2 y3.
 *
 * Nothing is materialised: a task is computed from its index in O(dims), so
 * a 100,000-task workflow costs its spec and no more.
 */
#ifndef KVC_WF_TASKS_H
#define KVC_WF_TASKS_H

#include "controller/workflow/spec.h"

typedef struct kvc_wf_task {
	uint32_t index;
	const char *key;                        /**< withKeys, else NULL */
	uint32_t ndims;                         /**< withMatrix, else 0 */
	const char *values[KVC_WF_DIMS_MAX];    /**< value of each dimension */
} kvc_wf_task;

/**
 * The task at `index` (< spec->total, KVS_EINVAL otherwise). The strings
 * point into the spec and live as long as it.
 */
int kvc_wf_task_at(kvc_wf_task *out, const kvc_wf_spec *spec, uint32_t index);

/**
 * Expand ${task.index}, ${task.key} and ${task.matrix.<name>} in `s` for
 * `task` into *out (malloc'd, caller frees). With task NULL only check `s`:
 * every "${task." reference must be closed and name something this spec
 * has (${task.key} needs withKeys, ${task.matrix.x} a dimension x), and the
 * expansion must stay under KVC_WF_ARG_MAX for every task; `path` names
 * the string in the message (KVS_EINVAL). Other "${...}" text is kept as is.
 */
#define KVC_WF_ARG_MAX (128u * 1024u)
int kvc_wf_subst(char **out, const char *s, const kvc_wf_spec *spec, const kvc_wf_task *task,
                 const char *path);

#endif
