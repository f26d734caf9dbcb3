#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scenario_deb.sh - the Debian package proven on a system that did not build it: runs
# tests/scripts/test_deb.sh (install with dpkg -i, a job that spills through the installed
# spill, purge, nothing left) in the guest, whose root is the host's under a throw-away
# overlay, so nothing it installs reaches the host. check-vm.sh ran `make deb` on the host
# before booting; SPILL_IN_VM=1 tells the test it is in the VM. Skips while it does not exist.
. "$(dirname "$0")/lib.sh"
[ -f "$S/tests/scripts/test_deb.sh" ] || finish "tests/scripts/test_deb.sh does not exist yet"
script_test test_deb SPILL_IN_VM=1
[ $? = 77 ] && finish "test_deb skipped: ${notes[-1]}"
finish
