/*
 * workqueue.h — client-go's workqueue semantics for object keys:
 *  - an item is handed to one worker at a time (the processing set);
 *  - adding an item already queued is a no-op (the dirty set); adding one
 *    being processed queues it to run once more after kvc_queue_done;
 *  - add_after delays an item (the earliest of several delays wins);
 *  - add_rate_limited delays it by max(per-item exponential backoff, the
 *    overall token bucket), like DefaultControllerRateLimiter; forget resets
 *    the item's backoff.
 * Times come from the injected clock; kvc_queue_get blocks on the real
 * clock only for its timeout, so tests poll with timeout 0.
 */
#ifndef KVC_WORKQUEUE_H
#define KVC_WORKQUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "controller/clock.h"

#define KVC_QUEUE_OPTS_VERSION 1
typedef struct kvc_queue_opts {
	unsigned int version;   /**< KVC_QUEUE_OPTS_VERSION */
	int64_t base_delay_ns;  /**< first retry delay; default 5 ms */
	int64_t max_delay_ns;   /**< cap of the per-item backoff; default 1000 s */
	double qps;             /**< overall bucket rate; default 10 */
	unsigned burst;         /**< bucket size; default 100 */
	size_t max_items;       /**< items known at once; default 1,000,000 */
} kvc_queue_opts;
#define KVC_QUEUE_OPTS_INIT { KVC_QUEUE_OPTS_VERSION, 0, 0, 0, 0, 0 }

typedef struct kvc_queue_stats {
	uint64_t adds, gets, retries;
	size_t depth;              /**< ready items */
	size_t waiting;            /**< delayed items */
	size_t processing;
	int64_t latency_sum_ns;    /**< add-to-get, summed over gets */
	int64_t latency_max_ns;
} kvc_queue_stats;

typedef struct kvc_queue kvc_queue;

int kvc_queue_new(kvc_queue **out, const kvc_queue_opts *opts, const kvc_clock *clk);
/** Free the queue (NULL is fine); keys returned by get must be done first. */
void kvc_queue_free(kvc_queue *q);

/** @return 0, KVS_ETOOBIG (max_items), KVS_ECANCELED (shut down), KVS_ENOMEM */
int kvc_queue_add(kvc_queue *q, const char *key);
int kvc_queue_add_after(kvc_queue *q, const char *key, int64_t delay_ns);
int kvc_queue_add_rate_limited(kvc_queue *q, const char *key);
/** Forget the item's failures (after a success). */
void kvc_queue_forget(kvc_queue *q, const char *key);
/** How many rate-limited re-adds since the last forget. */
unsigned kvc_queue_requeues(kvc_queue *q, const char *key);

/**
 * Take the next ready item: *out is the queue's copy of the key, valid
 * until kvc_queue_done(q, *out). Waits up to timeout_ns (real time; 0: do
 * not wait; < 0: forever).
 * @return 0, KVS_ETIMEOUT, KVS_ECANCELED (shut down and drained)
 */
int kvc_queue_get(kvc_queue *q, const char **out, int64_t timeout_ns);
/** The worker finished with key; if it was re-added meanwhile, it is queued. */
void kvc_queue_done(kvc_queue *q, const char *key);

/** No more adds; get returns KVS_ECANCELED once the ready items are taken. */
void kvc_queue_shutdown(kvc_queue *q);
/** Wake a blocked get after the injected clock moved (tests, simulation). */
void kvc_queue_kick(kvc_queue *q);
void kvc_queue_stats_get(kvc_queue *q, kvc_queue_stats *out);

#endif
