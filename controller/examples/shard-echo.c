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

#define GROUP "shard-echo"
#define SELECTOR "demo=shard-echo"
#define ANN_OWNER "shard-echo/owner"
#define ANN_EPOCH "shard-echo/epoch"

typedef struct echo {
	const char *id;
	const char *ns;
	int json;
	kvs_kube *kube;        /* objects */
	kvs_kube *lease_kube;  /* the keepalive's, short timeouts */
	kvc_api *api;
	kvc_member *m;
	kvc_informer *inf;     /* the share: demo=shard-echo, our shards */
	kvc_informer *stamp;   /* demo=shard-echo without a vshard label */
	kvc_queue *q, *sq, *dq;  /* reconciles; stamps: our shards now, others' later */
	pthread_mutex_t mu;
	kvc_runtime_counters c;
} echo;

static volatile sig_atomic_t terminate;

static void on_signal(int sig)
{
	(void)sig;
	terminate = 1;
}

/* ---- logging: one line per event, key=value or JSON -------------------- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

/* Fields come in pairs: "key", "value", ... NULL. Values are strings. */
static void logv(const echo *e, const char *event, ...)
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
		printf("ts=%lld.%06ld event=%s member=%s", (long long)ts.tv_sec, ts.tv_nsec / 1000,
		       event, e->id);
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
	    cJSON_AddStringToObject(pa, ANN_OWNER, e->id) && cJSON_AddStringToObject(pa, ANN_EPOCH, ep))
		rc = kvs_kube_patch(NULL, e->kube, &kvs_kube_configmaps, e->ns, name,
		                    KVS_KUBE_PATCH_MERGE, p, NULL, NULL);
	cJSON_Delete(p);
	return rc;
}

/*
 * Level-based: read what is there, converge. Results: "unchanged",
 * "updated", "stale" (a higher epoch is written: a newer owner exists, we
 * stop), "gone", or an error.
 */
static const char *reconcile(echo *e, cJSON *obj, uint64_t epoch, int *rc)
{
	cJSON *fresh = NULL;
	*rc = 0;
	for (int attempt = 0; attempt < 3; attempt++) {
		uint64_t seen = epoch_of(obj);
		const char *owner = ann(obj, ANN_OWNER);
		if (seen > epoch)
			break;
		if (seen == epoch && owner && strcmp(owner, e->id) == 0) {
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
		*rc = kvs_kube_get(&fresh, e->kube, &kvs_kube_configmaps, e->ns, meta(obj, "name"), &go,
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

static void *worker(void *arg)
{
	echo *e = arg;
	const char *key;

	while (kvc_queue_get(e->q, &key, -1) == 0) {
		cJSON *obj = NULL;
		int shard = -1, rc = 0;
		uint64_t epoch;
		if (kvc_informer_get(e->inf, key, &obj, &shard) != 1 || shard < 0) {
			cJSON_Delete(obj); /* found but not yet stamped: no copy kept */
			kvc_queue_forget(e->q, key); /* deleted, or no longer ours */
			kvc_queue_done(e->q, key);
			continue;
		}
		if (!kvc_member_begin(e->m, (unsigned)shard, &epoch)) {
			cJSON_Delete(obj); /* not acting on it now: its next owner lists it */
			kvc_queue_forget(e->q, key);
			kvc_queue_done(e->q, key);
			continue;
		}
		struct timespec t0, t1;
		clock_gettime(CLOCK_REALTIME, &t0);
		const char *result = reconcile(e, obj, epoch, &rc);
		clock_gettime(CLOCK_REALTIME, &t1);
		char sh[16], ep[24], start[32], dur[24];
		snprintf(sh, sizeof(sh), "%d", shard);
		snprintf(ep, sizeof(ep), "%" PRIu64, epoch);
		snprintf(start, sizeof(start), "%lld.%06ld", (long long)t0.tv_sec, t0.tv_nsec / 1000);
		snprintf(dur, sizeof(dur), "%lld",
		         (long long)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
		logv(e, "reconcile", "object", key, "shard", sh, "epoch", ep, "result", result, "start",
		     start, "dur_us", dur, rc < 0 ? "error" : NULL, rc < 0 ? kvs_error_last() : NULL,
		     (const char *)NULL);
		kvc_member_end(e->m, (unsigned)shard);
		cJSON_Delete(obj);
		pthread_mutex_lock(&e->mu);
		e->c.reconciles++;
		if (rc < 0)
			e->c.reconcile_errors++;
		pthread_mutex_unlock(&e->mu);
		if (rc < 0)
			kvc_queue_add_rate_limited(e->q, key);
		else
			kvc_queue_forget(e->q, key);
		kvc_queue_done(e->q, key);
	}
	return NULL;
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
			unsigned v = kvc_member_vshards(e->m);
			if (!deferred && cJSON_IsString(uid) &&
			    !kvc_member_acting(e->m, kvc_vshard_of(uid->valuestring, v))) {
				cJSON_Delete(obj);
				kvc_queue_add_after(e->dq, key, KVC_S);
				kvc_queue_forget(q, key);
				kvc_queue_done(q, key);
				continue;
			}
			rc = kvc_vshard_stamp(e->kube, &kvs_kube_configmaps, e->ns, obj,
			                      kvc_member_vshards(e->m));
			if (rc < 0 && rc != KVS_ENOTFOUND)
				logv(e, "stamp", "object", key, "error", kvs_error_last(), (const char *)NULL);
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
	kvc_metrics_runtime(b, e->m, e->q, infs, 2, &c);
	return 0;
}

/* ---- flags ------------------------------------------------------------ */

/* "15s", "500ms", "2m", "1h", or plain seconds. -1 if malformed. */
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
	fprintf(f, "usage: shard-echo [--kubeconfig PATH] [--namespace NS] [--identity NAME]\n"
	           "                  [--lease-duration DURATION] [--metrics-addr HOST:PORT]\n"
	           "                  [--workers N] [--qps N] [--resync DURATION] [--log-json]\n");
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sleep until `until` (monotonic ns) or a signal, in short slices. */
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

/* After a tick: point the informer at the shards we hold now; log changes. */
static void follow_shards(echo *e, kvc_shardset *last, uint64_t *fences)
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
	logv(e, "shards", "held", h, "acquired", g, "released", l, "members", mem,
	     (const char *)NULL);
	*last = held;
	kvc_informer_set_shards(e->inf, &held);
}

int main(int argc, char **argv)
{
	const char *kubeconfig = NULL, *ns = NULL, *identity = NULL, *metrics_addr = NULL;
	int64_t lease = 15 * KVC_S, resync = 0;
	unsigned workers = 4;
	double qps = 100;
	char host[256];
	echo e;
	int json = 0, rc;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;
		if (strcmp(a, "--kubeconfig") == 0 && v)
			kubeconfig = v;
		else if (strcmp(a, "--namespace") == 0 && v)
			ns = v;
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
		else if (strcmp(a, "--log-json") == 0)
			json = 1, takes = 0;
		else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "shard-echo: unknown or incomplete option %s\n", a);
			usage(stderr);
			return 2;
		}
		i += takes;
	}
	if (lease < 3 * KVC_S || lease % KVC_S != 0 || resync < 0 || workers < 1 || workers > 64 ||
	    !(qps > 0 && qps <= 100000)) {
		fprintf(stderr, "shard-echo: --lease-duration must be whole seconds, at least 3s; "
		                "--workers 1..64; --qps > 0\n");
		return 2;
	}
	if (!identity) {
		if (gethostname(host, sizeof(host)) != 0 || !host[0]) {
			fprintf(stderr, "shard-echo: no --identity and no hostname\n");
			return 2;
		}
		host[sizeof(host) - 1] = '\0';
		identity = host;
	}

	/* 1. Clients: one for objects, one for the keepalive's Leases. */
	memset(&e, 0, sizeof(e));
	e.id = identity;
	e.json = json;
	pthread_mutex_init(&e.mu, NULL);
	kvc_member_opts mo = KVC_MEMBER_OPTS_INIT;
	mo.group = GROUP;
	mo.identity = identity;
	mo.lease_duration_ns = lease;
	mo.renew_deadline_ns = lease * 2 / 3; /* client-go's ratios: 15 s, 10 s, 2 s */
	mo.retry_period_ns = lease * 2 / 15;
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	ko.kubeconfig = kubeconfig;
	ko.namespace_ = ns;
	ko.qps = qps;
	ko.burst = qps > 50 ? (unsigned)(2 * qps) : 100;
	if ((rc = kvs_kube_open(&e.kube, &ko)) < 0)
		goto fail;
	if (kvs_kube_tls_insecure(e.kube))
		fprintf(stderr, "%s: warning: TLS certificate verification is off "
		        "(insecure-skip-tls-verify in the kubeconfig)\n", "shard-echo");
	kvs_kube_options lo = ko;
	kvc_kubeapi_lease_options(&lo, &mo);
	if ((rc = kvs_kube_open(&e.lease_kube, &lo)) < 0)
		goto fail;
	e.ns = kvs_kube_namespace(e.kube);

	/* 2. Membership over Leases. */
	if ((rc = kvc_kubeapi_new(&e.api, e.lease_kube, e.ns)) < 0 ||
	    (rc = kvc_member_new(&e.m, &mo, e.api, kvc_clock_system(), NULL)) < 0)
		goto fail;

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
	io.vshards = kvc_member_vshards(e.m);
	io.transform = kvc_informer_metadata; /* we read metadata only */
	io.resync_ns = resync;
	kvc_informer_handlers ih = { &e, on_share };
	if ((rc = kvc_informer_new(&e.inf, e.kube, &io, &ih)) < 0)
		goto fail;
	io.name = "unlabelled";
	io.unsharded = 1;
	io.resync_ns = 0;
	io.confirm_deletes = -1; /* a stamped object leaves this view: no need to ask */
	ih.on_event = on_unlabelled;
	if ((rc = kvc_informer_new(&e.stamp, e.kube, &io, &ih)) < 0)
		goto fail;
	if ((rc = kvc_informer_start(e.inf)) < 0 || (rc = kvc_informer_start(e.stamp)) < 0)
		goto fail;
	pthread_t th[66];
	for (unsigned i = 0; i < workers; i++)
		pthread_create(&th[i], NULL, worker, &e);
	stamp_arg now_arg = { &e, 0 }, later_arg = { &e, 1 };
	pthread_create(&th[workers], NULL, stamper, &now_arg);
	pthread_create(&th[workers + 1], NULL, stamper, &later_arg);

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
		logv(&e, "start", "namespace", e.ns, "lease", kvc_member_lease_name(e.m),
		     "lease_duration", ld, "metrics_port", port, (const char *)NULL);
	}

	/* 4. The keepalive: tick, follow the shard set, sleep. */
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
	kvc_queue_shutdown(e.dq);
	for (unsigned i = 0; i <= workers + 1; i++)
		pthread_join(th[i], NULL);
	kvc_metrics_stop(metrics);
	logv(&e, "stopped", "released", kvc_member_stopped(e.m) ? "true" : "false",
	     (const char *)NULL);
	kvc_informer_free(e.inf);
	kvc_informer_free(e.stamp);
	kvc_queue_free(e.q);
	kvc_queue_free(e.sq);
	kvc_queue_free(e.dq);
	kvc_member_free(e.m);
	kvc_kubeapi_free(e.api);
	kvs_kube_free(e.lease_kube);
	kvs_kube_free(e.kube);
	return 0;

fail:
	fprintf(stderr, "shard-echo: %s\n", kvs_error_last());
	return 1;
}
