/*
 * cmd_watch.c — `kvsplit watch KEY|PREFIX`: one line per committed change
 * (NDJSON with -o json), like `kubectl get -w`. With --to-file FILE the key's
 * latest value is kept in FILE, replaced atomically on every change, so a
 * reader of FILE always sees one whole verified version.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

/* Replace `target` with `len` bytes: temporary beside it, fsync, rename. */
static int replace_file(const char *what, const char *target, const void *data, size_t len)
{
	struct outfile f;

	if (outfile_open(&f, what, target) < 0)
		return -1;
	if (outfile_write(&f, data, len) < 0) {
		cli_err("%s: cannot write %s: %s", what, cli_key(target), strerror(errno));
		outfile_abort(&f);
		return -1;
	}
	return outfile_commit(&f, what);
}

static const char *kind_name(kvs_watch_kind k)
{
	switch (k) {
	case KVS_WATCH_PUT: return "PUT";
	case KVS_WATCH_DELETE: return "DELETE";
	}
	return "?";
}

int cmd_watch(struct cli *c)
{
	const char *key = c->args[0];
	kvs_watch_options wo = KVS_WATCH_OPTIONS_INIT;
	kvs_watch *w = NULL;
	long events = 0;
	double deadline = c->timeout_ms > 0 ? cli_now() + (double)c->timeout_ms / 1000.0 : 0;
	int rc;

	if (c->to_file && c->prefix) {
		cli_err("watch: --to-file follows one key; it cannot be used with --prefix");
		cli_usage_hint(c, "watch");
		return EXIT_USAGE;
	}
	if (c->format == OUT_WIDE) {
		cli_err("watch: -o wide does not apply (use -o json for NDJSON)");
		return EXIT_USAGE;
	}
	wo.flags = (c->prefix ? KVS_WATCH_PREFIX : 0) | (c->to_file ? KVS_WATCH_VALUES : 0);
	wo.max_bytes = KVS_MAX_BYTES_UNLIMITED;   /* --to-file takes any size, as `get` does */
	rc = kvs_watch_open(&w, c->store, key, &wo);
	if (rc < 0)
		return cli_fail(c, rc, NULL, "watch %s", cli_key(key));

	if (c->format == OUT_DEFAULT && !c->quiet)
		printf("%-6s   %-40s   %-10s   %-10s   %s\n", "EVENT", "KEY",
		       "VERSION", "GENERATION", "SIZE");
	fflush(stdout);

	rc = EXIT_OK;
	while (!cli_interrupted) {
		kvs_watch_event ev;
		int tmo = 500;
		if (deadline > 0) {
			double left = deadline - cli_now();
			if (left <= 0)
				break;
			if (left * 1000 < tmo)
				tmo = (int)(left * 1000) + 1;
		}
		int r = kvs_watch_next(&ev, w, tmo);
		if (r == KVS_ETIMEOUT)
			continue;
		if (r == KVS_ECANCELED && cli_interrupted)
			break;
		if (r < 0) {
			rc = cli_fail(c, r, NULL, "watch %s", cli_key(key));
			break;
		}
		if (c->to_file && ev.kind == KVS_WATCH_PUT && ev.value) {
			char what[4200];
			snprintf(what, sizeof(what), "watch %s", cli_key(key));
			if (replace_file(what, c->to_file, ev.value, ev.value_len) < 0) {
				rc = EXIT_ERROR;
				break;
			}
		}
		if (c->format == OUT_JSON) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "type", kind_name(ev.kind));
			cJSON_AddStringToObject(o, "key", ev.key ? ev.key : "");
			cJSON_AddStringToObject(o, "version", ev.version.str);
			cJSON_AddNumberToObject(o, "generation", (double)ev.generation);
			cJSON_AddNumberToObject(o, "length", (double)ev.length);
			cJSON_AddBoolToObject(o, "resync", ev.resync != 0);
			cli_print_json(o, 1);
		} else if (c->format == OUT_NAME) {
			printf("%s\n", ev.key ? ev.key : "");
			fflush(stdout);
		} else {
			printf("%-6s   %-40s   %-10s   %-10llu   %llu%s\n", kind_name(ev.kind),
			       cli_key(ev.key ? ev.key : ""), ev.version.str, (unsigned long long)ev.generation,
			       (unsigned long long)ev.length, ev.resync ? "   (resync)" : "");
			fflush(stdout);
		}
		if (c->max_events > 0 && ++events >= c->max_events)
			break;
	}
	kvs_watch_close(w);
	return rc;
}
