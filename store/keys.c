/*
 * keys.c — delete, stat and list: the operations that touch only indexes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "listing.h"

int kvs_delete(kvs_store *s, const char *key, const char *expect_version)
{
	char name[KVS__NAME_BUF];
	size_t klen;
	int rc;

	if (!s)
		return kvs_error_set(KVS_EINVAL, "store is NULL");
	if ((rc = kvs__key_to_index(name, s, key, &klen)) < 0)
		return rc;
	if (strncmp(name + 5 + strlen(s->name), "h-", 2) == 0 && !expect_version) {
		/* A hashed name: make sure it is this key's index before deleting,
		 * and delete exactly the version we checked. */
		kvs_object *idx = NULL;
		kvs__manifest m;
		char rv[KVS_VER_MAX];
		rc = s->be->ops->get(s->be, &idx, name);
		if (rc == KVS_ENOTFOUND)
			return kvs_error_set(KVS_ENOTFOUND, "key \"%s\" not found", key);
		if (rc < 0)
			return rc;
		rc = kvs__index_decode(&m, s, idx, key, klen);
		snprintf(rv, sizeof(rv), "%s", idx->resource_version);
		kvs__manifest_clear(&m);
		kvs_object_free(idx);
		if (rc < 0)
			return rc;
		rc = s->be->ops->remove(s->be, name, rv, NULL);
		if (rc == KVS_ECONFLICT)
			return kvs_error_set(KVS_ECONFLICT, "key \"%s\" changed while being deleted", key);
	} else {
		rc = s->be->ops->remove(s->be, name, expect_version && *expect_version ? expect_version : NULL,
		                        NULL);
		if (rc == KVS_ECONFLICT)
			return kvs_error_set(KVS_ECONFLICT, "key \"%s\" is not at version %s", key,
			                     expect_version);
	}
	if (rc == KVS_ENOTFOUND)
		return kvs_error_set(KVS_ENOTFOUND, "key \"%s\" not found", key);
	return rc;
}

static int cmp_chunk(const void *a, const void *b)
{
	return memcmp(((const kvs__chunk_ref *)a)->addr, ((const kvs__chunk_ref *)b)->addr, 16);
}

int kvs_stat_key(kvs_stat *out, kvs_store *s, const char *key)
{
	char name[KVS__NAME_BUF];
	kvs_object *idx = NULL;
	kvs__manifest m;
	size_t klen;
	int rc;

	if (!out || !s)
		return kvs_error_set(KVS_EINVAL, "kvs_stat_key: NULL argument");
	memset(out, 0, sizeof(*out));
	if ((rc = kvs__key_to_index(name, s, key, &klen)) < 0)
		return rc;
	rc = s->be->ops->get(s->be, &idx, name);
	if (rc == KVS_ENOTFOUND)
		return kvs_error_set(KVS_ENOTFOUND, "key \"%s\" not found", key);
	if (rc < 0)
		return rc;
	if ((rc = kvs__index_decode(&m, s, idx, key, klen)) == 0) {
		const kvs_blob *b = kvs_object_data(idx, KVS__INDEX_DATA_KEY);
		snprintf(out->version.str, sizeof(out->version.str), "%s", idx->resource_version);
		out->length = m.length;
		out->generation = m.generation;
		out->index_bytes = (uint32_t)b->len;
		memcpy(out->hash, m.hash, 16);
		if (m.is_inline) {
			out->is_inline = 1;
			out->stored_bytes = m.inline_len;
		} else if (m.kind == KVS__MF_INDIRECT) {
			out->chunks = m.v_chunks;
			out->segments = m.v_segs;
			out->stored_bytes = m.v_stored;
			out->segment_bytes = m.v_segbytes;
		} else {
			/* distinct chunks: a chunk listed twice is stored once */
			out->chunks = m.nchunks;
			out->segments = m.nsegs;
			for (uint32_t i = 0; i < m.nsegs; i++)
				out->segment_bytes += m.segs[i].bytes;
			qsort(m.chunks, m.nchunks, sizeof(*m.chunks), cmp_chunk);
			for (uint32_t i = 0; i < m.nchunks; i++)
				if (i == 0 || memcmp(m.chunks[i - 1].addr, m.chunks[i].addr, 16) != 0)
					out->stored_bytes += m.chunks[i].stored_len;
		}
	}
	kvs__manifest_clear(&m);
	kvs_object_free(idx);
	return rc;
}

void kvs_list_free(kvs_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		free(l->entries[i].key);
	free(l->entries);
	free(l->next);
	free(l);
}

int kvs_list_keys(kvs_list **out, kvs_store *s, const char *prefix, size_t limit,
                  const char *token)
{
	kvs__listing it;
	const kvs_object *o;
	kvs_list *l;
	size_t plen = prefix ? strlen(prefix) : 0, cap = 16;
	int rc;

	if (!out || !s)
		return kvs_error_set(KVS_EINVAL, "kvs_list_keys: NULL argument");
	*out = NULL;
	if (limit == 0)
		limit = 500;
	if (limit > 10000)
		limit = 10000;
	if (!(l = calloc(1, sizeof(*l))) || !(l->entries = calloc(cap, sizeof(*l->entries)))) {
		free(l);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	kvs__listing_open(&it, s, KVS__ROLE_INDEX, limit, KVS__LISTING_ONE_PAGE, token);
	while ((rc = kvs__listing_next(&it, &o)) > 0) {
		kvs__manifest m;
		kvs_entry *e;
		int drc;
		if (l->count == cap) {
			size_t nc = cap * 2;
			kvs_entry *ne = realloc(l->entries, nc * sizeof(*ne));
			if (!ne) {
				rc = kvs_error_set(KVS_ENOMEM, "out of memory");
				break;
			}
			l->entries = ne;
			cap = nc;
		}
		e = &l->entries[l->count];
		/* An index that does not decode is skipped here; fsck reports it.
		 * Out of memory is no property of the index: the listing fails. */
		drc = kvs__index_decode(&m, s, o, NULL, 0);
		if (drc == KVS_ENOMEM) {
			kvs__manifest_clear(&m);
			rc = drc;
			break;
		}
		if (drc < 0 || (plen && (m.key_len < plen || memcmp(m.key, prefix, plen) != 0))) {
			kvs__manifest_clear(&m);
			continue;
		}
		e->key = m.key;
		m.key = NULL;
		e->length = m.length;
		snprintf(e->version.str, sizeof(e->version.str), "%s", o->resource_version);
		l->count++;
		kvs__manifest_clear(&m);
	}
	if (rc == 0 && kvs__listing_token(&it) && !(l->next = strdup(kvs__listing_token(&it))))
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
	kvs__listing_close(&it);
	if (rc < 0) {
		kvs_list_free(l);
		return rc;
	}
	*out = l;
	return 0;
}
