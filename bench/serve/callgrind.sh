#!/bin/sh
# make bench-serve-callgrind: user-space instructions per pipelined GET,
# shmkv-serve against redis-server, counted by callgrind (repeatable, unlike
# the timings of run.sh on a shared machine; the kernel's part is not
# counted).  Both hold the same 10,000 keys of 16 + 16 bytes; instrumentation
# is switched on only around `redis-benchmark -c 1 -P 16 -n N -t get`.
# Servers on 127.0.0.1 ports nothing uses, stopped by pid; the table removed
# by id on any exit.
set -u
B=${SHMKV_BUILD:-build}
case $B in /*) ;; *) B=$(pwd)/$B ;; esac
N=${REQ:-40000}
W=$(mktemp -d "${TMPDIR:-/tmp}/shmkv-bench-cg.XXXXXX")
PIDS=""
KEY=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	if [ -n "$KEY" ]; then
		for id in $("$B/shmkv" stat --json "$KEY" 2>/dev/null | grep -o '"id":[0-9]*' | cut -d: -f2 | sort -u); do
			ipcrm -m "$id" 2>/dev/null
		done
	fi
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
KEY=$(python3 -c '
import random
used = {int(l.split()[0]) & 0xffffffff for l in open("/proc/sysvipc/shm").readlines()[1:]}
while True:
    k = 0x5e000000 | random.randrange(1 << 20)
    if k not in used:
        print("0x%08x" % k)
        break')
awk 'BEGIN { for (i = 0; i < 10000; i++) printf "key:%012d\tval:%012d\n", i, i }' >"$W/d.tsv"
awk 'BEGIN { for (i = 0; i < 10000; i++) printf "SET key:%012d val:%012d\n", i, i }' >"$W/d.cmd"
"$B/shmkv-load" -q -K 16 -V 16 "$KEY" "$W/d.tsv" || exit 1
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$W/cg.shmkv" \
    "$B/shmkv-serve" -q --trim --port 0 --port-file "$W/port" "$KEY" 2>"$W/vg1.err" &
SPID=$!
RP=$(free_port)
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$W/cg.redis" \
    redis-server --bind 127.0.0.1 --port "$RP" --save '' --appendonly no --dir "$W" \
    --logfile "$W/redis.log" 2>"$W/vg2.err" &
RPID=$!
PIDS="$SPID $RPID"
n=0
while { [ ! -s "$W/port" ] || ! redis-cli -p "$RP" ping >/dev/null 2>&1; } && [ $n -lt 600 ]; do
	sleep 0.1
	n=$((n + 1))
done
SP=$(cat "$W/port")
redis-cli -p "$RP" <"$W/d.cmd" >/dev/null
for spec in "$SPID $SP shmkv" "$RPID $RP redis"; do
	set -- $spec
	got=$(redis-cli -p "$2" get key:000000004242)
	[ "$got" = val:000000004242 ] || { echo "bench-serve-callgrind: $3 answers '$got'"; exit 1; }
	callgrind_control -i on "$1" >/dev/null 2>&1
	redis-benchmark -p "$2" -c 1 -n "$N" -r 10000 -P 16 -t get -q >/dev/null 2>&1
	callgrind_control -i off "$1" >/dev/null 2>&1
done
kill $SPID $RPID
wait $SPID
wait $RPID
PIDS=""
s=$(awk '/^totals:/ { print $2 }' "$W/cg.shmkv")
r=$(awk '/^totals:/ { print $2 }' "$W/cg.redis")
echo "$s $r $N" | awk '{ printf "instructions per pipelined GET (user space): shmkv-serve %.0f, redis-server %.0f: x%.2f\n", $1 / $3, $2 / $3, $1 / $2 }'
