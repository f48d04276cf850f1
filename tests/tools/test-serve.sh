#!/bin/sh
# shmkv-serve against redis-cli, Python's redis client, raw sockets and
# twemproxy; shmkv-load --shard.  Servers listen on 127.0.0.1 on ports the
# kernel picks (--port 0 --port-file), and are stopped by pid; the tables
# are removed by id (lib.sh's cleanup), whatever happens.
. "$(dirname "$0")/lib.sh"

SERVE=$B/shmkv-serve
PY=/usr/bin/python3 # Debian's, where python3-redis is (not a pyenv one on PATH)
CLIENT="$(cd "$(dirname "$0")" && pwd)/serve-test.py"

stop_servers() {
	for p in $(cat "$T/servers" 2>/dev/null); do
		kill "$p" 2>/dev/null
	done
	for p in $(cat "$T/servers" 2>/dev/null); do
		# wait only works for our own children; a kill -0 loop for the rest
		n=0
		while kill -0 "$p" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
		kill -9 "$p" 2>/dev/null
	done
}
trap 'stop_servers; cleanup' EXIT

# start_server NAME ARGS...: starts shmkv-serve on a free port; sets PORT
# and SPID (0 and a failed check if it did not come up).
start_server() {
	name=$1
	shift
	rm -f "$T/port.$name"
	"$SERVE" -q --port 0 --port-file "$T/port.$name" "$@" 2>"$T/serve-$name.err" &
	SPID=$!
	echo "$SPID" >>"$T/servers"
	n=0
	while [ ! -s "$T/port.$name" ] && [ $n -lt 100 ] && kill -0 "$SPID" 2>/dev/null; do
		sleep 0.05
		n=$((n + 1))
	done
	PORT=$(cat "$T/port.$name" 2>/dev/null || echo 0)
	if [ "$PORT" = 0 ]; then
		fail "shmkv-serve $name did not start"
		sed 's/^/#   /' "$T/serve-$name.err"
	fi
}

# A TCP port nothing listens on now (for nutcracker, which cannot pick one).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# python3 makes the data and finds free ports (CI runs check-asan before
# `make deps` installs it).
if ! command -v python3 >/dev/null 2>&1; then
	skip "shmkv-serve tests: python3 not installed (make deps)"
	finish
fi
have_py=0
$PY -c 'import redis' 2>/dev/null && have_py=1
have_cli=0
command -v redis-cli >/dev/null 2>&1 && have_cli=1

# pyrun MODE PORT ARGS...: the Python client's checks (its lines count).
pyrun() {
	if [ $have_py = 0 ]; then
		skip "python3-redis: $1 (apt-get install python3-redis)"
		return
	fi
	$PY "$CLIENT" "$@" || FAIL=$((FAIL + 1))
}

# ---- the data: text keys, and binary keys (NUL inside, high bytes, CR LF) ----------
python3 - "$T/data.hex" "$T/bin.hex" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(300):
        f.write("%s\t%s\n" % ((b"k%d" % i).hex(), (b"v%d" % i).hex()))
with open(sys.argv[2], "w") as f:
    for k, v in [(b"a\x00b", b"nul inside"), (b"\xff\xfe\x80", b"high bytes"),
                 (b"\r\n x", b"crlf blank"), (b"k 1", b"\x00\x01binary"), (b"\x01", b"one")]:
        f.write("%s\t%s\n" % (k.hex(), v.hex()))
EOF
cat "$T/data.hex" "$T/bin.hex" >"$T/all.hex"

K1=$(new_key)
"$LOAD" -q -E hex -K 16 -V 16 "$K1" "$T/all.hex" || fail "load the served table"

# ---- usage ------------------------------------------------------------------
expect 0 "--help" "$SERVE" --help
grep -q -- '--port-file' "$T/out" && pass "--help lists --port-file" || fail "--help lacks --port-file"
expect 2 "no TABLE: usage error" "$SERVE"
err_has "no TABLE: says so" "shmkv-serve: missing TABLE"
expect 2 "--port 70000: usage error" "$SERVE" --port 70000 "$K1"
expect 1 "a table that does not exist" "$SERVE" --port 0 0x5fffff01
err_has "a missing table is named" "0x5fffff01"

# ---- redis-cli -------------------------------------------------------------------
start_server main --trim --threads 2 --unix "$T/sock" "$K1"
P=$PORT
MAIN=$SPID
expect 4 "a port another server has: refused (SO_REUSEPORT must not share it)" \
	"$SERVE" -q --port "$P" "$K1"
err_has "a taken port: the advice" "choose another --port, or --port 0"
if [ $have_cli = 1 ] && [ "$P" != 0 ]; then
	rc() { run redis-cli -p "$P" "$@"; }
	rc get k7
	[ "$(cat "$T/out")" = v7 ] && [ ! -s "$T/err" ] && pass "redis-cli GET" || { fail "redis-cli GET"; show; }
	rc mget k1 nope k2
	printf 'v1\n\nv2\n' >"$T/want"
	out_is "redis-cli MGET with a missing key" "$T/want"
	rc exists k1 k2 nope
	[ "$(cat "$T/out")" = 2 ] && pass "redis-cli EXISTS" || { fail "redis-cli EXISTS"; show; }
	rc strlen k10
	[ "$(cat "$T/out")" = 3 ] && pass "redis-cli STRLEN (trimmed)" || { fail "redis-cli STRLEN"; show; }
	rc dbsize
	[ "$(cat "$T/out")" = 305 ] && pass "redis-cli DBSIZE" || { fail "redis-cli DBSIZE"; show; }
	rc ping
	[ "$(cat "$T/out")" = PONG ] && pass "redis-cli PING" || { fail "redis-cli PING"; show; }
	rc echo "hello world"
	[ "$(cat "$T/out")" = "hello world" ] && pass "redis-cli ECHO" || { fail "redis-cli ECHO"; show; }
	rc info table
	grep -q '^values_trimmed:yes' "$T/out" && grep -q '^keys:305' "$T/out" &&
		pass "redis-cli INFO: the table's section" || { fail "redis-cli INFO"; show; }
	rc --scan --pattern 'k29*'
	[ "$(LC_ALL=C sort "$T/out" | tr '\n' ' ')" = "k29 k290 k291 k292 k293 k294 k295 k296 k297 k298 k299 " ] &&
		pass "redis-cli --scan --pattern" || { fail "redis-cli --scan"; show; }
	rc set a b
	grep -q READONLY "$T/out" && pass "redis-cli SET: READONLY" || { fail "redis-cli SET"; show; }
	rc flushall
	grep -q "unknown command 'flushall'" "$T/out" && pass "redis-cli: unknown command" ||
		{ fail "redis-cli unknown command"; show; }
	rc get 0123456789abcdefX
	grep -q "longer than the table's key width of 16" "$T/out" && pass "redis-cli: a key too long" ||
		{ fail "redis-cli long key"; show; }
	rc command count
	[ "$(cat "$T/out")" -ge 15 ] 2>/dev/null && pass "redis-cli COMMAND COUNT" || { fail "COMMAND COUNT"; show; }
	rc hello 3
	grep -q NOPROTO "$T/out" && pass "redis-cli HELLO 3: NOPROTO" || { fail "HELLO 3"; show; }
	# commands from standard input, as a script would send them
	printf 'GET k3\nPING\nSELECT 0\n' | redis-cli -p "$P" >"$T/out" 2>"$T/err"
	printf 'v3\nPONG\nOK\n' >"$T/want"
	out_is "redis-cli reading commands from stdin" "$T/want"
	# interactive start (a terminal): COMMAND DOCS must not make it fail
	printf 'get k4\nquit\n' | TERM=dumb timeout 20 script -qec "redis-cli -p $P" /dev/null >"$T/out" 2>&1
	grep -q '"v4"' "$T/out" && ! grep -qi 'error' "$T/out" &&
		pass "interactive redis-cli starts cleanly and reads" || { fail "interactive redis-cli"; show; }
	run redis-cli -s "$T/sock" get k5
	[ "$(cat "$T/out")" = v5 ] && pass "redis-cli over the Unix socket" || { fail "Unix socket"; show; }
	[ "$(stat -c %a "$T/sock")" = 600 ] && pass "the Unix socket's mode is 0600" || fail "Unix socket mode"
	# pipelined: redis-benchmark's own answers must come back in order
	run redis-benchmark -p "$P" -n 2000 -c 4 -P 16 -q -t get
	grep -q 'GET' "$T/out" && pass "redis-benchmark -P 16 runs against it" || { fail "redis-benchmark"; show; }
else
	skip "redis-cli tests (apt-get install redis-tools)"
fi

# ---- Python's redis client, raw sockets -------------------------------------------
if [ "$P" != 0 ]; then
	pyrun basic "$P" "$T/data.hex" "$T/bin.hex"
	pyrun badproto "$P" k1
	kill -0 "$MAIN" 2>/dev/null && pass "the server survived the bad input" || fail "the server died"
	pyrun many "$P" 1000 k9 v9
fi

# ---- a table without --trim: values come back at full width; one worker -----------
start_server full "$K1"
[ "$PORT" != 0 ] && pyrun slow "$PORT" k9 # both clients on the one worker
if [ $have_cli = 1 ] && [ "$PORT" != 0 ]; then
	redis-cli -p "$PORT" strlen k1 >"$T/out"
	[ "$(cat "$T/out")" = 16 ] && pass "without --trim: values at full width" || { fail "no --trim"; show; }
	redis-cli -p "$PORT" info table | grep -q '^values_trimmed:no' && pass "INFO says values are not trimmed" ||
		fail "INFO values_trimmed:no"
fi

# ---- --writable, --requirepass, --max-clients, --timeout ---------------------------
K2=$(new_key)
"$SHMKV" create -K 16 -V 16 -n 100 "$K2"
start_server w --writable --trim "$K2"
[ "$PORT" != 0 ] && pyrun writable "$PORT"
"$SHMKV" get "$K2" w3 >"$T/out" 2>&1
[ "$(cat "$T/out")" = three ] && pass "a SET through the server is in the table" || { fail "SET stored"; show; }

start_server auth --requirepass s3cret "$K1"
if [ $have_cli = 1 ] && [ "$PORT" != 0 ]; then
	run redis-cli -p "$PORT" get k1
	grep -q NOAUTH "$T/out" && pass "--requirepass: NOAUTH before AUTH" || { fail "NOAUTH"; show; }
	run redis-cli -p "$PORT" -a s3cret --no-auth-warning get k1
	[ "$(cat "$T/out")" = v1 ] && pass "--requirepass: AUTH then GET" || { fail "AUTH"; show; }
	run redis-cli -p "$PORT" -a wrong --no-auth-warning get k1
	grep -q WRONGPASS "$T/out" "$T/err" && pass "a wrong password: WRONGPASS" || { fail "WRONGPASS"; show; }
fi

start_server limits --max-clients 2 --timeout 1 --trim --unix "$T/sock2" --unix-mode 0660 "$K1"
if [ "$PORT" != 0 ]; then
	[ "$(stat -c %a "$T/sock2")" = 660 ] && pass "--unix-mode 0660" || fail "--unix-mode: $(stat -c %a "$T/sock2")"
	python3 - "$PORT" <<'EOF' && pass "--max-clients 2: the third client is refused" || fail "--max-clients"
import socket, sys, time
p = int(sys.argv[1])
a = socket.create_connection(("127.0.0.1", p)); b = socket.create_connection(("127.0.0.1", p))
a.sendall(b"PING\r\n"); b.sendall(b"PING\r\n")
assert a.recv(100) == b"+PONG\r\n" and b.recv(100) == b"+PONG\r\n"
c = socket.create_connection(("127.0.0.1", p)); c.settimeout(2)
assert c.recv(100).startswith(b"-ERR max number of clients reached")
EOF
	python3 - "$PORT" <<'EOF' && pass "--timeout 1: an idle client is closed, an active one is not" || fail "--timeout"
import socket, sys, time
p = int(sys.argv[1])
idle = socket.create_connection(("127.0.0.1", p)); busy = socket.create_connection(("127.0.0.1", p))
for _ in range(6):
    time.sleep(0.5); busy.sendall(b"PING\r\n"); assert busy.recv(100) == b"+PONG\r\n"
idle.settimeout(2)
assert idle.recv(100) == b""
EOF
fi

# ---- following replaces and grows; SIGHUP; SIGTERM ------------------------------------
if [ "$P" != 0 ]; then
	printf 'k1\tnew1\n' >"$T/new.tsv"
	pyrun replace "$P" k1 v1 new1 "$LOAD" -q --replace "$K1" "$T/new.tsv"
	pyrun during "$P" k1 new1 "$SHMKV" grow -n 5000 "$K1"
fi

K3=$(new_key)
printf 'h\tbefore\n' | "$LOAD" -q -K 8 -V 8 "$K3"
start_server hup --trim "$K3"
if [ $have_cli = 1 ] && [ "$PORT" != 0 ]; then
	HP=$SPID
	"$SHMKV" rm "$K3"
	printf 'h\tafter\n' | "$LOAD" -q -K 8 -V 8 "$K3"
	[ "$(redis-cli -p "$PORT" get h)" = before ] && pass "a removed table goes on serving until SIGHUP" ||
		fail "before SIGHUP"
	kill -HUP "$HP"
	n=0
	while [ "$(redis-cli -p "$PORT" get h)" != after ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
	[ "$(redis-cli -p "$PORT" get h)" = after ] && pass "SIGHUP opens the table again" || fail "SIGHUP"
	kill -TERM "$HP"
	wait "$HP"
	rc=$?
	[ $rc = 0 ] && pass "SIGTERM: exits 0" || fail "SIGTERM: exit $rc"
fi

# ---- shmkv-load --shard and twemproxy --------------------------------------------------
expect 2 "--shard without --hash" "$LOAD" --shard 0/3 "$K2" "$T/new.tsv"
err_has "--shard without --hash: names the hashes" "fnv1a_64"
expect 2 "--shard 3/3: out of range" "$LOAD" --shard 3/3 --hash crc32a "$K2" "$T/new.tsv"
expect 2 "--hash md4: unknown" "$LOAD" --shard 0/3 --hash md4 "$K2" "$T/new.tsv"

# 2000 keys, some with bytes >= 0x80 (twemproxy widens them through char)
python3 - "$T/shard.hex" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(2000):
        k = b"user:%d" % i if i % 10 else b"\xe9t\xe9:%d" % i
        f.write("%s\t%s\n" % (k.hex(), (b"val%d" % i).hex()))
EOF
if command -v nutcracker >/dev/null 2>&1 && [ $have_py = 1 ]; then
	for hash in fnv1a_64 crc32a; do
		servers=""
		total=0
		for s in 0 1 2; do
			k=$(new_key)
			"$LOAD" -q -E hex -K 16 -V 16 --shard $s/3 --hash $hash "$k" "$T/shard.hex"
			total=$((total + $("$SHMKV" stat --json "$k" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')))
			start_server "$hash$s" --trim "$k"
			servers="$servers
   - 127.0.0.1:$PORT:1 shard$s"
		done
		[ $total = 2000 ] && pass "$hash: the three shards hold each key once" || fail "$hash: shards hold $total keys"
		NP=$(free_port)
		cat >"$T/nutcracker-$hash.yml" <<EOF
shmkv:
  listen: 127.0.0.1:$NP
  hash: $hash
  distribution: modula
  redis: true
  auto_eject_hosts: false
  servers:$servers
EOF
		SP=$(free_port)
		nutcracker -c "$T/nutcracker-$hash.yml" -s "$SP" -a 127.0.0.1 -o "$T/nutcracker.log" &
		echo $! >>"$T/servers"
		n=0
		until python3 -c "import socket; socket.create_connection(('127.0.0.1', $NP))" 2>/dev/null ||
		      [ $n -gt 50 ]; do sleep 0.1; n=$((n + 1)); done
		pyrun proxy "$NP" "$T/shard.hex" $hash
	done
else
	skip "twemproxy tests (apt-get install nutcracker python3-redis)"
fi

# Under check-asan (and a TSan build), a server's sanitizer report goes to
# its stderr: stop them all and look.
stop_servers
if grep -l -e 'Sanitizer' -e 'runtime error' "$T"/serve-*.err >/dev/null 2>&1; then
	fail "a server's stderr holds a sanitizer report"
	grep -h -A 12 -e 'Sanitizer' -e 'runtime error' "$T"/serve-*.err | head -40 | sed 's/^/#   /'
else
	pass "no server reported a sanitizer error"
fi

finish
