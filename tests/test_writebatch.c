/* suite_writebatch: hashtable_update_batch.
 *
 * What it promises (hashtable.h): the records are stored in array order as
 * single updates would store them; it returns n, or the first failing
 * record's code with *applied = the number stored before it (a prefix);
 * -EROFS and argument errors store nothing; a writer killed mid-batch
 * leaves a prefix of the batch stored and the table consistent.  And
 * hashtable_builder_put_batch: new keys counted, a prefix on failure. */
#include "testutil.h"

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Distinct keys, never 0 or ~0 (the default sentinels). */
static uint64_t key_of(uint64_t i)
{
	uint64_t x = i + 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x == 0 || x == UINT64_MAX ? i + 2 : x;
}

static void fill(uint64_t *keys, uint64_t *values, size_t n, uint64_t from, uint64_t tag)
{
	for (size_t i = 0; i < n; i++) {
		keys[i] = key_of(from + i);
		values[i] = (from + i) ^ tag;
	}
}

/* n records as fill() makes them, in new arrays (the caller frees both). */
static void records(size_t n, uint64_t from, uint64_t tag, uint64_t **keys, uint64_t **values)
{
	*keys = malloc(n * 8);
	*values = malloc(n * 8);
	ck_assert(*keys && *values);
	fill(*keys, *values, n, from, tag);
}

/* Each of the n keys is found with its value. */
static void assert_stored(struct hashtable *h, uint64_t *keys, const uint64_t *values,
                          size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t got = 0;
		ck_assert_int_eq(hashtable_search(h, &keys[i], &got), 0);
		ck_assert_uint_eq(got, values[i]);
	}
}

START_TEST(batch_stores_every_record)
{
	struct hashtable *h = test_table_simple(8, 8, 20000, 0.8);
	enum { N = 10000 };
	uint64_t *k, *v;
	records(N, 0, 0, &k, &v);
	uint64_t old = 7; /* one key already present: overwritten by the batch */
	ck_assert_int_eq(hashtable_update(h, &k[10], &old), 0);
	size_t applied = 12345;
	ck_assert_int_eq(hashtable_update_batch(h, N, k, v, &applied), N);
	ck_assert_uint_eq(applied, N);
	/* a key given twice ends with its later value */
	uint64_t dk[2] = {k[3], k[3]}, dv[2] = {111, 222};
	ck_assert_int_eq(hashtable_update_batch(h, 2, dk, dv, NULL), 2);
	v[3] = 222;
	assert_stored(h, k, v, N);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_uint_eq(st.count, N);
	ck_assert_int_eq(hashtable_verify(h), 0);
	ck_assert_int_eq(hashtable_update_batch(h, 0, NULL, NULL, &applied), 0);
	ck_assert_uint_eq(applied, 0);
	free(k);
	free(v);
	test_table_destroy(h);
}
END_TEST

/* Other widths go through the general path: 16-byte keys, 24-byte values. */
START_TEST(batch_general_widths)
{
	struct hashtable *h = test_table_simple(16, 24, 3000, 0.8);
	enum { N = 2000 };
	unsigned char *k = calloc(N, 16), *v = calloc(N, 24);
	for (size_t i = 0; i < N; i++) {
		uint64_t a = key_of(i), b = ~a;
		memcpy(k + 16 * i, &a, 8);
		memcpy(k + 16 * i + 8, &b, 8);
		memset(v + 24 * i, (int)(i & 0xff), 24);
	}
	ck_assert_int_eq(hashtable_update_batch(h, N, k, v, NULL), N);
	for (size_t i = 0; i < N; i++) {
		unsigned char got[24];
		ck_assert_int_eq(hashtable_search(h, k + 16 * i, got), 0);
		ck_assert_mem_eq(got, v + 24 * i, 24);
	}
	ck_assert_int_eq(hashtable_verify(h), 0);
	free(k);
	free(v);
	test_table_destroy(h);
}
END_TEST

/* At the load limit: -ENOMEM, the records before it stored, none after. */
START_TEST(batch_stops_at_load_limit)
{
	struct hashtable *h = test_table_simple(8, 8, 1000, 0.8);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	uint64_t room = st.max_count;
	enum { N = 2000 };
	uint64_t *k, *v;
	records(N, 0, 1, &k, &v);
	ck_assert_int_eq(hashtable_update_batch(h, room - 10, k, v, NULL), (long)(room - 10));
	/* 30 more new keys, with an overwrite of an old one among them: room
	 * for 10 */
	uint64_t bk[31], bv[31];
	memcpy(bk, k + room - 10, 30 * 8);
	memcpy(bv, v + room - 10, 30 * 8);
	bk[30] = bk[29];
	bv[30] = 1;
	memmove(bk + 6, bk + 5, 25 * 8);
	memmove(bv + 6, bv + 5, 25 * 8);
	bk[5] = k[0]; /* an overwrite at index 5 */
	bv[5] = 99;
	size_t applied = 0;
	ck_assert_int_eq(hashtable_update_batch(h, 31, bk, bv, &applied), -ENOMEM);
	ck_assert_uint_eq(applied, 11); /* 10 new keys and the overwrite */
	for (size_t i = 0; i < 31; i++) {
		uint64_t got;
		int rc = hashtable_search(h, &bk[i], &got);
		ck_assert_int_eq(rc, i < applied ? 0 : -1);
		if (rc == 0)
			ck_assert_uint_eq(got, bv[i]);
	}
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_uint_eq(st.count, room);
	/* overwrites still go in at the limit */
	ck_assert_int_eq(hashtable_update_batch(h, 3, k, v, &applied), 3);
	ck_assert_int_eq(hashtable_verify(h), 0);
	free(k);
	free(v);
	test_table_destroy(h);
}
END_TEST

/* A sentinel key stops the batch at its index: -EINVAL, the prefix stored. */
START_TEST(batch_sentinel_and_arguments)
{
	key_t key;
	struct hashtable_config cfg = {0};
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = 100;
	struct hashtable *h = test_table_create(&cfg);
	key = cfg.ipc_key;
	uint64_t k[6], v[6];
	fill(k, v, 6, 500, 2);
	k[4] = 0; /* the default empty key */
	size_t applied = 99;
	ck_assert_int_eq(hashtable_update_batch(h, 6, k, v, &applied), -EINVAL);
	ck_assert_uint_eq(applied, 4);
	uint64_t got;
	ck_assert_int_eq(hashtable_search(h, &k[3], &got), 0);
	ck_assert_int_eq(hashtable_search(h, &k[5], &got), -1);
	k[4] = UINT64_MAX; /* the default deleted key */
	ck_assert_int_eq(hashtable_update_batch(h, 6, k, v, &applied), -EINVAL);
	ck_assert_uint_eq(applied, 4);
	ck_assert_int_eq(hashtable_update_batch(NULL, 6, k, v, &applied), -EINVAL);
	ck_assert_uint_eq(applied, 0);
	ck_assert_int_eq(hashtable_update_batch(h, 6, NULL, v, &applied), -EINVAL);
	ck_assert_int_eq(hashtable_update_batch(h, 6, k, NULL, &applied), -EINVAL);
	ck_assert_uint_eq(applied, 0);

	struct hashtable *r = hashtable_open_key(key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(r);
	fill(k, v, 6, 900, 3);
	applied = 99;
	ck_assert_int_eq(hashtable_update_batch(r, 6, k, v, &applied), -EROFS);
	ck_assert_uint_eq(applied, 0);
	ck_assert_int_eq(hashtable_search(h, &k[0], &got), -1);
	hashtable_close(r);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_uint_eq(st.count, 4);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
}
END_TEST

/* A writer killed at a random point of a long batch: after the next
 * writer's recovery the table verifies and holds exactly a prefix of the
 * batch, each stored record with its own value. */
START_TEST(batch_killed_leaves_prefix)
{
	enum { N = 200000, ROUNDS = 12 };
	uint64_t *k = malloc(N * 8), *v = malloc(N * 8);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	/* aim the kills at the batch: its length here, measured on a table of
	 * the same size (a fixed delay overshoots a fast machine's batch) */
	useconds_t batch_us;
	{
		struct hashtable_config cfg = {0};
		cfg.key_size = 8;
		cfg.value_size = 8;
		cfg.entries = N;
		struct hashtable *h = test_table_create(&cfg);
		fill(k, v, N, (uint64_t)ROUNDS * N, 4);
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		ck_assert_int_eq(hashtable_update_batch(h, N, k, v, NULL), N);
		clock_gettime(CLOCK_MONOTONIC, &b);
		batch_us = (useconds_t)((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000);
		test_table_destroy(h);
	}
	int partial = 0;
	for (int round = 0; round < ROUNDS; round++) {
		struct hashtable_config cfg = {0};
		cfg.key_size = 8;
		cfg.value_size = 8;
		cfg.entries = N;
		struct hashtable *h = test_table_create(&cfg);
		fill(k, v, N, (uint64_t)round * N, 4);
		int ready[2];
		ck_assert_int_eq(pipe(ready), 0);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(ready[0]);
			struct hashtable *c = hashtable_open_key(cfg.ipc_key, 0);
			if (!c || write(ready[1], "r", 1) != 1)
				_exit(90);
			if (hashtable_update_batch(c, N, k, v, NULL) != N)
				_exit(91);
			for (;;)
				pause(); /* killed here if the kill comes late */
		}
		close(ready[1]);
		char c;
		ck_assert_int_eq(read(ready[0], &c, 1), 1);
		close(ready[0]);
		usleep((useconds_t)rand() % (batch_us * 3 / 2 + 1));
		ck_assert_int_eq(kill(pid, SIGKILL), 0);
		int st;
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		ck_assert_int_ge(hashtable_recover(h), 0);
		ck_assert_int_eq(hashtable_verify(h), 0);
		size_t present = 0;
		bool absent_seen = false;
		for (size_t i = 0; i < N; i++) {
			uint64_t got;
			int rc = hashtable_search(h, &k[i], &got);
			ck_assert_int_ge(rc, -1);
			ck_assert_msg(rc == -1 || !absent_seen, "record %zu is present after an absent "
			              "one: not a prefix", i);
			if (rc == 0) {
				ck_assert_uint_eq(got, v[i]);
				present++;
			}
			absent_seen |= rc == -1;
		}
		struct hashtable_stats hs;
		ck_assert_int_eq(hashtable_stats(h, &hs), 0);
		ck_assert_uint_eq(hs.count, present);
		partial += present > 0 && present < N;
		test_table_destroy(h);
	}
	/* the kills must land mid-batch at least sometimes, or nothing was tested */
	ck_assert_msg(partial > 0, "no kill of %d landed inside the first batch (%u us long)",
	              ROUNDS, (unsigned)batch_us);
	free(k);
	free(v);
}
END_TEST

/* An autogrow table grows in the middle of a batch and takes every record. */
START_TEST(batch_autogrow)
{
	struct hashtable_config cfg = {0};
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = 500;
	cfg.flags = HASHTABLE_AUTOGROW;
	struct hashtable *h = test_table_create(&cfg);
	enum { N = 5000 };
	uint64_t *k, *v;
	records(N, 40000, 6, &k, &v);
	uint64_t gen0 = hashtable_generation(h);
	size_t applied = 0;
	ck_assert_int_eq(hashtable_update_batch(h, N, k, v, &applied), N);
	ck_assert_uint_eq(applied, N);
	ck_assert_uint_gt(hashtable_generation(h), gen0);
	assert_stored(h, k, v, N);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_register_table(h);
	free(k);
	free(v);
	test_table_destroy(h);
}
END_TEST

/* hashtable_builder_put_batch: the count of new keys, a prefix on failure,
 * and the build it leaves committed as single puts would. */
START_TEST(builder_batch_counts_and_limits)
{
	struct hashtable *h = test_table_simple(8, 8, 1000, 0); /* 0: the default load */
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	uint64_t room = st.max_count;
	enum { N = 2000 };
	uint64_t *k, *v;
	records(N, 7000, 5, &k, &v);
	struct hashtable_builder *b;
	ck_assert_int_eq(hashtable_replace_begin(h, NULL, &b), 0);
	test_register_table(h); /* the build's segment too, should an assertion fail */
	size_t applied = 99;
	ck_assert_int_eq(hashtable_builder_put_batch(b, 100, k, v, &applied), 100);
	ck_assert_uint_eq(applied, 100);
	/* 10 keys again (overwrites) and 10 new: 10 new keys */
	ck_assert_int_eq(hashtable_builder_put_batch(b, 20, k + 90, v + 90, &applied), 10);
	/* a sentinel at index 3 stops the batch there */
	uint64_t sk[5] = {k[200], k[201], k[202], UINT64_MAX, k[203]}, sv[5] = {1, 2, 3, 4, 5};
	ck_assert_int_eq(hashtable_builder_put_batch(b, 5, sk, sv, &applied), -EINVAL);
	ck_assert_uint_eq(applied, 3);
	ck_assert_int_eq(hashtable_builder_put_batch(NULL, 5, sk, sv, &applied), -EINVAL);
	ck_assert_uint_eq(applied, 0);
	/* keys 0..109 and 200..202 are in: room - 113 more fit */
	long more = (long)(room - 113);
	ck_assert_int_eq(hashtable_builder_put_batch(b, (size_t)more + 5, k + 300, v + 300, &applied),
	                 -ENOMEM);
	ck_assert_uint_eq(applied, (size_t)more);
	ck_assert_int_eq(hashtable_replace_commit(b), 0);
	for (size_t i = 0; i < N; i++) {
		uint64_t got;
		bool in = i < 110 || (i >= 300 && i < 300 + (size_t)more);
		ck_assert_int_eq(hashtable_search(h, &k[i], &got), in ? 0 : (i >= 200 && i < 203 ? 0 : -1));
		if (in)
			ck_assert_uint_eq(got, v[i]);
	}
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_uint_eq(st.count, room);
	ck_assert_int_eq(hashtable_verify(h), 0);
	free(k);
	free(v);
	test_table_destroy(h);
}
END_TEST

/* Builds the records into h with one builder_put a record (batch 0) or
 * put_batch calls of `batch` records; returns the new keys counted. */
static uint64_t build_records(struct hashtable *h, const uint64_t *k, const uint64_t *v, size_t n,
                              size_t batch)
{
	struct hashtable_builder *b;
	uint64_t fresh = 0;
	ck_assert_int_eq(hashtable_replace_begin(h, NULL, &b), 0);
	test_register_table(h); /* the build's segment too, should an assertion fail */
	for (size_t i = 0; i < n;) {
		if (!batch) {
			int rc = hashtable_builder_put(b, &k[i], &v[i]);
			ck_assert_int_ge(rc, 0);
			fresh += rc == 0;
			i++;
			continue;
		}
		size_t m = n - i < batch ? n - i : batch, applied = 0;
		long r = hashtable_builder_put_batch(b, m, k + i, v + i, &applied);
		ck_assert_int_ge(r, 0);
		ck_assert_uint_eq(applied, m);
		fresh += (uint64_t)r;
		i += m;
	}
	ck_assert_int_eq(hashtable_replace_commit(b), 0);
	return fresh;
}

/* put_batch at a high load, with keys repeated near and far (within a
 * chunk of its pipeline, across chunks, across calls): the same table as
 * single puts: the later value wins, the same new-key count, and exact
 * overflow counts along the probe paths it took (verify clean). */
START_TEST(builder_batch_matches_single_puts)
{
	enum { ROOM = 6000 };
	struct hashtable *one = test_table_simple(8, 8, ROOM, 0.95);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(one, &st), 0);
	size_t distinct = (size_t)st.max_count, n = distinct + distinct / 4;
	uint64_t *k = malloc(n * 8), *v = malloc(n * 8);
	ck_assert(k && v);
	for (size_t i = 0; i < n; i++) {
		/* the last quarter repeats earlier keys: 1 to 50 records back (one
		 * chunk of the batch's pipeline), and far back, in turn */
		size_t r = i - distinct;
		if (i < distinct)
			k[i] = key_of(i);
		else
			k[i] = k[r % 3 == 0 ? r : r % 3 == 1 ? i - 1 - r % 50 : r * 7919 % distinct];
		v[i] = i * 1000003u;
	}
	uint64_t fresh_one = build_records(one, k, v, n, 0);
	ck_assert_uint_eq(fresh_one, distinct);
	struct hashtable_stats want;
	ck_assert_int_eq(hashtable_stats(one, &want), 0);
	ck_assert_int_eq(hashtable_verify(one), 0);
	ck_assert_uint_gt(want.collisions, 0); /* the load reaches the probe path */
	const size_t batches[] = {n, 777, 1};
	for (size_t t = 0; t < sizeof batches / sizeof batches[0]; t++) {
		struct hashtable *h = test_table_simple(8, 8, ROOM, 0.95);
		ck_assert_uint_eq(build_records(h, k, v, n, batches[t]), distinct);
		ck_assert_int_eq(hashtable_stats(h, &st), 0);
		ck_assert_uint_eq(st.count, want.count);
		ck_assert_uint_gt(st.collisions, 0); /* each generation has its own seed: */
		ck_assert_uint_gt(st.overflowed_buckets, 0); /* paths differ, but both exist */
		ck_assert_int_eq(hashtable_verify(h), 0);
		for (size_t i = 0; i < n; i++) {
			uint64_t got = 0, exp = 0;
			ck_assert_int_eq(hashtable_search(h, &k[i], &got), 0);
			ck_assert_int_eq(hashtable_search(one, &k[i], &exp), 0);
			ck_assert_uint_eq(got, exp);
		}
		test_table_destroy(h);
	}
	/* and the later value won: the last record of each key */
	for (size_t i = n; i-- > 0;) {
		uint64_t got = 0;
		ck_assert_int_eq(hashtable_search(one, &k[i], &got), 0);
		size_t last = i;
		for (size_t j = i + 1; j < n; j++)
			if (k[j] == k[i])
				last = j;
		ck_assert_uint_eq(got, v[last]);
	}
	free(k);
	free(v);
	test_table_destroy(one);
}
END_TEST

Suite *suite_writebatch(void)
{
	Suite *s = suite_create("writebatch");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, batch_stores_every_record);
	tcase_add_test(tc, batch_general_widths);
	tcase_add_test(tc, builder_batch_matches_single_puts);
	tcase_add_test(tc, batch_stops_at_load_limit);
	tcase_add_test(tc, batch_sentinel_and_arguments);
	tcase_add_test(tc, batch_killed_leaves_prefix);
	tcase_add_test(tc, builder_batch_counts_and_limits);
	tcase_add_test(tc, batch_autogrow);
	suite_add_tcase(s, tc);
	return s;
}
