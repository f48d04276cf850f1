/* The key maker of the stand-alone benchmark programs (update_loop,
 * write_bench, gen_check): splitmix64's step and finaliser, a bijection on
 * 64-bit integers, so that distinct inputs give distinct, well-spread keys. */
#ifndef SHMKV_BENCH_SPLITMIX_H
#define SHMKV_BENCH_SPLITMIX_H

#include <stdint.h>

static inline uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

#endif
