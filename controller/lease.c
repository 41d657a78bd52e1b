/*
 * lease.c — the Lease expiry judge (client-go leaderelection semantics).
 */
#include <string.h>

#include "controller/lease.h"

int kvc_lease_observe(kvc_observed *o, const kvc_lease *rec, int64_t now, int first)
{
	if (!first && strcmp(o->rec.rv, rec->rv) == 0) {
		o->present = 1;
		return 0;
	}
	if (first)
		memset(o, 0, sizeof(*o));
	o->rec = *rec;
	o->seen_at = now;
	o->present = 1;
	return 1;
}
