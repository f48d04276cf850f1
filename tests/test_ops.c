/* Operations: the classic trio with its historical return codes, delete,
 * stats, iteration, batch search, and keys and values of odd widths. */
#include "testutil.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

/* Key i: i + 1 little-endian in the first (up to) 8 bytes, 0x5a after.
 * Never a default sentinel for the ranges used here. */
static void mk_key(unsigned char *k, uint32_t ks, uint64_t i)
{
	uint64_t v = i + 1;
	memset(k, 0x5a, ks);
	for (uint32_t b = 0; b < ks && b < 8; b++)
		k[b] = (unsigned char)(v >> (8 * b));
}

static void mk_val(unsigned char *v, uint32_t vs, uint64_t i, unsigned gen)
{
	for (uint32_t b = 0; b < vs; b++)
		v[b] = (unsigned char)(i * 131 + b * 7 + gen * 29 + 1);
}

static struct hashtable_stats stats_of(struct hashtable *h)
{
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	return st;
}

/* ---- classic API --------------------------------------------------------- */

/* A MemKeyValue program, unchanged: path, byte capacity, load as a fraction,
 * short widths, NULL sentinels; return codes 0 / 1 / -1. */
START_TEST(classic_program)
{
	char *path = test_temp_path();
	struct hashtable *h = hashtable_create(path, 1 << 20, 0.8, 16, 32, NULL, NULL);
	ck_assert_msg(h != NULL, "hashtable_create: %s", hashtable_last_error());
	test_register_shmid(hashtable_shmid(h));

	char key[16], val[32], out[32];
	for (int i = 0; i < 1000; i++) {
		memset(key, 0, sizeof key);
		snprintf(key, sizeof key, "user:%u", (unsigned)i & 0xFFFFu);
		memset(val, 0, sizeof val);
		snprintf(val, sizeof val, "value %d", i * 3);
		ck_assert_int_eq(hashtable_update(h, key, val), 0);
	}
	for (int i = 0; i < 1000; i += 3) {
		memset(key, 0, sizeof key);
		snprintf(key, sizeof key, "user:%u", (unsigned)i & 0xFFFFu);
		memset(val, 0, sizeof val);
		snprintf(val, sizeof val, "second %d", i);
		ck_assert_int_eq(hashtable_update(h, key, val), 1);
	}
	for (int i = 0; i < 1000; i++) {
		memset(key, 0, sizeof key);
		snprintf(key, sizeof key, "user:%u", (unsigned)i & 0xFFFFu);
		memset(out, 0, sizeof out);
		ck_assert_int_eq(hashtable_search(h, key, out), 0);
		char want[32];
		memset(want, 0, sizeof want);
		if (i % 3 == 0)
			snprintf(want, sizeof want, "second %d", i);
		else
			snprintf(want, sizeof want, "value %d", i * 3);
		ck_assert_mem_eq(out, want, sizeof want);
	}
	memset(key, 0, sizeof key);
	strcpy(key, "user:1000");
	memcpy(out, "untouched-untouched-untouched-!!", 32);
	ck_assert_int_eq(hashtable_search(h, key, out), -1);
	ck_assert_mem_eq(out, "untouched-untouched-untouched-!!", 32);

	struct hashtable_stats st = stats_of(h);
	ck_assert_uint_eq(st.count, 1000);
	ck_assert_uint_eq(st.key_size, 16);
	ck_assert_uint_eq(st.value_size, 32);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
	free(path);
}
END_TEST

/* Percent (80) as the classic programs passed it. */
START_TEST(classic_percent_and_sentinels)
{
	char *path = test_temp_path();
	unsigned char stop[8], del[8];
	memset(stop, 0xAB, sizeof stop);
	memset(del, 0xCD, sizeof del);
	struct hashtable *h = hashtable_create(path, 256 * 1024, 80, 8, 8, stop, del);
	ck_assert_msg(h != NULL, "hashtable_create: %s", hashtable_last_error());
	test_register_shmid(hashtable_shmid(h));
	struct hashtable_stats st = stats_of(h);
	ck_assert_double_eq_tol(st.max_load, 0.8, 1e-6);

	unsigned char v[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8];
	/* The custom sentinels are refused and never stored ... */
	ck_assert_int_eq(hashtable_update(h, stop, v), -EINVAL);
	ck_assert_int_eq(hashtable_update(h, del, v), -EINVAL);
	ck_assert_uint_eq(stats_of(h).count, 0);
	/* ... and the default ones are ordinary keys here. */
	unsigned char zero[8] = {0}, ones[8];
	memset(ones, 0xFF, sizeof ones);
	ck_assert_int_eq(hashtable_update(h, zero, v), 0);
	ck_assert_int_eq(hashtable_update(h, ones, v), 0);
	ck_assert_int_eq(hashtable_search(h, zero, out), 0);
	ck_assert_mem_eq(out, v, 8);
	ck_assert_int_eq(hashtable_search(h, ones, out), 0);
	ck_assert_int_eq(hashtable_delete(h, zero), 0);
	ck_assert_int_eq(hashtable_search(h, zero, out), -1);
	ck_assert_int_eq(hashtable_search(h, ones, out), 0);
	ck_assert_uint_eq(stats_of(h).count, 1);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
	free(path);
}
END_TEST

START_TEST(classic_invalid_args)
{
	struct hashtable *h = test_table_simple(8, 8, 1000, 0.8);
	unsigned char k[8], v[8], out[8], zero[8] = {0}, ones[8];
	memset(ones, 0xFF, 8);
	mk_key(k, 8, 1);
	mk_val(v, 8, 1, 0);
	ck_assert_int_eq(hashtable_update(NULL, k, v), -EINVAL);
	ck_assert_int_eq(hashtable_update(h, NULL, v), -EINVAL);
	ck_assert_int_eq(hashtable_update(h, k, NULL), -EINVAL);
	ck_assert_int_eq(hashtable_update(h, zero, v), -EINVAL);
	ck_assert_int_eq(hashtable_update(h, ones, v), -EINVAL);
	ck_assert_int_eq(hashtable_search(NULL, k, out), -EINVAL);
	ck_assert_int_eq(hashtable_search(h, NULL, out), -EINVAL);
	ck_assert_int_eq(hashtable_search(h, k, NULL), -EINVAL);
	ck_assert_int_eq(hashtable_delete(NULL, k), -EINVAL);
	ck_assert_int_eq(hashtable_delete(h, NULL), -EINVAL);
	ck_assert_int_eq(hashtable_delete(h, zero), -EINVAL);
	ck_assert_int_eq(hashtable_delete(h, ones), -EINVAL);
	/* the defaults: all 0x00 and all 0xFF */
	unsigned char e[8], d[8];
	ck_assert_int_eq(hashtable_sentinels(h, e, d), 0);
	ck_assert_mem_eq(e, zero, 8);
	ck_assert_mem_eq(d, ones, 8);
	/* None of that stored anything; the sentinels are not findable via
	 * iteration either. */
	struct hashtable_stats st = stats_of(h);
	ck_assert_uint_eq(st.count, 0);
	ck_assert_uint_eq(st.inserts, 0);
	uint64_t cur = 0;
	ck_assert_int_eq(hashtable_iterate(h, &cur, out, v), 0);
	ck_assert_int_eq(hashtable_stats(NULL, &st), -EINVAL);
	ck_assert_int_eq(hashtable_stats(h, NULL), -EINVAL);
	ck_assert_int_eq(hashtable_close(NULL), -EINVAL);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
}
END_TEST

/* A sentinel is never stored, so searching for one must not report it
 * found (the contract: passing a sentinel as a key is -EINVAL).  Empty
 * slots hold the empty sentinel's bytes, which a lookup must not match. */
START_TEST(search_sentinel_key)
{
	struct hashtable *h = test_table_simple(8, 8, 1000, 0.8);
	unsigned char zero[8] = {0}, ones[8], k[8], v[8], out[8];
	memset(ones, 0xFF, sizeof ones);
	for (uint64_t i = 0; i < 100; i++) {
		mk_key(k, 8, i);
		mk_val(v, 8, i, 0);
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
	memset(out, 0x77, sizeof out);
	int rz = hashtable_search(h, zero, out), ro = hashtable_search(h, ones, out);
	int found[2] = {9, 9};
	unsigned char keys[16], vals[16];
	memcpy(keys, zero, 8);
	memcpy(keys + 8, ones, 8);
	long rb = hashtable_search_batch(h, 2, keys, vals, found);
	test_table_destroy(h);

	struct hashtable_config cfg = {0};
	cfg.key_size = 3;
	cfg.value_size = 5;
	cfg.entries = 100;
	cfg.empty_key = "AAA";
	cfg.deleted_key = "ZZZ";
	h = test_table_create(&cfg);
	ck_assert_int_eq(hashtable_update(h, "abc", "12345"), 0);
	char o5[5];
	int ra = hashtable_search(h, "AAA", o5), rzz = hashtable_search(h, "ZZZ", o5);
	test_table_destroy(h);

	ck_assert_msg(rz == -EINVAL && ro == -EINVAL && ra == -EINVAL && rzz == -EINVAL,
	              "search of a sentinel key: default empty %d, default deleted %d, "
	              "custom empty %d, custom deleted %d (want -EINVAL = %d)",
	              rz, ro, ra, rzz, -EINVAL);
	ck_assert_msg(rb < 0 || (rb == 0 && found[0] == -1 && found[1] == -1),
	              "search_batch of the two sentinels: %ld found (found[] = %d, %d)", rb,
	              found[0], found[1]);
}
END_TEST

/* hashtable_search's 8-byte-key fast path takes its sentinels from the
 * table, not as constants: with custom ones, the default patterns (all
 * 0x00, all 0xFF) are keys like any other, found wherever they lie, and
 * the custom ones are refused; a miss, decided in its home bucket or past
 * it (load 0.95: long paths), leaves the value buffer as it was. */
START_TEST(search_k8v8_custom_sentinels)
{
	const size_t n = 3000;
	unsigned char empty[8], deleted[8], zero[8] = {0}, ones[8], k[8], v[8], out[8];
	memset(empty, 0x11, 8);
	memset(deleted, 0x22, 8);
	memset(ones, 0xFF, 8);
	struct hashtable_config cfg = {0};
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = n + 2;
	cfg.max_load = 0.95;
	cfg.empty_key = empty;
	cfg.deleted_key = deleted;
	struct hashtable *h = test_table_create(&cfg);
	for (uint64_t i = 0; i < n; i++) {
		mk_key(k, 8, i);
		mk_val(v, 8, i, 0);
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
	ck_assert_int_eq(hashtable_update(h, zero, "zero-key"), 0);
	ck_assert_int_eq(hashtable_update(h, ones, "ones-key"), 0);
	uint64_t hist[3];
	ck_assert_int_eq(hashtable_probe_histogram(h, hist, 3), 0);
	ck_assert_msg(hist[1] > 0 && hist[2] > 0, "no key past its home bucket: %llu %llu",
	              (unsigned long long)hist[1], (unsigned long long)hist[2]);

	ck_assert_int_eq(hashtable_search(h, zero, out), 0);
	ck_assert_mem_eq(out, "zero-key", 8);
	ck_assert_int_eq(hashtable_search(h, ones, out), 0);
	ck_assert_mem_eq(out, "ones-key", 8);
	for (uint64_t i = 0; i < n; i++) {
		mk_key(k, 8, i);
		mk_val(v, 8, i, 0);
		ck_assert_int_eq(hashtable_search(h, k, out), 0);
		ck_assert_mem_eq(out, v, 8);
	}
	for (uint64_t i = n; i < 4 * n; i++) {
		mk_key(k, 8, i);
		memset(out, 0x77, 8);
		ck_assert_int_eq(hashtable_search(h, k, out), -1);
		ck_assert_mem_eq(out, "\x77\x77\x77\x77\x77\x77\x77\x77", 8);
	}
	memset(out, 0x77, 8);
	ck_assert_int_eq(hashtable_search(h, empty, out), -EINVAL);
	ck_assert_int_eq(hashtable_search(h, deleted, out), -EINVAL);
	ck_assert_mem_eq(out, "\x77\x77\x77\x77\x77\x77\x77\x77", 8);
	test_table_destroy(h);
}
END_TEST

/* At the load limit a new key gets -ENOMEM, an existing key is still
 * overwritten, and nothing is lost. */
START_TEST(classic_full_table)
{
	char *path = test_temp_path();
	struct hashtable *h = hashtable_create(path, 64 * 1024, 0.8, 8, 8, NULL, NULL);
	ck_assert_msg(h != NULL, "hashtable_create: %s", hashtable_last_error());
	test_register_shmid(hashtable_shmid(h));
	struct hashtable_stats st = stats_of(h);
	ck_assert_uint_gt(st.max_count, 100);
	ck_assert_uint_le(st.max_count, st.slots);

	unsigned char k[8], v[8], out[8];
	uint64_t n = 0;
	int rc;
	for (;;) {
		mk_key(k, 8, n);
		mk_val(v, 8, n, 0);
		rc = hashtable_update(h, k, v);
		if (rc != 0)
			break;
		n++;
		ck_assert_uint_le(n, st.slots);
	}
	ck_assert_int_eq(rc, -ENOMEM);
	ck_assert_uint_eq(n, st.max_count);
	ck_assert_uint_eq(stats_of(h).count, n);
	ck_assert_int_eq(hashtable_search(h, k, out), -1); /* refused key absent */
	for (uint64_t i = 0; i < n; i += 7) {
		mk_key(k, 8, i);
		mk_val(v, 8, i, 1);
		ck_assert_int_eq(hashtable_update(h, k, v), 1);
	}
	mk_key(k, 8, n + 1);
	ck_assert_int_eq(hashtable_update(h, k, v), -ENOMEM);
	for (uint64_t i = 0; i < n; i++) {
		mk_key(k, 8, i);
		mk_val(v, 8, i, i % 7 == 0);
		ck_assert_int_eq(hashtable_search(h, k, out), 0);
		ck_assert_mem_eq(out, v, 8);
	}
	ck_assert_uint_eq(stats_of(h).count, n);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
	free(path);
}
END_TEST

/* ---- delete, stats, iterate --------------------------------------------- */

START_TEST(delete_codes_and_reuse)
{
	struct hashtable *h = test_table_simple(8, 8, 200, 0.8);
	struct hashtable_stats st = stats_of(h);
	unsigned char k[8], v[8], out[8];
	uint64_t n = st.max_count;
	for (uint64_t i = 0; i < n; i++) {
		mk_key(k, 8, i);
		mk_val(v, 8, i, 0);
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
	mk_key(k, 8, n);
	ck_assert_int_eq(hashtable_update(h, k, v), -ENOMEM);
	/* delete: 0 then -1 */
	mk_key(k, 8, 3);
	ck_assert_int_eq(hashtable_delete(h, k), 0);
	ck_assert_int_eq(hashtable_delete(h, k), -1);
	ck_assert_int_eq(hashtable_search(h, k, out), -1);
	st = stats_of(h);
	ck_assert_uint_eq(st.count, n - 1);
	ck_assert_uint_eq(st.deleted, 0);
	/* the freed room is usable at once, by a different key */
	mk_key(k, 8, n + 10);
	mk_val(v, 8, n + 10, 0);
	ck_assert_int_eq(hashtable_update(h, k, v), 0);
	ck_assert_int_eq(hashtable_search(h, k, out), 0);
	ck_assert_mem_eq(out, v, 8);
	mk_key(k, 8, n + 11);
	ck_assert_int_eq(hashtable_update(h, k, v), -ENOMEM);
	/* deleting a key never stored */
	mk_key(k, 8, n + 12);
	ck_assert_int_eq(hashtable_delete(h, k), -1);
	/* delete everything, then fill again with fresh keys */
	for (uint64_t i = 0; i < n; i++) {
		if (i == 3)
			continue;
		mk_key(k, 8, i);
		ck_assert_int_eq(hashtable_delete(h, k), 0);
	}
	mk_key(k, 8, n + 10);
	ck_assert_int_eq(hashtable_delete(h, k), 0);
	st = stats_of(h);
	ck_assert_uint_eq(st.count, 0);
	ck_assert_uint_eq(st.deleted, 0);
	ck_assert_uint_eq(st.collisions, 0);
	ck_assert_int_eq(hashtable_verify(h), 0);
	for (uint64_t i = 0; i < n; i++) {
		mk_key(k, 8, 1000000 + i);
		mk_val(v, 8, i, 2);
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
	ck_assert_uint_eq(stats_of(h).count, n);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
}
END_TEST

START_TEST(stats_fields)
{
	time_t t0 = time(NULL);
	struct hashtable_config cfg = {0};
	cfg.key_size = 12;
	cfg.value_size = 20;
	cfg.entries = 5000;
	cfg.max_load = 0.75;
	struct hashtable *h = test_table_create(&cfg);
	struct hashtable_stats st = stats_of(h);
	struct shmid_ds ds;
	ck_assert_int_eq(shmctl(test_data_shmid(h), IPC_STAT, &ds), 0);

	ck_assert_uint_eq(st.key_size, 12);
	ck_assert_uint_eq(st.value_size, 20);
	ck_assert_uint_ge(st.slot_size, 32);
	ck_assert_uint_ge(st.slots_per_bucket, 1);
	ck_assert_uint_eq(st.slots, st.buckets * st.slots_per_bucket);
	ck_assert_double_eq_tol(st.max_load, 0.75, 1e-9);
	ck_assert_uint_ge(st.max_count, 5000);
	ck_assert_uint_le(st.max_count, (uint64_t)(st.slots * 0.75) + 1);
	ck_assert_uint_ge(st.max_count + 1, (uint64_t)(st.slots * 0.75));
	ck_assert_uint_eq(st.segment_bytes, ds.shm_segsz);
	ck_assert_uint_ge(st.segment_bytes, st.slots * st.slot_size);
	ck_assert_uint_eq(st.count, 0);
	ck_assert_uint_eq(st.deleted, 0);
	ck_assert_uint_eq(st.payload_bytes, 0);
	ck_assert_int_eq(st.shmid, hashtable_shmid(h));
	ck_assert_int_eq(st.ipc_key, cfg.ipc_key);
	ck_assert_uint_eq(st.mode & 0777, 0600);
	ck_assert_int_eq(st.creator_pid, getpid());
	ck_assert_int_ge(st.created, (int64_t)t0 - 1);
	ck_assert_int_le(st.created, (int64_t)time(NULL) + 1);
	ck_assert_uint_eq(st.nattch, 1);
	ck_assert_int_eq(st.hugetlb, 0);
	ck_assert_uint_ge(st.format_version, 1);

	unsigned char k[12], v[20];
	for (uint64_t i = 0; i < 5000; i++) {
		mk_key(k, 12, i);
		mk_val(v, 20, i, 0);
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
	for (uint64_t i = 0; i < 1000; i++) {
		mk_key(k, 12, i);
		ck_assert_int_eq(hashtable_update(h, k, v), 1);
	}
	for (uint64_t i = 1000; i < 1500; i++) {
		mk_key(k, 12, i);
		ck_assert_int_eq(hashtable_delete(h, k), 0);
	}
	st = stats_of(h);
	ck_assert_uint_eq(st.count, 4500);
	ck_assert_uint_eq(st.deleted, 0);
	ck_assert_uint_eq(st.payload_bytes, 4500 * 32);
	ck_assert_uint_eq(st.inserts, 5000);
	ck_assert_uint_eq(st.updates, 1000);
	ck_assert_uint_eq(st.deletes, 500);
	ck_assert_uint_eq(st.recoveries, 0);

	/* collisions, max_probe and hit_probes agree with the histogram */
	uint64_t hist[4096] = {0};
	ck_assert_int_eq(hashtable_probe_histogram(h, hist, 4096), 0);
	uint64_t sum = 0, coll = 0, maxp = 0;
	for (uint64_t i = 0; i < 4096; i++) {
		sum += hist[i];
		coll += i * hist[i];
		if (hist[i])
			maxp = i;
	}
	ck_assert_uint_lt(maxp, 4095);
	ck_assert_uint_eq(sum, st.count);
	ck_assert_uint_eq(coll, st.collisions);
	/* max_probe is a high-water mark: deletes and relocations lower the
	 * histogram's maximum but not the mark */
	ck_assert_uint_le(maxp, st.max_probe);
	ck_assert_uint_gt(st.max_probe, 0);
	ck_assert_double_eq_tol(st.hit_probes, 1.0 + (double)coll / (double)st.count, 1e-6);
	ck_assert_double_ge(st.miss_probes, 1.0);
	ck_assert_uint_le(st.overflowed_buckets, st.buckets);
	/* a short histogram folds the tail into its last bin */
	uint64_t h2[2] = {0, 0};
	ck_assert_int_eq(hashtable_probe_histogram(h, h2, 2), 0);
	ck_assert_uint_eq(h2[0], hist[0]);
	ck_assert_uint_eq(h2[0] + h2[1], st.count);
	ck_assert_int_eq(hashtable_probe_histogram(h, NULL, 4), -EINVAL);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
}
END_TEST

START_TEST(iterate_each_once)
{
	const uint64_t n = 3000;
	struct hashtable *h = test_table_simple(8, 16, n, 0.8);
	unsigned char k[8], v[16], gotk[8], gotv[16];
	for (uint64_t i = 0; i < n; i++) {
		mk_key(k, 8, i);
		mk_val(v, 16, i, 0);
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
	for (uint64_t i = 0; i < n; i += 4) {
		mk_key(k, 8, i);
		ck_assert_int_eq(hashtable_delete(h, k), 0);
	}
	unsigned char *seen = calloc(n, 1);
	ck_assert_ptr_nonnull(seen);
	uint64_t cur = 0, got = 0;
	int rc;
	while ((rc = hashtable_iterate(h, &cur, gotk, gotv)) == 1) {
		uint64_t id = 0;
		memcpy(&id, gotk, 8);
		ck_assert_uint_ge(id, 1);
		id -= 1;
		ck_assert_uint_lt(id, n);
		ck_assert_msg(id % 4 != 0, "deleted key %llu iterated", (unsigned long long)id);
		ck_assert_msg(!seen[id], "key %llu iterated twice", (unsigned long long)id);
		seen[id] = 1;
		mk_val(v, 16, id, 0);
		ck_assert_mem_eq(gotv, v, 16);
		got++;
		ck_assert_uint_le(got, n);
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(got, n - (n + 3) / 4);
	/* the end stays the end; NULL key/value pointers are allowed */
	ck_assert_int_eq(hashtable_iterate(h, &cur, gotk, gotv), 0);
	cur = 0;
	got = 0;
	while (hashtable_iterate(h, &cur, NULL, NULL) == 1)
		got++;
	ck_assert_uint_eq(got, n - (n + 3) / 4);
	ck_assert_int_eq(hashtable_iterate(h, NULL, gotk, gotv), -EINVAL);
	ck_assert_int_eq(hashtable_iterate(NULL, &cur, gotk, gotv), -EINVAL);
	free(seen);
	test_table_destroy(h);
}
END_TEST

START_TEST(search_batch)
{
	const size_t n = 1000;
	struct hashtable *h = test_table_simple(8, 8, n, 0.8);
	unsigned char k[8], v[8];
	for (uint64_t i = 0; i < n; i += 2) {
		mk_key(k, 8, i);
		mk_val(v, 8, i, 0);
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
	unsigned char *keys = malloc(n * 8), *vals = malloc(n * 8);
	int *found = malloc(n * sizeof *found);
	ck_assert(keys && vals && found);
	for (uint64_t i = 0; i < n; i++)
		mk_key(keys + i * 8, 8, i);
	memset(vals, 0xEE, n * 8);
	for (size_t i = 0; i < n; i++)
		found[i] = 42;
	ck_assert_int_eq(hashtable_search_batch(h, n, keys, vals, found), (long)(n / 2));
	for (uint64_t i = 0; i < n; i++) {
		if (i % 2 == 0) {
			ck_assert_int_eq(found[i], 0);
			mk_val(v, 8, i, 0);
			ck_assert_mem_eq(vals + i * 8, v, 8);
		} else {
			unsigned char ee[8];
			memset(ee, 0xEE, 8);
			ck_assert_int_eq(found[i], -1);
			ck_assert_mem_eq(vals + i * 8, ee, 8);
		}
	}
	ck_assert_int_eq(hashtable_search_batch(h, 0, keys, vals, found), 0);
	ck_assert_int_lt(hashtable_search_batch(h, n, NULL, vals, found), 0);
	free(keys);
	free(vals);
	free(found);
	test_table_destroy(h);
}
END_TEST

/* The 8-byte-key fast paths answer keys in their home bucket, the next one
 * and further (search_rest, the batch's walk rounds) the same as the
 * general path: at load 0.95 many keys lie two or more buckets past home,
 * and most misses must walk.  Every present key is found with its value,
 * every absent one is absent, singly and in batches of every shape. */
START_TEST(search_long_paths)
{
	const size_t n = 4000;
	struct hashtable *h = test_table_simple(8, 8, n, 0.95);
	unsigned char k[8], v[8];
	for (uint64_t i = 0; i < n; i++) {
		mk_key(k, 8, i);
		mk_val(v, 8, i, 0);
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
	uint64_t hist[4];
	ck_assert_int_eq(hashtable_probe_histogram(h, hist, 4), 0);
	ck_assert_msg(hist[2] + hist[3] > 0, "no key lies two buckets past home: %llu %llu",
	              (unsigned long long)hist[2], (unsigned long long)hist[3]);
	/* keys 0..2n-1 interleaved: even ones present (i / 2 < n), odd absent */
	const size_t q = 2 * n;
	unsigned char *keys = malloc(q * 8), *vals = malloc(q * 8);
	int *found = malloc(q * sizeof *found);
	ck_assert(keys && vals && found);
	for (size_t i = 0; i < q; i++)
		mk_key(keys + i * 8, 8, i % 2 ? n + i : i / 2);
	for (size_t i = 0; i < q; i++) {
		unsigned char got[8];
		int rc = hashtable_search(h, keys + i * 8, got);
		ck_assert_int_eq(rc, i % 2 ? -1 : 0);
		if (rc == 0) {
			mk_val(v, 8, i / 2, 0);
			ck_assert_mem_eq(got, v, 8);
		}
	}
	static const size_t sizes[] = {1, 5, 16, 17, 33, 256, 8000};
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		memset(vals, 0xEE, q * 8);
		long hits = 0;
		for (size_t at = 0; at < q; at += sizes[s]) {
			size_t m = q - at < sizes[s] ? q - at : sizes[s];
			long rc = hashtable_search_batch(h, m, keys + at * 8, vals + at * 8, found + at);
			ck_assert_int_ge(rc, 0);
			hits += rc;
		}
		ck_assert_int_eq(hits, (long)n);
		for (size_t i = 0; i < q; i++) {
			ck_assert_msg(found[i] == (i % 2 ? -1 : 0), "batch of %zu: key %zu found %d",
			              sizes[s], i, found[i]);
			if (i % 2 == 0) {
				mk_val(v, 8, i / 2, 0);
				ck_assert_mem_eq(vals + i * 8, v, 8);
			}
		}
	}
	free(keys);
	free(vals);
	free(found);
	test_table_destroy(h);
}
END_TEST

/* ---- odd widths ---------------------------------------------------------- */

/* Inserts n keys of the given widths, overwrites a third, deletes a quarter,
 * and checks every key and value, iteration and verify. */
static void roundtrip(uint32_t ks, uint32_t vs, uint64_t n, double load)
{
	struct hashtable *h = test_table_simple(ks, vs, n, load);
	unsigned char *k = malloc(ks), *v = malloc(vs + 1), *out = malloc(vs + 1);
	ck_assert(k && v && out);
	for (uint64_t i = 0; i < n; i++) {
		mk_key(k, ks, i);
		mk_val(v, vs, i, 0);
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
	for (uint64_t i = 0; i < n; i += 3) {
		mk_key(k, ks, i);
		mk_val(v, vs, i, 1);
		ck_assert_int_eq(hashtable_update(h, k, v), 1);
	}
	for (uint64_t i = 1; i < n; i += 4) {
		mk_key(k, ks, i);
		ck_assert_int_eq(hashtable_delete(h, k), 0);
	}
	uint64_t live = 0;
	for (uint64_t i = 0; i < n; i++) {
		mk_key(k, ks, i);
		int rc = hashtable_search(h, k, vs ? out : NULL);
		if (i % 4 == 1) {
			ck_assert_int_eq(rc, -1);
			continue;
		}
		live++;
		ck_assert_msg(rc == 0, "key %llu of %u bytes: search %d",
		              (unsigned long long)i, ks, rc);
		if (vs) {
			mk_val(v, vs, i, i % 3 == 0);
			ck_assert_msg(memcmp(out, v, vs) == 0, "key %llu: wrong value",
			              (unsigned long long)i);
		}
	}
	struct hashtable_stats st = stats_of(h);
	ck_assert_uint_eq(st.count, live);
	ck_assert_uint_eq(st.key_size, ks);
	ck_assert_uint_eq(st.value_size, vs);
	uint64_t cur = 0, it = 0;
	while (hashtable_iterate(h, &cur, k, vs ? v : NULL) == 1)
		it++;
	ck_assert_uint_eq(it, live);
	ck_assert_int_eq(hashtable_verify(h), 0);
	free(k);
	free(v);
	free(out);
	test_table_destroy(h);
}

START_TEST(width_3_5) { roundtrip(3, 5, 5000, 0.8); }
END_TEST
START_TEST(width_16_64) { roundtrip(16, 64, 5000, 0.8); }
END_TEST
START_TEST(width_255_8) { roundtrip(255, 8, 2000, 0.8); }
END_TEST
START_TEST(width_8_0) { roundtrip(8, 0, 5000, 0.8); }
END_TEST
START_TEST(width_max_key) { roundtrip(HASHTABLE_MAX_KEY, 4, 300, 0.8); }
END_TEST
START_TEST(width_64k_value) { roundtrip(8, 64 * 1024, 100, 0.8); }
END_TEST

/* 1-byte keys: every one of the 254 non-sentinel keys fits and is found. */
START_TEST(width_1_all_keys)
{
	struct hashtable *h = test_table_simple(1, 4, 254, 0.95);
	struct hashtable_stats st = stats_of(h);
	ck_assert_uint_ge(st.max_count, 254);
	for (int c = 1; c < 255; c++) {
		unsigned char k = (unsigned char)c, v[4] = {(unsigned char)c, 1, 2, 3};
		ck_assert_int_eq(hashtable_update(h, &k, v), 0);
	}
	unsigned char z = 0, f = 0xFF, v[4] = {0};
	ck_assert_int_eq(hashtable_update(h, &z, v), -EINVAL);
	ck_assert_int_eq(hashtable_update(h, &f, v), -EINVAL);
	for (int c = 1; c < 255; c++) {
		unsigned char k = (unsigned char)c, out[4];
		ck_assert_int_eq(hashtable_search(h, &k, out), 0);
		ck_assert_int_eq(out[0], c);
		ck_assert_int_eq(out[3], 3);
	}
	ck_assert_uint_eq(stats_of(h).count, 254);
	for (int c = 1; c < 255; c += 2) {
		unsigned char k = (unsigned char)c;
		ck_assert_int_eq(hashtable_delete(h, &k), 0);
	}
	for (int c = 1; c < 255; c++) {
		unsigned char k = (unsigned char)c, out[4];
		ck_assert_int_eq(hashtable_search(h, &k, out), c % 2 ? -1 : 0);
	}
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
}
END_TEST

/* value_size 0: a set of keys; search takes a NULL datum. */
START_TEST(width_value_zero_set)
{
	struct hashtable *h = test_table_simple(8, 0, 100, 0.8);
	unsigned char k[8];
	char dummy = 0;
	mk_key(k, 8, 5);
	ck_assert_int_eq(hashtable_update(h, k, &dummy), 0);
	ck_assert_int_eq(hashtable_update(h, k, &dummy), 1);
	ck_assert_int_eq(hashtable_search(h, k, NULL), 0);
	mk_key(k, 8, 6);
	ck_assert_int_eq(hashtable_search(h, k, NULL), -1);
	ck_assert_uint_eq(stats_of(h).payload_bytes, 8);
	test_table_destroy(h);
}
END_TEST

/* Custom sentinels "AAA" / "ZZZ" on 3-byte keys. */
START_TEST(custom_sentinels)
{
	struct hashtable_config cfg = {0};
	cfg.key_size = 3;
	cfg.value_size = 5;
	cfg.entries = 1000;
	cfg.empty_key = "AAA";
	cfg.deleted_key = "ZZZ";
	struct hashtable *h = test_table_create(&cfg);
	char e[3] = {0}, d[3] = {0};
	ck_assert_int_eq(hashtable_sentinels(h, e, d), 0);
	ck_assert_mem_eq(e, "AAA", 3);
	ck_assert_mem_eq(d, "ZZZ", 3);
	ck_assert_int_eq(hashtable_sentinels(h, NULL, d), 0);
	ck_assert_int_eq(hashtable_sentinels(NULL, e, d), -EINVAL);
	ck_assert_int_eq(hashtable_update(h, "AAA", "12345"), -EINVAL);
	ck_assert_int_eq(hashtable_update(h, "ZZZ", "12345"), -EINVAL);
	ck_assert_int_eq(hashtable_delete(h, "AAA"), -EINVAL);
	char out[5];
	unsigned char zero[3] = {0, 0, 0}, ones[3] = {0xFF, 0xFF, 0xFF};
	ck_assert_int_eq(hashtable_update(h, zero, "zero!"), 0);
	ck_assert_int_eq(hashtable_update(h, ones, "ones!"), 0);
	ck_assert_int_eq(hashtable_update(h, "AAB", "aab!!"), 0);
	ck_assert_int_eq(hashtable_update(h, "ZZY", "zzy!!"), 0);
	ck_assert_int_eq(hashtable_search(h, zero, out), 0);
	ck_assert_mem_eq(out, "zero!", 5);
	ck_assert_int_eq(hashtable_search(h, ones, out), 0);
	ck_assert_mem_eq(out, "ones!", 5);
	ck_assert_int_eq(hashtable_search(h, "AAB", out), 0);
	ck_assert_mem_eq(out, "aab!!", 5);
	ck_assert_int_eq(hashtable_delete(h, zero), 0);
	ck_assert_int_eq(hashtable_search(h, zero, out), -1);
	ck_assert_int_eq(hashtable_search(h, "ZZY", out), 0);
	ck_assert_mem_eq(out, "zzy!!", 5);
	/* fill many keys: the empty pattern "AAA" must not be mistaken for data */
	unsigned char k[3];
	uint64_t stored = 0;
	for (int a = 'a'; a <= 'z'; a++)
		for (int b = 'a'; b <= 'z'; b++) {
			k[0] = (unsigned char)a;
			k[1] = (unsigned char)b;
			k[2] = 'A';
			ck_assert_int_eq(hashtable_update(h, k, "val!!"), 0);
			stored++;
		}
	ck_assert_uint_eq(stats_of(h).count, stored + 3);
	uint64_t cur = 0, it = 0;
	unsigned char ik[3];
	while (hashtable_iterate(h, &cur, ik, NULL) == 1) {
		ck_assert(memcmp(ik, "AAA", 3) != 0 && memcmp(ik, "ZZZ", 3) != 0);
		it++;
	}
	ck_assert_uint_eq(it, stored + 3);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
}
END_TEST

/* Keys equal but for their last byte are distinct keys. */
START_TEST(keys_differ_in_last_byte)
{
	const uint32_t widths[] = {2, 8, 64, 255};
	for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
		uint32_t ks = widths[w];
		struct hashtable *h = test_table_simple(ks, 4, 300, 0.8);
		unsigned char *k = malloc(ks);
		ck_assert_ptr_nonnull(k);
		memset(k, 0x41, ks);
		for (int c = 0; c < 256; c++) {
			k[ks - 1] = (unsigned char)c;
			uint32_t v = (uint32_t)c * 1000003u;
			ck_assert_int_eq(hashtable_update(h, k, &v), 0);
		}
		for (int c = 0; c < 256; c++) {
			k[ks - 1] = (unsigned char)c;
			uint32_t v = 0;
			ck_assert_int_eq(hashtable_search(h, k, &v), 0);
			ck_assert_uint_eq(v, (uint32_t)c * 1000003u);
		}
		/* ... and in the first byte */
		k[ks - 1] = 0x41;
		k[0] = 0x42;
		uint32_t v = 0;
		ck_assert_int_eq(hashtable_search(h, k, &v), ks == 1 ? 0 : -1);
		ck_assert_uint_eq(stats_of(h).count, 256);
		ck_assert_int_eq(hashtable_verify(h), 0);
		free(k);
		test_table_destroy(h);
	}
}
END_TEST

START_TEST(version_string)
{
	const char *v = shmkv_version();
	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(v, SHMKV_VERSION_STRING);
}
END_TEST

/* Custom sentinels in the widths whose free-slot test has its own code
 * (4-byte keys: one load; 16 and 24 bytes: whole words against both
 * sentinels at once): keys of all 0x00 and all 0xFF bytes are ordinary
 * keys there, and a table filled to a 0.95 load limit, half deleted and
 * filled again keeps every key with its value (a free-slot test that took
 * them for free would let an insert overwrite them) and passes verify. */
static const unsigned sentinel_widths[] = {4, 16, 24};

static void wide_pattern(unsigned char *k, unsigned w, uint64_t i)
{
	if (i == 0 || i == 1) { /* the default sentinels, ordinary keys here */
		memset(k, i == 0 ? 0x00 : 0xFF, w);
		return;
	}
	for (unsigned b = 0; b < w; b++)
		k[b] = (unsigned char)((i * 0x9E3779B97F4A7C15ull) >> (8 * (b % 8)) ^ b ^ (i >> 24));
	memcpy(k, &i, w < 8 ? w : 8);
}

START_TEST(custom_sentinels_by_width)
{
	const unsigned w = sentinel_widths[_i];
	unsigned char empty[24], deleted[24], k[24];
	memset(empty, 0x5A, w);
	memset(deleted, 0xA5, w);
	struct hashtable_config cfg = {0};
	cfg.ipc_key = test_unique_key();
	cfg.key_size = w;
	cfg.value_size = 8;
	cfg.entries = 2000;
	cfg.max_load = 0.95;
	cfg.empty_key = empty;
	cfg.deleted_key = deleted;
	struct hashtable *h = test_table_create(&cfg);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	const uint64_t n = st.max_count;
	for (uint64_t i = 0; i < n; i++) {
		wide_pattern(k, w, i);
		uint64_t v = i * 3 + 1;
		ck_assert_msg(hashtable_update(h, k, &v) == 0, "width %u: insert %llu", w,
		              (unsigned long long)i);
	}
	for (uint64_t i = 2; i < n; i += 2) {
		wide_pattern(k, w, i);
		ck_assert_int_eq(hashtable_delete(h, k), 0);
	}
	for (uint64_t i = 2; i < n; i += 2) {
		wide_pattern(k, w, i);
		uint64_t v = i * 3 + 1;
		ck_assert_int_eq(hashtable_update(h, k, &v), 0);
	}
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_uint_eq(st.count, n);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t v = 0;
		wide_pattern(k, w, i);
		ck_assert_msg(hashtable_search(h, k, &v) == 0 && v == i * 3 + 1,
		              "width %u: key %llu lost or wrong (%llu)", w, (unsigned long long)i,
		              (unsigned long long)v);
	}
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
}
END_TEST

Suite *suite_ops(void)
{
	Suite *s = suite_create("ops");
	TCase *tc = tcase_create("classic");
	tcase_add_test(tc, classic_program);
	tcase_add_test(tc, classic_percent_and_sentinels);
	tcase_add_test(tc, classic_invalid_args);
	tcase_add_test(tc, search_sentinel_key);
	tcase_add_test(tc, search_k8v8_custom_sentinels);
	tcase_add_test(tc, classic_full_table);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);

	tc = tcase_create("extended");
	tcase_add_test(tc, delete_codes_and_reuse);
	tcase_add_test(tc, stats_fields);
	tcase_add_test(tc, iterate_each_once);
	tcase_add_test(tc, search_batch);
	tcase_add_test(tc, search_long_paths);
	tcase_add_test(tc, version_string);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);

	tc = tcase_create("widths");
	tcase_add_test(tc, width_1_all_keys);
	tcase_add_test(tc, width_3_5);
	tcase_add_test(tc, width_16_64);
	tcase_add_test(tc, width_255_8);
	tcase_add_test(tc, width_8_0);
	tcase_add_test(tc, width_max_key);
	tcase_add_test(tc, width_64k_value);
	tcase_add_test(tc, width_value_zero_set);
	tcase_add_test(tc, custom_sentinels);
	tcase_add_loop_test(tc, custom_sentinels_by_width, 0,
	                    (int)(sizeof sentinel_widths / sizeof sentinel_widths[0]));
	tcase_add_test(tc, keys_differ_in_last_byte);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);
	return s;
}
