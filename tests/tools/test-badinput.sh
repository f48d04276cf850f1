#!/bin/sh
# Bad input: each case names the file and line (or record and byte offset)
# and what is wrong, exits 3, and leaves the table byte for byte as it was
# (shmkv dump and the header counters compared before and after).  A table
# the failed load would have created does not exist afterwards.  --skip-bad
# loads the good records and reports the bad ones.
. "$(dirname "$0")/lib.sh"

# A text table of 8-byte keys and values with 50 entries and room for more.
i=0
while [ $i -lt 50 ]; do
	printf 'k%d\tv%d\n' $i $i
	i=$((i + 1))
done >"$T/base.tsv"
TAB=$(new_key)
"$LOAD" -q -K 8 -V 8 -n 1000 "$TAB" "$T/base.tsv" || fail "setup load"
"$SHMKV" dump "$TAB" >"$T/before"
counters() { "$SHMKV" stat --json "$1" | sed 's/.*"inserts":\([0-9]*\),"updates":\([0-9]*\).*/\1 \2/'; }
COUNTERS=$(counters "$TAB")

unchanged() {
	"$SHMKV" dump "$TAB" >"$T/after"
	if cmp -s "$T/before" "$T/after" && [ "$(counters "$TAB")" = "$COUNTERS" ]; then
		pass "$1: table unchanged"
	else
		fail "$1: table changed"
	fi
}

# bad DESC FILE MESSAGE... [-- LOAD OPTIONS]: loading FILE into TAB exits 3
# with every MESSAGE on stderr, and TAB is unchanged.
bad() {
	desc=$1 file=$2
	shift 2
	msgs=""
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do
		msgs="$msgs
$1"
		shift
	done
	[ $# -gt 0 ] && shift
	run "$LOAD" "$@" "$TAB" "$file"
	if [ "$RC" -ne 3 ]; then
		fail "$desc: exit $RC, wanted 3"
		show
	else
		ok=1
		echo "$msgs" | while IFS= read -r m; do
			[ -z "$m" ] && continue
			grep -qF -- "$m" "$T/err" || { echo "#   missing: $m"; exit 1; }
		done || ok=0
		if [ $ok -eq 1 ]; then pass "$desc: message"; else fail "$desc: message"; show; fi
	fi
	unchanged "$desc"
}

printf 'a\t1\nb\t2\n123456789\tv\n' >"$T/longkey.tsv"
bad "key too long" "$T/longkey.tsv" "longkey.tsv:3: key: 9 bytes, wider than the width 8" "nothing was written"

printf 'a\t1\nb\t123456789\n' >"$T/longval.tsv"
bad "value too long" "$T/longval.tsv" "longval.tsv:2: value: 9 bytes, wider than the width 8"

printf 'a\t1\nnotab\n' >"$T/notab.tsv"
bad "missing TAB" "$T/notab.tsv" "notab.tsv:2: no TAB between key and value"

printf '0a0b0\t01\n' >"$T/odd.tsv"
bad "hex: odd digit count" "$T/odd.tsv" "odd.tsv:1: key: odd number of hex digits" -- -E hex

printf '0a0b\t01\n0z\t01\n' >"$T/badhex.tsv"
bad "hex: not a digit" "$T/badhex.tsv" "badhex.tsv:2: key: byte 2 is not a hex digit" -- -E hex

printf '0000000000000000\t01\n' >"$T/empty.tsv"
bad "key equal to the empty sentinel" "$T/empty.tsv" "empty.tsv:1: key 0x0000000000000000 is the table's empty-slot marker" -- -E hex

printf 'ffffffffffffffff\t01\n' >"$T/deleted.tsv"
bad "key equal to the deleted sentinel" "$T/deleted.tsv" "deleted.tsv:1: key 0xffffffffffffffff is the table's deleted-slot marker" -- -E hex

printf '12\t1\n1x2\t3\n' >"$T/nondigit.tsv"
bad "u64: not a digit" "$T/nondigit.tsv" "nondigit.tsv:2: key: 'x' at byte 2 is not a decimal digit" -- -E u64

printf '18446744073709551616\t3\n' >"$T/big.tsv"
bad "u64: too large" "$T/big.tsv" "big.tsv:1: key: number 18446744073709551616 is larger than 18446744073709551615" -- -E u64

# u32 values: the new table (8/4 bytes) is never created.
T32=$(new_key)
printf '5\t4294967296\n' >"$T/big32.tsv"
expect 3 "u32: too large exits 3" "$LOAD" -E u64,u32 -K 8 -V 4 "$T32" "$T/big32.tsv"
err_has "u32: too large: message" "big32.tsv:1: value: number 4294967296 is larger than 4294967295"
[ -z "$(seg_id "$T32")" ] && pass "a table a failed load would create does not exist" || fail "segment left at $T32"

# A table with its own sentinels: shmkv-load reads them (hashtable_sentinels)
# and refuses such a key in the parse pass, before anything is written.
CUST=$(new_key)
"$SHMKV" create -K 8 -V 8 -n 10 --empty-key 0102030405060708 "$CUST"
printf '0000000000000000\t01\n0102030405060708\t02\n' >"$T/cust.tsv"
expect 3 "a key equal to a table's own sentinel" "$LOAD" -E hex "$CUST" "$T/cust.tsv"
err_has "own sentinel: message" "cust.tsv:2: key 0x0102030405060708 is the table's empty-slot marker"
run "$SHMKV" dump -f tsv "$CUST"
[ "$(cat "$T/out")" = "" ] && pass "own sentinel: nothing written" || { fail "own sentinel: table changed"; show; }
expect 0 "own sentinel with --skip-bad" "$LOAD" -b -E hex "$CUST" "$T/cust.tsv"
run "$SHMKV" dump -f tsv -E hex "$CUST"
printf '0000000000000000\t0100000000000000\n' >"$T/want"
out_is "own sentinel: all-zero is an ordinary key there" "$T/want"

printf '+1,1:a->b\n+1,1:c->d\n' >"$T/trunc.cdb"
bad "cdb: missing end line" "$T/trunc.cdb" "trunc.cdb: record 3 (byte offset 20): the input ends without the empty line" -- -f cdb

printf '+1,1:a->b\n+x,1:c->d\n\n' >"$T/hdr.cdb"
bad "cdb: bad header" "$T/hdr.cdb" "hdr.cdb: record 2 (byte offset 10): malformed record header" -- -f cdb

printf '+1,1:a-b\n\n' >"$T/arrow.cdb"
bad "cdb: missing ->" "$T/arrow.cdb" "arrow.cdb: record 1 (byte offset 0): expected \"->\" after the 1-byte key" -- -f cdb

printf '+1,40:a->b\n\n' >"$T/past.cdb"
bad "cdb: record past the end" "$T/past.cdb" "runs past the end of the input (truncated?)" -- -f cdb

printf '+9,1:123456789->b\n\n' >"$T/wide.cdb"
bad "cdb: key too wide" "$T/wide.cdb" "wide.cdb: record 1 (byte offset 0): key: 9 bytes, wider than the width 8" -- -f cdb

printf '+1,1:a->b\n\ngarbage' >"$T/after.cdb"
bad "cdb: data after the end" "$T/after.cdb" "data after the empty line that ends the records" -- -f cdb

printf '0123456789abcdef0123' >"$T/partial.bin"
bad "bin: partial record" "$T/partial.bin" "partial.bin: record 2 (byte offset 16): 4 trailing bytes do not make a whole 16-byte record" -- -f bin

head -c 16 /dev/zero >"$T/zero.bin"
bad "bin: sentinel key" "$T/zero.bin" "zero.bin: record 1 (byte offset 0): key 0x0000000000000000 is the table's empty-slot marker" -- -f bin

# Bad bin records after more good ones than a progress tick (8192): each
# is found at its own record number and offset, the good ones between too.
awk 'BEGIN { for (i = 1; i <= 9000; i++) printf "k%07dv%07d", i, i }' >"$T/late.bin"
head -c 16 /dev/zero >>"$T/late.bin"
printf 'k0009002v0009002' >>"$T/late.bin"
head -c 16 /dev/zero >>"$T/late.bin"
printf 'k000' >>"$T/late.bin"
bad "bin: bad records after 9000 good ones" "$T/late.bin" \
	"late.bin: record 9001 (byte offset 144000): key 0x0000000000000000 is the table's empty-slot marker" \
	"late.bin: record 9003 (byte offset 144032): key 0x0000000000000000" \
	"late.bin: record 9004 (byte offset 144048): 4 trailing bytes" -- -f bin

# An error on the last of 3000 lines: nothing before it is written either.
awk 'BEGIN { for (i = 0; i < 2999; i++) printf "n%d\tv\n", i; print "toolongkey\tv" }' >"$T/late.tsv"
bad "error on the last line" "$T/late.tsv" "late.tsv:3000: key: 10 bytes"

# More than a few bad lines: the first ones are shown, then it stops.
awk 'BEGIN { for (i = 0; i < 20; i++) print "notab" i }' >"$T/many.tsv"
bad "many bad lines" "$T/many.tsv" "many.tsv:1: no TAB" "many.tsv:5: no TAB" "stopped after 5 bad records"

run "$LOAD" -E hex -f bin "$TAB" "$T/partial.bin"
[ "$RC" -eq 2 ] && pass "encodings with bin are a usage error (2)" || { fail "bin + hex: exit $RC"; show; }

# ---- --skip-bad ---------------------------------------------------------------------
printf 'g1\tx\nnotab\ng2\ty\n123456789\tz\ng3\tw\n' >"$T/mixed.tsv"
expect 0 "--skip-bad loads the good records" "$LOAD" --skip-bad "$TAB" "$T/mixed.tsv"
err_has "--skip-bad reports count and reasons" "skipped 2 bad records of 5" "mixed.tsv:2: no TAB" "mixed.tsv:4: key: 9 bytes"
run "$SHMKV" get "$TAB" g1 g2 g3
printf 'x\ny\nw\n' >"$T/want"
out_is "--skip-bad: the good records are in" "$T/want"
expect 1 "--skip-bad: the bad records are not" "$SHMKV" get "$TAB" notab
"$SHMKV" del "$TAB" g1 g2 g3
"$SHMKV" dump "$TAB" >"$T/before"
COUNTERS=$(counters "$TAB")

# ---- the load limit --------------------------------------------------------------------
SMALL=$(new_key)
"$LOAD" -q -K 8 -V 8 -n 20 -l 0.8 -m 0.8 "$SMALL" /dev/null
ROOM=$("$SHMKV" stat --json "$SMALL" | sed 's/.*"max_count":\([0-9]*\).*/\1/')
awk -v n="$ROOM" 'BEGIN { for (i = 0; i < n - 3; i++) printf "s%d\tv\n", i }' >"$T/fill.tsv"
"$LOAD" -q "$SMALL" "$T/fill.tsv"
"$SHMKV" dump "$SMALL" >"$T/small.before"
awk 'BEGIN { for (i = 0; i < 5; i++) printf "new%d\tv\n", i }' >"$T/over.tsv"
expect 4 "more new keys than room: refused (4)" "$LOAD" "$SMALL" "$T/over.tsv"
err_has "more new keys than room: message" "the input has 5 keys that are not in the table, but its load limit leaves room for 3" "nothing was written"
"$SHMKV" dump "$SMALL" >"$T/small.after"
same "refused load leaves the table unchanged" "$T/small.before" "$T/small.after"
# Existing keys do not count: 10 records, 3 of them new.
{ head -7 "$T/fill.tsv"; printf 'new0\tv\nnew1\tv\nnew2\tv\n'; } >"$T/fits.tsv"
expect 0 "existing keys are not counted against the room" "$LOAD" "$SMALL" "$T/fits.tsv"
# Duplicates count once: after deleting 3 keys, 9 records holding 3 new keys.
"$SHMKV" del "$SMALL" new0 new1 new2
{ printf 'd1\tv\nd2\tv\nd3\tv\n'; printf 'd1\tw\nd2\tw\nd3\tw\n'; printf 'd1\tx\nd2\tx\nd3\tx\n'; } >"$T/dups.tsv"
expect 0 "duplicate new keys are counted once" "$LOAD" "$SMALL" "$T/dups.tsv"
run "$SHMKV" get "$SMALL" d2
printf 'x\n' >"$T/want"
out_is "the last duplicate wins" "$T/want"

# ---- failed loads do not leave a table behind ---------------------------------------------
NEW=$(new_key)
expect 3 "bad input for a new table: exit 3" "$LOAD" -K 8 -V 8 "$NEW" "$T/longkey.tsv"
[ -z "$(seg_id "$NEW")" ] && pass "bad input: no table created" || fail "bad input: a segment was left at $NEW"
awk 'BEGIN { for (i = 0; i < 500; i++) printf "c%d\tv\n", i }' >"$T/500.tsv"
expect 4 "capacity too small for the input: refused (4)" "$LOAD" -K 8 -V 8 -c 4K "$NEW" "$T/500.tsv"
err_has "capacity too small: message" "keys that are not in the table, but its load limit leaves room for"
[ -z "$(seg_id "$NEW")" ] && pass "capacity too small: the created table is removed" || fail "segment left at $NEW"

# ---- an existing table with other widths -------------------------------------------------
ID=$(seg_id "$TAB")
expect 4 "other widths: refused (4)" "$LOAD" -K 4 -V 8 "$TAB" "$T/base.tsv"
err_has "other widths: message names them and the fixes" \
	"the table exists with key width 8 and value width 8, not 4 and 8" \
	"shmkv rm $TAB" "ipcrm -m $ID"
unchanged "other widths"

# ---- an interrupted load of a new table removes it -------------------------------------
head -c $((3000000 * 16)) /dev/urandom >"$T/big.bin"
INT=$(new_key)
"$LOAD" -p -f bin -K 8 -V 8 "$INT" "$T/big.bin" 2>"$T/int.err" &
pid=$!
n=0
while [ $n -lt 200 ] && ! grep -q writing "$T/int.err" 2>/dev/null; do
	sleep 0.05
	n=$((n + 1))
done
kill -INT $pid 2>/dev/null
rc=0
wait $pid || rc=$?
if [ $rc -eq 0 ]; then
	skip "interrupt: the load finished before the signal arrived"
	id=$(seg_id "$INT")
	[ -n "$id" ] && ipcrm -m "$id"
elif [ -z "$(seg_id "$INT")" ] && grep -q "the new table is removed" "$T/int.err"; then
	pass "SIGINT while writing a new table removes it (exit $rc)"
else
	fail "SIGINT: table left at $INT or no message (exit $rc)"
	tail -3 "$T/int.err"
fi

# ---- an empty input file beside a non-empty one -------------------------------------
# (an empty file maps to no memory: releasing its pages did arithmetic on NULL,
# which UBSan reports under make check-asan)
: >"$T/empty.tsv"
printf 'e1\tx1\ne2\tx2\n' >"$T/two.tsv"
EMP=$(new_key)
expect 0 "an empty input after a non-empty one: exit 0" \
	"$LOAD" -q -K 8 -V 8 "$EMP" "$T/two.tsv" "$T/empty.tsv"
if grep -q "runtime error" "$T/err"; then
	fail "an empty input: undefined behaviour reported"
	show
else
	pass "an empty input: no undefined behaviour reported"
fi
"$SHMKV" dump -f tsv "$EMP" 2>/dev/null | LC_ALL=C sort >"$T/emp.out"
same "an empty input: the other file's records are loaded" "$T/two.tsv" "$T/emp.out"

finish
