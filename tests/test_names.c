/*
 * test_names.c — suite "names": object names, key and store-name rules.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "names.h"
#include "gc.h"

Test(names, index_name_escapes_non_alnum_bytes)
{
	char n[KVS__NAME_BUF];
	kvs__index_name(n, "st", "ab/C.d", 6);
	cr_assert_str_eq(n, "kvs.st.i-ab-2f-43-2ed");
}

Test(names, index_name_is_injective_on_tricky_pairs)
{
	char a[KVS__NAME_BUF], b[KVS__NAME_BUF];
	kvs__index_name(a, "s", "-2f", 3);
	kvs__index_name(b, "s", "/", 1);
	cr_assert_str_neq(a, b);
}

Test(names, long_key_gets_hashed_valid_name)
{
	char n[KVS__NAME_BUF], key[1024];
	memset(key, '/', sizeof(key));
	kvs__index_name(n, "st", key, sizeof(key));
	cr_assert_eq(strncmp(n, "kvs.st.h-", 9), 0);
	cr_assert_eq(strlen(n), 9 + 32);
}

Test(names, names_are_dns1123_subdomains)
{
	const char *keys[] = { "a", "Z", "a b", "\xc3\xa9", "x-", "..", "0" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char n[KVS__NAME_BUF];
		kvs__index_name(n, "store-1", keys[i], strlen(keys[i]));
		size_t l = strlen(n);
		cr_assert_leq(l, 253);
		for (size_t j = 0; j < l; j++)
			cr_assert(strchr("abcdefghijklmnopqrstuvwxyz0123456789-.", n[j]), "%s", n);
		cr_assert(n[l - 1] != '-' && n[l - 1] != '.', "%s", n);
	}
}

Test(names, segment_name_parses_back)
{
	uint8_t a[16], b[16];
	char n[KVS__NAME_BUF];
	for (int i = 0; i < 16; i++) a[i] = (uint8_t)(i * 17);
	kvs__segment_name(n, "st", a);
	cr_assert_eq(kvs__segment_name_parse(b, "st", n), 0);
	cr_assert(memcmp(a, b, 16) == 0);
	cr_assert_lt(kvs__segment_name_parse(b, "other", n), 0);
}

Test(names, store_names_follow_the_rules)
{
	cr_assert_eq(kvs__store_name_check("default"), 0);
	cr_assert_eq(kvs__store_name_check("a-1"), 0);
	cr_assert_eq(kvs__store_name_check("-a"), KVS_EINVAL);
	cr_assert_eq(kvs__store_name_check("a-"), KVS_EINVAL);
	cr_assert_eq(kvs__store_name_check("A"), KVS_EINVAL);
	cr_assert_eq(kvs__store_name_check(""), KVS_EINVAL);
	cr_assert_eq(kvs__store_name_check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), KVS_EINVAL);
}

Test(names, keys_must_be_utf8_without_controls)
{
	cr_assert_eq(kvs__key_check("ok/key", 6), 0);
	cr_assert_eq(kvs__key_check("\xc3\xa9", 2), 0);
	cr_assert_eq(kvs__key_check("", 0), KVS_EINVAL);
	cr_assert_eq(kvs__key_check("a\nb", 3), KVS_EINVAL);
	cr_assert_eq(kvs__key_check("\xc3", 1), KVS_EINVAL);          /* truncated */
	cr_assert_eq(kvs__key_check("\xc0\xaf", 2), KVS_EINVAL);      /* overlong */
	cr_assert_eq(kvs__key_check("\xed\xa0\x80", 3), KVS_EINVAL);  /* surrogate */
	cr_assert_eq(kvs__key_check("\xc2\x85", 2), KVS_EINVAL);      /* C1 control */
}

/* An index name has one spelling per key: a name with a non-canonical escape
 * ("-61" for "a"), an escaped NUL or control byte, or bytes that are not
 * UTF-8 names no key (fsck and gc messages would otherwise blame key "a"
 * for an object that is not its index). Found by fuzz/names_fuzzer.c. */
Test(names, index_name_key_accepts_only_the_canonical_name)
{
	char key[KVS_KEY_MAX + 1];

	cr_assert_eq(kvs__index_name_key(key, sizeof(key), "default", "kvs.default.i-a-2fb"), 0);
	cr_assert_str_eq(key, "a/b");
	cr_assert_eq(kvs__index_name_key(key, sizeof(key), "default", "kvs.default.i--61"), -1);
	cr_assert_eq(kvs__index_name_key(key, sizeof(key), "default", "kvs.default.i-a-0a"), -1);
	cr_assert_eq(kvs__index_name_key(key, sizeof(key), "default", "kvs.default.i--ff"), -1);
	cr_assert_eq(kvs__index_name_key(key, sizeof(key), "default", "kvs.default.i-"), -1);
	cr_assert_eq(kvs__index_name_key(key, sizeof(key), "default", "kvs.other.i-a"), -1);
}
