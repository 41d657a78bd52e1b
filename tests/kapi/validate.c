/* Status objects and validation, with the messages of the real kube-apiserver
 * (k8s.io/apimachinery/pkg/api/errors, pkg/apis/core/validation). */
#include "kapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct status *status_new(int code, const char *reason, const char *message, cJSON *details)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "kind", "Status");
	cJSON_AddStringToObject(o, "apiVersion", "v1");
	cJSON_AddItemToObject(o, "metadata", cJSON_CreateObject());
	cJSON_AddStringToObject(o, "status", "Failure");
	cJSON_AddStringToObject(o, "message", message);
	if (reason)
		cJSON_AddStringToObject(o, "reason", reason);
	if (details)
		cJSON_AddItemToObject(o, "details", details);
	cJSON_AddNumberToObject(o, "code", code);
	struct status *s = xmalloc(sizeof *s);
	s->code = code;
	s->json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

void status_free(struct status *s)
{
	if (!s)
		return;
	free(s->json);
	free(s);
}

/* details{name, group (if any), kind: the resource plural} as NewNotFound etc. */
static cJSON *res_details(const struct resource *r, const char *name)
{
	cJSON *d = cJSON_CreateObject();
	if (name)
		cJSON_AddStringToObject(d, "name", name);
	if (r->group[0])
		cJSON_AddStringToObject(d, "group", r->group);
	cJSON_AddStringToObject(d, "kind", r->plural);
	return d;
}

struct status *st_not_found(const struct resource *r, const char *name)
{
	char *m = xasprintf("%s \"%s\" not found", r->qualified, name);
	struct status *s = status_new(404, "NotFound", m, res_details(r, name));
	free(m);
	return s;
}

struct status *st_already_exists(const struct resource *r, const char *name)
{
	char *m = xasprintf("%s \"%s\" already exists", r->qualified, name);
	struct status *s = status_new(409, "AlreadyExists", m, res_details(r, name));
	free(m);
	return s;
}

struct status *st_conflict(const struct resource *r, const char *name, const char *why)
{
	char *m = xasprintf("Operation cannot be fulfilled on %s \"%s\": %s", r->qualified, name, why);
	struct status *s = status_new(409, "Conflict", m, res_details(r, name));
	free(m);
	return s;
}

struct status *st_bad_request(const char *msg)
{
	return status_new(400, "BadRequest", msg, NULL);
}

struct status *st_internal(const char *msg)
{
	char *m = xasprintf("Internal error occurred: %s", msg);
	cJSON *d = cJSON_CreateObject();
	cJSON *causes = cJSON_AddArrayToObject(d, "causes");
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "message", msg);
	cJSON_AddItemToArray(causes, c);
	struct status *s = status_new(500, "InternalError", m, d);
	free(m);
	return s;
}

/* RBAC's message: `<resource> "<name>" is forbidden: User "<u>" cannot <verb>
 * resource "<plural>" in API group "<g>" in the namespace "<ns>"`. */
struct status *st_forbidden(const struct resource *r, const char *name, const char *verb,
                            const char *ns, const char *user)
{
	struct buf b = {0};
	buf_adds(&b, r->qualified);
	if (name && *name)
		buf_addf(&b, " \"%s\"", name);
	buf_addf(&b, " is forbidden: User \"%s\" cannot %s resource \"%s\" in API group \"%s\"", user,
	         verb, r->plural, r->group);
	if (ns && *ns)
		buf_addf(&b, " in the namespace \"%s\"", ns);
	else
		buf_adds(&b, " at the cluster scope");
	struct status *s = status_new(403, "Forbidden", b.p, res_details(r, name && *name ? name : NULL));
	buf_free(&b);
	return s;
}

struct status *st_path_not_found(void)
{
	return status_new(404, "NotFound", "the server could not find the requested resource",
	                  cJSON_CreateObject());
}

struct status *st_method_not_allowed(void)
{
	return status_new(405, "MethodNotAllowed",
	                  "the server does not allow this method on the requested resource",
	                  cJSON_CreateObject());
}

struct status *st_expired(const char *msg)
{
	return status_new(410, "Expired", msg, NULL);
}

/* reason is the CauseType ("FieldValueInvalid"...), body is ErrorBody()
 * ("Invalid value: \"x\": detail"). */
void ferr_add(struct ferrs *e, const char *reason, const char *field, const char *body)
{
	if (!e->causes)
		e->causes = cJSON_CreateArray();
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "reason", reason);
	cJSON_AddStringToObject(c, "message", body);
	cJSON_AddStringToObject(c, "field", field);
	cJSON_AddItemToArray(e->causes, c);
	if (e->n)
		buf_adds(&e->msg, ", ");
	buf_addf(&e->msg, "%s: %s", field, body);
	e->n++;
}

/* errors.NewInvalid: `<Kind[.group]> "<name>" is invalid: <aggregate>`; an
 * aggregate of several errors is bracketed. Consumes e. */
struct status *st_invalid(const struct resource *r, const char *name, struct ferrs *e)
{
	char *m = e->n > 1 ? xasprintf("%s \"%s\" is invalid: [%s]", r->qkind, name, e->msg.p)
	                   : xasprintf("%s \"%s\" is invalid: %s", r->qkind, name, e->msg.p);
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "name", name);
	cJSON_AddStringToObject(d, "group", r->group);
	cJSON_AddStringToObject(d, "kind", r->kind);
	cJSON_AddItemToObject(d, "causes", e->causes);
	e->causes = NULL;
	buf_free(&e->msg);
	e->n = 0;
	struct status *s = status_new(422, "Invalid", m, d);
	free(m);
	return s;
}

/* A field error of kube/validate.c into the Status being built. */
static void ferr_from(void *ctx, const kvs__field_err *e)
{
	struct ferrs *fe = ctx;
	size_t n = kvs__ferr_format(NULL, 0, e, 0);
	char *body = xmalloc(n + 1);
	char *field = e->field_key ? xasprintf("%s[%s]", e->field, e->field_key) : xstrdup(e->field);

	kvs__ferr_format(body, n + 1, e, 0);
	ferr_add(fe, kvs__ferr_reason(e), field, body);
	free(body);
	free(field);
}

void validate_name(const struct resource *r, const char *name, const char *gen_name,
                   struct ferrs *fe)
{
	if (!name || !*name) {
		if (!gen_name || !*gen_name)
			ferr_add(fe, "FieldValueRequired", "metadata.name",
			         "Required value: name or generateName is required");
		return;
	}
	kvs__validate_name(name, r->type == RES_NAMESPACE, ferr_from, fe);
}

/* metadata.labels and metadata.annotations (ValidateObjectMeta). A value of
 * the wrong JSON type cannot be decoded at all: the caller's 400. */
static void validate_labels_annotations(cJSON *obj, struct ferrs *fe)
{
	cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const char *bags[2] = { "labels", "annotations" };

	for (int b = 0; b < 2; b++) {
		cJSON *bag = cJSON_GetObjectItemCaseSensitive(m, bags[b]);
		size_t n = 0, i = 0;
		if (!cJSON_IsObject(bag))
			continue;
		for (cJSON *c = bag->child; c; c = c->next)
			n++;
		if (!n)
			continue;
		kvs_kv *kv = xmalloc(n * sizeof(*kv));
		for (cJSON *c = bag->child; c; c = c->next, i++) {
			kv[i].key = c->string;
			kv[i].value = cJSON_IsString(c) ? c->valuestring : NULL;
		}
		if (b == 0)
			kvs__validate_labels(kv, n, ferr_from, fe);
		else
			kvs__validate_annotations(kv, n, ferr_from, fe);
		free(kv);
	}
}

/* validation.IsConfigMapKey */
static void config_key(const char *bag, const char *k, struct ferrs *fe)
{
	kvs__validate_config_key(bag, k, ferr_from, fe);
}

static struct status *undecodable(const struct resource *r, const char *why)
{
	char *m = xasprintf("%s in version \"%s\" cannot be handled as a %s: %s", r->kind, r->version,
	                    r->kind, why);
	struct status *s = st_bad_request(m);
	free(m);
	return s;
}

__thread const cJSON *tl_b64_made;

static struct status *validate_configmap(struct resource *r, cJSON *obj, struct ferrs *fe)
{
	cJSON *data = cJSON_GetObjectItemCaseSensitive(obj, "data");
	cJSON *bin = cJSON_GetObjectItemCaseSensitive(obj, "binaryData");
	cJSON *imm = cJSON_GetObjectItemCaseSensitive(obj, "immutable");
	if (data && !cJSON_IsNull(data) && !cJSON_IsObject(data))
		return undecodable(r, "json: cannot unmarshal into Go struct field ConfigMap.data of type map[string]string");
	if (bin && !cJSON_IsNull(bin) && !cJSON_IsObject(bin))
		return undecodable(r, "json: cannot unmarshal into Go struct field ConfigMap.binaryData of type map[string][]uint8");
	if (imm && !cJSON_IsNull(imm) && !cJSON_IsBool(imm))
		return undecodable(r, "json: cannot unmarshal into Go struct field ConfigMap.immutable of type bool");
	size_t total = 0;
	for (cJSON *c = cJSON_IsObject(data) ? data->child : NULL, *next; c; c = next) {
		next = c->next;
		if (cJSON_IsNull(c)) {
			cJSON_ReplaceItemInObjectCaseSensitive(data, c->string, cJSON_CreateString(""));
			continue;
		}
		if (!cJSON_IsString(c))
			return undecodable(r, "json: cannot unmarshal into Go struct field ConfigMap.data of type string");
		total += strlen(c->valuestring);
	}
	for (cJSON *c = cJSON_IsObject(bin) ? bin->child : NULL, *next; c; c = next) {
		next = c->next;
		if (cJSON_IsNull(c)) {
			cJSON_ReplaceItemInObjectCaseSensitive(bin, c->string, cJSON_CreateString(""));
			continue;
		}
		if (!cJSON_IsString(c))
			return undecodable(r, "json: cannot unmarshal into Go struct field ConfigMap.binaryData of type []uint8");
		char *canon;
		size_t dlen, bad;
		if (bin == tl_b64_made) {
			/* EVP_EncodeBlock's text: canonical, its length tells all */
			size_t n = strlen(c->valuestring);
			dlen = n / 4 * 3 - (n && c->valuestring[n - 1] == '=') -
			       (n > 1 && c->valuestring[n - 2] == '=');
			total += dlen;
			continue;
		}
		if (b64_canon(c->valuestring, &canon, &dlen, &bad) < 0) {
			char why[80];
			snprintf(why, sizeof why, "illegal base64 data at input byte %zu", bad);
			return undecodable(r, why);
		}
		if (canon)
			cJSON_SetValuestring(c, canon);
		free(canon);
		total += dlen;
	}
	for (cJSON *c = cJSON_IsObject(data) ? data->child : NULL; c; c = c->next) {
		config_key("data", c->string, fe);
		if (cJSON_IsObject(bin) && cJSON_GetObjectItemCaseSensitive(bin, c->string)) {
			char *b = xasprintf("Invalid value: \"%s\": duplicate of key present in binaryData", c->string);
			char *f = xasprintf("data[%s]", c->string);
			ferr_add(fe, "FieldValueInvalid", f, b);
			free(b);
			free(f);
		}
	}
	for (cJSON *c = cJSON_IsObject(bin) ? bin->child : NULL; c; c = c->next)
		config_key("binaryData", c->string, fe);
	if (total > KAPI_MAX_CM_BYTES)
		ferr_add(fe, "FieldValueTooLong", "[]", "Too long: must have at most 1048576 bytes");
	return NULL;
}

struct status *validate_object(struct resource *r, cJSON *obj, const char *name, struct ferrs *fe)
{
	(void)name;
	validate_labels_annotations(obj, fe);
	switch (r->type) {
	case RES_CONFIGMAP:
		return validate_configmap(r, obj, fe);
	case RES_LEASE: {
		cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
		if (spec && !cJSON_IsNull(spec) && !cJSON_IsObject(spec))
			return undecodable(r, "json: cannot unmarshal into Go struct field Lease.spec of type v1.LeaseSpec");
		cJSON *d = cJSON_GetObjectItemCaseSensitive(spec, "leaseDurationSeconds");
		if (d && !cJSON_IsNull(d) && !cJSON_IsNumber(d))
			return undecodable(r, "json: cannot unmarshal into Go struct field LeaseSpec.spec.leaseDurationSeconds of type int32");
		if (cJSON_IsNumber(d) && d->valuedouble <= 0)
			ferr_add(fe, "FieldValueInvalid", "spec.leaseDurationSeconds",
			         "Invalid value: 0: must be greater than 0");
		return NULL;
	}
	case RES_NAMESPACE:
	case RES_CUSTOM:
	case RES_POD:
	case RES_EVENT:
		return NULL;
	}
	return NULL;
}

static bool json_equal_maps(const cJSON *a, const cJSON *b)
{
	bool ea = !cJSON_IsObject(a) || !a->child, eb = !cJSON_IsObject(b) || !b->child;
	if (ea || eb)
		return ea == eb; /* nil and empty maps differ in Go, but both serialize away */
	return cJSON_Compare(a, b, 1);
}

/* ValidateConfigMapUpdate's immutability rules. */
void validate_immutable(const cJSON *oldo, const cJSON *newo, struct ferrs *fe)
{
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(oldo, "immutable")))
		return;
	static const char body[] = "Forbidden: field is immutable when `immutable` is set";
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(newo, "immutable")))
		ferr_add(fe, "FieldValueForbidden", "immutable", body);
	if (!json_equal_maps(cJSON_GetObjectItemCaseSensitive(oldo, "data"),
	                     cJSON_GetObjectItemCaseSensitive(newo, "data")))
		ferr_add(fe, "FieldValueForbidden", "data", body);
	if (!json_equal_maps(cJSON_GetObjectItemCaseSensitive(oldo, "binaryData"),
	                     cJSON_GetObjectItemCaseSensitive(newo, "binaryData")))
		ferr_add(fe, "FieldValueForbidden", "binaryData", body);
}

static void move_field(cJSON *from, cJSON *to, const char *k, bool sort)
{
	cJSON *c = cJSON_DetachItemFromObjectCaseSensitive(from, k);
	if (!c)
		return;
	if (cJSON_IsNull(c) || (cJSON_IsObject(c) && !c->child && sort) ||
	    (cJSON_IsArray(c) && !c->child) || (cJSON_IsString(c) && !*c->valuestring)) {
		cJSON_Delete(c); /* omitempty */
		return;
	}
	if (sort)
		json_sort_object(c);
	cJSON_AddItemToObject(to, k, c);
}

static void normalize_meta(cJSON *m)
{
	static const char *const order[] = {"name", "generateName", "namespace", "selfLink", "uid",
	                                    "resourceVersion", "generation", "creationTimestamp",
	                                    "deletionTimestamp", "deletionGracePeriodSeconds",
	                                    "labels", "annotations", "ownerReferences", "finalizers",
	                                    "managedFields"};
	cJSON *tmp = cJSON_CreateObject();
	for (size_t i = 0; i < sizeof order / sizeof *order; i++)
		move_field(m, tmp, order[i], i == 10 || i == 11);
	cJSON_Delete(cJSON_DetachItemFromObjectCaseSensitive(tmp, "selfLink"));
	/* unknown metadata fields are dropped, as the Go decoder does */
	while (m->child)
		cJSON_Delete(cJSON_DetachItemViaPointer(m, m->child));
	while (tmp->child) {
		cJSON *c = cJSON_DetachItemViaPointer(tmp, tmp->child);
		cJSON_AddItemToObject(m, c->string, c);
	}
	cJSON_Delete(tmp);
}

/* Rebuild obj with kind and apiVersion first, then the fields of the Go type in
 * declaration order; unknown fields of built-in types are dropped. */
void normalize_object(struct resource *r, cJSON *obj)
{
	cJSON *tmp = cJSON_CreateObject();
	cJSON_AddStringToObject(tmp, "kind", r->kind);
	cJSON_AddStringToObject(tmp, "apiVersion", r->api_version);
	cJSON_Delete(cJSON_DetachItemFromObjectCaseSensitive(obj, "kind"));
	cJSON_Delete(cJSON_DetachItemFromObjectCaseSensitive(obj, "apiVersion"));
	cJSON *meta = cJSON_DetachItemFromObjectCaseSensitive(obj, "metadata");
	if (!cJSON_IsObject(meta)) {
		cJSON_Delete(meta);
		meta = cJSON_CreateObject();
	}
	normalize_meta(meta);
	cJSON_AddItemToObject(tmp, "metadata", meta);
	switch (r->type) {
	case RES_CONFIGMAP: {
		cJSON *imm = cJSON_DetachItemFromObjectCaseSensitive(obj, "immutable");
		if (cJSON_IsBool(imm))
			cJSON_AddItemToObject(tmp, "immutable", imm);
		else
			cJSON_Delete(imm);
		move_field(obj, tmp, "data", true);
		move_field(obj, tmp, "binaryData", true);
		break;
	}
	case RES_LEASE: {
		cJSON *spec = cJSON_DetachItemFromObjectCaseSensitive(obj, "spec");
		cJSON *ns = cJSON_CreateObject();
		static const char *const order[] = {"holderIdentity", "leaseDurationSeconds", "acquireTime",
		                                    "renewTime", "leaseTransitions", "strategy",
		                                    "preferredHolder"};
		for (size_t i = 0; cJSON_IsObject(spec) && i < sizeof order / sizeof *order; i++)
			move_field(spec, ns, order[i], false);
		cJSON_Delete(spec);
		cJSON_AddItemToObject(tmp, "spec", ns);
		break;
	}
	case RES_NAMESPACE:
		move_field(obj, tmp, "spec", false);
		move_field(obj, tmp, "status", false);
		break;
	case RES_POD:
		move_field(obj, tmp, "spec", false);
		move_field(obj, tmp, "status", false);
		break;
	case RES_CUSTOM:
	case RES_EVENT:
		while (obj->child) {
			cJSON *c = cJSON_DetachItemViaPointer(obj, obj->child);
			cJSON_AddItemToObject(tmp, c->string, c);
		}
		break;
	}
	while (obj->child)
		cJSON_Delete(cJSON_DetachItemViaPointer(obj, obj->child));
	while (tmp->child) {
		cJSON *c = cJSON_DetachItemViaPointer(tmp, tmp->child);
		cJSON_AddItemToObject(obj, c->string, c);
	}
	cJSON_Delete(tmp);
}
