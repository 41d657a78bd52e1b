/*
 * api.h — the small "API" the membership code talks to: Leases only. The
 * Kubernetes client implements it over coordination.k8s.io/v1 (kubeapi.c);
 * the simulation implements it in memory under a virtual clock (simapi.c).
 * The membership, assignment and handoff code cannot tell them apart.
 */
#ifndef KVC_API_H
#define KVC_API_H

#include <stddef.h>

#include "controller/lease.h"

#define KVC_API_VERSION 1

typedef struct kvc_api {
	unsigned int version; /**< KVC_API_VERSION */
	void *ctx;

	/**
	 * Every Lease labelled kvsplit.io/group=group, read fresh from the
	 * server (a quorum read, never a cache: the claim check relies on it).
	 * *out is a malloc'd array the caller frees.
	 */
	int (*lease_list)(void *ctx, const char *group, kvc_lease **out, size_t *n);
	/** One Lease by name: KVS_ENOTFOUND if none. */
	int (*lease_get)(void *ctx, const char *name, kvc_lease *out);
	/** Create rec; fills rec->rv. KVS_EEXISTS if it exists. */
	int (*lease_create)(void *ctx, kvc_lease *rec);
	/**
	 * Replace the Lease if its resourceVersion is still rec->rv; fills the
	 * new rv. KVS_ECONFLICT if someone wrote it since, KVS_ENOTFOUND.
	 */
	int (*lease_update)(void *ctx, kvc_lease *rec);
	/**
	 * Delete the Lease if its resourceVersion is still rv (a precondition):
	 * KVS_ECONFLICT, KVS_ENOTFOUND. Members delete Leases long expired.
	 */
	int (*lease_delete)(void *ctx, const char *name, const char *rv);
} kvc_api;

#endif
