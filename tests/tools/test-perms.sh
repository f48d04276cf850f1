#!/bin/sh
# shmkv chmod and chown (IPC_SET), checked as another user; the warnings
# about kernel.shm_rmid_forced and systemd-logind's RemoveIPC.
#
# As root the script makes the system user shmkvtest when it is missing
# (useradd -r -M: no home, no login) and runs commands as that user with
# setpriv.  It needs root and setpriv; without them it says why and skips.
. "$(dirname "$0")/lib.sh"

S=$SHMKV
expect 2 "chmod with a bad mode" "$S" chmod 0999 0x5f000001
expect 2 "chmod without a table" "$S" chmod 0644
expect 2 "chown to an unknown user" "$S" chown no-such-user-shmkv 0x5f000001
err_has "unknown user: message" "no user 'no-such-user-shmkv'"
expect 2 "chown to an unknown group" "$S" chown :no-such-group-shmkv 0x5f000001
MISSING=$(new_key)
expect 1 "chmod of a missing table" "$S" chmod 0644 "$MISSING"
expect 1 "chown of a missing table" "$S" chown 0 "$MISSING"

K=$(new_key)
"$S" create -K 8 -V 8 -n 10 "$K"
"$S" put "$K" a 1
expect 0 "chmod 0640" "$S" chmod 0640 "$K"
run "$S" stat --json "$K"
grep -q '"mode":"0640"' "$T/out" && pass "stat shows the new mode" || { fail "mode not changed"; show; }
expect 0 "chmod -v reports" "$S" chmod -v 0644 "$K"
err_has "chmod -v message" "mode 0644"
P=$(new_path)
"$S" create -K 8 -V 8 -n 10 "$P"
expect 0 "chmod of two tables, one by path" "$S" chmod 0604 "$K" "$P"
run "$S" stat --json "$P"
grep -q '"mode":"0604"' "$T/out" && pass "chmod by path" || { fail "chmod by path"; show; }
expect 1 "chmod of a table and a missing one exits 1 and changes the other" "$S" chmod 0644 "$MISSING" "$K"
run "$S" stat --json "$K"
grep -q '"mode":"0644"' "$T/out" && pass "...the existing one is changed" || { fail "chmod went on"; show; }

if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null 2>&1; then
	skip "chmod/chown as another user: needs root and setpriv (uid $(id -u))"
	finish
fi
id shmkvtest >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin shmkvtest 2>/dev/null \
	|| useradd -r -M shmkvtest
if ! id shmkvtest >/dev/null 2>&1; then
	fail "cannot create the test user shmkvtest"
	finish
fi
TU=$(id -u shmkvtest)
TG=$(id -g shmkvtest)
as_user() { setpriv --reuid="$TU" --regid="$TG" --clear-groups "$@"; }
chmod 755 "$T"  # the user reads nothing here, but the path must resolve
chmod 644 "$P"

# ---- another user and a root-owned 0644 table -----------------------------------------
expect 0 "a 0644 table: another user reads it" as_user "$S" get "$K" a
printf '1\n' >"$T/want"
out_is "...the value" "$T/want"
expect 4 "a 0644 table: another user may not write it" as_user "$S" put "$K" a 2
err_has "write refused: names the owner and mode" "mode 0644"
expect 4 "another user may not chmod it (EPERM)" as_user "$S" chmod 0666 "$K"
err_has "chmod EPERM: says who may" "Operation not permitted" "only its owner root" "or root may change"
expect 4 "another user may not chown it" as_user "$S" chown shmkvtest "$K"
expect 0 "...and the value is unchanged" "$S" get "$K" a
out_is "...still 1" "$T/want"
"$S" chmod 0600 "$K"
expect 4 "a 0600 table: another user cannot read it (EACCES)" as_user "$S" get "$K" a

# ---- giving a table away ----------------------------------------------------------------
expect 0 "root chowns the table to shmkvtest:" "$S" chown shmkvtest: "$K"
run "$S" stat --json "$K"
grep -q "\"uid\":$TU,\"gid\":$TG" "$T/out" && pass "stat shows the new owner and login group" || { fail "owner not changed"; show; }
expect 0 "the new owner reads it" as_user "$S" get "$K" a
expect 0 "the new owner writes it" as_user "$S" put "$K" b 2
expect 0 "the new owner may chmod it" as_user "$S" chmod 0 "$K"
expect 4 "mode 0: not even the owner can read it" as_user "$S" get "$K" a
expect 0 "mode 0: the owner may still chmod it back" as_user "$S" chmod 0640 "$K"
expect 0 "...and read it again" as_user "$S" get "$K" b
expect 0 "chown of the group only" "$S" chown :0 "$K"
run "$S" stat --json "$K"
grep -q "\"uid\":$TU,\"gid\":0" "$T/out" && pass ":GROUP keeps the owner" || { fail ":GROUP"; show; }
expect 0 "chown by number" "$S" chown 0:0 "$K"
expect 4 "once given back, the former owner may not chmod" as_user "$S" chmod 0666 "$K"

# ---- kernel.shm_rmid_forced ------------------------------------------------------------------
if unshare --ipc true 2>/dev/null; then
	run unshare --ipc sh -c 'echo 1 >/proc/sys/kernel/shm_rmid_forced &&
		"$1" create -K 8 -V 8 -n 10 0x5f0000aa; echo "create $?";
		"$1" stat 0x5f0000aa >/dev/null 2>&1; echo "stat $?";
		printf "a\tb\n" | "$2" 0x5f0000ab; echo "load $?"' sh "$S" "$LOAD"
	err_has "shm_rmid_forced=1: create warns with the fix" \
		"shmkv: 0x5f0000aa: warning: kernel.shm_rmid_forced is 1" "sysctl -w kernel.shm_rmid_forced=0"
	err_has "shm_rmid_forced=1: shmkv-load warns" "shmkv-load: 0x5f0000ab: warning: kernel.shm_rmid_forced is 1"
	# (the library's create itself may fail then: it attaches and detaches)
	grep -q "^stat 1" "$T/out" && pass "...and indeed no table is left" || { fail "rmid_forced effect"; show; }
	run unshare --ipc sh -c '"$1" create -K 8 -V 8 -n 10 0x5f0000aa' sh "$S"
	grep -q shm_rmid_forced "$T/err" && fail "warned with shm_rmid_forced=0" || pass "no warning with shm_rmid_forced=0"
else
	skip "shm_rmid_forced: unshare --ipc is not allowed here"
fi

# ---- systemd-logind RemoveIPC ------------------------------------------------------------------
# A private mount namespace with /run/systemd/system makes the host look
# booted by systemd to the tools, and to nothing else.
R=$(new_key)
"$S" create -K 8 -V 8 -n 10 "$R"
"$S" chown 4242:4242 "$R"
if unshare --mount true 2>/dev/null; then
	with_systemd() {
		run unshare --mount sh -c 'mount -t tmpfs shmkvtest /run && mkdir -p /run/systemd/system && shift && exec "$@"' sh - "$@"
	}
	with_systemd "$S" stat "$R"
	err_has "stat of a regular user's table under systemd warns" "belongs to uid 4242, a regular user" \
		"RemoveIPC=no in /etc/systemd/logind.conf"
	grep -q "^count" "$T/out" && pass "...and still prints the statistics" || { fail "stat output"; show; }
	printf 'k\tv\n' >"$T/kv.tsv"
	with_systemd "$LOAD" "$R" "$T/kv.tsv"
	err_has "shmkv-load into a regular user's table warns" "shmkv-load: $R: warning: the table belongs to uid 4242"
	"$S" chown shmkvtest "$R"
	with_systemd "$S" stat "$R"
	grep -q RemoveIPC "$T/err" && { fail "warned for a system user (uid $TU)"; show; } || pass "no warning for a system user"
	"$S" chown 0 "$R"
	with_systemd "$S" stat "$R"
	grep -q RemoveIPC "$T/err" && fail "warned for root" || pass "no warning for root"
else
	skip "RemoveIPC: unshare --mount is not allowed here"
fi
"$S" chown 4242 "$R"
run "$S" stat "$R"
if [ -d /run/systemd/system ]; then
	err_has "this host runs systemd: stat warns" "RemoveIPC"
else
	grep -q RemoveIPC "$T/err" && fail "warned on a host without systemd" || pass "no RemoveIPC warning on a host without systemd"
fi

finish
