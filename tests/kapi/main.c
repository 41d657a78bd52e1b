/* kapi-server: command line, daemon start-up, signals. See docs/test-server.md. */
#include "kapi.h"
#include "auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char USAGE[] =
	"usage: kapi-server [options]\n"
	"An in-memory Kubernetes API server for tests: ConfigMaps, Leases, Pods, Events,\n"
	"Namespaces, CRDs and their custom resources, with watches, pagination and fault injection.\n"
	"\n"
	"  --listen ADDR:PORT     listen address (default 127.0.0.1:0, port 0 = ephemeral;\n"
	"                         IPv6 as [::1]:PORT)\n"
	"  --port-file PATH       write the chosen port there once listening (atomic rename)\n"
	"  --tls-cert FILE        serve HTTPS with this PEM certificate (needs --tls-key)\n"
	"  --tls-key FILE         PEM private key for --tls-cert\n"
	"  --token TOKEN          require 'Authorization: Bearer TOKEN' (repeatable)\n"
	"  --user NAME            user name in Forbidden messages (default: system:anonymous,\n"
	"                         or kapi-user when --token is given)\n"
	"  --namespaces a,b       namespaces that exist (default default,kube-system)\n"
	"  --forbid VERB:RESOURCE answer 403 for that verb on that resource; either may be '*'\n"
	"                         (e.g. delete:configmaps, *:leases; repeatable)\n"
	"  --crd G/V/PLURAL/Kind  serve a namespaced custom resource (repeatable)\n"
	"  --history N            watch history window in events (default 10000)\n"
	"  --history-bytes N      ... and at most N bytes of object versions (default 268435456)\n"
	"  --watch-cache-size N   watch cache: keep at least N events per resource (default 100)\n"
	"  --watch-cache-ms N     ... and every event younger than N ms (default 75000)\n"
	"  --bookmark-ms N        bookmark interval, when a newer revision exists (default 60000)\n"
	"  --latency-ms N         delay every API request by N ms\n"
	"  --fail-rate P          answer a fraction P of API requests 500/503\n"
	"  --throttle-rate P      answer a fraction P of API requests 429 with Retry-After\n"
	"  --retry-after S        Retry-After seconds of 429 answers (default 1)\n"
	"  --drop-rate P          cut a fraction P of API responses mid-body (after the effect)\n"
	"  --seed N               seed of the fault generator (default: time)\n"
	"  --help                 this text\n"
	"\n"
	"Control endpoints (never subject to faults or auth): POST /kapi/faults (JSON),\n"
	"GET /kapi/faults, GET /kapi/stats, POST /kapi/compact[?watch-cache=1],\n"
	"POST /kapi/drop-watches[?abort=1].\n";

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct buf b = {0};
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	buf_add(&b, "", 0);
	return buf_take(&b, NULL);
}

static double parse_rate(const char *opt, const char *v)
{
	char *end;
	double d = strtod(v, &end);
	if (*end || d < 0 || d > 1) {
		fprintf(stderr, "kapi-server: %s wants a probability in [0,1], got '%s'\n", opt, v);
		exit(2);
	}
	return d;
}

static unsigned long long parse_num(const char *opt, const char *v)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (*end || !*v || errno || v[0] == '-') {
		fprintf(stderr, "kapi-server: %s wants a number, got '%s'\n", opt, v);
		exit(2);
	}
	return n;
}

static void add_namespace(const char *name)
{
	struct resource *r = resource_find("", "v1", "namespaces");
	cJSON *o = cJSON_CreateObject();
	cJSON *m = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(m, "name", name);
	char uid[37], ts[32];
	uuid_v4(uid);
	now_rfc3339(ts);
	cJSON_AddStringToObject(m, "uid", uid);
	cJSON_AddStringToObject(m, "creationTimestamp", ts);
	cJSON *l = cJSON_AddObjectToObject(m, "labels");
	cJSON_AddStringToObject(l, "kubernetes.io/metadata.name", name);
	cJSON *spec = cJSON_AddObjectToObject(o, "spec");
	cJSON *fin = cJSON_AddArrayToObject(spec, "finalizers");
	cJSON_AddItemToArray(fin, cJSON_CreateString("kubernetes"));
	cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "status"), "phase", "Active");
	pthread_mutex_lock(&g_store.lock);
	if (!store_get_locked(r, "", name))
		store_put_locked(r, o, NULL);
	else
		cJSON_Delete(o);
	pthread_mutex_unlock(&g_store.lock);
}

static void add_crd(const char *spec)
{
	char *s = xstrdup(spec);
	char *parts[4];
	size_t n = 0;
	for (char *p = strtok(s, "/"); p && n < 4; p = strtok(NULL, "/"))
		parts[n++] = p;
	if (n != 4 || strchr(parts[0], '.') == NULL || strtok(NULL, "/")) {
		fprintf(stderr, "kapi-server: --crd wants GROUP/VERSION/PLURAL/Kind with a dotted group, got '%s'\n", spec);
		exit(2);
	}
	if (resource_find(parts[0], parts[1], parts[2])) {
		fprintf(stderr, "kapi-server: --crd %s given twice\n", spec);
		exit(2);
	}
	resource_add(RES_CUSTOM, parts[0], parts[1], parts[2], parts[3]);
	free(s);
}

static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len, bool *v6)
{
	char host[128];
	const char *colon = strrchr(spec, ':');
	if (!colon || (size_t)(colon - spec) >= sizeof host)
		return -1;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = 0;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return -1;
	memset(ss, 0, sizeof *ss);
	if (host[0] == '[') {
		size_t hl = strlen(host);
		if (hl < 2 || host[hl - 1] != ']')
			return -1;
		host[hl - 1] = 0;
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)(void *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return -1;
		*len = sizeof *a;
		*v6 = true;
		return 0;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)(void *)ss;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		return -1;
	*len = sizeof *a;
	*v6 = false;
	return 0;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("kapi-server: mhd: ", stderr);
	vfprintf(stderr, fmt, ap);
}

/* MHD unescapes the query with %XX only; Go and Python clients send spaces
 * in selectors as '+' (application/x-www-form-urlencoded). */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r == '+') {
			*w++ = ' ';
		} else if (r[0] == '%' && r[1] && r[2]) {
			char hex[3] = {r[1], r[2], 0};
			char *end;
			long v = strtol(hex, &end, 16);
			if (*end) {
				*w++ = *r;
				continue;
			}
			*w++ = (char)v;
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
	return (size_t)(w - s);
}

int main(int argc, char **argv)
{
	const char *listen = "127.0.0.1:0", *port_file = NULL, *cert = NULL, *key = NULL;
	const char *namespaces = "default,kube-system";
	size_t history = 10000, history_bytes = 256u * 1024u * 1024u;
	uint64_t seed = 0;
	bool seeded = false;
	const char **crds = NULL;
	size_t ncrds = 0;
	g_cfg.bookmark_ms = 60000;
	g_cfg.wc_size = 100;
	g_cfg.wc_ms = 75000;
	g_faults.retry_after = 1;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			fputs(USAGE, stdout);
			fputs(AUTH_USAGE, stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "kapi-server: unknown option or missing value: %s\n%s", o, USAGE);
			return 2;
		}
		const char *v = argv[++i];
		if (auth_option(o, v))
			continue;
		if (!strcmp(o, "--listen"))
			listen = v;
		else if (!strcmp(o, "--port-file"))
			port_file = v;
		else if (!strcmp(o, "--tls-cert"))
			cert = v;
		else if (!strcmp(o, "--tls-key"))
			key = v;
		else if (!strcmp(o, "--token")) {
			g_cfg.tokens = xrealloc(g_cfg.tokens, (g_cfg.ntokens + 1) * sizeof *g_cfg.tokens);
			g_cfg.tokens[g_cfg.ntokens++] = xstrdup(v);
		} else if (!strcmp(o, "--user"))
			g_cfg.user = xstrdup(v);
		else if (!strcmp(o, "--namespaces"))
			namespaces = v;
		else if (!strcmp(o, "--forbid")) {
			const char *colon = strchr(v, ':');
			if (!colon || colon == v || !colon[1]) {
				fprintf(stderr, "kapi-server: --forbid wants VERB:RESOURCE, got '%s'\n", v);
				return 2;
			}
			g_cfg.forbids = xrealloc(g_cfg.forbids, (g_cfg.nforbids + 1) * sizeof *g_cfg.forbids);
			g_cfg.forbids[g_cfg.nforbids].verb = xasprintf("%.*s", (int)(colon - v), v);
			g_cfg.forbids[g_cfg.nforbids].resource = xstrdup(colon + 1);
			g_cfg.nforbids++;
		} else if (!strcmp(o, "--crd")) {
			crds = xrealloc(crds, (ncrds + 1) * sizeof *crds);
			crds[ncrds++] = v;
		} else if (!strcmp(o, "--history"))
			history = (size_t)parse_num(o, v);
		else if (!strcmp(o, "--history-bytes"))
			history_bytes = (size_t)parse_num(o, v);
		else if (!strcmp(o, "--watch-cache-size"))
			g_cfg.wc_size = (unsigned)parse_num(o, v);
		else if (!strcmp(o, "--watch-cache-ms"))
			g_cfg.wc_ms = (unsigned)parse_num(o, v);
		else if (!strcmp(o, "--bookmark-ms"))
			g_cfg.bookmark_ms = (unsigned)parse_num(o, v);
		else if (!strcmp(o, "--latency-ms"))
			g_faults.latency_ms = (unsigned)parse_num(o, v);
		else if (!strcmp(o, "--fail-rate"))
			g_faults.fail_rate = parse_rate(o, v);
		else if (!strcmp(o, "--throttle-rate"))
			g_faults.throttle_rate = parse_rate(o, v);
		else if (!strcmp(o, "--drop-rate"))
			g_faults.drop_rate = parse_rate(o, v);
		else if (!strcmp(o, "--retry-after"))
			g_faults.retry_after = (unsigned)parse_num(o, v);
		else if (!strcmp(o, "--seed")) {
			seed = parse_num(o, v);
			seeded = true;
		} else {
			fprintf(stderr, "kapi-server: unknown option: %s\n%s", o, USAGE);
			return 2;
		}
	}
	if (!g_cfg.user)
		g_cfg.user = xstrdup(g_cfg.ntokens ? "kapi-user" : "system:anonymous");
	if (g_cfg.bookmark_ms == 0)
		g_cfg.bookmark_ms = 1;
	if ((cert == NULL) != (key == NULL)) {
		fputs("kapi-server: --tls-cert and --tls-key go together\n", stderr);
		return 2;
	}
	rng_seed(seeded ? seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));

	store_init(history, history_bytes);
	resource_add(RES_NAMESPACE, "", "v1", "namespaces", "Namespace");
	resource_add(RES_CONFIGMAP, "", "v1", "configmaps", "ConfigMap");
	resource_add(RES_LEASE, "coordination.k8s.io", "v1", "leases", "Lease");
	resource_add(RES_POD, "", "v1", "pods", "Pod");
	resource_add(RES_EVENT, "", "v1", "events", "Event");
	resource_add(RES_EVENT, "events.k8s.io", "v1", "events", "Event");
	/* CustomResourceDefinitions: a typed, cluster-scoped built-in whose
	 * objects make the server serve more resources (crd.c) */
	struct resource *crd_res = resource_add(RES_CUSTOM, "apiextensions.k8s.io", "v1",
	                                        "customresourcedefinitions",
	                                        "CustomResourceDefinition");
	crd_res->namespaced = false;
	crd_res->typed = true;
	crd_res->crd = true;
	crd_res->short_name = xstrdup("crd");
	for (size_t i = 0; i < ncrds; i++)
		add_crd(crds[i]);
	free(crds);
	char *nsl = xstrdup(namespaces);
	for (char *p = strtok(nsl, ","); p; p = strtok(NULL, ","))
		if (*p)
			add_namespace(p);
	free(nsl);

	struct sockaddr_storage ss;
	socklen_t sl;
	bool v6;
	if (parse_listen(listen, &ss, &sl, &v6) < 0) {
		fprintf(stderr, "kapi-server: bad --listen '%s' (want HOST:PORT or [V6]:PORT)\n", listen);
		return 2;
	}
	char *cert_pem = NULL, *key_pem = NULL;
	if (cert) {
		cert_pem = read_file(cert);
		key_pem = read_file(key);
		if (!cert_pem || !key_pem) {
			fprintf(stderr, "kapi-server: cannot read %s: %s\n", cert_pem ? key : cert, strerror(errno));
			return 1;
		}
		g_cfg.tls = true;
	}

	/* every thread MHD starts inherits the blocked signals; main waits for them */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	                 MHD_USE_POLL | MHD_USE_ERROR_LOG;
	if (v6)
		flags |= MHD_USE_IPv6;
	if (g_cfg.tls)
		flags |= MHD_USE_TLS;
	struct MHD_OptionItem opts[] = {
		{MHD_OPTION_SOCK_ADDR, 0, &ss},
		{MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)api_completed, NULL},
		{MHD_OPTION_CONNECTION_LIMIT, 4096, NULL},
		{MHD_OPTION_CONNECTION_TIMEOUT, 0, NULL},
		{MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape, NULL},
		{MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
		{g_cfg.tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert_pem},
		{g_cfg.tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, key_pem},
		{g_cfg.tls && auth_trust_pem() ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0,
		 (void *)auth_trust_pem()},
		{MHD_OPTION_END, 0, NULL},
	};
	struct MHD_Daemon *d = MHD_start_daemon(flags, 0, NULL, NULL, api_handler, NULL,
	                                        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	                                        MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "kapi-server: cannot listen on %s\n", listen);
		return 1;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
	struct sockaddr_storage bound;
	socklen_t bl = sizeof bound;
	if (!di || getsockname(di->listen_fd, (struct sockaddr *)&bound, &bl) < 0) {
		fputs("kapi-server: cannot determine the listening port\n", stderr);
		MHD_stop_daemon(d);
		return 1;
	}
	g_cfg.port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)(void *)&bound)->sin6_port
	                                               : ((struct sockaddr_in *)(void *)&bound)->sin_port);
	if (port_file) {
		char *tmp = xasprintf("%s.tmp.%d", port_file, (int)getpid());
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%d\n", g_cfg.port) < 0 || fclose(f) != 0 || rename(tmp, port_file) < 0) {
			fprintf(stderr, "kapi-server: cannot write %s: %s\n", port_file, strerror(errno));
			MHD_stop_daemon(d);
			return 1;
		}
		free(tmp);
	}
	char host[INET6_ADDRSTRLEN] = "?";
	if (v6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)&bound)->sin6_addr, host, sizeof host);
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)&bound)->sin_addr, host, sizeof host);
	printf("kapi-server listening on %s://%s%s%s:%d\n", g_cfg.tls ? "https" : "http",
	       v6 ? "[" : "", host, v6 ? "]" : "", g_cfg.port);
	fflush(stdout);

	int sig = 0;
	sigwait(&sigs, &sig);
	pthread_mutex_lock(&g_store.lock);
	g_store.shutting_down = true;
	pthread_cond_broadcast(&g_store.changed);
	pthread_mutex_unlock(&g_store.lock);
	MHD_stop_daemon(d);
	free(cert_pem);
	free(key_pem);
	fprintf(stderr, "kapi-server: %s, exiting\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	return 0;
}
