/*
 * test_workflow_spec.c — suite "workflow_spec": the Workflow spec parser
 * and validator, and task expansion. Every invalid spec is refused with a
 * message naming the field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "kvsplit.h"
#include "controller/workflow/spec.h"
#include "controller/workflow/tasks.h"

#define TEMPLATE "\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}"

static cJSON *doc(const char *spec_members)
{
	char buf[8192];
	snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"wf\",\"namespace\":\"ns\",\"uid\":\"u-1\"},\"spec\":{%s}}",
	         spec_members);
	cJSON *o = cJSON_Parse(buf);
	cr_assert_not_null(o, "bad test JSON: %s", buf);
	return o;
}

static int parse(kvc_wf_spec *sp, const char *members)
{
	cJSON *o = doc(members);
	int rc = kvc_wf_spec_parse(sp, o, "wf");
	cJSON_Delete(o);
	return rc;
}

Test(workflow_spec, defaults_for_a_plain_count)
{
	kvc_wf_spec sp;
	cr_assert_eq(parse(&sp, "\"parallelism\":{\"withCount\":7}," TEMPLATE), 0, "%s", kvs_error_last());
	cr_assert_eq(sp.kind, KVC_WF_WITH_COUNT);
	cr_assert_eq(sp.total, 7);
	cr_assert_eq(sp.max_attempts, 1);
	cr_assert_eq(sp.max_concurrency, 0);
	cr_assert_eq(sp.strategy, KVC_WF_ALL_SUCCESSFUL);
	cr_assert_eq(sp.on_complete, KVC_WF_WAIT_FOR_REMAINING);
	cr_assert_not_null(sp.template);
	kvc_wf_spec_free(&sp);
}

Test(workflow_spec, every_field_is_read)
{
	kvc_wf_spec sp;
	cr_assert_eq(parse(&sp, "\"parallelism\":{\"withKeys\":[\"a\",\"bb\",\"ccc\"]},\"maxConcurrency\":2,"
	                        "\"retries\":{\"maxAttemptsPerTask\":4},"
	                        "\"completion\":{\"strategy\":\"AnySuccessful\",\"onComplete\":\"TerminateRemaining\"},"
	                        TEMPLATE),
	             0, "%s", kvs_error_last());
	cr_assert_eq(sp.kind, KVC_WF_WITH_KEYS);
	cr_assert_eq(sp.total, 3);
	cr_assert_str_eq(sp.keys[2], "ccc");
	cr_assert_eq(sp.key_len_max, 3);
	cr_assert_eq(sp.max_concurrency, 2);
	cr_assert_eq(sp.max_attempts, 4);
	cr_assert_eq(sp.strategy, KVC_WF_ANY_SUCCESSFUL);
	cr_assert_eq(sp.on_complete, KVC_WF_TERMINATE_REMAINING);
	kvc_wf_spec_free(&sp);
}

Test(workflow_spec, matrix_is_every_combination_last_dimension_fastest)
{
	kvc_wf_spec sp;
	kvc_wf_task t;
	static const char *const want[][2] = { { "x", "1" }, { "x", "2" }, { "x", "3" },
	                                       { "y", "1" }, { "y", "2" }, { "y", "3" } };
	cr_assert_eq(parse(&sp, "\"parallelism\":{\"withMatrix\":{\"os\":[\"x\",\"y\"],\"py_ver\":[\"1\",\"2\",\"3\"]}},"
	                        TEMPLATE), 0, "%s", kvs_error_last());
	cr_assert_eq(sp.total, 6);
	cr_assert_eq(sp.ndims, 2);
	cr_assert_str_eq(sp.dims[1].env, "TASK_MATRIX_PY_VER");
	for (uint32_t i = 0; i < 6; i++) {
		cr_assert_eq(kvc_wf_task_at(&t, &sp, i), 0);
		cr_assert_eq(t.ndims, 2);
		cr_assert_str_eq(t.values[0], want[i][0], "task %u", i);
		cr_assert_str_eq(t.values[1], want[i][1], "task %u", i);
	}
	cr_assert_eq(kvc_wf_task_at(&t, &sp, 6), KVS_EINVAL);
	kvc_wf_spec_free(&sp);
}

Test(workflow_spec, substitution_in_args)
{
	kvc_wf_spec sp;
	kvc_wf_task t;
	char *s;
	cr_assert_eq(parse(&sp, "\"parallelism\":{\"withMatrix\":{\"os\":[\"linux\",\"mac\"],\"n\":[\"7\"]}}," TEMPLATE),
	             0);
	cr_assert_eq(kvc_wf_task_at(&t, &sp, 1), 0);
	cr_assert_eq(kvc_wf_subst(&s, "run ${task.index} on ${task.matrix.os}/${task.matrix.n} ${HOME} $", &sp, &t,
	                          "x"), 0);
	cr_assert_str_eq(s, "run 1 on mac/7 ${HOME} $");
	free(s);
	kvc_wf_spec_free(&sp);
}

/* Each invalid spec, and a part of the message it must get. */
static const struct {
	const char *members, *msg;
} bad[] = {
	{ TEMPLATE, "spec.parallelism: required" },
	{ "\"parallelism\":{}," TEMPLATE, "exactly one of withCount, withKeys, withMatrix must be set (0 are)" },
	{ "\"parallelism\":{\"withCount\":2,\"withKeys\":[\"a\"]}," TEMPLATE, "(2 are)" },
	{ "\"parallelism\":{\"withCount\":0}," TEMPLATE, "spec.parallelism.withCount: must be between 1 and 100000 (got 0)" },
	{ "\"parallelism\":{\"withCount\":100001}," TEMPLATE, "between 1 and 100000" },
	{ "\"parallelism\":{\"withCount\":2.5}," TEMPLATE, "withCount: must be an integer" },
	{ "\"parallelism\":{\"withCount\":\"3\"}," TEMPLATE, "withCount: must be an integer" },
	{ "\"parallelism\":{\"withCuont\":3}," TEMPLATE, "spec.parallelism.withCuont: unknown field" },
	{ "\"parallelism\":{\"withKeys\":[]}," TEMPLATE, "withKeys: must have 1 to 100000 items (got 0)" },
	{ "\"parallelism\":{\"withKeys\":[\"a\",1]}," TEMPLATE, "withKeys[1]: must be a string" },
	{ "\"parallelism\":{\"withKeys\":[\"a\",\"\"]}," TEMPLATE, "withKeys[1]: must be 1 to 1024 bytes" },
	{ "\"parallelism\":{\"withKeys\":[\"a\",\"b\",\"a\"]}," TEMPLATE, "withKeys: \"a\" appears more than once" },
	{ "\"parallelism\":{\"withKeys\":\"a\"}," TEMPLATE, "withKeys: must be a list of strings" },
	{ "\"parallelism\":{\"withMatrix\":{}}," TEMPLATE, "withMatrix: must map 1 to 8 dimension names" },
	{ "\"parallelism\":{\"withMatrix\":{\"a-b\":[\"1\"]}}," TEMPLATE, "dimension name \"a-b\" must match" },
	{ "\"parallelism\":{\"withMatrix\":{\"os\":[\"1\"],\"OS\":[\"2\"]}}," TEMPLATE,
	  "dimensions \"os\" and \"OS\" would both be TASK_MATRIX_OS" },
	{ "\"parallelism\":{\"withMatrix\":{\"a\":[\"1\",\"1\"]}}," TEMPLATE, "withMatrix.a: \"1\" appears more than once" },
	{ "\"parallelism\":{\"withMatrix\":{\"a\":[1,2]}}," TEMPLATE, "withMatrix.a[0]: must be a string" },
	{ "\"parallelism\":{\"withMatrix\":{\"a\":[\"1\"],\"b\":[\"1\"],\"c\":[\"1\"],\"d\":[\"1\"],\"e\":[\"1\"],"
	  "\"f\":[\"1\"],\"g\":[\"1\"],\"h\":[\"1\"],\"i\":[\"1\"]}}," TEMPLATE, "at most 8 dimensions (got 9)" },
	{ "\"parallelism\":{\"withCount\":1},\"maxConcurrency\":0," TEMPLATE, "spec.maxConcurrency: must be between 1" },
	{ "\"parallelism\":{\"withCount\":1},\"maxConcurency\":3," TEMPLATE, "spec.maxConcurency: unknown field" },
	{ "\"parallelism\":{\"withCount\":1},\"retries\":{\"maxAttemptsPerTask\":0}," TEMPLATE,
	  "spec.retries.maxAttemptsPerTask: must be between 1 and 100 (got 0)" },
	{ "\"parallelism\":{\"withCount\":1},\"retries\":{\"maxAttemptsPerTask\":101}," TEMPLATE, "between 1 and 100" },
	{ "\"parallelism\":{\"withCount\":1},\"retries\":3," TEMPLATE, "spec.retries: must be an object" },
	{ "\"parallelism\":{\"withCount\":1},\"completion\":{\"strategy\":\"Most\"}," TEMPLATE,
	  "spec.completion.strategy: must be AllSuccessful or AnySuccessful" },
	{ "\"parallelism\":{\"withCount\":1},\"completion\":{\"onComplete\":\"Stop\"}," TEMPLATE,
	  "spec.completion.onComplete: must be WaitForRemaining or TerminateRemaining" },
	{ "\"parallelism\":{\"withCount\":1}", "spec.template: required" },
	{ "\"parallelism\":{\"withCount\":1},\"template\":{\"spec\":{\"containers\":[]}}",
	  "spec.template.spec.containers: required: at least one container" },
	{ "\"parallelism\":{\"withCount\":1},\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\"}]}}",
	  "spec.template.spec.containers[0].image: required" },
	{ "\"parallelism\":{\"withCount\":1},\"template\":{\"spec\":{\"restartPolicy\":\"OnFailure\","
	  "\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}", "restartPolicy: must be Never" },
	{ "\"parallelism\":{\"withCount\":1},\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\","
	  "\"env\":[{\"name\":\"TASK_INDEX\",\"value\":\"9\"}]}]}}",
	  "spec.template.spec.containers[0].env[0]: TASK_INDEX is set by the controller" },
	{ "\"parallelism\":{\"withCount\":1},\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\","
	  "\"args\":[\"ok\",\"${task.key}\"]}]}}",
	  "spec.template.spec.containers[0].args[1]: ${task.key} names nothing in this workflow (it has ${task.index})" },
	{ "\"parallelism\":{\"withMatrix\":{\"os\":[\"l\"]}},\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\","
	  "\"image\":\"i\",\"command\":[\"${task.matrix.arch}\"]}]}}", "${task.matrix.arch} names nothing" },
	{ "\"parallelism\":{\"withCount\":1},\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\","
	  "\"args\":[\"${task.index\"]}]}}", "args[0]: \"${task.\" is not closed" },
	{ "\"parallelism\":{\"withCount\":1},\"template\":{\"spec\":{\"initContainers\":[{\"name\":\"c\",\"image\":\"i\","
	  "\"args\":[\"${task.key}\"]}],\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}",
	  "spec.template.spec.initContainers[0].args[0]" },
	{ "\"parallelism\":{\"withCount\":1},\"template\":{\"metadata\":{\"labels\":{\"kvsplit.io/vshard\":\"3\"}},"
	  "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}",
	  "spec.template.metadata.labels.kvsplit.io/vshard: the controller sets this label" },
	{ "\"parallelism\":{\"withCount\":1},\"template\":{\"metadata\":{\"annotations\":{\"a\":1}},"
	  "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}", "annotations.a: must be a string" },
	{ "\"parallelism\":{\"withCount\":1},\"steps\":[]," TEMPLATE, "spec.steps: unknown field" },
};

Test(workflow_spec, every_invalid_spec_is_refused_with_a_clear_message)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kvc_wf_spec sp;
		int rc = parse(&sp, bad[i].members);
		cr_expect_eq(rc, KVS_EINVAL, "case %zu accepted: %s", i, bad[i].members);
		cr_expect_not_null(strstr(kvs_error_last(), bad[i].msg), "case %zu: message \"%s\" lacks \"%s\"", i,
		                   kvs_error_last(), bad[i].msg);
		cr_expect_null(sp.template, "case %zu: *out not left empty", i);
	}
}

Test(workflow_spec, missing_spec_and_name_too_long_for_pod_names)
{
	kvc_wf_spec sp;
	char name[260];
	cJSON *o = cJSON_Parse("{\"metadata\":{\"name\":\"wf\"}}");
	cr_assert_eq(kvc_wf_spec_parse(&sp, o, "wf"), KVS_EINVAL);
	cr_assert_str_eq(kvs_error_last(), "spec: required");
	cJSON_Delete(o);

	/* 248 + "-" + 5 digits + "-" + 1 digit = 256 > 253 */
	memset(name, 'a', 248);
	name[248] = '\0';
	o = doc("\"parallelism\":{\"withCount\":10000}," TEMPLATE);
	cr_assert_eq(kvc_wf_spec_parse(&sp, o, name), KVS_EINVAL);
	cr_assert_not_null(strstr(kvs_error_last(), "metadata.name: 248 characters is too long"), "%s", kvs_error_last());
	/* the same name fits with a single task: 248 + 4 = 252 */
	cJSON_Delete(o);
	o = doc("\"parallelism\":{\"withCount\":1}," TEMPLATE);
	cr_assert_eq(kvc_wf_spec_parse(&sp, o, name), 0, "%s", kvs_error_last());
	kvc_wf_spec_free(&sp);
	cJSON_Delete(o);
}

Test(workflow_spec, matrix_product_is_capped)
{
	kvc_wf_spec sp;
	/* 400 x 400 = 160,000 > 100,000 */
	size_t cap = 400 * 8 * 2 + 256;
	char *m = malloc(cap), *p = m;
	p += sprintf(p, "\"parallelism\":{\"withMatrix\":{\"a\":[");
	for (int i = 0; i < 400; i++)
		p += sprintf(p, "%s\"%d\"", i ? "," : "", i);
	p += sprintf(p, "],\"b\":[");
	for (int i = 0; i < 400; i++)
		p += sprintf(p, "%s\"%d\"", i ? "," : "", i);
	sprintf(p, "]}}," TEMPLATE);
	cJSON *o = doc(m);
	cr_assert_eq(kvc_wf_spec_parse(&sp, o, "wf"), KVS_EINVAL);
	cr_assert_not_null(strstr(kvs_error_last(), "more than 100000 combinations"), "%s", kvs_error_last());
	cJSON_Delete(o);
	free(m);
}

Test(workflow_spec, ident_from_metadata)
{
	kvc_wf_ident id;
	cJSON *o = cJSON_Parse("{\"metadata\":{\"name\":\"w\",\"namespace\":\"n\",\"uid\":\"u\",\"generation\":3,"
	                       "\"labels\":{\"kvsplit.io/vshard\":\"17\"},\"finalizers\":[\"x\",\"workflows.kvsplit.io/state\"],"
	                       "\"deletionTimestamp\":\"2024-01-01T00:00:00Z\"}}");
	cr_assert_eq(kvc_wf_ident_parse(&id, o), 0);
	cr_assert_str_eq(id.vshard, "17");
	cr_assert_eq(id.generation, 3);
	cr_assert(id.has_finalizer && id.deleting);
	cJSON_Delete(o);
	o = cJSON_Parse("{\"metadata\":{\"name\":\"w\",\"namespace\":\"n\"}}");
	cr_assert_eq(kvc_wf_ident_parse(&id, o), KVS_EINVAL);
	cr_assert_not_null(strstr(kvs_error_last(), "metadata.uid"));
	cJSON_Delete(o);
}
