/*
 * member.c — the membership state machine, handoff and fencing
 * (protocol in member.h). All decisions are made under one lock from local
 * state; API calls run without it, so workers calling kvc_member_begin never
 * wait on the network.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/assign.h"
#include "controller/member.h"

enum { SH_NONE, SH_CLAIMING, SH_ACTIVE, SH_DRAINING };

struct kvc_member {
	kvc_member_opts o;
	char group[KVC_GROUP_MAX];
	char id[KVC_NAME_MAX];
	char lease_name[KVC_NAME_MAX];
	const kvc_api *api;
	const kvc_clock *clk;
	kvc_member_hooks h;
	pthread_mutex_t mu;

	int observed;       /* a list has been folded in (startup is over) */
	int holding;        /* we hold our Lease (last write succeeded) */
	int stopping, stopped;
	int64_t renew_sent; /* when the last successful write was sent */
	int64_t fence_at;   /* renew_sent + renew_deadline */
	int64_t last_tick;
	uint64_t epoch;

	unsigned char st[KVC_VSHARDS_MAX];
	uint32_t inflight[KVC_VSHARDS_MAX];
	uint64_t sh_epoch[KVC_VSHARDS_MAX];
	int owner[KVC_VSHARDS_MAX];

	kvc_observed *obs;
	size_t nobs, capobs;
	kvc_member_stats stats;
};

#define DEF(x, d) ((x) > 0 ? (x) : (d))

int kvc_member_new(kvc_member **out, const kvc_member_opts *opts, const kvc_api *api,
                   const kvc_clock *clk, const kvc_member_hooks *hooks)
{
	kvc_member *m;
	kvc_member_opts o = *opts;

	*out = NULL;
	if (!o.identity || !o.identity[0] || !api || !clk)
		return kvs_error_set(KVS_EINVAL, "member: identity, api and clock are required");
	o.group = o.group ? o.group : "kvsplit";
	o.vshards = DEF(o.vshards, KVC_VSHARDS_DEFAULT);
	o.lease_duration_ns = DEF(o.lease_duration_ns, 15 * KVC_S);
	o.renew_deadline_ns = DEF(o.renew_deadline_ns, 10 * KVC_S);
	o.retry_period_ns = DEF(o.retry_period_ns, 2 * KVC_S);
	o.settle_ns = DEF(o.settle_ns, 2 * o.retry_period_ns);
	o.release_grace_ns = DEF(o.release_grace_ns, o.lease_duration_ns);
	o.max_release_per_tick = DEF(o.max_release_per_tick, 64u);
	if (o.load_eps == 0)
		o.load_eps = KVC_ASSIGN_EPS_DEFAULT;
	if (o.vshards > KVC_VSHARDS_MAX || o.lease_duration_ns % KVC_S != 0 ||
	    o.renew_deadline_ns >= o.lease_duration_ns || o.retry_period_ns >= o.renew_deadline_ns)
		return kvs_error_set(KVS_EINVAL, "member: need V <= %u, whole-second lease duration > renew deadline > retry period",
		                     KVC_VSHARDS_MAX);
	if (strlen(o.group) >= KVC_GROUP_MAX || strlen(o.group) + strlen(o.identity) + 2 > KVC_NAME_MAX)
		return kvs_error_set(KVS_EINVAL, "member: group or identity too long");
	if (!(m = calloc(1, sizeof(*m))))
		return kvs_error_set(KVS_ENOMEM, "member: out of memory");
	m->o = o;
	snprintf(m->group, sizeof(m->group), "%s", o.group);
	snprintf(m->id, sizeof(m->id), "%s", o.identity);
	snprintf(m->lease_name, sizeof(m->lease_name), "%s.%s", o.group, o.identity);
	m->o.group = m->group;
	m->o.identity = m->id;
	m->api = api;
	m->clk = clk;
	if (hooks)
		m->h = *hooks;
	pthread_mutex_init(&m->mu, NULL);
	*out = m;
	return 0;
}

void kvc_member_free(kvc_member *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m->obs);
	free(m);
}

const char *kvc_member_lease_name(const kvc_member *m)
{
	return m->lease_name;
}

unsigned kvc_member_vshards(const kvc_member *m)
{
	return m->o.vshards;
}

/* Drop every shard: the member may no longer act on any of them. */
static void drop_all(kvc_member *m)
{
	for (unsigned s = 0; s < m->o.vshards; s++) {
		if (m->st[s] == SH_NONE)
			continue;
		int was_acting = m->st[s] == SH_ACTIVE || m->st[s] == SH_DRAINING;
		m->st[s] = SH_NONE;
		if (was_acting && m->h.released)
			m->h.released(m->h.ctx, s);
	}
}

static void fence(kvc_member *m)
{
	drop_all(m);
	m->stats.fences++;
}

static int may_act(const kvc_member *m, int64_t now)
{
	return m->holding && !m->stopped && now < m->fence_at;
}

int kvc_member_begin(kvc_member *m, unsigned shard, uint64_t *epoch)
{
	int ok;

	if (shard >= m->o.vshards)
		return 0;
	pthread_mutex_lock(&m->mu);
	ok = may_act(m, kvc_now(m->clk)) && m->st[shard] == SH_ACTIVE;
	if (ok) {
		m->inflight[shard]++;
		if (epoch)
			*epoch = m->sh_epoch[shard];
	}
	pthread_mutex_unlock(&m->mu);
	return ok;
}

void kvc_member_end(kvc_member *m, unsigned shard)
{
	if (shard >= m->o.vshards)
		return;
	pthread_mutex_lock(&m->mu);
	if (m->inflight[shard])
		m->inflight[shard]--;
	pthread_mutex_unlock(&m->mu);
}

int kvc_member_acting(kvc_member *m, unsigned shard)
{
	int ok;

	if (shard >= m->o.vshards)
		return 0;
	pthread_mutex_lock(&m->mu);
	ok = may_act(m, kvc_now(m->clk)) && m->st[shard] == SH_ACTIVE;
	pthread_mutex_unlock(&m->mu);
	return ok;
}

int64_t kvc_member_fence_deadline(kvc_member *m)
{
	int64_t t;

	pthread_mutex_lock(&m->mu);
	t = m->holding ? m->fence_at : 0;
	pthread_mutex_unlock(&m->mu);
	return t;
}

void kvc_member_stop(kvc_member *m)
{
	pthread_mutex_lock(&m->mu);
	m->stopping = 1;
	pthread_mutex_unlock(&m->mu);
}

int kvc_member_stopped(kvc_member *m)
{
	int s;

	pthread_mutex_lock(&m->mu);
	s = m->stopped;
	pthread_mutex_unlock(&m->mu);
	return s;
}

void kvc_member_stats_get(kvc_member *m, kvc_member_stats *out)
{
	pthread_mutex_lock(&m->mu);
	*out = m->stats;
	pthread_mutex_unlock(&m->mu);
}

void kvc_member_held(kvc_member *m, kvc_shardset *out)
{
	kvc_set_clear(out);
	pthread_mutex_lock(&m->mu);
	for (unsigned s = 0; s < m->o.vshards; s++)
		if (m->st[s] == SH_ACTIVE)
			kvc_set_add(out, s);
	pthread_mutex_unlock(&m->mu);
}

static kvc_observed *find_obs(kvc_member *m, const char *name)
{
	for (size_t i = 0; i < m->nobs; i++)
		if (strcmp(m->obs[i].rec.name, name) == 0)
			return &m->obs[i];
	return NULL;
}

/*
 * Fold a fresh list into what we know: changed records are stamped with the
 * local time (the judge's only input), Leases gone from the list forgotten,
 * and the live/counted flags updated with join and release hysteresis.
 */
static int observe(kvc_member *m, const kvc_lease *ls, size_t n, int64_t now)
{
	for (size_t i = 0; i < m->nobs; i++)
		m->obs[i].present = 0;
	for (size_t i = 0; i < n; i++) {
		if (ls[i].vshards != m->o.vshards)
			continue; /* another V: not our group's protocol */
		kvc_observed *o = find_obs(m, ls[i].name);
		int first = 0;
		if (!o) {
			if (m->nobs == m->capobs) {
				size_t nc = m->capobs ? m->capobs * 2 : 8;
				kvc_observed *no = realloc(m->obs, nc * sizeof(*no));
				if (!no)
					return kvs_error_set(KVS_ENOMEM, "member: out of memory");
				m->obs = no, m->capobs = nc;
			}
			o = &m->obs[m->nobs++];
			first = 1;
		}
		kvc_observed keep = *o;
		if (kvc_lease_observe(o, &ls[i], now, first) && !first) {
			o->first_live_at = keep.first_live_at;
			o->released_at = keep.released_at;
			o->live = keep.live;
			o->counted = keep.counted;
		}
	}
	/* A Lease gone from the list (deleted by hand) still claims its shards
	 * until it would have expired: its holder may not know yet. */
	for (size_t i = 0; i < m->nobs;) {
		if (!m->obs[i].present && kvc_lease_expired(&m->obs[i], now))
			m->obs[i] = m->obs[--m->nobs];
		else
			i++;
	}
	for (size_t i = 0; i < m->nobs; i++) {
		kvc_observed *o = &m->obs[i];
		int live = !kvc_lease_expired(o, now);
		int in_grace = o->counted && o->released_at && now - o->released_at < m->o.release_grace_ns;
		if (live && !o->live) {
			if (!in_grace) {
				o->first_live_at = now;
				o->counted = 0;
			}
			o->released_at = 0;
		} else if (!live && o->live) {
			if (o->rec.holder[0] == '\0') {
				o->released_at = now;
			} else {
				o->counted = 0;
				if (m->h.peer_expired && strcmp(o->rec.name, m->lease_name) != 0)
					m->h.peer_expired(m->h.ctx, &o->rec);
			}
		}
		o->live = live;
		if (live && !o->counted && now - o->first_live_at >= m->o.settle_ns)
			o->counted = 1;
		if (!live && o->counted && !(o->released_at && now - o->released_at < m->o.release_grace_ns))
			o->counted = 0;
	}
	if (!m->observed) {
		/* A process that starts (a restart, one step of a rolling restart)
		 * finds the group established: it counts the live members at once
		 * and a released Lease for its grace (that member is restarting
		 * too), rather than taking them all for newcomers and the whole
		 * table for itself, grabbing the shards the next member to restart
		 * releases. Exclusion does not depend on this: claims do. */
		for (size_t i = 0; i < m->nobs; i++) {
			kvc_observed *o = &m->obs[i];
			if (strcmp(o->rec.name, m->lease_name) == 0)
				continue;
			if (o->live) {
				o->counted = 1;
			} else if (o->present && o->rec.holder[0] == '\0') {
				o->released_at = now;
				o->counted = 1;
			}
		}
		m->observed = 1;
	}
	return 0;
}

/*
 * Delete peers' Leases that have been expired (or released and out of
 * grace) for a further lease duration: a newcomer would otherwise take them
 * for live (first sight counts as a change) and wait on their stale claims.
 * The delete is conditional on the rv we judged; failures do not matter.
 */
static void collect_stale(kvc_member *m, int64_t now, char (*names)[KVC_NAME_MAX], char (*rvs)[KVC_RV_MAX], size_t *n, size_t cap)
{
	*n = 0;
	for (size_t i = 0; i < m->nobs && *n < cap; i++) {
		const kvc_observed *o = &m->obs[i];
		if (!o->present || strcmp(o->rec.name, m->lease_name) == 0)
			continue;
		int64_t dead_since = o->rec.holder[0] ? kvc_lease_expiry(o)
		                                      : (o->released_at ? o->released_at + m->o.release_grace_ns : o->seen_at);
		if (now - dead_since >= m->o.lease_duration_ns && !o->live) {
			snprintf(names[*n], KVC_NAME_MAX, "%s", o->rec.name);
			snprintf(rvs[*n], KVC_RV_MAX, "%s", o->rec.rv);
			(*n)++;
		}
	}
}

static int claimed_by_other(const kvc_member *m, unsigned s)
{
	for (size_t i = 0; i < m->nobs; i++) {
		const kvc_observed *o = &m->obs[i];
		if (o->live && kvc_set_has(&o->rec.claims, s) && strcmp(o->rec.name, m->lease_name) != 0)
			return 1;
	}
	return 0;
}

/* The assignment over the counted members (self included when we hold or
 * are about to take our Lease); our index in it, or -1. */
static int compute_target(kvc_member *m, int self_in)
{
	const char *ids_stack[64];
	const char **ids = ids_stack;
	unsigned load_stack[64], *load = load_stack;
	size_t n = 0, cap = m->nobs + 1;
	int me = -1, rc;

	if (cap > 64) {
		ids = malloc(cap * sizeof(*ids));
		load = malloc(cap * sizeof(*load));
		if (!ids || !load) {
			if (ids != ids_stack)
				free(ids);
			if (load != load_stack)
				free(load);
			return kvs_error_set(KVS_ENOMEM, "member: out of memory");
		}
	}
	for (size_t i = 0; i < m->nobs; i++) {
		const kvc_observed *o = &m->obs[i];
		if (strcmp(o->rec.name, m->lease_name) == 0)
			continue;
		if (o->counted)
			ids[n++] = o->rec.name;
	}
	if (self_in) {
		me = (int)n;
		ids[n++] = m->lease_name;
	}
	rc = kvc_assign(m->owner, m->o.vshards, ids, n, m->o.load_eps, load);
	if (rc == 0) {
		unsigned mx = 0;
		for (size_t i = 0; i < n; i++)
			mx = load[i] > mx ? load[i] : mx;
		m->stats.members = (unsigned)n;
		m->stats.max_load = mx;
		m->stats.mean_load = n ? (double)m->o.vshards / (double)n : 0;
	}
	if (ids != ids_stack)
		free(ids);
	if (load != load_stack)
		free(load);
	return rc < 0 ? rc : me;
}

/* The largest epoch others published, as far as we have seen. */
static uint64_t others_epoch(const kvc_member *m)
{
	uint64_t e = 0;
	for (size_t i = 0; i < m->nobs; i++)
		if (strcmp(m->obs[i].rec.name, m->lease_name) != 0)
			e = m->obs[i].rec.epoch > e ? m->obs[i].rec.epoch : e;
	return e;
}

static unsigned count_state(const kvc_member *m, int st)
{
	unsigned n = 0;
	for (unsigned s = 0; s < m->o.vshards; s++)
		n += m->st[s] == st;
	return n;
}

/*
 * Decide this tick's shard changes and build the record to write. Returns
 * 1 when something is to be written, 0 when we may not take our Lease (held
 * by another process under our identity and not expired), < 0 on error.
 */
static int plan(kvc_member *m, const kvc_lease *own_seen, kvc_lease *rec, int64_t now)
{
	const kvc_observed *own_obs = own_seen ? find_obs(m, own_seen->name) : NULL;
	unsigned newclaims = 0;

	if (own_seen) {
		*rec = *own_seen;
	} else {
		memset(rec, 0, sizeof(*rec));
		snprintf(rec->name, sizeof(rec->name), "%s", m->lease_name);
		snprintf(rec->group, sizeof(rec->group), "%s", m->group);
		rec->vshards = m->o.vshards;
	}
	if (!m->holding) {
		if (own_seen && own_seen->holder[0] && strcmp(own_seen->holder, m->id) != 0 &&
		    own_obs && !kvc_lease_expired(own_obs, now))
			return 0;
		if (own_seen && strcmp(own_seen->holder, m->id) == 0 && !m->stopping) {
			/* Our own Lease from an earlier life (restart under the same
			 * identity): claim back what it claimed; the verify decides. */
			for (unsigned s = 0; s < m->o.vshards; s++)
				if (kvc_set_has(&own_seen->claims, s) && m->st[s] == SH_NONE)
					m->st[s] = SH_CLAIMING, newclaims++;
		}
		if (!own_seen || strcmp(own_seen->holder, m->id) != 0) {
			rec->transitions = own_seen ? rec->transitions + 1 : 0;
			rec->acquire_us = m->clk->wall_us(m->clk->ctx);
		}
		if (own_seen && own_seen->epoch > m->epoch)
			m->epoch = own_seen->epoch;
	}
	int me = compute_target(m, !m->stopping);
	if (me < -1)
		return me;
	unsigned budget = m->o.max_release_per_tick, target = 0;
	for (unsigned s = 0; s < m->o.vshards; s++) {
		int in_t = me >= 0 && m->owner[s] == me;
		target += (unsigned)in_t;
		switch (m->st[s]) {
		case SH_ACTIVE:
			if (!in_t && (budget > 0 || m->stopping)) {
				m->st[s] = SH_DRAINING;
				if (budget)
					budget--;
				if (m->h.draining)
					m->h.draining(m->h.ctx, s);
			}
			break;
		case SH_CLAIMING:
			if (!in_t)
				m->st[s] = SH_NONE;
			break;
		case SH_NONE:
			if (in_t && !claimed_by_other(m, s)) {
				m->st[s] = SH_CLAIMING;
				newclaims++;
			}
			break;
		default:
			break;
		}
		if (m->st[s] == SH_DRAINING && m->inflight[s] == 0 &&
		    (!m->h.flush || m->h.flush(m->h.ctx, s) == 0)) {
			m->st[s] = SH_NONE;
			m->stats.released++;
			if (m->h.released)
				m->h.released(m->h.ctx, s);
		}
	}
	m->stats.target = target;
	/* Claims carry an epoch above every one seen, written before use. */
	uint64_t oe = others_epoch(m);
	if (newclaims || (count_state(m, SH_CLAIMING) && m->epoch <= oe))
		m->epoch = (oe > m->epoch ? oe : m->epoch) + 1;
	kvc_set_clear(&rec->claims);
	int any = 0;
	for (unsigned s = 0; s < m->o.vshards; s++)
		if (m->st[s] != SH_NONE)
			kvc_set_add(&rec->claims, s), any = 1;
	snprintf(rec->holder, sizeof(rec->holder), "%s", m->id);
	rec->duration_s = (int32_t)(m->o.lease_duration_ns / KVC_S);
	rec->renew_us = m->clk->wall_us(m->clk->ctx);
	rec->epoch = m->epoch;
	rec->vshards = m->o.vshards;
	if (m->stopping && !any) {
		/* Release like client-go: no holder, the shortest duration. */
		rec->holder[0] = '\0';
		rec->duration_s = 1;
	}
	return 1;
}

static void verify(kvc_member *m, int64_t now)
{
	/* Someone published an epoch >= ours since we wrote it: claim again
	 * with a larger one next tick rather than reuse it. */
	if (!may_act(m, now) || others_epoch(m) >= m->epoch)
		return;
	for (unsigned s = 0; s < m->o.vshards; s++) {
		if (m->st[s] != SH_CLAIMING)
			continue;
		if (claimed_by_other(m, s)) {
			m->st[s] = SH_NONE;
			m->stats.withdrawn++;
			continue;
		}
		m->st[s] = SH_ACTIVE;
		m->sh_epoch[s] = m->epoch;
		m->stats.acquired++;
		if (m->h.acquired)
			m->h.acquired(m->h.ctx, s, m->epoch);
	}
}


int kvc_member_tick(kvc_member *m)
{
	kvc_lease *ls = NULL, rec;
	size_t n = 0;
	int rc;
	int64_t now;

	pthread_mutex_lock(&m->mu);
	now = kvc_now(m->clk);
	m->last_tick = now;
	m->stats.ticks++;
	if (m->holding && now >= m->fence_at && count_state(m, SH_NONE) != m->o.vshards)
		fence(m);
	int stopped = m->stopped;
	pthread_mutex_unlock(&m->mu);
	if (stopped)
		return 0;

	rc = m->api->lease_list(m->api->ctx, m->group, &ls, &n);
	pthread_mutex_lock(&m->mu);
	now = kvc_now(m->clk);
	if (rc < 0) {
		m->stats.list_failures++;
		pthread_mutex_unlock(&m->mu);
		return rc;
	}
	rc = observe(m, ls, n, now);
	const kvc_lease *own_seen = NULL;
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (strcmp(ls[i].name, m->lease_name) == 0)
			own_seen = &ls[i];
	if (rc == 0 && m->holding && !own_seen) {
		/* Our Lease vanished: others may stop seeing our claims. */
		m->holding = 0;
		m->stats.conflicts++;
		fence(m);
	}
	if (rc == 0)
		rc = plan(m, own_seen, &rec, now);
	int create = own_seen == NULL;
	char stale[4][KVC_NAME_MAX], stale_rv[4][KVC_RV_MAX];
	size_t nstale = 0;
	if (rc > 0 && m->api->lease_delete)
		collect_stale(m, now, stale, stale_rv, &nstale, 4);
	free(ls);
	pthread_mutex_unlock(&m->mu);
	if (rc <= 0)
		return rc;
	for (size_t i = 0; i < nstale; i++)
		m->api->lease_delete(m->api->ctx, stale[i], stale_rv[i]);

	int64_t sent = kvc_now(m->clk);
	rc = create ? m->api->lease_create(m->api->ctx, &rec) : m->api->lease_update(m->api->ctx, &rec);

	pthread_mutex_lock(&m->mu);
	now = kvc_now(m->clk);
	int claiming = 0;
	if (rc == 0) {
		m->stats.renewals++;
		if (m->holding && now >= m->fence_at)
			fence(m); /* the answer came too late to extend the old term */
		if (rec.holder[0] == '\0') {
			m->stopped = 1;
			m->holding = 0;
		} else {
			m->holding = 1;
			m->renew_sent = sent;
			m->fence_at = sent + m->o.renew_deadline_ns;
			claiming = count_state(m, SH_CLAIMING) > 0;
		}
	} else {
		m->stats.renew_failures++;
		if (rc == KVS_ECONFLICT || rc == KVS_ENOTFOUND || rc == KVS_EEXISTS) {
			/* Someone wrote our Lease: we are not who we thought. */
			m->stats.conflicts++;
			m->holding = 0;
			fence(m);
		}
	}
	m->stats.held = count_state(m, SH_ACTIVE);
	pthread_mutex_unlock(&m->mu);
	if (rc < 0 || !claiming)
		return rc;

	/* Verify the claims with a fresh read after our write. */
	rc = m->api->lease_list(m->api->ctx, m->group, &ls, &n);
	pthread_mutex_lock(&m->mu);
	now = kvc_now(m->clk);
	if (rc == 0)
		rc = observe(m, ls, n, now);
	else
		m->stats.list_failures++;
	if (rc == 0)
		verify(m, now);
	m->stats.held = count_state(m, SH_ACTIVE);
	free(ls);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

int64_t kvc_member_next_tick(kvc_member *m)
{
	pthread_mutex_lock(&m->mu);
	int64_t t = m->last_tick + m->o.retry_period_ns;
	/* Wake exactly when a peer that claims shards expires, so its shards
	 * are taken within lease duration + one retry period of its death. */
	for (size_t i = 0; i < m->nobs; i++) {
		const kvc_observed *o = &m->obs[i];
		if (!o->live || strcmp(o->rec.name, m->lease_name) == 0)
			continue;
		int64_t e = kvc_lease_expiry(o);
		if (e > m->last_tick && e < t)
			t = e;
	}
	pthread_mutex_unlock(&m->mu);
	return t;
}
