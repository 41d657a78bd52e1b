/*
 * app.h — the process around a controller on the runtime, shared by the
 * example programs (shard-echo, kvsplit-controller): the common flags, the
 * log lines, the two clients and the membership, and the keepalive loop
 * with its SIGTERM handoff. For programs only: it writes log lines to
 * stdout and flag errors to stderr, and installs signal handlers.
 */
#ifndef KVC_APP_H
#define KVC_APP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <kvsplit.h>
#include <kvsplit/kube.h>

#include "controller/api.h"
#include "controller/member.h"
#include "controller/vshard.h"

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
