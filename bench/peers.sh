#!/bin/sh
# make bench-peers: kvsplit side by side with one object, fixed chunks and
# PostgreSQL offload (docs/benchmarks.md). Starts on loopback the test API
# server (build/kapi-server) and two PostgreSQL servers from Debian's
# packages, initialised in a temporary directory: one with the default
# durability, one with fsync=off and synchronous_commit=off. Everything is
# stopped and removed at the end, also on failure or interrupt.
#
#   SIZES=1,8,64,256 RUNS=3 UPDATES=100 BUDGET=S PEERS=one,chunks,... NO_PG=1
#   sh bench/peers.sh
#
# BUDGET caps the seconds of one workload in one (peer, size, run): the
# table's column n says how many updates its medians are of.
set -e
B=${KVS_BUILD:-$PWD/build}
SIZES=${SIZES:-1,8,64,256}
RUNS=${RUNS:-3}
UPDATES=${UPDATES:-100}
BUDGET=${BUDGET:-}
PEERS=${PEERS:-}

# PostgreSQL and libpq (the peer), zlib (its gzip): this target's only.
if [ -z "$NO_PG" ]; then
	KVS_EXTRA_PKGS="postgresql libpq-dev zlib1g-dev" sh scripts/deps.sh
fi

T=$(mktemp -d /tmp/kvs-bench-peers-XXXXXX)
chmod 755 "$T"
KAPI_PID=
cleanup() {
	for d in "$T"/pg-*; do
		if [ -f "$d/data/postmaster.pid" ]; then
			as_pg "$PGBIN/pg_ctl" -D "$d/data" -m immediate stop >/dev/null 2>&1 || true
		fi
	done
	if [ -n "$KAPI_PID" ]; then
		kill "$KAPI_PID" 2>/dev/null || true
		wait "$KAPI_PID" 2>/dev/null || true
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# PostgreSQL refuses to run as root: run it as nobody then.
as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

"$B/kapi-server" --listen 127.0.0.1:0 --port-file "$T/kapi.port" --namespaces bench \
	--history-bytes 1073741824 --watch-cache-ms 1000 >"$T/kapi.log" 2>&1 &
KAPI_PID=$!
i=0
while [ ! -s "$T/kapi.port" ]; do
	i=$((i + 1)); [ $i -gt 500 ] && { echo "kapi-server did not start" >&2; cat "$T/kapi.log" >&2; exit 1; }
	sleep 0.01
done
KPORT=$(cat "$T/kapi.port")
cat >"$T/kubeconfig" <<EOF
clusters:
- name: k
  cluster: {server: 'http://127.0.0.1:$KPORT'}
contexts:
- name: c
  context: {cluster: k, namespace: bench}
current-context: c
EOF

if [ -z "$NO_PG" ]; then
	PGBIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)   # the newest installed
	for mode in durable fast; do
		d="$T/pg-$mode"
		mkdir -p "$d"
		[ "$(id -u)" = 0 ] && chown nobody "$d"
		as_pg "$PGBIN/initdb" -D "$d/data" -U bench -A trust -E UTF8 --no-locale >"$d/initdb.log" 2>&1 ||
			{ cat "$d/initdb.log" >&2; exit 1; }
		port=$(free_port)
		opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$d"
		[ $mode = fast ] && opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
		as_pg "$PGBIN/pg_ctl" -D "$d/data" -l "$d/log" -w -o "$opts" start >/dev/null ||
			{ cat "$d/log" >&2; exit 1; }
		if [ $mode = durable ]; then PORT_DURABLE=$port; else PORT_FAST=$port; fi
	done
fi

echo "bench-peers on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
[ -z "$NO_PG" ] && echo "PostgreSQL: $("$PGBIN/postgres" --version)"
set -- --kubeconfig "$T/kubeconfig" --sizes "$SIZES" --runs "$RUNS" --updates "$UPDATES"
[ -n "$BUDGET" ] && set -- "$@" --budget "$BUDGET"
[ -n "$PEERS" ] && set -- "$@" --peers "$PEERS"
if [ -n "$NO_PG" ]; then
	"$B/bench-peers" "$@"
else
	"$B/bench-peers" "$@" --pg "host=127.0.0.1 port=$PORT_DURABLE user=bench dbname=postgres" \
		--pg-fast "host=127.0.0.1 port=$PORT_FAST user=bench dbname=postgres"
fi
