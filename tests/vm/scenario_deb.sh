#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scenario_deb.sh - the Debian package proven on a system that did not build it: runs
# tests/scripts/test_deb.sh (install with dpkg -i, a job that spills through the installed
# spill, purge, nothing left) in the guest, whose root is the host's under a throw-away
# overlay, so nothing it installs reaches the host. check-vm.sh ran `make deb` on the host
# before booting; SPILL_DEB names that package.
. "$(dirname "$0")/lib.sh"
# the .deb that check-vm.sh built on the host: building it here, emulated, takes 3 minutes
deb=$(ls "$B"/deb/libspill_*.deb 2>/dev/null | grep -v dbgsym | head -n 1)
[ -n "$deb" ] || { fail "check-vm.sh built no package in $B/deb (its log: $B/vm/logs/make-deb.log)"; finish; }
# man-db's trigger rebuilds its index at dpkg -i and --purge, minutes under emulation; Debian
# skips it without this file (the guest's root is a throw-away overlay)
rm -f /var/lib/man-db/auto-update
script_test test_deb SPILL_DEB="$deb" SPILL_DEB_LINT=0
[ $? = 77 ] && finish "test_deb skipped: ${notes[-1]}"
finish
