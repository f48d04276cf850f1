/* Shapes: the read paths of every shape but 8-byte keys with 8-byte values
 * (hashtable.c's k4v8 path for 4-byte keys with 8-byte values, and the wide
 * search, lookup_split, in its fixed instances 8/32 and 16/64 (split slots)
 * and 24/40 (interleaved), and its generic one), single and batched: hits,
 * misses that leave the value buffer alone, sentinel keys, batch answers
 * equal to single ones, and whole values and no lost keys while a writer
 * rewrites, deletes and moves keys; and every shape, 8/8 too, through each
 * read entry point across a grow and a replace. */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct shape {
	uint32_t ks, vs;
};

/* The fixed instances first, then widths only the generic one reads. */
static const struct shape shapes[] = {
	{4, 8}, {8, 32}, {16, 64}, {24, 40}, {3, 5}, {12, 20}, {32, 0},
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

/* Key i of a table: (i + 1) times an odd constant in the first (up to) 4
 * bytes, a bijection even on 3 bytes, so keys differ and are never all
 * zeros (the default empty sentinel); a mix of i in every later byte, so
 * keys differ in every word the compares read. */
static void mk_key(unsigned char *k, uint32_t ks, uint64_t i)
{
	uint32_t lo = (uint32_t)(i + 1) * 0x9e3779b1u;
	uint64_t x = (i + 1) * UINT64_C(0x9e3779b97f4a7c15);
	for (uint32_t b = 0; b < ks; b++) {
		if (b % 8 == 0)
			x = (x ^ (x >> 29)) * UINT64_C(0xbf58476d1ce4e5b9) + b;
		k[b] = (unsigned char)(b < 4 ? lo >> (8 * b) : x >> (8 * (b % 8)));
	}
}

/* Key i's value of generation g: every byte the same, so a torn copy shows. */
static void mk_val(unsigned char *v, uint32_t vs, uint64_t i, uint32_t g)
{
	memset(v, (int)((i * 7 + g) & 0xff), vs);
}

/* Whether v is a whole value of key i (any generation). */
static bool val_whole(const unsigned char *v, uint32_t vs)
{
	for (uint32_t b = 1; b < vs; b++)
		if (v[b] != v[0])
			return false;
	return true;
}

#define NKEYS 3000

static struct hashtable *filled(const struct shape *s)
{
	struct hashtable *h = test_table_simple(s->ks, s->vs, NKEYS, 0.8);
	unsigned char k[64], v[64];
	for (uint64_t i = 0; i < NKEYS; i++) {
		mk_key(k, s->ks, i);
		mk_val(v, s->vs, i, 0);
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
	return h;
}

/* Every key found with its value; keys never stored absent, the buffer
 * untouched; both sentinels refused with -EINVAL. */
START_TEST(single_hits_misses_sentinels)
{
	const struct shape *s = &shapes[_i];
	struct hashtable *h = filled(s);
	unsigned char k[64], v[128], want[64];
	for (uint64_t i = 0; i < NKEYS; i++) {
		mk_key(k, s->ks, i);
		mk_val(want, s->vs, i, 0);
		memset(v, 0xee, sizeof v);
		ck_assert_int_eq(hashtable_search(h, k, v), 0);
		ck_assert_msg(memcmp(v, want, s->vs) == 0, "%u/%u: key %llu's value", s->ks, s->vs,
		              (unsigned long long)i);
		ck_assert_uint_eq(v[s->vs], 0xee); /* nothing past the value */
	}
	for (uint64_t i = NKEYS; i < 2 * NKEYS; i++) {
		mk_key(k, s->ks, i);
		memset(v, 0xee, sizeof v);
		ck_assert_int_eq(hashtable_search(h, k, v), -1);
		for (size_t b = 0; b < sizeof v; b++)
			ck_assert_uint_eq(v[b], 0xee);
	}
	unsigned char empty[64], deleted[64];
	ck_assert_int_eq(hashtable_sentinels(h, empty, deleted), 0);
	memset(v, 0xee, sizeof v);
	ck_assert_int_eq(hashtable_search(h, empty, v), -EINVAL);
	ck_assert_int_eq(hashtable_search(h, deleted, v), -EINVAL);
	ck_assert_uint_eq(v[0], 0xee);
	/* a deleted key is absent again */
	mk_key(k, s->ks, 5);
	ck_assert_int_eq(hashtable_delete(h, k), 0);
	ck_assert_int_eq(hashtable_search(h, k, v), -1);
	ck_assert_uint_eq(v[0], 0xee);
	test_table_destroy(h);
}
END_TEST

/* Batches of several sizes over present and absent keys answer as single
 * searches do; absent keys' value bytes are left alone; a sentinel key in
 * a batch is refused. */
START_TEST(batch_equals_single)
{
	const struct shape *s = &shapes[_i];
	struct hashtable *h = filled(s);
	static const size_t sizes[] = {1, 7, 32, 33, 100, 257};
	size_t most = 257;
	unsigned char *keys = malloc(most * s->ks), *vals = malloc(most * s->vs + 1);
	int *found = malloc(most * sizeof *found);
	ck_assert(keys && vals && found);
	uint64_t rng = 12345;
	for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
		size_t n = sizes[z];
		for (int round = 0; round < 20; round++) {
			for (size_t j = 0; j < n; j++) {
				rng = rng * 6364136223846793005u + 1442695040888963407u;
				mk_key(keys + j * s->ks, s->ks, (rng >> 33) % (2 * NKEYS)); /* half absent */
			}
			memset(vals, 0xee, n * s->vs + 1);
			long hits = hashtable_search_batch(h, n, keys, vals, found);
			long want_hits = 0;
			for (size_t j = 0; j < n; j++) {
				unsigned char v[64];
				memset(v, 0xee, sizeof v);
				int rc = hashtable_search(h, keys + j * s->ks, v);
				ck_assert_int_eq(found[j], rc);
				want_hits += rc == 0;
				for (uint32_t b = 0; b < s->vs; b++)
					ck_assert_uint_eq(vals[j * s->vs + b], v[b]); /* 0xee if absent */
			}
			ck_assert_int_eq(hits, want_hits);
			ck_assert_uint_eq(vals[n * s->vs], 0xee);
		}
	}
	unsigned char empty[64];
	ck_assert_int_eq(hashtable_sentinels(h, empty, NULL), 0);
	memcpy(keys + 40 * s->ks, empty, s->ks);
	ck_assert_int_eq(hashtable_search_batch(h, 100, keys, vals, found), -EINVAL);
	free(keys);
	free(vals);
	free(found);
	test_table_destroy(h);
}
END_TEST

/* ---- every entry point across generations ---------------------------------- */

/* The shapes of every_entry_across_generations: 8/8 too, since there
 * hashtable_search's fast path takes the map and for every other shape it
 * refuses it (search_other_shape then uses the read path bound to it). */
static const struct shape entry_shapes[] = {
	{8, 8}, {4, 8}, {8, 32}, {16, 64}, {24, 40}, {3, 5}, {12, 20}, {32, 0},
};
#define NENTRY_SHAPES (sizeof entry_shapes / sizeof entry_shapes[0])

/* Every key i < NKEYS through hashtable_search, hashtable_get and a batch
 * of one: found with value generation g when present(i) (keys i % period
 * == 0 when period is not 0, else all), else -1 with the value buffer
 * untouched; then all NKEYS keys in one batch, with as many hits; either
 * sentinel in a batch of one refused. */
static void check_entries(struct hashtable *r, const struct shape *s, uint32_t g,
                          uint64_t period)
{
	unsigned char k[64], v[65], want[64];
	unsigned char *keys = malloc(NKEYS * s->ks), *vals = malloc(NKEYS * s->vs + 1);
	int *found = malloc(NKEYS * sizeof *found), one;
	ck_assert(keys && vals && found);
	long want_hits = 0;
	for (uint64_t i = 0; i < NKEYS; i++) {
		bool present = !period || i % period == 0;
		int want_rc = present ? 0 : -1;
		want_hits += present;
		mk_key(k, s->ks, i);
		memcpy(keys + i * s->ks, k, s->ks);
		mk_val(want, s->vs, i, g);
		memset(v, 0xee, sizeof v);
		ck_assert_int_eq(hashtable_search(r, k, v), want_rc);
		for (uint32_t b = 0; b < s->vs; b++)
			ck_assert_uint_eq(v[b], (present ? want[b] : 0xee));
		ck_assert_uint_eq(v[s->vs], 0xee);
		memset(v, 0xee, sizeof v);
		ck_assert_int_eq(hashtable_get(r, k, s->ks, v), want_rc);
		for (uint32_t b = 0; b < s->vs; b++)
			ck_assert_uint_eq(v[b], (present ? want[b] : 0xee));
		memset(v, 0xee, sizeof v);
		ck_assert_int_eq(hashtable_search_batch(r, 1, k, v, &one), present);
		ck_assert_int_eq(one, want_rc);
		for (uint32_t b = 0; b < s->vs; b++)
			ck_assert_uint_eq(v[b], (present ? want[b] : 0xee));
		ck_assert_uint_eq(v[s->vs], 0xee);
	}
	memset(vals, 0xee, NKEYS * s->vs + 1);
	ck_assert_int_eq(hashtable_search_batch(r, NKEYS, keys, vals, found), want_hits);
	for (uint64_t i = 0; i < NKEYS; i++) {
		bool present = !period || i % period == 0;
		ck_assert_int_eq(found[i], present ? 0 : -1);
		mk_val(want, s->vs, i, g);
		for (uint32_t b = 0; b < s->vs; b++)
			ck_assert_uint_eq(vals[i * s->vs + b], (present ? want[b] : 0xee));
	}
	ck_assert_uint_eq(vals[NKEYS * s->vs], 0xee);
	unsigned char sentinel[64];
	ck_assert_int_eq(hashtable_sentinels(r, sentinel, NULL), 0);
	ck_assert_int_eq(hashtable_search_batch(r, 1, sentinel, v, &one), -EINVAL);
	ck_assert_int_eq(hashtable_sentinels(r, NULL, sentinel), 0);
	ck_assert_int_eq(hashtable_search_batch(r, 1, sentinel, v, &one), -EINVAL);
	free(keys);
	free(vals);
	free(found);
}

/* Each shape found through every read entry point (hashtable_search,
 * hashtable_get, the batch call) on a second handle, across a grow (a new
 * generation of the same shape: that handle's map is stale at its next
 * call and refused) and a replace that keeps every third key with new
 * values (the others then read as absent, from the new generation). */
START_TEST(every_entry_across_generations)
{
	const struct shape *s = &entry_shapes[_i];
	struct hashtable_config cfg = {.ipc_key = test_unique_key(), .entries = NKEYS,
	                               .max_load = 0.8, .key_size = s->ks, .value_size = s->vs};
	struct hashtable *h = test_table_create(&cfg);
	unsigned char k[64], v[64];
	for (uint64_t i = 0; i < NKEYS; i++) {
		mk_key(k, s->ks, i);
		mk_val(v, s->vs, i, 0);
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
	struct hashtable *r = hashtable_open_key(cfg.ipc_key, 0);
	ck_assert_ptr_nonnull(r);
	check_entries(r, s, 0, 0);
	check_entries(h, s, 0, 0);

	ck_assert_int_eq(hashtable_grow(h, 2 * NKEYS), 0);
	test_register_table(h);
	ck_assert_uint_eq(hashtable_generation(r), 2);
	check_entries(r, s, 0, 0);

	struct hashtable_builder *b = NULL;
	ck_assert_int_eq(hashtable_replace_begin(h, NULL, &b), 0);
	test_register_table(h);
	for (uint64_t i = 0; i < NKEYS; i += 3) {
		mk_key(k, s->ks, i);
		mk_val(v, s->vs, i, 1);
		ck_assert_int_eq(hashtable_builder_put(b, k, v), 0);
	}
	ck_assert_int_eq(hashtable_replace_commit(b), 0);
	ck_assert_uint_eq(hashtable_generation(r), 3);
	check_entries(r, s, 1, 3);
	check_entries(h, s, 1, 3);
	ck_assert_int_eq(hashtable_close(r), 0);
	test_table_destroy(h);
}
END_TEST

/* Keys that differ only past their first 8 bytes, in generic shapes whose
 * slots are 8-aligned (12/20: 32-byte slots; 20/4: 24): split_find_prefix
 * passes every slot on the first word, and the rest of the key decides.
 * Each key found with its own value (search and batch), same-prefix keys
 * never stored absent. */
START_TEST(keys_alike_in_first_word)
{
	static const struct shape alike[] = {{12, 20}, {20, 4}};
	const struct shape *s = &alike[_i];
	enum { N = 300 };
	struct hashtable *h = test_table_simple(s->ks, s->vs, 2 * N, 0.8);
	unsigned char k[64], v[64], want[64];
	unsigned char *keys = malloc(2 * N * s->ks), *vals = malloc(2 * N * s->vs);
	int *found = malloc(2 * N * sizeof *found);
	ck_assert(keys && vals && found);
	for (uint64_t i = 0; i < 2 * N; i++) {
		memset(k, 0x5a, s->ks);
		memcpy(k + 8, &i, 4); /* bytes 8-11: i; the first word the same */
		memcpy(keys + i * s->ks, k, s->ks);
		if (i < N) {
			mk_val(v, s->vs, i, 0);
			ck_assert_int_eq(hashtable_update(h, k, v), 0);
		}
	}
	for (uint64_t i = 0; i < 2 * N; i++) {
		memset(v, 0xee, sizeof v);
		ck_assert_int_eq(hashtable_search(h, keys + i * s->ks, v), i < N ? 0 : -1);
		mk_val(want, s->vs, i, 0);
		for (uint32_t b = 0; b < s->vs; b++)
			ck_assert_uint_eq(v[b], (i < N ? want[b] : 0xee));
	}
	ck_assert_int_eq(hashtable_search_batch(h, 2 * N, keys, vals, found), N);
	for (uint64_t i = 0; i < 2 * N; i++) {
		ck_assert_int_eq(found[i], i < N ? 0 : -1);
		mk_val(want, s->vs, i, 0);
		if (i < N)
			ck_assert_int_eq(memcmp(vals + i * s->vs, want, s->vs), 0);
	}
	free(keys);
	free(vals);
	free(found);
	test_table_destroy(h);
}
END_TEST

/* ---- against a concurrent writer ------------------------------------------ */

#define STABLE 1000 /* keys 0..STABLE-1: rewritten, never deleted */
#define CHURN 1600  /* keys STABLE..STABLE+CHURN-1: deleted and put back */

struct writer_arg {
	struct hashtable *h;
	const struct shape *s;
	_Atomic int stop;
	uint64_t writes;
};

/* Rewrites stable keys with new generations and deletes and re-inserts
 * churn keys (each delete's sweep moves displaced keys back: the
 * readers' `moves` re-check). */
static void *writer(void *p)
{
	struct writer_arg *a = p;
	unsigned char k[64], v[64];
	uint64_t rng = 99;
	for (uint32_t g = 1; !atomic_load(&a->stop); g++) {
		rng = rng * 6364136223846793005u + 1442695040888963407u;
		uint64_t i = (rng >> 33) % STABLE, c = STABLE + (rng >> 13) % CHURN;
		mk_key(k, a->s->ks, i);
		mk_val(v, a->s->vs, i, g);
		if (hashtable_update(a->h, k, v) < 0)
			break;
		mk_key(k, a->s->ks, c);
		mk_val(v, a->s->vs, c, g);
		if (hashtable_delete(a->h, k) < -1 || hashtable_update(a->h, k, v) < 0)
			break;
		a->writes++;
	}
	return NULL;
}

/* Readers, single and batched, never miss a stable key and never see a
 * torn value of any key, while the writer runs. */
START_TEST(reads_under_writer)
{
	const struct shape *s = &shapes[_i];
	struct hashtable *h = test_table_simple(s->ks, s->vs, STABLE + CHURN, 0.8);
	unsigned char k[64], v[64];
	for (uint64_t i = 0; i < STABLE + CHURN; i++) {
		mk_key(k, s->ks, i);
		mk_val(v, s->vs, i, 0);
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
	struct writer_arg a = {.h = h, .s = s};
	pthread_t w;
	ck_assert_int_eq(pthread_create(&w, NULL, writer, &a), 0);
	enum { B = 64 };
	unsigned char keys[B * 64], vals[B * 64 + 1];
	int found[B];
	uint64_t idx[B], reads = 0, lost = 0, torn = 0, errors = 0, rng = 7;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int j = 0; j < 200; j++) {
			rng = rng * 6364136223846793005u + 1442695040888963407u;
			uint64_t i = (rng >> 33) % (STABLE + CHURN);
			mk_key(k, s->ks, i);
			int rc = hashtable_search(h, k, v);
			errors += rc < -1;
			lost += i < STABLE && rc != 0;
			torn += rc == 0 && !val_whole(v, s->vs);
			reads++;
		}
		for (size_t j = 0; j < B; j++) {
			rng = rng * 6364136223846793005u + 1442695040888963407u;
			idx[j] = (rng >> 33) % (STABLE + CHURN);
			mk_key(keys + j * s->ks, s->ks, idx[j]);
		}
		memset(vals, 0xee, sizeof vals);
		long hits = hashtable_search_batch(h, B, keys, vals, found);
		errors += hits < 0;
		for (size_t j = 0; hits >= 0 && j < B; j++) {
			lost += idx[j] < STABLE && found[j] != 0;
			torn += found[j] == 0 && !val_whole(vals + j * s->vs, s->vs);
			torn += found[j] != 0 && vals[j * s->vs] != 0xee && s->vs;
			reads++;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 <
	         (long)(300 * test_scale()));
	atomic_store(&a.stop, 1);
	pthread_join(w, NULL);
	printf("shapes %u/%u under a writer: %llu reads, %llu writer rounds, %llu lost, "
	       "%llu torn, %llu errors\n", s->ks, s->vs, (unsigned long long)reads,
	       (unsigned long long)a.writes, (unsigned long long)lost, (unsigned long long)torn,
	       (unsigned long long)errors);
	ck_assert_uint_gt(a.writes, 0);
	ck_assert_uint_eq(errors, 0);
	ck_assert_uint_eq(lost, 0);
	ck_assert_uint_eq(torn, 0);
	test_table_destroy(h);
}
END_TEST

Suite *suite_shapes(void)
{
	Suite *s = suite_create("shapes");
	TCase *tc = tcase_create("paths");
	tcase_add_loop_test(tc, single_hits_misses_sentinels, 0, NSHAPES);
	tcase_add_loop_test(tc, batch_equals_single, 0, NSHAPES);
	tcase_add_loop_test(tc, reads_under_writer, 0, NSHAPES);
	tcase_add_loop_test(tc, every_entry_across_generations, 0, NENTRY_SHAPES);
	tcase_add_loop_test(tc, keys_alike_in_first_word, 0, 2);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}
