/* suites genstress and genthreads: generations under concurrency and crashes.
 *
 * WORKLOAD
 *  Key number idx (0 <= idx < nkeys) is the 8-byte integer idx + 1; test
 *  generation g (1, 2, ...) holds the keys with gs_present(idx, g) (about four
 *  in five, a different set each generation) and gives each the 16-byte
 *  value {w, w} with w = key * SK_MUL ^ g (concur.h's self-checking values).
 *  Every test generation is written by a builder (replace_begin, builder_put,
 *  commit); grows copy a generation without changing it.  The control block
 *  says which test generations exist: `begun` is stored before a build
 *  begins, `published` after its commit returned.
 *
 * WHAT A READER CHECKS, per call
 *  - the value is whole and this key's (sk_check): not torn, not another's;
 *  - its generation g was begun before the call returned (not "future");
 *  - g >= published when the call started: a call that starts after a
 *    commit returned sees the new generation (not "stale");
 *  - g >= every generation this reader (thread or process) saw earlier: no
 *    generation goes back (not "regress");
 *  - the key is in g's key set; a "not found" is allowed only when some
 *    generation the call may have read lacks the key;
 *  - a batch answer comes wholly from one generation: every found key has the
 *    same g, and every absent key is absent from that g;
 *  - hashtable_generation() never goes back;
 *  - no call returns an error, and none waits more than 10 ms.
 *
 * WAITING, ON A SHARED TWO-CORE MACHINE
 *  A call's wall time includes the time the scheduler ran something else.
 *  Each call is timed, and the thread's context switches (getrusage
 *  RUSAGE_THREAD) are read around it: a call that blocked (on a lock, a page,
 *  a system call) makes a voluntary switch; one that was only preempted makes
 *  an involuntary one and no voluntary one.  The 10 ms bound is asserted on
 *  every call that was not preempted; preempted calls' times are printed.
 *
 * CRASHES
 *  A child that builds, grows or commits in a loop is SIGKILLed after a
 *  random delay, 200 times each (the committer's kills are aimed: the
 *  parent spins until a commit begins, then up to 30 us more); then the current data must be one whole
 *  generation (the last committed or the one in flight), hashtable_recover +
 *  hashtable_verify clean, hashtable_segments() the root and the current
 *  data segment (and, for a moment, a retired one this process does not map:
 *  test_only_root_and_current), and /proc/sysvipc/shm no key-0 segment created
 *  by a killed child except the current one.
 *
 * Every data segment the tests see is registered for removal by id
 * (test_register_shmid), so a failing test leaks nothing.
 *
 * Children never call ck_assert: they report through the shared control
 * block and their exit status; the test process asserts.  genthreads never
 * forks, so `make check-tsan` runs it with CK_FORK=no.
 */
#include <pthread.h>
#include <sys/resource.h>
#include <sys/shm.h>

#include "concur.h"

#if defined(__SANITIZE_THREAD__)
#define GS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GS_TSAN 1
#endif
#endif

/* No reader call may wait longer than this (the bound).  Under
 * ThreadSanitizer every instruction of the code a reader waits for (a
 * switching thread's attach, a writer's commit) runs 5-15 times slower, so
 * the bound stretches by 15, the top of that range: stretched by 5 (50 ms),
 * a reader thread waited 86.6 ms once in about 12 TSan runs on a loaded
 * 2-core machine. */
#ifdef GS_TSAN
#define GS_WAIT_MS 150.0
#else
#define GS_WAIT_MS 10.0
#endif
#define GS_VWORDS 2
#define GS_MAX_READERS 8
#define GS_BATCH 16

/* ---- generations of the test ---------------------------------------------- */

static int gs_present(uint32_t idx, uint64_t g) { return (idx * 7u + g) % 5u != 0; }

static void gs_value(uint64_t *v, uint32_t idx, uint64_t g)
{
	sk_fill(v, GS_VWORDS, sk_key(idx), g);
}

/* ---- segments ------------------------------------------------------------- */

/* Registers every segment of the table (root, current, pending, retired). */
static long gs_register(struct hashtable *h)
{
	struct hashtable_segment_info seg[16];
	long n = hashtable_segments(h, seg, 16);
	for (long i = 0; i < n && i < 16; i++)
		test_register_shmid(seg[i].shmid);
	return n;
}

/* The shmid of the table's current data segment, or -1. */
static int gs_current_shmid(struct hashtable *h)
{
	struct hashtable_segment_info seg[16];
	long n = hashtable_segments(h, seg, 16);
	for (long i = 0; i < n && i < 16; i++)
		if (seg[i].role == HASHTABLE_SEG_CURRENT)
			return seg[i].shmid;
	return -1;
}

/* One row of /proc/sysvipc/shm. */
struct gs_shm_row {
	long key;
	int shmid;
	unsigned long size;
	pid_t cpid, lpid;
	unsigned long nattch;
	long long ctime;
	unsigned perms;
};

/* Calls fn for every segment on the machine; returns the rows read, or -1. */
static long gs_scan_shm(void (*fn)(const struct gs_shm_row *, void *), void *arg)
{
	FILE *f = fopen("/proc/sysvipc/shm", "r");
	if (!f)
		return -1;
	char line[512];
	long rows = 0;
	if (!fgets(line, sizeof line, f)) { /* the column titles */
		fclose(f);
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		struct gs_shm_row r;
		int cpid, lpid;
		long long atime, dtime;
		unsigned uid, gid, cuid, cgid;
		if (sscanf(line, "%ld %d %o %lu %d %d %lu %u %u %u %u %lld %lld %lld", &r.key, &r.shmid,
		           &r.perms, &r.size, &cpid, &lpid, &r.nattch, &uid, &gid, &cuid, &cgid,
		           &atime, &dtime, &r.ctime) != 14)
			continue;
		r.cpid = cpid;
		r.lpid = lpid;
		fn(&r, arg);
		rows++;
	}
	fclose(f);
	return rows;
}

/* Whether shmid is listed in /proc/sysvipc/shm (removed-but-attached
 * segments are listed; freed ones are not). */
struct gs_find { int shmid, found; struct gs_shm_row row; };

static void gs_find_row(const struct gs_shm_row *r, void *arg)
{
	struct gs_find *f = arg;
	if (r->shmid == f->shmid) {
		f->found = 1;
		f->row = *r;
	}
}

/* "size 65536 nattch 1 cpid 12 lpid 34 mode 01600" for an assertion message. */
static const char *gs_shm_describe(int shmid, char *buf, size_t n)
{
	struct gs_find f = {shmid, 0, {0}};
	if (gs_scan_shm(gs_find_row, &f) < 0 || !f.found)
		snprintf(buf, n, "not listed");
	else
		snprintf(buf, n, "size %lu nattch %lu cpid %d lpid %d mode 0%o ctime %lld",
		         f.row.size, f.row.nattch, (int)f.row.cpid, (int)f.row.lpid, f.row.perms,
		         f.row.ctime);
	return buf;
}

static int gs_shm_exists(int shmid)
{
	struct gs_find f = {shmid, 0, {0}};
	ck_assert_int_ge(gs_scan_shm(gs_find_row, &f), 0);
	return f.found;
}

/* The root and the current data segment, and nothing else once other
 * processes' moments are over (test_only_root_and_current, testutil.h).
 * The crash tests once asked for exactly two segments at once: that failed
 * when another test process's hashtable_segments() held the retired
 * generation, about 1 run in 3 under ThreadSanitizer, whose slower test
 * process widens the window, and in every run of the plain build with a
 * second process calling hashtable_segments() in a loop;
 * test_genstress_foreign_attach makes that case on purpose. */
static void gs_assert_only_root_and_current(struct hashtable *h, const char *when, int it)
{
	char at[96];
	snprintf(at, sizeof at, "%s %d", when, it);
	test_assert_only_root_and_current(h, at);
}

/* ---- the control block ------------------------------------------------------ */

struct gs_rslot { /* one reader's counts; written by that reader only */
	uint64_t calls, found, absent, batches;
	uint64_t torn, wrong, future, stale, regress, badset, miss, mixed, errors;
	uint64_t libgen_regress;
	int64_t first_error;
	uint64_t first_bad_key, first_bad_gen;
	char first_bad[16];
	uint64_t advanced;       /* times its generation rose */
	uint64_t max_ns;         /* slowest call, wall clock */
	uint64_t max_quiet_ns;   /* slowest call the scheduler did not preempt */
	uint64_t slow_quiet;     /* such calls over the bound */
	uint64_t slow_preempted; /* preempted calls over the bound (printed only) */
	uint64_t blocked;        /* calls that made a voluntary context switch */
	uint64_t max_clean_ns;   /* slowest call with no context switch at all */
	uint64_t max_slept_ns;   /* slowest call that slept and was not preempted */
	int done;
};

struct gs_shared {
	_Alignas(64) _Atomic uint64_t begun;     /* newest test generation begun */
	_Alignas(64) _Atomic uint64_t published; /* newest whose commit returned */
	_Alignas(64) _Atomic int stop;
	_Alignas(64) _Atomic uint64_t inserted;  /* autogrow: keys [0, inserted) are in */
	/* crash tests: the child's progress */
	_Alignas(64) _Atomic uint64_t inflight, done;
	_Atomic int phase, ready;
	_Atomic uint64_t ops, commits_begun;
	_Atomic int child_rc, child_where;
	struct gs_rslot r[GS_MAX_READERS];
};

static struct gs_shared *gs_shared_new(void)
{
	struct gs_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
	                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	memset(sh, 0, sizeof *sh);
	return sh;
}

static void gs_shared_free(struct gs_shared *sh) { munmap(sh, sizeof *sh); }

/* ---- the builder ------------------------------------------------------------- */

/* Builds test generation g of nkeys keys and commits it.  Returns 0, or the
 * first failing call's code with *where naming it. */
static int gs_replace(struct hashtable *h, struct gs_shared *sh, uint32_t nkeys, uint64_t g,
                      const char **where)
{
	struct hashtable_builder *b = NULL;
	atomic_store(&sh->begun, g);
	int rc = hashtable_replace_begin(h, NULL, &b);
	if (rc) {
		*where = "hashtable_replace_begin";
		return rc;
	}
	gs_register(h); /* the pending segment too */
	uint64_t v[GS_VWORDS];
	for (uint32_t idx = 0; idx < nkeys; idx++) {
		if (!gs_present(idx, g))
			continue;
		uint64_t k = sk_key(idx);
		gs_value(v, idx, g);
		rc = hashtable_builder_put(b, &k, v);
		if (rc != 0) {
			hashtable_replace_abort(b);
			*where = "hashtable_builder_put (want 0: a new key)";
			return rc ? rc : -1;
		}
	}
	rc = hashtable_replace_commit(b);
	if (rc) {
		*where = "hashtable_replace_commit";
		return rc;
	}
	atomic_store(&sh->published, g);
	return 0;
}

/* Every key holds generation g's state: present keys with their value. */
static void gs_assert_generation(struct hashtable *h, uint32_t nkeys, uint64_t g, const char *when)
{
	uint64_t bad = 0, first = 0;
	for (uint32_t idx = 0; idx < nkeys; idx++) {
		uint64_t k = sk_key(idx), v[GS_VWORDS], got = 0;
		int rc = hashtable_search(h, &k, v);
		int ok = gs_present(idx, g)
		             ? rc == 0 && sk_check(v, GS_VWORDS, k, &got) == SK_OK && got == g
		             : rc == -1;
		if (!ok && !bad++)
			first = k;
	}
	ck_assert_msg(bad == 0, "%s: %" PRIu64 " keys not in generation %" PRIu64 "'s state (first %"
	              PRIu64 ")", when, bad, g, first);
}

/* ---- readers ---------------------------------------------------------------- */

static void gs_switches(long *vol, long *invol)
{
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	*vol = ru.ru_nvcsw;
	*invol = ru.ru_nivcsw;
}

static void gs_bad(struct gs_rslot *s, uint64_t *counter, const char *what, uint64_t key,
                   uint64_t g)
{
	if (!s->torn && !s->wrong && !s->future && !s->stale && !s->regress && !s->badset &&
	    !s->miss && !s->mixed) {
		s->first_bad_key = key;
		s->first_bad_gen = g;
		snprintf(s->first_bad, sizeof s->first_bad, "%s", what);
	}
	(*counter)++;
}

/* Times one call: t0 and the switch counts were taken before it. */
static void gs_timed(struct gs_rslot *s, uint64_t t0, long vol0, long invol0)
{
	uint64_t dt = sk_now_ns() - t0;
	if (dt > s->max_ns)
		s->max_ns = dt;
	if (dt < 500000) /* under half a millisecond: not worth a system call */
		return;
	long vol, invol;
	gs_switches(&vol, &invol);
	if (vol != vol0)
		s->blocked++;
	int preempted = invol != invol0;
	uint64_t *cls = preempted ? NULL : vol != vol0 ? &s->max_slept_ns : &s->max_clean_ns;
	if (cls && dt > *cls)
		*cls = dt;
	uint64_t bound = sk_bound_ns(GS_WAIT_MS);
	if (!preempted) {
		if (dt > s->max_quiet_ns)
			s->max_quiet_ns = dt;
		s->slow_quiet += dt > bound;
	} else {
		s->slow_preempted += dt > bound;
	}
}

/* One answer for key idx read from generation g (0: not found); lo and hi
 * bound the generations the call may have read. */
static void gs_judge(struct gs_rslot *s, uint32_t idx, int found, const uint64_t *v, uint64_t lo,
                     uint64_t hi, uint64_t *floor)
{
	uint64_t k = sk_key(idx), g = 0;
	if (!found) {
		s->absent++;
		for (uint64_t c = lo; c <= hi; c++)
			if (!gs_present(idx, c))
				return;
		gs_bad(s, &s->miss, "miss", k, lo);
		return;
	}
	s->found++;
	enum sk_verdict vd = sk_check(v, GS_VWORDS, k, &g);
	if (vd == SK_TORN) {
		gs_bad(s, &s->torn, "torn", k, 0);
		return;
	}
	if (vd == SK_WRONG) {
		gs_bad(s, &s->wrong, "wrong key", k, 0);
		return;
	}
	if (g > hi)
		gs_bad(s, &s->future, "future", k, g);
	else if (g < *floor)
		gs_bad(s, &s->regress, "regress", k, g);
	else if (g < lo)
		gs_bad(s, &s->stale, "stale", k, g);
	else if (!gs_present(idx, g))
		gs_bad(s, &s->badset, "not in set", k, g);
	if (g > *floor) {
		*floor = g;
		s->advanced++;
	}
}

/* Searches random keys (single and batched) until sh->stop, checking each
 * answer; bursts of 256 calls (about 100 us) with a 1 ms sleep between
 * them.  Seven readers that never slept would keep both cores' run queues
 * full by themselves, and every wait would then measure how long the
 * scheduler leaves a preempted writer (holding the kernel's IPC lock in
 * shmget or shmat) off the CPU, not the library. */
static void gs_reader(struct hashtable *h, struct gs_shared *sh, struct gs_rslot *s,
                      uint32_t nkeys, uint64_t seed)
{
	uint64_t rng = seed | 1, floor = 0, libgen = 0;
	uint64_t keys[GS_BATCH], vals[GS_BATCH * GS_VWORDS], v[GS_VWORDS];
	int found[GS_BATCH];
	uint32_t idxs[GS_BATCH];
	while (!atomic_load(&sh->stop)) {
		for (int n = 0; n < 256; n++) {
			uint64_t pub = atomic_load(&sh->published);
			uint64_t lo = pub > floor ? pub : floor;
			long vol0, invol0;
			gs_switches(&vol0, &invol0);
			uint64_t t0 = sk_now_ns();
			if (n % 8 == 7) { /* a batch: wholly one generation */
				for (int i = 0; i < GS_BATCH; i++) {
					idxs[i] = (uint32_t)(sk_rand(&rng) % nkeys);
					keys[i] = sk_key(idxs[i]);
				}
				long rc = hashtable_search_batch(h, GS_BATCH, keys, vals, found);
				gs_timed(s, t0, vol0, invol0);
				uint64_t hi = atomic_load(&sh->begun);
				s->calls++;
				s->batches++;
				if (rc < 0) {
					if (!s->errors++)
						s->first_error = rc;
					continue;
				}
				uint64_t bg = 0, g;
				uint64_t f0 = floor;
				for (int i = 0; i < GS_BATCH; i++) {
					uint64_t *bv = vals + (size_t)i * GS_VWORDS;
					uint64_t fl = f0;
					gs_judge(s, idxs[i], found[i] == 0, bv, lo, hi, &fl);
					if (fl > floor)
						floor = fl;
					if (found[i] == 0 &&
					    sk_check(bv, GS_VWORDS, keys[i], &g) == SK_OK) {
						if (bg && g != bg)
							gs_bad(s, &s->mixed, "mixed batch", keys[i], g);
						bg = g;
					}
				}
				for (int i = 0; bg && i < GS_BATCH; i++)
					if (found[i] != 0 && gs_present(idxs[i], bg))
						gs_bad(s, &s->mixed, "batch miss", keys[i], bg);
			} else {
				uint32_t idx = (uint32_t)(sk_rand(&rng) % nkeys);
				uint64_t k = sk_key(idx);
				int rc = hashtable_search(h, &k, v);
				gs_timed(s, t0, vol0, invol0);
				uint64_t hi = atomic_load(&sh->begun);
				s->calls++;
				if (rc != 0 && rc != -1) {
					if (!s->errors++)
						s->first_error = rc;
					continue;
				}
				gs_judge(s, idx, rc == 0, v, lo, hi, &floor);
			}
		}
		uint64_t lg = hashtable_generation(h);
		if (lg < libgen)
			s->libgen_regress++;
		libgen = lg;
		sk_sleep_us(1000);
	}
	s->done = 1;
}

static void gs_rslot_print(const char *who, int i, const struct gs_rslot *s)
{
	printf("%s reader %d: %" PRIu64 " calls (%" PRIu64 " batches), %" PRIu64 " found, %" PRIu64
	       " absent, generation rose %" PRIu64 " times; slowest call %.3f ms, slowest "
	       "unpreempted %.3f ms (no switch %.3f ms, slept %.3f ms), %" PRIu64 " slept, %" PRIu64
	       " preempted over %.0f ms\n",
	       who, i, s->calls, s->batches, s->found, s->absent, s->advanced,
	       (double)s->max_ns / 1e6, (double)s->max_quiet_ns / 1e6,
	       (double)s->max_clean_ns / 1e6, (double)s->max_slept_ns / 1e6, s->blocked,
	       s->slow_preempted, GS_WAIT_MS);
}

static void gs_assert_reader(const char *who, int i, const struct gs_rslot *s)
{
	ck_assert_msg(s->done, "%s reader %d did not finish", who, i);
	ck_assert_msg(s->calls > 0, "%s reader %d made no call", who, i);
	ck_assert_msg(s->errors == 0, "%s reader %d: %" PRIu64 " calls failed, first with %" PRId64
	              " (%s)", who, i, s->errors, s->first_error,
	              hashtable_strerror((int)s->first_error));
	uint64_t bad = s->torn + s->wrong + s->future + s->stale + s->regress + s->badset +
	               s->miss + s->mixed;
	ck_assert_msg(bad == 0, "%s reader %d: %" PRIu64 " bad answers (torn %" PRIu64 ", wrong key %"
	              PRIu64 ", future %" PRIu64 ", stale %" PRIu64 ", regress %" PRIu64
	              ", not in its generation %" PRIu64 ", miss %" PRIu64 ", batch of two "
	              "generations %" PRIu64 "); first: %s, key %" PRIu64 ", generation %" PRIu64,
	              who, i, bad, s->torn, s->wrong, s->future, s->stale, s->regress, s->badset,
	              s->miss, s->mixed, s->first_bad, s->first_bad_key, s->first_bad_gen);
	ck_assert_msg(s->libgen_regress == 0, "%s reader %d: hashtable_generation() went back %"
	              PRIu64 " times", who, i, s->libgen_regress);
	ck_assert_msg(s->slow_quiet == 0, "%s reader %d: %" PRIu64 " calls waited more than %.0f ms "
	              "without being preempted (slowest %.3f ms)", who, i, s->slow_quiet,
	              GS_WAIT_MS / test_scale(), (double)s->max_quiet_ns / 1e6);
}

/* ---- the generation stress ------------------------------------------------- */

struct gs_thread {
	pthread_t tid;
	struct hashtable *h;
	struct gs_shared *sh;
	struct gs_rslot *slot;
	uint32_t nkeys;
	uint64_t seed;
};

static void *gs_thread_main(void *arg)
{
	struct gs_thread *t = arg;
	gs_reader(t->h, t->sh, t->slot, t->nkeys, t->seed);
	return NULL;
}

/* A new table of nkeys keys at generation 1; its key in *key (chosen when
 * *key is 0). */
static struct hashtable *gs_table(struct gs_shared *sh, uint32_t nkeys, double slack, key_t *key)
{
	struct hashtable_config cfg = {0};
	cfg.ipc_key = *key;
	cfg.key_size = 8;
	cfg.value_size = GS_VWORDS * 8;
	cfg.entries = (uint64_t)(nkeys * slack);
	cfg.max_load = 0.8;
	struct hashtable *h = test_table_create(&cfg);
	gs_register(h);
	*key = cfg.ipc_key;
	const char *where = "";
	int rc = gs_replace(h, sh, nkeys, 1, &where);
	ck_assert_msg(rc == 0, "first build: %s: %d (%s)", where, rc, hashtable_strerror(rc));
	return h;
}

/* `nproc` reader processes (each its own handle) and `nthreads` reader
 * threads sharing the writer's handle search while the writer commits
 * `replaces` generations and `grows` grows spread among them. */
static void gs_run(const char *name, int nproc, int nthreads, uint64_t replaces, int grows)
{
	const uint32_t nkeys = 2048;
	struct gs_shared *sh = gs_shared_new();
	uint64_t seed = sk_seed(name);
	key_t key = 0;
	struct hashtable *h = gs_table(sh, nkeys, 1.25, &key);
	ck_assert_int_le(nproc + nthreads, GS_MAX_READERS);

	pid_t pids[GS_MAX_READERS];
	for (int i = 0; i < nproc; i++) {
		pids[i] = sk_fork(240);
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			struct hashtable *rh = hashtable_open_key(key, HASHTABLE_RDONLY);
			if (!rh)
				_exit(90);
			gs_reader(rh, sh, &sh->r[i], nkeys, seed + 101 * (uint64_t)(i + 1));
			sk_child_exit(rh, 0);
		}
	}
	struct gs_thread th[GS_MAX_READERS];
	for (int i = 0; i < nthreads; i++) {
		th[i] = (struct gs_thread){.h = h, .sh = sh, .slot = &sh->r[nproc + i], .nkeys = nkeys,
		                           .seed = seed + 7919 * (uint64_t)(i + 1)};
		int rc = pthread_create(&th[i].tid, NULL, gs_thread_main, &th[i]);
		ck_assert_msg(rc == 0, "pthread_create: %s", strerror(rc));
	}

	/* the writer: this thread */
	uint64_t t0 = sk_now_ns(), libgen = hashtable_generation(h), max_commit_ns = 0;
	uint64_t entries = (uint64_t)(nkeys * 1.25);
	int wrc = 0, grown = 0;
	const char *where = "";
	uint64_t done = 0, g = 1;
	for (; done < replaces && !wrc; done++) {
		uint64_t c0 = sk_now_ns();
		wrc = gs_replace(h, sh, nkeys, ++g, &where);
		uint64_t dt = sk_now_ns() - c0;
		if (dt > max_commit_ns)
			max_commit_ns = dt;
		if (!wrc && hashtable_generation(h) != ++libgen) {
			where = "hashtable_generation after a commit (want one more)";
			wrc = -1;
		}
		if (!wrc && grows && (done + 1) % (replaces / (uint64_t)grows) == 0 && grown < grows) {
			entries += nkeys / 4;
			wrc = hashtable_grow(h, entries);
			where = "hashtable_grow";
			gs_register(h);
			grown++;
			if (!wrc && hashtable_generation(h) != ++libgen) {
				where = "hashtable_generation after a grow (want one more)";
				wrc = -1;
			}
		}
	}
	double el = (double)(sk_now_ns() - t0) / 1e9;
	atomic_store(&sh->stop, 1);
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i].tid, NULL);
	int st[GS_MAX_READERS];
	for (int i = 0; i < nproc; i++)
		st[i] = sk_reap(pids[i]);

	printf("%s: %" PRIu64 " replaces and %d grows of %u keys in %.2f s; slowest replace %.3f ms\n",
	       name, done, grown, nkeys, el, (double)max_commit_ns / 1e6);
	for (int i = 0; i < nproc + nthreads; i++)
		gs_rslot_print(i < nproc ? "process" : "thread", i, &sh->r[i]);
	fflush(stdout);
	ck_assert_msg(wrc == 0, "writer, after %" PRIu64 " replaces: %s: %d (%s)", done, where, wrc,
	              hashtable_strerror(wrc));
	ck_assert_int_eq(grown, grows);
	for (int i = 0; i < nproc; i++)
		SK_ASSERT_EXIT0(st[i], "reader process");
	for (int i = 0; i < nproc + nthreads; i++)
		gs_assert_reader(i < nproc ? "process" : "thread", i, &sh->r[i]);
	for (int i = 0; i < nproc + nthreads; i++)
		ck_assert_msg(sh->r[i].advanced > 1, "reader %d never saw a new generation", i);

	sk_assert_verify(h, "after the generation stress");
	gs_assert_generation(h, nkeys, g, "after the generation stress");
	gs_assert_only_root_and_current(h, "after the generation stress", 0);
	test_table_destroy(h);
	gs_shared_free(sh);
}

START_TEST(test_genstress_processes_and_threads)
{
	gs_run("genstress_processes_and_threads", 3, 4, sk_scaled(1000, 50), 20);
}
END_TEST

START_TEST(test_genthreads_shared_handle)
{
	gs_run("genthreads_shared_handle", 0, 4, sk_scaled(1000, 50), 20);
}
END_TEST

/* ---- SIGKILL at random points ------------------------------------------------ */

enum gs_mode { GS_BUILDER, GS_GROWER, GS_COMMITTER };
enum gs_phase { GS_IDLE, GS_BEGIN, GS_PUT, GS_COMMIT, GS_GROW, GS_NPHASES };
static const char *const gs_phase_name[GS_NPHASES] = {"between calls", "replace_begin",
                                                      "builder_put", "replace_commit",
                                                      "grow"};

/* The child's loop: builds (builder, committer) or grows (grower) until
 * killed, publishing its phase and the generation in flight. */
static _Noreturn void gs_crash_child(key_t key, struct gs_shared *sh, enum gs_mode mode,
                                     uint32_t nkeys)
{
	struct hashtable *h = hashtable_open_key(key, 0);
	if (!h)
		_exit(90);
	atomic_store(&sh->ready, 1);
	uint64_t v[GS_VWORDS];
	for (;;) {
		int rc;
		if (mode == GS_GROWER) {
			struct hashtable_stats st;
			rc = hashtable_stats(h, &st);
			if (rc) {
				atomic_store(&sh->child_where, 1);
				atomic_store(&sh->child_rc, rc);
				break;
			}
			atomic_store(&sh->phase, GS_GROW);
			rc = hashtable_grow(h, st.max_count + 64);
			atomic_store(&sh->phase, GS_IDLE);
			if (rc) {
				atomic_store(&sh->child_where, 2);
				atomic_store(&sh->child_rc, rc);
				break;
			}
			atomic_fetch_add(&sh->ops, 1);
			continue;
		}
		uint64_t g = atomic_load(&sh->done) + 1;
		atomic_store(&sh->inflight, g);
		struct hashtable_builder *b = NULL;
		atomic_store(&sh->phase, GS_BEGIN);
		rc = hashtable_replace_begin(h, NULL, &b);
		if (rc) {
			atomic_store(&sh->child_where, 3);
			atomic_store(&sh->child_rc, rc);
			break;
		}
		atomic_store(&sh->phase, GS_PUT);
		for (uint32_t idx = 0; idx < nkeys && !rc; idx++) {
			if (!gs_present(idx, g))
				continue;
			uint64_t k = sk_key(idx);
			gs_value(v, idx, g);
			rc = hashtable_builder_put(b, &k, v);
		}
		if (rc) {
			atomic_store(&sh->child_where, 4);
			atomic_store(&sh->child_rc, rc);
			break;
		}
		atomic_store(&sh->phase, GS_COMMIT);
		atomic_fetch_add(&sh->commits_begun, 1);
		rc = hashtable_replace_commit(b);
		if (rc) {
			atomic_store(&sh->child_where, 5);
			atomic_store(&sh->child_rc, rc);
			break;
		}
		atomic_store(&sh->done, g);
		atomic_store(&sh->phase, GS_IDLE);
		atomic_fetch_add(&sh->ops, 1);
	}
	_exit(80);
}

/* A killed child: its pid and when it lived (CLOCK_REALTIME seconds, the
 * clock of a segment's ctime).  The machine's pids wrap (pid_max 32768 is
 * common), so a segment counts as the child's only when it was made while
 * the child lived. */
struct gs_child {
	pid_t pid;
	long long born, died;
};

static long long gs_realtime_s(void) { return (long long)time(NULL); }

/* Key-0 segments created by one of the killed children. */
struct gs_leaks {
	const struct gs_child *pids;
	size_t npids;
	int current;
	int register_only;
	int leaked, first_shmid;
	pid_t first_cpid;
};

static void gs_leak_row(const struct gs_shm_row *r, void *arg)
{
	struct gs_leaks *l = arg;
	if (r->key != 0)
		return;
	for (size_t i = 0; i < l->npids; i++) {
		if (r->cpid != l->pids[i].pid || r->ctime < l->pids[i].born ||
		    r->ctime > l->pids[i].died)
			continue;
		if (l->register_only) {
			test_register_shmid(r->shmid);
		} else if (r->shmid != l->current && !l->leaked++) {
			l->first_shmid = r->shmid;
			l->first_cpid = r->cpid;
		}
		return;
	}
}

/* Which generation the table holds: `done` or `inflight`, wholly.  Returns
 * it, or 0 (and *bad keys) when no single generation fits. */
static uint64_t gs_which_generation(struct hashtable *h, uint32_t nkeys, uint64_t a, uint64_t b,
                                    uint64_t *bad)
{
	uint64_t cand[2] = {a, b};
	for (int c = 0; c < 2; c++) {
		uint64_t g = cand[c], wrong = 0;
		for (uint32_t idx = 0; idx < nkeys; idx++) {
			uint64_t k = sk_key(idx), v[GS_VWORDS], got = 0;
			int rc = hashtable_search(h, &k, v);
			int ok = gs_present(idx, g) ? rc == 0 &&
			                                  sk_check(v, GS_VWORDS, k, &got) == SK_OK &&
			                                  got == g
			                            : rc == -1;
			wrong += !ok;
		}
		if (!wrong)
			return g;
		*bad = wrong;
	}
	return 0;
}

static void gs_crash(const char *name, enum gs_mode mode, uint32_t nkeys, uint64_t max_delay_us)
{
	struct gs_shared *sh = gs_shared_new();
	uint64_t rng = sk_seed(name);
	key_t key = 0;
	struct hashtable *h = gs_table(sh, nkeys, mode == GS_GROWER ? 1.25 : 1.5, &key);
	atomic_store(&sh->done, 1);
	atomic_store(&sh->inflight, 1);
	/* A commit lasts microseconds: on a loaded machine a whole run of kills
	 * can land after it.  The committer's aim shortens after each kill that
	 * overshot into the next build (and lengthens after one that did not), and
	 * up to three times the planned kills are made until one lands inside a
	 * commit. */
	uint64_t planned = sk_scaled(200, 10), hits[GS_NPHASES] = {0}, commits_seen = 0;
	uint64_t most = mode == GS_COMMITTER ? 3 * planned : planned, kills = 0;
	uint64_t aim_ns = max_delay_us * 1000;
	struct gs_child *pids = calloc(most, sizeof *pids);
	ck_assert_ptr_nonnull(pids);
	uint64_t t0 = sk_now_ns();
	for (uint64_t it = 0; it < most && (it < planned || !hits[GS_COMMIT]); it++, kills++) {
		atomic_store(&sh->ready, 0);
		atomic_store(&sh->phase, GS_IDLE);
		pids[it].born = gs_realtime_s();
		pid_t pid = sk_fork(60);
		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			gs_crash_child(key, sh, mode, nkeys);
		pids[it].pid = pid;
		uint64_t wait_end = sk_now_ns() + sk_bound_ns(5000);
		while (!atomic_load(&sh->ready) && sk_now_ns() < wait_end)
			sk_sleep_us(50);
		ck_assert_msg(atomic_load(&sh->ready), "kill %" PRIu64 ": child did not start", it);
		if (mode == GS_COMMITTER) {
			/* aim at the commit: wait for the child to reach one (after a
			 * random number of builds), then let it run up to max_delay_us */
			uint64_t skip = sk_rand(&rng) % 4, seen = atomic_load(&sh->commits_begun);
			uint64_t end = sk_now_ns() + sk_bound_ns(2000);
			while (atomic_load(&sh->commits_begun) <= seen + skip && sk_now_ns() < end)
				;
			/* a commit takes tens of microseconds: a sleep would
			 * overshoot it, so spin */
			uint64_t until = sk_now_ns() + sk_rand(&rng) % (aim_ns + 1);
			while (sk_now_ns() < until)
				;
		} else {
			sk_delay_us(sk_rand(&rng) % (max_delay_us + 1));
		}
		int ph = atomic_load(&sh->phase);
		if (mode == GS_COMMITTER && ph == GS_BEGIN) /* overshot the commit */
			aim_ns = aim_ns * 3 / 4;
		else if (mode == GS_COMMITTER && aim_ns < max_delay_us * 1000) /* hovers near it */
			aim_ns += aim_ns / 8 + 100;
		ck_assert_int_eq(kill(pid, SIGKILL), 0);
		int st = sk_reap(pid);
		pids[it].died = gs_realtime_s();
		char buf[96];
		ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		              "kill %" PRIu64 ": the child ended by itself (%s), failing call %d: %d (%s)",
		              it, sk_status_text(st, buf, sizeof buf), atomic_load(&sh->child_where),
		              atomic_load(&sh->child_rc), hashtable_last_error());
		hits[ph]++;
		/* whatever the child made is registered before anything is checked */
		struct gs_leaks reg = {.pids = &pids[it], .npids = 1, .register_only = 1};
		ck_assert_int_ge(gs_scan_shm(gs_leak_row, &reg), 0);

		int rc = hashtable_recover(h);
		ck_assert_msg(rc == 0 || rc == 1, "kill %" PRIu64 " (in %s): hashtable_recover: %d (%s)",
		              it, gs_phase_name[ph], rc, hashtable_strerror(rc));
		rc = hashtable_verify(h);
		ck_assert_msg(rc == 0, "kill %" PRIu64 " (in %s): hashtable_verify: %d (%s) %s", it,
		              gs_phase_name[ph], rc, hashtable_strerror(rc), hashtable_last_error());

		uint64_t done = atomic_load(&sh->done), inflight = atomic_load(&sh->inflight), bad = 0;
		uint64_t g = gs_which_generation(h, nkeys, done, inflight, &bad);
		ck_assert_msg(g != 0, "kill %" PRIu64 " (in %s): the data is neither generation %" PRIu64
		              " (committed) nor %" PRIu64 " (in flight): %" PRIu64 " keys differ",
		              it, gs_phase_name[ph], done, inflight, bad);
		if (g != done) { /* killed after publishing, before it knew */
			commits_seen++;
			atomic_store(&sh->done, g);
		}
		atomic_store(&sh->inflight, atomic_load(&sh->done));

		gs_assert_only_root_and_current(h, name, (int)it);
		struct gs_leaks l = {.pids = pids, .npids = it + 1, .current = gs_current_shmid(h)};
		ck_assert_int_ge(l.current, 0);
		test_register_shmid(l.current);
		ck_assert_int_ge(gs_scan_shm(gs_leak_row, &l), 0);
		char d[160];
		ck_assert_msg(l.leaked == 0, "kill %" PRIu64 " (in %s): %d key-0 segment(s) made by "
		              "killed children remain (first: shmid %d by pid %d: %s; current is %d)", it,
		              gs_phase_name[ph], l.leaked, l.first_shmid, (int)l.first_cpid,
		              gs_shm_describe(l.first_shmid, d, sizeof d), l.current);
	}
	printf("%s: %" PRIu64 " kills in %.2f s; the child was in:", name, kills,
	       (double)(sk_now_ns() - t0) / 1e9);
	for (int p = 0; p < GS_NPHASES; p++)
		printf(" %s %" PRIu64 ",", gs_phase_name[p], hits[p]);
	printf(" published but unacknowledged %" PRIu64 "\n", commits_seen);
	fflush(stdout);
	/* the kills landed where this test aims them at least sometimes */
	if (mode == GS_GROWER)
		ck_assert_msg(hits[GS_GROW] > 0, "no kill landed inside hashtable_grow");
	else if (mode == GS_BUILDER)
		ck_assert_msg(hits[GS_PUT] > 0, "no kill landed inside the build");
	else
		ck_assert_msg(hits[GS_COMMIT] > 0 || kills < 100, "no kill landed inside a commit");
	gs_assert_generation(h, nkeys, atomic_load(&sh->done), name);
	free(pids);
	test_table_destroy(h);
	gs_shared_free(sh);
}

START_TEST(test_genstress_kill_builder)
{
	gs_crash("genstress_kill_builder", GS_BUILDER, 8192, 3000);
}
END_TEST

START_TEST(test_genstress_kill_grower)
{
	gs_crash("genstress_kill_grower", GS_GROWER, 2048, 2000);
}
END_TEST

START_TEST(test_genstress_kill_committer)
{
	gs_crash("genstress_kill_committer", GS_COMMITTER, 32, 30);
}
END_TEST

/* ---- an idle reader pins the old generation ---------------------------------- */

/* The reader child: on each byte from the pipe, 'o' opens the table, 's'
 * searches key 1 and reports the generation it read (0: failed), 'c' closes
 * its handle and reports 1. */
static _Noreturn void gs_idle_child(key_t key, int in, int out)
{
	struct hashtable *h = NULL;
	char c;
	while (sk_read_all(in, &c, 1) == 1) {
		uint64_t g = 0;
		if (c == 'o') {
			h = hashtable_open_key(key, HASHTABLE_RDONLY);
			g = h != NULL;
		} else if (c == 's' && h) {
			uint64_t k = sk_key(1), v[GS_VWORDS]; /* idx 1: present in gens 1..3 */
			if (hashtable_search(h, &k, v) != 0 ||
			    sk_check(v, GS_VWORDS, k, &g) != SK_OK)
				g = 0;
		} else if (c == 'c') {
			hashtable_close(h);
			h = NULL;
			g = 1;
		}
		if (sk_write_all(out, &g, sizeof g))
			_exit(91);
	}
	if (h)
		hashtable_close(h);
	_exit(0);
}

static uint64_t gs_ask(int to, int from, char c)
{
	uint64_t g = 0;
	ck_assert_int_eq(sk_write_all(to, &c, 1), 0);
	ck_assert_uint_eq(sk_read_all(from, &g, sizeof g), sizeof g);
	return g;
}

static int gs_role_of(struct hashtable *h, int shmid)
{
	struct hashtable_segment_info seg[16];
	long n = hashtable_segments(h, seg, 16);
	for (long i = 0; i < n && i < 16; i++)
		if (seg[i].shmid == shmid)
			return seg[i].role;
	return 0;
}

START_TEST(test_genstress_idle_reader_pins)
{
	const uint32_t nkeys = 256;
	struct gs_shared *sh = gs_shared_new();
	key_t key = test_unique_key();
	int to[2], from[2];
	ck_assert_int_eq(pipe(to), 0);
	ck_assert_int_eq(pipe(from), 0);
	pid_t pid = sk_fork(60);
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(to[1]);
		close(from[0]);
		gs_idle_child(key, to[0], from[1]);
	}
	close(to[0]);
	close(from[1]);
	/* forked before the table exists: a child inherits its parent's
	 * attachments, which would pin generation 1 until it exits */
	struct hashtable *h = gs_table(sh, nkeys, 1.25, &key);
	ck_assert_uint_eq(gs_ask(to[1], from[0], 'o'), 1);
	ck_assert_uint_eq(gs_ask(to[1], from[0], 's'), 1);

	const char *where = "";
	for (uint64_t g = 2; g <= 3; g++) {
		int old = gs_current_shmid(h);
		ck_assert_int_ge(old, 0);
		int rc = gs_replace(h, sh, nkeys, g, &where);
		ck_assert_msg(rc == 0, "%s: %d (%s)", where, rc, hashtable_strerror(rc));
		gs_register(h);
		/* the idle reader still holds generation g - 1 */
		ck_assert_msg(gs_shm_exists(old), "generation %" PRIu64 "'s segment %d was freed while "
		              "a reader still had it attached", g - 1, old);
		ck_assert_msg(gs_role_of(h, old) == HASHTABLE_SEG_RETIRED,
		              "hashtable_segments does not list the pinned segment %d as retired "
		              "(role %d)", old, gs_role_of(h, old));
		if (g == 2) {
			/* its next call follows, and the old segment goes */
			ck_assert_uint_eq(gs_ask(to[1], from[0], 's'), 2);
			char why[256];
			ck_assert_msg(test_segment_freed(old, 1000, why, sizeof why), "generation 1 "
			              "remains after its last reader (%d) moved on: %s", (int)pid, why);
		} else {
			ck_assert_uint_eq(gs_ask(to[1], from[0], 'c'), 1);
			char why[256];
			ck_assert_msg(test_segment_freed(old, 1000, why, sizeof why), "generation 2 "
			              "remains after its last reader (%d) closed: %s", (int)pid, why);
		}
		gs_assert_only_root_and_current(h, "idle reader", (int)g);
	}
	close(to[1]);
	close(from[0]);
	int status = sk_reap(pid);
	SK_ASSERT_EXIT0(status, "idle reader");
	test_table_destroy(h);
	gs_shared_free(sh);
}
END_TEST

/* ---- a retired generation held by another process for a moment ------------- */

/* The holder child, forked before the table exists (so it inherits none of
 * its attachments): reads a shmid from the pipe, attaches it read-only, as
 * another process's hashtable_segments() does to read a segment's header,
 * and reports 1 (0: could not); on the next byte it waits hold_us, then
 * detaches and exits. */
static _Noreturn void gs_holder_child(int in, int out, uint64_t hold_us)
{
	int shmid;
	if (sk_read_all(in, &shmid, sizeof shmid) != sizeof shmid)
		_exit(93);
	void *p = shmat(shmid, NULL, SHM_RDONLY);
	char ok = p != (void *)-1, c;
	if (sk_write_all(out, &ok, 1) || sk_read_all(in, &c, 1) != 1)
		_exit(94);
	sk_sleep_us(hold_us);
	if (ok)
		shmdt(p);
	_exit(ok ? 0 : 95);
}

/* What the crash tests' segment check allows and what it does not: a
 * retired generation that another process holds for a moment (as a
 * concurrent hashtable_segments() anywhere on the machine does) is waited
 * for; one that this process still maps (here an idle second handle) fails
 * at once, without waiting. */
START_TEST(test_genstress_foreign_attach)
{
	const uint32_t nkeys = 256;
	struct gs_shared *sh = gs_shared_new();
	key_t key = test_unique_key();
	int to[2], from[2];
	ck_assert_int_eq(pipe(to), 0);
	ck_assert_int_eq(pipe(from), 0);
	uint64_t hold_ns = sk_bound_ns(100);
	pid_t pid = sk_fork(60);
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(to[1]);
		close(from[0]);
		gs_holder_child(to[0], from[1], hold_ns / 1000);
	}
	close(to[0]);
	close(from[1]);
	struct hashtable *h = gs_table(sh, nkeys, 1.25, &key);
	const char *where = "";
	char why[768];

	/* another process holds generation 1 across the commit of 2 */
	int old = gs_current_shmid(h);
	ck_assert_int_ge(old, 0);
	char ok = 0;
	ck_assert_int_eq(sk_write_all(to[1], &old, sizeof old), 0);
	ck_assert_uint_eq(sk_read_all(from[0], &ok, 1), 1);
	ck_assert_msg(ok == 1, "the holder could not attach segment %d", old);
	int rc = gs_replace(h, sh, nkeys, 2, &where);
	ck_assert_msg(rc == 0, "%s: %d (%s)", where, rc, hashtable_strerror(rc));
	gs_register(h);
	ck_assert_int_eq(gs_role_of(h, old), HASHTABLE_SEG_RETIRED);
	ck_assert_int_eq(test_self_mappings(old), 0); /* this handle moved on and let go */
	/* so the segments are not yet down to two, and no wait makes them */
	ck_assert_msg(!test_only_root_and_current(h, 0, why, sizeof why),
	              "generation 1 is held by the holder, yet: %s", why);
	/* released hold_ns after this byte: the check waits for it */
	uint64_t t0 = sk_now_ns();
	ck_assert_int_eq(sk_write_all(to[1], "r", 1), 0);
	gs_assert_only_root_and_current(h, "foreign holder released", 2);
	ck_assert_msg(!gs_shm_exists(old), "segment %d remains", old);
	ck_assert_msg(sk_now_ns() - t0 < sk_bound_ns(1000), "the check took %.0f ms",
	              (double)(sk_now_ns() - t0) / 1e6);
	int status = sk_reap(pid);
	SK_ASSERT_EXIT0(status, "holder");

	/* an idle second handle of this process holds generation 2 across the
	 * commit of 3: reported at once, as this process's */
	struct hashtable *h2 = hashtable_open_key(key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(h2);
	uint64_t k = sk_key(1), v[GS_VWORDS], g = 0;
	ck_assert_int_eq(hashtable_search(h2, &k, v), 0);
	ck_assert_int_eq(sk_check(v, GS_VWORDS, k, &g), SK_OK);
	ck_assert_uint_eq(g, 2);
	old = gs_current_shmid(h);
	rc = gs_replace(h, sh, nkeys, 3, &where);
	ck_assert_msg(rc == 0, "%s: %d (%s)", where, rc, hashtable_strerror(rc));
	gs_register(h);
	t0 = sk_now_ns();
	ck_assert_msg(!test_only_root_and_current(h, 1000, why, sizeof why),
	              "an idle handle of this process holds generation 2, yet: %s", why);
	ck_assert_msg(strstr(why, "still maps it"), "%s", why);
	ck_assert_msg(sk_now_ns() - t0 < sk_bound_ns(500), "reported after %.0f ms, not at once",
	              (double)(sk_now_ns() - t0) / 1e6);
	hashtable_close(h2); /* its map goes with it */
	gs_assert_only_root_and_current(h, "second handle closed", 3);

	close(to[1]);
	close(from[0]);
	test_table_destroy(h);
	gs_shared_free(sh);
}
END_TEST

/* ---- autogrow under readers ----------------------------------------------------- */

struct gs_agrow {
	pthread_t tid;
	struct hashtable *h;
	struct gs_shared *sh;
	struct gs_rslot *s;
	uint64_t seed;
};

/* Searches keys already inserted: each must be found with its value. */
static void gs_agrow_reader(struct hashtable *h, struct gs_shared *sh, struct gs_rslot *s,
                            uint64_t seed)
{
	uint64_t rng = seed | 1;
	while (!atomic_load(&sh->stop)) {
		for (int n = 0; n < 256; n++) {
			uint64_t have = atomic_load(&sh->inserted);
			if (!have)
				break;
			uint64_t k = sk_rand(&rng) % have + 1, v = 0;
			long vol0, invol0;
			gs_switches(&vol0, &invol0);
			uint64_t t0 = sk_now_ns();
			int rc = hashtable_search(h, &k, &v);
			gs_timed(s, t0, vol0, invol0);
			s->calls++;
			if (rc == 0 && v == k * SK_MUL) {
				s->found++;
			} else if (rc == 0) {
				gs_bad(s, &s->wrong, "wrong value", k, 0);
			} else if (rc == -1) {
				gs_bad(s, &s->miss, "miss", k, 0);
			} else if (!s->errors++) {
				s->first_error = rc;
			}
		}
		sk_sleep_us(1000); /* as gs_reader: not to oversubscribe the cores */
	}
	s->done = 1;
}

static void *gs_agrow_main(void *arg)
{
	struct gs_agrow *t = arg;
	gs_agrow_reader(t->h, t->sh, t->s, t->seed);
	return NULL;
}

START_TEST(test_genstress_autogrow)
{
	struct gs_shared *sh = gs_shared_new();
	uint64_t seed = sk_seed("genstress_autogrow");
	uint64_t target = sk_scaled(1000000, 20000);
	struct hashtable_config cfg = {0};
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = 1000;
	cfg.max_load = 0.8;
	cfg.flags = HASHTABLE_AUTOGROW;
	cfg.max_bytes = 512ull << 20;
	struct hashtable *h = test_table_create(&cfg);
	gs_register(h);
	struct hashtable_stats st0;
	ck_assert_int_eq(hashtable_stats(h, &st0), 0);
	ck_assert_uint_lt(st0.max_count, 4000);

	pid_t pid = sk_fork(240);
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct hashtable *rh = hashtable_open_key(cfg.ipc_key, HASHTABLE_RDONLY);
		if (!rh)
			_exit(90);
		gs_agrow_reader(rh, sh, &sh->r[0], seed + 1);
		sk_child_exit(rh, 0);
	}
	struct hashtable *th = hashtable_open_key(cfg.ipc_key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(th);
	struct gs_agrow t[2];
	for (int i = 0; i < 2; i++) {
		t[i] = (struct gs_agrow){.h = th, .sh = sh, .s = &sh->r[1 + i], .seed = seed + 2 + i};
		ck_assert_int_eq(pthread_create(&t[i].tid, NULL, gs_agrow_main, &t[i]), 0);
	}

	uint64_t gen0 = hashtable_generation(h), lastgen = gen0, t0 = sk_now_ns();
	int rc = 0;
	uint64_t i;
	for (i = 1; i <= target; i++) {
		uint64_t v = i * SK_MUL;
		rc = hashtable_update(h, &i, &v);
		if (rc != 0)
			break;
		atomic_store(&sh->inserted, i);
		if ((i & 1023) == 0 && hashtable_generation(h) != lastgen) {
			lastgen = hashtable_generation(h);
			gs_register(h);
		}
	}
	double el = (double)(sk_now_ns() - t0) / 1e9;
	atomic_store(&sh->stop, 1);
	for (int j = 0; j < 2; j++)
		pthread_join(t[j].tid, NULL);
	int status = sk_reap(pid);
	gs_register(h);
	uint64_t gens = hashtable_generation(h) - gen0;
	printf("genstress_autogrow: %" PRIu64 " keys in %.2f s, %" PRIu64 " grows\n", i - 1, el, gens);
	for (int j = 0; j < 3; j++)
		gs_rslot_print(j ? "thread" : "process", j, &sh->r[j]);
	fflush(stdout);
	ck_assert_msg(rc == 0, "hashtable_update of key %" PRIu64 ": %d (%s) %s", i, rc,
	              hashtable_strerror(rc), hashtable_last_error());
	SK_ASSERT_EXIT0(status, "reader process");
	for (int j = 0; j < 3; j++)
		gs_assert_reader(j ? "thread" : "process", j, &sh->r[j]);
	uint64_t need = 0;
	for (uint64_t c = st0.max_count; c < target; c *= 2)
		need++;
	ck_assert_msg(gens >= need, "only %" PRIu64 " grows from %" PRIu64 " to %" PRIu64 " keys "
	              "(doubling needs at least %" PRIu64 ")", gens, st0.max_count, target, need);

	uint64_t missing = 0, first = 0;
	for (uint64_t k = 1; k <= target; k++) {
		uint64_t v = 0;
		if ((hashtable_search(h, &k, &v) != 0 || v != k * SK_MUL) && !missing++)
			first = k;
	}
	ck_assert_msg(missing == 0, "%" PRIu64 " keys missing or wrong after autogrow (first %" PRIu64
	              ")", missing, first);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_uint_eq(st.count, target);
	sk_assert_verify(h, "after autogrow");
	hashtable_close(th);
	gs_assert_only_root_and_current(h, "after autogrow", 0);
	test_table_destroy(h);
	gs_shared_free(sh);
}
END_TEST

Suite *suite_genstress(void)
{
	Suite *s = suite_create("genstress");
	TCase *tc = tcase_create("genstress");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_genstress_processes_and_threads);
	tcase_add_test(tc, test_genstress_kill_builder);
	tcase_add_test(tc, test_genstress_kill_grower);
	tcase_add_test(tc, test_genstress_kill_committer);
	tcase_add_test(tc, test_genstress_idle_reader_pins);
	tcase_add_test(tc, test_genstress_foreign_attach);
	tcase_add_test(tc, test_genstress_autogrow);
	suite_add_tcase(s, tc);
	return s;
}

/* Threads only, no fork: `make check-tsan` runs it with CK_FORK=no. */
Suite *suite_genthreads(void)
{
	Suite *s = suite_create("genthreads");
	TCase *tc = tcase_create("genthreads");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_genthreads_shared_handle);
	suite_add_tcase(s, tc);
	return s;
}
