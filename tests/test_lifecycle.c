/* Lifecycle: create, attach, open, close, unlink, remove; naming by path and
 * by key; modes and permissions; read-only handles. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

static void mk_key(unsigned char *k, uint32_t ks, uint64_t i)
{
	uint64_t v = i + 1;
	memset(k, 0x5a, ks);
	for (uint32_t b = 0; b < ks && b < 8; b++)
		k[b] = (unsigned char)(v >> (8 * b));
}

static void mk_val(unsigned char *v, uint32_t vs, uint64_t i)
{
	for (uint32_t b = 0; b < vs; b++)
		v[b] = (unsigned char)(i * 131 + b * 7 + 1);
}

static struct hashtable_stats stats_of(struct hashtable *h)
{
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	return st;
}

static void fill(struct hashtable *h, uint32_t ks, uint32_t vs, uint64_t n)
{
	unsigned char k[64], v[64];
	ck_assert(ks <= sizeof k && vs <= sizeof v);
	for (uint64_t i = 0; i < n; i++) {
		mk_key(k, ks, i);
		mk_val(v, vs, i);
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
}

/* 1 if all n keys are there with their values. */
static int all_found(struct hashtable *h, uint32_t ks, uint32_t vs, uint64_t n)
{
	unsigned char k[64], v[64], out[64];
	for (uint64_t i = 0; i < n; i++) {
		mk_key(k, ks, i);
		mk_val(v, vs, i);
		if (hashtable_search(h, k, out) != 0 || memcmp(out, v, vs) != 0)
			return 0;
	}
	return 1;
}

/* Fails the test if a segment exists at key (registering it for removal). */
static void assert_no_segment(key_t key)
{
	int id = shmget(key, 0, 0);
	if (id >= 0)
		test_register_shmid(id);
	ck_assert_msg(id < 0 && errno == ENOENT, "a segment was left at key 0x%08x",
	              (unsigned)key);
}

static unsigned seg_mode(int shmid)
{
	struct shmid_ds ds;
	ck_assert_int_eq(shmctl(shmid, IPC_STAT, &ds), 0);
	return ds.shm_perm.mode & 0777;
}

/* ---- naming -------------------------------------------------------------- */

START_TEST(path_naming)
{
	char *path = test_temp_path();
	key_t key = ftok(path, 1);
	struct hashtable *h = hashtable_create(path, 128 * 1024, 0.8, 8, 8, NULL, NULL);
	ck_assert_msg(h != NULL, "create: %s", hashtable_last_error());
	test_register_shmid(hashtable_shmid(h));
	ck_assert_int_eq(shmget(key, 0, 0), hashtable_shmid(h));
	struct hashtable_stats st = stats_of(h);
	ck_assert_int_eq(st.ipc_key, key);
	ck_assert_int_eq(st.shmid, hashtable_shmid(h));
	/* MemKeyValue's sizing: 128 KiB at 0.8 holds 0.8 * 128 Ki / 16 keys */
	ck_assert_uint_ge(st.max_count, (uint64_t)(0.8 * 128 * 1024 / 16));
	ck_assert_uint_ge(st.segment_bytes, 128 * 1024);
	fill(h, 8, 8, 100);
	ck_assert_int_eq(hashtable_close(h), 0);

	/* The segment and its contents outlive the handle. */
	ck_assert_int_ge(shmget(key, 0, 0), 0);
	h = hashtable_open(path, 0);
	ck_assert_msg(h != NULL, "open: %s", hashtable_last_error());
	ck_assert(all_found(h, 8, 8, 100));
	ck_assert_int_eq(hashtable_close(h), 0);
	h = hashtable_open_key(key, 0);
	ck_assert_ptr_nonnull(h);
	ck_assert(all_found(h, 8, 8, 100));

	ck_assert_int_eq(hashtable_unlink(h), 0);
	assert_no_segment(key);
	ck_assert(all_found(h, 8, 8, 100)); /* still attached */
	ck_assert_int_eq(hashtable_close(h), 0);
	free(path);
}
END_TEST

START_TEST(numeric_key_naming)
{
	struct hashtable_config cfg = {0};
	cfg.ipc_key = test_unique_key();
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = 1000;
	struct hashtable *h = test_table_create(&cfg);
	ck_assert_int_eq(shmget(cfg.ipc_key, 0, 0), hashtable_shmid(h));
	ck_assert_int_eq(stats_of(h).ipc_key, cfg.ipc_key);
	fill(h, 8, 8, 500);
	ck_assert_int_eq(hashtable_close(h), 0);
	h = hashtable_open_key(cfg.ipc_key, 0);
	ck_assert_ptr_nonnull(h);
	ck_assert(all_found(h, 8, 8, 500));
	ck_assert_int_eq(hashtable_close(h), 0);
	ck_assert_int_eq(hashtable_remove_key(cfg.ipc_key), 0);
	assert_no_segment(cfg.ipc_key);
	ck_assert_int_eq(hashtable_remove_key(cfg.ipc_key), -ENOENT);
	ck_assert_int_eq(hashtable_shmid(NULL), -1);
}
END_TEST

/* open and open_key take the geometry from the header. */
START_TEST(open_reads_geometry)
{
	struct hashtable_config cfg = {0};
	cfg.key_size = 3;
	cfg.value_size = 5;
	cfg.entries = 700;
	cfg.max_load = 0.5;
	cfg.empty_key = "AAA";
	cfg.deleted_key = "BBB";
	struct hashtable *h = test_table_create(&cfg);
	struct hashtable_stats a = stats_of(h);
	ck_assert_int_eq(hashtable_update(h, "key", "val01"), 0);
	ck_assert_int_eq(hashtable_close(h), 0);

	h = hashtable_open_key(cfg.ipc_key, 0);
	ck_assert_ptr_nonnull(h);
	struct hashtable_stats b = stats_of(h);
	ck_assert_uint_eq(b.key_size, 3);
	ck_assert_uint_eq(b.value_size, 5);
	ck_assert_uint_eq(b.slots, a.slots);
	ck_assert_uint_eq(b.buckets, a.buckets);
	ck_assert_uint_eq(b.max_count, a.max_count);
	ck_assert_double_eq_tol(b.max_load, 0.5, 1e-9);
	ck_assert_uint_eq(b.segment_bytes, a.segment_bytes);
	ck_assert_uint_eq(b.count, 1);
	char out[5];
	ck_assert_int_eq(hashtable_search(h, "key", out), 0);
	ck_assert_mem_eq(out, "val01", 5);
	/* the sentinels came from the header too */
	char e[3], d[3];
	ck_assert_int_eq(hashtable_sentinels(h, e, d), 0);
	ck_assert_mem_eq(e, "AAA", 3);
	ck_assert_mem_eq(d, "BBB", 3);
	ck_assert_int_eq(hashtable_update(h, "AAA", "xxxxx"), -EINVAL);
	ck_assert_int_eq(hashtable_update(h, "BBB", "xxxxx"), -EINVAL);
	unsigned char zero[3] = {0};
	ck_assert_int_eq(hashtable_update(h, zero, "zzzzz"), 0);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
}
END_TEST

/* Attaching with hashtable_create keeps the existing capacity and load. */
START_TEST(create_attaches_existing)
{
	char *path = test_temp_path();
	struct hashtable *h = hashtable_create(path, 200000, 0.5, 8, 8, NULL, NULL);
	ck_assert_ptr_nonnull(h);
	test_register_shmid(hashtable_shmid(h));
	struct hashtable_stats a = stats_of(h);
	fill(h, 8, 8, 300);
	struct hashtable *h2 = hashtable_create(path, 400000, 0.9, 8, 8, NULL, NULL);
	ck_assert_ptr_nonnull(h2);
	ck_assert_int_eq(hashtable_shmid(h2), hashtable_shmid(h));
	struct hashtable_stats b = stats_of(h2);
	ck_assert_uint_eq(b.segment_bytes, a.segment_bytes);
	ck_assert_uint_eq(b.max_count, a.max_count);
	ck_assert_double_eq_tol(b.max_load, 0.5, 1e-9);
	ck_assert_uint_eq(b.count, 300);
	ck_assert_uint_eq(b.nattch, 2);
	ck_assert(all_found(h2, 8, 8, 300));
	/* a write through one handle is seen through the other */
	unsigned char k[8], v[8] = {9, 9, 9, 9, 9, 9, 9, 9}, out[8];
	mk_key(k, 8, 5000);
	ck_assert_int_eq(hashtable_update(h2, k, v), 0);
	ck_assert_int_eq(hashtable_search(h, k, out), 0);
	ck_assert_mem_eq(out, v, 8);
	ck_assert_int_eq(hashtable_close(h2), 0);
	test_table_destroy(h);
	free(path);
}
END_TEST

/* ---- attach errors ------------------------------------------------------- */

START_TEST(missing_path_enoent)
{
	const char *p = "/nonexistent/shmkv/table";
	errno = 0;
	ck_assert_ptr_null(hashtable_create(p, 1 << 16, 0.8, 8, 8, NULL, NULL));
	ck_assert_int_eq(errno, ENOENT);
	errno = 0;
	ck_assert_ptr_null(hashtable_open(p, 0));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(hashtable_remove(p), -ENOENT);
	struct hashtable_config cfg = {0};
	cfg.path = p;
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = 10;
	struct hashtable *h = (struct hashtable *)&cfg; /* must stay unchanged */
	ck_assert_int_eq(hashtable_create_config(&cfg, &h), -ENOENT);
	ck_assert_ptr_eq(h, (struct hashtable *)&cfg);
	/* an existing file with no segment behind it */
	char *path = test_temp_path();
	errno = 0;
	ck_assert_ptr_null(hashtable_open(path, 0));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(hashtable_remove(path), -ENOENT);
	errno = 0;
	ck_assert_ptr_null(hashtable_open_key(test_unique_key(), 0));
	ck_assert_int_eq(errno, ENOENT);
	free(path);
}
END_TEST

START_TEST(attach_mismatch_einval)
{
	char *path = test_temp_path();
	struct hashtable *h = hashtable_create(path, 1 << 16, 0.8, 8, 8, NULL, NULL);
	ck_assert_ptr_nonnull(h);
	test_register_shmid(hashtable_shmid(h));
	fill(h, 8, 8, 50);
	unsigned char s[16];
	memset(s, 0x11, sizeof s);

	errno = 0;
	ck_assert_ptr_null(hashtable_create(path, 1 << 16, 0.8, 8, 16, NULL, NULL));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(hashtable_create(path, 1 << 16, 0.8, 16, 8, NULL, NULL));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(hashtable_create(path, 1 << 16, 0.8, 8, 8, s, NULL));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(hashtable_create(path, 1 << 16, 0.8, 8, 8, NULL, s));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(strlen(hashtable_last_error()) > 0);

	struct hashtable_config cfg = {0};
	cfg.path = path;
	cfg.key_size = 8;
	cfg.value_size = 0;
	cfg.capacity = 1 << 16;
	struct hashtable *h2 = NULL;
	ck_assert_int_eq(hashtable_create_config(&cfg, &h2), -EINVAL);
	ck_assert_ptr_null(h2);

	/* nothing changed; the right arguments still attach */
	ck_assert_uint_eq(stats_of(h).count, 50);
	ck_assert_uint_eq(stats_of(h).nattch, 1);
	h2 = hashtable_create(path, 1 << 16, 0.8, 8, 8, NULL, NULL);
	ck_assert_ptr_nonnull(h2);
	ck_assert(all_found(h2, 8, 8, 50));
	ck_assert_int_eq(hashtable_verify(h2), 0);
	ck_assert_int_eq(hashtable_close(h2), 0);
	test_table_destroy(h);
	free(path);
}
END_TEST

START_TEST(excl_eexist)
{
	struct hashtable_config cfg = {0};
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = 100;
	cfg.flags = HASHTABLE_EXCL;
	struct hashtable *h = test_table_create(&cfg);
	fill(h, 8, 8, 10);
	struct hashtable *h2 = (struct hashtable *)&cfg;
	ck_assert_int_eq(hashtable_create_config(&cfg, &h2), -EEXIST);
	ck_assert_ptr_eq(h2, (struct hashtable *)&cfg);
	ck_assert(strlen(hashtable_last_error()) > 0);
	ck_assert_uint_eq(stats_of(h).count, 10);
	ck_assert_uint_eq(stats_of(h).nattch, 1);
	/* without EXCL it attaches */
	cfg.flags = 0;
	h2 = NULL;
	ck_assert_int_eq(hashtable_create_config(&cfg, &h2), 0);
	ck_assert(all_found(h2, 8, 8, 10));
	hashtable_close(h2);
	test_table_destroy(h);
}
END_TEST

/* ---- modes and permissions ----------------------------------------------- */

START_TEST(default_mode_0600)
{
	char *path = test_temp_path();
	struct hashtable *h = hashtable_create(path, 1 << 16, 0.8, 8, 8, NULL, NULL);
	ck_assert_ptr_nonnull(h);
	test_register_shmid(hashtable_shmid(h));
	ck_assert_uint_eq(seg_mode(hashtable_shmid(h)), 0600);
	test_table_destroy(h);
	h = test_table_simple(8, 8, 100, 0.8);
	ck_assert_uint_eq(seg_mode(hashtable_shmid(h)), 0600);
	ck_assert_uint_eq(stats_of(h).mode & 0777, 0600);
	test_table_destroy(h);
	free(path);
}
END_TEST

START_TEST(custom_mode)
{
	const unsigned modes[] = {0640, 0644, 0400, 0660};
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		struct hashtable_config cfg = {0};
		cfg.key_size = 8;
		cfg.value_size = 8;
		cfg.entries = 100;
		cfg.mode = modes[i];
		struct hashtable *h = test_table_create(&cfg);
		ck_assert_uint_eq(seg_mode(hashtable_shmid(h)), modes[i]);
		ck_assert_uint_eq(stats_of(h).mode & 0777, modes[i]);
		test_table_destroy(h);
	}
}
END_TEST

/* Forks a child that drops to uid/gid 65534 and tries to open the table;
 * returns the child's exit status: the errno of the failed open, or 0 if it
 * opened.  `inherited` is the caller's handle, which the child drops. */
static int open_as_nobody(key_t key, int flags, struct hashtable *inherited)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		hashtable_close(inherited);
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(200);
		errno = 0;
		struct hashtable *h = hashtable_open_key(key, flags);
		int e = errno;
		if (h) {
			hashtable_close(h);
			_exit(0);
		}
		_exit(e > 0 && e < 200 ? e : 201);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child died of signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

START_TEST(eacces)
{
	struct hashtable_config cfg = {0};
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = 100;
	if (test_is_root()) {
		struct hashtable *h = test_table_create(&cfg);
		int rc = open_as_nobody(cfg.ipc_key, 0, h);
		ck_assert_msg(rc == EACCES, "open of a 0600 root table as nobody: %d (%s)",
		              rc, strerror(rc));
		rc = open_as_nobody(cfg.ipc_key, HASHTABLE_RDONLY, h);
		ck_assert_msg(rc == EACCES, "read-only open as nobody: %d (%s)", rc, strerror(rc));
		test_table_destroy(h);
		/* 0644: nobody may read but not write */
		cfg.ipc_key = 0;
		cfg.mode = 0644;
		h = test_table_create(&cfg);
		ck_assert_int_eq(open_as_nobody(cfg.ipc_key, HASHTABLE_RDONLY, h), 0);
		ck_assert_int_eq(open_as_nobody(cfg.ipc_key, 0, h), EACCES);
		test_table_destroy(h);
	} else {
		cfg.mode = 0400;
		struct hashtable *h = test_table_create(&cfg);
		errno = 0;
		ck_assert_ptr_null(hashtable_open_key(cfg.ipc_key, 0));
		ck_assert_int_eq(errno, EACCES);
		struct hashtable *r = hashtable_open_key(cfg.ipc_key, HASHTABLE_RDONLY);
		ck_assert_ptr_nonnull(r);
		hashtable_close(r);
		test_table_destroy(h);
	}
	ck_assert(strlen(hashtable_strerror(-EACCES)) > 0);
}
END_TEST

/* ---- read-only handles --------------------------------------------------- */

/* The address of this process's only mapping of SysV segment `shmid` whose
 * permissions are `perms`, found in /proc/self/maps (inode = shmid). */
static void *find_mapping(int shmid, key_t key, const char *perms)
{
	FILE *f = fopen("/proc/self/maps", "r");
	ck_assert_ptr_nonnull(f);
	char line[512], name[32];
	void *addr = NULL;
	int found = 0;
	snprintf(name, sizeof name, "/SYSV%08x", (unsigned)key);
	while (fgets(line, sizeof line, f)) {
		unsigned long start, end, off, ino;
		char p[8], dev[16];
		if (sscanf(line, "%lx-%lx %7s %lx %15s %lu", &start, &end, p, &off, dev, &ino) != 6)
			continue;
		if (!strstr(line, name) || ino != (unsigned long)shmid || strcmp(p, perms) != 0)
			continue;
		addr = (void *)start;
		found++;
	}
	fclose(f);
	ck_assert_msg(found == 1, "%d mappings of shmid %d with %s", found, shmid, perms);
	return addr;
}

START_TEST(rdonly_handle)
{
	struct hashtable_config cfg = {0};
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.entries = 1000;
	struct hashtable *w = test_table_create(&cfg);
	int shmid = hashtable_shmid(w);
	fill(w, 8, 8, 500);
	ck_assert_int_eq(hashtable_close(w), 0);

	struct hashtable *r = hashtable_open_key(cfg.ipc_key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(r);
	ck_assert(all_found(r, 8, 8, 500));
	unsigned char k[8], v[8] = {0};
	mk_key(k, 8, 1);
	ck_assert_int_eq(hashtable_update(r, k, v), -EROFS);
	mk_key(k, 8, 100000);
	ck_assert_int_eq(hashtable_update(r, k, v), -EROFS);
	mk_key(k, 8, 2);
	ck_assert_int_eq(hashtable_delete(r, k), -EROFS);
	ck_assert_int_eq(hashtable_recover(r), -EROFS);
	ck_assert(all_found(r, 8, 8, 500));
	struct hashtable_stats st = stats_of(r);
	ck_assert_uint_eq(st.count, 500);
	ck_assert_uint_eq(st.inserts, 500);
	ck_assert_int_eq(hashtable_verify(r), 0);
	uint64_t cur = 0, n = 0;
	while (hashtable_iterate(r, &cur, k, v) == 1)
		n++;
	ck_assert_uint_eq(n, 500);

	/* The mapping itself refuses writes: the kernel will not store into
	 * it (read() fails with EFAULT) ... */
	volatile unsigned char *base = find_mapping(shmid, cfg.ipc_key, "r--s");
	int zfd = open("/dev/zero", O_RDONLY);
	ck_assert_int_ge(zfd, 0);
	errno = 0;
	ck_assert_int_eq(read(zfd, (void *)base, 8), -1);
	ck_assert_int_eq(errno, EFAULT);
	close(zfd);
	/* ... and a store through it faults. */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* die of the fault itself, not of a sanitizer's SEGV handler */
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = SIG_DFL;
		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
		base[0] ^= 0xFF;
		base[64] = 1;
		_exit(0);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
	              "write through a read-only mapping did not fault (status 0x%x)", status);

	/* create_config with RDONLY attaches read-only too */
	cfg.flags = HASHTABLE_RDONLY;
	struct hashtable *r2 = NULL;
	ck_assert_int_eq(hashtable_create_config(&cfg, &r2), 0);
	mk_key(k, 8, 1);
	ck_assert_int_eq(hashtable_update(r2, k, v), -EROFS);
	ck_assert_int_eq(hashtable_search(r2, k, v), 0);
	hashtable_close(r2);

	ck_assert_int_eq(hashtable_close(r), 0);
	ck_assert_int_eq(hashtable_remove_key(cfg.ipc_key), 0);
	ck_assert_int_lt(shmget(cfg.ipc_key, 0, 0), 0);

	/* a read-only create only attaches: with no table it creates nothing */
	r2 = (struct hashtable *)&cfg;
	ck_assert_int_eq(hashtable_create_config(&cfg, &r2), -ENOENT);
	ck_assert_ptr_eq(r2, (struct hashtable *)&cfg);
	errno = 0;
	ck_assert_int_lt(shmget(cfg.ipc_key, 0, 0), 0);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

/* ---- close, unlink, remove ----------------------------------------------- */

START_TEST(close_keeps_segment)
{
	struct hashtable *h = test_table_simple(8, 8, 100, 0.8);
	struct hashtable_stats st = stats_of(h);
	fill(h, 8, 8, 20);
	ck_assert_int_eq(hashtable_close(h), 0);
	struct shmid_ds ds;
	ck_assert_int_eq(shmctl(st.shmid, IPC_STAT, &ds), 0);
	ck_assert_uint_eq(ds.shm_nattch, 0);
	ck_assert_int_eq(shmget(st.ipc_key, 0, 0), st.shmid);
	h = hashtable_open_key(st.ipc_key, 0);
	ck_assert_ptr_nonnull(h);
	ck_assert(all_found(h, 8, 8, 20));
	test_table_destroy(h);
	ck_assert_int_lt(shmctl(st.shmid, IPC_STAT, &ds), 0);
}
END_TEST

START_TEST(unlink_frees_key)
{
	char *path = test_temp_path();
	struct hashtable *h = hashtable_create(path, 1 << 16, 0.8, 8, 8, NULL, NULL);
	ck_assert_ptr_nonnull(h);
	int id = hashtable_shmid(h);
	test_register_shmid(id);
	fill(h, 8, 8, 100);
	ck_assert_int_eq(hashtable_unlink(h), 0);
	/* the key is free at once: a new, empty table can take it */
	struct hashtable *h2 = hashtable_create(path, 1 << 16, 0.8, 8, 8, NULL, NULL);
	ck_assert_ptr_nonnull(h2);
	test_register_shmid(hashtable_shmid(h2));
	ck_assert_int_ne(hashtable_shmid(h2), id);
	ck_assert_uint_eq(stats_of(h2).count, 0);
	/* the old handle still works on the old table */
	ck_assert(all_found(h, 8, 8, 100));
	unsigned char k[8], v[8] = {0};
	mk_key(k, 8, 1000);
	ck_assert_int_eq(hashtable_update(h, k, v), 0);
	ck_assert_int_eq(hashtable_search(h2, k, v), -1);
	ck_assert_int_eq(hashtable_close(h), 0);
	struct shmid_ds ds;
	ck_assert_int_lt(shmctl(id, IPC_STAT, &ds), 0); /* gone on last detach */
	ck_assert_int_eq(hashtable_remove(path), 0);
	ck_assert_int_lt(shmget(ftok(path, 1), 0, 0), 0);
	ck_assert_int_eq(hashtable_close(h2), 0);
	ck_assert_int_eq(hashtable_remove(path), -ENOENT);
	free(path);
}
END_TEST

START_TEST(remove_attached)
{
	struct hashtable *h = test_table_simple(8, 8, 100, 0.8);
	key_t key = stats_of(h).ipc_key;
	fill(h, 8, 8, 50);
	ck_assert_int_eq(hashtable_remove_key(key), 0);
	ck_assert_int_lt(shmget(key, 0, 0), 0);
	ck_assert(all_found(h, 8, 8, 50));
	ck_assert_int_eq(hashtable_close(h), 0);
}
END_TEST

START_TEST(remove_foreign_refused)
{
	key_t key = test_unique_key();
	int id = shmget(key, 8192, IPC_CREAT | IPC_EXCL | 0600);
	ck_assert_int_ge(id, 0);
	test_register_shmid(id);
	unsigned char *p = shmat(id, NULL, 0);
	ck_assert_ptr_ne(p, (void *)-1);
	for (int i = 0; i < 8192; i++)
		p[i] = (unsigned char)(i * 37 + 11);
	ck_assert_int_eq(hashtable_remove_key(key), -EPROTO);
	ck_assert_int_eq(shmget(key, 0, 0), id);
	struct shmid_ds ds;
	ck_assert_int_eq(shmctl(id, IPC_STAT, &ds), 0);
	ck_assert(!(ds.shm_perm.mode & SHM_DEST));
	for (int i = 0; i < 8192; i++)
		ck_assert_int_eq(p[i], (unsigned char)(i * 37 + 11));
	shmdt(p);
	shmctl(id, IPC_RMID, NULL);
}
END_TEST

START_TEST(remove_foreign_by_path_refused)
{
	char *path = test_temp_path();
	key_t key = ftok(path, 1);
	int id = shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600);
	ck_assert_int_ge(id, 0);
	test_register_shmid(id);
	unsigned char *p = shmat(id, NULL, 0);
	ck_assert_ptr_ne(p, (void *)-1);
	memset(p, 0xA5, 4096);
	ck_assert_int_eq(hashtable_remove(path), -EPROTO);
	for (int i = 0; i < 4096; i++)
		ck_assert_int_eq(p[i], 0xA5);
	shmdt(p);
	ck_assert_int_eq(shmget(key, 0, 0), id);
	shmctl(id, IPC_RMID, NULL);
	free(path);
}
END_TEST

Suite *suite_lifecycle(void)
{
	Suite *s = suite_create("lifecycle");
	TCase *tc = tcase_create("naming");
	tcase_add_test(tc, path_naming);
	tcase_add_test(tc, numeric_key_naming);
	tcase_add_test(tc, open_reads_geometry);
	tcase_add_test(tc, create_attaches_existing);
	tcase_set_timeout(tc, 10);
	suite_add_tcase(s, tc);

	tc = tcase_create("attach_errors");
	tcase_add_test(tc, missing_path_enoent);
	tcase_add_test(tc, attach_mismatch_einval);
	tcase_add_test(tc, excl_eexist);
	tcase_set_timeout(tc, 10);
	suite_add_tcase(s, tc);

	tc = tcase_create("permissions");
	tcase_add_test(tc, default_mode_0600);
	tcase_add_test(tc, custom_mode);
	tcase_add_test(tc, eacces);
	tcase_add_test(tc, rdonly_handle);
	tcase_set_timeout(tc, 10);
	suite_add_tcase(s, tc);

	tc = tcase_create("teardown");
	tcase_add_test(tc, close_keeps_segment);
	tcase_add_test(tc, unlink_frees_key);
	tcase_add_test(tc, remove_attached);
	tcase_add_test(tc, remove_foreign_refused);
	tcase_add_test(tc, remove_foreign_by_path_refused);
	tcase_set_timeout(tc, 10);
	suite_add_tcase(s, tc);
	return s;
}
