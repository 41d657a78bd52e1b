/*
 * test_auth.c — credentials and networks as on real clusters, end to end
 * against kapi-server:
 *   exec        exec credential plugins (tests/exec-plugin.sh) for every
 *               command: run once per expiry or 401, failures, hangs, garbage
 *   clientcert  client certificates verified by the server (--client-ca),
 *               from files, -data and exec plugins; wrong and expired ones
 *   proxy       proxy-url (HTTP via tinyproxy, SOCKS5 via microsocks),
 *               HTTP(S)_PROXY and NO_PROXY, tls-server-name
 */
#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kube/json.h"
#include "support/fixture_kube.h"

static struct {
	char dir[64];          /* scratch */
	char plugin_dir[128];  /* $KVS_PLUGIN_DIR */
	char plugin[PATH_MAX]; /* tests/exec-plugin.sh */
	char bin[PATH_MAX];
	char kc[PATH_MAX];     /* the kubeconfig of the test */
	fx_kapi *k;
	pid_t helpers[4];
	int nhelpers;
} T;

struct res {
	int code;
	char *out, *err;
	double secs;
};

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	size_t n = 0, cap = 0, r;

	if (!f)
		return NULL;
	do {
		if (n + 4097 > cap) {
			cap = (cap ? cap * 2 : 8192);
			b = realloc(b, cap);
			cr_assert_not_null(b);
		}
		r = fread(b + n, 1, cap - n - 1, f);
		n += r;
	} while (r > 0);
	fclose(f);
	b[n] = '\0';
	if (len)
		*len = n;
	return b;
}

static void spit(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

static const char *in_dir(const char *name)
{
	static char p[8][PATH_MAX];
	static int slot;
	char *r = p[slot++ % 8];
	snprintf(r, PATH_MAX, "%s/%s", T.dir, name);
	return r;
}

static const char *in_plugin(const char *name)
{
	static char p[4][PATH_MAX];
	static int slot;
	char *r = p[slot++ % 4];
	snprintf(r, PATH_MAX, "%s/%s", T.plugin_dir, name);
	return r;
}

static int plugin_runs(void)
{
	char *s = slurp(in_plugin("runs"), NULL);
	int n = 0;
	for (char *p = s; p && *p; p++)
		n += *p == '\n';
	free(s);
	return n;
}

static void plugin_set(const char *file, const char *text)
{
	spit(in_plugin(file), text);
}

static void setup(void)
{
	const char *b = getenv("KVS_BUILD");
	char tmpl[] = "/tmp/kvs-auth-XXXXXX";

	memset(&T, 0, sizeof(T));
	cr_assert_not_null(mkdtemp(tmpl));
	snprintf(T.dir, sizeof(T.dir), "%s", tmpl);
	snprintf(T.plugin_dir, sizeof(T.plugin_dir), "%s/plugin", T.dir);
	cr_assert_eq(mkdir(T.plugin_dir, 0700), 0);
	snprintf(T.bin, sizeof(T.bin), "%s/kvsplit", b ? b : "build");
	cr_assert(access(T.bin, X_OK) == 0, "no %s (set KVS_BUILD)", T.bin);
	cr_assert_not_null(realpath("tests/exec-plugin.sh", T.plugin), "run from the source tree");
	snprintf(T.kc, sizeof(T.kc), "%s/kubeconfig", T.dir);
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	setenv("HOME", T.dir, 1);
	for (const char *const *v = (const char *const[]){ "HTTPS_PROXY", "https_proxy", "HTTP_PROXY",
	                                                    "http_proxy", "NO_PROXY", "no_proxy",
	                                                    "ALL_PROXY", "all_proxy", NULL };
	     *v; v++)
		unsetenv(*v);
}

static void teardown(void)
{
	char cmd[200];

	for (int i = 0; i < T.nhelpers; i++) {
		kill(T.helpers[i], SIGKILL);
		waitpid(T.helpers[i], NULL, 0);
	}
	if (T.k)
		fx_kapi_stop(T.k);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(exec, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(clientcert, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(proxy, .init = setup, .fini = teardown, .timeout = 60);

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run kvsplit with --kubeconfig T.kc and the arguments (NULL-terminated). */
static void run(struct res *r, ...)
{
	const char *argv[40];
	char outp[PATH_MAX], errp[PATH_MAX];
	int n = 0, st;
	va_list ap;
	const char *a;

	argv[n++] = T.bin;
	argv[n++] = "--kubeconfig";
	argv[n++] = T.kc;
	va_start(ap, r);
	while ((a = va_arg(ap, const char *)) != NULL && n < 38)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	snprintf(outp, sizeof(outp), "%s/run.out", T.dir);
	snprintf(errp, sizeof(errp), "%s/run.err", T.dir);
	double t0 = now_s();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int i = open("/dev/null", O_RDONLY);
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (i < 0 || o < 0 || e < 0)
			_exit(126);
		dup2(i, 0);
		dup2(o, 1);
		dup2(e, 2);
		execv(T.bin, (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		cr_assert_eq(errno, EINTR);
	r->secs = now_s() - t0;
	r->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r->out = slurp(outp, NULL);
	r->err = slurp(errp, NULL);
	cr_assert(r->out && r->err);
}

static void res_free(struct res *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

#define RUN_OK(...)                                                                           \
	do {                                                                                      \
		struct res r_ = { 0 };                                                                \
		run(&r_, __VA_ARGS__, NULL);                                                          \
		cr_assert_eq(r_.code, 0, "kvsplit %s: exit %d: %s", #__VA_ARGS__, r_.code, r_.err); \
		res_free(&r_);                                                                        \
	} while (0)

static void random_file(const char *path, size_t len)
{
	FILE *f = fopen(path, "wb");
	uint64_t s = 0x9E3779B97F4A7C15ull ^ len;
	cr_assert_not_null(f);
	for (size_t i = 0; i < len; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		fputc((int)(s & 0xff), f);
	}
	cr_assert_eq(fclose(f), 0);
}

/* ------------------------------------------------------------------------ */
/* kubeconfigs                                                              */

/* cluster part: server, CA (may be NULL), extra cluster lines (may be ""). */
static void kubeconfig(const char *server, const char *ca, const char *cluster_extra,
                       const char *user_body)
{
	char text[16384];

	int w = snprintf(text, sizeof(text),
	         "apiVersion: v1\nkind: Config\n"
	         "clusters:\n- name: kapi\n  cluster:\n    server: %s\n%s%s%s%s"
	         "contexts:\n- name: kapi\n  context:\n    cluster: kapi\n    user: tester\n"
	         "    namespace: kvs-test\n"
	         "current-context: kapi\n"
	         "users:\n- name: tester\n  user:\n%s",
	         server, ca ? "    certificate-authority: " : "", ca ? ca : "", ca ? "\n" : "",
	         cluster_extra, user_body);
	cr_assert(w > 0 && (size_t)w < sizeof(text));
	spit(T.kc, text);
}

/* An exec user running tests/exec-plugin.sh; `extra` adds exec fields. */
static void exec_kubeconfig(const char *api, const char *extra)
{
	char user[4096];

	int w = snprintf(user, sizeof(user),
	         "    exec:\n"
	         "      apiVersion: %s\n"
	         "      command: %s\n"
	         "      env:\n      - name: KVS_PLUGIN_DIR\n        value: %s\n"
	         "      installHint: install the test plugin from tests/\n"
	         "%s",
	         api, T.plugin, T.plugin_dir, extra);
	cr_assert(w > 0 && (size_t)w < sizeof(user));
	kubeconfig(fx_kapi_url(T.k), fx_kapi_ca(T.k), "", user);
}

static void start_tls(const char *const *extra)
{
	cr_assert_eq(fx_kapi_start(&T.k, 1, extra), 0, "%s", kvs_error_last());
	plugin_set("tokens", fx_kapi_token(T.k));
}

#define V1 "client.authentication.k8s.io/v1"
#define V1BETA1 "client.authentication.k8s.io/v1beta1"

/* ------------------------------------------------------------------------ */
/* exec                                                                     */

Test(exec, plugin_token_works_for_every_command_and_runs_once_per_process)
{
	char value[PATH_MAX], back[PATH_MAX];
	struct res r = { 0 };

	start_tls(NULL);
	exec_kubeconfig(V1, "      interactiveMode: Never\n");
	snprintf(value, sizeof(value), "%s", in_dir("value"));
	snprintf(back, sizeof(back), "%s", in_dir("back"));
	/* 3 MiB of noise: several segments, so many requests of one process */
	random_file(value, 3u << 20);
	RUN_OK("put", "big", value);
	cr_assert_eq(plugin_runs(), 1, "one put = one plugin run, not one per request");
	RUN_OK("get", "big", "--to-file", back);
	cr_assert_eq(plugin_runs(), 2);
	char *a = slurp(value, NULL), *b = slurp(back, NULL);
	cr_assert(a && b && strcmp(a, b) == 0);
	free(a);
	free(b);
	const char *cmds[][6] = {
		{ "ls", NULL }, { "stat", "big", NULL }, { "fsck", NULL },
		{ "gc", "--dry-run", NULL }, { "watch", "big", "--max-events", "1", NULL },
		{ "rm", "big", NULL },
	};
	int want = 2;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		run(&r, cmds[i][0], cmds[i][1], cmds[i][2], cmds[i][3], cmds[i][4], NULL);
		cr_assert_eq(r.code, 0, "%s: exit %d: %s", cmds[i][0], r.code, r.err);
		cr_assert_eq(plugin_runs(), ++want, "%s ran the plugin %d times", cmds[i][0],
		             plugin_runs() - want + 1);
		res_free(&r);
	}
}

Test(exec, credential_is_cached_until_expiry_then_the_plugin_runs_again)
{
	kvs_kube_options o = KVS_KUBE_OPTIONS_INIT;
	kvs_backend *be;
	kvs_store *s;
	char *v = NULL;
	size_t n;

	start_tls(NULL);
	exec_kubeconfig(V1BETA1, "      args: [--api-version, " V1BETA1 "]\n");
	plugin_set("ttl", "2\n");
	o.kubeconfig = T.kc;
	cr_assert_eq(kvs_backend_kube(&be, &o), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_open(&s, be, NULL), 0, "%s", kvs_error_last());
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(kvs_put(NULL, s, "k", "hello", 5, NULL), 0, "%s", kvs_error_last());
		cr_assert_eq(kvs_get((void **)&v, &n, NULL, s, "k", NULL), 0, "%s", kvs_error_last());
		free(v);
	}
	cr_assert_eq(plugin_runs(), 1, "ran %d times before expiry", plugin_runs());
	usleep(3 * 1000 * 1000);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(kvs_get((void **)&v, &n, NULL, s, "k", NULL), 0, "%s", kvs_error_last());
		free(v);
	}
	cr_assert_eq(plugin_runs(), 2, "ran %d times: want once more after the expiry",
	             plugin_runs());
	kvs_close(s);
}

Test(exec, a_401_runs_the_plugin_again_once)
{
	char tokens[256];

	start_tls(NULL);
	exec_kubeconfig(V1, "      interactiveMode: IfAvailable\n");
	/* the first credential is stale (the server refuses it), the next is good */
	snprintf(tokens, sizeof(tokens), "stale-token\n%s\n", fx_kapi_token(T.k));
	plugin_set("tokens", tokens);
	RUN_OK("put", "k", "/etc/hostname");
	cr_assert_eq(plugin_runs(), 2);
}

Test(exec, failing_plugin_is_named_with_its_exit_status_and_stderr)
{
	struct res r = { 0 };

	start_tls(NULL);
	exec_kubeconfig(V1, "      interactiveMode: Never\n");
	plugin_set("mode", "fail\n");
	run(&r, "ls", NULL);
	cr_assert_eq(r.code, 8, "exit %d: %s", r.code, r.err);
	cr_assert(strstr(r.err, "exec credential plugin") && strstr(r.err, T.plugin) &&
	          strstr(r.err, "exit status 3") && strstr(r.err, "your session has expired"),
	          "%s", r.err);
	res_free(&r);
}

Test(exec, hanging_plugin_is_killed_after_the_request_timeout)
{
	struct res r = { 0 };

	start_tls(NULL);
	exec_kubeconfig(V1, "      interactiveMode: Never\n");
	plugin_set("mode", "hang\n");
	run(&r, "ls", "--request-timeout", "1s", NULL);
	cr_assert_eq(r.code, 8, "exit %d: %s", r.code, r.err);
	cr_assert(strstr(r.err, "did not finish within 1 s"), "%s", r.err);
	cr_assert(r.secs < 10, "took %.1f s", r.secs);
	res_free(&r);
}

Test(exec, garbage_output_is_refused_without_printing_it)
{
	struct res r = { 0 };

	start_tls(NULL);
	exec_kubeconfig(V1, "      interactiveMode: Never\n");
	plugin_set("mode", "garbage\n");
	run(&r, "ls", NULL);
	cr_assert_eq(r.code, 8, "exit %d: %s", r.code, r.err);
	cr_assert(strstr(r.err, "did not print an ExecCredential"), "%s", r.err);
	cr_assert_null(strstr(r.err, fx_kapi_token(T.k)), "the credential was printed: %s", r.err);
	cr_assert_null(strstr(r.out, fx_kapi_token(T.k)));
	res_free(&r);
}

Test(exec, wrong_api_version_and_missing_command_with_install_hint)
{
	struct res r = { 0 };

	start_tls(NULL);
	/* the plugin answers v1 (no --api-version argument) to a v1beta1 request */
	exec_kubeconfig(V1BETA1, "");
	run(&r, "ls", NULL);
	cr_assert_eq(r.code, 8, "exit %d: %s", r.code, r.err);
	cr_assert(strstr(r.err, "apiVersion \"" V1 "\"") && strstr(r.err, "asks for " V1BETA1),
	          "%s", r.err);
	res_free(&r);
	snprintf(T.plugin, sizeof(T.plugin), "%s/no-such-plugin", T.dir);
	exec_kubeconfig(V1, "      interactiveMode: Never\n");
	run(&r, "ls", NULL);
	cr_assert_eq(r.code, 8, "exit %d: %s", r.code, r.err);
	cr_assert(strstr(r.err, "cannot run it: No such file or directory") &&
	          strstr(r.err, "install the test plugin from tests/"), "%s", r.err);
	res_free(&r);
}

Test(exec, always_interactive_without_a_terminal_is_refused)
{
	struct res r = { 0 };

	start_tls(NULL);
	exec_kubeconfig(V1, "      interactiveMode: Always\n");
	run(&r, "ls", NULL);
	cr_assert_eq(r.code, 8, "exit %d: %s", r.code, r.err);
	cr_assert(strstr(r.err, "needs a terminal"), "%s", r.err);
	cr_assert_eq(plugin_runs(), 0);
	res_free(&r);
}

Test(exec, exec_info_tells_interactive_and_the_cluster_when_asked)
{
	char *info, *ca;
	size_t calen;

	start_tls(NULL);
	exec_kubeconfig(V1BETA1, "      args: [--api-version, " V1BETA1 "]\n"
	                         "      provideClusterInfo: true\n");
	RUN_OK("ls");
	cr_assert_not_null(info = slurp(in_plugin("exec-info"), NULL));
	cJSON *o = cJSON_Parse(info);
	cr_assert_not_null(o, "%s", info);
	cr_assert_str_eq(cJSON_GetObjectItem(o, "apiVersion")->valuestring, V1BETA1);
	cr_assert_str_eq(cJSON_GetObjectItem(o, "kind")->valuestring, "ExecCredential");
	cJSON *spec = cJSON_GetObjectItem(o, "spec");
	cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(spec, "interactive")), "%s", info);
	cJSON *cl = cJSON_GetObjectItem(spec, "cluster");
	cr_assert_not_null(cl, "%s", info);
	cr_assert_str_eq(cJSON_GetObjectItem(cl, "server")->valuestring, fx_kapi_url(T.k));
	ca = slurp(fx_kapi_ca(T.k), &calen);
	char *b64 = malloc(kvs__b64_len(calen) + 1);
	kvs__b64_encode(b64, (const uint8_t *)ca, calen);
	cr_assert_str_eq(cJSON_GetObjectItem(cl, "certificate-authority-data")->valuestring, b64);
	free(b64);
	free(ca);
	cJSON_Delete(o);
	free(info);
	char *args = slurp(in_plugin("args"), NULL);
	cr_assert_str_eq(args, "--api-version\n" V1BETA1 "\n");
	free(args);
}

Test(exec, auth_provider_users_are_told_to_move_to_exec)
{
	struct res r = { 0 };

	start_tls(NULL);
	kubeconfig(fx_kapi_url(T.k), fx_kapi_ca(T.k), "",
	           "    auth-provider:\n      name: oidc\n      config: {}\n");
	run(&r, "ls", NULL);
	cr_assert_eq(r.code, 8);
	cr_assert(strstr(r.err, "auth-provider \"oidc\"") && strstr(r.err, "move to an exec"),
	          "%s", r.err);
	res_free(&r);
}

/* ------------------------------------------------------------------------ */
/* clientcert                                                               */

static void sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
}

/*
 * A client CA; alice (CN=alice, O=devs, O=ops) signed by it; mallory signed
 * by another CA; expired, signed by the right CA but valid only in 2020.
 */
static void make_client_certs(void)
{
	sh("cd %s && exec >/dev/null 2>&1 && "
	   "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	   "-keyout cca.key -out cca.crt -days 2 -subj /CN=client-ca "
	   "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign && "
	   "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	   "-keyout other.key -out other.crt -days 2 -subj /CN=other-ca "
	   "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign && "
	   "printf 'extendedKeyUsage=clientAuth\\n' > ext.cnf && "
	   "for u in alice mallory old; do openssl req -newkey ec -pkeyopt "
	   "ec_paramgen_curve:prime256v1 -nodes -keyout $u.key -out $u.csr "
	   "-subj \"/O=devs/O=ops/CN=$u\" || exit 1; done && "
	   "openssl x509 -req -in alice.csr -CA cca.crt -CAkey cca.key -CAcreateserial "
	   "-out alice.crt -days 2 -extfile ext.cnf && "
	   "openssl x509 -req -in mallory.csr -CA other.crt -CAkey other.key -CAcreateserial "
	   "-out mallory.crt -days 2 -extfile ext.cnf && "
	   "mkdir -p ca.db && : > ca.db/index && echo 01 > ca.db/serial && "
	   "printf '[ca]\\ndefault_ca=d\\n[d]\\ndatabase=ca.db/index\\nnew_certs_dir=ca.db\\n"
	   "serial=ca.db/serial\\ndefault_md=sha256\\npolicy=p\\nx509_extensions=x\\n"
	   "[p]\\ncommonName=supplied\\norganizationName=optional\\n"
	   "[x]\\nextendedKeyUsage=clientAuth\\n' > ca.cnf && "
	   "openssl ca -batch -config ca.cnf -cert cca.crt -keyfile cca.key -in old.csr "
	   "-out old.crt -notext -startdate 20200101000000Z -enddate 20200102000000Z",
	   T.dir);
}

static void start_cert_server(void)
{
	static char ca[PATH_MAX];

	make_client_certs();
	snprintf(ca, sizeof(ca), "%s/cca.crt", T.dir);
	const char *extra[] = { "--client-ca", ca, "--anonymous-auth", "false", NULL };
	start_tls(extra);
}

static void cert_kubeconfig(const char *who)
{
	char user[1024];

	snprintf(user, sizeof(user), "    client-certificate: %s/%s.crt\n"
	                             "    client-key: %s/%s.key\n", T.dir, who, T.dir, who);
	kubeconfig(fx_kapi_url(T.k), fx_kapi_ca(T.k), "", user);
}

static size_t sink(char *p, size_t sz, size_t n, void *u)
{
	strncat((char *)u, p, sz * n < 4000 - strlen(u) ? sz * n : 4000 - strlen(u));
	return sz * n;
}

Test(clientcert, server_takes_user_from_cn_and_groups_from_o)
{
	char body[4096] = "", cert[PATH_MAX], key[PATH_MAX];
	long status = 0;

	start_cert_server();
	snprintf(cert, sizeof(cert), "%s/alice.crt", T.dir);
	snprintf(key, sizeof(key), "%s/alice.key", T.dir);
	CURL *c = curl_easy_init();
	char url[256];
	snprintf(url, sizeof(url), "%s/apis/authentication.k8s.io/v1/selfsubjectreviews",
	         fx_kapi_url(T.k));
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, fx_kapi_ca(T.k));
	curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
	curl_easy_setopt(c, CURLOPT_SSLKEY, key);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{}");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	cr_assert_eq(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	cr_assert_eq(status, 201, "%ld %s", status, body);
	cJSON *o = cJSON_Parse(body);
	cJSON *ui = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "status"), "userInfo");
	cr_assert_str_eq(cJSON_GetObjectItem(ui, "username")->valuestring, "alice", "%s", body);
	char *g = cJSON_PrintUnformatted(cJSON_GetObjectItem(ui, "groups"));
	cr_assert_str_eq(g, "[\"devs\",\"ops\",\"system:authenticated\"]");
	free(g);
	cJSON_Delete(o);
}

Test(clientcert, put_get_with_certificate_files_and_refused_without)
{
	struct res r = { 0 };

	start_cert_server();
	cert_kubeconfig("alice");
	RUN_OK("put", "k", "/etc/hostname");
	run(&r, "get", "k", NULL);
	cr_assert_eq(r.code, 0, "%s", r.err);
	char *want = slurp("/etc/hostname", NULL);
	cr_assert_str_eq(r.out, want);
	free(want);
	res_free(&r);
	/* no certificate (and no token): 401, and the message says what was sent */
	kubeconfig(fx_kapi_url(T.k), fx_kapi_ca(T.k), "", "    {}\n");
	run(&r, "get", "k", NULL);
	cr_assert_eq(r.code, 6, "exit %d: %s", r.code, r.err);
	cr_assert(strstr(r.err, "401") && strstr(r.err, "Unauthorized") &&
	          strstr(r.err, "the request carried no credentials"), "%s", r.err);
	res_free(&r);
}

Test(clientcert, certificate_data_forms_work)
{
	char user[16384], *c, *k;
	size_t cl, kl;

	start_cert_server();
	c = slurp(in_dir("alice.crt"), &cl);
	k = slurp(in_dir("alice.key"), &kl);
	char *cb = malloc(kvs__b64_len(cl) + 1), *kb = malloc(kvs__b64_len(kl) + 1);
	kvs__b64_encode(cb, (uint8_t *)c, cl);
	kvs__b64_encode(kb, (uint8_t *)k, kl);
	snprintf(user, sizeof(user), "    client-certificate-data: %s\n    client-key-data: %s\n", cb,
	         kb);
	kubeconfig(fx_kapi_url(T.k), fx_kapi_ca(T.k), "", user);
	RUN_OK("put", "k", "/etc/hostname");
	RUN_OK("get", "k");
	free(c);
	free(k);
	free(cb);
	free(kb);
}

Test(clientcert, wrong_and_expired_certificates_get_clear_errors)
{
	struct res r = { 0 };

	start_cert_server();
	cert_kubeconfig("mallory");
	run(&r, "ls", NULL);
	cr_assert_eq(r.code, 6, "exit %d: %s", r.code, r.err);
	cr_assert(strstr(r.err, "Unauthorized") && strstr(r.err, "client certificate CN=mallory"),
	          "%s", r.err);
	res_free(&r);
	cert_kubeconfig("old");
	run(&r, "ls", NULL);
	cr_assert_eq(r.code, 8, "exit %d: %s", r.code, r.err);
	cr_assert(strstr(r.err, "old.crt expired") && strstr(r.err, "2020"), "%s", r.err);
	res_free(&r);
	/* a key that is not the certificate's */
	char user[1024];
	snprintf(user, sizeof(user), "    client-certificate: %s/alice.crt\n"
	                             "    client-key: %s/mallory.key\n", T.dir, T.dir);
	kubeconfig(fx_kapi_url(T.k), fx_kapi_ca(T.k), "", user);
	run(&r, "ls", NULL);
	cr_assert_eq(r.code, 8, "exit %d: %s", r.code, r.err);
	cr_assert(strstr(r.err, "does not belong to client certificate"), "%s", r.err);
	res_free(&r);
}

Test(clientcert, exec_plugin_client_certificate)
{
	start_cert_server();
	sh("cp %s/alice.crt %s/alice.key %s/ && mv %s/alice.crt %s/client.crt && "
	   "mv %s/alice.key %s/client.key", T.dir, T.dir, T.plugin_dir, T.plugin_dir, T.plugin_dir,
	   T.plugin_dir, T.plugin_dir);
	plugin_set("mode", "cert\n");
	exec_kubeconfig(V1, "      interactiveMode: Never\n");
	RUN_OK("put", "k", "/etc/hostname");
	RUN_OK("get", "k");
	cr_assert_eq(plugin_runs(), 2);
}

/* ------------------------------------------------------------------------ */
/* proxy                                                                    */

static int free_port(void)
{
	struct sockaddr_in a = { 0 };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &al) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int port_open(int port)
{
	struct sockaddr_in a = { 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* Start a helper (argv) with stdout+stderr to `log`; wait for `port`. */
static void helper(const char *log, int port, const char *const *argv)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	T.helpers[T.nhelpers++] = pid;
	for (int i = 0; i < 5000; i++) {
		int st;
		if (port_open(port))
			return;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			T.nhelpers--;
			cr_assert_fail("%s exited (%d; Debian package missing? scripts/deps.sh)", argv[0],
			               st);
		}
		usleep(2000);
	}
	cr_assert_fail("%s did not listen", argv[0]);
}

static int start_tinyproxy(char *log, size_t cap)
{
	int port = free_port();
	char conf[PATH_MAX], text[512];

	snprintf(log, cap, "%s/tinyproxy.log", T.dir);
	snprintf(conf, sizeof(conf), "%s/tinyproxy.conf", T.dir);
	/* no ConnectPort line: CONNECT to any port (the API server's) */
	snprintf(text, sizeof(text), "Port %d\nListen 127.0.0.1\nTimeout 600\nLogLevel Connect\n"
	                             "Allow 127.0.0.1\nMaxClients 64\n", port);
	spit(conf, text);
	const char *argv[] = { "tinyproxy", "-d", "-c", conf, NULL };
	helper(log, port, argv);
	return port;
}

static int start_microsocks(char *log, size_t cap)
{
	int port = free_port();
	char p[16];

	snprintf(log, cap, "%s/microsocks.log", T.dir);
	snprintf(p, sizeof(p), "%d", port);
	const char *argv[] = { "microsocks", "-i", "127.0.0.1", "-p", p, NULL };
	helper(log, port, argv);
	return port;
}

static int log_has(const char *log, const char *what)
{
	usleep(100 * 1000); /* the proxies write their log as they go */
	char *s = slurp(log, NULL);
	int r = s && strstr(s, what) != NULL;
	free(s);
	return r;
}

static void token_user(char *out, size_t cap)
{
	snprintf(out, cap, "    token: %s\n", fx_kapi_token(T.k));
}

Test(proxy, proxy_url_http_connect_through_tinyproxy)
{
	char log[PATH_MAX], extra[256], user[256], want[64];
	int port;

	start_tls(NULL);
	port = start_tinyproxy(log, sizeof(log));
	snprintf(extra, sizeof(extra), "    proxy-url: http://127.0.0.1:%d\n", port);
	token_user(user, sizeof(user));
	kubeconfig(fx_kapi_url(T.k), fx_kapi_ca(T.k), extra, user);
	RUN_OK("put", "k", "/etc/hostname");
	RUN_OK("get", "k");
	snprintf(want, sizeof(want), "CONNECT %s", fx_kapi_url(T.k) + 8);
	cr_assert(log_has(log, want), "no %s in the proxy's log", want);
}

Test(proxy, proxy_url_socks5_through_microsocks)
{
	char log[PATH_MAX], extra[256], user[256], want[64];
	int port;

	start_tls(NULL);
	port = start_microsocks(log, sizeof(log));
	snprintf(extra, sizeof(extra), "    proxy-url: socks5://127.0.0.1:%d\n", port);
	token_user(user, sizeof(user));
	kubeconfig(fx_kapi_url(T.k), fx_kapi_ca(T.k), extra, user);
	RUN_OK("put", "k", "/etc/hostname");
	RUN_OK("get", "k");
	snprintf(want, sizeof(want), "connected to %s", fx_kapi_url(T.k) + 8);
	cr_assert(log_has(log, want), "no \"%s\" in the proxy's log", want);
}

Test(proxy, a_dead_proxy_url_is_an_error_not_a_bypass)
{
	char extra[256], user[256];
	struct res r = { 0 };

	start_tls(NULL);
	snprintf(extra, sizeof(extra), "    proxy-url: http://127.0.0.1:%d\n", free_port());
	token_user(user, sizeof(user));
	kubeconfig(fx_kapi_url(T.k), fx_kapi_ca(T.k), extra, user);
	run(&r, "ls", "--retries", "0", NULL);
	cr_assert_eq(r.code, 7, "exit %d: %s", r.code, r.err);
	res_free(&r);
}

/* The machine's host name, when it resolves to a loopback address (the
 * proxy can then reach a server on 127.0.0.1 by a name that is not
 * "localhost", which kubectl would never proxy). */
static int loopback_hostname(char *out, size_t cap)
{
	char cmd[300], *s;

	if (gethostname(out, cap) != 0 || !out[0])
		return 0;
	snprintf(cmd, sizeof(cmd), "getent ahostsv4 '%s' > %s/hosts 2>/dev/null", out, T.dir);
	if (system(cmd) != 0)
		return 0;
	s = slurp(in_dir("hosts"), NULL);
	int ok = s && strncmp(s, "127.", 4) == 0;
	free(s);
	return ok;
}

Test(proxy, http_proxy_env_no_proxy_and_loopback_like_kubectl)
{
	char log[PATH_MAX], host[128], url[256], proxy[64];
	int port;

	cr_assert_eq(fx_kapi_start(&T.k, 0, NULL), 0, "%s", kvs_error_last());
	port = start_tinyproxy(log, sizeof(log));
	snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", port);
	setenv("HTTP_PROXY", proxy, 1);
	/* a loopback server is never proxied (kubectl's rule) */
	kubeconfig(fx_kapi_url(T.k), NULL, "", "    {}\n");
	RUN_OK("put", "k", "/etc/hostname");
	cr_assert(!log_has(log, "Request"), "a loopback server went through HTTP_PROXY");
	if (!loopback_hostname(host, sizeof(host)))
		cr_skip_test("the host name does not resolve to a loopback address");
	snprintf(url, sizeof(url), "http://%s:%s", host, strrchr(fx_kapi_url(T.k), ':') + 1);
	kubeconfig(url, NULL, "", "    {}\n");
	setenv("NO_PROXY", host, 1);
	RUN_OK("get", "k");
	cr_assert(!log_has(log, "Request"), "NO_PROXY=%s was not honoured", host);
	unsetenv("NO_PROXY");
	RUN_OK("get", "k");
	char want[300];
	snprintf(want, sizeof(want), "GET %s/", url);
	cr_assert(log_has(log, want), "HTTP_PROXY was not used for %s", url);
}

Test(proxy, tls_server_name_is_the_name_checked)
{
	char user[256];
	struct res r = { 0 };

	start_tls(NULL);
	token_user(user, sizeof(user));
	/* the server certificate is for 127.0.0.1 and localhost */
	kubeconfig(fx_kapi_url(T.k), fx_kapi_ca(T.k), "    tls-server-name: localhost\n", user);
	RUN_OK("put", "k", "/etc/hostname");
	kubeconfig(fx_kapi_url(T.k), fx_kapi_ca(T.k), "    tls-server-name: api.example\n", user);
	run(&r, "ls", "--retries", "0", NULL);
	cr_assert_neq(r.code, 0);
	cr_assert(strstr(r.err, "api.example"), "%s", r.err);
	res_free(&r);
}
