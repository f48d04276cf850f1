/* build_loop: the private builder against the update loop and a plain table.
 *
 *   build_loop builder BINFILE KEY_SIZE VALUE_SIZE [IPC_KEY]
 *       creates an empty table sized for the file's records at load 0.8 (as
 *       update_loop does), then builds a generation of every record:
 *       hashtable_replace_begin + hashtable_builder_put per record +
 *       hashtable_replace_commit; removes the table.  Prints
 *       "records N seconds S rate R begin B puts P commit C during D after A":
 *       S the whole build (begin + puts + commit), B, P, C its parts, D and A
 *       the bytes of the table's segments in /proc/sysvipc/shm just before
 *       the commit (both generations) and after it.
 *   build_loop batch BINFILE KEY_SIZE VALUE_SIZE [IPC_KEY]
 *       the same with hashtable_builder_put_batch, 256 records a call.
 *   build_loop plain BINFILE
 *       the baseline the issue names: 8-byte keys and values inserted into a
 *       malloc'd open-addressing array (linear probing, key 0 empty) with as
 *       many slots as the table has for the same records at load 0.8; the
 *       time includes the allocation and its page faults, as the builder's
 *       includes the segment's.  Prints "records N seconds S rate R" and
 *       exits 1 if a lookup of any record then fails.
 *   build_loop readers BINFILE KEY_SIZE VALUE_SIZE [IPC_KEY]
 *       builds the table, then a reader process searches random records
 *       while this one waits 1.5 s, replaces the whole table (the same
 *       records) and waits 1.5 s again.  Prints the reader's lookups per CPU
 *       second and per wall second before and during the replace, the
 *       replace's time, and the segment bytes before, during and after.
 *
 * Plain C against the library's API only: bench/load_bench.sh runs it. */
#include "hashtable.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct records {
	const unsigned char *d;
	size_t len, rs;
	uint64_t n;
	uint32_t ks, vs;
};

static int map_records(const char *path, uint32_t ks, uint32_t vs, struct records *r)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(path);
		return -1;
	}
	r->ks = ks;
	r->vs = vs;
	r->rs = (size_t)ks + vs;
	r->len = (size_t)st.st_size;
	r->n = r->len / r->rs;
	r->d = mmap(NULL, r->len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (r->d == MAP_FAILED) {
		perror("mmap");
		return -1;
	}
	return 0;
}

/* Sum of the bytes of the table's segments, as /proc/sysvipc/shm lists them
 * (a segment the kernel has freed is not listed). */
static uint64_t segment_bytes(struct hashtable *h)
{
	struct hashtable_segment_info seg[16];
	long n = hashtable_segments(h, seg, 16);
	uint64_t sum = 0;
	FILE *f = fopen("/proc/sysvipc/shm", "r");
	char line[512];
	if (!f || !fgets(line, sizeof line, f)) {
		if (f)
			fclose(f);
		return 0;
	}
	while (fgets(line, sizeof line, f)) {
		long key;
		int id;
		unsigned perms;
		unsigned long size;
		if (sscanf(line, "%ld %d %o %lu", &key, &id, &perms, &size) != 4)
			continue;
		for (long i = 0; i < n && i < 16; i++)
			if (seg[i].shmid == id)
				sum += size;
	}
	fclose(f);
	return sum;
}

static struct hashtable *create_empty(const struct records *r, key_t key)
{
	struct hashtable_config cfg = {0};
	cfg.ipc_key = key;
	cfg.key_size = r->ks;
	cfg.value_size = r->vs;
	cfg.entries = r->n;
	cfg.max_load = 0.8;
	cfg.flags = HASHTABLE_EXCL;
	struct hashtable *h;
	int rc = hashtable_create_config(&cfg, &h);
	if (rc < 0) {
		fprintf(stderr, "build_loop: create: %s %s\n", hashtable_strerror(rc),
		        hashtable_last_error());
		return NULL;
	}
	return h;
}

struct build_times {
	double begin, puts, commit;
	uint64_t during, after;
};

/* `batch` mode: hashtable_builder_put_batch instead of one put a record. */
static int use_batch;
#define PUT_BATCH 256

/* The records in batches of PUT_BATCH, split into the key and value arrays
 * the call takes (as shmkv-load does).  Returns the records not put. */
static uint64_t put_batches(struct hashtable_builder *b, const struct records *r)
{
	static unsigned char keys[PUT_BATCH * 1024], values[PUT_BATCH * 1024];
	if (r->ks > 1024 || r->vs > 1024)
		return r->n;
	for (uint64_t i = 0; i < r->n; i += PUT_BATCH) {
		size_t m = r->n - i < PUT_BATCH ? (size_t)(r->n - i) : PUT_BATCH;
		for (size_t j = 0; j < m; j++) {
			memcpy(keys + j * r->ks, r->d + (i + j) * r->rs, r->ks);
			memcpy(values + j * r->vs, r->d + (i + j) * r->rs + r->ks, r->vs);
		}
		size_t applied;
		if (hashtable_builder_put_batch(b, m, keys, values, &applied) < 0)
			return r->n - i - applied;
	}
	return 0;
}

/* One generation of every record; 0 or -1 (message printed). */
static int build(struct hashtable *h, const struct records *r, struct build_times *t)
{
	struct hashtable_builder *b;
	double t0 = now();
	int rc = hashtable_replace_begin(h, NULL, &b);
	if (rc) {
		fprintf(stderr, "build_loop: replace_begin: %s %s\n", hashtable_strerror(rc),
		        hashtable_last_error());
		return -1;
	}
	double t1 = now();
	uint64_t failed = 0;
	if (use_batch)
		failed = put_batches(b, r);
	else
		for (uint64_t i = 0; i < r->n; i++)
			if (hashtable_builder_put(b, r->d + i * r->rs, r->d + i * r->rs + r->ks) < 0)
				failed++;
	double t2 = now();
	t->during = segment_bytes(h);
	double t3 = now();
	rc = hashtable_replace_commit(b);
	double t4 = now();
	if (rc) {
		fprintf(stderr, "build_loop: replace_commit: %s %s\n", hashtable_strerror(rc),
		        hashtable_last_error());
		return -1;
	}
	t->after = segment_bytes(h);
	t->begin = t1 - t0;
	t->puts = t2 - t1;
	t->commit = t4 - t3;
	if (failed) {
		fprintf(stderr, "build_loop: %" PRIu64 " builder_put calls failed\n", failed);
		return -1;
	}
	return 0;
}

static int run_builder(const struct records *r, key_t key)
{
	struct hashtable *h = create_empty(r, key);
	if (!h)
		return 1;
	struct build_times t;
	int rc = build(h, r, &t);
	hashtable_unlink(h);
	hashtable_close(h);
	if (rc)
		return 1;
	double s = t.begin + t.puts + t.commit;
	printf("records %" PRIu64 " seconds %.3f rate %.0f begin %.4f puts %.3f commit %.6f "
	       "during %" PRIu64 " after %" PRIu64 "\n",
	       r->n, s, (double)r->n / s, t.begin, t.puts, t.commit, t.during, t.after);
	return 0;
}

/* ---- the plain in-process table ------------------------------------------ */

static inline uint64_t fmix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

struct slot {
	uint64_t key, value;
};

static inline uint64_t home(uint64_t key, uint64_t nslots)
{
	return (uint64_t)(((unsigned __int128)fmix64(key) * nslots) >> 64);
}

static int run_plain(const struct records *r)
{
	if (r->ks != 8 || r->vs != 8) {
		fprintf(stderr, "build_loop plain: 8-byte keys and values only\n");
		return 2;
	}
	uint64_t nslots = (uint64_t)((double)r->n / 0.8) + 1;
	double t0 = now();
	struct slot *a = calloc(nslots, sizeof *a);
	if (!a) {
		perror("calloc");
		return 1;
	}
	for (uint64_t i = 0; i < r->n; i++) {
		uint64_t k, v;
		memcpy(&k, r->d + i * 16, 8);
		memcpy(&v, r->d + i * 16 + 8, 8);
		uint64_t j = home(k, nslots);
		while (a[j].key != 0 && a[j].key != k)
			j = j + 1 == nslots ? 0 : j + 1;
		a[j].key = k;
		a[j].value = v;
	}
	double el = now() - t0;
	uint64_t bad = 0;
	for (uint64_t i = 0; i < r->n; i++) {
		uint64_t k, v;
		memcpy(&k, r->d + i * 16, 8);
		memcpy(&v, r->d + i * 16 + 8, 8);
		uint64_t j = home(k, nslots);
		while (a[j].key != 0 && a[j].key != k)
			j = j + 1 == nslots ? 0 : j + 1;
		bad += a[j].key != k || a[j].value != v;
	}
	free(a);
	printf("records %" PRIu64 " seconds %.3f rate %.0f\n", r->n, el, (double)r->n / el);
	if (bad)
		fprintf(stderr, "build_loop plain: %" PRIu64 " lookups failed\n", bad);
	return bad != 0;
}

/* ---- readers during a replace ---------------------------------------------- */

struct phase_count {
	_Atomic uint64_t lookups, bad;
	_Atomic uint64_t cpu_ns, wall_ns;
};

struct reader_block {
	_Atomic int phase; /* 0 before, 1 during the replace, 2 after, 3 stop */
	_Atomic int ready;
	struct phase_count c[3];
};

static void reader_child(struct hashtable *inherited, const struct records *r, key_t key,
                         struct reader_block *rb)
{
	/* a fork inherits the parent's attachments: left alone, the copy of
	 * the writer's mapping would pin the old generation until exit */
	hashtable_close(inherited);
	struct hashtable *h = hashtable_open_key(key, HASHTABLE_RDONLY);
	if (!h)
		_exit(90);
	uint64_t s = 88172645463325252ull, v[512];
	if (r->vs > sizeof v)
		_exit(91);
	atomic_store(&rb->ready, 1);
	for (;;) {
		int ph = atomic_load(&rb->phase);
		if (ph == 3)
			break;
		double c0 = cpu_now(), w0 = now();
		uint64_t bad = 0;
		for (int i = 0; i < 4096; i++) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			const unsigned char *rec = r->d + (s % r->n) * r->rs;
			if (hashtable_search(h, (void *)rec, v) != 0 || memcmp(v, rec + r->ks, r->vs))
				bad++;
		}
		if (atomic_load(&rb->phase) != ph)
			continue; /* the chunk straddled a phase change: counted nowhere */
		atomic_fetch_add(&rb->c[ph].lookups, 4096);
		atomic_fetch_add(&rb->c[ph].bad, bad);
		atomic_fetch_add(&rb->c[ph].cpu_ns, (uint64_t)((cpu_now() - c0) * 1e9));
		atomic_fetch_add(&rb->c[ph].wall_ns, (uint64_t)((now() - w0) * 1e9));
	}
	hashtable_close(h);
	_exit(0);
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int run_readers(const struct records *r, key_t key)
{
	struct hashtable *h = create_empty(r, key);
	if (!h)
		return 1;
	struct build_times t;
	if (build(h, r, &t)) {
		hashtable_unlink(h);
		hashtable_close(h);
		return 1;
	}
	uint64_t before_bytes = segment_bytes(h);
	struct reader_block *rb = mmap(NULL, sizeof *rb, PROT_READ | PROT_WRITE,
	                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rb == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(rb, 0, sizeof *rb);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		reader_child(h, r, key, rb);
	int rc = pid < 0;
	while (pid > 0 && !atomic_load(&rb->ready))
		sleep_s(0.001);
	sleep_s(1.5);
	atomic_store(&rb->phase, 1);
	double t0 = now();
	rc |= build(h, r, &t) != 0;
	double replace_s = now() - t0;
	atomic_store(&rb->phase, 2);
	sleep_s(1.5);
	uint64_t after_bytes = segment_bytes(h);
	atomic_store(&rb->phase, 3);
	if (pid > 0) {
		int st;
		waitpid(pid, &st, 0);
		rc |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	hashtable_unlink(h);
	hashtable_close(h);
	const char *name[3] = {"before", "during", "after"};
	for (int p = 0; p < 3; p++) {
		double l = (double)rb->c[p].lookups;
		printf("readers %s lookups %.0f per_cpu_s %.0f per_wall_s %.0f bad %" PRIu64 "\n",
		       name[p], l, l / ((double)rb->c[p].cpu_ns / 1e9),
		       l / ((double)rb->c[p].wall_ns / 1e9), (uint64_t)rb->c[p].bad);
		rc |= rb->c[p].bad != 0;
	}
	printf("replace seconds %.3f commit %.6f bytes before %" PRIu64 " during %" PRIu64
	       " after-commit %" PRIu64 " after-readers-moved %" PRIu64 "\n",
	       replace_s, t.commit, before_bytes, t.during, t.after, after_bytes);
	munmap(rb, sizeof *rb);
	return rc;
}

int main(int argc, char **argv)
{
	struct records r;
	key_t key = (key_t)(0x7eb10000 | (getpid() & 0xffff));
	if (argc == 3 && strcmp(argv[1], "plain") == 0)
		return map_records(argv[2], 8, 8, &r) ? 1 : run_plain(&r);
	if ((argc == 5 || argc == 6) &&
	    (strcmp(argv[1], "builder") == 0 || strcmp(argv[1], "batch") == 0 ||
	     strcmp(argv[1], "readers") == 0)) {
		use_batch = argv[1][1] == 'a';
		if (argc == 6)
			key = (key_t)strtoul(argv[5], NULL, 0);
		if (map_records(argv[2], (uint32_t)atoi(argv[3]), (uint32_t)atoi(argv[4]), &r))
			return 1;
		return argv[1][0] == 'b' ? run_builder(&r, key) : run_readers(&r, key);
	}
	fprintf(stderr, "usage: build_loop builder|batch BINFILE KEY_SIZE VALUE_SIZE [IPC_KEY]\n"
	                "       build_loop plain BINFILE\n"
	                "       build_loop readers BINFILE KEY_SIZE VALUE_SIZE [IPC_KEY]\n");
	return 2;
}
