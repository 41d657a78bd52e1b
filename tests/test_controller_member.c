/*
 * test_controller_member.c — suite "controller_member": the Lease judge,
 * membership, handoff and fencing, on the simulated API with a manual clock.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "kvsplit.h"
#include "controller/member.h"
#include "controller/simapi.h"

#define V 64

static int64_t now;
static kvc_simapi *srv;

static void setup(void)
{
	now = 1000 * KVC_S;
	cr_assert_eq(kvc_simapi_new(&srv, &now, 42), 0);
}

static void teardown(void)
{
	kvc_simapi_free(srv);
}

typedef struct node {
	kvc_member *m;
	kvc_simconn conn;
	kvc_clock clk;
	int64_t skew;
} node;

static int64_t node_mono(void *ctx)
{
	node *n = ctx;
	return now + n->skew;
}

static int64_t node_wall(void *ctx)
{
	node *n = ctx;
	return (now + n->skew) / 1000;
}

static void node_start(node *n, const char *id, int64_t skew)
{
	kvc_member_opts o = KVC_MEMBER_OPTS_INIT;
	o.group = "t";
	o.identity = id;
	o.vshards = V;
	n->skew = skew;
	n->clk = (kvc_clock){ node_mono, node_wall, n };
	kvc_simapi_connect(&n->conn, srv);
	cr_assert_eq(kvc_member_new(&n->m, &o, &n->conn.api, &n->clk, NULL), 0);
}

static unsigned held(node *n)
{
	kvc_shardset s;
	kvc_member_held(n->m, &s);
	return kvc_set_count(&s);
}

/* Advance the clock by `dt` in 100 ms steps, ticking every node when due. */
static void run(node **ns, size_t k, int64_t dt)
{
	int64_t end = now + dt;
	while (now < end) {
		for (size_t i = 0; i < k; i++)
			if (ns[i]->m && kvc_member_next_tick(ns[i]->m) <= now + ns[i]->skew)
				kvc_member_tick(ns[i]->m);
		now += 100 * KVC_MS;
	}
}

TestSuite(controller_member, .init = setup, .fini = teardown);

Test(controller_member, expiry_is_judged_from_local_sighting_not_renew_time)
{
	kvc_observed o;
	kvc_lease l;
	memset(&l, 0, sizeof(l));
	strcpy(l.name, "x");
	strcpy(l.rv, "5");
	strcpy(l.holder, "a");
	l.duration_s = 15;
	l.renew_us = 0; /* the holder's clock says 1970: irrelevant */
	kvc_lease_observe(&o, &l, 100 * KVC_S, 1);
	cr_assert(!kvc_lease_expired(&o, 114 * KVC_S));
	cr_assert(kvc_lease_expired(&o, 115 * KVC_S));
	/* The same record read again does not refresh it ... */
	l.renew_us = (int64_t)4e15; /* ... even if it claims to be from the future */
	cr_assert_eq(kvc_lease_observe(&o, &l, 110 * KVC_S, 0), 0);
	cr_assert(kvc_lease_expired(&o, 115 * KVC_S));
	/* A change does. */
	strcpy(l.rv, "6");
	cr_assert_eq(kvc_lease_observe(&o, &l, 110 * KVC_S, 0), 1);
	cr_assert(!kvc_lease_expired(&o, 124 * KVC_S));
	cr_assert(kvc_lease_expired(&o, 125 * KVC_S));
}

Test(controller_member, a_lone_member_takes_every_shard_with_an_epoch)
{
	node a = { 0 };
	node *ns[] = { &a };
	node_start(&a, "a", 0);
	run(ns, 1, 10 * KVC_S);
	cr_assert_eq(held(&a), V);
	uint64_t e = 0;
	cr_assert(kvc_member_begin(a.m, 7, &e));
	cr_assert_gt(e, 0);
	kvc_member_end(a.m, 7);
	kvc_lease l;
	cr_assert_eq(kvc_simapi_peek(srv, "t.a", &l), 0);
	cr_assert_str_eq(l.holder, "a");
	cr_assert_eq(kvc_set_count(&l.claims), V);
	cr_assert_eq(l.epoch, e);
	kvc_member_free(a.m);
}

Test(controller_member, a_joining_member_gets_its_share_and_no_shard_has_two_owners)
{
	node a = { 0 }, b = { 0 };
	node *ns[] = { &a, &b };
	node_start(&a, "a", 0);
	run(ns, 1, 10 * KVC_S);
	node_start(&b, "b", 777 * KVC_S);
	for (int step = 0; step < 300; step++) {
		run(ns, 2, 100 * KVC_MS);
		for (unsigned s = 0; s < V; s++)
			cr_assert(!(kvc_member_acting(a.m, s) && kvc_member_acting(b.m, s)), "shard %u on both", s);
	}
	cr_assert_eq(held(&a) + held(&b), V);
	cr_assert_gt(held(&b), V / 4);
	kvc_member_free(a.m);
	kvc_member_free(b.m);
}

Test(controller_member, a_partitioned_member_fences_itself_at_the_renew_deadline)
{
	node a = { 0 };
	node *ns[] = { &a };
	node_start(&a, "a", 0);
	run(ns, 1, 10 * KVC_S);
	cr_assert(kvc_member_acting(a.m, 0));
	int64_t deadline = kvc_member_fence_deadline(a.m);
	a.conn.partitioned_until = now + 60 * KVC_S;
	/* No tick is needed: the clock alone stops it. */
	now = deadline - 1;
	cr_assert(kvc_member_acting(a.m, 0));
	now = deadline;
	cr_assert(!kvc_member_acting(a.m, 0));
	uint64_t e;
	cr_assert(!kvc_member_begin(a.m, 0, &e));
	/* The deadline is 10 s after the last renewal was sent; no one may
	 * judge the Lease expired before 15 s after they saw it. */
	kvc_lease l;
	cr_assert_eq(kvc_simapi_peek(srv, "t.a", &l), 0);
	cr_assert_eq(l.duration_s, 15);
	kvc_member_free(a.m);
}

/* An API whose lease updates take `slow` of virtual time to answer. */
static kvc_api slow_api;
static const kvc_api *inner;
static int64_t slow;
static int slow_update(void *ctx, kvc_lease *rec)
{
	int rc = inner->lease_update(inner->ctx, rec);
	now += slow;
	return rc;
}

Test(controller_member, a_renewal_answered_after_the_deadline_does_not_extend_it)
{
	node a = { 0 };
	node *ns[] = { &a };
	node_start(&a, "a", 0);
	run(ns, 1, 10 * KVC_S);
	cr_assert_eq(held(&a), V);
	kvc_member_free(a.m);
	/* Same process again, now behind the slow API. */
	inner = &a.conn.api;
	slow_api = *inner;
	slow_api.lease_update = slow_update;
	kvc_member_opts o = KVC_MEMBER_OPTS_INIT;
	o.group = "t", o.identity = "a", o.vshards = V;
	cr_assert_eq(kvc_member_new(&a.m, &o, &slow_api, &a.clk, NULL), 0);
	run(ns, 1, 6 * KVC_S);
	cr_assert_eq(held(&a), V);
	/* Let the deadline almost pass, then renew with an 11 s answer. */
	now = kvc_member_fence_deadline(a.m) - KVC_S;
	slow = 11 * KVC_S;
	kvc_member_tick(a.m);
	slow = 0;
	cr_assert_eq(held(&a), 0, "a late answer kept %u shards", held(&a));
	kvc_member_stats st;
	kvc_member_stats_get(a.m, &st);
	cr_assert_geq(st.fences, 1);
	kvc_member_free(a.m);
}

Test(controller_member, a_dead_members_shards_are_taken_after_lease_duration_not_before)
{
	node a = { 0 }, b = { 0 };
	node *ns[] = { &a, &b };
	node_start(&a, "a", 0);
	node_start(&b, "b", -500 * KVC_S);
	run(ns, 2, 30 * KVC_S);
	cr_assert_eq(held(&a) + held(&b), V);
	unsigned ha = held(&a);
	cr_assert_gt(ha, 0);
	kvc_member_free(a.m); /* kill -9 */
	a.m = NULL;
	int64_t died = now;
	int64_t taken = 0;
	while (now < died + 30 * KVC_S) {
		run(ns, 2, 100 * KVC_MS);
		if (!taken && held(&b) == V)
			taken = now;
		if (!taken)
			cr_assert_lt(now - died, 17 * KVC_S + 200 * KVC_MS, "not taken yet");
	}
	cr_assert_gt(taken, 0);
	/* Not before the Lease could expire (15 s after b last saw it change,
	 * at most one retry period before the kill). */
	cr_assert_geq(taken - died, 13 * KVC_S);
	kvc_member_free(b.m);
}

Test(controller_member, a_restart_under_the_same_identity_moves_nothing)
{
	node a = { 0 }, b = { 0 }, c = { 0 };
	node *ns[] = { &a, &b, &c };
	node_start(&a, "a", 0);
	node_start(&b, "b", 0);
	node_start(&c, "c", 0);
	run(ns, 3, 40 * KVC_S);
	kvc_shardset before[3], after[3];
	for (int i = 0; i < 3; i++)
		kvc_member_held(ns[i]->m, &before[i]);
	cr_assert_eq(kvc_set_count(&before[0]) + kvc_set_count(&before[1]) + kvc_set_count(&before[2]), V);
	/* Roll: each dies (kill -9) and comes back 3 s later under its name. */
	for (int i = 0; i < 3; i++) {
		kvc_member_free(ns[i]->m);
		ns[i]->m = NULL;
		run(ns, 3, 3 * KVC_S);
		node_start(ns[i], i == 0 ? "a" : i == 1 ? "b" : "c", 1000 * KVC_S * (i + 1));
		run(ns, 3, 10 * KVC_S);
	}
	for (int i = 0; i < 3; i++) {
		kvc_member_held(ns[i]->m, &after[i]);
		cr_assert(kvc_set_equal(&before[i], &after[i]), "member %d's shards changed", i);
		kvc_member_free(ns[i]->m);
	}
}

/* No node holds a shard that was another's in `before`. */
static void check_moved_nothing(node **ns, const kvc_shardset *before)
{
	for (int i = 0; i < 3; i++) {
		if (!ns[i]->m)
			continue;
		kvc_shardset h;
		kvc_member_held(ns[i]->m, &h);
		for (unsigned s = 0; s < V; s++)
			cr_assert(!kvc_set_has(&h, s) || kvc_set_has(&before[i], s),
			          "t=%lld: member %d holds shard %u of another", (long long)(now / KVC_MS), i, s);
	}
}

Test(controller_member, a_rolling_restart_with_clean_stops_moves_nothing)
{
	node a = { 0 }, b = { 0 }, c = { 0 };
	node *ns[] = { &a, &b, &c };
	static const char *const ids[] = { "a", "b", "c" };
	for (int i = 0; i < 3; i++)
		node_start(ns[i], ids[i], 0);
	run(ns, 3, 40 * KVC_S);
	kvc_shardset before[3], after[3];
	for (int i = 0; i < 3; i++)
		kvc_member_held(ns[i]->m, &before[i]);
	/* Each stops cleanly (SIGTERM), comes back at once, and the next one
	 * stops a second later: a restarted process must count the members it
	 * finds at once, or it takes the shards the next one releases. */
	for (int i = 0; i < 3; i++) {
		kvc_member_stop(ns[i]->m);
		for (int k = 0; k < 50 && !kvc_member_stopped(ns[i]->m); k++) {
			run(ns, 3, 100 * KVC_MS);
			check_moved_nothing(ns, before);
		}
		cr_assert(kvc_member_stopped(ns[i]->m));
		kvc_member_free(ns[i]->m);
		ns[i]->m = NULL;
		node_start(ns[i], ids[i], 0);
		for (int k = 0; k < 10; k++) {
			run(ns, 3, 100 * KVC_MS);
			check_moved_nothing(ns, before);
		}
	}
	for (int k = 0; k < 100; k++) {
		run(ns, 3, 100 * KVC_MS);
		check_moved_nothing(ns, before);
	}
	for (int i = 0; i < 3; i++) {
		kvc_member_held(ns[i]->m, &after[i]);
		cr_assert(kvc_set_equal(&before[i], &after[i]), "member %d's shards changed", i);
		kvc_member_free(ns[i]->m);
	}
}

Test(controller_member, a_clean_stop_releases_shards_and_lease)
{
	node a = { 0 }, b = { 0 };
	node *ns[] = { &a, &b };
	node_start(&a, "a", 0);
	node_start(&b, "b", 0);
	run(ns, 2, 30 * KVC_S);
	cr_assert_gt(held(&a), 0);
	kvc_member_stop(a.m);
	run(ns, 2, 3 * KVC_S);
	cr_assert(kvc_member_stopped(a.m));
	kvc_lease l;
	cr_assert_eq(kvc_simapi_peek(srv, "t.a", &l), 0);
	cr_assert_str_eq(l.holder, "");
	cr_assert_eq(kvc_set_count(&l.claims), 0);
	kvc_member_free(a.m);
	a.m = NULL;
	/* b waits for the release grace (a restart would take them back)... */
	cr_assert_lt(held(&b), V);
	run(ns, 2, 20 * KVC_S);
	cr_assert_eq(held(&b), V);
	kvc_member_free(b.m);
}

Test(controller_member, hostile_options_are_refused)
{
	kvc_member *m;
	kvc_simconn c;
	kvc_simapi_connect(&c, srv);
	kvc_member_opts o = KVC_MEMBER_OPTS_INIT;
	cr_assert_eq(kvc_member_new(&m, &o, &c.api, kvc_clock_system(), NULL), KVS_EINVAL);
	o.identity = "x";
	o.renew_deadline_ns = 20 * KVC_S;
	cr_assert_eq(kvc_member_new(&m, &o, &c.api, kvc_clock_system(), NULL), KVS_EINVAL);
	o.renew_deadline_ns = 0;
	o.vshards = KVC_VSHARDS_MAX + 1;
	cr_assert_eq(kvc_member_new(&m, &o, &c.api, kvc_clock_system(), NULL), KVS_EINVAL);
}
