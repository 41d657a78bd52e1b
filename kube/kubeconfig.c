/*
 * kube/kubeconfig.c — kubectl's rules for finding credentials, with libyaml.
 *
 * Each kubeconfig file is loaded as a YAML document tree. The files of a
 * $KUBECONFIG list are kept open together and merged the way client-go
 * merges them: the first file that sets current-context wins, and a named
 * cluster, context or user comes from the first file that defines that name.
 * Relative paths inside a file are resolved against that file's directory.
 * Every complaint names the file, the line (libyaml's marks, 1-based) and
 * the field.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "kube/json.h"
#include "kube/kubeconfig.h"

#define KC_MAX_FILE (16u * 1024u * 1024u) /* a kubeconfig larger than this is refused */
#define KC_MAX_FILES 32
#define KC_MAX_DEPTH 64                   /* nesting of mappings and sequences */
#define SA_DIR_DEFAULT "/var/run/secrets/kubernetes.io/serviceaccount"

int kvs__read_small_file(char **out, size_t *len, const char *path, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0, sz = 4096;
	char *buf = NULL, *nb;
	ssize_t r;

	*out = NULL;
	if (len)
		*len = 0;
	if (fd < 0)
		return -errno;
	for (;;) {
		if (n + 1 >= sz || !buf) {
			if (buf)
				sz *= 2;
			if (sz > cap + 2)
				sz = cap + 2;
			if (!(nb = realloc(buf, sz))) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
		}
		r = read(fd, buf + n, sz - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > cap) {
			free(buf);
			close(fd);
			return -EFBIG;
		}
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

/* One loaded file. */
struct kfile {
	char *path;
	char *dir;
	yaml_document_t doc;
	int loaded;
};

struct kset {
	struct kfile f[KC_MAX_FILES];
	int n;
};

static void kset_free(struct kset *s)
{
	for (int i = 0; i < s->n; i++) {
		free(s->f[i].path);
		free(s->f[i].dir);
		if (s->f[i].loaded)
			yaml_document_delete(&s->f[i].doc);
	}
}

static int nomem(void)
{
	return kvs_error_set(KVS_ENOMEM, "out of memory reading the kubeconfig");
}

/* libyaml has no nesting limit, and its scanner takes time quadratic in the
 * depth of flow collections ("[[[[..."): walk the events of the first
 * document once with a depth cap before building its tree. Syntax errors are
 * left to the loader, which stops at the same place. */
static int check_depth(const char *path, const char *text, size_t len)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int depth = 0, rc = 0;

	if (!yaml_parser_initialize(&p))
		return nomem();
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (yaml_parser_parse(&p, &ev)) {
		yaml_event_type_t t = ev.type;

		if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
			if (++depth > KC_MAX_DEPTH) {
				rc = kvs_error_set(KVS_ECONFIG,
				                   "kubeconfig %s:%zu: nested deeper than %d levels", path,
				                   ev.start_mark.line + 1, KC_MAX_DEPTH);
				yaml_event_delete(&ev);
				break;
			}
		} else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
			depth--;
		}
		yaml_event_delete(&ev);
		if (t == YAML_DOCUMENT_END_EVENT || t == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&p);
	return rc;
}

static int load_file(struct kfile *f, const char *path)
{
	yaml_parser_t p;
	char *text = NULL, *slash;
	size_t len;
	int rc;

	memset(f, 0, sizeof(*f));
	if (!(f->path = strdup(path)) || !(f->dir = strdup(path)))
		return nomem();
	slash = strrchr(f->dir, '/');
	if (slash)
		slash[slash == f->dir ? 1 : 0] = '\0';
	else
		strcpy(f->dir, ".");
	rc = kvs__read_small_file(&text, &len, path, KC_MAX_FILE);
	if (rc < 0)
		return kvs_error_set(KVS_ECONFIG, "kubeconfig %s: cannot read: %s", path,
		                     rc == -EFBIG ? "file larger than 16 MiB" : strerror(-rc));
	if ((rc = check_depth(path, text, len)) < 0) {
		free(text);
		return rc;
	}
	if (!yaml_parser_initialize(&p)) {
		free(text);
		return nomem();
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	if (!yaml_parser_load(&p, &f->doc)) {
		rc = kvs_error_set(KVS_ECONFIG, "kubeconfig %s:%zu:%zu: malformed YAML: %s%s%s", path,
		                   p.problem_mark.line + 1, p.problem_mark.column + 1,
		                   p.problem ? p.problem : "parse error",
		                   p.context ? " " : "", p.context ? p.context : "");
		yaml_parser_delete(&p);
		free(text);
		return rc;
	}
	f->loaded = 1;
	yaml_parser_delete(&p);
	free(text);
	yaml_node_t *root = yaml_document_get_root_node(&f->doc);
	if (root && root->type != YAML_MAPPING_NODE)
		return kvs_error_set(KVS_ECONFIG, "kubeconfig %s:%zu: top level is not a mapping", path,
		                     root->start_mark.line + 1);
	return 0;
}

static size_t line_of(const yaml_node_t *n)
{
	return n ? n->start_mark.line + 1 : 0;
}

/* The value node under `key` in a mapping node, or NULL. */
static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = yaml_document_get_node(d, pr->key);
		if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(key) &&
		    memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
			return yaml_document_get_node(d, pr->value);
	}
	return NULL;
}

/* A scalar field as a string: 0 and *out (borrowed, NUL-terminated by
 * libyaml) or NULL when absent/null; KVS_ECONFIG when not a scalar. */
static int scalar(const char **out, struct kfile *f, yaml_node_t *map, const char *key,
                  const char *where)
{
	yaml_node_t *v = map_get(&f->doc, map, key);

	*out = NULL;
	if (!v)
		return 0;
	if (v->type != YAML_SCALAR_NODE)
		return kvs_error_set(KVS_ECONFIG, "kubeconfig %s:%zu: %s.%s must be a string", f->path,
		                     line_of(v), where, key);
	if (v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (strcmp((char *)v->data.scalar.value, "null") == 0 ||
	     strcmp((char *)v->data.scalar.value, "~") == 0 || v->data.scalar.length == 0))
		return 0;
	if (strlen((char *)v->data.scalar.value) != v->data.scalar.length)
		return kvs_error_set(KVS_ECONFIG, "kubeconfig %s:%zu: %s.%s contains a NUL byte",
		                     f->path, line_of(v), where, key);
	*out = (const char *)v->data.scalar.value;
	return 0;
}

/* Find the entry named `name` in the list `list` ("clusters", ...) of the
 * first file that defines it; returns its inner mapping (`cluster`, ...). */
static int find_named(struct kset *s, const char *list, const char *inner, const char *name,
                      struct kfile **of, yaml_node_t **onode)
{
	*of = NULL;
	*onode = NULL;
	for (int i = 0; i < s->n; i++) {
		struct kfile *f = &s->f[i];
		yaml_node_t *root = yaml_document_get_root_node(&f->doc);
		yaml_node_t *seq = map_get(&f->doc, root, list);

		if (!seq || (seq->type == YAML_SCALAR_NODE && seq->data.scalar.length == 0))
			continue;
		if (seq->type == YAML_SCALAR_NODE &&
		    (strcmp((char *)seq->data.scalar.value, "null") == 0 ||
		     strcmp((char *)seq->data.scalar.value, "~") == 0))
			continue;
		if (seq->type != YAML_SEQUENCE_NODE)
			return kvs_error_set(KVS_ECONFIG, "kubeconfig %s:%zu: %s must be a list", f->path,
			                     line_of(seq), list);
		for (yaml_node_item_t *it = seq->data.sequence.items.start;
		     it < seq->data.sequence.items.top; it++) {
			yaml_node_t *e = yaml_document_get_node(&f->doc, *it);
			const char *nm;
			int rc;

			if (!e || e->type != YAML_MAPPING_NODE)
				return kvs_error_set(KVS_ECONFIG,
				                     "kubeconfig %s:%zu: each entry of %s must be a mapping",
				                     f->path, line_of(e), list);
			if ((rc = scalar(&nm, f, e, "name", list)) < 0)
				return rc;
			if (nm && strcmp(nm, name) == 0) {
				yaml_node_t *in = map_get(&f->doc, e, inner);
				if (in && in->type != YAML_MAPPING_NODE)
					return kvs_error_set(KVS_ECONFIG,
					                     "kubeconfig %s:%zu: %s \"%s\": %s must be a mapping",
					                     f->path, line_of(in), list, name, inner);
				*of = f;
				*onode = in; /* NULL: an entry without its body, fields all absent */
				return 1;
			}
		}
	}
	return 0;
}

static char *resolve_path(const struct kfile *f, const char *p)
{
	char *r;

	if (p[0] == '/')
		return strdup(p);
	if (asprintf(&r, "%s/%s", f->dir, p) < 0)
		return NULL;
	return r;
}

static int get_path(char **out, struct kfile *f, yaml_node_t *m, const char *key,
                    const char *where)
{
	const char *v;
	int rc = scalar(&v, f, m, key, where);

	if (rc < 0 || !v)
		return rc;
	if (!(*out = resolve_path(f, v)))
		return nomem();
	if (access(*out, R_OK) != 0)
		return kvs_error_set(KVS_ECONFIG, "kubeconfig %s:%zu: %s.%s: cannot read %s: %s",
		                     f->path, line_of(map_get(&f->doc, m, key)), where, key, *out,
		                     strerror(errno));
	return 0;
}

static int get_str(char **out, struct kfile *f, yaml_node_t *m, const char *key,
                   const char *where)
{
	const char *v;
	int rc = scalar(&v, f, m, key, where);

	if (rc < 0 || !v)
		return rc;
	if (!(*out = strdup(v)))
		return nomem();
	return 0;
}

static int get_b64(uint8_t **out, size_t *len, struct kfile *f, yaml_node_t *m,
                   const char *key, const char *where)
{
	const char *v;
	int rc = scalar(&v, f, m, key, where);
	char *clean;
	size_t n = 0;

	if (rc < 0 || !v)
		return rc;
	/* tolerate line breaks and spaces inside the base64 (YAML folding) */
	if (!(clean = malloc(strlen(v) + 1)))
		return nomem();
	for (const char *p = v; *p; p++)
		if (*p != '\n' && *p != '\r' && *p != ' ' && *p != '\t')
			clean[n++] = *p;
	rc = kvs__b64_decode(out, len, clean, n);
	free(clean);
	if (rc == -2)
		return nomem();
	if (rc < 0)
		return kvs_error_set(KVS_ECONFIG, "kubeconfig %s:%zu: %s.%s is not valid base64",
		                     f->path, line_of(map_get(&f->doc, m, key)), where, key);
	return 0;
}

static int get_bool(int *out, struct kfile *f, yaml_node_t *m, const char *key,
                    const char *where)
{
	const char *v;
	int rc = scalar(&v, f, m, key, where);

	if (rc < 0 || !v)
		return rc;
	if (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 || strcmp(v, "TRUE") == 0)
		*out = 1;
	else if (strcmp(v, "false") == 0 || strcmp(v, "False") == 0 || strcmp(v, "FALSE") == 0)
		*out = 0;
	else
		return kvs_error_set(KVS_ECONFIG, "kubeconfig %s:%zu: %s.%s must be true or false",
		                     f->path, line_of(map_get(&f->doc, m, key)), where, key);
	return 0;
}


/* proxy-url: the schemes client-go accepts. */
static int check_proxy_url(const char *u, struct kfile *f, yaml_node_t *m, const char *where)
{
	static const char *const ok[] = { "http://", "https://", "socks5://", "socks5h://" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strncmp(u, ok[i], strlen(ok[i])) == 0 && u[strlen(ok[i])])
			return 0;
	return kvs_error_set(KVS_ECONFIG,
	                     "kubeconfig %s:%zu: %s.proxy-url \"%s\": want an http://, https://, "
	                     "socks5:// or socks5h:// URL",
	                     f->path, line_of(map_get(&f->doc, m, "proxy-url")), where, u);
}

#define EXEC_V1 "client.authentication.k8s.io/v1"
#define EXEC_V1BETA1 "client.authentication.k8s.io/v1beta1"
#define EXEC_MAX_ITEMS 1024

/* A list of strings (`args`) or of {name, value} (`env`) into *out. */
static int get_exec_list(char ***out, size_t *n, struct kfile *f, yaml_node_t *m,
                         const char *key, int is_env, const char *where)
{
	yaml_node_t *seq = map_get(&f->doc, m, key);
	size_t cnt;

	*out = NULL;
	*n = 0;
	if (!seq || (seq->type == YAML_SCALAR_NODE && (seq->data.scalar.length == 0 ||
	                                               !strcmp((char *)seq->data.scalar.value, "null"))))
		return 0;
	if (seq->type != YAML_SEQUENCE_NODE)
		return kvs_error_set(KVS_ECONFIG, "kubeconfig %s:%zu: %s.exec.%s must be a list",
		                     f->path, line_of(seq), where, key);
	cnt = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	if (cnt > EXEC_MAX_ITEMS)
		return kvs_error_set(KVS_ECONFIG, "kubeconfig %s:%zu: %s.exec.%s has more than %d items",
		                     f->path, line_of(seq), where, key, EXEC_MAX_ITEMS);
	if (!(*out = calloc(cnt + 1, sizeof(**out))))
		return nomem();
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
	     it++) {
		yaml_node_t *e = yaml_document_get_node(&f->doc, *it);
		char *v;

		if (!is_env) {
			if (!e || e->type != YAML_SCALAR_NODE ||
			    strlen((char *)e->data.scalar.value) != e->data.scalar.length)
				return kvs_error_set(KVS_ECONFIG,
				                     "kubeconfig %s:%zu: %s.exec.args: each item must be a "
				                     "string",
				                     f->path, line_of(e), where);
			v = strdup((char *)e->data.scalar.value);
		} else {
			const char *nm = NULL, *val = NULL;
			int rc;

			if (!e || e->type != YAML_MAPPING_NODE)
				return kvs_error_set(KVS_ECONFIG,
				                     "kubeconfig %s:%zu: %s.exec.env: each item must be a "
				                     "mapping with name and value",
				                     f->path, line_of(e), where);
			if ((rc = scalar(&nm, f, e, "name", "exec.env")) < 0 ||
			    (rc = scalar(&val, f, e, "value", "exec.env")) < 0)
				return rc;
			if (!nm || !*nm || strchr(nm, '='))
				return kvs_error_set(KVS_ECONFIG,
				                     "kubeconfig %s:%zu: %s.exec.env: an item needs a name "
				                     "without '='",
				                     f->path, line_of(e), where);
			if (asprintf(&v, "%s=%s", nm, val ? val : "") < 0)
				v = NULL;
		}
		if (!v)
			return nomem();
		(*out)[(*n)++] = v;
	}
	return 0;
}

/* A user's `exec` section, as client-go reads it (apiVersion and command
 * required; v1 also requires interactiveMode; a command with a '/' is a
 * path relative to the kubeconfig's directory). */
static int get_exec(kvs__kubeconf *kc, struct kfile *f, yaml_node_t *m, const char *user)
{
	char where[300];
	const char *mode = NULL;
	int rc;
	kvs__exec_conf *x;

	snprintf(where, sizeof(where), "user \"%s\"", user);
	if (m->type != YAML_MAPPING_NODE)
		return kvs_error_set(KVS_ECONFIG, "kubeconfig %s:%zu: %s.exec must be a mapping",
		                     f->path, line_of(m), where);
	if (!(x = kc->exec = calloc(1, sizeof(*x))) || !(x->user = strdup(user)))
		return nomem();
	if ((rc = get_str(&x->api_version, f, m, "apiVersion", "exec")) < 0 ||
	    (rc = get_str(&x->command, f, m, "command", "exec")) < 0 ||
	    (rc = get_str(&x->install_hint, f, m, "installHint", "exec")) < 0 ||
	    (rc = get_bool(&x->provide_cluster_info, f, m, "provideClusterInfo", "exec")) < 0 ||
	    (rc = scalar(&mode, f, m, "interactiveMode", "exec")) < 0 ||
	    (rc = get_exec_list(&x->args, &x->nargs, f, m, "args", 0, where)) < 0 ||
	    (rc = get_exec_list(&x->env, &x->nenv, f, m, "env", 1, where)) < 0)
		return rc;
	if (!x->api_version)
		return kvs_error_set(KVS_ECONFIG,
		                     "kubeconfig %s:%zu: %s.exec has no apiVersion (want " EXEC_V1
		                     " or " EXEC_V1BETA1 ")",
		                     f->path, line_of(m), where);
	if (strcmp(x->api_version, EXEC_V1) != 0 && strcmp(x->api_version, EXEC_V1BETA1) != 0)
		return kvs_error_set(KVS_ECONFIG,
		                     "kubeconfig %s:%zu: %s.exec.apiVersion \"%s\" is not supported "
		                     "(want " EXEC_V1 " or " EXEC_V1BETA1 ")",
		                     f->path, line_of(map_get(&f->doc, m, "apiVersion")), where,
		                     x->api_version);
	if (!x->command)
		return kvs_error_set(KVS_ECONFIG, "kubeconfig %s:%zu: %s.exec has no command", f->path,
		                     line_of(m), where);
	if (!mode) {
		if (strcmp(x->api_version, EXEC_V1) == 0)
			return kvs_error_set(KVS_ECONFIG,
			                     "kubeconfig %s:%zu: %s.exec.interactiveMode must be set for "
			                     EXEC_V1 " (Never, IfAvailable or Always)",
			                     f->path, line_of(m), where);
		x->interactive = KVS__EXEC_IF_AVAILABLE;
	} else if (strcmp(mode, "Never") == 0) {
		x->interactive = KVS__EXEC_NEVER;
	} else if (strcmp(mode, "IfAvailable") == 0) {
		x->interactive = KVS__EXEC_IF_AVAILABLE;
	} else if (strcmp(mode, "Always") == 0) {
		x->interactive = KVS__EXEC_ALWAYS;
	} else {
		return kvs_error_set(KVS_ECONFIG,
		                     "kubeconfig %s:%zu: %s.exec.interactiveMode \"%s\": want Never, "
		                     "IfAvailable or Always",
		                     f->path, line_of(map_get(&f->doc, m, "interactiveMode")), where, mode);
	}
	if (strchr(x->command, '/') && x->command[0] != '/') {
		char *abs = resolve_path(f, x->command);
		if (!abs)
			return nomem();
		free(x->command);
		x->command = abs;
	}
	return 0;
}

void kvs__kubeconf_free(kvs__kubeconf *kc)
{
	if (!kc)
		return;
	free(kc->source);
	free(kc->context);
	free(kc->server);
	free(kc->ns);
	free(kc->ca_file);
	free(kc->ca_data);
	free(kc->tls_server_name);
	free(kc->proxy_url);
	kvs__exec_conf_free(kc->exec);
	if (kc->token)
		explicit_bzero(kc->token, strlen(kc->token));
	free(kc->token);
	free(kc->token_file);
	free(kc->cert_file);
	free(kc->cert_data);
	free(kc->key_file);
	if (kc->key_data)
		explicit_bzero(kc->key_data, kc->key_len);
	free(kc->key_data);
	free(kc->username);
	if (kc->password)
		explicit_bzero(kc->password, strlen(kc->password));
	free(kc->password);
	free(kc);
}

static void trim(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
}

/* In-cluster: service account files and KUBERNETES_SERVICE_HOST/PORT.
 * Returns 1 when configured, 0 when not in a cluster. */
static int load_in_cluster(kvs__kubeconf *kc, const char *ns, const char *dir)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char *tok = NULL, *nsf = NULL;
	size_t n;
	int rc;

	if (!dir || !*dir)
		dir = SA_DIR_DEFAULT;
	if (!host || !*host)
		return 0;
	if (asprintf(&kc->token_file, "%s/token", dir) < 0) {
		kc->token_file = NULL;
		return nomem();
	}
	if (access(kc->token_file, R_OK) != 0) {
		free(kc->token_file);
		kc->token_file = NULL;
		return 0;
	}
	if (asprintf(&kc->ca_file, "%s/ca.crt", dir) < 0) {
		kc->ca_file = NULL;
		return nomem();
	}
	if (access(kc->ca_file, R_OK) != 0) {
		free(kc->ca_file);
		kc->ca_file = NULL;
	}
	if (!port || !*port)
		port = "443";
	if (asprintf(&kc->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
	             port) < 0) {
		kc->server = NULL;
		return nomem();
	}
	if (!ns) {
		if (asprintf(&tok, "%s/namespace", dir) < 0)
			return nomem();
		rc = kvs__read_small_file(&nsf, &n, tok, 4096);
		free(tok);
		if (rc == 0) {
			trim(nsf);
			if (nsf[0])
				kc->ns = nsf;
			else
				free(nsf);
		}
	}
	kc->in_cluster = 1;
	if (!(kc->source = strdup("in-cluster service account")))
		return nomem();
	return 1;
}

static int set_default_ns(kvs__kubeconf *kc, const char *ns)
{
	if (ns) {
		free(kc->ns);
		kc->ns = strdup(ns);
	} else if (!kc->ns) {
		kc->ns = strdup("default");
	}
	return kc->ns ? 0 : nomem();
}

static int describe_files(char *buf, size_t cap, const struct kset *s)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < s->n && off + 1 < cap; i++) {
		int w = snprintf(buf + off, cap - off, "%s%s", i ? ":" : "", s->f[i].path);
		if (w < 0)
			break;
		off += (size_t)w;
	}
	return 0;
}

static int resolve(kvs__kubeconf *kc, struct kset *s, const char *context, const char *ns,
                   const char *server)
{
	char files[512];
	const char *cur = NULL, *cl_name = NULL, *us_name = NULL, *ctx_ns = NULL;
	struct kfile *cf = NULL, *clf = NULL, *usf = NULL;
	yaml_node_t *cn = NULL, *cln = NULL, *usn = NULL;
	char where[300];
	int rc;

	describe_files(files, sizeof(files), s);
	if (!context) {
		for (int i = 0; i < s->n && !cur; i++) {
			yaml_node_t *root = yaml_document_get_root_node(&s->f[i].doc);
			if ((rc = scalar(&cur, &s->f[i], root, "current-context", "")) < 0)
				return rc;
		}
		context = cur;
	}
	if (!context) {
		if (server) /* nothing to take from the files but the URL is given */
			goto finish;
		return kvs_error_set(KVS_ECONFIG,
		                     "kubeconfig %s: no current-context set and no context given",
		                     files);
	}
	if (!(kc->context = strdup(context)))
		return nomem();
	if ((rc = find_named(s, "contexts", "context", context, &cf, &cn)) < 0)
		return rc;
	if (rc == 0)
		return kvs_error_set(KVS_ECONFIG, "kubeconfig %s: context \"%s\" not found", files,
		                     context);
	snprintf(where, sizeof(where), "context \"%s\"", context);
	if (cn && ((rc = scalar(&cl_name, cf, cn, "cluster", where)) < 0 ||
	           (rc = scalar(&us_name, cf, cn, "user", where)) < 0 ||
	           (rc = scalar(&ctx_ns, cf, cn, "namespace", where)) < 0))
		return rc;
	/* like client-go: an empty namespace is no namespace ("default") */
	if (ctx_ns && ctx_ns[0] && !(kc->ns = strdup(ctx_ns)))
		return nomem();
	if (!cl_name && !server)
		return kvs_error_set(KVS_ECONFIG, "kubeconfig %s:%zu: context \"%s\" names no cluster",
		                     cf->path, line_of(cn), context);
	if (cl_name) {
		if ((rc = find_named(s, "clusters", "cluster", cl_name, &clf, &cln)) < 0)
			return rc;
		if (rc == 0)
			return kvs_error_set(KVS_ECONFIG,
			                     "kubeconfig %s: cluster \"%s\" (of context \"%s\") not found",
			                     files, cl_name, context);
		snprintf(where, sizeof(where), "cluster \"%s\"", cl_name);
		if (cln &&
		    ((rc = get_str(&kc->server, clf, cln, "server", where)) < 0 ||
		     (rc = get_path(&kc->ca_file, clf, cln, "certificate-authority", where)) < 0 ||
		     (rc = get_b64(&kc->ca_data, &kc->ca_len, clf, cln, "certificate-authority-data",
		                   where)) < 0 ||
		     (rc = get_bool(&kc->insecure, clf, cln, "insecure-skip-tls-verify", where)) < 0 ||
		     (rc = get_str(&kc->tls_server_name, clf, cln, "tls-server-name", where)) < 0 ||
		     (rc = get_str(&kc->proxy_url, clf, cln, "proxy-url", where)) < 0))
			return rc;
		if (kc->proxy_url && (rc = check_proxy_url(kc->proxy_url, clf, cln, where)) < 0)
			return rc;
		if (!kc->server && !server)
			return kvs_error_set(KVS_ECONFIG, "kubeconfig %s:%zu: cluster \"%s\" has no server",
			                     clf->path, line_of(cln), cl_name);
		/* like client-go: never drop a configured CA silently */
		if (kc->insecure && (kc->ca_file || kc->ca_data))
			return kvs_error_set(KVS_ECONFIG,
			                     "kubeconfig %s:%zu: cluster \"%s\": insecure-skip-tls-verify "
			                     "together with a certificate-authority is not allowed",
			                     clf->path, line_of(cln), cl_name);
	}
	if (us_name) {
		if ((rc = find_named(s, "users", "user", us_name, &usf, &usn)) < 0)
			return rc;
		if (rc == 0)
			return kvs_error_set(KVS_ECONFIG,
			                     "kubeconfig %s: user \"%s\" (of context \"%s\") not found",
			                     files, us_name, context);
		snprintf(where, sizeof(where), "user \"%s\"", us_name);
		if (usn) {
			yaml_node_t *x;

			if ((x = map_get(&usf->doc, usn, "auth-provider")) != NULL) {
				const char *ap = NULL;
				if (x->type == YAML_MAPPING_NODE &&
				    (rc = scalar(&ap, usf, x, "name", where)) < 0)
					return rc;
				return kvs_error_set(KVS_ECONFIG,
				                     "kubeconfig %s:%zu: user \"%s\": auth-provider%s%s%s was "
				                     "removed from kubectl (1.26) and is not supported: move "
				                     "to an exec credential plugin (kubelogin for OIDC and "
				                     "Azure, gke-gcloud-auth-plugin for GKE)",
				                     usf->path, line_of(x), us_name, ap ? " \"" : "",
				                     ap ? ap : "", ap ? "\"" : "");
			}
			if ((x = map_get(&usf->doc, usn, "exec")) != NULL &&
			    (rc = get_exec(kc, usf, x, us_name)) < 0)
				return rc;
			if ((rc = get_str(&kc->token, usf, usn, "token", where)) < 0 ||
			    (rc = get_path(&kc->token_file, usf, usn, "tokenFile", where)) < 0 ||
			    (rc = get_path(&kc->cert_file, usf, usn, "client-certificate", where)) < 0 ||
			    (rc = get_b64(&kc->cert_data, &kc->cert_len, usf, usn,
			                  "client-certificate-data", where)) < 0 ||
			    (rc = get_path(&kc->key_file, usf, usn, "client-key", where)) < 0 ||
			    (rc = get_b64(&kc->key_data, &kc->key_len, usf, usn, "client-key-data",
			                  where)) < 0 ||
			    (rc = get_str(&kc->username, usf, usn, "username", where)) < 0 ||
			    (rc = get_str(&kc->password, usf, usn, "password", where)) < 0)
				return rc;
			/* it goes into an HTTP header: a line break would inject headers */
			if (kc->token && strpbrk(kc->token, "\r\n"))
				return kvs_error_set(KVS_ECONFIG,
				                     "kubeconfig %s:%zu: user \"%s\": token contains a line "
				                     "break",
				                     usf->path, line_of(map_get(&usf->doc, usn, "token")),
				                     us_name);
			if (kc->exec && (kc->token || kc->token_file || kc->username))
				return kvs_error_set(KVS_ECONFIG,
				                     "kubeconfig %s:%zu: user \"%s\": exec together with "
				                     "token, tokenFile or username is ambiguous: keep one",
				                     usf->path, line_of(usn), us_name);
			if ((kc->cert_file || kc->cert_data) != (kc->key_file || kc->key_data))
				return kvs_error_set(KVS_ECONFIG,
				                     "kubeconfig %s:%zu: user \"%s\": client certificate and "
				                     "client key must be given together",
				                     usf->path, line_of(usn), us_name);
		}
	}
finish:
	if (asprintf(&kc->source, "kubeconfig %s%s%s%s", files, kc->context ? " (context \"" : "",
	             kc->context ? kc->context : "", kc->context ? "\")" : "") < 0) {
		kc->source = NULL;
		return nomem();
	}
	return 0;
}

int kvs__kubeconf_load(kvs__kubeconf **out, const char *path, const char *context,
                       const char *ns, const char *server)
{
	return kvs__kubeconf_load_sa(out, path, context, ns, server, NULL);
}

int kvs__kubeconf_load_sa(kvs__kubeconf **out, const char *path, const char *context,
                          const char *ns, const char *server, const char *sa_dir)
{
	kvs__kubeconf *kc = calloc(1, sizeof(*kc));
	struct kset *s = calloc(1, sizeof(*s));
	const char *env = getenv("KUBECONFIG");
	char *home_cfg = NULL;
	int rc = 0;

	*out = NULL;
	if (!kc || !s) {
		rc = nomem();
		goto out;
	}
	if (path && *path) {
		if ((rc = load_file(&s->f[0], path)) < 0) {
			s->n = 1;
			goto out;
		}
		s->n = 1;
	} else if (env && *env) {
		char *list = strdup(env), *save = NULL;

		if (!list) {
			rc = nomem();
			goto out;
		}
		for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
			if (access(p, F_OK) != 0)
				continue; /* kubectl skips missing files of the list */
			if (s->n == KC_MAX_FILES) {
				rc = kvs_error_set(KVS_ECONFIG, "$KUBECONFIG lists more than %d files",
				                   KC_MAX_FILES);
				break;
			}
			rc = load_file(&s->f[s->n], p);
			s->n++;
			if (rc < 0)
				break;
		}
		free(list);
		if (rc < 0)
			goto out;
		if (s->n == 0 && !server) {
			/* like kubectl: an empty merge; maybe we are in a cluster */
			rc = load_in_cluster(kc, ns, sa_dir);
			if (rc < 0)
				goto out;
			if (rc == 0) {
				rc = kvs_error_set(KVS_ECONFIG,
				                   "no kubeconfig: none of the files in $KUBECONFIG (%s) "
				                   "exists, and not running in a cluster",
				                   env);
				goto out;
			}
			rc = set_default_ns(kc, ns);
			goto out;
		}
	} else {
		const char *home = getenv("HOME");

		if (home && *home && asprintf(&home_cfg, "%s/.kube/config", home) < 0) {
			home_cfg = NULL;
			rc = nomem();
			goto out;
		}
		if (home_cfg && access(home_cfg, F_OK) == 0) {
			s->n = 1;
			if ((rc = load_file(&s->f[0], home_cfg)) < 0)
				goto out;
		} else if (!server) {
			rc = load_in_cluster(kc, ns, sa_dir);
			if (rc < 0)
				goto out;
			if (rc == 0) {
				rc = kvs_error_set(KVS_ECONFIG,
				                   "no kubeconfig: %s does not exist, $KUBECONFIG is unset, "
				                   "and not running in a cluster (no KUBERNETES_SERVICE_HOST "
				                   "or service account token)",
				                   home_cfg ? home_cfg : "~/.kube/config");
				goto out;
			}
			rc = set_default_ns(kc, ns);
			goto out;
		}
	}
	if (s->n > 0) {
		if ((rc = resolve(kc, s, context, ns, server)) < 0)
			goto out;
	} else if (!(kc->source = strdup("no kubeconfig (server given)"))) {
		rc = nomem();
		goto out;
	}
	if (server) {
		free(kc->server);
		if (!(kc->server = strdup(server))) {
			rc = nomem();
			goto out;
		}
	}
	rc = set_default_ns(kc, ns);
out:
	if (s)
		kset_free(s);
	free(s);
	free(home_cfg);
	if (rc == 0 && kc && kc->server) {
		size_t n = strlen(kc->server);
		while (n > 0 && kc->server[n - 1] == '/')
			kc->server[--n] = '\0';
		const char *auth = strstr(kc->server, "://");
		size_t alen = auth ? strcspn(auth + 3, "/?#") : 0;

		/* user:password@ in the URL would go to curl as Basic credentials and
		 * into every message that names the server: refuse it, unechoed */
		if (auth && memchr(auth + 3, '@', alen))
			rc = kvs_error_set(KVS_ECONFIG, "%s: the server URL carries credentials "
			                   "(user:password@host): put them in the kubeconfig's user "
			                   "instead", kc->source);
		else if (strncmp(kc->server, "http://", 7) != 0 &&
		         strncmp(kc->server, "https://", 8) != 0)
			rc = kvs_error_set(KVS_ECONFIG, "%s: server \"%s\" is not an http(s) URL",
			                   kc->source, kc->server);
	}
	if (rc < 0) {
		kvs__kubeconf_free(kc);
		return rc;
	}
	*out = kc;
	return 0;
}
