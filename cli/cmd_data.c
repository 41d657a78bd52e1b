/*
 * cmd_data.c — put, get, ls, rm, stat.
 *
 * put streams from a file or stdin (kvs_put_fd: memory stays bounded by a
 * few segments); get streams to stdout, or to a temporary file beside the
 * target that is renamed only once every byte verified, so a failed read
 * never leaves a partial or corrupt file under the target's name.
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

/*
 * Why a put failed, said accurately. KVS_ESTALE is a put that outlived its
 * touch window: segments it wrote were collected before it could commit
 * ("vanished before the commit"), which is not a request that timed out nor
 * an unreachable server; the code tells, never the message text.
 */
static int put_failed(struct cli *c, int rc, const char *key, double elapsed_s)
{
	char hint[1024], tw[32];
	long w = cli_touch_window_s(c);

	if (rc == KVS_ECONFLICT && !c->has_expect_version)
		return cli_fail_hint(c, rc, kvs_error_last(),
		                     "other writers kept committing this key while the put retried; "
		                     "put again (or use --expect-version to update conditionally)",
		                     "put %s", cli_key(key));
	if (rc != KVS_ESTALE)
		return cli_fail(c, rc, rc == KVS_ENOTFOUND ? NULL : key, "put %s", cli_key(key));
	cli_format_duration(tw, sizeof(tw), (int64_t)w * 1000000000LL);
	snprintf(hint, sizeof(hint),
	         "segments written by this put were collected before it could commit (it ran for "
	         "%.1fs; its touch window is %s%s), so nothing was committed. Put again: save a slow "
	         "source to a file first, or give the put a longer --touch-window (gc's --grace must "
	         "stay longer than every writer's touch window)",
	         elapsed_s, tw, c->touch_window_arg ? ", from --touch-window" : "");
	return cli_fail_hint(c, rc, kvs_error_last(), hint, "put %s", cli_key(key));
}

int cmd_put(struct cli *c)
{
	const char *key = c->args[0];
	const char *file = c->nargs > 1 ? c->args[1] : "-";
	kvs_put_options po = KVS_PUT_OPTIONS_INIT;
	kvs_put_stats st;
	kvs_ver ver;
	struct progress pr;
	int fd, rc;
	double t0 = cli_now();
	uint64_t size_hint = 0;

	if (strcmp(file, "-") == 0) {
		fd = STDIN_FILENO;
		if (isatty(fd) && !c->quiet)
			fprintf(stderr, "kvsplit: reading the value of %s from stdin (Ctrl-D ends it)\n",
			        cli_key(key));
	} else {
		struct stat sb;
		fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			cli_err("put %s: cannot open %s: %s", cli_key(key), cli_key(file), strerror(errno));
			return EXIT_ERROR;
		}
		if (fstat(fd, &sb) == 0) {
			if (S_ISDIR(sb.st_mode)) {
				cli_err("put %s: %s is a directory", cli_key(key), cli_key(file));
				close(fd);
				return EXIT_ERROR;
			}
			if (S_ISREG(sb.st_mode))
				size_hint = (uint64_t)sb.st_size;
		}
	}

	memset(&st, 0, sizeof(st));
	memset(&ver, 0, sizeof(ver));
	progress_init(&pr, c, "put");
	pr.size_hint = size_hint;
	po.expect_version = c->has_expect_version ? c->expect_version : NULL;
	po.stats = &st;
	po.progress = progress_cb;
	po.progress_ctx = &pr;
	rc = kvs_put_fd(&ver, c->store, key, fd, &po);
	progress_end(&pr, rc == 0);
	if (fd != STDIN_FILENO)
		close(fd);
	if (rc < 0) {
		if (rc == KVS_ECANCELED && cli_interrupted) {
			cli_err("put %s: interrupted; nothing was committed", cli_key(key));
			return EXIT_INTERRUPTED;
		}
		return put_failed(c, rc, key, cli_now() - t0);
	}
	if (cli_interrupted)
		cli_err("put %s: interrupted after the whole value was read; it was committed anyway "
		        "(version %s)", cli_key(key), ver.str);

	if (c->format == OUT_JSON) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "key", key);
		cJSON_AddStringToObject(o, "version", ver.str);
		cJSON_AddNumberToObject(o, "bytes", (double)st.raw_bytes);
		cJSON_AddNumberToObject(o, "chunks", (double)st.chunks);
		cJSON_AddNumberToObject(o, "chunks_written", (double)st.chunks_written);
		cJSON_AddNumberToObject(o, "segments_written", (double)st.segments_written);
		cJSON_AddNumberToObject(o, "bytes_written", (double)st.bytes_written);
		cJSON_AddNumberToObject(o, "stored_bytes", (double)st.stored_bytes);
		cJSON_AddNumberToObject(o, "requests", (double)st.requests);
		return cli_print_json(o, 0);
	}
	if (c->format == OUT_NAME || c->quiet) {
		printf("%s\n", c->format == OUT_NAME ? key : ver.str);
		return EXIT_OK;
	}
	char raw[32], sent[32], stored[32];
	double el = cli_now() - t0;
	cli_human_bytes(raw, sizeof(raw), (double)st.raw_bytes);
	cli_human_bytes(sent, sizeof(sent), (double)st.bytes_written);
	cli_human_bytes(stored, sizeof(stored), (double)st.stored_bytes);
	printf("%s: version %s, %llu bytes (%s) in %llu chunks\n", cli_key(key), ver.str,
	       (unsigned long long)st.raw_bytes, raw, (unsigned long long)st.chunks);
	printf("  sent %llu bytes (%s) in %llu segments, %llu of %llu chunks new; %llu requests, "
	       "%.2fs\n",
	       (unsigned long long)st.bytes_written, sent, (unsigned long long)st.segments_written,
	       (unsigned long long)st.chunks_written, (unsigned long long)st.chunks,
	       (unsigned long long)st.requests, el);
	printf("  the value takes %llu stored bytes (%s)\n", (unsigned long long)st.stored_bytes,
	       stored);
	return EXIT_OK;
}

/*
 * A missing segment comes back as KVS_ENOTFOUND, like a missing key. To the
 * user they are very different: the second means the store is damaged. Ask
 * the index: if the key exists, the not-found was one of its segments.
 */
static int get_failed(struct cli *c, int rc, const char *key, uint64_t gen)
{
	char saved[2048];
	kvs_stat st;

	if (rc != KVS_ENOTFOUND)
		return cli_fail(c, rc, key, "get %s", cli_key(key));
	snprintf(saved, sizeof(saved), "%s", kvs_error_last());
	if (gen) {
		/* an older version: damaged if `log` lists it, else not kept */
		if (cli_version_listed(c, key, gen))
			return cli_fail_detail(c, KVS_ECORRUPT, key, saved, "get %s@%llu: an object of "
			                       "this version is missing", cli_key(key),
			                       (unsigned long long)gen);
		if (kvs_stat_key(&st, c->store, key, NULL) == 0) {
			char hint[4200];
			snprintf(hint, sizeof(hint), "`%s log %s` lists the versions kept", c->prog,
			         cli_key(key));
			return cli_fail_hint(c, rc, saved, hint, "get %s@%llu", cli_key(key),
			                     (unsigned long long)gen);
		}
		return cli_fail_detail(c, rc, key, saved, "get %s@%llu", cli_key(key),
		                       (unsigned long long)gen);
	}
	if (kvs_stat_key(&st, c->store, key, NULL) == 0)
		return cli_fail_detail(c, KVS_ECORRUPT, key, saved,
		                       "get %s: a segment of the value is missing", cli_key(key));
	return cli_fail_detail(c, rc, key, saved, "get %s", cli_key(key));
}

/*
 * Where the verified bytes go. The CLI writes them itself rather than with
 * kvs_get_fd so that a local write error (disk full, closed pipe) is told
 * from a server error by what happened here, not by the library's code.
 */
struct get_sink {
	int fd;
	int err;        /* errno of a failed write, 0 = none */
	uint64_t bytes; /* written so far */
};

static int get_write(void *ctx, const void *buf, size_t len)
{
	struct get_sink *k = ctx;
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(k->fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			k->err = w < 0 ? errno : EIO;
			return -1;
		}
		p += w;
		len -= (size_t)w;
		k->bytes += (uint64_t)w;
	}
	return 0;
}

static int get_version(struct cli *c, const char *key, uint64_t gen);

/*
 * get KEY[@VERSION] [--to-file FILE] [--version-file VFILE]. Both files are created
 * as temporaries before anything is read (a path that cannot be written
 * fails at once) and renamed only once the whole value verified. VFILE gets
 * the version the returned value had — the one to give `put
 * --expect-version` in a read-modify-write (docs/cli.md).
 */
int cmd_get(struct cli *c)
{
	char *key = NULL;
	uint64_t gen = 0;
	int r = cli_split_version(c->args[0], &key, &gen);

	if (r == -2) {
		cli_err("get %s: the version number is too large", cli_key(c->args[0]));
		cli_usage_hint(c, "get");
		return EXIT_USAGE;
	}
	if (r < 0) {
		cli_err("get: out of memory");
		return EXIT_ERROR;
	}
	r = get_version(c, key, gen);
	free(key);
	return r;
}

/* get KEY, or version `gen` of it (0: the committed one). */
static int get_version(struct cli *c, const char *key, uint64_t gen)
{
	kvs_get_options go = KVS_GET_OPTIONS_INIT;
	struct outfile tf, vf;
	struct get_sink sink = { STDOUT_FILENO, 0, 0 };
	struct progress pr;
	kvs_ver ver;
	char what[4200];
	int rc;

	if (c->format != OUT_DEFAULT) {
		cli_err("get writes the value itself; -o does not apply (use --to-file FILE or > FILE)");
		cli_usage_hint(c, "get");
		return EXIT_USAGE;
	}
	if (c->to_file && c->version_file && strcmp(c->to_file, c->version_file) == 0) {
		cli_err("get: --to-file and --version-file name the same file");
		cli_usage_hint(c, "get");
		return EXIT_USAGE;
	}
	snprintf(what, sizeof(what), "get %s", cli_key(key));
	tf.slot = vf.slot = -1;
	tf.fd = vf.fd = -1;
	if (c->to_file) {
		if (outfile_open(&tf, what, c->to_file) < 0)
			return EXIT_ERROR;
		sink.fd = tf.fd;
	}
	if (c->version_file && outfile_open(&vf, what, c->version_file) < 0) {
		outfile_abort(&tf);
		return EXIT_ERROR;
	}
	memset(&ver, 0, sizeof(ver));
	progress_init(&pr, c, "get");
	go.progress = progress_cb;
	go.progress_ctx = &pr;
	go.generation = gen;
	rc = kvs_get_stream(&ver, c->store, key, get_write, &sink, &go);
	progress_end(&pr, rc == 0);
	if (rc < 0) {
		outfile_abort(&tf);
		outfile_abort(&vf);
		if (sink.err) {
			cli_err("%s: cannot write %s: %s", what,
			        c->to_file ? cli_key(c->to_file) : "to stdout", strerror(sink.err));
			return EXIT_ERROR;
		}
		if (rc == KVS_ECANCELED && cli_interrupted) {
			cli_err("%s: interrupted%s", what, c->to_file ? "; no file written" : "");
			return EXIT_INTERRUPTED;
		}
		return get_failed(c, rc, key, gen);
	}
	if (c->to_file && outfile_commit(&tf, what) < 0) {
		outfile_abort(&vf);
		return EXIT_ERROR;
	}
	if (c->version_file) {
		if (outfile_write(&vf, ver.str, strlen(ver.str)) < 0 || outfile_write(&vf, "\n", 1) < 0) {
			cli_err("%s: cannot write %s: %s", what, cli_key(c->version_file), strerror(errno));
			outfile_abort(&vf);
			return EXIT_ERROR;
		}
		if (outfile_commit(&vf, what) < 0)
			return EXIT_ERROR;
	}
	if (c->verbose) {
		fprintf(stderr, "kvsplit: %s: version %s, %llu bytes verified", what, ver.str,
		        (unsigned long long)sink.bytes);
		if (c->to_file)
			fprintf(stderr, ", written to %s", cli_key(c->to_file));
		if (c->version_file)
			fprintf(stderr, "; version written to %s", cli_key(c->version_file));
		fputc('\n', stderr);
	}
	return EXIT_OK;
}

struct row {
	char *key;
	kvs_ver version;
	uint64_t length;
};

static int row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct row *)a)->key, ((const struct row *)b)->key);
}

static void rows_free(struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].key);
	free(rows);
}

int cmd_ls(struct cli *c)
{
	const char *prefix = c->nargs > 0 ? c->args[0] : NULL;
	struct row *rows = NULL;
	size_t n = 0, cap = 0;
	char *token = NULL;
	int rc;

	/* every page, then sort: kubectl prints sorted by name */
	do {
		kvs_list *l = NULL;
		kvs_list_options lo = KVS_LIST_OPTIONS_INIT;
		lo.prefix = prefix;
		lo.token = token;
		rc = kvs_list_keys(&l, c->store, &lo);
		free(token);
		token = NULL;
		if (rc < 0) {
			rows_free(rows, n);
			return cli_fail(c, rc, NULL, "ls%s%s", prefix ? " " : "", prefix ? cli_key(prefix) : "");
		}
		for (size_t i = 0; i < l->count; i++) {
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				struct row *nr = realloc(rows, nc * sizeof(*nr));
				if (!nr)
					goto oom;
				rows = nr;
				cap = nc;
			}
			rows[n].key = strdup(l->entries[i].key);
			if (!rows[n].key)
				goto oom;
			rows[n].version = l->entries[i].version;
			rows[n].length = l->entries[i].length;
			n++;
		}
		if (l->next && *l->next) {
			token = strdup(l->next);
			if (!token)
				goto oom;
		}
		kvs_list_free(l);
		continue;
oom:
		kvs_list_free(l);
		rows_free(rows, n);
		cli_err("ls: out of memory");
		return EXIT_ERROR;
	} while (token);

	if (n > 1)
		qsort(rows, n, sizeof(*rows), row_cmp);
	/* an empty list is also what a namespace that does not exist gives */
	if (n == 0 && cli_namespace_missing(c)) {
		rows_free(rows, n);
		return cli_fail_namespace(c, "ls");
	}

	if (c->format == OUT_JSON) {
		cJSON *o = cJSON_CreateObject();
		cJSON *items = cJSON_AddArrayToObject(o, "items");
		for (size_t i = 0; i < n; i++) {
			cJSON *it = cJSON_CreateObject();
			cJSON_AddStringToObject(it, "key", rows[i].key);
			cJSON_AddStringToObject(it, "version", rows[i].version.str);
			cJSON_AddNumberToObject(it, "length", (double)rows[i].length);
			cJSON_AddItemToArray(items, it);
		}
		rows_free(rows, n);
		return cli_print_json(o, 0);
	}
	if (n == 0) {
		if (!c->quiet)
			fprintf(stderr, "No keys found in store %s, namespace %s.\n", c->store_name,
			        c->ns_resolved ? c->ns_resolved : "?");
		rows_free(rows, n);
		return EXIT_OK;
	}
	if (c->format == OUT_NAME) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", rows[i].key);
		rows_free(rows, n);
		return EXIT_OK;
	}

	int wk = 3, ws = 4, wv = 7;
	for (size_t i = 0; i < n; i++) {
		char b[32];
		int l = (int)strlen(cli_key(rows[i].key));
		wk = l > wk ? l : wk;
		l = snprintf(b, sizeof(b), "%llu", (unsigned long long)rows[i].length);
		ws = l > ws ? l : ws;
		l = (int)strlen(rows[i].version.str);
		wv = l > wv ? l : wv;
	}
	if (c->format == OUT_WIDE)
		printf("%-*s   %-*s   %-*s   %-10s   %-6s   %-8s   %s\n", wk, "KEY", ws, "SIZE", wv,
		       "VERSION", "GENERATION", "CHUNKS", "SEGMENTS", "STORED");
	else
		printf("%-*s   %-*s   %s\n", wk, "KEY", ws, "SIZE", "VERSION");
	rc = EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		if (c->format == OUT_WIDE) {
			kvs_stat st;
			int r = kvs_stat_key(&st, c->store, rows[i].key, NULL);
			if (r == KVS_ENOTFOUND)
				continue; /* deleted since the list */
			if (r < 0) {
				rc = cli_fail(c, r, rows[i].key, "stat %s", cli_key(rows[i].key));
				break;
			}
			printf("%-*s   %-*llu   %-*s   %-10llu   %-6llu   %-8llu   %llu\n", wk,
			       cli_key(rows[i].key),
			       ws, (unsigned long long)st.length, wv, st.version.str,
			       (unsigned long long)st.generation, (unsigned long long)st.chunks,
			       (unsigned long long)st.segments, (unsigned long long)st.stored_bytes);
		} else {
			printf("%-*s   %-*llu   %s\n", wk, cli_key(rows[i].key), ws,
			       (unsigned long long)rows[i].length, rows[i].version.str);
		}
	}
	rows_free(rows, n);
	return rc;
}

int cmd_rm(struct cli *c)
{
	const char *key = c->args[0];
	kvs_delete_options dopts = KVS_DELETE_OPTIONS_INIT;
	int rc;

	dopts.expect_version = c->has_expect_version ? c->expect_version : NULL;
	rc = kvs_delete(c->store, key, &dopts);

	if (rc < 0)
		return cli_fail(c, rc, key, "rm %s", cli_key(key));
	if (c->format == OUT_JSON) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "key", key);
		cJSON_AddBoolToObject(o, "deleted", 1);
		return cli_print_json(o, 0);
	}
	if (c->format == OUT_NAME)
		printf("%s\n", key);
	else if (!c->quiet)
		printf("key %s deleted\n", cli_quoted(key));
	return EXIT_OK;
}

int cmd_stat(struct cli *c)
{
	const char *key = c->args[0];
	kvs_stat st;
	char hash[33];
	int rc = kvs_stat_key(&st, c->store, key, NULL);

	if (rc < 0)
		return cli_fail(c, rc, key, "stat %s", cli_key(key));
	if (!st.is_inline && st.chunks == 0) {
		/* a key-split map: show its runs and levels */
		int mrc = cli_map_stat_print(c, key, 1);
		if (mrc >= 0)
			return mrc;
	}
	cli_hex(hash, st.hash, sizeof(st.hash));
	if (c->format == OUT_JSON) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "key", key);
		cJSON_AddStringToObject(o, "version", st.version.str);
		cJSON_AddNumberToObject(o, "length", (double)st.length);
		cJSON_AddNumberToObject(o, "generation", (double)st.generation);
		cJSON_AddNumberToObject(o, "chunks", (double)st.chunks);
		cJSON_AddNumberToObject(o, "segments", (double)st.segments);
		cJSON_AddNumberToObject(o, "stored_bytes", (double)st.stored_bytes);
		cJSON_AddNumberToObject(o, "segment_bytes", (double)st.segment_bytes);
		cJSON_AddNumberToObject(o, "index_bytes", (double)st.index_bytes);
		cJSON_AddBoolToObject(o, "inline", st.is_inline != 0);
		cJSON_AddStringToObject(o, "hash", hash);
		return cli_print_json(o, 0);
	}
	if (c->format == OUT_NAME) {
		printf("%s\n", key);
		return EXIT_OK;
	}
	char len[32], stored[32], seg[32];
	cli_human_bytes(len, sizeof(len), (double)st.length);
	cli_human_bytes(stored, sizeof(stored), (double)st.stored_bytes);
	cli_human_bytes(seg, sizeof(seg), (double)st.segment_bytes);
	printf("Key:            %s\n", cli_key(key));
	printf("Store:          %s (namespace %s)\n", c->store_name,
	       c->ns_resolved ? c->ns_resolved : "?");
	printf("Version:        %s\n", st.version.str);
	printf("Generation:     %llu\n", (unsigned long long)st.generation);
	printf("Length:         %llu bytes (%s)\n", (unsigned long long)st.length, len);
	if (st.is_inline)
		printf("Storage:        inline in the index\n");
	else
		printf("Storage:        %llu chunks in %llu segments\n", (unsigned long long)st.chunks,
		       (unsigned long long)st.segments);
	if (st.stored_bytes > 0 && st.length > 0)
		printf("Stored bytes:   %llu (%s, compression ratio %.2f)\n", (unsigned long long)st.stored_bytes,
		       stored, (double)st.length / (double)st.stored_bytes);
	else
		printf("Stored bytes:   %llu\n", (unsigned long long)st.stored_bytes);
	if (!st.is_inline)
		printf("Segment bytes:  %llu (%s)\n", (unsigned long long)st.segment_bytes, seg);
	printf("Index bytes:    %u\n", st.index_bytes);
	printf("Hash:           xxh3-128:%s\n", hash);
	return EXIT_OK;
}
