/*
 * bench-watch.c — figures for watches and fsck (prints only, asserts nothing).
 *
 *  1. Watch latency: from the commit of a 1% edit of a 64 MiB JSON value to
 *     the watcher holding the whole verified new value (KVS_WATCH_VALUES),
 *     next to a cold kvs_get of the same value and the value's LZ4 floor
 *     (bench/floor.h: warm, best of 5). In-memory backend, then the API test
 *     server ($KVS_BUILD/kapi-server) when it is there.
 *  2. fsck throughput (segments/s) on a store of 10,000 small segments,
 *     through the API test server (on memory when it is not there).
 *
 * Usage: bench-watch [MiB]   (value size for 1; default 64)
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kvsplit.h>
#include <kvsplit/backend.h>
#include "store/mem/faults.h"

#include "floor.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Workflow-status-like JSON, exactly len bytes. */
static void make_json(char *buf, size_t len, uint64_t seed)
{
	static const char *phases[] = { "Succeeded", "Running", "Pending", "Failed" };
	size_t o = 0;
	uint64_t i = 0;

	o += (size_t)snprintf(buf, len, "{\"nodes\":{");
	while (o + 400 < len) {
		uint64_t r = rng(&seed);
		o += (size_t)snprintf(buf + o, len - o,
		        "\"wf-%08llx-%llu\":{\"id\":\"wf-%08llx-%llu\",\"name\":\"step-%llu\","
		        "\"type\":\"Pod\",\"phase\":\"%s\",\"startedAt\":\"2024-05-%02llu"
		        "T%02llu:%02llu:%02lluZ\",\"progress\":\"%llu/%llu\",\"resourcesDuration\":"
		        "{\"cpu\":%llu,\"memory\":%llu},\"outputs\":{\"exitCode\":\"%llu\"}},",
		        (unsigned long long)(r & 0xffffffff), (unsigned long long)i,
		        (unsigned long long)(r & 0xffffffff), (unsigned long long)i,
		        (unsigned long long)(i % 977), phases[r >> 62],
		        (unsigned long long)(1 + (r >> 8) % 28), (unsigned long long)((r >> 16) % 24),
		        (unsigned long long)((r >> 24) % 60), (unsigned long long)((r >> 32) % 60),
		        (unsigned long long)((r >> 40) % 9), (unsigned long long)9,
		        (unsigned long long)((r >> 20) % 5000), (unsigned long long)((r >> 28) % 90000),
		        (unsigned long long)((r >> 50) % 2));
		i++;
	}
	while (o < len - 2)
		buf[o++] = ' ';
	buf[o++] = '}';
	buf[o++] = '}';
}

/* ------------------------------------------------------------------------ */
/* The API test server                                                       */

typedef struct server {
	pid_t pid;
	char url[64];
	char dir[128];
	char kubeconfig[192];
} server;

static int server_start(server *sv)
{
	const char *bd = getenv("KVS_BUILD");
	char bin[512], portfile[256], text[1024];
	int port = 0;

	memset(sv, 0, sizeof(*sv));
	snprintf(bin, sizeof(bin), "%s/kapi-server", bd && *bd ? bd : "build");
	if (access(bin, X_OK) != 0)
		return -1;
	snprintf(sv->dir, sizeof(sv->dir), "/tmp/bench-watch-XXXXXX");
	if (!mkdtemp(sv->dir))
		return -1;
	snprintf(portfile, sizeof(portfile), "%s/port", sv->dir);
	fflush(stdout);
	sv->pid = fork();
	if (sv->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		freopen("/dev/null", "w", stdout);
		freopen("/dev/null", "w", stderr);
		execl(bin, bin, "--listen", "127.0.0.1:0", "--port-file", portfile, "--namespaces",
		      "default", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 10000 && port == 0; i++) {
		FILE *f = fopen(portfile, "r");
		if (f) {
			if (fscanf(f, "%d", &port) != 1)
				port = 0;
			fclose(f);
		}
		if (!port)
			usleep(1000);
	}
	if (!port)
		return -1;
	snprintf(sv->url, sizeof(sv->url), "http://127.0.0.1:%d", port);
	snprintf(sv->kubeconfig, sizeof(sv->kubeconfig), "%s/kubeconfig", sv->dir);
	snprintf(text, sizeof(text),
	         "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: %s\n"
	         "contexts:\n- name: k\n  context:\n    cluster: k\n    namespace: default\n"
	         "current-context: k\n", sv->url);
	FILE *f = fopen(sv->kubeconfig, "w");
	if (!f)
		return -1;
	fputs(text, f);
	fclose(f);
	return 0;
}

static void server_stop(server *sv)
{
	char path[256];

	if (sv->pid > 0) {
		kill(sv->pid, SIGKILL);
		waitpid(sv->pid, NULL, 0);
	}
	snprintf(path, sizeof(path), "%s/port", sv->dir);
	unlink(path);
	unlink(sv->kubeconfig);
	rmdir(sv->dir);
}

static int kube_backend(kvs_backend **out, const server *sv)
{
	kvs_kube_options o = KVS_KUBE_OPTIONS_INIT;

	o.kubeconfig = sv->kubeconfig;
	o.qps = KVS_KUBE_QPS_OFF; /* no client-side rate limit: measure the library */
	o.concurrency = 16;
	return kvs_backend_kube(out, &o);
}

/* ------------------------------------------------------------------------ */
/* 1. watch latency                                                          */

typedef struct watcher {
	kvs_watch *w;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int got;                /* events received */
	double t_last;
	size_t len_last;
	int err, stop;
} watcher;

static void *watch_thread(void *arg)
{
	watcher *wt = arg;

	while (!wt->stop) {
		kvs_watch_event ev;
		int rc = kvs_watch_next(&ev, wt->w, 200);
		if (rc == KVS_ETIMEOUT)
			continue;
		pthread_mutex_lock(&wt->mu);
		if (rc < 0) {
			fprintf(stderr, "watch: %s\n", kvs_error_last());
			wt->err = rc;
		} else {
			wt->t_last = now_s();
			wt->len_last = ev.value_len;
		}
		wt->got++;
		pthread_cond_broadcast(&wt->cv);
		pthread_mutex_unlock(&wt->mu);
	}
	return NULL;
}

static void wait_events(watcher *wt, int n)
{
	pthread_mutex_lock(&wt->mu);
	while (wt->got < n)
		pthread_cond_wait(&wt->cv, &wt->mu);
	pthread_mutex_unlock(&wt->mu);
}

static kvs_store *open_store(kvs_backend *b, const char *name)
{
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_store *st = NULL;

	o.name = name;
	if (kvs_open(&st, b, &o) < 0) {
		fprintf(stderr, "kvs_open: %s\n", kvs_error_last());
		exit(1);
	}
	return st;
}

static void latency(const char *what, kvs_backend *wb, kvs_backend *rb, kvs_backend *cb,
                    size_t len)
{
	kvs_store *wst = open_store(wb, "bench"), *rst = open_store(rb, "bench");
	kvs_watch_options wo = KVS_WATCH_OPTIONS_INIT;
	watcher wt;
	pthread_t th;
	char *v = malloc(len);
	kvs_mem_stats s0, s1;
	int is_mem = strcmp(rb->ops->name, "memory") == 0;

	memset(&wt, 0, sizeof(wt));
	pthread_mutex_init(&wt.mu, NULL);
	pthread_cond_init(&wt.cv, NULL);
	make_json(v, len, 1);
	bench_floor fl;
	if (bench_floor_measure(&fl, v, len) < 0) {
		fprintf(stderr, "floor: out of memory\n");
		exit(1);
	}
	wo.flags = KVS_WATCH_VALUES;
	if (kvs_watch_open(&wt.w, rst, "workflow/status", &wo) < 0) {
		fprintf(stderr, "watch: %s\n", kvs_error_last());
		exit(1);
	}
	pthread_create(&th, NULL, watch_thread, &wt);
	if (kvs_put(NULL, wst, "workflow/status", v, len, NULL) < 0) {
		fprintf(stderr, "put: %s\n", kvs_error_last());
		exit(1);
	}
	wait_events(&wt, 1);

	/* a 1% edit: ten scattered 0.1% rewrites */
	uint64_t seed = 7;
	for (int i = 0; i < 10; i++) {
		size_t at = (size_t)(rng(&seed) % (len - len / 1000));
		for (size_t j = 0; j < len / 1000; j++)
			if (v[at + j] >= '0' && v[at + j] <= '9')
				v[at + j] = (char)('0' + (v[at + j] - '0' + 1) % 10);
	}
	if (is_mem)
		kvs_mem_get_stats(rb, &s0);
	double t0 = now_s();
	if (kvs_put(NULL, wst, "workflow/status", v, len, NULL) < 0) {
		fprintf(stderr, "put: %s\n", kvs_error_last());
		exit(1);
	}
	double t1 = now_s();
	wait_events(&wt, 2);
	if (is_mem)
		kvs_mem_get_stats(rb, &s1);

	/* a cold reader: fresh store handle, empty cache */
	kvs_store *cst = open_store(cb, "bench");
	void *out = NULL;
	size_t out_len = 0;
	double g0 = now_s();
	if (kvs_get(&out, &out_len, NULL, cst, "workflow/status", NULL) < 0)
		fprintf(stderr, "get: %s\n", kvs_error_last());
	double g1 = now_s();

	printf("%-8s value %zu MiB, 1%% edit: put %.1f ms; watcher holds the verified value "
	       "%.1f ms after the put returned (err=%d, %zu bytes)",
	       what, len >> 20, (t1 - t0) * 1e3, (wt.t_last - t1) * 1e3, wt.err, wt.len_last);
	if (is_mem)
		printf(", fetched %.2f MiB of segments",
		       (double)(s1.bytes_read - s0.bytes_read) / 1048576.0);
	printf("\n%-8s cold kvs_get of the same value: %.1f ms (ratio watch/cold %.2f), "
	       "%.2fx lz4 decompress floor\n", what, (g1 - g0) * 1e3, (wt.t_last - t1) / (g1 - g0),
	       (g1 - g0) / fl.decompress_s);
	printf("%-8s ", what);
	bench_floor_print("json", &fl);
	wt.stop = 1;
	pthread_join(th, NULL);
	kvs_watch_close(wt.w);
	kvs_free(out);
	free(v);
	kvs_close(cst);
	kvs_close(wst);
	kvs_close(rst);
}

/* ------------------------------------------------------------------------ */
/* 2. fsck throughput                                                        */

static void fsck_throughput(const char *what, kvs_backend *b, unsigned nseg)
{
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_store *st = NULL;
	char key[32];

	/* one chunk per segment: 10,000 segments of ~512 bytes */
	o.name = "fsck";
	o.chunk_min = 256;
	o.chunk_avg = 512;
	o.chunk_max = 2048;
	o.inline_max = 64;
	o.segment_target = 256;
	o.concurrency = 32;
	if (kvs_open(&st, b, &o) < 0) {
		fprintf(stderr, "kvs_open: %s\n", kvs_error_last());
		exit(1);
	}
	size_t keys = 0, len = 500000;
	uint64_t made = 0;
	char *v = malloc(len);
	uint64_t seed = 3;
	double b0 = now_s();
	while (made < nseg) {
		for (size_t i = 0; i < len; i += 8) {
			uint64_t r = rng(&seed);
			memcpy(v + i, &r, len - i < 8 ? len - i : 8);
		}
		snprintf(key, sizeof(key), "key-%zu", keys);
		kvs_put_stats ps;
		kvs_put_options po = KVS_PUT_OPTIONS_INIT;
		po.stats = &ps;
		/* the last key gets just what is missing */
		size_t n = made + 900 > nseg ? (size_t)(nseg - made) * 500 : len;
		if (kvs_put(NULL, st, key, v, n, &po) < 0) {
			fprintf(stderr, "put: %s\n", kvs_error_last());
			exit(1);
		}
		made += ps.segments_written;
		keys++;
	}
	double b1 = now_s();
	kvs_fsck_report r;
	kvs_fsck_options fo = KVS_FSCK_OPTIONS_INIT;
	double f0 = now_s();
	if (kvs_fsck(&r, st, &fo) < 0)
		fprintf(stderr, "fsck: %s\n", kvs_error_last());
	double f1 = now_s();
	fo.read_data = KVS_FSCK_READ_NONE;
	kvs_fsck_report rm;
	double m0 = now_s();
	kvs_fsck(&rm, st, &fo);
	double m1 = now_s();
	kvs_gc_report gr;
	kvs_gc_options go = KVS_GC_OPTIONS_INIT;
	go.dry_run = 1;
	double c0 = now_s();
	kvs_gc(&gr, st, &go);
	double c1 = now_s();
	printf("%-8s store of %llu segments / %zu keys built in %.1f s\n", what,
	       (unsigned long long)r.segments, keys, b1 - b0);
	printf("%-8s fsck (read all data): %.2f s, %.0f segments/s, %.1f MiB/s verified, "
	       "%llu problems\n", what, f1 - f0, (double)r.segments / (f1 - f0),
	       (double)r.bytes_verified / 1048576.0 / (f1 - f0), (unsigned long long)r.problems);
	printf("%-8s fsck (metadata only): %.2f s, %.0f segments/s\n", what, m1 - m0,
	       (double)rm.segments / (m1 - m0));
	printf("%-8s gc dry run: %.2f s, %.0f segments/s\n", what, c1 - c0,
	       (double)gr.segments / (c1 - c0));
	free(v);
	kvs_close(st);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 64;
	kvs_backend *wb, *rb, *cb;
	server sv;

	if (mib < 1 || mib > 1024)
		mib = 64;
	printf("bench-watch: watch latency after a 1%% edit, fsck throughput\n");
	kvs_backend_mem(&wb, NULL);
	kvs_backend_mem_clone(&rb, wb);
	kvs_backend_mem_clone(&cb, wb);
	latency("memory", wb, rb, cb, mib << 20);

	int have_server = server_start(&sv) == 0;
	if (have_server && kube_backend(&wb, &sv) == 0 && kube_backend(&rb, &sv) == 0 &&
	    kube_backend(&cb, &sv) == 0) {
		latency("kapi", wb, rb, cb, mib << 20);
		kvs_backend *fb;
		if (kube_backend(&fb, &sv) == 0)
			fsck_throughput("kapi", fb, 10000);
	} else {
		printf("kapi     (no kapi-server or Kubernetes backend: %s) — fsck measured on memory\n",
		       have_server ? kvs_error_last() : "not built");
		kvs_backend *fb;
		kvs_backend_mem(&fb, NULL);
		fsck_throughput("memory", fb, 10000);
	}
	if (have_server)
		server_stop(&sv);
	return 0;
}
