/*
 * A peer: another key/value store measured beside shmkv on the same keys,
 * values and lookup kernels.  Each lives in its own file, bench/peers/NAME.c,
 * and is known to the rest of the benchmark only through its struct peer_ops.
 *
 * To add one:
 *   1. write bench/peers/NAME.c: a get() returning 1 found (value copied),
 *      0 absent, < 0 error; DEFINE_KERNELS(NAME, get) (kernels.h); open()
 *      and close(); and `const struct peer_ops NAME_peer = { ... }`;
 *   2. add X(NAME) to BENCH_PEERS below (the order is the report's order);
 *   3. add its library to BENCH_LIBS in the Makefile (and to bench/run.sh's
 *      fallback build) and its Debian package to bench/README.md.
 * The Makefile builds every .c file in bench/peers/; the report names a peer
 * by peer_ops.name, in the peers' table and the memory table.
 */
#ifndef SHMKV_BENCH_PEER_H
#define SHMKV_BENCH_PEER_H

#include "bench/bench.h"
#include "bench/kernels.h"

struct peer_ops;

/* One open peer, as run_peers measures it. */
struct peer {
	const struct peer_ops *ops;
	const char *name;
	const struct kernels *k; /* ops->kernels, or what open() chose        */
	void *ctx;               /* the peer's own state, made by open()      */
	double build_ns;         /* per entry: set by open()                  */
	double bytes;            /* footprint: set by open(); NAN if unknown  */
	const char *note;        /* ops->note, or what open() chose           */
	int scale;               /* measure nq/scale lookups: slow engines    */
	char err[160];           /* why open() failed                         */
};

struct peer_ops {
	const char *name;        /* the report's engine column                */
	const char *label;       /* in progress lines and answer counts       */
	const char *note;        /* the report's "how" column                 */
	const char *bytes_note;  /* how `bytes` is counted (memory table)     */
	const struct kernels *kernels;
	int scale;
	int wall_clock;          /* the work runs in another process: time it,
	                            and shmkv beside it, on the wall clock    */
	/* NULL, or whether to run at all on this data set with these options
	 * (0: left out of the report). */
	int (*wanted)(const struct plan *pl, const struct dataset *d);
	/* Builds the peer's store of d (variant 0 values), timing the build;
	 * counts refused inserts in *bad.  Returns 0, or -1 with p->err set
	 * for a peer that may be missing (the report says why it did not run);
	 * dies on anything else. */
	int (*open)(struct peer *p, const struct plan *pl, const struct dataset *d,
	            uint64_t *bad);
	/* Frees what open() made, also after a failed open(). */
	void (*close)(struct peer *p);
	/* NULL, or the peer's own throughput loop (Redis pipelines): looks up m
	 * keys, checking each against its index ix[] (NULL: all absent), and
	 * returns the ns taken. */
	uint64_t (*throughput)(void *ctx, const struct dataset *d,
	                       const unsigned char *keys, const uint32_t *ix,
	                       uint64_t m, uint64_t *bad);
};

#define BENCH_PEERS(X) X(memkv) X(ckht) X(lmdb) X(cdb) X(redis)

#define BENCH_DECLARE_PEER(name) extern const struct peer_ops name##_peer;
BENCH_PEERS(BENCH_DECLARE_PEER)
#define BENCH_COUNT_PEER(name) +1
#define NPEERS (0 BENCH_PEERS(BENCH_COUNT_PEER))

#endif
