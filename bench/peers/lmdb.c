/* LMDB: keys sorted by memcmp order and appended (MDB_APPEND) in a
 * write-mapped environment on /dev/shm without syncs; lookups are mdb_get in
 * one read-only transaction per repetition. */
#include "bench/peer.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct lmdb_ctx {
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	uint32_t ks, vs;
	char path[96], lock[104];
};

ALWAYS_INLINE int lmdb_get(void *c, const void *k, void *v)
{
	struct lmdb_ctx *l = c;
	MDB_val mk = { l->ks, (void *)(uintptr_t)k }, mv;
	int r = mdb_get(l->txn, l->dbi, &mk, &mv);

	if (r == MDB_NOTFOUND)
		return 0;
	if (r != 0 || mv.mv_size != l->vs)
		return -1;
	memcpy(v, mv.mv_data, l->vs);
	return 1;
}
DEFINE_KERNELS(lmdb, lmdb_get);

struct sortrec {
	uint64_t k;
	uint64_t i;
};

/* LSD radix sort by k; tmp is as large as a. */
static void radix_sort(struct sortrec *a, struct sortrec *tmp, uint64_t n)
{
	for (int shift = 0; shift < 64; shift += 8) {
		uint64_t cnt[257] = { 0 };

		for (uint64_t i = 0; i < n; i++)
			cnt[((a[i].k >> shift) & 0xff) + 1]++;
		for (int b = 0; b < 256; b++)
			cnt[b + 1] += cnt[b];
		for (uint64_t i = 0; i < n; i++)
			tmp[cnt[(a[i].k >> shift) & 0xff]++] = a[i];
		memcpy(a, tmp, n * sizeof *a);
	}
}

#define MDB_TRY(call)                                                          \
	do {                                                                   \
		int e_ = (call);                                               \
		if (e_)                                                        \
			die("%s: %s", #call, mdb_strerror(e_));                \
	} while (0)

static int lmdb_open(struct peer *p, const struct plan *pl, const struct dataset *d,
                     uint64_t *bad)
{
	struct lmdb_ctx *l = xmalloc(sizeof *l);
	struct sortrec *a = xmalloc(d->n * sizeof *a), *tmp = xmalloc(d->n * sizeof *a);
	unsigned char key[MAX_KEY], val[MAX_VALUE];
	MDB_envinfo info;
	MDB_stat ms;
	uint64_t t0, t = 0;

	(void)pl;
	l->ks = d->ks;
	l->vs = d->vs;
	snprintf(l->path, sizeof l->path, "/dev/shm/shmkv-bench.%d.mdb", (int)getpid());
	snprintf(l->lock, sizeof l->lock, "%s-lock", l->path);
	unlink(l->path);
	unlink(l->lock);
	reg_file(l->path, 1);
	reg_file(l->lock, 1);
	for (uint64_t i = 0; i < d->n; i++) {
		a[i].k = __builtin_bswap64(key_word(i)); /* memcmp order */
		a[i].i = i;
	}
	radix_sort(a, tmp, d->n);
	free(tmp);
	MDB_TRY(mdb_env_create(&l->env));
	MDB_TRY(mdb_env_set_mapsize(l->env, (size_t)(d->n * (d->ks + d->vs + 16) * 2 + (64u << 20))));
	MDB_TRY(mdb_env_open(l->env, l->path, MDB_NOSUBDIR | MDB_WRITEMAP | MDB_NOSYNC |
	                     MDB_NOMETASYNC | MDB_MAPASYNC | MDB_NORDAHEAD, 0600));
	for (uint64_t i = 0; i < d->n;) {
		MDB_txn *txn;
		uint64_t end = i + 100000 < d->n ? i + 100000 : d->n;

		t0 = tick();
		MDB_TRY(mdb_txn_begin(l->env, NULL, 0, &txn));
		if (i == 0)
			MDB_TRY(mdb_dbi_open(txn, NULL, 0, &l->dbi));
		for (; i < end; i++) {
			MDB_val mk = { d->ks, key }, mv = { d->vs, val };

			key_of(d->ks, a[i].i, key);
			value_of(d, a[i].i, 0, val);
			if (mdb_put(txn, l->dbi, &mk, &mv, MDB_APPEND) != 0)
				++*bad;
		}
		MDB_TRY(mdb_txn_commit(txn));
		t += tick() - t0;
	}
	free(a);
	MDB_TRY(mdb_env_info(l->env, &info));
	MDB_TRY(mdb_env_stat(l->env, &ms));
	p->bytes = (double)(info.me_last_pgno + 1) * ms.ms_psize;
	p->build_ns = (double)t / (double)d->n;
	MDB_TRY(mdb_txn_begin(l->env, NULL, MDB_RDONLY, &l->txn));
	p->ctx = l;
	return 0;
}

static void lmdb_close(struct peer *p)
{
	struct lmdb_ctx *l = p->ctx;

	mdb_txn_abort(l->txn);
	mdb_env_close(l->env);
	unlink(l->path);
	unlink(l->lock);
	reg_file(l->path, 0);
	reg_file(l->lock, 0);
	free(l);
}

const struct peer_ops lmdb_peer = {
	.name = "LMDB",
	.label = "LMDB",
	.note = "mdb_get, read-only txn",
	.bytes_note = "pages in use (last page + 1) x page size",
	.kernels = &lmdb_kernels,
	.scale = 8,
	.open = lmdb_open,
	.close = lmdb_close,
};
