#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_install.sh - make install: an installed spill finds its library and spills; DESTDIR
# staging puts the library, wrapper and both man pages in place; uninstall removes them.
# shellcheck disable=SC2015,SC2016 # pass never fails; the $ are for the inner sh
set -u
cd "$TEST_TMP" || exit 1

fails=0
pass() { echo "ok - $1"; }
fail() { echo "not ok - $1"; fails=$((fails + 1)); }
unset LD_PRELOAD SPILL_LIBRARY SPILL_THRESHOLD SPILL_DIR SPILL_STATS SPILL_DISABLE SPILL_ONLY DESTDIR

command -v cc >/dev/null || { echo "no C compiler"; exit 77; }
version=$(sed -n 's/^VERSION[[:space:]]*:*=[[:space:]]*//p' "$SPILL_SRC/Makefile")

# --- a real install under a private prefix: the wrapper runs and spills -------------------
prefix=$TEST_TMP/prefix
make -s -C "$SPILL_SRC" install PREFIX="$prefix" >make-install.log 2>&1 ||
	{ cat make-install.log; echo "make install PREFIX=$prefix failed"; exit 1; }
spill=$prefix/bin/spill
[ -x "$spill" ] && pass "bin/spill installed" || fail "no executable $spill"
grep -q '@LIBDIR@\|@VERSION@' "$spill" && fail "placeholders left in $spill" || pass "placeholders substituted"
grep -qF "libdir='$prefix/lib'" "$spill" && pass "LIBDIR substituted" || fail "no libdir='$prefix/lib' in $spill"
out=$("$spill" --version)
[ "$out" = "spill (libspill) $version" ] && pass "--version says $version" || fail "--version: \"$out\""

cat >big.c <<'EOS'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	size_t sz = (size_t)4 << 20;
	for (int i = 0; i < 3; i++) {
		char *p = malloc(sz);
		if (!p)
			return 3;
		memset(p, i + 1, sz);
		if (p[sz - 1] != (char)(i + 1))
			return 4;
		free(p);
	}
	puts("big done");
	return 0;
}
EOS
cc -O1 -o big big.c || exit 1
mkdir -p spilldir
out=$("$spill" -t 1M -d spilldir --stats="$TEST_TMP/s.%p.json" ./big 2>err)
rc=$?
[ $rc = 0 ] && [ "$out" = "big done" ] && pass "installed spill runs a program" ||
	fail "installed spill: exit $rc, \"$out\", $(cat err)"
line=$(cat "$TEST_TMP"/s.*.json 2>/dev/null)
[[ $line =~ \"spilled_allocs\":([1-9][0-9]*) ]] && pass "installed library spilled (${BASH_REMATCH[1]})" ||
	fail "no spills from the installed library: \"$line\""
out=$("$spill" top --once -p "$$" 2>&1)
[ $? = 1 ] && [[ $out == *"does not have libspill loaded"* ]] &&
	pass "installed spill top runs its helper from LIBDIR/libspill" || fail "installed spill top: \"$out\""
# the substituted LIBDIR alone finds the library, with no ../lib beside the wrapper
mkdir -p elsewhere/bin
cp "$spill" elsewhere/bin/spill
out=$(elsewhere/bin/spill sh -c 'echo "$LD_PRELOAD"')
[ "$out" = "$prefix/lib/libspill.so" ] && pass "wrapper copied away still finds LIBDIR" ||
	fail "copied wrapper preloads \"$out\""
make -s -C "$SPILL_SRC" uninstall PREFIX="$prefix" >/dev/null 2>&1 || fail "make uninstall PREFIX failed"

# --- DESTDIR staging ----------------------------------------------------------------------------
root=$TEST_TMP/root
files=(usr/lib/libspill.so usr/lib/libspill/spillmon usr/bin/spill usr/share/man/man1/spill.1
	usr/share/man/man7/libspill.7)
make -s -C "$SPILL_SRC" install DESTDIR="$root" PREFIX=/usr >make-destdir.log 2>&1 ||
	{ cat make-destdir.log; echo "make install DESTDIR=$root failed"; exit 1; }
for f in "${files[@]}"; do
	[ -f "$root/$f" ] && pass "staged $f" || fail "DESTDIR install lacks $f"
done
[ -x "$root/usr/bin/spill" ] && [ ! -x "$root/usr/share/man/man1/spill.1" ] && pass "modes" ||
	fail "modes: $(ls -l "$root/usr/bin/spill" "$root/usr/share/man/man1/spill.1" 2>&1)"
grep -qF "libdir='/usr/lib'" "$root/usr/bin/spill" && pass "staged wrapper points at /usr/lib" ||
	fail "staged wrapper: $(grep -n '^libdir=' "$root/usr/bin/spill")"
cmp -s "$SPILL_SRC/docs/spill.1" "$root/usr/share/man/man1/spill.1" &&
	cmp -s "$SPILL_SRC/docs/libspill.7" "$root/usr/share/man/man7/libspill.7" && pass "man pages copied as is" ||
	fail "installed man pages differ from docs/"
# /usr/lib/libspill.so is not there (unless really installed): the wrapper falls back to ../lib
if [ ! -e /usr/lib/libspill.so ]; then
	out=$("$root/usr/bin/spill" sh -c 'echo "$LD_PRELOAD"' 2>&1)
	[ "$out" = "$(cd -P "$root/usr/lib" && pwd -P)/libspill.so" ] && pass "staged wrapper falls back to ../lib" ||
		fail "staged wrapper preloads \"$out\""
fi
if command -v man >/dev/null; then
	out=$(MANPATH=$root/usr/share/man man -w spill 2>&1)
	[ "$out" = "$root/usr/share/man/man1/spill.1" ] && pass "man -w finds spill(1)" || fail "man -w spill: $out"
fi
make -s -C "$SPILL_SRC" uninstall DESTDIR="$root" PREFIX=/usr >/dev/null 2>&1 || fail "make uninstall failed"
for f in "${files[@]}"; do
	[ ! -e "$root/$f" ] && pass "uninstall removed $f" || fail "uninstall left $f"
done
[ ! -e "$root/usr/lib/libspill" ] && pass "uninstall removed usr/lib/libspill/" || fail "uninstall left usr/lib/libspill/"

echo "$fails failed"
[ $fails = 0 ]
