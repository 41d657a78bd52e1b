/*
 * tests/model/commit.pml — the commit and gc protocol of kvsplit
 * (docs/design.md "Put", "Why the invariants hold", "Clocks"), for spin.
 *
 * One key, committed at version 1 on segment S0 at time 0; two segment
 * contents (S0, S1); two writers putting once each, blind (a 409 rebases
 * once on the new base), one of which may crash before its commit or
 * between a late commit and its touch (the one crash); one reader; one gc
 * run (GCRUNS); the server clock. Every step that is one request to the
 * API server is one atomic step here; the labels (and docs/design.md "The model") name the code each
 * step stands for:
 *
 *   read_base     commit.c    kvs__commit_read_base (GET index)
 *   check_base    segwrite.c  kvs__segw_check_reuse (GET each base segment)
 *   create        segwrite.c  kvs__segw_flush (create in the batch)
 *   touch_exists  segwrite.c  settle_existing → kvs__segw_touch (AlreadyExists)
 *   refresh       segwrite.c  kvs__segw_refresh (touch what is older than W/2)
 *   touch_late_base segwrite.c kvs__segw_check_reuse, base committed late:
 *                             touch each reused segment (kvs__segw_touch)
 *   commit        commit.c    attempt (replace with resourceVersion = base,
 *                             carrying T_check; the response's server time)
 *   late_touch    commit.c    attempt → kvs__segw_late (committed late:
 *                             touch what the put wrote before acknowledging)
 *   ack           the put returns 0
 *   rebase        commit.c    kvs__commit_run → rebase hook → kvs__segw_rebase
 *   gc_list       gc.c        kvs__segtab_list (step a: r(S), t(S))
 *   gc_time       gc.c        kvs_gc: server time read before step b
 *   gc_read       gc.c        mark_all (step b)
 *   gc_delete     gc.c        kvs__gc_collect_one (step c, precondition r(S))
 *
 * Time is the server's clock in units where the touch window W = 2 (so
 * W/2 = 1) and gc's grace G = 3 > W. The clock may tick between any two
 * steps, also between a writer's refresh (its last touch check, T_check)
 * and its commit landing: a pause or a slow request there is the pause
 * hole of docs/design.md, and what closes it is modelled: each commit
 * carries its T_check and its server time is known from the response; a
 * commit more than W/2 after its T_check is late — its writer touches what
 * it wrote before acknowledging (gone: an error), and a writer reusing
 * segments from a late base touches them first (gone: written anew).
 *
 * Invariant: an acknowledged committed index references a segment that
 * exists. Segments disappear only by gc's delete and an index is
 * acknowledged at its commit (on time) or after its late touch, so it is
 * asserted at those steps (INV). The reader
 * checks that a segment it was sent to by the index it read is there unless
 * the index has moved on since.
 *
 * Switches, each removing one protection (spin must then find a violation):
 *   -DNO_TOUCH_ON_EXISTS  AlreadyExists is taken as reuse without a touch
 *   -DNO_DELETE_PRECOND   gc deletes without the resourceVersion precondition
 *   -DNO_GRACE            gc deletes unreferenced segments of any age
 *   -DNO_REBASE_TOUCH     a blind rebase does not touch the reused segments
 *   -DNO_LATE_TOUCH       a late commit is acknowledged without touching
 *                         what it wrote
 *   -DNO_LATE_BASE_TOUCH  segments reused from a late base are trusted like
 *                         those of any base
 */

#define NSEG 2
#define NONE 255
#define HALFW 1
#define W 2
#ifdef NO_LATE_BASE_TOUCH
#define BASE_LATE(l) false
#else
#define BASE_LATE(l) (l)
#endif
#define G 3
#define MAXT 4
#ifndef GCRUNS
#define GCRUNS 1
#endif

#ifdef NO_GRACE
#define OLD_ENOUGH(s) true
#else
#define OLD_ENOUGH(s) (lt[s] + G < tb)
#endif
#ifdef NO_DELETE_PRECOND
#define PRECOND(s) true
#else
#define PRECOND(s) (rv[s] == lrv[s])
#endif

byte now = 0;            /* server clock */
bool exists[NSEG];
byte rv[NSEG];           /* a segment's resourceVersion */
byte t[NSEG];            /* its last create or touch, server time */
byte rvc = 0;            /* the server's revision counter */

byte idx_ver = 0;        /* committed index version; 0 = none */
byte idx_seg = NONE;     /* the segment it references */
bool idx_acked = false;  /* its writer acknowledged it */
bool idx_late = false;   /* its commit landed more than W/2 after its writer's
                          * last touch check (T_check), by the server's clock */
byte vc = 0;

byte crashes = 1;        /* crashes left */

/* tt: the server time the writer read before the request (segwrite.c
 * server_now), which is what it remembers of this create or touch */
inline create(s, res, tt)
{
	d_step {
		tt = now;
		if
		:: !exists[s] -> exists[s] = true; rvc++; rv[s] = rvc; t[s] = now; res = 1
		:: else -> res = 0
		fi
	}
}

/* metadata update; NotFound when gone (res = 0) */
inline touch(s, res, tt)
{
	d_step {
		tt = now;
		if
		:: exists[s] -> rvc++; rv[s] = rvc; t[s] = now; res = 1
		:: else -> res = 0
		fi
	}
}

/* touch, re-creating what is gone (kvs__segw_touch) */
inline touch_or_create(s, res, tt)
{
	touch(s, res, tt);
	if
	:: res == 0 -> create(s, res, tt)
	:: else
	fi
}

/*
 * Puts of content s (chosen nondeterministically), blind: after a 409 the
 * put rebases once on the new base and commits again. A crashable writer
 * may die after its create or before its refresh (what it leaves is
 * orphans), or after a late commit before its touch (what it leaves is an
 * index never acknowledged that may reference a collected segment) — the
 * one crash.
 */
proctype writer(byte nputs; bool crashable)
{
	byte bv, bseg, s, t1, res, n = 0, tries, myver;
	bool mine, blate, late;

	do
	:: n == nputs -> break
	:: n < nputs ->
w_read_base:	atomic {
			n++; tries = 0;
			bv = idx_ver; bseg = idx_seg; blate = idx_late;
			if
			:: s = 0
			:: s = 1
			fi
		}
		/* reuse from the base if the base segment checks out, else write it */
w_check_base:	atomic {
			if
			:: s == bseg && exists[s] -> mine = false
			:: else -> mine = true
			fi
		}
		if
		:: !mine && BASE_LATE(blate) ->
			/* a base committed late protects nothing: touch what is
			 * reused from it, like an AlreadyExists segment; gone: write
			 * it anew */
w_touch_late_base:	touch(s, res, t1);
			mine = true;
			if
			:: res == 1 -> goto w_refresh
			:: else
			fi
		:: !mine && !BASE_LATE(blate) -> goto w_refresh
		:: mine
		fi;
w_create:	atomic {
			t1 = now;
			if
			:: !exists[s] -> exists[s] = true; rvc++; rv[s] = rvc; t[s] = now; res = 1
			:: else -> res = 0
			fi;
			if
			:: crashable && crashes > 0 -> crashes--; goto w_done
			:: true
			fi
		}
		if
		:: res == 0 ->
#ifndef NO_TOUCH_ON_EXISTS
w_touch_exists:		touch_or_create(s, res, t1)
#else
			skip
#endif
		:: else
		fi;
		/* refresh, then commit: the clock may run any time in between (a
		 * pause, a slow request), which is what makes a commit late */
w_refresh:	atomic {
			if
			:: crashable && crashes > 0 -> crashes--; goto w_done
			:: true
			fi;
			if
			:: mine && now - t1 >= HALFW ->
				touch(s, res, t1);
				if
				:: res == 0 -> goto w_next   /* gone: KVS_ESTALE, nothing committed */
				:: else
				fi
			:: else
			fi
		}
w_commit:	atomic {
			if
			:: idx_ver == bv ->
				/* late: the commit's server time (managedFields) is more
				 * than W/2 after the T_check it carries (= t1 here: the
				 * refresh leaves t1 = now); an index of reused segments
				 * only has nothing to be late for */
				late = mine && now - t1 > HALFW;
				vc++; idx_ver = vc; idx_seg = s; idx_late = late; res = 1;
				myver = (late -> vc : 0);
				idx_acked = !late;
				/* INV: an acknowledged index references a segment that exists */
				assert(late || exists[s])
			:: else -> res = 0
			fi
		}
		if
		:: res == 1 && late ->
			/* committed late: touch what this put wrote, then acknowledge
			 * (gone: an error, never an acknowledgement) */
w_late_touch:		atomic {
				late = false;
				if
				:: crashable && crashes > 0 -> crashes--; goto w_done
				:: true
				fi;
#ifndef NO_LATE_TOUCH
				touch(s, res, t1);
#endif
				if
				:: res == 0 -> myver = 0; goto w_next   /* gone: KVS_ESTALE */
				:: res == 1 && idx_ver == myver ->
w_ack:					idx_acked = true;
					assert(exists[s])
				:: else
				fi;
				myver = 0
			}
		:: else
		fi;
		if
		:: res == 0 && tries == 0 ->
w_rebase:		atomic { tries++; bv = idx_ver; bseg = idx_seg; blate = idx_late }
			if
			:: !mine && (bseg != s || BASE_LATE(blate)) ->
#ifndef NO_REBASE_TOUCH
w_rebase_touch:			touch_or_create(s, res, t1);
				mine = true
#else
				skip
#endif
			:: else
			fi;
			goto w_refresh
		:: else
		fi;
w_next:		skip
	od;
w_done:	skip
}

proctype gc(byte runs)
{
	bool listed[NSEG];
	byte lrv[NSEG], lt[NSEG], s, ref, tb, r = 0;

	do
	:: r == runs -> break
	:: r < runs ->
gc_list:	d_step {
			r++;
			s = 0;
			do
			:: s < NSEG -> listed[s] = exists[s]; lrv[s] = rv[s]; lt[s] = t[s]; s++
			:: else -> break
			od;
			s = 0
		}
gc_time:	tb = now;
gc_read:	ref = idx_seg;
		do
		:: s < NSEG ->
gc_delete:		d_step {
				if
				:: listed[s] && s != ref && OLD_ENOUGH(s) && exists[s] && PRECOND(s) ->
					exists[s] = false;
					/* INV: never the segment of an acknowledged committed index */
					assert(!idx_acked || idx_seg != s)
				:: else
				fi;
				s++
			}
		:: else -> break
		od
	od
}

proctype reader()
{
	byte v, s;

	atomic { v = idx_ver; s = idx_seg };
	if
	:: s != NONE -> assert(exists[s] || idx_ver != v || !idx_acked)
	:: else
	fi
}

active proctype clock()
{
end:	do
	:: atomic { now < MAXT -> now++ }
	od
}

init {
	atomic {
		/* the store holds version 1 of the key, on S0, written at time 0 */
		exists[0] = true; rvc = 1; rv[0] = 1; t[0] = 0;
		vc = 1; idx_ver = 1; idx_seg = 0; idx_acked = true;
		run writer(1, false);
		run writer(1, true);
		run reader();
		run gc(GCRUNS)
	}
}
