/*
 * test_controller_workqueue.c — suite "controller_queue": client-go's
 * workqueue semantics on a manual clock.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "kvsplit.h"
#include "controller/workqueue.h"

static int64_t now;
static kvc_clock clk;
static kvc_queue *q;

static void setup(void)
{
	now = 5 * KVC_S;
	kvc_clock_manual(&clk, &now);
	cr_assert_eq(kvc_queue_new(&q, NULL, &clk), 0);
}

static void teardown(void)
{
	kvc_queue_free(q);
}

TestSuite(controller_queue, .init = setup, .fini = teardown);

static const char *get(void)
{
	const char *k = NULL;
	int rc = kvc_queue_get(q, &k, 0);
	return rc == 0 ? k : NULL;
}

Test(controller_queue, fifo_and_duplicates_collapse)
{
	kvc_queue_add(q, "a");
	kvc_queue_add(q, "b");
	kvc_queue_add(q, "a");
	const char *k = get();
	cr_assert_str_eq(k, "a");
	kvc_queue_done(q, k);
	k = get();
	cr_assert_str_eq(k, "b");
	kvc_queue_done(q, k);
	cr_assert_null(get());
}

Test(controller_queue, an_item_goes_to_one_worker_at_a_time_and_runs_again_after)
{
	kvc_queue_add(q, "a");
	const char *k = get();
	cr_assert_str_eq(k, "a");
	kvc_queue_add(q, "a"); /* changed while processed */
	kvc_queue_add(q, "a");
	cr_assert_null(get(), "handed to a second worker while processed");
	kvc_queue_done(q, k);
	k = get();
	cr_assert_str_eq(k, "a", "the add during processing was lost");
	kvc_queue_done(q, k);
	cr_assert_null(get(), "two adds during processing ran twice");
}

Test(controller_queue, add_after_waits_on_the_clock_and_earliest_wins)
{
	kvc_queue_add_after(q, "a", 10 * KVC_S);
	kvc_queue_add_after(q, "a", 3 * KVC_S);
	cr_assert_null(get());
	now += 3 * KVC_S - 1;
	cr_assert_null(get());
	now += 1;
	const char *k = get();
	cr_assert_str_eq(k, "a");
	kvc_queue_done(q, k);
	now += 10 * KVC_S;
	cr_assert_null(get(), "the later delay ran it again");
}

Test(controller_queue, per_item_backoff_is_exponential_and_forget_resets_it)
{
	int64_t expect = 5 * KVC_MS;
	for (int i = 0; i < 6; i++) {
		kvc_queue_add_rate_limited(q, "a");
		now += expect - 1;
		cr_assert_null(get(), "retry %d came before %lld ns", i, (long long)expect);
		now += 1;
		const char *k = get();
		cr_assert_str_eq(k, "a");
		kvc_queue_done(q, k);
		expect *= 2;
	}
	cr_assert_eq(kvc_queue_requeues(q, "a"), 6);
	kvc_queue_forget(q, "a");
	cr_assert_eq(kvc_queue_requeues(q, "a"), 0);
	kvc_queue_add_rate_limited(q, "a");
	now += 5 * KVC_MS;
	const char *k = get();
	cr_assert_str_eq(k, "a");
	kvc_queue_done(q, k);
}

Test(controller_queue, overall_rate_limit_spreads_a_burst)
{
	char key[16];
	/* 100 tokens of burst at 10/s: item 100 waits 0.1 s, item 149 ~5 s. */
	for (int i = 0; i < 150; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		kvc_queue_add_rate_limited(q, key);
	}
	now += 5 * KVC_MS;
	int n = 0;
	const char *k;
	while ((k = get())) {
		kvc_queue_done(q, k);
		n++;
	}
	cr_assert_eq(n, 100);
	now += 2 * KVC_S;
	while ((k = get())) {
		kvc_queue_done(q, k);
		n++;
	}
	cr_assert(n >= 119 && n <= 121, "after 2 s: %d", n);
	now += 3 * KVC_S;
	while ((k = get())) {
		kvc_queue_done(q, k);
		n++;
	}
	cr_assert_eq(n, 150);
}

Test(controller_queue, shutdown_drains_then_cancels)
{
	kvc_queue_add(q, "a");
	kvc_queue_shutdown(q);
	cr_assert_eq(kvc_queue_add(q, "b"), KVS_ECANCELED);
	const char *k = NULL;
	cr_assert_eq(kvc_queue_get(q, &k, -1), 0);
	cr_assert_str_eq(k, "a");
	kvc_queue_done(q, k);
	cr_assert_eq(kvc_queue_get(q, &k, -1), KVS_ECANCELED);
}

Test(controller_queue, the_number_of_items_is_capped)
{
	kvc_queue *small;
	kvc_queue_opts o = KVC_QUEUE_OPTS_INIT;
	o.max_items = 2;
	cr_assert_eq(kvc_queue_new(&small, &o, &clk), 0);
	cr_assert_eq(kvc_queue_add(small, "a"), 0);
	cr_assert_eq(kvc_queue_add(small, "b"), 0);
	cr_assert_eq(kvc_queue_add(small, "c"), KVS_ETOOBIG);
	cr_assert_eq(kvc_queue_add(small, "a"), 0);
	kvc_queue_stats st;
	kvc_queue_stats_get(small, &st);
	cr_assert_eq(st.depth, 2);
	kvc_queue_free(small);
}

Test(controller_queue, latency_is_measured_from_add_to_get)
{
	kvc_queue_add(q, "a");
	now += 250 * KVC_MS;
	const char *k = get();
	kvc_queue_done(q, k);
	kvc_queue_stats st;
	kvc_queue_stats_get(q, &st);
	cr_assert_eq(st.latency_max_ns, 250 * KVC_MS);
	cr_assert_eq(st.gets, 1);
}
