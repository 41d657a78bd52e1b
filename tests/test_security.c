/*
 * test_security.c — suite "security": what a hostile server, a hostile
 * name or a careless flag must not get through (docs/operations.md,
 * "Security").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <cjson/cJSON.h>

#include "kvsplit.h"
#include "kvsplit/kube.h"
#include "kube/client.h"
#include "kube/json.h"
#include "kube/kubeconfig.h"
#include "support/fixture_kube.h"

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* A server's Status message, reason or plain-text body goes into the error
 * detail that the CLI prints and programs log: terminal escapes, bells and
 * new lines from it are replaced (fuzz/kube_client_fuzzer.c found ESC and
 * a new line in a reason getting through). */
Test(security, server_text_in_error_details_carries_no_control_characters)
{
	static const char *const bodies[] = {
		"{\"kind\":\"Status\",\"reason\":\"NotFound\",\"message\":\"x\\u001b[31mred\\u0007\","
		"\"code\":404}",
		"{\"kind\":\"Status\",\"reason\":\"Bad\\nReason\\u001b\",\"code\":409}",
		"upstream \x1b]0;title\x07 error\r\n",
		"{\"kind\":\"Status\",\"reason\":\"NotFound\",\"code\":404,\"details\":"
		"{\"kind\":\"namespaces\",\"name\":\"n\\u001bs\"}}",
	};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		int rc = kvs__kube_http_error(i == 2 ? 500 : 404, bodies[i], strlen(bodies[i]),
		                              "get configmaps ns/x", NULL, 0);
		cr_assert_lt(rc, 0);
		cr_assert_not(has_control(kvs_error_last()), "body %zu: detail \"%s\"", i,
		              kvs_error_last());
	}
	/* the text itself is kept, only the control bytes go */
	kvs__kube_http_error(404, bodies[0], strlen(bodies[0]), "get configmaps ns/x", NULL, 0);
	cr_assert(strstr(kvs_error_last(), "[31mred"), "%s", kvs_error_last());
}

/* ---- credentials in the server URL --------------------------------------- */

static void write_text(char *path, size_t cap, const char *name, const char *text)
{
	char dir[] = "/tmp/kvs-sec-XXXXXX";
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, cap, "%s/%s", dir, name);
	cr_assert_not_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

static void kubeconfig_text(char *out, size_t cap, const char *server, const char *cluster_extra)
{
	snprintf(out, cap,
	         "apiVersion: v1\nkind: Config\n"
	         "clusters:\n- name: c\n  cluster:\n    server: %s\n%s"
	         "users:\n- name: u\n  user:\n    token: tok-5ecret\n"
	         "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n"
	         "current-context: x\n",
	         server, cluster_extra);
}

/* "https://alice:pa55w0rd@host" would send Basic credentials and print the
 * password in every message naming the server: refused, and not echoed. */
Test(security, credentials_in_the_server_url_are_refused_unechoed)
{
	static const char *const urls[] = { "https://alice:pa55w0rd@127.0.0.1:6443",
		                            "http://pa55w0rd@localhost", "ftp://alice:pa55w0rd@h" };
	char text[1024], path[256];
	kvs__kubeconf *kc = NULL;

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		kubeconfig_text(text, sizeof(text), urls[i], "");
		write_text(path, sizeof(path), "kubeconfig", text);
		cr_assert_eq(kvs__kubeconf_load(&kc, path, NULL, NULL, NULL), KVS_ECONFIG, "%s",
		             urls[i]);
		cr_assert_null(strstr(kvs_error_last(), "pa55w0rd"), "%s", kvs_error_last());
		/* the same given as the server override (-s/--server) */
		cr_assert_eq(kvs__kubeconf_load(&kc, path, NULL, NULL, urls[i]), KVS_ECONFIG);
		cr_assert_null(strstr(kvs_error_last(), "pa55w0rd"), "%s", kvs_error_last());
	}
	/* an @ after the authority is only a path or query */
	kubeconfig_text(text, sizeof(text), "https://127.0.0.1:6443/prefix@x", "");
	write_text(path, sizeof(path), "kubeconfig", text);
	cr_assert_eq(kvs__kubeconf_load(&kc, path, NULL, NULL, NULL), 0, "%s", kvs_error_last());
	kvs__kubeconf_free(kc);
}

/* ---- TLS verification off is visible ---------------------------------------- */

Test(security, insecure_skip_tls_verify_is_reported_by_the_client)
{
	char text[1024], path[256];
	kvs_kube_options o = KVS_KUBE_OPTIONS_INIT;
	kvs_kube *k = NULL;
	kvs_backend *b = NULL;

	kubeconfig_text(text, sizeof(text), "https://127.0.0.1:1",
	                "    insecure-skip-tls-verify: true\n");
	write_text(path, sizeof(path), "kubeconfig", text);
	o.kubeconfig = path;
	cr_assert_eq(kvs_kube_open(&k, &o), 0, "%s", kvs_error_last());
	cr_expect_eq(kvs_kube_tls_insecure(k), 1);
	kvs_kube_free(k);
	cr_assert_eq(kvs_backend_kube(&b, &o), 0, "%s", kvs_error_last());
	cr_expect_eq(kvs_backend_tls_insecure(b), 1);
	kvs_backend_free(b);

	kubeconfig_text(text, sizeof(text), "https://127.0.0.1:1", "");
	write_text(path, sizeof(path), "kubeconfig", text);
	cr_assert_eq(kvs_kube_open(&k, &o), 0, "%s", kvs_error_last());
	cr_expect_eq(kvs_kube_tls_insecure(k), 0);
	kvs_kube_free(k);
	cr_assert_eq(kvs_backend_kube(&b, &o), 0, "%s", kvs_error_last());
	cr_expect_eq(kvs_backend_tls_insecure(b), 0);
	kvs_backend_free(b);
	cr_expect_eq(kvs_kube_tls_insecure(NULL), 0);
	cr_expect_eq(kvs_backend_tls_insecure(NULL), 0);
}

/* ---- names cannot reach other URLs ------------------------------------------ */

/* A name is one path segment, percent-escaped: "/", "?", "#", "%2F" and
 * ".." cannot address another object, another namespace, a subresource or
 * add query parameters. Against the test server: object "x" (and the
 * namespace) must be untouched by any of these names. */
Test(security, names_cannot_inject_path_segments_or_query_parameters, .timeout = 60)
{
	static const char *const names[] = {
		"x/..", "../x", "x?labelSelector=a", "x?dryRun=All", "x%2F..", "x%3Fa=b", "x#frag",
		"x/status", "..%2Fx", "%2e%2e", "x/../x", "./x", "x;a=b", "x&watch=1",
	};
	const char *extra[] = { NULL };
	fx_kapi *srv = NULL;
	kvs_kube_options o = KVS_KUBE_OPTIONS_INIT;
	kvs_kube *k = NULL;
	cJSON *obj, *got = NULL;
	kvs_kube_page *pg = NULL;
	int rc;

	cr_assert_eq(fx_kapi_start(&srv, 0, extra), 0, "%s", kvs_error_last());
	o.kubeconfig = fx_kapi_kubeconfig(srv);
	cr_assert_eq(kvs_kube_open(&k, &o), 0, "%s", kvs_error_last());
	obj = cJSON_Parse("{\"metadata\":{\"name\":\"x\"},\"data\":{\"k\":\"v\"}}");
	cr_assert_eq(kvs_kube_create(NULL, k, &kvs_kube_configmaps, NULL, obj, NULL), 0, "%s",
	             kvs_error_last());
	cJSON_Delete(obj);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		rc = kvs_kube_get(&got, k, &kvs_kube_configmaps, NULL, names[i], NULL, NULL);
		cr_expect(rc == KVS_ENOTFOUND || rc == KVS_EINVAL, "get \"%s\": %d %s", names[i], rc,
		          kvs_error_last());
		cJSON_Delete(got);
		got = NULL;
		rc = kvs_kube_delete(NULL, k, &kvs_kube_configmaps, NULL, names[i], NULL, NULL);
		cr_expect(rc == KVS_ENOTFOUND || rc == KVS_EINVAL, "delete \"%s\": %d %s", names[i],
		          rc, kvs_error_last());
	}
	/* ".." and "." are refused before anything is sent */
	cr_expect_eq(kvs_kube_get(&got, k, &kvs_kube_configmaps, NULL, "..", NULL, NULL), KVS_EINVAL);
	cr_expect_eq(kvs_kube_delete(NULL, k, &kvs_kube_configmaps, NULL, ".", NULL, NULL),
	             KVS_EINVAL);
	/* a namespace is a DNS label: no "/" or ".." through it either */
	cr_expect_eq(kvs_kube_get(&got, k, &kvs_kube_configmaps, "default/configmaps", "x", NULL,
	                          NULL), KVS_EINVAL);
	cr_expect_eq(kvs_kube_get(&got, k, &kvs_kube_configmaps, "..", "x", NULL, NULL), KVS_EINVAL);
	cr_expect_eq(kvs_kube_list(&pg, k, &kvs_kube_configmaps, "a?watch=1", NULL, NULL),
	             KVS_EINVAL);
	/* x is still there, alone */
	cr_assert_eq(kvs_kube_get(&got, k, &kvs_kube_configmaps, NULL, "x", NULL, NULL), 0);
	cJSON_Delete(got);
	cr_assert_eq(kvs_kube_list(&pg, k, &kvs_kube_configmaps, NULL, NULL, NULL), 0);
	cr_expect_eq(pg->count, 1);
	kvs_kube_page_free(pg);
	kvs_kube_free(k);
	fx_kapi_stop(srv);
}

/* ---- hostile watch streams ---------------------------------------------------- */

/* A BOOKMARK's resourceVersion is where a watch resumes: an empty one would
 * make the next watch start "from now" and skip whatever happened in
 * between, silently. Refused as a BOOKMARK without one (found by
 * fuzz/watch_stream_fuzzer.c). */
Test(security, watch_bookmark_with_an_empty_resource_version_is_refused)
{
	static const char empty[] = "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ConfigMap\","
	                            "\"metadata\":{\"resourceVersion\":\"\"}}}";
	static const char good[] = "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ConfigMap\","
	                           "\"metadata\":{\"resourceVersion\":\"12\"}}}";
	kvs_kube_event ev;
	kvs_kube_status last;
	kvs_event bev;

	memset(&last, 0, sizeof(last));
	cr_assert_eq(kvs__kube_watch_decode(&ev, &last, "watch configmaps", empty, strlen(empty)),
	             KVS_ECORRUPT);
	cr_assert(strstr(kvs_error_last(), "BOOKMARK without"), "%s", kvs_error_last());
	cr_assert_null(ev.object);
	cr_assert_eq(kvs__kube_watch_decode(&ev, &last, "watch configmaps", good, strlen(good)), 0);
	cr_assert_str_eq(ev.resource_version, "12");
	kvs_kube_event_clear(&ev);
	memset(&bev, 0, sizeof(bev));
	cr_assert_eq(kvs__kube_event_parse(&bev, empty, strlen(empty), "watch configmaps"),
	             KVS_ECORRUPT);
	kvs_event_clear(&bev);
}
