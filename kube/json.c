/*
 * kube/json.c — ConfigMap JSON ⇄ kvs_object, Status objects, base64.
 *
 * JSON is parsed with cJSON and base64 is done by libcrypto's
 * EVP_EncodeBlock/EVP_DecodeBlock. Request bodies are assembled directly:
 * the small metadata part is printed by cJSON, while the large base64 data
 * strings (about 1.4 MB per segment) are encoded straight into the output
 * buffer, so building a body is one pass over the data.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "kube/json.h"

/* ------------------------------------------------------------------------ */
/* base64                                                                   */

size_t kvs__b64_len(size_t n)
{
	size_t groups = n / 3 + (n % 3 != 0);

	if (groups > SIZE_MAX / 4 - 1)
		return 0;
	return groups * 4;
}

size_t kvs__b64_encode(char *dst, const uint8_t *src, size_t n)
{
	size_t out = 0;

	/* EVP_EncodeBlock takes an int length: feed it in large slices that are
	 * multiples of 3 so the output concatenates without inner padding. */
	while (n > 0) {
		size_t take = n > (size_t)3 * 1024 * 1024 ? (size_t)3 * 1024 * 1024 : n;
		int w = EVP_EncodeBlock((unsigned char *)dst + out, src, (int)take);

		out += (size_t)w;
		src += take;
		n -= take;
	}
	dst[out] = '\0';
	return out;
}

static int b64_valid_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/*
 * Strict decoding with libcrypto doing the only pass over the text.
 * EVP_DecodeBlock refuses every byte outside the alphabet and '=' inside a
 * slice, but it is lenient in two ways that a strict decoder is not: it
 * trims blanks and line ends at both ends of what it is given, and it takes
 * '=' anywhere as a zero digit. Both are closed here without a pass of our
 * own: every slice must begin and end with an alphabet character (or the
 * final padding), so nothing is trimmed, and memchr (vectorised) finds a
 * '=' before the padding. The slice's output length is then checked too.
 */
#define B64_SLICE ((size_t)4 * 1024 * 1024)   /* input per EVP call: a multiple of 4 */

int kvs__b64_decode_into(uint8_t *dst, size_t *out_len, const char *src, size_t n)
{
	size_t pad = 0, done = 0, olen = 0;

	*out_len = 0;
	if (n % 4 != 0)
		return -1;
	if (n > 0 && src[n - 1] == '=')
		pad++;
	if (n > 1 && src[n - 2] == '=')
		pad++;
	if (n - pad > 0 && memchr(src, '=', n - pad))
		return -1;
	while (done < n) {
		size_t take = n - done > B64_SLICE ? B64_SLICE : n - done;
		unsigned char first = (unsigned char)src[done], last = (unsigned char)src[done + take - 1];
		int w;

		if (!b64_valid_char(first) && first != '=')
			return -1;
		if (!b64_valid_char(last) && last != '=')
			return -1;
		w = EVP_DecodeBlock(dst + olen, (const unsigned char *)src + done, (int)take);
		if (w < 0 || (size_t)w != take / 4 * 3)
			return -1;
		olen += (size_t)w;
		done += take;
	}
	*out_len = olen - pad;
	return 0;
}

int kvs__b64_decode(uint8_t **out, size_t *out_len, const char *src, size_t n)
{
	uint8_t *buf;

	*out = NULL;
	*out_len = 0;
	if (n % 4 != 0)
		return -1;
	if (!(buf = malloc(n / 4 * 3 + 1)))
		return -2;
	if (kvs__b64_decode_into(buf, out_len, src, n) < 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* time                                                                     */

int64_t kvs__rfc3339_ms(const char *s)
{
	int y, mo, d, h, mi, sec, n = 0;
	int64_t ms = 0;
	struct tm tm;
	const char *p;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 19)
		return -1;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	p = s + n;
	if (*p == '.') {
		int digits = 0;

		p++;
		while (*p >= '0' && *p <= '9') {
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
			digits++;
			p++;
		}
		if (digits == 0)
			return -1;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	int64_t t = (int64_t)timegm(&tm);
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om, k = 0;

		if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5 || oh > 23 || om > 59)
			return -1;
		int64_t off = (int64_t)oh * 3600 + om * 60;
		t += *p == '+' ? -off : off;
		p += 6;
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	return t * 1000 + ms;
}

/* ------------------------------------------------------------------------ */
/* request bodies                                                           */

static int valid_data_key(const char *k)
{
	if (!k || !*k || strlen(k) > 253)
		return 0;
	for (const char *p = k; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_'))
			return 0;
	}
	return 1;
}

static cJSON *kv_object(const kvs_kv *kv, size_t n)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!cJSON_AddStringToObject(o, kv[i].key, kv[i].value)) {
			cJSON_Delete(o);
			return NULL;
		}
	}
	return o;
}

int kvs__kube_check_data_keys(const kvs_object *obj)
{
	for (size_t i = 0; i < obj->ndata; i++)
		if (!valid_data_key(obj->data[i].key))
			return kvs_error_set(KVS_EINVAL,
			                     "object %s: data key \"%.64s\" is not [-._a-zA-Z0-9]+",
			                     obj->name, obj->data[i].key ? obj->data[i].key : "");
	return 0;
}

int kvs__kube_body_object(char **out, size_t *out_len, const kvs_object *obj, const char *ns,
                          int with_rv)
{
	cJSON *meta = NULL, *x;
	char *metajs = NULL, *buf = NULL;
	size_t total, mlen, off = 0;

	*out = NULL;
	*out_len = 0;
	if (kvs__kube_check_data_keys(obj) < 0)
		return KVS_EINVAL;
	if (!(meta = cJSON_CreateObject()) || !cJSON_AddStringToObject(meta, "name", obj->name) ||
	    !cJSON_AddStringToObject(meta, "namespace", ns))
		goto nomem;
	if (with_rv && obj->resource_version && obj->resource_version[0] &&
	    !cJSON_AddStringToObject(meta, "resourceVersion", obj->resource_version))
		goto nomem;
	if (obj->nlabels) {
		if (!(x = kv_object(obj->labels, obj->nlabels)))
			goto nomem;
		cJSON_AddItemToObject(meta, "labels", x);
	}
	{
		uint64_t bytes = 0;
		char num[24];

		for (size_t i = 0; i < obj->ndata; i++)
			bytes += obj->data[i].len;
		snprintf(num, sizeof(num), "%llu", (unsigned long long)bytes);
		if (!(x = kv_object(obj->annotations, obj->nannotations)))
			goto nomem;
		cJSON_AddItemToObject(meta, "annotations", x);
		cJSON_DeleteItemFromObjectCaseSensitive(x, KVS__KUBE_DATA_BYTES);
		if (!cJSON_AddStringToObject(x, KVS__KUBE_DATA_BYTES, num))
			goto nomem;
	}
	if (!(metajs = cJSON_PrintUnformatted(meta)))
		goto nomem;
	cJSON_Delete(meta);
	meta = NULL;

	static const char head[] = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":";
	static const char imm[] = ",\"immutable\":true";
	static const char bd[] = ",\"binaryData\":{";
	mlen = strlen(metajs);
	total = sizeof(head) + mlen + sizeof(imm) + sizeof(bd) + 4;
	for (size_t i = 0; i < obj->ndata; i++) {
		size_t b = kvs__b64_len(obj->data[i].len);
		if ((b == 0 && obj->data[i].len) || b > SIZE_MAX / 2 - total)
			return free(metajs), kvs_error_set(KVS_ETOOBIG, "object %s too large", obj->name);
		total += b + strlen(obj->data[i].key) + 8;
	}
	if (!(buf = malloc(total)))
		goto nomem;
#define PUT(s, n) (memcpy(buf + off, (s), (n)), off += (n))
	PUT(head, sizeof(head) - 1);
	PUT(metajs, mlen);
	if (obj->immutable)
		PUT(imm, sizeof(imm) - 1);
	if (obj->ndata) {
		PUT(bd, sizeof(bd) - 1);
		for (size_t i = 0; i < obj->ndata; i++) {
			size_t kl = strlen(obj->data[i].key);
			if (i)
				PUT(",", 1);
			PUT("\"", 1);
			PUT(obj->data[i].key, kl);
			PUT("\":\"", 3);
			off += kvs__b64_encode(buf + off, obj->data[i].data, obj->data[i].len);
			PUT("\"", 1);
		}
		PUT("}", 1);
	}
	PUT("}", 1);
#undef PUT
	buf[off] = '\0';
	free(metajs);
	*out = buf;
	*out_len = off;
	return 0;
nomem:
	cJSON_Delete(meta);
	free(metajs);
	return kvs_error_set(KVS_ENOMEM, "out of memory building request for %s", obj->name);
}

static int print_body(char **out, size_t *out_len, cJSON *root)
{
	char *s = root ? cJSON_PrintUnformatted(root) : NULL;

	cJSON_Delete(root);
	if (!s)
		return kvs_error_set(KVS_ENOMEM, "out of memory building a request body");
	*out = s;
	*out_len = strlen(s);
	return 0;
}

int kvs__kube_body_annotate(char **out, size_t *out_len, const kvs_kv *annotations, size_t n)
{
	cJSON *root = cJSON_CreateObject(), *meta, *ann;

	*out = NULL;
	if (!root || !(meta = cJSON_AddObjectToObject(root, "metadata")) ||
	    !(ann = kv_object(annotations, n))) {
		cJSON_Delete(root);
		return kvs_error_set(KVS_ENOMEM, "out of memory building a request body");
	}
	cJSON_AddItemToObject(meta, "annotations", ann);
	return print_body(out, out_len, root);
}

int kvs__kube_body_delete(char **out, size_t *out_len, const char *rv, const char *uid)
{
	cJSON *root = cJSON_CreateObject(), *pre;

	*out = NULL;
	if (!root || !cJSON_AddStringToObject(root, "kind", "DeleteOptions") ||
	    !cJSON_AddStringToObject(root, "apiVersion", "v1") ||
	    !cJSON_AddStringToObject(root, "propagationPolicy", "Background"))
		goto nomem;
	if ((rv && *rv) || (uid && *uid)) {
		if (!(pre = cJSON_AddObjectToObject(root, "preconditions")))
			goto nomem;
		if (rv && *rv && !cJSON_AddStringToObject(pre, "resourceVersion", rv))
			goto nomem;
		if (uid && *uid && !cJSON_AddStringToObject(pre, "uid", uid))
			goto nomem;
	}
	return print_body(out, out_len, root);
nomem:
	cJSON_Delete(root);
	return kvs_error_set(KVS_ENOMEM, "out of memory building a request body");
}

/* ------------------------------------------------------------------------ */
/* parsing                                                                  */

#define BAD(what, ...) kvs_error_set(KVS_ECORRUPT, "malformed response to %s: " __VA_ARGS__)

static int set_str(char **dst, const cJSON *v, const char *field, const char *what)
{
	char *s;
	size_t n;

	if (!v)
		return 0;
	if (!cJSON_IsString(v) || !v->valuestring)
		return BAD(what, "%s is not a string", what, field);
	n = strlen(v->valuestring) + 1;
	if (!(s = malloc(n)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	memcpy(s, v->valuestring, n);
	free(*dst);
	*dst = s;
	return 0;
}

/*
 * The checks and the assembly of a kvs_object from a ConfigMap, shared by
 * the JSON reader here and the protobuf reader (kube/proto.c), so that both
 * wires give the same object or the same refusal.
 */
int kvs__kube_obj_new(kvs_object **out, const char *name, const char *what)
{
	*out = NULL;
	if (!name || !name[0])
		return BAD(what, "metadata.name missing or not a string", what);
	if (strlen(name) > 253)
		return BAD(what, "metadata.name longer than 253 characters", what);
	if (!(*out = kvs_object_new(name)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	return 0;
}

int kvs__kube_obj_check_rv(const kvs_object *o, const char *what)
{
	if (strlen(o->resource_version) >= KVS_VER_MAX)
		return BAD(what, "metadata.resourceVersion longer than %d bytes", what, KVS_VER_MAX - 1);
	return 0;
}

int kvs__kube_obj_kv(kvs_object *o, int labels, const char *key, const char *value,
                     int64_t *hint, const char *what)
{
	/* each set looks its key up among those before it: the count is capped
	 * so a body of many tiny labels cannot cost quadratic time (87k of them,
	 * what the value cap lets through, took 23 s) */
	if (o->nlabels + o->nannotations >= KVS__KUBE_MAX_META_KV)
		return kvs_error_set(KVS_EIO, "response to %s: over %u labels and annotations",
		                     what, KVS__KUBE_MAX_META_KV);
	if (!labels && strcmp(key, KVS__KUBE_DATA_BYTES) == 0) {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(value, &end, 10);
		if (errno == 0 && end != value && *end == '\0' && v <= (1ull << 40))
			*hint = (int64_t)v;
		return 0;
	}
	return labels ? kvs_object_set_label(o, key, value) : kvs_object_set_annotation(o, key, value);
}

int kvs__kube_obj_check_key(const char *key, int is_string, int binary, const char *what)
{
	if (!is_string || !key || !valid_data_key(key))
		return BAD(what, "%s entry \"%.100s\" is not a string under a valid key", what,
		           binary ? "binaryData" : "data", key ? key : "?");
	return 0;
}

void kvs__kube_obj_hint(kvs_object *o, int had_data, int64_t hint)
{
	/* PartialObjectMetadata has no data: its size comes from the annotation
	 * this backend writes with every object (informational only). */
	if (!had_data && hint > 0 && o->ndata == 0)
		o->data_bytes = (uint64_t)hint;
}

static int read_kvs(kvs_object *o, const cJSON *m, const char *field, int labels,
                    const char *what, int64_t *hint)
{
	const cJSON *e;
	int rc;

	if (!m || cJSON_IsNull(m))
		return 0;
	if (!cJSON_IsObject(m))
		return BAD(what, "metadata.%s is not an object", what, field);
	cJSON_ArrayForEach(e, m) {
		if (!cJSON_IsString(e) || !e->string)
			return BAD(what, "metadata.%s.%.100s is not a string", what, field,
			           e->string ? e->string : "?");
		if ((rc = kvs__kube_obj_kv(o, labels, e->string, e->valuestring, hint, what)) < 0)
			return rc;
	}
	return 0;
}

/* Decoded size of a base64 string without decoding it; -1 if its length or
 * padding is impossible. */
static int64_t b64_decoded_len(const char *s, size_t n)
{
	size_t pad = 0;

	if (n % 4)
		return -1;
	if (n && s[n - 1] == '=')
		pad++;
	if (n > 1 && s[n - 2] == '=')
		pad++;
	return (int64_t)(n / 4 * 3 - pad);
}

/*
 * The server time of an object's last change: the latest
 * metadata.managedFields[].time (a real API server stamps its manager's
 * entry whenever a write changes a field it owns; whole seconds). 0 when
 * absent, or when any entry's time does not parse: an unknown time is safe
 * to use (the store takes it as late), a wrong one is not.
 */
static int64_t managed_time(const cJSON *mf)
{
	int64_t best = 0;
	const cJSON *e;

	if (!cJSON_IsArray(mf))
		return 0;
	cJSON_ArrayForEach(e, mf) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "time");
		int64_t ms;
		if (!t || cJSON_IsNull(t))
			continue;
		if (!cJSON_IsString(t) || (ms = kvs__rfc3339_ms(t->valuestring)) < 0)
			return 0;
		if (ms > best)
			best = ms;
	}
	return best;
}

/* The binaryData strings of a body, left in the receive buffer (b64_spans). */
typedef struct b64_span {
	const char *p;
	size_t n;
} b64_span;

#define SPANS_MAX 64u    /* binaryData keys taken the short way; more: the long way */
#define SPANS_MISMATCH 1 /* object_from_spans: the tree is not what the scan saw */

static int object_from_spans(kvs_object **out, const cJSON *item, unsigned flags,
                             const char *what, const b64_span *spans, size_t nspans);

int kvs__kube_object_from_json(kvs_object **out, const cJSON *item, unsigned flags,
                               const char *what)
{
	return object_from_spans(out, item, flags, what, NULL, 0);
}

/*
 * `spans` (when not NULL) holds the text of the tree's binaryData values in
 * order; the tree then has "" in their place (kvs__kube_object_parse).
 * SPANS_MISMATCH if it does not (the caller parses the long way).
 */
static int object_from_spans(kvs_object **out, const cJSON *item, unsigned flags,
                             const char *what, const b64_span *spans, size_t nspans)
{
	const cJSON *meta, *name, *e, *data, *imm;
	kvs_object *o = NULL;
	int64_t hint = -1;
	size_t si = 0;
	int rc;

	*out = NULL;
	if (!cJSON_IsObject(item))
		return BAD(what, "object is not a JSON object", what);
	meta = cJSON_GetObjectItemCaseSensitive(item, "metadata");
	if (!cJSON_IsObject(meta))
		return BAD(what, "metadata missing or not an object", what);
	name = cJSON_GetObjectItemCaseSensitive(meta, "name");
	if ((rc = kvs__kube_obj_new(&o, cJSON_IsString(name) ? name->valuestring : NULL, what)) < 0)
		return rc;
	if ((rc = set_str(&o->resource_version,
	                  cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion"),
	                  "metadata.resourceVersion", what)) < 0 ||
	    (rc = set_str(&o->uid, cJSON_GetObjectItemCaseSensitive(meta, "uid"), "metadata.uid",
	                  what)) < 0)
		goto fail;
	if ((rc = kvs__kube_obj_check_rv(o, what)) < 0)
		goto fail;
	e = cJSON_GetObjectItemCaseSensitive(meta, "creationTimestamp");
	if (e && !cJSON_IsNull(e)) {
		if (!cJSON_IsString(e) || (o->created_ms = kvs__rfc3339_ms(e->valuestring)) < 0) {
			rc = BAD(what, "metadata.creationTimestamp is not an RFC 3339 time", what);
			goto fail;
		}
	}
	o->updated_ms = managed_time(cJSON_GetObjectItemCaseSensitive(meta, "managedFields"));
	if ((rc = read_kvs(o, cJSON_GetObjectItemCaseSensitive(meta, "labels"), "labels", 1,
	                   what, &hint)) < 0 ||
	    (rc = read_kvs(o, cJSON_GetObjectItemCaseSensitive(meta, "annotations"),
	                   "annotations", 0, what, &hint)) < 0)
		goto fail;
	imm = cJSON_GetObjectItemCaseSensitive(item, "immutable");
	if (imm && !cJSON_IsNull(imm)) {
		if (!cJSON_IsBool(imm)) {
			rc = BAD(what, "immutable is not a boolean", what);
			goto fail;
		}
		o->immutable = cJSON_IsTrue(imm);
	}
	data = cJSON_GetObjectItemCaseSensitive(item, "binaryData");
	if (data && !cJSON_IsNull(data)) {
		if (!cJSON_IsObject(data)) {
			rc = BAD(what, "binaryData is not an object", what);
			goto fail;
		}
		cJSON_ArrayForEach(e, data) {
			const char *text;
			uint8_t *bytes;
			size_t n, tn;
			int d;

			if ((rc = kvs__kube_obj_check_key(e->string, cJSON_IsString(e), 1, what)) < 0)
				goto fail;
			text = e->valuestring;
			if (spans) {
				if (si >= nspans || text[0]) {
					rc = SPANS_MISMATCH;
					goto fail;
				}
				text = spans[si].p;
				tn = spans[si++].n;
			} else {
				tn = strlen(text);
			}
			if (flags & KVS__KJ_META_ONLY) {
				int64_t dl = b64_decoded_len(text, tn);
				if (dl < 0) {
					rc = BAD(what, "binaryData[\"%.100s\"] is not valid base64", what,
					         e->string);
					goto fail;
				}
				o->data_bytes += (uint64_t)dl;
				continue;
			}
			d = kvs__b64_decode(&bytes, &n, text, tn);
			if (d == -2) {
				rc = kvs_error_set(KVS_ENOMEM, "out of memory");
				goto fail;
			}
			if (d < 0) {
				rc = BAD(what, "binaryData[\"%.100s\"] is not valid base64", what, e->string);
				goto fail;
			}
			if ((rc = kvs_object_add_data_owned(o, e->string, bytes, n)) < 0)
				goto fail;
		}
	}
	if (spans && si != nspans) {
		rc = SPANS_MISMATCH;
		goto fail;
	}
	/* string data (not written by kvsplit, but part of a ConfigMap) */
	data = cJSON_GetObjectItemCaseSensitive(item, "data");
	if (data && !cJSON_IsNull(data)) {
		if (!cJSON_IsObject(data)) {
			rc = BAD(what, "data is not an object", what);
			goto fail;
		}
		cJSON_ArrayForEach(e, data) {
			if ((rc = kvs__kube_obj_check_key(e->string, cJSON_IsString(e), 0, what)) < 0)
				goto fail;
			if (flags & KVS__KJ_META_ONLY) {
				o->data_bytes += strlen(e->valuestring);
				continue;
			}
			if ((rc = kvs_object_add_data(o, e->string, e->valuestring,
			                              strlen(e->valuestring))) < 0)
				goto fail;
		}
	}
	kvs__kube_obj_hint(o,
	                   cJSON_GetObjectItemCaseSensitive(item, "binaryData") ||
	                       cJSON_GetObjectItemCaseSensitive(item, "data"),
	                   hint);
	*out = o;
	return 0;
fail:
	kvs_object_free(o);
	return rc;
}

/*
 * Bound the values cJSON would allocate for a text, without parsing it.
 * Every value of a container but its first follows a comma, so the tree
 * has at most 1 + commas + containers nodes (structural characters outside
 * strings). A node costs cJSON about 64 bytes plus malloc's overhead, so a
 * 3-byte `[],` would otherwise cost ~30 times its size: a 64 MiB list page
 * of them drove a parse to 1.77 GiB. Strings (base64 data, the bulk of real
 * bodies) are skipped with memchr: they hold no structure.
 */
size_t kvs__json_values(const char *p, size_t n)
{
	const char *end = p + n;
	size_t v = 1;

	while (p < end) {
		char c = *p++;

		if (c == ',' || c == '[' || c == '{') {
			v++;
		} else if (c == '"') {
			for (;;) {
				const char *q = memchr(p, '"', (size_t)(end - p));
				size_t bs = 0;

				if (!q)
					return v; /* unterminated: cJSON will refuse it */
				while (q - bs > p && q[-1 - (ptrdiff_t)bs] == '\\')
					bs++;
				p = q + 1;
				if (bs % 2 == 0)
					break; /* not escaped: the string ends here */
			}
		}
	}
	return v;
}

size_t kvs__json_max_values(size_t cap)
{
	size_t m = cap / KVS__JSON_BYTES_PER_VALUE;

	return m < 1024 ? 1024 : m;
}

cJSON *kvs__json_parse(const char *body, size_t len, size_t cap, const char *what, int *rc)
{
	cJSON *root;
	size_t nv, maxv;

	if (len > cap) {
		*rc = kvs_error_set(KVS_EIO, "response to %s is %zu bytes, over the %zu-byte cap", what,
		                    len, cap);
		return NULL;
	}
	maxv = kvs__json_max_values(cap);
	if ((nv = kvs__json_values(body, len)) > maxv) {
		*rc = kvs_error_set(KVS_EIO,
		                    "response to %s has up to %zu JSON values in %zu bytes, over the "
		                    "cap of %zu values (one per %u bytes of the %zu-byte cap)",
		                    what, nv, len, maxv, KVS__JSON_BYTES_PER_VALUE, cap);
		return NULL;
	}
	root = cJSON_ParseWithLength(body, len);
	if (!root)
		*rc = BAD(what, "not valid JSON (%zu bytes)", what, len);
	return root;
}

static cJSON *parse_doc(const char *body, size_t len, size_t cap, const char *what, int *rc)
{
	return kvs__json_parse(body, len, cap, what, rc);
}

/*
 * A scan of a response body for the strings of its top-level binaryData,
 * so that they are decoded straight from the receive buffer instead of
 * being copied into a cJSON tree character by character first (a segment's
 * ~1.4 MB of base64 is nearly all of its body). The scan does not decide
 * what is valid JSON: cJSON still parses the whole body but for those
 * strings' contents, and the strict base64 decoder reads the contents. So
 * the scan only has to find them unambiguously, and gives up (0: parse the
 * long way) on anything it does not expect: a top-level key or a binaryData
 * key with an escape (cJSON compares keys unescaped), binaryData twice, a
 * binaryData value that is not a string, more than SPANS_MAX of them. A
 * value with an escape is taken as it is: its raw text holds a '\\', which
 * the strict decoder refuses, and any failure of the short way falls back
 * to the long one. It never reads past `end`.
 */
static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* p at an opening quote: past the closing one, or NULL. *esc: saw a '\\'
 * (looked for only when esc is not NULL). */
static const char *skip_string(const char *p, const char *end, int *esc)
{
	if (esc)
		*esc = 0;
	for (p++;;) {
		const char *q = memchr(p, '"', (size_t)(end - p));
		size_t bs = 0;

		if (!q)
			return NULL;
		if (esc && !*esc && memchr(p, '\\', (size_t)(q - p)))
			*esc = 1;
		while (q - bs > p && q[-1 - (ptrdiff_t)bs] == '\\')
			bs++;
		p = q + 1;
		if (bs % 2 == 0)
			return p;
	}
}

/* Past one value of any kind (nesting skipped), or NULL. */
static const char *skip_value(const char *p, const char *end)
{
	size_t depth = 0;
	int esc;

	do {
		if (p >= end)
			return NULL;
		if (*p == '"') {
			if (!(p = skip_string(p, end, &esc)))
				return NULL;
		} else if (*p == '{' || *p == '[') {
			depth++;
			p++;
		} else if (*p == '}' || *p == ']') {
			if (depth == 0)
				return NULL;
			depth--;
			p++;
		} else if (depth == 0) {
			/* a scalar: up to what ends it */
			while (p < end && !strchr(",}] \t\r\n", *p))
				p++;
			return p;
		} else {
			p++;
		}
	} while (depth > 0);
	return p;
}

static size_t b64_spans(b64_span *spans, const char *body, size_t len)
{
	const char *p = body, *end = body + len;
	size_t n = 0;
	int seen = 0, esc;

	p = skip_ws(p, end);
	if (p >= end || *p++ != '{')
		return 0;
	for (;;) {
		const char *k, *ke;

		p = skip_ws(p, end);
		if (p < end && *p == '}')
			return n;
		if (p >= end || *p != '"' || !(ke = skip_string(p, end, &esc)) || esc)
			return 0;
		k = p + 1;
		p = skip_ws(ke, end);
		if (p >= end || *p++ != ':')
			return 0;
		p = skip_ws(p, end);
		if ((size_t)(ke - 1 - k) == 10 && memcmp(k, "binaryData", 10) == 0 && p < end &&
		    *p == '{') {
			if (seen++)
				return 0;
			p = skip_ws(p + 1, end);
			if (p < end && *p == '}') {
				p++;
			} else {
				for (;;) {
					const char *v;

					if (p >= end || *p != '"' || !(ke = skip_string(p, end, &esc)) || esc)
						return 0;
					p = skip_ws(ke, end);
					if (p >= end || *p++ != ':')
						return 0;
					p = skip_ws(p, end);
					/* a value's escapes are not looked for (a pass over
					 * ~1.4 MB): '\\' is outside the base64 alphabet, so
					 * the strict decoder refuses the raw text and the
					 * body is parsed the long way, escapes and all */
					if (p >= end || *p != '"' || !(v = skip_string(p, end, NULL)) ||
					    n == SPANS_MAX)
						return 0;
					spans[n].p = p + 1;
					spans[n++].n = (size_t)(v - 1 - (p + 1));
					p = skip_ws(v, end);
					if (p < end && *p == ',') {
						p = skip_ws(p + 1, end);
						continue;
					}
					if (p < end && *p == '}') {
						p++;
						break;
					}
					return 0;
				}
			}
		} else if (!(p = skip_value(p, end))) {
			return 0;
		}
		p = skip_ws(p, end);
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p < end && *p == '}')
			return n;
		return 0;
	}
}

/*
 * The short way of a full GET: the body without the contents of its
 * binaryData strings goes to cJSON (a few hundred bytes of metadata), the
 * strings are decoded from where they are. Any surprise, and any error
 * (whose detail must be the long way's), falls back to parsing it all.
 * 1: not taken.
 */
static int object_parse_spans(kvs_object **out, const char *body, size_t len, unsigned flags,
                              const char *what)
{
	b64_span spans[SPANS_MAX];
	size_t n, cut = 0, off = 0;
	char *lite;
	cJSON *root;
	int rc = 0;

	if ((flags & (KVS__KJ_META_ONLY | KVS__KJ_NO_SPANS)) || len > KVS__KUBE_MAX_OBJECT ||
	    (n = b64_spans(spans, body, len)) == 0)
		return 1;
	for (size_t i = 0; i < n; i++)
		cut += spans[i].n;
	if (!(lite = malloc(len - cut + 1)))
		return 1;
	for (size_t i = 0, from = 0; i <= n; i++) {
		size_t to = i < n ? (size_t)(spans[i].p - body) : len;

		memcpy(lite + off, body + from, to - from);
		off += to - from;
		if (i < n)
			from = to + spans[i].n;
	}
	lite[off] = '\0';
	root = kvs__json_parse(lite, off, KVS__KUBE_MAX_OBJECT, what, &rc);
	if (root)
		rc = object_from_spans(out, root, flags, what, spans, n);
	cJSON_Delete(root);
	free(lite);
	if (rc != 0) {
		kvs_object_free(*out);
		*out = NULL;
		return 1;
	}
	return 0;
}

int kvs__kube_object_parse(kvs_object **out, const char *body, size_t len, unsigned flags,
                           const char *what)
{
	int rc = 0;
	cJSON *root;

	*out = NULL;
	if (object_parse_spans(out, body, len, flags, what) == 0)
		return 0;
	if (!(root = parse_doc(body, len, KVS__KUBE_MAX_OBJECT, what, &rc)))
		return rc;
	rc = kvs__kube_object_from_json(out, root, flags, what);
	cJSON_Delete(root);
	return rc;
}

int kvs__kube_list_parse(kvs_object_list **out, const char *body, size_t len, unsigned flags,
                         const char *what)
{
	int rc = 0;
	cJSON *root = parse_doc(body, len, KVS__KUBE_MAX_LIST, what, &rc);
	const cJSON *items, *meta, *e;
	kvs_object_list *l = NULL;
	size_t n;

	*out = NULL;
	if (!root)
		return rc;
	items = cJSON_GetObjectItemCaseSensitive(root, "items");
	meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
	if ((items && !cJSON_IsNull(items) && !cJSON_IsArray(items)) ||
	    (meta && !cJSON_IsObject(meta))) {
		rc = BAD(what, "not a list (items/metadata of the wrong type)", what);
		goto out;
	}
	n = cJSON_IsArray(items) ? (size_t)cJSON_GetArraySize(items) : 0;
	if (!(l = calloc(1, sizeof(*l))) || (n && !(l->items = calloc(n, sizeof(*l->items))))) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto out;
	}
	if (meta) {
		if ((rc = set_str(&l->resource_version,
		                  cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion"),
		                  "metadata.resourceVersion", what)) < 0 ||
		    (rc = set_str(&l->next, cJSON_GetObjectItemCaseSensitive(meta, "continue"),
		                  "metadata.continue", what)) < 0)
			goto out;
		if (l->resource_version && strlen(l->resource_version) >= KVS_VER_MAX) {
			rc = BAD(what, "metadata.resourceVersion longer than %d bytes", what,
			         KVS_VER_MAX - 1);
			goto out;
		}
		if (l->next && !l->next[0]) {
			free(l->next);
			l->next = NULL;
		}
	}
	if (!l->resource_version && !(l->resource_version = calloc(1, 1))) {
		rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		goto out;
	}
	if (n) {
		cJSON_ArrayForEach(e, items) {
			if ((rc = kvs__kube_object_from_json(&l->items[l->count], e, flags, what)) < 0)
				goto out;
			l->count++;
		}
	}
	*out = l;
	l = NULL;
out:
	kvs_object_list_free(l);
	cJSON_Delete(root);
	return rc;
}

/* A server's text goes into error details that reach terminals and logs:
 * every control byte (C0, DEL) becomes a blank, so no escape sequence, bell
 * or forged log line gets through. */
static void no_controls(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

void kvs__kube_status_text(char *dst, size_t cap, const char *s, size_t n)
{
	if (cap == 0)
		return;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
	no_controls(dst);
}

void kvs__kube_status_code_of(kvs__kube_status *st, double code)
{
	if (code >= 0 && code < 1000)
		st->code = (int)code;
}

void kvs__kube_status_retry_of(kvs__kube_status *st, double s)
{
	if (s > 0 && s <= 86400)
		st->retry_after_s = (unsigned)s;
}

void kvs__kube_status_cause(kvs__kube_status *st, const char *reason, const char *message)
{
	if ((reason && strcmp(reason, "FieldValueTooLong") == 0) ||
	    (message && strstr(message, "Too long")))
		st->too_long = 1;
}

void kvs__kube_status_end(kvs__kube_status *st)
{
	if (strstr(st->message, "Too long") || strstr(st->message, "too long"))
		st->too_long = 1;
}

static void copy_field(char *dst, size_t cap, const cJSON *v)
{
	if (cJSON_IsString(v) && v->valuestring)
		kvs__kube_status_text(dst, cap, v->valuestring, strlen(v->valuestring));
}

void kvs__kube_status_from_json(kvs__kube_status *st, const cJSON *root)
{
	const cJSON *d, *causes, *c;

	memset(st, 0, sizeof(*st));
	if (!cJSON_IsObject(root))
		return;
	c = cJSON_GetObjectItemCaseSensitive(root, "code");
	if (cJSON_IsNumber(c))
		kvs__kube_status_code_of(st, c->valuedouble);
	copy_field(st->reason, sizeof(st->reason), cJSON_GetObjectItemCaseSensitive(root, "reason"));
	copy_field(st->message, sizeof(st->message),
	           cJSON_GetObjectItemCaseSensitive(root, "message"));
	d = cJSON_GetObjectItemCaseSensitive(root, "details");
	if (cJSON_IsObject(d)) {
		copy_field(st->details_kind, sizeof(st->details_kind),
		           cJSON_GetObjectItemCaseSensitive(d, "kind"));
		copy_field(st->details_name, sizeof(st->details_name),
		           cJSON_GetObjectItemCaseSensitive(d, "name"));
		c = cJSON_GetObjectItemCaseSensitive(d, "retryAfterSeconds");
		if (cJSON_IsNumber(c))
			kvs__kube_status_retry_of(st, c->valuedouble);
		causes = cJSON_GetObjectItemCaseSensitive(d, "causes");
		if (cJSON_IsArray(causes)) {
			cJSON_ArrayForEach(c, causes) {
				const cJSON *r = cJSON_GetObjectItemCaseSensitive(c, "reason");
				const cJSON *m = cJSON_GetObjectItemCaseSensitive(c, "message");
				kvs__kube_status_cause(st, cJSON_IsString(r) ? r->valuestring : NULL,
				                       cJSON_IsString(m) ? m->valuestring : NULL);
			}
		}
	}
	kvs__kube_status_end(st);
}

void kvs__kube_status_parse(kvs__kube_status *st, const char *body, size_t len)
{
	cJSON *root = NULL;

	memset(st, 0, sizeof(*st));
	if (body && len && len <= KVS__KUBE_MAX_OBJECT &&
	    kvs__json_values(body, len) <= kvs__json_max_values(KVS__KUBE_MAX_OBJECT))
		root = cJSON_ParseWithLength(body, len);
	kvs__kube_status_from_json(st, root);
	cJSON_Delete(root);
}

int kvs__kube_status_code(const kvs__kube_status *st, long http)
{
	const char *r = st->reason;
	long code = st->code ? st->code : http;

	if (strcmp(r, "AlreadyExists") == 0)
		return KVS_EEXISTS;
	if (strcmp(r, "Conflict") == 0)
		return KVS_ECONFLICT;
	if (strcmp(r, "NotFound") == 0)
		return KVS_ENOTFOUND;
	if (strcmp(r, "Gone") == 0 || strcmp(r, "Expired") == 0)
		return KVS_EGONE;
	if (strcmp(r, "Unauthorized") == 0 || strcmp(r, "Forbidden") == 0)
		return KVS_EDENIED;
	if (strcmp(r, "RequestEntityTooLarge") == 0)
		return KVS_ETOOBIG;
	if (strcmp(r, "Invalid") == 0)
		return st->too_long ? KVS_ETOOBIG : KVS_EINVALOBJ;
	if (strcmp(r, "Timeout") == 0 || strcmp(r, "ServerTimeout") == 0 ||
	    strcmp(r, "TooManyRequests") == 0)
		return KVS_ETIMEOUT;
	switch (code) {
	case 401: case 403: return KVS_EDENIED;
	case 404: return KVS_ENOTFOUND;
	case 409: return KVS_ECONFLICT;
	case 410: return KVS_EGONE;
	case 413: return KVS_ETOOBIG;
	case 422: return st->too_long ? KVS_ETOOBIG : KVS_EINVALOBJ;
	case 429: case 504: return KVS_ETIMEOUT;
	case 400: return KVS_EINVAL;
	default: break;
	}
	if (code >= 500)
		return KVS_EIO;
	return KVS_ERROR;
}

int kvs__kube_http_error(long http, const char *body, size_t len, const char *what,
                         const char *ns, int retried)
{
	kvs__kube_status st;

	kvs__kube_status_parse(&st, body, len);
	return kvs__kube_http_error_st(http, &st, body, len, what, ns, retried);
}

int kvs__kube_http_error_st(long http, const kvs__kube_status *stp, const char *body,
                            size_t len, const char *what, const char *ns, int retried)
{
	const kvs__kube_status st = *stp;
	int code;
	char msg[1100];

	code = kvs__kube_status_code(&st, http);
	if (st.message[0])
		snprintf(msg, sizeof(msg), "%s", st.message);
	else if (body && len && len < 200 && !memchr(body, '\0', len))
		snprintf(msg, sizeof(msg), "%.*s", (int)len, body);
	else
		snprintf(msg, sizeof(msg), "(no Status message)");
	no_controls(msg);
	if (code == KVS_ENOTFOUND && strcmp(st.details_kind, "namespaces") == 0)
		return kvs_error_set(code, "%s: HTTP %ld NotFound: namespace \"%s\" does not exist (%s)",
		                     what, http, ns ? ns : st.details_name, msg);
	return kvs_error_set(code, "%s: HTTP %ld %s: %s%s", what, http,
	                     st.reason[0] ? st.reason : "(no reason)", msg,
	                     retried && (code == KVS_EEXISTS || code == KVS_ECONFLICT)
	                         ? " (after a retry of a request whose response was lost: our "
	                           "own earlier attempt may have applied)"
	                         : "");
}

/* ------------------------------------------------------------------------ */
/* watch events                                                             */

int kvs__kube_event_parse(kvs_event *out, const char *line, size_t len, const char *what)
{
	cJSON *root;
	const cJSON *type, *obj;
	int rc = 0;

	out->type = 0;
	out->object = NULL;
	if (len > KVS__KUBE_MAX_EVENT)
		return kvs_error_set(KVS_EIO, "%s: event of %zu bytes over the cap", what, len);
	if (!(root = kvs__json_parse(line, len, KVS__KUBE_MAX_EVENT, what, &rc)))
		return rc;
	type = cJSON_GetObjectItemCaseSensitive(root, "type");
	obj = cJSON_GetObjectItemCaseSensitive(root, "object");
	if (!cJSON_IsString(type) || !cJSON_IsObject(obj)) {
		rc = BAD(what, "watch event without type or object", what);
		goto out;
	}
	if (strcmp(type->valuestring, "ERROR") == 0) {
		kvs__kube_status st;

		kvs__kube_status_from_json(&st, obj);
		rc = kvs__kube_status_code(&st, st.code);
		if (rc == KVS_ERROR && st.code == 0)
			rc = KVS_EIO;
		rc = kvs_error_set(rc, "%s: watch ERROR %d %s: %s", what, st.code,
		                   st.reason[0] ? st.reason : "(no reason)", st.message);
		goto out;
	}
	if (strcmp(type->valuestring, "ADDED") == 0)
		out->type = KVS_EVENT_ADDED;
	else if (strcmp(type->valuestring, "MODIFIED") == 0)
		out->type = KVS_EVENT_MODIFIED;
	else if (strcmp(type->valuestring, "DELETED") == 0)
		out->type = KVS_EVENT_DELETED;
	else if (strcmp(type->valuestring, "BOOKMARK") == 0)
		out->type = KVS_EVENT_BOOKMARK;
	else {
		rc = BAD(what, "unknown watch event type \"%.32s\"", what, type->valuestring);
		goto out;
	}
	if (out->type == KVS_EVENT_BOOKMARK) {
		const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
		const cJSON *rv = cJSON_IsObject(meta)
		                      ? cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion")
		                      : NULL;
		if (!cJSON_IsString(rv) || !rv->valuestring[0] ||
		    strlen(rv->valuestring) >= KVS_VER_MAX) {
			rc = BAD(what, "BOOKMARK without a valid metadata.resourceVersion", what);
			goto out;
		}
		if (!(out->object = kvs_object_new("")) ||
		    kvs_object_set_rv(out->object, rv->valuestring) < 0) {
			kvs_object_free(out->object);
			out->object = NULL;
			rc = kvs_error_set(KVS_ENOMEM, "out of memory");
		}
		goto out;
	}
	rc = kvs__kube_object_from_json(&out->object, obj, 0, what);
out:
	if (rc < 0)
		out->type = 0;
	cJSON_Delete(root);
	return rc;
}
