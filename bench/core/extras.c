/* The reference table's extras: huge pages against 4 KiB pages, the cost of
 * the version checks (against a build without them, in --probe processes),
 * how scanning a line changes the independent read; and the program's
 * helper modes --probe and --profile. */
#include "bench/measure.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* HASHTABLE_HUGETLB against the 4 KiB table, measured alternately. */
void run_huge(const struct plan *pl, const struct dataset *d, struct hashtable *h4k,
              double insert4k, struct hugeres *out)
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
void run_nover(const struct plan *pl, const struct dataset *d, struct hashtable *h,
               struct noverres *out)
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
int probe_main(key_t key, uint64_t n, uint32_t ks, uint32_t vs, uint64_t nq,
               uint64_t steps)
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
int profile_main(const char *op, uint64_t n)
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
void run_scan(const struct plan *pl, const struct dataset *d, struct wlres *res)
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
