#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_deb.sh - make deb: the package is lintian clean, installs with dpkg -i, its spill finds
# the installed library and spills, and dpkg --purge leaves nothing of it behind.
#
# SPILL_DEB=FILE tests that already built .deb instead of running make deb (the VM harness
# sets it: its guest mounts this tree read-only and need not build). SPILL_DEB_LINT=0 leaves
# out lintian, which takes minutes under emulation and ran where the package was built.
# Needs root (dpkg -i); without SPILL_DEB also dpkg-buildpackage and debhelper. Skips when the
# libspill package is already on the system, which it must not replace. Runs in about 15 s
# (make deb about 5 s).
# Tests from several checkouts take turns through a lock file in /run/lock; the package is
# purged again by the EXIT trap if the test fails or is interrupted halfway.
# shellcheck disable=SC2015 # pass never fails
set -u
. "$(dirname "$0")/fslib.sh"

pkg=libspill
installed=0
purge() {
	local out
	[ "$installed" = 1 ] || return 0
	if out=$(dpkg_locked --purge "$pkg" 2>&1); then
		installed=0
	else
		echo "$out"
		return 1
	fi
}
trap 'purge; fslib_cleanup' EXIT
trap 'exit 130' INT TERM

# dpkg_locked ARGS...: dpkg, waiting while another dpkg or apt-get holds its lock.
dpkg_locked() {
	local out rc tries=0
	while :; do
		out=$(dpkg "$@" 2>&1)
		rc=$?
		[ $rc != 0 ] && [[ $out == *"is locked by another process"* ]] && [ $tries -lt 150 ] || break
		tries=$((tries + 1))
		sleep 2
	done
	printf '%s\n' "$out"
	return $rc
}

# status: the package's dpkg status, empty when dpkg has never heard of it.
status() {
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null
}

[ "$(id -u)" = 0 ] || skip "needs root to install a package with dpkg -i"
command -v dpkg >/dev/null && command -v dpkg-deb >/dev/null || skip "dpkg is not installed (not a Debian system)"
if [ -z "${SPILL_DEB:-}" ]; then
	command -v dpkg-buildpackage >/dev/null ||
		skip "dpkg-buildpackage is not installed (Debian package dpkg-dev); or set SPILL_DEB to a built .deb"
	command -v dh >/dev/null || skip "debhelper is not installed; or set SPILL_DEB to a built .deb"
fi
memhog=$SPILL_BUILD/programs/memhog
[ -x "$memhog" ] || { echo "$memhog is not built (run make programs)"; exit 1; }
version=$(sed -n 's/^VERSION[[:space:]]*:*=[[:space:]]*//p' "$SPILL_SRC/Makefile")
arch=$(dpkg --print-architecture)

# One test at a time on this machine: each installs and purges the same package.
lockdir=/run/lock
[ -d "$lockdir" ] && [ -w "$lockdir" ] || lockdir=/tmp
exec 9>>"$lockdir/libspill-test-deb.lock"
flock -w 300 9 || skip "another test_deb.sh has held $lockdir/libspill-test-deb.lock for 5 minutes"
st=$(status)
case $st in
''|*not-installed) ;;
*) skip "the $pkg package is already on this system ($st); this test installs and purges it, so it leaves that one alone" ;;
esac

# --- the package file ---------------------------------------------------------------------------
if [ -n "${SPILL_DEB:-}" ]; then
	deb=$SPILL_DEB
	[ -f "$deb" ] && [ -r "$deb" ] || { echo "SPILL_DEB=\"$deb\" is not a readable file"; exit 1; }
	echo "testing SPILL_DEB=$deb"
else
	deb=$SPILL_SRC/build/deb/${pkg}_${version}_$arch.deb
	t0=$(date +%s)
	touch started
	# a make check's variables must not reach the package build, which sets its own flags
	if ! env -u MAKEFLAGS -u MFLAGS -u MAKEOVERRIDES -u MAKELEVEL make -C "$SPILL_SRC" deb >deb-build.log 2>&1; then
		tail -n 40 deb-build.log
		echo "make deb failed"
		exit 1
	fi
	echo "make deb took $(($(date +%s) - t0)) s"
	[ -f "$deb" ] && pass "make deb built $(basename "$deb")" || { fail "make deb made no $deb"; ls -l "$(dirname "$deb")"; finish; }
	leftover=$(find "$(dirname "$SPILL_SRC")" -maxdepth 1 -name "${pkg}[_-]*" -newer started 2>/dev/null)
	[ -z "$leftover" ] && pass "nothing written next to the source tree" || fail "left outside the tree: $leftover"
fi

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = "$pkg" ] && pass "Package: $pkg" || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] && pass "Version: $version, as in the Makefile" ||
	fail "Version: $(field Version), but the Makefile says $version (debian/changelog)"
[ "$(field Architecture)" = "$arch" ] && pass "Architecture: $arch" || fail "Architecture: $(field Architecture)"
contents=$(dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|')
lib=$(grep -x '/usr/lib/[^/]*/libspill.so' <<<"$contents")
if [ -n "$lib" ] && [ -e "$(dirname "$lib")/libc.so.6" ]; then
	pass "library in the multiarch directory, beside libc: $lib"
else
	fail "no /usr/lib/TRIPLET/libspill.so beside libc.so.6 in the package: $(grep libspill.so <<<"$contents")"
fi
if command -v dpkg-architecture >/dev/null; then
	triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)
	[ "$lib" = "/usr/lib/$triplet/libspill.so" ] && pass "the triplet is DEB_HOST_MULTIARCH ($triplet)" ||
		fail "library at \"$lib\", expected /usr/lib/$triplet/libspill.so"
fi
for f in /usr/bin/spill "$(dirname "$lib")/libspill/spillmon" /usr/share/man/man1/spill.1.gz \
	/usr/share/man/man7/libspill.7.gz /usr/share/doc/$pkg/copyright; do
	grep -qxF "$f" <<<"$contents" && pass "package holds $f" || fail "package lacks $f"
done

if [ "${SPILL_DEB_LINT:-1}" = 0 ]; then
	echo "lintian: not run here (SPILL_DEB_LINT=0: the package was linted where it was built)"
elif command -v lintian >/dev/null; then
	out=$(lintian -I --fail-on error,warning "$deb" 2>&1)
	rc=$?
	out=$(grep -v 'running with root privileges' <<<"$out")
	[ $rc = 0 ] && pass "lintian: no errors or warnings${out:+ ($out)}" || fail "lintian (exit $rc): $out"
else
	echo "lintian is not installed: the package's lint is not checked here"
fi

# --- installed ------------------------------------------------------------------------------------
installed=1	# from here on the EXIT trap purges, even after a half-done dpkg -i
out=$(dpkg_locked -i "$deb" 2>&1) && [ "$(status)" = "install ok installed" ] && pass "dpkg -i installed it" ||
	{ fail "dpkg -i: status \"$(status)\": $out"; finish; }
mapfile -t listed < <(dpkg -L "$pkg")
declare -A was_dir=()
missing=()
for p in "${listed[@]}"; do
	[ -d "$p" ] && [ ! -L "$p" ] && was_dir[$p]=1
	[ -e "$p" ] || [ -L "$p" ] || missing+=("$p")
done
[ "${#listed[@]}" -gt 5 ] && [ "${#missing[@]}" = 0 ] && pass "all ${#listed[@]} paths of dpkg -L exist" ||
	fail "dpkg -L lists ${#listed[@]} paths; missing: ${missing[*]}"
[ -x /usr/bin/spill ] && [ -f "$lib" ] && pass "/usr/bin/spill and $lib installed" || fail "spill or $lib not installed"
if grep -qs '^path-exclude=/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
	echo "dpkg excludes /usr/share/man on this system: the installed man pages are not checked"
elif command -v man >/dev/null; then
	out=$(man -w spill 2>&1) && [ "$out" = /usr/share/man/man1/spill.1.gz ] &&
		out=$(man -w 7 libspill 2>&1) && [ "$out" = /usr/share/man/man7/libspill.7.gz ] &&
		pass "man -w finds spill(1) and libspill(7)" || fail "man -w: $out"
fi

# A user's environment: nothing of the build tree or of this test's variables.
user_env=(env -i PATH=/usr/bin:/bin HOME="$TEST_TMP")
out=$("${user_env[@]}" spill --version 2>&1)
[ "$out" = "spill (libspill) $version" ] && pass "spill --version: $out" || fail "spill --version: \"$out\""
# shellcheck disable=SC2016 # expanded by the inner sh
out=$("${user_env[@]}" spill sh -c 'echo "$LD_PRELOAD"' 2>&1)
[ "$out" = "$lib" ] && pass "the installed spill preloads $lib" || fail "the installed spill preloads \"$out\""
out=$("${user_env[@]}" spill top --once -p "$$" 2>&1)
[ $? = 1 ] && [[ $out == *"does not have libspill loaded"* ]] &&
	pass "the installed spill top runs its helper" || fail "the installed spill top: \"$out\""

mkdir -p spilldir
dir=$(cd -P spilldir && pwd -P)
# spilled FILE WHAT: passes when FILE holds a stats line of at least 2 spilled allocations in DIR.
spilled() {
	local line
	line=$(cat "$1" 2>/dev/null)
	if [[ $line =~ \"spilled_allocs\":([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -ge 2 ] &&
	   [[ $line == *"\"dir\":\"$dir\""* ]]; then
		pass "$2 spilled ${BASH_REMATCH[1]} blocks into $dir"
	else
		fail "$2: stats \"$line\""
	fi
}
"${user_env[@]}" spill -t 1M -d "$dir" --stats="$TEST_TMP/stats.json" -- "$memhog" -n 2 -s 8 >job.out 2>&1 &&
	pass "spill --stats=FILE -- memhog: exit 0" || { fail "spill -- memhog failed"; cat job.out; }
spilled "$TEST_TMP/stats.json" "spill -- memhog"
"${user_env[@]}" spill -t 1M -d "$dir" --stats -- "$memhog" -n 2 -s 8 >job.out 2>summary.txt &&
	grep -q 'spill:   spilled allocations  2$' summary.txt && pass "spill --stats -- memhog: a summary of 2 spills" ||
	{ fail "spill --stats summary"; cat job.out summary.txt; }
# the multiarch directory is on the loader's path: a bare LD_PRELOAD name finds the library
"${user_env[@]}" LD_PRELOAD=libspill.so SPILL_THRESHOLD=1M SPILL_DIR="$dir" SPILL_STATS="$TEST_TMP/bare.json" \
	"$memhog" -n 2 -s 8 >job.out 2>&1 && pass "LD_PRELOAD=libspill.so -- memhog: exit 0" ||
	{ fail "LD_PRELOAD=libspill.so memhog failed"; cat job.out; }
spilled "$TEST_TMP/bare.json" "LD_PRELOAD=libspill.so"

# --- purged -----------------------------------------------------------------------------------------
out=$(dpkg_locked --purge "$pkg" 2>&1) && installed=0 && pass "dpkg --purge" || fail "dpkg --purge: $out"
st=$(status)
case $st in ''|*not-installed) pass "dpkg knows it no more (${st:-unknown})" ;; *) fail "status after purge: $st" ;; esac
left=()
for p in "${listed[@]}"; do
	[ "$p" != /. ] || continue	# dpkg -L lists the root as /.
	[ -e "$p" ] || [ -L "$p" ] || continue
	# a directory stays when another package owns it too (/usr/bin, /usr/share/man/man1, ...)
	[ -n "${was_dir[$p]:-}" ] && dpkg-query -S "$p" >/dev/null 2>&1 && continue
	left+=("$p")
done
[ "${#left[@]}" = 0 ] && pass "purge removed every file and directory of the package" || fail "left after purge: ${left[*]}"
info=$(find /var/lib/dpkg/info -maxdepth 1 \( -name "$pkg.*" -o -name "$pkg:*" \))
[ -z "$info" ] && pass "no dpkg bookkeeping left" || fail "left in /var/lib/dpkg/info: $info"
finish
