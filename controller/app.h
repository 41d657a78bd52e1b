/*
 * app.h — the process around a controller on the runtime, shared by the
 * example programs (shard-echo, kvsplit-controller): the common flags, the
 * log lines, the two clients and the membership, the worker loop around a
 * program's reconcile, and the keepalive loop with its SIGTERM handoff. For programs only: it writes log lines to
 * stdout and flag errors to stderr, and installs signal handlers.
 */
#ifndef KVC_APP_H
#define KVC_APP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <kvsplit.h>
#include <kvsplit/kube.h>

#include "controller/api.h"
#include "controller/informer.h"
#include "controller/member.h"
#include "controller/metrics.h"
#include "controller/vshard.h"
#include "controller/workqueue.h"

/** The flags every controller program takes (docs/controller.md, "Writing a controller"). */
typedef struct kvc_app_flags {
	const char *kubeconfig, *ns, *identity, *metrics_addr;
	int64_t lease_ns;   /**< --lease-duration (default 15 s) */
	int64_t resync_ns;  /**< --resync (the program's default) */
	unsigned workers;   /**< --workers (default 4) */
	double qps;         /**< --qps (default 100) */
	int json;           /**< --log-json */
} kvc_app_flags;

/** Defaults, with the program's --resync default. */
void kvc_app_flags_init(kvc_app_flags *f, int64_t resync_ns);

/**
 * If argv[*i] is a common flag, take it (and its value: *i advances past
 * it) and return 1; 0 if it is not one (the program reads it, or refuses
 * it). --help is the program's.
 */
int kvc_app_flag(kvc_app_flags *f, int argc, char **argv, int *i);

/** "15s", "500ms", "2m", "1h", or plain seconds, in ns; -1 if malformed. */
int64_t kvc_app_parse_duration(const char *s);

/**
 * Check the common flags and fill in the identity (the hostname, kept in
 * host[cap], when --identity was not given). 0, or -1 after a message on
 * stderr prefixed with `prog` (exit 2).
 */
int kvc_app_check(kvc_app_flags *f, const char *prog, char *host, size_t cap);

/** One process: its identity, clients and membership. */
typedef struct kvc_app {
	const char *id;
	int json;
	int64_t lease_ns;
	kvs_kube *kube;        /**< objects (--qps) */
	kvs_kube *lease_kube;  /**< the keepalive's: short timeouts, one retry */
	kvc_api *api;
	kvc_member *m;
} kvc_app;

/**
 * Open the objects client (kubeconfig, namespace `client_ns` or the
 * context's, --qps, burst 2 qps or 100), the Lease client
 * (kvc_kubeapi_lease_options) and the membership of `group` with
 * client-go's ratios (renew deadline 2/3 of the lease, retry 2/15), its
 * Leases in the objects client's namespace. *ko_out (may be NULL) gets the
 * objects client's options. On error, what was opened stays for
 * kvc_app_close().
 */
int kvc_app_open(kvc_app *a, const kvc_app_flags *f, const char *group, const char *client_ns,
                 kvs_kube_options *ko_out);
/** Free what kvc_app_open made (accepts a zeroed or partly opened app). */
void kvc_app_close(kvc_app *a);

/**
 * One log line: ts, event, member, then the NULL-terminated "key", "value"
 * pairs (strings), key=value or (--log-json) a JSON object. Thread-safe.
 */
void kvc_app_log(const kvc_app *a, const char *event, ...);

/** The log line's fields a reconcile adds after `result` (kvc_app_field). */
#define KVC_APP_FIELDS_MAX 8

/** What one reconcile tells the worker loop. */
typedef struct kvc_app_reconciled {
	const char *result;  /**< the log line's result=; NULL: "error" if it failed, else "ok" */
	int64_t requeue_ns;  /**< > 0 after a success: reconcile the key again this much later */
	unsigned nfields;
	struct {
		const char *key;
		char value[24];
	} fields[KVC_APP_FIELDS_MAX];
} kvc_app_reconciled;

/** Add key=value (printf) to the reconcile's log line; past KVC_APP_FIELDS_MAX, nothing. */
void kvc_app_field(kvc_app_reconciled *out, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/**
 * A program's reconcile of one object: `obj` is the informer's copy under
 * `key` (the loop frees it after), of `shard`, which the member holds at
 * `epoch` for the whole call. Returns 0 or a negative KVS_E code (the key
 * is then requeued, rate-limited); *out is zeroed before the call.
 */
typedef int (*kvc_app_reconcile_fn)(void *ctx, const char *key, const cJSON *obj, unsigned shard,
                                    uint64_t epoch, kvc_app_reconciled *out);

/** A worker loop: where its keys and objects come from, what it calls. */
typedef struct kvc_app_worker {
	kvc_app *app;
	kvc_queue *q;                   /**< the keys to reconcile */
	kvc_informer *inf;              /**< their objects (with their shards) */
	kvc_app_reconcile_fn reconcile;
	void *ctx;
	pthread_mutex_t *mu;            /**< guards *counters (the program's /metrics read them) */
	kvc_runtime_counters *counters; /**< reconciles and reconcile_errors are counted here */
} kvc_app_worker;

/**
 * The worker loop, a pthread start routine (arg: a kvc_app_worker, which
 * outlives the thread), until the queue shuts down. Per key: the object
 * from the informer (gone, or not stamped with a shard yet: forgotten);
 * kvc_member_begin of its shard (not acting on it now: forgotten, its next
 * owner lists it); the reconcile; its `reconcile` log line (object, shard,
 * epoch, result, the reconcile's fields, start, dur_us, error), written
 * while the shard is still held so that every action is logged before
 * its shard can move; kvc_member_end; counted; then forgotten, requeued
 * rate-limited after an error, or added again after requeue_ns.
 */
void *kvc_app_worker_run(void *arg);

/** What the keepalive calls besides the member's tick. */
typedef struct kvc_app_hooks {
	void *ctx;
	/** The held shard set changed (point the informers at it). */
	void (*shards)(void *ctx, const kvc_shardset *held);
	/** After each member tick (e.g. tick a leader election): when to run again (monotonic ns), 0 = no wish. */
	int64_t (*tick)(void *ctx);
} kvc_app_hooks;

/** SIGTERM and SIGINT end kvc_app_run's keepalive; SIGPIPE is ignored. */
void kvc_app_signals(void);

/**
 * The keepalive, on the calling thread: tick the member, log `fenced` and
 * `shards` changes, call the hooks, sleep until the next tick, until
 * SIGTERM; then log `stopping`, drain and release every shard and the
 * Lease (kvc_member_stop), for at most two lease durations. Returns 1 if
 * everything was released. The caller then stops its workers.
 */
int kvc_app_run(kvc_app *a, const kvc_app_hooks *hooks);

#endif
