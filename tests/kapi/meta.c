/* ObjectMeta validation shared by every kind (apimachinery's
 * ValidateObjectMeta and core's finalizer rule) and the Lease's MicroTime
 * fields, with the real server's messages. */
#include "kapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>






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

/* validation.IsQualifiedName (kube/validate.c): each message it gives,
 * reported on field. */
static void qualified_name(const char *field, const char *shown, const char *k, struct ferrs *fe)
{
	kvs__verrs e;
	size_t n = kvs__is_qualified_name(&e, k);
	for (size_t i = 0; i < n; i++)
		invalid(fe, field, shown, e.msg[i]);
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

/* The rest of ObjectMeta: labels and annotations are validate.c's (the
 * library's kube/validate.c, shared with the in-memory backend); here the
 * ownerReferences and finalizers rules. */
void validate_meta(const cJSON *obj, bool core, struct ferrs *fe)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *x;
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
