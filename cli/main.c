/*
 * main.c — kvsplit's command line: `kvsplit [flags] COMMAND [args] [flags]`.
 *
 * kubectl conventions: global flags (--kubeconfig, --context, -n, -s/--server,
 * -o) may come before or after the command; -o/--output always names an
 * output format (json, wide, name), never a file, so `get` writes the value
 * to stdout or to --to-file FILE. A mistyped flag or command gets a
 * suggestion and exit code 2. Invoked as `kubectl-kvsplit` (a kubectl plugin)
 * the usage text says `kubectl kvsplit`.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

/* Which commands accept a flag (bit per command). */
enum {
	C_PUT = 1 << 0, C_GET = 1 << 1, C_LS = 1 << 2, C_RM = 1 << 3, C_STAT = 1 << 4,
	C_WATCH = 1 << 5, C_GC = 1 << 6, C_FSCK = 1 << 7, C_VERSION = 1 << 8, C_HELP = 1 << 9,
	C_MAP = 1 << 10, C_COMPLETION = 1 << 11, C_LOG = 1 << 12, C_ROLLBACK = 1 << 13,
	C_ALL = 0x3fff
};

struct command {
	const char *name;
	const char *alias;
	unsigned bit;
	int (*run)(struct cli *c);
	int min_args, max_args;
	const char *synopsis;
	const char *summary;
	const char *help;
};

static int cmd_version(struct cli *c);
static int cmd_help(struct cli *c);

static const struct command commands[] = {
	{ "put", NULL, C_PUT, cmd_put, 1, 2, "put KEY [FILE|-]",
	  "store a value (from FILE, or stdin when FILE is omitted or -)",
	  "The value is streamed: memory stays bounded whatever its size. Only the chunks\n"
	  "the key's previous version does not already hold are sent.\n"
	  "Flags: --expect-version V (commit only if V is still the committed version;\n"
	  "       --expect-version= creates only), -o json, -q, --no-progress\n"
	  "Examples:\n"
	  "  kvsplit put wf/status status.json\n"
	  "  kubectl get wf big -o json | kvsplit put wf/big\n"
	  "  kvsplit put wf/status status.json --expect-version 4711\n" },
	{ "get", NULL, C_GET, cmd_get, 1, 1, "get KEY[@VERSION] [--to-file F] [--version-file VF]",
	  "write a value (or an older version) to stdout, or atomically to a file",
	  "Every byte is verified against its content hash before it is written. With\n"
	  "--to-file the value goes to a temporary file in F's directory that is\n"
	  "renamed to F only once the whole value verified: a failed read never\n"
	  "leaves a partial F, and an F that cannot be written fails at once\n"
	  "(exit 1). On stdout, bytes already written stay written.\n"
	  "--version-file VF writes the version of the value returned, for\n"
	  "put --expect-version in a read-modify-write (-v also prints it).\n"
	  "KEY@VERSION reads an older version the key's history keeps (see log;\n"
	  "@0 is the committed one, so a key whose name ends in @ and digits is\n"
	  "read as KEY@0).\n"
	  "Examples:\n"
	  "  kvsplit get wf/status > status.json\n"
	  "  kvsplit get wf/status@3 > status-v3.json\n"
	  "  kvsplit get wf/status --to-file status.json\n"
	  "  kvsplit get app/counter --version-file counter.version > counter.value\n" },
	{ "ls", "list", C_LS, cmd_ls, 0, 1, "ls [PREFIX]",
	  "list keys (all pages) with size and version",
	  "Columns KEY SIZE VERSION; -o wide adds GENERATION CHUNKS SEGMENTS STORED\n"
	  "(one more request per key); -o name prints keys only; -o json prints\n"
	  "{\"items\":[...]}.\n"
	  "Examples:\n"
	  "  kvsplit ls\n"
	  "  kvsplit ls wf/ -o wide\n" },
	{ "log", "history", C_LOG, cmd_log, 1, 1, "log KEY",
	  "list the versions a key keeps (version, time, size, bytes added)",
	  "The committed version first, then the older ones the store keeps (the last\n"
	  "--history of them, 10 by default), newest first, like `helm history`. SIZE\n"
	  "is the value's length, ADDED the stored bytes its commit wrote (a version\n"
	  "shares every unchanged chunk with the others). -o json for scripts,\n"
	  "-o name prints KEY@VERSION lines. Map keys keep no history.\n"
	  "Examples:\n"
	  "  kvsplit log wf/status\n"
	  "  kvsplit get wf/status@3 | diff - status.json\n" },
	{ "rollback", NULL, C_ROLLBACK, cmd_rollback, 2, 2, "rollback KEY VERSION",
	  "make an older version current again (a new commit)",
	  "Commits VERSION's value as a new version, keeping the current one in the\n"
	  "history, like `helm rollback`. No value data is sent: the new version\n"
	  "references the old one's segments, each checked first. Conditional like\n"
	  "put: --expect-version V commits only if V is still the committed version.\n"
	  "Examples:\n"
	  "  kvsplit rollback wf/status 3\n"
	  "  kvsplit rollback wf/status 3 --expect-version 4711\n" },
	{ "rm", "delete", C_RM, cmd_rm, 1, 1, "rm KEY",
	  "delete a key (its segments are left to gc)",
	  "Flags: --expect-version V (delete only if V is still the committed version)\n"
	  "Example:\n"
	  "  kvsplit rm wf/status\n" },
	{ "stat", NULL, C_STAT, cmd_stat, 1, 1, "stat KEY",
	  "describe a key without reading its data",
	  "Shows version, length, generation, chunks, segments, stored bytes and the\n"
	  "value's XXH3-128. -o json for scripts.\n"
	  "Example:\n"
	  "  kvsplit stat wf/status -o json\n" },
	{ "watch", NULL, C_WATCH, cmd_watch, 1, 1,
	  "watch KEY|PREFIX [--prefix] [--to-file FILE] [--fields]",
	  "print one line per committed change",
	  "First reports the current state of every matching key, then each change.\n"
	  "--prefix watches every key starting with the argument (\"\" = all keys).\n"
	  "--to-file FILE keeps FILE equal to the key's latest value (written to a\n"
	  "temporary and renamed, so FILE is always a whole verified value).\n"
	  "--fields lists, under each event of a map key, the fields it ADDED,\n"
	  "CHANGED or DELETED and their new versions (-o json: \"fields\").\n"
	  "--max-events N and --timeout DURATION stop the watch (exit 0).\n"
	  "-o json prints NDJSON, one object per event.\n"
	  "Examples:\n"
	  "  kvsplit watch wf/ --prefix\n"
	  "  kvsplit watch wf/status --to-file status.json\n"
	  "  kvsplit watch wf/nodes --fields -o json\n" },
	{ "gc", NULL, C_GC, cmd_gc, 0, 0, "gc [--grace DURATION] [--dry-run] [--rate N]",
	  "delete segments no key references",
	  "Only segments unreferenced and untouched for --grace (default 1h; must\n"
	  "exceed writers' touch window, 10m) are deleted, each with a resourceVersion\n"
	  "precondition. --dry-run reports what would go; --rate caps deletes per second.\n"
	  "Example:\n"
	  "  kvsplit gc --grace 2h --rate 20\n" },
	{ "fsck", NULL, C_FSCK, cmd_fsck, 0, 1, "fsck [KEY] [--read-data=N%] [--repair]",
	  "verify indexes and segments",
	  "Checks every index (or KEY's) and the segments it references; --read-data\n"
	  "sets the share of segments whose chunks are decompressed and hashed (default\n"
	  "100%). --repair deletes orphan segments past --grace; it never drops a key.\n"
	  "Exit codes follow fsck(8): 0 clean, 1 problems all repaired, 4 problems\n"
	  "left, 8 operational error (usage errors exit 2, no such KEY 3).\n"
	  "Example:\n"
	  "  kvsplit fsck --read-data=10%\n" },
	{ "map", NULL, C_MAP, cmd_map, 2, 1000,
	  "map put|get|ls|rm|patch|import|export|compact|stat KEY ...",
	  "read and write a key-split map (fields updated a few at a time)",
	  "  map put KEY FIELD [FILE|-]   set one field (bytes from FILE or stdin)\n"
	  "  map get KEY FIELD            write one field's value to stdout\n"
	  "  map ls KEY [PREFIX]          list fields (FIELD BYTES VERSION)\n"
	  "  map rm KEY FIELD...          delete fields, in one atomic batch\n"
	  "  map patch KEY FILE.json      apply a JSON object as one batch (null deletes)\n"
	  "  map import KEY FILE.json     replace the whole map with a JSON object\n"
	  "  map export KEY               write the whole map as one JSON object\n"
	  "  map compact KEY              merge the deltas into the base now\n"
	  "  map stat KEY                 runs, levels and amplification\n"
	  "Writes take --expect-version V (commit only if V is still the key's version;\n"
	  "--expect-version= creates only); without it a batch is rebased and retried\n"
	  "when another writer commits first. -o json for scripts.\n"
	  "Examples:\n"
	  "  kubectl get wf big -o json | jq .status.nodes | kvsplit map import wf/nodes -\n"
	  "  kvsplit map patch wf/nodes changes.json\n"
	  "  kvsplit map get wf/nodes big-1234 | jq .phase\n" },
	{ "completion", NULL, C_COMPLETION, cmd_completion, 1, 1, "completion bash|zsh|fish",
	  "print a shell completion script",
	  "Completes commands, flags, flag values (-o, --context and --namespace from\n"
	  "the kubeconfig) and the keys of the current store, like kubectl's.\n"
	  "Examples:\n"
	  "  source <(kvsplit completion bash)      # in ~/.bashrc\n"
	  "  kvsplit completion zsh > \"${fpath[1]}/_kvsplit\"\n"
	  "  kvsplit completion fish | source\n" },
	{ "version", NULL, C_VERSION, cmd_version, 0, 0, "version", "print the version", "" },
	{ "help", NULL, C_HELP, cmd_help, 0, 1, "help [COMMAND]", "help about a command", "" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

enum {
	O_KUBECONFIG = 1000, O_CONTEXT, O_STORE, O_EXPECT, O_NOPROGRESS, O_REQTIMEOUT,
	O_RETRIES, O_TOUCHWINDOW, O_HISTORY, O_TOFILE, O_PREFIX, O_FIELDS, O_MAXEVENTS, O_TIMEOUT, O_GRACE, O_DRYRUN, O_RATE,
	O_READDATA, O_REPAIR, O_VERSIONFILE, O_JSONONLY,
	O_LAST = O_JSONONLY
};

static const struct option longopts[] = {
	{ "kubeconfig", required_argument, NULL, O_KUBECONFIG },
	{ "context", required_argument, NULL, O_CONTEXT },
	{ "namespace", required_argument, NULL, 'n' },
	{ "server", required_argument, NULL, 's' },
	{ "store", required_argument, NULL, O_STORE },
	{ "expect-version", required_argument, NULL, O_EXPECT },
	{ "output", required_argument, NULL, 'o' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "no-progress", no_argument, NULL, O_NOPROGRESS },
	{ "request-timeout", required_argument, NULL, O_REQTIMEOUT },
	{ "retries", required_argument, NULL, O_RETRIES },
	{ "json-only", no_argument, NULL, O_JSONONLY },
	{ "touch-window", required_argument, NULL, O_TOUCHWINDOW },
	{ "history", required_argument, NULL, O_HISTORY },
	{ "help", no_argument, NULL, 'h' },
	{ "to-file", required_argument, NULL, O_TOFILE },
	{ "prefix", no_argument, NULL, O_PREFIX },
	{ "fields", no_argument, NULL, O_FIELDS },
	{ "max-events", required_argument, NULL, O_MAXEVENTS },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "grace", required_argument, NULL, O_GRACE },
	{ "dry-run", no_argument, NULL, O_DRYRUN },
	{ "rate", required_argument, NULL, O_RATE },
	{ "read-data", required_argument, NULL, O_READDATA },
	{ "repair", no_argument, NULL, O_REPAIR },
	{ "version-file", required_argument, NULL, O_VERSIONFILE },
	{ NULL, 0, NULL, 0 }
};

/* Which commands each command-specific flag belongs to (global flags: all). */
static unsigned flag_scope(int opt)
{
	switch (opt) {
	case O_EXPECT: return C_PUT | C_RM | C_MAP | C_ROLLBACK;
	case O_TOFILE: return C_GET | C_WATCH;
	case O_VERSIONFILE: return C_GET;
	case O_PREFIX: case O_FIELDS: case O_MAXEVENTS: case O_TIMEOUT: return C_WATCH;
	case O_GRACE: return C_GC | C_FSCK;
	case O_DRYRUN: case O_RATE: return C_GC;
	case O_READDATA: case O_REPAIR: return C_FSCK;
	default: return C_ALL;
	}
}

static const struct command *find_command(const char *name);

/* For complete.c. */
const struct option *cli_longopts(void)
{
	return longopts;
}

unsigned cli_flag_scope(int opt)
{
	return flag_scope(opt);
}

unsigned cli_command_bit(const char *name)
{
	const struct command *c = find_command(name);
	return c ? c->bit : 0;
}

const char *cli_command_name(size_t i)
{
	return i < NCOMMANDS ? commands[i].name : NULL;
}

static const char *flag_name(int opt)
{
	for (const struct option *o = longopts; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

static const char *prog_name(const char *argv0)
{
	const char *b = strrchr(argv0 ? argv0 : "", '/');
	b = b ? b + 1 : (argv0 ? argv0 : "kvsplit");
	return strncmp(b, "kubectl-", 8) == 0 ? "kubectl kvsplit" : "kvsplit";
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0 ||
		    (commands[i].alias && strcmp(commands[i].alias, name) == 0))
			return &commands[i];
	return NULL;
}

static void usage(FILE *f, const char *prog)
{
	fprintf(f, "kvsplit stores values of any size in a Kubernetes cluster's ConfigMaps.\n\n"
	           "Usage:\n  %s [flags] COMMAND [args] [flags]\n\nCommands:\n", prog);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-46s %s\n", commands[i].synopsis, commands[i].summary);
	fprintf(f,
	        "\nGlobal flags:\n"
	        "      --kubeconfig PATH        kubeconfig file (default $KUBECONFIG, ~/.kube/config,\n"
	        "                               then the pod's service account)\n"
	        "      --context NAME           kubeconfig context (default: current-context)\n"
	        "  -n, --namespace NS           namespace (default: the context's, else default)\n"
	        "  -s, --server URL             API server URL, overrides the kubeconfig's\n"
	        "      --store NAME             store name (default $KVSPLIT_STORE, else default)\n"
	        "      --expect-version V       put/rm/rollback: only if V is the committed version\n"
	        "  -o, --output FORMAT          json | wide | name (a format, never a file)\n"
	        "  -q, --quiet                  print only what was asked for, no progress\n"
	        "  -v, --verbose                say what is being done on stderr\n"
	        "      --no-progress            no progress bar (it is shown on a terminal only)\n"
	        "      --request-timeout DUR    per-request timeout (e.g. 30s, 1m30s)\n"
	        "      --retries N              transient failures retried per request (default 6)\n"
	        "      --json-only              JSON only with the API server (default: protobuf\n"
	        "                               for ConfigMap reads and writes, JSON as fallback)\n"
	        "      --touch-window DUR       writers' touch window (default 10m, whole seconds);\n"
	        "                               gc/fsck --grace must exceed it (expert: docs/cli.md)\n"
	        "      --history N              older versions a put/rollback keeps per key\n"
	        "                               (default 10, 0 = none, at most 64)\n"
	        "\nExit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 conflict, 5 corrupt data,\n"
	        "6 permission denied, 7 connection/server error, 8 bad configuration\n"
	        "(fsck: 0 clean, 1 repaired, 4 problems left, 8 operational error).\n"
	        "\nUse \"%s help COMMAND\" for more about a command. See docs/cli.md.\n",
	        prog);
}

void cli_usage_hint(const struct cli *c, const char *command)
{
	if (command)
		fprintf(stderr, "See '%s help %s' for usage.\n", c->prog, command);
	else
		fprintf(stderr, "See '%s help' for usage.\n", c->prog);
}

static int cmd_version(struct cli *c)
{
	int v = kvs_version();
	char lib[32];
	snprintf(lib, sizeof(lib), "%d.%d.%d", v / 10000, (v / 100) % 100, v % 100);
	if (c->format == OUT_JSON) {
		cJSON *o = cJSON_CreateObject();
		char cl[32];
		snprintf(cl, sizeof(cl), "%d.%d.%d", KVS_VERSION_MAJOR, KVS_VERSION_MINOR,
		         KVS_VERSION_PATCH);
		cJSON_AddStringToObject(o, "clientVersion", cl);
		cJSON_AddStringToObject(o, "libraryVersion", lib);
		return cli_print_json(o, 0);
	}
	printf("kvsplit version %d.%d.%d (libkvsplit %s)\n", KVS_VERSION_MAJOR, KVS_VERSION_MINOR,
	       KVS_VERSION_PATCH, lib);
	return EXIT_OK;
}

static int cmd_help(struct cli *c)
{
	if (c->nargs == 0) {
		usage(stdout, c->prog);
		return EXIT_OK;
	}
	const struct command *cmd = find_command(c->args[0]);
	if (!cmd) {
		const char *names[NCOMMANDS];
		for (size_t i = 0; i < NCOMMANDS; i++)
			names[i] = commands[i].name;
		const char *s = cli_suggest(c->args[0], names, NCOMMANDS);
		if (s)
			cli_err("unknown command \"%s\" (did you mean \"%s\"?)", c->args[0], s);
		else
			cli_err("unknown command \"%s\"", c->args[0]);
		cli_usage_hint(c, NULL);
		return EXIT_USAGE;
	}
	printf("%s\n\nUsage:\n  %s %s\n", cmd->summary, c->prog, cmd->synopsis);
	if (cmd->alias)
		printf("  (alias: %s)\n", cmd->alias);
	if (cmd->help[0])
		printf("\n%s", cmd->help);
	printf("\nGlobal flags: see '%s help'.\n", c->prog);
	return EXIT_OK;
}

static int usage_error(const struct cli *c, const char *cmd)
{
	cli_usage_hint(c, cmd);
	return EXIT_USAGE;
}

enum flag_error { FLAG_UNKNOWN, FLAG_MISSING_ARG, FLAG_NO_VALUE };

/*
 * Report an unknown or malformed flag the way kubectl users expect: the
 * flag as typed, and the flag (or command) they most likely meant.
 */
static int bad_flag(const struct cli *c, const char *arg, enum flag_error why)
{
	char name[128];
	const char *names[sizeof(longopts) / sizeof(longopts[0])];
	size_t n = 0;
	const char *word;

	snprintf(name, sizeof(name), "%s", arg);
	char *eq = strchr(name + 1, '=');
	if (eq)
		*eq = '\0';
	if (why == FLAG_MISSING_ARG) {
		cli_err("flag %s needs an argument", name);
		return usage_error(c, c->command);
	}
	if (why == FLAG_NO_VALUE) {
		cli_err("flag %s takes no value (give %s alone)", name, name);
		return usage_error(c, c->command);
	}
	/* "--word" or "-word" (a long flag typed with one dash) */
	word = name + (strncmp(name, "--", 2) == 0 ? 2 : 1);
	if (strlen(word) > 1) {
		/* "--version": kubectl users know it as a command */
		if (find_command(word)) {
			cli_err("unknown flag %s (did you mean '%s %s'?)", name, c->prog, word);
			return usage_error(c, c->command);
		}
		for (const struct option *o = longopts; o->name; o++)
			names[n++] = o->name;
		const char *s = cli_suggest(word, names, n);
		if (s) {
			cli_err("unknown flag %s (did you mean --%s?)", name, s);
			return usage_error(c, c->command);
		}
	}
	cli_err("unknown flag %s", name);
	return usage_error(c, c->command);
}

static int parse_output(struct cli *c, const char *v)
{
	static const char *const formats[] = { "json", "wide", "name" };

	if (strcmp(v, "json") == 0)
		c->format = OUT_JSON;
	else if (strcmp(v, "wide") == 0)
		c->format = OUT_WIDE;
	else if (strcmp(v, "name") == 0)
		c->format = OUT_NAME;
	else {
		const char *s = cli_suggest(v, formats, 3);
		if (s)
			cli_err("unknown output format %s (did you mean %s?)", cli_quoted(v), s);
		else
			cli_err("unknown output format %s (json, wide or name)", cli_quoted(v));
		if (strchr(v, '.') || strchr(v, '/'))
			fprintf(stderr, "hint: -o/--output names a format; to write a value to a file use "
			                "'%s get KEY --to-file %s' (or '> %s')\n", c->prog, v, v);
		return -1;
	}
	return 0;
}

/* A namespace is a DNS-1123 label, as the API server checks. */
static int valid_namespace(const char *ns)
{
	size_t n = strlen(ns);

	if (n == 0 || n > 63 || ns[0] == '-' || ns[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((ns[i] >= 'a' && ns[i] <= 'z') || (ns[i] >= '0' && ns[i] <= '9') || ns[i] == '-'))
			return 0;
	return 1;
}

/*
 * gc and fsck --repair delete segments only past the grace period, which
 * must exceed the touch window of writers (docs/design.md); the library
 * counts both in whole seconds, so a grace is rounded up to a second. Say so
 * with the value the user typed, before contacting any cluster.
 */
static int check_grace(const struct cli *c, const struct command *cmd)
{
	char tw[32], typed_min[32];
	long w = cli_touch_window_s(c);
	int64_t g_ns = c->grace_ns >= 0 ? c->grace_ns : (int64_t)CLI_GRACE_DEFAULT_S * 1000000000LL;
	int64_t g_s = cli_ceil_s(g_ns);
	int vs_window = cmd->bit == C_GC || (cmd->bit == C_FSCK && c->repair);

	if (!(cmd->bit & (C_GC | C_FSCK)))
		return 0;
	cli_format_duration(tw, sizeof(tw), (int64_t)w * 1000000000LL);
	cli_format_duration(typed_min, sizeof(typed_min), ((int64_t)w + 1) * 1000000000LL);
	if (vs_window && g_s <= w) {
		if (c->grace_arg)
			cli_err("invalid --grace %s: it must be longer than the touch window of writers "
			        "(%s%s%s), or gc could delete segments a put is about to commit; both are "
			        "counted in whole seconds, so at least %s", cli_quoted(c->grace_arg), tw,
			        c->touch_window_arg ? ", from --touch-window " : "",
			        c->touch_window_arg ? c->touch_window_arg : "", typed_min);
		else
			cli_err("the default --grace 1h is not longer than --touch-window %s: give a "
			        "--grace of at least %s", c->touch_window_arg, typed_min);
		return usage_error(c, cmd->name);
	}
	if (g_s < 1) {
		cli_err("invalid --grace %s: must be more than 0 (grace is counted in whole seconds, "
		        "so at least 1s)", cli_quoted(c->grace_arg));
		return usage_error(c, cmd->name);
	}
	if (g_s > 0xffffffffLL) {
		cli_err("invalid --grace %s: at most 136 years", cli_quoted(c->grace_arg));
		return usage_error(c, cmd->name);
	}
	if (c->verbose && c->grace_arg && g_s * 1000000000LL != g_ns) {
		char used[32];
		cli_format_duration(used, sizeof(used), g_s * 1000000000LL);
		fprintf(stderr, "kvsplit: --grace %s is used as %s (grace is counted in whole seconds)\n",
		        c->grace_arg, used);
	}
	return 0;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	if (cli_interrupted) {
		/* second Ctrl-C: stop now, but never leave a partial --to-file */
		for (int i = 0; i < CLI_TMP_SLOTS; i++)
			if (cli_tmp_paths[i][0])
				unlink(cli_tmp_paths[i]);
		_exit(EXIT_INTERRUPTED);
	}
	cli_interrupted = 1;
}

int cli_open_store(struct cli *c)
{
	kvs_kube_options ko = KVS_KUBE_OPTIONS_INIT;
	kvs_options so = KVS_OPTIONS_INIT;
	kvs_backend *b = NULL;
	int rc;

	ko.kubeconfig = c->kubeconfig;
	ko.context = c->context;
	ko.namespace_ = c->namespace_;
	ko.server = c->server;
	if (c->request_timeout_ms > 0)
		ko.timeout_ms = (unsigned)c->request_timeout_ms;
	if (c->retries >= 0)
		ko.retries = c->retries == 0 ? KVS_KUBE_NO_RETRIES : (unsigned)c->retries;
	ko.json_only = c->json_only;
	rc = kvs_backend_kube(&b, &ko);
	if (rc < 0)
		return cli_fail(c, rc, NULL, "cluster configuration");
	c->ns_resolved = kvs_backend_namespace(b);
	c->backend = b;
	/* never silently: whoever answers gets the credentials */
	if (kvs_backend_tls_insecure(b))
		fprintf(stderr, "kvsplit: warning: TLS certificate verification is off "
		                "(insecure-skip-tls-verify in the kubeconfig): the server is not "
		                "authenticated and gets the credentials whoever it is\n");
	so.name = c->store_name;
	so.touch_window_s = (uint32_t)c->touch_window_s;
	if (c->history >= 0)
		so.history = c->history == 0 ? KVS_HISTORY_OFF : (uint32_t)c->history;
	rc = kvs_open(&c->store, b, &so);
	if (rc < 0) {
		kvs_backend_free(b);
		c->backend = NULL;
		return cli_fail(c, rc, NULL, "cannot open store %s", cli_key(c->store_name));
	}
	if (c->verbose)
		fprintf(stderr, "kvsplit: store %s, namespace %s%s%s\n", c->store_name,
		        c->ns_resolved ? c->ns_resolved : "?", c->server ? ", server " : "",
		        c->server ? c->server : "");
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct cli c;
	const struct command *cmd = NULL;
	char **pos;
	int npos = 0, opt, want_help = 0, tw_rounded = 0;
	int seen[O_LAST + 1];

	memset(&c, 0, sizeof(c));
	memset(seen, 0, sizeof(seen));
	c.prog = prog_name(argv[0]);
	c.retries = -1;
	c.history = -1;
	c.grace_ns = -1;
	c.read_data = -2;
	c.store_name = getenv("KVSPLIT_STORE");
	if (!c.store_name || !*c.store_name)
		c.store_name = "default";

	if (argc >= 2 && strcmp(argv[1], "__complete") == 0)
		return cli_complete(&c, argc - 2, argv + 2);

	pos = calloc((size_t)argc + 1, sizeof(*pos));
	if (!pos) {
		cli_err("out of memory");
		return EXIT_ERROR;
	}

	/*
	 * "-" first: non-options come back in order as 1, so flags may sit
	 * anywhere (kubectl style) whatever POSIXLY_CORRECT says; ":" next:
	 * a missing argument is reported as ':' so we word the error ourselves.
	 * `at` is the argv element being parsed, to check what was typed.
	 */
	opterr = 0;
	for (;;) {
		int at = optind, rc = -1;
		char shortbuf[3] = { '-', 0, 0 };
		int64_t ns;

		if ((opt = getopt_long(argc, argv, "-:n:s:o:qvh", longopts, NULL)) == -1)
			break;
		const char *typed = at < argc ? argv[at] : "";
		if (opt == 1) {
			pos[npos++] = optarg;
			if (npos == 1)
				c.command = optarg;
			continue;
		}
		if (strncmp(typed, "--", 2) == 0 && typed[2]) {
			/* getopt_long takes unambiguous prefixes ("--name"); kubectl
			 * does not, and a prefix that is unique today may not be
			 * tomorrow: ask for the whole name */
			size_t nl = strcspn(typed + 2, "=");
			int exact = 0;
			for (const struct option *o = longopts; o->name; o++)
				exact |= strlen(o->name) == nl && strncmp(o->name, typed + 2, nl) == 0;
			if (!exact) {
				rc = bad_flag(&c, typed, FLAG_UNKNOWN);
				goto out;
			}
		}
		if (opt == '?' || opt == ':') {
			int is_long = strncmp(typed, "--", 2) == 0;
			shortbuf[1] = (char)optopt;
			if (opt == ':') {
				rc = bad_flag(&c, is_long ? typed : shortbuf, FLAG_MISSING_ARG);
			} else if (is_long) {
				/* "--dry-run=x": a known flag that takes no value */
				size_t nl = strcspn(typed + 2, "=");
				int no_value = 0;
				for (const struct option *o = longopts; o->name; o++)
					no_value |= o->has_arg == no_argument && strlen(o->name) == nl &&
					            strncmp(o->name, typed + 2, nl) == 0 && typed[2 + nl] == '=';
				rc = bad_flag(&c, typed, no_value ? FLAG_NO_VALUE : FLAG_UNKNOWN);
			} else if (strlen(typed) > 2 && typed[1] != '-') {
				/* "-quiet": a long flag typed with one dash */
				rc = bad_flag(&c, typed, FLAG_UNKNOWN);
			} else {
				rc = bad_flag(&c, shortbuf, FLAG_UNKNOWN);
			}
			goto out;
		}
		if ((opt == 'n' || opt == 's' || opt == 'o') && typed[0] == '-' && typed[1] == opt &&
		    typed[2]) {
			/* value attached to a short flag: "-n=ns" means "ns" (as
			 * kubectl reads it); "-namespace" is a long flag with one dash */
			const char *word = typed + 1;
			for (const struct option *o = longopts; o->name; o++)
				if (strcmp(o->name, word) == 0) {
					rc = bad_flag(&c, typed, FLAG_UNKNOWN);
					goto out;
				}
			if (optarg[0] == '=')
				optarg++;
		}
		switch (opt) {
		case O_KUBECONFIG: c.kubeconfig = optarg; break;
		case O_CONTEXT: c.context = optarg; break;
		case 'n':
			if (!valid_namespace(optarg)) {
				cli_err("invalid namespace %s: a namespace is a DNS-1123 label (at most 63 "
				        "lowercase letters, digits and '-', starting and ending with a letter "
				        "or digit)", cli_quoted(optarg));
				goto usage;
			}
			c.namespace_ = optarg;
			break;
		case 's': c.server = optarg; break;
		case O_STORE: c.store_name = optarg; break;
		case O_EXPECT:
			c.expect_version = optarg;
			c.has_expect_version = 1;
			break;
		case 'o':
			if (parse_output(&c, optarg) < 0)
				goto usage;
			break;
		case 'q': c.quiet = 1; break;
		case 'v': c.verbose++; break;
		case 'h': want_help = 1; break;
		case O_NOPROGRESS: c.no_progress = 1; break;
		case O_REQTIMEOUT:
			if (cli_parse_duration(optarg, &ns) < 0 || ns <= 0 || ns > 3600 * 1000000000LL) {
				cli_err("invalid --request-timeout %s: more than 0 and at most 1h "
				        "(e.g. 30s, 2m)", cli_quoted(optarg));
				goto usage;
			}
			c.request_timeout_ms = (long)cli_ceil_ms(ns);
			break;
		case O_JSONONLY:
			c.json_only = 1;
			break;
		case O_RETRIES:
			if (parse_long(optarg, 0, 100, &c.retries) < 0) {
				cli_err("invalid --retries %s (0..100)", cli_quoted(optarg));
				goto usage;
			}
			break;
		case O_TOUCHWINDOW:
			if (cli_parse_duration(optarg, &ns) < 0) {
				cli_err("invalid --touch-window %s (a duration, e.g. 10m, 90s)", cli_quoted(optarg));
				goto usage;
			}
			if (ns < 1000000000LL || cli_ceil_s(ns) > 0xffffffffLL) {
				cli_err("invalid --touch-window %s: at least 1s (the touch window is "
				        "counted in whole seconds) and at most 136 years", cli_quoted(optarg));
				goto usage;
			}
			c.touch_window_s = (long)cli_ceil_s(ns);
			c.touch_window_arg = optarg;
			tw_rounded = ns % 1000000000LL != 0;
			break;
		case O_HISTORY:
			if (parse_long(optarg, 0, KVS_HISTORY_MAX, &c.history) < 0) {
				cli_err("invalid --history %s (0..%u versions; 0 keeps none)", cli_quoted(optarg),
				        KVS_HISTORY_MAX);
				goto usage;
			}
			break;
		case O_TOFILE: c.to_file = optarg; break;
		case O_VERSIONFILE: c.version_file = optarg; break;
		case O_PREFIX: c.prefix = 1; break;
		case O_FIELDS: c.fields = 1; break;
		case O_MAXEVENTS:
			if (parse_long(optarg, 1, 1L << 40, &c.max_events) < 0) {
				cli_err("invalid --max-events %s", cli_quoted(optarg));
				goto usage;
			}
			break;
		case O_TIMEOUT:
			if (cli_parse_duration(optarg, &ns) < 0) {
				cli_err("invalid --timeout %s (e.g. 30s, 5m; 0 = no limit)", cli_quoted(optarg));
				goto usage;
			}
			c.timeout_ms = (long)cli_ceil_ms(ns);
			break;
		case O_GRACE:
			if (cli_parse_duration(optarg, &c.grace_ns) < 0) {
				cli_err("invalid --grace %s (a duration, e.g. 1h, 90m)", cli_quoted(optarg));
				goto usage;
			}
			c.grace_arg = optarg;
			break;
		case O_DRYRUN: c.dry_run = 1; break;
		case O_RATE: {
			char *end;
			c.rate = strtod(optarg, &end);
			if (end == optarg || *end || !(c.rate > 0) || c.rate > 1e6) {
				cli_err("invalid --rate %s (deletes per second, > 0)", cli_quoted(optarg));
				goto usage;
			}
			break;
		}
		case O_READDATA: {
			char *end;
			double v = strtod(optarg, &end);
			if (end == optarg || !(*end == '\0' || (end[0] == '%' && end[1] == '\0')) ||
			    !(v >= 0 && v <= 100)) {
				cli_err("invalid --read-data %s (a percentage, 0%%..100%%)", cli_quoted(optarg));
				goto usage;
			}
			c.read_data = v / 100.0;
			break;
		}
		case O_REPAIR: c.repair = 1; break;
		default:
			cli_err("internal error: unhandled flag");
			rc = EXIT_ERROR;
			goto out;
		}
		if (opt >= O_KUBECONFIG && opt <= O_LAST)
			seen[opt] = 1;
		continue;
usage:
		rc = usage_error(&c, c.command);
out:
		free(pos);
		return rc;
	}
	/* after "--", the rest are positional */
	while (optind < argc)
		pos[npos++] = argv[optind++];
	if (npos > 0 && !c.command)
		c.command = pos[0];

	if (!c.command) {
		free(pos);
		if (want_help) {
			usage(stdout, c.prog);
			return EXIT_OK;
		}
		usage(stderr, c.prog);
		return EXIT_USAGE;
	}
	cmd = find_command(c.command);
	if (!cmd) {
		const char *names[2 * NCOMMANDS];
		size_t nn = 0;
		for (size_t i = 0; i < NCOMMANDS; i++) {
			names[nn++] = commands[i].name;
			if (commands[i].alias)
				names[nn++] = commands[i].alias;
		}
		const char *s = cli_suggest(c.command, names, nn);
		if (s)
			cli_err("unknown command \"%s\" (did you mean \"%s\"?)", c.command, s);
		else
			cli_err("unknown command \"%s\"", c.command);
		cli_usage_hint(&c, NULL);
		free(pos);
		return EXIT_USAGE;
	}
	c.command = cmd->name;
	c.args = pos + 1;
	c.nargs = npos - 1;
	if (want_help) {
		struct cli h = c;
		char *a[1] = { (char *)cmd->name };
		h.args = a;
		h.nargs = 1;
		int r = cmd_help(&h);
		free(pos);
		return r;
	}
	for (int o = O_KUBECONFIG; o <= O_LAST; o++) {
		if (seen[o] && !(flag_scope(o) & cmd->bit)) {
			cli_err("flag --%s does not apply to %s", flag_name(o), cmd->name);
			free(pos);
			return usage_error(&c, cmd->name);
		}
	}
	if (c.nargs < cmd->min_args || c.nargs > cmd->max_args) {
		cli_err("%s: %s (usage: %s %s)", cmd->name,
		        c.nargs < cmd->min_args ? "missing argument" : "too many arguments", c.prog,
		        cmd->synopsis);
		free(pos);
		return usage_error(&c, cmd->name);
	}
	if (c.verbose && tw_rounded)
		fprintf(stderr, "kvsplit: --touch-window %s is used as %lds (the touch window is counted "
		                "in whole seconds)\n", c.touch_window_arg, c.touch_window_s);
	{
		int r = check_grace(&c, cmd);
		if (r != 0) {
			free(pos);
			return r;
		}
	}
	c.progress_tty = !c.quiet && !c.no_progress && isatty(STDERR_FILENO);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	int rc;
	if (cmd->bit & (C_VERSION | C_HELP | C_COMPLETION)) {
		rc = cmd->run(&c);
	} else {
		rc = cli_open_store(&c);
		if (rc == EXIT_OK) {
			rc = cmd->run(&c);
			kvs_close(c.store);
		} else if (cmd->bit == C_FSCK && rc != EXIT_USAGE) {
			rc = 8; /* fsck(8): operational error; usage errors still exit 2 */
		}
	}
	if (fflush(stdout) != 0 && rc == EXIT_OK) {
		cli_err("writing to stdout failed");
		rc = EXIT_ERROR;
	}
	free(pos);
	return rc;
}
