#!/bin/sh
# tests/deb-test.sh DIR — install the .debs of `make deb` (in DIR) with
# dpkg -i, as on a machine that has only Debian's packages, then build the
# README's C example with `pkg-config --cflags --libs kvsplit` (shared, and
# the static library present), run the installed CLI and its completion, and
# remove the packages again. Needs root (CI runs it as root on Debian 12).
set -eu
dir=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "deb-test: needs root (dpkg -i)" >&2; exit 1; }
work=$(mktemp -d)
cleanup() {
	dpkg -r kvsplit libkvsplit-dev libkvsplit0 >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
dpkg -i "$dir"/libkvsplit0_*.deb "$dir"/libkvsplit-dev_*.deb "$dir"/kvsplit_*.deb
# the README's example, as a program: its ```c block inside main()
{
	echo '#include <stdio.h>'
	echo '#include <kvsplit.h>'
	echo 'int main(void) {'
	echo 'static const char buf[] = "one", buf2[] = "two"; size_t len = 3, len2 = 3;'
	sed -n '/^```c$/,/^```$/p' "$src/README.md" | sed '1d;$d' | grep -v '^#include'
	echo 'return 0; }'
} > "$work/example.c"
grep -q kvs_open "$work/example.c" || { echo "deb-test: no C example in README.md" >&2; exit 1; }
cd "$work"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror -o example example.c $(pkg-config --cflags --libs kvsplit)
ldd ./example | grep -Eq 'libkvsplit.so.0 => /(usr/)?lib/' || { echo "deb-test: not linked to the installed library" >&2; exit 1; }
# the static library is there (linking it statically would also need the
# static closure of Debian's libcurl: libldap, libzstd... -dev packages)
nm /usr/lib/*/libkvsplit.a 2>/dev/null | grep -q ' T kvs_open$'
/usr/bin/kvsplit version
[ "$(readlink /usr/bin/kubectl-kvsplit)" = kvsplit ]
test -s /usr/share/bash-completion/completions/kvsplit
bash -c '. /usr/share/bash-completion/completions/kvsplit; COMP_WORDS=(kvsplit ver); COMP_CWORD=1; _kvsplit_complete; [ "${COMPREPLY[*]}" = version ]'
echo "deb-test: installed, README example built and linked, CLI and completion work"
