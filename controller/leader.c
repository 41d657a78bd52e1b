/*
 * leader.c — Lease-based leader election (client-go leaderelection).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/leader.h"

struct kvc_leader {
	char name[KVC_NAME_MAX], id[KVC_NAME_MAX];
	int64_t duration, deadline, retry;
	const kvc_api *api;
	const kvc_clock *clk;
	pthread_mutex_t mu;
	kvc_observed obs;
	int seen;
	int holding;
	int64_t fence_at, last_tick;
};

int kvc_leader_new(kvc_leader **out, const char *name, const char *identity, int64_t lease_duration_ns,
                   int64_t renew_deadline_ns, int64_t retry_period_ns, const kvc_api *api, const kvc_clock *clk)
{
	kvc_leader *l;

	*out = NULL;
	lease_duration_ns = lease_duration_ns > 0 ? lease_duration_ns : 15 * KVC_S;
	renew_deadline_ns = renew_deadline_ns > 0 ? renew_deadline_ns : 10 * KVC_S;
	retry_period_ns = retry_period_ns > 0 ? retry_period_ns : 2 * KVC_S;
	if (!name || !identity || !identity[0] || strlen(name) >= KVC_NAME_MAX || strlen(identity) >= KVC_NAME_MAX ||
	    lease_duration_ns % KVC_S || renew_deadline_ns >= lease_duration_ns || retry_period_ns >= renew_deadline_ns)
		return kvs_error_set(KVS_EINVAL, "leader: bad name, identity or durations");
	if (!(l = calloc(1, sizeof(*l))))
		return kvs_error_set(KVS_ENOMEM, "leader: out of memory");
	snprintf(l->name, sizeof(l->name), "%s", name);
	snprintf(l->id, sizeof(l->id), "%s", identity);
	l->duration = lease_duration_ns, l->deadline = renew_deadline_ns, l->retry = retry_period_ns;
	l->api = api, l->clk = clk;
	pthread_mutex_init(&l->mu, NULL);
	*out = l;
	return 0;
}

void kvc_leader_free(kvc_leader *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->mu);
	free(l);
}

int kvc_leader_is_leader(kvc_leader *l)
{
	pthread_mutex_lock(&l->mu);
	int ok = l->holding && kvc_now(l->clk) < l->fence_at;
	pthread_mutex_unlock(&l->mu);
	return ok;
}

int64_t kvc_leader_next_tick(kvc_leader *l)
{
	pthread_mutex_lock(&l->mu);
	int64_t t = l->last_tick + l->retry;
	if (l->seen && !l->holding && l->obs.rec.holder[0] && kvc_lease_expiry(&l->obs) > l->last_tick &&
	    kvc_lease_expiry(&l->obs) < t)
		t = kvc_lease_expiry(&l->obs);
	pthread_mutex_unlock(&l->mu);
	return t;
}

static int write_lease(kvc_leader *l, kvc_lease *rec, int create, const char *holder, int32_t dur_s)
{
	int64_t sent = kvc_now(l->clk);
	snprintf(rec->holder, sizeof(rec->holder), "%s", holder);
	rec->duration_s = dur_s;
	rec->renew_us = l->clk->wall_us(l->clk->ctx);
	int rc = create ? l->api->lease_create(l->api->ctx, rec) : l->api->lease_update(l->api->ctx, rec);
	pthread_mutex_lock(&l->mu);
	int64_t now = kvc_now(l->clk);
	if (rc == 0 && holder[0]) {
		/* An answer after the deadline does not extend the old term. */
		int late = l->holding && now >= l->fence_at;
		l->holding = !late;
		l->fence_at = late ? 0 : sent + l->deadline;
		kvc_lease_observe(&l->obs, rec, now, !l->seen);
		l->seen = 1;
	} else if (rc == 0) {
		l->holding = 0;
	} else if (rc == KVS_ECONFLICT || rc == KVS_EEXISTS || rc == KVS_ENOTFOUND) {
		l->holding = 0;
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

int kvc_leader_tick(kvc_leader *l)
{
	kvc_lease rec;
	int rc;

	pthread_mutex_lock(&l->mu);
	l->last_tick = kvc_now(l->clk);
	pthread_mutex_unlock(&l->mu);
	rc = l->api->lease_get(l->api->ctx, l->name, &rec);
	if (rc == KVS_ENOTFOUND) {
		memset(&rec, 0, sizeof(rec));
		snprintf(rec.name, sizeof(rec.name), "%s", l->name);
		rec.acquire_us = l->clk->wall_us(l->clk->ctx);
		return write_lease(l, &rec, 1, l->id, (int32_t)(l->duration / KVC_S));
	}
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&l->mu);
	int64_t now = kvc_now(l->clk);
	kvc_lease_observe(&l->obs, &rec, now, !l->seen);
	l->seen = 1;
	int mine = strcmp(rec.holder, l->id) == 0;
	int free_ = kvc_lease_expired(&l->obs, now);
	if (!mine)
		l->holding = 0;
	pthread_mutex_unlock(&l->mu);
	if (!mine && !free_)
		return 0; /* follower */
	if (!mine) {
		rec.transitions++;
		rec.acquire_us = l->clk->wall_us(l->clk->ctx);
	}
	return write_lease(l, &rec, 0, l->id, (int32_t)(l->duration / KVC_S));
}

int kvc_leader_release(kvc_leader *l)
{
	kvc_lease rec;
	if (!kvc_leader_is_leader(l))
		return 0;
	int rc = l->api->lease_get(l->api->ctx, l->name, &rec);
	if (rc < 0 || strcmp(rec.holder, l->id) != 0)
		return rc;
	return write_lease(l, &rec, 0, "", 1);
}
