#!/bin/sh
# Generations through the tools: shmkv-load --replace is atomic (bad input,
# SIGINT, SIGTERM and SIGKILL mid-build leave the old data serving, and
# nothing leaks); shmkv grow; stat and ls show the generation, its data
# segment and older generations an idle reader still holds; rm and chmod
# reach every segment; a cdb dump carries the table's geometry and mode
# and gives the same table back.
. "$(dirname "$0")/lib.sh"

HOLD=$B/shmkv-test-hold

# A field of `shmkv stat --json` (numbers and strings; the first match).
jfield() {
	"$SHMKV" stat --json "$1" | grep -o "\"$2\":[^,}]*" | head -1 | cut -d: -f2 | tr -d '"'
}
gen() { jfield "$1" generation; }
data_id() { jfield "$1" data_shmid; }
# Whether a segment id exists.
seg_exists() { awk -v id="$1" 'NR > 1 && $2 == id { f = 1 } END { exit !f }' /proc/sysvipc/shm; }
# Another process's hashtable_segments() (any `shmkv ls` or `stat` of the
# same user, another test run) attaches every removed key-0 segment for a
# moment to read whose it is.  So a segment this test's processes let go
# can stay a moment longer, held by it, and a holder list can show one
# holder too many just then.  These wait about 1 s for such a moment to
# pass, and for nothing else: whatever still holds on after that fails.
# Whether segment id $1 is freed within about 1 s.
seg_gone() {
	i=0
	while seg_exists "$1"; do
		[ $i -ge 100 ] && return 1
		sleep 0.01
		i=$((i + 1))
	done
}
# Whether every key-0 segment created by process $1 is freed within about 1 s.
pid_segs_gone() {
	i=0
	while [ -n "$(segs_of_pid "$1")" ]; do
		[ $i -ge 100 ] && return 1
		sleep 0.01
		i=$((i + 1))
	done
}
# run_until PATTERN CMD...: runs CMD (as run does) until its output has a
# line matching PATTERN (grep), for up to about 1 s; grep's status.
run_until() {
	pattern=$1
	shift
	i=0
	while :; do
		run "$@"
		grep -q "$pattern" "$T/out" && return 0
		[ $i -ge 20 ] && return 1
		sleep 0.05
		i=$((i + 1))
	done
}
# The perms column of a segment id, octal.
seg_perms() { awk -v id="$1" 'NR > 1 && $2 == id { print $3 }' /proc/sysvipc/shm; }

# Waits (up to 30 s) until process $1 has created a key-0 segment (its
# build is under way) and prints its id; fails if the process ended first.
wait_for_build() {
	i=0
	while [ $i -lt 3000 ]; do
		s=$(segs_of_pid "$1")
		if [ -n "$s" ]; then
			echo "$s"
			return 0
		fi
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.01
		i=$((i + 1))
	done
	return 1
}

# ---- --replace: the new data replaces the old, absent keys are gone --------------
printf 'a\t1\nb\t2\nc\t3\n' >"$T/old.tsv"
printf 'a\tnew1\nd\tnew4\n' >"$T/new.tsv"
K=$(new_key)
"$LOAD" -q -K 8 -V 8 -n 100 "$K" "$T/old.tsv"
G0=$(gen "$K")
D0=$(data_id "$K")
[ -n "$G0" ] && [ -n "$D0" ] && [ "$D0" -ge 0 ] && pass "stat --json gives the generation ($G0) and data segment ($D0)" \
	|| { fail "stat --json generation/data_shmid: '$G0' '$D0'"; "$SHMKV" stat --json "$K"; }
expect 0 "--replace loads" "$LOAD" -q --replace "$K" "$T/new.tsv"
run "$SHMKV" dump -f tsv "$K"
LC_ALL=C sort "$T/out" >"$T/got"
LC_ALL=C sort "$T/new.tsv" >"$T/want"
same "--replace: the table holds exactly the new input" "$T/want" "$T/got"
G1=$(gen "$K")
[ "$G1" -eq $((G0 + 1)) ] && pass "--replace: generation $G0 -> $G1" || fail "--replace: generation $G0 -> $G1"
seg_gone "$D0" && pass "--replace: the old data segment is removed at commit" \
	|| fail "--replace: the old data segment $D0 is still there (no reader held it)"
D1=$(data_id "$K")
[ "$D1" != "$D0" ] && seg_exists "$D1" && pass "--replace: a new data segment ($D1)" || fail "--replace: data segment $D0 -> $D1"
expect 0 "--replace -v prints a summary" "$LOAD" -v --replace "$K" "$T/old.tsv"
err_has "--replace summary names the generations" "in generation $((G1 + 1)) (replacing generation $G1 of 2 keys)"

# ---- --replace creating a table: the same table as a plain load, built privately ----
awk 'BEGIN { for (i = 1; i <= 2000; i++) printf "n%d\t%d\n", i, i }' >"$T/2000.tsv"
NA=$(new_key)
NB=$(new_key)
"$LOAD" -q -M 0644 "$NA" "$T/2000.tsv"
expect 0 "--replace creates a missing table" "$LOAD" -q -M 0644 --replace "$NB" "$T/2000.tsv"
entries "$NA" >"$T/a"
entries "$NB" >"$T/b"
same "--replace new table: every record" "$T/a" "$T/b"
diffs=""
for f in key_size value_size buckets slots max_count max_load mode count segment_bytes; do
	[ "$(jfield "$NA" $f)" = "$(jfield "$NB" $f)" ] || diffs="$diffs $f:$(jfield "$NA" $f)/$(jfield "$NB" $f)"
done
[ -z "$diffs" ] && pass "--replace new table: the geometry and mode of a plain load" || fail "--replace new table differs in:$diffs"
[ "$(seg_perms "$(data_id "$NB")")" = 644 ] && pass "--replace new table: its data segment has the table's mode" \
	|| fail "--replace new table: data segment mode $(seg_perms "$(data_id "$NB")")"
NC=$(new_key)
expect 4 "--replace creating a table too small for the input" "$LOAD" --replace -c 4K "$NC" "$T/2000.tsv"
err_has "--replace too small: message" "too small for the input" "the new table is removed"
[ -z "$(seg_id "$NC")" ] && pass "--replace too small: no table left" || fail "--replace too small: a table is left at $NC"

# ---- --replace of bin inputs: the same table as plain loads, duplicates and widths ----
# A clean bin input goes to the builder in runs, straight from the mapped
# file; a bad record, --dups first or --shard take the record-by-record
# walk.  Each must give what a plain load of the same input gives.
awk 'BEGIN { for (i = 1; i <= 3000; i++) printf "k%07dv%07d", i, i }' >"$T/a.bin"
awk 'BEGIN { for (i = 1; i <= 100; i++) printf "k%07dw%07d", i * 7, i }' >"$T/b.bin"
awk 'BEGIN { for (i = 1; i <= 2000; i++) printf "k%011d%04d", i, i % 10000 }' >"$T/c.bin"
cp "$T/a.bin" "$T/bad.bin"
printf 'k000' >>"$T/bad.bin"
for c in "last|-K 8 -V 8|a.bin b.bin" "first|-K 8 -V 8 --duplicates first|a.bin b.bin" \
         "widths|-K 12 -V 4|c.bin" "skip-bad|-K 8 -V 8 --skip-bad|bad.bin b.bin"; do
	name=${c%%|*}; rest=${c#*|}; opts=${rest%%|*}; files=${rest#*|}
	PA=$(new_key)
	PB=$(new_key)
	# shellcheck disable=SC2086
	"$LOAD" -q -f bin $opts "$PA" $(for f in $files; do echo "$T/$f"; done) 2>/dev/null
	# shellcheck disable=SC2086
	"$LOAD" -q -f bin $opts "$PB" "$T/c.bin" # other records first: the replace must drop them
	# shellcheck disable=SC2086
	expect 0 "--replace bin ($name) loads" "$LOAD" -q --replace -f bin $opts "$PB" \
		$(for f in $files; do echo "$T/$f"; done)
	entries "$PA" >"$T/a"
	entries "$PB" >"$T/b"
	[ -s "$T/a" ] && same "--replace bin ($name): the records of a plain load" "$T/a" "$T/b" \
		|| fail "--replace bin ($name): the plain load gave no records"
	[ "$(jfield "$PA" count)" = "$(jfield "$PB" count)" ] && pass "--replace bin ($name): same count" \
		|| fail "--replace bin ($name): count $(jfield "$PA" count) / $(jfield "$PB" count)"
	expect 0 "--replace bin ($name): shmkv verify is clean" "$SHMKV" verify "$PB"
	"$SHMKV" rm "$PA"
	"$SHMKV" rm "$PB"
done

# ---- --replace with a bad line: nothing changes, exit 3 ----------------------------------
entries "$K" >"$T/before"
G=$(gen "$K")
printf 'x\t1\ny\t2\nthis key is far too long\t3\n' >"$T/bad.tsv"
expect 3 "--replace with a bad line exits 3" "$LOAD" --replace "$K" "$T/bad.tsv"
err_has "--replace bad line: message" "bad.tsv:3: key:" "nothing was written"
entries "$K" >"$T/after"
same "--replace bad line: the old data is intact" "$T/before" "$T/after"
[ "$(gen "$K")" = "$G" ] && pass "--replace bad line: same generation" || fail "--replace bad line: generation moved"

# ---- --replace with an empty input: refused unless --allow-empty ----------------------
: >"$T/empty.tsv"
expect 3 "--replace with an empty input is refused" "$LOAD" --replace "$K" "$T/empty.tsv"
err_has "--replace empty: message" "would empty the table" "--allow-empty"
entries "$K" >"$T/after"
same "--replace empty: the old data is intact" "$T/before" "$T/after"

# ---- --replace needing more room: the new generation is sized for the input --------
awk 'BEGIN { for (i = 1; i <= 500; i++) printf "k%d\t%d\n", i, i }' >"$T/500.tsv"
expect 0 "--replace with more keys than the table's limit" "$LOAD" --replace "$K" "$T/500.tsv"
err_has "--replace larger: a note says the generation is sized for the input" "sized for"
[ "$(jfield "$K" count)" -eq 500 ] && pass "--replace larger: 500 keys" || fail "--replace larger: count $(jfield "$K" count)"
expect 0 "--replace -n sizes the new generation" "$LOAD" -q --replace -n 5000 "$K" "$T/500.tsv"
[ "$(jfield "$K" max_count)" -ge 5000 ] && pass "--replace -n 5000: room for 5000" || fail "--replace -n: max_count $(jfield "$K" max_count)"
expect 2 "--replace with --excl is a usage error" "$LOAD" --replace -x "$K" "$T/500.tsv"

# ---- a big table and a big input for the interruptions ----------------------------------
N=1500000
BIG=$(new_key)
awk 'BEGIN { for (i = 1; i <= 1000; i++) printf "%d\t%d\n", i, i }' >"$T/small.tsv"
"$LOAD" -q -E u64 -n 1000 "$BIG" "$T/small.tsv"
entries "$BIG" >"$T/big-before"
GB=$(gen "$BIG")
head -c $((N * 16)) /dev/urandom >"$T/big.bin"

# SIGINT and SIGTERM mid-build: the build is dropped, the loader dies of the
# signal (128+N), the old generation serves on, and its pending segment is gone.
for sig in INT TERM; do
	"$LOAD" -q --replace -f bin "$BIG" "$T/big.bin" 2>"$T/err" &
	P=$!
	track_pid "$P"
	if wait_for_build "$P" >/dev/null; then
		kill -$sig "$P"
		RC=0
		wait "$P" 2>/dev/null || RC=$?
		case $sig in INT) want=130 ;; TERM) want=143 ;; esac
		[ "$RC" -eq "$want" ] && pass "SIG$sig mid-build: exit $want" || { fail "SIG$sig mid-build: exit $RC, wanted $want"; show; }
		err_has "SIG$sig mid-build: message" "interrupted; the new generation is dropped"
		entries "$BIG" >"$T/big-after"
		same "SIG$sig mid-build: the old data is intact" "$T/big-before" "$T/big-after"
		[ "$(gen "$BIG")" = "$GB" ] && pass "SIG$sig mid-build: same generation" || fail "SIG$sig: generation moved"
		pid_segs_gone "$P" && pass "SIG$sig mid-build: its pending segment is removed" \
			|| fail "SIG$sig mid-build: segments of pid $P left: $(segs_of_pid "$P")"
	else
		wait "$P"
		skip "SIG$sig mid-build: the load ended before its build was seen"
	fi
done

# SIGKILL mid-build: the old generation serves on; the pending segment stays
# until the next writer or `shmkv verify --repair` removes it.
"$LOAD" -q --replace -f bin "$BIG" "$T/big.bin" 2>/dev/null &
P=$!
track_pid "$P"
if PEND=$(wait_for_build "$P"); then
	kill -KILL "$P"
	wait "$P" 2>/dev/null
	entries "$BIG" >"$T/big-after"
	same "SIGKILL mid-build: the old data is intact" "$T/big-before" "$T/big-after"
	[ "$(gen "$BIG")" = "$GB" ] && pass "SIGKILL mid-build: same generation" || fail "SIGKILL: generation moved"
	run "$SHMKV" stat "$BIG"
	if grep -q "^pending .*id $PEND" "$T/out"; then pass "stat shows the dead build's pending segment"; else fail "stat lacks the pending segment $PEND"; show; fi
	expect 0 "verify --repair after a killed build" "$SHMKV" verify --repair "$BIG"
	err_has "verify --repair names the segment it removed" "removed segment id $PEND" "of a builder that died (pid $P)"
	pid_segs_gone "$P" && pass "SIGKILL mid-build: verify --repair removed the pending segment" \
		|| fail "SIGKILL mid-build: key-0 segments of the killed loader left: $(segs_of_pid "$P")"
	expect 0 "verify after the repair" "$SHMKV" verify "$BIG"
else
	wait "$P"
	skip "SIGKILL mid-build: the load ended before its build was seen"
fi

# SIGKILL again; this time the next writer (a put) cleans up.
"$LOAD" -q --replace -f bin "$BIG" "$T/big.bin" 2>/dev/null &
P=$!
track_pid "$P"
if wait_for_build "$P" >/dev/null; then
	kill -KILL "$P"
	wait "$P" 2>/dev/null
	expect 0 "a put after a killed build" "$SHMKV" put -E u64 "$BIG" 5000 5
	pid_segs_gone "$P" && pass "SIGKILL mid-build: the next writer removed the pending segment" \
		|| fail "SIGKILL mid-build: the next writer left $(segs_of_pid "$P")"
else
	wait "$P"
	skip "SIGKILL mid-build (next writer): the load ended before its build was seen"
fi

# Without --replace, an interrupted load into an existing table keeps what it
# wrote, and says that --replace would have been all or nothing.
UP=$(new_key)
"$SHMKV" create -K 8 -V 8 -n $((2 * N)) "$UP"
"$SHMKV" put "$UP" first 1
"$LOAD" -q -f bin "$UP" "$T/big.bin" 2>"$T/err" &
P=$!
track_pid "$P"
i=0
while [ $i -lt 3000 ] && kill -0 "$P" 2>/dev/null && [ "$(jfield "$UP" inserts)" -le 1 ]; do sleep 0.01; i=$((i + 1)); done
if kill -INT "$P" 2>/dev/null; then
	RC=0
	wait "$P" || RC=$?
	if [ "$RC" -eq 130 ]; then
		pass "SIGINT during an upsert load: exit 130"
		err_has "SIGINT during an upsert load: points at --replace" "interrupted after writing" "shmkv-load --replace\` loads all or nothing"
	else
		skip "SIGINT during an upsert load: the load ended first (exit $RC)"
	fi
else
	wait "$P"
	skip "SIGINT during an upsert load: the load ended before the signal"
fi

# A whole big replace, for the record: every key arrives.
expect 0 "--replace of $N binary records" "$LOAD" -q --replace -f bin "$BIG" "$T/big.bin"
[ "$(jfield "$BIG" count)" -eq "$N" ] && pass "big --replace: $N keys" || fail "big --replace: count $(jfield "$BIG" count)"

# A dump that a replace overtakes says so (exit 4) rather than mix two
# generations: it is held blocked on a FIFO nobody reads while the replace
# commits, then let go.
mkfifo "$T/fifo"
"$SHMKV" dump -f bin "$BIG" >"$T/fifo" 2>"$T/dump.err" &
DP=$!
exec 3<"$T/fifo"
sleep 0.3
"$LOAD" -q --replace -f bin "$BIG" "$T/big.bin"
cat <&3 >/dev/null
exec 3<&-
RC=0
wait "$DP" || RC=$?
cp "$T/dump.err" "$T/err"
[ "$RC" -eq 4 ] && pass "a dump overtaken by a replace exits 4" || { fail "overtaken dump: exit $RC"; show; }
err_has "overtaken dump: message" "was replaced (generation" "dump again"

# ---- grow ------------------------------------------------------------------------------
GK=$(new_key)
awk 'BEGIN { for (i = 1; i <= 80; i++) printf "g%d\t%d\n", i, i }' >"$T/80.tsv"
"$LOAD" -q -K 8 -V 8 -n 80 "$GK" "$T/80.tsv"
MAX=$(jfield "$GK" max_count)
i=81
while [ "$(jfield "$GK" count)" -lt "$MAX" ]; do "$SHMKV" put "$GK" "g$i" "$i"; i=$((i + 1)); done
expect 4 "a full table refuses a new key" "$SHMKV" put "$GK" newkey 1
err_has "the refusal points at shmkv grow" "shmkv grow"
entries "$GK" >"$T/g-before"
G=$(gen "$GK")
expect 0 "grow --entries" "$SHMKV" grow -v --entries 10000 "$GK"
err_has "grow -v reports" "grown to generation $((G + 1))"
[ "$(jfield "$GK" max_count)" -ge 10000 ] && pass "grow: room for 10000 keys" || fail "grow: max_count $(jfield "$GK" max_count)"
entries "$GK" >"$T/g-after"
same "grow: every key is kept" "$T/g-before" "$T/g-after"
expect 0 "after grow, a new key fits" "$SHMKV" put "$GK" newkey 1
expect 0 "grow --bytes" "$SHMKV" grow --bytes 4M "$GK"
B4=$(jfield "$GK" segment_bytes)
[ "$(jfield "$GK" max_count)" -gt 10000 ] && pass "grow --bytes 4M: more room" || fail "grow --bytes: max_count $(jfield "$GK" max_count)"
expect 2 "grow below the key count is refused" "$SHMKV" grow --entries 3 "$GK"
err_has "grow below the count: message" "less than the"
expect 2 "grow needs --entries or --bytes" "$SHMKV" grow "$GK"
expect 1 "grow of a missing table" "$SHMKV" grow --entries 10 "$(new_key)"
expect 0 "verify after grows" "$SHMKV" verify "$GK"

# ---- an idle reader pins an old generation: stat and ls show it --------------------------
if [ -x "$HOLD" ]; then
	HK=$(new_key)
	"$LOAD" -q -K 8 -V 8 "$HK" "$T/old.tsv"
	OLD=$(data_id "$HK")
	"$HOLD" "$HK" "$T/hold.state" &
	HP=$!
	i=0; while [ ! -s "$T/hold.state" ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i + 1)); done
	"$LOAD" -q --replace "$HK" "$T/new.tsv"
	NEW=$(data_id "$HK")
	seg_exists "$OLD" && pass "held: the old data segment $OLD stays while a reader is attached" \
		|| fail "held: old segment $OLD is gone although a reader holds it"
	if run_until "^held .*id $OLD, .*held by 1 process (pid $HP)" "$SHMKV" stat "$HK"; then
		pass "stat shows the held generation, its bytes, nattch and the reader's pid"
	else
		fail "stat lacks the held generation $OLD (reader pid $HP)"; show
	fi
	grep -q "^generation .*data segment id $NEW" "$T/out" && pass "stat shows the current data segment" || { fail "stat generation line"; show; }
	run_until "{\"id\":$OLD,\"role\":\"retired\",[^}]*\"nattch\":1,[^}]*\"holders\":\[$HP\]}" \
		"$SHMKV" stat --json "$HK" \
		&& pass "stat --json lists the retired segment" || { fail "stat --json retired segment"; show; }
	if run_until "^  \`- *$OLD .*held by 1 process (pid $HP)" "$SHMKV" ls &&
	   grep -q "^0x.* $NEW " "$T/out"; then
		pass "ls shows the data segment and the held one under the table"
	else
		fail "ls lacks data segment $NEW or held $OLD"; show
	fi
	run "$SHMKV" ls --json
	grep -q "\"data_id\":$NEW," "$T/out" && pass "ls --json gives the data segment id" || { fail "ls --json data_id"; show; }
	# Every key-0 segment of the table maps back to it in ls.
	for id in $(table_seg_ids "$HK"); do
		if [ "$(awk -v id="$id" 'NR > 1 && $2 == id { print $1 }' /proc/sysvipc/shm)" = 0 ]; then
			"$SHMKV" ls | grep -q " $id " || fail "ls does not show key-0 segment $id"
		fi
	done
	pass "each key-0 segment of the table is named in ls"
	# The reader calls again: it follows the new generation and lets the old go.
	kill -USR1 "$HP"
	i=0; while seg_exists "$OLD" && [ $i -lt 500 ]; do sleep 0.01; i=$((i + 1)); done
	seg_exists "$OLD" && fail "held: the old segment stays after the reader's next call" \
		|| pass "held: freed when the reader calls again"
	[ "$(cat "$T/hold.state")" = "$(gen "$HK")" ] && pass "the reader followed the new generation" \
		|| fail "the reader reads generation $(cat "$T/hold.state"), not $(gen "$HK")"
	kill -TERM "$HP"
	wait "$HP"

	# chmod reaches the data segment; rm removes every segment.
	expect 0 "chmod 0640" "$SHMKV" chmod 0640 "$HK"
	[ "$(seg_perms "$NEW")" = "640" ] && pass "chmod changes the data segment" || fail "chmod: data segment perms $(seg_perms "$NEW")"
	[ "$(jfield "$HK" mode)" = "0640" ] && pass "chmod changes the root" || fail "chmod: root mode $(jfield "$HK" mode)"
	IDS=$(table_seg_ids "$HK")
	expect 0 "rm -v" "$SHMKV" rm -v "$HK"
	err_has "rm -v names every segment" "(root)" "$NEW (current generation"
	left=""
	for id in $IDS; do seg_gone "$id" || left="$left $id"; done
	[ -z "$left" ] && pass "rm removes every segment of the table" || fail "rm left segments:$left"
else
	skip "held generations: $HOLD is not built (make tests)"
fi

# ---- dump | load gives back the same table ---------------------------------------------
SRC=$(new_key)
"$SHMKV" create -K 8 -V 8 -n 700 -m 0.7 -M 0644 --empty-key 0102030405060708 --deleted-key 0a0b0c0d0e0f0001 "$SRC"
awk 'BEGIN { for (i = 1; i <= 300; i++) printf "key%05d\tv%d\n", i, i }' | "$LOAD" -q "$SRC"
"$SHMKV" dump -o "$T/src.cdb" "$SRC"
head -1 "$T/src.cdb" | grep -q '^+9,[0-9]*:shmkv-met->shmkv-meta 1 key_size=8 value_size=8 capacity=[0-9]* max_load=0.69999' \
	&& pass "the cdb dump starts with the metadata record (key of 9 bytes)" || { fail "metadata record"; head -c 300 "$T/src.cdb"; }
grep -q 'mode=0644 empty=0102030405060708 deleted=0a0b0c0d0e0f0001 entries=300' "$T/src.cdb" \
	&& pass "the metadata holds mode, sentinels and entries" || fail "metadata fields"
DST=$(new_key)
expect 0 "dump | shmkv-load into a new table" sh -c "'$LOAD' '$DST' < '$T/src.cdb'"
diffs=""
for f in key_size value_size buckets slots max_count max_load mode count segment_bytes; do
	a=$(jfield "$SRC" $f) b=$(jfield "$DST" $f)
	[ "$a" = "$b" ] || diffs="$diffs $f:$a/$b"
done
[ -z "$diffs" ] && pass "restore keeps widths, buckets, slots, max_count, load limit, mode, count, size" 	|| fail "restore differs in:$diffs"
entries "$SRC" >"$T/a"
entries "$DST" >"$T/b"
same "restore: the same entries (the metadata is not loaded as data)" "$T/a" "$T/b"
"$SHMKV" dump -o "$T/dst.cdb" "$DST"
head -1 "$T/src.cdb" | sed 's/ generation=[0-9]*$//' >"$T/a"
head -1 "$T/dst.cdb" | sed 's/ generation=[0-9]*$//' >"$T/b"
same "restore: the copy's metadata equals the original's (capacity, sentinels too)" "$T/a" "$T/b"
DST2=$(new_key)
expect 0 "the command line overrides the metadata" "$LOAD" -q -M 0600 -n 5000 "$DST2" "$T/src.cdb"
[ "$(jfield "$DST2" mode)" = "0600" ] && [ "$(jfield "$DST2" max_count)" -ge 5000 ] \
	&& pass "restore with -M 0600 -n 5000: mode and size from the command line" || fail "override: mode $(jfield "$DST2" mode) max_count $(jfield "$DST2" max_count)"
DST3=$(new_key)
expect 0 "the metadata with other widths (-K 12)" "$LOAD" -K 12 "$DST3" "$T/src.cdb"
err_has "other widths: a note" "not taken from the dump"
[ "$(jfield "$DST3" key_size)" = 12 ] && [ "$(jfield "$DST3" count)" = 300 ] && pass "other widths: 300 keys of 12 bytes" || fail "other widths"
expect 0 "--replace from a dump into an existing table ignores its metadata" "$LOAD" -q --replace "$DST" "$T/src.cdb"
[ "$(jfield "$DST" count)" = 300 ] && pass "--replace from a dump: 300 keys" || fail "--replace from dump: count"
run "$SHMKV" dump -f tsv "$SRC"
grep -q shmkv-meta "$T/out" && fail "a tsv dump carries metadata" || pass "tsv dumps carry no metadata"
v='shmkv-meta 1 key_size=8'
printf '+9,%d:shmkv-met->%s\n+1,1:a->b\n\n' ${#v} "$v" >"$T/badmeta.cdb"
expect 3 "a malformed metadata record is refused" "$LOAD" "$(new_key)" "$T/badmeta.cdb"
err_has "malformed metadata: message" "malformed shmkv-meta record (field value_size)"

if command -v cdb >/dev/null 2>&1; then
	expect 0 "tinycdb builds a database from a dump with metadata" cdb -c "$T/src.db" "$T/src.cdb"
	run cdb -q "$T/src.db" key00017
	printf 'v17\000\000\000\000\000' >"$T/want"
	out_is "cdb -q answers from it" "$T/want"
	cdb -d "$T/src.db" >"$T/redump.cdb"
	same "cdb -d gives back the dump, metadata included" "$T/src.cdb" "$T/redump.cdb"
else
	skip "tinycdb's cdb is not installed"
fi

finish
