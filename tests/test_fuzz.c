/* Suite `fuzz`: a short run of the corruption fuzzer (tests/fuzz/corrupt.h).
 *
 * 150 rounds over the four geometries (one worker process per geometry),
 * every damage class and every call, writers included, each call in a
 * forked child under a 5 s alarm: no crash, no hang, only documented return
 * codes, no update reported done and then not found.  About 30 s, most of
 * it asleep: a round that damages the writer lock costs each writer call
 * the library's documented 2 s wait.  gated[] in tests/fuzz/corrupt.c is
 * empty; SHMKV_FUZZ_WRITERS=1 runs whatever it may list again.  Then 40
 * rounds of each of the root segment's damage classes (root, build,
 * current).
 * SHMKV_FUZZ_SEED=N replays a seed; otherwise the seed comes from the clock
 * and is printed with any finding. */
#include "testutil.h"
#include "fuzz/corrupt.h"
#include "fuzz/guard.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t suite_seed(void)
{
	const char *s = getenv("SHMKV_FUZZ_SEED");
	if (s && *s)
		return strtoull(s, NULL, 0);
	return (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
}

START_TEST(corruption_rounds)
{
	struct fuzz_corrupt_opts o = {0};
	o.seed = suite_seed();
	o.rounds = (uint64_t)(150 * test_scale()) + 1;
	o.writers = fuzz_writers_from_env();
	o.on_segment = test_register_shmid;
	struct fuzz_corrupt_result res;
	long rc = fuzz_corrupt_run(&o, &res);
	ck_assert_msg(rc >= 0, "the fuzzer could not set up its tables (see above)");
	ck_assert_uint_eq(res.rounds, o.rounds);
	ck_assert_uint_gt(res.calls, o.rounds * 4);
	ck_assert_msg(res.findings == 0,
	              "seed 0x%llx: %llu findings (%llu crashes, %llu hangs, %llu wrong "
	              "results); each is printed above with its replay command",
	              (unsigned long long)o.seed, (unsigned long long)res.findings,
	              (unsigned long long)res.crashes, (unsigned long long)res.hangs,
	              (unsigned long long)res.wrong_results);
}
END_TEST

/* The root's damage classes (generations), each on its own: a random mix
 * of 300 rounds may give one of them only a handful.  Every call of each
 * round runs (none is gated but the root class's writer side), and none may
 * crash, hang, give an undocumented code or remove a table's segment. */
START_TEST(root_damage_rounds)
{
	static const char *const classes[] = { "root", "build", "current" };
	for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
		struct fuzz_corrupt_opts o = {0};
		o.seed = suite_seed() + i;
		o.rounds = (uint64_t)(40 * test_scale()) + 1;
		o.only_class = classes[i];
		o.on_segment = test_register_shmid;
		struct fuzz_corrupt_result res;
		long rc = fuzz_corrupt_run(&o, &res);
		ck_assert_msg(rc >= 0, "the fuzzer could not set up its tables (see above)");
		ck_assert_uint_eq(res.rounds, o.rounds);
		ck_assert_uint_ge(res.calls, o.rounds * 8); /* at least every reader call */
		ck_assert_msg(res.findings == 0,
		              "class %s, seed 0x%llx: %llu findings (%llu crashes, %llu hangs, "
		              "%llu wrong results); each is printed above with its replay command",
		              classes[i], (unsigned long long)o.seed,
		              (unsigned long long)res.findings, (unsigned long long)res.crashes,
		              (unsigned long long)res.hangs, (unsigned long long)res.wrong_results);
	}
}
END_TEST

/* The fuzzer's premise: a stray read just outside a segment faults. */
static int child_reads(int shmid, long at)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		guard_pages_on = 1;
		volatile unsigned char *p = shmat(shmid, NULL, SHM_RDONLY);
		if (p == (void *)-1)
			_exit(2);
		unsigned char c = p[at];
		(void)c;
		_exit(0);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return st;
}

/* The bytes the kernel maps for segment id: its size rounded up to a page. */
static long mapped_bytes(int id, long page, long *segsz)
{
	struct shmid_ds ds;
	ck_assert_int_eq(shmctl(id, IPC_STAT, &ds), 0);
	*segsz = (long)ds.shm_segsz;
	return (*segsz + page - 1) / page * page;
}

/* Both of a table's segments: the data segment (a page multiple here, so
 * the guard starts right after its last byte) and the root (a few hundred
 * bytes: the guard starts at the end of its page, so a stray read into the
 * rest of that page goes unnoticed; the kernel maps whole pages). */
START_TEST(guard_pages_fault_outside_the_segment)
{
	struct hashtable_config cfg = {0};
	long page = sysconf(_SC_PAGESIZE);
	cfg.capacity = 4 * (size_t)page;
	cfg.key_size = 8;
	cfg.value_size = 8;
	struct hashtable *h = test_table_create(&cfg);
	int ids[2] = { test_data_shmid(h), hashtable_shmid(h) };
	for (int i = 0; i < 2; i++) {
		long segsz, mapped = mapped_bytes(ids[i], page, &segsz);
		if (i == 0)
			ck_assert_int_eq(mapped, segsz); /* the data segment: no tail */
		int st = child_reads(ids[i], segsz - 1);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s, last byte: status 0x%x",
		              i ? "root" : "data", st);
		st = child_reads(ids[i], mapped);
		ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
		              "%s, one past the mapped end: 0x%x", i ? "root" : "data", st);
		st = child_reads(ids[i], -1);
		ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "%s, one before: 0x%x",
		              i ? "root" : "data", st);
	}
	test_table_destroy(h);
}
END_TEST

/* ...and the library's own attach goes through it, for both of a table's
 * segments (the root and the current data segment). */
START_TEST(library_attaches_between_guard_pages)
{
	struct hashtable *h = test_table_simple(8, 8, 100, 0.8);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	guard_pages_on = 1;
	ck_assert_int_eq(guard_pages_attached(), 0);
	struct hashtable *r = hashtable_open_key(st.ipc_key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(guard_pages_attached(), 2);
	ck_assert_int_eq(hashtable_close(r), 0);
	ck_assert_int_eq(guard_pages_attached(), 0);
	guard_pages_on = 0;
	test_table_destroy(h);
}
END_TEST

Suite *suite_fuzz(void)
{
	Suite *s = suite_create("fuzz");
	TCase *tc = tcase_create("corruption");
	/* 300 rounds take about a second; a hang costs 5 s per call */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, corruption_rounds);
	tcase_add_test(tc, root_damage_rounds);
	suite_add_tcase(s, tc);
	TCase *guard = tcase_create("guard pages");
	tcase_add_test(guard, guard_pages_fault_outside_the_segment);
	tcase_add_test(guard, library_attaches_between_guard_pages);
	suite_add_tcase(s, guard);
	return s;
}
