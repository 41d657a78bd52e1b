#!/bin/sh
# kvsplit demo (`make demo`): store a 50 MB workflow status in ConfigMaps,
# change 1% of it, and see how little goes over the wire the second time.
#
# Runs against build/kapi-server, the project's Kubernetes API test server,
# with a throwaway kubeconfig written by kubectl itself. Everything lives in
# a temporary directory that is removed, and the server stopped, on any exit.
# Any failing step stops the demo with a non-zero exit.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-build}
case $B in /*) bdir=$B ;; *) bdir=$top/$B ;; esac
KVSPLIT=$bdir/kvsplit
KAPI=$bdir/kapi-server
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
SIZE=${KVSPLIT_DEMO_BYTES:-50000000}

for f in "$KVSPLIT" "$KAPI"; do
	[ -x "$f" ] || { echo "demo: $f is missing; run make first" >&2; exit 1; }
done
command -v kubectl >/dev/null || { echo "demo: kubectl is not installed" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kvsplit-demo.XXXXXX")
srv=
cleanup() {
	st=$?
	if [ -n "$srv" ]; then
		kill "$srv" 2>/dev/null || true
		wait "$srv" 2>/dev/null || true
	fi
	rm -rf "$work"
	[ $st -eq 0 ] || echo "demo: FAILED (exit $st)" >&2
	exit $st
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if [ -t 1 ]; then bold=$(printf '\033[1m'); off=$(printf '\033[0m'); else bold=; off=; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
show() { printf '$ %s\n' "$*"; "$@"; }

# --- the API server ----------------------------------------------------------
step "Start a Kubernetes API server (build/kapi-server: in memory, TLS, bearer token)"
# A throwaway self-signed certificate: kvsplit and kubectl verify TLS against
# it as the cluster CA, exactly as with a real cluster.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
	-subj /CN=kapi-server -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$work/server.key" -out "$work/server.crt" >/dev/null 2>&1 ||
	{ echo "demo: openssl could not make a certificate" >&2; exit 1; }
token=demo-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
"$KAPI" --listen 127.0.0.1:0 --port-file "$work/port" --token "$token" \
	--tls-cert "$work/server.crt" --tls-key "$work/server.key" \
	--namespaces default >"$work/server.log" 2>&1 &
srv=$!
i=0
while [ ! -s "$work/port" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$srv" 2>/dev/null; then
		echo "demo: kapi-server did not start:" >&2
		cat "$work/server.log" >&2
		exit 1
	fi
	sleep 0.05
done
url=https://127.0.0.1:$(cat "$work/port")
echo "API server at $url"

step "Write a kubeconfig for it with kubectl (CA, token, namespace default)"
export KUBECONFIG="$work/kubeconfig"
kubectl config set-cluster demo --server="$url" \
	--certificate-authority="$work/server.crt" --embed-certs >/dev/null
kubectl config set-credentials demo --token="$token" >/dev/null
kubectl config set-context demo --cluster=demo --user=demo --namespace=default >/dev/null
kubectl config use-context demo >/dev/null
echo "KUBECONFIG=$KUBECONFIG (context demo)"
unset KVSPLIT_STORE
# From here on: plain `kvsplit` from the build, file names relative to $work.
PATH=$bdir:$PATH
export PATH
cd "$work"

# Request-body bytes the server received so far: what actually went over
# the wire (JSON + base64), measured by the server, not by the client.
wire() {
	"$PY" -c 'import json,ssl,sys,urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
r = urllib.request.urlopen(sys.argv[1] + "/kapi/stats", context=ctx)
print(int(json.load(r)["bytes_in"]))' "$url" "$work/server.crt"
}

# --- the value ---------------------------------------------------------------
step "Generate a ${SIZE}-byte Argo-like workflow status (deterministic)"
"$PY" "$top/scripts/gen-workflow.py" --size "$SIZE" demo.json \
	--edited demo-edited.json --edit-percent 1
echo "$(wc -c <demo.json | tr -d ' ') bytes in demo.json; it starts:"
head -c 700 demo.json; echo "..."

# --- first put ---------------------------------------------------------------
step "kvsplit put wf/status demo.json"
w0=$(wire)
echo "$ kvsplit put wf/status demo.json"
kvsplit put wf/status demo.json --no-progress -o json >put1.json
w1=$(wire)
summary() {
	"$PY" - "$1" "$2" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1])); wire = int(sys.argv[2])
def mib(n):
    for unit, div in (("MiB", 1048576), ("KiB", 1024)):
        if n >= div:
            return "%.1f %s" % (n / div, unit)
    return "%d B" % n
print("  value:     %d bytes (%s) in %d chunks, version %s" % (p["bytes"], mib(p["bytes"]), p["chunks"], p["version"]))
print("  written:   %d new chunks in %d segments, %d stored bytes (%s, lz4)" % (
    p["chunks_written"], p["segments_written"], p["bytes_written"], mib(p["bytes_written"])))
print("  requests:  %d" % p["requests"])
print("  on the wire (request bodies seen by the server, JSON+base64): %d bytes (%s)" % (wire, mib(wire)))
EOF
}
summary put1.json $((w1 - w0))

step "What the cluster holds: one index ConfigMap for the key, a few segment ConfigMaps"
show kubectl get configmaps -l kvsplit.io/store=default -L kvsplit.io/role
index=$(kubectl get configmaps -l kvsplit.io/store=default,kvsplit.io/role=index -o name)
[ -n "$index" ] || { echo "demo: no index ConfigMap found" >&2; exit 1; }
echo
echo "$ kubectl get ${index} -o yaml   (long lines cut)"
kubectl get "$index" -o yaml >index.yaml
cut -c1-110 index.yaml | head -n 30

# --- the 1% edit -------------------------------------------------------------
step "Edit 1%: a contiguous run of nodes in the middle changes phase (Succeeded -> Failed)"
cmp demo.json demo-edited.json | sed 's/^/  /' || true
w0=$(wire)
echo "$ kvsplit put wf/status demo-edited.json"
kvsplit put wf/status demo-edited.json --no-progress -o json >put2.json
w2=$(wire)
summary put2.json $((w2 - w0))
"$PY" - put1.json put2.json <<'EOF'
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
print("\n  second put sent %.1f%% of the stored bytes of the first (%d vs %d), %d vs %d requests"
      % (100.0 * b["bytes_written"] / max(1, a["bytes_written"]), b["bytes_written"],
         a["bytes_written"], b["requests"], a["requests"]))
print("  and %.1f%% of the value's size; a whole-object store would resend all %d bytes"
      % (100.0 * b["bytes_written"] / max(1, b["bytes"]), b["bytes"]))
EOF

# --- read back ---------------------------------------------------------------
step "kvsplit get wf/status --to-file back.json, then cmp"
show kvsplit get wf/status --to-file back.json
show cmp demo-edited.json back.json
echo "verified: $(wc -c <back.json | tr -d ' ') bytes identical"

step "kvsplit stat wf/status"
show kvsplit stat wf/status

step "kvsplit ls, and kvsplit fsck: every index and segment verified against its hashes"
show kvsplit ls
show kvsplit fsck

step "Stop the server"
kill "$srv"
wait "$srv" 2>/dev/null || true
srv=
echo "done."
