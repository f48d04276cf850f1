/* libFuzzer target: the bytes of a table's segments, attached and read.
 *
 * Once per process a forked child creates a table with a 16-page data
 * segment (8-byte keys and values) under a fresh key and fills it; the ids
 * of its two segments (the root at the key, the data segment at key 0) go
 * to the file named by $SHMKV_FUZZ_SEGMENTS ("shmid key" lines), so that
 * `make fuzz` removes them by id even when libFuzzer ends the process with
 * _exit after a finding, and an atexit handler removes them on a normal
 * exit.  The library opens the table by key for every input, both segments
 * attached between guard pages (guard.h).
 *
 * The input's first byte picks which segment it becomes and how (mode % 4);
 * the other segment is restored from its pristine copy:
 *   0  the rest is the data segment's image, zero-padded: nothing fixed;
 *   1  the same, with the data magic, format number, table_id and
 *      generation stamped in, to get past the first checks;
 *   2  the rest is (u16 offset, byte) patches on the pristine data segment;
 *   3  the rest is (u16 offset, byte) patches on the pristine root (its
 *      header, lock, holder and build records, current word, sentinels).
 * Then: open RDONLY (stats, search, search_batch, iterate, probe_histogram,
 * verify) and open RDWR.  A return code hashtable.h does not document
 * aborts.  The writer-side calls (verify, update, delete, recover through the
 * RDWR handle) run too, and the holder fields are left as the input makes
 * them; SHMKV_FUZZ_WRITERS=0 skips the writer calls and resets the holder
 * fields to the dead filler's (the gate used before the library survived
 * them).  A writer call refused for a damaged lock skips to recover: each
 * may wait the library's documented 2 s for the lock, and the input must
 * finish within libFuzzer's -timeout. */
#include "hashtable.h"
#include "guard.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

struct fuzz_field {
	const char *name;
	size_t off, size;
};
#include "layout.h"

#define PAGES 16
#define NKEYS 400

static key_t table_key;
static int table_shmid = -1, root_shmid = -1; /* the data segment, the root */
static unsigned char *seg, *pristine;           /* the data segment */
static unsigned char *root, *root_pristine;
static size_t seg_bytes, root_bytes;
static int writers;

static void remove_table(void)
{
	if (table_shmid >= 0)
		shmctl(table_shmid, IPC_RMID, NULL);
	if (root_shmid >= 0)
		shmctl(root_shmid, IPC_RMID, NULL);
	table_shmid = root_shmid = -1;
}

static void key_of(uint64_t i, unsigned char k[8])
{
	uint64_t v = (i + 1) * UINT64_C(0x9e3779b97f4a7c15) | 1; /* never 0, ... */
	v &= ~(UINT64_C(1) << 63);                                  /* never ~0 */
	memcpy(k, &v, 8);
}

/* Creates and fills the table; tells the parent its segments' ids (root,
 * data) on fd, so that the parent removes only segments this child made. */
static void fill_child(int fd)
{
	struct hashtable_config cfg = {0};
	cfg.ipc_key = table_key;
	cfg.capacity = seg_bytes;
	cfg.key_size = 8;
	cfg.value_size = 8;
	cfg.flags = HASHTABLE_EXCL;
	struct hashtable *h = NULL;
	if (hashtable_create_config(&cfg, &h) != 0)
		_exit(1);
	int ids[2] = { hashtable_shmid(h), -1 };
	unsigned char *r = shmat(ids[0], NULL, SHM_RDONLY);
	if (r != (void *)-1) {
		uint64_t current; /* generation << 32 | data shmid */
		memcpy(&current, r + FUZZ_OFF_CURRENT, sizeof current);
		ids[1] = (int)(uint32_t)current;
		shmdt(r);
	}
	if (write(fd, ids, sizeof ids) != (ssize_t)sizeof ids)
		_exit(3);
	unsigned char k[8];
	for (uint64_t i = 0; i < NKEYS; i++) {
		key_of(i, k);
		if (hashtable_update(h, k, k) != 0)
			_exit(2);
	}
	for (uint64_t i = 0; i < NKEYS; i += 7) {
		key_of(i, k);
		hashtable_delete(h, k);
	}
	hashtable_close(h);
	_exit(0);
}

static void die(const char *what)
{
	fprintf(stderr, "fuzz-image: %s\n", what);
	remove_table();
	exit(2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	seg_bytes = PAGES * (size_t)sysconf(_SC_PAGESIZE);
	for (unsigned c = 0;; c++) {
		table_key = (key_t)(0x49000000u | ((unsigned)getpid() & 0xffffu) << 8 | (c & 0xffu));
		if (shmget(table_key, 0, 0) < 0 && errno == ENOENT)
			break;
	}
	int fds[2], st = 0, ids[2];
	if (pipe(fds) != 0)
		die("pipe failed");
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		fill_child(fds[1]);
	}
	close(fds[1]);
	waitpid(pid, &st, 0);
	if (read(fds[0], ids, sizeof ids) == (ssize_t)sizeof ids) {
		root_shmid = ids[0];
		table_shmid = ids[1];
	}
	close(fds[0]);
	if (root_shmid >= 0 || table_shmid >= 0) {
		atexit(remove_table);
		const char *log = getenv("SHMKV_FUZZ_SEGMENTS");
		FILE *f = log ? fopen(log, "a") : NULL;
		if (f) {
			if (root_shmid >= 0)
				fprintf(f, "%d 0x%08x\n", root_shmid, (unsigned)table_key);
			if (table_shmid >= 0) /* a data segment: key 0 */
				fprintf(f, "%d 0x%08x\n", table_shmid, 0u);
			fclose(f);
		}
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || table_shmid < 0 || root_shmid < 0)
		die("could not create and fill the table (setup child failed)");
	struct shmid_ds ds;
	if (shmctl(table_shmid, IPC_STAT, &ds) != 0 || ds.shm_segsz != seg_bytes ||
	    shmctl(root_shmid, IPC_STAT, &ds) != 0)
		die("the table's segments are not the sizes expected");
	root_bytes = ds.shm_segsz;
	seg = shmat(table_shmid, NULL, 0);
	root = shmat(root_shmid, NULL, 0);
	pristine = malloc(seg_bytes);
	root_pristine = malloc(root_bytes);
	if (seg == (void *)-1 || root == (void *)-1 || !pristine || !root_pristine)
		die("could not attach the table");
	memcpy(pristine, seg, seg_bytes);
	memcpy(root_pristine, root, root_bytes);
	const char *w = getenv("SHMKV_FUZZ_WRITERS");
	writers = !w || strcmp(w, "0") != 0;
	guard_pages_on = 1;
	return 0;
}

/* (u16 offset, byte) patches on a pristine image. */
static void patch(unsigned char *img, const unsigned char *orig, size_t bytes,
                  const uint8_t *data, size_t size)
{
	memcpy(img, orig, bytes);
	for (size_t i = 0; i + 3 <= size; i += 3) {
		size_t off = ((size_t)data[i] | (size_t)data[i + 1] << 8) % bytes;
		img[off] = data[i + 2];
	}
}

static void image_from_input(const uint8_t *data, size_t size)
{
	unsigned mode = data[0] % 4;
	data++, size--;
	if (mode != 3)
		memcpy(root, root_pristine, root_bytes);
	if (mode == 3) {
		memcpy(seg, pristine, seg_bytes);
		patch(root, root_pristine, root_bytes, data, size);
	} else if (mode == 2) {
		patch(seg, pristine, seg_bytes, data, size);
	} else {
		size_t n = size < seg_bytes ? size : seg_bytes;
		memcpy(seg, data, n);
		memset(seg + n, 0, seg_bytes - n);
		if (mode == 1) {
			uint64_t magic = FUZZ_MAGIC;
			uint32_t format = FUZZ_FORMAT;
			memcpy(seg + FUZZ_OFF_MAGIC, &magic, sizeof magic);
			memcpy(seg + FUZZ_OFF_FORMAT, &format, sizeof format);
			memcpy(seg + FUZZ_OFF_TABLE_ID, pristine + FUZZ_OFF_TABLE_ID, 8);
			memcpy(seg + FUZZ_OFF_GENERATION, pristine + FUZZ_OFF_GENERATION, 8);
		}
	}
	/* A lock word naming a live thread costs a writer call the documented
	 * 2 s wait, and verify plus recover take 4 s: such inputs brought
	 * ~2000 inputs a second down to a few.  Keep the input's lock
	 * bytes in one input in 32 (first byte / 3 % 32 == 31: not the small
	 * mode bytes 0-2 that most inputs start with) and restore the
	 * pristine lock otherwise; the corruption fuzzer's `mutex` class covers
	 * the lock itself. */
	if (writers && data[-1] / 3 % 32 != 31)
		memcpy(seg + FUZZ_OFF_LOCK, pristine + FUZZ_OFF_LOCK, FUZZ_LOCK_BYTES);
	if (!writers) { /* the gate: readers never meet a live-looking holder */
		memcpy(root + FUZZ_OFF_HOLDER_PID, root_pristine + FUZZ_OFF_HOLDER_PID,
		       FUZZ_HOLDER_PID_BYTES);
		memcpy(root + FUZZ_OFF_HOLDER_START, root_pristine + FUZZ_OFF_HOLDER_START,
		       FUZZ_HOLDER_START_BYTES);
	}
}

/* An undocumented return code is a finding: abort, and libFuzzer keeps the
 * input. */
static void expect(int ok, const char *call, long rc)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz-image: %s returned %ld, which hashtable.h does not document\n",
	        call, rc);
	abort();
}

static void readers(struct hashtable *h)
{
	struct hashtable_stats st;
	int rc = hashtable_stats(h, &st);
	expect(rc == 0, "stats", rc);
	unsigned char keys[8 * 8], values[8 * 8];
	int found[8];
	for (uint64_t i = 0; i < 8; i++)
		key_of(i * 3, keys + 8 * i);
	for (int i = 0; i < 8; i++) {
		rc = hashtable_search(h, keys + 8 * i, values);
		expect(rc == 0 || rc == -1 || rc == -EINVAL || rc == HASHTABLE_EDEADWRITER, "search", rc);
	}
	long n = hashtable_search_batch(h, 8, keys, values, found);
	expect((n >= 0 && n <= 8) || n == -EINVAL || n == HASHTABLE_EDEADWRITER, "search_batch", n);
	uint64_t cursor = 0, entries = 0;
	unsigned char k[8], v[8];
	while ((rc = hashtable_iterate(h, &cursor, k, v)) == 1)
		expect(++entries <= st.slots, "iterate (more entries than slots)", rc);
	expect(rc == 0 || rc == HASHTABLE_EDEADWRITER || rc == -EINVAL || rc == -ENOMEM, "iterate", rc);
	uint64_t hist[8];
	rc = hashtable_probe_histogram(h, hist, 8);
	expect(rc == 0 || rc == -EINVAL || rc == -ENOMEM || rc == HASHTABLE_EDEADWRITER,
	       "probe_histogram", rc);
	rc = hashtable_verify(h);
	expect(rc == 0 || rc == HASHTABLE_ECORRUPT || rc == HASHTABLE_EDEADWRITER || rc == -EAGAIN ||
	       rc == -ENOMEM, "verify(RDONLY)", rc);
}

/* Whether the last call was refused because the writer lock is damaged. */
static int lock_refused(int rc)
{
	return rc == HASHTABLE_ECORRUPT && strstr(hashtable_last_error(), "writer lock") != NULL;
}

static void writer_calls(struct hashtable *h)
{
	unsigned char k[8], v[8] = {0};
	int rc = hashtable_verify(h);
	/* EDEADWRITER: read-only handles only */
	expect(rc == 0 || rc == HASHTABLE_ECORRUPT || rc == -ENOMEM, "verify(RDWR)", rc);
	if (lock_refused(rc))
		goto recover;
	key_of(3, k);
	rc = hashtable_update(h, k, v);
	expect(rc == 0 || rc == 1 || rc == -ENOMEM || rc == -EINVAL || rc == HASHTABLE_ECORRUPT,
	       "update", rc);
	key_of(NKEYS + 5, k);
	rc = hashtable_update(h, k, v);
	expect(rc == 0 || rc == 1 || rc == -ENOMEM || rc == -EINVAL || rc == HASHTABLE_ECORRUPT,
	       "update", rc);
	rc = hashtable_delete(h, k);
	expect(rc == 0 || rc == -1 || rc == -EINVAL || rc == HASHTABLE_ECORRUPT, "delete", rc);
recover:
	rc = hashtable_recover(h);
	expect(rc == 0 || rc == 1 || rc == HASHTABLE_ECORRUPT, "recover", rc);
}

static void opened(int flags)
{
	struct hashtable *h = hashtable_open_key(table_key, flags);
	if (!h) {
		int e = errno;
		/* EIDRM: the root names a data segment that is gone (hashtable.h,
		 * "Every call that reads a handle's table may also fail ..."). */
		expect(e == ENOENT || e == EPROTO || e == EACCES || e == EINVAL || e == ENOMEM ||
		       e == EIDRM,
		       flags ? "open(RDONLY) errno" : "open(RDWR) errno", e);
		return;
	}
	if (flags == HASHTABLE_RDONLY)
		readers(h);
	else if (writers)
		writer_calls(h);
	int rc = hashtable_close(h);
	expect(rc == 0, "close", rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	image_from_input(data, size);
	opened(HASHTABLE_RDONLY);
	opened(0);
	return 0;
}
