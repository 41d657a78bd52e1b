/*
 * cmd_watch.c — `kvsplit watch KEY|PREFIX`: one line per committed change
 * (NDJSON with -o json), like `kubectl get -w`. With --to-file FILE the key's
 * latest value is kept in FILE, replaced atomically on every change, so a
 * reader of FILE always sees one whole verified version.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Replace `target` with `len` bytes: temporary beside it, fsync, rename. */
static int replace_file(const char *target, const void *data, size_t len)
{
	char *d1 = strdup(target), *d2 = strdup(target);
	int fd, rc = -1;
	mode_t um = umask(0);

	umask(um);
	if (!d1 || !d2)
		goto out;
	if (snprintf(cli_tmp_path, sizeof(cli_tmp_path), "%s/.%s.kvsplit-XXXXXX", dirname(d1),
	             basename(d2)) >= (int)sizeof(cli_tmp_path))
		goto out;
	fd = mkostemp(cli_tmp_path, O_CLOEXEC);
	if (fd < 0)
		goto out;
	if (write_all(fd, data, len) == 0 && fchmod(fd, 0666 & ~um) == 0 && fsync(fd) == 0) {
		if (close(fd) == 0 && rename(cli_tmp_path, target) == 0)
			rc = 0;
	} else {
		close(fd);
	}
	if (rc < 0)
		unlink(cli_tmp_path);
out:
	cli_tmp_path[0] = '\0';
	free(d1);
	free(d2);
	return rc;
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
		return cli_fail(c, rc, NULL, "watch %s", key);

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
			rc = cli_fail(c, r, NULL, "watch %s", key);
			break;
		}
		if (c->to_file && ev.kind == KVS_WATCH_PUT && ev.value) {
			if (replace_file(c->to_file, ev.value, ev.value_len) < 0) {
				cli_err("watch %s: cannot write %s: %s", key, c->to_file, strerror(errno));
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
			       ev.key ? ev.key : "", ev.version.str, (unsigned long long)ev.generation,
			       (unsigned long long)ev.length, ev.resync ? "   (resync)" : "");
			fflush(stdout);
		}
		if (c->max_events > 0 && ++events >= c->max_events)
			break;
	}
	kvs_watch_close(w);
	return rc;
}
