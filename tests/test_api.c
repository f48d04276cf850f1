/* The API's contract details: one meaning per return code (-1 is only "not
 * found"; writes through a read-only handle are -EROFS), hashtable_strerror
 * a pure function of its code, hashtable_last_error naming a failure's
 * specifics, the length-taking calls, the naming file's identity, and the
 * host check. */
#include "testutil.h"

#include <errno.h>
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

Suite *suite_api(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("codes");
	tcase_add_test(tc, rdonly_writes_are_erofs);
	suite_add_tcase(s, tc);
	return s;
}
