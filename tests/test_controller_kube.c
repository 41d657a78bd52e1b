/*
 * test_controller_kube.c — suite "controller_kube": the membership code on
 * real Leases through the Kubernetes client and the API test server
 * (build/kapi-server). Time is the system clock here, so durations are
 * short and assertions are about outcomes, never about timing.
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "kvsplit.h"
#include "kvsplit/kube.h"
#include "controller/kubeapi.h"
#include "controller/member.h"
#include "support/fixture_kube.h"

static fx_kapi *srv;
static kvs_kube *kube;
static kvc_api *api;

static void setup(void)
{
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	cr_assert_eq(fx_kapi_start(&srv, 0, NULL), 0, "%s", kvs_error_last());
	ko.kubeconfig = fx_kapi_kubeconfig(srv);
	cr_assert_eq(kvs_kube_open(&kube, &ko), 0, "%s", kvs_error_last());
	cr_assert_eq(kvc_kubeapi_new(&api, kube, NULL), 0);
}

static void teardown(void)
{
	kvc_kubeapi_free(api);
	kvs_kube_free(kube);
	fx_kapi_stop(srv);
}

TestSuite(controller_kube, .init = setup, .fini = teardown, .timeout = 60);

Test(controller_kube, lease_verbs_round_trip_with_conflicts)
{
	kvc_lease l, got;
	memset(&l, 0, sizeof(l));
	strcpy(l.name, "g.a");
	strcpy(l.group, "g");
	strcpy(l.holder, "a");
	l.duration_s = 15;
	l.renew_us = 1700000000000000ll;
	l.vshards = 64;
	l.epoch = 3;
	kvc_set_add(&l.claims, 5);
	cr_assert_eq(api->lease_create(api->ctx, &l), 0, "%s", kvs_error_last());
	cr_assert_neq(l.rv[0], '\0');
	cr_assert_eq(api->lease_create(api->ctx, &l), KVS_EEXISTS);
	char old_rv[KVC_RV_MAX];
	strcpy(old_rv, l.rv);
	l.epoch = 4;
	cr_assert_eq(api->lease_update(api->ctx, &l), 0, "%s", kvs_error_last());
	cr_assert_str_neq(l.rv, old_rv);
	strcpy(got.rv, old_rv);
	got = l;
	strcpy(got.rv, old_rv);
	cr_assert_eq(api->lease_update(api->ctx, &got), KVS_ECONFLICT);
	cr_assert_eq(api->lease_get(api->ctx, "g.a", &got), 0);
	cr_assert_eq(got.epoch, 4);
	cr_assert(kvc_set_has(&got.claims, 5));
	cr_assert_str_eq(got.holder, "a");
	kvc_lease *ls;
	size_t n;
	cr_assert_eq(api->lease_list(api->ctx, "g", &ls, &n), 0);
	cr_assert_eq(n, 1);
	free(ls);
	cr_assert_eq(api->lease_list(api->ctx, "other", &ls, &n), 0);
	cr_assert_eq(n, 0);
	free(ls);
	cr_assert_eq(api->lease_delete(api->ctx, "g.a", old_rv), KVS_ECONFLICT);
	cr_assert_eq(api->lease_delete(api->ctx, "g.a", l.rv), 0);
	cr_assert_eq(api->lease_get(api->ctx, "g.a", &got), KVS_ENOTFOUND);
}

Test(controller_kube, two_members_split_the_shards_on_real_leases)
{
	kvc_member *m[2];
	kvc_member_opts o = KVC_MEMBER_OPTS_INIT;
	o.group = "echo";
	o.vshards = 64;
	o.lease_duration_ns = 3 * KVC_S;
	o.renew_deadline_ns = 2 * KVC_S;
	o.retry_period_ns = 100 * KVC_MS;
	o.settle_ns = 200 * KVC_MS;
	o.identity = "a";
	cr_assert_eq(kvc_member_new(&m[0], &o, api, kvc_clock_system(), NULL), 0);
	o.identity = "b";
	cr_assert_eq(kvc_member_new(&m[1], &o, api, kvc_clock_system(), NULL), 0);
	kvc_shardset s0, s1;
	unsigned c0 = 0, c1 = 0;
	/* Outcome-based: tick until they split, at most ~10 s. */
	for (int i = 0; i < 100; i++) {
		kvc_member_tick(m[0]);
		kvc_member_tick(m[1]);
		kvc_member_held(m[0], &s0);
		kvc_member_held(m[1], &s1);
		for (unsigned s = 0; s < 64; s++)
			cr_assert(!(kvc_set_has(&s0, s) && kvc_set_has(&s1, s)), "shard %u on both", s);
		c0 = kvc_set_count(&s0), c1 = kvc_set_count(&s1);
		if (c0 + c1 == 64 && c0 > 16 && c1 > 16)
			break;
		usleep(100000);
	}
	cr_assert_eq(c0 + c1, 64, "a %u + b %u", c0, c1);
	cr_assert(c0 > 16 && c1 > 16, "a %u, b %u", c0, c1);
	kvc_lease l;
	cr_assert_eq(api->lease_get(api->ctx, "echo.a", &l), 0);
	cr_assert_eq(kvc_set_count(&l.claims), c0);
	kvc_member_stop(m[0]);
	for (int i = 0; i < 50 && !kvc_member_stopped(m[0]); i++)
		kvc_member_tick(m[0]);
	cr_assert(kvc_member_stopped(m[0]));
	cr_assert_eq(api->lease_get(api->ctx, "echo.a", &l), 0);
	cr_assert_str_eq(l.holder, "");
	kvc_member_free(m[0]);
	kvc_member_free(m[1]);
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The keepalive's own client (kvc_kubeapi_lease_options): with the API
 * server answering after 5 s, a tick gives up well inside the 2 s renew
 * deadline, where the client's defaults (30 s, 6 retries) would wait. */
Test(controller_kube, a_tick_cannot_outlive_the_renew_deadline)
{
	kvc_member_opts o = KVC_MEMBER_OPTS_INIT;
	o.group = "slow";
	o.identity = "a";
	o.vshards = 64;
	o.lease_duration_ns = 3 * KVC_S;
	o.renew_deadline_ns = 2 * KVC_S;
	o.retry_period_ns = 400 * KVC_MS;
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	ko.kubeconfig = fx_kapi_kubeconfig(srv);
	kvc_kubeapi_lease_options(&ko, &o);
	cr_assert_leq(ko.timeout_ms, 500);
	cr_assert_eq(ko.retries, 1);
	kvs_kube *lk;
	kvc_api *la;
	kvc_member *m;
	cr_assert_eq(kvs_kube_open(&lk, &ko), 0, "%s", kvs_error_last());
	cr_assert_eq(kvc_kubeapi_new(&la, lk, NULL), 0);
	cr_assert_eq(kvc_member_new(&m, &o, la, kvc_clock_system(), NULL), 0);
	cr_assert_eq(kvc_member_tick(m), 0, "%s", kvs_error_last());
	cr_assert_eq(fx_kapi_faults(srv, "{\"latency_ms\":5000}"), 0);
	double t0 = mono_s();
	int rc = kvc_member_tick(m);
	double took = mono_s() - t0;
	cr_assert_eq(fx_kapi_faults(srv, "{\"latency_ms\":0}"), 0);
	cr_assert_lt(rc, 0);
	cr_assert_lt(took, 2.0, "a tick took %.2f s", took);
	kvc_member_free(m);
	kvc_kubeapi_free(la);
	kvs_kube_free(lk);
}
