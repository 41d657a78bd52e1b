/*
 * store.c — opening and closing a store: option validation and defaults
 * (docs/design.md "Sizes" explains the defaults).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "internal.h"
#include "base/options.h"

int64_t kvs__mono_ms(void)
{
	return (int64_t)(kvs__mono_ns() / 1000000u);
}

uint64_t kvs__mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int bad(const char *what)
{
	return kvs_error_set(KVS_EINVAL, "%s", what);
}

int kvs_open(kvs_store **out, kvs_backend *be, const kvs_options *opts)
{
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_store *s;
	uint64_t objmax, idxmax;
	int rc;

	if (!out)
		return bad("kvs_open: out is NULL");
	*out = NULL;
	if (!be || !be->ops)
		return bad("kvs_open: backend is NULL");
	{
		char what[96];
		snprintf(what, sizeof(what), "kvs_backend_ops of backend \"%.40s\"",
		         be->ops->name ? be->ops->name : "?");
		if ((rc = kvs__version_check(what, NULL, be->ops->version, KVS_BACKEND_OPS_VERSION)) < 0)
			return rc;
	}
	if (!be->ops->get || !be->ops->create || !be->ops->replace ||
	    !be->ops->annotate || !be->ops->remove || !be->ops->list || !be->ops->now)
		return bad("kvs_open: backend lacks a required method");
	if ((rc = KVS__OPTS(&o, opts, store)) < 0)
		return rc;
	if (!o.name) o.name = KVS__DEF_STORE;
	if (!o.chunk_min) o.chunk_min = KVS__DEF_CHUNK_MIN;
	if (!o.chunk_avg) o.chunk_avg = KVS__DEF_CHUNK_AVG;
	if (!o.chunk_max) o.chunk_max = KVS__DEF_CHUNK_MAX;
	if (!o.inline_max) o.inline_max = KVS__DEF_INLINE_MAX;
	if (!o.segment_target) o.segment_target = KVS__DEF_SEGMENT_TARGET;
	if (!o.concurrency) o.concurrency = KVS__DEF_CONCURRENCY;
	if (!o.cache_bytes) o.cache_bytes = KVS__DEF_CACHE_BYTES;
	if (!o.lz4_accel) o.lz4_accel = 1;
	if (!o.touch_window_s) o.touch_window_s = KVS__DEF_TOUCH_WINDOW_S;
	if (!o.history) o.history = KVS_HISTORY_DEFAULT;
	if (!o.workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		o.workers = n > 1 ? (n > KVS__DEF_MAX_WORKERS ? KVS__DEF_MAX_WORKERS : (unsigned)n) : 1;
	}

	if ((rc = kvs__store_name_check(o.name)) < 0)
		return rc;
	if (!(s = calloc(1, sizeof(*s))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if ((rc = kvs__cdc_init(&s->cdc, o.chunk_min, o.chunk_avg, o.chunk_max)) < 0)
		goto fail;
	objmax = be->max_object_bytes ? be->max_object_bytes : 1048576u;
	idxmax = objmax < KVS__MF_INDEX_MAX ? objmax : KVS__MF_INDEX_MAX;
	rc = KVS_EINVAL;
	if (kvs__blob_bound(o.chunk_max) > objmax) {
		kvs_error_set(rc, "chunk_max %u: a chunk could not fit the backend's %llu-byte objects",
		              o.chunk_max, (unsigned long long)objmax);
		goto fail;
	}
	if ((uint64_t)o.inline_max + KVS__INDEX_OVERHEAD + 64 > idxmax ||
	    kvs__blob_bound(o.inline_max) + KVS__INDEX_OVERHEAD > idxmax) {
		kvs_error_set(rc, "inline_max %u does not fit an index object (at most %llu bytes)",
		              o.inline_max, (unsigned long long)(idxmax - KVS__INDEX_OVERHEAD - 64));
		goto fail;
	}
	if (o.segment_target > objmax) {
		kvs_error_set(rc, "segment_target %u is over the backend's object limit %llu",
		              o.segment_target, (unsigned long long)objmax);
		goto fail;
	}
	if (o.concurrency > KVS__MAX_CONCURRENCY) {
		kvs_error_set(rc, "concurrency %u is over %u", o.concurrency, KVS__MAX_CONCURRENCY);
		goto fail;
	}
	if (o.lz4_accel > KVS__MAX_LZ4_ACCEL) {
		kvs_error_set(rc, "lz4_accel %u is over %u", o.lz4_accel, KVS__MAX_LZ4_ACCEL);
		goto fail;
	}
	if (o.workers > KVS__MAX_WORKERS) {
		kvs_error_set(rc, "workers %u is over %u", o.workers, KVS__MAX_WORKERS);
		goto fail;
	}
	if (o.history != KVS_HISTORY_OFF && o.history > KVS_HISTORY_MAX) {
		kvs_error_set(rc, "history %u is over %u (KVS_HISTORY_OFF keeps none)", o.history,
		              KVS_HISTORY_MAX);
		goto fail;
	}
	memcpy(s->name, o.name, strlen(o.name) + 1);
	o.name = s->name;
	s->opts = o;
	s->manifest_max = idxmax;
	s->seg_cap = o.segment_target;
	s->put_retries = KVS__DEF_PUT_RETRIES;
	s->workers = o.workers;
	s->history = o.history == KVS_HISTORY_OFF ? 0 : o.history;
	s->batch = be->ops->version >= 2 ? be->ops->batch : NULL;
	s->map_run_target = 64u * 1024u;
	s->map_inline_max = 256u * 1024u;
	s->head = be->ops->version >= 2 ? be->ops->head : NULL;
	if ((rc = kvs__cache_new(&s->cache, o.cache_bytes == KVS_CACHE_OFF ? 0 : o.cache_bytes)) < 0)
		goto fail;
	s->be = be;
	*out = s;
	return 0;
fail:
	kvs__cache_free(s->cache);
	free(s);
	return rc;
}

void kvs_close(kvs_store *s)
{
	if (!s)
		return;
	kvs__cache_free(s->cache);
	kvs_backend_free(s->be);
	free(s);
}

int kvs__store_set_manifest_max(kvs_store *s, uint64_t bytes)
{
	if (bytes < 1024 || bytes > KVS__MF_INDEX_MAX)
		return kvs_error_set(KVS_EINVAL, "manifest_max %llu out of range",
		                     (unsigned long long)bytes);
	s->manifest_max = bytes;
	return 0;
}

int kvs__store_set_workers(kvs_store *s, unsigned int n)
{
	if (n < 1 || n > KVS__MAX_WORKERS)
		return kvs_error_set(KVS_EINVAL, "workers %u out of range", n);
	s->workers = n;
	s->opts.workers = n;
	return 0;
}

/*
 * Run a batch: through the backend's batch method when it has one of the
 * kvs_op layout this library uses (vtable version 2), else one by one. Each
 * op's result and detail are set either way, so callers report a failed op
 * from its own detail, never from the thread's last error (which the other
 * ops of a parallel batch overwrite).
 */
/* A metadata read answered by a get: drop the data (data_bytes stays). */
static void drop_data(kvs_object *o)
{
	kvs_object_clear_data(o);
}

int kvs__batch(kvs_store *s, kvs_op *ops, size_t n)
{
	unsigned char *as_get = NULL;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		ops[i].out = NULL;
		ops[i].result = 0;
		ops[i].detail[0] = '\0';
	}
	if (s->batch && n > 1) {
		/* a backend without head never sees KVS_OP_HEAD (backend.h) */
		for (size_t i = 0; i < n && !s->head; i++) {
			if (ops[i].kind != KVS_OP_HEAD)
				continue;
			if (!as_get && !(as_get = calloc(n, 1)))
				return kvs_error_set(KVS_ENOMEM, "out of memory");
			as_get[i] = 1;
			ops[i].kind = KVS_OP_GET;
		}
		rc = s->batch(s->be, ops, n);
		for (size_t i = 0; i < n && as_get; i++) {
			if (as_get[i]) {
				ops[i].kind = KVS_OP_HEAD;
				drop_data(ops[i].out);
			}
		}
		free(as_get);
		if (rc < 0) {
			for (size_t i = 0; i < n; i++) {
				kvs_object_free(ops[i].out);
				ops[i].out = NULL;
			}
			return rc;
		}
		/* a backend that left a failure without detail: say at least what */
		for (size_t i = 0; i < n; i++)
			if (ops[i].result < 0 && !ops[i].detail[0])
				snprintf(ops[i].detail, sizeof(ops[i].detail), "%s", kvs_strerror(ops[i].result));
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (ops[i].kind == KVS_OP_GET) {
			kvs_op_result(&ops[i], s->be->ops->get(s->be, &ops[i].out, ops[i].name));
		} else if (ops[i].kind == KVS_OP_HEAD && s->head) {
			kvs_op_result(&ops[i], s->head(s->be, &ops[i].out, ops[i].name));
		} else if (ops[i].kind == KVS_OP_HEAD) {
			kvs_op_result(&ops[i], s->be->ops->get(s->be, &ops[i].out, ops[i].name));
			drop_data(ops[i].out);
		} else if (ops[i].kind == KVS_OP_CREATE) {
			kvs_op_result(&ops[i], s->be->ops->create(s->be, NULL, ops[i].in));
		} else {
			kvs_op_result(&ops[i], kvs_error_set(KVS_EINVAL, "batch: unknown operation kind %d",
			                                     (int)ops[i].kind));
		}
	}
	return 0;
}

int kvs__store_set_map_layout(kvs_store *s, uint32_t run_target, uint32_t inline_max)
{
	if (run_target && (run_target < 256 || run_target > 512u * 1024u))
		return kvs_error_set(KVS_EINVAL, "map run target %u out of range", run_target);
	if (inline_max > 512u * 1024u)
		return kvs_error_set(KVS_EINVAL, "map inline budget %u out of range", inline_max);
	if (run_target)
		s->map_run_target = run_target;
	if (inline_max)
		s->map_inline_max = inline_max;
	return 0;
}
