/*
 * bench-store.c — figures of the core store against its floor (make bench).
 * Prints, asserts nothing. Everything runs on the in-memory backend:
 *
 *  - floor (bench/floor.h: LZ4 over the same bytes in 64 KiB blocks, warm,
 *    best of 5), then kvs_put / kvs_get, for 64 MiB of Argo-like
 *    workflow-status JSON and 64 MiB of random bytes;
 *  - bytes a second put writes after a 1% contiguous middle edit and after
 *    20 scattered small edits, and the same for several chunk sizes;
 *  - peak RSS of a streaming put and of a streaming get of 1 GiB generated on
 *    the fly, each in a forked child (ru_maxrss of the child), next to the
 *    bytes the in-memory backend itself holds (skipped with --quick, as are the edits);
 *  - kvs_get_into into a warm caller buffer, beside kvs_get; kvs_get twice,
 *    into fresh memory (kvs_release_memory() first) and again into the
 *    buffer kvs_free kept from it.
 *
 * --quick skips the streaming and edit figures; --only json|random runs one
 * data set's floor, put and get alone (implies --quick: for perf record).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kvsplit.h>
#include <kvsplit/backend.h>
#include "store/mem/faults.h"

#include "floor.h"

#define MIB (1024u * 1024u)

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* One Argo-like status.nodes entry. */
static int json_node(char *out, size_t cap, uint64_t *s, uint64_t i)
{
	static const char *phase[] = { "Succeeded", "Failed", "Running", "Pending", "Skipped" };
	static const char *tmpl[] = { "fetch-data", "transform", "train-model", "validate", "publish" };
	uint64_t r = rng(s), t = 1700000000 + (r % 10000000);
	return snprintf(out, cap,
	    "\"wf-%06llx-%llu\":{\"id\":\"wf-%06llx-%llu\",\"name\":\"wf.steps[%llu].%s\","
	    "\"displayName\":\"%s(%llu)\",\"type\":\"Pod\",\"templateName\":\"%s\","
	    "\"phase\":\"%s\",\"boundaryID\":\"wf-%06llx\",\"startedAt\":\"2024-%02llu-%02lluT%02llu:%02llu:%02lluZ\","
	    "\"finishedAt\":\"%llu\",\"progress\":\"1/1\",\"resourcesDuration\":{\"cpu\":%llu,\"memory\":%llu},"
	    "\"outputs\":{\"exitCode\":\"%llu\",\"parameters\":[{\"name\":\"result\",\"value\":\"%016llx\"}]},"
	    "\"children\":[\"wf-%06llx-%llu\"],\"hostNodeName\":\"node-%llu.cluster.local\"},",
	    (unsigned long long)(r & 0xffffff), (unsigned long long)i, (unsigned long long)(r & 0xffffff),
	    (unsigned long long)i, (unsigned long long)(i % 97), tmpl[r % 5], tmpl[(r >> 8) % 5],
	    (unsigned long long)(i % 13), tmpl[(r >> 16) % 5], phase[(r >> 24) % 5],
	    (unsigned long long)((r >> 32) & 0xffffff), (unsigned long long)(1 + (r >> 40) % 12),
	    (unsigned long long)(1 + (r >> 44) % 28), (unsigned long long)((r >> 48) % 24),
	    (unsigned long long)((r >> 52) % 60), (unsigned long long)((r >> 56) % 60),
	    (unsigned long long)t, (unsigned long long)(r % 5000), (unsigned long long)(r % 90000),
	    (unsigned long long)((r >> 20) % 3), (unsigned long long)rng(s),
	    (unsigned long long)(r & 0xffffff), (unsigned long long)(i + 1),
	    (unsigned long long)((r >> 12) % 200));
}

static void gen_json(char *buf, size_t len, uint64_t seed)
{
	char rec[1024];
	size_t off = 0;
	uint64_t s = seed, i = 0;

	while (off < len) {
		int n = json_node(rec, sizeof(rec), &s, i++);
		size_t k = (size_t)n < len - off ? (size_t)n : len - off;
		memcpy(buf + off, rec, k);
		off += k;
	}
	if (len)
		buf[0] = '{';
}

static void gen_random(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed;
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rng(&s);
		memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
	}
}

static kvs_store *mem_store(kvs_backend **bout, const kvs_options *o)
{
	kvs_backend *b;
	kvs_store *s;
	if (kvs_backend_mem(&b, NULL) != 0 || kvs_open(&s, b, o) != 0) {
		fprintf(stderr, "open: %s\n", kvs_error_last());
		exit(1);
	}
	if (bout)
		*bout = b;
	return s;
}

/* A stream over a buffer, 1 MiB per read. */
typedef struct mem_read { const uint8_t *d; size_t n, off; } mem_read;
static int mem_read_cb(void *ctx, void *buf, size_t cap, size_t *got)
{
	mem_read *m = ctx;
	size_t k = m->n - m->off;

	if (k > cap) k = cap;
	if (k > MIB) k = MIB;
	memcpy(buf, m->d + m->off, k);
	m->off += k;
	*got = k;
	return 0;
}

static void floor_and_store(const char *what, const uint8_t *d, size_t n)
{
	bench_floor fl;
	double t0, tp = 1e9, ts = 1e9, tg = 1e9, ta = 1e9, ti = 1e9;
	uint8_t *into = malloc(n);

	if (!into || bench_floor_measure(&fl, d, n) < 0) {
		fprintf(stderr, "floor: out of memory\n");
		exit(1);
	}
	memset(into, 0, n);   /* warm, as the floor's output is */
	for (int rep = 0; rep < 3; rep++) {
		kvs_store *s = mem_store(NULL, NULL);
		void *out;
		size_t ol;
		t0 = now();
		if (kvs_put(NULL, s, "bench", d, n, NULL) != 0)
			fprintf(stderr, "put: %s\n", kvs_error_last());
		if (now() - t0 < tp) tp = now() - t0;
		{   /* the same bytes as a stream, read 1 MiB at a time (a pipe or file) */
			kvs_store *s2 = mem_store(NULL, NULL);
			mem_read mr = { d, n, 0 };
			t0 = now();
			if (kvs_put_stream(NULL, s2, "bench", mem_read_cb, &mr, NULL) != 0)
				fprintf(stderr, "put_stream: %s\n", kvs_error_last());
			if (now() - t0 < ts) ts = now() - t0;
			kvs_close(s2);
		}
		/* into fresh memory, then into the buffer kvs_free kept from it */
		kvs_release_memory();
		for (int again = 0; again < 2; again++) {
			double *best = again ? &ta : &tg;
			t0 = now();
			if (kvs_get(&out, &ol, NULL, s, "bench", NULL) != 0)
				fprintf(stderr, "get: %s\n", kvs_error_last());
			if (now() - t0 < *best) *best = now() - t0;
			if (ol != n || memcmp(out, d, n) != 0)
				fprintf(stderr, "get: WRONG BYTES\n");
			kvs_free(out);
		}
		t0 = now();
		if (kvs_get_into(&ol, NULL, s, "bench", into, n, NULL) != 0)
			fprintf(stderr, "get_into: %s\n", kvs_error_last());
		if (now() - t0 < ti) ti = now() - t0;
		if (ol != n || memcmp(into, d, n) != 0)
			fprintf(stderr, "get_into: WRONG BYTES\n");
		kvs_close(s);
	}
	free(into);
	bench_floor_print(what, &fl);
	printf("put %s %zuMiB: %.0f ms (%.0f MB/s) = %.2fx lz4 compress floor\n", what, n / MIB,
	       tp * 1e3, n / tp / 1e6, tp / fl.compress_s);
	printf("put_stream %s %zuMiB (1 MiB reads): %.0f ms (%.0f MB/s) = %.2fx lz4 compress floor\n",
	       what, n / MIB, ts * 1e3, n / ts / 1e6, ts / fl.compress_s);
	printf("get %s %zuMiB: %.0f ms (%.0f MB/s) = %.2fx lz4 decompress floor (into fresh "
	       "memory)\n", what, n / MIB, tg * 1e3, n / tg / 1e6, tg / fl.decompress_s);
	printf("get again %s %zuMiB: %.0f ms (%.0f MB/s) = %.2fx lz4 decompress floor (into the "
	       "buffer kvs_free kept)\n", what, n / MIB, ta * 1e3, n / ta / 1e6, ta / fl.decompress_s);
	printf("get_into %s %zuMiB (warm caller buffer): %.0f ms (%.0f MB/s) = %.2fx lz4 decompress "
	       "floor\n", what, n / MIB, ti * 1e3, n / ti / 1e6, ti / fl.decompress_s);
}

/* Bytes written by a put after edits, as % of the value's stored bytes. */
static void edits(uint32_t avg, const uint8_t *orig, size_t n)
{
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_backend *b;
	kvs_put_stats st;
	kvs_put_options po = KVS_PUT_OPTIONS_INIT;
	kvs_mem_stats ms;
	uint8_t *d = malloc(n), *x = malloc(n / 100);
	double p1, p20;
	uint64_t req;

	o.chunk_avg = avg;
	o.chunk_min = avg / 4;
	o.chunk_max = avg * 4 > 768u * 1024u ? 768u * 1024u : avg * 4;
	kvs_store *s = mem_store(&b, &o);
	memcpy(d, orig, n);
	po.stats = &st;
	kvs_put(NULL, s, "e", d, n, &po);
	req = st.requests;
	gen_json((char *)x, n / 100, 77);
	memcpy(d + n / 2, x, n / 100);
	kvs_mem_reset_stats(b);
	kvs_put(NULL, s, "e", d, n, &po);
	kvs_mem_get_stats(b, &ms);
	p1 = 100.0 * (double)ms.bytes_written / (double)st.stored_bytes;
	for (int i = 0; i < 20; i++)
		memcpy(d + (size_t)i * (n / 20) + 4321, "EDIT-EDIT-EDIT-EDIT!", 20);
	kvs_mem_reset_stats(b);
	kvs_put(NULL, s, "e", d, n, &po);
	kvs_mem_get_stats(b, &ms);
	p20 = 100.0 * (double)ms.bytes_written / (double)st.stored_bytes;
	printf("chunk avg %3u KiB: first put %llu requests, %llu chunks; 1%% middle edit writes %.2f%%; "
	       "20 scattered edits write %.2f%% of %.1f MiB stored\n",
	       avg / 1024, (unsigned long long)req, (unsigned long long)st.chunks, p1, p20,
	       (double)st.stored_bytes / MIB);
	kvs_close(s);
	free(d);
	free(x);
}

/* A 1 GiB JSON stream made on the fly. */
typedef struct gen { uint64_t left, s, i; char rec[1024]; size_t rl, ro; } gen;
static int gen_read(void *ctx, void *buf, size_t cap, size_t *got)
{
	gen *g = ctx;
	size_t off = 0;
	while (off < cap && g->left) {
		if (g->ro == g->rl) {
			g->rl = (size_t)json_node(g->rec, sizeof(g->rec), &g->s, g->i++);
			g->ro = 0;
		}
		size_t k = g->rl - g->ro;
		if (k > cap - off) k = cap - off;
		if (k > g->left) k = (size_t)g->left;
		memcpy((char *)buf + off, g->rec + g->ro, k);
		g->ro += k;
		off += k;
		g->left -= k;
	}
	*got = off;
	return 0;
}
static int sink(void *ctx, const void *buf, size_t len)
{
	(void)buf;
	*(uint64_t *)ctx += len;
	return 0;
}

static long rss_kib_self(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void rss_child(int do_get)
{
	int fd[2];
	pid_t pid;
	if (pipe(fd) != 0)
		return;
	pid = fork();
	if (pid == 0) {
		kvs_options o = KVS_OPTIONS_INIT;
		kvs_backend *b;
		kvs_mem_stats ms;
		gen g = { 1024ull * MIB, 5, 0, { 0 }, 0, 0 };
		uint64_t got = 0;
		long before, after_put;
		double t0;
		o.cache_bytes = KVS_CACHE_OFF; /* no cache: what streaming itself needs */
		kvs_store *s = mem_store(&b, &o);
		before = rss_kib_self();
		t0 = now();
		if (kvs_put_stream(NULL, s, "big", gen_read, &g, NULL) != 0)
			fprintf(stderr, "put: %s\n", kvs_error_last());
		double tp = now() - t0;
		after_put = rss_kib_self();
		kvs_mem_get_stats(b, &ms);
		if (do_get) {
			t0 = now();
			if (kvs_get_stream(NULL, s, "big", sink, &got, NULL) != 0)
				fprintf(stderr, "get: %s\n", kvs_error_last());
			tp = now() - t0;
		}
		char line[512];
		snprintf(line, sizeof(line), "%ld %ld %llu %.2f %llu\n", before, after_put,
		         (unsigned long long)ms.stored_bytes, tp, (unsigned long long)got);
		if (write(fd[1], line, strlen(line)) < 0)
			_exit(1);
		_exit(0);
	}
	close(fd[1]);
	char line[512] = { 0 };
	ssize_t n = read(fd[0], line, sizeof(line) - 1);
	close(fd[0]);
	int status;
	struct rusage ru;
	wait4(pid, &status, 0, &ru);
	long before = 0, after_put = 0;
	unsigned long long stored = 0, got = 0;
	double t = 0;
	if (n > 0)
		sscanf(line, "%ld %ld %llu %lf %llu", &before, &after_put, &stored, &t, &got);
	printf("streaming %s 1 GiB JSON: %.1f s; child peak RSS %.1f MiB (at start %.1f MiB); "
	       "backend holds %.1f MiB stored; peak minus stored %.1f MiB%s\n",
	       do_get ? "put+get" : "put", t, ru.ru_maxrss / 1024.0, before / 1024.0,
	       stored / (double)MIB, ru.ru_maxrss / 1024.0 - before / 1024.0 - stored / (double)MIB,
	       do_get ? (got == 1024ull * MIB ? " (get verified 1 GiB)" : " (GET FAILED)") : "");
}

int main(int argc, char **argv)
{
	size_t n = 64 * MIB;
	uint8_t *j, *r;

	int quick = 0;
	const char *only = NULL;   /* --only json|random: one data set (for profiling) */

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--quick") == 0)
			quick = 1;
		else if (strcmp(argv[a], "--only") == 0 && a + 1 < argc)
			only = argv[++a];
	}
	if (only)
		quick = 1;

	/* first, while this process is small: a child's ru_maxrss starts at
	 * its parent's resident size */
	if (!quick) {
		rss_child(0);
		rss_child(1);
	}
	j = malloc(n);
	r = malloc(n);
	gen_json((char *)j, n, 1);
	gen_random(r, n, 2);
	if (!only || strcmp(only, "json") == 0)
		floor_and_store("json", j, n);
	if (!only || strcmp(only, "random") == 0)
		floor_and_store("random", r, n);
	for (uint32_t avg = 16 * 1024; !quick && avg <= 256 * 1024; avg *= 2)
		edits(avg, j, n);
	free(j);
	free(r);
	return 0;
}
