/* ck_ht: in-process, SPMC.  8-byte keys and values go in the table itself
 * (CK_HT_MODE_DIRECT); wider ones are pointers into arrays
 * (CK_HT_MODE_BYTESTRING), as ck_ht requires. */
#include "bench/peer.h"

#include <ck_ht.h>
#include <stdbool.h>
#include <stdlib.h>

struct ckht_ctx {
	ck_ht_t ht;
	uint32_t ks, vs;
	unsigned char *keys, *vals; /* BYTESTRING storage */
	size_t map_bytes;
};

static size_t ck_live_bytes;

static void *ck_malloc_fn(size_t n)
{
	ck_live_bytes += n;
	return malloc(n);
}

static void *ck_realloc_fn(void *p, size_t old, size_t n, bool defer)
{
	(void)defer;
	ck_live_bytes += n - old;
	return realloc(p, n);
}

static void ck_free_fn(void *p, size_t n, bool defer)
{
	(void)defer;
	ck_live_bytes -= n;
	free(p);
}

static struct ck_malloc ck_alloc = { ck_malloc_fn, ck_realloc_fn, ck_free_fn };

ALWAYS_INLINE int ckd_get(void *c, const void *k, void *v)
{
	struct ckht_ctx *x = c;
	ck_ht_entry_t e;
	ck_ht_hash_t h;
	uintptr_t key, val;

	memcpy(&key, k, sizeof key);
	ck_ht_hash_direct(&h, &x->ht, key);
	ck_ht_entry_key_set_direct(&e, key);
	if (!ck_ht_get_spmc(&x->ht, h, &e))
		return 0;
	val = ck_ht_entry_value_direct(&e);
	memcpy(v, &val, sizeof val);
	return 1;
}
DEFINE_KERNELS(ckd, ckd_get);

ALWAYS_INLINE int ckb_get(void *c, const void *k, void *v)
{
	struct ckht_ctx *x = c;
	ck_ht_entry_t e;
	ck_ht_hash_t h;

	ck_ht_hash(&h, &x->ht, k, (uint16_t)x->ks);
	ck_ht_entry_key_set(&e, k, (uint16_t)x->ks);
	if (!ck_ht_get_spmc(&x->ht, h, &e))
		return 0;
	memcpy(v, ck_ht_entry_value(&e), x->vs);
	return 1;
}
DEFINE_KERNELS(ckb, ckb_get);

static int ckht_open(struct peer *p, const struct plan *pl, const struct dataset *d,
                     uint64_t *bad)
{
	struct ckht_ctx *x = xmalloc(sizeof *x);
	int direct = d->ks == 8 && d->vs == 8;
	uint64_t slots = 2, t0;

	(void)pl;
	memset(x, 0, sizeof *x);
	x->ks = d->ks;
	x->vs = d->vs;
	while (slots < 2 * d->n) /* ck_ht keeps its load at most 0.5 */
		slots <<= 1;
	ck_live_bytes = 0;
	if (!direct) {
		x->keys = xmalloc(d->n * d->ks);
		x->vals = xmalloc(d->n * d->vs);
	}
	t0 = tick();
	if (!ck_ht_init(&x->ht, direct ? CK_HT_MODE_DIRECT : CK_HT_MODE_BYTESTRING,
	                NULL, &ck_alloc, slots, 0x5eed))
		die("ck_ht_init failed");
	for (uint64_t i = 0; i < d->n; i++) {
		ck_ht_entry_t e;
		ck_ht_hash_t h;

		if (direct) {
			unsigned char vb[MAX_VALUE]; /* value_of writes d->vs bytes */
			uint64_t v;

			value_of(d, i, 0, vb);
			memcpy(&v, vb, sizeof v);
			ck_ht_hash_direct(&h, &x->ht, key_word(i));
			ck_ht_entry_set_direct(&e, h, key_word(i), v);
		} else {
			unsigned char *k = x->keys + i * d->ks, *v = x->vals + i * d->vs;

			key_of(d->ks, i, k);
			value_of(d, i, 0, v);
			ck_ht_hash(&h, &x->ht, k, (uint16_t)d->ks);
			ck_ht_entry_set(&e, h, k, (uint16_t)d->ks, v);
		}
		if (!ck_ht_put_spmc(&x->ht, h, &e))
			++*bad;
	}
	p->build_ns = (double)(tick() - t0) / (double)d->n;
	x->map_bytes = ck_live_bytes;
	p->bytes = (double)ck_live_bytes + (direct ? 0.0 : (double)d->n * (d->ks + d->vs));
	p->k = direct ? &ckd_kernels : &ckb_kernels;
	p->note = direct ? "CK_HT_MODE_DIRECT" : "CK_HT_MODE_BYTESTRING";
	p->ctx = x;
	return 0;
}

static void ckht_close(struct peer *p)
{
	struct ckht_ctx *x = p->ctx;

	ck_ht_destroy(&x->ht);
	free(x->keys);
	free(x->vals);
	free(x);
}

const struct peer_ops ckht_peer = {
	.name = "ck_ht",
	.label = "ck_ht",
	.bytes_note = "bytes allocated, plus the key and value arrays in BYTESTRING mode",
	.kernels = &ckd_kernels, /* open() picks the mode's */
	.scale = 1,
	.open = ckht_open,
	.close = ckht_close,
};
