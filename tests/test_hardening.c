/* Hardening: the writer side distrusts the segment.  Each test damages a
 * table the way a stray write or a dead process could, through a read-write
 * shmat of the handle's shmid, and asserts that the library reports it with
 * a clear code, changes nothing it cannot trust, never hangs and never
 * crashes.
 *
 * The header layout is private to hashtable.c; the mirrors below copy the
 * parts these tests write (the header's first part, up to `slot_layout`, and
 * struct journal) and every test checks its mirror against the handle's
 * stats first, so a layout change fails loudly instead of damaging the
 * wrong bytes. */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* hashtable.c's struct shm_header, up to `slot_layout` */
struct seg_prefix {
	uint64_t magic;
	uint32_t format, flags;
	uint32_t mutex_bytes, libc;
	uint64_t creator_start;
	uint64_t segment_bytes;
	uint32_t key_size, value_size;
	uint32_t slot_size, value_offset;
	uint32_t slots_per_bucket, bucket_bytes;
	uint64_t nbuckets, nstripes;
	uint64_t off_empty, off_deleted, off_jkey, off_jvalue;
	uint64_t off_stripes, off_overflow, off_buckets;
	uint64_t seed, max_count;
	double max_load;
	int64_t created;
	int32_t creator_pid;
	uint32_t slot_layout; /* 0 interleaved, 1 split */
};

/* hashtable.c's struct journal */
struct journal_mirror {
	uint32_t op;
	uint16_t bit, reserved;
	uint64_t slot, from_slot, home, step, first, probe, progress;
	uint64_t count_after, collisions_after, max_probe_after;
};

enum { J_IDLE, J_INSERT, J_OVERWRITE, J_DELETE, J_MOVE };

/* A table's segment seen through a read-write mapping of its own. */
struct seg {
	struct hashtable *h;
	struct hashtable_stats st;
	unsigned char *base;
	struct seg_prefix *hd;
	struct journal_mirror *j;
	uint32_t *moves;     /* the word on the line before the journal's */
	uint32_t *stripes;
	uint16_t *overflow;
	unsigned char *buckets;
	unsigned char *root;      /* the root segment: the writer lock, creation mark */
	struct seg_prefix *rhd;
};

/* A filled 8-byte-key table: keys 1..n, value of key k is k * 7. */
static struct hashtable *filled_table(uint64_t entries, uint64_t n)
{
	struct hashtable *h = test_table_simple(8, 8, entries, 0.8);
	for (uint64_t k = 1; k <= n; k++) {
		uint64_t v = k * 7;
		ck_assert_int_eq(hashtable_update(h, &k, &v), 0);
	}
	return h;
}

/* Finds the journal by the three counters it ends with, which equal the
 * header's after any operation (the header keeps `deleted` between them,
 * so with collisions > 0 the run is the journal's alone). */
static struct journal_mirror *find_journal(struct seg *s)
{
	uint64_t want[3] = {s->st.count, s->st.collisions, s->st.max_probe};
	ck_assert_msg(s->st.collisions > 0, "the test table needs collisions to find its journal");
	long at = -1;
	for (uint64_t off = 0; off + sizeof want <= s->hd->off_empty; off += 8)
		if (memcmp(s->base + off, want, sizeof want) == 0) {
			ck_assert_msg(at < 0, "journal found twice: the layout mirror is out of date");
			at = (long)off;
		}
	ck_assert_msg(at >= 0, "journal not found: the layout mirror is out of date");
	long base = at - (long)offsetof(struct journal_mirror, count_after);
	ck_assert_msg(base % 64 == 0, "journal not on a line: the layout mirror is out of date");
	return (struct journal_mirror *)(void *)(s->base + base);
}

static void seg_open(struct seg *s, struct hashtable *h)
{
	memset(s, 0, sizeof *s);
	s->h = h;
	ck_assert_int_eq(hashtable_stats(h, &s->st), 0);
	s->base = shmat(test_data_shmid(h), NULL, 0); /* the generation's segment */
	ck_assert_ptr_ne(s->base, (void *)-1);
	s->hd = (struct seg_prefix *)(void *)s->base;
	ck_assert_msg(s->hd->key_size == s->st.key_size && s->hd->value_size == s->st.value_size &&
	              s->hd->nbuckets == s->st.buckets && s->hd->max_count == s->st.max_count &&
	              s->hd->slots_per_bucket == s->st.slots_per_bucket &&
	              s->hd->segment_bytes == s->st.segment_bytes,
	              "the header mirror in this file is out of date with hashtable.c");
	s->j = find_journal(s);
	s->moves = (uint32_t *)(void *)((unsigned char *)s->j - 64);
	s->stripes = (uint32_t *)(void *)(s->base + s->hd->off_stripes);
	s->overflow = (uint16_t *)(void *)(s->base + s->hd->off_overflow);
	s->buckets = s->base + s->hd->off_buckets;
	s->root = shmat(hashtable_shmid(h), NULL, 0);
	ck_assert_ptr_ne(s->root, (void *)-1);
	s->rhd = (struct seg_prefix *)(void *)s->root;
}

static void seg_close(struct seg *s)
{
	shmdt(s->base);
	shmdt(s->root);
}

/* The bytes a writer must leave alone when it refuses: stripes, overflow
 * words and buckets (the header's lock and holder record change on every
 * attempt to write). */
static unsigned char *table_copy(const struct seg *s)
{
	size_t n = s->hd->segment_bytes - s->hd->off_stripes;
	unsigned char *c = malloc(n);
	ck_assert_ptr_nonnull(c);
	memcpy(c, s->base + s->hd->off_stripes, n);
	return c;
}

static void assert_table_unchanged(const struct seg *s, const unsigned char *copy,
                                   const char *what)
{
	size_t n = s->hd->segment_bytes - s->hd->off_stripes;
	ck_assert_msg(memcmp(copy, s->base + s->hd->off_stripes, n) == 0,
	              "%s: the table's buckets, counts or versions changed", what);
}

static void assert_keys_readable(struct hashtable *h, uint64_t n)
{
	for (uint64_t k = 1; k <= n; k++) {
		uint64_t v = 0;
		int rc = hashtable_search(h, &k, &v);
		ck_assert_msg(rc == 0 && v == k * 7, "key %llu: search %d (%s), value %llu",
		              (unsigned long long)k, rc, hashtable_last_error(),
		              (unsigned long long)v);
	}
}

/* Runs fn(h) in a child and returns its exit status, or -1 if it had not
 * finished after `seconds` (the child is then killed). */
static int in_child_within(struct hashtable *h, int (*fn)(struct hashtable *), int seconds)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fn(h));
	for (int i = 0; i < seconds * 100; i++) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

#define NKEYS 700u

/* ---- 3: odd versions with no live writer ---------------------------------- */

static int search_reports_dead_writer(struct hashtable *h)
{
	uint64_t k = 5, v;
	return hashtable_search(h, &k, &v) == HASHTABLE_EDEADWRITER ? 0 : 1;
}

static int miss_reports_dead_writer(struct hashtable *h)
{
	uint64_t k = NKEYS + 1000, v;
	return hashtable_search(h, &k, &v) == HASHTABLE_EDEADWRITER ? 0 : 1;
}

/* A version left odd while nobody holds the lock: the process that wrote
 * last (alive, but not writing) must not be waited for, in itself or in
 * another process. */
START_TEST(odd_version_without_writer_is_reported)
{
	struct hashtable *h = filled_table(1000, NKEYS);
	struct seg s;
	seg_open(&s, h);
	for (uint64_t i = 0; i < s.hd->nstripes; i++)
		s.stripes[i] |= 1;
	ck_assert_int_eq(in_child_within(h, search_reports_dead_writer, 5), 0);
	ck_assert_int_eq(search_reports_dead_writer(h), 0);
	/* the lock holder repairs instead of waiting for itself */
	ck_assert_int_eq(hashtable_verify(h), 0);
	for (uint64_t i = 0; i < s.hd->nstripes; i++)
		ck_assert_uint_eq(s.stripes[i] & 1, 0);
	assert_keys_readable(h, NKEYS);
	seg_close(&s);
	test_table_destroy(h);
}
END_TEST

/* An odd `moves` left behind: misses must not wait for it; repair clears it. */
START_TEST(odd_moves_without_writer_is_reported)
{
	struct hashtable *h = filled_table(1000, NKEYS);
	struct seg s;
	seg_open(&s, h);
	ck_assert_uint_eq(*s.moves & 1, 0);
	*s.moves |= 1;
	ck_assert_int_eq(in_child_within(h, miss_reports_dead_writer, 5), 0);
	ck_assert_int_eq(miss_reports_dead_writer(h), 0);
	ck_assert_int_eq(hashtable_recover(h), 1);
	ck_assert_uint_eq(*s.moves & 1, 0);
	uint64_t k = NKEYS + 1000, v;
	ck_assert_int_eq(hashtable_search(h, &k, &v), -1);
	ck_assert_int_eq(hashtable_verify(h), 0);
	seg_close(&s);
	test_table_destroy(h);
}
END_TEST

/* A read-write verify must not wait on a version it finds odd while it
 * holds the lock itself. */
static int verify_rw(struct hashtable *h) { return hashtable_verify(h) == 0 ? 0 : 1; }

START_TEST(verify_repairs_odd_version)
{
	struct hashtable *h = filled_table(1000, NKEYS);
	struct seg s;
	seg_open(&s, h);
	s.stripes[0] |= 1;
	ck_assert_int_eq(in_child_within(h, verify_rw, 5), 0);
	ck_assert_uint_eq(s.stripes[0] & 1, 0);
	assert_keys_readable(h, NKEYS);
	seg_close(&s);
	test_table_destroy(h);
}
END_TEST

/* ---- 1: an impossible journal ------------------------------------------------ */

struct bad_field {
	const char *name;   /* as the last-error text must name it */
	size_t offset;      /* in struct journal_mirror */
	int width;
	uint64_t (*value)(const struct seg *s);
	uint32_t op;        /* the operation the journal claims */
};

static uint64_t nslots_plus(const struct seg *s) { return s->st.slots + 3; }
static uint64_t nbuckets_exact(const struct seg *s) { return s->st.buckets; }
static uint64_t zero(const struct seg *s) { (void)s; return 0; }
static uint64_t huge(const struct seg *s) { (void)s; return UINT64_C(1) << 62; }
static uint64_t unknown_op(const struct seg *s) { (void)s; return 77; }
static uint64_t past_limit(const struct seg *s) { return s->st.max_count + 1; }
static uint64_t progress_past(const struct seg *s)
{
	return ((s->j->probe + 5) << 16) | 3; /* index probe + 4: past the path */
}

#define FIELD(f, w) #f, offsetof(struct journal_mirror, f), w

static const struct bad_field bad_fields[] = {
	{FIELD(op, 4), unknown_op, 77},
	{FIELD(slot, 8), nslots_plus, J_INSERT},
	{FIELD(slot, 8), nslots_plus, J_OVERWRITE},
	{FIELD(from_slot, 8), nslots_plus, J_MOVE},
	{FIELD(home, 8), nbuckets_exact, J_INSERT},
	{FIELD(step, 8), zero, J_INSERT},
	{FIELD(step, 8), nbuckets_exact, J_DELETE},
	{FIELD(probe, 8), huge, J_INSERT},
	{FIELD(first, 8), huge, J_MOVE},
	{FIELD(progress, 8), progress_past, J_INSERT},
	{FIELD(count_after, 8), past_limit, J_INSERT},
};

static void check_bad_journal(const struct bad_field *f)
{
	struct hashtable *h = filled_table(1000, NKEYS);
	struct seg s;
	seg_open(&s, h);
	/* the journal still holds the last insert, complete: make it claim
	 * op again, with one field impossible */
	s.j->op = f->op;
	uint64_t bad = f->value(&s);
	if (f->width != 4 || f->offset != offsetof(struct journal_mirror, op))
		memcpy((unsigned char *)s.j + f->offset, &bad, (size_t)f->width);
	unsigned char *copy = table_copy(&s);

	uint64_t k = NKEYS + 1, v = 1;
	for (int attempt = 0; attempt < 2; attempt++) { /* refused until repaired */
		int rc = hashtable_update(h, &k, &v);
		const char *text = hashtable_last_error();
		char value[32];
		snprintf(value, sizeof value, "%llu", (unsigned long long)bad);
		ck_assert_msg(rc == HASHTABLE_ECORRUPT, "journal %s = %s (op %u): update returned %d (%s)",
		              f->name, value, f->op, rc, text);
		ck_assert_msg(strstr(text, f->name) && strstr(text, value),
		              "journal %s = %s: the text does not name the field and value: %s",
		              f->name, value, text);
		ck_assert_int_eq(hashtable_delete(h, &(uint64_t){1}), HASHTABLE_ECORRUPT);
		assert_table_unchanged(&s, copy, f->name);
	}
	assert_keys_readable(h, NKEYS);
	ck_assert_int_eq(hashtable_verify(h), HASHTABLE_ECORRUPT);

	/* repair discards the journal; the table it leaves is whole */
	ck_assert_int_eq(hashtable_recover(h), 1);
	ck_assert_uint_eq(s.j->op, J_IDLE);
	ck_assert_int_eq(hashtable_verify(h), 0);
	ck_assert_int_eq(hashtable_update(h, &k, &v), 0);
	assert_keys_readable(h, NKEYS);
	free(copy);
	seg_close(&s);
	test_table_destroy(h);
}

START_TEST(impossible_journal_is_refused)
{
	check_bad_journal(&bad_fields[_i]);
}
END_TEST

/* A valid journal left unfinished (as a dead writer leaves it) is still
 * redone by the next writer: validation must not refuse real recoveries. */
START_TEST(valid_journal_is_redone)
{
	struct hashtable *h = filled_table(1000, NKEYS);
	struct seg s;
	seg_open(&s, h);
	s.j->op = J_INSERT; /* the last insert again: idempotent */
	uint64_t k = NKEYS + 1, v = 1;
	ck_assert_int_eq(hashtable_update(h, &k, &v), 0);
	ck_assert_uint_eq(s.j->op, J_IDLE);
	ck_assert_int_eq(hashtable_verify(h), 0);
	assert_keys_readable(h, NKEYS);
	seg_close(&s);
	test_table_destroy(h);
}
END_TEST

/* ---- 2: an insert that finds no free slot ----------------------------------- */

/* Every slot holds a key (distinct from the table's), the header's count
 * still says the table is far from full: the insert must change nothing. */
START_TEST(insert_without_free_slot)
{
	struct hashtable *h = filled_table(1000, NKEYS);
	struct seg s;
	seg_open(&s, h);
	for (uint64_t i = 0; i < s.st.slots; i++) {
		uint64_t *key = (uint64_t *)(void *)(s.buckets + i * s.hd->slot_size);
		if (*key == 0)
			*key = UINT64_C(0x7700000000000000) + i;
	}
	unsigned char *copy = table_copy(&s);
	uint64_t k = NKEYS + 1, v = 1;
	int rc = hashtable_update(h, &k, &v);
	ck_assert_msg(rc == HASHTABLE_ECORRUPT, "update returned %d (%s)", rc,
	              hashtable_last_error());
	ck_assert_msg(strstr(hashtable_last_error(), "free slot") != NULL, "text: %s",
	              hashtable_last_error());
	assert_table_unchanged(&s, copy, "insert with no free slot");
	assert_keys_readable(h, NKEYS);
	/* overwrites of existing keys still work */
	uint64_t one = 1, seven = 7;
	ck_assert_int_eq(hashtable_update(h, &one, &seven), 1);
	free(copy);
	seg_close(&s);
	test_table_destroy(h);
}
END_TEST

/* ---- 6: header fields checked on attach --------------------------------------- */

/* Opening the table must fail with EPROTO, the text naming `field`. */
static void assert_open_refused(key_t key, const char *field)
{
	errno = 0;
	struct hashtable *h = hashtable_open_key(key, HASHTABLE_RDONLY);
	if (h)
		hashtable_close(h);
	ck_assert_msg(!h && errno == EPROTO, "damaged %s: open %s, errno %d", field,
	              h ? "succeeded" : "failed", errno);
	const char *text = hashtable_last_error();
	ck_assert_msg(strstr(text, field) != NULL, "damaged %s: the text does not name it: %s",
	              field, text);
}

#define HDR_FIELD(f) #f, offsetof(struct seg_prefix, f), sizeof(((struct seg_prefix *)0)->f)

static const struct derived_field {
	const char *name;
	size_t offset, width;
	int64_t delta; /* added to the stored value */
} derived_fields[] = {
	{HDR_FIELD(slot_size), 8},
	{HDR_FIELD(value_offset), 8},
	{HDR_FIELD(slots_per_bucket), 1},
	{HDR_FIELD(bucket_bytes), 16},
	{HDR_FIELD(nbuckets), -2},
	{HDR_FIELD(nstripes), 1},
	{HDR_FIELD(off_empty), 8},
	{HDR_FIELD(off_deleted), 8},
	{HDR_FIELD(off_jkey), 8},
	{HDR_FIELD(off_jvalue), 8},
	{HDR_FIELD(off_stripes), 64},
	{HDR_FIELD(off_overflow), 2},
	{HDR_FIELD(off_buckets), 64},
	{HDR_FIELD(max_count), 1},
	{HDR_FIELD(flags), 4},
	{HDR_FIELD(mutex_bytes), 8},
	{HDR_FIELD(libc), 7},
};

/* Opening the table of s is refused while field f is off by its delta, and
 * allowed again once it is put back: returns that read-only handle. */
static struct hashtable *derived_field_checked(struct seg *s, const struct derived_field *f)
{
	unsigned char *at = s->base + f->offset;
	uint64_t orig = 0, bad;
	memcpy(&orig, at, f->width);
	bad = orig + (uint64_t)f->delta;
	memcpy(at, &bad, f->width);
	assert_open_refused(s->st.ipc_key, f->name);
	memcpy(at, &orig, f->width);
	struct hashtable *again = hashtable_open_key(s->st.ipc_key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(again);
	return again;
}

START_TEST(derived_header_field_is_checked)
{
	struct hashtable *h = filled_table(1000, NKEYS);
	struct seg s;
	seg_open(&s, h);
	struct hashtable *again = derived_field_checked(&s, &derived_fields[_i]);
	assert_keys_readable(again, NKEYS);
	hashtable_close(again);
	seg_close(&s);
	test_table_destroy(h);
}
END_TEST

/* A 16-byte-key, 64-byte-value table (split slots): key i is {i, ~i},
 * its value 64 bytes of (unsigned char)(i * 3). */
static struct hashtable *wide_table(uint64_t n)
{
	struct hashtable *h = test_table_simple(16, 64, 1000, 0.8);
	for (uint64_t i = 1; i <= n; i++) {
		uint64_t k[2] = {i, ~i};
		unsigned char v[64];
		memset(v, (int)(i * 3), sizeof v);
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
	return h;
}

static void assert_wide_readable(struct hashtable *h, uint64_t n)
{
	for (uint64_t i = 1; i <= n; i++) {
		uint64_t k[2] = {i, ~i};
		unsigned char v[64], want[64];
		memset(want, (int)(i * 3), sizeof want);
		ck_assert_int_eq(hashtable_search(h, k, v), 0);
		ck_assert_int_eq(memcmp(v, want, sizeof v), 0);
	}
}

/* The slot layout decides where readers look for keys and values: a value
 * the widths cannot have, or the other layout, is refused by name, and
 * the table reads again once the field is restored. */
START_TEST(slot_layout_is_checked)
{
	struct hashtable *narrow = filled_table(1000, NKEYS), *wide = wide_table(500);
	struct seg s, w;
	seg_open(&s, narrow);
	seg_open(&w, wide);
	ck_assert_uint_eq(s.hd->slot_layout, 0);
	ck_assert_uint_eq(w.hd->slot_layout, 1);
	ck_assert_uint_eq(w.hd->slot_size, 16); /* the keys' stride alone */
	const uint32_t bad_narrow[] = {1, 2, UINT32_MAX}, bad_wide[] = {0, 2, 0x100};
	for (size_t i = 0; i < sizeof bad_narrow / sizeof bad_narrow[0]; i++) {
		s.hd->slot_layout = bad_narrow[i];
		assert_open_refused(s.st.ipc_key, "slot_layout");
	}
	for (size_t i = 0; i < sizeof bad_wide / sizeof bad_wide[0]; i++) {
		w.hd->slot_layout = bad_wide[i];
		assert_open_refused(w.st.ipc_key, "slot_layout");
	}
	s.hd->slot_layout = 0;
	w.hd->slot_layout = 1;
	struct hashtable *again = hashtable_open_key(s.st.ipc_key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(again);
	assert_keys_readable(again, NKEYS);
	hashtable_close(again);
	again = hashtable_open_key(w.st.ipc_key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(again);
	assert_wide_readable(again, 500);
	hashtable_close(again);
	seg_close(&s);
	seg_close(&w);
	test_table_destroy(narrow);
	test_table_destroy(wide);
}
END_TEST

/* The derived fields of a split table are checked as an interleaved one's. */
START_TEST(wide_derived_header_field_is_checked)
{
	struct hashtable *h = wide_table(500);
	struct seg s;
	seg_open(&s, h);
	struct hashtable *again = derived_field_checked(&s, &derived_fields[_i]);
	assert_wide_readable(again, 500);
	hashtable_close(again);
	seg_close(&s);
	test_table_destroy(h);
}
END_TEST

/* A load limit that is not one: stats used to read NaN. */
START_TEST(max_load_is_checked)
{
	struct hashtable *h = filled_table(1000, NKEYS);
	struct seg s;
	seg_open(&s, h);
	double orig = s.hd->max_load;
	const double bad[] = {__builtin_nan(""), 0, -0.5, 1.5, orig / 2};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		s.hd->max_load = bad[i];
		assert_open_refused(s.st.ipc_key, "max_load");
	}
	s.hd->max_load = orig;
	struct hashtable *again = hashtable_open_key(s.st.ipc_key, HASHTABLE_RDONLY);
	ck_assert_ptr_nonnull(again);
	hashtable_close(again);
	seg_close(&s);
	test_table_destroy(h);
}
END_TEST

/* A table made by a program with another C library's mutex names both. */
START_TEST(lock_abi_is_checked)
{
	struct hashtable *h = filled_table(1000, NKEYS);
	struct seg s;
	seg_open(&s, h);
	ck_assert_uint_eq(s.hd->mutex_bytes, sizeof(pthread_mutex_t));
	uint32_t orig = s.hd->libc;
	s.hd->libc = orig == 1 ? 2 : 1;
	assert_open_refused(s.st.ipc_key, "pthread_mutex_t");
	const char *text = hashtable_last_error();
	ck_assert_msg(strstr(text, "glibc") && strstr(text, "musl"), "text: %s", text);
	s.hd->libc = orig;
	seg_close(&s);
	test_table_destroy(h);
}
END_TEST

/* ---- 5: damaged writer lock bytes ----------------------------------------------- */

#ifdef __GLIBC__
/* The writer lock, found as the one line-aligned glibc mutex that is
 * unlocked and of the kind a fresh robust process-shared mutex has. */
static pthread_mutex_t *find_lock(const struct seg *s)
{
	pthread_mutexattr_t a;
	pthread_mutex_t fresh;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	ck_assert_int_eq(pthread_mutex_init(&fresh, &a), 0);
	pthread_mutexattr_destroy(&a);
	pthread_mutex_t *found = NULL;
	for (uint64_t off = 64; off + sizeof fresh <= s->rhd->off_empty; off += 64) {
		pthread_mutex_t *m = (pthread_mutex_t *)(void *)(s->root + off); /* in the root */
		if (m->__data.__kind == fresh.__data.__kind && m->__data.__lock == 0) {
			ck_assert_msg(!found, "two candidate writer locks in the header");
			found = m;
		}
	}
	ck_assert_msg(found, "no writer lock found in the header");
	return found;
}

/* A thread id that names no thread: a reaped child's. */
static pid_t dead_tid(void)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

static int update_reports_damaged_lock(struct hashtable *h)
{
	uint64_t k = NKEYS + 1, v = 1;
	int rc = hashtable_update(h, &k, &v);
	if (rc != HASHTABLE_ECORRUPT || !strstr(hashtable_last_error(), "lock")) {
		fprintf(stderr, "update: %d (%s)\n", rc, hashtable_last_error());
		return 1;
	}
	return 0;
}

static int verify_reports_damaged_lock(struct hashtable *h)
{
	int rc = hashtable_verify(h);
	if (rc != HASHTABLE_ECORRUPT || !strstr(hashtable_last_error(), "lock")) {
		fprintf(stderr, "verify: %d (%s)\n", rc, hashtable_last_error());
		return 1;
	}
	return 0;
}

/* After the damage is reported, repair re-initialises the lock and the
 * table works again. */
static void assert_lock_repaired(struct hashtable *h)
{
	int rc = hashtable_recover(h);
	ck_assert_msg(rc == 1, "recover: %d (%s)", rc, hashtable_last_error());
	uint64_t k = NKEYS + 1, v = 1;
	ck_assert_int_eq(hashtable_update(h, &k, &v), 0);
	ck_assert_int_eq(hashtable_verify(h), 0);
	assert_keys_readable(h, NKEYS);
}

/* The lock word names a thread that does not exist (the kernel never
 * releases such a lock): writers used to wait for ever. */
START_TEST(lock_held_by_no_thread)
{
	struct hashtable *h = filled_table(1000, NKEYS);
	struct seg s;
	seg_open(&s, h);
	pthread_mutex_t *m = find_lock(&s);
	m->__data.__lock = dead_tid();
	m->__data.__owner = m->__data.__lock;
	ck_assert_int_eq(in_child_within(h, update_reports_damaged_lock, 10), 0);
	assert_keys_readable(h, NKEYS);
	assert_lock_repaired(h);
	seg_close(&s);
	test_table_destroy(h);
}
END_TEST

/* A robust mutex turned priority-inheriting, held by a thread that does
 * not exist: glibc used to abort (`e != ESRCH || !robust`). */
START_TEST(lock_kind_damaged_pi)
{
	struct hashtable *h = filled_table(1000, NKEYS);
	struct seg s;
	seg_open(&s, h);
	pthread_mutex_t *m = find_lock(&s);
	m->__data.__kind |= PTHREAD_PRIO_INHERIT << 5; /* glibc's PI bit, 32 */
	m->__data.__lock = dead_tid();
	ck_assert_int_eq(in_child_within(h, update_reports_damaged_lock, 10), 0);
	assert_lock_repaired(h);
	seg_close(&s);
	test_table_destroy(h);
}
END_TEST

/* A kind no mutex has: verify used to return -EINVAL. */
START_TEST(lock_kind_garbage)
{
	struct hashtable *h = filled_table(1000, NKEYS);
	struct seg s;
	seg_open(&s, h);
	pthread_mutex_t *m = find_lock(&s);
	m->__data.__kind = 0x7777;
	ck_assert_int_eq(in_child_within(h, verify_reports_damaged_lock, 10), 0);
	assert_lock_repaired(h);
	seg_close(&s);
	test_table_destroy(h);
}
END_TEST

/* Repair must not re-initialise a lock a live thread holds, even one that
 * did not record itself. */
START_TEST(repair_spares_live_holder)
{
	struct hashtable *h = filled_table(1000, NKEYS);
	struct seg s;
	seg_open(&s, h);
	pthread_mutex_t *m = find_lock(&s);
	int ready[2];
	ck_assert_int_eq(pipe(ready), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		pthread_mutex_lock(m);
		(void)!write(ready[1], "x", 1);
		sleep(20);
		_exit(0);
	}
	char c;
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	int rc = hashtable_recover(h);
	int lock_word = m->__data.__lock;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ck_assert_msg(rc == HASHTABLE_ECORRUPT && strstr(hashtable_last_error(), "live"),
	              "recover: %d (%s)", rc, hashtable_last_error());
	ck_assert_int_eq(lock_word & 0x3fffffff, pid); /* still the child's */
	/* the child died holding it: the next writer recovers as usual */
	uint64_t k = NKEYS + 1, v = 1;
	ck_assert_int_eq(hashtable_update(h, &k, &v), 0);
	ck_assert_int_eq(hashtable_verify(h), 0);
	close(ready[0]);
	close(ready[1]);
	seg_close(&s);
	test_table_destroy(h);
}
END_TEST
#endif

/* ---- 4: half-created segments ------------------------------------------------ */

#define MAGIC_CREATING UINT64_C(0x3f564b4d48537f00) /* hashtable.c's mark */

/* A process's start time (clock ticks since boot), from /proc. */
static uint64_t start_time(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	unsigned long long st = 0;
	ck_assert(p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
	                             "%*d %*d %*d %*d %llu", &st) == 1);
	return st;
}

/* A child that creates a copy of table h at a fresh key the way a creator
 * does: marks it first (its pid and start time), then, after `finish_ms`
 * (or never, if negative: it exits instead), publishes the real magic.
 * Returns the child's pid; *key and *shmid name the copy, which is
 * registered for removal. */
static pid_t fake_creator(struct hashtable *h, int finish_ms, key_t *key, int *shmid)
{
	struct seg s;
	seg_open(&s, h);
	size_t size = s.rhd->segment_bytes; /* a copy of the root: the same generations */
	*key = test_unique_key();
	*shmid = shmget(*key, size, IPC_CREAT | IPC_EXCL | 0600);
	ck_assert_int_ge(*shmid, 0);
	test_register_shmid(*shmid);
	int ready[2];
	ck_assert_int_eq(pipe(ready), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		unsigned char *copy = shmat(*shmid, NULL, 0);
		struct seg_prefix *hd = (struct seg_prefix *)(void *)copy;
		hd->creator_pid = getpid();
		hd->creator_start = start_time(getpid());
		__atomic_store_n(&hd->magic, MAGIC_CREATING, __ATOMIC_RELEASE);
		memcpy(copy + 8, s.root + 8, size - 8);
		hd->creator_pid = getpid();
		hd->creator_start = start_time(getpid());
		(void)!write(ready[1], "x", 1);
		if (finish_ms < 0)
			_exit(0);
		struct timespec ts = {finish_ms / 1000, (finish_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		__atomic_store_n(&hd->magic, s.rhd->magic, __ATOMIC_RELEASE);
		_exit(0);
	}
	char c;
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	close(ready[0]);
	close(ready[1]);
	seg_close(&s);
	return pid;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Opens wait for a live creator however long it takes (they gave up after
 * 2 s, advising `ipcrm`, which destroyed a healthy table). */
START_TEST(open_waits_for_live_creator)
{
	struct hashtable *h = filled_table(1000, NKEYS);
	key_t key;
	int shmid;
	double t0 = now_s();
	pid_t pid = fake_creator(h, 2600, &key, &shmid);
	ck_assert_int_eq(hashtable_unfinished_key(key), 0); /* alive: not unfinished */
	struct hashtable *copy = hashtable_open_key(key, HASHTABLE_RDONLY);
	double waited = now_s() - t0;
	ck_assert_msg(copy != NULL, "open during creation: errno %d: %s", errno,
	              hashtable_last_error());
	ck_assert_msg(waited >= 2.5, "open returned after %.2f s, before the creator finished",
	              waited);
	assert_keys_readable(copy, NKEYS);
	hashtable_close(copy);
	waitpid(pid, NULL, 0);
	shmctl(shmid, IPC_RMID, NULL);
	test_table_destroy(h);
}
END_TEST

/* Runs a tool from the build directory; returns its exit status and
 * appends its output to out. */
static int run_tool(const char *args, char *out, size_t outsz)
{
	const char *b = getenv("SHMKV_BUILD");
	char cmd[512];
	snprintf(cmd, sizeof cmd, "%s/shmkv %s 2>&1", b ? b : "build", args);
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	size_t n = fread(out, 1, outsz - 1, f);
	out[n] = 0;
	int status = pclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A creator killed mid-initialisation leaves an unfinished table: named as
 * such, listed by `shmkv ls`, removable by `shmkv rm`. */
START_TEST(unfinished_table_is_named_and_removable)
{
	struct hashtable *h = filled_table(1000, NKEYS);
	key_t key;
	int shmid;
	pid_t pid = fake_creator(h, -1, &key, &shmid);
	waitpid(pid, NULL, 0);
	errno = 0;
	struct hashtable *copy = hashtable_open_key(key, HASHTABLE_RDONLY);
	ck_assert_ptr_null(copy);
	ck_assert_int_eq(errno, EPROTO);
	const char *text = hashtable_last_error();
	ck_assert_msg(strstr(text, "unfinished") && strstr(text, "shmkv rm"), "text: %s", text);
	struct hashtable_config cfg = {.ipc_key = key, .key_size = 8, .value_size = 8,
	                               .entries = 1000};
	ck_assert_int_eq(hashtable_create_config(&cfg, &copy), HASHTABLE_EUNFINISHED);
	ck_assert_int_eq(hashtable_unfinished_key(key), 1);
	ck_assert_int_eq(hashtable_unfinished_key(test_unique_key()), -ENOENT);

	char out[8192], arg[64];
	ck_assert_int_eq(run_tool("ls", out, sizeof out), 0);
	char row[32];
	snprintf(row, sizeof row, "0x%08x", (unsigned)key);
	char *line = strstr(out, row);
	ck_assert_msg(line != NULL, "`shmkv ls` does not list the unfinished table:\n%s", out);
	char *eol = strchr(line, '\n');
	if (eol)
		*eol = 0;
	ck_assert_msg(strstr(line, "unfinished") != NULL, "`shmkv ls` row: %s", line);
	snprintf(arg, sizeof arg, "rm 0x%08x", (unsigned)key);
	ck_assert_int_eq(run_tool(arg, out, sizeof out), 0);
	ck_assert_int_lt(shmget(key, 0, 0), 0);
	ck_assert_int_eq(errno, ENOENT);
	/* the copy named h's data segment, which its creator did not make:
	 * removing the unfinished copy left it alone */
	struct shmid_ds ds;
	ck_assert_int_eq(shmctl(test_data_shmid(h), IPC_STAT, &ds), 0);
	ck_assert(!(ds.shm_perm.mode & SHM_DEST));
	test_table_destroy(h);
}
END_TEST

/* ---- 7: the load limit ------------------------------------------------------- */

/* Above 0.98 a full table's misses read every bucket: refused, the text
 * naming the bound; 0.98 itself is accepted, as a fraction or a percent. */
START_TEST(load_limit_is_capped)
{
	const double refused[] = {1.0, 100, 0.99, 99, 0.985};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		struct hashtable_config cfg = {.ipc_key = test_unique_key(), .key_size = 8,
		                               .value_size = 8, .entries = 1000,
		                               .max_load = refused[i]};
		struct hashtable *h = NULL;
		int rc = hashtable_create_config(&cfg, &h);
		if (h) {
			test_register_shmid(hashtable_shmid(h));
			test_table_destroy(h);
		}
		ck_assert_msg(rc == -EINVAL, "load %g: %d", refused[i], rc);
		ck_assert_msg(strstr(hashtable_last_error(), "0.98") != NULL, "text: %s",
		              hashtable_last_error());
	}
	char *path = test_temp_path();
	errno = 0;
	ck_assert_ptr_null(hashtable_create(path, 100000, 1.0f, 8, 8, NULL, NULL));
	ck_assert_int_eq(errno, EINVAL);
	const float accepted[] = {0.98f, 98.0f};
	for (size_t i = 0; i < 2; i++) {
		struct hashtable *h = hashtable_create(path, 100000, accepted[i], 8, 8, NULL, NULL);
		ck_assert_msg(h != NULL, "load %g: %s", (double)accepted[i], hashtable_last_error());
		test_register_shmid(hashtable_shmid(h));
		struct hashtable_stats st;
		ck_assert_int_eq(hashtable_stats(h, &st), 0);
		ck_assert_double_eq_tol(st.max_load, 0.98, 1e-6);
		test_table_destroy(h);
	}
	free(path);
}
END_TEST

#ifdef __GLIBC__
/* A holder record naming a live process that does not hold the lock (a
 * damaged segment: found by the corruption fuzzer's `holder` class), with a
 * version left odd: readers must not wait for that process for ever, since
 * the lock's word says nobody is writing.  HASHTABLE_EDEADWRITER, then
 * recover makes the version even. */
START_TEST(live_holder_record_without_lock_is_not_waited_for)
{
	struct hashtable *h = filled_table(1000, NKEYS);
	struct seg s;
	seg_open(&s, h);
	pthread_mutex_t *m = find_lock(&s);
	unsigned char *record = (unsigned char *)m + 64; /* the lock's own line */
	pid_t sleeper = fork();
	ck_assert_int_ge(sleeper, 0);
	if (sleeper == 0) {
		sleep(30);
		_exit(0);
	}
	int32_t pid = sleeper, tid = sleeper;
	uint64_t start = start_time(sleeper);
	memcpy(record, &pid, 4);
	memcpy(record + 4, &tid, 4);
	memcpy(record + 8, &start, 8);
	ck_assert_int_eq(m->__data.__lock, 0);
	for (uint64_t i = 0; i < s.hd->nstripes; i++)
		s.stripes[i] |= 1;
	int child = in_child_within(h, search_reports_dead_writer, 5);
	int self = search_reports_dead_writer(h);
	kill(sleeper, SIGKILL);
	waitpid(sleeper, NULL, 0);
	ck_assert_msg(child == 0, "a search in another process: %d (-1: still waiting after 5 s)",
	              child);
	ck_assert_int_eq(self, 0);
	ck_assert_int_eq(hashtable_recover(h), 1);
	assert_keys_readable(h, NKEYS);
	seg_close(&s);
	test_table_destroy(h);
}
END_TEST
#endif

Suite *suite_hardening(void)
{
	Suite *s = suite_create("hardening");
	TCase *tc = tcase_create("seqlock");
	tcase_add_test(tc, odd_version_without_writer_is_reported);
	tcase_add_test(tc, odd_moves_without_writer_is_reported);
	tcase_add_test(tc, verify_repairs_odd_version);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);

	tc = tcase_create("journal");
	tcase_add_loop_test(tc, impossible_journal_is_refused, 0,
	                    (int)(sizeof bad_fields / sizeof bad_fields[0]));
	tcase_add_test(tc, valid_journal_is_redone);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);

	tc = tcase_create("header");
	tcase_add_loop_test(tc, derived_header_field_is_checked, 0,
	                    (int)(sizeof derived_fields / sizeof derived_fields[0]));
	tcase_add_loop_test(tc, wide_derived_header_field_is_checked, 0,
	                    (int)(sizeof derived_fields / sizeof derived_fields[0]));
	tcase_add_test(tc, slot_layout_is_checked);
	tcase_add_test(tc, max_load_is_checked);
	tcase_add_test(tc, lock_abi_is_checked);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);

#ifdef __GLIBC__
	tc = tcase_create("lock");
	tcase_add_test(tc, lock_held_by_no_thread);
	tcase_add_test(tc, lock_kind_damaged_pi);
	tcase_add_test(tc, lock_kind_garbage);
	tcase_add_test(tc, repair_spares_live_holder);
	tcase_add_test(tc, live_holder_record_without_lock_is_not_waited_for);
	tcase_set_timeout(tc, 40);
	suite_add_tcase(s, tc);
#endif

	tc = tcase_create("creation");
	tcase_add_test(tc, open_waits_for_live_creator);
	tcase_add_test(tc, unfinished_table_is_named_and_removable);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, load_limit_is_capped);
	suite_add_tcase(s, tc);

	tc = tcase_create("insert");
	tcase_add_test(tc, insert_without_free_slot);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);
	return s;
}
