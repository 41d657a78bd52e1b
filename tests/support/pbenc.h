/*
 * pbenc.h — a test-only protobuf writer: enough of the wire (varints,
 * fixed, length-delimited fields, map entries, the Kubernetes "k8s\0" +
 * runtime.Unknown envelope) to build the bodies the protobuf reader of
 * kube/proto.c is tested and fuzzed with, well-formed or not. Aborts on
 * out of memory (test code only).
 */
#ifndef KVS_TEST_PBENC_H
#define KVS_TEST_PBENC_H

#include <stddef.h>
#include <stdint.h>

typedef struct pbenc {
	uint8_t *p;
	size_t n, cap;
} pbenc;

void pbe_free(pbenc *e);
void pbe_raw(pbenc *e, const void *p, size_t n);
void pbe_varint(pbenc *e, uint64_t v);
void pbe_tag(pbenc *e, unsigned num, unsigned wt);
/** Field `num`, wire type 0. */
void pbe_uint(pbenc *e, unsigned num, uint64_t v);
/** Field `num`, wire type 1 (w = 8) or 5 (w = 4). */
void pbe_fixed(pbenc *e, unsigned num, uint64_t v, unsigned w);
/** Field `num`, wire type 2. */
void pbe_bytes(pbenc *e, unsigned num, const void *p, size_t n);
void pbe_str(pbenc *e, unsigned num, const char *s);
void pbe_msg(pbenc *e, unsigned num, const pbenc *m);
/** A map entry {1 key, 2 value} as field `num`. */
void pbe_entry(pbenc *e, unsigned num, const char *key, const void *v, size_t vn);
/** A Time {1 seconds, 2 nanos} as field `num`. */
void pbe_time(pbenc *e, unsigned num, int64_t s, int32_t ns);
/** out = "k8s\0" + Unknown {1 typeMeta {1 "v1", 2 kind}, 2 raw}. */
void pbe_envelope(pbenc *out, const char *kind, const pbenc *raw);

#endif
