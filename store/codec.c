/*
 * codec.c — chunk blobs: codec byte + payload (docs/format.md "Chunk blob").
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>

#include "codec.h"
#include "kvsplit.h"
#include "kvsplit/backend.h"

size_t kvs__blob_bound(size_t raw_len)
{
	if (raw_len > (size_t)LZ4_MAX_INPUT_SIZE)
		return 0;
	return 1 + (size_t)LZ4_compressBound((int)raw_len);
}

size_t kvs__blob_encode(uint8_t *dst, size_t cap, const uint8_t *src, size_t len, int accel)
{
	int n = 0;

	/* Full-bound capacity keeps lz4 on its fast (unlimited) path; the block
	 * is kept only when it is strictly smaller than the raw bytes. */
	if (len > 1 && cap > 1)
		n = LZ4_compress_fast((const char *)src, (char *)dst + 1, (int)len,
		                      (int)(cap - 1 > (size_t)INT32_MAX ? INT32_MAX : cap - 1),
		                      accel < 1 ? 1 : accel);
	if (n > 0 && (size_t)n < len) {
		dst[0] = KVS__CODEC_LZ4;
		return 1 + (size_t)n;
	}
	dst[0] = KVS__CODEC_RAW;
	if (len)
		memcpy(dst + 1, src, len);
	return 1 + len;
}

/*
 * The incompressibility probe (docs/format.md "Chunk blob"): lz4 over
 * PROBE_N slices of PROBE_LEN bytes spread evenly over the chunk, from the
 * first to the last byte; as soon as one slice shrinks, the chunk is worth
 * compressing whole. Only a chunk none of whose slices lz4 can shorten by
 * a single byte is stored raw without compressing it all. A compressible
 * chunk pays one slice (under 1% of a 64 KiB chunk); an incompressible one
 * PROBE_N slices instead of the whole chunk. The state is the thread's
 * scratch (LZ4_resetStream_fast: no 16 KiB memset per slice).
 */
#define PROBE_MIN (32u << 10)
#define PROBE_LEN 512u
#define PROBE_N 8u

size_t kvs__blob_scratch_size(size_t raw_max)
{
	size_t b = kvs__blob_bound(raw_max);

	return b ? b + sizeof(LZ4_stream_t) : 0;
}

void kvs__blob_scratch_init(uint8_t *scratch)
{
	LZ4_initStream(scratch, sizeof(LZ4_stream_t));
}

static int incompressible(LZ4_stream_t *state, char *dst, const uint8_t *src, size_t len, int accel)
{
	for (unsigned i = 0; i < PROBE_N; i++) {
		size_t off = (len - PROBE_LEN) * i / (PROBE_N - 1);
		int n;
		LZ4_resetStream_fast(state);   /* a new stream: no dictionary, no memset */
		n = LZ4_compress_fast_continue(state, (const char *)src + off, dst, (int)PROBE_LEN,
		                               LZ4_compressBound((int)PROBE_LEN), accel);
		if (n > 0 && (size_t)n < PROBE_LEN)
			return 0;
	}
	return 1;
}

size_t kvs__blob_encode_new(uint8_t **out, uint8_t *scratch, const uint8_t *src, size_t len,
                            int accel)
{
	void *state = scratch;   /* the lz4 state first (malloc's alignment), then the block */
	uint8_t *blk = scratch + sizeof(LZ4_stream_t);
	size_t cap = kvs__blob_bound(len);
	int n = 0;

	accel = accel < 1 ? 1 : accel;
	/* otherwise as kvs__blob_encode: same call, same capacity, same block */
	if (len > 1 && cap > 1 && (len < PROBE_MIN || !incompressible(state, (char *)blk, src, len,
	                                                                 accel)))
		n = LZ4_compress_fast((const char *)src, (char *)blk + 1, (int)len,
		                      (int)(cap - 1 > (size_t)INT32_MAX ? INT32_MAX : cap - 1), accel);
	if (n > 0 && (size_t)n < len) {
		if (!(*out = malloc(1 + (size_t)n)))
			return 0;
		(*out)[0] = KVS__CODEC_LZ4;
		memcpy(*out + 1, blk + 1, (size_t)n);
		return 1 + (size_t)n;
	}
	if (!(*out = malloc(1 + len)))
		return 0;
	(*out)[0] = KVS__CODEC_RAW;
	if (len)
		memcpy(*out + 1, src, len);
	return 1 + len;
}

int kvs__blob_decode(uint8_t *dst, size_t raw_len, const uint8_t *blob, size_t blob_len)
{
	int n;

	if (blob_len < 1)
		return kvs_error_set(KVS_ECORRUPT, "empty chunk blob");
	switch (blob[0]) {
	case KVS__CODEC_RAW:
		if (blob_len - 1 != raw_len)
			return kvs_error_set(KVS_ECORRUPT, "raw chunk blob of %zu bytes, expected %zu",
			                     blob_len - 1, raw_len);
		if (raw_len)
			memcpy(dst, blob + 1, raw_len);
		return 0;
	case KVS__CODEC_LZ4:
		if (raw_len > (size_t)LZ4_MAX_INPUT_SIZE || blob_len - 1 > (size_t)INT32_MAX)
			return kvs_error_set(KVS_ECORRUPT, "lz4 chunk blob too large");
		n = LZ4_decompress_safe((const char *)blob + 1, (char *)dst, (int)(blob_len - 1),
		                        (int)raw_len);
		if (n < 0 || (size_t)n != raw_len)
			return kvs_error_set(KVS_ECORRUPT,
			                     "lz4 chunk blob does not decompress to %zu bytes", raw_len);
		return 0;
	default:
		return kvs_error_set(KVS_ECORRUPT, "unknown chunk codec %u", blob[0]);
	}
}

/* ---- many blobs at once ------------------------------------------------- */

typedef struct bpool {
	kvs__bjob *jobs;
	size_t n;
	size_t next;          /* atomic */
	int accel;
	int failed;           /* atomic */
} bpool;

static void *encode_some(void *arg)
{
	bpool *pl = arg;

	for (;;) {
		size_t i = __atomic_fetch_add(&pl->next, 1, __ATOMIC_RELAXED), bound;
		kvs__bjob *j;
		if (i >= pl->n)
			return NULL;
		j = &pl->jobs[i];
		bound = kvs__blob_bound(j->len);
		if (!(j->blob = malloc(bound ? bound : 1))) {
			__atomic_store_n(&pl->failed, 1, __ATOMIC_RELAXED);
			continue;
		}
		j->blen = (uint32_t)kvs__blob_encode(j->blob, bound, j->p, j->len, pl->accel);
		if (j->blen < bound / 2) {   /* give back what lz4 did not need */
			uint8_t *b = realloc(j->blob, j->blen);
			if (b)
				j->blob = b;
		}
	}
}

int kvs__blob_encode_all(kvs__bjob *jobs, size_t n, unsigned int workers, int accel)
{
	pthread_t th[8];
	size_t nt = 0, want = workers < 1 ? 1 : workers > 8 ? 8 : workers;
	bpool pl = { jobs, n, 0, accel, 0 };

	if (want > n)
		want = n ? n : 1;
	for (; nt + 1 < want; nt++)
		if (pthread_create(&th[nt], NULL, encode_some, &pl) != 0)
			break;
	encode_some(&pl);
	for (size_t i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	return pl.failed ? kvs_error_set(KVS_ENOMEM, "out of memory compressing") : 0;
}
