# shellcheck shell=sh
# Sourced by bench/serve/run.sh and bench/serve/callgrind.sh, which set
# TAG (their work directory's name) first: the build directory B, a work
# directory W, an IPC key with no segment behind it (KEY), free loopback
# ports, waiting for both servers, and the cleanup that, on any exit, stops
# the servers listed in PIDS by pid and removes the table at KEY by id.
B=${SHMKV_BUILD:-build}
case $B in /*) ;; *) B=$(pwd)/$B ;; esac
W=$(mktemp -d "${TMPDIR:-/tmp}/shmkv-bench-$TAG.XXXXXX")
PIDS=""
KEY=""

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do
		n=0
		while kill -0 "$p" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
	done
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

# A numeric IPC key with no segment behind it.
unused_key() {
	python3 -c '
import random
used = {int(l.split()[0]) & 0xffffffff for l in open("/proc/sysvipc/shm").readlines()[1:]}
while True:
    k = 0x5e000000 | random.randrange(1 << 20)
    if k not in used:
        print("0x%08x" % k)
        break'
}

# Waits until shmkv-serve has written its port to the file $1 and
# redis-server on port $2 answers PING, or $3 tenths of a second have passed.
wait_servers() {
	_n=0
	while { [ ! -s "$1" ] || ! redis-cli -p "$2" ping >/dev/null 2>&1; } && [ $_n -lt "$3" ]; do
		sleep 0.1
		_n=$((_n + 1))
	done
}
