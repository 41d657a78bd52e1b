/*
 * vshard.h — virtual shards: the number an object carries in its label,
 * computed once from its uid, and sets of them (what a member targets, holds,
 * publishes on its Lease, and watches through its label selector).
 *
 * V is fixed for a group and far above any replica count (default 1024): a
 * scale event changes which shards a member watches, never an object's label.
 */
#ifndef KVC_VSHARD_H
#define KVC_VSHARD_H

#include <stddef.h>
#include <stdint.h>

#define KVC_VSHARDS_DEFAULT 1024u
#define KVC_VSHARDS_MAX 4096u
/** The label every sharded object carries; its value is the shard number. */
#define KVC_VSHARD_LABEL "kvsplit.io/vshard"
/** Longest encoded set or selector we produce or accept. */
#define KVC_SHARDSET_TEXT_MAX 32768u

typedef struct kvc_shardset {
	uint64_t w[KVC_VSHARDS_MAX / 64];
} kvc_shardset;

/** The virtual shard of an object: XXH3-64 of its uid, mod v. */
unsigned kvc_vshard_of(const char *uid, unsigned v);

static inline void kvc_set_add(kvc_shardset *s, unsigned i)
{
	s->w[i >> 6] |= (uint64_t)1 << (i & 63);
}
static inline void kvc_set_del(kvc_shardset *s, unsigned i)
{
	s->w[i >> 6] &= ~((uint64_t)1 << (i & 63));
}
static inline int kvc_set_has(const kvc_shardset *s, unsigned i)
{
	return (int)((s->w[i >> 6] >> (i & 63)) & 1);
}
void kvc_set_clear(kvc_shardset *s);
unsigned kvc_set_count(const kvc_shardset *s);
int kvc_set_equal(const kvc_shardset *a, const kvc_shardset *b);

/**
 * Encode as ascending ranges ("0-5,9,12-20"; "" for the empty set) into
 * buf of cap bytes. Returns the length, or KVS_ETOOBIG if it does not fit.
 */
int kvc_set_format(char *buf, size_t cap, const kvc_shardset *s);

/**
 * Decode what kvc_set_format wrote, from untrusted text (a Lease annotation):
 * every number < v, ranges ascending and disjoint, at most
 * KVC_SHARDSET_TEXT_MAX bytes. KVS_EINVAL on anything else; *out untouched.
 */
int kvc_set_parse(kvc_shardset *out, const char *text, unsigned v);

/**
 * The label selector of a member holding `s`: "kvsplit.io/vshard in (...)",
 * or "kvsplit.io/vshard notin (...)" of the complement when shorter (a
 * member holding most shards), "kvsplit.io/vshard" (the label exists) for
 * all of them. Returns the length or KVS_ETOOBIG; 0 and "" for the empty
 * set: nothing to watch (Kubernetes refuses an empty "in ()").
 */
int kvc_set_selector(char *buf, size_t cap, const kvc_shardset *s, unsigned v);

#endif
