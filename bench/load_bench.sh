#!/bin/sh
# load_bench.sh: shmkv-load against hashtable_update() in a plain loop.
#
# Generates N records (default 16M) of 8-byte keys and values, as bin and as
# tsv with u64 decimal fields, then times, REPEAT times each and interleaved:
#   update_loop  build/update_loop run: the library's update in a plain loop
#                over the mapped bin file (its rate: loop time only);
#   load bin     shmkv-load -f bin, end to end (map, validate, create, write);
#   load tsv     shmkv-load -E u64, end to end (parse text, create, write).
# Reports the best rate of each, the ratios load/loop (the requirement is at
# least 0.5), the same per CPU second of each whole process (steadier on a
# busy machine), and peak RSS from /usr/bin/time -v next to the input and
# segment sizes (RSS counts the table's pages the process touched, too).
#
# Usage: SHMKV_BUILD=build sh bench/load_bench.sh [N] [REPEAT]
# Needs /usr/bin/time (Debian package `time`) and about 1 GB in $TMPDIR.
# Tables are created under keys derived from this shell's pid and removed
# by id, even on failure.
set -eu

B=${SHMKV_BUILD:-build}
N=${1:-16777216}
REPEAT=${2:-2}
TIME=/usr/bin/time

if [ ! -x "$TIME" ]; then
	echo "load_bench: /usr/bin/time is missing (apt-get install time)" >&2
	exit 1
fi
make -s B="$B" "$B/update_loop" "$B/shmkv-load" "$B/shmkv" >/dev/null

DIR=$(mktemp -d "${TMPDIR:-/tmp}/shmkv-bench.XXXXXX")
BASEKEY=$(( 0x7eb00000 + ($$ & 0xffff) * 16 ))
KEYS=""

cleanup() {
	for k in $KEYS; do
		id=$(awk -v k="$(printf '%d' "$k")" 'NR > 1 && $1 == k { print $2 }' /proc/sysvipc/shm)
		[ -n "$id" ] && ipcrm -m "$id" 2>/dev/null || true
	done
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A key of ours with no segment behind it.
next_key() {
	while :; do
		BASEKEY=$((BASEKEY + 1))
		k=$(printf '0x%08x' "$BASEKEY")
		if ! awk -v k="$BASEKEY" 'NR > 1 && $1 == k { f = 1 } END { exit !f }' /proc/sysvipc/shm; then
			KEYS="$KEYS $k"
			echo "$k"
			return
		fi
	done
}

# Runs a command under /usr/bin/time -v; sets WALL and CPU (user + system)
# in seconds, and RSS (kB).
timed() {
	"$TIME" -v -o "$DIR/time" "$@" >"$DIR/out" 2>"$DIR/err" || {
		echo "load_bench: failed: $*" >&2
		cat "$DIR/err" >&2
		exit 1
	}
	WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {
		n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$DIR/time")
	RSS=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$DIR/time")
	CPU=$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$DIR/time")
}

cpurate() { awk -v n="$N" -v s="$CPU" 'BEGIN { printf "%.0f", n / s }'; }

best() { # best NAME VALUE: keeps the larger rate in BEST_<NAME>
	eval "cur=\${BEST_$1:-0}"
	if awk -v a="$2" -v b="$cur" 'BEGIN { exit !(a > b) }'; then eval "BEST_$1=$2"; fi
}

echo "load_bench: generating $N records in $DIR"
"$B/update_loop" gen "$N" "$DIR/r.bin" "$DIR/r.tsv"
BIN_BYTES=$(stat -c %s "$DIR/r.bin")
TSV_BYTES=$(stat -c %s "$DIR/r.tsv")

i=0
while [ "$i" -lt "$REPEAT" ]; do
	i=$((i + 1))
	k=$(next_key)
	timed "$B/update_loop" run "$DIR/r.bin" 8 8 "$k"
	loop_rate=$(awk '{ print $6 }' "$DIR/out")
	loop_secs=$(awk '{ print $4 }' "$DIR/out")
	best loop "$loop_rate"
	best loopcpu "$(cpurate)"
	RSS_loop=$RSS
	printf 'run %d  update_loop  %8.3f s  %10.0f records/s  cpu %7.3f s  peak RSS %s kB\n' "$i" "$loop_secs" "$loop_rate" "$CPU" "$RSS"

	k=$(next_key)
	timed "$B/shmkv-load" -q -f bin -K 8 -V 8 "$k" "$DIR/r.bin"
	seg=$("$B/shmkv" stat --json "$k" | sed 's/.*"segment_bytes":\([0-9]*\).*/\1/')
	"$B/shmkv" rm "$k"
	rate=$(awk -v n="$N" -v s="$WALL" 'BEGIN { printf "%.0f", n / s }')
	best bin "$rate"
	best bincpu "$(cpurate)"
	RSS_bin=$RSS
	printf 'run %d  load bin     %8.3f s  %10.0f records/s  cpu %7.3f s  peak RSS %s kB\n' "$i" "$WALL" "$rate" "$CPU" "$RSS"

	k=$(next_key)
	timed "$B/shmkv-load" -q -E u64 "$k" "$DIR/r.tsv"
	"$B/shmkv" rm "$k"
	rate=$(awk -v n="$N" -v s="$WALL" 'BEGIN { printf "%.0f", n / s }')
	best tsv "$rate"
	best tsvcpu "$(cpurate)"
	RSS_tsv=$RSS
	printf 'run %d  load tsv     %8.3f s  %10.0f records/s  cpu %7.3f s  peak RSS %s kB\n' "$i" "$WALL" "$rate" "$CPU" "$RSS"
done

echo
printf 'records %s; bin input %s bytes, tsv input %s bytes; segment %s bytes\n' \
	"$N" "$BIN_BYTES" "$TSV_BYTES" "$seg"
awk -v l="$BEST_loop" -v b="$BEST_bin" -v t="$BEST_tsv" 'BEGIN {
	printf "best rates: update loop %.0f/s, load bin %.0f/s, load tsv-u64 %.0f/s\n", l, b, t
	printf "ratio load/update loop: bin %.2f, tsv-u64 %.2f (required: >= 0.50)\n", b / l, t / l }'
# Wall clocks swing with other load on the machine; CPU seconds much less.
# Both sides here are whole processes (create, page faults, teardown).
awk -v l="$BEST_loopcpu" -v b="$BEST_bincpu" -v t="$BEST_tsvcpu" 'BEGIN {
	printf "per CPU second (whole process): update loop %.0f/s, load bin %.0f/s, load tsv-u64 %.0f/s\n", l, b, t
	printf "ratio per CPU second: bin %.2f, tsv-u64 %.2f\n", b / l, t / l }'
awk -v seg="$seg" -v bin="$BIN_BYTES" -v tsv="$TSV_BYTES" -v rl="$RSS_loop" -v rb="$RSS_bin" -v rt="$RSS_tsv" 'BEGIN {
	segk = seg / 1024
	printf "peak RSS (last run), kB: update loop %d, load bin %d, load tsv %d\n", rl, rb, rt
	printf "beyond the segment, kB: update loop %d, load bin %d (input %d), load tsv %d (input %d)\n",
		rl - segk, rb - segk, bin / 1024, rt - segk, tsv / 1024 }'
