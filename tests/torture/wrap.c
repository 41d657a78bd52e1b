/*
 * wrap.c — the allocation wrappers of the torture binary (see torture.h).
 * The linker sends every malloc/calloc/realloc/strdup/strndup/asprintf/
 * vasprintf call of our objects here (-Wl,--wrap=...); __real_x is the libc
 * function. When armed, each call takes a ticket from one atomic counter and
 * the call holding ticket `fail_at` returns NULL (or -1) with errno ENOMEM.
 * realloc(p, 0) and free are not counted.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torture.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_vasprintf(char **out, const char *fmt, va_list ap);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_vasprintf(char **out, const char *fmt, va_list ap);
int __wrap_asprintf(char **out, const char *fmt, ...);

static atomic_int armed;
static atomic_uint_fast64_t count;
static atomic_uint_fast64_t fail_at;
static atomic_int hit;

void torture_arm(uint64_t n)
{
	atomic_store(&armed, 0);
	atomic_store(&count, 0);
	atomic_store(&fail_at, n);
	atomic_store(&hit, 0);
	atomic_store(&armed, 1);
}

uint64_t torture_disarm(void)
{
	atomic_store(&armed, 0);
	return atomic_load(&count);
}

int torture_hit(void)
{
	return atomic_load(&hit);
}

/* 1 if this allocation must fail. */
static int fail_now(void)
{
	if (!atomic_load_explicit(&armed, memory_order_relaxed))
		return 0;
	uint64_t t = atomic_fetch_add(&count, 1) + 1;
	if (t != atomic_load(&fail_at))
		return 0;
	atomic_store(&hit, 1);
	errno = ENOMEM;
	return 1;
}

void *__wrap_malloc(size_t n)
{
	return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
	return fail_now() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
	if (n == 0)
		return __real_realloc(p, n);
	return fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	return fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
	return fail_now() ? NULL : __real_strndup(s, n);
}

int __wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
	if (fail_now())
		return -1;
	return __real_vasprintf(out, fmt, ap);
}

int __wrap_asprintf(char **out, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (fail_now())
		return -1;
	va_start(ap, fmt);
	r = __real_vasprintf(out, fmt, ap);
	va_end(ap);
	return r;
}
