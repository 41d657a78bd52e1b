/*
 * app.c — the process around a controller (app.h): flags, log lines,
 * clients and membership, the worker loop, the keepalive with its SIGTERM
 * handoff.
 */
#include "controller/app.h"

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

#include "controller/clock.h"
#include "controller/kubeapi.h"

static volatile sig_atomic_t terminate;

static void on_signal(int sig)
{
	(void)sig;
	terminate = 1;
}

void kvc_app_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* ---- flags ------------------------------------------------------------ */

void kvc_app_flags_init(kvc_app_flags *f, int64_t resync_ns)
{
	memset(f, 0, sizeof(*f));
	f->lease_ns = 15 * KVC_S;
	f->resync_ns = resync_ns;
	f->workers = 4;
	f->qps = 100;
}

int64_t kvc_app_parse_duration(const char *s)
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

int kvc_app_flag(kvc_app_flags *f, int argc, char **argv, int *i)
{
	const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
	if (strcmp(a, "--log-json") == 0) {
		f->json = 1;
		return 1;
	}
	if (!v)
		return 0;
	if (strcmp(a, "--kubeconfig") == 0)
		f->kubeconfig = v;
	else if (strcmp(a, "--namespace") == 0)
		f->ns = v;
	else if (strcmp(a, "--identity") == 0)
		f->identity = v;
	else if (strcmp(a, "--lease-duration") == 0)
		f->lease_ns = kvc_app_parse_duration(v);
	else if (strcmp(a, "--metrics-addr") == 0)
		f->metrics_addr = v;
	else if (strcmp(a, "--workers") == 0)
		f->workers = (unsigned)strtoul(v, NULL, 10);
	else if (strcmp(a, "--qps") == 0)
		f->qps = strtod(v, NULL);
	else if (strcmp(a, "--resync") == 0)
		f->resync_ns = kvc_app_parse_duration(v);
	else
		return 0;
	(*i)++;
	return 1;
}

int kvc_app_check(kvc_app_flags *f, const char *prog, char *host, size_t cap)
{
	if (f->lease_ns < 3 * KVC_S || f->lease_ns % KVC_S != 0 || f->resync_ns < 0 || f->workers < 1 ||
	    f->workers > 64 || !(f->qps > 0 && f->qps <= 100000)) {
		fprintf(stderr, "%s: --lease-duration must be whole seconds, at least 3s; --workers 1..64; --qps > 0\n",
		        prog);
		return -1;
	}
	if (!f->identity) {
		if (cap < 2 || gethostname(host, cap) != 0 || !host[0]) {
			fprintf(stderr, "%s: no --identity and no hostname\n", prog);
			return -1;
		}
		host[cap - 1] = '\0';
		f->identity = host;
	}
	return 0;
}

/* ---- clients and membership -------------------------------------------- */

int kvc_app_open(kvc_app *a, const kvc_app_flags *f, const char *group, const char *client_ns,
                 kvs_kube_options *ko_out)
{
	int rc;
	memset(a, 0, sizeof(*a));
	a->id = f->identity;
	a->json = f->json;
	a->lease_ns = f->lease_ns;
	kvc_member_opts mo = KVC_MEMBER_OPTS_INIT;
	mo.group = group;
	mo.identity = f->identity;
	mo.lease_duration_ns = f->lease_ns;
	mo.renew_deadline_ns = f->lease_ns * 2 / 3; /* client-go's ratios: 15 s, 10 s, 2 s */
	mo.retry_period_ns = f->lease_ns * 2 / 15;
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	ko.kubeconfig = f->kubeconfig;
	ko.namespace_ = client_ns;
	ko.qps = f->qps;
	ko.burst = f->qps > 50 ? (unsigned)(2 * f->qps) : 100;
	if (ko_out)
		*ko_out = ko;
	if ((rc = kvs_kube_open(&a->kube, &ko)) < 0)
		return rc;
	if (kvs_kube_tls_insecure(a->kube))
		fprintf(stderr, "%s: warning: TLS certificate verification is off "
		        "(insecure-skip-tls-verify in the kubeconfig)\n", group);
	kvs_kube_options lo = ko;
	kvc_kubeapi_lease_options(&lo, &mo);
	if ((rc = kvs_kube_open(&a->lease_kube, &lo)) < 0)
		return rc;
	if ((rc = kvc_kubeapi_new(&a->api, a->lease_kube, kvs_kube_namespace(a->kube))) < 0)
		return rc;
	return kvc_member_new(&a->m, &mo, a->api, kvc_clock_system(), NULL);
}

void kvc_app_close(kvc_app *a)
{
	kvc_member_free(a->m);
	kvc_kubeapi_free(a->api);
	kvs_kube_free(a->lease_kube);
	kvs_kube_free(a->kube);
	a->m = NULL;
	a->api = NULL;
	a->lease_kube = a->kube = NULL;
}

/* ---- logging: one line per event, key=value or JSON -------------------- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

/* One line from "key", "value" pairs ending with a NULL key. */
static void log_pairs(const kvc_app *a, const char *event, const char *const *kv)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&log_mu);
	if (a->json)
		printf("{\"ts\":%lld.%06ld,\"event\":\"%s\",\"member\":\"%s\"", (long long)ts.tv_sec,
		       ts.tv_nsec / 1000, event, a->id);
	else
		printf("ts=%lld.%06ld event=%s member=%s", (long long)ts.tv_sec, ts.tv_nsec / 1000, event,
		       a->id);
	for (; kv[0]; kv += 2) {
		const char *k = kv[0], *v = kv[1];
		if (a->json) {
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
	puts(a->json ? "}" : "");
	fflush(stdout);
	pthread_mutex_unlock(&log_mu);
}

#define LOG_PAIRS_MAX 32

void kvc_app_log(const kvc_app *a, const char *event, ...)
{
	const char *kv[2 * LOG_PAIRS_MAX + 1];
	size_t n = 0;
	va_list ap;
	const char *k;

	va_start(ap, event);
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		if (n < 2 * LOG_PAIRS_MAX) {
			kv[n++] = k;
			kv[n++] = v;
		}
	}
	va_end(ap);
	kv[n] = NULL;
	log_pairs(a, event, kv);
}

/* ---- the worker loop ---------------------------------------------------- */

void kvc_app_field(kvc_app_reconciled *out, const char *key, const char *fmt, ...)
{
	va_list ap;

	if (out->nfields >= KVC_APP_FIELDS_MAX)
		return;
	out->fields[out->nfields].key = key;
	va_start(ap, fmt);
	vsnprintf(out->fields[out->nfields].value, sizeof(out->fields[0].value), fmt, ap);
	va_end(ap);
	out->nfields++;
}

/* The reconcile line: object, shard, epoch, result, the reconcile's
 * fields, start (realtime), dur_us, and error when it failed. */
static void log_reconcile(const kvc_app *a, const char *key, unsigned shard, uint64_t epoch,
                          const kvc_app_reconciled *r, int rc, const struct timespec *t0,
                          const struct timespec *t1)
{
	char sh[16], ep[24], start[32], dur[24];
	const char *kv[2 * (8 + KVC_APP_FIELDS_MAX) + 1];
	size_t n = 0;

	snprintf(sh, sizeof(sh), "%u", shard);
	snprintf(ep, sizeof(ep), "%" PRIu64, epoch);
	snprintf(start, sizeof(start), "%lld.%06ld", (long long)t0->tv_sec, t0->tv_nsec / 1000);
	snprintf(dur, sizeof(dur), "%lld",
	         (long long)((t1->tv_sec - t0->tv_sec) * 1000000 + (t1->tv_nsec - t0->tv_nsec) / 1000));
	kv[n++] = "object", kv[n++] = key;
	kv[n++] = "shard", kv[n++] = sh;
	kv[n++] = "epoch", kv[n++] = ep;
	kv[n++] = "result", kv[n++] = r->result ? r->result : rc < 0 ? "error" : "ok";
	for (unsigned i = 0; i < r->nfields; i++)
		kv[n++] = r->fields[i].key, kv[n++] = r->fields[i].value;
	kv[n++] = "start", kv[n++] = start;
	kv[n++] = "dur_us", kv[n++] = dur;
	if (rc < 0)
		kv[n++] = "error", kv[n++] = kvs_error_last();
	kv[n] = NULL;
	log_pairs(a, "reconcile", kv);
}

void *kvc_app_worker_run(void *arg)
{
	const kvc_app_worker *w = arg;
	const char *key;

	while (kvc_queue_get(w->q, &key, -1) == 0) {
		cJSON *obj = NULL;
		int shard = -1;
		uint64_t epoch;
		if (kvc_informer_get(w->inf, key, &obj, &shard) != 1 || shard < 0 ||
		    !kvc_member_begin(w->app->m, (unsigned)shard, &epoch)) {
			/* deleted, no longer ours or not stamped yet (the copy is
			 * not kept); or not ours to act on now: its next owner
			 * lists it */
			cJSON_Delete(obj);
			kvc_queue_forget(w->q, key);
			kvc_queue_done(w->q, key);
			continue;
		}
		kvc_app_reconciled r;
		struct timespec t0, t1;
		memset(&r, 0, sizeof(r));
		clock_gettime(CLOCK_REALTIME, &t0);
		int rc = w->reconcile(w->ctx, key, obj, (unsigned)shard, epoch, &r);
		clock_gettime(CLOCK_REALTIME, &t1);
		log_reconcile(w->app, key, (unsigned)shard, epoch, &r, rc, &t0, &t1);
		kvc_member_end(w->app->m, (unsigned)shard);
		cJSON_Delete(obj);
		pthread_mutex_lock(w->mu);
		w->counters->reconciles++;
		if (rc < 0)
			w->counters->reconcile_errors++;
		pthread_mutex_unlock(w->mu);
		if (rc < 0) {
			kvc_queue_add_rate_limited(w->q, key);
		} else {
			kvc_queue_forget(w->q, key);
			if (r.requeue_ns > 0)
				kvc_queue_add_after(w->q, key, r.requeue_ns);
		}
		kvc_queue_done(w->q, key);
	}
	return NULL;
}

/* ---- the keepalive ------------------------------------------------------ */

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

/* After a tick: log fences and shard-set changes; tell the program. */
static void follow_shards(kvc_app *a, const kvc_app_hooks *h, kvc_shardset *last, uint64_t *fences)
{
	kvc_shardset held;
	kvc_member_stats st;
	kvc_member_held(a->m, &held);
	kvc_member_stats_get(a->m, &st);
	if (st.fences != *fences) {
		char n[24];
		snprintf(n, sizeof(n), "%" PRIu64, st.fences);
		kvc_app_log(a, "fenced", "fences", n, (const char *)NULL);
		*fences = st.fences;
	}
	if (kvc_set_equal(&held, last))
		return;
	unsigned got = 0, lost = 0;
	for (unsigned s = 0; s < KVC_VSHARDS_MAX; s++) {
		got += kvc_set_has(&held, s) && !kvc_set_has(last, s);
		lost += !kvc_set_has(&held, s) && kvc_set_has(last, s);
	}
	char hs[16], g[16], l[16], mem[16];
	snprintf(hs, sizeof(hs), "%u", kvc_set_count(&held));
	snprintf(g, sizeof(g), "%u", got);
	snprintf(l, sizeof(l), "%u", lost);
	snprintf(mem, sizeof(mem), "%u", st.members);
	kvc_app_log(a, "shards", "held", hs, "acquired", g, "released", l, "members", mem, (const char *)NULL);
	*last = held;
	if (h && h->shards)
		h->shards(h->ctx, &held);
}

static int64_t tick(kvc_app *a, const kvc_app_hooks *h, kvc_shardset *last, uint64_t *fences)
{
	kvc_member_tick(a->m);
	follow_shards(a, h, last, fences);
	int64_t next = kvc_member_next_tick(a->m);
	if (h && h->tick) {
		int64_t t = h->tick(h->ctx);
		if (t > 0 && t < next)
			next = t;
	}
	return next;
}

int kvc_app_run(kvc_app *a, const kvc_app_hooks *h)
{
	kvc_shardset last;
	uint64_t fences = 0;
	kvc_set_clear(&last);
	while (!terminate)
		sleep_until(tick(a, h, &last, &fences));

	/* SIGTERM: drain and release every shard, then the Lease. */
	kvc_app_log(a, "stopping", (const char *)NULL);
	kvc_member_stop(a->m);
	int64_t give_up = mono_ns() + 2 * a->lease_ns;
	while (!kvc_member_stopped(a->m) && mono_ns() < give_up) {
		int64_t next = tick(a, h, &last, &fences), soon = mono_ns() + 20 * KVC_MS;
		terminate = 0;
		sleep_until(next < soon ? next : soon);
	}
	return kvc_member_stopped(a->m);
}
