#!/bin/sh
# tests/exec-plugin.sh — a stand-in for `aws eks get-token`, kubelogin or
# gke-gcloud-auth-plugin: prints a client.authentication.k8s.io
# ExecCredential. Driven by files in $KVS_PLUGIN_DIR (set it with the
# kubeconfig's exec.env):
#   runs       one line appended per run (the tests count them)
#   mode       token (default) | cert | fail | hang | garbage
#   tokens     token of the n-th run on line n (the last line repeats)
#   ttl        seconds until expirationTimestamp (absent: no expiry)
#   client.crt client.key   PEM for mode cert
# Each run saves what it was given: exec-info (KUBERNETES_EXEC_INFO), args.
# Arguments: --api-version V (default client.authentication.k8s.io/v1).
set -eu
d=${KVS_PLUGIN_DIR:?KVS_PLUGIN_DIR is not set}
api=client.authentication.k8s.io/v1
[ "${1:-}" = "--api-version" ] && api=$2
echo run >> "$d/runs"
n=$(wc -l < "$d/runs")
printf '%s\n' "${KUBERNETES_EXEC_INFO:-}" > "$d/exec-info"
printf '%s\n' "$@" > "$d/args"
mode=$(cat "$d/mode" 2>/dev/null || echo token)
tok=$(sed -n "${n}p" "$d/tokens" 2>/dev/null)
[ -n "$tok" ] || tok=$(tail -n 1 "$d/tokens" 2>/dev/null || echo none)
case $mode in
fail)
	echo "exec-plugin: login failed: your session has expired" >&2
	exit 3 ;;
hang)
	exec sleep 600 ;;
garbage)
	# what a plugin printing a help text or a stray log line looks like
	echo "Please log in: token=$tok"
	exit 0 ;;
esac
exp=""
if [ -f "$d/ttl" ]; then
	t=$(date -u -d "+$(cat "$d/ttl") seconds" +%Y-%m-%dT%H:%M:%SZ)
	exp=",\"expirationTimestamp\":\"$t\""
fi
if [ "$mode" = cert ]; then
	# JSON strings: newlines as \n
	c=$(awk '{printf "%s\\n", $0}' "$d/client.crt")
	k=$(awk '{printf "%s\\n", $0}' "$d/client.key")
	printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"clientCertificateData":"%s","clientKeyData":"%s"%s}}\n' \
		"$api" "$c" "$k" "$exp"
else
	printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"token":"%s"%s}}\n' \
		"$api" "$tok" "$exp"
fi
