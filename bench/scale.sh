#!/bin/sh
# bench/scale.sh: the scale curve (`make bench-scale`).  Tables of 1M, 4M,
# 16M, 64M and 256M entries of 8-byte keys and values at load 0.8, each
# against the machine's random reads over a buffer of its size, first with
# 4 KiB pages, then with huge pages; and shmkv-load --replace on the same
# sizes.  Writes bench/results/scale.tsv and scale-load.tsv (the raw
# figures), scale.md (the tables) and scale.png (the plot).
#
# Memory: the 256M point holds a 5.4 GB table and a 5.4 GB buffer at once
# (12 GB with the data set).  Sizes that do not fit in what the machine has
# available are skipped, with a message, never squeezed in.
#
# As root, the huge-page run raises vm.nr_hugepages by what its largest size
# needs and puts the old value back on exit, whatever the exit path (EXIT
# trap; INT, TERM and HUP stop the program and exit through it); likewise
# kernel.shmmax and kernel.shmall if they are too small for one table.
# Without root, or without enough free pages, it says so and the huge-page
# figures are missing from the report.
#
# Environment: SHMKV_SCALE_SIZES (default 1M,4M,16M,64M,256M),
# SHMKV_SCALE_OUT (default bench/results), SHMKV_SCALE_LOAD=0 skips the
# shmkv-load runs, SHMKV_SCALE_HUGE=0 the huge-page run.
set -eu

B=${SHMKV_BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
bin=$B/scale
load=$B/shmkv-load
shmkv=$B/shmkv
for p in "$bin" "$load" "$shmkv"; do
	[ -x "$p" ] || { echo "scale.sh: $p missing: run make bench-scale" >&2; exit 2; }
done
sizes=${SHMKV_SCALE_SIZES:-1M,4M,16M,64M,256M}
out=${SHMKV_SCALE_OUT:-$here/results}
mkdir -p "$out"
tmp=$(mktemp -d /tmp/shmkv-scale.XXXXXX)
start=$(date +%s)

# ---- Restoring what the run changed, and removing what it made ----------

restores=   # "file old-value" lines, put back in reverse order
set_sysctl() { # file value: remember the old value, then write the new
	restores="$1 $(cat "$1")
$restores"
	echo "$2" > "$1"
}
restore() {
	printf '%s\n' "$restores" | while read -r f v; do
		[ -n "$f" ] || continue
		echo "$v" > "$f" && echo "scale.sh: $f restored to $v" >&2 ||
			echo "scale.sh: could not restore $f to $v: do it by hand" >&2
	done
	restores=
}
# The shmkv-load table of the size being measured: its root's id, removed
# with its data segments by `shmkv rm` once the id still matches.
load_key=
load_id=
drop_load_table() {
	[ -n "$load_id" ] || return 0
	if [ "$(ipcs -m | awk -v k="$load_key" '$1 == k { print $2 }')" = "$load_id" ]; then
		"$shmkv" rm "$load_key" >/dev/null || echo "scale.sh: shmkv rm $load_key failed" >&2
	fi
	load_id=
}
me=scale.sh
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
trap 'drop_load_table; restore; reap; rm -rf "$tmp"' EXIT


# 16M -> 16777216 (K and M: 2^10 and 2^20, as the program reads them)
count() {
	case $1 in
	*[Mm]) echo $(( ${1%?} << 20 )) ;;
	*[Kk]) echo $(( ${1%?} << 10 )) ;;
	*) echo $(( $1 )) ;;
	esac
}
avail_kb() { awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }
status=0

# ---- 4 KiB pages ----------------------------------------------------------

echo "scale.sh: $(avail_kb) kB available; sizes $sizes" >&2
"$bin" --header > "$tmp/scale.tsv"
run_bg "$bin" --sizes "$sizes" --out "$tmp/scale.tsv" || status=$?
reap

# ---- shmkv-load --replace ------------------------------------------------

printf 'entries\tsegment_bytes\twall_s\tcpu_s\tread_s\tbuild_s\tcommit_s\tchecked\twrong\n' > "$tmp/load.tsv"
if [ "${SHMKV_SCALE_LOAD:-1}" = 1 ]; then
	load_key=$(printf '0x5c%04x01' $(($$ & 0xffff)))
	for s in $(echo "$sizes" | tr , ' '); do
		n=$(count "$s")
		need=$(( $("$bin" --bytes-needed "$s") / 2048 + 2 * 1024 * 1024 ))
		if [ "$(avail_kb)" -lt "$need" ]; then
			echo "scale.sh: shmkv-load at $s: $(avail_kb) kB available, $need kB wanted: skipped" >&2
			continue
		fi
		if ipcs -m | awk -v k="$load_key" '$1 == k { f = 1 } END { exit !f }'; then
			echo "scale.sh: a segment already has key $load_key: shmkv-load runs skipped" >&2
			break
		fi
		run_bg "$bin" --write-bin "$tmp/records.bin" --n "$n" || { status=2; break; }
		lst=0
		run_bg "$bin" --time "$load" --replace -v -f bin -K 8 -V 8 -l 0.8 -m 0.8 "$load_key" \
		    "$tmp/records.bin" > "$tmp/time" 2> "$tmp/load.err" || lst=$?
		load_id=$(ipcs -m | awk -v k="$load_key" '$1 == k { print $2 }')
		rm -f "$tmp/records.bin"
		if [ "$lst" != 0 ]; then
			cat "$tmp/load.err" >&2
			drop_load_table
			status=2
			break
		fi
		run_bg "$bin" --check-key "$load_key" --n "$n" > "$tmp/check" || status=1
		seg=$("$shmkv" stat "$load_key" | awk '/^generation/ { print $(NF - 1) }' | tr -d '(')
		drop_load_table
		# shmkv-load -v says "reading 0.02 s, building 0.23 s, committing 0.00 s"
		awk -v n="$n" -v seg="$seg" -v tm="$(cat "$tmp/time")" -v chk="$(cat "$tmp/check")" '
		    /reading .* s, building .* s, committing/ {
		        for (i = 1; i <= NF; i++) {
		            if ($i == "reading") r = $(i + 1)
		            if ($i == "building") b = $(i + 1)
		            if ($i == "committing") c = $(i + 1)
		        }
		    }
		    END { split(chk, k, "\t"); split(tm, t, "\t")
		          printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n, seg, t[1], t[2], r, b, c, k[1], k[2] }' \
		    "$tmp/load.err" >> "$tmp/load.tsv"
		echo "scale.sh: shmkv-load --replace, $s entries: $(tail -n 1 "$tmp/load.tsv")" >&2
	done
fi

# ---- Huge pages ------------------------------------------------------------

huge_note=
hsizes=
if [ "${SHMKV_SCALE_HUGE:-1}" != 1 ]; then
	huge_note="not measured: SHMKV_SCALE_HUGE=0"
elif [ "$(id -u)" != 0 ] || [ ! -w /proc/sys/vm/nr_hugepages ]; then
	huge_note="not measured: raising vm.nr_hugepages needs root (sysctl -w vm.nr_hugepages=N)"
else
	# The largest sizes first out: keep those whose pages fit in what is
	# available now, with 2 GB to spare and the data set's own memory.
	most=0
	for s in $(echo "$sizes" | tr , ' '); do
		need=$("$bin" --hugepages-needed "$s")
		extra=$(( $("$bin" --bytes-needed "$s") / 1024 - need * 2048 ))
		[ "$extra" -lt 0 ] && extra=0
		if [ $(( need * 2048 + extra + 2 * 1024 * 1024 )) -le "$(avail_kb)" ]; then
			hsizes=${hsizes:+$hsizes,}$s
			[ "$need" -gt "$most" ] && most=$need
		else
			echo "scale.sh: huge pages at $s: $need pages and $extra kB besides, $(avail_kb) kB available: skipped" >&2
			huge_note="${huge_note:+$huge_note; }$s skipped: not enough memory available"
		fi
	done
	bytes=$(( most * 2 * 1024 * 1024 ))
	pagesz=$(getconf PAGE_SIZE)
	# Raised only, never lowered (awk: the defaults overflow sh's arithmetic).
	below() { awk -v a="$(cat "$1")" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
	if below /proc/sys/kernel/shmmax "$bytes"; then
		set_sysctl /proc/sys/kernel/shmmax "$bytes"
	fi
	if below /proc/sys/kernel/shmall $(( 2 * bytes / pagesz )); then
		set_sysctl /proc/sys/kernel/shmall $(( 2 * bytes / pagesz ))
	fi
	free=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
	if [ -n "$hsizes" ] && [ "$free" -lt "$most" ]; then
		cur=$(cat /proc/sys/vm/nr_hugepages)
		set_sysctl /proc/sys/vm/nr_hugepages $(( cur + most - free )) ||
			echo "scale.sh: could not raise vm.nr_hugepages" >&2
		free=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
		echo "scale.sh: vm.nr_hugepages $cur -> $(cat /proc/sys/vm/nr_hugepages); $free free, $most wanted" >&2
	fi
	if [ -n "$hsizes" ] && [ "$free" -lt "$most" ]; then
		huge_note="${huge_note:+$huge_note; }the kernel gave $free of the $most huge pages asked for (memory too fragmented?): sizes that need more were skipped"
		echo "scale.sh: only $free of $most huge pages: the program skips the sizes that need more" >&2
	fi
	if [ -n "$hsizes" ]; then
		run_bg "$bin" --sizes "$hsizes" --huge --out "$tmp/scale.tsv" || status=$?
		reap
	fi
	restore
fi
end=$(date +%s)
if [ "$status" != 0 ]; then
	echo "scale.sh: failed (status $status); the results in $out are not this run's" >&2
	exit "$status"
fi
cp "$tmp/scale.tsv" "$out/scale.tsv"
cp "$tmp/load.tsv" "$out/scale-load.tsv"
SCALE_SECS=$((end - start)) SCALE_HUGE_NOTE=$huge_note sh "$here/scale-report.sh" "$out"
echo "scale.sh: wrote $out/scale.tsv, scale-load.tsv, scale.md and scale.png in $((end - start)) s" >&2
