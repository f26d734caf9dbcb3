#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# access-patterns.sh [CAP] [SET_MIB] [TOUCHES] - measures a sequential and a random-access pass
# over a working set of 4x the memory cap (default 128M cap, 512 MiB set) under scripts/memcap:
# with libspill, and with the same passes on a plain O_TMPFILE mapping under each madvise hint
# (none, sequential, random, willneed), and libspill under each SPILL_ADVICE. Not a test:
# it prints figures. Needs root (memcap) and make programs.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cap=${1:-128M} set=${2:-512} touches=${3:-32768}
bin=$here/build/bench/access_patterns
[ -x "$bin" ] || { echo "access-patterns: build it first: make programs" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/spill-access.XXXXXX")
trap 'rm -rf "$dir"' EXIT
echo "cap=$cap set=${set}MiB random touches=$touches dir=$dir"
for advice in normal sequential random; do
	echo "libspill, SPILL_ADVICE=$advice:"
	"$here/scripts/memcap" "$cap" -- env LD_PRELOAD="$here/build/libspill.so" SPILL_THRESHOLD=1M \
		SPILL_DIR="$dir" SPILL_ADVICE="$advice" "$bin" malloc "$set" "$touches"
done
for advice in none sequential random willneed; do
	"$here/scripts/memcap" "$cap" -- "$bin" file "$set" "$advice" "$dir" "$touches"
done
echo "for scale, uncapped:"
env LD_PRELOAD="$here/build/libspill.so" SPILL_THRESHOLD=1M SPILL_DIR="$dir" "$bin" malloc "$set" "$touches"
