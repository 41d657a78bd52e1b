/*
 * kube/client.c — the Kubernetes client of include/kvsplit/kube.h.
 *
 * URLs (resource descriptor, namespace, name, subresource, query), the
 * mapping of responses to KVS codes and kvs_kube_status, and the verbs as
 * cJSON in, cJSON out. Transfers, retries and the rate limit are
 * kube/http.c's; credentials kube/kubeconfig.c's; the Status and the
 * bounded JSON parse kube/json.c's. Every verb is one raw request of
 * kvs_kube_run(), so the typed verbs and the hot paths share one code path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "kvsplit/kube.h"
#include "kube/client.h"
#include "kube/http.h"
#include "kube/json.h"
#include "kube/kubeconfig.h"
#include "kube/proto.h"
#include "base/options.h"

#define DEFAULT_QPS 50.0
#define DEFAULT_BURST 100u
#define DEFAULT_TIMEOUT_MS 30000u
#define DEFAULT_RETRIES 6u
#define DEFAULT_CONCURRENCY 8u
#define MAX_CONCURRENCY 256u
#define MAX_NAME 1024u          /* the server judges names; this only bounds the URL */
#define MAX_CONTINUE (64u * 1024u)

#define ACCEPT_POM "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
#define ACCEPT_POML \
	"application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"

struct kvs_kube {
	kvs__http *http;
	char *ns;
	char *source;          /* where the credentials came from */
	unsigned concurrency;
	int protobuf;          /* ConfigMap GETs may ask for protobuf (!json_only) */
	int json_writes;       /* atomic: a protobuf write met 415, writes are JSON now */
};

const kvs_kube_resource kvs_kube_configmaps = { "", "v1", "configmaps", 1 };
const kvs_kube_resource kvs_kube_leases = { "coordination.k8s.io", "v1", "leases", 1 };
const kvs_kube_resource kvs_kube_pods = { "", "v1", "pods", 1 };
const kvs_kube_resource kvs_kube_events = { "", "v1", "events", 1 };
const kvs_kube_resource kvs_kube_namespaces = { "", "v1", "namespaces", 0 };
const kvs_kube_resource kvs_kube_crds = { "apiextensions.k8s.io", "v1",
	                                      "customresourcedefinitions", 0 };

static int nomem(void)
{
	return kvs_error_set(KVS_ENOMEM, "out of memory");
}

/* ------------------------------------------------------------------------ */
/* open / free                                                              */

static int bad_dns_label(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 1;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 1;
	return 0;
}

int kvs_kube_open(kvs_kube **out, const kvs_kube_options *opts)
{
	kvs_kube_options o = KVS_KUBE_OPTIONS_INIT;
	kvs__kubeconf *kc = NULL;
	kvs__http_config hc;
	kvs_kube *k = NULL;
	char ua[64];
	int rc;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "kvs_kube_open: out is NULL");
	*out = NULL;
	if ((rc = KVS__OPTS(&o, opts, kube)) < 0)
		return rc;
	if (o.concurrency > MAX_CONCURRENCY)
		return kvs_error_set(KVS_EINVAL, "kvs_kube_options: concurrency %u over %u",
		                     o.concurrency, MAX_CONCURRENCY);
	if ((rc = kvs__kubeconf_load(&kc, o.kubeconfig, o.context, o.namespace_, o.server)) < 0)
		return rc;
	if (bad_dns_label(kc->ns)) {
		rc = kvs_error_set(KVS_ECONFIG, "%s: namespace \"%.80s\" is not a DNS-1123 label",
		                   kc->source, kc->ns);
		goto fail;
	}
	if (!(k = calloc(1, sizeof(*k))) || !(k->ns = strdup(kc->ns)) ||
	    !(k->source = strdup(kc->source))) {
		rc = nomem();
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
	if ((rc = kvs__http_new(&k->http, &hc)) < 0)
		goto fail;
	k->concurrency = o.concurrency ? o.concurrency : DEFAULT_CONCURRENCY;
	k->protobuf = !o.json_only;
	kvs__kubeconf_free(kc);
	*out = k;
	return 0;
fail:
	kvs__kubeconf_free(kc);
	kvs_kube_free(k);
	return rc;
}

void kvs_kube_free(kvs_kube *k)
{
	if (!k)
		return;
	kvs__http_free(k->http);
	free(k->ns);
	free(k->source);
	free(k);
}

const char *kvs_kube_namespace(const kvs_kube *k)
{
	return k ? k->ns : NULL;
}

const char *kvs_kube_server(const kvs_kube *k)
{
	return k ? kvs__http_server(k->http) : NULL;
}

int kvs_kube_tls_insecure(const kvs_kube *k)
{
	return k ? kvs__http_insecure(k->http) : 0;
}

unsigned int kvs_kube_concurrency(const kvs_kube *k)
{
	return k ? k->concurrency : 0;
}

int kvs__kube_protobuf(const kvs_kube *k)
{
	return k ? k->protobuf : 0;
}

int kvs__kube_protobuf_writes(const kvs_kube *k)
{
	return k && k->protobuf && !__atomic_load_n(&k->json_writes, __ATOMIC_RELAXED);
}

void kvs__kube_protobuf_writes_off(kvs_kube *k)
{
	if (k)
		__atomic_store_n(&k->json_writes, 1, __ATOMIC_RELAXED);
}

int kvs_kube_now(int64_t *out_ms, kvs_kube *k)
{
	kvs__http_req r = { 0 };
	int rc;

	if (!out_ms || !k)
		return kvs_error_set(KVS_EINVAL, "kvs_kube_now: NULL argument");
	if (kvs__http_now(k->http, out_ms))
		return 0;
	r.method = "GET";
	r.path = "/version";
	r.max_resp = 65536;
	if ((rc = kvs__http_run(k->http, &r, 1, 1)) == 0 && r.rc < 0)
		rc = kvs_error_set(r.rc, "%s", r.err);
	kvs__http_req_reset(&r);
	if (rc < 0)
		return rc;
	if (!kvs__http_now(k->http, out_ms))
		return kvs_error_set(KVS_EIO, "GET %s/version: the server sent no Date header",
		                     kvs__http_server(k->http));
	return 0;
}

/* ------------------------------------------------------------------------ */
/* URLs                                                                     */

/* Group, version, plural and subresource go into the path unescaped: only
 * [a-z0-9.-] is allowed in them. */
static int bad_segment(const char *s, int may_be_empty)
{
	if (!s || (!*s && !may_be_empty) || strlen(s) > 253)
		return 1;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '-'))
			return 1;
	return 0;
}

/* Names are percent-escaped; "." and ".." would still be dot-segments
 * (".." would address the namespace), so they are refused here, like an
 * empty or absurdly long name. Everything else is the server's to judge
 * (it answers 422 Invalid, as for any other field). */
int kvs__kube_check_name(const char *what, const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > MAX_NAME)
		return kvs_error_set(KVS_EINVAL, "%s: name must be 1..%u bytes", what, MAX_NAME);
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return kvs_error_set(KVS_EINVAL, "%s: \"%s\" is not a valid name", what, name);
	return 0;
}

static int collection_verb(kvs_kube_verb v)
{
	return v == KVS_KUBE_VERB_LIST || v == KVS_KUBE_VERB_CREATE;
}

static const char *verb_method(kvs_kube_verb v)
{
	switch (v) {
	case KVS_KUBE_VERB_GET: case KVS_KUBE_VERB_LIST: return "GET";
	case KVS_KUBE_VERB_CREATE: return "POST";
	case KVS_KUBE_VERB_UPDATE: return "PUT";
	case KVS_KUBE_VERB_PATCH: return "PATCH";
	case KVS_KUBE_VERB_DELETE: return "DELETE";
	default: return NULL;
	}
}

/* The namespace a request goes to: "" for cluster-scoped resources and for
 * all-namespace lists/watches. */
static int resolve_ns(const char **out, const kvs_kube *k, const kvs_kube_resource *res,
                      const char *ns, int collection)
{
	*out = "";
	if (!res->namespaced)
		return 0;
	if (!ns)
		ns = k->ns;
	if (!*ns) {
		if (!collection)
			return kvs_error_set(KVS_EINVAL,
			                     "%s: a named request needs a namespace (not all namespaces)",
			                     res->resource);
		return 0;
	}
	if (bad_dns_label(ns))
		return kvs_error_set(KVS_EINVAL, "namespace \"%.80s\" is not a DNS-1123 label", ns);
	*out = ns;
	return 0;
}

/* /api/v1[/namespaces/NS]/PLURAL[/NAME[/SUB]][?QUERY] or /apis/G/V/... */
static int build_path(char **out, const kvs_kube_resource *res, const char *ns,
                      const char *name, const char *sub, const char *query)
{
	char *esc = NULL;
	int w;

	*out = NULL;
	if (name && !(esc = curl_easy_escape(NULL, name, 0)))
		return nomem();
	w = asprintf(out, "%s%s%s%s%s%s/%s%s%s%s%s%s%s", *res->group ? "/apis/" : "/api",
	             res->group, *res->group ? "/" : "/", res->version, *ns ? "/namespaces/" : "",
	             ns, res->resource, esc ? "/" : "", esc ? esc : "", sub ? "/" : "",
	             sub ? sub : "", query && *query ? "?" : "", query ? query : "");
	curl_free(esc);
	if (w < 0) {
		*out = NULL;
		return nomem();
	}
	return 0;
}

/* Append "&key=<escaped value>" (or "?..." first) to a query string. */
static int add_query(char **q, const char *key, const char *value)
{
	char *esc, *nq;
	int w;

	if (!value)
		return 0;
	if (!(esc = curl_easy_escape(NULL, value, 0)))
		return nomem();
	w = asprintf(&nq, "%s%s%s=%s", *q ? *q : "", *q ? "&" : "", key, esc);
	curl_free(esc);
	if (w < 0)
		return nomem();
	free(*q);
	*q = nq;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* status                                                                   */

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

static void status_reset(kvs_kube_status *st)
{
	memset(st, 0, sizeof(*st));
	st->version = KVS_KUBE_STATUS_VERSION;
}

static void status_from_kube(kvs_kube_status *st, const kvs__kube_status *ks)
{
	st->code = ks->code;
	copy_str(st->reason, sizeof(st->reason), ks->reason);
	copy_str(st->message, sizeof(st->message), ks->message);
	copy_str(st->details_kind, sizeof(st->details_kind), ks->details_kind);
	copy_str(st->details_name, sizeof(st->details_name), ks->details_name);
	st->too_long = ks->too_long;
	if (!st->retry_after_s)
		st->retry_after_s = ks->retry_after_s;
}

static void status_out(kvs_kube_status *dst, const kvs_kube_status *src)
{
	if (dst)
		*dst = *src; /* version 0 (a zeroed struct) is taken as version 1 */
}

/* A 401 says only "Unauthorized": add what the request carried. */
static int unauthorized(int rc, long http, const kvs__http *h)
{
	char d[1100];

	if (http != 401)
		return rc;
	snprintf(d, sizeof(d), "%s", kvs_error_last());
	return kvs_error_set(rc, "%s (the request carried %s)", d, kvs__http_auth(h));
}

/* Map one finished transfer onto the request's outputs. */
static void finish(kvs_kube_request *rq, kvs__http_req *hr, const char *ns, const char *what,
                   const kvs__http *h)
{
	status_reset(&rq->status);
	rq->status.attempts = hr->attempts;
	rq->status.resent_after_loss = hr->resent_after_loss;
	if (hr->rc < 0) {
		rq->result = kvs_error_set(hr->rc, "%s", hr->err);
		copy_str(rq->detail, sizeof(rq->detail), kvs_error_last());
		return;
	}
	rq->status.http = hr->status;
	rq->status.retry_after_s = hr->retry_after_s > 0 ? (unsigned)hr->retry_after_s : 0;
	rq->response = hr->resp;
	rq->response_len = hr->resp_len;
	hr->resp = NULL;
	if (hr->status >= 200 && hr->status < 300) {
		rq->result = 0;
		return;
	}
	kvs__kube_status ks;

	/* an answer to a request that preferred protobuf may be a protobuf Status */
	kvs__kube_status_decode(&ks, hr->resp_type, rq->response, rq->response_len);
	status_from_kube(&rq->status, &ks);
	rq->result = unauthorized(kvs__kube_http_error_st(hr->status, &ks, rq->response,
	                                                  rq->response_len, what, ns,
	                                                  hr->resent_after_loss),
	                          hr->status, h);
	copy_str(rq->detail, sizeof(rq->detail), kvs_error_last());
}

/* ------------------------------------------------------------------------ */
/* raw requests                                                             */

void kvs_kube_request_clear(kvs_kube_request *rq)
{
	if (!rq)
		return;
	free(rq->response);
	rq->response = NULL;
	rq->response_len = 0;
	rq->result = 0;
	rq->detail[0] = '\0';
	status_reset(&rq->status);
}

struct prep {
	char *path;
	const char *ns;
	char what[320];
	/* the caller's per-request callback (kvs__kube_run_each) */
	kvs_kube *k;
	kvs_kube_request *rq;
	size_t i;
	void (*each)(kvs_kube_request *r, size_t i, const char *type, void *ctx);
	void *ctx;
	int finished;
};

static int prepare(kvs_kube *k, kvs_kube_request *rq, kvs__http_req *hr, struct prep *p)
{
	const kvs_kube_resource *res = rq->resource;
	const char *method = verb_method(rq->verb);
	int coll = collection_verb(rq->verb), rc;

	if (rq->version != KVS_KUBE_REQUEST_VERSION)
		return kvs_error_set(KVS_EINVAL, "kvs_kube_request: version %u, expected %u",
		                     rq->version, KVS_KUBE_REQUEST_VERSION);
	if (!method)
		return kvs_error_set(KVS_EINVAL, "kvs_kube_request: unknown verb %d", (int)rq->verb);
	if (!res || bad_segment(res->group, 1) || bad_segment(res->version, 0) ||
	    bad_segment(res->resource, 0))
		return kvs_error_set(KVS_EINVAL, "kvs_kube_request: bad resource descriptor");
	if (rq->subresource && (coll || bad_segment(rq->subresource, 0)))
		return kvs_error_set(KVS_EINVAL, "kvs_kube_request: bad subresource");
	if ((rc = resolve_ns(&p->ns, k, res, rq->ns, coll)) < 0)
		return rc;
	if (rq->what)
		copy_str(p->what, sizeof(p->what), rq->what);
	else
		snprintf(p->what, sizeof(p->what), "%s %s%s%s%s%s%s%s", method, res->resource,
		         coll && *p->ns ? " in " : " ", p->ns, !coll && *p->ns ? "/" : "",
		         coll ? "" : rq->name ? rq->name : "", rq->subresource ? "/" : "",
		         rq->subresource ? rq->subresource : "");
	if (coll && rq->name)
		return kvs_error_set(KVS_EINVAL, "%s: a collection request takes no name", p->what);
	if (!coll && (rc = kvs__kube_check_name(p->what, rq->name)) < 0)
		return rc;
	if ((rc = build_path(&p->path, res, p->ns, coll ? NULL : rq->name, rq->subresource,
	                     rq->query)) < 0)
		return rc;
	hr->method = method;
	hr->path = p->path;
	hr->accept = rq->accept;
	hr->body = rq->body;
	hr->body_len = rq->body ? rq->body_len : 0;
	hr->content_type = rq->content_type ? rq->content_type
	                   : rq->verb == KVS_KUBE_VERB_PATCH ? "application/merge-patch+json"
	                   : rq->body ? "application/json" : NULL;
	hr->max_resp = rq->max_response ? rq->max_response
	               : rq->verb == KVS_KUBE_VERB_LIST ? KVS__KUBE_MAX_LIST : KVS__KUBE_MAX_OBJECT;
	return 0;
}

static void on_http_done(kvs__http_req *hr, void *ctx)
{
	struct prep *p = ctx;

	finish(p->rq, hr, p->ns, p->what, p->k->http);
	p->finished = 1;
	p->each(p->rq, p->i, hr->resp_type, p->ctx);
}

int kvs_kube_run(kvs_kube *k, kvs_kube_request *reqs, size_t n)
{
	return kvs__kube_run_each(k, reqs, n, NULL, NULL);
}

int kvs__kube_run_each(kvs_kube *k, kvs_kube_request *reqs, size_t n,
                       void (*each)(kvs_kube_request *r, size_t i, const char *type, void *ctx),
                       void *ctx)
{
	kvs__http_req *hr;
	struct prep *pp;
	int rc = 0;

	if (!k || (n && !reqs))
		return kvs_error_set(KVS_EINVAL, "kvs_kube_run: NULL argument");
	if (n == 0)
		return 0;
	hr = calloc(n, sizeof(*hr));
	pp = calloc(n, sizeof(*pp));
	if (!hr || !pp) {
		free(hr);
		free(pp);
		return nomem();
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (reqs[i].version == KVS_KUBE_REQUEST_VERSION)
			kvs_kube_request_clear(&reqs[i]);
		rc = prepare(k, &reqs[i], &hr[i], &pp[i]);
		if (each) {
			pp[i].k = k;
			pp[i].rq = &reqs[i];
			pp[i].i = i;
			pp[i].each = each;
			pp[i].ctx = ctx;
			hr[i].done = on_http_done;
			hr[i].done_ctx = &pp[i];
		}
	}
	if (rc == 0)
		rc = kvs__http_run(k->http, hr, n, k->concurrency);
	if (rc == 0) {
		size_t last = n;

		for (size_t i = 0; i < n; i++) {
			if (!pp[i].finished)
				finish(&reqs[i], &hr[i], pp[i].ns, pp[i].what, k->http);
			if (reqs[i].result < 0)
				last = i;
		}
		if (last < n)
			kvs_error_set(reqs[last].result, "%s", reqs[last].detail);
	}
	for (size_t i = 0; i < n; i++) {
		kvs__http_req_reset(&hr[i]);
		free(pp[i].path);
	}
	free(hr);
	free(pp);
	return rc;
}

int kvs_kube_parse(cJSON **out, const char *body, size_t len, size_t cap)
{
	int rc = 0;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "kvs_kube_parse: out is NULL");
	*out = NULL;
	if (!body && len)
		return kvs_error_set(KVS_EINVAL, "kvs_kube_parse: no body");
	*out = kvs__json_parse(body ? body : "", len, cap ? cap : KVS__KUBE_MAX_OBJECT,
	                       "a response", &rc);
	return *out ? 0 : rc;
}

/* ------------------------------------------------------------------------ */
/* typed verbs                                                              */

/* Run one request; on success parse its body as one JSON object into *out
 * (when out is not NULL). */
static int run_one(cJSON **out, kvs_kube *k, kvs_kube_request *rq, kvs_kube_status *status)
{
	int rc;

	if (out)
		*out = NULL;
	if (!k)
		return kvs_error_set(KVS_EINVAL, "kvs_kube: NULL client");
	rc = kvs_kube_run(k, rq, 1);
	if (rc == 0)
		rc = rq->result;
	if (rc == 0 && out) {
		size_t cap = rq->max_response ? rq->max_response : KVS__KUBE_MAX_OBJECT;
		cJSON *j = kvs__json_parse(rq->response, rq->response_len, cap,
		                           rq->what ? rq->what : "the request", &rc);

		if (j && !cJSON_IsObject(j)) {
			cJSON_Delete(j);
			j = NULL;
			rc = kvs_error_set(KVS_ECORRUPT, "malformed response to %s: not a JSON object",
			                   rq->what ? rq->what : "the request");
		}
		*out = j;
	}
	status_out(status, &rq->status);
	kvs_kube_request_clear(rq);
	return rc;
}

static void what_of(char *buf, size_t cap, const char *verb, const kvs_kube *k,
                    const kvs_kube_resource *res, const char *ns, const char *name,
                    const char *sub)
{
	if (!res || !res->resource) {
		snprintf(buf, cap, "%s", verb);
		return;
	}
	if (res->namespaced && !ns && k)
		ns = k->ns;
	if (!res->namespaced || !ns)
		ns = "";
	if (!name)
		snprintf(buf, cap, "%s %s%s%s", verb, res->resource, *ns ? " in " : "", ns);
	else
		snprintf(buf, cap, "%s %s %s%s%.300s%s%s", verb, res->resource, ns, *ns ? "/" : "",
		         name, sub ? "/" : "", sub ? sub : "");
}

int kvs_kube_get(cJSON **out, kvs_kube *k, const kvs_kube_resource *res, const char *ns,
                 const char *name, const kvs_kube_get_options *opts, kvs_kube_status *status)
{
	kvs_kube_get_options o = KVS_KUBE_GET_OPTIONS_INIT;
	kvs_kube_request rq = KVS_KUBE_REQUEST_INIT;
	char what[400];
	int rc;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "kvs_kube_get: out is NULL");
	*out = NULL;
	if ((rc = KVS__OPTS(&o, opts, kube_get)) < 0)
		return rc;
	what_of(what, sizeof(what), "get", k, res, ns, name ? name : "", o.subresource);
	rq.verb = KVS_KUBE_VERB_GET;
	rq.resource = res;
	rq.ns = ns;
	rq.name = name;
	rq.subresource = o.subresource;
	rq.accept = o.metadata_only ? ACCEPT_POM : NULL;
	rq.what = what;
	return run_one(out, k, &rq, status);
}

void kvs_kube_page_free(kvs_kube_page *p)
{
	if (!p)
		return;
	cJSON_Delete(p->doc);
	free(p);
}

static int list_query(char **q, const kvs_kube_list_options *o)
{
	char num[32];
	int rc = 0;

	*q = NULL;
	if (o->label_selector && *o->label_selector)
		rc = add_query(q, "labelSelector", o->label_selector);
	if (rc == 0 && o->field_selector && *o->field_selector)
		rc = add_query(q, "fieldSelector", o->field_selector);
	if (rc == 0 && o->limit) {
		snprintf(num, sizeof(num), "%zu", o->limit);
		rc = add_query(q, "limit", num);
	}
	if (rc == 0 && o->continue_token && *o->continue_token)
		rc = add_query(q, "continue", o->continue_token);
	if (rc == 0 && o->resource_version && *o->resource_version)
		rc = add_query(q, "resourceVersion", o->resource_version);
	if (rc == 0 && o->resource_version_match && *o->resource_version_match)
		rc = add_query(q, "resourceVersionMatch", o->resource_version_match);
	return rc;
}

static const char *meta_string(const cJSON *obj, const char *key)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *v = cJSON_IsObject(m) ? cJSON_GetObjectItemCaseSensitive(m, key) : NULL;

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int kvs__kube_page_decode(kvs_kube_page **out, cJSON *doc, const char *what)
{
	kvs_kube_page *p = NULL;
	cJSON *items;
	const char *rv, *cont;
	int rc;

	*out = NULL;
	items = cJSON_GetObjectItemCaseSensitive(doc, "items");
	rv = meta_string(doc, "resourceVersion");
	cont = meta_string(doc, "continue");
	if (items && !cJSON_IsArray(items) && !cJSON_IsNull(items)) {
		rc = kvs_error_set(KVS_ECORRUPT, "malformed response to %s: items is not an array",
		                   what);
		goto fail;
	}
	if ((rv && strlen(rv) >= KVS_VER_MAX) || (cont && strlen(cont) > MAX_CONTINUE)) {
		rc = kvs_error_set(KVS_ECORRUPT,
		                   "malformed response to %s: metadata.resourceVersion or continue "
		                   "too long", what);
		goto fail;
	}
	if (!cJSON_IsArray(items)) {
		cJSON_DeleteItemFromObjectCaseSensitive(doc, "items");
		if (!(items = cJSON_AddArrayToObject(doc, "items"))) {
			rc = nomem();
			goto fail;
		}
	}
	if (!(p = calloc(1, sizeof(*p)))) {
		rc = nomem();
		goto fail;
	}
	p->doc = doc;
	p->items = items;
	p->count = (size_t)cJSON_GetArraySize(items);
	p->resource_version = rv ? rv : "";
	p->continue_token = cont && *cont ? cont : NULL;
	*out = p;
	return 0;
fail:
	cJSON_Delete(doc);
	return rc;
}

int kvs_kube_list(kvs_kube_page **out, kvs_kube *k, const kvs_kube_resource *res,
                  const char *ns, const kvs_kube_list_options *opts, kvs_kube_status *status)
{
	kvs_kube_list_options o = KVS_KUBE_LIST_OPTIONS_INIT;
	kvs_kube_request rq = KVS_KUBE_REQUEST_INIT;
	cJSON *doc = NULL;
	char what[400], *query = NULL;
	int rc;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "kvs_kube_list: out is NULL");
	*out = NULL;
	if ((rc = KVS__OPTS(&o, opts, kube_list)) < 0)
		return rc;
	what_of(what, sizeof(what), "list", k, res, ns, NULL, NULL);
	if ((rc = list_query(&query, &o)) < 0)
		return rc;
	rq.verb = KVS_KUBE_VERB_LIST;
	rq.resource = res;
	rq.ns = ns;
	rq.query = query;
	rq.accept = o.metadata_only ? ACCEPT_POML : NULL;
	rq.max_response = KVS__KUBE_MAX_LIST;
	rq.what = what;
	rc = run_one(&doc, k, &rq, status);
	free(query);
	if (rc < 0)
		return rc;
	return kvs__kube_page_decode(out, doc, what);
}

static int write_obj(cJSON **out, kvs_kube *k, const kvs_kube_resource *res, const char *ns,
                     const cJSON *obj, kvs_kube_verb verb, const char *sub,
                     kvs_kube_status *status)
{
	kvs_kube_request rq = KVS_KUBE_REQUEST_INIT;
	const char *verb_name = verb == KVS_KUBE_VERB_CREATE ? "create"
	                        : sub ? "update status of" : "update";
	const char *name = NULL;
	char what[400], *body;
	int rc;

	if (out)
		*out = NULL;
	if (!cJSON_IsObject(obj))
		return kvs_error_set(KVS_EINVAL, "%s %s: the object is not a JSON object", verb_name,
		                     res && res->resource ? res->resource : "?");
	name = meta_string(obj, "name");
	if (verb != KVS_KUBE_VERB_CREATE && !name)
		return kvs_error_set(KVS_EINVAL, "%s %s: the object has no metadata.name", verb_name,
		                     res && res->resource ? res->resource : "?");
	what_of(what, sizeof(what), verb_name, k, res, ns,
	        name ? name : meta_string(obj, "generateName"), NULL);
	if (!(body = cJSON_PrintUnformatted(obj)))
		return nomem();
	rq.verb = verb;
	rq.resource = res;
	rq.ns = ns;
	rq.name = verb == KVS_KUBE_VERB_CREATE ? NULL : name;
	rq.subresource = sub;
	rq.body = body;
	rq.body_len = strlen(body);
	rq.what = what;
	rc = run_one(out, k, &rq, status);
	free(body);
	return rc;
}

int kvs_kube_create(cJSON **out, kvs_kube *k, const kvs_kube_resource *res, const char *ns,
                    const cJSON *obj, kvs_kube_status *status)
{
	return write_obj(out, k, res, ns, obj, KVS_KUBE_VERB_CREATE, NULL, status);
}

int kvs_kube_update(cJSON **out, kvs_kube *k, const kvs_kube_resource *res, const char *ns,
                    const cJSON *obj, kvs_kube_status *status)
{
	return write_obj(out, k, res, ns, obj, KVS_KUBE_VERB_UPDATE, NULL, status);
}

int kvs_kube_update_status(cJSON **out, kvs_kube *k, const kvs_kube_resource *res,
                           const char *ns, const cJSON *obj, kvs_kube_status *status)
{
	return write_obj(out, k, res, ns, obj, KVS_KUBE_VERB_UPDATE, "status", status);
}

int kvs_kube_patch(cJSON **out, kvs_kube *k, const kvs_kube_resource *res, const char *ns,
                   const char *name, kvs_kube_patch_type type, const cJSON *patch,
                   const kvs_kube_patch_options *opts, kvs_kube_status *status)
{
	kvs_kube_patch_options o = KVS_KUBE_PATCH_OPTIONS_INIT;
	kvs_kube_request rq = KVS_KUBE_REQUEST_INIT;
	const char *sub;
	char what[400], *body;
	int rc;

	if (out)
		*out = NULL;
	if ((rc = KVS__OPTS(&o, opts, kube_patch)) < 0)
		return rc;
	sub = o.subresource;
	what_of(what, sizeof(what), "patch", k, res, ns, name ? name : "", sub);
	if (type == KVS_KUBE_PATCH_MERGE) {
		if (!cJSON_IsObject(patch))
			return kvs_error_set(KVS_EINVAL, "%s: a merge patch is a JSON object", what);
		rq.content_type = "application/merge-patch+json";
	} else if (type == KVS_KUBE_PATCH_JSON) {
		if (!cJSON_IsArray(patch))
			return kvs_error_set(KVS_EINVAL, "%s: a JSON patch is an array of operations",
			                     what);
		rq.content_type = "application/json-patch+json";
	} else {
		return kvs_error_set(KVS_EINVAL, "%s: unknown patch type %d", what, (int)type);
	}
	if (!(body = cJSON_PrintUnformatted(patch)))
		return nomem();
	rq.verb = KVS_KUBE_VERB_PATCH;
	rq.resource = res;
	rq.ns = ns;
	rq.name = name;
	rq.subresource = sub;
	rq.body = body;
	rq.body_len = strlen(body);
	rq.what = what;
	rc = run_one(out, k, &rq, status);
	free(body);
	return rc;
}

int kvs_kube_delete(cJSON **out, kvs_kube *k, const kvs_kube_resource *res, const char *ns,
                    const char *name, const kvs_kube_delete_options *opts,
                    kvs_kube_status *status)
{
	kvs_kube_delete_options d = KVS_KUBE_DELETE_OPTIONS_INIT;
	kvs_kube_request rq = KVS_KUBE_REQUEST_INIT;
	cJSON *o = NULL, *pre;
	char what[400], *body = NULL;
	int rc;

	if (out)
		*out = NULL;
	if ((rc = KVS__OPTS(&d, opts, kube_delete)) < 0)
		return rc;
	what_of(what, sizeof(what), "delete", k, res, ns, name ? name : "", NULL);
	if ((d.resource_version && *d.resource_version) || (d.uid && *d.uid) ||
	    d.propagation_policy || d.grace_period_s >= 0) {
		if (!(o = cJSON_CreateObject()) || !cJSON_AddStringToObject(o, "kind", "DeleteOptions") ||
		    !cJSON_AddStringToObject(o, "apiVersion", "v1"))
			goto nomem;
		if ((d.resource_version && *d.resource_version) || (d.uid && *d.uid)) {
			if (!(pre = cJSON_AddObjectToObject(o, "preconditions")))
				goto nomem;
			if (d.resource_version && *d.resource_version &&
			    !cJSON_AddStringToObject(pre, "resourceVersion", d.resource_version))
				goto nomem;
			if (d.uid && *d.uid && !cJSON_AddStringToObject(pre, "uid", d.uid))
				goto nomem;
		}
		if (d.propagation_policy &&
		    !cJSON_AddStringToObject(o, "propagationPolicy", d.propagation_policy))
			goto nomem;
		if (d.grace_period_s >= 0 &&
		    !cJSON_AddNumberToObject(o, "gracePeriodSeconds", (double)d.grace_period_s))
			goto nomem;
		if (!(body = cJSON_PrintUnformatted(o)))
			goto nomem;
		cJSON_Delete(o);
		o = NULL;
	}
	rq.verb = KVS_KUBE_VERB_DELETE;
	rq.resource = res;
	rq.ns = ns;
	rq.name = name;
	rq.body = body;
	rq.body_len = body ? strlen(body) : 0;
	rq.what = what;
	rc = run_one(out, k, &rq, status);
	free(body);
	return rc;
nomem:
	cJSON_Delete(o);
	return nomem();
}

/* ------------------------------------------------------------------------ */
/* watch                                                                    */

struct kvs_kube_watch {
	kvs_kube *k;
	kvs__http_stream *s;
	int dead;               /* sticky error once the stream failed */
	kvs_kube_status last;   /* what ended it */
	char what[400];
};

/* client-go style: a watch asks the server to end it after a random 5–10
 * minutes, so long-lived watches are spread over API server replicas. */
static unsigned watch_timeout_s(void)
{
	return 300u + (unsigned)(kvs__kube_mono_ms() % 300);
}

void kvs_kube_event_clear(kvs_kube_event *ev)
{
	if (!ev)
		return;
	cJSON_Delete(ev->object);
	ev->object = NULL;
	ev->type = (kvs_kube_event_type)0;
	ev->resource_version = NULL;
}

int kvs_kube_watch_open(kvs_kube_watch **out, kvs_kube *k, const kvs_kube_resource *res,
                        const char *ns, const kvs_kube_watch_options *opts,
                        kvs_kube_status *status)
{
	kvs_kube_watch_options o = KVS_KUBE_WATCH_OPTIONS_INIT;
	kvs_kube_status st;
	struct kvs_kube_watch *w = NULL;
	const char *rns;
	char *query = NULL, *path = NULL, *errbody = NULL, num[32];
	size_t errlen = 0;
	long http = 0;
	int rc;

	status_reset(&st);
	if (!out || !k)
		return kvs_error_set(KVS_EINVAL, "kvs_kube_watch_open: NULL argument");
	*out = NULL;
	if ((rc = KVS__OPTS(&o, opts, kube_watch)) < 0)
		return rc;
	if (!res || bad_segment(res->group, 1) || bad_segment(res->version, 0) ||
	    bad_segment(res->resource, 0))
		return kvs_error_set(KVS_EINVAL, "kvs_kube_watch_open: bad resource descriptor");
	if ((rc = resolve_ns(&rns, k, res, ns, 1)) < 0)
		return rc;
	if (!(w = calloc(1, sizeof(*w))))
		return nomem();
	w->k = k;
	snprintf(w->what, sizeof(w->what), "watch %s%s%s from rv \"%.64s\"", res->resource,
	         *rns ? " in " : "", rns, o.resource_version ? o.resource_version : "");
	snprintf(num, sizeof(num), "%u", o.timeout_s ? o.timeout_s : watch_timeout_s());
	if ((rc = add_query(&query, "watch", "1")) < 0 ||
	    (o.allow_bookmarks && (rc = add_query(&query, "allowWatchBookmarks", "true")) < 0) ||
	    (o.resource_version && *o.resource_version &&
	     (rc = add_query(&query, "resourceVersion", o.resource_version)) < 0) ||
	    (o.label_selector && *o.label_selector &&
	     (rc = add_query(&query, "labelSelector", o.label_selector)) < 0) ||
	    (o.field_selector && *o.field_selector &&
	     (rc = add_query(&query, "fieldSelector", o.field_selector)) < 0) ||
	    (rc = add_query(&query, "timeoutSeconds", num)) < 0 ||
	    (rc = build_path(&path, res, rns, NULL, NULL, query)) < 0)
		goto out;
	rc = kvs__http_stream_open(&w->s, k->http, path, o.metadata_only ? ACCEPT_POM : NULL,
	                           KVS__KUBE_MAX_EVENT, &http, &errbody, &errlen);
	st.http = http;
	st.attempts = 1;
	if (rc == 0 && http != 200) {
		kvs__kube_status ks;

		kvs__kube_status_parse(&ks, errbody, errlen);
		status_from_kube(&st, &ks);
		rc = unauthorized(kvs__kube_http_error(http, errbody, errlen, w->what, rns, 0), http,
		                  k->http);
	}
out:
	status_out(status, &st);
	free(errbody);
	free(path);
	free(query);
	if (rc < 0) {
		kvs_kube_watch_close(w);
		return rc;
	}
	*out = w;
	return 0;
}

int kvs__kube_watch_decode(kvs_kube_event *out, kvs_kube_status *last, const char *what,
                           const char *line, size_t len)
{
	const cJSON *type, *obj;
	cJSON *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!(root = kvs__json_parse(line, len, KVS__KUBE_MAX_EVENT, what, &rc)))
		return rc;
	type = cJSON_GetObjectItemCaseSensitive(root, "type");
	obj = cJSON_GetObjectItemCaseSensitive(root, "object");
	if (!cJSON_IsString(type) || !cJSON_IsObject(obj)) {
		rc = kvs_error_set(KVS_ECORRUPT, "malformed response to %s: watch event without type "
		                   "or object", what);
		goto fail;
	}
	if (strcmp(type->valuestring, "ERROR") == 0) {
		kvs__kube_status ks;

		kvs__kube_status_from_json(&ks, obj);
		status_reset(last);
		status_from_kube(last, &ks);
		rc = kvs__kube_status_code(&ks, ks.code);
		if (rc == KVS_ERROR && ks.code == 0)
			rc = KVS_EIO;
		rc = kvs_error_set(rc, "%s: watch ERROR %d %s: %s", what, ks.code,
		                   ks.reason[0] ? ks.reason : "(no reason)", ks.message);
		goto fail;
	}
	if (strcmp(type->valuestring, "ADDED") == 0)
		out->type = KVS_KUBE_ADDED;
	else if (strcmp(type->valuestring, "MODIFIED") == 0)
		out->type = KVS_KUBE_MODIFIED;
	else if (strcmp(type->valuestring, "DELETED") == 0)
		out->type = KVS_KUBE_DELETED;
	else if (strcmp(type->valuestring, "BOOKMARK") == 0)
		out->type = KVS_KUBE_BOOKMARK;
	else {
		rc = kvs_error_set(KVS_ECORRUPT, "malformed response to %s: unknown watch event type "
		                   "\"%.32s\"", what, type->valuestring);
		goto fail;
	}
	out->resource_version = meta_string(obj, "resourceVersion");
	if (out->resource_version && strlen(out->resource_version) >= KVS_VER_MAX) {
		rc = kvs_error_set(KVS_ECORRUPT, "malformed response to %s: resourceVersion longer "
		                   "than %d bytes", what, KVS_VER_MAX - 1);
		goto fail;
	}
	/* a bookmark's revision is where the next watch resumes: "" would
	 * resume "from now" and skip events silently */
	if (out->type == KVS_KUBE_BOOKMARK && (!out->resource_version || !*out->resource_version)) {
		rc = kvs_error_set(KVS_ECORRUPT, "malformed response to %s: BOOKMARK without "
		                   "metadata.resourceVersion", what);
		goto fail;
	}
	if (!out->resource_version)
		out->resource_version = "";
	out->object = cJSON_DetachItemViaPointer(root, (cJSON *)obj);
	cJSON_Delete(root);
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	cJSON_Delete(root);
	return rc;
}

int kvs_kube_watch_next(kvs_kube_event *out, kvs_kube_watch *w, int timeout_ms,
                        kvs_kube_status *status)
{
	char *line = NULL;
	size_t len = 0;
	int rc;

	if (!out || !w)
		return kvs_error_set(KVS_EINVAL, "kvs_kube_watch_next: NULL argument");
	memset(out, 0, sizeof(*out));
	if (w->dead) {
		status_out(status, &w->last);
		return kvs_error_set(w->dead, "%s: the watch has ended; open a new one", w->what);
	}
	rc = kvs__http_stream_next(w->s, &line, &len, timeout_ms);
	if (rc == KVS_ETIMEOUT)
		return rc;
	if (rc < 0)
		goto dead;
	rc = kvs__kube_watch_decode(out, &w->last, w->what, line, len);
	free(line);
	if (rc == 0)
		return 0;
dead:
	memset(out, 0, sizeof(*out));
	if (w->last.http == 0 && w->last.code == 0)
		status_reset(&w->last);
	w->dead = rc == KVS_ENOMEM ? KVS_EIO : rc;
	status_out(status, &w->last);
	return rc;
}

void kvs_kube_watch_close(kvs_kube_watch *w)
{
	if (!w)
		return;
	kvs__http_stream_close(w->s);
	free(w);
}
