#!/bin/sh
# bench/scale-report.sh DIR: DIR/scale.md and DIR/scale.png from the raw
# figures bench/scale.sh left in DIR/scale.tsv and DIR/scale-load.tsv (so
# the report and the plot can be redrawn from the committed data).
# SCALE_SECS (the run's wall time) and SCALE_HUGE_NOTE (why huge pages are
# missing, if they are) come from scale.sh; without them the report keeps
# the lines an earlier report gave.
set -eu

dir=${1:?usage: scale-report.sh DIR}
tsv=$dir/scale.tsv
ld=$dir/scale-load.tsv
[ -f "$tsv" ] || { echo "scale-report.sh: $tsv missing: run make bench-scale" >&2; exit 2; }
tmp=$(mktemp -d /tmp/shmkv-scale-report.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# 16777216 -> 16M, 262144 -> 256K
size_fn='function size(n) { return n >= 1048576 ? sprintf("%dM", n / 1048576) : sprintf("%dK", n / 1024) } '
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
secs=${SCALE_SECS:-}
if [ -z "$secs" ] && [ -f "$dir/scale.md" ]; then
	secs=$(sed -n 's/.*whole run took \([0-9]*\) s.*/\1/p' "$dir/scale.md" | head -n 1)
fi

{
echo "# shmkv scale curve (make bench-scale)"
echo
echo "$cpu, $(nproc) CPUs; $(date -u '+%a %b %e %H:%M %Y UTC'); the whole run took ${secs:-?} s."
echo
awk -F'\t' 'NR > 1 { c += $18; w += $19 } END {
    printf "8-byte keys and 8-byte values at load 0.8.  **Answers checked: %d, wrong: %d** (every lookup, plus the count after each build).\n", c, w }' "$tsv"
cat <<'EOF'

Each size is built through the builder (`hashtable_replace_begin` on a
one-bucket table, `hashtable_builder_put` of every key,
`hashtable_replace_commit`); *create* is `hashtable_create_config` of an empty
table of the full size, timed apart.  Lookups are the kernels of
`shmkv-bench` (bench/kernels.h): latency mode is a chain (the next key comes
from the value just read), compared with the dependent read (a pointer chase
round one random cycle through every line of a buffer of the table's size);
throughput mode is independent random keys, compared with the independent
read over the same buffer.  Per repetition the limits are measured, then the
four lookup modes, in one loop; figures are medians of 3 repetitions, in ns
per lookup or read, timed in the thread's CPU time (the machine is shared:
time given to other processes is not charged).  Build and create times are
given in wall seconds (what a user waits) and the build also in CPU seconds.

EOF
for pages in 4k huge; do
	awk -F'\t' -v p="$pages" 'NR > 1 && $2 == p { f = 1 } END { exit !f }' "$tsv" || continue
	if [ "$pages" = 4k ]; then
		echo "## 4 KiB pages"
	else
		echo "## Huge pages (2 MiB, HASHTABLE_HUGETLB; the buffer MAP_HUGETLB)"
	fi
	echo
	echo "| entries | segment GB | bytes/entry | create ms | build s, wall (begin + puts + commit) | build s, CPU | ns a builder_put, CPU | dependent read | hit, latency (x dep) | miss, latency (x dep) | independent read | hit, throughput (x indep) | miss, throughput (x indep) | buckets a hit / miss |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	awk -F'\t' -v p="$pages" "$size_fn"'NR > 1 && $2 == p {
	    printf "| %s | %.2f | %.2f | %.1f | %.1f (%.3f + %.1f + %.3f) | %.1f | %.1f | %.1f | %.1f (%.2fx) | %.1f (%.2fx) | %.2f | %.1f (%.1fx) | %.1f (%.1fx) | %.2f / %.2f |\n",
	        size($1), $3 / 1e9, $4, $5 * 1e3, $6 + $7 + $8, $6, $7, $8, $21, $9, $10,
	        $12, $12 / $10, $13, $13 / $10, $11, $14, $14 / $11, $15, $15 / $11, $16, $17 }' "$tsv"
	echo
done
if awk -F'\t' 'NR > 1 && $2 == "huge" { f = 1 } END { exit !f }' "$tsv"; then
	cat <<'EOF'
## 4 KiB pages / huge pages

Each figure's 4 KiB run divided by its huge-page run: above 1, huge pages are
faster.  The two runs are minutes apart (at 256M entries both tables with
their buffers would need 22 GB at once), so these ratios carry the machine's
drift between runs; the ratios to the machine's reads above are each from one
loop.

| entries | dependent read | hit, latency | miss, latency | independent read | hit, throughput | miss, throughput | create (wall) | build (CPU) |
|---|---|---|---|---|---|---|---|---|
EOF
	awk -F'\t' "$size_fn"'NR > 1 { k = $1 " " $2; for (i = 1; i <= NF; i++) v[k, i] = $i; if ($2 == "4k") n[++c] = $1 }
	    END { for (j = 1; j <= c; j++) { a = n[j] " 4k"; b = n[j] " huge"
	        if (!((b, 1) in v)) continue
	        printf "| %s | %.2fx | %.2fx | %.2fx | %.2fx | %.2fx | %.2fx | %.2fx | %.2fx |\n", size(n[j]),
	            v[a, 10] / v[b, 10], v[a, 12] / v[b, 12], v[a, 13] / v[b, 13], v[a, 11] / v[b, 11],
	            v[a, 14] / v[b, 14], v[a, 15] / v[b, 15], v[a, 5] / v[b, 5],
	            v[a, 21] / v[b, 21] } }' "$tsv"
	echo
fi
if [ -n "${SCALE_HUGE_NOTE:-}" ]; then
	echo "Huge pages: ${SCALE_HUGE_NOTE}."
	echo
fi
if [ -f "$ld" ] && [ "$(wc -l < "$ld")" -gt 1 ]; then
	cat <<'EOF'
## shmkv-load --replace (4 KiB pages)

`shmkv-load --replace -f bin -K 8 -V 8 -l 0.8 -m 0.8 KEY FILE` into a new
table, from a file of fixed-width records on disk (written just before, so
mostly in the page cache); its own timings of reading, building and
committing (wall clock), and the wall and CPU time (user + system) of the
whole command.  Afterwards 1M sampled
keys must be found with their values, 1M absent keys must miss, and the count
must be exact.

| entries | segment GB | wall s | CPU s | read s | build s | commit s | ns a record, CPU | answers checked / wrong |
|---|---|---|---|---|---|---|---|---|
EOF
	awk -F'\t' "$size_fn"'NR > 1 { printf "| %s | %.2f | %.2f | %.2f | %s | %s | %s | %.1f | %d / %d |\n",
	    size($1), $2 / 1e9, $3, $4, $5, $6, $7, $4 * 1e9 / $1, $8, $9 }' "$ld"
	echo
fi
echo "Raw figures: scale.tsv (one line per size and page size) and scale-load.tsv."
} > "$tmp/scale.md"
mv "$tmp/scale.md" "$dir/scale.md"

if ! command -v gnuplot >/dev/null 2>&1; then
	echo "scale-report.sh: gnuplot missing (apt-get install gnuplot-nox): no plot" >&2
	exit 0
fi
for p in 4k huge; do
	awk -F'\t' -v p="$p" 'NR > 1 && $2 == p' "$tsv" > "$tmp/$p.dat"
done
have_huge=$([ -s "$tmp/huge.dat" ] && echo 1 || echo 0)
# One panel's plot command: columns $1 (the machine's read, named $4), $2
# (hit) and $3 (miss), solid from the 4 KiB pages run, dashed from the
# huge-page run when there is one.
panel() {
	printf 'plot "%s" using 1:%s with linespoints lw 3 lc rgb "black" pt 7 title "%s (limit)", ' \
	    "$tmp/4k.dat" "$1" "$4"
	printf '     "" using 1:%s with linespoints lw 2 lc rgb "#1f77b4" pt 7 title "hit", ' "$2"
	printf '     "" using 1:%s with linespoints lw 2 lc rgb "#d62728" pt 5 title "miss"' "$3"
	[ "$have_huge" = 1 ] || return 0
	printf ', \\\n     "%s" using 1:%s with linespoints lw 3 dt 2 lc rgb "black" pt 6 title "%s, huge", \\\n' \
	    "$tmp/huge.dat" "$1" "$4"
	printf '     "" using 1:%s with linespoints lw 2 dt 2 lc rgb "#1f77b4" pt 6 title "hit, huge", \\\n' "$2"
	printf '     "" using 1:%s with linespoints lw 2 dt 2 lc rgb "#d62728" pt 4 title "miss, huge"' "$3"
}
gnuplot <<EOF
set terminal pngcairo size 1200,560 font "sans,10"
set output "$dir/scale.png"
set multiplot layout 1,2 title "shmkv, 8-byte keys and values at load 0.8: ns per lookup against entries (solid: 4 KiB pages, dashed: huge pages)"
set logscale x 2
set logscale y
set xtics ("1M" 1048576, "4M" 4194304, "16M" 16777216, "64M" 67108864, "256M" 268435456)
set xrange [786432:357913941]
set xlabel "entries (table of 20.6 bytes an entry: 22 MB to 5.5 GB)"
set ylabel "ns (log scale)"
set grid
set key top left
set title "latency mode: each key from the previous value"
$(panel 10 12 13 "dependent read")
set title "throughput mode: independent keys"
$(panel 11 14 15 "independent read")
unset multiplot
EOF
