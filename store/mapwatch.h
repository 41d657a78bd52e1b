/*
 * mapwatch.h — field events for watches on key-split maps (watch.c, with
 * KVS_WATCH_FIELDS): what a new version of a map key added, changed and
 * deleted relative to the version the watch last delivered for it.
 *
 * The watch keeps, per map key, the state of the version it delivered:
 * every field name with its version, and the run table's runs (address,
 * level, range; for delta runs the names they hold). A new version is
 * compared run by run: runs it shares with the old table are unchanged and
 * never fetched. The candidates are the names in the runs it added (a
 * batch's delta, a compaction's rewritten base runs) and the names the
 * state holds in runs it dropped; each candidate is looked up in the new
 * table (newest run first, stopping at the first that holds it: for a
 * batch, its own delta) and compared with the state by version.
 */
#ifndef KVS_MAPWATCH_H
#define KVS_MAPWATCH_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

typedef struct kvs__mfstate kvs__mfstate;

/* The changes of one event; owns its names and values. */
typedef struct kvs__mfchanges {
	kvs_map_field_change *v;
	size_t n, cap;
	uint8_t **bufs;
	size_t nbufs, capbufs;
	uint64_t vbytes;         /* bytes of the values delivered */
	size_t withheld;         /* changes whose value was over the budget */
} kvs__mfchanges;

void kvs__mfchanges_clear(kvs__mfchanges *c);

/*
 * The changes from *state (NULL: nothing delivered yet, every field is
 * ADDED) to map manifest `m`, into *out (cleared first); on success
 * *state is replaced by the state of `m`. On error nothing changes.
 * `values`: return the new values too, in field order while their total
 * stays within `max_bytes` (the watch's max_bytes); from the first that
 * would pass it on, a change carries value NULL and value_len its length
 * (counted in out->withheld). Names and versions are always complete.
 */
int kvs__mapwatch_diff(kvs__mfstate **state, kvs__mfchanges *out, kvs_store *s,
                       const kvs__manifest *m, int values, uint64_t max_bytes, const char *what);

void kvs__mfstate_free(kvs__mfstate *st);

#endif
