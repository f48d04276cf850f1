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

static inline uint64_t sk_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void sk_sleep_us(uint64_t us)
{
	struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static inline uint64_t sk_rand(uint64_t *s) /* xorshift64* */
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* The run's seed: $SHMKV_SEED if set, else the clock; printed so that a
 * failure can be replayed (the interleaving, of course, cannot). */
static inline uint64_t sk_seed(const char *test)
{
	const char *e = getenv("SHMKV_SEED");
	uint64_t s = (e && *e) ? strtoull(e, NULL, 0) : sk_now_ns() ^ (uint64_t)getpid() << 32;
	if (!s)
		s = 1;
	printf("%s: seed %" PRIu64 "\n", test, s);
	fflush(stdout);
	return s;
}

/* Time limits stretch when the suites run slowly (valgrind: scale 0.05). */
static inline uint64_t sk_bound_ns(double ms)
{
	return (uint64_t)(ms / test_scale() * 1e6);
}

/* Sleeps `us` microseconds, stretched like the bounds: a slowed-down child
 * needs longer to get anywhere before it is killed. */
static inline void sk_delay_us(uint64_t us)
{
	sk_sleep_us((uint64_t)((double)us / test_scale()));
}

static inline uint64_t sk_scaled(double n, uint64_t min)
{
	uint64_t v = (uint64_t)(n * test_scale());
	return v < min ? min : v;
}

/* ---- values ------------------------------------------------------------- */

static inline uint64_t sk_key(uint32_t idx) { return (uint64_t)idx + 1; }

static inline void sk_fill(uint64_t *v, uint32_t vwords, uint64_t key, uint64_t gen)
{
	for (uint32_t i = 0; i < vwords; i++)
		v[i] = key * SK_MUL ^ gen;
}

enum sk_verdict { SK_OK, SK_TORN, SK_WRONG };

/* Classifies a value read for key; on SK_OK stores its gen. */
static inline enum sk_verdict sk_check(const uint64_t *v, uint32_t vwords, uint64_t key,
                                       uint64_t *gen)
{
	for (uint32_t i = 1; i < vwords; i++)
		if (v[i] != v[0])
			return SK_TORN;
	uint64_t g = v[0] ^ key * SK_MUL;
	if (g >> 32 || g == 0)
		return SK_WRONG;
	*gen = g;
	return SK_OK;
}

/* ---- the key set and the control block ---------------------------------- */

struct sk_plan {
	uint32_t nkeys;   /* keys 0 .. nkeys-1 */
	uint32_t nstable; /* keys below this are never deleted */
	uint32_t vwords;  /* value_size / 8 */
};

static inline int sk_stable(const struct sk_plan *p, uint32_t idx) { return idx < p->nstable; }

/* A key in [lo, hi): half the time one of SK_HOT keys spread over the range,
 * so that readers keep meeting the writer on the same buckets. */
static inline uint32_t sk_pick(uint64_t *rng, uint32_t lo, uint32_t hi)
{
	uint64_t r = sk_rand(rng);
	uint32_t n = hi - lo;
	if ((r & 1) && n >= SK_HOT)
		return lo + (uint32_t)((r >> 1) % SK_HOT) * (n / SK_HOT);
	return lo + (uint32_t)((r >> 1) % n);
}

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

static inline struct sk_shared *sk_shared_new(uint32_t nkeys)
{
	size_t bytes = sizeof(struct sk_shared) + nkeys * sizeof(_Atomic uint64_t) +
	               nkeys * sizeof(_Atomic uint32_t);
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_msg(m != MAP_FAILED, "mmap: %s", strerror(errno));
	struct sk_shared *sh = m; /* zero-filled */
	atomic_store(&sh->gen, 1);
	sh->bytes = bytes;
	sh->kseq = (_Atomic uint32_t *)(sh->keygen + nkeys);
	return sh;
}

/* kseq[idx] odd: the key may be absent from now on (before a delete). */
static inline void sk_mark_absent(struct sk_shared *sh, uint32_t idx)
{
	if (!(atomic_load(&sh->kseq[idx]) & 1))
		atomic_fetch_add(&sh->kseq[idx], 1);
}

/* kseq[idx] even: the key is present from now on (after an insert). */
static inline void sk_mark_present(struct sk_shared *sh, uint32_t idx)
{
	if (atomic_load(&sh->kseq[idx]) & 1)
		atomic_fetch_add(&sh->kseq[idx], 1);
}

static inline void sk_shared_free(struct sk_shared *sh)
{
	if (sh)
		munmap(sh, sh->bytes);
}

static inline uint64_t sk_next_gen(struct sk_shared *sh)
{
	return atomic_fetch_add(&sh->gen, 1);
}

/* Inserts every stable key and every other unstable one, recording keygen. */
static inline void sk_load(struct hashtable *h, const struct sk_plan *p, struct sk_shared *sh)
{
	uint64_t v[SK_MAX_VWORDS];
	for (uint32_t i = 0; i < p->nkeys; i++) {
		if (!sk_stable(p, i) && (i & 1))
			continue;
		uint64_t k = sk_key(i), g = sk_next_gen(sh);
		sk_fill(v, p->vwords, k, g);
		int rc = hashtable_update(h, &k, v);
		ck_assert_msg(rc == 0, "loading key %" PRIu64 ": %d (%s)", k, rc, hashtable_strerror(rc));
		atomic_store(&sh->keygen[i], g);
	}
	for (uint32_t i = 0; i < p->nkeys; i++)
		if (!atomic_load(&sh->keygen[i]))
			sk_mark_absent(sh, i);
}

/* The test's own table, kept reachable for valgrind's leak check in forked
 * children, which inherit the handle but never close it. */
static struct hashtable *volatile sk_test_table;

/* A table for plan p: 8-byte keys, vwords*8-byte values, room for every key
 * at load limit `load`.  cfg receives the IPC key that readers open. */
static inline struct hashtable *sk_table(const struct sk_plan *p, double load,
                                         struct hashtable_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->key_size = 8;
	cfg->value_size = p->vwords * 8;
	cfg->entries = p->nkeys;
	cfg->max_load = load;
	struct hashtable *h = test_table_create(cfg);
	sk_test_table = h;
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_msg(st.max_count >= p->nkeys, "table holds %" PRIu64 " keys, need %u",
	              st.max_count, p->nkeys);
	return h;
}

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

static inline void sk_wbad(struct sk_wstat *w, int op, uint64_t key, int rc)
{
	if (!w->bad++) {
		w->first_bad_rc = rc;
		w->first_bad_key = key;
		w->first_bad_op = op;
	}
}

/* One write to key idx: stable keys are updated; others are inserted when
 * absent, else updated or deleted.  In SK_EXACT mode presence comes from
 * keygen[], which this writer alone maintains. */
static inline void sk_write_one(struct hashtable *h, const struct sk_plan *p,
                                struct sk_shared *sh, enum sk_wmode mode, uint32_t idx,
                                uint64_t r, int slot, struct sk_wstat *w)
{
	uint64_t v[SK_MAX_VWORDS], k = sk_key(idx);
	int present = mode == SK_EXACT ? atomic_load(&sh->keygen[idx]) != 0 : (int)(r >> 8 & 1);
	int del = !sk_stable(p, idx) && present && (r >> 9 & 1);
	uint64_t g = del ? 0 : sk_next_gen(sh);
	if (mode == SK_EXACT)
		atomic_store(&sh->pending[slot], (uint64_t)(idx + 1) << 32 | g);
	if (mode == SK_EXACT && del)
		sk_mark_absent(sh, idx);
	uint64_t t0 = sk_now_ns();
	int rc;
	if (del) {
		rc = hashtable_delete(h, &k);
	} else {
		sk_fill(v, p->vwords, k, g);
		rc = hashtable_update(h, &k, v);
	}
	uint64_t dt = sk_now_ns() - t0;
	if (dt > w->max_op_ns)
		w->max_op_ns = dt;
	w->ops++;
	if (del) {
		if (rc == 0)
			w->deletes++;
		else if (rc == -1 && mode == SK_CONTEND)
			w->delete_misses++;
		else
			sk_wbad(w, 'd', k, rc);
	} else if (rc == 0 && (mode == SK_CONTEND || !present) && !sk_stable(p, idx)) {
		w->inserts++;
	} else if (rc == 1 && (mode == SK_CONTEND || present)) {
		w->updates++;
	} else {
		sk_wbad(w, 'u', k, rc);
	}
	if (mode == SK_EXACT && rc >= 0)
		atomic_store(&sh->keygen[idx], g);
	if (mode == SK_EXACT && !del && rc >= 0)
		sk_mark_present(sh, idx);
}

/* Writes keys [lo, hi) until sh->stop, or `limit` ops when limit != 0.
 * Publishes its op count in sh->wops[slot]. */
static inline void sk_writer(struct hashtable *h, const struct sk_plan *p, struct sk_shared *sh,
                             enum sk_wmode mode, uint32_t lo, uint32_t hi, uint64_t seed,
                             uint64_t limit, int slot, struct sk_wstat *w)
{
	uint64_t rng = seed | 1;
	memset(w, 0, sizeof *w);
	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed) && (!limit || w->ops < limit)) {
		uint64_t r = sk_rand(&rng);
		sk_write_one(h, p, sh, mode, sk_pick(&rng, lo, hi), r, slot, w);
		atomic_store_explicit(&sh->wops[slot], w->ops, memory_order_relaxed);
	}
}

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
static inline uint64_t sk_judge(const struct sk_plan *p, struct sk_shared *sh,
                                const struct sk_ropts *o, uint32_t idx, int rc, int held,
                                const uint64_t *v, uint64_t floor, struct sk_rstat *s)
{
	uint64_t k = sk_key(idx), g = 0;
	s->reads++;
	if (rc == -1) {
		s->absent++;
		if (sk_stable(p, idx) && !s->stable_miss++ && !s->first_bad_key)
			s->first_bad_key = k;
		if (held && !s->present_miss++ && !s->first_bad_key)
			s->first_bad_key = k;
		return 0;
	}
	if (rc == HASHTABLE_EDEADWRITER) {
		s->deadwriter++;
		if (!o->dead_ok && !s->errors++)
			s->first_error = rc;
		return 0;
	}
	if (rc != 0) {
		if (!s->errors++)
			s->first_error = rc;
		return 0;
	}
	s->found++;
	enum sk_verdict vd = sk_check(v, p->vwords, k, &g);
	uint64_t *bad = vd == SK_TORN ? &s->torn : vd == SK_WRONG ? &s->wrong : NULL;
	if (!bad && g >= atomic_load(&sh->gen))
		bad = &s->future;
	if (!bad && o->check_regress && g < floor)
		bad = &s->regress;
	if (bad) {
		if (!(*bad)++ && !s->first_bad_key)
			s->first_bad_key = k;
		return 0;
	}
	if (floor && g > floor)
		s->advanced++;
	return g;
}

/* Searches random keys of the whole plan until sh->stop (or o->max_reads),
 * checking each result.  Publishes its read count in sh->rreads[slot]. */
static inline void sk_reader(struct hashtable *h, const struct sk_plan *p, struct sk_shared *sh,
                             const struct sk_ropts *o, uint64_t seed, int slot,
                             struct sk_rstat *s)
{
	enum { BATCH = 8 };
	uint64_t rng = seed | 1;
	uint64_t *lastgen = calloc(p->nkeys, sizeof *lastgen);
	uint64_t *vals = malloc(BATCH * p->vwords * sizeof *vals);
	memset(s, 0, sizeof *s);
	if (!lastgen || !vals) {
		s->errors = 1;
		s->first_error = -ENOMEM;
		free(lastgen);
		free(vals);
		return;
	}
	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed) &&
	       (!o->max_reads || s->reads < o->max_reads)) {
		uint32_t idx[BATCH], seq[BATCH];
		uint64_t keys[BATCH];
		int found[BATCH], n = o->mode == SK_BATCH ? BATCH : 1, rc;
		for (int i = 0; i < n; i++) {
			idx[i] = sk_pick(&rng, 0, p->nkeys);
			keys[i] = sk_key(idx[i]);
			seq[i] = atomic_load(&sh->kseq[idx[i]]);
		}
		int win = o->timed && atomic_load(&sh->window);
		uint64_t t0 = o->timed ? sk_now_ns() : 0;
		if (o->timed)
			atomic_store_explicit(&sh->rbusy[slot], t0, memory_order_relaxed);
		if (o->mode == SK_BATCH) {
			memset(vals, 0, BATCH * p->vwords * sizeof *vals);
			long got = hashtable_search_batch(h, BATCH, keys, vals, found);
			rc = got < 0 ? (int)got : 0;
		} else {
			rc = hashtable_search(h, &keys[0], vals);
			found[0] = rc;
		}
		if (o->timed) {
			atomic_store_explicit(&sh->rbusy[slot], 0, memory_order_relaxed);
			uint64_t dt = sk_now_ns() - t0;
			if (dt > s->max_ns)
				s->max_ns = dt;
			if (dt > o->slow_ns)
				s->slow++;
			if (win && atomic_load(&sh->window)) {
				if (dt > o->slow_ns)
					s->window_waits++;
				else
					s->in_window++;
			}
		}
		if (rc < 0) /* the call failed as a whole: judge it once */
			n = 1;
		uint64_t floor[BATCH], g[BATCH];
		for (int i = 0; i < n; i++)
			floor[i] = lastgen[idx[i]];
		for (int i = 0; i < n; i++) {
			int held = !(seq[i] & 1) && atomic_load(&sh->kseq[idx[i]]) == seq[i];
			g[i] = sk_judge(p, sh, o, idx[i], rc < 0 ? rc : found[i], held,
			                vals + i * p->vwords, floor[i], s);
		}
		for (int i = 0; i < n; i++)
			if (g[i] > lastgen[idx[i]])
				lastgen[idx[i]] = g[i];
		if ((s->reads & 1023) < (uint64_t)n)
			atomic_store_explicit(&sh->rreads[slot], s->reads, memory_order_relaxed);
	}
	atomic_store_explicit(&sh->rreads[slot], s->reads, memory_order_relaxed);
	free(lastgen);
	free(vals);
}

static inline void sk_rstat_add(struct sk_rstat *t, const struct sk_rstat *s)
{
	t->reads += s->reads;
	t->found += s->found;
	t->absent += s->absent;
	t->torn += s->torn;
	t->wrong += s->wrong;
	t->future += s->future;
	t->regress += s->regress;
	t->stable_miss += s->stable_miss;
	t->present_miss += s->present_miss;
	t->deadwriter += s->deadwriter;
	if (!t->errors && s->errors)
		t->first_error = s->first_error;
	t->errors += s->errors;
	if (!t->first_bad_key)
		t->first_bad_key = s->first_bad_key;
	t->advanced += s->advanced;
	t->slow += s->slow;
	if (s->max_ns > t->max_ns)
		t->max_ns = s->max_ns;
	t->in_window += s->in_window;
	t->window_waits += s->window_waits;
}

static inline void sk_rstat_print(const char *test, const struct sk_rstat *t)
{
	printf("%s: %" PRIu64 " reads checked (%" PRIu64 " found, %" PRIu64 " absent, %" PRIu64
	       " saw a newer gen), torn %" PRIu64 ", wrong-key %" PRIu64 ", future %" PRIu64
	       ", regressed %" PRIu64 ", misses: never-deleted keys %" PRIu64 ", keys present "
	       "throughout %" PRIu64 "; dead-writer %" PRIu64 ", other errors %" PRIu64 "\n",
	       test, t->reads, t->found, t->absent, t->advanced, t->torn, t->wrong, t->future,
	       t->regress, t->stable_miss, t->present_miss, t->deadwriter, t->errors);
	fflush(stdout);
}

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
static inline pid_t sk_fork(unsigned cap_s)
{
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(97);
		alarm(cap_s);
	}
	return pid;
}

static inline int sk_write_all(int fd, const void *buf, size_t n)
{
	const char *b = buf;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Returns the bytes read: n, or fewer at end of file or on error. */
static inline size_t sk_read_all(int fd, void *buf, size_t n)
{
	char *b = buf;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* Reaps pid; returns its wait status (or -1 when waitpid failed). */
static inline int sk_reap(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return st;
}

/* "exit 0", "exit 3", "killed by signal 11": for assertion messages. */
static inline const char *sk_status_text(int st, char *buf, size_t n)
{
	if (st == -1)
		snprintf(buf, n, "not reaped");
	else if (WIFEXITED(st))
		snprintf(buf, n, "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(buf, n, "status 0x%x", (unsigned)st);
	return buf;
}

/* Ends a worker child: detaches its own handle (valgrind checks children for
 * leaks) and exits without running the test process's atexit handlers. */
_Noreturn static inline void sk_child_exit(struct hashtable *h, int code)
{
	if (h)
		hashtable_close(h);
	_exit(code);
}

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
static inline uint64_t sk_compare(struct hashtable *h, const struct sk_plan *p,
                                  struct sk_shared *sh, uint64_t pending, uint64_t *present,
                                  uint64_t *first, int *first_rc)
{
	uint64_t v[SK_MAX_VWORDS], bad = 0;
	*present = 0;
	for (uint32_t i = 0; i < p->nkeys; i++) {
		uint64_t k = sk_key(i), g = 0, want = atomic_load(&sh->keygen[i]);
		int rc = hashtable_search(h, &k, v);
		int ok;
		if (rc == 0 && sk_check(v, p->vwords, k, &g) == SK_OK) {
			ok = g == want || (pending >> 32 == i + 1u && g == (pending & 0xffffffffu));
			(*present)++;
		} else if (rc == -1) {
			ok = want == 0 || (pending >> 32 == i + 1u && (pending & 0xffffffffu) == 0);
		} else {
			ok = 0;
		}
		if (!ok && !bad++) {
			*first = k;
			*first_rc = rc;
		}
	}
	return bad;
}

/* Makes keygen[] match the table (after a killed writer's change went
 * either way).  Call only when the table has passed sk_compare. */
static inline void sk_resync(struct hashtable *h, const struct sk_plan *p, struct sk_shared *sh)
{
	uint64_t v[SK_MAX_VWORDS];
	for (uint32_t i = 0; i < p->nkeys; i++) {
		uint64_t k = sk_key(i), g = 0;
		if (hashtable_search(h, &k, v) == 0 && sk_check(v, p->vwords, k, &g) == SK_OK) {
			atomic_store(&sh->keygen[i], g);
			sk_mark_present(sh, i);
		} else {
			atomic_store(&sh->keygen[i], 0);
			sk_mark_absent(sh, i);
		}
	}
	for (int i = 0; i < SK_MAX_WORKERS; i++)
		atomic_store(&sh->pending[i], 0);
}

static inline void sk_assert_verify(struct hashtable *h, const char *when)
{
	int rc = hashtable_verify(h);
	ck_assert_msg(rc == 0, "hashtable_verify %s: %d (%s)", when, rc, hashtable_strerror(rc));
}

#endif
