/*
 * scale: how the cost of a lookup grows with the table, from 1M to 256M
 * entries of 8-byte keys and 8-byte values at load 0.8, against the
 * machine's own random reads over a buffer of the table's size.  Driven by
 * bench/scale.sh (`make bench-scale`), which runs it once with 4 KiB pages
 * and once with huge pages (reserving them for the run), and draws the plot.
 *
 * Per size, in this order (so that at most one table and one buffer of the
 * table's size exist at a time: 256M entries is 5.4 GB each):
 *   create   hashtable_create_config of an empty table at the full size,
 *            timed, then removed;
 *   build    a one-bucket table, then hashtable_replace_begin with the full
 *            size, hashtable_builder_put of every key, and
 *            hashtable_replace_commit: each step timed; the table must then
 *            count every key;
 *   lookups  per repetition, the dependent and independent random read over
 *            a buffer of the table's size (same page size), then hits and
 *            misses in latency and throughput mode (the kernels every engine
 *            of shmkv-bench uses: bench/kernels.h); medians of the
 *            repetitions, so each ratio's two figures come from one loop.
 * Every lookup's answer is checked (value tag, next index; misses must
 * miss), and any wrong answer makes the exit status 1.
 *
 * Helper modes for the script: --hugepages-needed (2 MiB pages one size
 * needs), --write-bin (the records shmkv-load --replace is timed on), and
 * --check-key (samples a table shmkv-load made: hits right, misses absent).
 *
 * Output: one line per size (see HEADER) appended to --out, progress and
 * errors on stderr.  Segments made here are registered with bench/core's
 * cleanup and removed by id on exit and on SIGINT/SIGTERM/SIGHUP; a builder
 * killed mid-build leaves its pending segment to bench/scale.sh, which
 * removes segments whose creator was this process once it is gone.
 */
#include "bench/measure.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define LF 0.8
#define SEED 0x5ca1e000u
#define HEADER "entries\tpages\tsegment_bytes\tbytes_per_entry\tcreate_s\tbegin_s\tput_s\tcommit_s\t" \
               "put_ns\tdep_ns\tindep_ns\thit_lat_ns\tmiss_lat_ns\thit_thr_ns\tmiss_thr_ns\t"      \
               "hit_probes\tmiss_probes\tchecked\twrong\tcreate_cpu_s\tbuild_cpu_s"

/* 2 MiB pages for one size: the table and the limits' buffer, each rounded
 * up, plus the small table the build starts from and its root. */
static uint64_t hugepages_needed(uint64_t n)
{
	uint64_t seg = hashtable_segment_size(n, LF, 8, 8);

	return 2 * ((seg + HUGE_PAGE - 1) / HUGE_PAGE) + 4;
}

/* Bytes the 4 KiB run of one size holds at its peak: table, buffer, the
 * data set's cycle (4 bytes a key) and the queries. */
static uint64_t bytes_needed(uint64_t n, uint64_t nq)
{
	return 2 * hashtable_segment_size(n, LF, 8, 8) + 4 * n + 64 * nq;
}

static uint64_t meminfo(const char *field)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	size_t len = strlen(field);
	uint64_t v = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, field, len) && line[len] == ':') {
			v = strtoull(line + len + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static double secs_since(uint64_t t0)
{
	return (double)(now_ns() - t0) / 1e9;
}

/* Registers the table's current data segment for the cleanup (the root is
 * registered by table_create). */
static void reg_data_segment(struct hashtable *h, int add)
{
	struct hashtable_segment_info seg[2];

	if (hashtable_segments(h, seg, 2) >= 2)
		reg_seg(seg[1].shmid, add);
}

struct point {
	uint64_t n, seg;
	double create_s, begin_s, put_s, commit_s; /* wall clock */
	double create_cpu_s, build_cpu_s, put_cpu_ns; /* this thread's CPU time */
	double dep, indep, ns[NMODES];
	double hit_probes, miss_probes;
	uint64_t checked, wrong;
};

/* Creates an empty table of the full size and removes it: the cost of
 * hashtable_create_config alone (the kernel gives pages at first touch).
 * Wall seconds; CPU seconds in *cpu_s. */
static double time_create(const struct dataset *d, size_t cap, int flags, double *cpu_s)
{
	struct hashtable *h;
	uint64_t t0 = now_ns(), c0 = tick();
	int rc = table_create(d, LF, cap, flags, &h);
	double s = secs_since(t0);

	*cpu_s = (double)(tick() - c0) / 1e9;

	if (rc != 0)
		die("hashtable_create_config(%zu bytes%s): %s: %s", cap,
		    flags & HASHTABLE_HUGETLB ? ", HUGETLB" : "", hashtable_strerror(rc),
		    hashtable_last_error());
	table_destroy(h);
	return s;
}

/* The full table, built through a replace of a one-bucket table. */
static struct hashtable *build(const struct dataset *d, size_t cap, int flags,
                               struct point *p, uint64_t *bad)
{
	struct hashtable_config cfg = { .capacity = cap, .max_load = LF, .key_size = 8,
	                                .value_size = 8, .flags = flags & HASHTABLE_HUGETLB };
	struct hashtable_builder *b;
	struct hashtable_stats st;
	struct hashtable *h;
	unsigned char key[MAX_KEY], val[MAX_VALUE];
	uint64_t t0, c0, cput;
	int rc = table_create(d, LF, hashtable_segment_size(1, LF, 8, 8), flags, &h);

	if (rc != 0)
		die("hashtable_create_config (the small table): %s: %s", hashtable_strerror(rc),
		    hashtable_last_error());
	c0 = tick();
	t0 = now_ns();
	rc = hashtable_replace_begin(h, &cfg, &b);
	if (rc != 0)
		die("hashtable_replace_begin(%zu bytes): %s: %s", cap, hashtable_strerror(rc),
		    hashtable_last_error());
	p->begin_s = secs_since(t0);
	cput = tick();
	t0 = now_ns();
	for (uint64_t i = 0; i < d->n; i++) {
		key_of(8, i, key);
		value_of(d, i, 0, val);
		rc = hashtable_builder_put(b, key, val);
		if (rc != 0 && (*bad)++ == 0)
			fprintf(stderr, PROG ": builder_put %" PRIu64 ": %d %s\n", i, rc,
			        hashtable_strerror(rc));
	}
	p->put_s = secs_since(t0);
	p->put_cpu_ns = (double)(tick() - cput) / (double)d->n;
	t0 = now_ns();
	rc = hashtable_replace_commit(b);
	if (rc != 0)
		die("hashtable_replace_commit: %s: %s", hashtable_strerror(rc),
		    hashtable_last_error());
	p->commit_s = secs_since(t0);
	p->build_cpu_s = (double)(tick() - c0) / 1e9;
	reg_data_segment(h, 1);
	hashtable_stats(h, &st);
	if (st.count != d->n)
		die("the table counts %" PRIu64 " keys after %" PRIu64 " builder_puts", st.count, d->n);
	p->seg = st.segment_bytes;
	p->hit_probes = st.hit_probes;
	p->miss_probes = st.miss_probes;
	return h;
}

static const int modes[] = { HIT_LAT, MISS_LAT, HIT_THR, MISS_THR };

static void measure(struct hashtable *h, const struct dataset *d, const struct plan *pl,
                    int huge, struct point *p, uint64_t *bad)
{
	double v[NMODES][MAX_REPS], dep[MAX_REPS], ind[MAX_REPS], fence;
	struct membuf mb;
	struct runner r;
	int rc = membuf_init(&mb, p->seg, huge, d->nq, 777 + d->n);

	if (rc)
		die("a %s buffer of %" PRIu64 " bytes for the machine's reads: %s",
		    huge ? "huge-page" : "4 KiB-page", p->seg, strerror(-rc));
	runner_init(&r, &shm_kernels, h, 1, 12345);
	for (int rep = 0; rep < pl->reps; rep++) {
		measure_limits_only(&mb, pl, &dep[rep], &fence, &ind[rep]);
		for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
			v[modes[i]][rep] = run_mode(&r, d, pl, modes[i], bad, &p->checked);
	}
	membuf_free(&mb);
	p->dep = median(dep, pl->reps);
	p->indep = median(ind, pl->reps);
	for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
		p->ns[modes[i]] = median(v[modes[i]], pl->reps);
}

static void run_size(const struct plan *pl, uint64_t n, int huge, FILE *out)
{
	struct point p = { .n = n };
	struct dataset d;
	struct hashtable *h;
	int flags = huge ? HASHTABLE_HUGETLB : 0;
	size_t cap = hashtable_segment_size(n, LF, 8, 8);
	uint64_t bad = 0;

	if (huge) {
		uint64_t free_pages = meminfo("HugePages_Free");

		if (free_pages < hugepages_needed(n)) {
			fprintf(stderr, PROG ": %" PRIu64 " entries, huge pages: %" PRIu64
			        " free of %" PRIu64 " needed: size skipped (as root: sysctl -w "
			        "vm.nr_hugepages=N, or run bench/scale.sh)\n",
			        n, free_pages, hugepages_needed(n));
			return;
		}
	} else {
		uint64_t avail = meminfo("MemAvailable") * 1024;

		if (avail < bytes_needed(n, pl->nq) + (2ull << 30)) {
			fprintf(stderr, PROG ": %" PRIu64 " entries need %.1f GB and 2 GB to spare; "
			        "%.1f GB available: size skipped\n", n,
			        (double)bytes_needed(n, pl->nq) / 1e9, (double)avail / 1e9);
			return;
		}
	}
	progress("%" PRIu64 " entries, %s pages: data set", n, huge ? "huge" : "4 KiB");
	dataset_init(&d, n, 8, 8, pl->nq, SEED + n, 0);
	check_not_sentinel(0, n + d.nq);
	p.create_s = time_create(&d, cap, flags, &p.create_cpu_s);
	h = build(&d, cap, flags, &p, &bad);
	progress("  built: create %.3f s; replace_begin %.3f s, puts %.1f s (%.1f ns a builder_put "
	         "in CPU time), commit %.3f s", p.create_s, p.begin_s, p.put_s, p.put_cpu_ns, p.commit_s);
	p.checked = n;
	measure(h, &d, pl, huge, &p, &bad);
	reg_data_segment(h, 0);
	table_destroy(h);
	dataset_free(&d);
	p.wrong = bad;
	account(&bad, p.checked, "scale");
	progress("  hit %.1f ns latency (dependent read %.1f), %.1f ns throughput "
	         "(independent read %.1f); miss %.1f / %.1f",
	         p.ns[HIT_LAT], p.dep, p.ns[HIT_THR], p.indep, p.ns[MISS_LAT], p.ns[MISS_THR]);
	fprintf(out, "%" PRIu64 "\t%s\t%" PRIu64 "\t%.2f\t%.4f\t%.4f\t%.3f\t%.4f\t%.1f\t%.1f\t%.2f\t"
	        "%.1f\t%.1f\t%.1f\t%.1f\t%.3f\t%.3f\t%" PRIu64 "\t%" PRIu64 "\t%.4f\t%.3f\n",
	        n, huge ? "huge" : "4k", p.seg, (double)p.seg / (double)n, p.create_s, p.begin_s,
	        p.put_s, p.commit_s, p.put_cpu_ns, p.dep, p.indep, p.ns[HIT_LAT],
	        p.ns[MISS_LAT], p.ns[HIT_THR], p.ns[MISS_THR], p.hit_probes, p.miss_probes,
	        p.checked, p.wrong, p.create_cpu_s, p.build_cpu_s);
	fflush(out);
}

/* n records of an 8-byte key and an 8-byte value for shmkv-load -f bin:
 * key i, and a value that value_check accepts for key i. */
static int write_bin(const char *path, uint64_t n)
{
	FILE *f = fopen(path, "wb");
	static unsigned char buf[1 << 20];
	size_t used = 0;

	if (!f)
		die("%s: %s", path, strerror(errno));
	for (uint64_t i = 0; i < n; i++) {
		uint64_t nx = (i + 1) % n, w = nx << 32 | value_tag(i, nx);

		key_of(8, i, buf + used);
		memcpy(buf + used + 8, &w, 8);
		used += 16;
		if (used == sizeof buf || i + 1 == n) {
			if (fwrite(buf, 1, used, f) != used)
				die("%s: %s", path, strerror(errno));
			used = 0;
		}
	}
	if (fclose(f) != 0)
		die("%s: %s", path, strerror(errno));
	return 0;
}

/* Samples a table holding write_bin's n records: every sampled key present
 * with its own value, absent keys absent, and the count exact. */
static int check_key(key_t key, uint64_t n, uint64_t samples)
{
	struct hashtable *h = hashtable_open_key(key, HASHTABLE_RDONLY);
	struct hashtable_stats st;
	struct rng r = { SEED };
	unsigned char k[8], v[8];
	uint64_t wrong = 0;

	if (!h)
		die("hashtable_open_key(0x%x): %s", (unsigned)key, hashtable_last_error());
	hashtable_stats(h, &st);
	if (st.count != n) {
		fprintf(stderr, PROG ": table 0x%x counts %" PRIu64 " keys, loaded %" PRIu64 "\n",
		        (unsigned)key, st.count, n);
		wrong++;
	}
	for (uint64_t s = 0; s < samples; s++) {
		uint64_t i = rng_below(&r, n);

		key_of(8, i, k);
		wrong += hashtable_search(h, k, v) != 0 || value_check(v, 8, i) != (int64_t)((i + 1) % n);
		key_of(8, n + s, k);
		wrong += hashtable_search(h, k, v) != -1;
	}
	hashtable_close(h);
	printf("%" PRIu64 "\t%" PRIu64 "\n", 2 * samples, wrong);
	return wrong ? 1 : 0;
}

/* --time: runs argv as a child and prints its wall seconds and CPU seconds
 * (user + system, from wait4) on stdout; exits with the child's status.
 * INT, TERM and HUP are passed on to the child (the script stops us by
 * pid), and we exit once it has. */
static pid_t timed_child;

static void pass_on(int sig)
{
	if (timed_child > 0)
		kill(timed_child, sig);
}

static int time_command(char **argv)
{
	struct rusage ru;
	uint64_t t0 = now_ns();
	int st;

	signal(SIGINT, pass_on);
	signal(SIGTERM, pass_on);
	signal(SIGHUP, pass_on);
	timed_child = fork();
	if (timed_child < 0)
		die("fork: %s", strerror(errno));
	if (timed_child == 0) {
		execv(argv[0], argv);
		fprintf(stderr, PROG ": %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (wait4(timed_child, &st, 0, &ru) < 0)
		if (errno != EINTR)
			die("wait4: %s", strerror(errno));
	printf("%.3f\t%.3f\n", (double)(now_ns() - t0) / 1e9,
	       (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static uint64_t parse_count(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	if (end == s || (*end && *end != ','))
		die("bad entry count \"%s\": give a number, optionally with K or M (2^10, 2^20)", s);
	return v;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: scale --sizes N[,N...] [--huge] [--reps R] [--out FILE]\n"
	        "       scale --hugepages-needed N | --bytes-needed N\n"
	        "       scale --write-bin FILE --n N\n"
	        "       scale --check-key KEY --n N\n"
	        "       scale --time PROGRAM [ARG]...\n"
	        "Measures lookups, creation and bulk build of tables of N entries (K, M\n"
	        "suffixes: 2^10, 2^20) of 8-byte keys and values at load 0.8 against the\n"
	        "machine's dependent and independent random reads; appends one line per\n"
	        "size to FILE (default: standard output; --header prints the columns).\n"
	        "Exit status: 0 all answers right, 1 wrong answers, 2 error.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sizes", required_argument, NULL, 's' },
		{ "huge", no_argument, NULL, 'H' },
		{ "reps", required_argument, NULL, 'R' },
		{ "out", required_argument, NULL, 'o' },
		{ "header", no_argument, NULL, 'h' + 256 },
		{ "hugepages-needed", required_argument, NULL, 'N' },
		{ "bytes-needed", required_argument, NULL, 'B' },
		{ "write-bin", required_argument, NULL, 'w' },
		{ "check-key", required_argument, NULL, 'c' },
		{ "n", required_argument, NULL, 'n' },
		{ "time", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct plan pl = { .reps = 3, .nq = 1000000, .lat_steps = 200000 };
	const char *sizes = NULL, *outp = NULL, *bin = NULL;
	long check = -1;
	uint64_t n = 0;
	int c, huge = 0;
	FILE *out = stdout;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1)
		switch (c) {
		case 's': sizes = optarg; break;
		case 'H': huge = 1; break;
		case 'R': pl.reps = atoi(optarg); break;
		case 'o': outp = optarg; break;
		case 'h' + 256: puts(HEADER); return 0;
		case 'N': printf("%" PRIu64 "\n", hugepages_needed(parse_count(optarg))); return 0;
		case 'B': printf("%" PRIu64 "\n", bytes_needed(parse_count(optarg), pl.nq)); return 0;
		case 'w': bin = optarg; break;
		case 'c': check = strtol(optarg, NULL, 0); break;
		case 'n': n = parse_count(optarg); break;
		case 't':
			if (optind >= argc)
				die("--time: give the program to run");
			return time_command(argv + optind);
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	if (pl.reps < 1 || pl.reps > MAX_REPS)
		die("--reps %d: give 1 to %d", pl.reps, MAX_REPS);
	if (bin || check >= 0) {
		if (n < 2 || n >= (1ull << 32))
			die("--n %" PRIu64 ": give 2 to 2^32 - 1 entries", n);
		check_not_sentinel(0, n + 1000000);
		return bin ? write_bin(bin, n) : check_key((key_t)check, n, 1000000);
	}
	if (!sizes) {
		usage(stderr);
		return 2;
	}
	if (outp && !(out = fopen(outp, "a")))
		die("%s: %s", outp, strerror(errno));
	install_cleanup();
	t_start = now_ns();
	for (const char *s = sizes; s; s = strchr(s, ',') ? strchr(s, ',') + 1 : NULL)
		run_size(&pl, parse_count(s), huge, out);
	if (out != stdout)
		fclose(out);
	progress("done: %" PRIu64 " answers checked, %" PRIu64 " wrong", total_checked, total_bad);
	return total_bad ? 1 : 0;
}
