/*
 * kube_proto_fuzzer.c — the protobuf answers of the Kubernetes API server
 * (kube/proto.c) from arbitrary bytes. The first byte chooses the reader,
 * the rest is the body:
 *
 *   0  one ConfigMap (full decode)     1  one ConfigMap, metadata only
 *   2  a Status (error answer)         3  the Content-Type dispatch of a
 *      ConfigMap body: the body's first line is the Content-Type
 *
 * Nothing may crash, leak or read out of bounds. What parses must make
 * sense: the checks of the JSON reader hold (name, resourceVersion, keys),
 * data_bytes is the data's size, a metadata-only read of the same body
 * succeeds with the same size, and the object serialises as JSON and
 * parses back to the same keys and bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/json_roundtrip.h"
#include "kube/proto.h"

static void check_object(const kvs_object *o, const uint8_t *p, size_t n)
{
	uint64_t sum = 0;
	kvs_object *m = NULL;

	if (!o || !o->name || !o->name[0] || strlen(o->name) > 253 || !o->resource_version ||
	    !o->uid || strlen(o->resource_version) >= KVS_VER_MAX)
		abort();
	for (size_t i = 0; i < o->ndata; i++) {
		if (!o->data[i].key || (o->data[i].len && !o->data[i].data))
			abort();
		sum += o->data[i].len;
	}
	if (o->ndata && sum != o->data_bytes)
		abort();
	if (kvs__kube_proto_object(&m, p, n, KVS__KJ_META_ONLY, "fuzz") != 0 || m->ndata ||
	    m->data_bytes != o->data_bytes || strcmp(m->name, o->name) != 0)
		abort();
	kvs_object_free(m);
	json_roundtrip(o, 0);
}

static void check_status(const kvs__kube_status *st)
{
	if (st->code < 0 || st->code >= 1000 || st->retry_after_s > 86400 ||
	    !memchr(st->reason, '\0', sizeof(st->reason)) ||
	    !memchr(st->message, '\0', sizeof(st->message)) ||
	    !memchr(st->details_kind, '\0', sizeof(st->details_kind)) ||
	    !memchr(st->details_name, '\0', sizeof(st->details_name)))
		abort();
	for (const char *s = st->message; *s; s++)
		if ((unsigned char)*s < 0x20)
			abort(); /* control bytes are blanked */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kvs_object *o = NULL;
	kvs__kube_status st;
	const uint8_t *p = data + 1;
	size_t n = size ? size - 1 : 0;

	if (size == 0)
		return 0;
	switch (data[0] & 3) {
	case 0:
	case 1: {
		unsigned flags = (data[0] & 3) ? KVS__KJ_META_ONLY : 0;

		if (kvs__kube_proto_object(&o, p, n, flags, "fuzz") == 0) {
			if (flags && o->ndata)
				abort(); /* metadata only: nothing copied */
			if (!flags)
				check_object(o, p, n);
		} else if (o) {
			abort(); /* an error leaves no object */
		}
		break;
	}
	case 2:
		(void)kvs__kube_proto_status(&st, p, n);
		check_status(&st);
		kvs__kube_status_decode(&st, KVS__KUBE_PROTOBUF, (const char *)p, n);
		check_status(&st);
		break;
	default: {
		const uint8_t *nl = memchr(p, '\n', n);
		char ct[128];
		size_t cl = nl ? (size_t)(nl - p) : 0;
		char *copy;

		if (!nl || cl >= sizeof(ct))
			return 0;
		memcpy(ct, p, cl);
		ct[cl] = '\0';
		n -= cl + 1;
		/* the JSON reader wants a NUL after the body, as the HTTP layer gives */
		if (!(copy = malloc(n + 1)))
			return 0;
		memcpy(copy, nl + 1, n);
		copy[n] = '\0';
		if (kvs__kube_object_decode(&o, ct, copy, n, 0, "fuzz") == 0 &&
		    (!o || !o->name || !o->name[0]))
			abort();
		free(copy);
		break;
	}
	}
	kvs_object_free(o);
	return 0;
}
