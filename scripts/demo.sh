#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# demo.sh - the sensor pipeline under one memory cap, with plain malloc and under libspill, side by side.
#
# build/programs/sensor collects each batch of samples in one malloc'd buffer, analyses it and
# frees it. Under a cap smaller than a batch, plain malloc gets the process OOM-killed; under
# libspill the batch buffer is a file-backed mapping the kernel can write back, so it finishes.
#
# Environment (defaults in brackets):
#   DEMO_BATCH_MIB  size of one batch buffer in MiB [1024]
#   DEMO_BATCHES    number of batches [12: the whole demo takes about a minute]
#   DEMO_CAP        memory cap for both runs, bytes or K/M/G suffix [512M]
#   DEMO_THRESHOLD  SPILL_THRESHOLD for the libspill run [64M; 1M when the batch is smaller]
#   DEMO_SEED       sensor seed [1]
#   DEMO_DIR        where the fresh spill directory is made (disk, not tmpfs) [/var/tmp]
#   DEMO_PLOT       the picture of both runs over time (spill plot) [build/demo.png]
# Exit status: 0 when the libspill run finished with the same results; 1 otherwise; 2 usage.
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
build=${SPILL_BUILD:-$here/build}
sensor=$build/programs/sensor
lib=$build/libspill.so
mon=$build/libspill/spillmon
memcap=$here/scripts/memcap
plot=${DEMO_PLOT:-$build/demo.png}
chunk_mib=16	# the reference run streams each batch through a buffer this big

batch_mib=${DEMO_BATCH_MIB:-1024}
batches=${DEMO_BATCHES:-12}
cap=${DEMO_CAP:-512M}
seed=${DEMO_SEED:-1}
if [ -n "${DEMO_THRESHOLD:-}" ]; then
	threshold=$DEMO_THRESHOLD
elif [[ $batch_mib =~ ^[0-9]+$ ]] && [ "$batch_mib" -lt 64 ]; then
	threshold=1M
else
	threshold=64M
fi

die() {
	echo "demo: error: $1" >&2
	exit "${2:-1}"
}

positive() {
	if ! [[ $2 =~ ^[0-9]{1,7}$ ]] || [ "$((10#$2))" -eq 0 ]; then
		die "$1='$2' is not a positive number" 2
	fi
}
positive DEMO_BATCH_MIB "$batch_mib"
positive DEMO_BATCHES "$batches"
[[ $seed =~ ^[0-9]{1,18}$ ]] || die "DEMO_SEED='$seed' is not a number" 2
[[ $cap =~ ^[0-9]+([KkMmGg]([iI]?[bB])?)?$ ]] || die "DEMO_CAP='$cap' is not a size" 2
batch_mib=$((10#$batch_mib)) batches=$((10#$batches))
[ "$chunk_mib" -lt "$batch_mib" ] || chunk_mib=$(((batch_mib + 1) / 2))

[ -x "$sensor" ] || die "$sensor is missing; run 'make demo' (or 'make all programs')"
[ -f "$lib" ] || die "$lib is missing; run 'make demo' (or 'make all programs')"

work=$(mktemp -d "${DEMO_DIR:-/var/tmp}/spill-demo.XXXXXX") || die "cannot make a directory in ${DEMO_DIR:-/var/tmp}"
trap 'rm -rf "$work"' EXIT
spill_dir=$work/spill
mkdir "$spill_dir" || exit 1
stats=$work/spill-stats.json

# mib BYTES: BYTES as MiB with one decimal.
mib() {
	[[ $1 =~ ^[0-9]+$ ]] || { echo "$1"; return; }
	printf '%d.%d MiB' $(($1 / 1048576)) $(($1 % 1048576 * 10 / 1048576))
}

# Can we cap memory at all? memcap exits 125 when no memory cgroup can be made.
capped=1 nocap_reason=''
if [ ! -x "$memcap" ]; then
	capped=0 nocap_reason="$memcap is missing"
else
	"$memcap" 64M --quiet -- true 2>"$work/probe.err"
	rc=$?
	if [ $rc -ne 0 ]; then
		capped=0
		nocap_reason=$(grep -m1 '^memcap: ' "$work/probe.err")
		[ -n "$nocap_reason" ] || nocap_reason="memcap failed (status $rc)"
		[ "$EUID" -eq 0 ] || nocap_reason="$nocap_reason (not running as root)"
	fi
fi

# Both runs are traced every 100 ms (spillmon trace, what spill --trace runs) for the plot.
plain_cmd=() traced=0
if [ -x "$mon" ] && "$mon" trace --check -o "$work/probe.tsv" 2>/dev/null; then
	plain_cmd=("$mon" trace -o "$work/plain.tsv" --)
	traced=1
fi
# Prefer the wrapper; fall back to LD_PRELOAD when it is missing or does not work.
if [ -x "$build/spill" ] &&
   "$build/spill" -t "$threshold" -d "$spill_dir" --stats="$work/probe.json" -- true 2>"$work/probe.err"; then
	spill_cmd=("$build/spill" -t "$threshold" -d "$spill_dir" --stats="$stats")
	[ $traced = 0 ] || spill_cmd+=(--trace "$work/spill.tsv")
	spill_cmd+=(--)
	spill_how="build/spill -t $threshold -d DIR --stats=FILE"
else
	spill_cmd=(env "LD_PRELOAD=$lib${LD_PRELOAD:+ $LD_PRELOAD}" "SPILL_THRESHOLD=$threshold"
		"SPILL_DIR=$spill_dir" "SPILL_STATS=$stats")
	[ $traced = 0 ] || spill_cmd=("$mon" trace -o "$work/spill.tsv" -- "${spill_cmd[@]}")
	spill_how="LD_PRELOAD=build/libspill.so SPILL_THRESHOLD=$threshold"
fi

# run NAME COMMAND...: run under the cap (if any); sets status, elapsed, peak, oom.
run() {
	local name=$1 t0 t1 key val
	shift
	t0=${EPOCHREALTIME/./}
	if [ $capped = 1 ]; then
		"$memcap" "$cap" --quiet --report "$work/$name.report" -- "$@" \
			>"$work/$name.out" 2>"$work/$name.err"
	else
		"$@" >"$work/$name.out" 2>"$work/$name.err"
	fi
	status=$?
	t1=${EPOCHREALTIME/./}
	elapsed=$(printf '%d.%02d' $(((t1 - t0) / 1000000)) $(((t1 - t0) / 10000 % 100)))
	peak='' oom=no
	if [ $capped = 1 ] && [ -f "$work/$name.report" ]; then
		while IFS='=' read -r key val; do
			case $key in
			peak) peak=$val ;;
			oom_killed) oom=$val ;;
			elapsed) elapsed=$val ;;
			esac
		done <"$work/$name.report"
	fi
}

# outcome: a few words on how the last run ended.
outcome() {
	if [ "$status" = 0 ]; then
		echo finished
	elif [ "$oom" = yes ]; then
		echo "OOM-killed by kernel"
	elif [ "$status" -gt 128 ]; then
		echo "killed ($(kill -l $((status - 128)) 2>/dev/null || echo signal))"
	else
		echo "failed (status $status)"
	fi
}

# maxrss NAME: the sensor's own max RSS from its last stderr line, or "-".
maxrss() {
	local v
	v=$(sed -n 's/^sensor: .*max RSS \([0-9]*\) MiB$/\1/p' "$work/$1.err")
	if [ -n "$v" ]; then echo "$v MiB"; else echo -; fi
}

checksum() {
	sed -n 's/^checksum: \([0-9a-f]*\) .*/\1/p' "$work/$1.out"
}

sensor_args=(-b "$batch_mib" -n "$batches" -s "$seed")
echo "libspill demo: a sensor pipeline collects $batches batches of $batch_mib MiB, each in one"
echo "malloc'd buffer, analyses each batch and frees it ($sensor ${sensor_args[*]})."
if [ $capped = 1 ]; then
	echo "Both runs get the same memory cap: $cap (scripts/memcap, a fresh memory cgroup, no swap)."
else
	echo "NO MEMORY CAP: $nocap_reason."
	echo "Running both without a cap; plain malloc will not be killed and peaks are the sensor's max RSS."
fi
echo "libspill: $spill_how (spill files in a fresh directory under ${DEMO_DIR:-/var/tmp})"
echo

printf '%-40s' "running plain malloc ..."
run plain "${plain_cmd[@]+"${plain_cmd[@]}"}" "$sensor" "${sensor_args[@]}"
p_status=$status p_elapsed=$elapsed p_peak=$peak p_outcome=$(outcome) p_rss=$(maxrss plain)
echo "$p_outcome, $p_elapsed s"

printf '%-40s' "running under libspill ..."
run spill "${spill_cmd[@]}" "$sensor" "${sensor_args[@]}"
s_status=$status s_elapsed=$elapsed s_peak=$peak s_outcome=$(outcome) s_rss=$(maxrss spill)
echo "$s_outcome, $s_elapsed s"
# anything libspill or the wrapper said (the sensor's own timing line is left out)
grep -v '^sensor: ' "$work/spill.err" | tail -n 20 | sed 's/^/    /'

# The results to compare with: plain's own, or, when plain did not get through, the same
# batches computed by streaming each through a small buffer that fits under the cap.
ref=plain ref_what="the plain malloc run" ref_why=''
if [ "$p_status" != 0 ] || [ -z "$(checksum plain)" ]; then
	ref=reference
	ref_what="the reference run"
	ref_why="Plain malloc did not finish, so the reference is the same batches computed again,
  streamed through one $chunk_mib MiB buffer that fits under the cap: sensor -c $chunk_mib."
	printf '%-40s' "running the streamed reference ..."
	run reference "$sensor" "${sensor_args[@]}" -c "$chunk_mib"
	echo "$(outcome), $elapsed s"
fi

# stat KEY: a number from libspill's SPILL_STATS line, or "-".
stat() {
	local v
	v=$(grep -o "\"$1\":[0-9]*" "$stats" 2>/dev/null | head -n 1 | cut -d: -f2)
	echo "${v:--}"
}
spilled_peak=$(mib "$(stat spilled_bytes_peak)") spilled_allocs=$(stat spilled_allocs)
s_res=$(mib "$(stat resident_bytes_peak)") s_flt=$(stat major_faults)
s_read=$(mib "$(stat disk_read_bytes)") s_write=$(mib "$(stat disk_write_bytes)")

# traced NAME COLUMN: the last value of COLUMN (1-based) in the run's trace, or "-".
traced() {
	local v
	v=$(tail -n 1 "$work/$1.tsv" 2>/dev/null | cut -f "$2")
	[[ $v =~ ^[0-9]+$ ]] && echo "$v" || echo -
}
p_flt=$(traced plain 8) p_read=$(mib "$(traced plain 9)") p_write=$(mib "$(traced plain 10)")

p_sum=$(checksum plain) s_sum=$(checksum spill) r_sum=$(checksum "$ref")
peak_label="peak memory (cgroup)"
[ $capped = 1 ] || peak_label="peak memory"
[ $capped = 1 ] || { p_peak=$p_rss s_peak=$s_rss; }

echo
row() {
	if [ -n "$3" ]; then printf '  %-24s %-24s %s\n' "$@"; else printf '  %-24s %s\n' "$1" "$2"; fi
}
row "" "plain malloc" "libspill"
row "outcome" "$p_outcome" "$s_outcome"
row "exit status" "$p_status" "$s_status"
row "batches analysed" "$(grep -c '^batch ' "$work/plain.out") of $batches" \
	"$(grep -c '^batch ' "$work/spill.out") of $batches"
row "$peak_label" "$(mib "${p_peak:--}")" "$(mib "${s_peak:--}")"
[ $capped = 0 ] || row "sensor max RSS" "$p_rss" "$s_rss"
row "spilled peak" "-" "$spilled_peak"
row "spilled peak in RAM" "-" "$s_res"
row "spilled allocations" "-" "$spilled_allocs"
row "major faults" "$p_flt" "$s_flt"
row "read from disk" "$p_read" "$s_read"
row "written to disk" "$p_write" "$s_write"
row "elapsed" "$p_elapsed s" "$s_elapsed s"
row "result checksum" "${p_sum:--}" "${s_sum:--}"
[ $ref = plain ] || row "reference checksum" "${r_sum:--}" "(same batches, streamed)"
echo

rc=0
if [ -z "$s_sum" ]; then
	echo "results identical: unknown - the libspill run produced no results"
	rc=1
elif [ -z "$r_sum" ]; then
	echo "results identical: unknown - $ref_what produced no results"
	rc=1
elif [ "$s_sum" = "$r_sum" ]; then
	echo "results identical: yes - libspill's checksum $s_sum equals that of $ref_what."
else
	echo "results identical: NO - libspill's checksum $s_sum, but $r_sum from $ref_what"
	rc=1
fi
[ -z "$ref_why" ] || echo "  $ref_why"
echo "Faults and disk traffic: libspill's from its SPILL_STATS summary, plain malloc's from its trace"
echo "(the process's own counters; \"written\" is page cache it dirtied that was not dropped unwritten)."
if [ $traced = 0 ]; then
	echo "plot: none ($mon is missing; run 'make demo')"
elif "$mon" plot -o "$plot" -t "plain malloc: $p_outcome" "$work/plain.tsv" \
	-t "libspill: $s_outcome" "$work/spill.tsv" >/dev/null 2>"$work/plot.err"; then
	echo "plot: $plot (memory over time with the cap, and disk traffic; both runs side by side)"
else
	echo "plot: none ($(head -n 1 "$work/plot.err"))"
fi
if [ ! -s "$stats" ]; then
	echo "libspill wrote no SPILL_STATS summary: was it loaded at all?"
	rc=1
fi
if [ $capped = 1 ]; then
	echo "Peaks are the cgroup's, page cache included: libspill's blocks are pages of a file"
	echo "the kernel writes back and drops under the cap, where plain anonymous memory can only be killed."
	[ "$p_status" = 0 ] && echo "Note: plain malloc fit under the $cap cap; make DEMO_CAP smaller than a batch to see it killed."
fi
exit $rc
