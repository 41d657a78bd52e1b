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
	C_MAP = 1 << 10,
	C_ALL = 0x7ff
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
	{ "get", NULL, C_GET, cmd_get, 1, 1, "get KEY [--to-file FILE]",
	  "write a value to stdout, or atomically to FILE",
	  "Every byte is verified against its content hash before it is written. With\n"
	  "--to-file the value goes to a temporary file in FILE's directory that is\n"
	  "renamed to FILE only once the whole value verified: a failed read never\n"
	  "leaves a partial FILE. On stdout, bytes already written stay written.\n"
	  "Examples:\n"
	  "  kvsplit get wf/status > status.json\n"
	  "  kvsplit get wf/status --to-file status.json\n" },
	{ "ls", "list", C_LS, cmd_ls, 0, 1, "ls [PREFIX]",
	  "list keys (all pages) with size and version",
	  "Columns KEY SIZE VERSION; -o wide adds GENERATION CHUNKS SEGMENTS STORED\n"
	  "(one more request per key); -o name prints keys only; -o json prints\n"
	  "{\"items\":[...]}.\n"
	  "Examples:\n"
	  "  kvsplit ls\n"
	  "  kvsplit ls wf/ -o wide\n" },
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
	{ "watch", NULL, C_WATCH, cmd_watch, 1, 1, "watch KEY|PREFIX [--prefix] [--to-file FILE]",
	  "print one line per committed change",
	  "First reports the current state of every matching key, then each change.\n"
	  "--prefix watches every key starting with the argument (\"\" = all keys).\n"
	  "--to-file FILE keeps FILE equal to the key's latest value (written to a\n"
	  "temporary and renamed, so FILE is always a whole verified value).\n"
	  "--max-events N and --timeout DURATION stop the watch (exit 0).\n"
	  "-o json prints NDJSON, one object per event.\n"
	  "Examples:\n"
	  "  kvsplit watch wf/ --prefix\n"
	  "  kvsplit watch wf/status --to-file status.json\n" },
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
	  "left, 8 operational error.\n"
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
	{ "version", NULL, C_VERSION, cmd_version, 0, 0, "version", "print the version", "" },
	{ "help", NULL, C_HELP, cmd_help, 0, 1, "help [COMMAND]", "help about a command", "" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

enum {
	O_KUBECONFIG = 1000, O_CONTEXT, O_STORE, O_EXPECT, O_NOPROGRESS, O_REQTIMEOUT,
	O_RETRIES, O_TOUCHWINDOW, O_TOFILE, O_PREFIX, O_MAXEVENTS, O_TIMEOUT, O_GRACE, O_DRYRUN, O_RATE,
	O_READDATA, O_REPAIR
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
	{ "touch-window", required_argument, NULL, O_TOUCHWINDOW },
	{ "help", no_argument, NULL, 'h' },
	{ "to-file", required_argument, NULL, O_TOFILE },
	{ "prefix", no_argument, NULL, O_PREFIX },
	{ "max-events", required_argument, NULL, O_MAXEVENTS },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "grace", required_argument, NULL, O_GRACE },
	{ "dry-run", no_argument, NULL, O_DRYRUN },
	{ "rate", required_argument, NULL, O_RATE },
	{ "read-data", required_argument, NULL, O_READDATA },
	{ "repair", no_argument, NULL, O_REPAIR },
	{ NULL, 0, NULL, 0 }
};

/* Which commands each command-specific flag belongs to (global flags: all). */
static unsigned flag_scope(int opt)
{
	switch (opt) {
	case O_EXPECT: return C_PUT | C_RM | C_MAP;
	case O_TOFILE: return C_GET | C_WATCH;
	case O_PREFIX: case O_MAXEVENTS: case O_TIMEOUT: return C_WATCH;
	case O_GRACE: return C_GC | C_FSCK;
	case O_DRYRUN: case O_RATE: return C_GC;
	case O_READDATA: case O_REPAIR: return C_FSCK;
	default: return C_ALL;
	}
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
	        "      --expect-version V       put/rm: only if V is the committed version\n"
	        "  -o, --output FORMAT          json | wide | name (a format, never a file)\n"
	        "  -q, --quiet                  print only what was asked for, no progress\n"
	        "  -v, --verbose                say what is being done on stderr\n"
	        "      --no-progress            no progress bar (it is shown on a terminal only)\n"
	        "      --request-timeout DUR    per-request timeout (e.g. 30s)\n"
	        "      --retries N              transient failures retried per request (default 6)\n"
	        "      --touch-window DUR       writers' touch window (default 10m); gc/fsck --grace\n"
	        "                               must exceed it (expert: see docs/cli.md)\n"
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

/* Report an unknown or malformed flag the way kubectl users expect. */
static int bad_flag(const struct cli *c, const char *arg, int missing_arg)
{
	char name[128];
	const char *names[sizeof(longopts) / sizeof(longopts[0])];
	size_t n = 0;

	snprintf(name, sizeof(name), "%s", arg);
	char *eq = strchr(name, '=');
	if (eq)
		*eq = '\0';
	if (missing_arg) {
		cli_err("flag %s needs an argument", name);
		return usage_error(c, c->command);
	}
	if (strncmp(name, "--", 2) == 0) {
		for (const struct option *o = longopts; o->name; o++)
			names[n++] = o->name;
		const char *s = cli_suggest(name + 2, names, n);
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
	if (strcmp(v, "json") == 0)
		c->format = OUT_JSON;
	else if (strcmp(v, "wide") == 0)
		c->format = OUT_WIDE;
	else if (strcmp(v, "name") == 0)
		c->format = OUT_NAME;
	else {
		cli_err("unknown output format \"%s\" (json, wide or name)", v);
		if (strchr(v, '.') || strchr(v, '/'))
			fprintf(stderr, "hint: -o/--output names a format; to write a value to a file use "
			                "'%s get KEY --to-file %s' (or '> %s')\n", c->prog, v, v);
		return -1;
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
		if (cli_tmp_path[0])
			unlink(cli_tmp_path);
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
	rc = kvs_backend_kube(&b, &ko);
	if (rc < 0)
		return cli_fail(c, rc, NULL, "cluster configuration");
	c->ns_resolved = kvs_backend_namespace(b);
	so.name = c->store_name;
	so.touch_window_s = (uint32_t)c->touch_window_s;
	rc = kvs_open(&c->store, b, &so);
	if (rc < 0) {
		kvs_backend_free(b);
		return cli_fail(c, rc, NULL, "cannot open store %s", c->store_name);
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
	int npos = 0, opt, want_help = 0;
	int seen[O_REPAIR + 1];

	memset(&c, 0, sizeof(c));
	memset(seen, 0, sizeof(seen));
	c.prog = prog_name(argv[0]);
	c.retries = -1;
	c.grace_s = -1;
	c.read_data = -2;
	c.store_name = getenv("KVSPLIT_STORE");
	if (!c.store_name || !*c.store_name)
		c.store_name = "default";

	pos = calloc((size_t)argc + 1, sizeof(*pos));
	if (!pos) {
		cli_err("out of memory");
		return EXIT_ERROR;
	}

	/*
	 * "-" first: non-options come back in order as 1, so flags may sit
	 * anywhere (kubectl style) whatever POSIXLY_CORRECT says; ":" next:
	 * a missing argument is reported as ':' so we word the error ourselves.
	 */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "-:n:s:o:qvh", longopts, NULL)) != -1) {
		switch (opt) {
		case 1:
			pos[npos++] = optarg;
			if (npos == 1)
				c.command = optarg;
			continue;
		case '?': {
			const char *bad = argv[optind - 1];
			char shortbuf[3] = { '-', (char)optopt, 0 };
			free(pos);
			return bad_flag(&c, optopt && strncmp(bad, "--", 2) != 0 ? shortbuf : bad, 0);
		}
		case ':': {
			const char *bad = argv[optind - 1];
			char shortbuf[3] = { '-', (char)optopt, 0 };
			free(pos);
			return bad_flag(&c, strncmp(bad, "--", 2) == 0 ? bad : shortbuf, 1);
		}
		case O_KUBECONFIG: c.kubeconfig = optarg; break;
		case O_CONTEXT: c.context = optarg; break;
		case 'n': c.namespace_ = optarg; break;
		case 's': c.server = optarg; break;
		case O_STORE: c.store_name = optarg; break;
		case O_EXPECT:
			c.expect_version = optarg;
			c.has_expect_version = 1;
			break;
		case 'o':
			if (parse_output(&c, optarg) < 0) {
				free(pos);
				return usage_error(&c, c.command);
			}
			break;
		case 'q': c.quiet = 1; break;
		case 'v': c.verbose++; break;
		case 'h': want_help = 1; break;
		case O_NOPROGRESS: c.no_progress = 1; break;
		case O_REQTIMEOUT:
			if (cli_parse_duration(optarg, &c.request_timeout_ms) < 0 ||
			    c.request_timeout_ms > 3600000L) {
				cli_err("invalid --request-timeout \"%s\" (e.g. 30s, 2m)", optarg);
				free(pos);
				return usage_error(&c, c.command);
			}
			break;
		case O_RETRIES:
			if (parse_long(optarg, 0, 100, &c.retries) < 0) {
				cli_err("invalid --retries \"%s\" (0..100)", optarg);
				free(pos);
				return usage_error(&c, c.command);
			}
			break;
		case O_TOUCHWINDOW: {
			long ms;
			if (cli_parse_duration(optarg, &ms) < 0 || ms < 1000 || ms / 1000 > 0xffffffffL) {
				cli_err("invalid --touch-window \"%s\" (at least 1s, e.g. 10m)", optarg);
				free(pos);
				return usage_error(&c, c.command);
			}
			c.touch_window_s = ms / 1000;
			break;
		}
		case O_TOFILE: c.to_file = optarg; break;
		case O_PREFIX: c.prefix = 1; break;
		case O_MAXEVENTS:
			if (parse_long(optarg, 1, 1L << 40, &c.max_events) < 0) {
				cli_err("invalid --max-events \"%s\"", optarg);
				free(pos);
				return usage_error(&c, c.command);
			}
			break;
		case O_TIMEOUT:
			if (cli_parse_duration(optarg, &c.timeout_ms) < 0) {
				cli_err("invalid --timeout \"%s\" (e.g. 30s, 5m)", optarg);
				free(pos);
				return usage_error(&c, c.command);
			}
			break;
		case O_GRACE: {
			long ms;
			if (cli_parse_duration(optarg, &ms) < 0 || ms / 1000 > 0xffffffffL) {
				cli_err("invalid --grace \"%s\" (e.g. 1h, 90m)", optarg);
				free(pos);
				return usage_error(&c, c.command);
			}
			c.grace_s = ms / 1000;
			break;
		}
		case O_DRYRUN: c.dry_run = 1; break;
		case O_RATE: {
			char *end;
			c.rate = strtod(optarg, &end);
			if (end == optarg || *end || !(c.rate > 0) || c.rate > 1e6) {
				cli_err("invalid --rate \"%s\" (deletes per second, > 0)", optarg);
				free(pos);
				return usage_error(&c, c.command);
			}
			break;
		}
		case O_READDATA: {
			char *end;
			double v = strtod(optarg, &end);
			if (end == optarg || !(*end == '\0' || (end[0] == '%' && end[1] == '\0')) ||
			    !(v >= 0 && v <= 100)) {
				cli_err("invalid --read-data \"%s\" (a percentage, 0%%..100%%)", optarg);
				free(pos);
				return usage_error(&c, c.command);
			}
			c.read_data = v / 100.0;
			break;
		}
		case O_REPAIR: c.repair = 1; break;
		default:
			free(pos);
			cli_err("internal error: unhandled flag");
			return EXIT_ERROR;
		}
		if (opt >= O_KUBECONFIG && opt <= O_REPAIR)
			seen[opt] = 1;
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
	for (int o = O_KUBECONFIG; o <= O_REPAIR; o++) {
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
	c.progress_tty = !c.quiet && !c.no_progress && isatty(STDERR_FILENO);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	int rc;
	if (cmd->bit & (C_VERSION | C_HELP)) {
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
