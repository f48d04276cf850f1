/* Shapes: shmkv against the original MemKeyValue algorithm (bench/peers/
 * memkv.c) for several key and value widths, at one size and load 0.8
 * (issue 11, target 4).  Per shape, side by side in one run:
 *
 *   shmkv               the table as hashtable_create_config makes it (split
 *                       slots where the widths call for them: "WIDE SLOTS"
 *                       in hashtable.c);
 *   shmkv interleaved   for split shapes, the same table forced to the old
 *                       layout (SHMKV_BENCH_SLOTS=interleaved at creation);
 *   memkv               the original algorithm.
 *
 * Inserts: the engines' tables are filled in eight interleaved chunks (a
 * chunk of each in turn), so a slow patch of the shared machine falls on
 * all of them.  Hits: both lookup modes, the engines interleaved in every
 * repetition, and shmkv's batched lookups (hashtable_search_batch, BATCH
 * keys a call); medians.  Lines per hit are computed from the probe figures
 * and the layout (see lines_*). */
#include "bench/measure.h"
#include "bench/memkv.h"

#include <math.h>
#include <stdlib.h>

struct shape {
	const char *name;
	uint32_t ks, vs;
	int target; /* issue 11's wide shape: 2x faster hits, 1.3 key lines */
};

static const struct shape shapes[] = {
	{ "8-byte keys, 8-byte values", 8, 8, 0 },
	{ "4-byte keys, 8-byte values", 4, 8, 0 },
	{ "8-byte keys, 32-byte values", 8, 32, 0 },
	{ "24-byte keys, 40-byte values (text tables as shmkv-load makes them)", 24, 40, 0 },
	{ "16-byte keys, 64-byte values", 16, 64, 1 },
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

enum engine { E_SHMKV, E_INTERLEAVED, E_MEMKV, NENGINES };
static const char *const engine_name[NENGINES] = { "shmkv", "shmkv, interleaved slots",
	                                           "MemKeyValue (original algorithm)" };

struct shaperes {
	int done[NENGINES];
	double hit_thr[NENGINES], hit_lat[NENGINES], insert[NENGINES];
	double batch[NENGINES]; /* ns a key; memkv has no batched lookup */
	double key_lines[NENGINES], lines[NENGINES]; /* per hit */
	double bytes[NENGINES];                      /* per entry */
	double dep, indep; /* the target shape: reads over a buffer of its size, ns */
	int split;
};

static struct shaperes results[NSHAPES];
static uint64_t shapes_n;
static int shapes_run, shapes_reps;

/* ---- lines per hit, from the layout ----------------------------------- */

static uint32_t align_of(uint32_t w)
{
	return w % 8 == 0 ? 8 : w % 4 == 0 ? 4 : w % 2 == 0 ? 2 : 1;
}

static uint64_t up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* Lines that bytes [off, off + len) touch. */
static double lines_of(uint64_t off, uint64_t len)
{
	return len ? (double)((off + len - 1) / 64 - off / 64 + 1) : 0;
}

/* The interleaved slot's size and slots per bucket (hashtable.c's rule). */
static void interleaved(uint32_t ks, uint32_t vs, uint32_t *slot, uint32_t *spb)
{
	uint32_t ka = align_of(ks), va = align_of(vs);
	uint64_t vo = up(ks, va);

	*slot = (uint32_t)up(vo + vs, ka > va ? ka : va);
	*spb = *slot >= 64 ? 1 : 64 / *slot;
}

/* Average lines a probed bucket of `bytes` touches, buckets laid end to end
 * from a line boundary. */
static double lines_per_bucket(uint64_t bytes)
{
	double sum = 0;

	for (uint64_t b = 0; b < 64; b++)
		sum += lines_of(b * bytes, bytes);
	return sum / 64;
}

/* shmkv: hit_probes buckets; a split bucket's keys are its first line, and
 * the hit's value lines beyond it (slots equally likely); an interleaved
 * bucket is read whole. */
static void lines_shmkv(const struct hashtable_stats *st, uint32_t ks, uint32_t vs,
                        double *key_lines, double *lines, int *split)
{
	uint32_t slot, spb;

	interleaved(ks, vs, &slot, &spb);
	*split = st->slots_per_bucket != spb;
	if (!*split) {
		*key_lines = st->hit_probes * lines_per_bucket((uint64_t)slot * spb);
		*lines = *key_lines;
		return;
	}
	uint64_t kstride = up(ks, align_of(ks)), va = align_of(vs);
	uint64_t vo = up(st->slots_per_bucket * kstride, va), vstride = up(vs, va);
	double extra = 0;

	for (uint32_t i = 0; i < st->slots_per_bucket; i++) {
		uint64_t off = vo + i * vstride, first = off / 64, last = (off + vs - 1) / 64;

		extra += (double)(last - first + 1) - (first == 0 ? 1 : 0);
	}
	*key_lines = st->hit_probes;
	*lines = st->hit_probes + extra / st->slots_per_bucket;
}

/* memkv: probes slots of ks + vs bytes, packed from a line boundary. */
static double lines_memkv(double probes, uint32_t ks, uint32_t vs)
{
	return probes * lines_per_bucket((uint64_t)ks + vs);
}

/* ---- one shape ------------------------------------------------------------ */

static void no_sentinel_keys(const struct dataset *d)
{
	unsigned char k[MAX_KEY], zero[MAX_KEY] = { 0 }, ones[MAX_KEY];

	memset(ones, 0xff, sizeof ones);
	for (uint64_t i = 0; i < d->n + d->nq; i++) {
		key_of(d->ks, i, k);
		if (!memcmp(k, zero, d->ks) || !memcmp(k, ones, d->ks))
			die("%u-byte key %llu equals a sentinel; change the seed", d->ks,
			    (unsigned long long)i);
	}
}

static struct hashtable *shape_table(const struct dataset *d, int force_interleaved)
{
	struct hashtable *h;
	size_t cap;
	int rc;

	if (force_interleaved)
		setenv("SHMKV_BENCH_SLOTS", "interleaved", 1);
	cap = hashtable_segment_size(d->n, LOADS[REF_LOAD], d->ks, d->vs);
	rc = table_create(d, LOADS[REF_LOAD], cap, 0, &h);
	unsetenv("SHMKV_BENCH_SLOTS");
	if (rc)
		die("shapes: %u/%u table: %s", d->ks, d->vs, hashtable_strerror(rc));
	return h;
}

static void run_shape(const struct plan *pl, const struct shape *s, struct shaperes *r)
{
	struct dataset d;
	struct hashtable *h[2] = { NULL, NULL };
	struct memkv *m;
	struct hashtable_stats st;
	struct runner run[NENGINES];
	double thr[NENGINES][MAX_REPS], lat[NENGINES][MAX_REPS], bat[NENGINES][MAX_REPS];
	double dep[MAX_REPS], ind[MAX_REPS];
	struct membuf mb;
	int have_mb = 0;
	uint64_t ins[NENGINES] = { 0 }, bad = 0, checked = 0;
	char err[160];
	int split, nchunks = 8;

	progress("shapes: %s, %llu entries", s->name, (unsigned long long)shapes_n);
	dataset_init(&d, shapes_n, s->ks, s->vs, pl->nq < shapes_n * 2 ? pl->nq : shapes_n * 2,
	             0x5a9e0000 + s->ks * 1000 + s->vs, 0);
	no_sentinel_keys(&d);
	h[0] = shape_table(&d, 0);
	hashtable_stats(h[0], &st);
	{
		uint32_t slot, spb;

		interleaved(s->ks, s->vs, &slot, &spb);
		split = st.slots_per_bucket != spb;
	}
	if (split)
		h[1] = shape_table(&d, 1);
	m = memkv_new(d.n, LOADS[REF_LOAD], d.ks, d.vs, err, sizeof err);
	if (!m)
		die("shapes: memkv: %s", err);
	for (int c = 0; c < nchunks; c++) {
		uint64_t lo = d.n * (uint64_t)c / (uint64_t)nchunks;
		uint64_t hi = d.n * (uint64_t)(c + 1) / (uint64_t)nchunks;

		ins[E_SHMKV] += shm_fill(h[0], &d, lo, hi, &bad);
		if (h[1])
			ins[E_INTERLEAVED] += shm_fill(h[1], &d, lo, hi, &bad);
		ins[E_MEMKV] += memkv_fill(m, &d, lo, hi, &bad);
	}
	account(&bad, d.n * (h[1] ? 3 : 2), "shapes: inserts");
	/* the target shape's yardsticks: how many dependent and independent
	 * reads of a buffer the table's size a hit costs, for either engine */
	if (s->target && membuf_init(&mb, (size_t)st.segment_bytes, 0, pl->nq, 4242) == 0)
		have_mb = 1;
	runner_init(&run[E_SHMKV], &shm_kernels, h[0], 1, 77);
	runner_init(&run[E_INTERLEAVED], &shm_kernels, h[1], 1, 77);
	runner_init(&run[E_MEMKV], memkv_kernels_of(), m, 1, 77);
	for (int rep = 0; rep < pl->reps; rep++) {
		if (have_mb) {
			dep[rep] = chase(&mb, pl->lat_steps, 0);
			ind[rep] = indep_read(&mb);
		}
		for (int e = 0; e < NENGINES; e++) {
			if (e == E_INTERLEAVED && !h[1])
				continue;
			thr[e][rep] = run_mode(&run[e], &d, pl, HIT_THR, &bad, &checked);
			lat[e][rep] = run_mode(&run[e], &d, pl, HIT_LAT, &bad, &checked);
			if (e != E_MEMKV)
				bat[e][rep] = run_batch(h[e], &d, UNIFORM, BATCH, &bad, &checked);
		}
	}
	account(&bad, checked, "shapes: hits");
	memset(r, 0, sizeof *r);
	r->split = split;
	r->dep = r->indep = NAN;
	if (have_mb) {
		r->dep = median(dep, pl->reps);
		r->indep = median(ind, pl->reps);
		membuf_free(&mb);
	}
	for (int e = 0; e < NENGINES; e++) {
		if (e == E_INTERLEAVED && !h[1])
			continue;
		r->done[e] = 1;
		r->hit_thr[e] = median(thr[e], pl->reps);
		r->hit_lat[e] = median(lat[e], pl->reps);
		r->batch[e] = e != E_MEMKV ? median(bat[e], pl->reps) : NAN;
		r->insert[e] = (double)ins[e] / (double)d.n;
	}
	for (int e = 0; e < 2; e++) {
		int sp;

		if (!h[e])
			continue;
		hashtable_stats(h[e], &st);
		lines_shmkv(&st, s->ks, s->vs, &r->key_lines[e], &r->lines[e], &sp);
		r->bytes[e] = (double)st.segment_bytes / (double)d.n;
		table_destroy(h[e]);
	}
	r->key_lines[E_MEMKV] = r->lines[E_MEMKV] = lines_memkv(memkv_hit_probes(m), s->ks, s->vs);
	r->bytes[E_MEMKV] = memkv_bytes(m) / (double)d.n;
	memkv_free(m);
	progress("  hit %.1f / %.1f ns (memkv %.1f / %.1f), batch %.1f ns a key, insert %.0f ns (memkv %.0f), "
	         "%.2f key lines, %.2f lines a hit",
	         r->hit_thr[E_SHMKV], r->hit_lat[E_SHMKV], r->hit_thr[E_MEMKV],
	         r->hit_lat[E_MEMKV], r->batch[E_SHMKV], r->insert[E_SHMKV], r->insert[E_MEMKV],
	         r->key_lines[E_SHMKV], r->lines[E_SHMKV]);
	dataset_free(&d);
}

void run_shapes(const struct plan *pl, int only)
{
	shapes_n = pl->quick ? 1u << 16 : 4u << 20;
	for (size_t i = 0; i < NSHAPES; i++)
		if (only < 0 || (size_t)only == i)
			run_shape(pl, &shapes[i], &results[i]);
	shapes_run = 1;
	shapes_reps = pl->reps;
}

/* ---- the report ------------------------------------------------------------ */

/* A verdict cell, counted in the run's targets. */
static const char *verdict(double r, double goal)
{
	if (isnan(r))
		return "not measured";
	if (r <= goal) {
		targets_met++;
		return "met";
	}
	targets_missed++;
	return "**missed**";
}

void report_shapes(FILE *md)
{
	if (!shapes_run)
		return;
	fprintf(md, "## Shapes against the original algorithm\n\n");
	fprintf(md, "%llu entries at load 0.80 each; MemKeyValue is bench/peers/memkv.c, a "
	        "reconstruction of the original algorithm (packed slots, double hashing, no "
	        "synchronisation).  Inserts: ns per new key, the tables filled in interleaved "
	        "chunks.  Hits: throughput / latency mode, medians of %d interleaved "
	        "repetitions; batch: hashtable_search_batch, %d keys a call, ns a key.  Lines per hit: key lines are the lines searched for the key "
	        "(buckets read by an average hit, from hashtable_stats, times the lines a "
	        "bucket's keys take); all lines add the value's own lines where it lies "
	        "outside them (a split bucket's value array; slots equally likely).  A 64-byte "
	        "value is a line by itself, so no layout reads 16 + 64 bytes in fewer than "
	        "two lines: the 1.3-line goal is on the key lines.\n\n",
	        (unsigned long long)shapes_n, shapes_reps, BATCH);
	fprintf(md, "| shape | engine | hit thr | hit lat | batch | insert | key lines / hit | "
	        "all lines / hit | bytes / entry |\n|---|---|---|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < NSHAPES; i++)
		for (int e = 0; e < NENGINES; e++) {
			const struct shaperes *r = &results[i];

			if (!r->done[e])
				continue;
			char batch[32] = "—";

			if (!isnan(r->batch[e]))
				snprintf(batch, sizeof batch, "%.1f ns", r->batch[e]);
			fprintf(md, "| %s | %s%s | %.1f ns | %.1f ns | %s | %.0f ns | %.2f | %.2f | %.1f |\n",
			        shapes[i].name, engine_name[e],
			        e == E_SHMKV ? (r->split ? " (split slots)" : " (interleaved slots)")
			                     : "",
			        r->hit_thr[e], r->hit_lat[e], batch, r->insert[e], r->key_lines[e],
			        r->lines[e], r->bytes[e]);
		}
	for (size_t i = 0; i < NSHAPES; i++) {
		const struct shaperes *r = &results[i];

		if (!r->done[E_SHMKV] || isnan(r->dep))
			continue;
		double half = r->hit_lat[E_MEMKV] / r->dep / 2;

		fprintf(md, "\n%s, where the time goes: over a buffer of the table's size a "
		        "dependent read takes %.1f ns and an independent one %.1f ns.  A latency-mode "
		        "hit costs %.2f dependent reads in shmkv (%.2f key lines, then the value's "
		        "line, whose address the matching key gives: two waits in a row, the second "
		        "in a page already mapped) and %.2f in MemKeyValue (%.2f lines, but each "
		        "probe's slot address is known before the last one's bytes arrive, so its "
		        "probes and a slot's two lines overlap).  Half MemKeyValue's latency is %.2f "
		        "dependent reads%s.  A throughput-mode hit costs %.2f independent reads in "
		        "shmkv and %.2f in MemKeyValue: neither is near the memory's limit; each "
		        "keeps few hits in flight (shmkv: the key line, then the value line, a few "
		        "hundred instructions a hit between them).\n",
		        shapes[i].name, r->dep, r->indep, r->hit_lat[E_SHMKV] / r->dep,
		        r->key_lines[E_SHMKV], r->hit_lat[E_MEMKV] / r->dep, r->lines[E_MEMKV], half,
		        half < 1 ? ": fewer than one, and every hit must wait for at least one read "
		                   "of the table, its key's line; not reachable by any layout"
		                 : "",
		        r->hit_thr[E_SHMKV] / r->indep, r->hit_thr[E_MEMKV] / r->indep);
	}
	fprintf(md, "\n| shape | target | ratio | goal | verdict |\n|---|---|---|---|---|\n");
	for (size_t i = 0; i < NSHAPES; i++) {
		const struct shaperes *r = &results[i];
		double goal = shapes[i].target ? 0.5 : 1.0, x;

		if (!r->done[E_SHMKV])
			continue;
		x = r->hit_thr[E_SHMKV] / r->hit_thr[E_MEMKV];
		fprintf(md, "| %s | hit (throughput) vs MemKeyValue | %.2fx | ≤ %.2fx | %s |\n",
		        shapes[i].name, x, goal, verdict(x, goal));
		x = r->hit_lat[E_SHMKV] / r->hit_lat[E_MEMKV];
		fprintf(md, "| %s | hit (latency) vs MemKeyValue | %.2fx | ≤ %.2fx | %s |\n",
		        shapes[i].name, x, goal, verdict(x, goal));
		x = r->insert[E_SHMKV] / r->insert[E_MEMKV];
		fprintf(md, "| %s | insert vs MemKeyValue | %.2fx | ≤ 1.00x | %s |\n",
		        shapes[i].name, x, verdict(x, 1.0));
		if (shapes[i].target)
			fprintf(md, "| %s | key lines per hit | %.2f | ≤ 1.30 | %s |\n", shapes[i].name,
			        r->key_lines[E_SHMKV], verdict(r->key_lines[E_SHMKV], 1.3));
	}
	fprintf(md, "\n");
}
