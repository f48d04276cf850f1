#!/bin/sh
# tests/check-man.sh: the manual pages agree with the code.
#   - every public function (declared in hashtable.h, plus the names in
#     $SHMKV_MAN_EXTRA) has a page in man/, its own or a .so link to a page
#     that exists, and is named in that page's NAME section;
#   - every .TH carries "shmkv VERSION" (VERSION: hashtable.h's
#     SHMKV_VERSION_STRING, which the Makefile also uses) and the same date;
#   - every page renders with groff -man -ww without a warning.
# Prints "ok -" / "not ok -" lines; exits non-zero when anything failed.
set -u
cd "$(dirname "$0")/.." || exit 2
failed=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; failed=1; }

version=$(sed -n 's/^#define SHMKV_VERSION_STRING "\(.*\)"$/\1/p' hashtable.h)
[ -n "$version" ] || { bad "no SHMKV_VERSION_STRING in hashtable.h"; exit 1; }

# Public functions: hashtable.h's prototypes (a name followed by "(" at the
# start of a declaration line), and the calls being added on other branches.
funcs=$( (sed -n 's/^[a-z].*[ *]\(\(hashtable\|shmkv\)_[a-z_0-9]*\)(.*/\1/p' hashtable.h
	  printf '%s\n' ${SHMKV_MAN_EXTRA-hashtable_get hashtable_put hashtable_del hashtable_last_error}) |
	sort -u)
n=0
for f in $funcs; do
	n=$((n + 1))
	page=man/$f.3
	if [ ! -f "$page" ]; then
		bad "$f: no man/$f.3"
		continue
	fi
	target=$(sed -n 's/^\.so man3\/\(.*\)$/\1/p' "$page")
	[ -n "$target" ] && page=man/$target
	if [ ! -f "$page" ]; then
		bad "$f: man/$f.3 links to a missing $page"
	elif ! sed -n '/^\.SH NAME/,/^\.SH/p' "$page" | grep -qw -- "$f"; then
		bad "$f: not in the NAME section of $page"
	else
		ok "$f: $page"
	fi
done
[ "$n" -ge 26 ] || bad "only $n public functions found in hashtable.h and the extra list"

dates=""
for p in man/*.[0-9]; do
	grep -q '^\.so ' "$p" && continue
	th=$(sed -n '1s/^\.TH //p' "$p")
	# .TH TITLE SECTION DATE "SOURCE" "MANUAL"
	date=$(echo "$th" | awk '{ print $3 }' | tr -d '"')
	case $th in
	*"\"shmkv $version\""*) ok "$p: .TH names shmkv $version" ;;
	*) bad "$p: .TH is '$th', not \"shmkv $version\" (hashtable.h's SHMKV_VERSION_STRING)" ;;
	esac
	dates="$dates$date
"
	warn=$(groff -man -Tutf8 -ww "$p" 2>&1 >/dev/null)
	if [ -n "$warn" ]; then
		bad "$p: groff warns: $warn"
	else
		ok "$p: renders without warnings"
	fi
done
ndates=$(printf '%s' "$dates" | sort -u | grep -c .)
if [ "$ndates" -eq 1 ]; then
	ok "one date in every .TH: $(printf '%s' "$dates" | sort -u)"
else
	bad "the .TH dates differ: $(printf '%s' "$dates" | sort -u | tr '\n' ' ')- make them one"
fi
exit $failed
