#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2317  # cleanup runs from a trap
# bench.sh - what libspill costs and what it saves: each case plain and under libspill, alternating.
#
# Usage: scripts/bench.sh [--quick]
# Runs the programs in build/bench/ (and build/programs/sensor) plain and with
# LD_PRELOAD=build/libspill.so, A B A B, after a warm-up pair; reports the median and the
# spread ((max - min) / median) of each figure. Writes build/bench/results.md,
# build/bench/results.json, the 5b memory traces, and the plots docs/bench-memory.png and
# docs/bench-ratios.png (build/bench/ with --quick). Needs root only for case 9 (swap file), which is skipped otherwise.
# --quick: small sizes and one pair per case, for a check that everything runs (~1 minute).
set -u

prog=bench
quick=0
case ${1:-} in
--quick) quick=1 ;;
'') ;;
*) echo "usage: scripts/bench.sh [--quick]" >&2; exit 2 ;;
esac

src=$(cd "$(dirname "$0")/.." && pwd)
build=$src/build
bin=$build/bench
lib=$build/libspill.so
sensor=$build/programs/sensor
memcap=$src/scripts/memcap
out=$build/bench
docs=$src/docs
for f in "$lib" "$sensor" "$bin"/churn "$bin"/bigpair "$bin"/fill "$bin"/regrow "$bin"/iojob \
	"$bin"/forkcopy "$bin"/manyblocks; do
	[ -x "$f" ] || [ -f "$f" ] || { echo "$prog: error: $f is not built (run make all programs)" >&2; exit 1; }
done
mkdir -p "$out" "$docs"

# Sizes (MiB unless said otherwise) and repetitions.
if [ "$quick" = 1 ]; then
	pairs=1 warm=0 churn_ops=200000 big_untouched=20 big_written=3 fill_mib=256
	grow_from=32 grow_to=256 sensor_batches=2 sensor_mib=128 cap_mib=32 fork_mib=128 cow_mib=256 pool_mib=256
	many=10000 free_probe=200 dd_mib=256 swap_timeout=30 churn_pairs=1 small_pairs=1 churn_ir_ops=50000
else
	pairs=3 warm=1 churn_ops=2000000 big_untouched=100 big_written=6 fill_mib=2048
	grow_from=256 grow_to=2048 sensor_batches=2 sensor_mib=1024 cap_mib=256 fork_mib=1024 cow_mib=4096 pool_mib=2048
	many=100000 free_probe=500 dd_mib=512 swap_timeout=120 churn_pairs=5 small_pairs=5 churn_ir_ops=400000
fi
sensor_total=$((sensor_batches * sensor_mib))	# the data of case 5; the cap is 1/8 of it
io_mib=$((cap_mib * 8))	# case 5c: one buffer of 8x the cap
threshold=64M

# The spill directory: on disk under /var/tmp, never tmpfs (spilling to RAM proves nothing).
dir=$(mktemp -d /var/tmp/spill-bench.XXXXXX) || { echo "$prog: error: cannot create a directory in /var/tmp" >&2; exit 1; }
if [ "$(stat -f -c %T "$dir")" = tmpfs ]; then
	echo "$prog: error: /var/tmp is tmpfs here; the benchmark needs a disk" >&2
	rm -rf "$dir"
	exit 1
fi
swapfile='' swapcg=''
cleanup() {
	if [ -n "$swapfile" ]; then
		swapoff "$swapfile" 2>/dev/null
		rm -f "$swapfile"
	fi
	[ -n "$swapcg" ] && [ -d "$swapcg" ] && rmdir "$swapcg" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log=$out/bench.log
: >"$log"
spill_env=(env LD_PRELOAD="$lib" SPILL_THRESHOLD="$threshold" SPILL_DIR="$dir")
t_start=${EPOCHREALTIME/./}

say() {
	local us=$((${EPOCHREALTIME/./} - t_start))
	printf '%s: [%3d s] %s\n' "$prog" $((us / 1000000)) "$*" | tee -a "$log"
}

# field NAME FILE: the value of NAME=... on the "result" line of FILE.
field() {
	sed -n "s/^result.* $1=\([^ ]*\).*/\1/p; s/^result $1=\([^ ]*\).*/\1/p" "$2" | head -n 1
}

# stats V...: "median min max" of the numbers.
stats() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.6g %.6g %.6g\n", m, v[1], v[NR] }'
}

# once KIND OUTFILE CMD...: run CMD (plain or under libspill), output to OUTFILE; appends a
# "result wall_s=..." line so wall time is a field too. Returns CMD's status.
once() {
	local kind=$1 file=$2 t0 t1 rc
	shift 2
	t0=${EPOCHREALTIME/./}
	if [ "$kind" = spill ]; then
		"${spill_env[@]}" "$@" >"$file" 2>>"$log"
	else
		"$@" >"$file" 2>>"$log"
	fi
	rc=$?
	t1=${EPOCHREALTIME/./}
	printf 'result wall_s=%d.%06d\n' $(((t1 - t0) / 1000000)) $(((t1 - t0) % 1000000)) >>"$file"
	cat "$file" >>"$log"
	return "$rc"
}

# Results, keyed by case id.
declare -A P S PS SS RATIO TARGET MET METRIC NOTE SHORT
ids=()

# ab ID FIELD PAIRS CMD...: warm-up, then PAIRS x (plain, libspill); medians into P/S.
ab() {
	local id=$1 fld=$2 n=$3 i kind v a=() b=() f=$out/run.out
	shift 3
	: >"$out/runs-$id-plain.txt"
	: >"$out/runs-$id-spill.txt"
	for ((i = 1 - warm; i <= n; i++)); do
		for kind in plain spill; do
			if ! once "$kind" "$f" "$@"; then
				say "  $id: $kind run failed (see $log)"
				v=nan
			else
				v=$(field "$fld" "$f")
			fi
			if [ "$i" -ge 1 ]; then
				cat "$f" >>"$out/runs-$id-$kind.txt"
				[ "$kind" = plain ] && a+=("$v") || b+=("$v")
				say "  $id run $i/$n $kind: $fld=$v"
			else
				say "  $id warm-up $kind: $fld=$v"
			fi
		done
	done
	read -r "P[$id]" pmin pmax < <(stats "${a[@]}")
	read -r "S[$id]" smin smax < <(stats "${b[@]}")
	PS[$id]=$(spread "${P[$id]}" "$pmin" "$pmax")
	SS[$id]=$(spread "${S[$id]}" "$smin" "$smax")
}

# med ID KIND FIELD: the median of FIELD over the measured runs of case ID.
med() {
	local v
	mapfile -t v < <(sed -n "s/^result.* $3=\([^ ]*\).*/\1/p; s/^result $3=\([^ ]*\).*/\1/p" "$out/runs-$1-$2.txt")
	[ "${#v[@]}" -gt 0 ] || { echo nan; return; }
	stats "${v[@]}" | cut -d' ' -f1
}

# spread MEDIAN MIN MAX: (max - min) / median in percent.
spread() {
	awk -v m="$1" -v lo="$2" -v hi="$3" 'BEGIN { if (m > 0) printf "%.0f%%", (hi - lo) / m * 100; else print "-" }'
}

# ratio A B: A / B.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == a + 0 && b + 0 > 0) printf "%.3g", a / b; else print "nan" }'
}

# verdict ID OP LIMIT: met when RATIO[ID] OP LIMIT (OP is le or ge).
verdict() {
	SHORT[$1]="$([ "$2" = le ] && echo "≤" || echo "≥") $3"
	MET[$1]=$(awk -v r="${RATIO[$1]}" -v op="$2" -v l="$3" 'BEGIN {
		if (r != r + 0) { print "not met"; exit }
		ok = op == "le" ? r <= l : r >= l
		print ok ? "met" : "not met" }')
}

# add ID METRIC TARGET: record a row.
add() {
	ids+=("$1")
	METRIC[$1]=$2
	TARGET[$1]=$3
}

echo "$prog: machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM," \
	"kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
echo "$prog: spill dir $dir ($(findmnt -n -o FSTYPE,OPTIONS -T "$dir"))" | tee -a "$log"
echo "$prog: mode $([ "$quick" = 1 ] && echo quick || echo full): warm-up $warm pair(s), $pairs measured pair(s)" | tee -a "$log"

# --- 1. small-allocation churn: CPU time (user + system) of 2 threads x churn_ops ---
say "case 1: small-allocation churn, 2 threads x $churn_ops malloc/free of 16 B - 4 KiB"
ab 1 cpu_s "$churn_pairs" "$bin/churn" -t 2 -n "$churn_ops"
add 1 "small churn: CPU s" "≤ 1.01"
RATIO[1]=$(ratio "${S[1]}" "${P[1]}")
verdict 1 le 1.01

# --- 1i. the same churn counted in instructions (callgrind): exact, whatever the machine's load ---
add 1i "small churn: instructions (callgrind)" "(informative)"
if command -v valgrind >/dev/null; then
	say "case 1i: the churn under callgrind, instructions counted"
	ir() {
		"$@" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin/churn" -t 2 -n "$churn_ir_ops" 2>&1 |
			sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
	}
	P[1i]=$(ir env) S[1i]=$(ir "${spill_env[@]}") PS[1i]=- SS[1i]=-
	RATIO[1i]=$(ratio "${S[1i]}" "${P[1i]}")
	MET[1i]=-
	NOTE[1i]="$(awk -v a="${P[1i]}" -v b="${S[1i]}" -v n="$churn_ir_ops" 'BEGIN { printf "%.1f", (b - a) / (2 * n) }') more instructions per malloc+free pair (2 x $churn_ir_ops pairs; startup included)"
else
	P[1i]=skipped S[1i]=skipped RATIO[1i]=nan MET[1i]=skipped PS[1i]=- SS[1i]=-
	NOTE[1i]="valgrind not installed"
fi

# --- 2. large malloc+free pairs of 64 MiB ---
say "case 2a: $big_untouched x (malloc 64 MiB, touch one byte, free)"
ab 2a us_per_pair "$small_pairs" "$bin/bigpair" -s 64 -n "$big_untouched"
add 2a "64 MiB pair untouched: µs/pair" "≤ 2"
RATIO[2a]=$(ratio "${S[2a]}" "${P[2a]}")
verdict 2a le 2
say "case 2b: $big_written x (malloc 64 MiB, write all, free)"
ab 2b us_per_pair "$pairs" "$bin/bigpair" -s 64 -n "$big_written" -w
add 2b "64 MiB pair written: µs/pair" "≤ 2"
RATIO[2b]=$(ratio "${S[2b]}" "${P[2b]}")
verdict 2b le 2

# --- 3. fill and read ---
say "case 3: write and checksum a $fill_mib MiB buffer"
ab 3 seconds "$pairs" "$bin/fill" -s "$fill_mib"
add 3 "fill+read $fill_mib MiB: s" "≤ 1.0"
RATIO[3]=$(ratio "${S[3]}" "${P[3]}")
verdict 3 le 1.0

# --- 4. realloc growth: time of the last doubling / the first, for each allocator ---
say "case 4: realloc doubling $grow_from -> $grow_to MiB"
ab 4 last_over_first "$pairs" "$bin/regrow" -s "$grow_from" -e "$grow_to"
add 4 "realloc: last / first doubling" "≤ 1.5"
RATIO[4]=${S[4]}	# the target is on libspill's own ratio
verdict 4 le 1.5
NOTE[4]="plain and libspill columns are each allocator's own last/first ratio; the ratio column is libspill's. Median realloc time, first / last doubling: plain $(med 4 plain first_s) / $(med 4 plain last_s) s, libspill $(med 4 spill first_s) / $(med 4 spill last_s) s"

# --- 5a. the sensor job with memory to spare ---
say "case 5a: sensor, $sensor_batches batches of $sensor_mib MiB, no cap"
ab 5a wall_s "$pairs" "$sensor" -b "$sensor_mib" -n "$sensor_batches"
add 5a "sensor ${sensor_total} MiB, no cap: s" "≤ 1.05"
RATIO[5a]=$(ratio "${S[5a]}" "${P[5a]}")
verdict 5a le 1.05

# capped ID KIND TRACE LIMIT_MIB CMD...: one run under memcap; sets c_status c_elapsed c_oom c_peak.
capped() {
	local id=$1 kind=$2 trace=$3 lim=$4 rep=$out/memcap.report f=$out/run.out
	shift 4
	local cmd=("$memcap" "${lim}M" --report "$rep")
	[ -n "$trace" ] && cmd+=(--trace "$trace" --interval "$([ "$quick" = 1 ] && echo 50 || echo 100)")
	cmd+=(--)
	[ "$kind" = spill ] && cmd+=("${spill_env[@]}")
	"${cmd[@]}" "$@" >"$f" 2>>"$log"
	c_status=$?
	cat "$f" >>"$log"
	if [ "$c_status" = 125 ]; then
		c_elapsed=nan c_oom=no c_peak=0
		return 125
	fi
	c_elapsed=$(sed -n 's/^elapsed=//p' "$rep")
	c_oom=$(sed -n 's/^oom_killed=//p' "$rep")
	c_peak=$(sed -n 's/^peak=//p' "$rep")
	say "  $id $kind capped at $lim MiB: status=$c_status oom_killed=$c_oom elapsed=${c_elapsed}s peak=$((c_peak >> 20)) MiB"
}

# describe_fail: text for a run that did not complete.
describe_fail() {
	if [ "$c_oom" = yes ]; then
		echo "OOM-killed after ${c_elapsed} s"
	else
		echo "failed (status $c_status) after ${c_elapsed} s"
	fi
}

# --- 5b. the sensor job under a cap of 1/8 of its data ---
say "case 5b: sensor under memcap $cap_mib MiB (1/8 of $sensor_total MiB)"
have_cgroup=1
capped 5b plain "$out/trace-5b-plain-capped.tsv" "$cap_mib" "$sensor" -b "$sensor_mib" -n "$sensor_batches"
if [ "$c_status" = 125 ]; then
	have_cgroup=0
	say "  memcap cannot create a memory cgroup here: cases 5b, 5c and 9 skipped"
fi
add 5b "sensor ${sensor_total} MiB under ${cap_mib} MiB cap: s" "completes, ≤ 1.15 × plain without cap"
if [ "$have_cgroup" = 1 ]; then
	if [ "$c_status" = 0 ]; then P[5b]=$c_elapsed; else P[5b]=$(describe_fail); fi
	PS[5b]=-
	capped 5b plain-uncapped "$out/trace-5b-plain-nocap.tsv" $((1 << 30)) "$sensor" -b "$sensor_mib" -n "$sensor_batches"
	nocap_el=$c_elapsed
	v=() fails=0
	for ((i = 1; i <= pairs; i++)); do
		trace=''
		[ "$i" = 1 ] && trace=$out/trace-5b-spill-capped.tsv
		capped 5b spill "$trace" "$cap_mib" "$sensor" -b "$sensor_mib" -n "$sensor_batches"
		if [ "$c_status" = 0 ]; then v+=("$c_elapsed"); else fails=$((fails + 1)); fi
	done
	if [ "${#v[@]}" -gt 0 ]; then
		read -r 'S[5b]' smin smax < <(stats "${v[@]}")
		SS[5b]=$(spread "${S[5b]}" "$smin" "$smax")
		RATIO[5b]=$(ratio "${S[5b]}" "${P[5a]}")
		verdict 5b le 1.15
		[ "$fails" = 0 ] || { MET[5b]="not met"; NOTE[5b]="$fails of $pairs libspill runs failed"; }
	else
		S[5b]=$(describe_fail) SS[5b]=- RATIO[5b]=nan MET[5b]="not met"
	fi
	NOTE[5b]="${NOTE[5b]:+${NOTE[5b]}; }ratio = libspill under the cap / plain without the cap (case 5a); the one plain run without a cap traced for the plot (in a cgroup with no real limit) took $nocap_el s"
else
	P[5b]=skipped S[5b]=skipped RATIO[5b]=nan MET[5b]=skipped PS[5b]=- SS[5b]=-
fi

# --- 8. the physical limit, on the same directory (measured before 5c, which is compared to it) ---
say "case 8: dd on $dir, $dd_mib MiB"
ddf=$dir/dd.bin
# dd_rate ARGS...: MB/s (decimal, as dd prints) of one dd run.
dd_rate() {
	local t0 t1
	t0=${EPOCHREALTIME/./}
	dd "$@" bs=1M count="$dd_mib" status=none 2>>"$log" || { echo nan; return; }
	t1=${EPOCHREALTIME/./}
	awk -v b=$((dd_mib << 20)) -v us=$((t1 - t0)) 'BEGIN { printf "%.1f", b / us }'
}
declare -A DD
dd_runs=$([ "$quick" = 1 ] && echo 1 || echo 3)
for kind in direct_write direct_read buffered_write buffered_read; do
	v=()
	for ((i = 1; i <= dd_runs; i++)); do
		case $kind in
		direct_write) r=$(dd_rate if=/dev/zero of="$ddf" oflag=direct) ;;
		direct_read) r=$(dd_rate if="$ddf" of=/dev/null iflag=direct) ;;
		buffered_write)
			rm -f "$ddf"
			r=$(dd_rate if=/dev/zero of="$ddf" conv=fdatasync) ;;
		buffered_read)
			# drop the file's cached pages first, so the read comes from the disk
			dd if="$ddf" iflag=nocache count=0 status=none 2>>"$log"
			r=$(dd_rate if="$ddf" of=/dev/null) ;;
		esac
		v+=("$r")
	done
	read -r DD[$kind] _ _ < <(stats "${v[@]}")
	say "  dd $kind: ${DD[$kind]} MB/s (median of ${v[*]})"
done
rm -f "$ddf"
# the 5b job's throughput under the cap, as a fraction of buffered write+fdatasync
frac5b=nan
[ "$have_cgroup" = 1 ] && [ -n "${S[5b]:-}" ] &&
	frac5b=$(awk -v s="${S[5b]}" -v mib="$sensor_total" -v dd="${DD[buffered_write]}" \
		'BEGIN { if (s == s + 0 && s > 0) printf "%.2f", mib * 1.048576 / s / dd; else print "nan" }')

# --- 5c. I/O-bound: one buffer of 8x the cap, written then read back ---
say "case 5c: one $io_mib MiB buffer under memcap $cap_mib MiB"
add 5c "one ${io_mib} MiB buffer under ${cap_mib} MiB cap: write MB/s" "≥ 0.9 × dd buffered write+fdatasync"
if [ "$have_cgroup" = 1 ]; then
	capped 5c plain "" "$cap_mib" "$bin/iojob" -s "$io_mib"
	if [ "$c_status" = 0 ]; then P[5c]=$(field write_mbs "$out/run.out"); else P[5c]=$(describe_fail); fi
	PS[5c]=- v=() rv=()
	for ((i = 1; i <= pairs; i++)); do
		capped 5c spill "" "$cap_mib" "$bin/iojob" -s "$io_mib"
		[ "$c_status" = 0 ] && v+=("$(field write_mbs "$out/run.out")") rv+=("$(field read_mbs "$out/run.out")")
	done
	if [ "${#v[@]}" -gt 0 ]; then
		read -r 'S[5c]' smin smax < <(stats "${v[@]}")
		read -r read5c _ _ < <(stats "${rv[@]}")
		SS[5c]=$(spread "${S[5c]}" "$smin" "$smax")
		RATIO[5c]=$(ratio "${S[5c]}" "${DD[buffered_write]}")
		verdict 5c ge 0.9
		NOTE[5c]="ratio = libspill write MB/s / dd buffered write+fdatasync ${DD[buffered_write]} MB/s; read back at $read5c MB/s (dd buffered read ${DD[buffered_read]})"
	else
		S[5c]=$(describe_fail) SS[5c]=- RATIO[5c]=nan MET[5c]="not met"
	fi
else
	P[5c]=skipped S[5c]=skipped RATIO[5c]=nan MET[5c]=skipped PS[5c]=- SS[5c]=-
fi

# --- 6. fork with large written buffers: SPILL_FORK=cow (the default), then copy ---
say "case 6: fork with $cow_mib MiB written in 64 blocks (SPILL_FORK=cow)"
ab 6 child_start_s "$pairs" "$bin/forkcopy" -s "$cow_mib" -n 64
add 6 "fork, cow: s until the child runs" "≤ 3 x plain"
RATIO[6]=$(ratio "${S[6]}" "${P[6]}")
verdict 6 le 3
NOTE[6]="$cow_mib MiB in 64 blocks. Parent's read of one word per page after the child exited (refault): plain $(med 6 plain refault_s) s, libspill $(med 6 spill refault_s) s"

say "case 6c: fork with $fork_mib MiB written (SPILL_FORK=copy)"
spill_env=(env LD_PRELOAD="$lib" SPILL_THRESHOLD="$threshold" SPILL_DIR="$dir" SPILL_FORK=copy)
ab 6c child_start_s "$pairs" "$bin/forkcopy" -s "$fork_mib"
spill_env=(env LD_PRELOAD="$lib" SPILL_THRESHOLD="$threshold" SPILL_DIR="$dir")
for k in P S; do
	declare -n arr=$k
	arr[6c]=$(awk -v s="${arr[6c]}" -v m="$fork_mib" 'BEGIN { printf "%.3g", s * 1024 / m }')
	unset -n arr
done
add 6c "fork, copy: s until the child runs, per GiB" "≤ 1 s per GiB"
RATIO[6c]=$(ratio "${S[6c]}" "${P[6c]}")
SHORT[6c]="(s/GiB ≤ 1)"
MET[6c]=$(awk -v s="${S[6c]}" 'BEGIN { print s <= 1 ? "met" : "not met" }')
NOTE[6c]="the target is on libspill's figure itself (${S[6c]} s/GiB); the ratio is against plain copy-on-write. Median fork() call: plain $(med 6c plain fork_s) s, libspill $(med 6c spill fork_s) s"

# --- 11. Python multiprocessing.Pool(4), fork start method, over a spilled numpy array ---
py=/usr/bin/python3
if "$py" -c 'import numpy' 2>/dev/null; then
	say "case 11: multiprocessing.Pool(4) over a $pool_mib MiB numpy array"
	ab 11 start_map_s "$pairs" "$py" "$src/bench/pool.py" "$pool_mib"
	add 11 "Pool(4) start + map, s" "≤ 3 x plain"
	RATIO[11]=$(ratio "${S[11]}" "${P[11]}")
	verdict 11 le 3
	sums=$(sed -n 's/^result.* sum=\([^ ]*\).*/\1/p' "$out/runs-11-plain.txt" "$out/runs-11-spill.txt" | sort -u | wc -l)
	# what the workers spilled of their own: their "create" events in a log of one more run
	rm -f "$out/pool.log"	# SPILL_LOG appends
	"${spill_env[@]}" SPILL_LOG="$out/pool.log" "$py" "$src/bench/pool.py" "$pool_mib" >/dev/null 2>>"$log"
	parent=$(awk '$3 == "create" { print $2; exit }' "$out/pool.log")
	kids=$(awk -v p="$parent" '$3 == "create" && $2 != p { for (i = 4; i <= NF; i++) if ($i ~ /^len=/) s += substr($i, 5) }
		END { printf "%.1f", s / 1048576 }' "$out/pool.log")
	NOTE[11]="results identical in all runs: $([ "$sums" = 1 ] && echo yes || echo NO); disk the workers spilled: $kids MiB (target ≤ 64)"
	[ "$sums" = 1 ] && awk -v k="$kids" 'BEGIN { exit !(k <= 64) }' || MET[11]="not met"
else
	add 11 "Pool(4) (needs numpy for $py)" "-"
	P[11]=skipped S[11]=skipped RATIO[11]=nan MET[11]=skipped PS[11]=- SS[11]=-
fi

# --- 7. scale: many live spilled blocks ---
say "case 7: $many live 4 KiB blocks (threshold 4K)"
spill_env=(env LD_PRELOAD="$lib" SPILL_THRESHOLD=4K SPILL_DIR="$dir")
declare -A FDS MAPS
ab 7 setup_s $((pairs > 2 ? 2 : pairs)) "$bin/manyblocks" -n "$many" -s 4096 -k
for kind in plain spill; do
	once "$kind" "$out/run.out" "$bin/manyblocks" -n "$many" -s 4096 -k
	FDS[$kind]=$(field fds_live "$out/run.out")
	MAPS[$kind]=$(field maps_live "$out/run.out")
	FDS[$kind-before]=$(field fds_before "$out/run.out")
	MAPS[$kind-before]=$(field maps_before "$out/run.out")
done
max_map=$(field max_map_count "$out/run.out")
fds7=$((FDS[spill] - FDS[plain]))
maps7=$((MAPS[spill] - MAPS[plain]))
add 7 "$many live blocks: setup s" "≤ 2 fds; maps ≪ max_map_count"
RATIO[7]=$(ratio "${S[7]}" "${P[7]}")
SHORT[7]="(fds)"
MET[7]=$(awk -v f="$fds7" -v m="${MAPS[spill]}" -v mx="$max_map" 'BEGIN { print f <= 2 && m * 100 < mx ? "met" : "not met" }')
NOTE[7]="libspill holds $fds7 more fd(s) and $maps7 more mapping(s) than plain (${MAPS[spill]} mappings in all, max_map_count $max_map)"
say "  fds: plain ${FDS[plain]}, libspill ${FDS[spill]}; mappings: plain ${MAPS[plain]}, libspill ${MAPS[spill]}"
# freeing: measured on fewer blocks, since each spilled free is a fallocate on the file
say "case 7b: free cost, $free_probe live 4 KiB blocks freed"
saved_warm=$warm warm=0
ab 7b free_s 1 "$bin/manyblocks" -n "$free_probe" -s 4096
warm=$saved_warm
P[7b]=$(awk -v s="${P[7b]}" -v n="$free_probe" 'BEGIN { printf "%.3g", s * 1e6 / n }')
S[7b]=$(awk -v s="${S[7b]}" -v n="$free_probe" 'BEGIN { printf "%.3g", s * 1e6 / n }')
add 7b "free of a 4 KiB block: µs" "(none; informative)"
RATIO[7b]=$(ratio "${S[7b]}" "${P[7b]}")
MET[7b]=-
NOTE[7b]="freeing all $many blocks at this rate would take $(awk -v u="${S[7b]}" -v n="$many" 'BEGIN { printf "%.1f", u * n / 1e6 }') s"
spill_env=(env LD_PRELOAD="$lib" SPILL_THRESHOLD="$threshold" SPILL_DIR="$dir")

# --- 9. the alternative: plain malloc with a swap file on the same partition, same job as 5b ---
say "case 9: sensor under $cap_mib MiB with a swap file on the same partition, plain malloc"
add 9 "5b job: swap / libspill time" "libspill ≥ 3× faster"
P[9]=skipped S[9]=${S[5b]:-skipped} PS[9]=- SS[9]=- RATIO[9]=nan MET[9]=skipped
# swap_cgroup: make a v1 memory cgroup (child of ours) that may swap; sets swapcg, or why and fails.
swap_cgroup() {
	local rel mnt m
	rel=$(sed -n 's/^[0-9]*:\([^:]*,\)\{0,1\}memory\(,[^:]*\)\{0,1\}:\(.*\)/\3/p' /proc/self/cgroup)
	[ -n "$rel" ] || { why="no cgroup v1 memory controller"; return 1; }
	mnt=''
	for m in $(findmnt -n -t cgroup -o TARGET); do
		[ -e "$m/memory.limit_in_bytes" ] && mnt=$m && break
	done
	[ -n "$mnt" ] || { why="the cgroup v1 memory hierarchy is not mounted"; return 1; }
	[ -e "$mnt$rel/memory.memsw.limit_in_bytes" ] || { why="no memory.memsw (swap accounting is off)"; return 1; }
	mkdir "$mnt${rel%/}/spill-bench.$$" 2>/dev/null || { why="cannot mkdir a cgroup under $mnt$rel"; return 1; }
	swapcg=$mnt${rel%/}/spill-bench.$$
	if ! { echo $((cap_mib << 20)) >"$swapcg/memory.limit_in_bytes" &&
		echo $(((cap_mib << 20) + (sensor_total << 21))) >"$swapcg/memory.memsw.limit_in_bytes" &&
		echo 60 >"$swapcg/memory.swappiness"; } 2>/dev/null; then
		why="cannot set the cgroup's limits"
		return 1
	fi
}
why=''
if [ "$have_cgroup" = 0 ]; then
	NOTE[9]="skipped: no memory cgroup"
elif [ "$(id -u)" != 0 ]; then
	NOTE[9]="skipped: needs root (swapon)"
elif ! swap_cgroup; then
	NOTE[9]="skipped: $why"
else
	swapfile=$(dirname "$dir")/spill-bench-swap.$$
	swap_mib=$((sensor_total * 2))
	if ! { fallocate -l "${swap_mib}M" "$swapfile" && chmod 600 "$swapfile" && mkswap "$swapfile" >>"$log" 2>&1 &&
		swapon "$swapfile" 2>>"$log"; }; then
		NOTE[9]="skipped: cannot enable a swap file on $(dirname "$dir") (see the log)"
		rm -f "$swapfile"
		swapfile=''
	else
		say "  swap file $swapfile ($swap_mib MiB) on; cgroup $swapcg: limit $cap_mib MiB, memsw +$((sensor_total * 2)) MiB"
		t0=${EPOCHREALTIME/./}
		(
			[ -d "$swapcg" ] && echo "$BASHPID" >"$swapcg/cgroup.procs" &&
				exec timeout "$swap_timeout" "$sensor" -b "$sensor_mib" -n "$sensor_batches"
		) >"$out/run.out" 2>>"$log"
		rc=$?
		t1=${EPOCHREALTIME/./}
		el=$(awk -v us=$((t1 - t0)) 'BEGIN { printf "%.2f", us / 1e6 }')
		memsw_peak=$(<"$swapcg/memory.memsw.max_usage_in_bytes")
		ram_peak=$(<"$swapcg/memory.max_usage_in_bytes")
		say "  swap run: status $rc after $el s; RAM peak $((ram_peak >> 20)) MiB, RAM+swap peak $((memsw_peak >> 20)) MiB"
		swapoff "$swapfile" 2>>"$log"
		rm -f "$swapfile"
		swapfile=''
		rmdir "$swapcg" 2>/dev/null
		swapcg=''
		if [ "$rc" = 0 ]; then
			P[9]=$el
			RATIO[9]=$(ratio "$el" "${S[5b]}")
		elif [ "$rc" = 124 ]; then
			P[9]="> $swap_timeout (stopped)"
			RATIO[9]=$(awk -v a="$swap_timeout" -v b="${S[5b]}" 'BEGIN { printf "> %.3g", a / b }')
		else
			P[9]="failed (status $rc)"
		fi
		SHORT[9]="≥ 3"
		MET[9]=$(awk -v r="${RATIO[9]#> }" 'BEGIN { print ((r == r + 0 && r >= 3) ? "met" : "not met") }')
		NOTE[9]="plain column: plain malloc + swap file under the cap; libspill column: case 5b; ratio = swap / libspill; swap actually used: RAM+swap peak $((memsw_peak >> 20)) MiB vs RAM peak $((ram_peak >> 20)) MiB"
	fi
fi

# --- 10. SPILL_WHEN=pressure: RAM while the cgroup budget has room, spill past the headroom ---
# pressure_runs ID LIMIT_MIB: PAIRS runs of the sensor job under LIMIT with SPILL_WHEN=pressure;
# the median elapsed goes to S[ID] and the spilled allocations of the last run to p_spilled.
pressure_runs() {
	local id=$1 lim=$2 v=() i
	local saved=("${spill_env[@]}")
	spill_env+=(SPILL_WHEN=pressure SPILL_STATS="$out/pressure.json")
	p_fails=0
	for ((i = 1; i <= pairs; i++)); do
		rm -f "$out/pressure.json"
		capped "$id" spill "" "$lim" "$sensor" -b "$sensor_mib" -n "$sensor_batches"
		if [ "$c_status" = 0 ]; then v+=("$c_elapsed"); else p_fails=$((p_fails + 1)); fi
	done
	spill_env=("${saved[@]}")
	p_spilled=$(sed -n 's/.*"spilled_allocs":\([0-9]*\).*/\1/p' "$out/pressure.json" 2>/dev/null)
	if [ "${#v[@]}" -gt 0 ]; then
		read -r "S[$id]" smin smax < <(stats "${v[@]}")
		SS[$id]=$(spread "${S[$id]}" "$smin" "$smax")
	else
		S[$id]=$(describe_fail) SS[$id]=-
	fi
}

if [ "$have_cgroup" = 1 ]; then
	gen_mib=$((sensor_mib * 4))
	say "case 10a: sensor under a generous cap ($gen_mib MiB = 4 batches), plain vs SPILL_WHEN=pressure"
	add 10a "pressure mode, ${sensor_total} MiB under a ${gen_mib} MiB cap: s" "≤ 1.05"
	v=()
	for ((i = 1; i <= pairs; i++)); do
		capped 10a plain "" "$gen_mib" "$sensor" -b "$sensor_mib" -n "$sensor_batches"
		[ "$c_status" = 0 ] && v+=("$c_elapsed")
	done
	if [ "${#v[@]}" -gt 0 ]; then
		read -r 'P[10a]' pmin pmax < <(stats "${v[@]}")
		PS[10a]=$(spread "${P[10a]}" "$pmin" "$pmax")
	else
		P[10a]=$(describe_fail) PS[10a]=-
	fi
	pressure_runs 10a "$gen_mib"
	RATIO[10a]=$(ratio "${S[10a]}" "${P[10a]}")
	verdict 10a le 1.05
	[ "$p_fails" = 0 ] || MET[10a]="not met"
	NOTE[10a]="both under the same cap; pressure mode spilled ${p_spilled:-?} of $sensor_batches batches"

	say "case 10b: sensor under the 5b cap ($cap_mib MiB), SPILL_WHEN=pressure vs always (5b)"
	add 10b "pressure mode under the ${cap_mib} MiB cap: s" "completes, ≤ 1.15 × always (5b)"
	P[10b]=${S[5b]:-nan} PS[10b]=${SS[5b]:--}
	pressure_runs 10b "$cap_mib"
	RATIO[10b]=$(ratio "${S[10b]}" "${P[10b]}")
	verdict 10b le 1.15
	[ "$p_fails" = 0 ] || { MET[10b]="not met"; NOTE[10b]="$p_fails of $pairs runs failed; "; }
	NOTE[10b]="${NOTE[10b]:-}plain column: SPILL_WHEN=always under the same cap (case 5b); pressure mode spilled ${p_spilled:-?} of $sensor_batches batches"
else
	for id in 10a 10b; do
		add "$id" "pressure mode (needs a memory cgroup)" "-"
		P[$id]=skipped S[$id]=skipped RATIO[$id]=nan MET[$id]=skipped PS[$id]=- SS[$id]=-
	done
fi

# --- results ---
elapsed=$(awk -v us=$((${EPOCHREALTIME/./} - t_start)) 'BEGIN { printf "%.0f", us / 1e6 }')
md=$out/results.md json=$out/results.json
{
	echo "| case | metric | plain | libspill | ratio | target | result |"
	echo "|---|---|---|---|---|---|---|"
	for id in "${ids[@]}"; do
		p=${P[$id]:-} s=${S[$id]:-}
		[ "${PS[$id]:--}" = - ] || p="$p (±${PS[$id]})"
		[ "${SS[$id]:--}" = - ] || s="$s (±${SS[$id]})"
		echo "| $id | ${METRIC[$id]} | $p | $s | ${RATIO[$id]:-} | ${TARGET[$id]} | ${MET[$id]:-} |"
	done
	echo
	echo "Physical limit (case 8, dd on the spill directory, $dd_mib MiB, MB/s): direct write ${DD[direct_write]}," \
		"direct read ${DD[direct_read]}, buffered write+fdatasync ${DD[buffered_write]}, buffered read ${DD[buffered_read]}." \
		"The 5b job under the cap ran at $frac5b of buffered write+fdatasync."
	echo
	echo "Notes:"
	for id in "${ids[@]}"; do
		[ -z "${NOTE[$id]:-}" ] || echo "- $id: ${NOTE[$id]}"
	done
	echo "- (±N%) is the spread, (max - min) / median, over $pairs measured run(s) after $warm warm-up pair(s); figures are medians."
	echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $([ "$quick" = 1 ] && echo quick || echo full) mode, took $elapsed s; load at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
} >"$md"
# jstr TEXT: TEXT as a JSON string.
jstr() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}
# jval TEXT: a number as itself, anything else as a string.
jval() {
	if [[ $1 =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]]; then printf '%s' "$1"; else jstr "$1"; fi
}
{
	printf '{"mode":%s,"seconds":%s,"pairs":%s,"warmup":%s,"cases":[' "$(jstr "$([ "$quick" = 1 ] && echo quick || echo full)")" \
		"$elapsed" "$pairs" "$warm"
	sep=''
	for id in "${ids[@]}"; do
		printf '%s\n{"case":%s,"metric":%s,"plain":%s,"plain_spread":%s,"libspill":%s,"libspill_spread":%s,"ratio":%s,"target":%s,"result":%s,"note":%s}' \
			"$sep" "$(jstr "$id")" "$(jstr "${METRIC[$id]}")" "$(jval "${P[$id]:-}")" "$(jstr "${PS[$id]:--}")" \
			"$(jval "${S[$id]:-}")" "$(jstr "${SS[$id]:--}")" "$(jval "${RATIO[$id]:-}")" "$(jstr "${TARGET[$id]}")" \
			"$(jstr "${MET[$id]:-}")" "$(jstr "${NOTE[$id]:-}")"
		sep=,
	done
	printf '\n],"dd_mbs":{"direct_write":%s,"direct_read":%s,"buffered_write":%s,"buffered_read":%s},"five_b_fraction_of_dd":%s}\n' \
		"$(jval "${DD[direct_write]}")" "$(jval "${DD[direct_read]}")" "$(jval "${DD[buffered_write]}")" \
		"$(jval "${DD[buffered_read]}")" "$(jval "$frac5b")"
} >"$json"

# --- plots (a quick run's figures mean little: they stay in build/bench/) ---
plots=$docs
[ "$quick" = 1 ] && plots=$out
if ! command -v gnuplot >/dev/null; then
	say "installing gnuplot (gnuplot-nox)"
	apt-get install -y gnuplot-nox >>"$log" 2>&1 || say "cannot install gnuplot: no plots"
fi
if command -v gnuplot >/dev/null; then
	ratios=$out/ratios.dat
	: >"$ratios"
	for id in "${ids[@]}"; do
		r=${RATIO[$id]#> }
		[[ $r =~ ^[0-9.eE+-]+$ ]] && printf '%s\t%s\t%s\n' "$id ${SHORT[$id]:-}" "$r" "${MET[$id]}" >>"$ratios"
	done
	plot_ok=1
	gnuplot 2>>"$log" <<EOF || plot_ok=0
set terminal pngcairo size 1100,500 font ",9"
set output "$plots/bench-ratios.png"
set title "libspill benchmark: ratio per case, target under the name (green: met, red: not met, grey: no target)"
set style fill solid 0.8
set boxwidth 0.6
set logscale y
set grid ytics
set ylabel "ratio (log scale)"
set yrange [*:*]
set offsets 0, 0, graph 0.1, 0
set datafile separator "\t"
unset key
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb "black"
plot "$ratios" using 0:2:(strcol(3) eq "met" ? 0x33aa33 : strcol(3) eq "not met" ? 0xcc3333 : 0x888888):xtic(1) with boxes lc rgb variable, \
     "" using 0:2:(sprintf("%.3g", \$2)) with labels offset 0,0.8
EOF
	traces=()
	for t in plain-capped spill-capped plain-nocap; do
		[ -s "$out/trace-5b-$t.tsv" ] && traces+=("$t")
	done
	if [ "${#traces[@]}" -gt 0 ]; then
		gnuplot 2>>"$log" <<EOF || plot_ok=0
set terminal pngcairo size 1000,540 font ",10"
set output "$plots/bench-memory.png"
set title "case 5b: sensor job, ${sensor_batches} x ${sensor_mib} MiB, memory over time (memcap trace)"
set xlabel "seconds"
set ylabel "MiB"
set grid
set key outside right top
set yrange [0:*]
cap = $cap_mib
files = "${traces[*]}"
set arrow from graph 0, first cap to graph 1, first cap nohead lw 2 lc rgb "red" dt 3
set label sprintf("cap %d MiB", cap) at graph 0.01, first cap offset 0,0.7 tc rgb "red"
plot \
  "$out/trace-5b-plain-nocap.tsv" using 1:(\$2/1048576) with lines lw 2 lc rgb "#999999" title "plain, no cap: cgroup usage", \
  "" using 1:(\$3/1048576) with lines lw 1 dt 2 lc rgb "#999999" title "plain, no cap: RSS", \
  "$out/trace-5b-plain-capped.tsv" using 1:(\$2/1048576) with linespoints pt 7 ps 0.5 lw 2 lc rgb "#cc3333" title "plain, capped: usage (OOM-killed)", \
  "" using 1:(\$3/1048576) with lines lw 1 dt 2 lc rgb "#cc3333" title "plain, capped: RSS", \
  "$out/trace-5b-spill-capped.tsv" using 1:(\$2/1048576) with lines lw 2 lc rgb "#3366cc" title "libspill, capped: usage", \
  "" using 1:(\$3/1048576) with lines lw 1 dt 2 lc rgb "#3366cc" title "libspill, capped: RSS"
EOF
	fi
	if [ "$plot_ok" = 1 ]; then
		say "plots: $plots/bench-ratios.png $plots/bench-memory.png"
	else
		say "gnuplot failed (see $log)"
	fi
fi

say "done in $elapsed s: $md, $json"
cat "$md"
