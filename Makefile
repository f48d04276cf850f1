# shmkv: build, test, install.
# User variables (CC, CFLAGS, LDFLAGS, PREFIX, DESTDIR) are honoured; the flags
# the code needs live in SHMKV_* variables so a user's CFLAGS cannot drop them.

CC      ?= cc
CFLAGS  ?= -O2 -g
LDFLAGS ?=
PREFIX  ?= /usr/local
DESTDIR ?=
B       ?= build

SONAME_MAJOR = 0
VERSION      = 0.1.0

SHMKV_CFLAGS  = -std=c11 -D_GNU_SOURCE -Wall -Wextra -pthread -fPIC -I.
SHMKV_LDLIBS  = -pthread
# Deferred (=): `make deps check` installs Check before these are read.
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)

# What the tests need on Debian: Check, tinycdb for the cdb format tests, spin
# for `make model`.
DEB_TEST_DEPS = check pkg-config tinycdb spin

LIB_SRC   = hashtable.c
LIB_OBJ   = $(LIB_SRC:%.c=$(B)/%.o)
TOOL_COMMON = $(wildcard tools/common.c)
TOOL_MAINS  = $(filter-out tools/common.c,$(wildcard tools/*.c))
TOOLS     = $(TOOL_MAINS:tools/%.c=$(B)/%)
TEST_SRC  = $(wildcard tests/*.c)
TEST_BIN  = $(B)/shmkv-tests
BENCH_SRC = $(wildcard bench/*.c)
BENCH_LIBS ?= -llmdb -lcdb -lck
BENCH_BIN = $(BENCH_SRC:bench/%.c=$(B)/%)
DEMO_BIN  = $(B)/demo

.PHONY: all lib tools tests deps check check-asan check-valgrind check-tsan demo \
        bench bench-quick bench-build install uninstall clean

all: lib tools $(DEMO_BIN)

lib: $(B)/libshmkv.a $(B)/libshmkv.so

$(B)/%.o: %.c hashtable.h
	@mkdir -p $(dir $@)
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/libshmkv.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

$(B)/libshmkv.so: $(LIB_OBJ) libshmkv.map
	$(CC) -shared -Wl,-soname,libshmkv.so.$(SONAME_MAJOR) \
	    -Wl,--version-script=libshmkv.map $(CFLAGS) $(LDFLAGS) -o $@ $(LIB_OBJ) $(SHMKV_LDLIBS)
	ln -sf libshmkv.so $(B)/libshmkv.so.$(SONAME_MAJOR)

tools: $(TOOLS)

$(B)/%: tools/%.c $(TOOL_COMMON) tools/*.h $(B)/libshmkv.a
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(TOOL_COMMON) $(B)/libshmkv.a $(SHMKV_LDLIBS)

$(DEMO_BIN): examples/demo.c $(B)/libshmkv.a
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libshmkv.a $(SHMKV_LDLIBS)

# The README's first command: load the shipped sample, read it from another
# process, print statistics, remove the segment.
demo: $(DEMO_BIN)
	$(DEMO_BIN) sample/cities.tsv

tests: $(TEST_BIN)

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

# Check suites, then the tool tests.  Every test removes the segments it made.
check: $(TEST_BIN) $(TOOLS)
	SHMKV_BUILD=$(B) $(TEST_BIN)
	@if ls tests/tools/*.sh >/dev/null 2>&1; then \
	    SHMKV_BUILD=$(B) sh tests/tools/run.sh; fi

check-asan:
	ASAN_OPTIONS=handle_segv=0:detect_leaks=1 $(MAKE) B=build/asan \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined" check

# Check forks each test; valgrind follows the children.
check-valgrind: $(TEST_BIN)
	SHMKV_BUILD=$(B) SHMKV_SLOW=1 valgrind --trace-children=yes --vgdb=no --error-exitcode=99 --leak-check=full \
	    --errors-for-leak-kinds=definite -q $(TEST_BIN)

# ThreadSanitizer over the threaded suites (no fork: TSan and fork mix badly).
check-tsan:
	$(MAKE) B=build/tsan CC=clang CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread" tests
	CK_FORK=no SHMKV_BUILD=build/tsan TSAN_OPTIONS=halt_on_error=1 build/tsan/shmkv-tests threads

bench-build: $(BENCH_BIN) $(B)/shmkv-bench-noversions

# The same benchmark over a library whose readers skip the version checks,
# to measure what the concurrency protocol costs.  Never installed.
$(B)/hashtable-noversions.o: hashtable.c hashtable.h
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) -DSHMKV_BENCH_NO_VERSIONS -c -o $@ $<

$(B)/shmkv-bench-noversions: bench/shmkv-bench.c $(B)/hashtable-noversions.o
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(BENCH_LIBS) $(SHMKV_LDLIBS) -lm

$(B)/%: bench/%.c $(B)/libshmkv.a
	$(CC) $(SHMKV_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libshmkv.a $(BENCH_LIBS) $(SHMKV_LDLIBS) -lm

bench: bench-build
	SHMKV_BUILD=$(B) sh bench/run.sh full

bench-quick: bench-build
	SHMKV_BUILD=$(B) sh bench/run.sh quick

shmkv.pc: shmkv.pc.in Makefile
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' shmkv.pc.in > $@

install: all shmkv.pc
	install -d $(DESTDIR)$(PREFIX)/include/shmkv $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man3
	install -m 644 hashtable.h $(DESTDIR)$(PREFIX)/include/shmkv/hashtable.h
	install -m 644 $(B)/libshmkv.a $(DESTDIR)$(PREFIX)/lib/libshmkv.a
	install -m 755 $(B)/libshmkv.so $(DESTDIR)$(PREFIX)/lib/libshmkv.so.$(VERSION)
	ln -sf libshmkv.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libshmkv.so.$(SONAME_MAJOR)
	ln -sf libshmkv.so.$(SONAME_MAJOR) $(DESTDIR)$(PREFIX)/lib/libshmkv.so
	install -m 644 shmkv.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/shmkv.pc
	for t in $(TOOLS); do install -m 755 $$t $(DESTDIR)$(PREFIX)/bin/; done
	for m in man/*.1; do [ -f "$$m" ] && install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man1/ || true; done
	for m in man/*.3; do [ -f "$$m" ] && install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man3/ || true; done

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/shmkv/hashtable.h $(DESTDIR)$(PREFIX)/lib/libshmkv.* \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig/shmkv.pc
	for t in $(TOOLS); do rm -f $(DESTDIR)$(PREFIX)/bin/$$(basename $$t); done
	for m in man/*.[13]; do rm -f $(DESTDIR)$(PREFIX)/share/man/man*/$$(basename $$m); done

clean:
	rm -rf build shmkv.pc

# ---------------------------------------------------------------------------
# model: the Promela model of the generation switch protocol, checked
# exhaustively with spin (model/README.md).  The protocol's configurations must
# pass and each known-bad variant must be refuted; prints the state counts.
# Needs spin and gcc (make deps installs spin).  About 2 minutes on 2 cores.
.PHONY: model
model:
	sh model/run.sh $(B)/model
