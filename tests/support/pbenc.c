/*
 * pbenc.c — the test-only protobuf writer of pbenc.h.
 */
#include <stdlib.h>
#include <string.h>

#include "pbenc.h"

void pbe_free(pbenc *e)
{
	free(e->p);
	e->p = NULL;
	e->n = e->cap = 0;
}

void pbe_raw(pbenc *e, const void *p, size_t n)
{
	if (e->n + n + 1 > e->cap) {
		size_t cap = e->cap ? e->cap : 256;

		while (cap < e->n + n + 1)
			cap *= 2;
		if (!(e->p = realloc(e->p, cap)))
			abort();
		e->cap = cap;
	}
	if (n)
		memcpy(e->p + e->n, p, n);
	e->n += n;
}

void pbe_varint(pbenc *e, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;

	do {
		b[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	pbe_raw(e, b, n);
}

void pbe_tag(pbenc *e, unsigned num, unsigned wt)
{
	pbe_varint(e, ((uint64_t)num << 3) | wt);
}

void pbe_uint(pbenc *e, unsigned num, uint64_t v)
{
	pbe_tag(e, num, 0);
	pbe_varint(e, v);
}

void pbe_fixed(pbenc *e, unsigned num, uint64_t v, unsigned w)
{
	uint8_t b[8];

	pbe_tag(e, num, w == 8 ? 1 : 5);
	for (unsigned i = 0; i < w; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	pbe_raw(e, b, w);
}

void pbe_bytes(pbenc *e, unsigned num, const void *p, size_t n)
{
	pbe_tag(e, num, 2);
	pbe_varint(e, n);
	pbe_raw(e, p, n);
}

void pbe_str(pbenc *e, unsigned num, const char *s)
{
	pbe_bytes(e, num, s, strlen(s));
}

void pbe_msg(pbenc *e, unsigned num, const pbenc *m)
{
	pbe_bytes(e, num, m->p, m->n);
}

void pbe_entry(pbenc *e, unsigned num, const char *key, const void *v, size_t vn)
{
	pbenc m = { 0 };

	pbe_str(&m, 1, key);
	pbe_bytes(&m, 2, v, vn);
	pbe_msg(e, num, &m);
	pbe_free(&m);
}

void pbe_time(pbenc *e, unsigned num, int64_t s, int32_t ns)
{
	pbenc m = { 0 };

	pbe_uint(&m, 1, (uint64_t)s);
	pbe_uint(&m, 2, (uint64_t)(int64_t)ns);
	pbe_msg(e, num, &m);
	pbe_free(&m);
}

void pbe_envelope(pbenc *out, const char *kind, const pbenc *raw)
{
	pbenc tm = { 0 };

	pbe_raw(out, "k8s\0", 4);
	pbe_str(&tm, 1, "v1");
	pbe_str(&tm, 2, kind);
	pbe_msg(out, 1, &tm);
	pbe_msg(out, 2, raw);
	pbe_free(&tm);
}
