/*
 * test_workflow_pod.c — suite "workflow_pod": a task Pod rendered from the
 * template; a Pod's observed state; node records stored and read back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "kvsplit.h"
#include "controller/workflow/node.h"
#include "controller/workflow/pod.h"
#include "controller/workflow/spec.h"

static kvc_wf_spec sp;
static kvc_wf_ident id;

static void load(const char *json)
{
	cJSON *o = cJSON_Parse(json);
	cr_assert_not_null(o);
	cr_assert_eq(kvc_wf_ident_parse(&id, o), 0);
	cr_assert_eq(kvc_wf_spec_parse(&sp, o, id.name), 0, "%s", kvs_error_last());
	cJSON_Delete(o);
}

static void fini(void)
{
	kvc_wf_spec_free(&sp);
}

TestSuite(workflow_pod, .fini = fini);

static const char *env(const cJSON *c, const char *name)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(c, "env"))
		if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "name")), name))
			return cJSON_GetStringValue(cJSON_GetObjectItem(e, "value"));
	return NULL;
}

#define P(o, path) cJSON_GetStringValue(path_get(o, path))
static const cJSON *path_get(const cJSON *o, const char *path)
{
	char buf[256], *save, *tok;
	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, "|", &save); tok && o; tok = strtok_r(NULL, "|", &save))
		o = (*tok >= '0' && *tok <= '9') ? cJSON_GetArrayItem(o, atoi(tok)) : cJSON_GetObjectItem(o, tok);
	return o;
}

Test(workflow_pod, keys_task_pod_has_name_owner_labels_env_and_args)
{
	cJSON *pod;
	load("{\"metadata\":{\"name\":\"wf\",\"namespace\":\"ns\",\"uid\":\"u-1\",\"labels\":{\"kvsplit.io/vshard\":\"42\"}},"
	     "\"spec\":{\"parallelism\":{\"withKeys\":[\"alpha\",\"beta\"]},\"retries\":{\"maxAttemptsPerTask\":3},"
	     "\"template\":{\"metadata\":{\"labels\":{\"app\":\"x\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\","
	     "\"env\":[{\"name\":\"A\",\"value\":\"1\"}],\"args\":[\"--key=${task.key}\",\"--i=${task.index}\",\"plain\"]}]}}}}");
	cr_assert_eq(kvc_wf_pod_render(&pod, &sp, &id, 1, 2), 0, "%s", kvs_error_last());
	cr_assert_str_eq(P(pod, "kind"), "Pod");
	cr_assert_str_eq(P(pod, "metadata|name"), "wf-1-2");
	cr_assert_str_eq(P(pod, "metadata|namespace"), "ns");
	cr_assert_str_eq(P(pod, "metadata|ownerReferences|0|uid"), "u-1");
	cr_assert_str_eq(P(pod, "metadata|ownerReferences|0|kind"), "Workflow");
	cr_assert_str_eq(P(pod, "metadata|ownerReferences|0|apiVersion"), "workflows.kvsplit.io/v1alpha1");
	cr_assert(cJSON_IsTrue(path_get(pod, "metadata|ownerReferences|0|controller")));
	cr_assert_str_eq(P(pod, "metadata|labels|app"), "x");
	cr_assert_str_eq(P(pod, "metadata|labels|kvsplit.io/vshard"), "42");
	cr_assert_str_eq(P(pod, "metadata|labels|workflows.kvsplit.io/workflow-uid"), "u-1");
	cr_assert_str_eq(P(pod, "metadata|labels|workflows.kvsplit.io/task-index"), "1");
	cr_assert_str_eq(P(pod, "metadata|labels|workflows.kvsplit.io/attempt"), "2");
	cr_assert_str_eq(P(pod, "spec|restartPolicy"), "Never");
	const cJSON *c = path_get(pod, "spec|containers|0");
	cr_assert_str_eq(env(c, "A"), "1");
	cr_assert_str_eq(env(c, "TASK_INDEX"), "1");
	cr_assert_str_eq(env(c, "TASK_KEY"), "beta");
	cr_assert_str_eq(P(c, "args|0"), "--key=beta");
	cr_assert_str_eq(P(c, "args|1"), "--i=1");
	cr_assert_str_eq(P(c, "args|2"), "plain");
	/* the template itself is untouched: the next task gets its own values */
	cJSON *pod0;
	cr_assert_eq(kvc_wf_pod_render(&pod0, &sp, &id, 0, 1), 0);
	cr_assert_str_eq(P(pod0, "spec|containers|0|args|0"), "--key=alpha");
	cr_assert_str_eq(P(pod0, "metadata|name"), "wf-0-1");
	/* deterministic: the same task and attempt render the same Pod */
	cJSON *again;
	cr_assert_eq(kvc_wf_pod_render(&again, &sp, &id, 1, 2), 0);
	cr_assert(cJSON_Compare(pod, again, 1));
	cJSON_Delete(again);
	cr_assert_eq(kvc_wf_pod_render(&again, &sp, &id, 1, 4), KVS_EINVAL, "attempt beyond maxAttemptsPerTask");
	cJSON_Delete(pod);
	cJSON_Delete(pod0);
}

Test(workflow_pod, matrix_env_and_substitution)
{
	cJSON *pod;
	load("{\"metadata\":{\"name\":\"m\",\"namespace\":\"ns\",\"uid\":\"u\"},\"spec\":{\"parallelism\":{\"withMatrix\":"
	     "{\"os\":[\"linux\",\"mac\"],\"pyVer\":[\"3.11\",\"3.12\"]}},\"template\":{\"spec\":{\"containers\":[{\"name\":"
	     "\"c\",\"image\":\"i\",\"command\":[\"test\",\"${task.matrix.os}-${task.matrix.pyVer}\"]}]}}}}");
	cr_assert_eq(kvc_wf_pod_render(&pod, &sp, &id, 3, 1), 0);
	const cJSON *c = path_get(pod, "spec|containers|0");
	cr_assert_str_eq(env(c, "TASK_MATRIX_OS"), "mac");
	cr_assert_str_eq(env(c, "TASK_MATRIX_PYVER"), "3.12");
	cr_assert_str_eq(env(c, "TASK_INDEX"), "3");
	cr_assert_null(env(c, "TASK_KEY"));
	cr_assert_str_eq(P(c, "command|1"), "mac-3.12");
	cr_assert_null(path_get(pod, "metadata|labels|kvsplit.io/vshard"), "no shard label on the Workflow: none on the Pod");
	cJSON_Delete(pod);
}

Test(workflow_pod, observe_a_failed_pod)
{
	kvc_wf_pod_obs o;
	cJSON *pod = cJSON_Parse(
	    "{\"metadata\":{\"name\":\"wf-3-1\",\"labels\":{\"workflows.kvsplit.io/workflow-uid\":\"u\","
	    "\"workflows.kvsplit.io/task-index\":\"3\",\"workflows.kvsplit.io/attempt\":\"1\"}},"
	    "\"status\":{\"phase\":\"Failed\",\"startTime\":\"2024-05-01T10:00:00Z\",\"containerStatuses\":["
	    "{\"state\":{\"terminated\":{\"exitCode\":0,\"finishedAt\":\"2024-05-01T10:00:05Z\"}}},"
	    "{\"state\":{\"terminated\":{\"exitCode\":3,\"reason\":\"Error\",\"message\":\"boom\","
	    "\"finishedAt\":\"2024-05-01T10:00:09Z\"}}}]}}");
	cr_assert_eq(kvc_wf_pod_observe(&o, pod), 0);
	cr_assert_eq(o.phase, KVC_WF_POD_FAILED);
	cr_assert_eq(o.index, 3);
	cr_assert_eq(o.attempt, 1);
	cr_assert(o.has_exit);
	cr_assert_eq(o.exit_code, 3);
	cr_assert_str_eq(o.message, "Error: boom");
	cr_assert_eq(o.started, 1714557600);
	cr_assert_eq(o.finished, 1714557609);
	cJSON_Delete(pod);
}

Test(workflow_pod, pods_without_task_labels_are_not_task_pods)
{
	static const char *const bad[] = {
		"{\"metadata\":{\"name\":\"x\"}}",
		"{\"metadata\":{\"name\":\"x\",\"labels\":{\"workflows.kvsplit.io/workflow-uid\":\"u\","
		"\"workflows.kvsplit.io/task-index\":\"-1\",\"workflows.kvsplit.io/attempt\":\"1\"}}}",
		"{\"metadata\":{\"name\":\"x\",\"labels\":{\"workflows.kvsplit.io/workflow-uid\":\"u\","
		"\"workflows.kvsplit.io/task-index\":\"100000\",\"workflows.kvsplit.io/attempt\":\"1\"}}}",
		"{\"metadata\":{\"name\":\"x\",\"labels\":{\"workflows.kvsplit.io/workflow-uid\":\"u\","
		"\"workflows.kvsplit.io/task-index\":\"1\",\"workflows.kvsplit.io/attempt\":\"0\"}}}",
		"{\"metadata\":{\"name\":\"x\",\"labels\":{\"workflows.kvsplit.io/workflow-uid\":\"u\","
		"\"workflows.kvsplit.io/task-index\":\"99999999999\",\"workflows.kvsplit.io/attempt\":\"1\"}}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kvc_wf_pod_obs o;
		cJSON *pod = cJSON_Parse(bad[i]);
		cr_expect_eq(kvc_wf_pod_observe(&o, pod), KVS_EINVAL, "case %zu", i);
		cJSON_Delete(pod);
	}
}

Test(workflow_pod, node_records_round_trip)
{
	kvc_wf_node n = { 0 }, back;
	char *json;
	size_t len;
	n.phase = KVC_WF_PENDING;
	n.attempts = 2;
	n.has_exit = 1;
	n.exit_code = 137;
	n.started = 0;
	n.finished = 0;
	cr_assert_eq(kvc_wf_node_set_message(&n, "attempt 2 of 3 failed"), 0);
	cr_assert_eq(kvc_wf_node_encode(&json, &len, &n, "wf", 12), 0);
	cr_assert_str_eq(json, "{\"phase\":\"Pending\",\"attempts\":2,\"pod\":\"wf-12-2\",\"exitCode\":137,"
	                       "\"message\":\"attempt 2 of 3 failed\"}");
	cr_assert_eq(kvc_wf_node_decode(&back, json, len, 3), 0);
	cr_assert_eq(back.phase, KVC_WF_PENDING);
	cr_assert_eq(back.attempts, 2);
	cr_assert_eq(back.exit_code, 137);
	cr_assert_str_eq(back.message, "attempt 2 of 3 failed");
	free(json);
	free(back.message);
	free(n.message);
	char f[6];
	kvc_wf_field(f, 42);
	cr_assert_str_eq(f, "00042");
	cr_assert_eq(kvc_wf_field_index("00042", 5, 43), 42);
	cr_assert_eq(kvc_wf_field_index("00042", 5, 42), -1);
	cr_assert_eq(kvc_wf_field_index("0042", 4, 100), -1);
}

Test(workflow_pod, hostile_node_records_are_corrupt)
{
	static const char *const bad[] = {
		"", "[]", "{\"phase\":\"Dancing\",\"attempts\":1}", "{\"phase\":\"Running\",\"attempts\":0}",
		"{\"phase\":\"Running\",\"attempts\":4}", "{\"phase\":\"Running\",\"attempts\":1.5}",
		"{\"phase\":\"Failed\",\"attempts\":1,\"exitCode\":\"x\"}",
		"{\"phase\":\"Failed\",\"attempts\":1,\"startedAt\":\"yesterday\"}",
		"{\"phase\":\"Failed\",\"attempts\":1,\"message\":7}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kvc_wf_node n;
		cr_expect_eq(kvc_wf_node_decode(&n, bad[i], strlen(bad[i]), 3), KVS_ECORRUPT, "case %zu: %s", i, bad[i]);
	}
	char big[KVC_WF_NODE_JSON_MAX + 10];
	memset(big, ' ', sizeof(big));
	kvc_wf_node n;
	cr_expect_eq(kvc_wf_node_decode(&n, big, sizeof(big), 3), KVS_ECORRUPT);
}
