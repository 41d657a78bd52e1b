#!/bin/sh
# Run one test command; fail if it fails or if any sanitizer reported
# anything (Criterion ignores a worker's exit status after its test ended,
# so a LeakSanitizer report at a worker's exit would otherwise pass).
log=$(mktemp) rcf=$(mktemp)
trap 'rm -f "$log" "$rcf"' EXIT
{ "$@"; echo $? > "$rcf"; } 2>&1 | tee "$log"
rc=$(cat "$rcf")
if grep -q -E 'ERROR: (LeakSanitizer|AddressSanitizer)|runtime error:' "$log"; then
	echo "run.sh: a sanitizer reported an error above: $*" >&2
	exit 1
fi
exit "${rc:-1}"
