/*
 * store/mem/faults.h — fault injection, hooks, counters and clock of the
 * in-memory backend, for the project's tests and benchmarks.
 *
 * Not installed and not exported from the shared library (no KVS_API): a
 * program linked against libkvsplit.so cannot call these, only the static
 * library's own tests can. The in-memory backend itself (kvs_backend_mem,
 * kvs_backend_mem_clone) is public, in <kvsplit/backend.h>.
 */
#ifndef KVS_MEM_FAULTS_H
#define KVS_MEM_FAULTS_H

#include "kvsplit/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Fault injection and hooks of the in-memory backend. The call counter counts
 * every vtable call (batch ops count one each).
 */
typedef enum kvs_mem_call {
	KVS_MEM_GET = 0, KVS_MEM_CREATE, KVS_MEM_REPLACE, KVS_MEM_ANNOTATE,
	KVS_MEM_REMOVE, KVS_MEM_LIST, KVS_MEM_WATCH,
	KVS_MEM_HEAD,   /* metadata-only read (head, KVS_OP_HEAD); appended */
	KVS_MEM_NCALLS
} kvs_mem_call;

/** Fail the n-th call from now (1 = the next) with `code`; 0 disables. */
void kvs_mem_fail_nth(kvs_backend *mem, uint64_t n, int code);
/**
 * Lose the response of the n-th call from now (1 = the next; 0 disables):
 * the call takes full effect, as on a server that applied a request whose
 * response never reached the client (connection dropped), but returns
 * `code` (KVS_EIO when 0) with nothing in its out parameter. Counted like
 * kvs_mem_fail_nth, independently of it; a call failed by another fault is
 * not applied and its response is not "lost".
 */
void kvs_mem_lose_response_nth(kvs_backend *mem, uint64_t n, int code);
/**
 * Like kvs_mem_lose_response_nth, but the handle then re-sends the call once
 * as the Kubernetes backend retries a request whose outcome it does not
 * know, and returns the re-sent call's result: a create gets KVS_EEXISTS, a
 * replace conditioned on the old resourceVersion KVS_ECONFLICT, a remove
 * KVS_ENOTFOUND, a get the object. The re-send is not counted, faulted or
 * hooked; a failure's detail notes that our own earlier attempt may have
 * applied.
 */
void kvs_mem_lose_response_nth_retry(kvs_backend *mem, uint64_t n);
/** Fail every call of one kind with `code` (0 clears). */
void kvs_mem_fail_kind(kvs_backend *mem, kvs_mem_call kind, int code);
/**
 * Crash after `n` more calls: call n+1 and every later call fail with KVS_EIO
 * and have no effect (0 disables). A call that "crashes" never half-applies.
 */
void kvs_mem_crash_after(kvs_backend *mem, uint64_t n);

/** Per-handle counters. */
typedef struct kvs_mem_stats {
	uint64_t calls[KVS_MEM_NCALLS];
	uint64_t bytes_written;     /**< data bytes of created/replaced objects */
	uint64_t bytes_read;        /**< data bytes returned by get/list (head: none) */
	uint64_t objects;           /**< objects now stored (whole cluster) */
	uint64_t stored_bytes;      /**< data bytes now stored (whole cluster) */
} kvs_mem_stats;
void kvs_mem_get_stats(kvs_backend *mem, kvs_mem_stats *out);
void kvs_mem_reset_stats(kvs_backend *mem);

/**
 * A hook called before every call takes effect, with the call kind and the
 * object name (NULL for list/watch). Tests use it to interleave other
 * clients (a concurrent gc, a second writer) at exact points. A non-zero
 * return fails the call with that code. The hook may call into other
 * backend handles of the same cluster, but not into this handle.
 */
typedef int (*kvs_mem_hook)(void *ctx, kvs_mem_call kind, const char *name);
void kvs_mem_set_hook(kvs_backend *mem, kvs_mem_hook hook, void *ctx);

/** Advance the in-memory server clock (for grace periods). */
void kvs_mem_advance_clock(kvs_backend *mem, int64_t ms);

/**
 * Reach into the cluster for fault tests: flip one bit of the data entry
 * `key` of object `name` at byte `offset`, without changing its
 * resourceVersion (disk corruption). KVS_ENOTFOUND if absent.
 */
int kvs_mem_corrupt(kvs_backend *mem, const char *name, const char *key,
                            size_t offset);
/** Compact watch history now: watches from older revisions get KVS_EGONE. */
void kvs_mem_compact(kvs_backend *mem);

#ifdef __cplusplus
}
#endif
#endif /* KVS_MEM_FAULTS_H */
