/* suite_threads: readers and writers as threads of one process.
 *
 * The same self-checking workload as suite_stress (concur.h), with threads
 * sharing one handle (the contract allows it) or holding one each.  These
 * tests never fork, so they run as they are under ThreadSanitizer with
 * CK_FORK=no (make check-tsan): threads only count, and the test thread
 * asserts once they are joined. */
#include <pthread.h>

#include "concur.h"

static const struct sk_plan plan64 = {.nkeys = 2048, .nstable = 512, .vwords = 8};
/* 8-byte values take the library's fast lookup path */
static const struct sk_plan plan8 = {.nkeys = 2048, .nstable = 512, .vwords = 1};

struct worker {
	pthread_t tid;
	const struct sk_plan *plan;
	struct hashtable *h;
	struct sk_shared *sh;
	uint64_t seed;
	int slot;
	/* writers */
	uint32_t lo, hi;
	struct sk_wstat w;
	/* readers */
	struct sk_ropts o;
	struct sk_rstat r;
};

static void *writer_main(void *arg)
{
	struct worker *k = arg;
	sk_writer(k->h, k->plan, k->sh, SK_EXACT, k->lo, k->hi, k->seed, 0, k->slot, &k->w);
	return NULL;
}

static void *reader_main(void *arg)
{
	struct worker *k = arg;
	sk_reader(k->h, k->plan, k->sh, &k->o, k->seed, k->slot, &k->r);
	return NULL;
}

/* Runs at least min_s seconds and until every reader did `target` reads, at
 * most max_s seconds; then stops everyone. */
static double run_until(struct sk_shared *sh, int nreaders, double min_s, uint64_t target,
                        double max_s)
{
	uint64_t t0 = sk_now_ns();
	for (;;) {
		sk_sleep_us(20000);
		double el = (double)(sk_now_ns() - t0) / 1e9;
		int done = el >= min_s;
		for (int i = 0; i < nreaders && done; i++)
			done = atomic_load(&sh->rreads[i]) >= target;
		if (done || el >= max_s) {
			atomic_store(&sh->stop, 1);
			return el;
		}
	}
}

static void start(struct worker *k, void *(*fn)(void *))
{
	int rc = pthread_create(&k->tid, NULL, fn, k);
	ck_assert_msg(rc == 0, "pthread_create: %s", strerror(rc));
}

static void assert_writer_clean(const struct sk_wstat *w)
{
	ck_assert_msg(w->bad == 0,
	              "writer: %" PRIu64 " unexpected return codes, first %c(key %" PRIu64 ") = %" PRId64
	              " (%s)", w->bad, w->first_bad_op, w->first_bad_key, w->first_bad_rc,
	              hashtable_strerror((int)w->first_bad_rc));
}

/* The table holds exactly what the writers recorded, and the header's
 * operation counters moved by exactly what they did. */
static void assert_final(struct hashtable *h, const struct sk_plan *plan, struct sk_shared *sh,
                         const struct hashtable_stats *before, const struct sk_wstat *w, int nw)
{
	uint64_t present, first = 0, ins = 0, upd = 0, del = 0;
	int first_rc = 0;
	sk_assert_verify(h, "after the threads stopped");
	uint64_t bad = sk_compare(h, plan, sh, 0, &present, &first, &first_rc);
	ck_assert_msg(bad == 0, "%" PRIu64 " keys differ from the writers' record (first %" PRIu64
	              ": search %d)", bad, first, first_rc);
	for (int i = 0; i < nw; i++) {
		ins += w[i].inserts;
		upd += w[i].updates;
		del += w[i].deletes;
	}
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_uint_eq(st.count, present);
	ck_assert_uint_eq(st.count, before->count + ins - del);
	ck_assert_uint_eq(st.inserts - before->inserts, ins);
	ck_assert_uint_eq(st.updates - before->updates, upd);
	ck_assert_uint_eq(st.deletes - before->deletes, del);
}

/* nw writer threads on disjoint key ranges, nr reader threads; with
 * `own_handles` every thread but the first attaches the table itself. */
static void threads_run(const char *name, const struct sk_plan *plan, int nw, int nr,
                        int own_handles, double min_s, uint64_t target)
{
	struct hashtable_config cfg;
	struct hashtable *h = sk_table(plan, 0.9, &cfg);
	struct sk_shared *sh = sk_shared_new(plan->nkeys);
	uint64_t seed = sk_seed(name);
	sk_load(h, plan, sh);
	struct hashtable_stats before;
	ck_assert_int_eq(hashtable_stats(h, &before), 0);

	struct worker wk[SK_MAX_WORKERS] = {{0}};
	ck_assert_int_le(nw + nr, SK_MAX_WORKERS);
	for (int i = 0; i < nw + nr; i++) {
		struct worker *k = &wk[i];
		k->sh = sh;
		k->plan = plan;
		k->h = h;
		if (own_handles && i > 0) {
			k->h = hashtable_open_key(cfg.ipc_key, i < nw ? 0 : HASHTABLE_RDONLY);
			ck_assert_msg(k->h != NULL, "hashtable_open_key: %s", strerror(errno));
		}
		k->seed = seed ^ (uint64_t)(i + 1) * SK_MUL;
		if (i < nw) {
			/* Writer i owns the i-th slice of the keys. */
			k->slot = i;
			k->lo = plan->nkeys / nw * i;
			k->hi = plan->nkeys / nw * (i + 1);
		} else {
			k->slot = i - nw;
			k->o.mode = (i - nw) & 1 ? SK_BATCH : SK_SEARCH;
			k->o.check_regress = 1;
		}
	}
	for (int i = 0; i < nw + nr; i++)
		start(&wk[i], i < nw ? writer_main : reader_main);
	double el = run_until(sh, nr, min_s * test_scale(), sk_scaled((double)target, 1000), 10);
	for (int i = 0; i < nw + nr; i++)
		pthread_join(wk[i].tid, NULL);

	struct sk_rstat tot = {0};
	struct sk_wstat w[SK_MAX_WORKERS];
	uint64_t wops = 0, wdel = 0, max_op = 0;
	for (int i = 0; i < nw; i++) {
		w[i] = wk[i].w;
		wops += w[i].ops;
		wdel += w[i].deletes;
		if (w[i].max_op_ns > max_op)
			max_op = w[i].max_op_ns;
	}
	for (int i = nw; i < nw + nr; i++)
		sk_rstat_add(&tot, &wk[i].r);
	printf("%s: %.2f s, %d writer and %d reader threads (%s), writers %" PRIu64 " ops (%" PRIu64
	       " deletes), slowest write %.3f ms\n", name, el, nw, nr,
	       own_handles ? "a handle each" : "one handle", wops, wdel, (double)max_op / 1e6);
	sk_rstat_print(name, &tot);

	SK_ASSERT_READS_CLEAN(tot);
	ck_assert_uint_eq(tot.deadwriter, 0);
	for (int i = 0; i < nw; i++)
		assert_writer_clean(&w[i]);
	ck_assert_uint_ge(tot.reads, sk_scaled(20000, 500));
	ck_assert_uint_ge(wops, sk_scaled(5000, 100));
	ck_assert_uint_gt(wdel, 0);
	ck_assert_uint_gt(tot.advanced, 0);
	assert_final(h, plan, sh, &before, w, nw);

	for (int i = 1; i < nw + nr; i++)
		if (wk[i].h != h)
			ck_assert_int_eq(hashtable_close(wk[i].h), 0);
	test_table_destroy(h);
	sk_shared_free(sh);
}

START_TEST(test_threads_readers_writer)
{
	threads_run("threads_readers_writer", &plan64, 1, 2, 0, 3.0, 1500000);
}
END_TEST

START_TEST(test_threads_two_writers)
{
	threads_run("threads_two_writers", &plan64, 2, 2, 0, 1.5, 300000);
}
END_TEST

START_TEST(test_threads_own_handles)
{
	threads_run("threads_own_handles", &plan64, 2, 2, 1, 1.5, 300000);
}
END_TEST

/* 8-byte values: the library's fast lookup path. */
START_TEST(test_threads_values_v8)
{
	threads_run("threads_values_v8", &plan8, 1, 2, 0, 1.5, 750000);
}
END_TEST

Suite *suite_threads(void)
{
	Suite *s = suite_create("threads");
	TCase *tc = tcase_create("threads");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_threads_readers_writer);
	tcase_add_test(tc, test_threads_two_writers);
	tcase_add_test(tc, test_threads_own_handles);
	tcase_add_test(tc, test_threads_values_v8);
	suite_add_tcase(s, tc);
	return s;
}
