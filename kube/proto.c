/*
 * kube/proto.c — the Kubernetes protobuf wire of a ConfigMap GET: a
 * bounded protobuf reader of runtime.Unknown, ConfigMap and Status, and
 * the dispatch of a response on its Content-Type (kube/proto.h).
 *
 * Field numbers are those of the generated.proto files of
 * k8s.io/apimachinery (pkg/runtime: Unknown, TypeMeta; pkg/apis/meta/v1:
 * ObjectMeta, ManagedFieldsEntry, Time, Status, StatusDetails,
 * StatusCause) and k8s.io/api (core/v1: ConfigMap). Only what the
 * kvs_object holds is read; every other field is skipped by its wire type.
 * A message may hold its fields in any order, and a message field given
 * twice is merged (its fields applied in order), as protobuf says.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kube/proto.h"
#include "store/object.h"

static const uint8_t k8s_magic[4] = { 0x6b, 0x38, 0x73, 0x00 }; /* "k8s\0" */

#define PB_MAX_FIELD ((1u << 29) - 1)
#define PBAD(c, ...) kvs_error_set(KVS_ECORRUPT, "malformed protobuf response to %s: " __VA_ARGS__)

/* The part of a message left to read. */
typedef struct pb {
	const uint8_t *p, *end;
} pb;

/* One field: its number, wire type and value (varint/fixed) or bytes. */
typedef struct pbf {
	uint32_t num;
	unsigned wt;
	uint64_t v;
	const uint8_t *p;
	size_t n;
} pbf;

/* What a whole decode shares: the request's name for details, the entries
 * taken so far against their cap, the parse flags. */
typedef struct pctx {
	const char *what;
	size_t entries, max_entries;
	unsigned flags;
	char **own;     /* NULL, or the body to hand to the object (kvs__kube_proto_object_take) */
	size_t own_len;
} pctx;

/* The bytes of a field (p is NULL for a field that is not length-delimited:
 * its reader is then refused by pb_want before it reads). */
static pb pb_of(const uint8_t *p, size_t n)
{
	pb r = { p, p ? p + n : p };

	return r;
}

/* A varint: 0, or the refusal naming `in` (the message being read). */
static int pb_varint(pb *r, uint64_t *out, const pctx *c, const char *in)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < 10; i++) {
		uint8_t b;

		if (r->p >= r->end)
			return PBAD(c, "%s: truncated varint", c->what, in);
		b = *r->p++;
		if (i == 9 && (b & 0x80))
			return PBAD(c, "%s: varint longer than 10 bytes", c->what, in);
		if (i == 9 && (b & 0x7e))
			return PBAD(c, "%s: varint overflows 64 bits", c->what, in);
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return PBAD(c, "%s: varint longer than 10 bytes", c->what, in); /* not reached */
}

/*
 * The next field of a message: 1 and *f, 0 at its end, or the refusal: a
 * field number 0, a group (wire types 3 and 4: proto2 groups, which no
 * Kubernetes type uses) or an unknown wire type, a truncated value, a
 * length beyond the end of the message.
 */
static int pb_next(pb *r, pbf *f, const pctx *c, const char *in)
{
	uint64_t tag;
	size_t left;
	int rc;

	if (r->p >= r->end)
		return 0;
	if ((rc = pb_varint(r, &tag, c, in)) < 0)
		return rc;
	if ((tag >> 3) == 0 || (tag >> 3) > PB_MAX_FIELD)
		return PBAD(c, "%s: field number %llu is out of range", c->what, in,
		            (unsigned long long)(tag >> 3));
	f->num = (uint32_t)(tag >> 3);
	f->wt = (unsigned)(tag & 7);
	f->v = 0;
	f->p = NULL;
	f->n = 0;
	left = (size_t)(r->end - r->p);
	switch (f->wt) {
	case 0:
		return pb_varint(r, &f->v, c, in) < 0 ? KVS_ECORRUPT : 1;
	case 1:
	case 5: {
		size_t w = f->wt == 1 ? 8 : 4;

		if (left < w)
			return PBAD(c, "%s: field %u: truncated fixed%zu", c->what, in, f->num, w * 8);
		for (size_t i = 0; i < w; i++)
			f->v |= (uint64_t)r->p[i] << (8 * i);
		r->p += w;
		return 1;
	}
	case 2: {
		uint64_t n;

		if (pb_varint(r, &n, c, in) < 0)
			return KVS_ECORRUPT;
		left = (size_t)(r->end - r->p);
		if (n > left)
			return PBAD(c, "%s: field %u: length %llu beyond the end of the message (%zu bytes "
			               "left)",
			            c->what, in, f->num, (unsigned long long)n, left);
		f->p = r->p;
		f->n = (size_t)n;
		r->p += n;
		return 1;
	}
	case 3:
	case 4:
		return PBAD(c, "%s: field %u is a group (wire type %u), which is not read", c->what, in,
		            f->num, f->wt);
	default:
		return PBAD(c, "%s: field %u has the unknown wire type %u", c->what, in, f->num, f->wt);
	}
}

/* A known field must come with its wire type. */
static int pb_want(const pbf *f, unsigned wt, const pctx *c, const char *in, const char *field)
{
	if (f->wt != wt)
		return PBAD(c, "%s.%s (field %u) has wire type %u, not %u", c->what, in, field, f->num,
		            f->wt, wt);
	return 0;
}

/* A string field as a C string (malloc'd into *dst, replacing it): one
 * with a NUL byte is refused, as it could not be one. */
static int pb_str(char **dst, const pbf *f, const pctx *c, const char *in, const char *field)
{
	char *s;
	int rc;

	if ((rc = pb_want(f, 2, c, in, field)) < 0)
		return rc;
	if (memchr(f->p, '\0', f->n))
		return PBAD(c, "%s.%s holds a NUL byte", c->what, in, field);
	if (!(s = malloc(f->n + 1)))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	memcpy(s, f->p, f->n);
	s[f->n] = '\0';
	free(*dst);
	*dst = s;
	return 0;
}

/* A string field equal to `want` (compared in place). */
static int pb_str_is(const pbf *f, const char *want)
{
	size_t n = strlen(want);

	return f->n == n && memcmp(f->p, want, n) == 0;
}

/* One more entry taken into the object (a map entry): the cap that bounds
 * the allocations by the body, as the JSON values are. */
static int pb_entry(pctx *c, const char *in)
{
	if (++c->entries > c->max_entries)
		return kvs_error_set(KVS_EIO,
		                     "response to %s has over %zu map entries (%s): over the cap (one "
		                     "per %u bytes of the %u-byte cap)",
		                     c->what, c->max_entries, in, KVS__JSON_BYTES_PER_VALUE,
		                     KVS__KUBE_MAX_OBJECT);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* runtime.Unknown                                                          */

/*
 * The envelope: the magic, then Unknown {1 typeMeta {1 apiVersion, 2
 * kind}, 2 raw, 3 contentEncoding, 4 contentType}. *raw gets the object's
 * bytes once its kind is `kind` and it is neither encoded nor of another
 * content type.
 */
static int unknown_raw(pb *raw, const uint8_t *body, size_t len, const char *kind, pctx *c)
{
	pb r, t;
	pbf f, g;
	int rc, kind_ok = 0;
	const uint8_t *kp = NULL;
	size_t kn = 0;

	*raw = pb_of(body, 0);
	if (len < sizeof(k8s_magic) || memcmp(body, k8s_magic, sizeof(k8s_magic)) != 0)
		return PBAD(c, "the body does not begin with the magic \"k8s\\0\" (%zu bytes)", c->what,
		            len);
	r = pb_of(body + sizeof(k8s_magic), len - sizeof(k8s_magic));
	while ((rc = pb_next(&r, &f, c, "Unknown")) > 0) {
		switch (f.num) {
		case 1:
			if ((rc = pb_want(&f, 2, c, "Unknown", "typeMeta")) < 0)
				return rc;
			t = pb_of(f.p, f.n);
			while ((rc = pb_next(&t, &g, c, "TypeMeta")) > 0) {
				if (g.num != 2)
					continue;
				if ((rc = pb_want(&g, 2, c, "TypeMeta", "kind")) < 0)
					return rc;
				kind_ok = pb_str_is(&g, kind);
				kp = g.p;
				kn = g.n;
			}
			if (rc < 0)
				return rc;
			break;
		case 2:
			if ((rc = pb_want(&f, 2, c, "Unknown", "raw")) < 0)
				return rc;
			*raw = pb_of(f.p, f.n);
			break;
		case 3:
			if ((rc = pb_want(&f, 2, c, "Unknown", "contentEncoding")) < 0)
				return rc;
			if (f.n)
				return PBAD(c, "Unknown.contentEncoding \"%.*s\" is not read (only none)",
				            c->what, (int)(f.n > 32 ? 32 : f.n), (const char *)f.p);
			break;
		case 4:
			if ((rc = pb_want(&f, 2, c, "Unknown", "contentType")) < 0)
				return rc;
			if (f.n && !pb_str_is(&f, KVS__KUBE_PROTOBUF))
				return PBAD(c, "Unknown.contentType \"%.*s\" is not protobuf", c->what,
				            (int)(f.n > 64 ? 64 : f.n), (const char *)f.p);
			break;
		default:
			break;
		}
	}
	if (rc < 0)
		return rc;
	if (!kind_ok)
		return PBAD(c, "the object's kind \"%.*s\" is not %s", c->what,
		            (int)(kn > 64 ? 64 : kn), kp ? (const char *)kp : "", kind);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* ConfigMap                                                                */

/* Time {1 seconds, 2 nanos} → Unix ms; -1 outside 1970..9999 (the range
 * of the JSON reader's RFC 3339 times), 0 for the zero time (an empty
 * message: the Go encoder's null). */
static int time_ms(int64_t *out, const pbf *f, pctx *c, const char *field)
{
	pb r = pb_of(f->p, f->n);
	pbf g;
	int64_t s = 0, ns = 0;
	int rc;

	if ((rc = pb_want(f, 2, c, "ObjectMeta", field)) < 0)
		return rc;
	while ((rc = pb_next(&r, &g, c, "Time")) > 0) {
		if (g.num != 1 && g.num != 2)
			continue;
		if ((rc = pb_want(&g, 0, c, "Time", g.num == 1 ? "seconds" : "nanos")) < 0)
			return rc;
		if (g.num == 1)
			s = (int64_t)g.v;
		else
			ns = (int64_t)g.v;
	}
	if (rc < 0)
		return rc;
	if (s < 0 || s > 253402300799LL || ns < 0 || ns > 999999999)
		*out = -1;
	else
		*out = s * 1000 + ns / 1000000;
	return 0;
}

/* A map entry {1 key, 2 value}: key and value as C strings (value NULL
 * for a bytes map: then *vp and *vn). */
static int map_entry(char **key, char **value, const uint8_t **vp, size_t *vn, const pbf *f,
                     pctx *c, const char *in)
{
	pb r = pb_of(f->p, f->n);
	pbf g;
	int rc;

	if ((rc = pb_want(f, 2, c, in, "entry")) < 0 || (rc = pb_entry(c, in)) < 0)
		return rc;
	if (!(*key = calloc(1, 1)) || (value && !(*value = calloc(1, 1))))
		return kvs_error_set(KVS_ENOMEM, "out of memory");
	if (vp) {
		*vp = f->p; /* any address in the body: an empty value */
		*vn = 0;
	}
	while ((rc = pb_next(&r, &g, c, in)) > 0) {
		if (g.num == 1) {
			if ((rc = pb_str(key, &g, c, in, "key")) < 0)
				return rc;
		} else if (g.num == 2) {
			if (value) {
				if ((rc = pb_str(value, &g, c, in, "value")) < 0)
					return rc;
			} else {
				if ((rc = pb_want(&g, 2, c, in, "value")) < 0)
					return rc;
				*vp = g.p;
				*vn = g.n;
			}
		}
	}
	return rc;
}

/* ObjectMeta, first pass: the name (the object is made from it). */
static int meta_name(char **name, const pbf *f, pctx *c)
{
	pb r = pb_of(f->p, f->n);
	pbf g;
	int rc;

	while ((rc = pb_next(&r, &g, c, "ObjectMeta")) > 0)
		if (g.num == 1 && (rc = pb_str(name, &g, c, "ObjectMeta", "name")) < 0)
			return rc;
	return rc;
}

/* ManagedFieldsEntry: its time (4), when it has one; *bad when it does
 * not convert (the JSON reader then knows no update time at all). */
static int managed_entry(int64_t *best, int *bad, const pbf *f, pctx *c)
{
	pb r = pb_of(f->p, f->n);
	pbf g;
	int rc;

	if ((rc = pb_want(f, 2, c, "ObjectMeta", "managedFields")) < 0)
		return rc;
	while ((rc = pb_next(&r, &g, c, "ManagedFieldsEntry")) > 0) {
		int64_t ms;

		if (g.num != 4)
			continue;
		if ((rc = time_ms(&ms, &g, c, "managedFields.time")) < 0)
			return rc;
		if (ms < 0)
			*bad = 1;
		else if (ms > *best)
			*best = ms;
	}
	return rc;
}

/* ObjectMeta, second pass: everything else the object keeps. */
static int meta_fields(kvs_object *o, int64_t *hint, int64_t *managed, int *managed_bad,
                       const pbf *f, pctx *c)
{
	pb r = pb_of(f->p, f->n);
	pbf g;
	int rc;

	while ((rc = pb_next(&r, &g, c, "ObjectMeta")) > 0) {
		char *k = NULL, *v = NULL;

		switch (g.num) {
		case 5:
			rc = pb_str(&o->uid, &g, c, "ObjectMeta", "uid");
			break;
		case 6:
			rc = pb_str(&o->resource_version, &g, c, "ObjectMeta", "resourceVersion");
			break;
		case 8:
			if ((rc = time_ms(&o->created_ms, &g, c, "creationTimestamp")) == 0 &&
			    o->created_ms < 0)
				rc = PBAD(c, "metadata.creationTimestamp is not a time in 1970..9999", c->what);
			break;
		case 11:
		case 12:
			rc = map_entry(&k, &v, NULL, NULL, &g, c, g.num == 11 ? "labels" : "annotations");
			if (rc == 0)
				rc = kvs__kube_obj_kv(o, g.num == 11, k, v, hint, c->what);
			break;
		case 17:
			rc = managed_entry(managed, managed_bad, &g, c);
			break;
		default:
			break;
		}
		free(k);
		free(v);
		if (rc < 0)
			return rc;
	}
	return rc;
}

/* A binaryData (3) or data (2) entry of the ConfigMap into the object:
 * the bytes copied once (binaryData is raw on this wire), or only counted
 * for a metadata-only read. */
static int data_entry(kvs_object *o, const pbf *f, pctx *c)
{
	int binary = f->num == 3, rc;
	const char *in = binary ? "binaryData" : "data";
	char *k = NULL, *v = NULL;
	const uint8_t *vp = NULL;
	size_t vn = 0;

	rc = map_entry(&k, binary ? NULL : &v, binary ? &vp : NULL, binary ? &vn : NULL, f, c, in);
	if (rc == 0)
		rc = kvs__kube_obj_check_key(k, 1, binary, c->what);
	if (rc == 0 && !binary) {
		vp = (const uint8_t *)v;
		vn = strlen(v);
	}
	if (rc == 0 && (c->flags & KVS__KJ_META_ONLY))
		o->data_bytes += vn;
	else if (rc == 0 && o->share)
		rc = kvs__object_add_view(o, k, vp, vn); /* binaryData: in the body, not copied */
	else if (rc == 0)
		rc = kvs_object_add_data(o, k, vp, vn);
	free(k);
	free(v);
	return rc;
}

/*
 * ConfigMap {1 metadata, 2 data, 3 binaryData, 4 immutable} → object,
 * in the passes the JSON reader's order asks for: the name first (the
 * object is made from it), then metadata, immutable and binaryData, then
 * data (so data[] holds the binaryData entries first, as from JSON).
 */
static int configmap(kvs_object **out, pb raw, pctx *c)
{
	kvs_object *o = NULL;
	char *name = NULL;
	int64_t hint = -1, managed = 0;
	int managed_bad = 0, has_meta = 0, had_data = 0, rc;
	pb r;
	pbf f;

	r = raw;
	while ((rc = pb_next(&r, &f, c, "ConfigMap")) > 0) {
		if (f.num != 1)
			continue;
		if ((rc = pb_want(&f, 2, c, "ConfigMap", "metadata")) < 0 ||
		    (rc = meta_name(&name, &f, c)) < 0)
			goto out;
		has_meta = 1;
	}
	if (rc < 0)
		goto out;
	if (!has_meta) {
		rc = PBAD(c, "metadata missing or not an object", c->what);
		goto out;
	}
	if ((rc = kvs__kube_obj_new(&o, name, c->what)) < 0)
		goto out;
	if (c->own && !(c->flags & KVS__KJ_META_ONLY)) {
		char *body = *c->own;

		*c->own = NULL; /* the object's now, whatever happens */
		if ((rc = kvs__object_adopt_buffer(o, body, c->own_len)) < 0)
			goto out;
	}
	for (int pass = 0; pass < 2; pass++) {
		r = raw;
		while ((rc = pb_next(&r, &f, c, "ConfigMap")) > 0) {
			if (pass == 1) {
				if (f.num == 2) {
					had_data = 1;
					if ((rc = data_entry(o, &f, c)) < 0)
						goto out;
				}
				continue;
			}
			switch (f.num) {
			case 1:
				rc = meta_fields(o, &hint, &managed, &managed_bad, &f, c);
				break;
			case 3:
				had_data = 1;
				rc = data_entry(o, &f, c);
				break;
			case 4:
				if ((rc = pb_want(&f, 0, c, "ConfigMap", "immutable")) == 0)
					o->immutable = f.v != 0;
				break;
			default:
				break;
			}
			if (rc < 0)
				goto out;
		}
		if (rc < 0)
			goto out;
	}
	if ((rc = kvs__kube_obj_check_rv(o, c->what)) < 0)
		goto out;
	/* shared data only for an immutable object (a segment), as the
	 * in-memory backend shares it: a mutable one may be changed in place
	 * by its caller, so it gets its own copy (and the body is freed) */
	if (o->share && !o->immutable && (rc = kvs_object_own_data(o)) < 0)
		goto out;
	o->updated_ms = managed_bad ? 0 : managed;
	kvs__kube_obj_hint(o, had_data, hint);
	*out = o;
	o = NULL;
out:
	kvs_object_free(o);
	free(name);
	return rc < 0 ? rc : 0;
}

static int proto_object(kvs_object **out, const uint8_t *body, size_t len, unsigned flags,
                        const char *what, char **own)
{
	pctx c = { what, 0, kvs__json_max_values(KVS__KUBE_MAX_OBJECT), flags, own, len };
	pb raw;
	int rc;

	*out = NULL;
	if (len > KVS__KUBE_MAX_OBJECT)
		return kvs_error_set(KVS_EIO, "response to %s is %zu bytes, over the %u-byte cap", what,
		                     len, KVS__KUBE_MAX_OBJECT);
	if ((rc = unknown_raw(&raw, body, len, "ConfigMap", &c)) < 0)
		return rc;
	return configmap(out, raw, &c);
}

int kvs__kube_proto_object(kvs_object **out, const uint8_t *body, size_t len, unsigned flags,
                           const char *what)
{
	return proto_object(out, body, len, flags, what, NULL);
}

int kvs__kube_proto_object_take(kvs_object **out, char **body, size_t len, unsigned flags,
                                const char *what)
{
	return proto_object(out, (const uint8_t *)*body, len, flags, what, body);
}

/* ------------------------------------------------------------------------ */
/* Status                                                                   */

/* A string field into a Status buffer (truncated, control bytes blanked). */
static int status_text(char *dst, size_t cap, const pbf *f, const pctx *c, const char *in,
                       const char *field)
{
	int rc = pb_want(f, 2, c, in, field);

	if (rc == 0)
		kvs__kube_status_text(dst, cap, (const char *)f->p, f->n);
	return rc;
}

/* StatusCause {1 reason, 2 message, 3 field}: whether it says too long. */
static int status_cause(kvs__kube_status *st, const pbf *f, pctx *c)
{
	pb r = pb_of(f->p, f->n);
	pbf g;
	char *reason = NULL, *message = NULL;
	int rc;

	if ((rc = pb_want(f, 2, c, "StatusDetails", "causes")) < 0)
		return rc;
	while ((rc = pb_next(&r, &g, c, "StatusCause")) > 0) {
		if (g.num == 1)
			rc = pb_str(&reason, &g, c, "StatusCause", "reason");
		else if (g.num == 2)
			rc = pb_str(&message, &g, c, "StatusCause", "message");
		if (rc < 0)
			break;
	}
	if (rc == 0)
		kvs__kube_status_cause(st, reason, message);
	free(reason);
	free(message);
	return rc;
}

/* StatusDetails {1 name, 2 group, 3 kind, 4 causes, 5 retryAfterSeconds, 6 uid}. */
static int status_details(kvs__kube_status *st, const pbf *f, pctx *c)
{
	pb r = pb_of(f->p, f->n);
	pbf g;
	int rc;

	if ((rc = pb_want(f, 2, c, "Status", "details")) < 0)
		return rc;
	while ((rc = pb_next(&r, &g, c, "StatusDetails")) > 0) {
		switch (g.num) {
		case 1:
			rc = status_text(st->details_name, sizeof(st->details_name), &g, c,
			                 "StatusDetails", "name");
			break;
		case 3:
			rc = status_text(st->details_kind, sizeof(st->details_kind), &g, c,
			                 "StatusDetails", "kind");
			break;
		case 4:
			rc = status_cause(st, &g, c);
			break;
		case 5:
			if ((rc = pb_want(&g, 0, c, "StatusDetails", "retryAfterSeconds")) == 0)
				kvs__kube_status_retry_of(st, (double)(int32_t)(uint32_t)g.v);
			break;
		default:
			break;
		}
		if (rc < 0)
			return rc;
	}
	return rc;
}

int kvs__kube_proto_status(kvs__kube_status *st, const uint8_t *body, size_t len)
{
	pctx c = { "an error response", 0, 0, 0, NULL, 0 };
	pb r;
	pbf f;
	int rc;

	memset(st, 0, sizeof(*st));
	if (len > KVS__KUBE_MAX_OBJECT)
		return kvs_error_set(KVS_EIO, "Status of %zu bytes, over the %u-byte cap", len,
		                     KVS__KUBE_MAX_OBJECT);
	if ((rc = unknown_raw(&r, body, len, "Status", &c)) < 0)
		return rc;
	while ((rc = pb_next(&r, &f, &c, "Status")) > 0) {
		switch (f.num) {
		case 3:
			rc = status_text(st->message, sizeof(st->message), &f, &c, "Status", "message");
			break;
		case 4:
			rc = status_text(st->reason, sizeof(st->reason), &f, &c, "Status", "reason");
			break;
		case 5:
			rc = status_details(st, &f, &c);
			break;
		case 6:
			if ((rc = pb_want(&f, 0, &c, "Status", "code")) == 0)
				kvs__kube_status_code_of(st, (double)(int32_t)(uint32_t)f.v);
			break;
		default:
			break;
		}
		if (rc < 0)
			break;
	}
	kvs__kube_status_end(st);
	return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------------------ */
/* request bodies                                                           */

/* Bytes of a varint. */
static size_t pw_vlen(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Bytes of a length-delimited field of n bytes (field numbers under 16:
 * a one-byte tag). */
static size_t pw_flen(size_t n)
{
	return 1 + pw_vlen(n) + n;
}

/* Bytes of a map entry {1 key, 2 value} as a field. */
static size_t pw_entry_len(size_t kn, size_t vn)
{
	return pw_flen(pw_flen(kn) + pw_flen(vn));
}

static uint8_t *pw_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* The head of a length-delimited field: its tag and its length. */
static uint8_t *pw_head(uint8_t *p, unsigned num, size_t n)
{
	*p++ = (uint8_t)(num << 3 | 2);
	return pw_varint(p, n);
}

static uint8_t *pw_bytes(uint8_t *p, unsigned num, const void *v, size_t n)
{
	p = pw_head(p, num, n);
	if (n)
		memcpy(p, v, n);
	return p + n;
}

static uint8_t *pw_entry(uint8_t *p, unsigned num, const char *k, size_t kn, const void *v,
                         size_t vn)
{
	p = pw_head(p, num, pw_flen(kn) + pw_flen(vn));
	p = pw_bytes(p, 1, k, kn);
	return pw_bytes(p, 2, v, vn);
}

/* What the body of one object carries besides its data, measured once. */
typedef struct pw_obj {
	const kvs_object *obj;
	const char *ns, *rv;         /* rv NULL: none */
	char bytes[24];              /* the KVS__KUBE_DATA_BYTES annotation */
	size_t meta, cm;             /* bytes of ObjectMeta, ConfigMap */
} pw_obj;

static const char *str0(const char *s)
{
	return s ? s : "";
}

/* Field 11 (labels) or 12 (annotations): the entries of kv, all but the
 * data-bytes annotation, written at p (NULL: only measured). */
static size_t pw_kvs(uint8_t **p, unsigned num, const kvs_kv *kv, size_t n)
{
	size_t total = 0;

	for (size_t i = 0; i < n; i++) {
		const char *k = str0(kv[i].key), *v = str0(kv[i].value);
		size_t kn = strlen(k), vn = strlen(v);

		if (num == 12 && strcmp(k, KVS__KUBE_DATA_BYTES) == 0)
			continue;
		total += pw_entry_len(kn, vn);
		if (p)
			*p = pw_entry(*p, num, k, kn, v, vn);
	}
	return total;
}

/* ObjectMeta {1 name, 3 namespace, 6 resourceVersion, 11 labels,
 * 12 annotations}, at p (NULL: only measured). */
static size_t pw_meta(uint8_t **p, const pw_obj *w)
{
	const kvs_object *o = w->obj;
	size_t n = pw_flen(strlen(o->name)) + pw_flen(strlen(w->ns));

	if (p) {
		*p = pw_bytes(*p, 1, o->name, strlen(o->name));
		*p = pw_bytes(*p, 3, w->ns, strlen(w->ns));
	}
	if (w->rv) {
		n += pw_flen(strlen(w->rv));
		if (p)
			*p = pw_bytes(*p, 6, w->rv, strlen(w->rv));
	}
	n += pw_kvs(p, 11, o->labels, o->nlabels);
	n += pw_kvs(p, 12, o->annotations, o->nannotations);
	n += pw_entry_len(strlen(KVS__KUBE_DATA_BYTES), strlen(w->bytes));
	if (p)
		*p = pw_entry(*p, 12, KVS__KUBE_DATA_BYTES, strlen(KVS__KUBE_DATA_BYTES), w->bytes,
		              strlen(w->bytes));
	return n;
}

/*
 * The protobuf twin of kvs__kube_body_object: the same fields (apiVersion
 * and kind in the envelope's typeMeta, as the ConfigMap message has no
 * TypeMeta of its own), binaryData as raw bytes. Measured first, then
 * written into one buffer of its exact size: the data is copied once.
 */
int kvs__kube_proto_body_object(char **out, size_t *out_len, const kvs_object *obj,
                                const char *ns, int with_rv)
{
	static const char api[] = "v1", kind[] = "ConfigMap";
	pw_obj w = { .obj = obj, .ns = str0(ns) };
	size_t tm, total, data = 0;
	uint64_t bytes = 0;
	uint8_t *buf, *p;
	int rc;

	*out = NULL;
	*out_len = 0;
	if ((rc = kvs__kube_check_data_keys(obj)) < 0)
		return rc;
	if (with_rv && obj->resource_version && obj->resource_version[0])
		w.rv = obj->resource_version;
	for (size_t i = 0; i < obj->ndata; i++) {
		size_t e = obj->data[i].len;

		if (e > SIZE_MAX / 4 || data > SIZE_MAX / 4)
			return kvs_error_set(KVS_ETOOBIG, "object %s too large", obj->name);
		bytes += e;
		data += pw_entry_len(strlen(obj->data[i].key), e);
	}
	snprintf(w.bytes, sizeof(w.bytes), "%llu", (unsigned long long)bytes);
	w.meta = pw_meta(NULL, &w);
	w.cm = pw_flen(w.meta) + data + (obj->immutable ? 2 : 0);
	tm = pw_flen(sizeof(api) - 1) + pw_flen(sizeof(kind) - 1);
	total = sizeof(k8s_magic) + pw_flen(tm) + pw_flen(w.cm) + pw_flen(0) + pw_flen(0);
	if (!(buf = malloc(total)))
		return kvs_error_set(KVS_ENOMEM, "out of memory building request for %s", obj->name);
	memcpy(buf, k8s_magic, sizeof(k8s_magic));
	p = buf + sizeof(k8s_magic);
	p = pw_head(p, 1, tm);                       /* Unknown.typeMeta */
	p = pw_bytes(p, 1, api, sizeof(api) - 1);
	p = pw_bytes(p, 2, kind, sizeof(kind) - 1);
	p = pw_head(p, 2, w.cm);                     /* Unknown.raw: the ConfigMap */
	p = pw_head(p, 1, w.meta);
	(void)pw_meta(&p, &w);
	for (size_t i = 0; i < obj->ndata; i++)       /* 3 binaryData */
		p = pw_entry(p, 3, obj->data[i].key, strlen(obj->data[i].key), obj->data[i].data,
		             obj->data[i].len);
	if (obj->immutable) {                        /* 4 immutable */
		*p++ = 4 << 3 | 0;
		*p++ = 1;
	}
	p = pw_head(p, 3, 0);                        /* Unknown.contentEncoding */
	p = pw_head(p, 4, 0);                        /* Unknown.contentType */
	if ((size_t)(p - buf) != total) {
		size_t wrote = (size_t)(p - buf);

		free(buf);
		return kvs_error_set(KVS_EIO, "building request for %s: %zu bytes written of %zu",
		                     obj->name, wrote, total);
	}
	*out = (char *)buf;
	*out_len = total;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* dispatch                                                                 */

kvs__kube_wire kvs__kube_wire_of(const char *ct)
{
	size_t n;

	if (!ct)
		return KVS__WIRE_JSON;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = strcspn(ct, "; \t");
	if (n == 0)
		return KVS__WIRE_JSON;
	if (n == strlen(KVS__KUBE_PROTOBUF) && strncasecmp(ct, KVS__KUBE_PROTOBUF, n) == 0)
		return KVS__WIRE_PROTOBUF;
	if (n == 16 && strncasecmp(ct, "application/json", n) == 0)
		return KVS__WIRE_JSON;
	return KVS__WIRE_OTHER;
}

int kvs__kube_object_decode(kvs_object **out, const char *ct, const char *body, size_t len,
                            unsigned flags, const char *what)
{
	*out = NULL;
	switch (kvs__kube_wire_of(ct)) {
	case KVS__WIRE_JSON:
		return kvs__kube_object_parse(out, body, len, flags, what);
	case KVS__WIRE_PROTOBUF:
		return kvs__kube_proto_object(out, (const uint8_t *)body, len, flags, what);
	case KVS__WIRE_OTHER:
		break;
	}
	return kvs_error_set(KVS_ECORRUPT,
	                     "malformed response to %s: Content-Type \"%.100s\" is neither JSON nor "
	                     "%s",
	                     what, ct, KVS__KUBE_PROTOBUF);
}

int kvs__kube_object_decode_take(kvs_object **out, const char *ct, char **body, size_t len,
                                 unsigned flags, const char *what)
{
	if (kvs__kube_wire_of(ct) == KVS__WIRE_PROTOBUF && *body) {
		*out = NULL;
		return kvs__kube_proto_object_take(out, body, len, flags, what);
	}
	return kvs__kube_object_decode(out, ct, *body, len, flags, what);
}

void kvs__kube_status_decode(kvs__kube_status *st, const char *ct, const char *body, size_t len)
{
	if (kvs__kube_wire_of(ct) == KVS__WIRE_PROTOBUF)
		(void)kvs__kube_proto_status(st, (const uint8_t *)(body ? body : ""), body ? len : 0);
	else
		kvs__kube_status_parse(st, body, len);
}
