/*
 * kubeops.c — kvc_wf_ops over the Kubernetes client and kvsplit (see
 * kubeops.h; the node state is a key-split map, one field per task).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/workflow/kubeops.h"

const kvs_kube_resource kvc_wf_workflows =
        KVS_KUBE_RESOURCE_INIT(KVC_WF_GROUP, KVC_WF_VERSION, "workflows", 1);

#define NS_MAX 64u            /* namespaces with an open store */
#define STATE_MAX (256u << 20) /* bytes of one loaded node map */

struct nsstore {
	char ns[64];
	kvs_store *st;
};

struct kvc_wf_kube {
	kvs_kube *kube;
	kvs_kube_options ko;
	char kubeconfig[4096];
	int has_kubeconfig;
	char store[KVC_WF_STORE_MAX];
	kvc_informer *pods;
	pthread_mutex_t mu;
	struct nsstore stores[NS_MAX];
	unsigned nstores;
	kvc_wf_kube_stats stats;
};

static int nomem(void)
{
	return kvs_error_set(KVS_ENOMEM, "workflow: out of memory");
}

int kvc_wf_index_uid(void *ctx, const cJSON *pod, char *buf, size_t cap)
{
	(void)ctx;
	const cJSON *l = cJSON_GetObjectItemCaseSensitive(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "metadata"), "labels"),
	        KVC_WF_LABEL_UID);
	if (!cJSON_IsString(l) || strlen(l->valuestring) >= cap)
		return 0;
	memcpy(buf, l->valuestring, strlen(l->valuestring) + 1);
	return 1;
}

int kvc_wf_kube_new(kvc_wf_kube **out, kvs_kube *kube, const kvs_kube_options *store_opts,
                    const char *store, kvc_informer *pods)
{
	kvc_wf_kube *k;
	*out = NULL;
	if (!kube || (store && (!*store || strlen(store) >= KVC_WF_STORE_MAX)))
		return kvs_error_set(KVS_EINVAL, "workflow: bad store name");
	if (!(k = calloc(1, sizeof(*k))))
		return nomem();
	k->kube = kube;
	if (store_opts)
		k->ko = *store_opts;
	else
		k->ko = (kvs_kube_options)KVS_KUBE_OPTIONS_INIT;
	if (k->ko.kubeconfig) {
		if (strlen(k->ko.kubeconfig) >= sizeof(k->kubeconfig)) {
			free(k);
			return kvs_error_set(KVS_EINVAL, "workflow: kubeconfig path too long");
		}
		snprintf(k->kubeconfig, sizeof(k->kubeconfig), "%s", k->ko.kubeconfig);
		k->ko.kubeconfig = k->kubeconfig;
	}
	/* Strings other than the kubeconfig are not kept past the call. */
	k->ko.context = NULL;
	k->ko.namespace_ = NULL;
	k->ko.server = NULL;
	k->ko.user_agent = NULL;
	snprintf(k->store, sizeof(k->store), "%s", store ? store : "workflows");
	k->pods = pods;
	pthread_mutex_init(&k->mu, NULL);
	*out = k;
	return 0;
}

void kvc_wf_kube_free(kvc_wf_kube *k)
{
	if (!k)
		return;
	for (unsigned i = 0; i < k->nstores; i++)
		kvs_close(k->stores[i].st);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

void kvc_wf_kube_stats_get(kvc_wf_kube *k, kvc_wf_kube_stats *out)
{
	pthread_mutex_lock(&k->mu);
	*out = k->stats;
	pthread_mutex_unlock(&k->mu);
}

/* The store of namespace `ns`, opened on first use (kvs_store is thread-safe). */
static int store_of(kvc_wf_kube *k, const char *ns, kvs_store **out)
{
	int rc = 0;
	if (!ns || !*ns || strlen(ns) >= sizeof(k->stores[0].ns))
		return kvs_error_set(KVS_EINVAL, "workflow: bad namespace");
	pthread_mutex_lock(&k->mu);
	for (unsigned i = 0; i < k->nstores; i++)
		if (!strcmp(k->stores[i].ns, ns)) {
			*out = k->stores[i].st;
			pthread_mutex_unlock(&k->mu);
			return 0;
		}
	if (k->nstores == NS_MAX) {
		rc = kvs_error_set(KVS_ETOOBIG, "workflow: more than %u namespaces", NS_MAX);
		goto done;
	}
	kvs_kube_options ko = k->ko;
	ko.namespace_ = ns;
	kvs_backend *be = NULL;
	kvs_options so = KVS_OPTIONS_INIT;
	so.name = k->store;
	if ((rc = kvs_backend_kube(&be, &ko)) < 0)
		goto done;
	if ((rc = kvs_open(out, be, &so)) < 0) {
		kvs_backend_free(be);
		goto done;
	}
	snprintf(k->stores[k->nstores].ns, sizeof(k->stores[0].ns), "%s", ns);
	k->stores[k->nstores++].st = *out;
done:
	pthread_mutex_unlock(&k->mu);
	return rc;
}

int kvc_wf_kube_gc(kvc_wf_kube *k, const char *ns, const kvs_gc_options *opts, kvs_gc_report *out)
{
	kvs_store *st = NULL;
	int rc = store_of(k, ns, &st);
	return rc < 0 ? rc : kvs_gc(out, st, opts);
}

/* ---- Pods ----------------------------------------------------------------- */

static int list_pods(void *ctx, const char *ns, const char *uid, cJSON **out)
{
	kvc_wf_kube *k = ctx;
	cJSON *arr = cJSON_CreateArray();
	int rc = 0;
	*out = NULL;
	if (!arr)
		return nomem();
	if (k->pods) {
		char **keys = NULL;
		size_t n = 0;
		if ((rc = kvc_informer_by_index(k->pods, KVC_WF_INDEX_UID, uid, &keys, &n)) < 0) {
			cJSON_Delete(arr);
			return rc;
		}
		for (size_t i = 0; i < n; i++) {
			cJSON *pod = NULL;
			if (kvc_informer_get(k->pods, keys[i], &pod, NULL) == 1)
				cJSON_AddItemToArray(arr, pod);
		}
		kvc_informer_keys_free(keys, n);
		*out = arr;
		return 0;
	}
	char sel[KVC_WF_UID_MAX + 128];
	snprintf(sel, sizeof(sel), "%s=%s,!%s", KVC_WF_LABEL_UID, uid, KVC_WF_LABEL_COMPLETED);
	kvs_kube_list_options lo = KVS_KUBE_LIST_OPTIONS_INIT;
	lo.label_selector = sel;
	kvs_kube_page *pg = NULL;
	if ((rc = kvs_kube_list(&pg, k->kube, &kvs_kube_pods, ns, &lo, NULL)) < 0) {
		cJSON_Delete(arr);
		return rc;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, pg->items)
	{
		cJSON *d = cJSON_Duplicate(it, 1);
		if (!d) {
			rc = nomem();
			break;
		}
		cJSON_AddItemToArray(arr, d);
	}
	kvs_kube_page_free(pg);
	if (rc < 0)
		cJSON_Delete(arr);
	else
		*out = arr;
	return rc;
}

static int get_pod(void *ctx, const char *ns, const char *name, cJSON **out)
{
	kvc_wf_kube *k = ctx;
	return kvs_kube_get(out, k->kube, &kvs_kube_pods, ns, name, NULL, NULL);
}

static int create_pod(void *ctx, const char *ns, const cJSON *pod)
{
	kvc_wf_kube *k = ctx;
	int rc = kvs_kube_create(NULL, k->kube, &kvs_kube_pods, ns, pod, NULL);
	pthread_mutex_lock(&k->mu);
	if (rc == 0)
		k->stats.pods_created++;
	else if (rc == KVS_EEXISTS)
		k->stats.pods_exists++;
	pthread_mutex_unlock(&k->mu);
	return rc;
}

static int delete_pod(void *ctx, const char *ns, const char *name)
{
	kvc_wf_kube *k = ctx;
	int rc = kvs_kube_delete(NULL, k->kube, &kvs_kube_pods, ns, name, NULL, NULL);
	if (rc == 0) {
		pthread_mutex_lock(&k->mu);
		k->stats.pods_deleted++;
		pthread_mutex_unlock(&k->mu);
	}
	return rc;
}

/* Label finished Pods completed: merge patches, in parallel (the client's
 * concurrency). A Pod already gone is fine; other failures are counted and
 * left to a later reconcile (the Pod is then still listed). */
static int mark_completed(void *ctx, const char *ns, const char *const *names, size_t n)
{
	static const char body[] = "{\"metadata\":{\"labels\":{\"" KVC_WF_LABEL_COMPLETED "\":\"true\"}}}";
	kvc_wf_kube *k = ctx;
	kvs_kube_request *rq = calloc(n ? n : 1, sizeof(*rq));
	uint64_t ok = 0, failed = 0;
	int rc;
	if (!rq)
		return nomem();
	for (size_t i = 0; i < n; i++) {
		rq[i] = (kvs_kube_request)KVS_KUBE_REQUEST_INIT;
		rq[i].verb = KVS_KUBE_VERB_PATCH;
		rq[i].resource = &kvs_kube_pods;
		rq[i].ns = ns;
		rq[i].name = names[i];
		rq[i].content_type = "application/merge-patch+json";
		rq[i].body = body;
		rq[i].body_len = sizeof(body) - 1;
		rq[i].what = "label a finished Pod completed";
	}
	rc = kvs_kube_run(k->kube, rq, n);
	for (size_t i = 0; i < n; i++) {
		if (rc == 0 && (rq[i].result == 0 || rq[i].result == KVS_ENOTFOUND))
			ok++;
		else
			failed++;
		kvs_kube_request_clear(&rq[i]);
	}
	free(rq);
	pthread_mutex_lock(&k->mu);
	k->stats.pods_completed += ok;
	k->stats.pods_complete_failed += failed;
	pthread_mutex_unlock(&k->mu);
	return rc < 0 ? rc : failed ? kvs_error_set(KVS_EIO, "workflow: %llu Pods not labelled completed",
	                                             (unsigned long long)failed) : 0;
}

/* ---- the node map: a key-split map, one field per task ---------------------- */

static int copy_ver(char *ver, size_t cap, const kvs_ver *v)
{
	if (strlen(v->str) >= cap)
		return kvs_error_set(KVS_ETOOBIG, "workflow: state version too long");
	memcpy(ver, v->str, strlen(v->str) + 1);
	return 0;
}

static int state_version(void *ctx, const char *ns, const char *key, char *ver, size_t cap)
{
	kvs_store *st;
	kvs_map_stat s;
	int rc;
	if ((rc = store_of(ctx, ns, &st)) < 0 || (rc = kvs_map_stat_key(&s, st, key, NULL)) < 0)
		return rc;
	return copy_ver(ver, cap, &s.version);
}

/*
 * Every field of the stored map (untrusted): each value must have been set
 * as JSON, and the whole at most STATE_MAX bytes. A key holding a plain
 * value is KVS_ECORRUPT. On error nothing more is passed to `each`, but the
 * fields already passed stay passed (the reconciler drops a failed load).
 */
static int load_state(void *ctx, const char *ns, const char *key, kvc_wf_entry_cb each, void *arg, char *ver,
                      size_t cap)
{
	kvs_store *st;
	kvs_ver v;
	kvs_map_iter *it = NULL;
	kvs_map_entry e;
	uint64_t total = 0;
	int rc;
	if ((rc = store_of(ctx, ns, &st)) < 0)
		return rc;
	if ((rc = kvs_map_iter_open(&it, &v, st, key, NULL)) < 0)
		return rc == KVS_EINVAL ? kvs_error_set(KVS_ECORRUPT, "workflow state %s: not a map", key) : rc;
	while ((rc = kvs_map_iter_next(&e, it)) == 0) {
		total += e.field_len + e.value_len;
		if (total > STATE_MAX) {
			rc = kvs_error_set(KVS_ECORRUPT, "workflow state %s: over %u bytes", key, STATE_MAX);
			break;
		}
		if (!e.is_json) {
			rc = kvs_error_set(KVS_ECORRUPT, "workflow state %s: a field is not JSON", key);
			break;
		}
		if ((rc = each(arg, e.field, e.field_len, e.value, e.value_len)) < 0)
			break;
	}
	kvs_map_iter_close(it);
	if (rc != KVS_EITER_DONE)
		return rc;
	return copy_ver(ver, cap, &v);
}

/*
 * One batch of the changed fields, conditional on the version the
 * reconcile read ("" creates the map: KVS_EEXISTS if it exists), so it
 * commits whole or not at all and sends about the changed fields' bytes.
 */
static int commit_state(void *ctx, const char *ns, const char *key, const kvc_wf_entry *e, size_t n,
                        const char *expect, char *ver, size_t cap)
{
	kvc_wf_kube *k = ctx;
	kvs_store *st;
	kvs_ver v;
	kvs_map_batch *b = NULL;
	kvs_map_stats ms;
	int rc;
	if (!expect)
		return kvs_error_set(KVS_EINVAL, "workflow state %s: no expected version", key);
	if ((rc = store_of(k, ns, &st)) < 0)
		return rc;
	if ((rc = kvs_map_batch_new(&b)) < 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = kvs_map_batch_put_json(b, e[i].field, e[i].field_len, e[i].value, e[i].value_len);
	if (rc == 0) {
		kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
		memset(&ms, 0, sizeof(ms));
		wo.expect_version = expect;
		wo.stats = &ms;
		rc = kvs_map_commit(&v, st, key, b, &wo);
		if (rc == KVS_ENOTFOUND && *expect)
			rc = kvs_error_set(KVS_ECONFLICT, "workflow state %s: gone", key);
	}
	kvs_map_batch_free(b);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&k->mu);
	k->stats.state_bytes_sent += ms.bytes_written;
	k->stats.state_commits++;
	pthread_mutex_unlock(&k->mu);
	return copy_ver(ver, cap, &v);
}

static int delete_state(void *ctx, const char *ns, const char *key)
{
	kvs_store *st;
	int rc;
	if ((rc = store_of(ctx, ns, &st)) < 0)
		return rc;
	return kvs_delete(st, key, NULL);
}

/* ---- the Workflow ------------------------------------------------------------ */

static const char *md_str(const cJSON *obj, const char *f)
{
	return cJSON_GetStringValue(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), f));
}

static int update_status(void *ctx, const cJSON *workflow, const cJSON *status)
{
	kvc_wf_kube *k = ctx;
	const char *name = md_str(workflow, "name"), *ns = md_str(workflow, "namespace"),
	           *rv = md_str(workflow, "resourceVersion");
	if (!name || !ns || !rv)
		return kvs_error_set(KVS_EINVAL, "workflow: no name, namespace or resourceVersion");
	cJSON *o = cJSON_CreateObject(), *md = cJSON_AddObjectToObject(o, "metadata");
	cJSON *st = cJSON_Duplicate(status, 1);
	int rc = nomem();
	if (md && st && cJSON_AddStringToObject(o, "apiVersion", KVC_WF_API_VERSION) &&
	    cJSON_AddStringToObject(o, "kind", KVC_WF_KIND) && cJSON_AddStringToObject(md, "name", name) &&
	    cJSON_AddStringToObject(md, "namespace", ns) && cJSON_AddStringToObject(md, "resourceVersion", rv)) {
		cJSON_AddItemToObject(o, "status", st);
		st = NULL;
		rc = kvs_kube_update_status(NULL, k->kube, &kvc_wf_workflows, ns, o, NULL);
	}
	if (rc == KVS_ECONFLICT) {
		/* The cache lags our own last status write (or a stamp, a
		 * finalizer): the status is this owner's to write, so read the
		 * Workflow and write again, once, if it is still the same object
		 * at the same generation (a changed spec is reconciled anew). */
		cJSON *cur = NULL;
		const cJSON *g0 = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(workflow, "metadata"),
		                                                   "generation");
		if (kvs_kube_get(&cur, k->kube, &kvc_wf_workflows, ns, name, NULL, NULL) == 0) {
			const cJSON *m1 = cJSON_GetObjectItemCaseSensitive(cur, "metadata");
			const cJSON *g1 = cJSON_GetObjectItemCaseSensitive(m1, "generation");
			const char *u0 = md_str(workflow, "uid"), *u1 = md_str(cur, "uid"), *rv1 = md_str(cur, "resourceVersion");
			if (u0 && u1 && rv1 && !strcmp(u0, u1) && cJSON_IsNumber(g0) && cJSON_IsNumber(g1) &&
			    g0->valuedouble == g1->valuedouble) {
				cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"),
				                                       "resourceVersion", cJSON_CreateString(rv1));
				rc = kvs_kube_update_status(NULL, k->kube, &kvc_wf_workflows, ns, o, NULL);
			} else {
				rc = kvs_error_set(KVS_ECONFLICT, "workflow %s/%s changed: reconciled again", ns, name);
			}
		}
		cJSON_Delete(cur);
	}
	cJSON_Delete(st);
	cJSON_Delete(o);
	return rc;
}

static int set_finalizer(void *ctx, const cJSON *workflow, int present)
{
	kvc_wf_kube *k = ctx;
	const char *ns = md_str(workflow, "namespace");
	cJSON *o = cJSON_Duplicate(workflow, 1);
	if (!o)
		return nomem();
	cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
	cJSON *fin = cJSON_GetObjectItemCaseSensitive(md, "finalizers");
	int rc = 0;
	if (!cJSON_IsObject(md) || !ns || !md_str(o, "resourceVersion")) {
		cJSON_Delete(o);
		return kvs_error_set(KVS_EINVAL, "workflow: no namespace or resourceVersion");
	}
	if (!cJSON_IsArray(fin)) {
		cJSON_DeleteItemFromObjectCaseSensitive(md, "finalizers");
		fin = cJSON_AddArrayToObject(md, "finalizers");
	}
	int at = -1, i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, fin)
	{
		if (cJSON_IsString(it) && !strcmp(it->valuestring, KVC_WF_FINALIZER))
			at = i;
		i++;
	}
	if (present && at < 0) {
		cJSON *s = cJSON_CreateString(KVC_WF_FINALIZER);
		if (!s)
			rc = nomem();
		else
			cJSON_AddItemToArray(fin, s);
	} else if (!present && at >= 0) {
		cJSON_DeleteItemFromArray(fin, at);
	} else {
		cJSON_Delete(o);
		return 0;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(o, "status");
	if (rc == 0)
		rc = kvs_kube_update(NULL, k->kube, &kvc_wf_workflows, ns, o, NULL);
	cJSON_Delete(o);
	return rc;
}

static int64_t now_s(void *ctx)
{
	(void)ctx;
	return (int64_t)time(NULL);
}

static const kvc_wf_ops OPS = {
	KVC_WF_OPS_VERSION, list_pods,    get_pod,      create_pod,    delete_pod,    state_version,
	load_state,         commit_state, delete_state, update_status, set_finalizer, now_s,
	mark_completed,
};

const kvc_wf_ops *kvc_wf_kube_ops(void)
{
	return &OPS;
}
