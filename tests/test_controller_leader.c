/*
 * test_controller_leader.c — suite "controller_leader": singleton tasks by
 * Lease-based election, on the simulated API with a manual clock.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "kvsplit.h"
#include "controller/leader.h"
#include "controller/simapi.h"

static int64_t now;
static kvc_simapi *srv;
static kvc_clock clk;
static kvc_simconn ca, cb;
static kvc_leader *a, *b;

static void setup(void)
{
	now = 100 * KVC_S;
	kvc_clock_manual(&clk, &now);
	cr_assert_eq(kvc_simapi_new(&srv, &now, 1), 0);
	kvc_simapi_connect(&ca, srv);
	kvc_simapi_connect(&cb, srv);
	cr_assert_eq(kvc_leader_new(&a, "g-leader-gc", "a", 0, 0, 0, &ca.api, &clk), 0);
	cr_assert_eq(kvc_leader_new(&b, "g-leader-gc", "b", 0, 0, 0, &cb.api, &clk), 0);
}

static void teardown(void)
{
	kvc_leader_free(a);
	kvc_leader_free(b);
	kvc_simapi_free(srv);
}

TestSuite(controller_leader, .init = setup, .fini = teardown);

/* Tick both every 100 ms for dt; fail if both lead at any step. */
static void run(int64_t dt, int tick_a, int tick_b)
{
	for (int64_t end = now + dt; now < end; now += 100 * KVC_MS) {
		if (tick_a && kvc_leader_next_tick(a) <= now)
			kvc_leader_tick(a);
		if (tick_b && kvc_leader_next_tick(b) <= now)
			kvc_leader_tick(b);
		cr_assert(!(kvc_leader_is_leader(a) && kvc_leader_is_leader(b)), "two leaders at %lld", (long long)now);
	}
}

Test(controller_leader, exactly_one_leads)
{
	run(10 * KVC_S, 1, 1);
	cr_assert(kvc_leader_is_leader(a) != kvc_leader_is_leader(b));
}

Test(controller_leader, leadership_moves_when_the_leader_dies)
{
	kvc_leader_tick(a);
	run(5 * KVC_S, 1, 1);
	cr_assert(kvc_leader_is_leader(a));
	int64_t died = now;
	run(14 * KVC_S, 0, 1);
	cr_assert(!kvc_leader_is_leader(b), "took over before the Lease expired");
	run(3 * KVC_S, 0, 1);
	cr_assert(kvc_leader_is_leader(b), "not leader %.1fs after the leader died", (double)(now - died) / 1e9);
}

Test(controller_leader, a_partitioned_leader_stops_before_another_takes_over)
{
	kvc_leader_tick(a);
	run(5 * KVC_S, 1, 1);
	cr_assert(kvc_leader_is_leader(a));
	ca.partitioned_until = now + 60 * KVC_S;
	int64_t stopped = 0, taken = 0;
	for (int i = 0; i < 300; i++) {
		run(100 * KVC_MS, 1, 1);
		if (!stopped && !kvc_leader_is_leader(a))
			stopped = now;
		if (!taken && kvc_leader_is_leader(b))
			taken = now;
	}
	cr_assert(stopped && taken);
	cr_assert_lt(stopped, taken);
	cr_assert_geq(taken - stopped, 4 * KVC_S, "only %.1fs of margin", (double)(taken - stopped) / 1e9);
}

Test(controller_leader, release_hands_over_at_once)
{
	kvc_leader_tick(a);
	run(3 * KVC_S, 1, 1);
	cr_assert(kvc_leader_is_leader(a));
	cr_assert_eq(kvc_leader_release(a), 0);
	cr_assert(!kvc_leader_is_leader(a));
	run(3 * KVC_S, 0, 1);
	cr_assert(kvc_leader_is_leader(b));
}
