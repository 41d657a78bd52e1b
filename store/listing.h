/*
 * listing.h — the one paged iterator over a store's objects of one role
 * (its indexes, or its segments): label selector, page size, metadata-only
 * or full objects, continue tokens, and the revision the list was served
 * at. gc, fsck and kvs_list_keys walk the store through it; the only other
 * caller of the backend's list
 * is the reflector source of key watches (reflect.c), which must list from
 * the revision it then watches from.
 *
 *	kvs__listing it;
 *	const kvs_object *o;
 *	kvs__listing_open(&it, s, KVS__ROLE_INDEX, 40, 0, NULL);
 *	while ((rc = kvs__listing_next(&it, &o)) > 0)
 *		... o is valid until the next call ...
 *	kvs__listing_close(&it);
 *
 * Pages may be served from different states of the store (a real API
 * server serves every page of one list from one snapshot only while the
 * continue token is fresh); callers that need per-key order arguments (gc)
 * get exactly the guarantee of one backend list: each object is read at or
 * after the moment its page was requested.
 */
#ifndef KVS_LISTING_H
#define KVS_LISTING_H

#include <stddef.h>

#include "internal.h"

/* Stop at the end of the first page (kvs_list_keys pages for its caller). */
#define KVS__LISTING_ONE_PAGE 0x100u

typedef struct kvs__listing {
	kvs_store *s;
	char sel[KVS__NAME_BUF];
	size_t page;            /* objects per page (0: the backend's default) */
	unsigned int flags;     /* KVS_LIST_METADATA_ONLY, KVS__LISTING_ONE_PAGE */
	char *token;            /* continue token of the next page; NULL before the first */
	kvs_object_list *cur;   /* the page being walked */
	size_t i;               /* next item of cur */
	char *revision;         /* revision of the first page ("" when the backend says none) */
	int pages;              /* pages fetched */
	int done;               /* no page after cur */
	const char *role;
} kvs__listing;

/*
 * Start a listing of `role`'s objects (KVS__ROLE_INDEX / KVS__ROLE_SEGMENT)
 * of store `s`, `page` per request, from `token` (NULL: from the start).
 * Makes no request yet and cannot fail; close it in any case.
 */
void kvs__listing_open(kvs__listing *it, kvs_store *s, const char *role, size_t page,
                       unsigned int flags, const char *token);

/*
 * The next object: 1 and *out (borrowed: valid until the next call or the
 * close), 0 at the end, or a negative KVS_E code (the backend's, or
 * KVS_ENOMEM). After an error the listing stays at the end.
 */
int kvs__listing_next(kvs__listing *it, const kvs_object **out);

/* After the end of a KVS__LISTING_ONE_PAGE listing: the continue token of
 * the page after it, or NULL when there is none. Borrowed. */
const char *kvs__listing_token(const kvs__listing *it);

/* The revision the first page was served at ("" before it, or if none). */
const char *kvs__listing_revision(const kvs__listing *it);

void kvs__listing_close(kvs__listing *it);

#endif
