#!/bin/sh
# make fuzz: runs each fuzz target for FUZZ_SECONDS seconds, reports what
# each did, fails if any found something.  The libFuzzer targets log the
# segments they create ("shmid key" lines); whatever is left of those after
# a target ends (libFuzzer leaves with _exit after a finding) is removed here,
# by id, and only if the id still carries the key that was logged with it.
set -u
B=${SHMKV_BUILD:-build}
S=${FUZZ_SECONDS:-200}
work=$B/fuzz/work
mkdir -p "$work" "$B/fuzz/findings"
failed=""
summary=""

remove_logged_segments() {
	[ -f "$1" ] || return 0
	while read -r id key; do
		if ipcs -m | awk -v id="$id" -v key="$key" '$2 == id && $1 == key { f = 1 } END { exit !f }'
		then
			ipcrm -m "$id" && echo "run.sh: removed segment $id ($key) left by a fuzz target"
		fi
	done < "$1"
	rm -f "$1"
}

for t in fuzz-load fuzz-image fuzz-serve; do
	mkdir -p "$work/corpus-$t"
	log="$work/$t.log"
	SHMKV_FUZZ_SEGMENTS="$work/$t.segments" "$B/fuzz/$t" -max_total_time="$S" -timeout=10 \
	    -print_final_stats=1 -artifact_prefix="$B/fuzz/findings/$t-" \
	    "$work/corpus-$t" "tests/fuzz/corpus/$t" > "$log" 2>&1
	rc=$?
	remove_logged_segments "$work/$t.segments"
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	summary="$summary
  $t: ${runs:-?} inputs in ${S} s, exit $rc, corpus $(ls "$work/corpus-$t" | wc -l) files"
	if [ "$rc" != 0 ]; then
		failed="$failed $t"
		echo "run.sh: $t found something (exit $rc); its log: $log; the input: $B/fuzz/findings/$t-*"
		grep -E 'ERROR|SUMMARY|fuzz-image:|Test unit written' "$log" | head -20
	fi
done

log="$work/corrupt.log"
"$B/fuzz/shmkv-fuzz-corrupt" --seconds "$S" > "$log" 2>&1
rc=$?
grep FINDING "$log" | head -20
summary="$summary
  shmkv-fuzz-corrupt: $(tail -n 1 "$log" | sed 's/^shmkv-fuzz-corrupt: //'), exit $rc ($(head -n 1 "$log" | sed 's/^shmkv-fuzz-corrupt: //'))"
[ "$rc" != 0 ] && failed="$failed shmkv-fuzz-corrupt"

echo "fuzz: $S s per target:$summary"
if [ -n "$failed" ]; then
	echo "fuzz: FAILED:$failed"
	exit 1
fi
echo "fuzz: no findings"
