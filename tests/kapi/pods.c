/* Pods as the real server keeps them without a kubelet or a scheduler:
 * defaulting (SetDefaults_Pod and friends, the DefaultTolerationSeconds and
 * ServiceAccount admission plugins' fields), status Pending with its
 * qosClass, validation and ValidatePodUpdate's immutability. Events: the
 * checks of ValidateEventCreate. */
#include "kapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *obj_field(cJSON *o, const char *k)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!cJSON_IsObject(v)) {
		cJSON_DeleteItemFromObjectCaseSensitive(o, k);
		v = cJSON_AddObjectToObject(o, k);
	}
	return v;
}

static void set_default_str(cJSON *o, const char *k, const char *v)
{
	const char *cur = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
	if (cur && *cur)
		return;
	cJSON_DeleteItemFromObjectCaseSensitive(o, k);
	cJSON_AddStringToObject(o, k, v);
}

static void set_default_num(cJSON *o, const char *k, double v)
{
	if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, k)))
		return;
	cJSON_DeleteItemFromObjectCaseSensitive(o, k);
	cJSON_AddNumberToObject(o, k, v);
}

/* Rebuild o's members in the Go struct's order (unknown ones last). */
static void reorder(cJSON *o, const char *const *order)
{
	if (!cJSON_IsObject(o))
		return;
	cJSON *tmp = cJSON_CreateObject();
	for (; *order; order++) {
		cJSON *c = cJSON_DetachItemFromObjectCaseSensitive(o, *order);
		if (c)
			cJSON_AddItemToObject(tmp, *order, c);
	}
	while (o->child) {
		cJSON *c = cJSON_DetachItemViaPointer(o, o->child);
		cJSON_AddItemToObject(tmp, c->string, c);
	}
	while (tmp->child) {
		cJSON *c = cJSON_DetachItemViaPointer(tmp, tmp->child);
		cJSON_AddItemToObject(o, c->string, c);
	}
	cJSON_Delete(tmp);
}

static const char *const SPEC_ORDER[] = {
	"volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy",
	"terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy", "nodeSelector",
	"serviceAccountName", "serviceAccount", "automountServiceAccountToken", "nodeName",
	"hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace", "securityContext",
	"imagePullSecrets", "hostname", "subdomain", "affinity", "schedulerName", "tolerations",
	"hostAliases", "priorityClassName", "priority", "dnsConfig", "readinessGates",
	"runtimeClassName", "enableServiceLinks", "preemptionPolicy", "overhead",
	"topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers", "schedulingGates",
	"resourceClaims", NULL};
static const char *const CONTAINER_ORDER[] = {
	"name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources",
	"resizePolicy", "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe",
	"readinessProbe", "startupProbe", "lifecycle", "terminationMessagePath",
	"terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty",
	NULL};

/* SetDefaults_Container's imagePullPolicy: Always for :latest or no tag. */
static const char *pull_policy(const char *image)
{
	if (!image || strchr(image, '@'))
		return "IfNotPresent";
	const char *slash = strrchr(image, '/');
	const char *colon = strrchr(slash ? slash : image, ':');
	if (!colon || strcmp(colon, ":latest") == 0)
		return "Always";
	return "IfNotPresent";
}

static void container_defaults(cJSON *c)
{
	if (!cJSON_IsObject(c))
		return;
	set_default_str(c, "terminationMessagePath", "/dev/termination-log");
	set_default_str(c, "terminationMessagePolicy", "File");
	set_default_str(c, "imagePullPolicy",
	                pull_policy(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "image"))));
	cJSON *res = obj_field(c, "resources");
	/* requests default to the limits */
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(res, "limits");
	if (cJSON_IsObject(lim) && lim->child) {
		cJSON *req = obj_field(res, "requests");
		for (const cJSON *l = lim->child; l; l = l->next)
			if (!cJSON_GetObjectItemCaseSensitive(req, l->string))
				cJSON_AddItemToObject(req, l->string, cJSON_Duplicate(l, 1));
	}
	cJSON *p;
	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(c, "ports"))
		if (cJSON_IsObject(p))
			set_default_str(p, "protocol", "TCP");
	reorder(c, CONTAINER_ORDER);
}

static bool has_toleration(const cJSON *tols, const char *key)
{
	const cJSON *t;
	cJSON_ArrayForEach(t, tols) {
		const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "key"));
		const char *e = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "effect"));
		if ((k && !strcmp(k, key)) && (!e || !*e || !strcmp(e, "NoExecute")))
			return true;
	}
	return false;
}

static void add_toleration(cJSON *tols, const char *key)
{
	cJSON *t = cJSON_CreateObject();
	cJSON_AddStringToObject(t, "key", key);
	cJSON_AddStringToObject(t, "operator", "Exists");
	cJSON_AddStringToObject(t, "effect", "NoExecute");
	cJSON_AddNumberToObject(t, "tolerationSeconds", 300);
	cJSON_AddItemToArray(tols, t);
}

/* GetPodQOS over cpu and memory. */
static const char *qos_class(const cJSON *spec)
{
	bool any = false, guaranteed = true;
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers")) {
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(c, "resources");
		const cJSON *req = cJSON_GetObjectItemCaseSensitive(res, "requests");
		const cJSON *lim = cJSON_GetObjectItemCaseSensitive(res, "limits");
		static const char *const names[] = {"cpu", "memory"};
		for (int i = 0; i < 2; i++) {
			const cJSON *rq = cJSON_GetObjectItemCaseSensitive(req, names[i]);
			const cJSON *lm = cJSON_GetObjectItemCaseSensitive(lim, names[i]);
			any |= rq != NULL || lm != NULL;
			if (!lm || !rq || !cJSON_Compare(lm, rq, 1))
				guaranteed = false;
		}
	}
	return !any ? "BestEffort" : guaranteed ? "Guaranteed" : "Burstable";
}

void pod_defaults(cJSON *pod)
{
	cJSON *spec = obj_field(pod, "spec");
	set_default_str(spec, "restartPolicy", "Always");
	set_default_num(spec, "terminationGracePeriodSeconds", 30);
	set_default_str(spec, "dnsPolicy", "ClusterFirst");
	set_default_str(spec, "serviceAccountName", "default");
	set_default_str(spec, "serviceAccount",
	                cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "serviceAccountName")));
	obj_field(spec, "securityContext");
	set_default_str(spec, "schedulerName", "default-scheduler");
	set_default_num(spec, "priority", 0);
	if (!cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(spec, "enableServiceLinks"))) {
		cJSON_DeleteItemFromObjectCaseSensitive(spec, "enableServiceLinks");
		cJSON_AddBoolToObject(spec, "enableServiceLinks", 1);
	}
	set_default_str(spec, "preemptionPolicy", "PreemptLowerPriority");
	cJSON *tols = cJSON_GetObjectItemCaseSensitive(spec, "tolerations");
	if (!cJSON_IsArray(tols)) {
		cJSON_DeleteItemFromObjectCaseSensitive(spec, "tolerations");
		tols = cJSON_AddArrayToObject(spec, "tolerations");
	}
	if (!has_toleration(tols, "node.kubernetes.io/not-ready"))
		add_toleration(tols, "node.kubernetes.io/not-ready");
	if (!has_toleration(tols, "node.kubernetes.io/unreachable"))
		add_toleration(tols, "node.kubernetes.io/unreachable");
	cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
		container_defaults(c);
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "initContainers"))
		container_defaults(c);
	reorder(spec, SPEC_ORDER);
	/* podStrategy.PrepareForCreate */
	cJSON_DeleteItemFromObjectCaseSensitive(pod, "status");
	cJSON *st = cJSON_AddObjectToObject(pod, "status");
	cJSON_AddStringToObject(st, "phase", "Pending");
	cJSON_AddStringToObject(st, "qosClass", qos_class(spec));
}

static bool dns_label(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static void containers(const cJSON *list, const char *path, struct ferrs *fe, bool required)
{
	char f[96];
	if (required && cJSON_GetArraySize(list) == 0) {
		snprintf(f, sizeof f, "spec.%s", path);
		ferr_add(fe, "FieldValueRequired", f, "Required value");
		return;
	}
	int i = 0;
	const cJSON *c;
	cJSON_ArrayForEach(c, list) {
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "name"));
		const char *image = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "image"));
		snprintf(f, sizeof f, "spec.%s[%d].name", path, i);
		if (!name || !*name) {
			ferr_add(fe, "FieldValueRequired", f, "Required value");
		} else if (!dns_label(name)) {
			char *b = xasprintf("Invalid value: \"%s\": a lowercase RFC 1123 label must consist of lower "
			                    "case alphanumeric characters or '-', and must start and end with an "
			                    "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
			                    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')", name);
			ferr_add(fe, "FieldValueInvalid", f, b);
			free(b);
		} else {
			for (const cJSON *p = list->child; p && p != c; p = p->next) {
				const char *pn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "name"));
				if (pn && !strcmp(pn, name)) {
					char *b = xasprintf("Duplicate value: \"%s\"", name);
					ferr_add(fe, "FieldValueDuplicate", f, b);
					free(b);
					break;
				}
			}
		}
		snprintf(f, sizeof f, "spec.%s[%d].image", path, i);
		if (!image || !*image)
			ferr_add(fe, "FieldValueRequired", f, "Required value");
		i++;
	}
}

void pod_validate(const cJSON *pod, struct ferrs *fe)
{
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
	containers(cJSON_GetObjectItemCaseSensitive(spec, "containers"), "containers", fe, true);
	containers(cJSON_GetObjectItemCaseSensitive(spec, "initContainers"), "initContainers", fe, false);
	const char *rp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "restartPolicy"));
	if (rp && strcmp(rp, "Always") && strcmp(rp, "OnFailure") && strcmp(rp, "Never")) {
		char *b = xasprintf("Unsupported value: \"%s\": supported values: \"Always\", \"OnFailure\", \"Never\"", rp);
		ferr_add(fe, "FieldValueNotSupported", "spec.restartPolicy", b);
		free(b);
	}
	const char *ph = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(pod, "status"), "phase"));
	if (ph && strcmp(ph, "Pending") && strcmp(ph, "Running") && strcmp(ph, "Succeeded") &&
	    strcmp(ph, "Failed") && strcmp(ph, "Unknown")) {
		char *b = xasprintf("Unsupported value: \"%s\": supported values: \"Pending\", \"Running\", "
		                    "\"Succeeded\", \"Failed\", \"Unknown\"", ph);
		ferr_add(fe, "FieldValueNotSupported", "status.phase", b);
		free(b);
	}
}

static void copy_images(cJSON *to, const cJSON *from)
{
	if (cJSON_GetArraySize(to) != cJSON_GetArraySize(from))
		return;
	const cJSON *f = from ? from->child : NULL;
	for (cJSON *t = to ? to->child : NULL; t && f; t = t->next, f = f->next) {
		cJSON_DeleteItemFromObjectCaseSensitive(t, "image");
		const cJSON *img = cJSON_GetObjectItemCaseSensitive(f, "image");
		if (img)
			cJSON_AddItemToObject(t, "image", cJSON_Duplicate(img, 1));
	}
}

static void take(cJSON *to, const cJSON *from, const char *k)
{
	cJSON_DeleteItemFromObjectCaseSensitive(to, k);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, k);
	if (v)
		cJSON_AddItemToObject(to, k, cJSON_Duplicate(v, 1));
}

/* Every old toleration is still there (additions only). */
static bool tolerations_added(const cJSON *oldt, const cJSON *newt)
{
	const cJSON *o, *n;
	cJSON_ArrayForEach(o, oldt) {
		bool found = false;
		cJSON_ArrayForEach(n, newt)
			found |= cJSON_Compare(o, n, 1);
		if (!found)
			return false;
	}
	return true;
}

void pod_validate_update(const cJSON *oldp, const cJSON *newp, struct ferrs *fe)
{
	const cJSON *os = cJSON_GetObjectItemCaseSensitive(oldp, "spec");
	cJSON *ms = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(newp, "spec"), 1);
	if (!ms)
		ms = cJSON_CreateObject();
	copy_images(cJSON_GetObjectItemCaseSensitive(ms, "containers"),
	            cJSON_GetObjectItemCaseSensitive(os, "containers"));
	copy_images(cJSON_GetObjectItemCaseSensitive(ms, "initContainers"),
	            cJSON_GetObjectItemCaseSensitive(os, "initContainers"));
	take(ms, os, "activeDeadlineSeconds");
	take(ms, os, "terminationGracePeriodSeconds");
	if (tolerations_added(cJSON_GetObjectItemCaseSensitive(os, "tolerations"),
	                      cJSON_GetObjectItemCaseSensitive(ms, "tolerations")))
		take(ms, os, "tolerations");
	if (!cJSON_Compare(ms, os, 1))
		ferr_add(fe, "FieldValueForbidden", "spec",
		         "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
		         "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
		         "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
		         "(allow it to be set to 1 if it was previously negative)");
	cJSON_Delete(ms);
}

static void required(const cJSON *o, const char *k, struct ferrs *fe)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!v || (cJSON_IsString(v) && !*v->valuestring) || cJSON_IsNull(v))
		ferr_add(fe, "FieldValueRequired", k, "Required value");
}

void event_validate(const struct resource *r, const cJSON *ev, const char *ns, struct ferrs *fe)
{
	bool v1 = !strcmp(r->group, "events.k8s.io");
	const cJSON *io = cJSON_GetObjectItemCaseSensitive(ev, v1 ? "regarding" : "involvedObject");
	const char *ins = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(io, "namespace"));
	if (ins && *ins && strcmp(ins, ns) != 0) {
		char *b = xasprintf("Invalid value: \"%s\": does not match event.namespace", ins);
		ferr_add(fe, "FieldValueInvalid", v1 ? "regarding.namespace" : "involvedObject.namespace", b);
		free(b);
	}
	if (!v1)
		return;
	required(ev, "eventTime", fe);
	const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "type"));
	if (!t || (strcmp(t, "Normal") && strcmp(t, "Warning"))) {
		char *b = xasprintf("Invalid value: \"\": has invalid value: %s", t ? t : "");
		ferr_add(fe, "FieldValueInvalid", "type", b);
		free(b);
	}
	required(ev, "reportingController", fe);
	required(ev, "reportingInstance", fe);
	required(ev, "action", fe);
	required(ev, "reason", fe);
}
