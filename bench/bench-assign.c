/*
 * bench-assign.c — the assignment tables for V = 1024 virtual shards and
 * N = 1..16 members, plain rendezvous beside the bounded-load variant:
 * shards moved from N to N+1 (against the bound 1/(N+1) + 2%), shards
 * moved between survivors from N to N-1 (the departed member's own are
 * expected to move), max/mean load; and the label selector's length. The
 * same figures are asserted by tests/test_controller_assign.c.
 *
 *   build/bench-assign
 */
#include <stdio.h>

#include "controller/assign.h"
#include "controller/vshard.h"

#define V 1024

int main(void)
{
	char names[20][32];
	const char *ids[20];
	int a[V], b[V], c[V];
	unsigned load[20];

	for (int i = 0; i < 20; i++) {
		snprintf(names[i], sizeof(names[i]), "shard-echo-%d", i);
		ids[i] = names[i];
	}
	printf("V = %d, members shard-echo-0..N-1\n\n", V);
	printf("%3s | %-34s | %-34s\n", "", "plain rendezvous", "bounded load (eps 0.10)");
	printf("%3s | %8s %8s %7s %8s | %8s %8s %7s %8s\n", "N", "N->N+1", "bound", "N->N-1", "max/mean", "N->N+1",
	       "bound", "N->N-1", "max/mean");
	for (size_t n = 1; n <= 16; n++) {
		printf("%3zu |", n);
		for (int bounded = 0; bounded < 2; bounded++) {
			double eps = bounded ? KVC_ASSIGN_EPS_DEFAULT : -1;
			kvc_assign(a, V, ids, n, eps, load);
			kvc_assign(b, V, ids, n + 1, eps, NULL);
			unsigned up = 0, extra = 0, mx = 0;
			for (unsigned s = 0; s < V; s++)
				up += a[s] != b[s];
			if (n > 1) {
				kvc_assign(c, V, ids, n - 1, eps, NULL);
				for (unsigned s = 0; s < V; s++)
					extra += (size_t)a[s] != n - 1 && a[s] != c[s];
			}
			for (size_t i = 0; i < n; i++)
				mx = load[i] > mx ? load[i] : mx;
			printf(" %7.2f%% %7.2f%% %7u %8.3f %s", 100.0 * up / V, 100.0 / (double)(n + 1) + 2.0, extra,
			       (double)mx / ((double)V / (double)n), bounded ? "" : "|");
		}
		printf("\n");
	}
	printf("\n(N->N-1: shards moved between survivors when the last member leaves)\n\n");
	kvc_shardset s;
	static char sel[KVC_SHARDSET_TEXT_MAX];
	printf("label selector length by shards held (V = %d):\n", V);
	for (size_t n = 1; n <= 16; n *= 2) {
		kvc_assign(a, V, ids, n, KVC_ASSIGN_EPS_DEFAULT, NULL);
		kvc_set_clear(&s);
		for (unsigned i = 0; i < V; i++)
			if (a[i] == 0)
				kvc_set_add(&s, i);
		int len = kvc_set_selector(sel, sizeof(sel), &s, V);
		printf("  N = %2zu: %4u shards, %5d bytes%s\n", n, kvc_set_count(&s), len,
		       len < 64 ? "" : (sel[18] == 'n' ? " (notin)" : ""));
	}
	return 0;
}
