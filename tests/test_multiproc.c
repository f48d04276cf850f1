/* Multi-process: readers in other processes attach by path (with the
 * classic create or a read-only open) and see every key; a reader attached
 * before the table is unlinked keeps working; readers never write.
 *
 * Children report through their exit status (never through Check's
 * assertions): 0 is success, other values are the CHILD_* codes below.
 * Each child body is a function that releases what it attached; the fork
 * branch releases what the child inherited (valgrind checks children for
 * leaks too) and exits with the body's code. */
#include "testutil.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CAP (16L << 20)
#define KS 8
#define VS 16

enum {
	CHILD_OK = 0,
	CHILD_ATTACH = 10,  /* attach failed */
	CHILD_MISSING = 11, /* a key was not found */
	CHILD_VALUE = 12,   /* a key had the wrong value */
	CHILD_COUNT = 13,   /* stats count differs */
	CHILD_EROFS = 14,   /* a read-only handle accepted a write */
	CHILD_PIPE = 15,    /* lost the parent */
	CHILD_PRESENT = 16, /* a deleted key was found */
	CHILD_VERIFY = 17,  /* verify failed */
};

static const char *reason(int code)
{
	switch (code) {
	case CHILD_ATTACH: return "attach failed";
	case CHILD_MISSING: return "a key was not found";
	case CHILD_VALUE: return "a key had the wrong value";
	case CHILD_COUNT: return "stats.count was wrong";
	case CHILD_EROFS: return "a read-only handle accepted a write";
	case CHILD_PIPE: return "lost contact with the parent";
	case CHILD_PRESENT: return "a deleted key was still found";
	case CHILD_VERIFY: return "verify failed";
	default: return "unknown";
	}
}

static uint64_t nkeys(void) { return (uint64_t)(50000 * test_scale()) + 100; }

static void mk_val(unsigned char *v, uint64_t k, unsigned gen)
{
	for (int b = 0; b < VS; b++)
		v[b] = (unsigned char)(k * 131 + (uint64_t)b * 7 + gen * 29 + 1);
}

/* Keys are first..first+n-1 (as u64), values generation gen. */
static int check_range(struct hashtable *h, uint64_t first, uint64_t n, unsigned gen)
{
	unsigned char v[VS], out[VS];
	for (uint64_t k = first; k < first + n; k++) {
		mk_val(v, k, gen);
		if (hashtable_search(h, &k, out) != 0)
			return CHILD_MISSING;
		if (memcmp(out, v, VS) != 0)
			return CHILD_VALUE;
	}
	return CHILD_OK;
}

static int check_absent(struct hashtable *h, uint64_t first, uint64_t n)
{
	unsigned char out[VS];
	for (uint64_t k = first; k < first + n; k++)
		if (hashtable_search(h, &k, out) != -1)
			return CHILD_PRESENT;
	return CHILD_OK;
}

static int check_count(struct hashtable *h, uint64_t want)
{
	struct hashtable_stats st;
	return hashtable_stats(h, &st) == 0 && st.count == want ? CHILD_OK : CHILD_COUNT;
}

static void put_range(struct hashtable *h, uint64_t first, uint64_t n, unsigned gen, int want)
{
	unsigned char v[VS];
	for (uint64_t k = first; k < first + n; k++) {
		mk_val(v, k, gen);
		ck_assert_int_eq(hashtable_update(h, &k, v), want);
	}
}

static struct hashtable *make_table(const char *path)
{
	struct hashtable *h = hashtable_create(path, CAP, 0.8, KS, VS, NULL, NULL);
	ck_assert_msg(h != NULL, "create: %s", hashtable_last_error());
	test_register_shmid(hashtable_shmid(h));
	return h;
}

static void wait_child(pid_t pid, const char *what)
{
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(!WIFSIGNALED(status), "%s: killed by signal %d", what, WTERMSIG(status));
	ck_assert_msg(WEXITSTATUS(status) == 0, "%s: %s (exit %d)", what,
	              reason(WEXITSTATUS(status)), WEXITSTATUS(status));
}

static int read_byte(int fd)
{
	char c;
	return read(fd, &c, 1) == 1 ? c : -1;
}

static void write_byte(int fd, char c) { ck_assert_int_eq(write(fd, &c, 1), 1); }

/* In a child: says ready ('r') or not ('x') to the parent. */
static int tell(int fd, int ok)
{
	char c = ok ? 'r' : 'x';
	return write(fd, &c, 1) == 1 ? CHILD_OK : CHILD_PIPE;
}

/* Ends a forked child: drops the parent's handle and path, which it
 * inherited, then exits with code. */
static void child_exit(struct hashtable *inherited, char *path, int code)
{
	hashtable_close(inherited);
	free(path);
	_exit(code);
}

/* ---- readers by path ----------------------------------------------------- */

enum attach_mode { BY_CREATE, BY_OPEN_RDONLY, BY_OPEN_KEY };

static int reader_checks(struct hashtable *h, enum attach_mode mode, uint64_t n)
{
	int rc;
	if ((rc = check_range(h, 1, n, 0)) || (rc = check_absent(h, n + 1, 1000)) ||
	    (rc = check_count(h, n)))
		return rc;
	if (mode == BY_OPEN_RDONLY) {
		uint64_t k = 1;
		unsigned char v[VS] = {0};
		if (hashtable_update(h, &k, v) != -EROFS || hashtable_delete(h, &k) != -EROFS)
			return CHILD_EROFS;
		k = n + 5;
		if (hashtable_update(h, &k, v) != -EROFS)
			return CHILD_EROFS;
	}
	return CHILD_OK;
}

static int reader_main(const char *path, enum attach_mode mode, uint64_t n)
{
	struct hashtable *h = NULL;
	if (mode == BY_CREATE)
		h = hashtable_create(path, CAP, 0.8, KS, VS, NULL, NULL);
	else if (mode == BY_OPEN_RDONLY)
		h = hashtable_open(path, HASHTABLE_RDONLY);
	else
		h = hashtable_open_key(ftok(path, 1), 0);
	if (!h)
		return CHILD_ATTACH;
	int rc = reader_checks(h, mode, n);
	hashtable_close(h);
	return rc;
}

START_TEST(readers_attach_by_path)
{
	char *path = test_temp_path();
	struct hashtable *h = make_table(path);
	uint64_t n = nkeys();
	put_range(h, 1, n, 0, 0);
	const enum attach_mode modes[] = {BY_CREATE, BY_OPEN_RDONLY, BY_OPEN_KEY, BY_CREATE};
	const char *names[] = {"reader by hashtable_create", "reader by open RDONLY",
	                       "reader by open_key", "second reader by hashtable_create"};
	pid_t pids[4];
	for (int i = 0; i < 4; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0)
			child_exit(h, path, reader_main(path, modes[i], n));
	}
	for (int i = 0; i < 4; i++)
		wait_child(pids[i], names[i]);
	/* their attaching changed nothing */
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_uint_eq(st.count, n);
	ck_assert_uint_eq(st.nattch, 1);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
	free(path);
}
END_TEST

/* A reader attached earlier sees writes made afterwards by another process,
 * as soon as they return. */
static int later_writes_child(const char *path, uint64_t n, int up, int down)
{
	struct hashtable *r = hashtable_open(path, HASHTABLE_RDONLY);
	int rc = r ? check_range(r, 1, n, 0) : CHILD_ATTACH;
	if (tell(up, rc == CHILD_OK) != CHILD_OK && !rc)
		rc = CHILD_PIPE;
	if (!rc && read_byte(down) != 'g')
		rc = CHILD_PIPE;
	/* the parent added n+1..2n, overwrote 1..n/2, deleted the rest of 1..n */
	if (!rc && !(rc = check_range(r, n + 1, n, 0)) && !(rc = check_range(r, 1, n / 2, 1)) &&
	    !(rc = check_absent(r, n / 2 + 1, n - n / 2)))
		rc = check_count(r, n + n / 2);
	if (r)
		hashtable_close(r);
	return rc;
}

START_TEST(reader_sees_later_writes)
{
	char *path = test_temp_path();
	struct hashtable *h = make_table(path);
	uint64_t n = nkeys();
	put_range(h, 1, n, 0, 0);
	int up[2], down[2];
	ck_assert(pipe(up) == 0 && pipe(down) == 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		child_exit(h, path, later_writes_child(path, n, up[1], down[0]));
	}
	close(up[1]);
	close(down[0]);
	ck_assert_int_eq(read_byte(up[0]), 'r');
	put_range(h, n + 1, n, 0, 0);
	put_range(h, 1, n / 2, 1, 1);
	for (uint64_t k = n / 2 + 1; k <= n; k++)
		ck_assert_int_eq(hashtable_delete(h, &k), 0);
	write_byte(down[1], 'g');
	wait_child(pid, "reader attached before the writes");
	close(up[0]);
	close(down[1]);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
	free(path);
}
END_TEST

/* hashtable_unlink frees the name at once, but a reader already attached
 * keeps reading the old table; the segment goes when the last one detaches. */
static int unlink_child(const char *path, uint64_t n, int up, int down)
{
	struct hashtable *r = hashtable_open(path, HASHTABLE_RDONLY);
	int rc = r ? CHILD_OK : CHILD_ATTACH;
	if (tell(up, r != NULL) != CHILD_OK && !rc)
		rc = CHILD_PIPE;
	if (!rc && read_byte(down) != 'g')
		rc = CHILD_PIPE;
	if (!rc && !(rc = check_range(r, 1, n, 0)) && !(rc = check_count(r, n)))
		rc = hashtable_verify(r) == 0 ? CHILD_OK : CHILD_VERIFY;
	if (r)
		hashtable_close(r);
	return rc;
}

START_TEST(reader_survives_unlink)
{
	char *path = test_temp_path();
	struct hashtable *h = make_table(path);
	int old_id = hashtable_shmid(h);
	uint64_t n = nkeys();
	put_range(h, 1, n, 0, 0);
	int up[2], down[2];
	ck_assert(pipe(up) == 0 && pipe(down) == 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		hashtable_close(h); /* attached only through its own handle */
		child_exit(NULL, path, unlink_child(path, n, up[1], down[0]));
	}
	close(up[1]);
	close(down[0]);
	ck_assert_int_eq(read_byte(up[0]), 'r');
	ck_assert_int_eq(hashtable_unlink(h), 0);
	ck_assert_int_eq(hashtable_close(h), 0);
	/* the name is free: nothing at the key, and a new table can take it */
	errno = 0;
	ck_assert_int_lt(shmget(ftok(path, 1), 0, 0), 0);
	ck_assert_int_eq(errno, ENOENT);
	errno = 0;
	ck_assert_ptr_null(hashtable_open(path, 0));
	ck_assert_int_eq(errno, ENOENT);
	struct hashtable *h2 = make_table(path);
	ck_assert_int_ne(hashtable_shmid(h2), old_id);
	/* the old segment lives on while the reader is attached */
	struct shmid_ds ds;
	ck_assert_int_eq(shmctl(old_id, IPC_STAT, &ds), 0);
	ck_assert_uint_eq(ds.shm_nattch, 1);
	write_byte(down[1], 'g');
	wait_child(pid, "reader attached before unlink");
	errno = 0;
	ck_assert_int_lt(shmctl(old_id, IPC_STAT, &ds), 0);
	close(up[0]);
	close(down[1]);
	test_table_destroy(h2);
	free(path);
}
END_TEST

/* Readers loop over stable keys while this process deletes and inserts
 * others in a table held at its load limit, where each delete moves
 * displaced keys back towards home: a key present throughout, moved or not,
 * is always found with its value. */
static int check_odd(struct hashtable *h, uint64_t max)
{
	unsigned char v[VS], out[VS];
	for (uint64_t k = 1; k <= max; k += 2) {
		mk_val(v, k, 0);
		if (hashtable_search(h, &k, out) != 0)
			return CHILD_MISSING;
		if (memcmp(out, v, VS) != 0)
			return CHILD_VALUE;
	}
	return CHILD_OK;
}

static int during_writes_child(const char *path, long cap, int by_create, uint64_t max, int up)
{
	struct hashtable *r = by_create ? hashtable_create(path, cap, 0.95, KS, VS, NULL, NULL)
	                                : hashtable_open(path, HASHTABLE_RDONLY);
	int rc = r ? CHILD_OK : CHILD_ATTACH;
	if (tell(up, r != NULL) != CHILD_OK && !rc)
		rc = CHILD_PIPE;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	double limit = 1.0 * test_scale() + 0.2, secs = 0;
	while (!rc && secs < limit) {
		rc = check_odd(r, max);
		clock_gettime(CLOCK_MONOTONIC, &t);
		secs = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
	}
	if (r)
		hashtable_close(r);
	return rc;
}

START_TEST(readers_during_writes)
{
	char *path = test_temp_path();
	long cap = (long)hashtable_segment_size(60000, 0.95, KS, VS);
	ck_assert_int_gt(cap, 0);
	struct hashtable *h = hashtable_create(path, cap, 0.95, KS, VS, NULL, NULL);
	ck_assert_msg(h != NULL, "create: %s", hashtable_last_error());
	test_register_shmid(hashtable_shmid(h));
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	const uint64_t max = st.max_count & ~1ull; /* odd keys stay, even keys churn */
	put_range(h, 1, max, 0, 0);

	int up[2];
	ck_assert_int_eq(pipe(up), 0);
	pid_t pids[2];
	for (int i = 0; i < 2; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			close(up[0]);
			child_exit(h, path, during_writes_child(path, cap, i, max, up[1]));
		}
	}
	close(up[1]);
	ck_assert_int_eq(read_byte(up[0]), 'r');
	ck_assert_int_eq(read_byte(up[0]), 'r');

	uint64_t nevens = max / 2, *evens = malloc(nevens * sizeof *evens);
	ck_assert_ptr_nonnull(evens);
	for (uint64_t i = 0; i < nevens; i++)
		evens[i] = 2 * (i + 1);
	unsigned char v[VS];
	uint64_t next = max + 2, ops = 0, idx = 0;
	int live = 2, done[2] = {0, 0}, status[2] = {0, 0};
	while (live) {
		for (int j = 0; j < 200; j++, next += 2, ops++) {
			ck_assert_int_eq(hashtable_delete(h, &evens[idx]), 0);
			evens[idx] = next;
			idx = idx + 1 == nevens ? 0 : idx + 1;
			mk_val(v, next, 0);
			ck_assert_int_eq(hashtable_update(h, &next, v), 0);
		}
		for (int i = 0; i < 2; i++)
			if (!done[i] && waitpid(pids[i], &status[i], WNOHANG) == pids[i]) {
				done[i] = 1;
				live--;
			}
	}
	for (int i = 0; i < 2; i++)
		ck_assert_msg(WIFEXITED(status[i]) && WEXITSTATUS(status[i]) == 0,
		              "reader %d: status 0x%x (%s)", i, status[i],
		              WIFEXITED(status[i]) ? reason(WEXITSTATUS(status[i])) : "signal");
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	printf("multiproc: %llu delete+insert pairs at the load limit (%llu relocations) while "
	       "two readers checked %llu stable keys\n", (unsigned long long)ops,
	       (unsigned long long)st.relocations, (unsigned long long)max / 2);
	ck_assert_uint_gt(st.relocations, 0); /* the readers did race with moves */
	close(up[0]);
	free(evens);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
	free(path);
}
END_TEST

/* ---- readers never write ------------------------------------------------- */

/* A table whose last write came from another (now dead) process, attached
 * read-write by this one; returns a private copy of the segment. */
static struct hashtable *table_written_elsewhere(unsigned char **copy, size_t *size,
                                                 unsigned char **map)
{
	struct hashtable *h = test_table_simple(KS, VS, 5000, 0.8);
	put_range(h, 1, 3000, 0, 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		unsigned char v[VS];
		uint64_t k = 1;
		mk_val(v, k, 7);
		int rc = hashtable_update(h, &k, v) == 1 ? CHILD_OK : CHILD_VALUE;
		child_exit(h, NULL, rc);
	}
	wait_child(pid, "writer child");
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	*size = st.segment_bytes;
	*map = shmat(test_data_shmid(h), NULL, SHM_RDONLY) /* the generation */;
	ck_assert_ptr_ne(*map, (void *)-1);
	*copy = malloc(*size);
	ck_assert_ptr_nonnull(*copy);
	memcpy(*copy, *map, *size);
	return h;
}

static void assert_unchanged(const unsigned char *copy, const unsigned char *map, size_t size,
                             const char *what)
{
	if (memcmp(copy, map, size) == 0)
		return;
	size_t i = 0;
	while (copy[i] == map[i])
		i++;
	ck_assert_msg(0, "%s wrote to the segment (byte %zu: 0x%02x -> 0x%02x)", what, i,
	              copy[i], map[i]);
}

START_TEST(lookups_never_write)
{
	unsigned char *copy, *map;
	size_t size;
	struct hashtable *h = table_written_elsewhere(&copy, &size, &map);
	unsigned char out[VS];
	for (uint64_t k = 1; k <= 4000; k++)
		hashtable_search(h, &k, out);
	assert_unchanged(copy, map, size, "hashtable_search");
	uint64_t cur = 0, key;
	while (hashtable_iterate(h, &cur, &key, out) == 1)
		;
	assert_unchanged(copy, map, size, "hashtable_iterate");
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	uint64_t hist[8];
	ck_assert_int_eq(hashtable_probe_histogram(h, hist, 8), 0);
	assert_unchanged(copy, map, size, "hashtable_stats/probe_histogram");
	uint64_t keys[64];
	unsigned char vals[64 * VS];
	int found[64];
	for (int i = 0; i < 64; i++)
		keys[i] = (uint64_t)i * 50 + 1;
	ck_assert_int_ge(hashtable_search_batch(h, 64, keys, vals, found), 0);
	assert_unchanged(copy, map, size, "hashtable_search_batch");
	free(copy);
	shmdt(map);
	test_table_destroy(h);
}
END_TEST

/* verify on a read-only handle writes nothing (on a read-write handle it is
 * documented to take the writer lock, so it is not tested for that). */
START_TEST(verify_rdonly_never_writes)
{
	unsigned char *copy, *map;
	size_t size;
	struct hashtable *h = table_written_elsewhere(&copy, &size, &map);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	struct hashtable *r = hashtable_open_key(st.ipc_key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(hashtable_verify(r), 0);
	assert_unchanged(copy, map, size, "hashtable_verify on a read-only handle");
	hashtable_close(r);
	free(copy);
	shmdt(map);
	test_table_destroy(h);
}
END_TEST

Suite *suite_multiproc(void)
{
	Suite *s = suite_create("multiproc");
	TCase *tc = tcase_create("readers");
	tcase_add_test(tc, readers_attach_by_path);
	tcase_add_test(tc, reader_sees_later_writes);
	tcase_add_test(tc, reader_survives_unlink);
	tcase_add_test(tc, readers_during_writes);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("readers_never_write");
	tcase_add_test(tc, lookups_never_write);
	tcase_add_test(tc, verify_rdonly_never_writes);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);
	return s;
}
