/*
 * codec.h — chunk blobs (docs/format.md "Chunk blob"): one codec byte
 * followed by the payload. Codec 0 = raw bytes, 1 = one lz4 block. A chunk is
 * stored raw whenever lz4 does not make it strictly smaller.
 */
#ifndef KVS_CODEC_H
#define KVS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define KVS__CODEC_RAW 0
#define KVS__CODEC_LZ4 1

/* Largest blob a raw chunk of `raw_len` bytes can become (0 if too large). */
size_t kvs__blob_bound(size_t raw_len);

/*
 * Encode `len` raw bytes into `dst` (capacity at least kvs__blob_bound(len)).
 * Returns the blob length (>= 1). Never fails for len <= INT32_MAX / 2.
 */
size_t kvs__blob_encode(uint8_t *dst, size_t cap, const uint8_t *src, size_t len, int accel);

/*
 * A thread's scratch for kvs__blob_encode_new: kvs__blob_scratch_size(the
 * largest chunk) bytes of malloc, set up once by kvs__blob_scratch_init and
 * reused from chunk to chunk, so it stays warm.
 */
size_t kvs__blob_scratch_size(size_t raw_max);
void kvs__blob_scratch_init(uint8_t *scratch);

/*
 * Encode `len` bytes into a new allocation of exactly the blob's size. A
 * chunk of 32 KiB or more first meets a cheap incompressibility probe
 * (codec.c): when none of its sampled slices shrinks it is stored raw
 * without compressing it whole; otherwise the bytes are those
 * kvs__blob_encode gives. A raw blob is copied from `src` once. The blob
 * length, or 0 when out of memory (*out NULL).
 */
size_t kvs__blob_encode_new(uint8_t **out, uint8_t *scratch, const uint8_t *src, size_t len,
                            int accel);

/*
 * Decode a blob into exactly `raw_len` bytes at `dst`. Uses only
 * LZ4_decompress_safe. 0, or KVS_ECORRUPT (unknown codec, malformed lz4,
 * size mismatch) with a generic detail the caller should overwrite with
 * names (key, segment, chunk).
 */
int kvs__blob_decode(uint8_t *dst, size_t raw_len, const uint8_t *blob, size_t blob_len);

/* One blob to encode (kvs__blob_encode_all): `p`/`len` in, `blob` (malloc,
 * the caller frees) and `blen` out. */
typedef struct kvs__bjob {
	const uint8_t *p;
	size_t len;
	uint8_t *blob;
	uint32_t blen;
} kvs__bjob;

/*
 * Encode every job on up to `workers` threads (the caller's included; at
 * most 8). 0, or KVS_ENOMEM (the blobs made are still set: free them).
 */
int kvs__blob_encode_all(kvs__bjob *jobs, size_t n, unsigned int workers, int accel);

#endif
