/* Helpers for the concurrency suites: stress, threads, crash and writers.
 *
 * SELF-CHECKING VALUES
 *  Key number i of a test (0 <= i < nkeys) is stored as the 8-byte integer
 *  i + 1, never the all-0x00 or all-0xFF sentinel.  Its value is vwords copies
 *  of one word, word = (key * SK_MUL) ^ gen, where gen (1 <= gen < 2^32) comes
 *  from a counter shared by every writer of the test and handed out before the
 *  write.  A reader can tell from the bytes alone:
 *   torn     the words differ: parts of two writes, or a half-written slot;
 *   wrong    the words agree but word ^ key*SK_MUL >= 2^32: another key's
 *            value, or zeroed memory.  For keys below 2^20 the top halves of
 *            key*SK_MUL never agree: SK_MUL/2^64 is the golden ratio, which no
 *            fraction with a denominator under 2^20 approaches within 2^-32;
 *   future   gen not handed out yet when the search returned;
 *   regress  gen older than one this reader already saw for the key.  Valid
 *            when each key has a single writer: its gens then rise over time,
 *            and the contract says a search returns a value current at some
 *            instant during the call, so successive searches cannot go back.
 *  Keys [0, nstable) are never deleted: "not found" for them is a miss, which
 *  the contract forbids ("not found only if the key was absent at some
 *  instant during the call").
 *
 * CONTROL BLOCK
 *  struct sk_shared lives in a MAP_SHARED anonymous mapping made before any
 *  fork, so the same code serves reader and writer processes and threads.
 *  keygen[i] is the state of key i after the last write its writer completed
 *  (gen, or 0 when absent); pending[slot] names the write that writer has in
 *  progress, so after it is killed the parent knows both states a key may be
 *  in.  kseq[i] is even while key i is surely present: a writer makes it odd
 *  before it deletes the key and even again once a re-insert returned.  A
 *  reader that reads the same even kseq[i] before and after a search knows
 *  the key was present throughout the call, so "not found" is a miss the
 *  contract forbids, whichever key it is (a "present miss").
 *
 * The code is in concur.c; this header declares it.
 *
 * Children never call ck_assert (it would report from the wrong process or,
 * without fork, longjmp out of a thread): they count, report through a pipe
 * or the control block, and the test process asserts.
 */
#ifndef SHMKV_TESTS_CONCUR_H
#define SHMKV_TESTS_CONCUR_H

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define SK_MUL 0x9E3779B97F4A7C15ull
#define SK_MAX_WORKERS 8
#define SK_MAX_VWORDS 512 /* 4 KiB values */
#define SK_HOT 16 /* keys every worker favours, to make readers meet writers */

/* ---- time, randomness, seeds -------------------------------------------- */

uint64_t sk_now_ns(void);

void sk_sleep_us(uint64_t us);

uint64_t sk_rand(uint64_t *s); /* xorshift64* */

/* The run's seed: $SHMKV_SEED if set, else the clock; printed so that a
 * failure can be replayed (the interleaving, of course, cannot). */
uint64_t sk_seed(const char *test);

/* Time limits stretch when the suites run slowly (valgrind: scale 0.05;
 * AddressSanitizer: 3x). */
uint64_t sk_bound_ns(double ms);

/* Sleeps `us` microseconds, stretched like the bounds: a slowed-down child
 * needs longer to get anywhere before it is killed. */
void sk_delay_us(uint64_t us);

uint64_t sk_scaled(double n, uint64_t min);

/* ---- values ------------------------------------------------------------- */

uint64_t sk_key(uint32_t idx);

void sk_fill(uint64_t *v, uint32_t vwords, uint64_t key, uint64_t gen);

enum sk_verdict { SK_OK, SK_TORN, SK_WRONG };

/* Classifies a value read for key; on SK_OK stores its gen. */
enum sk_verdict sk_check(const uint64_t *v, uint32_t vwords, uint64_t key,
                         uint64_t *gen);

/* ---- the key set and the control block ---------------------------------- */

struct sk_plan {
	uint32_t nkeys;   /* keys 0 .. nkeys-1 */
	uint32_t nstable; /* keys below this are never deleted */
	uint32_t vwords;  /* value_size / 8 */
};

int sk_stable(const struct sk_plan *p, uint32_t idx);

/* A key in [lo, hi): half the time one of SK_HOT keys spread over the range,
 * so that readers keep meeting the writer on the same buckets. */
uint32_t sk_pick(uint64_t *rng, uint32_t lo, uint32_t hi);

struct sk_shared {
	_Alignas(64) _Atomic uint64_t gen; /* next generation to hand out */
	_Alignas(64) _Atomic int stop;     /* workers leave their loops */
	_Atomic int window;                /* crash suite: the writer is stopped;
	                                      stress: a reader asks for a pass */
	_Atomic int ack;                   /* stress: the writer grants it */
	/* per writer slot: the write in progress, (idx + 1) << 32 | new gen
	 * (new gen 0: a delete) */
	_Alignas(64) _Atomic uint64_t pending[SK_MAX_WORKERS];
	_Alignas(64) _Atomic uint64_t wops[SK_MAX_WORKERS];   /* live writer op counts */
	_Alignas(64) _Atomic uint64_t rreads[SK_MAX_WORKERS]; /* live reader counts */
	/* timed readers: when the search in progress began (0: none) */
	_Alignas(64) _Atomic uint64_t rbusy[SK_MAX_WORKERS];
	size_t bytes;
	_Atomic uint32_t *kseq; /* nkeys counters, after keygen[] in the mapping */
	_Alignas(64) _Atomic uint64_t keygen[]; /* per key: gen, or 0 when absent */
};

struct sk_shared *sk_shared_new(uint32_t nkeys);

/* kseq[idx] odd: the key may be absent from now on (before a delete). */
void sk_mark_absent(struct sk_shared *sh, uint32_t idx);

/* kseq[idx] even: the key is present from now on (after an insert). */
void sk_mark_present(struct sk_shared *sh, uint32_t idx);

void sk_shared_free(struct sk_shared *sh);

uint64_t sk_next_gen(struct sk_shared *sh);

/* Inserts every stable key and every other unstable one, recording keygen. */
void sk_load(struct hashtable *h, const struct sk_plan *p, struct sk_shared *sh);


/* A table for plan p: 8-byte keys, vwords*8-byte values, room for every key
 * at load limit `load`.  cfg receives the IPC key that readers open. */
struct hashtable *sk_table(const struct sk_plan *p, double load,
                           struct hashtable_config *cfg);

/* ---- the writer loop ---------------------------------------------------- */

struct sk_wstat {
	uint64_t ops, inserts, updates, deletes, delete_misses;
	uint64_t bad;         /* return codes other than the one expected */
	int64_t first_bad_rc; /* and the first of them ... */
	uint64_t first_bad_key;
	int first_bad_op;     /* ... 'u'pdate or 'd'elete */
	uint64_t max_op_ns;   /* slowest update/delete */
};

enum sk_wmode {
	SK_EXACT,    /* sole writer of its keys: knows every return code ahead */
	SK_CONTEND   /* shares keys with other writers: counts what happened */
};

void sk_wbad(struct sk_wstat *w, int op, uint64_t key, int rc);

/* One write to key idx: stable keys are updated; others are inserted when
 * absent, else updated or deleted.  In SK_EXACT mode presence comes from
 * keygen[], which this writer alone maintains. */
void sk_write_one(struct hashtable *h, const struct sk_plan *p,
                  struct sk_shared *sh, enum sk_wmode mode, uint32_t idx,
                  uint64_t r, int slot, struct sk_wstat *w);

/* Writes keys [lo, hi) until sh->stop, or `limit` ops when limit != 0.
 * Publishes its op count in sh->wops[slot]. */
void sk_writer(struct hashtable *h, const struct sk_plan *p, struct sk_shared *sh,
               enum sk_wmode mode, uint32_t lo, uint32_t hi, uint64_t seed,
               uint64_t limit, int slot, struct sk_wstat *w);

/* ---- the reader loop ---------------------------------------------------- */

enum sk_rmode { SK_SEARCH, SK_BATCH };

struct sk_ropts {
	enum sk_rmode mode;
	int check_regress; /* one writer per key: gens must not go back */
	int dead_ok;       /* HASHTABLE_EDEADWRITER allowed (crash suite) */
	int timed;         /* time every search */
	uint64_t slow_ns;  /* searches longer than this count as slow */
	uint64_t max_reads; /* 0: until sh->stop */
};

struct sk_rstat {
	uint64_t reads;        /* results checked */
	uint64_t found, absent;
	uint64_t torn, wrong, future, regress;
	uint64_t stable_miss;  /* never-deleted key not found */
	uint64_t present_miss; /* key present throughout the call (kseq) not found */
	uint64_t deadwriter;
	uint64_t errors;       /* any other return code */
	int64_t first_error;
	uint64_t first_bad_key; /* first torn/wrong/future/regress/miss */
	uint64_t advanced;     /* a key's gen rose between two reads: writes were seen */
	uint64_t max_ns, slow; /* slowest search; how many passed slow_ns */
	uint64_t in_window;    /* searches begun and ended while sh->window was set */
	uint64_t window_waits; /* searches that took longer than slow_ns in a window */
};

/* Checks one search result for key idx.  floor is the newest gen this
 * reader saw for the key in earlier calls: a result may not go below it.
 * Results of one batch are not compared with each other: each is current at
 * some instant of the call, in no promised order.  Returns the gen read, or
 * 0. */
uint64_t sk_judge(const struct sk_plan *p, struct sk_shared *sh,
                  const struct sk_ropts *o, uint32_t idx, int rc, int held,
                  const uint64_t *v, uint64_t floor, struct sk_rstat *s);

/* Searches random keys of the whole plan until sh->stop (or o->max_reads),
 * checking each result.  Publishes its read count in sh->rreads[slot]. */
void sk_reader(struct hashtable *h, const struct sk_plan *p, struct sk_shared *sh,
               const struct sk_ropts *o, uint64_t seed, int slot,
               struct sk_rstat *s);

void sk_rstat_add(struct sk_rstat *t, const struct sk_rstat *s);

void sk_rstat_print(const char *test, const struct sk_rstat *t);

/* Asserts a reader total clean: the shared verdict of every read-side test. */
#define SK_ASSERT_READS_CLEAN(t)                                                               \
	do {                                                                                   \
		ck_assert_msg((t).torn == 0, "%" PRIu64 " torn values (first bad key %" PRIu64 ")", \
		              (t).torn, (t).first_bad_key);                                     \
		ck_assert_msg((t).wrong == 0, "%" PRIu64 " values of another key (first %" PRIu64 ")", \
		              (t).wrong, (t).first_bad_key);                                    \
		ck_assert_msg((t).future == 0, "%" PRIu64 " values with a gen never handed out", \
		              (t).future);                                                      \
		ck_assert_msg((t).regress == 0, "%" PRIu64 " searches returned an older gen than an " \
		              "earlier search (first key %" PRIu64 ")", (t).regress, (t).first_bad_key); \
		ck_assert_msg((t).stable_miss == 0, "%" PRIu64 " never-deleted keys not found " \
		              "(first %" PRIu64 ")", (t).stable_miss, (t).first_bad_key);         \
		ck_assert_msg((t).present_miss == 0, "%" PRIu64 " keys present throughout the " \
		              "search not found (first %" PRIu64 ")", (t).present_miss,           \
		              (t).first_bad_key);                                                 \
		ck_assert_msg((t).errors == 0, "%" PRIu64 " searches failed, first with %" PRId64 \
		              " (%s)", (t).errors, (t).first_error,                               \
		              hashtable_strerror((int)(t).first_error));                          \
	} while (0)

/* ---- processes ---------------------------------------------------------- */

/* fork() for a worker: the child dies with the test process (Check kills a
 * test that times out; its workers must not spin on) and after `cap_s`
 * seconds whatever happens.  Returns as fork(). */
pid_t sk_fork(unsigned cap_s);

int sk_write_all(int fd, const void *buf, size_t n);

/* Returns the bytes read: n, or fewer at end of file or on error. */
size_t sk_read_all(int fd, void *buf, size_t n);

/* Reaps pid; returns its wait status (or -1 when waitpid failed). */
int sk_reap(pid_t pid);

/* "exit 0", "exit 3", "killed by signal 11": for assertion messages. */
const char *sk_status_text(int st, char *buf, size_t n);

/* Ends a worker child: detaches its own handle (valgrind checks children for
 * leaks) and exits without running the test process's atexit handlers. */
_Noreturn void sk_child_exit(struct hashtable *h, int code);

#define SK_ASSERT_EXIT0(st, who)                                                           \
	do {                                                                               \
		char sk_buf_[96];                                                          \
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: %s", (who),      \
		              sk_status_text((st), sk_buf_, sizeof sk_buf_));              \
	} while (0)

/* ---- the table against the control block --------------------------------- */

/* Searches every key and compares with keygen[]; the key named by `pending`
 * may also be in its new state.  Counts mismatches, returns the first one's
 * key in *first.  `present` receives how many keys were found. */
uint64_t sk_compare(struct hashtable *h, const struct sk_plan *p,
                    struct sk_shared *sh, uint64_t pending, uint64_t *present,
                    uint64_t *first, int *first_rc);

/* Makes keygen[] match the table (after a killed writer's change went
 * either way).  Call only when the table has passed sk_compare. */
void sk_resync(struct hashtable *h, const struct sk_plan *p, struct sk_shared *sh);

void sk_assert_verify(struct hashtable *h, const char *when);

#endif
