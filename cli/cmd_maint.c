/*
 * cmd_maint.c — `kvsplit gc` and `kvsplit fsck`.
 *
 * gc deletes segments no committed index references once they are older than
 * the grace period (docs/design.md argues why that is safe with concurrent
 * writers). fsck verifies indexes and segments and exits like fsck(8):
 * 0 clean, 1 every problem repaired, 4 problems left, 8 operational error.
 * Orphan segments (garbage waiting for gc) are listed but are not problems
 * for the exit status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

struct gc_ctx {
	const struct cli *c;
	cJSON *names; /* -o json */
};

static int gc_on_segment(void *ctx, const char *name, uint64_t bytes)
{
	struct gc_ctx *g = ctx;

	if (cli_interrupted)
		return 1;
	if (g->names) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", name);
		cJSON_AddNumberToObject(o, "bytes", (double)bytes);
		cJSON_AddItemToArray(g->names, o);
	} else if (!g->c->quiet) {
		printf("%s segment %s (%llu bytes)\n", g->c->dry_run ? "would delete" : "deleted", name,
		       (unsigned long long)bytes);
		fflush(stdout);
	}
	return 0;
}

int cmd_gc(struct cli *c)
{
	kvs_gc_options go = KVS_GC_OPTIONS_INIT;
	kvs_gc_report rep;
	struct gc_ctx g = { c, NULL };
	cJSON *root = NULL;
	int rc;

	/* check_grace (main.c) made sure grace > this process's touch window */
	if (c->grace_ns >= 0 && cli_ceil_s(c->grace_ns) <= CLI_TOUCH_WINDOW_DEFAULT_S &&
	    !c->dry_run) {
		char dw[32];
		cli_format_duration(dw, sizeof(dw), (int64_t)CLI_TOUCH_WINDOW_DEFAULT_S * 1000000000LL);
		fprintf(stderr, "kvsplit: warning: --grace %s is not longer than the default touch "
		                "window of writers (%s): a put using that window may lose segments; "
		                "use it only while no such writer runs\n", c->grace_arg, dw);
	}
	if (c->format == OUT_JSON) {
		root = cJSON_CreateObject();
		g.names = cJSON_AddArrayToObject(root, c->dry_run ? "deletable" : "deleted_segments");
	}
	memset(&rep, 0, sizeof(rep));
	/* whole seconds, rounded up; check_grace refused 0 (the library's "default") */
	if (c->grace_ns >= 0)
		go.grace_s = (uint32_t)cli_ceil_s(c->grace_ns);
	go.dry_run = c->dry_run;
	go.max_deletes_per_s = c->rate;
	go.on_segment = gc_on_segment;
	go.ctx = &g;
	rc = kvs_gc(&rep, c->store, &go);
	if (rc < 0) {
		cJSON_Delete(root);
		if (rc == KVS_ECANCELED && cli_interrupted) {
			cli_err("gc: interrupted after %llu deletes", (unsigned long long)rep.deleted);
			return EXIT_INTERRUPTED;
		}
		rc = cli_fail(c, rc, NULL, "gc");
		if (rc == EXIT_USAGE)
			cli_usage_hint(c, "gc");
		return rc;
	}
	if (rep.indexes == 0 && rep.segments == 0 && cli_namespace_missing(c)) {
		cJSON_Delete(root);
		return cli_fail_namespace(c, "gc");
	}
	if (root) {
		cJSON_AddBoolToObject(root, "dry_run", c->dry_run != 0);
		cJSON_AddNumberToObject(root, "indexes", (double)rep.indexes);
		cJSON_AddNumberToObject(root, "segments", (double)rep.segments);
		cJSON_AddNumberToObject(root, "referenced", (double)rep.referenced);
		cJSON_AddNumberToObject(root, "young", (double)rep.young);
		cJSON_AddNumberToObject(root, "deleted", (double)rep.deleted);
		cJSON_AddNumberToObject(root, "bytes_freed", (double)rep.bytes_freed);
		cJSON_AddNumberToObject(root, "raced", (double)rep.raced);
		return cli_print_json(root, 0);
	}
	char freed[32];
	cli_human_bytes(freed, sizeof(freed), (double)rep.bytes_freed);
	printf("gc: %llu indexes, %llu segments: %llu referenced, %llu unreferenced but inside the "
	       "grace period, %llu %s (%s), %llu kept because touched meanwhile\n",
	       (unsigned long long)rep.indexes, (unsigned long long)rep.segments,
	       (unsigned long long)rep.referenced, (unsigned long long)rep.young,
	       (unsigned long long)rep.deleted, c->dry_run ? "deletable" : "deleted", freed,
	       (unsigned long long)rep.raced);
	return EXIT_OK;
}

enum { FSCK_CLEAN = 0, FSCK_REPAIRED = 1, FSCK_LEFT = 4, FSCK_OPERATIONAL = 8 };

struct fsck_ctx {
	const struct cli *c;
	cJSON *problems;
	uint64_t left;      /* problems (not orphans) left unrepaired */
	uint64_t repaired;
	uint64_t orphans;
};

static const char *fsck_kind(kvs_fsck_kind k)
{
	switch (k) {
	case KVS_FSCK_BAD_INDEX: return "bad-index";
	case KVS_FSCK_MISSING_SEGMENT: return "missing-segment";
	case KVS_FSCK_CORRUPT_SEGMENT: return "corrupt-segment";
	case KVS_FSCK_BAD_VALUE_HASH: return "bad-value-hash";
	case KVS_FSCK_BAD_LABELS: return "bad-labels";
	case KVS_FSCK_ORPHAN: return "orphan";
	}
	return "unknown";
}

static void fsck_on_problem(void *ctx, const kvs_fsck_problem *p)
{
	struct fsck_ctx *f = ctx;

	if (p->repaired)
		f->repaired++;
	else if (p->kind == KVS_FSCK_ORPHAN)
		f->orphans++;
	else
		f->left++;
	if (f->problems) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "kind", fsck_kind(p->kind));
		if (p->key)
			cJSON_AddStringToObject(o, "key", p->key);
		else
			cJSON_AddNullToObject(o, "key");
		cJSON_AddStringToObject(o, "object", p->object ? p->object : "");
		cJSON_AddStringToObject(o, "detail", p->detail ? p->detail : "");
		cJSON_AddBoolToObject(o, "repaired", p->repaired != 0);
		cJSON_AddItemToArray(f->problems, o);
		return;
	}
	if (f->c->quiet && (p->repaired || p->kind == KVS_FSCK_ORPHAN))
		return;
	printf("%-15s %s%s%s%s%s\n", fsck_kind(p->kind), p->key ? "key " : "",
	       p->key ? cli_key(p->key) : "", p->key ? ", " : "", p->object ? p->object : "",
	       p->repaired ? " [repaired]" : "");
	if (p->detail && *p->detail)
		printf("%-15s   %s\n", "", cli_escaped(p->detail));
	fflush(stdout);
}

int cmd_fsck(struct cli *c)
{
	kvs_fsck_options fo = KVS_FSCK_OPTIONS_INIT;
	kvs_fsck_report rep;
	struct fsck_ctx f;
	cJSON *root = NULL;
	int rc;

	memset(&f, 0, sizeof(f));
	f.c = c;
	if (c->format == OUT_JSON) {
		root = cJSON_CreateObject();
		f.problems = cJSON_AddArrayToObject(root, "problems");
	}
	memset(&rep, 0, sizeof(rep));
	fo.key = c->nargs > 0 ? c->args[0] : NULL;
	/* CLI: not given → library default (all); 0% → none */
	fo.read_data = c->read_data < 0 ? 0 : c->read_data == 0 ? KVS_FSCK_READ_NONE : c->read_data;
	fo.repair = c->repair;
	if (c->grace_ns >= 0)
		fo.grace_s = (uint32_t)cli_ceil_s(c->grace_ns);
	fo.on_problem = fsck_on_problem;
	fo.ctx = &f;
	rc = kvs_fsck(&rep, c->store, &fo);
	if (rc < 0) {
		cJSON_Delete(root);
		rc = cli_fail(c, rc, fo.key, "fsck%s%s", fo.key ? " " : "", fo.key ? cli_key(fo.key) : "");
		if (rc == EXIT_USAGE) { /* usage errors still exit 2 (docs/cli.md) */
			cli_usage_hint(c, "fsck");
			return EXIT_USAGE;
		}
		/* nothing to check (no such KEY or namespace): exit 3 as every
		 * command does, not "operational error" (docs/cli.md) */
		if (rc == EXIT_NOTFOUND)
			return EXIT_NOTFOUND;
		return FSCK_OPERATIONAL;
	}
	/* an empty store looks like a missing namespace (an empty list) */
	if (!fo.key && rep.indexes == 0 && rep.segments == 0 && cli_namespace_missing(c)) {
		cJSON_Delete(root);
		return cli_fail_namespace(c, "fsck");
	}
	int status = f.left > 0 ? FSCK_LEFT : f.repaired > 0 ? FSCK_REPAIRED : FSCK_CLEAN;
	if (root) {
		cJSON_AddNumberToObject(root, "indexes", (double)rep.indexes);
		cJSON_AddNumberToObject(root, "segments", (double)rep.segments);
		cJSON_AddNumberToObject(root, "chunks_verified", (double)rep.chunks_verified);
		cJSON_AddNumberToObject(root, "bytes_verified", (double)rep.bytes_verified);
		/* "problems" is the list above; a second "problems" key would make
		 * JSON readers keep only one of the two */
		cJSON_AddNumberToObject(root, "problem_count", (double)rep.problems);
		cJSON_AddNumberToObject(root, "repaired", (double)rep.repaired);
		cJSON_AddNumberToObject(root, "orphans", (double)rep.orphans);
		cJSON_AddNumberToObject(root, "exit_code", status);
		cli_print_json(root, 0);
		return status;
	}
	char verified[32];
	cli_human_bytes(verified, sizeof(verified), (double)rep.bytes_verified);
	printf("fsck: %llu indexes, %llu segments, %llu chunks (%s) verified; %llu problems, "
	       "%llu repaired, %llu orphan segments\n",
	       (unsigned long long)rep.indexes, (unsigned long long)rep.segments,
	       (unsigned long long)rep.chunks_verified, verified, (unsigned long long)rep.problems,
	       (unsigned long long)rep.repaired, (unsigned long long)rep.orphans);
	if (f.left > 0)
		fprintf(stderr, "hint: %llu problem(s) left; 'kvsplit fsck --repair' deletes orphans, "
		                "a damaged key must be re-put (see docs/operations.md)\n",
		        (unsigned long long)f.left);
	return status;
}
