/*
 * spec.c — a Workflow's metadata and spec, validated. Each refusal names
 * the field the way kubectl users see it ("spec.parallelism.withKeys[3]")
 * and says what would be accepted.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvsplit.h"
#include "kvsplit/backend.h"
#include "controller/vshard.h"
#include "controller/workflow/spec.h"
#include "controller/workflow/tasks.h"

#define INVALID(...) kvs_error_set(KVS_EINVAL, __VA_ARGS__)

static const cJSON *get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

unsigned kvc_wf_digits(uint32_t v)
{
	unsigned n = 1;
	while (v >= 10)
		v /= 10, n++;
	return n;
}

static int copy_str(char *dst, size_t cap, const cJSON *v, const char *what)
{
	const char *s = cJSON_GetStringValue(v);
	size_t n;
	if (!s)
		return INVALID("workflow: %s is missing or not a string", what);
	n = strlen(s);
	if (n == 0 || n >= cap)
		return INVALID("workflow: %s must be 1..%zu bytes (got %zu)", what, cap - 1, n);
	memcpy(dst, s, n + 1);
	return 0;
}

int kvc_wf_ident_parse(kvc_wf_ident *out, const cJSON *wf)
{
	const cJSON *md = get(wf, "metadata"), *v;
	kvc_wf_ident id;
	int rc;

	memset(&id, 0, sizeof(id));
	if (!cJSON_IsObject(md))
		return INVALID("workflow: metadata is missing");
	if ((rc = copy_str(id.name, sizeof(id.name), get(md, "name"), "metadata.name")) < 0 ||
	    (rc = copy_str(id.ns, sizeof(id.ns), get(md, "namespace"), "metadata.namespace")) < 0 ||
	    (rc = copy_str(id.uid, sizeof(id.uid), get(md, "uid"), "metadata.uid")) < 0)
		return rc;
	v = get(get(md, "labels"), KVC_VSHARD_LABEL);
	if (cJSON_IsString(v) && strlen(v->valuestring) < sizeof(id.vshard))
		strcpy(id.vshard, v->valuestring);
	v = get(md, "generation");
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e15)
		id.generation = (int64_t)v->valuedouble;
	v = get(md, "deletionTimestamp");
	id.deleting = cJSON_IsString(v) && v->valuestring[0];
	cJSON_ArrayForEach(v, get(md, "finalizers"))
		if (cJSON_IsString(v) && !strcmp(v->valuestring, KVC_WF_FINALIZER))
			id.has_finalizer = 1;
	*out = id;
	return 0;
}

/* An integer in [lo, hi], or KVS_EINVAL naming `path`. */
static int integer(uint32_t *out, const cJSON *v, const char *path, uint32_t lo, uint32_t hi)
{
	if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
		return INVALID("%s: must be an integer", path);
	if (v->valuedouble < lo || v->valuedouble > hi)
		return INVALID("%s: must be between %u and %u (got %.0f)", path, lo, hi, v->valuedouble);
	*out = (uint32_t)v->valuedouble;
	return 0;
}

/* Refuse members of `o` not in `known` (a typo would otherwise be a silent
 * default: "maxConcurency" would run everything at once). */
static int only(const cJSON *o, const char *path, const char *const *known)
{
	const cJSON *m;
	cJSON_ArrayForEach(m, o) {
		size_t i;
		for (i = 0; known[i]; i++)
			if (!strcmp(m->string, known[i]))
				break;
		if (!known[i])
			return INVALID("%s.%s: unknown field", path, m->string);
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * An array of 1..max distinct strings of 1..KVC_WF_KEY_MAX bytes, copied
 * into *out (n of them). Duplicates are refused: two tasks with the same
 * key would be indistinguishable to the program they run.
 */
static int strings(char ***out, uint32_t *n_out, size_t *len_max, const cJSON *a, const char *path,
                   uint32_t max)
{
	int n = cJSON_GetArraySize(a), i = 0, rc = 0;
	char **v, **sorted = NULL;
	const cJSON *e;

	if (!cJSON_IsArray(a))
		return INVALID("%s: must be a list of strings", path);
	if (n < 1 || (uint32_t)n > max)
		return INVALID("%s: must have 1 to %u items (got %d)", path, max, n);
	if (!(v = calloc((size_t)n, sizeof(*v))) || !(sorted = malloc((size_t)n * sizeof(*v)))) {
		free(v);
		return kvs_error_set(KVS_ENOMEM, "workflow: out of memory");
	}
	*len_max = 0;
	cJSON_ArrayForEach(e, a) {
		size_t len;
		if (!cJSON_IsString(e)) {
			rc = INVALID("%s[%d]: must be a string", path, i);
			break;
		}
		len = strlen(e->valuestring);
		if (len == 0 || len > KVC_WF_KEY_MAX) {
			rc = INVALID("%s[%d]: must be 1 to %u bytes (got %zu)", path, i, KVC_WF_KEY_MAX, len);
			break;
		}
		if (!(v[i] = strdup(e->valuestring))) {
			rc = kvs_error_set(KVS_ENOMEM, "workflow: out of memory");
			break;
		}
		if (len > *len_max)
			*len_max = len;
		i++;
	}
	if (rc == 0) {
		memcpy(sorted, v, (size_t)n * sizeof(*v));
		qsort(sorted, (size_t)n, sizeof(*v), cmp_str);
		for (i = 1; i < n; i++)
			if (!strcmp(sorted[i - 1], sorted[i])) {
				rc = INVALID("%s: \"%.64s\" appears more than once", path, sorted[i]);
				break;
			}
	}
	free(sorted);
	if (rc < 0) {
		for (i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return rc;
	}
	*out = v;
	*n_out = (uint32_t)n;
	return 0;
}

static int dim_name(const char *s, const char *path)
{
	size_t n = strlen(s);
	if (n == 0 || n > KVC_WF_DIM_NAME_MAX)
		return INVALID("%s: a dimension name must be 1 to %u characters", path, KVC_WF_DIM_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return INVALID("%s: dimension name \"%s\" must match [A-Za-z_][A-Za-z0-9_]* "
			               "(it names an environment variable)", path, s);
	}
	return 0;
}

static int parse_parallelism(kvc_wf_spec *sp, const cJSON *p)
{
	static const char *const known[] = { "withCount", "withKeys", "withMatrix", NULL };
	const cJSON *c = get(p, "withCount"), *k = get(p, "withKeys"), *m = get(p, "withMatrix"), *d;
	char path[128];
	int rc, set = !!c + !!k + !!m;

	if (!cJSON_IsObject(p))
		return INVALID("spec.parallelism: required: exactly one of withCount, withKeys, withMatrix");
	if ((rc = only(p, "spec.parallelism", known)) < 0)
		return rc;
	if (set != 1)
		return INVALID("spec.parallelism: exactly one of withCount, withKeys, withMatrix must be set "
		               "(%d are)", set);
	if (c) {
		sp->kind = KVC_WF_WITH_COUNT;
		return integer(&sp->total, c, "spec.parallelism.withCount", 1, KVC_WF_TASKS_MAX);
	}
	if (k) {
		sp->kind = KVC_WF_WITH_KEYS;
		return strings(&sp->keys, &sp->total, &sp->key_len_max, k, "spec.parallelism.withKeys",
		               KVC_WF_TASKS_MAX);
	}
	sp->kind = KVC_WF_WITH_MATRIX;
	if (!cJSON_IsObject(m) || !m->child)
		return INVALID("spec.parallelism.withMatrix: must map 1 to %u dimension names to lists of values",
		               KVC_WF_DIMS_MAX);
	if (cJSON_GetArraySize(m) > (int)KVC_WF_DIMS_MAX)
		return INVALID("spec.parallelism.withMatrix: at most %u dimensions (got %d)", KVC_WF_DIMS_MAX,
		               cJSON_GetArraySize(m));
	uint64_t total = 1;
	cJSON_ArrayForEach(d, m) {
		kvc_wf_dim *dim = &sp->dims[sp->ndims];
		snprintf(path, sizeof(path), "spec.parallelism.withMatrix.%.64s", d->string);
		if ((rc = dim_name(d->string, path)) < 0)
			return rc;
		if (!(dim->name = strdup(d->string)) ||
		    !(dim->env = malloc(strlen("TASK_MATRIX_") + strlen(d->string) + 1)))
			return kvs_error_set(KVS_ENOMEM, "workflow: out of memory");
		strcpy(dim->env, "TASK_MATRIX_");
		for (const char *s = d->string; *s; s++) {
			char ch = *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s;
			strncat(dim->env, &ch, 1);
		}
		sp->ndims++;
		for (uint32_t j = 0; j + 1 < sp->ndims; j++)
			if (!strcmp(sp->dims[j].env, dim->env))
				return INVALID("%s: dimensions \"%s\" and \"%s\" would both be %s", path,
				               sp->dims[j].name, dim->name, dim->env);
		if ((rc = strings(&dim->values, &dim->nvalues, &dim->len_max, d, path, KVC_WF_TASKS_MAX)) < 0)
			return rc;
		total *= dim->nvalues;
		if (total > KVC_WF_TASKS_MAX)
			return INVALID("spec.parallelism.withMatrix: more than %u combinations", KVC_WF_TASKS_MAX);
	}
	sp->total = (uint32_t)total;
	return 0;
}

static int parse_policy(kvc_wf_spec *sp, const cJSON *spec)
{
	static const char *const rknown[] = { "maxAttemptsPerTask", NULL };
	static const char *const cknown[] = { "strategy", "onComplete", NULL };
	const cJSON *r = get(spec, "retries"), *c = get(spec, "completion"), *v;
	int rc;

	sp->max_attempts = 1;
	if ((v = get(spec, "maxConcurrency")) &&
	    (rc = integer(&sp->max_concurrency, v, "spec.maxConcurrency", 1, KVC_WF_TASKS_MAX)) < 0)
		return rc;
	if (r) {
		if (!cJSON_IsObject(r))
			return INVALID("spec.retries: must be an object");
		if ((rc = only(r, "spec.retries", rknown)) < 0)
			return rc;
		if ((v = get(r, "maxAttemptsPerTask")) &&
		    (rc = integer(&sp->max_attempts, v, "spec.retries.maxAttemptsPerTask", 1,
		                  KVC_WF_ATTEMPTS_MAX)) < 0)
			return rc;
	}
	if (c) {
		if (!cJSON_IsObject(c))
			return INVALID("spec.completion: must be an object");
		if ((rc = only(c, "spec.completion", cknown)) < 0)
			return rc;
		if ((v = get(c, "strategy"))) {
			const char *s = cJSON_GetStringValue(v);
			if (s && !strcmp(s, "AllSuccessful"))
				sp->strategy = KVC_WF_ALL_SUCCESSFUL;
			else if (s && !strcmp(s, "AnySuccessful"))
				sp->strategy = KVC_WF_ANY_SUCCESSFUL;
			else
				return INVALID("spec.completion.strategy: must be AllSuccessful or AnySuccessful");
		}
		if ((v = get(c, "onComplete"))) {
			const char *s = cJSON_GetStringValue(v);
			if (s && !strcmp(s, "WaitForRemaining"))
				sp->on_complete = KVC_WF_WAIT_FOR_REMAINING;
			else if (s && !strcmp(s, "TerminateRemaining"))
				sp->on_complete = KVC_WF_TERMINATE_REMAINING;
			else
				return INVALID("spec.completion.onComplete: must be WaitForRemaining or "
				               "TerminateRemaining");
		}
	}
	return 0;
}

static int reserved_label(const char *k)
{
	return !strncmp(k, KVC_WF_GROUP "/", strlen(KVC_WF_GROUP "/")) || !strcmp(k, KVC_VSHARD_LABEL);
}

static int string_map(const cJSON *o, const char *path, int labels)
{
	const cJSON *m;
	if (!o)
		return 0;
	if (!cJSON_IsObject(o))
		return INVALID("%s: must map names to strings", path);
	cJSON_ArrayForEach(m, o) {
		if (!cJSON_IsString(m))
			return INVALID("%s.%s: must be a string", path, m->string);
		if (labels && reserved_label(m->string))
			return INVALID("%s.%s: the controller sets this label", path, m->string);
	}
	return 0;
}

static int reserved_env(const char *n)
{
	return !strcmp(n, "TASK_INDEX") || !strcmp(n, "TASK_KEY") || !strncmp(n, "TASK_MATRIX_", 12);
}

/* One container: a name, an image, no environment variable of ours, and
 * every ${task.*} in its command and args resolvable. */
static int check_container(const kvc_wf_spec *sp, const cJSON *c, const char *path)
{
	static const char *const lists[] = { "command", "args", NULL };
	const cJSON *v;
	char p[160];
	int rc, i;

	if (!cJSON_IsObject(c))
		return INVALID("%s: must be an object", path);
	if (!cJSON_GetStringValue(get(c, "name")) || !get(c, "name")->valuestring[0])
		return INVALID("%s.name: required", path);
	if (!cJSON_GetStringValue(get(c, "image")) || !get(c, "image")->valuestring[0])
		return INVALID("%s.image: required", path);
	if ((v = get(c, "env")) && !cJSON_IsArray(v))
		return INVALID("%s.env: must be a list", path);
	i = 0;
	cJSON_ArrayForEach(v, get(c, "env")) {
		const char *n = cJSON_GetStringValue(get(v, "name"));
		if (!n)
			return INVALID("%s.env[%d].name: required", path, i);
		if (reserved_env(n))
			return INVALID("%s.env[%d]: %s is set by the controller", path, i, n);
		i++;
	}
	for (size_t l = 0; lists[l]; l++) {
		if (!(v = get(c, lists[l])))
			continue;
		if (!cJSON_IsArray(v))
			return INVALID("%s.%s: must be a list of strings", path, lists[l]);
		i = 0;
		const cJSON *a;
		cJSON_ArrayForEach(a, v) {
			snprintf(p, sizeof(p), "%s.%s[%d]", path, lists[l], i++);
			if (!cJSON_IsString(a))
				return INVALID("%s: must be a string", p);
			if ((rc = kvc_wf_subst(NULL, a->valuestring, sp, NULL, p)) < 0)
				return rc;
		}
	}
	return 0;
}

static int parse_template(kvc_wf_spec *sp, const cJSON *t)
{
	static const char *const groups[] = { "containers", "initContainers", NULL };
	const cJSON *md, *ps, *v;
	char path[96];
	char *text;
	size_t len;
	int rc;

	if (!cJSON_IsObject(t))
		return INVALID("spec.template: required: a Pod template (metadata, spec)");
	if (!(text = cJSON_PrintUnformatted(t)))
		return kvs_error_set(KVS_ENOMEM, "workflow: out of memory");
	len = strlen(text);
	free(text);
	if (len > KVC_WF_TEMPLATE_MAX)
		return INVALID("spec.template: %zu bytes as JSON, more than %u", len, KVC_WF_TEMPLATE_MAX);
	if ((md = get(t, "metadata"))) {
		if (!cJSON_IsObject(md))
			return INVALID("spec.template.metadata: must be an object");
		if ((rc = string_map(get(md, "labels"), "spec.template.metadata.labels", 1)) < 0 ||
		    (rc = string_map(get(md, "annotations"), "spec.template.metadata.annotations", 0)) < 0)
			return rc;
	}
	ps = get(t, "spec");
	if (!cJSON_IsObject(ps))
		return INVALID("spec.template.spec: required: a Pod spec");
	v = get(ps, "restartPolicy");
	if (v && (!cJSON_IsString(v) || strcmp(v->valuestring, "Never")))
		return INVALID("spec.template.spec.restartPolicy: must be Never (the controller retries a task "
		               "with a new Pod, spec.retries)");
	v = get(ps, "containers");
	if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1)
		return INVALID("spec.template.spec.containers: required: at least one container");
	for (size_t g = 0; groups[g]; g++) {
		int i = 0;
		const cJSON *c;
		if ((v = get(ps, groups[g])) && !cJSON_IsArray(v))
			return INVALID("spec.template.spec.%s: must be a list", groups[g]);
		cJSON_ArrayForEach(c, v) {
			snprintf(path, sizeof(path), "spec.template.spec.%s[%d]", groups[g], i++);
			if ((rc = check_container(sp, c, path)) < 0)
				return rc;
		}
	}
	if (!(sp->template = cJSON_Duplicate(t, 1)))
		return kvs_error_set(KVS_ENOMEM, "workflow: out of memory");
	return 0;
}

void kvc_wf_spec_free(kvc_wf_spec *sp)
{
	if (!sp)
		return;
	for (uint32_t i = 0; sp->keys && i < sp->total; i++)
		free(sp->keys[i]);
	free(sp->keys);
	for (uint32_t d = 0; d < KVC_WF_DIMS_MAX; d++) {
		kvc_wf_dim *dim = &sp->dims[d];
		for (uint32_t i = 0; dim->values && i < dim->nvalues; i++)
			free(dim->values[i]);
		free(dim->values);
		free(dim->name);
		free(dim->env);
	}
	cJSON_Delete(sp->template);
	memset(sp, 0, sizeof(*sp));
}

int kvc_wf_spec_parse(kvc_wf_spec *out, const cJSON *wf, const char *name)
{
	static const char *const known[] = { "parallelism", "maxConcurrency", "retries", "completion",
	                                     "template", NULL };
	const cJSON *spec = get(wf, "spec");
	kvc_wf_spec sp;
	size_t pod_name;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&sp, 0, sizeof(sp));
	if (!cJSON_IsObject(spec))
		return INVALID("spec: required");
	if ((rc = only(spec, "spec", known)) < 0 || (rc = parse_parallelism(&sp, get(spec, "parallelism"))) < 0 ||
	    (rc = parse_policy(&sp, spec)) < 0 || (rc = parse_template(&sp, get(spec, "template"))) < 0)
		goto fail;
	/* <name>-<index>-<attempt> must be a valid object name. */
	pod_name = strlen(name) + 2 + kvc_wf_digits(sp.total - 1) + kvc_wf_digits(sp.max_attempts);
	if (pod_name > KVC_WF_NAME_MAX) {
		rc = INVALID("metadata.name: %zu characters is too long for this workflow: its Pod names "
		             "(<name>-<index>-<attempt>) would be %zu, more than %u",
		             strlen(name), pod_name, KVC_WF_NAME_MAX);
		goto fail;
	}
	*out = sp;
	return 0;
fail:
	kvc_wf_spec_free(&sp);
	return rc;
}
