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
	ck_assert_int_ne(-EROFS, -1);
	/* a miss is -1, through either handle */
	uint64_t out;
	ck_assert_int_eq(hashtable_search(r, &absent, &out), -1);
	ck_assert_int_eq(hashtable_delete(w, &absent), -1);
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

Suite *suite_api(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("codes");
	tcase_add_test(tc, rdonly_writes_are_erofs);
	tcase_add_test(tc, strerror_is_pure);
	tcase_add_test(tc, last_error_is_per_failure);
	suite_add_tcase(s, tc);
	return s;
}
