/*
 * reconcile.c — one Workflow's level-based reconcile (reconcile.h), and the
 * per-workflow cache of its nodes, checked against the stored version on
 * every reconcile so a 20,000-task map is read once per owner, not once
 * per event.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/workflow/reconcile.h"
#include "controller/workflow/tasks.h"

/* One workflow's nodes as last committed (or loaded). */
struct wfcache {
	struct wfcache *next;
	char uid[KVC_WF_UID_MAX + 1];
	uint32_t total;
	kvc_wf_node *nodes;
	kvc_wf_ref ref;
	int in_use, drop;
};

struct kvc_wf_reconciler {
	kvc_wf_ops ops;
	void *ctx;
	char store[KVC_WF_STORE_MAX];
	uint32_t max_creates, max_deletes;
	pthread_mutex_t mu;
	struct wfcache *cache;
};

static int nomem(void)
{
	return kvs_error_set(KVS_ENOMEM, "workflow: out of memory");
}

int kvc_wf_reconciler_new(kvc_wf_reconciler **out, const kvc_wf_ops *ops, void *ctx,
                          const kvc_wf_reconciler_opts *opts)
{
	kvc_wf_reconciler *r;
	const char *store = opts && opts->store ? opts->store : "workflows";

	*out = NULL;
	if (!ops || ops->version != KVC_WF_OPS_VERSION || !ops->list_pods || !ops->get_pod || !ops->create_pod ||
	    !ops->delete_pod || !ops->load_state || !ops->commit_state || !ops->delete_state ||
	    !ops->update_status || !ops->set_finalizer || !ops->now)
		return kvs_error_set(KVS_EINVAL, "workflow: incomplete ops");
	if (opts && opts->version != KVC_WF_RECONCILER_OPTS_VERSION)
		return kvs_error_set(KVS_EINVAL, "workflow: options version %u", opts->version);
	if (strlen(store) >= KVC_WF_STORE_MAX)
		return kvs_error_set(KVS_EINVAL, "workflow: store name too long");
	if (!(r = calloc(1, sizeof(*r))))
		return nomem();
	r->ops = *ops;
	r->ctx = ctx;
	strcpy(r->store, store);
	r->max_creates = opts && opts->max_creates ? opts->max_creates : 100;
	r->max_deletes = opts && opts->max_deletes ? opts->max_deletes : 100;
	pthread_mutex_init(&r->mu, NULL);
	*out = r;
	return 0;
}

static void cache_free(struct wfcache *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; c->nodes && i < c->total; i++)
		free(c->nodes[i].message);
	free(c->nodes);
	free(c);
}

void kvc_wf_reconciler_free(kvc_wf_reconciler *r)
{
	if (!r)
		return;
	while (r->cache) {
		struct wfcache *c = r->cache;
		r->cache = c->next;
		cache_free(c);
	}
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static void unlink_locked(kvc_wf_reconciler *r, struct wfcache *c)
{
	for (struct wfcache **p = &r->cache; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			return;
		}
}

void kvc_wf_reconciler_forget(kvc_wf_reconciler *r, const char *uid)
{
	struct wfcache *c, *gone = NULL;
	pthread_mutex_lock(&r->mu);
	for (c = r->cache; c; c = c->next)
		if (!strcmp(c->uid, uid))
			break;
	if (c && c->in_use)
		c->drop = 1;
	else if (c) {
		unlink_locked(r, c);
		gone = c;
	}
	pthread_mutex_unlock(&r->mu);
	cache_free(gone);
}

/* Take the workflow's cache entry (creating an empty one); release with
 * cache_put. `bad` drops it: it no longer matches the store. */
static struct wfcache *cache_take(kvc_wf_reconciler *r, const char *uid)
{
	struct wfcache *c;
	pthread_mutex_lock(&r->mu);
	for (c = r->cache; c; c = c->next)
		if (!strcmp(c->uid, uid))
			break;
	if (!c && (c = calloc(1, sizeof(*c)))) {
		snprintf(c->uid, sizeof(c->uid), "%s", uid);
		c->next = r->cache;
		r->cache = c;
	}
	if (c)
		c->in_use = 1;
	pthread_mutex_unlock(&r->mu);
	return c;
}

static void cache_put(kvc_wf_reconciler *r, struct wfcache *c, int bad)
{
	int gone;
	pthread_mutex_lock(&r->mu);
	c->in_use = 0;
	gone = bad || c->drop;
	if (gone)
		unlink_locked(r, c);
	pthread_mutex_unlock(&r->mu);
	if (gone)
		cache_free(c);
}

int kvc_wf_state_key(char *buf, size_t cap, const kvc_wf_ident *id)
{
	int n = snprintf(buf, cap, "workflow/%s/%s", id->name, id->uid);
	if (n < 0 || (size_t)n >= cap)
		return kvs_error_set(KVS_ETOOBIG, "workflow: state key too long");
	return 0;
}

struct load {
	struct wfcache *c;
	uint32_t max_attempts, loaded;
};

static int load_one(void *arg, const void *field, size_t flen, const void *value, size_t vlen)
{
	struct load *l = arg;
	int64_t i = kvc_wf_field_index(field, flen, l->c->total);
	kvc_wf_node n;
	int rc;

	l->c->ref.hash += kvc_wf_entry_hash(field, flen, value, vlen);
	l->loaded++;
	if (i < 0) /* not ours to judge: counted in the hash, otherwise ignored */
		return 0;
	if ((rc = kvc_wf_node_decode(&n, value, vlen, l->max_attempts)) < 0)
		return kvs_error_set(rc, "workflow: node %.*s: %s", (int)flen, (const char *)field, kvs_error_last());
	n.hash = kvc_wf_entry_hash(field, flen, value, vlen);
	free(l->c->nodes[i].message);
	l->c->nodes[i] = n;
	return 0;
}

/* Make the cache hold the stored nodes: reload unless the stored version is
 * the one cached. */
static int cache_sync(kvc_wf_reconciler *r, struct wfcache *c, const kvc_wf_ident *id, const char *key,
                      const kvc_wf_spec *sp, kvc_wf_result *res)
{
	char ver[KVC_WF_STATE_VER_MAX];
	struct load l = { c, sp->max_attempts, 0 };
	int rc;

	if (c->nodes && c->total == sp->total && r->ops.state_version) {
		rc = r->ops.state_version(r->ctx, id->ns, key, ver, sizeof(ver));
		if (rc == KVS_ENOTFOUND)
			ver[0] = '\0', rc = 0;
		if (rc < 0)
			return rc;
		if (!strcmp(ver, c->ref.version))
			return 0;
	}
	for (uint32_t i = 0; c->nodes && i < c->total; i++)
		free(c->nodes[i].message);
	free(c->nodes);
	c->total = sp->total;
	if (!(c->nodes = calloc(sp->total, sizeof(*c->nodes))))
		return nomem();
	memset(&c->ref, 0, sizeof(c->ref));
	snprintf(c->ref.store, sizeof(c->ref.store), "%s", r->store);
	snprintf(c->ref.key, sizeof(c->ref.key), "%s", key);
	rc = r->ops.load_state(r->ctx, id->ns, key, load_one, &l, c->ref.version, sizeof(c->ref.version));
	if (rc == KVS_ENOTFOUND)
		c->ref.version[0] = '\0', c->ref.hash = 0, rc = 0;
	res->loaded = l.loaded;
	return rc;
}

static int cmp_obs(const void *a, const void *b)
{
	const kvc_wf_pod_obs *x = a, *y = b;
	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	return x->attempt < y->attempt ? -1 : x->attempt > y->attempt;
}

struct run {
	kvc_wf_reconciler *r;
	const kvc_wf_ident *id;
	const kvc_wf_spec *sp;
	struct wfcache *c;
	kvc_wf_result *res;
	int64_t now;
	unsigned char *seen;   /* the node's current attempt's Pod was observed */
	kvc_wf_pod_obs *fin;   /* finished Pods seen, not yet labelled completed */
	size_t nfin, capfin;
};

/* Remember a finished Pod of ours: once its result is committed it is
 * labelled completed and leaves list_pods (mark_completed). */
static int note_finished(struct run *x, const kvc_wf_pod_obs *o)
{
	if (!x->r->ops.mark_completed || o->completed || strcmp(o->owner_uid, x->id->uid) ||
	    (o->phase != KVC_WF_POD_SUCCEEDED && o->phase != KVC_WF_POD_FAILED))
		return 0;
	if (x->nfin == x->capfin) {
		size_t nc = x->capfin ? x->capfin * 2 : 16;
		kvc_wf_pod_obs *p = realloc(x->fin, nc * sizeof(*p));
		if (!p)
			return nomem();
		x->fin = p, x->capfin = nc;
	}
	x->fin[x->nfin++] = *o;
	return 0;
}

/*
 * After a commit (or none needed): label the finished Pods whose results the
 * store now holds (the node has moved past that attempt, or is final) —
 * so the informer drops them and later reconciles list only live Pods.
 * At most max_creates per reconcile (then requeue); best effort.
 */
static void mark_completed(struct run *x)
{
	kvc_wf_reconciler *r = x->r;
	const char **names;
	size_t n = 0;

	if (!x->nfin || !(names = malloc(x->nfin * sizeof(*names))))
		return;
	for (size_t i = 0; i < x->nfin; i++) {
		const kvc_wf_pod_obs *o = &x->fin[i];
		const kvc_wf_node *nd;
		if (o->index >= x->sp->total)
			continue;
		nd = &x->c->nodes[o->index];
		if (nd->dirty || (!kvc_wf_phase_final(nd->phase) &&
		                  (nd->attempts < o->attempt ||
		                   (nd->attempts == o->attempt && nd->phase == KVC_WF_RUNNING))))
			continue; /* its result is not recorded yet */
		if (n == r->max_creates) {
			x->res->requeue = 1;
			break;
		}
		names[n++] = o->name;
	}
	if (n && r->ops.mark_completed(r->ctx, x->id->ns, names, n) == 0)
		x->res->marked = (uint32_t)n;
	free(names);
}

static void adopt(struct run *x, kvc_wf_node *n, uint32_t attempt, const kvc_wf_pod_obs *o)
{
	n->attempts = attempt;
	n->phase = KVC_WF_RUNNING;
	n->started = o && o->started ? o->started : x->now;
	n->finished = 0;
	n->dirty = 1; /* the message of a failed earlier attempt stays */
	x->res->adopted++;
}

/* Fold one observed Pod into its node. */
static int fold(struct run *x, const kvc_wf_pod_obs *o)
{
	kvc_wf_node *n;
	int rc;

	if (strcmp(o->owner_uid, x->id->uid) || o->index >= x->sp->total || o->attempt > x->sp->max_attempts)
		return 0;
	n = &x->c->nodes[o->index];
	if (kvc_wf_phase_final(n->phase)) {
		/* A Pod that outlived its task's end (adopted late, or a delete
		 * that did not take): stop it. */
		if (o->phase <= KVC_WF_POD_RUNNING && !o->deleting && x->res->deleted < x->r->max_deletes) {
			rc = x->r->ops.delete_pod(x->r->ctx, x->id->ns, o->name);
			if (rc < 0 && rc != KVS_ENOTFOUND)
				return rc;
			x->res->deleted++;
		}
		return 0;
	}
	/* Created, then the commit was lost (a crash, a handoff): take it. */
	if (n->phase == KVC_WF_PENDING && o->attempt == n->attempts + 1)
		adopt(x, n, o->attempt, o);
	if (o->attempt != n->attempts)
		return 0;
	x->seen[o->index] = 1;
	rc = kvc_wf_node_observe(n, o, x->sp->max_attempts, x->now);
	return rc < 0 ? rc : 0;
}

static int observe_pods(struct run *x)
{
	kvc_wf_reconciler *r = x->r;
	cJSON *pods = NULL, *p;
	kvc_wf_pod_obs *obs = NULL;
	size_t n = 0, cap;
	int rc;

	if ((rc = r->ops.list_pods(r->ctx, x->id->ns, x->id->uid, &pods)) < 0)
		return rc;
	cap = (size_t)cJSON_GetArraySize(pods);
	if (cap && !(obs = malloc(cap * sizeof(*obs)))) {
		cJSON_Delete(pods);
		return nomem();
	}
	cJSON_ArrayForEach(p, pods)
		if (n < cap && kvc_wf_pod_observe(&obs[n], p) == 0)
			n++;
	cJSON_Delete(pods);
	if (n)
		qsort(obs, n, sizeof(*obs), cmp_obs);
	for (size_t i = 0; i < n && rc == 0; i++)
		if ((rc = fold(x, &obs[i])) == 0)
			rc = note_finished(x, &obs[i]);
	free(obs);
	if (rc < 0)
		return rc;
	/* Running nodes whose Pod the cache did not show: ask the server. */
	for (uint32_t i = 0; i < x->sp->total; i++) {
		kvc_wf_node *nd = &x->c->nodes[i];
		char name[KVC_WF_POD_NAME_MAX + 1];
		kvc_wf_pod_obs o;
		cJSON *pod = NULL;

		if (nd->phase != KVC_WF_RUNNING || x->seen[i])
			continue;
		kvc_wf_pod_name(name, x->id->name, i, nd->attempts);
		rc = r->ops.get_pod(r->ctx, x->id->ns, name, &pod);
		if (rc == KVS_ENOTFOUND) {
			if ((rc = kvc_wf_node_lost(nd, name, x->sp->max_attempts, x->now)) < 0)
				return rc;
			continue;
		}
		if (rc < 0)
			return rc;
		rc = kvc_wf_pod_observe(&o, pod);
		cJSON_Delete(pod);
		if (rc < 0 || strcmp(o.owner_uid, x->id->uid)) {
			/* Not our Pod under our name: the attempt cannot be ours. */
			if ((rc = kvc_wf_node_lost(nd, name, x->sp->max_attempts, x->now)) < 0)
				return rc;
			continue;
		}
		if ((rc = fold(x, &o)) < 0 || (rc = note_finished(x, &o)) < 0)
			return rc;
	}
	return 0;
}

static void count(kvc_wf_counts *k, const struct wfcache *c, int *started)
{
	memset(k, 0, sizeof(*k));
	k->total = c->total;
	*started = 0;
	for (uint32_t i = 0; i < c->total; i++) {
		const kvc_wf_node *n = &c->nodes[i];
		switch (n->phase) {
		case KVC_WF_PENDING: k->pending++; break;
		case KVC_WF_RUNNING: k->running++; break;
		case KVC_WF_SUCCEEDED: k->succeeded++; break;
		case KVC_WF_FAILED: k->failed++; break;
		case KVC_WF_SKIPPED: k->skipped++; break;
		}
		if (n->attempts)
			*started = 1;
	}
}

/* The outcome as spec.completion.strategy says: -1 while undecided. */
static int outcome(const kvc_wf_spec *sp, const kvc_wf_counts *k)
{
	if (sp->strategy == KVC_WF_ALL_SUCCESSFUL) {
		if (k->failed)
			return KVC_WF_W_FAILED;
		if (k->succeeded == k->total)
			return KVC_WF_W_SUCCEEDED;
	} else {
		if (k->succeeded)
			return KVC_WF_W_SUCCEEDED;
		if (k->failed + k->skipped == k->total)
			return KVC_WF_W_FAILED;
	}
	return -1;
}

/* Start the next attempts: lowest index first, up to maxConcurrency. */
static int start_tasks(struct run *x, kvc_wf_counts *k)
{
	kvc_wf_reconciler *r = x->r;
	uint32_t limit = x->sp->max_concurrency ? x->sp->max_concurrency : UINT32_MAX;
	int rc = 0;

	for (uint32_t i = 0; i < x->sp->total && k->running < limit; i++) {
		kvc_wf_node *n = &x->c->nodes[i];
		uint32_t attempt = n->attempts + 1;
		cJSON *pod = NULL;

		if (n->phase != KVC_WF_PENDING)
			continue;
		if (x->res->created >= r->max_creates) {
			x->res->requeue = 1;
			break;
		}
		if ((rc = kvc_wf_pod_render(&pod, x->sp, x->id, i, attempt)) < 0)
			return rc;
		rc = r->ops.create_pod(r->ctx, x->id->ns, pod);
		cJSON_Delete(pod);
		if (rc == 0) {
			adopt(x, n, attempt, NULL);
			x->res->adopted--;
			x->res->created++;
			k->pending--, k->running++;
			continue;
		}
		if (rc != KVS_EEXISTS)
			return rc;
		/* A repeat: the Pod of this attempt exists. Ours if it says so. */
		char name[KVC_WF_POD_NAME_MAX + 1];
		kvc_wf_pod_obs o;
		kvc_wf_pod_name(name, x->id->name, i, attempt);
		rc = r->ops.get_pod(r->ctx, x->id->ns, name, &pod);
		if (rc == KVS_ENOTFOUND) { /* deleted meanwhile: try again later */
			x->res->requeue = 1;
			continue;
		}
		if (rc < 0)
			return rc;
		rc = kvc_wf_pod_observe(&o, pod);
		cJSON_Delete(pod);
		if (rc < 0 || strcmp(o.owner_uid, x->id->uid)) {
			char msg[KVC_WF_MESSAGE_MAX + 1];
			snprintf(msg, sizeof(msg), "waiting: Pod %.200s exists and belongs to another owner", name);
			if ((rc = kvc_wf_node_set_message(n, msg)) < 0)
				return rc;
			x->res->requeue = 1;
			continue;
		}
		adopt(x, n, attempt, &o);
		x->seen[i] = 1;
		if ((rc = kvc_wf_node_observe(n, &o, x->sp->max_attempts, x->now)) < 0)
			return rc;
		k->pending--;
		if (n->phase == KVC_WF_RUNNING)
			k->running++;
	}
	return 0;
}

/* The outcome is decided: nothing new starts; running tasks are waited for
 * or (TerminateRemaining) their Pods deleted. */
static int finish_tasks(struct run *x, kvc_wf_wphase out)
{
	kvc_wf_reconciler *r = x->r;
	char msg[KVC_WF_MESSAGE_MAX + 1];
	int rc;

	for (uint32_t i = 0; i < x->sp->total; i++) {
		kvc_wf_node *n = &x->c->nodes[i];
		if (n->phase == KVC_WF_PENDING) {
			snprintf(msg, sizeof(msg), "not started: the workflow had %s", out == KVC_WF_W_SUCCEEDED ?
			         "succeeded" : "failed");
		} else if (n->phase == KVC_WF_RUNNING && x->sp->on_complete == KVC_WF_TERMINATE_REMAINING) {
			char name[KVC_WF_POD_NAME_MAX + 1];
			if (x->res->deleted >= r->max_deletes) {
				x->res->requeue = 1;
				continue;
			}
			kvc_wf_pod_name(name, x->id->name, i, n->attempts);
			rc = r->ops.delete_pod(r->ctx, x->id->ns, name);
			if (rc < 0 && rc != KVS_ENOTFOUND)
				return rc;
			x->res->deleted++;
			snprintf(msg, sizeof(msg), "terminated: the workflow had %s (TerminateRemaining)",
			         out == KVC_WF_W_SUCCEEDED ? "succeeded" : "failed");
		} else {
			continue;
		}
		n->phase = KVC_WF_SKIPPED;
		n->finished = x->now;
		n->dirty = 1;
		if ((rc = kvc_wf_node_set_message(n, msg)) < 0)
			return rc;
	}
	return 0;
}

/* Commit the changed nodes in one batch, conditional on the version read. */
static int commit(struct run *x)
{
	kvc_wf_reconciler *r = x->r;
	struct wfcache *c = x->c;
	kvc_wf_entry *e = NULL;
	char (*fields)[KVC_WF_FIELD_LEN + 1] = NULL, ver[KVC_WF_STATE_VER_MAX];
	uint64_t *hashes = NULL, hash = c->ref.hash;
	uint32_t *idx = NULL;
	size_t n = 0, dirty = 0;
	int rc = 0;

	for (uint32_t i = 0; i < c->total; i++)
		dirty += c->nodes[i].dirty;
	if (!dirty)
		return 0;
	e = calloc(dirty, sizeof(*e));
	fields = calloc(dirty, sizeof(*fields));
	hashes = calloc(dirty, sizeof(*hashes));
	idx = calloc(dirty, sizeof(*idx));
	if (!e || !fields || !hashes || !idx) {
		rc = nomem();
		goto done;
	}
	for (uint32_t i = 0; i < c->total && rc == 0; i++) {
		char *json;
		size_t len;
		if (!c->nodes[i].dirty)
			continue;
		if ((rc = kvc_wf_node_encode(&json, &len, &c->nodes[i], x->id->name, i)) < 0)
			break;
		kvc_wf_field(fields[n], i);
		e[n] = (kvc_wf_entry){ fields[n], KVC_WF_FIELD_LEN, json, len };
		hashes[n] = kvc_wf_entry_hash(fields[n], KVC_WF_FIELD_LEN, json, len);
		idx[n] = i;
		hash += hashes[n] - c->nodes[i].hash;
		n++;
	}
	if (rc == 0)
		rc = r->ops.commit_state(r->ctx, x->id->ns, c->ref.key, e, n, c->ref.version, ver, sizeof(ver));
	if (rc == 0) {
		snprintf(c->ref.version, sizeof(c->ref.version), "%s", ver);
		c->ref.hash = hash;
		for (size_t j = 0; j < n; j++) {
			c->nodes[idx[j]].dirty = 0;
			c->nodes[idx[j]].hash = hashes[j];
		}
		x->res->committed = (uint32_t)n;
	}
done:
	for (size_t j = 0; e && j < n; j++)
		free((char *)e[j].value);
	free(e);
	free(fields);
	free(hashes);
	free(idx);
	return rc;
}

static int64_t status_time(const cJSON *status, const char *k)
{
	int64_t t = kvc_wf_time_parse(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(status, k)));
	return t > 0 ? t : 0;
}

/* Write the status if it differs from the Workflow's. */
static int write_status(kvc_wf_reconciler *r, const cJSON *wf, const kvc_wf_summary *s, kvc_wf_result *res)
{
	const cJSON *cur = cJSON_GetObjectItemCaseSensitive(wf, "status");
	cJSON *st;
	int rc;

	if ((rc = kvc_wf_status_json(&st, s)) < 0)
		return rc;
	if (!cur || !cJSON_Compare(cur, st, 1)) {
		rc = r->ops.update_status(r->ctx, wf, st);
		res->status_written = rc == 0;
	}
	cJSON_Delete(st);
	return rc;
}

/* metadata.deletionTimestamp is set: delete the node status, then let the
 * Workflow go (its Pods go with it: their owner references). */
static int finalize(kvc_wf_reconciler *r, const cJSON *wf, const kvc_wf_ident *id, const char *key)
{
	int rc;
	if (!id->has_finalizer)
		return 0;
	rc = r->ops.delete_state(r->ctx, id->ns, key);
	if (rc < 0 && rc != KVS_ENOTFOUND)
		return rc;
	kvc_wf_reconciler_forget(r, id->uid);
	return r->ops.set_finalizer(r->ctx, wf, 0);
}

static const char *failure_message(const kvc_wf_spec *sp, const struct wfcache *c, char *buf, size_t cap)
{
	if (sp->strategy == KVC_WF_ANY_SUCCESSFUL) {
		snprintf(buf, cap, "no task succeeded (AnySuccessful)");
		return buf;
	}
	for (uint32_t i = 0; i < c->total; i++)
		if (c->nodes[i].phase == KVC_WF_FAILED) {
			snprintf(buf, cap, "task %u failed: %s", i, c->nodes[i].message ? c->nodes[i].message : "");
			return buf;
		}
	return NULL;
}

int kvc_wf_reconcile(kvc_wf_reconciler *r, const cJSON *wf, kvc_wf_result *res)
{
	const cJSON *cur = cJSON_GetObjectItemCaseSensitive(wf, "status"), *og;
	char key[KVC_WF_STATE_KEY_MAX], msgbuf[600];
	kvc_wf_summary s;
	kvc_wf_ident id;
	kvc_wf_spec sp;
	kvc_wf_counts k;
	struct wfcache *c;
	struct run x;
	int rc, cur_phase, started, out, bad = 0;

	memset(res, 0, sizeof(*res));
	memset(&s, 0, sizeof(s));
	if ((rc = kvc_wf_ident_parse(&id, wf)) < 0 || (rc = kvc_wf_state_key(key, sizeof(key), &id)) < 0)
		return rc;
	if (id.deleting)
		return finalize(r, wf, &id, key);
	cur_phase = kvc_wf_status_phase(cur);
	og = cJSON_GetObjectItemCaseSensitive(cur, "observedGeneration");
	res->phase = cur_phase < 0 ? KVC_WF_W_PENDING : (kvc_wf_wphase)cur_phase;
	/* Finished and unchanged since: nothing to read. */
	if ((cur_phase == KVC_WF_W_SUCCEEDED || cur_phase == KVC_WF_W_FAILED) && cJSON_IsNumber(og) &&
	    (int64_t)og->valuedouble == id.generation)
		return 0;
	s.generation = id.generation;
	if ((rc = kvc_wf_spec_parse(&sp, wf, id.name)) < 0) {
		if (rc != KVS_EINVAL)
			return rc;
		snprintf(msgbuf, sizeof(msgbuf), "invalid spec: %s", kvs_error_last());
		s.phase = KVC_WF_W_FAILED;
		s.message = msgbuf;
		s.finished = status_time(cur, "finishedAt");
		if (!s.finished)
			s.finished = r->ops.now(r->ctx);
		res->phase = s.phase;
		return write_status(r, wf, &s, res);
	}
	if (!id.has_finalizer) {
		kvc_wf_spec_free(&sp);
		res->requeue = 1;
		return r->ops.set_finalizer(r->ctx, wf, 1);
	}
	if (!(c = cache_take(r, id.uid))) {
		kvc_wf_spec_free(&sp);
		return nomem();
	}
	memset(&x, 0, sizeof(x));
	x = (struct run){ r, &id, &sp, c, res, r->ops.now(r->ctx), NULL, NULL, 0, 0 };
	if ((rc = cache_sync(r, c, &id, key, &sp, res)) < 0) {
		bad = 1;
		goto done;
	}
	if (!(x.seen = calloc(sp.total, 1))) {
		rc = nomem();
		goto done;
	}
	rc = observe_pods(&x);
	count(&k, c, &started);
	out = outcome(&sp, &k);
	if (rc == 0 && out < 0)
		rc = start_tasks(&x, &k);
	else if (rc == 0)
		rc = finish_tasks(&x, (kvc_wf_wphase)out);
	/* Whatever was done so far is committed, even after an error. */
	{
		int crc = commit(&x);
		if (crc < 0) {
			bad = 1; /* the cache is ahead of the store */
			rc = crc;
			goto done;
		}
	}
	if (rc < 0)
		goto done;
	mark_completed(&x);
	count(&k, c, &started);
	out = outcome(&sp, &k);
	s.counts = k;
	s.ref = &c->ref;
	s.started = status_time(cur, "startedAt");
	if (out >= 0 && k.running == 0) {
		s.phase = (kvc_wf_wphase)out;
		s.finished = status_time(cur, "finishedAt");
		if (!s.finished)
			s.finished = x.now;
		if (out == KVC_WF_W_FAILED)
			s.message = failure_message(&sp, c, msgbuf, sizeof(msgbuf));
	} else {
		s.phase = started ? KVC_WF_W_RUNNING : KVC_WF_W_PENDING;
	}
	if (started && !s.started)
		s.started = x.now;
	res->phase = s.phase;
	rc = write_status(r, wf, &s, res);
done:
	free(x.seen);
	free(x.fin);
	cache_put(r, c, bad);
	kvc_wf_spec_free(&sp);
	return rc;
}
