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
 *   outfile.c   files replaced atomically (get --to-file, --version-file, watch)
 *   progress.c  the stderr progress bar
 *   complete.c  shell completion (completion command, __complete)
 *   util.c      error reporting and exit codes, durations, sizes, quoting,
 *               suggestions
 */
#ifndef KVSPLIT_CLI_H
#define KVSPLIT_CLI_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

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
	int json_only;           /* --json-only: kvs_kube_options.json_only */
	long touch_window_s;     /* 0 = library default (CLI_TOUCH_WINDOW_DEFAULT_S) */
	const char *touch_window_arg; /* as typed, for messages (NULL = not given) */
	long history;            /* --history: -1 = library default, 0 = none */

	/* per command */
	const char *to_file;     /* get, watch */
	const char *version_file; /* get */
	int prefix;              /* watch */
	int fields;              /* watch: map field changes */
	long max_events;         /* watch: stop after this many (0 = no limit) */
	long timeout_ms;         /* watch: stop after this long (0 = forever) */
	int64_t grace_ns;        /* gc, fsck: -1 = default (exact, as typed) */
	const char *grace_arg;   /* as typed, for messages */
	int dry_run;             /* gc */
	double rate;             /* gc */
	double read_data;        /* fsck: fraction 0..1, -1 = default */
	int repair;              /* fsck */

	/* resolved at run time */
	kvs_store *store;
	kvs_backend *backend;    /* borrowed: owned by `store` once it is open */
	const char *ns_resolved; /* namespace the backend works in */
	int progress_tty;        /* stderr is a terminal and progress is wanted */
};

/* The library's defaults the CLI must reason about (kvsplit.h documents them). */
#define CLI_TOUCH_WINDOW_DEFAULT_S 600   /* kvs_options.touch_window_s */
#define CLI_GRACE_DEFAULT_S 3600         /* kvs_gc_options / kvs_fsck_options .grace_s */

/* Set by SIGINT/SIGTERM; checked by callbacks, which then cancel. */
extern volatile sig_atomic_t cli_interrupted;
/*
 * Temporary files to remove if the process is interrupted twice (get writes
 * up to two: --to-file and --version-file). "" = slot free. See outfile.c.
 */
#define CLI_TMP_SLOTS 2
extern char cli_tmp_paths[CLI_TMP_SLOTS][4096];

/* main.c */
void cli_usage_hint(const struct cli *c, const char *command);
int cli_open_store(struct cli *c);
struct option;
const struct option *cli_longopts(void);
unsigned cli_flag_scope(int opt);        /* command bits a flag applies to */
unsigned cli_command_bit(const char *name); /* 0: no such command */
const char *cli_command_name(size_t i);  /* NULL past the last */

/* complete.c */
int cli_complete(struct cli *c, int argc, char **argv);
int cmd_completion(struct cli *c);

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
int cmd_log(struct cli *c);
int cmd_rollback(struct cli *c);
/* cmd_history.c: a version number (digits only); KEY[@VERSION] split (-2: too
 * large); whether `log` lists version `gen` of `key`. */
int cli_parse_version(const char *s, uint64_t *out);
int cli_split_version(const char *arg, char **key, uint64_t *gen);
int cli_version_listed(struct cli *c, const char *key, uint64_t gen);
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
/* The same with a hint of the caller's instead of the code's ("" = none). */
int cli_fail_hint(const struct cli *c, int code, const char *detail, const char *hint,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/*
 * 1 if the namespace is known not to exist (needs the library's
 * kvs_backend_namespace_check, see util.c); then cli_fail_namespace prints
 * "kvsplit: <what>: namespace NS does not exist" with a hint and returns
 * EXIT_NOTFOUND.
 */
int cli_namespace_missing(const struct cli *c);
int cli_fail_namespace(const struct cli *c, const char *what);
/* "kvsplit: <message>" for errors that are not library errors. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * A key as it should appear in a message: unchanged when it is made of
 * printable characters other than space, quote and backslash; otherwise
 * quoted and escaped as Go's %q does ("bad\nkey", "\xff"). The result lives
 * in one of a few rotating static buffers: use it within the same printf.
 */
const char *cli_key(const char *key);
/* The same, always quoted: `key "wf/status" deleted`. */
const char *cli_quoted(const char *s);
/* Escaped as above but never quoted: a library detail printed as one line. */
const char *cli_escaped(const char *s);
/*
 * Durations as Go's time.ParseDuration and kubectl write them ("1m30s",
 * "1.5h", "250ms", "10us"; also "2d"); a bare number is seconds. Out in
 * nanoseconds, exact. -1 if malformed, negative or over 100 years.
 */
int cli_parse_duration(const char *s, int64_t *out_ns);
/* Go-style text of a duration, without zero parts: "10m", "1m30s", "1.5s", "500ms". */
void cli_format_duration(char *out, size_t cap, int64_t ns);
/* Whole seconds / milliseconds, rounded up (a non-zero duration never becomes 0). */
int64_t cli_ceil_s(int64_t ns);
int64_t cli_ceil_ms(int64_t ns);
/* The touch window this process's puts, gc and fsck use, in seconds. */
long cli_touch_window_s(const struct cli *c);
void cli_human_bytes(char *out, size_t cap, double bytes);
void cli_human_duration(char *out, size_t cap, double secs);
size_t cli_edit_distance(const char *a, const char *b);
/* Best match for `word` among `n` names, or NULL if none is close. */
const char *cli_suggest(const char *word, const char *const *names, size_t n);
/* Print a cJSON value (pretty, or one line for NDJSON) to stdout and free it. */
struct cJSON;
int cli_print_json(struct cJSON *v, int one_line);
void cli_hex(char *out, const uint8_t *in, size_t n);

/* outfile.c: write a file under a temporary name beside it, rename when whole */
struct outfile {
	const char *target;
	int fd;
	int slot;                /* index in cli_tmp_paths, -1 when closed */
	mode_t mode;             /* an existing target's mode, else 0666 & ~umask */
};
/*
 * Create the temporary for `target`. On failure print one line naming the
 * path and the system's reason ("kvsplit: <what>: cannot write PATH: ..."),
 * leave nothing behind and return -1.
 */
int outfile_open(struct outfile *f, const char *what, const char *target);
/* Write all of buf; -1 with errno set on failure. */
int outfile_write(struct outfile *f, const void *buf, size_t len);
/* fsync, close, rename over the target; on failure report (like open), remove, -1. */
int outfile_commit(struct outfile *f, const char *what);
/* Close and remove the temporary; the target stays as it was. Accepts a closed one. */
void outfile_abort(struct outfile *f);

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
