/*
 * kube/exec.c — run an exec credential plugin the way kubectl does.
 *
 * The plugin is spawned with the process's environment plus the kubeconfig's
 * `env` entries and KUBERNETES_EXEC_INFO (an ExecCredential whose spec says
 * whether the run is interactive and, with provideClusterInfo, describes the
 * cluster). Its stdout must be one ExecCredential of the configured
 * apiVersion. A run is interactive when interactiveMode allows it and our
 * stdin is a terminal: then the plugin inherits stdin and stderr (it may
 * prompt, or print a login URL). Otherwise stdin is /dev/null, stderr is
 * captured for the error message, the plugin runs in its own process group
 * and the whole group is killed when it overruns its time.
 *
 * What the plugin prints on stdout is a secret: no message quotes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "kube/exec.h"
#include "kube/json.h"

#define EXEC_OUT_MAX (1024u * 1024u)   /* an ExecCredential larger than this is refused */
#define EXEC_ERR_KEEP 2048u            /* stderr kept for the message */
#define EXEC_INTERACTIVE_MIN_MS (10u * 60u * 1000u) /* a person may be typing */

extern char **environ;

static int nomem(void)
{
	return kvs_error_set(KVS_ENOMEM, "out of memory running an exec credential plugin");
}

static char *dup0(const char *s)
{
	return s ? strdup(s) : NULL;
}

static char **dup_list(char *const *v, size_t n)
{
	char **r = calloc(n + 1, sizeof(*r));

	if (!r)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!(r[i] = strdup(v[i]))) {
			for (size_t j = 0; j < i; j++)
				free(r[j]);
			free(r);
			return NULL;
		}
	return r;
}

static void free_list(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void kvs__exec_conf_free(kvs__exec_conf *x)
{
	if (!x)
		return;
	free(x->user);
	free(x->api_version);
	free(x->command);
	free_list(x->args, x->nargs);
	/* env values may be secrets (an API key for the plugin) */
	for (size_t i = 0; x->env && i < x->nenv; i++)
		explicit_bzero(x->env[i], strlen(x->env[i]));
	free_list(x->env, x->nenv);
	free(x->install_hint);
	free(x);
}

kvs__exec_conf *kvs__exec_conf_dup(const kvs__exec_conf *x)
{
	kvs__exec_conf *y = calloc(1, sizeof(*y));

	if (!y)
		return NULL;
	*y = *x;
	y->user = dup0(x->user);
	y->api_version = dup0(x->api_version);
	y->command = dup0(x->command);
	y->install_hint = dup0(x->install_hint);
	y->args = dup_list(x->args, x->nargs);
	y->env = dup_list(x->env, x->nenv);
	if ((x->user && !y->user) || !y->api_version || !y->command ||
	    (x->install_hint && !y->install_hint) || !y->args || !y->env) {
		if (!y->args)
			y->nargs = 0;
		if (!y->env)
			y->nenv = 0;
		kvs__exec_conf_free(y);
		return NULL;
	}
	return y;
}

void kvs__exec_cred_clear(kvs__exec_cred *c)
{
	if (c->token) {
		explicit_bzero(c->token, strlen(c->token));
		free(c->token);
	}
	free(c->cert);
	if (c->key) {
		explicit_bzero(c->key, c->key_len);
		free(c->key);
	}
	memset(c, 0, sizeof(*c));
}

char *kvs__exec_cluster_json(const char *server, const char *tls_server_name, int insecure,
                             const uint8_t *ca, size_t ca_len, const char *proxy_url)
{
	cJSON *o = cJSON_CreateObject();
	char *text = NULL, *b64 = NULL;

	if (!o)
		return NULL;
	if (!cJSON_AddStringToObject(o, "server", server ? server : ""))
		goto out;
	if (tls_server_name && !cJSON_AddStringToObject(o, "tls-server-name", tls_server_name))
		goto out;
	if (insecure && !cJSON_AddTrueToObject(o, "insecure-skip-tls-verify"))
		goto out;
	if (ca && ca_len) {
		/* []byte in Go's JSON: standard base64 */
		if (!(b64 = malloc(kvs__b64_len(ca_len) + 1)))
			goto out;
		kvs__b64_encode(b64, ca, ca_len);
		if (!cJSON_AddStringToObject(o, "certificate-authority-data", b64))
			goto out;
	}
	if (proxy_url && !cJSON_AddStringToObject(o, "proxy-url", proxy_url))
		goto out;
	text = cJSON_PrintUnformatted(o);
out:
	free(b64);
	cJSON_Delete(o);
	return text;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first line of what the plugin said on stderr, made printable, or "". */
static void err_summary(char *out, size_t cap, const char *err, size_t n)
{
	size_t o = 0, i = 0;

	out[0] = '\0';
	while (i < n && (err[i] == '\n' || err[i] == '\r' || err[i] == ' '))
		i++;
	if (i == n || cap < 8)
		return;
	o = (size_t)snprintf(out, cap, ": ");
	for (; i < n && err[i] != '\n' && o + 2 < cap; i++)
		out[o++] = (err[i] >= 0x20 && err[i] < 0x7f) ? err[i] : '?';
	out[o] = '\0';
}

/* "exec plugin "cmd" of user "u"" for messages. */
static void who(char *out, size_t cap, const kvs__exec_conf *x)
{
	snprintf(out, cap, "exec credential plugin \"%s\"%s%s%s", x->command,
	         x->user ? " (user \"" : "", x->user ? x->user : "", x->user ? "\")" : "");
}

/* KUBERNETES_EXEC_INFO's value. */
static char *exec_info(const kvs__exec_conf *x, int interactive, const char *cluster_json)
{
	cJSON *o = cJSON_CreateObject(), *spec, *cl;
	char *text = NULL;

	if (!o)
		return NULL;
	if (!cJSON_AddStringToObject(o, "kind", "ExecCredential") ||
	    !cJSON_AddStringToObject(o, "apiVersion", x->api_version) ||
	    !(spec = cJSON_AddObjectToObject(o, "spec")) ||
	    !cJSON_AddBoolToObject(spec, "interactive", interactive))
		goto out;
	if (x->provide_cluster_info && cluster_json) {
		if (!(cl = cJSON_Parse(cluster_json)))
			goto out;
		cJSON_AddItemToObject(spec, "cluster", cl);
	}
	text = cJSON_PrintUnformatted(o);
out:
	cJSON_Delete(o);
	return text;
}

/* The process environment, then the kubeconfig's entries (which win), then
 * KUBERNETES_EXEC_INFO. Borrowed strings except `info_kv`. */
static char **build_env(const kvs__exec_conf *x, char *info_kv)
{
	size_t n = 0, k = 0;
	char **e;

	for (char **p = environ; p && *p; p++)
		n++;
	if (!(e = calloc(n + x->nenv + 2, sizeof(*e))))
		return NULL;
	for (char **p = environ; p && *p; p++) {
		size_t nl = strcspn(*p, "=");
		int over = strncmp(*p, "KUBERNETES_EXEC_INFO=", 21) == 0;

		for (size_t i = 0; i < x->nenv && !over; i++)
			over = strncmp(x->env[i], *p, nl + 1) == 0;
		if (!over)
			e[k++] = *p;
	}
	for (size_t i = 0; i < x->nenv; i++)
		e[k++] = x->env[i];
	e[k++] = info_kv;
	e[k] = NULL;
	return e;
}

struct sink {
	char *p;
	size_t n, cap, max;
	int over;
};

static int sink_read(struct sink *s, int fd, int keep_all)
{
	char tmp[8192];
	ssize_t r = read(fd, tmp, sizeof(tmp));

	if (r < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (r == 0)
		return 0;
	size_t take = (size_t)r;
	if (s->n + take > s->max) {
		s->over = 1;
		if (!keep_all)
			return 1; /* keep reading (draining), keep only the start */
		take = s->max - s->n;
	}
	if (s->n + take + 1 > s->cap) {
		size_t nc = s->cap ? s->cap : 4096;
		char *np;

		while (nc < s->n + take + 1)
			nc *= 2;
		if (!(np = realloc(s->p, nc)))
			return -1;
		s->p = np;
		s->cap = nc;
	}
	memcpy(s->p + s->n, tmp, take);
	s->n += take;
	s->p[s->n] = '\0';
	return 1;
}

static void wipe_sink(struct sink *s)
{
	if (s->p) {
		explicit_bzero(s->p, s->cap);
		free(s->p);
	}
	memset(s, 0, sizeof(*s));
}

/* A string member, or NULL when absent; -1 when present but not a string. */
static int str_member(const char **out, const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return -1;
	*out = v->valuestring;
	return 0;
}

int kvs__exec_cred_parse(kvs__exec_cred *out, const kvs__exec_conf *x, const char *w,
                         const char *text, size_t n)
{
	cJSON *o = cJSON_ParseWithLength(text, n);
	const cJSON *st;
	const char *kind, *av, *tok, *cert, *key, *exp;
	int rc = 0;

	if (!o || !cJSON_IsObject(o)) {
		rc = kvs_error_set(KVS_ECONFIG,
		                   "%s did not print an ExecCredential: its output is not a JSON object",
		                   w);
		goto out;
	}
	if (str_member(&kind, o, "kind") < 0 || !kind || strcmp(kind, "ExecCredential") != 0) {
		rc = kvs_error_set(KVS_ECONFIG,
		                   "%s did not print an ExecCredential: kind is %s%s%s, not ExecCredential",
		                   w, kind ? "\"" : "", kind ? kind : "missing", kind ? "\"" : "");
		goto out;
	}
	if (str_member(&av, o, "apiVersion") < 0 || !av || strcmp(av, x->api_version) != 0) {
		rc = kvs_error_set(KVS_ECONFIG,
		                   "%s printed an ExecCredential of apiVersion %s%s%s, but the "
		                   "kubeconfig asks for %s",
		                   w, av ? "\"" : "", av ? av : "(none)", av ? "\"" : "", x->api_version);
		goto out;
	}
	st = cJSON_GetObjectItemCaseSensitive(o, "status");
	if (!cJSON_IsObject(st)) {
		rc = kvs_error_set(KVS_ECONFIG, "%s printed an ExecCredential without a status", w);
		goto out;
	}
	if (str_member(&tok, st, "token") < 0 || str_member(&cert, st, "clientCertificateData") < 0 ||
	    str_member(&key, st, "clientKeyData") < 0 ||
	    str_member(&exp, st, "expirationTimestamp") < 0) {
		rc = kvs_error_set(KVS_ECONFIG,
		                   "%s printed an ExecCredential whose status has a field that is not a "
		                   "string",
		                   w);
		goto out;
	}
	if (tok && !*tok)
		tok = NULL;
	if (cert && !*cert)
		cert = NULL;
	if (key && !*key)
		key = NULL;
	if (!tok && !cert && !key) {
		rc = kvs_error_set(KVS_ECONFIG,
		                   "%s printed an ExecCredential with neither a token nor a client "
		                   "certificate",
		                   w);
		goto out;
	}
	if (!cert != !key) {
		rc = kvs_error_set(KVS_ECONFIG,
		                   "%s printed an ExecCredential with clientCertificateData and "
		                   "clientKeyData not both set",
		                   w);
		goto out;
	}
	if (tok && strpbrk(tok, "\r\n")) {
		rc = kvs_error_set(KVS_ECONFIG, "%s printed a token that contains a line break", w);
		goto out;
	}
	if (exp && (out->expiry_ms = kvs__rfc3339_ms(exp)) < 0) {
		out->expiry_ms = 0;
		rc = kvs_error_set(KVS_ECONFIG,
		                   "%s printed an ExecCredential whose expirationTimestamp is not an "
		                   "RFC 3339 time",
		                   w);
		goto out;
	}
	if ((tok && !(out->token = strdup(tok))) ||
	    (cert && !(out->cert = (uint8_t *)strdup(cert))) ||
	    (key && !(out->key = (uint8_t *)strdup(key)))) {
		rc = nomem();
		goto out;
	}
	out->cert_len = cert ? strlen(cert) : 0;
	out->key_len = key ? strlen(key) : 0;
out:
	if (o) {
		/* the parsed tree holds the secret too */
		cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "status");
		for (cJSON *c = s ? s->child : NULL; c; c = c->next)
			if (cJSON_IsString(c) && c->valuestring)
				explicit_bzero(c->valuestring, strlen(c->valuestring));
		cJSON_Delete(o);
	}
	if (rc < 0)
		kvs__exec_cred_clear(out);
	return rc;
}

static void kill_child(pid_t pid, int group)
{
	if (group)
		kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
}

int kvs__exec_run(kvs__exec_cred *out, const kvs__exec_conf *x, const char *cluster_json,
                  unsigned timeout_ms)
{
	char w[600], errmsg[320];
	int tty = isatty(STDIN_FILENO), interactive, rc = 0, status = 0;
	int opipe[2] = { -1, -1 }, epipe[2] = { -1, -1 };
	char *info = NULL, *info_kv = NULL, **envp = NULL, **argv = NULL;
	struct sink so = { NULL, 0, 0, EXEC_OUT_MAX, 0 }, se = { NULL, 0, 0, EXEC_ERR_KEEP, 0 };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int fa_ok = 0, at_ok = 0, reaped = 0;
	pid_t pid = -1;

	memset(out, 0, sizeof(*out));
	who(w, sizeof(w), x);
	if (x->interactive == KVS__EXEC_ALWAYS && !tty)
		return kvs_error_set(KVS_ECONFIG,
		                     "%s needs a terminal (interactiveMode: Always), but standard input "
		                     "is not one",
		                     w);
	interactive = x->interactive != KVS__EXEC_NEVER && tty;
	if (interactive && timeout_ms < EXEC_INTERACTIVE_MIN_MS)
		timeout_ms = EXEC_INTERACTIVE_MIN_MS;
	if (!timeout_ms)
		timeout_ms = 30000;

	if (!(info = exec_info(x, interactive, cluster_json)) ||
	    asprintf(&info_kv, "KUBERNETES_EXEC_INFO=%s", info) < 0) {
		info_kv = NULL;
		rc = nomem();
		goto out;
	}
	if (!(envp = build_env(x, info_kv)) || !(argv = calloc(x->nargs + 2, sizeof(*argv)))) {
		rc = nomem();
		goto out;
	}
	argv[0] = x->command;
	for (size_t i = 0; i < x->nargs; i++)
		argv[i + 1] = x->args[i];
	if (pipe2(opipe, O_CLOEXEC) < 0 || (!interactive && pipe2(epipe, O_CLOEXEC) < 0)) {
		rc = kvs_error_set(KVS_EIO, "%s: pipe: %s", w, strerror(errno));
		goto out;
	}
	if (posix_spawn_file_actions_init(&fa) != 0 || !(fa_ok = 1) ||
	    posix_spawnattr_init(&at) != 0 || !(at_ok = 1)) {
		rc = nomem();
		goto out;
	}
	{
		sigset_t none, def;
		short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;

		sigemptyset(&none);
		sigemptyset(&def);
		sigaddset(&def, SIGPIPE);
		sigaddset(&def, SIGINT);
		sigaddset(&def, SIGTERM);
		sigaddset(&def, SIGCHLD);
		posix_spawnattr_setsigmask(&at, &none);
		posix_spawnattr_setsigdefault(&at, &def);
		if (!interactive) {
			/* its own group: a timeout kills the plugin and its children */
			flags |= POSIX_SPAWN_SETPGROUP;
			posix_spawnattr_setpgroup(&at, 0);
		}
		posix_spawnattr_setflags(&at, flags);
	}
	if (!interactive) {
		posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
		posix_spawn_file_actions_adddup2(&fa, epipe[1], STDERR_FILENO);
	}
	posix_spawn_file_actions_adddup2(&fa, opipe[1], STDOUT_FILENO);
	rc = strchr(x->command, '/') ? posix_spawn(&pid, x->command, &fa, &at, argv, envp)
	                             : posix_spawnp(&pid, x->command, &fa, &at, argv, envp);
	if (rc != 0) {
		int e = rc;

		pid = -1;
		rc = kvs_error_set(KVS_ECONFIG, "%s: cannot run it: %s%s%s", w, strerror(e),
		                   x->install_hint ? "\n" : "", x->install_hint ? x->install_hint : "");
		goto out;
	}
	close(opipe[1]);
	opipe[1] = -1;
	if (epipe[1] >= 0) {
		close(epipe[1]);
		epipe[1] = -1;
	}

	{
		int64_t deadline = mono_ms() + timeout_ms;
		int open_out = 1, open_err = epipe[0] >= 0;

		while (open_out || open_err || !reaped) {
			struct pollfd p[2];
			int np = 0, left = (int)(deadline - mono_ms());

			if (left <= 0) {
				kill_child(pid, !interactive);
				waitpid(pid, NULL, 0);
				reaped = 1;
				rc = kvs_error_set(KVS_ECONFIG, "%s did not finish within %u s (killed)", w,
				                   (timeout_ms + 999) / 1000);
				goto out;
			}
			if (!open_out && !open_err) {
				/* both pipes closed: wait for the exit, still bounded */
				pid_t r = waitpid(pid, &status, WNOHANG);
				if (r == pid) {
					reaped = 1;
					break;
				}
				if (r < 0 && errno == ECHILD) {
					/* the program ignores SIGCHLD: the child reaped itself,
					 * its status is lost; judge it by what it printed */
					reaped = 1;
					status = 0;
					break;
				}
				if (r < 0 && errno != EINTR) {
					reaped = 1;
					rc = kvs_error_set(KVS_EIO, "%s: waitpid: %s", w, strerror(errno));
					goto out;
				}
				struct timespec ts = { 0, 10 * 1000000L };
				nanosleep(&ts, NULL);
				continue;
			}
			if (open_out)
				p[np++] = (struct pollfd){ opipe[0], POLLIN, 0 };
			if (open_err)
				p[np++] = (struct pollfd){ epipe[0], POLLIN, 0 };
			if (poll(p, (nfds_t)np, left > 200 ? 200 : left) < 0 && errno != EINTR) {
				rc = kvs_error_set(KVS_EIO, "%s: poll: %s", w, strerror(errno));
				kill_child(pid, !interactive);
				goto out;
			}
			for (int i = 0; i < np; i++) {
				if (!p[i].revents)
					continue;
				int is_out = p[i].fd == opipe[0];
				int r = sink_read(is_out ? &so : &se, p[i].fd, !is_out);
				if (r < 0) {
					rc = nomem();
					kill_child(pid, !interactive);
					goto out;
				}
				if (r == 0) {
					if (is_out)
						open_out = 0;
					else
						open_err = 0;
				}
				if (is_out && so.over) {
					kill_child(pid, !interactive);
					rc = kvs_error_set(KVS_ECONFIG,
					                   "%s printed more than %u bytes: not an ExecCredential",
					                   w, EXEC_OUT_MAX);
					goto out;
				}
			}
		}
	}
	err_summary(errmsg, sizeof(errmsg), se.p ? se.p : "", se.n);
	if (WIFSIGNALED(status)) {
		rc = kvs_error_set(KVS_ECONFIG, "%s was killed by signal %d%s", w, WTERMSIG(status),
		                   errmsg);
		goto out;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		rc = kvs_error_set(KVS_ECONFIG, "%s failed (exit status %d)%s", w,
		                   WIFEXITED(status) ? WEXITSTATUS(status) : -1, errmsg);
		goto out;
	}
	rc = kvs__exec_cred_parse(out, x, w, so.p ? so.p : "", so.n);
out:
	if (pid > 0 && !reaped) {
		kill_child(pid, !interactive);
		waitpid(pid, NULL, 0);
	}
	for (int i = 0; i < 2; i++) {
		if (opipe[i] >= 0)
			close(opipe[i]);
		if (epipe[i] >= 0)
			close(epipe[i]);
	}
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (at_ok)
		posix_spawnattr_destroy(&at);
	wipe_sink(&so);
	wipe_sink(&se);
	free(argv);
	free(envp);
	free(info);
	free(info_kv);
	return rc;
}
