/* update_loop: the baseline shmkv-load is measured against.
 *
 *   update_loop gen N BINFILE TSVFILE
 *       writes N records of 8-byte keys (distinct, never a sentinel) and
 *       8-byte values, as bin (raw little-endian) and as tsv with u64 decimal
 *       fields (what shmkv-load -E u64 reads).
 *   update_loop run BINFILE KEY_SIZE VALUE_SIZE [IPC_KEY]
 *       creates a table sized for the file's records at load 0.8 (as
 *       shmkv-load sizes one), maps the file and calls hashtable_update() on
 *       each record in a plain loop, then removes the table.  Prints the
 *       loop's time and rate on stdout: "records N seconds S rate R".
 *
 * Plain C against the library's API only: bench/load_bench.sh runs it. */
#include "hashtable.h"
#include "bench/splitmix.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *put_u64(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static int gen(uint64_t n, const char *binpath, const char *tsvpath)
{
	FILE *b = fopen(binpath, "w"), *t = fopen(tsvpath, "w");
	if (!b || !t) {
		perror("update_loop: gen");
		return 1;
	}
	static char bbuf[1 << 20], tbuf[1 << 20];
	setvbuf(b, bbuf, _IOFBF, sizeof bbuf);
	setvbuf(t, tbuf, _IOFBF, sizeof tbuf);
	uint64_t made = 0;
	for (uint64_t i = 0; made < n; i++) {
		uint64_t k = mix(i), v = i;
		if (k == 0 || k == UINT64_MAX)
			continue; /* the sentinels */
		unsigned char rec[16];
		for (int j = 0; j < 8; j++) {
			rec[j] = (unsigned char)(k >> (8 * j));
			rec[8 + j] = (unsigned char)(v >> (8 * j));
		}
		fwrite(rec, 1, sizeof rec, b);
		char line[48], *p = put_u64(line, k);
		*p++ = '\t';
		p = put_u64(p, v);
		*p++ = '\n';
		fwrite(line, 1, (size_t)(p - line), t);
		made++;
	}
	if (fclose(b) || fclose(t)) {
		perror("update_loop: gen");
		return 1;
	}
	return 0;
}

static int run(const char *path, uint32_t ks, uint32_t vs, key_t key)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(path);
		return 1;
	}
	size_t rs = (size_t)ks + vs, len = (size_t)st.st_size;
	uint64_t n = len / rs;
	unsigned char *d = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (d == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	struct hashtable_config cfg = { 0 };
	cfg.ipc_key = key;
	cfg.key_size = ks;
	cfg.value_size = vs;
	cfg.entries = n;
	cfg.max_load = 0.8;
	cfg.flags = HASHTABLE_EXCL;
	struct hashtable *h;
	int rc = hashtable_create_config(&cfg, &h);
	if (rc < 0) {
		fprintf(stderr, "update_loop: create: %s\n", hashtable_strerror(rc));
		return 1;
	}
	double t0 = now();
	uint64_t failed = 0;
	for (uint64_t i = 0; i < n; i++)
		if (hashtable_update(h, d + i * rs, d + i * rs + ks) < 0)
			failed++;
	double el = now() - t0;
	hashtable_unlink(h);
	hashtable_close(h);
	munmap(d, len);
	printf("records %" PRIu64 " seconds %.3f rate %.0f\n", n, el, (double)n / el);
	if (failed)
		fprintf(stderr, "update_loop: %" PRIu64 " updates failed\n", failed);
	return failed != 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "gen") == 0)
		return gen(strtoull(argv[2], NULL, 0), argv[3], argv[4]);
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "run") == 0)
		return run(argv[2], (uint32_t)atoi(argv[3]), (uint32_t)atoi(argv[4]),
		           argc == 6 ? (key_t)strtoul(argv[5], NULL, 0) : (key_t)(0x7eb00000 | (getpid() & 0xffff)));
	fprintf(stderr, "usage: update_loop gen N BINFILE TSVFILE\n"
	                "       update_loop run BINFILE KEY_SIZE VALUE_SIZE [IPC_KEY]\n");
	return 2;
}
