/*
 * cmd_map.c — `kvsplit map ...`: key-split maps through the public API.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

/* Read a whole file (or stdin for NULL / "-") of at most `cap` bytes. */
static int slurp(char **out, size_t *len, const char *path, size_t cap)
{
	int fd = (!path || strcmp(path, "-") == 0) ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0, sz = 1 << 16;
	char *buf;

	if (fd < 0) {
		cli_err("%s: %s", path, strerror(errno));
		return -1;
	}
	if (!(buf = malloc(sz + 1))) {
		cli_err("out of memory");
		goto fail;
	}
	for (;;) {
		ssize_t r;
		if (n == sz) {
			char *nb;
			if (sz >= cap) {
				cli_err("%s: larger than %zu bytes", path ? path : "stdin", cap);
				goto fail;
			}
			sz = sz * 2 > cap ? cap : sz * 2;
			if (!(nb = realloc(buf, sz + 1))) {
				cli_err("out of memory");
				goto fail;
			}
			buf = nb;
		}
		r = read(fd, buf + n, sz - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			cli_err("%s: %s", path ? path : "stdin", strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (fd > 0)
		close(fd);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
fail:
	if (fd > 0)
		close(fd);
	free(buf);
	return -1;
}

static void write_opts(const struct cli *c, kvs_map_write_options *wo)
{
	wo->expect_version = c->has_expect_version ? c->expect_version : NULL;
}

static int done(const struct cli *c, const char *what, const char *key, const kvs_ver *v)
{
	if (c->format == OUT_JSON) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "key", key);
		cJSON_AddStringToObject(o, "version", v->str);
		cJSON_AddStringToObject(o, "operation", what);
		return cli_print_json(o, 0);
	}
	if (!c->quiet && c->format != OUT_NAME)
		fprintf(stderr, "map \"%s\": %s, version %s\n", key, what, v->str);
	return EXIT_OK;
}

static int map_put(struct cli *c, const char *key)
{
	kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
	kvs_map_batch *b = NULL;
	kvs_ver v = { "" };
	char *data = NULL;
	size_t len = 0;
	int rc;

	if (c->nargs < 3 || c->nargs > 4) {
		cli_usage_hint(c, "map");
		return EXIT_USAGE;
	}
	if (slurp(&data, &len, c->nargs == 4 ? c->args[3] : NULL, KVS_MAP_VALUE_MAX) < 0)
		return EXIT_ERROR;
	write_opts(c, &wo);
	if ((rc = kvs_map_batch_new(&b)) == 0 &&
	    (rc = kvs_map_batch_put(b, c->args[2], strlen(c->args[2]), data, len)) == 0)
		rc = kvs_map_commit(&v, c->store, key, b, &wo);
	kvs_map_batch_free(b);
	free(data);
	if (rc < 0)
		return cli_fail(c, rc, key, "map put %s %s", key, c->args[2]);
	return done(c, "put", key, &v);
}

static int map_get(struct cli *c, const char *key)
{
	void *val = NULL;
	size_t len = 0;
	uint64_t fver = 0;
	kvs_ver v;
	int rc;

	if (c->nargs != 3) {
		cli_usage_hint(c, "map");
		return EXIT_USAGE;
	}
	rc = kvs_map_get(&val, &len, &fver, &v, c->store, key, c->args[2], strlen(c->args[2]), NULL);
	if (rc == KVS_ENOTFOUND) {
		/* the key, or only the field? (one more read, on the error path) */
		char detail[1024], hint[1024];
		kvs_map_stat ms;
		snprintf(detail, sizeof(detail), "%s", kvs_error_last());
		if (kvs_map_stat_key(&ms, c->store, key, NULL) == 0) {
			snprintf(hint, sizeof(hint), "map %s (version %s) has no field %s; 'kvsplit map "
			         "ls %s' lists its fields", cli_key(key), ms.version.str,
			         cli_key(c->args[2]), cli_key(key));
			return cli_fail_hint(c, rc, detail, hint, "map get %s %s", cli_key(key),
			                     cli_key(c->args[2]));
		}
		return cli_fail_detail(c, rc, key, detail, "map get %s %s", cli_key(key),
		                       cli_key(c->args[2]));
	}
	if (rc < 0)
		return cli_fail(c, rc, key, "map get %s %s", cli_key(key), cli_key(c->args[2]));
	if (c->format == OUT_JSON) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "key", key);
		cJSON_AddStringToObject(o, "field", c->args[2]);
		cJSON_AddNumberToObject(o, "bytes", (double)len);
		cJSON_AddNumberToObject(o, "field_version", (double)fver);
		cJSON_AddStringToObject(o, "version", v.str);
		kvs_free(val);
		return cli_print_json(o, 0);
	}
	if (len && fwrite(val, 1, len, stdout) != len) {
		kvs_free(val);
		cli_err("writing to stdout: %s", strerror(errno));
		return EXIT_ERROR;
	}
	kvs_free(val);
	return EXIT_OK;
}

static int map_ls(struct cli *c, const char *key)
{
	kvs_map_iter_options io = KVS_MAP_ITER_OPTIONS_INIT;
	kvs_map_iter *it = NULL;
	kvs_map_entry e;
	cJSON *items = NULL;
	kvs_ver v;
	int rc;

	if (c->nargs > 3) {
		cli_usage_hint(c, "map");
		return EXIT_USAGE;
	}
	if (c->nargs == 3) {
		io.prefix = c->args[2];
		io.prefix_len = strlen(c->args[2]);
	}
	if ((rc = kvs_map_iter_open(&it, &v, c->store, key, &io)) < 0)
		return cli_fail(c, rc, key, "map ls %s", key);
	if (c->format == OUT_JSON)
		items = cJSON_CreateArray();
	else if (c->format == OUT_DEFAULT && !c->quiet)
		printf("%-40s %10s %s\n", "FIELD", "BYTES", "VERSION");
	while ((rc = kvs_map_iter_next(&e, it)) == 0) {
		if (items) {
			cJSON *o = cJSON_CreateObject();
			char *f = strndup(e.field, e.field_len);
			cJSON_AddStringToObject(o, "field", f ? f : "");
			cJSON_AddNumberToObject(o, "bytes", (double)e.value_len);
			cJSON_AddNumberToObject(o, "version", (double)e.version);
			cJSON_AddItemToArray(items, o);
			free(f);
		} else if (c->format == OUT_NAME) {
			printf("%.*s\n", (int)e.field_len, (const char *)e.field);
		} else {
			printf("%-40.*s %10zu %llu\n", (int)e.field_len, (const char *)e.field, e.value_len,
			       (unsigned long long)e.version);
		}
	}
	kvs_map_iter_close(it);
	if (rc != KVS_EITER_DONE) {
		cJSON_Delete(items);
		return cli_fail(c, rc, key, "map ls %s", key);
	}
	if (items) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "key", key);
		cJSON_AddStringToObject(o, "version", v.str);
		cJSON_AddItemToObject(o, "items", items);
		return cli_print_json(o, 0);
	}
	return EXIT_OK;
}

static int map_rm(struct cli *c, const char *key)
{
	kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
	kvs_map_batch *b = NULL;
	kvs_ver v = { "" };
	int rc;

	if (c->nargs < 3) {
		cli_usage_hint(c, "map");
		return EXIT_USAGE;
	}
	write_opts(c, &wo);
	rc = kvs_map_batch_new(&b);
	for (int i = 2; rc == 0 && i < c->nargs; i++)
		rc = kvs_map_batch_delete(b, c->args[i], strlen(c->args[i]));
	if (rc == 0)
		rc = kvs_map_commit(&v, c->store, key, b, &wo);
	kvs_map_batch_free(b);
	if (rc < 0)
		return cli_fail(c, rc, key, "map rm %s", key);
	return done(c, "fields deleted", key, &v);
}

static int map_json(struct cli *c, const char *key, int import)
{
	kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
	kvs_ver v = { "" };
	char *data = NULL;
	size_t len = 0;
	int rc;

	if (c->nargs > 3) {
		cli_usage_hint(c, "map");
		return EXIT_USAGE;
	}
	if (slurp(&data, &len, c->nargs == 3 ? c->args[2] : NULL, (size_t)4 << 30) < 0)
		return EXIT_ERROR;
	write_opts(c, &wo);
	rc = import ? kvs_map_import_json(&v, c->store, key, data, len, &wo)
	            : kvs_map_patch_json(&v, c->store, key, data, len, &wo);
	free(data);
	if (rc < 0)
		return cli_fail(c, rc, key, "map %s %s", import ? "import" : "patch", key);
	return done(c, import ? "imported" : "patched", key, &v);
}

static int to_stdout(void *ctx, const void *buf, size_t len)
{
	(void)ctx;
	return fwrite(buf, 1, len, stdout) == len && !cli_interrupted ? 0 : -1;
}

static int map_export(struct cli *c, const char *key)
{
	int rc;

	if (c->nargs != 2) {
		cli_usage_hint(c, "map");
		return EXIT_USAGE;
	}
	rc = kvs_map_export_json(NULL, c->store, key, to_stdout, NULL, NULL);
	if (rc < 0)
		return cli_fail(c, rc, key, "map export %s", key);
	if (isatty(1))
		putchar('\n');
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_ERROR;
}

static int map_compact(struct cli *c, const char *key)
{
	kvs_map_write_options wo = KVS_MAP_WRITE_OPTIONS_INIT;
	kvs_map_stats st;
	kvs_ver v = { "" };
	int rc;

	if (c->nargs != 2) {
		cli_usage_hint(c, "map");
		return EXIT_USAGE;
	}
	memset(&st, 0, sizeof(st));
	write_opts(c, &wo);
	wo.compact = KVS_MAP_COMPACT_FORCE;
	wo.stats = &st;
	if ((rc = kvs_map_compact(&v, c->store, key, &wo)) < 0)
		return cli_fail(c, rc, key, "map compact %s", key);
	return done(c, st.compacted ? "compacted" : "nothing to compact", key, &v);
}

/* Also used by `kvsplit stat` for a map key. */
int cli_map_stat_print(struct cli *c, const char *key, int quiet_if_not_map)
{
	kvs_map_stat st;
	double amp;
	int rc = kvs_map_stat_key(&st, c->store, key, NULL);

	if (rc < 0) {
		if (quiet_if_not_map)
			return -1;
		return cli_fail(c, rc, key, "map stat %s", key);
	}
	amp = st.stored_bytes ? (double)(st.segment_bytes + st.index_bytes) / (double)st.stored_bytes : 0;
	if (c->format == OUT_JSON) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "key", key);
		cJSON_AddStringToObject(o, "kind", "map");
		cJSON_AddStringToObject(o, "version", st.version.str);
		cJSON_AddNumberToObject(o, "generation", (double)st.generation);
		cJSON_AddNumberToObject(o, "delta_runs", st.delta_runs);
		cJSON_AddNumberToObject(o, "delta_inline", st.delta_inline);
		cJSON_AddNumberToObject(o, "base_runs", st.base_runs);
		cJSON_AddNumberToObject(o, "delta_entries", (double)st.delta_entries);
		cJSON_AddNumberToObject(o, "base_entries", (double)st.base_entries);
		cJSON_AddNumberToObject(o, "raw_bytes", (double)st.raw_bytes);
		cJSON_AddNumberToObject(o, "stored_bytes", (double)st.stored_bytes);
		cJSON_AddNumberToObject(o, "segments", st.segments);
		cJSON_AddNumberToObject(o, "segment_bytes", (double)st.segment_bytes);
		cJSON_AddNumberToObject(o, "index_bytes", st.index_bytes);
		cJSON_AddNumberToObject(o, "space_amplification", amp);
		return cli_print_json(o, 0);
	}
	printf("key:         %s (map)\n", key);
	printf("version:     %s\n", st.version.str);
	printf("generation:  %llu\n", (unsigned long long)st.generation);
	printf("level 0:     %u delta runs (%u inline), %llu entries\n", st.delta_runs,
	       st.delta_inline, (unsigned long long)st.delta_entries);
	printf("level 1:     %u base runs, %llu fields\n", st.base_runs,
	       (unsigned long long)st.base_entries);
	printf("raw:         %llu bytes in runs\n", (unsigned long long)st.raw_bytes);
	printf("stored:      %llu bytes (runs, compressed)\n", (unsigned long long)st.stored_bytes);
	printf("segments:    %u (%llu bytes)\n", st.segments, (unsigned long long)st.segment_bytes);
	printf("index:       %u bytes\n", st.index_bytes);
	printf("space amp.:  %.2f (segments + index over stored runs)\n", amp);
	return EXIT_OK;
}

int cmd_map(struct cli *c)
{
	static const char *const subs[] = { "put", "get", "ls", "rm", "patch", "import", "export",
	                                    "compact", "stat" };
	const char *sub = c->args[0], *key = c->args[1], *near;

	if (strcmp(sub, "put") == 0)
		return map_put(c, key);
	if (strcmp(sub, "get") == 0)
		return map_get(c, key);
	if (strcmp(sub, "ls") == 0)
		return map_ls(c, key);
	if (strcmp(sub, "rm") == 0)
		return map_rm(c, key);
	if (strcmp(sub, "patch") == 0)
		return map_json(c, key, 0);
	if (strcmp(sub, "import") == 0)
		return map_json(c, key, 1);
	if (strcmp(sub, "export") == 0)
		return map_export(c, key);
	if (strcmp(sub, "compact") == 0)
		return map_compact(c, key);
	if (strcmp(sub, "stat") == 0) {
		if (c->nargs != 2) {
			cli_usage_hint(c, "map");
			return EXIT_USAGE;
		}
		return cli_map_stat_print(c, key, 0);
	}
	near = cli_suggest(sub, subs, sizeof(subs) / sizeof(subs[0]));
	if (near)
		cli_err("unknown map command \"%s\"; did you mean \"%s\"?", sub, near);
	else
		cli_err("unknown map command \"%s\"", sub);
	cli_usage_hint(c, "map");
	return EXIT_USAGE;
}
