/*
 * tasks.c — task expansion and ${task.*} substitution.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/workflow/tasks.h"

int kvc_wf_task_at(kvc_wf_task *out, const kvc_wf_spec *sp, uint32_t index)
{
	memset(out, 0, sizeof(*out));
	if (index >= sp->total)
		return kvs_error_set(KVS_EINVAL, "workflow: task %u of %u", index, sp->total);
	out->index = index;
	if (sp->kind == KVC_WF_WITH_KEYS)
		out->key = sp->keys[index];
	if (sp->kind == KVC_WF_WITH_MATRIX) {
		uint32_t rest = index;
		out->ndims = sp->ndims;
		for (uint32_t d = sp->ndims; d-- > 0;) {
			out->values[d] = sp->dims[d].values[rest % sp->dims[d].nvalues];
			rest /= sp->dims[d].nvalues;
		}
	}
	return 0;
}

#define PREFIX "${task."

/* What a reference inside "${task." ... "}" names: its value for `task`, or
 * (task NULL) the longest value it can take; NULL if it names nothing. */
static const char *resolve(size_t *len_max, const char *ref, size_t n, const kvc_wf_spec *sp,
                           const kvc_wf_task *task, char *num)
{
	if (n == 5 && !memcmp(ref, "index", 5)) {
		*len_max = kvc_wf_digits(sp->total ? sp->total - 1 : 0);
		if (task)
			snprintf(num, 12, "%u", task->index);
		return num;
	}
	if (n == 3 && !memcmp(ref, "key", 3) && sp->kind == KVC_WF_WITH_KEYS) {
		*len_max = sp->key_len_max;
		return task ? task->key : "";
	}
	if (n > 7 && !memcmp(ref, "matrix.", 7) && sp->kind == KVC_WF_WITH_MATRIX)
		for (uint32_t d = 0; d < sp->ndims; d++)
			if (strlen(sp->dims[d].name) == n - 7 && !memcmp(ref + 7, sp->dims[d].name, n - 7)) {
				*len_max = sp->dims[d].len_max;
				return task ? task->values[d] : "";
			}
	return NULL;
}

int kvc_wf_subst(char **out, const char *s, const kvc_wf_spec *sp, const kvc_wf_task *task,
                 const char *path)
{
	size_t cap = strlen(s) + 1, len = 0, worst = strlen(s);
	char *buf = NULL, num[12] = "";
	const char *p = s, *hit;

	if (out) {
		*out = NULL;
		if (!(buf = malloc(cap)))
			return kvs_error_set(KVS_ENOMEM, "workflow: out of memory");
	}
	while ((hit = strstr(p, PREFIX))) {
		const char *ref = hit + strlen(PREFIX), *end = strchr(ref, '}'), *val;
		size_t vmax = 0, vlen;

		if (!end) {
			free(buf);
			return kvs_error_set(KVS_EINVAL, "%s: \"${task.\" is not closed by \"}\"", path);
		}
		if (!(val = resolve(&vmax, ref, (size_t)(end - ref), sp, task, num))) {
			const char *want = sp->kind == KVC_WF_WITH_KEYS     ? "${task.index}, ${task.key}"
			                   : sp->kind == KVC_WF_WITH_MATRIX ? "${task.index}, ${task.matrix.<dimension>}"
			                                                    : "${task.index}";
			free(buf);
			return kvs_error_set(KVS_EINVAL, "%s: ${task.%.*s} names nothing in this workflow (it has %s)",
			                     path, (int)(end - ref > 64 ? 64 : end - ref), ref, want);
		}
		worst += vmax;
		if (worst > KVC_WF_ARG_MAX) {
			free(buf);
			return kvs_error_set(KVS_EINVAL, "%s: may expand to more than %u bytes", path, KVC_WF_ARG_MAX);
		}
		if (buf) {
			size_t lit = (size_t)(hit - p);
			vlen = strlen(val);
			if (len + lit + vlen + 1 > cap) {
				size_t ncap = (len + lit + vlen + 1) * 2;
				char *nb = realloc(buf, ncap);
				if (!nb) {
					free(buf);
					return kvs_error_set(KVS_ENOMEM, "workflow: out of memory");
				}
				buf = nb, cap = ncap;
			}
			memcpy(buf + len, p, lit);
			memcpy(buf + len + lit, val, vlen);
			len += lit + vlen;
		}
		p = end + 1;
	}
	if (buf) {
		size_t rest = strlen(p);
		if (len + rest + 1 > cap) {
			char *nb = realloc(buf, len + rest + 1);
			if (!nb) {
				free(buf);
				return kvs_error_set(KVS_ENOMEM, "workflow: out of memory");
			}
			buf = nb;
		}
		memcpy(buf + len, p, rest + 1);
		*out = buf;
	}
	return 0;
}
