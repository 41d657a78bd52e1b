/*
 * validate.c — names, labels, annotations and ConfigMap keys checked as the
 * API server checks them (validate.h). The rules are small character
 * classes, so they are written out rather than compiled from the regular
 * expressions the messages quote.
 */
#include "kube/validate.h"

#include <stdio.h>
#include <string.h>

#define MAXLEN_253 "must be no more than 253 characters"
#define MAXLEN_63 "must be no more than 63 characters"
#define SUBDOMAIN_MSG "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric " \
	"characters, '-' or '.', and must start and end with an alphanumeric character (e.g. " \
	"'example.com', regex used for validation is " \
	"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
#define LABEL_MSG "a lowercase RFC 1123 label must consist of lower case alphanumeric " \
	"characters or '-', and must start and end with an alphanumeric character (e.g. " \
	"'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
#define QNAME_MSG "must consist of alphanumeric characters, '-', '_' or '.', and must start " \
	"and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', " \
	"regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
#define VALUE_MSG "a valid label must be an empty string or consist of alphanumeric " \
	"characters, '-', '_' or '.', and must start and end with an alphanumeric character " \
	"(e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is " \
	"'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
#define CONFIG_KEY_MSG "a valid config key must consist of alphanumeric characters, '-', '_' " \
	"or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is " \
	"'[-._a-zA-Z0-9]+')"

static void add(kvs__verrs *e, size_t *n, const char *msg)
{
	if (e && *n < KVS__VERRS_MAX)
		e->msg[*n] = msg;
	(*n)++;
}

static size_t done(kvs__verrs *e, size_t n)
{
	if (e)
		e->n = n < KVS__VERRS_MAX ? n : KVS__VERRS_MAX;
	return n;
}

static int lower_alnum(char ch, int fold)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       (fold && ch >= 'A' && ch <= 'Z');
}

static int alnum(char ch)
{
	return lower_alnum(ch, 1);
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? over s[0..n) */
static int is_label_syntax(const char *s, size_t n, int fold)
{
	if (n == 0 || !lower_alnum(s[0], fold) || !lower_alnum(s[n - 1], fold))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!lower_alnum(s[i], fold) && s[i] != '-')
			return 0;
	return 1;
}

/* labels joined by '.' over s[0..n); `fold` accepts upper case (an
 * annotation key is checked lowercased). */
static int is_subdomain_syntax(const char *s, size_t n, int fold)
{
	size_t start = 0;

	if (n == 0)
		return 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (!is_label_syntax(s + start, i - start, fold))
				return 0;
			start = i + 1;
		}
	}
	return 1;
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] over s[0..n) */
static int is_qname_syntax(const char *s, size_t n)
{
	if (n == 0 || !alnum(s[0]) || !alnum(s[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return 0;
	return 1;
}

size_t kvs__is_dns1123_subdomain(kvs__verrs *e, const char *s)
{
	size_t n = 0, len = strlen(s);

	if (len > KVS__DNS1123_SUBDOMAIN_MAX)
		add(e, &n, MAXLEN_253);
	if (!is_subdomain_syntax(s, len, 0))
		add(e, &n, SUBDOMAIN_MSG);
	return done(e, n);
}

size_t kvs__is_dns1123_label(kvs__verrs *e, const char *s)
{
	size_t n = 0, len = strlen(s);

	if (len > KVS__DNS1123_LABEL_MAX)
		add(e, &n, MAXLEN_63);
	if (!is_label_syntax(s, len, 0))
		add(e, &n, LABEL_MSG);
	return done(e, n);
}

static size_t qualified_name(kvs__verrs *e, const char *s, int fold)
{
	const char *slash = strchr(s, '/'), *name = s;
	size_t n = 0;

	if (slash && strchr(slash + 1, '/')) {
		add(e, &n, "a qualified name " QNAME_MSG " with an optional DNS subdomain prefix and "
		           "'/' (e.g. 'example.com/MyName')");
		return done(e, n);
	}
	if (slash) {
		size_t plen = (size_t)(slash - s);
		name = slash + 1;
		if (plen == 0) {
			add(e, &n, "prefix part must be non-empty");
		} else {
			if (plen > KVS__DNS1123_SUBDOMAIN_MAX)
				add(e, &n, "prefix part " MAXLEN_253);
			if (!is_subdomain_syntax(s, plen, fold))
				add(e, &n, "prefix part " SUBDOMAIN_MSG);
		}
	}
	size_t nlen = strlen(name);
	if (nlen == 0)
		add(e, &n, "name part must be non-empty");
	else if (nlen > 63)
		add(e, &n, "name part " MAXLEN_63);
	if (!is_qname_syntax(name, nlen))
		add(e, &n, "name part " QNAME_MSG);
	return done(e, n);
}

size_t kvs__is_qualified_name(kvs__verrs *e, const char *s)
{
	return qualified_name(e, s, 0);
}

size_t kvs__is_label_value(kvs__verrs *e, const char *s)
{
	size_t n = 0, len = strlen(s);

	if (len > KVS__LABEL_VALUE_MAX)
		add(e, &n, MAXLEN_63);
	if (len && !is_qname_syntax(s, len))
		add(e, &n, VALUE_MSG);
	return done(e, n);
}

size_t kvs__is_config_key(kvs__verrs *e, const char *s)
{
	size_t n = 0, len = strlen(s);
	int ok = len > 0;

	if (len > KVS__DNS1123_SUBDOMAIN_MAX)
		add(e, &n, MAXLEN_253);
	for (size_t i = 0; i < len; i++)
		if (!alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			ok = 0;
	if (!ok)
		add(e, &n, CONFIG_KEY_MSG);
	if (strcmp(s, ".") == 0)
		add(e, &n, "must not be '.'");
	else if (strcmp(s, "..") == 0)
		add(e, &n, "must not be '..'");
	else if (strncmp(s, "..", 2) == 0)
		add(e, &n, "must not start with '..'");
	return done(e, n);
}

/* ------------------------------------------------------------------------ */

const char *kvs__ferr_reason(const kvs__field_err *e)
{
	switch (e->type) {
	case KVS__FERR_INVALID: return "FieldValueInvalid";
	case KVS__FERR_TOO_LONG: return "FieldValueTooLong";
	case KVS__FERR_REQUIRED: return "FieldValueRequired";
	}
	return "FieldValueInvalid";
}

size_t kvs__ferr_format(char *buf, size_t n, const kvs__field_err *e, int with_field)
{
	int p = 0, w;
	size_t off;

	if (!buf)
		n = 0;
	if (with_field)
		p = e->field_key ? snprintf(buf, n, "%s[%s]: ", e->field, e->field_key)
		                 : snprintf(buf, n, "%s: ", e->field);
	if (p < 0)
		p = 0;
	off = (size_t)p < n ? (size_t)p : n;
	buf = buf ? buf + off : NULL;
	n -= off;
	switch (e->type) {
	case KVS__FERR_TOO_LONG:
		w = snprintf(buf, n, "Too long: must have at most %zu bytes", e->limit);
		break;
	case KVS__FERR_REQUIRED:
		w = snprintf(buf, n, "Required value: %s", e->detail ? e->detail : "");
		break;
	case KVS__FERR_INVALID:
	default:
		w = snprintf(buf, n, "Invalid value: \"%s\": %s", e->value ? e->value : "",
		             e->detail ? e->detail : "");
		break;
	}
	return (size_t)p + (w < 0 ? 0 : (size_t)w);
}

static void each(kvs__ferr_fn fn, void *ctx, const char *field, const char *key,
                 const char *value, const kvs__verrs *v)
{
	for (size_t i = 0; i < v->n; i++) {
		kvs__field_err e = { KVS__FERR_INVALID, field, key, value, v->msg[i], 0 };
		fn(ctx, &e);
	}
}

void kvs__validate_name(const char *name, int label, kvs__ferr_fn fn, void *ctx)
{
	kvs__verrs v;

	if (!name || !*name)
		return;
	if (label ? kvs__is_dns1123_label(&v, name) : kvs__is_dns1123_subdomain(&v, name))
		each(fn, ctx, "metadata.name", NULL, name, &v);
}

void kvs__validate_labels(const kvs_kv *kv, size_t n, kvs__ferr_fn fn, void *ctx)
{
	kvs__verrs v;

	for (size_t i = 0; i < n; i++) {
		const char *val = kv[i].value ? kv[i].value : "";
		if (!kv[i].key)
			continue;
		if (kvs__is_qualified_name(&v, kv[i].key))
			each(fn, ctx, "metadata.labels", NULL, kv[i].key, &v);
		if (kvs__is_label_value(&v, val))
			each(fn, ctx, "metadata.labels", NULL, val, &v);
	}
}

void kvs__validate_annotations(const kvs_kv *kv, size_t n, kvs__ferr_fn fn, void *ctx)
{
	kvs__verrs v;
	size_t total = 0;
	int over = 0;

	for (size_t i = 0; i < n; i++) {
		size_t kl, vl;
		if (!kv[i].key)
			continue;
		if (qualified_name(&v, kv[i].key, 1))
			each(fn, ctx, "metadata.annotations", NULL, kv[i].key, &v);
		kl = strlen(kv[i].key);
		vl = kv[i].value ? strlen(kv[i].value) : 0;
		if (kl + vl > KVS__ANNOTATIONS_MAX - total)
			over = 1;
		else
			total += kl + vl;
	}
	if (over) {
		kvs__field_err e = { KVS__FERR_TOO_LONG, "metadata.annotations", NULL, NULL, NULL,
		                     KVS__ANNOTATIONS_MAX };
		fn(ctx, &e);
	}
}

void kvs__validate_config_key(const char *bag, const char *key, kvs__ferr_fn fn, void *ctx)
{
	kvs__verrs v;

	if (kvs__is_config_key(&v, key))
		each(fn, ctx, bag, key, key, &v);
}
