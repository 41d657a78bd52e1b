/*
 * listing.c — a store's objects of one role, page by page (listing.h).
 */
#include <stdlib.h>
#include <string.h>

#include "listing.h"

void kvs__listing_open(kvs__listing *it, kvs_store *s, const char *role, size_t page,
                       unsigned int flags, const char *token)
{
	memset(it, 0, sizeof(*it));
	it->s = s;
	it->role = role;
	it->page = page;
	it->flags = flags;
	kvs__selector(it->sel, s->name, role);
	/* A token that cannot be copied is remembered as a failure of the
	 * first page (next() reports it): open itself never fails. */
	if (token && *token && !(it->token = strdup(token)))
		it->done = -1;
}

static int fetch(kvs__listing *it)
{
	kvs_object_list *l = NULL;
	unsigned int bf = it->flags & KVS_LIST_METADATA_ONLY;
	int rc;

	rc = it->s->be->ops->list(it->s->be, &l, it->sel, it->page, it->token, bf);
	if (rc < 0)
		return rc;
	free(it->token);
	it->token = NULL;
	kvs_object_list_free(it->cur);
	it->cur = l;
	it->i = 0;
	if (l->next && *l->next && !(it->token = strdup(l->next)))
		return kvs_error_set(KVS_ENOMEM, "out of memory listing %s objects", it->role);
	if (it->pages++ == 0 && !it->revision &&
	    !(it->revision = strdup(l->resource_version ? l->resource_version : "")))
		return kvs_error_set(KVS_ENOMEM, "out of memory listing %s objects", it->role);
	if (!it->token)
		it->done = 1;
	return 0;
}

int kvs__listing_next(kvs__listing *it, const kvs_object **out)
{
	int rc;

	*out = NULL;
	if (it->done < 0)
		return kvs_error_set(KVS_ENOMEM, "out of memory listing %s objects", it->role);
	for (;;) {
		if (it->cur && it->i < it->cur->count) {
			*out = it->cur->items[it->i++];
			return 1;
		}
		if (it->done || (it->pages && (it->flags & KVS__LISTING_ONE_PAGE)))
			return 0;
		if ((rc = fetch(it)) < 0) {
			kvs_object_list_free(it->cur);
			it->cur = NULL;
			it->done = 1;
			return rc;
		}
	}
}

const char *kvs__listing_token(const kvs__listing *it)
{
	return it->token;
}

const char *kvs__listing_revision(const kvs__listing *it)
{
	return it->revision ? it->revision : "";
}

void kvs__listing_close(kvs__listing *it)
{
	if (!it)
		return;
	kvs_object_list_free(it->cur);
	free(it->token);
	free(it->revision);
	memset(it, 0, sizeof(*it));
}
