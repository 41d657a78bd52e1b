/*
 * test_kubeconfig.c — suite `kubeconfig`: finding and reading credentials the
 * way kubectl does (store/kubeconfig.c). No server needed: each test writes
 * kubeconfig files into a temporary directory and points the environment at
 * them (Criterion runs each test in its own process, so environment changes
 * stay local to the test).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/kubeconfig.h"
#include "support/fixture.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/kvs-kc-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	/* nothing from the machine may leak in */
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	setenv("HOME", dir, 1);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(kubeconfig, .init = setup, .fini = teardown, .timeout = 10);

/* Write `text` to dir/name and return the full path (static buffer per call slot). */
static const char *wfile(const char *name, const char *text)
{
	static char paths[8][256];
	static int slot;
	char *p = paths[slot++ % 8];
	FILE *f;

	snprintf(p, 256, "%s/%s", dir, name);
	f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
	return p;
}

static const char *TWO_CONTEXTS =
	"apiVersion: v1\n"
	"kind: Config\n"
	"current-context: one\n"
	"clusters:\n"
	"- name: c1\n"
	"  cluster:\n"
	"    server: https://one.example:6443\n"
	"- name: c2\n"
	"  cluster:\n"
	"    server: https://two.example:443/\n"
	"    insecure-skip-tls-verify: true\n"
	"    tls-server-name: api.two\n"
	"contexts:\n"
	"- name: one\n"
	"  context:\n"
	"    cluster: c1\n"
	"    user: u1\n"
	"    namespace: ns-one\n"
	"- name: two\n"
	"  context:\n"
	"    cluster: c2\n"
	"    user: u2\n"
	"users:\n"
	"- name: u1\n"
	"  user:\n"
	"    token: tok-one\n"
	"- name: u2\n"
	"  user:\n"
	"    username: alice\n"
	"    password: pw\n";

static kvs__kubeconf *load_ok(const char *path, const char *ctx, const char *ns,
                              const char *server)
{
	kvs__kubeconf *kc = NULL;
	int rc = kvs__kubeconf_load(&kc, path, ctx, ns, server);

	cr_assert_eq(rc, 0, "load: %s (%s)", kvs_strerror(rc), kvs_error_last());
	cr_assert_not_null(kc);
	return kc;
}

static void load_fails(const char *path, const char *ctx, const char *want1, const char *want2)
{
	kvs__kubeconf *kc = NULL;
	int rc = kvs__kubeconf_load(&kc, path, ctx, NULL, NULL);

	cr_assert_eq(rc, KVS_ECONFIG, "rc %d: %s", rc, kvs_error_last());
	cr_assert_null(kc);
	if (want1)
		cr_expect(strstr(kvs_error_last(), want1), "detail \"%s\" lacks \"%s\"",
		          kvs_error_last(), want1);
	if (want2)
		cr_expect(strstr(kvs_error_last(), want2), "detail \"%s\" lacks \"%s\"",
		          kvs_error_last(), want2);
}

Test(kubeconfig, current_context_gives_cluster_user_and_namespace)
{
	kvs__kubeconf *kc = load_ok(wfile("config", TWO_CONTEXTS), NULL, NULL, NULL);

	cr_expect_str_eq(kc->context, "one");
	cr_expect_str_eq(kc->server, "https://one.example:6443");
	cr_expect_str_eq(kc->token, "tok-one");
	cr_expect_str_eq(kc->ns, "ns-one");
	cr_expect_eq(kc->insecure, 0);
	kvs__kubeconf_free(kc);
}

Test(kubeconfig, explicit_context_overrides_current_context)
{
	kvs__kubeconf *kc = load_ok(wfile("config", TWO_CONTEXTS), "two", NULL, NULL);

	cr_expect_str_eq(kc->server, "https://two.example:443"); /* trailing slash dropped */
	cr_expect_eq(kc->insecure, 1);
	cr_expect_str_eq(kc->tls_server_name, "api.two");
	cr_expect_str_eq(kc->username, "alice");
	cr_expect_str_eq(kc->password, "pw");
	cr_expect_null(kc->token);
	kvs__kubeconf_free(kc);
}

Test(kubeconfig, namespace_is_default_when_context_sets_none)
{
	kvs__kubeconf *kc = load_ok(wfile("config", TWO_CONTEXTS), "two", NULL, NULL);

	cr_expect_str_eq(kc->ns, "default");
	kvs__kubeconf_free(kc);
}

Test(kubeconfig, namespace_option_overrides_the_contexts)
{
	kvs__kubeconf *kc = load_ok(wfile("config", TWO_CONTEXTS), NULL, "mine", NULL);

	cr_expect_str_eq(kc->ns, "mine");
	kvs__kubeconf_free(kc);
}

Test(kubeconfig, server_option_overrides_cluster_url)
{
	kvs__kubeconf *kc = load_ok(wfile("config", TWO_CONTEXTS), NULL, NULL, "http://127.0.0.1:1");

	cr_expect_str_eq(kc->server, "http://127.0.0.1:1");
	cr_expect_str_eq(kc->token, "tok-one");
	kvs__kubeconf_free(kc);
}

Test(kubeconfig, home_kube_config_is_used_without_kubeconfig_env)
{
	char kdir[128];

	snprintf(kdir, sizeof(kdir), "%s/.kube", dir);
	cr_assert_eq(mkdir(kdir, 0700), 0);
	wfile(".kube/config", TWO_CONTEXTS);
	kvs__kubeconf *kc = load_ok(NULL, NULL, NULL, NULL);
	cr_expect_str_eq(kc->server, "https://one.example:6443");
	kvs__kubeconf_free(kc);
}

Test(kubeconfig, kubeconfig_env_list_merges_with_first_file_winning)
{
	const char *a = wfile("a",
	                      "current-context: ctx\n"
	                      "contexts:\n- name: ctx\n  context: {cluster: cl, user: me}\n"
	                      "users:\n- name: me\n  user: {token: from-a}\n");
	const char *b = wfile("b",
	                      "current-context: other\n"
	                      "clusters:\n- name: cl\n  cluster: {server: 'https://b.example'}\n"
	                      "users:\n- name: me\n  user: {token: from-b}\n");
	char env[800];

	snprintf(env, sizeof(env), "%s/missing:%s:%s", dir, a, b);
	setenv("KUBECONFIG", env, 1);
	kvs__kubeconf *kc = load_ok(NULL, NULL, NULL, NULL);
	cr_expect_str_eq(kc->context, "ctx");
	cr_expect_str_eq(kc->server, "https://b.example");
	cr_expect_str_eq(kc->token, "from-a");
	kvs__kubeconf_free(kc);
}

Test(kubeconfig, relative_ca_and_token_file_resolve_against_the_kubeconfig_dir)
{
	char sub[128], want[256];

	snprintf(sub, sizeof(sub), "%s/sub", dir);
	cr_assert_eq(mkdir(sub, 0700), 0);
	wfile("sub/ca.pem", "-----BEGIN CERTIFICATE-----\n");
	wfile("sub/tok", "t\n");
	const char *cfg = wfile("sub/config",
	                        "current-context: c\n"
	                        "clusters:\n- name: k\n  cluster:\n    server: https://x\n"
	                        "    certificate-authority: ca.pem\n"
	                        "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
	                        "users:\n- name: u\n  user: {tokenFile: ./tok}\n");
	kvs__kubeconf *kc = load_ok(cfg, NULL, NULL, NULL);
	snprintf(want, sizeof(want), "%s/ca.pem", sub);
	cr_expect_str_eq(kc->ca_file, want);
	snprintf(want, sizeof(want), "%s/./tok", sub);
	cr_expect_str_eq(kc->token_file, want);
	kvs__kubeconf_free(kc);
}

Test(kubeconfig, inline_ca_certificate_and_key_data_are_base64_decoded)
{
	/* "CA-PEM" "CERT" "KEY" in base64 */
	const char *cfg = wfile("config",
	                        "current-context: c\n"
	                        "clusters:\n- name: k\n  cluster:\n    server: https://x\n"
	                        "    certificate-authority-data: Q0EtUEVN\n"
	                        "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
	                        "users:\n- name: u\n  user:\n"
	                        "    client-certificate-data: Q0VSVA==\n"
	                        "    client-key-data: S0VZ\n");
	kvs__kubeconf *kc = load_ok(cfg, NULL, NULL, NULL);
	cr_assert_eq(kc->ca_len, 6);
	cr_expect_eq(memcmp(kc->ca_data, "CA-PEM", 6), 0);
	cr_assert_eq(kc->cert_len, 4);
	cr_expect_eq(memcmp(kc->cert_data, "CERT", 4), 0);
	cr_assert_eq(kc->key_len, 3);
	cr_expect_eq(memcmp(kc->key_data, "KEY", 3), 0);
	kvs__kubeconf_free(kc);
}

Test(kubeconfig, bad_base64_data_names_file_line_and_field)
{
	const char *cfg = wfile("config",
	                        "current-context: c\n"
	                        "clusters:\n- name: k\n  cluster:\n    server: https://x\n"
	                        "    certificate-authority-data: '!!notbase64'\n"
	                        "contexts:\n- name: c\n  context: {cluster: k}\n");
	load_fails(cfg, NULL, ":6:", "certificate-authority-data");
}

Test(kubeconfig, malformed_yaml_reports_file_and_line)
{
	const char *cfg = wfile("config", "current-context: c\nclusters:\n- name: k\n  cluster: [\n"
	                                  "    server: x\n  : : :\n");
	load_fails(cfg, NULL, cfg, "malformed YAML");
	cr_expect(strstr(kvs_error_last(), ":6:") || strstr(kvs_error_last(), ":5:") ||
	          strstr(kvs_error_last(), ":7:"),
	          "no line in \"%s\"", kvs_error_last());
}

Test(kubeconfig, field_of_wrong_type_names_line_and_field)
{
	const char *cfg = wfile("config",
	                        "current-context: c\n"
	                        "clusters:\n- name: k\n  cluster:\n    server: [a, b]\n"
	                        "contexts:\n- name: c\n  context: {cluster: k}\n");
	load_fails(cfg, NULL, ":5:", "server");
}

Test(kubeconfig, missing_context_is_named)
{
	load_fails(wfile("config", TWO_CONTEXTS), "three", "context \"three\"", "not found");
}

Test(kubeconfig, missing_cluster_is_named)
{
	const char *cfg = wfile("config", "current-context: c\n"
	                                  "contexts:\n- name: c\n  context: {cluster: gone, user: u}\n"
	                                  "users:\n- name: u\n  user: {token: t}\n");
	load_fails(cfg, NULL, "cluster \"gone\"", "not found");
}

Test(kubeconfig, missing_user_is_named)
{
	const char *cfg = wfile("config", "current-context: c\n"
	                                  "clusters:\n- name: k\n  cluster: {server: 'https://x'}\n"
	                                  "contexts:\n- name: c\n  context: {cluster: k, user: nobody}\n");
	load_fails(cfg, NULL, "user \"nobody\"", "not found");
}

Test(kubeconfig, no_current_context_and_none_given_is_econfig)
{
	const char *cfg = wfile("config", "clusters: []\ncontexts: []\n");
	load_fails(cfg, NULL, "no current-context", cfg);
}

#define EXEC_HEAD "current-context: c\n" \
	"clusters:\n- name: k\n  cluster: {server: 'https://x', proxy-url: 'socks5://p:1080'}\n" \
	"contexts:\n- name: c\n  context: {cluster: k, user: u}\n" \
	"users:\n- name: u\n  user:\n    exec:\n"

Test(kubeconfig, exec_plugin_fields_are_read_and_a_relative_command_resolved)
{
	const char *cfg = wfile("config", EXEC_HEAD
	                        "      apiVersion: client.authentication.k8s.io/v1beta1\n"
	                        "      command: bin/get-token\n"
	                        "      args: [eks, get-token, --cluster, c1]\n"
	                        "      env:\n      - {name: AWS_PROFILE, value: prod}\n"
	                        "      provideClusterInfo: true\n"
	                        "      installHint: install the aws CLI\n");
	kvs__kubeconf *kc;
	char want[128];

	cr_assert_eq(kvs__kubeconf_load(&kc, cfg, NULL, NULL, NULL), 0, "%s", kvs_error_last());
	cr_assert_not_null(kc->exec);
	snprintf(want, sizeof(want), "%s/bin/get-token", dir);
	cr_expect_str_eq(kc->exec->command, want);
	cr_assert_eq(kc->exec->nargs, 4);
	cr_expect_str_eq(kc->exec->args[3], "c1");
	cr_assert_eq(kc->exec->nenv, 1);
	cr_expect_str_eq(kc->exec->env[0], "AWS_PROFILE=prod");
	cr_expect_eq(kc->exec->provide_cluster_info, 1);
	cr_expect_eq(kc->exec->interactive, KVS__EXEC_IF_AVAILABLE); /* v1beta1's default */
	cr_expect_str_eq(kc->exec->install_hint, "install the aws CLI");
	cr_expect_str_eq(kc->proxy_url, "socks5://p:1080");
	kvs__kubeconf_free(kc);
}

Test(kubeconfig, exec_plugin_v1_needs_interactive_mode_and_a_known_api_version)
{
	const char *cfg = wfile("config", EXEC_HEAD
	                        "      apiVersion: client.authentication.k8s.io/v1\n"
	                        "      command: aws\n");
	load_fails(cfg, NULL, "interactiveMode must be set", cfg);
	cfg = wfile("config2", EXEC_HEAD
	            "      apiVersion: client.authentication.k8s.io/v1alpha1\n"
	            "      command: aws\n");
	load_fails(cfg, NULL, "v1alpha1\" is not supported", cfg);
	cfg = wfile("config3", EXEC_HEAD "      command: aws\n");
	load_fails(cfg, NULL, "has no apiVersion", cfg);
	cfg = wfile("config4", EXEC_HEAD
	            "      apiVersion: client.authentication.k8s.io/v1\n"
	            "      interactiveMode: Sometimes\n"
	            "      command: aws\n");
	load_fails(cfg, NULL, "want Never, IfAvailable or Always", cfg);
}

Test(kubeconfig, proxy_url_with_an_unknown_scheme_is_refused)
{
	const char *cfg = wfile("config", "current-context: c\n"
	                        "clusters:\n- name: k\n  cluster: {server: 'https://x', proxy-url: 'ftp://p'}\n"
	                        "contexts:\n- name: c\n  context: {cluster: k}\n");
	load_fails(cfg, NULL, "proxy-url \"ftp://p\"", cfg);
}

Test(kubeconfig, auth_provider_says_to_move_to_exec)
{
	const char *cfg = wfile("config", "current-context: c\n"
	                        "clusters:\n- name: k\n  cluster: {server: 'https://x'}\n"
	                        "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
	                        "users:\n- name: u\n  user:\n    auth-provider: {name: gcp}\n");
	load_fails(cfg, NULL, "auth-provider \"gcp\"", "move to an exec credential plugin");
}

Test(kubeconfig, unreadable_ca_file_is_named)
{
	const char *cfg = wfile("config", "current-context: c\n"
	                                  "clusters:\n- name: k\n  cluster:\n    server: https://x\n"
	                                  "    certificate-authority: /nonexistent/ca.pem\n"
	                                  "contexts:\n- name: c\n  context: {cluster: k}\n");
	load_fails(cfg, NULL, "/nonexistent/ca.pem", "certificate-authority");
}

/* Service account files where a test puts them: the directory is an
 * internal parameter of the private loader, never the environment. */
static void make_sa(char sa[128])
{
	snprintf(sa, 128, "%s/sa", dir);
	cr_assert_eq(mkdir(sa, 0700), 0);
	wfile("sa/token", "sa-token\n");
	wfile("sa/ca.crt", "-----BEGIN CERTIFICATE-----\n");
	wfile("sa/namespace", "pod-ns\n");
}

Test(kubeconfig, in_cluster_service_account_from_the_loaders_sa_dir)
{
	kvs__kubeconf *kc = NULL;
	char sa[128];

	make_sa(sa);
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	cr_assert_eq(kvs__kubeconf_load_sa(&kc, NULL, NULL, NULL, NULL, sa), 0, "%s",
	             kvs_error_last());
	cr_expect_eq(kc->in_cluster, 1);
	cr_expect_str_eq(kc->server, "https://10.0.0.1:6443");
	cr_expect_str_eq(kc->ns, "pod-ns");
	cr_expect(strstr(kc->token_file, "/sa/token"));
	cr_expect(strstr(kc->ca_file, "/sa/ca.crt"));
	kvs__kubeconf_free(kc);
}

/* KVS_SA_DIR used to move where production read service-account
 * credentials from: anyone who could set the environment of a program using
 * the library could make it trust their token and CA. It is ignored now:
 * with a complete service account there and KUBERNETES_SERVICE_HOST set, the
 * production loader still reads only the standard directory (absent here). */
Test(kubeconfig, kvs_sa_dir_in_the_environment_changes_nothing)
{
	kvs__kubeconf *kc = NULL;
	char sa[128];
	int rc;

	if (access("/var/run/secrets/kubernetes.io/serviceaccount/token", F_OK) == 0)
		cr_skip_test("this machine has a real service account");
	make_sa(sa);
	setenv("KVS_SA_DIR", sa, 1);
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	rc = kvs__kubeconf_load(&kc, NULL, NULL, NULL, NULL);
	cr_expect_eq(rc, KVS_ECONFIG, "rc %d, source %s", rc, kc ? kc->source : "-");
	cr_expect_null(kc);
	cr_expect(strstr(kvs_error_last(), "not running in a cluster"), "%s", kvs_error_last());
	kvs__kubeconf_free(kc);
	/* and through the public constructor */
	kvs_backend *b = NULL;
	cr_expect_eq(kvs_backend_kube(&b, NULL), KVS_ECONFIG);
	cr_expect_null(b);
	kvs_backend_free(b);
}

Test(kubeconfig, nothing_found_anywhere_is_econfig)
{
	load_fails(NULL, NULL, "no kubeconfig", "not running in a cluster");
}

Test(kubeconfig, public_constructor_reports_econfig_with_the_file)
{
	kvs_kube_options o = KVS_KUBE_OPTIONS_INIT;
	kvs_backend *b = NULL;
	const char *cfg = wfile("config", "current-context: [\n");

	o.kubeconfig = cfg;
	cr_expect_eq(kvs_backend_kube(&b, &o), KVS_ECONFIG);
	cr_expect_null(b);
	cr_expect(strstr(kvs_error_last(), cfg), "%s", kvs_error_last());
}

Test(kubeconfig, namespace_of_a_kube_backend_and_of_another_backend)
{
	kvs_kube_options o = KVS_KUBE_OPTIONS_INIT;
	kvs_backend *b = NULL, *m = NULL;

	o.kubeconfig = wfile("config", TWO_CONTEXTS);
	cr_assert_eq(kvs_backend_kube(&b, &o), 0, "%s", kvs_error_last());
	cr_expect_str_eq(kvs_backend_namespace(b), "ns-one");
	cr_assert_eq(kvs_backend_mem(&m, NULL), 0);
	cr_expect_null(kvs_backend_namespace(m));
	cr_expect_null(kvs_backend_namespace(NULL));
	kvs_backend_free(b);
	kvs_backend_free(m);
}

/* An inline token goes into an HTTP header: a line break in it would
 * inject headers into every request. Refused, as for a token file, and the
 * detail does not repeat the token. */
Test(kubeconfig, inline_token_with_a_line_break_is_refused)
{
	const char *cfg = wfile("config",
	                        "current-context: x\n"
	                        "clusters:\n- name: c\n  cluster: {server: 'https://k.example'}\n"
	                        "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	                        "users:\n- name: u\n  user:\n"
	                        "    token: \"s3cret\\r\\nX-Injected: yes\"\n");

	load_fails(cfg, NULL, "token", "line break");
	cr_expect_null(strstr(kvs_error_last(), "s3cret"), "%s", kvs_error_last());
	cr_expect_null(strstr(kvs_error_last(), "X-Injected"), "%s", kvs_error_last());
}

/* kubectl (client-go) refuses a cluster that sets both a CA and
 * insecure-skip-tls-verify ("specifying a root certificates file with the
 * insecure flag is not allowed") rather than silently dropping the CA. */
Test(kubeconfig, insecure_skip_tls_verify_together_with_a_ca_is_refused)
{
	const char *cfg = wfile("config",
	                        "current-context: x\n"
	                        "clusters:\n- name: c\n  cluster:\n"
	                        "    server: https://k.example\n"
	                        "    insecure-skip-tls-verify: true\n"
	                        "    certificate-authority-data: LS0tLS0=\n"
	                        "contexts:\n- name: x\n  context: {cluster: c}\n");

	load_fails(cfg, NULL, "insecure-skip-tls-verify", "certificate-authority");
	cr_expect(strstr(kvs_error_last(), cfg), "%s", kvs_error_last());
}
