/*
 * kubelet-sim — a stand-in for the kubelet, for tests and the evaluation.
 *
 * No cluster runs here and the test API server starts no containers: this
 * program watches Pods and "runs" each one that has not finished. It moves
 * a Pod to Running (status.startTime, every container running) at once, and
 * after its duration to Succeeded or Failed (every container terminated with
 * the exit code, finishedAt), through the Pod's status subresource. On a
 * real cluster the real kubelet runs the Pods; never run this there.
 *
 *   kubelet-sim [--kubeconfig PATH] [--namespace NS] [--duration DURATION]
 *               [--seed N] [--fail-rate F]
 *
 * Per Pod, in this order:
 *   duration   annotation kubelet-sim/duration ("250ms", "2s"), else --duration (200ms)
 *   exit code  annotation kubelet-sim/exit-code; else, when the first
 *              container's last command/args word is "exit N" (after the
 *              controller's ${task.*} substitution), N; else 1 with
 *              probability --fail-rate, drawn from --seed and the Pod's name
 *              (deterministic), else 0.
 *   and a "sleep S" in that last word (a shell script: "sleep 2; exit 1")
 *              sets the duration to S seconds unless the annotation does.
 *   annotation kubelet-sim/fail-attempts: N  — attempts (label
 *              workflows.kvsplit.io/attempt) up to N exit 1, later ones use
 *              the rules above (a flaky task that succeeds on a retry).
 *   message    annotation kubelet-sim/message: every container's
 *              terminated.message, whatever the exit code (what a program
 *              writes to its terminationMessagePath; up to 4096 bytes, the
 *              kubelet's limit); else none on success and a fixed text on
 *              failure.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kvsplit.h>
#include <kvsplit/kube.h>
#include <xxhash.h>

#define ANN_DURATION "kubelet-sim/duration"
#define ANN_EXIT "kubelet-sim/exit-code"
#define ANN_FAIL_ATTEMPTS "kubelet-sim/fail-attempts"
#define ANN_MESSAGE "kubelet-sim/message"
#define MESSAGE_MAX 4096 /* the kubelet reads at most 4096 bytes of a termination message */
#define LABEL_ATTEMPT "workflows.kvsplit.io/attempt"
#define PODS_MAX 200000u

typedef struct pod {
	char ns[64];
	char name[254];
	char uid[129];
	int state;          /* 0 to start, 1 running, 2 done */
	int64_t due_ms;     /* when the next transition is due */
	int64_t started_ms;
	int exit_code;
	char *message;      /* the annotation's termination message, or NULL */
	cJSON *obj;         /* the Pod as last seen (watch, or our own write's answer) */
	char containers[8][64];
	int ncontainers;
} pod;

static pod *pods;
static size_t npods, cappods;
static volatile sig_atomic_t terminate;
static int64_t default_ms = 200;
static uint64_t seed;
static double fail_rate;

static void on_signal(int sig)
{
	(void)sig;
	terminate = 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t parse_ms(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0 || v > 86400.0)
		return -1;
	if (!*end || !strcmp(end, "s"))
		return (int64_t)(v * 1000);
	if (!strcmp(end, "ms"))
		return (int64_t)v;
	if (!strcmp(end, "m"))
		return (int64_t)(v * 60000);
	return -1;
}

static const cJSON *get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *str(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(get(o, k));
}

static void fmt_time(char *buf, size_t cap, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The last word of the first container's command/args, or NULL. */
static const char *last_word(const cJSON *c)
{
	const char *last = NULL;
	const cJSON *it;
	cJSON_ArrayForEach(it, get(c, "command")) if (cJSON_IsString(it)) last = it->valuestring;
	cJSON_ArrayForEach(it, get(c, "args")) if (cJSON_IsString(it)) last = it->valuestring;
	return last;
}

/* "sleep S" in the last word: S seconds as ms, or -1. */
static int64_t sleep_from_args(const cJSON *c)
{
	const char *last = last_word(c), *p = last ? strstr(last, "sleep ") : NULL;
	if (!p)
		return -1;
	char *end;
	double v = strtod(p + 6, &end);
	if (end == p + 6 || !(v >= 0 && v <= 86400))
		return -1;
	return (int64_t)(v * 1000);
}

/* "exit N" in the last word of the first container's command/args, or -1. */
static int exit_from_args(const cJSON *c)
{
	const char *last = last_word(c);
	if (!last)
		return -1;
	const char *p = strstr(last, "exit ");
	if (!p)
		return -1;
	char *end;
	long v = strtol(p + 5, &end, 10);
	if (end == p + 5 || v < 0 || v > 255)
		return -1;
	return (int)v;
}

static pod *find(const char *ns, const char *name)
{
	for (size_t i = 0; i < npods; i++)
		if (!strcmp(pods[i].name, name) && !strcmp(pods[i].ns, ns))
			return &pods[i];
	return NULL;
}

static void drop(pod *p)
{
	free(p->message);
	cJSON_Delete(p->obj);
	*p = pods[--npods];
}

static void forget(const char *ns, const char *name)
{
	pod *p = find(ns, name);
	if (p)
		drop(p);
}

static unsigned long long rv_of(const cJSON *obj)
{
	const char *rv = str(get(obj, "metadata"), "resourceVersion");
	return rv ? strtoull(rv, NULL, 10) : 0;
}

/* Keep the newer of what we hold and `obj` (the watch may trail our own
 * write's answer): the base of the next status write. */
static void keep_newer(pod *p, const cJSON *obj)
{
	if (p->obj && rv_of(p->obj) >= rv_of(obj))
		return;
	cJSON *c = cJSON_Duplicate(obj, 1);
	if (!c)
		return;
	cJSON_Delete(p->obj);
	p->obj = c;
}

/* A Pod seen (listed or watched): track it if it is to be run. */
static void observe(const cJSON *obj)
{
	const cJSON *md = get(obj, "metadata"), *ann = get(md, "annotations"), *st = get(obj, "status");
	const char *ns = str(md, "namespace"), *name = str(md, "name"), *uid = str(md, "uid");
	const char *phase = str(st, "phase");
	if (!ns || !name || !uid || strlen(ns) >= 64 || strlen(name) >= 254 || strlen(uid) >= 129)
		return;
	if (str(md, "deletionTimestamp") || (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed")))) {
		forget(ns, name);
		return;
	}
	pod *p = find(ns, name);
	if (p && !strcmp(p->uid, uid)) {
		keep_newer(p, obj);
		return;
	}
	if (p)
		forget(ns, name);
	if (npods == cappods) {
		if (cappods >= PODS_MAX)
			return;
		size_t nc = cappods ? cappods * 2 : 256;
		pod *np = realloc(pods, nc * sizeof(*np));
		if (!np)
			return;
		pods = np, cappods = nc;
	}
	p = &pods[npods++];
	memset(p, 0, sizeof(*p));
	snprintf(p->ns, sizeof(p->ns), "%s", ns);
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->uid, sizeof(p->uid), "%s", uid);
	const cJSON *c;
	cJSON_ArrayForEach(c, get(get(obj, "spec"), "containers"))
	{
		const char *cn = str(c, "name");
		if (cn && p->ncontainers < 8)
			snprintf(p->containers[p->ncontainers++], 64, "%s", cn);
	}
	int64_t dur = default_ms;
	const char *d = str(ann, ANN_DURATION);
	const cJSON *c0 = cJSON_GetArrayItem(get(get(obj, "spec"), "containers"), 0);
	if (d && parse_ms(d) >= 0)
		dur = parse_ms(d);
	else if (sleep_from_args(c0) >= 0)
		dur = sleep_from_args(c0);
	int code = -1;
	const char *fa = str(ann, ANN_FAIL_ATTEMPTS), *att = str(get(md, "labels"), LABEL_ATTEMPT);
	if (fa && att && atol(att) <= atol(fa))
		code = 1;
	if (code < 0 && str(ann, ANN_EXIT))
		code = atoi(str(ann, ANN_EXIT));
	if (code < 0)
		code = exit_from_args(c0);
	if (code < 0) {
		/* XXH3 of "ns/name": every character, the attempt number last,
		 * moves every bit, so each attempt is drawn afresh. */
		char key[sizeof(p->ns) + sizeof(p->name) + 1];
		int kl = snprintf(key, sizeof(key), "%s/%s", p->ns, p->name);
		uint64_t h = XXH3_64bits_withSeed(key, kl > 0 ? (size_t)kl : 0, seed);
		code = (double)(h >> 11) / 9007199254740992.0 < fail_rate ? 1 : 0;
	}
	p->exit_code = code;
	p->obj = cJSON_Duplicate(obj, 1);
	const char *msg = str(ann, ANN_MESSAGE);
	if (msg)
		p->message = strndup(msg, MESSAGE_MAX);
	p->started_ms = 0;
	p->due_ms = dur; /* relative until it starts */
	if (phase && !strcmp(phase, "Running")) {
		p->state = 1;
		p->started_ms = now_ms();
		p->due_ms = p->started_ms + dur;
	}
}

/* The status of `p` now: Running, or terminated with its exit code. */
static cJSON *status_of(const pod *p, int final)
{
	char t0[32], t1[32];
	fmt_time(t0, sizeof(t0), p->started_ms);
	fmt_time(t1, sizeof(t1), now_ms());
	cJSON *st = cJSON_CreateObject();
	cJSON_AddStringToObject(st, "phase", !final ? "Running" : p->exit_code ? "Failed" : "Succeeded");
	cJSON_AddStringToObject(st, "startTime", t0);
	cJSON *css = cJSON_AddArrayToObject(st, "containerStatuses");
	for (int i = 0; i < (p->ncontainers ? p->ncontainers : 1); i++) {
		cJSON *cs = cJSON_CreateObject(), *state;
		cJSON_AddItemToArray(css, cs);
		cJSON_AddStringToObject(cs, "name", p->ncontainers ? p->containers[i] : "main");
		cJSON_AddBoolToObject(cs, "ready", !final);
		cJSON_AddNumberToObject(cs, "restartCount", 0);
		state = cJSON_AddObjectToObject(cs, "state");
		if (!final) {
			cJSON_AddStringToObject(cJSON_AddObjectToObject(state, "running"), "startedAt", t0);
		} else {
			cJSON *term = cJSON_AddObjectToObject(state, "terminated");
			cJSON_AddNumberToObject(term, "exitCode", p->exit_code);
			cJSON_AddStringToObject(term, "reason", p->exit_code ? "Error" : "Completed");
			if (p->message)
				cJSON_AddStringToObject(term, "message", p->message);
			else if (p->exit_code)
				cJSON_AddStringToObject(term, "message", "kubelet-sim: exit code from the Pod");
			cJSON_AddStringToObject(term, "startedAt", t0);
			cJSON_AddStringToObject(term, "finishedAt", t1);
		}
	}
	return st;
}

/*
 * A status write replaces labels and annotations too (the Pod status
 * strategy keeps only spec and ownerReferences), as the kubelet's does:
 * read the Pod, set its status, write it back conditional on its
 * resourceVersion, again on a conflict.
 */
static int put_status(kvs_kube *kube, pod *p, int final)
{
	int rc = KVS_ECONFLICT;
	for (int attempt = 0; attempt < 5 && rc == KVS_ECONFLICT; attempt++) {
		cJSON *o = NULL;
		if ((rc = kvs_kube_get(&o, kube, &kvs_kube_pods, p->ns, p->name, NULL, NULL)) < 0)
			return rc;
		const char *uid = str(get(o, "metadata"), "uid");
		if (!uid || strcmp(uid, p->uid)) {
			cJSON_Delete(o);
			return KVS_ENOTFOUND; /* another Pod of that name */
		}
		cJSON_DeleteItemFromObjectCaseSensitive(o, "status");
		cJSON_AddItemToObject(o, "status", status_of(p, final));
		rc = kvs_kube_update_status(NULL, kube, &kvs_kube_pods, p->ns, o, NULL);
		cJSON_Delete(o);
	}
	return rc;
}

/*
 * Run what is due; the wait until the next due transition, ms. The due
 * status writes go out together (kvs_kube_run, the client's concurrency),
 * each on the Pod as last seen and conditional on its resourceVersion, as
 * the kubelet's status manager writes many Pods at once; one that meets a
 * conflict is read again and written alone (put_status).
 */
#define BATCH_MAX 256

static int64_t run_due(kvs_kube *kube)
{
	int64_t now = now_ms(), next = 1000;
	kvs_kube_request rq[BATCH_MAX];
	char *bodies[BATCH_MAX];
	size_t idx[BATCH_MAX], n = 0;
	int final[BATCH_MAX];

	for (size_t i = 0; i < npods && n < BATCH_MAX; i++) {
		pod *p = &pods[i];
		int fin;
		if (p->state == 0) {
			p->started_ms = now;
			p->state = 1;
			p->due_ms = now + p->due_ms;
			fin = 0;
		} else if (p->state == 1 && p->due_ms <= now) {
			fin = 1;
		} else {
			continue;
		}
		cJSON *o = p->obj ? cJSON_Duplicate(p->obj, 1) : NULL;
		if (!o)
			continue; /* no base: put_status below reads one */
		cJSON_DeleteItemFromObjectCaseSensitive(o, "status");
		cJSON_AddItemToObject(o, "status", status_of(p, fin));
		bodies[n] = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		if (!bodies[n])
			continue;
		rq[n] = (kvs_kube_request)KVS_KUBE_REQUEST_INIT;
		rq[n].verb = KVS_KUBE_VERB_UPDATE;
		rq[n].resource = &kvs_kube_pods;
		rq[n].ns = p->ns;
		rq[n].name = p->name;
		rq[n].subresource = "status";
		rq[n].body = bodies[n];
		rq[n].body_len = strlen(bodies[n]);
		rq[n].what = "pod status";
		idx[n] = i;
		final[n] = fin;
		n++;
	}
	int rc = n ? kvs_kube_run(kube, rq, n) : 0;
	for (size_t j = 0; j < n; j++) {
		pod *p = &pods[idx[j]];
		int r = rc < 0 ? rc : rq[j].result;
		if (r == 0) {
			cJSON *answer = NULL;
			if (kvs_kube_parse(&answer, rq[j].response, rq[j].response_len, 0) == 0)
				keep_newer(p, answer);
			cJSON_Delete(answer);
		} else if (r == KVS_ECONFLICT) {
			r = put_status(kube, p, final[j]);
		}
		if (final[j]) {
			if (r == 0 || r == KVS_ENOTFOUND)
				p->state = 2; /* done: dropped below */
			else
				p->due_ms = now + 200; /* retry */
		}
		/* A failed Running update is not retried: the final one follows. */
		kvs_kube_request_clear(&rq[j]);
		free(bodies[j]);
	}
	for (size_t i = 0; i < npods;) {
		pod *p = &pods[i];
		if (p->state == 2) {
			printf("pod %s/%s exit=%d\n", p->ns, p->name, p->exit_code);
			drop(p);
			continue;
		}
		if (p->state == 0 || (p->state == 1 && p->due_ms <= now))
			next = 0; /* more than a batch was due */
		else if (p->state == 1 && p->due_ms - now < next)
			next = p->due_ms - now;
		i++;
	}
	fflush(stdout);
	return next < 5 ? (next == 0 ? 0 : 5) : next;
}

int main(int argc, char **argv)
{
	const char *kubeconfig = NULL, *ns = NULL;
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--kubeconfig") && v)
			kubeconfig = v;
		else if (!strcmp(a, "--namespace") && v)
			ns = v;
		else if (!strcmp(a, "--duration") && v)
			default_ms = parse_ms(v);
		else if (!strcmp(a, "--seed") && v)
			seed = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--fail-rate") && v)
			fail_rate = strtod(v, NULL);
		else {
			fprintf(stderr, "usage: kubelet-sim [--kubeconfig PATH] [--namespace NS] "
			                "[--duration DURATION] [--seed N] [--fail-rate F]\n");
			return 2;
		}
	}
	if (default_ms < 0 || fail_rate < 0 || fail_rate > 1) {
		fprintf(stderr, "kubelet-sim: bad --duration or --fail-rate (0..1)\n");
		return 2;
	}
	kvs_kube *kube;
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	ko.kubeconfig = kubeconfig;
	ko.qps = 2000;
	ko.burst = 4000;
	ko.concurrency = 16;
	if (kvs_kube_open(&kube, &ko) < 0) {
		fprintf(stderr, "kubelet-sim: %s\n", kvs_error_last());
		return 1;
	}
	const char *wns = ns ? ns : KVS_KUBE_ALL_NAMESPACES;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("kubelet-sim: a stand-in for the kubelet (test use only), namespace %s\n", *wns ? wns : "(all)");
	fflush(stdout);
	char rv[64] = "";
	while (!terminate) {
		kvs_kube_page *pg = NULL;
		if (!rv[0]) {
			while (npods)
				drop(&pods[npods - 1]);
			if (kvs_kube_list(&pg, kube, &kvs_kube_pods, wns, NULL, NULL) < 0) {
				fprintf(stderr, "kubelet-sim: list: %s\n", kvs_error_last());
				struct timespec ts = { 0, 500000000 };
				nanosleep(&ts, NULL);
				continue;
			}
			const cJSON *it;
			cJSON_ArrayForEach(it, pg->items) observe(it);
			snprintf(rv, sizeof(rv), "%s", pg->resource_version);
			kvs_kube_page_free(pg);
		}
		kvs_kube_watch *w = NULL;
		kvs_kube_watch_options wo = KVS_KUBE_WATCH_OPTIONS_INIT;
		wo.resource_version = rv;
		int rc = kvs_kube_watch_open(&w, kube, &kvs_kube_pods, wns, &wo, NULL);
		if (rc < 0) {
			rv[0] = '\0';
			continue;
		}
		while (!terminate) {
			int64_t wait = run_due(kube);
			/* Every event already there before the next round, so that
			 * what became due together is written together. */
			for (unsigned k = 0; !terminate && k < 4096; k++) {
				kvs_kube_event ev;
				rc = kvs_kube_watch_next(&ev, w, k == 0 ? (int)wait : 0, NULL);
				if (rc < 0)
					break;
				if (ev.resource_version && strlen(ev.resource_version) < sizeof(rv))
					snprintf(rv, sizeof(rv), "%s", ev.resource_version);
				if (ev.type == KVS_KUBE_ADDED || ev.type == KVS_KUBE_MODIFIED)
					observe(ev.object);
				else if (ev.type == KVS_KUBE_DELETED) {
					const cJSON *md = get(ev.object, "metadata");
					if (str(md, "namespace") && str(md, "name"))
						forget(str(md, "namespace"), str(md, "name"));
				}
				kvs_kube_event_clear(&ev);
			}
			if (rc == KVS_ETIMEOUT)
				rc = 0;
			if (rc < 0)
				break;
		}
		kvs_kube_watch_close(w);
		if (rc == KVS_EGONE)
			rv[0] = '\0';
	}
	kvs_kube_free(kube);
	while (npods)
		drop(&pods[npods - 1]);
	free(pods);
	return 0;
}
