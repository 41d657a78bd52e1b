#!/usr/bin/python3
"""What controllers depend on, driven with Debian's python3-kubernetes and
checked against the answers of a real kube-apiserver (issue 15): the status
subresource of a CRD applied at run time, Pods, finalizers and graceful
deletion, dryRun, validation, strategic merge patch, the watch cache and
bookmarks, list semantics, and the smaller wording items.

usage: k8s_controller_check.py KUBECONFIG CONTROL_URL
The server must run with --watch-cache-size 3 --watch-cache-ms 0 --bookmark-ms 300.
Prints "ok - ctl: ..." / "FAIL - ctl: ..." lines; exit status 1 if any failed.
"""
import json
import sys
import threading
import time
import urllib.request

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

KUBECONFIG, CONTROL = sys.argv[1], sys.argv[2]
failed = 0
NS = "default"


def check(what, cond, expected="", got=""):
    global failed
    if cond:
        print("ok - ctl: %s" % what)
    else:
        failed += 1
        print("FAIL - ctl: %s" % what)
        print("  expected: %s" % (expected,))
        print("  got: %s" % (got,))
    sys.stdout.flush()


def control(path):
    req = urllib.request.Request(CONTROL + path, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def api_error(fn, *a, **kw):
    try:
        fn(*a, **kw)
    except ApiException as e:
        return e
    return None


def body(e):
    try:
        return json.loads(e.body)
    except Exception:
        return {}


def collect(fn, args, kw, n, timeout=5):
    """Watch in a thread; returns (thread, events list) collecting n events."""
    events = []

    def run():
        w = watch.Watch()
        for ev in w.stream(fn, *args, timeout_seconds=timeout, **kw):
            o = ev["object"]
            name = o["metadata"]["name"] if isinstance(o, dict) else o.metadata.name
            events.append((ev["type"], name, o))
            if len(events) >= n:
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.4)
    return t, events


config.load_kube_config(config_file=KUBECONFIG)
api = client.ApiClient()
v1 = client.CoreV1Api()
coord = client.CoordinationV1Api()
ext = client.ApiextensionsV1Api()
co = client.CustomObjectsApi()

# --- 1. a CRD applied at run time, with the status subresource ------------------------
crd = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "jobs.ctl.example.com"},
    "spec": {
        "group": "ctl.example.com", "scope": "Namespaced",
        "names": {"plural": "jobs", "singular": "job", "kind": "Job", "listKind": "JobList"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                {"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {
                    "size": {"type": "integer"},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}},
                "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}}},
        }],
    },
}
ext.create_custom_resource_definition(crd)
G, V, P = "ctl.example.com", "v1", "jobs"
j = co.create_namespaced_custom_object(G, V, NS, P, {
    "apiVersion": "ctl.example.com/v1", "kind": "Job", "metadata": {"name": "j1"},
    "spec": {"size": 1, "junk": "x", "free": {"any": {"thing": 1}}}, "status": {"phase": "Done"}})
check("1 create drops .status (status subresource)", "status" not in j, "no status", j.get("status"))
check("1 generation starts at 1", j["metadata"].get("generation") == 1, 1, j["metadata"].get("generation"))
check("5 unknown fields are pruned, preserve-unknown-fields kept",
      "junk" not in j["spec"] and j["spec"].get("free") == {"any": {"thing": 1}},
      "spec without junk, free kept", j["spec"])

t, evs = collect(co.list_namespaced_custom_object, (G, V, NS, P),
                 {"resource_version": j["metadata"]["resourceVersion"]}, 1, timeout=3)
s1 = co.patch_namespaced_custom_object_status(G, V, NS, P, "j1", {"status": {"phase": "Running"},
                                                                  "spec": {"size": 9}})
t.join(5)
check("1 PATCH /status writes only the status (spec change ignored, generation unchanged)",
      s1["status"] == {"phase": "Running"} and s1["spec"]["size"] == 1 and s1["metadata"]["generation"] == 1,
      "status Running, size 1, generation 1", (s1.get("status"), s1["spec"], s1["metadata"].get("generation")))
check("1 a status write is one MODIFIED event",
      [(e[0], e[1]) for e in evs] == [("MODIFIED", "j1")], [("MODIFIED", "j1")], [(e[0], e[1]) for e in evs])
g = co.get_namespaced_custom_object_status(G, V, NS, P, "j1")
check("1 GET /status is 200 with the object", g["status"]["phase"] == "Running", "Running", g.get("status"))
s2 = co.patch_namespaced_custom_object(G, V, NS, P, "j1", {"spec": {"size": 2}, "status": {"phase": "Lost"}})
check("1 a spec change bumps generation, the main resource ignores status",
      s2["metadata"]["generation"] == 2 and s2["status"]["phase"] == "Running",
      "generation 2, status Running", (s2["metadata"]["generation"], s2.get("status")))
s2["status"] = {"phase": "Succeeded"}
s2["spec"]["size"] = 7
s3 = co.replace_namespaced_custom_object_status(G, V, NS, P, "j1", s2)
check("1 PUT /status changes the status only",
      s3["status"]["phase"] == "Succeeded" and s3["spec"]["size"] == 2 and s3["metadata"]["generation"] == 2,
      "Succeeded, size 2, generation 2", (s3.get("status"), s3["spec"], s3["metadata"]["generation"]))
e = api_error(co.create_namespaced_custom_object, G, V, NS, P, {
    "apiVersion": "ctl.example.com/v1", "kind": "Job", "metadata": {"name": "j2"}, "spec": "oops"})
check("5 a spec that is not an object is 422 (schema types)",
      e is not None and e.status == 422 and
      'spec: Invalid value: "string": spec in body must be of type object: "string"' in body(e).get("message", ""),
      '422 spec: Invalid value: "string": spec in body must be of type object: "string"', e and e.body)

# --- 2. Pods ----------------------------------------------------------------------------------
owner = v1.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="ctl-owner")))
pod = v1.create_namespaced_pod(NS, {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "ctl-pod", "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "ctl-owner", "uid": owner.metadata.uid,
        "controller": True}]},
    "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "env": [{"name": "A", "value": "1"}]}]}})
sp = pod.spec
tols = sorted((x.key, x.operator, x.effect, x.toleration_seconds) for x in sp.tolerations)
check("2 Pod defaults (restartPolicy, dnsPolicy, grace 30, schedulerName, imagePullPolicy)",
      sp.restart_policy == "Always" and sp.dns_policy == "ClusterFirst" and
      sp.termination_grace_period_seconds == 30 and sp.scheduler_name == "default-scheduler" and
      sp.containers[0].image_pull_policy == "IfNotPresent" and
      sp.containers[0].termination_message_path == "/dev/termination-log",
      "Always ClusterFirst 30 default-scheduler IfNotPresent",
      (sp.restart_policy, sp.dns_policy, sp.termination_grace_period_seconds, sp.scheduler_name,
       sp.containers[0].image_pull_policy))
check("2 Pod gets the two 300 s NoExecute tolerations",
      tols == [("node.kubernetes.io/not-ready", "Exists", "NoExecute", 300),
               ("node.kubernetes.io/unreachable", "Exists", "NoExecute", 300)], "not-ready, unreachable", tols)
check("2 Pod status is Pending with a qosClass", pod.status.phase == "Pending" and pod.status.qos_class == "BestEffort",
      "Pending BestEffort", (pod.status.phase, pod.status.qos_class))
check("2 Pod keeps ownerReferences", pod.metadata.owner_references[0].uid == owner.metadata.uid,
      owner.metadata.uid, pod.metadata.owner_references)
pod.status.phase = "Running"
run = v1.replace_namespaced_pod_status("ctl-pod", NS, pod)
check("2 PUT pods/status moves the Pod to Running", run.status.phase == "Running", "Running", run.status.phase)
done = v1.patch_namespaced_pod_status("ctl-pod", NS, {"status": {"phase": "Succeeded", "containerStatuses": [{
    "name": "main", "ready": False, "restartCount": 0, "image": "busybox:1.36", "imageID": "",
    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}})
check("2 PATCH pods/status to Succeeded with a terminated container state",
      done.status.phase == "Succeeded" and done.status.container_statuses[0].state.terminated.exit_code == 0,
      "Succeeded, exitCode 0", (done.status.phase, done.status.container_statuses))
e = api_error(v1.patch_namespaced_pod, "ctl-pod", NS, {"spec": {"restartPolicy": "Never"}})
check("2 a Pod spec change is 422 (pod updates may not change fields ...)",
      e is not None and e.status == 422 and "spec: Forbidden: pod updates may not change fields other than" in e.body,
      "422 spec: Forbidden: pod updates may not change fields other than ...", e and e.body)
img = v1.patch_namespaced_pod("ctl-pod", NS, {"spec": {"containers": [{"name": "main", "image": "busybox:1.37"}]}})
check("6 strategic merge: containers merge by name (image change keeps env)",
      img.spec.containers[0].image == "busybox:1.37" and img.spec.containers[0].env[0].name == "A" and
      len(img.spec.containers) == 1, "image busybox:1.37, env kept", img.spec.containers)
check("2 a spec write keeps the status", img.status.phase == "Succeeded", "Succeeded", img.status.phase)

# --- 3. finalizers and graceful deletion -------------------------------------------------------
f = co.create_namespaced_custom_object(G, V, NS, P, {
    "apiVersion": "ctl.example.com/v1", "kind": "Job",
    "metadata": {"name": "held", "finalizers": ["ctl.example.com/hold"]}, "spec": {"size": 1}})
t, evs = collect(co.list_namespaced_custom_object, (G, V, NS, P),
                 {"resource_version": f["metadata"]["resourceVersion"]}, 3)
d = co.delete_namespaced_custom_object(G, V, NS, P, "held")
check("3 deleting an object with finalizers sets deletionTimestamp, deletionGracePeriodSeconds 0",
      d["metadata"].get("deletionTimestamp") and d["metadata"].get("deletionGracePeriodSeconds") == 0,
      "deletionTimestamp set, grace 0", d["metadata"])
check("3 marking for deletion bumps generation", d["metadata"]["generation"] == 2, 2, d["metadata"]["generation"])
again = co.delete_namespaced_custom_object(G, V, NS, P, "held")
still = co.get_namespaced_custom_object(G, V, NS, P, "held")
check("3 the object stays and a further delete is 200",
      still["metadata"].get("deletionTimestamp") == d["metadata"]["deletionTimestamp"] and
      again["metadata"]["name"] == "held", "still there", still["metadata"])
u = co.patch_namespaced_custom_object(G, V, NS, P, "held", {"spec": {"size": 5}})
check("3 updates are allowed while deleting (generation bumps)", u["metadata"]["generation"] == 3, 3,
      u["metadata"]["generation"])
e = api_error(co.patch_namespaced_custom_object, G, V, NS, P, "held",
              {"metadata": {"finalizers": ["ctl.example.com/hold", "ctl.example.com/more"]}})
check("3 no new finalizers while deleting (422)", e is not None and e.status == 422 and
      "no new finalizers can be added if the object is being deleted" in e.body, "422", e and e.body)
co.patch_namespaced_custom_object(G, V, NS, P, "held", {"metadata": {"finalizers": None}})
t.join(6)
check("3 removing the last finalizer deletes it (watch MODIFIED, MODIFIED, DELETED)",
      [(x[0], x[1]) for x in evs] == [("MODIFIED", "held"), ("MODIFIED", "held"), ("DELETED", "held")],
      "MODIFIED MODIFIED DELETED", [(x[0], x[1]) for x in evs])
e = api_error(co.get_namespaced_custom_object, G, V, NS, P, "held")
check("3 gone once the finalizer is removed", e is not None and e.status == 404, 404, e and e.status)
fg = v1.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="ctl-fg")))
v1.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(
    name="ctl-fg-dep", owner_references=[client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="ctl-fg", uid=fg.metadata.uid, block_owner_deletion=True)])))
resp = v1.delete_namespaced_config_map("ctl-fg", NS, propagation_policy="Foreground", _preload_content=False)
fgd = json.loads(resp.data)
check("3 propagationPolicy=Foreground adds the foregroundDeletion finalizer",
      "foregroundDeletion" in fgd["metadata"].get("finalizers", []) and fgd["metadata"].get("deletionTimestamp"),
      "finalizers [foregroundDeletion], deletionTimestamp", fgd.get("metadata"))
names = [x.metadata.name for x in v1.list_namespaced_config_map(NS).items]
check("3 the garbage collector then removes dependent and owner",
      "ctl-fg" not in names and "ctl-fg-dep" not in names, "both gone", names)

# --- 4. dryRun=All -------------------------------------------------------------------------------
dr = v1.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="ctl-dry")),
                                     dry_run="All")
e = api_error(v1.read_namespaced_config_map, "ctl-dry", NS)
check("4 a dryRun create answers as if stored (uid, no resourceVersion) and stores nothing",
      dr.metadata.uid and not dr.metadata.resource_version and e is not None and e.status == 404,
      "uid set, no rv, then 404", (dr.metadata.uid, dr.metadata.resource_version, e and e.status))
v1.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="ctl-dry2")))
v1.delete_namespaced_config_map("ctl-dry2", NS, dry_run="All")
check("4 a dryRun delete deletes nothing", v1.read_namespaced_config_map("ctl-dry2", NS).metadata.name == "ctl-dry2",
      "still there", "")

# --- 5. validation -------------------------------------------------------------------------------
def invalid(what, meta, needle):
    e = api_error(v1.create_namespaced_config_map, NS, client.V1ConfigMap(metadata=meta))
    check("5 " + what, e is not None and e.status == 422 and needle in body(e).get("message", ""),
          "422 ... " + needle, e and e.body)


invalid("a label value with a space is 422", client.V1ObjectMeta(name="ctl-l1", labels={"a": "b c"}),
        'metadata.labels: Invalid value: "b c": a valid label must be an empty string or consist of')
invalid("a label key with a bad prefix is 422", client.V1ObjectMeta(name="ctl-l2", labels={"Bad_/x": "1"}),
        'metadata.labels: Invalid value: "Bad_/x": prefix part a lowercase RFC 1123 subdomain')
invalid("an ownerReference without uid is 422", client.V1ObjectMeta(name="ctl-o1", owner_references=[
    client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="x", uid="")]),
    'metadata.ownerReferences.uid: Invalid value: "": uid must not be empty')
invalid("two controller ownerReferences are 422", client.V1ObjectMeta(name="ctl-o2", owner_references=[
    client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="a", uid="u1", controller=True),
    client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="b", uid="u2", controller=True)]),
    'Only one reference can have Controller set to true. Found "true" in references for ConfigMap/a and ConfigMap/b')
e = api_error(coord.create_namespaced_lease, NS, {"metadata": {"name": "ctl-neg"}, "spec": {"leaseTransitions": -1}})
check("5 Lease leaseTransitions < 0 is 422", e is not None and e.status == 422 and
      "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0" in e.body, "422", e and e.body)
e = None
try:
    api.call_api("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases", "POST",
                 path_params={"namespace": NS},
                 body={"metadata": {"name": "ctl-mt"}, "spec": {"renewTime": "2024-05-01T10:00:00Z"}},
                 header_params={"Content-Type": "application/json", "Accept": "application/json"},
                 auth_settings=["BearerToken"], _preload_content=False)
except ApiException as x:
    e = x
check("5 a Lease time without six fractional digits is 400",
      e is not None and e.status == 400 and
      'parsing time "2024-05-01T10:00:00Z" as "2006-01-02T15:04:05.000000Z07:00"' in str(body(e).get("message")),
      "400 parsing time", e and e.body)
resp = api.call_api("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases", "POST",
                    path_params={"namespace": NS},
                    body={"metadata": {"name": "ctl-utc"}, "spec": {"renewTime": "2024-05-01T12:00:00.250000+02:00"}},
                    header_params={"Content-Type": "application/json", "Accept": "application/json"},
                    auth_settings=["BearerToken"], _preload_content=False)
rt = json.loads(resp[0].data)["spec"]["renewTime"]
check("5 a Lease MicroTime with an offset is stored in UTC", rt == "2024-05-01T10:00:00.250000Z",
      "2024-05-01T10:00:00.250000Z", rt)

# --- 6. strategic merge patch ---------------------------------------------------------------------
v1.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(
    name="ctl-smp", finalizers=["a.example.com/x"], owner_references=[client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="o1", uid="uid-1")]), data={"a": "1", "b": "2"}))
r = v1.patch_namespaced_config_map("ctl-smp", NS, {"data": {"$patch": "replace", "c": "3"}})
check("6 $patch: replace replaces the map", r.data == {"c": "3"}, {"c": "3"}, r.data)
r = v1.patch_namespaced_config_map("ctl-smp", NS, {"metadata": {
    "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o2", "uid": "uid-2"}],
    "finalizers": ["b.example.com/y"]}})
check("6 ownerReferences merge by uid", sorted(x.uid for x in r.metadata.owner_references) == ["uid-1", "uid-2"],
      ["uid-1", "uid-2"], r.metadata.owner_references)
check("6 finalizers (merge strategy) are a union", r.metadata.finalizers == ["a.example.com/x", "b.example.com/y"],
      ["a.example.com/x", "b.example.com/y"], r.metadata.finalizers)
r = v1.patch_namespaced_config_map("ctl-smp", NS, {"metadata": {
    "ownerReferences": [{"$patch": "delete", "uid": "uid-1"}], "finalizers": None}})
check("6 $patch: delete removes a list item by its key", [x.uid for x in r.metadata.owner_references] == ["uid-2"],
      ["uid-2"], r.metadata.owner_references)

# --- 7. watch cache window, compaction, bookmarks ------------------------------------------------------
first = v1.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="ctl-w0")))
for i in range(1, 6):
    last = v1.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="ctl-w%d" % i)))
resp = v1.list_namespaced_config_map(NS, watch=True, resource_version=first.metadata.resource_version,
                                     timeout_seconds=2, _preload_content=False)
lines = [json.loads(x) for x in resp.read().decode().split("\n") if x]
check("7 a watch from before the watch cache's window is 410",
      len(lines) == 1 and lines[0]["type"] == "ERROR" and lines[0]["object"]["code"] == 410 and
      "too old resource version" in lines[0]["object"]["message"], "ERROR 410 too old resource version", lines)
recent = last.metadata.resource_version
v1.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="ctl-after")))
control("/kapi/compact")
resp = v1.list_namespaced_config_map(NS, watch=True, resource_version=recent, timeout_seconds=1,
                                     _preload_content=False)
lines = [json.loads(x) for x in resp.read().decode().split("\n") if x]
check("7 after compaction a watch from a recent revision still works (the watch cache)",
      [(x["type"], x["object"]["metadata"]["name"]) for x in lines] == [("ADDED", "ctl-after")],
      [("ADDED", "ctl-after")], lines)
e = api_error(v1.list_namespaced_config_map, NS, resource_version=recent, resource_version_match="Exact")
check("8 resourceVersionMatch=Exact with a compacted version is 410", e is not None and e.status == 410, 410,
      e and (e.status, e.body))
cur = v1.list_namespaced_config_map(NS).metadata.resource_version
resp = v1.list_namespaced_config_map(NS, watch=True, resource_version=cur, allow_watch_bookmarks=True,
                                     timeout_seconds=1, _preload_content=False)
lines = [x for x in resp.read().decode().split("\n") if x]
check("7 no bookmarks on a quiet server (no newer revision)", lines == [], [], lines)
out = []


def bookmark_watch():
    r2 = v1.list_namespaced_config_map(NS, watch=True, resource_version=cur, allow_watch_bookmarks=True,
                                       timeout_seconds=2, _preload_content=False)
    out.extend(json.loads(x) for x in r2.read().decode().split("\n") if x)


t = threading.Thread(target=bookmark_watch)
t.start()
time.sleep(0.3)
other = coord.create_namespaced_lease(NS, client.V1Lease(metadata=client.V1ObjectMeta(name="ctl-elsewhere")))
t.join(5)
check("7 a bookmark comes once a newer revision exists, carrying it",
      len(out) == 1 and out[0]["type"] == "BOOKMARK" and
      out[0]["object"]["metadata"]["resourceVersion"] == other.metadata.resource_version,
      "one BOOKMARK at %s" % other.metadata.resource_version, out)

# --- 8. list semantics -------------------------------------------------------------------------------
every = v1.list_namespaced_config_map(NS)
zero = v1.list_namespaced_config_map(NS, resource_version="0", limit=1)
check("8 resourceVersion=0 ignores limit: everything, no continue token",
      len(zero.items) == len(every.items) and not zero.metadata._continue, len(every.items),
      (len(zero.items), zero.metadata._continue))
page = v1.list_namespaced_config_map(NS, limit=2)
check("8 remainingItemCount is set on paged lists", page.metadata.remaining_item_count == len(every.items) - 2,
      len(every.items) - 2, page.metadata.remaining_item_count)
check("10 the continue token is unpadded URL-safe base64",
      page.metadata._continue and "=" not in page.metadata._continue and "+" not in page.metadata._continue and
      "/" not in page.metadata._continue, "no = + /", page.metadata._continue)
t0 = time.time()
e = api_error(v1.list_namespaced_config_map, NS, resource_version=str(int(cur) + 1000))
check("8 a resourceVersion newer than the server's is 504 ResourceVersionTooLarge after a wait",
      e is not None and e.status == 504 and body(e).get("reason") == "Timeout" and
      body(e)["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge" and time.time() - t0 >= 2.5,
      "504 Timeout / ResourceVersionTooLarge after ~3 s", e and (e.status, e.body, time.time() - t0))

# --- 10. smaller items -------------------------------------------------------------------------------
cm = v1.read_namespaced_config_map("ctl-dry2", NS)
e = api_error(v1.delete_namespaced_config_map, "ctl-dry2", NS,
              body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="not-it")))
b = body(e) if e is not None else {}
check("10 precondition failure wording and details.kind the Kind",
      e is not None and e.status == 409 and b.get("message") ==
      'Operation cannot be fulfilled on ConfigMap "ctl-dry2": the UID in the precondition (not-it) does not match '
      'the UID in record (%s). The object might have been deleted and then recreated' % cm.metadata.uid and
      b["details"]["kind"] == "ConfigMap", "409 the UID in the precondition ...", e and e.body)
e = api_error(co.replace_namespaced_custom_object, G, V, NS, P, "nope", {
    "apiVersion": "ctl.example.com/v1", "kind": "Job", "metadata": {"name": "nope"}, "spec": {}})
check("10 custom resource PUT to a missing object is 404", e is not None and e.status == 404, 404, e and e.status)
e = api_error(co.create_namespaced_custom_object, G, V, NS, P, {
    "apiVersion": "ctl.example.com/v1", "kind": "Other", "metadata": {"name": "k"}, "spec": {}})
check("10 a custom resource with the wrong kind is 422",
      e is not None and e.status == 422 and 'kind: Invalid value: "Other": must be Job' in body(e).get("message", ""),
      422, e and e.body)

print("ok - ctl: controller checks ran to the end")
sys.exit(1 if failed else 0)
