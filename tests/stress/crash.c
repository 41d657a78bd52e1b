/*
 * tests/stress/crash.c — crash torture across processes (`make torture`; a
 * short run in `make test`).
 *
 * Runs the CLI (build/kvsplit) against the API test server and SIGKILLs it
 * at random instants while it puts (values 1 KB to 8 MB, fresh or edits of
 * the previous value, so base segments are reused), deletes keys or runs
 * gc. After every operation, killed or not, fresh CLI processes check:
 *
 *   - every key reads back exactly its last acknowledged value, or the value
 *     of the operation that was in flight when it was killed (its commit may
 *     have landed); anything else — another value, a torn mix, a corrupt or
 *     missing segment — is a finding;
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
 * usage: stress-crash [--kills N] [--seed S] [--max-bytes B] [--sweep 0|1] [--self-test] [-v]
 * Exit 0: clean; 1: a finding (printed, scratch folder kept); 2: driver error.
 * --self-test deletes a segment of an acknowledged value by hand and must
 * exit 1: it proves the checks can fail.
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
	    acked, landed_in_flight, unknown_outcome, checks;
} st;
/* expected run time of each op kind (µs), for choosing kill instants */
static double est_put_per_byte = 0.05, est_gc = 50000, est_rm = 20000;

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

typedef enum { OP_PUT, OP_RM, OP_GC } op_kind;

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
	op_kind kind = r < 0.78 ? OP_PUT : r < 0.83 ? OP_RM : OP_GC;
	char value[SP_PATH] = "";
	int faults = sp_unit(&rng) < 0.2, rc;

	if (kind == OP_PUT)
		new_value(value, k, max_bytes, 0);
	double est = kind == OP_PUT ? est_put(value) : kind == OP_RM ? est_rm : est_gc;
	/* a quarter of the ops run to the end: acknowledged values to lose */
	int64_t kill_us = sp_unit(&rng) < 0.25 ? -1 : (int64_t)(sp_unit(&rng) * 1.2 * est);
	if (faults) {
		sp_faults(&E, "{\"drop_rate\":0.05,\"fail_rate\":0.05}");
		st.fault_ops++;
	}
	int killed = run_op(kind, k, value, kill_us, &rc);
	if (faults)
		sp_faults(&E, "{\"drop_rate\":0,\"fail_rate\":0}");
	if (killed) {
		st.kills++;
		if (kind == OP_PUT)
			st.put_kills++;
		else if (kind == OP_RM)
			st.rm_kills++;
		else
			st.gc_kills++;
	}
	if (E.verbose)
		fprintf(stderr, "op %lu: %s %s%s%s rc %d\n", st.ops,
		        kind == OP_PUT ? "put" : kind == OP_RM ? "rm" : "gc", kind == OP_GC ? "" : keys[k],
		        faults ? " (faults)" : "", killed ? " KILLED" : "", rc);
	check_all(kind == OP_PUT ? "after put" : kind == OP_RM ? "after rm" : "after gc");
}

/*
 * The same op killed at every 5 ms of its run, on a server that delays each
 * request by 10 ms: each request is in flight at some kill. Stops when the
 * op finishes before its kill.
 */
static void sweep(op_kind kind, size_t size, unsigned long *kills_left)
{
	char value[SP_PATH] = "";
	int rc;

	sp_faults(&E, "{\"latency_ms\":10}");
	for (int64_t at = 0; *kills_left > 0; at += 5000) {
		int k = 0;
		if (kind == OP_PUT)
			new_value(value, k, size, 1);
		int killed = run_op(kind, k, value, at, &rc);
		if (killed) {
			st.kills++;
			st.sweep_kills++;
			(*kills_left)--;
			if (kind == OP_PUT)
				st.put_kills++;
			else
				st.gc_kills++;
		}
		sp_faults(&E, "{\"latency_ms\":0}");
		check_all(kind == OP_PUT ? "sweep put" : "sweep gc");
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
		else if (strcmp(argv[i], "--self-test") == 0)
			self_test = 1;
		else if (strcmp(argv[i], "-v") == 0)
			E.verbose = 1;
		else
			sp_die("usage: stress-crash [--kills N] [--seed S] [--max-bytes B] [--sweep 0|1] [--self-test] [-v]");
	}
	int verbose = E.verbose;
	uint64_t seed = rng;
	sp_init(&E, "crash");
	E.verbose = verbose;
	printf("stress-crash: seed %llu, %lu kills, values up to %zu bytes\n",
	       (unsigned long long)seed, kills, max_bytes);
	fflush(stdout);
	sp_server_start(&E, NULL);
	int64_t t0 = sp_now_us();

	if (self_test) {
		/* the checks must catch a lost segment: delete one by hand */
		char v[SP_PATH];
		new_value(v, 0, 3u << 20, 2);
		const char *a[] = { "put", "-q", keys[0], v, NULL };
		if (sp_cli_run(&E, "seed", a) != 0)
			sp_die("first put failed");
		snprintf(K[0].ack, sizeof(K[0].ack), "%s", v);
		sp_delete_one_segment(&E);
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

	printf("stress-crash: clean: %lu ops, %lu kills (%lu puts, %lu rm, %lu gc; %lu in sweeps), "
	       "%lu ops under faults, %lu acknowledged, %lu in-flight values landed, "
	       "%lu unknown outcomes, %lu checks (get + fsck each), %.1f s\n",
	       st.ops, st.kills, st.put_kills, st.rm_kills, st.gc_kills, st.sweep_kills, st.fault_ops,
	       st.acked, st.landed_in_flight, st.unknown_outcome, st.checks,
	       (double)(sp_now_us() - t0) / 1e6);
	sp_server_stop(&E);
	char cmd[SP_PATH + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", E.dir);
	if (system(cmd) != 0) {
		/* best effort */
	}
	return 0;
}
