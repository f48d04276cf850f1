/* The peers against shmkv: each peer of BENCH_PEERS (bench/peer.h) is built
 * from the same data set and measured in every lookup mode, interleaved with
 * shmkv's reference table in the same loop, then closed before the next. */
#include "bench/measure.h"

#include <math.h>
#include <stdlib.h>

#define BENCH_PEER_ADDRESS(name) &name##_peer,
static const struct peer_ops *const peers[NPEERS] = { BENCH_PEERS(BENCH_PEER_ADDRESS) };

static int uses_own_throughput(const struct peer *p, int m)
{
	return p->ops->throughput && (m == HIT_THR || m == MISS_THR || m == ZHIT_THR);
}

/* A peer's own throughput loop, over the same queries as the kernels'. */
static double own_throughput(const struct peer *p, const struct dataset *d, int m,
                             uint64_t *bad, uint64_t *checked)
{
	uint64_t n = d->nq / (uint64_t)p->scale;
	int dist = m == ZHIT_THR ? ZIPF : UNIFORM;
	uint64_t t = p->ops->throughput(p->ctx, d, m == MISS_THR ? d->mkeys : d->qkeys[dist],
	                                m == MISS_THR ? NULL : d->qidx[dist], n, bad);

	*checked += n;
	return (double)t / (double)n;
}

static void run_peer(const struct plan *pl, const struct dataset *d,
                     struct hashtable *h, struct peer *p, struct peerres *out)
{
	static const int modes[] = { HIT_THR, MISS_THR, ZHIT_THR, HIT_LAT, MISS_LAT, ZHIT_LAT };
	double v[NMODES][MAX_REPS], s[NMODES][MAX_REPS];
	uint64_t bad = 0, checked = 0;
	struct runner rp, rs;

	/* A peer working in another process: wall clock for it and for shmkv beside it. */
	bench_clock = p->ops->wall_clock ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID;
	runner_init(&rp, p->k, p->ctx, p->scale, 999);
	runner_init(&rs, &shm_kernels, h, p->scale, 999);
	for (int rep = 0; rep < pl->reps; rep++)
		for (int i = 0; i < 6; i++) {
			int m = modes[i];

			s[m][rep] = run_mode(&rs, d, pl, m, &bad, &checked);
			if (uses_own_throughput(p, m))
				v[m][rep] = own_throughput(p, d, m, &bad, &checked);
			else
				v[m][rep] = run_mode(&rp, d, pl, m, &bad, &checked);
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
	out->label = p->ops->label;
	out->note = p->note;
	out->bytes_note = p->ops->bytes_note;
	out->build_ns = p->build_ns;
	out->bytes = p->bytes;
	out->done = 1;
	account(&bad, checked, p->name);
	progress("  %s: build %.0f ns/entry, hit %.1f ns throughput (shmkv %.1f), %.0f B/entry",
	         p->name, p->build_ns, out->ns[HIT_THR], out->shm_ns[HIT_THR],
	         p->bytes / (double)d->n);
}

void run_peers(const struct plan *pl, const struct dataset *d, struct hashtable *h,
               struct wlres *w)
{
	uint64_t bad = 0;

	for (int i = 0; i < NPEERS; i++) {
		const struct peer_ops *ops = peers[i];
		struct peer p;
		char what[64];

		if (ops->wanted && !ops->wanted(pl, d))
			continue;
		memset(&p, 0, sizeof p);
		p.ops = ops;
		p.name = ops->name;
		p.k = ops->kernels;
		p.note = ops->note;
		p.scale = ops->scale;
		if (ops->open(&p, pl, d, &bad) == 0) {
			snprintf(what, sizeof what, "%s build", ops->label);
			account(&bad, d->n, what);
			run_peer(pl, d, h, &p, &w->peer[i]);
		} else {
			snprintf(w->peer[i].err, sizeof w->peer[i].err, "%s", p.err);
			w->peer[i].name = p.name;
			progress("  %s: %s", ops->label, w->peer[i].err);
		}
		ops->close(&p);
	}
}
