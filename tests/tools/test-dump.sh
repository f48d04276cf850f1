#!/bin/sh
# shmkv dump: an interrupted dump -o FILE removes FILE and dies of the
# signal (status 128+N); binary records are refused on a terminal unless
# --force; text formats and redirections are not refused.
. "$(dirname "$0")/lib.sh"

# A background job of a script starts with SIGINT ignored, and the dump
# (like gzip) leaves an ignored signal ignored: env --default-signal gives
# the dump a default SIGINT, as an interactive shell would.
if env --default-signal=INT true 2>/dev/null; then
	DFL="env --default-signal=INT"
else
	DFL=""
fi
sigint_ok() {
	[ -n "$DFL" ] || ! grep -q '^SigIgn:.*[2367abef]$' /proc/self/status
}

# ---- a large table ---------------------------------------------------------------
BIG=$(new_key)
N=2000000
head -c $((N * 16)) /dev/urandom >"$T/big.bin"
"$LOAD" -q -f bin -K 8 -V 8 "$BIG" "$T/big.bin"
rm -f "$T/big.bin"
COUNT=$("$SHMKV" stat --json "$BIG" | sed 's/.*"count":\([0-9]*\).*/\1/')
[ "$COUNT" -ge $((N - 10)) ] && pass "a table of $COUNT keys to dump" || fail "big table has $COUNT keys"

# waits (up to 10 s) until the process is blocked writing into a pipe
wait_pipe_write() {
	i=0
	while [ $i -lt 200 ]; do
		grep -q pipe_write "/proc/$1/wchan" 2>/dev/null && return 0
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}

# ---- SIGINT while the dump is blocked writing: deterministic ------------------------
# A FIFO that is open but never read: the dump fills it, blocks in write(),
# and the signal lands mid-dump.
if sigint_ok; then
	for sig in INT TERM; do
		F="$T/fifo.$sig"
		mkfifo "$F"
		exec 3<>"$F"
		$DFL "$SHMKV" dump -o "$F" "$BIG" 2>"$T/err" &
		PID=$!
		if wait_pipe_write $PID; then
			kill -$sig $PID
			RC=0
			{ wait $PID || RC=$?; } 2>/dev/null
			case $sig in INT) want=130 ;; *) want=143 ;; esac
			[ "$RC" -eq "$want" ] && pass "SIG$sig mid-dump: dies of the signal ($RC)" \
				|| { fail "SIG$sig mid-dump: exit $RC, wanted $want"; show; }
			[ ! -e "$F" ] && pass "SIG$sig mid-dump: the output file is removed" \
				|| fail "SIG$sig mid-dump: $F is still there"
			err_has "SIG$sig mid-dump: message" "interrupted" "the partial output is removed"
		else
			fail "SIG$sig: the dump never blocked writing into the FIFO"
			kill -KILL $PID 2>/dev/null
			wait $PID
		fi
		exec 3>&-
		rm -f "$F"
	done
else
	skip "SIGINT tests: SIGINT is ignored here and env --default-signal is missing"
fi

# ---- SIGINT during a dump into a regular file ---------------------------------------
# Racy by nature: the signal is sent as soon as the file has data; should the
# dump have finished first, say so rather than pass or fail.
if sigint_ok; then
	OUT="$T/partial.tsv"
	$DFL "$SHMKV" dump -f tsv -E hex -o "$OUT" "$BIG" 2>"$T/err" &
	PID=$!
	i=0
	while [ $i -lt 400 ] && [ ! -s "$OUT" ]; do
		sleep 0.01
		i=$((i + 1))
	done
	kill -INT $PID 2>/dev/null
	RC=0
	wait $PID || RC=$?
	if [ "$RC" -eq 0 ]; then
		skip "SIGINT into a regular file: the dump finished before the signal"
	else
		[ "$RC" -eq 130 ] && pass "SIGINT into a regular file: exit 130" \
			|| { fail "SIGINT into a regular file: exit $RC"; show; }
		[ ! -e "$OUT" ] && pass "SIGINT into a regular file: partial file removed" \
			|| fail "SIGINT into a regular file: $OUT left behind ($(wc -c <"$OUT") bytes)"
	fi
	rm -f "$OUT"
fi

# An uninterrupted dump -o is complete and stays.
expect 0 "dump -o of the big table" "$SHMKV" dump -f bin -o "$T/all.bin" "$BIG"
[ "$(wc -c <"$T/all.bin")" -eq $((COUNT * 16)) ] && pass "dump -o wrote every record" \
	|| fail "dump -o wrote $(wc -c <"$T/all.bin") bytes, wanted $((COUNT * 16))"
rm -f "$T/all.bin"
"$SHMKV" rm "$BIG"

# ---- binary records to a terminal ------------------------------------------------------
K=$(new_key)
"$SHMKV" create -K 8 -V 8 -n 10 "$K"
"$SHMKV" put "$K" a 1 b 2
if command -v script >/dev/null 2>&1 && script -qec true /dev/null >/dev/null 2>&1; then
	# on_tty CMD: runs CMD with stdout (and stderr) on a pseudo-terminal.
	on_tty() {
		RC=0
		script -qec "$*" /dev/null >"$T/out" 2>&1 </dev/null || RC=$?
		cp "$T/out" "$T/err"
	}
	on_tty "$SHMKV" dump "$K"
	[ "$RC" -eq 2 ] && pass "cdb raw dump to a terminal is refused (exit 2)" || { fail "tty cdb: exit $RC"; show; }
	err_has "terminal refusal says what to do" "refusing to write binary records" "-o FILE" "--force"
	if grep -q '+8,8:' "$T/out"; then fail "records were written to the terminal"; else pass "nothing written to the terminal"; fi
	on_tty "$SHMKV" dump -f bin "$K"
	[ "$RC" -eq 2 ] && pass "bin dump to a terminal is refused" || { fail "tty bin: exit $RC"; show; }
	on_tty "$SHMKV" dump --force "$K"
	[ "$RC" -eq 0 ] && grep -q '+8,8:a' "$T/out" && pass "--force writes to a terminal" || { fail "tty --force: exit $RC"; show; }
	on_tty "$SHMKV" dump -f tsv "$K"
	[ "$RC" -eq 0 ] && grep -q 'b	2' "$T/out" && pass "tsv text to a terminal is allowed" || { fail "tty tsv: exit $RC"; show; }
	on_tty "$SHMKV" dump -E hex "$K"
	[ "$RC" -eq 0 ] && grep -q '+16,16:6100000000000000->' "$T/out" && pass "cdb hex to a terminal is allowed" \
		|| { fail "tty cdb hex: exit $RC"; show; }
	on_tty "$SHMKV" dump -o "$T/tty.cdb" "$K"
	[ "$RC" -eq 0 ] && [ -s "$T/tty.cdb" ] && pass "dump -o FILE from a terminal is allowed" || { fail "tty -o: exit $RC"; show; }
else
	skip "terminal refusal: script(1) cannot give a pseudo-terminal here"
fi
expect 0 "cdb dump into a redirection is not refused" "$SHMKV" dump "$K"
grep -q '^+8,8:a' "$T/out" && pass "redirected dump has the records" || { fail "redirected dump"; show; }
expect 2 "--force is a dump option only" "$SHMKV" get --force "$K" a

finish
