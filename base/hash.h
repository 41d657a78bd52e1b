/*
 * base/hash.h — xxHash as the store uses it: XXH3-64 and XXH3-128, one-shot
 * and streaming, with the state type visible (XXH_STATIC_LINKING_ONLY).
 *
 * On x86-64 the calls go to libxxhash's runtime-dispatched variants
 * (xxh_x86dispatch.h: XXH3_128bits -> XXH3_128bits_dispatch, ...), which
 * pick the AVX-512, AVX2 or SSE2 kernel the CPU has at first use; the plain
 * entry points of Debian's build are the SSE2 kernel only. The hashes are
 * the same bytes either way (the format does not change); on a 64 MiB value
 * in 64 KiB chunks the AVX-512 kernel took 14.6 ms where SSE2 took 24.3 ms
 * on the project's 2-core machine (docs/design.md "Performance").
 * -DKVS_NO_XXH_DISPATCH builds against a libxxhash without them.
 */
#ifndef KVS_BASE_HASH_H
#define KVS_BASE_HASH_H

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>
#if (defined(__x86_64__) || defined(_M_X64)) && !defined(KVS_NO_XXH_DISPATCH)
#include <xxh_x86dispatch.h>
#endif

#endif
