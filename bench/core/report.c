/* The report: results.md (the targets first, then every figure) and
 * plot.dat, written once every workload has been measured. */
#include "bench/measure.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

static FILE *md;

#define TEXT_(x) #x
#define TEXT(x) TEXT_(x) /* a macro's value as a string literal */

static const char *fmt_ns(char *b, double ns)
{
	if (isnan(ns))
		snprintf(b, 24, "n/a");
	else if (ns < 100)
		snprintf(b, 24, "%.1f", ns);
	else
		snprintf(b, 24, "%.0f", ns);
	return b;
}

/* "231 (1.15x)" */
static const char *cell(char *b, double ns, double ref)
{
	char t[24];

	if (isnan(ns))
		return strcpy(b, "n/a");
	if (isnan(ref) || ref <= 0)
		return strcpy(b, fmt_ns(t, ns));
	snprintf(b, 48, "%s (%.2fx)", fmt_ns(t, ns), ns / ref);
	return b;
}

struct target {
	const char *what;
	double a, b;      /* ratio = a / b */
	int at_most;      /* 1: ratio <= goal; 0: ratio >= goal */
	double goal;
	const char *note;
};

int targets_met, targets_missed;

static void target_row(const struct target *t)
{
	char x[24], y[24];
	double r = t->a / t->b;

	if (isnan(r)) {
		fprintf(md, "| %s | %s | %s | n/a | %s %.2fx | not measured%s%s |\n", t->what,
		        fmt_ns(x, t->a), fmt_ns(y, t->b), t->at_most ? "≤" : "≥", t->goal,
		        t->note ? ": " : "", t->note ? t->note : "");
		return;
	}
	if (t->at_most ? r <= t->goal : r >= t->goal) {
		targets_met++;
		fprintf(md, "| %s | %s | %s | %.2fx | %s %.2fx | met |\n", t->what,
		        fmt_ns(x, t->a), fmt_ns(y, t->b), r, t->at_most ? "≤" : "≥", t->goal);
	} else {
		targets_missed++;
		fprintf(md, "| %s | %s | %s | %.2fx | %s %.2fx | **missed** by %.0f%% |\n",
		        t->what, fmt_ns(x, t->a), fmt_ns(y, t->b), r,
		        t->at_most ? "≤" : "≥", t->goal,
		        100 * (t->at_most ? r / t->goal - 1 : t->goal / r - 1));
	}
}

/* The peer called `name`, or one measured in no mode. */
static const struct peerres *peer_named(const struct wlres *w, const char *name)
{
	static struct peerres none;

	for (int p = 0; p < NPEERS; p++)
		if (w->peer[p].name && strcmp(w->peer[p].name, name) == 0)
			return &w->peer[p];
	for (int m = 0; m < NMODES; m++)
		none.ns[m] = none.shm_ns[m] = NAN;
	return &none;
}

/* Target rows measured outside this program by bench/run.sh (callgrind's
 * instructions per hit, bench/gen_check.sh's cost of the generation
 * check), one a line in the file SHMKV_BENCH_EXTRA names:
 *   what|measured|against|1 (at most) or 0 (at least)|goal */
static void report_extra_targets(void)
{
	const char *path = getenv("SHMKV_BENCH_EXTRA");
	FILE *f = path && *path ? fopen(path, "r") : NULL;
	char line[512], what[256];

	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		struct target t = { what, NAN, NAN, 1, NAN, NULL };

		if (sscanf(line, "%255[^|]|%lf|%lf|%d|%lf", what, &t.a, &t.b, &t.at_most, &t.goal) == 5)
			target_row(&t);
	}
	fclose(f);
}

static void report_targets(const struct wlres *w)
{
	const struct lfres *r8 = &w->lf[REF_LOAD], *r95 = &w->lf[3];
	const struct peerres *lmdb = peer_named(w, "LMDB"), *cdb = peer_named(w, "tinycdb");
	const struct peerres *ckht = peer_named(w, "ck_ht");
	const struct concres *c = &w->conc;
	double nan = NAN;
	struct target t[] = {
		{ "latency hit @0.80 vs dependent read", r8->ns[HIT_LAT], r8->lim.dep, 1, 1.25, NULL },
		{ "latency hit @0.95 vs dependent read", r95->ns[HIT_LAT], r95->lim.dep, 1, 1.6, NULL },
		{ "latency miss @0.80 vs dependent read", r8->ns[MISS_LAT], r8->lim.dep, 1, 2.0, NULL },
		{ "throughput hit @0.80 vs independent read", r8->ns[HIT_THR], r8->lim.indep, 1, 5.0, NULL },
		{ "batched hit @0.80 (per key, batch " TEXT(BATCH) ") vs independent read", r8->ns[BATCHED], r8->lim.indep, 1, 2.0, NULL },
		{ "LMDB hit / shmkv hit (throughput)", lmdb->ns[HIT_THR], lmdb->shm_ns[HIT_THR], 0, 20, NULL },
		{ "tinycdb hit / shmkv hit (throughput)", cdb->ns[HIT_THR], cdb->shm_ns[HIT_THR], 0, 4, NULL },
		{ "ck_ht hit / shmkv hit (throughput)", ckht->ns[HIT_THR], ckht->shm_ns[HIT_THR], 0, 2, NULL },
		{ "insert (build) vs throughput-mode hit @0.80", r8->insert_ns, r8->ns[HIT_THR], 1, 2.0, NULL },
		{ "insert (build) vs latency-mode hit @0.80", r8->insert_ns, r8->ns[HIT_LAT], 1, 2.0, NULL },
		{ "2 readers / 1 reader (M lookups per CPU-second)", c->done ? c->cpu_ops[1] : nan, c->done ? c->cpu_ops[0] : nan, 0, 1.8, c->err[0] ? c->err : NULL },
		{ "1 reader beside a writer / alone (M lookups per CPU-second)", c->done ? c->cpu_ops[2] : nan, c->done ? c->cpu_ops[0] : nan, 0, 0.8, c->err[0] ? c->err : NULL },
		{ "version checks: with / without, hit latency", w->nover.done ? w->nover.ns_ref[HIT_LAT] : nan, w->nover.done ? w->nover.ns[HIT_LAT] : nan, 1, 1.1, w->nover.err[0] ? w->nover.err : NULL },
		{ "version checks: with / without, hit throughput", w->nover.done ? w->nover.ns_ref[HIT_THR] : nan, w->nover.done ? w->nover.ns[HIT_THR] : nan, 1, 1.1, w->nover.err[0] ? w->nover.err : NULL },
	};

	fprintf(md, "## Targets (%s)\n\n", w->w->name);
	fprintf(md, "Figures in ns per lookup unless stated; each ratio's two figures come from the "
	        "same repetition loop (median of the repetitions).\n\n");
	fprintf(md, "| target | measured | against | ratio | goal | verdict |\n");
	fprintf(md, "|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (i == 10 || i == 11) { /* rates, shown in M lookups/s */
			struct target u = t[i];

			u.a /= 1e6;
			u.b /= 1e6;
			target_row(&u);
		} else {
			target_row(&t[i]);
		}
	}
	report_extra_targets();
	if (c->done)
		fprintf(md, "| reference: machine, 2 processes / 1, independent read (M reads per "
		        "CPU-second) | %.1f | %.1f | %.2fx | no goal | measured |\n",
		        c->cpu_ops[5] / 1e6, c->cpu_ops[4] / 1e6, c->cpu_ops[5] / c->cpu_ops[4]);
	if (w->huge.done)
		fprintf(md, "| huge pages: 4 KiB / huge, hit latency | %.1f | %.1f | %.2fx | gain, no goal | measured |\n"
		        "| huge pages: 4 KiB / huge, hit throughput | %.1f | %.1f | %.2fx | gain, no goal | measured |\n",
		        w->huge.ns4k[HIT_LAT], w->huge.nshuge[HIT_LAT],
		        w->huge.ns4k[HIT_LAT] / w->huge.nshuge[HIT_LAT],
		        w->huge.ns4k[HIT_THR], w->huge.nshuge[HIT_THR],
		        w->huge.ns4k[HIT_THR] / w->huge.nshuge[HIT_THR]);
	else
		fprintf(md, "| huge pages gain | n/a | n/a | n/a | gain, no goal | not measured: %s |\n",
		        w->huge.err);
	fprintf(md, "\nThe two reader rows are in millions of lookups per CPU-second, summed over the "
	        "reader processes (see the reader table for wall-clock rates).\n\n");
}

static void report_loads(const struct wlres *w)
{
	char a[48], b[48], c[48], e[48], f[48], g[48];

	fprintf(md, "### Machine limits and shmkv, uniform keys\n\n");
	fprintf(md, "| load | segment MB | dependent read | +lfence | independent read | "
	        "hit latency (x dep) | miss latency (x dep) | hit throughput (x indep) | "
	        "miss throughput (x indep) | batched/key (x indep) | insert (x thr hit) | "
	        "update | delete | reinsert | create ms | hit probes | miss probes |\n");
	fprintf(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < NLOADS; i++) {
		const struct lfres *r = &w->lf[i];

		if (!r->done)
			continue;
		fprintf(md, "| %.2f | %.1f | %.1f | %.1f | %.1f | %s | %s | %s | %s | %s | %s | "
		        "%.1f | %.1f | %.1f | %.1f | %.2f | %.2f |\n",
		        r->lf, (double)r->st.segment_bytes / 1e6, r->lim.dep, r->lim.dep_fence,
		        r->lim.indep, cell(a, r->ns[HIT_LAT], r->lim.dep),
		        cell(b, r->ns[MISS_LAT], r->lim.dep), cell(c, r->ns[HIT_THR], r->lim.indep),
		        cell(e, r->ns[MISS_THR], r->lim.indep), cell(f, r->ns[BATCHED], r->lim.indep),
		        cell(g, r->insert_ns, r->ns[HIT_THR]), r->upd_ns, r->del_ns, r->reins_ns,
		        r->create_ms, r->st.hit_probes, r->st.miss_probes);
	}
	fprintf(md, "\n### shmkv, Zipf-skewed keys (theta %.2f)\n\n", ZIPF_THETA);
	fprintf(md, "| load | hit latency (x dep) | hit throughput (x indep) | batched/key (x indep) |\n");
	fprintf(md, "|---|---|---|---|\n");
	for (int i = 0; i < NLOADS; i++) {
		const struct lfres *r = &w->lf[i];

		if (r->done)
			fprintf(md, "| %.2f | %s | %s | %s |\n", r->lf,
			        cell(a, r->ns[ZHIT_LAT], r->lim.dep),
			        cell(b, r->ns[ZHIT_THR], r->lim.indep),
			        cell(c, r->ns[ZBATCHED], r->lim.indep));
	}
	fputc('\n', md);
}

static void report_peers(const struct wlres *w)
{
	static const int modes[] = { HIT_THR, MISS_THR, ZHIT_THR, HIT_LAT, MISS_LAT, ZHIT_LAT };
	char a[48];

	fprintf(md, "### Peers against shmkv at load 0.80 (ns per lookup; peer/shmkv in parentheses)\n\n");
	fprintf(md, "| engine | build ns/entry |");
	for (int i = 0; i < 6; i++)
		fprintf(md, " %s |", mode_name[modes[i]]);
	fprintf(md, " bytes/entry | how |\n|---|---|---|---|---|---|---|---|---|---|\n");
	fprintf(md, "| shmkv | %.1f |", w->lf[REF_LOAD].insert_ns);
	for (int i = 0; i < 6; i++)
		fprintf(md, " %s |", fmt_ns(a, w->lf[REF_LOAD].ns[modes[i]]));
	fprintf(md, " %.1f | hashtable_search, 4 KiB pages |\n",
	        (double)w->lf[REF_LOAD].st.segment_bytes / (double)w->w->n);
	for (int p = 0; p < NPEERS; p++) {
		const struct peerres *r = &w->peer[p];

		if (!r->done) {
			if (r->name)
				fprintf(md, "| %s | not run: %s |||||||||\n", r->name, r->err);
			continue;
		}
		fprintf(md, "| %s | %.0f |", r->name, r->build_ns);
		for (int i = 0; i < 6; i++) {
			char t[24];

			snprintf(a, sizeof a, "%s (%.1fx)", fmt_ns(t, r->ns[modes[i]]),
			         r->ns[modes[i]] / r->shm_ns[modes[i]]);
			fprintf(md, " %s |", a);
		}
		fprintf(md, " %.1f | %s |\n", r->bytes / (double)w->w->n, r->note);
	}
	fprintf(md, "\nThe shmkv row shows the figures of the load table; each ratio divides by "
	        "shmkv measured in the same loop as the peer.\n\n");
}

static void report_memory(const struct wlres *w)
{
	double payload = (double)(w->w->ks + w->w->vs);
	int noted = 0;

	fprintf(md, "### Memory (payload %u+%u = %.0f bytes per entry)\n\n", w->w->ks,
	        w->w->vs, payload);
	fprintf(md, "| store | bytes/entry | payload share |\n|---|---|---|\n");
	for (int i = 0; i < NLOADS; i++) {
		const struct lfres *r = &w->lf[i];

		if (r->done)
			fprintf(md, "| shmkv @%.2f (slot %u B, %u slots/bucket) | %.1f | %.1f%% |\n",
			        r->lf, r->st.slot_size, r->st.slots_per_bucket,
			        (double)r->st.segment_bytes / (double)w->w->n,
			        100.0 * (double)r->st.payload_bytes / (double)r->st.segment_bytes);
	}
	for (int p = 0; p < NPEERS; p++) {
		const struct peerres *r = &w->peer[p];

		if (r->done && !isnan(r->bytes))
			fprintf(md, "| %s | %.1f | %.1f%% |\n", r->name, r->bytes / (double)w->w->n,
			        100.0 * payload * (double)w->w->n / r->bytes);
	}
	for (int p = 0; p < NPEERS; p++) { /* how each peer's bytes are counted */
		const struct peerres *r = &w->peer[p];

		if (r->done && r->bytes_note) {
			fprintf(md, "%s%s: %s", noted ? "; " : "\n", r->label, r->bytes_note);
			noted = 1;
		}
	}
	fprintf(md, noted ? ".\n\n" : "\n");
}

static void report_extras(const struct wlres *w)
{
	char buf[32];
	const struct concres *c = &w->conc;
	const struct hugeres *h = &w->huge;

	fprintf(md, "### Batched lookups by batch size (load 0.80, uniform)\n\n| batch |");
	for (int i = 0; i < NSWEEP; i++)
		fprintf(md, " %zu |", sweep_sizes[i]);
	fprintf(md, "\n|---|");
	for (int i = 0; i < NSWEEP; i++)
		fprintf(md, "---|");
	fprintf(md, "\n| ns/key (x indep) |");
	for (int i = 0; i < NSWEEP; i++)
		fprintf(md, " %.1f (%.2fx) |", w->sweep[i], w->sweep[i] / w->lf[REF_LOAD].lim.indep);
	fprintf(md, "\n\n### Reading a line: why the throughput mode is far from the independent read\n\n");
	fprintf(md, "| read of a random line (buffer of the 0.80 table's size) | ns per line | x independent read |\n|---|---|---|\n");
	fprintf(md, "| one 8-byte load (the independent read) | %.1f | 1.00x |\n", w->scan_indep);
	for (int i = 0; i < NSCANS; i++)
		fprintf(md, "| %s | %.1f | %.2fx |\n", scan_name[i], w->scan[i], w->scan[i] / w->scan_indep);
	fprintf(md, "| shmkv hit, throughput mode (for comparison) | %.1f | %.2fx |\n",
	        w->lf[REF_LOAD].ns[HIT_THR], w->lf[REF_LOAD].ns[HIT_THR] / w->lf[REF_LOAD].lim.indep);
	fprintf(md, "\nThe same random lines, the same loads of one 64-byte line: every instruction "
	        "that waits on a miss holds a scheduler entry, so the more of them per line, the "
	        "fewer misses the CPU keeps in flight.  Scalar compares put about a dozen integer "
	        "operations behind each miss; SSE2 compares put most of that work in the vector "
	        "scheduler.\n");
	fprintf(md, "\n### Reader processes (load 0.80, uniform hits, throughput mode)\n\n");
	if (c->done) {
		static const char *const name[NCONC] = {
			"1 reader", "2 readers", "1 reader + writer", "2 readers + writer",
			"machine: 1 process, independent read", "machine: 2 processes, independent read"
		};
		static const int base[NCONC] = { 0, 0, 0, 1, 4, 4 };

		fprintf(md, "| configuration | M lookups (reads) per CPU-second, all readers | ratio | "
		        "M lookups/s wall clock, all readers | ratio | readers' CPU share | "
		        "writer M updates/s |\n|---|---|---|---|---|---|---|\n");
		for (int i = 0; i < NCONC; i++)
			fprintf(md, "| %s | %.2f | %.2fx %s | %.2f | %.2fx | %.0f%% | %s |\n", name[i],
			        c->cpu_ops[i] / 1e6, c->cpu_ops[i] / c->cpu_ops[base[i]],
			        i == 0 || i == 4 ? "" : i == 1 ? "1 reader" : i == 5 ? "1 process" :
			        "without writer",
			        c->ops[i] / 1e6, c->ops[i] / c->ops[base[i]], 100 * c->share[i],
			        i == 2 || i == 3 ? (snprintf(buf, sizeof buf, "%.2f", c->wops[i] / 1e6), buf) : "-");
		fprintf(md, "\nEach reader is a forked process attached with hashtable_open_key(RDONLY) "
		        "that faults its page tables in before the clock starts; the writer attaches "
		        "read-write and overwrites random keys with the other valid value as fast as it "
		        "can.  The targets use lookups per CPU-second, which the other work on this "
		        "shared machine does not change; the wall-clock rates and the CPU share the "
		        "readers got are shown beside them.  With 2 readers and a writer there are 3 "
		        "processes on %ld CPUs.  The machine rows run the independent read in 1 and 2 "
		        "processes over a buffer of the table's size: how far two processes scale on "
		        "this machine at all (its 2 vCPUs may share a physical core).\n\n",
		        sysconf(_SC_NPROCESSORS_ONLN));
	} else {
		fprintf(md, "Not measured: %s\n\n", c->err);
	}
	fprintf(md, "### Huge pages (HASHTABLE_HUGETLB, load 0.80)\n\n");
	if (h->done) {
		char a[48], b[48];

		fprintf(md, "| | 4 KiB pages | huge pages | 4 KiB / huge |\n|---|---|---|---|\n");
		fprintf(md, "| dependent read | %.1f | %.1f | %.2fx |\n", h->lim4k.dep, h->limhuge.dep,
		        h->lim4k.dep / h->limhuge.dep);
		fprintf(md, "| independent read | %.1f | %.1f | %.2fx |\n", h->lim4k.indep,
		        h->limhuge.indep, h->lim4k.indep / h->limhuge.indep);
		for (int m = 0; m <= BATCHED; m++)
			fprintf(md, "| %s | %s | %s | %.2fx |\n", mode_name[m],
			        cell(a, h->ns4k[m], m == HIT_LAT || m == MISS_LAT ? h->lim4k.dep : h->lim4k.indep),
			        cell(b, h->nshuge[m], m == HIT_LAT || m == MISS_LAT ? h->limhuge.dep : h->limhuge.indep),
			        h->ns4k[m] / h->nshuge[m]);
		fprintf(md, "| insert (build) | %.1f | %.1f | %.2fx |\n", h->insert4k, h->inserthuge,
		        h->insert4k / h->inserthuge);
		fprintf(md, "\nRatios in parentheses are against the limit measured with the same page size.%s%s\n\n",
		        h->err[0] ? " Note: " : "", h->err);
	} else {
		fprintf(md, "Not measured: %s\n\n", h->err);
	}
	fprintf(md, "### Version checks\n\n");
	if (w->nover.done) {
		fprintf(md, "| mode | with checks | without | with / without |\n|---|---|---|---|\n");
		for (int m = 0; m <= MISS_THR; m++)
			fprintf(md, "| %s | %.1f | %.1f | %.2fx |\n", mode_name[m], w->nover.ns_ref[m],
			        w->nover.ns[m], w->nover.ns_ref[m] / w->nover.ns[m]);
		fputc('\n', md);
	} else {
		fprintf(md, "%s.\n\n", w->nover.err);
	}
}

static void write_plot_data(const char *dir, const struct wlres *w)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/plot.dat", dir);
	f = fopen(path, "w");
	if (!f)
		die("%s: %s", path, strerror(errno));
	fprintf(f, "# %s: load dep indep hit_lat miss_lat hit_thr miss_thr batched zipf_hit_thr\n",
	        w->w->name);
	for (int i = 0; i < NLOADS; i++) {
		const struct lfres *r = &w->lf[i];

		fprintf(f, "%.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f\n", r->lf, r->lim.dep,
		        r->lim.indep, r->ns[HIT_LAT], r->ns[MISS_LAT], r->ns[HIT_THR],
		        r->ns[MISS_THR], r->ns[BATCHED], r->ns[ZHIT_THR]);
	}
	fclose(f);
}

void report(const struct plan *pl, struct wlres *res, int nres)
{
	char path[512], host[256] = "?";
	time_t now = time(NULL);
	FILE *cpu = fopen("/proc/cpuinfo", "r");

	if (cpu) {
		char line[512];

		while (fgets(line, sizeof line, cpu))
			if (strncmp(line, "model name", 10) == 0) {
				char *c = strchr(line, ':');

				c = c ? c + 2 : line;
				c[strcspn(c, "\n")] = 0;
				if (strlen(c) >= sizeof host)
					c[sizeof host - 1] = 0;
				memcpy(host, c, strlen(c) + 1);
				break;
			}
		fclose(cpu);
	}
	snprintf(path, sizeof path, "%s/results.md", pl->outdir);
	md = fopen(path, "w");
	if (!md)
		die("%s: %s", path, strerror(errno));
	fprintf(md, "# shmkv benchmark (%s)\n\n", pl->quick ? "quick" : "full");
	fprintf(md, "shmkv %s; %s, %ld CPUs; %s", shmkv_version(), host,
	        sysconf(_SC_NPROCESSORS_ONLN), ctime(&now));
	fprintf(md, "\nMedian of %d repetitions; %llu throughput lookups and %llu latency "
	        "lookups per repetition (fewer for slow peers); %.0f s total.  ",
	        pl->reps, (unsigned long long)pl->nq, (unsigned long long)pl->lat_steps,
	        elapsed());
	fprintf(md, "**Answers checked: %llu, wrong: %llu.**\n\n",
	        (unsigned long long)total_checked, (unsigned long long)total_bad);
	fprintf(md, "Throughput mode: independent random keys, limit = independent random read. "
	        "Latency mode: each key comes from the value the previous lookup returned, "
	        "limit = dependent random read (pointer chase round one Sattolo cycle); miss "
	        "chains are serialised with lfence (the +lfence column shows its cost on the "
	        "chase).  Limits are measured over a buffer of the table's segment size with "
	        "the same page size, in the same loop as the lookups.  Times are the measuring "
	        "thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so time the shared machine gives "
	        "to other processes is not charged; Redis, whose work is in another process, "
	        "is timed on the wall clock, and so is shmkv in the loop beside it.\n\n");
	for (int i = 0; i < nres; i++)
		if (res[i].w->targets)
			report_targets(&res[i]);
	report_shapes(md);
	fprintf(md, "Targets met: %d, missed: %d.\n\n", targets_met, targets_missed);
	for (int i = 0; i < nres; i++) {
		fprintf(md, "## %s\n\n", res[i].w->name);
		report_loads(&res[i]);
		report_peers(&res[i]);
		report_memory(&res[i]);
		if (res[i].w->targets) {
			report_extras(&res[i]);
			write_plot_data(pl->outdir, &res[i]);
		}
	}
	fclose(md);
}
