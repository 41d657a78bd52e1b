/*
 * mapjson.c — a key-split map read and written as one JSON object.
 *
 * The object is walked member by member, each value validated in place
 * (kvs__json_skip: nothing is built, see below) and stored as the exact
 * text validated (leading and trailing whitespace trimmed); cJSON decodes
 * only member names that hold escapes. Storing the text, not a re-print, keeps what cJSON
 * would change: integers beyond 2^53, number spellings, escapes.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "mapjson.h"
#include "base/options.h"

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/*
 * Validating without building: an import checks every value of the
 * object, but stores the text, so a cJSON tree per member (a malloc per
 * node and a free) was the whole cost of an import, ten times the put of
 * the same bytes. These scanners accept exactly RFC 8259's grammar (no
 * leniency: whitespace is the four it names, numbers have no leading zeros,
 * strings no control characters, \u escapes pair their surrogates) and
 * nest at most cJSON's limit, so everything they accept cJSON parses too,
 * except numbers longer than cJSON's 63-character buffer (valid JSON,
 * stored as text). fuzz/mapjson_fuzzer.c checks the claim against cJSON.
 */
#define JSON_DEPTH_MAX 1000

static int hex4(const char *p, const char *end, unsigned *u)
{
	*u = 0;
	if (end - p < 4)
		return 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return 0;
		*u = *u << 4 | d;
	}
	return 1;
}

/* Bytes that end a plain stretch of a string: '"', '\\', and control bytes. */
static const unsigned char str_stop[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	['\\'] = 1,
};

/*
 * The first byte at or after q that ends a plain stretch ('"', '\\', a
 * control byte), or e: the validator's hot loop, since strings are most of
 * a document's bytes. 16 bytes a step with SSE2 (every x86-64), else 8 with
 * the word trick: (v - 0x01..) & ~v & 0x80.. flags the zero bytes of v and
 * (x - 0x20..) & ~x & 0x80.. the bytes of x below 0x20, exactly at the
 * lowest flagged byte (a borrow can only flag bytes above a true one), so
 * on a little-endian machine the lowest flag is the first stop.
 */
static const unsigned char *plain_end(const unsigned char *q, const unsigned char *e)
{
#if defined(__SSE2__)
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
	              c1f = _mm_set1_epi8(0x1f);

	while (e - q >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
		__m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
		                         _mm_cmpeq_epi8(_mm_max_epu8(x, c1f), c1f));
		unsigned bits = (unsigned)_mm_movemask_epi8(m);
		if (bits)
			return q + __builtin_ctz(bits);
		q += 16;
	}
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;

	while (e - q >= 8) {
		uint64_t x, qt, bs, t;
		memcpy(&x, q, 8);
		qt = x ^ (ones * '"');
		bs = x ^ (ones * '\\');
		t = (((qt - ones) & ~qt) | ((bs - ones) & ~bs) | ((x - ones * 0x20u) & ~x)) & high;
		if (t)
			return q + (__builtin_ctzll(t) >> 3);
		q += 8;
	}
#endif
	while (q < e && !str_stop[*q])
		q++;
	return q;
}

/* p at '"': the byte after the closing quote, or NULL. *esc: any escape. */
static const char *skip_string(const char *p, const char *end, int *esc)
{
	const unsigned char *q = (const unsigned char *)p + 1, *e = (const unsigned char *)end;

	*esc = 0;
	for (;;) {
		unsigned u, u2;
		q = plain_end(q, e);
		if (q >= e)
			return NULL;
		if (*q == '"')
			return (const char *)q + 1;
		if (*q != '\\')
			return NULL;   /* a control byte */
		*esc = 1;
		if (++q >= e)
			return NULL;
		switch (*q) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
			q++;
			break;
		case 'u':
			p = (const char *)q;
			if (!hex4(p + 1, end, &u) || (u >= 0xDC00 && u <= 0xDFFF))
				return NULL;
			p += 5;
			if (u >= 0xD800 && u <= 0xDBFF) {
				if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, end, &u2) ||
				    u2 < 0xDC00 || u2 > 0xDFFF)
					return NULL;
				p += 6;
			}
			q = (const unsigned char *)p;
			break;
		default:
			return NULL;
		}
	}
}

static const char *skip_digits(const char *p, const char *end)
{
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p;
}

static const char *skip_number(const char *p, const char *end)
{
	if (p < end && *p == '-')
		p++;
	if (p >= end)
		return NULL;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		p = skip_digits(p, end);
	else
		return NULL;
	if (p < end && *p == '.') {
		if (++p >= end || *p < '0' || *p > '9')
			return NULL;
		p = skip_digits(p, end);
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		if (++p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			return NULL;
		p = skip_digits(p, end);
	}
	return p;
}

static const char *skip_literal(const char *p, const char *end, const char *lit, size_t n)
{
	return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0 ? p + n : NULL;
}

const char *kvs__json_skip(const char *p, const char *end)
{
	char stack[JSON_DEPTH_MAX];   /* the closer of each open container */
	int depth = 0, esc;

	for (;;) {
		p = skip_ws(p, end);
		if (p >= end)
			return NULL;
		switch (*p) {
		case '{':
		case '[':
			if (depth == JSON_DEPTH_MAX)
				return NULL;
			stack[depth++] = *p == '{' ? '}' : ']';
			p = skip_ws(p + 1, end);
			if (p < end && *p == stack[depth - 1]) {
				depth--;
				p++;
				break;
			}
			if (stack[depth - 1] == '}')
				goto member;
			continue;
		case '"':
			p = skip_string(p, end, &esc);
			break;
		case 't':
			p = skip_literal(p, end, "true", 4);
			break;
		case 'f':
			p = skip_literal(p, end, "false", 5);
			break;
		case 'n':
			p = skip_literal(p, end, "null", 4);
			break;
		default:
			p = skip_number(p, end);
			break;
		}
		if (!p)
			return NULL;
		/* after a value: close what ends here, then the next value or member */
		for (;;) {
			if (depth == 0)
				return p;
			p = skip_ws(p, end);
			if (p >= end)
				return NULL;
			if (*p == stack[depth - 1]) {
				p++;
				depth--;
				continue;
			}
			if (*p != ',')
				return NULL;
			p++;
			break;
		}
		if (stack[depth - 1] == ']')
			continue;
member:
		p = skip_ws(p, end);
		if (p >= end || *p != '"' || !(p = skip_string(p, end, &esc)))
			return NULL;
		p = skip_ws(p, end);
		if (p >= end || *p != ':')
			return NULL;
		p++;
	}
}

/* One JSON value at p: its trimmed span [*vs, *ve). */
static int one_value(const char **vs, const char **ve, const char *p, const char *end)
{
	const char *pe;

	p = skip_ws(p, end);
	if (p >= end)
		return kvs_error_set(KVS_EINVAL, "JSON: a value is missing");
	if (!(pe = kvs__json_skip(p, end)))
		return kvs_error_set(KVS_EINVAL, "JSON: not a valid value at offset %zu", (size_t)0);
	*vs = p;
	*ve = pe;
	return 0;
}

int kvs__json_compact(char **out, size_t *out_len, const char *json, size_t len)
{
	const char *vs, *ve, *end = json + len;
	int rc;

	*out = NULL;
	*out_len = 0;
	if (!json)
		return kvs_error_set(KVS_EINVAL, "JSON value is NULL");
	if ((rc = one_value(&vs, &ve, json, end)) < 0)
		return rc;
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
		cJSON *k = NULL;
		const char *ks, *ke, *vs, *ve, *name;
		size_t nlen;
		int esc;
		p = skip_ws(p, end);
		if (p >= end || *p != '"' || !(ke = skip_string(p, end, &esc)))
			return kvs_error_set(KVS_EINVAL, "JSON: member name expected at offset %zu",
			                     (size_t)(p - json));
		ks = p;
		if (esc) {
			/* escapes: let cJSON decode the name (a NUL ends it: refused below) */
			if (!(k = cJSON_ParseWithLength(ks, (size_t)(ke - ks))) || !cJSON_IsString(k)) {
				cJSON_Delete(k);
				return kvs_error_set(KVS_EINVAL, "JSON: bad member name at offset %zu",
				                     (size_t)(ks - json));
			}
			name = k->valuestring;
			nlen = strlen(name);
		} else {
			name = ks + 1;
			nlen = (size_t)(ke - ks) - 2;
		}
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
		if ((rc = one_value(&vs, &ve, p + 1, end)) < 0) {
			rc = kvs_error_set(rc, "JSON: member \"%.64s\" (offset %zu): not a valid value",
			                   name, (size_t)(ks - json));
			cJSON_Delete(k);
			return rc;
		}
		if ((size_t)(ve - vs) > KVS_MAP_VALUE_MAX) {
			rc = kvs_error_set(KVS_EINVAL, "JSON: member \"%.64s\" is %zu bytes, over %u",
			                   name, (size_t)(ve - vs), KVS_MAP_VALUE_MAX);
		} else {
			rc = cb(ctx, name, nlen, vs, (size_t)(ve - vs),
			        ve - vs == 4 && memcmp(vs, "null", 4) == 0);
		}
		cJSON_Delete(k);
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
	const char *doc, *doc_end;   /* names in it are not copied */
} imp;

/* A name decoded from escapes is a copy the import owns. */
static int name_owned(const imp *im, const uint8_t *name)
{
	uintptr_t p = (uintptr_t)name;
	return p < (uintptr_t)im->doc || p >= (uintptr_t)im->doc_end;
}

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
	if (!name_owned(im, (const uint8_t *)name)) {
		im->e[im->n].name = (const uint8_t *)name;   /* into the caller's document */
	} else {
		/* decoded from escapes into cJSON's string, which is freed: copy it */
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

	im.doc = json;
	im.doc_end = json ? json + len : NULL;

	if ((rc = walk_object(json, len, imp_member, &im)) == 0) {
		if (im.n > 1)
			qsort(im.e, im.n, sizeof(*im.e), cmp_ment);
		for (size_t i = 0; i < im.n; i++) {
			if (i + 1 < im.n && kvs__mname_cmp(im.e[i].name, im.e[i].nlen, im.e[i + 1].name,
			                                   im.e[i + 1].nlen) == 0) {
				if (name_owned(&im, im.e[i].name))
					free((void *)im.e[i].name);
				continue;
			}
			im.e[m++] = im.e[i];
		}
		im.n = m;
		rc = kvs__map_replace(out, s, key, im.e, im.n, o);
	}
	for (size_t i = 0; i < im.n; i++)
		if (name_owned(&im, im.e[i].name))
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
	kvs_map_read_options ro = KVS_MAP_READ_OPTIONS_INIT;
	kvs_map_iter *it = NULL;
	kvs_map_entry e;
	outb o = { NULL, 0, write, ctx };
	int rc, first = 1;

	if (!write)
		return kvs_error_set(KVS_EINVAL, "kvs_map_export_json: write callback is NULL");
	if ((rc = KVS__OPTS(&ro, opts, map_read)) < 0)
		return rc;
	io.stats = ro.stats;
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
