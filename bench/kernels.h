/*
 * The lookup kernels every engine (shmkv and each peer) is measured with.
 * Each is written once, here, over an engine's get(); DEFINE_KERNELS makes
 * one copy of the four per engine, in the engine's own file, with its get()
 * inlined, so that every engine runs the same loop and answer check and only
 * the lookup differs.
 */
#ifndef SHMKV_BENCH_KERNELS_H
#define SHMKV_BENCH_KERNELS_H

#include "bench/bench.h"

/* get(): 1 found (value copied to val), 0 absent, < 0 error. */
typedef int (*get_fn)(void *ctx, const void *key, void *val);

/* Independent present keys: the throughput mode. */
ALWAYS_INLINE uint64_t k_thr_hit(get_fn get, void *c, const struct dataset *d,
                                 int dist, uint64_t m, uint64_t *bad)
{
	const unsigned char *k = d->qkeys[dist];
	const uint32_t *ix = d->qidx[dist];
	const uint64_t *ex = d->qexp[dist];
	unsigned char val[MAX_VALUE] __attribute__((aligned(64)));
	uint64_t wrong = 0, t0 = tick();

	for (uint64_t q = 0; q < m; q++, k += d->ks) {
		int r = get(c, k, val);

		wrong += (r != 1) | value_wrong(val, d->vs, ex[q], ix[q]);
	}
	t0 = tick() - t0;
	*bad += wrong;
	return t0;
}

ALWAYS_INLINE uint64_t k_thr_miss(get_fn get, void *c, const struct dataset *d,
                                  uint64_t m, uint64_t *bad)
{
	const unsigned char *k = d->mkeys;
	unsigned char val[MAX_VALUE] __attribute__((aligned(64)));
	uint64_t wrong = 0, t0 = tick();

	for (uint64_t q = 0; q < m; q++, k += d->ks)
		wrong += get(c, k, val) != 0;
	t0 = tick() - t0;
	*bad += wrong;
	return t0;
}

/* A chain: the next key's index comes out of the value just read. */
ALWAYS_INLINE uint64_t k_lat_hit(get_fn get, void *c, const struct dataset *d,
                                 int dist, uint64_t steps, uint64_t *state,
                                 uint64_t *bad)
{
	unsigned char key[MAX_KEY], val[MAX_VALUE] __attribute__((aligned(64)));
	uint64_t i = *state, wrong = 0, t0 = tick();

	for (uint64_t s = 0; s < steps; s++) {
		int64_t nx;

		key_of(d->ks, i, key);
		nx = get(c, key, val) == 1 ? value_check(val, d->vs, i) : -1;
		if (nx < 0) { /* wrong: count it, and go on along the cycle */
			wrong++;
			nx = d->next ? d->next[i] : (i + 1) % d->n;
		}
		i = dist == ZIPF ? d->zlut[((uint64_t)nx ^ s) & ((1u << ZLUT_BITS) - 1)]
		                 : (uint64_t)nx;
	}
	t0 = tick() - t0;
	*state = i;
	*bad += wrong;
	return t0;
}

/* A miss yields no value to chain on: lfence keeps misses from overlapping. */
ALWAYS_INLINE uint64_t k_lat_miss(get_fn get, void *c, const struct dataset *d,
                                  uint64_t steps, uint64_t *state,
                                  uint64_t *bad)
{
	unsigned char key[MAX_KEY], val[MAX_VALUE] __attribute__((aligned(64)));
	struct rng r = { *state };
	uint64_t wrong = 0, t0 = tick();

	for (uint64_t s = 0; s < steps; s++) {
		key_of(d->ks, d->n + (rng_next(&r) >> 40), key);
		wrong += get(c, key, val) != 0;
		serialise();
	}
	t0 = tick() - t0;
	*state = r.s;
	*bad += wrong;
	return t0;
}

struct kernels {
	uint64_t (*thr_hit)(void *, const struct dataset *, int, uint64_t, uint64_t *);
	uint64_t (*thr_miss)(void *, const struct dataset *, uint64_t, uint64_t *);
	uint64_t (*lat_hit)(void *, const struct dataset *, int, uint64_t, uint64_t *, uint64_t *);
	uint64_t (*lat_miss)(void *, const struct dataset *, uint64_t, uint64_t *, uint64_t *);
};

/* One copy of each kernel per engine, with its get() inlined:
 * DEFINE_KERNEL_FUNCS makes name_thr_hit, name_thr_miss, name_lat_hit and
 * name_lat_miss (bench/run.sh's profile mode finds shm_* by these names),
 * KERNELS_OF(name) is the struct kernels of them, and DEFINE_KERNELS makes
 * both, the struct as the file's static name_kernels. */
#define DEFINE_KERNEL_FUNCS(name, get)                                         \
	static uint64_t name##_thr_hit(void *c, const struct dataset *d,       \
	                               int s, uint64_t m, uint64_t *b)         \
	{ return k_thr_hit(get, c, d, s, m, b); }                              \
	static uint64_t name##_thr_miss(void *c, const struct dataset *d,      \
	                                uint64_t m, uint64_t *b)               \
	{ return k_thr_miss(get, c, d, m, b); }                                \
	static uint64_t name##_lat_hit(void *c, const struct dataset *d,       \
	                               int s, uint64_t m, uint64_t *st,        \
	                               uint64_t *b)                            \
	{ return k_lat_hit(get, c, d, s, m, st, b); }                          \
	static uint64_t name##_lat_miss(void *c, const struct dataset *d,      \
	                                uint64_t m, uint64_t *st, uint64_t *b) \
	{ return k_lat_miss(get, c, d, m, st, b); }

#define KERNELS_OF(name) \
	{ name##_thr_hit, name##_thr_miss, name##_lat_hit, name##_lat_miss }

#define DEFINE_KERNELS(name, get) \
	DEFINE_KERNEL_FUNCS(name, get) \
	static const struct kernels name##_kernels = KERNELS_OF(name)

#endif
