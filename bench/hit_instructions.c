/* Instructions per lookup, for callgrind: fills a small 8-byte-key table
 * and searches its keys `rounds` times; `valgrind --tool=callgrind` of
 * this program, divided by the search count, is the cost of one hit on
 * the fast path (and of a miss, with search_misses).
 *   valgrind --tool=callgrind --toggle-collect=search_hits build/hit_instructions
 * and of a key of a batched lookup (hashtable_search_batch, batches of
 * `batch` keys, default 128), with --toggle-collect=search_batch_hits.
 * Usage: hit_instructions [keys [rounds [batch]]] */
#include "hashtable.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

int main(int argc, char **argv)
{
	uint64_t keys = argc > 1 ? strtoull(argv[1], NULL, 0) : 10000;
	int rounds = argc > 2 ? atoi(argv[2]) : 10;
	size_t batch = argc > 3 ? strtoull(argv[3], NULL, 0) : 128;
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
