/* suite_writers: several writers at once, and what readers see after a write.
 *
 * Writers on disjoint keys know every return code in advance (insert 0,
 * overwrite 1, delete 0), so a write lost or doubled by a broken lock shows
 * up as a wrong code, a key in the wrong state, or an operation counter off
 * by one.  Writers sharing keys cannot predict codes, but the table must
 * still balance: final count = initial + inserts - deletes, exactly.
 * Values are self-checking (concur.h). */
#include <pthread.h>

#include "concur.h"

static const struct sk_plan plan = {.nkeys = 2048, .nstable = 512, .vwords = 8};

/* Every key whose writer recorded it is in that state, and the header's
 * counters moved by exactly the writers' counts. */
static void assert_balanced(struct hashtable *h, struct sk_shared *sh,
                            const struct hashtable_stats *before, const struct sk_wstat *w,
                            int nw, int exact)
{
	uint64_t present = 0, ins = 0, upd = 0, del = 0, first = 0;
	int first_rc = 0;
	sk_assert_verify(h, "after the writers");
	if (exact) {
		uint64_t bad = sk_compare(h, &plan, sh, 0, &present, &first, &first_rc);
		ck_assert_msg(bad == 0, "%" PRIu64 " keys differ from their writer's record (first %"
		              PRIu64 ": search %d, recorded gen %" PRIu64 ")", bad, first, first_rc,
		              atomic_load(&sh->keygen[first - 1]));
	} else {
		uint64_t v[SK_MAX_VWORDS], g;
		for (uint32_t i = 0; i < plan.nkeys; i++) {
			uint64_t k = sk_key(i);
			int rc = hashtable_search(h, &k, v);
			ck_assert_msg(rc == 0 || (rc == -1 && !sk_stable(&plan, i)),
			              "key %" PRIu64 ": search %d", k, rc);
			if (rc == 0) {
				ck_assert_msg(sk_check(v, plan.vwords, k, &g) == SK_OK,
				              "key %" PRIu64 ": bad value %016" PRIx64 " %016" PRIx64, k,
				              v[0], v[1]);
				present++;
			}
		}
	}
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
	ck_assert_uint_eq(st.deleted, 0);
}

static void assert_wstat_clean(const struct sk_wstat *w, int i)
{
	ck_assert_msg(w->bad == 0,
	              "writer %d: %" PRIu64 " unexpected return codes, first %c(key %" PRIu64 ") = %"
	              PRId64 " (%s)", i, w->bad, w->first_bad_op, w->first_bad_key, w->first_bad_rc,
	              hashtable_strerror((int)w->first_bad_rc));
}

static void print_writers(const char *name, const struct sk_wstat *w, int nw, double secs)
{
	uint64_t ops = 0, ins = 0, upd = 0, del = 0, miss = 0, slow = 0;
	for (int i = 0; i < nw; i++) {
		ops += w[i].ops;
		ins += w[i].inserts;
		upd += w[i].updates;
		del += w[i].deletes;
		miss += w[i].delete_misses;
		if (w[i].max_op_ns > slow)
			slow = w[i].max_op_ns;
	}
	printf("%s: %d writers, %.2f s, %" PRIu64 " ops: %" PRIu64 " inserts, %" PRIu64
	       " overwrites, %" PRIu64 " deletes, %" PRIu64 " deletes of absent keys; slowest op %.3f ms\n",
	       name, nw, secs, ops, ins, upd, del, miss, (double)slow / 1e6);
	fflush(stdout);
}

/* ---- writer processes ---------------------------------------------------- */

/* nw writer processes, `ops` writes each; with SK_EXACT writer i owns the
 * i-th slice of the keys, with SK_CONTEND they all write every key. */
static void writer_processes(const char *name, int nw, enum sk_wmode mode, uint64_t ops)
{
	struct hashtable_config cfg;
	struct hashtable *h = sk_table(&plan, 0.9, &cfg);
	struct sk_shared *sh = sk_shared_new(plan.nkeys);
	uint64_t seed = sk_seed(name);
	sk_load(h, &plan, sh);
	struct hashtable_stats before;
	ck_assert_int_eq(hashtable_stats(h, &before), 0);

	int fd[SK_MAX_WORKERS], go[2];
	pid_t pid[SK_MAX_WORKERS];
	ck_assert_int_eq(pipe(go), 0);
	for (int i = 0; i < nw; i++) {
		int pfd[2];
		ck_assert_int_eq(pipe(pfd), 0);
		pid[i] = sk_fork(60);
		ck_assert_int_ge(pid[i], 0);
		if (pid[i] == 0) {
			close(pfd[0]);
			close(go[1]);
			struct hashtable *hc = hashtable_open_key(cfg.ipc_key, 0);
			char c;
			if (!hc || sk_read_all(go[0], &c, 1) != 0) /* start together, at EOF */
				sk_child_exit(hc, 90);
			uint32_t lo = 0, hi = plan.nkeys;
			if (mode == SK_EXACT) {
				lo = plan.nkeys / (uint32_t)nw * (uint32_t)i;
				hi = plan.nkeys / (uint32_t)nw * (uint32_t)(i + 1);
			}
			struct sk_wstat w;
			sk_writer(hc, &plan, sh, mode, lo, hi, seed ^ (uint64_t)(i + 1) * SK_MUL, ops, i,
			          &w);
			sk_child_exit(hc, sk_write_all(pfd[1], &w, sizeof w) ? 91 : 0);
		}
		close(pfd[1]);
		fd[i] = pfd[0];
	}
	close(go[0]);
	uint64_t t0 = sk_now_ns();
	close(go[1]);
	struct sk_wstat w[SK_MAX_WORKERS];
	for (int i = 0; i < nw; i++) {
		size_t got = sk_read_all(fd[i], &w[i], sizeof w[i]);
		close(fd[i]);
		int st = sk_reap(pid[i]);
		SK_ASSERT_EXIT0(st, "writer");
		ck_assert_uint_eq(got, sizeof w[i]);
	}
	print_writers(name, w, nw, (double)(sk_now_ns() - t0) / 1e9);
	for (int i = 0; i < nw; i++) {
		assert_wstat_clean(&w[i], i);
		ck_assert_uint_eq(w[i].ops, ops);
	}
	assert_balanced(h, sh, &before, w, nw, mode == SK_EXACT);
	test_table_destroy(h);
	sk_shared_free(sh);
}

START_TEST(test_writers_disjoint_processes)
{
	writer_processes("writers_disjoint_processes", 2, SK_EXACT, sk_scaled(600000, 500));
}
END_TEST

START_TEST(test_writers_shared_keys_processes)
{
	writer_processes("writers_shared_keys_processes", 3, SK_CONTEND, sk_scaled(400000, 500));
}
END_TEST

/* ---- writer threads ------------------------------------------------------- */

struct wthread {
	pthread_t tid;
	struct hashtable *h;
	struct sk_shared *sh;
	enum sk_wmode mode;
	uint32_t lo, hi;
	uint64_t seed, ops;
	int slot;
	struct sk_wstat w;
};

static void *wthread_main(void *arg)
{
	struct wthread *t = arg;
	sk_writer(t->h, &plan, t->sh, t->mode, t->lo, t->hi, t->seed, t->ops, t->slot, &t->w);
	return NULL;
}

/* nw writer threads of one process, sharing one handle. */
static void writer_threads(const char *name, int nw, enum sk_wmode mode, uint64_t ops)
{
	struct hashtable_config cfg;
	struct hashtable *h = sk_table(&plan, 0.9, &cfg);
	struct sk_shared *sh = sk_shared_new(plan.nkeys);
	uint64_t seed = sk_seed(name);
	sk_load(h, &plan, sh);
	struct hashtable_stats before;
	ck_assert_int_eq(hashtable_stats(h, &before), 0);
	struct wthread t[SK_MAX_WORKERS];
	memset(t, 0, sizeof t);
	uint64_t t0 = sk_now_ns();
	for (int i = 0; i < nw; i++) {
		t[i].h = h;
		t[i].sh = sh;
		t[i].mode = mode;
		t[i].lo = mode == SK_EXACT ? plan.nkeys / (uint32_t)nw * (uint32_t)i : 0;
		t[i].hi = mode == SK_EXACT ? plan.nkeys / (uint32_t)nw * (uint32_t)(i + 1) : plan.nkeys;
		t[i].seed = seed ^ (uint64_t)(i + 1) * SK_MUL;
		t[i].ops = ops;
		t[i].slot = i;
		int rc = pthread_create(&t[i].tid, NULL, wthread_main, &t[i]);
		ck_assert_msg(rc == 0, "pthread_create: %s", strerror(rc));
	}
	struct sk_wstat w[SK_MAX_WORKERS];
	for (int i = 0; i < nw; i++) {
		pthread_join(t[i].tid, NULL);
		w[i] = t[i].w;
	}
	print_writers(name, w, nw, (double)(sk_now_ns() - t0) / 1e9);
	for (int i = 0; i < nw; i++) {
		assert_wstat_clean(&w[i], i);
		ck_assert_uint_eq(w[i].ops, ops);
	}
	assert_balanced(h, sh, &before, w, nw, mode == SK_EXACT);
	test_table_destroy(h);
	sk_shared_free(sh);
}

START_TEST(test_writers_disjoint_threads)
{
	writer_threads("writers_disjoint_threads", 2, SK_EXACT, sk_scaled(600000, 500));
}
END_TEST

START_TEST(test_writers_shared_keys_threads)
{
	writer_threads("writers_shared_keys_threads", 3, SK_CONTEND, sk_scaled(400000, 500));
}
END_TEST

/* ---- a write is visible to every later search ------------------------------ */

struct step {
	uint32_t idx;
	uint32_t pad;
	uint64_t gen; /* 0: deleted */
};

/* Process A writes, then tells process B through a pipe what it wrote; B,
 * searching only after it read that, must see exactly that state (A waits
 * for B's answer before its next write, so nothing newer exists). */
START_TEST(test_writers_visible_after_return)
{
	struct hashtable_config cfg;
	struct hashtable *h = sk_table(&plan, 0.9, &cfg);
	struct sk_shared *sh = sk_shared_new(plan.nkeys);
	uint64_t seed = sk_seed("writers_visible_after_return");
	sk_load(h, &plan, sh);
	uint64_t rounds = sk_scaled(50000, 200);
	int ab[2], ba[2], res[2];
	ck_assert_int_eq(pipe(ab), 0);
	ck_assert_int_eq(pipe(ba), 0);
	ck_assert_int_eq(pipe(res), 0);

	pid_t b = sk_fork(60);
	ck_assert_int_ge(b, 0);
	if (b == 0) { /* B: checks each announced state; answers 0 or the bad search's rc */
		close(ab[1]);
		close(ba[0]);
		close(res[0]);
		close(res[1]);
		struct hashtable *hb = hashtable_open_key(cfg.ipc_key, HASHTABLE_RDONLY);
		if (!hb)
			_exit(90);
		struct step s;
		uint64_t v[SK_MAX_VWORDS], g;
		while (sk_read_all(ab[0], &s, sizeof s) == sizeof s) {
			uint64_t k = sk_key(s.idx);
			int rc = hashtable_search(hb, &k, v);
			int32_t ok = s.gen ? rc == 0 && sk_check(v, plan.vwords, k, &g) == SK_OK &&
			                     g == s.gen
			                   : rc == -1;
			if (sk_write_all(ba[1], &ok, sizeof ok))
				sk_child_exit(hb, 91);
		}
		sk_child_exit(hb, 0);
	}
	close(ab[0]);
	close(ba[1]);
	pid_t a = sk_fork(60);
	ck_assert_int_ge(a, 0);
	if (a == 0) { /* A: writes, announces, waits; reports failures through res */
		close(res[0]);
		struct hashtable *ha = hashtable_open_key(cfg.ipc_key, 0);
		if (!ha)
			_exit(90);
		uint64_t rng = seed | 1, stale = 0, first_key = 0;
		struct sk_wstat w = {0};
		for (uint64_t r = 0; r < rounds; r++) {
			uint32_t idx = sk_pick(&rng, 0, plan.nkeys);
			sk_write_one(ha, &plan, sh, SK_EXACT, idx, sk_rand(&rng), 0, &w);
			struct step s = {idx, 0, atomic_load(&sh->keygen[idx])};
			int32_t ok;
			if (sk_write_all(ab[1], &s, sizeof s) || sk_read_all(ba[0], &ok, sizeof ok) != sizeof ok)
				sk_child_exit(ha, 92);
			if (!ok && !stale++)
				first_key = sk_key(idx);
		}
		uint64_t out[3] = {stale, first_key, w.bad};
		sk_child_exit(ha, sk_write_all(res[1], out, sizeof out) ? 91 : 0);
	}
	close(res[1]);
	close(ab[1]);
	close(ba[0]);
	uint64_t out[3] = {0};
	size_t got = sk_read_all(res[0], out, sizeof out);
	close(res[0]);
	int sa = sk_reap(a), sb = sk_reap(b);
	SK_ASSERT_EXIT0(sa, "writing process");
	SK_ASSERT_EXIT0(sb, "searching process");
	ck_assert_uint_eq(got, sizeof out);

	/* Then B as a process started after the write returned. */
	uint64_t fresh = sk_scaled(100, 5), fresh_stale = 0, rng = seed ^ SK_MUL;
	struct sk_wstat w = {0};
	for (uint64_t r = 0; r < fresh; r++) {
		uint32_t idx = sk_pick(&rng, 0, plan.nkeys);
		sk_write_one(h, &plan, sh, SK_EXACT, idx, sk_rand(&rng), 0, &w);
		uint64_t want = atomic_load(&sh->keygen[idx]);
		pid_t c = sk_fork(30);
		ck_assert_int_ge(c, 0);
		if (c == 0) {
			struct hashtable *hc = hashtable_open_key(cfg.ipc_key, HASHTABLE_RDONLY);
			uint64_t k = sk_key(idx), v[SK_MAX_VWORDS], g;
			if (!hc)
				_exit(90);
			int rc = hashtable_search(hc, &k, v);
			int ok = want ? rc == 0 && sk_check(v, plan.vwords, k, &g) == SK_OK && g == want
			              : rc == -1;
			sk_child_exit(hc, ok ? 0 : 1);
		}
		int st = sk_reap(c);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) <= 1, "fresh reader: status 0x%x",
		              (unsigned)st);
		fresh_stale += WEXITSTATUS(st);
	}
	printf("writers_visible_after_return: %" PRIu64 " write-then-search rounds across two "
	       "processes, %" PRIu64 " stale; %" PRIu64 " with a freshly started reader, %" PRIu64
	       " stale\n", rounds, out[0], fresh, fresh_stale);
	fflush(stdout);
	ck_assert_msg(out[0] == 0, "%" PRIu64 " searches in process B missed a write process A "
	              "had completed (first key %" PRIu64 ")", out[0], out[1]);
	ck_assert_msg(out[2] == 0, "writer: %" PRIu64 " unexpected return codes", out[2]);
	ck_assert_uint_eq(fresh_stale, 0);
	ck_assert_uint_eq(w.bad, 0);
	sk_assert_verify(h, "at the end");
	test_table_destroy(h);
	sk_shared_free(sh);
}
END_TEST

Suite *suite_writers(void)
{
	Suite *s = suite_create("writers");
	TCase *tc = tcase_create("writers");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_writers_disjoint_processes);
	tcase_add_test(tc, test_writers_shared_keys_processes);
	tcase_add_test(tc, test_writers_disjoint_threads);
	tcase_add_test(tc, test_writers_shared_keys_threads);
	tcase_add_test(tc, test_writers_visible_after_return);
	suite_add_tcase(s, tc);
	return s;
}
