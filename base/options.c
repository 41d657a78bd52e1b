/*
 * options.c — the size of every public option struct at every version, and
 * the one copy every entry point makes of the caller's struct (options.h).
 *
 * A version's size is the end of its last field, not sizeof: the next
 * version's first field may sit past the old struct's tail padding (a
 * uint64_t after three unsigned ints starts at 16, the old struct is 12
 * bytes), so "offsetof the first new field" could read past a caller's
 * struct. The end of the last field never can.
 */
#include <stdint.h>
#include <string.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "kvsplit/kube.h"
#include "base/options.h"

#define END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* Bumped a _VERSION? Add that version's size below, then update these. */
_Static_assert(KVS_OPTIONS_VERSION == 3, "kvs__opt_store: add the new version's size");
_Static_assert(KVS_PUT_OPTIONS_VERSION == 1, "kvs__opt_put: add the new version's size");
_Static_assert(KVS_GET_OPTIONS_VERSION == 3, "kvs__opt_get: add the new version's size");
_Static_assert(KVS_DELETE_OPTIONS_VERSION == 1, "kvs__opt_delete: add the new version's size");
_Static_assert(KVS_STAT_OPTIONS_VERSION == 1, "kvs__opt_stat: add the new version's size");
_Static_assert(KVS_LIST_OPTIONS_VERSION == 1, "kvs__opt_list: add the new version's size");
_Static_assert(KVS_WATCH_OPTIONS_VERSION == 2, "kvs__opt_watch: add the new version's size");
_Static_assert(KVS_GC_OPTIONS_VERSION == 1, "kvs__opt_gc: add the new version's size");
_Static_assert(KVS_FSCK_OPTIONS_VERSION == 1, "kvs__opt_fsck: add the new version's size");
_Static_assert(KVS_KUBE_OPTIONS_VERSION == 2, "kvs__opt_kube: add the new version's size");
_Static_assert(KVS_MEM_OPTIONS_VERSION == 1, "kvs__opt_mem: add the new version's size");
_Static_assert(KVS_KUBE_GET_OPTIONS_VERSION == 1, "kvs__opt_kube_get: add the new version's size");
_Static_assert(KVS_KUBE_LIST_OPTIONS_VERSION == 1, "kvs__opt_kube_list: add the new version's size");
_Static_assert(KVS_KUBE_WATCH_OPTIONS_VERSION == 1,
               "kvs__opt_kube_watch: add the new version's size");
_Static_assert(KVS_KUBE_PATCH_OPTIONS_VERSION == 1,
               "kvs__opt_kube_patch: add the new version's size");
_Static_assert(KVS_KUBE_DELETE_OPTIONS_VERSION == 1,
               "kvs__opt_kube_delete: add the new version's size");
_Static_assert(KVS_MAP_WRITE_OPTIONS_VERSION == 1, "kvs__opt_map_write: add the new version's size");
_Static_assert(KVS_MAP_READ_OPTIONS_VERSION == 1, "kvs__opt_map_read: add the new version's size");
_Static_assert(KVS_HISTORY_OPTIONS_VERSION == 1, "kvs__opt_history: add the new version's size");
_Static_assert(KVS_ROLLBACK_OPTIONS_VERSION == 1, "kvs__opt_rollback: add the new version's size");
_Static_assert(KVS_MAP_ITER_OPTIONS_VERSION == 1, "kvs__opt_map_iter: add the new version's size");
_Static_assert(KVS_MAP_STAT_OPTIONS_VERSION == 1, "kvs__opt_map_stat: add the new version's size");

const kvs__optdesc kvs__opt_map_write = {
	"kvs_map_write_options", "KVS_MAP_WRITE_OPTIONS_INIT", KVS_MAP_WRITE_OPTIONS_VERSION,
	sizeof(kvs_map_write_options), { END(kvs_map_write_options, stats) }
};
const kvs__optdesc kvs__opt_map_read = {
	"kvs_map_read_options", "KVS_MAP_READ_OPTIONS_INIT", KVS_MAP_READ_OPTIONS_VERSION,
	sizeof(kvs_map_read_options), { END(kvs_map_read_options, stats) }
};
const kvs__optdesc kvs__opt_map_iter = {
	"kvs_map_iter_options", "KVS_MAP_ITER_OPTIONS_INIT", KVS_MAP_ITER_OPTIONS_VERSION,
	sizeof(kvs_map_iter_options), { END(kvs_map_iter_options, stats) }
};
const kvs__optdesc kvs__opt_map_stat = {
	"kvs_map_stat_options", "KVS_MAP_STAT_OPTIONS_INIT", KVS_MAP_STAT_OPTIONS_VERSION,
	sizeof(kvs_map_stat_options), { END(kvs_map_stat_options, version) }
};
const kvs__optdesc kvs__opt_store = {
	"kvs_options", "KVS_OPTIONS_INIT", KVS_OPTIONS_VERSION, sizeof(kvs_options),
	{ END(kvs_options, touch_window_s), END(kvs_options, workers), END(kvs_options, history) }
};
const kvs__optdesc kvs__opt_put = {
	"kvs_put_options", "KVS_PUT_OPTIONS_INIT", KVS_PUT_OPTIONS_VERSION, sizeof(kvs_put_options),
	{ END(kvs_put_options, progress_ctx) }
};
const kvs__optdesc kvs__opt_get = {
	"kvs_get_options", "KVS_GET_OPTIONS_INIT", KVS_GET_OPTIONS_VERSION, sizeof(kvs_get_options),
	{ END(kvs_get_options, progress_ctx), END(kvs_get_options, max_bytes),
	  END(kvs_get_options, generation) }
};
const kvs__optdesc kvs__opt_history = {
	"kvs_history_options", "KVS_HISTORY_OPTIONS_INIT", KVS_HISTORY_OPTIONS_VERSION,
	sizeof(kvs_history_options), { END(kvs_history_options, version) }
};
const kvs__optdesc kvs__opt_rollback = {
	"kvs_rollback_options", "KVS_ROLLBACK_OPTIONS_INIT", KVS_ROLLBACK_OPTIONS_VERSION,
	sizeof(kvs_rollback_options), { END(kvs_rollback_options, stats) }
};
const kvs__optdesc kvs__opt_delete = {
	"kvs_delete_options", "KVS_DELETE_OPTIONS_INIT", KVS_DELETE_OPTIONS_VERSION,
	sizeof(kvs_delete_options), { END(kvs_delete_options, expect_version) }
};
const kvs__optdesc kvs__opt_stat = {
	"kvs_stat_options", "KVS_STAT_OPTIONS_INIT", KVS_STAT_OPTIONS_VERSION,
	sizeof(kvs_stat_options), { END(kvs_stat_options, version) }
};
const kvs__optdesc kvs__opt_list = {
	"kvs_list_options", "KVS_LIST_OPTIONS_INIT", KVS_LIST_OPTIONS_VERSION,
	sizeof(kvs_list_options), { END(kvs_list_options, token) }
};
const kvs__optdesc kvs__opt_watch = {
	"kvs_watch_options", "KVS_WATCH_OPTIONS_INIT", KVS_WATCH_OPTIONS_VERSION,
	sizeof(kvs_watch_options), { END(kvs_watch_options, since), END(kvs_watch_options, max_bytes) }
};
const kvs__optdesc kvs__opt_gc = {
	"kvs_gc_options", "KVS_GC_OPTIONS_INIT", KVS_GC_OPTIONS_VERSION, sizeof(kvs_gc_options),
	{ END(kvs_gc_options, ctx) }
};
const kvs__optdesc kvs__opt_fsck = {
	"kvs_fsck_options", "KVS_FSCK_OPTIONS_INIT", KVS_FSCK_OPTIONS_VERSION,
	sizeof(kvs_fsck_options), { END(kvs_fsck_options, ctx) }
};
const kvs__optdesc kvs__opt_kube = {
	"kvs_kube_options", "KVS_KUBE_OPTIONS_INIT", KVS_KUBE_OPTIONS_VERSION,
	sizeof(kvs_kube_options), { END(kvs_kube_options, user_agent), END(kvs_kube_options, json_only) }
};
const kvs__optdesc kvs__opt_mem = {
	"kvs_mem_options", "KVS_MEM_OPTIONS_INIT", KVS_MEM_OPTIONS_VERSION,
	sizeof(kvs_mem_options), { END(kvs_mem_options, list_page_default) }
};
const kvs__optdesc kvs__opt_kube_get = {
	"kvs_kube_get_options", "KVS_KUBE_GET_OPTIONS_INIT", KVS_KUBE_GET_OPTIONS_VERSION,
	sizeof(kvs_kube_get_options), { END(kvs_kube_get_options, metadata_only) }
};
const kvs__optdesc kvs__opt_kube_list = {
	"kvs_kube_list_options", "KVS_KUBE_LIST_OPTIONS_INIT", KVS_KUBE_LIST_OPTIONS_VERSION,
	sizeof(kvs_kube_list_options), { END(kvs_kube_list_options, metadata_only) }
};
const kvs__optdesc kvs__opt_kube_watch = {
	"kvs_kube_watch_options", "KVS_KUBE_WATCH_OPTIONS_INIT", KVS_KUBE_WATCH_OPTIONS_VERSION,
	sizeof(kvs_kube_watch_options), { END(kvs_kube_watch_options, metadata_only) }
};
const kvs__optdesc kvs__opt_kube_patch = {
	"kvs_kube_patch_options", "KVS_KUBE_PATCH_OPTIONS_INIT", KVS_KUBE_PATCH_OPTIONS_VERSION,
	sizeof(kvs_kube_patch_options), { END(kvs_kube_patch_options, subresource) }
};
const kvs__optdesc kvs__opt_kube_delete = {
	"kvs_kube_delete_options", "KVS_KUBE_DELETE_OPTIONS_INIT", KVS_KUBE_DELETE_OPTIONS_VERSION,
	sizeof(kvs_kube_delete_options), { END(kvs_kube_delete_options, grace_period_s) }
};

int kvs__version_check(const char *what, const char *init, unsigned int version,
                       unsigned int current)
{
	if (version >= 1 && version <= current)
		return 0;
	if (version == 0)
		return kvs_error_set(KVS_EINVAL, "%s: version 0 is not a version (this library knows "
		                     "versions 1 to %u)%s%s", what, current,
		                     init ? "; initialize it with " : "", init ? init : "");
	return kvs_error_set(KVS_EINVAL, "%s: version %u is newer than this library knows "
	                     "(versions 1 to %u, libkvsplit %d.%d.%d); build against the headers "
	                     "of the library you run", what, version, current, KVS_VERSION_MAJOR,
	                     KVS_VERSION_MINOR, KVS_VERSION_PATCH);
}

size_t kvs__opts_size(const kvs__optdesc *d, unsigned int version)
{
	if (version < 1 || version > d->current || version > KVS__OPT_MAX_VERSIONS)
		return 0;
	return d->sizes[version - 1];
}

int kvs__opts_copy(void *dst, size_t dst_size, const void *src, size_t src_type_size,
                   const kvs__optdesc *d)
{
	unsigned int v;
	size_t n;
	int rc;

	if (dst_size != d->size || src_type_size != d->size || d->current > KVS__OPT_MAX_VERSIONS ||
	    d->sizes[d->current - 1] > d->size)
		return kvs_error_set(KVS_ERROR, "internal: %s copied with the wrong descriptor", d->name);
	if (!src)
		return 0;
	/* The version field is the one thing every version has. */
	memcpy(&v, src, sizeof(v));
	if ((rc = kvs__version_check(d->name, d->init, v, d->current)) < 0)
		return rc;
	n = d->sizes[v - 1];
	memcpy(dst, src, n);
	v = d->current;
	memcpy(dst, &v, sizeof(v));
	return 0;
}
