#!/bin/sh
# Runs every tests/tools/test-*.sh against the tools in $SHMKV_BUILD
# (default build) and prints a closing line "N passed, N failed".
# Each script prints "ok -", "not ok -" and "skip -" lines; a script that
# exits non-zero without reporting a failure counts as one failed check.
# Exits non-zero when anything failed.

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
	cat "$out"
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
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
