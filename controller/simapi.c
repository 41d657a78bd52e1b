/*
 * simapi.c — the simulated Lease API: one global revision counter, 409 on a
 * stale resourceVersion, quorum reads; faults chosen per call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/simapi.h"

struct kvc_simapi {
	int64_t *now;
	uint64_t rng;
	uint64_t rv;
	kvc_lease *ls;
	size_t n, cap;
};

uint64_t kvc_simapi_rand(kvc_simapi *s)
{
	uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static double frand(kvc_simapi *s)
{
	return (double)(kvc_simapi_rand(s) >> 11) / 9007199254740992.0;
}

int kvc_simapi_new(kvc_simapi **out, int64_t *now, uint64_t seed)
{
	kvc_simapi *s = calloc(1, sizeof(*s));
	if (!s)
		return kvs_error_set(KVS_ENOMEM, "simapi: out of memory");
	s->now = now;
	s->rng = seed;
	*out = s;
	return 0;
}

void kvc_simapi_free(kvc_simapi *s)
{
	if (!s)
		return;
	free(s->ls);
	free(s);
}

static kvc_lease *find(kvc_simapi *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->ls[i].name, name) == 0)
			return &s->ls[i];
	return NULL;
}

int kvc_simapi_delete(kvc_simapi *s, const char *name)
{
	kvc_lease *l = find(s, name);
	if (!l)
		return KVS_ENOTFOUND;
	*l = s->ls[--s->n];
	s->rv++;
	return 0;
}

int kvc_simapi_peek(kvc_simapi *s, const char *name, kvc_lease *out)
{
	kvc_lease *l = find(s, name);
	if (!l)
		return KVS_ENOTFOUND;
	*out = *l;
	return 0;
}

/*
 * Before a call: half its latency passes, then a partition or an error may
 * refuse it. After: the other half; an error there means the call was
 * applied but its answer lost (the client cannot tell the difference).
 */
static int pre(kvc_simconn *c)
{
	kvc_simapi *s = c->srv;
	c->calls++;
	if (c->latency_max_ns > 0)
		*s->now += (int64_t)(kvc_simapi_rand(s) % (uint64_t)(c->latency_max_ns / 2 + 1));
	if (*s->now < c->partitioned_until)
		return c->failures++, kvs_error_set(KVS_EIO, "simapi: partitioned");
	if (*s->now < c->errors_until && frand(s) < c->error_p / 2)
		return c->failures++, kvs_error_set(KVS_EIO, "simapi: injected error");
	return 0;
}

static int post(kvc_simconn *c, int rc)
{
	kvc_simapi *s = c->srv;
	if (c->latency_max_ns > 0)
		*s->now += (int64_t)(kvc_simapi_rand(s) % (uint64_t)(c->latency_max_ns / 2 + 1));
	if (*s->now < c->partitioned_until || (*s->now < c->errors_until && frand(s) < c->error_p / 2))
		return c->failures++, kvs_error_set(KVS_EIO, "simapi: response lost");
	return rc;
}

static int sim_list(void *ctx, const char *group, kvc_lease **out, size_t *n)
{
	kvc_simconn *c = ctx;
	kvc_simapi *s = c->srv;
	int rc = pre(c);
	*out = NULL, *n = 0;
	if (rc < 0)
		return rc;
	kvc_lease *a = malloc((s->n ? s->n : 1) * sizeof(*a));
	if (!a)
		return kvs_error_set(KVS_ENOMEM, "simapi: out of memory");
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->ls[i].group, group) == 0)
			a[k++] = s->ls[i];
	rc = post(c, 0);
	if (rc < 0) {
		free(a);
		return rc;
	}
	*out = a, *n = k;
	return 0;
}

static int sim_get(void *ctx, const char *name, kvc_lease *out)
{
	kvc_simconn *c = ctx;
	int rc = pre(c);
	if (rc < 0)
		return rc;
	kvc_lease *l = find(c->srv, name);
	if (l)
		*out = *l;
	return post(c, l ? 0 : kvs_error_set(KVS_ENOTFOUND, "simapi: lease %s not found", name));
}

static void stamp(kvc_simapi *s, kvc_lease *rec)
{
	snprintf(rec->rv, sizeof(rec->rv), "%llu", (unsigned long long)++s->rv);
}

static int sim_create(void *ctx, kvc_lease *rec)
{
	kvc_simconn *c = ctx;
	kvc_simapi *s = c->srv;
	int rc = pre(c);
	if (rc < 0)
		return rc;
	if (find(s, rec->name))
		return post(c, kvs_error_set(KVS_EEXISTS, "simapi: lease %s exists", rec->name));
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 8;
		kvc_lease *nl = realloc(s->ls, nc * sizeof(*nl));
		if (!nl)
			return kvs_error_set(KVS_ENOMEM, "simapi: out of memory");
		s->ls = nl, s->cap = nc;
	}
	stamp(s, rec);
	s->ls[s->n++] = *rec;
	return post(c, 0);
}

static int sim_update(void *ctx, kvc_lease *rec)
{
	kvc_simconn *c = ctx;
	kvc_simapi *s = c->srv;
	int rc = pre(c);
	if (rc < 0)
		return rc;
	kvc_lease *l = find(s, rec->name);
	if (!l)
		return post(c, kvs_error_set(KVS_ENOTFOUND, "simapi: lease %s not found", rec->name));
	if (strcmp(l->rv, rec->rv) != 0)
		return post(c, kvs_error_set(KVS_ECONFLICT, "simapi: lease %s: the object has been modified", rec->name));
	stamp(s, rec);
	*l = *rec;
	return post(c, 0);
}

static int sim_delete(void *ctx, const char *name, const char *rv)
{
	kvc_simconn *c = ctx;
	kvc_simapi *s = c->srv;
	int rc = pre(c);
	if (rc < 0)
		return rc;
	kvc_lease *l = find(s, name);
	if (!l)
		return post(c, kvs_error_set(KVS_ENOTFOUND, "simapi: lease %s not found", name));
	if (rv && strcmp(l->rv, rv) != 0)
		return post(c, kvs_error_set(KVS_ECONFLICT, "simapi: lease %s: precondition failed", name));
	*l = s->ls[--s->n];
	s->rv++;
	return post(c, 0);
}

void kvc_simapi_connect(kvc_simconn *c, kvc_simapi *s)
{
	memset(c, 0, sizeof(*c));
	c->srv = s;
	c->api.version = KVC_API_VERSION;
	c->api.ctx = c;
	c->api.lease_list = sim_list;
	c->api.lease_get = sim_get;
	c->api.lease_create = sim_create;
	c->api.lease_update = sim_update;
	c->api.lease_delete = sim_delete;
}
