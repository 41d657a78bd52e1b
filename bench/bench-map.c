/*
 * bench-map.c — key-split maps against the opaque value of the same JSON,
 * on a generated `status.nodes` map of ~64 MB and 20,480 nodes, on the
 * in-memory backend (bytes counted by the backend). Prints figures and
 * ratios; asserts nothing.
 *
 *   make build/bench-map && build/bench-map     (KVS_BENCH_BATCHES=N: default 1000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kvsplit.h>
#include <kvsplit/backend.h>
#include "store/mem/faults.h"

#define NODES 20480
#define NODE_BYTES 3200

static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return rs;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char ids[NODES][32];

/* One Argo-like node record of about NODE_BYTES, version `gen`. */
static size_t node_json(char *out, size_t cap, int i, int gen)
{
	/* content depends on (i, gen) only, so an unchanged node is the same bytes */
	uint64_t saved = rs;
	rs = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1) ^ (uint64_t)gen * 0xbf58476d1ce4e5b9ull;
	if (!rs)
		rs = 1;
	static const char *phase[] = { "Succeeded", "Running", "Failed", "Pending" };
	size_t n = (size_t)snprintf(out, cap,
	    "{\"id\":\"%s\",\"name\":\"wf-big[%d].fan-out(%d:item-%d)\",\"displayName\":\"fan-out(%d:item-%d)\","
	    "\"type\":\"Pod\",\"templateName\":\"process-item\",\"templateScope\":\"local/wf-big\","
	    "\"phase\":\"%s\",\"boundaryID\":\"wf-big-%u\",\"startedAt\":\"2024-05-01T10:%02d:%02dZ\","
	    "\"finishedAt\":\"2024-05-01T11:%02d:%02dZ\",\"progress\":\"1/1\",\"estimatedDuration\":%d,"
	    "\"resourcesDuration\":{\"cpu\":%d,\"memory\":%d},\"hostNodeName\":\"ip-10-0-%d-%d.ec2.internal\","
	    "\"inputs\":{\"parameters\":[{\"name\":\"item\",\"value\":\"item-%d\"},"
	    "{\"name\":\"bucket\",\"value\":\"s3://datalake-prod/raw/2024/05/01/part-%05d.parquet\"}]},"
	    "\"outputs\":{\"exitCode\":\"0\",\"parameters\":[",
	    ids[i], i / 1000, i, i, i, i, phase[(i + gen) % 4], (unsigned)(i % 97), i % 60, (i * 7) % 60,
	    (i + gen) % 60, (i * 3 + gen) % 60, 30 + i % 50, i % 300 + gen, i % 9000 + gen, i % 255,
	    (i * 13) % 255, i, i);
	for (int k = 0; n + 200 < cap && n < NODE_BYTES - 300; k++) {
		n += (size_t)snprintf(out + n, cap - n, "%s{\"name\":\"metric-%d\",\"value\":\"%llx%llx\"}",
		                      k ? "," : "", k, (unsigned long long)rnd(),
		                      (unsigned long long)(rnd() & 0xffff));
	}
	n += (size_t)snprintf(out + n, cap - n, "]},\"children\":[\"%s\",\"%s\"],\"gen\":%d}",
	                      ids[(i + 1) % NODES], ids[(i + 7) % NODES], gen);
	rs = saved;
	return n;
}

static char *doc;
static size_t doclen;
static size_t nodeoff[NODES], nodelen[NODES];
static int nodegen[NODES];

static void build_doc(void)
{
	char *buf = malloc(NODE_BYTES + 512);
	size_t cap = (size_t)NODES * (NODE_BYTES + 600) + 16;
	doc = malloc(cap);
	doclen = 0;
	doc[doclen++] = '{';
	for (int i = 0; i < NODES; i++) {
		size_t n = node_json(buf, NODE_BYTES + 512, i, nodegen[i]);
		doclen += (size_t)sprintf(doc + doclen, "%s\"%s\":", i ? "," : "", ids[i]);
		nodeoff[i] = doclen;
		nodelen[i] = n;
		memcpy(doc + doclen, buf, n);
		doclen += n;
	}
	doc[doclen++] = '}';
	free(buf);
}

static uint64_t written(kvs_backend *be)
{
	kvs_mem_stats st;
	kvs_mem_get_stats(be, &st);
	return st.bytes_written;
}

static uint64_t calls(kvs_backend *be)
{
	kvs_mem_stats st;
	uint64_t n = 0;
	kvs_mem_get_stats(be, &st);
	for (int i = 0; i < KVS_MEM_NCALLS; i++)
		n += st.calls[i];
	return n;
}

static int sink_count(void *ctx, const void *b, size_t n)
{
	(void)b;
	*(size_t *)ctx += n;
	return 0;
}

/* A batch updating `k` scattered nodes; returns the raw bytes of those nodes. */
static size_t edit_batch(kvs_map_batch **out, int k, char *json_patch, size_t *plen)
{
	char *buf = malloc(NODE_BYTES + 512);
	size_t raw = 0, pl = 0;
	kvs_map_batch_new(out);
	json_patch[pl++] = '{';
	for (int j = 0; j < k; j++) {
		int i = (int)(rnd() % NODES);
		size_t n;
		nodegen[i]++;
		n = node_json(buf, NODE_BYTES + 512, i, nodegen[i]);
		kvs_map_batch_put_json(*out, ids[i], strlen(ids[i]), buf, n);
		raw += n + strlen(ids[i]);
		pl += (size_t)sprintf(json_patch + pl, "%s\"%s\":", j ? "," : "", ids[i]);
		memcpy(json_patch + pl, buf, n);
		pl += n;
	}
	json_patch[pl++] = '}';
	*plen = pl;
	free(buf);
	return raw;
}

/*
 * 200 one-field reads of random nodes from a second handle with no segment
 * cache: the most segments one read fetched beyond the index (*total: all).
 */
static uint64_t probe_reads(kvs_backend *be, uint64_t *total)
{
	kvs_options oc = KVS_OPTIONS_INIT;
	kvs_map_read_options ro = KVS_MAP_READ_OPTIONS_INIT;
	kvs_map_stats st;
	kvs_backend *peer;
	kvs_store *s2;
	uint64_t maxseg = 0;
	void *got;
	size_t gotlen;

	*total = 0;
	oc.cache_bytes = UINT64_MAX;
	kvs_backend_mem_clone(&peer, be);
	kvs_open(&s2, peer, &oc);
	for (int r = 0; r < 200; r++) {
		int i = (int)(rnd() % NODES);
		memset(&st, 0, sizeof(st));
		ro.stats = &st;
		kvs_map_get(&got, &gotlen, NULL, NULL, s2, "map", ids[i], strlen(ids[i]), &ro);
		kvs_free(got);
		*total += st.segments_read;
		if (st.segments_read > maxseg)
			maxseg = st.segments_read;
	}
	kvs_close(s2);
	return maxseg;
}

int main(void)
{
	kvs_backend *be;
	kvs_store *s;
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_ver v;
	void *got;
	size_t gotlen, n;
	double t0, t_put = 1e9, t_get = 1e9, t_imp = 1e9, t_exp = 1e9, t_wput = 1e9, t_wimp = 1e9;
	const char *env = getenv("KVS_BENCH_BATCHES");
	int batches = env ? atoi(env) : 1000;
	char *patch = malloc((size_t)200 * (NODE_BYTES + 600));

	for (int i = 0; i < NODES; i++)
		snprintf(ids[i], sizeof(ids[i]), "wf-big-%010llu", (unsigned long long)(rnd() % 10000000000ull));
	build_doc();
	printf("status.nodes: %d nodes, %.1f MB of JSON\n", NODES, (double)doclen / 1e6);
	kvs_backend_mem(&be, NULL);
	kvs_open(&s, be, &o);

	/*
	 * Import and export against the opaque put and get of the same JSON,
	 * best of 3, two ways: cold (a key that does not exist yet: everything
	 * is compressed and sent) and warm (the same JSON again onto the key:
	 * a put reuses every chunk of its base, an import every run of its
	 * base). The keys "opaque" and "map" end holding the document.
	 */
	for (int r = 0; r < 3; r++) {
		char k1[32], k2[32];
		snprintf(k1, sizeof(k1), "opaque-cold-%d", r);
		snprintf(k2, sizeof(k2), "map-cold-%d", r);
		t0 = now_s();
		kvs_put(&v, s, k1, doc, doclen, NULL);
		if (now_s() - t0 < t_put)
			t_put = now_s() - t0;
		t0 = now_s();
		if (kvs_map_import_json(&v, s, k2, doc, doclen, NULL) < 0) {
			fprintf(stderr, "import: %s\n", kvs_error_last());
			return 1;
		}
		if (now_s() - t0 < t_imp)
			t_imp = now_s() - t0;
		kvs_delete(s, k1, NULL);
		kvs_delete(s, k2, NULL);
	}
	kvs_put(&v, s, "opaque", doc, doclen, NULL);
	if (kvs_map_import_json(&v, s, "map", doc, doclen, NULL) < 0) {
		fprintf(stderr, "import: %s\n", kvs_error_last());
		return 1;
	}
	for (int r = 0; r < 3; r++) {
		t0 = now_s();
		kvs_put(&v, s, "opaque", doc, doclen, NULL);
		if (now_s() - t0 < t_wput)
			t_wput = now_s() - t0;
		t0 = now_s();
		if (kvs_map_import_json(&v, s, "map", doc, doclen, NULL) < 0) {
			fprintf(stderr, "import: %s\n", kvs_error_last());
			return 1;
		}
		if (now_s() - t0 < t_wimp)
			t_wimp = now_s() - t0;
		t0 = now_s();
		kvs_get(&got, &gotlen, NULL, s, "opaque", NULL);
		if (now_s() - t0 < t_get)
			t_get = now_s() - t0;
		kvs_free(got);
		n = 0;
		t0 = now_s();
		if (kvs_map_export_json(NULL, s, "map", sink_count, &n, NULL) < 0) {
			fprintf(stderr, "export: %s\n", kvs_error_last());
			return 1;
		}
		if (now_s() - t0 < t_exp)
			t_exp = now_s() - t0;
	}
	printf("import  %.0f ms vs opaque put %.0f ms: %.2fx   (target <= 1.5x; new keys)\n",
	       t_imp * 1e3, t_put * 1e3, t_imp / t_put);
	printf("re-import %.0f ms vs opaque re-put %.0f ms: %.2fx   (the same JSON again)\n",
	       t_wimp * 1e3, t_wput * 1e3, t_wimp / t_wput);
	printf("export  %.0f ms vs opaque get %.0f ms: %.2fx   (target <= 2x)\n", t_exp * 1e3,
	       t_get * 1e3, t_exp / t_get);

	/* Edits: 20 and 200 scattered nodes, map batch vs opaque re-put. */
	for (int k = 20; k <= 200; k *= 10) {
		kvs_map_batch *b;
		kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
		kvs_map_stats st;
		kvs_map_stat ms;
		uint64_t w0, wmap, wop, c0, cmap;
		size_t plen, raw;
		memset(&st, 0, sizeof(st));
		wo.stats = &st;
		wo.compact = KVS_MAP_COMPACT_NEVER;
		kvs_map_stat_key(&ms, s, "map", NULL);
		raw = edit_batch(&b, k, patch, &plen);
		w0 = written(be);
		c0 = calls(be);
		kvs_map_commit(&v, s, "map", b, &wo);
		wmap = written(be) - w0;
		cmap = calls(be) - c0;
		kvs_map_batch_free(b);
		build_doc();
		w0 = written(be);
		kvs_put(&v, s, "opaque", doc, doclen, NULL);
		wop = written(be) - w0;
		printf("%3d nodes (%zu raw bytes): map batch sent %llu bytes in %llu requests (index "
		       "before %u, after %llu; delta %s); (sent - index before) / nodes = %.2fx (target "
		       "<= 3x); opaque re-put sent %llu bytes (%.1f%% of the value, %.0fx the map batch)\n",
		       k, raw, (unsigned long long)wmap, (unsigned long long)cmap, ms.index_bytes,
		       (unsigned long long)st.index_bytes, st.delta_inline ? "inline" : "in a segment",
		       ((double)wmap - ms.index_bytes) / (double)raw, (unsigned long long)wop,
		       100.0 * (double)wop / (double)doclen, (double)wop / (double)wmap);
		memset(&st, 0, sizeof(st));
		wo.compact = KVS_MAP_COMPACT_FORCE;
		w0 = written(be);
		kvs_map_compact(&v, s, "map", &wo);
		printf("     compaction after it: %llu bytes\n", (unsigned long long)(written(be) - w0));
	}

	/* One-field reads, cache off: segments fetched beyond the index. */
	{
		uint64_t total, maxseg = probe_reads(be, &total);
		printf("one-field read (cold, 200 reads): max %llu, mean %.2f segments beyond the index "
		       "(target <= 2)\n", (unsigned long long)maxseg, (double)total / 200);
	}

	/* Successive 20-node batches with compaction running. */
	{
		kvs_map_stat ms;
		kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
		kvs_map_stats st;
		uint64_t compacted, w0 = written(be), comps = 0, batchb = 0;
		double t;
		wo.compact = KVS_MAP_COMPACT_FORCE;
		kvs_map_compact(&v, s, "map", &wo);
		kvs_map_stat_key(&ms, s, "map", NULL);
		compacted = ms.segment_bytes + ms.index_bytes;
		wo.compact = KVS_MAP_COMPACT_AUTO;
		t = now_s();
		uint64_t worst = 0;
		for (int r = 0; r < batches; r++) {
			kvs_map_batch *b;
			size_t plen;
			memset(&st, 0, sizeof(st));
			wo.stats = &st;
			edit_batch(&b, 20, patch, &plen);
			if (kvs_map_commit(&v, s, "map", b, &wo) < 0) {
				fprintf(stderr, "batch %d: %s\n", r, kvs_error_last());
				return 1;
			}
			kvs_map_batch_free(b);
			comps += st.compacted;
			batchb += st.bytes_written - st.compact_bytes_written;
			kvs_map_stat_key(&ms, s, "map", NULL);
			if (ms.segment_bytes + ms.index_bytes > worst)
				worst = ms.segment_bytes + ms.index_bytes;
		}
		t = now_s() - t;
		kvs_map_stat_key(&ms, s, "map", NULL);
		printf("%d x 20-node batches in %.1f s, %llu compactions: sent %.1f MB (%.0f KB per batch, of "
		       "which %.0f KB the batches themselves)\n", batches, t, (unsigned long long)comps,
		       (double)(written(be) - w0) / 1e6, (double)(written(be) - w0) / batches / 1e3,
		       (double)batchb / batches / 1e3);
		printf("stored bytes referenced: %.1f MB now, worst %.1f MB, compacted %.1f MB: %.2fx / "
		       "worst %.2fx (target <= 2x); %u base runs, %u deltas\n",
		       (double)(ms.segment_bytes + ms.index_bytes) / 1e6, (double)worst / 1e6,
		       (double)compacted / 1e6, (double)(ms.segment_bytes + ms.index_bytes) / (double)compacted,
		       (double)worst / (double)compacted, ms.base_runs, ms.delta_runs);
	}
	/* reads after the churn */
	{
		uint64_t total, maxseg = probe_reads(be, &total);
		printf("one-field read after the batches: max %llu, mean %.2f segments beyond the "
		       "index\n", (unsigned long long)maxseg, (double)total / 200);
	}
	kvs_close(s);
	free(doc);
	free(patch);
	return 0;
}
