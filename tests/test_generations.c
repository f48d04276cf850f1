/* Generations: replace, grow and autogrow publish whole new generations
 * that every handle follows without reopening; old segments are freed
 * after their last detach; a killed builder leaks nothing; format-1
 * segments are refused; the classic create holds the keys it promises. */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <grp.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Generation g's value for key k: both readable back from the value. */
static uint64_t gen_value(uint64_t g, uint64_t k) { return g * 1000000000ull + k; }

static struct hashtable *table_8_8(uint64_t entries, unsigned mode, int flags)
{
	struct hashtable_config cfg = {0};
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = entries;
	cfg.mode = mode;
	cfg.flags = flags;
	return test_table_create(&cfg);
}

static void fill(struct hashtable *h, uint64_t n, uint64_t g)
{
	for (uint64_t k = 1; k <= n; k++) {
		uint64_t v = gen_value(g, k);
		int rc = hashtable_update(h, &k, &v);
		ck_assert_msg(rc == 0, "update %llu: %d %s", (unsigned long long)k, rc,
		              hashtable_last_error());
	}
}

static uint64_t value_of(struct hashtable *h, uint64_t k)
{
	uint64_t v = 0;
	int rc = hashtable_search(h, &k, &v);
	ck_assert_msg(rc == 0, "key %llu: %d %s", (unsigned long long)k, rc, hashtable_last_error());
	return v;
}

static int seg_role_count(struct hashtable *h, int role)
{
	struct hashtable_segment_info seg[32];
	long n = hashtable_segments(h, seg, 32);
	ck_assert_int_ge(n, 2);
	int c = 0;
	for (long i = 0; i < n && i < 32; i++)
		c += seg[i].role == role;
	return c;
}

/* Whether segment id still exists (IPC_STAT: EINVAL/EIDRM once freed). */
static int segment_exists(int id)
{
	struct shmid_ds ds;
	return shmctl(id, IPC_STAT, &ds) == 0;
}

/* ---- replace ---------------------------------------------------------------- */

START_TEST(replace_publishes_atomically)
{
	struct hashtable *w = table_8_8(4000, 0, 0);
	fill(w, 1000, 1);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(w, &st), 0);
	struct hashtable *r = hashtable_open_key(st.ipc_key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(hashtable_generation(r), 1);

	struct hashtable_builder *b = NULL;
	ck_assert_int_eq(hashtable_replace_begin(w, NULL, &b), 0);
	ck_assert_ptr_nonnull(b);
	for (uint64_t k = 1; k <= 500; k++) {
		uint64_t v = gen_value(2, k);
		ck_assert_int_eq(hashtable_builder_put(b, &k, &v), 0);
	}
	uint64_t extra = 5000, ev = gen_value(2, 5000);
	ck_assert_int_eq(hashtable_builder_put(b, &extra, &ev), 0);
	/* not yet published: both handles see the old generation whole */
	ck_assert_int_eq(seg_role_count(w, HASHTABLE_SEG_PENDING), 1);
	for (uint64_t k = 1; k <= 1000; k++)
		ck_assert_uint_eq(value_of(r, k), gen_value(1, k));
	uint64_t v;
	ck_assert_int_eq(hashtable_search(r, &extra, &v), -1);
	ck_assert_uint_eq(hashtable_generation(r), 1);

	ck_assert_int_eq(hashtable_replace_commit(b), 0);
	/* published: the reader follows without reopening */
	ck_assert_uint_eq(hashtable_generation(r), 2);
	for (uint64_t k = 1; k <= 500; k++)
		ck_assert_uint_eq(value_of(r, k), gen_value(2, k));
	for (uint64_t k = 501; k <= 1000; k++)
		ck_assert_int_eq(hashtable_search(r, &k, &v), -1); /* absent from the new data */
	ck_assert_uint_eq(value_of(r, extra), ev);
	ck_assert_uint_eq(value_of(w, extra), ev);
	ck_assert_int_eq(hashtable_verify(w), 0);
	ck_assert_int_eq(hashtable_verify(r), 0);
	ck_assert_int_eq(hashtable_stats(r, &st), 0);
	ck_assert_uint_eq(st.count, 501);
	/* writes after a replace go to the new generation */
	uint64_t k7 = 7, v7 = 77;
	ck_assert_int_eq(hashtable_update(w, &k7, &v7), 1);
	ck_assert_uint_eq(value_of(r, 7), 77);
	hashtable_close(r);
	test_table_destroy(w);
}
END_TEST

START_TEST(abort_leaves_nothing)
{
	struct hashtable *h = table_8_8(1000, 0, 0);
	fill(h, 300, 1);
	int data = test_data_shmid(h);
	struct hashtable_builder *b = NULL;
	ck_assert_int_eq(hashtable_replace_begin(h, NULL, &b), 0);
	struct hashtable_segment_info seg[8];
	long n = hashtable_segments(h, seg, 8);
	ck_assert_int_eq(n, 3);
	int pending = -1;
	for (long i = 0; i < n; i++)
		if (seg[i].role == HASHTABLE_SEG_PENDING)
			pending = seg[i].shmid;
	ck_assert_int_ge(pending, 0);
	test_register_shmid(pending);
	uint64_t k = 1, v = 99;
	ck_assert_int_eq(hashtable_builder_put(b, &k, &v), 0);
	hashtable_replace_abort(b);
	test_assert_segment_freed(pending, "the aborted build");
	test_assert_only_root_and_current(h, "after the abort");
	ck_assert_int_eq(test_data_shmid(h), data);
	ck_assert_uint_eq(hashtable_generation(h), 1);
	for (uint64_t i = 1; i <= 300; i++)
		ck_assert_uint_eq(value_of(h, i), gen_value(1, i));
	/* the lock was released: writes go on */
	uint64_t k2 = 301, v2 = 1;
	ck_assert_int_eq(hashtable_update(h, &k2, &v2), 0);
	test_table_destroy(h);
}
END_TEST

/* Commit marks the old data segment for removal; the kernel frees it when
 * the last process detaches, which an idle reader does at its next call. */
START_TEST(old_generation_freed_after_last_detach)
{
	struct hashtable *w = table_8_8(1000, 0, 0);
	fill(w, 100, 1);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(w, &st), 0);
	struct hashtable *r = hashtable_open_key(st.ipc_key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(value_of(r, 5), gen_value(1, 5));
	int old = test_data_shmid(w);

	struct hashtable_builder *b = NULL;
	ck_assert_int_eq(hashtable_replace_begin(w, NULL, &b), 0);
	for (uint64_t k = 1; k <= 100; k++) {
		uint64_t v = gen_value(2, k);
		ck_assert_int_eq(hashtable_builder_put(b, &k, &v), 0);
	}
	ck_assert_int_eq(hashtable_replace_commit(b), 0);
	test_register_table(w);

	/* r, idle, still holds the old generation: marked, not freed; w let
	 * go (nattch may count another process's hashtable_segments() for a
	 * moment, so this process's own mappings are counted) */
	struct shmid_ds ds;
	ck_assert_int_eq(shmctl(old, IPC_STAT, &ds), 0);
	ck_assert(ds.shm_perm.mode & SHM_DEST);
	ck_assert_uint_ge(ds.shm_nattch, 1);
	ck_assert_int_eq(test_self_mappings(old), 1);
	/* so the checks below fail at once, without waiting for it */
	char why[1024];
	ck_assert(!test_segment_freed(old, 1000, why, sizeof why));
	ck_assert_msg(strstr(why, "still maps it"), "%s", why);
	ck_assert(!test_only_root_and_current(w, 1000, why, sizeof why));
	ck_assert_msg(strstr(why, "still maps it"), "%s", why);
	struct hashtable_segment_info seg[8];
	long n = hashtable_segments(w, seg, 8);
	ck_assert_int_eq(n, 3);
	int retired = 0;
	for (long i = 0; i < n; i++)
		if (seg[i].role == HASHTABLE_SEG_RETIRED) {
			retired++;
			ck_assert_int_eq(seg[i].shmid, old);
			ck_assert_uint_eq(seg[i].generation, 1);
			ck_assert_uint_ge(seg[i].nattch, 1);
		}
	ck_assert_int_eq(retired, 1);

	/* its next call follows the commit and detaches the old one */
	ck_assert_uint_eq(value_of(r, 5), gen_value(2, 5));
	test_assert_segment_freed(old, "after the idle reader's next call");
	test_assert_only_root_and_current(w, "after the idle reader's next call");
	hashtable_close(r);
	test_table_destroy(w);
}
END_TEST

START_TEST(builder_put_codes)
{
	struct hashtable *h = table_8_8(1000, 0, 0);
	struct hashtable_config cfg = {0};
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = 100;
	struct hashtable_builder *b = NULL;
	ck_assert_int_eq(hashtable_replace_begin(h, &cfg, &b), 0);
	uint64_t k = 1, v = 10;
	ck_assert_int_eq(hashtable_builder_put(b, &k, &v), 0);
	v = 11;
	ck_assert_int_eq(hashtable_builder_put(b, &k, &v), 1); /* overwrote */
	uint64_t zero = 0, ones = UINT64_MAX;
	ck_assert_int_eq(hashtable_builder_put(b, &zero, &v), -EINVAL); /* empty sentinel */
	ck_assert_int_eq(hashtable_builder_put(b, &ones, &v), -EINVAL); /* deleted sentinel */
	ck_assert_int_eq(hashtable_builder_put(b, NULL, &v), -EINVAL);
	ck_assert_int_eq(hashtable_builder_put(NULL, &k, &v), -EINVAL);
	uint64_t accepted = 1;
	int rc = 0;
	for (k = 2; k < 100000 && (rc = hashtable_builder_put(b, &k, &k)) == 0; k++)
		accepted++;
	ck_assert_int_eq(rc, -ENOMEM);
	ck_assert(strstr(hashtable_last_error(), "load limit") != NULL);
	/* still usable: an overwrite succeeds past the limit */
	v = 12;
	k = 1;
	ck_assert_int_eq(hashtable_builder_put(b, &k, &v), 1);
	ck_assert_int_eq(hashtable_replace_commit(b), 0);
	test_register_table(h);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_uint_eq(st.count, accepted);
	ck_assert_uint_eq(st.max_count, accepted);
	ck_assert_uint_ge(st.max_count, 100);
	ck_assert_uint_eq(value_of(h, 1), 12);
	ck_assert_int_eq(hashtable_verify(h), 0);
	/* another width is refused, naming both */
	cfg.value_size = 4;
	ck_assert_int_eq(hashtable_replace_begin(h, &cfg, &b), -EINVAL);
	ck_assert_ptr_null(b);
	ck_assert(strstr(hashtable_last_error(), "widths") != NULL);
	test_table_destroy(h);
}
END_TEST


/* Other widths and sentinels take the general build path. */
START_TEST(replace_wide_keys_custom_sentinels)
{
	unsigned char empty[12], deleted[12];
	memset(empty, 0xee, sizeof empty);
	memset(deleted, 0xdd, sizeof deleted);
	struct hashtable_config cfg = {0};
	cfg.key_size = 12;
	cfg.value_size = 20;
	cfg.entries = 3000;
	cfg.empty_key = empty;
	cfg.deleted_key = deleted;
	struct hashtable *h = test_table_create(&cfg);
	unsigned char k[12], v[20], out[20];
	struct hashtable_builder *b;
	ck_assert_int_eq(hashtable_replace_begin(h, NULL, &b), 0);
	for (unsigned i = 0; i < 2500; i++) {
		memset(k, 0, sizeof k);
		memcpy(k, &i, sizeof i);
		memset(v, (int)(i & 0x7f), sizeof v);
		ck_assert_int_eq(hashtable_builder_put(b, k, v), 0);
	}
	memset(k, 0, sizeof k); /* key 0 again: an overwrite */
	memset(v, 0x55, sizeof v);
	ck_assert_int_eq(hashtable_builder_put(b, k, v), 1);
	ck_assert_int_eq(hashtable_builder_put(b, empty, v), -EINVAL);
	ck_assert_int_eq(hashtable_replace_commit(b), 0);
	test_register_table(h);
	for (unsigned i = 0; i < 2500; i++) {
		memset(k, 0, sizeof k);
		memcpy(k, &i, sizeof i);
		ck_assert_int_eq(hashtable_search(h, k, out), 0);
		ck_assert_uint_eq(out[0], i ? (i & 0x7f) : 0x55);
	}
	ck_assert_int_eq(hashtable_verify(h), 0);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_uint_eq(st.count, 2500);
	test_table_destroy(h);
}
END_TEST

/* ---- grow ------------------------------------------------------------------- */

/* A split-slot table (16-byte keys, 64-byte values: keys in each bucket's
 * first line, values behind them) with a non-zero empty key grows: every
 * key keeps its value, the new generation is split too, and it takes
 * inserts, deletes and a verify. */
static void wide_kv(uint64_t i, uint64_t k[2], uint64_t v[8])
{
	k[0] = i;
	k[1] = i * 0x9E3779B97F4A7C15ull;
	for (int w = 0; w < 8; w++)
		v[w] = i ^ ((uint64_t)w << 56);
}

START_TEST(grow_wide_split_table)
{
	unsigned char empty[16];
	memset(empty, 0xee, sizeof empty);
	struct hashtable_config cfg = {0};
	cfg.key_size = 16;
	cfg.value_size = 64;
	cfg.entries = 1000;
	cfg.empty_key = empty;
	struct hashtable *h = test_table_create(&cfg);
	uint64_t k[2], v[8], out[8], i;
	int rc;
	for (i = 1; (rc = hashtable_update(h, (wide_kv(i, k, v), k), v)) == 0; i++)
		;
	ck_assert_int_eq(rc, -ENOMEM);
	const uint64_t full = i - 1;
	ck_assert_uint_ge(full, 1000);
	ck_assert_int_eq(hashtable_grow(h, 20000), 0);
	test_register_table(h);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_uint_eq(st.count, full);
	ck_assert_uint_eq(st.slots_per_bucket, 4); /* split again */
	for (i = 1; i <= full; i++) {
		wide_kv(i, k, v);
		ck_assert_int_eq(hashtable_search(h, k, out), 0);
		ck_assert_int_eq(memcmp(out, v, sizeof v), 0);
	}
	for (i = full + 1; i <= 15000; i++) {
		wide_kv(i, k, v);
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
	for (i = 1; i <= 15000; i += 3) {
		wide_kv(i, k, v);
		ck_assert_int_eq(hashtable_delete(h, k), 0);
	}
	ck_assert_int_eq(hashtable_verify(h), 0);
	for (i = 1; i <= 15000; i++) {
		wide_kv(i, k, v);
		rc = hashtable_search(h, k, out);
		ck_assert_int_eq(rc, i % 3 == 1 ? -1 : 0);
		if (rc == 0)
			ck_assert_int_eq(memcmp(out, v, sizeof v), 0);
	}
	test_table_destroy(h);
}
END_TEST

START_TEST(grow_keeps_keys_mode_and_owner)
{
	struct hashtable *h = table_8_8(1000, 0640, 0);
	fill(h, 1000, 1);
	uint64_t k = 1001, full;
	int rc;
	while ((rc = hashtable_update(h, &k, &k)) == 0)
		k++;
	ck_assert_int_eq(rc, -ENOMEM); /* full, without AUTOGROW */
	full = k - 1;
	struct hashtable_stats before;
	ck_assert_int_eq(hashtable_stats(h, &before), 0);
	ck_assert_int_eq(hashtable_grow(h, 100000), 0);
	test_register_table(h);
	ck_assert_uint_eq(hashtable_generation(h), 2);
	for (k = 1; k <= 1000; k++)
		ck_assert_uint_eq(value_of(h, k), gen_value(1, k));
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_uint_eq(st.count, full);
	for (k = 1001; k <= full; k++)
		ck_assert_uint_eq(value_of(h, k), k);
	ck_assert_uint_ge(st.max_count, 100000);
	ck_assert_double_eq_tol(st.max_load, before.max_load, 1e-9);
	ck_assert_int_eq(hashtable_verify(h), 0);
	struct shmid_ds root, data;
	ck_assert_int_eq(shmctl(hashtable_shmid(h), IPC_STAT, &root), 0);
	ck_assert_int_eq(shmctl(test_data_shmid(h), IPC_STAT, &data), 0);
	ck_assert_uint_eq(data.shm_perm.mode & 0777, 0640);
	ck_assert_uint_eq(root.shm_perm.mode & 0777, 0640);
	ck_assert_uint_eq(data.shm_perm.uid, root.shm_perm.uid);
	ck_assert_uint_eq(data.shm_perm.gid, root.shm_perm.gid);
	for (k = full + 1; k <= 50000; k++)
		ck_assert_int_eq(hashtable_update(h, &k, &k), 0);
	/* fewer entries than it holds: refused, unchanged */
	ck_assert_int_eq(hashtable_grow(h, 10), -EINVAL);
	ck_assert_uint_eq(hashtable_generation(h), 2);
	test_assert_only_root_and_current(h, "after the grow");
	test_table_destroy(h);
}
END_TEST

START_TEST(autogrow_to_100k)
{
	struct hashtable *h = table_8_8(1000, 0, HASHTABLE_AUTOGROW);
	const uint64_t n = 100000;
	for (uint64_t k = 1; k <= n; k++) {
		uint64_t v = gen_value(1, k);
		int rc = hashtable_update(h, &k, &v);
		ck_assert_msg(rc == 0, "autogrow insert %llu: %d %s", (unsigned long long)k, rc,
		              hashtable_last_error());
	}
	test_register_table(h);
	ck_assert_uint_gt(hashtable_generation(h), 5); /* 1000 -> 100000 doubling */
	for (uint64_t k = 1; k <= n; k++)
		ck_assert_uint_eq(value_of(h, k), gen_value(1, k));
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_uint_eq(st.count, n);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_assert_only_root_and_current(h, "after the autogrows"); /* old ones freed */
	test_table_destroy(h);
}
END_TEST

START_TEST(autogrow_respects_max_bytes)
{
	struct hashtable_config cfg = {0};
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = 1000;
	cfg.flags = HASHTABLE_AUTOGROW;
	cfg.max_bytes = hashtable_segment_size(3000, 0.8, 8, 8);
	struct hashtable *h = test_table_create(&cfg);
	uint64_t k;
	int rc = 0;
	for (k = 1; k <= 100000 && (rc = hashtable_update(h, &k, &k)) == 0; k++)
		test_register_table(h);
	ck_assert_int_eq(rc, -ENOMEM);
	ck_assert_uint_ge(k, 3000); /* grew as far as the cap allows */
	test_assert_only_root_and_current(h, "at the max_bytes cap");
	struct hashtable_segment_info seg[4];
	ck_assert_int_eq(hashtable_segments(h, seg, 4), 2);
	ck_assert_int_eq(seg[1].role, HASHTABLE_SEG_CURRENT);
	ck_assert_uint_le(seg[1].bytes, cfg.max_bytes);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
}
END_TEST

START_TEST(readonly_refuses_replace_and_grow)
{
	struct hashtable *h = table_8_8(1000, 0, 0);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	struct hashtable *r = hashtable_open_key(st.ipc_key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(r);
	struct hashtable_builder *b = (struct hashtable_builder *)1;
	ck_assert_int_eq(hashtable_replace_begin(r, NULL, &b), -EROFS);
	ck_assert_ptr_null(b);
	ck_assert_int_eq(hashtable_grow(r, 5000), -EROFS);
	ck_assert_int_eq(hashtable_replace_begin(NULL, NULL, &b), -EINVAL);
	ck_assert_int_eq(hashtable_grow(NULL, 5000), -EINVAL);
	ck_assert_uint_eq(hashtable_generation(NULL), 0);
	ck_assert_int_eq(hashtable_segments(NULL, NULL, 0), -EINVAL);
	hashtable_replace_abort(NULL); /* nothing */
	ck_assert_uint_eq(hashtable_generation(h), 1);
	hashtable_close(r);
	test_table_destroy(h);
}
END_TEST

/* A writer that is not the table's owner (here: nobody, on a 0666 table
 * owned by root) may update it, but may not build a generation: the
 * commit could not remove the old one, which would stay for ever. */
START_TEST(non_owner_may_not_build)
{
	if (!test_is_root()) {
		printf("generations: non-owner build check skipped: needs root to become nobody\n");
		return;
	}
	struct hashtable *h = table_8_8(1000, 0666, 0);
	fill(h, 10, 1);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	int pipefd[2];
	ck_assert_int_eq(pipe(pipefd), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char text[512] = "";
		int code = 1;
		if (setgroups(0, NULL) == 0 && setgid(65534) == 0 && setuid(65534) == 0) {
			struct hashtable *mine = hashtable_open_key(st.ipc_key, 0);
			struct hashtable_builder *b = NULL;
			uint64_t k = 5, v = 55;
			if (!mine)
				snprintf(text, sizeof text, "open: %s", hashtable_last_error());
			else if (hashtable_update(mine, &k, &v) != 1)
				snprintf(text, sizeof text, "update: %s", hashtable_last_error());
			else if (hashtable_replace_begin(mine, NULL, &b) != -EACCES || b)
				snprintf(text, sizeof text, "replace_begin did not refuse");
			else if (!strstr(hashtable_last_error(), "owner"))
				snprintf(text, sizeof text, "text: %s", hashtable_last_error());
			else if (hashtable_grow(mine, 5000) != -EACCES)
				snprintf(text, sizeof text, "grow did not refuse");
			else
				code = 0;
		}
		ssize_t w = write(pipefd[1], text, strlen(text));
		(void)w;
		_exit(code);
	}
	close(pipefd[1]);
	char text[512] = "";
	ssize_t n = read(pipefd[0], text, sizeof text - 1);
	text[n > 0 ? n : 0] = 0;
	close(pipefd[0]);
	int status;
	waitpid(pid, &status, 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "as nobody: %s", text);
	ck_assert_uint_eq(hashtable_generation(h), 1);
	ck_assert_int_eq(seg_role_count(h, HASHTABLE_SEG_PENDING), 0);
	ck_assert_uint_eq(value_of(h, 5), 55);
	test_table_destroy(h);
}
END_TEST

/* ---- old tables ------------------------------------------------------------- */

START_TEST(format_1_refused_with_migration)
{
	key_t key = test_unique_key();
	int id = shmget(key, 65536, IPC_CREAT | IPC_EXCL | 0600);
	ck_assert_int_ge(id, 0);
	test_register_shmid(id);
	unsigned char *p = shmat(id, NULL, 0);
	ck_assert_ptr_ne(p, (void *)-1);
	uint64_t magic = 0x31564b4d48537f00ull; /* 0.1.0's "\0\177SHMKV1" */
	uint32_t format = 1;
	memcpy(p, &magic, 8);
	memcpy(p + 8, &format, 4);
	errno = 0;
	struct hashtable *h = hashtable_open_key(key, 0);
	ck_assert_ptr_null(h);
	ck_assert_int_eq(errno, EPROTO);
	const char *e = hashtable_last_error();
	ck_assert_msg(strstr(e, "dump") && strstr(e, "ipcrm -m") && strstr(e, "shmkv-load"),
	              "no migration text: %s", e);
	struct hashtable_config cfg = {0};
	cfg.ipc_key = key;
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = 100;
	ck_assert_int_eq(hashtable_create_config(&cfg, &h), -EPROTO);
	ck_assert_int_eq(hashtable_remove_key(key), -EPROTO); /* left alone */
	struct shmid_ds ds;
	ck_assert_int_eq(shmctl(id, IPC_STAT, &ds), 0);
	ck_assert(!(ds.shm_perm.mode & SHM_DEST));
	shmdt(p);
	shmctl(id, IPC_RMID, NULL);
}
END_TEST

/* ---- MemKeyValue sizing ------------------------------------------------------- */

static void classic_holds(long n, double usage)
{
	char *path = test_temp_path();
	long capacity = (long)((double)n * 16 / usage + 0.5);
	struct hashtable *h = hashtable_create(path, capacity, (float)usage, 8, 8, NULL, NULL);
	ck_assert_msg(h != NULL, "create: %s", hashtable_last_error());
	test_register_table(h);
	uint64_t promised = (uint64_t)((float)usage * (double)capacity / 16 + 1e-9);
	ck_assert_uint_ge(promised, (uint64_t)n - 1);
	for (uint64_t k = 1; k <= promised; k++) {
		int rc = hashtable_update(h, &k, &k);
		ck_assert_msg(rc == 0, "usage %g: key %llu of %llu: %d %s", usage,
		              (unsigned long long)k, (unsigned long long)promised, rc,
		              hashtable_last_error());
	}
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	printf("generations: classic %ld bytes at %g: %llu keys promised, limit %llu, real load "
	       "limit %.4f, segment %llu bytes\n", capacity, usage, (unsigned long long)promised,
	       (unsigned long long)st.max_count, (double)st.max_count / (double)st.slots,
	       (unsigned long long)st.segment_bytes);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
	unlink(path);
	free(path);
}

START_TEST(classic_sizing_holds_n_keys)
{
	classic_holds(10000, 0.8);
	classic_holds(100000, 0.8);
	classic_holds(10000, 0.95);
}
END_TEST

/* ---- killed builders -------------------------------------------------------- */

/* Key-0 segments created by pid at or after `since` (seconds: pids are
 * reused, and other processes on the host make key-0 segments too), from
 * /proc/sysvipc/shm. */
static int orphans_of(pid_t pid, time_t since, int *ids, int max)
{
	FILE *f = fopen("/proc/sysvipc/shm", "r");
	char line[512];
	int n = 0;
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof line, f)) {
		int key, id, cpid;
		long long ctime;
		/* key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime */
		if (sscanf(line, "%d %d %*o %*u %d %*d %*u %*u %*u %*u %*u %*u %*u %lld", &key, &id,
		           &cpid, &ctime) == 4 && key == 0 && cpid == pid && ctime >= since && n < max)
			ids[n++] = id;
	}
	fclose(f);
	return n;
}

#define KILL_KEYS 3000

/* The child: replaces the table again and again, each generation's values
 * naming the generation, until it is killed. */
static void builder_child(key_t key, uint64_t grow_every)
{
	struct hashtable *h = hashtable_open_key(key, 0);
	if (!h)
		_exit(2);
	for (uint64_t round = 0;; round++) {
		if (grow_every && round % grow_every == grow_every - 1) {
			if (hashtable_grow(h, KILL_KEYS + 100 + round % 7) != 0)
				_exit(3);
			continue;
		}
		struct hashtable_builder *b;
		if (hashtable_replace_begin(h, NULL, &b) != 0)
			_exit(4);
		uint64_t g = hashtable_generation(h) + 1;
		for (uint64_t k = 1; k <= KILL_KEYS; k++) {
			uint64_t v = gen_value(g, k);
			if (hashtable_builder_put(b, &k, &v) != 0)
				_exit(5);
		}
		if (hashtable_replace_commit(b) != 0)
			_exit(6);
	}
}

/* Every key present, all values from one generation, which is the current one
 * or older. */
static void assert_whole_generation(struct hashtable *h)
{
	uint64_t first = value_of(h, 1);
	uint64_t g = first / 1000000000ull;
	for (uint64_t k = 1; k <= KILL_KEYS; k++)
		ck_assert_uint_eq(value_of(h, k), gen_value(g, k));
}

static void killed_builders(uint64_t grow_every, int runs)
{
	struct hashtable *h = table_8_8(KILL_KEYS + 200, 0, 0);
	fill(h, KILL_KEYS, 1);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	printf("generations: killed builders (grow every %d): seed %u\n", (int)grow_every, seed);
	srand(seed);
	int orphans_found = 0, commits = 0;
	for (int run = 0; run < runs; run++) {
		uint64_t gen_before = hashtable_generation(h);
		time_t forked = time(NULL);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			builder_child(st.ipc_key, grow_every);
		/* from at once (before its first shmget) to a few builds in */
		struct timespec ts = {0, (long)(rand() % 20000) * 1000L};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status;
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status), "builder child exited with %d",
		              WEXITSTATUS(status));
		int ids[16];
		int n = orphans_of(pid, forked, ids, 16);
		for (int i = 0; i < n; i++)
			test_register_shmid(ids[i]); /* removed by the runner even if we fail */
		/* the table serves a whole generation, before any repair */
		assert_whole_generation(h);
		ck_assert_uint_ge(hashtable_generation(h), gen_before);
		commits += (int)hashtable_generation(h) - (int)gen_before;
		ck_assert_int_ge(hashtable_recover(h), 0);
		/* exactly the table's segments remain */
		char when[64];
		snprintf(when, sizeof when, "run %d, after the kill", run);
		test_assert_only_root_and_current(h, when);
		int cur = test_data_shmid(h);
		n = orphans_of(pid, forked, ids, 16);
		for (int i = 0; i < n; i++) {
			if (ids[i] == cur)
				continue; /* the child's committed generation */
			struct shmid_ds ds;
			ck_assert_int_eq(shmctl(ids[i], IPC_STAT, &ds), 0);
			orphans_found++;
			ck_assert_msg(0, "run %d: segment %d of the killed builder %d left behind "
			              "(%zu bytes, nattch %lu, mode %o, current %d generation %llu)",
			              run, ids[i], (int)pid, (size_t)ds.shm_segsz,
			              (unsigned long)ds.shm_nattch, (unsigned)ds.shm_perm.mode, cur,
			              (unsigned long long)hashtable_generation(h));
		}
		assert_whole_generation(h);
		ck_assert_int_eq(hashtable_verify(h), 0);
	}
	printf("generations: %d kills, %d commits seen, %d orphans\n", runs, commits, orphans_found);
	uint64_t k = 1, v = 1;
	ck_assert_int_ge(hashtable_update(h, &k, &v), 0); /* the lock works */
	test_table_destroy(h);
}

START_TEST(killed_builder_leaks_nothing) { killed_builders(0, 40); }
END_TEST

START_TEST(killed_grower_leaks_nothing) { killed_builders(2, 30); }
END_TEST

/* A builder killed right after begin (its pending segment created, its
 * lock held): the next writer gets the lock back and removes the segment. */
START_TEST(killed_after_begin)
{
	struct hashtable *h = table_8_8(1000, 0, 0);
	fill(h, 100, 1);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	time_t forked = time(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct hashtable *c = hashtable_open_key(st.ipc_key, 0);
		struct hashtable_builder *b;
		if (!c || hashtable_replace_begin(c, NULL, &b) != 0)
			_exit(2);
		uint64_t k = 1, v = 5;
		hashtable_builder_put(b, &k, &v);
		raise(SIGKILL);
		_exit(3);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
	int ids[4];
	int n = orphans_of(pid, forked, ids, 4);
	ck_assert_int_eq(n, 1);
	test_register_shmid(ids[0]);
	ck_assert_int_eq(seg_role_count(h, HASHTABLE_SEG_PENDING), 1);
	/* a read-only verify reports it, changing nothing */
	struct hashtable *r = hashtable_open_key(st.ipc_key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(hashtable_verify(r), HASHTABLE_EDEADWRITER);
	ck_assert(strstr(hashtable_last_error(), "--repair") != NULL);
	ck_assert(segment_exists(ids[0]));
	/* an ordinary write recovers the lock and removes the build */
	uint64_t k = 101, v = gen_value(1, 101);
	ck_assert_int_eq(hashtable_update(h, &k, &v), 0);
	test_assert_segment_freed(ids[0], "the dead builder's segment after a write");
	test_assert_only_root_and_current(h, "after the recovering write");
	ck_assert_uint_eq(hashtable_generation(h), 1);
	for (k = 1; k <= 101; k++)
		ck_assert_uint_eq(value_of(h, k), gen_value(1, k));
	ck_assert_int_eq(hashtable_verify(r), 0);
	hashtable_close(r);
	test_table_destroy(h);
}
END_TEST


/* Every crash state of a build and a commit (the essay's list), reached by
 * the library's test-only SHMKV_TEST_KILL_AT: the old generation serves
 * until the commit's publishing store and the new one after it, and after
 * hashtable_recover exactly the table's two segments remain. */
START_TEST(killed_at_each_step)
{
	static const struct {
		const char *step;
		int published; /* the new generation is current after the kill */
	} steps[] = {
		{"build-recorded", 0},    {"segment-created", 0}, {"segment-recorded", 0},
		{"retiring-recorded", 0}, {"published", 1},       {"old-removed", 1},
	};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		struct hashtable *h = table_8_8(500, 0, 0);
		fill(h, 300, 1);
		struct hashtable_stats st;
		ck_assert_int_eq(hashtable_stats(h, &st), 0);
		int old = test_data_shmid(h);
		time_t forked = time(NULL);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			setenv("SHMKV_TEST_KILL_AT", steps[i].step, 1);
			struct hashtable *c = hashtable_open_key(st.ipc_key, 0);
			struct hashtable_builder *b;
			if (!c || hashtable_replace_begin(c, NULL, &b) != 0)
				_exit(2);
			for (uint64_t k = 1; k <= 300; k++) {
				uint64_t v = gen_value(2, k);
				hashtable_builder_put(b, &k, &v);
			}
			hashtable_replace_commit(b);
			_exit(3); /* not killed: the step was not reached */
		}
		int status;
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		              "%s: the child was not killed (status 0x%x)", steps[i].step, status);
		int ids[8];
		int n = orphans_of(pid, forked, ids, 8);
		for (int j = 0; j < n; j++)
			test_register_shmid(ids[j]);
		uint64_t g = steps[i].published ? 2 : 1;
		ck_assert_msg(hashtable_generation(h) == g, "%s: generation %llu", steps[i].step,
		              (unsigned long long)hashtable_generation(h));
		for (uint64_t k = 1; k <= 300; k++)
			ck_assert_uint_eq(value_of(h, k), gen_value(g, k));
		ck_assert_int_ge(hashtable_recover(h), 0);
		test_assert_only_root_and_current(h, steps[i].step);
		int cur = test_data_shmid(h);
		ck_assert_int_eq(cur == old, !steps[i].published);
		if (steps[i].published)
			test_assert_segment_freed(old, steps[i].step); /* the old generation */
		n = orphans_of(pid, forked, ids, 8);
		for (int j = 0; j < n; j++)
			ck_assert_msg(ids[j] == cur, "%s: segment %d of the dead builder left",
			              steps[i].step, ids[j]);
		ck_assert_int_eq(hashtable_verify(h), 0);
		uint64_t k = 1000, v = 1;
		ck_assert_int_eq(hashtable_update(h, &k, &v), 0); /* the lock works */
		test_table_destroy(h);
	}
}
END_TEST

/* remove/unlink remove every segment, the pending one included. */
START_TEST(remove_removes_every_segment)
{
	struct hashtable *h = table_8_8(1000, 0, 0);
	fill(h, 10, 1);
	struct hashtable_builder *b = NULL;
	ck_assert_int_eq(hashtable_replace_begin(h, NULL, &b), 0);
	struct hashtable_segment_info seg[8];
	long n = hashtable_segments(h, seg, 8);
	ck_assert_int_eq(n, 3);
	for (long i = 0; i < n; i++)
		test_register_shmid(seg[i].shmid);
	ck_assert_int_eq(hashtable_unlink(h), 0);
	/* the builder's commit into a removed table fails and removes its own */
	ck_assert_int_eq(hashtable_replace_commit(b), -EIDRM);
	hashtable_close(h);
	for (long i = 0; i < n; i++) {
		char when[64];
		snprintf(when, sizeof when, "after unlink, role %d", seg[i].role);
		test_assert_segment_freed(seg[i].shmid, when);
	}
}
END_TEST


/* ---- threads of one handle follow commits ---------------------------------- */

#define FOLLOW_KEYS 2000

struct follower {
	struct hashtable *h;
	_Atomic int *stop;
	long reads, bad, backwards, errors;
};

static void *follow(void *p)
{
	struct follower *f = p;
	uint64_t last_gen = 0, x = (uint64_t)(uintptr_t)p | 1;
	while (!atomic_load(f->stop)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t k = x % FOLLOW_KEYS + 1, v;
		int rc = hashtable_search(f->h, &k, &v);
		f->reads++;
		if (rc != 0) {
			f->errors++;
			continue;
		}
		uint64_t g = v / 1000000000ull;
		if (v != gen_value(g, k))
			f->bad++;
		if (g < last_gen)
			f->backwards++;
		last_gen = g;
	}
	return NULL;
}

/* Four threads share one handle while another handle commits replaces:
 * every answer is a whole value of one generation, no thread goes back a
 * generation, none errs, and the old segments are freed as they go. */
START_TEST(threads_of_one_handle_follow_commits)
{
	struct hashtable *w = table_8_8(FOLLOW_KEYS + 100, 0, 0);
	fill(w, FOLLOW_KEYS, 1);
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(w, &st), 0);
	struct hashtable *r = hashtable_open_key(st.ipc_key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(r);
	_Atomic int stop = 0;
	struct follower f[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		f[i] = (struct follower){.h = r, .stop = &stop};
		ck_assert_int_eq(pthread_create(&th[i], NULL, follow, &f[i]), 0);
	}
	const int commits = 60;
	for (int c = 0; c < commits; c++) {
		struct hashtable_builder *b;
		ck_assert_int_eq(hashtable_replace_begin(w, NULL, &b), 0);
		uint64_t g = hashtable_generation(w) + 1;
		for (uint64_t k = 1; k <= FOLLOW_KEYS; k++) {
			uint64_t v = gen_value(g, k);
			ck_assert_int_eq(hashtable_builder_put(b, &k, &v), 0);
		}
		ck_assert_int_eq(hashtable_replace_commit(b), 0);
		test_register_table(w);
	}
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL);
	atomic_store(&stop, 1);
	long reads = 0;
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_int_eq(f[i].bad, 0);
		ck_assert_int_eq(f[i].backwards, 0);
		ck_assert_int_eq(f[i].errors, 0);
		reads += f[i].reads;
	}
	printf("generations: 4 threads of one handle, %d commits: %ld reads, none torn, "
	       "mixed or backwards\n", commits, reads);
	ck_assert_uint_eq(value_of(r, 1), gen_value(commits + 1, 1));
	/* the reader handle follows; only the table's two segments remain */
	test_assert_only_root_and_current(w, "after 60 commits");
	hashtable_close(r);
	test_table_destroy(w);
}
END_TEST

Suite *suite_generations(void)
{
	Suite *s = suite_create("generations");
	TCase *tc = tcase_create("replace");
	tcase_add_test(tc, replace_publishes_atomically);
	tcase_add_test(tc, abort_leaves_nothing);
	tcase_add_test(tc, old_generation_freed_after_last_detach);
	tcase_add_test(tc, builder_put_codes);
	tcase_add_test(tc, replace_wide_keys_custom_sentinels);
	tcase_add_test(tc, readonly_refuses_replace_and_grow);
	tcase_add_test(tc, non_owner_may_not_build);
	tcase_add_test(tc, remove_removes_every_segment);
	tcase_add_test(tc, threads_of_one_handle_follow_commits);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("grow");
	tcase_add_test(tc, grow_keeps_keys_mode_and_owner);
	tcase_add_test(tc, grow_wide_split_table);
	tcase_add_test(tc, autogrow_to_100k);
	tcase_add_test(tc, autogrow_respects_max_bytes);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("compat");
	tcase_add_test(tc, format_1_refused_with_migration);
	tcase_add_test(tc, classic_sizing_holds_n_keys);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("crash");
	tcase_add_test(tc, killed_after_begin);
	tcase_add_test(tc, killed_at_each_step);
	tcase_add_test(tc, killed_builder_leaks_nothing);
	tcase_add_test(tc, killed_grower_leaks_nothing);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}
