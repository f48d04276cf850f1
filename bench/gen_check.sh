#!/bin/sh
# gen_check.sh: the cost of the generation check on a throughput-mode hit.
#
# Runs build/gen_check (the library as shipped) and build/gen_check-nogen (the
# same program over hashtable.c built with -DSHMKV_BENCH_NO_GENERATION_CHECK)
# as fresh read-only processes on the same table, in turn, ROUNDS times each,
# for a table of N keys (default: 16M, the benchmark's table, and 64K, which
# fits in the caches, where the check weighs most).  Prints the median
# ns per hit of each and the ratio with/without (the requirement: <= 1.05).
#
# Usage: SHMKV_BUILD=build sh bench/gen_check.sh [ROUNDS] [N...]
# Tables are created under keys derived from this shell's pid and removed
# by id, even on failure.
set -eu

B=${SHMKV_BUILD:-build}
ROUNDS=${1:-5}
[ $# -gt 0 ] && shift
SIZES=${*:-16777216 65536}
make -s B="$B" "$B/gen_check" "$B/gen_check-nogen" >/dev/null
if ! grep -q SHMKV_BENCH_NO_GENERATION_CHECK hashtable.c; then
	echo "gen_check: hashtable.c has no SHMKV_BENCH_NO_GENERATION_CHECK: both programs are the same" >&2
fi

KEY=$(( 0x7eb20000 + ($$ & 0xffff) ))
cleanup() {
	id=$(awk -v k="$KEY" 'NR > 1 && $1 == k { print $2 }' /proc/sysvipc/shm)
	[ -n "$id" ] && "$B/shmkv" rm "$(printf 0x%x "$KEY")" >/dev/null 2>&1 || true
	id=$(awk -v k="$KEY" 'NR > 1 && $1 == k { print $2 }' /proc/sysvipc/shm)
	[ -n "$id" ] && ipcrm -m "$id" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

for n in $SIZES; do
	cleanup
	"$B/gen_check" fill "$KEY" "$n"
	: >"${TMPDIR:-/tmp}/gc.$$.with"
	: >"${TMPDIR:-/tmp}/gc.$$.without"
	i=0
	while [ "$i" -lt "$ROUNDS" ]; do
		i=$((i + 1))
		"$B/gen_check" probe "$KEY" "$n" | awk '{ print $2 }' >>"${TMPDIR:-/tmp}/gc.$$.with"
		"$B/gen_check-nogen" probe "$KEY" "$n" | awk '{ print $2 }' >>"${TMPDIR:-/tmp}/gc.$$.without"
	done
	w=$(median <"${TMPDIR:-/tmp}/gc.$$.with")
	wo=$(median <"${TMPDIR:-/tmp}/gc.$$.without")
	rm -f "${TMPDIR:-/tmp}/gc.$$.with" "${TMPDIR:-/tmp}/gc.$$.without"
	awk -v n="$n" -v w="$w" -v wo="$wo" 'BEGIN {
		printf "%d keys: throughput hit %.2f ns with the generation check, %.2f ns without: %.3fx (required <= 1.05)\n",
			n, w, wo, w / wo }'
	cleanup
done
