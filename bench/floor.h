/*
 * floor.h — the LZ4 floor every benchmark compares kvsplit with, measured
 * one way, in one place (included by each bench/bench-*.c).
 *
 * The brief's floor is the work itself: a put should cost close to `lz4 -1`
 * on the same bytes, a get close to `lz4 -d`. Here that is
 * LZ4_compress_default and LZ4_decompress_safe over the value in 64 KiB
 * blocks (the library's average chunk, which is what it compresses), timed
 * WARM: both output buffers are written before any timing (first-touch page
 * faults of a fresh 64 MiB buffer cost more than decompressing it, and are
 * not the floor), one untimed pass warms caches and the CPU clock, then the
 * best of BENCH_FLOOR_RUNS timed passes is kept. A cold, single pass once
 * printed a decompress floor of 0.180 s beside a compress floor of 0.103 s,
 * and a get "0.83x the decompress floor". The round trip is checked against
 * the input, so a broken floor cannot pass unnoticed.
 *
 * Header-only (static inline): each bench is one .c file.
 */
#ifndef KVS_BENCH_FLOOR_H
#define KVS_BENCH_FLOOR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lz4.h>

#define BENCH_FLOOR_BLOCK (64u * 1024u)
#define BENCH_FLOOR_RUNS 5

typedef struct bench_floor {
	size_t bytes;        /* input length */
	size_t stored;       /* compressed length (sum over blocks) */
	double compress_s;   /* best of BENCH_FLOOR_RUNS, after a warm-up pass */
	double decompress_s; /* likewise */
	int ok;              /* the round trip gave back the input */
} bench_floor;

static inline double bench_floor_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Measure the floor of `n` bytes at `data`. 0, or -1 if out of memory. */
static inline int bench_floor_measure(bench_floor *out, const void *data, size_t n)
{
	const char *d = data;
	size_t nb = n ? (n + BENCH_FLOOR_BLOCK - 1) / BENCH_FLOOR_BLOCK : 0;
	int bound = LZ4_compressBound((int)BENCH_FLOOR_BLOCK);
	char *c = malloc((size_t)bound * (nb ? nb : 1)), *r = malloc(n ? n : 1);
	int *cl = malloc((nb ? nb : 1) * sizeof(int));

	memset(out, 0, sizeof(*out));
	if (!c || !r || !cl) {
		free(c);
		free(r);
		free(cl);
		return -1;
	}
	/* fault every page of both outputs in before timing */
	memset(c, 0, (size_t)bound * (nb ? nb : 1));
	memset(r, 0, n ? n : 1);
	out->bytes = n;
	out->compress_s = out->decompress_s = 1e30;
	for (int run = 0; run <= BENCH_FLOOR_RUNS; run++) { /* run 0: warm-up, untimed */
		double t0 = bench_floor_now();
		size_t stored = 0;
		for (size_t i = 0; i < nb; i++) {
			size_t len = n - i * BENCH_FLOOR_BLOCK < BENCH_FLOOR_BLOCK ? n - i * BENCH_FLOOR_BLOCK
			                                                           : BENCH_FLOOR_BLOCK;
			cl[i] = LZ4_compress_default(d + i * BENCH_FLOOR_BLOCK, c + i * (size_t)bound,
			                             (int)len, bound);
			stored += (size_t)cl[i];
		}
		double tc = bench_floor_now() - t0;
		t0 = bench_floor_now();
		for (size_t i = 0; i < nb; i++) {
			size_t len = n - i * BENCH_FLOOR_BLOCK < BENCH_FLOOR_BLOCK ? n - i * BENCH_FLOOR_BLOCK
			                                                           : BENCH_FLOOR_BLOCK;
			LZ4_decompress_safe(c + i * (size_t)bound, r + i * BENCH_FLOOR_BLOCK, cl[i], (int)len);
		}
		double td = bench_floor_now() - t0;
		out->stored = stored;
		if (run == 0)
			continue;
		if (tc < out->compress_s)
			out->compress_s = tc;
		if (td < out->decompress_s)
			out->decompress_s = td;
	}
	out->ok = n == 0 || memcmp(r, d, n) == 0;
	free(c);
	free(r);
	free(cl);
	return 0;
}

/* One line: "lz4 floor <label> <MiB>: compress ... decompress ..." */
static inline void bench_floor_print(const char *label, const bench_floor *f)
{
	double mib = (double)f->bytes / 1048576.0;

	printf("lz4 floor %s %.0f MiB (64 KiB blocks, warm, best of %d): compress %.1f ms "
	       "(%.0f MB/s, ratio %.3f), decompress %.1f ms (%.0f MB/s)%s\n",
	       label, mib, BENCH_FLOOR_RUNS, f->compress_s * 1e3, (double)f->bytes / f->compress_s / 1e6,
	       f->bytes ? (double)f->stored / (double)f->bytes : 0.0, f->decompress_s * 1e3,
	       (double)f->bytes / f->decompress_s / 1e6, f->ok ? "" : " ROUND TRIP FAILED");
}

#endif
