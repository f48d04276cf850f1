#!/bin/sh
# tests/check-install.sh: `make install` into a scratch DESTDIR gives a user
# what the README promises, and `make uninstall` takes all of it back.
#   1. install (DESTDIR=scratch, PREFIX=/usr/local);
#   2. the header, the libraries and their links, shmkv.pc, the tools, and a
#      manual page for every public function (man can format each one:
#      the .so links resolve);
#   3. README.md's example compiles against the installed header and library
#      (-I, -L) and runs with LD_LIBRARY_PATH; the segment it creates, found
#      by its creator pid, is removed by id afterwards;
#   4. uninstall leaves nothing: `find DESTDIR -mindepth 1` prints nothing.
# Environment: MAKE, B (build directory), CC, and CFLAGS and LDFLAGS for the
# example (a sanitizer build's library needs its runtime linked first).
# Prints ok / not ok lines; exits non-zero when anything failed.
set -u
cd "$(dirname "$0")/.." || exit 2
MAKE=${MAKE:-make}
B=${B:-build}
CC=${CC:-cc}
CFLAGS=${CFLAGS:-}
LDFLAGS=${LDFLAGS:-}
PREFIX=/usr/local
failed=0
ok() { echo "ok - install: $*"; }
bad() { echo "not ok - install: $*"; failed=1; }

d=$(mktemp -d "${TMPDIR:-/tmp}/shmkv-install.XXXXXX")
expid=
cleanup() {
	if [ -n "$expid" ]; then # only the segments the example created
		ipcs -m -p | awk -v p="$expid" '$3 == p { print $1 }' | while read -r id; do
			ipcrm -m "$id" 2>/dev/null || true
		done
	fi
	rm -rf "$d"
}
trap cleanup EXIT
root=$d/root
mkdir -p "$root"

if $MAKE -s --no-print-directory B="$B" CC="$CC" DESTDIR="$root" PREFIX="$PREFIX" install \
    > "$d/install.log" 2>&1; then
	ok "make install DESTDIR=... succeeded"
else
	bad "make install failed:"; sed 's/^/# /' "$d/install.log"; exit 1
fi
if grep -q ldconfig "$d/install.log"; then
	bad "install into a DESTDIR ran or mentioned ldconfig"
else
	ok "no ldconfig for a DESTDIR install"
fi

p=$root$PREFIX
# the soname's version as the Makefile computes it (major.minor while 0.x)
soname=$(make -s --no-print-directory -f Makefile print-soname)
for f in include/shmkv/hashtable.h lib/libshmkv.a lib/libshmkv.so lib/libshmkv.so.$soname \
    lib/pkgconfig/shmkv.pc bin/shmkv bin/shmkv-load share/man/man1/shmkv.1 share/man/man3/shmkv.3; do
	if [ -e "$p/$f" ]; then ok "$f installed"; else bad "$f missing"; fi
done

# Every public function: hashtable.h's, and the calls other branches add.
funcs=$( (sed -n 's/^[a-z].*[ *]\(\(hashtable\|shmkv\)_[a-z_0-9]*\)(.*/\1/p' hashtable.h
	  printf '%s\n' hashtable_get hashtable_put hashtable_del hashtable_last_error) | sort -u)
missing=
for f in $funcs; do
	out=$(MANPAGER=cat MANWIDTH=80 man -M "$p/share/man" 3 "$f" 2>&1)
	echo "$out" | grep -qw "$f" && ! echo "$out" | grep -q "can't open\|failed .so" ||
		missing="$missing $f"
done
if [ -z "$missing" ]; then
	ok "man 3 finds a page for each of $(echo "$funcs" | wc -l) functions"
else
	bad "man 3 finds no page for:$missing"
fi

# README.md's example: the first C block under "## A complete example".
awk '/^## A complete example/ { on = 1 } on && /^```c/ { code = 1; next }
     code && /^```/ { exit } code { print }' README.md > "$d/example.c"
if [ ! -s "$d/example.c" ]; then
	bad "no C example under '## A complete example' in README.md"
# shellcheck disable=SC2086 # the flags are word lists
elif ! $CC $CFLAGS -o "$d/example" "$d/example.c" -I"$p/include" -L"$p/lib" -lshmkv \
    $LDFLAGS > "$d/cc.log" 2>&1; then
	bad "README example does not build against the installed library:"
	sed 's/^/# /' "$d/cc.log"
elif ! readelf -d "$d/example" | grep -q "NEEDED.*libshmkv.so.$soname"; then
	bad "README example is not linked with libshmkv.so.$soname"
else
	ok "README example builds with -I$PREFIX/include -L$PREFIX/lib -lshmkv"
	LD_LIBRARY_PATH=$p/lib "$d/example" > "$d/run.out" 2>&1 &
	expid=$!
	if wait "$expid"; then
		ok "README example runs with LD_LIBRARY_PATH: $(head -n 1 "$d/run.out")"
	else
		bad "README example failed:"; sed 's/^/# /' "$d/run.out"
	fi
fi

if $MAKE -s --no-print-directory B="$B" CC="$CC" DESTDIR="$root" PREFIX="$PREFIX" uninstall \
    > "$d/uninstall.log" 2>&1; then
	ok "make uninstall DESTDIR=... succeeded"
else
	bad "make uninstall failed:"; sed 's/^/# /' "$d/uninstall.log"
fi
left=$(find "$root" -mindepth 1)
if [ -z "$left" ]; then
	ok "nothing left after uninstall"
else
	bad "left after uninstall:"; echo "$left" | sed "s|^$root|# |"
fi
exit $failed
