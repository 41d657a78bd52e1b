/*
 * names.c — store names, key validation, object names and labels
 * (docs/design.md "Objects").
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/hash.h"

#include "names.h"

static int is_lower_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int kvs__store_name_check(const char *name)
{
	size_t n;

	if (!name)
		return kvs_error_set(KVS_EINVAL, "store name is NULL");
	n = strnlen(name, KVS__STORE_NAME_MAX + 1);
	if (n == 0 || n > KVS__STORE_NAME_MAX)
		return kvs_error_set(KVS_EINVAL, "store name must be 1..%d characters",
		                     KVS__STORE_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!is_lower_alnum(c) && c != '-')
			return kvs_error_set(KVS_EINVAL,
			                     "store name \"%s\": byte %zu is not [a-z0-9-]", name, i);
	}
	if (name[0] == '-' || name[n - 1] == '-')
		return kvs_error_set(KVS_EINVAL,
		                     "store name \"%s\" must start and end with a letter or digit", name);
	return 0;
}

/* Length of the UTF-8 sequence at s (well-formed, shortest form, no
 * surrogates), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t v, min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		len = 2; v = c & 0x1f; min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3; v = c & 0x0f; min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4; v = c & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

int kvs__utf8_valid(const void *p, size_t len)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_seq(s + i, len - i, &cp);
		if (n == 0)
			return 0;
		i += n;
	}
	return 1;
}

int kvs__key_check(const char *key, size_t len)
{
	const unsigned char *k = (const unsigned char *)key;

	if (!key || len == 0)
		return kvs_error_set(KVS_EINVAL, "key is empty");
	if (len > KVS_KEY_MAX)
		return kvs_error_set(KVS_EINVAL, "key is %zu bytes, more than %d", len, KVS_KEY_MAX);
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_seq(k + i, len - i, &cp);
		if (n == 0)
			return kvs_error_set(KVS_EINVAL, "key is not valid UTF-8 at byte %zu", i);
		if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
			return kvs_error_set(KVS_EINVAL, "key has a control character at byte %zu", i);
		i += n;
	}
	return 0;
}

void kvs__hex(char *out, const uint8_t *b, size_t n)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[b[i] >> 4];
		out[2 * i + 1] = hx[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int kvs__unhex(uint8_t *out, const char *hex, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo;
		if (hi < 0)
			return -1;
		lo = hexval(hex[2 * i + 1]);
		if (lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void kvs__addr_of(uint8_t out[KVS__ADDR_LEN], const void *data, size_t len)
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(data, len));
	memcpy(out, c.digest, KVS__ADDR_LEN);
}

void kvs__index_name(char out[KVS__NAME_BUF], const char *store, const char *key, size_t len)
{
	static const char hx[] = "0123456789abcdef";
	int n = snprintf(out, KVS__NAME_BUF, "kvs.%s.i-", store);
	size_t pos = (size_t)n;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];
		size_t need = is_lower_alnum(c) ? 1 : 3;
		if (pos + need > KVS__OBJ_NAME_MAX)
			goto hashed;
		if (need == 1) {
			out[pos++] = (char)c;
		} else {
			out[pos++] = '-';
			out[pos++] = hx[c >> 4];
			out[pos++] = hx[c & 15];
		}
	}
	out[pos] = '\0';
	return;
hashed:;
	uint8_t a[KVS__ADDR_LEN];
	char h[KVS__ADDR_HEX + 1];
	kvs__addr_of(a, key, len);
	kvs__hex(h, a, KVS__ADDR_LEN);
	snprintf(out, KVS__NAME_BUF, "kvs.%s.h-%s", store, h);
}

void kvs__segment_name(char out[KVS__NAME_BUF], const char *store, const uint8_t addr[KVS__ADDR_LEN])
{
	char h[KVS__ADDR_HEX + 1];

	kvs__hex(h, addr, KVS__ADDR_LEN);
	snprintf(out, KVS__NAME_BUF, "kvs.%s.s-%s", store, h);
}

int kvs__segment_name_parse(uint8_t addr[KVS__ADDR_LEN], const char *store, const char *name)
{
	size_t sl = strlen(store);

	if (strncmp(name, "kvs.", 4) != 0 || strncmp(name + 4, store, sl) != 0 ||
	    strncmp(name + 4 + sl, ".s-", 3) != 0 || strlen(name + 7 + sl) != KVS__ADDR_HEX ||
	    kvs__unhex(addr, name + 7 + sl, KVS__ADDR_LEN) < 0)
		return kvs_error_set(KVS_EINVAL, "\"%s\" is not a segment name of store %s", name, store);
	return 0;
}

void kvs__selector(char out[KVS__NAME_BUF], const char *store, const char *role)
{
	snprintf(out, KVS__NAME_BUF, KVS__LABEL_STORE "=%s," KVS__LABEL_ROLE "=%s", store, role);
}

int kvs__set_labels(kvs_object *o, const char *store, const char *role)
{
	int rc;

	if ((rc = kvs_object_set_label(o, KVS__LABEL_MANAGED, KVS__LABEL_MANAGED_VALUE)) < 0 ||
	    (rc = kvs_object_set_label(o, KVS__LABEL_STORE, store)) < 0 ||
	    (rc = kvs_object_set_label(o, KVS__LABEL_ROLE, role)) < 0)
		return rc;
	return 0;
}
