/* The original MemKeyValue algorithm, as the yardstick issue 11 measures
 * shmkv against: one System V segment of packed [key][value] slots, no
 * buckets, open addressing by double hashing, the all-zero key marking an
 * empty slot, no synchronisation at all (readers and the writer share
 * nothing but the bytes), no journal, no deletes.
 *
 * Its source is not in this tree: this is a reconstruction from the
 * README's account of it ("the seed hashed only 4 and 8 bytes", "the
 * seed's `h >> 5 + 1` bound"), made as fast as that design allows so that
 * shmkv is compared with the algorithm, not with an accident: the hash is
 * one multiply-mix of the key's first 8 bytes (at most), the step is
 * (h >> 6) + 1 (what `h >> 5 + 1` parses as) reduced into [1, slots - 1],
 * and the slot count is prime so that every step visits every slot.
 * Values are copied with memcpy; keys compared with memcmp. */
#include "bench/peer.h"
#include "bench/memkv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/shm.h>

struct memkv {
	unsigned char *slots;
	uint64_t nslots;
	uint32_t ks, vs, slot;
	int shmid;
	uint64_t probes; /* slots read by inserting every key: a hit's total */
	uint64_t count;
};

static int memkv_prime(uint64_t n)
{
	if (n < 2)
		return 0;
	for (uint64_t d = 2; d * d <= n; d++)
		if (n % d == 0)
			return 0;
	return 1;
}

ALWAYS_INLINE uint64_t memkv_hash(const struct memkv *m, const void *key)
{
	uint64_t w = 0;

	memcpy(&w, key, m->ks < 8 ? m->ks : 8);
	w *= 0x9e3779b97f4a7c15ull;
	return w ^ (w >> 29);
}

ALWAYS_INLINE int memkv_empty(const struct memkv *m, const unsigned char *p)
{
	static const unsigned char zero[MAX_KEY];

	return memcmp(p, zero, m->ks) == 0;
}

/* 1 found (value copied), 0 absent. */
ALWAYS_INLINE int memkv_get(void *c, const void *key, void *val)
{
	const struct memkv *m = c;
	uint64_t h = memkv_hash(m, key), i = h % m->nslots;
	uint64_t step = (h >> 6) % (m->nslots - 1) + 1;

	for (uint64_t probe = 0; probe < m->nslots; probe++) {
		const unsigned char *p = m->slots + i * m->slot;

		if (memcmp(p, key, m->ks) == 0) {
			memcpy(val, p + m->ks, m->vs);
			return 1;
		}
		if (memkv_empty(m, p))
			return 0;
		i += step;
		if (i >= m->nslots)
			i -= m->nslots;
	}
	return 0;
}
DEFINE_KERNELS(memkv, memkv_get);

/* 0 inserted or overwritten, -1 full. */
int memkv_put(struct memkv *m, const void *key, const void *val)
{
	uint64_t h = memkv_hash(m, key), i = h % m->nslots;
	uint64_t step = (h >> 6) % (m->nslots - 1) + 1;

	for (uint64_t probe = 0; probe < m->nslots; probe++) {
		unsigned char *p = m->slots + i * m->slot;

		m->probes++;
		if (memkv_empty(m, p)) {
			memcpy(p, key, m->ks);
			memcpy(p + m->ks, val, m->vs);
			m->count++;
			return 0;
		}
		if (memcmp(p, key, m->ks) == 0) {
			memcpy(p + m->ks, val, m->vs);
			return 0;
		}
		i += step;
		if (i >= m->nslots)
			i -= m->nslots;
	}
	return -1;
}

struct memkv *memkv_new(uint64_t n, double load, uint32_t ks, uint32_t vs, char *err,
                        size_t errlen)
{
	struct memkv *m = xmalloc(sizeof *m);
	uint64_t slots = (uint64_t)((double)n / load) + 2;

	memset(m, 0, sizeof *m);
	while (!memkv_prime(slots))
		slots++;
	m->nslots = slots;
	m->ks = ks;
	m->vs = vs;
	m->slot = ks + vs;
	m->shmid = shmget(IPC_PRIVATE, slots * m->slot, IPC_CREAT | 0600);
	if (m->shmid < 0) {
		snprintf(err, errlen, "shmget of %llu bytes: %s",
		         (unsigned long long)(slots * m->slot), strerror(errno));
		free(m);
		return NULL;
	}
	m->slots = shmat(m->shmid, NULL, 0);
	int attach_errno = errno;
	/* marked for removal at once: the kernel frees it when this process
	 * detaches or dies, so even a SIGKILL leaves nothing behind */
	shmctl(m->shmid, IPC_RMID, NULL);
	if (m->slots == (void *)-1)
		die("shmat of the memkv segment: %s", strerror(attach_errno));
	return m;
}

void memkv_free(struct memkv *m)
{
	if (!m)
		return;
	shmdt(m->slots); /* removed at creation: this frees it */
	free(m);
}

uint64_t memkv_fill(struct memkv *m, const struct dataset *d, uint64_t lo, uint64_t hi,
                    uint64_t *bad)
{
	unsigned char key[MAX_KEY], val[MAX_VALUE];
	uint64_t t0 = tick();

	for (uint64_t i = lo; i < hi; i++) {
		key_of(d->ks, i, key);
		value_of(d, i, 0, val);
		*bad += memkv_put(m, key, val) != 0;
	}
	return tick() - t0;
}

double memkv_hit_probes(const struct memkv *m)
{
	return m->count ? (double)m->probes / (double)m->count : 0;
}

double memkv_bytes(const struct memkv *m)
{
	return (double)m->nslots * m->slot;
}

const struct kernels *memkv_kernels_of(void)
{
	return &memkv_kernels;
}

static int memkv_open(struct peer *p, const struct plan *pl, const struct dataset *d,
                      uint64_t *bad)
{
	struct memkv *m = memkv_new(d->n, LOADS[REF_LOAD], d->ks, d->vs, p->err, sizeof p->err);

	(void)pl;
	if (!m)
		return -1;
	p->build_ns = (double)memkv_fill(m, d, 0, d->n, bad) / (double)d->n;
	p->bytes = memkv_bytes(m);
	p->ctx = m;
	return 0;
}

static void memkv_close(struct peer *p)
{
	memkv_free(p->ctx);
}

const struct peer_ops memkv_peer = {
	.name = "MemKeyValue (original algorithm, reconstructed)",
	.label = "memkv",
	.note = "packed slots, double hashing, no synchronisation, load 0.8",
	.bytes_note = "its segment: slots of key + value bytes at load 0.8",
	.kernels = &memkv_kernels,
	.scale = 1,
	.open = memkv_open,
	.close = memkv_close,
};
