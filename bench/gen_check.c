/* gen_check: what the generation check costs a throughput-mode hit.
 *
 *   gen_check fill IPC_KEY N
 *       creates a table of N 8-byte keys and values at load 0.8 under
 *       IPC_KEY (through the builder) and leaves it there.
 *   gen_check probe IPC_KEY N [REPS]
 *       attaches it read-only and times throughput-mode hits: independent
 *       random present keys from a precomputed array, each answer compared
 *       with the expected value, on the thread's CPU clock.  Prints
 *       "ns_per_hit X bad B" (X the median of REPS passes, default 5).
 *
 * bench/gen_check.sh runs this program and the same source linked with a
 * library built with -DSHMKV_BENCH_NO_GENERATION_CHECK (readers that skip
 * the per-call check of the current generation) on the same table, in turn. */
#include "hashtable.h"
#include "bench/splitmix.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Key i: never 0 or all ones (the sentinels) for the sizes used here. */
static uint64_t key_of(uint64_t i) { return mix(i) | 1; }

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fill(key_t key, uint64_t n)
{
	struct hashtable_config cfg = {.ipc_key = key, .entries = n, .max_load = 0.8,
	                               .key_size = 8, .value_size = 8, .flags = HASHTABLE_EXCL};
	struct hashtable *h;
	struct hashtable_builder *b;
	int rc = hashtable_create_config(&cfg, &h);
	if (rc == 0 && (rc = hashtable_replace_begin(h, NULL, &b)) == 0) {
		for (uint64_t i = 0; i < n && rc >= 0; i++) {
			uint64_t k = key_of(i), v = i;
			rc = hashtable_builder_put(b, &k, &v);
		}
		if (rc < 0)
			hashtable_replace_abort(b);
		else
			rc = hashtable_replace_commit(b);
	}
	if (rc < 0) {
		fprintf(stderr, "gen_check fill: %s %s\n", hashtable_strerror(rc), hashtable_last_error());
		return 1;
	}
	hashtable_close(h);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int probe(key_t key, uint64_t n, int reps)
{
	struct hashtable *h = hashtable_open_key(key, HASHTABLE_RDONLY);
	if (!h) {
		fprintf(stderr, "gen_check probe: %s\n", hashtable_last_error());
		return 1;
	}
	enum { NQ = 1 << 22 };
	uint64_t *q = malloc(NQ * sizeof *q), *want = malloc(NQ * sizeof *want), s = 1;
	double ns[32];
	if (!q || !want || reps < 1 || reps > 32)
		return 1;
	for (size_t i = 0; i < NQ; i++) {
		s = mix(s);
		want[i] = s % n;
		q[i] = key_of(want[i]);
	}
	uint64_t bad = 0;
	for (int r = -1; r < reps; r++) { /* pass -1 warms the caches and page tables */
		double t0 = cpu_now();
		for (size_t i = 0; i < NQ; i++) {
			uint64_t v;
			bad += hashtable_search(h, &q[i], &v) != 0 || v != want[i];
		}
		if (r >= 0)
			ns[r] = (cpu_now() - t0) * 1e9 / NQ;
	}
	qsort(ns, (size_t)reps, sizeof ns[0], cmp_double);
	printf("ns_per_hit %.2f bad %" PRIu64 "\n", ns[reps / 2], bad);
	hashtable_close(h);
	free(q);
	free(want);
	return bad != 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "fill") == 0)
		return fill((key_t)strtoul(argv[2], NULL, 0), strtoull(argv[3], NULL, 0));
	if ((argc == 4 || argc == 5) && strcmp(argv[1], "probe") == 0)
		return probe((key_t)strtoul(argv[2], NULL, 0), strtoull(argv[3], NULL, 0),
		             argc == 5 ? atoi(argv[4]) : 5);
	fprintf(stderr, "usage: gen_check fill IPC_KEY N\n"
	                "       gen_check probe IPC_KEY N [REPS]\n");
	return 2;
}
