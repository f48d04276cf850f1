/* shmkv-bench's common ground: cleanup, failure, clocks, statistics, the data
 * set and the answer count.  Declared, with what each does, in bench.h. */
#include "bench/bench.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

const double LOADS[NLOADS] = { 0.5, 0.8, 0.9, 0.95 };

const char *const mode_name[NMODES] = {
	"hit, latency", "miss, latency", "hit, throughput", "miss, throughput",
	"batched hit", "Zipf hit, latency", "Zipf hit, throughput", "Zipf batched hit"
};

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
pid_t main_pid;

void block_signals(sigset_t *old)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGHUP);
	sigprocmask(SIG_BLOCK, &s, old);
}

void reg_seg(int shmid, int add)
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

void reg_kid(pid_t pid, int add)
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

void reg_file(const char *path, int add)
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

void install_cleanup(void)
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

void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

/* ---- Time, random numbers, statistics ---------------------------------- */

uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

clockid_t bench_clock = CLOCK_THREAD_CPUTIME_ID;
uint64_t t_start;

double elapsed(void)
{
	return (double)(now_ns() - t_start) / 1e9;
}

void progress(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[%6.1fs] ", elapsed());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
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

double median(const double *v, int n)
{
	double t[MAX_REPS];

	if (n <= 0)
		return NAN;
	memcpy(t, v, sizeof(double) * (size_t)n);
	qsort(t, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
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

void dataset_init(struct dataset *d, uint64_t n, uint32_t ks,
                  uint32_t vs, uint64_t nq, uint64_t seed, int light)
{
	struct rng r = { seed };
	struct zipf z;

	if (ks < 4 || ks > MAX_KEY || vs < 8 || vs > MAX_VALUE || vs % 8 ||
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

void dataset_free(struct dataset *d)
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
void check_not_sentinel(uint64_t lo, uint64_t hi)
{
	for (uint64_t i = lo; i < hi; i++) {
		uint64_t w = key_word(i);

		if (w == 0 || w == ~0ull)
			die("key %llu equals a sentinel; change the seed",
			    (unsigned long long)i);
	}
}

/* ---- The answer count -------------------------------------------------- */

uint64_t total_bad, total_checked;

void account(uint64_t *bad, uint64_t checked, const char *what)
{
	if (*bad)
		fprintf(stderr, PROG ": %llu wrong answers in %s\n",
		        (unsigned long long)*bad, what);
	total_bad += *bad;
	total_checked += checked;
	*bad = 0;
}
