/*
 * linearize.c — Wing–Gong search with Lowe's memoization over a history of
 * one register (see linearize.h).
 *
 * The history is a doubly linked list of call and return entries in time
 * order. The search walks it: at a call, it tries to linearize that
 * operation now (legal from the current state, and the resulting
 * configuration — set of linearized operations, state — not seen before);
 * if so it lifts the operation's two entries out of the list and starts
 * again from the head. Reaching a return entry means the operation it ends
 * must have taken effect already: backtrack to the last choice and try the
 * next one. The history is linearizable when the list empties.
 *
 * The set of linearized operations is hashed incrementally (XOR of 128-bit
 * random keys per operation), so a configuration costs 24 bytes in the
 * cache. A collision of both 64-bit halves could only prune a branch — it
 * can turn "linearizable" into "not", never the reverse; at 2^-128 per pair
 * it does not happen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linearize.h"

typedef struct ent {
	int op;       /* index into the filtered op list */
	int is_ret;
	int64_t t;
	int prev, next;
} ent;

typedef struct frame {
	int op;
	int variant;
	uint64_t state;
} frame;

typedef struct slot {
	uint64_t h1, h2, st;
	int used;
} slot;

typedef struct cache {
	slot *s;
	size_t cap, n;
} cache;

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static size_t slot_of(const cache *c, uint64_t h1, uint64_t h2, uint64_t st)
{
	return (size_t)(mix(h1 ^ mix(h2 ^ mix(st)))) & (c->cap - 1);
}

/* 1 added, 0 already there, -1 out of memory */
static int cache_add(cache *c, uint64_t h1, uint64_t h2, uint64_t st)
{
	if ((c->n + 1) * 2 > c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 1024;
		slot *ns = calloc(ncap, sizeof(*ns));
		if (!ns)
			return -1;
		cache old = *c;
		c->s = ns;
		c->cap = ncap;
		c->n = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.s[i].used) {
				size_t j = slot_of(c, old.s[i].h1, old.s[i].h2, old.s[i].st);
				while (c->s[j].used)
					j = (j + 1) & (c->cap - 1);
				c->s[j] = old.s[i];
				c->n++;
			}
		free(old.s);
	}
	size_t j = slot_of(c, h1, h2, st);
	while (c->s[j].used) {
		if (c->s[j].h1 == h1 && c->s[j].h2 == h2 && c->s[j].st == st)
			return 0;
		j = (j + 1) & (c->cap - 1);
	}
	c->s[j] = (slot){ h1, h2, st, 1 };
	c->n++;
	return 1;
}

/*
 * The register's step: may `op` take effect in `st` (variant 0: with its
 * recorded outcome; variant 1, pending ops only: not at all)? Sets *next.
 */
static int step(const lin_op *op, int variant, uint64_t st, uint64_t *next)
{
	*next = st;
	if (variant == 1)
		return op->pending;
	switch ((lin_kind)op->kind) {
	case LIN_GET:
		return st == op->out;
	case LIN_PUT:
		*next = op->arg;
		return 1;
	case LIN_CAS:
		if (op->pending || op->ok) {
			*next = op->arg;
			return st == op->expect;
		}
		return st != op->expect;
	case LIN_DEL:
		if (op->pending || op->ok) {
			*next = 0;
			return st != 0;
		}
		return st == 0;
	}
	return 0;
}

static int cmp_ent(const void *a, const void *b)
{
	const ent *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	/* at equal times, calls first: the two overlap */
	if (x->is_ret != y->is_ret)
		return x->is_ret - y->is_ret;
	return x->op - y->op;
}

static void unlink_ent(ent *e, int i)
{
	e[e[i].prev].next = e[i].next;
	e[e[i].next].prev = e[i].prev;
}

static void relink_ent(ent *e, int i)
{
	e[e[i].prev].next = i;
	e[e[i].next].prev = i;
}

int lin_check(lin_result *res, const lin_op *all, size_t n_all, uint64_t max_steps)
{
	memset(res, 0, sizeof(*res));
	res->linearizable = -1;
	if (!max_steps)
		max_steps = 1000000000ull;

	/* pending reads say nothing */
	size_t n = 0;
	const lin_op **ops = malloc((n_all + 1) * sizeof(*ops));
	size_t *orig = malloc((n_all + 1) * sizeof(*orig));
	ent *e = malloc((2 * n_all + 2) * sizeof(*e));
	int *call_of = malloc((n_all + 1) * sizeof(*call_of));
	int *ret_of = malloc((n_all + 1) * sizeof(*ret_of));
	uint64_t *z1 = malloc((n_all + 1) * sizeof(*z1)), *z2 = malloc((n_all + 1) * sizeof(*z2));
	frame *stack = malloc((n_all + 1) * sizeof(*stack));
	cache c = { NULL, 0, 0 };
	if (!ops || !orig || !e || !call_of || !ret_of || !z1 || !z2 || !stack)
		goto out;
	for (size_t i = 0; i < n_all; i++)
		if (!(all[i].pending && all[i].kind == LIN_GET)) {
			orig[n] = i;
			ops[n++] = &all[i];
		}

	/* entries 1..2n in time order; 0 is the head sentinel, 2n+1 the tail */
	ent *body = e + 1;
	for (size_t i = 0; i < n; i++) {
		body[2 * i] = (ent){ (int)i, 0, ops[i]->call, 0, 0 };
		body[2 * i + 1] = (ent){ (int)i, 1, ops[i]->pending ? INT64_MAX : ops[i]->ret, 0, 0 };
		z1[i] = mix(2 * i + 0x1234);
		z2[i] = mix(mix(2 * i + 1) ^ 0x5678);
	}
	qsort(body, 2 * n, sizeof(ent), cmp_ent);
	int tail = (int)(2 * n + 1);
	for (int i = 0; i <= tail; i++) {
		e[i].prev = i - 1;
		e[i].next = i + 1;
	}
	for (int i = 1; i < tail; i++) {
		if (e[i].is_ret)
			ret_of[e[i].op] = i;
		else
			call_of[e[i].op] = i;
	}

	uint64_t st = 0, h1 = 0, h2 = 0;
	size_t depth = 0;
	int cur = e[0].next;
	res->stuck = n ? orig[0] : 0;
	while (e[0].next != tail) {
		if (++res->steps > max_steps)
			goto out;
		int try_from = 0, op = -1;
		if (!e[cur].is_ret) {
			op = e[cur].op;
		} else {
			/* the op this return ends was not linearized in time: backtrack */
			if (depth == 0) {
				res->linearizable = 0;
				goto out;
			}
			frame f = stack[--depth];
			op = f.op;
			st = f.state;
			h1 ^= z1[op];
			h2 ^= z2[op];
			relink_ent(e, ret_of[op]);
			relink_ent(e, call_of[op]);
			try_from = f.variant + 1;
		}
		int lifted = 0;
		for (int v = try_from; v < 2 && !lifted; v++) {
			uint64_t nst;
			if (!step(ops[op], v, st, &nst))
				continue;
			int added = cache_add(&c, h1 ^ z1[op], h2 ^ z2[op], nst);
			if (added < 0)
				goto out;
			if (!added)
				continue;
			stack[depth++] = (frame){ op, v, st };
			st = nst;
			h1 ^= z1[op];
			h2 ^= z2[op];
			unlink_ent(e, call_of[op]);
			unlink_ent(e, ret_of[op]);
			lifted = 1;
		}
		if (lifted) {
			if (depth > res->longest) {
				res->longest = depth;
				/* the earliest return still in the list: what blocks next */
				for (int i = e[0].next; i != tail; i = e[i].next)
					if (e[i].is_ret) {
						res->stuck = orig[e[i].op];
						break;
					}
			}
			cur = e[0].next;
		} else {
			cur = e[call_of[op]].next;
		}
	}
	res->linearizable = 1;
	res->longest = n;
out:
	res->cached = c.n;
	free(c.s);
	free(ops);
	free(orig);
	free(e);
	free(call_of);
	free(ret_of);
	free(z1);
	free(z2);
	free(stack);
	return res->linearizable;
}

void lin_describe(char *buf, size_t cap, const lin_op *op)
{
	static const char *const names[] = { "?", "get", "put", "cas", "del" };
	const char *k = op->kind >= LIN_GET && op->kind <= LIN_DEL ? names[op->kind] : "?";

	switch ((lin_kind)op->kind) {
	case LIN_GET:
		snprintf(buf, cap, "p%d %s -> %llx [%lld, %lld]%s", op->proc, k, (unsigned long long)op->out,
		         (long long)op->call, (long long)op->ret, op->pending ? " pending" : "");
		break;
	case LIN_PUT:
		snprintf(buf, cap, "p%d %s %llx [%lld, %lld]%s", op->proc, k, (unsigned long long)op->arg,
		         (long long)op->call, (long long)op->ret, op->pending ? " pending" : "");
		break;
	case LIN_CAS:
		snprintf(buf, cap, "p%d %s %llx -> %llx %s [%lld, %lld]%s", op->proc, k,
		         (unsigned long long)op->expect, (unsigned long long)op->arg, op->ok ? "ok" : "refused",
		         (long long)op->call, (long long)op->ret, op->pending ? " pending" : "");
		break;
	case LIN_DEL:
		snprintf(buf, cap, "p%d %s %s [%lld, %lld]%s", op->proc, k, op->ok ? "ok" : "notfound",
		         (long long)op->call, (long long)op->ret, op->pending ? " pending" : "");
		break;
	default:
		snprintf(buf, cap, "p%d ?", op->proc);
	}
}
