/*
 * tests/stress/proc.c — scratch folder, kapi-server child, CLI children that
 * can be SIGKILLed, control endpoints (see proc.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "proc.h"

void sp_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("stress: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

int64_t sp_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t sp_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

double sp_unit(uint64_t *s)
{
	return (double)(sp_rand(s) >> 11) / 9007199254740992.0;
}

void sp_path(const sp_env *e, char out[SP_PATH], const char *name)
{
	int n = snprintf(out, SP_PATH, "%s/%s", e->dir, name);

	if (n < 0 || n >= SP_PATH)
		sp_die("path too long: %s", name);
}

void sp_init(sp_env *e, const char *tag)
{
	const char *b = getenv("KVS_BUILD");
	char tmpl[64];

	memset(e, 0, sizeof(*e));
	if (!b || !*b)
		b = "build";
	snprintf(e->bin, sizeof(e->bin), "%s/kvsplit", b);
	snprintf(e->kapi, sizeof(e->kapi), "%s/kapi-server", b);
	if (access(e->bin, X_OK) != 0 || access(e->kapi, X_OK) != 0)
		sp_die("need %s and %s (set KVS_BUILD)", e->bin, e->kapi);
	snprintf(tmpl, sizeof(tmpl), "/tmp/kvs-%s-XXXXXX", tag);
	if (!mkdtemp(tmpl))
		sp_die("mkdtemp: %s", strerror(errno));
	snprintf(e->dir, sizeof(e->dir), "%s", tmpl);
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

char *sp_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	size_t n = 0, cap = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (cap - n < 65536) {
			cap = cap ? cap * 2 : 65536;
			char *q = realloc(p, cap + 1);
			if (!q)
				sp_die("out of memory");
			p = q;
		}
		size_t got = fread(p + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	p[n] = '\0';
	if (len)
		*len = n;
	return p;
}

int sp_files_equal(const char *a, const char *b)
{
	size_t na, nb;
	char *pa = sp_slurp(a, &na), *pb = sp_slurp(b, &nb);
	int eq = pa && pb && na == nb && memcmp(pa, pb, na) == 0;

	free(pa);
	free(pb);
	return eq;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		sp_die("cannot write %s", path);
}

void sp_server_start(sp_env *e, const char *const *extra)
{
	char portfile[SP_PATH], log[SP_PATH];
	const char *argv[64];
	int n = 0;

	sp_path(e, portfile, "port");
	sp_path(e, log, "server.log");
	unlink(portfile);
	argv[n++] = e->kapi;
	argv[n++] = "--port-file";
	argv[n++] = portfile;
	argv[n++] = "--namespaces";
	argv[n++] = "kvs-test";
	for (; extra && *extra && n < 62; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		sp_die("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(e->kapi, (char *const *)argv);
		_exit(127);
	}
	e->server = pid;
	for (int i = 0; i < 1000; i++) {
		size_t len;
		char *p = sp_slurp(portfile, &len);
		if (p && len > 0 && p[len - 1] == '\n') {
			char kc[1024];
			snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d", atoi(p));
			free(p);
			sp_path(e, e->kubeconfig, "kubeconfig");
			snprintf(kc, sizeof(kc),
			         "apiVersion: v1\nkind: Config\n"
			         "clusters:\n- name: kapi\n  cluster:\n    server: %s\n"
			         "contexts:\n- name: kapi\n  context:\n    cluster: kapi\n"
			         "    namespace: kvs-test\n"
			         "current-context: kapi\n",
			         e->url);
			write_text(e->kubeconfig, kc);
			return;
		}
		free(p);
		if (waitpid(pid, NULL, WNOHANG) == pid)
			sp_die("kapi-server exited early (see %s)", log);
		usleep(10000);
	}
	sp_die("kapi-server did not write its port file");
}

void sp_server_stop(sp_env *e)
{
	if (e->server > 0) {
		kill(e->server, SIGTERM);
		waitpid(e->server, NULL, 0);
		e->server = 0;
	}
}

static size_t sink(char *p, size_t sz, size_t n, void *ctx)
{
	(void)p;
	(void)ctx;
	return sz * n;
}

void sp_faults(sp_env *e, const char *json)
{
	char url[128];
	long code = 0;
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");

	if (!c || !h)
		sp_die("curl init");
	snprintf(url, sizeof(url), "%s/kapi/faults", e->url);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK || code != 200)
		sp_die("POST /kapi/faults %s: %s (HTTP %ld)", json, curl_easy_strerror(rc), code);
}

struct sp_buf {
	char *p;
	size_t n;
};

static size_t keep(char *p, size_t sz, size_t n, void *ctx)
{
	struct sp_buf *b = ctx;
	char *q = realloc(b->p, b->n + sz * n + 1);

	if (!q)
		return 0;
	memcpy(q + b->n, p, sz * n);
	b->p = q;
	b->n += sz * n;
	q[b->n] = '\0';
	return sz * n;
}

static long request(sp_env *e, const char *method, const char *path, struct sp_buf *out)
{
	char url[1024];
	long code = 0;
	CURL *c = curl_easy_init();

	if (!c)
		sp_die("curl init");
	snprintf(url, sizeof(url), "%s%s", e->url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, out ? keep : sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	return rc == CURLE_OK ? code : -1;
}

void sp_delete_one_segment(sp_env *e)
{
	struct sp_buf b = { NULL, 0 };
	char path[512];

	if (request(e, "GET", "/api/v1/namespaces/kvs-test/configmaps?labelSelector=kvsplit.io%2Frole%3Dsegment",
	            &b) != 200 || !b.p)
		sp_die("listing segments failed");
	const char *n = strstr(b.p, "\"name\":");
	if (!n)
		sp_die("no segment to delete");
	n = strchr(n + 7, '"');
	const char *end = n ? strchr(n + 1, '"') : NULL;
	if (!n || !end)
		sp_die("unexpected list body");
	snprintf(path, sizeof(path), "/api/v1/namespaces/kvs-test/configmaps/%.*s", (int)(end - n - 1), n + 1);
	free(b.p);
	if (request(e, "DELETE", path, NULL) != 200)
		sp_die("DELETE %s failed", path);
}

pid_t sp_cli_start(const sp_env *e, const char *tag, const char *const *args)
{
	char outp[SP_PATH], errp[SP_PATH], name[128];
	const char *argv[64];
	int n = 0;

	snprintf(name, sizeof(name), "%s.out", tag);
	sp_path(e, outp, name);
	snprintf(name, sizeof(name), "%s.err", tag);
	sp_path(e, errp, name);
	argv[n++] = e->bin;
	for (; *args && n < 62; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		sp_die("fork: %s", strerror(errno));
	if (pid == 0) {
		int i = open("/dev/null", O_RDONLY);
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int er = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (i < 0 || o < 0 || er < 0)
			_exit(126);
		dup2(i, 0);
		dup2(o, 1);
		dup2(er, 2);
		setenv("KUBECONFIG", e->kubeconfig, 1);
		setenv("HOME", e->dir, 1);
		unsetenv("KVSPLIT_STORE");
		unsetenv("KUBERNETES_SERVICE_HOST");
		execv(e->bin, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

int sp_wait(pid_t pid, int64_t kill_after_us, int *killed, int64_t *elapsed_us)
{
	int64_t t0 = sp_now_us();
	int st = 0;

	*killed = 0;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			sp_die("waitpid: %s", strerror(errno));
		int64_t now = sp_now_us();
		if (kill_after_us >= 0 && now - t0 >= kill_after_us) {
			kill(pid, SIGKILL);
			if (waitpid(pid, &st, 0) != pid)
				sp_die("waitpid after kill: %s", strerror(errno));
			*killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
			break;
		}
		int64_t left = kill_after_us >= 0 ? kill_after_us - (now - t0) : 2000;
		struct timespec ts = { 0, (long)(left < 500 ? left : 500) * 1000 };
		nanosleep(&ts, NULL);
	}
	if (elapsed_us)
		*elapsed_us = sp_now_us() - t0;
	return st;
}

int sp_cli_run(const sp_env *e, const char *tag, const char *const *args)
{
	int killed;
	int st = sp_wait(sp_cli_start(e, tag, args), -1, &killed, NULL);

	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}
