/*
 * bench-peers.c — kvsplit side by side with what users do today for state
 * larger than one object (issue 12), on the same generated workflow node
 * status, the same machine, in one run:
 *
 *   one      gzip -6 + base64 of the whole state in one ConfigMap (Argo's
 *            status.compressedNodes, Helm's release Secrets)
 *   chunks   gzip -6 + base64 split into ~1 MiB ConfigMaps under an index
 *            ConfigMap, every chunk rewritten on each update (the chunked
 *            Secrets driver of helm-operator-plugins): new chunks, then the
 *            index, then the old chunks deleted, so a reader never mixes two
 *            versions
 *   sql      Argo's node status offload: one row per version in PostgreSQL,
 *            keyed by (clustername, uid, version = a hash of the JSON), the
 *            version written to the object, older versions deleted once
 *            older than a TTL (5 minutes, Argo's default); twice: default
 *            durability, and fsync=off + synchronous_commit=off
 *   kvs      kvsplit, the state as one opaque value
 *   kvs-map  kvsplit key-split map (status.nodes: one field per node)
 *
 * Workloads, per state size: 100 reconciles each changing 20 scattered
 * nodes, 100 contiguous 1% edits (nodes in a run change phase), a watcher
 * in its own process waiting for each reconcile's change, and a full read
 * by a fresh client. Bytes sent are counted at the client's sockets
 * (TCP_INFO tcpi_bytes_acked of every TCP socket of the writer process,
 * request headers and bodies included). Each (peer, size, run) is a forked
 * writer process, so its peak RSS (wait4) is its own; it holds the state
 * in memory, as a controller holding the object does.
 *
 * Normally started by bench/peers.sh (make bench-peers), which starts the
 * test API server and the two PostgreSQL servers on loopback:
 *
 *   build/bench-peers --kubeconfig F [--pg CONNINFO] [--pg-fast CONNINFO]
 *                     [--sizes 1,8,64,256] [--runs 3] [--updates 100]
 *                     [--budget S] [--peers one,chunks,sql,sql-fast,kvs,kvs-map]
 *
 * --budget caps the seconds one workload may take in one (peer, size, run):
 * after it, the workload stops (never below 3 updates) and the table says
 * how many updates its medians are of. Prints figures and whether the
 * issue's targets hold; exits non-zero only when something failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <linux/tcp.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <zlib.h>
#include <xxhash.h>

#include <kvsplit.h>
#include <kvsplit/kube.h>

/* ------------------------------------------------------------------------ */
/* Small things                                                             */

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

__attribute__((noreturn)) static void die(const char *what, const char *detail)
{
	fprintf(stderr, "bench-peers: %s: %s\n", what, detail ? detail : "");
	_exit(3);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory", NULL);
	return p;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of n values (sorts them); NAN-free: 0 for n == 0. */
static double median(double *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* ------------------------------------------------------------------------ */
/* Bytes sent, counted at the sockets                                       */

/*
 * Sum of tcpi_bytes_acked over the TCP sockets of this process, as seen at
 * each call: a socket is remembered by inode, so a closed one keeps what it
 * had when last seen (bytes of a socket opened and closed between two calls
 * would be missed: net_lost counts sockets that vanished).
 */
#define NET_MAX 512
static struct {
	ino_t ino;
	uint64_t acked;
	int seen;
} net_tab[NET_MAX];
static size_t net_n;
static uint64_t net_lost;

static uint64_t net_sent(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	uint64_t total = 0;

	if (!d)
		die("opendir /proc/self/fd", strerror(errno));
	for (size_t i = 0; i < net_n; i++)
		net_tab[i].seen = 0;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);
		struct tcp_info ti;
		socklen_t len = sizeof(ti);
		struct stat st;
		size_t i;

		if (e->d_name[0] == '.' || fd == dirfd(d) || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
			continue;
		memset(&ti, 0, sizeof(ti));
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
			continue;
		for (i = 0; i < net_n && net_tab[i].ino != st.st_ino; i++)
			;
		if (i == net_n) {
			if (net_n == NET_MAX)
				die("too many sockets", NULL);
			net_tab[net_n++].ino = st.st_ino;
		}
		net_tab[i].acked = ti.tcpi_bytes_acked;
		net_tab[i].seen = 1;
	}
	closedir(d);
	for (size_t i = 0; i < net_n; i++) {
		if (!net_tab[i].seen && net_tab[i].ino) {
			net_lost++;
			net_tab[i].ino = 0;   /* keep its bytes, never match it again */
		}
		total += net_tab[i].acked;
	}
	return total;
}

/* ------------------------------------------------------------------------ */
/* The state: a workflow's status.nodes, generated                         */

/*
 * Node records shaped like scripts/gen-workflow.py's (an Argo NodeStatus),
 * compact JSON, deterministic in (node, generation): an unchanged node is
 * the same bytes in every version. Generation g > 0 is a reconcile's
 * change (phase, finishedAt, outputs, resources); `failed` is the 1% edit's
 * (phase Failed with a message, as gen-workflow.py --edited does).
 */
static const char *templates[] = { "fetch-shard", "transform", "validate", "aggregate",
	                           "publish-report", "train-model", "score-batch", "export-parquet" };
static const char *zones[] = { "eu-west-1a", "eu-west-1b", "eu-west-1c" };
static const char *phases[] = { "Succeeded", "Running", "Pending", "Succeeded" };
static const char *WF = "etl-nightly-7kq2x";

typedef struct state {
	size_t n;          /* nodes */
	char **text;       /* "\"id\":{...}" of each node */
	size_t *len;
	unsigned *gen;
	unsigned char *failed;
	char *doc;         /* {text0,text1,...} */
	size_t doclen, cap;
} state;

static void ts(char *out, size_t cap, long t)
{
	long d = (t - 1714521600) / 86400, s = (t - 1714521600) % 86400;

	snprintf(out, cap, "2024-05-%02ldT%02ld:%02ld:%02ldZ", 1 + d % 28, s / 3600, s / 60 % 60, s % 60);
}

/*
 * Node ids rise with i (random gaps): the document lists the nodes in id
 * order, as Go's encoding/json writes a map (Argo marshals status.nodes so),
 * so a run contiguous in the document is contiguous in the map's field
 * order too. Ten digits hold 500,000 nodes (~400 MB).
 */
static void node_id(char *out, size_t cap, size_t i)
{
	snprintf(out, cap, "%s-%010llu", WF,
	         (unsigned long long)(i * 20000 + splitmix(i * 2 + 1) % 20000) % 10000000000ull);
}

static void node_render(state *s, size_t i)
{
	uint64_t r = splitmix(i), q = splitmix(i ^ ((uint64_t)s->gen[i] << 40));
	const char *tmpl = templates[r % 8];
	char id[64], child[64], st[32], fin[32], buf[1400];
	long start = 1714557600 + (long)i * 3 + (long)(r >> 8) % 30;
	long dur = 20 + (long)((r >> 16) % 900) + (long)s->gen[i] * 11;
	unsigned shard = (unsigned)(i % 4096);
	int n;

	node_id(id, sizeof(id), i);
	node_id(child, sizeof(child), i + 1);
	ts(st, sizeof(st), start);
	ts(fin, sizeof(fin), s->failed[i] ? start : start + dur);
	n = snprintf(buf, sizeof(buf),
	    "\"%s\":{\"id\":\"%s\",\"name\":\"%s[%zu].%s(%zu:shard-%04u)\",\"displayName\":\"%s(%zu:shard-%04u)\","
	    "\"type\":\"Pod\",\"templateName\":\"%s\",\"templateScope\":\"local/%s\",\"phase\":\"%s\","
	    "%s\"boundaryID\":\"%s\",\"startedAt\":\"%s\",\"finishedAt\":\"%s\",\"progress\":\"1/1\","
	    "\"resourcesDuration\":{\"cpu\":%ld,\"memory\":%ld},\"inputs\":{\"parameters\":["
	    "{\"name\":\"shard\",\"value\":\"%04u\"},{\"name\":\"input-uri\",\"value\":"
	    "\"s3://datalake/raw/2024-05-01/part-%05zu.parquet\"}]},\"outputs\":{\"parameters\":["
	    "{\"name\":\"rows\",\"value\":\"%llu\"}],\"artifacts\":[{\"name\":\"main-logs\",\"s3\":"
	    "{\"key\":\"%s/%s/main.log\"}}],\"exitCode\":\"%d\"},\"children\":[\"%s\"],"
	    "\"hostNodeName\":\"ip-10-%u-%u-%u.%s.compute.internal\"}",
	    id, id, WF, i / 500, tmpl, i, shard, tmpl, i, shard, tmpl, WF,
	    s->failed[i] ? "Failed" : phases[s->gen[i] % 4],
	    s->failed[i] ? "\"message\":\"OOMKilled (exit code 137)\"," : "", WF, st, fin,
	    1 + dur / 7, 3 + dur / 2, shard, i, (unsigned long long)(q % 10000000ull), WF, id,
	    s->failed[i] ? 137 : 0, child, (unsigned)(r >> 24) % 4, (unsigned)(r >> 32) % 256,
	    (unsigned)(r >> 40) % 256, zones[(r >> 48) % 3]);
	if (n < 0 || (size_t)n >= sizeof(buf))
		die("node record", "too long");
	free(s->text[i]);
	s->text[i] = xmalloc((size_t)n + 1);
	memcpy(s->text[i], buf, (size_t)n + 1);
	s->len[i] = (size_t)n;
}

/* The JSON object of every node; *doclen bytes at s->doc. */
static void state_doc(state *s)
{
	size_t need = 2;

	for (size_t i = 0; i < s->n; i++)
		need += s->len[i] + 1;
	if (need > s->cap) {
		free(s->doc);
		s->cap = need + need / 8;
		s->doc = xmalloc(s->cap);
	}
	s->doclen = 0;
	s->doc[s->doclen++] = '{';
	for (size_t i = 0; i < s->n; i++) {
		if (i)
			s->doc[s->doclen++] = ',';
		memcpy(s->doc + s->doclen, s->text[i], s->len[i]);
		s->doclen += s->len[i];
	}
	s->doc[s->doclen++] = '}';
}

/* A state of `nodes` nodes (0: as many as make ~bytes). */
static void state_new(state *s, size_t bytes, size_t nodes)
{
	memset(s, 0, sizeof(*s));
	if (!nodes)
		nodes = bytes / 1000 + 1;   /* grown below */
	for (;;) {
		s->text = calloc(nodes, sizeof(char *));
		s->len = calloc(nodes, sizeof(size_t));
		s->gen = calloc(nodes, sizeof(unsigned));
		s->failed = calloc(nodes, 1);
		if (!s->text || !s->len || !s->gen || !s->failed)
			die("out of memory", NULL);
		s->n = nodes;
		size_t total = 2;
		for (size_t i = 0; i < nodes; i++) {
			node_render(s, i);
			total += s->len[i] + 1;
		}
		if (!bytes || total >= bytes)
			break;
		/* too small: the records average less than guessed */
		for (size_t i = 0; i < nodes; i++)
			free(s->text[i]);
		free(s->text);
		free(s->len);
		free(s->gen);
		free(s->failed);
		nodes = (size_t)((double)nodes * (double)bytes / (double)total) + 8;
	}
	if (bytes) {   /* trim to the first node count reaching `bytes` */
		size_t total = 2, k = 0;
		while (k < s->n && total < bytes)
			total += s->len[k++] + 1;
		for (size_t i = k; i < s->n; i++)
			free(s->text[i]);
		s->n = k;
	}
	state_doc(s);
}

static void state_free(state *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->text[i]);
	free(s->text);
	free(s->len);
	free(s->gen);
	free(s->failed);
	free(s->doc);
}

/* An edit: the nodes it changed (indexes), and their new bytes. */
typedef struct edit {
	size_t *idx, n;
	size_t bytes;   /* raw bytes of the changed records ("id":{...}) */
} edit;

/* Reconcile r: 20 scattered nodes to their next generation. */
static void edit_scattered(edit *e, state *s, unsigned r)
{
	e->n = 0;
	e->bytes = 0;
	for (unsigned k = 0; k < 20; k++) {
		size_t i = (size_t)(splitmix(((uint64_t)r << 8 | k) ^ 0x5ca77e7ed) % s->n);
		s->gen[i]++;
		node_render(s, i);
		e->idx[e->n++] = i;
		e->bytes += s->len[i];
	}
}

/* Edit r: the next contiguous 1% of the nodes flip between failed and not. */
static void edit_contiguous(edit *e, state *s, unsigned r)
{
	size_t run = s->n / 100 ? s->n / 100 : 1, lo = (s->n / 3 + (size_t)r * run) % s->n;

	e->n = 0;
	e->bytes = 0;
	for (size_t k = 0; k < run; k++) {
		size_t i = (lo + k) % s->n;
		s->failed[i] ^= 1;
		node_render(s, i);
		e->idx[e->n++] = i;
		e->bytes += s->len[i];
	}
}

/* ------------------------------------------------------------------------ */
/* gzip and base64                                                          */

/* gzip level 6 (Go's and zlib's default) of n bytes; *out_len. */
static unsigned char *gzip6(size_t *out_len, const void *in, size_t n)
{
	z_stream z;
	size_t cap = compressBound((uLong)n) + 64;
	unsigned char *out = xmalloc(cap);

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		die("deflateInit2", NULL);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		die("deflate", z.msg);
	*out_len = z.total_out;
	deflateEnd(&z);
	return out;
}

/* gunzip into a buffer of up to `cap` bytes (the state is never larger). */
static char *gunzip(size_t *out_len, const void *in, size_t n, size_t cap)
{
	z_stream z;
	char *out = xmalloc(cap);

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		die("inflateInit2", NULL);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	if (inflate(&z, Z_FINISH) != Z_STREAM_END)
		die("inflate", z.msg ? z.msg : "truncated or larger than the state");
	*out_len = z.total_out;
	inflateEnd(&z);
	return out;
}

static char *b64enc(size_t *out_len, const unsigned char *in, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);

	*out_len = (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	return out;
}

static unsigned char *b64dec(size_t *out_len, const char *in, size_t n)
{
	unsigned char *out = xmalloc(3 * (n / 4) + 3);
	int got = n ? EVP_DecodeBlock(out, (const unsigned char *)in, (int)n) : 0;

	if (got < 0)
		die("base64", "malformed");
	if (n >= 1 && in[n - 1] == '=')
		got--;
	if (n >= 2 && in[n - 2] == '=')
		got--;
	*out_len = (size_t)got;
	return out;
}

/* ------------------------------------------------------------------------ */
/* ConfigMaps through the project's client                                  */

static const char *NS = "bench";
static size_t state_cap;   /* the largest state a reader must expect (gunzip cap) */

/* The body of a ConfigMap with data {key: val} (val needs no escaping). */
static char *cm_body(size_t *len, const char *name, const char *key, const char *val, size_t vlen)
{
	static const char fmt[] = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
	                          "{\"name\":\"%s\"},\"data\":{\"%s\":\"";
	size_t cap = sizeof(fmt) + strlen(name) + strlen(key) + vlen + 8;
	char *b = xmalloc(cap);
	int h = snprintf(b, cap, fmt, name, key);

	memcpy(b + h, val, vlen);
	memcpy(b + (size_t)h + vlen, "\"}}", 4);
	*len = (size_t)h + vlen + 3;
	return b;
}

/* metadata.resourceVersion of a response body into rv (cap 64). */
static void rv_of(char *rv, const char *body, size_t len)
{
	cJSON *o = cJSON_ParseWithLength(body, len);
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "metadata");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "resourceVersion");

	snprintf(rv, 64, "%s", cJSON_IsString(v) ? v->valuestring : "");
	cJSON_Delete(o);
}

/*
 * Write n ConfigMaps (update, or create those that do not exist yet) in
 * parallel; rv (may be NULL) gets the last one's resourceVersion.
 * Returns 0 or the first failure's KVS_E code (*detail set).
 */
static int cm_put_many(kvs_kube *k, char **names, char **bodies, size_t *lens, size_t n, char *rv,
                       char *detail, size_t dcap, int fresh)
{
	kvs_kube_request *rq = xmalloc(n * sizeof(*rq));
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		kvs_kube_request z = KVS_KUBE_REQUEST_INIT;
		rq[i] = z;
		rq[i].verb = fresh ? KVS_KUBE_VERB_CREATE : KVS_KUBE_VERB_UPDATE;
		rq[i].resource = &kvs_kube_configmaps;
		rq[i].ns = NS;
		rq[i].name = fresh ? NULL : names[i];
		rq[i].body = bodies[i];
		rq[i].body_len = lens[i];
	}
	if ((rc = kvs_kube_run(k, rq, n)) < 0)
		die("kvs_kube_run", kvs_error_last());
	/* the first write of a name: create it */
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (!fresh && rq[i].result == KVS_ENOTFOUND) {
			kvs_kube_request_clear(&rq[i]);
			rq[i].verb = KVS_KUBE_VERB_CREATE;
			rq[i].name = NULL;
			m++;
		}
	}
	if (m) {
		kvs_kube_request *rc2 = xmalloc(m * sizeof(*rc2));
		size_t j = 0;
		for (size_t i = 0; i < n; i++)
			if (rq[i].verb == KVS_KUBE_VERB_CREATE)
				rc2[j++] = rq[i];
		if (kvs_kube_run(k, rc2, m) < 0)
			die("kvs_kube_run", kvs_error_last());
		j = 0;
		for (size_t i = 0; i < n; i++)
			if (rq[i].verb == KVS_KUBE_VERB_CREATE)
				rq[i] = rc2[j++];
		free(rc2);
	}
	for (size_t i = 0; i < n; i++) {
		if (rq[i].result < 0 && !rc) {
			rc = rq[i].result;
			snprintf(detail, dcap, "%s", rq[i].detail);
		}
	}
	if (!rc && rv)
		rv_of(rv, rq[n - 1].response, rq[n - 1].response_len);
	for (size_t i = 0; i < n; i++)
		kvs_kube_request_clear(&rq[i]);
	free(rq);
	return rc;
}

static int cm_put(kvs_kube *k, const char *name, const char *key, const char *val, size_t vlen,
                  char *rv, char *detail, size_t dcap)
{
	size_t len;
	char *body = cm_body(&len, name, key, val, vlen), *nm = (char *)(uintptr_t)name;
	int rc = cm_put_many(k, &nm, &body, &len, 1, rv, detail, dcap, 0);

	free(body);
	return rc;
}

/* GET n ConfigMaps in parallel; each data[key] string into vals[i] (malloc'd). */
static void cm_get_many(kvs_kube *k, char **names, size_t n, const char *key, char **vals,
                        size_t *vlens)
{
	kvs_kube_request *rq = xmalloc(n * sizeof(*rq));

	for (size_t i = 0; i < n; i++) {
		kvs_kube_request z = KVS_KUBE_REQUEST_INIT;
		rq[i] = z;
		rq[i].verb = KVS_KUBE_VERB_GET;
		rq[i].resource = &kvs_kube_configmaps;
		rq[i].ns = NS;
		rq[i].name = names[i];
	}
	if (kvs_kube_run(k, rq, n) < 0)
		die("kvs_kube_run", kvs_error_last());
	for (size_t i = 0; i < n; i++) {
		if (rq[i].result < 0)
			die("GET configmap", rq[i].detail);
		cJSON *o = cJSON_ParseWithLength(rq[i].response, rq[i].response_len);
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "data");
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, key);
		if (!cJSON_IsString(v))
			die("GET configmap", "no such data key");
		vlens[i] = strlen(v->valuestring);
		vals[i] = xmalloc(vlens[i] + 1);
		memcpy(vals[i], v->valuestring, vlens[i] + 1);
		cJSON_Delete(o);
		kvs_kube_request_clear(&rq[i]);
	}
	free(rq);
}

static void cm_delete_many(kvs_kube *k, char **names, size_t n)
{
	kvs_kube_request *rq = xmalloc((n ? n : 1) * sizeof(*rq));

	for (size_t i = 0; i < n; i++) {
		kvs_kube_request z = KVS_KUBE_REQUEST_INIT;
		rq[i] = z;
		rq[i].verb = KVS_KUBE_VERB_DELETE;
		rq[i].resource = &kvs_kube_configmaps;
		rq[i].ns = NS;
		rq[i].name = names[i];
	}
	if (n && kvs_kube_run(k, rq, n) < 0)
		die("kvs_kube_run", kvs_error_last());
	for (size_t i = 0; i < n; i++)
		kvs_kube_request_clear(&rq[i]);
	free(rq);
}

/* ------------------------------------------------------------------------ */
/* Peers                                                                    */

typedef enum peer_id { P_ONE, P_CHUNKS, P_SQL, P_SQL_FAST, P_KVS, P_MAP, P_N } peer_id;
static const char *peer_names[P_N] = { "one", "chunks", "sql", "sql-fast", "kvs", "kvs-map" };
static const char *peer_what[P_N] = {
	"1 ConfigMap, gzip -6 + base64 (Argo compressedNodes, Helm release)",
	"~1 MiB gzip+base64 ConfigMaps under an index (helm-operator-plugins chunked)",
	"PostgreSQL offload (Argo), default durability: fsync + synchronous_commit",
	"PostgreSQL offload (Argo), fsync=off, synchronous_commit=off",
	"kvsplit opaque value",
	"kvsplit key-split map",
};
static const char *peer_ops[P_N] = { "nothing", "nothing", "a PostgreSQL server",
	                             "a PostgreSQL server", "nothing (gc: a CronJob)",
	                             "nothing (gc: a CronJob)" };

typedef struct config {
	const char *kubeconfig;
	const char *pg[2];       /* durable, fast */
	unsigned updates, runs;
	double budget_s;
} config;
static config cfg;

/* One writer's connection to its backend(s). */
typedef struct peer {
	peer_id id;
	kvs_kube *kube;
	PGconn *pg;
	kvs_store *store;
	char rv[64];             /* of the watched object after the last update */
	unsigned gen;            /* chunks: generation of the chunk set */
	size_t nchunks;
	int map_ready;
	char detail[600];
} peer;

#define CHUNK_B64 (1048576u - 64u)   /* base64 text per chunk ConfigMap */

static kvs_kube *kube_open(void)
{
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	kvs_kube *k;

	ko.kubeconfig = cfg.kubeconfig;
	ko.qps = KVS_KUBE_QPS_OFF;
	if (kvs_kube_open(&k, &ko) < 0)
		die("kvs_kube_open", kvs_error_last());
	return k;
}

static kvs_store *store_open(uint64_t cache)
{
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_backend *b = NULL;
	kvs_store *s = NULL;

	ko.kubeconfig = cfg.kubeconfig;
	ko.qps = KVS_KUBE_QPS_OFF;
	o.cache_bytes = cache;
	if (kvs_backend_kube(&b, &ko) < 0 || kvs_open(&s, b, &o) < 0)
		die("kvsplit open", kvs_error_last());
	return s;
}

static PGconn *pg_open(peer_id id)
{
	PGconn *c = PQconnectdb(cfg.pg[id == P_SQL_FAST]);

	if (PQstatus(c) != CONNECTION_OK)
		die("PQconnectdb", PQerrorMessage(c));
	return c;
}

static void pg_ok(PGresult *r, PGconn *c, const char *what)
{
	ExecStatusType t = PQresultStatus(r);

	if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK)
		die(what, PQerrorMessage(c));
}

/* Argo's offload table (persist/sqldb: argo_workflows, one row per version). */
static void pg_schema(PGconn *c)
{
	PGresult *r = PQexec(c,
	    "SET client_min_messages = warning; "
	    "CREATE TABLE IF NOT EXISTS argo_workflows (clustername varchar(64) NOT NULL, "
	    "uid varchar(128) NOT NULL, version varchar(64) NOT NULL, namespace varchar(256) NOT NULL, "
	    "name varchar(256) NOT NULL, nodes json NOT NULL, updatedat timestamp NOT NULL, "
	    "PRIMARY KEY (clustername, uid, version)); TRUNCATE argo_workflows");
	pg_ok(r, c, "schema");
	PQclear(r);
}

static const char *UID = "5f0c1f4e-8d1b-4a1c-9c55-1d3a9b7e2c10";

/* Argo's version: "fnv:" and the 32-bit FNV-1a of the nodes' JSON. */
static void fnv_version(char *out, const char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 16777619u;
	}
	snprintf(out, 32, "fnv:%u", h);
}

/* Figures of one update. */
typedef struct upd {
	double secs;
	double commit_t;   /* monotonic s when the commit was acknowledged */
	uint64_t sent, requests;
	uint64_t index_bytes, compact_bytes;   /* kvs-map: the index sent, compaction's share */
	int compacted;
	int failed;
} upd;

/* Chunk i of generation gen of writer process w (names never reused). */
static void chunk_name(char *out, size_t cap, unsigned w, unsigned gen, size_t i)
{
	snprintf(out, cap, "peer-chunks-%u-g%u-%zu", w, gen, i);
}

/*
 * Write the state (whole, or the edit for the map); fills u. Returns 0, or
 * a KVS_E code when the peer cannot hold it (p->detail says why).
 */
static int peer_write(peer *p, state *s, const edit *e, upd *u)
{
	uint64_t sent0 = net_sent();
	double t0 = now_s();
	int rc = 0;

	u->requests = 0;
	u->failed = 0;
	u->commit_t = 0;
	u->index_bytes = u->compact_bytes = 0;
	u->compacted = 0;
	switch (p->id) {
	case P_ONE: {
		size_t zl, bl;
		unsigned char *z = gzip6(&zl, s->doc, s->doclen);
		char *b = b64enc(&bl, z, zl);
		free(z);
		rc = cm_put(p->kube, "peer-one", "nodes", b, bl, p->rv, p->detail, sizeof(p->detail));
		u->requests = 1;
		free(b);
		break;
	}
	case P_CHUNKS: {
		size_t zl, bl, n, old = p->nchunks;
		unsigned char *z = gzip6(&zl, s->doc, s->doclen);
		char *b = b64enc(&bl, z, zl), idx[128];
		free(z);
		n = (bl + CHUNK_B64 - 1) / CHUNK_B64;
		char **names = xmalloc((n + old + 1) * sizeof(char *)), **bodies = xmalloc(n * sizeof(char *));
		size_t *lens = xmalloc(n * sizeof(size_t));
		for (size_t i = 0; i < n; i++) {
			size_t off = i * CHUNK_B64, l = bl - off < CHUNK_B64 ? bl - off : CHUNK_B64;
			names[i] = xmalloc(64);
			chunk_name(names[i], 64, (unsigned)getpid(), p->gen + 1, i);
			bodies[i] = cm_body(&lens[i], names[i], "c", b + off, l);
		}
		free(b);
		/* new names every generation: created, never updated */
		rc = cm_put_many(p->kube, names, bodies, lens, n, NULL, p->detail, sizeof(p->detail), 1);
		u->requests += n;
		if (!rc) {
			int il = snprintf(idx, sizeof(idx), "%u/%u/%zu", (unsigned)getpid(), p->gen + 1, n);
			rc = cm_put(p->kube, "peer-chunks", "chunks", idx, (size_t)il, p->rv, p->detail,
			            sizeof(p->detail));
			u->commit_t = now_s();   /* readers see the new chunks from here */
			u->requests++;
		}
		if (!rc) {
			for (size_t i = 0; i < old; i++) {
				names[n + i] = xmalloc(64);
				chunk_name(names[n + i], 64, (unsigned)getpid(), p->gen, i);
			}
			cm_delete_many(p->kube, names + n, old);
			u->requests += old;
			for (size_t i = 0; i < old; i++)
				free(names[n + i]);
			p->gen++;
			p->nchunks = n;
		}
		for (size_t i = 0; i < n; i++) {
			free(names[i]);
			free(bodies[i]);
		}
		free(names);
		free(bodies);
		free(lens);
		break;
	}
	case P_SQL:
	case P_SQL_FAST: {
		char ver[32], body_rv[64];
		const char *prm[6];
		int lens[6] = { 0 }, fmts[6] = { 0 };
		PGresult *r;
		fnv_version(ver, s->doc, s->doclen);
		/* the row of this version (Argo: insert; on a duplicate, touch updatedat) */
		prm[0] = "default";
		prm[1] = UID;
		prm[2] = ver;
		prm[3] = "argo";
		prm[4] = WF;
		char *nodes = xmalloc(s->doclen + 1);
		memcpy(nodes, s->doc, s->doclen);
		nodes[s->doclen] = 0;
		prm[5] = nodes;
		r = PQexecParams(p->pg,
		                 "INSERT INTO argo_workflows (clustername, uid, version, namespace, name, "
		                 "nodes, updatedat) VALUES ($1, $2, $3, $4, $5, $6, now() AT TIME ZONE 'UTC') "
		                 "ON CONFLICT (clustername, uid, version) DO UPDATE SET updatedat = "
		                 "now() AT TIME ZONE 'UTC'",
		                 6, NULL, prm, lens, fmts, 0);
		pg_ok(r, p->pg, "insert");
		PQclear(r);
		free(nodes);
		/* the reference in the object (status.offloadNodeStatusVersion) */
		rc = cm_put(p->kube, "peer-sql", "offloadNodeStatusVersion", ver, strlen(ver), body_rv,
		            p->detail, sizeof(p->detail));
		snprintf(p->rv, sizeof(p->rv), "%s", body_rv);
		u->commit_t = now_s();   /* readers see the new version from here */
		/* older versions once past the TTL (5 minutes, Argo's default) */
		r = PQexecParams(p->pg,
		                 "DELETE FROM argo_workflows WHERE clustername = $1 AND uid = $2 AND "
		                 "version <> $3 AND updatedat < (now() AT TIME ZONE 'UTC') - interval '5 minutes'",
		                 3, NULL, prm, lens, fmts, 0);
		pg_ok(r, p->pg, "delete");
		PQclear(r);
		u->requests = 3;
		break;
	}
	case P_KVS: {
		kvs_put_options po = KVS_PUT_OPTIONS_INIT;
		kvs_put_stats st;
		kvs_ver v;
		memset(&st, 0, sizeof(st));
		po.stats = &st;
		rc = kvs_put(&v, p->store, "peer-kvs", s->doc, s->doclen, &po);
		if (rc < 0)
			snprintf(p->detail, sizeof(p->detail), "%s", kvs_error_last());
		snprintf(p->rv, sizeof(p->rv), "%s", v.str);
		u->requests = st.requests;
		break;
	}
	case P_MAP: {
		kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
		kvs_map_stats st;
		kvs_ver v;
		memset(&st, 0, sizeof(st));
		wo.stats = &st;
		if (!e) {
			rc = kvs_map_import_json(&v, p->store, "peer-map", s->doc, s->doclen, &wo);
		} else {
			kvs_map_batch *b;
			if (kvs_map_batch_new(&b) < 0)
				die("batch", NULL);
			for (size_t k = 0; k < e->n; k++) {
				const char *t = s->text[e->idx[k]];
				const char *colon = strchr(t, ':');
				/* "id":{...}: the field is id, the value the record */
				if (kvs_map_batch_put_json(b, t + 1, (size_t)(colon - t - 2), colon + 1,
				                           s->len[e->idx[k]] - (size_t)(colon + 1 - t)) < 0)
					die("batch put", kvs_error_last());
			}
			rc = kvs_map_commit(&v, p->store, "peer-map", b, &wo);
			kvs_map_batch_free(b);
		}
		if (rc < 0)
			snprintf(p->detail, sizeof(p->detail), "%s", kvs_error_last());
		snprintf(p->rv, sizeof(p->rv), "%s", v.str);
		u->requests = st.requests;
		u->index_bytes = st.index_bytes;
		u->compact_bytes = st.compact_bytes_written;
		u->compacted = st.compacted;
		break;
	}
	case P_N:
		break;
	}
	u->secs = now_s() - t0;
	if (!u->commit_t)
		u->commit_t = t0 + u->secs;
	u->sent = net_sent() - sent0;
	u->failed = rc < 0;
	return rc;
}

typedef struct sinkbuf {
	char *b;
	size_t n, cap;
} sinkbuf;

static int peers_sink(void *ctx, const void *b, size_t n)
{
	sinkbuf *k = ctx;

	if (k->n + n > k->cap)
		return -1;
	memcpy(k->b + k->n, b, n);
	k->n += n;
	return 0;
}

/* A full read of the state; returns its length and XXH3 into *h. */
static size_t peer_read(peer *p, uint64_t *h, uint64_t *requests)
{
	char *doc = NULL;
	size_t len = 0;

	*requests = 0;
	switch (p->id) {
	case P_ONE: {
		char *names[1] = { (char *)(uintptr_t)"peer-one" }, *v;
		size_t vl, zl;
		cm_get_many(p->kube, names, 1, "nodes", &v, &vl);
		unsigned char *z = b64dec(&zl, v, vl);
		doc = gunzip(&len, z, zl, state_cap);
		free(v);
		free(z);
		*requests = 1;
		break;
	}
	case P_CHUNKS: {
		char *names[1] = { (char *)(uintptr_t)"peer-chunks" }, *v;
		size_t vl, zl, n, bl = 0;
		unsigned g, w;
		cm_get_many(p->kube, names, 1, "chunks", &v, &vl);
		if (sscanf(v, "%u/%u/%zu", &w, &g, &n) != 3)
			die("chunk index", v);
		free(v);
		char **cn = xmalloc(n * sizeof(char *)), **cv = xmalloc(n * sizeof(char *));
		size_t *cl = xmalloc(n * sizeof(size_t));
		for (size_t i = 0; i < n; i++) {
			cn[i] = xmalloc(64);
			chunk_name(cn[i], 64, w, g, i);
		}
		cm_get_many(p->kube, cn, n, "c", cv, cl);
		for (size_t i = 0; i < n; i++)
			bl += cl[i];
		char *b = xmalloc(bl + 1);
		bl = 0;
		for (size_t i = 0; i < n; i++) {
			memcpy(b + bl, cv[i], cl[i]);
			bl += cl[i];
			free(cv[i]);
			free(cn[i]);
		}
		unsigned char *z = b64dec(&zl, b, bl);
		doc = gunzip(&len, z, zl, state_cap);
		free(z);
		free(b);
		free(cn);
		free(cv);
		free(cl);
		*requests = 1 + n;
		break;
	}
	case P_SQL:
	case P_SQL_FAST: {
		char *names[1] = { (char *)(uintptr_t)"peer-sql" }, *v;
		size_t vl;
		const char *prm[3] = { "default", UID, NULL };
		cm_get_many(p->kube, names, 1, "offloadNodeStatusVersion", &v, &vl);
		prm[2] = v;
		PGresult *r = PQexecParams(p->pg,
		                           "SELECT nodes FROM argo_workflows WHERE clustername = $1 AND "
		                           "uid = $2 AND version = $3",
		                           3, NULL, prm, NULL, NULL, 0);
		pg_ok(r, p->pg, "select");
		if (PQntuples(r) != 1)
			die("select", "no row for the version");
		len = (size_t)PQgetlength(r, 0, 0);
		doc = xmalloc(len);
		memcpy(doc, PQgetvalue(r, 0, 0), len);
		PQclear(r);
		free(v);
		*requests = 2;
		break;
	}
	case P_KVS: {
		void *got;
		if (kvs_get(&got, &len, NULL, p->store, "peer-kvs", NULL) < 0)
			die("kvs_get", kvs_error_last());
		doc = xmalloc(len);
		memcpy(doc, got, len);
		kvs_free(got);
		break;
	}
	case P_MAP: {
		/* export into a buffer */
		sinkbuf buf = { xmalloc(state_cap), 0, state_cap };
		kvs_map_read_options ro = KVS_MAP_READ_OPTIONS_INIT;
		kvs_map_stats st;
		memset(&st, 0, sizeof(st));
		ro.stats = &st;
		if (kvs_map_export_json(NULL, p->store, "peer-map", peers_sink, &buf, &ro) < 0)
			die("kvs_map_export_json", kvs_error_last());
		doc = buf.b;
		len = buf.n;
		*requests = st.segments_read + 1;
		break;
	}
	case P_N:
		break;
	}
	*h = XXH3_64bits(doc, len);
	free(doc);
	return len;
}

/* ------------------------------------------------------------------------ */
/* The watcher: its own process, one line "<monotonic s> <version>" per     */
/* change it holds the new value of                                         */

static void watcher_main(peer_id id, const char *rv, int out)
{
	char line[160];
	kvs_kube *k = NULL;
	kvs_kube_watch *w = NULL;
	kvs_store *s = NULL;
	kvs_watch *kw = NULL;
	PGconn *pg = NULL;
	const char *obj = id == P_ONE ? "peer-one" : id == P_CHUNKS ? "peer-chunks" : "peer-sql";

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (id == P_KVS || id == P_MAP) {
		kvs_watch_options wo = KVS_WATCH_OPTIONS_INIT;
		wo.flags = KVS_WATCH_VALUES | (id == P_MAP ? KVS_WATCH_FIELDS : 0);
		wo.since = rv;
		wo.max_bytes = KVS_MAX_BYTES_UNLIMITED;
		s = store_open(0);
		if (kvs_watch_open(&kw, s, id == P_MAP ? "peer-map" : "peer-kvs", &wo) < 0)
			die("kvs_watch_open", kvs_error_last());
	} else {
		kvs_kube_watch_options wo = KVS_KUBE_WATCH_OPTIONS_INIT;
		char sel[96];
		snprintf(sel, sizeof(sel), "metadata.name=%s", obj);
		wo.field_selector = sel;
		wo.resource_version = rv;
		wo.allow_bookmarks = 0;
		wo.timeout_s = 3600;
		k = kube_open();
		if (id == P_SQL || id == P_SQL_FAST)
			pg = pg_open(id);
		if (kvs_kube_watch_open(&w, k, &kvs_kube_configmaps, NS, &wo, NULL) < 0)
			die("kvs_kube_watch_open", kvs_error_last());
	}
	if (write(out, "ready\n", 6) != 6)
		_exit(1);
	for (;;) {
		char ver[KVS_VER_MAX];
		if (kw) {
			kvs_watch_event ev;
			int rc = kvs_watch_next(&ev, kw, -1);
			if (rc < 0)
				die("kvs_watch_next", kvs_error_last());
			if (id == P_MAP) {
				const kvs_map_field_change *ch;
				size_t n;
				if (kvs_watch_fields(&ch, &n, kw) < 0)
					die("kvs_watch_fields", kvs_error_last());
			}
			snprintf(ver, sizeof(ver), "%s", ev.version.str);
		} else {
			kvs_kube_event ev;
			int rc = kvs_kube_watch_next(&ev, w, -1, NULL);
			if (rc < 0)
				die("kvs_kube_watch_next", kvs_error_last());
			if (ev.type != KVS_KUBE_MODIFIED && ev.type != KVS_KUBE_ADDED) {
				kvs_kube_event_clear(&ev);
				continue;
			}
			snprintf(ver, sizeof(ver), "%s", ev.resource_version ? ev.resource_version : "");
			const cJSON *d = cJSON_GetObjectItemCaseSensitive(ev.object, "data");
			peer p;
			memset(&p, 0, sizeof(p));
			p.id = id;
			p.kube = k;
			p.pg = pg;
			if (id == P_ONE) {
				/* the event carries the whole object: decode it */
				const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, "nodes");
				size_t zl, len;
				if (!cJSON_IsString(v))
					die("watch", "no nodes");
				unsigned char *z = b64dec(&zl, v->valuestring, strlen(v->valuestring));
				free(gunzip(&len, z, zl, state_cap));
				free(z);
			} else {
				uint64_t h, rq;
				peer_read(&p, &h, &rq);   /* the index / the reference, then the rest */
			}
			kvs_kube_event_clear(&ev);
		}
		int n = snprintf(line, sizeof(line), "%.6f %s\n", now_s(), ver);
		if (write(out, line, (size_t)n) != n)
			_exit(0);
	}
}

typedef struct watcher {
	pid_t pid;
	int fd;
	char buf[4096];
	size_t len;
} watcher;

/* One line from the watcher into out (without the newline); 0, or -1 after 120 s or EOF. */
static int watcher_line(watcher *w, char *out, size_t cap)
{
	for (;;) {
		char *nl = memchr(w->buf, '\n', w->len);
		if (nl) {
			size_t n = (size_t)(nl - w->buf);
			snprintf(out, cap, "%.*s", (int)n, w->buf);
			memmove(w->buf, nl + 1, w->len - n - 1);
			w->len -= n + 1;
			return 0;
		}
		struct pollfd pf = { w->fd, POLLIN, 0 };
		if (w->len == sizeof(w->buf) || poll(&pf, 1, 120000) <= 0)
			return -1;
		ssize_t got = read(w->fd, w->buf + w->len, sizeof(w->buf) - w->len);
		if (got <= 0)
			return -1;
		w->len += (size_t)got;
	}
}

static void watcher_start(watcher *w, peer_id id, const char *rv)
{
	int fd[2];
	char line[64];

	if (pipe(fd) != 0)
		die("pipe", strerror(errno));
	fflush(NULL);
	w->pid = fork();
	if (w->pid < 0)
		die("fork", strerror(errno));
	if (w->pid == 0) {
		close(fd[0]);
		watcher_main(id, rv, fd[1]);
		_exit(0);
	}
	close(fd[1]);
	w->fd = fd[0];
	w->len = 0;
	if (watcher_line(w, line, sizeof(line)) < 0 || strcmp(line, "ready"))
		die("watcher", "did not start");
}

/* When the watcher held version `ver` (monotonic s), or -1 after 120 s. */
static double watcher_wait(watcher *w, const char *ver)
{
	char line[160], v[KVS_VER_MAX + 8];
	double t;

	for (;;) {
		if (watcher_line(w, line, sizeof(line)) < 0)
			return -1;
		if (sscanf(line, "%lf %70s", &t, v) == 2 && strcmp(v, ver) == 0)
			return t;
	}
}

static void watcher_stop(watcher *w)
{
	if (w->pid > 0) {
		kill(w->pid, SIGKILL);
		waitpid(w->pid, NULL, 0);
		close(w->fd);
		w->pid = 0;
	}
}

/* ------------------------------------------------------------------------ */
/* One writer: one peer, one size, one run                                  */

typedef struct result {
	int held;              /* the state fit */
	size_t state_bytes, nodes;
	unsigned n_rec, n_edit, n_watch;
	double rec_put, edit_put, get;          /* s, medians */
	double rec_sent, rec_ratio;             /* bytes; / changed bytes */
	double edit_sent, edit_pct;             /* bytes; % of the state */
	double rec_reqs, edit_reqs;
	double watch_ms;
	double map_index[2], map_compact[2];    /* kvs-map, reconcile / 1%: median index bytes, mean compaction bytes */
	unsigned map_compactions[2];
	double rec_sent_mean, rec_ratio_mean;   /* means: compactions included */
	double edit_sent_mean, edit_pct_mean;
	uint64_t lost;
	long rss_kib;
	char detail[200];
} result;

static void writer_main(peer_id id, size_t bytes, int out)
{
	result r;
	state s;
	peer p;
	edit e;
	upd u;
	double *a = xmalloc(cfg.updates * sizeof(double)), *b = xmalloc(cfg.updates * sizeof(double)),
	       *c = xmalloc(cfg.updates * sizeof(double)), *d = xmalloc(cfg.updates * sizeof(double)),
	       *wt = xmalloc(cfg.updates * sizeof(double)), *ix = xmalloc(cfg.updates * sizeof(double));
	int rc;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	memset(&r, 0, sizeof(r));
	memset(&p, 0, sizeof(p));
	p.id = id;
	state_new(&s, bytes, 0);
	state_cap = s.doclen * 2 + (1u << 20);
	e.idx = xmalloc((s.n / 100 + 21) * sizeof(size_t));
	r.state_bytes = s.doclen;
	r.nodes = s.n;
	if (id == P_KVS || id == P_MAP)
		p.store = store_open(0);
	else
		p.kube = kube_open();
	if (id == P_SQL || id == P_SQL_FAST) {
		p.pg = pg_open(id);
		pg_schema(p.pg);
	}
	if ((rc = peer_write(&p, &s, NULL, &u)) < 0) {
		snprintf(r.detail, sizeof(r.detail), "%.190s", p.detail);
		goto done;
	}
	r.held = 1;

	/* reconciles, each waited for by the watcher */
	watcher w;
	watcher_start(&w, id, p.rv);
	double t0 = now_s();
	for (unsigned i = 0; i < cfg.updates; i++) {
		if (i >= 3 && now_s() - t0 > cfg.budget_s)
			break;
		edit_scattered(&e, &s, i);
		if (id != P_MAP)
			state_doc(&s);   /* marshalling the whole state: not timed */
		if (peer_write(&p, &s, &e, &u) < 0)
			die("reconcile", p.detail);
		double tc = u.commit_t;
		a[r.n_rec] = u.secs;
		b[r.n_rec] = (double)u.sent / (double)e.bytes;
		c[r.n_rec] = (double)u.sent;
		d[r.n_rec] = (double)u.requests;
		ix[r.n_rec] = (double)u.index_bytes;
		r.map_compact[0] += (double)u.compact_bytes;
		r.map_compactions[0] += (unsigned)u.compacted;
		r.rec_sent_mean += (double)u.sent;
		r.rec_ratio_mean += (double)e.bytes;   /* the changed bytes, summed; divided below */
		r.n_rec++;
		double th = watcher_wait(&w, p.rv);
		if (th < 0)
			die("watcher", "no event for the update within 120 s");
		wt[r.n_watch++] = (th - tc) * 1e3;
	}
	watcher_stop(&w);
	r.watch_ms = median(wt, r.n_watch);
	r.rec_put = median(a, r.n_rec);
	r.rec_ratio = median(b, r.n_rec);
	r.rec_sent = median(c, r.n_rec);
	r.rec_reqs = median(d, r.n_rec);
	r.map_index[0] = median(ix, r.n_rec);
	r.map_compact[0] /= r.n_rec;
	r.rec_ratio_mean = r.rec_sent_mean / r.rec_ratio_mean;   /* total sent / total changed */
	r.rec_sent_mean /= r.n_rec;

	/* contiguous 1% edits */
	t0 = now_s();
	for (unsigned i = 0; i < cfg.updates; i++) {
		if (i >= 3 && now_s() - t0 > cfg.budget_s)
			break;
		edit_contiguous(&e, &s, i);
		if (id != P_MAP)
			state_doc(&s);
		if (peer_write(&p, &s, &e, &u) < 0)
			die("1% edit", p.detail);
		a[r.n_edit] = u.secs;
		b[r.n_edit] = 100.0 * (double)u.sent / (double)s.doclen;
		c[r.n_edit] = (double)u.sent;
		d[r.n_edit] = (double)u.requests;
		ix[r.n_edit] = (double)u.index_bytes;
		r.map_compact[1] += (double)u.compact_bytes;
		r.map_compactions[1] += (unsigned)u.compacted;
		r.edit_sent_mean += (double)u.sent;
		r.n_edit++;
	}
	r.edit_put = median(a, r.n_edit);
	r.edit_pct = median(b, r.n_edit);
	r.edit_sent = median(c, r.n_edit);
	r.edit_reqs = median(d, r.n_edit);
	r.map_index[1] = median(ix, r.n_edit);
	r.map_compact[1] /= r.n_edit;
	r.edit_sent_mean /= r.n_edit;
	r.edit_pct_mean = 100.0 * r.edit_sent_mean / (double)s.doclen;

	/* a full read by a fresh client */
	{
		peer q;
		uint64_t h, rq;
		size_t len;
		memset(&q, 0, sizeof(q));
		q.id = id;
		if (id == P_KVS || id == P_MAP)
			q.store = store_open(0);
		else
			q.kube = kube_open();
		if (id == P_SQL || id == P_SQL_FAST)
			q.pg = pg_open(id);
		state_doc(&s);
		double tg = now_s();
		len = peer_read(&q, &h, &rq);
		r.get = now_s() - tg;
		/* the map exports its fields in field order: the document's (node_id) */
		if (len != s.doclen || h != XXH3_64bits(s.doc, s.doclen))
			die("read back", "the state read differs from the state written");
		kvs_close(q.store);
		kvs_kube_free(q.kube);
		PQfinish(q.pg);
	}
done:
	state_free(&s);
	r.lost = net_lost;
	if (write(out, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(1);
	_exit(0);
}

/*
 * Start every measurement from a quiet machine: PostgreSQL flushes what the
 * previous peer left dirty (CHECKPOINT; the sql peers insert a 64 MiB row
 * per update) and the kernel writes back its dirty pages, so that
 * background writeback does not land in the next peer's timings.
 */
static void settle(void)
{
	for (int i = 0; i < 2; i++) {
		if (!cfg.pg[i])
			continue;
		PGconn *c = PQconnectdb(cfg.pg[i]);
		if (PQstatus(c) == CONNECTION_OK)
			PQclear(PQexec(c, "CHECKPOINT"));
		PQfinish(c);
	}
	sync();
}

static int run_writer(result *r, peer_id id, size_t bytes)
{
	int fd[2], status = 0;
	struct rusage ru;
	pid_t pid;

	settle();
	if (pipe(fd) != 0)
		die("pipe", strerror(errno));
	fflush(NULL);
	if ((pid = fork()) < 0)
		die("fork", strerror(errno));
	if (pid == 0) {
		close(fd[0]);
		writer_main(id, bytes, fd[1]);
	}
	close(fd[1]);
	ssize_t n = read(fd[0], r, sizeof(*r));
	close(fd[0]);
	wait4(pid, &status, 0, &ru);
	if (n != (ssize_t)sizeof(*r) || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	r->rss_kib = ru.ru_maxrss;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The largest state one object holds                                       */

/* Bytes of base64(gzip -6) of the first `nodes` nodes of the state. */
static size_t one_b64(state *s, size_t nodes)
{
	size_t keep = s->n, zl;

	s->n = nodes;
	state_doc(s);
	s->n = keep;
	free(gzip6(&zl, s->doc, s->doclen));
	return 4 * ((zl + 2) / 3);
}

/* In a child: binary search on node count, then the server's word on both ends. */
static void largest_main(int out)
{
	state s;
	size_t lo = 1, hi, best;
	peer p;
	upd u;
	double res[3] = { 0, 0, 0 };

	state_new(&s, 32u << 20, 0);
	hi = s.n;
	while (lo < hi) {
		size_t mid = (lo + hi + 1) / 2;
		if (one_b64(&s, mid) <= 1048576 - 32)
			lo = mid;
		else
			hi = mid - 1;
	}
	best = lo;
	memset(&p, 0, sizeof(p));
	p.id = P_ONE;
	p.kube = kube_open();
	state_cap = s.doclen * 2;
	size_t keep = s.n;
	/* the server must take `best` nodes and refuse a few more */
	s.n = best;
	state_doc(&s);
	res[0] = (double)s.doclen;
	res[1] = peer_write(&p, &s, NULL, &u) == 0;
	s.n = best + 64 < keep ? best + 64 : keep;
	state_doc(&s);
	res[2] = peer_write(&p, &s, NULL, &u) < 0;
	if (write(out, res, sizeof(res)) != (ssize_t)sizeof(res))
		_exit(1);
	_exit(0);
}

static double largest_one(int *confirmed)
{
	int fd[2];
	double res[3] = { 0, 0, 0 };
	pid_t pid;

	if (pipe(fd) != 0)
		die("pipe", strerror(errno));
	fflush(NULL);
	if ((pid = fork()) == 0) {
		close(fd[0]);
		largest_main(fd[1]);
	}
	close(fd[1]);
	if (read(fd[0], res, sizeof(res)) != (ssize_t)sizeof(res))
		res[0] = 0;
	close(fd[0]);
	waitpid(pid, NULL, 0);
	*confirmed = res[1] == 1 && res[2] == 1;
	return res[0];
}

/* ------------------------------------------------------------------------ */
/* Main: the runs and the table                                             */

#define MAX_SIZES 8

static double med_of(result *rs, unsigned n, size_t off)
{
	double v[64];

	for (unsigned i = 0; i < n; i++)
		memcpy(&v[i], (const char *)&rs[i] + off, sizeof(v[i]));
	return median(v, n);
}
#define MED(rs, n, field) med_of((rs), (n), offsetof(result, field))

static void usage(void)
{
	fprintf(stderr, "usage: bench-peers --kubeconfig F [--pg CONNINFO] [--pg-fast CONNINFO] "
	                "[--sizes 1,8,64,256] [--runs 3] [--updates 100] [--budget S] "
	                "[--peers one,chunks,sql,sql-fast,kvs,kvs-map]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned sizes[MAX_SIZES] = { 1, 8, 64, 256 }, nsizes = 4;
	int want[P_N] = { 1, 1, 1, 1, 1, 1 };
	static result all[MAX_SIZES][P_N][64];
	int ok[MAX_SIZES][P_N];
	int failures = 0;

	cfg.updates = 100;
	cfg.runs = 3;
	cfg.budget_s = 1e9;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--kubeconfig"))
			cfg.kubeconfig = v;
		else if (!strcmp(a, "--pg"))
			cfg.pg[0] = v;
		else if (!strcmp(a, "--pg-fast"))
			cfg.pg[1] = v;
		else if (!strcmp(a, "--runs"))
			cfg.runs = (unsigned)atoi(v);
		else if (!strcmp(a, "--updates"))
			cfg.updates = (unsigned)atoi(v);
		else if (!strcmp(a, "--budget"))
			cfg.budget_s = atof(v);
		else if (!strcmp(a, "--sizes")) {
			char *dup = strdup(v), *save = NULL;
			nsizes = 0;
			for (char *t = strtok_r(dup, ",", &save); t && nsizes < MAX_SIZES;
			     t = strtok_r(NULL, ",", &save))
				sizes[nsizes++] = (unsigned)atoi(t);
			free(dup);
		} else if (!strcmp(a, "--peers")) {
			for (int p = 0; p < P_N; p++)
				want[p] = 0;
			char *dup = strdup(v), *save = NULL;
			for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				int p;
				for (p = 0; p < P_N && strcmp(t, peer_names[p]); p++)
					;
				if (p == P_N)
					usage();
				want[p] = 1;
			}
			free(dup);
		} else
			usage();
	}
	if (!cfg.kubeconfig || cfg.runs < 1 || cfg.runs > 64 || cfg.updates < 1 ||
	    cfg.updates > 100000 || !nsizes)
		usage();
	if (!cfg.pg[0])
		want[P_SQL] = 0;
	if (!cfg.pg[1])
		want[P_SQL_FAST] = 0;
	signal(SIGPIPE, SIG_IGN);

	int confirmed = 0;
	double largest = want[P_ONE] ? largest_one(&confirmed) : 0;

	for (unsigned z = 0; z < nsizes; z++) {
		for (int p = 0; p < P_N; p++) {
			ok[z][p] = 0;
			if (!want[p])
				continue;
			for (unsigned run = 0; run < cfg.runs; run++) {
				double t = now_s();
				result *r = &all[z][p][run];
				if (run_writer(r, (peer_id)p, (size_t)sizes[z] << 20) < 0) {
					fprintf(stderr, "bench-peers: %s at %u MiB, run %u: FAILED (above)\n",
					        peer_names[p], sizes[z], run + 1);
					failures++;
					break;
				}
				fprintf(stderr, "  %-8s %4u MiB run %u: %.1f s%s%s\n", peer_names[p], sizes[z],
				        run + 1, now_s() - t, r->held ? "" : ": cannot hold it: ", r->held ? "" : r->detail);
				ok[z][p]++;
				if (!r->held)
					break;   /* the same next time */
			}
		}
	}

	/* the table */
	printf("\nbench-peers: %u run%s (medians of the runs' medians), up to %u updates per workload%s\n",
	       cfg.runs, cfg.runs > 1 ? "s" : "", cfg.updates,
	       cfg.budget_s < 1e8 ? " (fewer where the --budget cut it: column n)" : "");
	printf("put = one update, commit included; get = a full read by a fresh client; sent = bytes "
	       "sent by the client (TCP, headers included)\nreconcile = 20 scattered nodes "
	       "changed (x = sent / their raw bytes); 1%% = a contiguous 1%% of the nodes "
	       "(%% = sent / state); watch = commit to a watcher holding the new value\n\n");
	printf("| state | peer | held | n | put s (reconcile) | put s (1%%) | get s | sent / reconcile | "
	       "sent / 1%% edit | requests (rec / 1%%) | peak RSS MiB | watch ms | operate besides "
	       "the cluster |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (unsigned z = 0; z < nsizes; z++) {
		for (int p = 0; p < P_N; p++) {
			result *rs = all[z][p];
			unsigned n = (unsigned)ok[z][p];
			char held[48];
			if (!want[p] || !n)
				continue;
			if (p == P_ONE)
				snprintf(held, sizeof(held), "%.1f MB%s", largest / 1e6, confirmed ? "" : "?");
			else if (p == P_SQL || p == P_SQL_FAST)
				snprintf(held, sizeof(held), "1 GB (a field)");
			else if (p == P_CHUNKS)
				snprintf(held, sizeof(held), "etcd quota");
			else
				snprintf(held, sizeof(held), "etcd quota");
			if (!rs[0].held) {
				printf("| %u MiB | %s | %s | - | does not fit: %s | | | | | | | | %s |\n", sizes[z],
				       peer_names[p], held, rs[0].detail, peer_ops[p]);
				continue;
			}
			double rss[64];
			for (unsigned i = 0; i < n; i++)
				rss[i] = (double)rs[i].rss_kib / 1024.0;
			printf("| %u MiB | %s | %s | %u/%u | %.3f | %.3f | %.3f | %.0f KB (%.1fx) | %.0f KB "
			       "(%.2f%%) | %.0f / %.0f | %.0f | %.1f | %s |\n",
			       sizes[z], peer_names[p], held, rs[0].n_rec, rs[0].n_edit, MED(rs, n, rec_put),
			       MED(rs, n, edit_put), MED(rs, n, get), MED(rs, n, rec_sent) / 1e3,
			       MED(rs, n, rec_ratio), MED(rs, n, edit_sent) / 1e3, MED(rs, n, edit_pct),
			       MED(rs, n, rec_reqs), MED(rs, n, edit_reqs), median(rss, n), MED(rs, n, watch_ms),
			       peer_ops[p]);
			for (unsigned i = 0; i < n; i++)
				if (rs[i].lost)
					printf("  (%s: %" PRIu64 " sockets closed between two counts: bytes may be "
					       "missing)\n", peer_names[p], rs[i].lost);
		}
	}
	printf("\npeers:");
	for (int p = 0; p < P_N; p++)
		if (want[p])
			printf("\n  %-8s = %s", peer_names[p], peer_what[p]);
	printf("\none object: largest state held %.1f MB of JSON (%s)\n", largest / 1e6,
	       confirmed ? "the test server took it and refused 64 nodes more"
	                 : "NOT confirmed by the server");

	/* the targets, from the figures above */
	printf("\ntargets (issue 12):\n");
	for (unsigned z = 0; z < nsizes; z++) {
		for (int k = P_KVS; k <= P_MAP; k++) {
			result *m = all[z][k];
			unsigned nm = (unsigned)ok[z][k];
			if (!want[k] || !nm || !m[0].held)
				continue;
			double pct = MED(m, nm, edit_pct), x = MED(m, nm, rec_ratio);
			int ahead = 1, peers = 0;
			printf("  %4u MiB %-7s: 1%% edit sends %.2f%% of the state (target < 5%%): %s; reconcile "
			       "sends %.2fx the changed nodes' bytes (target < 3x): %s\n",
			       sizes[z], peer_names[k], pct, pct < 5 ? "holds" : "DOES NOT HOLD", x,
			       x < 3 ? "holds" : "DOES NOT HOLD");
			for (int p = P_ONE; p <= P_SQL_FAST; p++) {
				result *rs = all[z][p];
				unsigned n = (unsigned)ok[z][p];
				if (!want[p] || !n || !rs[0].held)
					continue;
				peers++;
				if (!(pct < MED(rs, n, edit_pct) && x < MED(rs, n, rec_ratio)))
					ahead = 0;
			}
			if (peers)
				printf("                   ahead of every peer that holds it on both edit kinds: %s\n",
				       ahead ? "yes" : "NO");
			printf("                   mean, compactions included: reconcile %.0f KB sent (%.2fx), "
			       "1%% edit %.0f KB (%.2f%%)\n",
			       MED(m, nm, rec_sent_mean) / 1e3, MED(m, nm, rec_ratio_mean),
			       MED(m, nm, edit_sent_mean) / 1e3, MED(m, nm, edit_pct_mean));
			if (k == P_MAP)
				printf("                   (kvs-map: index sent per update %.0f / %.0f KB median; "
				       "compaction %.0f / %.0f KB per update on average, %u / %u compactions in run 1)\n",
				       MED(m, nm, map_index[0]) / 1e3, MED(m, nm, map_index[1]) / 1e3,
				       MED(m, nm, map_compact[0]) / 1e3, MED(m, nm, map_compact[1]) / 1e3,
				       m[0].map_compactions[0], m[0].map_compactions[1]);
		}
	}
	for (unsigned z = 0; z < nsizes; z++) {
		if (sizes[z] != 64 || !want[P_SQL_FAST] || !ok[z][P_SQL_FAST] || !all[z][P_SQL_FAST][0].held)
			continue;
		result *q = all[z][P_SQL_FAST];
		unsigned nq = (unsigned)ok[z][P_SQL_FAST];
		for (int p = P_KVS; p <= P_MAP; p++) {
			result *rs = all[z][p];
			unsigned n = (unsigned)ok[z][p];
			if (!want[p] || !n || !rs[0].held)
				continue;
			double kp = MED(rs, n, rec_put), qp = MED(q, nq, rec_put);
			double ke = MED(rs, n, edit_put), qe = MED(q, nq, edit_put);
			double kg = MED(rs, n, get), qg = MED(q, nq, get);
			printf("  64 MiB %s vs sql-fast (like for like): put (reconcile) %.3f vs %.3f s: %s; "
			       "put (1%%) %.3f vs %.3f s: %s; get %.3f vs %.3f s: %s\n",
			       peer_names[p], kp, qp, kp < qp ? "ahead" : "NOT ahead", ke, qe,
			       ke < qe ? "ahead" : "NOT ahead", kg, qg, kg < qg ? "ahead" : "NOT ahead");
		}
	}
	return failures ? 1 : 0;
}
