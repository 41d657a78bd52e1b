/*
 * fixture.h — test fixtures shared by every suite.
 *
 * fx_backend() gives the backend the suite runs against: the in-memory one by
 * default, or the Kubernetes backend talking to the project's API test server
 * when KVS_TEST_BACKEND=kube (HTTP) or kube-tls (HTTPS + bearer token + CA from
 * a kubeconfig). The same behavioural suites thus run unchanged on both.
 */
#ifndef KVS_TEST_FIXTURE_H
#define KVS_TEST_FIXTURE_H

#include <kvsplit.h>
#include <kvsplit/backend.h>
#include "store/mem/faults.h"

/** Which backend: "memory", "kube" or "kube-tls" (from $KVS_TEST_BACKEND). */
const char *fx_backend_kind(void);

/** A fresh, empty backend of the selected kind (a fresh namespace/cluster). */
int fx_backend(kvs_backend **out);

/**
 * A second handle on the same cluster as `b` (another client). For memory
 * this is kvs_backend_mem_clone; for kube, a new client of the same server.
 */
int fx_backend_peer(kvs_backend **out, kvs_backend *b);

/** Kubernetes flavour: provided by tests/support/fixture_kube.c. */
int fx_kube_backend(kvs_backend **out, int tls);
int fx_kube_backend_peer(kvs_backend **out, kvs_backend *b);

/**
 * Compact the watch history of `b`'s cluster now: watches from any revision
 * older than the current one get KVS_EGONE. Memory: kvs_mem_compact; kube:
 * fx_kube_compact (asks the API test server to compact).
 */
int fx_compact(kvs_backend *b);
int fx_kube_compact(kvs_backend *b);

/**
 * A write elsewhere in `b`'s cluster (a real cluster always has some: lease
 * renewals), so a newer revision exists and idle watches get bookmarks.
 * Memory: nothing (its watches get bookmarks when idle); kube: a Lease.
 */
int fx_touch(kvs_backend *b);
int fx_kube_touch(kvs_backend *b);

/**
 * Count the objects of `b` that `selector` matches, every page of a
 * metadata-only list. 0, or the list's error code (*out then partial).
 */
int fx_count_objects(kvs_backend *b, const char *selector, size_t *out);

/** Deterministic pseudo-random bytes and a realistic JSON workflow status. */
void fx_random(void *buf, size_t len, uint64_t seed);
/** Generate about `len` bytes (exactly `len`) of workflow-status-like JSON. */
void fx_json(char *buf, size_t len, uint64_t seed);

#endif
