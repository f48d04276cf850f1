#!/bin/sh
# Runs every tests/tools/test-*.sh against the tools in $SHMKV_BUILD
# (default build) and prints TAP: one "ok -"/"not ok -" line per check
# (a skipped check is "ok - ... # SKIP reason"), "#" comments, and the plan
# "1..N" after the last check (TAP allows a trailing plan; the count is
# known only then).  Then a closing line "N passed, N failed", which CI
# reads.  A script that exits non-zero without reporting a failure counts
# as one failed check.  Exits non-zero when anything failed.

dir=$(dirname "$0")
B=${SHMKV_BUILD:-build}
export SHMKV_BUILD="$B"
passed=0
failed=0
skipped=0
start=$(date +%s)

for t in "$dir"/test-*.sh; do
	[ -f "$t" ] || continue
	out=$(mktemp "${TMPDIR:-/tmp}/shmkv-run.XXXXXX")
	rc=0
	timeout 300 sh "$t" >"$out" 2>&1 || rc=$?
	# The scripts' "skip - " lines become TAP skips; any other line that is
	# not a TAP line becomes a comment.
	sed -e 's/^skip - \(.*\)$/ok - \1 # SKIP/' \
	    -e '/^ok - /b' -e '/^not ok - /b' -e '/^#/b' -e 's/^/# /' "$out"
	p=$(grep -c '^ok - ' "$out")
	f=$(grep -c '^not ok - ' "$out")
	s=$(grep -c '^skip - ' "$out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $(basename "$t") exited with status $rc"
		f=1
	fi
	rm -f "$out"
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
done

echo "# tool tests: $skipped skipped, $(( $(date +%s) - start )) s"
echo "1..$((passed + failed + skipped))"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
