/* ObjectMeta validation shared by every kind (apimachinery's
 * ValidateObjectMeta and core's finalizer rule) and the Lease's MicroTime
 * fields, with the real server's messages. */
#include "kapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char QN_NAME_MSG[] =
	"name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
	"with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
	"validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
static const char QN_MSG[] =
	"a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start "
	"and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
	"used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
	"subdomain prefix and '/' (e.g. 'example.com/MyName')";
static const char DNS1123_MSG[] =
	"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
	"'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
	"for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
static const char LABEL_VALUE_MSG[] =
	"a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
	"'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  "
	"or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] over [s, s+n) */
static bool qname_part(const char *s, size_t n)
{
	if (n == 0 || !alnum(s[0]) || !alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool dns1123_subdomain(const char *s, size_t n)
{
	if (n == 0 || n > 253)
		return false;
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && s[j] != '.')
			j++;
		if (j == i || !lower_alnum(s[i]) || !lower_alnum(s[j - 1]))
			return false;
		for (size_t k = i; k < j; k++)
			if (!lower_alnum(s[k]) && s[k] != '-')
				return false;
		if (j == n)
			return true;
		i = j + 1;
		if (i == n)
			return false;
	}
	return true;
}

static void invalid(struct ferrs *fe, const char *field, const char *value, const char *msg)
{
	cJSON *v = cJSON_CreateString(value);
	char *q = cJSON_PrintUnformatted(v);
	cJSON_Delete(v);
	char *b = xasprintf("Invalid value: %s: %s", q, msg);
	ferr_add(fe, "FieldValueInvalid", field, b);
	free(b);
	free(q);
}

/* validation.IsQualifiedName: each message it would give, reported on field. */
static void qualified_name(const char *field, const char *shown, const char *k, struct ferrs *fe)
{
	const char *slash = strchr(k, '/');
	const char *name = k;
	if (slash && strchr(slash + 1, '/')) {
		invalid(fe, field, shown, QN_MSG);
		return;
	}
	if (slash) {
		size_t pl = (size_t)(slash - k);
		if (pl == 0) {
			invalid(fe, field, shown, "prefix part must be non-empty");
		} else if (!dns1123_subdomain(k, pl)) {
			char *m = xasprintf("prefix part %s", DNS1123_MSG);
			invalid(fe, field, shown, m);
			free(m);
		}
		name = slash + 1;
	}
	size_t nl = strlen(name);
	if (nl == 0)
		invalid(fe, field, shown, "name part must be non-empty");
	else if (nl > 63)
		invalid(fe, field, shown, "name part must be no more than 63 characters");
	if (nl && !qname_part(name, nl))
		invalid(fe, field, shown, QN_NAME_MSG);
}

static bool standard_finalizer(const char *f)
{
	return !strcmp(f, "kubernetes") || !strcmp(f, "orphan") || !strcmp(f, "foregroundDeletion");
}

static void owner_refs(const cJSON *refs, struct ferrs *fe)
{
	const cJSON *ref;
	char *first = NULL;
	cJSON_ArrayForEach(ref, refs) {
		static const struct {
			const char *key, *field, *msg;
		} req[] = {
			{"apiVersion", "metadata.ownerReferences.apiVersion", "version must not be empty"},
			{"kind", "metadata.ownerReferences.kind", "kind must not be empty"},
			{"name", "metadata.ownerReferences.name", "name must not be empty"},
			{"uid", "metadata.ownerReferences.uid", "uid must not be empty"},
		};
		for (size_t i = 0; i < sizeof req / sizeof *req; i++) {
			const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, req[i].key));
			if (!v || !*v)
				invalid(fe, req[i].field, "", req[i].msg);
		}
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ref, "controller")))
			continue;
		const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "kind"));
		const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "name"));
		char *cur = xasprintf("%s/%s", k ? k : "", n ? n : "");
		if (!first) {
			first = cur;
			continue;
		}
		/* the value is Go's %#v of the list; clients key on the detail */
		char *b = xasprintf("Invalid value: []v1.OwnerReference{...}: Only one reference can have "
		                    "Controller set to true. Found \"true\" in references for %s and %s",
		                    first, cur);
		ferr_add(fe, "FieldValueInvalid", "metadata.ownerReferences", b);
		free(b);
		free(cur);
	}
	free(first);
}

void validate_meta(const cJSON *obj, bool core, struct ferrs *fe)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *x;
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(m, "labels")) {
		qualified_name("metadata.labels", x->string, x->string, fe);
		const char *v = cJSON_GetStringValue(x);
		if (!v)
			continue;
		size_t n = strlen(v);
		if (n > 63)
			invalid(fe, "metadata.labels", v, "must be no more than 63 characters");
		if (n && !qname_part(v, n))
			invalid(fe, "metadata.labels", v, LABEL_VALUE_MSG);
	}
	size_t total = 0;
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(m, "annotations")) {
		char *low = xstrdup(x->string);
		for (char *p = low; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		qualified_name("metadata.annotations", x->string, low, fe);
		free(low);
		total += strlen(x->string) + (cJSON_IsString(x) ? strlen(x->valuestring) : 0);
	}
	if (total > 256u * 1024u)
		ferr_add(fe, "FieldValueTooLong", "metadata.annotations", "Too long: must have at most 262144 bytes");
	owner_refs(cJSON_GetObjectItemCaseSensitive(m, "ownerReferences"), fe);
	int i = 0;
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(m, "finalizers")) {
		char field[48];
		snprintf(field, sizeof field, "metadata.finalizers[%d]", i++);
		const char *f = cJSON_GetStringValue(x);
		if (!f)
			continue;
		qualified_name(field, f, f, fe);
		if (core && !strchr(f, '/') && !standard_finalizer(f))
			invalid(fe, field, f, "name is neither a standard finalizer name nor is it fully qualified");
	}
}

static const char MICRO_LAYOUT[] = "2006-01-02T15:04:05.000000Z07:00";

static bool digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* time.Parse(RFC3339Micro, s): 0 and the UTC form in out, or -1 with the
 * unparsed rest and the layout element it failed on. */
static int parse_micro(const char *s, char out[64], const char **rest, const char **elem)
{
	static const struct {
		const char *elem;
		int ndig; /* 0: the literal elem */
	} parts[] = {{"2006", 4}, {"-", 0}, {"01", 2}, {"-", 0}, {"02", 2}, {"T", 0}, {"15", 2},
	             {":", 0}, {"04", 2}, {":", 0}, {"05", 2}};
	int v[6] = {0}, nv = 0;
	const char *p = s;
	for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
		int n = parts[i].ndig, x;
		*rest = p;
		*elem = parts[i].elem;
		if (n == 0) {
			if (*p != parts[i].elem[0])
				return -1;
			p++;
			continue;
		}
		if ((int)strlen(p) < n || !digits(p, n, &x))
			return -1;
		v[nv++] = x;
		p += n;
	}
	*rest = p;
	*elem = ".000000";
	int frac;
	if (strlen(p) < 7 || p[0] != '.' || !digits(p + 1, 6, &frac))
		return -1;
	p += 7;
	*rest = p;
	*elem = "Z07:00";
	int off = 0;
	if (*p == 'Z' && !p[1]) {
		off = 0;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		int hh, mm;
		if (!digits(p + 1, 2, &hh) || !digits(p + 4, 2, &mm))
			return -1;
		off = (hh * 60 + mm) * 60 * (*p == '-' ? -1 : 1);
	} else {
		return -1;
	}
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 59) {
		*rest = s;
		*elem = "";
		return -1;
	}
	struct tm tm = {.tm_year = v[0] - 1900, .tm_mon = v[1] - 1, .tm_mday = v[2], .tm_hour = v[3],
	                .tm_min = v[4], .tm_sec = v[5]};
	time_t t = timegm(&tm) - off;
	gmtime_r(&t, &tm);
	char b[32];
	strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 64, "%s.%06dZ", b, frac);
	return 0;
}

struct status *lease_times(const struct resource *r, cJSON *obj, struct ferrs *fe)
{
	cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
	static const char *const fields[] = {"acquireTime", "renewTime"};
	for (size_t i = 0; i < 2; i++) {
		cJSON *t = cJSON_GetObjectItemCaseSensitive(spec, fields[i]);
		if (!t || cJSON_IsNull(t))
			continue;
		char utc[64];
		const char *rest = "", *elem = "";
		if (!cJSON_IsString(t) || parse_micro(t->valuestring, utc, &rest, &elem) < 0) {
			char *m = cJSON_IsString(t)
			                  ? xasprintf("%s in version \"%s\" cannot be handled as a %s: parsing time \"%s\" as \"%s\": cannot parse \"%s\" as \"%s\"",
			                              r->kind, r->version, r->kind, t->valuestring, MICRO_LAYOUT, rest, elem)
			                  : xasprintf("%s in version \"%s\" cannot be handled as a %s: json: cannot unmarshal into Go struct field LeaseSpec.spec.%s of type string",
			                              r->kind, r->version, r->kind, fields[i]);
			struct status *s = st_bad_request(m);
			free(m);
			return s;
		}
		cJSON_SetValuestring(t, utc);
	}
	cJSON *lt = cJSON_GetObjectItemCaseSensitive(spec, "leaseTransitions");
	if (cJSON_IsNumber(lt) && lt->valuedouble < 0) {
		char *b = xasprintf("Invalid value: %.0f: must be greater than or equal to 0", lt->valuedouble);
		ferr_add(fe, "FieldValueInvalid", "spec.leaseTransitions", b);
		free(b);
	}
	return NULL;
}
