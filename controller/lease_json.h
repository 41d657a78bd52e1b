/*
 * lease_json.h — a kvc_lease to and from the coordination.k8s.io/v1 Lease
 * JSON the API server speaks. The member's data rides in metadata: the
 * label kvsplit.io/group, the annotations kvsplit.io/shards (ranges),
 * kvsplit.io/epoch and kvsplit.io/vshards. A Lease from the server is
 * untrusted: every string is length-checked, the shard list parsed with
 * bounds, and a malformed record is KVS_ECORRUPT with *out untouched.
 */
#ifndef KVC_LEASE_JSON_H
#define KVC_LEASE_JSON_H

#include <cjson/cJSON.h>

#include "controller/lease.h"

/** A new Lease document for create/update (namespace is the URL's). */
int kvc_lease_to_json(cJSON **out, const kvc_lease *rec);
/** Read a Lease document. */
int kvc_lease_from_json(kvc_lease *out, const cJSON *obj);

#endif
