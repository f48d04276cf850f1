/* The API's contract details: one meaning per return code (-1 is only "not
 * found"; writes through a read-only handle are -EROFS), hashtable_strerror
 * a pure function of its code, hashtable_last_error naming a failure's
 * specifics, the length-taking calls, the naming file's identity, and the
 * host check. */
#include "testutil.h"

#include <grp.h>
#include <sched.h>
#include <sys/wait.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <time.h>
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

/* ---- item: a miss leaves the caller's value buffer untouched ------------- */

struct churn_arg {
	struct hashtable *h;
	_Atomic int stop;
};

/* Puts and deletes one key, with a different value each time. */
static void *churn_one_key(void *p)
{
	struct churn_arg *a = p;
	unsigned char key[16] = "churned-key", value[64];
	for (uint32_t i = 0; !atomic_load(&a->stop); i++) {
		memset(value, (int)(i & 0x7f) + 1, sizeof value);
		hashtable_put(a->h, key, sizeof key, value, sizeof value);
		hashtable_del(a->h, key, sizeof key);
	}
	return NULL;
}

/* hashtable.h: hashtable_get returns -1 "if the key is absent (value
 * untouched)".  A search that copies a value and then finds that a writer
 * was in the bucket must not leave that copy behind when it ends absent.
 * 16-byte keys with 64-byte values: the split-slot layout's path. */
START_TEST(miss_leaves_value_untouched)
{
	struct hashtable *h = test_table_simple(16, 64, 64, 0.8);
	ck_assert_ptr_nonnull(h);
	struct churn_arg a = {.h = h};
	pthread_t writer;
	ck_assert_int_eq(pthread_create(&writer, NULL, churn_one_key, &a), 0);
	unsigned char key[16] = "churned-key", value[64];
	uint64_t misses = 0, hits = 0, touched = 0;
	uint64_t end = (uint64_t)time(NULL) + 2;
	while ((uint64_t)time(NULL) < end && (misses < 200000 || hits == 0)) {
		memset(value, 0xee, sizeof value);
		int rc = hashtable_get(h, key, sizeof key, value);
		ck_assert(rc == 0 || rc == -1);
		if (rc == 0) {
			hits++;
			continue;
		}
		misses++;
		for (size_t i = 0; i < sizeof value; i++)
			if (value[i] != 0xee) {
				touched++;
				break;
			}
	}
	atomic_store(&a.stop, 1);
	pthread_join(writer, NULL);
	printf("miss_leaves_value_untouched: %llu hits, %llu misses, %llu left the buffer changed\n",
	       (unsigned long long)hits, (unsigned long long)misses, (unsigned long long)touched);
	ck_assert_uint_gt(misses, 0);
	ck_assert_uint_eq(touched, 0);
	test_table_destroy(h);
}
END_TEST

/* ---- item: hashtable_count follows inserts, deletes and generations ----- */

START_TEST(count_follows_writes_and_replaces)
{
	key_t key;
	struct hashtable *w = table_8x8(&key);
	struct hashtable *r = hashtable_open_key(key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(hashtable_count(NULL), -EINVAL);
	ck_assert_int_eq(hashtable_count(r), 0);
	for (uint64_t k = 1; k <= 40; k++) {
		uint64_t v = k * 3;
		ck_assert_int_eq(hashtable_update(w, &k, &v), 0);
	}
	uint64_t k = 5, v = 99;
	ck_assert_int_eq(hashtable_update(w, &k, &v), 1); /* overwrite: no change */
	ck_assert_int_eq(hashtable_count(r), 40);
	ck_assert_int_eq(hashtable_delete(w, &k), 0);
	ck_assert_int_eq(hashtable_delete(w, &k), -1);    /* a miss: no change */
	ck_assert_int_eq(hashtable_count(r), 39);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(r, &st), 0);
	ck_assert_uint_eq(st.count, 39);

	/* the reader follows a replace: the new generation's count */
	struct hashtable_builder *b;
	ck_assert_int_eq(hashtable_replace_begin(w, NULL, &b), 0);
	for (uint64_t n = 1; n <= 7; n++)
		ck_assert_int_eq(hashtable_builder_put(b, &n, &n), 0);
	ck_assert_int_eq(hashtable_replace_commit(b), 0);
	ck_assert_int_eq(hashtable_count(r), 7);
	ck_assert_int_eq(hashtable_count(w), 7);
	hashtable_close(r);
	test_table_destroy(w);
}
END_TEST

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

/* ---- the library's diagnosis of kernel refusals --------------------------- */

/* Runs fn in a child and returns its exit status (fn's return), so a
 * namespace or a uid change stays in the child, and the child's last error
 * (written to `text`) can be checked by the parent. */
static int in_child(int (*fn)(key_t, char *), key_t key, char *text, size_t n)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char buf[768] = "";
		close(fds[0]);
		int rc = fn(key, buf);
		ssize_t w = write(fds[1], buf, strlen(buf));
		(void)w;
		_exit(rc);
	}
	close(fds[1]);
	size_t got = 0;
	ssize_t r;
	while (got + 1 < n && (r = read(fds[0], text + got, n - 1 - got)) > 0)
		got += (size_t)r;
	text[got] = 0;
	close(fds[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* In a private IPC namespace (its limits and segments are its own): lowers
 * kernel.shmmax and asks for more. */
static int shmmax_refusal(key_t key, char *text)
{
	if (unshare(CLONE_NEWIPC) != 0)
		return 77;
	FILE *f = fopen("/proc/sys/kernel/shmmax", "w");
	if (!f || fprintf(f, "1048576\n") < 0 || fclose(f) != 0)
		return 77;
	struct hashtable_config cfg = {0};
	cfg.ipc_key = key;
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = 200000;
	struct hashtable *h = NULL;
	int rc = hashtable_create_config(&cfg, &h);
	snprintf(text, 768, "%s", hashtable_last_error());
	if (rc == 0)
		hashtable_unlink(h); /* vanishes with the namespace anyway */
	return rc == -EINVAL ? 0 : 1;
}

START_TEST(last_error_names_shmmax)
{
	if (!test_is_root()) {
		printf("api: shmmax diagnosis skipped: needs root for a private IPC namespace\n");
		return;
	}
	char text[768];
	int rc = in_child(shmmax_refusal, test_unique_key(), text, sizeof text);
	if (rc == 77) {
		printf("api: shmmax diagnosis skipped: no private IPC namespace here\n");
		return;
	}
	ck_assert_msg(rc == 0, "create past kernel.shmmax did not fail with -EINVAL: %s", text);
	size_t want = hashtable_segment_size(200000, 0.8, 8, 8);
	char cmd[64];
	snprintf(cmd, sizeof cmd, "sysctl -w kernel.shmmax=%zu", want);
	ck_assert_msg(strstr(text, "kernel.shmmax (1048576 bytes)") && strstr(text, cmd),
	              "shmmax diagnosis: %s", text);
}
END_TEST

/* As user nobody: a read-write open, then a read-only one. */
static int open_as_nobody(key_t key, char *text)
{
	if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
		return 77;
	struct hashtable *h = hashtable_open_key(key, 0);
	int rw_errno = errno;
	snprintf(text, 768, "%s", hashtable_last_error());
	if (h)
		return 1;
	if (rw_errno != EACCES)
		return 2;
	h = hashtable_open_key(key, HASHTABLE_RDONLY);
	if (h) {
		hashtable_close(h);
		return 10; /* a read-only open worked */
	}
	return errno == EACCES ? 11 : 3;
}

START_TEST(last_error_names_owner_and_mode)
{
	if (!test_is_root()) {
		printf("api: EACCES diagnosis skipped: needs root to open as another user\n");
		return;
	}
	struct hashtable_config cfg = {0};
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = 10;
	cfg.mode = 0600;
	struct hashtable *h = test_table_create(&cfg);
	char text[768], want[96];
	int rc = in_child(open_as_nobody, cfg.ipc_key, text, sizeof text);
	ck_assert_msg(rc == 11, "0600 as nobody: %d: %s", rc, text);
	snprintf(want, sizeof want, "segment %d", hashtable_shmid(h));
	ck_assert_msg(strstr(text, want) && strstr(text, "(uid 0)") && strstr(text, "mode 0600") &&
	              strstr(text, "(uid 65534)") && strstr(text, "shmkv chmod 0606") &&
	              strstr(text, "ipcrm -m") && !strstr(text, "ipcs"),
	              "EACCES diagnosis: %s", text);
	test_table_destroy(h);

	/* a mode that lets others read: the advice is a read-only open */
	cfg.ipc_key = 0;
	cfg.mode = 0644;
	h = test_table_create(&cfg);
	rc = in_child(open_as_nobody, cfg.ipc_key, text, sizeof text);
	ck_assert_msg(rc == 10, "0644 as nobody: %d: %s", rc, text);
	ck_assert_msg(strstr(text, "mode 0644") && strstr(text, "read-only open works") &&
	              strstr(text, "HASHTABLE_RDONLY") && !strstr(text, "does not let"),
	              "EACCES diagnosis of a readable table: %s", text);
	test_table_destroy(h);
}
END_TEST

/* ---- the naming file's identity ------------------------------------------- */

START_TEST(name_identity_recorded_and_checked)
{
	char *path = test_temp_path();
	struct stat sb;
	ck_assert_int_eq(stat(path, &sb), 0);
	struct hashtable_config cfg = {0};
	cfg.path = path;
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = 10;
	struct hashtable *h = test_table_create(&cfg);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_uint_eq(st.name_dev, (uint64_t)sb.st_dev);
	ck_assert_uint_eq(st.name_ino, (uint64_t)sb.st_ino);
	ck_assert_int_eq(st.name_mismatch, 0);

	/* Make the header record another file, as if the path had been deleted
	 * and recreated with a colliding key: find the recorded pair in the
	 * header and change the inode through a writable attach. */
	unsigned char *p = shmat(hashtable_shmid(h), NULL, 0);
	ck_assert_ptr_ne(p, (void *)-1);
	uint64_t dev = (uint64_t)sb.st_dev, ino = (uint64_t)sb.st_ino;
	int found = -1;
	for (int off = 0; off + 16 <= 512; off += 8)
		if (memcmp(p + off, &dev, 8) == 0 && memcmp(p + off + 8, &ino, 8) == 0)
			found = off;
	ck_assert_int_ge(found, 0);
	uint64_t other = ino + 1;
	memcpy(p + found + 8, &other, 8);
	shmdt(p);

	struct hashtable *by_path = hashtable_open(path, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(by_path);
	ck_assert_int_eq(hashtable_stats(by_path, &st), 0);
	ck_assert_int_eq(st.name_mismatch, 1);
	ck_assert_uint_eq(st.name_ino, other);
	hashtable_close(by_path);
	struct hashtable *by_key = hashtable_open_key(ftok(path, 1), HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(by_key);
	ck_assert_int_eq(hashtable_stats(by_key, &st), 0);
	ck_assert_int_eq(st.name_mismatch, 0); /* a key names no file to compare */
	hashtable_close(by_key);
	cfg.flags = 0;
	struct hashtable *again = NULL;
	ck_assert_int_eq(hashtable_create_config(&cfg, &again), 0); /* attaches */
	ck_assert_int_eq(hashtable_stats(again, &st), 0);
	ck_assert_int_eq(st.name_mismatch, 1);
	hashtable_close(again);
	test_table_destroy(h);

	/* a table made by numeric key records nothing */
	h = table_8x8(NULL);
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_uint_eq(st.name_dev, 0);
	ck_assert_uint_eq(st.name_ino, 0);
	ck_assert_int_eq(st.name_mismatch, 0);
	test_table_destroy(h);
	free(path);
}
END_TEST

/* ---- host settings -------------------------------------------------------- */

/* In a private IPC namespace (in_child's key argument carries the value):
 * sets kernel.shm_rmid_forced, then returns 10 + hashtable_host_check(),
 * or 77 when no namespace can be made. */
static int rmid_forced_check(key_t value, char *text)
{
	if (unshare(CLONE_NEWIPC) != 0)
		return 77;
	FILE *f = fopen("/proc/sys/kernel/shm_rmid_forced", "w");
	if (!f || fprintf(f, "%d\n", (int)value) < 0 || fclose(f) != 0)
		return 77;
	if (value == 1) {
		/* a create must hold its own attachment throughout: under
		 * shm_rmid_forced a segment dies with its last attachment.  The
		 * namespace dies with this child, so the table cannot leak. */
		struct hashtable_config cfg = {
			.ipc_key = 0x5e5e0001, .entries = 100, .key_size = 8, .value_size = 8,
		};
		struct hashtable *h = NULL;
		uint64_t k = 7, v = 9, out = 0;
		if (hashtable_create_config(&cfg, &h) != 0 || hashtable_update(h, &k, &v) != 0 ||
		    hashtable_search(h, &k, &out) != 0 || out != v) {
			snprintf(text, 768, "create under shm_rmid_forced=1: %s", hashtable_last_error());
			return 30;
		}
		hashtable_unlink(h);
		hashtable_close(h);
	}
	int rc = hashtable_host_check(text, 768);
	return 10 + rc;
}

START_TEST(host_check_names_shm_rmid_forced)
{
	ck_assert_int_eq(hashtable_host_check(NULL, 10), -EINVAL);
	ck_assert_int_ge(hashtable_host_check(NULL, 0), 0);
	if (!test_is_root()) {
		printf("api: shm_rmid_forced check skipped: needs root for a private IPC namespace\n");
		return;
	}
	char text[768];
	int rc = in_child(rmid_forced_check, 1, text, sizeof text);
	if (rc == 77) {
		printf("api: shm_rmid_forced check skipped: no private IPC namespace here\n");
		return;
	}
	ck_assert_msg(rc == 11, "shm_rmid_forced=1: host_check gave %d: %s", rc - 10, text);
	ck_assert_msg(strstr(text, "sysctl -w kernel.shm_rmid_forced=0") != NULL, "%s", text);
	rc = in_child(rmid_forced_check, 0, text, sizeof text);
	ck_assert_msg(rc == 10, "shm_rmid_forced=0: host_check gave %d: %s", rc - 10, text);
	ck_assert_str_eq(text, "");
	/* a short buffer is truncated, not overrun */
	char small[8];
	memset(small, 'x', sizeof small);
	ck_assert_int_ge(hashtable_host_check(small, 4), 0);
	ck_assert(strlen(small) < 4);
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
	tcase_add_test(tc, last_error_names_shmmax);
	tcase_add_test(tc, last_error_names_owner_and_mode);
	tcase_add_test(tc, name_identity_recorded_and_checked);
	tcase_add_test(tc, host_check_names_shm_rmid_forced);
	tcase_add_test(tc, count_follows_writes_and_replaces);
	tcase_add_test(tc, miss_leaves_value_untouched);
	suite_add_tcase(s, tc);
	return s;
}
