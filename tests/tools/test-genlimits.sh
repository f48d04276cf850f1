#!/bin/sh
# A replace or grow needs room for two generations at once: when
# kernel.shmmax or kernel.shmall does not allow the new data segment beside
# the current one, shmkv-load --replace and shmkv grow change nothing, leave
# nothing behind and name the sysctl that fixes it.
#
# The limits are lowered only inside a private IPC namespace (the script
# re-runs itself under unshare --ipc as root), never host-wide.
if [ "$(id -u)" -eq 0 ] && [ "${SHMKV_IN_IPC_NS:-}" != 1 ] && unshare --ipc true 2>/dev/null; then
	SHMKV_IN_IPC_NS=1 exec unshare --ipc sh "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

if [ "${SHMKV_IN_IPC_NS:-}" != 1 ]; then
	skip "generation limits: need root and a private IPC namespace (unshare --ipc)"
	finish
fi
echo "# in a private IPC namespace"

jfield() {
	"$SHMKV" stat --json "$1" | grep -o "\"$2\":[^,}]*" | head -1 | cut -d: -f2 | tr -d '"'
}
key0_count() { awk 'NR > 1 && $1 == 0' /proc/sysvipc/shm | wc -l; }
pages_used() {
	awk 'NR > 1 { p += int(($4 + 4095) / 4096) } END { print p + 0 }' /proc/sysvipc/shm
}
PAGE=$(getconf PAGESIZE)

awk 'BEGIN { for (i = 1; i <= 20000; i++) printf "%d\t%d\n", i, i }' >"$T/in.tsv"
K=$(new_key)
"$LOAD" -q -E u64 -n 20000 "$K" "$T/in.tsv"
entries "$K" >"$T/before"
G=$(jfield "$K" generation)
DATA=$(jfield "$K" segment_bytes)
N0=$(key0_count)

# ---- kernel.shmall: both generations do not fit ------------------------------------
echo $(( $(pages_used) + (DATA + PAGE - 1) / PAGE - 1 )) >/proc/sys/kernel/shmall
expect 4 "shmall: --replace is refused" "$LOAD" --replace -E u64 "$K" "$T/in.tsv"
err_has "shmall: the message names kernel.shmall and the generation left serving" \
	"kernel.shmall" "sysctl -w kernel.shmall=" "generation $G still serves"
expect 4 "shmall: grow is refused" "$SHMKV" grow --entries 20001 "$K"
err_has "shmall: grow names kernel.shmall" "kernel.shmall"
entries "$K" >"$T/after"
same "shmall: the data is intact" "$T/before" "$T/after"
[ "$(jfield "$K" generation)" = "$G" ] && pass "shmall: same generation" || fail "shmall: generation moved"
[ "$(key0_count)" = "$N0" ] && pass "shmall: no data segment left behind" || fail "shmall: key-0 segments $N0 -> $(key0_count)"
N=$(sed -n 's/.*sysctl -w kernel.shmall=\([0-9][0-9]*\).*/\1/p' "$T/err" | head -1)
if [ -n "$N" ]; then
	echo "$N" >/proc/sys/kernel/shmall
	expect 0 "shmall: the advised value lets grow run" "$SHMKV" grow --entries 20001 "$K"
fi
echo 18446744073692774399 >/proc/sys/kernel/shmall

# ---- kernel.shmmax: the new data segment is too large -----------------------------------
G=$(jfield "$K" generation)
DATA=$(jfield "$K" segment_bytes)
entries "$K" >"$T/before"
echo "$DATA" >/proc/sys/kernel/shmmax
expect 4 "shmmax: --replace into a 4x larger generation is refused" "$LOAD" --replace -E u64 -n 80000 "$K" "$T/in.tsv"
err_has "shmmax: the message names kernel.shmmax" "kernel.shmmax" "sysctl -w kernel.shmmax="
expect 4 "shmmax: grow is refused" "$SHMKV" grow --entries 80000 "$K"
err_has "shmmax: grow names kernel.shmmax" "kernel.shmmax" "generation $G still serves"
entries "$K" >"$T/after"
same "shmmax: the data is intact" "$T/before" "$T/after"
[ "$(jfield "$K" generation)" = "$G" ] && pass "shmmax: same generation" || fail "shmmax: generation moved"
[ "$(key0_count)" = "$N0" ] && pass "shmmax: no data segment left behind" || fail "shmmax: key-0 segments $N0 -> $(key0_count)"
expect 0 "shmmax: a replace of the same size still works" "$LOAD" -q --replace -E u64 "$K" "$T/in.tsv"

finish
