/*
 * shard-echo — the smallest controller on the sharding runtime; copy it.
 *
 * It reconciles the ConfigMaps labelled demo=shard-echo in its namespace
 * and, for each one it owns, sets the annotations shard-echo/owner (its
 * identity) and shard-echo/epoch (its ownership epoch), with an update
 * conditional on the resourceVersion it read, never over a higher epoch.
 * N copies split the ConfigMaps between them; kill one and the others take
 * its share; SIGTERM releases its shards and Lease and exits 0.
 *
 *   shard-echo [--kubeconfig PATH] [--namespace NS] [--identity NAME]
 *              [--lease-duration DURATION] [--metrics-addr HOST:PORT]
 *              [--workers N] [--qps N] [--resync DURATION] [--log-json]
 *
 * The walk-through is in docs/controller.md ("Writing a controller").
 * Threads: main runs the keepalive (kvc_member_tick); two informers (the
 * member's share, and unlabelled objects to stamp) each run their own;
 * workers take keys from the queues; libmicrohttpd serves /metrics.
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
#include "controller/member.h"
#include "controller/metrics.h"
#include "controller/workqueue.h"

#define GROUP "shard-echo"
#define SELECTOR "demo=shard-echo"
#define ANN_OWNER "shard-echo/owner"
#define ANN_EPOCH "shard-echo/epoch"

typedef struct echo {
	kvc_app app;           /* identity, clients (objects; the keepalive's), membership */
	const char *ns;
	kvc_informer *inf;     /* the share: demo=shard-echo, our shards */
	kvc_informer *stamp;   /* demo=shard-echo without a vshard label */
	kvc_queue *q, *sq, *dq;  /* reconciles; stamps: our shards now, others' later */
	pthread_mutex_t mu;
	kvc_runtime_counters c;
} echo;

/* ---- reconcile ------------------------------------------------------------ */

static const char *ann(const cJSON *obj, const char *key)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(
	        cJSON_GetObjectItemCaseSensitive(md, "annotations"), key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *meta(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(
	        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static uint64_t epoch_of(const cJSON *obj)
{
	const char *s = ann(obj, ANN_EPOCH);
	return s ? strtoull(s, NULL, 10) : 0;
}

/* Set our annotations, conditional on the resourceVersion of `obj`. */
static int annotate(echo *e, const cJSON *obj, uint64_t epoch)
{
	char ep[24];
	const char *name = meta(obj, "name"), *rv = meta(obj, "resourceVersion");
	if (!name || !rv)
		return KVS_EINVAL;
	snprintf(ep, sizeof(ep), "%" PRIu64, epoch);
	cJSON *p = cJSON_CreateObject(), *pm = cJSON_AddObjectToObject(p, "metadata");
	cJSON *pa = pm ? cJSON_AddObjectToObject(pm, "annotations") : NULL;
	int rc = KVS_ENOMEM;
	if (pa && cJSON_AddStringToObject(pm, "resourceVersion", rv) &&
	    cJSON_AddStringToObject(pa, ANN_OWNER, e->app.id) && cJSON_AddStringToObject(pa, ANN_EPOCH, ep))
		rc = kvs_kube_patch(NULL, e->app.kube, &kvs_kube_configmaps, e->ns, name,
		                    KVS_KUBE_PATCH_MERGE, p, NULL, NULL);
	cJSON_Delete(p);
	return rc;
}

/*
 * Level-based: read what is there, converge. Results: "unchanged",
 * "updated", "stale" (a higher epoch is written: a newer owner exists, we
 * stop), "gone", or an error.
 */
static const char *reconcile(echo *e, const cJSON *obj, uint64_t epoch, int *rc)
{
	cJSON *fresh = NULL;
	*rc = 0;
	for (int attempt = 0; attempt < 3; attempt++) {
		uint64_t seen = epoch_of(obj);
		const char *owner = ann(obj, ANN_OWNER);
		if (seen > epoch)
			break;
		if (seen == epoch && owner && strcmp(owner, e->app.id) == 0) {
			cJSON_Delete(fresh);
			return "unchanged";
		}
		*rc = annotate(e, obj, epoch);
		if (*rc == 0) {
			cJSON_Delete(fresh);
			return "updated";
		}
		if (*rc != KVS_ECONFLICT)
			break;
		/* The cache was behind: read the object and decide again. */
		kvs_kube_get_options go = KVS_KUBE_GET_OPTIONS_INIT;
		go.metadata_only = 1;
		cJSON_Delete(fresh);
		fresh = NULL;
		*rc = kvs_kube_get(&fresh, e->app.kube, &kvs_kube_configmaps, e->ns, meta(obj, "name"), &go,
		                   NULL);
		if (*rc < 0)
			break;
		obj = fresh;
	}
	uint64_t seen = epoch_of(obj);
	cJSON_Delete(fresh);
	if (*rc == KVS_ENOTFOUND) {
		*rc = 0;
		return "gone";
	}
	if (*rc == 0 && seen > epoch)
		return "stale";
	return *rc == KVS_ECONFLICT ? "conflict" : "error";
}

/* The worker loop's callback (kvc_app_worker_run runs the rest: the cache,
 * the shard held, the log line, the queue). */
static int on_reconcile(void *ctx, const char *key, const cJSON *obj, unsigned shard, uint64_t epoch,
                        kvc_app_reconciled *out)
{
	int rc;
	(void)key;
	(void)shard;
	out->result = reconcile(ctx, obj, epoch, &rc);
	return rc;
}

/*
 * Any replica may stamp: the label is a pure function of the uid, and a 409
 * means someone else did. To spare the server most of those 409s, a member
 * stamps the objects of shards it holds at once (from sq) and the others'
 * only after a second (from dq), when their owner has usually done it.
 */
typedef struct stamp_arg {
	echo *e;
	int deferred;
} stamp_arg;

static void *stamper(void *arg)
{
	echo *e = ((stamp_arg *)arg)->e;
	int deferred = ((stamp_arg *)arg)->deferred;
	kvc_queue *q = deferred ? e->dq : e->sq;
	const char *key;
	while (kvc_queue_get(q, &key, -1) == 0) {
		cJSON *obj = NULL;
		int rc = 0;
		if (kvc_informer_get(e->stamp, key, &obj, NULL) == 1) {
			const cJSON *uid = cJSON_GetObjectItemCaseSensitive(
			        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "uid");
			unsigned v = kvc_member_vshards(e->app.m);
			if (!deferred && cJSON_IsString(uid) &&
			    !kvc_member_acting(e->app.m, kvc_vshard_of(uid->valuestring, v))) {
				cJSON_Delete(obj);
				kvc_queue_add_after(e->dq, key, KVC_S);
				kvc_queue_forget(q, key);
				kvc_queue_done(q, key);
				continue;
			}
			rc = kvc_vshard_stamp(e->app.kube, &kvs_kube_configmaps, e->ns, obj,
			                      kvc_member_vshards(e->app.m));
			if (rc < 0 && rc != KVS_ENOTFOUND)
				kvc_app_log(&e->app, "stamp", "object", key, "error", kvs_error_last(), (const char *)NULL);
		}
		cJSON_Delete(obj);
		if (rc < 0 && rc != KVS_ENOTFOUND)
			kvc_queue_add_rate_limited(q, key);
		else
			kvc_queue_forget(q, key);
		kvc_queue_done(q, key);
	}
	return NULL;
}

/* Handlers only enqueue keys. */
static void on_share(void *ctx, kvc_inf_event ev, const char *key, int shard, const cJSON *obj)
{
	echo *e = ctx;
	if (ev == KVC_INF_ADDED || ev == KVC_INF_UPDATED || ev == KVC_INF_RESYNC)
		kvc_queue_add(e->q, key);
}

static void on_unlabelled(void *ctx, kvc_inf_event ev, const char *key, int shard,
                          const cJSON *obj)
{
	echo *e = ctx;
	if (ev == KVC_INF_ADDED || ev == KVC_INF_UPDATED)
		kvc_queue_add(e->sq, key);
}

static int collect(void *ctx, kvc_mbuf *b)
{
	echo *e = ctx;
	kvc_informer *infs[2] = { e->inf, e->stamp };
	kvc_runtime_counters c;
	pthread_mutex_lock(&e->mu);
	c = e->c;
	pthread_mutex_unlock(&e->mu);
	kvc_metrics_runtime(b, e->app.m, e->q, infs, 2, &c);
	return 0;
}

/* ---- flags and the keepalive's hook ------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f, "usage: shard-echo [--kubeconfig PATH] [--namespace NS] [--identity NAME]\n"
	           "                  [--lease-duration DURATION] [--metrics-addr HOST:PORT]\n"
	           "                  [--workers N] [--qps N] [--resync DURATION] [--log-json]\n");
}

/* After a tick that changed the shards held: point the informer at them. */
static void on_shards(void *ctx, const kvc_shardset *held)
{
	echo *e = ctx;
	kvc_informer_set_shards(e->inf, held);
}

int main(int argc, char **argv)
{
	kvc_app_flags f;
	char host[256];
	echo e;
	int rc;

	kvc_app_flags_init(&f, 0);
	for (int i = 1; i < argc; i++) {
		if (kvc_app_flag(&f, argc, argv, &i))
			continue;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		fprintf(stderr, "shard-echo: unknown or incomplete option %s\n", argv[i]);
		usage(stderr);
		return 2;
	}
	if (kvc_app_check(&f, "shard-echo", host, sizeof(host)) < 0)
		return 2;

	/* 1-2. Clients (one for objects, one for the keepalive's Leases) and
	 * membership over Leases. */
	memset(&e, 0, sizeof(e));
	pthread_mutex_init(&e.mu, NULL);
	if ((rc = kvc_app_open(&e.app, &f, GROUP, f.ns, NULL)) < 0)
		goto fail;
	e.ns = kvs_kube_namespace(e.app.kube);

	/* 3. Queues, informers (handlers only enqueue), workers. */
	if ((rc = kvc_queue_new(&e.q, NULL, kvc_clock_system())) < 0 ||
	    (rc = kvc_queue_new(&e.sq, NULL, kvc_clock_system())) < 0 ||
	    (rc = kvc_queue_new(&e.dq, NULL, kvc_clock_system())) < 0)
		goto fail;
	kvc_informer_opts io = KVC_INFORMER_OPTS_INIT;
	io.name = "share";
	io.resource = &kvs_kube_configmaps;
	io.ns = e.ns;
	io.base_selector = SELECTOR;
	io.vshards = kvc_member_vshards(e.app.m);
	io.transform = kvc_informer_metadata; /* we read metadata only */
	io.resync_ns = f.resync_ns;
	kvc_informer_handlers ih = { &e, on_share };
	if ((rc = kvc_informer_new(&e.inf, e.app.kube, &io, &ih)) < 0)
		goto fail;
	io.name = "unlabelled";
	io.unsharded = 1;
	io.resync_ns = 0;
	io.confirm_deletes = -1; /* a stamped object leaves this view: no need to ask */
	ih.on_event = on_unlabelled;
	if ((rc = kvc_informer_new(&e.stamp, e.app.kube, &io, &ih)) < 0)
		goto fail;
	if ((rc = kvc_informer_start(e.inf)) < 0 || (rc = kvc_informer_start(e.stamp)) < 0)
		goto fail;
	pthread_t th[66];
	kvc_app_worker w = { &e.app, e.q, e.inf, on_reconcile, &e, &e.mu, &e.c };
	for (unsigned i = 0; i < f.workers; i++)
		pthread_create(&th[i], NULL, kvc_app_worker_run, &w);
	stamp_arg now_arg = { &e, 0 }, later_arg = { &e, 1 };
	pthread_create(&th[f.workers], NULL, stamper, &now_arg);
	pthread_create(&th[f.workers + 1], NULL, stamper, &later_arg);

	kvc_metrics *metrics = NULL;
	if (f.metrics_addr && (rc = kvc_metrics_start(&metrics, f.metrics_addr, collect, &e)) < 0)
		goto fail;
	kvc_app_signals();
	{
		char port[16], ld[24];
		snprintf(port, sizeof(port), "%u", kvc_metrics_port(metrics));
		snprintf(ld, sizeof(ld), "%llds", (long long)(f.lease_ns / KVC_S));
		kvc_app_log(&e.app, "start", "namespace", e.ns, "lease", kvc_member_lease_name(e.app.m),
		            "lease_duration", ld, "metrics_port", port, (const char *)NULL);
	}

	/* 4-5. The keepalive (tick, follow the shard set, sleep) until SIGTERM;
	 * then drain and release every shard, then the Lease. */
	kvc_app_hooks hooks = { &e, on_shards, NULL };
	int released = kvc_app_run(&e.app, &hooks);
	kvc_queue_shutdown(e.q);
	kvc_queue_shutdown(e.sq);
	kvc_queue_shutdown(e.dq);
	for (unsigned i = 0; i <= f.workers + 1; i++)
		pthread_join(th[i], NULL);
	kvc_metrics_stop(metrics);
	kvc_app_log(&e.app, "stopped", "released", released ? "true" : "false", (const char *)NULL);
	kvc_informer_free(e.inf);
	kvc_informer_free(e.stamp);
	kvc_queue_free(e.q);
	kvc_queue_free(e.sq);
	kvc_queue_free(e.dq);
	kvc_app_close(&e.app);
	return 0;

fail:
	fprintf(stderr, "shard-echo: %s\n", kvs_error_last());
	return 1;
}
