/* CustomResourceDefinitions (apiextensions.k8s.io/v1): applying one makes
 * the server serve its custom resource — every served version, namespaced or
 * cluster-scoped, with the status subresource when the version declares it;
 * deleting it deletes the custom objects and stops serving them. The checks
 * are the ones clients meet first (name = plural.group, a dotted group,
 * names, scope, exactly one storage version). The version's schema and
 * printer columns are kept on the resource (schema.c applies them). */
#include "kapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cJSON *field(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *sfield(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(field(o, k));
}

static const char *meta_name(const cJSON *o)
{
	const char *n = sfield(field(o, "metadata"), "name");
	return n ? n : "";
}

static bool dns_label(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static struct resource *crd_resource(void)
{
	return resource_find("apiextensions.k8s.io", "v1", "customresourcedefinitions");
}

static void add_condition(cJSON *conds, const char *type, const char *reason, const char *msg,
                          const char *ts)
{
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "type", type);
	cJSON_AddStringToObject(c, "status", "True");
	cJSON_AddStringToObject(c, "lastTransitionTime", ts);
	cJSON_AddStringToObject(c, "reason", reason);
	cJSON_AddStringToObject(c, "message", msg);
	cJSON_AddItemToArray(conds, c);
}

struct status *crd_validate(cJSON *crd, const char *name)
{
	struct ferrs fe = {0};
	const cJSON *spec = field(crd, "spec");
	const cJSON *names = field(spec, "names");
	const char *group = sfield(spec, "group");
	const char *plural = sfield(names, "plural");
	const char *kind = sfield(names, "kind");
	const char *scope = sfield(spec, "scope");
	const cJSON *versions = field(spec, "versions");
	if (!group || !*group)
		ferr_add(&fe, "FieldValueRequired", "spec.group", "Required value");
	else if (!strchr(group, '.'))
		ferr_add(&fe, "FieldValueInvalid", "spec.group",
		         "Invalid value: \"\": should be a domain with at least one dot");
	if (!dns_label(plural))
		ferr_add(&fe, "FieldValueInvalid", "spec.names.plural",
		         "Invalid value: \"\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'");
	if (!kind || !*kind)
		ferr_add(&fe, "FieldValueRequired", "spec.names.kind", "Required value");
	if (!scope || (strcmp(scope, "Namespaced") != 0 && strcmp(scope, "Cluster") != 0))
		ferr_add(&fe, "FieldValueNotSupported", "spec.scope",
		         "Unsupported value: \"\": supported values: \"Cluster\", \"Namespaced\"");
	int storage = 0, nv = 0;
	const cJSON *v;
	cJSON_ArrayForEach(v, (cJSON_IsArray(versions) ? versions : NULL)) {
		nv++;
		storage += cJSON_IsTrue(field(v, "storage"));
		if (!dns_label(sfield(v, "name")))
			ferr_add(&fe, "FieldValueInvalid", "spec.versions[].name",
			         "Invalid value: \"\": a DNS-1035 label is required");
	}
	if (nv == 0)
		ferr_add(&fe, "FieldValueRequired", "spec.versions", "Required value: must have exactly one version marked as storage version");
	else if (storage != 1)
		ferr_add(&fe, "FieldValueInvalid", "spec.versions",
		         "Invalid value: must have exactly one version marked as storage version");
	if (group && plural && fe.n == 0) {
		char *want = xasprintf("%s.%s", plural, group);
		if (strcmp(name, want) != 0) {
			char *b = xasprintf("Invalid value: \"%s\": must be spec.names.plural+\".\"+spec.group", name);
			ferr_add(&fe, "FieldValueInvalid", "metadata.name", b);
			free(b);
		}
		free(want);
	}
	if (fe.n)
		return st_invalid(crd_resource(), name, &fe);
	/* the apiextensions controllers' verdict, at once */
	char ts[32];
	now_rfc3339(ts);
	cJSON_DeleteItemFromObjectCaseSensitive(crd, "status");
	cJSON *st = cJSON_AddObjectToObject(crd, "status");
	cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
	add_condition(conds, "NamesAccepted", "NoConflicts", "no conflicts found", ts);
	add_condition(conds, "Established", "InitialNamesAccepted", "the initial names have been accepted", ts);
	cJSON_AddItemToObject(st, "acceptedNames", cJSON_Duplicate(names, 1));
	cJSON *stored = cJSON_AddArrayToObject(st, "storedVersions");
	cJSON_ArrayForEach(v, versions)
		if (cJSON_IsTrue(field(v, "storage")))
			cJSON_AddItemToArray(stored, cJSON_CreateString(sfield(v, "name")));
	return NULL;
}

struct status *crd_apply_locked(const cJSON *crd)
{
	const cJSON *spec = field(crd, "spec");
	const cJSON *names = field(spec, "names");
	const char *group = sfield(spec, "group"), *plural = sfield(names, "plural");
	const char *kind = sfield(names, "kind"), *singular = sfield(names, "singular");
	bool namespaced = strcmp(sfield(spec, "scope"), "Namespaced") == 0;
	const cJSON *v;
	cJSON_ArrayForEach(v, field(spec, "versions")) {
		const char *ver = sfield(v, "name");
		bool served = !field(v, "served") || cJSON_IsTrue(field(v, "served"));
		struct resource *r = resource_find_any(group, ver, plural);
		if (!r && !served)
			continue;
		if (!r) {
			r = resource_add(RES_CUSTOM, group, ver, plural, kind);
			r->crd_name = xasprintf("%s.%s", plural, group);
			if (singular && *singular) {
				free(r->singular);
				r->singular = xstrdup(singular);
			}
		} else if (r->type != RES_CUSTOM || (r->crd_name && strcmp(r->crd_name, meta_name(crd)) != 0)) {
			return st_conflict(crd_resource(), meta_name(crd), "the resource is served already");
		}
		/* scope and subresources follow the CRD (a re-created CRD reuses the slot) */
		r->namespaced = namespaced;
		r->status_sub = cJSON_IsObject(field(field(v, "subresources"), "status"));
		/* schema and columns: readers may hold the old ones without the
		 * lock, so those are kept (reachable) rather than freed */
		static cJSON *graveyard;
		if (!graveyard)
			graveyard = cJSON_CreateArray();
		const cJSON *sch = field(field(v, "schema"), "openAPIV3Schema");
		const cJSON *cols = field(v, "additionalPrinterColumns");
		if (r->schema)
			cJSON_AddItemToArray(graveyard, r->schema);
		if (r->columns)
			cJSON_AddItemToArray(graveyard, r->columns);
		__atomic_store_n(&r->schema, cJSON_IsObject(sch) ? cJSON_Duplicate(sch, 1) : NULL, __ATOMIC_RELEASE);
		__atomic_store_n(&r->columns, cJSON_IsArray(cols) ? cJSON_Duplicate(cols, 1) : NULL, __ATOMIC_RELEASE);
		if (!r->crd_name)
			r->crd_name = xasprintf("%s.%s", plural, group);
		__atomic_store_n(&r->removed, !served, __ATOMIC_RELEASE);
	}
	return NULL;
}

void crd_remove_locked(const cJSON *crd)
{
	const cJSON *spec = field(crd, "spec");
	const char *group = sfield(spec, "group"), *plural = sfield(field(spec, "names"), "plural");
	const cJSON *v;
	if (!group || !plural)
		return;
	cJSON_ArrayForEach(v, field(spec, "versions")) {
		struct resource *r = resource_find_any(group, sfield(v, "name"), plural);
		if (!r || r->type != RES_CUSTOM)
			continue;
		while (r->n)
			store_delete_locked(r->items[r->n - 1]);
		__atomic_store_n(&r->removed, true, __ATOMIC_RELEASE);
	}
}
