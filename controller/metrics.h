/*
 * metrics.h — a Prometheus text-format endpoint (libmicrohttpd) and the
 * runtime's standard metrics.
 *
 * The server answers GET /metrics by calling a collect function that writes
 * the exposition text into a growable buffer (kvc_mbuf, capped at 4 MiB);
 * kvc_metrics_runtime writes the runtime's own set (docs/controller.md,
 * "Metrics"): shards owned, objects cached, reconciles and errors, queue
 * depth and latency, handoffs, Lease renewals and failures, max/mean load
 * across the group, bytes stored and read through libkvsplit.
 */
#ifndef KVC_METRICS_H
#define KVC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "controller/informer.h"
#include "controller/member.h"
#include "controller/workqueue.h"

#define KVC_MBUF_MAX (4u << 20)

/** Exposition text being written; err is set once a write failed (cap, memory). */
typedef struct kvc_mbuf {
	char *p;
	size_t len, cap;
	int err;
} kvc_mbuf;

/** printf into the buffer. */
void kvc_mbuf_printf(kvc_mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** "# HELP name help" and "# TYPE name type" (type: counter, gauge, summary). */
void kvc_mbuf_family(kvc_mbuf *b, const char *name, const char *type, const char *help);
/** One sample: name{labels} value (labels: "" or `a="x",b="y"`). */
void kvc_mbuf_sample(kvc_mbuf *b, const char *name, const char *labels, double v);

/** Write the exposition text; nonzero: answer 500. */
typedef int (*kvc_metrics_collect)(void *ctx, kvc_mbuf *b);

typedef struct kvc_metrics kvc_metrics;

/**
 * Serve GET /metrics on addr ("HOST:PORT"; port 0: an ephemeral one).
 * @return 0, KVS_EINVAL (bad address), KVS_EIO (cannot listen), KVS_ENOMEM
 */
int kvc_metrics_start(kvc_metrics **out, const char *addr, kvc_metrics_collect fn, void *ctx);
/** The port it listens on. */
unsigned kvc_metrics_port(const kvc_metrics *m);
/** Stop and free; NULL is fine. */
void kvc_metrics_stop(kvc_metrics *m);

/** What the controller counts itself (the runtime cannot see it). */
typedef struct kvc_runtime_counters {
	uint64_t reconciles;       /**< reconciles run */
	uint64_t reconcile_errors; /**< of which failed */
	uint64_t kvs_bytes_written; /**< stored bytes written through libkvsplit (kvs_put_stats) */
	uint64_t kvs_bytes_read;   /**< bytes read through libkvsplit */
} kvc_runtime_counters;

/**
 * The runtime's metric families for a member, its queue and informers
 * (each may be NULL; informers are labelled by position: informer="0"...).
 */
void kvc_metrics_runtime(kvc_mbuf *b, kvc_member *m, kvc_queue *q, kvc_informer *const *infs,
                         size_t ninf, const kvc_runtime_counters *c);

#endif
