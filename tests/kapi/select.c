/* Label selectors (k8s.io/apimachinery/pkg/labels) and the field selectors
 * every resource supports (metadata.name, metadata.namespace). */
#include "kapi.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

enum op { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOTEXISTS, OP_GT, OP_LT };

struct req {
	enum op op;
	char *key;
	char **vals;
	size_t nvals;
};

struct selector {
	struct req *r;
	size_t n;
};

void selector_free(struct selector *s)
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

bool selector_empty(const struct selector *s)
{
	return !s || s->n == 0;
}

static void skip_ws(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
}

static bool key_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' || c == '/';
}

static bool val_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

static char *take(const char **p, bool (*ok)(char))
{
	const char *s = *p;
	while (**p && ok(**p))
		(*p)++;
	size_t n = (size_t)(*p - s);
	char *r = xmalloc(n + 1);
	memcpy(r, s, n);
	r[n] = 0;
	return r;
}

static void add_val(struct req *q, char *v)
{
	q->vals = xrealloc(q->vals, (q->nvals + 1) * sizeof *q->vals);
	q->vals[q->nvals++] = v;
}

static bool word(const char **p, const char *w)
{
	size_t n = strlen(w);
	if (strncmp(*p, w, n) == 0 && !key_char((*p)[n])) {
		*p += n;
		return true;
	}
	return false;
}

/* The real parser's messages are of the form
 * "unable to parse requirement: <detail>"; the detail here is shorter. */
static struct selector *parse(const char *s, char **err, bool fields)
{
	struct selector *sel = xmalloc(sizeof *sel);
	sel->r = NULL;
	sel->n = 0;
	const char *p = s;
	skip_ws(&p);
	if (*p == 0)
		return sel;
	for (;;) {
		struct req q = {0};
		skip_ws(&p);
		if (!fields && *p == '!') {
			p++;
			skip_ws(&p);
			q.op = OP_NOTEXISTS;
			q.key = take(&p, key_char);
		} else {
			q.key = take(&p, key_char);
			skip_ws(&p);
			if (*q.key == 0) {
				*err = xasprintf("unable to parse requirement: found '%s', expected: identifier", *p ? p : "EOS");
				goto fail;
			}
			if (p[0] == '=' && p[1] == '=') {
				q.op = OP_EQ;
				p += 2;
			} else if (p[0] == '=') {
				q.op = OP_EQ;
				p += 1;
			} else if (p[0] == '!' && p[1] == '=') {
				q.op = OP_NE;
				p += 2;
			} else if (!fields && (p[0] == '>' || p[0] == '<')) {
				q.op = p[0] == '>' ? OP_GT : OP_LT;
				p += 1;
			} else if (!fields && word(&p, "in")) {
				q.op = OP_IN;
			} else if (!fields && word(&p, "notin")) {
				q.op = OP_NOTIN;
			} else if (!fields && (*p == 0 || *p == ',')) {
				q.op = OP_EXISTS;
			} else {
				*err = xasprintf("unable to parse requirement: found '%s', expected: in, notin, =, ==, !=, gt, lt", p);
				goto fail;
			}
			skip_ws(&p);
			if (q.op == OP_IN || q.op == OP_NOTIN) {
				if (*p != '(') {
					*err = xasprintf("unable to parse requirement: found '%s', expected: '('", *p ? p : "EOS");
					goto fail;
				}
				p++;
				for (;;) {
					skip_ws(&p);
					add_val(&q, take(&p, val_char));
					skip_ws(&p);
					if (*p == ',') {
						p++;
						continue;
					}
					if (*p == ')') {
						p++;
						break;
					}
					*err = xasprintf("unable to parse requirement: found '%s', expected: ',', ')' or identifier", *p ? p : "EOS");
					goto fail;
				}
			} else if (q.op == OP_EQ || q.op == OP_NE || q.op == OP_GT || q.op == OP_LT) {
				add_val(&q, fields ? take(&p, key_char) : take(&p, val_char));
				if ((q.op == OP_GT || q.op == OP_LT)) {
					char *end;
					strtol(q.vals[0], &end, 10);
					if (*q.vals[0] == 0 || *end) {
						*err = xasprintf("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer");
						goto fail;
					}
				}
			}
		}
		if (*q.key == 0) {
			*err = xasprintf("unable to parse requirement: found '%s', expected: identifier", *p ? p : "EOS");
			goto fail;
		}
		if (fields && strcmp(q.key, "metadata.name") != 0 && strcmp(q.key, "metadata.namespace") != 0) {
			*err = xasprintf("field label not supported: %s", q.key);
			goto fail;
		}
		sel->r = xrealloc(sel->r, (sel->n + 1) * sizeof *sel->r);
		sel->r[sel->n++] = q;
		skip_ws(&p);
		if (*p == 0)
			return sel;
		if (*p != ',') {
			*err = xasprintf("unable to parse requirement: found '%s', expected: ','", p);
			selector_free(sel);
			return NULL;
		}
		p++;
		continue;
	fail:
		free(q.key);
		for (size_t j = 0; j < q.nvals; j++)
			free(q.vals[j]);
		free(q.vals);
		selector_free(sel);
		return NULL;
	}
}

struct selector *label_selector_parse(const char *s, char **err)
{
	return parse(s ? s : "", err, false);
}

struct selector *field_selector_parse(const char *s, char **err)
{
	return parse(s ? s : "", err, true);
}

static bool req_match(const struct req *q, const char *v)
{
	switch (q->op) {
	case OP_EXISTS:
		return v != NULL;
	case OP_NOTEXISTS:
		return v == NULL;
	case OP_EQ:
		return v && strcmp(v, q->vals[0]) == 0;
	case OP_NE:
		return !v || strcmp(v, q->vals[0]) != 0;
	case OP_IN:
	case OP_NOTIN: {
		bool in = false;
		for (size_t i = 0; v && i < q->nvals; i++)
			in |= strcmp(v, q->vals[i]) == 0;
		return q->op == OP_IN ? in : !in;
	}
	case OP_GT:
	case OP_LT: {
		if (!v)
			return false;
		char *end;
		long x = strtol(v, &end, 10);
		if (*v == 0 || *end)
			return false;
		long y = strtol(q->vals[0], NULL, 10);
		return q->op == OP_GT ? x > y : x < y;
	}
	}
	return false;
}

bool label_selector_match(const struct selector *s, const cJSON *labels)
{
	for (size_t i = 0; s && i < s->n; i++) {
		const cJSON *l = cJSON_GetObjectItemCaseSensitive(labels, s->r[i].key);
		if (!req_match(&s->r[i], cJSON_IsString(l) ? l->valuestring : NULL))
			return false;
	}
	return true;
}

bool field_selector_match(const struct selector *s, const char *ns, const char *name)
{
	for (size_t i = 0; s && i < s->n; i++) {
		const char *v = strcmp(s->r[i].key, "metadata.name") == 0 ? name : ns;
		if (!req_match(&s->r[i], v))
			return false;
	}
	return true;
}
