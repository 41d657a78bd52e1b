/*
 * keys.c — delete, stat and list: the operations that touch only indexes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "options.h"

int kvs_delete(kvs_store *s, const char *key, const kvs_delete_options *opts)
{
	kvs_delete_options o = KVS_DELETE_OPTIONS_INIT;
	const char *expect_version;
	char name[KVS__NAME_BUF];
	size_t klen;
	int rc;

	if ((rc = KVS__OPTS(&o, opts, delete)) < 0)
		return rc;
	expect_version = o.expect_version;
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

int kvs_stat_key(kvs_stat *out, kvs_store *s, const char *key, const kvs_stat_options *opts)
{
	kvs_stat_options o = KVS_STAT_OPTIONS_INIT;
	char name[KVS__NAME_BUF];
	kvs_object *idx = NULL;
	kvs__manifest m;
	size_t klen;
	int rc;

	if (!out || !s)
		return kvs_error_set(KVS_EINVAL, "kvs_stat_key: NULL argument");
	memset(out, 0, sizeof(*out));
	if ((rc = KVS__OPTS(&o, opts, stat)) < 0)
		return rc;
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

int kvs_list_keys(kvs_list **out, kvs_store *s, const kvs_list_options *opts)
{
	kvs_list_options o = KVS_LIST_OPTIONS_INIT;
	char sel[KVS__NAME_BUF];
	kvs_object_list *ol = NULL;
	kvs_list *l;
	const char *prefix, *token;
	size_t plen, limit;
	int rc;

	if (!out || !s)
		return kvs_error_set(KVS_EINVAL, "kvs_list_keys: NULL argument");
	*out = NULL;
	if ((rc = KVS__OPTS(&o, opts, list)) < 0)
		return rc;
	prefix = o.prefix;
	token = o.token;
	limit = o.limit;
	plen = prefix ? strlen(prefix) : 0;
	if (limit == 0)
		limit = 500;
	if (limit > 10000)
		limit = 10000;
	kvs__selector(sel, s->name, KVS__ROLE_INDEX);
	if ((rc = s->be->ops->list(s->be, &ol, sel, limit, token, 0)) < 0)
		return rc;
	if (!(l = calloc(1, sizeof(*l))) ||
	    !(l->entries = calloc(ol->count ? ol->count : 1, sizeof(*l->entries)))) {
		free(l);
		kvs_object_list_free(ol);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < ol->count; i++) {
		kvs__manifest m;
		kvs_entry *e = &l->entries[l->count];
		/* An index that does not decode is skipped here; fsck reports it.
		 * Out of memory is no property of the index: the listing fails. */
		rc = kvs__index_decode(&m, s, ol->items[i], NULL, 0);
		if (rc == KVS_ENOMEM) {
			kvs__manifest_clear(&m);
			kvs_object_list_free(ol);
			kvs_list_free(l);
			return rc;
		}
		if (rc < 0 || (plen && (m.key_len < plen || memcmp(m.key, prefix, plen) != 0))) {
			kvs__manifest_clear(&m);
			continue;
		}
		e->key = m.key;
		m.key = NULL;
		e->length = m.length;
		snprintf(e->version.str, sizeof(e->version.str), "%s", ol->items[i]->resource_version);
		l->count++;
		kvs__manifest_clear(&m);
	}
	if (ol->next && *ol->next && !(l->next = strdup(ol->next))) {
		kvs_object_list_free(ol);
		kvs_list_free(l);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	kvs_object_list_free(ol);
	*out = l;
	return 0;
}
