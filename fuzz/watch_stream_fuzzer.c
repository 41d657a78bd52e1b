/*
 * watch_stream_fuzzer.c — a watch response body as the Kubernetes client
 * receives it: pieces of any size (the write callbacks curl makes out of
 * the chunked transfer) fed to the stream's line framer (kube/http.c
 * kvs__lines_*), each line decoded as kvs_kube_watch_next does
 * (kube/client.c kvs__kube_watch_decode) and, like the ConfigMap backend's
 * watch (store/configmap/configmap.c), turned into an object.
 *
 * Input: byte 0 seeds the split points and byte 1 picks the line cap
 * (small caps reach the overflow path), the rest is the body. Properties:
 *
 *  - framing does not depend on where the body was split: the lines (and
 *    whether the stream failed on an overlong line) equal those of a
 *    reference splitter over the whole body (LF ends a line, one CR before
 *    it is dropped, blank lines skipped, a trailing partial line kept back,
 *    a line over the cap ends the stream);
 *  - every line decodes or fails with a KVS code and nothing left behind;
 *    a decoded event has a type, an object and a resourceVersion shorter
 *    than KVS_VER_MAX; ADDED/MODIFIED/DELETED objects that convert give
 *    sane kvs_objects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvsplit.h"
#include "kvsplit/kube.h"
#include "kube/client.h"
#include "kube/http.h"
#include "kube/json.h"

#define FAIL() fail(__LINE__)
static void fail(int line)
{
	fprintf(stderr, "watch_stream_fuzzer.c:%d: property violated (last error: %s)\n", line,
	        kvs_error_last());
	abort();
}

struct lines {
	char **p;
	size_t *n;
	size_t count, cap;
	int failed;
};

static void add(struct lines *ls, const char *p, size_t n)
{
	if (ls->count == ls->cap) {
		size_t nc = ls->cap ? ls->cap * 2 : 16;
		char **np = realloc(ls->p, nc * sizeof(*np));
		size_t *nn;
		if (!np)
			abort();
		ls->p = np;
		if (!(nn = realloc(ls->n, nc * sizeof(*nn))))
			abort();
		ls->n = nn;
		ls->cap = nc;
	}
	if (!(ls->p[ls->count] = malloc(n + 1)))
		abort();
	memcpy(ls->p[ls->count], p, n);
	ls->p[ls->count][n] = '\0';
	ls->n[ls->count++] = n;
}

static void lines_free(struct lines *ls)
{
	for (size_t i = 0; i < ls->count; i++)
		free(ls->p[i]);
	free(ls->p);
	free(ls->n);
}

/* The reference: the framing rules applied to the whole body at once. */
static void reference(struct lines *ls, const char *p, size_t n, size_t cap)
{
	size_t off = 0;

	while (off < n) {
		const char *nl = memchr(p + off, '\n', n - off);
		size_t len = nl ? (size_t)(nl - (p + off)) : n - off;

		if (len > cap) {
			ls->failed = 1;
			return;
		}
		if (!nl)
			return;
		if (len && p[off + len - 1] == '\r')
			len--;
		if (len)
			add(ls, p + off, len);
		off = (size_t)(nl - p) + 1;
	}
}

/* The framer, fed in pieces whose sizes come from a small PRNG. */
static void framed(struct lines *ls, const char *p, size_t n, size_t cap, uint32_t seed)
{
	kvs__lines L;
	size_t off = 0;
	char *line;
	size_t len;

	kvs__lines_init(&L, cap);
	while (off < n) {
		size_t piece;
		int rc;

		seed = seed * 1103515245u + 12345u;
		switch ((seed >> 16) & 3) {
		case 0: piece = 1; break;
		case 1: piece = (seed >> 18) % 7; break;        /* zero-length pieces too */
		case 2: piece = (seed >> 18) % 64; break;
		default: piece = (seed >> 18) % 4096; break;
		}
		if (piece > n - off)
			piece = n - off;
		rc = kvs__lines_feed(&L, p + off, piece);
		off += piece;
		while (kvs__lines_pop(&L, &line, &len)) {
			if (!line || line[len] != '\0' || len == 0)
				FAIL();
			add(ls, line, len);
			free(line);
		}
		if (rc == KVS_EIO) {
			ls->failed = 1;
			break;
		}
		if (rc != 0)
			FAIL();
	}
	kvs__lines_clear(&L);
}

static void check_object(const kvs_object *o)
{
	uint64_t sum = 0;

	if (!o || !o->name || !o->name[0] || !o->resource_version || !o->uid ||
	    strlen(o->resource_version) >= KVS_VER_MAX)
		FAIL();
	for (size_t i = 0; i < o->ndata; i++) {
		if (!o->data[i].key || (o->data[i].len && !o->data[i].data))
			FAIL();
		sum += o->data[i].len;
	}
	if (o->ndata && sum != o->data_bytes)
		FAIL();
}

static void decode(const char *line, size_t len)
{
	kvs_kube_event ev;
	kvs_kube_status last;
	int rc;

	memset(&last, 0, sizeof(last));
	rc = kvs__kube_watch_decode(&ev, &last, "fuzz watch", line, len);
	if (rc < 0) {
		if (ev.object || ev.type || ev.resource_version || !kvs_error_last()[0])
			FAIL();
		return;
	}
	if (rc != 0 || !ev.object || !ev.type || !ev.resource_version ||
	    strlen(ev.resource_version) >= KVS_VER_MAX)
		FAIL();
	if (ev.type == KVS_KUBE_BOOKMARK) {
		if (!ev.resource_version[0])
			FAIL();
	} else {
		kvs_object *o = NULL;
		if (kvs__kube_object_from_json(&o, ev.object, 0, "fuzz watch") == 0)
			check_object(o);
		else if (o)
			FAIL();
		kvs_object_free(o);
	}
	kvs_kube_event_clear(&ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lines want = { 0 }, got = { 0 };
	const char *p;
	size_t n, cap;

	if (size < 2)
		return 0;
	p = (const char *)data + 2;
	n = size - 2;
	/* small caps to reach the overflow path, or the real one */
	cap = data[1] == 0xff ? KVS__KUBE_MAX_EVENT : (size_t)data[1] * 4 + 1;
	reference(&want, p, n, cap);
	framed(&got, p, n, cap, data[0] * 2654435761u);
	if (got.count != want.count || got.failed != want.failed)
		FAIL();
	for (size_t i = 0; i < want.count; i++)
		if (got.n[i] != want.n[i] || memcmp(got.p[i], want.p[i], want.n[i]) != 0)
			FAIL();
	for (size_t i = 0; i < got.count; i++)
		decode(got.p[i], got.n[i]);
	lines_free(&want);
	lines_free(&got);
	return 0;
}
