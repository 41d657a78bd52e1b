/*
 * kubeapi.c — Leases through the Kubernetes client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kvsplit/backend.h>

#include "controller/kubeapi.h"
#include "controller/lease_json.h"

/* More Leases than any group has: a hostile list cannot make us allocate more. */
#define MAX_LEASES 4096

typedef struct kapi_ctx {
	kvc_api api;
	kvs_kube *kube;
	char ns[254];
} kapi_ctx;

static int rv_of(kvc_lease *rec, cJSON *obj)
{
	kvc_lease got;
	int rc = kvc_lease_from_json(&got, obj);
	if (rc == 0)
		memcpy(rec->rv, got.rv, sizeof(rec->rv));
	return rc;
}

static int k_list(void *ctx, const char *group, kvc_lease **out, size_t *n)
{
	kapi_ctx *c = ctx;
	kvs_kube_list_options lo = KVS_KUBE_LIST_OPTIONS_INIT;
	char sel[KVC_GROUP_MAX + 32];
	kvc_lease *a = NULL;
	size_t k = 0, cap = 0;
	char *cont = NULL;
	int rc = 0;

	*out = NULL, *n = 0;
	snprintf(sel, sizeof(sel), "%s=%s", KVC_GROUP_LABEL, group);
	lo.label_selector = sel;
	lo.limit = 500;
	do {
		kvs_kube_page *p = NULL;
		lo.continue_token = cont;
		rc = kvs_kube_list(&p, c->kube, &kvs_kube_leases, c->ns, &lo, NULL);
		free(cont);
		cont = NULL;
		if (rc < 0)
			break;
		if (k + p->count > MAX_LEASES) {
			rc = kvs_error_set(KVS_ECORRUPT, "leases: over %d in group %s", MAX_LEASES, group);
		} else if (k + p->count > cap) {
			size_t nc = k + p->count + 8;
			kvc_lease *na = realloc(a, nc * sizeof(*na));
			if (!na)
				rc = kvs_error_set(KVS_ENOMEM, "leases: out of memory");
			else
				a = na, cap = nc;
		}
		const cJSON *it;
		if (rc == 0)
			cJSON_ArrayForEach(it, p->items) {
				if ((rc = kvc_lease_from_json(&a[k], it)) < 0)
					break;
				k++;
			}
		if (rc == 0 && p->continue_token && !(cont = strdup(p->continue_token)))
			rc = kvs_error_set(KVS_ENOMEM, "leases: out of memory");
		kvs_kube_page_free(p);
	} while (rc == 0 && cont);
	free(cont);
	if (rc < 0) {
		free(a);
		return rc;
	}
	if (!a && !(a = malloc(sizeof(*a))))
		return kvs_error_set(KVS_ENOMEM, "leases: out of memory");
	*out = a, *n = k;
	return 0;
}

static int k_get(void *ctx, const char *name, kvc_lease *out)
{
	kapi_ctx *c = ctx;
	cJSON *obj = NULL;
	int rc = kvs_kube_get(&obj, c->kube, &kvs_kube_leases, c->ns, name, NULL, NULL);
	if (rc == 0)
		rc = kvc_lease_from_json(out, obj);
	cJSON_Delete(obj);
	return rc;
}

static int k_write(kapi_ctx *c, kvc_lease *rec, int create)
{
	cJSON *doc = NULL, *got = NULL;
	int rc = kvc_lease_to_json(&doc, rec);
	if (rc < 0)
		return rc;
	if (create)
		rc = kvs_kube_create(&got, c->kube, &kvs_kube_leases, c->ns, doc, NULL);
	else
		rc = kvs_kube_update(&got, c->kube, &kvs_kube_leases, c->ns, doc, NULL);
	if (rc == 0)
		rc = rv_of(rec, got);
	cJSON_Delete(doc);
	cJSON_Delete(got);
	return rc;
}

static int k_create(void *ctx, kvc_lease *rec)
{
	kvc_lease l = *rec;
	l.rv[0] = '\0';
	int rc = k_write(ctx, &l, 1);
	if (rc == 0)
		memcpy(rec->rv, l.rv, sizeof(rec->rv));
	return rc;
}

static int k_update(void *ctx, kvc_lease *rec)
{
	if (!rec->rv[0])
		return kvs_error_set(KVS_EINVAL, "lease %s: update without a resourceVersion", rec->name);
	return k_write(ctx, rec, 0);
}

static int k_delete(void *ctx, const char *name, const char *rv)
{
	kapi_ctx *c = ctx;
	kvs_kube_delete_options dopt = KVS_KUBE_DELETE_OPTIONS_INIT;
	dopt.resource_version = rv;
	return kvs_kube_delete(NULL, c->kube, &kvs_kube_leases, c->ns, name, &dopt, NULL);
}

int kvc_kubeapi_new(kvc_api **out, kvs_kube *kube, const char *ns)
{
	kapi_ctx *c;

	*out = NULL;
	if (!ns)
		ns = kvs_kube_namespace(kube);
	if (!ns || strlen(ns) >= sizeof(c->ns))
		return kvs_error_set(KVS_EINVAL, "leases: bad namespace");
	if (!(c = calloc(1, sizeof(*c))))
		return kvs_error_set(KVS_ENOMEM, "leases: out of memory");
	c->kube = kube;
	memcpy(c->ns, ns, strlen(ns) + 1);
	c->api.version = KVC_API_VERSION;
	c->api.ctx = c;
	c->api.lease_list = k_list;
	c->api.lease_get = k_get;
	c->api.lease_create = k_create;
	c->api.lease_update = k_update;
	c->api.lease_delete = k_delete;
	*out = &c->api;
	return 0;
}

void kvc_kubeapi_free(kvc_api *api)
{
	free(api ? api->ctx : NULL);
}

void kvc_kubeapi_lease_options(kvs_kube_options *o, const kvc_member_opts *mo)
{
	int64_t rd = mo && mo->renew_deadline_ns > 0 ? mo->renew_deadline_ns : 10 * KVC_S;
	int64_t t = rd / 4;
	if (t < 200 * KVC_MS)
		t = 200 * KVC_MS;
	o->timeout_ms = (unsigned)(t / KVC_MS);
	o->retries = 1;
}
