#!/bin/sh
# bench/run.sh quick|full|profile: runs shmkv-bench, draws the plot, and checks
# that no shared memory segment of ours is left behind.
#
#   quick    small tables, 3 repetitions (under a minute); results go to
#            $SHMKV_BUILD/bench-quick/ so the committed ones stay as they are
#   full     the sizes the targets are stated for (under ten minutes);
#            results go to bench/results/ (results.md, plot.png)
#   profile  cachegrind figures for one lookup mode (see bench/README.md)
#
# As root, full mode sets vm.nr_hugepages high enough for the huge-page table
# and puts the old value back on exit, whatever the exit path.
set -eu

mode=${1:-quick}
B=${SHMKV_BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
bin=$B/shmkv-bench
[ -x "$bin" ] || { echo "run.sh: $bin missing: make bench-build first" >&2; exit 2; }

case $mode in
quick) out=$B/bench-quick; flags=--quick ;;
full) out=$here/results; flags=--full ;;
profile) out=$here/results; flags= ;;
*) echo "usage: run.sh quick|full|profile" >&2; exit 2 ;;
esac
mkdir -p "$out"
tmp=$(mktemp -d /tmp/shmkv-bench-run.XXXXXX)

old_huge=
restore() {
	if [ -n "$old_huge" ]; then
		echo "$old_huge" > /proc/sys/vm/nr_hugepages || true
		echo "run.sh: vm.nr_hugepages restored to $old_huge" >&2
		old_huge=
	fi
}
me=run.sh
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
trap 'restore; reap; rm -rf "$tmp"' EXIT

# Our segments have keys 0x5bPPPPNN (PPPP: low bits of the bench's pid).
ours() { ipcs -m | awk '$1 ~ /^0x5b/ { print $1, $2 }' | sort; }
ipcs -m > "$tmp/ipcs.before"
ours > "$tmp/ours.before"

if [ "$mode" = profile ]; then
	# perf has no hardware counters in this VM (perf stat -e instructions:
	# "not supported"), so callgrind counts instructions and simulates the
	# caches (the host's sizes), collecting only inside the kernel of each
	# operation.  Per-operation figures = totals / operations.
	n=${PROFILE_N:-2097152}
	{
	echo "# callgrind, per operation: $n entries, 8-byte keys and values, load 0.80;"
	echo "# Ir instructions, Dr/Dw data reads/writes, D1mr/D1mw L1 data misses,"
	echo "# DLmr/DLmw misses of a simulated 32 MiB 16-way last-level cache; each"
	echo "# figure includes the benchmark's loop and answer check (see callgrind.*.txt)"
	for op in hit_thr hit_lat miss_thr miss_lat batch insert; do
		case $op in
		hit_thr) fn=shm_thr_hit ;; hit_lat) fn=shm_lat_hit ;;
		miss_thr) fn=shm_thr_miss ;; miss_lat) fn=shm_lat_miss ;;
		batch) fn=shm_batch ;; insert) fn=shm_fill ;;
		esac
		valgrind --tool=callgrind --cache-sim=yes --LL=33554432,16,64 --toggle-collect="$fn*" \
		    --callgrind-out-file="$tmp/cg.$op" "$bin" --profile "$op" --n "$n" \
		    > "$tmp/p.$op" 2> "$tmp/e.$op" || { cat "$tmp/e.$op" >&2; exit 1; }
		mkdir -p "$B/bench-profile"
		callgrind_annotate --inclusive=yes "$tmp/cg.$op" > "$B/bench-profile/callgrind.$op.txt" 2>/dev/null || true
		ops=$(awk '{ print $1 }' "$tmp/p.$op")
		awk -v op="$op" -v ops="$ops" '
		    /^events:/ { for (i = 2; i <= NF; i++) ev[i - 1] = $i; ne = NF - 1 }
		    /^totals:/ { printf "%-9s %9d ops:", op, ops
		                 for (i = 2; i <= NF; i++) printf " %s %.2f", ev[i - 1], $i / ops
		                 printf "\n" }' "$tmp/cg.$op"
	done
	} > "$tmp/profile.txt"
	cp "$tmp/profile.txt" "$out/profile.txt"
	cat "$out/profile.txt"
	echo "run.sh: per-function detail in $B/bench-profile/callgrind.*.txt" >&2
	exit 0
fi

huge=
if [ "$mode" = full ] && [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/nr_hugepages ]; then
	need=$("$bin" $flags --hugepages-needed)
	cur=$(cat /proc/sys/vm/nr_hugepages)
	free=$(awk '/HugePages_Free/ { print $2 }' /proc/meminfo)
	if [ "$free" -lt "$need" ]; then
		old_huge=$cur
		echo $((cur + need - free)) > /proc/sys/vm/nr_hugepages || true
	fi
	free=$(awk '/HugePages_Free/ { print $2 }' /proc/meminfo)
	if [ "$free" -ge "$need" ]; then
		huge=--huge
	else
		echo "run.sh: only $free of $need huge pages free: huge pages not measured" >&2
	fi
fi

redis=
if [ "${SHMKV_BENCH_REDIS:-1}" = 1 ] && command -v redis-server >/dev/null 2>&1; then
	redis="--redis $(command -v redis-server)"
fi

# The version (seqlock) checks' cost: the same program linked with the library
# built with SHMKV_BENCH_NO_VERSIONS (readers without the checks; never for
# use).  `make bench-build` makes $B/shmkv-bench-noversions; without it, and
# when hashtable.c offers the switch, it is built here.
nover=${SHMKV_BENCH_NOVER:-}
src=$here/..
if [ -z "$nover" ] && [ -x "$B/shmkv-bench-noversions" ]; then
	nover=$B/shmkv-bench-noversions
elif [ -z "$nover" ] && grep -q SHMKV_BENCH_NO_VERSIONS "$src/hashtable.c"; then
	nb=$B/bench-nover
	mkdir -p "$nb"
	cc=${CC:-cc}
	cflags="-std=c11 -D_GNU_SOURCE -Wall -Wextra -pthread -fPIC -I$src ${CFLAGS:--O2 -g}"
	# shellcheck disable=SC2086
	if $cc $cflags -DSHMKV_BENCH_NO_VERSIONS -c -o "$nb/hashtable.o" "$src/hashtable.c" &&
	    $cc $cflags -o "$nb/shmkv-bench" "$src/bench/shmkv-bench.c" "$src"/bench/core/*.c \
	        "$src"/bench/peers/*.c "$nb/hashtable.o" \
	        -llmdb -lcdb -lck -pthread -lm; then
		nover=$nb/shmkv-bench
	else
		echo "run.sh: could not build the library without version checks" >&2
	fi
fi

# Lookup targets measured outside shmkv-bench, handed to its report as extra
# target rows (SHMKV_BENCH_EXTRA, "what|measured|against|at_most|goal" a line):
# instructions per hit (callgrind, exact; 158.1 before issue 11's work) and
# the cost of the generation check (gen_check.sh: with and without, same run).
extra=$tmp/extra
: > "$extra"
if command -v valgrind >/dev/null 2>&1 && [ -x "$B/hit_instructions" ]; then
	# hit_instructions' default: 10000 keys searched 10 times
	valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.hits" \
	    --toggle-collect=search_hits "$B/hit_instructions" > "$tmp/hits.out" 2>&1 &&
	awk '/Collected :/ { printf "instructions per hit (callgrind, bench/hit_instructions) vs 158.1 before issue 11|%.1f|158.1|1|0.5\n", $NF / 100000 }' \
	    "$tmp/hits.out" >> "$extra"
fi
if [ -x "$B/gen_check" ] && [ -x "$B/gen_check-nogen" ]; then
	if [ "$mode" = full ]; then gc_rounds=7 gc_sizes="16777216 65536"; else gc_rounds=3 gc_sizes=65536; fi
	# shellcheck disable=SC2086 # the sizes are words
	(cd "$here/.." && SHMKV_BUILD=$B sh bench/gen_check.sh $gc_rounds $gc_sizes) > "$tmp/gc.out" 2>&1 &&
	awk '/keys: throughput hit/ { printf "generation check: with / without, throughput hit, %s entries|%s|%s|1|1.05\n", $1, $5, $11 }' \
	    "$tmp/gc.out" >> "$extra"
	cat "$tmp/gc.out" >&2
fi

status=0
# shellcheck disable=SC2086 # word splitting of the optional flags is wanted
export SHMKV_BENCH_EXTRA="$extra"
run_bg "$bin" $flags --out "$out" $huge $redis ${nover:+--nover "$nover"} || status=$?
restore
reap

# The write targets (issue 11 target 3: bench/write_bench.c) and the bulk
# build's (issue 10 target 4: bench/load_bench.sh), each measured side by
# side in its own run, appended to results.md with their verdicts.
if [ "$status" = 0 ]; then
	case $mode in quick) wn=1048576 ;; *) wn=16777216 ;; esac
	"$B/write_bench" "$wn" 2 >> "$out/results.md" 2> "$tmp/write.err" || {
		cat "$tmp/write.err" >&2; status=4; }
	if SHMKV_BUILD=$B sh "$here/load_bench.sh" "$wn" 2 > "$tmp/load.txt" 2>&1; then
		sed -n '/^## Bulk build targets/,$p' "$tmp/load.txt" >> "$out/results.md"
	else
		cat "$tmp/load.txt" >&2
		status=4
	fi
fi

if [ -f "$out/plot.dat" ] && command -v gnuplot >/dev/null 2>&1; then
	gnuplot <<EOF || echo "run.sh: gnuplot failed" >&2
set terminal pngcairo size 960,600 font "sans,10"
set output "$out/plot.png"
set title "$(sed -n '1s/^# //; 1s/:.*//p' "$out/plot.dat"): ns per lookup against load factor"
set xlabel "load factor"
set ylabel "ns per lookup (log scale)"
set logscale y
set key outside right
set grid
set xtics (0.5, 0.8, 0.9, 0.95)
set xrange [0.45:1.0]
plot "$out/plot.dat" using 1:2 with lines lw 3 dt 2 lc rgb "black" title "dependent read (limit)", \
     "" using 1:3 with lines lw 3 dt 2 lc rgb "gray40" title "independent read (limit)", \
     "" using 1:4 with linespoints lw 2 pt 7 title "hit, latency", \
     "" using 1:5 with linespoints lw 2 pt 5 title "miss, latency", \
     "" using 1:6 with linespoints lw 2 pt 9 title "hit, throughput", \
     "" using 1:7 with linespoints lw 2 pt 11 title "miss, throughput", \
     "" using 1:8 with linespoints lw 2 pt 13 title "batched hit (128)", \
     "" using 1:9 with linespoints lw 1 pt 3 title "Zipf hit, throughput"
EOF
fi
[ "$mode" = full ] && rm -f "$out/plot.dat"

# Segments: ours must be gone; others' may come and go (the machine is shared).
ours > "$tmp/ours.after"
if ! cmp -s "$tmp/ours.before" "$tmp/ours.after"; then
	echo "run.sh: shared memory segments left behind by the benchmark:" >&2
	comm -13 "$tmp/ours.before" "$tmp/ours.after" >&2
	status=3
fi
if ! ipcs -m | cmp -s "$tmp/ipcs.before" -; then
	echo "run.sh: note: ipcs -m changed during the run, by other processes (keys not ours):" >&2
	ipcs -m | diff "$tmp/ipcs.before" - | grep '^[<>]' >&2 || true
fi

if [ "$status" = 0 ]; then
	echo "run.sh: wrote $out/results.md and $out/plot.png" >&2
elif [ "$status" = 1 ]; then
	echo "run.sh: FAILED: wrong answers (see $out/results.md)" >&2
else
	echo "run.sh: failed (status $status); $out/results.md is not this run's" >&2
fi
exit $status
