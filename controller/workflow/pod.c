/*
 * pod.c — a task attempt's Pod from the template, and a Pod's observed state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/vshard.h"
#include "controller/workflow/pod.h"
#include "controller/workflow/tasks.h"

static cJSON *get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

void kvc_wf_pod_name(char out[KVC_WF_POD_NAME_MAX + 1], const char *wf, uint32_t index, uint32_t attempt)
{
	char suffix[24];
	size_t n = strnlen(wf, KVC_WF_POD_NAME_MAX), k;

	k = (size_t)snprintf(suffix, sizeof(suffix), "-%u-%u", index, attempt);
	if (n + k > KVC_WF_POD_NAME_MAX) /* spec.c refuses such names */
		n = KVC_WF_POD_NAME_MAX - k;
	memcpy(out, wf, n);
	memcpy(out + n, suffix, k + 1);
}

/* Replace (or add) member k of object o with v; 0 or -1 (v freed). */
static int put(cJSON *o, const char *k, cJSON *v)
{
	if (!v)
		return -1;
	if (get(o, k))
		return cJSON_ReplaceItemInObjectCaseSensitive(o, k, v) ? 0 : (cJSON_Delete(v), -1);
	return cJSON_AddItemToObject(o, k, v) ? 0 : (cJSON_Delete(v), -1);
}

static cJSON *object_at(cJSON *o, const char *k)
{
	cJSON *v = get(o, k);
	if (cJSON_IsObject(v))
		return v;
	return put(o, k, cJSON_CreateObject()) < 0 ? NULL : get(o, k);
}

static int add_env(cJSON *env, const char *name, const char *value)
{
	cJSON *e = cJSON_CreateObject();
	if (!e || !cJSON_AddStringToObject(e, "name", name) || !cJSON_AddStringToObject(e, "value", value) ||
	    !cJSON_AddItemToArray(env, e)) {
		cJSON_Delete(e);
		return -1;
	}
	return 0;
}

/* The task's env and ${task.*} in command and args, in one container. */
static int task_container(cJSON *c, const kvc_wf_spec *sp, const kvc_wf_task *t)
{
	static const char *const lists[] = { "command", "args", NULL };
	char num[12];
	cJSON *env = get(c, "env"), *a;
	int rc;

	if (!cJSON_IsArray(env)) {
		if (put(c, "env", cJSON_CreateArray()) < 0)
			return KVS_ENOMEM;
		env = get(c, "env");
	}
	snprintf(num, sizeof(num), "%u", t->index);
	if (add_env(env, "TASK_INDEX", num) < 0 || (t->key && add_env(env, "TASK_KEY", t->key) < 0))
		return KVS_ENOMEM;
	for (uint32_t d = 0; d < t->ndims; d++)
		if (add_env(env, sp->dims[d].env, t->values[d]) < 0)
			return KVS_ENOMEM;
	for (size_t l = 0; lists[l]; l++) {
		cJSON *list = get(c, lists[l]);
		for (a = list ? list->child : NULL; a; a = a->next) {
			cJSON *repl;
			char *s;
			if (!cJSON_IsString(a) || !strstr(a->valuestring, "${task."))
				continue;
			if ((rc = kvc_wf_subst(&s, a->valuestring, sp, t, lists[l])) < 0)
				return rc;
			repl = cJSON_CreateString(s);
			free(s);
			if (!repl || !cJSON_ReplaceItemViaPointer(list, a, repl)) {
				cJSON_Delete(repl);
				return KVS_ENOMEM;
			}
			a = repl;
		}
	}
	return 0;
}

static int owner_ref(cJSON *md, const kvc_wf_ident *wf)
{
	cJSON *refs = cJSON_CreateArray(), *r = cJSON_CreateObject();
	if (!refs || !r || !cJSON_AddItemToArray(refs, r)) {
		cJSON_Delete(refs);
		cJSON_Delete(r);
		return -1;
	}
	if (put(md, "ownerReferences", refs) < 0)
		return -1;
	if (!cJSON_AddStringToObject(r, "apiVersion", KVC_WF_API_VERSION) ||
	    !cJSON_AddStringToObject(r, "kind", KVC_WF_KIND) || !cJSON_AddStringToObject(r, "name", wf->name) ||
	    !cJSON_AddStringToObject(r, "uid", wf->uid) || !cJSON_AddTrueToObject(r, "controller") ||
	    !cJSON_AddTrueToObject(r, "blockOwnerDeletion"))
		return -1;
	return 0;
}

int kvc_wf_pod_render(cJSON **out, const kvc_wf_spec *sp, const kvc_wf_ident *wf, uint32_t index,
                      uint32_t attempt)
{
	static const char *const groups[] = { "containers", "initContainers", NULL };
	char name[KVC_WF_POD_NAME_MAX + 1], num[12];
	cJSON *pod = NULL, *md, *labels, *spec, *c;
	kvc_wf_task t;
	int rc;

	*out = NULL;
	if (attempt < 1 || attempt > sp->max_attempts)
		return kvs_error_set(KVS_EINVAL, "workflow: attempt %u of %u", attempt, sp->max_attempts);
	if ((rc = kvc_wf_task_at(&t, sp, index)) < 0)
		return rc;
	if (!(pod = cJSON_Duplicate(sp->template, 1)))
		goto nomem;
	kvc_wf_pod_name(name, wf->name, index, attempt);
	if (put(pod, "apiVersion", cJSON_CreateString("v1")) < 0 || put(pod, "kind", cJSON_CreateString("Pod")) < 0)
		goto nomem;
	if (!(md = object_at(pod, "metadata")) || !(labels = object_at(md, "labels")))
		goto nomem;
	cJSON_DeleteItemFromObjectCaseSensitive(md, "generateName");
	if (put(md, "name", cJSON_CreateString(name)) < 0 || put(md, "namespace", cJSON_CreateString(wf->ns)) < 0 ||
	    owner_ref(md, wf) < 0)
		goto nomem;
	if (put(labels, KVC_WF_LABEL_UID, cJSON_CreateString(wf->uid)) < 0)
		goto nomem;
	/* A label value is at most 63 characters; longer names go by uid only. */
	if (strlen(wf->name) <= 63 && put(labels, KVC_WF_LABEL_NAME, cJSON_CreateString(wf->name)) < 0)
		goto nomem;
	snprintf(num, sizeof(num), "%u", index);
	if (put(labels, KVC_WF_LABEL_INDEX, cJSON_CreateString(num)) < 0)
		goto nomem;
	snprintf(num, sizeof(num), "%u", attempt);
	if (put(labels, KVC_WF_LABEL_ATTEMPT, cJSON_CreateString(num)) < 0)
		goto nomem;
	if (wf->vshard[0] && put(labels, KVC_VSHARD_LABEL, cJSON_CreateString(wf->vshard)) < 0)
		goto nomem;
	if (!(spec = object_at(pod, "spec")) || put(spec, "restartPolicy", cJSON_CreateString("Never")) < 0)
		goto nomem;
	for (size_t g = 0; groups[g]; g++)
		cJSON_ArrayForEach(c, get(spec, groups[g]))
			if (cJSON_IsObject(c) && (rc = task_container(c, sp, &t)) < 0) {
				cJSON_Delete(pod);
				return rc == KVS_ENOMEM ? kvs_error_set(rc, "workflow: out of memory") : rc;
			}
	cJSON_DeleteItemFromObjectCaseSensitive(pod, "status");
	*out = pod;
	return 0;
nomem:
	cJSON_Delete(pod);
	return kvs_error_set(KVS_ENOMEM, "workflow: out of memory");
}

int64_t kvc_wf_time_parse(const char *s)
{
	struct tm tm;
	int n = 0;
	memset(&tm, 0, sizeof(tm));
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
	                 &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -1;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

void kvc_wf_time_format(char *buf, size_t cap, int64_t t)
{
	time_t s = (time_t)t;
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A decimal label value in [lo, hi]. */
static int label_num(uint32_t *out, const cJSON *labels, const char *k, uint32_t lo, uint32_t hi)
{
	const char *s = cJSON_GetStringValue(get(labels, k));
	unsigned long v = 0;
	if (!s || !*s || strlen(s) > 10)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static void copy(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s ? s : "");
}

int kvc_wf_pod_observe(kvc_wf_pod_obs *out, const cJSON *pod)
{
	const cJSON *md = get(pod, "metadata"), *labels = get(md, "labels"), *st = get(pod, "status"), *cs;
	const char *name = cJSON_GetStringValue(get(md, "name")), *uid = cJSON_GetStringValue(get(labels, KVC_WF_LABEL_UID));
	const char *phase = cJSON_GetStringValue(get(st, "phase")), *reason = NULL, *msg = NULL;
	kvc_wf_pod_obs o;

	memset(&o, 0, sizeof(o));
	if (!name || strlen(name) > KVC_WF_POD_NAME_MAX || !uid || strlen(uid) > KVC_WF_UID_MAX)
		return kvs_error_set(KVS_EINVAL, "workflow: a Pod without its name or %s label", KVC_WF_LABEL_UID);
	strcpy(o.name, name);
	strcpy(o.owner_uid, uid);
	if (label_num(&o.index, labels, KVC_WF_LABEL_INDEX, 0, KVC_WF_TASKS_MAX - 1) < 0 ||
	    label_num(&o.attempt, labels, KVC_WF_LABEL_ATTEMPT, 1, KVC_WF_ATTEMPTS_MAX) < 0)
		return kvs_error_set(KVS_EINVAL, "workflow: Pod %s: bad %s or %s label", name, KVC_WF_LABEL_INDEX,
		                     KVC_WF_LABEL_ATTEMPT);
	o.deleting = cJSON_IsString(get(md, "deletionTimestamp"));
	{
		const char *done = cJSON_GetStringValue(get(labels, KVC_WF_LABEL_COMPLETED));
		o.completed = done && !strcmp(done, "true");
	}
	if (phase && !strcmp(phase, "Running"))
		o.phase = KVC_WF_POD_RUNNING;
	else if (phase && !strcmp(phase, "Succeeded"))
		o.phase = KVC_WF_POD_SUCCEEDED;
	else if (phase && !strcmp(phase, "Failed"))
		o.phase = KVC_WF_POD_FAILED;
	if ((o.started = kvc_wf_time_parse(cJSON_GetStringValue(get(st, "startTime")))) < 0)
		o.started = 0;
	cJSON_ArrayForEach(cs, get(st, "containerStatuses")) {
		const cJSON *term = get(get(cs, "state"), "terminated"), *ec = get(term, "exitCode");
		int64_t fin;
		if (!cJSON_IsObject(term) || !cJSON_IsNumber(ec))
			continue;
		int code = ec->valuedouble < -1e9 || ec->valuedouble > 1e9 ? -1 : (int)ec->valuedouble;
		if (code == 0 && !o.result[0])
			copy(o.result, sizeof(o.result), cJSON_GetStringValue(get(term, "message")));
		if (!o.has_exit || (o.exit_code == 0 && code != 0)) {
			o.exit_code = code;
			if (code != 0 || !reason) {
				reason = cJSON_GetStringValue(get(term, "reason"));
				msg = cJSON_GetStringValue(get(term, "message"));
			}
		}
		o.has_exit = 1;
		if ((fin = kvc_wf_time_parse(cJSON_GetStringValue(get(term, "finishedAt")))) > o.finished)
			o.finished = fin;
	}
	if (!reason && !msg) {
		reason = cJSON_GetStringValue(get(st, "reason"));
		msg = cJSON_GetStringValue(get(st, "message"));
	}
	if (reason && msg)
		snprintf(o.message, sizeof(o.message), "%.100s: %.150s", reason, msg);
	else
		copy(o.message, sizeof(o.message), reason ? reason : msg);
	*out = o;
	return 0;
}
