/*
 * segment.c — building segment objects and reading them back
 * (docs/format.md "Segment").
 */
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"

#include "names.h"
#include "segment.h"

static int cmp_entry(const void *a, const void *b)
{
	return memcmp(((const kvs__seg_entry *)a)->addr, ((const kvs__seg_entry *)b)->addr, 16);
}

static void canon_update(XXH3_state_t *st, const uint8_t addr[16], const uint8_t *blob, uint32_t len)
{
	uint8_t hdr[20];

	memcpy(hdr, addr, 16);
	hdr[16] = (uint8_t)(len >> 24);
	hdr[17] = (uint8_t)(len >> 16);
	hdr[18] = (uint8_t)(len >> 8);
	hdr[19] = (uint8_t)len;
	XXH3_128bits_update(st, hdr, sizeof(hdr));
	XXH3_128bits_update(st, blob, len);
}

static void canon_final(uint8_t out[16], XXH3_state_t *st)
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
	memcpy(out, c.digest, 16);
}

void kvs__seg_address(uint8_t out[16], kvs__seg_entry *e, size_t n)
{
	XXH3_state_t st;

	if (n > 1)
		qsort(e, n, sizeof(*e), cmp_entry);
	XXH3_128bits_reset(&st);
	for (size_t i = 0; i < n; i++)
		canon_update(&st, e[i].addr, e[i].blob, e[i].len);
	canon_final(out, &st);
}

int kvs__seg_build(kvs_object **out, uint8_t addr[16], const char *store,
                   kvs__seg_entry *e, size_t n)
{
	char name[KVS__NAME_BUF], key[KVS__ADDR_HEX + 1];
	kvs_object *o;
	int rc;
	size_t i = 0;

	*out = NULL;
	kvs__seg_address(addr, e, n);
	kvs__segment_name(name, store, addr);
	if (!(o = kvs_object_new(name))) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto fail;
	}
	o->immutable = 1;
	if ((rc = kvs__set_labels(o, store, KVS__ROLE_SEGMENT)) < 0)
		goto fail;
	for (; i < n; i++) {
		kvs__hex(key, e[i].addr, 16);
		rc = kvs_object_add_data_owned(o, key, e[i].blob, e[i].len);
		e[i].blob = NULL;   /* owned by o now, or freed on failure */
		if (rc < 0)
			goto fail;
	}
	*out = o;
	return 0;
fail:
	for (; i < n; i++) {
		free(e[i].blob);
		e[i].blob = NULL;
	}
	kvs_object_free(o);
	return rc;
}

static int cmp_blobp(const void *a, const void *b)
{
	return strcmp((*(const kvs_blob *const *)a)->key, (*(const kvs_blob *const *)b)->key);
}

static int is_hex32(const char *s)
{
	for (int i = 0; i < KVS__ADDR_HEX; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[KVS__ADDR_HEX] == '\0';
}

static int seg_open(kvs__segment **out, kvs_object *obj, const uint8_t addr[16],
                    uint64_t max_object_bytes, int hash)
{
	char name[KVS__ADDR_HEX + 1];
	kvs__segment *s;
	XXH3_state_t st;
	uint8_t a[16], h[16];
	uint64_t total = 0;

	*out = NULL;
	kvs__hex(name, addr, 16);
	if (!(s = calloc(1, sizeof(*s)))) {
		kvs_object_free(obj);
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	}
	s->obj = obj;
	s->refs = 1;
	memcpy(s->addr, addr, 16);
	s->n = obj->ndata;
	if (s->n > (1u << 20) || !(s->sorted = malloc((s->n ? s->n : 1) * sizeof(*s->sorted)))) {
		kvs__seg_unref(s);
		return kvs_error_set(KVS_ENOMEM, "segment %s: too many entries", name);
	}
	for (size_t i = 0; i < s->n; i++) {
		const kvs_blob *b = &obj->data[i];
		if (!b->key || !is_hex32(b->key) || b->len > UINT32_MAX ||
		    (max_object_bytes && b->len > max_object_bytes)) {
			kvs__seg_unref(s);
			return kvs_error_set(KVS_ECORRUPT, "segment %s: malformed entry %zu", name, i);
		}
		total += b->len;
		s->sorted[i] = b;
	}
	if (max_object_bytes && total > max_object_bytes) {
		kvs__seg_unref(s);
		return kvs_error_set(KVS_ECORRUPT, "segment %s: %llu bytes, over the object limit",
		                     name, (unsigned long long)total);
	}
	if (s->n > 1)
		qsort(s->sorted, s->n, sizeof(*s->sorted), cmp_blobp);
	XXH3_128bits_reset(&st);
	for (size_t i = 0; i < s->n; i++) {
		if (i && strcmp(s->sorted[i - 1]->key, s->sorted[i]->key) == 0) {
			kvs_error_set(KVS_ECORRUPT, "segment %s: duplicate entry %s", name,
			              s->sorted[i]->key);
			kvs__seg_unref(s);
			return KVS_ECORRUPT;
		}
		if (!hash)
			continue;
		kvs__unhex(a, s->sorted[i]->key, 16);
		canon_update(&st, a, s->sorted[i]->data, (uint32_t)s->sorted[i]->len);
	}
	if (hash) {
		canon_final(h, &st);
		s->verified = memcmp(h, addr, 16) == 0;
	}
	s->bytes = total;
	*out = s;
	return 0;
}

int kvs__seg_open(kvs__segment **out, kvs_object *obj, const uint8_t addr[16],
                  uint64_t max_object_bytes)
{
	return seg_open(out, obj, addr, max_object_bytes, 1);
}

int kvs__seg_open_unhashed(kvs__segment **out, kvs_object *obj, const uint8_t addr[16],
                           uint64_t max_object_bytes)
{
	return seg_open(out, obj, addr, max_object_bytes, 0);
}

const kvs_blob *kvs__seg_find(const kvs__segment *s, const uint8_t addr[16])
{
	char key[KVS__ADDR_HEX + 1];
	size_t lo = 0, hi = s->n;

	kvs__hex(key, addr, 16);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->sorted[mid]->key, key);
		if (c == 0)
			return s->sorted[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void kvs__seg_ref(kvs__segment *s)
{
	__atomic_fetch_add(&s->refs, 1, __ATOMIC_RELAXED);
}

void kvs__seg_unref(kvs__segment *s)
{
	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	kvs_object_free(s->obj);
	free(s->sorted);
	free(s);
}
