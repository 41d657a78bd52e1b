/*
 * kvsplit-controller — the Workflow controller (docs/controller.md,
 * "Workflow controller"): runs each Workflow's tasks as Pods, shards itself
 * over its replicas on the runtime, keeps the per-task node status in
 * kvsplit. Built like shard-echo (copy either).
 *
 *   kvsplit-controller [--kubeconfig PATH] [--namespace NS] [--identity NAME]
 *                      [--lease-duration DURATION] [--metrics-addr HOST:PORT]
 *                      [--workers N] [--qps N] [--resync DURATION]
 *                      [--store NAME] [--lease-namespace NS] [--gc-interval DURATION]
 *                      [--gc-grace DURATION] [--log-json]
 *
 * Threads: main runs the keepalive (kvc_member_tick) and points the
 * informers at the shards held; three informers (the member's Workflows,
 * unlabelled Workflows to stamp with their vshard label, and the member's
 * task Pods, which carry their Workflow's vshard label) each run their own;
 * workers take Workflow keys from the queue and run kvc_wf_reconcile;
 * libmicrohttpd serves /metrics; a gc thread runs kvs_gc on the node
 * stores every --gc-interval while this replica is the elected leader of
 * the Lease kvsplit-controller-leader-gc (ticked by the keepalive).
 * SIGTERM releases the shards (the next owners continue from the stored
 * node status) and the gc Lease, and exits 0.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kvsplit.h>
#include <kvsplit/kube.h>

#include "controller/app.h"
#include "controller/informer.h"
#include "controller/kubeapi.h"
#include "controller/leader.h"
#include "controller/member.h"
#include "controller/metrics.h"
#include "controller/workqueue.h"
#include "controller/workflow/kubeops.h"
#include "controller/workflow/reconcile.h"

#define GROUP "kvsplit-controller"
#define INDEX_WF_UID "uid"

/* gc, a singleton task: the elected replica collects the node stores' garbage. */
typedef struct gc_task {
	kvc_leader *l;          /* NULL: --gc-interval 0 */
	int64_t interval_ns;
	uint32_t grace_s;       /* 0: kvs_gc's default */
	int64_t next_ns;        /* monotonic: the next round, while leading */
	int leading;            /* as of the last keepalive tick */
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int due, stop;
	uint64_t runs, deleted, bytes_freed;
} gc_task;

typedef struct ctl {
	kvc_app app; /* identity, clients (objects; the keepalive's), membership */
	const char *watch_ns;
	gc_task gc;
	kvc_informer *wf, *stamp, *pods;
	kvc_queue *q, *sq;
	kvc_wf_kube *ops;
	kvc_wf_reconciler *rec;
	pthread_mutex_t mu;
	kvc_runtime_counters c;
	uint64_t created, adopted, deleted, committed;
} ctl;

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

/* The worker loop's callback (kvc_app_worker_run runs the rest: the cache,
 * the shard held, the log line, the queue). A lost node commit (someone
 * committed first: a stale cache, a previous owner) drops the workflow's
 * cached nodes inside the reconcile; a conflict on the status or the
 * finalizer leaves them valid (they are what is stored), so nothing is
 * forgotten here: a 20,000-task map is not read again for a stale
 * Workflow object. */
static int on_reconcile(void *ctx, const char *key, const cJSON *obj, unsigned shard, uint64_t epoch,
                        kvc_app_reconciled *out)
{
	ctl *e = ctx;
	kvc_wf_result res;
	(void)key;
	(void)shard;
	(void)epoch;
	int rc = kvc_wf_reconcile(e->rec, obj, &res);
	out->result = rc < 0 ? "error" : kvc_wf_wphase_name(res.phase);
	kvc_app_field(out, "created", "%u", rc == 0 ? res.created : 0);
	kvc_app_field(out, "adopted", "%u", rc == 0 ? res.adopted : 0);
	kvc_app_field(out, "deleted", "%u", rc == 0 ? res.deleted : 0);
	kvc_app_field(out, "committed", "%u", rc == 0 ? res.committed : 0);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&e->mu);
	e->created += res.created;
	e->adopted += res.adopted;
	e->deleted += res.deleted;
	e->committed += res.committed;
	pthread_mutex_unlock(&e->mu);
	if (res.requeue)
		out->requeue_ns = 10 * KVC_MS;
	return rc;
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
			rc = kvc_vshard_stamp(e->app.kube, &kvc_wf_workflows, md_str(obj, "namespace"), obj,
			                      kvc_member_vshards(e->app.m));
			if (rc < 0 && rc != KVS_ENOTFOUND)
				kvc_app_log(&e->app, "stamp", "object", key, "error", kvs_error_last(), (const char *)NULL);
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
	kvc_metrics_runtime(b, e->app.m, e->q, infs, 3, &c);
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
	kvc_mbuf_family(b, "kvsplit_workflow_pods_completed_total", "counter",
	                "Finished task Pods labelled completed (their results committed; they leave the cache).");
	kvc_mbuf_sample(b, "kvsplit_workflow_pods_completed_total", NULL, (double)ks.pods_completed);
	kvc_mbuf_family(b, "kvsplit_workflow_pods_complete_errors_total", "counter",
	                "Completed labels that failed (the Pod is labelled by a later reconcile).");
	kvc_mbuf_sample(b, "kvsplit_workflow_pods_complete_errors_total", NULL, (double)ks.pods_complete_failed);
	pthread_mutex_lock(&e->mu);
	double runs = (double)e->gc.runs, gdel = (double)e->gc.deleted, gfreed = (double)e->gc.bytes_freed;
	pthread_mutex_unlock(&e->mu);
	kvc_mbuf_family(b, "kvsplit_workflow_gc_leader", "gauge", "1 while this replica runs the singleton gc.");
	kvc_mbuf_sample(b, "kvsplit_workflow_gc_leader", NULL, __atomic_load_n(&e->gc.leading, __ATOMIC_SEQ_CST) ? 1 : 0);
	kvc_mbuf_family(b, "kvsplit_workflow_gc_runs_total", "counter", "kvs_gc rounds run here (one per namespace).");
	kvc_mbuf_sample(b, "kvsplit_workflow_gc_runs_total", NULL, runs);
	kvc_mbuf_family(b, "kvsplit_workflow_gc_segments_deleted_total", "counter", "Segments gc deleted here.");
	kvc_mbuf_sample(b, "kvsplit_workflow_gc_segments_deleted_total", NULL, gdel);
	kvc_mbuf_family(b, "kvsplit_workflow_gc_bytes_freed_total", "counter", "Bytes of the segments gc deleted here.");
	kvc_mbuf_sample(b, "kvsplit_workflow_gc_bytes_freed_total", NULL, gfreed);
	return 0;
}

/* ---- gc: a singleton task ------------------------------------------------------ */

/* Stop a round when we stop leading or the process stops. */
static int gc_on_segment(void *ctx, const char *name, uint64_t bytes)
{
	gc_task *g = ctx;
	(void)name;
	(void)bytes;
	return __atomic_load_n(&g->stop, __ATOMIC_SEQ_CST) || !__atomic_load_n(&g->leading, __ATOMIC_SEQ_CST);
}

/* The namespaces to collect: --namespace, else those holding Workflows. */
static unsigned gc_namespaces(ctl *e, char (*out)[64], unsigned cap)
{
	unsigned n = 0;
	if (*e->watch_ns) {
		snprintf(out[0], 64, "%s", e->watch_ns);
		return 1;
	}
	kvs_kube_list_options lo = KVS_KUBE_LIST_OPTIONS_INIT;
	kvs_kube_page *pg = NULL;
	char cont[1024] = "";
	lo.metadata_only = 1;
	lo.limit = 500;
	do {
		lo.continue_token = *cont ? cont : NULL;
		if (kvs_kube_list(&pg, e->app.kube, &kvc_wf_workflows, KVS_KUBE_ALL_NAMESPACES, &lo, NULL) < 0)
			return n;
		const cJSON *it;
		cJSON_ArrayForEach(it, pg->items)
		{
			const char *ns = md_str(it, "namespace");
			unsigned j;
			if (!ns || strlen(ns) >= 64)
				continue;
			for (j = 0; j < n && strcmp(out[j], ns); j++)
				;
			if (j == n && n < cap)
				snprintf(out[n++], 64, "%s", ns);
		}
		snprintf(cont, sizeof(cont), "%s", pg->continue_token ? pg->continue_token : "");
		kvs_kube_page_free(pg);
	} while (*cont);
	return n;
}

static void *gc_thread(void *arg)
{
	ctl *e = arg;
	gc_task *g = &e->gc;
	static char nss[64][64];
	for (;;) {
		pthread_mutex_lock(&g->mu);
		while (!g->due && !g->stop)
			pthread_cond_wait(&g->cv, &g->mu);
		int stop = g->stop;
		g->due = 0;
		pthread_mutex_unlock(&g->mu);
		if (stop)
			return NULL;
		unsigned n = gc_namespaces(e, nss, 64);
		for (unsigned i = 0; i < n && !gc_on_segment(g, NULL, 0); i++) {
			kvs_gc_options go = KVS_GC_OPTIONS_INIT;
			kvs_gc_report r;
			struct timespec t0, t1;
			memset(&r, 0, sizeof(r));
			go.grace_s = g->grace_s;
			go.on_segment = gc_on_segment;
			go.ctx = g;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			int rc = kvc_wf_kube_gc(e->ops, nss[i], &go, &r);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			char ix[24], sg[24], rf[24], dl[24], fr[24], du[24];
			snprintf(ix, sizeof(ix), "%" PRIu64, r.indexes);
			snprintf(sg, sizeof(sg), "%" PRIu64, r.segments);
			snprintf(rf, sizeof(rf), "%" PRIu64, r.referenced);
			snprintf(dl, sizeof(dl), "%" PRIu64, r.deleted);
			snprintf(fr, sizeof(fr), "%" PRIu64, r.bytes_freed);
			snprintf(du, sizeof(du), "%lld",
			         (long long)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
			kvc_app_log(&e->app, "gc", "namespace", nss[i], "indexes", ix, "segments", sg, "referenced", rf,
			            "deleted", dl, "bytes_freed", fr, "dur_us", du, rc < 0 ? "error" : NULL,
			            rc < 0 ? kvs_error_last() : NULL, (const char *)NULL);
			pthread_mutex_lock(&e->mu);
			g->runs++;
			g->deleted += r.deleted;
			g->bytes_freed += r.bytes_freed;
			pthread_mutex_unlock(&e->mu);
		}
	}
}

/* On the keepalive thread, after each member tick: the election, and a gc
 * round every --gc-interval while leading. */
static int64_t on_tick(void *ctx)
{
	ctl *e = ctx;
	gc_task *g = &e->gc;
	if (!g->l)
		return 0;
	int64_t now = kvc_now(kvc_clock_system());
	if (kvc_leader_next_tick(g->l) <= now)
		kvc_leader_tick(g->l);
	int lead = kvc_leader_is_leader(g->l);
	if (lead != g->leading) {
		__atomic_store_n(&g->leading, lead, __ATOMIC_SEQ_CST);
		kvc_app_log(&e->app, "leader", "task", "gc", "leading", lead ? "true" : "false", (const char *)NULL);
		g->next_ns = now; /* a new leader collects at once */
	}
	if (lead && now >= g->next_ns) {
		pthread_mutex_lock(&g->mu);
		g->due = 1;
		pthread_cond_signal(&g->cv);
		pthread_mutex_unlock(&g->mu);
		g->next_ns = now + g->interval_ns;
	}
	int64_t next = kvc_leader_next_tick(g->l);
	return lead && g->next_ns < next ? g->next_ns : next;
}

/* ---- flags and the keepalive's hook ------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f, "usage: kvsplit-controller [--kubeconfig PATH] [--namespace NS] [--identity NAME]\n"
	           "                          [--lease-duration DURATION] [--metrics-addr HOST:PORT]\n"
	           "                          [--workers N] [--qps N] [--resync DURATION] [--store NAME]\n"
	           "                          [--lease-namespace NS] [--gc-interval DURATION]\n"
	           "                          [--gc-grace DURATION] [--log-json]\n");
}

/* After a tick that changed the shards held: Pods first, so a Workflow
 * reconciled with a cold Pod cache reads its Running nodes' Pods from the
 * server, never takes them for deleted. */
static void on_shards(void *ctx, const kvc_shardset *held)
{
	ctl *e = ctx;
	kvc_informer_set_shards(e->pods, held);
	kvc_informer_set_shards(e->wf, held);
}

int main(int argc, char **argv)
{
	const char *store = "workflows", *lease_ns = NULL;
	int64_t gc_interval = 3600 * KVC_S, gc_grace = 0;
	kvc_app_flags f;
	char host[256];
	ctl e;
	int rc;

	kvc_app_flags_init(&f, 30 * KVC_S);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (kvc_app_flag(&f, argc, argv, &i))
			continue;
		if (strcmp(a, "--store") == 0 && v) {
			store = v;
			i++;
		} else if (strcmp(a, "--lease-namespace") == 0 && v) {
			lease_ns = v;
			i++;
		} else if (strcmp(a, "--gc-interval") == 0 && v) {
			gc_interval = kvc_app_parse_duration(v);
			i++;
		} else if (strcmp(a, "--gc-grace") == 0 && v) {
			gc_grace = kvc_app_parse_duration(v);
			i++;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "kvsplit-controller: unknown or incomplete option %s\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (!*store || strlen(store) > 40) {
		fprintf(stderr, "kvsplit-controller: --store 1..40 characters\n");
		return 2;
	}
	if (gc_interval < 0 || gc_grace < 0 || gc_grace > 365 * 86400 * KVC_S || gc_grace % KVC_S != 0) {
		fprintf(stderr, "kvsplit-controller: --gc-interval >= 0 (0: no gc); --gc-grace whole seconds\n");
		return 2;
	}
	if (kvc_app_check(&f, "kvsplit-controller", host, sizeof(host)) < 0)
		return 2;

	/* 1-2. Clients (objects and stores; the keepalive's Leases) and
	 * membership. The Leases live in --lease-namespace, else --namespace,
	 * else the client's. */
	memset(&e, 0, sizeof(e));
	pthread_mutex_init(&e.mu, NULL);
	kvs_kube_options ko;
	if ((rc = kvc_app_open(&e.app, &f, GROUP, lease_ns ? lease_ns : f.ns, &ko)) < 0)
		goto fail;
	const char *watch_ns = f.ns ? f.ns : KVS_KUBE_ALL_NAMESPACES;
	e.watch_ns = watch_ns;
	pthread_mutex_init(&e.gc.mu, NULL);
	pthread_cond_init(&e.gc.cv, NULL);
	e.gc.interval_ns = gc_interval;
	e.gc.grace_s = (uint32_t)(gc_grace / KVC_S);
	if (gc_interval > 0) {
		/* The singleton gc: the Lease <group>-leader-gc beside the members'. */
		if ((rc = kvc_leader_new(&e.gc.l, GROUP "-leader-gc", f.identity, f.lease_ns, f.lease_ns * 2 / 3,
		                         f.lease_ns * 2 / 15, e.app.api, kvc_clock_system())) < 0)
			goto fail;
	}

	/* 3. Queues, informers, the reconciler, workers. */
	if ((rc = kvc_queue_new(&e.q, NULL, kvc_clock_system())) < 0 ||
	    (rc = kvc_queue_new(&e.sq, NULL, kvc_clock_system())) < 0)
		goto fail;
	kvc_informer_opts io = KVC_INFORMER_OPTS_INIT;
	kvc_informer_handlers ih = { &e, on_wf };
	io.name = "workflows";
	io.resource = &kvc_wf_workflows;
	io.ns = watch_ns;
	io.vshards = kvc_member_vshards(e.app.m);
	io.resync_ns = f.resync_ns;
	if ((rc = kvc_informer_new(&e.wf, e.app.kube, &io, &ih)) < 0 ||
	    (rc = kvc_informer_add_index(e.wf, INDEX_WF_UID, index_wf_uid, NULL)) < 0)
		goto fail;
	io.name = "unlabelled";
	io.unsharded = 1;
	io.resync_ns = 0;
	io.confirm_deletes = -1;
	io.transform = kvc_informer_metadata;
	ih.on_event = on_unlabelled;
	if ((rc = kvc_informer_new(&e.stamp, e.app.kube, &io, &ih)) < 0)
		goto fail;
	kvc_informer_opts po = KVC_INFORMER_OPTS_INIT;
	po.name = "pods";
	po.resource = &kvs_kube_pods;
	po.ns = watch_ns;
	/* Task Pods whose results are not yet recorded: a finished Pod is
	 * labelled completed once its node is committed and leaves the cache
	 * (as Argo's workflows.argoproj.io/completed), so a reconcile reads the
	 * live Pods only, not every Pod a 20,000-task workflow ever ran. */
	po.base_selector = KVC_WF_LABEL_UID ",!" KVC_WF_LABEL_COMPLETED;
	/* A Pod leaving the watch is not told apart with a GET: the handler
	 * only enqueues its Workflow either way. */
	po.confirm_deletes = -1;
	po.vshards = kvc_member_vshards(e.app.m);
	po.transform = pod_transform;
	ih.on_event = on_pod;
	if ((rc = kvc_informer_new(&e.pods, e.app.kube, &po, &ih)) < 0 ||
	    (rc = kvc_informer_add_index(e.pods, KVC_WF_INDEX_UID, kvc_wf_index_uid, NULL)) < 0)
		goto fail;
	kvs_kube_options so = ko;
	so.concurrency = 8;
	if ((rc = kvc_wf_kube_new(&e.ops, e.app.kube, &so, store, e.pods)) < 0)
		goto fail;
	kvc_wf_reconciler_opts ro = KVC_WF_RECONCILER_OPTS_INIT;
	ro.store = store;
	if ((rc = kvc_wf_reconciler_new(&e.rec, kvc_wf_kube_ops(), e.ops, &ro)) < 0)
		goto fail;
	if ((rc = kvc_informer_start(e.pods)) < 0 || (rc = kvc_informer_start(e.wf)) < 0 ||
	    (rc = kvc_informer_start(e.stamp)) < 0)
		goto fail;
	pthread_t th[66];
	kvc_app_worker w = { &e.app, e.q, e.wf, on_reconcile, &e, &e.mu, &e.c };
	for (unsigned i = 0; i < f.workers; i++)
		pthread_create(&th[i], NULL, kvc_app_worker_run, &w);
	pthread_create(&th[f.workers], NULL, stamper, &e);
	pthread_create(&e.gc.th, NULL, gc_thread, &e);

	kvc_metrics *metrics = NULL;
	if (f.metrics_addr && (rc = kvc_metrics_start(&metrics, f.metrics_addr, collect, &e)) < 0)
		goto fail;
	kvc_app_signals();
	{
		char port[16], ld[24];
		snprintf(port, sizeof(port), "%u", kvc_metrics_port(metrics));
		snprintf(ld, sizeof(ld), "%llds", (long long)(f.lease_ns / KVC_S));
		kvc_app_log(&e.app, "start", "namespace", *watch_ns ? watch_ns : "(all)", "lease",
		            kvc_member_lease_name(e.app.m), "lease_duration", ld, "store", store, "metrics_port", port,
		            (const char *)NULL);
	}

	/* 4-5. The keepalive until SIGTERM; then drain and release every
	 * shard (the next owners continue from the stored node status), then
	 * the Lease. */
	kvc_app_hooks hooks = { &e, on_shards, on_tick };
	int released = kvc_app_run(&e.app, &hooks);
	kvc_queue_shutdown(e.q);
	kvc_queue_shutdown(e.sq);
	for (unsigned i = 0; i <= f.workers; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_lock(&e.gc.mu);
	e.gc.stop = 1;
	pthread_cond_signal(&e.gc.cv);
	pthread_mutex_unlock(&e.gc.mu);
	pthread_join(e.gc.th, NULL);
	if (e.gc.l)
		kvc_leader_release(e.gc.l);
	kvc_leader_free(e.gc.l);
	kvc_metrics_stop(metrics);
	kvc_app_log(&e.app, "stopped", "released", released ? "true" : "false", (const char *)NULL);
	kvc_informer_free(e.wf);
	kvc_informer_free(e.stamp);
	kvc_informer_free(e.pods);
	kvc_wf_reconciler_free(e.rec);
	kvc_wf_kube_free(e.ops);
	kvc_queue_free(e.q);
	kvc_queue_free(e.sq);
	kvc_app_close(&e.app);
	return 0;

fail:
	fprintf(stderr, "kvsplit-controller: %s\n", kvs_error_last());
	return 1;
}
