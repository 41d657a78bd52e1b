/*
 * node.c — a task's node record: its stored form and its transitions.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/workflow/node.h"

static const char *const phase_names[] = { "Pending", "Running", "Succeeded", "Failed", "Skipped" };

const char *kvc_wf_phase_name(kvc_wf_phase p)
{
	return (unsigned)p < 5 ? phase_names[p] : "Unknown";
}

void kvc_wf_field(char out[KVC_WF_FIELD_LEN + 1], uint32_t index)
{
	snprintf(out, KVC_WF_FIELD_LEN + 1, "%05u", index % KVC_WF_TASKS_MAX);
}

int64_t kvc_wf_field_index(const void *field, size_t len, uint32_t total)
{
	const char *f = field;
	int64_t v = 0;
	if (len != KVC_WF_FIELD_LEN)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (f[i] < '0' || f[i] > '9')
			return -1;
		v = v * 10 + (f[i] - '0');
	}
	return v < total ? v : -1;
}

uint64_t kvc_wf_entry_hash(const void *field, size_t flen, const void *value, size_t vlen)
{
	XXH3_state_t st;
	static const unsigned char zero = 0;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, field, flen);
	XXH3_64bits_update(&st, &zero, 1);
	XXH3_64bits_update(&st, value, vlen);
	return XXH3_64bits_digest(&st);
}

int kvc_wf_node_set_message(kvc_wf_node *n, const char *msg)
{
	char *m = NULL;
	if (msg && *msg) {
		size_t len = strlen(msg);
		if (len > KVC_WF_MESSAGE_MAX)
			len = KVC_WF_MESSAGE_MAX;
		if (!(m = malloc(len + 1)))
			return kvs_error_set(KVS_ENOMEM, "workflow: out of memory");
		memcpy(m, msg, len);
		m[len] = '\0';
	}
	if ((m == NULL) != (n->message == NULL) || (m && strcmp(m, n->message)))
		n->dirty = 1;
	free(n->message);
	n->message = m;
	return 0;
}

int kvc_wf_node_encode(char **out, size_t *out_len, const kvc_wf_node *n, const char *wf, uint32_t index)
{
	char pod[KVC_WF_POD_NAME_MAX + 1], t[32];
	cJSON *o = cJSON_CreateObject();
	int ok = o && cJSON_AddStringToObject(o, "phase", kvc_wf_phase_name(n->phase)) &&
	         cJSON_AddNumberToObject(o, "attempts", n->attempts);

	*out = NULL;
	if (ok && n->attempts > 0) {
		kvc_wf_pod_name(pod, wf, index, n->attempts);
		ok = cJSON_AddStringToObject(o, "pod", pod) != NULL;
	}
	if (ok && n->started) {
		kvc_wf_time_format(t, sizeof(t), n->started);
		ok = cJSON_AddStringToObject(o, "startedAt", t) != NULL;
	}
	if (ok && n->finished) {
		kvc_wf_time_format(t, sizeof(t), n->finished);
		ok = cJSON_AddStringToObject(o, "finishedAt", t) != NULL;
	}
	if (ok && n->has_exit)
		ok = cJSON_AddNumberToObject(o, "exitCode", n->exit_code) != NULL;
	if (ok && n->message)
		ok = cJSON_AddStringToObject(o, "message", n->message) != NULL;
	if (ok)
		*out = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!*out)
		return kvs_error_set(KVS_ENOMEM, "workflow: out of memory");
	*out_len = strlen(*out);
	return 0;
}

static int corrupt(const char *what)
{
	return kvs_error_set(KVS_ECORRUPT, "workflow: stored node record: %s", what);
}

int kvc_wf_node_decode(kvc_wf_node *out, const void *json, size_t len, uint32_t max_attempts)
{
	const cJSON *v;
	kvc_wf_node n;
	cJSON *o;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	memset(&n, 0, sizeof(n));
	if (len > KVC_WF_NODE_JSON_MAX)
		return corrupt("too long");
	if (!(o = cJSON_ParseWithLength(json, len)) || !cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return corrupt("not a JSON object");
	}
	const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "phase"));
	n.phase = (kvc_wf_phase)5;
	for (unsigned i = 0; p && i < 5; i++)
		if (!strcmp(p, phase_names[i]))
			n.phase = (kvc_wf_phase)i;
	if ((unsigned)n.phase >= 5) {
		rc = corrupt("bad phase");
		goto done;
	}
	v = cJSON_GetObjectItemCaseSensitive(o, "attempts");
	if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 ||
	    v->valuedouble > max_attempts || (n.phase == KVC_WF_RUNNING && v->valuedouble < 1)) {
		rc = corrupt("bad attempts");
		goto done;
	}
	n.attempts = (uint32_t)v->valuedouble;
	if ((v = cJSON_GetObjectItemCaseSensitive(o, "startedAt")) &&
	    (n.started = kvc_wf_time_parse(cJSON_GetStringValue(v))) < 0) {
		rc = corrupt("bad startedAt");
		goto done;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(o, "finishedAt")) &&
	    (n.finished = kvc_wf_time_parse(cJSON_GetStringValue(v))) < 0) {
		rc = corrupt("bad finishedAt");
		goto done;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(o, "exitCode"))) {
		if (!cJSON_IsNumber(v) || fabs(v->valuedouble) > 1e9) {
			rc = corrupt("bad exitCode");
			goto done;
		}
		n.has_exit = 1;
		n.exit_code = (int)v->valuedouble;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(o, "message"))) {
		if (!cJSON_IsString(v)) {
			rc = corrupt("bad message");
			goto done;
		}
		if ((rc = kvc_wf_node_set_message(&n, v->valuestring)) < 0)
			goto done;
	}
	n.dirty = 0;
	*out = n;
done:
	cJSON_Delete(o);
	return rc;
}

/* An attempt ended without success: retry if attempts are left. */
static int attempt_failed(kvc_wf_node *n, uint32_t max_attempts, int64_t now, const char *why)
{
	char msg[700];
	int rc;

	if (n->attempts < max_attempts) {
		snprintf(msg, sizeof(msg), "attempt %u of %u failed: %s", n->attempts, max_attempts, why);
		n->phase = KVC_WF_PENDING;
		n->started = 0;
	} else {
		snprintf(msg, sizeof(msg), "%s (attempt %u of %u)", why, n->attempts, max_attempts);
		n->phase = KVC_WF_FAILED;
		n->finished = now;
	}
	n->dirty = 1;
	if ((rc = kvc_wf_node_set_message(n, msg)) < 0)
		return rc;
	return 1;
}

int kvc_wf_node_observe(kvc_wf_node *n, const kvc_wf_pod_obs *obs, uint32_t max_attempts, int64_t now)
{
	char why[600];

	if (n->phase != KVC_WF_RUNNING || obs->attempt != n->attempts)
		return 0;
	if (obs->started && n->started != obs->started) {
		n->started = obs->started;
		n->dirty = 1;
	}
	switch (obs->phase) {
	case KVC_WF_POD_PENDING:
	case KVC_WF_POD_RUNNING:
		return 0;
	case KVC_WF_POD_SUCCEEDED:
		n->phase = KVC_WF_SUCCEEDED;
		n->finished = obs->finished ? obs->finished : now;
		n->has_exit = 1;
		n->exit_code = obs->has_exit ? obs->exit_code : 0;
		n->dirty = 1;
		/* the task's result: what the container wrote to its termination
		 * message (terminationMessagePath), else nothing */
		if (kvc_wf_node_set_message(n, obs->result[0] ? obs->result : NULL) < 0)
			return KVS_ENOMEM;
		return 1;
	case KVC_WF_POD_FAILED:
		n->has_exit = obs->has_exit;
		n->exit_code = obs->has_exit ? obs->exit_code : 0;
		if (obs->finished)
			now = obs->finished;
		if (obs->has_exit)
			snprintf(why, sizeof(why), "Pod %s failed with exit code %d%s%s", obs->name, obs->exit_code,
			         obs->message[0] ? ": " : "", obs->message);
		else
			snprintf(why, sizeof(why), "Pod %s failed%s%s", obs->name, obs->message[0] ? ": " : "",
			         obs->message);
		return attempt_failed(n, max_attempts, now, why);
	}
	return 0;
}

int kvc_wf_node_lost(kvc_wf_node *n, const char *pod, uint32_t max_attempts, int64_t now)
{
	char why[600];
	if (n->phase != KVC_WF_RUNNING)
		return 0;
	snprintf(why, sizeof(why), "Pod %s was deleted before it finished", pod);
	n->has_exit = 0;
	return attempt_failed(n, max_attempts, now, why);
}
