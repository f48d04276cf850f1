/*
 * shmkv-bench's common ground: what every part of the benchmark (the shmkv
 * engine, each peer, the machine limits, the report) shares.
 *
 *   cleanup   everything made here that must not outlive the run (segments,
 *             child processes, files) is registered, and removed by id, pid
 *             or name on every exit path, signals included;
 *   time      the measuring clock (tick) and the wall clock (now_ns);
 *   data      the keys, values and queries of one workload, and the checks
 *             that tell a whole value of the right key from anything else;
 *   plan      the sizes and options of a run;
 *   modes     the lookup modes every engine is measured in.
 *
 * The helpers a lookup loop calls per key are inline here: they ran inline
 * when the benchmark was one file, and the figures must not change because
 * it is several.
 */
#ifndef SHMKV_BENCH_H
#define SHMKV_BENCH_H

#include "hashtable.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#define PROG "shmkv-bench"
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define MAX_REPS 15
#define MAX_VALUE 1024       /* widest value a workload may use */
#define MAX_KEY 64           /* widest key a workload may use */
#define ZLUT_BITS 16         /* Zipf ranks for latency chains: 256 KiB, in L2 */
#define ZIPF_THETA 0.99
#define BATCH 128            /* keys per hashtable_search_batch call: the sweep's
                                best region (64-256) starts at 64, and 128 keys
                                fill four of the library's 32-key groups, so
                                the first group's misses are a quarter of them */
#define TAG_FLIP 0xa5a5a5a5u
#define PAD_FLIP 0xa5a5a5a5a5a5a5a5ull
#define HUGE_PAGE (2u << 20)

extern const double LOADS[];
#define NLOADS 4
#define REF_LOAD 1 /* index of 0.8: targets, peers, extras */

/* ---- Failure and cleanup (common.c) ------------------------------------- */

/* The benchmark's own pid: children never clean up the parent's things. */
extern pid_t main_pid;

void block_signals(sigset_t *old);
/* Register (add = 1) or forget (add = 0) a segment id, a child, a file or
 * directory: each is removed at exit or on SIGINT/SIGTERM/SIGHUP. */
void reg_seg(int shmid, int add);
void reg_kid(pid_t pid, int add);
void reg_file(const char *path, int add);
void install_cleanup(void);
/* Prints "shmkv-bench: ..." and exits with 2. */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* malloc or die. */
void *xmalloc(size_t n);

/* ---- Time, random numbers, statistics (common.c) ------------------------ */

uint64_t now_ns(void);

/* The clock of the measurements: this thread's CPU time, so that time the
 * shared machine gives to other processes is not charged to us (a long loop
 * is descheduled more often than a short one, which would skew ratios).
 * A peer whose work runs in another process is timed on the wall clock. */
extern clockid_t bench_clock;

static inline uint64_t tick(void)
{
	struct timespec t;

	clock_gettime(bench_clock, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

extern uint64_t t_start; /* now_ns() when the run began */
double elapsed(void);    /* seconds since t_start */
/* "[  12.3s] ..." on stderr. */
void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

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

/* The median of n <= MAX_REPS figures; NAN for none. */
double median(const double *v, int n);

ALWAYS_INLINE void serialise(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("lfence" ::: "memory");
#else
	atomic_thread_fence(memory_order_seq_cst);
#endif
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

/* Key i of a width below 8 bytes (4 to 7): a bijection of i on 32 bits
 * (murmur3's finaliser of an odd multiple), so keys i < 2^32 never collide,
 * then zero bytes. */
ALWAYS_INLINE void key_of_narrow(uint32_t ks, uint64_t i, unsigned char *out)
{
	uint32_t x = (uint32_t)(i + 1) * 0x9e3779b1u;

	x ^= x >> 16;
	x *= 0x85ebca6bu;
	x ^= x >> 13;
	x *= 0xc2b2ae35u;
	x ^= x >> 16;
	memcpy(out, &x, 4);
	memset(out + 4, 0, ks - 4);
}

ALWAYS_INLINE void key_of(uint32_t ks, uint64_t i, unsigned char *out)
{
	uint64_t w = key_word(i);

	if (ks < 8) {
		key_of_narrow(ks, i, out);
		return;
	}

	memcpy(out, &w, 8);
	for (uint32_t off = 8; off < ks; off += 8) {
		w = mix64(i ^ ((uint64_t)off << 56));
		memcpy(out + off, &w, ks - off < 8 ? ks - off : 8);
	}
}

/* Key i's value in one of two variants (a writer flips between them). */
static inline void value_of(const struct dataset *d, uint64_t i, int variant,
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

/* light: uniform queries only, no cycle (for a process that only reads a
 * table another one built: the values carry the cycle). */
void dataset_init(struct dataset *d, uint64_t n, uint32_t ks, uint32_t vs,
                  uint64_t nq, uint64_t seed, int light);
void dataset_free(struct dataset *d);
/* Dies if a key in [lo, hi) equals a sentinel (all 0x00 or all 0xFF). */
void check_not_sentinel(uint64_t lo, uint64_t hi);

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

/* ---- Lookup modes and the answer count ---------------------------------- */

enum mode {
	HIT_LAT, MISS_LAT, HIT_THR, MISS_THR, BATCHED, ZHIT_LAT, ZHIT_THR,
	ZBATCHED, NMODES
};
extern const char *const mode_name[NMODES];

/* Every answer checked and every wrong one, over the whole run. */
extern uint64_t total_bad, total_checked;
/* Adds *bad wrong answers out of `checked` to the totals (reporting them
 * under `what`) and zeroes *bad. */
void account(uint64_t *bad, uint64_t checked, const char *what);

#endif
