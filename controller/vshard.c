/*
 * vshard.c — shard numbers from uids, shard sets and their text forms.
 */
#include <stdio.h>
#include <string.h>

#include <xxhash.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/vshard.h"

unsigned kvc_vshard_of(const char *uid, unsigned v)
{
	if (v == 0)
		return 0;
	return (unsigned)(XXH3_64bits(uid, strlen(uid)) % v);
}

void kvc_set_clear(kvc_shardset *s)
{
	memset(s, 0, sizeof(*s));
}

unsigned kvc_set_count(const kvc_shardset *s)
{
	unsigned n = 0;
	for (size_t i = 0; i < sizeof(s->w) / sizeof(s->w[0]); i++)
		n += (unsigned)__builtin_popcountll(s->w[i]);
	return n;
}

int kvc_set_equal(const kvc_shardset *a, const kvc_shardset *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* Append "[,]a[-b]" with a bound; *len grows even past cap so overflow is
 * detected once at the end. */
static void put(char *buf, size_t cap, size_t *len, int comma, unsigned a, long b)
{
	char tmp[32];
	int n = b >= 0 ? snprintf(tmp, sizeof(tmp), "%s%u-%ld", comma ? "," : "", a, b)
	               : snprintf(tmp, sizeof(tmp), "%s%u", comma ? "," : "", a);
	if (*len + (size_t)n < cap)
		memcpy(buf + *len, tmp, (size_t)n + 1);
	*len += (size_t)n;
}

/* Runs of members (or, with complement, non-members) of s below v, as
 * ranges "a-b" or, for a selector, every value listed. */
static size_t format_ranges(char *buf, size_t cap, const kvc_shardset *s, unsigned v, int complement, int ranges)
{
	size_t len = 0;
	unsigned i = 0;

	if (cap)
		buf[0] = '\0';
	while (i < v) {
		if (kvc_set_has(s, i) == complement) {
			i++;
			continue;
		}
		unsigned j = i;
		while (j + 1 < v && kvc_set_has(s, j + 1) != complement)
			j++;
		if (ranges)
			put(buf, cap, &len, len > 0, i, j > i ? (long)j : -1);
		else
			for (unsigned k = i; k <= j; k++)
				put(buf, cap, &len, len > 0, k, -1);
		i = j + 1;
	}
	return len;
}

int kvc_set_format(char *buf, size_t cap, const kvc_shardset *s)
{
	size_t len = format_ranges(buf, cap, s, KVC_VSHARDS_MAX, 0, 1);
	if (len >= cap)
		return kvs_error_set(KVS_ETOOBIG, "shard set text over %zu bytes", cap);
	return (int)len;
}

int kvc_set_parse(kvc_shardset *out, const char *text, unsigned v)
{
	kvc_shardset s;
	const char *p = text;
	long prev = -1;

	kvc_set_clear(&s);
	if (v == 0 || v > KVC_VSHARDS_MAX || strnlen(text, KVC_SHARDSET_TEXT_MAX + 1) > KVC_SHARDSET_TEXT_MAX)
		return kvs_error_set(KVS_EINVAL, "shard set: too long or bad shard count");
	while (*p) {
		long a = 0, b;
		int digits = 0;
		while (*p >= '0' && *p <= '9' && digits < 6)
			a = a * 10 + (*p++ - '0'), digits++;
		if (!digits || (*p >= '0' && *p <= '9'))
			goto bad;
		b = a;
		if (*p == '-') {
			p++;
			b = 0, digits = 0;
			while (*p >= '0' && *p <= '9' && digits < 6)
				b = b * 10 + (*p++ - '0'), digits++;
			if (!digits || (*p >= '0' && *p <= '9'))
				goto bad;
		}
		if (a <= prev || b < a || b >= (long)v)
			goto bad;
		for (long k = a; k <= b; k++)
			kvc_set_add(&s, (unsigned)k);
		prev = b;
		if (*p == ',') {
			p++;
			if (!*p)
				goto bad;
		} else if (*p) {
			goto bad;
		}
	}
	*out = s;
	return 0;
bad:
	return kvs_error_set(KVS_EINVAL, "shard set: malformed at offset %zu", (size_t)(p - text));
}

int kvc_set_selector(char *buf, size_t cap, const kvc_shardset *s, unsigned v)
{
	unsigned n = 0;
	for (unsigned i = 0; i < v; i++)
		n += (unsigned)kvc_set_has(s, i);
	if (n == 0) {
		if (cap)
			buf[0] = '\0';
		return 0;
	}
	if (n == v) {
		/* Every shard: "the label exists" (k8s refuses an empty notin ()). */
		if (cap <= strlen(KVC_VSHARD_LABEL))
			return kvs_error_set(KVS_ETOOBIG, "selector buffer too small");
		memcpy(buf, KVC_VSHARD_LABEL, strlen(KVC_VSHARD_LABEL) + 1);
		return (int)strlen(KVC_VSHARD_LABEL);
	}
	int complement = n > v / 2;
	const char *head = complement ? KVC_VSHARD_LABEL " notin (" : KVC_VSHARD_LABEL " in (";
	size_t hl = strlen(head);
	if (cap < hl + 2)
		return kvs_error_set(KVS_ETOOBIG, "selector buffer too small");
	memcpy(buf, head, hl + 1);
	size_t len = format_ranges(buf + hl, cap - hl, s, v, complement, 0);
	if (hl + len + 1 >= cap)
		return kvs_error_set(KVS_ETOOBIG, "selector over %zu bytes", cap);
	buf[hl + len] = ')';
	buf[hl + len + 1] = '\0';
	return (int)(hl + len + 1);
}
