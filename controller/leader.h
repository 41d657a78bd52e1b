/*
 * leader.h — singleton tasks: Lease-based leader election with client-go's
 * semantics, for work that must run on exactly one member of the group
 * (kvsplit gc, periodic cleanups). The same judge and fence as member.h:
 * a leader acts only until (when it sent its last successful renewal) +
 * renew deadline; a candidate takes the Lease only after it has not seen it
 * change for lease duration. Ticked by the same keepalive thread as the
 * member's Lease.
 */
#ifndef KVC_LEADER_H
#define KVC_LEADER_H

#include <stdint.h>

#include "controller/api.h"
#include "controller/clock.h"

typedef struct kvc_leader kvc_leader;

/**
 * @param name      the Lease's name ("<group>-leader-<task>"); not labelled
 *                  as a member Lease
 * @param identity  this process
 * Durations 0 take client-go's defaults (15 s, 10 s, 2 s).
 */
int kvc_leader_new(kvc_leader **out, const char *name, const char *identity, int64_t lease_duration_ns,
                   int64_t renew_deadline_ns, int64_t retry_period_ns, const kvc_api *api, const kvc_clock *clk);
void kvc_leader_free(kvc_leader *l);
/** One round: take, renew or watch the Lease. */
int kvc_leader_tick(kvc_leader *l);
/** May this process run the singleton task now? */
int kvc_leader_is_leader(kvc_leader *l);
/** Release the Lease if held (holder "", like client-go's ReleaseOnCancel). */
int kvc_leader_release(kvc_leader *l);
/** Local time of the next tick. */
int64_t kvc_leader_next_tick(kvc_leader *l);

#endif
