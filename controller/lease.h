/*
 * lease.h — a coordination.k8s.io/v1 Lease as the runtime sees it, and the
 * expiry judge.
 *
 * The judge follows client-go's leaderelection: a Lease is held until
 * (the local monotonic time at which its record was last SEEN TO CHANGE) +
 * leaseDurationSeconds. renewTime is written for humans and never read: the
 * holder's clock may be anywhere. A record first seen counts as just changed,
 * so a newcomer waits a full duration before it may judge a Lease expired.
 */
#ifndef KVC_LEASE_H
#define KVC_LEASE_H

#include <stdint.h>

#include "controller/vshard.h"

#define KVC_NAME_MAX 254
#define KVC_GROUP_MAX 64
#define KVC_RV_MAX 32

/** Label of member Leases: the group they belong to. */
#define KVC_GROUP_LABEL "kvsplit.io/group"
/** Annotations a member publishes on its Lease. */
#define KVC_SHARDS_ANNOTATION "kvsplit.io/shards"
#define KVC_EPOCH_ANNOTATION "kvsplit.io/epoch"
#define KVC_VSHARDS_ANNOTATION "kvsplit.io/vshards"

typedef struct kvc_lease {
	char name[KVC_NAME_MAX];      /**< metadata.name */
	char group[KVC_GROUP_MAX];    /**< label kvsplit.io/group; "" for a plain Lease (election) */
	char rv[KVC_RV_MAX];          /**< metadata.resourceVersion */
	char holder[KVC_NAME_MAX];    /**< spec.holderIdentity; "" when released */
	int32_t duration_s;           /**< spec.leaseDurationSeconds */
	int64_t acquire_us;           /**< spec.acquireTime, Unix µs (informational) */
	int64_t renew_us;             /**< spec.renewTime, Unix µs (informational, never judged) */
	int32_t transitions;          /**< spec.leaseTransitions */
	uint64_t epoch;               /**< kvsplit.io/epoch: the holder's ownership epoch */
	unsigned vshards;             /**< kvsplit.io/vshards: V of the group (0: not a member lease) */
	kvc_shardset claims;          /**< kvsplit.io/shards: shards the holder claims */
} kvc_lease;

/** What one observer knows about one Lease. */
typedef struct kvc_observed {
	kvc_lease rec;
	int64_t seen_at;       /**< local time the record last changed (rv differed) */
	int64_t first_live_at; /**< start of the current live streak (join hysteresis) */
	int64_t released_at;   /**< local time it was seen released (holder "") */
	int live;              /**< held and not expired at the last judgement */
	int counted;           /**< counted in the membership */
	int present;           /**< in the last list */
} kvc_observed;

/**
 * Record that `rec` was read at local time `now`. Returns 1 when the record
 * changed (new rv, or first sight), 0 otherwise.
 */
int kvc_lease_observe(kvc_observed *o, const kvc_lease *rec, int64_t now, int first);

/** When the observed Lease expires, local time (held leases only). */
static inline int64_t kvc_lease_expiry(const kvc_observed *o)
{
	return o->seen_at + (int64_t)o->rec.duration_s * 1000000000;
}

/** Is the Lease free to take at local time now (released, or expired)? */
static inline int kvc_lease_expired(const kvc_observed *o, int64_t now)
{
	return o->rec.holder[0] == '\0' || now >= kvc_lease_expiry(o);
}

#endif
