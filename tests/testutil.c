#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include "concur.h" /* sk_bound_ns, sk_now_ns, sk_sleep_us */

static char registry_path[300];
static char tempdir_path[256];

static void registry_append(const char *line)
{
	int fd = open(registry_path, O_WRONLY | O_APPEND | O_CREAT, 0600);
	if (fd < 0)
		return;
	ssize_t n = write(fd, line, strlen(line));
	(void)n;
	close(fd);
}

void test_register_shmid(int shmid)
{
	char line[64];
	snprintf(line, sizeof line, "shm %d\n", shmid);
	registry_append(line);
}

key_t test_unique_key(void)
{
	static unsigned counter;
	for (;;) {
		unsigned c = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
		key_t k = (key_t)(0x5e000000u | ((unsigned)getpid() & 0xffffu) << 8 |
		                  (c & 0xffu)) ^ (key_t)((c >> 8) << 24);
		if (k == IPC_PRIVATE)
			continue;
		if (shmget(k, 0, 0) < 0 && errno == ENOENT)
			return k;
	}
}

char *test_temp_path(void)
{
	for (;;) {
		char *p = malloc(512);
		ck_assert_ptr_nonnull(p);
		snprintf(p, 512, "%s/tableXXXXXX", tempdir_path);
		int fd = mkstemp(p);
		ck_assert_int_ge(fd, 0);
		close(fd);
		key_t k = ftok(p, 1);
		if (shmget(k, 0, 0) < 0 && errno == ENOENT)
			return p;
		unlink(p);
		free(p);
	}
}

struct hashtable *test_table_create(struct hashtable_config *cfg)
{
	if (!cfg->path && cfg->ipc_key == 0)
		cfg->ipc_key = test_unique_key();
	struct hashtable *h = NULL;
	int rc = hashtable_create_config(cfg, &h);
	ck_assert_msg(rc == 0, "hashtable_create_config: %s", hashtable_strerror(rc));
	test_register_table(h);
	return h;
}

void test_register_table(struct hashtable *h)
{
	struct hashtable_segment_info seg[16];
	long n = hashtable_segments(h, seg, 16);
	ck_assert_msg(n >= 2, "hashtable_segments: %ld: %s", n, hashtable_last_error());
	for (long i = 0; i < n && i < 16; i++)
		test_register_shmid(seg[i].shmid);
}

int test_data_shmid(struct hashtable *h)
{
	struct hashtable_segment_info seg[16];
	long n = hashtable_segments(h, seg, 16);
	for (long i = 0; i < n && i < 16; i++)
		if (seg[i].role == HASHTABLE_SEG_CURRENT)
			return seg[i].shmid;
	ck_abort_msg("no current data segment: %s", hashtable_last_error());
	return -1;
}

struct hashtable *test_table_simple(uint32_t key_size, uint32_t value_size,
                                    uint64_t entries, double max_load)
{
	struct hashtable_config cfg = {0};
	cfg.key_size = key_size;
	cfg.value_size = value_size;
	cfg.entries = entries;
	cfg.max_load = max_load;
	return test_table_create(&cfg);
}

void test_table_destroy(struct hashtable *h)
{
	if (!h)
		return;
	hashtable_unlink(h);
	hashtable_close(h);
}

int test_self_mappings(int shmid)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return -1;
	char line[512];
	int found = 0;
	/* a SysV segment's line names /SYSV<key>, with the shmid as its inode;
	 * each shmat is a line of its own (nothing here splits one) */
	while (fgets(line, sizeof line, f)) {
		unsigned long ino;
		if (strstr(line, "/SYSV") && sscanf(line, "%*s %*s %*s %*s %lu", &ino) == 1 &&
		    ino == (unsigned long)shmid)
			found++;
	}
	fclose(f);
	return found;
}

/* Whether shmid is gone (IPC_STAT: EINVAL or EIDRM once freed). */
static int segment_gone(int shmid)
{
	struct shmid_ds ds;
	return shmctl(shmid, IPC_STAT, &ds) != 0 && (errno == EINVAL || errno == EIDRM);
}

/* "size 65536 nattch 1 cpid 12 lpid 34 mode 01600" for a message. */
static const char *segment_describe(int shmid, char *buf, size_t n)
{
	struct shmid_ds ds;
	if (shmctl(shmid, IPC_STAT, &ds) != 0)
		snprintf(buf, n, "IPC_STAT: %s", strerror(errno));
	else
		snprintf(buf, n, "size %zu nattch %lu cpid %d lpid %d mode 0%o", (size_t)ds.shm_segsz,
		         (unsigned long)ds.shm_nattch, (int)ds.shm_cpid, (int)ds.shm_lpid,
		         (unsigned)ds.shm_perm.mode);
	return buf;
}

int test_segment_freed(int shmid, double settle_ms, char *why, size_t n)
{
	if (test_self_mappings(shmid) != 0) {
		snprintf(why, n, "segment %d: this process %d still maps it", shmid, (int)getpid());
		return 0;
	}
	uint64_t end = sk_now_ns() + sk_bound_ns(settle_ms);
	while (!segment_gone(shmid)) {
		if (sk_now_ns() > end) {
			char d[160];
			snprintf(why, n, "segment %d: this process %d does not map it, yet it "
			         "stayed %.0f ms (%s)", shmid, (int)getpid(), settle_ms,
			         segment_describe(shmid, d, sizeof d));
			return 0;
		}
		sk_sleep_us(1000);
	}
	return 1;
}

int test_only_root_and_current(struct hashtable *h, double settle_ms, char *why, size_t n)
{
	struct hashtable_segment_info seg[16];
	long count = hashtable_segments(h, seg, 16);
	int roots = 0, current = 0;
	size_t used = (size_t)snprintf(why, n, "hashtable_segments says %ld segments:", count);
	for (long i = 0; i < count && i < 16; i++) {
		roots += seg[i].role == HASHTABLE_SEG_ROOT;
		current += seg[i].role == HASHTABLE_SEG_CURRENT;
		if (seg[i].role != HASHTABLE_SEG_ROOT && seg[i].role != HASHTABLE_SEG_CURRENT)
			test_register_shmid(seg[i].shmid);
		if (used < n)
			used += (size_t)snprintf(why + used, n - used,
			                         " [shmid %d role %d gen %" PRIu64 " nattch %" PRIu64
			                         " cpid %d lpid %d]", seg[i].shmid, seg[i].role,
			                         seg[i].generation, seg[i].nattch,
			                         (int)seg[i].creator_pid, (int)seg[i].last_pid);
	}
	if (used < n)
		used += (size_t)snprintf(why + used, n - used, " (this process %d)", (int)getpid());
	if (count < 2 || count > 16 || roots != 1 || current != 1)
		return 0;
	for (long i = 0; i < count; i++) {
		int id = seg[i].shmid;
		if (seg[i].role == HASHTABLE_SEG_ROOT || seg[i].role == HASHTABLE_SEG_CURRENT)
			continue;
		if (seg[i].role != HASHTABLE_SEG_RETIRED) {
			if (used < n)
				snprintf(why + used, n - used, "; segment %d is pending", id);
			return 0;
		}
		char freed_why[256];
		if (!test_segment_freed(id, settle_ms, freed_why, sizeof freed_why)) {
			if (used < n)
				snprintf(why + used, n - used, "; retired %s", freed_why);
			return 0;
		}
	}
	/* the retired ones are freed (an id freed is never attached again) */
	count = hashtable_segments(h, seg, 16);
	if (count != 2) {
		if (used < n)
			snprintf(why + used, n - used, "; then %ld segments", count);
		return 0;
	}
	return 1;
}

void test_assert_only_root_and_current(struct hashtable *h, const char *when)
{
	char why[1024];
	ck_assert_msg(test_only_root_and_current(h, 1000, why, sizeof why),
	              "%s: want exactly the root and the current data segment: %s", when, why);
}

void test_assert_segment_freed(int shmid, const char *when)
{
	char why[256];
	ck_assert_msg(test_segment_freed(shmid, 1000, why, sizeof why), "%s: %s", when, why);
}

int test_is_root(void) { return geteuid() == 0; }

double test_scale(void)
{
	const char *s = getenv("SHMKV_SLOW");
	return (s && *s && *s != '0') ? 0.05 : 1.0;
}

/* Removes every registered segment that still exists: only ids this run
 * created.  Returns how many were left behind by the tests. */
static int registry_sweep(void)
{
	FILE *f = fopen(registry_path, "r");
	int leaked = 0, id;
	if (!f)
		return 0;
	while (fscanf(f, "shm %d\n", &id) == 1) {
		struct shmid_ds ds;
		if (shmctl(id, IPC_STAT, &ds) == 0 && !(ds.shm_perm.mode & SHM_DEST)) {
			leaked++;
			shmctl(id, IPC_RMID, NULL);
		}
	}
	fclose(f);
	unlink(registry_path);
	return leaked;
}

static void tempdir_cleanup(void)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tempdir_path);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tempdir_path);
}

int main(int argc, char **argv)
{
	snprintf(tempdir_path, sizeof tempdir_path, "/tmp/shmkv-tests-XXXXXX");
	if (!mkdtemp(tempdir_path)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(registry_path, sizeof registry_path, "%s/registry", tempdir_path);

	SRunner *sr = srunner_create(NULL);
	int added = 0;
#define SHMKV_ADD_SUITE(name)                                                 \
	if ((argc < 2 || strcmp(argv[1], #name) == 0)) {      \
		srunner_add_suite(sr, suite_##name());                        \
		added++;                                                      \
	}
	SHMKV_SUITES(SHMKV_ADD_SUITE)
	if (!added) {
		fprintf(stderr, "shmkv-tests: no suite named %s\n", argc > 1 ? argv[1] : "(any)");
		return 2;
	}
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	int leaked = registry_sweep();
	tempdir_cleanup();
	if (leaked) {
		fprintf(stderr, "shmkv-tests: %d segment(s) left behind by tests, removed by id\n", leaked);
		failed += leaked;
	}
	return failed ? 1 : 0;
}
