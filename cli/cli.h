/*
 * cli.h — private header of the kvsplit command-line tool.
 *
 * The CLI is a client of the public API only (<kvsplit.h>): it decides what to
 * print and which exit code to use; the library never prints. Layout:
 *   main.c      argument parsing, dispatch, help text
 *   cmd_data.c  put, get, ls, rm, stat
 *   cmd_watch.c watch
 *   cmd_maint.c gc, fsck
 *   cmd_map.c   map (key-split maps)
 *   progress.c  the stderr progress bar
 *   util.c      error reporting and exit codes, durations, sizes, suggestions
 */
#ifndef KVSPLIT_CLI_H
#define KVSPLIT_CLI_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include <kvsplit.h>

/* Exit codes (docs/cli.md). fsck uses fsck(8)'s instead. */
enum {
	EXIT_OK = 0,
	EXIT_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_NOTFOUND = 3,
	EXIT_CONFLICT = 4,
	EXIT_CORRUPT = 5,
	EXIT_DENIED = 6,
	EXIT_CONNECT = 7,
	EXIT_CONFIG = 8,
	EXIT_INTERRUPTED = 130
};

enum out_format { OUT_DEFAULT = 0, OUT_JSON, OUT_WIDE, OUT_NAME };

/* Everything the command line said. Strings point into argv or the environment. */
struct cli {
	const char *prog;        /* "kvsplit" or "kubectl kvsplit" (usage text) */
	const char *command;
	char **args;             /* positional arguments after the command */
	int nargs;

	/* global */
	const char *kubeconfig;
	const char *context;
	const char *namespace_;
	const char *server;
	const char *store_name;
	const char *expect_version;
	int has_expect_version;
	enum out_format format;
	int quiet;
	int verbose;
	int no_progress;
	long request_timeout_ms; /* 0 = library default */
	long retries;            /* -1 = library default */
	long touch_window_s;     /* 0 = library default (600 s) */

	/* per command */
	const char *to_file;     /* get, watch */
	int prefix;              /* watch */
	long max_events;         /* watch: stop after this many (0 = no limit) */
	long timeout_ms;         /* watch: stop after this long (0 = forever) */
	long grace_s;            /* gc, fsck: -1 = default */
	int dry_run;             /* gc */
	double rate;             /* gc */
	double read_data;        /* fsck: fraction 0..1, -1 = default */
	int repair;              /* fsck */

	/* resolved at run time */
	kvs_store *store;
	const char *ns_resolved; /* namespace the backend works in */
	int progress_tty;        /* stderr is a terminal and progress is wanted */
};

/* Set by SIGINT/SIGTERM; checked by callbacks, which then cancel. */
extern volatile sig_atomic_t cli_interrupted;
/* A temporary file to remove if the process is interrupted twice (get). */
extern char cli_tmp_path[4096];

/* main.c */
void cli_usage_hint(const struct cli *c, const char *command);
int cli_open_store(struct cli *c);

/* cmd_*.c: each returns the exit code */
int cmd_put(struct cli *c);
int cmd_get(struct cli *c);
int cmd_ls(struct cli *c);
int cmd_rm(struct cli *c);
int cmd_stat(struct cli *c);
int cmd_watch(struct cli *c);
int cmd_gc(struct cli *c);
int cmd_fsck(struct cli *c);
int cmd_map(struct cli *c);
/* cmd_map.c: print a map's layout; -1 (nothing printed) if not a map and quiet_if_not_map. */
int cli_map_stat_print(struct cli *c, const char *key, int quiet_if_not_map);

/* util.c */
int cli_exit_code(int kvs_code);
/*
 * Print "kvsplit: <what>: <kvs_error_last()>" and, where useful, a "hint:"
 * line; return the exit code for `code`. `what` is a printf format.
 */
int cli_fail(const struct cli *c, int code, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The same with a detail saved earlier (another call overwrote kvs_error_last). */
int cli_fail_detail(const struct cli *c, int code, const char *key, const char *detail,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* "kvsplit: <message>" for errors that are not library errors. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_parse_duration(const char *s, long *out_ms);
void cli_human_bytes(char *out, size_t cap, double bytes);
void cli_human_duration(char *out, size_t cap, double secs);
size_t cli_edit_distance(const char *a, const char *b);
/* Best match for `word` among `n` names, or NULL if none is close. */
const char *cli_suggest(const char *word, const char *const *names, size_t n);
/* Print a cJSON value (pretty, or one line for NDJSON) to stdout and free it. */
struct cJSON;
int cli_print_json(struct cJSON *v, int one_line);
void cli_hex(char *out, const uint8_t *in, size_t n);

/* progress.c */
struct progress {
	const struct cli *c;
	const char *label;
	double start;
	double last_draw;
	int drawn;
	uint64_t done, total;
	uint64_t size_hint; /* the caller's own idea of the total (regular file), 0 = none */
};
void progress_init(struct progress *p, const struct cli *c, const char *label);
/* kvs progress callback: returns non-zero once interrupted (cancels). */
int progress_cb(void *ctx, uint64_t done, uint64_t total);
/* Finish the line (ok) or erase it (failure, so the error reads cleanly). */
void progress_end(struct progress *p, int ok);
double cli_now(void);

#endif
