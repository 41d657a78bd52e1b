/*
 * clock.h — the injectable clock every time-dependent part of the runtime
 * reads. Monotonic nanoseconds for every judgement (lease expiry, fencing,
 * backoff); wall time only for the timestamps written into Leases, which no
 * one trusts. Tests and the simulation pass a virtual clock.
 */
#ifndef KVC_CLOCK_H
#define KVC_CLOCK_H

#include <stdint.h>

#define KVC_MS ((int64_t)1000000)
#define KVC_S  ((int64_t)1000000000)

typedef struct kvc_clock {
	/** Monotonic time, ns; never goes back. */
	int64_t (*mono)(void *ctx);
	/** Wall time, Unix microseconds (informational: renewTime, logs). */
	int64_t (*wall_us)(void *ctx);
	void *ctx;
} kvc_clock;

/** The process clock (CLOCK_MONOTONIC, CLOCK_REALTIME). */
const kvc_clock *kvc_clock_system(void);

/** A manual clock for tests: reads *ns; wall time is *ns / 1000. */
void kvc_clock_manual(kvc_clock *out, int64_t *ns);

static inline int64_t kvc_now(const kvc_clock *c)
{
	return c->mono(c->ctx);
}

#endif
