#!/bin/sh
# shmkv-load: a key wider than the table names the width that fits; CRLF
# input is named as such and --crlf strips it; a new table sized from the
# input leaves room (or says it is full); --duplicates=last|first|error|warn.
. "$(dirname "$0")/lib.sh"

# ---- widths ---------------------------------------------------------------------------
printf 'a\t1\nbbbbbbbbbbbb\t2\nccccccc\t3\n' >"$T/wide.tsv"
K=$(new_key)
expect 3 "a key wider than -K is bad input" "$LOAD" -K 4 -V 4 "$K" "$T/wide.tsv"
err_has "names the longest key and the -K that fits" "the longest key read is 12 bytes" "give -K 12"
[ -z "$(seg_id "$K")" ] && pass "no table was left behind" || fail "a table was created"
"$SHMKV" create -K 4 -V 4 -n 10 "$K"
expect 3 "a key wider than an existing table" "$LOAD" "$K" "$T/wide.tsv"
err_has "existing table: names its width and the -K of a new one" "the table's keys are 4 bytes wide" "-K 12"
printf 'k\t123456789\n' >"$T/wideval.tsv"
expect 3 "a value wider than the table" "$LOAD" "$K" "$T/wideval.tsv"
err_has "names the longest value" "the longest value read is 9 bytes" "-V 9"
expect 0 "the advice works: -K 12 loads" "$LOAD" -K 12 "$(new_key)" "$T/wide.tsv"

# ---- CRLF -----------------------------------------------------------------------------
printf 'a\t1\r\nb\t22\r\n' >"$T/crlf.tsv"
C=$(new_key)
expect 3 "CRLF input is refused" "$LOAD" "$C" "$T/crlf.tsv"
err_has "CRLF: says Windows line endings and --crlf" "Windows (CRLF) line endings" "--crlf"
expect 0 "--crlf loads it" "$LOAD" --crlf "$C" "$T/crlf.tsv"
expect 0 "--crlf: values without the CR" "$SHMKV" get -E text,hex "$C" b
printf '3232\n' >"$T/want"
out_is "--crlf: widths from the input do not count the CR" "$T/want"
printf 'x\ty\r\n' >"$T/crlf1.tsv"
expect 3 "CRLF into an existing table is refused too" "$LOAD" "$C" "$T/crlf1.tsv"

printf '+1,1:a->b\r\n\n' >"$T/crlf.cdb"
expect 3 "CRLF cdb input is refused" "$LOAD" "$(new_key)" "$T/crlf.cdb"
err_has "CRLF cdb: says Windows line endings" "found a CR" "Windows (CRLF) line endings"
printf 'garbage' >"$T/bad.cdb"
expect 3 "unframed cdb for a new table is bad input, not an empty one" "$LOAD" -f cdb "$(new_key)" "$T/bad.cdb"
err_has "unframed cdb: the framing error" "expected '+' at the start of a record"

# ---- sizing: not born full ---------------------------------------------------------------
awk 'BEGIN { for (i = 1; i <= 20000; i++) printf "%d\t%d\n", i, i }' >"$T/n.tsv"
D=$(new_key)
expect 0 "load 20000 records into a new table" "$LOAD" -E u64 "$D" "$T/n.tsv"
MAX=$("$SHMKV" stat --json "$D" | sed 's/.*"max_count":\([0-9]*\).*/\1/')
[ "$MAX" -ge 25000 ] && pass "the new table has room beyond the input ($MAX keys)" || fail "born full: limit $MAX"
grep -q "full" "$T/err" && { fail "warned about a full table"; show; } || pass "no full-table warning with room"
F=$(new_key)
expect 0 "load with --load at the load limit" "$LOAD" -E u64 -l 0.8 "$F" "$T/n.tsv"
err_has "a table born full is warned about, with the options that add room" "warning: the new table is full" "--entries=N"
expect 0 "-q silences the warning" "$LOAD" -q -E u64 -l 0.8 "$(new_key)" "$T/n.tsv"
[ ! -s "$T/err" ] && pass "-q: nothing on stderr" || { fail "-q printed"; show; }

# ---- duplicates ------------------------------------------------------------------------------
printf 'a\t1\nb\t2\na\t3\nc\t4\na\t5\n' >"$T/dup.tsv"
for mode in "" last first warn error; do
	U=$(new_key)
	if [ -z "$mode" ]; then
		expect 0 "duplicates: default" "$LOAD" "$U" "$T/dup.tsv"
	elif [ "$mode" = error ]; then
		expect 3 "duplicates=error refuses" "$LOAD" --duplicates=error "$U" "$T/dup.tsv"
		err_has "duplicates=error names the repeated key" 'key "a" was already given' "2 records repeat"
		[ -z "$(seg_id "$U")" ] && pass "duplicates=error: nothing created" || fail "duplicates=error created a table"
		continue
	else
		expect 0 "duplicates=$mode" "$LOAD" --duplicates=$mode "$U" "$T/dup.tsv"
	fi
	run "$SHMKV" get "$U" a b c
	case $mode in first) want='1 2 4' ;; *) want='5 2 4' ;; esac
	[ "$(tr '\n' ' ' <"$T/out")" = "$want " ] && pass "duplicates=${mode:-default}: values $want" \
		|| { fail "duplicates=${mode:-default}: got $(tr '\n' ' ' <"$T/out")"; show; }
done
run "$LOAD" --duplicates=warn "$(new_key)" "$T/dup.tsv"
err_has "duplicates=warn reports and loads" "warning: 2 records repeat an earlier key"
printf 'a\t9\n' >"$T/dup2.tsv"
E=$(new_key)
"$SHMKV" create -K 1 -V 1 -n 10 "$E"
"$SHMKV" put "$E" a 0
expect 0 "duplicates=first into an existing table overwrites the table's value" \
	"$LOAD" -v --duplicates=first "$E" "$T/dup2.tsv" "$T/dup.tsv"
err_has "duplicates=first -v counts the records passed over" "3 records repeating an earlier key were passed over"
run "$SHMKV" get "$E" a
[ "$(cat "$T/out")" = 9 ] && pass "...with the input's first value" || { fail "first into existing"; show; }
expect 2 "bad --duplicates" "$LOAD" --duplicates=sometimes "$(new_key)" "$T/dup.tsv"
err_has "bad --duplicates: lists the choices" "last, first, error, warn"

finish
