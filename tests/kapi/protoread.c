/*
 * Kubernetes protobuf request bodies: a ConfigMap create or update sent as
 * `application/vnd.kubernetes.protobuf` ("k8s\0" + runtime.Unknown{typeMeta
 * {1 apiVersion, 2 kind}, 2 raw = the ConfigMap message, 3 contentEncoding,
 * 4 contentType}). The message is read into the same cJSON tree the same
 * object has when it comes as JSON (what Go's encoding/json writes of the
 * struct the protobuf decoder fills: empty strings and zero numbers
 * omitted, maps as objects sorted by key, binaryData as standard padded
 * base64), so that every check of the JSON path runs on it unchanged.
 *
 * The reading is that of the generated unmarshalers of k8s.io/api (gogo):
 * fields in any order, the last of a repeated scalar wins, a message field
 * given twice is merged, a map key given twice keeps the last value,
 * unknown fields of wire types 0, 1, 2 and 5 are skipped. Refused, with the
 * words of the real decoder where it has them: truncation ("unexpected
 * EOF"), varints over 10 bytes, lengths past the end, field number 0, wire
 * types 6 and 7, a known field of the wrong wire type. Refused here where
 * the real server takes them: groups (wire types 3 and 4, which gogo skips
 * as unknown fields), strings that are not UTF-8 or hold a NUL (Go strings
 * carry any bytes; this server's C strings and JSON text cannot), and a
 * non-empty contentEncoding (which the real decoder ignores).
 *
 * Memory: every string is copied once (a binaryData value as its base64,
 * 4/3 of its bytes); map entries are gathered as spans of the body, sorted
 * and deduplicated before any node is made, so a body of repeated keys
 * costs the spans, not a tree. All of it is bounded by the body, which the
 * server caps (KAPI_MAX_BODY).
 */
#include "kapi.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

struct fld {
	unsigned num, wt;
	uint64_t v;             /* a varint's value */
	const unsigned char *d; /* a length-delimited field's bytes */
	size_t n;
};

struct rd {
	const unsigned char *p, *end;
	const char *msg; /* the message's name, for errors */
};

struct span {
	const unsigned char *k, *v;
	size_t kn, vn, seq;
};

/* A map's entries over every occurrence of its field (and of the message
 * holding it). */
struct smap {
	struct span *e;
	size_t n, cap;
};

struct dec {
	char err[256];
	struct pb_body *raw; /* binaryData bytes, by the text made of them */
	size_t seq;
	struct smap labels, annotations, data, bin;
};

static bool fail(struct dec *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(struct dec *x, const char *fmt, ...)
{
	if (!x->err[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(x->err, sizeof x->err, fmt, ap);
		va_end(ap);
	}
	return false;
}

static bool varint(struct dec *x, struct rd *r, uint64_t *v)
{
	*v = 0;
	for (unsigned i = 0; i < 10; i++) {
		if (r->p == r->end)
			return fail(x, "unexpected EOF");
		unsigned char b = *r->p++;
		*v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80))
			return true;
	}
	return fail(x, "proto: integer overflow");
}

/* The next field: 1, 0 at the end of the message, -1 on error. */
static int next(struct dec *x, struct rd *r, struct fld *f)
{
	uint64_t tag;
	if (r->p == r->end)
		return 0;
	if (!varint(x, r, &tag))
		return -1;
	f->num = (unsigned)(tag >> 3);
	f->wt = (unsigned)(tag & 7);
	if (tag >> 3 == 0 || tag >> 3 > 0x1fffffff) {
		fail(x, "proto: %s: illegal tag %llu (wire type %u)", r->msg,
		     (unsigned long long)(tag >> 3), f->wt);
		return -1;
	}
	switch (f->wt) {
	case WT_VARINT:
		return varint(x, r, &f->v) ? 1 : -1;
	case WT_I64:
	case WT_I32: {
		size_t w = f->wt == WT_I64 ? 8 : 4;
		if ((size_t)(r->end - r->p) < w) {
			fail(x, "unexpected EOF");
			return -1;
		}
		r->p += w;
		return 1;
	}
	case WT_LEN:
		if (!varint(x, r, &f->v))
			return -1;
		if ((int64_t)f->v < 0) {
			fail(x, "proto: negative length found during unmarshaling");
			return -1;
		}
		if (f->v > (uint64_t)(r->end - r->p)) {
			fail(x, "unexpected EOF");
			return -1;
		}
		f->d = r->p;
		f->n = (size_t)f->v;
		r->p += f->n;
		return 1;
	case WT_SGROUP:
	case WT_EGROUP:
		fail(x, "proto: %s: field %u is a group (wire type %u), which this server does not take",
		     r->msg, f->num, f->wt);
		return -1;
	default:
		fail(x, "proto: illegal wireType %u", f->wt);
		return -1;
	}
}

static bool want(struct dec *x, const struct fld *f, unsigned wt, const char *field)
{
	if (f->wt == wt)
		return true;
	return fail(x, "proto: wrong wireType = %u for field %s", f->wt, field);
}

static struct rd sub(const struct fld *f, const char *msg)
{
	return (struct rd){f->d, f->d + f->n, msg};
}

/* Well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF),
 * without NUL: what this server's strings and JSON text can hold. */
static bool text_ok(struct dec *x, const unsigned char *s, size_t n, const char *field)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		if (c == 0)
			return fail(x, "proto: field %s holds a NUL byte, which this server does not take", field);
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
		uint32_t cp = len == 4 ? c & 0x07u : len == 3 ? c & 0x0fu : c & 0x1fu;
		bool ok = len && c < 0xf5 && i + len <= n;
		for (size_t k = 1; ok && k < len; k++) {
			ok = (s[i + k] & 0xc0) == 0x80;
			cp = cp << 6 | (s[i + k] & 0x3fu);
		}
		ok = ok && !(len == 2 && cp < 0x80) && !(len == 3 && cp < 0x800) &&
		     !(len == 4 && (cp < 0x10000 || cp > 0x10ffff)) && !(cp >= 0xd800 && cp <= 0xdfff);
		if (!ok)
			return fail(x, "proto: field %s is not valid UTF-8 (byte %zu)", field, i);
		i += len;
	}
	return true;
}

static char *dup_text(const unsigned char *s, size_t n)
{
	char *t = xmalloc(n + 1);
	if (n)
		memcpy(t, s, n);
	t[n] = 0;
	return t;
}

/* obj[k] = v, replacing what was there (the last occurrence wins). */
static void jset(cJSON *obj, const char *k, cJSON *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(obj, k);
	cJSON_AddItemToObject(obj, k, v);
}

/* A string field: set when not empty (Go's omitempty), else removed. */
static bool str_field(struct dec *x, cJSON *obj, const struct fld *f, const char *k,
                      const char *field)
{
	if (!want(x, f, WT_LEN, field) || !text_ok(x, f->d, f->n, field))
		return false;
	if (!f->n) {
		cJSON_DeleteItemFromObjectCaseSensitive(obj, k);
		return true;
	}
	char *t = dup_text(f->d, f->n);
	jset(obj, k, cJSON_CreateString(t));
	free(t);
	return true;
}

static cJSON *str_item(struct dec *x, const struct fld *f, const char *field)
{
	if (!want(x, f, WT_LEN, field) || !text_ok(x, f->d, f->n, field))
		return NULL;
	char *t = dup_text(f->d, f->n);
	cJSON *s = cJSON_CreateString(t);
	free(t);
	return s;
}

/* metav1.Time {1 seconds, 2 nanos} as JSON writes it: RFC 3339 in UTC to
 * the second; *out NULL for the zero time. */
static bool read_time(struct dec *x, const struct fld *f, const char *field, cJSON **out)
{
	*out = NULL;
	if (!want(x, f, WT_LEN, field))
		return false;
	struct rd r = sub(f, "Time");
	struct fld g;
	int64_t sec = 0, ns = 0;
	int st;
	while ((st = next(x, &r, &g)) == 1) {
		if (g.num == 1 && want(x, &g, WT_VARINT, field))
			sec = (int64_t)g.v;
		else if (g.num == 2 && want(x, &g, WT_VARINT, field))
			ns = (int32_t)g.v;
		if (x->err[0])
			return false;
	}
	if (st < 0)
		return false;
	if (!sec && !ns)
		return true;
	struct tm tm;
	time_t t = (time_t)sec;
	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
		return fail(x, "proto: field %s: Time.MarshalJSON: year outside of range [0,9999]", field);
	char b[32];
	strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
	*out = cJSON_CreateString(b);
	return true;
}

static void map_add(struct smap *m, const struct span *s)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 16;
		m->e = xrealloc(m->e, m->cap * sizeof *m->e);
	}
	m->e[m->n++] = *s;
}

/* A map entry {1 key string, 2 value}; value_text: a string (checked as
 * text), else bytes. */
static bool read_entry(struct dec *x, const struct fld *f, struct smap *m, bool value_text,
                       const char *field)
{
	if (!want(x, f, WT_LEN, field))
		return false;
	struct rd r = sub(f, "MapEntry");
	struct fld g;
	struct span s = {(const unsigned char *)"", (const unsigned char *)"", 0, 0, x->seq++};
	int st;
	while ((st = next(x, &r, &g)) == 1) {
		if (g.num == 1) {
			if (!want(x, &g, WT_LEN, field) || !text_ok(x, g.d, g.n, field))
				return false;
			s.k = g.d;
			s.kn = g.n;
		} else if (g.num == 2) {
			if (!want(x, &g, WT_LEN, field) || (value_text && !text_ok(x, g.d, g.n, field)))
				return false;
			s.v = g.d;
			s.vn = g.n;
		}
	}
	if (st < 0)
		return false;
	map_add(m, &s);
	return true;
}

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	size_t n = x->kn < y->kn ? x->kn : y->kn;
	int c = n ? memcmp(x->k, y->k, n) : 0;
	if (c)
		return c;
	if (x->kn != y->kn)
		return x->kn < y->kn ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void raw_add(struct pb_body *b, const char *text, const unsigned char *p, size_t n)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 8;
		b->v = xrealloc(b->v, b->cap * sizeof *b->v);
	}
	b->v[b->n++] = (struct pb_raw){text, p, n};
}

/* The map as a JSON object sorted by key, the last value of a key kept;
 * NULL when it has no entry (Go's nil map: omitted). binary: the values as
 * base64, each noted in x->raw with its bytes. */
static cJSON *map_json(struct dec *x, struct smap *m, bool binary)
{
	if (!m->n)
		return NULL;
	qsort(m->e, m->n, sizeof *m->e, cmp_span);
	cJSON *o = cJSON_CreateObject();
	for (size_t i = 0; i < m->n; i++) {
		const struct span *s = &m->e[i];
		if (i + 1 < m->n && s->kn == m->e[i + 1].kn && (!s->kn || memcmp(s->k, m->e[i + 1].k, s->kn) == 0))
			continue; /* a later value of the same key */
		char *k = dup_text(s->k, s->kn);
		cJSON *v;
		if (binary) {
			/* the long-string form of bigjson.c: the text is the
			 * node's own, made once, canonical by construction */
			v = cJSON_CreateString("");
			cJSON_free(v->valuestring);
			v->valuestring = b64_encode(s->v, s->vn);
			raw_add(x->raw, v->valuestring, s->v, s->vn);
		} else {
			char *t = dup_text(s->v, s->vn);
			v = cJSON_CreateString(t);
			free(t);
		}
		cJSON_AddItemToObject(o, k, v);
		free(k);
	}
	return o;
}

static cJSON *read_owner_ref(struct dec *x, const struct fld *f)
{
	static const char F[] = "metadata.ownerReferences";
	if (!want(x, f, WT_LEN, F))
		return NULL;
	struct rd r = sub(f, "OwnerReference");
	struct fld g;
	cJSON *s[4] = {NULL, NULL, NULL, NULL}; /* apiVersion, kind, name, uid */
	cJSON *b[2] = {NULL, NULL};             /* controller, blockOwnerDeletion */
	static const int slot[8] = {-1, 1, -1, 2, 3, 0, -1, -1};
	int st;
	while ((st = next(x, &r, &g)) == 1) {
		if (g.num < 8 && slot[g.num] >= 0) {
			cJSON *v = str_item(x, &g, F);
			if (!v)
				break;
			cJSON_Delete(s[slot[g.num]]);
			s[slot[g.num]] = v;
		} else if (g.num == 6 || g.num == 7) {
			if (!want(x, &g, WT_VARINT, F))
				break;
			cJSON_Delete(b[g.num - 6]);
			b[g.num - 6] = cJSON_CreateBool(g.v != 0);
		}
	}
	static const char *const names[] = {"apiVersion", "kind", "name", "uid",
	                                    "controller", "blockOwnerDeletion"};
	cJSON *o = st == 0 && !x->err[0] ? cJSON_CreateObject() : NULL;
	for (int i = 0; i < 6; i++) {
		cJSON *v = i < 4 ? s[i] : b[i - 4];
		if (!o)
			cJSON_Delete(v);
		else if (v)
			cJSON_AddItemToObject(o, names[i], v);
		else if (i < 4)
			cJSON_AddStringToObject(o, names[i], ""); /* no omitempty */
	}
	return o;
}

static cJSON *read_managed(struct dec *x, const struct fld *f)
{
	static const char F[] = "metadata.managedFields";
	if (!want(x, f, WT_LEN, F))
		return NULL;
	struct rd r = sub(f, "ManagedFieldsEntry");
	struct fld g;
	cJSON *o = cJSON_CreateObject();
	int st;
	static const char *const names[9] = {NULL, "manager", "operation", "apiVersion", NULL,
	                                     NULL, "fieldsType", NULL, "subresource"};
	while ((st = next(x, &r, &g)) == 1) {
		bool ok = true;
		if (g.num < 9 && names[g.num]) {
			ok = str_field(x, o, &g, names[g.num], F);
		} else if (g.num == 4) {
			cJSON *t;
			ok = read_time(x, &g, "metadata.managedFields.time", &t);
			if (ok && t)
				jset(o, "time", t);
		} else if (g.num == 7) {
			/* FieldsV1 {1 Raw}: the field set's JSON text */
			ok = want(x, &g, WT_LEN, "metadata.managedFields.fieldsV1");
			struct rd q = sub(&g, "FieldsV1");
			struct fld h;
			cJSON *fs = NULL;
			int s2;
			while (ok && (s2 = next(x, &q, &h)) == 1)
				if (h.num == 1) {
					ok = want(x, &h, WT_LEN, "metadata.managedFields.fieldsV1.Raw");
					cJSON_Delete(fs);
					fs = ok ? cJSON_ParseWithLength((const char *)h.d, h.n) : NULL;
				}
			ok = ok && !x->err[0];
			if (ok)
				jset(o, "fieldsV1", fs ? fs : cJSON_CreateObject());
			else
				cJSON_Delete(fs);
		}
		if (!ok)
			break;
	}
	if (st != 0 || x->err[0]) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* ObjectMeta into m (an occurrence of the field merges into the last). */
static bool read_meta(struct dec *x, const struct fld *f, cJSON *m)
{
	if (!want(x, f, WT_LEN, "metadata"))
		return false;
	struct rd r = sub(f, "ObjectMeta");
	struct fld g;
	int st;
	static const char *const strs[7] = {NULL, "name", "generateName", "namespace",
	                                    "selfLink", "uid", "resourceVersion"};
	static const char *const fields[7] = {NULL, "metadata.name", "metadata.generateName",
	                                      "metadata.namespace", "metadata.selfLink",
	                                      "metadata.uid", "metadata.resourceVersion"};
	while ((st = next(x, &r, &g)) == 1) {
		bool ok = true;
		cJSON *v;
		switch (g.num) {
		case 1: case 2: case 3: case 4: case 5: case 6:
			ok = str_field(x, m, &g, strs[g.num], fields[g.num]);
			break;
		case 7:
			ok = want(x, &g, WT_VARINT, "metadata.generation");
			if (ok && g.v)
				jset(m, "generation", cJSON_CreateNumber((double)(int64_t)g.v));
			else if (ok)
				cJSON_DeleteItemFromObjectCaseSensitive(m, "generation");
			break;
		case 8:
		case 9:
			ok = read_time(x, &g, g.num == 8 ? "metadata.creationTimestamp"
			                                 : "metadata.deletionTimestamp", &v);
			if (ok && v)
				jset(m, g.num == 8 ? "creationTimestamp" : "deletionTimestamp", v);
			break;
		case 10:
			ok = want(x, &g, WT_VARINT, "metadata.deletionGracePeriodSeconds");
			if (ok)
				jset(m, "deletionGracePeriodSeconds", cJSON_CreateNumber((double)(int64_t)g.v));
			break;
		case 11:
			ok = read_entry(x, &g, &x->labels, true, "metadata.labels");
			break;
		case 12:
			ok = read_entry(x, &g, &x->annotations, true, "metadata.annotations");
			break;
		case 13:
		case 14:
		case 17: {
			const char *k = g.num == 13 ? "ownerReferences" : g.num == 14 ? "finalizers" : "managedFields";
			v = g.num == 13 ? read_owner_ref(x, &g)
			    : g.num == 14 ? str_item(x, &g, "metadata.finalizers")
			                  : read_managed(x, &g);
			ok = v != NULL;
			if (ok) {
				cJSON *a = cJSON_GetObjectItemCaseSensitive(m, k);
				if (!a)
					a = cJSON_AddArrayToObject(m, k);
				cJSON_AddItemToArray(a, v);
			}
			break;
		}
		default:
			break; /* unknown (15 clusterName, gone; 16 initializers, gone) */
		}
		if (!ok)
			return false;
	}
	return st == 0;
}

static cJSON *read_configmap(struct dec *x, const unsigned char *p, size_t n)
{
	struct rd r = {p, p + n, "ConfigMap"};
	struct fld f;
	cJSON *m = cJSON_CreateObject();
	cJSON *imm = NULL;
	int st = 0;
	bool ok = true;
	while (ok && (st = next(x, &r, &f)) == 1) {
		switch (f.num) {
		case 1:
			ok = read_meta(x, &f, m);
			break;
		case 2:
			ok = read_entry(x, &f, &x->data, true, "data");
			break;
		case 3:
			ok = read_entry(x, &f, &x->bin, false, "binaryData");
			break;
		case 4:
			ok = want(x, &f, WT_VARINT, "immutable");
			if (ok) {
				cJSON_Delete(imm);
				imm = cJSON_CreateBool(f.v != 0);
			}
			break;
		default:
			break;
		}
	}
	if (!ok || st < 0 || x->err[0]) {
		cJSON_Delete(m);
		cJSON_Delete(imm);
		return NULL;
	}
	cJSON *obj = cJSON_CreateObject();
	cJSON *l = map_json(x, &x->labels, false), *a = map_json(x, &x->annotations, false);
	if (l)
		jset(m, "labels", l);
	if (a)
		jset(m, "annotations", a);
	cJSON_AddItemToObject(obj, "metadata", m);
	if (imm)
		cJSON_AddItemToObject(obj, "immutable", imm);
	cJSON *d = map_json(x, &x->data, false), *b = map_json(x, &x->bin, true);
	if (d)
		cJSON_AddItemToObject(obj, "data", d);
	if (b)
		cJSON_AddItemToObject(obj, "binaryData", b);
	return obj;
}

static int cmp_raw(const void *a, const void *b)
{
	const struct pb_raw *x = a, *y = b;
	return x->text < y->text ? -1 : x->text > y->text;
}

void pb_body_free(struct pb_body *b)
{
	free(b->v);
	memset(b, 0, sizeof *b);
}

const struct pb_raw *pb_body_find(const struct pb_body *b, const char *text)
{
	if (!b || !b->n)
		return NULL;
	struct pb_raw key = {text, NULL, 0};
	return bsearch(&key, b->v, b->n, sizeof *b->v, cmp_raw);
}

/* The error of a body that is not a runtime.Unknown (transformDecodeError
 * without a kind): the first 30 bytes in hex, as summarizeData gives them. */
static struct status *unrecognized(const char *why, const unsigned char *body, size_t len)
{
	char hex[64 + 8];
	size_t n = len > 30 ? 30 : len;
	for (size_t i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", body[i]);
	hex[2 * n] = 0;
	char *m = xasprintf("the object provided is unrecognized (must be of type ConfigMap): %s (%s%s)",
	                    why, len ? hex : "<empty>", len > 30 ? " ..." : "");
	struct status *s = st_bad_request(m);
	free(m);
	return s;
}

struct status *proto_read_configmap(const unsigned char *body, size_t len, cJSON **out,
                                    struct pb_body *raw)
{
	static const unsigned char magic[4] = {'k', '8', 's', 0};
	struct dec x;
	memset(&x, 0, sizeof x);
	x.raw = raw;
	*out = NULL;
	if (!len)
		return unrecognized("empty data", body, len);
	if (len < 4 || memcmp(body, magic, 4) != 0)
		return unrecognized("provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]",
		                    body, len);
	if (len == 4)
		return unrecognized("empty body", body, len);
	/* runtime.Unknown */
	struct rd r = {body + 4, body + len, "Unknown"};
	struct fld f;
	const unsigned char *obj = NULL, *av = NULL, *kind = NULL;
	size_t on = 0, avn = 0, kn = 0, cen = 0;
	int st;
	while ((st = next(&x, &r, &f)) == 1) {
		if (f.num == 1) {
			if (!want(&x, &f, WT_LEN, "typeMeta"))
				break;
			struct rd t = sub(&f, "TypeMeta");
			struct fld g;
			int s2;
			while ((s2 = next(&x, &t, &g)) == 1) {
				if ((g.num == 1 || g.num == 2) &&
				    (!want(&x, &g, WT_LEN, g.num == 1 ? "typeMeta.apiVersion" : "typeMeta.kind") ||
				     !text_ok(&x, g.d, g.n, g.num == 1 ? "typeMeta.apiVersion" : "typeMeta.kind")))
					break;
				if (g.num == 1) {
					av = g.d;
					avn = g.n;
				} else if (g.num == 2) {
					kind = g.d;
					kn = g.n;
				}
			}
			if (x.err[0])
				break;
		} else if (f.num == 2) {
			if (!want(&x, &f, WT_LEN, "raw"))
				break;
			obj = f.d;
			on = f.n;
		} else if ((f.num == 3 || f.num == 4) &&
		           !want(&x, &f, WT_LEN, f.num == 3 ? "contentEncoding" : "contentType")) {
			break;
		} else if (f.num == 3) {
			cen = f.n;
		}
	}
	if (x.err[0] || st < 0)
		return unrecognized(x.err, body, len);
	if (cen)
		return unrecognized("a contentEncoding is set, which this server does not take", body, len);
	cJSON *o = read_configmap(&x, obj ? obj : (const unsigned char *)"", on);
	free(x.labels.e);
	free(x.annotations.e);
	free(x.data.e);
	free(x.bin.e);
	if (!o) {
		pb_body_free(raw);
		char *m = xasprintf("ConfigMap in version \"v1\" cannot be handled as a ConfigMap: %s", x.err);
		struct status *s = st_bad_request(m);
		free(m);
		return s;
	}
	/* the typeMeta as the JSON body's kind and apiVersion: the same
	 * checks (check_kind) refuse another kind or version; empty ones
	 * default to the URL's, as copyKindDefaults does */
	if (kn) {
		char *t = dup_text(kind, kn);
		cJSON_AddStringToObject(o, "kind", t);
		free(t);
	}
	if (avn) {
		char *t = dup_text(av, avn);
		cJSON_AddStringToObject(o, "apiVersion", t);
		free(t);
	}
	if (raw->n)
		qsort(raw->v, raw->n, sizeof *raw->v, cmp_raw);
	*out = o;
	return NULL;
}
