/*
 * test_commit.c — suite "commit": acknowledged means readable, whatever
 * already sits under the names a put writes or reuses.
 *
 * A segment's name addresses its content (docs/format.md §3), so a put
 * that meets AlreadyExists may reuse the object it found, and a re-put
 * reuses the segments of its base. Both used to be trusted blindly: an
 * object planted or damaged under a segment's name, or a base segment
 * deleted by hand, gave a put that was acknowledged but could not be read.
 * Here every such put must either succeed and read back exactly, or fail
 * cleanly and commit nothing.
 *
 * Objects are planted and deleted through the backend vtable, so the suite
 * runs unchanged on the in-memory backend and on the API test server; only
 * the request-count tests need the in-memory backend's counters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "support/fixture.h"

#define KIB 1024u
#define MIB (1024u * 1024u)
#define SEG_SELECTOR "kvsplit.io/store=default,kvsplit.io/role=segment"
#define MAX_SEGS 64

static int is_memory(void)
{
	return strcmp(fx_backend_kind(), "memory") == 0;
}

static kvs_store *open_on(kvs_backend *b)
{
	kvs_store *s = NULL;
	kvs_options o = KVS_OPTIONS_INIT;

	o.cache_bytes = UINT64_MAX;   /* every get reads the backend (0 = default) */
	o.segment_target = 192 * KIB; /* a few segments per value */
	/* These count the objects and requests of the commit protocol itself, and
	 * fsck the key after damaging its base: an older version kept in history
	 * would add an object per put and report that damage too (suite history). */
	o.history = KVS_HISTORY_OFF;
	cr_assert_eq(kvs_open(&s, b, &o), 0, "open: %s", kvs_error_last());
	return s;
}

static kvs_store *open_store(kvs_backend **bout)
{
	kvs_backend *b = NULL;

	cr_assert_eq(fx_backend(&b), 0, "backend: %s", kvs_error_last());
	*bout = b;
	return open_on(b);
}

static uint8_t *make(size_t n, uint64_t seed)
{
	uint8_t *d = malloc(n);

	cr_assert(d);
	fx_json((char *)d, n, seed);
	return d;
}

/* The segment objects of the store, full (data included), at most MAX_SEGS. */
static size_t segments(kvs_backend *b, kvs_object **out)
{
	kvs_object_list *l = NULL;
	size_t n = 0;

	cr_assert_eq(b->ops->list(b, &l, SEG_SELECTOR, MAX_SEGS, NULL, 0), 0, "list: %s",
	             kvs_error_last());
	cr_assert_null(l->next, "more than %d segments", MAX_SEGS);
	for (size_t i = 0; i < l->count; i++) {
		cr_assert_eq(kvs_object_dup(&out[n], l->items[i]), 0);
		n++;
	}
	kvs_object_list_free(l);
	return n;
}

static void free_objects(kvs_object **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kvs_object_free(v[i]);
}

/* The segments a put of d[0..n) creates in an empty store: from a scratch
 * cluster (names and bytes are a function of the value and the options). */
static size_t segments_of_value(kvs_object **out, const uint8_t *d, size_t n)
{
	kvs_backend *b;
	kvs_store *s = open_store(&b);

	cr_assert_eq(kvs_put(NULL, s, "scratch", d, n, NULL), 0, "put: %s", kvs_error_last());
	size_t ns = segments(b, out);
	kvs_close(s);
	cr_assert_gt(ns, 1, "the value should take several segments");
	return ns;
}

static void expect_value(kvs_store *s, const char *key, const uint8_t *want, size_t n,
                         const char *what)
{
	void *got = NULL;
	size_t len = 0;
	int rc = kvs_get(&got, &len, NULL, s, key, NULL);

	cr_assert_eq(rc, 0, "%s: the put was acknowledged but get fails: %s", what,
	             kvs_error_last());
	cr_assert_eq(len, n, "%s: %zu bytes, want %zu", what, len, n);
	cr_assert(memcmp(got, want, n) == 0, "%s: bytes differ", what);
	kvs_free(got);
}

/* Problems fsck finds in one key (all data read). */
static uint64_t fsck_problems(kvs_store *s, const char *key)
{
	kvs_fsck_options fo = KVS_FSCK_OPTIONS_INIT;
	kvs_fsck_report r;

	fo.key = key;
	cr_assert_eq(kvs_fsck(&r, s, &fo), 0, "fsck: %s", kvs_error_last());
	return r.problems;
}

/* Every segment of the store is immutable. */
static void expect_all_immutable(kvs_backend *b, const char *what)
{
	kvs_object *v[MAX_SEGS];
	size_t n = segments(b, v);

	for (size_t i = 0; i < n; i++)
		cr_assert(v[i]->immutable, "%s: segment %s is not immutable", what, v[i]->name);
	free_objects(v, n);
}

/* ------------------------------------------------------------------------ */
/* Objects planted under the name of a segment the put will create           */

typedef enum plant {
	WRONG_BYTES,            /* one blob byte flipped; immutable, labelled */
	WRONG_BYTES_MUTABLE,    /* the same, not immutable */
	RIGHT_BYTES_MUTABLE,    /* our bytes exactly, not immutable */
	WRONG_BYTES_NO_LABELS,  /* flipped byte, no labels at all */
	RIGHT_BYTES_NO_LABELS,  /* our bytes, no labels */
	WRONG_ROLE_LABEL,       /* our bytes, kvsplit.io/role=index */
	MISSING_ENTRY,          /* one chunk left out (wrong size) */
	TRUNCATED_ENTRY,        /* one blob one byte short (wrong size) */
	EXTRA_ENTRY,            /* our entries plus one more */
	EMPTY,                  /* no data at all, labelled, immutable */
	EXACT,                  /* the segment itself (as a crashed put leaves it) */
	NPLANTS
} plant;

static const char *const plant_name[NPLANTS] = {
	"wrong bytes", "wrong bytes, mutable", "right bytes, mutable", "wrong bytes, no labels",
	"right bytes, no labels", "wrong role label", "missing entry", "truncated entry",
	"extra entry", "empty", "the segment"
};

/* A copy of segment `seg` damaged as `how` says. */
static kvs_object *planted(const kvs_object *seg, plant how)
{
	kvs_object *o = kvs_object_new(seg->name);
	size_t victim = seg->ndata / 2;

	cr_assert(o);
	o->immutable = !(how == WRONG_BYTES_MUTABLE || how == RIGHT_BYTES_MUTABLE);
	if (how != WRONG_BYTES_NO_LABELS && how != RIGHT_BYTES_NO_LABELS) {
		for (size_t i = 0; i < seg->nlabels; i++)
			cr_assert_eq(kvs_object_set_label(o, seg->labels[i].key, seg->labels[i].value), 0);
		if (how == WRONG_ROLE_LABEL)
			cr_assert_eq(kvs_object_set_label(o, "kvsplit.io/role", "index"), 0);
	}
	for (size_t i = 0; i < seg->ndata && how != EMPTY; i++) {
		const kvs_blob *e = &seg->data[i];
		size_t len = e->len;
		uint8_t *p;
		if (i == victim && how == MISSING_ENTRY)
			continue;
		if (i == victim && how == TRUNCATED_ENTRY)
			len--;
		p = malloc(len ? len : 1);
		cr_assert(p);
		memcpy(p, e->data, len);
		if (i == victim && (how == WRONG_BYTES || how == WRONG_BYTES_MUTABLE ||
		                    how == WRONG_BYTES_NO_LABELS))
			p[len / 2] ^= 0x20;
		cr_assert_eq(kvs_object_add_data_owned(o, e->key, p, len), 0);
	}
	if (how == EXTRA_ENTRY)
		cr_assert_eq(kvs_object_add_data(o, "0123456789abcdef0123456789abcdef", "\0zz", 3), 0);
	return o;
}

/*
 * Plant `how` under the name of segment `which` of the value, then put the
 * value. The put either succeeds and the value reads back exactly (and fsck
 * finds nothing wrong with the key, and every segment is immutable), or it
 * fails with a clean error that names the object, committing nothing.
 * Returns the put's code.
 */
static int put_over_plant(plant how, size_t which, int stream)
{
	size_t n = 3 * MIB;
	uint8_t *d = make(n, 7);
	kvs_object *segs[MAX_SEGS];
	size_t ns = segments_of_value(segs, d, n);
	kvs_backend *b;
	kvs_store *s = open_store(&b);
	char what[256];
	int rc;

	cr_assert_lt(which, ns);
	snprintf(what, sizeof(what), "planted %s under %s", plant_name[how], segs[which]->name);
	kvs_object *p = planted(segs[which], how);
	cr_assert_eq(b->ops->create(b, NULL, p), 0, "%s: %s", what, kvs_error_last());
	kvs_object_free(p);

	if (stream) {
		char path[] = "/tmp/kvs-commit-XXXXXX";
		int fd = mkstemp(path);
		cr_assert_geq(fd, 0);
		unlink(path);
		cr_assert_eq(write(fd, d, n), (ssize_t)n);
		cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
		rc = kvs_put_fd(NULL, s, "k", fd, NULL);
		close(fd);
	} else {
		rc = kvs_put(NULL, s, "k", d, n, NULL);
	}
	if (rc == 0) {
		expect_value(s, "k", d, n, what);
		cr_assert_eq(fsck_problems(s, "k"), 0, "%s: fsck finds problems in the key", what);
		expect_all_immutable(b, what);
	} else {
		void *got = NULL;
		size_t len;
		cr_assert_eq(rc, KVS_ECORRUPT, "%s: put failed with %s: %s", what, kvs_strerror(rc),
		             kvs_error_last());
		cr_assert(strstr(kvs_error_last(), segs[which]->name), "%s: the error does not name "
		          "the object: %s", what, kvs_error_last());
		cr_assert_eq(kvs_get(&got, &len, NULL, s, "k", NULL), KVS_ENOTFOUND,
		             "%s: a failed put committed something", what);
	}
	free_objects(segs, ns);
	free(d);
	kvs_close(s);
	return rc;
}

Test(commit, planted_immutable_object_with_wrong_bytes_is_refused, .timeout = 60)
{
	/* Ours by name and immutable, but not the bytes the name addresses:
	 * it cannot be fixed in place, and deleting it could break an index
	 * that reads its intact chunks, so the put refuses. */
	cr_assert_eq(put_over_plant(WRONG_BYTES, 0, 0), KVS_ECORRUPT);
	cr_assert_eq(put_over_plant(WRONG_BYTES, 1, 1), KVS_ECORRUPT);
}

Test(commit, planted_mutable_object_is_replaced_by_the_segment, .timeout = 60)
{
	cr_assert_eq(put_over_plant(WRONG_BYTES_MUTABLE, 0, 0), 0);
	cr_assert_eq(put_over_plant(RIGHT_BYTES_MUTABLE, 1, 0), 0);
	cr_assert_eq(put_over_plant(WRONG_BYTES_MUTABLE, 1, 1), 0);
}

Test(commit, planted_object_without_our_labels_gets_them, .timeout = 60)
{
	/* Right bytes: relabelled in place. Wrong bytes and immutable: refused. */
	cr_assert_eq(put_over_plant(RIGHT_BYTES_NO_LABELS, 0, 0), 0);
	cr_assert_eq(put_over_plant(WRONG_ROLE_LABEL, 1, 0), 0);
	cr_assert_eq(put_over_plant(WRONG_BYTES_NO_LABELS, 0, 0), KVS_ECORRUPT);
}

Test(commit, planted_object_of_the_wrong_size_is_refused, .timeout = 60)
{
	cr_assert_eq(put_over_plant(MISSING_ENTRY, 0, 0), KVS_ECORRUPT);
	cr_assert_eq(put_over_plant(TRUNCATED_ENTRY, 1, 0), KVS_ECORRUPT);
	cr_assert_eq(put_over_plant(EMPTY, 1, 1), KVS_ECORRUPT);
	cr_assert_eq(put_over_plant(EXTRA_ENTRY, 0, 0), KVS_ECORRUPT);
}

/* ------------------------------------------------------------------------ */
/* Base segments deleted or damaged by hand, then a re-put with a small edit */

typedef enum damage {
	DELETED,            /* removed by hand */
	REPLACED_WRONG,     /* replaced by an immutable, labelled object of other bytes */
	REPLACED_UNLABELLED,/* replaced by other bytes without our labels */
	REPLACED_SHORT      /* replaced by a labelled object missing an entry (other size) */
} damage;
static const char *const damage_name[] = {
	"deleted", "replaced with wrong bytes", "replaced unlabelled", "replaced missing an entry"
};

/*
 * Put a value, damage segment `which` of it by hand, re-put it with a small
 * edit far from that segment (so its chunks would be reused), and check
 * the outcome: 0 and the value reads back, or (returned to the caller) a
 * clean KVS_ECORRUPT naming the object with the old version still
 * committed.
 */
static int reput_after_base_damage(damage how, int stream, size_t which)
{
	size_t n = 3 * MIB;
	uint8_t *d = make(n, 9);
	kvs_backend *b;
	kvs_store *s = open_store(&b);
	kvs_object *segs[MAX_SEGS];
	kvs_ver v1, v2;
	char what[256];
	int rc;

	cr_assert_eq(kvs_put(&v1, s, "k", d, n, NULL), 0, "%s", kvs_error_last());
	size_t ns = segments(b, segs);
	cr_assert_gt(ns, which);
	snprintf(what, sizeof(what), "base segment %s %s, then a %s re-put", segs[which]->name,
	         damage_name[how], stream ? "streamed" : "buffer");
	cr_assert_eq(b->ops->remove(b, segs[which]->name, NULL, NULL), 0, "%s", kvs_error_last());
	if (how != DELETED) {
		kvs_object *p = planted(segs[which], how == REPLACED_WRONG ? WRONG_BYTES :
		                        how == REPLACED_UNLABELLED ? WRONG_BYTES_NO_LABELS :
		                        MISSING_ENTRY);
		cr_assert_eq(b->ops->create(b, NULL, p), 0, "%s", kvs_error_last());
		kvs_object_free(p);
	}
	/* a small edit near the end: the damaged segment's chunks are reused */
	memcpy(d + n - 5000, "EDITED-EDITED-EDITED", 20);
	if (stream) {
		char path[] = "/tmp/kvs-commit-XXXXXX";
		int fd = mkstemp(path);
		cr_assert_geq(fd, 0);
		unlink(path);
		cr_assert_eq(write(fd, d, n), (ssize_t)n);
		cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
		rc = kvs_put_fd(&v2, s, "k", fd, NULL);
		close(fd);
	} else {
		rc = kvs_put(&v2, s, "k", d, n, NULL);
	}
	if (rc == 0 && how == REPLACED_WRONG) {
		/* the gap of a check by metadata (design.md "Put"): reused, then
		 * found by the read and by fsck */
		void *got = NULL;
		size_t len = 0;
		cr_assert_eq(kvs_get(&got, &len, NULL, s, "k", NULL), KVS_ECORRUPT,
		             "%s: the read does not find the wrong bytes", what);
		cr_assert_gt(fsck_problems(s, "k"), 0, "%s: fsck does not find the wrong bytes", what);
	} else if (rc == 0) {
		expect_value(s, "k", d, n, what);
		cr_assert_eq(fsck_problems(s, "k"), 0, "%s: fsck finds problems in the key", what);
	} else {
		kvs_stat st;
		cr_assert_eq(rc, KVS_ECORRUPT, "%s: put failed with %s: %s", what, kvs_strerror(rc),
		             kvs_error_last());
		cr_assert(strstr(kvs_error_last(), segs[which]->name), "%s: the error does not name "
		          "the object: %s", what, kvs_error_last());
		cr_assert_eq(kvs_stat_key(&st, s, "k", NULL), 0, "%s", kvs_error_last());
		cr_assert_str_eq(st.version.str, v1.str, "%s: a failed put committed something", what);
	}
	free_objects(segs, ns);
	free(d);
	kvs_close(s);
	return rc;
}

Test(commit, reput_over_a_base_segment_deleted_by_hand_reads_back, .timeout = 60)
{
	/* The put holds the bytes (it is putting them): it writes them again. */
	cr_assert_eq(reput_after_base_damage(DELETED, 0, 0), 0);
	cr_assert_eq(reput_after_base_damage(DELETED, 1, 1), 0);
	cr_assert_eq(reput_after_base_damage(DELETED, 0, 2), 0);
}

Test(commit, reput_over_a_base_segment_replaced_without_labels_never_references_it,
     .timeout = 60)
{
	/* Not ours by its metadata: not reused. Packed again, the chunks it held
	 * make a segment of the same name, which meets the object and reads it
	 * back whole: replaced in place (mutable or unlabelled) or refused. */
	reput_after_base_damage(REPLACED_UNLABELLED, 0, 0);
	reput_after_base_damage(REPLACED_UNLABELLED, 1, 1);
	reput_after_base_damage(REPLACED_SHORT, 0, 0);
	reput_after_base_damage(REPLACED_SHORT, 1, 2);
}

Test(commit, reput_over_a_base_segment_replaced_by_wrong_bytes_is_found_by_reads,
     .timeout = 60)
{
	/* Immutable, labelled as ours, of the recorded size: the metadata check
	 * cannot tell it from the segment (design.md "Put"). The read and fsck
	 * find it (KVS_ECORRUPT), never wrong bytes returned. */
	reput_after_base_damage(REPLACED_WRONG, 0, 0);
	reput_after_base_damage(REPLACED_WRONG, 1, 1);
}

/* ------------------------------------------------------------------------ */
/* What the checks cost (docs/design.md "Put"), in backend calls            */

static uint64_t calls_of(kvs_backend *b, uint64_t out[KVS_MEM_NCALLS])
{
	kvs_mem_stats st;

	kvs_mem_get_stats(b, &st);
	for (int i = 0; i < KVS_MEM_NCALLS; i++)
		out[i] = st.calls[i];
	return st.bytes_read;
}

Test(commit, reput_reads_each_reused_segments_metadata_once_and_writes_none)
{
	if (!is_memory())
		cr_skip_test("counts calls of the in-memory backend");
	size_t n = 3 * MIB;
	uint8_t *d = make(n, 11);
	kvs_backend *b;
	kvs_store *s = open_store(&b);
	kvs_object *segs[MAX_SEGS];
	uint64_t c0[KVS_MEM_NCALLS], c1[KVS_MEM_NCALLS];

	cr_assert_eq(kvs_put(NULL, s, "k", d, n, NULL), 0, "%s", kvs_error_last());
	size_t ns = segments(b, segs);
	uint64_t r0 = calls_of(b, c0);
	cr_assert_eq(kvs_put(NULL, s, "k", d, n, NULL), 0, "%s", kvs_error_last());
	uint64_t r1 = calls_of(b, c1);
	/* the base index, then one metadata read per reused segment (no data);
	 * no touch, no create */
	cr_assert_eq(c1[KVS_MEM_GET] - c0[KVS_MEM_GET], 1);
	cr_assert_eq(c1[KVS_MEM_HEAD] - c0[KVS_MEM_HEAD], ns);
	cr_assert_lt(r1 - r0, 64 * KIB, "a re-put of an unchanged 3 MiB value read %llu data bytes",
	             (unsigned long long)(r1 - r0));
	cr_assert_eq(c1[KVS_MEM_ANNOTATE] - c0[KVS_MEM_ANNOTATE], 0);
	cr_assert_eq(c1[KVS_MEM_CREATE] - c0[KVS_MEM_CREATE], 0);
	cr_assert_eq(c1[KVS_MEM_REPLACE] - c0[KVS_MEM_REPLACE], 1);
	free_objects(segs, ns);
	free(d);
	kvs_close(s);
}

Test(commit, already_exists_on_a_good_segment_costs_a_touch_and_one_get)
{
	if (!is_memory())
		cr_skip_test("counts calls of the in-memory backend");
	size_t n = 3 * MIB;
	uint8_t *d = make(n, 13);
	kvs_object *segs[MAX_SEGS];
	size_t ns = segments_of_value(segs, d, n);
	kvs_backend *b;
	kvs_store *s = open_store(&b);
	uint64_t c0[KVS_MEM_NCALLS], c1[KVS_MEM_NCALLS];

	/* the orphans of a put killed before its commit */
	for (size_t i = 0; i < ns; i++) {
		kvs_object *p = planted(segs[i], EXACT);
		cr_assert_eq(b->ops->create(b, NULL, p), 0, "%s", kvs_error_last());
		kvs_object_free(p);
	}
	uint64_t r0 = calls_of(b, c0);
	cr_assert_eq(kvs_put(NULL, s, "k", d, n, NULL), 0, "%s", kvs_error_last());
	uint64_t r1 = calls_of(b, c1);
	cr_assert_eq(c1[KVS_MEM_HEAD] - c0[KVS_MEM_HEAD], 0);
	/* the full check where it is needed: each planted object read back whole */
	uint64_t stored = 0;
	for (size_t i = 0; i < ns; i++)
		stored += segs[i]->data_bytes;
	cr_assert_geq(r1 - r0, stored, "AlreadyExists read back %llu bytes of %llu stored",
	              (unsigned long long)(r1 - r0), (unsigned long long)stored);
	cr_assert_eq(c1[KVS_MEM_CREATE] - c0[KVS_MEM_CREATE], ns + 1);   /* + the index */
	cr_assert_eq(c1[KVS_MEM_ANNOTATE] - c0[KVS_MEM_ANNOTATE], ns);
	cr_assert_eq(c1[KVS_MEM_GET] - c0[KVS_MEM_GET], 1 + ns);         /* base, then one each */
	cr_assert_eq(c1[KVS_MEM_REPLACE] - c0[KVS_MEM_REPLACE], 0);
	expect_value(s, "k", d, n, "orphans reused");
	free_objects(segs, ns);
	free(d);
	kvs_close(s);
}

/* ---- late commits (design.md "The pause hole closed") ------------------ */

#include "segwrite.h"   /* KVS__ANN_CHECKED, kvs__index_late */

static kvs_object *index_of(kvs_backend *b, kvs_store *s, const char *key)
{
	char name[KVS__NAME_BUF];
	size_t klen;
	kvs_object *idx = NULL;

	cr_assert_eq(kvs__key_to_index(name, s, key, &klen), 0);
	cr_assert_eq(b->ops->get(b, &idx, name), 0, "get %s: %s", name, kvs_error_last());
	return idx;
}

/*
 * On both backends: a put's index carries T_check (the server time of its
 * last touch check) and the backend reports the server time of the commit
 * (the API server's managedFields), so the next writer sees it on time —
 * and, on the in-memory backend, an on-time put touches nothing after its
 * commit.
 */
Test(commit, an_on_time_commit_records_its_touch_check_and_touches_nothing_after, .timeout = 60)
{
	size_t n = 1 * MIB;
	uint8_t *d = make(n, 21);
	kvs_backend *b;
	kvs_store *s = open_store(&b);
	uint64_t c0[KVS_MEM_NCALLS], c1[KVS_MEM_NCALLS];

	if (is_memory())
		calls_of(b, c0);
	cr_assert_eq(kvs_put(NULL, s, "k", d, n, NULL), 0, "%s", kvs_error_last());
	if (is_memory()) {
		calls_of(b, c1);
		cr_assert_eq(c1[KVS_MEM_ANNOTATE] - c0[KVS_MEM_ANNOTATE], 0, "an on-time put touched");
	}
	kvs_object *idx = index_of(b, s, "k");
	const char *chk = kvs_object_annotation(idx, KVS__ANN_CHECKED);
	cr_assert(chk && *chk >= '0' && *chk <= '9', "T_check is %s", chk ? chk : "(absent)");
	cr_assert_gt(idx->updated_ms, 0, "the backend gave no server time of the commit");
	cr_assert_leq(strtoll(chk, NULL, 10), idx->updated_ms + 999);
	cr_assert_eq(kvs__index_late(s, idx), 0, "an on-time commit is taken as late");
	kvs_object_free(idx);
	free(d);
	kvs_close(s);
}

/*
 * An index that does not say when its writer last checked (written before
 * T_check was recorded, or by another program) protects nothing: a re-put
 * touches every segment it reuses from it, and still reads back.
 */
Test(commit, reput_over_an_index_without_touch_check_touches_what_it_reuses, .timeout = 60)
{
	if (!is_memory())
		cr_skip_test("counts calls of the in-memory backend");
	size_t n = 3 * MIB;
	uint8_t *d = make(n, 23);
	kvs_backend *b;
	kvs_store *s = open_store(&b);
	kvs_object *segs[MAX_SEGS];
	uint64_t c0[KVS_MEM_NCALLS], c1[KVS_MEM_NCALLS];
	kvs_kv kv = { (char *)KVS__ANN_CHECKED, NULL };

	cr_assert_eq(kvs_put(NULL, s, "k", d, n, NULL), 0, "%s", kvs_error_last());
	size_t ns = segments(b, segs);
	kvs_object *idx = index_of(b, s, "k");
	cr_assert_eq(b->ops->annotate(b, NULL, idx->name, &kv, 1), 0, "%s", kvs_error_last());
	kvs_object_free(idx);
	calls_of(b, c0);
	cr_assert_eq(kvs_put(NULL, s, "k", d, n, NULL), 0, "%s", kvs_error_last());
	calls_of(b, c1);
	cr_assert_eq(c1[KVS_MEM_ANNOTATE] - c0[KVS_MEM_ANNOTATE], ns,
	             "%llu touches for %zu reused segments",
	             (unsigned long long)(c1[KVS_MEM_ANNOTATE] - c0[KVS_MEM_ANNOTATE]), ns);
	cr_assert_eq(c1[KVS_MEM_CREATE] - c0[KVS_MEM_CREATE], 0);
	void *got = NULL;
	size_t gl = 0;
	cr_assert_eq(kvs_get(&got, &gl, NULL, s, "k", NULL), 0, "%s", kvs_error_last());
	cr_assert(gl == n && memcmp(got, d, n) == 0);
	kvs_free(got);
	free_objects(segs, ns);
	free(d);
	kvs_close(s);
}
