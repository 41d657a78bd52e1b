/*
 * cmd_history.c — `kvsplit log KEY` and `kvsplit rollback KEY VERSION`, and
 * the KEY@VERSION syntax of `get` (docs/cli.md "History"): the versions a
 * store keeps of each key, the way `helm history` / `helm rollback` show and
 * restore a release's revisions.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"

int cli_parse_version(const char *s, uint64_t *out)
{
	char *end = NULL;
	unsigned long long v;

	if (!s || !*s || strspn(s, "0123456789") != strlen(s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int cli_split_version(const char *arg, char **key, uint64_t *gen)
{
	const char *at = strrchr(arg, '@');

	*gen = 0;
	if (!at || at == arg || !at[1] || strspn(at + 1, "0123456789") != strlen(at + 1)) {
		*key = strdup(arg);
		return *key ? 0 : -1;
	}
	if (cli_parse_version(at + 1, gen) < 0)
		return -2;   /* digits, but too many */
	*key = strndup(arg, (size_t)(at - arg));
	return *key ? 0 : -1;
}

int cli_version_listed(struct cli *c, const char *key, uint64_t gen)
{
	kvs_version_info *v = NULL;
	size_t n = 0;
	int found = 0;

	if (kvs_history(&v, &n, NULL, c->store, key, NULL) < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		found |= v[i].generation == gen;
	kvs_free(v);
	return found;
}

static void format_time(char *out, size_t cap, int64_t ms)
{
	time_t t;
	struct tm tm;

	if (ms < 0) {
		snprintf(out, cap, "-");
		return;
	}
	t = (time_t)(ms / 1000);
	gmtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int cmd_log(struct cli *c)
{
	const char *key = c->args[0];
	kvs_version_info *v = NULL;
	size_t n = 0;
	kvs_ver ver;
	int rc = kvs_history(&v, &n, &ver, c->store, key, NULL);

	if (rc < 0)
		return cli_fail(c, rc, key, "log %s", cli_key(key));
	if (c->format == OUT_JSON) {
		cJSON *o = cJSON_CreateObject(), *items = cJSON_CreateArray();
		char tbuf[64];
		cJSON_AddStringToObject(o, "key", key);
		cJSON_AddStringToObject(o, "version", ver.str);
		for (size_t i = 0; i < n; i++) {
			cJSON *it = cJSON_CreateObject();
			cJSON_AddNumberToObject(it, "generation", (double)v[i].generation);
			if (v[i].time_ms >= 0) {
				format_time(tbuf, sizeof(tbuf), v[i].time_ms);
				cJSON_AddStringToObject(it, "time", tbuf);
			} else {
				cJSON_AddNullToObject(it, "time");
			}
			cJSON_AddNumberToObject(it, "length", (double)v[i].length);
			if (v[i].added >= 0)
				cJSON_AddNumberToObject(it, "added", (double)v[i].added);
			else
				cJSON_AddNullToObject(it, "added");
			cJSON_AddBoolToObject(it, "current", v[i].current != 0);
			cJSON_AddItemToArray(items, it);
		}
		cJSON_AddItemToObject(o, "items", items);
		kvs_free(v);
		return cli_print_json(o, 0);
	}
	if (c->format == OUT_NAME) {
		for (size_t i = 0; i < n; i++)
			printf("%s@%llu\n", key, (unsigned long long)v[i].generation);
		kvs_free(v);
		return EXIT_OK;
	}
	if (!c->quiet)
		printf("%-8s %-20s %10s %10s\n", "VERSION", "TIME", "SIZE", "ADDED");
	for (size_t i = 0; i < n; i++) {
		char tbuf[64], size[32], added[32];
		format_time(tbuf, sizeof(tbuf), v[i].time_ms);
		cli_human_bytes(size, sizeof(size), (double)v[i].length);
		if (v[i].added >= 0)
			cli_human_bytes(added, sizeof(added), (double)v[i].added);
		else
			snprintf(added, sizeof(added), "-");
		printf("%-8llu %-20s %10s %10s%s\n", (unsigned long long)v[i].generation, tbuf, size,
		       added, v[i].current ? "  (current)" : "");
	}
	kvs_free(v);
	return EXIT_OK;
}

int cmd_rollback(struct cli *c)
{
	const char *key = c->args[0];
	kvs_rollback_options ro = KVS_ROLLBACK_OPTIONS_INIT;
	kvs_put_stats st;
	kvs_stat s;
	kvs_ver ver;
	uint64_t gen = 0;
	int rc;

	if (cli_parse_version(c->args[1], &gen) < 0 || gen == 0) {
		cli_err("rollback %s: invalid VERSION %s (a version number from `%s log %s`)",
		        cli_key(key), cli_quoted(c->args[1]), c->prog, cli_key(key));
		cli_usage_hint(c, "rollback");
		return EXIT_USAGE;
	}
	ro.expect_version = c->has_expect_version ? c->expect_version : NULL;
	ro.stats = &st;
	rc = kvs_rollback(&ver, c->store, key, gen, &ro);
	if (rc == KVS_ENOTFOUND) {
		/* the key, or only the version? */
		char saved[2048], hint[4200];
		snprintf(saved, sizeof(saved), "%s", kvs_error_last());
		if (kvs_stat_key(&s, c->store, key, NULL) == 0) {
			snprintf(hint, sizeof(hint), "`%s log %s` lists the versions kept", c->prog,
			         cli_key(key));
			return cli_fail_hint(c, rc, saved, hint, "rollback %s to version %llu",
			                     cli_key(key), (unsigned long long)gen);
		}
		return cli_fail_detail(c, rc, key, saved, "rollback %s to version %llu", cli_key(key),
		                       (unsigned long long)gen);
	}
	if (rc < 0)
		return cli_fail(c, rc, key, "rollback %s to version %llu", cli_key(key),
		                (unsigned long long)gen);
	memset(&s, 0, sizeof(s));
	(void)kvs_stat_key(&s, c->store, key, NULL);
	if (c->format == OUT_JSON) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "key", key);
		cJSON_AddNumberToObject(o, "rolled_back_to", (double)gen);
		cJSON_AddNumberToObject(o, "generation", (double)s.generation);
		cJSON_AddStringToObject(o, "version", ver.str);
		cJSON_AddNumberToObject(o, "bytes_written", (double)st.bytes_written);
		return cli_print_json(o, 0);
	}
	if (c->format == OUT_NAME)
		printf("%s@%llu\n", key, (unsigned long long)s.generation);
	else if (!c->quiet)
		printf("key %s rolled back to version %llu: now version %llu (resourceVersion %s)\n",
		       cli_quoted(key), (unsigned long long)gen, (unsigned long long)s.generation,
		       ver.str);
	return EXIT_OK;
}
