/* Limits and errors: argument checking, the load limit, density, probe
 * quality, the kernel's size limit, error texts. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
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

static uint64_t val_of(uint64_t i) { return i * 0x9E3779B97F4A7C15ull + 7; }

static uint64_t splitmix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

/* Sanitizer builds run the big fills 4x smaller (valgrind: test_scale()). */
static double loop_scale(void)
{
	double s = test_scale();
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	s *= 0.25;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
	s *= 0.25;
#endif
#endif
	return s;
}

static struct hashtable_stats stats_of(struct hashtable *h)
{
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	return st;
}

/* Fails the test if a segment exists at key (registering it for removal). */
static void assert_no_segment(key_t key)
{
	int id = shmget(key, 0, 0);
	if (id >= 0)
		test_register_shmid(id);
	ck_assert_msg(id < 0 && errno == ENOENT, "a failed create left a segment at 0x%08x",
	              (unsigned)key);
}

/* ---- argument checking --------------------------------------------------- */

static void classic_einval(const char *path, long cap, float load, short ks, short vs,
                           void *stop, void *del)
{
	errno = 0;
	struct hashtable *h = hashtable_create(path, cap, load, ks, vs, stop, del);
	if (h)
		test_register_shmid(hashtable_shmid(h));
	ck_assert_msg(h == NULL && errno == EINVAL,
	              "create(cap %ld, load %g, key %d, value %d): %s, errno %d", cap,
	              (double)load, ks, vs, h ? "succeeded" : "failed", errno);
	if (path)
		assert_no_segment(ftok(path, 1));
}

START_TEST(classic_bad_arguments)
{
	char *p = test_temp_path();
	unsigned char same[8];
	memset(same, 0x33, sizeof same);
	classic_einval(NULL, 1 << 20, 0.8f, 8, 8, NULL, NULL);
	classic_einval(p, 0, 0.8f, 8, 8, NULL, NULL);
	classic_einval(p, -4096, 0.8f, 8, 8, NULL, NULL);
	classic_einval(p, 1 << 20, 0.0f, 8, 8, NULL, NULL);
	classic_einval(p, 1 << 20, -0.5f, 8, 8, NULL, NULL);
	classic_einval(p, 1 << 20, 100.5f, 8, 8, NULL, NULL);
	classic_einval(p, 1 << 20, 1000.0f, 8, 8, NULL, NULL);
	classic_einval(p, 1 << 20, NAN, 8, 8, NULL, NULL);
	classic_einval(p, 1 << 20, 0.8f, 0, 8, NULL, NULL);
	classic_einval(p, 1 << 20, 0.8f, -8, 8, NULL, NULL);
	classic_einval(p, 1 << 20, 0.8f, (short)(HASHTABLE_MAX_KEY + 1), 8, NULL, NULL);
	classic_einval(p, 1 << 20, 0.8f, 8, -1, NULL, NULL);
	/* the two sentinels equal, given or defaulted */
	classic_einval(p, 1 << 20, 0.8f, 8, 8, same, same);
	unsigned char zero[8] = {0}, ones[8];
	memset(ones, 0xFF, sizeof ones);
	classic_einval(p, 1 << 20, 0.8f, 8, 8, NULL, zero);
	classic_einval(p, 1 << 20, 0.8f, 8, 8, ones, NULL);
	/* too small for one bucket */
	classic_einval(p, 1, 0.8f, 8, 8, NULL, NULL);
	classic_einval(p, 16, 0.8f, 8, 8, NULL, NULL);
	free(p);
}
END_TEST

static void config_einval(struct hashtable_config *cfg)
{
	cfg->ipc_key = test_unique_key();
	struct hashtable *h = (struct hashtable *)cfg;
	int rc = hashtable_create_config(cfg, &h);
	if (rc == 0)
		test_register_shmid(hashtable_shmid(h));
	ck_assert_msg(rc == -EINVAL, "create_config(key %u, value %u, cap %zu, load %g): %d",
	              cfg->key_size, cfg->value_size, cfg->capacity, cfg->max_load, rc);
	ck_assert_ptr_eq(h, (struct hashtable *)cfg);
	assert_no_segment(cfg->ipc_key);
}

START_TEST(config_bad_arguments)
{
	struct hashtable_config base = {0};
	base.key_size = 8;
	base.value_size = 8;
	base.entries = 1000;
	struct hashtable_config c;

	c = base; c.key_size = 0; config_einval(&c);
	c = base; c.key_size = HASHTABLE_MAX_KEY + 1; config_einval(&c);
	c = base; c.key_size = 1u << 31; config_einval(&c);
	c = base; c.value_size = HASHTABLE_MAX_VALUE + 1; config_einval(&c);
	c = base; c.max_load = -0.1; config_einval(&c);
	c = base; c.max_load = 101; config_einval(&c);
	c = base; c.empty_key = "abcdefgh"; c.deleted_key = "abcdefgh"; config_einval(&c);
	c = base; c.capacity = 1; config_einval(&c);
	c = base; c.capacity = 40; config_einval(&c);
	c = base; c.entries = UINT64_MAX / 2; config_einval(&c);
	struct hashtable *h = NULL;
	ck_assert_int_eq(hashtable_create_config(NULL, &h), -EINVAL);
	ck_assert_int_eq(hashtable_create_config(&base, NULL), -EINVAL);
}
END_TEST

/* The widest key and widest value are accepted. */
START_TEST(widest_widths_accepted)
{
	struct hashtable *h = test_table_simple(HASHTABLE_MAX_KEY, HASHTABLE_MAX_VALUE, 3, 0.8);
	unsigned char *k = malloc(HASHTABLE_MAX_KEY), *v = malloc(HASHTABLE_MAX_VALUE),
	              *out = malloc(HASHTABLE_MAX_VALUE);
	ck_assert(k && v && out);
	for (uint64_t i = 0; i < 3; i++) {
		mk_key(k, HASHTABLE_MAX_KEY, i);
		k[HASHTABLE_MAX_KEY - 1] = (unsigned char)i;
		memset(v, (int)(i + 1), HASHTABLE_MAX_VALUE);
		v[HASHTABLE_MAX_VALUE - 1] = 0xEE;
		ck_assert_int_eq(hashtable_update(h, k, v), 0);
	}
	for (uint64_t i = 0; i < 3; i++) {
		mk_key(k, HASHTABLE_MAX_KEY, i);
		k[HASHTABLE_MAX_KEY - 1] = (unsigned char)i;
		memset(v, (int)(i + 1), HASHTABLE_MAX_VALUE);
		v[HASHTABLE_MAX_VALUE - 1] = 0xEE;
		ck_assert_int_eq(hashtable_search(h, k, out), 0);
		ck_assert(memcmp(out, v, HASHTABLE_MAX_VALUE) == 0);
	}
	ck_assert_int_eq(hashtable_verify(h), 0);
	free(k);
	free(v);
	free(out);
	test_table_destroy(h);
}
END_TEST

START_TEST(segment_size_function)
{
	ck_assert_uint_eq(hashtable_segment_size(1000, 0.8, 0, 8), 0);
	ck_assert_uint_eq(hashtable_segment_size(1000, 0.8, HASHTABLE_MAX_KEY + 1, 8), 0);
	ck_assert_uint_eq(hashtable_segment_size(1000, 0.8, 8, HASHTABLE_MAX_VALUE + 1), 0);
	ck_assert_uint_eq(hashtable_segment_size(1000, 150.0, 8, 8), 0);
	ck_assert_uint_eq(hashtable_segment_size(UINT64_MAX, 0.8, 8, 8), 0);
	ck_assert_uint_eq(hashtable_segment_size(UINT64_MAX / 4, 0.5, 1024, 1u << 20), 0);
	size_t a = hashtable_segment_size(1000, 0.8, 8, 8);
	size_t b = hashtable_segment_size(1000, 80, 8, 8);
	size_t c = hashtable_segment_size(100000, 0.8, 8, 8);
	size_t d = hashtable_segment_size(1000, 0.5, 8, 8);
	ck_assert_uint_gt(a, 1000 * 16);
	ck_assert_uint_eq(a, b);
	ck_assert_uint_gt(c, a);
	ck_assert_uint_gt(d, a);
	/* Not wasteful: 100000 8/8 keys at 0.8 fit in well under 2x the payload
	 * divided by the load. */
	ck_assert_uint_lt(c, (size_t)(2.0 * 100000 * 16 / 0.8));

	/* A table of that size holds that many keys. */
	const uint64_t counts[] = {1, 7, 100, 12345};
	const double loads[] = {0.5, 0.8, 95};
	for (size_t i = 0; i < 4; i++)
		for (size_t j = 0; j < 3; j++) {
			struct hashtable_config cfg = {0};
			cfg.key_size = 5;
			cfg.value_size = 3;
			cfg.capacity = hashtable_segment_size(counts[i], loads[j], 5, 3);
			cfg.max_load = loads[j];
			ck_assert_uint_gt(cfg.capacity, 0);
			struct hashtable *h = test_table_create(&cfg);
			struct hashtable_stats st = stats_of(h);
			ck_assert_msg(st.max_count >= counts[i],
			              "segment_size(%llu, %g) holds only %llu",
			              (unsigned long long)counts[i], loads[j],
			              (unsigned long long)st.max_count);
			ck_assert_uint_eq(st.segment_bytes, cfg.capacity);
			test_table_destroy(h);
		}
}
END_TEST

/* Load as a fraction and as a percent is the same limit. */
START_TEST(fraction_equals_percent)
{
	const float pairs[][2] = {{0.8f, 80.0f}, {0.5f, 50.0f}, {0.95f, 95.0f}, {0.98f, 98.0f}};
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		uint64_t mc[2];
		for (int j = 0; j < 2; j++) {
			char *p = test_temp_path();
			struct hashtable *h = hashtable_create(p, 300000, pairs[i][j], 8, 8, NULL, NULL);
			ck_assert_msg(h != NULL, "load %g: %s", (double)pairs[i][j],
			              hashtable_last_error());
			test_register_shmid(hashtable_shmid(h));
			struct hashtable_stats st = stats_of(h);
			mc[j] = st.max_count;
			ck_assert_double_eq_tol(st.max_load, pairs[i][0], 1e-6);
			ck_assert_uint_le(st.max_count, st.slots);
			ck_assert_uint_ge(st.max_count + 2, (uint64_t)(st.slots * pairs[i][0]));
			test_table_destroy(h);
			free(p);
		}
		ck_assert_uint_eq(mc[0], mc[1]);
	}
}
END_TEST

/* ---- the load limit ------------------------------------------------------ */

static const double fill_loads[] = {0.5, 0.8, 0.95};

START_TEST(fill_to_limit_and_empty)
{
	double load = fill_loads[_i];
	struct hashtable *h = test_table_simple(8, 8, 20000, load);
	struct hashtable_stats st = stats_of(h);
	uint64_t max = st.max_count;
	ck_assert_uint_ge(max, 20000);
	unsigned char k[8];
	uint64_t v, out;
	for (uint64_t i = 0; i < max; i++) {
		mk_key(k, 8, i);
		v = val_of(i);
		int rc = hashtable_update(h, k, &v);
		ck_assert_msg(rc == 0, "load %g: insert %llu of %llu: %d", load,
		              (unsigned long long)i, (unsigned long long)max, rc);
	}
	st = stats_of(h);
	ck_assert_uint_eq(st.count, max);
	for (uint64_t i = max; i < max + 100; i++) {
		mk_key(k, 8, i);
		ck_assert_int_eq(hashtable_update(h, k, &v), -ENOMEM);
		ck_assert_int_eq(hashtable_search(h, k, &out), -1);
	}
	for (uint64_t i = 0; i < max; i += 5) { /* overwrites still work */
		mk_key(k, 8, i);
		v = ~val_of(i);
		ck_assert_int_eq(hashtable_update(h, k, &v), 1);
	}
	for (uint64_t i = 0; i < max; i++) {
		mk_key(k, 8, i);
		ck_assert_int_eq(hashtable_search(h, k, &out), 0);
		ck_assert_uint_eq(out, i % 5 ? val_of(i) : ~val_of(i));
	}
	st = stats_of(h);
	ck_assert_uint_eq(st.count, max);
	ck_assert_uint_eq(st.deleted, 0);
	ck_assert_int_eq(hashtable_verify(h), 0);
	printf("limits: fill load %.2f: %llu keys in %llu slots, max_probe %llu, "
	       "hit %.3f miss %.3f\n", load, (unsigned long long)max,
	       (unsigned long long)st.slots, (unsigned long long)st.max_probe,
	       st.hit_probes, st.miss_probes);

	for (uint64_t i = 0; i < max; i++) {
		mk_key(k, 8, i);
		ck_assert_int_eq(hashtable_delete(h, k), 0);
	}
	st = stats_of(h);
	ck_assert_uint_eq(st.count, 0);
	ck_assert_uint_eq(st.deleted, 0);
	ck_assert_uint_eq(st.collisions, 0);
	ck_assert_uint_eq(st.overflowed_buckets, 0);
	ck_assert_int_eq(hashtable_verify(h), 0);
	uint64_t cur = 0;
	ck_assert_int_eq(hashtable_iterate(h, &cur, k, &out), 0);

	/* every slot is usable again, by other keys */
	for (uint64_t i = 0; i < max; i++) {
		mk_key(k, 8, i + 10 * max);
		v = i;
		ck_assert_int_eq(hashtable_update(h, k, &v), 0);
	}
	mk_key(k, 8, 12 * max);
	ck_assert_int_eq(hashtable_update(h, k, &v), -ENOMEM);
	ck_assert_uint_eq(stats_of(h).count, max);
	ck_assert_int_eq(hashtable_verify(h), 0);
	test_table_destroy(h);
}
END_TEST

/* At max_load 0.8, C bytes hold at least 0.75 * C / (key + value) keys.
 * 16 MiB: the fixed overhead weighs more than in a bigger segment. */
START_TEST(density)
{
	size_t cap = (size_t)(16.0 * 1024 * 1024 * loop_scale());
	struct hashtable_config cfg = {0};
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.capacity = cap;
	cfg.max_load = 0.8;
	struct hashtable *h = test_table_create(&cfg);
	struct hashtable_stats st = stats_of(h);
	uint64_t want = (uint64_t)(0.75 * (double)cap / 16);
	ck_assert_msg(st.max_count >= want, "%zu bytes allow %llu keys, want >= %llu", cap,
	              (unsigned long long)st.max_count, (unsigned long long)want);
	unsigned char k[8];
	uint64_t n = 0, v;
	int rc;
	for (;;) {
		mk_key(k, 8, n);
		v = n;
		if ((rc = hashtable_update(h, k, &v)) != 0)
			break;
		n++;
	}
	ck_assert_int_eq(rc, -ENOMEM);
	ck_assert_uint_eq(n, st.max_count);
	ck_assert_uint_ge(n, want);
	printf("limits: density: %zu bytes hold %llu 8/8 keys (%.1f%% of bytes are payload)\n",
	       cap, (unsigned long long)n, 100.0 * (double)n * 16 / (double)cap);
	for (uint64_t i = 0; i < n; i += 997) {
		mk_key(k, 8, i);
		ck_assert_int_eq(hashtable_search(h, k, &v), 0);
		ck_assert_uint_eq(v, i);
	}
	test_table_destroy(h);
}
END_TEST

/* ---- probe quality ------------------------------------------------------- */

struct probe_case {
	double load;
	int random_keys;
	uint64_t entries;
	double hit_max, miss_max;
};

/* Sequential keys (what users store) with a million entries; random keys,
 * which only exercise the table's structure, with fewer. */
static const struct probe_case probe_cases[] = {
	{0.80, 0, 1000000, 1.3, 2.5},
	{0.95, 0, 1000000, 1.7, 4.0},
	{0.80, 1, 250000, 1.3, 2.5},
	{0.95, 1, 250000, 1.7, 4.0},
};

START_TEST(probe_quality)
{
	const struct probe_case *pc = &probe_cases[_i];
	uint64_t entries = (uint64_t)((double)pc->entries * loop_scale());
	struct hashtable *h = test_table_simple(8, 8, entries, pc->load);
	struct hashtable_stats st = stats_of(h);
	uint64_t n = st.max_count;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t k = pc->random_keys ? splitmix(i) : i + 1, v = i;
		if (k == 0 || k == UINT64_MAX)
			k = 42;
		int rc = hashtable_update(h, &k, &v);
		ck_assert_msg(rc == 0, "insert %llu: %d", (unsigned long long)i, rc);
	}
	st = stats_of(h);
	ck_assert_uint_eq(st.count, n);
	printf("limits: probes at load %.2f, %s keys, %llu entries in %llu slots "
	       "(%u per bucket): hit %.3f miss %.3f max_probe %llu\n",
	       pc->load, pc->random_keys ? "random" : "sequential", (unsigned long long)n,
	       (unsigned long long)st.slots, st.slots_per_bucket, st.hit_probes,
	       st.miss_probes, (unsigned long long)st.max_probe);
	fflush(stdout);
	ck_assert_msg(st.hit_probes <= pc->hit_max, "hit_probes %.3f > %.2f", st.hit_probes,
	              pc->hit_max);
	ck_assert_msg(st.miss_probes <= pc->miss_max, "miss_probes %.3f > %.2f",
	              st.miss_probes, pc->miss_max);
	ck_assert_double_ge(st.hit_probes, 1.0);
	ck_assert_double_ge(st.miss_probes, 1.0);
	test_table_destroy(h);
}
END_TEST

/* ---- kernel.shmmax ------------------------------------------------------- */

#define SHMMAX_FILE "/proc/sys/kernel/shmmax"

static int write_shmmax(const char *text)
{
	int fd = open(SHMMAX_FILE, O_WRONLY);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* What the grandchild reports about the oversized create. */
struct oversize_report {
	int classic_null, classic_errno, config_rc, segment_left;
	char classic_text[512], config_text[512];
};

/* Runs in a grandchild so that nothing, not even a crash in the library,
 * can skip restoring shmmax in the test process. */
static void oversize_child(int fd, char *path, long cap)
{
	struct oversize_report r;
	memset(&r, 0, sizeof r);
	alarm(5);
	errno = 0;
	struct hashtable *h = hashtable_create(path, cap, 0.8, 8, 8, NULL, NULL);
	r.classic_null = h == NULL;
	r.classic_errno = errno;
	snprintf(r.classic_text, sizeof r.classic_text, "%s", hashtable_last_error());
	if (h)
		test_register_shmid(hashtable_shmid(h));
	struct hashtable_config cfg = {0};
	cfg.ipc_key = test_unique_key();
	cfg.capacity = (size_t)cap;
	cfg.key_size = 8;
	cfg.value_size = 8;
	struct hashtable *h2 = NULL;
	r.config_rc = hashtable_create_config(&cfg, &h2);
	snprintf(r.config_text, sizeof r.config_text, "%s", hashtable_last_error());
	if (h2)
		test_register_shmid(hashtable_shmid(h2));
	int id = shmget(ftok(path, 1), 0, 0);
	if (id >= 0)
		test_register_shmid(id);
	r.segment_left = id >= 0;
	id = shmget(cfg.ipc_key, 0, 0);
	if (id >= 0)
		test_register_shmid(id);
	r.segment_left |= (id >= 0) << 1;
	ssize_t n = write(fd, &r, sizeof r);
	hashtable_close(h);
	hashtable_close(h2);
	free(path); /* the parent's, inherited */
	_exit(n == (ssize_t)sizeof r ? 0 : 1);
}

START_TEST(oversized_create_names_shmmax)
{
	if (!test_is_root()) {
		printf("limits: oversized_create_names_shmmax skipped: lowering "
		       "kernel.shmmax needs root\n");
		return;
	}
	char old[64] = {0};
	int fd = open(SHMMAX_FILE, O_RDONLY);
	if (fd < 0) {
		printf("limits: oversized_create_names_shmmax skipped: %s not readable\n",
		       SHMMAX_FILE);
		return;
	}
	ssize_t n = read(fd, old, sizeof old - 1);
	close(fd);
	ck_assert_int_gt(n, 0);

	const long limit = 8L << 20, cap = 16L << 20;
	char *path = test_temp_path();
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);
	char lim[32];
	snprintf(lim, sizeof lim, "%ld\n", limit);
	if (write_shmmax(lim) != 0) {
		write_shmmax(old);
		printf("limits: oversized_create_names_shmmax skipped: cannot write %s "
		       "(read-only /proc/sys in this container?)\n", SHMMAX_FILE);
		return;
	}
	/* From here to the restore: no assertion. */
	pid_t pid = fork();
	if (pid == 0)
		oversize_child(pfd[1], path, cap);
	int status = 0;
	if (pid > 0)
		waitpid(pid, &status, 0);
	int restored = write_shmmax(old);

	ck_assert_int_eq(restored, 0);
	ck_assert_int_gt(pid, 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	              "oversize child status 0x%x", status);
	struct oversize_report r;
	ck_assert_int_eq(read(pfd[0], &r, sizeof r), (ssize_t)sizeof r);
	close(pfd[0]);
	close(pfd[1]);
	char capstr[32];
	snprintf(capstr, sizeof capstr, "%ld", cap);
	printf("limits: oversized create, classic text: %s\n", r.classic_text);
	printf("limits: oversized create, config text: %s\n", r.config_text);
	ck_assert_msg(r.classic_null && r.classic_errno == EINVAL,
	              "classic create of %ld bytes over shmmax %ld: %s, errno %d", cap, limit,
	              r.classic_null ? "NULL" : "succeeded", r.classic_errno);
	ck_assert_int_eq(r.config_rc, -EINVAL);
	ck_assert_int_eq(r.segment_left, 0);
	ck_assert_msg(strstr(r.classic_text, "kernel.shmmax") != NULL,
	              "text does not name kernel.shmmax: %s", r.classic_text);
	ck_assert_msg(strstr(r.classic_text, capstr) != NULL,
	              "text does not name the size %s: %s", capstr, r.classic_text);
	ck_assert_msg(strstr(r.config_text, "kernel.shmmax") != NULL,
	              "text does not name kernel.shmmax: %s", r.config_text);
	ck_assert_msg(strstr(r.config_text, capstr) != NULL,
	              "text does not name the size %s: %s", capstr, r.config_text);
	free(path);
}
END_TEST

/* ---- error texts --------------------------------------------------------- */

START_TEST(strerror_texts)
{
	const int codes[] = {HASHTABLE_EDEADWRITER, HASHTABLE_ECORRUPT, -ENOENT, -EINVAL,
	                     -EPROTO, -EACCES, -EEXIST, -ENOSPC, -ENOMEM, -EPERM};
	enum { N = sizeof codes / sizeof codes[0] };
	char texts[N][256];
	for (int i = 0; i < N; i++) {
		const char *t = hashtable_strerror(codes[i]);
		ck_assert_ptr_nonnull(t);
		ck_assert_msg(strlen(t) > 0, "empty text for %d", codes[i]);
		snprintf(texts[i], sizeof texts[i], "%s", t);
	}
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			ck_assert_msg(strcmp(texts[i], texts[j]) != 0, "codes %d and %d share \"%s\"",
			              codes[i], codes[j], texts[i]);
	/* positive errno values are accepted too */
	ck_assert(strlen(hashtable_strerror(EINVAL)) > 0);
	ck_assert(strlen(hashtable_strerror(0)) > 0);
	ck_assert(strlen(hashtable_strerror(-30799)) > 0);
	/* the library's own codes are not the C library's "Unknown error" */
	ck_assert_ptr_null(strstr(texts[0], "Unknown error"));
	ck_assert_ptr_null(strstr(texts[1], "Unknown error"));
}
END_TEST

Suite *suite_limits(void)
{
	Suite *s = suite_create("limits");
	TCase *tc = tcase_create("arguments");
	tcase_add_test(tc, classic_bad_arguments);
	tcase_add_test(tc, config_bad_arguments);
	tcase_add_test(tc, widest_widths_accepted);
	tcase_add_test(tc, segment_size_function);
	tcase_add_test(tc, fraction_equals_percent);
	tcase_add_test(tc, strerror_texts);
	tcase_add_test(tc, oversized_create_names_shmmax);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);

	tc = tcase_create("load");
	tcase_add_loop_test(tc, fill_to_limit_and_empty, 0, 3);
	tcase_add_test(tc, density);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("probes");
	tcase_add_loop_test(tc, probe_quality, 0, 4);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}
