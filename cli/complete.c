/*
 * complete.c — shell completion the way kubectl (cobra) does it: the shell
 * script of `kvsplit completion bash|zsh|fish` calls back
 * `kvsplit __complete WORD... CURRENT`, which prints the candidates that
 * start with CURRENT, one a line, then a directive line: ":0" use them,
 * ":1" complete file names instead. Candidates are commands, the flags of
 * the command being typed, flag values (-o formats; --context and
 * --namespace from the kubeconfig) and keys of the current store. Nothing
 * is ever printed on stderr: a shell in the middle of a line has no room
 * for errors.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "cli.h"

#define MAX_CANDIDATES 4096

struct cands {
	const char *prefix;
	char *v[MAX_CANDIDATES];
	size_t n;
};

static void add(struct cands *c, const char *s)
{
	if (!s || strncmp(s, c->prefix, strlen(c->prefix)) != 0 || c->n == MAX_CANDIDATES)
		return;
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->v[i], s) == 0)
			return;
	if ((c->v[c->n] = strdup(s)) != NULL)
		c->n++;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int emit(struct cands *c, int directive)
{
	qsort(c->v, c->n, sizeof(c->v[0]), cmp);
	for (size_t i = 0; i < c->n; i++) {
		printf("%s\n", c->v[i]);
		free(c->v[i]);
	}
	printf(":%d\n", directive);
	return EXIT_OK;
}

/* ---- the kubeconfig's contexts and namespaces (read with libyaml) ---- */

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *m, const char *key)
{
	if (!m || m->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(d, p->key);
		if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

static const char *scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* want: 0 context names, 1 namespaces of contexts */
static void from_file(struct cands *c, const char *path, int want)
{
	FILE *f = fopen(path, "rb");
	yaml_parser_t p;
	yaml_document_t d;

	if (!f)
		return;
	if (!yaml_parser_initialize(&p)) {
		fclose(f);
		return;
	}
	yaml_parser_set_input_file(&p, f);
	if (yaml_parser_load(&p, &d)) {
		yaml_node_t *ctxs = map_get(&d, yaml_document_get_root_node(&d), "contexts");
		if (ctxs && ctxs->type == YAML_SEQUENCE_NODE)
			for (yaml_node_item_t *it = ctxs->data.sequence.items.start;
			     it < ctxs->data.sequence.items.top; it++) {
				yaml_node_t *e = yaml_document_get_node(&d, *it);
				if (want == 0)
					add(c, scalar(map_get(&d, e, "name")));
				else
					add(c, scalar(map_get(&d, map_get(&d, e, "context"), "namespace")));
			}
		yaml_document_delete(&d);
	}
	yaml_parser_delete(&p);
	fclose(f);
}

static void from_kubeconfig(struct cands *c, const char *kubeconfig, int want)
{
	const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
	char path[4096];

	if (kubeconfig) {
		from_file(c, kubeconfig, want);
	} else if (env && *env) {
		char *list = strdup(env), *save = NULL;
		for (char *q = list ? strtok_r(list, ":", &save) : NULL; q; q = strtok_r(NULL, ":", &save))
			from_file(c, q, want);
		free(list);
	} else if (home) {
		snprintf(path, sizeof(path), "%s/.kube/config", home);
		from_file(c, path, want);
	}
	if (want == 1)
		add(c, "default");
}

/* ---- keys of the store ---- */

static void keys(struct cands *c, struct cli *cl)
{
	char *token = NULL;
	int fd, saved;

	/* the library never prints, but be sure nothing reaches the terminal */
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	if ((fd = open("/dev/null", O_WRONLY)) >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	cl->request_timeout_ms = 5000;
	cl->retries = 0;
	cl->quiet = 1;
	if (cli_open_store(cl) == EXIT_OK) {
		do {
			kvs_list *l = NULL;
			kvs_list_options lo = KVS_LIST_OPTIONS_INIT;
			lo.prefix = c->prefix[0] ? c->prefix : NULL;
			lo.token = token;
			if (kvs_list_keys(&l, cl->store, &lo) < 0)
				break;
			free(token);
			token = NULL;
			for (size_t i = 0; i < l->count; i++)
				add(c, l->entries[i].key);
			if (l->next && *l->next)
				token = strdup(l->next);
			kvs_list_free(l);
		} while (token && c->n < MAX_CANDIDATES);
		free(token);
		kvs_close(cl->store);
	}
	if (saved >= 0) {
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
}

/* ---- the words typed so far ---- */

static const struct option *long_flag(const char *name, size_t len)
{
	for (const struct option *o = cli_longopts(); o->name; o++)
		if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
			return o;
	return NULL;
}

/* The long option a word names ("--context", "--context=x", "-n"), or NULL. */
static const struct option *flag_of(const char *w, const char **inline_val)
{
	*inline_val = NULL;
	if (strncmp(w, "--", 2) == 0) {
		size_t n = strcspn(w + 2, "=");
		if (w[2 + n] == '=')
			*inline_val = w + 3 + n;
		return long_flag(w + 2, n);
	}
	if (w[0] == '-' && w[1] && !w[2]) {
		for (const struct option *o = cli_longopts(); o->name; o++)
			if (o->val == w[1])
				return o;
	}
	if (w[0] == '-' && (w[1] == 'n' || w[1] == 's' || w[1] == 'o') && w[2]) {
		for (const struct option *o = cli_longopts(); o->name; o++)
			if (o->val == w[1]) {
				*inline_val = w + 2 + (w[2] == '=');
				return o;
			}
	}
	return NULL;
}

static void set_global(struct cli *cl, const struct option *o, const char *v)
{
	if (!strcmp(o->name, "kubeconfig"))
		cl->kubeconfig = v;
	else if (!strcmp(o->name, "context"))
		cl->context = v;
	else if (!strcmp(o->name, "namespace"))
		cl->namespace_ = v;
	else if (!strcmp(o->name, "server"))
		cl->server = v;
	else if (!strcmp(o->name, "store"))
		cl->store_name = v;
}

static int value_candidates(struct cands *c, struct cli *cl, const struct option *o)
{
	static const char *const file_flags[] = { "kubeconfig", "to-file", "version-file" };

	if (!strcmp(o->name, "output")) {
		add(c, "json");
		add(c, "wide");
		add(c, "name");
	} else if (!strcmp(o->name, "context")) {
		from_kubeconfig(c, cl->kubeconfig, 0);
	} else if (!strcmp(o->name, "namespace")) {
		from_kubeconfig(c, cl->kubeconfig, 1);
	} else {
		for (size_t i = 0; i < sizeof(file_flags) / sizeof(file_flags[0]); i++)
			if (!strcmp(o->name, file_flags[i]))
				return emit(c, 1);
	}
	return emit(c, 0);
}

int cli_complete(struct cli *cl, int argc, char **argv)
{
	struct cands c;
	const char *cur = argc > 0 ? argv[argc - 1] : "";
	const char *command = NULL, *iv;
	unsigned bit = 0;
	int npos = 0;

	memset(&c, 0, sizeof(c));
	c.prefix = cur;
	/* every word but the one being completed */
	for (int i = 0; i < argc - 1; i++) {
		const char *w = argv[i];
		const struct option *o;

		if (w[0] == '-' && w[1] && (o = flag_of(w, &iv)) != NULL) {
			if (o->has_arg == required_argument && !iv) {
				/* bash hands "--context=x" over as "--context" "=" "x" */
				if (i + 1 < argc - 1 && strcmp(argv[i + 1], "=") == 0)
					i++;
				if (i + 1 == argc - 1) /* its value is being typed */
					return value_candidates(&c, cl, o);
				iv = argv[++i];
			}
			if (iv)
				set_global(cl, o, iv);
			continue;
		}
		if (!command) {
			command = w;
			bit = cli_command_bit(w);
		} else {
			npos++;
		}
	}
	if (strncmp(cur, "--", 2) == 0 && strchr(cur, '='))
		return emit(&c, 0); /* bash splits at '=' (COMP_WORDBREAKS): not reached there */
	if (cur[0] == '-') {
		char buf[128];
		for (const struct option *o = cli_longopts(); o->name; o++) {
			if (bit && !(cli_flag_scope(o->val) & bit))
				continue;
			snprintf(buf, sizeof(buf), "--%s", o->name);
			add(&c, buf);
		}
		return emit(&c, 0);
	}
	if (!command) {
		for (size_t i = 0; cli_command_name(i); i++)
			add(&c, cli_command_name(i));
		return emit(&c, 0);
	}
	if (!strcmp(command, "help")) {
		if (npos == 0)
			for (size_t i = 0; cli_command_name(i); i++)
				add(&c, cli_command_name(i));
		return emit(&c, 0);
	}
	if (!strcmp(command, "completion")) {
		if (npos == 0) {
			add(&c, "bash");
			add(&c, "fish");
			add(&c, "zsh");
		}
		return emit(&c, 0);
	}
	if (!strcmp(command, "put") && npos == 1)
		return emit(&c, 1); /* the FILE */
	if (npos == 0 && bit && strcmp(command, "version") != 0 && strcmp(command, "gc") != 0)
		keys(&c, cl);
	return emit(&c, 0);
}

static const char BASH[] =
	"# bash completion for kvsplit: source <(kvsplit completion bash)\n"
	"_kvsplit_complete() {\n"
	"\tlocal IFS=$'\\n' out directive cur=\"${COMP_WORDS[COMP_CWORD]}\"\n"
	"\tout=($(\"${COMP_WORDS[0]}\" __complete \"${COMP_WORDS[@]:1:$COMP_CWORD}\" 2>/dev/null))\n"
	"\t[ ${#out[@]} -gt 0 ] || return 0\n"
	"\tdirective=${out[${#out[@]}-1]}\n"
	"\tunset 'out[${#out[@]}-1]'\n"
	"\tif [ \"$directive\" = :1 ]; then\n"
	"\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n"
	"\telse\n"
	"\t\tCOMPREPLY=(\"${out[@]}\")\n"
	"\tfi\n"
	"}\n"
	"complete -o filenames -F _kvsplit_complete kvsplit kubectl-kvsplit\n";

static const char ZSH[] =
	"#compdef kvsplit kubectl-kvsplit\n"
	"# zsh completion for kvsplit: source <(kvsplit completion zsh)\n"
	"_kvsplit() {\n"
	"\tlocal -a out\n"
	"\tlocal directive\n"
	"\tout=(\"${(@f)$(${words[1]} __complete \"${(@)words[2,$CURRENT]}\" 2>/dev/null)}\")\n"
	"\t(( ${#out} )) || return 1\n"
	"\tdirective=${out[-1]}\n"
	"\tout=(\"${(@)out[1,-2]}\")\n"
	"\tif [[ $directive == :1 ]]; then _files; else compadd -- \"${out[@]}\"; fi\n"
	"}\n"
	"compdef _kvsplit kvsplit kubectl-kvsplit\n";

static const char FISH[] =
	"# fish completion for kvsplit: kvsplit completion fish | source\n"
	"function __kvsplit_complete\n"
	"\tset -l args (commandline -opc) (commandline -ct)\n"
	"\tset -l out ($args[1] __complete $args[2..-1] 2>/dev/null)\n"
	"\ttest (count $out) -gt 0; or return\n"
	"\tset -l directive $out[-1]\n"
	"\tset -e out[-1]\n"
	"\tif test \"$directive\" = :1\n"
	"\t\t__fish_complete_path (commandline -ct)\n"
	"\telse\n"
	"\t\tprintf '%s\\n' $out\n"
	"\tend\n"
	"end\n"
	"complete -c kvsplit -f -a '(__kvsplit_complete)'\n"
	"complete -c kubectl-kvsplit -f -a '(__kvsplit_complete)'\n";

int cmd_completion(struct cli *c)
{
	const char *sh = c->args[0];

	if (!strcmp(sh, "bash"))
		fputs(BASH, stdout);
	else if (!strcmp(sh, "zsh"))
		fputs(ZSH, stdout);
	else if (!strcmp(sh, "fish"))
		fputs(FISH, stdout);
	else {
		cli_err("completion: unknown shell %s (bash, zsh or fish)", cli_quoted(sh));
		cli_usage_hint(c, "completion");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}
