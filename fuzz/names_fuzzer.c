/*
 * names_fuzzer.c — the key-to-object-name mapping (store/names.c,
 * docs/format.md "Objects") on arbitrary bytes.
 *
 * Input: `store NUL key1 NUL key2 NUL name` (missing parts are empty; an
 * empty store is "default"). Properties:
 *
 *  - a store name kvs__store_name_check accepts gives, for every key
 *    kvs__key_check accepts, an index name the API server accepts
 *    (kube/validate.c: a DNS-1123 subdomain) of at most 253 characters;
 *  - injective: two distinct valid keys never get the same index name;
 *  - round trip: an escaped ("i-") index name decodes (kvs__index_name_key)
 *    to exactly its key; a hashed ("h-") name is the XXH3-128 of the key;
 *  - the other way round, any name that decodes to a key is the very name
 *    that key maps to (no second spelling of a key);
 *  - segment names: name of an address parses back to the address, and any
 *    name that parses is the name of what it parsed to.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvsplit.h"
#include "names.h"
#include "gc.h"
#include "kube/validate.h"

#define FAIL() fail(__LINE__)
static void fail(int line)
{
	fprintf(stderr, "names_fuzzer.c:%d: property violated (last error: %s)\n", line,
	        kvs_error_last());
	abort();
}

/* The next NUL-terminated part of the input (may run to its end). */
static const char *part(const char **p, const char *end, size_t *len)
{
	const char *s = *p, *z;

	if (s >= end) {
		*len = 0;
		return s;
	}
	z = memchr(s, '\0', (size_t)(end - s));
	*len = z ? (size_t)(z - s) : (size_t)(end - s);
	*p = s + *len + (z ? 1 : 0);
	return s;
}

static void check_name_valid(const char *name)
{
	if (strlen(name) > KVS__OBJ_NAME_MAX || kvs__is_dns1123_subdomain(NULL, name) != 0)
		FAIL();
}

static void check_key(char name[KVS__NAME_BUF], const char *store, const char *key, size_t len)
{
	char back[KVS_KEY_MAX + 1];
	size_t sl = strlen(store);

	kvs__index_name(name, store, key, len);
	check_name_valid(name);
	if (strncmp(name, "kvs.", 4) != 0 || strncmp(name + 4, store, sl) != 0 || name[4 + sl] != '.')
		FAIL();
	if (strncmp(name + 5 + sl, "i-", 2) == 0) {
		if (kvs__index_name_key(back, sizeof(back), store, name) != 0 || strlen(back) != len ||
		    memcmp(back, key, len) != 0)
			FAIL();
	} else if (strncmp(name + 5 + sl, "h-", 2) == 0) {
		uint8_t a[KVS__ADDR_LEN];
		char h[KVS__ADDR_HEX + 1];

		kvs__addr_of(a, key, len);
		kvs__hex(h, a, KVS__ADDR_LEN);
		if (strcmp(name + 7 + sl, h) != 0 || kvs__index_name_key(back, sizeof(back), store, name) == 0)
			FAIL();
	} else {
		FAIL();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	size_t sl, l1, l2, ln;
	const char *sp = part(&p, end, &sl);
	const char *k1 = part(&p, end, &l1);
	const char *k2 = part(&p, end, &l2);
	const char *np = part(&p, end, &ln);
	char store[KVS__STORE_NAME_MAX + 1] = "default";
	char n1[KVS__NAME_BUF], n2[KVS__NAME_BUF];
	int ok1, ok2;

	if (sl) {
		if (sl > KVS__STORE_NAME_MAX)
			return 0;
		memcpy(store, sp, sl);
		store[sl] = '\0';
		if (kvs__store_name_check(store) != 0)
			return 0;
	}
	ok1 = kvs__key_check(k1, l1) == 0;
	ok2 = kvs__key_check(k2, l2) == 0;
	if (ok1)
		check_key(n1, store, k1, l1);
	if (ok2)
		check_key(n2, store, k2, l2);
	if (ok1 && ok2 && (l1 != l2 || memcmp(k1, k2, l1) != 0) && strcmp(n1, n2) == 0)
		FAIL();   /* two keys, one object */

	/* Any name: what decodes to a key must be that key's one name. */
	if (ln <= KVS__OBJ_NAME_MAX) {
		char name[KVS__NAME_BUF], key[KVS_KEY_MAX + 1], back[KVS__NAME_BUF];
		uint8_t addr[KVS__ADDR_LEN];

		memcpy(name, np, ln);
		name[ln] = '\0';
		if (kvs__index_name_key(key, sizeof(key), store, name) == 0) {
			if (kvs__key_check(key, strlen(key)) != 0)
				FAIL();
			kvs__index_name(back, store, key, strlen(key));
			if (strcmp(back, name) != 0)
				FAIL();
		}
		if (kvs__segment_name_parse(addr, store, name) == 0) {
			kvs__segment_name(back, store, addr);
			if (strcmp(back, name) != 0)
				FAIL();
			check_name_valid(back);
		}
	}
	/* Segment names of the keys' hashes: valid, and parse back. */
	{
		uint8_t a[KVS__ADDR_LEN], b[KVS__ADDR_LEN];
		char sn[KVS__NAME_BUF];

		kvs__addr_of(a, k1, l1);
		kvs__segment_name(sn, store, a);
		check_name_valid(sn);
		if (kvs__segment_name_parse(b, store, sn) != 0 || memcmp(a, b, sizeof(a)) != 0)
			FAIL();
	}
	return 0;
}
