/* Readers and a writer in separate processes, on the reference table: 1 and
 * 2 readers, with and without a writer, and the machine's own scaling (the
 * independent read in 1 and 2 processes).  The control block is shared
 * anonymous memory made before fork. */
#include "bench/measure.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

struct conc_ctl {
	_Atomic int ready, go, stop;
	struct {
		uint64_t ops, bad, ns, cpu_ns; /* wall and CPU time of the run */
		int err;
	} res[4];
};

static uint64_t process_cpu_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A freshly attached process has no page-table entries for the segment:
 * fault them in (a few lookups per page) before the clock starts, as a
 * long-running reader would have. */
uint64_t warm_up(struct hashtable *h, const struct dataset *d, uint64_t *q,
                 uint64_t *learn)
{
	struct hashtable_stats st;
	unsigned char val[MAX_VALUE];
	uint64_t bad = 0, m;

	if (hashtable_stats(h, &st) != 0)
		return 1;
	m = st.segment_bytes / 4096 * 4;
	if (m < d->nq)
		m = d->nq;
	for (uint64_t j = 0; j < m; j++) {
		uint64_t i = d->qidx[UNIFORM][*q], w;

		if (hashtable_search(h, d->qkeys[UNIFORM] + *q * d->ks, val) != 0 ||
		    value_check(val, d->vs, i) < 0) {
			bad++;
		} else if (learn) { /* a light data set learns what to expect */
			memcpy(&w, val, 8);
			learn[*q] = (w >> 32) << 32 | value_tag(i, w >> 32);
		}
		if (++*q == d->nq)
			*q = 0;
	}
	return bad;
}

static void reader_child(struct conc_ctl *c, int slot, key_t key,
                         const struct dataset *d, double secs)
{
	struct hashtable *h = hashtable_open_key(key, HASHTABLE_RDONLY);
	unsigned char val[MAX_VALUE];
	uint64_t ops = 0, bad = 0, q = (uint64_t)slot * (d->nq / 3), t0, t, cpu0;
	uint64_t limit = (uint64_t)(secs * 1e9);

	c->res[slot].err = h ? 0 : errno;
	if (h)
		bad += warm_up(h, d, &q, NULL);
	atomic_fetch_add(&c->ready, 1);
	if (!h)
		_exit(1);
	while (!atomic_load(&c->go))
		sched_yield();
	cpu0 = process_cpu_ns();
	t0 = now_ns();
	do {
		for (int j = 0; j < 4096; j++, ops++) {
			int r = hashtable_search(h, d->qkeys[UNIFORM] + q * d->ks, val);

			bad += (r != 0) | value_wrong(val, d->vs, d->qexp[UNIFORM][q],
			                              d->qidx[UNIFORM][q]);
			if (++q == d->nq)
				q = 0;
		}
		t = now_ns() - t0;
	} while (t < limit);
	c->res[slot].cpu_ns = process_cpu_ns() - cpu0;
	c->res[slot].ops = ops;
	c->res[slot].bad = bad;
	c->res[slot].ns = t;
	hashtable_close(h);
	_exit(0);
}

/* The machine's side of the reader table: the independent read, in a
 * process of its own, over a buffer of the table's size. */
static void limit_child(struct conc_ctl *c, int slot, const struct membuf *mb,
                        double secs)
{
	const uint64_t *w = mb->w;
	uint64_t ops = 0, s = 0, q = (uint64_t)slot * (mb->nprobe / 3), t0, t, cpu0;
	uint64_t limit = (uint64_t)(secs * 1e9);

	for (uint64_t j = 0; j < mb->nprobe; j++) /* fault the page tables in */
		s += w[(uint64_t)mb->probe[j] * 8];
	atomic_fetch_add(&c->ready, 1);
	while (!atomic_load(&c->go))
		sched_yield();
	cpu0 = process_cpu_ns();
	t0 = now_ns();
	do {
		for (int j = 0; j < 4096; j++, ops++) {
			s += w[(uint64_t)mb->probe[q] * 8];
			if (++q == mb->nprobe)
				q = 0;
		}
		t = now_ns() - t0;
	} while (t < limit);
	c->res[slot].cpu_ns = process_cpu_ns() - cpu0;
	c->res[slot].ops = ops + (s == 42); /* keeps the loads */
	c->res[slot].ns = t;
	_exit(0);
}

static void writer_child(struct conc_ctl *c, int slot, key_t key,
                         const struct dataset *d)
{
	struct hashtable *h = hashtable_open_key(key, 0);
	unsigned char val[MAX_VALUE];
	struct rng r = { 4242 };
	uint64_t ops = 0, bad = 0, q = 0, t0, cpu0;

	c->res[slot].err = h ? 0 : errno;
	if (h)
		bad += warm_up(h, d, &q, NULL);
	atomic_fetch_add(&c->ready, 1);
	if (!h)
		_exit(1);
	while (!atomic_load(&c->go))
		sched_yield();
	cpu0 = process_cpu_ns();
	t0 = now_ns();
	while (!atomic_load(&c->stop)) {
		q = rng_below(&r, d->nq);
		value_of(d, d->qidx[UNIFORM][q], (int)(ops & 1), val);
		bad += hashtable_update(h, d->qkeys[UNIFORM] + q * d->ks, val) != 1;
		ops++;
	}
	c->res[slot].ops = ops;
	c->res[slot].bad = bad;
	c->res[slot].ns = now_ns() - t0;
	c->res[slot].cpu_ns = process_cpu_ns() - cpu0;
	hashtable_close(h);
	_exit(0);
}

struct conc_run {
	double wall;  /* lookups/s summed over readers, wall clock          */
	double cpu;   /* lookups per CPU-second summed over readers         */
	double share; /* CPU time / wall time, mean over readers            */
	double wops;  /* writer updates/s, wall clock                       */
	uint64_t ops;
};

/* One configuration: nr readers, a writer or not.  Returns 0, or -1 (err
 * set). */
static int conc_once(key_t key, const struct dataset *d, const struct membuf *mb,
                     double secs, int nr, int writer, struct conc_run *out,
                     uint64_t *bad, char *err, size_t errlen)
{
	struct conc_ctl *c = mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE,
	                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pids[4];
	int nk = nr + writer, failed = 0;

	memset(out, 0, sizeof *out);
	if (c == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	memset(c, 0, sizeof *c);
	fflush(NULL);
	for (int i = 0; i < nk; i++) {
		sigset_t old;

		block_signals(&old);
		pids[i] = fork();
		if (pids[i] == 0) {
			signal(SIGINT, SIG_DFL);
			signal(SIGTERM, SIG_DFL);
			signal(SIGHUP, SIG_DFL);
			sigprocmask(SIG_SETMASK, &old, NULL);
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != main_pid)
				_exit(1);
			if (i < nr && mb)
				limit_child(c, i, mb, secs);
			if (i < nr)
				reader_child(c, i, key, d, secs);
			writer_child(c, i, key, d);
		}
		if (pids[i] < 0)
			die("fork: %s", strerror(errno));
		reg_kid(pids[i], 1);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	for (uint64_t t0 = now_ns(); atomic_load(&c->ready) < nk; usleep(1000))
		if (now_ns() - t0 > 60000000000ull)
			break;
	atomic_store(&c->go, 1);
	for (int i = 0; i < nr; i++) {
		int st;

		waitpid(pids[i], &st, 0);
		reg_kid(pids[i], 0);
		failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0 || c->res[i].err;
	}
	atomic_store(&c->stop, 1);
	if (writer) {
		int st;

		waitpid(pids[nr], &st, 0);
		reg_kid(pids[nr], 0);
		failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0 || c->res[nr].err;
		if (c->res[nr].ns)
			out->wops = (double)c->res[nr].ops * 1e9 / (double)c->res[nr].ns;
	}
	for (int i = 0; i < nk; i++)
		*bad += c->res[i].bad;
	for (int i = 0; i < nr && !failed; i++) {
		out->ops += c->res[i].ops;
		out->wall += (double)c->res[i].ops * 1e9 / (double)c->res[i].ns;
		out->cpu += (double)c->res[i].ops * 1e9 / (double)c->res[i].cpu_ns;
		out->share += (double)c->res[i].cpu_ns / (double)c->res[i].ns / nr;
	}
	if (failed) {
		int e = 0;

		for (int i = 0; i < nk; i++)
			e = e ? e : c->res[i].err;
		snprintf(err, errlen, "a child failed to attach or run: %s",
		         e ? strerror(e) : "exit status");
	}
	munmap(c, sizeof *c);
	return failed ? -1 : 0;
}

void run_concurrency(const struct plan *pl, const struct dataset *d, struct hashtable *h,
                     struct concres *out)
{
	/* readers, writer, machine (independent read instead of lookups) */
	static const int cfg[NCONC][3] = {
		{ 1, 0, 0 }, { 2, 0, 0 }, { 1, 1, 0 }, { 2, 1, 0 }, { 1, 0, 1 }, { 2, 0, 1 }
	};
	double v[NCONC][MAX_REPS], c[NCONC][MAX_REPS], s[NCONC][MAX_REPS], w[NCONC][MAX_REPS];
	key_t key = table_key(h);
	uint64_t bad = 0, checked = 0;
	struct hashtable_stats st;
	struct membuf mb;

	if (hashtable_stats(h, &st) != 0 ||
	    membuf_init(&mb, st.segment_bytes, 0, d->nq, 99) != 0) {
		snprintf(out->err, sizeof out->err, "no memory for the limit buffer");
		return;
	}
	for (int rep = 0; rep < pl->conc_reps; rep++)
		for (int i = 0; i < NCONC; i++) {
			struct conc_run r;

			if (conc_once(key, d, cfg[i][2] ? &mb : NULL, pl->conc_secs, cfg[i][0],
			              cfg[i][1], &r, &bad, out->err, sizeof out->err) != 0) {
				progress("  concurrency: %s", out->err);
				membuf_free(&mb);
				return;
			}
			v[i][rep] = r.wall;
			c[i][rep] = r.cpu;
			s[i][rep] = r.share;
			w[i][rep] = r.wops;
			if (!cfg[i][2])
				checked += r.ops;
		}
	membuf_free(&mb);
	for (int i = 0; i < NCONC; i++) {
		out->ops[i] = median(v[i], pl->conc_reps);
		out->cpu_ops[i] = median(c[i], pl->conc_reps);
		out->share[i] = median(s[i], pl->conc_reps);
		out->wops[i] = median(w[i], pl->conc_reps);
	}
	out->done = 1;
	account(&bad, checked, "concurrent readers");
	progress("  readers, M lookups per CPU-second (wall): 1R %.1f (%.1f), 2R %.1f (%.1f), "
	         "1R+W %.1f (%.1f), 2R+W %.1f (%.1f); independent read 1P %.1f, 2P %.1f",
	         out->cpu_ops[0] / 1e6, out->ops[0] / 1e6, out->cpu_ops[1] / 1e6, out->ops[1] / 1e6,
	         out->cpu_ops[2] / 1e6, out->ops[2] / 1e6, out->cpu_ops[3] / 1e6, out->ops[3] / 1e6,
	         out->cpu_ops[4] / 1e6, out->cpu_ops[5] / 1e6);
}
