/*
 * sim.c — seeded schedules of faults over the real member code, and the
 * checks of sim.h. Everything runs on one thread in virtual time; member
 * clocks are the virtual clock plus a large per-member offset, running up to
 * 2% fast or slow, so no judgement can lean on clocks agreeing.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/member.h"
#include "controller/sim.h"
#include "controller/simapi.h"

#define MAXS 8
#define MAXF 64
#define LEASE_NS (15 * KVC_S)
#define RETRY_NS (2 * KVC_S)
#define LATENCY_NS (50 * KVC_MS)
/* Lease duration + one retry period on the observer's clock (up to 2% slow),
 * plus the four calls of a takeover tick. */
#define TAKEOVER_BOUND_NS ((LEASE_NS + RETRY_NS) / 100 * 102 + 4 * LATENCY_NS)

enum { F_KILL, F_PARTITION, F_ERRORS, F_PAUSE, F_JOIN, F_STOP, F_RESTART, F_DELETE, F_CHECK };
static const char *const fname[] = { "kill", "partition", "errors", "pause", "join", "stop", "restart", "delete", "check" };

typedef struct sim sim;

typedef struct slot {
	sim *sim;
	int idx;
	char id[16];
	kvc_member *m;
	kvc_simconn conn;
	kvc_clock clk;
	int64_t off, wall_off;
	int64_t ppm;    /* clock rate error, parts per million */
	int64_t next;
	int64_t pause_until;
	int stopping;
} slot;

typedef struct fault {
	int64_t at, dur;
	int kind, slot, restart;
	double p;
	int done;
} fault;

typedef struct takeover {
	int64_t killed_at, deadline;
	kvc_shardset pending;
	int live;
} takeover;

struct sim {
	kvc_sim_opts o;
	kvc_sim_result *r;
	int64_t now;
	kvc_simapi *api;
	slot s[MAXS];
	unsigned ns;
	fault f[MAXF];
	unsigned nf;
	uint64_t last_epoch[KVC_VSHARDS_MAX];
	takeover tk[MAXF];
	unsigned ntk;
};

static uint64_t rnd(sim *S)
{
	return kvc_simapi_rand(S->api);
}

static int64_t rnd_between(sim *S, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rnd(S) % (uint64_t)(hi - lo + 1));
}

static void logf_(sim *S, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(sim *S, const char *fmt, ...)
{
	va_list ap;
	if (!S->o.verbose)
		return;
	fprintf(stderr, "[%8.3f] ", (double)S->now / 1e9);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void fail(sim *S, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(sim *S, const char *fmt, ...)
{
	va_list ap;
	char msg[400];
	if (!S->r->ok)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	S->r->ok = 0;
	snprintf(S->r->why, sizeof(S->r->why), "seed %" PRIu64 " t=%.3fs: %s", S->o.seed, (double)S->now / 1e9, msg);
	logf_(S, "VIOLATION %s", msg);
}

static int64_t slot_mono(void *ctx)
{
	slot *sl = ctx;
	return sl->off + sl->sim->now + sl->sim->now / 1000000 * sl->ppm;
}

/* The virtual time at which a member's clock reads `local`. */
static int64_t to_global(const slot *sl, int64_t local)
{
	int64_t d = local - sl->off;
	return d - d / (1000000 + sl->ppm) * sl->ppm;
}

static int64_t slot_wall(void *ctx)
{
	slot *sl = ctx;
	return (sl->sim->now + sl->wall_off) / 1000;
}

/* ---- the checks, as member hooks ---- */

static void on_acquired(void *ctx, unsigned shard, uint64_t epoch)
{
	slot *sl = ctx;
	sim *S = sl->sim;

	S->r->activations++;
	for (unsigned j = 0; j < S->ns; j++) {
		slot *o = &S->s[j];
		if (o != sl && o->m && kvc_member_acting(o->m, shard))
			fail(S, "shard %u activated by %s while %s still acts on it", shard, sl->id, o->id);
	}
	/* Epochs live on the Leases: a deleted one takes its epoch with it. */
	if (epoch <= S->last_epoch[shard] && !(S->o.faults & KVC_SIM_DELETE))
		fail(S, "shard %u: %s activated it with epoch %" PRIu64 " after epoch %" PRIu64, shard, sl->id,
		     epoch, S->last_epoch[shard]);
	S->last_epoch[shard] = epoch;
	for (unsigned t = 0; t < S->ntk; t++) {
		takeover *k = &S->tk[t];
		if (!k->live || !kvc_set_has(&k->pending, shard))
			continue;
		kvc_set_del(&k->pending, shard);
		int64_t took = S->now - k->killed_at;
		if (took > S->r->max_takeover_ns)
			S->r->max_takeover_ns = took;
		if (S->now > k->deadline)
			fail(S, "shard %u taken over %.3fs after its owner died (bound %.3fs)", shard, (double)took / 1e9,
			     (double)(k->deadline - k->killed_at) / 1e9);
	}
}

static void on_peer_expired(void *ctx, const kvc_lease *peer)
{
	slot *sl = ctx;
	sim *S = sl->sim;

	for (unsigned j = 0; j < S->ns; j++) {
		slot *o = &S->s[j];
		if (!o->m || strcmp(kvc_member_lease_name(o->m), peer->name) != 0)
			continue;
		for (unsigned s = 0; s < S->o.vshards; s++)
			if (kvc_member_acting(o->m, s)) {
				fail(S, "%s judged %s's Lease expired while %s still acts on shard %u", sl->id, o->id, o->id, s);
				return;
			}
	}
}

/* ---- members ---- */

static int start(sim *S, slot *sl)
{
	kvc_member_opts mo = KVC_MEMBER_OPTS_INIT;
	kvc_member_hooks h = { 0 };

	mo.group = "sim";
	mo.identity = sl->id;
	mo.vshards = S->o.vshards;
	mo.lease_duration_ns = LEASE_NS;
	mo.retry_period_ns = RETRY_NS;
	mo.load_eps = S->o.plain ? -1 : 0;
	h.ctx = sl;
	h.acquired = on_acquired;
	h.peer_expired = on_peer_expired;
	/* A new process: a new clock origin, unrelated to anyone's. */
	sl->off = (int64_t)(rnd(S) % (1000000 * KVC_S));
	sl->wall_off = (int64_t)(rnd(S) % (1000 * KVC_S));
	/* Timers drift: up to 2% either way (far beyond real quartz, within
	 * what the 5 s between renew deadline and lease duration absorbs). */
	sl->ppm = (int64_t)(rnd(S) % 40001) - 20000;
	sl->clk.mono = slot_mono;
	sl->clk.wall_us = slot_wall;
	sl->clk.ctx = sl;
	sl->stopping = 0;
	sl->pause_until = 0;
	sl->next = S->now + rnd_between(S, 0, RETRY_NS);
	int rc = kvc_member_new(&sl->m, &mo, &sl->conn.api, &sl->clk, &h);
	if (rc == 0)
		logf_(S, "start %s", sl->id);
	return rc;
}

static slot *new_slot(sim *S)
{
	if (S->ns >= MAXS)
		return NULL;
	slot *sl = &S->s[S->ns];
	memset(sl, 0, sizeof(*sl));
	sl->sim = S;
	sl->idx = (int)S->ns++;
	snprintf(sl->id, sizeof(sl->id), "m%d", sl->idx);
	kvc_simapi_connect(&sl->conn, S->api);
	if (S->o.faults & KVC_SIM_LATENCY)
		sl->conn.latency_max_ns = LATENCY_NS;
	return sl;
}

static unsigned alive(const sim *S)
{
	unsigned n = 0;
	for (unsigned i = 0; i < S->ns; i++)
		n += S->s[i].m != NULL && !S->s[i].stopping;
	return n;
}

static slot *pick_alive(sim *S)
{
	unsigned n = alive(S);
	if (!n)
		return NULL;
	unsigned k = (unsigned)(rnd(S) % n);
	for (unsigned i = 0; i < S->ns; i++)
		if (S->s[i].m && !S->s[i].stopping && k-- == 0)
			return &S->s[i];
	return NULL;
}

static void kill_slot(sim *S, slot *sl)
{
	kvc_member_free(sl->m);
	sl->m = NULL;
}

static void add_fault(sim *S, fault f)
{
	if (S->nf < MAXF)
		S->f[S->nf++] = f;
}

/* Is any fault other than `self` active in [a, b]? */
static int quiet(const sim *S, const fault *self, int64_t a, int64_t b)
{
	for (unsigned i = 0; i < S->nf; i++) {
		const fault *f = &S->f[i];
		if (f == self || f->kind == F_CHECK)
			continue;
		int64_t end = f->at + f->dur;
		if (f->at <= b && end >= a)
			return 0;
	}
	return 1;
}

static void run_fault(sim *S, fault *f)
{
	slot *sl = NULL;

	f->done = 1;
	switch (f->kind) {
	case F_KILL:
	case F_STOP:
		if (alive(S) < 2 || !(sl = pick_alive(S)))
			return;
		f->slot = sl->idx;
		if (f->kind == F_KILL) {
			int64_t bound = TAKEOVER_BOUND_NS;
			if (f->at >= 40 * KVC_S && quiet(S, f, f->at - 30 * KVC_S, f->at + bound + KVC_S) && S->ntk < MAXF) {
				takeover *k = &S->tk[S->ntk++];
				kvc_member_held(sl->m, &k->pending);
				k->killed_at = S->now;
				k->deadline = S->now + bound;
				k->live = 1;
				S->r->takeovers_checked++;
				add_fault(S, (fault){ .at = k->deadline + 1, .kind = F_CHECK, .slot = (int)(S->ntk - 1) });
			}
			logf_(S, "kill %s", sl->id);
			kill_slot(S, sl);
			S->r->kills++;
		} else {
			logf_(S, "stop %s", sl->id);
			sl->stopping = 1;
			kvc_member_stop(sl->m);
		}
		if (f->restart)
			add_fault(S, (fault){ .at = S->now + f->dur, .kind = F_RESTART, .slot = sl->idx });
		return;
	case F_RESTART:
		sl = &S->s[f->slot];
		if (sl->m) /* a stop still draining: kill it, then restart */
			kill_slot(S, sl);
		logf_(S, "restart %s", sl->id);
		start(S, sl);
		return;
	case F_JOIN:
		if ((sl = new_slot(S)))
			start(S, sl);
		return;
	case F_PARTITION:
	case F_ERRORS:
	case F_PAUSE:
	case F_DELETE:
		if (!(sl = pick_alive(S)))
			return;
		logf_(S, "%s %s for %.1fs", fname[f->kind], sl->id, (double)f->dur / 1e9);
		if (f->kind == F_PARTITION)
			sl->conn.partitioned_until = S->now + f->dur;
		else if (f->kind == F_ERRORS)
			sl->conn.errors_until = S->now + f->dur, sl->conn.error_p = f->p;
		else if (f->kind == F_PAUSE)
			sl->pause_until = S->now + f->dur;
		else
			kvc_simapi_delete(S->api, kvc_member_lease_name(sl->m));
		return;
	case F_CHECK: {
		takeover *k = &S->tk[f->slot];
		k->live = 0;
		for (unsigned s = 0; s < S->o.vshards; s++)
			if (kvc_set_has(&k->pending, s)) {
				fail(S, "shard %u not owned again %.3fs after its owner died", s,
				     (double)(S->now - k->killed_at) / 1e9);
				break;
			}
		return;
	}
	default:
		return;
	}
}

static void gen_faults(sim *S)
{
	static const int kinds[] = { F_KILL, F_PARTITION, F_ERRORS, F_PAUSE, F_JOIN, F_STOP, F_DELETE };
	static const unsigned bits[] = { KVC_SIM_KILL, KVC_SIM_PARTITION, KVC_SIM_ERRORS, KVC_SIM_PAUSE,
	                                 KVC_SIM_JOIN, KVC_SIM_STOP, KVC_SIM_DELETE };
	int en[8], nen = 0;

	for (unsigned i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (S->o.faults & bits[i])
			en[nen++] = kinds[i];
	for (unsigned i = 0; nen && i < S->o.nfaults; i++) {
		fault f = { 0 };
		f.kind = en[rnd(S) % (unsigned)nen];
		f.at = rnd_between(S, 10 * KVC_S, S->o.run_ns);
		switch (f.kind) {
		case F_KILL:
		case F_STOP:
			f.restart = (int)(rnd(S) & 1);
			f.dur = rnd_between(S, KVC_S / 2, 40 * KVC_S);
			break;
		case F_ERRORS:
			f.p = 0.1 + (double)(rnd(S) % 80) / 100.0;
			f.dur = rnd_between(S, 5 * KVC_S, 60 * KVC_S);
			break;
		case F_PAUSE:
			f.dur = rnd_between(S, KVC_S / 2, 25 * KVC_S);
			break;
		case F_PARTITION:
			f.dur = rnd_between(S, KVC_S / 2, 40 * KVC_S);
			break;
		default:
			break;
		}
		add_fault(S, f);
	}
}

static void tick(sim *S, slot *sl)
{
	if (S->now < sl->pause_until) {
		sl->next = sl->pause_until;
		return;
	}
	int trc = kvc_member_tick(sl->m);
	S->r->ticks++;
	if (S->o.verbose > 1) {
		kvc_member_stats st;
		kvc_member_stats_get(sl->m, &st);
		logf_(S, "tick %s rc=%d members=%u target=%u held=%u fences=%" PRIu64 " withdrawn=%" PRIu64, sl->id, trc,
		      st.members, st.target, st.held, st.fences, st.withdrawn);
	}
	if (sl->stopping && kvc_member_stopped(sl->m)) {
		logf_(S, "%s left", sl->id);
		kill_slot(S, sl);
		return;
	}
	int64_t nx = to_global(sl, kvc_member_next_tick(sl->m));
	sl->next = nx > S->now ? nx : S->now + KVC_MS;
}

/* Run until `end`: always the earliest of the member ticks and the faults. */
static void run_until(sim *S, int64_t end)
{
	while (S->r->ok) {
		int64_t t = end;
		slot *who = NULL;
		fault *what = NULL;
		for (unsigned i = 0; i < S->ns; i++)
			if (S->s[i].m && S->s[i].next < t)
				t = S->s[i].next, who = &S->s[i];
		for (unsigned i = 0; i < S->nf; i++)
			if (!S->f[i].done && S->f[i].at < t)
				t = S->f[i].at, what = &S->f[i], who = NULL;
		if (!who && !what)
			break;
		if (t > S->now)
			S->now = t;
		if (what)
			run_fault(S, what);
		else
			tick(S, who);
	}
	if (S->now < end)
		S->now = end;
}

static void check_converged(sim *S)
{
	for (unsigned s = 0; s < S->o.vshards && S->r->ok; s++) {
		unsigned n = 0;
		for (unsigned i = 0; i < S->ns; i++)
			n += S->s[i].m && kvc_member_acting(S->s[i].m, s);
		if (n != 1)
			fail(S, "after the faults, shard %u is active on %u members", s, n);
	}
}

int kvc_sim_run(const kvc_sim_opts *o, kvc_sim_result *out)
{
	sim *S = calloc(1, sizeof(*S));
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->ok = 1;
	if (!S)
		return kvs_error_set(KVS_ENOMEM, "sim: out of memory");
	S->o = *o;
	S->r = out;
	S->o.members = S->o.members ? S->o.members : 3;
	S->o.members = S->o.members > MAXS ? MAXS : S->o.members;
	S->o.vshards = S->o.vshards ? S->o.vshards : 64;
	S->o.run_ns = S->o.run_ns ? S->o.run_ns : 200 * KVC_S;
	S->o.faults = S->o.faults ? S->o.faults : KVC_SIM_ALL;
	S->o.nfaults = S->o.nfaults ? S->o.nfaults : 6;
	out->takeover_bound_ns = TAKEOVER_BOUND_NS;
	if ((rc = kvc_simapi_new(&S->api, &S->now, o->seed ^ 0x5eed5eed5eedull)) < 0)
		goto out;
	for (unsigned i = 0; i < S->o.members && rc == 0; i++)
		rc = start(S, new_slot(S));
	gen_faults(S);
	if (rc == 0) {
		run_until(S, S->o.run_ns);
		/* Let every fault end (durations run past run_ns), then settle. */
		int64_t end = S->now;
		for (unsigned i = 0; i < S->nf; i++)
			end = S->f[i].at + S->f[i].dur > end ? S->f[i].at + S->f[i].dur : end;
		run_until(S, end + 60 * KVC_S);
		if (!(S->o.faults & KVC_SIM_DELETE))
			check_converged(S);
	}
out:
	for (unsigned i = 0; i < S->ns; i++)
		kvc_member_free(S->s[i].m);
	kvc_simapi_free(S->api);
	free(S);
	return rc;
}
