#!/usr/bin/python3
"""Decode kapi-server's Kubernetes protobuf answers with Google's protobuf
library (Debian python3-protobuf: a decoder nobody here wrote) and check
them against the server's JSON answers for the same objects; and encode
ConfigMap create and update bodies with it, and check that the server
stores what it stores of the same objects sent as JSON.

usage: k8s_protobuf_check.py SERVER_URL   (plain HTTP, namespace "default")
Prints one line per check: "ok - <what>" or "FAIL - <what>" followed by
"  expected: ..." / "  got: ...". Exit status 1 if any check failed.

The message types are built here from descriptors (no protoc): the field
numbers and types of kubernetes/api core/v1/generated.proto and
kubernetes/apimachinery pkg/apis/meta/v1 and pkg/runtime generated.proto,
map fields as nested *Entry messages with the map_entry option, as protoc
makes them. A field the server wrote under a wrong number shows up as an
unknown field or a missing value, and fails a check.
"""
import base64
import calendar
import json
import os
import sys
import time
import urllib.error
import urllib.request

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

URL = sys.argv[1].rstrip("/")
NS = "default"
PB = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
failed = 0

F = descriptor_pb2.FieldDescriptorProto
OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
STR, BYTES, I64, I32, BOOL, MSG = (F.TYPE_STRING, F.TYPE_BYTES, F.TYPE_INT64, F.TYPE_INT32,
                                  F.TYPE_BOOL, F.TYPE_MESSAGE)
PKG = "kapi.check"


def message(fd, name, fields, entries=()):
    """Add message `name` with fields (name, number, type[, label, type_name])
    and nested map entries (entry name, value type) to file descriptor fd."""
    m = fd.message_type.add(name=name)
    for e, vt in entries:
        n = m.nested_type.add(name=e)
        n.options.map_entry = True
        n.field.add(name="key", number=1, type=STR, label=OPT)
        n.field.add(name="value", number=2, type=vt, label=OPT)
    for f in fields:
        name_, num, typ = f[:3]
        label = f[3] if len(f) > 3 else OPT
        fld = m.field.add(name=name_, number=num, type=typ, label=label)
        if len(f) > 4:
            fld.type_name = "." + PKG + "." + f[4]
    return m


def build():
    fd = descriptor_pb2.FileDescriptorProto(name="kapi_check.proto", package=PKG, syntax="proto2")
    # runtime
    message(fd, "TypeMeta", [("apiVersion", 1, STR), ("kind", 2, STR)])
    message(fd, "Unknown", [("typeMeta", 1, MSG, OPT, "TypeMeta"), ("raw", 2, BYTES),
                            ("contentEncoding", 3, STR), ("contentType", 4, STR)])
    # meta/v1
    message(fd, "Time", [("seconds", 1, I64), ("nanos", 2, I32)])
    message(fd, "FieldsV1", [("Raw", 1, BYTES)])
    message(fd, "ManagedFieldsEntry", [
        ("manager", 1, STR), ("operation", 2, STR), ("apiVersion", 3, STR),
        ("time", 4, MSG, OPT, "Time"), ("fieldsType", 6, STR),
        ("fieldsV1", 7, MSG, OPT, "FieldsV1"), ("subresource", 8, STR)])
    message(fd, "OwnerReference", [
        ("kind", 1, STR), ("name", 3, STR), ("uid", 4, STR), ("apiVersion", 5, STR),
        ("controller", 6, BOOL), ("blockOwnerDeletion", 7, BOOL)])
    message(fd, "ObjectMeta", [
        ("name", 1, STR), ("generateName", 2, STR), ("namespace", 3, STR), ("selfLink", 4, STR),
        ("uid", 5, STR), ("resourceVersion", 6, STR), ("generation", 7, I64),
        ("creationTimestamp", 8, MSG, OPT, "Time"), ("deletionTimestamp", 9, MSG, OPT, "Time"),
        ("deletionGracePeriodSeconds", 10, I64),
        ("labels", 11, MSG, REP, "ObjectMeta.LabelsEntry"),
        ("annotations", 12, MSG, REP, "ObjectMeta.AnnotationsEntry"),
        ("ownerReferences", 13, MSG, REP, "OwnerReference"), ("finalizers", 14, STR, REP),
        ("managedFields", 17, MSG, REP, "ManagedFieldsEntry")],
        [("LabelsEntry", STR), ("AnnotationsEntry", STR)])
    message(fd, "ListMeta", [("selfLink", 1, STR), ("resourceVersion", 2, STR),
                             ("continue", 3, STR), ("remainingItemCount", 4, I64)])
    message(fd, "StatusCause", [("reason", 1, STR), ("message", 2, STR), ("field", 3, STR)])
    message(fd, "StatusDetails", [
        ("name", 1, STR), ("group", 2, STR), ("kind", 3, STR),
        ("causes", 4, MSG, REP, "StatusCause"), ("retryAfterSeconds", 5, I32), ("uid", 6, STR)])
    message(fd, "Status", [
        ("metadata", 1, MSG, OPT, "ListMeta"), ("status", 2, STR), ("message", 3, STR),
        ("reason", 4, STR), ("details", 5, MSG, OPT, "StatusDetails"), ("code", 6, I32)])
    # core/v1
    message(fd, "ConfigMap", [
        ("metadata", 1, MSG, OPT, "ObjectMeta"),
        ("data", 2, MSG, REP, "ConfigMap.DataEntry"),
        ("binaryData", 3, MSG, REP, "ConfigMap.BinaryDataEntry"), ("immutable", 4, BOOL)],
        [("DataEntry", STR), ("BinaryDataEntry", BYTES)])
    message(fd, "ConfigMapList", [("metadata", 1, MSG, OPT, "ListMeta"),
                                  ("items", 2, MSG, REP, "ConfigMap")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    if hasattr(message_factory, "GetMessageClass"):  # python3-protobuf >= 4.22
        make = message_factory.GetMessageClass
    else:
        make = message_factory.MessageFactory(pool).GetPrototype
    return {m.name: make(pool.FindMessageTypeByName(PKG + "." + m.name)) for m in fd.message_type}


T = build()


def check(what, cond, expected="", got=""):
    global failed
    if cond:
        print("ok - pb: %s" % what)
    else:
        failed += 1
        print("FAIL - pb: %s" % what)
        print("  expected: %s" % (str(expected)[:600],))
        print("  got: %s" % (str(got)[:600],))
    sys.stdout.flush()


def call(method, path, body=None, accept=None, ctype="application/json", raw=None):
    data = raw if raw is not None else json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", ctype)
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def unknown_fields(m, path="", out=None):
    """Every unknown field anywhere in message m (a wrong field number)."""
    out = [] if out is None else out
    if len(m.UnknownFields()):
        out.append(path or m.DESCRIPTOR.name)
    for fd, v in m.ListFields():
        if fd.type != fd.TYPE_MESSAGE or fd.message_type.GetOptions().map_entry:
            continue  # a map's entries are compared by value instead
        for i, x in enumerate(v if fd.label == fd.LABEL_REPEATED else [v]):
            unknown_fields(x, "%s.%s[%d]" % (path, fd.name, i), out)
    return out


def unwrap(body, kind):
    """The object inside "k8s\\0" + runtime.Unknown, decoded as T[kind]."""
    check("%s body starts with the magic k8s\\0" % kind, body[:4] == MAGIC, MAGIC, body[:8])
    u = T["Unknown"]()
    u.ParseFromString(body[4:])
    check("%s Unknown: typeMeta v1/%s, no contentEncoding or contentType" % (kind, kind),
          (u.typeMeta.apiVersion, u.typeMeta.kind, u.contentEncoding, u.contentType)
          == ("v1", kind, "", ""), ("v1", kind, "", ""),
          (u.typeMeta.apiVersion, u.typeMeta.kind, u.contentEncoding, u.contentType))
    o = T[kind]()
    o.ParseFromString(u.raw)
    unk = unknown_fields(u) + unknown_fields(o)
    check("%s: no field the descriptors do not know" % kind, not unk, "[]", unk)
    return o


def secs(ts):
    return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))


def time_eq(t, ts):
    return t.seconds == secs(ts) and t.nanos == 0


def strmap(entries):
    return dict(entries)  # map fields: the library made them dicts


def compare_meta(what, pm, jm):
    """ObjectMeta field for field against the JSON metadata; absent JSON
    fields are Go's zero values."""
    diffs = []

    def eq(name, got, want):
        if got != want:
            diffs.append("%s: %r != %r" % (name, got, want))

    for f in ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion"):
        eq(f, getattr(pm, f), jm.get(f, ""))
    eq("generation", pm.generation, jm.get("generation", 0))
    eq("creationTimestamp", time_eq(pm.creationTimestamp, jm["creationTimestamp"]), True)
    eq("has deletionTimestamp", pm.HasField("deletionTimestamp"), "deletionTimestamp" in jm)
    if "deletionTimestamp" in jm:
        eq("deletionTimestamp", time_eq(pm.deletionTimestamp, jm["deletionTimestamp"]), True)
    eq("has deletionGracePeriodSeconds", pm.HasField("deletionGracePeriodSeconds"),
       "deletionGracePeriodSeconds" in jm)
    eq("deletionGracePeriodSeconds", pm.deletionGracePeriodSeconds,
       jm.get("deletionGracePeriodSeconds", 0))
    eq("labels", strmap(pm.labels), jm.get("labels", {}))
    eq("annotations", strmap(pm.annotations), jm.get("annotations", {}))
    eq("finalizers", list(pm.finalizers), jm.get("finalizers", []))
    refs = jm.get("ownerReferences", [])
    eq("ownerReferences count", len(pm.ownerReferences), len(refs))
    for p, j in zip(pm.ownerReferences, refs):
        for f in ("apiVersion", "kind", "name", "uid"):
            eq("ownerReferences." + f, getattr(p, f), j.get(f, ""))
        for f in ("controller", "blockOwnerDeletion"):
            eq("ownerReferences has " + f, p.HasField(f), f in j)
            eq("ownerReferences." + f, getattr(p, f), j.get(f, False))
    mfs = jm.get("managedFields", [])
    eq("managedFields count", len(pm.managedFields), len(mfs))
    for p, j in zip(pm.managedFields, mfs):
        for f in ("manager", "operation", "apiVersion", "fieldsType", "subresource"):
            eq("managedFields." + f, getattr(p, f), j.get(f, ""))
        eq("managedFields.time", time_eq(p.time, j["time"]) if "time" in j else
           not p.HasField("time"), True)
        eq("managedFields.fieldsV1", json.loads(p.fieldsV1.Raw) if p.HasField("fieldsV1")
           else None, j.get("fieldsV1"))
    check("%s: ObjectMeta equals the JSON metadata field for field" % what, not diffs,
          "no difference", diffs)


def get_both(path):
    st, ct, jb = call("GET", path, accept="application/json")
    j = json.loads(jb)
    st2, ct2, pb = call("GET", path, accept=PB + ", application/json")
    check("GET %s as JSON and as protobuf: 200 both" % path, (st, st2) == (200, 200),
          (200, 200), (st, st2))
    check("protobuf answer's Content-Type is exactly %s" % PB, ct2 == PB, PB, ct2)
    return j, pb


def compare_cm(what, j, pb):
    cm = unwrap(pb, "ConfigMap")
    compare_meta(what, cm.metadata, j["metadata"])
    check("%s: data equals the JSON data" % what, strmap(cm.data) == j.get("data", {}),
          j.get("data"), strmap(cm.data))
    jb = {k: base64.b64decode(v) for k, v in j.get("binaryData", {}).items()}
    got = strmap(cm.binaryData)
    check("%s: binaryData bytes equal the base64-decoded JSON text" % what, got == jb,
          {k: len(v) for k, v in jb.items()}, {k: len(v) for k, v in got.items()})
    check("%s: immutable as in JSON (set or not)" % what,
          (cm.HasField("immutable"), cm.immutable) == ("immutable" in j, j.get("immutable", False)),
          j.get("immutable"), cm.immutable if cm.HasField("immutable") else None)
    return cm


def stats():
    return json.loads(call("GET", "/kapi/stats")[2])


cms = "/api/v1/namespaces/%s/configmaps" % NS
st, _, ob = call("POST", cms, {"metadata": {"name": "pb-owner"}})
owner = json.loads(ob)
check("create the owner", st == 201, 201, st)
big = os.urandom(1040000)  # ~1.39 MB of base64: the 1 MiB ConfigMap limit leaves no room for more
body = {
    "metadata": {
        "generateName": "pb-",
        "labels": {"app": "pb", "tier": "gold"},
        "annotations": {"note": "caf\u00e9 \u2713", "z/empty": ""},
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "pb-owner",
                             "uid": owner["metadata"]["uid"], "controller": True,
                             "blockOwnerDeletion": True}],
        "finalizers": ["example.com/hold", "example.com/second"],
    },
    "data": {"k": "v", "empty": "", "text": "line1\nline2 \"quoted\" \u00fc"},
    "binaryData": {"big": base64.b64encode(big).decode(), "none": "",
                   "small": base64.b64encode(b"\x00\x01\xff").decode()},
}
st, _, made = call("POST", cms, body)
check("create a ConfigMap with data, binaryData (~1 MB and empty), labels, annotations, "
      "an ownerReference, finalizers", st == 201, 201, made[:300])
name = json.loads(made)["metadata"]["name"]
path = cms + "/" + name
before = stats()
j, pb = get_both(path)
cm = compare_cm("created", j, pb)
check("the ~1 MB binaryData value came back byte for byte", strmap(cm.binaryData).get("big") == big,
      len(big), len(strmap(cm.binaryData).get("big", b"")))
check("the protobuf body is smaller than the JSON one (no base64)", len(pb) < len(json.dumps(j)) * 0.8,
      "< 0.8 x %d" % len(json.dumps(j)), len(pb))
after = stats()
check("/kapi/stats protobuf_responses counted the protobuf GET",
      after.get("protobuf_responses", 0) - before.get("protobuf_responses", 0) == 1, 1,
      (before.get("protobuf_responses"), after.get("protobuf_responses")))

# an update (merge patch): immutable set, a label changed, a new managedFields entry
st, _, _ = call("PATCH", path + "?fieldManager=pb-patcher",
                {"metadata": {"labels": {"tier": "silver"}}, "immutable": True},
                ctype="application/merge-patch+json")
check("merge patch: immutable and a label", st == 200, 200, st)
j, pb = get_both(path)
compare_cm("patched", j, pb)

# marked for deletion: deletionTimestamp and deletionGracePeriodSeconds
st, _, _ = call("DELETE", path)
check("delete with finalizers keeps it, marked", st == 200, 200, st)
j, pb = get_both(path)
check("the marked ConfigMap has deletionTimestamp in JSON", "deletionTimestamp" in j["metadata"],
      "deletionTimestamp", j["metadata"])
compare_cm("marked for deletion", j, pb)

# a missing ConfigMap: the Status in protobuf, the same as the JSON one
missing = cms + "/pb-nothing-here"
st, ct, jb = call("GET", missing, accept="application/json")
js = json.loads(jb)
st2, ct2, sb = call("GET", missing, accept=PB + ", application/json")
check("GET of a missing ConfigMap preferring protobuf: 404 in protobuf", (st2, ct2) == (404, PB),
      (404, PB), (st2, ct2))
s = unwrap(sb, "Status")
got = (s.status, s.message, s.reason, s.code, s.details.name, s.details.group, s.details.kind,
       len(s.details.causes), s.details.retryAfterSeconds, s.details.uid, s.HasField("metadata"),
       s.metadata.resourceVersion, s.metadata.HasField("remainingItemCount"))
d = js.get("details", {})
want = (js["status"], js["message"], js["reason"], js["code"], d.get("name", ""), d.get("group", ""),
        d.get("kind", ""), len(d.get("causes", [])), d.get("retryAfterSeconds", 0),
        d.get("uid", ""), True, "", False)
check("the protobuf Status equals the JSON Status (NotFound, 404, details)", got == want, want, got)
check("... and it is NotFound for configmaps", (s.reason, s.code, s.details.kind)
      == ("NotFound", 404, "configmaps"), ("NotFound", 404, "configmaps"),
      (s.reason, s.code, s.details.kind))

# ConfigMap lists: a ConfigMapList of the same items, pages and all
for q in ("", "?limit=1", "?labelSelector=app%3Dpb"):
    st, ct, jb = call("GET", cms + q, accept="application/json")
    jl = json.loads(jb)
    st2, ct2, lb = call("GET", cms + q, accept=PB)
    check("list%s with protobuf only: 200 ConfigMapList in protobuf" % q, (st, st2, ct2) ==
          (200, 200, PB), (200, 200, PB), (st, st2, ct2))
    pl = unwrap(lb, "ConfigMapList")
    jm = jl["metadata"]
    got = (pl.metadata.resourceVersion, getattr(pl.metadata, "continue"),
           pl.metadata.HasField("remainingItemCount"),
           pl.metadata.remainingItemCount, pl.metadata.selfLink)
    want = (jm["resourceVersion"], jm.get("continue", ""), "remainingItemCount" in jm,
            jm.get("remainingItemCount", 0), "")
    check("list%s: ListMeta equals the JSON list metadata" % q, got == want, want, got)
    check("list%s: the same items in the same order" % q,
          [i.metadata.name for i in pl.items] == [i["metadata"]["name"] for i in jl["items"]],
          [i["metadata"]["name"] for i in jl["items"]], [i.metadata.name for i in pl.items])
    for pi, ji in zip(pl.items, jl["items"]):
        compare_meta("list%s item %s" % (q, ji["metadata"]["name"]), pi.metadata, ji["metadata"])
        jb = {k: base64.b64decode(v) for k, v in ji.get("binaryData", {}).items()}
        check("list%s item %s: data and binaryData" % (q, ji["metadata"]["name"]),
              (strmap(pi.data), strmap(pi.binaryData)) == (ji.get("data", {}), jb),
              "equal", "different")

# what the server cannot encode as protobuf
st, ct, _ = call("GET", cms + "?watch=true&timeoutSeconds=1", accept=PB)
check("a ConfigMap watch with protobuf only is 406 (JSON Status)",
      (st, ct) == (406, "application/json"), (406, "application/json"), (st, ct))
leases = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % NS
call("POST", leases, {"metadata": {"name": "pb-lease"}, "spec": {"holderIdentity": "me"}})
st, ct, _ = call("GET", leases + "/pb-lease", accept=PB)
check("a Lease with protobuf only is 406", st == 406, 406, st)
st, ct, _ = call("GET", leases, accept=PB)
check("a Lease list with protobuf only is 406", st == 406, 406, st)
st, ct, lb = call("GET", leases + "/pb-lease", accept=PB + ", application/json")
check("a Lease with protobuf, then JSON is JSON", (st, ct) == (200, "application/json")
      and json.loads(lb)["kind"] == "Lease", (200, "application/json"), (st, ct))
st, ct, _ = call("GET", path, accept="application/json, " + PB)
check("JSON first, then protobuf: the client's order wins (JSON)", (st, ct) == (200, "application/json"),
      (200, "application/json"), (st, ct))

# ---- protobuf request bodies, encoded by Google's library ----------------


def pb_body(cm):
    """"k8s\0" + runtime.Unknown{typeMeta{v1, ConfigMap}, raw, "", ""}."""
    u = T["Unknown"]()
    u.typeMeta.apiVersion = "v1"
    u.typeMeta.kind = "ConfigMap"
    u.raw = cm.SerializeToString()
    u.contentEncoding = ""
    u.contentType = ""
    return MAGIC + u.SerializeToString()


def pb_cm(name, labels, data, binary, rv=None):
    cm = T["ConfigMap"]()
    cm.metadata.name = name
    if rv:
        cm.metadata.resourceVersion = rv
    for k, v in labels.items():
        cm.metadata.labels[k] = v
    for k, v in data.items():
        cm.data[k] = v
    for k, v in binary.items():
        cm.binaryData[k] = v
    return cm


def comparable(j):
    """The stored object without what two creates of it differ in."""
    j = json.loads(json.dumps(j))
    m = j["metadata"]
    for f in ("name", "uid", "creationTimestamp", "resourceVersion"):
        m.pop(f, None)
    for e in m.get("managedFields", []):
        e.pop("time", None)
    return json.dumps(j)  # in the server's order: a different order fails


def json_cm(name, labels, data, binary, rv=None):
    m = {"name": name, "labels": labels}
    if rv:
        m["resourceVersion"] = rv
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": m, "data": data,
            "binaryData": {k: base64.b64encode(v).decode() for k, v in binary.items()}}


blob = os.urandom(1000000)
labels = {"app": "pbw", "tier": "gold"}
data = {"k": "v", "text": "line1\nline2 \"quoted\" \u00fc", "empty": ""}
binary = {"big": blob, "small": b"\x00\x01\xff", "none": b""}
st, ct, made = call("POST", cms, raw=pb_body(pb_cm("pbw-pb", labels, data, binary)),
                    ctype=PB, accept="application/json")
check("create from a protobuf body encoded by python3-protobuf: 201 JSON", (st, ct) ==
      (201, "application/json"), (201, "application/json"), (st, ct, made[:300]))
st, _, jmade = call("POST", cms, json_cm("pbw-json", labels, data, binary))
check("create of the same object as JSON: 201", st == 201, 201, (st, jmade[:300]))
jp, pbp = get_both(cms + "/pbw-pb")
jj, _ = get_both(cms + "/pbw-json")
check("protobuf create stores what the JSON create stores (GET as JSON)",
      comparable(jp) == comparable(jj), comparable(jj)[:600], comparable(jp)[:600])
cm = compare_cm("protobuf-created", jp, pbp)
check("protobuf-created: binaryData bytes as sent", strmap(cm.binaryData) == binary,
      {k: len(v) for k, v in binary.items()}, {k: len(v) for k, v in strmap(cm.binaryData).items()})

# an update with the resourceVersion read, then the same again (stale)
rv = jp["metadata"]["resourceVersion"]
data2 = dict(data, k="v2")
body2 = pb_body(pb_cm("pbw-pb", labels, data2, binary, rv))
st, ct, up = call("PUT", cms + "/pbw-pb", raw=body2, ctype=PB, accept=PB + ", application/json")
check("update from a protobuf body: 200 in protobuf", (st, ct) == (200, PB), (200, PB), (st, ct))
if st == 200:
    ucm = unwrap(up, "ConfigMap")
    check("the update's answer holds the new data and a new resourceVersion",
          (strmap(ucm.data).get("k"), ucm.metadata.resourceVersion != rv) == ("v2", True),
          ("v2", True), (strmap(ucm.data).get("k"), ucm.metadata.resourceVersion))
st, _, _ = call("PUT", cms + "/pbw-json", json_cm("pbw-json", labels, data2, binary,
                                                 jj["metadata"]["resourceVersion"]))
check("the same update as JSON: 200", st == 200, 200, st)
jp, pbp = get_both(cms + "/pbw-pb")
jj, _ = get_both(cms + "/pbw-json")
check("protobuf update stores what the JSON update stores (GET as JSON)",
      comparable(jp) == comparable(jj), comparable(jj)[:600], comparable(jp)[:600])
compare_cm("protobuf-updated", jp, pbp)
st, ct, sb = call("PUT", cms + "/pbw-pb", raw=body2, ctype=PB, accept=PB + ", application/json")
check("the same protobuf update again (stale resourceVersion): 409 in protobuf", (st, ct) ==
      (409, PB), (409, PB), (st, ct))
if ct == PB:
    s = unwrap(sb, "Status")
    check("... a Conflict Status", (s.code, s.reason) == (409, "Conflict"), (409, "Conflict"),
          (s.code, s.reason))
st, ct, _ = call("POST", leases, raw=pb_body(pb_cm("pbw-lease", {}, {}, {})), ctype=PB)
check("a protobuf body to a Lease is 415", st == 415, 415, st)

print("ok - pb: protobuf checks ran to the end")  # fidelity.sh's sign that none was skipped
sys.exit(1 if failed else 0)
