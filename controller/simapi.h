/*
 * simapi.h — an in-memory Lease API under a virtual clock, with per-client
 * faults (partitions, error rates, lost responses, latency). It implements
 * api.h like the Kubernetes client does, for the simulation and the tests.
 * Single-threaded: one schedule drives every client in turn.
 */
#ifndef KVC_SIMAPI_H
#define KVC_SIMAPI_H

#include <stdint.h>

#include "controller/api.h"

typedef struct kvc_simapi kvc_simapi;

/** One client's connection to the simulated server, and its faults. */
typedef struct kvc_simconn {
	kvc_api api;             /**< pass &conn->api to the member */
	kvc_simapi *srv;
	int64_t partitioned_until; /**< every call fails (KVS_EIO) before this time */
	int64_t errors_until;      /**< calls fail with probability error_p before this */
	double error_p;
	int64_t latency_max_ns;    /**< each call advances the clock by up to this */
	uint64_t calls, failures;
} kvc_simconn;

/** A server whose clock is *now (ns), random choices from seed. */
int kvc_simapi_new(kvc_simapi **out, int64_t *now, uint64_t seed);
void kvc_simapi_free(kvc_simapi *s);
void kvc_simapi_connect(kvc_simconn *c, kvc_simapi *s);
/** Delete a Lease as an administrator would. */
int kvc_simapi_delete(kvc_simapi *s, const char *name);
/** Read a Lease directly (tests). */
int kvc_simapi_peek(kvc_simapi *s, const char *name, kvc_lease *out);
/** The server's random stream (splitmix64), shared with the schedule. */
uint64_t kvc_simapi_rand(kvc_simapi *s);

#endif
