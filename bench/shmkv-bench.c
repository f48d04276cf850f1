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
 *
 * Files: bench.h (cleanup, clocks, the data set, the plan, the modes) and
 * kernels.h (the lookup loops every engine shares); core/ measures shmkv and
 * the machine (engine.c, machine.c, measure.c, readers.c, extras.c, declared
 * in measure.h) and writes the report (report.c); peers/ holds one file per
 * peer behind peer.h, which says how to add one.  This file: the presets,
 * the options, and the order of a run.
 */
#include "bench/measure.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

/* One workload: every load factor, then, on the table at the reference load,
 * the extras (for the targets' workload) and the peers. */
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
	        "                   [--nover PATH] [--reps N] [--workload I] [--shapes]\n"
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
	        "  --workload I          only the I-th workload of the preset (0-based), no shapes\n"
	        "  --shapes              only the shapes against the original algorithm (with\n"
	        "                        --workload I: only the I-th shape)\n"
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
		{ "shapes", no_argument, NULL, 'S' },
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
	int c, quick = 1, huge = 0, reps = 0, need = 0, only = -1, shapes_only = 0;
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
		case 'S': shapes_only = 1; break;
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
	if (only >= 0 && only < pl.nworkloads && !shapes_only) {
		pl.wl[0] = pl.wl[only];
		pl.nworkloads = 1;
	}
	pl.huge = huge;
	pl.redis = redis;
	pl.nover = nover;
	pl.outdir = out;
	install_cleanup();
	t_start = now_ns();
	res = calloc((size_t)pl.nworkloads + 1, sizeof *res);
	if (!res)
		die("out of memory");
	if (shapes_only)
		pl.nworkloads = 0;
	for (int i = 0; i < pl.nworkloads; i++)
		run_workload(&pl, &pl.wl[i], &res[i]);
	if (only < 0 || shapes_only)
		run_shapes(&pl, shapes_only ? only : -1);
	report(&pl, res, pl.nworkloads);
	progress("done: %llu answers checked, %llu wrong; %d targets met, %d missed",
	         (unsigned long long)total_checked, (unsigned long long)total_bad,
	         targets_met, targets_missed);
	free(res);
	return total_bad ? 1 : 0;
}

