/*
 * Long strings kept out of cJSON's byte loops. A ConfigMap put carries
 * ~1.4 MB of base64 in one or a few binaryData values; cJSON scans and
 * copies each string byte by byte when it parses (twice) and again when it
 * prints (twice, into a buffer it grows by doubling). That was most of the
 * server's CPU on a put of large values.
 *
 * json_parse_body() cuts a body's long escape-free string values out before
 * cJSON sees it (a marker of its own in their place), then copies each one
 * whole into the tree. json_print() prints a tree whose long strings need no
 * escaping by copying them into the text whole and leaving the rest to
 * cJSON. Both give exactly what cJSON gives (the same tree, the same bytes);
 * whatever they are not sure of (escapes in a string, a long key, a marker
 * outside the value cJSON read, found twice or naming no string, a body
 * cJSON refuses) takes cJSON's own way.
 */
#include "kapi.h"

#include <openssl/rand.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A string shorter than this goes through cJSON as before (a fuzzing
 * build makes it small). */
#ifndef KAPI_BIG_MIN
#define KAPI_BIG_MIN 4096u
#endif
#define BIG_MIN ((size_t)KAPI_BIG_MIN)

/* Strings that went the short way: parsed whole, printed whole. */
static uint64_t g_parsed, g_printed;

void json_long_stats(uint64_t *parsed, uint64_t *printed)
{
	*parsed = __atomic_load_n(&g_parsed, __ATOMIC_RELAXED);
	*printed = __atomic_load_n(&g_printed, __ATOMIC_RELAXED);
}

struct span {
	size_t at, n; /* offset of the string's first byte in the body, its length */
	size_t mark;  /* offset of its marker in the text cJSON parses */
	cJSON *item;  /* the tree's string that holds its marker */
};

/* The marker's prefix: a DEL byte and 24 random hex digits per process, so
 * that a body spells one neither by chance nor on purpose (and if it did,
 * claim_markers would notice and send it cJSON's way). */
static char g_prefix[32];
static pthread_once_t g_prefix_once = PTHREAD_ONCE_INIT;

static void prefix_init(void)
{
	unsigned char r[12];
	if (RAND_bytes(r, sizeof r) != 1)
		for (size_t i = 0; i < sizeof r; i++)
			r[i] = (unsigned char)rng_next();
	g_prefix[0] = 0x7f;
	for (size_t i = 0; i < sizeof r; i++)
		snprintf(g_prefix + 1 + 2 * i, 3, "%02x", r[i]);
	g_prefix[25] = ':';
	g_prefix[26] = 0;
}

/* The first quote or backslash in [p, e), or e. Sixteen bytes at a time
 * where SSE2 is there (every x86-64). */
static const char *quote_or_bslash(const char *p, const char *e)
{
#ifdef __SSE2__
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
	for (; e - p >= 16; p += 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		int m = _mm_movemask_epi8(
			_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)));
		if (m)
			return p + __builtin_ctz((unsigned)m);
	}
#endif
	for (; p < e; p++)
		if (*p == '"' || *p == '\\')
			return p;
	return e;
}

/* p is just past an opening quote: the closing quote (or NULL when the
 * string does not end), and whether the string holds an escape. Once one is
 * seen the string cannot be cut out; the rest is walked byte by byte. */
static const char *string_end(const char *p, const char *e, bool *esc)
{
	const char *q = quote_or_bslash(p, e);

	*esc = q < e && *q == '\\';
	if (q == e)
		return NULL;
	if (!*esc)
		return q;
	for (p = q; p < e; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p;
	}
	return NULL;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The long escape-free string values of body (not keys), in order. */
static size_t find_spans(const char *body, size_t len, struct span **out)
{
	const char *p = body, *e = body + len;
	struct span *s = NULL;
	size_t n = 0, cap = 0;

	while (p < e && (p = memchr(p, '"', (size_t)(e - p))) != NULL) {
		const char *from = p + 1, *t;
		bool esc;
		const char *q = string_end(from, e, &esc);
		if (!q)
			break;
		p = q + 1;
		if (esc || (size_t)(q - from) < BIG_MIN)
			continue;
		for (t = p; t < e && is_ws(*t); t++)
			;
		if (t < e && *t == ':')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			s = xrealloc(s, cap * sizeof *s);
		}
		s[n].at = (size_t)(from - body);
		s[n].n = (size_t)(q - from);
		s[n].item = NULL;
		n++;
	}
	*out = s;
	return n;
}

/* Find each marker in the tree; false if one is doubled or unknown. Every
 * marker lies inside the value cJSON read (the caller checked), so each is
 * in the tree; a string of the body's own that looks like one is then found
 * twice or names no span, and the body goes cJSON's way. */
static bool claim_markers(cJSON *node, struct span *s, size_t n, size_t pl)
{
	for (; node; node = node->next) {
		if (cJSON_IsString(node) && node->valuestring &&
		    strncmp(node->valuestring, g_prefix, pl) == 0) {
			const char *d = node->valuestring + pl;
			size_t i = 0;
			if (!*d || strspn(d, "0123456789") != strlen(d) || strlen(d) > 12)
				return false;
			for (; *d; d++)
				i = i * 10 + (size_t)(*d - '0');
			if (i >= n || s[i].item)
				return false;
			s[i].item = node;
		}
		if (node->child && !claim_markers(node->child, s, n, pl))
			return false;
	}
	return true;
}

cJSON *json_parse_body(struct buf *b, const char **end)
{
	const char *body = b->p;
	size_t len = b->len;
	struct span *s;
	size_t n = find_spans(body, len, &s);

	if (!n)
		return cJSON_ParseWithLengthOpts(body, len, end, 0);
	pthread_once(&g_prefix_once, prefix_init);
	size_t pl = strlen(g_prefix), small = len, off = 0;
	for (size_t i = 0; i < n; i++)
		small -= s[i].n;
	char *text = xmalloc(small + n * (pl + 24) + 1), *w = text;
	for (size_t i = 0; i < n; i++) {
		memcpy(w, body + off, s[i].at - off);
		w += s[i].at - off;
		s[i].mark = (size_t)(w - text);
		w += sprintf(w, "%s%zu", g_prefix, i);
		off = s[i].at + s[i].n;
	}
	memcpy(w, body + off, len - off);
	w += len - off;
	*w = 0;
	const char *tend = NULL;
	cJSON *j = cJSON_ParseWithLengthOpts(text, (size_t)(w - text), &tend, 0);
	bool ok = j != NULL;
	/* a marker after the end of the value cJSON read (trailing bytes,
	 * which cJSON ignores) is not in the tree: cJSON's way */
	for (size_t i = 0; ok && i < n; i++)
		ok = s[i].mark < (size_t)(tend - text);
	ok = ok && claim_markers(j, s, n, pl);
	for (size_t i = 0; ok && i < n; i++)
		ok = s[i].item != NULL;
	free(text);
	if (!ok) {
		cJSON_Delete(j);
		free(s);
		return cJSON_ParseWithLengthOpts(body, len, end, 0);
	}
	/* A string that is most of the body takes the body's memory (moved to
	 * its start, warm already); the others are copied. cJSON allocates with
	 * malloc (kapi-server sets no hooks), so the tree may free it. */
	size_t whole = n;
	for (size_t i = 0; i < n; i++)
		if (s[i].n >= len / 2)
			whole = i;
	for (size_t i = 0; i < n; i++) {
		if (i == whole)
			continue;
		char *v = xmalloc(s[i].n + 1);
		memcpy(v, body + s[i].at, s[i].n);
		v[s[i].n] = 0;
		cJSON_free(s[i].item->valuestring);
		s[i].item->valuestring = v;
	}
	if (whole < n) {
		char *v = b->p;
		memmove(v, v + s[whole].at, s[whole].n);
		v[s[whole].n] = 0;
		b->p = NULL;
		b->len = b->cap = 0;
		cJSON_free(s[whole].item->valuestring);
		s[whole].item->valuestring = xrealloc(v, s[whole].n + 1);
	}
	free(s);
	__atomic_add_fetch(&g_parsed, n, __ATOMIC_RELAXED);
	if (end)
		*end = NULL;
	return j;
}

/* ---- printing ------------------------------------------------------------- */

static bool is_big(const cJSON *n)
{
	return cJSON_IsString(n) && n->valuestring && strnlen(n->valuestring, BIG_MIN) == BIG_MIN;
}

/* The bytes of the subtree's long strings, 0 when it has none. */
static size_t big_bytes(const cJSON *n)
{
	if (is_big(n))
		return strlen(n->valuestring);
	size_t t = 0;
	if (cJSON_IsObject(n) || cJSON_IsArray(n))
		for (const cJSON *c = n->child; c; c = c->next)
			t += big_bytes(c);
	return t;
}

/* Copy the n bytes of s to dst if cJSON would print them as they are: no
 * quote, backslash or control byte (what print_string_ptr escapes); false
 * (dst partly written) if not. One pass: 32 bytes at a time with SSE2 (every
 * x86-64), else eight at a time (the bytes-below-0x20 and has-byte tests of
 * "Bit Twiddling Hacks", exact as a yes/no). */
static bool copy_clean(char *dst, const char *s, size_t n)
{
	size_t i = 0;

#ifdef __SSE2__
	const __m128i q16 = _mm_set1_epi8('"'), b16 = _mm_set1_epi8('\\');
	const __m128i c16 = _mm_set1_epi8(0x1f);
	for (; i + 32 <= n; i += 32) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		__m128i y = _mm_loadu_si128((const __m128i *)(const void *)(s + i + 16));
		/* max(x, 0x1f) == 0x1f: x <= 0x1f unsigned */
		__m128i bad = _mm_or_si128(
			_mm_or_si128(_mm_cmpeq_epi8(x, q16), _mm_cmpeq_epi8(x, b16)),
			_mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(x, c16), c16),
			             _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(y, q16),
			                                       _mm_cmpeq_epi8(y, b16)),
			                          _mm_cmpeq_epi8(_mm_max_epu8(y, c16), c16))));
		if (_mm_movemask_epi8(bad))
			return false;
		_mm_storeu_si128((__m128i *)(void *)(dst + i), x);
		_mm_storeu_si128((__m128i *)(void *)(dst + i + 16), y);
	}
#else
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	const uint64_t quote = ones * '"', bslash = ones * '\\', space = ones * 0x20;
	for (; i + 32 <= n; i += 32) {
		uint64_t x[4], t = 0;
		memcpy(x, s + i, sizeof x);
		for (int k = 0; k < 4; k++) {
			uint64_t q = x[k] ^ quote, b = x[k] ^ bslash;
			t |= ((q - ones) & ~q) | ((b - ones) & ~b) | ((x[k] - space) & ~x[k]);
		}
		if (t & highs)
			return false;
		memcpy(dst + i, x, sizeof x);
	}
#endif
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == '"' || c == '\\')
			return false;
		dst[i] = (char)c;
	}
	return true;
}

static void add_printed(struct buf *b, const cJSON *n)
{
	char *t = cJSON_PrintUnformatted(n);
	if (!t) {
		fputs("kapi-server: out of memory\n", stderr);
		abort();
	}
	buf_adds(b, t);
	free(t);
}

static void print_node(struct buf *b, const cJSON *n)
{
	if (is_big(n)) {
		size_t len = strlen(n->valuestring);
		buf_reserve(b, len + 2);
		char *w = b->p + b->len;
		if (!copy_clean(w + 1, n->valuestring, len)) {
			add_printed(b, n);
			return;
		}
		w[0] = '"';
		w[len + 1] = '"';
		b->len += len + 2;
		b->p[b->len] = 0;
		__atomic_add_fetch(&g_printed, 1, __ATOMIC_RELAXED);
		return;
	}
	if (!(cJSON_IsObject(n) || cJSON_IsArray(n)) || !big_bytes(n)) {
		add_printed(b, n);
		return;
	}
	bool obj = cJSON_IsObject(n);
	buf_add(b, obj ? "{" : "[", 1);
	for (const cJSON *c = n->child; c; c = c->next) {
		if (obj) {
			cJSON *k = cJSON_CreateStringReference(c->string);
			add_printed(b, k);
			cJSON_Delete(k);
			buf_add(b, ":", 1);
		}
		print_node(b, c);
		if (c->next)
			buf_add(b, ",", 1);
	}
	buf_add(b, obj ? "}" : "]", 1);
}

char *json_print(const cJSON *obj, size_t *len)
{
	size_t big = big_bytes(obj);
	if (!big) {
		char *t = cJSON_PrintUnformatted(obj);
		if (!t) {
			fputs("kapi-server: out of memory\n", stderr);
			abort();
		}
		*len = strlen(t);
		return t;
	}
	struct buf b = {0};
	buf_reserve(&b, big + 4096);
	print_node(&b, obj);
	return buf_take(&b, len);
}
