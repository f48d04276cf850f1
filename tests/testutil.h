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

/* ---- a table's segments, on a machine other processes share ----------------
 * hashtable_segments(), called in any process of the same user for any table
 * (another test run, an operator's `shmkv segments`), attaches every removed
 * key-0 segment for a moment to read whose it is.  So right after a switch a
 * retired generation can still exist, attached, held by someone else; the
 * library promises only that it is freed when its last holder detaches.
 * These checks wait for that moment to pass, and only for it: a segment this
 * process still maps (a detach or reclaim its handles missed) fails at once. */

/* How many times this process maps segment shmid (one per shmat not yet
 * detached: 0 once every handle of this process let it go), or -1 if
 * /proc/self/maps cannot be read. */
int test_self_mappings(int shmid);

/* Whether segment shmid is freed: 1, or 0 with why[] saying what remains.
 * Fails at once if this process still maps it; otherwise waits up to
 * settle_ms (stretched like every bound, sk_bound_ns) for another process
 * to let it go. */
int test_segment_freed(int shmid, double settle_ms, char *why, size_t n);

/* Whether the table is down to its root and its current data segment: 1,
 * or 0 with why[] listing every segment and what is wrong.  A pending
 * segment, or a retired one this process still maps, fails at once; a
 * retired one it does not map must be freed within settle_ms
 * (test_segment_freed), then the table must list exactly those two.
 * Registers every other segment it sees for removal. */
int test_only_root_and_current(struct hashtable *h, double settle_ms, char *why, size_t n);

/* Fails the test unless test_only_root_and_current(h, 1000 ms) holds; `when`
 * says at which step, for the message. */
void test_assert_only_root_and_current(struct hashtable *h, const char *when);

/* Fails the test unless test_segment_freed(shmid, 1000 ms) holds. */
void test_assert_segment_freed(int shmid, const char *when);

/* 1 when running as root. */
int test_is_root(void);

/* Scale for long tests: 1 normally, smaller under valgrind (SHMKV_SLOW). */
double test_scale(void);

#endif
