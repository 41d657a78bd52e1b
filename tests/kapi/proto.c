/*
 * Kubernetes protobuf, as kube-apiserver writes it for a client that prefers
 * `application/vnd.kubernetes.protobuf`: the magic "k8s\0", then a
 * runtime.Unknown{typeMeta{apiVersion, kind}, raw = the object's message,
 * contentEncoding "", contentType ""}. Only what this server serves that way
 * is here: ConfigMap (with its ObjectMeta), ConfigMapList and Status.
 *
 * Field numbers are those of the generated.proto files of kubernetes/api
 * (core/v1) and kubernetes/apimachinery (pkg/apis/meta/v1, pkg/runtime).
 * The writing follows Go's generated marshalers: fields in ascending field
 * number, every string and integer of a non-pointer Go field written even
 * when empty or zero, pointer fields (deletionTimestamp, immutable, an owner
 * reference's controller, ...) only when set, map entries in the stored
 * (sorted) key order.
 *
 * Every message is written twice over the same functions: once counting
 * (w->p NULL) to learn its length, once writing into a buffer of exactly the
 * total size. A nested message is counted again by its parent's write; the
 * nesting is shallow and counting never touches a value's bytes, so the one
 * pass that matters is the write of the binaryData values, which decodes
 * their base64 straight into place.
 */
#include "kapi.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char MAGIC[4] = {'k', '8', 's', 0};

enum { WT_VARINT = 0, WT_LEN = 2 };

struct pw {
	unsigned char *p; /* NULL: count only */
	size_t n;         /* bytes written (or counted) */
	bool bad;         /* something could not be encoded */
	const struct pb_body *src; /* binaryData bytes at hand (may be NULL) */
};

static void put_raw(struct pw *w, const void *d, size_t n)
{
	if (w->p && n)
		memcpy(w->p + w->n, d, n);
	w->n += n;
}

static void put_varint(struct pw *w, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;
	do {
		b[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	put_raw(w, b, n);
}

static void put_tag(struct pw *w, unsigned field, unsigned wt)
{
	put_varint(w, (uint64_t)field << 3 | wt);
}

static void put_bytes(struct pw *w, unsigned field, const void *d, size_t n)
{
	put_tag(w, field, WT_LEN);
	put_varint(w, n);
	put_raw(w, d, n);
}

/* A string field; absent or not a string is "" (Go's zero value). */
static void put_str(struct pw *w, unsigned field, const cJSON *s)
{
	const char *v = cJSON_IsString(s) ? s->valuestring : "";
	put_bytes(w, field, v, strlen(v));
}

static void put_lit(struct pw *w, unsigned field, const char *s)
{
	put_bytes(w, field, s, strlen(s));
}

/* int32 and int64 alike: negative values as their 64-bit two's complement. */
static void put_int(struct pw *w, unsigned field, int64_t v)
{
	put_tag(w, field, WT_VARINT);
	put_varint(w, (uint64_t)v);
}

static void put_bool(struct pw *w, unsigned field, bool v)
{
	put_tag(w, field, WT_VARINT);
	put_varint(w, v ? 1 : 0);
}

static int64_t num(const cJSON *n)
{
	return cJSON_IsNumber(n) ? (int64_t)n->valuedouble : 0;
}

typedef void (*msg_fn)(struct pw *w, const cJSON *x);

/* A nested message: its length (a counting pass), then its fields. */
static void put_msg(struct pw *w, unsigned field, msg_fn fn, const cJSON *x)
{
	struct pw c = {NULL, 0, false, NULL};
	fn(&c, x);
	put_tag(w, field, WT_LEN);
	put_varint(w, c.n);
	if (w->p)
		fn(w, x);
	else
		w->n += c.n;
	w->bad |= c.bad;
}

static const cJSON *get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* ---- meta.k8s.io/v1 ------------------------------------------------------ */

/* RFC 3339 ("2006-01-02T15:04:05Z", a fraction and an offset allowed) to
 * seconds and nanoseconds since the epoch; false if it is not one. */
static bool parse_time(const char *s, int64_t *sec, int32_t *nsec)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return false;
	int64_t ns = 0;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 9)
				ns = ns * 10 + (*p - '0');
		if (!digits)
			return false;
		for (; digits < 9; digits++)
			ns *= 10;
	}
	int64_t off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' &&
	           p[2] <= '9' && p[3] == ':' && p[4] >= '0' && p[4] <= '9' && p[5] >= '0' &&
	           p[5] <= '9') {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		if (*p == '+')
			off = -off;
		p += 6;
	} else {
		return false;
	}
	if (*p)
		return false;
	*sec = (int64_t)timegm(&tm) + off;
	*nsec = (int32_t)ns;
	return true;
}

/* metav1.Time as its Timestamp{1 seconds, 2 nanos}; the zero time (absent,
 * null, "") is an empty message, as Time.MarshalToSizedBuffer writes it. */
static void m_time(struct pw *w, const cJSON *t)
{
	if (!cJSON_IsString(t) || !*t->valuestring)
		return;
	int64_t sec;
	int32_t nsec;
	if (!parse_time(t->valuestring, &sec, &nsec)) {
		w->bad = true;
		return;
	}
	put_int(w, 1, sec);
	put_int(w, 2, nsec);
}

/* map<string,string> entries {1 key, 2 value}, one field each. */
static void m_str_entry(struct pw *w, const cJSON *e)
{
	put_lit(w, 1, e->string);
	put_str(w, 2, e);
}

static void put_str_map(struct pw *w, unsigned field, const cJSON *m)
{
	for (const cJSON *e = cJSON_IsObject(m) ? m->child : NULL; e; e = e->next)
		put_msg(w, field, m_str_entry, e);
}

static void put_str_list(struct pw *w, unsigned field, const cJSON *a)
{
	for (const cJSON *e = cJSON_IsArray(a) ? a->child : NULL; e; e = e->next)
		put_str(w, field, e);
}

static void m_owner_ref(struct pw *w, const cJSON *r)
{
	put_str(w, 1, get(r, "kind"));
	put_str(w, 3, get(r, "name"));
	put_str(w, 4, get(r, "uid"));
	put_str(w, 5, get(r, "apiVersion"));
	const cJSON *c = get(r, "controller"), *b = get(r, "blockOwnerDeletion");
	if (cJSON_IsBool(c))
		put_bool(w, 6, cJSON_IsTrue(c));
	if (cJSON_IsBool(b))
		put_bool(w, 7, cJSON_IsTrue(b));
}

/* FieldsV1{1 Raw}: the JSON text of the field set, compact. */
static void m_fields_v1(struct pw *w, const cJSON *f)
{
	char *s = cJSON_PrintUnformatted(f);
	if (!s) {
		w->bad = true;
		return;
	}
	put_bytes(w, 1, s, strlen(s));
	free(s);
}

static void m_managed(struct pw *w, const cJSON *m)
{
	put_str(w, 1, get(m, "manager"));
	put_str(w, 2, get(m, "operation"));
	put_str(w, 3, get(m, "apiVersion"));
	const cJSON *t = get(m, "time"), *f = get(m, "fieldsV1");
	if (cJSON_IsString(t))
		put_msg(w, 4, m_time, t);
	put_str(w, 6, get(m, "fieldsType"));
	if (f && !cJSON_IsNull(f))
		put_msg(w, 7, m_fields_v1, f);
	put_str(w, 8, get(m, "subresource"));
}

static void m_object_meta(struct pw *w, const cJSON *m)
{
	put_str(w, 1, get(m, "name"));
	put_str(w, 2, get(m, "generateName"));
	put_str(w, 3, get(m, "namespace"));
	put_str(w, 4, get(m, "selfLink"));
	put_str(w, 5, get(m, "uid"));
	put_str(w, 6, get(m, "resourceVersion"));
	put_int(w, 7, num(get(m, "generation")));
	put_msg(w, 8, m_time, get(m, "creationTimestamp"));
	const cJSON *dt = get(m, "deletionTimestamp"), *dg = get(m, "deletionGracePeriodSeconds");
	if (cJSON_IsString(dt))
		put_msg(w, 9, m_time, dt);
	if (cJSON_IsNumber(dg))
		put_int(w, 10, num(dg));
	put_str_map(w, 11, get(m, "labels"));
	put_str_map(w, 12, get(m, "annotations"));
	const cJSON *a = get(m, "ownerReferences");
	for (const cJSON *e = cJSON_IsArray(a) ? a->child : NULL; e; e = e->next)
		put_msg(w, 13, m_owner_ref, e);
	put_str_list(w, 14, get(m, "finalizers"));
	a = get(m, "managedFields");
	for (const cJSON *e = cJSON_IsArray(a) ? a->child : NULL; e; e = e->next)
		put_msg(w, 17, m_managed, e);
}

/* ---- core/v1 ConfigMap --------------------------------------------------- */

/* The decoded length of a binaryData value, which the write validation left
 * canonical padded base64 (validate.c); false if it is not that shape. */
static bool b64_len(const char *s, size_t n, size_t *out)
{
	if (n % 4)
		return false;
	size_t pad = (n >= 1 && s[n - 1] == '=') + (n >= 2 && s[n - 2] == '=');
	*out = n / 4 * 3 - pad;
	return true;
}

/* A map<string,bytes> entry {1 key, 2 value}: the value's base64 decoded
 * into the output where it belongs, in one pass of libcrypto's decoder.
 * EVP_DecodeBlock writes the padding's zero bytes too (up to 2 past the
 * value): the next field overwrites them, and the buffer has that slack at
 * its end (proto_configmap). */
static void m_bin_entry(struct pw *w, const cJSON *e)
{
	const char *s = cJSON_IsString(e) ? e->valuestring : "";
	size_t n = strlen(s), d;
	put_lit(w, 1, e->string);
	if (!b64_len(s, n, &d) || n > (size_t)INT32_MAX) {
		w->bad = true;
		return;
	}
	put_tag(w, 2, WT_LEN);
	put_varint(w, d);
	const struct pb_raw *b = w->p && n ? pb_body_find(w->src, s) : NULL;
	if (b && b->n == d) {
		memcpy(w->p + w->n, b->p, d); /* the body's bytes: nothing to decode */
	} else if (w->p && n) {
		int got = EVP_DecodeBlock(w->p + w->n, (const unsigned char *)s, (int)n);
		if (got < 0 || (size_t)got != n / 4 * 3)
			w->bad = true;
	}
	w->n += d;
}

static void m_configmap(struct pw *w, const cJSON *cm)
{
	put_msg(w, 1, m_object_meta, get(cm, "metadata"));
	put_str_map(w, 2, get(cm, "data"));
	const cJSON *b = get(cm, "binaryData");
	for (const cJSON *e = cJSON_IsObject(b) ? b->child : NULL; e; e = e->next)
		put_msg(w, 3, m_bin_entry, e);
	const cJSON *imm = get(cm, "immutable");
	if (cJSON_IsBool(imm))
		put_bool(w, 4, cJSON_IsTrue(imm));
}

/* ---- meta.k8s.io/v1 Status ----------------------------------------------- */

static void m_list_meta(struct pw *w, const cJSON *m)
{
	put_str(w, 1, get(m, "selfLink"));
	put_str(w, 2, get(m, "resourceVersion"));
	put_str(w, 3, get(m, "continue"));
	const cJSON *r = get(m, "remainingItemCount");
	if (cJSON_IsNumber(r))
		put_int(w, 4, num(r));
}

static void m_cause(struct pw *w, const cJSON *c)
{
	put_str(w, 1, get(c, "reason"));
	put_str(w, 2, get(c, "message"));
	put_str(w, 3, get(c, "field"));
}

static void m_details(struct pw *w, const cJSON *d)
{
	put_str(w, 1, get(d, "name"));
	put_str(w, 2, get(d, "group"));
	put_str(w, 3, get(d, "kind"));
	const cJSON *a = get(d, "causes");
	for (const cJSON *e = cJSON_IsArray(a) ? a->child : NULL; e; e = e->next)
		put_msg(w, 4, m_cause, e);
	put_int(w, 5, num(get(d, "retryAfterSeconds")));
	put_str(w, 6, get(d, "uid"));
}

static void m_status(struct pw *w, const cJSON *s)
{
	put_msg(w, 1, m_list_meta, get(s, "metadata"));
	put_str(w, 2, get(s, "status"));
	put_str(w, 3, get(s, "message"));
	put_str(w, 4, get(s, "reason"));
	const cJSON *d = get(s, "details");
	if (cJSON_IsObject(d))
		put_msg(w, 5, m_details, d);
	put_int(w, 6, num(get(s, "code")));
}

/* ---- core/v1 ConfigMapList ----------------------------------------------- */

/* ConfigMapList{1 metadata ListMeta, 2 items}: the items are the ConfigMap
 * messages of their versions' protobuf forms, copied as they are. */
static void put_cm_list(struct pw *w, const cJSON *meta, const struct proto_item *items, size_t n)
{
	put_msg(w, 1, m_list_meta, meta);
	for (size_t i = 0; i < n; i++)
		put_bytes(w, 2, items[i].p, items[i].n);
}

/* ---- runtime.Unknown ----------------------------------------------------- */

struct unknown {
	const char *kind;
	msg_fn fn;        /* the object's message from obj, or */
	const cJSON *obj;
	const struct proto_item *items; /* (fn NULL) a ConfigMapList of these */
	size_t nitems;
};

static void put_object(struct pw *w, const struct unknown *u)
{
	if (u->fn)
		u->fn(w, u->obj);
	else
		put_cm_list(w, u->obj, u->items, u->nitems);
}

static void m_type_meta(struct pw *w, const cJSON *kind)
{
	put_lit(w, 1, "v1");
	put_lit(w, 2, kind->valuestring);
}

static void put_unknown(struct pw *w, const struct unknown *u, size_t raw_len, size_t *raw_at)
{
	cJSON kind;
	memset(&kind, 0, sizeof kind);
	kind.type = cJSON_String;
	kind.valuestring = (char *)u->kind;
	put_raw(w, MAGIC, sizeof MAGIC);
	put_msg(w, 1, m_type_meta, &kind);
	put_tag(w, 2, WT_LEN);
	put_varint(w, raw_len);
	*raw_at = w->n;
	if (w->p)
		put_object(w, u);
	else
		w->n += raw_len;
	put_lit(w, 3, "");
	put_lit(w, 4, "");
}

/* Count, allocate exactly (with the decoder's slack), write. *raw is where
 * the object's message is in the body, and its length. */
static unsigned char *encode(const struct unknown *u, size_t *len, struct proto_item *raw,
                             const struct pb_body *src)
{
	struct pw c = {NULL, 0, false, NULL};
	put_object(&c, u);
	if (c.bad)
		return NULL;
	size_t raw_len = c.n, raw_at;
	struct pw total = {NULL, 0, false, NULL};
	put_unknown(&total, u, raw_len, &raw_at);
	struct pw w = {xmalloc(total.n + 3), 0, false, src};
	put_unknown(&w, u, raw_len, &raw_at);
	if (w.bad || w.n != total.n) {
		free(w.p);
		return NULL;
	}
	*len = w.n;
	if (raw) {
		raw->p = w.p + raw_at;
		raw->n = raw_len;
	}
	return w.p;
}

unsigned char *proto_configmap(const cJSON *obj, size_t *len, struct proto_item *raw,
                               const struct pb_body *src)
{
	struct unknown u = {"ConfigMap", m_configmap, obj, NULL, 0};
	return encode(&u, len, raw, src);
}

unsigned char *proto_configmap_list(const cJSON *list_meta, const struct proto_item *items,
                                    size_t n, size_t *len)
{
	struct unknown u = {"ConfigMapList", NULL, list_meta, items, n};
	return encode(&u, len, NULL, NULL);
}

unsigned char *proto_status(const char *json, size_t *len)
{
	cJSON *s = cJSON_Parse(json);
	if (!s)
		return NULL;
	struct unknown u = {"Status", m_status, s, NULL, 0};
	unsigned char *p = encode(&u, len, NULL, NULL);
	cJSON_Delete(s);
	return p;
}
