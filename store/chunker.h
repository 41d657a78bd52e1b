/*
 * chunker.h — normalized FastCDC (Xia et al., 2016/2020): a gear rolling
 * hash, cut points skipped below `min`, a harder mask (bits(avg)+2) up to
 * `avg` and an easier one (bits(avg)-2) from `avg` to `max`. Stateless: the
 * caller hands the bytes from the current chunk start and gets the length of
 * the chunk that starts there. The parameters of the chunker that cut a
 * value are recorded in its manifest; readers never re-chunk.
 */
#ifndef KVS_CHUNKER_H
#define KVS_CHUNKER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define KVS__CDC_MIN_FLOOR 64u          /* smallest allowed chunk_min */
#define KVS__CDC_AVG_FLOOR 256u         /* smallest allowed chunk_avg */
#define KVS__CDC_MAX_CEIL (1u << 20)    /* largest allowed chunk_max */

typedef struct kvs__cdc {
	uint32_t min, avg, max;
	uint64_t mask_s;   /* used between min and avg (harder) */
	uint64_t mask_l;   /* used between avg and max (easier) */
} kvs__cdc;

/*
 * Validate parameters and derive the masks: min >= 64, avg a power of two
 * >= 256, min < avg < max <= 1 MiB. 0 or KVS_EINVAL with detail.
 */
int kvs__cdc_init(kvs__cdc *c, uint32_t min, uint32_t avg, uint32_t max);

/*
 * Length of the chunk starting at buf[0], given `len` available bytes. The
 * result is min(len, max) when no cut point is found. Callers must pass at
 * least `max` bytes unless they are at the end of the value, otherwise the
 * cut depends on how the input was split.
 */
size_t kvs__cdc_cut(const kvs__cdc *c, const uint8_t *buf, size_t len);

/*
 * Cut a whole region [buf, buf+len) the way a caller of kvs__cdc_cut that
 * starts at buf[0] and moves chunk by chunk would: while bytes remain, stop
 * when fewer than `max` are left unless `final`, else cut. The lengths go
 * to lens[] (capacity `cap`, at least len / min + 2 suffices), their count
 * to *nout; the bytes cut (the sum) are returned.
 *
 * With `threads` > 1 the region is split into that many pieces, each cut
 * speculatively from its first byte on a thread of its own while the
 * caller cuts the first piece from the true start; the true chain of cuts
 * then follows a piece's list from the first cut point both share (a cut
 * depends only on where its chunk starts, so two chains that meet once stay
 * together), and is cut serially from where it left the previous piece up
 * to that meeting point. The cuts are the serial ones exactly, whatever
 * the data (a piece the chain never meets is cut again serially: data
 * with no cut points costs what the serial cut costs). `scratch` holds
 * (threads - 1) * cap lengths.
 *
 * With `addrs` (capacity `cap`, and `ascratch` of (threads - 1) * cap when
 * threads > 1), each chunk's XXH3-128 address (kvs__addr_of) is computed
 * too, by the thread that cut it, right after the cut while its bytes are
 * still in the cache: no second pass over the window. 0, or KVS_ETOOBIG if
 * `cap` is too small.
 */
int kvs__cdc_cut_all(const kvs__cdc *c, const uint8_t *buf, size_t len, int final,
                     uint32_t *lens, uint8_t (*addrs)[16], size_t cap, size_t *nout,
                     size_t *used, unsigned threads, uint32_t *scratch,
                     uint8_t (*ascratch)[16]);

#define KVS__CDC_MAX_THREADS 8u

/*
 * The steps of kvs__cdc_cut_all, for a caller that runs the pieces on
 * threads of its own (put.c: beside the compression of the window before).
 * A piece is the chain of cuts of [buf, buf+len) from `from` (as if a chunk
 * started there) until a cut reaches `to` or the stop rule; its chunk ends
 * go to `ends` (and addresses to `addrs`, may be NULL), at most `cap`
 * (more: `overflow`, and the piece is ignored). kvs__cdc_merge then follows
 * the true chain from buf[0] through pieces [0, np) ordered by `from`
 * (joining any with `started` set): a piece with from == 0 is the true
 * chain itself. kvs__cdc_pieces: how many pieces a region of `len` bytes
 * is worth cutting in, at most `threads` (1: not worth splitting).
 */
typedef struct kvs__cdc_piece {
	const kvs__cdc *c;
	const uint8_t *buf;
	size_t len, from, to;
	int final;
	uint32_t *ends;
	uint8_t (*addrs)[16];
	size_t cap, n;
	int started, overflow;
	pthread_t th;
} kvs__cdc_piece;

void kvs__cdc_piece_init(kvs__cdc_piece *pc, const kvs__cdc *c, const uint8_t *buf, size_t len,
                         int final, size_t from, size_t to, uint32_t *ends,
                         uint8_t (*addrs)[16], size_t cap);
void kvs__cdc_piece_run(kvs__cdc_piece *pc);
int kvs__cdc_merge(const kvs__cdc *c, const uint8_t *buf, size_t len, int final,
                   kvs__cdc_piece *pcs, size_t np, uint32_t *lens, uint8_t (*addrs)[16],
                   size_t cap, size_t *nout, size_t *used);
unsigned kvs__cdc_pieces(const kvs__cdc *c, size_t len, unsigned threads);

#endif
