/*
 * assign.c — rendezvous hashing, plain and with bounded load.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/assign.h"

uint64_t kvc_assign_score(unsigned shard, const char *id)
{
	/* The shard is the seed, so each shard ranks the members independently. */
	return XXH3_64bits_withSeed(id, strlen(id), (uint64_t)shard * 0x9E3779B97F4A7C15ull + 1);
}

/* Is (sa, ida) ranked above (sb, idb)? Ties (never seen in practice) break
 * by identity so that every member computes the same table. */
static int better(uint64_t sa, const char *ida, uint64_t sb, const char *idb)
{
	return sa > sb || (sa == sb && strcmp(ida, idb) < 0);
}

static _Thread_local const uint64_t *sort_top;
static int by_top(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
	if (sort_top[x] != sort_top[y])
		return sort_top[x] > sort_top[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

int kvc_assign(int *owner, unsigned v, const char *const *ids, size_t n, double eps, unsigned *load)
{
	unsigned cap = v;
	unsigned stack_load[64];
	unsigned *ld = load;

	if (v == 0)
		return kvs_error_set(KVS_EINVAL, "assign: no shards");
	if (n == 0) {
		for (unsigned s = 0; s < v; s++)
			owner[s] = -1;
		return 0;
	}
	if (!ld) {
		if (n > sizeof(stack_load) / sizeof(stack_load[0]))
			return kvs_error_set(KVS_EINVAL, "assign: pass a load array for %zu members", n);
		ld = stack_load;
	}
	memset(ld, 0, n * sizeof(*ld));
	if (eps > 0) {
		/* A small group gets a tighter cap: the member that joins a group of
		 * n can take at most (1+eps)/(n+1) of the shards, and 0.015 n keeps
		 * that within 2% of its fair share; from n ~ 7 on, eps itself. */
		if (eps > KVC_ASSIGN_EPS_PER_MEMBER * (double)n)
			eps = KVC_ASSIGN_EPS_PER_MEMBER * (double)n;
		double mean = (double)v / (double)n;
		unsigned lo = (unsigned)ceil(mean);
		unsigned hi = (unsigned)floor((1.0 + eps) * mean);
		cap = hi > lo ? hi : lo;
	}
	unsigned *order = malloc(v * sizeof(*order));
	uint64_t *top = malloc(v * sizeof(*top));
	if (!order || !top) {
		free(order);
		free(top);
		return kvs_error_set(KVS_ENOMEM, "assign: out of memory");
	}
	for (unsigned s = 0; s < v; s++) {
		top[s] = 0;
		for (size_t m = 0; m < n; m++) {
			uint64_t sc = kvc_assign_score(s, ids[m]);
			top[s] = sc > top[s] ? sc : top[s];
		}
		order[s] = s;
	}
	sort_top = top;
	qsort(order, v, sizeof(*order), by_top);
	for (unsigned k = 0; k < v; k++) {
		unsigned s = order[k];
		int best = -1;
		uint64_t bs = 0;
		for (size_t m = 0; m < n; m++) {
			if (ld[m] >= cap)
				continue;
			uint64_t sc = kvc_assign_score(s, ids[m]);
			if (best < 0 || better(sc, ids[m], bs, ids[best]))
				best = (int)m, bs = sc;
		}
		/* cap * n >= v, so some member always has room. */
		owner[s] = best;
		ld[best]++;
	}
	free(order);
	free(top);
	return 0;
}
