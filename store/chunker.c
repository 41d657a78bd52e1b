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
 * chain. The sum of the four gear values goes through KEEP: without it gcc
 * reassociated it into five dependent operations on h per four bytes, and
 * the scan ran at half the speed (64 MiB: 42 ms, now 22). Each position is
 * tested with its own well-predicted branch. Returns the cut (index after
 * the byte that matched) or 0.
 */
/* An empty asm the value goes through: the compiler may not reassociate
 * the sum across it (it would put all four adds on the loop-carried
 * chain of h). */
#if defined(__GNUC__)
#define KEEP(v) __asm__("" : "+r"(v))
#else
#define KEEP(v) ((void)0)
#endif

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
		uint64_t x = ((g0 << 3) + (g1 << 2)) + ((g2 << 1) + g3);
		uint64_t h4;
		KEEP(x);
		h4 = (h << 4) + x;
		if (__builtin_expect(!(h1 & m), 0)) {
			*hp = h1;
			return i + 1;
		}
		if (__builtin_expect(!(h2 & m), 0)) {
			*hp = h2;
			return i + 2;
		}
		if (__builtin_expect(!(h3 & m), 0)) {
			*hp = h3;
			return i + 3;
		}
		if (__builtin_expect(!(h4 & m), 0)) {
			*hp = h4;
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

/* The stop rule of a caller moving chunk by chunk (chunker.h). */
static int stops(const kvs__cdc *c, size_t len, size_t pos, int final)
{
	return pos >= len || (!final && len - pos < c->max);
}

void kvs__cdc_piece_init(kvs__cdc_piece *pc, const kvs__cdc *c, const uint8_t *buf, size_t len,
                         int final, size_t from, size_t to, uint32_t *ends,
                         uint8_t (*addrs)[16], size_t cap)
{
	memset(pc, 0, sizeof(*pc));
	pc->c = c;
	pc->buf = buf;
	pc->len = len;
	pc->from = from;
	pc->to = to;
	pc->final = final;
	pc->ends = ends;
	pc->addrs = addrs;
	pc->cap = cap;
}

void kvs__cdc_piece_run(kvs__cdc_piece *pc)
{
	size_t off = pc->from;

	pc->n = 0;
	while (off < pc->to && !stops(pc->c, pc->len, off, pc->final)) {
		size_t cut;
		if (pc->n == pc->cap) {
			pc->overflow = 1;
			break;
		}
		cut = kvs__cdc_cut(pc->c, pc->buf + off, pc->len - off);
		if (pc->addrs)   /* while the chunk is still in the cache */
			kvs__addr_of(pc->addrs[pc->n], pc->buf + off, cut);
		off += cut;
		pc->ends[pc->n++] = (uint32_t)off;
	}
}

static void *piece_thread(void *arg)
{
	kvs__cdc_piece_run(arg);
	return NULL;
}

int kvs__cdc_merge(const kvs__cdc *c, const uint8_t *buf, size_t len, int final,
                   kvs__cdc_piece *pcs, size_t np, uint32_t *lens, uint8_t (*addrs)[16],
                   size_t cap, size_t *nout, size_t *used)
{
	size_t pos = 0, n = 0, t = 0, j = 0;
	int rc = 0;

	*nout = 0;
	*used = 0;
	while (!stops(c, len, pos, final)) {
		size_t cut;
		if (t < np && pos >= pcs[t].from) {
			kvs__cdc_piece *pc = &pcs[t];
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
	for (size_t k = 0; k < np; k++)
		if (pcs[k].started) {
			pthread_join(pcs[k].th, NULL);
			pcs[k].started = 0;
		}
	if (rc < 0)
		return kvs_error_set(rc, "chunker: more than %zu chunks in a region", cap);
	*nout = n;
	*used = pos;
	return 0;
}

int kvs__cdc_cut_all(const kvs__cdc *c, const uint8_t *buf, size_t len, int final,
                     uint32_t *lens, uint8_t (*addrs)[16], size_t cap, size_t *nout,
                     size_t *used, unsigned threads, uint32_t *scratch,
                     uint8_t (*ascratch)[16])
{
	kvs__cdc_piece pcs[KVS__CDC_MAX_THREADS];

	*nout = 0;
	*used = 0;
	if (len > UINT32_MAX)
		return kvs_error_set(KVS_ETOOBIG, "chunker region of %zu bytes", len);
	threads = kvs__cdc_pieces(c, len, threads);
	if (!scratch || (addrs && !ascratch))
		threads = 1;
	/* pieces 1.. on helpers; the caller cuts from the true start (merge) */
	for (size_t k = 1; k < threads; k++) {
		kvs__cdc_piece *pc = &pcs[k - 1];
		kvs__cdc_piece_init(pc, c, buf, len, final, len / threads * k,
		                    k + 1 < threads ? len / threads * (k + 1) : len,
		                    scratch + (k - 1) * cap, addrs ? ascratch + (k - 1) * cap : NULL, cap);
		pc->started = pthread_create(&pc->th, NULL, piece_thread, pc) == 0;
	}
	return kvs__cdc_merge(c, buf, len, final, pcs, threads - 1, lens, addrs, cap, nout, used);
}

unsigned kvs__cdc_pieces(const kvs__cdc *c, size_t len, unsigned threads)
{
	if (threads > KVS__CDC_MAX_THREADS)
		threads = KVS__CDC_MAX_THREADS;
	/* pieces shorter than a few chunk_max would only resynchronise */
	if (threads < 2 || len / threads < 4 * (size_t)c->max)
		return 1;
	return threads;
}
