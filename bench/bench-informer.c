/*
 * bench-informer — informer memory per member at N = 1, 2, 4 members for
 * 10,000 ConfigMaps (about 1 KiB of data each) on the API test server.
 *
 * For each N, the member "m0" of a group of N takes its shards from the
 * bounded-load assignment (V = 1024), and a label-scoped informer
 * (controller/informer.h) lists and watches only those. Printed: objects
 * cached, heap in use after the listing (mallinfo2, the informer's whole
 * footprint: cache, reflector table, indexes), and the informer's own
 * estimate, with whole objects and with the metadata-only transform.
 * Prints figures, asserts nothing (make bench).
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvsplit.h"
#include "kvsplit/kube.h"
#include "controller/assign.h"
#include "controller/informer.h"

#define NOBJ 10000
#define V 1024

static pid_t server;
static char dir[] = "/tmp/kvs-bench-informer-XXXXXX";

static void cleanup(void)
{
	char cmd[128];
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0) {
		/* best effort */
	}
}

static int start_server(char *kubeconfig, size_t cap)
{
	const char *b = getenv("KVS_BUILD");
	char exe[512], portfile[128];
	snprintf(exe, sizeof(exe), "%s/kapi-server", b && *b ? b : "build");
	snprintf(portfile, sizeof(portfile), "%s/port", dir);
	if ((server = fork()) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
			_exit(126);
		execl(exe, exe, "--listen", "127.0.0.1:0", "--port-file", portfile, "--namespaces",
		      "default", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		FILE *f = fopen(portfile, "r");
		int port = 0;
		if (f && fscanf(f, "%d", &port) == 1 && port > 0) {
			fclose(f);
			snprintf(kubeconfig, cap, "%s/kubeconfig", dir);
			FILE *k = fopen(kubeconfig, "w");
			if (!k)
				return -1;
			fprintf(k, "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n"
			           "    server: http://127.0.0.1:%d\nusers:\n- name: u\n  user:\n"
			           "    token: unused\ncontexts:\n- name: k\n  context:\n    cluster: k\n"
			           "    user: u\n    namespace: default\ncurrent-context: k\n", port);
			fclose(k);
			return 0;
		}
		if (f)
			fclose(f);
		usleep(10000);
	}
	return -1;
}

static int make_objects(kvs_kube *kube)
{
	enum { BATCH = 250 };
	static kvs_kube_request rq[BATCH];
	static char body[BATCH][1400];
	char data[1025];
	memset(data, 'x', 1024);
	data[1024] = '\0';
	for (unsigned base = 0; base < NOBJ; base += BATCH) {
		for (unsigned i = 0; i < BATCH; i++) {
			char name[32];
			kvs_kube_request r = KVS_KUBE_REQUEST_INIT;
			snprintf(name, sizeof(name), "obj-%05u", base + i);
			snprintf(body[i], sizeof(body[i]),
			         "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\","
			         "\"labels\":{\"app\":\"bench\",\"" KVC_VSHARD_LABEL "\":\"%u\"}},"
			         "\"data\":{\"payload\":\"%s\"}}",
			         name, kvc_vshard_of(name, V), data);
			r.verb = KVS_KUBE_VERB_CREATE;
			r.resource = &kvs_kube_configmaps;
			r.body = body[i];
			r.body_len = strlen(body[i]);
			rq[i] = r;
		}
		if (kvs_kube_run(kube, rq, BATCH) < 0)
			return -1;
		for (unsigned i = 0; i < BATCH; i++) {
			int rc = rq[i].result;
			kvs_kube_request_clear(&rq[i]);
			if (rc < 0)
				return -1;
		}
	}
	return 0;
}

typedef struct figures {
	size_t objects, est;
	double heap_mb;
} figures;

static int measure(kvs_kube *kube, const kvc_shardset *held, int transform, figures *out)
{
	kvc_informer *inf;
	kvc_informer_opts o = KVC_INFORMER_OPTS_INIT;
	kvc_informer_stats st;
	o.resource = &kvs_kube_configmaps;
	o.base_selector = "app=bench";
	o.vshards = V;
	o.rebuild_delay_ns = 1;
	if (transform)
		o.transform = kvc_informer_metadata;
	malloc_trim(0);
	struct mallinfo2 before = mallinfo2();
	if (kvc_informer_new(&inf, kube, &o, NULL) < 0)
		return -1;
	kvc_informer_set_shards(inf, held);
	for (int i = 0; i < 20000; i++) {
		kvc_informer_step(inf, 50);
		kvc_informer_stats_get(inf, &st);
		if (st.synced && st.rebuilds)
			break;
	}
	malloc_trim(0);
	struct mallinfo2 after = mallinfo2();
	out->objects = st.objects;
	out->est = st.bytes;
	out->heap_mb = ((double)after.uordblks - (double)before.uordblks) / 1048576.0;
	kvc_informer_free(inf);
	return st.synced ? 0 : -1;
}

int main(void)
{
	char kubeconfig[256];
	kvs_kube *kube = NULL;
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;

	if (!mkdtemp(dir) || atexit(cleanup) != 0 || start_server(kubeconfig, sizeof(kubeconfig)) < 0) {
		fprintf(stderr, "bench-informer: cannot start kapi-server\n");
		return 1;
	}
	ko.kubeconfig = kubeconfig;
	ko.qps = -1;
	ko.concurrency = 16;
	if (kvs_kube_open(&kube, &ko) < 0 || make_objects(kube) < 0) {
		fprintf(stderr, "bench-informer: %s\n", kvs_error_last());
		return 1;
	}
	printf("informer memory of member m0, %d ConfigMaps (~1 KiB data each), V = %d\n", NOBJ, V);
	printf("%3s %8s %12s %8s %12s %12s %8s\n", "N", "objects", "whole MiB", "x1/N", "meta MiB",
	       "meta est MiB", "x1/N");
	double base_whole = 0, base_meta = 0;
	static const unsigned ns[] = { 1, 2, 4 };
	for (size_t k = 0; k < 3; k++) {
		unsigned n = ns[k];
		const char *ids[4] = { "m0", "m1", "m2", "m3" };
		int owner[V];
		kvc_shardset held;
		kvc_set_clear(&held);
		if (kvc_assign(owner, V, ids, n, KVC_ASSIGN_EPS_DEFAULT, NULL) < 0)
			return 1;
		for (unsigned s = 0; s < V; s++)
			if (owner[s] == 0)
				kvc_set_add(&held, s);
		figures w, m;
		if (measure(kube, &held, 0, &w) < 0 || measure(kube, &held, 1, &m) < 0) {
			fprintf(stderr, "bench-informer: %s\n", kvs_error_last());
			return 1;
		}
		if (n == 1)
			base_whole = w.heap_mb, base_meta = m.heap_mb;
		printf("%3u %8zu %12.2f %8.2f %12.2f %12.2f %8.2f\n", n, w.objects, w.heap_mb,
		       base_whole > 0 ? w.heap_mb / base_whole * n : 0, m.heap_mb,
		       (double)m.est / 1048576.0, base_meta > 0 ? m.heap_mb / base_meta * n : 0);
	}
	printf("x1/N: the member's memory over (one member's / N); 1.00 = exactly 1/N\n");
	kvs_kube_free(kube);
	return 0;
}
