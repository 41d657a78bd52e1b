/* A custom resource's structural schema (spec.versions[].schema.openAPIV3Schema)
 * as the apiextensions server applies it: unknown fields pruned unless
 * x-kubernetes-preserve-unknown-fields, then types, required, enum and
 * bounds checked with kube-openapi's messages; and the Table columns of
 * additionalPrinterColumns (simple JSONPath: .a.b, [n], [?(@.k=="v")]). */
#include "kapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cJSON *sf(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *type_name(const cJSON *v)
{
	if (cJSON_IsString(v))
		return "string";
	if (cJSON_IsBool(v))
		return "boolean";
	if (cJSON_IsNull(v))
		return "null";
	if (cJSON_IsArray(v))
		return "array";
	if (cJSON_IsObject(v))
		return "object";
	return v->valuedouble == (double)(long long)v->valuedouble ? "integer" : "number";
}

static bool type_ok(const char *want, const cJSON *v)
{
	const char *got = type_name(v);
	if (!strcmp(want, got))
		return true;
	return !strcmp(want, "number") && !strcmp(got, "integer");
}

static void value_str(const cJSON *v, struct buf *b)
{
	char *s = cJSON_PrintUnformatted(v);
	buf_adds(b, s);
	free(s);
}

static void check(const cJSON *sch, cJSON *v, const char *path, bool root, struct ferrs *fe)
{
	if (!cJSON_IsObject(sch))
		return;
	const char *type = cJSON_GetStringValue(sf(sch, "type"));
	bool ios = cJSON_IsTrue(sf(sch, "x-kubernetes-int-or-string"));
	if (cJSON_IsNull(v) && cJSON_IsTrue(sf(sch, "nullable")))
		return;
	if (ios) {
		if (!cJSON_IsString(v) && strcmp(type_name(v), "integer") != 0) {
			char *b = xasprintf("Invalid value: \"%s\": %s in body must be of type integer,string: \"%s\"",
			                    type_name(v), path, type_name(v));
			ferr_add(fe, "FieldValueInvalid", path, b);
			free(b);
			return;
		}
	} else if (type && !type_ok(type, v)) {
		char *b = xasprintf("Invalid value: \"%s\": %s in body must be of type %s: \"%s\"", type_name(v),
		                    path, type, type_name(v));
		ferr_add(fe, "FieldValueInvalid", path, b);
		free(b);
		return;
	}
	const cJSON *en = sf(sch, "enum");
	if (cJSON_IsArray(en)) {
		bool hit = false;
		const cJSON *e;
		cJSON_ArrayForEach(e, en)
			hit |= cJSON_Compare(e, v, 1);
		if (!hit) {
			struct buf b = {0};
			buf_adds(&b, "Unsupported value: ");
			value_str(v, &b);
			buf_adds(&b, ": supported values: ");
			int i = 0;
			cJSON_ArrayForEach(e, en) {
				if (i++)
					buf_adds(&b, ", ");
				value_str(e, &b);
			}
			ferr_add(fe, "FieldValueNotSupported", path, b.p);
			buf_free(&b);
		}
	}
	if (cJSON_IsNumber(v)) {
		const cJSON *mn = sf(sch, "minimum"), *mx = sf(sch, "maximum");
		if (cJSON_IsNumber(mn) && v->valuedouble < mn->valuedouble) {
			char *b = xasprintf("Invalid value: %g: %s in body should be greater than or equal to %g",
			                    v->valuedouble, path, mn->valuedouble);
			ferr_add(fe, "FieldValueInvalid", path, b);
			free(b);
		}
		if (cJSON_IsNumber(mx) && v->valuedouble > mx->valuedouble) {
			char *b = xasprintf("Invalid value: %g: %s in body should be less than or equal to %g",
			                    v->valuedouble, path, mx->valuedouble);
			ferr_add(fe, "FieldValueInvalid", path, b);
			free(b);
		}
	}
	if (cJSON_IsArray(v)) {
		const cJSON *items = sf(sch, "items");
		int i = 0;
		for (cJSON *x = v->child; x; x = x->next, i++) {
			char *p = xasprintf("%s[%d]", path, i);
			check(items, x, p, false, fe);
			free(p);
		}
		return;
	}
	if (!cJSON_IsObject(v))
		return;
	const cJSON *props = sf(sch, "properties");
	const cJSON *addl = sf(sch, "additionalProperties");
	bool preserve = cJSON_IsTrue(sf(sch, "x-kubernetes-preserve-unknown-fields")) ||
	                cJSON_IsTrue(addl);
	bool embedded = cJSON_IsTrue(sf(sch, "x-kubernetes-embedded-resource"));
	for (cJSON *x = v->child; x;) {
		cJSON *next = x->next;
		const cJSON *ps = sf(props, x->string);
		bool meta = (root || embedded) &&
		            (!strcmp(x->string, "apiVersion") || !strcmp(x->string, "kind") ||
		             !strcmp(x->string, "metadata"));
		char *p = *path ? xasprintf("%s.%s", path, x->string) : xstrdup(x->string);
		if (meta) {
		} else if (ps) {
			check(ps, x, p, false, fe);
		} else if (cJSON_IsObject(addl)) {
			check(addl, x, p, false, fe);
		} else if (!preserve) {
			cJSON_Delete(cJSON_DetachItemViaPointer(v, x)); /* pruned */
		}
		free(p);
		x = next;
	}
	const cJSON *req;
	cJSON_ArrayForEach(req, sf(sch, "required")) {
		if (!cJSON_IsString(req) || sf(v, req->valuestring))
			continue;
		char *p = *path ? xasprintf("%s.%s", path, req->valuestring) : xstrdup(req->valuestring);
		ferr_add(fe, "FieldValueRequired", p, "Required value");
		free(p);
	}
}

void schema_apply(const struct resource *r, cJSON *obj, struct ferrs *fe)
{
	const cJSON *sch = __atomic_load_n(&r->schema, __ATOMIC_ACQUIRE);
	if (sch)
		check(sch, obj, "", true, fe);
}

static const char AGE_DESC[] =
	"CreationTimestamp is a timestamp representing the server time when this object was created. "
	"It is not guaranteed to be set in happens-before order across separate operations. Clients "
	"may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the "
	"system. Read-only. Null for lists. More info: "
	"https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

void schema_columns(const struct resource *r, cJSON *cols)
{
	const cJSON *pc = __atomic_load_n(&r->columns, __ATOMIC_ACQUIRE);
	if (cJSON_GetArraySize(pc) == 0) {
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "name", "Age");
		cJSON_AddStringToObject(c, "type", "date");
		cJSON_AddStringToObject(c, "format", "");
		cJSON_AddStringToObject(c, "description", AGE_DESC);
		cJSON_AddNumberToObject(c, "priority", 0);
		cJSON_AddItemToArray(cols, c);
		return;
	}
	const cJSON *x;
	cJSON_ArrayForEach(x, pc) {
		cJSON *c = cJSON_CreateObject();
		const char *f = cJSON_GetStringValue(sf(x, "format"));
		const char *d = cJSON_GetStringValue(sf(x, "description"));
		const cJSON *p = sf(x, "priority");
		cJSON_AddStringToObject(c, "name", cJSON_GetStringValue(sf(x, "name")) ? cJSON_GetStringValue(sf(x, "name")) : "");
		cJSON_AddStringToObject(c, "type", cJSON_GetStringValue(sf(x, "type")) ? cJSON_GetStringValue(sf(x, "type")) : "string");
		cJSON_AddStringToObject(c, "format", f ? f : "");
		cJSON_AddStringToObject(c, "description", d ? d : "");
		cJSON_AddNumberToObject(c, "priority", cJSON_IsNumber(p) ? p->valuedouble : 0);
		cJSON_AddItemToArray(cols, c);
	}
}

/* One step of a simple JSONPath; returns the next node or NULL. */
static const cJSON *jp_step(const cJSON *cur, const char **pp)
{
	const char *p = *pp;
	if (*p == '.') {
		p++;
		const char *e = p;
		while (*e && *e != '.' && *e != '[')
			e++;
		char *k = xasprintf("%.*s", (int)(e - p), p);
		const cJSON *n = cJSON_IsObject(cur) ? sf(cur, k) : NULL;
		free(k);
		*pp = e;
		return n;
	}
	if (*p == '[') {
		const char *e = strchr(p, ']');
		if (!e)
			return NULL;
		*pp = e + 1;
		if (p[1] == '?') {
			/* [?(@.key=="value")] */
			const char *k0 = strstr(p, "@.");
			const char *eq = strstr(p, "==");
			if (!k0 || !eq || eq < k0)
				return NULL;
			char *k = xasprintf("%.*s", (int)(eq - k0 - 2), k0 + 2);
			const char *v0 = eq + 2;
			while (*v0 == ' ')
				v0++;
			char q = *v0 == '"' || *v0 == '\'' ? *v0 : 0;
			const char *v1 = q ? strchr(v0 + 1, q) : strchr(v0, ')');
			char *v = v1 ? xasprintf("%.*s", (int)(v1 - v0 - (q ? 1 : 0)), v0 + (q ? 1 : 0)) : xstrdup("");
			const cJSON *hit = NULL, *x, *arr = cJSON_IsArray(cur) ? cur : NULL;
			cJSON_ArrayForEach(x, arr) {
				const char *s = cJSON_GetStringValue(sf(x, k));
				if (!hit && s && !strcmp(s, v))
					hit = x;
			}
			free(k);
			free(v);
			return hit;
		}
		int i = atoi(p + 1);
		return cJSON_IsArray(cur) ? cJSON_GetArrayItem(cur, i) : NULL;
	}
	return NULL;
}

static const cJSON *jsonpath(const cJSON *obj, const char *path)
{
	const char *p = path;
	if (*p == '{')
		p++;
	const cJSON *cur = obj;
	while (cur && *p && *p != '}')
		cur = jp_step(cur, &p);
	return cur;
}

void schema_cells(const struct resource *r, const cJSON *obj, cJSON *cells)
{
	const cJSON *pc = __atomic_load_n(&r->columns, __ATOMIC_ACQUIRE);
	char age[32];
	if (cJSON_GetArraySize(pc) == 0) {
		human_duration(rfc3339_age(cJSON_GetStringValue(sf(sf(obj, "metadata"), "creationTimestamp"))), age);
		cJSON_AddItemToArray(cells, cJSON_CreateString(age));
		return;
	}
	const cJSON *x;
	cJSON_ArrayForEach(x, pc) {
		const char *jp = cJSON_GetStringValue(sf(x, "jsonPath"));
		const char *type = cJSON_GetStringValue(sf(x, "type"));
		const cJSON *v = jp ? jsonpath(obj, jp) : NULL;
		if (!v || cJSON_IsNull(v)) {
			cJSON_AddItemToArray(cells, cJSON_CreateNull());
		} else if (type && !strcmp(type, "date") && cJSON_IsString(v)) {
			human_duration(rfc3339_age(v->valuestring), age);
			cJSON_AddItemToArray(cells, cJSON_CreateString(age));
		} else if (type && !strcmp(type, "string") && !cJSON_IsString(v)) {
			char *s = cJSON_PrintUnformatted(v);
			cJSON_AddItemToArray(cells, cJSON_CreateString(s));
			free(s);
		} else {
			cJSON_AddItemToArray(cells, cJSON_Duplicate(v, 1));
		}
	}
}
