# Helpers for the tool tests; sourced by each tests/tools/test-*.sh.
#
# Every table a test makes is named by a key from new_key (a numeric key no
# segment uses yet) or by a temp file from new_path; cleanup removes the
# segments behind exactly those keys (each table's root and its data
# segments, found with `shmkv stat --json`), and the key-0 segments left
# by processes passed to track_pid, by id, on any exit.  Results are
# printed as "ok - ...", "not ok - ...", "skip - ..." lines that run.sh
# counts.

set -u

B=${SHMKV_BUILD:-build}
case $B in /*) ;; *) B=$(pwd)/$B ;; esac
SHMKV=$B/shmkv
LOAD=$B/shmkv-load
TESTNAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/shmkv-tooltest.XXXXXX")
chmod 755 "$T"
PASS=0
FAIL=0
SKIP=0

# The IPC key glibc's ftok(path, 1) gives: proj 1, device low byte, inode.
ftok_key() {
	set -- $(stat -L -c '%d %i' "$1")
	printf '0x%08x' $(( (1 << 24) | (($1 & 0xff) << 16) | ($2 & 0xffff) ))
}

# The id of the segment at a key (0x...), or nothing.
seg_id() {
	awk -v k="$(printf '%d' "$1")" 'NR > 1 { kk = $1; if (kk < 0) kk += 4294967296; if (kk == k + 0) print $2 }' /proc/sysvipc/shm
}

# A numeric key with no segment behind it, remembered for cleanup (in a
# file: callers run this in a $(...) subshell).
new_key() {
	while :; do
		n=$(cat "$T/seq" 2>/dev/null || echo 0)
		n=$((n + 1))
		echo "$n" >"$T/seq"
		k=$(printf '0x%08x' $(( 0x5f000000 | (($$ & 0xff) << 16) | (n & 0xffff) )))
		if [ -z "$(seg_id "$k")" ]; then
			echo "$k" >>"$T/keys"
			echo "$k"
			return
		fi
	done
}

# A fresh temp file whose ftok key has no segment, remembered for cleanup.
new_path() {
	while :; do
		p=$(mktemp "$T/table.XXXXXX")
		k=$(ftok_key "$p")
		if [ -z "$(seg_id "$k")" ]; then
			echo "$k" >>"$T/keys"
			echo "$p"
			return
		fi
		rm -f "$p"
	done
}

# Every segment id of the table at a key: the root and its data segments
# (key 0 in ipcs -m), as `shmkv stat --json` lists them.
table_seg_ids() {
	"$SHMKV" stat --json "$1" 2>/dev/null | grep -o '"id":[0-9]*' | cut -d: -f2
}

# Key-0 segments a process created (a build it left when killed): those
# whose creator pid is $1 and whose change time is not before $2 (seconds
# since the epoch; default: when track_pid recorded it), so that a segment
# left long ago by an earlier process with the same pid is not taken.
segs_of_pid() {
	since=${2:-$(awk -v p="$1" '$1 == p { print $2 }' "$T/pids" 2>/dev/null | tail -1)}
	awk -v p="$1" -v t="${since:-0}" 'NR > 1 && $1 == 0 && $5 == p && $14 >= t { print $2 }' /proc/sysvipc/shm
}

# Remembers a process the test started (just before: the time is taken
# now, less a second) and may kill, so that cleanup removes any segment it
# left.
track_pid() { echo "$1 $(( $(date +%s) - 1 ))" >>"$T/pids"; }

cleanup() {
	for k in $(cat "$T/keys" 2>/dev/null); do
		id=$(seg_id "$k")
		[ -n "$id" ] || continue
		for d in $(table_seg_ids "$k"); do
			[ "$d" = "$id" ] || ipcrm -m "$d" 2>/dev/null
		done
		ipcrm -m "$id" 2>/dev/null
	done
	[ -f "$T/pids" ] && while read -r p t; do
		for d in $(segs_of_pid "$p" "$t"); do
			ipcrm -m "$d" 2>/dev/null
		done
	done <"$T/pids"
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

pass() { PASS=$((PASS + 1)); echo "ok - $TESTNAME: $*"; }
fail() { FAIL=$((FAIL + 1)); echo "not ok - $TESTNAME: $*"; }
# SHMKV_NO_SKIP=1 (CI sets it) turns a skip into a failure: a machine that
# should have every dependency must not pass by running fewer tests.
skip() {
	if [ "${SHMKV_NO_SKIP:-0}" = 1 ]; then
		fail "skipped, but SHMKV_NO_SKIP=1: $*"
		return
	fi
	SKIP=$((SKIP + 1)); echo "skip - $TESTNAME: $*"
}

# Shows the last command's output under a failure.
show() {
	sed 's/^/#   stdout: /' "$T/out" | head -20
	sed 's/^/#   stderr: /' "$T/err" | head -20
}

# run CMD...: runs it with stdout in $T/out, stderr in $T/err; sets RC.
run() {
	RC=0
	"$@" >"$T/out" 2>"$T/err" || RC=$?
}

# expect RC DESC CMD...: runs CMD and checks its exit status.
expect() {
	want=$1 desc=$2
	shift 2
	run "$@"
	if [ "$RC" -eq "$want" ]; then
		pass "$desc"
	else
		fail "$desc (exit $RC, wanted $want)"
		show
	fi
}

# err_has DESC PATTERN...: the last stderr matches every (fixed) pattern.
err_has() {
	desc=$1
	shift
	for pat in "$@"; do
		if ! grep -qF -- "$pat" "$T/err"; then
			fail "$desc: stderr lacks '$pat'"
			show
			return
		fi
	done
	pass "$desc"
}

# out_is DESC FILE: the last stdout equals FILE.
out_is() {
	if cmp -s "$T/out" "$2"; then
		pass "$1"
	else
		fail "$1: output differs"
		diff "$2" "$T/out" | head -10 | sed 's/^/#   /'
	fi
}

# same DESC FILE1 FILE2
same() {
	if cmp -s "$2" "$3"; then
		pass "$1"
	else
		fail "$1: $2 and $3 differ"
		diff "$2" "$3" | head -10 | sed 's/^/#   /'
	fi
}

# Every stderr line starts with the tool's name.
err_prefixed() {
	if grep -qv -e '^shmkv: ' -e '^shmkv-load: ' "$T/err"; then
		fail "$1: stderr lines without the tool's name"
		show
	else
		pass "$1"
	fi
}

# A table's entries as sorted "keyhex valuehex" lines (via tsv hex dump).
entries() {
	"$SHMKV" dump -f tsv -E hex "$1" | LC_ALL=C sort
}

# Bytes of a file as hex, one record of $2 bytes a line, sorted.
hex_records() {
	od -An -v -tx1 -w"$2" "$1" | tr -d ' ' | LC_ALL=C sort
}

finish() {
	echo "# $TESTNAME: $PASS passed, $FAIL failed, $SKIP skipped"
	[ "$FAIL" -eq 0 ]
	exit $?
}
