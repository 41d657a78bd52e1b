#!/bin/sh
# Check tests/model/commit.pml with spin: exhaustively with every protection
# on (must be clean), then with each protection switched off (spin must find
# the race). Usage: check.sh [SWITCH...] (default: all). Needs spin and cc.
set -e
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/kvs-model-XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$here/commit.pml" "$work/"
cd "$work"
run() { # $1 = switch or "", $2 = expect (clean|violation)
	rm -f pan pan.* commit.pml.trail
	spin -a ${1:+-D$1} commit.pml >/dev/null
	cc -O2 -w -DSAFETY -DCOLLAPSE -DMEMLIM=${MODEL_MEMLIM:-1536} -o pan pan.c
	out=$(./pan -m10000 2>&1) || true
	errs=$(printf '%s\n' "$out" | sed -n 's/.*errors: \([0-9]*\).*/\1/p')
	states=$(printf '%s\n' "$out" | sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p')
	label=${1:-all protections}
	case "$2" in
	clean)
		if [ "$errs" != 0 ] || printf '%s\n' "$out" | grep -q 'search not completed\|max search depth too small'; then
			printf '%s\n' "$out"
			echo "model: $label: spin found a violation or did not finish" >&2
			exit 1
		fi
		echo "model: $label: verified exhaustively, $states states, no violation" ;;
	violation)
		if [ "$errs" = 0 ] || [ -z "$errs" ]; then
			printf '%s\n' "$out"
			echo "model: $label: spin did NOT find the race" >&2
			exit 1
		fi
		what=$(printf '%s\n' "$out" | grep -m1 'assertion violated' || true)
		echo "model: -D$label: race found as expected (${what:-error})" ;;
	esac
}
if [ $# -eq 0 ]; then
	run "" clean
	for s in NO_TOUCH_ON_EXISTS NO_DELETE_PRECOND NO_GRACE NO_REBASE_TOUCH NO_LATE_TOUCH \
	         NO_LATE_BASE_TOUCH; do
		run "$s" violation
	done
else
	for s in "$@"; do run "$s" violation; done
fi
