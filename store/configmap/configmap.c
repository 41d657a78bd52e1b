/*
 * store/configmap/configmap.c — the Kubernetes backend: the vtable of kvsplit/backend.h
 * over /api/v1/namespaces/{ns}/configmaps.
 *
 * Routing only: credentials come from kube/kubeconfig.c, transfers, retries and
 * the rate limit from kube/http.c, JSON and Status mapping from kube/json.c.
 * Every error detail names the verb, the object, the HTTP status, the reason
 * and the server's message (never a credential).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "kube/http.h"
#include "kube/json.h"
#include "kube/kubeconfig.h"
#include "store/options.h"

#define KUBE_MAX_OBJECT_BYTES 1048576u
#define DEFAULT_QPS 50.0
#define DEFAULT_BURST 100u
#define DEFAULT_TIMEOUT_MS 30000u
#define DEFAULT_RETRIES 6u
#define DEFAULT_CONCURRENCY 8u
#define MAX_CONCURRENCY 256u

typedef struct kube_backend {
	kvs_backend base;
	kvs__http *http;
	char *ns;
	char *prefix;          /* "/api/v1/namespaces/<ns>/configmaps" */
	char *source;          /* where the credentials came from */
	unsigned concurrency;
} kube_backend;

struct kvs_backend_watch {
	kube_backend *kb;
	kvs__http_stream *s;
	int dead;              /* sticky error once the stream failed */
	char what[160];
};

static const kvs_backend_ops kube_ops;

/* Object names are left to the server to judge (it answers 422 Invalid, as
 * for any other field); here only an empty or absurdly long name is refused,
 * and "." and "..": percent-escaping leaves them as they are, and as a URL
 * path segment they are dot-segments (".." would address the namespace).
 * Names are percent-escaped in URL paths. */
static int check_name(const char *verb, const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 1024)
		return kvs_error_set(KVS_EINVAL, "%s configmap: name must be 1..1024 bytes", verb);
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return kvs_error_set(KVS_EINVAL, "%s configmap: \"%s\" is not a valid name", verb,
		                     name);
	return 0;
}

static int check_ns(const char *ns)
{
	size_t n = strlen(ns);

	if (n == 0 || n > 63)
		return 1;
	for (size_t i = 0; i < n; i++) {
		char c = ns[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 1;
	}
	return ns[0] == '-' || ns[n - 1] == '-';
}

static char *obj_path(const kube_backend *kb, const char *name)
{
	char *p, *esc = curl_easy_escape(NULL, name, 0);
	int w;

	if (!esc)
		return NULL;
	w = asprintf(&p, "%s/%s", kb->prefix, esc);
	curl_free(esc);
	return w < 0 ? NULL : p;
}

static void set_what(char *buf, size_t cap, const char *verb, const kube_backend *kb,
                     const char *name)
{
	snprintf(buf, cap, "%s configmap %s/%s", verb, kb->ns, name ? name : "");
}

/* One request, synchronously; the response is left in *r. */
static int run1(kube_backend *kb, kvs__http_req *r)
{
	int rc = kvs__http_run(kb->http, r, 1, 1);

	if (rc < 0)
		return rc;
	if (r->rc < 0)
		return kvs_error_set(r->rc, "%s", r->err);
	return 0;
}

static int http_fail(kube_backend *kb, const kvs__http_req *r, const char *what)
{
	return kvs__kube_http_error(r->status, r->resp, r->resp_len, what, kb->ns,
	                            r->resent_after_loss);
}

/* ------------------------------------------------------------------------ */
/* vtable                                                                   */

static int kube_get(kvs_backend *b, kvs_object **out, const char *name)
{
	kube_backend *kb = (kube_backend *)b;
	kvs__http_req r = { 0 };
	char what[320];
	int rc;

	*out = NULL;
	if ((rc = check_name("get", name)) < 0)
		return rc;
	set_what(what, sizeof(what), "get", kb, name);
	char *path = obj_path(kb, name);
	if (!path)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	r.method = "GET";
	r.path = path;
	r.max_resp = KVS__KUBE_MAX_OBJECT;
	rc = run1(kb, &r);
	if (rc == 0)
		rc = r.status == 200 ? kvs__kube_object_parse(out, r.resp, r.resp_len, 0, what)
		                     : http_fail(kb, &r, what);
	kvs__http_req_reset(&r);
	free(path);
	return rc;
}

static int write_object(kube_backend *kb, kvs_object **out, const kvs_object *obj, int replace)
{
	const char *verb = replace ? "replace" : "create";
	kvs__http_req r = { 0 };
	char what[320], *body = NULL, *path = NULL;
	size_t blen;
	int rc;

	if (out)
		*out = NULL;
	if (!obj)
		return kvs_error_set(KVS_EINVAL, "%s configmap: no object", verb);
	if ((rc = check_name(verb, obj->name)) < 0)
		return rc;
	set_what(what, sizeof(what), verb, kb, obj->name);
	if ((rc = kvs__kube_body_object(&body, &blen, obj, kb->ns, replace)) < 0)
		return rc;
	if (!(path = replace ? obj_path(kb, obj->name) : strdup(kb->prefix))) {
		free(body);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	r.method = replace ? "PUT" : "POST";
	r.path = path;
	r.content_type = "application/json";
	r.body = body;
	r.body_len = blen;
	r.max_resp = KVS__KUBE_MAX_OBJECT;
	rc = run1(kb, &r);
	if (rc == 0) {
		if (r.status == 200 || r.status == 201)
			rc = out ? kvs__kube_object_parse(out, r.resp, r.resp_len, KVS__KJ_META_ONLY, what)
			         : 0;
		else
			rc = http_fail(kb, &r, what);
	}
	kvs__http_req_reset(&r);
	free(body);
	free(path);
	return rc;
}

static int kube_create(kvs_backend *b, kvs_object **out, const kvs_object *obj)
{
	return write_object((kube_backend *)b, out, obj, 0);
}

static int kube_replace(kvs_backend *b, kvs_object **out, const kvs_object *obj)
{
	return write_object((kube_backend *)b, out, obj, 1);
}

static int kube_annotate(kvs_backend *b, kvs_object **out, const char *name,
                         const kvs_kv *annotations, size_t n)
{
	kube_backend *kb = (kube_backend *)b;
	kvs__http_req r = { 0 };
	char what[320], *body = NULL, *path = NULL;
	size_t blen;
	int rc;

	if (out)
		*out = NULL;
	if ((rc = check_name("annotate", name)) < 0)
		return rc;
	set_what(what, sizeof(what), "annotate", kb, name);
	if ((rc = kvs__kube_body_annotate(&body, &blen, annotations, n)) < 0)
		return rc;
	if (!(path = obj_path(kb, name))) {
		free(body);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	r.method = "PATCH";
	r.path = path;
	r.content_type = "application/merge-patch+json";
	r.body = body;
	r.body_len = blen;
	r.max_resp = KVS__KUBE_MAX_OBJECT;
	rc = run1(kb, &r);
	if (rc == 0) {
		if (r.status == 200)
			rc = out ? kvs__kube_object_parse(out, r.resp, r.resp_len, KVS__KJ_META_ONLY, what)
			         : 0;
		else
			rc = http_fail(kb, &r, what);
	}
	kvs__http_req_reset(&r);
	free(body);
	free(path);
	return rc;
}

static int kube_remove(kvs_backend *b, const char *name, const char *expect_rv,
                       const char *expect_uid)
{
	kube_backend *kb = (kube_backend *)b;
	kvs__http_req r = { 0 };
	char what[320], *body = NULL, *path = NULL;
	size_t blen;
	int rc;

	if ((rc = check_name("delete", name)) < 0)
		return rc;
	set_what(what, sizeof(what), "delete", kb, name);
	if ((rc = kvs__kube_body_delete(&body, &blen, expect_rv, expect_uid)) < 0)
		return rc;
	if (!(path = obj_path(kb, name))) {
		free(body);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	r.method = "DELETE";
	r.path = path;
	r.content_type = "application/json";
	r.body = body;
	r.body_len = blen;
	r.max_resp = KVS__KUBE_MAX_OBJECT;
	rc = run1(kb, &r);
	if (rc == 0 && r.status != 200 && r.status != 202)
		rc = http_fail(kb, &r, what);
	kvs__http_req_reset(&r);
	free(body);
	free(path);
	return rc;
}

/* Append "&key=<escaped value>" (or "?key=..." first). */
static int add_query(char **path, const char *key, const char *value)
{
	char *esc = curl_easy_escape(NULL, value, 0), *np;

	if (!esc)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	int w = asprintf(&np, "%s%c%s=%s", *path, strchr(*path, '?') ? '&' : '?', key, esc);
	curl_free(esc);
	if (w < 0)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	free(*path);
	*path = np;
	return 0;
}

static int kube_list(kvs_backend *b, kvs_object_list **out, const char *selector, size_t limit,
                     const char *token, unsigned int flags)
{
	kube_backend *kb = (kube_backend *)b;
	kvs__http_req r = { 0 };
	char what[320], num[32];
	char *path = strdup(kb->prefix);
	int rc = 0;

	*out = NULL;
	snprintf(what, sizeof(what), "list configmaps in %s%s%s", kb->ns,
	         selector && *selector ? " with selector " : "", selector ? selector : "");
	if (!path)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if (selector && *selector)
		rc = add_query(&path, "labelSelector", selector);
	if (rc == 0 && limit) {
		snprintf(num, sizeof(num), "%zu", limit);
		rc = add_query(&path, "limit", num);
	}
	if (rc == 0 && token && *token)
		rc = add_query(&path, "continue", token);
	if (rc < 0) {
		free(path);
		return rc;
	}
	r.method = "GET";
	r.path = path;
	r.max_resp = KVS__KUBE_MAX_LIST;
	if (flags & KVS_LIST_METADATA_ONLY)
		r.accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
		           "application/json";
	rc = run1(kb, &r);
	if (rc == 0)
		rc = r.status == 200
		         ? kvs__kube_list_parse(out, r.resp, r.resp_len,
		                                (flags & KVS_LIST_METADATA_ONLY) ? KVS__KJ_META_ONLY : 0,
		                                what)
		         : http_fail(kb, &r, what);
	kvs__http_req_reset(&r);
	free(path);
	return rc;
}

/* client-go style: a watch asks the server to end it after a random 5–10
 * minutes, so long-lived watches are spread over API server replicas. */
static unsigned watch_timeout_s(void)
{
	return 300u + (unsigned)(kvs__kube_mono_ms() % 300);
}

static int kube_watch_open(kvs_backend *b, kvs_backend_watch **out, const char *selector,
                           const char *from_rv)
{
	kube_backend *kb = (kube_backend *)b;
	struct kvs_backend_watch *w;
	char *path = NULL, *errbody = NULL, num[32];
	size_t errlen = 0;
	long status = 0;
	int rc = 0;

	*out = NULL;
	if (!(w = calloc(1, sizeof(*w))) ||
	    asprintf(&path, "%s?watch=1&allowWatchBookmarks=true", kb->prefix) < 0) {
		free(w);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	w->kb = kb;
	snprintf(w->what, sizeof(w->what), "watch configmaps in %s from rv \"%.64s\"", kb->ns,
	         from_rv ? from_rv : "");
	if (from_rv && *from_rv)
		rc = add_query(&path, "resourceVersion", from_rv);
	if (rc == 0 && selector && *selector)
		rc = add_query(&path, "labelSelector", selector);
	if (rc == 0) {
		snprintf(num, sizeof(num), "%u", watch_timeout_s());
		rc = add_query(&path, "timeoutSeconds", num);
	}
	if (rc == 0)
		rc = kvs__http_stream_open(&w->s, kb->http, path, KVS__KUBE_MAX_EVENT, &status,
		                           &errbody, &errlen);
	if (rc == 0 && status != 200)
		rc = kvs__kube_http_error(status, errbody, errlen, w->what, kb->ns, 0);
	free(errbody);
	free(path);
	if (rc < 0) {
		kvs__http_stream_close(w->s);
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

static int kube_watch_next(kvs_backend_watch *w, kvs_event *out, int timeout_ms)
{
	char *line = NULL;
	size_t len = 0;
	int rc;

	out->type = 0;
	out->object = NULL;
	if (w->dead)
		return kvs_error_set(w->dead, "%s: the watch has ended; open a new one", w->what);
	rc = kvs__http_stream_next(w->s, &line, &len, timeout_ms);
	if (rc == KVS_ETIMEOUT)
		return rc;
	if (rc < 0) {
		w->dead = rc;
		return rc;
	}
	rc = kvs__kube_event_parse(out, line, len, w->what);
	free(line);
	if (rc < 0)
		w->dead = rc == KVS_ENOMEM ? KVS_EIO : rc;
	return rc;
}

static void kube_watch_close(kvs_backend_watch *w)
{
	if (!w)
		return;
	kvs__http_stream_close(w->s);
	free(w);
}

static int kube_batch(kvs_backend *b, kvs_op *ops, size_t n)
{
	kube_backend *kb = (kube_backend *)b;
	kvs__http_req *rs;
	char **paths, **bodies;
	int rc = 0;

	if (n == 0)
		return 0;
	rs = calloc(n, sizeof(*rs));
	paths = calloc(n, sizeof(*paths));
	bodies = calloc(n, sizeof(*bodies));
	if (!rs || !paths || !bodies) {
		free(rs);
		free(paths);
		free(bodies);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		kvs_op *op = &ops[i];
		size_t blen = 0;

		op->out = NULL;
		kvs_op_result(op, 0);
		switch (op->kind) {
		case KVS_OP_GET:
			if (kvs_op_result(op, check_name("get", op->name)) < 0)
				break;
			if (!(paths[i] = obj_path(kb, op->name)))
				rc = kvs_error_set(KVS_ENOMEM, "out of memory");
			rs[i].method = "GET";
			break;
		case KVS_OP_CREATE:
			if (!op->in) {
				kvs_op_result(op, kvs_error_set(KVS_EINVAL, "batch create: no object"));
				break;
			}
			if (kvs_op_result(op, check_name("create", op->in->name)) < 0)
				break;
			if (kvs_op_result(op, kvs__kube_body_object(&bodies[i], &blen, op->in, kb->ns, 0)) <
			    0) {
				if (op->result == KVS_ENOMEM)
					rc = op->result;
				break;
			}
			if (!(paths[i] = strdup(kb->prefix)))
				rc = kvs_error_set(KVS_ENOMEM, "out of memory");
			rs[i].method = "POST";
			rs[i].content_type = "application/json";
			rs[i].body = bodies[i];
			rs[i].body_len = blen;
			break;
		default:
			kvs_op_result(op, kvs_error_set(KVS_EINVAL, "batch: unknown operation kind %d",
			                                (int)op->kind));
			break;
		}
		rs[i].path = paths[i];
		rs[i].max_resp = KVS__KUBE_MAX_OBJECT;
	}
	if (rc == 0) {
		/* compact the runnable requests to the front */
		size_t m = 0;
		size_t *idx = calloc(n, sizeof(*idx));
		kvs__http_req *run = calloc(n, sizeof(*run));

		if (!idx || !run) {
			rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		} else {
			for (size_t i = 0; i < n; i++)
				if (ops[i].result == 0 && paths[i]) {
					idx[m] = i;
					run[m++] = rs[i];
				}
			rc = kvs__http_run(kb->http, run, m, kb->concurrency);
			for (size_t j = 0; rc == 0 && j < m; j++) {
				kvs_op *op = &ops[idx[j]];
				kvs__http_req *r = &run[j];
				char what[320];

				set_what(what, sizeof(what), op->kind == KVS_OP_GET ? "get" : "create", kb,
				         op->kind == KVS_OP_GET ? op->name : op->in->name);
				if (r->rc < 0)
					kvs_op_result(op, kvs_error_set(r->rc, "%s", r->err));
				else if (op->kind == KVS_OP_GET && r->status == 200)
					kvs_op_result(op, kvs__kube_object_parse(&op->out, r->resp, r->resp_len,
					                                         0, what));
				else if (op->kind == KVS_OP_CREATE && (r->status == 201 || r->status == 200))
					kvs_op_result(op, 0);
				else
					kvs_op_result(op, http_fail(kb, r, what));
			}
			for (size_t j = 0; j < m; j++)
				kvs__http_req_reset(&run[j]);
		}
		free(idx);
		free(run);
	}
	for (size_t i = 0; i < n; i++) {
		free(paths[i]);
		free(bodies[i]);
	}
	free(rs);
	free(paths);
	free(bodies);
	return rc;
}

static int kube_now(kvs_backend *b, int64_t *out_ms)
{
	kube_backend *kb = (kube_backend *)b;
	kvs__http_req r = { 0 };
	int rc;

	if (kvs__http_now(kb->http, out_ms))
		return 0;
	r.method = "GET";
	r.path = "/version";
	r.max_resp = 65536;
	rc = run1(kb, &r);
	kvs__http_req_reset(&r);
	if (rc < 0)
		return rc;
	if (!kvs__http_now(kb->http, out_ms))
		return kvs_error_set(KVS_EIO, "GET %s/version: the server sent no Date header",
		                     kvs__http_server(kb->http));
	return 0;
}

static void kube_free(kvs_backend *b)
{
	kube_backend *kb = (kube_backend *)b;

	if (!kb)
		return;
	kvs__http_free(kb->http);
	free(kb->ns);
	free(kb->prefix);
	free(kb->source);
	free(kb);
}

static const kvs_backend_ops kube_ops = {
	.version = KVS_BACKEND_OPS_VERSION,
	.name = "kubernetes",
	.get = kube_get,
	.create = kube_create,
	.replace = kube_replace,
	.annotate = kube_annotate,
	.remove = kube_remove,
	.list = kube_list,
	.watch_open = kube_watch_open,
	.watch_next = kube_watch_next,
	.watch_close = kube_watch_close,
	.batch = kube_batch,
	.now = kube_now,
	.free = kube_free,
};

/* ------------------------------------------------------------------------ */
/* public                                                                   */

int kvs_backend_kube(kvs_backend **out, const kvs_kube_options *opts)
{
	kvs_kube_options o = KVS_KUBE_OPTIONS_INIT;
	kvs__kubeconf *kc = NULL;
	kube_backend *kb = NULL;
	kvs__http_config hc;
	char ua[64];
	int rc;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "kvs_backend_kube: out is NULL");
	*out = NULL;
	if ((rc = KVS__OPTS(&o, opts, kube)) < 0)
		return rc;
	if (o.concurrency > MAX_CONCURRENCY)
		return kvs_error_set(KVS_EINVAL, "kvs_kube_options: concurrency %u over %u",
		                     o.concurrency, MAX_CONCURRENCY);
	if ((rc = kvs__kubeconf_load(&kc, o.kubeconfig, o.context, o.namespace_, o.server)) < 0)
		return rc;
	if (check_ns(kc->ns)) {
		rc = kvs_error_set(KVS_ECONFIG, "%s: namespace \"%.80s\" is not a DNS-1123 label",
		                   kc->source, kc->ns);
		goto fail;
	}
	if (!(kb = calloc(1, sizeof(*kb))) || !(kb->ns = strdup(kc->ns)) ||
	    !(kb->source = strdup(kc->source)) ||
	    asprintf(&kb->prefix, "/api/v1/namespaces/%s/configmaps", kc->ns) < 0) {
		if (kb)
			kb->prefix = NULL;
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto fail;
	}
	snprintf(ua, sizeof(ua), "kvsplit/%d.%d.%d", KVS_VERSION_MAJOR, KVS_VERSION_MINOR,
	         KVS_VERSION_PATCH);
	hc.kc = kc;
	hc.user_agent = o.user_agent ? o.user_agent : ua;
	hc.qps = o.qps == 0 ? DEFAULT_QPS : o.qps;
	hc.burst = o.burst ? o.burst : DEFAULT_BURST;
	hc.timeout_ms = o.timeout_ms ? o.timeout_ms : DEFAULT_TIMEOUT_MS;
	hc.retries = o.retries == KVS_KUBE_NO_RETRIES ? 0 : o.retries ? o.retries : DEFAULT_RETRIES;
	if ((rc = kvs__http_new(&kb->http, &hc)) < 0)
		goto fail;
	kb->concurrency = o.concurrency ? o.concurrency : DEFAULT_CONCURRENCY;
	kb->base.ops = &kube_ops;
	kb->base.max_object_bytes = KUBE_MAX_OBJECT_BYTES;
	kvs__kubeconf_free(kc);
	*out = &kb->base;
	return 0;
fail:
	kvs__kubeconf_free(kc);
	kube_free(kb ? &kb->base : NULL);
	return rc;
}

const char *kvs_backend_namespace(const kvs_backend *backend)
{
	if (!backend || backend->ops != &kube_ops)
		return NULL;
	return ((const kube_backend *)backend)->ns;
}
