/*
 * fixture_kube.c — Kubernetes backends on the project's API test server.
 *
 * A kapi-server starts in a few milliseconds, so every fx_kube_backend() call
 * gets a server of its own: a fresh, empty cluster, exactly like a fresh
 * in-memory backend. The backend is always opened THROUGH a kubeconfig the
 * fixture writes (never $KUBECONFIG or ~/.kube/config of the machine, whose
 * credentials must not reach a test server). With TLS, a test CA and a
 * server certificate for IP 127.0.0.1 are made once per process with the
 * openssl CLI, and the kubeconfig carries the CA (a path relative to the
 * kubeconfig) and a bearer token. Servers die with the test process
 * (PR_SET_PDEATHSIG) and are killed at exit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "fixture_kube.h"

#define FX_NS "kvs-test"
#define MAX_SERVERS 128
#define MAX_BACKENDS 256

struct fx_kapi {
	pid_t pid;
	int tls;
	int port;
	char url[64];
	char dir[256];
	char kubeconfig[300];
	char token[64];
	char ca[300];
	pid_t front_pid;       /* nghttpx in front of the server (fx_kapi_front_start) */
	int front_port;
	char front_url[64];
	char front_kubeconfig[300];
	char front_log[300];
};

static pthread_mutex_t fx_lock = PTHREAD_MUTEX_INITIALIZER;
static fx_kapi *servers[MAX_SERVERS];
static struct {
	const kvs_backend *b;
	fx_kapi *k;
} backends[MAX_BACKENDS];
static char tls_dir[256];
static int atexit_done;

static const char *build_dir(void)
{
	const char *b = getenv("KVS_BUILD");

	return b && *b ? b : "build";
}

static void rm_tree(const char *dir)
{
	char cmd[600];

	if (!dir[0] || strncmp(dir, "/tmp/", 5) != 0)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0) {
		/* best effort */
	}
}

static void kill_server(fx_kapi *k)
{
	if (k->front_pid > 0) {
		kill(k->front_pid, SIGKILL);
		waitpid(k->front_pid, NULL, 0);
		k->front_pid = 0;
	}
	if (k->pid > 0) {
		kill(k->pid, SIGKILL);
		waitpid(k->pid, NULL, 0);
		k->pid = 0;
	}
	rm_tree(k->dir);
	k->dir[0] = '\0';
}

static void at_exit(void)
{
	pthread_mutex_lock(&fx_lock);
	for (int i = 0; i < MAX_SERVERS; i++)
		if (servers[i]) {
			kill_server(servers[i]);
			free(servers[i]);
			servers[i] = NULL;
		}
	pthread_mutex_unlock(&fx_lock);
	rm_tree(tls_dir);
}

static int run_quiet(const char *cmd)
{
	int st = system(cmd);

	return st == 0 ? 0 : -1;
}

/* CA + server certificate (SAN IP:127.0.0.1), EC P-256: fast to make. */
static int make_tls_dir(void)
{
	char cmd[2048];

	if (tls_dir[0])
		return 0;
	char tmpl[] = "/tmp/kvs-fx-tls-XXXXXX";
	if (!mkdtemp(tmpl))
		return kvs_error_set(KVS_EIO, "mkdtemp: %s", strerror(errno));
	snprintf(cmd, sizeof(cmd),
	         "cd %s && "
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	         "-keyout ca.key -out ca.crt -days 2 -subj /CN=kvs-test-ca "
	         "-addext basicConstraints=critical,CA:TRUE "
	         "-addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1 && "
	         "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	         "-keyout srv.key -out srv.csr -subj /CN=127.0.0.1 >/dev/null 2>&1 && "
	         "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n"
	         "basicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext.cnf && "
	         "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
	         "-out srv.crt -days 2 -extfile ext.cnf >/dev/null 2>&1",
	         tmpl);
	if (run_quiet(cmd) < 0) {
		rm_tree(tmpl);
		return kvs_error_set(KVS_EIO, "openssl failed making the test CA in %s", tmpl);
	}
	snprintf(tls_dir, sizeof(tls_dir), "%s", tmpl);
	return 0;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -1;
}

static int write_kubeconfig(fx_kapi *k)
{
	char text[2048];

	if (k->tls) {
		/* CA path relative to the kubeconfig's directory (kubectl's rule) */
		snprintf(k->kubeconfig, sizeof(k->kubeconfig), "%s/kubeconfig-%d", tls_dir, k->port);
		snprintf(k->ca, sizeof(k->ca), "%s/ca.crt", tls_dir);
		snprintf(text, sizeof(text),
		         "apiVersion: v1\nkind: Config\n"
		         "clusters:\n- name: kapi\n  cluster:\n    server: %s\n"
		         "    certificate-authority: ca.crt\n"
		         "contexts:\n- name: kapi\n  context:\n    cluster: kapi\n    user: tester\n"
		         "    namespace: " FX_NS "\n"
		         "current-context: kapi\n"
		         "users:\n- name: tester\n  user:\n    token: %s\n",
		         k->url, k->token);
	} else {
		snprintf(k->kubeconfig, sizeof(k->kubeconfig), "%s/kubeconfig", k->dir);
		snprintf(text, sizeof(text),
		         "apiVersion: v1\nkind: Config\n"
		         "clusters:\n- name: kapi\n  cluster:\n    server: %s\n"
		         "contexts:\n- name: kapi\n  context:\n    cluster: kapi\n"
		         "    namespace: " FX_NS "\n"
		         "current-context: kapi\n",
		         k->url);
	}
	return write_file(k->kubeconfig, text);
}

int fx_kapi_start(fx_kapi **out, int tls, const char *const *extra)
{
	fx_kapi *k = calloc(1, sizeof(*k));
	char bin[512], portfile[300], logfile[300], cert[300], key[300];
	const char *argv[64];
	int argc = 0, slot = -1, rc;

	*out = NULL;
	if (!k)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	pthread_mutex_lock(&fx_lock);
	if (!atexit_done) {
		atexit(at_exit);
		atexit_done = 1;
	}
	rc = tls ? make_tls_dir() : 0;
	for (int i = 0; i < MAX_SERVERS && slot < 0; i++)
		if (!servers[i])
			slot = i;
	pthread_mutex_unlock(&fx_lock);
	if (rc < 0) {
		free(k);
		return rc;
	}
	if (slot < 0) {
		free(k);
		return kvs_error_set(KVS_ENOMEM, "fixture: more than %d servers", MAX_SERVERS);
	}
	snprintf(k->dir, sizeof(k->dir), "/tmp/kvs-fx-XXXXXX");
	if (!mkdtemp(k->dir)) {
		free(k);
		return kvs_error_set(KVS_EIO, "mkdtemp: %s", strerror(errno));
	}
	k->tls = tls;
	snprintf(bin, sizeof(bin), "%s/kapi-server", build_dir());
	snprintf(portfile, sizeof(portfile), "%s/port", k->dir);
	snprintf(logfile, sizeof(logfile), "%s/log", k->dir);
	argv[argc++] = bin;
	argv[argc++] = "--listen";
	argv[argc++] = "127.0.0.1:0";
	argv[argc++] = "--port-file";
	argv[argc++] = portfile;
	argv[argc++] = "--namespaces";
	argv[argc++] = FX_NS ",default";
	argv[argc++] = "--bookmark-ms"; /* the real server's is a minute */
	argv[argc++] = "1000";
	if (tls) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(k->token, sizeof(k->token), "kvs-secret-token-%ld%09ld-%d", (long)ts.tv_sec,
		         ts.tv_nsec, (int)getpid());
		snprintf(cert, sizeof(cert), "%s/srv.crt", tls_dir);
		snprintf(key, sizeof(key), "%s/srv.key", tls_dir);
		argv[argc++] = "--tls-cert";
		argv[argc++] = cert;
		argv[argc++] = "--tls-key";
		argv[argc++] = key;
		argv[argc++] = "--token";
		argv[argc++] = k->token;
	}
	for (int i = 0; extra && extra[i] && argc < 62; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;

	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		rm_tree(k->dir);
		free(k);
		return kvs_error_set(KVS_EIO, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		int fd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	k->pid = pid;
	/* wait for the port file (atomic rename by the server) */
	for (int waited = 0;; waited++) {
		FILE *f = fopen(portfile, "r");
		int st;

		if (f) {
			int ok = fscanf(f, "%d", &k->port) == 1;
			fclose(f);
			if (ok && k->port > 0)
				break;
		}
		if (waitpid(pid, &st, WNOHANG) == pid) {
			k->pid = 0;
			char cmd[400];
			snprintf(cmd, sizeof(cmd), "cat '%s' >&2", logfile);
			if (system(cmd) != 0) {
				/* nothing */
			}
			rm_tree(k->dir);
			free(k);
			return kvs_error_set(KVS_EIO, "%s exited before listening (status %d)", bin, st);
		}
		if (waited > 10000) {
			kill_server(k);
			free(k);
			return kvs_error_set(KVS_ETIMEOUT, "%s did not listen within 10 s", bin);
		}
		usleep(1000);
	}
	snprintf(k->url, sizeof(k->url), "%s://127.0.0.1:%d", tls ? "https" : "http", k->port);
	if (write_kubeconfig(k) < 0) {
		kill_server(k);
		free(k);
		return kvs_error_set(KVS_EIO, "cannot write a kubeconfig");
	}
	pthread_mutex_lock(&fx_lock);
	servers[slot] = k;
	pthread_mutex_unlock(&fx_lock);
	*out = k;
	return 0;
}

void fx_kapi_stop(fx_kapi *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&fx_lock);
	for (int i = 0; i < MAX_SERVERS; i++)
		if (servers[i] == k)
			servers[i] = NULL;
	for (int i = 0; i < MAX_BACKENDS; i++)
		if (backends[i].k == k)
			backends[i].k = NULL, backends[i].b = NULL;
	pthread_mutex_unlock(&fx_lock);
	if (k->tls && k->kubeconfig[0])
		unlink(k->kubeconfig);
	kill_server(k);
	free(k);
}

const char *fx_kapi_url(const fx_kapi *k) { return k->url; }
const char *fx_kapi_kubeconfig(const fx_kapi *k) { return k->kubeconfig; }
const char *fx_kapi_token(const fx_kapi *k) { return k->tls ? k->token : NULL; }
const char *fx_kapi_ca(const fx_kapi *k) { return k->tls ? k->ca : NULL; }
const char *fx_kapi_ns(const fx_kapi *k) { (void)k; return FX_NS; }

int fx_kapi_backend(kvs_backend **out, fx_kapi *k, const kvs_kube_options *base)
{
	kvs_kube_options o = KVS_KUBE_OPTIONS_INIT;
	int rc;

	if (base)
		o = *base;
	o.kubeconfig = k->kubeconfig;
	if ((rc = kvs_backend_kube(out, &o)) < 0)
		return rc;
	pthread_mutex_lock(&fx_lock);
	int free_slot = -1, done = 0;
	for (int i = 0; i < MAX_BACKENDS && !done; i++) {
		if (backends[i].b == *out) {
			backends[i].k = k;
			done = 1;
		} else if (!backends[i].b && free_slot < 0) {
			free_slot = i;
		}
	}
	if (!done) {
		if (free_slot < 0) /* recycle: oldest entries are the least likely in use */
			free_slot = (int)((uintptr_t)*out / 64 % MAX_BACKENDS);
		backends[free_slot].b = *out;
		backends[free_slot].k = k;
	}
	pthread_mutex_unlock(&fx_lock);
	return 0;
}

fx_kapi *fx_kapi_of(const kvs_backend *b)
{
	fx_kapi *k = NULL;

	pthread_mutex_lock(&fx_lock);
	for (int i = 0; i < MAX_BACKENDS; i++)
		if (backends[i].b == b)
			k = backends[i].k;
	pthread_mutex_unlock(&fx_lock);
	return k;
}

int fx_kube_backend(kvs_backend **out, int tls)
{
	fx_kapi *k;
	int rc;

	*out = NULL;
	if ((rc = fx_kapi_start(&k, tls, NULL)) < 0)
		return rc;
	if ((rc = fx_kapi_backend(out, k, NULL)) < 0)
		fx_kapi_stop(k);
	return rc;
}

int fx_kube_backend_peer(kvs_backend **out, kvs_backend *b)
{
	fx_kapi *k = fx_kapi_of(b);

	*out = NULL;
	if (!k)
		return kvs_error_set(KVS_EINVAL, "fx_kube_backend_peer: backend not made by the fixture");
	return fx_kapi_backend(out, k, NULL);
}

struct sink {
	char *p;
	size_t n;
};

static size_t sink_write(char *p, size_t sz, size_t nm, void *u)
{
	struct sink *s = u;
	size_t n = sz * nm;
	char *np = realloc(s->p, s->n + n + 1);

	if (!np)
		return 0;
	memcpy(np + s->n, p, n);
	s->p = np;
	s->n += n;
	np[s->n] = '\0';
	return n;
}

long fx_kapi_call(fx_kapi *k, const char *method, const char *path, const char *json,
                  char **resp)
{
	return fx_kapi_call_type(k, method, path, json ? "application/json" : NULL, json, resp);
}

static long kapi_request(fx_kapi *k, const char *method, const char *path, const char *ctype,
                         const void *body, size_t body_len, const char *accept, char **resp,
                         size_t *len, char **rctype)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct sink s = { NULL, 0 };
	char url[512];
	long status = -1;

	if (resp)
		*resp = NULL;
	if (len)
		*len = 0;
	if (rctype)
		*rctype = NULL;
	if (!c)
		return -1;
	snprintf(url, sizeof(url), "%s%s", k->url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	if (k->tls)
		curl_easy_setopt(c, CURLOPT_CAINFO, k->ca);
	if (k->token[0]) { /* API paths need it; /kapi/ ignores it */
		char auth[sizeof(k->token) + 32];

		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", k->token);
		h = curl_slist_append(h, auth);
	}
	if (body) {
		char ct[128];

		snprintf(ct, sizeof(ct), "Content-Type: %s", ctype ? ctype : "application/json");
		h = curl_slist_append(h, ct);
		h = curl_slist_append(h, "Expect:");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	if (accept) {
		char ac[256];

		snprintf(ac, sizeof(ac), "Accept: %s", accept);
		h = curl_slist_append(h, ac);
	}
	if (h)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (curl_easy_perform(c) == CURLE_OK) {
		char *ct = NULL;

		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
		if (rctype && ct)
			*rctype = strdup(ct);
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (len)
		*len = s.n;
	if (resp)
		*resp = s.p;
	else
		free(s.p);
	return status;
}

long fx_kapi_call_type(fx_kapi *k, const char *method, const char *path, const char *ctype,
                       const char *body, char **resp)
{
	return kapi_request(k, method, path, ctype, body, body ? strlen(body) : 0, NULL, resp, NULL,
	                    NULL);
}

long fx_kapi_request(fx_kapi *k, const char *method, const char *path, const char *ctype,
                     const void *body, size_t body_len, const char *accept, char **resp,
                     size_t *len, char **rctype)
{
	return kapi_request(k, method, path, ctype, body, body_len, accept, resp, len, rctype);
}

long fx_kapi_get_accept(fx_kapi *k, const char *path, const char *accept, char **resp,
                        size_t *len, char **ctype)
{
	return kapi_request(k, "GET", path, NULL, NULL, 0, accept, resp, len, ctype);
}

int fx_kapi_faults(fx_kapi *k, const char *json)
{
	long st = fx_kapi_call(k, "POST", "/kapi/faults", json, NULL);

	return st >= 200 && st < 300 ? 0 : kvs_error_set(KVS_EIO, "POST /kapi/faults: %ld", st);
}

int fx_kube_compact(kvs_backend *b)
{
	fx_kapi *k = fx_kapi_of(b);
	long st;

	if (!k)
		return kvs_error_set(KVS_EINVAL, "fx_kube_compact: backend not made by the fixture");
	/* etcd's compaction and the watch cache rolled past every event: what
	 * makes a real server answer 410 to a watch from an old revision */
	st = fx_kapi_call(k, "POST", "/kapi/compact?watch-cache=1", "{}", NULL);
	return st >= 200 && st < 300 ? 0 : kvs_error_set(KVS_EIO, "POST /kapi/compact: %ld", st);
}

int fx_kube_touch(kvs_backend *b)
{
	fx_kapi *k = fx_kapi_of(b);
	long st;

	if (!k)
		return kvs_error_set(KVS_EINVAL, "fx_kube_touch: backend not made by the fixture");
	st = fx_kapi_call(k, "POST", "/apis/coordination.k8s.io/v1/namespaces/default/leases",
	                  "{\"metadata\":{\"generateName\":\"touch-\"}}", NULL);
	return st == 201 ? 0 : kvs_error_set(KVS_EIO, "POST lease: %ld", st);
}

/*
 * nghttpx (Debian's nghttp2-proxy) as a TLS-terminating HTTP/2 front:
 * clients get ALPN h2 (or http/1.1) on 127.0.0.1:front_port, nghttpx talks
 * HTTP/1.1 to the plain-HTTP kapi-server. Read timeouts are long so watch
 * streams last, flow-control windows large so 1 MiB bodies are not dripped
 * 64 KiB at a time. The access log has one line per request: client port
 * (one per TCP connection), ALPN, method, path, status.
 */
static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &al) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int port_accepts(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	if (fd < 0)
		return 0;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

int fx_kapi_front_start(fx_kapi *k)
{
	char fe[64], be[64], key[300], cert[300], alog[320], elog[320], text[2048];
	int rc;

	if (k->tls || k->front_pid > 0)
		return kvs_error_set(KVS_EINVAL, "fx_kapi_front_start: needs a plain-HTTP server, once");
	pthread_mutex_lock(&fx_lock);
	rc = make_tls_dir();
	pthread_mutex_unlock(&fx_lock);
	if (rc < 0)
		return rc;
	snprintf(key, sizeof(key), "%s/srv.key", tls_dir);
	snprintf(cert, sizeof(cert), "%s/srv.crt", tls_dir);
	snprintf(k->front_log, sizeof(k->front_log), "%s/front-access.log", k->dir);
	snprintf(alog, sizeof(alog), "--accesslog-file=%s", k->front_log);
	snprintf(elog, sizeof(elog), "--errorlog-file=%s/front-error.log", k->dir);
	snprintf(be, sizeof(be), "-b127.0.0.1,%d", k->port);
	/* nghttpx cannot listen on port 0: pick a free port, retry if taken meanwhile */
	for (int attempt = 0; attempt < 5 && k->front_pid <= 0; attempt++) {
		int port = free_port(), st;
		pid_t parent = getpid(), pid;

		if (port <= 0)
			return kvs_error_set(KVS_EIO, "no free port for nghttpx");
		snprintf(fe, sizeof(fe), "-f127.0.0.1,%d", port);
		const char *argv[] = {
			"nghttpx", "--conf=/dev/null", fe, be, "--single-process", "--workers=1",
			"--no-ocsp", "--no-via", "--backend-read-timeout=1h", "--backend-write-timeout=1m",
			"--frontend-read-timeout=1h", "--frontend-http2-read-timeout=1h",
			"--frontend-write-timeout=1m", "--frontend-keep-alive-timeout=1h",
			"--backend-keep-alive-timeout=1m", "--backend-http1-connections-per-host=64",
			"--frontend-http2-window-size=16777216",
			"--frontend-http2-connection-window-size=67108864", alog,
			"--accesslog-format=$remote_port $alpn $method $path $status", elog, key, cert,
			NULL
		};
		if ((pid = fork()) < 0)
			return kvs_error_set(KVS_EIO, "fork: %s", strerror(errno));
		if (pid == 0) {
			int fd = open("/dev/null", O_WRONLY);
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(127);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
			execvp("nghttpx", (char *const *)argv);
			_exit(127);
		}
		for (int waited = 0; waited < 10000; waited++) {
			if (waitpid(pid, &st, WNOHANG) == pid) {
				if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
					return kvs_error_set(KVS_EIO, "nghttpx not found (Debian package "
					                              "nghttp2-proxy; scripts/deps.sh installs it)");
				pid = 0; /* port taken? try another */
				break;
			}
			if (port_accepts(port)) {
				k->front_pid = pid;
				k->front_port = port;
				break;
			}
			usleep(1000);
		}
		if (pid > 0 && k->front_pid <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return kvs_error_set(KVS_ETIMEOUT, "nghttpx did not listen within 10 s");
		}
	}
	if (k->front_pid <= 0)
		return kvs_error_set(KVS_EIO, "nghttpx exited before listening (see %s)", k->dir);
	snprintf(k->front_url, sizeof(k->front_url), "https://127.0.0.1:%d", k->front_port);
	snprintf(k->front_kubeconfig, sizeof(k->front_kubeconfig), "%s/kubeconfig-front", k->dir);
	snprintf(text, sizeof(text),
	         "apiVersion: v1\nkind: Config\n"
	         "clusters:\n- name: front\n  cluster:\n    server: %s\n"
	         "    certificate-authority: %s/ca.crt\n"
	         "contexts:\n- name: front\n  context:\n    cluster: front\n"
	         "    namespace: " FX_NS "\n"
	         "current-context: front\n",
	         k->front_url, tls_dir);
	if (write_file(k->front_kubeconfig, text) < 0)
		return kvs_error_set(KVS_EIO, "cannot write a kubeconfig");
	return 0;
}

const char *fx_kapi_front_url(const fx_kapi *k) { return k->front_url; }
const char *fx_kapi_front_kubeconfig(const fx_kapi *k) { return k->front_kubeconfig; }
const char *fx_kapi_front_log(const fx_kapi *k) { return k->front_log; }
const char *fx_kapi_front_ca(const fx_kapi *k)
{
	static char ca[300];

	snprintf(ca, sizeof(ca), "%s/ca.crt", tls_dir);
	return k->front_pid > 0 ? ca : NULL;
}
