#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

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
