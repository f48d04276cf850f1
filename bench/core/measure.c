/* Measuring shmkv: the mode runner shared with the peers, one table at one
 * load factor (limits, every lookup mode, writes), and the batch sweep. */
#include "bench/measure.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

const size_t sweep_sizes[NSWEEP] = { 1, 2, 4, 8, 16, 32, 64, 128, 256 };

double run_mode(struct runner *r, const struct dataset *d, const struct plan *pl,
                int mode, uint64_t *bad, uint64_t *checked)
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

double run_batch(struct hashtable *h, const struct dataset *d, int dist, size_t b,
                 uint64_t *bad, uint64_t *checked)
{
	uint64_t m = d->nq / b * b;

	*checked += m;
	return (double)shm_batch(h, d, dist, b, bad) / (double)m;
}

void runner_init(struct runner *r, const struct kernels *k, void *ctx, int scale,
                 uint64_t seed)
{
	r->k = k;
	r->ctx = ctx;
	r->scale = scale;
	r->chain[0] = seed % 1000;
	r->chain[1] = 0;
	r->chain[2] = seed;
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

struct hashtable *build_table(const struct dataset *d, double lf, int flags,
                              double *create_ms, double *insert_ns, char *err,
                              size_t errlen)
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

void run_load(const struct plan *pl, const struct dataset *d, struct lfres *r,
              double lf, struct hashtable **keep)
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

void run_sweep(struct hashtable *h, const struct dataset *d, const struct plan *pl,
               double *out)
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
