/* Strategic merge patch (k8s.io/apimachinery/pkg/util/strategicpatch) for
 * the kinds served here: maps merge, `$patch: replace|delete` in a map,
 * `$retainKeys`, lists merged by their Go types' patchMergeKey (ownerReferences
 * by uid, containers and volumes by name, ...), merge-strategy lists of
 * primitives (finalizers) as a union with `$deleteFromPrimitiveList/<f>`;
 * every other list is replaced. `$setElementOrder` is accepted and ignored. */
#include "kapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum strategy { S_REPLACE, S_KEYED, S_PRIMITIVE };

struct rule {
	int kind;         /* -1 = any kind */
	const char *path; /* dotted, "[]" for list items */
	enum strategy s;
	const char *key;
};

static const struct rule RULES[] = {
	{-1, "metadata.ownerReferences", S_KEYED, "uid"},
	{-1, "metadata.finalizers", S_PRIMITIVE, NULL},
	{RES_POD, "spec.containers", S_KEYED, "name"},
	{RES_POD, "spec.initContainers", S_KEYED, "name"},
	{RES_POD, "spec.ephemeralContainers", S_KEYED, "name"},
	{RES_POD, "spec.volumes", S_KEYED, "name"},
	{RES_POD, "spec.imagePullSecrets", S_KEYED, "name"},
	{RES_POD, "spec.hostAliases", S_KEYED, "ip"},
	{RES_POD, "spec.containers[].env", S_KEYED, "name"},
	{RES_POD, "spec.containers[].ports", S_KEYED, "containerPort"},
	{RES_POD, "spec.containers[].volumeMounts", S_KEYED, "mountPath"},
	{RES_POD, "spec.containers[].volumeDevices", S_KEYED, "devicePath"},
	{RES_POD, "spec.containers[].resizePolicy", S_KEYED, "resourceName"},
	{RES_POD, "spec.initContainers[].env", S_KEYED, "name"},
	{RES_POD, "spec.initContainers[].ports", S_KEYED, "containerPort"},
	{RES_POD, "spec.initContainers[].volumeMounts", S_KEYED, "mountPath"},
	{RES_POD, "status.conditions", S_KEYED, "type"},
	{RES_POD, "status.podIPs", S_KEYED, "ip"},
};

static const struct rule *rule_of(const struct resource *r, const char *path)
{
	for (size_t i = 0; i < sizeof RULES / sizeof *RULES; i++)
		if ((RULES[i].kind < 0 || RULES[i].kind == (int)r->type) && !strcmp(RULES[i].path, path))
			return &RULES[i];
	return NULL;
}

static cJSON *strip(cJSON *o)
{
	if (cJSON_IsObject(o)) {
		for (cJSON *c = o->child; c;) {
			cJSON *next = c->next;
			if (c->string[0] == '$')
				cJSON_Delete(cJSON_DetachItemViaPointer(o, c));
			else
				strip(c);
			c = next;
		}
	} else if (cJSON_IsArray(o)) {
		for (cJSON *c = o->child; c; c = c->next)
			strip(c);
	}
	return o;
}

static const char *directive(const cJSON *o)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "$patch"));
}

static cJSON *merge_map(const struct resource *r, cJSON *t, const cJSON *p, const char *path,
                        const char **err);

static bool same_key(const cJSON *a, const cJSON *b, const char *key)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, key);
	const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, key);
	return x && y && cJSON_Compare(x, y, 1);
}

static cJSON *merge_list(const struct resource *r, cJSON *t, const cJSON *p, const char *path,
                         const struct rule *ru, const char **err)
{
	if (!ru || ru->s == S_REPLACE || !cJSON_IsArray(t)) {
		cJSON_Delete(t);
		return strip(cJSON_Duplicate(p, 1));
	}
	const cJSON *x;
	cJSON_ArrayForEach(x, p)
		if (cJSON_IsObject(x) && directive(x) && !strcmp(directive(x), "replace")) {
			cJSON *n = cJSON_CreateArray();
			const cJSON *y;
			cJSON_ArrayForEach(y, p)
				if (!(cJSON_IsObject(y) && directive(y)))
					cJSON_AddItemToArray(n, strip(cJSON_Duplicate(y, 1)));
			cJSON_Delete(t);
			return n;
		}
	if (ru->s == S_PRIMITIVE) {
		cJSON_ArrayForEach(x, p) {
			bool have = false;
			const cJSON *y;
			cJSON_ArrayForEach(y, t)
				have |= cJSON_Compare(x, y, 1);
			if (!have)
				cJSON_AddItemToArray(t, cJSON_Duplicate(x, 1));
		}
		return t;
	}
	char *ipath = xasprintf("%s[]", path);
	cJSON_ArrayForEach(x, p) {
		if (!cJSON_IsObject(x) || !cJSON_GetObjectItemCaseSensitive(x, ru->key)) {
			*err = "map does not contain declared merge key";
			free(ipath);
			cJSON_Delete(t);
			return NULL;
		}
		cJSON *hit = NULL;
		for (cJSON *y = t->child; y && !hit; y = y->next)
			if (same_key(x, y, ru->key))
				hit = y;
		const char *d = directive(x);
		if (d && !strcmp(d, "delete")) {
			if (hit)
				cJSON_Delete(cJSON_DetachItemViaPointer(t, hit));
			continue;
		}
		if (hit) {
			cJSON *merged = merge_map(r, cJSON_Duplicate(hit, 1), x, ipath, err);
			if (!merged) {
				free(ipath);
				cJSON_Delete(t);
				return NULL;
			}
			cJSON_ReplaceItemViaPointer(t, hit, merged);
		} else {
			cJSON_AddItemToArray(t, strip(cJSON_Duplicate(x, 1)));
		}
	}
	free(ipath);
	return t;
}

static cJSON *merge_map(const struct resource *r, cJSON *t, const cJSON *p, const char *path,
                        const char **err)
{
	const char *d = directive(p);
	if (d && !strcmp(d, "replace")) {
		cJSON_Delete(t);
		return strip(cJSON_Duplicate(p, 1));
	}
	if (!cJSON_IsObject(t)) {
		cJSON_Delete(t);
		t = cJSON_CreateObject();
	}
	for (const cJSON *c = p->child; c; c = c->next) {
		if (!strncmp(c->string, "$deleteFromPrimitiveList/", 25)) {
			cJSON *list = cJSON_GetObjectItemCaseSensitive(t, c->string + 25);
			const cJSON *v;
			cJSON_ArrayForEach(v, c)
				for (cJSON *y = list ? list->child : NULL; y;) {
					cJSON *next = y->next;
					if (cJSON_Compare(v, y, 1))
						cJSON_Delete(cJSON_DetachItemViaPointer(list, y));
					y = next;
				}
			continue;
		}
		if (c->string[0] == '$')
			continue;
		char *sub = *path ? xasprintf("%s.%s", path, c->string) : xstrdup(c->string);
		if (cJSON_IsNull(c)) {
			cJSON_DeleteItemFromObjectCaseSensitive(t, c->string);
		} else if (cJSON_IsObject(c)) {
			const char *cd = directive(c);
			cJSON *old = cJSON_DetachItemFromObjectCaseSensitive(t, c->string);
			if (cd && !strcmp(cd, "delete")) {
				cJSON_Delete(old);
			} else {
				cJSON *m = merge_map(r, old, c, sub, err);
				if (!m) {
					free(sub);
					cJSON_Delete(t);
					return NULL;
				}
				cJSON_AddItemToObject(t, c->string, m);
			}
		} else if (cJSON_IsArray(c)) {
			cJSON *old = cJSON_DetachItemFromObjectCaseSensitive(t, c->string);
			cJSON *m = merge_list(r, old, c, sub, rule_of(r, sub), err);
			if (!m) {
				free(sub);
				cJSON_Delete(t);
				return NULL;
			}
			cJSON_AddItemToObject(t, c->string, m);
		} else {
			cJSON_DeleteItemFromObjectCaseSensitive(t, c->string);
			cJSON_AddItemToObject(t, c->string, cJSON_Duplicate(c, 1));
		}
		free(sub);
	}
	const cJSON *retain = cJSON_GetObjectItemCaseSensitive(p, "$retainKeys");
	if (cJSON_IsArray(retain)) {
		for (cJSON *c = t->child; c;) {
			cJSON *next = c->next;
			bool keep = false;
			const cJSON *k;
			cJSON_ArrayForEach(k, retain)
				keep |= cJSON_IsString(k) && !strcmp(k->valuestring, c->string);
			if (!keep)
				cJSON_Delete(cJSON_DetachItemViaPointer(t, c));
			c = next;
		}
	}
	return t;
}

cJSON *smp_apply(const struct resource *r, cJSON *target, const cJSON *patch, const char **err)
{
	*err = NULL;
	cJSON *out = merge_map(r, target, patch, "", err);
	if (!out && !*err)
		*err = "invalid strategic merge patch";
	return out;
}
