/*
 * test_codec.c — suite "codec": the put's blob encoder (kvs__blob_encode_new)
 * gives the bytes of kvs__blob_encode for compressible and incompressible
 * chunks, and its incompressibility probe stores raw exactly the chunks
 * none of whose sampled slices shrink (docs/format.md "Chunk blob"): a
 * chunk is compressed whole as soon as one slice does, and the probe skips
 * lz4 only where the samples are incompressible.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "codec.h"
#include "support/fixture.h"

#define KIB 1024u

static uint8_t *scratch_for(size_t max)
{
	uint8_t *s = malloc(kvs__blob_scratch_size(max));
	cr_assert_not_null(s);
	kvs__blob_scratch_init(s);
	return s;
}

/* encode_new == encode, byte for byte. */
static void same_as_encode(const uint8_t *d, size_t n, int want_codec)
{
	uint8_t *sc = scratch_for(n), *a = malloc(kvs__blob_bound(n)), *b = NULL;
	size_t la, lb;

	cr_assert_not_null(a);
	la = kvs__blob_encode(a, kvs__blob_bound(n), d, n, 1);
	lb = kvs__blob_encode_new(&b, sc, d, n, 1);
	cr_assert_not_null(b);
	cr_assert_eq(la, lb, "%zu bytes: blob %zu vs %zu", n, la, lb);
	cr_assert(memcmp(a, b, la) == 0, "%zu bytes: blobs differ", n);
	cr_assert(want_codec < 0 || b[0] == want_codec, "%zu bytes: codec %u", n, b[0]);
	free(a);
	free(b);
	free(sc);
}

Test(codec, encode_new_gives_the_bytes_of_encode)
{
	size_t sizes[] = { 1, 2, 100, 4 * KIB, 32 * KIB - 1, 32 * KIB, 64 * KIB + 7, 256 * KIB };
	uint8_t *d = malloc(256 * KIB);

	cr_assert_not_null(d);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		fx_json((char *)d, sizes[i], i);
		same_as_encode(d, sizes[i], sizes[i] < 4 * KIB ? -1 : 1);
		fx_random(d, sizes[i], i);
		same_as_encode(d, sizes[i], sizes[i] < 2 ? -1 : 0);
	}
	free(d);
}

/* Random bytes except `run` zeros at `at`. */
static uint8_t *random_with_zeros(size_t n, size_t at, size_t run)
{
	uint8_t *d = malloc(n);
	cr_assert_not_null(d);
	fx_random(d, n, 99);
	memset(d + at, 0, run);
	return d;
}

/*
 * 64 KiB of random bytes with a 4 KiB run of zeros between two sampled
 * slices: lz4 would save about 4 KiB, the probe sees only random slices,
 * so the chunk is stored raw (the probe is what decided). The same run over
 * the last slice is seen, and the chunk is compressed.
 */
Test(codec, probe_stores_raw_only_when_every_slice_is_incompressible)
{
	size_t n = 64 * KIB;
	uint8_t *sc = scratch_for(n), *blob = NULL, *ref = malloc(kvs__blob_bound(n));
	uint8_t *between = random_with_zeros(n, 5 * KIB, 3 * KIB);   /* slices at 0 and ~9 KiB */
	uint8_t *on_last = random_with_zeros(n, n - 4 * KIB, 4 * KIB);
	size_t l;

	cr_assert_not_null(ref);
	cr_assert_eq(kvs__blob_encode(ref, kvs__blob_bound(n), between, n, 1) < n, 1,
	             "lz4 shrinks the chunk with a run of zeros");
	cr_assert_eq(ref[0], 1);
	l = kvs__blob_encode_new(&blob, sc, between, n, 1);
	cr_assert_eq(blob[0], 0, "probe: codec %u, want raw", blob[0]);
	cr_assert_eq(l, n + 1);
	cr_assert(memcmp(blob + 1, between, n) == 0);
	free(blob);

	l = kvs__blob_encode_new(&blob, sc, on_last, n, 1);
	cr_assert_eq(blob[0], 1, "a compressible last slice: codec %u, want lz4", blob[0]);
	cr_assert_eq(kvs__blob_encode(ref, kvs__blob_bound(n), on_last, n, 1), l);
	cr_assert(memcmp(ref, blob, l) == 0);
	free(blob);
	free(between);
	free(on_last);
	free(ref);
	free(sc);
}
