/*
 * linearize.h — a linearizability checker for histories of one register
 * (a key of the store), after Wing & Gong, with the memoization of Lowe
 * ("Testing for linearizability", 2017) that Knossos and Porcupine use: a
 * configuration (set of operations linearized so far, register state) is
 * explored at most once.
 *
 * The register holds a value id (0 = the key is absent). Operations:
 *   LIN_GET  returned `out` (0: not found)            legal iff state == out
 *   LIN_PUT  blind put of `arg`                        always; state = arg
 *   LIN_CAS  put of `arg` if state == `expect` (0: create only):
 *            ok  -> legal iff state == expect; state = arg
 *            !ok -> legal iff state != expect (refused: conflict / exists)
 *   LIN_DEL  blind delete: ok -> legal iff state != 0; state = 0
 *                          !ok (not found) -> legal iff state == 0
 * A `pending` operation (its outcome is unknown: the process died, or the
 * call failed after sending) may take effect at any point after its call,
 * or never; a pending GET says nothing and is ignored.
 *
 * Operation a precedes b when a.ret < b.call; otherwise they overlap.
 */
#ifndef KVS_TEST_LINEARIZE_H
#define KVS_TEST_LINEARIZE_H

#include <stddef.h>
#include <stdint.h>

typedef enum lin_kind { LIN_GET = 1, LIN_PUT, LIN_CAS, LIN_DEL } lin_kind;

typedef struct lin_op {
	int kind;        /* lin_kind */
	int proc;        /* process that ran it (for messages) */
	int ok;          /* CAS / DEL: 1 applied, 0 refused */
	int pending;     /* outcome unknown */
	uint64_t arg;    /* PUT / CAS: value written (never 0) */
	uint64_t expect; /* CAS: expected value (0: absent) */
	uint64_t out;    /* GET: value read (0: absent) */
	int64_t call;    /* invocation time */
	int64_t ret;     /* completion time (ignored when pending) */
} lin_op;

typedef struct lin_result {
	int linearizable;     /* 1 yes, 0 no, -1 gave up (step limit) or out of memory */
	size_t longest;       /* most operations linearized in any attempt */
	size_t stuck;         /* when not linearizable: an op no extension could place */
	uint64_t steps;       /* search steps taken */
	uint64_t cached;      /* configurations memoized */
} lin_result;

/**
 * Check `ops[0..n)` (any order). `max_steps` bounds the search (0: 10^9).
 * Returns res->linearizable.
 */
int lin_check(lin_result *res, const lin_op *ops, size_t n, uint64_t max_steps);

/** One line describing op i, for failure messages. */
void lin_describe(char *buf, size_t cap, const lin_op *op);

#endif
