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

#endif
