/*
 * segment_fuzzer.c — segment objects and chunk blobs from untrusted bytes.
 * The input is split into entries: [1 byte key selector][2 bytes BE length]
 * [bytes]. Entries become binaryData of a segment object (keys: a valid
 * 32-hex address, or a malformed one); the segment is opened, every chunk is
 * looked up and decoded with a declared raw size taken from the input, as a
 * get would. Nothing may crash or read out of bounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "names.h"
#include "segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kvs_object *o = kvs_object_new("kvs.fuzz.s-00000000000000000000000000000000");
	kvs__segment *s = NULL;
	uint8_t addr[16] = { 0 }, *raw = malloc(1u << 20);
	size_t off = 0;

	if (!o || !raw) {
		kvs_object_free(o);
		free(raw);
		return 0;
	}
	while (off + 3 <= size && o->ndata < 64) {
		uint8_t sel = data[off];
		size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
		char key[40];
		uint8_t a[16];
		off += 3;
		if (len > size - off)
			len = size - off;
		memset(a, 0, sizeof(a));
		memcpy(a, data + off, len < 16 ? len : 16);
		a[15] ^= sel;
		if (sel & 0x80)
			snprintf(key, sizeof(key), "not-hex-%u", sel);
		else
			kvs__hex(key, a, 16);
		kvs_object_add_data(o, key, data + off, len);
		off += len;
	}
	if (kvs__seg_open(&s, o, addr, 1048576) == 0) {
		for (size_t i = 0; i < s->obj->ndata; i++) {
			uint8_t a[16];
			const kvs_blob *b;
			if (kvs__unhex(a, s->obj->data[i].key, 16) < 0)
				continue;
			b = kvs__seg_find(s, a);
			if (!b)
				abort();   /* every valid key must be found */
			size_t want = b->len ? (size_t)(b->data[b->len - 1]) << 10 | b->len : 0;
			if (want > (1u << 20))
				want = 1u << 20;
			kvs__blob_decode(raw, want, b->data, b->len);
		}
		kvs__seg_unref(s);
	}
	free(raw);
	return 0;
}
