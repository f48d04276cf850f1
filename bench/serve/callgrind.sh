#!/bin/sh
# make bench-serve-callgrind: user-space instructions per pipelined GET,
# shmkv-serve against redis-server, counted by callgrind (repeatable, unlike
# the timings of run.sh on a shared machine; the kernel's part is not
# counted).  Both hold the same 10,000 keys of 16 + 16 bytes; instrumentation
# is switched on only around `redis-benchmark -c 1 -P 16 -n N -t get`.
# Servers on 127.0.0.1 ports nothing uses, stopped by pid; the table removed
# by id on any exit.
set -u
N=${REQ:-40000}
# shellcheck disable=SC2034 # names the work directory, in common.sh
TAG=cg
# shellcheck source=bench/serve/common.sh
. "$(dirname "$0")/common.sh"
KEY=$(unused_key)
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
wait_servers "$W/port" "$RP" 600
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
