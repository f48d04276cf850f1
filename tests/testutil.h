/* Shared helpers for the Check suites.
 *
 * Every segment a test creates goes through test_table_*(), which records its
 * shmid in a registry file owned by the runner.  Check runs each test in a
 * forked child, so a failing or crashing test cannot clean up after itself;
 * the runner removes whatever the registry lists when all suites are done,
 * by id, and only those ids.  Tests should still unlink their own tables. */
#ifndef SHMKV_TESTUTIL_H
#define SHMKV_TESTUTIL_H

#include <check.h>
#include <sys/types.h>
#include "hashtable.h"

/* Suites, one per area.  Each name here must have its suite_NAME() defined in
 * some file in tests/: a missing file is a link error, never a silent skip.  To add
 * a suite, add its name here. */
#define SHMKV_SUITES(X) \
	X(lifecycle) X(ops) X(limits) X(corruption) X(multiproc) \
	X(churn) X(stress) X(threads) X(crash) X(writers) X(api) X(hardening) \
	X(fuzz) X(generations) X(genstress) X(genthreads) X(writebatch) X(shapes)
#define SHMKV_DECLARE_SUITE(name) Suite *suite_##name(void);
SHMKV_SUITES(SHMKV_DECLARE_SUITE)

/* A fresh numeric IPC key with no segment behind it (unique per call). */
key_t test_unique_key(void);

/* A fresh temporary file (for ftok); removed at runner exit.  The path is
 * malloc'd; its key ftok(path, 1) has no segment behind it. */
char *test_temp_path(void);

/* Record a segment id for removal at the end of the run. */
void test_register_shmid(int shmid);

/* Records every segment of a table (root, current data segment, any
 * other hashtable_segments() lists) for removal at the end of the run. */
void test_register_table(struct hashtable *h);

/* The current generation's data segment (where buckets, journal and
 * counters live; the writer lock is in the root, hashtable_shmid). */
int test_data_shmid(struct hashtable *h);

/* Creates a table (mode 0600 unless cfg->mode) with a unique numeric key
 * when cfg->path is NULL and cfg->ipc_key is 0, registers it, and fails the
 * test if creation fails. */
struct hashtable *test_table_create(struct hashtable_config *cfg);

/* Convenience: unique key, `slots_hint` entries at load max_load. */
struct hashtable *test_table_simple(uint32_t key_size, uint32_t value_size,
                                    uint64_t entries, double max_load);

/* Unlinks (IPC_RMID) and closes. */
void test_table_destroy(struct hashtable *h);

/* 1 when running as root. */
int test_is_root(void);

/* Scale for long tests: 1 normally, smaller under valgrind (SHMKV_SLOW). */
double test_scale(void);

#endif
