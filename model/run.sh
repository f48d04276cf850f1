#!/bin/sh
# Checks the Promela model of the generation switch protocol (generations.pml)
# with spin, exhaustively: each configuration of the protocol must pass, and
# each known-bad variant must be refuted (spin must find its counterexample).
# Usage: sh model/run.sh [OUTDIR]   (make model: OUTDIR = build/model)
# Each run leaves spin's input, pan's output and any counterexample trail in
# OUTDIR/NAME; replay a trail with: cd OUTDIR/NAME && spin -t -p generations.pml
set -u
out=${1:-build/model}
here=$(cd "$(dirname "$0")" && pwd)
PAN_CC=${PAN_CC:-gcc}
# SAFETY: assertions and end states only; COLLAPSE: exact state compression (no
# bitstate or hash-compact approximation); MEMLIM: stop rather than swap.
# The long exhaustive runs compile pan with -O2; the short ones and the
# refutations (which stop at the first counterexample) with -O0: compiling
# pan.c at -O2 takes longer than they run.
PAN_CFLAGS=${PAN_CFLAGS:--w -DSAFETY -DCOLLAPSE -DMEMLIM=4096}
status=0

if ! command -v spin >/dev/null 2>&1; then
	echo "model: spin not found: install it with 'apt-get install spin' (or 'make deps')" >&2
	exit 2
fi

# run NAME pass|fail -OLEVEL SPIN-DEFINES...
run() {
	name=$1 expect=$2 opt=$3
	shift 3
	dir=$out/$name
	rm -rf "$dir"
	mkdir -p "$dir"
	cp "$here/generations.pml" "$dir/"
	if ! (cd "$dir" && spin -a "$@" generations.pml >spin.log 2>&1 &&
	      $PAN_CC $opt $PAN_CFLAGS -o pan pan.c >cc.log 2>&1); then
		echo "model: $name: spin -a or $PAN_CC failed: see $dir/spin.log and $dir/cc.log" >&2
		status=1
		return
	fi
	start=$(date +%s)
	(cd "$dir" && ./pan -m100000 >pan.log 2>&1)
	secs=$(( $(date +%s) - start ))
	errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$dir/pan.log" | head -n 1)
	states=$(sed -n 's/^ *\([0-9][0-9]*\) states, stored.*/\1/p' "$dir/pan.log" | head -n 1)
	incomplete=$(grep -E 'reached -DMEMLIM|max search depth too small|out of memory' "$dir/pan.log" | head -n 1)
	what=$(grep -E 'assertion violated|invalid end state' "$dir/pan.log" | head -n 1 | sed 's/^pan:[0-9]*: *//')
	case $expect in
	pass)
		if [ "${errors:-x}" = 0 ] && [ -z "$incomplete" ]; then
			printf 'model: %-24s ok      %10s states  %4ss  (%s)\n' "$name" "$states" "$secs" "$*"
		else
			printf 'model: %-24s FAILED  %10s states  %4ss  %s%s\n' "$name" "${states:-?}" "$secs" "$incomplete" "$what" >&2
			echo "       see $dir/pan.log; replay: cd $dir && spin -t -p generations.pml" >&2
			status=1
		fi ;;
	fail)
		if [ -n "$errors" ] && [ "$errors" != 0 ]; then
			printf 'model: %-24s refuted %10s states  %4ss  %s\n' "$name" "$states" "$secs" "$what"
		else
			printf 'model: %-24s NOT REFUTED: spin found no counterexample for a known-bad variant (%s)\n' "$name" "$*" >&2
			status=1
		fi ;;
	esac
}

THREADS="-DNBUILDS=2 -DCALLS=1 -DCALLS_B=0 -DNO_CRASH"
CRASH="-DNBUILDS=2 -DCALLS=0 -DCALLS_B=2"
MIXED="-DNBUILDS=2 -DCALLS=1 -DCALLS_T1=0 -DCALLS_B=1 -DSC_RECORDS"

run threads pass -O2 $THREADS
run crash pass -O0 $CRASH
run mixed pass -O2 $MIXED
run no-tableid-check pass -O0 $CRASH -DBUG_NO_TABLEID_CHECK
run bug-no-recheck fail -O0 $THREADS -DBUG_NO_RECHECK
run bug-no-membarrier fail -O0 $THREADS -DBUG_NO_MEMBARRIER
run bug-rmid-before-publish fail -O0 $CRASH -DBUG_RMID_BEFORE_PUBLISH
run bug-record-after-shmget fail -O0 $CRASH -DBUG_RECORD_AFTER_SHMGET
run design-recovery fail -O0 $CRASH -DDESIGN_RECOVERY
run bug-check-unpinned fail -O0 $CRASH -DBUG_CHECK_UNPINNED
exit $status
