#!/bin/sh
# Every load format and field encoding round-trips through a table and
# `shmkv dump`; the default dump reloads byte for byte; inputs come from
# files, several files, a pipe and a redirect; reloading updates in place.
. "$(dirname "$0")/lib.sh"

# ---- tsv text -------------------------------------------------------------
i=0
while [ $i -lt 300 ]; do
	printf 'key %d\tvalue with spaces %d\n' $i $((i * 7))
	i=$((i + 1))
done >"$T/text.tsv"
k=$(new_key)
expect 0 "tsv text loads" "$LOAD" -K 12 -V 32 "$k" "$T/text.tsv"
run "$SHMKV" dump -f tsv "$k"
LC_ALL=C sort "$T/out" >"$T/got"
LC_ALL=C sort "$T/text.tsv" >"$T/want"
same "tsv text round-trips" "$T/want" "$T/got"
expect 0 "get finds a text key" "$SHMKV" get "$k" "key 17"
printf 'value with spaces 119\n' >"$T/want"
out_is "get prints the value" "$T/want"

# ---- tsv hex, binary content -------------------------------------------------
head -c $((500 * 12)) /dev/urandom | od -An -v -tx1 -w12 | tr -d ' ' |
	awk '{ print substr($0, 1, 16) "\t" substr($0, 17, 8) }' >"$T/hex.tsv"
k=$(new_key)
expect 0 "tsv hex loads" "$LOAD" -E hex -K 8 -V 4 "$k" "$T/hex.tsv"
run "$SHMKV" dump -f tsv -E hex "$k"
LC_ALL=C sort "$T/out" >"$T/got"
LC_ALL=C sort -u "$T/hex.tsv" >"$T/want"
same "tsv hex round-trips" "$T/want" "$T/got"
HEXTAB=$k

# ---- tsv u64 / u32, and mixed encodings -----------------------------------------
head -c $((400 * 8)) /dev/urandom | od -An -v -tu8 -w8 | tr -d ' ' >"$T/k64"
head -c $((400 * 4)) /dev/urandom | od -An -v -tu4 -w4 | tr -d ' ' >"$T/v32"
paste "$T/k64" "$T/v32" | awk '$1 != 0 && $1 != "18446744073709551615"' >"$T/num.tsv"
k=$(new_key)
expect 0 "tsv u64,u32 loads (widths from the encodings)" "$LOAD" -E u64,u32 "$k" "$T/num.tsv"
run "$SHMKV" dump -f tsv -E u64,u32 "$k"
LC_ALL=C sort "$T/out" >"$T/got"
LC_ALL=C sort -u "$T/num.tsv" >"$T/want"
same "tsv u64,u32 round-trips" "$T/want" "$T/got"
run "$SHMKV" stat --json "$k"
if grep -q '"key_size":8,"value_size":4' "$T/out"; then pass "u64,u32 table is 8/4 bytes"; else fail "u64,u32 widths"; show; fi

k=$(new_key)
cut -f1 "$T/num.tsv" | awk '{ printf "%s\t%04x\n", $1, NR }' >"$T/mixed.tsv"
expect 0 "key u64, value hex loads" "$LOAD" --key-enc u64 --value-enc hex -V 2 "$k" "$T/mixed.tsv"
run "$SHMKV" dump -f tsv --key-enc u64 --value-enc hex "$k"
LC_ALL=C sort "$T/out" >"$T/got"
LC_ALL=C sort -u "$T/mixed.tsv" >"$T/want"
same "key u64, value hex round-trips" "$T/want" "$T/got"

# ---- cdb: binary bytes, newlines, NULs, separators inside fields ---------------
printf '+3,4:a\nb->\000x\ny\n+8,2:-> +1,2:->\n>\n+1,0:z->\n\n' >"$T/in.cdb"
k=$(new_key)
expect 0 "cdb with binary fields loads (widths from the input)" "$LOAD" "$k" "$T/in.cdb"
run "$SHMKV" dump -f tsv -E hex "$k"
LC_ALL=C sort "$T/out" >"$T/got"
printf '2d3e202b312c323a\t0a3e0000\n610a620000000000\t00780a79\n7a00000000000000\t00000000\n' >"$T/want"
same "cdb fields land NUL-padded, byte for byte" "$T/want" "$T/got"
run "$SHMKV" dump "$k"
cp "$T/out" "$T/dump.cdb"
if tail -c 1 "$T/dump.cdb" | od -An -c | grep -q '\\n' && [ "$(grep -c '^+8,4:' "$T/dump.cdb")" -eq 3 ]; then
	pass "default dump is cdb with full-width fields"
else
	fail "default dump format"
	od -c "$T/dump.cdb" | head
fi
k2=$(new_key)
expect 0 "dump | load into a new table (no options)" sh -c "'$SHMKV' dump '$k' | '$LOAD' '$k2'"
entries "$k" >"$T/a"
entries "$k2" >"$T/b"
same "dump | load reproduces every entry" "$T/a" "$T/b"

# ---- bin: random records ----------------------------------------------------------
head -c $((1000 * 12)) /dev/urandom >"$T/r.bin"
k=$(new_key)
expect 0 "bin loads" "$LOAD" -f bin -K 8 -V 4 "$k" "$T/r.bin"
run "$SHMKV" dump -f bin "$k"
cp "$T/out" "$T/d.bin"
hex_records "$T/r.bin" 12 >"$T/want"
hex_records "$T/d.bin" 12 >"$T/got"
same "bin round-trips" "$T/want" "$T/got"
k2=$(new_key)
run sh -c "'$SHMKV' dump '$k' | '$LOAD' '$k2'"
entries "$k" >"$T/a"
entries "$k2" >"$T/b"
same "random binary table: dump | load is exact" "$T/a" "$T/b"
k3=$(new_key)
run sh -c "'$SHMKV' dump -f tsv -E hex '$k' | '$LOAD' -f tsv -E hex '$k3'"
entries "$k3" >"$T/c"
same "random binary table: tsv hex dump | load is exact" "$T/a" "$T/c"

# ---- cdb dump encodings ------------------------------------------------------------
run "$SHMKV" dump -E text "$T/nonexistent"
[ "$RC" -eq 1 ] && pass "dump of a missing path is not found (1)" || { fail "dump missing path: $RC"; show; }
run "$SHMKV" dump -E hex "$HEXTAB"
k2=$(new_key)
run sh -c "'$SHMKV' dump -E hex '$HEXTAB' | '$LOAD' -E hex '$k2'"
entries "$HEXTAB" >"$T/a"
entries "$k2" >"$T/b"
same "cdb with hex fields round-trips" "$T/a" "$T/b"

# ---- value width 0: keys only ------------------------------------------------------
printf 'alpha\nbeta\ngamma\n' >"$T/keys.tsv"
k=$(new_key)
expect 0 "keys-only tsv loads into a value-less table" "$LOAD" -K 6 -V 0 "$k" "$T/keys.tsv"
run "$SHMKV" dump -f tsv "$k"
LC_ALL=C sort "$T/out" | tr -d '\t' >"$T/got"
same "keys-only table round-trips" "$T/keys.tsv" "$T/got"
expect 0 "get of a key in a value-less table" "$SHMKV" get "$k" beta

# ---- inputs: several files, a pipe, a redirect -----------------------------------------
printf 'a\t1\nb\t2\n' >"$T/p1.tsv"
printf 'c\t3\n' >"$T/p2.tsv"
printf 'd\t4\n' >"$T/p3.tsv"
k=$(new_key)
expect 0 "several files and stdin (-) load together" sh -c "'$LOAD' -K 4 -V 4 '$k' '$T/p1.tsv' - '$T/p2.tsv' < '$T/p3.tsv'"
run "$SHMKV" dump -f tsv "$k"
LC_ALL=C sort "$T/out" >"$T/got"
printf 'a\t1\nb\t2\nc\t3\nd\t4\n' >"$T/want"
same "all four inputs arrived" "$T/want" "$T/got"
k=$(new_key)
expect 0 "a pipe loads" sh -c "cat '$T/hex.tsv' | '$LOAD' -E hex -K 8 -V 4 '$k'"
entries "$k" >"$T/a"
entries "$HEXTAB" >"$T/b"
same "pipe input equals file input" "$T/b" "$T/a"

# ---- filling an existing table: upserts --------------------------------------------------
awk -F '\t' 'NR <= 100 { print $1 "\tnew " NR }' "$T/text.tsv" >"$T/upd.tsv"
printf 'brand new\tx\n' >>"$T/upd.tsv"
k=$(new_key)
"$LOAD" -q -K 12 -V 32 -n 1000 "$k" "$T/text.tsv"
expect 0 "reloading into an existing table" "$LOAD" -v "$k" "$T/upd.tsv"
err_has "summary counts updates and inserts" "read 101, inserted 1, updated 100, skipped 0"
run "$SHMKV" get "$k" "key 5" "brand new"
printf 'new 6\nx\n' >"$T/want"
out_is "updated and inserted values are there" "$T/want"

finish
