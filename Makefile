# shmkv: build, test, install.
# User variables (CC, CFLAGS, LDFLAGS, PREFIX, DESTDIR) are honoured; the flags
# the code needs live in SHMKV_* variables so a user's CFLAGS cannot drop them.

CC      ?= cc
CFLAGS  ?= -O2 -g
LDFLAGS ?=
PREFIX  ?= /usr/local
DESTDIR ?=
B       ?= build

# The version has one home, hashtable.h's SHMKV_VERSION_STRING; the .so name,
# shmkv.pc and the manual pages follow it (`make check-man` fails when a
# page's .TH names another version, or the pages' dates differ).
VERSION      := $(shell sed -n 's/^\#define SHMKV_VERSION_STRING "\(.*\)"$$/\1/p' hashtable.h)
# The .so name changes with every release whose ABI changes: while the major
# version is 0 that is every minor release (0.2 grew hashtable_stats and
# hashtable_config), so the soname carries major.minor.
SONAME_VERSION := $(word 1,$(subst ., ,$(VERSION))).$(word 2,$(subst ., ,$(VERSION)))

SHMKV_CFLAGS  = -std=c11 -D_GNU_SOURCE -Wall -Wextra -pthread -fPIC -I.
SHMKV_LDLIBS  = -pthread
# Deferred (=): `make deps check` installs Check before these are read.
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)

# What the tests need on Debian: Check, tinycdb for the cdb format tests, man
# and groff for check-man and check-install, python3 to parse the tools' JSON,
# spin for `make model`; python3-dev and python3-pytest for the Python module
# (`make check-python`; the Python benchmark also wants python3-lmdb and
# python3-gdbm, which nothing in CI runs: `make bench-python` says so);
# redis-tools (redis-cli, redis-benchmark), python3-redis and nutcracker
# (twemproxy) for shmkv-serve's tests (tests/tools/test-serve.sh).
DEB_TEST_DEPS = check pkg-config tinycdb man-db groff-base python3 spin \
                python3-dev python3-pytest redis-tools python3-redis nutcracker

LIB_SRC   = hashtable.c
LIB_OBJ   = $(LIB_SRC:%.c=$(B)/%.o)
TOOL_COMMON = $(wildcard tools/common.c)
TOOL_MAINS  = $(filter-out tools/common.c,$(wildcard tools/*.c))
TOOLS     = $(TOOL_MAINS:tools/%.c=$(B)/%)
TEST_SRC  = $(wildcard tests/*.c)
TEST_BIN  = $(B)/shmkv-tests
TEST_HELPERS = $(B)/shmkv-test-hold
# bench/*.c are programs; shmkv-bench is also built from its parts: core/
# (shmkv, the machine, the report) and one file per peer in peers/.
BENCH_SRC = $(wildcard bench/*.c)
BENCH_PARTS = $(wildcard bench/core/*.c bench/peers/*.c)
BENCH_HDRS = $(wildcard bench/*.h)
BENCH_LIBS ?= -llmdb -lcdb -lck
BENCH_BIN = $(BENCH_SRC:bench/%.c=$(B)/%)
DEMO_BIN  = $(B)/demo

.PHONY: python check-python install-python uninstall-python bench-python
.PHONY: all lib tools tests deps check check-asan check-valgrind check-tsan check-musl check-header demo print-soname \
        bench bench-quick bench-scale bench-build install uninstall clean check-man check-install

all: lib tools $(DEMO_BIN)

lib: $(B)/libshmkv.a $(B)/libshmkv.so

$(B)/%.o: %.c hashtable.h
	@mkdir -p $(dir $@)
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/libshmkv.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

$(B)/libshmkv.so: $(LIB_OBJ) libshmkv.map
	$(CC) -shared -Wl,-soname,libshmkv.so.$(SONAME_VERSION) \
	    -Wl,--version-script=libshmkv.map $(CFLAGS) $(LDFLAGS) -o $@ $(LIB_OBJ) $(SHMKV_LDLIBS)
	ln -sf libshmkv.so $(B)/libshmkv.so.$(SONAME_VERSION)

tools: $(TOOLS)

$(B)/%: tools/%.c $(TOOL_COMMON) tools/*.h $(B)/libshmkv.a
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(TOOL_COMMON) $(B)/libshmkv.a $(SHMKV_LDLIBS)

$(DEMO_BIN): examples/demo.c $(B)/libshmkv.a
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libshmkv.a $(SHMKV_LDLIBS)

# The README's first command: load the shipped sample, read it from another
# process, print statistics, remove the segment.
demo: $(DEMO_BIN)
	$(DEMO_BIN) sample/cities.tsv

tests: $(TEST_BIN) $(TEST_HELPERS)

# A reader that stays attached between calls, for the tool tests of
# generations (tests/tools/test-gen.sh).
$(B)/shmkv-test-hold: tests/tools/hold.c $(B)/libshmkv.a
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libshmkv.a $(SHMKV_LDLIBS)

# Installs the test dependencies that are missing (apt-get; sudo when not root).
deps:
	@missing=""; for p in $(DEB_TEST_DEPS); do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	    echo "installing test dependencies:$$missing"; \
	    sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	    $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

$(TEST_BIN): $(TEST_SRC) tests/*.h $(B)/libshmkv.a
	$(CC) $(SHMKV_CFLAGS) $(CHECK_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(TEST_SRC) \
	    $(B)/libshmkv.a $(CHECK_LIBS) $(SHMKV_LDLIBS)

# The public header compiles alone, as installed (<shmkv/hashtable.h>), under
# strict C99, C11 and C17 and as C++11: it declares everything it uses.
HEADER_CHECK_CC  ?= $(CC)
HEADER_CHECK_CXX ?= c++
check-header:
	@mkdir -p $(B)/include/shmkv
	cp hashtable.h $(B)/include/shmkv/hashtable.h
	printf '#include <shmkv/hashtable.h>\nint main(void) { return hashtable_strerror(0) == 0; }\n' \
	    > $(B)/include/header-check.c
	cp $(B)/include/header-check.c $(B)/include/header-check.cc
	for std in c99 c11 c17; do \
	    $(HEADER_CHECK_CC) -std=$$std -pedantic -Wall -Wextra -Werror -I$(B)/include \
	        -fsyntax-only $(B)/include/header-check.c || exit 1; done
	$(HEADER_CHECK_CXX) -std=c++11 -pedantic -Wall -Wextra -Werror -I$(B)/include \
	    -fsyntax-only $(B)/include/header-check.cc

# The header check, the Check suites, then the tool tests, the manual pages and
# an install into a scratch DESTDIR.  Every test removes the segments it made.
check: check-header $(TEST_BIN) $(TEST_HELPERS) $(TOOLS)
	SHMKV_BUILD=$(B) $(TEST_BIN)
	@if ls tests/tools/*.sh >/dev/null 2>&1; then \
	    SHMKV_BUILD=$(B) sh tests/tools/run.sh; fi
	$(MAKE) --no-print-directory check-man check-install $(CHECK_PYTHON)

# ---- Python ----------------------------------------------------------------
# The CPython extension (python/): the library, shmkv-load's parsers and the
# binding compiled into one module, no libshmkv.so needed at run time.  One
# interpreter builds and tests it: Debian's /usr/bin/python3, the one its
# python3-dev and python3-pytest packages serve (a `python3` first on PATH
# may be another build, without them).  PY_CFLAGS, not CFLAGS: the module is
# loaded by an uninstrumented interpreter, so sanitizer flags cannot apply
# (check-asan leaves check-python out).
PYTHON       ?= /usr/bin/python3
PY_CFLAGS    ?= -O2 -g
CHECK_PYTHON ?= check-python
PY_INCLUDE    = $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
PY_SITE       = $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("platlib"))')
PY_PKG        = $(B)/python/shmkv
PY_MODULE     = $(PY_PKG)/_shmkv.so
PY_FILES      = python/shmkv/__init__.py python/shmkv/__init__.pyi python/shmkv/py.typed

python: $(PY_MODULE)

$(PY_MODULE): python/_shmkv.c python/load.c hashtable.c hashtable.h tools/shmkv-load.c \
              $(TOOL_COMMON) tools/*.h $(PY_FILES)
	@mkdir -p $(PY_PKG)
	@[ -f "$(PY_INCLUDE)/Python.h" ] || { echo "no Python.h for $(PYTHON): install python3-dev (make deps)" >&2; exit 1; }
	$(CC) $(SHMKV_CFLAGS) -I$(PY_INCLUDE) -fvisibility=hidden $(PY_CFLAGS) -shared -o $@ \
	    python/_shmkv.c python/load.c $(TOOL_COMMON) hashtable.c $(SHMKV_LDLIBS)
	cp $(PY_FILES) $(PY_PKG)/

# The pytest suite, against the tools of the same build (it loads with
# shmkv-load and reads with `shmkv get`; damages a segment at the offsets
# layout-gen takes from hashtable.c).
check-python: $(PY_MODULE) $(TOOLS) $(B)/fuzz/layout.h
	SHMKV_BUILD=$(B) PYTHONPATH=$(B)/python PYTHONDONTWRITEBYTECODE=1 \
	    $(PYTHON) -m pytest -q -p no:cacheprovider python/tests

# Into $(PYTHON)'s site directory (Debian: /usr/local/lib/python3.X/dist-packages).
install-python: $(PY_MODULE)
	install -d $(DESTDIR)$(PY_SITE)/shmkv
	install -m 644 $(PY_PKG)/_shmkv.so $(PY_FILES) $(DESTDIR)$(PY_SITE)/shmkv/

uninstall-python:
	rm -rf $(DESTDIR)$(PY_SITE)/shmkv

# Lookups/s from Python: shmkv against dict, py-lmdb and dbm (bench/python.py).
bench-python: $(PY_MODULE)
	SHMKV_BUILD=$(B) PYTHONPATH=$(B)/python $(PYTHON) bench/python.py $(BENCH_PYTHON_ARGS)

# Every public function has a page; one version and one date in every .TH;
# every page renders without a groff warning.
check-man:
	sh tests/check-man.sh

# Installs into a scratch DESTDIR, builds and runs README.md's example
# against the installed header and library, uninstalls, and checks that
# nothing is left.
check-install: all
	MAKE="$(MAKE)" B=$(B) CC="$(CC)" CFLAGS="$(CFLAGS)" LDFLAGS="$(LDFLAGS)" \
	    sh tests/check-install.sh

check-asan:
	ASAN_OPTIONS=handle_segv=0:detect_leaks=1 $(MAKE) B=build/asan CHECK_PYTHON= \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined" check

# Check forks each test; valgrind follows the children.
check-valgrind: $(TEST_BIN)
	SHMKV_BUILD=$(B) SHMKV_SLOW=1 valgrind --trace-children=yes --vgdb=no --error-exitcode=99 --leak-check=full \
	    --errors-for-leak-kinds=definite -q $(TEST_BIN)

# ThreadSanitizer over the threaded suites, with CK_FORK=no (Check forks no
# child per test; TSan and fork mix badly): threads, genthreads (readers
# sharing a handle across generation switches), generations and genstress
# (whose tests fork their own reader and crash children).  genstress was left
# out while its crash tests failed 1 run in 3 here: not a reclaim bug, but
# another process's hashtable_segments() holding a retired generation for a
# moment, which its segment check now waits for (gs_only_root_and_current in
# tests/test_genstress.c).
check-tsan:
	$(MAKE) B=build/tsan CC=clang CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread" tests
	CK_FORK=no SHMKV_BUILD=build/tsan TSAN_OPTIONS=halt_on_error=1 build/tsan/shmkv-tests threads
	CK_FORK=no SHMKV_BUILD=build/tsan TSAN_OPTIONS=halt_on_error=1 build/tsan/shmkv-tests genthreads
	CK_FORK=no SHMKV_BUILD=build/tsan TSAN_OPTIONS=halt_on_error=1 build/tsan/shmkv-tests generations
	CK_FORK=no SHMKV_BUILD=build/tsan TSAN_OPTIONS=halt_on_error=1 build/tsan/shmkv-tests genstress

# The library, the tools and the demo built against musl (Debian: musl-tools),
# then the demo run: the code needs no glibc-only interface.
check-musl:
	$(MAKE) B=build/musl CC=musl-gcc lib tools demo

bench-build: $(BENCH_BIN) $(B)/shmkv-bench-noversions $(B)/gen_check-nogen $(B)/write_bench-nolock

# The same benchmark over a library whose readers skip the version checks,
# to measure what the concurrency protocol costs.  Never installed.
$(B)/hashtable-noversions.o: hashtable.c hashtable.h
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) -DSHMKV_BENCH_NO_VERSIONS -c -o $@ $<

$(B)/shmkv-bench-noversions: bench/shmkv-bench.c $(BENCH_PARTS) $(BENCH_HDRS) $(B)/hashtable-noversions.o
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ bench/shmkv-bench.c $(BENCH_PARTS) \
	    $(B)/hashtable-noversions.o $(BENCH_LIBS) $(SHMKV_LDLIBS) -lm

# gen_check over a library whose readers skip the per-call generation check,
# to measure what following generations costs a hit (bench/gen_check.sh).
$(B)/hashtable-nogencheck.o: hashtable.c hashtable.h
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) -DSHMKV_BENCH_NO_GENERATION_CHECK -c -o $@ $<

$(B)/gen_check-nogen: bench/gen_check.c $(B)/hashtable-nogencheck.o
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/hashtable-nogencheck.o $(SHMKV_LDLIBS)

$(B)/shmkv-bench: bench/shmkv-bench.c $(BENCH_PARTS) $(BENCH_HDRS) $(B)/libshmkv.a
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ bench/shmkv-bench.c $(BENCH_PARTS) \
	    $(B)/libshmkv.a $(BENCH_LIBS) $(SHMKV_LDLIBS) -lm

# write_bench over a library whose writers skip the mutex (its locked
# instructions), to measure what the lock costs an update.  Never installed.
$(B)/hashtable-nolock.o: hashtable.c hashtable.h
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) -DSHMKV_BENCH_NO_LOCK -c -o $@ $<

$(B)/write_bench-nolock: bench/write_bench.c $(BENCH_PARTS) $(BENCH_HDRS) $(B)/hashtable-nolock.o
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ bench/write_bench.c $(BENCH_PARTS) \
	    $(B)/hashtable-nolock.o $(BENCH_LIBS) $(SHMKV_LDLIBS) -lm

# The scale curve's program uses the benchmark's limits and kernels;
# write_bench, its reconstruction of the original algorithm (peers/memkv.c).
$(B)/scale $(B)/write_bench: $(B)/%: bench/%.c $(BENCH_PARTS) $(BENCH_HDRS) $(B)/libshmkv.a
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BENCH_PARTS) \
	    $(B)/libshmkv.a $(BENCH_LIBS) $(SHMKV_LDLIBS) -lm

$(B)/%: bench/%.c $(B)/libshmkv.a
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libshmkv.a $(BENCH_LIBS) $(SHMKV_LDLIBS) -lm

bench: bench-build
	SHMKV_BUILD=$(B) sh bench/run.sh full

# shmkv-serve against redis-server, same 1M keys, redis-benchmark over
# loopback: throughput, server CPU per request, memory (bench/serve/run.sh).
# Needs redis-server and redis-tools.
.PHONY: bench-serve
bench-serve: $(B)/shmkv-serve $(B)/shmkv-load $(B)/shmkv
	SHMKV_BUILD=$(B) sh bench/serve/run.sh

# The same comparison counted in instructions (callgrind): repeatable.
.PHONY: bench-serve-callgrind
bench-serve-callgrind: $(B)/shmkv-serve $(B)/shmkv-load $(B)/shmkv
	SHMKV_BUILD=$(B) sh bench/serve/callgrind.sh

bench-quick: bench-build
	SHMKV_BUILD=$(B) sh bench/run.sh quick

# 1M to 256M entries, 4 KiB and huge pages: about 20 minutes, up to 14 GB of
# memory (bench/README.md); apart from bench so that bench stays short.
bench-scale: $(B)/scale $(B)/shmkv-load $(B)/shmkv
	SHMKV_BUILD=$(B) sh bench/scale.sh

shmkv.pc: shmkv.pc.in Makefile
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' shmkv.pc.in > $@

# Directories only shmkv puts files in; uninstall removes them once empty.
# Shared ones ($(PREFIX)/lib, share/man/man3, ...) are left alone on the live
# system; under a DESTDIR (a staging tree) uninstall removes those it emptied,
# up to DESTDIR itself (kept).
OWN_DIRS    = $(PREFIX)/include/shmkv
SHARED_DIRS = $(PREFIX)/lib/pkgconfig $(PREFIX)/lib $(PREFIX)/include $(PREFIX)/bin \
              $(PREFIX)/share/man/man1 $(PREFIX)/share/man/man3 $(PREFIX)/share/man \
              $(PREFIX)/share $(PREFIX)

install: all shmkv.pc
	install -d $(DESTDIR)$(PREFIX)/include/shmkv $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man3
	install -m 644 hashtable.h $(DESTDIR)$(PREFIX)/include/shmkv/hashtable.h
	install -m 644 $(B)/libshmkv.a $(DESTDIR)$(PREFIX)/lib/libshmkv.a
	install -m 755 $(B)/libshmkv.so $(DESTDIR)$(PREFIX)/lib/libshmkv.so.$(VERSION)
	ln -sf libshmkv.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libshmkv.so.$(SONAME_VERSION)
	ln -sf libshmkv.so.$(SONAME_VERSION) $(DESTDIR)$(PREFIX)/lib/libshmkv.so
	install -m 644 shmkv.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/shmkv.pc
	for t in $(TOOLS); do install -m 755 $$t $(DESTDIR)$(PREFIX)/bin/; done
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/*.3 $(DESTDIR)$(PREFIX)/share/man/man3/
	@# The loader's cache (/etc/ld.so.cache) must learn the new library before
	@# programs can find libshmkv.so.$(SONAME_VERSION): root only, live system only.
	@if [ -n "$(DESTDIR)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && ldc=$$(command -v ldconfig || ls /sbin/ldconfig 2>/dev/null); then \
	    echo "$$ldc"; "$$ldc"; \
	    "$$ldc" -p | grep -q "libshmkv.so.$(SONAME_VERSION) .*=> $(PREFIX)/lib/" || \
	    echo "note: $(PREFIX)/lib is not in the loader's path: add it to /etc/ld.so.conf.d/ and run ldconfig, or set LD_LIBRARY_PATH=$(PREFIX)/lib"; \
	else \
	    echo "note: run ldconfig as root (or set LD_LIBRARY_PATH=$(PREFIX)/lib) before running programs linked with -lshmkv"; \
	fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/shmkv/hashtable.h $(DESTDIR)$(PREFIX)/lib/libshmkv.a \
	    $(DESTDIR)$(PREFIX)/lib/libshmkv.so $(DESTDIR)$(PREFIX)/lib/libshmkv.so.$(SONAME_VERSION) \
	    $(DESTDIR)$(PREFIX)/lib/libshmkv.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/pkgconfig/shmkv.pc
	for t in $(TOOLS); do rm -f $(DESTDIR)$(PREFIX)/bin/$$(basename $$t); done
	for m in man/*.1; do rm -f $(DESTDIR)$(PREFIX)/share/man/man1/$$(basename $$m); done
	for m in man/*.3; do rm -f $(DESTDIR)$(PREFIX)/share/man/man3/$$(basename $$m); done
	for d in $(OWN_DIRS); do \
	    [ ! -d "$(DESTDIR)$$d" ] || rmdir --ignore-fail-on-non-empty "$(DESTDIR)$$d"; done
	@if [ -n "$(DESTDIR)" ]; then for d in $(SHARED_DIRS); do \
	    [ ! -d "$(DESTDIR)$$d" ] || rmdir --ignore-fail-on-non-empty "$(DESTDIR)$$d"; done; \
	    d=$$(dirname "$(PREFIX)"); while [ "$$d" != / ] && [ "$$d" != . ]; do \
	        [ ! -d "$(DESTDIR)$$d" ] || rmdir --ignore-fail-on-non-empty "$(DESTDIR)$$d"; \
	        d=$$(dirname "$$d"); done; \
	elif [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1; then ldconfig; fi

# The soname's version, for tests/check-install.sh.
print-soname:
	@echo $(SONAME_VERSION)

clean:
	rm -rf build shmkv.pc

# ---- Fuzzing (tests/fuzz/) ---------------------------------------------------
# The corruption fuzzer runs briefly as the Check suite `fuzz` (tests/test_fuzz.c,
# part of `make check`) and for longer in `make fuzz`, beside the libFuzzer
# targets.  It damages the segment at offsets that layout-gen takes from
# hashtable.c itself, so a change to the header layout is followed, not copied.
# Writer-side damage runs by default (gated[] in tests/fuzz/corrupt.c is empty);
# SHMKV_FUZZ_WRITERS=0 turns fuzz-image's writer calls off.
.PHONY: fuzz fuzz-build

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 200
FUZZ_FLAGS    = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_CORRUPT  = tests/fuzz/corrupt.c tests/fuzz/guard.c

$(B)/fuzz/layout-gen: tests/fuzz/layout-gen.c hashtable.c hashtable.h
	@mkdir -p $(dir $@)
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(SHMKV_LDLIBS)

$(B)/fuzz/layout.h: $(B)/fuzz/layout-gen
	$(B)/fuzz/layout-gen > $@.tmp && mv $@.tmp $@

# The Check runner links the fuzzer's engine for the `fuzz` suite (TEST_SRC
# is read again when the runner's recipe runs).
TEST_SRC += $(FUZZ_CORRUPT)
$(TEST_BIN): $(FUZZ_CORRUPT) tests/fuzz/*.h $(B)/fuzz/layout.h
$(TEST_BIN): CHECK_CFLAGS += -I$(B)/fuzz

$(B)/fuzz/shmkv-fuzz-corrupt: tests/fuzz/corrupt-main.c $(FUZZ_CORRUPT) tests/fuzz/*.h \
                              $(B)/fuzz/layout.h $(B)/libshmkv.a
	$(CC) $(SHMKV_CFLAGS) -I$(B)/fuzz $(CFLAGS) $(LDFLAGS) -o $@ tests/fuzz/corrupt-main.c \
	    $(FUZZ_CORRUPT) $(B)/libshmkv.a $(SHMKV_LDLIBS)

# libFuzzer targets: built with clang from the sources, sanitizers throughout.
$(B)/fuzz/fuzz-load: tests/fuzz/fuzz-load.c tools/shmkv-load.c $(TOOL_COMMON) tools/*.h hashtable.c hashtable.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(SHMKV_CFLAGS) -O1 -g $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz-load.c \
	    $(TOOL_COMMON) hashtable.c $(SHMKV_LDLIBS)

$(B)/fuzz/fuzz-image: tests/fuzz/fuzz-image.c tests/fuzz/guard.c tests/fuzz/guard.h \
                      $(B)/fuzz/layout.h hashtable.c hashtable.h
	$(FUZZ_CC) $(SHMKV_CFLAGS) -I$(B)/fuzz -Itests/fuzz -O1 -g $(FUZZ_FLAGS) -o $@ \
	    tests/fuzz/fuzz-image.c tests/fuzz/guard.c hashtable.c $(SHMKV_LDLIBS)

# shmkv-serve's request parser, alone (no socket, no table).
$(B)/fuzz/fuzz-serve: tests/fuzz/fuzz-serve.c tools/shmkv-serve.c $(TOOL_COMMON) tools/*.h hashtable.c hashtable.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(SHMKV_CFLAGS) -O1 -g $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz-serve.c \
	    $(TOOL_COMMON) hashtable.c $(SHMKV_LDLIBS)

fuzz-build: $(B)/fuzz/shmkv-fuzz-corrupt $(B)/fuzz/fuzz-load $(B)/fuzz/fuzz-image $(B)/fuzz/fuzz-serve

# Every target for FUZZ_SECONDS (3 x 200 s: 10 minutes); fails on any finding,
# and removes every segment the targets made.
fuzz: fuzz-build
	SHMKV_BUILD=$(B) FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh

# ---------------------------------------------------------------------------
# model: the Promela model of the generation switch protocol, checked
# exhaustively with spin (model/README.md).  The protocol's configurations must
# pass and each known-bad variant must be refuted; prints the state counts.
# Needs spin and gcc (make deps installs spin).  About 2 minutes on 2 cores.
.PHONY: model
model:
	sh model/run.sh $(B)/model
