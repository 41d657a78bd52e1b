/*
 * valbuf.c — whole-value buffers: huge pages, and the one kept for reuse.
 *
 * Why keep one: a get of a large value into fresh memory pays the kernel's
 * zeroing of every page (clear_page), which on the project's 2-core VM took
 * as long as the LZ4 decompression of the same bytes, and a freed buffer of
 * that size goes straight back to the system (glibc maps anything over its
 * mmap threshold, 32 MiB at most, on its own). A caller that reads the same
 * large value again and again (a controller's reconcile loop) would pay it
 * every time. So kvs_free keeps the last large buffer it is given, as an
 * allocator with a dirty-page cache does (jemalloc's decay):
 *
 *  - one buffer, of KEEP_MIN..KEEP_MAX bytes; a newer one replaces it;
 *  - its pages are given back lazily (MADV_FREE): the kernel may take them
 *    whenever it is short of memory, and then the buffer refills with zero
 *    pages on its next use, as a fresh one would;
 *  - a get takes it when its value fits and fills at least half of it;
 *  - it is released once it has gone unused for KEEP_NS (checked when a
 *    large value is allocated or freed), or by kvs_release_memory().
 *
 * Where MADV_FREE is missing nothing is kept. Every buffer comes from
 * malloc or posix_memalign, so free() releases it as well as kvs_free does
 * (it just is not kept then); the size of a buffer given to kvs_free is read
 * with malloc_usable_size, never remembered, so a pointer of any origin is
 * measured truthfully.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvsplit.h"
#include "valbuf.h"

#define HUGE_PAGE ((size_t)2 << 20)
#define KEEP_MIN  (2 * HUGE_PAGE)          /* as the huge-page advice */
#define KEEP_MAX  ((size_t)256 << 20)
#define KEEP_NS   (10ull * 1000000000ull)

static pthread_mutex_t keep_mu = PTHREAD_MUTEX_INITIALIZER;
static void *kept;            /* guarded by keep_mu, as the three below */
static size_t kept_cap;
static uint64_t kept_since;   /* CLOCK_MONOTONIC ns when kvs_free kept it */
static uint64_t keep_ns = KEEP_NS;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The kept buffer if it has gone stale (the caller frees it, unlocked). */
static void *take_stale_locked(uint64_t now)
{
	void *p = NULL;

	if (kept && now - kept_since > keep_ns) {
		p = kept;
		kept = NULL;
		kept_cap = 0;
	}
	return p;
}

void *kvs__valbuf_alloc(size_t len)
{
	void *p = NULL, *stale;

	if (len < KEEP_MIN)
		return malloc(len ? len : 1);
	pthread_mutex_lock(&keep_mu);
	if (kept && len <= kept_cap && len >= kept_cap / 2) {
		p = kept;
		kept = NULL;
		kept_cap = 0;
	}
	stale = take_stale_locked(now_ns());
	pthread_mutex_unlock(&keep_mu);
	free(stale);
	if (p)
		return p;
	if (posix_memalign(&p, HUGE_PAGE, len) != 0)
		return NULL;
#ifdef MADV_HUGEPAGE
	/* only advice: where THP is off, or madvise refuses, 4 KiB pages */
	(void)madvise(p, len & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);
#endif
	return p;
}

void kvs__valbuf_free(void *p)
{
#ifdef MADV_FREE
	size_t cap, page = (size_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo, hi;
	void *old;

	if (!p || (cap = malloc_usable_size(p)) < KEEP_MIN || cap > KEEP_MAX) {
		free(p);
		return;
	}
	/* whole pages inside the buffer only: malloc's own words lie outside */
	lo = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
	hi = ((uintptr_t)p + cap) & ~(uintptr_t)(page - 1);
	if (madvise((void *)lo, hi - lo, MADV_FREE) != 0) {
		free(p);
		return;
	}
	pthread_mutex_lock(&keep_mu);
	old = kept;
	kept = p;
	kept_cap = cap;
	kept_since = now_ns();
	pthread_mutex_unlock(&keep_mu);
	free(old);
#else
	free(p);
#endif
}

void kvs__valbuf_set_keep_ns(uint64_t ns)
{
	pthread_mutex_lock(&keep_mu);
	keep_ns = ns;
	pthread_mutex_unlock(&keep_mu);
}

size_t kvs_release_memory(void)
{
	void *p;
	size_t n;

	pthread_mutex_lock(&keep_mu);
	p = kept;
	n = kept_cap;
	kept = NULL;
	kept_cap = 0;
	pthread_mutex_unlock(&keep_mu);
	free(p);
	return n;
}
