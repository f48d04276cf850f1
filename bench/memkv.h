/* The original MemKeyValue algorithm, reconstructed in bench/peers/memkv.c:
 * the one yardstick that the peers' table, the shapes section
 * (bench/core/shapes.c) and the write targets (bench/write_bench.c) all
 * measure shmkv against. */
#ifndef SHMKV_BENCH_MEMKV_H
#define SHMKV_BENCH_MEMKV_H

#include <stddef.h>
#include <stdint.h>

struct memkv;
struct dataset;
struct kernels;

/* A table for n keys of ks bytes and values of vs bytes at load `load`, in
 * an IPC_PRIVATE segment registered for the benchmark's cleanup
 * (install_cleanup).  NULL with err set when shmget fails; dies when
 * shmat does. */
struct memkv *memkv_new(uint64_t n, double load, uint32_t ks, uint32_t vs, char *err,
                        size_t errlen);
/* Detaches and removes the segment; m may be NULL. */
void memkv_free(struct memkv *m);
/* Inserts or overwrites key (ks bytes, not all zero) with val: 0, or -1
 * when every slot is taken. */
int memkv_put(struct memkv *m, const void *key, const void *val);
/* Inserts keys [lo, hi) of d (variant 0), counting refusals in *bad;
 * returns the ns taken. */
uint64_t memkv_fill(struct memkv *m, const struct dataset *d, uint64_t lo, uint64_t hi,
                    uint64_t *bad);
/* Slots read per key inserted so far (what a hit reads). */
double memkv_hit_probes(const struct memkv *m);
/* The slots' bytes. */
double memkv_bytes(const struct memkv *m);
const struct kernels *memkv_kernels_of(void);

#endif
