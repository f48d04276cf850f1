# shellcheck shell=sh
# shellcheck disable=SC2154 # me and tmp: set by the script that sources this
# Sourced by bench/run.sh and bench/scale.sh, which set `me` (their name, for
# messages) and `tmp` (their work directory) first: running the benchmark
# program in the background, stopping it on INT, TERM or HUP (the script
# then exits through its EXIT trap), and removing the segments it left.

# The program runs in the background so that a signal to the script is
# passed on at once (a foreground command would delay the trap until it
# ends).
bpid=
# shellcheck disable=SC2317 # called from the traps
stop() {
	if [ -n "$bpid" ]; then
		kill -TERM "$bpid" 2>/dev/null || true
		wait "$bpid" 2>/dev/null || true
	fi
	exit "$1"
}
trap 'stop 130' INT
trap 'stop 143' TERM
trap 'stop 129' HUP

# Runs a command in the background and waits for it, returning its status;
# its pid goes to $tmp/pids for reap.
run_bg() {
	"$@" &
	bpid=$!
	echo "$bpid" >> "$tmp/pids"
	st=0
	wait "$bpid" || st=$?
	bpid=
	return $st
}

# Segments made by a process run_bg ran that are still there once it has
# exited: left only by a SIGKILL (or a build the kill interrupted).
# Removed by id.
reap() {
	[ -f "$tmp/pids" ] || return 0
	while read -r rp; do
		kill -0 "$rp" 2>/dev/null && continue
		ipcs -m -p | awk -v p="$rp" '$3 == p { print $1 }' | while read -r id; do
			echo "$me: removing segment $id left by pid $rp" >&2
			ipcrm -m "$id" || true
		done
	done < "$tmp/pids"
}
