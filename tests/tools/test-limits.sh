#!/bin/sh
# Kernel refusals become advice: kernel.shmmax, kernel.shmall, kernel.shmmni,
# vm.nr_hugepages, and a segment another user owns (EACCES, EPERM).
#
# Lowering limits needs root.  The script re-runs itself in a private IPC
# namespace (unshare --ipc) when it can: there the kernel.shm* limits and
# the segments are the namespace's own, so nothing outside is disturbed, and
# every segment vanishes with the namespace.  Without one, only
# kernel.shmmax is lowered, host-wide, for one command, and restored by a
# trap even on failure; shmall and shmmni are then skipped.
if [ "$(id -u)" -eq 0 ] && [ "${SHMKV_IN_IPC_NS:-}" != 1 ] && unshare --ipc true 2>/dev/null; then
	SHMKV_IN_IPC_NS=1 exec unshare --ipc sh "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
	skip "kernel limits: lowering kernel.shmmax/shmall/shmmni needs root (uid $(id -u))"
	skip "EACCES advice: needs root to own a segment another user then opens"
fi

NS=${SHMKV_IN_IPC_NS:-0}
OLD_SHMMAX=$(cat /proc/sys/kernel/shmmax)
OLD_SHMALL=$(cat /proc/sys/kernel/shmall)
OLD_SHMMNI=$(cat /proc/sys/kernel/shmmni)
restore_limits() {
	[ "$(id -u)" -eq 0 ] || return 0
	echo "$OLD_SHMMAX" >/proc/sys/kernel/shmmax
	echo "$OLD_SHMALL" >/proc/sys/kernel/shmall
	echo "$OLD_SHMMNI" >/proc/sys/kernel/shmmni
}
trap 'restore_limits; cleanup' EXIT

# The N of the first "sysctl -w NAME=N" in the last stderr.
advised() {
	sed -n "s/.*sysctl -w $1=\([0-9][0-9]*\).*/\1/p" "$T/err" | head -1
}

if [ "$(id -u)" -eq 0 ]; then
	[ "$NS" = 1 ] && echo "# in a private IPC namespace" || echo "# host-wide (no IPC namespace): only kernel.shmmax is lowered"

	# ---- kernel.shmmax --------------------------------------------------------------
	K=$(new_key)
	echo 1048576 >/proc/sys/kernel/shmmax
	run "$SHMKV" create -K 8 -V 8 -n 200000 "$K"
	[ "$NS" = 1 ] || restore_limits
	if [ "$RC" -eq 4 ]; then pass "shmmax: create refused (4)"; else fail "shmmax: exit $RC"; show; fi
	N=$(advised kernel.shmmax)
	if [ -n "$N" ] && [ "$N" -gt 1048576 ]; then
		pass "shmmax: advice gives sysctl -w kernel.shmmax=$N"
	else
		fail "shmmax: no usable advice"
		show
	fi
	err_prefixed "shmmax messages"
	if [ -n "$N" ]; then
		echo "$N" >/proc/sys/kernel/shmmax
		run "$SHMKV" create -K 8 -V 8 -n 200000 "$K"
		[ "$NS" = 1 ] || restore_limits
		if [ "$RC" -eq 0 ] && "$SHMKV" stat --json "$K" | grep -q "\"segment_bytes\":$N,"; then
			pass "shmmax: the advised value is exactly the size needed"
		else
			fail "shmmax: create with the advised limit: exit $RC"
			show
		fi
	fi
	# The same advice from shmkv-load, which sizes the table from its input.
	awk 'BEGIN { for (i = 1; i <= 100000; i++) printf "%d\t%d\n", i, i }' >"$T/100k.tsv"
	K2=$(new_key)
	echo 1048576 >/proc/sys/kernel/shmmax
	run "$LOAD" -E u64 "$K2" "$T/100k.tsv"
	[ "$NS" = 1 ] || restore_limits
	if [ "$RC" -eq 4 ] && [ -n "$(advised kernel.shmmax)" ] && [ -z "$(seg_id "$K2")" ]; then
		pass "shmmax: shmkv-load refused with the advice, no table left"
	else
		fail "shmmax: shmkv-load exit $RC"
		show
	fi
	restore_limits

	# ---- kernel.shmall (pages) and kernel.shmmni: namespace only ------------------
	if [ "$NS" = 1 ]; then
		K3=$(new_key)
		echo 16 >/proc/sys/kernel/shmall
		run "$SHMKV" create -K 8 -V 8 -n 100000 "$K3"
		if [ "$RC" -eq 4 ]; then pass "shmall: create refused (4)"; else fail "shmall: exit $RC"; show; fi
		N=$(advised kernel.shmall)
		if [ -n "$N" ] && [ "$N" -gt 16 ]; then
			pass "shmall: advice gives sysctl -w kernel.shmall=$N (pages)"
			echo "$N" >/proc/sys/kernel/shmall
			expect 0 "shmall: the advised value is enough" "$SHMKV" create -K 8 -V 8 -n 100000 "$K3"
		else
			fail "shmall: no usable advice"
			show
		fi
		restore_limits

		USED=$(awk 'NR > 1' /proc/sysvipc/shm | wc -l)
		echo "$USED" >/proc/sys/kernel/shmmni
		K4=$(new_key)
		run "$SHMKV" create -K 8 -V 8 -n 10 "$K4"
		if [ "$RC" -eq 4 ]; then pass "shmmni: create refused (4)"; else fail "shmmni: exit $RC"; show; fi
		N=$(advised kernel.shmmni)
		# a table is two segments: its root and its first generation's data
		if [ "$N" = $((USED + 2)) ]; then
			pass "shmmni: advice gives sysctl -w kernel.shmmni=$N"
			echo "$N" >/proc/sys/kernel/shmmni
			expect 0 "shmmni: the advised value is enough" "$SHMKV" create -K 8 -V 8 -n 10 "$K4"
		else
			fail "shmmni: advice '$N', wanted $((USED + 2))"
			show
		fi
		restore_limits
	else
		skip "shmall, shmmni: need a private IPC namespace (unshare --ipc) not to disturb the host"
	fi

	# ---- a segment owned by another user ---------------------------------------------
	if command -v setpriv >/dev/null 2>&1; then
		as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
		K5=$(new_key)
		"$SHMKV" create -K 8 -V 8 -n 10 "$K5"
		"$SHMKV" put "$K5" k v
		expect 4 "EACCES: get as another user is refused (4)" as_nobody "$SHMKV" get "$K5" k
		err_has "EACCES: advice names the owner and mode" "owner root (uid 0)" "mode 0600" "you are nobody (uid 65534)"
		err_prefixed "EACCES messages"
		printf 'a\tb\n' >"$T/ab.tsv"
		chmod 644 "$T/ab.tsv"
		expect 4 "EACCES: shmkv-load as another user is refused (4)" as_nobody "$LOAD" "$K5" "$T/ab.tsv"
		err_has "EACCES: shmkv-load advice" "owner root (uid 0)" "mode 0600"
		run as_nobody "$SHMKV" ls
		grep -q "^$K5 .*no read access" "$T/out" && pass "ls shows an unreadable table without counts" || { fail "ls as nobody"; show; }
		K6=$(new_key)
		"$SHMKV" create -K 8 -V 8 -n 10 -M 0644 "$K6"
		"$SHMKV" put "$K6" k v
		expect 0 "a 0644 table is readable by others" as_nobody "$SHMKV" get "$K6" k
		expect 4 "...but not writable (4)" as_nobody "$SHMKV" put "$K6" k w
		expect 4 "EPERM: rm by another user is refused (4)" as_nobody "$SHMKV" rm "$K6"
		err_has "EPERM: advice names the owner" "only its owner root (uid 0)"
		[ -n "$(seg_id "$K6")" ] && pass "EPERM: the table is still there" || fail "EPERM: table gone"
	else
		skip "EACCES: setpriv not installed"
	fi
fi

# ---- huge pages (no root needed to be refused) -----------------------------------------
# Ask for more huge pages than are free: the kernel refuses at creation.
FREE=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
HPS=$(awk '/^Hugepagesize:/ { print $2 }' /proc/meminfo)
if [ -z "$FREE" ] || [ -z "$HPS" ]; then
	skip "huge pages: this kernel has none"
elif [ "$(cat /proc/sys/vm/nr_overcommit_hugepages 2>/dev/null || echo 0)" -gt 0 ]; then
	skip "huge pages: vm.nr_overcommit_hugepages lets creation succeed"
else
	K7=$(new_key)
	run "$SHMKV" create -H -K 8 -V 8 -c $(( (FREE + 4) * HPS * 1024 )) "$K7"
	if [ "$RC" -eq 4 ]; then pass "hugepages: create refused (4)"; else fail "hugepages: exit $RC"; show; fi
	N=$(advised vm.nr_hugepages)
	TOTAL=$(awk '/^HugePages_Total:/ { print $2 }' /proc/meminfo)
	HGID=$(cat /proc/sys/vm/hugetlb_shm_group)
	if [ "$(id -u)" -ne 0 ] && ! id -G | tr ' ' '\n' | grep -qx "$HGID"; then
		# Outside vm.hugetlb_shm_group the kernel says EPERM first.
		G=$(advised vm.hugetlb_shm_group)
		[ "$G" = "$(id -g)" ] && pass "hugepages: advice gives sysctl -w vm.hugetlb_shm_group=$G" ||
			{ fail "hugepages: no vm.hugetlb_shm_group advice"; show; }
	elif [ -n "$N" ] && [ "$N" -ge $((TOTAL + 4)) ]; then
		pass "hugepages: advice gives sysctl -w vm.nr_hugepages=$N"
	else
		fail "hugepages: advice '$N' (total $TOTAL, free $FREE)"
		show
	fi
fi

finish
