/*
 * selector_fuzzer.c — label and field selectors (kube/selector.c) on
 * arbitrary bytes. Byte 0 picks the mode:
 *
 *   0  text: a label selector (up to the first NUL), then label lines
 *      `key=value` (NUL-separated). Parse must not crash; a selector that
 *      parses matches the same labels as itself twice ("S,S") and as itself
 *      with blanks around its commas; matching never crashes.
 *   1  text: the same for a field selector and `namespace NUL name`.
 *   2  structured label selector: requirements built from the bytes (keys,
 *      operators and values from small sets, so they meet), rendered as
 *      text, parsed (it must parse) and matched against a label set built
 *      from the bytes; the result must equal a reference evaluation of the
 *      requirements written here from the Kubernetes semantics.
 *   3  structured field selector: terms on metadata.name/namespace with
 *      values that need escaping; same reference check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/selector.h"

#define FAIL() fail(__LINE__)
static void fail(int line)
{
	fprintf(stderr, "selector_fuzzer.c:%d: property violated\n", line);
	abort();
}

static char *dupn(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* ---- text modes ---- */

/* "S" with ", " for every top-level comma (commas inside values stay). */
static char *spaced(const char *t)
{
	size_t n = strlen(t);
	char *o = malloc(3 * n + 1), *w = o;
	int depth = 0;

	if (!o)
		abort();
	for (const char *p = t; *p; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')' && depth)
			depth--;
		if (*p == ',' && depth == 0) {
			*w++ = ' ';
			*w++ = ',';
			*w++ = ' ';
		} else {
			*w++ = *p;
		}
	}
	*w = '\0';
	return o;
}

static void text_labels(const char *p, size_t n)
{
	const char *z = memchr(p, '\0', n), *end = p + n;
	char *text = dupn(p, z ? (size_t)(z - p) : n), *twice, *sp;
	kvs__selector *s = NULL, *s2 = NULL, *s3 = NULL;
	kvs_kv kv[16];
	char *store[16];
	size_t nkv = 0;
	char msg[256];
	int rc, m;

	if (strlen(text) > 4096) {
		free(text);
		return;
	}
	for (const char *q = z ? z + 1 : end; q < end && nkv < 16;) {
		const char *e = memchr(q, '\0', (size_t)(end - q));
		size_t len = e ? (size_t)(e - q) : (size_t)(end - q);
		char *l = dupn(q, len), *eq = strchr(l, '=');
		if (eq)
			*eq = '\0';
		store[nkv] = l;
		kv[nkv].key = l;
		kv[nkv].value = eq ? eq + 1 : NULL;
		nkv++;
		q += len + 1;
	}
	rc = kvs__label_selector_parse(&s, text, msg, sizeof(msg));
	if (rc < 0) {
		if (s || !msg[0] || rc != KVS_EINVAL)
			FAIL();   /* a refusal leaves nothing and says why */
	} else {
		m = kvs__selector_match_kv(s, kv, nkv);
		if (!kvs__selector_empty(s)) {
			twice = malloc(2 * strlen(text) + 2);
			if (!twice)
				abort();
			sprintf(twice, "%s,%s", text, text);
			if (kvs__label_selector_parse(&s2, twice, NULL, 0) != 0 ||
			    kvs__selector_match_kv(s2, kv, nkv) != m)
				FAIL();
			sp = spaced(text);
			if (kvs__label_selector_parse(&s3, sp, NULL, 0) != 0 ||
			    kvs__selector_match_kv(s3, kv, nkv) != m)
				FAIL();
			free(sp);
			free(twice);
		} else if (!m) {
			FAIL();   /* everything matches the empty selector */
		}
	}
	kvs__selector_free(s);
	kvs__selector_free(s2);
	kvs__selector_free(s3);
	for (size_t i = 0; i < nkv; i++)
		free(store[i]);
	free(text);
}

static void text_fields(const char *p, size_t n)
{
	const char *z = memchr(p, '\0', n), *end = p + n;
	char *text = dupn(p, z ? (size_t)(z - p) : n), *ns = NULL, *name = NULL, *twice;
	kvs__selector *s = NULL, *s2 = NULL;
	char msg[256];
	int rc, m;

	if (z) {
		const char *a = z + 1, *b = memchr(a, '\0', (size_t)(end - a));
		ns = dupn(a, b ? (size_t)(b - a) : (size_t)(end - a));
		if (b)
			name = dupn(b + 1, (size_t)(end - b - 1));
	}
	rc = kvs__field_selector_parse(&s, text, msg, sizeof(msg));
	if (rc < 0) {
		if (s || !msg[0] || rc != KVS_EINVAL)
			FAIL();
	} else {
		m = kvs__field_selector_match(s, ns, name);
		if (!kvs__selector_empty(s)) {
			twice = malloc(2 * strlen(text) + 2);
			if (!twice)
				abort();
			sprintf(twice, "%s,%s", text, text);
			if (kvs__field_selector_parse(&s2, twice, NULL, 0) != 0 ||
			    kvs__field_selector_match(s2, ns, name) != m)
				FAIL();
			free(twice);
		} else if (!m) {
			FAIL();
		}
	}
	kvs__selector_free(s);
	kvs__selector_free(s2);
	free(ns);
	free(name);
	free(text);
}

/* ---- structured label selectors with a reference evaluation ---- */

static const char *const keys[] = { "a", "b", "app.kubernetes.io/name", "x-y_z.1" };
static const char *const vals[] = { "", "1", "10", "x", "in", "notin", "-3" };
#define NKEYS (sizeof(keys) / sizeof(keys[0]))
#define NVALS (sizeof(vals) / sizeof(vals[0]))

enum { R_EXISTS, R_NOTEXISTS, R_EQ, R_DEQ, R_NE, R_IN, R_NOTIN, R_GT, R_LT, R_NOPS };

struct req {
	int op;
	size_t key;
	size_t v[3], nv;
	long long num;
};

/* Values in the label set are valid label values; "-3" only as a number. */
static const char *label_val(uint8_t b)
{
	return vals[b % (NVALS - 1)];
}

static int ref_match(const struct req *r, const char *lv)
{
	switch (r->op) {
	case R_EXISTS: return lv != NULL;
	case R_NOTEXISTS: return lv == NULL;
	case R_EQ: case R_DEQ: case R_IN:
		for (size_t i = 0; i < r->nv; i++)
			if (lv && strcmp(vals[r->v[i]], lv) == 0)
				return 1;
		return 0;
	case R_NE: case R_NOTIN:
		for (size_t i = 0; i < r->nv; i++)
			if (lv && strcmp(vals[r->v[i]], lv) == 0)
				return 0;
		return 1;
	case R_GT: case R_LT: {
		char *e;
		long long x;
		if (!lv || !*lv)
			return 0;
		x = strtoll(lv, &e, 10);
		if (*e)
			return 0;
		return r->op == R_GT ? x > r->num : x < r->num;
	}
	default: return 0;
	}
}

static void structured_labels(const uint8_t *p, size_t n)
{
	struct req rq[8];
	size_t nr = 0, off = 0, nkv = 0;
	char text[1024];
	size_t tl = 0;
	kvs_kv kv[NKEYS];
	kvs__selector *s = NULL;
	char msg[256];
	int want = 1;

	/* labels first: one byte per key, bit 7 set = present */
	for (size_t k = 0; k < NKEYS && off < n; k++, off++)
		if (p[off] & 0x80) {
			kv[nkv].key = (char *)keys[k];
			kv[nkv].value = (char *)label_val(p[off]);
			nkv++;
		}
	while (nr < 8 && off + 2 <= n) {
		struct req *r = &rq[nr];
		uint8_t a = p[off], b = p[off + 1];
		off += 2;
		r->op = a % R_NOPS;
		r->key = (a >> 4) % NKEYS;
		r->nv = 0;
		switch (r->op) {
		case R_EQ: case R_DEQ: case R_NE:
			r->v[0] = b % (NVALS - 1);   /* "-3" is no label value */
			r->nv = 1;
			break;
		case R_IN: case R_NOTIN:
			r->nv = 1 + b % 3;
			for (size_t i = 0; i < r->nv; i++)
				r->v[i] = 1 + (size_t)((b >> (2 + 2 * i)) % (NVALS - 2));
			break;
		case R_GT: case R_LT:
			r->num = (long long)(b % 12);   /* a negative number is no label value */
			break;
		default: break;
		}
		nr++;
	}
	if (!nr)
		return;
	for (size_t i = 0; i < nr; i++) {
		const struct req *r = &rq[i];
		const char *k = keys[r->key];
		int w = 0;
		if (i)
			text[tl++] = ',';
		switch (r->op) {
		case R_EXISTS: w = snprintf(text + tl, sizeof(text) - tl, "%s", k); break;
		case R_NOTEXISTS: w = snprintf(text + tl, sizeof(text) - tl, "!%s", k); break;
		case R_EQ: w = snprintf(text + tl, sizeof(text) - tl, "%s=%s", k, vals[r->v[0]]); break;
		case R_DEQ: w = snprintf(text + tl, sizeof(text) - tl, "%s == %s", k, vals[r->v[0]]); break;
		case R_NE: w = snprintf(text + tl, sizeof(text) - tl, "%s!=%s", k, vals[r->v[0]]); break;
		case R_IN: case R_NOTIN:
			w = snprintf(text + tl, sizeof(text) - tl, "%s %s (", k,
			             r->op == R_IN ? "in" : "notin");
			for (size_t j = 0; j < r->nv; j++)
				w += snprintf(text + tl + w, sizeof(text) - tl - w, "%s%s", j ? "," : "",
				              vals[r->v[j]]);
			w += snprintf(text + tl + w, sizeof(text) - tl - w, ")");
			break;
		case R_GT: case R_LT:
			w = snprintf(text + tl, sizeof(text) - tl, "%s%c%lld", k, r->op == R_GT ? '>' : '<',
			             r->num);
			break;
		default: break;
		}
		tl += (size_t)w;
	}
	text[tl] = '\0';
	for (size_t i = 0; i < nr; i++) {
		const char *lv = NULL;
		for (size_t j = 0; j < nkv; j++)
			if (strcmp(kv[j].key, keys[rq[i].key]) == 0)
				lv = kv[j].value;
		want &= ref_match(&rq[i], lv);
	}
	if (kvs__label_selector_parse(&s, text, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "selector \"%s\" refused: %s\n", text, msg);
		FAIL();
	}
	if (kvs__selector_match_kv(s, kv, nkv) != want) {
		fprintf(stderr, "selector \"%s\": match %d, expected %d\n", text, !want, want);
		FAIL();
	}
	kvs__selector_free(s);
}

/* ---- structured field selectors ---- */

static const char *const fvals[] = { "", "a", "a,b", "x=y", "back\\slash", "ns-1", "a\\" };
#define NFVALS (sizeof(fvals) / sizeof(fvals[0]))

static size_t escape(char *out, const char *v)
{
	size_t o = 0;

	for (; *v; v++) {
		if (*v == '\\' || *v == ',' || *v == '=')
			out[o++] = '\\';
		out[o++] = *v;
	}
	return o;
}

static void structured_fields(const uint8_t *p, size_t n)
{
	char text[1024];
	size_t tl = 0, nt = 0;
	const char *ns, *name;
	kvs__selector *s = NULL;
	char msg[256];
	int want = 1;

	if (n < 2)
		return;
	ns = fvals[p[0] % NFVALS];
	name = fvals[p[1] % NFVALS];
	for (size_t off = 2; off < n && nt < 8; off++, nt++) {
		uint8_t b = p[off];
		int on_name = b & 1, op = (b >> 1) % 3;   /* = == != */
		const char *v = fvals[(b >> 3) % NFVALS];
		const char *field = on_name ? "metadata.name" : "metadata.namespace";
		const char *have = on_name ? name : ns;
		int eq = strcmp(have, v) == 0;

		if (nt)
			text[tl++] = ',';
		tl += (size_t)snprintf(text + tl, sizeof(text) - tl, "%s%s", field,
		                       op == 0 ? "=" : op == 1 ? "==" : "!=");
		tl += escape(text + tl, v);
		want &= op == 2 ? !eq : eq;
	}
	text[tl] = '\0';
	if (!nt)
		return;
	if (kvs__field_selector_parse(&s, text, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "field selector \"%s\" refused: %s\n", text, msg);
		FAIL();
	}
	if (kvs__field_selector_match(s, ns, name) != want) {
		fprintf(stderr, "field selector \"%s\" on %s/%s: match %d, expected %d\n", text, ns,
		        name, !want, want);
		FAIL();
	}
	kvs__selector_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0: text_labels((const char *)data + 1, size - 1); break;
	case 1: text_fields((const char *)data + 1, size - 1); break;
	case 2: structured_labels(data + 1, size - 1); break;
	default: structured_fields(data + 1, size - 1); break;
	}
	return 0;
}
