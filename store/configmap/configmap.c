/*
 * store/configmap/configmap.c — the Kubernetes backend: the vtable of
 * kvsplit/backend.h mapped onto ConfigMaps through the client of
 * kvsplit/kube.h.
 *
 * Mapping only: URLs, transfers, retries, the rate limit, the Status mapping
 * and the watch stream are the client's (kube/client.c). This file keeps
 * the ConfigMap encoders of kube/json.c (kvs_object <-> JSON, with the
 * ~1.4 MB base64 data strings written straight into the body) and hands the
 * bodies to the client as raw requests, so a batch of segment creates or
 * gets runs in parallel on one curl multi handle, each response decoded as
 * soon as it is in (kvs__kube_run_each) while the rest are in flight. Every
 * error detail names the verb, the object, the HTTP status, the reason and
 * the server's message (never a credential).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "kvsplit/kube.h"
#include "kube/client.h"
#include "kube/json.h"
#include "kube/proto.h"

#define KUBE_MAX_OBJECT_BYTES 1048576u
#define ACCEPT_POM "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
#define ACCEPT_POML \
	"application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"

typedef struct kube_backend {
	kvs_backend base;
	kvs_kube *kube;
	const char *ns;        /* the client's */
} kube_backend;

struct kvs_backend_watch {
	kvs_kube_watch *w;
	int dead;              /* sticky: an event that is not a ConfigMap ended it */
};

static const kvs_backend_ops kube_ops;

static void set_what(char *buf, size_t cap, const char *verb, const kube_backend *kb,
                     const char *name)
{
	snprintf(buf, cap, "%s configmap %s/%s", verb, kb->ns, name ? name : "");
}

static void req_init(kvs_kube_request *r, kvs_kube_verb verb, const char *name,
                     const char *what)
{
	kvs_kube_request init = KVS_KUBE_REQUEST_INIT;

	*r = init;
	r->verb = verb;
	r->resource = &kvs_kube_configmaps;
	r->name = name;
	r->what = what;
}

/* The requests on one named ConfigMap (everything but a list). */
typedef enum req_kind {
	REQ_GET = 0,
	REQ_HEAD,       /* metadata only: PartialObjectMetadata */
	REQ_CREATE,
	REQ_REPLACE,
	REQ_ANNOTATE,   /* merge patch of metadata.annotations */
	REQ_DELETE      /* with resourceVersion / uid preconditions */
} req_kind;

typedef struct req_in {
	req_kind kind;
	const char *name;            /* GET, HEAD, ANNOTATE, DELETE */
	const kvs_object *obj;       /* CREATE, REPLACE: the object (its name) */
	const kvs_kv *annotations;   /* ANNOTATE */
	size_t nannotations;
	const char *expect_rv;       /* DELETE */
	const char *expect_uid;
	int json;                    /* CREATE, REPLACE: a JSON body whatever the client prefers */
} req_in;

static const struct {
	const char *word;            /* the verb in error details */
	kvs_kube_verb verb;
} req_verbs[] = {
	[REQ_GET] = { "get", KVS_KUBE_VERB_GET },
	[REQ_HEAD] = { "get metadata of", KVS_KUBE_VERB_GET },
	[REQ_CREATE] = { "create", KVS_KUBE_VERB_CREATE },
	[REQ_REPLACE] = { "replace", KVS_KUBE_VERB_UPDATE },
	[REQ_ANNOTATE] = { "annotate", KVS_KUBE_VERB_PATCH },
	[REQ_DELETE] = { "delete", KVS_KUBE_VERB_DELETE },
};

/*
 * The one builder of a request on a named ConfigMap: names it for error
 * details (`what`, which *r borrows), checks the name, encodes the body
 * (*body, malloc'd or NULL: the caller frees it after the run, also when
 * this fails) and fills *r. 0, or the error of the name check or encoder.
 */
static int req_build(kvs_kube_request *r, char **body, char what[320], const kube_backend *kb,
                     const req_in *in)
{
	int replace = in->kind == REQ_REPLACE, rc = 0;
	const char *name = in->kind == REQ_CREATE || replace ? in->obj->name : in->name;
	/* read once: another thread may turn protobuf writes off meanwhile */
	int pb = (in->kind == REQ_CREATE || replace) && !in->json &&
	         kvs__kube_protobuf_writes(kb->kube);
	size_t blen = 0;

	*body = NULL;
	set_what(what, 320, req_verbs[in->kind].word, kb, name);
	if ((rc = kvs__kube_check_name(what, name)) < 0)
		return rc;
	switch (in->kind) {
	case REQ_CREATE:
	case REQ_REPLACE:
		if (pb)
			rc = kvs__kube_proto_body_object(body, &blen, in->obj, kb->ns, replace);
		else
			rc = kvs__kube_body_object(body, &blen, in->obj, kb->ns, replace);
		break;
	case REQ_ANNOTATE:
		rc = kvs__kube_body_annotate(body, &blen, in->annotations, in->nannotations);
		break;
	case REQ_DELETE:
		rc = kvs__kube_body_delete(body, &blen, in->expect_rv, in->expect_uid);
		break;
	case REQ_GET:
	case REQ_HEAD:
		break;
	}
	if (rc < 0)
		return rc;
	req_init(r, req_verbs[in->kind].verb, in->kind == REQ_CREATE ? NULL : name, what);
	r->body = *body;
	r->body_len = blen;
	if (pb) {
		/* binaryData raw, not base64: a quarter fewer bytes, no encoding */
		r->content_type = KVS__KUBE_PROTOBUF;
		r->accept = KVS__KUBE_ACCEPT_PROTOBUF;
	} else if (in->kind == REQ_HEAD)
		r->accept = ACCEPT_POM;
	else if (in->kind == REQ_GET && kvs__kube_protobuf(kb->kube))
		r->accept = KVS__KUBE_ACCEPT_PROTOBUF; /* binaryData raw, not base64 */
	else if (in->kind == REQ_ANNOTATE)
		r->content_type = "application/merge-patch+json";
	return 0;
}

/* A protobuf body answered 415 UnsupportedMediaType: the server (or this
 * resource) takes no protobuf body. Only 415, the answer of an API server
 * to a media type it does not decode: a 400 is its verdict on the object,
 * returned as it is (a server that reads every body as JSON, as the test
 * server did before protobuf bodies, answers 400 too: use json_only). */
static int unsupported_pb(const kvs_kube_request *r)
{
	return r->status.http == 415 && r->content_type &&
	       strcmp(r->content_type, KVS__KUBE_PROTOBUF) == 0;
}

/* The Content-Type of a response, kept for its decode. */
typedef char resp_type[128];

static void keep_type(kvs_kube_request *r, size_t i, const char *type, void *ctx)
{
	(void)r;
	(void)i;
	snprintf(*(resp_type *)ctx, sizeof(resp_type), "%s", type);
}

/* One request; the response is left in *r (result 0: a 2xx), its
 * Content-Type in *type. */
static int run1(kube_backend *kb, kvs_kube_request *r, resp_type *type)
{
	int rc;

	(*type)[0] = '\0';
	rc = kvs__kube_run_each(kb->kube, r, 1, keep_type, type);
	return rc < 0 ? rc : r->result;
}

/*
 * Build, run and decode one request: *out (may be NULL: not decoded) gets
 * the object of the response — whole for GET, its metadata otherwise (the
 * head rule in head_parse).
 */
static int head_parse(kvs_object **out, const kvs_kube_request *r, const char *type);

static int run_one(kube_backend *kb, kvs_object **out, const req_in *in0)
{
	kvs_kube_request r;
	char what[320], *body = NULL;
	req_in in1 = *in0;
	const req_in *in = &in1;
	resp_type type;
	int rc;

	if (out)
		*out = NULL;
	if ((rc = req_build(&r, &body, what, kb, in)) < 0) {
		free(body);
		return rc;
	}
	rc = run1(kb, &r, &type);
	if (rc < 0 && unsupported_pb(&r)) {
		/* the server takes no protobuf body here: this request again in
		 * JSON at once, and every write after it */
		kvs__kube_protobuf_writes_off(kb->kube);
		kvs_kube_request_clear(&r);
		free(body);
		in1.json = 1;
		if ((rc = req_build(&r, &body, what, kb, in)) < 0) {
			free(body);
			return rc;
		}
		rc = run1(kb, &r, &type);
	}
	if (rc == 0 && out) {
		if (in->kind == REQ_HEAD)
			rc = head_parse(out, &r, type);
		else if (in->kind == REQ_GET) /* a segment's binaryData stays in the body */
			rc = kvs__kube_object_decode_take(out, type, &r.response, r.response_len, 0, what);
		else
			rc = kvs__kube_object_decode(out, type, r.response, r.response_len,
			                             KVS__KJ_META_ONLY, what);
	}
	kvs_kube_request_clear(&r);
	free(body);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* vtable                                                                   */

static int kube_get(kvs_backend *b, kvs_object **out, const char *name)
{
	req_in in = { .kind = REQ_GET, .name = name };

	return run_one((kube_backend *)b, out, &in);
}

/* A GET of the metadata only (PartialObjectMetadata; a server that does not
 * serve it answers the ConfigMap, whose data is then skipped, not decoded).
 * `immutable` is a ConfigMap field, not metadata: PartialObjectMetadata does
 * not carry it, so a head reports -1 (unknown) unless it saw it true. */
static int head_parse(kvs_object **out, const kvs_kube_request *r, const char *type)
{
	int rc = kvs__kube_object_decode(out, type, r->response, r->response_len,
	                                 KVS__KJ_META_ONLY, r->what);

	if (rc == 0 && !(*out)->immutable)
		(*out)->immutable = -1;
	return rc;
}

static int kube_head(kvs_backend *b, kvs_object **out, const char *name)
{
	req_in in = { .kind = REQ_HEAD, .name = name };

	return run_one((kube_backend *)b, out, &in);
}

static int write_object(kube_backend *kb, kvs_object **out, const kvs_object *obj, int replace)
{
	req_in in = { .kind = replace ? REQ_REPLACE : REQ_CREATE, .obj = obj };

	if (out)
		*out = NULL;
	if (!obj)
		return kvs_error_set(KVS_EINVAL, "%s configmap: no object",
		                     replace ? "replace" : "create");
	return run_one(kb, out, &in);
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
	req_in in = { .kind = REQ_ANNOTATE, .name = name, .annotations = annotations,
	              .nannotations = n };

	return run_one((kube_backend *)b, out, &in);
}

static int kube_remove(kvs_backend *b, const char *name, const char *expect_rv,
                       const char *expect_uid)
{
	req_in in = { .kind = REQ_DELETE, .name = name, .expect_rv = expect_rv,
	              .expect_uid = expect_uid };

	return run_one((kube_backend *)b, NULL, &in);
}

/* Append "&key=<escaped value>" to a query string. */
static int add_query(char **q, const char *key, const char *value)
{
	char *esc = curl_easy_escape(NULL, value, 0), *nq;
	int w;

	if (!esc)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	w = asprintf(&nq, "%s%s%s=%s", *q ? *q : "", *q ? "&" : "", key, esc);
	curl_free(esc);
	if (w < 0)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	free(*q);
	*q = nq;
	return 0;
}

/* A list page goes through the raw path too: kube/json.c decodes the items
 * straight into kvs_objects (metadata-only pages without decoding data). */
static int kube_list(kvs_backend *b, kvs_object_list **out, const char *selector, size_t limit,
                     const char *token, unsigned int flags)
{
	kube_backend *kb = (kube_backend *)b;
	kvs_kube_request r;
	char what[320], num[32], *query = NULL;
	resp_type type;
	int rc = 0;

	*out = NULL;
	snprintf(what, sizeof(what), "list configmaps in %s%s%s", kb->ns,
	         selector && *selector ? " with selector " : "", selector ? selector : "");
	if (selector && *selector)
		rc = add_query(&query, "labelSelector", selector);
	if (rc == 0 && limit) {
		snprintf(num, sizeof(num), "%zu", limit);
		rc = add_query(&query, "limit", num);
	}
	if (rc == 0 && token && *token)
		rc = add_query(&query, "continue", token);
	if (rc < 0) {
		free(query);
		return rc;
	}
	req_init(&r, KVS_KUBE_VERB_LIST, NULL, what);
	r.query = query;
	if (flags & KVS_LIST_METADATA_ONLY)
		r.accept = ACCEPT_POML;
	if ((rc = run1(kb, &r, &type)) == 0)
		rc = kvs__kube_list_parse(out, r.response, r.response_len,
		                          (flags & KVS_LIST_METADATA_ONLY) ? KVS__KJ_META_ONLY : 0, what);
	kvs_kube_request_clear(&r);
	free(query);
	return rc;
}

static int kube_watch_open(kvs_backend *b, kvs_backend_watch **out, const char *selector,
                           const char *from_rv)
{
	kube_backend *kb = (kube_backend *)b;
	kvs_kube_watch_options o = KVS_KUBE_WATCH_OPTIONS_INIT;
	struct kvs_backend_watch *w;
	int rc;

	*out = NULL;
	if (!(w = calloc(1, sizeof(*w))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	o.label_selector = selector;
	o.resource_version = from_rv;
	if ((rc = kvs_kube_watch_open(&w->w, kb->kube, &kvs_kube_configmaps, NULL, &o, NULL)) < 0) {
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

static int kube_watch_next(kvs_backend_watch *w, kvs_event *out, int timeout_ms)
{
	kvs_kube_event ev;
	int rc;

	out->type = 0;
	out->object = NULL;
	if (w->dead)
		return kvs_error_set(w->dead, "watch configmaps: the watch has ended; open a new one");
	if ((rc = kvs_kube_watch_next(&ev, w->w, timeout_ms, NULL)) < 0)
		return rc;
	if (ev.type == KVS_KUBE_BOOKMARK) {
		if (!(out->object = kvs_object_new("")) ||
		    kvs_object_set_rv(out->object, ev.resource_version) < 0) {
			kvs_object_free(out->object);
			out->object = NULL;
			rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		}
	} else {
		rc = kvs__kube_object_from_json(&out->object, ev.object, 0, "watch configmaps");
	}
	if (rc == 0)
		out->type = ev.type == KVS_KUBE_ADDED      ? KVS_EVENT_ADDED
		            : ev.type == KVS_KUBE_MODIFIED ? KVS_EVENT_MODIFIED
		            : ev.type == KVS_KUBE_DELETED  ? KVS_EVENT_DELETED
		                                           : KVS_EVENT_BOOKMARK;
	else
		w->dead = rc == KVS_ENOMEM ? KVS_EIO : rc;
	kvs_kube_event_clear(&ev);
	return rc;
}

static void kube_watch_close(kvs_backend_watch *w)
{
	if (!w)
		return;
	kvs_kube_watch_close(w->w);
	free(w);
}

typedef struct batch_ctx {
	kvs_op *ops;
	const size_t *idx;
	unsigned char *again;   /* again[j]: a protobuf create met 415, send it in JSON */
	size_t nagain;
} batch_ctx;

/* One request of a batch is final: decode its answer into its op and drop
 * the body, while the others are still in flight. */
static void batch_done(kvs_kube_request *r, size_t j, const char *type, void *ctx)
{
	batch_ctx *c = ctx;
	kvs_op *op = &c->ops[c->idx[j]];

	if (r->result < 0 && unsupported_pb(r)) {
		c->again[j] = 1;
		c->nagain++;
	} else if (r->result < 0)
		kvs_op_result(op, kvs_error_set(r->result, "%s", r->detail));
	else if (op->kind == KVS_OP_HEAD)
		kvs_op_result(op, head_parse(&op->out, r, type));
	else if (op->kind == KVS_OP_GET)
		kvs_op_result(op, kvs__kube_object_decode_take(&op->out, type, &r->response,
		                                               r->response_len, 0, r->what));
	free(r->response);
	r->response = NULL;
	r->response_len = 0;
}

/* The creates of a batch that met 415 for their protobuf bodies, again in
 * JSON (and every write after them): rebuilt in place and run once more. */
static int batch_again(kube_backend *kb, kvs_kube_request *rs, char **bodies,
                       char (*whats)[320], batch_ctx *c, size_t m)
{
	kvs_kube_request *rs2;
	size_t *idx2, k = 0;
	int rc = 0;

	kvs__kube_protobuf_writes_off(kb->kube);
	if (!(rs2 = calloc(c->nagain, sizeof(*rs2))) || !(idx2 = calloc(c->nagain, sizeof(*idx2)))) {
		free(rs2);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	for (size_t j = 0; j < m; j++) {
		kvs_op *op = &c->ops[c->idx[j]];
		req_in in = { .kind = REQ_CREATE, .obj = op->in, .json = 1 };
		int brc;

		if (!c->again[j])
			continue;
		c->again[j] = 0;
		kvs_kube_request_clear(&rs[j]);
		free(bodies[j]);
		bodies[j] = NULL;
		brc = req_build(&rs2[k], &bodies[j], whats[j], kb, &in);
		if (brc == 0)
			rs2[k].accept = ACCEPT_POM;
		if (kvs_op_result(op, brc) < 0) {
			if (brc == KVS_ENOMEM)
				rc = brc;
			continue;
		}
		idx2[k++] = c->idx[j];
	}
	if (rc == 0) {
		batch_ctx c2 = { c->ops, idx2, c->again, 0 };

		rc = kvs__kube_run_each(kb->kube, rs2, k, batch_done, &c2);
	}
	for (size_t j = 0; j < k; j++)
		kvs_kube_request_clear(&rs2[j]);
	free(rs2);
	free(idx2);
	return rc;
}

/* Segment creates and gets in one run: up to `concurrency` in flight, each
 * with its own result, each decoded as soon as it is in. Ops that fail a
 * local check get their result here and are not sent. */
static int kube_batch(kvs_backend *b, kvs_op *ops, size_t n)
{
	kube_backend *kb = (kube_backend *)b;
	kvs_kube_request *rs = NULL;
	size_t *idx = NULL, m = 0;
	char **bodies = NULL, (*whats)[320] = NULL;
	unsigned char *again = NULL;
	int rc = 0;

	if (n == 0)
		return 0;
	if (!(rs = calloc(n, sizeof(*rs))) || !(idx = calloc(n, sizeof(*idx))) ||
	    !(bodies = calloc(n, sizeof(*bodies))) || !(whats = calloc(n, sizeof(*whats))) ||
	    !(again = calloc(n, 1))) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		kvs_op *op = &ops[i];
		req_in in = { .name = op->name, .obj = op->in };
		int brc;

		op->out = NULL;
		kvs_op_result(op, 0);
		switch (op->kind) {
		case KVS_OP_GET:
			in.kind = REQ_GET;
			break;
		case KVS_OP_HEAD:
			in.kind = REQ_HEAD;
			break;
		case KVS_OP_CREATE:
			in.kind = REQ_CREATE;
			if (!op->in) {
				kvs_op_result(op, kvs_error_set(KVS_EINVAL, "batch create: no object"));
				continue;
			}
			break;
		default:
			kvs_op_result(op, kvs_error_set(KVS_EINVAL, "batch: unknown operation kind %d",
			                                (int)op->kind));
			continue;
		}
		brc = req_build(&rs[m], &bodies[m], whats[m], kb, &in);
		/* a batch create's answer is not read: ask for its metadata only,
		 * not the ~1.4 MB of base64 the server would encode and send back
		 * (the transformation applies to every verb's response; a server
		 * without it answers with the object) */
		if (brc == 0 && in.kind == REQ_CREATE)
			rs[m].accept = ACCEPT_POM;
		if (kvs_op_result(op, brc) < 0) {
			free(bodies[m]);
			bodies[m] = NULL;
			if (brc == KVS_ENOMEM)
				rc = brc;
			continue;
		}
		idx[m++] = i;
	}
	if (rc == 0) {
		batch_ctx c = { ops, idx, again, 0 };

		rc = kvs__kube_run_each(kb->kube, rs, m, batch_done, &c);
		if (rc == 0 && c.nagain)
			rc = batch_again(kb, rs, bodies, whats, &c, m);
	}
out:
	for (size_t j = 0; rs && j < m; j++)
		kvs_kube_request_clear(&rs[j]);
	for (size_t j = 0; bodies && j < m; j++)
		free(bodies[j]);
	free(rs);
	free(idx);
	free(bodies);
	free(whats);
	free(again);
	return rc;
}

static int kube_now(kvs_backend *b, int64_t *out_ms)
{
	return kvs_kube_now(out_ms, ((kube_backend *)b)->kube);
}

static void kube_free(kvs_backend *b)
{
	kube_backend *kb = (kube_backend *)b;

	if (!kb)
		return;
	kvs_kube_free(kb->kube);
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
	.head = kube_head,
};

/* ------------------------------------------------------------------------ */
/* public                                                                   */

int kvs_backend_kube(kvs_backend **out, const kvs_kube_options *opts)
{
	kube_backend *kb;
	int rc;

	if (!out)
		return kvs_error_set(KVS_EINVAL, "kvs_backend_kube: out is NULL");
	*out = NULL;
	if (!(kb = calloc(1, sizeof(*kb))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if ((rc = kvs_kube_open(&kb->kube, opts)) < 0) {
		free(kb);
		return rc;
	}
	kb->ns = kvs_kube_namespace(kb->kube);
	kb->base.ops = &kube_ops;
	kb->base.max_object_bytes = KUBE_MAX_OBJECT_BYTES;
	*out = &kb->base;
	return 0;
}

const char *kvs_backend_namespace(const kvs_backend *backend)
{
	if (!backend || backend->ops != &kube_ops)
		return NULL;
	return ((const kube_backend *)backend)->ns;
}

int kvs_backend_tls_insecure(const kvs_backend *backend)
{
	if (!backend || backend->ops != &kube_ops)
		return 0;
	return kvs_kube_tls_insecure(((const kube_backend *)backend)->kube);
}

/*
 * A list or a get in a namespace that does not exist is answered exactly as
 * in an empty one (an empty list, "configmaps not found"), so the only way
 * to tell is to ask for the namespace itself: one GET of a small object.
 */
int kvs_backend_namespace_check(kvs_backend *backend)
{
	kube_backend *kb = (kube_backend *)backend;
	cJSON *obj = NULL;
	int rc;

	if (!backend)
		return kvs_error_set(KVS_EINVAL, "kvs_backend_namespace_check: backend is NULL");
	if (backend->ops != &kube_ops)
		return kvs_error_set(KVS_EUNSUPPORTED, "the %s backend has no namespaces",
		                     backend->ops && backend->ops->name ? backend->ops->name : "this");
	rc = kvs_kube_get(&obj, kb->kube, &kvs_kube_namespaces, NULL, kb->ns, NULL, NULL);
	cJSON_Delete(obj);
	if (rc == KVS_ENOTFOUND)
		return kvs_error_set(KVS_ENOTFOUND, "namespace \"%s\" does not exist", kb->ns);
	return rc;
}
