/*
 * assign.h — which member owns which virtual shard, derived from the live
 * membership alone: every member computes the same table from the same set
 * of identities, with no coordination and no stored assignment.
 *
 * Rendezvous (highest-random-weight) hashing: shard s goes to the member m
 * with the highest score h(s, m). Adding a member moves only the shards it
 * wins (about V/(N+1)); removing one moves only its own.
 *
 * The bounded-load variant caps every member at
 *     c = max(ceil(V/N), floor((1 + eps) * V / N))
 * and gives each shard, strongest first (by its best score), to its
 * highest-scoring member still under c (consistent hashing with bounded loads, Mirrokni et al., applied
 * to rendezvous scores). max/mean load <= 1 + eps whenever
 * floor((1+eps)V/N) >= ceil(V/N), e.g. V = 1024 and N <= 100 at eps = 0.10.
 * For small groups eps is lowered to 0.015 n (KVC_ASSIGN_EPS_PER_MEMBER), so
 * a joining member takes at most its fair share + 1.5%.
 * It moves a little more than the plain variant on a scale event (shards
 * that overflowed return to their first choice), see docs/controller.md.
 */
#ifndef KVC_ASSIGN_H
#define KVC_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

#define KVC_ASSIGN_EPS_DEFAULT 0.10
#define KVC_ASSIGN_EPS_PER_MEMBER 0.015

/** The rendezvous score of (shard, member identity). */
uint64_t kvc_assign_score(unsigned shard, const char *id);

/**
 * Fill owner[0..v-1] with an index into ids[0..n-1] (or -1 when n == 0).
 * ids must be distinct; their order does not matter. eps <= 0 selects plain
 * rendezvous; eps > 0 the bounded-load variant. load, if not NULL, receives
 * the number of shards of each member (n entries).
 * Returns 0, or KVS_EINVAL (v == 0, too many members for the bound).
 */
int kvc_assign(int *owner, unsigned v, const char *const *ids, size_t n, double eps, unsigned *load);

#endif
