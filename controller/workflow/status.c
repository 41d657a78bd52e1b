/*
 * status.c — the Workflow's status summary.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/workflow/status.h"

static const char *const wphase_names[] = { "Pending", "Running", "Succeeded", "Failed" };

const char *kvc_wf_wphase_name(kvc_wf_wphase p)
{
	return (unsigned)p < 4 ? wphase_names[p] : "Unknown";
}

int kvc_wf_status_phase(const cJSON *status)
{
	const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(status, "phase"));
	for (int i = 0; p && i < 4; i++)
		if (!strcmp(p, wphase_names[i]))
			return i;
	return -1;
}

int kvc_wf_status_json(cJSON **out, const kvc_wf_summary *s)
{
	const kvc_wf_counts *c = &s->counts;
	char buf[64];
	cJSON *st = cJSON_CreateObject(), *t = NULL, *r = NULL;
	int ok = st != NULL;

	*out = NULL;
	ok = ok && cJSON_AddStringToObject(st, "phase", kvc_wf_wphase_name(s->phase));
	if (ok && s->message)
		ok = cJSON_AddStringToObject(st, "message", s->message) != NULL;
	ok = ok && cJSON_AddNumberToObject(st, "observedGeneration", (double)s->generation);
	snprintf(buf, sizeof(buf), "%u/%u", c->succeeded + c->failed + c->skipped, c->total);
	ok = ok && cJSON_AddStringToObject(st, "progress", buf);
	ok = ok && (t = cJSON_AddObjectToObject(st, "tasks")) && cJSON_AddNumberToObject(t, "total", c->total) &&
	     cJSON_AddNumberToObject(t, "pending", c->pending) && cJSON_AddNumberToObject(t, "running", c->running) &&
	     cJSON_AddNumberToObject(t, "succeeded", c->succeeded) &&
	     cJSON_AddNumberToObject(t, "failed", c->failed) && cJSON_AddNumberToObject(t, "skipped", c->skipped);
	if (ok && s->started) {
		kvc_wf_time_format(buf, sizeof(buf), s->started);
		ok = cJSON_AddStringToObject(st, "startedAt", buf) != NULL;
	}
	if (ok && s->finished) {
		kvc_wf_time_format(buf, sizeof(buf), s->finished);
		ok = cJSON_AddStringToObject(st, "finishedAt", buf) != NULL;
	}
	if (ok && s->ref) {
		snprintf(buf, sizeof(buf), "xxh3sum:%016" PRIx64, s->ref->hash);
		ok = (r = cJSON_AddObjectToObject(st, "stateRef")) && cJSON_AddStringToObject(r, "store", s->ref->store) &&
		     cJSON_AddStringToObject(r, "key", s->ref->key) &&
		     cJSON_AddStringToObject(r, "version", s->ref->version) && cJSON_AddStringToObject(r, "hash", buf);
	}
	if (!ok) {
		cJSON_Delete(st);
		return kvs_error_set(KVS_ENOMEM, "workflow: out of memory");
	}
	*out = st;
	return 0;
}
