/*
 * segwrite.h — the segment writer: what every value kind does to get its
 * chunks into segments that a commit may reference (docs/design.md "Put",
 * steps 2–5). It takes blobs already compressed, with their addresses, and
 *
 *  - packs them into segments of about segment_target stored bytes, seals
 *    each (address = XXH3-128 of its canonical encoding), and creates them
 *    `concurrency` at a time through the backend's batch (`concurrency / 2`
 *    at a time on a thread of its own, for a value kind that sets async);
 *  - on AlreadyExists, touches the object it found (metadata-only update:
 *    gc cannot take it) and then verifies it is this segment — immutable,
 *    labelled as ours, content hashing to its name — fixing in place what
 *    can be fixed without a moment of absence, refusing (KVS_ECORRUPT,
 *    naming it) what cannot;
 *  - checks the base segments a write plans to reuse by their metadata: on
 *    the server, immutable and ours (kvs__segw_check_reuse);
 *  - before the commit, touches again what it created or touched too long
 *    ago, on the monotonic clock and in server time (kvs__segw_refresh),
 *    and after a lost commit race, what it reuses from a base that is no
 *    longer the base (kvs__segw_rebase);
 *  - keeps one slot per segment the write may reference, saying whether it
 *    was created, touched or reused, and when.
 *
 * The value kind (put.c for opaque values; key-split maps next) owns the
 * chunk table and the manifest; slots are the only thing they share.
 */
#ifndef KVS_SEGWRITE_H
#define KVS_SEGWRITE_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/*
 * Index annotation: T_check, the server time (decimal Unix ms) of the
 * writer's last touch check before this commit (kvs__segw_refresh), or "-"
 * when the write created or touched no segment it references (docs/format.md
 * §1.1, design.md "The pause hole closed").
 */
#define KVS__ANN_CHECKED "kvsplit.io/checked"

/* What a write cost; the fields of kvs_put_stats of the same names. */
typedef struct kvs__wstats {
	uint64_t requests;
	uint64_t segments_written;
	uint64_t chunks_written;
	uint64_t bytes_written;
} kvs__wstats;

typedef enum kvs__slot_state {
	KVS__SLOT_OPEN = 0,     /* being filled, sealed but not created yet, or a base
	                         * segment not checked yet */
	KVS__SLOT_REUSED,       /* a base segment, checked, reused without a write */
	KVS__SLOT_UNUSABLE,     /* a base segment that failed the check: never referenced */
	KVS__SLOT_CREATED,      /* created by this write */
	KVS__SLOT_TOUCHED       /* found (AlreadyExists, or reused and touched), verified,
	                         * and touched by this write */
} kvs__slot_state;

/* A segment this write may reference. */
typedef struct kvs__slot {
	uint8_t addr[16];
	uint64_t bytes;         /* stored bytes of all its chunks */
	uint32_t nchunks;
	kvs__slot_state state;
	int64_t t_mono;         /* CREATED/TOUCHED: when, local monotonic ms */
	int64_t t_srv;          /* the same on the server clock (a lower bound) */
	int ref;                /* set by the value kind: a manifest it built references it */
	/* The value kind's own bookkeeping; the writer never reads these. */
	uint64_t live;
	uint32_t out;
} kvs__slot;

/* Created or touched by this write (the touch window applies). */
static inline int kvs__slot_fresh(const kvs__slot *sl)
{
	return sl->state == KVS__SLOT_CREATED || sl->state == KVS__SLOT_TOUCHED;
}

typedef struct kvs__segw {
	kvs_store *s;
	const char *key;        /* the key written, for errors */
	kvs__wstats *st;        /* counters, shared with the commit */
	kvs__slot *slots;
	size_t nslots, capslots;
	/* the open segment */
	kvs__seg_entry *bent;
	size_t nbent, capbent;
	uint64_t bbytes;
	uint32_t bslot;
	/* sealed, not yet created; with `seal_workers` set, a sealed segment's
	 * object is built (sorted, hashed, named) only at the flush, all of
	 * them at once on that many threads: pend[i] is NULL and pent[i] /
	 * npent[i] hold its entries until then */
	kvs_object *pend[KVS__MAX_CONCURRENCY];
	uint32_t pslot[KVS__MAX_CONCURRENCY];
	kvs__seg_entry *pent[KVS__MAX_CONCURRENCY];
	size_t npent[KVS__MAX_CONCURRENCY];
	size_t npend;
	unsigned int seal_workers;   /* 0: build each segment when it is sealed */
	/* Creating in the background (put.c sets it, with seal_workers): a
	 * flush that `concurrency / 2` sealed segments start is handed to a
	 * thread of its own, and the value kind goes on compressing while it
	 * runs; the next flush, or any call below that reads slots or calls
	 * the backend, first waits for it and takes its answers. At most one
	 * batch is in flight, so memory stays what `concurrency` sealed
	 * segments take. A batch that took under 1 ms (the in-memory backend)
	 * turns this off for the rest of the write: a thread would only take
	 * the cores from the compression. */
	int async;
	int fast_creates;              /* the last batch took < 1 ms: flush on the caller */
	struct kvs__segw_flight *fl;   /* the batch being created (lazily allocated) */
	/* T_check of the last kvs__segw_refresh: server ms, -1 when no fresh
	 * slot is referenced (nothing to check) */
	int64_t t_check;
} kvs__segw;

void kvs__segw_init(kvs__segw *w, kvs_store *s, const char *key, kvs__wstats *st);
/* Frees blobs and objects not yet written. Accepts a zeroed writer. */
void kvs__segw_free(kvs__segw *w);

/* A new slot, zeroed (state OPEN): *out is its index (stable). */
int kvs__segw_slot_add(kvs__segw *w, uint32_t *out);

/*
 * Add one compressed chunk blob (address `addr` = XXH3-128 of its raw
 * bytes) to the open segment; takes `blob` (malloc'd) also on failure.
 * Seals the open segment first when the blob would overflow it, and
 * creates sealed segments when `concurrency` of them wait. *slot gets the
 * slot the chunk is in.
 */
int kvs__segw_add(kvs__segw *w, const uint8_t addr[16], uint8_t *blob, uint32_t len,
                  uint32_t *slot);

/*
 * Seal the open segment (queue it), and create everything queued. With
 * w->seal_workers set, a sealed segment's address (its slot's addr) is
 * known only after the next flush: a value kind that reads it right after
 * a seal (history.c) leaves seal_workers 0.
 */
int kvs__segw_seal(kvs__segw *w);
int kvs__segw_flush(kvs__segw *w);
/* Wait for a batch created in the background (w->async) and take its
 * answers; 0 when none is in flight. kvs__segw_flush and every call below
 * do this first. */
int kvs__segw_wait(kvs__segw *w);

/* The entry of chunk `addr` in the open segment, or NULL. */
const kvs__seg_entry *kvs__segw_open_find(const kvs__segw *w, const uint8_t addr[16]);
/* Drop the open segment's blobs (its chunks go elsewhere, e.g. inline). */
void kvs__segw_discard_open(kvs__segw *w);

/*
 * Check the base segments in slots [first, first + n) (addr, bytes and
 * nchunks set, state OPEN) before the write relies on them: the metadata of
 * each is read from the server (KVS_OP_HEAD, not the cache), `concurrency`
 * at a time; it must exist, be immutable, be labelled as this store's
 * segment, and (when the backend reports a data size) hold `bytes` bytes.
 * When the base was committed `late` (kvs__index_late), each that passes is
 * then touched like an AlreadyExists segment (TOUCHED; gone: UNUSABLE).
 * Each slot ends REUSED, TOUCHED or UNUSABLE: a value kind never references an
 * unusable one and writes its chunks again instead (and a create that then
 * meets an object under the name reads it back whole: settle_existing).
 * Costs one metadata read per segment (no data); an operational error fails
 * the call.
 */
int kvs__segw_check_reuse(kvs__segw *w, uint32_t first, size_t n, int late);

/*
 * Was index `idx` (as read: annotations and updated_ms) committed late —
 * more than W/2 after its writer's last touch check, by the server's clock
 * — or is that unknown (no T_check, no server time of the commit, a T_check
 * after the commit)? 1 late or unknown, 0 on time or nothing to be late for.
 * A late base protects nothing: a write reusing its segments touches them
 * first (check_reuse's `late`, kvs__segw_touch_base, kvs__segw_rebase).
 */
int kvs__index_late(const kvs_store *s, const kvs_object *idx);

/*
 * A value kind that references segments of a base `late` (kvs__index_late)
 * without slots of its own (a map's runs): add one TOUCHED, referenced slot
 * per address and touch it. KVS_ESTALE if one is gone (the writer does not
 * hold its bytes: the base is damaged, fsck reports it).
 */
int kvs__segw_touch_base(kvs__segw *w, const uint8_t (*addrs)[16], size_t n);

/*
 * After the commit landed, at server time `commit_ms` (the response's
 * updated_ms, 0 unknown): when that is more than W/2 after t_check (or
 * unknown), gc may have listed and judged what this write created or
 * touched before the commit was visible, so every fresh, referenced slot is
 * touched again before the write is acknowledged. A segment gone by then
 * is KVS_ESTALE: committed, never acknowledged (the writer keeps no copy of
 * a segment after creating it; a put again writes it anew).
 */
int kvs__segw_after_commit(kvs__segw *w, int64_t commit_ms);

/* Touch the segment of a slot (it becomes TOUCHED). KVS_ENOTFOUND if gone. */
int kvs__segw_touch(kvs__segw *w, uint32_t slot);

/*
 * Step 5: every fresh, referenced slot must have been created or touched
 * less than half the touch window ago on both clocks; touch again what was
 * not, until a pass touches nothing (at most 4, then KVS_ETIMEOUT). A
 * segment gone by then fails the put with KVS_ESTALE.
 */
int kvs__segw_refresh(kvs__segw *w);

/*
 * After a blind write lost the commit race: `idx` is the new base (NULL:
 * the key is gone). Every REUSED, referenced slot that the new base's
 * committed version does not reference is touched (one kept only in its
 * history is touched too: reading history objects would cost more than the
 * touch), since the base that protected it is no longer the one the commit
 * is conditioned on — and every one when the new base was committed late
 * (it protects nothing). KVS_ECONFLICT if one is gone.
 */
int kvs__segw_rebase(kvs__segw *w, const kvs_object *idx);

#endif
