/*
 * selector.c — label and field selectors (selector.h), parsed the way
 * k8s.io/apimachinery parses them: a lexer that knows the special symbols
 * = == != ! ( ) , > < and the words `in` / `notin` (plain values where a
 * value is expected), a recursive-descent parser with one token of
 * lookahead, and the requirement checks of labels.NewRequirement (keys are
 * qualified names, values label values, gt/lt take an integer).
 */
#include "kube/selector.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/validate.h"

typedef enum sel_op {
	OP_EXISTS, OP_NOTEXISTS, OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_GT, OP_LT
} sel_op;

typedef struct sel_req {
	sel_op op;
	char *key;
	char **vals;
	size_t nvals;
	long long num;            /* OP_GT / OP_LT */
} sel_req;

struct kvs__selector {
	sel_req *r;
	size_t n;
	int fields;               /* a field selector */
};

void kvs__selector_free(kvs__selector *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->r[i].key);
		for (size_t j = 0; j < s->r[i].nvals; j++)
			free(s->r[i].vals[j]);
		free(s->r[i].vals);
	}
	free(s->r);
	free(s);
}

int kvs__selector_empty(const kvs__selector *s)
{
	return !s || s->n == 0;
}

static int fail(char *msg, size_t cap, int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 5)))
#endif
	;

static int fail(char *msg, size_t cap, int code, const char *fmt, ...)
{
	va_list ap;

	if (msg && cap) {
		va_start(ap, fmt);
		vsnprintf(msg, cap, fmt, ap);
		va_end(ap);
	}
	return code;
}

static char *dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static int add_req(kvs__selector *s, sel_req **out)
{
	sel_req *nr = realloc(s->r, (s->n + 1) * sizeof(*nr));

	if (!nr)
		return KVS_ENOMEM;
	s->r = nr;
	memset(&s->r[s->n], 0, sizeof(s->r[s->n]));
	*out = &s->r[s->n++];
	return 0;
}

static int add_val(sel_req *r, const char *v, size_t n)
{
	char *c;
	char **nv;

	for (size_t i = 0; i < r->nvals; i++)   /* a set: "" twice is one value */
		if (strlen(r->vals[i]) == n && memcmp(r->vals[i], v, n) == 0)
			return 0;
	if (!(c = dupn(v, n)))
		return KVS_ENOMEM;
	if (!(nv = realloc(r->vals, (r->nvals + 1) * sizeof(*nv)))) {
		free(c);
		return KVS_ENOMEM;
	}
	r->vals = nv;
	r->vals[r->nvals++] = c;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Label selectors: the lexer                                                */

typedef enum tok_kind {
	T_END, T_IDENT, T_LPAREN, T_RPAREN, T_COMMA, T_NOT, T_EQ, T_DEQ, T_NEQ, T_GT, T_LT,
	T_IN, T_NOTIN
} tok_kind;

typedef struct lexer {
	const char *p;
	tok_kind kind;            /* the token looked at */
	const char *tok;          /* its text */
	size_t len;
} lexer;

static int special(char ch)
{
	return ch == '=' || ch == '!' || ch == '(' || ch == ')' || ch == ',' || ch == '>' ||
	       ch == '<';
}

static int white(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Scan the next token into l->kind / tok / len. */
static void lex(lexer *l)
{
	while (white(*l->p))
		l->p++;
	l->tok = l->p;
	if (!*l->p) {
		l->kind = T_END;
		l->len = 0;
		return;
	}
	if (special(*l->p)) {
		/* the longest operator: "!=" and "==" over "!" and "=" */
		char c = *l->p++;
		l->len = 1;
		switch (c) {
		case '(': l->kind = T_LPAREN; return;
		case ')': l->kind = T_RPAREN; return;
		case ',': l->kind = T_COMMA; return;
		case '>': l->kind = T_GT; return;
		case '<': l->kind = T_LT; return;
		case '=': l->kind = T_EQ; break;
		default: l->kind = T_NOT; break;
		}
		if (*l->p == '=') {
			l->p++;
			l->len = 2;
			l->kind = l->kind == T_EQ ? T_DEQ : T_NEQ;
		}
		return;
	}
	while (*l->p && !white(*l->p) && !special(*l->p))
		l->p++;
	l->len = (size_t)(l->p - l->tok);
	l->kind = T_IDENT;
	if (l->len == 2 && memcmp(l->tok, "in", 2) == 0)
		l->kind = T_IN;
	else if (l->len == 5 && memcmp(l->tok, "notin", 5) == 0)
		l->kind = T_NOTIN;
}

/* Where a value (or key) is expected, `in` and `notin` are plain words. */
static int is_value(const lexer *l)
{
	return l->kind == T_IDENT || l->kind == T_IN || l->kind == T_NOTIN;
}

/* ------------------------------------------------------------------------ */
/* Label selectors: the parser                                               */

typedef struct parse_ctx {
	lexer l;
	char *msg;
	size_t cap;
} parse_ctx;

#define LIT(c) (int)(c)->l.len, (c)->l.tok

static int req_fail(parse_ctx *c, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* "unable to parse requirement: <detail>" */
static int req_fail(parse_ctx *c, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return fail(c->msg, c->cap, KVS_EINVAL, "unable to parse requirement: %s", detail);
}

/* Join the messages of a validator as Go's strings.Join(errs, "; "). */
static void join(char *out, size_t cap, const kvs__verrs *e)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < e->n && o < cap; i++) {
		int w = snprintf(out + o, cap - o, "%s%s", i ? "; " : "", e->msg[i]);
		if (w < 0)
			break;
		o += (size_t)w;
	}
}

static int check_value(parse_ctx *c, const sel_req *r, size_t i)
{
	kvs__verrs e;
	char joined[1024];

	if (!kvs__is_label_value(&e, r->vals[i]))
		return 0;
	join(joined, sizeof(joined), &e);
	return req_fail(c, "values[%zu][%s]: Invalid value: \"%s\": %s", i, r->key, r->vals[i],
	                joined);
}

static int parse_values(parse_ctx *c, sel_req *r)
{
	int rc;

	if (c->l.kind != T_LPAREN)
		return req_fail(c, "found '%.*s' expected: '('", LIT(c));
	lex(&c->l);
	if (c->l.kind == T_RPAREN) {               /* "()" is the set {""} */
		lex(&c->l);
		return add_val(r, "", 0);
	}
	if (!is_value(&c->l) && c->l.kind != T_COMMA)
		return req_fail(c, "found '%.*s', expected: ',', ')' or identifier", LIT(c));
	for (;;) {
		if (is_value(&c->l)) {
			if ((rc = add_val(r, c->l.tok, c->l.len)) < 0)
				return rc;
			lex(&c->l);
			if (c->l.kind == T_RPAREN)
				break;
			if (c->l.kind != T_COMMA)
				return req_fail(c, "found '%.*s', expected: ',' or ')'", LIT(c));
			continue;
		}
		if (c->l.kind != T_COMMA)
			return req_fail(c, "found '%.*s', expected: ',', or identifier", LIT(c));
		/* an empty value: "(,", ",,", ",)" */
		if (r->nvals == 0 && (rc = add_val(r, "", 0)) < 0)
			return rc;
		lex(&c->l);
		if (c->l.kind == T_RPAREN) {
			if ((rc = add_val(r, "", 0)) < 0)
				return rc;
			break;
		}
		if (c->l.kind == T_COMMA && (rc = add_val(r, "", 0)) < 0)
			return rc;
	}
	lex(&c->l);                                /* the ')' */
	return 0;
}

/* One requirement; the lexer stands on its first token. */
static int parse_req(parse_ctx *c, sel_req *r)
{
	kvs__verrs e;
	char joined[1024];
	int rc;

	r->op = OP_EXISTS;
	if (c->l.kind == T_NOT) {
		r->op = OP_NOTEXISTS;
		lex(&c->l);
	}
	if (!is_value(&c->l))
		return req_fail(c, "found '%.*s', expected: identifier", LIT(c));
	if (!(r->key = dupn(c->l.tok, c->l.len)))
		return KVS_ENOMEM;
	if (kvs__is_qualified_name(&e, r->key)) {
		join(joined, sizeof(joined), &e);
		return req_fail(c, ": Invalid value: \"%s\": %s", r->key, joined);
	}
	lex(&c->l);
	if (r->op == OP_NOTEXISTS || c->l.kind == T_END || c->l.kind == T_COMMA)
		return 0;
	switch (c->l.kind) {
	case T_IN: r->op = OP_IN; break;
	case T_NOTIN: r->op = OP_NOTIN; break;
	case T_EQ: case T_DEQ: r->op = OP_EQ; break;
	case T_NEQ: r->op = OP_NE; break;
	case T_GT: r->op = OP_GT; break;
	case T_LT: r->op = OP_LT; break;
	case T_END: case T_IDENT: case T_LPAREN: case T_RPAREN: case T_COMMA: case T_NOT:
	default:
		return req_fail(c, "found '%.*s', expected: in, notin, =, ==, !=, gt, lt", LIT(c));
	}
	lex(&c->l);
	if (r->op == OP_IN || r->op == OP_NOTIN) {
		if ((rc = parse_values(c, r)) < 0)
			return rc;
	} else if (c->l.kind == T_END || c->l.kind == T_COMMA) {
		if ((rc = add_val(r, "", 0)) < 0)
			return rc;
	} else if (is_value(&c->l)) {
		if ((rc = add_val(r, c->l.tok, c->l.len)) < 0)
			return rc;
		lex(&c->l);
	} else {
		return req_fail(c, "found '%.*s', expected: identifier", LIT(c));
	}
	if (r->op == OP_GT || r->op == OP_LT) {
		char *end;
		errno = 0;
		r->num = strtoll(r->vals[0], &end, 10);
		if (errno || *end || end == r->vals[0])
			return req_fail(c, "values[0]: Invalid value: \"%s\": for 'Gt', 'Lt' operators, "
			                "the value must be an integer", r->vals[0]);
	}
	for (size_t i = 0; i < r->nvals; i++)
		if ((rc = check_value(c, r, i)) < 0)
			return rc;
	return 0;
}

int kvs__label_selector_parse(kvs__selector **out, const char *text, char *msg, size_t cap)
{
	parse_ctx c;
	kvs__selector *s;
	sel_req *r;
	int rc;

	*out = NULL;
	if (msg && cap)
		msg[0] = '\0';
	if (!text)
		return 0;
	if (strnlen(text, KVS__SELECTOR_MAX + 1) > KVS__SELECTOR_MAX)
		return fail(msg, cap, KVS_EINVAL, "label selector is over %u bytes",
		            KVS__SELECTOR_MAX);
	c.l.p = text;
	c.msg = msg;
	c.cap = cap;
	lex(&c.l);
	if (c.l.kind == T_END)
		return 0;
	if (!(s = calloc(1, sizeof(*s))))
		return fail(msg, cap, KVS_ENOMEM, "out of memory");
	for (;;) {
		if (c.l.kind != T_NOT && !is_value(&c.l)) {
			rc = fail(msg, cap, KVS_EINVAL, "found '%.*s', expected: !, identifier, or "
			          "'end of string'", LIT(&c));
			break;
		}
		if ((rc = add_req(s, &r)) < 0 || (rc = parse_req(&c, r)) < 0)
			break;
		if (c.l.kind == T_END) {
			*out = s;
			return 0;
		}
		if (c.l.kind != T_COMMA) {
			rc = fail(msg, cap, KVS_EINVAL, "found '%.*s', expected: ',' or 'end of string'",
			          LIT(&c));
			break;
		}
		lex(&c.l);
		if (c.l.kind != T_NOT && !is_value(&c.l)) {
			rc = fail(msg, cap, KVS_EINVAL, "found '%.*s', expected: identifier after ','",
			          LIT(&c));
			break;
		}
	}
	if (rc == KVS_ENOMEM)
		fail(msg, cap, rc, "out of memory");
	kvs__selector_free(s);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Field selectors                                                           */

/* Unescape a field selector value (fields.UnescapeValue) into r's values. */
static int field_value(sel_req *r, const char *v, size_t n, char *msg, size_t cap)
{
	char *buf = malloc(n + 1);
	size_t o = 0;
	int rc;

	if (!buf)
		return fail(msg, cap, KVS_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char ch = v[i];
		if (ch == '\\') {
			if (i + 1 == n || (v[i + 1] != '\\' && v[i + 1] != ',' && v[i + 1] != '=')) {
				free(buf);
				return fail(msg, cap, KVS_EINVAL, "invalid field selector: invalid escape "
				            "sequence: \\%.1s", i + 1 < n ? &v[i + 1] : "");
			}
			buf[o++] = v[++i];
		} else if (ch == ',' || ch == '=') {
			free(buf);
			return fail(msg, cap, KVS_EINVAL, "invalid field selector: unescaped character "
			            "in value: %c", ch);
		} else {
			buf[o++] = ch;
		}
	}
	rc = add_val(r, buf, o);
	free(buf);
	return rc < 0 ? fail(msg, cap, rc, "out of memory") : 0;
}

/* One term "field<op>value"; the first operator found splits it. */
static int field_term(kvs__selector *s, const char *whole, const char *t, size_t n, char *msg,
                      size_t cap)
{
	sel_req *r;
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		if (t[i] == '=' || (t[i] == '!' && i + 1 < n && t[i + 1] == '='))
			break;
	if (i == n)
		return fail(msg, cap, KVS_EINVAL, "invalid selector: '%s'; can't understand '%.*s'",
		            whole, (int)n, t);
	if ((rc = add_req(s, &r)) < 0)
		return fail(msg, cap, rc, "out of memory");
	if (!(r->key = dupn(t, i)))
		return fail(msg, cap, KVS_ENOMEM, "out of memory");
	r->op = t[i] == '!' ? OP_NE : OP_EQ;
	i += t[i] == '!' || (i + 1 < n && t[i + 1] == '=') ? 2 : 1;
	if ((rc = field_value(r, t + i, n - i, msg, cap)) < 0)
		return rc;
	if (strcmp(r->key, "metadata.name") != 0 && strcmp(r->key, "metadata.namespace") != 0)
		return fail(msg, cap, KVS_EINVAL, "field label not supported: %s", r->key);
	return 0;
}

int kvs__field_selector_parse(kvs__selector **out, const char *text, char *msg, size_t cap)
{
	kvs__selector *s;
	const char *start;
	int rc = 0, esc = 0;

	*out = NULL;
	if (msg && cap)
		msg[0] = '\0';
	if (!text || !*text)
		return 0;
	if (strnlen(text, KVS__SELECTOR_MAX + 1) > KVS__SELECTOR_MAX)
		return fail(msg, cap, KVS_EINVAL, "field selector is over %u bytes",
		            KVS__SELECTOR_MAX);
	if (!(s = calloc(1, sizeof(*s))))
		return fail(msg, cap, KVS_ENOMEM, "out of memory");
	s->fields = 1;
	/* terms split on commas not escaped by a backslash; empty ones skipped */
	for (const char *p = start = text;; p++) {
		if (esc) {
			esc = 0;
			if (*p)
				continue;
		}
		if (*p == '\\') {
			esc = 1;
			continue;
		}
		if (*p == ',' || !*p) {
			if (p > start && (rc = field_term(s, text, start, (size_t)(p - start), msg,
			                                  cap)) < 0)
				break;
			if (!*p)
				break;
			start = p + 1;
		}
	}
	if (rc < 0) {
		kvs__selector_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Matching                                                                  */

static int has_value(const sel_req *r, const char *v)
{
	for (size_t i = 0; i < r->nvals; i++)
		if (strcmp(r->vals[i], v) == 0)
			return 1;
	return 0;
}

static int req_match(const sel_req *r, const char *v)
{
	switch (r->op) {
	case OP_EXISTS: return v != NULL;
	case OP_NOTEXISTS: return v == NULL;
	case OP_EQ:
	case OP_IN: return v && has_value(r, v);
	case OP_NE:
	case OP_NOTIN: return !v || !has_value(r, v);
	case OP_GT:
	case OP_LT: {
		char *end;
		long long x;
		if (!v)
			return 0;
		errno = 0;
		x = strtoll(v, &end, 10);
		if (errno || *end || end == v)
			return 0;
		return r->op == OP_GT ? x > r->num : x < r->num;
	}
	}
	return 0;
}

int kvs__selector_match(const kvs__selector *s, kvs__label_fn get, void *ctx)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (!req_match(&s->r[i], get(ctx, s->r[i].key)))
			return 0;
	return 1;
}

typedef struct kv_arr {
	const kvs_kv *kv;
	size_t n;
} kv_arr;

static const char *kv_get(void *ctx, const char *key)
{
	const kv_arr *a = ctx;

	for (size_t i = 0; i < a->n; i++)
		if (a->kv[i].key && strcmp(a->kv[i].key, key) == 0)
			return a->kv[i].value ? a->kv[i].value : "";
	return NULL;
}

int kvs__selector_match_kv(const kvs__selector *s, const kvs_kv *labels, size_t n)
{
	kv_arr a = { labels, n };

	return kvs__selector_match(s, kv_get, &a);
}

int kvs__field_selector_match(const kvs__selector *s, const char *ns, const char *name)
{
	for (size_t i = 0; s && i < s->n; i++) {
		const char *v = strcmp(s->r[i].key, "metadata.name") == 0 ? name : ns;
		if (!req_match(&s->r[i], v ? v : ""))
			return 0;
	}
	return 1;
}
