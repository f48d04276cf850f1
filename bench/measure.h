/*
 * The measuring side of shmkv-bench (bench/core/): the machine's limits, the
 * shmkv engine, the measurement loops, the results they fill and the report
 * that prints them.  Peers are apart, behind bench/peer.h.
 */
#ifndef SHMKV_BENCH_MEASURE_H
#define SHMKV_BENCH_MEASURE_H

#include "bench/bench.h"
#include "bench/kernels.h"
#include "bench/peer.h"

#include <stdio.h>

/* ---- Machine limits (machine.c) ----------------------------------------- */

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
int membuf_init(struct membuf *b, size_t bytes, int huge, uint64_t nprobe,
                uint64_t seed);
void membuf_free(struct membuf *b);
/* ns per dependent read (with lfence after each if fence). */
double chase(struct membuf *b, uint64_t steps, int fence);
/* ns per independent read. */
double indep_read(const struct membuf *b);

/* How the way a line is read changes how many misses overlap: the
 * independent read with the loaded line scanned as a 4-slot bucket of
 * (8-byte key, 8-byte value) slots would be, by scalar compares (each one
 * an instruction waiting on the miss) or by SSE2 compares (baseline x86-64).
 * Shown beside the throughput-mode figures as evidence, not as a target. */
enum scan { SCAN_SCALAR, SCAN_SSE2, NSCANS };
extern const char *const scan_name[NSCANS];
double scan_read(const struct membuf *b, int how);

/* The three limits of mb, once each. */
void measure_limits_only(struct membuf *mb, const struct plan *pl,
                         double *dep, double *fence, double *ind);

/* ---- shmkv (engine.c) --------------------------------------------------- */

/* shmkv's lookup kernels: hashtable_search inlined into kernels.h's loops. */
extern const struct kernels shm_kernels;

/* Creates a table at a fresh key.  Returns 0, or the library's code. */
int table_create(const struct dataset *d, double lf, size_t cap, int flags,
                 struct hashtable **out);
/* Removes (by id) and detaches a table table_create made. */
void table_destroy(struct hashtable *h);
key_t table_key(struct hashtable *h);
/* Each returns the ns its loop took and counts wrong answers in *bad:
 * batched lookups of the queries, in batches of b; inserts of keys [lo, hi);
 * m overwrites with `variant`; deletes of keys [lo, hi). */
uint64_t shm_batch(struct hashtable *h, const struct dataset *d, int dist, size_t b,
                   uint64_t *bad);
uint64_t shm_fill(struct hashtable *h, const struct dataset *d, uint64_t lo,
                  uint64_t hi, uint64_t *bad);
uint64_t shm_updates(struct hashtable *h, const struct dataset *d, uint64_t m,
                     int variant, uint64_t *bad);
uint64_t shm_deletes(struct hashtable *h, const struct dataset *d, uint64_t lo,
                     uint64_t hi, uint64_t *bad);

/* ---- Results ------------------------------------------------------------ */

struct lfres {
	double lf;
	struct limits lim, lim_huge;
	struct hashtable_stats st;
	double create_ms, insert_ns;
	double ns[NMODES];
	double upd_ns, del_ns, reins_ns;
	int done;
};

struct peerres {
	const char *name, *label, *note, *bytes_note;
	double ns[NMODES], shm_ns[NMODES]; /* the peer, and shmkv in the same loop */
	double build_ns, bytes;
	int done;
	char err[160];
};

#define NSWEEP 9
extern const size_t sweep_sizes[NSWEEP];

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
	struct peerres peer[NPEERS];         /* in BENCH_PEERS order */
	double sweep[NSWEEP];
	struct concres conc;
	struct hugeres huge;
	struct noverres nover;
};

/* ---- Measuring (measure.c, run_peers.c, readers.c, extras.c) ------------ */

/* Runs the lookup modes of one engine, interleaved with another's so that
 * their ratio comes from the same time window. */
struct runner {
	const struct kernels *k;
	void *ctx;
	int scale;
	uint64_t chain[3]; /* latency chain states */
};

void runner_init(struct runner *r, const struct kernels *k, void *ctx, int scale,
                 uint64_t seed);
/* ns per lookup of one mode (not BATCHED: run_batch). */
double run_mode(struct runner *r, const struct dataset *d, const struct plan *pl,
                int mode, uint64_t *bad, uint64_t *checked);
double run_batch(struct hashtable *h, const struct dataset *d, int dist, size_t b,
                 uint64_t *bad, uint64_t *checked);
/* Creates and fills a table; returns it, or NULL with err set. */
struct hashtable *build_table(const struct dataset *d, double lf, int flags,
                              double *create_ms, double *insert_ns, char *err,
                              size_t errlen);
/* One load factor: build, limits, every lookup mode, writes.  Keeps the
 * table in *keep if keep is not NULL, else removes it. */
void run_load(const struct plan *pl, const struct dataset *d, struct lfres *r,
              double lf, struct hashtable **keep);
void run_sweep(struct hashtable *h, const struct dataset *d, const struct plan *pl,
               double *out);
/* Every peer of BENCH_PEERS against the table h. */
void run_peers(const struct plan *pl, const struct dataset *d, struct hashtable *h,
               struct wlres *w);
/* Reader and writer processes on h. */
void run_concurrency(const struct plan *pl, const struct dataset *d, struct hashtable *h,
                     struct concres *out);
/* Faults a fresh attachment's page tables in; returns wrong answers.  A
 * light data set learns the expected first words into learn[] (or NULL). */
uint64_t warm_up(struct hashtable *h, const struct dataset *d, uint64_t *q,
                 uint64_t *learn);
void run_huge(const struct plan *pl, const struct dataset *d, struct hashtable *h4k,
              double insert4k, struct hugeres *out);
void run_nover(const struct plan *pl, const struct dataset *d, struct hashtable *h,
               struct noverres *out);
void run_scan(const struct plan *pl, const struct dataset *d, struct wlres *res);
/* --probe and --profile: the entry points of the program's helper modes. */
int probe_main(key_t key, uint64_t n, uint32_t ks, uint32_t vs, uint64_t nq,
               uint64_t steps);
int profile_main(const char *op, uint64_t n);

/* Shapes against the original algorithm (shapes.c): every shape of its
 * list (or the only-th) at 4M entries (64K quick); report_shapes writes
 * their section. */
void run_shapes(const struct plan *pl, int only); /* only: -1 for all */
void report_shapes(FILE *md);

/* ---- Report (report.c) -------------------------------------------------- */

extern int targets_met, targets_missed;
/* Writes pl->outdir/results.md and, for the targets' workload, plot.dat. */
void report(const struct plan *pl, struct wlres *res, int nres);

#endif
