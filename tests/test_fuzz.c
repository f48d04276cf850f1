/* Suite `fuzz`: a short run of the corruption fuzzer (tests/fuzz/corrupt.h).
 *
 * 300 rounds over the four geometries, each call in a forked child under a
 * 5 s alarm: no crash, no hang, only documented return codes.  By default
 * only the damage the current library survives is run; SHMKV_FUZZ_WRITERS=1
 * adds the writer-side classes (see gated[] in tests/fuzz/corrupt.c).
 * SHMKV_FUZZ_SEED=N replays a seed; otherwise the seed comes from the clock
 * and is printed with any finding. */
#include "testutil.h"
#include "fuzz/corrupt.h"

#include <stdlib.h>
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
	o.rounds = (uint64_t)(300 * test_scale()) + 1;
	o.writers = fuzz_writers_from_env();
	o.on_segment = test_register_shmid;
	struct fuzz_corrupt_result res;
	long rc = fuzz_corrupt_run(&o, &res);
	ck_assert_msg(rc >= 0, "the fuzzer could not set up its tables (see above)");
	ck_assert_uint_eq(res.rounds, o.rounds);
	ck_assert_uint_gt(res.calls, o.rounds * 4);
	ck_assert_msg(res.findings == 0,
	              "seed 0x%llx: %llu findings (%llu crashes, %llu hangs, %llu undocumented "
	              "codes); each is printed above with its replay command",
	              (unsigned long long)o.seed, (unsigned long long)res.findings,
	              (unsigned long long)res.crashes, (unsigned long long)res.hangs,
	              (unsigned long long)res.bad_codes);
}
END_TEST

Suite *suite_fuzz(void)
{
	Suite *s = suite_create("fuzz");
	TCase *tc = tcase_create("corruption");
	/* 300 rounds take about a second; a hang costs 5 s per call */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, corruption_rounds);
	suite_add_tcase(s, tc);
	return s;
}
