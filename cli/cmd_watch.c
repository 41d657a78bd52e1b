/*
 * cmd_watch.c — `kvsplit watch KEY|PREFIX`: one line per committed change
 * (NDJSON with -o json), like `kubectl get -w`. With --to-file FILE the key's
 * latest value is kept in FILE, replaced atomically on every change, so a
 * reader of FILE always sees one whole verified version. With --fields, a
 * map key's events also list the fields each change added, changed and
 * deleted, with the field's new version (values: `map get`).
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

static const char *field_kind_name(kvs_map_field_kind k)
{
	switch (k) {
	case KVS_MAP_FIELD_ADDED: return "ADDED";
	case KVS_MAP_FIELD_CHANGED: return "CHANGED";
	case KVS_MAP_FIELD_DELETED: return "DELETED";
	}
	return "?";
}

/* One field change as JSON (names are UTF-8 text in practice: a map
 * imported from JSON has nothing else). */
static cJSON *field_json(const kvs_map_field_change *f)
{
	cJSON *o = cJSON_CreateObject();
	char *name = strndup(f->field, f->field_len);

	cJSON_AddStringToObject(o, "change", field_kind_name(f->kind));
	cJSON_AddStringToObject(o, "field", name ? name : "");
	cJSON_AddNumberToObject(o, "version", (double)f->version);
	free(name);
	return o;
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
	if (c->fields && c->to_file) {
		cli_err("watch: --fields reports a map's field changes; --to-file keeps a plain "
		        "value: use one of them");
		cli_usage_hint(c, "watch");
		return EXIT_USAGE;
	}
	wo.flags = (c->prefix ? KVS_WATCH_PREFIX : 0) | (c->to_file ? KVS_WATCH_VALUES : 0);
	wo.max_bytes = KVS_MAX_BYTES_UNLIMITED;   /* --to-file takes any size, as `get` does */
	/* names, kinds and versions only: values (KVS_WATCH_VALUES) would also
	 * fetch every plain value under a prefix; `map get` reads a field */
	if (c->fields)
		wo.flags |= KVS_WATCH_FIELDS;
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
		const kvs_map_field_change *fc = NULL;
		size_t nfc = 0;
		if (c->fields && kvs_watch_fields(&fc, &nfc, w) < 0)
			nfc = 0;
		if (c->format == OUT_JSON) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "type", kind_name(ev.kind));
			cJSON_AddStringToObject(o, "key", ev.key ? ev.key : "");
			cJSON_AddStringToObject(o, "version", ev.version.str);
			cJSON_AddNumberToObject(o, "generation", (double)ev.generation);
			cJSON_AddNumberToObject(o, "length", (double)ev.length);
			cJSON_AddBoolToObject(o, "resync", ev.resync != 0);
			if (c->fields) {
				cJSON *arr = cJSON_AddArrayToObject(o, "fields");
				for (size_t i = 0; arr && i < nfc; i++)
					cJSON_AddItemToArray(arr, field_json(&fc[i]));
			}
			cli_print_json(o, 1);
		} else if (c->format == OUT_NAME) {
			printf("%s\n", ev.key ? ev.key : "");
			fflush(stdout);
		} else {
			printf("%-6s   %-40s   %-10s   %-10llu   %llu%s\n", kind_name(ev.kind),
			       cli_key(ev.key ? ev.key : ""), ev.version.str, (unsigned long long)ev.generation,
			       (unsigned long long)ev.length, ev.resync ? "   (resync)" : "");
			for (size_t i = 0; i < nfc; i++)
				printf("         %-8s %-40.*s %llu\n", field_kind_name(fc[i].kind),
				       (int)(fc[i].field_len > 4096 ? 4096 : fc[i].field_len),
				       (const char *)fc[i].field, (unsigned long long)fc[i].version);
			fflush(stdout);
		}
		if (c->max_events > 0 && ++events >= c->max_events)
			break;
	}
	kvs_watch_close(w);
	return rc;
}
