/*
 * test_controller_sim.c — suite "controller_sim": thousands of seeded
 * schedules of faults over the real membership code (controller/sim.h
 * lists the checks). A failure names its seed; replay it with
 * kvc_sim_run(.seed = N, .verbose = 2).
 */
#include <criterion/criterion.h>

#include "controller/sim.h"

static void run_many(uint64_t from, uint64_t n, const kvc_sim_opts *base, kvc_sim_result *agg)
{
	memset(agg, 0, sizeof(*agg));
	agg->ok = 1;
	for (uint64_t s = from; s < from + n; s++) {
		kvc_sim_opts o = *base;
		kvc_sim_result r;
		o.seed = s;
		o.members = o.members ? o.members : (unsigned)(2 + s % 4);
		cr_assert_eq(kvc_sim_run(&o, &r), 0);
		cr_assert(r.ok, "%s", r.why);
		agg->ticks += r.ticks;
		agg->activations += r.activations;
		agg->kills += r.kills;
		agg->takeovers_checked += r.takeovers_checked;
		agg->max_takeover_ns = r.max_takeover_ns > agg->max_takeover_ns ? r.max_takeover_ns : agg->max_takeover_ns;
		agg->takeover_bound_ns = r.takeover_bound_ns;
	}
}

Test(controller_sim, every_fault_kind_2000_seeds, .timeout = 120)
{
	kvc_sim_opts o = KVC_SIM_OPTS_INIT;
	kvc_sim_result agg;
	run_many(1, 2000, &o, &agg);
	/* Not vacuous: members did take shards over, and kills were checked. */
	cr_assert_gt(agg.activations, 2000 * 20);
	cr_assert_gt(agg.takeovers_checked, 150);
	cr_log_info("2000 schedules: %llu ticks, %llu activations, %llu takeovers checked, worst %.3fs (bound %.3fs)",
	            (unsigned long long)agg.ticks, (unsigned long long)agg.activations,
	            (unsigned long long)agg.takeovers_checked, (double)agg.max_takeover_ns / 1e9,
	            (double)agg.takeover_bound_ns / 1e9);
}

Test(controller_sim, kills_are_taken_over_within_lease_duration_plus_one_retry, .timeout = 60)
{
	kvc_sim_opts o = KVC_SIM_OPTS_INIT;
	kvc_sim_result agg;
	o.faults = KVC_SIM_KILL | KVC_SIM_LATENCY;
	o.nfaults = 3;
	run_many(10000, 1000, &o, &agg);
	cr_assert_gt(agg.takeovers_checked, 500);
	cr_assert_leq(agg.max_takeover_ns, agg.takeover_bound_ns);
	/* ... and not long before: nobody may judge a Lease expired early. */
	cr_assert_gt(agg.max_takeover_ns, 14 * 1000000000ll);
}

Test(controller_sim, partitions_pauses_and_errors_never_double_own, .timeout = 60)
{
	kvc_sim_opts o = KVC_SIM_OPTS_INIT;
	kvc_sim_result agg;
	o.faults = KVC_SIM_PARTITION | KVC_SIM_PAUSE | KVC_SIM_ERRORS | KVC_SIM_LATENCY;
	o.nfaults = 10;
	run_many(20000, 1000, &o, &agg);
	cr_assert_gt(agg.activations, 1000 * 20);
}

Test(controller_sim, plain_rendezvous_variant_too, .timeout = 60)
{
	kvc_sim_opts o = KVC_SIM_OPTS_INIT;
	kvc_sim_result agg;
	o.plain = 1;
	run_many(30000, 500, &o, &agg);
	cr_assert_gt(agg.activations, 500 * 20);
}

Test(controller_sim, a_deleted_lease_still_holds_its_claims_until_it_expires, .timeout = 60)
{
	kvc_sim_opts o = KVC_SIM_OPTS_INIT;
	kvc_sim_result agg;
	o.faults = KVC_SIM_DELETE | KVC_SIM_PAUSE | KVC_SIM_LATENCY;
	run_many(40000, 300, &o, &agg);
	cr_assert_gt(agg.activations, 300 * 20);
}

Test(controller_sim, the_same_seed_replays_the_same_run)
{
	kvc_sim_opts o = KVC_SIM_OPTS_INIT;
	kvc_sim_result a, b;
	o.seed = 777;
	o.members = 4;
	cr_assert_eq(kvc_sim_run(&o, &a), 0);
	cr_assert_eq(kvc_sim_run(&o, &b), 0);
	cr_assert_eq(a.ticks, b.ticks);
	cr_assert_eq(a.activations, b.activations);
	cr_assert_eq(a.max_takeover_ns, b.max_takeover_ns);
}
