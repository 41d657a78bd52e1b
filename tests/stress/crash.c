/*
 * tests/stress/crash.c — crash torture across processes (`make torture`; a
 * short run in `make test`).
 *
 * Runs the CLI (build/kvsplit) against the API test server and SIGKILLs it
 * at random instants while it puts (values 1 KB to 8 MB, fresh or edits of
 * the previous value, so base segments are reused), deletes keys, applies
 * key-split map batches (`map patch`: sets and deletes of 1 to 300 fields,
 * inline deltas and deltas in segments), compacts the map (`map compact`)
 * or runs gc. After every operation, killed or not, fresh CLI processes
 * check:
 *
 *   - every key reads back exactly its last acknowledged value, or the value
 *     of the operation that was in flight when it was killed (its commit may
 *     have landed); anything else — another value, a torn mix, a corrupt or
 *     missing segment — is a finding;
 *   - the map (`map export`) reads back as its last acknowledged state with
 *     any of the batches of unknown outcome since applied whole, in order;
 *     a state with part of a batch is a finding (see "The map" below);
 *   - fsck reports no problem (orphans inside the grace period are normal).
 *
 * At the end, after the grace period has passed, a gc that is not killed
 * must leave fsck with zero orphans, and the values must still read back.
 *
 * Two kinds of kill: random instants (uniform over the operation's expected
 * run time, learned as it goes), and a sweep that kills the same put or gc
 * every 5 ms of its run on a server that delays each request by 10 ms, so
 * every request of it is cut at least once. A share of the operations runs
 * with the server dropping responses after applying them and failing
 * requests with 5xx; a put that then fails has an unknown outcome, like a
 * killed one.
 *
 * Writers use --touch-window 2s and gc --grace 3s, so that orphans of killed
 * puts become collectable within the run (the protocol's G > W holds).
 *
 * usage: stress-crash [--kills N] [--seed S] [--max-bytes B] [--sweep 0|1] [--map-fields N]
 *                     [--self-test] [--self-test-map] [-v]
 * Exit 0: clean; 1: a finding (printed, scratch folder kept); 2: driver error.
 * --self-test deletes a segment of an acknowledged value by hand and must
 * exit 1: it proves the checks can fail. --self-test-map commits half of a
 * batch (the first half of its fields) while the driver records the whole
 * batch as acknowledged, and must exit 1 too: the map check sees half a
 * batch.
 */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "proc.h"

#define NKEYS 2
#define TOUCH "2s"
#define GRACE "3s"
#define GRACE_US 3000000

static const char *const keys[NKEYS] = { "crash/a", "crash/b" };

/*
 * The map. Its fields are "n0000".."n1499"; a field's value is a JSON
 * string determined by (field, serial of the batch that wrote it), of 40 to
 * 1,000 bytes, so a state is the serial per field (0: absent) and its
 * export is computed from that.
 *
 * Batches are blind (rebased on a lost race). A killed batch may land then
 * or later: its request, conditioned on the version it read, can be applied
 * by the server after the check that follows the kill, but never after an
 * acknowledged batch (whose commit moved the version). So the possible
 * states are: the states possible before, each with the batches of unknown
 * outcome since the last acknowledged batch applied in order, any subset.
 * MPEND_MAX bounds that list (an unkilled batch then resets it), so there
 * are at most 2^MPEND_MAX candidates. A compaction changes no field.
 */
#define MAP_KEY "crash/m"
/* fields of the map: --map-fields N (default 1500, a format-v2 map; about
 * 8,000 and more make its base runs a v4 base table) */
#define MFIELDS_MAX 20000
static int mfields = 1500;
#define MBATCH_MAX 300
#define MPEND_MAX 5
#define MCAND_MAX (1 << MPEND_MAX)

typedef struct mop {
	int n;
	uint16_t f[MBATCH_MAX];
	uint32_t ser[MBATCH_MAX];   /* 0: delete */
} mop;

static uint32_t mcand[MCAND_MAX][MFIELDS_MAX];
static int nmcand;
static mop mpend[MPEND_MAX];
static int nmpend;
static uint32_t mserial = 1;
/* a map op ran since the last check (else the map cannot have changed:
 * fsck still verifies every run it references after every op) */
static int map_touched, map_check_always;

typedef struct key_state {
	char ack[SP_PATH];      /* file with the acknowledged value; "" = absent */
	/*
	 * Values of unknown-outcome puts since the last acknowledged op. A
	 * request the killed process had sent may still be applied by the
	 * server after the check that followed the kill (seen: the check read
	 * the old value, the dead client's commit landed a moment later), so
	 * each stays possible until an op on the key is acknowledged; after
	 * that its commit, conditioned on an older version, can only fail.
	 */
	char flight[64][SP_PATH];
	int nflight;
	int flight_rm;          /* an unknown-outcome delete since the last ack */
} key_state;

static sp_env E;
static int self_test;
static key_state K[NKEYS];
static uint64_t rng;
static unsigned long serial;
static struct {
	unsigned long ops, kills, put_kills, gc_kills, rm_kills, sweep_kills, fault_ops,
	    acked, landed_in_flight, unknown_outcome, checks, map_kills, compact_kills,
	    map_acked, map_landed;
} st;
/* expected run time of each op kind (µs), for choosing kill instants */
static double est_put_per_byte = 0.05, est_gc = 50000, est_rm = 20000, est_map = 40000,
              est_compact = 60000;

static double est_put(const char *value)
{
	size_t n = 0;
	char *p = sp_slurp(value, &n);

	free(p);
	return 20000 + est_put_per_byte * (double)n;
}

static void finding(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void finding(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("stress-crash: FINDING: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	sp_server_stop(&E);
	if (self_test) {
		char cmd[SP_PATH + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", E.dir);
		if (system(cmd) != 0) {
			/* best effort */
		}
		fprintf(stderr, "stress-crash: self-test: the finding above was expected\n");
	} else {
		fprintf(stderr, "stress-crash: scratch folder kept: %s (seed printed at start)\n", E.dir);
	}
	exit(1);
}

static void write_all(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
		sp_die("cannot write %s", path);
}

/* Size log-uniform in [1 KB, max]. */
static size_t pick_size(size_t max)
{
	double lo = 1000, r = sp_unit(&rng);
	double v = lo * pow(max / lo, r);

	return v < lo ? (size_t)lo : (size_t)v;
}

/* Compressible text runs and random runs, so lz4 and dedup both work. */
static void fill(uint8_t *p, size_t n)
{
	static const char text[] = "{\"phase\":\"Succeeded\",\"node\":\"wf-";
	size_t i = 0;

	while (i < n) {
		size_t run = 1 + sp_rand(&rng) % 65536;
		if (run > n - i)
			run = n - i;
		if (sp_rand(&rng) & 1) {
			for (size_t j = 0; j < run; j++)
				p[i + j] = (uint8_t)text[(i + j) % (sizeof(text) - 1)];
		} else {
			for (size_t j = 0; j < run; j += 8) {
				uint64_t x = sp_rand(&rng);
				memcpy(p + i + j, &x, run - j < 8 ? run - j : 8);
			}
		}
		i += run;
	}
}

/*
 * A new value for key k: fresh, or (half the time) the acknowledged value
 * with a random range rewritten, so most of its chunks are reused from the
 * base. Each starts with a unique header.
 */
static void new_value(char out[SP_PATH], int k, size_t max, int force_edit)
{
	char name[64], hdr[64];
	size_t n = 0, base_n = 0;
	uint8_t *p = NULL;
	char *base = K[k].ack[0] ? sp_slurp(K[k].ack, &base_n) : NULL;

	if (base && base_n > 4096 && force_edit != 2 && (force_edit || (sp_rand(&rng) & 1))) {
		n = base_n;
		p = (uint8_t *)base;
		size_t at = sp_rand(&rng) % n, len = 1 + sp_rand(&rng) % (n / 16 + 1);
		if (len > n - at)
			len = n - at;
		fill(p + at, len);
		base = NULL;
	} else {
		n = force_edit == 2 ? max : pick_size(max);
		p = malloc(n);
		if (!p)
			sp_die("out of memory");
		fill(p, n);
	}
	free(base);
	int h = snprintf(hdr, sizeof(hdr), "value %lu\n", ++serial);
	memcpy(p, hdr, (size_t)h < n ? (size_t)h : n);
	snprintf(name, sizeof(name), "v%lu", serial);
	sp_path(&E, out, name);
	write_all(out, p, n);
	free(p);
}

static int exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static void show_err(const char *tag, char *buf, size_t cap)
{
	char path[SP_PATH], name[64];

	snprintf(name, sizeof(name), "%s.err", tag);
	sp_path(&E, path, name);
	char *s = sp_slurp(path, NULL);
	snprintf(buf, cap, "%s", s ? s : "");
	free(s);
}

/* The JSON text of field f as written by batch `ser`. */
static size_t mval(char *out, size_t cap, int f, uint32_t ser)
{
	size_t pad = 40 + ((size_t)ser * 7919u + (size_t)f * 104729u) % 960u;
	int n = snprintf(out, cap, "\"s%u-f%04d-", (unsigned)ser, f);
	size_t o = (size_t)n;

	for (size_t i = 0; i < pad && o + 2 < cap; i++)
		out[o++] = (char)('a' + (ser + (uint32_t)f + (uint32_t)i) % 26);
	out[o++] = '"';
	out[o] = '\0';
	return o;
}

static void mapply(uint32_t *state, const mop *op)
{
	for (int i = 0; i < op->n; i++)
		state[op->f[i]] = op->ser[i];
}

/* Add a candidate unless it is one already. */
static void mcand_add(const uint32_t *state)
{
	for (int i = 0; i < nmcand; i++)
		if (memcmp(mcand[i], state, (size_t)mfields * sizeof(uint32_t)) == 0)
			return;
	if (nmcand == MCAND_MAX)
		sp_die("map: more than %d candidate states", MCAND_MAX);
	memcpy(mcand[nmcand++], state, (size_t)mfields * sizeof(uint32_t));
}

/* The export `map export` must print for a state. */
static char *mexport(const uint32_t *state, size_t *len)
{
	size_t cap = (size_t)mfields * 1100 + 16, o = 0;
	char *d = malloc(cap), v[1100];

	if (!d)
		sp_die("out of memory");
	d[o++] = '{';
	for (int f = 0; f < mfields; f++) {
		if (!state[f])
			continue;
		mval(v, sizeof(v), f, state[f]);
		o += (size_t)snprintf(d + o, cap - o, "%s\"n%04d\":%s", o > 1 ? "," : "", f, v);
	}
	d[o++] = '}';
	*len = o;
	return d;
}

/* Write a batch as the JSON object of `map patch` (null deletes). */
static void mwrite(const char *path, const mop *op)
{
	FILE *fp = fopen(path, "wb");
	char v[1100];

	if (!fp)
		sp_die("cannot write %s", path);
	fputc('{', fp);
	for (int i = 0; i < op->n; i++) {
		fprintf(fp, "%s\"n%04d\": ", i ? ", " : "", op->f[i]);
		if (op->ser[i]) {
			mval(v, sizeof(v), op->f[i], op->ser[i]);
			fputs(v, fp);
		} else {
			fputs("null", fp);
		}
	}
	fputc('}', fp);
	if (fclose(fp) != 0)
		sp_die("cannot write %s", path);
}

/*
 * A random batch: 1 to 30 fields (a tenth of the time up to MBATCH_MAX, a
 * delta too big to go inline), a fifth of them deletes, distinct fields.
 */
static void mrandom(mop *op, int big)
{
	static uint8_t seen[MFIELDS_MAX];
	int want = big ? 100 + (int)(sp_rand(&rng) % (MBATCH_MAX - 100))
	               : 1 + (int)(sp_rand(&rng) % 30);

	memset(seen, 0, sizeof(seen));
	op->n = 0;
	mserial++;
	while (op->n < want) {
		int f = (int)(sp_rand(&rng) % mfields);
		if (seen[f])
			continue;
		seen[f] = 1;
		op->f[op->n] = (uint16_t)f;
		op->ser[op->n] = sp_rand(&rng) % 5 == 0 ? 0 : mserial;
		op->n++;
	}
}

/* How many fields of the export differ from a state (for the finding). */
static int mdiff(const char *got, const uint32_t *state)
{
	int diff = 0;
	char v[1100], nm[16];

	for (int f = 0; f < mfields; f++) {
		snprintf(nm, sizeof(nm), "\"n%04d\":", f);
		const char *at = strstr(got, nm);
		if (!state[f]) {
			diff += at != NULL;
			continue;
		}
		size_t n = mval(v, sizeof(v), f, state[f]);
		diff += !at || strncmp(at + strlen(nm), v, n) != 0;
	}
	return diff;
}

/* The map reads back as one of the candidates; then the candidates are it,
 * with the batches still in flight possibly landing after. */
static void check_map(const char *when, const char *out)
{
	char err[2048];
	const char *ea[] = { "map", "export", MAP_KEY, NULL };
	int rc = sp_cli_run(&E, "check-map", ea), hit = -1, best = mfields + 1, bi = 0;
	size_t glen = 0;
	char path[SP_PATH];

	if (rc != 0) {
		show_err("check-map", err, sizeof(err));
		finding("%s: map export %s exited %d: %s", when, MAP_KEY, rc, err);
	}
	sp_path(&E, path, "check-map.out");
	char *got = sp_slurp(path, &glen);
	if (!got)
		sp_die("no map export output");
	for (int i = 0; i < nmcand && hit < 0; i++) {
		size_t n;
		char *want = mexport(mcand[i], &n);
		if (n == glen && memcmp(want, got, n) == 0)
			hit = i;
		free(want);
	}
	if (hit < 0) {
		for (int i = 0; i < nmcand; i++) {
			int d = mdiff(got, mcand[i]);
			if (d < best)
				best = d, bi = i;
		}
		write_all(out, got, glen);
		finding("%s: map %s reads back as none of its %d possible states (the acknowledged one "
		        "with the %d batches of unknown outcome since applied whole): %d fields differ "
		        "from the nearest (candidate %d): half a batch? saved as %s",
		        when, MAP_KEY, nmcand, nmpend, best, bi, out);
	}
	if (hit > 0)
		st.map_landed++;
	free(got);
	memmove(mcand[0], mcand[hit], (size_t)mfields * sizeof(uint32_t));
	nmcand = 1;
	for (int p = 0; p < nmpend; p++) {
		int n = nmcand;
		for (int i = 0; i < n; i++) {
			static uint32_t s2[MFIELDS_MAX];
			memcpy(s2, mcand[i], (size_t)mfields * sizeof(uint32_t));
			mapply(s2, &mpend[p]);
			mcand_add(s2);
		}
	}
}

/* Every key reads back as expected; fsck finds nothing. */
static void check_all(const char *when)
{
	char out[SP_PATH], err[2048];

	st.checks++;
	sp_path(&E, out, "got");
	for (int k = 0; k < NKEYS; k++) {
		key_state *ks = &K[k];
		unlink(out);
		const char *ga[] = { "get", keys[k], "--to-file", out, NULL };
		int rc = sp_cli_run(&E, "check-get", ga);
		if (rc == 3) {
			if (!ks->ack[0] || ks->flight_rm) {
				/* absent: the acknowledged state, or a delete in flight landed */
				ks->ack[0] = '\0';
			} else {
				show_err("check-get", err, sizeof(err));
				finding("%s: key %s is gone; acknowledged value %s lost: %s", when, keys[k],
				        ks->ack, err);
			}
		} else if (rc == 0) {
			if (ks->ack[0] && sp_files_equal(out, ks->ack)) {
				/* the acknowledged value */
			} else {
				int hit = -1;
				for (int f = 0; f < ks->nflight && hit < 0; f++)
					if (sp_files_equal(out, ks->flight[f]))
						hit = f;
				if (hit < 0)
					finding("%s: key %s reads back bytes that are neither its acknowledged "
					        "value (%s) nor one of the %d in flight since: saved as %s",
					        when, keys[k], ks->ack[0] ? ks->ack : "absent", ks->nflight, out);
				const char *won = ks->flight[hit];
				if (strcmp(ks->ack, won) != 0) {
					st.landed_in_flight++;
					/* ack and flight[] are distinct arrays of the same size */
					memcpy(ks->ack, won, sizeof(ks->ack));
				}
			}
		} else {
			show_err("check-get", err, sizeof(err));
			finding("%s: get %s exited %d: %s", when, keys[k], rc, err);
		}
	}
	if (map_touched || map_check_always) {
		sp_path(&E, out, "got-map.json");
		check_map(when, out);
		map_touched = 0;
	}
	const char *fa[] = { "fsck", "--read-data=100%", NULL };
	int rc = sp_cli_run(&E, "check-fsck", fa);
	if (rc != 0) {
		char path[SP_PATH];
		sp_path(&E, path, "check-fsck.out");
		char *s = sp_slurp(path, NULL);
		show_err("check-fsck", err, sizeof(err));
		finding("%s: fsck exited %d:\n%s%s", when, rc, s ? s : "", err);
	}
}

typedef enum { OP_PUT, OP_RM, OP_GC, OP_MAP, OP_COMPACT } op_kind;

static const char *op_name(op_kind k)
{
	switch (k) {
	case OP_PUT: return "put";
	case OP_RM: return "rm";
	case OP_GC: return "gc";
	case OP_MAP: return "map patch";
	case OP_COMPACT: return "map compact";
	}
	return "?";
}

/*
 * A map batch or compaction, killed after kill_us (< 0: never); the
 * candidate states follow its outcome. Returns 1 if our SIGKILL ended it.
 */
static int run_map_op(op_kind kind, const mop *op, int64_t kill_us, int *rc_out)
{
	char patch[SP_PATH];
	int killed;
	int64_t el;
	pid_t pid;

	if (kind == OP_MAP) {
		sp_path(&E, patch, "patch.json");
		mwrite(patch, op);
		const char *a[] = { "map", "patch", "-q", "--touch-window", TOUCH, MAP_KEY, patch, NULL };
		pid = sp_cli_start(&E, "op", a);
	} else {
		const char *a[] = { "map", "compact", "-q", "--touch-window", TOUCH, MAP_KEY, NULL };
		pid = sp_cli_start(&E, "op", a);
	}
	int status = sp_wait(pid, kill_us, &killed, &el);
	int rc = exit_code(status);
	map_touched = 1;
	if (!killed) {
		double *est = kind == OP_MAP ? &est_map : &est_compact;
		*est = 0.8 * *est + 0.2 * (double)el;
	}
	st.ops++;
	*rc_out = rc;
	if (!killed && rc != 0 && rc != 7) {
		char err[2048];
		show_err("op", err, sizeof(err));
		finding("%s %s exited %d: %s", op_name(kind), MAP_KEY, rc, err);
	}
	if (kind == OP_COMPACT)
		return killed;   /* no field changes, whatever happened */
	if (killed || rc == 7) {
		int n = nmcand;
		if (nmpend == MPEND_MAX)
			sp_die("map: more than %d batches of unknown outcome", MPEND_MAX);
		mpend[nmpend++] = *op;
		for (int i = 0; i < n; i++) {
			static uint32_t s2[MFIELDS_MAX];
			memcpy(s2, mcand[i], (size_t)mfields * sizeof(uint32_t));
			mapply(s2, op);
			mcand_add(s2);
		}
		if (!killed)
			st.unknown_outcome++;
	} else {
		for (int i = 0; i < nmcand; i++)
			mapply(mcand[i], op);
		/* the same op on distinct states can make equal ones: dedupe */
		int n = nmcand;
		nmcand = 0;
		for (int i = 0; i < n; i++) {
			static uint32_t s2[MFIELDS_MAX];
			memcpy(s2, mcand[i], (size_t)mfields * sizeof(uint32_t));
			mcand_add(s2);
		}
		nmpend = 0;
		st.map_acked++;
	}
	return killed;
}

/* The map's first state: every field, written by serial 1 (`map import`). */
static void map_seed(void)
{
	char path[SP_PATH];
	size_t n;
	static uint32_t state[MFIELDS_MAX];

	for (int f = 0; f < mfields; f++)
		state[f] = 1;
	char *doc = mexport(state, &n);
	sp_path(&E, path, "map-seed.json");
	write_all(path, doc, n);
	free(doc);
	const char *a[] = { "map", "import", "-q", MAP_KEY, path, NULL };
	if (sp_cli_run(&E, "seed-map", a) != 0)
		sp_die("map import failed");
	memcpy(mcand[0], state, (size_t)mfields * sizeof(uint32_t));
	nmcand = 1;
	map_touched = 1;
}

/* A batch that is not killed, when the list of unknown outcomes is full. */
static void map_settle(void)
{
	mop op;
	int rc;

	while (nmpend == MPEND_MAX) {
		char out[SP_PATH];
		mrandom(&op, 0);
		run_map_op(OP_MAP, &op, -1, &rc);
		/* the read narrows the candidates to one (none pending now) */
		sp_path(&E, out, "got-map.json");
		check_map("after a settling batch", out);
	}
}

/* An unkilled batch with its delta in a segment: a compaction then has base
 * runs to rewrite and a segment to drop. */
static void map_dirty(void)
{
	mop op;
	int rc;

	mrandom(&op, 1);
	run_map_op(OP_MAP, &op, -1, &rc);
	if (rc != 0)
		sp_die("map: an unkilled batch exited %d", rc);
}

/*
 * Run one op, killed after kill_us (< 0: never). Returns 1 if our SIGKILL
 * ended it. Updates the key's state from the outcome.
 */
static int run_op(op_kind kind, int k, const char *value, int64_t kill_us, int *rc_out)
{
	int killed;
	int64_t el;
	pid_t pid;

	if (kind == OP_PUT) {
		const char *a[] = { "put", "-q", "--touch-window", TOUCH, keys[k], value, NULL };
		pid = sp_cli_start(&E, "op", a);
	} else if (kind == OP_RM) {
		const char *a[] = { "rm", keys[k], NULL };
		pid = sp_cli_start(&E, "op", a);
	} else {
		const char *a[] = { "gc", "--touch-window", "1s", "--grace", GRACE, NULL };
		pid = sp_cli_start(&E, "op", a);
	}
	int status = sp_wait(pid, kill_us, &killed, &el);
	int rc = exit_code(status);
	if (!killed && kind == OP_PUT) {
		size_t n = 0;
		char *p = sp_slurp(value, &n);
		free(p);
		if (n > 100000)
			est_put_per_byte = 0.8 * est_put_per_byte + 0.2 * (double)el / (double)n;
	} else if (!killed) {
		double *est = kind == OP_RM ? &est_rm : &est_gc;
		*est = 0.8 * *est + 0.2 * (double)el;
	}
	st.ops++;
	*rc_out = rc;
	if (kind == OP_GC) {
		if (!killed && rc != 0 && rc != 7) {
			char err[2048];
			show_err("op", err, sizeof(err));
			finding("gc exited %d: %s", rc, err);
		}
		return killed;
	}
	key_state *ks = &K[k];
	if (killed || rc == 7) {
		/* unknown outcome: the commit may have landed */
		if (kind == OP_PUT) {
			if (ks->nflight == 64) {
				/* the oldest can no longer land: 63 puts were sent after it */
				memmove(ks->flight[0], ks->flight[1], sizeof(ks->flight[0]) * 63);
				ks->nflight--;
			}
			snprintf(ks->flight[ks->nflight++], sizeof(ks->flight[0]), "%s", value);
		} else {
			ks->flight_rm = 1;
		}
		if (!killed)
			st.unknown_outcome++;
	} else if (rc == 0) {
		if (kind == OP_PUT)
			snprintf(ks->ack, sizeof(ks->ack), "%s", value);
		else
			ks->ack[0] = '\0';
		ks->nflight = 0;
		ks->flight_rm = 0;
		st.acked++;
	} else if (!(kind == OP_RM && rc == 3)) {
		char err[2048];
		show_err("op", err, sizeof(err));
		finding("%s %s exited %d: %s", kind == OP_PUT ? "put" : "rm", keys[k], rc, err);
	}
	return killed;
}

static void random_round(size_t max_bytes)
{
	int k = (int)(sp_rand(&rng) % NKEYS);
	double r = sp_unit(&rng);
	op_kind kind = r < 0.55 ? OP_PUT : r < 0.60 ? OP_RM : r < 0.80 ? OP_MAP
	             : r < 0.87 ? OP_COMPACT : OP_GC;
	char value[SP_PATH] = "";
	int faults = sp_unit(&rng) < 0.2, rc;
	mop op = { 0 };

	if (kind == OP_PUT)
		new_value(value, k, max_bytes, 0);
	if (kind == OP_MAP) {
		map_settle();
		mrandom(&op, sp_unit(&rng) < 0.1);
	}
	double est = kind == OP_PUT ? est_put(value) : kind == OP_RM ? est_rm : kind == OP_GC ? est_gc
	           : kind == OP_MAP ? est_map : est_compact;
	/* a quarter of the ops run to the end: acknowledged values to lose */
	int64_t kill_us = sp_unit(&rng) < 0.25 ? -1 : (int64_t)(sp_unit(&rng) * 1.2 * est);
	if (faults) {
		sp_faults(&E, "{\"drop_rate\":0.05,\"fail_rate\":0.05}");
		st.fault_ops++;
	}
	int killed = kind == OP_MAP || kind == OP_COMPACT ? run_map_op(kind, &op, kill_us, &rc)
	                                                  : run_op(kind, k, value, kill_us, &rc);
	if (faults)
		sp_faults(&E, "{\"drop_rate\":0,\"fail_rate\":0}");
	if (killed) {
		st.kills++;
		if (kind == OP_PUT)
			st.put_kills++;
		else if (kind == OP_RM)
			st.rm_kills++;
		else if (kind == OP_MAP)
			st.map_kills++;
		else if (kind == OP_COMPACT)
			st.compact_kills++;
		else
			st.gc_kills++;
	}
	if (E.verbose)
		fprintf(stderr, "op %lu: %s %s%s%s rc %d\n", st.ops, op_name(kind),
		        kind == OP_GC ? "" : kind == OP_MAP || kind == OP_COMPACT ? MAP_KEY : keys[k],
		        faults ? " (faults)" : "", killed ? " KILLED" : "", rc);
	char when[64];
	snprintf(when, sizeof(when), "after %s", op_name(kind));
	check_all(when);
}

/*
 * The same op killed at every 5 ms of its run, on a server that delays each
 * request by 10 ms: each request is in flight at some kill. Stops when the
 * op finishes before its kill.
 */
static void sweep(op_kind kind, size_t size, unsigned long *kills_left)
{
	/* maps: every 10 ms (each request still takes 10 ms, so each is cut) */
	int64_t step = kind == OP_MAP || kind == OP_COMPACT ? 10000 : 5000;
	char value[SP_PATH] = "";
	int rc;

	sp_faults(&E, "{\"latency_ms\":10}");
	for (int64_t at = 0; *kills_left > 0; at += step) {
		int k = 0, killed;
		mop op = { 0 };
		char when[64];
		if (kind == OP_PUT)
			new_value(value, k, size, 1);
		if (kind == OP_MAP || kind == OP_COMPACT) {
			sp_faults(&E, "{\"latency_ms\":0}");
			map_settle();
			if (kind == OP_MAP)
				mrandom(&op, size > 0);
			else
				map_dirty();
			sp_faults(&E, "{\"latency_ms\":10}");
			killed = run_map_op(kind, &op, at, &rc);
		} else {
			killed = run_op(kind, k, value, at, &rc);
		}
		if (killed) {
			st.kills++;
			st.sweep_kills++;
			(*kills_left)--;
			if (kind == OP_PUT)
				st.put_kills++;
			else if (kind == OP_MAP)
				st.map_kills++;
			else if (kind == OP_COMPACT)
				st.compact_kills++;
			else
				st.gc_kills++;
		}
		sp_faults(&E, "{\"latency_ms\":0}");
		snprintf(when, sizeof(when), "sweep %s", op_name(kind));
		check_all(when);
		if (!killed)
			break;
		sp_faults(&E, "{\"latency_ms\":10}");
	}
	sp_faults(&E, "{\"latency_ms\":0}");
}

int main(int argc, char **argv)
{
	unsigned long kills = 40;
	size_t max_bytes = 8u << 20;
	int do_sweep = 1;

	rng = (uint64_t)sp_now_us() ^ ((uint64_t)getpid() << 32);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--kills") == 0 && i + 1 < argc)
			kills = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			rng = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--max-bytes") == 0 && i + 1 < argc)
			max_bytes = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--sweep") == 0 && i + 1 < argc)
			do_sweep = atoi(argv[++i]);
		else if (strcmp(argv[i], "--map-fields") == 0 && i + 1 < argc) {
			char *end;
			long f = strtol(argv[++i], &end, 10);
			if (*end || f < 2 * MBATCH_MAX || f > MFIELDS_MAX)
				sp_die("--map-fields: %s is not a number from %d to %d", argv[i],
				       2 * MBATCH_MAX, MFIELDS_MAX);
			mfields = (int)f;
		}
		else if (strcmp(argv[i], "--self-test") == 0)
			self_test = 1;
		else if (strcmp(argv[i], "--self-test-map") == 0)
			self_test = 2;
		else if (strcmp(argv[i], "-v") == 0)
			E.verbose = 1;
		else
			sp_die("usage: stress-crash [--kills N] [--seed S] [--max-bytes B] [--sweep 0|1] "
			       "[--map-fields N] [--self-test] [--self-test-map] [-v]");
	}
	int verbose = E.verbose;
	uint64_t seed = rng;
	sp_init(&E, "crash");
	E.verbose = verbose;
	printf("stress-crash: seed %llu, %lu kills, values up to %zu bytes, a map of %d fields\n",
	       (unsigned long long)seed, kills, max_bytes, mfields);
	fflush(stdout);
	sp_server_start(&E, NULL);
	int64_t t0 = sp_now_us();
	map_seed();

	if (self_test == 2) {
		/* the map check must catch half a batch: commit only the first
		 * half of a batch's fields, record all of it as acknowledged */
		mop op, half;
		int rc;
		do
			mrandom(&op, 0);
		while (op.n < 4);
		half = op;
		half.n = op.n / 2;
		run_map_op(OP_MAP, &half, -1, &rc);
		if (rc != 0)
			sp_die("self-test-map: the half batch failed (%d)", rc);
		for (int i = half.n; i < op.n; i++)
			mapply(mcand[0], &(mop){ 1, { op.f[i] }, { op.ser[i] } });
		check_all("self-test-map after committing half a batch");
		sp_die("self-test-map: the checks did not notice half a batch");
	}
	if (self_test) {
		/* the checks must catch a lost segment: delete one by hand */
		char v[SP_PATH];
		new_value(v, 0, 3u << 20, 2);
		const char *a[] = { "put", "-q", keys[0], v, NULL };
		if (sp_cli_run(&E, "seed", a) != 0)
			sp_die("first put failed");
		snprintf(K[0].ack, sizeof(K[0].ack), "%s", v);
		sp_delete_one_segment(&E);
		map_check_always = 1;
		check_all("self-test after deleting a segment by hand");
		sp_die("self-test: the checks did not notice a deleted segment");
	}
	/* sweeps: a 3 MB put over existing values (reuse, new segments), and gc */
	unsigned long left = 200;
	if (do_sweep) {
		char v[SP_PATH];
		new_value(v, 0, 3u << 20, 2);
		const char *a[] = { "put", "-q", keys[0], v, NULL };
		if (sp_cli_run(&E, "seed", a) != 0)
			sp_die("first put failed");
		snprintf(K[0].ack, sizeof(K[0].ack), "%s", v);
		sweep(OP_PUT, 3u << 20, &left);
		/* a batch with its delta in a segment (and the compaction after it),
		 * then a compaction of such a delta */
		left = 200;
		sweep(OP_MAP, 1, &left);
		left = 200;
		sweep(OP_COMPACT, 0, &left);
		/* orphans for gc to chew on, past grace */
		usleep(GRACE_US + 200000);
		left = 200;
		sweep(OP_GC, 0, &left);
	}
	while (st.kills < kills)
		random_round(max_bytes);

	/*
	 * After grace, an unkilled gc leaves no orphan and every value intact.
	 * A request a killed client had already sent may still be served a
	 * moment after its death (on a loaded machine, seconds), creating or
	 * touching a segment late: such a segment is young, not lost, and the
	 * next round past grace must collect it. So up to three rounds, each a
	 * full grace after the previous; an orphan that outlives them all is a
	 * finding (garbage that is never collected).
	 */
	char *js = NULL;
	map_check_always = 1;
	for (int round = 1; round <= 3; round++) {
		usleep(GRACE_US + 500000);
		const char *ga[] = { "gc", "--touch-window", "1s", "--grace", GRACE, NULL };
		if (sp_cli_run(&E, "final-gc", ga) != 0)
			finding("final gc failed");
		check_all("after final gc");
		const char *fa[] = { "fsck", "-o", "json", NULL };
		if (sp_cli_run(&E, "final-fsck", fa) != 0)
			finding("final fsck not clean");
		char path[SP_PATH];
		sp_path(&E, path, "final-fsck.out");
		free(js);
		js = sp_slurp(path, NULL);
		cJSON *j = js ? cJSON_Parse(js) : NULL;
		cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "orphans");
		cJSON *pc = cJSON_GetObjectItemCaseSensitive(j, "problem_count");
		int clean = cJSON_IsNumber(o) && o->valuedouble == 0 && cJSON_IsNumber(pc) &&
		            pc->valuedouble == 0;
		cJSON_Delete(j);
		if (clean)
			break;
		if (round == 3)
			finding("orphans or problems left after three gc rounds past grace: %s",
			        js ? js : "(no output)");
	}
	free(js);

	printf("stress-crash: clean: %lu ops, %lu kills (%lu puts, %lu rm, %lu map batches, "
	       "%lu compactions, %lu gc; %lu in sweeps), %lu ops under faults, %lu acknowledged "
	       "(%lu map batches), %lu in-flight values and %lu in-flight batches landed, "
	       "%lu unknown outcomes, %lu checks (get + fsck each), %.1f s\n",
	       st.ops, st.kills, st.put_kills, st.rm_kills, st.map_kills, st.compact_kills,
	       st.gc_kills, st.sweep_kills, st.fault_ops, st.acked + st.map_acked, st.map_acked,
	       st.landed_in_flight, st.map_landed, st.unknown_outcome, st.checks,
	       (double)(sp_now_us() - t0) / 1e6);
	sp_server_stop(&E);
	char cmd[SP_PATH + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", E.dir);
	if (system(cmd) != 0) {
		/* best effort */
	}
	return 0;
}
