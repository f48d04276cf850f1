#!/bin/sh
# make bench-serve: shmkv-serve against redis-server holding the same keys,
# measured with redis-benchmark over loopback.
#
# Both servers get the same data (SERVE_KEYS keys "key:%012d", values
# "val:%012d": 16 + 16 bytes; redis-benchmark -r draws the same names) and the
# same number of server threads (shmkv-serve --threads, redis-server
# --io-threads).  Before timing, a few keys are read from each server and
# compared with the data.  Each row runs the two servers in turn, ROUNDS
# times (interleaved, so that a noisy neighbour hits both), and keeps each
# one's best round.  Reported per server:
#   rps        redis-benchmark's requests per second
#   cpu/req    the server's utime + stime (/proc/PID/stat) over the round,
#              divided by the requests
#   memory     redis: VmRSS; shmkv: RssAnon + RssFile of the server (its own
#              memory) + the table's segments (root and data), counted once
#              whether or not the server has touched them
# Ratios: shmkv / redis.  Targets (issue 13): cpu/req <= 0.67, rps >= 1,
# memory <= 0.25.
#
# Servers listen on 127.0.0.1 on ports nothing uses, are stopped by pid, and
# the table is removed by id, on any exit.
set -u
# shellcheck disable=SC2034 # names the work directory, in common.sh
TAG=serve
# shellcheck source=bench/serve/common.sh
. "$(dirname "$0")/common.sh"
N=${SERVE_KEYS:-1000000}
ROUNDS=${ROUNDS:-3}
REQ=${REQ:-200000}        # requests of an unpipelined round
REQ_P=${REQ_P:-1000000}   # requests of a -P 16 round
THREADS=${THREADS:-1}
CLIENTS=${CLIENTS:-50}
LOAD=${LOAD:-0.95}        # the table's load (shmkv-load -l, -m)

for t in redis-server redis-benchmark redis-cli; do
	command -v $t >/dev/null || { echo "bench-serve: needs $t (apt-get install redis-server redis-tools)"; exit 2; }
done

KEY=$(unused_key)

cpu_ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }   # utime stime
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

echo "bench-serve: $N keys of 16 + 16 bytes (table load $LOAD), $THREADS server thread(s), $CLIENTS clients, best of $ROUNDS"
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "key:%012d\tval:%012d\n", i, i }' >"$W/data.tsv"
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$16\r\nval:%012d\r\n", i, i }' >"$W/data.resp"

# A served table is loaded once and read: sized for its data at LOAD (the
# tools' default leaves room for 25% more keys at load 0.8).
"$B/shmkv-load" -q -K 16 -V 16 -l "$LOAD" -m "$LOAD" "$KEY" "$W/data.tsv" || exit 1
SP=$(free_port)
"$B/shmkv-serve" -q --trim --threads "$THREADS" --port 0 --port-file "$W/port" "$KEY" &
SPID=$!
PIDS="$PIDS $SPID"
RP=$(free_port)
redis-server --bind 127.0.0.1 --port "$RP" --save '' --appendonly no --io-threads "$THREADS" \
    --dir "$W" --daemonize no --logfile "$W/redis.log" &
RPID=$!
PIDS="$PIDS $RPID"
wait_servers "$W/port" "$RP" 100
SP=$(cat "$W/port")
redis-cli -p "$RP" --pipe <"$W/data.resp" >"$W/pipe.out" 2>&1 || { cat "$W/pipe.out"; exit 1; }
[ "$(redis-cli -p "$RP" dbsize)" = "$N" ] || { echo "bench-serve: redis holds $(redis-cli -p "$RP" dbsize) keys, not $N"; exit 1; }

# answers first: a few keys, both servers, compared with the data
for i in 0 1 $((N / 2)) $((N - 1)); do
	want=$(printf 'val:%012d' $i)
	k=$(printf 'key:%012d' $i)
	for p in "$SP" "$RP"; do
		got=$(redis-cli -p "$p" get "$k")
		[ "$got" = "$want" ] || { echo "bench-serve: port $p: GET $k = '$got', want '$want'"; exit 1; }
	done
done
got=$(redis-cli -p "$SP" mget key:000000000003 nokey | tr '\n' ' ')
[ "$got" = "val:000000000003  " ] || { echo "bench-serve: shmkv MGET: '$got'"; exit 1; }
echo "bench-serve: spot checks passed (GET of 4 keys, MGET) on both servers"

# memory, after loading, before any benchmark traffic touches it
seg=$("$B/shmkv" stat --json "$KEY" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(s.get("bytes", 0) for s in d.get("segments", [])) or d.get("segment_bytes", 0))')
s_own=$(( $(status_kb "$SPID" RssAnon) + $(status_kb "$SPID" RssFile) ))
s_mem=$(( s_own * 1024 + seg ))
r_mem=$(( $(status_kb "$RPID" VmRSS) * 1024 ))

# one_round PID PORT REQUESTS ARGS...: prints "rps user_ticks sys_ticks"
one_round() {
	pid=$1 port=$2 n=$3
	shift 3
	c0=$(cpu_ticks "$pid")
	rps=$(redis-benchmark -p "$port" -c "$CLIENTS" -n "$n" -r "$N" --csv "$@" 2>/dev/null |
	      awk -F, 'NR == 2 { gsub(/"/, "", $2); print $2 }')
	c1=$(cpu_ticks "$pid")
	echo "${rps:-0} $c0 $c1" | awk '{ print $1, $4 - $2, $5 - $3 }'
}

HZ=$(getconf CLK_TCK)
# row NAME REQUESTS ARGS...: ROUNDS interleaved rounds; per server the best
# throughput and, separately, the least CPU per request (with its sys part).
row() {
	name=$1 n=$2
	shift 2
	: >"$W/rounds"
	i=0
	while [ $i -lt "$ROUNDS" ]; do
		echo "s $(one_round "$SPID" "$SP" "$n" "$@")" >>"$W/rounds"
		echo "r $(one_round "$RPID" "$RP" "$n" "$@")" >>"$W/rounds"
		i=$((i + 1))
	done
	awk -v hz="$HZ" -v n="$n" -v name="$name" '
	{ cpu = ($3 + $4) * 1e6 / hz / n
	  if ($2 > rps[$1]) rps[$1] = $2
	  if (!($1 in best) || cpu < best[$1]) { best[$1] = cpu; sys[$1] = $4 * 1e6 / hz / n } }
	END {
		printf "%-13s shmkv %8.0f req/s %5.2f us/req (sys %5.2f) | redis %8.0f req/s %5.2f us/req (sys %5.2f) | rps x%.2f cpu/req x%.2f\n",
		    name, rps["s"], best["s"], sys["s"], rps["r"], best["r"], sys["r"],
		    (rps["r"] ? rps["s"] / rps["r"] : 0), (best["r"] ? best["s"] / best["r"] : 0) }' "$W/rounds"
}

MGET10="MGET key:__rand_int__ key:__rand_int__ key:__rand_int__ key:__rand_int__ key:__rand_int__ key:__rand_int__ key:__rand_int__ key:__rand_int__ key:__rand_int__ key:__rand_int__"
row GET "$REQ" -t get
row GET,-P16 "$REQ_P" -P 16 -t get
row MGETx10 "$REQ" $MGET10
row MGETx10,-P16 "$((REQ_P / 4))" -P 16 $MGET10

awk -v s="$s_mem" -v r="$r_mem" -v own="$s_own" -v seg="$seg" 'BEGIN {
	printf "memory: shmkv %.1f MB (server %.1f MB + segments %.1f MB) | redis %.1f MB | x%.3f\n",
	    s / 1e6, own * 1024 / 1e6, seg / 1e6, r / 1e6, s / r }'
