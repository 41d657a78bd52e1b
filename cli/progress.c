/*
 * progress.c — a one-line progress bar on stderr for put and get.
 *
 * Drawn only when stderr is a terminal, progress was not turned off (-q,
 * --no-progress) and the transfer is over 1 MiB, so scripts and logs never
 * see carriage returns. The callback also carries Ctrl-C into the library:
 * once interrupted it returns non-zero and the operation is cancelled
 * cleanly (a put commits nothing).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define PROGRESS_MIN_BYTES (1024u * 1024u)

double cli_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_init(struct progress *p, const struct cli *c, const char *label)
{
	memset(p, 0, sizeof(*p));
	p->c = c;
	p->label = label;
	p->start = cli_now();
}

static void draw(struct progress *p, double now)
{
	char done[32], total[32], rate[32], eta[32], line[256];
	double el = now - p->start;
	double r = el > 0 ? (double)p->done / el : 0;
	int width = 24, fill = 0;

	cli_human_bytes(done, sizeof(done), (double)p->done);
	cli_human_bytes(rate, sizeof(rate), r);
	if (p->total > 0) {
		double frac = (double)p->done / (double)p->total;
		if (frac > 1)
			frac = 1;
		fill = (int)(frac * width);
		cli_human_bytes(total, sizeof(total), (double)p->total);
		cli_human_duration(eta, sizeof(eta),
		                   r > 0 ? (double)(p->total - (p->done < p->total ? p->done : p->total)) / r : -1);
		char bar[32];
		for (int i = 0; i < width; i++)
			bar[i] = i < fill ? '#' : '-';
		bar[width] = '\0';
		snprintf(line, sizeof(line), "%s [%s] %s / %s  %s/s  ETA %s", p->label, bar, done, total,
		         rate, eta);
	} else {
		snprintf(line, sizeof(line), "%s %s  %s/s", p->label, done, rate);
	}
	fprintf(stderr, "\r%-78.78s", line);
	fflush(stderr);
	p->drawn = 1;
	p->last_draw = now;
}

int progress_cb(void *ctx, uint64_t done, uint64_t total)
{
	struct progress *p = ctx;

	if (cli_interrupted)
		return 1;
	p->done = done;
	p->total = total ? total : p->size_hint;
	if (!p->c->progress_tty)
		return 0;
	if (done < PROGRESS_MIN_BYTES && p->total < PROGRESS_MIN_BYTES)
		return 0;
	if (p->total > 0 && p->total < PROGRESS_MIN_BYTES)
		return 0;
	double now = cli_now();
	if (p->drawn && now - p->last_draw < 0.1 && (p->total == 0 || done < p->total))
		return 0;
	draw(p, now);
	return 0;
}

void progress_end(struct progress *p, int ok)
{
	if (!p->drawn)
		return;
	if (ok) {
		draw(p, cli_now());
		fputc('\n', stderr);
	} else {
		fprintf(stderr, "\r%78s\r", "");
	}
	fflush(stderr);
	p->drawn = 0;
}
