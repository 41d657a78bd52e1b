/*
 * kvsplit-controller — the Workflow controller (docs/controller.md,
 * "Workflow controller"): runs each Workflow's tasks as Pods, shards itself
 * over its replicas on the runtime, keeps the per-task node status in
 * kvsplit. Built like shard-echo (copy either).
 *
 *   kvsplit-controller [--kubeconfig PATH] [--namespace NS] [--identity NAME]
 *                      [--lease-duration DURATION] [--metrics-addr HOST:PORT]
 *                      [--workers N] [--qps N] [--resync DURATION]
 *                      [--store NAME] [--lease-namespace NS] [--log-json]
 *
 * Threads: main runs the keepalive (kvc_member_tick) and points the
 * informers at the shards held; three informers (the member's Workflows,
 * unlabelled Workflows to stamp with their vshard label, and the member's
 * task Pods, which carry their Workflow's vshard label) each run their own;
 * workers take Workflow keys from the queue and run kvc_wf_reconcile;
 * libmicrohttpd serves /metrics. SIGTERM releases the shards (the next
 * owners continue from the stored node status) and exits 0.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kvsplit.h>
#include <kvsplit/kube.h>

#include "controller/informer.h"
#include "controller/kubeapi.h"
#include "controller/member.h"
#include "controller/metrics.h"
#include "controller/workqueue.h"
#include "controller/workflow/kubeops.h"
#include "controller/workflow/reconcile.h"

#define GROUP "kvsplit-controller"
#define INDEX_WF_UID "uid"

typedef struct ctl {
	const char *id;
	int json;
	kvs_kube *kube, *lease_kube;
	kvc_api *api;
	kvc_member *m;
	kvc_informer *wf, *stamp, *pods;
	kvc_queue *q, *sq;
	kvc_wf_kube *ops;
	kvc_wf_reconciler *rec;
	pthread_mutex_t mu;
	kvc_runtime_counters c;
	uint64_t created, adopted, deleted, committed;
} ctl;

static volatile sig_atomic_t terminate;

static void on_signal(int sig)
{
	(void)sig;
	terminate = 1;
}

/* ---- logging: as shard-echo's ------------------------------------------- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static void logv(const ctl *e, const char *event, ...)
{
	struct timespec ts;
	va_list ap;
	const char *k, *v;

	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&log_mu);
	if (e->json)
		printf("{\"ts\":%lld.%06ld,\"event\":\"%s\",\"member\":\"%s\"", (long long)ts.tv_sec,
		       ts.tv_nsec / 1000, event, e->id);
	else
		printf("ts=%lld.%06ld event=%s member=%s", (long long)ts.tv_sec, ts.tv_nsec / 1000, event,
		       e->id);
	va_start(ap, event);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		if (e->json) {
			printf(",\"%s\":\"", k);
			for (const char *p = v; *p; p++)
				if (*p == '"' || *p == '\\')
					printf("\\%c", *p);
				else if ((unsigned char)*p < 0x20)
					printf("\\u%04x", (unsigned char)*p);
				else
					putchar(*p);
			putchar('"');
		} else if (strpbrk(v, " \"=") || !*v) {
			printf(" %s=\"", k);
			for (const char *p = v; *p; p++)
				printf(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
			putchar('"');
		} else {
			printf(" %s=%s", k, v);
		}
	}
	va_end(ap);
	puts(e->json ? "}" : "");
	fflush(stdout);
	pthread_mutex_unlock(&log_mu);
}

/* ---- informers' helpers ----------------------------------------------------- */

static const char *md_str(const cJSON *obj, const char *f)
{
	return cJSON_GetStringValue(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), f));
}

static int index_wf_uid(void *ctx, const cJSON *obj, char *buf, size_t cap)
{
	const char *uid = md_str(obj, "uid");
	(void)ctx;
	if (!uid || strlen(uid) >= cap)
		return 0;
	memcpy(buf, uid, strlen(uid) + 1);
	return 1;
}

/* Task Pods are cached without their spec (the reconcile reads labels and status). */
static cJSON *pod_transform(void *ctx, cJSON *obj)
{
	(void)ctx;
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "spec");
	cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "managedFields");
	return obj;
}

/* ---- workers ------------------------------------------------------------------ */

static void *worker(void *arg)
{
	ctl *e = arg;
	const char *key;

	while (kvc_queue_get(e->q, &key, -1) == 0) {
		cJSON *obj = NULL;
		int shard = -1, rc = 0;
		uint64_t epoch;
		if (kvc_informer_get(e->wf, key, &obj, &shard) != 1 || shard < 0) {
			cJSON_Delete(obj); /* found but not yet stamped: no copy kept */
			kvc_queue_forget(e->q, key);
			kvc_queue_done(e->q, key);
			continue;
		}
		if (!kvc_member_begin(e->m, (unsigned)shard, &epoch)) {
			cJSON_Delete(obj);
			kvc_queue_forget(e->q, key);
			kvc_queue_done(e->q, key);
			continue;
		}
		struct timespec t0, t1;
		kvc_wf_result res;
		clock_gettime(CLOCK_REALTIME, &t0);
		rc = kvc_wf_reconcile(e->rec, obj, &res);
		clock_gettime(CLOCK_REALTIME, &t1);
		kvc_member_end(e->m, (unsigned)shard);
		if (rc == KVS_ECONFLICT || rc == KVS_EEXISTS) {
			/* Someone committed first (a stale cache, or a previous owner):
			 * the next reconcile starts from what is stored. */
			const char *uid = md_str(obj, "uid");
			if (uid)
				kvc_wf_reconciler_forget(e->rec, uid);
		}
		char sh[16], ep[24], start[32], dur[24], cr[16], ad[16], de[16], co[16];
		snprintf(sh, sizeof(sh), "%d", shard);
		snprintf(ep, sizeof(ep), "%" PRIu64, epoch);
		snprintf(start, sizeof(start), "%lld.%06ld", (long long)t0.tv_sec, t0.tv_nsec / 1000);
		snprintf(dur, sizeof(dur), "%lld",
		         (long long)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
		snprintf(cr, sizeof(cr), "%u", rc == 0 ? res.created : 0);
		snprintf(ad, sizeof(ad), "%u", rc == 0 ? res.adopted : 0);
		snprintf(de, sizeof(de), "%u", rc == 0 ? res.deleted : 0);
		snprintf(co, sizeof(co), "%u", rc == 0 ? res.committed : 0);
		logv(e, "reconcile", "object", key, "shard", sh, "epoch", ep, "result",
		     rc < 0 ? "error" : kvc_wf_wphase_name(res.phase), "created", cr, "adopted", ad, "deleted", de,
		     "committed", co, "start", start, "dur_us", dur, rc < 0 ? "error" : NULL,
		     rc < 0 ? kvs_error_last() : NULL, (const char *)NULL);
		cJSON_Delete(obj);
		pthread_mutex_lock(&e->mu);
		e->c.reconciles++;
		if (rc < 0)
			e->c.reconcile_errors++;
		else {
			e->created += res.created;
			e->adopted += res.adopted;
			e->deleted += res.deleted;
			e->committed += res.committed;
		}
		pthread_mutex_unlock(&e->mu);
		if (rc < 0)
			kvc_queue_add_rate_limited(e->q, key);
		else {
			kvc_queue_forget(e->q, key);
			if (res.requeue)
				kvc_queue_add_after(e->q, key, 10 * KVC_MS);
		}
		kvc_queue_done(e->q, key);
	}
	return NULL;
}

/* Any replica may stamp an unlabelled Workflow: the label is a function of its uid. */
static void *stamper(void *arg)
{
	ctl *e = arg;
	const char *key;
	while (kvc_queue_get(e->sq, &key, -1) == 0) {
		cJSON *obj = NULL;
		int rc = 0;
		if (kvc_informer_get(e->stamp, key, &obj, NULL) == 1) {
			rc = kvc_vshard_stamp(e->kube, &kvc_wf_workflows, md_str(obj, "namespace"), obj,
			                      kvc_member_vshards(e->m));
			if (rc < 0 && rc != KVS_ENOTFOUND)
				logv(e, "stamp", "object", key, "error", kvs_error_last(), (const char *)NULL);
		}
		cJSON_Delete(obj);
		if (rc < 0 && rc != KVS_ENOTFOUND)
			kvc_queue_add_rate_limited(e->sq, key);
		else
			kvc_queue_forget(e->sq, key);
		kvc_queue_done(e->sq, key);
	}
	return NULL;
}

/* Handlers only enqueue keys (and drop the node cache of what leaves). */
static void on_wf(void *ctx, kvc_inf_event ev, const char *key, int shard, const cJSON *obj)
{
	ctl *e = ctx;
	(void)shard;
	if (ev == KVC_INF_ADDED || ev == KVC_INF_UPDATED || ev == KVC_INF_RESYNC) {
		kvc_queue_add(e->q, key);
	} else {
		const char *uid = md_str(obj, "uid");
		if (uid)
			kvc_wf_reconciler_forget(e->rec, uid);
	}
}

static void on_unlabelled(void *ctx, kvc_inf_event ev, const char *key, int shard, const cJSON *obj)
{
	ctl *e = ctx;
	(void)shard;
	(void)obj;
	if (ev == KVC_INF_ADDED || ev == KVC_INF_UPDATED)
		kvc_queue_add(e->sq, key);
}

/* A task Pod changed: reconcile its Workflow (found by uid in our cache). */
static void on_pod(void *ctx, kvc_inf_event ev, const char *key, int shard, const cJSON *obj)
{
	ctl *e = ctx;
	char uid[KVC_INFORMER_INDEX_VALUE_MAX], **keys = NULL;
	size_t n = 0;
	(void)key;
	(void)shard;
	if (ev == KVC_INF_LEFT || !kvc_wf_index_uid(NULL, obj, uid, sizeof(uid)))
		return;
	if (kvc_informer_by_index(e->wf, INDEX_WF_UID, uid, &keys, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		kvc_queue_add(e->q, keys[i]);
	kvc_informer_keys_free(keys, n);
}

static int collect(void *ctx, kvc_mbuf *b)
{
	ctl *e = ctx;
	kvc_informer *infs[3] = { e->wf, e->stamp, e->pods };
	kvc_runtime_counters c;
	uint64_t cr, ad, de, co;
	kvc_wf_kube_stats ks;
	pthread_mutex_lock(&e->mu);
	c = e->c;
	cr = e->created, ad = e->adopted, de = e->deleted, co = e->committed;
	pthread_mutex_unlock(&e->mu);
	kvc_wf_kube_stats_get(e->ops, &ks);
	kvc_metrics_runtime(b, e->m, e->q, infs, 3, &c);
	kvc_mbuf_family(b, "kvsplit_workflow_pods_created_total", "counter", "Task Pods created.");
	kvc_mbuf_sample(b, "kvsplit_workflow_pods_created_total", NULL, (double)cr);
	kvc_mbuf_family(b, "kvsplit_workflow_pods_adopted_total", "counter",
	                "Task Pods found existing (AlreadyExists or listed) and taken as the attempt.");
	kvc_mbuf_sample(b, "kvsplit_workflow_pods_adopted_total", NULL, (double)ad);
	kvc_mbuf_family(b, "kvsplit_workflow_pods_deleted_total", "counter", "Task Pods deleted.");
	kvc_mbuf_sample(b, "kvsplit_workflow_pods_deleted_total", NULL, (double)de);
	kvc_mbuf_family(b, "kvsplit_workflow_nodes_committed_total", "counter", "Task node records committed.");
	kvc_mbuf_sample(b, "kvsplit_workflow_nodes_committed_total", NULL, (double)co);
	kvc_mbuf_family(b, "kvsplit_workflow_state_bytes_sent_total", "counter",
	                "Bytes of node state written to kvsplit.");
	kvc_mbuf_sample(b, "kvsplit_workflow_state_bytes_sent_total", NULL, (double)ks.state_bytes_sent);
	return 0;
}

/* ---- flags ------------------------------------------------------------------- */

static int64_t parse_duration(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0 || v > 86400.0 * 365)
		return -1;
	if (!*end || strcmp(end, "s") == 0)
		return (int64_t)(v * 1e9);
	if (strcmp(end, "ms") == 0)
		return (int64_t)(v * 1e6);
	if (strcmp(end, "m") == 0)
		return (int64_t)(v * 60e9);
	if (strcmp(end, "h") == 0)
		return (int64_t)(v * 3600e9);
	return -1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kvsplit-controller [--kubeconfig PATH] [--namespace NS] [--identity NAME]\n"
	           "                          [--lease-duration DURATION] [--metrics-addr HOST:PORT]\n"
	           "                          [--workers N] [--qps N] [--resync DURATION] [--store NAME]\n"
	           "                          [--lease-namespace NS] [--log-json]\n");
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t until)
{
	for (;;) {
		int64_t d = until - mono_ns();
		if (d <= 0 || terminate)
			return;
		if (d > 50 * 1000000)
			d = 50 * 1000000;
		struct timespec ts = { 0, (long)d };
		nanosleep(&ts, NULL);
	}
}

static void follow_shards(ctl *e, kvc_shardset *last, uint64_t *fences)
{
	kvc_shardset held;
	kvc_member_stats st;
	kvc_member_held(e->m, &held);
	kvc_member_stats_get(e->m, &st);
	if (st.fences != *fences) {
		char n[24];
		snprintf(n, sizeof(n), "%" PRIu64, st.fences);
		logv(e, "fenced", "fences", n, (const char *)NULL);
		*fences = st.fences;
	}
	if (kvc_set_equal(&held, last))
		return;
	unsigned got = 0, lost = 0;
	for (unsigned s = 0; s < KVC_VSHARDS_MAX; s++) {
		got += kvc_set_has(&held, s) && !kvc_set_has(last, s);
		lost += !kvc_set_has(&held, s) && kvc_set_has(last, s);
	}
	char h[16], g[16], l[16], mem[16];
	snprintf(h, sizeof(h), "%u", kvc_set_count(&held));
	snprintf(g, sizeof(g), "%u", got);
	snprintf(l, sizeof(l), "%u", lost);
	snprintf(mem, sizeof(mem), "%u", st.members);
	logv(e, "shards", "held", h, "acquired", g, "released", l, "members", mem, (const char *)NULL);
	*last = held;
	/* Pods first: a Workflow reconciled with a cold Pod cache reads its
	 * Running nodes' Pods from the server, never takes them for deleted. */
	kvc_informer_set_shards(e->pods, &held);
	kvc_informer_set_shards(e->wf, &held);
}

int main(int argc, char **argv)
{
	const char *kubeconfig = NULL, *ns = NULL, *identity = NULL, *metrics_addr = NULL,
	           *store = "workflows", *lease_ns = NULL;
	int64_t lease = 15 * KVC_S, resync = 30 * KVC_S;
	unsigned workers = 4;
	double qps = 100;
	char host[256];
	ctl e;
	int json = 0, rc;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;
		if (strcmp(a, "--kubeconfig") == 0 && v)
			kubeconfig = v;
		else if (strcmp(a, "--namespace") == 0 && v)
			ns = v;
		else if (strcmp(a, "--lease-namespace") == 0 && v)
			lease_ns = v;
		else if (strcmp(a, "--identity") == 0 && v)
			identity = v;
		else if (strcmp(a, "--lease-duration") == 0 && v)
			lease = parse_duration(v);
		else if (strcmp(a, "--metrics-addr") == 0 && v)
			metrics_addr = v;
		else if (strcmp(a, "--workers") == 0 && v)
			workers = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--qps") == 0 && v)
			qps = strtod(v, NULL);
		else if (strcmp(a, "--resync") == 0 && v)
			resync = parse_duration(v);
		else if (strcmp(a, "--store") == 0 && v)
			store = v;
		else if (strcmp(a, "--log-json") == 0)
			json = 1, takes = 0;
		else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "kvsplit-controller: unknown or incomplete option %s\n", a);
			usage(stderr);
			return 2;
		}
		i += takes;
	}
	if (lease < 3 * KVC_S || lease % KVC_S != 0 || resync < 0 || workers < 1 || workers > 64 ||
	    !(qps > 0 && qps <= 100000) || !*store || strlen(store) > 40) {
		fprintf(stderr, "kvsplit-controller: --lease-duration must be whole seconds, at least 3s; "
		                "--workers 1..64; --qps > 0; --store 1..40 characters\n");
		return 2;
	}
	if (!identity) {
		if (gethostname(host, sizeof(host)) != 0 || !host[0]) {
			fprintf(stderr, "kvsplit-controller: no --identity and no hostname\n");
			return 2;
		}
		host[sizeof(host) - 1] = '\0';
		identity = host;
	}

	/* 1. Clients: objects and stores; the keepalive's Leases. The Leases
	 * live in --lease-namespace, else --namespace, else the client's. */
	memset(&e, 0, sizeof(e));
	e.id = identity;
	e.json = json;
	pthread_mutex_init(&e.mu, NULL);
	kvc_member_opts mo = KVC_MEMBER_OPTS_INIT;
	mo.group = GROUP;
	mo.identity = identity;
	mo.lease_duration_ns = lease;
	mo.renew_deadline_ns = lease * 2 / 3;
	mo.retry_period_ns = lease * 2 / 15;
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	ko.kubeconfig = kubeconfig;
	ko.namespace_ = lease_ns ? lease_ns : ns;
	ko.qps = qps;
	ko.burst = qps > 50 ? (unsigned)(2 * qps) : 100;
	if ((rc = kvs_kube_open(&e.kube, &ko)) < 0)
		goto fail;
	if (kvs_kube_tls_insecure(e.kube))
		fprintf(stderr, "%s: warning: TLS certificate verification is off "
		        "(insecure-skip-tls-verify in the kubeconfig)\n", "kvsplit-controller");
	kvs_kube_options lo = ko;
	kvc_kubeapi_lease_options(&lo, &mo);
	if ((rc = kvs_kube_open(&e.lease_kube, &lo)) < 0)
		goto fail;
	const char *watch_ns = ns ? ns : KVS_KUBE_ALL_NAMESPACES;

	/* 2. Membership over Leases. */
	if ((rc = kvc_kubeapi_new(&e.api, e.lease_kube, kvs_kube_namespace(e.kube))) < 0 ||
	    (rc = kvc_member_new(&e.m, &mo, e.api, kvc_clock_system(), NULL)) < 0)
		goto fail;

	/* 3. Queues, informers, the reconciler, workers. */
	if ((rc = kvc_queue_new(&e.q, NULL, kvc_clock_system())) < 0 ||
	    (rc = kvc_queue_new(&e.sq, NULL, kvc_clock_system())) < 0)
		goto fail;
	kvc_informer_opts io = KVC_INFORMER_OPTS_INIT;
	kvc_informer_handlers ih = { &e, on_wf };
	io.name = "workflows";
	io.resource = &kvc_wf_workflows;
	io.ns = watch_ns;
	io.vshards = kvc_member_vshards(e.m);
	io.resync_ns = resync;
	if ((rc = kvc_informer_new(&e.wf, e.kube, &io, &ih)) < 0 ||
	    (rc = kvc_informer_add_index(e.wf, INDEX_WF_UID, index_wf_uid, NULL)) < 0)
		goto fail;
	io.name = "unlabelled";
	io.unsharded = 1;
	io.resync_ns = 0;
	io.confirm_deletes = -1;
	io.transform = kvc_informer_metadata;
	ih.on_event = on_unlabelled;
	if ((rc = kvc_informer_new(&e.stamp, e.kube, &io, &ih)) < 0)
		goto fail;
	kvc_informer_opts po = KVC_INFORMER_OPTS_INIT;
	po.name = "pods";
	po.resource = &kvs_kube_pods;
	po.ns = watch_ns;
	po.base_selector = KVC_WF_LABEL_UID; /* task Pods only */
	po.vshards = kvc_member_vshards(e.m);
	po.transform = pod_transform;
	ih.on_event = on_pod;
	if ((rc = kvc_informer_new(&e.pods, e.kube, &po, &ih)) < 0 ||
	    (rc = kvc_informer_add_index(e.pods, KVC_WF_INDEX_UID, kvc_wf_index_uid, NULL)) < 0)
		goto fail;
	kvs_kube_options so = ko;
	so.concurrency = 8;
	if ((rc = kvc_wf_kube_new(&e.ops, e.kube, &so, store, e.pods)) < 0)
		goto fail;
	kvc_wf_reconciler_opts ro = KVC_WF_RECONCILER_OPTS_INIT;
	ro.store = store;
	if ((rc = kvc_wf_reconciler_new(&e.rec, kvc_wf_kube_ops(), e.ops, &ro)) < 0)
		goto fail;
	if ((rc = kvc_informer_start(e.pods)) < 0 || (rc = kvc_informer_start(e.wf)) < 0 ||
	    (rc = kvc_informer_start(e.stamp)) < 0)
		goto fail;
	pthread_t th[66];
	for (unsigned i = 0; i < workers; i++)
		pthread_create(&th[i], NULL, worker, &e);
	pthread_create(&th[workers], NULL, stamper, &e);

	kvc_metrics *metrics = NULL;
	if (metrics_addr && (rc = kvc_metrics_start(&metrics, metrics_addr, collect, &e)) < 0)
		goto fail;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	{
		char port[16], ld[24];
		snprintf(port, sizeof(port), "%u", kvc_metrics_port(metrics));
		snprintf(ld, sizeof(ld), "%llds", (long long)(lease / KVC_S));
		logv(&e, "start", "namespace", *watch_ns ? watch_ns : "(all)", "lease", kvc_member_lease_name(e.m),
		     "lease_duration", ld, "store", store, "metrics_port", port, (const char *)NULL);
	}

	/* 4. The keepalive. */
	kvc_shardset last;
	uint64_t fences = 0;
	kvc_set_clear(&last);
	while (!terminate) {
		kvc_member_tick(e.m);
		follow_shards(&e, &last, &fences);
		sleep_until(kvc_member_next_tick(e.m));
	}

	/* 5. SIGTERM: drain and release every shard, then the Lease. */
	logv(&e, "stopping", (const char *)NULL);
	kvc_member_stop(e.m);
	int64_t give_up = mono_ns() + 2 * lease;
	while (!kvc_member_stopped(e.m) && mono_ns() < give_up) {
		kvc_member_tick(e.m);
		follow_shards(&e, &last, &fences);
		int64_t next = kvc_member_next_tick(e.m), soon = mono_ns() + 20 * KVC_MS;
		terminate = 0;
		sleep_until(next < soon ? next : soon);
	}
	kvc_queue_shutdown(e.q);
	kvc_queue_shutdown(e.sq);
	for (unsigned i = 0; i <= workers; i++)
		pthread_join(th[i], NULL);
	kvc_metrics_stop(metrics);
	logv(&e, "stopped", "released", kvc_member_stopped(e.m) ? "true" : "false", (const char *)NULL);
	kvc_informer_free(e.wf);
	kvc_informer_free(e.stamp);
	kvc_informer_free(e.pods);
	kvc_wf_reconciler_free(e.rec);
	kvc_wf_kube_free(e.ops);
	kvc_queue_free(e.q);
	kvc_queue_free(e.sq);
	kvc_member_free(e.m);
	kvc_kubeapi_free(e.api);
	kvs_kube_free(e.lease_kube);
	kvs_kube_free(e.kube);
	return 0;

fail:
	fprintf(stderr, "kvsplit-controller: %s\n", kvs_error_last());
	return 1;
}
