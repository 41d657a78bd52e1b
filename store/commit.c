/*
 * commit.c — the commit step (commit.h; docs/design.md "Put" step 6).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "commit.h"

int kvs__commit_init(kvs__commit *c, kvs_store *s, const char *key, const char *expect,
                     kvs__wstats *st)
{
	memset(c, 0, sizeof(*c));
	c->s = s;
	c->key = key;
	c->expect = expect;
	c->st = st;
	return kvs__key_to_index(c->iname, s, key, &c->key_len);
}

void kvs__commit_set(kvs__commit *c, uint8_t *payload, size_t len, uint64_t length,
                     uint64_t generation)
{
	free(c->payload);
	c->payload = payload;
	c->payload_len = len;
	c->length = length;
	c->generation = generation;
}

void kvs__commit_clear(kvs__commit *c)
{
	if (!c)
		return;
	free(c->payload);
	c->payload = NULL;
	c->payload_len = 0;
}

static void set_base(kvs__commit *c, const kvs_object *idx)
{
	c->has_base = idx != NULL;
	snprintf(c->base_rv, sizeof(c->base_rv), "%s", idx ? idx->resource_version : "");
}

int kvs__commit_read_base(kvs__commit *c, kvs_object **base)
{
	kvs_object *idx = NULL;
	const char *ev = c->expect;
	int rc;

	*base = NULL;
	c->st->requests++;
	rc = c->s->be->ops->get(c->s->be, &idx, c->iname);
	if (rc == KVS_ENOTFOUND) {
		set_base(c, NULL);
		if (ev && *ev)
			return kvs_error_set(KVS_ECONFLICT, "key \"%s\" does not exist (expected version %s)",
			                     c->key, ev);
		return 0;
	}
	if (rc < 0)
		return rc;
	set_base(c, idx);
	if (ev && !*ev) {
		kvs_object_free(idx);
		return kvs_error_set(KVS_EEXISTS, "key \"%s\" exists (create-only put)", c->key);
	}
	if (ev && strcmp(ev, c->base_rv) != 0) {
		kvs_object_free(idx);
		return kvs_error_set(KVS_ECONFLICT, "key \"%s\" is at version %s, not %s", c->key,
		                     c->base_rv, ev);
	}
	*base = idx;
	return 0;
}

/* A fresh commit id: KVS__COMMIT_ID_LEN lowercase hex digits from getrandom(2). */
static int new_commit_id(char out[KVS__COMMIT_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[KVS__COMMIT_ID_LEN / 2];
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kvs_error_set(KVS_ERROR, "getrandom: %s", strerror(errno));
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(r); i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[KVS__COMMIT_ID_LEN] = '\0';
	return 0;
}

/* Is `idx` (as re-read) the object our commit `id` of this payload wrote? */
static int is_our_commit(const kvs__commit *c, const kvs_object *idx, const char *id)
{
	const char *a = kvs_object_annotation(idx, KVS__ANN_COMMIT);
	const kvs_blob *b = kvs_object_data(idx, KVS__INDEX_DATA_KEY);

	return a && strcmp(a, id) == 0 && b && b->len == c->payload_len &&
	       memcmp(b->data, c->payload, c->payload_len) == 0;
}

/*
 * One attempt. Returns 0 (committed; *out is the new version), KVS_ECONFLICT
 * (the index is not at the base any more and our commit is not there:
 * *seen holds the index as re-read, NULL when absent, for a blind write's
 * rebase), or another error.
 *
 * The response may be lost after the server applied the commit: the
 * Kubernetes backend then re-sends it and gets Conflict/AlreadyExists
 * caused by our own commit, or the call ends in KVS_EIO/KVS_ETIMEOUT with
 * the outcome unknown. So on those codes the index is read back: if it
 * carries our commit id and exactly our manifest, the commit applied.
 */
static int attempt(kvs__commit *c, kvs_ver *out, kvs_object **seen)
{
	kvs_object *idx = kvs_object_new(c->iname), *res = NULL, *cur = NULL;
	char num[32], id[KVS__COMMIT_ID_LEN + 1], err[512], rerr[512];
	const char *key = c->key;
	int rc, rrc;

	*seen = NULL;
	if (!idx)
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if ((rc = new_commit_id(id)) < 0)
		goto out;
	if ((rc = kvs__set_labels(idx, c->s->name, KVS__ROLE_INDEX)) < 0)
		goto out;
	if ((rc = kvs_object_set_annotation(idx, KVS__ANN_KEY, key)) < 0)
		goto out;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)c->length);
	if ((rc = kvs_object_set_annotation(idx, KVS__ANN_LENGTH, num)) < 0)
		goto out;
	if (c->w && c->w->t_check >= 0)
		snprintf(num, sizeof(num), "%lld", (long long)c->w->t_check);
	else
		snprintf(num, sizeof(num), "-");
	if ((rc = kvs_object_set_annotation(idx, KVS__ANN_CHECKED, num)) < 0)
		goto out;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)c->generation);
	if ((rc = kvs_object_set_annotation(idx, KVS__ANN_GENERATION, num)) < 0 ||
	    (rc = kvs_object_set_annotation(idx, KVS__ANN_COMMIT, id)) < 0 ||
	    (rc = kvs_object_add_data(idx, KVS__INDEX_DATA_KEY, c->payload, c->payload_len)) < 0)
		goto out;
	c->st->requests++;
	if (c->has_base) {
		if ((rc = kvs_object_set_rv(idx, c->base_rv)) < 0)
			goto out;
		rc = c->s->be->ops->replace(c->s->be, &res, idx);
	} else {
		rc = c->s->be->ops->create(c->s->be, &res, idx);
	}
	if (rc == 0) {
		c->st->bytes_written += c->payload_len;
		if (out)
			snprintf(out->str, sizeof(out->str), "%s", res ? res->resource_version : "");
		if (c->w)
			rc = kvs__segw_after_commit(c->w, res ? res->updated_ms : 0);
		goto out;
	}
	if (rc == KVS_ENOTFOUND && c->has_base) {
		rc = KVS_ECONFLICT;   /* deleted since we read it: it cannot hold our commit */
		goto reread;
	}
	if (rc != KVS_ECONFLICT && rc != KVS_EEXISTS && rc != KVS_EIO && rc != KVS_ETIMEOUT)
		goto out;
	if (rc == KVS_EEXISTS)
		rc = KVS_ECONFLICT;   /* created since we read it, or by our own lost create */
reread:
	snprintf(err, sizeof(err), "%s", kvs_error_last());
	c->st->requests++;
	rrc = c->s->be->ops->get(c->s->be, &cur, c->iname);
	if (rrc < 0 && rrc != KVS_ENOTFOUND) {
		snprintf(rerr, sizeof(rerr), "%s", kvs_error_last());
		rc = kvs_error_set(rc == KVS_ECONFLICT ? rrc : rc,
		                   "key \"%s\": the outcome of the commit is unknown (%s; re-reading "
		                   "the index failed: %s); check with `kvsplit stat %s` (version, "
		                   "length, hash), or whether ConfigMap %s has annotation "
		                   KVS__ANN_COMMIT "=%s", key, err, rerr, key, c->iname, id);
		goto out;
	}
	if (rrc == 0 && is_our_commit(c, cur, id)) {
		/* Applied: its response was lost, or a re-send of it conflicted with it. */
		c->st->bytes_written += c->payload_len;
		if (out)
			snprintf(out->str, sizeof(out->str), "%s", cur->resource_version);
		rc = c->w ? kvs__segw_after_commit(c->w, cur->updated_ms) : 0;
		goto out;
	}
	if (rc == KVS_ECONFLICT) {
		*seen = cur;
		cur = NULL;
		kvs_error_set(rc, "%s", err);
		goto out;
	}
	/* KVS_EIO / KVS_ETIMEOUT, and the index does not hold our commit */
	if (rrc == KVS_ENOTFOUND ? !c->has_base
	                         : c->has_base && strcmp(cur->resource_version, c->base_rv) == 0) {
		rc = kvs_error_set(rc, "key \"%s\": the commit did not apply, the old value is intact "
		                   "(%s)", key, err);
	} else if (!c->expect) {
		/* Moved on under us: for a blind write, exactly a lost race. */
		*seen = cur;
		cur = NULL;
		rc = kvs_error_set(KVS_ECONFLICT, "key \"%s\": committed by another writer (%s)", key,
		                   err);
	} else {
		rc = kvs_error_set(rc, "key \"%s\": the outcome of the commit is unknown (%s), and "
		                   "the key has moved on from version %s to %s since (another writer); "
		                   "check with `kvsplit stat %s`", key, err,
		                   c->has_base ? c->base_rv : "(none)",
		                   cur ? cur->resource_version : "(deleted)", key);
	}
out:
	kvs_object_free(idx);
	kvs_object_free(res);
	kvs_object_free(cur);
	return rc;
}

int kvs__commit_run(kvs_ver *out, kvs__commit *c, const kvs__commit_hooks *h)
{
	int rc, blind = !c->expect;

	for (unsigned n = 0;; n++) {
		kvs_object *seen = NULL;
		if (h->before && (rc = h->before(h->ctx)) < 0)
			return rc;
		rc = attempt(c, out, &seen);
		if (rc != KVS_ECONFLICT) {
			kvs_object_free(seen);
			return rc;
		}
		if (!blind) {
			kvs_object_free(seen);
			if (*c->expect == '\0')
				return kvs_error_set(KVS_EEXISTS, "key \"%s\" was created concurrently", c->key);
			return kvs_error_set(KVS_ECONFLICT, "key \"%s\" changed since version %s", c->key,
			                     c->expect);
		}
		if (n + 1 >= c->s->put_retries) {
			kvs_object_free(seen);
			return kvs_error_set(KVS_ECONFLICT, "key \"%s\": lost the commit race %u times",
			                     c->key, c->s->put_retries);
		}
		set_base(c, seen);
		rc = h->rebase ? h->rebase(h->ctx, c, seen) : 0;
		kvs_object_free(seen);
		if (rc < 0)
			return rc;
	}
}
