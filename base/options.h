/*
 * options.h — reading the caller's option structs, whatever their version.
 *
 * Every public option struct starts with `unsigned int version` and only
 * ever grows at the end. A caller built against an older header passes a
 * smaller struct, so the library must never read past the fields of the
 * version the caller declares. Each entry point therefore starts with
 *
 *     kvs_get_options o = KVS_GET_OPTIONS_INIT;      (defaults, full size)
 *     if ((rc = KVS__OPTS(&o, opts, get)) < 0)       (NULL leaves o as is)
 *             return rc;
 *
 * and uses only `o` afterwards: the bytes of the caller's version are
 * copied over the defaults, later fields keep their defaults, and a version
 * of 0 or newer than the library's is KVS_EINVAL naming the struct and the
 * versions. Adding a field: append it to the struct, bump its _VERSION,
 * extend its _INIT, and add the new version's size to options.c (a static
 * assertion there fails the build until you do).
 */
#ifndef KVS_OPTIONS_H
#define KVS_OPTIONS_H

#include <stddef.h>

#define KVS__OPT_MAX_VERSIONS 8

/* What the library knows about one option struct. */
typedef struct kvs__optdesc {
	const char *name;          /* "kvs_get_options" */
	const char *init;          /* "KVS_GET_OPTIONS_INIT" */
	unsigned int current;      /* the library's version */
	size_t size;               /* sizeof the library's (current) struct */
	/* sizes[v - 1]: bytes a version-v struct holds: the end of its last
	 * field (never more than sizeof that version's struct) */
	size_t sizes[KVS__OPT_MAX_VERSIONS];
} kvs__optdesc;

extern const kvs__optdesc kvs__opt_store, kvs__opt_put, kvs__opt_get, kvs__opt_delete,
	kvs__opt_stat, kvs__opt_list, kvs__opt_watch, kvs__opt_gc, kvs__opt_fsck, kvs__opt_kube,
	kvs__opt_mem, kvs__opt_kube_get, kvs__opt_kube_list, kvs__opt_kube_watch,
	kvs__opt_kube_patch, kvs__opt_kube_delete, kvs__opt_map_write, kvs__opt_map_read,
	kvs__opt_map_iter, kvs__opt_map_stat, kvs__opt_history, kvs__opt_rollback;

/*
 * Copy the caller's struct `src` (may be NULL: nothing to do) over `dst`,
 * which holds the defaults at full size. dst->version becomes the current
 * version. KVS_EINVAL for an unknown version; KVS_ERROR if the sizes say the
 * wrong descriptor was passed (a library bug).
 */
int kvs__opts_copy(void *dst, size_t dst_size, const void *src, size_t src_type_size,
                   const kvs__optdesc *d);

#define KVS__OPTS(dst, src, which) \
	kvs__opts_copy((dst), sizeof(*(dst)), (src), sizeof(*(src)), &kvs__opt_##which)

/* Bytes the library reads of a version-`version` struct; 0 if unknown. */
size_t kvs__opts_size(const kvs__optdesc *d, unsigned int version);

/*
 * Check a version field: 1..current is 0, otherwise KVS_EINVAL with a detail
 * naming `what` ("kvs_get_options", "kvs_backend_ops of backend \"x\"") and
 * the versions, and `init` (may be NULL) as the way to set it.
 */
int kvs__version_check(const char *what, const char *init, unsigned int version,
                       unsigned int current);

#endif
