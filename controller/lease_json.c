/*
 * lease_json.c — Lease <-> JSON (MicroTime is RFC 3339 with microseconds).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/lease_json.h"

static void microtime(char *buf, size_t cap, int64_t us)
{
	time_t s = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%06dZ", (int)(us % 1000000));
}

static int parse_microtime(int64_t *out, const char *s)
{
	struct tm tm;
	int us = 0, n = 0;
	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
	           &tm.tm_sec, &n) != 6)
		return -1;
	if (s[n] == '.') {
		int k = 0;
		n++;
		while (s[n] >= '0' && s[n] <= '9' && k < 9) {
			if (k < 6)
				us = us * 10 + (s[n] - '0');
			n++, k++;
		}
		while (k++ < 6)
			us *= 10;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*out = (int64_t)timegm(&tm) * 1000000 + us;
	return 0;
}

int kvc_lease_to_json(cJSON **out, const kvc_lease *rec)
{
	char t[40], buf[KVC_SHARDSET_TEXT_MAX], num[24];
	cJSON *o = cJSON_CreateObject(), *md, *spec, *ann;

	*out = NULL;
	if (!o)
		return kvs_error_set(KVS_ENOMEM, "lease: out of memory");
	cJSON_AddStringToObject(o, "apiVersion", "coordination.k8s.io/v1");
	cJSON_AddStringToObject(o, "kind", "Lease");
	md = cJSON_AddObjectToObject(o, "metadata");
	spec = cJSON_AddObjectToObject(o, "spec");
	if (!md || !spec)
		goto oom;
	cJSON_AddStringToObject(md, "name", rec->name);
	if (rec->rv[0])
		cJSON_AddStringToObject(md, "resourceVersion", rec->rv);
	if (rec->group[0]) {
		cJSON *lab = cJSON_AddObjectToObject(md, "labels");
		if (!lab || !cJSON_AddStringToObject(lab, KVC_GROUP_LABEL, rec->group))
			goto oom;
	}
	if (rec->vshards) {
		int n = kvc_set_format(buf, sizeof(buf), &rec->claims);
		if (n < 0) {
			cJSON_Delete(o);
			return n;
		}
		if (!(ann = cJSON_AddObjectToObject(md, "annotations")))
			goto oom;
		cJSON_AddStringToObject(ann, KVC_SHARDS_ANNOTATION, buf);
		snprintf(num, sizeof(num), "%" PRIu64, rec->epoch);
		cJSON_AddStringToObject(ann, KVC_EPOCH_ANNOTATION, num);
		snprintf(num, sizeof(num), "%u", rec->vshards);
		cJSON_AddStringToObject(ann, KVC_VSHARDS_ANNOTATION, num);
	}
	if (rec->holder[0])
		cJSON_AddStringToObject(spec, "holderIdentity", rec->holder);
	cJSON_AddNumberToObject(spec, "leaseDurationSeconds", rec->duration_s);
	if (rec->acquire_us) {
		microtime(t, sizeof(t), rec->acquire_us);
		cJSON_AddStringToObject(spec, "acquireTime", t);
	}
	if (rec->renew_us) {
		microtime(t, sizeof(t), rec->renew_us);
		cJSON_AddStringToObject(spec, "renewTime", t);
	}
	cJSON_AddNumberToObject(spec, "leaseTransitions", rec->transitions);
	*out = o;
	return 0;
oom:
	cJSON_Delete(o);
	return kvs_error_set(KVS_ENOMEM, "lease: out of memory");
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int copy(char *dst, size_t cap, const char *src, const char *what)
{
	if (!src) {
		dst[0] = '\0';
		return 0;
	}
	if (strlen(src) >= cap)
		return kvs_error_set(KVS_ECORRUPT, "lease: %s over %zu bytes", what, cap - 1);
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

static int num(int64_t *out, const cJSON *o, const char *k, int64_t lo, int64_t hi)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	*out = 0;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble < (double)lo || v->valuedouble > (double)hi ||
	    v->valuedouble != (double)(int64_t)v->valuedouble)
		return kvs_error_set(KVS_ECORRUPT, "lease: spec.%s is not an integer in range", k);
	*out = (int64_t)v->valuedouble;
	return 0;
}

static int unum(uint64_t *out, const char *s, uint64_t hi, const char *what)
{
	char *end;
	if (!s || !*s || strlen(s) > 20 || s[0] < '0' || s[0] > '9')
		return kvs_error_set(KVS_ECORRUPT, "lease: annotation %s is not a number", what);
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || v > hi)
		return kvs_error_set(KVS_ECORRUPT, "lease: annotation %s out of range", what);
	*out = v;
	return 0;
}

int kvc_lease_from_json(kvc_lease *out, const cJSON *obj)
{
	kvc_lease l;
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
	int64_t v;
	int rc;

	memset(&l, 0, sizeof(l));
	if (!cJSON_IsObject(md))
		return kvs_error_set(KVS_ECORRUPT, "lease: no metadata");
	if (!str(md, "name"))
		return kvs_error_set(KVS_ECORRUPT, "lease: no metadata.name");
	if ((rc = copy(l.name, sizeof(l.name), str(md, "name"), "name")) < 0 ||
	    (rc = copy(l.rv, sizeof(l.rv), str(md, "resourceVersion"), "resourceVersion")) < 0)
		return rc;
	const cJSON *lab = cJSON_GetObjectItemCaseSensitive(md, "labels");
	if (cJSON_IsObject(lab) && (rc = copy(l.group, sizeof(l.group), str(lab, KVC_GROUP_LABEL), "group label")) < 0)
		return rc;
	if (cJSON_IsObject(spec)) {
		if ((rc = copy(l.holder, sizeof(l.holder), str(spec, "holderIdentity"), "holderIdentity")) < 0)
			return rc;
		if ((rc = num(&v, spec, "leaseDurationSeconds", 0, INT32_MAX)) < 0)
			return rc;
		l.duration_s = (int32_t)v;
		if ((rc = num(&v, spec, "leaseTransitions", 0, INT32_MAX)) < 0)
			return rc;
		l.transitions = (int32_t)v;
		const char *t;
		if ((t = str(spec, "acquireTime")) && parse_microtime(&l.acquire_us, t) < 0)
			return kvs_error_set(KVS_ECORRUPT, "lease: bad acquireTime");
		if ((t = str(spec, "renewTime")) && parse_microtime(&l.renew_us, t) < 0)
			return kvs_error_set(KVS_ECORRUPT, "lease: bad renewTime");
	}
	const cJSON *ann = cJSON_GetObjectItemCaseSensitive(md, "annotations");
	const char *vs = cJSON_IsObject(ann) ? str(ann, KVC_VSHARDS_ANNOTATION) : NULL;
	if (vs) {
		uint64_t u;
		if ((rc = unum(&u, vs, KVC_VSHARDS_MAX, KVC_VSHARDS_ANNOTATION)) < 0)
			return rc;
		if (u == 0)
			return kvs_error_set(KVS_ECORRUPT, "lease: %s is 0", KVC_VSHARDS_ANNOTATION);
		l.vshards = (unsigned)u;
		if ((rc = unum(&l.epoch, str(ann, KVC_EPOCH_ANNOTATION), UINT64_MAX, KVC_EPOCH_ANNOTATION)) < 0)
			return rc;
		const char *sh = str(ann, KVC_SHARDS_ANNOTATION);
		if (!sh || kvc_set_parse(&l.claims, sh, l.vshards) < 0)
			return kvs_error_set(KVS_ECORRUPT, "lease %s: bad %s", l.name, KVC_SHARDS_ANNOTATION);
	}
	*out = l;
	return 0;
}
