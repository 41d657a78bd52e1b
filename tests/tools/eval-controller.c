/*
 * eval-controller — the workflow controller's evaluation (make
 * eval-controller; docs/controller.md, "Evaluation"). Printed, not a unit
 * test: it exits 1 when a check fails.
 *
 * Starts build/kapi-server, build/kubelet-sim and build/kvsplit-controller
 * replicas; submits workflows of mixed shapes (withCount / withKeys /
 * withMatrix, AllSuccessful / AnySuccessful, WaitForRemaining /
 * TerminateRemaining, 1-3 attempts, flaky first attempts and a seeded fail
 * rate); scales the replicas 1 -> 4 -> 2 while they run, kill -9s one and
 * restarts it under its identity (as a StatefulSet would); then checks:
 *
 *   complete   every workflow is final, its node map (read through kvsplit
 *              at stateRef.key) holds every task, final, its version is
 *              stateRef.version, its hash stateRef.hash, its counts the
 *              summary's, its phase what the completion policy says;
 *   one Pod    a watch opened before the first workflow saw each Pod
 *              <wf>-<index>-<attempt> ADDED exactly once, for exactly the
 *              attempts the node map records, with matching labels;
 *   terms      from the replicas' reconcile log lines, for each workflow,
 *              the intervals [first start, last end] of each (replica,
 *              epoch) are disjoint and epochs increase with time.
 *
 *   eval-controller [--workflows N] [--min-tasks N] [--max-tasks N]
 *                   [--big N] [--big-tasks N] [--concurrency N]
 *                   [--duration MS] [--fail-rate F] [--timeout S] [--keep]
 *
 * The defaults are the size: 100 workflows of 50-2,000 tasks and
 * two of 20,000 (whose node status is over 10 MB), 10 Pods at once each
 * (100 for the big ones), 100 ms tasks, a 900 s limit.
 *
 * KVS_BUILD names the build directory (default build), KVS_SRC the source
 * tree (for deploy/workflow-crd.yaml).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "kvsplit.h"
#include "kvsplit/kube.h"
#include "controller/workflow/kubeops.h"
#include "controller/workflow/node.h"
#include "controller/workflow/spec.h"
#include "support/fixture_kube.h"

#define REPLICAS 4
#define WF_MAX 2000

static fx_kapi *srv;
static kvs_kube *kube;
static char dir[200];
static const char *ns;
static int failures;

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

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "eval-controller: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (logs in %s)\n", dir);
	va_end(ap);
	exit(2);
}

/* A failed check: printed, counted, the run goes on (up to a few lines). */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	if (++failures > 20)
		return;
	va_start(ap, fmt);
	printf("FAIL: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	size_t n = 0, cap = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (n + 65536 + 1 > cap) {
			cap = cap ? cap * 2 : 1 << 20;
			char *q = realloc(p, cap);
			if (!q)
				die("out of memory");
			p = q;
		}
		size_t r = fread(p + n, 1, 65536, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	p[n] = '\0';
	if (len)
		*len = n;
	return p;
}

/* ---- processes ------------------------------------------------------------------ */

static pid_t spawn(const char *prog, const char *log, const char *const *args)
{
	char exe[PATH_MAX], path[PATH_MAX];
	const char *argv[32];
	int n = 0;
	snprintf(exe, sizeof(exe), "%s/%s", build_dir(), prog);
	snprintf(path, sizeof(path), "%s/%s", dir, log);
	argv[n++] = exe;
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd < 0)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

typedef struct replica {
	char id[8];
	pid_t pid;         /* 0: not running */
	double started;    /* when its current process started */
	double alive_s;    /* seconds run, over its processes */
	unsigned port;     /* metrics port of the current process, 0 unknown */
	double bytes_sent; /* state bytes sent: earlier processes + the last scrape */
	double bytes_prev; /* of earlier processes */
	long peak_rss_kb;
	size_t log_seen;   /* bytes of the log parsed for the port */
} replica;

static replica reps[REPLICAS];
static pid_t sim_pid;
static double lease_s = 3;

static void start_replica(unsigned i)
{
	replica *r = &reps[i];
	char log[32], ld[16];
	snprintf(log, sizeof(log), "%s.log", r->id);
	snprintf(ld, sizeof(ld), "%gs", lease_s);
	const char *args[] = { "--kubeconfig", fx_kapi_kubeconfig(srv), "--namespace", ns, "--identity", r->id,
		               "--lease-duration", ld, "--resync", "5s", "--workers", "4", "--qps", "2000",
		               "--metrics-addr", "127.0.0.1:0", NULL };
	char path[PATH_MAX];
	size_t len = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, log);
	char *old = slurp(path, &len);
	free(old);
	r->log_seen = old ? len : 0; /* the port of this process is in what follows */
	r->port = 0;
	r->bytes_prev = r->bytes_sent;
	r->pid = spawn("kvsplit-controller", log, args);
	r->started = now_s();
}

static void sample_rss(replica *r)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)r->pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6)) {
			long kb = strtol(line + 6, NULL, 10);
			if (kb > r->peak_rss_kb)
				r->peak_rss_kb = kb;
		}
	fclose(f);
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	char **buf = ud;
	size_t old = *buf ? strlen(*buf) : 0, add = sz * n;
	if (old + add > (4u << 20))
		return 0;
	char *q = realloc(*buf, old + add + 1);
	if (!q)
		return 0;
	memcpy(q + old, p, add);
	q[old + add] = '\0';
	*buf = q;
	return add;
}

/* Scrape the replica's state bytes sent (kvsplit_workflow_state_bytes_sent_total). */
static void scrape(replica *r)
{
	if (!r->pid)
		return;
	if (!r->port) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s.log", dir, r->id);
		char *t = slurp(path, NULL);
		const char *p = t ? strstr(t + r->log_seen, "metrics_port=") : NULL;
		if (p)
			r->port = (unsigned)strtoul(p + 13, NULL, 10);
		free(t);
		if (!r->port)
			return;
	}
	char url[64], *body = NULL;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", r->port);
	CURL *c = curl_easy_init();
	if (!c)
		return;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	if (curl_easy_perform(c) == CURLE_OK && body) {
		const char *p = strstr(body, "\nkvsplit_workflow_state_bytes_sent_total ");
		if (p)
			r->bytes_sent = r->bytes_prev + strtod(p + 42, NULL);
	}
	curl_easy_cleanup(c);
	free(body);
}

static void stop_replica(unsigned i, int sig)
{
	replica *r = &reps[i];
	int st = 0;
	sample_rss(r);
	if (sig == SIGTERM)
		scrape(r);
	kill(r->pid, sig);
	while (waitpid(r->pid, &st, 0) < 0 && errno == EINTR)
		;
	if (sig == SIGTERM && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		fail("%s did not exit 0 on SIGTERM (status %d)", r->id, st);
	r->alive_s += now_s() - r->started;
	r->pid = 0;
}

/* ---- the Pod recorder: every Pod ADDED, by name ---------------------------------- */

typedef struct podrec {
	char *name;
	unsigned adds;
	int attempt_label;
	char wf_label[64];
	char phase;      /* last status.phase seen: 0 none, 'R', 'S' Succeeded, 'F' Failed */
} podrec;

static struct {
	pthread_t th;
	pthread_mutex_t mu;
	int stop, ready;
	podrec *tab;
	size_t cap, n;
	unsigned gone;   /* the watch broke with 410: records may be incomplete */
	unsigned events;
} rec = { .mu = PTHREAD_MUTEX_INITIALIZER };

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static podrec *rec_slot(const char *name, int insert)
{
	if (insert && (rec.n + 1) * 2 > rec.cap) {
		size_t nc = rec.cap ? rec.cap * 2 : 1 << 16;
		podrec *nt = calloc(nc, sizeof(*nt));
		if (!nt)
			die("out of memory");
		for (size_t i = 0; i < rec.cap; i++)
			if (rec.tab[i].name) {
				size_t j = fnv(rec.tab[i].name) & (nc - 1);
				while (nt[j].name)
					j = (j + 1) & (nc - 1);
				nt[j] = rec.tab[i];
			}
		free(rec.tab);
		rec.tab = nt;
		rec.cap = nc;
	}
	if (!rec.cap)
		return NULL;
	size_t j = fnv(name) & (rec.cap - 1);
	while (rec.tab[j].name) {
		if (!strcmp(rec.tab[j].name, name))
			return &rec.tab[j];
		j = (j + 1) & (rec.cap - 1);
	}
	if (!insert)
		return NULL;
	rec.tab[j].name = strdup(name);
	rec.n++;
	return &rec.tab[j];
}

static const cJSON *get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *str(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(get(o, k));
}

static void *recorder(void *arg)
{
	(void)arg;
	kvs_kube_watch *w = NULL;
	kvs_kube_watch_options wo = KVS_KUBE_WATCH_OPTIONS_INIT;
	char rv[64] = "";
	kvs_kube_page *pg = NULL;
	if (kvs_kube_list(&pg, kube, &kvs_kube_pods, ns, NULL, NULL) < 0)
		die("list pods: %s", kvs_error_last());
	snprintf(rv, sizeof(rv), "%s", pg->resource_version);
	kvs_kube_page_free(pg);
	while (!rec.stop) {
		wo.resource_version = rv;
		int orc = kvs_kube_watch_open(&w, kube, &kvs_kube_pods, ns, &wo, NULL);
		if (orc == KVS_EGONE) {
			rec.gone++;
			return NULL;
		}
		if (orc < 0) {
			sleep_s(0.1);
			continue;
		}
		__atomic_store_n(&rec.ready, 1, __ATOMIC_SEQ_CST);
		while (!rec.stop) {
			kvs_kube_event ev;
			int rc = kvs_kube_watch_next(&ev, w, 100, NULL);
			if (rc == KVS_ETIMEOUT)
				continue;
			if (rc == KVS_EGONE) {
				rec.gone++;
				rec.stop = 1;
			}
			if (rc < 0)
				break;
			if (ev.resource_version && strlen(ev.resource_version) < sizeof(rv))
				snprintf(rv, sizeof(rv), "%s", ev.resource_version);
			const cJSON *md = get(ev.object, "metadata"), *lb = get(md, "labels");
			const char *name = str(md, "name");
			if (ev.type == KVS_KUBE_ADDED && name) {
				pthread_mutex_lock(&rec.mu);
				podrec *p = rec_slot(name, 1);
				p->adds++;
				const char *a = str(lb, KVC_WF_LABEL_ATTEMPT), *wn = str(lb, KVC_WF_LABEL_NAME);
				p->attempt_label = a ? atoi(a) : -1;
				snprintf(p->wf_label, sizeof(p->wf_label), "%s", wn ? wn : "");
				rec.events++;
				pthread_mutex_unlock(&rec.mu);
			} else if (ev.type == KVS_KUBE_MODIFIED && name) {
				const char *ph = str(get(ev.object, "status"), "phase");
				pthread_mutex_lock(&rec.mu);
				podrec *p = rec_slot(name, 0);
				if (p && ph)
					p->phase = !strcmp(ph, "Succeeded") ? 'S' : !strcmp(ph, "Failed") ? 'F' : 'R';
				pthread_mutex_unlock(&rec.mu);
			}
			kvs_kube_event_clear(&ev);
		}
		kvs_kube_watch_close(w);
	}
	return NULL;
}

/* ---- workflows -------------------------------------------------------------------- */

typedef enum { K_COUNT, K_KEYS, K_MATRIX } kind;

typedef struct wfspec {
	char name[KVC_WF_NAME_MAX + 1];
	kind k;
	unsigned tasks, attempts, conc;
	int any, terminate, flaky;
	const char *result;          /* every Pod's termination message (kubelet-sim/message), or NULL */
	/* results */
	int done;
	double finished;
	unsigned att_total, retried; /* attempts; tasks with more than one */
	uint64_t state_bytes;
} wfspec;

static wfspec wfs[WF_MAX];
static unsigned nwf;

/* The Workflow's JSON: the parallelism of its kind over `tasks` tasks. */
static char *wf_json(const wfspec *w, unsigned duration_ms)
{
	cJSON *o = cJSON_CreateObject(), *md, *spec, *par, *tmpl, *ann, *c;
	cJSON_AddStringToObject(o, "apiVersion", "workflows.kvsplit.io/v1alpha1");
	cJSON_AddStringToObject(o, "kind", "Workflow");
	md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", w->name);
	spec = cJSON_AddObjectToObject(o, "spec");
	par = cJSON_AddObjectToObject(spec, "parallelism");
	if (w->k == K_COUNT) {
		cJSON_AddNumberToObject(par, "withCount", w->tasks);
	} else if (w->k == K_KEYS) {
		cJSON *keys = cJSON_AddArrayToObject(par, "withKeys");
		for (unsigned i = 0; i < w->tasks; i++) {
			char k[32];
			snprintf(k, sizeof(k), "key-%u", i * 7919u);
			cJSON_AddItemToArray(keys, cJSON_CreateString(k));
		}
	} else {
		/* tasks = a * b: the largest divisor a <= sqrt(tasks) */
		unsigned a = 1;
		for (unsigned d = 1; d * d <= w->tasks; d++)
			if (w->tasks % d == 0)
				a = d;
		cJSON *m = cJSON_AddObjectToObject(par, "withMatrix");
		cJSON *x = cJSON_AddArrayToObject(m, "shard"), *y = cJSON_AddArrayToObject(m, "part");
		for (unsigned i = 0; i < a; i++) {
			char v[16];
			snprintf(v, sizeof(v), "s%u", i);
			cJSON_AddItemToArray(x, cJSON_CreateString(v));
		}
		for (unsigned i = 0; i < w->tasks / a; i++) {
			char v[16];
			snprintf(v, sizeof(v), "p%u", i);
			cJSON_AddItemToArray(y, cJSON_CreateString(v));
		}
	}
	cJSON_AddNumberToObject(spec, "maxConcurrency", w->conc);
	cJSON_AddNumberToObject(cJSON_AddObjectToObject(spec, "retries"), "maxAttemptsPerTask", w->attempts);
	cJSON *comp = cJSON_AddObjectToObject(spec, "completion");
	cJSON_AddStringToObject(comp, "strategy", w->any ? "AnySuccessful" : "AllSuccessful");
	cJSON_AddStringToObject(comp, "onComplete", w->terminate ? "TerminateRemaining" : "WaitForRemaining");
	tmpl = cJSON_AddObjectToObject(spec, "template");
	ann = cJSON_AddObjectToObject(cJSON_AddObjectToObject(tmpl, "metadata"), "annotations");
	char d[32];
	snprintf(d, sizeof(d), "%ums", duration_ms);
	cJSON_AddStringToObject(ann, "kubelet-sim/duration", d);
	if (w->flaky)
		cJSON_AddStringToObject(ann, "kubelet-sim/fail-attempts", "1");
	if (w->result)
		cJSON_AddStringToObject(ann, "kubelet-sim/message", w->result);
	c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "name", "main");
	cJSON_AddStringToObject(c, "image", "busybox");
	cJSON *args = cJSON_AddArrayToObject(c, "args");
	cJSON_AddItemToArray(args, cJSON_CreateString("task"));
	cJSON_AddItemToArray(args, cJSON_CreateString(w->k == K_KEYS     ? "${task.key}"
	                                              : w->k == K_MATRIX ? "${task.matrix.shard}/${task.matrix.part}"
	                                                                 : "${task.index}"));
	cJSON *cs = cJSON_AddArrayToObject(cJSON_AddObjectToObject(tmpl, "spec"), "containers");
	cJSON_AddItemToArray(cs, c);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

static void apply_crd(void)
{
	char cmd[PATH_MAX * 3], crd[PATH_MAX];
	const char *src = getenv("KVS_SRC");
	snprintf(crd, sizeof(crd), "%s/deploy/workflow-crd.yaml", src && *src ? src : ".");
	snprintf(cmd, sizeof(cmd), "kubectl --kubeconfig '%s' apply --validate=false -f '%s' > '%s/kubectl.log' 2>&1",
	         fx_kapi_kubeconfig(srv), crd, dir);
	if (system(cmd) != 0)
		die("kubectl apply of %s failed", crd);
	for (int i = 0; i < 100; i++) {
		kvs_kube_page *pg = NULL;
		if (kvs_kube_list(&pg, kube, &kvc_wf_workflows, ns, NULL, NULL) == 0) {
			kvs_kube_page_free(pg);
			return;
		}
		sleep_s(0.05);
	}
	die("workflows are not served after the CRD was applied");
}

/* Progress over all workflows: final tasks, and workflows final. */
static void progress(unsigned *tasks_final, unsigned *wf_final)
{
	kvs_kube_page *pg = NULL;
	*tasks_final = *wf_final = 0;
	if (kvs_kube_list(&pg, kube, &kvc_wf_workflows, ns, NULL, NULL) < 0)
		return;
	const cJSON *it;
	cJSON_ArrayForEach(it, pg->items)
	{
		const cJSON *st = get(it, "status"), *t = get(st, "tasks");
		const char *ph = str(st, "phase"), *name = str(get(it, "metadata"), "name");
		unsigned fin = 0;
		const char *ks[] = { "succeeded", "failed", "skipped" };
		for (int i = 0; i < 3; i++)
			if (cJSON_IsNumber(get(t, ks[i])))
				fin += (unsigned)get(t, ks[i])->valueint;
		*tasks_final += fin;
		if (ph && (!strcmp(ph, "Succeeded") || !strcmp(ph, "Failed"))) {
			(*wf_final)++;
			for (unsigned i = 0; i < nwf && name; i++)
				if (!wfs[i].done && !strcmp(wfs[i].name, name)) {
					wfs[i].done = 1;
					wfs[i].finished = now_s();
				}
		}
	}
	kvs_kube_page_free(pg);
}

/* ---- checks ------------------------------------------------------------------------ */

/* The node map through kvsplit against the Workflow's status and its policy. */
static void check_workflow(wfspec *w, kvs_store *st)
{
	cJSON *o = NULL;
	if (kvs_kube_get(&o, kube, &kvc_wf_workflows, ns, w->name, NULL, NULL) < 0) {
		fail("%s: get: %s", w->name, kvs_error_last());
		return;
	}
	const cJSON *status = get(o, "status"), *ref = get(status, "stateRef"), *t = get(status, "tasks");
	const char *phase = str(status, "phase"), *key = str(ref, "key"), *ver = str(ref, "version"),
	           *hash = str(ref, "hash");
	if (!phase || (strcmp(phase, "Succeeded") && strcmp(phase, "Failed"))) {
		fail("%s: not final (phase %s, progress %s)", w->name, phase ? phase : "-",
		     str(status, "progress") ? str(status, "progress") : "-");
		cJSON_Delete(o);
		return;
	}
	if (!key || !ver || !hash) {
		fail("%s: stateRef incomplete", w->name);
		cJSON_Delete(o);
		return;
	}
	kvs_map_iter *mi = NULL;
	kvs_map_entry e;
	kvs_ver v;
	int rc;
	if (kvs_map_iter_open(&mi, &v, st, key, NULL) < 0) {
		fail("%s: map %s: %s", w->name, key, kvs_error_last());
		cJSON_Delete(o);
		return;
	}
	if (strcmp(v.str, ver))
		fail("%s: stateRef.version %s, stored %s", w->name, ver, v.str);
	uint64_t sum = 0, bytes = 0;
	unsigned n = 0, ph[5] = { 0 };
	unsigned *att = calloc(w->tasks, sizeof(*att));
	unsigned char *fin = calloc(w->tasks, 1); /* the node's phase */
	while ((rc = kvs_map_iter_next(&e, mi)) == 0) {
		int64_t idx = kvc_wf_field_index(e.field, e.field_len, w->tasks);
		kvc_wf_node nd;
		if (idx < 0 || !e.is_json || att[idx]) {
			fail("%s: bad field %.*s", w->name, (int)e.field_len, (const char *)e.field);
			continue;
		}
		sum += kvc_wf_entry_hash(e.field, e.field_len, e.value, e.value_len);
		bytes += e.field_len + e.value_len;
		if (kvc_wf_node_decode(&nd, e.value, e.value_len, w->attempts) < 0) {
			fail("%s: node %" PRId64 ": %s", w->name, idx, kvs_error_last());
			continue;
		}
		if (!kvc_wf_phase_final(nd.phase))
			fail("%s: task %" PRId64 " is %s in a final workflow", w->name, idx, kvc_wf_phase_name(nd.phase));
		if (nd.phase == KVC_WF_FAILED && nd.attempts != w->attempts)
			fail("%s: task %" PRId64 " Failed after %u of %u attempts", w->name, idx, nd.attempts, w->attempts);
		if (nd.phase == KVC_WF_SUCCEEDED && nd.attempts == 0)
			fail("%s: task %" PRId64 " Succeeded without an attempt", w->name, idx);
		att[idx] = nd.attempts ? nd.attempts : UINT_MAX; /* UINT_MAX: seen, never tried */
		w->retried += nd.attempts > 1;
		fin[idx] = (unsigned char)nd.phase;
		ph[nd.phase]++;
		free(nd.message);
		n++;
	}
	kvs_map_iter_close(mi);
	if (rc != KVS_EITER_DONE)
		fail("%s: map iteration: %s", w->name, kvs_error_last());
	char want[40];
	snprintf(want, sizeof(want), "xxh3sum:%016" PRIx64, sum);
	if (strcmp(hash, want))
		fail("%s: stateRef.hash %s, the map's %s", w->name, hash, want);
	if (n != w->tasks)
		fail("%s: %u nodes stored of %u", w->name, n, w->tasks);
	const char *ks[] = { "succeeded", "failed", "skipped", "total" };
	unsigned wantn[] = { ph[KVC_WF_SUCCEEDED], ph[KVC_WF_FAILED], ph[KVC_WF_SKIPPED], w->tasks };
	for (int i = 0; i < 4; i++)
		if (!cJSON_IsNumber(get(t, ks[i])) || (unsigned)get(t, ks[i])->valueint != wantn[i])
			fail("%s: status.tasks.%s is not %u", w->name, ks[i], wantn[i]);
	/* The phase the completion policy says. */
	const char *expect = w->any ? (ph[KVC_WF_SUCCEEDED] ? "Succeeded" : "Failed")
	                            : (ph[KVC_WF_FAILED] || ph[KVC_WF_SUCCEEDED] != w->tasks ? "Failed" : "Succeeded");
	if (strcmp(phase, expect))
		fail("%s: phase %s, the policy says %s (%u succeeded, %u failed, %u skipped)", w->name, phase, expect,
		     ph[KVC_WF_SUCCEEDED], ph[KVC_WF_FAILED], ph[KVC_WF_SKIPPED]);
	if (ph[KVC_WF_SKIPPED] && !w->any && !ph[KVC_WF_FAILED])
		fail("%s: tasks skipped though no task failed", w->name);
	if (ph[KVC_WF_SKIPPED] && w->any && !ph[KVC_WF_SUCCEEDED])
		fail("%s: tasks skipped though no task succeeded", w->name);

	/* One Pod per recorded attempt, by name and labels; none beyond. */
	unsigned total = 0;
	pthread_mutex_lock(&rec.mu);
	for (unsigned i = 0; i < w->tasks; i++) {
		unsigned a = att[i] == UINT_MAX ? 0 : att[i];
		for (unsigned k = 1; k <= a + 1; k++) {
			char name[KVC_WF_NAME_MAX + 32];
			snprintf(name, sizeof(name), "%.*s-%u-%u", (int)KVC_WF_NAME_MAX, w->name, i, k);
			podrec *p = rec_slot(name, 0);
			if (k == a + 1) {
				if (p)
					fail("%s: Pod %s exists beyond the %u recorded attempts", w->name, name, a);
				continue;
			}
			if (!p || p->adds != 1)
				fail("%s: Pod %s created %u times", w->name, name, p ? p->adds : 0);
			else if (p->attempt_label != (int)k || strcmp(p->wf_label, strlen(w->name) <= 63 ? w->name : ""))
				fail("%s: Pod %s labels attempt=%d workflow=%s", w->name, name, p->attempt_label, p->wf_label);
			/* No result lost: an attempt given up on did not succeed; a
			 * Succeeded task's last Pod succeeded, a Failed one's failed. */
			else if (k < a && p->phase == 'S')
				fail("%s: Pod %s Succeeded, yet the task went on to attempt %u", w->name, name, a);
			else if (k == a && fin[i] == KVC_WF_SUCCEEDED && p->phase != 'S')
				fail("%s: task %u Succeeded, its Pod %s ended '%c'", w->name, i, name, p->phase ? p->phase : '-');
			else if (k == a && fin[i] == KVC_WF_FAILED && p->phase != 'F')
				fail("%s: task %u Failed, its Pod %s ended '%c'", w->name, i, name, p->phase ? p->phase : '-');
		}
		total += a;
	}
	pthread_mutex_unlock(&rec.mu);
	w->att_total = total;
	w->state_bytes = bytes;
	free(att);
	free(fin);
	cJSON_Delete(o);
}

/* One reconcile line of a replica's log. */
typedef struct recon {
	unsigned wf, rep;
	uint64_t epoch;
	double start, end;
} recon;

static int by_wf_start(const void *a, const void *b)
{
	const recon *x = a, *y = b;
	if (x->wf != y->wf)
		return x->wf < y->wf ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

static int wf_by_name(const char *name, size_t len)
{
	for (unsigned i = 0; i < nwf; i++)
		if (strlen(wfs[i].name) == len && !memcmp(wfs[i].name, name, len))
			return (int)i;
	return -1;
}

typedef struct term {
	unsigned rep;
	uint64_t epoch;
	double start, end;
} term;

static int by_term_start(const void *a, const void *b)
{
	const term *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * Terms: per workflow, group its reconciles into (replica, epoch) terms
 * [first start, last end]; no two overlap, and epochs rise with time.
 * Also counts reconciles per replica and handoffs (consecutive reconciles of
 * a workflow by different replicas).
 */
static unsigned long commits;

static void check_terms(unsigned long *per_rep, unsigned *handoffs, unsigned *terms_out)
{
	recon *rs = NULL;
	size_t n = 0, cap = 0;
	char want[128];
	snprintf(want, sizeof(want), " object=%s/", ns);
	for (unsigned r = 0; r < REPLICAS; r++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s.log", dir, reps[r].id);
		char *text = slurp(path, NULL), *save = NULL;
		per_rep[r] = 0;
		if (!text)
			continue;
		for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			const char *ob = strstr(line, want), *ep = strstr(line, " epoch="), *st = strstr(line, " start="),
			           *du = strstr(line, " dur_us=");
			if (!strstr(line, "event=reconcile") || !ob || !ep || !st || !du)
				continue;
			ob += strlen(want);
			int wi = wf_by_name(ob, strcspn(ob, " "));
			if (wi < 0)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 65536;
				rs = realloc(rs, cap * sizeof(*rs));
				if (!rs)
					die("out of memory");
			}
			const char *co = strstr(line, " committed=");
			commits += co && strtoul(co + 11, NULL, 10) > 0;
			rs[n].wf = (unsigned)wi;
			rs[n].rep = r;
			rs[n].epoch = strtoull(ep + 7, NULL, 10);
			rs[n].start = strtod(st + 7, NULL);
			rs[n].end = rs[n].start + strtod(du + 8, NULL) / 1e6;
			per_rep[r]++;
			n++;
		}
		free(text);
	}
	qsort(rs, n, sizeof(*rs), by_wf_start);
	*handoffs = 0;
	*terms_out = 0;
	term *ts = malloc((n + 1) * sizeof(*ts));
	for (size_t i = 0; i < n;) {
		size_t j = i, nt = 0;
		for (; j < n && rs[j].wf == rs[i].wf; j++) {
			if (j > i && rs[j].rep != rs[j - 1].rep)
				(*handoffs)++;
			size_t k;
			for (k = 0; k < nt; k++)
				if (ts[k].rep == rs[j].rep && ts[k].epoch == rs[j].epoch)
					break;
			if (k == nt)
				ts[nt++] = (term){ rs[j].rep, rs[j].epoch, rs[j].start, rs[j].end };
			if (rs[j].end > ts[k].end)
				ts[k].end = rs[j].end;
		}
		qsort(ts, nt, sizeof(*ts), by_term_start);
		for (size_t k = 1; k < nt; k++) {
			if (ts[k].start < ts[k - 1].end)
				fail("%s: %s (epoch %" PRIu64 ") from %.6f overlaps %s (epoch %" PRIu64 ") until %.6f",
				     wfs[rs[i].wf].name, reps[ts[k].rep].id, ts[k].epoch, ts[k].start,
				     reps[ts[k - 1].rep].id, ts[k - 1].epoch, ts[k - 1].end);
			if (ts[k].epoch <= ts[k - 1].epoch && ts[k].rep != ts[k - 1].rep)
				fail("%s: epoch %" PRIu64 " of %s follows epoch %" PRIu64 " of %s", wfs[rs[i].wf].name,
				     ts[k].epoch, reps[ts[k].rep].id, ts[k - 1].epoch, reps[ts[k - 1].rep].id);
		}
		*terms_out += (unsigned)nt;
		i = j;
	}
	free(ts);
	free(rs);
}

/* Shards acquired by every replica between two times (from "shards" lines). */
static unsigned shards_acquired(double from, double to, double *last_at)
{
	unsigned sum = 0;
	*last_at = 0;
	for (unsigned r = 0; r < REPLICAS; r++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s.log", dir, reps[r].id);
		char *text = slurp(path, NULL), *save = NULL;
		if (!text)
			continue;
		for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			const char *ts = strstr(line, "ts="), *ac = strstr(line, " acquired=");
			if (!strstr(line, "event=shards") || !ts || !ac)
				continue;
			double t = strtod(ts + 3, NULL);
			unsigned a = (unsigned)strtoul(ac + 10, NULL, 10);
			if (t >= from && t < to && a) {
				sum += a;
				if (t > *last_at)
					*last_at = t;
			}
		}
		free(text);
	}
	return sum;
}

/* The first reconcile after `from` by a replica other than `dead`. */
static double first_reconcile_after(double from, unsigned dead, const unsigned char *was_dead_s)
{
	double best = 0;
	char want[128];
	snprintf(want, sizeof(want), " object=%s/", ns);
	for (unsigned r = 0; r < REPLICAS; r++) {
		if (r == dead)
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s.log", dir, reps[r].id);
		char *text = slurp(path, NULL), *save = NULL;
		if (!text)
			continue;
		for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			const char *st = strstr(line, " start="), *sh = strstr(line, " shard=");
			if (!strstr(line, "event=reconcile") || !st || !sh || !strstr(line, want))
				continue;
			double t = strtod(st + 7, NULL);
			unsigned s = (unsigned)strtoul(sh + 7, NULL, 10);
			if (t >= from && s < 4096 && was_dead_s[s] && (!best || t < best))
				best = t;
		}
		free(text);
	}
	return best;
}

/* The shards `r` held last before `at` ("held" from its shards lines is a
 * count only): marks the shards of the workflows it reconciled in its last
 * lease before `at`. */
static void shards_of(unsigned r, double at, unsigned char *mark)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s.log", dir, reps[r].id);
	char *text = slurp(path, NULL), *save = NULL;
	if (!text)
		return;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *st = strstr(line, " start="), *sh = strstr(line, " shard=");
		if (!strstr(line, "event=reconcile") || !st || !sh)
			continue;
		double t = strtod(st + 7, NULL);
		unsigned s = (unsigned)strtoul(sh + 7, NULL, 10);
		if (t < at && t > at - 10 && s < 4096)
			mark[s] = 1;
	}
	free(text);
}

/* ---- main ---------------------------------------------------------------------------- */

static unsigned uarg(const char *v, unsigned lo, unsigned hi, const char *what)
{
	char *end;
	unsigned long x = v ? strtoul(v, &end, 10) : 0;
	if (!v || *end || x < lo || x > hi)
		die("%s: want %u..%u", what, lo, hi);
	return (unsigned)x;
}

/* The last "held" a live replica logged (its current process; -1 none), and when. */
static long held_now(replica *r, double *at)
{
	char path[PATH_MAX];
	long held = -1;
	snprintf(path, sizeof(path), "%s/%s.log", dir, r->id);
	char *text = slurp(path, NULL), *save = NULL;
	*at = 0;
	if (!text)
		return -1;
	for (char *line = strtok_r(text + r->log_seen, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *h = strstr(line, " held="), *ts = strstr(line, "ts=");
		if (strstr(line, "event=shards") && h && ts) {
			held = strtol(h + 6, NULL, 10);
			*at = strtod(ts + 3, NULL);
		}
	}
	free(text);
	return held;
}

/* Wait until the live replicas hold every shard between them, each some,
 * and no replica's shard set changed for 2 s (the handoff is over). */
static void wait_converged(double deadline)
{
	for (;;) {
		long sum = 0;
		double last = 0;
		int ok = 1;
		for (unsigned i = 0; i < REPLICAS; i++)
			if (reps[i].pid) {
				double at;
				long h = held_now(&reps[i], &at);
				ok &= h > 0;
				sum += h;
				if (at > last)
					last = at;
			}
		if (ok && sum == 1024 && now_s() - last > 2.0)
			return;
		if (now_s() > deadline)
			die("the replicas did not converge on the 1024 shards (%ld held)", sum);
		sleep_s(0.2);
	}
}

/* Until `frac` of the tasks are final, and at least 3 s after the last event. */
static void wait_tasks(double frac, unsigned total_tasks, double deadline, const char *next)
{
	static double last_event;
	double not_before = last_event + 3;
	for (;;) {
		unsigned tf, wf;
		progress(&tf, &wf);
		for (unsigned i = 0; i < REPLICAS; i++)
			if (reps[i].pid) {
				sample_rss(&reps[i]);
				scrape(&reps[i]);
			}
		if (wf == nwf && next)
			fail("every workflow finished before the %s: not mid-run (give it more tasks)", next);
		if ((tf >= frac * total_tasks && now_s() >= not_before) || wf == nwf) {
			last_event = now_s();
			return;
		}
		if (now_s() > deadline)
			die("timed out at %u of %u tasks final, %u of %u workflows", tf, total_tasks, wf, nwf);
		sleep_s(0.5);
	}
}

int main(int argc, char **argv)
{
	unsigned n = 100, min_tasks = 50, max_tasks = 2000, big = 2, big_tasks = 20000, conc = 10, dur = 100;
	double fail_rate = 0.005, timeout = 900;
	int keep = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--workflows"))
			n = uarg(v, 1, WF_MAX - 10, a), i++;
		else if (!strcmp(a, "--min-tasks"))
			min_tasks = uarg(v, 1, 100000, a), i++;
		else if (!strcmp(a, "--max-tasks"))
			max_tasks = uarg(v, 1, 100000, a), i++;
		else if (!strcmp(a, "--big"))
			big = uarg(v, 0, 10, a), i++;
		else if (!strcmp(a, "--big-tasks"))
			big_tasks = uarg(v, 1, 100000, a), i++;
		else if (!strcmp(a, "--concurrency"))
			conc = uarg(v, 1, 100000, a), i++;
		else if (!strcmp(a, "--duration"))
			dur = uarg(v, 1, 60000, a), i++;
		else if (!strcmp(a, "--fail-rate") && v)
			fail_rate = strtod(v, NULL), i++;
		else if (!strcmp(a, "--timeout"))
			timeout = uarg(v, 10, 86400, a), i++;
		else if (!strcmp(a, "--keep"))
			keep = 1;
		else {
			fprintf(stderr, "usage: eval-controller [--workflows N] [--min-tasks N] [--max-tasks N] [--big N]\n"
			                "                       [--big-tasks N] [--concurrency N] [--duration MS]\n"
			                "                       [--fail-rate F] [--timeout S] [--keep]\n");
			return 2;
		}
	}
	if (min_tasks > max_tasks)
		die("--min-tasks above --max-tasks");
	snprintf(dir, sizeof(dir), "/tmp/kvs-eval-XXXXXX");
	if (!mkdtemp(dir))
		die("mkdtemp: %s", strerror(errno));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* History large enough that the Pod recorder never meets 410. */
	const char *const extra[] = { "--history", "4000000", "--history-bytes", "2000000000", NULL };
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	if (fx_kapi_start(&srv, 0, extra) < 0)
		die("kapi-server: %s", kvs_error_last());
	ko.kubeconfig = fx_kapi_kubeconfig(srv);
	ko.qps = 5000;
	ko.burst = 10000;
	if (kvs_kube_open(&kube, &ko) < 0)
		die("client: %s", kvs_error_last());
	ns = fx_kapi_ns(srv);
	apply_crd();

	/* The workflows: sizes spread geometrically over [min, max]; kinds,
	 * policies and retries cycle so that every combination occurs. The big
	 * ones run withCount with long names (a node record is then ~0.5 KiB). */
	unsigned total_tasks = 0;
	for (unsigned i = 0; i < n + big; i++) {
		wfspec *w = &wfs[nwf++];
		if (i < n) {
			double f = n > 1 ? (double)((i * 37) % n) / (n - 1) : 0;
			w->tasks = (unsigned)(min_tasks * exp(f * log((double)max_tasks / min_tasks)) + 0.5);
			w->k = (kind)(i % 3);
			/* policies: 3 of 6 AllSuccessful+WaitForRemaining, then one each of
			 * AllSuccessful+TerminateRemaining, AnySuccessful+Wait..., Any+Terminate... */
			unsigned pol = (i / 3) % 6;
			w->any = pol >= 4;
			w->terminate = pol == 3 || pol == 5;
			w->attempts = 1 + (i / 18) % 3;
			w->flaky = w->attempts > 1 && i % 5 == 0;
			w->conc = conc;
			snprintf(w->name, sizeof(w->name), "wf-%03u-%s", i, w->k == K_COUNT ? "count" : w->k == K_KEYS ? "keys" : "matrix");
		} else {
			w->tasks = big_tasks;
			w->k = K_COUNT;
			w->attempts = 3;
			w->conc = conc * 10;
			/* A node record as large as a real one gets: a Pod name of
			 * ~210 characters and a result of ~230 bytes (the task's
			 * termination message), ~560 bytes in all; 20,000 of them are
			 * over 10 MB. */
			snprintf(w->name, sizeof(w->name), "big-%u-%.190s", i - n,
			         "with-a-long-name-as-generated-ones-get-so-that-each-node-record-is-as-large-as-a-real-"
			         "one-with-a-pod-name-near-the-limit-of-two-hundred-fifty-three-characters-and-a-result-"
			         "message-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
			w->result = "result: rendered every frame of the shot; output written to "
			            "s3://renders/project/shot/frames, 240 frames, 2048x858, 16 bits per channel, EXR with "
			            "zip compression, checksums in manifest.json; peak memory 3.1 GiB, 512 s of CPU";
		}
		total_tasks += w->tasks;
	}

	double t0 = now_s();
	for (unsigned i = 0; i < REPLICAS; i++)
		snprintf(reps[i].id, sizeof(reps[i].id), "r%u", i);
	char seed[16], fr[32], dflt[32];
	snprintf(seed, sizeof(seed), "%u", 42u);
	snprintf(fr, sizeof(fr), "%g", fail_rate);
	snprintf(dflt, sizeof(dflt), "%ums", dur);
	const char *const sim[] = { "--kubeconfig", fx_kapi_kubeconfig(srv), "--namespace", ns, "--seed", seed,
		                    "--fail-rate", fr, "--duration", dflt, NULL };
	sim_pid = spawn("kubelet-sim", "sim.log", sim);
	start_replica(0);
	wait_converged(t0 + 60);
	if (pthread_create(&rec.th, NULL, recorder, NULL) != 0)
		die("pthread_create");
	for (int i = 0; i < 200 && !__atomic_load_n(&rec.ready, __ATOMIC_SEQ_CST); i++)
		sleep_s(0.05);
	if (!rec.ready)
		die("the Pod recorder's watch did not open");
	printf("eval-controller: %u workflows (%u of %u..%u tasks, %u of %u), %u tasks; logs in %s\n", nwf, n,
	       min_tasks, max_tasks, big, big_tasks, total_tasks, dir);
	fflush(stdout);
	double t_submit = now_s();
	for (unsigned i = 0; i < nwf; i++) {
		char *js = wf_json(&wfs[i], dur);
		cJSON *o = cJSON_Parse(js);
		free(js);
		if (kvs_kube_create(NULL, kube, &kvc_wf_workflows, ns, o, NULL) < 0)
			die("create %s: %s", wfs[i].name, kvs_error_last());
		cJSON_Delete(o);
	}
	double deadline = t0 + timeout;

	/* 1 -> 4 -> 2, kill -9 one of the two, restart it. */
	double ev_at[4];
	wait_tasks(0.15, total_tasks, deadline, "scale to 4");
	ev_at[0] = now_s();
	for (unsigned i = 1; i < 4; i++)
		start_replica(i);
	wait_converged(deadline);
	printf("  %6.1fs  scaled 1 -> 4\n", now_s() - t_submit);
	fflush(stdout);
	wait_tasks(0.40, total_tasks, deadline, "scale to 2");
	ev_at[1] = now_s();
	stop_replica(3, SIGTERM);
	stop_replica(2, SIGTERM);
	wait_converged(deadline);
	printf("  %6.1fs  scaled 4 -> 2 (SIGTERM r2, r3)\n", now_s() - t_submit);
	fflush(stdout);
	wait_tasks(0.60, total_tasks, deadline, "kill -9");
	unsigned char dead_shards[4096] = { 0 };
	ev_at[2] = now_s();
	stop_replica(1, SIGKILL);
	shards_of(1, ev_at[2], dead_shards);
	printf("  %6.1fs  kill -9 r1\n", now_s() - t_submit);
	fflush(stdout);
	wait_converged(deadline); /* r0 takes r1's shards after its lease runs out */
	printf("  %6.1fs  r0 holds every shard\n", now_s() - t_submit);
	fflush(stdout);
	ev_at[3] = now_s();
	start_replica(1);
	wait_converged(deadline);
	printf("  %6.1fs  r1 restarted (same identity), holds its share again\n", now_s() - t_submit);
	fflush(stdout);
	wait_tasks(1.01, total_tasks, deadline, NULL);
	double t_done = now_s();
	for (unsigned i = 0; i < REPLICAS; i++)
		if (reps[i].pid) {
			sample_rss(&reps[i]);
			scrape(&reps[i]);
		}
	sleep_s(0.5); /* the recorder has seen every Pod */
	rec.stop = 1;
	pthread_join(rec.th, NULL);
	if (rec.gone)
		fail("the Pod recorder's watch met 410: creations may be missing");

	/* Checks through kvsplit. */
	kvs_backend *be = NULL;
	kvs_store *st = NULL;
	kvs_options so = KVS_OPTIONS_INIT;
	so.name = "workflows";
	if (fx_kapi_backend(&be, srv, NULL) < 0 || kvs_open(&st, be, &so) < 0)
		die("store: %s", kvs_error_last());
	unsigned attempts = 0, completed = 0, succeeded = 0, retried_wf = 0, retried_tasks = 0;
	uint64_t state_bytes = 0, big_state = 0;
	int before = failures;
	for (unsigned i = 0; i < nwf; i++) {
		int f0 = failures;
		check_workflow(&wfs[i], st);
		attempts += wfs[i].att_total;
		state_bytes += wfs[i].state_bytes;
		completed += failures == f0;
		retried_wf += wfs[i].retried > 0;
		retried_tasks += wfs[i].retried;
		if (i >= n && wfs[i].state_bytes > big_state)
			big_state = wfs[i].state_bytes;
		cJSON *o = NULL;
		if (kvs_kube_get(&o, kube, &kvc_wf_workflows, ns, wfs[i].name, NULL, NULL) == 0) {
			const char *ph = str(get(o, "status"), "phase");
			succeeded += ph && !strcmp(ph, "Succeeded");
			if (i >= n) {
				char *s = cJSON_PrintUnformatted(o);
				printf("  %s: Workflow object %zu bytes, node status %" PRIu64 " bytes\n", wfs[i].name,
				       strlen(s), wfs[i].state_bytes);
				if (strlen(s) >= 64 * 1024)
					fail("%s: the Workflow object is %zu bytes (limit 64 KiB)", wfs[i].name, strlen(s));
				/* the case: 20,000 tasks, over 10 MB of node status */
				if (wfs[i].tasks >= 20000 && wfs[i].state_bytes <= 10000000)
					fail("%s: node status %" PRIu64 " bytes, not over 10 MB", wfs[i].name, wfs[i].state_bytes);
				free(s);
			}
			cJSON_Delete(o);
		}
	}
	kvs_close(st);
	if (rec.n != attempts)
		fail("%zu Pods created for %u recorded task attempts", rec.n, attempts);
	unsigned long per_rep[REPLICAS];
	unsigned handoffs = 0, terms = 0;
	check_terms(per_rep, &handoffs, &terms);

	/* Figures. */
	double wall = t_done - t_submit, sent = 0, lastacq;
	for (unsigned i = 0; i < REPLICAS; i++) {
		if (reps[i].pid)
			stop_replica(i, SIGTERM);
		sent += reps[i].bytes_sent;
	}
	kill(sim_pid, SIGTERM);
	waitpid(sim_pid, NULL, 0);
	unsigned acq[3];
	acq[0] = shards_acquired(ev_at[0], ev_at[1], &lastacq);
	acq[1] = shards_acquired(ev_at[1], ev_at[2], &lastacq);
	acq[2] = shards_acquired(ev_at[2], ev_at[3], &lastacq);
	double resumed = first_reconcile_after(ev_at[2], 1, dead_shards);
	unsigned long reconciles = 0;
	for (unsigned i = 0; i < REPLICAS; i++)
		reconciles += per_rep[i];
	printf("\nresults\n");
	printf("  workflows completed        %u of %u (%u Succeeded, %u Failed; %u with retried tasks)\n", completed,
	       nwf, succeeded, nwf - succeeded, retried_wf);
	printf("  tasks                      %u, task attempts %u, tasks retried %u\n", total_tasks, attempts,
	       retried_tasks);
	printf("  Pods created per attempt   %.2f (%zu Pods)\n", attempts ? (double)rec.n / attempts : 0.0, rec.n);
	printf("  wall time                  %.1f s (submit to last final), %.2f workflows/s, %.0f tasks/s\n", wall,
	       nwf / wall, total_tasks / wall);
	printf("  reconciles                 %lu (%.1f/s)", reconciles, reconciles / wall);
	for (unsigned i = 0; i < REPLICAS; i++)
		printf("; %s %lu in %.0f s = %.1f/s", reps[i].id, per_rep[i], reps[i].alive_s,
		       reps[i].alive_s > 0 ? per_rep[i] / reps[i].alive_s : 0.0);
	printf("\n");
	printf("  handoffs                   %u (a workflow's next reconcile on another replica), %u terms\n",
	       handoffs, terms);
	printf("  shards moved per event     1->4: %u (optimum 768); 4->2: %u (optimum 512); kill -9: %u (optimum 512)\n",
	       acq[0], acq[1], acq[2]);
	if (resumed > 0)
		printf("  resume after kill -9       %.1f s (first reconcile of r1's shards by r0; lease %gs)\n",
		       resumed - ev_at[2], lease_s);
	else
		printf("  resume after kill -9       - (r1 reconciled nothing in its last 10 s)\n");
	printf("  state bytes                %" PRIu64 " stored (node status), %.0f sent by the replicas (%.2fx)"
	       " in %lu commits\n",
	       state_bytes, sent, state_bytes ? sent / state_bytes : 0.0, commits);
	if (big)
		printf("  largest big workflow       node status %" PRIu64 " bytes (%s 10 MB)\n", big_state,
		       big_state > 10000000 ? "over" : "NOT over");
	printf("  peak RSS                  ");
	for (unsigned i = 0; i < REPLICAS; i++)
		printf(" %s %.1f MiB", reps[i].id, reps[i].peak_rss_kb / 1024.0);
	printf("\n");
	(void)before;
	printf("\n%s: %d check%s failed\n", failures ? "FAIL" : "PASS", failures, failures == 1 ? "" : "s");
	kvs_kube_free(kube);
	fx_kapi_stop(srv);
	if (!keep && !failures) {
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0) {
			/* best effort */
		}
	}
	curl_global_cleanup();
	return failures ? 1 : 0;
}
