/* Instructions per lookup, for callgrind: fills a small 8-byte-key table
 * and searches its keys `rounds` times; `valgrind --tool=callgrind` of
 * this program, divided by the search count, is the cost of one hit on
 * the fast path (and of a miss, with search_misses).
 *   valgrind --tool=callgrind --toggle-collect=search_hits build/hit_instructions
 * Usage: hit_instructions [keys [rounds]] */
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

int main(int argc, char **argv)
{
	uint64_t keys = argc > 1 ? strtoull(argv[1], NULL, 0) : 10000;
	int rounds = argc > 2 ? atoi(argv[2]) : 10;
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
	printf("%ld hits, %ld misses\n", hits, misses);
	hashtable_close(h);
	return hits == (long)keys * rounds && misses == (long)keys * rounds ? 0 : 1;
}
