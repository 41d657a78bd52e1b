/*
 * test_store.c — suite "store": the behaviour of a store through the public
 * API only, against whatever fx_backend() gives (memory by default; the
 * Kubernetes backend later), so the same file proves both.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "support/expect.h"
#include "support/fixture.h"

#define KIB 1024u
#define MIB (1024u * 1024u)
/* Defaults of kvs_options (kvsplit.h). */
#define INLINE_MAX (64 * KIB)
#define CMIN (16 * KIB)
#define CAVG (64 * KIB)
#define CMAX (256 * KIB)

static int is_memory(void)
{
	return strcmp(fx_backend_kind(), "memory") == 0;
}

static kvs_store *open_store(kvs_backend **bout)
{
	kvs_backend *b = NULL;
	kvs_store *s = NULL;

	cr_assert_eq(fx_backend(&b), 0, "backend: %s", kvs_error_last());
	cr_assert_eq(kvs_open(&s, b, NULL), 0, "open: %s", kvs_error_last());
	if (bout)
		*bout = b;
	return s;
}

static uint8_t *make(size_t n, int json, uint64_t seed)
{
	uint8_t *d = malloc(n ? n : 1);
	cr_assert(d);
	if (json)
		fx_json((char *)d, n, seed);
	else
		fx_random(d, n, seed);
	return d;
}


/* Streaming source and sink over memory, with uneven read sizes. */
typedef struct rd { const uint8_t *p; size_t n, off; uint64_t x; } rd;
static int rd_cb(void *ctx, void *buf, size_t cap, size_t *got)
{
	rd *r = ctx;
	size_t k = r->n - r->off;
	r->x = r->x * 6364136223846793005ull + 1442695040888963407ull;
	size_t want = 1 + (size_t)((r->x >> 33) % (200 * KIB));
	if (k > want) k = want;
	if (k > cap) k = cap;
	memcpy(buf, r->p + r->off, k);
	r->off += k;
	*got = k;
	return 0;
}
typedef struct wr { uint8_t *p; size_t n, off; int bad; } wr;
static int wr_cb(void *ctx, const void *buf, size_t len)
{
	wr *w = ctx;
	if (w->off + len > w->n) { w->bad = 1; return 0; }
	memcpy(w->p + w->off, buf, len);
	w->off += len;
	return 0;
}

static void roundtrip(kvs_store *s, size_t n, int json, int stream)
{
	uint8_t *d = make(n, json, n * 7 + (size_t)json);
	char key[64];
	int rc;

	snprintf(key, sizeof(key), "rt/%s/%s/%zu", json ? "json" : "rand", stream ? "s" : "b", n);
	if (stream) {
		rd r = { d, n, 0, n };
		rc = kvs_put_stream(NULL, s, key, rd_cb, &r, NULL);
	} else {
		rc = kvs_put(NULL, s, key, d, n, NULL);
	}
	cr_assert_eq(rc, 0, "put %s: %s", key, kvs_error_last());
	if (stream) {
		wr w = { malloc(n ? n : 1), n, 0, 0 };
		rc = kvs_get_stream(NULL, s, key, wr_cb, &w, NULL);
		cr_assert_eq(rc, 0, "get_stream %s: %s", key, kvs_error_last());
		cr_assert(!w.bad && w.off == n && (n == 0 || memcmp(w.p, d, n) == 0),
		          "get_stream %s: wrong bytes", key);
		free(w.p);
	}
	fx_expect_value(s, key, d, n);
	free(d);
}

static const size_t sizes[] = {
	0, 1, INLINE_MAX - 1, INLINE_MAX, INLINE_MAX + 1, CMIN - 1, CMIN, CMIN + 1,
	CAVG - 1, CAVG + 1, CMAX - 1, CMAX, CMAX + 1, 3 * CMAX + 17, MIB
};

static void roundtrips(int json, int stream)
{
	kvs_store *s = open_store(NULL);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		roundtrip(s, sizes[i], json, stream);
	kvs_close(s);
}

Test(store, buffer_roundtrip_is_exact_for_random_at_boundary_sizes) { roundtrips(0, 0); }
Test(store, buffer_roundtrip_is_exact_for_json_at_boundary_sizes) { roundtrips(1, 0); }
Test(store, stream_roundtrip_is_exact_for_random_at_boundary_sizes) { roundtrips(0, 1); }
Test(store, stream_roundtrip_is_exact_for_json_at_boundary_sizes) { roundtrips(1, 1); }

Test(store, roundtrip_100mib_random_buffer_is_exact, .timeout = 120)
{
	if (!is_memory())
		cr_skip_test("100 MiB only on the memory backend");
	kvs_store *s = open_store(NULL);
	roundtrip(s, 100 * MIB, 0, 0);
	kvs_close(s);
}

Test(store, roundtrip_100mib_json_stream_is_exact, .timeout = 120)
{
	if (!is_memory())
		cr_skip_test("100 MiB only on the memory backend");
	kvs_store *s = open_store(NULL);
	roundtrip(s, 100 * MIB, 1, 1);
	kvs_close(s);
}

Test(store, fd_roundtrip_is_exact)
{
	kvs_store *s = open_store(NULL);
	size_t n = 700 * KIB;
	uint8_t *d = make(n, 1, 5);
	char path[] = "/tmp/kvs-test-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	unlink(path);
	cr_assert_eq(write(fd, d, n), (ssize_t)n);
	lseek(fd, 0, SEEK_SET);
	cr_assert_eq(kvs_put_fd(NULL, s, "fd", fd, NULL), 0, "%s", kvs_error_last());
	cr_assert_eq(ftruncate(fd, 0), 0);
	lseek(fd, 0, SEEK_SET);
	cr_assert_eq(kvs_get_fd(NULL, s, "fd", fd, NULL), 0, "%s", kvs_error_last());
	uint8_t *back = malloc(n);
	cr_assert_eq(pread(fd, back, n, 0), (ssize_t)n);
	cr_assert(memcmp(back, d, n) == 0);
	close(fd);
	free(back);
	free(d);
	kvs_close(s);
}

/* Segment objects of the default store, through the backend's list. */
static size_t count_segments(kvs_backend *b, char names[][256], size_t max)
{
	kvs_object_list *l = NULL;
	size_t n = 0;
	char *tok = NULL;

	do {
		cr_assert_eq(b->ops->list(b, &l, "kvsplit.io/store=default,kvsplit.io/role=segment", 0,
		                          tok, 0), 0, "%s", kvs_error_last());
		for (size_t i = 0; i < l->count; i++, n++)
			if (names && n < max)
				snprintf(names[n], 256, "%s", l->items[i]->name);
		free(tok);
		tok = l->next ? strdup(l->next) : NULL;
		kvs_object_list_free(l);
	} while (tok);
	return n;
}

Test(store, reput_of_same_value_creates_no_segment)
{
	kvs_backend *b = NULL;
	kvs_store *s = NULL;
	kvs_options o = KVS_OPTIONS_INIT;
	/* With history on, a re-put also stores its base's manifest (one small
	 * object: suite history); here the value's own segments are counted. */
	o.history = KVS_HISTORY_OFF;
	cr_assert_eq(fx_backend(&b), 0);
	cr_assert_eq(kvs_open(&s, b, &o), 0, "open: %s", kvs_error_last());
	size_t n = 3 * MIB;
	uint8_t *d = make(n, 1, 11);
	kvs_put_stats st;
	kvs_put_options po = KVS_PUT_OPTIONS_INIT;

	po.stats = &st;
	cr_assert_eq(kvs_put(NULL, s, "same", d, n, NULL), 0);
	size_t before = count_segments(b, NULL, 0);
	cr_assert_eq(kvs_put(NULL, s, "same", d, n, &po), 0);
	cr_assert_eq(st.segments_written, 0);
	cr_assert_eq(count_segments(b, NULL, 0), before);
	if (is_memory()) {
		kvs_mem_stats ms;
		kvs_mem_reset_stats(b);
		cr_assert_eq(kvs_put(NULL, s, "same", d, n, NULL), 0);
		kvs_mem_get_stats(b, &ms);
		cr_assert_eq(ms.calls[KVS_MEM_CREATE], 0, "created %llu objects",
		             (unsigned long long)ms.calls[KVS_MEM_CREATE]);
	}
	fx_expect_value(s, "same", d, n);
	free(d);
	kvs_close(s);
}

Test(store, one_percent_middle_edit_writes_at_most_5_percent, .timeout = 120)
{
	if (!is_memory())
		cr_skip_test("64 MiB edit figures only on the memory backend");
	kvs_backend *b;
	kvs_store *s = open_store(&b);
	size_t n = 64 * MIB, e = n / 100;
	uint8_t *d = make(n, 1, 21), *x = make(e, 1, 22);
	kvs_put_stats st0, st1;
	kvs_put_options po = KVS_PUT_OPTIONS_INIT;
	kvs_mem_stats ms;

	po.stats = &st0;
	cr_assert_eq(kvs_put(NULL, s, "big", d, n, &po), 0);
	memcpy(d + n / 2, x, e);
	po.stats = &st1;
	kvs_mem_reset_stats(b);
	cr_assert_eq(kvs_put(NULL, s, "big", d, n, &po), 0, "%s", kvs_error_last());
	kvs_mem_get_stats(b, &ms);
	double pct = 100.0 * (double)ms.bytes_written / (double)st1.stored_bytes;
	cr_log_info("1%% middle edit of 64 MiB JSON: %llu of %llu stored bytes written (%.2f%%)",
	            (unsigned long long)ms.bytes_written, (unsigned long long)st1.stored_bytes, pct);
	cr_assert_leq(pct, 5.0, "wrote %.2f%% of the stored bytes", pct);
	fx_expect_value(s, "big", d, n);

	/* 20 scattered small edits: reported, not asserted. */
	for (int i = 0; i < 20; i++) {
		size_t at = (size_t)i * (n / 20) + 12345;
		memcpy(d + at, "EDITED-EDITED-EDITED", 20);
	}
	kvs_mem_reset_stats(b);
	cr_assert_eq(kvs_put(NULL, s, "big", d, n, &po), 0);
	kvs_mem_get_stats(b, &ms);
	cr_log_info("20 scattered edits of 64 MiB JSON: %llu bytes written (%.2f%% of stored)",
	            (unsigned long long)ms.bytes_written,
	            100.0 * (double)ms.bytes_written / (double)st1.stored_bytes);
	fx_expect_value(s, "big", d, n);
	free(d);
	free(x);
	kvs_close(s);
}

Test(store, stale_expected_version_is_econflict_and_value_unchanged)
{
	kvs_store *s = open_store(NULL);
	kvs_ver v1, v2;
	kvs_put_options po = KVS_PUT_OPTIONS_INIT;
	uint8_t *a = make(200 * KIB, 1, 1), *b = make(200 * KIB, 1, 2), *c = make(300 * KIB, 0, 3);

	cr_assert_eq(kvs_put(&v1, s, "k", a, 200 * KIB, NULL), 0);
	po.expect_version = v1.str;
	cr_assert_eq(kvs_put(&v2, s, "k", b, 200 * KIB, &po), 0, "%s", kvs_error_last());
	cr_assert_str_neq(v1.str, v2.str);
	/* v1 is stale now */
	cr_assert_eq(kvs_put(NULL, s, "k", c, 300 * KIB, &po), KVS_ECONFLICT);
	fx_expect_value(s, "k", b, 200 * KIB);
	free(a); free(b); free(c);
	kvs_close(s);
}

Test(store, create_only_on_existing_key_is_eexists)
{
	kvs_store *s = open_store(NULL);
	kvs_put_options po = KVS_PUT_OPTIONS_INIT;

	po.expect_version = "";
	cr_assert_eq(kvs_put(NULL, s, "c", "one", 3, &po), 0);
	cr_assert_eq(kvs_put(NULL, s, "c", "two", 3, &po), KVS_EEXISTS);
	fx_expect_value(s, "c", (const uint8_t *)"one", 3);
	kvs_close(s);
}

Test(store, expected_version_on_missing_key_is_econflict)
{
	kvs_store *s = open_store(NULL);
	kvs_put_options po = KVS_PUT_OPTIONS_INIT;

	po.expect_version = "12345";
	cr_assert_eq(kvs_put(NULL, s, "nope", "x", 1, &po), KVS_ECONFLICT);
	kvs_close(s);
}

/* ---- racing writers ----------------------------------------------------- */

#define RACE_ROUNDS 12
#define RACE_LEN (300 * KIB)

typedef struct race {
	kvs_backend *main;
	pthread_barrier_t bar;
	kvs_ver base[RACE_ROUNDS];
	int won[RACE_ROUNDS][2];
	volatile int done;
	/* the reader's tally (written by the reader, read with atomics) */
	int ok, absent, errors, torn, late_absent;
	char first_error[512];
	uint32_t seq[4 * RACE_ROUNDS];   /* distinct values read, in order */
	int nseq;
} race;

#define RACE_INITIAL (999u << 8 | 9u)

/* A value that says which round and writer made it: every 8 bytes repeat
 * (round, writer, position). */
static void fill_value(uint8_t *p, size_t n, uint32_t round, uint32_t writer)
{
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint32_t a = round << 8 | writer, b = (uint32_t)(i / 8);
		memcpy(p + i, &a, 4);
		memcpy(p + i + 4, &b, 4);
	}
}

/* Whether p is one complete value of fill_value; its (round, writer) in *who. */
static int check_value(const uint8_t *p, size_t n, uint32_t *who)
{
	uint32_t a0;
	if (n != RACE_LEN)
		return 0;
	memcpy(&a0, p, 4);
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint32_t a, b;
		memcpy(&a, p + i, 4);
		memcpy(&b, p + i + 4, 4);
		if (a != a0 || b != (uint32_t)(i / 8))
			return 0;
	}
	*who = a0;
	return 1;
}

typedef struct rarg { race *r; int id; } rarg;

static void *writer(void *arg)
{
	rarg *ra = arg;
	race *r = ra->r;
	kvs_backend *b;
	kvs_store *s;
	uint8_t *v = malloc(RACE_LEN);

	cr_assert_eq(fx_backend_peer(&b, r->main), 0);
	cr_assert_eq(kvs_open(&s, b, NULL), 0);
	for (int round = 0; round < RACE_ROUNDS; round++) {
		kvs_put_options po = KVS_PUT_OPTIONS_INIT;
		pthread_barrier_wait(&r->bar);   /* base version is set */
		fill_value(v, RACE_LEN, (uint32_t)round, (uint32_t)ra->id);
		po.expect_version = r->base[round].str;
		int rc = kvs_put(NULL, s, "race", v, RACE_LEN, &po);
		r->won[round][ra->id] = rc == 0 ? 1 : rc == KVS_ECONFLICT ? 0 : -1;
		pthread_barrier_wait(&r->bar);   /* round over */
	}
	kvs_close(s);
	free(v);
	return NULL;
}

/*
 * Reads the key as fast as it can, from before its first commit to the end.
 * Every read must be a complete committed value, or KVS_ENOTFOUND while no
 * value was ever read; anything else (a torn value, a missing segment, a
 * corrupt chunk, the key gone again) is counted and fails the test.
 */
static void *reader(void *arg)
{
	race *r = arg;
	kvs_backend *b;
	kvs_store *s;

	cr_assert_eq(fx_backend_peer(&b, r->main), 0);
	cr_assert_eq(kvs_open(&s, b, NULL), 0);
	while (!r->done) {
		void *p = NULL;
		size_t n = 0;
		uint32_t who = 0;
		int rc = kvs_get(&p, &n, NULL, s, "race", NULL);
		if (rc == 0 && !check_value(p, n, &who)) {
			r->torn++;
		} else if (rc == 0) {
			if (r->nseq == 0 || r->seq[r->nseq - 1] != who) {
				if (r->nseq < (int)(sizeof(r->seq) / sizeof(r->seq[0])))
					r->seq[r->nseq] = who;
				r->nseq++;
			}
			__atomic_add_fetch(&r->ok, 1, __ATOMIC_SEQ_CST);
		} else if (rc == KVS_ENOTFOUND && __atomic_load_n(&r->ok, __ATOMIC_SEQ_CST) == 0) {
			__atomic_add_fetch(&r->absent, 1, __ATOMIC_SEQ_CST);
		} else {
			if (rc == KVS_ENOTFOUND)
				r->late_absent++;
			if (r->errors++ == 0)
				snprintf(r->first_error, sizeof(r->first_error), "%s: %s", kvs_strerror(rc),
				         kvs_error_last());
		}
		kvs_free(p);
	}
	kvs_close(s);
	return NULL;
}

/* Wait until the reader has completed `more` more good reads (or 20 s). */
static void await_reads(race *r, int more)
{
	int want = __atomic_load_n(&r->ok, __ATOMIC_SEQ_CST) + more;
	for (int ms = 0; ms < 20000 && __atomic_load_n(&r->ok, __ATOMIC_SEQ_CST) < want; ms++)
		usleep(1000);
}

/*
 * Two conditional writers race each round; a reader reads all the time.
 * Atomic visibility: every read is one complete value that was committed
 * (the initial one, then each round's winner, in commit order) or, before
 * the first commit, KVS_ENOTFOUND; zero read errors, zero torn reads, and a
 * minimum number of good reads so the test cannot pass by not reading.
 *
 * Checked to fail: with put.c changed locally to create a put's segments
 * 3 ms after committing its index (the final seal/flush moved after a
 * usleep(3000) behind the commit), this test fails on the read-error count
 * (the reader meets "segment ... is missing" between the commit and the
 * create); the previous version of this test, which dropped read errors,
 * passed with that change.
 */
Test(store, racing_conditional_puts_have_one_winner_and_no_torn_reads, .timeout = 120)
{
	race r;
	rarg a0 = { &r, 0 }, a1 = { &r, 1 };
	pthread_t w0, w1, rt;
	kvs_store *s;
	uint8_t *v = malloc(RACE_LEN);
	uint32_t committed[RACE_ROUNDS + 1];

	memset(&r, 0, sizeof(r));
	s = open_store(&r.main);
	pthread_barrier_init(&r.bar, NULL, 3);
	pthread_create(&rt, NULL, reader, &r);
	/* let it meet the absent key first */
	for (int ms = 0; ms < 20000 && __atomic_load_n(&r.absent, __ATOMIC_SEQ_CST) == 0; ms++)
		usleep(1000);
	cr_assert_gt(r.absent, 0, "the reader never read the key before its first commit");
	fill_value(v, RACE_LEN, 999, 9);
	cr_assert_eq(kvs_put(&r.base[0], s, "race", v, RACE_LEN, NULL), 0);
	committed[0] = RACE_INITIAL;
	await_reads(&r, 2);
	pthread_create(&w0, NULL, writer, &a0);
	pthread_create(&w1, NULL, writer, &a1);
	for (int round = 0; round < RACE_ROUNDS; round++) {
		kvs_stat st;
		pthread_barrier_wait(&r.bar);
		pthread_barrier_wait(&r.bar);
		cr_assert_eq(r.won[round][0] + r.won[round][1], 1, "round %d: wins %d+%d", round,
		             r.won[round][0], r.won[round][1]);
		/* the committed value is the winner's */
		void *p;
		size_t n;
		uint32_t a;
		cr_assert_eq(kvs_get(&p, &n, NULL, s, "race", NULL), 0);
		memcpy(&a, p, 4);
		committed[round + 1] = (uint32_t)round << 8 | (uint32_t)(r.won[round][1] ? 1 : 0);
		cr_assert_eq(a, committed[round + 1]);
		kvs_free(p);
		cr_assert_eq(kvs_stat_key(&st, s, "race", NULL), 0);
		if (round + 1 < RACE_ROUNDS)
			r.base[round + 1] = st.version;
		await_reads(&r, 2);   /* the reader goes on reading between rounds too */
	}
	r.done = 1;
	pthread_join(w0, NULL);
	pthread_join(w1, NULL);
	pthread_join(rt, NULL);
	cr_log_info("race: %d good reads, %d absent before the first commit, %d errors, %d torn, "
	            "%d distinct values", r.ok, r.absent, r.errors, r.torn, r.nseq);
	cr_assert_eq(r.errors, 0, "%d reads failed (%d of them: key not found after a commit); "
	             "first: %s", r.errors, r.late_absent, r.first_error);
	cr_assert_eq(r.torn, 0, "%d reads returned bytes of no single value", r.torn);
	cr_assert_geq(r.ok, 2 * (RACE_ROUNDS + 1), "only %d good reads", r.ok);
	/* only committed values, in commit order (a loser's value is never seen) */
	cr_assert_leq(r.nseq, RACE_ROUNDS + 1, "%d distinct values read", r.nseq);
	for (int i = 0, c = 0; i < r.nseq; i++, c++) {
		while (c <= RACE_ROUNDS && committed[c] != r.seq[i])
			c++;
		cr_assert_leq(c, RACE_ROUNDS, "read #%d of a new value: %08x was never committed, or "
		              "not in commit order", i, r.seq[i]);
	}
	pthread_barrier_destroy(&r.bar);
	free(v);
	kvs_close(s);
}

/* ---- corruption --------------------------------------------------------- */

Test(store, flipped_byte_in_any_segment_is_ecorrupt_never_wrong_bytes, .timeout = 120)
{
	if (!is_memory())
		cr_skip_test("needs kvs_mem_corrupt");
	kvs_backend *b;
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_store *s;
	size_t n = 2 * MIB;
	uint8_t *d = make(n, 1, 31);
	char names[64][256];

	cr_assert_eq(fx_backend(&b), 0);
	o.segment_target = 128 * KIB;     /* several segments */
	o.cache_bytes = UINT64_MAX;       /* every get reads the backend */
	cr_assert_eq(kvs_open(&s, b, &o), 0);
	cr_assert_eq(kvs_put(NULL, s, "v", d, n, NULL), 0);
	size_t ns = count_segments(b, names, 64);
	cr_assert_gt(ns, 1);
	for (size_t i = 0; i < ns && i < 64; i++) {
		kvs_object *obj = NULL;
		cr_assert_eq(b->ops->get(b, &obj, names[i]), 0);
		for (size_t e = 0; e < obj->ndata; e += (obj->ndata > 3 ? obj->ndata / 3 : 1)) {
			size_t len = obj->data[e].len;
			size_t offs[] = { 0, 1, len / 2, len - 1 };
			for (size_t k = 0; k < 4; k++) {
				void *p = NULL;
				size_t pl;
				cr_assert_eq(kvs_mem_corrupt(b, names[i], obj->data[e].key, offs[k]), 0);
				int rc = kvs_get(&p, &pl, NULL, s, "v", NULL);
				cr_assert_eq(rc, KVS_ECORRUPT, "segment %s entry %zu offset %zu: get gave %d",
				             names[i], e, offs[k], rc);
				cr_assert_null(p);
				cr_assert(strstr(kvs_error_last(), names[i]) != NULL, "detail: %s",
				          kvs_error_last());
				cr_assert_eq(kvs_mem_corrupt(b, names[i], obj->data[e].key, offs[k]), 0);
			}
		}
		kvs_object_free(obj);
	}
	fx_expect_value(s, "v", d, n);
	free(d);
	kvs_close(s);
}

Test(store, flipped_byte_in_manifest_is_ecorrupt)
{
	if (!is_memory())
		cr_skip_test("needs kvs_mem_corrupt");
	kvs_backend *b;
	kvs_store *s = open_store(&b);
	size_t n = MIB;
	uint8_t *d = make(n, 1, 41);
	const char *idx = "kvs.default.i-m";
	kvs_object *obj = NULL;

	cr_assert_eq(kvs_put(NULL, s, "m", d, n, NULL), 0);
	cr_assert_eq(b->ops->get(b, &obj, idx), 0, "%s", kvs_error_last());
	size_t len = kvs_object_data(obj, "manifest")->len;
	for (size_t off = 0; off < len; off += 1 + len / 40) {
		void *p = NULL;
		size_t pl;
		cr_assert_eq(kvs_mem_corrupt(b, idx, "manifest", off), 0);
		cr_assert_eq(kvs_get(&p, &pl, NULL, s, "m", NULL), KVS_ECORRUPT, "offset %zu", off);
		cr_assert_eq(kvs_mem_corrupt(b, idx, "manifest", off), 0);
	}
	kvs_object_free(obj);
	fx_expect_value(s, "m", d, n);
	free(d);
	kvs_close(s);
}

Test(store, garbage_or_truncated_manifest_is_ecorrupt)
{
	kvs_backend *b;
	kvs_store *s = open_store(&b);
	kvs_object *obj = NULL;
	uint8_t *d = make(MIB, 1, 51);

	cr_assert_eq(kvs_put(NULL, s, "g", d, MIB, NULL), 0);
	cr_assert_eq(b->ops->get(b, &obj, "kvs.default.i-g"), 0);
	kvs_blob *m = (kvs_blob *)kvs_object_data(obj, "manifest");
	for (size_t cut = 0; cut < m->len; cut += 1 + m->len / 16) {
		void *p = NULL;
		size_t pl, keep = m->len;
		m->len = cut;
		cr_assert_eq(b->ops->replace(b, NULL, obj), 0, "%s", kvs_error_last());
		m->len = keep;
		kvs_object *cur = NULL;
		cr_assert_eq(b->ops->get(b, &cur, "kvs.default.i-g"), 0);
		kvs_object_set_rv(obj, cur->resource_version);
		kvs_object_free(cur);
		cr_assert_eq(kvs_get(&p, &pl, NULL, s, "g", NULL), KVS_ECORRUPT, "cut at %zu", cut);
	}
	fx_random(m->data, m->len, 3);
	cr_assert_eq(b->ops->replace(b, NULL, obj), 0);
	{
		void *p = NULL;
		size_t pl;
		cr_assert_eq(kvs_get(&p, &pl, NULL, s, "g", NULL), KVS_ECORRUPT);
	}
	kvs_object_free(obj);
	free(d);
	kvs_close(s);
}

Test(store, missing_segment_is_enotfound_naming_it)
{
	kvs_backend *b;
	kvs_options o = KVS_OPTIONS_INIT;
	kvs_store *s;
	char names[8][256];
	uint8_t *d = make(MIB, 1, 61);
	void *p = NULL;
	size_t pl;

	cr_assert_eq(fx_backend(&b), 0);
	o.cache_bytes = UINT64_MAX;
	cr_assert_eq(kvs_open(&s, b, &o), 0);
	cr_assert_eq(kvs_put(NULL, s, "gone", d, MIB, NULL), 0);
	cr_assert_geq(count_segments(b, names, 8), 1);
	cr_assert_eq(b->ops->remove(b, names[0], NULL, NULL), 0);
	cr_assert_eq(kvs_get(&p, &pl, NULL, s, "gone", NULL), KVS_ENOTFOUND);
	cr_assert(strstr(kvs_error_last(), names[0]) != NULL, "%s", kvs_error_last());
	free(d);
	kvs_close(s);
}

/* ---- delete, stat, list ------------------------------------------------- */

Test(store, get_of_missing_key_is_enotfound)
{
	kvs_store *s = open_store(NULL);
	void *p;
	size_t n;
	cr_assert_eq(kvs_get(&p, &n, NULL, s, "absent", NULL), KVS_ENOTFOUND);
	kvs_close(s);
}

Test(store, delete_removes_key_and_honours_expected_version)
{
	kvs_store *s = open_store(NULL);
	kvs_ver v;
	void *p;
	size_t n;

	kvs_delete_options dopts = KVS_DELETE_OPTIONS_INIT;

	cr_assert_eq(kvs_put(&v, s, "d", "abc", 3, NULL), 0);
	dopts.expect_version = "999999";
	cr_assert_eq(kvs_delete(s, "d", &dopts), KVS_ECONFLICT);
	dopts.expect_version = v.str;
	cr_assert_eq(kvs_delete(s, "d", &dopts), 0, "%s", kvs_error_last());
	cr_assert_eq(kvs_get(&p, &n, NULL, s, "d", NULL), KVS_ENOTFOUND);
	cr_assert_eq(kvs_delete(s, "d", NULL), KVS_ENOTFOUND);
	kvs_close(s);
}

Test(store, stat_describes_value_without_reading_segments)
{
	kvs_backend *b;
	kvs_store *s = open_store(&b);
	uint8_t *d = make(2 * MIB, 1, 71);
	kvs_stat st;
	kvs_ver v;

	cr_assert_eq(kvs_put(&v, s, "st", d, 2 * MIB, NULL), 0);
	cr_assert_eq(kvs_put(&v, s, "st", d, 2 * MIB, NULL), 0);
	if (is_memory())
		kvs_mem_reset_stats(b);
	cr_assert_eq(kvs_stat_key(&st, s, "st", NULL), 0);
	if (is_memory()) {
		kvs_mem_stats ms;
		kvs_mem_get_stats(b, &ms);
		cr_assert_eq(ms.calls[KVS_MEM_GET], 1);
	}
	cr_assert_str_eq(st.version.str, v.str);
	cr_assert_eq(st.length, 2 * MIB);
	cr_assert_eq(st.generation, 2);
	cr_assert_eq(st.is_inline, 0);
	cr_assert_gt(st.chunks, 1);
	cr_assert_geq(st.segments, 1);
	cr_assert_gt(st.stored_bytes, 0);
	cr_assert_geq(st.segment_bytes, st.stored_bytes);
	cr_assert_eq(kvs_put(NULL, s, "small", "x", 1, NULL), 0);
	cr_assert_eq(kvs_stat_key(&st, s, "small", NULL), 0);
	cr_assert_eq(st.is_inline, 1);
	cr_assert_eq(st.length, 1);
	free(d);
	kvs_close(s);
}

Test(store, list_keys_pages_and_filters_by_prefix)
{
	kvs_store *s = open_store(NULL);
	char key[64];
	int seen[30] = { 0 }, others = 0;
	char *tok = NULL;

	for (int i = 0; i < 30; i++) {
		snprintf(key, sizeof(key), "%s/%02d", i % 3 ? "app" : "zz", i);
		cr_assert_eq(kvs_put(NULL, s, key, key, strlen(key), NULL), 0);
	}
	do {
		kvs_list *l = NULL;
		kvs_list_options lo = KVS_LIST_OPTIONS_INIT;
		lo.prefix = "app/";
		lo.limit = 4;
		lo.token = tok;
		cr_assert_eq(kvs_list_keys(&l, s, &lo), 0, "%s", kvs_error_last());
		cr_assert_leq(l->count, 4);
		for (size_t i = 0; i < l->count; i++) {
			int n;
			if (sscanf(l->entries[i].key, "app/%d", &n) == 1 && n >= 0 && n < 30) {
				seen[n]++;
				cr_assert_eq(l->entries[i].length, strlen(l->entries[i].key));
			} else {
				others++;
			}
		}
		free(tok);
		tok = l->next ? strdup(l->next) : NULL;
		kvs_list_free(l);
	} while (tok);
	cr_assert_eq(others, 0);
	for (int i = 0; i < 30; i++)
		cr_assert_eq(seen[i], i % 3 ? 1 : 0, "key %d seen %d times", i, seen[i]);
	kvs_close(s);
}

Test(store, odd_and_long_keys_roundtrip)
{
	kvs_store *s = open_store(NULL);
	char longkey[KVS_KEY_MAX + 1];

	memset(longkey, 'A', KVS_KEY_MAX);
	longkey[KVS_KEY_MAX] = '\0';
	const char *keys[] = { "a", "A", "with space", "ünï/cødé", "-", "a.b", longkey };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		cr_assert_eq(kvs_put(NULL, s, keys[i], keys[i], strlen(keys[i]), NULL), 0, "%s",
		             kvs_error_last());
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		fx_expect_value(s, keys[i], (const uint8_t *)keys[i], strlen(keys[i]));
	longkey[10] = '\n';
	cr_assert_eq(kvs_put(NULL, s, longkey, "x", 1, NULL), KVS_EINVAL);
	cr_assert_eq(kvs_put(NULL, s, "", "x", 1, NULL), KVS_EINVAL);
	kvs_close(s);
}

Test(store, open_rejects_bad_options)
{
	kvs_backend *b;
	kvs_store *s = NULL;
	kvs_options o = KVS_OPTIONS_INIT;

	cr_assert_eq(fx_backend(&b), 0);
	o.name = "Bad_Name";
	cr_assert_eq(kvs_open(&s, b, &o), KVS_EINVAL);
	o = (kvs_options)KVS_OPTIONS_INIT;
	o.chunk_avg = 60000;
	cr_assert_eq(kvs_open(&s, b, &o), KVS_EINVAL);
	o = (kvs_options)KVS_OPTIONS_INIT;
	o.inline_max = 2 * MIB;
	cr_assert_eq(kvs_open(&s, b, &o), KVS_EINVAL);
	o = (kvs_options)KVS_OPTIONS_INIT;
	o.chunk_max = 2 * MIB;
	cr_assert_eq(kvs_open(&s, b, &o), KVS_EINVAL);
	cr_assert_null(s);
	kvs_backend_free(b);
}

static int cancel_cb(void *ctx, uint64_t done, uint64_t total)
{
	(void)total;
	*(uint64_t *)ctx = done;
	return done > 0;
}

Test(store, progress_callback_can_cancel_a_put_leaving_old_value)
{
	kvs_store *s = open_store(NULL);
	uint8_t *d = make(9 * MIB, 0, 81);
	uint64_t seen = 0;
	kvs_put_options po = KVS_PUT_OPTIONS_INIT;

	cr_assert_eq(kvs_put(NULL, s, "p", "old", 3, NULL), 0);
	po.progress = cancel_cb;
	po.progress_ctx = &seen;
	cr_assert_eq(kvs_put(NULL, s, "p", d, 9 * MIB, &po), KVS_ECANCELED);
	cr_assert_gt(seen, 0);
	fx_expect_value(s, "p", (const uint8_t *)"old", 3);
	free(d);
	kvs_close(s);
}

/* Every commit writes a fresh random commit id into the index (how a writer
 * recognises its own commit after a lost response). */
static void commit_id_of(char out[17], kvs_backend *b, const char *index)
{
	kvs_object *obj = NULL;
	cr_assert_eq(b->ops->get(b, &obj, index), 0, "%s", kvs_error_last());
	const char *id = kvs_object_annotation(obj, "kvsplit.io/commit");
	cr_assert(id, "no kvsplit.io/commit annotation");
	cr_assert_eq(strlen(id), 16, "commit id \"%s\"", id);
	cr_assert_eq(strspn(id, "0123456789abcdef"), 16, "commit id \"%s\"", id);
	memcpy(out, id, 17);
	kvs_object_free(obj);
}

Test(store, each_commit_carries_a_fresh_commit_id)
{
	kvs_backend *b;
	kvs_store *s = open_store(&b);
	char id1[17], id2[17];

	cr_assert_eq(kvs_put(NULL, s, "cid", "same", 4, NULL), 0, "%s", kvs_error_last());
	commit_id_of(id1, b, "kvs.default.i-cid");
	cr_assert_eq(kvs_put(NULL, s, "cid", "same", 4, NULL), 0, "%s", kvs_error_last());
	commit_id_of(id2, b, "kvs.default.i-cid");
	cr_assert_str_neq(id1, id2, "two commits share the id %s", id1);
	kvs_close(s);
}
