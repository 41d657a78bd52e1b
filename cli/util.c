/*
 * util.c — how the CLI reports errors (one line, then an optional hint),
 * which exit code a library error becomes, and small parsers and formatters.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

volatile sig_atomic_t cli_interrupted;
char cli_tmp_path[4096];

/* The exit-code table of docs/cli.md. */
int cli_exit_code(int code)
{
	switch ((kvs_error_code)code) {
	case KVS_OK:
	case KVS_EITER_DONE:
		return EXIT_OK;
	case KVS_ENOTFOUND:
		return EXIT_NOTFOUND;
	case KVS_ECONFLICT:
	case KVS_EEXISTS:
		return EXIT_CONFLICT;
	case KVS_ECORRUPT:
		return EXIT_CORRUPT;
	case KVS_EDENIED:
		return EXIT_DENIED;
	case KVS_EIO:
	case KVS_ETIMEOUT:
	case KVS_ESTALE:
		return EXIT_CONNECT;
	case KVS_ECONFIG:
		return EXIT_CONFIG;
	case KVS_EINVAL:
		return EXIT_USAGE;
	case KVS_ECANCELED:
		return cli_interrupted ? EXIT_INTERRUPTED : EXIT_ERROR;
	case KVS_ERROR:
	case KVS_ETOOBIG:
	case KVS_ENOMEM:
	case KVS_EGONE:
	case KVS_EUNSUPPORTED:
	case KVS_EINVALOBJ:
		return EXIT_ERROR;
	}
	return EXIT_ERROR;
}

/*
 * Whatever the library says goes through here before it is printed: a
 * credential must never reach a terminal or a CI log, so anything that looks
 * like a bearer token or a token=/password= pair is blanked. The library is
 * not supposed to put secrets in its messages; this is a second fence.
 */
static void redact(char *s)
{
	static const char *const marks[] = { "Bearer ", "bearer ", "token=", "token: ",
	                                     "password=", "password: " };
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
		char *p = s;
		while ((p = strstr(p, marks[i])) != NULL) {
			char *v = p + strlen(marks[i]);
			char *e = v;
			while (*e && !isspace((unsigned char)*e) && *e != '"' && *e != ',' && *e != '&')
				e++;
			if (e > v) {
				const char *r = "<redacted>";
				size_t rl = strlen(r);
				if ((size_t)(e - v) >= rl) {
					memcpy(v, r, rl);
					memmove(v + rl, e, strlen(e) + 1);
				} else {
					memset(v, '*', (size_t)(e - v));
				}
			}
			p = v;
		}
	}
	/* one line: the detail never spills over */
	for (char *q = s; *q; q++)
		if (*q == '\n' || *q == '\r')
			*q = ' ';
}

void cli_err(const char *fmt, ...)
{
	va_list ap;
	fputs("kvsplit: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static const char *ns_or_default(const struct cli *c)
{
	if (c->ns_resolved && *c->ns_resolved)
		return c->ns_resolved;
	return c->namespace_ ? c->namespace_ : "(from kubeconfig)";
}

static int vfail(const struct cli *c, int code, const char *key, const char *detail_in,
                 const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static int vfail(const struct cli *c, int code, const char *key, const char *detail_in,
                 const char *fmt, va_list ap)
{
	const char *kc = c->kubeconfig ? c->kubeconfig : getenv("KUBECONFIG");

	char what[1024], detail[2048];

	vsnprintf(what, sizeof(what), fmt, ap);
	snprintf(detail, sizeof(detail), "%s", detail_in);
	redact(detail);
	if (code == KVS_ECONFIG && kc && *kc && !strstr(detail, kc)) {
		/* the file must be named, whatever the library said */
		char tmp[2200];
		snprintf(tmp, sizeof(tmp), "kubeconfig %.1024s: %.1100s", kc, detail);
		memcpy(detail, tmp, sizeof(detail) - 1);
		detail[sizeof(detail) - 1] = '\0';
	}
	if (detail[0])
		fprintf(stderr, "kvsplit: %s: %s\n", what, detail);
	else
		fprintf(stderr, "kvsplit: %s: %s\n", what, kvs_strerror(code));

	switch ((kvs_error_code)code) {
	case KVS_ECONFLICT:
		fprintf(stderr, "hint: %s was changed by someone else; re-read it with "
		                "'kvsplit stat %s' and retry with the new --expect-version\n",
		        key ? key : "the key", key ? key : "KEY");
		break;
	case KVS_EEXISTS:
		fprintf(stderr, "hint: the key exists; drop --expect-version=\"\" to overwrite, or "
		                "pass its current version (kvsplit stat %s)\n", key ? key : "KEY");
		break;
	case KVS_EDENIED:
		fprintf(stderr, "hint: the API server refused the credentials or the verb; check the "
		                "token/certificate of your kubeconfig user and the RBAC for configmaps "
		                "in namespace %s (see docs/operations.md, deploy/rbac.yaml)\n",
		        ns_or_default(c));
		break;
	case KVS_EIO:
	case KVS_ETIMEOUT:
		if (c->server)
			fprintf(stderr, "hint: is the API server at %s running and reachable? "
			                "check --server\n", c->server);
		else
			fprintf(stderr, "hint: is the API server of your %s running and reachable? "
			                "check --context/--server (kubectl config view --minify)\n",
			        c->context ? "--context" : "current context");
		break;
	case KVS_ECONFIG:
		fprintf(stderr, "hint: fix the kubeconfig (%s); 'kubectl config view' shows what "
		                "kubectl reads\n",
		        kc && *kc ? kc : "--kubeconfig, $KUBECONFIG or ~/.kube/config");
		break;
	case KVS_ECORRUPT:
		fprintf(stderr, "hint: run 'kvsplit fsck%s%s' to see what is damaged\n",
		        key ? " " : "", key ? key : "");
		break;
	case KVS_ENOTFOUND:
		if (key)
			fprintf(stderr, "hint: no key %s in store %s, namespace %s "
			                "(kvsplit ls lists the keys)\n", key,
			        c->store_name, ns_or_default(c));
		else
			fprintf(stderr, "hint: does namespace %s exist? (kubectl get namespace %s)\n",
			        ns_or_default(c), ns_or_default(c));
		break;
	case KVS_ETOOBIG:
	case KVS_EINVALOBJ:
		fprintf(stderr, "hint: the server refused an object; see the message above and "
		                "docs/operations.md (limits)\n");
		break;
	case KVS_ESTALE:
		fprintf(stderr, "hint: nothing was committed; the put took longer than its touch "
		                "window (--touch-window, default 10m), so gc may have collected its "
		                "segments; retry it, on a faster link or with a longer --touch-window "
		                "(kept below gc's --grace)\n");
		break;
	case KVS_OK:
	case KVS_ERROR:
	case KVS_ENOMEM:
	case KVS_EINVAL:
	case KVS_EGONE:
	case KVS_ECANCELED:
	case KVS_EUNSUPPORTED:
	case KVS_EITER_DONE:
		break;
	}
	return cli_exit_code(code);
}

int cli_fail(const struct cli *c, int code, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(c, code, key, kvs_error_last(), fmt, ap);
	va_end(ap);
	return r;
}

int cli_fail_detail(const struct cli *c, int code, const char *key, const char *detail,
                    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(c, code, key, detail, fmt, ap);
	va_end(ap);
	return r;
}

/*
 * Durations as kubectl and Go write them: "90s", "10m", "1h30m", "1.5h",
 * "250ms"; a bare number is seconds. Out in milliseconds.
 */
int cli_parse_duration(const char *s, long *out_ms)
{
	double total = 0;
	const char *p = s;
	char *end;

	if (!s || !*s)
		return -1;
	errno = 0;
	double bare = strtod(s, &end);
	if (end != s && *end == '\0') {
		if (errno || bare < 0 || bare > 1e12)
			return -1;
		*out_ms = (long)(bare * 1000 + 0.5);
		return 0;
	}
	while (*p) {
		double mult;
		errno = 0;
		double v = strtod(p, &end);
		if (end == p || errno || v < 0)
			return -1;
		p = end;
		if (strncmp(p, "ms", 2) == 0)
			mult = 1, p += 2;
		else if (*p == 's')
			mult = 1000, p++;
		else if (*p == 'm')
			mult = 60000, p++;
		else if (*p == 'h')
			mult = 3600000, p++;
		else if (*p == 'd')
			mult = 86400000, p++;
		else
			return -1;
		total += v * mult;
		if (total > 1e15)
			return -1;
	}
	*out_ms = (long)(total + 0.5);
	return 0;
}

void cli_human_bytes(char *out, size_t cap, double b)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;
	while (b >= 1024 && i < 4) {
		b /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(out, cap, "%.0f B", b);
	else
		snprintf(out, cap, "%.1f %s", b, u[i]);
}

void cli_human_duration(char *out, size_t cap, double s)
{
	if (s < 0 || s > 1e7)
		snprintf(out, cap, "--:--");
	else if (s < 3600)
		snprintf(out, cap, "%02d:%02d", (int)s / 60, (int)s % 60);
	else
		snprintf(out, cap, "%d:%02d:%02d", (int)s / 3600, ((int)s / 60) % 60, (int)s % 60);
}

/*
 * Optimal string alignment distance: insertions, deletions, substitutions
 * and transpositions of two neighbours ("lsit" → "list") each cost one.
 */
size_t cli_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[3][64]; /* rows i-2, i-1, i (rolling) */

	if (la >= 63 || lb >= 63)
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t *cur = d[i % 3], *prev = d[(i - 1) % 3], *pp = d[(i + 1) % 3];
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    pp[j - 2] + 1 < best)
				best = pp[j - 2] + 1;
			cur[j] = best;
		}
	}
	return d[la % 3][lb];
}

const char *cli_suggest(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t bestd = (size_t)-1;
	size_t wl = strlen(word);

	for (size_t i = 0; i < n; i++) {
		size_t d = cli_edit_distance(word, names[i]);
		/* a prefix typed in full counts as close ("--name" → "--namespace") */
		if (wl >= 3 && strncmp(names[i], word, wl) == 0 && d > 1)
			d = 1;
		if (d < bestd) {
			bestd = d;
			best = names[i];
		}
	}
	if (best == NULL)
		return NULL;
	size_t limit = wl <= 4 ? 1 : wl <= 8 ? 2 : 3;
	return bestd <= limit ? best : NULL;
}

int cli_print_json(cJSON *v, int one_line)
{
	char *s = v ? (one_line ? cJSON_PrintUnformatted(v) : cJSON_Print(v)) : NULL;
	cJSON_Delete(v);
	if (!s) {
		cli_err("out of memory formatting JSON");
		return EXIT_ERROR;
	}
	fputs(s, stdout);
	fputc('\n', stdout);
	cJSON_free(s);
	if (one_line)
		fflush(stdout);
	return EXIT_OK;
}

void cli_hex(char *out, const uint8_t *in, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * n] = '\0';
}
