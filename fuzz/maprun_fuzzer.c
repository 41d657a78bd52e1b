/*
 * maprun_fuzzer.c — the pieces of key-split maps on arbitrary bytes
 * (store/maprun.c, format.md §5): the first byte picks the target.
 *
 *   0: a run table (the raw bytes of §5.2; the harness compresses them into
 *      the manifest's blob, with (data[1] % 5) segments in the table, and
 *      as a version 4 table, §5.5, when data[1] has bit 7). What decodes
 *      must encode again and decode to the same table (a version 4 table
 *      only decodes up to its base table reference here: no segments).
 *   1: a run (§5.4): kvs__mrun_describe, then a cursor over its records;
 *      what describes must walk to the same count, in strictly increasing
 *      order, and rebuild with msgpack-c to a run no longer that describes
 *      the same.
 *   2: a map manifest (§5.1) as a whole, then its run table.
 */
#include <stdlib.h>
#include <string.h>

#include "kvsplit.h"
#include "codec.h"
#include "manifest.h"
#include "maprun.h"

static void table_roundtrip(const kvs__mapidx *ix)
{
	kvs__manifest m;
	kvs__mapidx d;

	memset(&m, 0, sizeof(m));
	if (kvs__mapidx_encode(&m, ix, 1) != 0)
		abort();   /* decoded means consistent: encoding must work */
	if (kvs__mapidx_decode(&d, &m, "fuzz") != 0 || d.nruns != ix->nruns || d.nsegs != ix->nsegs)
		abort();
	for (uint32_t i = 0; i < d.nruns; i++)
		if (memcmp(d.runs[i].addr, ix->runs[i].addr, 16) != 0 ||
		    d.runs[i].nent != ix->runs[i].nent || d.runs[i].seq != ix->runs[i].seq)
			abort();
	kvs__mapidx_clear(&d);
	kvs__manifest_clear(&m);
}

static void fuzz_table(const uint8_t *data, size_t size)
{
	kvs__manifest m;
	kvs__mapidx ix;
	size_t bound;

	if (size < 1 || size > KVS__MF_RUNTAB_MAX)
		return;
	memset(&m, 0, sizeof(m));
	m.kind = KVS__MF_MAP;
	m.nsegs = (data[0] & 0x7f) % 5;
	m.map_v4 = !!(data[0] & 0x80);
	data++;
	size--;
	if (m.nsegs && !(m.segs = calloc(m.nsegs, sizeof(*m.segs))))
		return;
	for (uint32_t j = 0; j < m.nsegs; j++) {
		memset(m.segs[j].addr, (int)j + 1, 16);
		m.segs[j].bytes = 1u << 20;
		m.segs[j].nchunks = 64;
	}
	bound = kvs__blob_bound(size);
	if (!(m.runtab = malloc(bound ? bound : 1))) {
		kvs__manifest_clear(&m);
		return;
	}
	m.runtab_len = (uint32_t)kvs__blob_encode(m.runtab, bound, data, size, 1);
	m.runtab_raw = (uint32_t)size;
	if (kvs__mapidx_decode(&ix, &m, "fuzz") == 0 && !ix.bt_pending)
		table_roundtrip(&ix);
	kvs__mapidx_clear(&ix);
	kvs__manifest_clear(&m);
}

static void fuzz_run(const uint8_t *data, size_t size)
{
	kvs__mrun r;
	kvs__mcur c = { data, size, 0 };
	kvs__mbuild b;
	kvs__ment e, prev;
	uint32_t n = 0;
	int rc;

	memset(&r, 0, sizeof(r));
	if (kvs__mrun_describe(&r, data, size) != 0) {
		kvs__mrun_clear(&r);
		return;
	}
	kvs__mbuild_init(&b);
	while ((rc = kvs__mcur_next(&c, &e)) == 0) {
		if (n && kvs__mname_cmp(prev.name, prev.nlen, e.name, e.nlen) >= 0)
			abort();   /* described means strictly increasing */
		if (kvs__mbuild_add(&b, &e) != 0)
			abort();
		prev = e;
		n++;
	}
	if (rc != KVS_EITER_DONE || n != r.nent)
		abort();
	/* msgpack-c writes the narrowest widths; the input may use wider
	 * ones (valid msgpack, admitted): the rebuilt run describes the same */
	{
		kvs__mrun r2;
		memset(&r2, 0, sizeof(r2));
		if (kvs__mrun_describe(&r2, (const uint8_t *)b.sb.data, b.sb.size) != 0 ||
		    r2.nent != r.nent || r2.ntomb != r.ntomb ||
		    kvs__mname_cmp(r2.min, r2.minlen, r.min, r.minlen) != 0 ||
		    kvs__mname_cmp(r2.max, r2.maxlen, r.max, r.maxlen) != 0 || b.sb.size > size)
			abort();
		kvs__mrun_clear(&r2);
	}
	kvs__mbuild_free(&b);
	kvs__mrun_clear(&r);
}

static void fuzz_manifest(const uint8_t *data, size_t size)
{
	kvs__manifest m;
	kvs__mapidx ix;

	if (kvs__manifest_decode(&m, data, size, "fuzz") == 0 && m.kind == KVS__MF_MAP) {
		if (kvs__mapidx_decode(&ix, &m, "fuzz") == 0 && !ix.bt_pending)
			table_roundtrip(&ix);
		kvs__mapidx_clear(&ix);
	}
	kvs__manifest_clear(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fuzz_table(data + 1, size - 1);
		break;
	case 1:
		fuzz_run(data + 1, size - 1);
		break;
	default:
		fuzz_manifest(data + 1, size - 1);
		break;
	}
	return 0;
}
