/*
 * mapjson.c — a key-split map read and written as one JSON object.
 *
 * The object is walked member by member: cJSON parses each name and each
 * value on its own (cJSON_ParseWithLengthOpts tells where it ended), so
 * memory is bounded by the largest member, not by the document, and a value
 * is stored as the exact text cJSON validated (leading and trailing
 * whitespace trimmed). Storing the text, not a re-print, keeps what cJSON
 * would change: integers beyond 2^53, number spellings, escapes.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mapjson.h"

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* One JSON value at p: its trimmed span [*vs, *ve) and the parsed item. */
static int one_value(cJSON **item, const char **vs, const char **ve, const char *p,
                     const char *end)
{
	const char *pe = NULL;

	p = skip_ws(p, end);
	if (p >= end)
		return kvs_error_set(KVS_EINVAL, "JSON: a value is missing");
	*item = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &pe, 0);
	if (!*item || !pe || pe < p || pe > end)
		return kvs_error_set(KVS_EINVAL, "JSON: not a valid value at offset %zu",
		                     (size_t)((pe && pe >= p && pe <= end ? pe : p) - p));
	*vs = p;
	*ve = pe;
	return 0;
}

int kvs__json_compact(char **out, size_t *out_len, const char *json, size_t len)
{
	const char *vs, *ve, *end = json + len;
	cJSON *item = NULL;
	int rc;

	*out = NULL;
	*out_len = 0;
	if (!json)
		return kvs_error_set(KVS_EINVAL, "JSON value is NULL");
	if ((rc = one_value(&item, &vs, &ve, json, end)) < 0)
		return rc;
	cJSON_Delete(item);
	if (skip_ws(ve, end) != end)
		return kvs_error_set(KVS_EINVAL, "JSON: trailing bytes after the value");
	if ((size_t)(ve - vs) > KVS_MAP_VALUE_MAX)
		return kvs_error_set(KVS_EINVAL, "JSON value of %zu bytes, over %u",
		                     (size_t)(ve - vs), KVS_MAP_VALUE_MAX);
	if (!(*out = malloc((size_t)(ve - vs) + 1)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	memcpy(*out, vs, (size_t)(ve - vs));
	(*out)[ve - vs] = '\0';
	*out_len = (size_t)(ve - vs);
	return 0;
}

/* Called per member: name (NUL-free UTF-8), the value's text, whether it
 * is null. */
typedef int (*member_cb)(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen,
                         int is_null);

static int walk_object(const char *json, size_t len, member_cb cb, void *ctx)
{
	const char *p, *end = json + len;
	int rc;

	if (!json)
		return kvs_error_set(KVS_EINVAL, "JSON is NULL");
	p = skip_ws(json, end);
	if (p >= end || *p != '{')
		return kvs_error_set(KVS_EINVAL, "JSON: a map is one object ({...})");
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}') {
		p++;
		goto tail;
	}
	for (;;) {
		cJSON *k = NULL, *v = NULL;
		const char *ks, *ke, *vs, *ve;
		size_t nlen;
		p = skip_ws(p, end);
		if (p >= end || *p != '"')
			return kvs_error_set(KVS_EINVAL, "JSON: member name expected at offset %zu",
			                     (size_t)(p - json));
		if ((rc = one_value(&k, &ks, &ke, p, end)) < 0)
			return rc;
		nlen = strlen(k->valuestring);
		if (nlen == 0 || nlen > KVS_MAP_FIELD_MAX) {
			cJSON_Delete(k);
			return kvs_error_set(KVS_EINVAL, "JSON: member name at offset %zu is %s",
			                     (size_t)(ks - json), nlen ? "too long" : "empty (or has a NUL)");
		}
		p = skip_ws(ke, end);
		if (p >= end || *p != ':') {
			cJSON_Delete(k);
			return kvs_error_set(KVS_EINVAL, "JSON: ':' expected at offset %zu",
			                     (size_t)(p - json));
		}
		if ((rc = one_value(&v, &vs, &ve, p + 1, end)) < 0) {
			cJSON_Delete(k);
			return kvs_error_set(rc, "%s (member \"%.64s\")", kvs_error_last(), k->valuestring);
		}
		if ((size_t)(ve - vs) > KVS_MAP_VALUE_MAX) {
			rc = kvs_error_set(KVS_EINVAL, "JSON: member \"%.64s\" is %zu bytes, over %u",
			                   k->valuestring, (size_t)(ve - vs), KVS_MAP_VALUE_MAX);
		} else {
			rc = cb(ctx, k->valuestring, nlen, vs, (size_t)(ve - vs), cJSON_IsNull(v));
		}
		cJSON_Delete(k);
		cJSON_Delete(v);
		if (rc < 0)
			return rc;
		p = skip_ws(ve, end);
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p < end && *p == '}') {
			p++;
			break;
		}
		return kvs_error_set(KVS_EINVAL, "JSON: ',' or '}' expected at offset %zu",
		                     (size_t)(p - json));
	}
tail:
	if (skip_ws(p, end) != end)
		return kvs_error_set(KVS_EINVAL, "JSON: trailing bytes after the object");
	return 0;
}

/* ---- import ----------------------------------------------------------------- */

typedef struct imp {
	kvs__ment *e;
	size_t n, cap;
	size_t *order;
} imp;

static int imp_member(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen,
                      int is_null)
{
	imp *im = ctx;
	(void)is_null;   /* a null member is a field whose value is null */

	if (im->n >= KVS_MAP_BATCH_MAX * 16u)
		return kvs_error_set(KVS_ETOOBIG, "JSON object with more than %u members",
		                     KVS_MAP_BATCH_MAX * 16u);
	if (im->n == im->cap) {
		size_t nc = im->cap ? im->cap * 2 : 1024;
		kvs__ment *np = realloc(im->e, nc * sizeof(*np));
		if (!np)
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		im->e = np;
		im->cap = nc;
	}
	/* names point into cJSON's string, which is freed: copy it */
	{
		uint8_t *nm = malloc(nlen);
		if (!nm)
			return kvs_error_set(KVS_ENOMEM, "out of memory");
		memcpy(nm, name, nlen);
		im->e[im->n].name = nm;
	}
	im->e[im->n].nlen = (uint32_t)nlen;
	im->e[im->n].val = (const uint8_t *)val;   /* into the caller's document */
	im->e[im->n].vlen = (uint32_t)vlen;
	im->e[im->n].type = KVS__MV_JSON;
	/* the position breaks ties so that the last duplicate wins */
	im->e[im->n].ver = im->n;
	im->n++;
	return 0;
}

static int cmp_ment(const void *a, const void *b)
{
	const kvs__ment *x = a, *y = b;
	int c = kvs__mname_cmp(x->name, x->nlen, y->name, y->nlen);
	if (c)
		return c;
	return x->ver < y->ver ? -1 : x->ver > y->ver;
}

int kvs_map_import_json(kvs_ver *out, kvs_store *s, const char *key, const char *json,
                        size_t len, const kvs_map_write_options *o)
{
	imp im = { 0 };
	size_t m = 0;
	int rc;

	if ((rc = walk_object(json, len, imp_member, &im)) == 0) {
		qsort(im.e, im.n, sizeof(*im.e), cmp_ment);
		for (size_t i = 0; i < im.n; i++) {
			if (i + 1 < im.n && kvs__mname_cmp(im.e[i].name, im.e[i].nlen, im.e[i + 1].name,
			                                   im.e[i + 1].nlen) == 0) {
				free((void *)im.e[i].name);
				continue;
			}
			im.e[m++] = im.e[i];
		}
		im.n = m;
		rc = kvs__map_replace(out, s, key, im.e, im.n, o);
	}
	for (size_t i = 0; i < im.n; i++)
		free((void *)im.e[i].name);
	free(im.e);
	return rc;
}

/* ---- patch ------------------------------------------------------------------- */

static int patch_member(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen,
                        int is_null)
{
	kvs_map_batch *b = ctx;

	if (is_null)
		return kvs_map_batch_delete(b, name, nlen);
	return kvs__map_batch_put_compact_json(b, name, nlen, val, vlen);
}

int kvs_map_patch_json(kvs_ver *out, kvs_store *s, const char *key, const char *json,
                       size_t len, const kvs_map_write_options *o)
{
	kvs_map_batch *b = NULL;
	int rc;

	if ((rc = kvs_map_batch_new(&b)) < 0)
		return rc;
	if ((rc = walk_object(json, len, patch_member, b)) == 0)
		rc = kvs_map_commit(out, s, key, b, o);
	kvs_map_batch_free(b);
	return rc;
}

/* ---- export ------------------------------------------------------------------ */

#define OUTBUF (256u * 1024u)

typedef struct outb {
	char *buf;
	size_t n;
	kvs_write_cb write;
	void *ctx;
} outb;

static int out_flush(outb *o)
{
	if (o->n && o->write(o->ctx, o->buf, o->n) != 0)
		return kvs_error_set(KVS_ECANCELED, "map export: the write callback failed");
	o->n = 0;
	return 0;
}

static int out_put(outb *o, const void *p, size_t n)
{
	int rc;

	if (o->n + n > OUTBUF && (rc = out_flush(o)) < 0)
		return rc;
	if (n > OUTBUF)
		return o->write(o->ctx, p, n) != 0
		       ? kvs_error_set(KVS_ECANCELED, "map export: the write callback failed") : 0;
	memcpy(o->buf + o->n, p, n);
	o->n += n;
	return 0;
}

/* A byte string as a JSON string, printed by cJSON. */
static int out_string(outb *o, const uint8_t *p, size_t n, const char *what)
{
	char *tmp, *js;
	cJSON *str;
	int rc;

	if (!kvs__utf8_valid(p, n) || memchr(p, 0, n))
		return kvs_error_set(KVS_EINVAL, "map export: %s is not UTF-8 text", what);
	if (!(tmp = malloc(n + 1)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	str = cJSON_CreateString(tmp);
	free(tmp);
	js = str ? cJSON_PrintUnformatted(str) : NULL;
	cJSON_Delete(str);
	if (!js)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	rc = out_put(o, js, strlen(js));
	cJSON_free(js);
	return rc;
}

int kvs_map_export_json(kvs_ver *out_ver, kvs_store *s, const char *key, kvs_write_cb write,
                        void *ctx, const kvs_map_read_options *opts)
{
	kvs_map_iter_options io = KVS_MAP_ITER_OPTIONS_INIT;
	kvs_map_iter *it = NULL;
	kvs_map_entry e;
	outb o = { NULL, 0, write, ctx };
	int rc, first = 1;

	if (!write)
		return kvs_error_set(KVS_EINVAL, "kvs_map_export_json: write callback is NULL");
	if (opts && (opts->version < 1 || opts->version > KVS_MAP_READ_OPTIONS_VERSION))
		return kvs_error_set(KVS_EINVAL, "kvs_map_read_options version %u is not supported",
		                     opts->version);
	io.stats = opts ? opts->stats : NULL;
	if (!(o.buf = malloc(OUTBUF)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if ((rc = kvs_map_iter_open(&it, out_ver, s, key, &io)) < 0)
		goto out;
	rc = out_put(&o, "{", 1);
	while (rc == 0 && (rc = kvs_map_iter_next(&e, it)) == 0) {
		if ((!first && (rc = out_put(&o, ",", 1)) < 0) ||
		    (rc = out_string(&o, e.field, e.field_len, "a field name")) < 0 ||
		    (rc = out_put(&o, ":", 1)) < 0)
			break;
		first = 0;
		if (e.is_json)
			rc = out_put(&o, e.value, e.value_len);
		else
			rc = out_string(&o, e.value, e.value_len, "a byte value");
	}
	if (rc == KVS_EITER_DONE)
		rc = out_put(&o, "}", 1);
	if (rc == 0)
		rc = out_flush(&o);
out:
	kvs_map_iter_close(it);
	free(o.buf);
	return rc;
}
