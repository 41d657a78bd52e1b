#!/usr/bin/python3
"""Generate a deterministic, Argo-Workflows-like workflow object as JSON.

Used by scripts/demo.sh. The object looks like `kubectl get workflow -o json`
of a big fan-out workflow: metadata, spec, and a status.nodes map with one
record per task (id, names, template, phase, timestamps, resources, inputs,
outputs, children). The same seed always gives the same bytes.

    gen-workflow.py --size 50000000 OUT.json [--edited OUT2.json --edit-percent 1]

--edited also writes a second file identical to the first except that a
contiguous run of nodes in the middle (--edit-percent of them) changed phase
from Succeeded to Failed, with a message and a new finishedAt: the kind of
small, local change a controller makes between two saves of its state.

Python standard library only.
"""
import argparse
import json
import random
import sys

TEMPLATES = ["fetch-shard", "transform", "validate", "aggregate", "publish-report",
             "train-model", "score-batch", "export-parquet"]
ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]


def node_record(rng, wf, i, parent):
    tmpl = TEMPLATES[rng.randrange(len(TEMPLATES))]
    nid = "%s-%010d" % (wf, rng.randrange(10 ** 10))
    start = 1714557600 + i * 3 + rng.randrange(30)
    dur = 20 + rng.randrange(900)
    shard = i % 4096

    def ts(t):
        # RFC 3339 in UTC without importing datetime for speed
        d, s = divmod(t - 1714521600, 86400)
        h, s = divmod(s, 3600)
        m, s = divmod(s, 60)
        return "2024-05-%02dT%02d:%02d:%02dZ" % (1 + d, h, m, s)

    return nid, {
        "id": nid,
        "name": "%s[%d].%s(%d:shard-%04d)" % (wf, i // 500, tmpl, i, shard),
        "displayName": "%s(%d:shard-%04d)" % (tmpl, i, shard),
        "type": "Pod",
        "templateName": tmpl,
        "templateScope": "local/" + wf,
        "phase": "Succeeded",
        "boundaryID": parent,
        "startedAt": ts(start),
        "finishedAt": ts(start + dur),
        "progress": "1/1",
        "resourcesDuration": {"cpu": 1 + dur // 7, "memory": 3 + dur // 2},
        "inputs": {"parameters": [
            {"name": "shard", "value": "%04d" % shard},
            {"name": "input-uri", "value": "s3://datalake/raw/2024-05-01/part-%05d.parquet" % i},
        ]},
        "outputs": {
            "parameters": [{"name": "rows", "value": str(rng.randrange(10 ** 7))}],
            "artifacts": [{"name": "main-logs",
                           "s3": {"key": "%s/%s/main.log" % (wf, nid)}}],
            "exitCode": "0",
        },
        "children": ["%s-%010d" % (wf, rng.randrange(10 ** 10))],
        "hostNodeName": "ip-10-%d-%d-%d.%s.compute.internal" % (
            rng.randrange(4), rng.randrange(256), rng.randrange(256),
            ZONES[rng.randrange(3)]),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=50 * 1000 * 1000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--edited")
    ap.add_argument("--edit-percent", type=float, default=1.0)
    a = ap.parse_args()

    rng = random.Random(a.seed)
    wf = "etl-nightly-7kq2x"
    head = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": wf, "namespace": "argo", "uid": "5f0c1f4e-8d1b-4a1c-9c55-1d3a9b7e2c10",
            "labels": {"workflows.argoproj.io/phase": "Running"},
        },
        "spec": {"entrypoint": "main", "parallelism": 200, "serviceAccountName": "argo-workflow"},
    }
    # Nodes are rendered one by one: the value is ~size bytes and the two
    # files differ only where the edit is.
    nodes = []
    total = 0
    i = 0
    while total < a.size:
        nid, rec = node_record(rng, wf, i, wf)
        text = json.dumps(rec, indent=4).replace("\n", "\n            ")
        nodes.append((nid, rec, text))
        total += len(nid) + len(text) + 18
        i += 1

    def write(path, edit):
        lo = hi = 0
        if edit:
            n = max(1, int(len(nodes) * a.edit_percent / 100))
            lo = len(nodes) // 2 - n // 2
            hi = lo + n
        with open(path, "w") as f:
            body = json.dumps(head, indent=4)[:-2]
            f.write(body + ',\n    "status": {\n        "phase": "Running",\n        "nodes": {\n')
            for k, (nid, rec, text) in enumerate(nodes):
                if lo <= k < hi:
                    rec = dict(rec, phase="Failed", finishedAt=rec["startedAt"],
                               message="OOMKilled (exit code 137)")
                    text = json.dumps(rec, indent=4).replace("\n", "\n            ")
                sep = ",\n" if k + 1 < len(nodes) else "\n"
                f.write('            "%s": %s%s' % (nid, text, sep))
            f.write("        }\n    }\n}\n")
        return hi - lo

    write(a.out, False)
    if a.edited:
        n = write(a.edited, True)
        print("%d nodes; %d contiguous nodes in the middle changed phase" % (len(nodes), n),
              file=sys.stderr)


if __name__ == "__main__":
    main()
