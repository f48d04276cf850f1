#!/bin/sh
# Command lines and exit codes: --help/--version, usage errors (2), not found
# (1), refusals (4); create/get/put/del/rm/verify; ls and stat --json; output
# choices of shmkv-load (--quiet, --progress, a terminal).
. "$(dirname "$0")/lib.sh"

# ---- help and version -----------------------------------------------------------
for tool in "$SHMKV" "$LOAD"; do
	name=$(basename "$tool")
	expect 0 "$name --help exits 0" "$tool" --help
	if grep -q "^Usage: $name" "$T/out" && grep -q "Exit status" "$T/out" && [ ! -s "$T/err" ]; then
		pass "$name --help: usage and exit codes on stdout"
	else
		fail "$name --help output"
		show
	fi
	expect 0 "$name --version exits 0" "$tool" --version
	grep -q "^$name (shmkv) [0-9]" "$T/out" && pass "$name --version on stdout" || { fail "$name --version"; show; }
done
for c in create stat get put del dump ls rm chmod chown verify grow; do
	run "$SHMKV" "$c" --help
	if [ "$RC" -eq 0 ] && grep -q "^Usage: shmkv $c" "$T/out"; then pass "shmkv $c --help"; else fail "shmkv $c --help"; show; fi
done
expect 0 "shmkv help get" "$SHMKV" help get

# ---- usage errors: 2 --------------------------------------------------------------
expect 2 "no command" "$SHMKV"
expect 2 "unknown command" "$SHMKV" frobnicate
err_prefixed "unknown command message"
expect 2 "unknown option" "$SHMKV" stat --bogus 0x5f000001
err_prefixed "unknown option message (not getopt's argv[0] one)"
expect 2 "missing operand" "$SHMKV" get
expect 2 "option of another command" "$SHMKV" get --repair 0x5f000001 k
expect 2 "bad key syntax" "$SHMKV" stat 0xzz
expect 2 "IPC_PRIVATE key" "$SHMKV" stat 0x0
expect 2 "create without sizes" "$SHMKV" create 0x5f000001
expect 2 "shmkv-load without TABLE" "$LOAD"
expect 2 "shmkv-load bad format" "$LOAD" -f xml 0x5f000001
expect 2 "shmkv-load bad encoding" "$LOAD" -E base64 0x5f000001
expect 2 "shmkv-load --load above --max-load" "$LOAD" -l 0.9 -m 0.5 0x5f000001
expect 2 "shmkv-load u64 with a 4-byte key" "$LOAD" -E u64 -K 4 -V 4 "$(new_key)" /dev/null
err_prefixed "usage error messages"
NEWK=$(new_key)
expect 2 "bin input for a new table needs widths" "$LOAD" -f bin "$NEWK" /dev/null
expect 2 "empty input cannot tell the widths" "$LOAD" "$NEWK" /dev/null

# ---- not found: 1 ---------------------------------------------------------------------
NOKEY=$(new_key)
expect 1 "stat of a missing table" "$SHMKV" stat "$NOKEY"
err_has "missing table: message" "shmkv: $NOKEY: cannot open table" "shmkv ls"
expect 1 "get from a missing table" "$SHMKV" get "$NOKEY" k
expect 1 "rm of a missing table" "$SHMKV" rm "$NOKEY"
expect 1 "a path that does not exist" "$SHMKV" stat "$T/no/such/file"
err_has "missing path: message" "no such file"
expect 1 "shmkv-load into a path that does not exist" "$LOAD" -K 8 -V 8 "$T/nofile" /dev/null
expect 1 "shmkv-load from a missing input file" "$LOAD" -K 8 -V 8 "$NOKEY" "$T/missing.tsv"
err_prefixed "not-found messages"

# ---- create, put, get, del on a path-named table -------------------------------------
P=$(new_path)
expect 0 "create a table named by a path" "$SHMKV" create -K 16 -V 8 -n 100 -M 0640 "$P"
[ ! -s "$T/out" ] && [ ! -s "$T/err" ] && pass "create is quiet on success" || { fail "create printed"; show; }
expect 4 "create over an existing table" "$SHMKV" create -K 16 -V 8 -n 100 "$P"
err_has "create over an existing table: advice" "shmkv rm $P" "ipcrm -m $(seg_id "$(ftok_key "$P")")"
expect 0 "put two pairs" "$SHMKV" put "$P" apple red banana yellow
expect 0 "get them" "$SHMKV" get "$P" banana apple
printf 'yellow\nred\n' >"$T/want"
out_is "get prints values in order" "$T/want"
expect 1 "get with a missing key exits 1" "$SHMKV" get "$P" apple cherry
printf 'red\n' >"$T/want"
out_is "...after printing the found ones" "$T/want"
err_has "missing key message" 'key "cherry": not found'
expect 0 "put -v says updated" "$SHMKV" put -v "$P" apple green
err_has "put -v message" 'key "apple" updated'
expect 3 "put a too-long value" "$SHMKV" put "$P" apple 123456789
expect 2 "put odd pairs" "$SHMKV" put "$P" a b c
expect 0 "del" "$SHMKV" del "$P" banana
expect 1 "del of a missing key" "$SHMKV" del "$P" banana
expect 0 "hex keys and u64 values" "$SHMKV" put -E hex,u64 "$P" 6b6579 42
expect 0 "get them back as text" "$SHMKV" get --value-enc u64 "$P" key
printf '42\n' >"$T/want"
out_is "u64 value read back" "$T/want"
expect 3 "put of the empty sentinel" "$SHMKV" put -E hex "$P" 00 x
run "$SHMKV" stat --json "$P"
grep -q '"mode":"0640"' "$T/out" && pass "create --mode sets the mode" || { fail "mode"; show; }

# ---- a full table refuses puts: 4 -------------------------------------------------------
F=$(new_key)
"$SHMKV" create -K 4 -V 4 -n 4 "$F"
MAX=$("$SHMKV" stat --json "$F" | sed 's/.*"max_count":\([0-9]*\).*/\1/')
i=0
while [ $i -lt "$MAX" ]; do "$SHMKV" put "$F" "f$i" v; i=$((i + 1)); done
expect 4 "put into a full table" "$SHMKV" put "$F" zzz v
err_has "full table: message" "load limit"

# ---- stat ------------------------------------------------------------------------------
K=$(new_key)
awk 'BEGIN { for (i = 0; i < 1000; i++) printf "%d\t%d\n", i + 1, i }' >"$T/n.tsv"
"$LOAD" -q -E u64 "$K" "$T/n.tsv"
expect 0 "stat" "$SHMKV" stat "$K"
for f in "count        1000 keys" "widths       key 8 bytes, value 8 bytes" "histogram" "payload 16000 bytes" "counters     inserts 1000" "created by pid"; do
	grep -qF "$f" "$T/out" || { fail "stat lacks '$f'"; show; }
done
pass "stat text shows count, widths, payload, histogram, counters"
expect 0 "stat --json" "$SHMKV" stat --json "$K"
cp "$T/out" "$T/stat.json"
if command -v python3 >/dev/null 2>&1; then
	if python3 - "$T/stat.json" "$K" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["key"] == sys.argv[2], d["key"]
assert d["count"] == 1000 and d["key_size"] == 8 and d["value_size"] == 8
assert sum(d["probe_histogram"]) == 1000
assert 0 < d["load"] <= d["max_load"] <= 1
assert d["payload_bytes"] == 16000 and 0 < d["payload_share"] < 1
assert d["inserts"] == 1000 and d["deleted"] == 0 and d["nattch"] == 0
for f in ("shmid", "creator_pid", "created", "segment_bytes", "mode", "attach_time"):
    assert f in d, f
EOF
	then pass "stat --json is valid JSON with consistent numbers"; else fail "stat --json content"; fi
else
	skip "stat --json parse: python3 not installed"
fi

# ---- ls ------------------------------------------------------------------------------------
expect 0 "ls" "$SHMKV" ls
if grep -q "^$K .* 1000 " "$T/out" && grep -q "^$(ftok_key "$P") " "$T/out" && head -1 "$T/out" | grep -q "KEY.*ID.*SIZE.*COUNT.*LOAD.*NATTCH"; then
	pass "ls lists our tables with their counts"
else
	fail "ls output"
	show
fi
expect 0 "ls --json" "$SHMKV" ls --json
if command -v python3 >/dev/null 2>&1; then
	python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))
r = [x for x in rows if x["key"] == sys.argv[2]]
assert len(r) == 1 and r[0]["count"] == 1000, r
' "$T/out" "$K" && pass "ls --json lists the table" || fail "ls --json"
fi

# A segment that is not a table: ls leaves it out, rm refuses it (4).
if command -v ipcmk >/dev/null 2>&1; then
	ID=$(ipcmk -M 4096 2>/dev/null | sed -n 's/.*: *\([0-9][0-9]*\)$/\1/p')
	OK=$(awk -v id="$ID" 'NR > 1 && $2 == id { k = $1; if (k < 0) k += 4294967296; printf "0x%08x", k }' /proc/sysvipc/shm)
	echo "$OK" >>"$T/keys"
	run "$SHMKV" ls
	grep -q "^$OK " "$T/out" && fail "ls lists a foreign segment" || pass "ls leaves out a segment that is not a table"
	expect 4 "rm of a foreign segment is refused" "$SHMKV" rm "$OK"
	err_has "foreign segment: message" "not a shmkv table"
	[ -n "$(seg_id "$OK")" ] && pass "the foreign segment is left alone" || fail "foreign segment removed"
	expect 4 "get from a foreign segment is refused" "$SHMKV" get "$OK" k
else
	skip "foreign segment: ipcmk not installed"
fi

# ---- verify, rm -------------------------------------------------------------------------------
expect 0 "verify a sound table" "$SHMKV" verify "$K"
[ ! -s "$T/out" ] && [ ! -s "$T/err" ] && pass "verify is quiet on success" || fail "verify printed"
expect 0 "verify --repair" "$SHMKV" verify --repair -v "$K"
err_has "verify -v reports" "consistent (1000 keys)"
expect 0 "rm" "$SHMKV" rm "$K" "$P"
[ -z "$(seg_id "$K")" ] && pass "rm removed the segment" || fail "rm left the segment"

# ---- shmkv-load output choices -------------------------------------------------------------
L1=$(new_key)
expect 0 "shmkv-load is quiet when stderr is not a terminal" "$LOAD" -E u64 "$L1" "$T/n.tsv"
[ ! -s "$T/err" ] && pass "no output by default off a terminal" || { fail "unexpected output"; show; }
expect 0 "--progress forces the summary" "$LOAD" --progress -E u64 "$L1" "$T/n.tsv"
err_has "summary line" "shmkv-load: $L1: read 1000, inserted 0, updated 1000, skipped 0, load 0." "records/s"
expect 0 "--quiet" "$LOAD" -q -E u64 "$L1" "$T/n.tsv"
[ ! -s "$T/err" ] && pass "--quiet prints nothing" || fail "--quiet printed"
if command -v script >/dev/null 2>&1; then
	L2=$(new_key)
	script -qec "'$LOAD' -E u64 '$L2' '$T/n.tsv'" /dev/null >"$T/tty" 2>&1 </dev/null
	grep -q "read 1000, inserted 1000" "$T/tty" && pass "a terminal gets the summary" || { fail "terminal summary"; cat "$T/tty"; }
else
	skip "terminal output: script(1) not installed"
fi

finish
