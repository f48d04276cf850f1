#!/bin/sh
# shmkv get --with-keys and --json; put decodes every pair before writing;
# --huge-pages and --hugepages are one option.
. "$(dirname "$0")/lib.sh"

K=$(new_key)
"$SHMKV" create -K 8 -V 16 -n 100 "$K"
TABK=$(printf 'c\tq')
"$SHMKV" put "$K" apple red banana 'say "hi"\' "$TABK" "$(printf 'l1\tl2')" nl "$(printf 'x\001y')"

# ---- --with-keys --------------------------------------------------------------------
expect 0 "get --with-keys" "$SHMKV" get --with-keys "$K" banana apple
printf 'banana\tsay "hi"\\\napple\tred\n' >"$T/want"
out_is "--with-keys prints KEY TAB VALUE in the order asked" "$T/want"
expect 1 "get --with-keys with a missing key exits 1" "$SHMKV" get --with-keys "$K" apple nosuch
printf 'apple\tred\n' >"$T/want"
out_is "--with-keys: the found keys are printed" "$T/want"
err_has "--with-keys: the missing key is named on stderr" 'key "nosuch": not found'
expect 3 "--with-keys refuses a key holding a TAB" "$SHMKV" get --with-keys "$K" "$TABK"
err_has "--with-keys TAB key: advice" "TAB" "--encoding hex"
expect 0 "--with-keys with hex keys" "$SHMKV" get --with-keys -E hex,text "$K" 6309710000000000
printf '6309710000000000\tl1\tl2\n' >"$T/want"
out_is "--with-keys -E hex,text: the key in hex" "$T/want"
expect 2 "--with-keys refuses raw values" "$SHMKV" get --with-keys -E text,raw "$K" apple

# ---- --json -------------------------------------------------------------------------------
expect 0 "get --json" "$SHMKV" get --json "$K" apple banana "$TABK" nl
if command -v python3 >/dev/null 2>&1; then
	python3 - "$T/out" <<'EOF' && pass "--json: one object, strings escaped, decodes to the stored bytes" || { fail "--json content"; show; }
import json, sys
text = open(sys.argv[1]).read()
assert text.endswith("}\n") and text.count("\n") == 1, repr(text)
d = json.loads(text)
assert d == {"apple": "red", "banana": 'say "hi"\\', "c\tq": "l1\tl2", "nl": "x\x01y"}, d
EOF
else
	skip "--json parse: python3 not installed"
fi
grep -qF '"banana":"say \"hi\"\\"' "$T/out" && pass "--json escapes quote and backslash" || { fail "--json escaping"; show; }
grep -qF '"nl":"x\u0001y"' "$T/out" && pass "--json escapes control bytes as \\u00XX" || { fail "--json control escape"; show; }
expect 1 "get --json with a missing key exits 1" "$SHMKV" get --json "$K" apple nosuch
printf '{"apple":"red"}\n' >"$T/want"
out_is "--json: missing keys are left out of the object" "$T/want"
err_has "--json: the missing key is named on stderr" 'key "nosuch": not found'
expect 1 "get --json with only missing keys" "$SHMKV" get --json "$K" nosuch
printf '{}\n' >"$T/want"
out_is "--json: an empty object when nothing is found" "$T/want"
expect 0 "get --json with a key asked twice" "$SHMKV" get --json "$K" apple apple
printf '{"apple":"red"}\n' >"$T/want"
out_is "--json: a key asked twice is one member" "$T/want"
expect 2 "--json and --with-keys together" "$SHMKV" get --json --with-keys "$K" apple

N=$(new_key)
"$SHMKV" create -K 8 -V 8 -n 10 "$N"
"$SHMKV" put -E u64 "$N" 1 18446744073709551615 2 7
expect 0 "get --json -E u64" "$SHMKV" get --json -E u64 "$N" 2 1
printf '{"2":7,"1":18446744073709551615}\n' >"$T/want"
out_is "--json u64: keys are strings, values numbers" "$T/want"
expect 0 "get --json -E hex" "$SHMKV" get --json -E hex "$N" 0200000000000000
printf '{"0200000000000000":"0700000000000000"}\n' >"$T/want"
out_is "--json hex: both fields as hex strings" "$T/want"
"$SHMKV" put -E text,hex "$N" bad ff00000000000000
expect 3 "--json refuses a text value that is not UTF-8" "$SHMKV" get --json "$N" bad
err_has "--json non-UTF-8: advice" "not UTF-8" "--encoding hex"
expect 2 "--json refuses raw" "$SHMKV" get --json -E raw "$N" bad

# ---- put: all pairs decoded before the first write ---------------------------------------
expect 3 "put with a bad second pair" "$SHMKV" put "$K" fresh1 v fresh2 12345678901234567
expect 1 "...wrote nothing" "$SHMKV" get "$K" fresh1
expect 0 "put of three pairs" "$SHMKV" put -v "$K" p1 a p2 b p1 c
err_has "put -v reports each pair" 'key "p1" inserted' 'key "p2" inserted' 'key "p1" updated'
expect 0 "get them" "$SHMKV" get "$K" p1 p2
printf 'c\nb\n' >"$T/want"
out_is "the last of a repeated key wins, in order" "$T/want"

# ---- --huge-pages and --hugepages --------------------------------------------------------
# Both spellings must reach the same option: asking for huge pages fails or
# succeeds the same way for both (most hosts reserve none).
H1=$(new_key)
H2=$(new_key)
run "$SHMKV" create --huge-pages -K 8 -V 8 -n 10 "$H1"
RC1=$RC
grep -q "unknown option\|unrecognized" "$T/err" && fail "--huge-pages is not known" || pass "shmkv create knows --huge-pages"
run "$SHMKV" create --hugepages -K 8 -V 8 -n 10 "$H2"
[ "$RC" -eq "$RC1" ] && pass "--hugepages is the same option (exit $RC)" || fail "--hugepages exit $RC, --huge-pages $RC1"
printf 'a\tb\n' >"$T/one.tsv"
run "$LOAD" --huge-pages "$(new_key)" "$T/one.tsv"
grep -q "unknown option" "$T/err" && fail "shmkv-load --huge-pages is not known" || pass "shmkv-load knows --huge-pages"
run "$SHMKV" create --help
grep -q -- "--huge-pages" "$T/out" && pass "create --help documents --huge-pages" || fail "create --help lacks --huge-pages"

# ---- the shared parsers and defaults ----------------------------------------------------
expect 2 "a key 0x0x12 is refused" "$SHMKV" stat 0x0x12
expect 2 "an entry count with a sign is refused" "$SHMKV" create -K 8 -V 8 -n -5 "$(new_key)"
expect 2 "an entry count with a blank is refused" "$SHMKV" create -K 8 -V 8 -n " 5" "$(new_key)"
expect 2 "an entry count past 2^64 is refused" "$SHMKV" create -K 8 -V 8 -n 18446744073709551616 "$(new_key)"
expect 2 "a zero key width is refused by shmkv-load too" "$LOAD" -K 0 "$(new_key)" "$T/one.tsv"
err_has "...with the range" "bad key size '0' (1..1024 bytes)"
D=$(new_key)
"$SHMKV" create -K 8 -V 8 -n 16 "$D"
run "$SHMKV" stat --json "$D"
grep -q '"mode":"0600"' "$T/out" && grep -q '"max_load":0.8,' "$T/out" \
	&& pass "create defaults: mode 0600, load limit 0.8" || { fail "create defaults"; show; }
D2=$(new_key)
"$LOAD" -q "$D2" "$T/one.tsv"
run "$SHMKV" stat --json "$D2"
grep -q '"mode":"0600"' "$T/out" && grep -q '"max_load":0.8,' "$T/out" \
	&& pass "shmkv-load defaults: the same" || { fail "shmkv-load defaults"; show; }

finish
