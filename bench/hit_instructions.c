/* Instructions per lookup, for callgrind: fills a small 8-byte-key table
 * and searches its keys `rounds` times; `valgrind --tool=callgrind` of
 * this program, divided by the search count, is the cost of one hit on
 * the fast path (and of a miss, with search_misses).
 *   valgrind --tool=callgrind --toggle-collect=search_hits build/hit_instructions
 * and of a key of a batched lookup (hashtable_search_batch, batches of
 * `batch` keys, default 128), with --toggle-collect=search_batch_hits.
 * Other shapes: a key and value width after the batch size (keys i,
 * little-endian in the key's first bytes), counted the same way; batch
 * hits of them with --toggle-collect=search_batch_hits too.
 * Usage: hit_instructions [keys [rounds [batch [key_size value_size]]]] */
#include "hashtable.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>

static inline long search_all(struct hashtable *h, uint64_t keys, int rounds, int miss)
{
	long found = 0;
	for (int r = 0; r < rounds; r++)
		for (uint64_t i = 1; i <= keys; i++) {
			uint64_t k = miss ? i + keys * 2 : i, v;
			found += hashtable_search(h, &k, &v) == 0;
		}
	return found;
}

/* Apart, so that callgrind's --toggle-collect can count each alone. */
static long __attribute__((noinline)) search_hits(struct hashtable *h, uint64_t keys, int rounds)
{
	return search_all(h, keys, rounds, 0);
}

static long __attribute__((noinline)) search_misses(struct hashtable *h, uint64_t keys, int rounds)
{
	return (long)keys * rounds - search_all(h, keys, rounds, 1);
}

/* The same keys in batches of b (the last one shorter). */
static long __attribute__((noinline)) search_batch_hits(struct hashtable *h, uint64_t keys,
                                                        int rounds, size_t b)
{
	uint64_t *k = malloc(b * sizeof *k), *v = malloc(b * sizeof *v);
	int *found = malloc(b * sizeof *found);
	long hits = 0;
	if (!k || !v || !found)
		abort();
	for (int r = 0; r < rounds; r++)
		for (uint64_t i = 1; i <= keys; i += b) {
			size_t n = keys - i + 1 < b ? (size_t)(keys - i + 1) : b;
			for (size_t j = 0; j < n; j++)
				k[j] = i + j;
			long got = hashtable_search_batch(h, n, k, v, found);
			hits += got > 0 ? got : 0;
		}
	free(k);
	free(v);
	free(found);
	return hits;
}

/* A key of ks bytes for i: i's low bytes, little-endian, then zeros. */
static void shape_key(unsigned char *k, uint32_t ks, uint64_t i)
{
	for (uint32_t j = 0; j < ks; j++)
		k[j] = j < 8 ? (unsigned char)(i >> (8 * j)) : 0;
}

/* search_hits for a table of any widths: all keys made beforehand (kp, ks
 * bytes apart), so that only the search is counted. */
static long __attribute__((noinline)) search_shape_hits(struct hashtable *h, uint64_t keys,
                                                        int rounds, const unsigned char *kp,
                                                        uint32_t ks)
{
	unsigned char v[64];
	long found = 0;
	for (int r = 0; r < rounds; r++)
		for (uint64_t i = 0; i < keys; i++)
			found += hashtable_search(h, (void *)(uintptr_t)(kp + i * ks), v) == 0;
	return found;
}

static long __attribute__((noinline)) search_shape_batch_hits(struct hashtable *h,
                                                              uint64_t keys, int rounds,
                                                              size_t b, const unsigned char *kp,
                                                              uint32_t ks, uint32_t vs)
{
	unsigned char *v = malloc(b * vs + 1);
	int *found = malloc(b * sizeof *found);
	long hits = 0;
	if (!v || !found)
		abort();
	for (int r = 0; r < rounds; r++)
		for (uint64_t i = 0; i < keys; i += b) {
			size_t n = keys - i < b ? (size_t)(keys - i) : b;
			long got = hashtable_search_batch(h, n, kp + i * ks, v, found);
			hits += got > 0 ? got : 0;
		}
	free(v);
	free(found);
	return hits;
}

/* The count for a table of ks/vs-byte keys and values: 0 if every key
 * was found, else 1. */
static int shape_main(uint64_t keys, int rounds, size_t batch, uint32_t ks, uint32_t vs)
{
	if (ks < 3 || ks > 64 || vs > 64) {
		fprintf(stderr, "hit_instructions: key_size 3-64 and value_size 0-64 only\n");
		return 1;
	}
	struct hashtable_config cfg = {.ipc_key = IPC_PRIVATE, .entries = keys, .max_load = 0.8,
	                               .key_size = ks, .value_size = vs};
	struct hashtable *h;
	int rc = hashtable_create_config(&cfg, &h);
	if (rc) {
		fprintf(stderr, "hit_instructions: %s\n", hashtable_strerror(rc));
		return 1;
	}
	hashtable_unlink(h);
	unsigned char *kp = malloc(keys * ks), v[64] = {0};
	if (!kp)
		abort();
	for (uint64_t i = 0; i < keys; i++) {
		shape_key(kp + i * ks, ks, i + 1);
		memcpy(v, &i, vs < 8 ? vs : 8);
		hashtable_update(h, kp + i * ks, v);
	}
	long hits = search_shape_hits(h, keys, rounds, kp, ks);
	long batched = batch ? search_shape_batch_hits(h, keys, rounds, batch, kp, ks, vs) : 0;
	free(kp);
	printf("%u/%u: %ld hits, %ld batched hits\n", ks, vs, hits, batched);
	hashtable_close(h);
	return hits == (long)keys * rounds && (!batch || batched == (long)keys * rounds) ? 0 : 1;
}

int main(int argc, char **argv)
{
	uint64_t keys = argc > 1 ? strtoull(argv[1], NULL, 0) : 10000;
	int rounds = argc > 2 ? atoi(argv[2]) : 10;
	size_t batch = argc > 3 ? strtoull(argv[3], NULL, 0) : 128;
	if (argc > 5)
		return shape_main(keys, rounds, batch, (uint32_t)strtoul(argv[4], NULL, 0),
		                  (uint32_t)strtoul(argv[5], NULL, 0));
	struct hashtable_config cfg = {.ipc_key = IPC_PRIVATE, .entries = keys, .max_load = 0.8,
	                               .key_size = 8, .value_size = 8};
	struct hashtable *h;
	int rc = hashtable_create_config(&cfg, &h);
	if (rc) {
		fprintf(stderr, "hit_instructions: %s\n", hashtable_strerror(rc));
		return 1;
	}
	hashtable_unlink(h); /* IPC_PRIVATE: gone when we detach */
	for (uint64_t i = 1; i <= keys; i++) {
		uint64_t v = i * 3;
		hashtable_update(h, &i, &v);
	}
	long hits = search_hits(h, keys, rounds);
	long misses = search_misses(h, keys, rounds);
	long batched = batch ? search_batch_hits(h, keys, rounds, batch) : 0;
	printf("%ld hits, %ld misses, %ld batched hits\n", hits, misses, batched);
	hashtable_close(h);
	return hits == (long)keys * rounds && misses == (long)keys * rounds &&
	               (!batch || batched == (long)keys * rounds)
	       ? 0 : 1;
}
