#!/bin/sh
# Fidelity of the Kubernetes API test server, checked with clients nobody here
# wrote: kubectl and Debian's python3-kubernetes. Run by `make test` as
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
