/*
 * bench-kube.c — a 64 MiB JSON value through the Kubernetes backend on
 * loopback (build/kapi-server), side by side with the in-memory backend and
 * the LZ4 floor (bench/floor.h: warm, best of 5), each get both allocating
 * (kvs_get) and into a warm caller buffer (kvs_get_into); first, the
 * client's peak RSS for a streaming put and get of
 * 1 GiB, each in a forked child. Prints figures; asserts nothing.
 *
 * The allocating get is timed twice: first into fresh memory
 * (kvs_release_memory() before it, so the buffer kvs_free keeps from an
 * earlier get is not there), then "again", into the buffer kvs_free kept
 * from the first: what a process reading the value over and over pays
 * after its first read.
 *
 *   KVS_BUILD=$PWD/build build/bench-kube [--quick] [MiB]
 *   KVS_BUILD=$PWD/build build/bench-kube --gets N [MiB]
 *
 * --quick skips the 1 GiB streams (about 15 s): the 64 MiB part only.
 * --gets N puts the value once, then gets it N times each way (allocating
 * into fresh memory, allocating again, into a warm buffer), every get
 * through a client and store of its own (new connections, cold segment
 * cache, as the get into a buffer below), and prints the median and
 * quartiles of the N ratios to the decompress floor: figures steady enough
 * to tell two builds apart on a shared machine, where one get per run is
 * not (docs/design.md, "The fetch pipeline measured").
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <xxhash.h>

#include <kvsplit.h>
#include <kvsplit/backend.h>

#include "floor.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* One node record of an Argo-like workflow status (advances the generator). */
static size_t node_rec(char *buf, size_t cap, unsigned i)
{
	static const char *phases[] = { "Succeeded", "Running", "Failed", "Pending" };
	uint64_t r = next();

	return (size_t)snprintf(
	    buf, cap,
	    "%s\"wf-%08x\":{\"id\":\"wf-%08x\",\"name\":\"wf.step-%u[%u].task-%llx\","
	    "\"displayName\":\"task-%llx\",\"type\":\"Pod\",\"templateName\":\"tmpl-%u\","
	    "\"phase\":\"%s\",\"boundaryID\":\"wf-%08x\",\"startedAt\":\"2024-05-%02uT%02u:%02u:%02uZ\","
	    "\"finishedAt\":\"2024-05-%02uT%02u:%02u:%02uZ\",\"progress\":\"1/1\","
	    "\"resourcesDuration\":{\"cpu\":%u,\"memory\":%u},\"outputs\":{\"exitCode\":\"%u\","
	    "\"parameters\":[{\"name\":\"result\",\"value\":\"%016llx\"}]},\"children\":[\"wf-%08x\"]}",
	    i ? "," : "", i, i, i / 10, i % 10, (unsigned long long)(r & 0xffffff),
	    (unsigned long long)(r >> 40), (unsigned)(r % 50), phases[r % 4],
	    (unsigned)(i / 10), (unsigned)(r % 28) + 1, (unsigned)(r >> 8) % 24,
	    (unsigned)(r >> 16) % 60, (unsigned)(r >> 24) % 60, (unsigned)(r % 28) + 1,
	    (unsigned)(r >> 32) % 24, (unsigned)(r >> 40) % 60, (unsigned)(r >> 48) % 60,
	    (unsigned)(r % 900), (unsigned)(r % 4000), (unsigned)(r % 3 == 0),
	    (unsigned long long)next(), i + 1);
}

/* Argo-like workflow status: {"nodes":{"wf-123":{...},...}} filled to n bytes. */
static void gen_json(char *buf, size_t n)
{
	size_t off = 0;
	unsigned i = 0;

	off += (size_t)snprintf(buf, n, "{\"nodes\":{");
	while (off + 600 < n)
		off += node_rec(buf + off, n - off, i++);
	while (off < n - 2)
		buf[off++] = ' ';
	buf[n - 2] = '}';
	buf[n - 1] = '}';
}

static pid_t server_pid;

static void stop_server(void)
{
	if (server_pid > 0) {
		kill(server_pid, SIGKILL);
		waitpid(server_pid, NULL, 0);
	}
}

static int start_server(char *url, size_t cap, char *dir)
{
	const char *b = getenv("KVS_BUILD");
	char bin[512], portfile[300];
	int port = 0;

	snprintf(bin, sizeof(bin), "%s/kapi-server", b && *b ? b : "build");
	snprintf(portfile, sizeof(portfile), "%s/port", dir);
	server_pid = fork();
	if (server_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		freopen("/dev/null", "w", stdout);
		execl(bin, bin, "--listen", "127.0.0.1:0", "--port-file", portfile, "--namespaces",
		      "bench", "--history-bytes", "1073741824", (char *)NULL);
		_exit(127);
	}
	atexit(stop_server);
	for (int i = 0; i < 5000 && port <= 0; i++) {
		FILE *f = fopen(portfile, "r");
		if (f) {
			if (fscanf(f, "%d", &port) != 1)
				port = 0;
			fclose(f);
		}
		usleep(1000);
	}
	if (port <= 0)
		return -1;
	snprintf(url, cap, "http://127.0.0.1:%d", port);
	return 0;
}

/* KVS_BENCH_MARKS=1: the CLOCK_MONOTONIC bounds of each timed step on
 * stderr, for `perf record -k CLOCK_MONOTONIC` + `perf report --time a,b`. */
static void mark(const char *what, double t0, double t1)
{
	const char *e = getenv("KVS_BENCH_MARKS");

	if (e && *e == '1')
		fprintf(stderr, "mark %s %.6f,%.6f\n", what, t0, t1);
}

/* CPU seconds (user + system) of this process and of the server so far:
 * on a shared machine the wall time of a step varies with the load, the
 * CPU each side spent on it much less. */
static double cpu_self_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double cpu_server_s(void)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;

	if (server_pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)server_pid);
	if (!(f = fopen(path, "r")))
		return 0;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p || !(p = strrchr(buf, ')')) ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

struct run {
	double put_s, get_s, again_s, into_s, reput_s;
	double put_cpu[2], get_cpu[2], into_cpu[2];   /* client, server CPU seconds */
	kvs_put_stats put, reput;
};

/*
 * Put, get (allocating, into fresh memory), get again (into the buffer
 * kvs_free kept), get into a warm caller buffer, re-put after an edit.
 * Through kube (`ko` given) every get after the first reads through a new
 * client and store: a segment cache as cold, and connections as new, as
 * the first get's. Without it (the in-memory backend, which cannot be
 * opened twice) all read the same store, as bench-store does.
 */
static int cold_store(kvs_store **out, const kvs_kube_options *ko)
{
	kvs_backend *b = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if (!ko)
		return 0;
	if ((rc = kvs_backend_kube(&b, ko)) < 0)
		return rc;
	if ((rc = kvs_open(out, b, NULL)) < 0) {
		kvs_backend_free(b);
		return rc;
	}
	/* one request first: the index, on a connection of its own */
	if ((rc = kvs_get_into(&len, NULL, *out, "bench/workflow", NULL, 0, NULL)) != KVS_ERANGE) {
		kvs_close(*out);
		*out = NULL;
		return rc < 0 ? rc : -1;
	}
	return 0;
}

static int run_store(struct run *r, kvs_backend *b, const kvs_kube_options *ko, const char *v,
                     size_t n, char *edited, char *into)
{
	kvs_store *st = NULL, *st2 = NULL;
	kvs_put_options po = KVS_PUT_OPTIONS_INIT;
	void *got = NULL;
	size_t len = 0;
	double t;
	int rc;

	if ((rc = kvs_open(&st, b, NULL)) < 0)
		return rc;
	kvs_release_memory();   /* the first get goes into fresh memory */
	po.stats = &r->put;
	double c0 = cpu_self_s(), s0 = cpu_server_s();
	t = now_s();
	if ((rc = kvs_put(NULL, st, "bench/workflow", v, n, &po)) < 0)
		goto out;
	r->put_s = now_s() - t;
	r->put_cpu[0] = cpu_self_s() - c0;
	r->put_cpu[1] = cpu_server_s() - s0;
	mark("put", t, t + r->put_s);
	c0 = cpu_self_s();
	s0 = cpu_server_s();
	t = now_s();
	if ((rc = kvs_get(&got, &len, NULL, st, "bench/workflow", NULL)) < 0)
		goto out;
	r->get_s = now_s() - t;
	r->get_cpu[0] = cpu_self_s() - c0;
	r->get_cpu[1] = cpu_server_s() - s0;
	mark("get", t, t + r->get_s);
	if (len != n || memcmp(got, v, n) != 0) {
		fprintf(stderr, "bench: value read back differs\n");
		rc = -1;
		goto out;
	}
	kvs_free(got);   /* kept: the next get reads into it */
	got = NULL;
	if ((rc = cold_store(&st2, ko)) < 0)
		goto out;
	t = now_s();
	if ((rc = kvs_get(&got, &len, NULL, st2 ? st2 : st, "bench/workflow", NULL)) < 0)
		goto out;
	r->again_s = now_s() - t;
	mark("get again", t, t + r->again_s);
	if (len != n || memcmp(got, v, n) != 0) {
		fprintf(stderr, "bench: value read back again differs\n");
		rc = -1;
		goto out;
	}
	kvs_close(st2);
	if ((rc = cold_store(&st2, ko)) < 0)
		goto out;
	memset(into, 0, n);   /* warm, as the floor's output is */
	c0 = cpu_self_s();
	s0 = cpu_server_s();
	t = now_s();
	if ((rc = kvs_get_into(&len, NULL, st2 ? st2 : st, "bench/workflow", into, n, NULL)) < 0)
		goto out;
	r->into_s = now_s() - t;
	r->into_cpu[0] = cpu_self_s() - c0;
	r->into_cpu[1] = cpu_server_s() - s0;
	mark("get_into", t, t + r->into_s);
	if (len != n || memcmp(into, v, n) != 0) {
		fprintf(stderr, "bench: value read back into the buffer differs\n");
		rc = -1;
		goto out;
	}
	po.stats = &r->reput;
	t = now_s();
	rc = kvs_put(NULL, st, "bench/workflow", edited, n, &po);
	r->reput_s = now_s() - t;
out:
	kvs_free(got);
	kvs_close(st2);
	kvs_close(st);
	return rc;
}

/*
 * Client memory of a streaming put and get of 1 GiB. The client runs in a
 * forked child and the stored bytes live in the kapi-server process, so the
 * child's peak RSS (wait4 ru_maxrss) is what a client really needs. The
 * value is generated on the fly and never held; the get's sink hashes it.
 */
#define STREAM_BYTES (1024ull << 20)

typedef struct stream_gen {
	uint64_t left;
	unsigned i;
	int hdr;
	char rec[1024];
	size_t rl, ro;
	XXH3_state_t *h;
} stream_gen;

static int stream_read(void *ctx, void *buf, size_t cap, size_t *got)
{
	stream_gen *g = ctx;
	size_t off = 0;

	while (off < cap && g->left) {
		if (g->ro == g->rl) {
			g->ro = 0;
			if (!g->hdr) {
				g->rl = (size_t)snprintf(g->rec, sizeof(g->rec), "{\"nodes\":{");
				g->hdr = 1;
			} else if (g->left > sizeof(g->rec)) {
				g->rl = node_rec(g->rec, sizeof(g->rec), g->i++);
			} else {   /* pad, close: exactly `left` bytes */
				g->rl = (size_t)g->left;
				memset(g->rec, ' ', g->rl - 2);
				memcpy(g->rec + g->rl - 2, "}}", 2);
			}
		}
		size_t k = g->rl - g->ro;
		if (k > cap - off)
			k = cap - off;
		memcpy((char *)buf + off, g->rec + g->ro, k);
		g->ro += k;
		off += k;
		g->left -= k;
	}
	XXH3_64bits_update(g->h, buf, off);
	*got = off;
	return 0;
}

typedef struct stream_sink {
	uint64_t n;
	XXH3_state_t *h;
} stream_sink;

static int stream_write(void *ctx, const void *buf, size_t len)
{
	stream_sink *k = ctx;

	k->n += len;
	XXH3_64bits_update(k->h, buf, len);
	return 0;
}

static long self_maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static uint64_t stream_hash;   /* of the value the put child sent */

/* One child: put (get == 0) or get of the 1 GiB key; cache_bytes 0 = default. */
static int stream_child(const char *cfg, int get, uint64_t cache_bytes, const char *label)
{
	int fd[2];
	pid_t pid;

	if (pipe(fd) != 0)
		return -1;
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
		kvs_options o = KVS_OPTIONS_INIT;
		kvs_backend *b = NULL;
		kvs_store *st = NULL;
		stream_gen g = { STREAM_BYTES, 0, 0, { 0 }, 0, 0, XXH3_createState() };
		stream_sink k = { 0, XXH3_createState() };
		char line[256];
		long start;
		double t;
		int rc;

		close(fd[0]);
		rng = 0x9e3779b97f4a7c15ull;   /* not the 64 MiB value: nothing to share with it */
		ko.kubeconfig = cfg;
		o.cache_bytes = cache_bytes;
		if (!g.h || !k.h || (rc = kvs_backend_kube(&b, &ko)) < 0 || (rc = kvs_open(&st, b, &o)) < 0)
			_exit(2);
		XXH3_64bits_reset(g.h);
		XXH3_64bits_reset(k.h);
		start = self_maxrss_kib();
		t = now_s();
		if (!get)
			rc = kvs_put_stream(NULL, st, "bench/stream", stream_read, &g, NULL);
		else
			rc = kvs_get_stream(NULL, st, "bench/stream", stream_write, &k, NULL);
		t = now_s() - t;
		if (rc < 0)
			fprintf(stderr, "stream %s: %s: %s\n", get ? "get" : "put", kvs_strerror(rc),
			        kvs_error_last());
		snprintf(line, sizeof(line), "%d %.3f %ld %llu %llu\n", rc, t, start,
		         (unsigned long long)(get ? k.n : STREAM_BYTES - g.left),
		         (unsigned long long)(get ? XXH3_64bits_digest(k.h) : XXH3_64bits_digest(g.h)));
		if (write(fd[1], line, strlen(line)) < 0)
			_exit(1);
		_exit(0);
	}
	close(fd[1]);
	char line[256] = { 0 };
	ssize_t n = read(fd[0], line, sizeof(line) - 1);
	close(fd[0]);
	int status = 0, rc = -1;
	struct rusage ru;
	double t = 0;
	long start = 0;
	unsigned long long bytes = 0, hash = 0;
	wait4(pid, &status, 0, &ru);
	if (n <= 0 || sscanf(line, "%d %lf %ld %llu %llu", &rc, &t, &start, &bytes, &hash) != 5 ||
	    rc < 0 || bytes != STREAM_BYTES || (get && hash != stream_hash)) {
		fprintf(stderr, "stream %s (%s) failed: rc %d, %llu bytes, status %d\n",
		        get ? "get" : "put", label, rc, bytes, status);
		return -1;
	}
	if (!get)
		stream_hash = hash;
	printf("stream %s 1 GiB via test server (%s): %.1f s (%.0f MiB/s), client peak RSS %.1f MiB "
	       "(%.1f MiB after opening)%s\n",
	       get ? "get" : "put", label, t, 1024.0 / t, ru.ru_maxrss / 1024.0, start / 1024.0,
	       get ? ", XXH3 of the bytes matches the put's" : "");
	return 0;
}

static long server_hwm_kib(void)
{
	char path[64], l[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)server_pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(l, sizeof(l), f))
		if (sscanf(l, "VmHWM: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* A counter of the test server's /kapi/stats (-1 if it cannot be read):
 * which wire the kube run's answers went on. */
static size_t grow_text(char *p, size_t sz, size_t nm, void *ud)
{
	char *buf = ud;
	size_t have = strlen(buf), n = sz * nm, room = 8191 - have;

	memcpy(buf + have, p, n < room ? n : room);
	buf[have + (n < room ? n : room)] = '\0';
	return n;
}

static double server_stat(const char *url, const char *name)
{
	char u[192], key[64], buf[8192] = "";
	CURL *e = curl_easy_init();
	const char *p;
	CURLcode c;

	if (!e)
		return -1;
	snprintf(u, sizeof(u), "%s/kapi/stats", url);
	curl_easy_setopt(e, CURLOPT_URL, u);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, grow_text);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, buf);
	c = curl_easy_perform(e);
	curl_easy_cleanup(e);
	snprintf(key, sizeof(key), "\"%s\":", name);
	if (c != CURLE_OK || !(p = strstr(buf, key)))
		return -1;
	return strtod(p + strlen(key), NULL);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median and quartiles of n values (sorted in place). */
static void print_spread(const char *what, double *v, int n, double floor_s)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	printf("%s: median %.2fx the decompress floor [quartiles %.2f-%.2f, range %.2f-%.2f], "
	       "%d gets\n", what, v[n / 2] / floor_s, v[n / 4] / floor_s, v[(3 * n) / 4] / floor_s,
	       v[0] / floor_s, v[n - 1] / floor_s, n);
}

/* --gets: put once, then n allocating gets into fresh memory, n allocating
 * gets into the buffer kvs_free kept, and n gets into a warm buffer, in
 * turn, each through a new client and store (see the top). */
static int gets_loop(const kvs_kube_options *ko, const char *v, size_t n, char *into, int reps,
                     const bench_floor *fl)
{
	double *tg = calloc((size_t)reps, sizeof(double)), *ta = calloc((size_t)reps, sizeof(double)),
	       *ti = calloc((size_t)reps, sizeof(double));
	kvs_backend *b = NULL;
	kvs_store *st = NULL;
	int rc;

	if (!tg || !ta || !ti) {
		free(tg);
		free(ta);
		free(ti);
		return -1;
	}
	if ((rc = kvs_backend_kube(&b, ko)) < 0 || (rc = kvs_open(&st, b, NULL)) < 0 ||
	    (rc = kvs_put(NULL, st, "bench/workflow", v, n, NULL)) < 0)
		goto out;
	kvs_close(st);
	st = NULL;
	memset(into, 0, n);   /* warm, as the floor's output is */
	for (int i = 0; i < reps; i++)
		for (int k = 0; k < 3; k++) {
			void *got = NULL;
			size_t len = 0;
			double t;

			if ((rc = cold_store(&st, ko)) < 0)
				goto out;
			if (k == 0)
				kvs_release_memory();   /* fresh memory */
			t = now_s();
			rc = k < 2 ? kvs_get(&got, &len, NULL, st, "bench/workflow", NULL)
			           : kvs_get_into(&len, NULL, st, "bench/workflow", into, n, NULL);
			(k == 0 ? tg : k == 1 ? ta : ti)[i] = now_s() - t;
			if (rc == 0 && (len != n || memcmp(k < 2 ? got : into, v, n) != 0)) {
				fprintf(stderr, "bench: value read back differs\n");
				rc = -1;
			}
			kvs_free(got);
			kvs_close(st);
			st = NULL;
			if (rc < 0)
				goto out;
		}
	print_spread("kube get (fresh memory, fresh client each)", tg, reps, fl->decompress_s);
	print_spread("kube get again (the buffer kvs_free kept, fresh client each)", ta, reps,
	             fl->decompress_s);
	print_spread("kube get_into (warm caller buffer, fresh client each)", ti, reps,
	             fl->decompress_s);
	rc = 0;
out:
	kvs_close(st);
	free(tg);
	free(ta);
	free(ti);
	return rc;
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && strcmp(argv[1], "--quick") == 0, reps = 0, skip = quick;
	if (argc > 2 && strcmp(argv[1], "--gets") == 0) {
		reps = atoi(argv[2]);
		skip = 2;
		quick = 1;
	}
	size_t mib = argc > 1 + skip ? (size_t)atoi(argv[1 + skip]) : 64, n = mib << 20;
	char *v, *edited, *into;
	char url[128], dir[] = "/tmp/kvs-bench-kube-XXXXXX", cfg[256];
	struct run mem = { 0 }, kube = { 0 };
	kvs_backend *b = NULL;
	bench_floor fl;
	int rc;

	if (mib == 0 || (skip == 2 && reps <= 0)) {
		fprintf(stderr, "usage: bench-kube [--quick | --gets N] [MiB]\n");
		return 2;
	}
	v = malloc(n);
	edited = malloc(n);
	into = malloc(n);
	if (!v || !edited || !into || !mkdtemp(dir))
		return 1;
	if (start_server(url, sizeof(url), dir) < 0) {
		fprintf(stderr, "kapi-server did not start\n");
		return 1;
	}
	snprintf(cfg, sizeof(cfg), "%s/kubeconfig", dir);
	FILE *f = fopen(cfg, "w");
	if (!f)
		return 1;
	fprintf(f, "clusters:\n- name: k\n  cluster: {server: '%s'}\ncontexts:\n- name: c\n"
	           "  context: {cluster: k, namespace: bench}\ncurrent-context: c\n",
	        url);
	fclose(f);
	/* first, while this process is small (the buffers above are untouched): a
	 * child's ru_maxrss starts from what it shares with its parent */
	if (!quick && (stream_child(cfg, 0, 0, "default options") < 0 ||
	    stream_child(cfg, 1, 0, "default options: 64 MiB cache") < 0 ||
	    stream_child(cfg, 1, 4u << 20, "cache_bytes 4 MiB") < 0 ||
	    stream_child(cfg, 1, KVS_CACHE_OFF, "cache off") < 0))
		return 1;
	if (!quick)
		printf("kapi-server peak RSS after the 1 GiB streams: %.1f MiB\n", server_hwm_kib() / 1024.0);
	gen_json(v, n);
	memcpy(edited, v, n);
	/* a 1% edit: rewrite a run of node records in the middle */
	for (size_t i = n / 2; i < n / 2 + n / 100; i++)
		if (edited[i] >= '0' && edited[i] <= '9')
			edited[i] = (char)('0' + (edited[i] - '0' + 1) % 10);

	if (bench_floor_measure(&fl, v, n) < 0) {
		fprintf(stderr, "floor: out of memory\n");
		return 1;
	}
	if (reps > 0) {
		kvs_kube_options lo = KVS_KUBE_OPTIONS_INIT;
		lo.kubeconfig = cfg;
		bench_floor_print("json", &fl);
		if ((rc = gets_loop(&lo, v, n, into, reps, &fl)) < 0) {
			fprintf(stderr, "kube: %s: %s\n", kvs_strerror(rc), kvs_error_last());
			return 1;
		}
		kvs_close(NULL);
		return 0;
	}

	if ((rc = kvs_backend_mem(&b, NULL)) < 0 || (rc = run_store(&mem, b, NULL, v, n, edited, into)) < 0) {
		fprintf(stderr, "memory: %s: %s\n", kvs_strerror(rc), kvs_error_last());
		return 1;
	}
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	ko.kubeconfig = cfg;
	double pb0 = server_stat(url, "protobuf_responses");
	if ((rc = kvs_backend_kube(&b, &ko)) < 0 || (rc = run_store(&kube, b, &ko, v, n, edited, into)) < 0) {
		fprintf(stderr, "kube: %s: %s\n", kvs_strerror(rc), kvs_error_last());
		return 1;
	}
	double pb1 = server_stat(url, "protobuf_responses");

	printf("value: %zu MiB of workflow-status JSON, lz4 -> %.1f MiB (%.1f%%)\n", mib,
	       fl.stored / 1048576.0, 100.0 * (double)fl.stored / (double)n);
	bench_floor_print("json", &fl);
	printf("%-8s %9s %9s %9s %9s %9s %10s %12s %9s %12s\n", "backend", "put s", "get s",
	       "again s", "into s", "reput s", "put reqs", "put bytes", "reput reqs", "reput bytes");
	const struct run *rs[2] = { &mem, &kube };
	const char *names[2] = { "memory", "kube" };
	for (int i = 0; i < 2; i++)
		printf("%-8s %9.3f %9.3f %9.3f %9.3f %9.3f %10llu %12llu %9llu %12llu\n", names[i],
		       rs[i]->put_s, rs[i]->get_s, rs[i]->again_s, rs[i]->into_s, rs[i]->reput_s, (unsigned long long)rs[i]->put.requests,
		       (unsigned long long)rs[i]->put.bytes_written,
		       (unsigned long long)rs[i]->reput.requests,
		       (unsigned long long)rs[i]->reput.bytes_written);
	printf("kube put   = %.2fx memory, %.2fx lz4 compress floor\n", kube.put_s / mem.put_s,
	       kube.put_s / fl.compress_s);
	printf("kube get   = %.2fx memory, %.2fx lz4 decompress floor (into fresh memory)\n",
	       kube.get_s / mem.get_s, kube.get_s / fl.decompress_s);
	printf("kube get again = %.2fx memory, %.2fx lz4 decompress floor (into the buffer kvs_free "
	       "kept)\n", kube.again_s / mem.again_s, kube.again_s / fl.decompress_s);
	printf("get_into (warm caller buffer) = %.2fx lz4 decompress floor in memory, %.2fx via "
	       "kube\n", mem.into_s / fl.decompress_s, kube.into_s / fl.decompress_s);
	printf("kube CPU s (client + server): put %.3f + %.3f, get %.3f + %.3f, get_into %.3f + "
	       "%.3f\n", kube.put_cpu[0], kube.put_cpu[1], kube.get_cpu[0], kube.get_cpu[1],
	       kube.into_cpu[0], kube.into_cpu[1]);
	printf("kube re-put after a 1%% edit: %.3f s, %llu requests, %.2f%% of the value's bytes sent\n",
	       kube.reput_s, (unsigned long long)kube.reput.requests,
	       100.0 * (double)kube.reput.bytes_written / (double)n);
	printf("kube wire: %.0f of the kube run's answers were protobuf (the test server's count)\n",
	       pb0 >= 0 && pb1 >= 0 ? pb1 - pb0 : -1.0);
	kvs_close(NULL);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 0;
	free(v);
	free(edited);
	free(into);
	return 0;
}
