/* write_bench: the write targets of issue 11 (target 3), measured side by
 * side in one run, interleaved rounds, best of the rounds.
 *
 *   write_bench [N [ROUNDS]]      (defaults 16777216 and 3)
 *
 * Each round, with the same N distinct 8-byte keys and 8-byte values:
 *   classic   the original MemKeyValue algorithm's insert, as
 *             bench/peers/memkv.c reconstructs it (the same yardstick as the
 *             peers' table and the shapes section): packed [key][value]
 *             slots, no buckets, double hashing, key 0 empty, no lock,
 *             journal or seqlock; slots for N keys at load 0.8, in a SysV
 *             segment like shmkv's;
 *   update    hashtable_update() of each key into an empty table sized for N
 *             at load 0.8;
 *   batch     hashtable_update_batch(), 256 records a call, likewise;
 *   delete    at loads 0.5, 0.8, 0.9 and 0.95 (a table of N/4 entries
 *             created at that load limit and filled to it): M keys deleted,
 *             then the same M inserted back, each by single calls; the
 *             insert is the one at that load.
 * Times are this thread's CPU time (the machine is shared).
 * Prints a markdown table of the targets with their verdicts (met/missed).
 * Segments: keys 0x5bPPPPNN (PPPP from the pid; run.sh checks that none
 * stays behind); the classic table's segment is IPC_PRIVATE and removed
 * when its round ends, or on exit or a signal (install_cleanup). */
#include "hashtable.h"
#include "bench/splitmix.h"
#include "bench/memkv.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256
#define DELETES 200000

/* CPU time of this thread: the machine is shared, and wall time counts the
 * time others run; page faults and system calls are still counted. */
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static key_t next_key(void)
{
	static unsigned n;
	return (key_t)(0x5b000000u | ((unsigned)getpid() & 0xffffu) << 8 | (n++ & 0xffu));
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "write_bench: %s: %s %s\n", what, hashtable_strerror(rc),
	        hashtable_last_error());
	exit(1);
}

/* ---- the classic algorithm ------------------------------------------------ */

/* void install_cleanup(void), from bench/core/common.c: not bench.h, whose
 * die() is not this program's. */
void install_cleanup(void);

static double classic_insert(const uint64_t *keys, const uint64_t *values, uint64_t n)
{
	char err[160];
	struct memkv *m = memkv_new(n, 0.8, 8, 8, err, sizeof err);
	if (!m) {
		fprintf(stderr, "write_bench: the classic table: %s\n", err);
		exit(1);
	}
	double t0 = now();
	for (uint64_t i = 0; i < n; i++)
		if (memkv_put(m, &keys[i], &values[i]) != 0) {
			fprintf(stderr, "write_bench: the classic table is full\n");
			exit(1);
		}
	double el = now() - t0;
	memkv_free(m);
	return el / (double)n * 1e9;
}

/* ---- shmkv ------------------------------------------------------------------ */

static struct hashtable *table(uint64_t entries, double load)
{
	struct hashtable_config cfg = {0};
	cfg.ipc_key = next_key();
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = entries;
	cfg.max_load = load;
	cfg.flags = HASHTABLE_EXCL;
	struct hashtable *h;
	int rc = hashtable_create_config(&cfg, &h);
	if (rc < 0)
		die("create", rc);
	return h;
}

static void drop(struct hashtable *h)
{
	hashtable_unlink(h);
	hashtable_close(h);
}

static double update_loop(const uint64_t *keys, const uint64_t *values, uint64_t n)
{
	struct hashtable *h = table(n, 0.8);
	double t0 = now();
	for (uint64_t i = 0; i < n; i++) {
		int rc = hashtable_update(h, (void *)&keys[i], (void *)&values[i]);
		if (rc != 0)
			die("update", rc);
	}
	double el = now() - t0;
	drop(h);
	return el / (double)n * 1e9;
}

static double update_batches(const uint64_t *keys, const uint64_t *values, uint64_t n)
{
	struct hashtable *h = table(n, 0.8);
	double t0 = now();
	for (uint64_t i = 0; i < n; i += BATCH) {
		size_t m = n - i < BATCH ? (size_t)(n - i) : BATCH;
		long rc = hashtable_update_batch(h, m, keys + i, values + i, NULL);
		if (rc != (long)m)
			die("update_batch", (int)rc);
	}
	double el = now() - t0;
	drop(h);
	return el / (double)n * 1e9;
}

/* A table of `entries` at load limit `load`, filled to it; DELETES of its
 * keys deleted then inserted back.  ns per delete and per insert. */
static void delete_insert(const uint64_t *keys, const uint64_t *values, uint64_t entries,
                          double load, double *del_ns, double *ins_ns, double *probes)
{
	struct hashtable *h = table(entries, load);
	struct hashtable_stats st;
	hashtable_stats(h, &st);
	uint64_t fill = st.max_count;
	for (uint64_t i = 0; i < fill; i += BATCH) {
		size_t m = fill - i < BATCH ? (size_t)(fill - i) : BATCH;
		long rc = hashtable_update_batch(h, m, keys + i, values + i, NULL);
		if (rc != (long)m)
			die("fill", (int)rc);
	}
	uint64_t m = DELETES < fill / 4 ? DELETES : fill / 4;
	uint64_t stride = fill / m; /* spread over the fill order */
	double t0 = now();
	for (uint64_t i = 0; i < m; i++)
		if (hashtable_delete(h, &keys[i * stride]) != 0)
			die("delete", -ENOENT);
	double t1 = now();
	for (uint64_t i = 0; i < m; i++)
		if (hashtable_update(h, (void *)&keys[i * stride], (void *)&values[i * stride]) != 0)
			die("reinsert", -EEXIST);
	double t2 = now();
	hashtable_stats(h, &st);
	*probes = st.hit_probes;
	*del_ns = (t1 - t0) / (double)m * 1e9;
	*ins_ns = (t2 - t1) / (double)m * 1e9;
	drop(h);
}

static const char *verdict(double ratio, int at_most, double goal)
{
	return (at_most ? ratio <= goal : ratio >= goal) ? "met" : "**missed**";
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 16777216;
	int rounds = argc > 2 ? atoi(argv[2]) : 3;
	if (n < 1000 || rounds < 1) {
		fprintf(stderr, "usage: write_bench [N >= 1000 [ROUNDS >= 1]]\n");
		return 2;
	}
	install_cleanup();
	uint64_t *keys = malloc(n * 8), *values = malloc(n * 8);
	if (!keys || !values)
		return 1;
	for (uint64_t i = 0, j = 0; i < n; j++) {
		uint64_t k = mix(j);
		if (k == 0 || k == UINT64_MAX)
			continue;
		keys[i] = k;
		values[i++] = j;
	}
	static const double loads[] = {0.5, 0.8, 0.9, 0.95};
	enum { NL = sizeof loads / sizeof loads[0] };
	double best_classic = INFINITY, best_update = INFINITY, best_batch = INFINITY;
	double best_del[NL], best_ins[NL], probes[NL];
	for (int l = 0; l < NL; l++)
		best_del[l] = best_ins[l] = INFINITY;
	for (int r = 0; r < rounds; r++) {
		double c = classic_insert(keys, values, n);
		double u = update_loop(keys, values, n);
		double b = update_batches(keys, values, n);
		fprintf(stderr, "round %d: classic %.1f ns, update %.1f ns, batch %.1f ns a key", r + 1,
		        c, u, b);
		best_classic = fmin(best_classic, c);
		best_update = fmin(best_update, u);
		best_batch = fmin(best_batch, b);
		for (int l = 0; l < NL; l++) {
			double d, i;
			delete_insert(keys, values, n / 4, loads[l], &d, &i, &probes[l]);
			fprintf(stderr, "; @%.2f delete %.0f insert %.0f", loads[l], d, i);
			best_del[l] = fmin(best_del[l], d);
			best_ins[l] = fmin(best_ins[l], i);
		}
		fprintf(stderr, "\n");
	}
	printf("## Write targets (issue 11 target 3)\n\n");
	printf("%" PRIu64 " distinct 8-byte keys and values; best of %d interleaved rounds; ns per "
	       "key.  Deletes: tables of %" PRIu64 " entries at each load limit, %d deletes then "
	       "the same keys inserted back.\n\n", n, rounds, n / 4, DELETES);
	printf("| target | measured | against | ratio | goal | verdict |\n|---|---|---|---|---|---|\n");
	double r1 = best_update / best_classic, r2 = best_update / best_batch;
	printf("| hashtable_update (new keys) vs the classic algorithm's insert | %.1f | %.1f | "
	       "%.2fx | ≤ 0.80x | %s |\n", best_update, best_classic, r1, verdict(r1, 1, 0.8));
	printf("| single updates / hashtable_update_batch (per key, %d a call) | %.1f | %.1f | "
	       "%.2fx | ≥ 2.00x | %s |\n", BATCH, best_update, best_batch, r2, verdict(r2, 0, 2.0));
	for (int l = 0; l < NL; l++) {
		double r = best_del[l] / best_ins[l];
		printf("| delete vs insert @%.2f (hit probes after %.3f) | %.0f | %.0f | %.2fx | ≤ "
		       "2.00x | %s |\n", loads[l], probes[l], best_del[l], best_ins[l], r,
		       verdict(r, 1, 2.0));
	}
	printf("\n");
	free(keys);
	free(values);
	return 0;
}
