/*
 * shmkv-bench: measures shmkv against the machine and against its peers, in
 * one run, on the same keys and values.
 *
 *   limits   a dependent random read (a pointer chase round one Sattolo cycle)
 *            and an independent random read (loads the CPU may overlap), over
 *            a buffer the size of the table being measured;
 *   shmkv    build, hit and miss lookups in two modes, batched lookups,
 *            updates, deletes, at four load factors, uniform and Zipf keys;
 *   peers    LMDB, tinycdb and ck_ht (and Redis, optional) on the same data;
 *   readers  1 and 2 reader processes, with and without a writer process;
 *   memory   segment bytes per entry against the peers' footprints.
 *
 * Lookup modes
 *   throughput  keys are independent, so the CPU overlaps their misses; the
 *               limit is the independent read.
 *   latency     each key is derived from the value the previous lookup
 *               returned (a value names the next key on one Sattolo cycle over
 *               all keys), so no two lookups overlap; the limit is the
 *               dependent read.  A miss returns no value, so a miss chain is
 *               serialised with lfence instead; the limits table shows what
 *               lfence adds to the dependent read.
 *
 * Every answer is checked.  A value holds the index of the next key and a
 * 32-bit tag of (own index, next index); wider values add padding words
 * derived from the index.  A writer flips the tag and the padding between two
 * variants, so readers accept either, but a value of another key, a torn value
 * (padding of both variants), a miss on a present key or a hit on an absent
 * one counts as wrong, and any wrong answer fails the run.
 *
 * Ratios are only meaningful inside one run: the machine is shared, so each
 * ratio is taken between figures measured in the same repetition loop
 * (median of the repetitions).
 *
 * SysV hygiene: each table gets a fresh IPC key (HASHTABLE_EXCL); the ids of
 * the segments made here are recorded and removed by id on every exit path,
 * including SIGINT/SIGTERM/SIGHUP; children are killed by pid; files live in
 * /dev/shm and /tmp under names holding our pid and are unlinked.
 */
#include "hashtable.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <lmdb.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <cdb.h>
#include <ck_ht.h>

#define PROG "shmkv-bench"
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define MAX_REPS 15
#define MAX_VALUE 1024       /* widest value a workload may use */
#define MAX_KEY 64           /* widest key a workload may use */
#define ZLUT_BITS 16         /* Zipf ranks for latency chains: 256 KiB, in L2 */
#define ZIPF_THETA 0.99
#define BATCH 32             /* keys per hashtable_search_batch call */
#define TAG_FLIP 0xa5a5a5a5u
#define PAD_FLIP 0xa5a5a5a5a5a5a5a5ull
#define HUGE_PAGE (2u << 20)

static const double LOADS[] = { 0.5, 0.8, 0.9, 0.95 };
#define NLOADS 4
#define REF_LOAD 1 /* index of 0.8: targets, peers, extras */

/* ---- Failure and cleanup ------------------------------------------------ */

/* Everything made here that must not outlive the run.  Written only with
 * signals blocked (reg_*), read by the handler, so the handler sees each
 * entry whole. */
#define MAX_SEGS 16
#define MAX_KIDS 16
#define MAX_FILES 8
static int seg_ids[MAX_SEGS];
static pid_t kid_pids[MAX_KIDS];
static char tmp_files[MAX_FILES][128];
static pid_t main_pid;

static void block_signals(sigset_t *old)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGHUP);
	sigprocmask(SIG_BLOCK, &s, old);
}

static void reg_seg(int shmid, int add)
{
	sigset_t old;

	block_signals(&old);
	for (int i = 0; i < MAX_SEGS; i++) {
		if (add && seg_ids[i] == -1) {
			seg_ids[i] = shmid;
			break;
		}
		if (!add && seg_ids[i] == shmid) {
			seg_ids[i] = -1;
			break;
		}
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void reg_kid(pid_t pid, int add)
{
	sigset_t old;

	block_signals(&old);
	for (int i = 0; i < MAX_KIDS; i++) {
		if (add && kid_pids[i] == 0) {
			kid_pids[i] = pid;
			break;
		}
		if (!add && kid_pids[i] == pid) {
			kid_pids[i] = 0;
			break;
		}
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void reg_file(const char *path, int add)
{
	sigset_t old;

	block_signals(&old);
	for (int i = 0; i < MAX_FILES; i++) {
		if (add && tmp_files[i][0] == 0) {
			snprintf(tmp_files[i], sizeof tmp_files[i], "%s", path);
			break;
		}
		if (!add && strcmp(tmp_files[i], path) == 0) {
			tmp_files[i][0] = 0;
			break;
		}
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

/* Async-signal-safe: kill, waitpid, shmctl, unlink, rmdir. */
static void cleanup_all(void)
{
	if (getpid() != main_pid)
		return;
	for (int i = 0; i < MAX_KIDS; i++)
		if (kid_pids[i] > 0) {
			kill(kid_pids[i], SIGKILL);
			waitpid(kid_pids[i], NULL, 0);
			kid_pids[i] = 0;
		}
	for (int i = 0; i < MAX_SEGS; i++)
		if (seg_ids[i] != -1) {
			shmctl(seg_ids[i], IPC_RMID, NULL);
			seg_ids[i] = -1;
		}
	for (int i = MAX_FILES - 1; i >= 0; i--) /* files before their directory */
		if (tmp_files[i][0]) {
			if (unlink(tmp_files[i]) != 0)
				rmdir(tmp_files[i]);
			tmp_files[i][0] = 0;
		}
}

static void on_signal(int sig)
{
	cleanup_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_cleanup(void)
{
	main_pid = getpid();
	for (int i = 0; i < MAX_SEGS; i++)
		seg_ids[i] = -1;
	atexit(cleanup_all);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);
}

static void die(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

/* ---- Time, random numbers, statistics ---------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The clock of the measurements: this thread's CPU time, so that time the
 * shared machine gives to other processes is not charged to us (a long loop
 * is descheduled more often than a short one, which would skew ratios).
 * Redis, where another process does the work, is timed on the wall clock. */
static clockid_t bench_clock = CLOCK_THREAD_CPUTIME_ID;

static uint64_t tick(void)
{
	struct timespec t;

	clock_gettime(bench_clock, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t t_start;

static double elapsed(void)
{
	return (double)(now_ns() - t_start) / 1e9;
}

static void progress(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[%6.1fs] ", elapsed());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* splitmix64's finaliser: a bijection on 64-bit words. */
ALWAYS_INLINE uint64_t mix64(uint64_t z)
{
	z ^= z >> 30;
	z *= 0xbf58476d1ce4e5b9ull;
	z ^= z >> 27;
	z *= 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct rng {
	uint64_t s;
};

ALWAYS_INLINE uint64_t rng_next(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ull;
	return mix64(r->s);
}

/* Uniform in [0, n). */
ALWAYS_INLINE uint64_t rng_below(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

static double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
	double t[MAX_REPS];

	if (n <= 0)
		return NAN;
	memcpy(t, v, sizeof(double) * (size_t)n);
	qsort(t, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

ALWAYS_INLINE void serialise(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("lfence" ::: "memory");
#else
	atomic_thread_fence(memory_order_seq_cst);
#endif
}

/* YCSB's Zipf generator (Gray et al., "Quickly generating billion-record
 * synthetic databases"): rank 0 is the most popular. */
struct zipf {
	uint64_t n;
	double theta, alpha, zetan, eta, half;
};

static void zipf_init(struct zipf *z, uint64_t n, double theta)
{
	double zeta2 = 1 + pow(2, -theta);

	z->n = n;
	z->theta = theta;
	z->zetan = 0;
	for (uint64_t i = n; i >= 1; i--) /* smallest terms first */
		z->zetan += pow((double)i, -theta);
	z->alpha = 1 / (1 - theta);
	z->eta = (1 - pow(2.0 / (double)n, 1 - theta)) / (1 - zeta2 / z->zetan);
	z->half = 1 + pow(0.5, theta);
}

static uint64_t zipf_next(const struct zipf *z, struct rng *r)
{
	double u = rng_unit(r), uz = u * z->zetan;
	uint64_t k;

	if (uz < 1)
		return 0;
	if (uz < z->half)
		return 1;
	k = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1, z->alpha));
	return k < z->n ? k : z->n - 1;
}

/* ---- The data set: keys, values, queries -------------------------------- */

enum dist { UNIFORM, ZIPF, NDISTS };

/* Key i's first word; a bijection of i, so keys i < n (present) and i >= n
 * (absent) never collide. */
ALWAYS_INLINE uint64_t key_word(uint64_t i)
{
	return mix64((i + 1) * 0x9e3779b97f4a7c15ull);
}

ALWAYS_INLINE uint32_t value_tag(uint64_t i, uint64_t next)
{
	return (uint32_t)mix64((i << 32 | next) ^ 0x243f6a8885a308d3ull);
}

ALWAYS_INLINE uint64_t pad_base(uint64_t i)
{
	return mix64(i ^ 0x13198a2e03707344ull);
}

struct dataset {
	uint64_t n;
	uint32_t ks, vs;
	uint32_t *next;                   /* one Sattolo cycle over [0, n)     */
	uint64_t nq;                      /* queries per set                   */
	unsigned char *qkeys[NDISTS];     /* nq present keys, contiguous       */
	uint32_t *qidx[NDISTS];           /* their indices                     */
	uint64_t *qexp[NDISTS];           /* their values' first words (variant 0) */
	unsigned char *mkeys;             /* nq absent keys                    */
	uint32_t *zlut;                   /* Zipf ranks for latency chains     */
};

ALWAYS_INLINE void key_of(uint32_t ks, uint64_t i, unsigned char *out)
{
	uint64_t w = key_word(i);

	memcpy(out, &w, 8);
	for (uint32_t off = 8; off < ks; off += 8) {
		w = mix64(i ^ ((uint64_t)off << 56));
		memcpy(out + off, &w, ks - off < 8 ? ks - off : 8);
	}
}

static void value_of(const struct dataset *d, uint64_t i, int variant,
                     unsigned char *out)
{
	uint64_t p = d->next[i];
	uint64_t w = p << 32 | (value_tag(i, p) ^ (variant ? TAG_FLIP : 0));
	uint64_t base = pad_base(i);

	memcpy(out, &w, 8);
	for (uint32_t k = 1; k < d->vs / 8; k++) {
		w = (base + k) ^ (variant ? PAD_FLIP : 0);
		memcpy(out + 8 * k, &w, 8);
	}
}

/* Returns the next index if v is a whole value of key i (either variant), or
 * -1. */
ALWAYS_INLINE int64_t value_check(const unsigned char *v, uint32_t vs,
                                  uint64_t i)
{
	uint64_t w, flip, base;
	uint32_t p, want;

	memcpy(&w, v, 8);
	p = (uint32_t)(w >> 32);
	want = value_tag(i, p);
	if ((uint32_t)w == want)
		flip = 0;
	else if ((uint32_t)w == (want ^ TAG_FLIP))
		flip = PAD_FLIP;
	else
		return -1;
	if (vs > 8) {
		base = pad_base(i);
		for (uint32_t k = 1; k < vs / 8; k++) {
			memcpy(&w, v + 8 * k, 8);
			if (w != ((base + k) ^ flip))
				return -1;
		}
	}
	return p;
}

/* light: uniform queries only, no cycle (for a process that only reads a
 * table another one built: the values carry the cycle). */
/* The check of the throughput loops: as value_check, but against the
 * expected first word read from a sequential array, so that few instructions
 * wait on the lookup's cache miss (each one waiting narrows the window in
 * which the CPU overlaps independent lookups). */
ALWAYS_INLINE int value_wrong(const unsigned char *v, uint32_t vs, uint64_t expect,
                              uint64_t i)
{
	uint64_t w, x;

	memcpy(&w, v, 8);
	x = w ^ expect;
	if (vs > 8) /* padding words: derived from i, flipped with the tag */
		return (x != 0 && x != TAG_FLIP) || value_check(v, vs, i) < 0;
	return x != 0 && x != TAG_FLIP;
}

static void dataset_init(struct dataset *d, uint64_t n, uint32_t ks,
                         uint32_t vs, uint64_t nq, uint64_t seed, int light)
{
	struct rng r = { seed };
	struct zipf z;

	if (ks < 8 || ks > MAX_KEY || vs < 8 || vs > MAX_VALUE || vs % 8 ||
	    n >= (1ull << 32))
		die("workload %llu x %u/%u not supported", (unsigned long long)n, ks, vs);
	d->n = n;
	d->ks = ks;
	d->vs = vs;
	d->nq = nq;
	memset(d->qkeys, 0, sizeof d->qkeys);
	memset(d->qidx, 0, sizeof d->qidx);
	memset(d->qexp, 0, sizeof d->qexp);
	d->next = NULL;
	d->zlut = NULL;
	if (light) {
		d->qkeys[UNIFORM] = xmalloc(nq * ks);
		d->qidx[UNIFORM] = xmalloc(nq * sizeof(uint32_t));
		d->qexp[UNIFORM] = calloc(nq, sizeof(uint64_t)); /* see warm_up */
		if (!d->qexp[UNIFORM])
			die("out of memory");
		for (uint64_t q = 0; q < nq; q++) {
			uint64_t i = rng_below(&r, n);

			d->qidx[UNIFORM][q] = (uint32_t)i;
			key_of(ks, i, d->qkeys[UNIFORM] + q * ks);
		}
		d->mkeys = xmalloc(nq * ks);
		for (uint64_t q = 0; q < nq; q++)
			key_of(ks, n + q, d->mkeys + q * ks);
		return;
	}
	d->next = xmalloc(n * sizeof *d->next);
	for (uint64_t i = 0; i < n; i++)
		d->next[i] = (uint32_t)i;
	for (uint64_t i = n - 1; i > 0; i--) { /* Sattolo: one cycle */
		uint64_t j = rng_below(&r, i);
		uint32_t t = d->next[i];

		d->next[i] = d->next[j];
		d->next[j] = t;
	}
	zipf_init(&z, n, ZIPF_THETA);
	for (int s = 0; s < NDISTS; s++) {
		d->qkeys[s] = xmalloc(nq * ks);
		d->qidx[s] = xmalloc(nq * sizeof(uint32_t));
		d->qexp[s] = xmalloc(nq * sizeof(uint64_t));
		for (uint64_t q = 0; q < nq; q++) {
			uint64_t i = s == ZIPF ? zipf_next(&z, &r) : rng_below(&r, n);
			uint64_t p = d->next[i];

			d->qidx[s][q] = (uint32_t)i;
			d->qexp[s][q] = p << 32 | value_tag(i, p);
			key_of(ks, i, d->qkeys[s] + q * ks);
		}
	}
	d->mkeys = xmalloc(nq * ks);
	for (uint64_t q = 0; q < nq; q++)
		key_of(ks, n + q, d->mkeys + q * ks);
	d->zlut = xmalloc(sizeof(uint32_t) << ZLUT_BITS);
	for (uint64_t q = 0; q < (1u << ZLUT_BITS); q++)
		d->zlut[q] = (uint32_t)zipf_next(&z, &r);
}

static void dataset_free(struct dataset *d)
{
	free(d->next);
	for (int s = 0; s < NDISTS; s++) {
		free(d->qkeys[s]);
		free(d->qidx[s]);
		free(d->qexp[s]);
	}
	free(d->mkeys);
	free(d->zlut);
}

/* Both sentinels (all 0x00, all 0xFF) are excluded because a key's first
 * word is never 0 or ~0 for the indices used; checked once per build. */
static void check_not_sentinel(uint64_t lo, uint64_t hi)
{
	for (uint64_t i = lo; i < hi; i++) {
		uint64_t w = key_word(i);

		if (w == 0 || w == ~0ull)
			die("key %llu equals a sentinel; change the seed",
			    (unsigned long long)i);
	}
}

/* ---- Lookup kernels, shared by every engine ----------------------------- */

/* get(): 1 found (value copied to val), 0 absent, < 0 error. */
typedef int (*get_fn)(void *ctx, const void *key, void *val);

/* Independent present keys: the throughput mode. */
ALWAYS_INLINE uint64_t k_thr_hit(get_fn get, void *c, const struct dataset *d,
                                 int dist, uint64_t m, uint64_t *bad)
{
	const unsigned char *k = d->qkeys[dist];
	const uint32_t *ix = d->qidx[dist];
	const uint64_t *ex = d->qexp[dist];
	unsigned char val[MAX_VALUE] __attribute__((aligned(64)));
	uint64_t wrong = 0, t0 = tick();

	for (uint64_t q = 0; q < m; q++, k += d->ks) {
		int r = get(c, k, val);

		wrong += (r != 1) | value_wrong(val, d->vs, ex[q], ix[q]);
	}
	t0 = tick() - t0;
	*bad += wrong;
	return t0;
}

ALWAYS_INLINE uint64_t k_thr_miss(get_fn get, void *c, const struct dataset *d,
                                  uint64_t m, uint64_t *bad)
{
	const unsigned char *k = d->mkeys;
	unsigned char val[MAX_VALUE] __attribute__((aligned(64)));
	uint64_t wrong = 0, t0 = tick();

	for (uint64_t q = 0; q < m; q++, k += d->ks)
		wrong += get(c, k, val) != 0;
	t0 = tick() - t0;
	*bad += wrong;
	return t0;
}

/* A chain: the next key's index comes out of the value just read. */
ALWAYS_INLINE uint64_t k_lat_hit(get_fn get, void *c, const struct dataset *d,
                                 int dist, uint64_t steps, uint64_t *state,
                                 uint64_t *bad)
{
	unsigned char key[MAX_KEY], val[MAX_VALUE] __attribute__((aligned(64)));
	uint64_t i = *state, wrong = 0, t0 = tick();

	for (uint64_t s = 0; s < steps; s++) {
		int64_t nx;

		key_of(d->ks, i, key);
		nx = get(c, key, val) == 1 ? value_check(val, d->vs, i) : -1;
		if (nx < 0) { /* wrong: count it, and go on along the cycle */
			wrong++;
			nx = d->next ? d->next[i] : (i + 1) % d->n;
		}
		i = dist == ZIPF ? d->zlut[((uint64_t)nx ^ s) & ((1u << ZLUT_BITS) - 1)]
		                 : (uint64_t)nx;
	}
	t0 = tick() - t0;
	*state = i;
	*bad += wrong;
	return t0;
}

/* A miss yields no value to chain on: lfence keeps misses from overlapping. */
ALWAYS_INLINE uint64_t k_lat_miss(get_fn get, void *c, const struct dataset *d,
                                  uint64_t steps, uint64_t *state,
                                  uint64_t *bad)
{
	unsigned char key[MAX_KEY], val[MAX_VALUE] __attribute__((aligned(64)));
	struct rng r = { *state };
	uint64_t wrong = 0, t0 = tick();

	for (uint64_t s = 0; s < steps; s++) {
		key_of(d->ks, d->n + (rng_next(&r) >> 40), key);
		wrong += get(c, key, val) != 0;
		serialise();
	}
	t0 = tick() - t0;
	*state = r.s;
	*bad += wrong;
	return t0;
}

struct kernels {
	uint64_t (*thr_hit)(void *, const struct dataset *, int, uint64_t, uint64_t *);
	uint64_t (*thr_miss)(void *, const struct dataset *, uint64_t, uint64_t *);
	uint64_t (*lat_hit)(void *, const struct dataset *, int, uint64_t, uint64_t *, uint64_t *);
	uint64_t (*lat_miss)(void *, const struct dataset *, uint64_t, uint64_t *, uint64_t *);
};

/* One copy of each kernel per engine, with its get() inlined. */
#define DEFINE_KERNELS(name, get)                                              \
	static uint64_t name##_thr_hit(void *c, const struct dataset *d,       \
	                               int s, uint64_t m, uint64_t *b)         \
	{ return k_thr_hit(get, c, d, s, m, b); }                              \
	static uint64_t name##_thr_miss(void *c, const struct dataset *d,      \
	                                uint64_t m, uint64_t *b)               \
	{ return k_thr_miss(get, c, d, m, b); }                                \
	static uint64_t name##_lat_hit(void *c, const struct dataset *d,       \
	                               int s, uint64_t m, uint64_t *st,        \
	                               uint64_t *b)                            \
	{ return k_lat_hit(get, c, d, s, m, st, b); }                          \
	static uint64_t name##_lat_miss(void *c, const struct dataset *d,      \
	                                uint64_t m, uint64_t *st, uint64_t *b) \
	{ return k_lat_miss(get, c, d, m, st, b); }                            \
	static const struct kernels name##_kernels = {                         \
		name##_thr_hit, name##_thr_miss, name##_lat_hit, name##_lat_miss \
	}

/* ---- Machine limits ----------------------------------------------------- */

struct limits {
	double dep, dep_fence, indep; /* ns per read */
};

struct membuf {
	uint64_t *w;    /* words; line l starts at w[8 * l] */
	size_t bytes;
	uint64_t lines;
	uint32_t *probe; /* random line numbers for the independent read */
	uint64_t nprobe, pos;
};

/* A buffer of `bytes`, shared anonymous memory like a SysV segment (4 KiB
 * pages: shmem THP is off here) or MAP_HUGETLB, with every line on one
 * random cycle.  Returns 0, or -errno. */
static int membuf_init(struct membuf *b, size_t bytes, int huge, uint64_t nprobe,
                       uint64_t seed)
{
	struct rng r = { seed };
	int fl = MAP_SHARED | MAP_ANONYMOUS | (huge ? MAP_HUGETLB : 0);

	if (huge)
		bytes = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
	b->bytes = bytes;
	b->w = mmap(NULL, bytes, PROT_READ | PROT_WRITE, fl, -1, 0);
	if (b->w == MAP_FAILED)
		return -errno;
	b->lines = bytes / 64;
	for (uint64_t l = 0; l < b->lines; l++)
		b->w[8 * l] = 8 * l;
	for (uint64_t l = b->lines - 1; l > 0; l--) { /* Sattolo */
		uint64_t j = rng_below(&r, l), t = b->w[8 * l];

		b->w[8 * l] = b->w[8 * j];
		b->w[8 * j] = t;
	}
	b->nprobe = nprobe;
	b->probe = xmalloc(nprobe * sizeof *b->probe);
	for (uint64_t q = 0; q < nprobe; q++)
		b->probe[q] = (uint32_t)rng_below(&r, b->lines);
	b->pos = 0;
	return 0;
}

static void membuf_free(struct membuf *b)
{
	munmap(b->w, b->bytes);
	free(b->probe);
}

static __attribute__((noinline)) double chase(struct membuf *b, uint64_t steps,
                                              int fence)
{
	const uint64_t *w = b->w;
	uint64_t p = b->pos, t0 = tick();

	if (fence)
		for (uint64_t s = 0; s < steps; s++) {
			p = w[p];
			serialise();
		}
	else
		for (uint64_t s = 0; s < steps; s++)
			p = w[p];
	t0 = tick() - t0;
	b->pos = p;
	return (double)t0 / (double)steps;
}

static volatile uint64_t sink;

static __attribute__((noinline)) double indep_read(const struct membuf *b)
{
	const uint64_t *w = b->w;
	const uint32_t *pr = b->probe;
	uint64_t s = 0, t0 = tick();

	for (uint64_t q = 0; q < b->nprobe; q++)
		s += w[(uint64_t)pr[q] * 8];
	t0 = tick() - t0;
	sink += s;
	return (double)t0 / (double)b->nprobe;
}

/* How the way a line is read changes how many misses overlap: the
 * independent read with the loaded line scanned as a 4-slot bucket of
 * (8-byte key, 8-byte value) slots would be, by scalar compares (each one
 * an instruction waiting on the miss) or by SSE2 compares (baseline x86-64).
 * Shown beside the throughput-mode figures as evidence, not as a target. */
enum scan { SCAN_SCALAR, SCAN_SSE2, NSCANS };
static const char *const scan_name[NSCANS] = {
	"4 x 8-byte loads, scalar compares", "4 x 16-byte loads, SSE2 compares"
};

static __attribute__((noinline)) double scan_read(const struct membuf *b, int how)
{
	const uint64_t *w = b->w;
	const uint32_t *pr = b->probe;
	uint64_t s = 0, t0 = tick();

	if (how == SCAN_SCALAR) {
		for (uint64_t q = 0; q < b->nprobe; q++) {
			const uint64_t *l = w + (uint64_t)pr[q] * 8;
			uint64_t k = q;

			s += (unsigned)(l[0] == k) | (unsigned)(l[2] == k) << 1 |
			     (unsigned)(l[4] == k) << 2 | (unsigned)(l[6] == k) << 3;
		}
	}
#ifdef __SSE2__
	else {
		for (uint64_t q = 0; q < b->nprobe; q++) {
			const __m128i *l = (const __m128i *)(const void *)(w + (uint64_t)pr[q] * 8);
			__m128i k = _mm_set1_epi64x((long long)q);
			__m128i e = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi32(l[0], k),
			                                      _mm_cmpeq_epi32(l[1], k)),
			                         _mm_or_si128(_mm_cmpeq_epi32(l[2], k),
			                                      _mm_cmpeq_epi32(l[3], k)));

			s += (unsigned)_mm_movemask_epi8(e);
		}
	}
#else
	else
		return NAN;
#endif
	t0 = tick() - t0;
	sink += s;
	return (double)t0 / (double)b->nprobe;
}

/* ---- The plan of a run -------------------------------------------------- */

struct workload {
	const char *name;
	uint64_t n;
	uint32_t ks, vs;
	int targets; /* the workload the targets are stated for */
};

struct plan {
	int quick, reps;
	uint64_t nq, lat_steps, upd_ops;
	double conc_secs;
	int conc_reps;
	int huge;
	const char *redis;
	const char *outdir;
	const char *nover;
	int nworkloads;
	struct workload wl[4];
};

/* ---- shmkv -------------------------------------------------------------- */

static key_t next_ipc_key(void)
{
	static unsigned seq;

	return (key_t)(0x5b000000u | ((unsigned)getpid() & 0xffffu) << 8 |
	               (seq++ & 0xffu));
}

/* Creates a table at a fresh key.  Returns 0, or the library's code. */
static int table_create(const struct dataset *d, double lf, size_t cap,
                        int flags, struct hashtable **out)
{
	struct hashtable_config cfg;
	int rc = -EEXIST;

	for (int tries = 0; tries < 256 && rc == -EEXIST; tries++) {
		sigset_t old;

		memset(&cfg, 0, sizeof cfg);
		cfg.ipc_key = next_ipc_key();
		cfg.capacity = cap;
		cfg.max_load = lf;
		cfg.key_size = d->ks;
		cfg.value_size = d->vs;
		cfg.flags = HASHTABLE_EXCL | flags;
		block_signals(&old);
		rc = hashtable_create_config(&cfg, out);
		if (rc == 0)
			reg_seg(hashtable_shmid(*out), 1);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	return rc;
}

static void table_destroy(struct hashtable *h)
{
	int id = hashtable_shmid(h), rc = hashtable_unlink(h);

	if (rc != 0)
		fprintf(stderr, PROG ": hashtable_unlink: %s\n", hashtable_strerror(rc));
	else
		reg_seg(id, 0);
	hashtable_close(h);
}

static key_t table_key(struct hashtable *h)
{
	struct hashtable_stats st;

	return hashtable_stats(h, &st) == 0 ? st.ipc_key : (key_t)-1;
}

ALWAYS_INLINE int shm_get(void *c, const void *k, void *v)
{
	int r = hashtable_search(c, (void *)(uintptr_t)k, v);

	return r == 0 ? 1 : r == -1 ? 0 : (r < 0 ? r : -EIO);
}
DEFINE_KERNELS(shm, shm_get);

static __attribute__((noinline)) uint64_t
shm_batch(struct hashtable *h, const struct dataset *d, int dist, size_t b,
          uint64_t *bad)
{
	const unsigned char *k = d->qkeys[dist];
	const uint32_t *ix = d->qidx[dist];
	unsigned char *val = xmalloc(b * d->vs);
	int found[1024];
	uint64_t wrong = 0, m = d->nq / b * b, t0 = tick();

	for (uint64_t q = 0; q < m; q += b) {
		long r = hashtable_search_batch(h, b, k + q * d->ks, val, found);

		wrong += r != (long)b;
		for (size_t i = 0; i < b; i++)
			wrong += (found[i] != 0) |
			         value_wrong(val + i * d->vs, d->vs, d->qexp[dist][q + i], ix[q + i]);
	}
	t0 = tick() - t0;
	free(val);
	*bad += wrong;
	return t0;
}

/* Builds keys [lo, hi) with variant 0; returns ns.  Insert must return 0. */
static uint64_t shm_fill(struct hashtable *h, const struct dataset *d,
                         uint64_t lo, uint64_t hi, uint64_t *bad)
{
	unsigned char key[MAX_KEY], val[MAX_VALUE];
	uint64_t wrong = 0, t0 = tick();

	for (uint64_t i = lo; i < hi; i++) {
		int r;

		key_of(d->ks, i, key);
		value_of(d, i, 0, val);
		r = hashtable_update(h, key, val);
		if (r != 0 && wrong++ == 0)
			fprintf(stderr, PROG ": insert %llu: %d %s\n",
			        (unsigned long long)i, r, hashtable_strerror(r));
	}
	t0 = tick() - t0;
	*bad += wrong;
	return t0;
}

static uint64_t shm_updates(struct hashtable *h, const struct dataset *d,
                            uint64_t m, int variant, uint64_t *bad)
{
	unsigned char *vals;
	const uint32_t *ix = d->qidx[UNIFORM];
	const unsigned char *k = d->qkeys[UNIFORM];
	uint64_t wrong = 0, t0;

	if (m > d->nq)
		m = d->nq;
	vals = xmalloc(m * d->vs); /* made outside the clock */
	for (uint64_t q = 0; q < m; q++)
		value_of(d, ix[q], variant, vals + q * d->vs);
	t0 = tick();
	for (uint64_t q = 0; q < m; q++)
		wrong += hashtable_update(h, (void *)(uintptr_t)(k + q * d->ks),
		                          vals + q * d->vs) != 1;
	t0 = tick() - t0;
	free(vals);
	*bad += wrong;
	return t0;
}

static uint64_t shm_deletes(struct hashtable *h, const struct dataset *d,
                            uint64_t lo, uint64_t hi, uint64_t *bad)
{
	unsigned char key[MAX_KEY], val[MAX_VALUE];
	uint64_t wrong = 0, t0 = tick();

	for (uint64_t i = lo; i < hi; i++) {
		key_of(d->ks, i, key);
		wrong += hashtable_delete(h, key) != 0;
	}
	t0 = tick() - t0;
	for (uint64_t i = lo; i < hi; i += 7) { /* gone, and not resurrected */
		key_of(d->ks, i, key);
		wrong += hashtable_search(h, key, val) != -1;
	}
	*bad += wrong;
	return t0;
}

/* ---- Peers -------------------------------------------------------------- */

struct peer {
	const char *name;
	const struct kernels *k;
	void *ctx;
	double build_ns;   /* per entry */
	double bytes;      /* footprint */
	const char *note;
	int scale;         /* measure nq/scale lookups: slow engines */
};

/* LMDB: keys sorted by memcmp order and appended (MDB_APPEND) in a
 * write-mapped environment on /dev/shm without syncs; lookups are mdb_get in
 * one read-only transaction per repetition. */
struct lmdb_ctx {
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	uint32_t ks, vs;
	char path[96], lock[104];
};

ALWAYS_INLINE int lmdb_get(void *c, const void *k, void *v)
{
	struct lmdb_ctx *l = c;
	MDB_val mk = { l->ks, (void *)(uintptr_t)k }, mv;
	int r = mdb_get(l->txn, l->dbi, &mk, &mv);

	if (r == MDB_NOTFOUND)
		return 0;
	if (r != 0 || mv.mv_size != l->vs)
		return -1;
	memcpy(v, mv.mv_data, l->vs);
	return 1;
}
DEFINE_KERNELS(lmdb, lmdb_get);

struct sortrec {
	uint64_t k;
	uint64_t i;
};

/* LSD radix sort by k; tmp is as large as a. */
static void radix_sort(struct sortrec *a, struct sortrec *tmp, uint64_t n)
{
	for (int shift = 0; shift < 64; shift += 8) {
		uint64_t cnt[257] = { 0 };

		for (uint64_t i = 0; i < n; i++)
			cnt[((a[i].k >> shift) & 0xff) + 1]++;
		for (int b = 0; b < 256; b++)
			cnt[b + 1] += cnt[b];
		for (uint64_t i = 0; i < n; i++)
			tmp[cnt[(a[i].k >> shift) & 0xff]++] = a[i];
		memcpy(a, tmp, n * sizeof *a);
	}
}

#define MDB_TRY(call)                                                          \
	do {                                                                   \
		int e_ = (call);                                               \
		if (e_)                                                        \
			die("%s: %s", #call, mdb_strerror(e_));                \
	} while (0)

static void lmdb_open(struct peer *p, const struct dataset *d, uint64_t *bad)
{
	struct lmdb_ctx *l = xmalloc(sizeof *l);
	struct sortrec *a = xmalloc(d->n * sizeof *a), *tmp = xmalloc(d->n * sizeof *a);
	unsigned char key[MAX_KEY], val[MAX_VALUE];
	MDB_envinfo info;
	MDB_stat ms;
	uint64_t t0, t = 0;

	l->ks = d->ks;
	l->vs = d->vs;
	snprintf(l->path, sizeof l->path, "/dev/shm/shmkv-bench.%d.mdb", (int)getpid());
	snprintf(l->lock, sizeof l->lock, "%s-lock", l->path);
	unlink(l->path);
	unlink(l->lock);
	reg_file(l->path, 1);
	reg_file(l->lock, 1);
	for (uint64_t i = 0; i < d->n; i++) {
		a[i].k = __builtin_bswap64(key_word(i)); /* memcmp order */
		a[i].i = i;
	}
	radix_sort(a, tmp, d->n);
	free(tmp);
	MDB_TRY(mdb_env_create(&l->env));
	MDB_TRY(mdb_env_set_mapsize(l->env, (size_t)(d->n * (d->ks + d->vs + 16) * 2 + (64u << 20))));
	MDB_TRY(mdb_env_open(l->env, l->path, MDB_NOSUBDIR | MDB_WRITEMAP | MDB_NOSYNC |
	                     MDB_NOMETASYNC | MDB_MAPASYNC | MDB_NORDAHEAD, 0600));
	for (uint64_t i = 0; i < d->n;) {
		MDB_txn *txn;
		uint64_t end = i + 100000 < d->n ? i + 100000 : d->n;

		t0 = tick();
		MDB_TRY(mdb_txn_begin(l->env, NULL, 0, &txn));
		if (i == 0)
			MDB_TRY(mdb_dbi_open(txn, NULL, 0, &l->dbi));
		for (; i < end; i++) {
			MDB_val mk = { d->ks, key }, mv = { d->vs, val };

			key_of(d->ks, a[i].i, key);
			value_of(d, a[i].i, 0, val);
			if (mdb_put(txn, l->dbi, &mk, &mv, MDB_APPEND) != 0)
				++*bad;
		}
		MDB_TRY(mdb_txn_commit(txn));
		t += tick() - t0;
	}
	free(a);
	MDB_TRY(mdb_env_info(l->env, &info));
	MDB_TRY(mdb_env_stat(l->env, &ms));
	p->bytes = (double)(info.me_last_pgno + 1) * ms.ms_psize;
	p->build_ns = (double)t / (double)d->n;
	MDB_TRY(mdb_txn_begin(l->env, NULL, MDB_RDONLY, &l->txn));
	p->ctx = l;
}

static void lmdb_close(struct peer *p)
{
	struct lmdb_ctx *l = p->ctx;

	mdb_txn_abort(l->txn);
	mdb_env_close(l->env);
	unlink(l->path);
	unlink(l->lock);
	reg_file(l->path, 0);
	reg_file(l->lock, 0);
	free(l);
}

/* tinycdb: built with cdb_make into a file on /dev/shm, read through
 * cdb_find over its mmap. */
struct cdb_ctx {
	struct cdb db;
	int fd;
	uint32_t ks, vs;
	char path[96];
};

ALWAYS_INLINE int cdbx_get(void *c, const void *k, void *v)
{
	struct cdb_ctx *x = c;
	int r = cdb_find(&x->db, k, x->ks);

	if (r <= 0)
		return r;
	if (cdb_datalen(&x->db) != x->vs)
		return -1;
	memcpy(v, cdb_getdata(&x->db), x->vs);
	return 1;
}
DEFINE_KERNELS(cdbx, cdbx_get);

static void cdb_open(struct peer *p, const struct dataset *d, uint64_t *bad)
{
	struct cdb_ctx *x = xmalloc(sizeof *x);
	struct cdb_make mk;
	unsigned char key[MAX_KEY], val[MAX_VALUE];
	struct stat sb;
	uint64_t t0;
	int fd;

	x->ks = d->ks;
	x->vs = d->vs;
	snprintf(x->path, sizeof x->path, "/dev/shm/shmkv-bench.%d.cdb", (int)getpid());
	reg_file(x->path, 1);
	fd = open(x->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die("%s: %s", x->path, strerror(errno));
	t0 = tick();
	if (cdb_make_start(&mk, fd) < 0)
		die("cdb_make_start: %s", strerror(errno));
	for (uint64_t i = 0; i < d->n; i++) {
		key_of(d->ks, i, key);
		value_of(d, i, 0, val);
		if (cdb_make_add(&mk, key, d->ks, val, d->vs) < 0)
			++*bad;
	}
	if (cdb_make_finish(&mk) < 0)
		die("cdb_make_finish: %s", strerror(errno));
	p->build_ns = (double)(tick() - t0) / (double)d->n;
	close(fd);
	x->fd = open(x->path, O_RDONLY);
	if (x->fd < 0 || cdb_init(&x->db, x->fd) < 0)
		die("cdb_init %s: %s", x->path, strerror(errno));
	fstat(x->fd, &sb);
	p->bytes = (double)sb.st_size;
	p->ctx = x;
}

static void cdb_close(struct peer *p)
{
	struct cdb_ctx *x = p->ctx;

	cdb_free(&x->db);
	close(x->fd);
	unlink(x->path);
	reg_file(x->path, 0);
	free(x);
}

/* ck_ht: in-process, SPMC.  8-byte keys and values go in the table itself
 * (CK_HT_MODE_DIRECT); wider ones are pointers into arrays
 * (CK_HT_MODE_BYTESTRING), as ck_ht requires. */
struct ckht_ctx {
	ck_ht_t ht;
	uint32_t ks, vs;
	unsigned char *keys, *vals; /* BYTESTRING storage */
	size_t map_bytes;
};

static size_t ck_live_bytes;

static void *ck_malloc_fn(size_t n)
{
	ck_live_bytes += n;
	return malloc(n);
}

static void *ck_realloc_fn(void *p, size_t old, size_t n, bool defer)
{
	(void)defer;
	ck_live_bytes += n - old;
	return realloc(p, n);
}

static void ck_free_fn(void *p, size_t n, bool defer)
{
	(void)defer;
	ck_live_bytes -= n;
	free(p);
}

static struct ck_malloc ck_alloc = { ck_malloc_fn, ck_realloc_fn, ck_free_fn };

ALWAYS_INLINE int ckd_get(void *c, const void *k, void *v)
{
	struct ckht_ctx *x = c;
	ck_ht_entry_t e;
	ck_ht_hash_t h;
	uintptr_t key, val;

	memcpy(&key, k, sizeof key);
	ck_ht_hash_direct(&h, &x->ht, key);
	ck_ht_entry_key_set_direct(&e, key);
	if (!ck_ht_get_spmc(&x->ht, h, &e))
		return 0;
	val = ck_ht_entry_value_direct(&e);
	memcpy(v, &val, sizeof val);
	return 1;
}
DEFINE_KERNELS(ckd, ckd_get);

ALWAYS_INLINE int ckb_get(void *c, const void *k, void *v)
{
	struct ckht_ctx *x = c;
	ck_ht_entry_t e;
	ck_ht_hash_t h;

	ck_ht_hash(&h, &x->ht, k, (uint16_t)x->ks);
	ck_ht_entry_key_set(&e, k, (uint16_t)x->ks);
	if (!ck_ht_get_spmc(&x->ht, h, &e))
		return 0;
	memcpy(v, ck_ht_entry_value(&e), x->vs);
	return 1;
}
DEFINE_KERNELS(ckb, ckb_get);

static void ckht_open(struct peer *p, const struct dataset *d, uint64_t *bad)
{
	struct ckht_ctx *x = xmalloc(sizeof *x);
	int direct = d->ks == 8 && d->vs == 8;
	uint64_t slots = 2, t0;

	memset(x, 0, sizeof *x);
	x->ks = d->ks;
	x->vs = d->vs;
	while (slots < 2 * d->n) /* ck_ht keeps its load at most 0.5 */
		slots <<= 1;
	ck_live_bytes = 0;
	if (!direct) {
		x->keys = xmalloc(d->n * d->ks);
		x->vals = xmalloc(d->n * d->vs);
	}
	t0 = tick();
	if (!ck_ht_init(&x->ht, direct ? CK_HT_MODE_DIRECT : CK_HT_MODE_BYTESTRING,
	                NULL, &ck_alloc, slots, 0x5eed))
		die("ck_ht_init failed");
	for (uint64_t i = 0; i < d->n; i++) {
		ck_ht_entry_t e;
		ck_ht_hash_t h;

		if (direct) {
			uint64_t v;

			value_of(d, i, 0, (unsigned char *)&v);
			ck_ht_hash_direct(&h, &x->ht, key_word(i));
			ck_ht_entry_set_direct(&e, h, key_word(i), v);
		} else {
			unsigned char *k = x->keys + i * d->ks, *v = x->vals + i * d->vs;

			key_of(d->ks, i, k);
			value_of(d, i, 0, v);
			ck_ht_hash(&h, &x->ht, k, (uint16_t)d->ks);
			ck_ht_entry_set(&e, h, k, (uint16_t)d->ks, v);
		}
		if (!ck_ht_put_spmc(&x->ht, h, &e))
			++*bad;
	}
	p->build_ns = (double)(tick() - t0) / (double)d->n;
	x->map_bytes = ck_live_bytes;
	p->bytes = (double)ck_live_bytes + (direct ? 0.0 : (double)d->n * (d->ks + d->vs));
	p->k = direct ? &ckd_kernels : &ckb_kernels;
	p->note = direct ? "CK_HT_MODE_DIRECT" : "CK_HT_MODE_BYTESTRING";
	p->ctx = x;
}

static void ckht_close(struct peer *p)
{
	struct ckht_ctx *x = p->ctx;

	ck_ht_destroy(&x->ht);
	free(x->keys);
	free(x->vals);
	free(x);
}

/* ---- Redis (optional): our own server on a unix socket under /tmp ------- */

struct redis_ctx {
	pid_t pid;
	int fd;
	char dir[64], sock[96];
	uint32_t ks, vs;
	unsigned char *out, *in;
	size_t outcap, incap;
};

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A reply reader over a buffered socket. */
struct rbuf {
	int fd;
	unsigned char *b;
	size_t cap, lo, hi;
};

static int rb_fill(struct rbuf *r)
{
	ssize_t n;

	if (r->lo == r->hi)
		r->lo = r->hi = 0;
	if (r->hi == r->cap) {
		memmove(r->b, r->b + r->lo, r->hi - r->lo);
		r->hi -= r->lo;
		r->lo = 0;
	}
	do
		n = read(r->fd, r->b + r->hi, r->cap - r->hi);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	r->hi += (size_t)n;
	return 0;
}

/* Reads one line ending in \r\n into line (without it). */
static int rb_line(struct rbuf *r, char *line, size_t cap)
{
	size_t n = 0;

	for (;;) {
		while (r->lo < r->hi) {
			char c = (char)r->b[r->lo++];

			if (c == '\n') {
				if (n && line[n - 1] == '\r')
					n--;
				line[n] = 0;
				return 0;
			}
			if (n + 1 < cap)
				line[n++] = c;
		}
		if (rb_fill(r) < 0)
			return -1;
	}
}

static int rb_bytes(struct rbuf *r, void *out, size_t n)
{
	unsigned char *o = out;

	while (n) {
		size_t take;

		if (r->lo == r->hi && rb_fill(r) < 0)
			return -1;
		take = r->hi - r->lo < n ? r->hi - r->lo : n;
		if (o) {
			memcpy(o, r->b + r->lo, take);
			o += take;
		}
		r->lo += take;
		n -= take;
	}
	return 0;
}

/* One bulk reply: 1 and the value in val, 0 for nil, -1 on error. */
static int rb_bulk(struct rbuf *r, void *val, size_t vs)
{
	char line[64];
	long len;

	if (rb_line(r, line, sizeof line) < 0 || line[0] != '$')
		return -1;
	len = strtol(line + 1, NULL, 10);
	if (len < 0)
		return 0;
	if ((size_t)len != vs) {
		rb_bytes(r, NULL, (size_t)len + 2);
		return -1;
	}
	if (rb_bytes(r, val, vs) < 0 || rb_bytes(r, NULL, 2) < 0)
		return -1;
	return 1;
}

static size_t resp_cmd(unsigned char *o, const char *cmd, const void *k,
                       size_t ks, const void *v, size_t vs)
{
	size_t n = (size_t)sprintf((char *)o, "*%d\r\n$%zu\r\n%s\r\n$%zu\r\n",
	                           v ? 3 : 2, strlen(cmd), cmd, ks);

	memcpy(o + n, k, ks);
	n += ks;
	memcpy(o + n, "\r\n", 2);
	n += 2;
	if (v) {
		n += (size_t)sprintf((char *)o + n, "$%zu\r\n", vs);
		memcpy(o + n, v, vs);
		n += vs;
		memcpy(o + n, "\r\n", 2);
		n += 2;
	}
	return n;
}

static struct rbuf redis_rb;

ALWAYS_INLINE int redis_get(void *c, const void *k, void *v)
{
	struct redis_ctx *x = c;
	size_t n = resp_cmd(x->out, "GET", k, x->ks, NULL, 0);

	if (write_all(x->fd, x->out, n) < 0)
		return -1;
	return rb_bulk(&redis_rb, v, x->vs);
}
/* Latency mode only: one round trip per key.  Throughput is pipelined. */
DEFINE_KERNELS(redis1, redis_get);

#define REDIS_DEPTH 64
#define REDIS_MAX_N (1u << 20) /* loading 16M keys takes Redis minutes */

static uint64_t redis_pipelined(struct redis_ctx *x, const struct dataset *d,
                                const unsigned char *keys, const uint32_t *ix,
                                uint64_t m, uint64_t *bad)
{
	unsigned char val[MAX_VALUE];
	uint64_t wrong = 0, t0 = now_ns();

	for (uint64_t q = 0; q < m; q += REDIS_DEPTH) {
		uint64_t e = q + REDIS_DEPTH < m ? q + REDIS_DEPTH : m;
		size_t n = 0;

		for (uint64_t j = q; j < e; j++)
			n += resp_cmd(x->out + n, "GET", keys + j * d->ks, d->ks, NULL, 0);
		if (write_all(x->fd, x->out, n) < 0)
			return (uint64_t)(*bad += m, 0);
		for (uint64_t j = q; j < e; j++) {
			int r = rb_bulk(&redis_rb, val, d->vs);

			wrong += ix ? r != 1 || value_check(val, d->vs, ix[j]) < 0 : r != 0;
		}
	}
	t0 = now_ns() - t0;
	*bad += wrong;
	return t0;
}

static int redis_connect(const char *sock)
{
	struct sockaddr_un a;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof a.sun_path)
		return -1;
	memcpy(a.sun_path, sock, strlen(sock) + 1);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Returns 0, or -1 (Redis is optional: the caller reports and goes on). */
static int redis_open(struct peer *p, const struct dataset *d, const char *bin,
                      uint64_t *bad)
{
	struct redis_ctx *x = xmalloc(sizeof *x);
	unsigned char key[MAX_KEY], val[MAX_VALUE];
	char line[256];
	uint64_t t0;

	memset(x, 0, sizeof *x);
	x->fd = -1;
	p->ctx = x;
	x->ks = d->ks;
	x->vs = d->vs;
	snprintf(x->dir, sizeof x->dir, "/tmp/shmkv-bench.%d.redis", (int)getpid());
	snprintf(x->sock, sizeof x->sock, "%s/sock", x->dir);
	if (mkdir(x->dir, 0700) != 0 && errno != EEXIST)
		return -1;
	reg_file(x->dir, 1);
	reg_file(x->sock, 1);
	x->pid = fork();
	if (x->pid < 0)
		die("fork: %s", strerror(errno));
	if (x->pid == 0) {
		int nul = open("/dev/null", O_RDWR);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		execl(bin, bin, "--port", "0", "--unixsocket", x->sock,
		      "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
		      "--dir", x->dir, "--daemonize", "no", "--protected-mode", "yes",
		      (char *)NULL);
		_exit(127);
	}
	reg_kid(x->pid, 1);
	x->fd = -1;
	for (int i = 0; i < 500 && x->fd < 0; i++) {
		if (waitpid(x->pid, NULL, WNOHANG) == x->pid) {
			reg_kid(x->pid, 0);
			x->pid = 0;
			break;
		}
		x->fd = redis_connect(x->sock);
		if (x->fd < 0)
			usleep(10000);
	}
	x->outcap = REDIS_DEPTH * (64 + MAX_KEY + MAX_VALUE);
	x->out = xmalloc(x->outcap);
	redis_rb.fd = x->fd;
	redis_rb.cap = 1 << 20;
	redis_rb.b = xmalloc(redis_rb.cap);
	redis_rb.lo = redis_rb.hi = 0;
	if (x->fd < 0)
		return -1;
	t0 = now_ns();
	for (uint64_t q = 0; q < d->n; q += REDIS_DEPTH) {
		uint64_t e = q + REDIS_DEPTH < d->n ? q + REDIS_DEPTH : d->n;
		size_t n = 0;

		for (uint64_t i = q; i < e; i++) {
			key_of(d->ks, i, key);
			value_of(d, i, 0, val);
			n += resp_cmd(x->out + n, "SET", key, d->ks, val, d->vs);
		}
		if (write_all(x->fd, x->out, n) < 0)
			return -1;
		for (uint64_t i = q; i < e; i++)
			if (rb_line(&redis_rb, line, sizeof line) < 0)
				return -1;
			else if (strcmp(line, "+OK") != 0)
				++*bad;
	}
	p->build_ns = (double)(now_ns() - t0) / (double)d->n;
	if (write_all(x->fd, "INFO memory\r\n", 13) == 0 &&
	    rb_line(&redis_rb, line, sizeof line) == 0 && line[0] == '$') {
		long len = strtol(line + 1, NULL, 10);
		char *info = xmalloc((size_t)len + 3), *m;

		rb_bytes(&redis_rb, info, (size_t)len + 2);
		info[len] = 0;
		m = strstr(info, "used_memory:");
		p->bytes = m ? strtod(m + 12, NULL) : NAN;
		free(info);
	}
	return 0;
}

static void redis_close(struct peer *p)
{
	struct redis_ctx *x = p->ctx;

	if (x->fd >= 0)
		close(x->fd);
	if (x->pid > 0) {
		kill(x->pid, SIGTERM);
		waitpid(x->pid, NULL, 0);
		reg_kid(x->pid, 0);
	}
	unlink(x->sock);
	rmdir(x->dir);
	reg_file(x->sock, 0);
	reg_file(x->dir, 0);
	free(x->out);
	free(redis_rb.b);
	redis_rb.b = NULL;
	free(x);
}

/* ---- Results ------------------------------------------------------------ */

enum mode {
	HIT_LAT, MISS_LAT, HIT_THR, MISS_THR, BATCHED, ZHIT_LAT, ZHIT_THR,
	ZBATCHED, NMODES
};
static const char *const mode_name[NMODES] = {
	"hit, latency", "miss, latency", "hit, throughput", "miss, throughput",
	"batched hit", "Zipf hit, latency", "Zipf hit, throughput", "Zipf batched hit"
};

struct lfres {
	double lf;
	struct limits lim, lim_huge;
	struct hashtable_stats st;
	double create_ms, insert_ns;
	double ns[NMODES];
	double upd_ns, del_ns, reins_ns;
	int done;
};

#define NPEERS 4
struct peerres {
	const char *name, *note;
	double ns[NMODES], shm_ns[NMODES]; /* the peer, and shmkv in the same loop */
	double build_ns, bytes;
	int done;
	char err[160];
};

#define NSWEEP 8
static const size_t sweep_sizes[NSWEEP] = { 1, 2, 4, 8, 16, 32, 64, 128 };

#define NCONC 6 /* 1R, 2R, 1R+W, 2R+W; the independent read in 1 and 2 processes */
struct concres {
	double ops[NCONC];     /* lookups/s, all readers, wall clock        */
	double cpu_ops[NCONC]; /* lookups per CPU-second, summed over readers */
	double share[NCONC];   /* readers' CPU time / wall time              */
	double wops[NCONC];    /* writer updates/s                           */
	int done;
	char err[160];
};

struct hugeres {
	struct limits lim4k, limhuge;
	double ns4k[NMODES], nshuge[NMODES];
	double insert4k, inserthuge;
	int done;
	char err[200];
};

struct noverres {
	double ns[NMODES], ns_ref[NMODES];
	int done;
	char err[200];
};

struct wlres {
	const struct workload *w;
	double scan[NSCANS + 1], scan_indep; /* at load 0.80 */
	struct lfres lf[NLOADS];
	struct peerres peer[NPEERS];
	double sweep[NSWEEP];
	struct concres conc;
	struct hugeres huge;
	struct noverres nover;
};

static uint64_t total_bad, total_checked;

static void account(uint64_t *bad, uint64_t checked, const char *what)
{
	if (*bad)
		fprintf(stderr, PROG ": %llu wrong answers in %s\n",
		        (unsigned long long)*bad, what);
	total_bad += *bad;
	total_checked += checked;
	*bad = 0;
}

/* ---- Measuring one table ------------------------------------------------ */

/* Runs the lookup modes of one engine `reps` times, interleaved with `other`
 * (may be NULL) so their ratio comes from the same time window. */
struct runner {
	const struct kernels *k;
	void *ctx;
	int scale;
	uint64_t chain[3]; /* latency chain states */
};

static double run_mode(struct runner *r, const struct dataset *d,
                       const struct plan *pl, int mode, uint64_t *bad,
                       uint64_t *checked)
{
	uint64_t m = d->nq / (uint64_t)r->scale, steps = pl->lat_steps / (uint64_t)r->scale, t;

	if (m == 0)
		m = 1;
	if (steps == 0)
		steps = 1;
	switch (mode) {
	case HIT_THR:
		t = r->k->thr_hit(r->ctx, d, UNIFORM, m, bad);
		break;
	case ZHIT_THR:
		t = r->k->thr_hit(r->ctx, d, ZIPF, m, bad);
		break;
	case MISS_THR:
		t = r->k->thr_miss(r->ctx, d, m, bad);
		break;
	case HIT_LAT:
		t = r->k->lat_hit(r->ctx, d, UNIFORM, steps, &r->chain[0], bad);
		m = steps;
		break;
	case ZHIT_LAT:
		t = r->k->lat_hit(r->ctx, d, ZIPF, steps, &r->chain[1], bad);
		m = steps;
		break;
	case MISS_LAT:
		t = r->k->lat_miss(r->ctx, d, steps, &r->chain[2], bad);
		m = steps;
		break;
	default:
		return NAN;
	}
	*checked += m;
	return (double)t / (double)m;
}

static double run_batch(struct hashtable *h, const struct dataset *d, int dist,
                        size_t b, uint64_t *bad, uint64_t *checked)
{
	uint64_t m = d->nq / b * b;

	*checked += m;
	return (double)shm_batch(h, d, dist, b, bad) / (double)m;
}

static void runner_init(struct runner *r, const struct kernels *k, void *ctx,
                        int scale, uint64_t seed)
{
	r->k = k;
	r->ctx = ctx;
	r->scale = scale;
	r->chain[0] = seed % 1000;
	r->chain[1] = 0;
	r->chain[2] = seed;
}

static void measure_limits_only(struct membuf *mb, const struct plan *pl,
                                double *dep, double *fence, double *ind)
{
	*dep = chase(mb, pl->lat_steps, 0);
	*fence = chase(mb, pl->lat_steps / 2, 1);
	*ind = indep_read(mb);
}

static const int table_modes[] = { HIT_LAT, MISS_LAT, HIT_THR, MISS_THR, ZHIT_LAT, ZHIT_THR };
#define NTABLE_MODES 6

/* Limits and all lookup modes of one table, interleaved per repetition. */
static void measure_table(struct hashtable *h, struct membuf *mb,
                          const struct dataset *d, const struct plan *pl,
                          struct limits *lim, double *ns)
{
	double v[NMODES][MAX_REPS], l[3][MAX_REPS];
	uint64_t bad = 0, checked = 0;
	struct runner r;

	runner_init(&r, &shm_kernels, h, 1, 12345);
	for (int rep = 0; rep < pl->reps; rep++) {
		if (mb)
			measure_limits_only(mb, pl, &l[0][rep], &l[1][rep], &l[2][rep]);
		for (int i = 0; i < NTABLE_MODES; i++)
			v[table_modes[i]][rep] = run_mode(&r, d, pl, table_modes[i], &bad, &checked);
		v[BATCHED][rep] = run_batch(h, d, UNIFORM, BATCH, &bad, &checked);
		v[ZBATCHED][rep] = run_batch(h, d, ZIPF, BATCH, &bad, &checked);
	}
	for (int m = 0; m < NMODES; m++)
		ns[m] = median(v[m], pl->reps);
	if (mb) {
		lim->dep = median(l[0], pl->reps);
		lim->dep_fence = median(l[1], pl->reps);
		lim->indep = median(l[2], pl->reps);
	}
	account(&bad, checked, "shmkv lookups");
}

static void measure_writes(struct hashtable *h, const struct dataset *d,
                           const struct plan *pl, struct lfres *r)
{
	double u[MAX_REPS], del[MAX_REPS], ins[MAX_REPS];
	uint64_t bad = 0, checked = 0, nd = d->n / 16 < pl->upd_ops ? d->n / 16 : pl->upd_ops;
	int reps = pl->reps < 3 ? pl->reps : 3;

	for (int rep = 0; rep < reps; rep++) {
		uint64_t m = pl->upd_ops < d->nq ? pl->upd_ops : d->nq;
		uint64_t lo = (uint64_t)rep * nd % (d->n - nd);

		u[rep] = (double)shm_updates(h, d, m, rep & 1, &bad) / (double)m;
		del[rep] = (double)shm_deletes(h, d, lo, lo + nd, &bad) / (double)nd;
		ins[rep] = (double)shm_fill(h, d, lo, lo + nd, &bad) / (double)nd;
		checked += m + 2 * nd;
	}
	r->upd_ns = median(u, reps); /* keys left in either variant */
	r->del_ns = median(del, reps);
	r->reins_ns = median(ins, reps);
	account(&bad, checked, "shmkv writes");
}

/* Creates and fills a table; returns it, or NULL with err set. */
static struct hashtable *build_table(const struct dataset *d, double lf, int flags,
                                     double *create_ms, double *insert_ns,
                                     char *err, size_t errlen)
{
	struct hashtable *h;
	size_t cap = hashtable_segment_size(d->n, lf, d->ks, d->vs);
	uint64_t t0 = tick(), bad = 0;
	int rc;

	if (cap == 0) {
		snprintf(err, errlen, "hashtable_segment_size(%llu, %.2f) = 0",
		         (unsigned long long)d->n, lf);
		return NULL;
	}
	rc = table_create(d, lf, cap, flags, &h);
	if (rc != 0) {
		snprintf(err, errlen, "hashtable_create_config(%zu bytes%s): %s", cap,
		         flags & HASHTABLE_HUGETLB ? ", HUGETLB" : "", hashtable_strerror(rc));
		return NULL;
	}
	*create_ms = (double)(tick() - t0) / 1e6;
	*insert_ns = (double)shm_fill(h, d, 0, d->n, &bad) / (double)d->n;
	account(&bad, d->n, "build");
	return h;
}

static void run_load(const struct plan *pl, const struct dataset *d,
                     struct lfres *r, double lf, struct hashtable **keep)
{
	struct membuf mb;
	struct hashtable *h;
	char err[256];
	size_t cap = hashtable_segment_size(d->n, lf, d->ks, d->vs);
	int rc;

	r->lf = lf;
	rc = membuf_init(&mb, cap, 0, pl->nq, 777 + (uint64_t)(lf * 100));
	if (rc)
		die("buffer of %zu bytes: %s", cap, strerror(-rc));
	h = build_table(d, lf, 0, &r->create_ms, &r->insert_ns, err, sizeof err);
	if (!h)
		die("%s", err);
	hashtable_stats(h, &r->st);
	if (r->st.count != d->n)
		die("table holds %llu keys after %llu inserts",
		    (unsigned long long)r->st.count, (unsigned long long)d->n);
	progress("  load %.2f: %.1f MB, build %.1f ns/insert", lf,
	         (double)r->st.segment_bytes / 1e6, r->insert_ns);
	measure_table(h, &mb, d, pl, &r->lim, r->ns);
	membuf_free(&mb);
	measure_writes(h, d, pl, r);
	progress("  load %.2f: hit %.1f ns latency (dep %.1f), %.1f ns throughput (indep %.1f)",
	         lf, r->ns[HIT_LAT], r->lim.dep, r->ns[HIT_THR], r->lim.indep);
	r->done = 1;
	if (keep)
		*keep = h;
	else
		table_destroy(h);
}

/* ---- Extras on the reference table -------------------------------------- */

static void run_sweep(struct hashtable *h, const struct dataset *d,
                      const struct plan *pl, double *out)
{
	double v[NSWEEP][MAX_REPS];
	uint64_t bad = 0, checked = 0;

	for (int rep = 0; rep < pl->reps; rep++)
		for (int i = 0; i < NSWEEP; i++)
			v[i][rep] = run_batch(h, d, UNIFORM, sweep_sizes[i], &bad, &checked);
	for (int i = 0; i < NSWEEP; i++)
		out[i] = median(v[i], pl->reps);
	account(&bad, checked, "batch sweep");
}

static void run_peer(const struct plan *pl, const struct dataset *d,
                     struct hashtable *h, struct peer *p, struct peerres *out,
                     int is_redis)
{
	static const int modes[] = { HIT_THR, MISS_THR, ZHIT_THR, HIT_LAT, MISS_LAT, ZHIT_LAT };
	double v[NMODES][MAX_REPS], s[NMODES][MAX_REPS];
	uint64_t bad = 0, checked = 0;
	struct runner rp, rs;

	/* Redis works in another process: wall clock for it and for shmkv beside it. */
	bench_clock = is_redis ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID;
	runner_init(&rp, p->k, p->ctx, p->scale, 999);
	runner_init(&rs, &shm_kernels, h, p->scale, 999);
	for (int rep = 0; rep < pl->reps; rep++)
		for (int i = 0; i < 6; i++) {
			int m = modes[i];

			s[m][rep] = run_mode(&rs, d, pl, m, &bad, &checked);
			if (is_redis && (m == HIT_THR || m == MISS_THR || m == ZHIT_THR)) {
				uint64_t n = d->nq / (uint64_t)p->scale;
				int dist = m == ZHIT_THR ? ZIPF : UNIFORM;

				v[m][rep] = (double)redis_pipelined(p->ctx, d,
				        m == MISS_THR ? d->mkeys : d->qkeys[dist],
				        m == MISS_THR ? NULL : d->qidx[dist], n, &bad) / (double)n;
				checked += n;
			} else {
				v[m][rep] = run_mode(&rp, d, pl, m, &bad, &checked);
			}
		}
	for (int m = 0; m < NMODES; m++) {
		out->ns[m] = NAN;
		out->shm_ns[m] = NAN;
	}
	for (int i = 0; i < 6; i++) {
		out->ns[modes[i]] = median(v[modes[i]], pl->reps);
		out->shm_ns[modes[i]] = median(s[modes[i]], pl->reps);
	}
	bench_clock = CLOCK_THREAD_CPUTIME_ID;
	out->name = p->name;
	out->note = p->note;
	out->build_ns = p->build_ns;
	out->bytes = p->bytes;
	out->done = 1;
	account(&bad, checked, p->name);
	progress("  %s: build %.0f ns/entry, hit %.1f ns throughput (shmkv %.1f), %.0f B/entry",
	         p->name, p->build_ns, out->ns[HIT_THR], out->shm_ns[HIT_THR],
	         p->bytes / (double)d->n);
}

static void run_peers(const struct plan *pl, const struct dataset *d,
                      struct hashtable *h, struct wlres *w)
{
	struct peer p;
	uint64_t bad = 0;

	memset(&p, 0, sizeof p);
	p.name = "ck_ht";
	p.scale = 1;
	ckht_open(&p, d, &bad);
	account(&bad, d->n, "ck_ht build");
	run_peer(pl, d, h, &p, &w->peer[0], 0);
	ckht_close(&p);

	memset(&p, 0, sizeof p);
	p.name = "LMDB";
	p.k = &lmdb_kernels;
	p.note = "mdb_get, read-only txn";
	p.scale = 8;
	lmdb_open(&p, d, &bad);
	account(&bad, d->n, "LMDB build");
	run_peer(pl, d, h, &p, &w->peer[1], 0);
	lmdb_close(&p);

	memset(&p, 0, sizeof p);
	p.name = "tinycdb";
	p.k = &cdbx_kernels;
	p.note = "cdb_find over mmap";
	p.scale = 2;
	cdb_open(&p, d, &bad);
	account(&bad, d->n, "tinycdb build");
	run_peer(pl, d, h, &p, &w->peer[2], 0);
	cdb_close(&p);

	if (pl->redis && d->n <= REDIS_MAX_N) {
		memset(&p, 0, sizeof p);
		p.name = "Redis (optional)";
		p.k = &redis1_kernels;
		p.note = "GET over a unix socket; throughput pipelined 64 deep";
		p.scale = 64;
		if (redis_open(&p, d, pl->redis, &bad) == 0) {
			account(&bad, d->n, "Redis build");
			run_peer(pl, d, h, &p, &w->peer[3], 1);
		} else {
			snprintf(w->peer[3].err, sizeof w->peer[3].err,
			         "could not start or load %s", pl->redis);
			w->peer[3].name = p.name;
			progress("  Redis: %s", w->peer[3].err);
		}
		redis_close(&p);
	}
}

/* Readers and a writer in separate processes.  The control block is shared
 * anonymous memory made before fork. */
struct conc_ctl {
	_Atomic int ready, go, stop;
	struct {
		uint64_t ops, bad, ns, cpu_ns; /* wall and CPU time of the run */
		int err;
	} res[4];
};

static uint64_t process_cpu_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A freshly attached process has no page-table entries for the segment:
 * fault them in (a few lookups per page) before the clock starts, as a
 * long-running reader would have. */
static uint64_t warm_up(struct hashtable *h, const struct dataset *d, uint64_t *q,
                        uint64_t *learn)
{
	struct hashtable_stats st;
	unsigned char val[MAX_VALUE];
	uint64_t bad = 0, m;

	if (hashtable_stats(h, &st) != 0)
		return 1;
	m = st.segment_bytes / 4096 * 4;
	if (m < d->nq)
		m = d->nq;
	for (uint64_t j = 0; j < m; j++) {
		uint64_t i = d->qidx[UNIFORM][*q], w;

		if (hashtable_search(h, d->qkeys[UNIFORM] + *q * d->ks, val) != 0 ||
		    value_check(val, d->vs, i) < 0) {
			bad++;
		} else if (learn) { /* a light data set learns what to expect */
			memcpy(&w, val, 8);
			learn[*q] = (w >> 32) << 32 | value_tag(i, w >> 32);
		}
		if (++*q == d->nq)
			*q = 0;
	}
	return bad;
}

static void reader_child(struct conc_ctl *c, int slot, key_t key,
                         const struct dataset *d, double secs)
{
	struct hashtable *h = hashtable_open_key(key, HASHTABLE_RDONLY);
	unsigned char val[MAX_VALUE];
	uint64_t ops = 0, bad = 0, q = (uint64_t)slot * (d->nq / 3), t0, t, cpu0;
	uint64_t limit = (uint64_t)(secs * 1e9);

	c->res[slot].err = h ? 0 : errno;
	if (h)
		bad += warm_up(h, d, &q, NULL);
	atomic_fetch_add(&c->ready, 1);
	if (!h)
		_exit(1);
	while (!atomic_load(&c->go))
		sched_yield();
	cpu0 = process_cpu_ns();
	t0 = now_ns();
	do {
		for (int j = 0; j < 4096; j++, ops++) {
			int r = hashtable_search(h, d->qkeys[UNIFORM] + q * d->ks, val);

			bad += (r != 0) | value_wrong(val, d->vs, d->qexp[UNIFORM][q],
			                              d->qidx[UNIFORM][q]);
			if (++q == d->nq)
				q = 0;
		}
		t = now_ns() - t0;
	} while (t < limit);
	c->res[slot].cpu_ns = process_cpu_ns() - cpu0;
	c->res[slot].ops = ops;
	c->res[slot].bad = bad;
	c->res[slot].ns = t;
	hashtable_close(h);
	_exit(0);
}

/* The machine's side of the reader table: the independent read, in a
 * process of its own, over a buffer of the table's size. */
static void limit_child(struct conc_ctl *c, int slot, const struct membuf *mb,
                        double secs)
{
	const uint64_t *w = mb->w;
	uint64_t ops = 0, s = 0, q = (uint64_t)slot * (mb->nprobe / 3), t0, t, cpu0;
	uint64_t limit = (uint64_t)(secs * 1e9);

	for (uint64_t j = 0; j < mb->nprobe; j++) /* fault the page tables in */
		s += w[(uint64_t)mb->probe[j] * 8];
	atomic_fetch_add(&c->ready, 1);
	while (!atomic_load(&c->go))
		sched_yield();
	cpu0 = process_cpu_ns();
	t0 = now_ns();
	do {
		for (int j = 0; j < 4096; j++, ops++) {
			s += w[(uint64_t)mb->probe[q] * 8];
			if (++q == mb->nprobe)
				q = 0;
		}
		t = now_ns() - t0;
	} while (t < limit);
	c->res[slot].cpu_ns = process_cpu_ns() - cpu0;
	c->res[slot].ops = ops + (s == 42); /* keeps the loads */
	c->res[slot].ns = t;
	_exit(0);
}

static void writer_child(struct conc_ctl *c, int slot, key_t key,
                         const struct dataset *d)
{
	struct hashtable *h = hashtable_open_key(key, 0);
	unsigned char val[MAX_VALUE];
	struct rng r = { 4242 };
	uint64_t ops = 0, bad = 0, q = 0, t0, cpu0;

	c->res[slot].err = h ? 0 : errno;
	if (h)
		bad += warm_up(h, d, &q, NULL);
	atomic_fetch_add(&c->ready, 1);
	if (!h)
		_exit(1);
	while (!atomic_load(&c->go))
		sched_yield();
	cpu0 = process_cpu_ns();
	t0 = now_ns();
	while (!atomic_load(&c->stop)) {
		q = rng_below(&r, d->nq);
		value_of(d, d->qidx[UNIFORM][q], (int)(ops & 1), val);
		bad += hashtable_update(h, d->qkeys[UNIFORM] + q * d->ks, val) != 1;
		ops++;
	}
	c->res[slot].ops = ops;
	c->res[slot].bad = bad;
	c->res[slot].ns = now_ns() - t0;
	c->res[slot].cpu_ns = process_cpu_ns() - cpu0;
	hashtable_close(h);
	_exit(0);
}

struct conc_run {
	double wall;  /* lookups/s summed over readers, wall clock          */
	double cpu;   /* lookups per CPU-second summed over readers         */
	double share; /* CPU time / wall time, mean over readers            */
	double wops;  /* writer updates/s, wall clock                       */
	uint64_t ops;
};

/* One configuration: nr readers, a writer or not.  Returns 0, or -1 (err
 * set). */
static int conc_once(key_t key, const struct dataset *d, const struct membuf *mb,
                     double secs, int nr, int writer, struct conc_run *out,
                     uint64_t *bad, char *err, size_t errlen)
{
	struct conc_ctl *c = mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE,
	                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pids[4];
	int nk = nr + writer, failed = 0;

	memset(out, 0, sizeof *out);
	if (c == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	memset(c, 0, sizeof *c);
	fflush(NULL);
	for (int i = 0; i < nk; i++) {
		sigset_t old;

		block_signals(&old);
		pids[i] = fork();
		if (pids[i] == 0) {
			signal(SIGINT, SIG_DFL);
			signal(SIGTERM, SIG_DFL);
			signal(SIGHUP, SIG_DFL);
			sigprocmask(SIG_SETMASK, &old, NULL);
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != main_pid)
				_exit(1);
			if (i < nr && mb)
				limit_child(c, i, mb, secs);
			if (i < nr)
				reader_child(c, i, key, d, secs);
			writer_child(c, i, key, d);
		}
		if (pids[i] < 0)
			die("fork: %s", strerror(errno));
		reg_kid(pids[i], 1);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	for (uint64_t t0 = now_ns(); atomic_load(&c->ready) < nk; usleep(1000))
		if (now_ns() - t0 > 60000000000ull)
			break;
	atomic_store(&c->go, 1);
	for (int i = 0; i < nr; i++) {
		int st;

		waitpid(pids[i], &st, 0);
		reg_kid(pids[i], 0);
		failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0 || c->res[i].err;
	}
	atomic_store(&c->stop, 1);
	if (writer) {
		int st;

		waitpid(pids[nr], &st, 0);
		reg_kid(pids[nr], 0);
		failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0 || c->res[nr].err;
		if (c->res[nr].ns)
			out->wops = (double)c->res[nr].ops * 1e9 / (double)c->res[nr].ns;
	}
	for (int i = 0; i < nk; i++)
		*bad += c->res[i].bad;
	for (int i = 0; i < nr && !failed; i++) {
		out->ops += c->res[i].ops;
		out->wall += (double)c->res[i].ops * 1e9 / (double)c->res[i].ns;
		out->cpu += (double)c->res[i].ops * 1e9 / (double)c->res[i].cpu_ns;
		out->share += (double)c->res[i].cpu_ns / (double)c->res[i].ns / nr;
	}
	if (failed) {
		int e = 0;

		for (int i = 0; i < nk; i++)
			e = e ? e : c->res[i].err;
		snprintf(err, errlen, "a child failed to attach or run: %s",
		         e ? strerror(e) : "exit status");
	}
	munmap(c, sizeof *c);
	return failed ? -1 : 0;
}

static void run_concurrency(const struct plan *pl, const struct dataset *d,
                            struct hashtable *h, struct concres *out)
{
	/* readers, writer, machine (independent read instead of lookups) */
	static const int cfg[NCONC][3] = {
		{ 1, 0, 0 }, { 2, 0, 0 }, { 1, 1, 0 }, { 2, 1, 0 }, { 1, 0, 1 }, { 2, 0, 1 }
	};
	double v[NCONC][MAX_REPS], c[NCONC][MAX_REPS], s[NCONC][MAX_REPS], w[NCONC][MAX_REPS];
	key_t key = table_key(h);
	uint64_t bad = 0, checked = 0;
	struct hashtable_stats st;
	struct membuf mb;

	if (hashtable_stats(h, &st) != 0 ||
	    membuf_init(&mb, st.segment_bytes, 0, d->nq, 99) != 0) {
		snprintf(out->err, sizeof out->err, "no memory for the limit buffer");
		return;
	}
	for (int rep = 0; rep < pl->conc_reps; rep++)
		for (int i = 0; i < NCONC; i++) {
			struct conc_run r;

			if (conc_once(key, d, cfg[i][2] ? &mb : NULL, pl->conc_secs, cfg[i][0],
			              cfg[i][1], &r, &bad, out->err, sizeof out->err) != 0) {
				progress("  concurrency: %s", out->err);
				membuf_free(&mb);
				return;
			}
			v[i][rep] = r.wall;
			c[i][rep] = r.cpu;
			s[i][rep] = r.share;
			w[i][rep] = r.wops;
			if (!cfg[i][2])
				checked += r.ops;
		}
	membuf_free(&mb);
	for (int i = 0; i < NCONC; i++) {
		out->ops[i] = median(v[i], pl->conc_reps);
		out->cpu_ops[i] = median(c[i], pl->conc_reps);
		out->share[i] = median(s[i], pl->conc_reps);
		out->wops[i] = median(w[i], pl->conc_reps);
	}
	out->done = 1;
	account(&bad, checked, "concurrent readers");
	progress("  readers, M lookups per CPU-second (wall): 1R %.1f (%.1f), 2R %.1f (%.1f), "
	         "1R+W %.1f (%.1f), 2R+W %.1f (%.1f); independent read 1P %.1f, 2P %.1f",
	         out->cpu_ops[0] / 1e6, out->ops[0] / 1e6, out->cpu_ops[1] / 1e6, out->ops[1] / 1e6,
	         out->cpu_ops[2] / 1e6, out->ops[2] / 1e6, out->cpu_ops[3] / 1e6, out->ops[3] / 1e6,
	         out->cpu_ops[4] / 1e6, out->cpu_ops[5] / 1e6);
}

/* HASHTABLE_HUGETLB against the 4 KiB table, measured alternately. */
static void run_huge(const struct plan *pl, const struct dataset *d,
                     struct hashtable *h4k, double insert4k, struct hugeres *out)
{
	static const int modes[] = { HIT_LAT, MISS_LAT, HIT_THR, MISS_THR };
	size_t cap = hashtable_segment_size(d->n, LOADS[REF_LOAD], d->ks, d->vs);
	double a[NMODES][MAX_REPS], b[NMODES][MAX_REPS], l[6][MAX_REPS], create_ms;
	uint64_t bad = 0, checked = 0;
	struct membuf m4, mh;
	struct hashtable *hh;
	struct hashtable_stats st;
	struct runner r4, rh;
	int rc;

	rc = membuf_init(&mh, cap, 1, pl->nq, 31337);
	if (rc) {
		snprintf(out->err, sizeof out->err,
		         "no huge pages for a %zu-byte buffer (%s); set vm.nr_hugepages", cap,
		         strerror(-rc));
		progress("  huge pages: %s", out->err);
		return;
	}
	membuf_init(&m4, cap, 0, pl->nq, 31337);
	for (int rep = 0; rep < pl->reps; rep++) {
		measure_limits_only(&m4, pl, &l[0][rep], &l[1][rep], &l[2][rep]);
		measure_limits_only(&mh, pl, &l[3][rep], &l[4][rep], &l[5][rep]);
	}
	out->lim4k.dep = median(l[0], pl->reps);
	out->lim4k.dep_fence = median(l[1], pl->reps);
	out->lim4k.indep = median(l[2], pl->reps);
	out->limhuge.dep = median(l[3], pl->reps);
	out->limhuge.dep_fence = median(l[4], pl->reps);
	out->limhuge.indep = median(l[5], pl->reps);
	membuf_free(&mh);
	membuf_free(&m4);
	hh = build_table(d, LOADS[REF_LOAD], HASHTABLE_HUGETLB, &create_ms,
	                 &out->inserthuge, out->err, sizeof out->err);
	if (!hh) {
		progress("  huge pages: %s", out->err);
		return;
	}
	if (hashtable_stats(hh, &st) != 0 || !st.hugetlb)
		snprintf(out->err, sizeof out->err, "stats.hugetlb is 0 for a HUGETLB table");
	out->insert4k = insert4k;
	runner_init(&r4, &shm_kernels, h4k, 1, 5);
	runner_init(&rh, &shm_kernels, hh, 1, 5);
	for (int rep = 0; rep < pl->reps; rep++)
		for (int i = 0; i < 4; i++) {
			a[modes[i]][rep] = run_mode(&r4, d, pl, modes[i], &bad, &checked);
			b[modes[i]][rep] = run_mode(&rh, d, pl, modes[i], &bad, &checked);
		}
	for (int rep = 0; rep < pl->reps; rep++) {
		a[BATCHED][rep] = run_batch(h4k, d, UNIFORM, BATCH, &bad, &checked);
		b[BATCHED][rep] = run_batch(hh, d, UNIFORM, BATCH, &bad, &checked);
	}
	for (int m = 0; m < NMODES; m++)
		out->ns4k[m] = out->nshuge[m] = NAN;
	for (int i = 0; i < 4; i++) {
		out->ns4k[modes[i]] = median(a[modes[i]], pl->reps);
		out->nshuge[modes[i]] = median(b[modes[i]], pl->reps);
	}
	out->ns4k[BATCHED] = median(a[BATCHED], pl->reps);
	out->nshuge[BATCHED] = median(b[BATCHED], pl->reps);
	out->done = 1;
	account(&bad, checked, "huge pages");
	table_destroy(hh);
	progress("  huge pages: hit latency %.1f -> %.1f ns, throughput %.1f -> %.1f ns",
	         out->ns4k[HIT_LAT], out->nshuge[HIT_LAT], out->ns4k[HIT_THR],
	         out->nshuge[HIT_THR]);
}

/* One --probe run of `bin` on the table: 4 figures.  Returns 0 or -1. */
static int probe_once(const char *bin, struct hashtable *h, const struct dataset *d,
                      const struct plan *pl, double *x, uint64_t *bad)
{
	char cmd[1024];
	unsigned long long nb;
	FILE *f;
	int got = 0;

	snprintf(cmd, sizeof cmd,
	         "'%s' --probe %d --n %llu --ks %u --vs %u --nq %llu --steps %llu",
	         bin, (int)table_key(h), (unsigned long long)d->n, d->ks, d->vs,
	         (unsigned long long)d->nq, (unsigned long long)pl->lat_steps);
	fflush(NULL);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%lf %lf %lf %lf %llu", &x[0], &x[1], &x[2], &x[3], &nb) == 5) {
		*bad += nb;
		got = 1;
	}
	if (pclose(f) != 0)
		got = 0;
	return got ? 0 : -1;
}

/* A build of the library without version checks (SHMKV_BENCH_NO_VERSIONS),
 * as a second program (--nover PATH).  It and this program, each as a fresh
 * read-only --probe process that warms its page tables first, measure the
 * same table in turn. */
static void run_nover(const struct plan *pl, const struct dataset *d,
                      struct hashtable *h, struct noverres *out)
{
	static const int modes[] = { HIT_LAT, MISS_LAT, HIT_THR, MISS_THR };
	double a[NMODES][MAX_REPS], b[NMODES][MAX_REPS], x[4];
	uint64_t bad = 0, checked = 0;
	char self[512];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

	if (n <= 0)
		die("readlink /proc/self/exe: %s", strerror(errno));
	self[n] = 0;
	for (int rep = 0; rep < pl->reps; rep++) {
		if (probe_once(self, h, d, pl, x, &bad) != 0) {
			snprintf(out->err, sizeof out->err, "this program's --probe failed");
			return;
		}
		for (int i = 0; i < 4; i++)
			a[modes[i]][rep] = x[i];
		if (probe_once(pl->nover, h, d, pl, x, &bad) != 0) {
			snprintf(out->err, sizeof out->err, "--probe of the --nover program failed");
			progress("  no version checks: %s", out->err);
			return;
		}
		for (int i = 0; i < 4; i++)
			b[modes[i]][rep] = x[i];
		checked += 2 * 3 * (2 * d->nq + 2 * pl->lat_steps);
	}
	for (int m = 0; m < NMODES; m++)
		out->ns[m] = out->ns_ref[m] = NAN;
	for (int i = 0; i < 4; i++) {
		out->ns_ref[modes[i]] = median(a[modes[i]], pl->reps);
		out->ns[modes[i]] = median(b[modes[i]], pl->reps);
	}
	out->done = 1;
	account(&bad, checked, "version-check comparison");
	progress("  version checks: hit latency %.1f (without %.1f), throughput %.1f (without %.1f)",
	         out->ns_ref[HIT_LAT], out->ns[HIT_LAT], out->ns_ref[HIT_THR], out->ns[HIT_THR]);
}

/* --probe: the other side of run_nover. */
static int probe_main(key_t key, uint64_t n, uint32_t ks, uint32_t vs,
                      uint64_t nq, uint64_t steps)
{
	struct dataset d;
	struct plan pl;
	struct runner r;
	struct hashtable *h = hashtable_open_key(key, HASHTABLE_RDONLY);
	uint64_t bad = 0, checked = 0, pos = 0;
	double x[4], v[4][3];

	if (!h) {
		fprintf(stderr, PROG ": --probe: hashtable_open_key: %s\n", strerror(errno));
		return 1;
	}
	dataset_init(&d, n, ks, vs, nq, 0x5eed0000 + n + 1, 1);
	bad += warm_up(h, &d, &pos, d.qexp[UNIFORM]);
	memset(&pl, 0, sizeof pl);
	pl.nq = nq;
	pl.lat_steps = steps;
	runner_init(&r, &shm_kernels, h, 1, 77);
	for (int rep = 0; rep < 3; rep++) { /* median of 3 inside each probe */
		v[0][rep] = run_mode(&r, &d, &pl, HIT_LAT, &bad, &checked);
		v[1][rep] = run_mode(&r, &d, &pl, MISS_LAT, &bad, &checked);
		v[2][rep] = run_mode(&r, &d, &pl, HIT_THR, &bad, &checked);
		v[3][rep] = run_mode(&r, &d, &pl, MISS_THR, &bad, &checked);
	}
	for (int i = 0; i < 4; i++)
		x[i] = median(v[i], 3);
	printf("%.3f %.3f %.3f %.3f %llu\n", x[0], x[1], x[2], x[3], (unsigned long long)bad);
	hashtable_close(h);
	dataset_free(&d);
	return 0;
}

/* --profile: one operation on one table (8-byte keys and values, load 0.80),
 * for callgrind's --toggle-collect on the kernel named in bench/run.sh.
 * Prints the number of operations the kernel ran. */
static int profile_main(const char *op, uint64_t n)
{
	struct dataset d;
	struct plan pl;
	struct runner r;
	struct hashtable *h;
	uint64_t bad = 0, checked = 0, ops = 0;
	double create_ms, insert_ns;
	char err[256];

	install_cleanup();
	dataset_init(&d, n, 8, 8, n < 1000000 ? n : 1000000, 0x5eed0000 + n, 0);
	check_not_sentinel(0, n + d.nq);
	memset(&pl, 0, sizeof pl);
	pl.nq = d.nq;
	pl.lat_steps = d.nq / 4;
	h = build_table(&d, LOADS[REF_LOAD], 0, &create_ms, &insert_ns, err, sizeof err);
	if (!h)
		die("%s", err);
	runner_init(&r, &shm_kernels, h, 1, 1);
	if (strcmp(op, "hit_thr") == 0) {
		run_mode(&r, &d, &pl, HIT_THR, &bad, &checked);
		ops = checked;
	} else if (strcmp(op, "miss_thr") == 0) {
		run_mode(&r, &d, &pl, MISS_THR, &bad, &checked);
		ops = checked;
	} else if (strcmp(op, "hit_lat") == 0) {
		run_mode(&r, &d, &pl, HIT_LAT, &bad, &checked);
		ops = checked;
	} else if (strcmp(op, "miss_lat") == 0) {
		run_mode(&r, &d, &pl, MISS_LAT, &bad, &checked);
		ops = checked;
	} else if (strcmp(op, "batch") == 0) {
		run_batch(h, &d, UNIFORM, BATCH, &bad, &checked);
		ops = checked;
	} else if (strcmp(op, "insert") == 0) {
		ops = n; /* the build above */
	} else {
		die("--profile: unknown operation %s", op);
	}
	printf("%llu ops, %llu wrong\n", (unsigned long long)ops, (unsigned long long)bad);
	table_destroy(h);
	dataset_free(&d);
	return bad ? 1 : 0;
}

static void run_scan(const struct plan *pl, const struct dataset *d, struct wlres *res)
{
	double v[NSCANS + 1][MAX_REPS];
	struct membuf mb;
	size_t cap = hashtable_segment_size(d->n, LOADS[REF_LOAD], d->ks, d->vs);

	if (membuf_init(&mb, cap, 0, pl->nq, 4711) != 0)
		return;
	for (int rep = 0; rep < pl->reps; rep++) {
		v[NSCANS][rep] = indep_read(&mb);
		for (int i = 0; i < NSCANS; i++)
			v[i][rep] = scan_read(&mb, i);
	}
	res->scan_indep = median(v[NSCANS], pl->reps);
	for (int i = 0; i < NSCANS; i++)
		res->scan[i] = median(v[i], pl->reps);
	membuf_free(&mb);
}

static void run_workload(const struct plan *pl, const struct workload *w,
                         struct wlres *res)
{
	struct dataset d;
	struct hashtable *ref = NULL;

	res->w = w;
	progress("%s: %llu entries, %u-byte keys, %u-byte values", w->name,
	         (unsigned long long)w->n, w->ks, w->vs);
	dataset_init(&d, w->n, w->ks, w->vs, pl->nq < w->n * 2 ? pl->nq : w->n * 2,
	             0x5eed0000 + w->n, 0);
	check_not_sentinel(0, w->n + d.nq);
	for (int i = 0; i < NLOADS; i++)
		if (i != REF_LOAD)
			run_load(pl, &d, &res->lf[i], LOADS[i], NULL);
	run_load(pl, &d, &res->lf[REF_LOAD], LOADS[REF_LOAD], &ref);
	if (w->targets) {
		run_sweep(ref, &d, pl, res->sweep);
		run_scan(pl, &d, res);
		run_concurrency(pl, &d, ref, &res->conc);
		if (pl->huge)
			run_huge(pl, &d, ref, res->lf[REF_LOAD].insert_ns, &res->huge);
		else
			snprintf(res->huge.err, sizeof res->huge.err,
			         "run without --huge (bench/run.sh full passes it when it can reserve huge pages)");
		if (pl->nover)
			run_nover(pl, &d, ref, &res->nover);
		else
			snprintf(res->nover.err, sizeof res->nover.err,
			         "no build of the library without version checks exists");
	}
	run_peers(pl, &d, ref, res);
	table_destroy(ref);
	dataset_free(&d);
}

/* ---- Report ------------------------------------------------------------- */

static FILE *md;

static const char *fmt_ns(char *b, double ns)
{
	if (isnan(ns))
		snprintf(b, 24, "n/a");
	else if (ns < 100)
		snprintf(b, 24, "%.1f", ns);
	else
		snprintf(b, 24, "%.0f", ns);
	return b;
}

/* "231 (1.15x)" */
static const char *cell(char *b, double ns, double ref)
{
	char t[24];

	if (isnan(ns))
		return strcpy(b, "n/a");
	if (isnan(ref) || ref <= 0)
		return strcpy(b, fmt_ns(t, ns));
	snprintf(b, 48, "%s (%.2fx)", fmt_ns(t, ns), ns / ref);
	return b;
}

struct target {
	const char *what;
	double a, b;      /* ratio = a / b */
	int at_most;      /* 1: ratio <= goal; 0: ratio >= goal */
	double goal;
	const char *note;
};

static int targets_met, targets_missed;

static void target_row(const struct target *t)
{
	char x[24], y[24];
	double r = t->a / t->b;

	if (isnan(r)) {
		fprintf(md, "| %s | %s | %s | n/a | %s %.2fx | not measured%s%s |\n", t->what,
		        fmt_ns(x, t->a), fmt_ns(y, t->b), t->at_most ? "≤" : "≥", t->goal,
		        t->note ? ": " : "", t->note ? t->note : "");
		return;
	}
	if (t->at_most ? r <= t->goal : r >= t->goal) {
		targets_met++;
		fprintf(md, "| %s | %s | %s | %.2fx | %s %.2fx | met |\n", t->what,
		        fmt_ns(x, t->a), fmt_ns(y, t->b), r, t->at_most ? "≤" : "≥", t->goal);
	} else {
		targets_missed++;
		fprintf(md, "| %s | %s | %s | %.2fx | %s %.2fx | **missed** by %.0f%% |\n",
		        t->what, fmt_ns(x, t->a), fmt_ns(y, t->b), r,
		        t->at_most ? "≤" : "≥", t->goal,
		        100 * (t->at_most ? r / t->goal - 1 : t->goal / r - 1));
	}
}

static void report_targets(const struct wlres *w)
{
	const struct lfres *r8 = &w->lf[REF_LOAD], *r95 = &w->lf[3];
	const struct concres *c = &w->conc;
	double nan = NAN;
	struct target t[] = {
		{ "latency hit @0.80 vs dependent read", r8->ns[HIT_LAT], r8->lim.dep, 1, 1.25, NULL },
		{ "latency hit @0.95 vs dependent read", r95->ns[HIT_LAT], r95->lim.dep, 1, 1.6, NULL },
		{ "latency miss @0.80 vs dependent read", r8->ns[MISS_LAT], r8->lim.dep, 1, 2.0, NULL },
		{ "throughput hit @0.80 vs independent read", r8->ns[HIT_THR], r8->lim.indep, 1, 4.0, NULL },
		{ "batched hit @0.80 (per key, batch 32) vs independent read", r8->ns[BATCHED], r8->lim.indep, 1, 1.5, NULL },
		{ "LMDB hit / shmkv hit (throughput)", w->peer[1].ns[HIT_THR], w->peer[1].shm_ns[HIT_THR], 0, 20, NULL },
		{ "tinycdb hit / shmkv hit (throughput)", w->peer[2].ns[HIT_THR], w->peer[2].shm_ns[HIT_THR], 0, 4, NULL },
		{ "ck_ht hit / shmkv hit (throughput)", w->peer[0].ns[HIT_THR], w->peer[0].shm_ns[HIT_THR], 0, 2, NULL },
		{ "insert (build) vs throughput-mode hit @0.80", r8->insert_ns, r8->ns[HIT_THR], 1, 2.0, NULL },
		{ "insert (build) vs latency-mode hit @0.80", r8->insert_ns, r8->ns[HIT_LAT], 1, 2.0, NULL },
		{ "2 readers / 1 reader (M lookups per CPU-second)", c->done ? c->cpu_ops[1] : nan, c->done ? c->cpu_ops[0] : nan, 0, 1.8, c->err[0] ? c->err : NULL },
		{ "1 reader beside a writer / alone (M lookups per CPU-second)", c->done ? c->cpu_ops[2] : nan, c->done ? c->cpu_ops[0] : nan, 0, 0.8, c->err[0] ? c->err : NULL },
		{ "version checks: with / without, hit latency", w->nover.done ? w->nover.ns_ref[HIT_LAT] : nan, w->nover.done ? w->nover.ns[HIT_LAT] : nan, 1, 1.1, w->nover.err[0] ? w->nover.err : NULL },
		{ "version checks: with / without, hit throughput", w->nover.done ? w->nover.ns_ref[HIT_THR] : nan, w->nover.done ? w->nover.ns[HIT_THR] : nan, 1, 1.1, w->nover.err[0] ? w->nover.err : NULL },
	};

	fprintf(md, "## Targets (%s)\n\n", w->w->name);
	fprintf(md, "Figures in ns per lookup unless stated; each ratio's two figures come from the "
	        "same repetition loop (median of the repetitions).\n\n");
	fprintf(md, "| target | measured | against | ratio | goal | verdict |\n");
	fprintf(md, "|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (i == 10 || i == 11) { /* rates, shown in M lookups/s */
			struct target u = t[i];

			u.a /= 1e6;
			u.b /= 1e6;
			target_row(&u);
		} else {
			target_row(&t[i]);
		}
	}
	if (c->done)
		fprintf(md, "| reference: machine, 2 processes / 1, independent read (M reads per "
		        "CPU-second) | %.1f | %.1f | %.2fx | no goal | measured |\n",
		        c->cpu_ops[5] / 1e6, c->cpu_ops[4] / 1e6, c->cpu_ops[5] / c->cpu_ops[4]);
	if (w->huge.done)
		fprintf(md, "| huge pages: 4 KiB / huge, hit latency | %.1f | %.1f | %.2fx | gain, no goal | measured |\n"
		        "| huge pages: 4 KiB / huge, hit throughput | %.1f | %.1f | %.2fx | gain, no goal | measured |\n",
		        w->huge.ns4k[HIT_LAT], w->huge.nshuge[HIT_LAT],
		        w->huge.ns4k[HIT_LAT] / w->huge.nshuge[HIT_LAT],
		        w->huge.ns4k[HIT_THR], w->huge.nshuge[HIT_THR],
		        w->huge.ns4k[HIT_THR] / w->huge.nshuge[HIT_THR]);
	else
		fprintf(md, "| huge pages gain | n/a | n/a | n/a | gain, no goal | not measured: %s |\n",
		        w->huge.err);
	fprintf(md, "\nThe two reader rows are in millions of lookups per CPU-second, summed over the "
	        "reader processes (see the reader table for wall-clock rates).\n\n");
}

static void report_loads(const struct wlres *w)
{
	char a[48], b[48], c[48], e[48], f[48], g[48];

	fprintf(md, "### Machine limits and shmkv, uniform keys\n\n");
	fprintf(md, "| load | segment MB | dependent read | +lfence | independent read | "
	        "hit latency (x dep) | miss latency (x dep) | hit throughput (x indep) | "
	        "miss throughput (x indep) | batched/key (x indep) | insert (x thr hit) | "
	        "update | delete | reinsert | create ms | hit probes | miss probes |\n");
	fprintf(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < NLOADS; i++) {
		const struct lfres *r = &w->lf[i];

		if (!r->done)
			continue;
		fprintf(md, "| %.2f | %.1f | %.1f | %.1f | %.1f | %s | %s | %s | %s | %s | %s | "
		        "%.1f | %.1f | %.1f | %.1f | %.2f | %.2f |\n",
		        r->lf, (double)r->st.segment_bytes / 1e6, r->lim.dep, r->lim.dep_fence,
		        r->lim.indep, cell(a, r->ns[HIT_LAT], r->lim.dep),
		        cell(b, r->ns[MISS_LAT], r->lim.dep), cell(c, r->ns[HIT_THR], r->lim.indep),
		        cell(e, r->ns[MISS_THR], r->lim.indep), cell(f, r->ns[BATCHED], r->lim.indep),
		        cell(g, r->insert_ns, r->ns[HIT_THR]), r->upd_ns, r->del_ns, r->reins_ns,
		        r->create_ms, r->st.hit_probes, r->st.miss_probes);
	}
	fprintf(md, "\n### shmkv, Zipf-skewed keys (theta %.2f)\n\n", ZIPF_THETA);
	fprintf(md, "| load | hit latency (x dep) | hit throughput (x indep) | batched/key (x indep) |\n");
	fprintf(md, "|---|---|---|---|\n");
	for (int i = 0; i < NLOADS; i++) {
		const struct lfres *r = &w->lf[i];

		if (r->done)
			fprintf(md, "| %.2f | %s | %s | %s |\n", r->lf,
			        cell(a, r->ns[ZHIT_LAT], r->lim.dep),
			        cell(b, r->ns[ZHIT_THR], r->lim.indep),
			        cell(c, r->ns[ZBATCHED], r->lim.indep));
	}
	fputc('\n', md);
}

static void report_peers(const struct wlres *w)
{
	static const int modes[] = { HIT_THR, MISS_THR, ZHIT_THR, HIT_LAT, MISS_LAT, ZHIT_LAT };
	char a[48];

	fprintf(md, "### Peers against shmkv at load 0.80 (ns per lookup; peer/shmkv in parentheses)\n\n");
	fprintf(md, "| engine | build ns/entry |");
	for (int i = 0; i < 6; i++)
		fprintf(md, " %s |", mode_name[modes[i]]);
	fprintf(md, " bytes/entry | how |\n|---|---|---|---|---|---|---|---|---|---|\n");
	fprintf(md, "| shmkv | %.1f |", w->lf[REF_LOAD].insert_ns);
	for (int i = 0; i < 6; i++)
		fprintf(md, " %s |", fmt_ns(a, w->lf[REF_LOAD].ns[modes[i]]));
	fprintf(md, " %.1f | hashtable_search, 4 KiB pages |\n",
	        (double)w->lf[REF_LOAD].st.segment_bytes / (double)w->w->n);
	for (int p = 0; p < NPEERS; p++) {
		const struct peerres *r = &w->peer[p];

		if (!r->done) {
			if (r->name)
				fprintf(md, "| %s | not run: %s |||||||||\n", r->name, r->err);
			continue;
		}
		fprintf(md, "| %s | %.0f |", r->name, r->build_ns);
		for (int i = 0; i < 6; i++) {
			char t[24];

			snprintf(a, sizeof a, "%s (%.1fx)", fmt_ns(t, r->ns[modes[i]]),
			         r->ns[modes[i]] / r->shm_ns[modes[i]]);
			fprintf(md, " %s |", a);
		}
		fprintf(md, " %.1f | %s |\n", r->bytes / (double)w->w->n, r->note);
	}
	fprintf(md, "\nThe shmkv row shows the figures of the load table; each ratio divides by "
	        "shmkv measured in the same loop as the peer.\n\n");
}

static void report_memory(const struct wlres *w)
{
	double payload = (double)(w->w->ks + w->w->vs);

	fprintf(md, "### Memory (payload %u+%u = %.0f bytes per entry)\n\n", w->w->ks,
	        w->w->vs, payload);
	fprintf(md, "| store | bytes/entry | payload share |\n|---|---|---|\n");
	for (int i = 0; i < NLOADS; i++) {
		const struct lfres *r = &w->lf[i];

		if (r->done)
			fprintf(md, "| shmkv @%.2f (slot %u B, %u slots/bucket) | %.1f | %.1f%% |\n",
			        r->lf, r->st.slot_size, r->st.slots_per_bucket,
			        (double)r->st.segment_bytes / (double)w->w->n,
			        100.0 * (double)r->st.payload_bytes / (double)r->st.segment_bytes);
	}
	for (int p = 0; p < NPEERS; p++) {
		const struct peerres *r = &w->peer[p];

		if (r->done && !isnan(r->bytes))
			fprintf(md, "| %s | %.1f | %.1f%% |\n", r->name, r->bytes / (double)w->w->n,
			        100.0 * payload * (double)w->w->n / r->bytes);
	}
	fprintf(md, "\nLMDB: pages in use (last page + 1) x page size; tinycdb: file size; ck_ht: "
	        "bytes allocated, plus the key and value arrays in BYTESTRING mode; Redis: "
	        "used_memory.\n\n");
}

static void report_extras(const struct wlres *w)
{
	char buf[32];
	const struct concres *c = &w->conc;
	const struct hugeres *h = &w->huge;

	fprintf(md, "### Batched lookups by batch size (load 0.80, uniform)\n\n| batch |");
	for (int i = 0; i < NSWEEP; i++)
		fprintf(md, " %zu |", sweep_sizes[i]);
	fprintf(md, "\n|---|---|---|---|---|---|---|---|---|\n| ns/key (x indep) |");
	for (int i = 0; i < NSWEEP; i++)
		fprintf(md, " %.1f (%.2fx) |", w->sweep[i], w->sweep[i] / w->lf[REF_LOAD].lim.indep);
	fprintf(md, "\n\n### Reading a line: why the throughput mode is far from the independent read\n\n");
	fprintf(md, "| read of a random line (buffer of the 0.80 table's size) | ns per line | x independent read |\n|---|---|---|\n");
	fprintf(md, "| one 8-byte load (the independent read) | %.1f | 1.00x |\n", w->scan_indep);
	for (int i = 0; i < NSCANS; i++)
		fprintf(md, "| %s | %.1f | %.2fx |\n", scan_name[i], w->scan[i], w->scan[i] / w->scan_indep);
	fprintf(md, "| shmkv hit, throughput mode (for comparison) | %.1f | %.2fx |\n",
	        w->lf[REF_LOAD].ns[HIT_THR], w->lf[REF_LOAD].ns[HIT_THR] / w->lf[REF_LOAD].lim.indep);
	fprintf(md, "\nThe same random lines, the same loads of one 64-byte line: every instruction "
	        "that waits on a miss holds a scheduler entry, so the more of them per line, the "
	        "fewer misses the CPU keeps in flight.  Scalar compares put about a dozen integer "
	        "operations behind each miss; SSE2 compares put most of that work in the vector "
	        "scheduler.\n");
	fprintf(md, "\n### Reader processes (load 0.80, uniform hits, throughput mode)\n\n");
	if (c->done) {
		static const char *const name[NCONC] = {
			"1 reader", "2 readers", "1 reader + writer", "2 readers + writer",
			"machine: 1 process, independent read", "machine: 2 processes, independent read"
		};
		static const int base[NCONC] = { 0, 0, 0, 1, 4, 4 };

		fprintf(md, "| configuration | M lookups (reads) per CPU-second, all readers | ratio | "
		        "M lookups/s wall clock, all readers | ratio | readers' CPU share | "
		        "writer M updates/s |\n|---|---|---|---|---|---|---|\n");
		for (int i = 0; i < NCONC; i++)
			fprintf(md, "| %s | %.2f | %.2fx %s | %.2f | %.2fx | %.0f%% | %s |\n", name[i],
			        c->cpu_ops[i] / 1e6, c->cpu_ops[i] / c->cpu_ops[base[i]],
			        i == 0 || i == 4 ? "" : i == 1 ? "1 reader" : i == 5 ? "1 process" :
			        "without writer",
			        c->ops[i] / 1e6, c->ops[i] / c->ops[base[i]], 100 * c->share[i],
			        i == 2 || i == 3 ? (snprintf(buf, sizeof buf, "%.2f", c->wops[i] / 1e6), buf) : "-");
		fprintf(md, "\nEach reader is a forked process attached with hashtable_open_key(RDONLY) "
		        "that faults its page tables in before the clock starts; the writer attaches "
		        "read-write and overwrites random keys with the other valid value as fast as it "
		        "can.  The targets use lookups per CPU-second, which the other work on this "
		        "shared machine does not change; the wall-clock rates and the CPU share the "
		        "readers got are shown beside them.  With 2 readers and a writer there are 3 "
		        "processes on %ld CPUs.  The machine rows run the independent read in 1 and 2 "
		        "processes over a buffer of the table's size: how far two processes scale on "
		        "this machine at all (its 2 vCPUs may share a physical core).\n\n",
		        sysconf(_SC_NPROCESSORS_ONLN));
	} else {
		fprintf(md, "Not measured: %s\n\n", c->err);
	}
	fprintf(md, "### Huge pages (HASHTABLE_HUGETLB, load 0.80)\n\n");
	if (h->done) {
		char a[48], b[48];

		fprintf(md, "| | 4 KiB pages | huge pages | 4 KiB / huge |\n|---|---|---|---|\n");
		fprintf(md, "| dependent read | %.1f | %.1f | %.2fx |\n", h->lim4k.dep, h->limhuge.dep,
		        h->lim4k.dep / h->limhuge.dep);
		fprintf(md, "| independent read | %.1f | %.1f | %.2fx |\n", h->lim4k.indep,
		        h->limhuge.indep, h->lim4k.indep / h->limhuge.indep);
		for (int m = 0; m <= BATCHED; m++)
			fprintf(md, "| %s | %s | %s | %.2fx |\n", mode_name[m],
			        cell(a, h->ns4k[m], m == HIT_LAT || m == MISS_LAT ? h->lim4k.dep : h->lim4k.indep),
			        cell(b, h->nshuge[m], m == HIT_LAT || m == MISS_LAT ? h->limhuge.dep : h->limhuge.indep),
			        h->ns4k[m] / h->nshuge[m]);
		fprintf(md, "| insert (build) | %.1f | %.1f | %.2fx |\n", h->insert4k, h->inserthuge,
		        h->insert4k / h->inserthuge);
		fprintf(md, "\nRatios in parentheses are against the limit measured with the same page size.%s%s\n\n",
		        h->err[0] ? " Note: " : "", h->err);
	} else {
		fprintf(md, "Not measured: %s\n\n", h->err);
	}
	fprintf(md, "### Version checks\n\n");
	if (w->nover.done) {
		fprintf(md, "| mode | with checks | without | with / without |\n|---|---|---|---|\n");
		for (int m = 0; m <= MISS_THR; m++)
			fprintf(md, "| %s | %.1f | %.1f | %.2fx |\n", mode_name[m], w->nover.ns_ref[m],
			        w->nover.ns[m], w->nover.ns_ref[m] / w->nover.ns[m]);
		fputc('\n', md);
	} else {
		fprintf(md, "%s.\n\n", w->nover.err);
	}
}

static void write_plot_data(const char *dir, const struct wlres *w)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/plot.dat", dir);
	f = fopen(path, "w");
	if (!f)
		die("%s: %s", path, strerror(errno));
	fprintf(f, "# %s: load dep indep hit_lat miss_lat hit_thr miss_thr batched zipf_hit_thr\n",
	        w->w->name);
	for (int i = 0; i < NLOADS; i++) {
		const struct lfres *r = &w->lf[i];

		fprintf(f, "%.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f\n", r->lf, r->lim.dep,
		        r->lim.indep, r->ns[HIT_LAT], r->ns[MISS_LAT], r->ns[HIT_THR],
		        r->ns[MISS_THR], r->ns[BATCHED], r->ns[ZHIT_THR]);
	}
	fclose(f);
}

static void report(const struct plan *pl, struct wlres *res, int nres)
{
	char path[512], host[256] = "?";
	time_t now = time(NULL);
	FILE *cpu = fopen("/proc/cpuinfo", "r");

	if (cpu) {
		char line[512];

		while (fgets(line, sizeof line, cpu))
			if (strncmp(line, "model name", 10) == 0) {
				char *c = strchr(line, ':');

				c = c ? c + 2 : line;
				c[strcspn(c, "\n")] = 0;
				if (strlen(c) >= sizeof host)
					c[sizeof host - 1] = 0;
				memcpy(host, c, strlen(c) + 1);
				break;
			}
		fclose(cpu);
	}
	snprintf(path, sizeof path, "%s/results.md", pl->outdir);
	md = fopen(path, "w");
	if (!md)
		die("%s: %s", path, strerror(errno));
	fprintf(md, "# shmkv benchmark (%s)\n\n", pl->quick ? "quick" : "full");
	fprintf(md, "shmkv %s; %s, %ld CPUs; %s", shmkv_version(), host,
	        sysconf(_SC_NPROCESSORS_ONLN), ctime(&now));
	fprintf(md, "\nMedian of %d repetitions; %llu throughput lookups and %llu latency "
	        "lookups per repetition (fewer for slow peers); %.0f s total.  ",
	        pl->reps, (unsigned long long)pl->nq, (unsigned long long)pl->lat_steps,
	        elapsed());
	fprintf(md, "**Answers checked: %llu, wrong: %llu.**\n\n",
	        (unsigned long long)total_checked, (unsigned long long)total_bad);
	fprintf(md, "Throughput mode: independent random keys, limit = independent random read. "
	        "Latency mode: each key comes from the value the previous lookup returned, "
	        "limit = dependent random read (pointer chase round one Sattolo cycle); miss "
	        "chains are serialised with lfence (the +lfence column shows its cost on the "
	        "chase).  Limits are measured over a buffer of the table's segment size with "
	        "the same page size, in the same loop as the lookups.  Times are the measuring "
	        "thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so time the shared machine gives "
	        "to other processes is not charged; Redis, whose work is in another process, "
	        "is timed on the wall clock, and so is shmkv in the loop beside it.\n\n");
	for (int i = 0; i < nres; i++)
		if (res[i].w->targets)
			report_targets(&res[i]);
	fprintf(md, "Targets met: %d, missed: %d.\n\n", targets_met, targets_missed);
	for (int i = 0; i < nres; i++) {
		fprintf(md, "## %s\n\n", res[i].w->name);
		report_loads(&res[i]);
		report_peers(&res[i]);
		report_memory(&res[i]);
		if (res[i].w->targets) {
			report_extras(&res[i]);
			write_plot_data(pl->outdir, &res[i]);
		}
	}
	fclose(md);
}

/* ---- Main --------------------------------------------------------------- */

static void plan_preset(struct plan *pl, int quick)
{
	static const struct workload full[] = {
		{ "1M entries, 8-byte keys, 8-byte values", 1u << 20, 8, 8, 0 },
		{ "16M entries, 8-byte keys, 8-byte values", 1u << 24, 8, 8, 1 },
		{ "4M entries, 16-byte keys, 64-byte values", 4u << 20, 16, 64, 0 },
	};
	static const struct workload small[] = {
		{ "quick: 256K entries, 8-byte keys, 8-byte values", 1u << 18, 8, 8, 1 },
		{ "quick: 64K entries, 16-byte keys, 64-byte values", 1u << 16, 16, 64, 0 },
	};

	pl->quick = quick;
	if (quick) {
		pl->reps = 3;
		pl->nq = 200000;
		pl->lat_steps = 50000;
		pl->upd_ops = 20000;
		pl->conc_secs = 0.1;
		pl->conc_reps = 3;
		pl->nworkloads = 2;
		memcpy(pl->wl, small, sizeof small);
	} else {
		pl->reps = 5;
		pl->nq = 2000000;
		pl->lat_steps = 200000;
		pl->upd_ops = 100000;
		pl->conc_secs = 0.5;
		pl->conc_reps = 5;
		pl->nworkloads = 3;
		memcpy(pl->wl, full, sizeof full);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: " PROG " [--quick|--full] [--out DIR] [--huge] [--redis PATH]\n"
	        "                   [--nover PATH] [--reps N] [--workload I]\n"
	        "       " PROG " --hugepages-needed\n"
	        "       " PROG " --profile hit_thr|hit_lat|miss_thr|miss_lat|batch|insert [--n N]\n"
	        "Measures shmkv against the machine's memory limits and against LMDB,\n"
	        "tinycdb, ck_ht (and Redis); writes DIR/results.md and DIR/plot.dat.\n"
	        "  --quick / --full      preset sizes (default --quick)\n"
	        "  --out DIR             where to write (default .)\n"
	        "  --huge                also measure HASHTABLE_HUGETLB (needs vm.nr_hugepages)\n"
	        "  --redis PATH          also measure Redis, starting PATH on a private socket\n"
	        "  --nover PATH          compare with PATH, this program linked with a library\n"
	        "                        built without version checks\n"
	        "  --reps N              repetitions per figure (median)\n"
	        "  --workload I          only the I-th workload of the preset (0-based)\n"
	        "  --hugepages-needed    print the 2 MiB pages --huge needs, and exit\n"
	        "Exit status: 0 all answers right, 1 wrong answers, 2 error.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "full", no_argument, NULL, 'f' },
		{ "out", required_argument, NULL, 'o' },
		{ "huge", no_argument, NULL, 'H' },
		{ "redis", required_argument, NULL, 'r' },
		{ "nover", required_argument, NULL, 'n' },
		{ "reps", required_argument, NULL, 'R' },
		{ "hugepages-needed", no_argument, NULL, 'N' },
		{ "workload", required_argument, NULL, 'w' },
		{ "probe", required_argument, NULL, 'p' },
		{ "profile", required_argument, NULL, 'P' },
		{ "n", required_argument, NULL, 1 },
		{ "ks", required_argument, NULL, 2 },
		{ "vs", required_argument, NULL, 3 },
		{ "nq", required_argument, NULL, 4 },
		{ "steps", required_argument, NULL, 5 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct plan pl;
	struct wlres *res;
	int c, quick = 1, huge = 0, reps = 0, need = 0, only = -1;
	const char *out = ".", *redis = NULL, *nover = NULL;
	long probe = -1;
	const char *profile = NULL;
	uint64_t pn = 0, pnq = 0, psteps = 0;
	uint32_t pks = 8, pvs = 8;

	while ((c = getopt_long(argc, argv, "qfo:Hr:n:R:Nh", opts, NULL)) != -1)
		switch (c) {
		case 'q': quick = 1; break;
		case 'f': quick = 0; break;
		case 'o': out = optarg; break;
		case 'H': huge = 1; break;
		case 'r': redis = optarg; break;
		case 'n': nover = optarg; break;
		case 'R': reps = atoi(optarg); break;
		case 'N': need = 1; break;
		case 'w': only = atoi(optarg); break;
		case 'p': probe = strtol(optarg, NULL, 0); break;
		case 'P': profile = optarg; break;
		case 1: pn = strtoull(optarg, NULL, 0); break;
		case 2: pks = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 3: pvs = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 4: pnq = strtoull(optarg, NULL, 0); break;
		case 5: psteps = strtoull(optarg, NULL, 0); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	if (probe >= 0)
		return probe_main((key_t)probe, pn, pks, pvs, pnq, psteps);
	if (profile)
		return profile_main(profile, pn ? pn : 4u << 20);
	memset(&pl, 0, sizeof pl);
	plan_preset(&pl, quick);
	if (need) { /* the table at the reference load, or the limit buffer */
		uint64_t most = 0;

		for (int i = 0; i < pl.nworkloads; i++)
			if (pl.wl[i].targets) {
				uint64_t s = hashtable_segment_size(pl.wl[i].n, LOADS[REF_LOAD],
				                                    pl.wl[i].ks, pl.wl[i].vs);
				most = s > most ? s : most;
			}
		printf("%llu\n", (unsigned long long)(most / HUGE_PAGE + 2));
		return 0;
	}
	if (reps > 0)
		pl.reps = reps < MAX_REPS ? reps : MAX_REPS;
	if (only >= 0 && only < pl.nworkloads) {
		pl.wl[0] = pl.wl[only];
		pl.nworkloads = 1;
	}
	pl.huge = huge;
	pl.redis = redis;
	pl.nover = nover;
	pl.outdir = out;
	install_cleanup();
	t_start = now_ns();
	res = calloc((size_t)pl.nworkloads, sizeof *res);
	if (!res)
		die("out of memory");
	for (int i = 0; i < pl.nworkloads; i++)
		run_workload(&pl, &pl.wl[i], &res[i]);
	report(&pl, res, pl.nworkloads);
	progress("done: %llu answers checked, %llu wrong; %d targets met, %d missed",
	         (unsigned long long)total_checked, (unsigned long long)total_bad,
	         targets_met, targets_missed);
	free(res);
	return total_bad ? 1 : 0;
}
