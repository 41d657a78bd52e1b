/* HTTP side: routing, content negotiation, the verbs, watch streams, fault
 * injection and the /kapi control endpoints, on libmicrohttpd. */
#include "kapi.h"
#include "auth.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct config g_cfg;
struct faults g_faults;

/* ---- stats --------------------------------------------------------------- */

enum verb { V_GET, V_LIST, V_WATCH, V_CREATE, V_UPDATE, V_PATCH, V_DELETE, V_DELETECOLLECTION,
            V_OTHER, V_COUNT };
static const char *const verb_names[V_COUNT] = {"get", "list", "watch", "create", "update",
                                                "patch", "delete", "deletecollection", "other"};

static struct {
	uint64_t verbs[V_COUNT];
	uint64_t requests, bytes_in, bytes_out;
	uint64_t injected_latency, injected_fail, injected_throttle, injected_drop;
	uint64_t watches_open;
	uint64_t codes[6]; /* 1xx..5xx by first digit */
	uint64_t protobuf_responses, protobuf_status; /* all protobuf answers; of them, Status */
} st;

#define STAT_ADD(f, n) __atomic_add_fetch(&st.f, (n), __ATOMIC_RELAXED)
#define STAT_GET(f) __atomic_load_n(&st.f, __ATOMIC_RELAXED)

/* ---- per-request state --------------------------------------------------- */

struct request {
	struct buf body;
	bool too_large;
	bool proto;         /* the body was protobuf (read_body) */
	struct pb_body pb;  /* its binaryData bytes, in body */
};

enum fmt { FMT_PLAIN, FMT_POM, FMT_TABLE };

struct neg {
	enum fmt fmt;
	const char *meta_version; /* "v1" or "v1beta1" for Table/PartialObjectMetadata */
	bool proto;               /* plain object or list in protobuf (PROTO_CT) */
};

static const char JSON_CT[] = "application/json";

/* This request negotiated protobuf (a ConfigMap GET or list whose Accept
 * prefers it): its Status answers are protobuf too, whichever path sends them, as
 * the real server encodes errors with the negotiated serializer. Set by
 * api_handler for the request its thread is answering. */
static __thread bool tl_proto;

static void add_common_headers(struct MHD_Response *r, const char *ctype)
{
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, private");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
}

struct dropper {
	char *body;
	size_t len, cut;
};

static ssize_t drop_reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct dropper *d = cls;
	if (pos >= d->cut)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	size_t n = d->cut - (size_t)pos;
	if (n > max)
		n = max;
	memcpy(out, d->body + pos, n);
	return (ssize_t)n;
}

static void drop_free(void *cls)
{
	struct dropper *d = cls;
	free(d->body);
	free(d);
}

static bool decide(double rate)
{
	return rate > 0 && rng_unit() < rate;
}

/* Whether this response is to be dropped (--drop-rate). */
static bool drop_now(size_t len)
{
	double drop;
	pthread_mutex_lock(&g_store.lock);
	drop = g_faults.drop_rate;
	pthread_mutex_unlock(&g_store.lock);
	return len > 1 && decide(drop);
}

static enum MHD_Result queue_response(struct MHD_Connection *c, unsigned code, const char *ctype,
                                      struct MHD_Response *r, size_t len)
{
	add_common_headers(r, ctype);
	STAT_ADD(bytes_out, len);
	if (code >= 100 && code < 600)
		STAT_ADD(codes[code / 100], 1);
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

/* Queue a response; body (malloc) is consumed. A drop fault sends the headers
 * with the full Content-Length and half the body, then resets the connection,
 * after the request took effect, as a proxy or a crashing server would. */
static enum MHD_Result send_body_or_drop(struct MHD_Connection *c, unsigned code,
                                         const char *ctype, char *body, size_t len, bool drop)
{
	struct MHD_Response *r;
	if (drop) {
		STAT_ADD(injected_drop, 1);
		struct dropper *d = xmalloc(sizeof *d);
		d->body = body;
		d->len = len;
		d->cut = len / 2;
		r = MHD_create_response_from_callback(len, 64 * 1024, drop_reader, d, drop_free);
	} else {
		r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	}
	return queue_response(c, code, ctype, r, len);
}

static enum MHD_Result send_body(struct MHD_Connection *c, unsigned code, const char *ctype,
                                 char *body, size_t len, bool faults_apply)
{
	return send_body_or_drop(c, code, ctype, body, len, faults_apply && drop_now(len));
}

static void unref_objver(void *cls)
{
	objver_unref(cls);
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned code, cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return send_body(c, code, JSON_CT, s, strlen(s), true);
}

/* A Status's body in the request's representation: its JSON text, or
 * (tl_proto) its protobuf form. s->json is taken. */
static char *status_body(struct status *s, size_t *len, const char **ctype)
{
	char *body = s->json;
	s->json = NULL;
	if (tl_proto) {
		unsigned char *pb = proto_status(body, len);
		if (pb) {
			free(body);
			STAT_ADD(protobuf_responses, 1);
			STAT_ADD(protobuf_status, 1);
			*ctype = PROTO_CT;
			return (char *)pb;
		}
	}
	*len = strlen(body);
	*ctype = JSON_CT;
	return body;
}

static enum MHD_Result send_status(struct MHD_Connection *c, struct status *s)
{
	unsigned code = (unsigned)s->code;
	size_t len;
	const char *ct;
	char *body = status_body(s, &len, &ct);
	status_free(s);
	return send_body(c, code, ct, body, len, true);
}

static enum MHD_Result send_status_nofault(struct MHD_Connection *c, struct status *s,
                                           const char *hname, const char *hval)
{
	unsigned code = (unsigned)s->code;
	size_t len;
	const char *ct;
	char *body = status_body(s, &len, &ct);
	status_free(s);
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	add_common_headers(r, ct);
	if (hname)
		MHD_add_response_header(r, hname, hval);
	STAT_ADD(bytes_out, len);
	STAT_ADD(codes[code / 100], 1);
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static const char *arg(struct MHD_Connection *c, const char *k)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
}

static const char *hdr(struct MHD_Connection *c, const char *k)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, k);
}

static bool arg_true(struct MHD_Connection *c, const char *k)
{
	const char *v = arg(c, k);
	/* strconv.ParseBool; Python clients send "True" */
	return v && (!strcmp(v, "1") || !strcmp(v, "t") || !strcmp(v, "T") || !strcmp(v, "true") ||
	             !strcmp(v, "True") || !strcmp(v, "TRUE"));
}

/* Accept negotiation for the transformations kubectl and metadata clients
 * ask for: as=Table and as=PartialObjectMetadata(List) in meta.k8s.io v1 or
 * v1beta1, plain JSON, or (proto: the request can be answered so) plain
 * protobuf. The first servable type in the client's order wins; a type the
 * request cannot be answered in (protobuf of a Lease or a watch, say) is
 * passed over for the next. Returns false if nothing offered is servable. */
/* list: 0 single object, 1 list, 2 watch (either PartialObjectMetadata form). */
static bool negotiate_as(struct MHD_Connection *c, int list, bool proto, struct neg *out)
{
	const char *acc = hdr(c, MHD_HTTP_HEADER_ACCEPT);
	out->fmt = FMT_PLAIN;
	out->meta_version = "v1";
	out->proto = false;
	if (!acc || !*acc)
		return true;
	char *copy = xstrdup(acc), *save1 = NULL;
	bool ok = false;
	for (char *mt = strtok_r(copy, ",", &save1); mt && !ok; mt = strtok_r(NULL, ",", &save1)) {
		char *save2 = NULL;
		char *type = strtok_r(mt, ";", &save2);
		while (type && *type == ' ')
			type++;
		if (!type)
			continue;
		char *end = type + strlen(type);
		while (end > type && end[-1] == ' ')
			*--end = 0;
		if (strcasecmp(type, PROTO_CT) == 0) {
			/* plain protobuf only: no as=Table etc., no stream=watch */
			bool params = false;
			for (char *p = strtok_r(NULL, ";", &save2); p; p = strtok_r(NULL, ";", &save2)) {
				while (*p == ' ')
					p++;
				if (*p && strncmp(p, "q=", 2) != 0)
					params = true;
			}
			if (proto && !params) {
				out->proto = true;
				ok = true;
			}
			continue;
		}
		if (strcmp(type, "application/json") != 0 && strcmp(type, "*/*") != 0 &&
		    strcmp(type, "application/*") != 0)
			continue;
		const char *as = NULL, *g = NULL, *v = NULL;
		for (char *p = strtok_r(NULL, ";", &save2); p; p = strtok_r(NULL, ";", &save2)) {
			while (*p == ' ')
				p++;
			char *eq = strchr(p, '=');
			if (!eq)
				continue;
			*eq = 0;
			if (strcmp(p, "as") == 0)
				as = eq + 1;
			else if (strcmp(p, "g") == 0)
				g = eq + 1;
			else if (strcmp(p, "v") == 0)
				v = eq + 1;
		}
		if (!as) {
			out->fmt = FMT_PLAIN;
			ok = true;
			break;
		}
		if (!g || strcmp(g, "meta.k8s.io") != 0 || !v ||
		    (strcmp(v, "v1") != 0 && strcmp(v, "v1beta1") != 0))
			continue;
		if (strcmp(as, "Table") == 0) {
			out->fmt = FMT_TABLE;
		} else if ((list != 0 && strcmp(as, "PartialObjectMetadataList") == 0) ||
		           (list != 1 && strcmp(as, "PartialObjectMetadata") == 0)) {
			out->fmt = FMT_POM;
		} else {
			continue;
		}
		out->meta_version = strcmp(v, "v1") == 0 ? "v1" : "v1beta1";
		ok = true;
	}
	free(copy);
	return ok;
}

static bool negotiate(struct MHD_Connection *c, int list, struct neg *out)
{
	return negotiate_as(c, list, false, out);
}

/* The requests this server can answer in protobuf: GET of
 * /api/v1/namespaces/NS/configmaps/NAME (*list false), of
 * /api/v1/namespaces/NS/configmaps or /api/v1/configmaps (*list true),
 * not watches; POST of /api/v1/namespaces/NS/configmaps, PUT and PATCH of
 * /api/v1/namespaces/NS/configmaps/NAME (the written object). */
static bool proto_request(struct MHD_Connection *c, const char *url, const char *method,
                          bool *list)
{
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
	bool put = strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
	if (!(get || post || put) || (get && arg_true(c, "watch")))
		return false;
	if (!get) {
		/* the answers of a create (POST .../configmaps) or an update or
		 * patch (PUT, PATCH .../configmaps/NAME) */
		if (strncmp(url, "/api/v1/namespaces/", 19) != 0)
			return false;
		const char *e = strchr(url + 19, '/');
		if (!e || e == url + 19 || strncmp(e, "/configmaps", 11) != 0)
			return false;
		const char *nm = e + 11;
		*list = false;
		return post ? !*nm : nm[0] == '/' && nm[1] && !strchr(nm + 1, '/');
	}
	if (strcmp(url, "/api/v1/configmaps") == 0) {
		*list = true;
		return true;
	}
	if (strncmp(url, "/api/v1/namespaces/", 19) != 0)
		return false;
	const char *ns_end = strchr(url + 19, '/');
	if (!ns_end || ns_end == url + 19 || strncmp(ns_end, "/configmaps", 11) != 0)
		return false;
	const char *name = ns_end + 11;
	*list = !*name;
	return !*name || (name[0] == '/' && name[1] && !strchr(name + 1, '/'));
}

static const char *neg_ctype(const struct neg *n, bool list)
{
	if (n->fmt == FMT_TABLE)
		return strcmp(n->meta_version, "v1") == 0 ? "application/json;as=Table;v=v1;g=meta.k8s.io"
		                                          : "application/json;as=Table;v=v1beta1;g=meta.k8s.io";
	if (n->fmt == FMT_POM) {
		if (list)
			return strcmp(n->meta_version, "v1") == 0
			               ? "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
			               : "application/json;as=PartialObjectMetadataList;v=v1beta1;g=meta.k8s.io";
		return strcmp(n->meta_version, "v1") == 0
		               ? "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
		               : "application/json;as=PartialObjectMetadata;v=v1beta1;g=meta.k8s.io";
	}
	return JSON_CT;
}

/* ---- representations ----------------------------------------------------- */

static cJSON *pom_of(const struct objver *o, const char *mv)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "kind", "PartialObjectMetadata");
	char av[32];
	snprintf(av, sizeof av, "meta.k8s.io/%s", mv);
	cJSON_AddStringToObject(p, "apiVersion", av);
	cJSON_AddItemToObject(p, "metadata",
	                      cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(o->obj, "metadata"), 1));
	return p;
}

static void add_column(cJSON *cols, const char *name, const char *type, const char *format,
                       const char *desc)
{
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "name", name);
	cJSON_AddStringToObject(c, "type", type);
	cJSON_AddStringToObject(c, "format", format);
	cJSON_AddStringToObject(c, "description", desc);
	cJSON_AddNumberToObject(c, "priority", 0);
	cJSON_AddItemToArray(cols, c);
}

static const char NAME_DESC[] =
	"Name must be unique within a namespace. Is required when creating resources, although some "
	"resources may allow a client to request the generation of an appropriate name automatically. "
	"Name is primarily intended for creation idempotence and configuration definition. Cannot be "
	"updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
static const char AGE_DESC[] =
	"CreationTimestamp is a timestamp representing the server time when this object was created. "
	"It is not guaranteed to be set in happens-before order across separate operations. Clients "
	"may not set this value. It is represented in RFC3339 form and is in UTC.";

/* The server-side printing of pkg/printers/internalversion for the kinds
 * served here (kubectl get prints these columns). */
static cJSON *t_rows(cJSON *t)
{
	cJSON_AddArrayToObject(t, "rows");
	return t;
}

/* kubectl's pod STATUS column, short of the kubelet's reasons. */
static void pod_cells(const cJSON *pod, cJSON *cells)
{
	const cJSON *pst = cJSON_GetObjectItemCaseSensitive(pod, "status");
	const cJSON *cs = cJSON_GetObjectItemCaseSensitive(pst, "containerStatuses");
	int total = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(pod, "spec"), "containers")),
	    ready = 0, restarts = 0;
	const cJSON *c;
	cJSON_ArrayForEach(c, cs) {
		ready += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "ready"));
		const cJSON *rc = cJSON_GetObjectItemCaseSensitive(c, "restartCount");
		restarts += cJSON_IsNumber(rc) ? rc->valueint : 0;
	}
	char b[32];
	snprintf(b, sizeof b, "%d/%d", ready, total);
	cJSON_AddItemToArray(cells, cJSON_CreateString(b));
	const char *phase = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pst, "phase"));
	const char *reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pst, "reason"));
	if (obj_deleting(pod))
		reason = "Terminating";
	else if (phase && !strcmp(phase, "Succeeded"))
		reason = "Completed";
	cJSON_AddItemToArray(cells, cJSON_CreateString(reason ? reason : phase ? phase : ""));
	snprintf(b, sizeof b, "%d", restarts);
	cJSON_AddItemToArray(cells, cJSON_CreateString(b));
}

static cJSON *table_new(const struct resource *r, const char *mv)
{
	cJSON *t = cJSON_CreateObject();
	cJSON_AddStringToObject(t, "kind", "Table");
	char av[32];
	snprintf(av, sizeof av, "meta.k8s.io/%s", mv);
	cJSON_AddStringToObject(t, "apiVersion", av);
	cJSON_AddItemToObject(t, "metadata", cJSON_CreateObject());
	cJSON *cols = cJSON_AddArrayToObject(t, "columnDefinitions");
	add_column(cols, "Name", "string", "name", NAME_DESC);
	switch (r->type) {
	case RES_CONFIGMAP:
		add_column(cols, "Data", "integer", "", "Data contains the configuration data.");
		break;
	case RES_LEASE:
		add_column(cols, "Holder", "string", "", "HolderIdentity contains the identity of the holder of a current lease.");
		break;
	case RES_NAMESPACE:
		add_column(cols, "Status", "string", "", "The status of the namespace");
		break;
	case RES_POD:
		add_column(cols, "Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic.");
		add_column(cols, "Status", "string", "", "The aggregate status of the containers in this pod.");
		add_column(cols, "Restarts", "string", "", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.");
		break;
	case RES_CUSTOM:
		schema_columns(r, cols);
		return t_rows(t);
	case RES_EVENT:
		break;
	}
	add_column(cols, "Age", "string", "", AGE_DESC);
	cJSON_AddArrayToObject(t, "rows");
	return t;
}

static void table_row(cJSON *t, const struct objver *o, const char *mv, const char *include)
{
	cJSON *row = cJSON_CreateObject();
	cJSON *cells = cJSON_AddArrayToObject(row, "cells");
	cJSON_AddItemToArray(cells, cJSON_CreateString(o->name));
	switch (o->res->type) {
	case RES_CONFIGMAP: {
		int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o->obj, "data")) +
		        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o->obj, "binaryData"));
		cJSON_AddItemToArray(cells, cJSON_CreateNumber(n));
		break;
	}
	case RES_LEASE: {
		const char *h = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(o->obj, "spec"), "holderIdentity"));
		cJSON_AddItemToArray(cells, cJSON_CreateString(h ? h : ""));
		break;
	}
	case RES_NAMESPACE: {
		const char *ph = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(o->obj, "status"), "phase"));
		cJSON_AddItemToArray(cells, cJSON_CreateString(ph ? ph : "Active"));
		break;
	}
	case RES_POD:
		pod_cells(o->obj, cells);
		break;
	case RES_CUSTOM:
		schema_cells(o->res, o->obj, cells);
		goto obj;
	case RES_EVENT:
		break;
	}
	char age[32];
	human_duration(rfc3339_age(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		               cJSON_GetObjectItemCaseSensitive(o->obj, "metadata"), "creationTimestamp"))),
	               age);
	cJSON_AddItemToArray(cells, cJSON_CreateString(age));
obj:
	if (!include || strcmp(include, "Metadata") == 0)
		cJSON_AddItemToObject(row, "object", pom_of(o, mv));
	else if (strcmp(include, "Object") == 0)
		cJSON_AddItemToObject(row, "object", cJSON_Duplicate(o->obj, 1));
	cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(t, "rows"), row);
}

/* One object in the negotiated representation, appended to b. */
static void emit_object(struct buf *b, const struct objver *o, const struct neg *n,
                        const char *include)
{
	if (n->fmt == FMT_PLAIN) {
		buf_add(b, o->json, o->len);
		return;
	}
	cJSON *x;
	if (n->fmt == FMT_POM) {
		x = pom_of(o, n->meta_version);
	} else {
		x = table_new(o->res, n->meta_version);
		table_row(x, o, n->meta_version, include);
	}
	char *s = cJSON_PrintUnformatted(x);
	cJSON_Delete(x);
	buf_adds(b, s);
	free(s);
}

/* ---- continue tokens (the real format: base64 of {"v","rv","start"}) ----- */

static char *continue_token(uint64_t rv, const char *last_key)
{
	cJSON *k = cJSON_CreateString(last_key);
	char *ks = cJSON_PrintUnformatted(k);
	cJSON_Delete(k);
	/* start = last key + "\u0000": the next page starts strictly after it */
	ks[strlen(ks) - 1] = 0;
	char *j = xasprintf("{\"v\":\"meta.k8s.io/v1\",\"rv\":%llu,\"start\":%s\\u0000\"}",
	                    (unsigned long long)rv, ks);
	free(ks);
	char *t = b64_encode((const unsigned char *)j, strlen(j));
	free(j);
	/* base64.RawURLEncoding */
	char *w = t;
	for (char *p = t; *p; p++)
		if (*p != '=')
			*w++ = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	*w = 0;
	return t;
}

static int parse_continue(const char *tok, uint64_t *rv, char **start)
{
	size_t n, tl = strlen(tok);
	if (tl > 8192)
		return -1;
	char *std = xmalloc(tl + 4);
	for (size_t i = 0; i < tl; i++)
		std[i] = tok[i] == '-' ? '+' : tok[i] == '_' ? '/' : tok[i];
	while (tl % 4)
		std[tl++] = '=';
	std[tl] = 0;
	unsigned char *raw = b64_decode(std, &n);
	free(std);
	if (!raw)
		return -1;
	cJSON *j = cJSON_ParseWithLength((const char *)raw, n);
	free(raw);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "v");
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "rv");
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "start");
	int rc = -1;
	if (cJSON_IsString(v) && strcmp(v->valuestring, "meta.k8s.io/v1") == 0 && cJSON_IsNumber(r) &&
	    r->valuedouble >= 0 && cJSON_IsString(s)) {
		*rv = (uint64_t)r->valuedouble;
		*start = xstrdup(s->valuestring); /* cJSON stops at the \u0000 */
		rc = 0;
	}
	cJSON_Delete(j);
	return rc;
}

/* ---- discovery ------------------------------------------------------------ */

static cJSON *str_array(const char *const *v)
{
	cJSON *a = cJSON_CreateArray();
	for (; *v; v++)
		cJSON_AddItemToArray(a, cJSON_CreateString(*v));
	return a;
}

static cJSON *resource_list(const char *group, const char *version)
{
	static const char *const rw[] = {"create", "delete", "deletecollection", "get", "list",
	                                 "patch", "update", "watch", NULL};
	static const char *const ro[] = {"get", "list", "watch", NULL};
	cJSON *l = cJSON_CreateObject();
	cJSON_AddStringToObject(l, "kind", "APIResourceList");
	cJSON_AddStringToObject(l, "apiVersion", "v1");
	char *gv = *group ? xasprintf("%s/%s", group, version) : xstrdup(version);
	cJSON_AddStringToObject(l, "groupVersion", gv);
	free(gv);
	cJSON *rs = cJSON_AddArrayToObject(l, "resources");
	for (size_t i = 0; i < resource_count(); i++) {
		struct resource *r = g_store.res[i];
		if (!resource_served(r) || strcmp(r->group, group) != 0 || strcmp(r->version, version) != 0)
			continue;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", r->plural);
		cJSON_AddStringToObject(o, "singularName", r->singular);
		cJSON_AddBoolToObject(o, "namespaced", r->namespaced);
		cJSON_AddStringToObject(o, "kind", r->kind);
		cJSON_AddItemToObject(o, "verbs", str_array(r->readonly ? ro : rw));
		if (r->short_name) {
			const char *sn[] = {r->short_name, NULL};
			cJSON_AddItemToObject(o, "shortNames", str_array(sn));
		}
		cJSON_AddItemToArray(rs, o);
	}
	return l;
}

static cJSON *api_group(const char *group)
{
	cJSON *g = cJSON_CreateObject();
	cJSON_AddStringToObject(g, "name", group);
	cJSON *vs = cJSON_AddArrayToObject(g, "versions");
	const char *first = NULL;
	for (size_t i = 0; i < resource_count(); i++) {
		struct resource *r = g_store.res[i];
		if (!resource_served(r) || strcmp(r->group, group) != 0)
			continue;
		bool seen = false;
		for (size_t j = 0; j < i; j++)
			seen |= strcmp(g_store.res[j]->group, group) == 0 &&
			        strcmp(g_store.res[j]->version, r->version) == 0;
		if (seen)
			continue;
		cJSON *v = cJSON_CreateObject();
		cJSON_AddStringToObject(v, "groupVersion", r->api_version);
		cJSON_AddStringToObject(v, "version", r->version);
		cJSON_AddItemToArray(vs, v);
		if (!first)
			first = r->api_version;
	}
	if (!first)
		return g;
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "groupVersion", first);
	cJSON_AddStringToObject(p, "version", strchr(first, '/') + 1);
	cJSON_AddItemToObject(g, "preferredVersion", p);
	return g;
}

static bool group_known(const char *group)
{
	for (size_t i = 0; i < resource_count(); i++)
		if (*group && resource_served(g_store.res[i]) && strcmp(g_store.res[i]->group, group) == 0)
			return true;
	return false;
}

static enum MHD_Result discovery(struct MHD_Connection *c, char **seg, size_t n, bool *handled)
{
	*handled = true;
	if (n == 1 && strcmp(seg[0], "version") == 0) {
		cJSON *v = cJSON_CreateObject();
		cJSON_AddStringToObject(v, "major", "1");
		cJSON_AddStringToObject(v, "minor", "31");
		cJSON_AddStringToObject(v, "gitVersion", "v1.31.0-kapi");
		cJSON_AddStringToObject(v, "gitCommit", "0000000000000000000000000000000000000000");
		cJSON_AddStringToObject(v, "gitTreeState", "clean");
		cJSON_AddStringToObject(v, "buildDate", "2024-08-13T07:28:49Z");
		cJSON_AddStringToObject(v, "goVersion", "go1.22.5");
		cJSON_AddStringToObject(v, "compiler", "gc");
		cJSON_AddStringToObject(v, "platform", "linux/amd64");
		return send_json(c, 200, v);
	}
	if (n == 1 && strcmp(seg[0], "api") == 0) {
		cJSON *v = cJSON_CreateObject();
		cJSON_AddStringToObject(v, "kind", "APIVersions");
		const char *vs[] = {"v1", NULL};
		cJSON_AddItemToObject(v, "versions", str_array(vs));
		cJSON *a = cJSON_AddArrayToObject(v, "serverAddressByClientCIDRs");
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "clientCIDR", "0.0.0.0/0");
		char addr[64];
		snprintf(addr, sizeof addr, "127.0.0.1:%d", g_cfg.port);
		cJSON_AddStringToObject(e, "serverAddress", addr);
		cJSON_AddItemToArray(a, e);
		return send_json(c, 200, v);
	}
	if (n == 2 && strcmp(seg[0], "api") == 0 && strcmp(seg[1], "v1") == 0)
		return send_json(c, 200, resource_list("", "v1"));
	if (n == 1 && strcmp(seg[0], "apis") == 0) {
		cJSON *l = cJSON_CreateObject();
		cJSON_AddStringToObject(l, "kind", "APIGroupList");
		cJSON_AddStringToObject(l, "apiVersion", "v1");
		cJSON *gs = cJSON_AddArrayToObject(l, "groups");
		for (size_t i = 0; i < resource_count(); i++) {
			const char *g = g_store.res[i]->group;
			bool seen = !*g || !resource_served(g_store.res[i]);
			for (size_t j = 0; j < i; j++)
				seen |= resource_served(g_store.res[j]) && strcmp(g_store.res[j]->group, g) == 0;
			if (!seen)
				cJSON_AddItemToArray(gs, api_group(g));
		}
		return send_json(c, 200, l);
	}
	if (n == 2 && strcmp(seg[0], "apis") == 0 && group_known(seg[1])) {
		cJSON *g = api_group(seg[1]);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "kind", "APIGroup");
		cJSON_AddStringToObject(o, "apiVersion", "v1");
		while (g->child) {
			cJSON *x = cJSON_DetachItemViaPointer(g, g->child);
			cJSON_AddItemToObject(o, x->string, x);
		}
		cJSON_Delete(g);
		return send_json(c, 200, o);
	}
	if (n == 3 && strcmp(seg[0], "apis") == 0) {
		for (size_t i = 0; i < resource_count(); i++)
			if (resource_served(g_store.res[i]) && strcmp(g_store.res[i]->group, seg[1]) == 0 &&
			    strcmp(g_store.res[i]->version, seg[2]) == 0)
				return send_json(c, 200, resource_list(seg[1], seg[2]));
	}
	if (n == 1 && (strcmp(seg[0], "healthz") == 0 || strcmp(seg[0], "livez") == 0 ||
	               strcmp(seg[0], "readyz") == 0))
		return send_body(c, 200, "text/plain; charset=utf-8", xstrdup("ok"), 2, false);
	*handled = false;
	return MHD_NO;
}

/* ---- helpers for the verbs ------------------------------------------------ */

/* --forbid, replaced at run time by POST /kapi/faults {"forbid":[...]} */
static pthread_mutex_t forbid_lock = PTHREAD_MUTEX_INITIALIZER;

static bool forbidden(const struct resource *r, const char *verb)
{
	bool no = false;

	pthread_mutex_lock(&forbid_lock);
	for (size_t i = 0; i < g_cfg.nforbids && !no; i++) {
		const struct forbid *f = &g_cfg.forbids[i];
		if ((strcmp(f->verb, "*") == 0 || strcmp(f->verb, verb) == 0) &&
		    (strcmp(f->resource, "*") == 0 || strcmp(f->resource, r->plural) == 0 ||
		     strcmp(f->resource, r->qualified) == 0))
			no = true;
	}
	pthread_mutex_unlock(&forbid_lock);
	return no;
}

/* Replace the forbidden VERB:RESOURCE pairs (malformed entries are skipped). */
static void set_forbids(const cJSON *list)
{
	const cJSON *e;

	pthread_mutex_lock(&forbid_lock);
	for (size_t i = 0; i < g_cfg.nforbids; i++) {
		free(g_cfg.forbids[i].verb);
		free(g_cfg.forbids[i].resource);
	}
	free(g_cfg.forbids);
	g_cfg.forbids = NULL;
	g_cfg.nforbids = 0;
	cJSON_ArrayForEach(e, list) {
		const char *v = cJSON_IsString(e) ? e->valuestring : NULL;
		const char *colon = v ? strchr(v, ':') : NULL;
		if (!colon || colon == v || !colon[1])
			continue;
		g_cfg.forbids = xrealloc(g_cfg.forbids, (g_cfg.nforbids + 1) * sizeof *g_cfg.forbids);
		g_cfg.forbids[g_cfg.nforbids].verb = xasprintf("%.*s", (int)(colon - v), v);
		g_cfg.forbids[g_cfg.nforbids].resource = xstrdup(colon + 1);
		g_cfg.nforbids++;
	}
	pthread_mutex_unlock(&forbid_lock);
}

static struct resource *ns_resource(void)
{
	return resource_find("", "v1", "namespaces");
}

static cJSON *meta_of(cJSON *obj)
{
	cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	if (!cJSON_IsObject(m)) {
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "metadata");
		m = cJSON_AddObjectToObject(obj, "metadata");
	}
	return m;
}

static const char *meta_str(const cJSON *obj, const char *k)
{
	return cJSON_GetStringValue(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), k));
}

static void meta_set(cJSON *m, const char *k, const char *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(m, k);
	if (v)
		cJSON_AddStringToObject(m, k, v);
}

/* The body's tree; it may take the body's memory (rq->body is then empty). */
static struct status *parse_body(struct request *rq, cJSON **out)
{
	*out = NULL;
	if (rq->body.len == 0)
		return st_bad_request("the body of the request was empty");
	const char *end = NULL;
	cJSON *j = json_parse_body(&rq->body, &end);
	if (!j) {
		char *m = xasprintf("couldn't get version/kind; json parse error: invalid character near offset %zu",
		                    end ? (size_t)(end - rq->body.p) : 0);
		struct status *s = st_bad_request(m);
		free(m);
		return s;
	}
	*out = j;
	return NULL;
}

/* The Content-Type's media type, blanks around it and parameters left
 * out (as mime.ParseMediaType reads it): its start (after leading blanks,
 * so "" for an empty header) and length in *n; NULL without the header. */
static const char *media_type(struct MHD_Connection *c, size_t *n)
{
	const char *ct = hdr(c, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!ct)
		return NULL;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	*n = strcspn(ct, ";");
	while (*n && (ct[*n - 1] == ' ' || ct[*n - 1] == '\t'))
		(*n)--;
	return ct;
}

/* The media type is `want`, in any case. */
static bool media_is(const char *ct, size_t n, const char *want)
{
	return ct && n == strlen(want) && strncasecmp(ct, want, n) == 0;
}

/* The Content-Type's media type is protobuf (any case, parameters
 * ignored). */
static bool body_is_proto(struct MHD_Connection *c)
{
	size_t n = 0;
	const char *ct = media_type(c, &n);
	return media_is(ct, n, PROTO_CT);
}

/*
 * The Content-Type of a create or update body names a media type the API
 * server has a decoder for: none (then JSON, its first), JSON or YAML, in
 * any case and with any parameters (NegotiateInputSerializerForMediaType:
 * mime.ParseMediaType, then an exact match). Protobuf is read_body's. JSON
 * is YAML, so a YAML body is parsed as JSON here (one that is YAML but not
 * JSON gets the JSON parser's 400: a gap, docs/test-server.md).
 */
static bool body_type_known(struct MHD_Connection *c)
{
	size_t n = 0;
	const char *ct = media_type(c, &n);
	if (!ct || !ct[0])
		return true;   /* no header, or an empty one */
	return media_is(ct, n, "application/json") || media_is(ct, n, "application/yaml");
}

/* A create or update body as its tree: JSON, or for a ConfigMap (not a
 * subresource) protobuf too; a protobuf body to anything else is 415, as a
 * real server answers a media type it has no decoder for (it has one for
 * every built-in type: this server only for ConfigMaps), and so is any
 * media type that is none of them (text/plain, ...), in the API server's
 * words. */
static struct status *read_body(struct MHD_Connection *c, const struct resource *r, bool sub,
                                struct request *rq, cJSON **out)
{
	if (!body_is_proto(c) && !body_type_known(c)) {
		*out = NULL;
		return status_new(415, "UnsupportedMediaType",
		                  r->type == RES_CUSTOM
		                      ? "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml"
		                      : "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
		                  NULL);
	}
	if (!body_is_proto(c))
		return parse_body(rq, out);
	*out = NULL;
	if (r->type != RES_CONFIGMAP || sub) {
		struct status *s = status_new(415, "UnsupportedMediaType",
		                              "the body of the request was in an unknown format - accepted media types include: application/json (kapi-server takes protobuf bodies for ConfigMap create and update only)",
		                              NULL);
		return s;
	}
	struct status *s = proto_read_configmap((const unsigned char *)rq->body.p, rq->body.len, out,
	                                        &rq->pb);
	if (s)
		return s;
	rq->proto = true;
	tl_b64_made = cJSON_GetObjectItemCaseSensitive(*out, "binaryData");
	return NULL;
}

/* The answer to a write of a ConfigMap as to a GET: protobuf when the
 * Accept prefers it (made now from the body's bytes when the body was
 * protobuf and o is the version it wrote), else as negotiated before. */
static enum MHD_Result send_written(struct MHD_Connection *c, unsigned code, const struct resource *r,
                                    bool sub, struct objver *o, bool fresh, struct request *rq);

static struct status *check_kind(const struct resource *r, const cJSON *obj)
{
	if (!cJSON_IsObject(obj))
		return st_bad_request("Object 'Kind' is missing in the request body");
	const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "kind"));
	const char *av = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "apiVersion"));
	if (r->type == RES_CUSTOM && !r->crd && ((k && *k && strcmp(k, r->kind) != 0) ||
	                                         (av && *av && strcmp(av, r->api_version) != 0))) {
		/* the custom resource validator's words */
		struct ferrs fe = {0};
		char *b;
		const char *name = meta_str(obj, "name");
		if (k && *k && strcmp(k, r->kind) != 0) {
			b = xasprintf("Invalid value: \"%s\": must be %s", k, r->kind);
			ferr_add(&fe, "FieldValueInvalid", "kind", b);
			free(b);
		}
		if (av && *av && strcmp(av, r->api_version) != 0) {
			b = xasprintf("Invalid value: \"%s\": must be %s", av, r->api_version);
			ferr_add(&fe, "FieldValueInvalid", "apiVersion", b);
			free(b);
		}
		return st_invalid(r, name ? name : "", &fe);
	}
	if ((k && *k && strcmp(k, r->kind) != 0) || (av && *av && strcmp(av, r->api_version) != 0)) {
		char *m = xasprintf("the API version in the data (%s) does not match the expected API version (%s)",
		                    av ? av : "", r->api_version);
		if (k && strcmp(k, r->kind) != 0) {
			free(m);
			m = xasprintf("%s in version \"%s\" cannot be handled as a %s: no kind \"%s\" is registered for version \"%s\"",
			              r->kind, r->version, r->kind, k, av ? av : "");
		}
		struct status *s = st_bad_request(m);
		free(m);
		return s;
	}
	return NULL;
}

static char *gen_name(const char *prefix)
{
	static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
	char suf[6];
	for (int i = 0; i < 5; i++)
		suf[i] = alphabet[rng_next() % (sizeof alphabet - 1)];
	suf[5] = 0;
	return xasprintf("%s%s", prefix, suf);
}

/* Copy the object's serialized form for a response, with a reference held. */
static enum MHD_Result send_objver(struct MHD_Connection *c, unsigned code, struct objver *o,
                                   const struct neg *n)
{
	if (n->proto) {
		/* the version's protobuf form (made by the caller's objver_pb):
		 * sent as it is, no copy */
		STAT_ADD(protobuf_responses, 1);
		if (!drop_now(o->pb_len)) {
			struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(
				o->pb_len, (char *)o->pb, unref_objver, o);
			return queue_response(c, code, PROTO_CT, r, o->pb_len);
		}
		char *s = xmalloc(o->pb_len);
		memcpy(s, o->pb, o->pb_len);
		size_t len = o->pb_len;
		objver_unref(o);
		return send_body_or_drop(c, code, PROTO_CT, s, len, true);
	}
	bool drop = drop_now(o->len);
	if (n->fmt == FMT_PLAIN && !drop) {
		/* the stored text itself, not a copy: the version is immutable and
		 * referenced until the response is done with it */
		struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(
			o->len, o->json, unref_objver, o);
		return queue_response(c, code, neg_ctype(n, false), r, o->len);
	}
	struct buf b = {0};
	emit_object(&b, o, n, arg(c, "includeObject"));
	objver_unref(o);
	size_t len;
	char *s = buf_take(&b, &len);
	return send_body_or_drop(c, code, neg_ctype(n, false), s, len, drop);
}

static enum MHD_Result send_written(struct MHD_Connection *c, unsigned code, const struct resource *r,
                                    bool sub, struct objver *o, bool fresh, struct request *rq)
{
	struct neg n;
	if (rq->proto && fresh)
		objver_pb_from(o, &rq->pb); /* cheap: a copy of the bytes, while they are at hand */
	if (!negotiate_as(c, 0, r->type == RES_CONFIGMAP && !sub, &n) || (n.proto && !objver_pb(o))) {
		tl_proto = false;
		negotiate(c, 0, &n);
	}
	return send_objver(c, code, o, &n);
}

static struct status *ns_missing(const char *ns)
{
	struct resource *nr = ns_resource();
	return st_not_found(nr, ns);
}

static bool ns_exists_locked(const char *ns)
{
	return store_get_locked(ns_resource(), "", ns) != NULL;
}

/*
 * managedFields, as far as clients can see them: one entry per field
 * manager (operation Update), whose time is stamped whenever a write of that
 * manager changes the object; fieldsV1 is kept empty (no ownership of
 * fields is tracked). The manager is the request's fieldManager parameter,
 * else its User-Agent up to the first '/', as the real server names it.
 */
static __thread char t_manager[129];

static void set_manager(struct MHD_Connection *c)
{
	const char *m = arg(c, "fieldManager"), *ua = hdr(c, MHD_HTTP_HEADER_USER_AGENT);
	size_t n;

	if (m && *m) {
		snprintf(t_manager, sizeof t_manager, "%s", m);
		return;
	}
	n = ua ? strcspn(ua, "/") : 0;
	if (n >= sizeof t_manager)
		n = sizeof t_manager - 1;
	if (n == 0) {
		snprintf(t_manager, sizeof t_manager, "unknown");
		return;
	}
	memcpy(t_manager, ua, n);
	t_manager[n] = '\0';
}

static void stamp_managed(cJSON *obj)
{
	cJSON *m = meta_of(obj), *mf = cJSON_GetObjectItemCaseSensitive(m, "managedFields"), *e;
	const char *av = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "apiVersion"));
	char ts[32];

	now_rfc3339(ts);
	if (!cJSON_IsArray(mf)) {
		cJSON_DeleteItemFromObjectCaseSensitive(m, "managedFields");
		mf = cJSON_AddArrayToObject(m, "managedFields");
	}
	cJSON_ArrayForEach(e, mf) {
		const char *em = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "manager"));
		if (em && !strcmp(em, t_manager)) {
			cJSON_DeleteItemFromObjectCaseSensitive(e, "time");
			cJSON_AddStringToObject(e, "time", ts);
			return;
		}
	}
	e = cJSON_CreateObject();
	cJSON_AddStringToObject(e, "manager", t_manager);
	cJSON_AddStringToObject(e, "operation", "Update");
	cJSON_AddStringToObject(e, "apiVersion", av ? av : "v1");
	cJSON_AddStringToObject(e, "time", ts);
	cJSON_AddStringToObject(e, "fieldsType", "FieldsV1");
	cJSON_AddObjectToObject(e, "fieldsV1");
	cJSON_AddItemToArray(mf, e);
}

/* Fill server-owned metadata of a new object. */
static void stamp_new(struct resource *r, cJSON *obj, const char *ns, const char *name)
{
	cJSON *m = meta_of(obj);
	meta_set(m, "name", name);
	meta_set(m, "namespace", r->namespaced ? ns : NULL);
	char uid[37], ts[32];
	uuid_v4(uid);
	now_rfc3339(ts);
	meta_set(m, "uid", uid);
	meta_set(m, "creationTimestamp", ts);
	cJSON_DeleteItemFromObjectCaseSensitive(m, "deletionTimestamp");
	cJSON_DeleteItemFromObjectCaseSensitive(m, "deletionGracePeriodSeconds");
	cJSON_DeleteItemFromObjectCaseSensitive(m, "managedFields");
	cJSON_DeleteItemFromObjectCaseSensitive(m, "generation");
	if (r->type == RES_CUSTOM)
		cJSON_AddNumberToObject(m, "generation", 1);
	stamp_managed(obj);
}

/* ---- create --------------------------------------------------------------- */

/* dryRun: "All" or nothing (ValidateCreateOptions and its siblings). */
static struct status *dry_run(struct MHD_Connection *c, const cJSON *opts, const char *optkind,
                              bool *dry)
{
	const char *v = arg(c, "dryRun");
	const cJSON *dv = cJSON_GetObjectItemCaseSensitive(opts, "dryRun");
	if (!v && cJSON_IsArray(dv) && cJSON_GetArraySize(dv) == 1)
		v = cJSON_GetStringValue(cJSON_GetArrayItem(dv, 0));
	*dry = false;
	if (!v)
		return NULL;
	if (!strcmp(v, "All")) {
		*dry = true;
		return NULL;
	}
	char *qk = xasprintf("%s.meta.k8s.io", optkind);
	struct resource fake = {.group = (char *)"meta.k8s.io", .kind = (char *)optkind, .qkind = qk};
	struct ferrs fe = {0};
	char *b = xasprintf("Unsupported value: []string{\"%s\"}: supported values: \"All\"", v);
	ferr_add(&fe, "FieldValueNotSupported", "dryRun", b);
	free(b);
	struct status *s = st_invalid(&fake, "", &fe);
	free(qk);
	return s;
}

/* Everything the real server validates on a body of r, after defaulting. */
static struct status *validate_all(struct resource *r, cJSON *obj, const char *name,
                                   const char *ns, struct ferrs *fe)
{
	struct status *s = validate_object(r, obj, name, fe);
	if (s)
		return s;
	validate_meta(obj, r->type != RES_CUSTOM, fe);
	switch (r->type) {
	case RES_LEASE:
		return lease_times(r, obj, fe);
	case RES_POD:
		pod_validate(obj, fe);
		break;
	case RES_EVENT:
		event_validate(r, obj, ns, fe);
		break;
	case RES_CUSTOM:
		if (!r->crd)
			schema_apply(r, obj, fe);
		break;
	case RES_CONFIGMAP:
	case RES_NAMESPACE:
		break;
	}
	return NULL;
}

/* namespaceStrategy.PrepareForCreate, and the label the real server adds. */
static void ns_defaults(cJSON *obj, const char *name)
{
	cJSON *m = meta_of(obj);
	cJSON *l = cJSON_GetObjectItemCaseSensitive(m, "labels");
	if (!cJSON_IsObject(l)) {
		cJSON_DeleteItemFromObjectCaseSensitive(m, "labels");
		l = cJSON_AddObjectToObject(m, "labels");
	}
	cJSON_DeleteItemFromObjectCaseSensitive(l, "kubernetes.io/metadata.name");
	cJSON_AddStringToObject(l, "kubernetes.io/metadata.name", name);
	cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
	if (!cJSON_IsObject(spec)) {
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "spec");
		spec = cJSON_AddObjectToObject(obj, "spec");
	}
	cJSON *fin = cJSON_GetObjectItemCaseSensitive(spec, "finalizers");
	bool have = false;
	const cJSON *f;
	cJSON_ArrayForEach(f, fin)
		have |= cJSON_IsString(f) && !strcmp(f->valuestring, "kubernetes");
	if (!cJSON_IsArray(fin)) {
		cJSON_DeleteItemFromObjectCaseSensitive(spec, "finalizers");
		fin = cJSON_AddArrayToObject(spec, "finalizers");
	}
	if (!have)
		cJSON_AddItemToArray(fin, cJSON_CreateString("kubernetes"));
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(obj, "status"), "phase", "Active");
}

/* NamespaceLifecycle admission. */
static struct status *ns_terminating(const struct resource *r, const char *name, const char *ns)
{
	char *m = xasprintf("%s \"%s\" is forbidden: unable to create new content in namespace %s "
	                    "because it is being terminated", r->qualified, name, ns);
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "name", name);
	if (*r->group)
		cJSON_AddStringToObject(d, "group", r->group);
	cJSON_AddStringToObject(d, "kind", r->plural);
	cJSON *causes = cJSON_AddArrayToObject(d, "causes");
	cJSON *cause = cJSON_CreateObject();
	cJSON_AddStringToObject(cause, "reason", "NamespaceTerminating");
	char *cm = xasprintf("namespace %s is being terminated", ns);
	cJSON_AddStringToObject(cause, "message", cm);
	free(cm);
	cJSON_AddStringToObject(cause, "field", "metadata.namespace");
	cJSON_AddItemToArray(causes, cause);
	struct status *s = status_new(403, "Forbidden", m, d);
	free(m);
	return s;
}

static enum MHD_Result do_create(struct MHD_Connection *c, struct resource *r, const char *ns,
                                 struct request *rq)
{
	cJSON *obj;
	bool dry;
	set_manager(c);
	struct status *s = dry_run(c, NULL, "CreateOptions", &dry);
	if (!s)
		s = read_body(c, r, false, rq, &obj);
	else
		obj = NULL;
	if (!s)
		s = check_kind(r, obj);
	if (s) {
		cJSON_Delete(obj);
		return send_status(c, s);
	}
	const char *bns = meta_str(obj, "namespace");
	if (r->namespaced && bns && *bns && strcmp(bns, ns) != 0) {
		cJSON_Delete(obj);
		return send_status(c, st_bad_request("the namespace of the provided object does not match the namespace sent on the request"));
	}
	const char *rv = meta_str(obj, "resourceVersion");
	if (rv && *rv) {
		cJSON_Delete(obj);
		return send_status(c, status_new(500, NULL, "resourceVersion should not be set on objects to be created", NULL));
	}
	const char *gn = meta_str(obj, "generateName");
	const char *bname = meta_str(obj, "name");
	char *name = bname && *bname ? xstrdup(bname) : gn && *gn ? gen_name(gn) : xstrdup("");
	/* PrepareForCreate: status is the server's where there is a status subresource */
	if (r->status_sub)
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
	if (r->type == RES_POD)
		pod_defaults(obj);
	else if (r->type == RES_NAMESPACE)
		ns_defaults(obj, name);
	struct ferrs fe = {0};
	validate_name(r, bname && *bname ? bname : NULL, gn, &fe);
	if (!(bname && *bname) && gn && *gn)
		validate_name(r, name, NULL, &fe);
	s = validate_all(r, obj, name, ns, &fe);
	if (!s && fe.n)
		s = st_invalid(r, name, &fe);
	if (s) {
		cJSON_Delete(fe.causes);
		buf_free(&fe.msg);
		cJSON_Delete(obj);
		free(name);
		return send_status(c, s);
	}
	if (r->crd && (s = crd_validate(obj, name)) != NULL) {
		cJSON_Delete(obj);
		free(name);
		return send_status(c, s);
	}
	stamp_new(r, obj, ns, name);
	pthread_mutex_lock(&g_store.lock);
	if (r->namespaced && !ns_exists_locked(ns))
		s = ns_missing(ns);
	else if (r->namespaced && ns_terminating_locked(ns))
		s = ns_terminating(r, name, ns);
	else if (store_get_locked(r, ns, name))
		s = st_already_exists(r, name);
	struct objver *o = NULL;
	if (!s && dry) {
		/* as if stored: no resourceVersion, nothing written */
		normalize_object(r, obj);
		o = objver_new(r, obj, 0);
		obj = NULL;
	} else if (!s) {
		if (r->crd)
			s = crd_apply_locked(obj);
		if (!s) {
			o = store_put_locked(r, obj, NULL);
			objver_ref(o);
			obj = NULL;
		}
	}
	pthread_mutex_unlock(&g_store.lock);
	free(name);
	cJSON_Delete(obj);
	if (s)
		return send_status(c, s);
	return send_written(c, 201, r, false, o, true, rq);
}

/* ---- update / patch -------------------------------------------------------- */

/* Carry server-owned fields over from old and decide the generation. */
static void carry_meta(struct resource *r, cJSON *obj, const cJSON *oldo)
{
	cJSON *m = meta_of(obj);
	meta_set(m, "uid", meta_str(oldo, "uid"));
	meta_set(m, "creationTimestamp", meta_str(oldo, "creationTimestamp"));
	meta_set(m, "deletionTimestamp", meta_str(oldo, "deletionTimestamp"));
	cJSON_DeleteItemFromObjectCaseSensitive(m, "deletionGracePeriodSeconds");
	const cJSON *og = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(oldo, "metadata"),
	                                                   "deletionGracePeriodSeconds");
	if (og)
		cJSON_AddItemToObject(m, "deletionGracePeriodSeconds", cJSON_Duplicate(og, 1));
	/* the server's managedFields, not the client's (stamped after the
	 * no-op check: a write that changes nothing changes no time) */
	cJSON_DeleteItemFromObjectCaseSensitive(m, "managedFields");
	const cJSON *omf = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(oldo, "metadata"),
	                                                    "managedFields");
	if (omf)
		cJSON_AddItemToObject(m, "managedFields", cJSON_Duplicate(omf, 1));
	cJSON_DeleteItemFromObjectCaseSensitive(m, "generation");
	const cJSON *gen = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(oldo, "metadata"),
	                                                    "generation");
	if (r->type == RES_CUSTOM) {
		double g = cJSON_IsNumber(gen) ? gen->valuedouble : 1;
		/* generation moves when anything but metadata and status changes */
		bool changed = false;
		for (const cJSON *x = obj->child; x; x = x->next) {
			if (!strcmp(x->string, "metadata") || !strcmp(x->string, "status") ||
			    !strcmp(x->string, "kind") || !strcmp(x->string, "apiVersion"))
				continue;
			const cJSON *y = cJSON_GetObjectItemCaseSensitive(oldo, x->string);
			changed |= !y || !cJSON_Compare(x, y, 1);
		}
		for (const cJSON *y = oldo->child; y; y = y->next)
			if (strcmp(y->string, "metadata") && strcmp(y->string, "status") &&
			    !cJSON_GetObjectItemCaseSensitive(obj, y->string))
				changed = true;
		cJSON_AddNumberToObject(m, "generation", changed ? g + 1 : g);
	} else if (cJSON_IsNumber(gen)) {
		cJSON_AddNumberToObject(m, "generation", gen->valuedouble);
	}
}

static void take_field(cJSON *to, const cJSON *from, const char *k)
{
	cJSON_DeleteItemFromObjectCaseSensitive(to, k);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, k);
	if (v)
		cJSON_AddItemToObject(to, k, cJSON_Duplicate(v, 1));
}

/* The strategies' PrepareForUpdate: with a status subresource, a write of
 * the main resource keeps the stored status; a write of /status keeps
 * everything but the status (custom resources) or the spec and
 * ownerReferences (pods, whose status writes may change labels and
 * annotations). Namespaces keep spec and status. Returns the object to
 * write; obj is consumed. Under the lock. */
static cJSON *status_rules(const struct resource *r, const struct objver *old, cJSON *obj,
                           bool sub)
{
	if (r->type == RES_NAMESPACE) {
		take_field(obj, old->obj, "spec");
		take_field(obj, old->obj, "status");
		return obj;
	}
	if (!r->status_sub)
		return obj;
	if (!sub) {
		take_field(obj, old->obj, "status");
		return obj;
	}
	if (r->type == RES_POD) {
		take_field(obj, old->obj, "spec");
		take_field(meta_of(obj), cJSON_GetObjectItemCaseSensitive(old->obj, "metadata"), "ownerReferences");
		return obj;
	}
	cJSON *n = cJSON_Duplicate(old->obj, 1);
	cJSON *nst = cJSON_DetachItemFromObjectCaseSensitive(obj, "status");
	cJSON_DeleteItemFromObjectCaseSensitive(n, "status");
	if (nst)
		cJSON_AddItemToObject(n, "status", nst);
	/* the resourceVersion precondition is the body's */
	take_field(meta_of(n), cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "resourceVersion");
	cJSON_Delete(obj);
	return n;
}

/* The common tail of PUT and PATCH, under the lock: preconditions, immutable
 * fields, no-op detection (etcd3's GuaranteedUpdate writes nothing when the
 * bytes are unchanged, so the resourceVersion stays), then the write — or,
 * when the update leaves an object being deleted without finalizers, its
 * deletion (the store's deleteWithoutFinalizers: one DELETED event, the
 * answer is the deleted object). On success obj is consumed. */
static struct status *commit_update(struct resource *r, struct objver *old, cJSON *obj,
                                    const char *want_rv, bool sub, bool dry, struct objver **out)
{
	char oldrv[24];
	snprintf(oldrv, sizeof oldrv, "%llu", (unsigned long long)old->rv);
	if (want_rv && *want_rv && strcmp(want_rv, oldrv) != 0)
		return st_conflict(r, old->name,
		                   "the object has been modified; please apply your changes to the latest version and try again");
	const char *uid = meta_str(obj, "uid");
	const char *ouid = meta_str(old->obj, "uid");
	struct ferrs fe = {0};
	if (uid && *uid && ouid && strcmp(uid, ouid) != 0) {
		char *b = xasprintf("Invalid value: \"%s\": field is immutable", uid);
		ferr_add(&fe, "FieldValueInvalid", "metadata.uid", b);
		free(b);
	}
	if (r->type == RES_CONFIGMAP)
		validate_immutable(old->obj, obj, &fe);
	if (r->type == RES_POD && !sub)
		pod_validate_update(old->obj, obj, &fe);
	finalizers_update_check(old->obj, obj, &fe);
	if (fe.n)
		return st_invalid(r, old->name, &fe);
	if (r->crd) {
		struct status *cs = crd_validate(obj, old->name);
		if (!cs && !dry)
			cs = crd_apply_locked(obj);
		if (cs)
			return cs;
	}
	carry_meta(r, obj, old->obj);
	cJSON_DeleteItemFromObjectCaseSensitive(meta_of(obj), "resourceVersion");
	cJSON_AddStringToObject(meta_of(obj), "resourceVersion", oldrv);
	normalize_object(r, obj);
	const cJSON *dg = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
	                                                   "deletionGracePeriodSeconds");
	if (obj_deleting(obj) && !obj_has_finalizers(obj) && (!dg || (cJSON_IsNumber(dg) && dg->valuedouble == 0))) {
		cJSON_Delete(obj);
		objver_ref(old);
		*out = old;
		if (!dry)
			obj_remove_locked(old, false);
		return NULL;
	}
	if (cJSON_Compare(obj, old->obj, 1)) {
		cJSON_Delete(obj);
		objver_ref(old);
		*out = old;
		return NULL;
	}
	stamp_managed(obj);
	if (dry) {
		*out = objver_new(r, obj, old->rv);
		return NULL;
	}
	objver_ref(old); /* store_put_locked drops the index's reference */
	struct objver *o = store_put_locked(r, obj, old);
	objver_unref(old);
	objver_ref(o);
	*out = o;
	return NULL;
}

static enum MHD_Result do_update(struct MHD_Connection *c, struct resource *r, const char *ns,
                                 const char *name, bool sub, struct request *rq)
{
	cJSON *obj = NULL;
	bool dry;
	set_manager(c);
	struct status *s = dry_run(c, NULL, "UpdateOptions", &dry);
	if (!s)
		s = read_body(c, r, sub, rq, &obj);
	if (!s)
		s = check_kind(r, obj);
	if (s) {
		cJSON_Delete(obj);
		return send_status(c, s);
	}
	const char *bname = meta_str(obj, "name");
	const char *bns = meta_str(obj, "namespace");
	char *m = NULL;
	if (!bname || strcmp(bname, name) != 0)
		m = xasprintf("the name of the object (%s) does not match the name on the URL (%s)",
		              bname ? bname : "", name);
	else if (r->namespaced && bns && *bns && strcmp(bns, ns) != 0)
		m = xstrdup("the namespace of the provided object does not match the namespace sent on the request");
	if (m) {
		cJSON_Delete(obj);
		s = st_bad_request(m);
		free(m);
		return send_status(c, s);
	}
	char *want = meta_str(obj, "resourceVersion") ? xstrdup(meta_str(obj, "resourceVersion")) : NULL;
	meta_set(meta_of(obj), "namespace", r->namespaced ? ns : NULL);
	struct objver *o = NULL;
	unsigned code = 200;
	pthread_mutex_lock(&g_store.lock);
	struct objver *old = store_get_locked(r, ns, name);
	const struct objver *seen = old; /* compared only: a no-op answers with it */
	if (!old && r->allow_create_on_update && !(want && *want) && !sub) {
		struct ferrs fe = {0};
		validate_name(r, name, NULL, &fe);
		s = validate_all(r, obj, name, ns, &fe);
		if (!s && fe.n)
			s = st_invalid(r, name, &fe);
		cJSON_Delete(fe.causes);
		buf_free(&fe.msg);
		if (s) {
		} else if (r->namespaced && !ns_exists_locked(ns)) {
			s = ns_missing(ns);
		} else {
			stamp_new(r, obj, ns, name);
			if (dry) {
				normalize_object(r, obj);
				o = objver_new(r, obj, 0);
			} else {
				o = store_put_locked(r, obj, NULL);
				objver_ref(o);
			}
			obj = NULL;
			code = 201;
		}
	} else if (!old) {
		s = st_not_found(r, name);
	} else {
		obj = status_rules(r, old, obj, sub);
		struct ferrs fe = {0};
		validate_name(r, name, NULL, &fe);
		s = validate_all(r, obj, name, ns, &fe);
		if (!s && !fe.n && !r->allow_unconditional_update && (!want || !*want))
			ferr_add(&fe, "FieldValueInvalid", "metadata.resourceVersion",
			         "Invalid value: 0x0: must be specified for an update");
		if (!s && fe.n)
			s = st_invalid(r, name, &fe);
		cJSON_Delete(fe.causes);
		buf_free(&fe.msg);
		if (!s)
			s = commit_update(r, old, obj, want, sub, dry, &o);
		if (!s)
			obj = NULL;
	}
	pthread_mutex_unlock(&g_store.lock);
	free(want);
	cJSON_Delete(obj);
	if (s)
		return send_status(c, s);
	return send_written(c, code, r, sub, o, o != seen, rq);
}

static enum MHD_Result do_patch(struct MHD_Connection *c, struct resource *r, const char *ns,
                                const char *name, bool sub, struct request *rq)
{
	set_manager(c);
	const char *ct = hdr(c, MHD_HTTP_HEADER_CONTENT_TYPE);
	char ctype[64] = "";
	if (ct) {
		snprintf(ctype, sizeof ctype, "%s", ct);
		char *semi = strchr(ctype, ';');
		if (semi)
			*semi = 0;
	}
	int kind = !strcmp(ctype, "application/merge-patch+json")             ? 1
	           : !strcmp(ctype, "application/strategic-merge-patch+json") ? 2
	           : !strcmp(ctype, "application/json-patch+json")            ? 3
	                                                                      : 0;
	if (kind == 2 && r->type == RES_CUSTOM && !r->crd)
		kind = 0; /* CRs reject strategic merge patch */
	if (!kind) {
		char *m = !strcmp(ctype, "application/apply-patch+yaml")
		                  ? xstrdup("the body of the request was in an unknown format - server-side apply is not supported by this test server (kapi-server)")
		                  : xasprintf("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json%s",
		                              r->type == RES_CUSTOM && !r->crd ? "" : ", application/strategic-merge-patch+json");
		struct status *s = status_new(415, "UnsupportedMediaType", m, NULL);
		free(m);
		return send_status(c, s);
	}
	bool dry;
	struct status *s = dry_run(c, NULL, "PatchOptions", &dry);
	if (s)
		return send_status(c, s);
	cJSON *patch;
	s = parse_body(rq, &patch);
	if (s)
		return send_status(c, s);
	if (kind != 3 && !cJSON_IsObject(patch)) {
		cJSON_Delete(patch);
		return send_status(c, st_bad_request("json: cannot unmarshal into Go value of type map[string]interface {}"));
	}
	struct objver *o = NULL;
	for (int attempt = 0;; attempt++) {
		pthread_mutex_lock(&g_store.lock);
		struct objver *old = store_get_locked(r, ns, name);
		if (old)
			objver_ref(old);
		pthread_mutex_unlock(&g_store.lock);
		if (!old) {
			cJSON_Delete(patch);
			return send_status(c, st_not_found(r, name));
		}
		cJSON *obj = cJSON_Duplicate(old->obj, 1);
		const char *perr = NULL;
		if (kind == 3) {
			if (json_patch(&obj, patch, &perr) < 0 || !cJSON_IsObject(obj))
				s = status_new(422, "Invalid", perr ? perr : "the result of the patch is not an object", NULL);
		} else if (kind == 2) {
			obj = smp_apply(r, obj, patch, &perr);
			if (!obj)
				s = st_bad_request(perr);
		} else {
			obj = merge_patch(obj, patch, false);
		}
		const char *pn = s ? NULL : meta_str(obj, "name");
		const char *pns = s ? NULL : meta_str(obj, "namespace");
		if (!s && (!pn || strcmp(pn, name) != 0)) {
			char *m = xasprintf("the name of the object (%s) does not match the name on the URL (%s)",
			                    pn ? pn : "", name);
			s = st_bad_request(m);
			free(m);
		} else if (!s && r->namespaced && pns && strcmp(pns, ns) != 0) {
			s = st_bad_request("the namespace of the provided object does not match the namespace sent on the request");
		}
		if (!s)
			s = check_kind(r, obj);
		if (!s)
			obj = status_rules(r, old, obj, sub);
		struct ferrs fe = {0};
		if (!s)
			s = validate_all(r, obj, name, ns, &fe);
		if (!s && fe.n)
			s = st_invalid(r, name, &fe);
		cJSON_Delete(fe.causes);
		buf_free(&fe.msg);
		if (s) {
			cJSON_Delete(obj);
			objver_unref(old);
			cJSON_Delete(patch);
			return send_status(c, s);
		}
		/* a resourceVersion in the patched result is a precondition */
		char *want = meta_str(obj, "resourceVersion") ? xstrdup(meta_str(obj, "resourceVersion")) : NULL;
		pthread_mutex_lock(&g_store.lock);
		struct objver *cur = store_get_locked(r, ns, name);
		if (cur != old) {
			pthread_mutex_unlock(&g_store.lock);
			free(want);
			cJSON_Delete(obj);
			objver_unref(old);
			if (attempt < 20)
				continue; /* the real server retries patches internally too */
			cJSON_Delete(patch);
			return send_status(c, st_conflict(r, name, "the object has been modified; please apply your changes to the latest version and try again"));
		}
		s = commit_update(r, old, obj, want, sub, dry, &o);
		pthread_mutex_unlock(&g_store.lock);
		if (s)
			cJSON_Delete(obj);
		free(want);
		objver_unref(old);
		break;
	}
	cJSON_Delete(patch);
	if (s)
		return send_status(c, s);
	return send_written(c, 200, r, sub, o, false, rq);
}

/* ---- delete ---------------------------------------------------------------- */

/* rest.BeforeDelete's early check: a Conflict on the Kind, in its words. */
static struct status *check_preconditions(const struct resource *r, const struct objver *o,
                                          const cJSON *opts)
{
	const cJSON *pre = cJSON_GetObjectItemCaseSensitive(opts, "preconditions");
	const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pre, "uid"));
	const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pre, "resourceVersion"));
	const char *ouid = meta_str(o->obj, "uid");
	char orv[24];
	snprintf(orv, sizeof orv, "%llu", (unsigned long long)o->rv);
	char *why = NULL;
	if (uid && strcmp(uid, ouid ? ouid : "") != 0)
		why = xasprintf("the UID in the precondition (%s) does not match the UID in record (%s). "
		                "The object might have been deleted and then recreated", uid, ouid ? ouid : "");
	else if (rv && strcmp(rv, orv) != 0)
		why = xasprintf("the ResourceVersion in the precondition (%s) does not match the "
		                "ResourceVersion in record (%s). The object might have been modified", rv, orv);
	if (!why)
		return NULL;
	char *m = xasprintf("Operation cannot be fulfilled on %s \"%s\": %s", r->qkind, o->name, why);
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "name", o->name);
	if (*r->group)
		cJSON_AddStringToObject(d, "group", r->group);
	cJSON_AddStringToObject(d, "kind", r->kind);
	struct status *s = status_new(409, "Conflict", m, d);
	free(m);
	free(why);
	return s;
}

/* DeleteOptions validation (ValidateDeleteOptions). */
static struct status *check_delete_options(const cJSON *opts)
{
	const cJSON *pp = cJSON_GetObjectItemCaseSensitive(opts, "propagationPolicy");
	if (!pp || cJSON_IsNull(pp))
		return NULL;
	const char *v = cJSON_GetStringValue(pp);
	if (v && (!strcmp(v, "Foreground") || !strcmp(v, "Background") || !strcmp(v, "Orphan")))
		return NULL;
	struct resource fake = {.group = (char *)"meta.k8s.io", .kind = (char *)"DeleteOptions",
	                        .qkind = (char *)"DeleteOptions.meta.k8s.io"};
	struct ferrs fe = {0};
	char *b = xasprintf("Unsupported value: \"%s\": supported values: \"Foreground\", "
	                    "\"Background\", \"Orphan\", \"nil\"", v ? v : "");
	ferr_add(&fe, "FieldValueNotSupported", "propagationPolicy", b);
	free(b);
	return st_invalid(&fake, "", &fe);
}

/* DeleteOptions from the body, with the query parameters client-go and
 * kubectl may send instead (propagationPolicy, gracePeriodSeconds, dryRun). */
static cJSON *delete_options(struct MHD_Connection *c, cJSON *opts)
{
	if (!cJSON_IsObject(opts)) {
		cJSON_Delete(opts);
		opts = cJSON_CreateObject();
	}
	const char *pp = arg(c, "propagationPolicy");
	if (pp && !cJSON_GetObjectItemCaseSensitive(opts, "propagationPolicy"))
		cJSON_AddStringToObject(opts, "propagationPolicy", pp);
	const char *gp = arg(c, "gracePeriodSeconds");
	if (gp && *gp && !cJSON_GetObjectItemCaseSensitive(opts, "gracePeriodSeconds"))
		cJSON_AddNumberToObject(opts, "gracePeriodSeconds", strtod(gp, NULL));
	return opts;
}

static enum MHD_Result do_delete(struct MHD_Connection *c, struct resource *r, const char *ns,
                                 const char *name, struct request *rq)
{
	cJSON *opts = NULL;
	if (rq->body.len) {
		struct status *s = parse_body(rq, &opts);
		if (s)
			return send_status(c, s);
	}
	opts = delete_options(c, opts);
	bool dry;
	struct status *s = check_delete_options(opts);
	if (!s)
		s = dry_run(c, opts, "DeleteOptions", &dry);
	if (s) {
		cJSON_Delete(opts);
		return send_status(c, s);
	}
	const cJSON *gp = cJSON_GetObjectItemCaseSensitive(opts, "gracePeriodSeconds");
	struct delete_opts d = {
		.policy = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(opts, "propagationPolicy")),
		.grace = cJSON_IsNumber(gp) && gp->valuedouble >= 0 ? (int64_t)gp->valuedouble : -1,
		.dry = dry,
	};
	/* the orphanDependents of old clients */
	if (!d.policy && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(opts, "orphanDependents")))
		d.policy = "Orphan";
	struct objver *out = NULL;
	bool removed = false;
	pthread_mutex_lock(&g_store.lock);
	struct objver *o = store_get_locked(r, ns, name);
	if (!o)
		s = st_not_found(r, name);
	else
		s = check_preconditions(r, o, opts);
	if (!s)
		s = obj_delete_locked(r, o, &d, &out, &removed);
	pthread_mutex_unlock(&g_store.lock);
	cJSON_Delete(opts);
	if (s) {
		objver_unref(out);
		return send_status(c, s);
	}
	if (!r->typed || !removed || r->type == RES_NAMESPACE) {
		/* a pending deletion answers with the object as it is now */
		struct neg n;
		negotiate(c, 0, &n);
		return send_objver(c, 200, out, &n);
	}
	/* typed registries answer a finished delete with Status Success */
	cJSON *st_ = cJSON_CreateObject();
	cJSON_AddStringToObject(st_, "kind", "Status");
	cJSON_AddStringToObject(st_, "apiVersion", "v1");
	cJSON_AddItemToObject(st_, "metadata", cJSON_CreateObject());
	cJSON_AddStringToObject(st_, "status", "Success");
	cJSON *dd = cJSON_AddObjectToObject(st_, "details");
	cJSON_AddStringToObject(dd, "name", name);
	if (*r->group)
		cJSON_AddStringToObject(dd, "group", r->group);
	cJSON_AddStringToObject(dd, "kind", r->plural);
	const char *uid = meta_str(out->obj, "uid");
	cJSON_AddStringToObject(dd, "uid", uid ? uid : "");
	objver_unref(out);
	return send_json(c, 200, st_);
}

/* ---- list ------------------------------------------------------------------ */

struct listq {
	kvs__selector *ls, *fs;
	size_t limit;
	char *after;
	uint64_t at_rv;
	uint64_t min_rv;    /* resourceVersion=N (not Exact): at least N */
	bool from_continue;
	bool from_cache;    /* resourceVersion=0: the watch cache, limit ignored */
};

static struct status *parse_listq(struct MHD_Connection *c, struct listq *q, bool watch)
{
	char *err = NULL;
	memset(q, 0, sizeof *q);
	q->at_rv = UINT64_MAX;
	char msg[4096];
	if (kvs__label_selector_parse(&q->ls, arg(c, "labelSelector"), msg, sizeof msg) < 0 ||
	    kvs__field_selector_parse(&q->fs, arg(c, "fieldSelector"), msg, sizeof msg) < 0) {
		err = xstrdup(msg);
		goto bad;
	}
	if (watch)
		return NULL;
	const char *lim = arg(c, "limit");
	if (lim && *lim) {
		char *end;
		long long l = strtoll(lim, &end, 10);
		if (*end || l < 0) {
			err = xasprintf("limit: Invalid value: \"%s\"", lim);
			goto bad;
		}
		q->limit = (size_t)l;
	}
	const char *cont = arg(c, "continue");
	const char *rv = arg(c, "resourceVersion");
	const char *match = arg(c, "resourceVersionMatch");
	if (cont && *cont) {
		if (rv && *rv && strcmp(rv, "0") != 0) {
			err = xstrdup("specifying resource version is not allowed when using continue");
			goto bad;
		}
		if (parse_continue(cont, &q->at_rv, &q->after) < 0) {
			err = xstrdup("continue key is not valid: illegal base64 data or invalid token");
			goto bad;
		}
		q->from_continue = true;
	} else if (rv && *rv) {
		char *end;
		unsigned long long v = strtoull(rv, &end, 10);
		if (*end) {
			err = xasprintf("resourceVersion: Invalid value: \"%s\": must be a valid resource version", rv);
			goto bad;
		}
		if (match && strcmp(match, "Exact") == 0) {
			q->at_rv = v;
			q->min_rv = v;
		} else if (v == 0) {
			q->from_cache = true;
			q->limit = 0;
		} else {
			q->min_rv = v;
		}
	}
	return NULL;
bad:;
	struct status *s = st_bad_request(err);
	free(err);
	return s;
}

static void listq_free(struct listq *q)
{
	kvs__selector_free(q->ls);
	kvs__selector_free(q->fs);
	free(q->after);
}

static const char EXPIRED_CONTINUE[] =
	"The provided continue parameter is too old to display a consistent list result. You can start "
	"a new list without the continue parameter, or use the continue token in this response to "
	"retrieve the remainder of the results. Continuing with the provided token results in an "
	"inconsistent list - objects that were created, modified, or deleted between the time the first "
	"chunk was returned and now may show up in the list.";

/* A read at least at revision rv: the cacher waits up to 3 s for its
 * cache to get there, then gives up with 504 (storage's
 * NewTooLargeResourceVersionError). */
static struct status *wait_for_revision(uint64_t rv)
{
	uint64_t end = mono_ms() + 3000, cur;
	pthread_mutex_lock(&g_store.lock);
	while ((cur = g_store.rv) < rv && !g_store.shutting_down && mono_ms() < end) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 100000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&g_store.changed, &g_store.lock, &ts);
	}
	pthread_mutex_unlock(&g_store.lock);
	if (cur >= rv)
		return NULL;
	char *m = xasprintf("Timeout: Too large resource version: %llu, current: %llu",
	                    (unsigned long long)rv, (unsigned long long)cur);
	cJSON *d = cJSON_CreateObject();
	cJSON *causes = cJSON_AddArrayToObject(d, "causes");
	cJSON *cause = cJSON_CreateObject();
	cJSON_AddStringToObject(cause, "reason", "ResourceVersionTooLarge");
	cJSON_AddStringToObject(cause, "message", "Too large resource version");
	cJSON_AddItemToArray(causes, cause);
	cJSON_AddNumberToObject(d, "retryAfterSeconds", 1);
	struct status *s = status_new(504, "Timeout", m, d);
	free(m);
	return s;
}

/* A list's ListMeta (as JSON: the protobuf list encodes the same tree):
 * the revision it was read at, the continue token of a page, and the count
 * of what is left when it is exact (no selector). */
static void list_meta_fill(cJSON *m, uint64_t at, const char *tok, bool left, size_t remaining)
{
	char rvs[24];

	snprintf(rvs, sizeof rvs, "%llu", (unsigned long long)at);
	cJSON_AddStringToObject(m, "resourceVersion", rvs);
	if (tok)
		cJSON_AddStringToObject(m, "continue", tok);
	if (left)
		cJSON_AddNumberToObject(m, "remainingItemCount", (double)remaining);
}

static enum MHD_Result do_list(struct MHD_Connection *c, struct resource *r, const char *ns)
{
	struct neg n;
	if (!negotiate_as(c, 1, r->type == RES_CONFIGMAP, &n))
		return send_status(c, status_new(406, "NotAcceptable", "the server was unable to respond with a content type that the client supports", NULL));
	struct listq q;
	struct status *s = parse_listq(c, &q, false);
	if (s) {
		listq_free(&q);
		return send_status(c, s);
	}
	struct objver **items;
	size_t ni, remaining = 0;
	bool more;
	uint64_t at = q.at_rv;
	if (q.min_rv && (s = wait_for_revision(q.min_rv)) != NULL) {
		listq_free(&q);
		return send_status(c, s);
	}
	/* etcd counts what is left only for an unfiltered range */
	bool count = kvs__selector_empty(q.ls) && kvs__selector_empty(q.fs);
	if (store_list(r, r->namespaced ? ns : NULL, &at, q.after, q.ls, q.fs, q.limit, &items, &ni, &more,
	               count ? &remaining : NULL) < 0) {
		if (q.from_continue) {
			/* the real server hands out a token to go on inconsistently */
			pthread_mutex_lock(&g_store.lock);
			uint64_t now = g_store.rv;
			pthread_mutex_unlock(&g_store.lock);
			cJSON *d = NULL;
			s = status_new(410, "Expired", EXPIRED_CONTINUE, d);
			cJSON *sj = cJSON_Parse(s->json);
			char *tok = continue_token(now, q.after ? q.after : "");
			cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(sj, "metadata"), "continue", tok);
			free(tok);
			free(s->json);
			s->json = cJSON_PrintUnformatted(sj);
			cJSON_Delete(sj);
		} else {
			s = st_expired("The resourceVersion for the provided list is too old.");
		}
		listq_free(&q);
		return send_status(c, s);
	}
	char *tok = more && ni ? continue_token(at, items[ni - 1]->key) : NULL;
	bool all_pb = true;
	for (size_t i = 0; i < ni && n.proto; i++)
		all_pb = all_pb && objver_pb(items[i]);
	if (n.proto && !all_pb) {
		/* an item protobuf cannot carry: as if protobuf were not offered */
		tl_proto = false;
		if (!negotiate(c, 1, &n)) {
			for (size_t i = 0; i < ni; i++)
				objver_unref(items[i]);
			free(items);
			free(tok);
			listq_free(&q);
			return send_status(c, status_new(406, "NotAcceptable", "the server was unable to respond with a content type that the client supports", NULL));
		}
	}
	if (n.proto) {
		/* the items' protobuf forms (objver_pb above), copied once into
		 * the answer */
		cJSON *m = cJSON_CreateObject();
		list_meta_fill(m, at, tok, tok && count, remaining);
		struct proto_item *pi = xmalloc((ni ? ni : 1) * sizeof *pi);
		for (size_t i = 0; i < ni; i++)
			pi[i] = items[i]->pb_obj;
		size_t len;
		unsigned char *body = proto_configmap_list(m, pi, ni, &len);
		free(pi);
		cJSON_Delete(m);
		for (size_t i = 0; i < ni; i++)
			objver_unref(items[i]);
		free(items);
		free(tok);
		listq_free(&q);
		if (!body)
			return send_status(c, st_internal("the list could not be encoded as protobuf"));
		STAT_ADD(protobuf_responses, 1);
		return send_body(c, 200, PROTO_CT, (char *)body, len, true);
	}
	struct buf b = {0};
	const char *include = arg(c, "includeObject");
	if (n.fmt == FMT_TABLE) {
		cJSON *t = table_new(r, n.meta_version);
		list_meta_fill(cJSON_GetObjectItemCaseSensitive(t, "metadata"), at, tok, tok && count,
		               remaining);
		for (size_t i = 0; i < ni; i++)
			table_row(t, items[i], n.meta_version, include);
		char *ts = cJSON_PrintUnformatted(t);
		cJSON_Delete(t);
		buf_adds(&b, ts);
		free(ts);
	} else {
		if (n.fmt == FMT_POM)
			buf_addf(&b, "{\"kind\":\"PartialObjectMetadataList\",\"apiVersion\":\"meta.k8s.io/%s\",",
			         n.meta_version);
		else
			buf_addf(&b, "{\"kind\":\"%sList\",\"apiVersion\":\"%s\",", r->kind, r->api_version);
		buf_addf(&b, "\"metadata\":{\"resourceVersion\":\"%llu\"", (unsigned long long)at);
		if (tok)
			buf_addf(&b, ",\"continue\":\"%s\"", tok);
		if (tok && count)
			buf_addf(&b, ",\"remainingItemCount\":%zu", remaining);
		buf_adds(&b, "},\"items\":[");
		for (size_t i = 0; i < ni; i++) {
			if (i)
				buf_add(&b, ",", 1);
			if (n.fmt == FMT_POM) {
				emit_object(&b, items[i], &n, include);
			} else if (r->typed && items[i]->hdr) {
				/* typed lists carry no kind/apiVersion on their items */
				buf_add(&b, "{", 1);
				buf_add(&b, items[i]->json + items[i]->hdr, items[i]->len - items[i]->hdr);
			} else {
				buf_add(&b, items[i]->json, items[i]->len);
			}
		}
		buf_adds(&b, "]}");
	}
	for (size_t i = 0; i < ni; i++)
		objver_unref(items[i]);
	free(items);
	free(tok);
	listq_free(&q);
	size_t len;
	char *body = buf_take(&b, &len);
	return send_body(c, 200, neg_ctype(&n, true), body, len, true);
}

static enum MHD_Result do_deletecollection(struct MHD_Connection *c, struct resource *r,
                                           const char *ns)
{
	struct listq q;
	struct status *s = parse_listq(c, &q, true);
	if (s) {
		listq_free(&q);
		return send_status(c, s);
	}
	struct objver **items;
	size_t ni;
	bool more;
	uint64_t at = UINT64_MAX;
	store_list(r, r->namespaced ? ns : NULL, &at, NULL, q.ls, q.fs, 0, &items, &ni, &more, NULL);
	struct buf b = {0};
	buf_addf(&b, "{\"kind\":\"%sList\",\"apiVersion\":\"%s\",\"metadata\":{},\"items\":[", r->kind,
	         r->api_version);
	bool first = true;
	pthread_mutex_lock(&g_store.lock);
	for (size_t i = 0; i < ni; i++) {
		struct objver *o = store_get_locked(r, items[i]->ns, items[i]->name);
		if (o == items[i]) {
			struct delete_opts d = {.policy = arg(c, "propagationPolicy"), .grace = -1};
			struct objver *out = NULL;
			bool removed;
			obj_delete_locked(r, o, &d, &out, &removed);
			if (!first)
				buf_add(&b, ",", 1);
			first = false;
			buf_add(&b, out->json, out->len);
			objver_unref(out);
		}
	}
	pthread_mutex_unlock(&g_store.lock);
	for (size_t i = 0; i < ni; i++)
		objver_unref(items[i]);
	free(items);
	listq_free(&q);
	buf_adds(&b, "]}");
	size_t len;
	char *body = buf_take(&b, &len);
	return send_body(c, 200, JSON_CT, body, len, true);
}

/* ---- watch ----------------------------------------------------------------- */

struct watch {
	struct resource *res;
	char *ns; /* NULL = all namespaces */
	kvs__selector *ls, *fs;
	struct neg neg;
	bool bookmarks;
	bool initial_end_bookmark;
	uint64_t last_rv;
	uint64_t sent_rv;     /* revision of the last event or bookmark sent */
	uint64_t start_floor; /* the watch cache's oldest-1 when the watch began */
	uint64_t deadline_ms;
	uint64_t next_bookmark_ms;
	unsigned gen;
	int fd;
	struct objver **init; /* synthetic ADDED, sent first */
	size_t ninit, init_pos;
	struct buf out;
	size_t out_pos;
	int ending; /* 0 running, 1 clean end after out drains, 2 abort */
};

static bool watch_passes(const struct watch *w, const struct objver *o)
{
	if (w->ns && strcmp(o->ns, w->ns) != 0)
		return false;
	if (!kvs__field_selector_match(w->fs, o->ns, o->name))
		return false;
	if (kvs__selector_empty(w->ls))
		return true;
	return labels_match(w->ls, cJSON_GetObjectItemCaseSensitive(
		                                    cJSON_GetObjectItemCaseSensitive(o->obj, "metadata"), "labels"));
}

static void watch_emit(struct watch *w, const char *type, const struct objver *o)
{
	buf_addf(&w->out, "{\"type\":\"%s\",\"object\":", type);
	emit_object(&w->out, o, &w->neg, NULL);
	buf_adds(&w->out, "}\n");
}

static void watch_bookmark(struct watch *w, uint64_t rv, bool initial_end)
{
	const char *kind = w->neg.fmt == FMT_POM ? "PartialObjectMetadata" : w->res->kind;
	char av[64];
	if (w->neg.fmt == FMT_POM)
		snprintf(av, sizeof av, "meta.k8s.io/%s", w->neg.meta_version);
	else
		snprintf(av, sizeof av, "%s", w->res->api_version);
	buf_addf(&w->out,
	         "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":{\"resourceVersion\":\"%llu\",\"creationTimestamp\":null%s}}}\n",
	         kind, av, (unsigned long long)rv,
	         initial_end ? ",\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}" : "");
}

static void watch_error(struct watch *w, struct status *s)
{
	buf_addf(&w->out, "{\"type\":\"ERROR\",\"object\":%s}\n", s->json);
	status_free(s);
}

static bool peer_gone(int fd)
{
	if (fd < 0)
		return false;
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Translate one stored event for this watcher the way the cacher does:
 * an object entering the selection is ADDED, leaving it is DELETED with the
 * previous content at the event's revision. */
static void watch_event(struct watch *w, const struct event *e)
{
	bool cur = e->cur && watch_passes(w, e->cur);
	bool old = e->prev && watch_passes(w, e->prev);
	if (cur && old)
		watch_emit(w, "MODIFIED", e->cur);
	else if (cur)
		watch_emit(w, "ADDED", e->cur);
	else if (old)
		watch_emit(w, "DELETED", e->gone ? e->gone : e->prev);
	if (cur || old)
		w->sent_rv = e->rv;
}

#define WATCH_BATCH 256

static ssize_t watch_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct watch *w = cls;
	for (;;) {
		if (w->out_pos < w->out.len) {
			size_t n = w->out.len - w->out_pos;
			if (n > max)
				n = max;
			memcpy(buf, w->out.p + w->out_pos, n);
			w->out_pos += n;
			if (w->out_pos == w->out.len)
				w->out.len = w->out_pos = 0;
			STAT_ADD(bytes_out, n);
			return (ssize_t)n;
		}
		if (w->ending)
			return w->ending == 2 ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
		if (w->init_pos < w->ninit) {
			while (w->init_pos < w->ninit && w->out.len < 256 * 1024) {
				struct objver *o = w->init[w->init_pos++];
				if (watch_passes(w, o))
					watch_emit(w, "ADDED", o);
				objver_unref(o);
			}
			if (w->init_pos == w->ninit && w->initial_end_bookmark)
				watch_bookmark(w, w->last_rv, true);
			continue;
		}
		struct event *batch[WATCH_BATCH];
		size_t nb = 0;
		pthread_mutex_lock(&g_store.lock);
		for (;;) {
			uint64_t now = mono_ms();
			if (g_store.shutting_down) {
				w->ending = 1;
				break;
			}
			if (g_store.watch_gen != w->gen) {
				w->ending = g_store.watch_abort ? 2 : 1;
				break;
			}
			if (now >= w->deadline_ms) {
				w->ending = 1;
				break;
			}
			bool stalled = g_faults.stall_watch;
			uint64_t floor = g_store.ring_floor > g_store.wc_reset_rv ? g_store.ring_floor
			                                                           : g_store.wc_reset_rv;
			if (w->start_floor > floor)
				floor = w->start_floor;
			if (!stalled && w->last_rv < floor && w->last_rv < g_store.rv) {
				char *m = xasprintf("too old resource version: %llu (%llu)",
				                    (unsigned long long)w->last_rv, (unsigned long long)floor);
				watch_error(w, st_expired(m));
				free(m);
				w->ending = 1;
				break;
			}
			if (!stalled && g_store.rv > w->last_rv) {
				for (uint64_t rv = w->last_rv + 1; rv <= g_store.rv && nb < WATCH_BATCH; rv++) {
					struct event *e = store_event_locked(rv);
					w->last_rv = rv;
					if (e->res != w->res)
						continue;
					/* the ring may evict while we serialize: hold references */
					struct event *copy = xmalloc(sizeof *copy);
					*copy = *e;
					if (copy->cur)
						objver_ref(copy->cur);
					if (copy->prev)
						objver_ref(copy->prev);
					if (copy->gone)
						objver_ref(copy->gone);
					batch[nb++] = copy;
				}
				if (nb)
					break;
				continue;
			}
			/* the cacher's bookmarks carry a revision newer than what the
			 * watcher was sent, and there is none on a quiet server */
			if (!stalled && w->bookmarks && now >= w->next_bookmark_ms) {
				w->next_bookmark_ms = now + g_cfg.bookmark_ms;
				if (w->last_rv > w->sent_rv) {
					watch_bookmark(w, w->last_rv, false);
					w->sent_rv = w->last_rv;
					break;
				}
			}
			uint64_t wake = w->deadline_ms;
			if (w->bookmarks && !stalled && w->next_bookmark_ms < wake)
				wake = w->next_bookmark_ms;
			if (wake > now + 1000)
				wake = now + 1000; /* notice vanished peers */
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t ns = (uint64_t)ts.tv_nsec + (wake - now) * 1000000u;
			ts.tv_sec += (time_t)(ns / 1000000000u);
			ts.tv_nsec = (long)(ns % 1000000000u);
			pthread_cond_timedwait(&g_store.changed, &g_store.lock, &ts);
			if (mono_ms() >= wake && peer_gone(w->fd)) {
				w->ending = 2;
				break;
			}
		}
		pthread_mutex_unlock(&g_store.lock);
		for (size_t i = 0; i < nb; i++) {
			watch_event(w, batch[i]);
			objver_unref(batch[i]->cur);
			objver_unref(batch[i]->prev);
			objver_unref(batch[i]->gone);
			free(batch[i]);
		}
	}
}

static void watch_free(void *cls)
{
	struct watch *w = cls;
	for (size_t i = w->init_pos; i < w->ninit; i++)
		objver_unref(w->init[i]);
	free(w->init);
	free(w->ns);
	kvs__selector_free(w->ls);
	kvs__selector_free(w->fs);
	buf_free(&w->out);
	free(w);
	__atomic_sub_fetch(&st.watches_open, 1, __ATOMIC_RELAXED);
}

static enum MHD_Result do_watch(struct MHD_Connection *c, struct resource *r, const char *ns)
{
	struct neg n;
	if (!negotiate(c, 2, &n))
		return send_status(c, status_new(406, "NotAcceptable", "the server was unable to respond with a content type that the client supports", NULL));
	struct listq q;
	struct status *s = parse_listq(c, &q, true);
	if (s) {
		listq_free(&q);
		return send_status(c, s);
	}
	const char *rvs = arg(c, "resourceVersion");
	uint64_t from = 0;
	bool initial = !rvs || !*rvs || strcmp(rvs, "0") == 0;
	if (arg_true(c, "sendInitialEvents"))
		initial = true;
	if (rvs && *rvs) {
		char *end;
		from = strtoull(rvs, &end, 10);
		if (*end) {
			listq_free(&q);
			return send_status(c, st_bad_request("resourceVersion: Invalid value: must be a valid resource version"));
		}
	}
	struct watch *w = xmalloc(sizeof *w);
	memset(w, 0, sizeof *w);
	w->res = r;
	w->ns = r->namespaced && ns ? xstrdup(ns) : NULL;
	w->ls = q.ls;
	w->fs = q.fs;
	w->neg = n;
	w->bookmarks = arg_true(c, "allowWatchBookmarks");
	w->initial_end_bookmark = arg_true(c, "sendInitialEvents") && w->bookmarks;
	const char *to = arg(c, "timeoutSeconds");
	uint64_t now = mono_ms();
	w->deadline_ms = now + (to && *to ? strtoull(to, NULL, 10) : 1800) * 1000u;
	w->next_bookmark_ms = now + g_cfg.bookmark_ms;
	w->fd = -1;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci)
		w->fd = ci->connect_fd;
	q.ls = q.fs = NULL;
	free(q.after);
	if (initial) {
		bool more;
		uint64_t at = UINT64_MAX;
		store_list(r, w->ns, &at, NULL, NULL, NULL, 0, &w->init, &w->ninit, &more, NULL);
		w->last_rv = at; /* store_list's snapshot: the live part starts after it */
	} else {
		w->last_rv = from;
	}
	w->sent_rv = w->last_rv;
	pthread_mutex_lock(&g_store.lock);
	w->gen = g_store.watch_gen;
	if (!initial) {
		/* the cacher: "too old resource version" below its window */
		uint64_t floor = store_watch_floor_locked(r);
		if (from < floor && from < g_store.rv)
			w->start_floor = floor;
	}
	pthread_mutex_unlock(&g_store.lock);
	__atomic_add_fetch(&st.watches_open, 1, __ATOMIC_RELAXED);
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
	                                                              watch_reader, w, watch_free);
	add_common_headers(resp, neg_ctype(&n, false));
	STAT_ADD(codes[2], 1);
	enum MHD_Result ret = MHD_queue_response(c, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* ---- control endpoints ----------------------------------------------------- */

static cJSON *faults_json(void)
{
	cJSON *f = cJSON_CreateObject();
	cJSON_AddNumberToObject(f, "latency_ms", g_faults.latency_ms);
	cJSON_AddNumberToObject(f, "fail_rate", g_faults.fail_rate);
	cJSON_AddNumberToObject(f, "throttle_rate", g_faults.throttle_rate);
	cJSON_AddNumberToObject(f, "drop_rate", g_faults.drop_rate);
	cJSON_AddNumberToObject(f, "retry_after", g_faults.retry_after);
	cJSON_AddBoolToObject(f, "stall_watch", g_faults.stall_watch);
	return f;
}

static bool rate_ok(const cJSON *v)
{
	return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1;
}

static enum MHD_Result control(struct MHD_Connection *c, const char *url, const char *method,
                               struct request *rq)
{
	bool post = strcmp(method, "POST") == 0;
	if (strcmp(url, "/kapi/faults") == 0 && (post || !strcmp(method, "GET"))) {
		cJSON *in = NULL;
		if (post) {
			in = cJSON_ParseWithLength(rq->body.p ? rq->body.p : "", rq->body.len);
			if (!cJSON_IsObject(in)) {
				cJSON_Delete(in);
				return send_body(c, 400, JSON_CT, xstrdup("{\"error\":\"body must be a JSON object\"}"), 37, false);
			}
		}
		const cJSON *v;
		pthread_mutex_lock(&g_store.lock);
		if ((v = cJSON_GetObjectItemCaseSensitive(in, "latency_ms")) && cJSON_IsNumber(v) && v->valuedouble >= 0)
			g_faults.latency_ms = (unsigned)v->valuedouble;
		if ((v = cJSON_GetObjectItemCaseSensitive(in, "fail_rate")) && rate_ok(v))
			g_faults.fail_rate = v->valuedouble;
		if ((v = cJSON_GetObjectItemCaseSensitive(in, "throttle_rate")) && rate_ok(v))
			g_faults.throttle_rate = v->valuedouble;
		if ((v = cJSON_GetObjectItemCaseSensitive(in, "drop_rate")) && rate_ok(v))
			g_faults.drop_rate = v->valuedouble;
		if ((v = cJSON_GetObjectItemCaseSensitive(in, "retry_after")) && cJSON_IsNumber(v) && v->valuedouble >= 0)
			g_faults.retry_after = (unsigned)v->valuedouble;
		if ((v = cJSON_GetObjectItemCaseSensitive(in, "stall_watch")) && cJSON_IsBool(v))
			g_faults.stall_watch = cJSON_IsTrue(v);
		if ((v = cJSON_GetObjectItemCaseSensitive(in, "forbid")) && cJSON_IsArray(v))
			set_forbids(v);
		cJSON *out = faults_json();
		pthread_cond_broadcast(&g_store.changed);
		pthread_mutex_unlock(&g_store.lock);
		cJSON_Delete(in);
		char *s = cJSON_PrintUnformatted(out);
		cJSON_Delete(out);
		return send_body(c, 200, JSON_CT, s, strlen(s), false);
	}
	if (strcmp(url, "/kapi/stats") == 0 && !strcmp(method, "GET")) {
		cJSON *o = cJSON_CreateObject();
		cJSON *v = cJSON_AddObjectToObject(o, "requests_by_verb");
		for (int i = 0; i < V_COUNT; i++)
			cJSON_AddNumberToObject(v, verb_names[i], (double)STAT_GET(verbs[i]));
		cJSON_AddNumberToObject(o, "requests", (double)STAT_GET(requests));
		cJSON_AddNumberToObject(o, "bytes_in", (double)STAT_GET(bytes_in));
		cJSON_AddNumberToObject(o, "bytes_out", (double)STAT_GET(bytes_out));
		cJSON *codes = cJSON_AddObjectToObject(o, "responses_by_class");
		static const char *const cls[] = {"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"};
		for (int i = 1; i < 6; i++)
			cJSON_AddNumberToObject(codes, cls[i], (double)STAT_GET(codes[i]));
		cJSON *inj = cJSON_AddObjectToObject(o, "injected");
		cJSON_AddNumberToObject(inj, "latency", (double)STAT_GET(injected_latency));
		cJSON_AddNumberToObject(inj, "fail", (double)STAT_GET(injected_fail));
		cJSON_AddNumberToObject(inj, "throttle", (double)STAT_GET(injected_throttle));
		cJSON_AddNumberToObject(inj, "drop", (double)STAT_GET(injected_drop));
		cJSON_AddNumberToObject(o, "watches_open", (double)STAT_GET(watches_open));
		uint64_t lp, lw;
		json_long_stats(&lp, &lw);
		cJSON *ls = cJSON_AddObjectToObject(o, "long_strings");
		cJSON_AddNumberToObject(ls, "parsed_whole", (double)lp);
		cJSON_AddNumberToObject(ls, "printed_whole", (double)lw);
		cJSON_AddNumberToObject(o, "protobuf_responses", (double)STAT_GET(protobuf_responses));
		cJSON_AddNumberToObject(o, "protobuf_status", (double)STAT_GET(protobuf_status));
		pthread_mutex_lock(&g_store.lock);
		cJSON_AddNumberToObject(o, "revision", (double)g_store.rv);
		cJSON_AddNumberToObject(o, "compacted_revision", (double)g_store.compacted_rv);
		cJSON_AddNumberToObject(o, "history_events", (double)g_store.ring_n);
		cJSON_AddNumberToObject(o, "history_bytes", (double)g_store.ring_bytes);
		cJSON_AddNumberToObject(o, "protobuf_forms_built", (double)g_store.pb_built);
		cJSON *objs = cJSON_AddObjectToObject(o, "objects");
		for (size_t i = 0; i < g_store.nres; i++)
			cJSON_AddNumberToObject(objs, g_store.res[i]->qualified, (double)g_store.res[i]->n);
		pthread_mutex_unlock(&g_store.lock);
		char *s = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		return send_body(c, 200, JSON_CT, s, strlen(s), false);
	}
	if (strcmp(url, "/kapi/compact") == 0 && post) {
		pthread_mutex_lock(&g_store.lock);
		store_compact_locked();
		if (arg_true(c, "watch-cache"))
			store_drop_watch_cache_locked();
		uint64_t rv = g_store.rv;
		pthread_mutex_unlock(&g_store.lock);
		char *s = xasprintf("{\"compactedRevision\":%llu}", (unsigned long long)rv);
		return send_body(c, 200, JSON_CT, s, strlen(s), false);
	}
	if (strcmp(url, "/kapi/drop-watches") == 0 && post) {
		pthread_mutex_lock(&g_store.lock);
		g_store.watch_gen++;
		g_store.watch_abort = arg_true(c, "abort");
		pthread_cond_broadcast(&g_store.changed);
		pthread_mutex_unlock(&g_store.lock);
		char *s = xasprintf("{\"dropped\":%llu}", (unsigned long long)STAT_GET(watches_open));
		return send_body(c, 200, JSON_CT, s, strlen(s), false);
	}
	char *s = xstrdup("{\"error\":\"unknown control endpoint\"}");
	return send_body(c, 404, JSON_CT, s, strlen(s), false);
}

/* ---- routing --------------------------------------------------------------- */

static size_t split_path(char *p, char **seg, size_t max)
{
	size_t n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(p, "/", &save); tok && n < max; tok = strtok_r(NULL, "/", &save))
		seg[n++] = tok;
	return n;
}

/* Client certificates, tokens, anonymous: auth.c. */
static bool authorized(struct MHD_Connection *c)
{
	return auth_request(c);
}

static enum verb verb_of(const char *method, bool named, bool watch)
{
	if (!strcmp(method, "GET"))
		return watch ? V_WATCH : named ? V_GET : V_LIST;
	if (!strcmp(method, "POST"))
		return named ? V_OTHER : V_CREATE;
	if (!strcmp(method, "PUT"))
		return named ? V_UPDATE : V_OTHER;
	if (!strcmp(method, "PATCH"))
		return named ? V_PATCH : V_OTHER;
	if (!strcmp(method, "DELETE"))
		return named ? V_DELETE : V_DELETECOLLECTION;
	return V_OTHER;
}

static enum MHD_Result route(struct MHD_Connection *c, const char *url, const char *method,
                             struct request *rq)
{
	char *path = xstrdup(url);
	char *seg[16];
	size_t n = split_path(path, seg, 16);
	bool handled = false;
	enum MHD_Result ret;
	if (!strcmp(method, "GET")) {
		ret = discovery(c, seg, n, &handled);
		if (handled) {
			STAT_ADD(verbs[V_OTHER], 1);
			free(path);
			return ret;
		}
	}
	/* /api/v1/... or /apis/<group>/<version>/... */
	const char *group = NULL, *version = NULL;
	size_t i = 0;
	if (n >= 2 && !strcmp(seg[0], "api")) {
		group = "";
		version = seg[1];
		i = 2;
	} else if (n >= 3 && !strcmp(seg[0], "apis")) {
		group = seg[1];
		version = seg[2];
		i = 3;
	}
	const char *ns = NULL, *plural = NULL, *name = NULL, *sub = NULL;
	size_t rest = group ? n - i : 0;
	if (group && rest >= 3 && !strcmp(seg[i], "namespaces") && rest <= 5) {
		ns = seg[i + 1];
		plural = seg[i + 2];
		name = rest >= 4 ? seg[i + 3] : NULL;
		sub = rest == 5 ? seg[i + 4] : NULL;
	} else if (group && rest >= 1 && rest <= 3) {
		plural = seg[i];
		name = rest >= 2 ? seg[i + 1] : NULL;
		sub = rest == 3 ? seg[i + 2] : NULL;
	}
	struct resource *r = plural ? resource_find(group, version, plural) : NULL;
	/* the only subresource served is status, where the resource has it */
	if (r && sub && (strcmp(sub, "status") != 0 || !r->status_sub))
		r = NULL;
	if (!r || (ns && !r->namespaced) || (!r->namespaced && ns) || (r->namespaced && !ns && name)) {
		STAT_ADD(verbs[V_OTHER], 1);
		free(path);
		return send_status(c, st_path_not_found());
	}
	bool watch = arg_true(c, "watch");
	enum verb v = verb_of(method, name != NULL, watch && !name);
	STAT_ADD(verbs[v], 1);
	if (v == V_OTHER || (r->readonly && v != V_GET && v != V_LIST && v != V_WATCH) ||
	    (!ns && r->namespaced && v != V_LIST && v != V_WATCH) ||
	    (sub && v != V_GET && v != V_UPDATE && v != V_PATCH)) {
		free(path);
		return send_status(c, st_method_not_allowed());
	}
	if (forbidden(r, verb_names[v])) {
		ret = send_status(c, st_forbidden(r, name, verb_names[v], ns, g_cfg.user));
		free(path);
		return ret;
	}
	switch (v) {
	case V_GET: {
		struct neg ng;
		if (!negotiate_as(c, 0, r->type == RES_CONFIGMAP && ns && !sub, &ng)) {
			ret = send_status(c, status_new(406, "NotAcceptable", "the server was unable to respond with a content type that the client supports", NULL));
			break;
		}
		pthread_mutex_lock(&g_store.lock);
		struct objver *o = store_get_locked(r, ns ? ns : "", name);
		if (o)
			objver_ref(o);
		pthread_mutex_unlock(&g_store.lock);
		if (o && ng.proto && !objver_pb(o)) {
			/* holds what protobuf cannot carry (proto_configmap): as if
			 * protobuf were not offered */
			tl_proto = false;
			if (!negotiate(c, 0, &ng)) {
				objver_unref(o);
				ret = send_status(c, status_new(406, "NotAcceptable", "the server was unable to respond with a content type that the client supports", NULL));
				break;
			}
		}
		ret = o ? send_objver(c, 200, o, &ng) : send_status(c, st_not_found(r, name));
		break;
	}
	case V_LIST:
		ret = do_list(c, r, ns);
		break;
	case V_WATCH:
		ret = do_watch(c, r, ns);
		break;
	case V_CREATE:
		ret = do_create(c, r, ns ? ns : "", rq);
		break;
	case V_UPDATE:
		ret = do_update(c, r, ns ? ns : "", name, sub != NULL, rq);
		break;
	case V_PATCH:
		ret = do_patch(c, r, ns ? ns : "", name, sub != NULL, rq);
		break;
	case V_DELETE:
		ret = do_delete(c, r, ns ? ns : "", name, rq);
		break;
	case V_DELETECOLLECTION:
		ret = do_deletecollection(c, r, ns);
		break;
	case V_OTHER:
	case V_COUNT:
	default:
		ret = send_status(c, st_method_not_allowed());
		break;
	}
	free(path);
	return ret;
}

enum MHD_Result api_handler(void *cls, struct MHD_Connection *c, const char *url,
                            const char *method, const char *version, const char *upload_data,
                            size_t *upload_data_size, void **con_cls)
{
	(void)cls;
	(void)version;
	tl_proto = false;
	tl_b64_made = NULL;
	struct request *rq = *con_cls;
	if (!rq) {
		rq = xmalloc(sizeof *rq);
		memset(rq, 0, sizeof *rq);
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_data_size) {
		STAT_ADD(bytes_in, *upload_data_size);
		if (!rq->too_large && rq->body.len + *upload_data_size > KAPI_MAX_BODY) {
			rq->too_large = true;
			buf_free(&rq->body);
		}
		if (!rq->too_large && !rq->body.cap) {
			/* the declared length in one allocation: no regrowth while a
			 * 1.4 MB ConfigMap arrives in 16 KiB pieces */
			const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
			                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
			unsigned long long want = cl ? strtoull(cl, NULL, 10) : 0;
			if (want > *upload_data_size && want <= KAPI_MAX_BODY)
				buf_reserve(&rq->body, (size_t)want);
		}
		if (!rq->too_large)
			buf_add(&rq->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	STAT_ADD(requests, 1);
	if (strncmp(url, "/kapi/", 6) == 0)
		return control(c, url, method, rq);
	struct neg ng;
	bool is_list = false;
	tl_proto = proto_request(c, url, method, &is_list) && negotiate_as(c, is_list, true, &ng) &&
	           ng.proto;
	if (!authorized(c))
		return send_status_nofault(c, status_new(401, "Unauthorized", "Unauthorized", NULL), NULL, NULL);
	if (!strcmp(method, "POST") && !strcmp(url, "/apis/authentication.k8s.io/v1/selfsubjectreviews"))
		return send_json(c, 201, auth_whoami(c));
	struct faults f;
	pthread_mutex_lock(&g_store.lock);
	f = g_faults;
	pthread_mutex_unlock(&g_store.lock);
	if (f.latency_ms) {
		STAT_ADD(injected_latency, 1);
		usleep(f.latency_ms * 1000u);
	}
	if (decide(f.throttle_rate)) {
		STAT_ADD(injected_throttle, 1);
		cJSON *d = cJSON_CreateObject();
		cJSON_AddNumberToObject(d, "retryAfterSeconds", f.retry_after);
		char ra[16];
		snprintf(ra, sizeof ra, "%u", f.retry_after);
		return send_status_nofault(
			c, status_new(429, "TooManyRequests", "Too many requests, please try again later.", d),
			MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	if (decide(f.fail_rate)) {
		STAT_ADD(injected_fail, 1);
		if (rng_next() & 1)
			return send_status_nofault(c, st_internal("injected fault (kapi-server --fail-rate)"), NULL, NULL);
		return send_status_nofault(c, status_new(503, "ServiceUnavailable",
		                                         "the server is currently unable to handle the request (injected fault)",
		                                         cJSON_CreateObject()),
		                           NULL, NULL);
	}
	if (rq->too_large) {
		char *m = xasprintf("Request entity too large: limit is %u", KAPI_MAX_BODY);
		struct status *s = status_new(413, "RequestEntityTooLarge", m, NULL);
		free(m);
		return send_status_nofault(c, s, NULL, NULL);
	}
	return route(c, url, method, rq);
}

void api_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                   enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	struct request *rq = *con_cls;
	if (!rq)
		return;
	buf_free(&rq->body);
	pb_body_free(&rq->pb);
	free(rq);
	*con_cls = NULL;
}
