/*
 * clock.c — the system clock and a manual clock for tests.
 */
#include <time.h>

#include "controller/clock.h"

static int64_t sys_mono(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * KVC_S + ts.tv_nsec;
}

static int64_t sys_wall(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const kvc_clock system_clock = { sys_mono, sys_wall, 0 };

const kvc_clock *kvc_clock_system(void)
{
	return &system_clock;
}

static int64_t man_mono(void *ctx)
{
	return *(int64_t *)ctx;
}

static int64_t man_wall(void *ctx)
{
	return *(int64_t *)ctx / 1000;
}

void kvc_clock_manual(kvc_clock *out, int64_t *ns)
{
	out->mono = man_mono;
	out->wall_us = man_wall;
	out->ctx = ns;
}
