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
	case KVS_ERANGE:
		return EXIT_ERROR;
	}
	return EXIT_ERROR;
}

/*
 * Length of the well-formed UTF-8 sequence at s (1..4) and its code point,
 * or 0 if the bytes are not UTF-8 (overlong forms and surrogates included).
 */
static size_t utf8_seq(const unsigned char *s, uint32_t *cp)
{
	size_t n;
	uint32_t v;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, v = s[0] & 0x1fu;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, v = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, v = s[0] & 0x07u;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3fu);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)) ||
	    (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

/* Code points a terminal would not show as themselves: C1 controls, line
 * and paragraph separators, direction overrides ("trojan source"), BOM. */
static int invisible(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0xad || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

/*
 * Escape `s` into `out` as Go's strconv.Quote does (without the quotes
 * unless `quote`): \n \t \r \a \b \f \v, \xNN for other control bytes and
 * for bytes that are not UTF-8, \uNNNN for invisible code points; with
 * `quote`, also \" and \\. Returns 1 if anything had to be escaped.
 * Truncates with "..." rather than overflow `cap`.
 */
static int escape(char *out, size_t cap, const char *in, int quote)
{
	static const char named[] = "abtnvfr"; /* \a (0x07) .. \r (0x0d) */
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0;
	int escaped = 0;

	if (cap < 8) {
		if (cap)
			out[0] = '\0';
		return 0;
	}
	if (quote)
		out[o++] = '"';
	while (*s) {
		char e[16];
		size_t el, take;
		uint32_t cp = 0;
		size_t n = utf8_seq(s, &cp);

		if (n == 0) {
			el = (size_t)snprintf(e, sizeof(e), "\\x%02x", *s);
			take = 1;
		} else if (n == 1 && cp >= 0x07 && cp <= 0x0d) {
			el = (size_t)snprintf(e, sizeof(e), "\\%c", named[cp - 0x07]);
			take = 1;
		} else if (n == 1 && (cp < 0x20 || cp == 0x7f)) {
			el = (size_t)snprintf(e, sizeof(e), "\\x%02x", (unsigned)cp);
			take = 1;
		} else if (n == 1 && quote && (cp == '"' || cp == '\\')) {
			el = (size_t)snprintf(e, sizeof(e), "\\%c", (char)cp);
			take = 1;
		} else if (n > 1 && invisible(cp)) {
			el = (size_t)snprintf(e, sizeof(e), "\\u%04x", (unsigned)cp);
			take = n;
		} else {
			memcpy(e, s, n);
			el = take = n;
			escaped--; /* copied as it is */
		}
		escaped++;
		if (o + el + 5 > cap) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, e, el);
		o += el;
		s += take;
	}
	if (quote)
		out[o++] = '"';
	out[o] = '\0';
	return escaped > 0;
}

#define QBUFS 6
#define QBUF_LEN (4 * 4096 + 16)

static char *qbuf(void)
{
	static char bufs[QBUFS][QBUF_LEN];
	static unsigned next_buf;

	return bufs[next_buf++ % QBUFS];
}

const char *cli_quoted(const char *s)
{
	char *b = qbuf();

	escape(b, QBUF_LEN, s ? s : "", 1);
	return b;
}

const char *cli_escaped(const char *s)
{
	char *b = qbuf();

	escape(b, QBUF_LEN, s ? s : "", 0);
	return b;
}

const char *cli_key(const char *key)
{
	char *b = qbuf();
	const char *k = key ? key : "";

	if (!*k || strpbrk(k, " \\\"'") || escape(b, QBUF_LEN, k, 0))
		escape(b, QBUF_LEN, k, 1);
	return b;
}

/*
 * Whatever the library says goes through here before it is printed: a
 * credential must never reach a terminal or a CI log, so anything that looks
 * like a bearer token or a token=/password= pair is blanked. The library is
 * not supposed to put secrets in its messages; this is a second fence.
 */
static void redact(char *out, size_t cap, const char *in)
{
	char s[2048];

	snprintf(s, sizeof(s), "%s", in);
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
	/* one line, and nothing a terminal would interpret (a key echoed by the
	 * server may hold anything): escape as Go's %q does, without quotes */
	escape(out, cap, s, 0);
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

/*
 * Whether the namespace is known not to exist. A list in a missing
 * namespace is answered with an empty list and a get of a key with "not
 * found", exactly as in an empty namespace, so only asking for the
 * namespace itself tells (kvs_backend_namespace_check). Anything but a
 * clear "not found" (forbidden, unreachable) is "not known missing".
 */
int cli_namespace_missing(const struct cli *c)
{
#ifdef KVS_HAVE_NAMESPACE_CHECK
	if (!c->backend)
		return 0;
	return kvs_backend_namespace_check(c->backend) == KVS_ENOTFOUND;
#else
	(void)c;
	return 0;
#endif
}

int cli_fail_namespace(const struct cli *c, const char *what)
{
	cli_err("%s: namespace %s does not exist", what, cli_key(ns_or_default(c)));
	fprintf(stderr, "hint: check -n/--namespace and the context's namespace; "
	                "'kubectl get namespaces' lists them\n");
	return EXIT_NOTFOUND;
}

static int vfail(const struct cli *c, int code, const char *key, const char *detail_in,
                 const char *hint, const char *fmt, va_list ap)
	__attribute__((format(printf, 6, 0)));
static int vfail(const struct cli *c, int code, const char *key, const char *detail_in,
                 const char *hint, const char *fmt, va_list ap)
{
	const char *kc = c->kubeconfig ? c->kubeconfig : getenv("KUBECONFIG");
	const char *k = key ? cli_key(key) : NULL;
	char what[4096], detail[8192];

	vsnprintf(what, sizeof(what), fmt, ap);
	redact(detail, sizeof(detail), detail_in);
	if (code == KVS_ECONFIG && kc && *kc && !strstr(detail, kc)) {
		/* the file must be named, whatever the library said */
		char tmp[sizeof(detail)];
		snprintf(tmp, sizeof(tmp), "kubeconfig %.1024s: %.4000s", kc, detail);
		memcpy(detail, tmp, sizeof(detail));
	}
	if (detail[0])
		fprintf(stderr, "kvsplit: %s: %s\n", what, detail);
	else
		fprintf(stderr, "kvsplit: %s: %s\n", what, kvs_strerror(code));

	if (hint) {
		if (*hint)
			fprintf(stderr, "hint: %s\n", hint);
		return cli_exit_code(code);
	}
	switch ((kvs_error_code)code) {
	case KVS_ECONFLICT:
		fprintf(stderr, "hint: %s was changed by someone else; re-read it with "
		                "'kvsplit stat %s' and retry with the new --expect-version\n",
		        k ? k : "the key", k ? k : "KEY");
		break;
	case KVS_EEXISTS:
		fprintf(stderr, "hint: the key exists; drop --expect-version=\"\" to overwrite, or "
		                "pass its current version (kvsplit stat %s)\n", k ? k : "KEY");
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
		        k ? " " : "", k ? k : "");
		break;
	case KVS_ENOTFOUND:
		if (cli_namespace_missing(c))
			fprintf(stderr, "hint: namespace %s does not exist; check -n/--namespace and the "
			                "context's namespace ('kubectl get namespaces' lists them)\n",
			        cli_key(ns_or_default(c)));
		else if (k)
			fprintf(stderr, "hint: no key %s in store %s, namespace %s "
			                "(kvsplit ls lists the keys)\n", k,
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
	case KVS_ERANGE:
		break;
	}
	return cli_exit_code(code);
}

int cli_fail(const struct cli *c, int code, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(c, code, key, kvs_error_last(), NULL, fmt, ap);
	va_end(ap);
	return r;
}

int cli_fail_detail(const struct cli *c, int code, const char *key, const char *detail,
                    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(c, code, key, detail, NULL, fmt, ap);
	va_end(ap);
	return r;
}

int cli_fail_hint(const struct cli *c, int code, const char *detail, const char *hint,
                  const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(c, code, NULL, detail, hint, fmt, ap);
	va_end(ap);
	return r;
}

/* ---- durations ------------------------------------------------------------ */

#define NS_PER_S 1000000000LL
#define DURATION_MAX_NS (100LL * 365 * 86400 * NS_PER_S) /* 100 years: fits int64 */

/* Unit at p: its length in *len and nanoseconds, or 0 if none is there. */
static int64_t unit_at(const char *p, size_t *len)
{
	static const struct { const char *name; int64_t ns; } units[] = {
		{ "ns", 1 }, { "us", 1000 }, { "\xc2\xb5s", 1000 }, { "\xce\xbcs", 1000 },
		{ "ms", 1000000 }, { "s", NS_PER_S }, { "m", 60 * NS_PER_S },
		{ "h", 3600 * NS_PER_S }, { "d", 86400 * NS_PER_S },
	};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		size_t l = strlen(units[i].name);
		/* "m" must not take the "m" of "ms" */
		if (strncmp(p, units[i].name, l) == 0 && !(l == 1 && p[0] == 'm' && p[1] == 's')) {
			*len = l;
			return units[i].ns;
		}
	}
	return 0;
}

/*
 * Go's grammar: one or more "number unit" pairs, number = digits with an
 * optional fraction ("1.5h", ".5s"), no sign, no spaces; plus kvsplit's
 * "d" (24h) and a bare number meaning seconds. Integer arithmetic for the
 * whole part, so "1500ms" is exactly 1.5 s.
 */
int cli_parse_duration(const char *s, int64_t *out_ns)
{
	const char *p = s;
	int64_t total = 0;
	int bare = 1;

	if (!s || !*s)
		return -1;
	for (const char *q = s; *q; q++)
		if (!isdigit((unsigned char)*q) && *q != '.')
			bare = 0;
	while (*p) {
		int64_t whole = 0, unit;
		double frac = 0, scale = 0.1;
		int digits = 0;
		size_t ul = 0;

		while (isdigit((unsigned char)*p)) {
			if (whole > DURATION_MAX_NS / 10)
				return -1;
			whole = whole * 10 + (*p++ - '0');
			digits++;
		}
		if (*p == '.') {
			p++;
			while (isdigit((unsigned char)*p)) {
				frac += (*p++ - '0') * scale;
				scale /= 10;
				digits++;
			}
		}
		if (digits == 0)
			return -1;
		if (bare) {
			if (*p)
				return -1;
			unit = NS_PER_S;
		} else if ((unit = unit_at(p, &ul)) == 0) {
			return -1;
		}
		p += ul;
		if (whole > DURATION_MAX_NS / unit)
			return -1;
		int64_t v = whole * unit + (int64_t)(frac * (double)unit + 0.5);
		if (v > DURATION_MAX_NS - total)
			return -1;
		total += v;
	}
	*out_ns = total;
	return 0;
}

void cli_format_duration(char *out, size_t cap, int64_t ns)
{
	size_t o = 0;

	if (ns <= 0) {
		snprintf(out, cap, "0s");
		return;
	}
	if (ns < NS_PER_S) {
		if (ns % 1000000 == 0)
			snprintf(out, cap, "%lldms", (long long)(ns / 1000000));
		else if (ns % 1000 == 0)
			snprintf(out, cap, "%lldus", (long long)(ns / 1000));
		else
			snprintf(out, cap, "%lldns", (long long)ns);
		return;
	}
	int64_t h = ns / (3600 * NS_PER_S), m = ns / (60 * NS_PER_S) % 60;
	int64_t sec = ns / NS_PER_S % 60, sub = ns % NS_PER_S;
	out[0] = '\0';
	if (h)
		o += (size_t)snprintf(out + o, cap > o ? cap - o : 0, "%lldh", (long long)h);
	if (m && o < cap)
		o += (size_t)snprintf(out + o, cap - o, "%lldm", (long long)m);
	if ((sec || sub) && o < cap) {
		char frac[16] = "";
		if (sub) {
			snprintf(frac, sizeof(frac), ".%09lld", (long long)sub);
			for (size_t l = strlen(frac); l > 1 && frac[l - 1] == '0'; l--)
				frac[l - 1] = '\0';
		}
		snprintf(out + o, cap - o, "%lld%ss", (long long)sec, frac);
	}
}

int64_t cli_ceil_s(int64_t ns)
{
	return ns <= 0 ? 0 : (ns + NS_PER_S - 1) / NS_PER_S;
}

int64_t cli_ceil_ms(int64_t ns)
{
	return ns <= 0 ? 0 : (ns + 999999) / 1000000;
}

long cli_touch_window_s(const struct cli *c)
{
	return c->touch_window_s > 0 ? c->touch_window_s : CLI_TOUCH_WINDOW_DEFAULT_S;
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
