/* Small helpers: growable buffers, time, ids, randomness, base64, patches. */
#include "kapi.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The test server is a test tool: running out of memory is fatal. */
void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fputs("kapi-server: out of memory\n", stderr);
		abort();
	}
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) {
		fputs("kapi-server: out of memory\n", stderr);
		abort();
	}
	return q;
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = xmalloc(n);
	memcpy(p, s, n);
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		fputs("kapi-server: out of memory\n", stderr);
		abort();
	}
	return s;
}

static void buf_grow(struct buf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

void buf_reserve(struct buf *b, size_t n)
{
	if (b->len + n + 1 <= b->cap)
		return;
	b->p = xrealloc(b->p, b->len + n + 1);
	b->cap = b->len + n + 1;
}

void buf_add(struct buf *b, const void *data, size_t n)
{
	buf_grow(b, n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = 0;
}

void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_grow(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

char *buf_take(struct buf *b, size_t *len)
{
	buf_grow(b, 0);
	char *p = b->p;
	if (len)
		*len = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void now_rfc3339(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t rfc3339_age(const char *ts)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (!ts || !strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm))
		return -1;
	return (int64_t)(time(NULL) - timegm(&tm));
}

/* k8s.io/apimachinery/pkg/util/duration.HumanDuration, which kubectl shows as AGE. */
void human_duration(int64_t s, char out[32])
{
	if (s < -1) {
		snprintf(out, 32, "<invalid>");
		return;
	}
	if (s < 0)
		s = 0;
	int64_t m = s / 60, h = s / 3600;
	if (s < 120)
		snprintf(out, 32, "%llds", (long long)s);
	else if (m < 10)
		s % 60 ? snprintf(out, 32, "%lldm%llds", (long long)m, (long long)(s % 60))
		       : snprintf(out, 32, "%lldm", (long long)m);
	else if (m < 180)
		snprintf(out, 32, "%lldm", (long long)m);
	else if (h < 8)
		m % 60 ? snprintf(out, 32, "%lldh%lldm", (long long)h, (long long)(m % 60))
		       : snprintf(out, 32, "%lldh", (long long)h);
	else if (h < 48)
		snprintf(out, 32, "%lldh", (long long)h);
	else if (h < 24 * 8)
		h % 24 ? snprintf(out, 32, "%lldd%lldh", (long long)(h / 24), (long long)(h % 24))
		       : snprintf(out, 32, "%lldd", (long long)(h / 24));
	else if (h < 24 * 365 * 2)
		snprintf(out, 32, "%lldd", (long long)(h / 24));
	else if (h < 24 * 365 * 8)
		(h / 24) % 365 ? snprintf(out, 32, "%lldy%lldd", (long long)(h / 24 / 365), (long long)((h / 24) % 365))
		               : snprintf(out, 32, "%lldy", (long long)(h / 24 / 365));
	else
		snprintf(out, 32, "%lldy", (long long)(h / 24 / 365));
}

void uuid_v4(char out[37])
{
	unsigned char b[16];
	if (RAND_bytes(b, sizeof b) != 1) {
		for (size_t i = 0; i < sizeof b; i++)
			b[i] = (unsigned char)rng_next();
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
}

/* Fault decisions come from one seeded generator so a run can be replayed
 * with --seed (modulo thread interleaving). */
static pthread_mutex_t rng_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

void rng_seed(uint64_t seed)
{
	pthread_mutex_lock(&rng_lock);
	rng_state = seed ? seed : 0x9e3779b97f4a7c15ull;
	pthread_mutex_unlock(&rng_lock);
}

uint64_t rng_next(void)
{
	pthread_mutex_lock(&rng_lock);
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	pthread_mutex_unlock(&rng_lock);
	return x * 0x2545f4914f6cdd1dull;
}

double rng_unit(void)
{
	return (double)(rng_next() >> 11) / 9007199254740992.0;
}

uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Whether `in` (n bytes) is already what re-encoding its decoded bytes gives:
 * whole quanta of the alphabet, then at most two '=' whose quantum leaves
 * the unused bits zero. That is what every client but a hand-made request
 * sends, so a ConfigMap's ~1.4 MB strings are checked in one strspn pass and
 * neither copied, decoded nor encoded again.
 */
/* How many of the n bytes at in, from the start, are of the alphabet (what
 * strspn(in, alphabet) says of a NUL-terminated in), sixteen at a time where
 * SSE2 is there: the alphabet is the ranges A-Z, a-z, 0-9 and '+', '/'. */
static size_t b64_alpha_span(const char *in, size_t n)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i = 0;

#ifdef __SSE2__
	const __m128i A = _mm_set1_epi8('A' - 1), Z = _mm_set1_epi8('Z' + 1);
	const __m128i a = _mm_set1_epi8('a' - 1), z = _mm_set1_epi8('z' + 1);
	const __m128i d0 = _mm_set1_epi8('/' - 1), d9 = _mm_set1_epi8('9' + 1);
	const __m128i plus = _mm_set1_epi8('+');
	for (; i + 16 <= n; i += 16) {
		/* signed compares: bytes >= 0x80 are negative and in no range;
		 * '/' is 0x2f, just below '0' */
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(in + i));
		__m128i ok = _mm_or_si128(
			_mm_or_si128(_mm_and_si128(_mm_cmpgt_epi8(x, A), _mm_cmpgt_epi8(Z, x)),
			             _mm_and_si128(_mm_cmpgt_epi8(x, a), _mm_cmpgt_epi8(z, x))),
			_mm_or_si128(_mm_and_si128(_mm_cmpgt_epi8(x, d0), _mm_cmpgt_epi8(d9, x)),
			             _mm_cmpeq_epi8(x, plus)));
		if (_mm_movemask_epi8(ok) != 0xffff)
			break;
	}
#endif
	return i + strspn(in + i, alphabet);
}

static bool b64_is_canonical(const char *in, size_t n, size_t *decoded_len)
{
	size_t pad = 0;

	if (n % 4)
		return false;
	if (n >= 1 && in[n - 1] == '=')
		pad = n >= 2 && in[n - 2] == '=' ? 2 : 1;
	if (b64_alpha_span(in, n - pad) < n - pad)
		return false;
	if ((pad == 2 && (b64_val((unsigned char)in[n - 3]) & 0x0f)) ||
	    (pad == 1 && (b64_val((unsigned char)in[n - 2]) & 0x03)))
		return false;
	*decoded_len = n / 4 * 3 - pad;
	return true;
}

/* The validation only decides acceptability the way Go's padded StdEncoding
 * does; the decoding itself is libcrypto's. */
int b64_canon(const char *in, char **canon, size_t *decoded_len, size_t *bad_at)
{
	size_t n = strlen(in), m = 0;

	*canon = NULL;
	if (b64_is_canonical(in, n, decoded_len))
		return 0;
	char *clean = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			/* padding: only in the last quantum, one or two, then the end */
			size_t pos = m % 4;
			size_t j = i + 1;
			while (j < n && (in[j] == '\r' || in[j] == '\n'))
				j++;
			bool two = pos == 2 && j < n && in[j] == '=';
			size_t k = two ? j + 1 : j;
			while (k < n && (in[k] == '\r' || in[k] == '\n'))
				k++;
			if (pos < 2 || (pos == 2 && !two) || k != n) {
				*bad_at = pos < 2 ? i : (pos == 2 && !two ? i : k);
				free(clean);
				return -1;
			}
			clean[m++] = '=';
			if (two)
				clean[m++] = '=';
			break;
		}
		if (b64_val(c) < 0) {
			*bad_at = i;
			free(clean);
			return -1;
		}
		clean[m++] = (char)c;
	}
	clean[m] = 0;
	if (m % 4) {
		*bad_at = n;
		free(clean);
		return -1;
	}
	size_t pad = (m >= 1 && clean[m - 1] == '=') + (m >= 2 && clean[m - 2] == '=');
	unsigned char *raw = xmalloc(m / 4 * 3 + 1);
	int got = m ? EVP_DecodeBlock(raw, (const unsigned char *)clean, (int)m) : 0;
	if (got < 0 || (size_t)got < pad) {
		*bad_at = 0;
		free(raw);
		free(clean);
		return -1;
	}
	size_t len = (size_t)got - pad;
	free(clean);
	*canon = b64_encode(raw, len);
	*decoded_len = len;
	free(raw);
	return 0;
}

char *b64_encode(const unsigned char *in, size_t n)
{
	char *out = xmalloc((n + 2) / 3 * 4 + 1);
	int w = n ? EVP_EncodeBlock((unsigned char *)out, in, (int)n) : 0;
	out[w < 0 ? 0 : w] = 0;
	return out;
}

unsigned char *b64_decode(const char *in, size_t *out_len)
{
	char *canon;
	size_t len, bad;
	if (b64_canon(in, &canon, &len, &bad) < 0)
		return NULL;
	const char *text = canon ? canon : in;
	size_t m = strlen(text);
	unsigned char *raw = xmalloc(m / 4 * 3 + 1);
	int got = m ? EVP_DecodeBlock(raw, (const unsigned char *)text, (int)m) : 0;
	free(canon);
	if (got < 0) {
		free(raw);
		return NULL;
	}
	*out_len = len;
	raw[len] = 0;
	return raw;
}

static void strip_directives(cJSON *o)
{
	if (!cJSON_IsObject(o))
		return;
	cJSON *c = o->child;
	while (c) {
		cJSON *next = c->next;
		if (c->string && c->string[0] == '$')
			cJSON_Delete(cJSON_DetachItemViaPointer(o, c));
		else
			strip_directives(c);
		c = next;
	}
}

/* RFC 7386. A strategic merge patch on the types served here (maps of strings,
 * no merge-keyed lists) is a merge patch once its $-directives are dropped. */
cJSON *merge_patch(cJSON *target, const cJSON *patch, bool strategic)
{
	if (!cJSON_IsObject(patch)) {
		cJSON_Delete(target);
		cJSON *r = cJSON_Duplicate(patch, 1);
		if (strategic)
			strip_directives(r);
		return r;
	}
	if (!cJSON_IsObject(target)) {
		cJSON_Delete(target);
		target = cJSON_CreateObject();
	}
	for (const cJSON *p = patch->child; p; p = p->next) {
		if (strategic && p->string[0] == '$')
			continue;
		if (cJSON_IsNull(p)) {
			cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
			continue;
		}
		cJSON *old = cJSON_DetachItemFromObjectCaseSensitive(target, p->string);
		cJSON_AddItemToObject(target, p->string, merge_patch(old, p, strategic));
	}
	return target;
}

/* JSON pointer (RFC 6901) resolution to the parent container and last token. */
static char *ptr_token(const char **pp)
{
	const char *p = *pp;
	if (*p != '/')
		return NULL;
	p++;
	struct buf b = {0};
	buf_add(&b, "", 0);
	while (*p && *p != '/') {
		if (p[0] == '~' && p[1] == '0') {
			buf_add(&b, "~", 1);
			p += 2;
		} else if (p[0] == '~' && p[1] == '1') {
			buf_add(&b, "/", 1);
			p += 2;
		} else {
			buf_add(&b, p, 1);
			p++;
		}
	}
	*pp = p;
	return buf_take(&b, NULL);
}

static cJSON *ptr_child(cJSON *c, const char *tok)
{
	if (cJSON_IsObject(c))
		return cJSON_GetObjectItemCaseSensitive(c, tok);
	if (cJSON_IsArray(c)) {
		char *end;
		long i = strtol(tok, &end, 10);
		if (*tok == 0 || *end || i < 0)
			return NULL;
		return cJSON_GetArrayItem(c, (int)i);
	}
	return NULL;
}

/* Resolve all but the last token; returns the parent and the last token. */
static cJSON *ptr_parent(cJSON *doc, const char *path, char **last)
{
	const char *p = path;
	cJSON *cur = doc;
	*last = NULL;
	if (*p == 0)
		return NULL;
	for (;;) {
		char *tok = ptr_token(&p);
		if (!tok)
			return NULL;
		if (*p == 0) {
			*last = tok;
			return cur;
		}
		cur = ptr_child(cur, tok);
		free(tok);
		if (!cur)
			return NULL;
	}
}

static cJSON *ptr_get(cJSON *doc, const char *path)
{
	char *last;
	if (*path == 0)
		return doc;
	cJSON *par = ptr_parent(doc, path, &last);
	if (!par)
		return NULL;
	cJSON *c = ptr_child(par, last);
	free(last);
	return c;
}

static cJSON *ptr_remove(cJSON *doc, const char *path)
{
	char *last;
	cJSON *par = ptr_parent(doc, path, &last);
	if (!par)
		return NULL;
	cJSON *c = ptr_child(par, last);
	free(last);
	return c ? cJSON_DetachItemViaPointer(par, c) : NULL;
}

static int ptr_add(cJSON *doc, const char *path, cJSON *val)
{
	char *last;
	cJSON *par = ptr_parent(doc, path, &last);
	if (!par)
		return -1;
	int rc = 0;
	if (cJSON_IsObject(par)) {
		cJSON_DeleteItemFromObjectCaseSensitive(par, last);
		cJSON_AddItemToObject(par, last, val);
	} else if (cJSON_IsArray(par)) {
		int n = cJSON_GetArraySize(par);
		char *end;
		long i = strcmp(last, "-") == 0 ? n : strtol(last, &end, 10);
		if (strcmp(last, "-") != 0 && (*last == 0 || *end))
			rc = -1;
		else if (i < 0 || i > n)
			rc = -1;
		else if (i == n)
			cJSON_AddItemToArray(par, val);
		else
			cJSON_InsertItemInArray(par, (int)i, val);
	} else {
		rc = -1;
	}
	free(last);
	return rc;
}

int json_patch(cJSON **doc, const cJSON *ops, const char **err)
{
	if (!cJSON_IsArray(ops)) {
		*err = "json patch must be an array of operations";
		return -1;
	}
	for (const cJSON *op = ops->child; op; op = op->next) {
		const char *o = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(op, "op"));
		const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(op, "path"));
		const char *from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(op, "from"));
		const cJSON *value = cJSON_GetObjectItemCaseSensitive(op, "value");
		if (!o || !path) {
			*err = "json patch operation is missing op or path";
			return -1;
		}
		if (strcmp(o, "test") == 0) {
			cJSON *c = ptr_get(*doc, path);
			if (!c || !value || !cJSON_Compare(c, value, 1)) {
				*err = "testing value failed";
				return -1;
			}
		} else if (strcmp(o, "remove") == 0) {
			cJSON *c = ptr_remove(*doc, path);
			if (!c) {
				*err = "unable to remove nonexistent key";
				return -1;
			}
			cJSON_Delete(c);
		} else if (strcmp(o, "add") == 0 || strcmp(o, "replace") == 0) {
			if (!value) {
				*err = "json patch operation is missing value";
				return -1;
			}
			if (*path == 0) {
				cJSON_Delete(*doc);
				*doc = cJSON_Duplicate(value, 1);
				continue;
			}
			if (o[0] == 'r') {
				cJSON *c = ptr_remove(*doc, path);
				if (!c) {
					*err = "replace operation does not apply: doc is missing key";
					return -1;
				}
				cJSON_Delete(c);
			}
			cJSON *v = cJSON_Duplicate(value, 1);
			if (ptr_add(*doc, path, v) < 0) {
				cJSON_Delete(v);
				*err = "add operation does not apply: doc is missing path";
				return -1;
			}
		} else if ((strcmp(o, "move") == 0 || strcmp(o, "copy") == 0) && from) {
			cJSON *c = o[0] == 'm' ? ptr_remove(*doc, from) : cJSON_Duplicate(ptr_get(*doc, from), 1);
			if (!c || ptr_add(*doc, path, c) < 0) {
				cJSON_Delete(c);
				*err = "move/copy operation does not apply";
				return -1;
			}
		} else {
			*err = "unexpected json patch operation";
			return -1;
		}
	}
	return 0;
}

static int cmp_items(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	return strcmp(x->string, y->string);
}

void json_sort_object(cJSON *obj)
{
	if (!cJSON_IsObject(obj) || !obj->child)
		return;
	size_t n = 0;
	for (cJSON *c = obj->child; c; c = c->next)
		n++;
	cJSON **v = xmalloc(n * sizeof *v);
	n = 0;
	for (cJSON *c = obj->child; c; c = c->next)
		v[n++] = c;
	qsort(v, n, sizeof *v, cmp_items);
	for (size_t i = 0; i < n; i++) {
		v[i]->prev = i ? v[i - 1] : v[n - 1]; /* cJSON: head->prev is the tail */
		v[i]->next = i + 1 < n ? v[i + 1] : NULL;
	}
	obj->child = v[0];
	free(v);
}
