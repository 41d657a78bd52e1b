/*
 * test_workflow_reconcile.c — suite "workflow_reconcile": the level-based
 * reconcile against fakes of the API server (Pods, the Workflow's status and
 * finalizers), of the kvsplit map holding the node status, and of a kubelet.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/workflow/reconcile.h"

#define MAXPODS 4096

struct fake {
	cJSON *wf;                 /* the stored Workflow */
	int rv;                    /* its resourceVersion */
	cJSON *pods[MAXPODS];
	int npods;
	uint64_t pods_created;     /* successful creates */
	int creates_exist;         /* creates answered AlreadyExists */
	int deletes;
	char **fields;             /* the map: fields[i] = value of "%05u" i, or NULL */
	size_t *flen;
	uint32_t nfields;
	int map_exists;
	uint64_t map_ver;
	int loads, commits, last_commit_n, status_writes;
	int fail_commit;           /* next commits fail with KVS_EIO (after the Pods were created) */
	int lag;                   /* list_pods shows nothing (a cold informer cache) */
	int marked;                /* Pods labelled completed */
	int fail_mark;             /* mark_completed fails (nothing labelled) */
	int64_t now;
};

static struct fake F;
static kvc_wf_reconciler *R;

static cJSON *find_pod(const char *name, int *at)
{
	for (int i = 0; i < F.npods; i++)
		if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(F.pods[i], "metadata"), "name")),
		            name)) {
			if (at)
				*at = i;
			return F.pods[i];
		}
	return NULL;
}

static int f_list_pods(void *ctx, const char *ns, const char *uid, cJSON **out)
{
	*out = cJSON_CreateArray();
	for (int i = 0; i < F.npods && !F.lag; i++) {
		const char *u = cJSON_GetStringValue(cJSON_GetObjectItem(
		    cJSON_GetObjectItem(cJSON_GetObjectItem(F.pods[i], "metadata"), "labels"), KVC_WF_LABEL_UID));
		const char *done = cJSON_GetStringValue(cJSON_GetObjectItem(
		    cJSON_GetObjectItem(cJSON_GetObjectItem(F.pods[i], "metadata"), "labels"), KVC_WF_LABEL_COMPLETED));
		/* the informer's selector: the workflow's, not yet completed */
		if (u && !strcmp(u, uid) && !done)
			cJSON_AddItemToArray(*out, cJSON_Duplicate(F.pods[i], 1));
	}
	return 0;
}

static int f_get_pod(void *ctx, const char *ns, const char *name, cJSON **out)
{
	cJSON *p = find_pod(name, NULL);
	if (!p)
		return kvs_error_set(KVS_ENOTFOUND, "pods \"%s\" not found", name);
	*out = cJSON_Duplicate(p, 1);
	return 0;
}

static int f_create_pod(void *ctx, const char *ns, const cJSON *pod)
{
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "metadata"), "name"));
	if (find_pod(name, NULL)) {
		F.creates_exist++;
		return kvs_error_set(KVS_EEXISTS, "pods \"%s\" already exists", name);
	}
	cr_assert_lt(F.npods, MAXPODS);
	F.pods[F.npods] = cJSON_Duplicate(pod, 1);
	cJSON_AddObjectToObject(F.pods[F.npods], "status");
	cJSON_AddStringToObject(cJSON_GetObjectItem(F.pods[F.npods], "status"), "phase", "Pending");
	F.npods++;
	F.pods_created++;
	return 0;
}

static int f_delete_pod(void *ctx, const char *ns, const char *name)
{
	int at;
	if (!find_pod(name, &at))
		return kvs_error_set(KVS_ENOTFOUND, "pods \"%s\" not found", name);
	cJSON_Delete(F.pods[at]);
	F.pods[at] = F.pods[--F.npods];
	F.deletes++;
	return 0;
}

static void ver_str(char *ver, size_t cap)
{
	snprintf(ver, cap, "%" PRIu64, F.map_ver);
}

static int f_state_version(void *ctx, const char *ns, const char *key, char *ver, size_t cap)
{
	if (!F.map_exists)
		return KVS_ENOTFOUND;
	ver_str(ver, cap);
	return 0;
}

static int f_load_state(void *ctx, const char *ns, const char *key, kvc_wf_entry_cb each, void *arg, char *ver,
                        size_t cap)
{
	char f[6];
	int rc;
	F.loads++;
	if (!F.map_exists)
		return KVS_ENOTFOUND;
	for (uint32_t i = 0; i < F.nfields; i++) {
		if (!F.fields[i])
			continue;
		kvc_wf_field(f, i);
		if ((rc = each(arg, f, 5, F.fields[i], F.flen[i])) < 0)
			return rc;
	}
	ver_str(ver, cap);
	return 0;
}

static int f_commit_state(void *ctx, const char *ns, const char *key, const kvc_wf_entry *e, size_t n,
                          const char *expect, char *ver, size_t cap)
{
	char cur[32];
	ver_str(cur, sizeof(cur));
	if (F.fail_commit) {
		F.fail_commit--;
		return kvs_error_set(KVS_EIO, "injected");
	}
	if (!*expect && F.map_exists)
		return kvs_error_set(KVS_EEXISTS, "exists");
	if (*expect && (!F.map_exists || strcmp(expect, cur)))
		return kvs_error_set(KVS_ECONFLICT, "version moved");
	for (size_t j = 0; j < n; j++) {
		cr_assert_eq(e[j].field_len, 5);
		uint32_t i = (uint32_t)atoi(e[j].field);
		cr_assert_lt(i, F.nfields);
		free(F.fields[i]);
		F.fields[i] = strndup(e[j].value, e[j].value_len);
		F.flen[i] = e[j].value_len;
	}
	F.map_exists = 1;
	F.map_ver++;
	F.commits++;
	F.last_commit_n = (int)n;
	ver_str(ver, cap);
	return 0;
}

static int f_delete_state(void *ctx, const char *ns, const char *key)
{
	if (!F.map_exists)
		return KVS_ENOTFOUND;
	F.map_exists = 0;
	for (uint32_t i = 0; i < F.nfields; i++)
		free(F.fields[i]), F.fields[i] = NULL;
	return 0;
}

static int rv_of(const cJSON *wf)
{
	return atoi(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(wf, "metadata"), "resourceVersion")));
}

static void bump(void)
{
	char b[16];
	snprintf(b, sizeof(b), "%d", ++F.rv);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(F.wf, "metadata"), "resourceVersion", cJSON_CreateString(b));
}

static int f_update_status(void *ctx, const cJSON *wf, const cJSON *status)
{
	if (rv_of(wf) != F.rv)
		return kvs_error_set(KVS_ECONFLICT, "the object has been modified");
	cJSON_DeleteItemFromObject(F.wf, "status");
	cJSON_AddItemToObject(F.wf, "status", cJSON_Duplicate(status, 1));
	F.status_writes++;
	bump();
	return 0;
}

static int f_set_finalizer(void *ctx, const cJSON *wf, int present)
{
	cJSON *md = cJSON_GetObjectItem(F.wf, "metadata");
	if (rv_of(wf) != F.rv)
		return kvs_error_set(KVS_ECONFLICT, "the object has been modified");
	cJSON_DeleteItemFromObject(md, "finalizers");
	cJSON *a = cJSON_AddArrayToObject(md, "finalizers");
	if (present)
		cJSON_AddItemToArray(a, cJSON_CreateString(KVC_WF_FINALIZER));
	bump();
	return 0;
}

static int64_t f_now(void *ctx)
{
	return F.now;
}

static int label_num(const cJSON *pod, const char *k)
{
	return atoi(cJSON_GetStringValue(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "metadata"), "labels"), k)));
}

/* Label Pods completed; each must have finished and its result be in the map. */
static int f_mark_completed(void *ctx, const char *ns, const char *const *names, size_t n)
{
	if (F.fail_mark)
		return kvs_error_set(KVS_EIO, "injected");
	for (size_t i = 0; i < n; i++) {
		cJSON *p = find_pod(names[i], NULL), *node;
		cr_assert_not_null(p, "marked a Pod that does not exist: %s", names[i]);
		const char *ph = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "status"), "phase"));
		cr_assert(!strcmp(ph, "Succeeded") || !strcmp(ph, "Failed"), "%s marked while %s", names[i], ph);
		int idx = label_num(p, KVC_WF_LABEL_INDEX), att = label_num(p, KVC_WF_LABEL_ATTEMPT);
		cr_assert_not_null(F.fields[idx], "%s marked before its node was committed", names[i]);
		node = cJSON_Parse(F.fields[idx]);
		int attempts = cJSON_GetObjectItem(node, "attempts")->valueint;
		const char *nph = cJSON_GetStringValue(cJSON_GetObjectItem(node, "phase"));
		cr_assert(attempts > att || (attempts == att && strcmp(nph, "Running")),
		          "%s marked, but the map has attempt %d %s", names[i], attempts, nph);
		cJSON_Delete(node);
		cJSON *lb = cJSON_GetObjectItem(cJSON_GetObjectItem(p, "metadata"), "labels");
		cr_assert_null(cJSON_GetObjectItem(lb, KVC_WF_LABEL_COMPLETED), "%s marked twice", names[i]);
		cJSON_AddStringToObject(lb, KVC_WF_LABEL_COMPLETED, "true");
		F.marked++;
	}
	return 0;
}

static const kvc_wf_ops ops = { KVC_WF_OPS_VERSION, f_list_pods, f_get_pod, f_create_pod, f_delete_pod,
	                        f_state_version, f_load_state, f_commit_state, f_delete_state, f_update_status,
	                        f_set_finalizer, f_now, f_mark_completed };

static void setup(void)
{
	memset(&F, 0, sizeof(F));
	F.now = 1714557600;
	F.nfields = 100000;
	F.fields = calloc(F.nfields, sizeof(*F.fields));
	F.flen = calloc(F.nfields, sizeof(*F.flen));
	kvc_wf_reconciler_opts o = KVC_WF_RECONCILER_OPTS_INIT;
	o.max_creates = 50;
	cr_assert_eq(kvc_wf_reconciler_new(&R, &ops, NULL, &o), 0);
}

static void teardown(void)
{
	kvc_wf_reconciler_free(R);
	for (int i = 0; i < F.npods; i++)
		cJSON_Delete(F.pods[i]);
	for (uint32_t i = 0; i < F.nfields; i++)
		free(F.fields[i]);
	free(F.fields);
	free(F.flen);
	cJSON_Delete(F.wf);
}

TestSuite(workflow_reconcile, .init = setup, .fini = teardown);

static void workflow(const char *spec)
{
	char buf[16384];
	snprintf(buf, sizeof(buf),
	         "{\"apiVersion\":\"workflows.kvsplit.io/v1alpha1\",\"kind\":\"Workflow\",\"metadata\":{\"name\":\"wf\","
	         "\"namespace\":\"ns\",\"uid\":\"uid-1\",\"generation\":1,\"resourceVersion\":\"1\","
	         "\"labels\":{\"kvsplit.io/vshard\":\"7\"}},\"spec\":{%s,\"template\":{\"spec\":{\"containers\":"
	         "[{\"name\":\"c\",\"image\":\"busybox\",\"args\":[\"${task.index}\"]}]}}}}", spec);
	F.wf = cJSON_Parse(buf);
	cr_assert_not_null(F.wf, "%s", buf);
	F.rv = 1;
}

/* One reconcile of what an informer would hold (a copy). */
static int reconcile(kvc_wf_result *res)
{
	cJSON *snap = cJSON_Duplicate(F.wf, 1);
	int rc = kvc_wf_reconcile(R, snap, res);
	cJSON_Delete(snap);
	return rc;
}

static kvc_wf_result run(void)
{
	kvc_wf_result res;
	int rc = reconcile(&res);
	cr_assert_eq(rc, 0, "reconcile: %s", kvs_error_last());
	return res;
}

/* The kubelet: the Pod ends with this exit code. */
static void finish(const char *name, int code)
{
	cJSON *p = find_pod(name, NULL), *st, *cs, *term;
	cr_assert_not_null(p, "no Pod %s", name);
	cJSON_DeleteItemFromObject(p, "status");
	st = cJSON_AddObjectToObject(p, "status");
	cJSON_AddStringToObject(st, "phase", code == 0 ? "Succeeded" : "Failed");
	cJSON_AddStringToObject(st, "startTime", "2024-05-01T10:00:01Z");
	cs = cJSON_CreateObject();
	cJSON_AddItemToArray(cJSON_AddArrayToObject(st, "containerStatuses"), cs);
	term = cJSON_AddObjectToObject(cJSON_AddObjectToObject(cs, "state"), "terminated");
	cJSON_AddNumberToObject(term, "exitCode", code);
	cJSON_AddStringToObject(term, "reason", code == 0 ? "Completed" : "Error");
	cJSON_AddStringToObject(term, "finishedAt", "2024-05-01T10:00:09Z");
}

static const char *status_s(const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(F.wf, "status"), k));
}

static int tasks_n(const char *k)
{
	return cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(F.wf, "status"), "tasks"), k)->valueint;
}

static const char *node_field(uint32_t i, const char *k, char *buf, size_t cap)
{
	cJSON *o;
	const cJSON *v;
	buf[0] = '\0';
	cr_assert_not_null(F.fields[i], "no node %u", i);
	o = cJSON_Parse(F.fields[i]);
	v = cJSON_GetObjectItem(o, k);
	if (cJSON_IsString(v))
		snprintf(buf, cap, "%s", v->valuestring);
	else if (cJSON_IsNumber(v))
		snprintf(buf, cap, "%d", v->valueint);
	cJSON_Delete(o);
	return buf;
}

#define NODE(i, k) node_field((i), (k), nb, sizeof(nb))

static int running_pods(void)
{
	int n = 0;
	for (int i = 0; i < F.npods; i++) {
		const char *ph = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(F.pods[i], "status"), "phase"));
		n += !strcmp(ph, "Pending") || !strcmp(ph, "Running");
	}
	return n;
}

Test(workflow_reconcile, count_runs_every_task_once_within_max_concurrency)
{
	char nb[64];
	workflow("\"parallelism\":{\"withCount\":5},\"maxConcurrency\":2");
	kvc_wf_result res = run();
	cr_assert(res.requeue, "the finalizer comes first");
	cr_assert_eq(F.npods, 0);
	res = run();
	cr_assert_eq(res.created, 2);
	cr_assert_eq(F.npods, 2);
	cr_assert_str_eq(status_s("phase"), "Running");
	cr_assert_str_eq(status_s("progress"), "0/5");
	cr_assert_eq(tasks_n("running"), 2);
	cr_assert_eq(tasks_n("pending"), 3);
	/* nothing changed: nothing written */
	int writes = F.status_writes, commits = F.commits;
	res = run();
	cr_assert_eq(res.created, 0);
	cr_assert_eq(F.status_writes, writes);
	cr_assert_eq(F.commits, commits);
	for (int round = 0; round < 10 && strcmp(status_s("phase"), "Succeeded"); round++) {
		for (int i = 0; i < F.npods; i++) {
			cJSON *md = cJSON_GetObjectItem(F.pods[i], "metadata");
			finish(cJSON_GetStringValue(cJSON_GetObjectItem(md, "name")), 0);
		}
		run();
		cr_assert_leq(running_pods(), 2, "maxConcurrency 2");
	}
	cr_assert_str_eq(status_s("phase"), "Succeeded");
	cr_assert_str_eq(status_s("progress"), "5/5");
	cr_assert_eq(tasks_n("succeeded"), 5);
	cr_assert_eq(F.pods_created, 5, "one Pod per task attempt");
	cr_assert_eq(F.creates_exist, 0);
	for (uint32_t i = 0; i < 5; i++) {
		cr_assert_str_eq(NODE(i, "phase"), "Succeeded");
		cr_assert_str_eq(NODE(i, "exitCode"), "0");
		cr_assert_str_eq(NODE(i, "finishedAt"), "2024-05-01T10:00:09Z");
	}
	cr_assert_str_eq(NODE(3, "pod"), "wf-3-1");
	cr_assert_not_null(status_s("finishedAt"));
	/* a finished workflow is not read again */
	int loads = F.loads;
	res = run();
	cr_assert_eq(F.loads, loads);
	cr_assert_eq(res.phase, KVC_WF_W_SUCCEEDED);
}

Test(workflow_reconcile, retries_use_a_new_pod_per_attempt)
{
	char nb[128];
	workflow("\"parallelism\":{\"withCount\":1},\"retries\":{\"maxAttemptsPerTask\":3}");
	run();
	run();
	finish("wf-0-1", 2);
	run();
	cr_assert_str_eq(NODE(0, "attempts"), "2");
	cr_assert_str_eq(NODE(0, "phase"), "Running");
	cr_assert_not_null(find_pod("wf-0-2", NULL));
	finish("wf-0-2", 1);
	run();
	cr_assert_not_null(find_pod("wf-0-3", NULL));
	finish("wf-0-3", 0);
	run();
	cr_assert_str_eq(status_s("phase"), "Succeeded");
	cr_assert_str_eq(NODE(0, "attempts"), "3");
	cr_assert_str_eq(NODE(0, "pod"), "wf-0-3");
	cr_assert_eq(F.pods_created, 3);
}

Test(workflow_reconcile, exhausted_retries_fail_the_workflow_and_wait_for_the_rest)
{
	char nb[300];
	workflow("\"parallelism\":{\"withCount\":4},\"maxConcurrency\":2,\"retries\":{\"maxAttemptsPerTask\":2}");
	run();
	run();
	finish("wf-0-1", 5);
	run();
	finish("wf-0-2", 5);
	run();
	cr_assert_str_eq(NODE(0, "phase"), "Failed");
	cr_assert_not_null(strstr(NODE(0, "message"), "exit code 5"), "%s", nb);
	/* WaitForRemaining: task 1 still runs, tasks 2 and 3 never start */
	cr_assert_str_eq(status_s("phase"), "Running");
	cr_assert_str_eq(NODE(2, "phase"), "Skipped");
	cr_assert_str_eq(NODE(3, "phase"), "Skipped");
	cr_assert_not_null(find_pod("wf-1-1", NULL));
	cr_assert_null(find_pod("wf-2-1", NULL));
	finish("wf-1-1", 0);
	run();
	cr_assert_str_eq(status_s("phase"), "Failed");
	cr_assert_not_null(strstr(status_s("message"), "task 0 failed"), "%s", status_s("message"));
	cr_assert_eq(tasks_n("failed"), 1);
	cr_assert_eq(tasks_n("succeeded"), 1);
	cr_assert_eq(tasks_n("skipped"), 2);
	cr_assert_str_eq(status_s("progress"), "4/4");
}

Test(workflow_reconcile, terminate_remaining_deletes_running_pods)
{
	char nb[300];
	workflow("\"parallelism\":{\"withCount\":3},\"completion\":{\"onComplete\":\"TerminateRemaining\"}");
	run();
	run();
	cr_assert_eq(F.npods, 3);
	finish("wf-1-1", 1);
	run();
	cr_assert_str_eq(status_s("phase"), "Failed");
	cr_assert_null(find_pod("wf-0-1", NULL));
	cr_assert_null(find_pod("wf-2-1", NULL));
	cr_assert_eq(F.deletes, 2);
	cr_assert_str_eq(NODE(0, "phase"), "Skipped");
	cr_assert_not_null(strstr(NODE(2, "message"), "TerminateRemaining"));
	cr_assert_eq(running_pods(), 0);
}

Test(workflow_reconcile, any_successful_succeeds_on_the_first_success)
{
	char nb[300];
	workflow("\"parallelism\":{\"withKeys\":[\"a\",\"b\",\"c\"]},\"completion\":{\"strategy\":\"AnySuccessful\","
	         "\"onComplete\":\"TerminateRemaining\"}");
	run();
	run();
	finish("wf-0-1", 1);
	run();
	cr_assert_str_eq(status_s("phase"), "Running", "one failure decides nothing under AnySuccessful");
	finish("wf-2-1", 0);
	run();
	cr_assert_str_eq(status_s("phase"), "Succeeded");
	cr_assert_str_eq(NODE(1, "phase"), "Skipped");
	cr_assert_null(find_pod("wf-1-1", NULL));
}

Test(workflow_reconcile, any_successful_fails_when_every_task_failed)
{
	workflow("\"parallelism\":{\"withCount\":2},\"completion\":{\"strategy\":\"AnySuccessful\"}");
	run();
	run();
	finish("wf-0-1", 1);
	finish("wf-1-1", 1);
	run();
	cr_assert_str_eq(status_s("phase"), "Failed");
	cr_assert_str_eq(status_s("message"), "no task succeeded (AnySuccessful)");
}

Test(workflow_reconcile, a_lost_commit_after_creating_pods_never_makes_a_second_pod)
{
	char nb[64];
	workflow("\"parallelism\":{\"withCount\":3}");
	run();
	F.fail_commit = 1;
	kvc_wf_result res;
	cr_assert_eq(reconcile(&res), KVS_EIO);
	cr_assert_eq(F.npods, 3, "the Pods were created");
	cr_assert_eq(F.map_exists, 0, "but their nodes not committed");
	/* the restarted owner's cache is cold and its informer has not caught up */
	kvc_wf_reconciler_forget(R, "uid-1");
	F.lag = 1;
	res = run();
	cr_assert_eq(res.created, 0);
	cr_assert_eq(res.adopted, 3);
	cr_assert_eq(F.creates_exist, 3, "each repeat met AlreadyExists");
	cr_assert_eq(F.pods_created, 3);
	cr_assert_str_eq(NODE(1, "phase"), "Running");
	cr_assert_str_eq(NODE(1, "attempts"), "1");
	F.lag = 0;
	finish("wf-1-1", 0);
	run();
	cr_assert_str_eq(NODE(1, "phase"), "Succeeded");
	cr_assert_eq(F.pods_created, 3);
}

Test(workflow_reconcile, listed_pods_are_adopted_without_a_create)
{
	workflow("\"parallelism\":{\"withCount\":2}");
	run();
	F.fail_commit = 1;
	kvc_wf_result res;
	cr_assert_eq(reconcile(&res), KVS_EIO);
	res = run();
	cr_assert_eq(res.adopted, 2);
	cr_assert_eq(F.creates_exist, 0, "the listed Pods were taken as the attempts");
}

Test(workflow_reconcile, a_pod_deleted_before_it_finished_is_a_failed_attempt)
{
	char nb[300];
	workflow("\"parallelism\":{\"withCount\":1},\"retries\":{\"maxAttemptsPerTask\":2}");
	run();
	run();
	cr_assert_eq(f_delete_pod(NULL, "ns", "wf-0-1"), 0);
	run();
	cr_assert_not_null(find_pod("wf-0-2", NULL));
	cr_assert_not_null(strstr(NODE(0, "message"), "wf-0-1 was deleted before it finished"), "%s", nb);
}

Test(workflow_reconcile, one_finished_task_commits_only_its_node)
{
	workflow("\"parallelism\":{\"withCount\":1000},\"maxConcurrency\":10");
	run();
	run();
	cr_assert_eq(F.last_commit_n, 10);
	finish("wf-4-1", 0);
	kvc_wf_result res = run();
	/* task 4 finished, task 10 started: two fields, no more */
	cr_assert_eq(res.committed, 2);
	cr_assert_eq(F.last_commit_n, 2);
	cr_assert_eq(res.loaded, 0, "the cache was current: nothing read back");
	cr_assert_not_null(find_pod("wf-10-1", NULL));
}

Test(workflow_reconcile, finished_pods_are_labelled_completed_once_their_results_are_committed)
{
	char nb[64];
	workflow("\"parallelism\":{\"withCount\":3},\"retries\":{\"maxAttemptsPerTask\":2}");
	run();
	run();
	cr_assert_eq(F.pods_created, 3);
	cr_assert_eq(F.marked, 0, "running Pods are not marked");
	finish("wf-0-1", 1); /* retried */
	finish("wf-1-1", 0);
	F.fail_commit = 1;
	kvc_wf_result res;
	cr_assert_lt(reconcile(&res), 0);
	cr_assert_eq(F.marked, 0, "nothing is marked while its result is not stored");
	res = run();
	cr_assert_eq(res.marked, 2);
	cr_assert_eq(F.marked, 2);
	cr_assert_str_eq(NODE(0, "attempts"), "2");
	/* marked Pods leave the list; nothing is lost or marked again */
	res = run();
	cr_assert_eq(res.marked, 0);
	cr_assert_eq(res.committed, 0);
	cr_assert_str_eq(NODE(1, "phase"), "Succeeded");
	/* a failed label is retried by a later reconcile */
	finish("wf-0-2", 0);
	F.fail_mark = 1;
	res = run();
	cr_assert_eq(res.marked, 0);
	F.fail_mark = 0;
	finish("wf-2-1", 0);
	res = run();
	cr_assert_eq(res.marked, 2, "wf-0-2 again, and wf-2-1");
	cr_assert_str_eq(status_s("phase"), "Succeeded");
	cr_assert_eq(F.marked, 4, "every Pod, once");
	cr_assert_eq(F.pods_created, 4);
}

Test(workflow_reconcile, a_succeeded_tasks_termination_message_is_its_nodes_message)
{
	char nb[300];
	workflow("\"parallelism\":{\"withCount\":2}");
	run();
	run();
	finish("wf-0-1", 0);
	finish("wf-1-1", 0);
	cJSON *term = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(
	    cJSON_GetObjectItem(find_pod("wf-0-1", NULL), "status"), "containerStatuses"), 0), "state"), "terminated");
	cJSON_AddStringToObject(term, "message", "rendered 24 frames");
	run();
	cr_assert_str_eq(NODE(0, "phase"), "Succeeded");
	cr_assert_str_eq(NODE(0, "message"), "rendered 24 frames");
	cr_assert_str_eq(NODE(1, "message"), "", "no termination message, no node message");
	cr_assert_str_eq(status_s("phase"), "Succeeded");
}

Test(workflow_reconcile, state_ref_names_the_map_and_its_hash_verifies)
{
	workflow("\"parallelism\":{\"withCount\":20}");
	run();
	run();
	finish("wf-3-1", 0);
	finish("wf-9-1", 1);
	run();
	const cJSON *ref = cJSON_GetObjectItem(cJSON_GetObjectItem(F.wf, "status"), "stateRef");
	cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(ref, "store")), "workflows");
	cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(ref, "key")), "workflow/wf/uid-1");
	char ver[32];
	ver_str(ver, sizeof(ver));
	cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(ref, "version")), ver);
	uint64_t sum = 0;
	char f[6], want[40];
	for (uint32_t i = 0; i < F.nfields; i++)
		if (F.fields[i]) {
			kvc_wf_field(f, i);
			sum += kvc_wf_entry_hash(f, 5, F.fields[i], F.flen[i]);
		}
	snprintf(want, sizeof(want), "xxh3sum:%016" PRIx64, sum);
	cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(ref, "hash")), want);
}

Test(workflow_reconcile, a_stale_owner_loses_the_commit_and_reloads)
{
	char nb[64];
	workflow("\"parallelism\":{\"withCount\":2}");
	run();
	run();
	/* another owner committed meanwhile: task 0 succeeded */
	free(F.fields[0]);
	F.fields[0] = strdup("{\"phase\":\"Succeeded\",\"attempts\":1,\"exitCode\":0}");
	F.flen[0] = strlen(F.fields[0]);
	F.map_ver++;
	int loads = F.loads;
	finish("wf-1-1", 0);
	run();
	cr_assert_eq(F.loads, loads + 1, "a moved version is read again");
	cr_assert_str_eq(NODE(0, "phase"), "Succeeded");
	cr_assert_str_eq(status_s("phase"), "Succeeded");
}

Test(workflow_reconcile, an_invalid_spec_is_refused_in_the_status)
{
	workflow("\"parallelism\":{\"withCount\":2,\"withKeys\":[\"a\"]}");
	kvc_wf_result res = run();
	cr_assert_eq(res.phase, KVC_WF_W_FAILED);
	cr_assert_str_eq(status_s("phase"), "Failed");
	cr_assert_not_null(strstr(status_s("message"), "invalid spec: spec.parallelism: exactly one of"),
	                   "%s", status_s("message"));
	cr_assert_eq(F.npods, 0);
	cr_assert_eq(F.map_exists, 0);
	cr_assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(F.wf, "status"), "stateRef"));
}

Test(workflow_reconcile, deleting_a_workflow_deletes_its_state)
{
	workflow("\"parallelism\":{\"withCount\":2}");
	run();
	run();
	cr_assert(F.map_exists);
	cJSON_AddStringToObject(cJSON_GetObjectItem(F.wf, "metadata"), "deletionTimestamp", "2024-05-01T11:00:00Z");
	run();
	cr_assert_eq(F.map_exists, 0);
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(F.wf, "metadata"), "finalizers")), 0);
}

Test(workflow_reconcile, creates_are_capped_per_reconcile)
{
	workflow("\"parallelism\":{\"withCount\":120}");
	run();
	kvc_wf_result res = run();
	cr_assert_eq(res.created, 50);
	cr_assert(res.requeue);
	res = run();
	cr_assert_eq(res.created, 50);
	res = run();
	cr_assert_eq(res.created, 20);
	cr_assert_eq(res.requeue, 0);
}

Test(workflow_reconcile, the_status_of_a_20000_task_workflow_stays_small)
{
	workflow("\"parallelism\":{\"withCount\":20000},\"maxConcurrency\":100");
	run();
	run();
	char *s = cJSON_PrintUnformatted(F.wf);
	cr_assert_lt(strlen(s), 64 * 1024, "Workflow is %zu bytes", strlen(s));
	free(s);
	cr_assert_eq(tasks_n("total"), 20000);
}
