#!/usr/bin/python3
"""Drive kapi-server with Debian's python3-kubernetes client (code nobody here
wrote) and check it answers as kube-apiserver does.

usage: k8s_client_check.py KUBECONFIG CONTROL_URL [CA_FILE]
Prints one line per check: "ok - <what>" or "FAIL - <what>" followed by
"  expected: ..." / "  got: ...". Exit status 1 if any check failed.
"""
import json
import ssl
import sys
import threading
import time
import urllib.request

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

KUBECONFIG, CONTROL = sys.argv[1], sys.argv[2]
CTX = ssl.create_default_context(cafile=sys.argv[3]) if len(sys.argv) > 3 else None
failed = 0


def check(what, cond, expected="", got=""):
    global failed
    if cond:
        print("ok - py: %s" % what)
    else:
        failed += 1
        print("FAIL - py: %s" % what)
        print("  expected: %s" % (expected,))
        print("  got: %s" % (got,))
    sys.stdout.flush()


def control(path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(CONTROL + path, data=data, method="POST")
    with urllib.request.urlopen(req, timeout=5, context=CTX) as r:
        return json.loads(r.read())


def api_error(fn, *a, **kw):
    try:
        fn(*a, **kw)
    except ApiException as e:
        return e
    return None


config.load_kube_config(config_file=KUBECONFIG)
v1 = client.CoreV1Api()
coord = client.CoordinationV1Api()
NS = "default"

# --- create / read / replace -------------------------------------------------
cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-a", labels={"app": "py", "n": "0"}),
                        data={"k": "v"}, binary_data={"b": "AAEC"})
made = v1.create_namespaced_config_map(NS, cm)
check("create returns uid, resourceVersion, creationTimestamp",
      made.metadata.uid and made.metadata.resource_version and made.metadata.creation_timestamp,
      "uid/resourceVersion/creationTimestamp set", made.metadata)
got = v1.read_namespaced_config_map("py-a", NS)
check("read returns the stored data and binaryData",
      got.data == {"k": "v"} and got.binary_data == {"b": "AAEC"}, "{'k':'v'} {'b':'AAEC'}",
      "%s %s" % (got.data, got.binary_data))
e = api_error(v1.create_namespaced_config_map, NS, cm)
check("create existing is 409 AlreadyExists",
      e is not None and e.status == 409 and json.loads(e.body)["reason"] == "AlreadyExists",
      "409 AlreadyExists", e and (e.status, e.body))

got.data["k"] = "v2"
upd = v1.replace_namespaced_config_map("py-a", NS, got)
check("replace bumps resourceVersion",
      int(upd.metadata.resource_version) > int(got.metadata.resource_version),
      "> %s" % got.metadata.resource_version, upd.metadata.resource_version)
same = v1.replace_namespaced_config_map("py-a", NS, upd)
check("no-op replace keeps resourceVersion",
      same.metadata.resource_version == upd.metadata.resource_version,
      upd.metadata.resource_version, same.metadata.resource_version)
mf = made.metadata.managed_fields or []
check("create returns managedFields as the client models them (manager, Update, time, FieldsV1)",
      len(mf) == 1 and mf[0].manager and mf[0].operation == "Update" and
      mf[0].fields_type == "FieldsV1" and mf[0].api_version == "v1" and
      mf[0].time is not None and mf[0].time.tzinfo is not None,
      "one Update entry with a time", mf)
umf = upd.metadata.managed_fields or []
check("replace keeps one entry per manager, its time not before the create's",
      len(umf) == 1 and umf[0].manager == mf[0].manager and umf[0].time >= mf[0].time,
      "one entry, time >= %s" % (mf and mf[0].time), umf)
smf = same.metadata.managed_fields or []
check("no-op replace keeps managedFields time",
      len(smf) == 1 and smf[0].time == umf[0].time, umf and umf[0].time, smf)
got.data["k"] = "stale"
e = api_error(v1.replace_namespaced_config_map, "py-a", NS, got)
msg = json.loads(e.body)["message"] if e is not None else ""
check("replace with stale resourceVersion is 409 Conflict",
      e is not None and e.status == 409 and
      "the object has been modified; please apply your changes to the latest version and try again" in msg,
      "409 ... the object has been modified ...", e and (e.status, e.body))
e = api_error(v1.read_namespaced_config_map, "py-missing", NS)
check("read missing is 404 NotFound with the real message",
      e is not None and e.status == 404 and json.loads(e.body)["message"] == 'configmaps "py-missing" not found',
      '404 configmaps "py-missing" not found', e and (e.status, e.body))

# --- list with selectors and pagination ------------------------------------------
for i in range(1, 8):
    v1.create_namespaced_config_map(NS, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py-p%d" % i, labels={"app": "py", "n": str(i)}),
        data={"i": str(i)}))
lst = v1.list_namespaced_config_map(NS, label_selector="app=py,n in (1,2,3)")
names = sorted(x.metadata.name for x in lst.items)
check("list with equality + set-based label selector",
      names == ["py-p1", "py-p2", "py-p3"], ["py-p1", "py-p2", "py-p3"], names)
lst = v1.list_namespaced_config_map(NS, label_selector="app=py,n notin (0,1,2,3)")
names = sorted(x.metadata.name for x in lst.items)
check("list with notin selector", names == ["py-p4", "py-p5", "py-p6", "py-p7"],
      ["py-p4", "py-p5", "py-p6", "py-p7"], names)
lst = v1.list_namespaced_config_map(NS, field_selector="metadata.name=py-p5")
check("list with fieldSelector metadata.name",
      [x.metadata.name for x in lst.items] == ["py-p5"], ["py-p5"], [x.metadata.name for x in lst.items])

pages, seen, cont, first_rv = 0, [], None, None
while True:
    kw = {"label_selector": "app=py", "limit": 3}
    if cont:
        kw["_continue"] = cont
    page = v1.list_namespaced_config_map(NS, **kw)
    pages += 1
    first_rv = first_rv or page.metadata.resource_version
    if pages == 1:
        # a write between pages must not show up: pages come from one snapshot
        v1.create_namespaced_config_map(NS, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="py-p0", labels={"app": "py"})))
    seen += [x.metadata.name for x in page.items]
    check("page %d has at most limit items and the list resourceVersion" % pages,
          len(page.items) <= 3 and page.metadata.resource_version == first_rv,
          "<=3 items, rv %s" % first_rv, (len(page.items), page.metadata.resource_version))
    cont = page.metadata._continue
    if not cont or pages > 10:
        break
want = ["py-a"] + ["py-p%d" % i for i in range(1, 8)]
check("limit/continue pages cover the snapshot once, sorted", seen == want, want, seen)

# --- watch ADDED / MODIFIED / DELETED ----------------------------------------------
rv0 = v1.list_namespaced_config_map(NS).metadata.resource_version
events = []


def watcher():
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_config_map, NS, label_selector="watch=me",
                       resource_version=rv0, timeout_seconds=5):
        events.append((ev["type"], ev["object"].metadata.name))
        if ev["type"] == "DELETED":
            w.stop()


t = threading.Thread(target=watcher)
t.start()
time.sleep(0.5)
v1.create_namespaced_config_map(NS, client.V1ConfigMap(
    metadata=client.V1ObjectMeta(name="py-w", labels={"watch": "me"}), data={"a": "1"}))
v1.patch_namespaced_config_map("py-w", NS, {"data": {"a": "2"}})
v1.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-unrelated")))
v1.delete_namespaced_config_map("py-w", NS)
t.join(10)
check("watch sees ADDED, MODIFIED, DELETED (selector-filtered)",
      events == [("ADDED", "py-w"), ("MODIFIED", "py-w"), ("DELETED", "py-w")],
      [("ADDED", "py-w"), ("MODIFIED", "py-w"), ("DELETED", "py-w")], events)

# label change moves an object out of / into a selector's view
events = []
rv1 = v1.list_namespaced_config_map(NS).metadata.resource_version


def watcher2():
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_config_map, NS, label_selector="tier=gold",
                       resource_version=rv1, timeout_seconds=5):
        events.append((ev["type"], ev["object"].metadata.name))
        if len(events) == 2:
            w.stop()


t = threading.Thread(target=watcher2)
t.start()
time.sleep(0.5)
v1.patch_namespaced_config_map("py-p1", NS, {"metadata": {"labels": {"tier": "gold"}}})
v1.patch_namespaced_config_map("py-p1", NS, {"metadata": {"labels": {"tier": "silver"}}})
t.join(10)
check("label change into/out of a selector yields ADDED then DELETED",
      events == [("ADDED", "py-p1"), ("DELETED", "py-p1")],
      [("ADDED", "py-p1"), ("DELETED", "py-p1")], events)

# --- 410 Gone once etcd compacted and the watch cache rolled over ---------------------
old_rv = v1.list_namespaced_config_map(NS).metadata.resource_version
v1.patch_namespaced_config_map("py-p2", NS, {"data": {"x": "y"}})
control("/kapi/compact?watch-cache=1")
err = None
try:
    for ev in watch.Watch().stream(v1.list_namespaced_config_map, NS, resource_version=old_rv,
                                   timeout_seconds=3):
        pass
except ApiException as e:
    err = e
check("watch from a compacted resourceVersion raises ApiException 410 Expired",
      err is not None and err.status == 410 and "too old resource version" in str(err.reason),
      "410 Expired: too old resource version", err and (err.status, err.reason))

resp = v1.list_namespaced_config_map(NS, watch=True, resource_version=old_rv, timeout_seconds=3,
                                     _preload_content=False)
lines = [l for l in resp.read().decode().split("\n") if l]
ev = json.loads(lines[0]) if lines else {}
check("raw watch stream carries one ERROR event with a 410 Status",
      len(lines) == 1 and ev.get("type") == "ERROR" and ev["object"]["code"] == 410 and
      ev["object"]["reason"] == "Expired", "one ERROR 410 Expired event", lines)

# --- delete with preconditions --------------------------------------------------------
cur = v1.read_namespaced_config_map("py-p3", NS)
e = api_error(v1.delete_namespaced_config_map, "py-p3", NS,
              body=client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version="1")))
check("delete with a stale resourceVersion precondition is 409",
      e is not None and e.status == 409 and "the ResourceVersion in the precondition (1) does not match" in e.body,
      "409 the ResourceVersion in the precondition (1) does not match ...", e and (e.status, e.body))
e = api_error(v1.delete_namespaced_config_map, "py-p3", NS,
              body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="not-the-uid")))
check("delete with a wrong uid precondition is 409",
      e is not None and e.status == 409 and "the UID in the precondition (not-the-uid) does not match" in e.body,
      "409 the UID in the precondition (not-the-uid) ...", e and (e.status, e.body))
st = v1.delete_namespaced_config_map("py-p3", NS, body=client.V1DeleteOptions(
    preconditions=client.V1Preconditions(uid=cur.metadata.uid, resource_version=cur.metadata.resource_version)))
check("delete with matching preconditions returns Status Success",
      st.status == "Success" and st.details.uid == cur.metadata.uid, "Success with uid", st)

# --- leases -----------------------------------------------------------------------
lease = client.V1Lease(metadata=client.V1ObjectMeta(name="py-lease"),
                       spec=client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=10))
l1 = coord.create_namespaced_lease(NS, lease)
check("lease create", l1.spec.holder_identity == "a" and l1.metadata.resource_version, "holder a", l1.spec)
l1.spec.holder_identity = "b"
l2 = coord.replace_namespaced_lease("py-lease", NS, l1)
check("lease replace", l2.spec.holder_identity == "b" and
      int(l2.metadata.resource_version) > int(l1.metadata.resource_version), "holder b, newer rv", l2)
l1.spec.holder_identity = "c"
e = api_error(coord.replace_namespaced_lease, "py-lease", NS, l1)
check("lease replace with stale resourceVersion is 409 Conflict",
      e is not None and e.status == 409 and
      json.loads(e.body)["message"].startswith(
          'Operation cannot be fulfilled on leases.coordination.k8s.io "py-lease": the object has been modified'),
      "409 on leases.coordination.k8s.io", e and (e.status, e.body))

# --- one revision counter across kinds --------------------------------------------
a = v1.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-rv")))
b = coord.create_namespaced_lease(NS, client.V1Lease(metadata=client.V1ObjectMeta(name="py-rv")))
check("resourceVersion is one global counter across kinds",
      int(b.metadata.resource_version) == int(a.metadata.resource_version) + 1,
      int(a.metadata.resource_version) + 1, b.metadata.resource_version)

# --- one object as PartialObjectMetadata (kvsplit's metadata-only read) --------
v1.create_namespaced_config_map(NS, client.V1ConfigMap(
    metadata=client.V1ObjectMeta(name="py-pom", labels={"role": "segment"}),
    binary_data={"b": "AAEC"}, immutable=True))
r = v1.api_client.call_api(
    "/api/v1/namespaces/%s/configmaps/py-pom" % NS, "GET",
    header_params={"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,"
                             "application/json"},
    auth_settings=["BearerToken"], _preload_content=False)[0]
pom = json.loads(r.data)
check("GET of one object with Accept as=PartialObjectMetadata answers metadata only",
      pom.get("kind") == "PartialObjectMetadata" and pom.get("apiVersion") == "meta.k8s.io/v1" and
      pom.get("metadata", {}).get("labels") == {"role": "segment"} and
      pom["metadata"].get("resourceVersion") and pom["metadata"].get("uid") and
      "binaryData" not in pom and "immutable" not in pom and
      r.headers.get("Content-Type", "").startswith("application/json;as=PartialObjectMetadata"),
      "kind PartialObjectMetadata, meta.k8s.io/v1, metadata only", (r.headers.get("Content-Type"), pom))

sys.exit(1 if failed else 0)
