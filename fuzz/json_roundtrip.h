/*
 * fuzz/json_roundtrip.h — a check the kube_json and kube_proto harnesses
 * share: an object a reader took can be written as a JSON body and read
 * back with the same name and data. Abort (the fuzzer's finding) if not.
 */
#ifndef KVS_FUZZ_JSON_ROUNDTRIP_H
#define KVS_FUZZ_JSON_ROUNDTRIP_H

#include <stdlib.h>
#include <string.h>

#include "kube/json.h"

/* same_size: also the data size the read-back object reports. */
static void json_roundtrip(const kvs_object *o, int same_size)
{
	kvs_object *back = NULL;
	char *body = NULL;
	size_t blen = 0;

	if (kvs__kube_body_object(&body, &blen, o, "ns", 1) != 0)
		abort();
	if (kvs__kube_object_parse(&back, body, blen, 0, "fuzz roundtrip") != 0 ||
	    back->ndata != o->ndata ||
	    (same_size && o->ndata && back->data_bytes != o->data_bytes) ||
	    strcmp(back->name, o->name) != 0)
		abort();
	for (size_t i = 0; i < o->ndata; i++)
		if (strcmp(back->data[i].key, o->data[i].key) != 0 ||
		    back->data[i].len != o->data[i].len ||
		    (o->data[i].len && memcmp(back->data[i].data, o->data[i].data, o->data[i].len)))
			abort();
	kvs_object_free(back);
	free(body);
}

#endif
