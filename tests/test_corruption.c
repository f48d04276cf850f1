/* Corruption: segments that are not shmkv tables, or whose header is damaged,
 * are refused with EPROTO, never crash the library, and are left untouched.
 *
 * The header layout is private to hashtable.c.  These tests do not hard-code
 * it: they create a table with distinctive widths and sizes and find each
 * header field by its value (one match, or the test says the layout search
 * failed).  They rely only on the header living in the segment's first
 * HEADER_SCAN bytes with naturally aligned fields. */
#include "testutil.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#define HEADER_SCAN 256

/* Distinctive geometry: 9-byte keys, 6-byte values (so the value offset,
 * 10, differs from the key width, and the slot, 16, stays interleaved:
 * a split layout's slot_size would equal the key width), an odd capacity. */
#define KS 9u
#define VS 6u
#define CAP 200003u
#define NKEYS 1500u

static void mk_key(unsigned char *k, uint64_t i)
{
	memset(k, 0x5a, KS);
	for (int b = 0; b < 8; b++)
		k[b] = (unsigned char)((i + 1) >> (8 * b));
}

static void mk_val(unsigned char *v, uint64_t i)
{
	for (unsigned b = 0; b < VS; b++)
		v[b] = (unsigned char)(i * 131 + b * 7 + 1);
}

static struct hashtable_stats stats_of(struct hashtable *h)
{
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	return st;
}

/* A table at a fresh key, filled, closed; returns its key and shmid. */
static key_t make_table(int *shmid, struct hashtable_stats *st)
{
	struct hashtable_config cfg = {0};
	cfg.key_size = KS;
	cfg.value_size = VS;
	cfg.capacity = CAP;
	struct hashtable *h = test_table_create(&cfg);
	unsigned char k[KS], v[VS];
	for (uint64_t i = 0; i < NKEYS; i++) {
		mk_key(k, i);
		mk_val(v, i);
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
	*st = stats_of(h);
	*shmid = test_data_shmid(h); /* the generation: geometry, journal, buckets */
	ck_assert_int_eq(hashtable_close(h), 0);
	return cfg.ipc_key;
}

static int table_intact(key_t key)
{
	struct hashtable *h = hashtable_open_key(key, HASHTABLE_RDONLY);
	if (!h)
		return 0;
	unsigned char k[KS], v[VS], out[VS];
	int ok = hashtable_verify(h) == 0;
	for (uint64_t i = 0; ok && i < NKEYS; i++) {
		mk_key(k, i);
		mk_val(v, i);
		ok = hashtable_search(h, k, out) == 0 && memcmp(out, v, VS) == 0;
	}
	hashtable_close(h);
	return ok;
}

/* The one aligned offset in the header holding `value` as a `width`-byte
 * integer, or -1 (none, or several). */
static long find_field_below(const unsigned char *hdr, long limit, uint64_t value, int width)
{
	long at = -1;
	for (long off = 0; off + width <= limit; off += width) {
		uint64_t x = 0;
		memcpy(&x, hdr + off, (size_t)width);
		if (x == value) {
			if (at >= 0)
				return -1;
			at = off;
		}
	}
	return at;
}

static long find_field(const unsigned char *hdr, uint64_t value, int width)
{
	return find_field_below(hdr, HEADER_SCAN, value, width);
}

static void put(unsigned char *p, long off, uint64_t value, int width)
{
	memcpy(p + off, &value, (size_t)width);
}

/* Every way of attaching to a damaged or foreign segment must fail with
 * EPROTO and leave its bytes as they were.  path: the segment's path name,
 * or NULL when it is only reachable by key. */
static void assert_refused(key_t key, int shmid, const char *path, const char *what)
{
	struct shmid_ds ds;
	ck_assert_int_eq(shmctl(shmid, IPC_STAT, &ds), 0);
	size_t size = ds.shm_segsz;
	unsigned char *p = shmat(shmid, NULL, SHM_RDONLY);
	ck_assert_ptr_ne(p, (void *)-1);
	unsigned char *before = malloc(size);
	ck_assert_ptr_nonnull(before);
	memcpy(before, p, size);

	const int flags[] = {0, HASHTABLE_RDONLY};
	for (int i = 0; i < 2; i++) {
		errno = 0;
		struct hashtable *h = hashtable_open_key(key, flags[i]);
		if (h)
			hashtable_close(h);
		ck_assert_msg(!h && errno == EPROTO, "%s: open_key(flags %d): %s, errno %d (%s)",
		              what, flags[i], h ? "succeeded" : "failed", errno, strerror(errno));
	}
	struct hashtable_config cfg = {0};
	cfg.path = path;
	cfg.ipc_key = key;
	cfg.key_size = KS;
	cfg.value_size = VS;
	cfg.capacity = CAP;
	struct hashtable *h = NULL;
	int rc = hashtable_create_config(&cfg, &h);
	if (h)
		hashtable_close(h);
	ck_assert_msg(rc == -EPROTO, "%s: create_config attach: %d (%s)", what, rc,
	              hashtable_strerror(rc));
	ck_assert(strlen(hashtable_last_error()) > 0);
	if (path) {
		errno = 0;
		h = hashtable_open(path, 0);
		ck_assert_msg(!h && errno == EPROTO, "%s: open(path): errno %d", what, errno);
		errno = 0;
		h = hashtable_create(path, CAP, 0.8, KS, VS, NULL, NULL);
		if (h)
			hashtable_close(h);
		ck_assert_msg(!h && errno == EPROTO, "%s: classic create: errno %d", what, errno);
		ck_assert_int_eq(hashtable_remove(path), -EPROTO);
	}
	ck_assert_int_eq(hashtable_remove_key(key), -EPROTO);

	/* the segment at the key is the one given (a foreign segment, a root)
	 * or the root of the table whose data segment it is: neither removed */
	int at_key = shmget(key, 0, 0);
	ck_assert_int_ge(at_key, 0);
	ck_assert_int_eq(shmctl(at_key, IPC_STAT, &ds), 0);
	ck_assert_msg(!(ds.shm_perm.mode & SHM_DEST), "%s: root marked for removal", what);
	if (at_key != shmid)
		ck_assert_int_eq(ds.shm_perm.__key, key);
	ck_assert_int_eq(shmctl(shmid, IPC_STAT, &ds), 0);
	ck_assert_msg(at_key == shmid || ds.shm_perm.__key == IPC_PRIVATE,
	              "%s: segment %d is neither at the key nor a data segment", what, shmid);
	ck_assert_msg(!(ds.shm_perm.mode & SHM_DEST), "%s: segment marked for removal", what);
	ck_assert_msg(memcmp(before, p, size) == 0, "%s: the segment was written", what);
	free(before);
	shmdt(p);
}

/* A plain segment of `size` bytes at a fresh path's key, filled by fill(). */
static int foreign_segment(size_t size, char **path, key_t *key, unsigned char **map)
{
	*path = test_temp_path();
	*key = ftok(*path, 1);
	int id = shmget(*key, size, IPC_CREAT | IPC_EXCL | 0600);
	ck_assert_int_ge(id, 0);
	test_register_shmid(id);
	*map = shmat(id, NULL, 0);
	ck_assert_ptr_ne(*map, (void *)-1);
	return id;
}

static void foreign_done(int id, char *path, unsigned char *map)
{
	shmdt(map);
	shmctl(id, IPC_RMID, NULL);
	free(path);
}

/* ---- foreign segments ---------------------------------------------------- */

START_TEST(foreign_junk)
{
	char *path;
	key_t key;
	unsigned char *p;
	int id = foreign_segment(65536, &path, &key, &p);
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < 65536; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
	assert_refused(key, id, path, "random bytes");
	foreign_done(id, path, p);
}
END_TEST

START_TEST(foreign_ones)
{
	char *path;
	key_t key;
	unsigned char *p;
	int id = foreign_segment(8192, &path, &key, &p);
	memset(p, 0xFF, 8192);
	assert_refused(key, id, path, "0xFF bytes");
	foreign_done(id, path, p);
}
END_TEST

/* All zeros: what a creator that died before writing its header leaves.
 * The library may wait briefly for a concurrent creator, then EPROTO. */
START_TEST(foreign_zeros)
{
	char *path;
	key_t key;
	unsigned char *p;
	int id = foreign_segment(4096, &path, &key, &p);
	/* Each attach waits ~2 s for a creator to publish the header, so try
	 * only one of them here; the others are covered by the junk tests. */
	errno = 0;
	struct hashtable *h = hashtable_open_key(key, HASHTABLE_RDONLY);
	if (h)
		hashtable_close(h);
	ck_assert_msg(!h && errno == EPROTO, "zero segment: open_key: errno %d", errno);
	for (int i = 0; i < 4096; i++)
		ck_assert_int_eq(p[i], 0);
	ck_assert_int_eq(shmget(key, 0, 0), id);
	foreign_done(id, path, p);
}
END_TEST

/* A real table's first bytes (its magic) in a segment too small for a
 * header, and in one that is big enough but holds junk after them. */
START_TEST(magic_only)
{
	int tid;
	struct hashtable_stats st;
	key_t tkey = make_table(&tid, &st);
	unsigned char *t = shmat(tid, NULL, SHM_RDONLY);
	ck_assert_ptr_ne(t, (void *)-1);

	const size_t sizes[] = {8, 16, 40, 100};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char *path;
		key_t key;
		unsigned char *p;
		int id = foreign_segment(sizes[i], &path, &key, &p);
		memcpy(p, t, sizes[i]);
		char what[64];
		snprintf(what, sizeof what, "a table's first %zu bytes alone", sizes[i]);
		assert_refused(key, id, path, what);
		foreign_done(id, path, p);
	}
	shmdt(t);
	ck_assert(table_intact(tkey));
	hashtable_remove_key(tkey);
}
END_TEST

/* ---- damaged headers ----------------------------------------------------- */

/* Our magic, another format version. */
START_TEST(wrong_format_version)
{
	int id;
	struct hashtable_stats st;
	key_t key = make_table(&id, &st);
	unsigned char *p = shmat(id, NULL, 0);
	ck_assert_ptr_ne(p, (void *)-1);
	/* The version precedes the geometry (small values such as 1 also occur
	 * later, e.g. inside the writer mutex). */
	long o_ks = find_field(p, KS, 4);
	ck_assert_msg(o_ks > 0, "cannot find the key width in the header");
	long off = find_field_below(p, o_ks, st.format_version, 4);
	ck_assert_msg(off >= 0, "cannot find the format version %u in the header's first "
	              "%ld bytes", st.format_version, o_ks);
	uint32_t orig = st.format_version;
	const uint32_t bad[] = {orig + 1, orig + 1000, 0, UINT32_MAX};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		put(p, off, bad[i], 4);
		char what[64];
		snprintf(what, sizeof what, "format version %u", bad[i]);
		assert_refused(key, id, NULL, what);
		printf("corruption: format %u: %s\n", bad[i], hashtable_last_error());
	}
	put(p, off, orig, 4);
	ck_assert(table_intact(key));
	shmdt(p);
	ck_assert_int_eq(hashtable_remove_key(key), 0);
}
END_TEST

struct mutation {
	const char *field;
	uint64_t value;
	int width;
	long *off;
};

/* Geometry fields set to values that do not fit the segment. */
START_TEST(geometry_mismatch)
{
	int id;
	struct hashtable_stats st;
	key_t key = make_table(&id, &st);
	unsigned char *p = shmat(id, NULL, 0);
	ck_assert_ptr_ne(p, (void *)-1);
	ck_assert_uint_eq(st.segment_bytes, CAP);
	long o_seg = find_field(p, CAP, 8), o_nb = find_field(p, st.buckets, 8);
	long o_ks = find_field(p, KS, 4), o_vs = find_field(p, VS, 4);
	long o_ss = find_field(p, st.slot_size, 4);
	ck_assert_msg(o_seg >= 0 && o_nb >= 0 && o_ks >= 0 && o_vs >= 0 && o_ss >= 0,
	              "header fields not found by value: segment %ld buckets %ld key %ld "
	              "value %ld slot %ld", o_seg, o_nb, o_ks, o_vs, o_ss);
	const struct mutation m[] = {
		{"segment_bytes", (uint64_t)CAP * 2, 8, &o_seg},
		{"segment_bytes", (uint64_t)CAP + 4096, 8, &o_seg},
		{"segment_bytes", 0, 8, &o_seg},
		{"segment_bytes", UINT64_MAX, 8, &o_seg},
		{"buckets", st.buckets * 2 + 1, 8, &o_nb},
		{"buckets", 1ull << 40, 8, &o_nb},
		{"buckets", UINT64_MAX, 8, &o_nb},
		{"buckets", 0, 8, &o_nb},
		{"key_size", 0, 4, &o_ks},
		{"key_size", KS + 1, 4, &o_ks},
		{"key_size", HASHTABLE_MAX_KEY + 1, 4, &o_ks},
		{"key_size", UINT32_MAX, 4, &o_ks},
		{"value_size", VS + 100, 4, &o_vs},
		{"value_size", HASHTABLE_MAX_VALUE + 1, 4, &o_vs},
		{"value_size", UINT32_MAX, 4, &o_vs},
		{"slot_size", 0, 4, &o_ss},
		{"slot_size", 1, 4, &o_ss},
		{"slot_size", st.slot_size * 4, 4, &o_ss},
	};
	unsigned char saved[HEADER_SCAN];
	memcpy(saved, p, HEADER_SCAN);
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
		put(p, *m[i].off, m[i].value, m[i].width);
		char what[96];
		snprintf(what, sizeof what, "header %s = %llu", m[i].field,
		         (unsigned long long)m[i].value);
		assert_refused(key, id, NULL, what);
		memcpy(p, saved, HEADER_SCAN);
	}
	ck_assert(table_intact(key));
	shmdt(p);
	ck_assert_int_eq(hashtable_remove_key(key), 0);
}
END_TEST

/* A big table's header copied over a small table: the geometry describes
 * more bytes than the segment has.  Independent of the layout. */
START_TEST(header_of_bigger_table)
{
	struct hashtable_config big = {0};
	big.key_size = KS;
	big.value_size = VS;
	big.capacity = 4u << 20;
	struct hashtable *hb = test_table_create(&big);
	int id;
	struct hashtable_stats st;
	key_t key = make_table(&id, &st);
	unsigned char *src = shmat(test_data_shmid(hb), NULL, SHM_RDONLY);
	unsigned char *dst = shmat(id, NULL, 0);
	ck_assert(src != (void *)-1 && dst != (void *)-1);
	unsigned char saved[4096];
	memcpy(saved, dst, 4096);
	memcpy(dst, src, 4096);
	assert_refused(key, id, NULL, "a 4 MiB table's first page in a 200 KB segment");
	memcpy(dst, saved, 4096);
	ck_assert(table_intact(key));
	shmdt(src);
	shmdt(dst);
	test_table_destroy(hb);
	ck_assert_int_eq(hashtable_remove_key(key), 0);
}
END_TEST

/* Every 4-byte word of the header set to hostile values, one at a time:
 * attaching either fails with EPROTO or yields a handle whose read
 * operations return (any code) without crashing or hanging.  Each attempt
 * runs in its own process so that a crash names its offset.  Exit status:
 * FUZZ_OPENED, FUZZ_REFUSED, or FUZZ_ERRNO (refused with another errno). */
enum { FUZZ_OPENED = 0, FUZZ_REFUSED = 1, FUZZ_ERRNO = 2 };

static int fuzz_one(key_t key)
{
	alarm(10);
	errno = 0;
	struct hashtable *w = hashtable_open_key(key, 0);
	if (w)
		hashtable_close(w);
	else if (errno != EPROTO)
		return FUZZ_ERRNO;
	struct hashtable *h = hashtable_open_key(key, HASHTABLE_RDONLY);
	if (!h)
		return errno == EPROTO ? FUZZ_REFUSED : FUZZ_ERRNO;
	struct hashtable_stats st;
	hashtable_stats(h, &st);
	hashtable_verify(h);
	unsigned char k[KS], out[VS];
	for (uint64_t i = 0; i < 200; i++) {
		mk_key(k, i * 7);
		hashtable_search(h, k, out);
	}
	uint64_t cur = 0, hist[16];
	for (int n = 0; n < 5000 && hashtable_iterate(h, &cur, k, out) == 1; n++)
		;
	hashtable_probe_histogram(h, hist, 16);
	hashtable_close(h);
	return FUZZ_OPENED;
}

START_TEST(header_fuzz)
{
	int id;
	struct hashtable_stats st;
	key_t key = make_table(&id, &st);
	unsigned char *p = shmat(id, NULL, 0);
	ck_assert_ptr_ne(p, (void *)-1);
	unsigned char saved[HEADER_SCAN];
	memcpy(saved, p, HEADER_SCAN);
	int stride = test_scale() < 1 ? 16 : 4, tried = 0, refused = 0;
	for (long off = 0; off < HEADER_SCAN; off += stride) {
		uint32_t orig;
		memcpy(&orig, saved + off, 4);
		const uint32_t pats[] = {0, 1, 0x7FFFFFFF, 0x80000000, UINT32_MAX, orig + 1,
		                         orig ^ 0x40};
		for (size_t j = 0; j < sizeof pats / sizeof pats[0]; j++) {
			if (pats[j] == orig)
				continue;
			memcpy(p + off, &pats[j], 4);
			pid_t pid = fork();
			ck_assert_int_ge(pid, 0);
			if (pid == 0)
				_exit(fuzz_one(key));
			int status;
			ck_assert_int_eq(waitpid(pid, &status, 0), pid);
			memcpy(p, saved, HEADER_SCAN);
			ck_assert_msg(!WIFSIGNALED(status),
			              "header word at offset %ld = 0x%08x: killed by signal %d%s", off,
			              pats[j], WTERMSIG(status),
			              WTERMSIG(status) == SIGALRM ? " (hung)" : "");
			ck_assert_msg(WEXITSTATUS(status) != FUZZ_ERRNO,
			              "header word at offset %ld = 0x%08x: attach failed with an errno "
			              "other than EPROTO", off, pats[j]);
			tried++;
			refused += WEXITSTATUS(status) == FUZZ_REFUSED;
		}
	}
	printf("corruption: header fuzz: %d mutations of the first %d bytes: %d refused with "
	       "EPROTO, the rest attached and read without a crash\n", tried, HEADER_SCAN,
	       refused);
	ck_assert(table_intact(key));
	shmdt(p);
	ck_assert_int_eq(hashtable_remove_key(key), 0);
}
END_TEST

/* ---- verify finds damage ------------------------------------------------- */

/* A stored key wiped to the empty sentinel behind the library's back: the
 * header count no longer matches; verify must say so. */
START_TEST(verify_detects_lost_key)
{
	struct hashtable *h = test_table_simple(8, 8, 1000, 0.8);
	uint64_t marker = 0x1122334455667788ull, v = 0xABABABABABABABABull;
	ck_assert_int_eq(hashtable_update(h, &marker, &v), 0);
	for (uint64_t i = 1; i <= 500; i++) {
		uint64_t val = i;
		ck_assert_int_eq(hashtable_update(h, &i, &val), 0);
	}
	ck_assert_int_eq(hashtable_verify(h), 0);
	struct hashtable_stats st = stats_of(h);
	unsigned char *p = shmat(test_data_shmid(h), NULL, 0);
	ck_assert_ptr_ne(p, (void *)-1);
	int hits = 0;
	for (size_t off = 0; off + 16 <= st.segment_bytes; off += 8) {
		if (memcmp(p + off, &marker, 8) == 0 && memcmp(p + off + 8, &v, 8) == 0) {
			memset(p + off, 0, 8);
			hits++;
		}
	}
	ck_assert_int_eq(hits, 1);
	int rc = hashtable_verify(h);
	ck_assert_int_eq(rc, HASHTABLE_ECORRUPT);
	const char *text = hashtable_last_error();
	printf("corruption: verify after wiping a key: %s\n", text);
	ck_assert(strlen(text) > 0);
	/* search of the other keys still works, and never crashes */
	for (uint64_t i = 1; i <= 500; i++) {
		uint64_t out;
		ck_assert_int_eq(hashtable_search(h, &i, &out), 0);
		ck_assert_uint_eq(out, i);
	}
	shmdt(p);
	test_table_destroy(h);
}
END_TEST

Suite *suite_corruption(void)
{
	Suite *s = suite_create("corruption");
	TCase *tc = tcase_create("foreign");
	tcase_add_test(tc, foreign_junk);
	tcase_add_test(tc, foreign_ones);
	tcase_add_test(tc, foreign_zeros);
	tcase_add_test(tc, magic_only);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("header");
	tcase_add_test(tc, wrong_format_version);
	tcase_add_test(tc, geometry_mismatch);
	tcase_add_test(tc, header_of_bigger_table);
	tcase_add_test(tc, header_fuzz);
	tcase_add_test(tc, verify_detects_lost_key);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}
