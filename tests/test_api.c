/* The API's contract details: one meaning per return code (-1 is only "not
 * found"; writes through a read-only handle are -EROFS), hashtable_strerror
 * a pure function of its code, hashtable_last_error naming a failure's
 * specifics, the length-taking calls, the naming file's identity, and the
 * host check. */
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

static struct hashtable *table_8x8(key_t *key)
{
	struct hashtable_config cfg = {0};
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = 100;
	struct hashtable *h = test_table_create(&cfg);
	if (key)
		*key = cfg.ipc_key;
	return h;
}

/* ---- item: read-only writes are -EROFS, -1 only means "not found" -------- */

START_TEST(rdonly_writes_are_erofs)
{
	key_t key;
	struct hashtable *w = table_8x8(&key);
	uint64_t k = 7, v = 70, absent = 8;
	ck_assert_int_eq(hashtable_update(w, &k, &v), 0);
	struct hashtable *r = hashtable_open_key(key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(hashtable_update(r, &k, &v), -EROFS);
	ck_assert_int_eq(hashtable_delete(r, &k), -EROFS);
	ck_assert_int_eq(hashtable_delete(r, &absent), -EROFS);
	ck_assert_int_eq(hashtable_recover(r), -EROFS);
	ck_assert_int_eq(hashtable_put(r, &k, 8, &v, 8), -EROFS);
	ck_assert_int_eq(hashtable_del(r, &k, 8), -EROFS);
	ck_assert_int_ne(-EROFS, -1);
	/* a miss is -1, through either handle */
	uint64_t out;
	ck_assert_int_eq(hashtable_search(r, &absent, &out), -1);
	ck_assert_int_eq(hashtable_delete(w, &absent), -1);
	ck_assert_int_eq(hashtable_del(w, &absent, 8), -1);
	ck_assert_int_eq(hashtable_get(r, &absent, 8, &out), -1);
	/* nothing changed */
	ck_assert_int_eq(hashtable_search(r, &k, &out), 0);
	ck_assert_uint_eq(out, 70);
	hashtable_close(r);
	test_table_destroy(w);
}
END_TEST

/* ---- hashtable_strerror is pure; hashtable_last_error has the specifics --- */

START_TEST(strerror_is_pure)
{
	static const int codes[] = {0, -1, -EINVAL, -ENOENT, -EACCES, -ENOSPC, -ENOMEM,
	                            -EPROTO, -EROFS, -EEXIST, HASHTABLE_EDEADWRITER,
	                            HASHTABLE_ECORRUPT, -123456};
	enum { N = sizeof codes / sizeof codes[0] };
	const char *before[N];
	char copy[N][256];
	for (int i = 0; i < N; i++) {
		before[i] = hashtable_strerror(codes[i]);
		ck_assert_ptr_nonnull(before[i]);
		ck_assert(strlen(before[i]) > 0);
		snprintf(copy[i], sizeof copy[i], "%s", before[i]);
	}
	/* an unrelated failure with specifics, of the same code as one above */
	struct hashtable_config cfg = {0};
	cfg.ipc_key = test_unique_key();
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.max_load = 250; /* out of range */
	cfg.entries = 10;
	struct hashtable *h = NULL;
	ck_assert_int_eq(hashtable_create_config(&cfg, &h), -EINVAL);
	ck_assert_ptr_null(h);
	ck_assert_ptr_nonnull(strstr(hashtable_last_error(), "250"));
	for (int i = 0; i < N; i++) {
		ck_assert_ptr_eq(hashtable_strerror(codes[i]), before[i]);
		ck_assert_str_eq(hashtable_strerror(codes[i]), copy[i]);
	}
	ck_assert_ptr_null(strstr(hashtable_strerror(-EINVAL), "250"));
	/* positive errno values read as their negatives; -1 is "not found" */
	ck_assert_ptr_eq(hashtable_strerror(EINVAL), hashtable_strerror(-EINVAL));
	ck_assert_str_eq(hashtable_strerror(-1), "not found");
	ck_assert_str_eq(hashtable_strerror(INT_MIN), "unknown error code");
}
END_TEST

/* Fails a create in this thread; copies the thread's last error to arg. */
static void *fail_in_thread(void *arg)
{
	char *out = arg;
	if (hashtable_last_error()[0] != 0) /* a new thread starts with "" */
		return NULL;
	struct hashtable_config cfg = {0};
	cfg.ipc_key = test_unique_key();
	cfg.key_size = 8;
	cfg.max_load = 250;
	cfg.entries = 10;
	struct hashtable *h = NULL;
	if (hashtable_create_config(&cfg, &h) == -EINVAL)
		snprintf(out, 768, "%s", hashtable_last_error());
	return NULL;
}

START_TEST(last_error_is_per_failure)
{
	key_t key;
	struct hashtable *h = table_8x8(&key);
	/* a success leaves it alone; so does a miss */
	char before[768];
	snprintf(before, sizeof before, "%s", hashtable_last_error());
	uint64_t k = 1, v = 2, out;
	ck_assert_int_eq(hashtable_update(h, &k, &v), 0);
	ck_assert_int_eq(hashtable_search(h, &v, &out), -1);
	ck_assert_str_eq(hashtable_last_error(), before);
	/* a width mismatch names both widths and the way out */
	struct hashtable_config cfg = {0};
	cfg.ipc_key = key;
	cfg.key_size = 16;
	cfg.value_size = 4;
	struct hashtable *other = NULL;
	ck_assert_int_eq(hashtable_create_config(&cfg, &other), -EINVAL);
	const char *e = hashtable_last_error();
	ck_assert_msg(strstr(e, "8-byte keys") && strstr(e, "8-byte values") &&
	              strstr(e, "16 and 4") && strstr(e, "ipcrm -m"),
	              "width mismatch: %s", e);
	/* another thread's failures are not this thread's */
	char mine[768];
	snprintf(mine, sizeof mine, "%s", e);
	pthread_t t;
	char theirs[768] = "";
	ck_assert_int_eq(pthread_create(&t, NULL, fail_in_thread, theirs), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_ptr_nonnull(strstr(theirs, "250"));
	ck_assert_str_eq(hashtable_last_error(), mine);
	test_table_destroy(h);
}
END_TEST

/* ---- length-taking calls ------------------------------------------------- */

static struct hashtable *table_strings(uint32_t ks, uint32_t vs)
{
	struct hashtable_config cfg = {0};
	cfg.key_size = ks;
	cfg.value_size = vs;
	cfg.entries = 100;
	return test_table_create(&cfg);
}

START_TEST(put_get_del_pad_with_nul)
{
	struct hashtable *h = table_strings(24, 40);
	char v[40], padded_key[24] = "Tokyo", want[40] = "Japan";
	ck_assert_int_eq(hashtable_put(h, "Tokyo", 5, "Japan", 5), 0);
	memset(v, 0x77, sizeof v);
	ck_assert_int_eq(hashtable_get(h, "Tokyo", 5, v), 0);
	ck_assert_mem_eq(v, want, 40); /* the value comes back NUL-padded */
	/* the same key as the classic API sees it: padded to 24 bytes */
	memset(v, 0x77, sizeof v);
	ck_assert_int_eq(hashtable_search(h, padded_key, v), 0);
	ck_assert_mem_eq(v, want, 40);
	ck_assert_int_eq(hashtable_get(h, padded_key, 24, v), 0);
	/* "Tokyo" and "Tokyo\0" are the same key; "Toky" is another */
	ck_assert_int_eq(hashtable_put(h, "Tokyo\0", 6, "Nippon", 6), 1);
	ck_assert_int_eq(hashtable_get(h, "Toky", 4, v), -1);
	ck_assert_int_eq(hashtable_get(h, "Tokyo", 5, v), 0);
	ck_assert_str_eq(v, "Nippon");
	/* too wide: refused, and the width is named */
	char wide[64];
	memset(wide, 'x', sizeof wide);
	ck_assert_int_eq(hashtable_put(h, wide, 25, "a", 1), -EINVAL);
	ck_assert_ptr_nonnull(strstr(hashtable_last_error(), "24-byte key"));
	ck_assert_int_eq(hashtable_get(h, wide, 25, v), -EINVAL);
	ck_assert_ptr_nonnull(strstr(hashtable_last_error(), "25 bytes"));
	ck_assert_int_eq(hashtable_del(h, wide, 25), -EINVAL);
	ck_assert_int_eq(hashtable_put(h, "k", 1, wide, 41), -EINVAL);
	ck_assert_ptr_nonnull(strstr(hashtable_last_error(), "40-byte value"));
	ck_assert_int_eq(hashtable_get(h, "k", 1, v), -1); /* nothing stored */
	/* an empty value, NULL with length 0, is all NUL bytes */
	ck_assert_int_eq(hashtable_put(h, "empty", 5, NULL, 0), 0);
	memset(v, 0x77, sizeof v);
	ck_assert_int_eq(hashtable_get(h, "empty", 5, v), 0);
	char zeros[40] = {0};
	ck_assert_mem_eq(v, zeros, 40);
	/* key_len 0 is the all-NUL key: the empty sentinel */
	ck_assert_int_eq(hashtable_put(h, "", 0, "a", 1), -EINVAL);
	ck_assert_ptr_nonnull(strstr(hashtable_last_error(), "sentinel"));
	ck_assert_int_eq(hashtable_put(NULL, "a", 1, "a", 1), -EINVAL);
	ck_assert_int_eq(hashtable_get(h, NULL, 0, v), -EINVAL);
	/* delete */
	ck_assert_int_eq(hashtable_del(h, "Tokyo", 5), 0);
	ck_assert_int_eq(hashtable_del(h, "Tokyo", 5), -1);
	ck_assert_int_eq(hashtable_get(h, "Tokyo", 5, v), -1);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
}
END_TEST

/* Keys in buffers exactly key_len long: under ASan (make check-asan) a read
 * of one byte past them fails the test. */
START_TEST(short_keys_read_no_byte_past_their_length)
{
	struct hashtable *h = table_strings(24, 40);
	char *key = malloc(5), *val = malloc(5), out[40];
	ck_assert_ptr_nonnull(key);
	ck_assert_ptr_nonnull(val);
	memcpy(key, "Tokyo", 5); /* no terminating NUL */
	memcpy(val, "Japan", 5);
	ck_assert_int_eq(hashtable_put(h, key, 5, val, 5), 0);
	ck_assert_int_eq(hashtable_get(h, key, 5, out), 0);
	ck_assert_mem_eq(out, "Japan", 5);
	ck_assert_int_eq(out[5], 0);
	ck_assert_int_eq(hashtable_put(h, key, 5, val, 5), 1);
	ck_assert_int_eq(hashtable_del(h, key, 5), 0);
	free(key);
	free(val);
	test_table_destroy(h);
}
END_TEST

/* Values wider than the stack pad are padded in a heap copy; 8-byte tables
 * take the fast path when the lengths are whole. */
START_TEST(put_get_wide_values_and_fast_path)
{
	struct hashtable *h = table_strings(4, 3000);
	unsigned char *out = malloc(3000), want[3000] = {0};
	ck_assert_ptr_nonnull(out);
	memcpy(want, "wide", 4);
	ck_assert_int_eq(hashtable_put(h, "ab", 2, "wide", 4), 0);
	memset(out, 0x55, 3000);
	ck_assert_int_eq(hashtable_get(h, "ab", 2, out), 0);
	ck_assert_mem_eq(out, want, 3000);
	free(out);
	test_table_destroy(h);

	h = table_8x8(NULL);
	uint64_t k = 99, v = 12345, got = 0;
	ck_assert_int_eq(hashtable_put(h, &k, 8, &v, 8), 0);
	ck_assert_int_eq(hashtable_get(h, &k, 8, &got), 0);
	ck_assert_uint_eq(got, 12345);
	ck_assert_int_eq(hashtable_get(h, &k, 1, &got), 0); /* 99 is one byte, then NULs */
	ck_assert_int_eq(hashtable_put(h, &k, 9, &v, 8), -EINVAL);
	test_table_destroy(h);
}
END_TEST

Suite *suite_api(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("codes");
	tcase_add_test(tc, rdonly_writes_are_erofs);
	tcase_add_test(tc, strerror_is_pure);
	tcase_add_test(tc, last_error_is_per_failure);
	tcase_add_test(tc, put_get_del_pad_with_nul);
	tcase_add_test(tc, short_keys_read_no_byte_past_their_length);
	tcase_add_test(tc, put_get_wide_values_and_fast_path);
	suite_add_tcase(s, tc);
	return s;
}
