/*
 * keys.c — delete, stat and list: the operations that touch only indexes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "listing.h"
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

/*
 * The key an index name stands for, when the name alone tells: the inverse
 * of the escaped form of kvs__index_name. Only a name that the key maps back
 * to exactly counts (no non-canonical escape like "-61" for "a", no key that
 * fails kvs__key_check), so two names never give the same key. Returns the
 * key's length, 0 if the name is not an escaped index name of this store.
 */
static size_t key_of_name(char out[KVS__NAME_BUF], const kvs_store *s, const char *name)
{
	char back[KVS__NAME_BUF];
	size_t sl = strlen(s->name), n = 0;
	const char *p;

	if (strncmp(name, "kvs.", 4) != 0 || strncmp(name + 4, s->name, sl) != 0 ||
	    strncmp(name + 4 + sl, ".i-", 3) != 0)
		return 0;
	for (p = name + 7 + sl; *p && n + 1 < KVS__NAME_BUF;) {
		uint8_t b;
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) {
			out[n++] = *p++;
		} else if (*p == '-' && p[1] && p[2] && kvs__unhex(&b, p + 1, 1) == 0) {
			out[n++] = (char)b;
			p += 3;
		} else {
			return 0;
		}
	}
	out[n] = '\0';
	if (*p || n == 0 || kvs__key_check(out, n) < 0)
		return 0;
	kvs__index_name(back, s->name, out, n);
	return strcmp(back, name) == 0 ? n : 0;
}

/* A decimal length annotation as kvsplit writes it, or -1. */
static int parse_length(uint64_t *out, const char *a)
{
	uint64_t v = 0;

	if (!a || !*a || strlen(a) > 13)
		return -1;
	for (; *a; a++) {
		if (*a < '0' || *a > '9')
			return -1;
		v = v * 10 + (uint64_t)(*a - '0');
	}
	if (v > KVS__MF_MAX_LENGTH)
		return -1;
	*out = v;
	return 0;
}

/*
 * Describe one listed index from its metadata alone: the key from its name
 * (or, for a hashed name, from the key annotation when that key maps to
 * exactly this name), the length from the length annotation. Returns
 * META_OK with *e filled, META_READ when the metadata does not tell (the
 * caller reads the index), META_SKIP for a name that no key maps to (an
 * "i-" name that is not the canonical escape of a valid key, or no index
 * name of this store at all), or KVS_ENOMEM.
 */
enum { META_READ = 0, META_OK = 1, META_SKIP = 2 };

static int entry_from_meta(kvs_entry *e, const kvs_store *s, const kvs_object *o)
{
	char key[KVS__NAME_BUF], back[KVS__NAME_BUF], hashed[KVS__NAME_BUF];
	const char *k = key;
	size_t klen = key_of_name(key, s, o->name), hl;
	uint64_t len;

	if (klen == 0) {
		/* Only a hashed name can still be some key's index. */
		hl = (size_t)snprintf(hashed, sizeof(hashed), "kvs.%s.h-", s->name);
		if (strncmp(o->name, hashed, hl) != 0 || strlen(o->name + hl) != KVS__ADDR_HEX)
			return META_SKIP;
		k = kvs_object_annotation(o, KVS__ANN_KEY);
		if (!k)
			return META_READ;
		klen = strnlen(k, KVS_KEY_MAX + 1);
		if (kvs__key_check(k, klen) < 0)
			return META_READ;
		kvs__index_name(back, s->name, k, klen);
		if (strcmp(back, o->name) != 0)
			return META_READ;
	}
	if (parse_length(&len, kvs_object_annotation(o, KVS__ANN_LENGTH)) < 0)
		return META_READ;
	if (!(e->key = strndup(k, klen)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	e->length = len;
	snprintf(e->version.str, sizeof(e->version.str), "%s", o->resource_version);
	return META_OK;
}

/*
 * Describe one listed index by reading it (one GET, a single object under
 * the backend's object cap): for a hashed name whose key annotation does not
 * match, or a length annotation that is missing or unreadable. Returns
 * META_OK with *e filled, META_SKIP to skip the index (gone since the
 * listing, or its manifest does not decode or holds a key of another name:
 * fsck reports those), or an error of the backend.
 */
static int entry_from_index(kvs_entry *e, kvs_store *s, const char *name)
{
	char back[KVS__NAME_BUF];
	kvs_object *idx = NULL;
	kvs__manifest m;
	int rc;

	rc = s->be->ops->get(s->be, &idx, name);
	if (rc == KVS_ENOTFOUND)
		return META_SKIP;
	if (rc < 0)
		return rc;
	rc = kvs__index_decode(&m, s, idx, NULL, 0);
	if (rc == 0) {
		kvs__index_name(back, s->name, m.key, m.key_len);
		if (strcmp(back, name) == 0) {
			e->key = m.key;
			m.key = NULL;
			e->length = m.length;
			snprintf(e->version.str, sizeof(e->version.str), "%s", idx->resource_version);
			rc = META_OK;
		} else {
			rc = META_SKIP;
		}
	} else if (rc != KVS_ENOMEM) {
		rc = META_SKIP;
	}
	kvs__manifest_clear(&m);
	kvs_object_free(idx);
	return rc;
}

/*
 * A listing is metadata only (docs/design.md "Listing"): manifests can be
 * near 1 MiB each, so a page of whole indexes could exceed any response cap.
 * It trusts the object name for the key (the escaping is injective) and the
 * length annotation for the length, which is only ever displayed; a get
 * trusts nothing but the manifest.
 */
int kvs_list_keys(kvs_list **out, kvs_store *s, const kvs_list_options *opts)
{
	kvs_list_options lo = KVS_LIST_OPTIONS_INIT;
	kvs__listing it;
	const kvs_object *o;
	kvs_list *l;
	const char *prefix, *token;
	size_t plen, limit, cap = 16;
	int rc;

	if (!out || !s)
		return kvs_error_set(KVS_EINVAL, "kvs_list_keys: NULL argument");
	*out = NULL;
	if ((rc = KVS__OPTS(&lo, opts, list)) < 0)
		return rc;
	prefix = lo.prefix;
	token = lo.token;
	limit = lo.limit;
	plen = prefix ? strlen(prefix) : 0;
	if (limit == 0)
		limit = 500;
	if (limit > 10000)
		limit = 10000;
	if (!(l = calloc(1, sizeof(*l))) || !(l->entries = calloc(cap, sizeof(*l->entries)))) {
		free(l);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	kvs__listing_open(&it, s, KVS__ROLE_INDEX, limit,
	                  KVS_LIST_METADATA_ONLY | KVS__LISTING_ONE_PAGE, token);
	while ((rc = kvs__listing_next(&it, &o)) > 0) {
		kvs_entry *e;
		if (l->count == cap) {
			size_t nc = cap * 2;
			kvs_entry *ne = realloc(l->entries, nc * sizeof(*ne));
			if (!ne) {
				rc = kvs_error_set(KVS_ENOMEM, "out of memory");
				break;
			}
			memset(ne + cap, 0, (nc - cap) * sizeof(*ne));
			l->entries = ne;
			cap = nc;
		}
		e = &l->entries[l->count];
		rc = entry_from_meta(e, s, o);
		if (rc == META_READ)
			rc = entry_from_index(e, s, o->name);
		if (rc < 0)
			break;
		if (rc != META_OK)
			continue;
		if (plen && strncmp(e->key, prefix, plen) != 0) {
			free(e->key);
			e->key = NULL;
			continue;
		}
		l->count++;
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
