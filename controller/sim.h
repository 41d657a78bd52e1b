/*
 * sim.h — the deterministic simulation: the real membership, assignment and
 * handoff code (member.c) run against the simulated API (simapi.c) under a
 * virtual clock, through a schedule of faults drawn from a seed. Same seed,
 * same run: a failing seed is replayed with kvc_sim_run and verbose set.
 *
 * Checked throughout:
 *  - exclusion: when a member activates a shard, no other live member may
 *    act on it at that instant (each judged on its own clock), and its epoch
 *    exceeds every earlier owner's;
 *  - fencing: when any member judges a peer's Lease expired, that peer (if
 *    still running, e.g. partitioned) no longer acts on any shard;
 *  - takeover: after a kill with no other fault around it, every shard the
 *    dead member held is active again within lease duration + one retry
 *    period (+ the calls' latency);
 *  - convergence: after the faults end, every shard is active on exactly one
 *    live member.
 */
#ifndef KVC_SIM_H
#define KVC_SIM_H

#include <stdint.h>

#define KVC_SIM_KILL      0x01  /* kill -9 a member (maybe restart it later, same identity) */
#define KVC_SIM_PARTITION 0x02  /* every API call of a member fails for a while */
#define KVC_SIM_ERRORS    0x04  /* a fraction of a member's calls fail, some after applying */
#define KVC_SIM_PAUSE     0x08  /* a member stops running for a while (GC pause, slow node) */
#define KVC_SIM_JOIN      0x10  /* a new member joins */
#define KVC_SIM_STOP      0x20  /* a member leaves cleanly (maybe comes back, same identity) */
#define KVC_SIM_LATENCY   0x40  /* calls take up to 50 ms */
#define KVC_SIM_DELETE    0x80  /* an administrator deletes a live member's Lease (members
                                   that saw it honour it; a newcomer cannot, so not with JOIN) */
#define KVC_SIM_ALL       0x7f  /* everything but DELETE, which breaks an assumption */

typedef struct kvc_sim_opts {
	uint64_t seed;
	unsigned members;     /**< initial members; default 3 */
	unsigned vshards;     /**< default 64 */
	int64_t run_ns;       /**< virtual time with faults; default 200 s */
	unsigned faults;      /**< KVC_SIM_*; default KVC_SIM_ALL */
	unsigned nfaults;     /**< faults drawn; default 6 */
	int plain;            /**< plain rendezvous instead of bounded load */
	int verbose;          /**< print the schedule and events to stderr */
} kvc_sim_opts;
#define KVC_SIM_OPTS_INIT { 0, 0, 0, 0, 0, 0, 0, 0 }

typedef struct kvc_sim_result {
	int ok;
	char why[512];            /**< the first violation, with the seed */
	uint64_t ticks, activations, kills, takeovers_checked;
	int64_t max_takeover_ns;  /**< worst kill-to-active-again */
	int64_t takeover_bound_ns;
} kvc_sim_result;

/** Run one schedule. Returns 0 (see out->ok) or KVS_ENOMEM. */
int kvc_sim_run(const kvc_sim_opts *o, kvc_sim_result *out);

#endif
