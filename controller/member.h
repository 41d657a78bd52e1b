/*
 * member.h — one replica's membership in a sharded group: its Lease, the
 * shards it derives from the live membership, the handoff protocol, and the
 * fence that stops it acting before anyone may take its work.
 *
 * Protocol (docs/controller.md has the argument):
 *  - every member holds the Lease "<group>.<identity>", renewed each retry
 *    period; on it it publishes the shards it claims and its epoch;
 *  - the membership is the set of Leases that are held and not expired (the
 *    judge of lease.h), a newcomer counted only after `settle` (join
 *    hysteresis), a released Lease still counted for `release_grace` (so a
 *    restart under the same identity moves nothing), an expired one dropped
 *    at once;
 *  - each member computes the assignment (assign.h) and:
 *      a shard it holds but no longer targets is drained (no new reconcile;
 *      in-flight ones finish; the flush hook runs) and then released, at most
 *      max_release_per_tick per tick;
 *      a shard it targets that no live member claims is CLAIMED: written to
 *      its Lease, then verified by a fresh list; if any other live member
 *      claims it too, it withdraws. Of two racing claimants at least the
 *      later writer sees the earlier's claim, so at most one proceeds;
 *  - a member acts on a shard only while now < (time it SENT its last
 *    successful renewal) + renew_deadline. Others judge its Lease expired no
 *    earlier than (time they saw that renewal) + lease_duration, which is
 *    later: a partitioned member stops acting first. A renewal whose answer
 *    arrives after the deadline does not extend it: the member starts over.
 *  - every shard it activates gets an epoch greater than every epoch it has
 *    seen published, so successive owners of a shard have increasing epochs
 *    (state writes carry it and are conditional on the version read).
 */
#ifndef KVC_MEMBER_H
#define KVC_MEMBER_H

#include <stdint.h>

#include "controller/api.h"
#include "controller/clock.h"
#include "controller/vshard.h"

#define KVC_MEMBER_OPTS_VERSION 1

typedef struct kvc_member_opts {
	unsigned int version;          /**< KVC_MEMBER_OPTS_VERSION */
	const char *group;             /**< default "kvsplit" */
	const char *identity;          /**< required: unique among live processes */
	unsigned vshards;              /**< V; default 1024 */
	int64_t lease_duration_ns;     /**< default 15 s (whole seconds on the wire) */
	int64_t renew_deadline_ns;     /**< default 10 s; < lease duration */
	int64_t retry_period_ns;       /**< default 2 s */
	int64_t settle_ns;             /**< join hysteresis; default 2 retry periods */
	int64_t release_grace_ns;      /**< released Lease still counted; default lease duration */
	unsigned max_release_per_tick; /**< rebalancing rate limit; default 64; 0: default */
	double load_eps;               /**< bounded-load slack; default 0.10; < 0: plain rendezvous */
} kvc_member_opts;
#define KVC_MEMBER_OPTS_INIT { KVC_MEMBER_OPTS_VERSION, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0 }

typedef struct kvc_member_hooks {
	void *ctx;
	/** Shard now ours, with its epoch (start its informer, enqueue its objects). */
	void (*acquired)(void *ctx, unsigned shard, uint64_t epoch);
	/** Shard draining: nothing new starts; in-flight work finishes. */
	void (*draining)(void *ctx, unsigned shard);
	/** Flush the shard's state before release; nonzero: try again next tick. */
	int (*flush)(void *ctx, unsigned shard);
	/** Shard no longer ours (released, withdrawn after fence). */
	void (*released)(void *ctx, unsigned shard);
	/** Another member's Lease was judged expired (it was live before). */
	void (*peer_expired)(void *ctx, const kvc_lease *peer);
} kvc_member_hooks;

typedef struct kvc_member_stats {
	uint64_t ticks, renewals, renew_failures, list_failures, conflicts;
	uint64_t acquired, released, withdrawn, fences;
	unsigned members;    /**< counted members at the last tick */
	unsigned held;       /**< active shards */
	unsigned target;     /**< shards the assignment gives us */
	unsigned max_load;   /**< largest member load in our table */
	double mean_load;    /**< V / members */
} kvc_member_stats;

typedef struct kvc_member kvc_member;

/**
 * @param[out] out    the member; free with kvc_member_free
 * @param opts        copied
 * @param api, clk    must outlive the member
 * @param hooks       may be NULL; copied. Hooks run on the ticking thread with
 *                    the member's lock held: they must not call back into it.
 * @return 0, KVS_EINVAL (no identity, bad durations), KVS_ENOMEM
 */
int kvc_member_new(kvc_member **out, const kvc_member_opts *opts, const kvc_api *api,
                   const kvc_clock *clk, const kvc_member_hooks *hooks);
void kvc_member_free(kvc_member *m);

/**
 * One keepalive round: observe the group, renew (or take) the Lease with the
 * claims, drain/release and claim/verify shards. Returns 0 or the API's
 * error (the member fences itself by time if errors persist).
 */
int kvc_member_tick(kvc_member *m);

/** Local time the next tick should run: next retry, or the first peer expiry. */
int64_t kvc_member_next_tick(kvc_member *m);

/**
 * Start work on a shard: 1 and *epoch if the member may act on it now, else
 * 0. Every 1 must be paired with kvc_member_end.
 */
int kvc_member_begin(kvc_member *m, unsigned shard, uint64_t *epoch);
void kvc_member_end(kvc_member *m, unsigned shard);

/** Would kvc_member_begin succeed now (no side effect)? */
int kvc_member_acting(kvc_member *m, unsigned shard);

/** Local time the member stops acting unless it renews (0: not holding). */
int64_t kvc_member_fence_deadline(kvc_member *m);

/** Leave: drain and release every shard, then release the Lease. Ticks do it. */
void kvc_member_stop(kvc_member *m);
/** Has the Lease been released after kvc_member_stop? */
int kvc_member_stopped(kvc_member *m);

void kvc_member_stats_get(kvc_member *m, kvc_member_stats *out);
/** The shards active now. */
void kvc_member_held(kvc_member *m, kvc_shardset *out);
const char *kvc_member_lease_name(const kvc_member *m);
unsigned kvc_member_vshards(const kvc_member *m);

#endif
