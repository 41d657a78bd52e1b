/*
 * test_list.c — suite "list": kvs_list_keys is a metadata-only listing. It
 * reads no manifest, so it works for any number and size of indexes, takes
 * the key from the index name (or, for a hashed name, from the key
 * annotation once it hashes to that name) and the length from the length
 * annotation, and falls back to one GET of an index only when those do not
 * tell (docs/design.md "Listing").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "support/fixture.h"
#include "support/fixture_kube.h"

#define KIB 1024u

TestSuite(list, .timeout = 120);

/* Every page of the listing of `s` (no prefix), `limit` per page. */
typedef struct seen {
	char **keys;
	uint64_t *lens;
	char (*vers)[KVS_VER_MAX];
	size_t n, cap;
} seen;

static void list_all(seen *out, kvs_store *s, const char *prefix, size_t limit)
{
	char *tok = NULL;

	memset(out, 0, sizeof(*out));
	do {
		kvs_list *l = NULL;
		kvs_list_options lo = KVS_LIST_OPTIONS_INIT;
		int rc;
		lo.prefix = prefix;
		lo.limit = limit;
		lo.token = tok;
		rc = kvs_list_keys(&l, s, &lo);
		cr_assert_eq(rc, 0, "list: %s: %s", kvs_strerror(rc), kvs_error_last());
		for (size_t i = 0; i < l->count; i++) {
			if (out->n == out->cap) {
				out->cap = out->cap ? 2 * out->cap : 64;
				out->keys = realloc(out->keys, out->cap * sizeof(*out->keys));
				out->lens = realloc(out->lens, out->cap * sizeof(*out->lens));
				out->vers = realloc(out->vers, out->cap * sizeof(*out->vers));
				cr_assert(out->keys && out->lens && out->vers);
			}
			out->keys[out->n] = strdup(l->entries[i].key);
			out->lens[out->n] = l->entries[i].length;
			snprintf(out->vers[out->n], KVS_VER_MAX, "%s", l->entries[i].version.str);
			out->n++;
		}
		free(tok);
		tok = l->next ? strdup(l->next) : NULL;
		kvs_list_free(l);
	} while (tok);
}

static long find(const seen *sn, const char *key)
{
	long at = -1;
	for (size_t i = 0; i < sn->n; i++)
		if (strcmp(sn->keys[i], key) == 0) {
			cr_assert_eq(at, -1, "key \"%s\" listed twice", key);
			at = (long)i;
		}
	return at;
}

static void seen_free(seen *sn)
{
	for (size_t i = 0; i < sn->n; i++)
		free(sn->keys[i]);
	free(sn->keys);
	free(sn->lens);
	free(sn->vers);
}

/*
 * The review's case: 100 keys whose indexes are near 700 KiB each (values
 * inline in the index). A listing that reads whole indexes asks the API
 * server for a ~95 MB page and fails on the client's 64 MiB list cap
 * ("response ... larger than the 67108864-byte cap"); a metadata-only
 * listing costs a few hundred bytes per key.
 */
Test(list, hundred_keys_with_700kib_indexes_list_through_the_api_server, .timeout = 240)
{
	enum { NKEYS = 100, VLEN = 700 * KIB };
	fx_kapi *k = NULL;
	kvs_backend *b = NULL;
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_store *s = NULL;
	kvs_ver vers[NKEYS];
	uint8_t *v = malloc(VLEN);
	char key[64];
	seen sn;

	cr_assert(v);
	cr_assert_eq(fx_kapi_start(&k, 0, NULL), 0, "kapi-server: %s", kvs_error_last());
	ko.qps = -1;    /* no client-side rate limit: 200 requests */
	cr_assert_eq(fx_kapi_backend(&b, k, &ko), 0, "%s", kvs_error_last());
	o.inline_max = VLEN;   /* each value inline: a ~700 KiB index */
	cr_assert_eq(kvs_open(&s, b, &o), 0, "%s", kvs_error_last());
	for (int i = 0; i < NKEYS; i++) {
		kvs_stat st;
		snprintf(key, sizeof(key), "wf/%03d", i);
		fx_random(v, VLEN, (uint64_t)i + 1);
		cr_assert_eq(kvs_put(&vers[i], s, key, v, VLEN - (size_t)i, NULL), 0, "put %s: %s", key,
		             kvs_error_last());
		if (i == 0) {
			cr_assert_eq(kvs_stat_key(&st, s, key, NULL), 0, "%s", kvs_error_last());
			cr_assert(st.is_inline && st.index_bytes > 690 * KIB,
			          "index of %u bytes: not the large index this test needs", st.index_bytes);
		}
	}
	list_all(&sn, s, NULL, 0);
	cr_assert_eq(sn.n, NKEYS, "%zu keys listed, %d stored", sn.n, NKEYS);
	for (int i = 0; i < NKEYS; i++) {
		snprintf(key, sizeof(key), "wf/%03d", i);
		long at = find(&sn, key);
		cr_assert_geq(at, 0, "key %s not listed", key);
		cr_assert_eq(sn.lens[at], VLEN - (uint64_t)i, "key %s: length %llu", key,
		             (unsigned long long)sn.lens[at]);
		cr_assert_str_eq(sn.vers[at], vers[i].str, "key %s: version", key);
	}
	seen_free(&sn);
	/* and with a prefix and small pages too */
	list_all(&sn, s, "wf/05", 7);
	cr_assert_eq(sn.n, 10);
	seen_free(&sn);
	free(v);
	kvs_close(s);
	fx_kapi_stop(k);
}

/* Keys of every form: short, escaped, and long enough for a hashed name. */
static void key_of(char *out, size_t cap, int i)
{
	if (i % 10 == 9) {
		/* 300 bytes, ~900 escaped: the hashed name "kvs.default.h-..." */
		int n = snprintf(out, cap, "long/%d/", i);
		memset(out + n, '_', 300 - (size_t)n);
		out[300] = '\0';
	} else {
		snprintf(out, cap, "%s/K%d.état", i % 2 ? "app" : "job", i);
	}
}

static uint64_t count(kvs_backend *b, kvs_mem_call c)
{
	kvs_mem_stats st;
	kvs_mem_get_stats(b, &st);
	return st.calls[c];
}

/* One page of metadata: no GET, not one byte of data read. */
Test(list, listing_reads_no_index_data)
{
	enum { NKEYS = 60 };
	kvs_backend *b = NULL;
	kvs_store *s = NULL;
	kvs_ver vers[NKEYS];
	size_t lens[NKEYS];
	char key[400];
	uint8_t *v = malloc(300 * KIB);
	kvs_mem_stats st;
	seen sn;

	cr_assert_eq(kvs_backend_mem(&b, NULL), 0);
	cr_assert_eq(kvs_open(&s, b, NULL), 0);
	for (int i = 0; i < NKEYS; i++) {
		key_of(key, sizeof(key), i);
		lens[i] = i % 3 == 0 ? 300 * KIB - (size_t)i : (size_t)i * 100;   /* chunked / inline */
		fx_random(v, lens[i], (uint64_t)i);
		cr_assert_eq(kvs_put(&vers[i], s, key, v, lens[i], NULL), 0, "%s", kvs_error_last());
	}
	kvs_mem_reset_stats(b);
	list_all(&sn, s, NULL, 0);
	kvs_mem_get_stats(b, &st);
	cr_assert_eq(st.calls[KVS_MEM_LIST], 1, "%llu list calls",
	             (unsigned long long)st.calls[KVS_MEM_LIST]);
	cr_assert_eq(st.calls[KVS_MEM_GET], 0, "the listing read %llu objects",
	             (unsigned long long)st.calls[KVS_MEM_GET]);
	cr_assert_eq(st.bytes_read, 0, "the listing read %llu bytes of data",
	             (unsigned long long)st.bytes_read);
	cr_assert_eq(sn.n, NKEYS);
	for (int i = 0; i < NKEYS; i++) {
		key_of(key, sizeof(key), i);
		long at = find(&sn, key);
		cr_assert_geq(at, 0, "key %.40s... not listed", key);
		cr_assert_eq(sn.lens[at], lens[i], "key %.40s: length", key);
		cr_assert_str_eq(sn.vers[at], vers[i].str);
	}
	seen_free(&sn);
	/* pages of 7 with a prefix: still metadata only */
	kvs_mem_reset_stats(b);
	list_all(&sn, s, "app/", 7);
	cr_assert_eq(count(b, KVS_MEM_GET), 0);
	kvs_mem_get_stats(b, &st);
	cr_assert_eq(st.bytes_read, 0);
	cr_assert_eq(sn.n, 24, "%zu app/ keys", sn.n);   /* odd i, but not the 6 long keys */
	for (size_t i = 0; i < sn.n; i++)
		cr_assert(strncmp(sn.keys[i], "app/", 4) == 0, "%s", sn.keys[i]);
	seen_free(&sn);
	free(v);
	kvs_close(s);
}

static void annotate(kvs_backend *b, const char *name, const char *ann, const char *value)
{
	kvs_kv kv = { (char *)ann, (char *)value };
	cr_assert_eq(b->ops->annotate(b, NULL, name, &kv, 1), 0, "%s", kvs_error_last());
}

/* The one index whose name is hashed (NULL if none). */
static char *hashed_index(kvs_backend *b)
{
	kvs_object_list *ol = NULL;
	char *name = NULL;
	cr_assert_eq(b->ops->list(b, &ol, "kvsplit.io/role=index", 0, NULL, KVS_LIST_METADATA_ONLY), 0);
	for (size_t i = 0; i < ol->count; i++)
		if (strstr(ol->items[i]->name, ".h-")) {
			cr_assert_null(name);
			name = strdup(ol->items[i]->name);
		}
	kvs_object_list_free(ol);
	return name;
}

/*
 * A hashed name does not give the key back: the key annotation does, when it
 * hashes to that name. An annotation that does not (changed by hand, or
 * gone) costs one GET of that index, and the key comes from its manifest.
 */
Test(list, hashed_name_key_comes_from_a_matching_annotation_or_the_manifest)
{
	kvs_backend *b = NULL;
	kvs_store *s = NULL;
	char key[400];
	seen sn;

	cr_assert_eq(kvs_backend_mem(&b, NULL), 0);
	cr_assert_eq(kvs_open(&s, b, NULL), 0);
	key_of(key, sizeof(key), 9);
	cr_assert_eq(kvs_put(NULL, s, key, "hello", 5, NULL), 0);
	cr_assert_eq(kvs_put(NULL, s, "short", "hi", 2, NULL), 0);
	char *idx = hashed_index(b);
	cr_assert_not_null(idx, "the long key has no hashed index name");

	const char *bad[] = { "long/9/", "short", NULL /* removed */ };
	for (size_t t = 0; t < 3; t++) {
		annotate(b, idx, "kvsplit.io/key", bad[t]);
		kvs_mem_reset_stats(b);
		list_all(&sn, s, NULL, 0);
		cr_assert_eq(count(b, KVS_MEM_GET), 1, "case %zu: %llu GETs, want 1 (the hashed index)",
		             t, (unsigned long long)count(b, KVS_MEM_GET));
		cr_assert_eq(sn.n, 2, "case %zu: %zu keys", t, sn.n);
		long at = find(&sn, key);
		cr_assert_geq(at, 0, "case %zu: the long key is not listed", t);
		cr_assert_eq(sn.lens[at], 5);
		cr_assert_eq(find(&sn, "short") >= 0, 1);
		seen_free(&sn);
	}
	/* the annotation restored: no GET again */
	annotate(b, idx, "kvsplit.io/key", key);
	kvs_mem_reset_stats(b);
	list_all(&sn, s, NULL, 0);
	cr_assert_eq(count(b, KVS_MEM_GET), 0);
	cr_assert_eq(sn.n, 2);
	seen_free(&sn);
	free(idx);
	kvs_close(s);
}

/* A length annotation that is missing or not a decimal number: one GET of
 * that index, the length from its manifest. */
Test(list, unreadable_length_annotation_falls_back_to_the_manifest)
{
	kvs_backend *b = NULL;
	kvs_store *s = NULL;
	const char *bad[] = { NULL, "", "abc", "-1", "12x", "+5", " 5", "99999999999999999999999",
	                      "1099511627777" /* 2^40 + 1 */ };
	seen sn;

	cr_assert_eq(kvs_backend_mem(&b, NULL), 0);
	cr_assert_eq(kvs_open(&s, b, NULL), 0);
	cr_assert_eq(kvs_put(NULL, s, "a", "12345", 5, NULL), 0);
	for (size_t t = 0; t < sizeof(bad) / sizeof(bad[0]); t++) {
		annotate(b, "kvs.default.i-a", "kvsplit.io/length", bad[t]);
		kvs_mem_reset_stats(b);
		list_all(&sn, s, NULL, 0);
		cr_assert_eq(count(b, KVS_MEM_GET), 1, "length \"%s\": %llu GETs", bad[t] ? bad[t] : "(none)",
		             (unsigned long long)count(b, KVS_MEM_GET));
		cr_assert_eq(sn.n, 1);
		cr_assert_str_eq(sn.keys[0], "a");
		cr_assert_eq(sn.lens[0], 5, "length \"%s\": listed %llu", bad[t] ? bad[t] : "(none)",
		             (unsigned long long)sn.lens[0]);
		seen_free(&sn);
	}
	kvs_close(s);
}

static void add_index_like(kvs_backend *b, const char *name, const char *store)
{
	kvs_object *o = kvs_object_new(name);
	cr_assert_not_null(o);
	cr_assert_eq(kvs_object_set_label(o, "app.kubernetes.io/managed-by", "kvsplit"), 0);
	cr_assert_eq(kvs_object_set_label(o, "kvsplit.io/store", store), 0);
	cr_assert_eq(kvs_object_set_label(o, "kvsplit.io/role", "index"), 0);
	cr_assert_eq(kvs_object_set_annotation(o, "kvsplit.io/length", "3"), 0);
	cr_assert_eq(kvs_object_add_data(o, "manifest", "junk", 4), 0);
	cr_assert_eq(b->ops->create(b, NULL, o), 0, "create %s: %s", name, kvs_error_last());
	kvs_object_free(o);
}

/*
 * Objects that carry the index labels but whose name is no index name of a
 * key of this store are not keys: a non-canonical escape (-61 is "a", which
 * stands for itself), an escape that is not UTF-8 or is a control
 * character, a truncated or non-hex escape, a byte sequence that is not
 * UTF-8, another store's prefix, a name with a dot after the prefix. A hashed name with
 * no way to learn its key costs one GET, and its bad manifest skips it.
 */
Test(list, names_that_are_not_index_names_of_a_key_are_skipped)
{
	kvs_backend *b = NULL;
	kvs_store *s = NULL;
	const char *names[] = {
		"kvs.default.i--61", "kvs.default.i--ff", "kvs.default.i--0a", "kvs.default.i-a-6",
		"kvs.default.i-a-6x", "kvs.default.i-a-g0", "kvs.default.i--c3-28", "kvs.default.x-a",
		"kvs.defaultx.i-a", "kvs.default.i", "kvs.default.i-a.b",
		"kvs.default.h-0123456789abcdef0123456789abcdef",
	};
	seen sn;

	cr_assert_eq(kvs_backend_mem(&b, NULL), 0);
	cr_assert_eq(kvs_open(&s, b, NULL), 0);
	cr_assert_eq(kvs_put(NULL, s, "ok", "yes", 3, NULL), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		add_index_like(b, names[i], "default");
	kvs_mem_reset_stats(b);
	list_all(&sn, s, NULL, 0);
	cr_assert_eq(sn.n, 1, "%zu keys listed", sn.n);
	cr_assert_str_eq(sn.keys[0], "ok");
	cr_assert_eq(count(b, KVS_MEM_GET), 1, "%llu GETs: only the hashed name may be read",
	             (unsigned long long)count(b, KVS_MEM_GET));
	seen_free(&sn);
	kvs_close(s);
}
