/* shmkv itself, as the benchmark drives it: tables at fresh IPC keys that
 * the cleanup removes by id, the lookup kernels over hashtable_search, and
 * the batched lookup and write loops. */
#include "bench/measure.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static key_t next_ipc_key(void)
{
	static unsigned seq;

	return (key_t)(0x5b000000u | ((unsigned)getpid() & 0xffffu) << 8 |
	               (seq++ & 0xffu));
}

int table_create(const struct dataset *d, double lf, size_t cap, int flags,
                 struct hashtable **out)
{
	struct hashtable_config cfg;
	int rc = -EEXIST;

	for (int tries = 0; tries < 256 && rc == -EEXIST; tries++) {
		sigset_t old;

		memset(&cfg, 0, sizeof cfg);
		cfg.ipc_key = next_ipc_key();
		cfg.capacity = cap;
		cfg.max_load = lf;
		cfg.key_size = d->ks;
		cfg.value_size = d->vs;
		cfg.flags = HASHTABLE_EXCL | flags;
		block_signals(&old);
		rc = hashtable_create_config(&cfg, out);
		if (rc == 0)
			reg_seg(hashtable_shmid(*out), 1);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	return rc;
}

void table_destroy(struct hashtable *h)
{
	int id = hashtable_shmid(h), rc = hashtable_unlink(h);

	if (rc != 0)
		fprintf(stderr, PROG ": hashtable_unlink: %s\n", hashtable_strerror(rc));
	else
		reg_seg(id, 0);
	hashtable_close(h);
}

key_t table_key(struct hashtable *h)
{
	struct hashtable_stats st;

	return hashtable_stats(h, &st) == 0 ? st.ipc_key : (key_t)-1;
}

ALWAYS_INLINE int shm_get(void *c, const void *k, void *v)
{
	int r = hashtable_search(c, (void *)(uintptr_t)k, v);

	return r == 0 ? 1 : r == -1 ? 0 : (r < 0 ? r : -EIO);
}
DEFINE_KERNEL_FUNCS(shm, shm_get)
const struct kernels shm_kernels = KERNELS_OF(shm);

__attribute__((noinline)) uint64_t
shm_batch(struct hashtable *h, const struct dataset *d, int dist, size_t b,
          uint64_t *bad)
{
	const unsigned char *k = d->qkeys[dist];
	const uint32_t *ix = d->qidx[dist];
	unsigned char *val = xmalloc(b * d->vs);
	int found[1024];
	uint64_t wrong = 0, m = d->nq / b * b, t0 = tick();

	for (uint64_t q = 0; q < m; q += b) {
		long r = hashtable_search_batch(h, b, k + q * d->ks, val, found);

		wrong += r != (long)b;
		for (size_t i = 0; i < b; i++)
			wrong += (found[i] != 0) |
			         value_wrong(val + i * d->vs, d->vs, d->qexp[dist][q + i], ix[q + i]);
	}
	t0 = tick() - t0;
	free(val);
	*bad += wrong;
	return t0;
}

/* Builds keys [lo, hi) with variant 0; returns ns.  Insert must return 0. */
uint64_t shm_fill(struct hashtable *h, const struct dataset *d,
                  uint64_t lo, uint64_t hi, uint64_t *bad)
{
	unsigned char key[MAX_KEY], val[MAX_VALUE];
	uint64_t wrong = 0, t0 = tick();

	for (uint64_t i = lo; i < hi; i++) {
		int r;

		key_of(d->ks, i, key);
		value_of(d, i, 0, val);
		r = hashtable_update(h, key, val);
		if (r != 0 && wrong++ == 0)
			fprintf(stderr, PROG ": insert %llu: %d %s\n",
			        (unsigned long long)i, r, hashtable_strerror(r));
	}
	t0 = tick() - t0;
	*bad += wrong;
	return t0;
}

uint64_t shm_updates(struct hashtable *h, const struct dataset *d,
                     uint64_t m, int variant, uint64_t *bad)
{
	unsigned char *vals;
	const uint32_t *ix = d->qidx[UNIFORM];
	const unsigned char *k = d->qkeys[UNIFORM];
	uint64_t wrong = 0, t0;

	if (m > d->nq)
		m = d->nq;
	vals = xmalloc(m * d->vs); /* made outside the clock */
	for (uint64_t q = 0; q < m; q++)
		value_of(d, ix[q], variant, vals + q * d->vs);
	t0 = tick();
	for (uint64_t q = 0; q < m; q++)
		wrong += hashtable_update(h, (void *)(uintptr_t)(k + q * d->ks),
		                          vals + q * d->vs) != 1;
	t0 = tick() - t0;
	free(vals);
	*bad += wrong;
	return t0;
}

uint64_t shm_deletes(struct hashtable *h, const struct dataset *d,
                     uint64_t lo, uint64_t hi, uint64_t *bad)
{
	unsigned char key[MAX_KEY], val[MAX_VALUE];
	uint64_t wrong = 0, t0 = tick();

	for (uint64_t i = lo; i < hi; i++) {
		key_of(d->ks, i, key);
		wrong += hashtable_delete(h, key) != 0;
	}
	t0 = tick() - t0;
	for (uint64_t i = lo; i < hi; i += 7) { /* gone, and not resurrected */
		key_of(d->ks, i, key);
		wrong += hashtable_search(h, key, val) != -1;
	}
	*bad += wrong;
	return t0;
}
