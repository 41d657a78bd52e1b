#!/bin/sh
# Fidelity of the Kubernetes API test server, checked with clients nobody here
# wrote: kubectl, Debian's python3-kubernetes and python3-protobuf. Run by `make test` as
#   KVS_BUILD=<abs build dir> sh tests/fidelity.sh
# Prints "ok - ..." / "FAIL - ..." per check and ends with
#   fidelity: N passed, M failed
# Exit status is non-zero if any check failed or the run could not start.
set -u

BUILD=${KVS_BUILD:?KVS_BUILD must name the build directory}
SERVER="$BUILD/kapi-server"
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
T=$(mktemp -d "${TMPDIR:-/tmp}/kapi-fidelity.XXXXXX")
PASS=0
FAIL=0
PIDS=""

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
bad() {
	FAIL=$((FAIL + 1))
	echo "FAIL - $1"
	echo "  expected: $2"
	echo "  got: $(printf '%s' "$3" | head -c 2000)"
}
# expect_has NAME NEEDLE HAYSTACK
expect_has() {
	case "$3" in *"$2"*) ok "$1" ;; *) bad "$1" "output containing: $2" "$3" ;; esac
}
expect_eq() {
	if [ "$3" = "$2" ]; then ok "$1"; else bad "$1" "$2" "$3"; fi
}

[ -x "$SERVER" ] || { echo "fidelity: $SERVER not built"; echo "fidelity: 0 passed, 1 failed"; exit 1; }
command -v kubectl >/dev/null || { echo "fidelity: kubectl missing"; echo "fidelity: 0 passed, 1 failed"; exit 1; }

# start_server NAME ARGS... : starts, waits for the port file, sets PORT
start_server() {
	name=$1
	shift
	"$SERVER" --port-file "$T/$name.port" "$@" >"$T/$name.out" 2>"$T/$name.err" &
	PIDS="$PIDS $!"
	i=0
	while [ ! -s "$T/$name.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	PORT=$(cat "$T/$name.port" 2>/dev/null)
	[ -n "$PORT" ] || { echo "fidelity: server $name did not start"; cat "$T/$name.err"; exit 1; }
}

# write_kubeconfig FILE SERVER-URL [CA TOKEN]
write_kubeconfig() {
	{
		echo "apiVersion: v1"
		echo "kind: Config"
		echo "clusters:"
		echo "- name: kapi"
		echo "  cluster:"
		echo "    server: $2"
		[ $# -ge 3 ] && echo "    certificate-authority: $3"
		echo "users:"
		echo "- name: tester"
		if [ $# -ge 4 ]; then echo "  user: {token: $4}"; else echo "  user: {}"; fi
		echo "contexts:"
		echo "- name: kapi"
		echo "  context: {cluster: kapi, user: tester, namespace: default}"
		echo "current-context: kapi"
	} >"$1"
}

# ---------------------------------------------------------------- plain HTTP
start_server http --forbid delete:leases --crd example.com/v1/widgets/Widget --bookmark-ms 200
HTTP=http://127.0.0.1:$PORT
KC="$T/kc-http"
write_kubeconfig "$KC" "$HTTP"
K() { timeout 20 kubectl --kubeconfig "$KC" "$@" 2>&1; }

out=$(grep -c "kapi-server listening on http://127.0.0.1:$PORT" "$T/http.out")
expect_eq "server prints its address" "1" "$out"

echo hello >"$T/f.txt"
out=$(K create configmap cm1 --from-literal=a=1 --from-file="$T/f.txt")
expect_eq "kubectl create configmap from literal and file" "configmap/cm1 created" "$out"
out=$(K get cm cm1 -o json)
expect_has "kubectl get -o json has data" '"f.txt": "hello\n"' "$out"
expect_has "kubectl get -o json has a resourceVersion" '"resourceVersion": "' "$out"
out=$(K get cm cm1 -o json --show-managed-fields)
expect_has "kubectl create is the field manager kubectl-create" '"manager": "kubectl-create"' "$out"
expect_has "managedFields entries carry their operation and time" '"operation": "Update"' "$out"
out=$(K get cm cm1 -o yaml)
expect_has "kubectl get -o yaml" 'a: "1"' "$out"
out=$(K get cm)
expect_has "kubectl get prints the server-side table" "cm1    2      " "$out"
out=$(K label cm cm1 tier=gold)
expect_eq "kubectl label" "configmap/cm1 labeled" "$out"
out=$(K annotate cm cm1 note=x)
expect_eq "kubectl annotate" "configmap/cm1 annotated" "$out"
K get cm cm1 -o json >"$T/stale.json"
K annotate cm cm1 note=y --overwrite >/dev/null
out=$(K replace --validate=false -f "$T/stale.json")
expect_has "kubectl replace with a stale resourceVersion is a Conflict" \
	'Error from server (Conflict): error when replacing "'"$T"'/stale.json": Operation cannot be fulfilled on configmaps "cm1": the object has been modified; please apply your changes to the latest version and try again' "$out"
out=$(K create configmap cm1 --from-literal=a=1)
expect_eq "kubectl create existing is AlreadyExists" 'error: failed to create configmap: configmaps "cm1" already exists' "$out"

K create configmap cm2 --from-literal=b=2 >/dev/null
K label cm cm2 tier=silver >/dev/null
K create configmap cm3 >/dev/null
out=$(K get cm -l tier=gold -o name | tr '\n' ' ')
expect_eq "kubectl get -l equality" "configmap/cm1 " "$out"
out=$(K get cm -l 'tier in (gold,silver)' -o name | tr '\n' ' ')
expect_eq "kubectl get -l set-based in" "configmap/cm1 configmap/cm2 " "$out"
out=$(K get cm -l '!tier' -o name | tr '\n' ' ')
expect_eq "kubectl get -l !key" "configmap/cm3 " "$out"
out=$(K get cm -l 'tier!=gold,tier' -o name | tr '\n' ' ')
expect_eq "kubectl get -l inequality and exists" "configmap/cm2 " "$out"

for i in 1 2 3 4 5 6 7; do K create configmap "page$i" --from-literal=i=$i >/dev/null; done
out=$(K get cm --chunk-size=2 -o name -v=6)
n=$(printf '%s\n' "$out" | grep -c '^configmap/')
expect_eq "kubectl get --chunk-size=2 lists everything" "10" "$n"
n=$(printf '%s\n' "$out" | grep -c 'configmaps?continue=.*limit=2 200 OK')
expect_eq "kubectl --chunk-size followed the continue tokens" "4" "$n"

head -c 1048577 /dev/zero | tr '\0' a >"$T/big.txt"
out=$(K create configmap big --from-file="$T/big.txt")
expect_eq "ConfigMap over 1 MiB is rejected with the real message" \
	'error: failed to create configmap: ConfigMap "big" is invalid: []: Too long: must have at most 1048576 bytes' "$out"
head -c 1048576 /dev/zero | tr '\0' a >"$T/max.txt"
out=$(K create configmap max --from-file="$T/max.txt")
expect_eq "ConfigMap of exactly 1 MiB is accepted" "configmap/max created" "$out"

cat >"$T/imm.yaml" <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: imm}
immutable: true
data: {a: "1"}
EOF
out=$(K apply --validate=false -f "$T/imm.yaml")
expect_eq "kubectl apply creates an immutable ConfigMap" "configmap/imm created" "$out"
out=$(K patch cm imm -p '{"data":{"a":"2"}}')
expect_eq "immutable ConfigMap refuses a data change" \
	'The ConfigMap "imm" is invalid: data: Forbidden: field is immutable when `immutable` is set' "$out"
out=$(K patch cm imm --type=merge -p '{"immutable":false}')
expect_eq "immutable cannot be unset" \
	'The ConfigMap "imm" is invalid: immutable: Forbidden: field is immutable when `immutable` is set' "$out"
out=$(K label cm imm extra=yes)
expect_eq "immutable ConfigMap accepts a label change" "configmap/imm labeled" "$out"

timeout 6 kubectl --kubeconfig "$KC" get cm --watch-only -o name >"$T/watch1" 2>&1 &
timeout 6 kubectl --kubeconfig "$KC" get cm cm2 --watch >"$T/watch2" 2>&1 &
sleep 1.5
K create configmap watched --from-literal=w=1 >/dev/null
K label cm cm2 seen=yes >/dev/null
sleep 1
out=$(cat "$T/watch1")
expect_has "kubectl get --watch-only sees the new ConfigMap" "configmap/watched" "$out"
n=$(grep -c '^cm2 ' "$T/watch2")
expect_eq "kubectl get --watch prints the object and its update" "2" "$n"

out=$(K delete cm cm1)
expect_eq "kubectl delete" 'configmap "cm1" deleted' "$out"
out=$(K get cm cm1)
expect_eq "kubectl get after delete is NotFound" 'Error from server (NotFound): configmaps "cm1" not found' "$out"

cat >"$T/lease.yaml" <<EOF
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: l1}
spec: {holderIdentity: me, leaseDurationSeconds: 15}
EOF
out=$(K apply --validate=false -f "$T/lease.yaml")
expect_eq "kubectl apply creates a Lease" "lease.coordination.k8s.io/l1 created" "$out"
sed 's/holderIdentity: me/holderIdentity: you/' "$T/lease.yaml" >"$T/lease2.yaml"
out=$(K apply --validate=false -f "$T/lease2.yaml")
expect_eq "kubectl apply updates a Lease" "lease.coordination.k8s.io/l1 configured" "$out"
out=$(K get lease l1 -o jsonpath='{.spec.holderIdentity}')
expect_eq "Lease holder updated" "you" "$out"
out=$(K delete lease l1)
expect_eq "forbidden verb gives the RBAC message" \
	'Error from server (Forbidden): leases.coordination.k8s.io "l1" is forbidden: User "system:anonymous" cannot delete resource "leases" in API group "coordination.k8s.io" in the namespace "default"' "$out"

cat >"$T/widget.yaml" <<EOF
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1}
spec: {size: 3}
EOF
out=$(K apply --validate=false -f "$T/widget.yaml")
expect_eq "kubectl apply creates a custom resource" "widget.example.com/w1 created" "$out"
out=$(K get widgets -o name)
expect_eq "kubectl get lists custom resources" "widget.example.com/w1" "$out"
out=$(K create configmap x -n nowhere)
expect_eq "create in an unknown namespace" 'error: failed to create configmap: namespaces "nowhere" not found' "$out"

# ---------------------------------------------------------------- controller-facing (issue 15)
# A small watch cache (3 events, no age) and quick bookmarks, so the window
# and the bookmark rule show within seconds.
start_server ctl --watch-cache-size 3 --watch-cache-ms 0 --bookmark-ms 300
CTL=http://127.0.0.1:$PORT
KCC="$T/kc-ctl"
write_kubeconfig "$KCC" "$CTL"
KC2() { timeout 20 kubectl --kubeconfig "$KCC" "$@" 2>&1; }

cat >"$T/crd.yaml" <<EOF
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.ctl.example.com}
spec:
  group: ctl.example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Phase, type: string, jsonPath: .status.phase}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
          status: {type: object, properties: {phase: {type: string}}}
EOF
out=$(KC2 apply --validate=false -f "$T/crd.yaml")
expect_eq "1 kubectl apply -f crd.yaml registers the resource" \
	"customresourcedefinition.apiextensions.k8s.io/gadgets.ctl.example.com created" "$out"
printf 'apiVersion: ctl.example.com/v1\nkind: Gadget\nmetadata: {name: g1}\nspec: {size: 3}\nstatus: {phase: Lost}\n' >"$T/g1.yaml"
out=$(KC2 apply --validate=false -f "$T/g1.yaml")
expect_eq "1 kubectl apply creates the custom resource" "gadget.ctl.example.com/g1 created" "$out"
out=$(KC2 get gadget g1 -o jsonpath='{.status}')
expect_eq "1 create drops .status" "" "$out"
out=$(KC2 patch gadget g1 --subresource=status --type=merge -p '{"status":{"phase":"Ready"},"spec":{"size":9}}')
expect_eq "1 kubectl patch --subresource=status" "gadget.ctl.example.com/g1 patched" "$out"
out=$(KC2 get gadget g1 -o jsonpath='{.status.phase} {.spec.size} {.metadata.generation}')
expect_eq "1 the status write changed only the status (generation 1)" "Ready 3 1" "$out"
out=$(KC2 get gadgets | tr -s ' ')
expect_has "9 kubectl get shows the CRD's printer columns" "NAME SIZE PHASE" "$out"
expect_has "9 ... with the values from their jsonPaths" "g1 3 Ready" "$out"

out=$(KC2 run p1 --image=busybox:1.36 --restart=Never)
expect_eq "2 kubectl run creates a Pod" "pod/p1 created" "$out"
out=$(KC2 get pod p1 -o jsonpath='{.spec.dnsPolicy} {.spec.schedulerName} {.spec.terminationGracePeriodSeconds} {.status.phase} {.status.qosClass}')
expect_eq "2 the Pod has the real defaults and status" "ClusterFirst default-scheduler 30 Pending BestEffort" "$out"
out=$(KC2 get pods | tr -s ' ')
expect_has "2 kubectl get pods prints the pod table" "p1 0/1 Pending 0" "$out"
out=$(KC2 patch pod p1 --subresource=status --type=merge -p '{"status":{"phase":"Succeeded"}}')
expect_eq "2 kubectl patch pod --subresource=status" "pod/p1 patched" "$out"
out=$(KC2 get pods | tr -s ' ')
expect_has "2 a Succeeded pod shows Completed" "p1 0/1 Completed 0" "$out"
out=$(KC2 patch pod p1 -p '{"spec":{"restartPolicy":"Always"}}')
expect_has "2 a Pod spec change is refused" 'The Pod "p1" is invalid: spec: Forbidden: pod updates may not change fields other than' "$out"

out=$(KC2 create configmap dry --from-literal=a=1 --dry-run=server -o jsonpath='{.metadata.uid}|{.metadata.resourceVersion}')
case "$out" in ?*"|") ok "4 kubectl create --dry-run=server answers with no resourceVersion" ;;
*) bad "4 kubectl create --dry-run=server answers with no resourceVersion" "<uid>|" "$out" ;; esac
out=$(KC2 get cm dry)
expect_eq "4 ... and stores nothing" 'Error from server (NotFound): configmaps "dry" not found' "$out"

printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, finalizers: [ctl.example.com/hold]}\n' >"$T/held.yaml"
KC2 apply --validate=false -f "$T/held.yaml" >/dev/null
out=$(KC2 delete cm held --wait=false)
expect_eq "3 kubectl delete of an object with a finalizer" 'configmap "held" deleted' "$out"
out=$(KC2 get cm held -o jsonpath='{.metadata.deletionGracePeriodSeconds} {.metadata.finalizers}')
expect_eq "3 ... keeps it, marked for deletion" '0 ["ctl.example.com/hold"]' "$out"
KC2 patch cm held --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]' >/dev/null
out=$(KC2 get cm held)
expect_eq "3 removing the finalizer lets it go" 'Error from server (NotFound): configmaps "held" not found' "$out"

# The garbage collector deletes a dependent only once none of its owners
# exists; until then it only drops the deleted owner's reference (and a
# Foreground owner does not wait for it).
KC2 create configmap gc-a >/dev/null
KC2 create configmap gc-b >/dev/null
ua=$(KC2 get cm gc-a -o jsonpath='{.metadata.uid}')
ub=$(KC2 get cm gc-b -o jsonpath='{.metadata.uid}')
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gc-dep\n  ownerReferences:\n  - {apiVersion: v1, kind: ConfigMap, name: gc-a, uid: "%s", blockOwnerDeletion: true}\n  - {apiVersion: v1, kind: ConfigMap, name: gc-b, uid: "%s", blockOwnerDeletion: true}\n' \
	"$ua" "$ub" >"$T/gc-dep.yaml"
KC2 apply --validate=false -f "$T/gc-dep.yaml" >/dev/null
out=$(KC2 delete cm gc-a --cascade=foreground)
expect_eq "7 kubectl delete --cascade=foreground of one of two owners" 'configmap "gc-a" deleted' "$out"
out=$(KC2 get cm gc-a gc-dep -o name --ignore-not-found | tr '\n' ' ')
expect_eq "7 ... the owner goes, the dependent with another owner stays" "configmap/gc-dep " "$out"
out=$(KC2 get cm gc-dep -o jsonpath='{.metadata.ownerReferences[*].name}')
expect_eq "7 ... with only the live owner's reference left" "gc-b" "$out"
KC2 delete cm gc-b >/dev/null
out=$(KC2 get cm gc-dep)
expect_eq "7 deleting its last owner deletes the dependent" 'Error from server (NotFound): configmaps "gc-dep" not found' "$out"

out=$(KC2 create namespace tmp)
expect_eq "namespaces can be created" "namespace/tmp created" "$out"
out=$(KC2 get ns tmp -o jsonpath='{.status.phase} {.spec.finalizers} {.metadata.labels}')
expect_eq "a new namespace is Active with the kubernetes finalizer and name label" \
	'Active ["kubernetes"] {"kubernetes.io/metadata.name":"tmp"}' "$out"
KC2 create configmap in-tmp -n tmp >/dev/null
out=$(KC2 delete namespace tmp --wait=false)
expect_eq "kubectl delete namespace" 'namespace "tmp" deleted' "$out"
out=$(KC2 get ns tmp)
expect_eq "the namespace controller empties and removes it" 'Error from server (NotFound): namespaces "tmp" not found' "$out"

printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: badlabel, labels: {a: "b c"}}\n' >"$T/bad.yaml"
out=$(KC2 apply --validate=false -f "$T/bad.yaml")
expect_has "5 a label value with a space is refused by the server" \
	'The ConfigMap "badlabel" is invalid: metadata.labels: Invalid value: "b c": a valid label must be an empty string' "$out"
out=$(KC2 apply --server-side --validate=false -f "$T/g1.yaml")
expect_has "server-side apply is out of scope: a clear 415" "server-side apply is not supported by this test server" "$out"

out=$(timeout 90 "$PY" "$HERE/fidelity/k8s_controller_check.py" "$KCC" "$CTL" 2>&1)
printf '%s\n' "$out" | grep -Ev '^(ok|FAIL) - ' | grep -Ev '^  (expected|got): ' | head -n 40
printf '%s\n' "$out" | grep -E '^(ok|FAIL) - |^  (expected|got): '
PASS=$((PASS + $(printf '%s\n' "$out" | grep -c '^ok - ')))
FAIL=$((FAIL + $(printf '%s\n' "$out" | grep -c '^FAIL - ')))
if ! printf '%s\n' "$out" | grep -q '^ok - ctl: controller checks ran to the end'; then
	bad "controller check ran to the end" "last check reached" "$(printf '%s\n' "$out" | tail -n 5)"
fi

# ---------------------------------------------------------------- protobuf
# ConfigMap GETs in Kubernetes protobuf, decoded by Google's protobuf library
# (Debian python3-protobuf) and compared with the JSON answers.
start_server pb
out=$(timeout 60 "$PY" "$HERE/fidelity/k8s_protobuf_check.py" "http://127.0.0.1:$PORT" 2>&1)
printf '%s\n' "$out" | grep -Ev '^(ok|FAIL) - ' | grep -Ev '^  (expected|got): ' | head -n 40
printf '%s\n' "$out" | grep -E '^(ok|FAIL) - |^  (expected|got): '
PASS=$((PASS + $(printf '%s\n' "$out" | grep -c '^ok - ')))
FAIL=$((FAIL + $(printf '%s\n' "$out" | grep -c '^FAIL - ')))
if ! printf '%s\n' "$out" | grep -q '^ok - pb: protobuf checks ran to the end'; then
	bad "protobuf check ran to the end" "last check reached" "$(printf '%s\n' "$out" | tail -n 5)"
fi

# ---------------------------------------------------------------- HTTPS + token
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kapi-test-ca" \
	-keyout "$T/ca.key" -out "$T/ca.crt" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
	-keyout "$T/srv.key" -out "$T/srv.csr" >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$T/ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial \
	-days 2 -extfile "$T/ext" -out "$T/srv.crt" >/dev/null 2>&1
start_server https --tls-cert "$T/srv.crt" --tls-key "$T/srv.key" --token s3cret --namespaces default,other
HTTPS=https://127.0.0.1:$PORT
KCS="$T/kc-https"
write_kubeconfig "$KCS" "$HTTPS" "$T/ca.crt" s3cret
write_kubeconfig "$T/kc-bad" "$HTTPS" "$T/ca.crt" wrong
out=$(grep -c "kapi-server listening on https://127.0.0.1:$PORT" "$T/https.out")
expect_eq "TLS server prints an https address" "1" "$out"
out=$(timeout 20 kubectl --kubeconfig "$KCS" create configmap tls1 --from-literal=a=1 2>&1)
expect_eq "kubectl over TLS with a bearer token" "configmap/tls1 created" "$out"
out=$(timeout 20 kubectl --kubeconfig "$KCS" get ns -o name 2>&1 | tr '\n' ' ')
expect_eq "namespaces list" "namespace/default namespace/other " "$out"
out=$(timeout 20 kubectl --kubeconfig "$T/kc-bad" get cm 2>&1 | tail -n 1)
expect_eq "a bad token is Unauthorized" "error: You must be logged in to the server (Unauthorized)" "$out"

out=$(timeout 60 "$PY" "$HERE/fidelity/k8s_client_check.py" "$KCS" "$HTTPS" "$T/ca.crt" 2>&1)
printf '%s\n' "$out" | grep -Ev '^(ok|FAIL) - ' | grep -Ev '^  (expected|got): ' | head -n 40
printf '%s\n' "$out" | grep -E '^(ok|FAIL) - |^  (expected|got): '
PASS=$((PASS + $(printf '%s\n' "$out" | grep -c '^ok - ')))
pyfail=$(printf '%s\n' "$out" | grep -c '^FAIL - ')
FAIL=$((FAIL + pyfail))
if ! printf '%s\n' "$out" | grep -q '^ok - py: resourceVersion is one global counter'; then
	bad "python client check ran to the end" "last check reached" "$(printf '%s\n' "$out" | tail -n 5)"
fi

echo "fidelity: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
