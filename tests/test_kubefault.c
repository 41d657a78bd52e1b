/*
 * test_kubefault.c — suite `kubefault`: the whole store (kvs_put/kvs_get)
 * over the Kubernetes backend while the API test server injects random 5xx,
 * 429 with Retry-After and connections cut mid-response. Every operation
 * must end either in success with the exact bytes, or in a clear error that
 * leaves the key at its previous value (or, when the error says the outcome
 * of the last request is unknown, at the value being written). A final read
 * with the faults off checks every key.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/fixture_kube.h"

#define THREADS 4
#define KEYS_PER_THREAD 8
#define OPS_PER_THREAD 250 /* half puts, half gets: 1,000 operations */

TestSuite(kubefault, .timeout = 120);

struct cell {
	uint64_t seed;       /* value now committed (0 = none) */
	uint64_t maybe;      /* a value whose put failed ambiguously (0 = none) */
};

struct worker {
	kvs_store *st;
	int id;
	struct cell cells[KEYS_PER_THREAD];
	int puts_ok, gets_ok, errors;
	char failure[512];
};

/* Value for a seed: mostly small (a few hundred bytes to 200 KB), JSON or
 * random, and a few large ones up to 20 MB. */
static size_t value_len(uint64_t seed)
{
	if (seed % 97 == 5)
		return 20u * 1024 * 1024;
	if (seed % 61 == 7)
		return 3u * 1024 * 1024 + seed % 1000;
	if (seed % 3 == 0)
		return 100 + seed % 2000;
	return 1000 + (seed * 7919) % (200 * 1024);
}

static uint8_t *make_value(uint64_t seed, size_t *len)
{
	size_t n = value_len(seed);
	uint8_t *p = malloc(n);

	if (!p)
		return NULL;
	if (seed % 2)
		fx_json((char *)p, n, seed);
	else
		fx_random(p, n, seed);
	*len = n;
	return p;
}

static int same_as(const void *got, size_t len, uint64_t seed)
{
	size_t n;
	uint8_t *want;
	int eq;

	if (seed == 0)
		return 0;
	want = make_value(seed, &n);
	eq = want && n == len && memcmp(want, got, n) == 0;
	free(want);
	return eq;
}

static int clear_error(int rc)
{
	return rc == KVS_EIO || rc == KVS_ETIMEOUT || rc == KVS_ECONFLICT || rc == KVS_EEXISTS;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	char key[32];

	for (int i = 0; i < OPS_PER_THREAD && !w->failure[0]; i++) {
		int k = i / 2 % KEYS_PER_THREAD;
		struct cell *c = &w->cells[k];

		snprintf(key, sizeof(key), "t%d/key-%d", w->id, k);
		if (i % 2 == 0) {
			uint64_t seed = (uint64_t)w->id * 100000 + (uint64_t)i + 1;
			size_t n;
			uint8_t *v = make_value(seed, &n);
			int rc = kvs_put(NULL, w->st, key, v, n, NULL);

			free(v);
			if (rc == 0) {
				c->seed = seed;
				c->maybe = 0;
				w->puts_ok++;
			} else if (clear_error(rc) && kvs_error_last()[0]) {
				c->maybe = seed;
				w->errors++;
			} else {
				snprintf(w->failure, sizeof(w->failure), "put %s: rc %d (%s)", key, rc,
				         kvs_error_last());
			}
		} else {
			void *got = NULL;
			size_t len = 0;
			int rc = kvs_get(&got, &len, NULL, w->st, key, NULL);

			if (rc == 0) {
				if (same_as(got, len, c->seed)) {
					c->maybe = 0;
				} else if (same_as(got, len, c->maybe)) {
					c->seed = c->maybe; /* the ambiguous put had applied */
					c->maybe = 0;
				} else {
					snprintf(w->failure, sizeof(w->failure),
					         "get %s: %zu bytes that are neither the committed nor the "
					         "attempted value",
					         key, len);
				}
				w->gets_ok++;
			} else if (rc == KVS_ENOTFOUND && c->seed == 0 && c->maybe == 0) {
				w->gets_ok++;
			} else if (clear_error(rc) && kvs_error_last()[0]) {
				w->errors++;
			} else {
				snprintf(w->failure, sizeof(w->failure), "get %s: rc %d (%s)", key, rc,
				         kvs_error_last());
			}
			kvs_free(got);
		}
	}
	return NULL;
}

Test(kubefault, thousand_puts_and_gets_under_5xx_429_and_drops_end_exact_or_clean)
{
	fx_kapi *k = NULL;
	const char *extra[] = { "--seed", "20240601", NULL };
	kvs_backend *b = NULL;
	kvs_store *st = NULL;
	struct worker ws[THREADS];
	pthread_t th[THREADS];
	char *stats = NULL;

	cr_assert_eq(fx_kapi_start(&k, 0, extra), 0, "%s", kvs_error_last());
	cr_assert_eq(fx_kapi_backend(&b, k, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_open(&st, b, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(fx_kapi_faults(k, "{\"fail_rate\":0.05,\"throttle_rate\":0.01,"
	                               "\"drop_rate\":0.03,\"retry_after\":1}"),
	             0);
	memset(ws, 0, sizeof(ws));
	for (int i = 0; i < THREADS; i++) {
		ws[i].st = st;
		ws[i].id = i;
		cr_assert_eq(pthread_create(&th[i], NULL, work, &ws[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(fx_kapi_faults(k, "{\"fail_rate\":0,\"throttle_rate\":0,\"drop_rate\":0}"), 0);
	fx_kapi_call(k, "GET", "/kapi/stats", NULL, &stats);
	cr_log_info("kapi stats: %s", stats ? stats : "?");
	cr_expect(stats && !strstr(stats, "\"fail\":0,") && !strstr(stats, "\"drop\":0,") &&
	          !strstr(stats, "\"throttle\":0,"),
	          "faults were not all injected: %s", stats);
	free(stats);

	int puts = 0, gets = 0, errors = 0;
	for (int i = 0; i < THREADS; i++) {
		cr_expect_eq(ws[i].failure[0], '\0', "worker %d: %s", i, ws[i].failure);
		puts += ws[i].puts_ok;
		gets += ws[i].gets_ok;
		errors += ws[i].errors;
	}
	cr_log_info("puts ok %d, gets ok %d, clean errors %d", puts, gets, errors);
	cr_expect_eq(puts + gets + errors, THREADS * OPS_PER_THREAD);

	/* read everything back with the faults off */
	for (int i = 0; i < THREADS; i++) {
		for (int kk = 0; kk < KEYS_PER_THREAD; kk++) {
			struct cell *c = &ws[i].cells[kk];
			char key[32];
			void *got = NULL;
			size_t len = 0;

			snprintf(key, sizeof(key), "t%d/key-%d", i, kk);
			int rc = kvs_get(&got, &len, NULL, st, key, NULL);
			if (c->seed == 0 && c->maybe == 0) {
				cr_expect_eq(rc, KVS_ENOTFOUND, "%s: rc %d", key, rc);
			} else {
				cr_assert_eq(rc, 0, "%s: %s", key, kvs_error_last());
				cr_expect(same_as(got, len, c->seed) || same_as(got, len, c->maybe),
				          "%s: final value is neither the committed nor the attempted one",
				          key);
			}
			kvs_free(got);
		}
	}
	kvs_close(st);
	fx_kapi_stop(k);
}
