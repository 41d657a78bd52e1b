/*
 * history.h — the older versions a key keeps (docs/design.md "History",
 * docs/format.md §6), the way Helm keeps release revisions.
 *
 * The committed index of a key carries a bounded history table: one record
 * per older version, newest first, each naming a *history object* — an
 * ordinary immutable, content-addressed segment holding exactly one chunk,
 * that version's encoded index manifest (without its own history table).
 * The segments the old version's value uses are shared with the versions
 * around it, so a version costs only the bytes its commit wrote.
 *
 * A writer creates (or touches, on AlreadyExists) the history object of its
 * base through the segment writer like any segment it references, before
 * its commit and within the touch window, so gc's argument covers it
 * unchanged; the older records it carries over are reached through the
 * base the commit is conditioned on, like segments reused from the base.
 * refs.c walks history (the objects, then each version's own references),
 * so gc and fsck count it.
 *
 * The table is parsed here, strictly, only when it is used: a damaged table
 * gives KVS_ECORRUPT to whoever asks for history (log, a read of an old
 * version, gc, fsck) and never makes the committed value unreadable.
 */
#ifndef KVS_HISTORY_H
#define KVS_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "segwrite.h"

#define KVS__HIST_REC 72u                 /* bytes of one record (format.md §6.2) */
#define KVS__HIST_MF_MAX (1u << 20)       /* largest manifest a history object holds */
#define KVS__HIST_UNKNOWN UINT64_MAX      /* time/added of a version 1 manifest */

/* One older version (format.md §6.2). */
typedef struct kvs__hentry {
	uint64_t gen;
	uint64_t time_ms;        /* KVS__HIST_UNKNOWN: written before history existed */
	uint64_t length;
	uint64_t added;          /* KVS__HIST_UNKNOWN likewise */
	uint8_t seg[16];         /* the history object (a segment) */
	uint8_t addr[16];        /* XXH3-128 of the encoded manifest: its chunk address */
	uint32_t raw_len;        /* encoded manifest bytes */
	uint32_t stored_len;     /* its blob in the segment */
} kvs__hentry;

/*
 * Parse and check the history table of decoded manifest `m` (whose
 * generation the records must precede, strictly decreasing). *out
 * (malloc'd, may be NULL when *n is 0) gets the records. KVS_ECORRUPT
 * naming `what` for a damaged table; a manifest without one gives 0 records.
 */
int kvs__hist_parse(kvs__hentry **out, uint32_t *n, const kvs__manifest *m, const char *what);

/*
 * Read version `e` of `key`: fetch its history object (through the cache),
 * verify the blob against its address, decode the manifest and check it is
 * this key's version e->gen, of e->length bytes, with no history of its own.
 * *m is that version's index manifest (blob or indirect: resolve it with
 * kvs__manifest_resolve). KVS_ENOTFOUND (object gone) / KVS_ECORRUPT name
 * the version and the object.
 */
int kvs__hist_open(kvs__manifest *m, kvs_store *s, const kvs__hentry *e, const char *key,
                   size_t key_len, uint64_t *requests);

/*
 * The resolved (blob) manifest of version `gen` of the key whose index is
 * `idx`: the committed one, or one its history keeps. KVS_ENOTFOUND if none.
 */
int kvs__hist_load(kvs__manifest *m, kvs_store *s, const kvs_object *idx, const char *key,
                   size_t key_len, uint64_t gen, uint64_t *requests);

/* ---- the writer's side ---------------------------------------------------- */

/* What a commit adds to the history of its base. */
typedef struct kvs__hstage {
	int on;                  /* the store keeps history: the manifest is version 3 */
	uint8_t *blob;           /* the base's history object's chunk blob (owned) */
	uint32_t blob_len, raw_len;
	uint8_t addr[16];
	uint8_t *tab;            /* the new history table (owned) */
	uint32_t tab_len;
	int has_slot;            /* the history object is in the segment writer */
	uint32_t slot;
} kvs__hstage;

/*
 * Prepare the history a commit on base index `base` (NULL: a new key)
 * keeps: the base version's history object (its manifest without its
 * history table) and the new table — the base's record first, then the
 * base's own records, at most s->history in all. A base that does not
 * decode, or a map, is not kept; a base whose table does not parse
 * contributes only its own record (dropping a record is always safe).
 * Called again on a new base after a lost commit race: the previous
 * history object's slot stops being referenced.
 */
int kvs__hist_prepare(kvs__hstage *h, kvs__segw *w, const kvs_object *base, const char *key,
                      size_t key_len);

/*
 * Hand the prepared history object to the segment writer as a segment of
 * its own, referenced (the touch-window refresh covers it); the caller then
 * seals and flushes. No-op without one.
 */
int kvs__hist_write(kvs__hstage *h, kvs__segw *w);

/*
 * Set the version-3 fields of manifest `m` about to be committed: the
 * commit's server time, `added`, and the prepared table (borrowed: do not
 * clear m's hist; kvs__hist_detach before freeing m). No-op when off.
 */
int kvs__hist_apply(kvs__manifest *m, const kvs__hstage *h, kvs_store *s, uint64_t added);
void kvs__hist_detach(kvs__manifest *m);

/* Stored bytes of the segments this write created and references, but
 * not the history object: the `added` of a put. */
uint64_t kvs__hist_added(const kvs__hstage *h, const kvs__segw *w);

void kvs__hstage_clear(kvs__hstage *h);

#endif
