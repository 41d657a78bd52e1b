/*
 * test_workflow_e2e.c — suite "workflow_e2e": build/kvsplit-controller (two
 * replicas) and build/kubelet-sim against the API test server.
 *
 * The Workflow CRD is applied from deploy/workflow-crd.yaml with kubectl,
 * then three Workflows run to the end:
 *   count   withCount 5, maxConcurrency 2, 2 attempts, every first attempt
 *           fails (kubelet-sim/fail-attempts): Succeeded on the retries;
 *   keys    withKeys ["0","5"], args "exit ${task.key}", 2 attempts: key
 *           "5" fails both: Failed (AllSuccessful);
 *   matrix  withMatrix {case: [4 shell scripts], rep: [x]}, args
 *           "${task.matrix.case}": one fails at 0.1 s, one succeeds at
 *           0.8 s, two would run 8 s; AnySuccessful + TerminateRemaining:
 *           Succeeded at the success, the slow two Skipped, Pods deleted.
 * A watch on Pods taken before the first Workflow counts every Pod created:
 * exactly one per attempt the node status records, with the deterministic
 * name <workflow>-<index>-<attempt>. Each Workflow's stateRef is read
 * through kvsplit: its version is the committed one, its hash the sum of
 * the fields' hashes, its nodes agree with the summary.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "kvsplit.h"
#include "kvsplit/kube.h"
#include "controller/workflow/kubeops.h"
#include "controller/workflow/node.h"
#include "support/fixture_kube.h"

static fx_kapi *srv;
static kvs_kube *kube;
static char dir[200];
#define PROCS_MAX 8
static pid_t procs[PROCS_MAX];
static unsigned nprocs;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };
	nanosleep(&ts, NULL);
}

static const char *build_dir(void)
{
	const char *b = getenv("KVS_BUILD");
	return b && *b ? b : "build";
}

/* Start build/<prog> (or, path 1, <prog> from $PATH) with its output in dir/log. */
static pid_t spawn_any(const char *prog, int path_lookup, const char *log, const char *const *args)
{
	char exe[PATH_MAX], path[PATH_MAX];
	const char *argv[24];
	int n = 0;
	if (path_lookup)
		snprintf(exe, sizeof(exe), "%s", prog);
	else
		snprintf(exe, sizeof(exe), "%s/%s", build_dir(), prog);
	snprintf(path, sizeof(path), "%s/%s", dir, log);
	argv[n++] = exe;
	for (int i = 0; args[i] && n < 23; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	cr_assert(nprocs < PROCS_MAX);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (path_lookup)
			execvp(exe, (char *const *)argv);
		else
			execv(exe, (char *const *)argv);
		_exit(127);
	}
	procs[nprocs++] = pid;
	return pid;
}

static pid_t spawn(const char *prog, const char *log, const char *const *args)
{
	return spawn_any(prog, 0, log, args);
}

/* ---- a watch counting every Pod created ----------------------------------- */

#define SEEN_MAX 256
static struct {
	pthread_t th;
	pthread_mutex_t mu;
	int stop, ready, started;
	char names[SEEN_MAX][64];
	unsigned adds[SEEN_MAX];
	unsigned n;
	unsigned overflow;
} seen = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void seen_add(const char *name)
{
	pthread_mutex_lock(&seen.mu);
	unsigned i;
	for (i = 0; i < seen.n; i++)
		if (!strcmp(seen.names[i], name))
			break;
	if (i == seen.n) {
		if (seen.n == SEEN_MAX || strlen(name) >= 64) {
			seen.overflow++;
			pthread_mutex_unlock(&seen.mu);
			return;
		}
		snprintf(seen.names[seen.n++], 64, "%s", name);
	}
	seen.adds[i]++;
	pthread_mutex_unlock(&seen.mu);
}

static unsigned seen_adds(const char *name)
{
	unsigned r = 0;
	pthread_mutex_lock(&seen.mu);
	for (unsigned i = 0; i < seen.n; i++)
		if (!strcmp(seen.names[i], name))
			r = seen.adds[i];
	pthread_mutex_unlock(&seen.mu);
	return r;
}

static void *pod_watch(void *arg)
{
	(void)arg;
	kvs_kube_watch *w = NULL;
	kvs_kube_watch_options wo = KVS_KUBE_WATCH_OPTIONS_INIT;
	char rv[64] = "";
	kvs_kube_page *pg = NULL;
	if (kvs_kube_list(&pg, kube, &kvs_kube_pods, fx_kapi_ns(srv), NULL, NULL) < 0)
		return NULL;
	snprintf(rv, sizeof(rv), "%s", pg->resource_version);
	kvs_kube_page_free(pg);
	while (!seen.stop) {
		wo.resource_version = rv;
		if (kvs_kube_watch_open(&w, kube, &kvs_kube_pods, fx_kapi_ns(srv), &wo, NULL) < 0) {
			sleep_s(0.1);
			continue;
		}
		__atomic_store_n(&seen.ready, 1, __ATOMIC_SEQ_CST);
		while (!seen.stop) {
			kvs_kube_event ev;
			int rc = kvs_kube_watch_next(&ev, w, 100, NULL);
			if (rc == KVS_ETIMEOUT)
				continue;
			if (rc < 0)
				break;
			if (ev.resource_version && strlen(ev.resource_version) < sizeof(rv))
				snprintf(rv, sizeof(rv), "%s", ev.resource_version);
			const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
			        cJSON_GetObjectItemCaseSensitive(ev.object, "metadata"), "name"));
			if (ev.type == KVS_KUBE_ADDED && name)
				seen_add(name);
			kvs_kube_event_clear(&ev);
		}
		kvs_kube_watch_close(w);
	}
	return NULL;
}

/* ---- fixture ------------------------------------------------------------------ */

static void setup(void)
{
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	cr_assert_eq(fx_kapi_start(&srv, 0, NULL), 0, "%s", kvs_error_last());
	ko.kubeconfig = fx_kapi_kubeconfig(srv);
	cr_assert_eq(kvs_kube_open(&kube, &ko), 0, "%s", kvs_error_last());
	snprintf(dir, sizeof(dir), "/tmp/kvs-wfe2e-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	nprocs = 0;
}

static void teardown(void)
{
	seen.stop = 1;
	if (seen.started)
		pthread_join(seen.th, NULL);
	for (unsigned i = 0; i < nprocs; i++) {
		if (procs[i] <= 0)
			continue;
		kill(procs[i], SIGKILL);
		waitpid(procs[i], NULL, 0);
	}
	kvs_kube_free(kube);
	fx_kapi_stop(srv);
	if (!getenv("KVS_KEEP")) {
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0) {
			/* best effort */
		}
	}
}

TestSuite(workflow_e2e, .init = setup, .fini = teardown, .timeout = 90);

static void apply_crd(void)
{
	char cmd[PATH_MAX * 2], crd[PATH_MAX];
	const char *src = getenv("KVS_SRC");
	snprintf(crd, sizeof(crd), "%s/deploy/workflow-crd.yaml", src && *src ? src : ".");
	if (access(crd, R_OK) != 0)
		snprintf(crd, sizeof(crd), "%s/../deploy/workflow-crd.yaml", build_dir());
	/* --validate=false: the test server serves no OpenAPI document */
	snprintf(cmd, sizeof(cmd), "kubectl --kubeconfig '%s' apply --validate=false -f '%s' > '%s/kubectl.log' 2>&1",
	         fx_kapi_kubeconfig(srv), crd, dir);
	cr_assert_eq(system(cmd), 0, "kubectl apply of %s failed (see %s/kubectl.log)", crd, dir);
	/* Established: the resource is served. */
	for (int i = 0; i < 100; i++) {
		kvs_kube_page *pg = NULL;
		if (kvs_kube_list(&pg, kube, &kvc_wf_workflows, fx_kapi_ns(srv), NULL, NULL) == 0) {
			kvs_kube_page_free(pg);
			return;
		}
		sleep_s(0.05);
	}
	cr_assert_fail("workflows are not served after the CRD was applied: %s", kvs_error_last());
}

static void create(const char *json)
{
	cJSON *o = cJSON_Parse(json);
	cr_assert_not_null(o, "bad test JSON");
	int rc = kvs_kube_create(NULL, kube, &kvc_wf_workflows, fx_kapi_ns(srv), o, NULL);
	cJSON_Delete(o);
	cr_assert_eq(rc, 0, "create: %s", kvs_error_last());
}

static const char *const WF_COUNT =
        "{\"apiVersion\":\"workflows.kvsplit.io/v1alpha1\",\"kind\":\"Workflow\","
        "\"metadata\":{\"name\":\"count\"},\"spec\":{\"parallelism\":{\"withCount\":5},"
        "\"maxConcurrency\":2,\"retries\":{\"maxAttemptsPerTask\":2},"
        "\"template\":{\"metadata\":{\"annotations\":{\"kubelet-sim/fail-attempts\":\"1\"}},"
        "\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"busybox\","
        "\"args\":[\"echo\",\"${task.index}\"]}]}}}}";
static const char *const WF_KEYS =
        "{\"apiVersion\":\"workflows.kvsplit.io/v1alpha1\",\"kind\":\"Workflow\","
        "\"metadata\":{\"name\":\"keys\"},\"spec\":{\"parallelism\":{\"withKeys\":[\"0\",\"5\"]},"
        "\"retries\":{\"maxAttemptsPerTask\":2},"
        "\"template\":{\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"busybox\","
        "\"command\":[\"sh\",\"-c\"],\"args\":[\"exit ${task.key}\"]}]}}}}";
static const char *const WF_MATRIX =
        "{\"apiVersion\":\"workflows.kvsplit.io/v1alpha1\",\"kind\":\"Workflow\","
        "\"metadata\":{\"name\":\"matrix\"},\"spec\":{\"parallelism\":{\"withMatrix\":"
        "{\"case\":[\"sleep 0.1; exit 1\",\"sleep 0.8; exit 0\",\"sleep 8; exit 0\",\"sleep 8; exit 3\"],"
        "\"rep\":[\"x\"]}},"
        "\"completion\":{\"strategy\":\"AnySuccessful\",\"onComplete\":\"TerminateRemaining\"},"
        "\"template\":{\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"busybox\","
        "\"command\":[\"sh\",\"-c\"],"
        "\"args\":[\"${task.matrix.case}\"]}]}}}}";

static const char *const WF_INVALID =
        "{\"apiVersion\":\"workflows.kvsplit.io/v1alpha1\",\"kind\":\"Workflow\","
        "\"metadata\":{\"name\":\"invalid\"},\"spec\":{\"parallelism\":{\"withKeys\":[\"a\",\"a\"]},"
        "\"template\":{\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"busybox\"}]}}}}";

static cJSON *get_wf(const char *name)
{
	cJSON *o = NULL;
	int rc = kvs_kube_get(&o, kube, &kvc_wf_workflows, fx_kapi_ns(srv), name, NULL, NULL);
	cr_assert_eq(rc, 0, "get %s: %s", name, kvs_error_last());
	return o;
}

static const char *status_str(const cJSON *wf, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(wf, "status"), k));
}

static int task_count(const cJSON *wf, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(wf, "status"), "tasks"), k);
	return cJSON_IsNumber(v) ? v->valueint : -1;
}

/* Wait until the workflow's phase is final; its object. */
static cJSON *wait_final(const char *name, double deadline)
{
	for (;;) {
		cJSON *wf = get_wf(name);
		const char *ph = status_str(wf, "phase");
		if (ph && (!strcmp(ph, "Succeeded") || !strcmp(ph, "Failed")))
			return wf;
		if (now_s() > deadline)
			cr_assert_fail("workflow %s not finished: phase %s, progress %s (logs in %s)", name,
			               ph ? ph : "(none)", status_str(wf, "progress") ? status_str(wf, "progress") : "-",
			               dir);
		cJSON_Delete(wf);
		sleep_s(0.2);
	}
}

/*
 * Read the workflow's node status through kvsplit (the store and key of
 * its stateRef) and check it against the stateRef and the summary. Returns
 * the total attempts; each task's attempts in att[].
 */
static unsigned check_state(const cJSON *wf, unsigned total, unsigned *att, const char *wfname)
{
	const cJSON *ref = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(wf, "status"), "stateRef");
	const char *store = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "store"));
	const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "key"));
	const char *ver = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "version"));
	const char *hash = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "hash"));
	cr_assert(store && key && ver && hash, "%s: stateRef incomplete", wfname);
	kvs_backend *be = NULL;
	kvs_store *st = NULL;
	kvs_options so = KVS_OPTIONS_INIT;
	so.name = store;
	cr_assert_eq(fx_kapi_backend(&be, srv, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_open(&st, be, &so), 0, "%s", kvs_error_last());
	kvs_map_iter *mi = NULL;
	kvs_map_entry e;
	kvs_ver v;
	int rc;
	cr_assert_eq(kvs_map_iter_open(&mi, &v, st, key, NULL), 0, "%s: map %s: %s", wfname, key, kvs_error_last());
	cr_assert_str_eq(v.str, ver, "%s: stateRef.version %s, stored %s", wfname, ver, v.str);
	uint64_t sum = 0;
	unsigned n = 0, attempts = 0, ph[5] = { 0 };
	while ((rc = kvs_map_iter_next(&e, mi)) == 0) {
		char field[16];
		cr_assert(e.is_json && e.field_len < sizeof(field), "%s: field %u", wfname, n);
		memcpy(field, e.field, e.field_len);
		field[e.field_len] = '\0';
		int64_t idx = kvc_wf_field_index(field, e.field_len, total);
		cr_assert(idx >= 0, "%s: field %s", wfname, field);
		sum += kvc_wf_entry_hash(e.field, e.field_len, e.value, e.value_len);
		kvc_wf_node nd;
		cr_assert_eq(kvc_wf_node_decode(&nd, e.value, e.value_len, 100), 0, "%s: %.*s", wfname,
		             (int)e.value_len, (const char *)e.value);
		att[idx] = nd.attempts;
		attempts += nd.attempts;
		ph[nd.phase]++;
		free(nd.message);
		n++;
	}
	kvs_map_iter_close(mi);
	cr_assert_eq(rc, KVS_EITER_DONE, "%s: %s", wfname, kvs_error_last());
	kvs_close(st);
	char want[40];
	snprintf(want, sizeof(want), "xxh3sum:%016" PRIx64, sum);
	cr_assert_str_eq(hash, want, "%s: stateRef.hash", wfname);
	cr_assert_eq(n, total, "%s: %u nodes stored of %u", wfname, n, total);
	cr_assert_eq(ph[KVC_WF_SUCCEEDED], (unsigned)task_count(wf, "succeeded"), "%s", wfname);
	cr_assert_eq(ph[KVC_WF_FAILED], (unsigned)task_count(wf, "failed"), "%s", wfname);
	cr_assert_eq(ph[KVC_WF_SKIPPED], (unsigned)task_count(wf, "skipped"), "%s", wfname);
	return attempts;
}

/* Exactly one Pod per recorded attempt, by its deterministic name. */
static void check_pods(const char *wfname, unsigned total, const unsigned *att)
{
	for (unsigned i = 0; i < total; i++)
		for (unsigned a = 1; a <= att[i]; a++) {
			char name[64];
			snprintf(name, sizeof(name), "%s-%u-%u", wfname, i, a);
			cr_assert_eq(seen_adds(name), 1, "%s: Pod %s created %u times", wfname, name, seen_adds(name));
		}
}

static void start_pod_watch(void)
{
	cr_assert_eq(pthread_create(&seen.th, NULL, pod_watch, NULL), 0);
	seen.started = 1;
	for (int i = 0; i < 100 && !__atomic_load_n(&seen.ready, __ATOMIC_SEQ_CST); i++)
		sleep_s(0.05);
	cr_assert(seen.ready, "pod watch did not open");
}

static void stop_pod_watch(void)
{
	seen.stop = 1;
	pthread_join(seen.th, NULL);
	seen.started = 0;
	cr_assert_eq(seen.overflow, 0);
}

static int wait_exit(pid_t pid, int sig)
{
	int st = 0;
	kill(pid, sig);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	for (unsigned i = 0; i < nprocs; i++)
		if (procs[i] == pid)
			procs[i] = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *p = malloc(1 << 20);
	size_t n = p ? fread(p, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (p)
		p[n] = '\0';
	return p;
}

Test(workflow_e2e, each_parallelism_and_completion_policy_with_two_replicas)
{
	double t0 = now_s();
	apply_crd();
	const char *kc = fx_kapi_kubeconfig(srv), *ns = fx_kapi_ns(srv);
	const char *const ca[] = { "--kubeconfig", kc, "--namespace", ns, "--identity", "a", "--lease-duration", "3s",
		                   "--resync", "1s", "--workers", "2", NULL };
	/* b watches all namespaces (the default); its Leases are in the context's namespace */
	const char *const cb[] = { "--kubeconfig", kc, "--identity", "b", "--lease-duration", "3s",
		                   "--resync", "1s", "--workers", "2", NULL };
	const char *const sim[] = { "--kubeconfig", kc, "--namespace", ns, "--duration", "200ms", NULL };
	spawn("kvsplit-controller", "a.log", ca);
	spawn("kvsplit-controller", "b.log", cb);
	spawn("kubelet-sim", "sim.log", sim);
	start_pod_watch();

	create(WF_COUNT);
	create(WF_KEYS);
	create(WF_MATRIX);
	create(WF_INVALID);
	double deadline = t0 + 35;

	/* count: every first attempt fails, every retry succeeds. */
	cJSON *wf = wait_final("count", deadline);
	unsigned att[8] = { 0 };
	cr_assert_str_eq(status_str(wf, "phase"), "Succeeded");
	cr_assert_str_eq(status_str(wf, "progress"), "5/5");
	cr_assert_eq(task_count(wf, "total"), 5);
	cr_assert_eq(task_count(wf, "succeeded"), 5);
	cr_assert_eq(check_state(wf, 5, att, "count"), 10);
	for (unsigned i = 0; i < 5; i++)
		cr_assert_eq(att[i], 2, "count task %u: %u attempts", i, att[i]);
	cJSON_Delete(wf);

	/* keys: key "5" exits 5 on both attempts: AllSuccessful fails. */
	wf = wait_final("keys", deadline);
	memset(att, 0, sizeof(att));
	cr_assert_str_eq(status_str(wf, "phase"), "Failed");
	cr_assert_eq(task_count(wf, "succeeded"), 1);
	cr_assert_eq(task_count(wf, "failed"), 1);
	cr_assert_eq(check_state(wf, 2, att, "keys"), 3);
	cr_assert_eq(att[0], 1);
	cr_assert_eq(att[1], 2);
	cJSON_Delete(wf);
	/* The task's key is in its Pod's env and args. */
	cJSON *pod = NULL;
	cr_assert_eq(kvs_kube_get(&pod, kube, &kvs_kube_pods, ns, "keys-1-2", NULL, NULL), 0, "%s", kvs_error_last());
	char *text = cJSON_PrintUnformatted(pod);
	cr_assert(strstr(text, "\"name\":\"TASK_KEY\",\"value\":\"5\""), "%s", text);
	cr_assert(strstr(text, "\"exit 5\""), "%s", text);
	free(text);
	cJSON_Delete(pod);

	/* matrix: the fast success decides; the slow ones are terminated. */
	wf = wait_final("matrix", deadline);
	memset(att, 0, sizeof(att));
	cr_assert_str_eq(status_str(wf, "phase"), "Succeeded");
	cr_assert_eq(task_count(wf, "total"), 4);
	cr_assert_eq(task_count(wf, "succeeded"), 1);
	cr_assert_eq(task_count(wf, "failed"), 1);
	cr_assert_eq(task_count(wf, "skipped"), 2);
	cr_assert_eq(check_state(wf, 4, att, "matrix"), 4);
	cJSON_Delete(wf);
	cr_assert_eq(kvs_kube_get(&pod, kube, &kvs_kube_pods, ns, "matrix-0-1", NULL, NULL), 0, "%s", kvs_error_last());
	text = cJSON_PrintUnformatted(pod);
	cr_assert(strstr(text, "\"name\":\"TASK_MATRIX_REP\",\"value\":\"x\""), "%s", text);
	cr_assert(strstr(text, "\"sleep 0.1; exit 1\""), "%s", text);
	free(text);
	cJSON_Delete(pod);
	cr_assert(now_s() - t0 < 8, "TerminateRemaining waited for the 8 s tasks");
	/* Their Pods are deleted (gone, or going). */
	kvs_kube_list_options lo = KVS_KUBE_LIST_OPTIONS_INIT;
	kvs_kube_page *pg = NULL;
	lo.label_selector = KVC_WF_LABEL_NAME "=matrix";
	for (int i = 0;; i++) {
		cr_assert_eq(kvs_kube_list(&pg, kube, &kvs_kube_pods, ns, &lo, NULL), 0, "%s", kvs_error_last());
		unsigned live = 0;
		const cJSON *it;
		cJSON_ArrayForEach(it, pg->items)
		{
			const cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
			const char *ph = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
			        cJSON_GetObjectItemCaseSensitive(it, "status"), "phase"));
			if (!cJSON_GetObjectItemCaseSensitive(md, "deletionTimestamp") && ph && !strcmp(ph, "Running"))
				live++;
		}
		kvs_kube_page_free(pg);
		if (live == 0)
			break;
		cr_assert(i < 50, "matrix: %u Pods still running after TerminateRemaining", live);
		sleep_s(0.1);
	}

	/* An invalid spec: refused in the status, nothing created. */
	wf = wait_final("invalid", deadline);
	cr_assert_str_eq(status_str(wf, "phase"), "Failed");
	cr_assert(status_str(wf, "message") && !strncmp(status_str(wf, "message"), "invalid spec: ", 14), "%s",
	          status_str(wf, "message") ? status_str(wf, "message") : "(no message)");
	cJSON_Delete(wf);

	/* Exactly one Pod per attempt, under its deterministic name. */
	stop_pod_watch();
	static const unsigned count_att[5] = { 2, 2, 2, 2, 2 }, keys_att[2] = { 1, 2 }, matrix_att[4] = { 1, 1, 1, 1 };
	check_pods("count", 5, count_att);
	check_pods("keys", 2, keys_att);
	check_pods("matrix", 4, matrix_att);
	cr_assert_eq(seen.n, 10 + 3 + 4, "%u Pods created, want 17", seen.n);

	/* SIGTERM: both replicas hand over and exit 0. */
	for (unsigned i = 0; i < 2; i++) {
		int st = 0;
		kill(procs[i], SIGTERM);
		while (waitpid(procs[i], &st, 0) < 0 && errno == EINTR)
			;
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "controller %u exit status %d", i, st);
		procs[i] = 0;
	}
}

/* Tasks of 1 s, 4 at a time: ~8 s, so both the kill -9 (at 1.5 s) and the
 * SIGTERM (at ~3.5 s) land while it runs, whichever replica owns it. */
static const char *const WF_BIG =
        "{\"apiVersion\":\"workflows.kvsplit.io/v1alpha1\",\"kind\":\"Workflow\","
        "\"metadata\":{\"name\":\"big\"},\"spec\":{\"parallelism\":{\"withCount\":30},"
        "\"maxConcurrency\":4,"
        "\"template\":{\"metadata\":{\"annotations\":{\"kubelet-sim/duration\":\"1s\"}},"
        "\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"busybox\"}]}}}}";

/* The reconciles of `object` in dir/<id>.log: [start, end) per member. */
typedef struct span {
	int member;
	double start, end;
} span;

static unsigned read_spans(span *out, unsigned cap, const char *const *ids, unsigned nid, const char *object)
{
	unsigned n = 0;
	char want[128];
	snprintf(want, sizeof(want), " object=%s ", object);
	for (unsigned m = 0; m < nid; m++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s.log", dir, ids[m]);
		char *text = slurp(path), *save = NULL;
		cr_assert_not_null(text, "%s", path);
		for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			const char *st = strstr(line, " start="), *du = strstr(line, " dur_us=");
			if (!strstr(line, "event=reconcile") || !strstr(line, want) || !st || !du || n == cap)
				continue;
			out[n].member = (int)m;
			out[n].start = strtod(st + 7, NULL);
			out[n].end = out[n].start + strtod(du + 8, NULL) / 1e6;
			n++;
		}
		free(text);
	}
	return n;
}

/*
 * A workflow outlives its replicas: kill -9 one mid-run, start another,
 * SIGTERM the second (exit 0). It completes from its stored state, with
 * exactly one Pod per task, and `kubectl get workflows -w` shows its
 * phase and progress change live.
 */
Test(workflow_e2e, handoff_kill9_and_sigterm_and_kubectl_watch)
{
	double t0 = now_s();
	apply_crd();
	const char *kc = fx_kapi_kubeconfig(srv), *ns = fx_kapi_ns(srv);
	const char *ids[3] = { "a", "b", "c" };
	pid_t pid[3];
	for (int i = 0; i < 2; i++) {
		const char *args[] = { "--kubeconfig", kc, "--namespace", ns, "--identity", ids[i], "--lease-duration",
			               "3s", "--resync", "1s", NULL };
		char log[16];
		snprintf(log, sizeof(log), "%s.log", ids[i]);
		pid[i] = spawn("kvsplit-controller", log, args);
	}
	const char *const sim[] = { "--kubeconfig", kc, "--namespace", ns, NULL };
	spawn("kubelet-sim", "sim.log", sim);
	const char *const kw[] = { "--kubeconfig", kc, "-n", ns, "get", "workflows", "-w", "--no-headers", NULL };
	spawn_any("kubectl", 1, "watch.txt", kw);
	start_pod_watch();
	sleep_s(0.5); /* kubectl's watch is open */

	create(WF_BIG);
	sleep_s(1.5);
	cr_assert_eq(kill(pid[0], SIGKILL), 0);
	sleep_s(1.0);
	const char *args[] = { "--kubeconfig", kc, "--namespace", ns, "--identity", "c", "--lease-duration", "3s",
		               "--resync", "1s", NULL };
	pid[2] = spawn("kvsplit-controller", "c.log", args);
	sleep_s(1.0);
	cr_assert_eq(wait_exit(pid[1], SIGTERM), 0, "b did not exit 0 on SIGTERM");

	cJSON *wf = wait_final("big", t0 + 40);
	unsigned att[30] = { 0 };
	cr_assert_str_eq(status_str(wf, "phase"), "Succeeded");
	cr_assert_str_eq(status_str(wf, "progress"), "30/30");
	cr_assert_eq(check_state(wf, 30, att, "big"), 30);
	cJSON_Delete(wf);
	stop_pod_watch();
	static const unsigned one[30] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		                          1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	check_pods("big", 30, one);
	cr_assert_eq(seen.n, 30, "%u Pods created for 30 tasks", seen.n);

	/* No two replicas reconciled it at the same time; more than one did. */
	static span sp[4096];
	char obj[96];
	snprintf(obj, sizeof(obj), "%s/big", ns);
	unsigned nsp = read_spans(sp, 4096, ids, 3, obj), members = 0;
	for (unsigned i = 0; i < nsp; i++) {
		members |= 1u << sp[i].member;
		for (unsigned j = 0; j < nsp; j++)
			cr_assert(sp[i].member == sp[j].member || sp[i].end <= sp[j].start || sp[j].end <= sp[i].start,
			          "%s and %s reconciled big at the same time (%.6f, %.6f)", ids[sp[i].member],
			          ids[sp[j].member], sp[i].start, sp[j].start);
	}
	cr_assert(nsp > 0 && members != 1 && members != 2 && members != 4,
	          "big was reconciled by one replica only (%u reconciles): no handoff tested", nsp);

	/* kubectl get -w printed the changes as they happened. */
	sleep_s(0.5);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/watch.txt", dir);
	char *out = slurp(path);
	cr_assert_not_null(out);
	unsigned lines = 0, progress_seen = 0, running_lines = 0, succeeded_at = 0;
	char last[64] = "";
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char name[32], phase[32], prog[32];
		if (sscanf(line, "%31s %31s %31s", name, phase, prog) != 3 || strcmp(name, "big"))
			continue;
		lines++;
		running_lines += !strcmp(phase, "Running");
		if (!strcmp(phase, "Succeeded") && !succeeded_at)
			succeeded_at = lines;
		cr_assert(!succeeded_at || !strcmp(phase, "Succeeded"), "kubectl get -w: %s after Succeeded", phase);
		if (strcmp(prog, last)) {
			progress_seen++;
			snprintf(last, sizeof(last), "%s", prog);
		}
	}
	cr_assert(progress_seen >= 5, "kubectl get -w showed %u progress values in %u lines:\n%s", progress_seen,
	          lines, out);
	cr_assert_str_eq(last, "30/30");
	/* the phase changed live too: Running lines first, then Succeeded */
	cr_assert(running_lines >= 3 && succeeded_at > running_lines, "kubectl get -w: %u Running lines, Succeeded at line %u:\n%s",
	          running_lines, succeeded_at, out);
	free(out);
	cr_assert_eq(wait_exit(pid[2], SIGTERM), 0);
}

/* AllSuccessful + TerminateRemaining: the fast failure decides, the slow two are terminated. */
static const char *const WF_ALL_TERM =
        "{\"apiVersion\":\"workflows.kvsplit.io/v1alpha1\",\"kind\":\"Workflow\","
        "\"metadata\":{\"name\":\"allterm\"},\"spec\":{\"parallelism\":{\"withKeys\":"
        "[\"sleep 0.3; exit 2\",\"sleep 8; exit 0\",\"sleep 9; exit 0\"]},"
        "\"completion\":{\"strategy\":\"AllSuccessful\",\"onComplete\":\"TerminateRemaining\"},"
        "\"template\":{\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"busybox\","
        "\"command\":[\"sh\",\"-c\"],\"args\":[\"${task.key}\"]}]}}}}";
/* AnySuccessful + WaitForRemaining: the fast success decides, the others run to their end. */
static const char *const WF_ANY_WAIT =
        "{\"apiVersion\":\"workflows.kvsplit.io/v1alpha1\",\"kind\":\"Workflow\","
        "\"metadata\":{\"name\":\"anywait\"},\"spec\":{\"parallelism\":{\"withMatrix\":"
        "{\"run\":[\"sleep 0.3; exit 0\",\"sleep 2; exit 0\",\"sleep 2; exit 4\"]}},"
        "\"completion\":{\"strategy\":\"AnySuccessful\",\"onComplete\":\"WaitForRemaining\"},"
        "\"template\":{\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"busybox\","
        "\"command\":[\"sh\",\"-c\"],\"args\":[\"${task.matrix.run}\"]}]}}}}";

/* The node record of one task, through kvsplit. */
static void node_of(const cJSON *wf, unsigned index, kvc_wf_node *out)
{
	const cJSON *ref = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(wf, "status"), "stateRef");
	kvs_backend *be = NULL;
	kvs_store *st = NULL;
	kvs_options so = KVS_OPTIONS_INIT;
	char field[KVC_WF_FIELD_LEN + 1];
	void *val = NULL;
	size_t vlen = 0;
	so.name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "store"));
	cr_assert_eq(fx_kapi_backend(&be, srv, NULL), 0);
	cr_assert_eq(kvs_open(&st, be, &so), 0);
	kvc_wf_field(field, index);
	cr_assert_eq(kvs_map_get(&val, &vlen, NULL, NULL, st, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "key")),
	                         field, KVC_WF_FIELD_LEN, NULL),
	             0, "%s", kvs_error_last());
	cr_assert_eq(kvc_wf_node_decode(out, val, vlen, 100), 0, "%.*s", (int)vlen, (const char *)val);
	kvs_free(val);
	kvs_close(st);
}

/*
 * The two policy combinations the first test leaves out: AllSuccessful
 * with TerminateRemaining (Failed at the first failure, the running tasks'
 * Pods deleted, Skipped "terminated"), and AnySuccessful with
 * WaitForRemaining (the outcome decided at the first success, the phase
 * final only once the running tasks finished, their results recorded).
 */
Test(workflow_e2e, all_successful_terminates_and_any_successful_waits_for_remaining)
{
	double t0 = now_s();
	apply_crd();
	const char *kc = fx_kapi_kubeconfig(srv), *ns = fx_kapi_ns(srv);
	const char *const ca[] = { "--kubeconfig", kc, "--namespace", ns, "--identity", "a", "--lease-duration", "3s",
		                   "--resync", "1s", NULL };
	const char *const sim[] = { "--kubeconfig", kc, "--namespace", ns, NULL };
	spawn("kvsplit-controller", "a.log", ca);
	spawn("kubelet-sim", "sim.log", sim);
	start_pod_watch();
	create(WF_ALL_TERM);
	create(WF_ANY_WAIT);

	cJSON *wf = wait_final("allterm", t0 + 30);
	double t_allterm = now_s();
	unsigned att[3] = { 0 };
	cr_assert_str_eq(status_str(wf, "phase"), "Failed");
	cr_assert_eq(task_count(wf, "failed"), 1);
	cr_assert_eq(task_count(wf, "skipped"), 2);
	cr_assert_eq(check_state(wf, 3, att, "allterm"), 3);
	kvc_wf_node nd;
	for (unsigned i = 1; i < 3; i++) {
		node_of(wf, i, &nd);
		cr_assert_eq(nd.phase, KVC_WF_SKIPPED);
		cr_assert(nd.message && strstr(nd.message, "terminated"), "task %u: %s", i, nd.message ? nd.message : "-");
		free(nd.message);
	}
	cJSON_Delete(wf);
	cr_assert(t_allterm - t0 < 8, "TerminateRemaining waited for the 8 s tasks");
	/* The running Pods are deleted. */
	for (unsigned i = 1; i < 3; i++) {
		char name[32];
		snprintf(name, sizeof(name), "allterm-%u-1", i);
		for (int k = 0;; k++) {
			cJSON *pod = NULL;
			int rc = kvs_kube_get(&pod, kube, &kvs_kube_pods, ns, name, NULL, NULL);
			int going = rc == KVS_ENOTFOUND ||
			            (rc == 0 && cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "metadata"),
			                                                         "deletionTimestamp"));
			cJSON_Delete(pod);
			if (going)
				break;
			cr_assert(k < 50, "Pod %s not deleted after TerminateRemaining", name);
			sleep_s(0.1);
		}
	}

	wf = wait_final("anywait", t0 + 30);
	double t_anywait = now_s();
	memset(att, 0, sizeof(att));
	cr_assert_str_eq(status_str(wf, "phase"), "Succeeded");
	cr_assert_eq(task_count(wf, "succeeded"), 2);
	cr_assert_eq(task_count(wf, "failed"), 1);
	cr_assert_eq(task_count(wf, "skipped"), 0);
	cr_assert_eq(check_state(wf, 3, att, "anywait"), 3);
	node_of(wf, 2, &nd);
	cr_assert_eq(nd.phase, KVC_WF_FAILED);
	cr_assert(nd.has_exit && nd.exit_code == 4, "exit %d", nd.exit_code);
	free(nd.message);
	cJSON_Delete(wf);
	cr_assert(t_anywait - t0 > 2, "WaitForRemaining did not wait for the 2 s tasks");

	stop_pod_watch();
	static const unsigned one[3] = { 1, 1, 1 };
	check_pods("allterm", 3, one);
	check_pods("anywait", 3, one);
	cr_assert_eq(seen.n, 6, "%u Pods created, want 6", seen.n);
}

/* The gc rounds in dir/<id>.log: how many, the first and last time, the most indexes read. */
typedef struct gcrounds {
	unsigned n, leading;
	double first, last;
	unsigned long indexes;
} gcrounds;

static gcrounds gc_rounds(const char *id)
{
	gcrounds g = { 0, 0, 0, 0, 0 };
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s.log", dir, id);
	char *text = slurp(path), *save = NULL;
	cr_assert_not_null(text, "%s", path);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *ts = strstr(line, "ts="), *ix = strstr(line, " indexes=");
		if (strstr(line, "event=leader") && strstr(line, "task=gc leading=true"))
			g.leading++;
		if (!strstr(line, "event=gc ") || !ts || !ix)
			continue;
		cr_assert(!strstr(line, " error="), "%s: %s", id, line);
		double t = strtod(ts + 3, NULL);
		unsigned long n = strtoul(ix + 9, NULL, 10);
		if (!g.n)
			g.first = t;
		g.last = t;
		g.n++;
		if (n > g.indexes)
			g.indexes = n;
	}
	free(text);
	return g;
}

/*
 * gc is a singleton task: of two replicas, only the elected one (Lease
 * kvsplit-controller-leader-gc) collects the node store; when it dies, the
 * other takes the Lease over after it runs out and collects from then on.
 */
Test(workflow_e2e, gc_runs_on_one_replica_and_moves_when_it_dies)
{
	apply_crd();
	const char *kc = fx_kapi_kubeconfig(srv), *ns = fx_kapi_ns(srv);
	const char *ids[2] = { "a", "b" };
	pid_t pid[2];
	for (int i = 0; i < 2; i++) {
		const char *args[] = { "--kubeconfig", kc, "--namespace", ns, "--identity", ids[i], "--lease-duration", "3s",
			               "--resync", "1s", "--gc-interval", "500ms", NULL };
		char log[16];
		snprintf(log, sizeof(log), "%s.log", ids[i]);
		pid[i] = spawn("kvsplit-controller", log, args);
	}
	const char *const sim[] = { "--kubeconfig", kc, "--namespace", ns, "--duration", "100ms", NULL };
	spawn("kubelet-sim", "sim.log", sim);
	create(WF_COUNT);
	cJSON *wf = wait_final("count", now_s() + 30);
	cJSON_Delete(wf);

	/* One leader collects, rounds after rounds, reading the workflow's map. */
	gcrounds g[2];
	for (int i = 0;; i++) {
		g[0] = gc_rounds("a");
		g[1] = gc_rounds("b");
		if ((g[0].n >= 3 && g[0].indexes >= 1) || (g[1].n >= 3 && g[1].indexes >= 1))
			break;
		cr_assert(i < 100, "no gc rounds reading the store: a %u, b %u (logs in %s)", g[0].n, g[1].n, dir);
		sleep_s(0.1);
	}
	int l = g[0].n ? 0 : 1, o = 1 - l;
	cr_assert_eq(g[o].n, 0, "both replicas collected: %s %u rounds, %s %u", ids[l], g[l].n, ids[o], g[o].n);
	cr_assert_eq(g[l].leading, 1);
	cr_assert_eq(g[o].leading, 0);

	/* The leader dies: the other takes over once its Lease ran out. */
	double killed = now_s();
	cr_assert_eq(kill(pid[l], SIGKILL), 0);
	for (int i = 0;; i++) {
		g[o] = gc_rounds(ids[o]);
		if (g[o].n >= 2)
			break;
		cr_assert(i < 150, "%s did not take gc over within 15 s of the kill (logs in %s)", ids[o], dir);
		sleep_s(0.1);
	}
	cr_assert_eq(g[o].leading, 1);
	cr_assert_gt(g[o].first, killed + 1.0, "%s collected %.2f s after the kill, before the Lease could run out",
	             ids[o], g[o].first - killed);
	cr_assert_lt(g[o].first, killed + 3 + 2 + 2, "took %.2f s", g[o].first - killed);
	cr_assert_geq(g[o].indexes, 1);
	cr_assert_eq(wait_exit(pid[o], SIGTERM), 0, "%s did not exit 0 on SIGTERM", ids[o]);
}

/*
 * kubelet-sim's --fail-rate draws each attempt afresh: a task whose first
 * attempt failed at random can succeed on a retry. (The draw once hashed
 * the Pod's name with FNV-1a and took the top bits, which the last
 * characters - the attempt number - hardly move: every retry of a random
 * failure failed too.)
 */
Test(workflow_e2e, kubelet_sim_fail_rate_draws_each_attempt_afresh)
{
	apply_crd();
	const char *kc = fx_kapi_kubeconfig(srv), *ns = fx_kapi_ns(srv);
	const char *const ca[] = { "--kubeconfig", kc, "--namespace", ns, "--identity", "a", "--lease-duration", "3s",
		                   "--resync", "1s", NULL };
	const char *const sim[] = { "--kubeconfig", kc, "--namespace", ns, "--duration", "50ms", "--seed", "7",
		                    "--fail-rate", "0.3", NULL };
	spawn("kvsplit-controller", "a.log", ca);
	spawn("kubelet-sim", "sim.log", sim);
	create("{\"apiVersion\":\"workflows.kvsplit.io/v1alpha1\",\"kind\":\"Workflow\","
	       "\"metadata\":{\"name\":\"flaky\"},\"spec\":{\"parallelism\":{\"withCount\":20},"
	       "\"retries\":{\"maxAttemptsPerTask\":4},"
	       "\"template\":{\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"busybox\"}]}}}}");
	cJSON *wf = wait_final("flaky", now_s() + 30);
	unsigned att[20] = { 0 }, retried = 0, recovered = 0;
	check_state(wf, 20, att, "flaky");
	for (unsigned i = 0; i < 20; i++) {
		kvc_wf_node nd;
		if (!att[i])
			continue;
		node_of(wf, i, &nd);
		retried += nd.attempts > 1;
		recovered += nd.attempts > 1 && nd.phase == KVC_WF_SUCCEEDED;
		free(nd.message);
	}
	cJSON_Delete(wf);
	cr_assert_geq(retried, 2, "%u of 20 tasks were retried at a 30%% fail rate", retried);
	cr_assert_geq(recovered, 1, "none of the %u retried tasks succeeded on a retry", retried);
}

/* ---- suite workflow_kubeops: the node state through kvsplit ---------------- */

TestSuite(workflow_kubeops, .init = setup, .fini = teardown, .timeout = 30);

struct got {
	unsigned n;
	char fields[8][8];
	char values[8][64];
};

static int collect_entry(void *arg, const void *field, size_t flen, const void *value, size_t vlen)
{
	struct got *g = arg;
	if (g->n == 8 || flen >= 8 || vlen >= 64)
		return KVS_ETOOBIG;
	memcpy(g->fields[g->n], field, flen);
	memcpy(g->values[g->n], value, vlen);
	g->n++;
	return 0;
}

Test(workflow_kubeops, commit_is_conditional_and_atomic_and_load_reads_it_back)
{
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	kvc_wf_kube *k = NULL;
	ko.kubeconfig = fx_kapi_kubeconfig(srv);
	cr_assert_eq(kvc_wf_kube_new(&k, kube, &ko, "workflows", NULL), 0, "%s", kvs_error_last());
	const kvc_wf_ops *ops = kvc_wf_kube_ops();
	const char *ns = fx_kapi_ns(srv), *key = "workflow/w/uid-1";
	char v1[KVC_WF_STATE_VER_MAX], v2[KVC_WF_STATE_VER_MAX], v3[KVC_WF_STATE_VER_MAX];
	kvc_wf_entry e[2] = { { "00000", 5, "{\"a\":1}", 7 }, { "00001", 5, "{\"b\":2}", 7 } };

	cr_assert_eq(ops->state_version(k, ns, key, v1, sizeof(v1)), KVS_ENOTFOUND);
	cr_assert_eq(ops->commit_state(k, ns, key, e, 2, "", v1, sizeof(v1)), 0, "%s", kvs_error_last());
	/* create-only a second time: EEXISTS, nothing changes */
	cr_assert_eq(ops->commit_state(k, ns, key, e, 1, "", v2, sizeof(v2)), KVS_EEXISTS);
	cr_assert_eq(ops->state_version(k, ns, key, v2, sizeof(v2)), 0);
	cr_assert_str_eq(v2, v1);

	kvc_wf_entry c = { "00001", 5, "{\"b\":3}", 7 };
	cr_assert_eq(ops->commit_state(k, ns, key, &c, 1, v1, v2, sizeof(v2)), 0, "%s", kvs_error_last());
	cr_assert_str_neq(v2, v1);
	/* a stale owner's commit fails whole */
	kvc_wf_entry stale[2] = { { "00000", 5, "{\"x\":0}", 7 }, { "00002", 5, "{\"c\":1}", 7 } };
	cr_assert_eq(ops->commit_state(k, ns, key, stale, 2, v1, v3, sizeof(v3)), KVS_ECONFLICT);

	struct got g = { 0 };
	cr_assert_eq(ops->load_state(k, ns, key, collect_entry, &g, v3, sizeof(v3)), 0, "%s", kvs_error_last());
	cr_assert_str_eq(v3, v2);
	cr_assert_eq(g.n, 2);
	cr_assert_str_eq(g.fields[0], "00000");
	cr_assert_str_eq(g.values[0], "{\"a\":1}");
	cr_assert_str_eq(g.fields[1], "00001");
	cr_assert_str_eq(g.values[1], "{\"b\":3}");

	/* hostile stored state: ECORRUPT, not a crash or a partial load */
	kvs_backend *be = NULL;
	kvs_store *st = NULL;
	kvs_options so = KVS_OPTIONS_INIT;
	so.name = "workflows";
	cr_assert_eq(fx_kapi_backend(&be, srv, NULL), 0);
	cr_assert_eq(kvs_open(&st, be, &so), 0);
	/* the fields are in the map: one field per task, the record's JSON */
	void *val = NULL;
	size_t vlen = 0;
	kvs_ver mv;
	cr_assert_eq(kvs_map_get(&val, &vlen, NULL, &mv, st, key, "00001", 5, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(vlen, 7);
	cr_assert_eq(memcmp(val, "{\"b\":3}", 7), 0);
	cr_assert_str_eq(mv.str, v2);
	kvs_free(val);
	/* a plain value where the map should be */
	cr_assert_eq(kvs_put(NULL, st, "workflow/bad/1", "{\"00000\":\"{}\"}", 14, NULL), 0, "%s", kvs_error_last());
	/* a map whose field was set as bytes, not JSON */
	kvs_map_batch *b = NULL;
	cr_assert_eq(kvs_map_batch_new(&b), 0);
	cr_assert_eq(kvs_map_batch_put(b, "00000", 5, "{\"a\"", 4), 0);
	cr_assert_eq(kvs_map_commit(NULL, st, "workflow/bad/2", b, NULL), 0, "%s", kvs_error_last());
	kvs_map_batch_free(b);
	memset(&g, 0, sizeof(g));
	cr_assert_eq(ops->load_state(k, ns, "workflow/bad/1", collect_entry, &g, v3, sizeof(v3)), KVS_ECORRUPT);
	cr_assert_eq(ops->load_state(k, ns, "workflow/bad/2", collect_entry, &g, v3, sizeof(v3)), KVS_ECORRUPT);
	/* a record that is not JSON is refused before anything is sent */
	kvc_wf_entry junk = { "00003", 5, "{\"a\"", 4 };
	cr_assert_eq(ops->commit_state(k, ns, key, &junk, 1, v2, v3, sizeof(v3)), KVS_EINVAL);
	cr_assert_eq(g.n, 0);
	kvs_close(st);

	cr_assert_eq(ops->delete_state(k, ns, key), 0);
	cr_assert_eq(ops->delete_state(k, ns, key), KVS_ENOTFOUND);
	cr_assert_eq(ops->load_state(k, ns, key, collect_entry, &g, v3, sizeof(v3)), KVS_ENOTFOUND);
	kvc_wf_kube_free(k);
}

static const char *wf_progress(const char *name)
{
	static char buf[64];
	cJSON *wf = get_wf(name);
	snprintf(buf, sizeof(buf), "%s", status_str(wf, "progress") ? status_str(wf, "progress") : "");
	cJSON_Delete(wf);
	return buf;
}

/* The informer's copy lags the controller's own last status write: the
 * write is retried on the Workflow read back while it is the same object
 * at the same generation; a changed spec is a conflict (reconciled anew). */
Test(workflow_kubeops, a_status_write_on_a_stale_workflow_is_retried_at_the_same_generation)
{
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	kvc_wf_kube *k = NULL;
	ko.kubeconfig = fx_kapi_kubeconfig(srv);
	apply_crd();
	create(WF_COUNT);
	cr_assert_eq(kvc_wf_kube_new(&k, kube, &ko, "workflows", NULL), 0, "%s", kvs_error_last());
	const kvc_wf_ops *ops = kvc_wf_kube_ops();
	cJSON *stale = get_wf("count");
	cJSON *s1 = cJSON_Parse("{\"phase\":\"Running\",\"progress\":\"1/5\"}");
	cJSON *s2 = cJSON_Parse("{\"phase\":\"Running\",\"progress\":\"2/5\"}");
	cr_assert_eq(ops->update_status(k, stale, s1), 0, "%s", kvs_error_last());
	cr_assert_eq(ops->update_status(k, stale, s2), 0, "a stale copy at the same generation: %s", kvs_error_last());
	cr_assert_str_eq(wf_progress("count"), "2/5");
	cJSON *p = cJSON_Parse("{\"spec\":{\"maxConcurrency\":3}}");
	cr_assert_eq(kvs_kube_patch(NULL, kube, &kvc_wf_workflows, fx_kapi_ns(srv), "count", KVS_KUBE_PATCH_MERGE, p,
	                            NULL, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(ops->update_status(k, stale, s1), KVS_ECONFLICT, "the spec changed since");
	cr_assert_str_eq(wf_progress("count"), "2/5");
	cJSON_Delete(p);
	cJSON_Delete(s1);
	cJSON_Delete(s2);
	cJSON_Delete(stale);
	kvc_wf_kube_free(k);
}

/* Finished Pods are labelled completed (the Pod informer then drops them);
 * a Pod already gone is no error. */
Test(workflow_kubeops, mark_completed_labels_pods_and_a_gone_pod_is_fine)
{
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	kvc_wf_kube *k = NULL;
	ko.kubeconfig = fx_kapi_kubeconfig(srv);
	cr_assert_eq(kvc_wf_kube_new(&k, kube, &ko, "workflows", NULL), 0, "%s", kvs_error_last());
	const char *ns = fx_kapi_ns(srv);
	for (int i = 0; i < 3; i++) {
		char text[512];
		snprintf(text, sizeof(text),
		         "{\"metadata\":{\"name\":\"p-%d\",\"labels\":{\"" KVC_WF_LABEL_UID "\":\"u1\"}},"
		         "\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}", i);
		cJSON *o = cJSON_Parse(text);
		cr_assert_eq(kvs_kube_create(NULL, kube, &kvs_kube_pods, ns, o, NULL), 0, "%s", kvs_error_last());
		cJSON_Delete(o);
	}
	const char *names[] = { "p-0", "p-2", "gone" };
	cr_assert_eq(kvc_wf_kube_ops()->mark_completed(k, ns, names, 3), 0, "%s", kvs_error_last());
	kvs_kube_list_options lo = KVS_KUBE_LIST_OPTIONS_INIT;
	lo.label_selector = KVC_WF_LABEL_UID "=u1,!" KVC_WF_LABEL_COMPLETED;
	kvs_kube_page *pg = NULL;
	cr_assert_eq(kvs_kube_list(&pg, kube, &kvs_kube_pods, ns, &lo, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(cJSON_GetArraySize(pg->items), 1);
	cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(
	                     cJSON_GetArrayItem(pg->items, 0), "metadata"), "name")), "p-1");
	kvs_kube_page_free(pg);
	kvc_wf_kube_stats ks;
	kvc_wf_kube_stats_get(k, &ks);
	cr_assert_eq(ks.pods_completed, 3);
	cr_assert_eq(ks.pods_complete_failed, 0);
	kvc_wf_kube_free(k);
}

Test(workflow_kubeops, one_changed_node_sends_a_small_part_of_the_state)
{
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	kvc_wf_kube *k = NULL;
	ko.kubeconfig = fx_kapi_kubeconfig(srv);
	cr_assert_eq(kvc_wf_kube_new(&k, kube, &ko, "workflows", NULL), 0, "%s", kvs_error_last());
	const kvc_wf_ops *ops = kvc_wf_kube_ops();
	const char *ns = fx_kapi_ns(srv), *key = "workflow/big/uid-2";
	enum { N = 2000 };
	static char fields[N][8], values[N][128];
	static kvc_wf_entry e[N];
	for (unsigned i = 0; i < N; i++) {
		snprintf(fields[i], sizeof(fields[i]), "%05u", i);
		int vl = snprintf(values[i], sizeof(values[i]),
		                  "{\"phase\":\"Running\",\"attempts\":1,\"pod\":\"big-%05u-0\",\"seed\":%u}", i,
		                  i * 2654435761u);
		e[i] = (kvc_wf_entry){ fields[i], 5, values[i], (size_t)vl };
	}
	char v1[KVC_WF_STATE_VER_MAX], v2[KVC_WF_STATE_VER_MAX];
	cr_assert_eq(ops->commit_state(k, ns, key, e, N, "", v1, sizeof(v1)), 0, "%s", kvs_error_last());
	kvc_wf_kube_stats s0, s1;
	kvc_wf_kube_stats_get(k, &s0);
	kvc_wf_entry c = { "01234", 5, "{\"phase\":\"Succeeded\",\"attempts\":1}", 34 };
	cr_assert_eq(ops->commit_state(k, ns, key, &c, 1, v1, v2, sizeof(v2)), 0, "%s", kvs_error_last());
	kvc_wf_kube_stats_get(k, &s1);
	uint64_t sent = s1.state_bytes_sent - s0.state_bytes_sent;
	cr_assert_eq(s1.state_commits, s0.state_commits + 1);
	cr_assert(sent > 0 && sent * 20 < s0.state_bytes_sent, "one node sent %" PRIu64 " bytes, the state %" PRIu64,
	          sent, s0.state_bytes_sent);
	char v3[KVC_WF_STATE_VER_MAX];
	cr_assert_eq(ops->state_version(k, ns, key, v3, sizeof(v3)), 0, "%s", kvs_error_last());
	cr_assert_str_eq(v3, v2);
	cr_assert_eq(ops->delete_state(k, ns, key), 0, "%s", kvs_error_last());
	kvc_wf_kube_free(k);
}

/*
 * Final node records as a long-running workflow leaves them: task i,
 * Succeeded on attempt `attempts`, with a message of `msg_len` bytes (the
 * record of a task that failed before: its message names the failure).
 * Returns the bytes (fields and values) of the records.
 */
static uint64_t final_nodes(kvc_wf_entry *e, char (*fields)[8], char **values, unsigned n, const char *wf,
                            unsigned attempts, size_t msg_len)
{
	uint64_t bytes = 0;
	char msg[KVC_WF_MESSAGE_MAX + 1];
	memset(msg, 'x', sizeof(msg));
	memcpy(msg, "attempt 1: Failed: Error: exit code 1: ", 39);
	msg[msg_len < sizeof(msg) ? msg_len : sizeof(msg) - 1] = '\0';
	for (unsigned i = 0; i < n; i++) {
		kvc_wf_node nd;
		memset(&nd, 0, sizeof(nd));
		nd.phase = KVC_WF_SUCCEEDED;
		nd.attempts = attempts;
		nd.started = 1767225600 + i;
		nd.finished = nd.started + 30;
		nd.has_exit = 1;
		if (msg_len)
			cr_assert_eq(kvc_wf_node_set_message(&nd, msg), 0);
		size_t len = 0;
		cr_assert_eq(kvc_wf_node_encode(&values[i], &len, &nd, wf, i), 0, "%s", kvs_error_last());
		free(nd.message);
		kvc_wf_field(fields[i], i);
		e[i] = (kvc_wf_entry){ fields[i], KVC_WF_FIELD_LEN, values[i], len };
		bytes += KVC_WF_FIELD_LEN + len;
	}
	return bytes;
}

/*
 * 20,000 finished tasks whose records carry a Pod name near the 253-byte
 * limit and a full message: the node status, read back through kvsplit, is
 * over 10 MB; the controller's reconcile writes the Workflow's status from
 * it, and the whole Workflow object on the server stays under 64 KiB.
 */
Test(workflow_kubeops, a_20000_task_workflow_stays_under_64k_with_over_10mb_of_node_status, .timeout = 120)
{
	apply_crd();
	const char *ns = fx_kapi_ns(srv);
	enum { N = 20000 };
	char name[KVC_WF_NAME_MAX + 1], js[1024];
	memset(name, 'w', sizeof(name));
	name[235] = '\0'; /* <name>-19999-3 is 243 characters */
	snprintf(js, sizeof(js),
	         "{\"apiVersion\":\"workflows.kvsplit.io/v1alpha1\",\"kind\":\"Workflow\","
	         "\"metadata\":{\"name\":\"%s\"},\"spec\":{\"parallelism\":{\"withCount\":%u},"
	         "\"retries\":{\"maxAttemptsPerTask\":3},"
	         "\"template\":{\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"busybox\"}]}}}}",
	         name, (unsigned)N);
	create(js);
	cJSON *wf = get_wf(name);
	kvc_wf_ident id;
	char key[512];
	cr_assert_eq(kvc_wf_ident_parse(&id, wf), 0, "%s", kvs_error_last());
	cr_assert_eq(kvc_wf_state_key(key, sizeof(key), &id), 0);

	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	kvc_wf_kube *k = NULL;
	ko.kubeconfig = fx_kapi_kubeconfig(srv);
	cr_assert_eq(kvc_wf_kube_new(&k, kube, &ko, "workflows", NULL), 0, "%s", kvs_error_last());
	static char fields[N][8];
	static char *values[N];
	static kvc_wf_entry e[N];
	uint64_t bytes = final_nodes(e, fields, values, N, name, 3, KVC_WF_MESSAGE_MAX);
	char ver[KVC_WF_STATE_VER_MAX];
	cr_assert_eq(kvc_wf_kube_ops()->commit_state(k, ns, key, e, N, "", ver, sizeof(ver)), 0, "%s",
	             kvs_error_last());
	for (unsigned i = 0; i < N; i++)
		free(values[i]);

	/* The controller's reconcile: it loads the map and writes the summary. */
	kvc_wf_reconciler *rec = NULL;
	kvc_wf_reconciler_opts ro = KVC_WF_RECONCILER_OPTS_INIT;
	kvc_wf_result res;
	cr_assert_eq(kvc_wf_reconciler_new(&rec, kvc_wf_kube_ops(), k, &ro), 0);
	for (int i = 0; i < 4; i++) {
		cJSON_Delete(wf);
		wf = get_wf(name);
		cr_assert_eq(kvc_wf_reconcile(rec, wf, &res), 0, "%s", kvs_error_last());
		if (!res.requeue && res.phase == KVC_WF_W_SUCCEEDED)
			break;
	}
	cr_assert_eq(res.created, 0);
	kvc_wf_reconciler_free(rec);
	cJSON_Delete(wf);
	wf = get_wf(name);
	cr_assert_str_eq(status_str(wf, "phase"), "Succeeded");
	cr_assert_eq(task_count(wf, "total"), N);
	cr_assert_eq(task_count(wf, "succeeded"), N);

	/* The node status through kvsplit: every record, over 10 MB. */
	unsigned *att = calloc(N, sizeof(*att));
	cr_assert_eq(check_state(wf, N, att, "big"), 3 * N);
	free(att);
	kvs_backend *be = NULL;
	kvs_store *st = NULL;
	kvs_options so = KVS_OPTIONS_INIT;
	so.name = "workflows";
	cr_assert_eq(fx_kapi_backend(&be, srv, NULL), 0);
	cr_assert_eq(kvs_open(&st, be, &so), 0);
	kvs_map_iter *mi = NULL;
	kvs_map_entry me;
	uint64_t stored = 0;
	cr_assert_eq(kvs_map_iter_open(&mi, NULL, st, key, NULL), 0, "%s", kvs_error_last());
	while (kvs_map_iter_next(&me, mi) == 0)
		stored += me.field_len + me.value_len;
	kvs_map_iter_close(mi);
	kvs_close(st);
	cr_assert_eq(stored, bytes);
	char *text = cJSON_PrintUnformatted(wf);
	cr_log_info("20,000 tasks: Workflow object %zu bytes, node status %" PRIu64 " bytes", strlen(text), stored);
	cr_assert_gt(stored, 10000000, "node status %" PRIu64 " bytes", stored);
	cr_assert_lt(strlen(text), 64 * 1024, "Workflow object %zu bytes", strlen(text));
	free(text);
	cJSON_Delete(wf);
	kvc_wf_kube_free(k);
}

/*
 * A change to one task of a 5,000-task workflow (its record as the
 * evaluation's workflows leave them: a short name, no message) sends under
 * 1% of the node status's bytes: one small delta run and the map's index.
 */
Test(workflow_kubeops, one_changed_task_of_5000_sends_under_1_percent_of_the_state)
{
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	kvc_wf_kube *k = NULL;
	ko.kubeconfig = fx_kapi_kubeconfig(srv);
	cr_assert_eq(kvc_wf_kube_new(&k, kube, &ko, "workflows", NULL), 0, "%s", kvs_error_last());
	const kvc_wf_ops *ops = kvc_wf_kube_ops();
	const char *ns = fx_kapi_ns(srv), *key = "workflow/five/uid-5";
	enum { N = 5000 };
	static char fields[N][8];
	static char *values[N];
	static kvc_wf_entry e[N];
	uint64_t bytes = final_nodes(e, fields, values, N, "five", 1, 0);
	char v1[KVC_WF_STATE_VER_MAX], v2[KVC_WF_STATE_VER_MAX];
	cr_assert_eq(ops->commit_state(k, ns, key, e, N, "", v1, sizeof(v1)), 0, "%s", kvs_error_last());
	kvc_wf_kube_stats s0, s1;
	kvc_wf_kube_stats_get(k, &s0);
	/* task 2500 finishes again on a retry: its record changes */
	char *one = NULL;
	size_t len = 0;
	kvc_wf_node nd;
	memset(&nd, 0, sizeof(nd));
	nd.phase = KVC_WF_SUCCEEDED;
	nd.attempts = 2;
	nd.started = 1767229999;
	nd.finished = 1767230042;
	nd.has_exit = 1;
	cr_assert_eq(kvc_wf_node_encode(&one, &len, &nd, "five", 2500), 0);
	kvc_wf_entry c = { fields[2500], KVC_WF_FIELD_LEN, one, len };
	cr_assert_eq(ops->commit_state(k, ns, key, &c, 1, v1, v2, sizeof(v2)), 0, "%s", kvs_error_last());
	kvc_wf_kube_stats_get(k, &s1);
	uint64_t sent = s1.state_bytes_sent - s0.state_bytes_sent;
	cr_log_info("5,000 tasks: node status %" PRIu64 " bytes, one change sent %" PRIu64 " bytes (%.3f%%)", bytes,
	            sent, 100.0 * (double)sent / (double)bytes);
	cr_assert_eq(s1.state_commits, s0.state_commits + 1);
	cr_assert(sent > 0 && sent * 100 < bytes, "one change sent %" PRIu64 " bytes of a %" PRIu64 "-byte state", sent,
	          bytes);
	/* and the change is there */
	void *val = NULL;
	size_t vlen = 0;
	kvs_backend *be = NULL;
	kvs_store *st = NULL;
	kvs_options so = KVS_OPTIONS_INIT;
	so.name = "workflows";
	cr_assert_eq(fx_kapi_backend(&be, srv, NULL), 0);
	cr_assert_eq(kvs_open(&st, be, &so), 0);
	cr_assert_eq(kvs_map_get(&val, &vlen, NULL, NULL, st, key, fields[2500], KVC_WF_FIELD_LEN, NULL), 0, "%s",
	             kvs_error_last());
	cr_assert(vlen == len && !memcmp(val, one, len));
	kvs_free(val);
	kvs_close(st);
	free(one);
	for (unsigned i = 0; i < N; i++)
		free(values[i]);
	kvc_wf_kube_free(k);
}
