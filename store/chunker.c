/*
 * chunker.c — normalized FastCDC with a 64-bit gear hash.
 *
 * The gear table is 256 values of splitmix64 from a fixed seed, so cut
 * points are a pure function of (bytes, min, avg, max). With a left-shifting
 * gear hash, bit k of the hash depends on the last k+1 bytes only, so the
 * mask bits are spread over the top 48 bits: the decision looks at a window
 * of ~48 bytes, as in the FastCDC paper.
 */
#include <pthread.h>
#include <string.h>

#include "chunker.h"
#include "names.h"
#include "kvsplit.h"
#include "kvsplit/backend.h"

static uint64_t gear[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

static void gear_init(void)
{
	uint64_t x = 0x6b7673706c697431ull; /* "kvsplit1" */

	for (int i = 0; i < 256; i++) {
		uint64_t z = (x += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		gear[i] = z ^ (z >> 31);
	}
}

/* A mask of `bits` one-bits spread evenly over bits 63..16. */
static uint64_t spread_mask(unsigned bits)
{
	uint64_t m = 0;

	for (unsigned i = 0; i < bits; i++)
		m |= 1ull << (63 - (i * 48u) / bits);
	return m;
}

int kvs__cdc_init(kvs__cdc *c, uint32_t min, uint32_t avg, uint32_t max)
{
	unsigned bits = 0;

	pthread_once(&gear_once, gear_init);
	if (avg < KVS__CDC_AVG_FLOOR || (avg & (avg - 1)) != 0)
		return kvs_error_set(KVS_EINVAL, "chunk_avg %u must be a power of two >= %u", avg,
		                     KVS__CDC_AVG_FLOOR);
	if (min < KVS__CDC_MIN_FLOOR || min >= avg)
		return kvs_error_set(KVS_EINVAL, "chunk_min %u must be >= %u and < chunk_avg %u", min,
		                     KVS__CDC_MIN_FLOOR, avg);
	if (max <= avg || max > KVS__CDC_MAX_CEIL)
		return kvs_error_set(KVS_EINVAL, "chunk_max %u must be > chunk_avg %u and <= %u", max,
		                     avg, KVS__CDC_MAX_CEIL);
	while ((1u << bits) < avg)
		bits++;
	c->min = min;
	c->avg = avg;
	c->max = max;
	c->mask_s = spread_mask(bits + 2);
	c->mask_l = spread_mask(bits - 2);
	return 0;
}

/*
 * Scan [i, end) with mask m. Four gear steps per iteration: the hash after
 * four bytes is (h << 4) + (g0 << 3) + (g1 << 2) + (g2 << 1) + g3, so the
 * loop-carried dependency is one shift and one add per four bytes, and the
 * three intermediate hashes (needed for the cut test) are computed off that
 * chain. Returns the cut (index after the byte that matched) or 0.
 */
static inline size_t scan(const uint8_t *buf, size_t *ip, size_t end, uint64_t *hp, uint64_t m)
{
	size_t i = *ip;
	uint64_t h = *hp;

	for (; i + 4 <= end; i += 4) {
		uint64_t g0 = gear[buf[i]], g1 = gear[buf[i + 1]];
		uint64_t g2 = gear[buf[i + 2]], g3 = gear[buf[i + 3]];
		uint64_t h1 = (h << 1) + g0;
		uint64_t h2 = (h1 << 1) + g1;
		uint64_t h3 = (h2 << 1) + g2;
		uint64_t h4 = (h << 4) + ((g0 << 3) + (g1 << 2)) + ((g2 << 1) + g3);
		if (__builtin_expect(!(h1 & m) | !(h2 & m) | !(h3 & m) | !(h4 & m), 0)) {
			*hp = h4;
			if (!(h1 & m)) return i + 1;
			if (!(h2 & m)) return i + 2;
			if (!(h3 & m)) return i + 3;
			return i + 4;
		}
		h = h4;
	}
	for (; i < end; i++) {
		h = (h << 1) + gear[buf[i]];
		if (!(h & m)) {
			*hp = h;
			return i + 1;
		}
	}
	*ip = i;
	*hp = h;
	return 0;
}

size_t kvs__cdc_cut(const kvs__cdc *c, const uint8_t *buf, size_t len)
{
	size_t i, n = len, normal = c->avg, cut;
	uint64_t h = 0;

	if (n <= c->min)
		return n;
	if (n > c->max)
		n = c->max;
	if (normal > n)
		normal = n;
	i = c->min;
	if ((cut = scan(buf, &i, normal, &h, c->mask_s)) != 0)
		return cut;
	if ((cut = scan(buf, &i, n, &h, c->mask_l)) != 0)
		return cut;
	return n;
}

/* ---- a whole region, on several threads -------------------------------- */

/* One speculative piece: the chain of cuts from `from` until a cut reaches
 * `to` (or the region's stop rule), as chunk ends. */
typedef struct piece {
	const kvs__cdc *c;
	const uint8_t *buf;
	size_t len, from, to;
	int final;
	uint32_t *ends;
	uint8_t (*addrs)[16];   /* each chunk's address, or NULL */
	size_t cap, n;
	int started, overflow;
	pthread_t th;
} piece;

/* The stop rule of a caller moving chunk by chunk (chunker.h). */
static int stops(const kvs__cdc *c, size_t len, size_t pos, int final)
{
	return pos >= len || (!final && len - pos < c->max);
}

static void *piece_run(void *arg)
{
	piece *pc = arg;
	size_t off = pc->from;

	while (off < pc->to && !stops(pc->c, pc->len, off, pc->final)) {
		if (pc->n == pc->cap) {
			pc->overflow = 1;
			break;
		}
		size_t cut = kvs__cdc_cut(pc->c, pc->buf + off, pc->len - off);
		if (pc->addrs)   /* while the chunk is still in the cache */
			kvs__addr_of(pc->addrs[pc->n], pc->buf + off, cut);
		off += cut;
		pc->ends[pc->n++] = (uint32_t)off;
	}
	return NULL;
}

int kvs__cdc_cut_all(const kvs__cdc *c, const uint8_t *buf, size_t len, int final,
                     uint32_t *lens, uint8_t (*addrs)[16], size_t cap, size_t *nout,
                     size_t *used, unsigned threads, uint32_t *scratch,
                     uint8_t (*ascratch)[16])
{
	piece pcs[KVS__CDC_MAX_THREADS];
	size_t pos = 0, n = 0, t = 1, j = 0;
	int rc = 0;

	*nout = 0;
	*used = 0;
	if (len > UINT32_MAX)
		return kvs_error_set(KVS_ETOOBIG, "chunker region of %zu bytes", len);
	if (threads > KVS__CDC_MAX_THREADS)
		threads = KVS__CDC_MAX_THREADS;
	/* pieces shorter than a few chunk_max would only resynchronise */
	if (threads < 2 || !scratch || (addrs && !ascratch) || len / threads < 4 * (size_t)c->max)
		threads = 1;
	for (size_t k = 1; k < threads; k++) {
		piece *pc = &pcs[k];
		memset(pc, 0, sizeof(*pc));
		pc->c = c;
		pc->buf = buf;
		pc->len = len;
		pc->from = len / threads * k;
		pc->to = k + 1 < threads ? len / threads * (k + 1) : len;
		pc->final = final;
		pc->ends = scratch + (k - 1) * cap;
		pc->addrs = addrs ? ascratch + (k - 1) * cap : NULL;
		pc->cap = cap;
		pc->started = pthread_create(&pc->th, NULL, piece_run, pc) == 0;
	}
	while (!stops(c, len, pos, final)) {
		size_t cut;
		if (t < threads && pos >= pcs[t].from) {
			piece *pc = &pcs[t];
			if (pc->started) {
				pthread_join(pc->th, NULL);
				pc->started = 0;
			}
			if (pc->overflow)
				pc->n = 0;   /* a partial list: treated as never met */
			while (j < pc->n && pc->ends[j] < pos)
				j++;
			if (pos == pc->from || (j < pc->n && pc->ends[j] == pos)) {
				/* met the piece's chain: it is the true one from here */
				for (j += pos == pc->from ? 0 : 1; j < pc->n; j++) {
					if (n == cap) {
						rc = KVS_ETOOBIG;
						goto out;
					}
					if (addrs)
						memcpy(addrs[n], pc->addrs[j], 16);
					lens[n++] = pc->ends[j] - (uint32_t)pos;
					pos = pc->ends[j];
				}
				t++;
				j = 0;
				continue;
			}
			if (j == pc->n) {   /* passed it without meeting it */
				t++;
				j = 0;
				continue;
			}
		}
		if (n == cap) {
			rc = KVS_ETOOBIG;
			goto out;
		}
		cut = kvs__cdc_cut(c, buf + pos, len - pos);
		if (addrs)
			kvs__addr_of(addrs[n], buf + pos, cut);
		lens[n++] = (uint32_t)cut;
		pos += cut;
	}
out:
	for (size_t k = 1; k < threads; k++)
		if (pcs[k].started)
			pthread_join(pcs[k].th, NULL);
	if (rc < 0)
		return kvs_error_set(rc, "chunker: more than %zu chunks in a region", cap);
	*nout = n;
	*used = pos;
	return 0;
}
