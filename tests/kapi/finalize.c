/* Deletion as the real server does it: finalizers and graceful deletion
 * (registry/generic Store.Delete, rest.BeforeDelete), the garbage
 * collector's work (done at once: Orphan, Background, Foreground with its
 * foregroundDeletion finalizer) and the namespace controller's (a deleted
 * namespace is Terminating until its content is gone). Everything here runs
 * under the store lock. */
#include "kapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FG_FINALIZER "foregroundDeletion"

static cJSON *meta(cJSON *obj)
{
	cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	if (!cJSON_IsObject(m)) {
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "metadata");
		m = cJSON_AddObjectToObject(obj, "metadata");
	}
	return m;
}

static const cJSON *cmeta(const cJSON *obj)
{
	return cJSON_GetObjectItemCaseSensitive(obj, "metadata");
}

static const char *mstr(const cJSON *obj, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cmeta(obj), k));
}

bool obj_deleting(const cJSON *obj)
{
	return cJSON_IsString(cJSON_GetObjectItemCaseSensitive(cmeta(obj), "deletionTimestamp"));
}

bool obj_has_finalizers(const cJSON *obj)
{
	return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cmeta(obj), "finalizers")) > 0;
}

static bool has_finalizer(const cJSON *obj, const char *f)
{
	const cJSON *x;
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(cmeta(obj), "finalizers"))
		if (cJSON_IsString(x) && strcmp(x->valuestring, f) == 0)
			return true;
	return false;
}

bool obj_fg_pending(const cJSON *obj)
{
	return obj_deleting(obj) && has_finalizer(obj, FG_FINALIZER);
}

static void rfc3339_in(int64_t secs, char out[32])
{
	time_t t = time(NULL) + (time_t)secs;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* markAsDeleting / BeforeDelete: deletionTimestamp, the grace period, and a
 * generation bump for objects that carry one. */
static void mark_deleting(cJSON *obj, int64_t grace)
{
	cJSON *m = meta(obj);
	if (!obj_deleting(obj)) {
		cJSON *g = cJSON_GetObjectItemCaseSensitive(m, "generation");
		if (cJSON_IsNumber(g) && g->valuedouble > 0)
			cJSON_SetNumberValue(g, g->valuedouble + 1);
	}
	char ts[32];
	rfc3339_in(grace, ts);
	cJSON_DeleteItemFromObjectCaseSensitive(m, "deletionTimestamp");
	cJSON_AddStringToObject(m, "deletionTimestamp", ts);
	cJSON_DeleteItemFromObjectCaseSensitive(m, "deletionGracePeriodSeconds");
	cJSON_AddNumberToObject(m, "deletionGracePeriodSeconds", (double)grace);
}

static bool owned_by(const cJSON *obj, const char *uid, bool blocking_only)
{
	const cJSON *ref;
	cJSON_ArrayForEach(ref, cJSON_GetObjectItemCaseSensitive(cmeta(obj), "ownerReferences")) {
		const char *u = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "uid"));
		if (u && strcmp(u, uid) == 0 &&
		    (!blocking_only || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ref, "blockOwnerDeletion"))))
			return true;
	}
	return false;
}

/* Dependents live in the owner's namespace (any, for a cluster-scoped owner). */
static bool dependent(const struct objver *o, const char *uid, const char *ns, bool blocking_only)
{
	return (!*ns || strcmp(o->ns, ns) == 0) && owned_by(o->obj, uid, blocking_only);
}

/* The dependents of uid now, referenced (the index's order: resource, key);
 * the caller unrefs each and frees the array. Taken before any write, since
 * writes change the index. */
static size_t dependents_locked(const char *uid, struct objver ***out)
{
	size_t n = owners_dependents_locked(uid, out);
	for (size_t i = 0; i < n; i++)
		objver_ref((*out)[i]);
	return n;
}

static void orphan_dependents_locked(const char *uid, const char *ns)
{
	struct objver **deps;
	size_t nd = dependents_locked(uid, &deps);
	for (size_t k = 0; k < nd; k++) {
		struct objver *o = deps[k];
		struct resource *r = o->res;
		if (!resource_served(r) || store_get_key_locked(r, o->key) != o || !dependent(o, uid, ns, false))
			continue;
		cJSON *n = cJSON_Duplicate(o->obj, 1);
		cJSON *refs = cJSON_GetObjectItemCaseSensitive(meta(n), "ownerReferences");
		for (cJSON *ref = refs ? refs->child : NULL; ref;) {
			cJSON *next = ref->next;
			const char *ru = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "uid"));
			if (ru && strcmp(ru, uid) == 0)
				cJSON_Delete(cJSON_DetachItemViaPointer(refs, ref));
			ref = next;
		}
		if (cJSON_GetArraySize(refs) == 0)
			cJSON_DeleteItemFromObjectCaseSensitive(meta(n), "ownerReferences");
		objver_ref(o);
		store_put_locked(r, n, o);
		objver_unref(o);
	}
	for (size_t k = 0; k < nd; k++)
		objver_unref(deps[k]);
	free(deps);
}

/* How the garbage collector sees one owner reference of a dependent
 * (classifyReferences): its owner exists (solid), is gone or was replaced
 * by another object of the same name (dangling), exists and waits in a
 * Foreground deletion (waiting), or is of a kind this server does not
 * serve, so the reference cannot be resolved at all (unknown). */
enum ref_class { REF_SOLID, REF_DANGLING, REF_WAITING, REF_UNKNOWN };

static struct resource *kind_resource(const char *api_version, const char *kind)
{
	for (size_t i = 0; i < resource_count(); i++) {
		struct resource *r = g_store.res[i];
		if (resource_served(r) && strcmp(r->api_version, api_version) == 0 &&
		    strcmp(r->kind, kind) == 0)
			return r;
	}
	return NULL;
}

/* The owner is looked up as the collector does: by apiVersion, kind and
 * name in the dependent's namespace (a cluster-scoped kind: by name), and
 * must carry the reference's uid. A cluster-scoped dependent cannot name a
 * namespaced owner (unresolvable since v1.20). */
static enum ref_class classify_ref(const cJSON *ref, const char *ns)
{
	const char *av = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "apiVersion"));
	const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "kind"));
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "name"));
	const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "uid"));
	struct resource *r = av && kind ? kind_resource(av, kind) : NULL;
	if (!r || !name || !uid || (r->namespaced && !*ns))
		return REF_UNKNOWN;
	struct objver *o = store_get_locked(r, r->namespaced ? ns : "", name);
	const char *ou = o ? mstr(o->obj, "uid") : NULL;
	if (!ou || strcmp(ou, uid) != 0)
		return REF_DANGLING;
	return obj_fg_pending(o->obj) ? REF_WAITING : REF_SOLID;
}

/* attemptToDeleteItem for dependent o of owner uid, which is gone
 * (owner_waiting false) or waits for its dependents in a Foreground
 * deletion. A dependent that still has an owner that exists is not
 * deleted: the collector patches out its references to the owners gone
 * or waiting (a write: new resourceVersion, MODIFIED event), so it blocks
 * nothing any more. One with no such owner is deleted. A reference the
 * collector cannot resolve (a kind not served) stops it: the real one
 * retries it forever and changes nothing. The reference to uid itself is
 * taken by uid, whatever kind and name it gives. */
static void collect_dependent_locked(struct objver *o, const char *uid, bool owner_waiting)
{
	const cJSON *ref, *refs = cJSON_GetObjectItemCaseSensitive(cmeta(o->obj), "ownerReferences");
	size_t n = (size_t)cJSON_GetArraySize(refs), i = 0, solid = 0, gone = 0;
	bool *drop = xmalloc((n ? n : 1) * sizeof *drop);
	cJSON_ArrayForEach(ref, refs) {
		const char *ru = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "uid"));
		enum ref_class c = ru && strcmp(ru, uid) == 0 ? (owner_waiting ? REF_WAITING : REF_DANGLING)
		                                               : classify_ref(ref, o->ns);
		if (c == REF_UNKNOWN) {
			free(drop);
			return;
		}
		drop[i] = c != REF_SOLID;
		solid += c == REF_SOLID;
		gone += c != REF_SOLID;
		i++;
	}
	if (!solid) {
		struct delete_opts d = {.policy = "Background", .grace = 0};
		struct objver *out = NULL;
		bool removed = false;
		obj_delete_locked(o->res, o, &d, &out, &removed);
		objver_unref(out);
	} else if (gone) {
		cJSON *nobj = cJSON_Duplicate(o->obj, 1);
		cJSON *nrefs = cJSON_GetObjectItemCaseSensitive(meta(nobj), "ownerReferences");
		i = 0;
		for (cJSON *x = nrefs->child; x; i++) {
			cJSON *next = x->next;
			if (drop[i])
				cJSON_Delete(cJSON_DetachItemViaPointer(nrefs, x));
			x = next;
		}
		objver_ref(o);
		store_put_locked(o->res, nobj, o);
		objver_unref(o);
	}
	free(drop);
}

/* The garbage collector's work on the dependents of an owner deleted or
 * waiting in the foreground (those with finalizers are only marked). A
 * dependent a cascade already removed or changed is looked at as it is
 * now; one being deleted already is left to its deletion. */
static void delete_dependents_locked(const char *uid, const char *ns, bool owner_waiting)
{
	struct objver **deps;
	size_t nd = dependents_locked(uid, &deps);
	for (size_t k = 0; k < nd; k++) {
		struct resource *r = deps[k]->res;
		struct objver *o = resource_served(r) ? store_get_key_locked(r, deps[k]->key) : NULL;
		if (!o || !dependent(o, uid, ns, false) || obj_deleting(o->obj))
			continue;
		collect_dependent_locked(o, uid, owner_waiting);
	}
	for (size_t k = 0; k < nd; k++)
		objver_unref(deps[k]);
	free(deps);
}

bool ns_terminating_locked(const char *ns)
{
	struct resource *nr = resource_find("", "v1", "namespaces");
	struct objver *o = nr ? store_get_locked(nr, "", ns) : NULL;
	return o && obj_deleting(o->obj);
}

static bool ns_empty_locked(const char *ns)
{
	for (size_t ri = 0; ri < resource_count(); ri++) {
		struct resource *r = g_store.res[ri];
		if (!r->namespaced)
			continue;
		for (size_t i = 0; i < r->n; i++)
			if (strcmp(r->items[i]->ns, ns) == 0)
				return false;
	}
	return true;
}

/* The namespace controller: delete the content of a Terminating namespace
 * and, once it is empty, remove the namespace (its spec.finalizers done). */
static void ns_finalize_locked(const char *ns)
{
	struct resource *nr = resource_find("", "v1", "namespaces");
	struct objver *o = nr ? store_get_locked(nr, "", ns) : NULL;
	if (!o || !obj_deleting(o->obj) || !ns_empty_locked(ns))
		return;
	if (obj_has_finalizers(o->obj))
		return;
	store_delete_locked(o);
}

static void ns_delete_content_locked(const char *ns)
{
	for (size_t ri = 0; ri < resource_count(); ri++) {
		struct resource *r = g_store.res[ri];
		if (!r->namespaced || !resource_served(r))
			continue;
		for (size_t i = 0; i < r->n;) {
			struct objver *o = r->items[i];
			if (strcmp(o->ns, ns) != 0 || obj_deleting(o->obj)) {
				i++;
				continue;
			}
			struct delete_opts d = {.policy = "Background", .grace = 0};
			struct objver *out = NULL;
			bool removed = false;
			obj_delete_locked(r, o, &d, &out, &removed);
			objver_unref(out);
			i = removed ? 0 : i + 1;
		}
	}
}

void obj_remove_locked(struct objver *o, bool orphan)
{
	struct resource *r = o->res;
	objver_ref(o);
	store_delete_locked(o);
	if (r->crd)
		crd_remove_locked(o->obj);
	const char *uid = mstr(o->obj, "uid");
	char *ns = xstrdup(o->ns);
	if (uid && *uid) {
		if (orphan)
			orphan_dependents_locked(uid, r->namespaced ? ns : "");
		else
			delete_dependents_locked(uid, r->namespaced ? ns : "", false);
	}
	objver_unref(o);
	gc_sweep_locked();
	if (r->namespaced)
		ns_finalize_locked(ns);
	free(ns);
}

/* Whether a dependent that blocks its owner's deletion is left. */
static bool blocked_locked(const char *uid, const char *ns)
{
	struct objver **deps;
	size_t nd = owners_dependents_locked(uid, &deps);
	bool blocked = false;
	for (size_t k = 0; k < nd && !blocked; k++)
		blocked = dependent(deps[k], uid, ns, true);
	free(deps);
	return blocked;
}

/* Foreground owners lose their foregroundDeletion finalizer once no
 * dependent that blocks them is left; with no finalizer left they go.
 * Nothing to look at while no Foreground deletion waits (the count is
 * kept by every write, store.c). */
void gc_sweep_locked(void)
{
	for (bool again = true; again && g_store.fg_pending;) {
		again = false;
		for (size_t ri = 0; ri < resource_count() && !again; ri++) {
			struct resource *r = g_store.res[ri];
			for (size_t i = 0; i < r->n && !again; i++) {
				struct objver *o = r->items[i];
				if (!obj_fg_pending(o->obj))
					continue;
				const char *uid = mstr(o->obj, "uid");
				if (uid && blocked_locked(uid, r->namespaced ? o->ns : ""))
					continue;
				cJSON *n = cJSON_Duplicate(o->obj, 1);
				cJSON *fin = cJSON_GetObjectItemCaseSensitive(meta(n), "finalizers");
				for (cJSON *f = fin ? fin->child : NULL; f;) {
					cJSON *next = f->next;
					if (cJSON_IsString(f) && strcmp(f->valuestring, FG_FINALIZER) == 0)
						cJSON_Delete(cJSON_DetachItemViaPointer(fin, f));
					f = next;
				}
				if (cJSON_GetArraySize(fin) == 0) {
					cJSON_Delete(n);
					obj_remove_locked(o, false);
				} else {
					objver_ref(o);
					store_put_locked(r, n, o);
					objver_unref(o);
				}
				again = true;
			}
		}
	}
}

/* The grace period of a delete: the options' gracePeriodSeconds, else the
 * kind's default. Pods: spec.terminationGracePeriodSeconds, but 0 when not
 * scheduled or already terminated (podStrategy.CheckGracefulDelete). */
static int64_t grace_of(const struct resource *r, const cJSON *obj, int64_t asked)
{
	if (r->type != RES_POD)
		return 0;
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
	const char *node = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "nodeName"));
	const char *phase = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(obj, "status"), "phase"));
	if (!node || !*node || (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"))))
		return 0;
	if (asked >= 0)
		return asked;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(spec, "terminationGracePeriodSeconds");
	return cJSON_IsNumber(t) && t->valuedouble >= 0 ? (int64_t)t->valuedouble : 30;
}

struct status *obj_delete_locked(struct resource *r, struct objver *o, const struct delete_opts *d,
                                 struct objver **out, bool *removed)
{
	const char *pp = d->policy;
	bool orphan = pp && !strcmp(pp, "Orphan");
	bool foreground = pp && !strcmp(pp, "Foreground");
	int64_t grace = grace_of(r, o->obj, d->grace);
	*removed = false;
	*out = NULL;
	if (r->type == RES_NAMESPACE) {
		/* the namespace goes Terminating; its controller empties it */
		if (d->dry || obj_deleting(o->obj)) {
			objver_ref(o);
			*out = o;
			return NULL;
		}
		cJSON *n = cJSON_Duplicate(o->obj, 1);
		mark_deleting(n, 0);
		cJSON *st = cJSON_GetObjectItemCaseSensitive(n, "status");
		cJSON_DeleteItemFromObjectCaseSensitive(st, "phase");
		cJSON_AddStringToObject(st, "phase", "Terminating");
		objver_ref(o);
		struct objver *nv = store_put_locked(r, n, o);
		objver_unref(o);
		objver_ref(nv);
		*out = nv;
		char *ns = xstrdup(nv->name);
		ns_delete_content_locked(ns);
		ns_finalize_locked(ns);
		free(ns);
		return NULL;
	}
	bool pending = obj_has_finalizers(o->obj) || foreground || grace > 0;
	if (obj_deleting(o->obj) && !(grace == 0 && !obj_has_finalizers(o->obj))) {
		/* a deletion is pending already: nothing more to do */
		objver_ref(o);
		*out = o;
		return NULL;
	}
	if (!pending) {
		if (d->dry) {
			objver_ref(o);
			*out = o;
			*removed = true;
			return NULL;
		}
		objver_ref(o);
		*out = o;
		obj_remove_locked(o, orphan);
		*removed = true;
		return NULL;
	}
	cJSON *n = cJSON_Duplicate(o->obj, 1);
	if (foreground && !has_finalizer(n, FG_FINALIZER)) {
		cJSON *fin = cJSON_GetObjectItemCaseSensitive(meta(n), "finalizers");
		if (!cJSON_IsArray(fin)) {
			cJSON_DeleteItemFromObjectCaseSensitive(meta(n), "finalizers");
			fin = cJSON_AddArrayToObject(meta(n), "finalizers");
		}
		cJSON_AddItemToArray(fin, cJSON_CreateString(FG_FINALIZER));
	}
	mark_deleting(n, grace);
	if (d->dry) {
		*out = objver_new(r, n, o->rv);
		return NULL;
	}
	objver_ref(o);
	struct objver *nv = store_put_locked(r, n, o);
	objver_unref(o);
	objver_ref(nv);
	*out = nv;
	const char *uid = mstr(nv->obj, "uid");
	if (uid && *uid && orphan)
		orphan_dependents_locked(uid, r->namespaced ? nv->ns : "");
	else if (uid && *uid && foreground)
		delete_dependents_locked(uid, r->namespaced ? nv->ns : "", true);
	gc_sweep_locked();
	return NULL;
}

/* ValidateObjectMetaUpdate's rule for objects being deleted. */
void finalizers_update_check(const cJSON *oldo, const cJSON *newo, struct ferrs *fe)
{
	if (!obj_deleting(oldo))
		return;
	const cJSON *x;
	struct buf b = {0};
	int n = 0;
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(cmeta(newo), "finalizers")) {
		if (!cJSON_IsString(x) || has_finalizer(oldo, x->valuestring))
			continue;
		buf_addf(&b, "%s\"%s\"", n++ ? ", " : "", x->valuestring);
	}
	if (n) {
		char *m = xasprintf("Forbidden: no new finalizers can be added if the object is being deleted, "
		                    "found new finalizers []string{%s}", b.p);
		ferr_add(fe, "FieldValueForbidden", "metadata.finalizers", m);
		free(m);
	}
	buf_free(&b);
}
