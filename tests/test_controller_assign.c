/*
 * test_controller_assign.c — suites "controller_vshard" and
 * "controller_assign": shard numbers, shard-set text forms and selectors,
 * and the assignment tables (movement on scale events, balance).
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "kvsplit.h"
#include "controller/assign.h"
#include "controller/vshard.h"

#define V 1024

static char names[20][32];
static const char *ids[20];

static void mkids(const char *prefix)
{
	for (int i = 0; i < 20; i++) {
		snprintf(names[i], sizeof(names[i]), "%s%d", prefix, i);
		ids[i] = names[i];
	}
}

static const char *const prefixes[] = { "member-", "shard-echo-", "m", "pod-7f9c-", "kvsplit.node" };

Test(controller_vshard, shard_of_uid_is_stable_and_in_range)
{
	unsigned a = kvc_vshard_of("6f1c0b8e-3d7a-4a55-9d43-0e9b1f1b2c3d", V);
	cr_assert_lt(a, V);
	cr_assert_eq(a, kvc_vshard_of("6f1c0b8e-3d7a-4a55-9d43-0e9b1f1b2c3d", V));
	unsigned hits[8] = { 0 };
	char uid[64];
	for (int i = 0; i < 8000; i++) {
		snprintf(uid, sizeof(uid), "uid-%d", i);
		hits[kvc_vshard_of(uid, 8)]++;
	}
	for (int i = 0; i < 8; i++)
		cr_assert(hits[i] > 900 && hits[i] < 1100, "shard %d got %u of 8000", i, hits[i]);
}

Test(controller_vshard, set_text_round_trips)
{
	kvc_shardset s, t;
	char buf[KVC_SHARDSET_TEXT_MAX];
	kvc_set_clear(&s);
	for (unsigned i = 0; i < 6; i++)
		kvc_set_add(&s, i);
	kvc_set_add(&s, 9);
	kvc_set_add(&s, 1023);
	cr_assert_gt(kvc_set_format(buf, sizeof(buf), &s), 0);
	cr_assert_str_eq(buf, "0-5,9,1023");
	cr_assert_eq(kvc_set_parse(&t, buf, V), 0);
	cr_assert(kvc_set_equal(&s, &t));
	kvc_set_clear(&s);
	cr_assert_eq(kvc_set_format(buf, sizeof(buf), &s), 0);
	cr_assert_eq(kvc_set_parse(&t, "", V), 0);
	cr_assert_eq(kvc_set_count(&t), 0);
}

Test(controller_vshard, hostile_set_text_is_refused_and_changes_nothing)
{
	static const char *const bad[] = { "1,", ",1", "1-", "-1", "5-3", "3,3", "4,2", "1024", "0-1024",
	                                   "1 2", "x", "1--2", "99999999", "1,,2", "0-3,2" };
	kvc_shardset t;
	kvc_set_clear(&t);
	kvc_set_add(&t, 7);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(kvc_set_parse(&t, bad[i], V), KVS_EINVAL, "accepted \"%s\"", bad[i]);
		cr_assert(kvc_set_has(&t, 7) && kvc_set_count(&t) == 1);
	}
}

Test(controller_vshard, selector_lists_the_shorter_side)
{
	kvc_shardset s;
	char buf[KVC_SHARDSET_TEXT_MAX];
	kvc_set_clear(&s);
	kvc_set_add(&s, 3);
	kvc_set_add(&s, 17);
	cr_assert_gt(kvc_set_selector(buf, sizeof(buf), &s, V), 0);
	cr_assert_str_eq(buf, "kvsplit.io/vshard in (3,17)");
	for (unsigned i = 0; i < V; i++)
		kvc_set_add(&s, i);
	kvc_set_del(&s, 5);
	cr_assert_gt(kvc_set_selector(buf, sizeof(buf), &s, V), 0);
	cr_assert_str_eq(buf, "kvsplit.io/vshard notin (5)");
	kvc_set_add(&s, 5);
	cr_assert_gt(kvc_set_selector(buf, sizeof(buf), &s, V), 0);
	cr_assert_str_eq(buf, "kvsplit.io/vshard");
	kvc_set_clear(&s);
	cr_assert_eq(kvc_set_selector(buf, sizeof(buf), &s, V), 0);
	/* The worst case, half the shards, stays a few KB. */
	kvc_set_clear(&s);
	for (unsigned i = 0; i < V; i += 2)
		kvc_set_add(&s, i);
	int n = kvc_set_selector(buf, sizeof(buf), &s, V);
	cr_assert(n > 0 && n < 2600, "selector of 512 shards is %d bytes", n);
}

static unsigned moved(const int *a, const int *b)
{
	unsigned n = 0;
	for (unsigned s = 0; s < V; s++)
		n += a[s] != b[s];
	return n;
}

Test(controller_assign, scale_up_moves_at_most_fair_share_plus_2pct)
{
	int a[V], b[V];
	for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
		mkids(prefixes[p]);
		for (size_t n = 1; n <= 16; n++) {
			cr_assert_eq(kvc_assign(a, V, ids, n, KVC_ASSIGN_EPS_DEFAULT, NULL), 0);
			cr_assert_eq(kvc_assign(b, V, ids, n + 1, KVC_ASSIGN_EPS_DEFAULT, NULL), 0);
			double f = (double)moved(a, b) / V, bound = 1.0 / (double)(n + 1) + 0.02;
			cr_assert_leq(f, bound, "%s*: %zu -> %zu moved %.4f > %.4f", prefixes[p], n, n + 1, f, bound);
		}
	}
}

Test(controller_assign, scale_down_plain_moves_only_the_departed_members_shards)
{
	int a[V], b[V];
	for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
		mkids(prefixes[p]);
		for (size_t n = 2; n <= 16; n++)
			for (size_t gone = 0; gone < n; gone += 3) {
				const char *rest[20];
				size_t k = 0;
				for (size_t i = 0; i < n; i++)
					if (i != gone)
						rest[k++] = ids[i];
				kvc_assign(a, V, ids, n, -1, NULL);
				kvc_assign(b, V, rest, n - 1, -1, NULL);
				for (unsigned s = 0; s < V; s++)
					if ((size_t)a[s] != gone)
						cr_assert_str_eq(ids[a[s]], rest[b[s]], "shard %u moved between survivors", s);
			}
	}
}

Test(controller_assign, scale_down_bounded_moves_departed_plus_at_most_2pct)
{
	int a[V], b[V];
	for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
		mkids(prefixes[p]);
		for (size_t n = 2; n <= 16; n++) {
			kvc_assign(a, V, ids, n, KVC_ASSIGN_EPS_DEFAULT, NULL);
			kvc_assign(b, V, ids, n - 1, KVC_ASSIGN_EPS_DEFAULT, NULL);
			unsigned extra = 0;
			for (unsigned s = 0; s < V; s++)
				extra += (size_t)a[s] != n - 1 && a[s] != b[s];
			cr_assert_leq(extra, V / 50, "%s*: %zu -> %zu moved %u shards between survivors", prefixes[p], n,
			              n - 1, extra);
		}
	}
}

Test(controller_assign, bounded_load_max_over_mean_at_most_1_10)
{
	int a[V];
	unsigned load[20];
	for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
		mkids(prefixes[p]);
		for (size_t n = 1; n <= 16; n++) {
			kvc_assign(a, V, ids, n, KVC_ASSIGN_EPS_DEFAULT, load);
			unsigned mx = 0, sum = 0;
			for (size_t i = 0; i < n; i++)
				mx = load[i] > mx ? load[i] : mx, sum += load[i];
			cr_assert_eq(sum, V);
			cr_assert_leq((double)mx / ((double)V / (double)n), 1.10, "%s* N=%zu", prefixes[p], n);
		}
	}
}

Test(controller_assign, plain_rendezvous_is_unbalanced_where_bounded_is_not)
{
	/* Why the bounded variant exists: plain HRW at N = 16 is far off. */
	int a[V];
	unsigned load[20], mx = 0;
	mkids("member-");
	kvc_assign(a, V, ids, 16, -1, load);
	for (size_t i = 0; i < 16; i++)
		mx = load[i] > mx ? load[i] : mx;
	cr_assert_gt((double)mx / (V / 16.0), 1.10);
}

Test(controller_assign, table_does_not_depend_on_member_order)
{
	int a[V], b[V];
	const char *rev[16];
	mkids("member-");
	for (int i = 0; i < 16; i++)
		rev[i] = ids[15 - i];
	for (int bounded = 0; bounded < 2; bounded++) {
		kvc_assign(a, V, ids, 16, bounded ? 0.1 : -1, NULL);
		kvc_assign(b, V, rev, 16, bounded ? 0.1 : -1, NULL);
		for (unsigned s = 0; s < V; s++)
			cr_assert_str_eq(ids[a[s]], rev[b[s]]);
	}
}
