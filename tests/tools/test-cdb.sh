#!/bin/sh
# Interoperation with tinycdb (Debian package tinycdb: cdb -c, -d, -q): a
# `cdb -d` dump of a tinycdb database loads, and our cdb dump builds a
# database that `cdb -q` answers from.
. "$(dirname "$0")/lib.sh"

if ! command -v cdb >/dev/null 2>&1; then
	skip "tinycdb's cdb is not installed (apt-get install tinycdb)"
	finish
fi

# ---- tinycdb -> shmkv -------------------------------------------------------------
printf '+3,1:one->1\n+5,0:two22->\n+10,3:three\nline->x\000y\n+1,1:d->1\n+1,1:d->2\n\n' >"$T/in.cdb"
cdb -c "$T/db1.cdb" <"$T/in.cdb"
K=$(new_key)
expect 0 "a cdb -d dump loads" sh -c "cdb -d '$T/db1.cdb' | '$LOAD' -K 12 -V 8 '$K'"
expect 0 "get a text key" "$SHMKV" get "$K" one
printf '1\n' >"$T/want"
out_is "its value" "$T/want"
expect 0 "get a key holding a newline (hex)" "$SHMKV" get -E hex "$K" 74687265650a6c696e65
printf '7800790000000000\n' >"$T/want"
out_is "its binary value, NUL-padded" "$T/want"
run "$SHMKV" get "$K" d
printf '2\n' >"$T/want"
out_is "duplicate keys in a cdb: the last record wins" "$T/want"
run "$SHMKV" stat --json "$K"
grep -q '"count":4,' "$T/out" && pass "four distinct keys" || { fail "count"; show; }

# 5000 records through cdb -c / cdb -d.
awk 'BEGIN { for (i = 0; i < 5000; i++) { k = "key" i; v = "value-" i * 3; printf "+%d,%d:%s->%s\n", length(k), length(v), k, v } print "" }' >"$T/many.in"
cdb -c "$T/many.cdb" <"$T/many.in"
K2=$(new_key)
expect 0 "5000-record cdb -d dump loads" sh -c "cdb -d '$T/many.cdb' | '$LOAD' '$K2'"
run "$SHMKV" dump -f tsv "$K2"
LC_ALL=C sort "$T/out" >"$T/got"
awk 'BEGIN { for (i = 0; i < 5000; i++) printf "key%d\tvalue-%d\n", i, i * 3 }' | LC_ALL=C sort >"$T/want"
same "every record arrived" "$T/want" "$T/got"

# ---- shmkv -> tinycdb ----------------------------------------------------------------
K3=$(new_key)
printf 'abcdefgh\thello\nij\tworld\n' | "$LOAD" -q -K 8 -V 8 "$K3"
"$SHMKV" dump "$K3" >"$T/ours.txt"
expect 0 "cdb -c builds a database from our default dump" cdb -c "$T/ours.cdb" "$T/ours.txt"
run cdb -q "$T/ours.cdb" abcdefgh
printf 'hello\000\000\000' >"$T/want"
out_is "cdb -q answers a full-width key with the full-width value" "$T/want"
cdb -d "$T/ours.cdb" >"$T/redump.txt"
same "cdb -d gives back our dump byte for byte" "$T/ours.txt" "$T/redump.txt"
"$SHMKV" dump -E text "$K3" >"$T/text.txt"
cdb -c "$T/text.cdb" "$T/text.txt"
run cdb -q "$T/text.cdb" ij
printf 'world' >"$T/want"
out_is "with -E text, cdb -q answers short keys" "$T/want"
K4=$(new_key)
expect 0 "the -E text dump loads back" "$LOAD" -K 8 -V 8 "$K4" "$T/text.txt"
entries "$K3" >"$T/a"
entries "$K4" >"$T/b"
same "trimmed text dump reloads exactly (padding restored)" "$T/a" "$T/b"

finish
