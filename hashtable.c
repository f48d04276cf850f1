/*
 * shmkv: a fixed-width key/value table in one System V shared memory segment.
 *
 * LAYOUT (private to this file; versioned by SHMKV_MAGIC and SHMKV_FORMAT)
 *
 *   [header][empty key][deleted key][journal key][journal value]   pad to 64
 *   [stripes: nstripes x u32 version counters]
 *   [overflow: nbuckets x u16]                                     pad to 64
 *   [buckets: nbuckets x bucket_bytes, each slots_per_bucket slots]
 *
 * A slot is [key][pad][value][pad]; widths are padded only to their natural
 * alignment, so 8-byte keys and values are 8-aligned and 3/5-byte slots pack
 * into 8 bytes.  A bucket is as many slots as fit in a 64-byte cache line (at
 * least one).  nbuckets is the largest prime that fits the capacity, so every
 * probe step in [1, nbuckets - 1] visits every bucket.
 *
 * PROBING
 *
 * A key's 64-bit hash picks its home bucket (high bits, by multiply-shift)
 * and its step (low 32 bits).  Its probe path is home, home + step, ...  (mod
 * nbuckets).  The low byte of overflow[b] counts the live keys whose path
 * passes through b without ending there: the keys that found b full.  Its
 * high byte is a filter: each passing key sets one of its 8 bits, chosen by
 * the key's hash, and the filter clears when the count returns to zero.  A
 * lookup scans a bucket and goes on only if the bucket's filter has its own
 * bit, never stopping at an empty slot; so a miss usually ends at the first
 * bucket, and a delete can leave its slot empty at once (it lowers the counts
 * on the key's path): the table never holds tombstones.  Counts saturate at
 * 255 and then stay there (a conservative count only lengthens misses).
 * Invariant C: at every instant, for every b, the count is >= the number of
 * keys passing b and the filter holds the bit of each of them.
 *
 * CONCURRENCY PROTOCOL
 *
 * Writers (update, delete, recovery) hold `lock`, a robust process-shared
 * mutex in the header, so there is one writer at a time across processes and
 * threads.  The holder records its pid and process start time in the header
 * before it changes anything, so readers can tell a dead writer from a slow
 * one.
 *
 * Readers take no lock and write nothing.  Bucket b is guarded by the version
 * counter stripes[b & (nstripes - 1)], a seqlock:
 *   writer:  v = S; S = v + 1 (relaxed); fence(release);
 *            slot stores (relaxed atomics);
 *            S = v + 2 (release)
 *   reader:  v1 = S (acquire); if odd, wait;
 *            slot loads and overflow[b] (relaxed atomics);
 *            fence(acquire); v2 = S (relaxed); retry unless v1 == v2.
 * The writer's release fence orders the odd version before its data stores;
 * its release store orders the data before the even version.  The reader's
 * acquire load keeps its data loads after v1, and its acquire fence keeps
 * them before v2: if v1 == v2 and even, no store to the bucket overlapped
 * the loads (Boehm, "Can seqlocks get along with programming language memory
 * models?", 2012).  Shared slot bytes are accessed through relaxed atomics,
 * so there is no data race in the C11 sense (and ThreadSanitizer agrees),
 * with one exception: the 8-byte-key fast path compares a bucket's keys with
 * aligned 16-byte SSE2 loads (k8v8_match), the seqlock's usual "equivalent"
 * of relaxed loads (x86 performs aligned 16-byte loads whole, and the
 * version re-check discards any that overlapped a store).  Builds for
 * ThreadSanitizer, and non-x86 ones, use the atomic path.
 *
 * overflow[] is written outside the seqlock, with release stores, ordered so
 * that Invariant C holds at every instant: an insert raises the counts on its
 * path before it writes the slot; a delete empties the slot before it lowers
 * them.  So a reader that stops at a zero count has seen the key's absence at
 * the instant of that load.
 *
 * Deletes do move keys: each one sweeps a few buckets (reclaim_step) and
 * moves displaced keys back to free slots earlier on their paths (J_MOVE).
 * A move copies the key to its new slot before it empties the old one, so
 * the key is in some slot at every instant; but a reader walking the path
 * could pass the new slot before the copy and reach the old one after it
 * was emptied, and miss a key that stayed present.  So the header's `moves`
 * counter is a seqlock of its own, odd for the duration of a move: a lookup
 * reads it before it starts, and a lookup that ends in a miss counts only
 * if `moves` was even and unchanged throughout (lookup(); the fast path
 * checks it before returning -1), else it starts again.  A hit needs no
 * such check.  So a reader never misses a key that stayed present
 * throughout its call, and a value it returns is one that was whole at the
 * instant its bucket's version was validated.
 *
 * A version stays odd only while a writer is inside a slot write.  A reader
 * that finds it odd spins READER_SPINS times, then checks whether the
 * recorded holder is alive (kill(pid, 0) and its start time, against pid
 * reuse): alive, it keeps waiting, however long; dead, it returns
 * HASHTABLE_EDEADWRITER.
 *
 * CRASH RECOVERY
 *
 * Before changing anything a writer fills the journal in the header: the
 * operation, its slot, the key's path, the key and value bytes and the
 * counters' final values; then it publishes journal.op.  Each overflow word
 * on the path is changed after recording (index + 1, old word) in
 * journal.progress, as (index + 1) << 16 | old 16-bit word (count and
 * filter), so that step can be redone exactly.  A writer that gets the lock with
 * EOWNERDEAD (its holder died, at any instruction) redoes the journalled
 * operation to its end: the remaining path counts, the slot write, the
 * counters; then makes every odd version even, marks the mutex consistent and
 * goes on.  Every step of a redo is idempotent, so a recovery that dies is
 * itself recovered.  Readers are never blocked by the lock.
 */
#include "hashtable.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
/* ThreadSanitizer sees only atomics: keep it on the all-atomic path. */
#if defined(__SANITIZE_THREAD__)
#define SHMKV_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHMKV_TSAN 1
#endif
#endif
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define SHMKV_MAGIC UINT64_C(0x31564b4d48537f00) /* "\0\177SHMKV1" */
#define SHMKV_FORMAT 1u
#define LINE 64u                 /* cache line: buckets and hot fields align to it */
#define MAX_STRIPES 4096u        /* version counters at most: 16 KiB, enough that two
                                    writes rarely share one, few enough to stay cached */
#define STRIPE_BYTES 2048u       /* below that, one stripe per 2 to 4 KiB of segment
                                    (a power of two): small tables keep a small header */
#define MAX_ENTRIES (UINT64_C(1) << 40) /* hashtable_segment_size's limit: past any
                                    host's memory, and entries times the widest slot
                                    (2^20 bytes) stays within 64 bits */
#define OVERFLOW_COUNT 0x00ffu   /* low byte of an overflow word: keys passing */
#define OVERFLOW_FILTER 0xff00u  /* high byte: one filter bit per passing key's hash */
#define OVERFLOW_STICKY 255u     /* a count this high stays: exact counts would need
                                    a wider word for a case that only lengthens misses */
#define SMALL_VALUE 256u /* values up to this size are staged on the stack */

/* Buckets each delete sweeps for displaced keys (reclaim_step): enough to
 * hold hits at a fresh fill's cost under steady churn, measured with
 * tests/test_churn.c; more near a full table, where displaced keys are
 * common.  Sequential bucket reads, so cheap. */
#define SWEEP_BUCKETS 4u
#define SWEEP_BUCKETS_FULL 16u      /* load limit above SWEEP_FULL_PERCENT */
#define SWEEP_FULL_PERCENT 85u
#define SWEEP_BUCKETS_FULLER 48u    /* load limit above SWEEP_FULLER_PERCENT */
#define SWEEP_FULLER_PERCENT 90u

/* A reader meeting an odd version spins this many pause instructions (tens
 * to hundreds of microseconds: longer than any slot write) before it looks
 * at /proc to see whether the writer died, then sleeps READER_SLEEP_NS
 * between looks so a stopped writer costs no CPU. */
#define READER_SPINS 4096
#define READER_SLEEP_NS (200 * 1000)

/* How long an attach waits for a live creator in another process to
 * publish the header: 2 s in 1 ms steps, ample for initialising even a
 * table with non-zero empty keys. */
#define CREATOR_WAIT_STEPS 2000
#define CREATOR_WAIT_STEP_NS (1000 * 1000)

/* A read-only verify retries a walk that a concurrent writer may have
 * disturbed this many times, 1 ms apart, before it gives up with -EAGAIN. */
#define VERIFY_WALKS 20
#define VERIFY_RETRY_NS (1000 * 1000)

/* Probe paths sampled to estimate stats.miss_probes: enough for two
 * significant digits at usual loads, cheap enough for every `shmkv stat`. */
#define MISS_SAMPLES 4096u

enum journal_op { J_IDLE = 0, J_INSERT = 1, J_OVERWRITE = 2, J_DELETE = 3, J_MOVE = 4 };

struct journal {
	_Atomic uint32_t op;
	uint16_t bit;       /* the key's filter bit */
	uint16_t reserved;
	uint64_t slot;      /* global slot index (J_MOVE: the destination) */
	uint64_t from_slot; /* J_MOVE: the slot the key leaves */
	uint64_t home, step; /* the key's path */
	uint64_t first, probe; /* path indices [first, probe) get their counts changed */
	_Atomic uint64_t progress; /* (index + 1) << 16 | old overflow word; 0: none yet */
	uint64_t count_after, collisions_after, max_probe_after;
};

struct shm_header {
	uint64_t magic;
	uint32_t format;
	uint32_t flags;            /* SEG_HUGETLB */
	uint64_t segment_bytes;
	uint32_t key_size, value_size;
	uint32_t slot_size, value_offset;
	uint32_t slots_per_bucket, bucket_bytes;
	uint64_t nbuckets, nstripes;
	uint64_t off_empty, off_deleted, off_jkey, off_jvalue;
	uint64_t off_stripes, off_overflow, off_buckets;
	uint64_t seed, max_count;
	double max_load;
	int64_t created;
	int32_t creator_pid;
	uint32_t reserved;
	/* The naming file's device and inode when the table was created by path
	 * (0 when by numeric key): ftok() keeps only 8 bits of the one and 16 of
	 * the other, so another file, or the same path recreated, can map to
	 * this key.  In the padding before `lock`: no layout change. */
	uint64_t name_dev, name_ino;
	/* writer state, on its own lines */
	_Alignas(64) union {
		pthread_mutex_t mutex;
		char pad[64];
	} lock;
	_Atomic int32_t holder_pid;
	_Atomic uint64_t holder_start;
	_Atomic uint64_t count, deleted, collisions, max_probe;
	_Atomic uint64_t inserts, updates, deletes, recoveries, relocations;
	uint64_t sweep_cursor;     /* next bucket reclaim_step() examines */
	/* Odd while a key is being moved back along its path: a miss that
	 * overlapped a move is retried (see reclaim_step).  Own line: written
	 * only by moves, so readers keep it cached. */
	_Alignas(64) _Atomic uint32_t moves;
	_Alignas(64) struct journal journal;
};

#define SEG_HUGETLB 1u

/* The geometry derived from widths and capacity; the header stores it and
 * attach recomputes it to validate a header. */
struct geometry {
	uint32_t key_size, value_size, slot_size, value_offset;
	uint32_t slots_per_bucket, bucket_bytes;
	uint64_t nbuckets, nstripes;
	uint64_t off_empty, off_deleted, off_jkey, off_jvalue;
	uint64_t off_stripes, off_overflow, off_buckets, end;
};

enum key_class { KEY_GENERIC, KEY_U64, KEY_U32 };

struct hashtable {
	struct shm_header *hdr;
	unsigned char *base;
	size_t segment_bytes;
	struct geometry g;     /* validated copy: never re-read from the header */
	uint64_t seed, max_count;
	enum key_class key_class;
	_Atomic uint32_t *stripes;
	_Atomic uint16_t *overflow;
	unsigned char *buckets;
	unsigned char *empty, *deleted; /* private copies of the sentinels */
	uint64_t empty_u64, deleted_u64;
	int shmid;
	key_t ipc_key;
	bool readonly;
	bool by_path;          /* opened by path, whose file was path_dev/path_ino */
	uint64_t path_dev, path_ino;
	bool k8v8;             /* lookup_k8v8() applies */
	uint64_t stripe_mask;  /* nstripes - 1 */
};

/* ---- errors ------------------------------------------------------------ */

/* This thread's last failure, with its specifics (hashtable_last_error). */
static _Thread_local char last_detail[768];

static int fail(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Records err as this thread's last failure, with a text naming its cause.
 * A kernel EPERM that no site mapped comes back as -EACCES: -EPERM is -1,
 * which callers read as "not found". */
static int fail(int err, const char *fmt, ...)
{
	va_list ap;
	if (err == -EPERM)
		err = -EACCES;
	va_start(ap, fmt);
	vsnprintf(last_detail, sizeof last_detail, fmt, ap);
	va_end(ap);
	return err;
}

const char *hashtable_last_error(void) { return last_detail; }

/* The one list of texts, so codes and messages cannot drift apart.  Own
 * wording, static strings: hashtable_strerror() depends on nothing but its
 * argument (no strerror_r, whose GNU and POSIX forms differ, no buffer). */
static const struct {
	int code; /* positive errno */
	const char *text;
} errno_texts[] = {
	{EINVAL, "invalid argument: a width, size, key or setting the table cannot take"},
	{ENOENT, "no such file, or no table at that key"},
	{EACCES, "permission denied by the segment's owner and mode"},
	{EEXIST, "a segment already exists at that key"},
	{ENOSPC, "a kernel limit on shared memory segments (kernel.shmmni or kernel.shmall) "
	         "is reached"},
	{ENOMEM, "the table is at its load limit, or the system is out of memory"},
	{EPROTO, "the segment is not a shmkv table of a known format"},
	{EROFS, "the handle is read-only (HASHTABLE_RDONLY)"},
	{EAGAIN, "the table kept changing; try again"},
	{EPERM, "operation not permitted"},
	{EIDRM, "the segment was removed"},
	{EFAULT, "bad address"},
	{ENFILE, "too many segments or files open on the system"},
	{EMFILE, "too many segments attached or files open by this process"},
	{ENAMETOOLONG, "file name too long"},
	{ENOTDIR, "a component of the path is not a directory"},
	{ELOOP, "too many symbolic links in the path"},
	{EOVERFLOW, "value too large for its type"},
	{EIO, "input/output error"},
	{EINTR, "interrupted by a signal"},
	{EBUSY, "resource busy"},
	{EDEADLK, "the writer lock would deadlock"},
	{ENOTRECOVERABLE, "the writer lock is not recoverable"},
	{EOWNERDEAD, "the writer lock's holder died"},
	{ENOSYS, "function not implemented by this system"},
	{ERANGE, "result out of range"},
	{E2BIG, "argument list too long"},
	{EBADF, "bad file descriptor"},
	{ESRCH, "no such process"},
};

const char *hashtable_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -1: /* the same value as -EPERM, which the library never returns */
		return "not found";
	case HASHTABLE_EDEADWRITER:
		return "a writer died while changing the table; the next update, delete, "
		       "hashtable_recover() or `shmkv verify --repair` completes its change";
	case HASHTABLE_ECORRUPT:
		return "the table is inconsistent";
	case INT_MIN:
		return "unknown error code";
	default:
		break;
	}
	int e = err < 0 ? -err : err;
	for (size_t i = 0; i < sizeof errno_texts / sizeof errno_texts[0]; i++)
		if (errno_texts[i].code == e)
			return errno_texts[i].text;
	return "unknown error code";
}

const char *shmkv_version(void) { return SHMKV_VERSION_STRING; }

/* ---- shared memory access ---------------------------------------------- */
/* Slot bytes are read and written only through these, as relaxed atomics, so
 * readers racing with the writer are well defined; the seqlock decides which
 * reads count.  Aligned 8-byte words where possible, bytes elsewhere. */

static inline uint64_t load_u64(const unsigned char *p)
{
	return atomic_load_explicit((_Atomic uint64_t *)(uintptr_t)p, memory_order_relaxed);
}

static inline uint32_t load_u32(const unsigned char *p)
{
	return atomic_load_explicit((_Atomic uint32_t *)(uintptr_t)p, memory_order_relaxed);
}

static void shared_load(void *dst, const unsigned char *src, size_t n)
{
	unsigned char *d = dst;
	while (n && ((uintptr_t)src & 7)) {
		*d++ = atomic_load_explicit((_Atomic unsigned char *)(uintptr_t)src++,
		                            memory_order_relaxed);
		n--;
	}
	for (; n >= 8; n -= 8, src += 8, d += 8) {
		uint64_t w = load_u64(src);
		memcpy(d, &w, 8);
	}
	while (n--)
		*d++ = atomic_load_explicit((_Atomic unsigned char *)(uintptr_t)src++,
		                            memory_order_relaxed);
}

static void shared_store(unsigned char *dst, const void *src, size_t n)
{
	const unsigned char *s = src;
	while (n && ((uintptr_t)dst & 7)) {
		atomic_store_explicit((_Atomic unsigned char *)dst++, *s++, memory_order_relaxed);
		n--;
	}
	for (; n >= 8; n -= 8, dst += 8, s += 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		atomic_store_explicit((_Atomic uint64_t *)(uintptr_t)dst, w, memory_order_relaxed);
	}
	while (n--)
		atomic_store_explicit((_Atomic unsigned char *)dst++, *s++, memory_order_relaxed);
}

/* Compares a private key with a slot's key. */
static bool shared_equal(const unsigned char *slot, const unsigned char *key, size_t n)
{
	unsigned char buf[64];
	while (n) {
		size_t chunk = n < sizeof buf ? n : sizeof buf;
		shared_load(buf, slot, chunk);
		if (memcmp(buf, key, chunk) != 0)
			return false;
		slot += chunk;
		key += chunk;
		n -= chunk;
	}
	return true;
}

/* ---- hashing ------------------------------------------------------------ */

static inline uint64_t mum(uint64_t a, uint64_t b)
{
	unsigned __int128 r = (unsigned __int128)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t hash_u64(uint64_t k, uint64_t seed)
{
	return mum(mum(k ^ seed, UINT64_C(0x9e3779b97f4a7c15)) ^ seed,
	           UINT64_C(0xd6e8feb86659fd93));
}

/* Any width: 8-byte chunks folded through a 128-bit multiply (wyhash-like
 * avalanche), the length mixed in so keys of zero bytes differ by width. */
static uint64_t hash_bytes(const unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t h = seed ^ (n * UINT64_C(0xa0761d6478bd642f));
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = mum(h ^ w, UINT64_C(0xe7037ed1a0b428db));
		p += 8;
		n -= 8;
	}
	if (n) {
		uint64_t w = 0;
		memcpy(&w, p, n);
		h = mum(h ^ w, UINT64_C(0x8ebc6af09c88c6e3));
	}
	return mum(h, UINT64_C(0x589965cc75374cc3));
}

static inline uint64_t key_hash(const struct hashtable *h, const void *key)
{
	if (h->key_class == KEY_U64) {
		uint64_t k;
		memcpy(&k, key, 8);
		return hash_u64(k, h->seed);
	}
	return hash_bytes(key, h->g.key_size, h->seed);
}

static inline uint64_t home_bucket(uint64_t hash, uint64_t nbuckets)
{
	return (uint64_t)(((unsigned __int128)hash * nbuckets) >> 64);
}

static inline uint64_t probe_step(uint64_t hash, uint64_t nbuckets)
{
	if (nbuckets < 2)
		return 0;
	return 1 + (uint64_t)(((unsigned __int128)(uint32_t)hash * (nbuckets - 1)) >> 32);
}

static inline uint64_t next_bucket(uint64_t b, uint64_t step, uint64_t nbuckets)
{
	b += step;
	return b >= nbuckets ? b - nbuckets : b;
}

/* An overflow word's filter bit for a key: one of the high byte's 8. */
static inline uint16_t filter_bit(uint64_t hash)
{
	return (uint16_t)(0x100u << ((hash >> 32) & 7));
}

/* Whether a search for the key must go on past a bucket with word o. */
static inline bool passes(uint16_t o, uint64_t hash) { return (o & filter_bit(hash)) != 0; }

/* ---- geometry ----------------------------------------------------------- */

static uint32_t natural_alignment(uint32_t width)
{
	if (width == 0)
		return 1;
	return (width % 8 == 0) ? 8 : (width % 4 == 0) ? 4 : (width % 2 == 0) ? 2 : 1;
}

static uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

static bool is_prime(uint64_t n)
{
	if (n < 2)
		return false;
	if (n % 2 == 0)
		return n == 2;
	for (uint64_t d = 3; d * d <= n; d += 2)
		if (n % d == 0)
			return false;
	return true;
}

static uint64_t prime_at_most(uint64_t n)
{
	if (n < 2)
		return n; /* one bucket needs no step */
	while (!is_prime(n))
		n--;
	return n;
}

static uint64_t stripes_for(uint64_t capacity)
{
	uint64_t s = 1;
	while (s < MAX_STRIPES && s * 2 * STRIPE_BYTES <= capacity)
		s *= 2;
	return s;
}

/* Lays out a segment of `capacity` bytes.  Returns false if not even one
 * bucket fits. */
static bool layout(uint32_t key_size, uint32_t value_size, uint64_t capacity,
                   struct geometry *g)
{
	memset(g, 0, sizeof *g);
	g->key_size = key_size;
	g->value_size = value_size;
	g->value_offset = (uint32_t)round_up(key_size, natural_alignment(value_size));
	uint32_t ka = natural_alignment(key_size), va = natural_alignment(value_size);
	g->slot_size = (uint32_t)round_up((uint64_t)g->value_offset + value_size, ka > va ? ka : va);
	g->slots_per_bucket = g->slot_size >= LINE ? 1 : LINE / g->slot_size;
	g->bucket_bytes = g->slots_per_bucket * g->slot_size;

	g->off_empty = sizeof(struct shm_header);
	g->off_deleted = g->off_empty + key_size;
	g->off_jkey = g->off_deleted + key_size;
	g->off_jvalue = round_up(g->off_jkey + key_size, 8);
	g->off_stripes = round_up(g->off_jvalue + value_size, LINE);
	g->nstripes = stripes_for(capacity);
	g->off_overflow = g->off_stripes + g->nstripes * sizeof(uint32_t);
	uint64_t fixed = g->off_overflow + LINE; /* + alignment slack before buckets */
	if (capacity <= fixed)
		return false;
	uint64_t most = (capacity - fixed) / ((uint64_t)g->bucket_bytes + sizeof(uint16_t));
	g->nbuckets = prime_at_most(most);
	if (g->nbuckets == 0)
		return false;
	g->off_buckets = round_up(g->off_overflow + g->nbuckets * sizeof(uint16_t), LINE);
	g->end = g->off_buckets + g->nbuckets * g->bucket_bytes;
	return g->end <= capacity;
}

/* Load limit as a fraction: fractions in (0, 1] stay, percents in (1, 100]
 * are divided by 100; anything else is 0 (invalid). */
static double load_fraction(double max_load)
{
	if (max_load > 0 && max_load <= 1)
		return max_load;
	if (max_load > 1 && max_load <= 100)
		return max_load / 100;
	return 0;
}

static uint64_t max_count_for(uint64_t slots, double fraction)
{
	return (uint64_t)((double)slots * fraction + 1e-9);
}

static bool widths_valid(uint64_t key_size, uint64_t value_size)
{
	return key_size >= 1 && key_size <= HASHTABLE_MAX_KEY && value_size <= HASHTABLE_MAX_VALUE;
}

size_t hashtable_segment_size(uint64_t entries, double max_load, uint32_t key_size,
                              uint32_t value_size)
{
	double f = load_fraction(max_load);
	if (f == 0 || !widths_valid(key_size, value_size) || entries > MAX_ENTRIES)
		return 0;
	struct geometry g;
	layout(key_size, value_size, 1u << 20, &g); /* for the per-bucket figures */
	uint64_t want = entries ? entries : 1;
	uint64_t buckets = (uint64_t)((double)want / f) / g.slots_per_bucket + 1;
	uint64_t capacity = g.off_stripes + LINE + buckets * ((uint64_t)g.bucket_bytes + 2);
	capacity += stripes_for(capacity) * sizeof(uint32_t);
	/* grow past the prime rounding until the limit admits `want` keys */
	while (!layout(key_size, value_size, capacity, &g) ||
	       max_count_for(g.nbuckets * g.slots_per_bucket, f) < want)
		capacity += (uint64_t)g.bucket_bytes + 2;
	return (size_t)capacity;
}

/* ---- handle setup --------------------------------------------------------- */

static inline unsigned char *bucket_at(const struct hashtable *h, uint64_t b)
{
	return h->buckets + b * h->g.bucket_bytes;
}

static inline unsigned char *slot_at(const struct hashtable *h, uint64_t slot)
{
	return h->buckets + slot * h->g.slot_size;
}

static inline _Atomic uint32_t *stripe_of(const struct hashtable *h, uint64_t b)
{
	return &h->stripes[b & h->stripe_mask];
}

static inline bool is_k8v8(const struct hashtable *h)
{
	return h->key_class == KEY_U64 && h->g.slot_size == 16 && h->g.value_size == 8 &&
	       h->g.value_offset == 8 && h->g.slots_per_bucket == 4;
}

static void bind_handle(struct hashtable *h, const struct geometry *g)
{
	h->g = *g;
	h->stripes = (_Atomic uint32_t *)(h->base + g->off_stripes);
	h->overflow = (_Atomic uint16_t *)(h->base + g->off_overflow);
	h->buckets = h->base + g->off_buckets;
	h->seed = h->hdr->seed;
	h->max_count = h->hdr->max_count;
	h->key_class = KEY_GENERIC;
	if (g->key_size == 8 && g->slot_size % 8 == 0)
		h->key_class = KEY_U64;
	else if (g->key_size == 4 && g->slot_size % 4 == 0)
		h->key_class = KEY_U32;
	h->k8v8 = is_k8v8(h);
	h->stripe_mask = g->nstripes - 1;
	if (g->key_size == 8) {
		memcpy(&h->empty_u64, h->empty, 8);
		memcpy(&h->deleted_u64, h->deleted, 8);
	}
}

static bool is_sentinel(const struct hashtable *h, const void *key)
{
	if (h->g.key_size == 8) {
		uint64_t k;
		memcpy(&k, key, 8);
		return k == h->empty_u64 || k == h->deleted_u64;
	}
	return memcmp(key, h->empty, h->g.key_size) == 0 ||
	       memcmp(key, h->deleted, h->g.key_size) == 0;
}

static int check_key(const struct hashtable *h, const void *key)
{
	if (!h || !key)
		return fail(-EINVAL, "NULL table handle or key");
	if (is_sentinel(h, key))
		return fail(-EINVAL, "the key equals the table's empty or deleted sentinel; "
		                     "sentinel keys cannot be stored");
	return 0;
}

/* ---- dead writer detection ------------------------------------------------ */

/* Reads a process's state letter and start time (clock ticks since boot,
 * field 22) from /proc/PID/stat.  Returns false if it cannot. */
static bool process_stat(pid_t pid, char *state, uint64_t *start)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	unsigned long long st = 0;
	/* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime cutime cstime priority nice threads
	 * itrealvalue starttime */
	if (!p || sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
	                        "%*d %*d %*d %*d %llu", state, &st) != 2)
		return false;
	*start = st;
	return true;
}

static uint64_t process_start_time(pid_t pid)
{
	char state;
	uint64_t start;
	return process_stat(pid, &state, &start) ? start : 0;
}

/* Whether the recorded lock holder still runs.  A zombie (killed, not yet
 * reaped) and a reused pid (other start time) count as dead. */
static bool holder_alive(const struct hashtable *h)
{
	pid_t pid = atomic_load_explicit(&h->hdr->holder_pid, memory_order_acquire);
	uint64_t start = atomic_load_explicit(&h->hdr->holder_start, memory_order_relaxed);
	if (pid <= 0)
		return false;
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return false;
	char state;
	uint64_t now;
	if (!process_stat(pid, &state, &now))
		return true; /* exists, but /proc hides it: assume alive */
	if (state == 'Z' || state == 'X')
		return false;
	return start == 0 || now == start;
}

static void pause_cpu(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Waits until the stripe's version is even and returns it in *v.  A live
 * writer is waited out however long it takes; a dead one makes this return
 * HASHTABLE_EDEADWRITER after READER_SPINS spins and one look at /proc:
 * well under a millisecond on an idle machine (see hashtable.h). */
static int wait_even(const struct hashtable *h, _Atomic uint32_t *stripe, uint32_t *v)
{
	for (int i = 0; i < READER_SPINS; i++) {
		pause_cpu();
		*v = atomic_load_explicit(stripe, memory_order_acquire);
		if (!(*v & 1))
			return 0;
	}
	for (;;) {
		bool alive = holder_alive(h);
		*v = atomic_load_explicit(stripe, memory_order_acquire);
		if (!(*v & 1))
			return 0;
		if (!alive)
			return fail(HASHTABLE_EDEADWRITER,
			            "a writer (pid %d) died while changing a bucket; run any "
			            "update or `shmkv verify --repair` to recover the table",
			            (int)atomic_load(&h->hdr->holder_pid));
		struct timespec ts = {0, READER_SLEEP_NS};
		nanosleep(&ts, NULL);
	}
}

/* SHMKV_BENCH_NO_VERSIONS builds readers without the version checks, for
 * bench/ to measure what the protocol costs.  Never for use: such readers
 * can return torn values. */
#ifdef SHMKV_BENCH_NO_VERSIONS
#define VERSIONS_CHECKED 0
#else
#define VERSIONS_CHECKED 1
#endif

static inline int read_begin(const struct hashtable *h, _Atomic uint32_t *stripe, uint32_t *v)
{
	if (!VERSIONS_CHECKED) {
		*v = 0;
		return 0;
	}
	/* acquire: the slot loads that follow cannot be satisfied before it */
	*v = atomic_load_explicit(stripe, memory_order_acquire);
	if (__builtin_expect(*v & 1, 0))
		return wait_even(h, stripe, v);
	return 0;
}

static inline bool read_valid(_Atomic uint32_t *stripe, uint32_t v)
{
	if (!VERSIONS_CHECKED)
		return true;
	/* acquire fence: the slot loads above complete before the re-check;
	 * pairs with the writer's release fence after making the version odd */
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(stripe, memory_order_relaxed) == v;
}

/* ---- lookups ------------------------------------------------------------ */

/* Index within the bucket of the slot holding key, or -1.  The fixed-width
 * paths compare every slot and build a mask instead of leaving the loop at
 * the match: which slot matches is random, and a branch on it would be
 * mispredicted once per lookup, after the bucket's cache miss, flushing the
 * speculative work on the next independent lookups. */
static inline int bucket_find(const struct hashtable *h, const unsigned char *bucket,
                              const void *key)
{
	uint32_t spb = h->g.slots_per_bucket, ss = h->g.slot_size;
	uint64_t mask = 0;
	switch (h->key_class) {
	case KEY_U64: {
		uint64_t k;
		memcpy(&k, key, 8);
		for (uint32_t i = 0; i < spb; i++)
			mask |= (uint64_t)(load_u64(bucket + i * ss) == k) << i;
		break;
	}
	case KEY_U32: {
		uint32_t k;
		memcpy(&k, key, 4);
		for (uint32_t i = 0; i < spb; i++)
			mask |= (uint64_t)(load_u32(bucket + i * ss) == k) << i;
		break;
	}
	default:
		for (uint32_t i = 0; i < spb; i++)
			if (shared_equal(bucket + i * ss, key, h->g.key_size))
				return (int)i;
		return -1;
	}
	return mask ? __builtin_ctzll(mask) : -1;
}

/* Copies a slot's value out; one word load for the common 8-byte value. */
static inline void value_load(const struct hashtable *h, void *out, const unsigned char *slot)
{
	const unsigned char *src = slot + h->g.value_offset;
	if (h->g.value_size == 8 && h->g.value_offset % 8 == 0 && h->g.slot_size % 8 == 0) {
		uint64_t w = load_u64(src);
		memcpy(out, &w, 8);
		return;
	}
	shared_load(out, src, h->g.value_size);
}

static int lookup_once(const struct hashtable *h, const void *key, uint64_t hash, void *out);

/* A miss counts only if no key moved meanwhile (see reclaim_step): a key
 * moving back along its path could pass behind the search. */
static int lookup(const struct hashtable *h, const void *key, uint64_t hash, void *out)
{
	_Atomic uint32_t *moves = &h->hdr->moves;
	for (;;) {
		uint32_t m;
		int rc = read_begin(h, moves, &m);
		if (rc)
			return rc;
		rc = lookup_once(h, key, hash, out);
		if (rc != -1 || read_valid(moves, m))
			return rc;
	}
}

/* The general search: any widths, one probe path walked bucket by bucket.
 * Copies the value into out (value_size bytes) and returns 0, or returns -1,
 * or HASHTABLE_EDEADWRITER. */
static int lookup_once(const struct hashtable *h, const void *key, uint64_t hash, void *out)
{
	const uint64_t n = h->g.nbuckets;
	uint64_t b = home_bucket(hash, n), step = 0;
	for (uint64_t probe = 0; probe < n; probe++) {
		_Atomic uint32_t *stripe = stripe_of(h, b);
		const unsigned char *bucket = bucket_at(h, b);
		for (;;) {
			uint32_t v;
			int rc = read_begin(h, stripe, &v);
			if (rc)
				return rc;
			int i = bucket_find(h, bucket, key);
			if (i >= 0 && out)
				value_load(h, out, bucket + (uint32_t)i * h->g.slot_size);
			uint16_t ov = atomic_load_explicit(&h->overflow[b], memory_order_relaxed);
			if (!read_valid(stripe, v))
				continue;
			if (i >= 0 || !passes(ov, hash))
				return i >= 0 ? 0 : -1;
			break;
		}
		if (!step)
			step = probe_step(hash, n);
		b = next_bucket(b, step, n);
	}
	return -1; /* every bucket overflowed and none held it */
}

/* The fast path for 8-byte keys in 4-slot buckets with 8-byte values (the
 * common shape): every width a constant, no branch on which slot matched,
 * a few dozen instructions a bucket.  Throughput of independent lookups
 * depends on how many fit in the CPU's reorder window at once, so every
 * instruction here counts.  Returns 0 (found), -1 (absent), or LOOKUP_SLOW
 * when anything needs the general path: a version odd or changed, a key
 * moved meanwhile. */
#define LOOKUP_SLOW 1

/* Bit i set when slot i of a 4 x (8-byte key, 8-byte value) bucket holds k. */
static inline unsigned k8v8_match(const unsigned char *bucket, uint64_t k)
{
#if defined(__SSE2__) && !defined(SHMKV_TSAN)
	/* Two SSE2 compares instead of four scalar ones: fewer instructions
	 * waiting on the bucket's miss, so more lookups overlap.  Plain vector
	 * loads of shared bytes: the seqlock re-check decides whether they
	 * count, as for the atomic loads of the scalar path. */
	__m128i s0 = _mm_load_si128((const __m128i *)(const void *)bucket);
	__m128i s1 = _mm_load_si128((const __m128i *)(const void *)(bucket + 16));
	__m128i s2 = _mm_load_si128((const __m128i *)(const void *)(bucket + 32));
	__m128i s3 = _mm_load_si128((const __m128i *)(const void *)(bucket + 48));
	__m128i kk = _mm_set1_epi64x((long long)k);
	__m128i e01 = _mm_cmpeq_epi32(_mm_unpacklo_epi64(s0, s1), kk);
	__m128i e23 = _mm_cmpeq_epi32(_mm_unpacklo_epi64(s2, s3), kk);
	/* a 64-bit lane matches when both its 32-bit halves do */
	e01 = _mm_and_si128(e01, _mm_shuffle_epi32(e01, 0xb1));
	e23 = _mm_and_si128(e23, _mm_shuffle_epi32(e23, 0xb1));
	return (unsigned)_mm_movemask_pd(_mm_castsi128_pd(e01)) |
	       (unsigned)_mm_movemask_pd(_mm_castsi128_pd(e23)) << 2;
#else
	return (unsigned)(load_u64(bucket) == k) | (unsigned)(load_u64(bucket + 16) == k) << 1 |
	       (unsigned)(load_u64(bucket + 32) == k) << 2 |
	       (unsigned)(load_u64(bucket + 48) == k) << 3;
#endif
}

#define LOOKUP_FURTHER 2 /* the key may lie past the buckets read so far */

static inline __attribute__((always_inline)) int
lookup_k8v8_upto(const struct hashtable *h, uint64_t k, uint64_t hash, uint64_t *out,
                 uint64_t limit)
{
	/* Locals, loaded before the first acquire: the compiler may not reuse
	 * a load of h->... across one, and each reload is an instruction. */
	const uint64_t n = h->g.nbuckets, stripe_mask = h->stripe_mask;
	_Atomic uint32_t *const stripes = h->stripes;
	_Atomic uint16_t *const overflow = h->overflow;
	_Atomic uint32_t *const moves = &h->hdr->moves;
	const unsigned char *const buckets = h->buckets;
	uint64_t b = home_bucket(hash, n), step = 0;
	uint32_t m = 0;
	/* A quarter of hits at load 0.8 lie in the second bucket.  Starting its
	 * miss now, beside the home bucket's, costs a line of bandwidth and
	 * saves a whole dependent miss on those: a chain of lookups (each key
	 * from the last value) drops from 1.33 to 1.09 dependent reads a hit
	 * at 16M entries; independent lookups barely change. */
	if (limit > 1 && n > 1) {
		step = probe_step(hash, n);
		__builtin_prefetch(buckets + next_bucket(b, step, n) * 64);
	}
	if (VERSIONS_CHECKED)
		m = atomic_load_explicit(moves, memory_order_acquire);
	for (uint64_t probe = 0; probe < n; probe++) {
		_Atomic uint32_t *stripe = &stripes[b & stripe_mask];
		const unsigned char *bucket = buckets + b * 64;
		uint32_t v = 0;
		if (VERSIONS_CHECKED)
			v = atomic_load_explicit(stripe, memory_order_acquire);
		unsigned mask = k8v8_match(bucket, k);
		unsigned i = (unsigned)__builtin_ctz(mask | 8u); /* 3 when none: harmless */
		uint64_t value = load_u64(bucket + i * 16 + 8);
		if (__builtin_expect(mask != 0, 1)) {
			if (!read_valid(stripe, v) || (v & 1))
				return LOOKUP_SLOW;
			*out = value;
			return 0;
		}
		uint16_t ov = atomic_load_explicit(&overflow[b], memory_order_relaxed);
		if (!read_valid(stripe, v) || (v & 1))
			return LOOKUP_SLOW;
		if (!passes(ov, hash)) {
			if (VERSIONS_CHECKED &&
			    ((m & 1) || atomic_load_explicit(moves, memory_order_relaxed) != m))
				return LOOKUP_SLOW;
			return -1;
		}
		if (!step)
			step = probe_step(hash, n);
		b = next_bucket(b, step, n);
		if (probe + 1 == limit) { /* the caller comes back: start that miss */
			__builtin_prefetch(buckets + b * 64);
			return LOOKUP_FURTHER;
		}
	}
	return LOOKUP_SLOW;
}

static inline __attribute__((always_inline)) int
lookup_k8v8(const struct hashtable *h, uint64_t k, uint64_t hash, uint64_t *out)
{
	return lookup_k8v8_upto(h, k, hash, out, UINT64_MAX);
}

static int search_general(struct hashtable *h, const void *k, void *datum)
{
	int rc = check_key(h, k);
	if (rc)
		return rc;
	if (!datum && h->g.value_size)
		return fail(-EINVAL, "NULL value buffer");
	if (h->g.value_size > SMALL_VALUE)
		return lookup(h, k, key_hash(h, k), datum);
	unsigned char staged[SMALL_VALUE]; /* a -1 leaves datum untouched */
	rc = lookup(h, k, key_hash(h, k), staged);
	if (rc == 0 && h->g.value_size)
		memcpy(datum, staged, h->g.value_size);
	return rc;
}

/* Kept to a few dozen instructions for the common shape: independent
 * lookups overlap their cache misses only as far as the CPU's reorder
 * window reaches, so every instruction here costs throughput. */
int hashtable_search(struct hashtable *h, void *k, void *datum)
{
	if (__builtin_expect(h && k && datum && h->k8v8, 1)) {
		uint64_t key, value;
		memcpy(&key, k, 8);
		if (key == h->empty_u64 || key == h->deleted_u64)
			return search_general(h, k, datum); /* reports the sentinel */
		uint64_t hash = hash_u64(key, h->seed);
		int rc = lookup_k8v8(h, key, hash, &value);
		if (rc == LOOKUP_SLOW) /* a version changed: the general path, same hash */
			rc = lookup(h, k, hash, &value);
		if (rc == 0)
			memcpy(datum, &value, 8);
		return rc;
	}
	return search_general(h, k, datum);
}

/* Keys per prefetch window: enough independent misses in flight to cover
 * memory latency, few enough that the lines stay in L1. */
#define BATCH_WINDOW 16

/* Starts the cache misses of the two words a batched lookup reads first:
 * the home bucket, and the overflow word that says whether to go on.
 * always_inline: GCC 12 deems a function that only prefetches free of
 * effects and deletes its calls, prefetches and all. */
static inline __attribute__((always_inline)) void prefetch_home(const struct hashtable *h,
                                                                uint64_t hash)
{
	uint64_t b = home_bucket(hash, h->g.nbuckets);
	__builtin_prefetch(bucket_at(h, b));
	__builtin_prefetch(&h->overflow[b]);
}

static inline void batch_prefetch(const struct hashtable *h, const unsigned char *kp,
                                  size_t count, uint64_t *hashes)
{
	for (size_t i = 0; i < count; i++) {
		uint64_t k;
		memcpy(&k, kp + i * 8, 8);
		hashes[i] = hash_u64(k, h->seed);
		prefetch_home(h, hashes[i]);
	}
}

/* The batch loop for the common shape, in chunks of BATCH_WINDOW keys,
 * software-pipelined: while a chunk is answered from its home buckets, the
 * next chunk's lines are on their way.  Keys that must go past their home
 * bucket (a fifth of hits at load 0.8) are set aside with their second
 * bucket prefetched and answered at the end of the chunk, so their second
 * misses overlap too instead of stalling the loop one by one. */
static long search_batch_k8v8(const struct hashtable *h, size_t n, const unsigned char *kp,
                              unsigned char *vp, int *found)
{
	uint64_t hashes[2][BATCH_WINDOW];
	uint32_t later[BATCH_WINDOW];
	long hits = 0;
	batch_prefetch(h, kp, n < BATCH_WINDOW ? n : BATCH_WINDOW, hashes[0]);
	for (size_t base = 0, c = 0; base < n; base += BATCH_WINDOW, c ^= 1) {
		size_t m = n - base < BATCH_WINDOW ? n - base : BATCH_WINDOW, nlater = 0;
		size_t next = base + m;
		if (next < n)
			batch_prefetch(h, kp + next * 8, n - next < BATCH_WINDOW ? n - next : BATCH_WINDOW,
			               hashes[c ^ 1]);
		for (size_t j = 0; j < m + nlater; j++) {
			bool second_pass = j >= m;
			size_t i = second_pass ? later[j - m] : j;
			uint64_t k, value, hash = hashes[c][i];
			memcpy(&k, kp + (base + i) * 8, 8);
			if (k == h->empty_u64 || k == h->deleted_u64)
				return fail(-EINVAL, "key %zu of the batch equals a sentinel", base + i);
			int rc = lookup_k8v8_upto(h, k, hash, &value, second_pass ? UINT64_MAX : 1);
			if (rc == LOOKUP_FURTHER) { /* its second bucket is on its way */
				later[nlater++] = (uint32_t)i;
				continue;
			}
			if (rc == LOOKUP_SLOW)
				rc = lookup(h, kp + (base + i) * 8, hash, &value);
			if (rc < -1)
				return rc;
			found[base + i] = rc;
			if (rc == 0) {
				memcpy(vp + (base + i) * 8, &value, 8);
				hits++;
			}
		}
	}
	return hits;
}

long hashtable_search_batch(struct hashtable *h, size_t n, const void *keys, void *values,
                            int *found)
{
	if (!h || (n && (!keys || !found || (!values && h->g.value_size))))
		return fail(-EINVAL, "NULL table handle, keys, values or found array");
	if (h->k8v8)
		return search_batch_k8v8(h, n, keys, values, found);
	const unsigned char *kp = keys;
	unsigned char *vp = values;
	const uint32_t ks = h->g.key_size, vs = h->g.value_size;
	uint64_t hashes[BATCH_WINDOW];
	long hits = 0;
	for (size_t i = 0; i < n && i < BATCH_WINDOW; i++) {
		hashes[i] = key_hash(h, kp + i * ks);
		prefetch_home(h, hashes[i]);
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t hash = hashes[i % BATCH_WINDOW];
		if (i + BATCH_WINDOW < n) {
			hashes[i % BATCH_WINDOW] = key_hash(h, kp + (i + BATCH_WINDOW) * ks);
			prefetch_home(h, hashes[i % BATCH_WINDOW]);
		}
		if (is_sentinel(h, kp + i * ks))
			return fail(-EINVAL, "key %zu of the batch equals a sentinel", i);
		unsigned char staged[SMALL_VALUE];
		void *out = vs > SMALL_VALUE ? vp + i * vs : staged;
		int rc = lookup(h, kp + i * ks, hash, out);
		if (rc < -1)
			return rc;
		found[i] = rc;
		if (rc == 0) {
			if (out == staged && vs)
				memcpy(vp + i * vs, staged, vs);
			hits++;
		}
	}
	return hits;
}

/* ---- the writer lock -------------------------------------------------------- */

/* This process's pid and start time, read once (getpid() is a system call
 * in current glibc) and forgotten in a fork()ed child. */
static pid_t cached_pid;
static uint64_t cached_start;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void forget_pid(void) { cached_pid = 0; }
static void register_atfork(void) { pthread_atfork(NULL, NULL, forget_pid); }

static void record_holder(struct hashtable *h)
{
	pthread_once(&atfork_once, register_atfork);
	if (cached_pid == 0) { /* under the writer lock: one thread at a time */
		cached_start = process_start_time(getpid());
		cached_pid = getpid();
	}
	pid_t pid = cached_pid;
	if (atomic_load_explicit(&h->hdr->holder_pid, memory_order_relaxed) != pid ||
	    atomic_load_explicit(&h->hdr->holder_start, memory_order_relaxed) != cached_start) {
		atomic_store_explicit(&h->hdr->holder_start, cached_start, memory_order_relaxed);
		/* release: readers that see the pid see its start time */
		atomic_store_explicit(&h->hdr->holder_pid, pid, memory_order_release);
	}
}

static void recover(struct hashtable *h);

/* Takes the writer lock, recovering from a dead holder.  Returns 1 if it
 * recovered, 0 if not, or a negative code. */
static int writer_lock(struct hashtable *h)
{
	int rc = pthread_mutex_lock(&h->hdr->lock.mutex);
	if (rc != 0 && rc != EOWNERDEAD)
		return fail(-rc, "cannot take the table's writer lock: %s", strerror(rc));
	record_holder(h);
	if (rc == EOWNERDEAD) {
		recover(h);
		pthread_mutex_consistent(&h->hdr->lock.mutex);
		return 1;
	}
	return 0;
}

static void writer_unlock(struct hashtable *h)
{
	pthread_mutex_unlock(&h->hdr->lock.mutex);
}

/* ---- writer operations ---------------------------------------------------- */

static inline void version_odd(_Atomic uint32_t *stripe)
{
	uint32_t v = atomic_load_explicit(stripe, memory_order_relaxed);
	atomic_store_explicit(stripe, v + 1, memory_order_relaxed);
	/* release fence: the odd version is visible before any slot store that
	 * follows; pairs with the reader's acquire fence before its re-check */
	atomic_thread_fence(memory_order_release);
}

static inline void version_even(_Atomic uint32_t *stripe)
{
	uint32_t v = atomic_load_explicit(stripe, memory_order_relaxed);
	/* release: the slot stores are visible before the even version; pairs
	 * with the reader's acquire load of the version */
	atomic_store_explicit(stripe, v + 1, memory_order_release);
}

/* Writes a slot under its bucket's seqlock: the key (if given) and the
 * value (if given).  The value goes first so that a new key is never
 * visible with an old value, even to the writer's own recovery. */
static void slot_write(struct hashtable *h, uint64_t slot, const void *key, const void *value)
{
	uint64_t b = slot / h->g.slots_per_bucket;
	_Atomic uint32_t *stripe = stripe_of(h, b);
	unsigned char *p = slot_at(h, slot);
	if (!(atomic_load_explicit(stripe, memory_order_relaxed) & 1))
		version_odd(stripe); /* odd already: redoing a dead writer's write */
	if (value)
		shared_store(p + h->g.value_offset, value, h->g.value_size);
	if (key)
		shared_store(p, key, h->g.key_size);
	version_even(stripe);
}

/* Where a key is, or where it would go.  Writer only (the lock is held, so
 * plain comparisons of slot bytes are race-free: only this thread writes). */
struct location {
	bool found;
	uint64_t slot;   /* the key's slot, or the first free slot on its path */
	uint64_t probe;  /* buckets on the path before the slot's own */
	uint64_t home, step;
	uint64_t first;     /* J_MOVE: path index of the destination, else 0 */
	uint16_t bit;       /* the key's filter bit */
	uint64_t from_slot; /* J_MOVE: the key's current slot */
};

static inline bool slot_is_free(const struct hashtable *h, const unsigned char *p)
{
	if (h->key_class == KEY_U64) {
		uint64_t k = load_u64(p);
		return k == h->empty_u64 || k == h->deleted_u64;
	}
	return shared_equal(p, h->empty, h->g.key_size) ||
	       shared_equal(p, h->deleted, h->g.key_size);
}

/* Index of the bucket's first free slot, or -1.  Writer only. */
static int bucket_free_slot(const struct hashtable *h, const unsigned char *bucket)
{
	const uint32_t spb = h->g.slots_per_bucket, ss = h->g.slot_size;
	if (h->key_class == KEY_U64) {
		for (uint32_t i = 0; i < spb; i++) {
			uint64_t k = load_u64(bucket + i * ss);
			if (k == h->empty_u64 || k == h->deleted_u64)
				return (int)i;
		}
		return -1;
	}
	for (uint32_t i = 0; i < spb; i++)
		if (slot_is_free(h, bucket + i * ss))
			return (int)i;
	return -1;
}

static void locate(const struct hashtable *h, const void *key, uint64_t hash,
                   struct location *loc)
{
	const uint64_t n = h->g.nbuckets;
	const uint32_t spb = h->g.slots_per_bucket;
	bool have_free = false, searching = true;
	uint64_t b = home_bucket(hash, n);
	loc->found = false;
	loc->bit = filter_bit(hash);
	loc->first = 0;
	loc->from_slot = 0;
	loc->home = b;
	loc->step = probe_step(hash, n);
	for (uint64_t probe = 0; probe < n && (searching || !have_free); probe++) {
		const unsigned char *bucket = bucket_at(h, b);
		if (searching) {
			int i = bucket_find(h, bucket, key);
			if (i >= 0) {
				loc->found = true;
				loc->slot = b * spb + (uint32_t)i;
				loc->probe = probe;
				return;
			}
			if (!passes(atomic_load_explicit(&h->overflow[b], memory_order_relaxed), hash))
				searching = false;
		}
		if (!have_free) {
			int i = bucket_free_slot(h, bucket);
			if (i >= 0) {
				have_free = true;
				loc->slot = b * spb + (uint32_t)i;
				loc->probe = probe;
			}
		}
		b = next_bucket(b, loc->step, n);
	}
}

/* A key joins the keys passing a bucket: count up (sticky at 255), its
 * filter bit set. */
static inline uint16_t overflow_raised(uint16_t o, uint16_t bit)
{
	uint16_t count = o & OVERFLOW_COUNT;
	return (uint16_t)((o & OVERFLOW_FILTER) | bit |
	                  (count == OVERFLOW_STICKY ? count : count + 1));
}

/* A key leaves them: count down; at zero nobody passes, so the filter
 * clears too.  A sticky count stays, filter and all. */
static inline uint16_t overflow_lowered(uint16_t o)
{
	uint16_t count = o & OVERFLOW_COUNT;
	if (count == OVERFLOW_STICKY || count == 0)
		return o;
	return count == 1 ? 0 : (uint16_t)((o & OVERFLOW_FILTER) | (count - 1));
}

static inline uint16_t overflow_changed(uint16_t o, bool raise, uint16_t bit)
{
	return raise ? overflow_raised(o, bit) : overflow_lowered(o);
}

/* Applies a raise (+1 and the key's filter bit) or a lowering to the words
 * of the journalled path, from the step after the one journal.progress
 * records (redoing that one exactly, from its recorded old word).  Safe to
 * repeat after a crash at any point. */
static void path_counts_apply(struct hashtable *h, bool raise)
{
	struct journal *j = &h->hdr->journal;
	uint64_t b = j->home, from = j->first;
	uint64_t p = atomic_load_explicit(&j->progress, memory_order_relaxed);
	if (p) {
		uint64_t done = (p >> 16) - 1;
		for (uint64_t i = 0; i < done; i++)
			b = next_bucket(b, j->step, h->g.nbuckets);
		atomic_store_explicit(&h->overflow[b], overflow_changed((uint16_t)p, raise, j->bit),
		                      memory_order_release);
		b = next_bucket(b, j->step, h->g.nbuckets);
		from = done + 1;
	} else {
		for (uint64_t i = 0; i < from; i++)
			b = next_bucket(b, j->step, h->g.nbuckets);
	}
	for (uint64_t i = from; i < j->probe; i++) {
		uint16_t old = atomic_load_explicit(&h->overflow[b], memory_order_relaxed);
		atomic_store_explicit(&j->progress, ((i + 1) << 16) | old, memory_order_relaxed);
		/* release: the progress record is stored before the word changes */
		atomic_store_explicit(&h->overflow[b], overflow_changed(old, raise, j->bit),
		                      memory_order_release);
		b = next_bucket(b, j->step, h->g.nbuckets);
	}
}

static unsigned char *journal_key(struct hashtable *h) { return h->base + h->g.off_jkey; }
static unsigned char *journal_value(struct hashtable *h) { return h->base + h->g.off_jvalue; }

static void journal_begin(struct hashtable *h, enum journal_op op, const struct location *loc,
                          const void *key, const void *value)
{
	struct journal *j = &h->hdr->journal;
	struct shm_header *hd = h->hdr;
	uint64_t count = atomic_load_explicit(&hd->count, memory_order_relaxed);
	uint64_t coll = atomic_load_explicit(&hd->collisions, memory_order_relaxed);
	uint64_t maxp = atomic_load_explicit(&hd->max_probe, memory_order_relaxed);
	if (key)
		memcpy(journal_key(h), key, h->g.key_size);
	if (value)
		memcpy(journal_value(h), value, h->g.value_size);
	j->slot = loc->slot;
	j->bit = loc->bit;
	j->from_slot = loc->from_slot;
	j->home = loc->home;
	j->step = loc->step;
	j->first = loc->first;
	j->probe = loc->probe;
	j->count_after = count;
	j->collisions_after = coll;
	j->max_probe_after = maxp;
	if (op == J_INSERT) {
		j->count_after = count + 1;
		j->collisions_after = coll + loc->probe;
		j->max_probe_after = loc->probe > maxp ? loc->probe : maxp;
	} else if (op == J_DELETE) {
		j->count_after = count - 1;
		j->collisions_after = coll - loc->probe;
	} else if (op == J_MOVE) {
		j->collisions_after = coll - (loc->probe - loc->first);
	}
	atomic_store_explicit(&j->progress, 0, memory_order_relaxed);
	/* release: the journal's fields are complete before it is marked busy */
	atomic_store_explicit(&j->op, op, memory_order_release);
}

static void journal_finish(struct hashtable *h)
{
	struct journal *j = &h->hdr->journal;
	struct shm_header *hd = h->hdr;
	atomic_store_explicit(&hd->count, j->count_after, memory_order_relaxed);
	atomic_store_explicit(&hd->collisions, j->collisions_after, memory_order_relaxed);
	atomic_store_explicit(&hd->max_probe, j->max_probe_after, memory_order_relaxed);
	/* release: the counters are final before the journal reads idle */
	atomic_store_explicit(&j->op, J_IDLE, memory_order_release);
}

/* Runs the journalled operation from wherever it stands to its end.  The
 * same code does the first run and a recovery's redo. */
static void journal_run(struct hashtable *h)
{
	struct journal *j = &h->hdr->journal;
	switch (atomic_load_explicit(&j->op, memory_order_acquire)) {
	case J_INSERT:
		path_counts_apply(h, true);          /* Invariant C: counts first */
		slot_write(h, j->slot, journal_key(h), journal_value(h));
		break;
	case J_OVERWRITE:
		slot_write(h, j->slot, NULL, journal_value(h));
		break;
	case J_DELETE:
		slot_write(h, j->slot, h->empty, NULL); /* Invariant C: slot first */
		path_counts_apply(h, false);
		break;
	case J_MOVE:
		if (!(atomic_load_explicit(&h->hdr->moves, memory_order_relaxed) & 1))
			version_odd(&h->hdr->moves); /* odd already: a redo */
		slot_write(h, j->slot, journal_key(h), journal_value(h)); /* copy first, */
		slot_write(h, j->from_slot, h->empty, NULL);             /* then leave */
		path_counts_apply(h, false);
		version_even(&h->hdr->moves);
		break;
	default:
		return;
	}
	journal_finish(h);
}

static void recover(struct hashtable *h)
{
	journal_run(h);
	for (uint64_t s = 0; s < h->g.nstripes; s++) /* a version left odd */
		if (atomic_load_explicit(&h->stripes[s], memory_order_relaxed) & 1)
			version_even(&h->stripes[s]);
	if (atomic_load_explicit(&h->hdr->moves, memory_order_relaxed) & 1)
		version_even(&h->hdr->moves);
	atomic_fetch_add_explicit(&h->hdr->recoveries, 1, memory_order_relaxed);
}

static void bump(_Atomic uint64_t *counter)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
}

static int writable(const struct hashtable *h)
{
	if (h->readonly)
		return fail(-EROFS, "the table was opened read-only (HASHTABLE_RDONLY); writes "
		                    "need a handle opened without it");
	return 0;
}

static int upsert(struct hashtable *h, const void *key, const void *value)
{
	int rc = check_key(h, key);
	if (rc || (rc = writable(h)))
		return rc;
	if (!value && h->g.value_size)
		return fail(-EINVAL, "NULL value");
	uint64_t hash = key_hash(h, key);
	if ((rc = writer_lock(h)) < 0)
		return rc;
	struct location loc;
	locate(h, key, hash, &loc);
	if (loc.found) {
		journal_begin(h, J_OVERWRITE, &loc, NULL, value);
		journal_run(h);
		bump(&h->hdr->updates);
		rc = 1;
	} else if (atomic_load_explicit(&h->hdr->count, memory_order_relaxed) >= h->max_count) {
		rc = fail(-ENOMEM, "the table is at its load limit (%llu keys); "
		                   "overwrites still succeed, new keys need a larger table",
		          (unsigned long long)h->max_count);
	} else {
		journal_begin(h, J_INSERT, &loc, key, value);
		journal_run(h);
		bump(&h->hdr->inserts);
		rc = 0;
	}
	writer_unlock(h);
	return rc;
}

int hashtable_update(struct hashtable *h, void *k, void *d)
{
	return upsert(h, k, d);
}

/* Moves the key in slot `slot` of bucket c back to the first free slot on
 * its path, if one lies before c.  Returns true if it moved. */
static bool reclaim_key(struct hashtable *h, uint64_t c, uint64_t slot)
{
	unsigned char *p = slot_at(h, slot);
	if (slot_is_free(h, p))
		return false;
	memcpy(journal_key(h), p, h->g.key_size); /* writer: no concurrent store */
	uint64_t hash = key_hash(h, journal_key(h)), n = h->g.nbuckets;
	struct location loc = {.home = home_bucket(hash, n), .step = probe_step(hash, n),
	                       .from_slot = slot, .bit = filter_bit(hash)};
	bool have_free = false;
	uint64_t b = loc.home, d;
	for (d = 0; b != c && d < n; d++, b = next_bucket(b, loc.step, n)) {
		const unsigned char *bucket = bucket_at(h, b);
		for (uint32_t i = 0; !have_free && i < h->g.slots_per_bucket; i++)
			if (slot_is_free(h, bucket + i * h->g.slot_size)) {
				have_free = true;
				loc.slot = b * h->g.slots_per_bucket + i;
				loc.first = d;
			}
	}
	if (!have_free || b != c)
		return false;
	loc.probe = d;
	memcpy(journal_value(h), p + h->g.value_offset, h->g.value_size);
	journal_begin(h, J_MOVE, &loc, NULL, NULL); /* key and value already staged */
	journal_run(h);
	bump(&h->hdr->relocations);
	return true;
}

/* Reclaims as it goes.  With no tombstones a delete needs no clean-up, but
 * keys that overflowed stay displaced after their home bucket frees up: under
 * steady churn every insert lands at the load limit, and hits drift from the
 * cost of a fresh fill towards the cost of a miss.  So each delete also
 * sweeps one bucket, moving its displaced keys back to free slots earlier on
 * their paths.  A move copies the key forward before it leaves its slot, and
 * makes `moves` odd for its duration: a reader that missed while a move ran
 * retries, so a key present throughout a search is never missed. */
static void reclaim_step(struct hashtable *h)
{
	uint64_t slots = h->g.nbuckets * h->g.slots_per_bucket;
	unsigned sweep = h->max_count * 100 > slots * SWEEP_FULLER_PERCENT ? SWEEP_BUCKETS_FULLER
	               : h->max_count * 100 > slots * SWEEP_FULL_PERCENT   ? SWEEP_BUCKETS_FULL
	                                                                   : SWEEP_BUCKETS;
	for (unsigned k = 0; k < sweep; k++) {
		uint64_t c = h->hdr->sweep_cursor;
		if (c >= h->g.nbuckets)
			c = 0;
		h->hdr->sweep_cursor = c + 1 == h->g.nbuckets ? 0 : c + 1;
		for (uint32_t i = 0; i < h->g.slots_per_bucket; i++)
			reclaim_key(h, c, c * h->g.slots_per_bucket + i);
	}
}

int hashtable_delete(struct hashtable *h, const void *key)
{
	int rc = check_key(h, key);
	if (rc || (rc = writable(h)))
		return rc;
	uint64_t hash = key_hash(h, key);
	if ((rc = writer_lock(h)) < 0)
		return rc;
	struct location loc;
	locate(h, key, hash, &loc);
	if (loc.found) {
		journal_begin(h, J_DELETE, &loc, NULL, NULL);
		journal_run(h);
		bump(&h->hdr->deletes);
		reclaim_step(h);
		rc = 0;
	} else {
		rc = -1;
	}
	writer_unlock(h);
	return rc;
}

int hashtable_recover(struct hashtable *h)
{
	if (!h)
		return fail(-EINVAL, "NULL table handle");
	int rc = writable(h);
	if (rc)
		return rc;
	rc = writer_lock(h);
	if (rc >= 0)
		writer_unlock(h);
	return rc;
}

/* ---- length-taking calls ------------------------------------------------ */

/* Widths up to this are padded on the stack; wider values are padded in a
 * heap copy (keys never need one: HASHTABLE_MAX_KEY is 1024). */
#define PAD_ON_STACK 1024u

/* Makes `len` bytes at src into a `width`-byte field padded with NUL bytes:
 * *out is src itself when len == width, else buf (of `width` bytes, or
 * NULL to allocate; the caller frees *alloc).  Reads no byte of src past
 * len. */
static int pad_field(const char *what, const void *src, size_t len, uint32_t width,
                     unsigned char *buf, const void **out, unsigned char **alloc)
{
	*alloc = NULL;
	if (len > width)
		return fail(-EINVAL, "a %s of %zu bytes is wider than the table's %u-byte %ss; "
		                     "shorter ones are padded with NUL bytes, longer ones need a "
		                     "table created with wider %ss", what, len, width, what, what);
	if (len && !src)
		return fail(-EINVAL, "NULL %s with a length of %zu bytes", what, len);
	if (len == width) {
		*out = src;
		return 0;
	}
	if (!buf && !(buf = *alloc = malloc(width)))
		return fail(-ENOMEM, "out of memory padding a %s to %u bytes", what, width);
	if (len)
		memcpy(buf, src, len);
	memset(buf + len, 0, width - len);
	*out = buf;
	return 0;
}

int hashtable_get(struct hashtable *h, const void *key, size_t key_len, void *value)
{
	if (!h || !key)
		return fail(-EINVAL, "NULL table handle or key");
	unsigned char kbuf[HASHTABLE_MAX_KEY], *unused;
	const void *k = NULL;
	int rc = pad_field("key", key, key_len, h->g.key_size, kbuf, &k, &unused);
	return rc ? rc : hashtable_search(h, (void *)(uintptr_t)k, value);
}

int hashtable_put(struct hashtable *h, const void *key, size_t key_len, const void *value,
                  size_t value_len)
{
	if (!h || !key)
		return fail(-EINVAL, "NULL table handle or key");
	unsigned char kbuf[HASHTABLE_MAX_KEY], vbuf[PAD_ON_STACK], *unused, *valloc;
	const void *k = NULL, *v = NULL;
	int rc = pad_field("key", key, key_len, h->g.key_size, kbuf, &k, &unused);
	if (rc)
		return rc;
	rc = pad_field("value", value, value_len, h->g.value_size,
	               h->g.value_size <= PAD_ON_STACK ? vbuf : NULL, &v, &valloc);
	if (rc)
		return rc;
	rc = upsert(h, k, v ? v : vbuf); /* a 0-byte value: any non-NULL pointer */
	free(valloc);
	return rc;
}

int hashtable_del(struct hashtable *h, const void *key, size_t key_len)
{
	if (!h || !key)
		return fail(-EINVAL, "NULL table handle or key");
	unsigned char kbuf[HASHTABLE_MAX_KEY], *unused;
	const void *k = NULL;
	int rc = pad_field("key", key, key_len, h->g.key_size, kbuf, &k, &unused);
	return rc ? rc : hashtable_delete(h, k);
}

/* ---- creating and attaching ------------------------------------------------ */

/* ---- diagnosis: why the kernel refused, and the command that fixes it ----
 * The one place that reads the kernel's limits and the segment table
 * (/proc/sys/kernel/shm*, /proc/sysvipc/shm, /proc/meminfo) to turn a
 * refusal into a hashtable_last_error() text naming the limit, its value,
 * what was asked, and the exact command that removes the obstacle.  The
 * tools print that text rather than redo the diagnosis. */

/* A number from a /proc file, or `dflt` if it cannot be read. */
static uint64_t read_proc_u64(const char *path, uint64_t dflt)
{
	unsigned long long v = dflt;
	FILE *f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = dflt;
		fclose(f);
	}
	return v;
}

/* A field of /proc/meminfo ("HugePages_Free", in pages, or "Hugepagesize",
 * in kB), or `dflt`. */
static uint64_t meminfo_u64(const char *field, uint64_t dflt)
{
	char line[128];
	size_t n = strlen(field);
	unsigned long long v = dflt;
	FILE *f = fopen("/proc/meminfo", "re");
	if (!f)
		return dflt;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			if (sscanf(line + n + 1, "%llu", &v) != 1)
				v = dflt;
			break;
		}
	fclose(f);
	return v;
}

/* The huge page size in bytes (2 MiB if unreadable). */
static uint64_t hugepage_bytes(void) { return meminfo_u64("Hugepagesize", 2048) * 1024; }

/* One row of /proc/sysvipc/shm (readable by anyone, unlike IPC_STAT on a
 * segment we may not read). */
struct segment_row {
	int shmid;
	unsigned mode, uid, gid;
};

static bool segment_row_of(key_t key, struct segment_row *r)
{
	FILE *f = fopen("/proc/sysvipc/shm", "re");
	char line[512];
	bool found = false;
	if (!f)
		return false;
	while (!found && fgets(line, sizeof line, f)) {
		int k, id;
		unsigned perms, uid, gid;
		/* key shmid perms size cpid lpid nattch uid gid ... */
		if (sscanf(line, "%d %d %o %*u %*d %*d %*u %u %u", &k, &id, &perms, &uid, &gid) == 5 &&
		    (key_t)k == key) {
			*r = (struct segment_row){.shmid = id, .mode = perms & 0777, .uid = uid, .gid = gid};
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* "name (uid N)", or "uid N" for a user with no name. */
static const char *user_text(unsigned uid, char *buf, size_t n)
{
	struct passwd pw, *res = NULL;
	char scratch[1024];
	if (getpwuid_r((uid_t)uid, &pw, scratch, sizeof scratch, &res) == 0 && res)
		snprintf(buf, n, "%s (uid %u)", res->pw_name, uid);
	else
		snprintf(buf, n, "uid %u", uid);
	return buf;
}

static const char *group_text(unsigned gid, char *buf, size_t n)
{
	struct group gr, *res = NULL;
	char scratch[1024];
	if (getgrgid_r((gid_t)gid, &gr, scratch, sizeof scratch, &res) == 0 && res)
		snprintf(buf, n, "%s (gid %u)", res->gr_name, gid);
	else
		snprintf(buf, n, "gid %u", gid);
	return buf;
}

static bool in_group(unsigned gid)
{
	gid_t groups[256];
	if ((unsigned)getegid() == gid)
		return true;
	int n = getgroups(256, groups);
	for (int i = 0; i < n; i++)
		if ((unsigned)groups[i] == gid)
			return true;
	return false;
}

/* The segment at key refused this user: name its owner, group and mode,
 * the permission class (owner, group, others) this user falls in, and the
 * way out.  A mode that allows reading gets "open it read-only" for a
 * refused read-write attach. */
static int explain_access(key_t key, bool readonly)
{
	struct segment_row r;
	if (!segment_row_of(key, &r))
		return fail(-EACCES, "permission denied attaching the segment at key 0x%08x",
		            (unsigned)key);
	unsigned me = (unsigned)geteuid(), shift = me == r.uid ? 6 : in_group(r.gid) ? 3 : 0;
	unsigned bits = (r.mode >> shift) & 06; /* 04 read, 02 write */
	const char *who = shift == 6 ? "its owner" : shift == 3 ? "its group" : "others";
	char owner[128], group[128], you[128];
	user_text(r.uid, owner, sizeof owner);
	group_text(r.gid, group, sizeof group);
	user_text(me, you, sizeof you);
	if (!readonly && (bits & 04))
		return fail(-EACCES, "segment %d (key 0x%08x): owner %s, group %s, mode %04o; you are "
		                     "%s, and the mode lets %s read it but not write it: a read-only "
		                     "open works (HASHTABLE_RDONLY; the tools' get, stat and dump); "
		                     "to write, its owner or root can run `shmkv chmod %04o 0x%08x`",
		            r.shmid, (unsigned)key, owner, group, r.mode, you, who,
		            r.mode | (06u << shift), (unsigned)key);
	unsigned want = readonly ? 04u : 06u;
	return fail(-EACCES, "segment %d (key 0x%08x): owner %s, group %s, mode %04o; you are %s, "
	                     "and the mode does not let %s %s it; its owner or root can run "
	                     "`shmkv chmod %04o 0x%08x`, or `ipcrm -m %d` and recreate the table "
	                     "with that mode", r.shmid, (unsigned)key, owner, group, r.mode, you,
	            who, readonly ? "read" : "write", r.mode | (want << shift), (unsigned)key,
	            r.shmid);
}

/* Segments on the host (this IPC namespace) and the pages they use, as the
 * kernel counts them against kernel.shmall. */
static void segments_in_use(uint64_t page, uint64_t *segments, uint64_t *pages)
{
	FILE *f = fopen("/proc/sysvipc/shm", "re");
	char line[512];
	*segments = *pages = 0;
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		unsigned long long size;
		if (sscanf(line, "%*d %*d %*o %llu", &size) == 1) {
			*pages += (size + page - 1) / page;
			(*segments)++;
		}
	}
	fclose(f);
}

static int explain_nospc(size_t size)
{
	uint64_t shmall = read_proc_u64("/proc/sys/kernel/shmall", 0);
	uint64_t shmmni = read_proc_u64("/proc/sys/kernel/shmmni", UINT64_MAX);
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), segments, used;
	segments_in_use(page, &segments, &used);
	if (segments >= shmmni)
		return fail(-ENOSPC, "the host has %llu shared memory segments, the most "
		                     "kernel.shmmni (%llu) allows; raise it with: sysctl -w "
		                     "kernel.shmmni=%llu, or remove unused segments (ipcs -m, "
		                     "ipcrm -m ID)", (unsigned long long)segments,
		            (unsigned long long)shmmni, (unsigned long long)segments + 1);
	uint64_t need = used + (size + page - 1) / page;
	return fail(-ENOSPC, "a segment of %zu bytes would pass kernel.shmall: %llu of its %llu "
	                     "pages of %llu bytes are in use; raise it with: sysctl -w "
	                     "kernel.shmall=%llu, or remove unused segments (ipcs -m, ipcrm -m ID)",
	            size, (unsigned long long)used, (unsigned long long)shmall,
	            (unsigned long long)page, (unsigned long long)need);
}

static int explain_hugepages(int err, size_t size)
{
	if (err == EPERM) /* reported as -EACCES: -EPERM is -1, "not found" */
		return fail(-EACCES, "this user may not back shared memory with huge pages: it "
		                     "needs root or membership of group vm.hugetlb_shm_group (now "
		                     "%llu); as root run: sysctl -w vm.hugetlb_shm_group=%u, or create "
		                     "the table without huge pages",
		            (unsigned long long)read_proc_u64("/proc/sys/vm/hugetlb_shm_group", 0),
		            (unsigned)getegid());
	uint64_t page_kb = meminfo_u64("Hugepagesize", 0);
	if (!page_kb)
		return fail(-ENOMEM, "this kernel offers no huge pages: create the table without "
		                     "huge pages");
	uint64_t need = (size + page_kb * 1024 - 1) / (page_kb * 1024);
	uint64_t total = meminfo_u64("HugePages_Total", 0), free_pages = meminfo_u64("HugePages_Free", 0);
	return fail(-ENOMEM, "a segment of %zu bytes needs %llu huge pages of %llu kB; %llu of "
	                     "%llu are free; reserve more with: sysctl -w vm.nr_hugepages=%llu, or "
	                     "create the table without huge pages", size, (unsigned long long)need,
	            (unsigned long long)page_kb, (unsigned long long)free_pages,
	            (unsigned long long)total,
	            (unsigned long long)(total + (need > free_pages ? need - free_pages : 0)));
}

int hashtable_host_check(char *buf, size_t n)
{
	if (!buf && n)
		return fail(-EINVAL, "NULL buffer with a size of %zu bytes", n);
	if (n)
		buf[0] = 0;
	/* 1: the kernel removes a segment once no process is attached to it
	 * and its creator has exited, so a loaded table dies with its loader */
	if (read_proc_u64("/proc/sys/kernel/shm_rmid_forced", 0) != 1)
		return 0;
	if (n)
		snprintf(buf, n, "kernel.shm_rmid_forced is 1: the kernel removes a table as soon as "
		                 "no process is attached to it and its creator has exited, so a "
		                 "table loaded by a process that then exits is lost; as root run: "
		                 "sysctl -w kernel.shm_rmid_forced=0, or keep a process attached");
	return 1;
}

/* shmget() refused a new segment of `size` bytes with errno err. */
static int explain_shmget(int err, size_t size, bool huge)
{
	uint64_t shmmax = read_proc_u64("/proc/sys/kernel/shmmax", UINT64_MAX);
	if (err == EINVAL && size > shmmax)
		return fail(-EINVAL, "a segment of %zu bytes exceeds kernel.shmmax (%llu bytes); "
		                     "raise it with: sysctl -w kernel.shmmax=%zu",
		            size, (unsigned long long)shmmax, size);
	if (err == EINVAL)
		return fail(-EINVAL, "the kernel refused a segment of %zu bytes (kernel.shmmax is "
		                     "%llu bytes)", size, (unsigned long long)shmmax);
	if (err == ENOSPC)
		return explain_nospc(size);
	if (huge && (err == ENOMEM || err == EPERM))
		return explain_hugepages(err, size);
	if (err == ENOMEM)
		return fail(-ENOMEM, "the kernel has no memory for a segment of %zu bytes", size);
	if (err == EPERM)
		err = EACCES;
	return fail(-err, "shmget failed for %zu bytes: %s", size, strerror(err));
}

static int key_for(const char *path, key_t ipc_key, key_t *out)
{
	if (!path) {
		*out = ipc_key;
		return 0;
	}
	key_t k = ftok(path, 1);
	if (k == (key_t)-1)
		return fail(-errno, "cannot name a table by %s: %s (the path must be an existing file)",
		            path, strerror(errno));
	*out = k;
	return 0;
}

/* The device and inode of the file a path names (what ftok() derives the
 * key from).  Returns false if it cannot be read. */
static bool path_identity(const char *path, uint64_t *dev, uint64_t *ino)
{
	struct stat sb;
	if (!path || stat(path, &sb) != 0)
		return false;
	*dev = (uint64_t)sb.st_dev;
	*ino = (uint64_t)sb.st_ino;
	return true;
}

/* Remembers which file a handle's path named when it was opened, for
 * stats.name_mismatch. */
static void note_path(struct hashtable *h, const char *path)
{
	h->by_path = path_identity(path, &h->path_dev, &h->path_ino);
}

static void fill_sentinel(unsigned char *dst, const void *given, uint32_t n, int fill)
{
	if (given)
		memcpy(dst, given, n);
	else
		memset(dst, fill, n);
}

/* Checks a header against the segment before anything else reads it. */
static int validate_header(struct hashtable *h, size_t segsz)
{
	const struct shm_header *hd = h->hdr;
	if (segsz < sizeof *hd)
		return fail(-EPROTO, "segment %d is %zu bytes, too small to be a shmkv table; "
		                     "remove it with: ipcrm -m %d if it is stale", h->shmid, segsz, h->shmid);
	if (hd->magic != SHMKV_MAGIC)
		return fail(-EPROTO, "segment %d (key 0x%08x) is not a shmkv table (no shmkv magic); "
		                     "it was left untouched", h->shmid, (unsigned)h->ipc_key);
	if (hd->format != SHMKV_FORMAT)
		return fail(-EPROTO, "segment %d holds shmkv format %u; this library reads format %u",
		            h->shmid, hd->format, SHMKV_FORMAT);
	struct geometry g;
	if (!widths_valid(hd->key_size, hd->value_size) || hd->segment_bytes > segsz ||
	    !layout(hd->key_size, hd->value_size, hd->segment_bytes, &g) ||
	    g.nbuckets != hd->nbuckets || g.nstripes != hd->nstripes ||
	    g.off_buckets != hd->off_buckets || g.slot_size != hd->slot_size ||
	    g.value_offset != hd->value_offset || g.slots_per_bucket != hd->slots_per_bucket ||
	    g.off_jkey != hd->off_jkey || g.off_jvalue != hd->off_jvalue ||
	    hd->max_count > g.nbuckets * g.slots_per_bucket)
		return fail(-EPROTO, "segment %d has a shmkv header whose geometry does not fit its "
		                     "%zu bytes; it is damaged: remove it with: ipcrm -m %d",
		            h->shmid, segsz, h->shmid);
	h->empty = malloc(g.key_size);
	h->deleted = malloc(g.key_size);
	if (!h->empty || !h->deleted)
		return fail(-ENOMEM, "out of memory");
	memcpy(h->empty, h->base + g.off_empty, g.key_size);
	memcpy(h->deleted, h->base + g.off_deleted, g.key_size);
	if (memcmp(h->empty, h->deleted, g.key_size) == 0)
		return fail(-EPROTO, "segment %d has equal empty and deleted sentinels; it is damaged",
		            h->shmid);
	bind_handle(h, &g);
	return 0;
}

/* Waits for a concurrent creator to publish the header (magic is stored
 * last, with release), as long as the creator runs in another process: up
 * to 2 s, ample for initialising even a table with non-zero empty keys. */
static bool wait_for_magic(const struct shm_header *hd, size_t segsz, pid_t creator)
{
	if (segsz < sizeof *hd)
		return true; /* validate_header reports it */
	for (int i = 0; i < CREATOR_WAIT_STEPS; i++) {
		uint64_t m = atomic_load_explicit((_Atomic uint64_t *)(uintptr_t)&hd->magic,
		                                  memory_order_acquire);
		if (m != 0)
			return true;
		char state;
		uint64_t start;
		if (creator == getpid() || (kill(creator, 0) != 0 && errno == ESRCH))
			return false;
		if (process_stat(creator, &state, &start) && (state == 'Z' || state == 'X'))
			return false;
		struct timespec ts = {0, CREATOR_WAIT_STEP_NS};
		nanosleep(&ts, NULL);
	}
	return false;
}

static void handle_free(struct hashtable *h)
{
	if (!h)
		return;
	if (h->base)
		shmdt(h->base);
	free(h->empty);
	free(h->deleted);
	free(h);
}

/* Attaches the segment shmid and validates it. */
static int attach(int shmid, key_t key, bool readonly, struct hashtable **out)
{
	struct shmid_ds ds;
	if (shmctl(shmid, IPC_STAT, &ds) != 0)
		return errno == EACCES ? explain_access(key, readonly)
		                       : fail(-errno, "cannot stat segment %d: %s", shmid, strerror(errno));
	struct hashtable *h = calloc(1, sizeof *h);
	if (!h)
		return fail(-ENOMEM, "out of memory");
	h->shmid = shmid;
	h->ipc_key = key;
	h->readonly = readonly;
	h->segment_bytes = ds.shm_segsz;
	void *p = shmat(shmid, NULL, readonly ? SHM_RDONLY : 0);
	if (p == (void *)-1) {
		int e = errno;
		free(h);
		return e == EACCES ? explain_access(key, readonly)
		                   : fail(-e, "cannot attach segment %d: %s", shmid, strerror(e));
	}
	h->base = p;
	h->hdr = p;
	int rc;
	if (!wait_for_magic(h->hdr, ds.shm_segsz, ds.shm_cpid))
		rc = fail(-EPROTO, "segment %d (key 0x%08x) has no shmkv header (its creator may have "
		                   "died while initialising it); remove it with: ipcrm -m %d",
		          shmid, (unsigned)key, shmid);
	else
		rc = validate_header(h, ds.shm_segsz);
	if (rc) {
		handle_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

static int init_mutex(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int rc = pthread_mutexattr_init(&a);
	if (!rc)
		rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!rc)
		rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	if (!rc)
		rc = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return rc;
}

static uint64_t random_seed(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
	return hash_u64(x, UINT64_C(0x2545f4914f6cdd1d)) | 1;
}

/* Writes the header of a fresh (zero-filled) segment; the magic goes last. */
static int initialise(unsigned char *base, const struct geometry *g, size_t segsz,
                      const struct hashtable_config *cfg, double fraction, bool huge)
{
	struct shm_header *hd = (struct shm_header *)base;
	hd->format = SHMKV_FORMAT;
	hd->flags = huge ? SEG_HUGETLB : 0;
	hd->segment_bytes = segsz;
	hd->key_size = g->key_size;
	hd->value_size = g->value_size;
	hd->slot_size = g->slot_size;
	hd->value_offset = g->value_offset;
	hd->slots_per_bucket = g->slots_per_bucket;
	hd->bucket_bytes = g->bucket_bytes;
	hd->nbuckets = g->nbuckets;
	hd->nstripes = g->nstripes;
	hd->off_empty = g->off_empty;
	hd->off_deleted = g->off_deleted;
	hd->off_jkey = g->off_jkey;
	hd->off_jvalue = g->off_jvalue;
	hd->off_stripes = g->off_stripes;
	hd->off_overflow = g->off_overflow;
	hd->off_buckets = g->off_buckets;
	hd->seed = random_seed();
	hd->max_load = fraction;
	hd->max_count = max_count_for(g->nbuckets * g->slots_per_bucket, fraction);
	hd->created = (int64_t)time(NULL);
	hd->creator_pid = (int32_t)getpid();
	fill_sentinel(base + g->off_empty, cfg->empty_key, g->key_size, 0x00);
	fill_sentinel(base + g->off_deleted, cfg->deleted_key, g->key_size, 0xff);
	bool zero_empty = true;
	for (uint32_t i = 0; i < g->key_size; i++)
		zero_empty &= base[g->off_empty + i] == 0;
	if (!zero_empty) /* the kernel zero-fills; other empty keys are written */
		for (uint64_t s = 0; s < g->nbuckets * g->slots_per_bucket; s++)
			memcpy(base + g->off_buckets + s * g->slot_size, base + g->off_empty, g->key_size);
	int rc = init_mutex(&hd->lock.mutex);
	if (rc)
		return fail(-rc, "cannot initialise the writer lock: %s", strerror(rc));
	/* release: every header field is visible before the magic */
	atomic_store_explicit((_Atomic uint64_t *)(uintptr_t)&hd->magic, SHMKV_MAGIC,
	                      memory_order_release);
	return 0;
}

static int check_config(const struct hashtable_config *cfg, double *fraction)
{
	if (!cfg)
		return fail(-EINVAL, "NULL configuration");
	if (!widths_valid(cfg->key_size, cfg->value_size))
		return fail(-EINVAL, "key width %u / value width %u out of range (keys 1..%u bytes, "
		                     "values 0..%u bytes)",
		            cfg->key_size, cfg->value_size, HASHTABLE_MAX_KEY, HASHTABLE_MAX_VALUE);
	*fraction = load_fraction(cfg->max_load == 0 ? 0.8 : cfg->max_load);
	if (*fraction == 0)
		return fail(-EINVAL, "load limit %g out of range: give a fraction in (0, 1] or a "
		                     "percent in (1, 100]", cfg->max_load);
	unsigned char e[HASHTABLE_MAX_KEY], d[HASHTABLE_MAX_KEY];
	fill_sentinel(e, cfg->empty_key, cfg->key_size, 0x00);
	fill_sentinel(d, cfg->deleted_key, cfg->key_size, 0xff);
	if (memcmp(e, d, cfg->key_size) == 0)
		return fail(-EINVAL, "the empty and deleted sentinels must differ");
	if (cfg->mode & ~0777u)
		return fail(-EINVAL, "mode %o has bits beyond 0777", cfg->mode);
	return 0;
}

/* An existing table must have the widths and sentinels asked for. */
static int check_match(struct hashtable *h, const struct hashtable_config *cfg)
{
	unsigned char e[HASHTABLE_MAX_KEY], d[HASHTABLE_MAX_KEY];
	fill_sentinel(e, cfg->empty_key, cfg->key_size, 0x00);
	fill_sentinel(d, cfg->deleted_key, cfg->key_size, 0xff);
	if (h->g.key_size != cfg->key_size || h->g.value_size != cfg->value_size)
		return fail(-EINVAL, "the table at key 0x%08x (segment %d) has %u-byte keys and %u-byte "
		                     "values, not %u and %u; remove it with `shmkv rm 0x%08x` or "
		                     "`ipcrm -m %d`, or use its widths",
		            (unsigned)h->ipc_key, h->shmid, h->g.key_size, h->g.value_size,
		            cfg->key_size, cfg->value_size, (unsigned)h->ipc_key, h->shmid);
	if (memcmp(e, h->empty, cfg->key_size) || memcmp(d, h->deleted, cfg->key_size))
		return fail(-EINVAL, "the table at key 0x%08x (segment %d) has other empty/deleted "
		                     "sentinels; remove it with `ipcrm -m %d` or pass its sentinels",
		            (unsigned)h->ipc_key, h->shmid, h->shmid);
	return 0;
}


static int create_segment(key_t key, const struct hashtable_config *cfg, double fraction,
                          struct hashtable **out)
{
	bool huge = cfg->flags & HASHTABLE_HUGETLB;
	uint64_t size = cfg->capacity;
	if (!size && !(size = hashtable_segment_size(cfg->entries, fraction, cfg->key_size,
	                                              cfg->value_size)))
		return fail(-EINVAL, "give a capacity in bytes or a number of entries");
	if (huge)
		size = round_up(size, hugepage_bytes());
	struct geometry g;
	if (!layout(cfg->key_size, cfg->value_size, size, &g))
		return fail(-EINVAL, "a capacity of %llu bytes cannot hold one bucket of %u-byte "
		                     "keys and %u-byte values (header included); need at least %llu",
		            (unsigned long long)size, cfg->key_size, cfg->value_size,
		            (unsigned long long)(hashtable_segment_size(1, 1.0, cfg->key_size,
		                                                        cfg->value_size)));
	unsigned mode = cfg->mode ? cfg->mode : 0600;
	int shmid = shmget(key, size, IPC_CREAT | IPC_EXCL | (int)mode | (huge ? SHM_HUGETLB : 0));
	if (shmid < 0)
		return errno == EEXIST ? -EEXIST : explain_shmget(errno, size, huge);
	void *p = shmat(shmid, NULL, 0);
	int rc = 0;
	if (p == (void *)-1) {
		rc = fail(-errno, "cannot attach the new segment %d: %s", shmid, strerror(errno));
	} else {
		struct shm_header *hd = p; /* unpublished until initialise() sets the magic */
		path_identity(cfg->path, &hd->name_dev, &hd->name_ino);
		rc = initialise(p, &g, size, cfg, fraction, huge);
	}
	if (p != (void *)-1)
		shmdt(p);
	if (!rc)
		rc = attach(shmid, key, cfg->flags & HASHTABLE_RDONLY, out);
	if (rc)
		shmctl(shmid, IPC_RMID, NULL); /* a failed create leaves nothing */
	return rc;
}

static int create_or_attach(const struct hashtable_config *cfg, struct hashtable **out)
{
	double fraction;
	key_t key = 0;
	int rc = check_config(cfg, &fraction);
	if (rc || (rc = key_for(cfg->path, cfg->ipc_key, &key)))
		return rc;
	if (!out)
		return fail(-EINVAL, "NULL output handle");
	for (int tries = 0; tries < 3; tries++) {
		/* a read-only handle could not fill a new table: attach only */
		rc = cfg->flags & HASHTABLE_RDONLY ? -EEXIST : create_segment(key, cfg, fraction, out);
		if (rc != -EEXIST)
			return rc;
		if (cfg->flags & HASHTABLE_EXCL)
			return fail(-EEXIST, "a segment already exists at key 0x%08x", (unsigned)key);
		int shmid = shmget(key, 0, 0);
		if (shmid < 0) {
			if (errno == ENOENT && (cfg->flags & HASHTABLE_RDONLY))
				return fail(-ENOENT, "no table at key 0x%08x (a read-only create only "
				                     "attaches)", (unsigned)key);
			if (errno == ENOENT)
				continue; /* removed meanwhile: create again */
			return errno == EACCES ? explain_access(key, cfg->flags & HASHTABLE_RDONLY)
			                       : fail(-errno, "shmget: %s", strerror(errno));
		}
		struct hashtable *h;
		if ((rc = attach(shmid, key, cfg->flags & HASHTABLE_RDONLY, &h)))
			return rc;
		if ((rc = check_match(h, cfg))) {
			handle_free(h);
			return rc;
		}
		*out = h;
		return 0;
	}
	return fail(-EAGAIN, "the segment at key 0x%08x kept appearing and vanishing", (unsigned)key);
}

int hashtable_create_config(const struct hashtable_config *cfg, struct hashtable **out)
{
	int rc = create_or_attach(cfg, out);
	if (rc == 0)
		note_path(*out, cfg->path);
	return rc;
}

struct hashtable *hashtable_create(const char *path, long capacity, float max_usage_percent,
                                   short key_size, short value_size, void *stop_cond,
                                   void *del_cond)
{
	if (!path || capacity <= 0 || key_size <= 0 || value_size < 0 ||
	    load_fraction(max_usage_percent) == 0) {
		fail(-EINVAL, "hashtable_create needs a path, a positive capacity and key size, a "
		              "value size of at least 0, and a load limit in (0, 1] or (1, 100]");
		errno = EINVAL;
		return NULL;
	}
	struct hashtable_config cfg = {
		.path = path,
		.capacity = (size_t)capacity,
		.max_load = max_usage_percent,
		.key_size = (uint32_t)key_size,
		.value_size = (uint32_t)value_size,
		.empty_key = stop_cond,
		.deleted_key = del_cond,
	};
	struct hashtable *h = NULL;
	int rc = hashtable_create_config(&cfg, &h);
	if (rc) {
		errno = rc == HASHTABLE_EDEADWRITER || rc == HASHTABLE_ECORRUPT ? EPROTO : -rc;
		return NULL;
	}
	return h;
}

static struct hashtable *open_key(key_t key, int flags)
{
	int shmid = shmget(key, 0, 0);
	if (shmid < 0) {
		int e = errno;
		if (e == ENOENT)
			fail(-ENOENT, "no shared memory segment at key 0x%08x", (unsigned)key);
		else if (e == EACCES)
			explain_access(key, flags & HASHTABLE_RDONLY);
		else
			fail(-e, "shmget: %s", strerror(e));
		errno = e;
		return NULL;
	}
	struct hashtable *h = NULL;
	int rc = attach(shmid, key, flags & HASHTABLE_RDONLY, &h);
	if (rc) {
		errno = -rc;
		return NULL;
	}
	return h;
}

struct hashtable *hashtable_open_key(key_t key, int flags) { return open_key(key, flags); }

struct hashtable *hashtable_open(const char *path, int flags)
{
	key_t key = 0;
	if (!path) {
		fail(-EINVAL, "NULL path");
		errno = EINVAL;
		return NULL;
	}
	int rc = key_for(path, 0, &key);
	if (rc) {
		errno = -rc;
		return NULL;
	}
	struct hashtable *h = open_key(key, flags);
	if (h)
		note_path(h, path);
	return h;
}

int hashtable_close(struct hashtable *h)
{
	if (!h)
		return fail(-EINVAL, "NULL table handle");
	handle_free(h);
	return 0;
}

int hashtable_shmid(const struct hashtable *h) { return h ? h->shmid : -1; }

int hashtable_sentinels(const struct hashtable *h, void *empty_key, void *deleted_key)
{
	if (!h)
		return fail(-EINVAL, "NULL table handle");
	if (empty_key)
		memcpy(empty_key, h->empty, h->g.key_size);
	if (deleted_key)
		memcpy(deleted_key, h->deleted, h->g.key_size);
	return 0;
}

int hashtable_unlink(struct hashtable *h)
{
	if (!h)
		return fail(-EINVAL, "NULL table handle");
	if (shmctl(h->shmid, IPC_RMID, NULL) == 0)
		return 0;
	if (errno != EPERM)
		return fail(-errno, "cannot remove segment %d: %s", h->shmid, strerror(errno));
	/* -EACCES, not -EPERM: -EPERM is -1, which means "not found" */
	struct segment_row r;
	char owner[128] = "", you[128];
	if (segment_row_of(h->ipc_key, &r) && r.shmid == h->shmid)
		user_text(r.uid, owner, sizeof owner);
	return fail(-EACCES, "cannot remove segment %d: only its owner%s%s, its creator or root may "
	                     "remove it, and you are %s", h->shmid, owner[0] ? " " : "", owner,
	            user_text((unsigned)geteuid(), you, sizeof you));
}

int hashtable_remove_key(key_t key)
{
	struct hashtable *h = open_key(key, HASHTABLE_RDONLY);
	if (!h)
		return -errno;
	int rc = hashtable_unlink(h);
	handle_free(h);
	return rc;
}

int hashtable_remove(const char *path)
{
	key_t key = 0;
	if (!path)
		return fail(-EINVAL, "NULL path");
	int rc = key_for(path, 0, &key);
	return rc ? rc : hashtable_remove_key(key);
}

/* ---- reading the whole table ---------------------------------------------- */

static bool slot_live(const struct hashtable *h, const unsigned char *key_copy)
{
	return memcmp(key_copy, h->empty, h->g.key_size) != 0 &&
	       memcmp(key_copy, h->deleted, h->g.key_size) != 0;
}

/* A consistent copy of bucket b into buf (bucket_bytes).  Returns 0 or
 * HASHTABLE_EDEADWRITER. */
static int bucket_snapshot(const struct hashtable *h, uint64_t b, unsigned char *buf)
{
	_Atomic uint32_t *stripe = stripe_of(h, b);
	for (;;) {
		uint32_t v;
		int rc = read_begin(h, stripe, &v);
		if (rc)
			return rc;
		shared_load(buf, bucket_at(h, b), h->g.bucket_bytes);
		if (read_valid(stripe, v))
			return 0;
	}
}

int hashtable_iterate(struct hashtable *h, uint64_t *cursor, void *key, void *value)
{
	if (!h || !cursor)
		return fail(-EINVAL, "NULL table handle or cursor");
	const uint32_t spb = h->g.slots_per_bucket, ss = h->g.slot_size;
	unsigned char *buf = malloc(h->g.bucket_bytes);
	if (!buf)
		return fail(-ENOMEM, "out of memory");
	int rc = 0;
	for (uint64_t s = *cursor; s < h->g.nbuckets * spb && rc == 0;) {
		uint64_t b = s / spb;
		if ((rc = bucket_snapshot(h, b, buf)))
			break;
		for (uint32_t i = (uint32_t)(s % spb); i < spb; i++, s++) {
			const unsigned char *p = buf + i * ss;
			if (slot_live(h, p)) {
				if (key)
					memcpy(key, p, h->g.key_size);
				if (value)
					memcpy(value, p + h->g.value_offset, h->g.value_size);
				*cursor = s + 1;
				rc = 1;
				break;
			}
		}
	}
	if (rc == 0)
		*cursor = h->g.nbuckets * spb;
	free(buf);
	return rc;
}

/* The number of buckets a key found in bucket `at` lies past its home, or
 * UINT64_MAX if its path does not reach `at` through overflowed buckets
 * (then a lookup could not find it). */
static uint64_t probe_distance(const struct hashtable *h, const unsigned char *key, uint64_t at,
                               const uint16_t *counts)
{
	uint64_t hash = key_hash(h, key), n = h->g.nbuckets;
	uint64_t b = home_bucket(hash, n), step = probe_step(hash, n);
	for (uint64_t j = 0; j < n; j++) {
		if (b == at)
			return j;
		uint16_t o = counts ? counts[b]
		                    : atomic_load_explicit(&h->overflow[b], memory_order_relaxed);
		if (!passes(o, hash))
			return UINT64_MAX;
		b = next_bucket(b, step, n);
	}
	return UINT64_MAX;
}

int hashtable_probe_histogram(struct hashtable *h, uint64_t *hist, size_t n)
{
	if (!h || !hist || n == 0)
		return fail(-EINVAL, "NULL table handle or histogram, or no bins");
	memset(hist, 0, n * sizeof *hist);
	unsigned char *buf = malloc(h->g.bucket_bytes);
	if (!buf)
		return fail(-ENOMEM, "out of memory");
	int rc = 0;
	for (uint64_t b = 0; b < h->g.nbuckets && !rc; b++) {
		if ((rc = bucket_snapshot(h, b, buf)))
			break;
		for (uint32_t i = 0; i < h->g.slots_per_bucket; i++) {
			const unsigned char *p = buf + i * h->g.slot_size;
			if (!slot_live(h, p))
				continue;
			uint64_t d = probe_distance(h, p, b, NULL);
			hist[d < n - 1 ? d : n - 1]++;
		}
	}
	free(buf);
	return rc;
}

/* Average buckets read by a miss, over a fixed pseudo-random sample of
 * (home, step) pairs: walks until the first bucket with a zero count. */
static double sample_miss_probes(const struct hashtable *h)
{
	const uint64_t n = h->g.nbuckets, samples = MISS_SAMPLES;
	uint64_t x = UINT64_C(0x853c49e6748fea9b), total = 0;
	for (uint64_t s = 0; s < samples; s++) {
		x += UINT64_C(0x9e3779b97f4a7c15);
		uint64_t hash = hash_u64(x, 0);
		uint64_t b = home_bucket(hash, n), step = probe_step(hash, n), len = 1;
		while (len < n && passes(atomic_load_explicit(&h->overflow[b], memory_order_relaxed),
		                         hash)) {
			b = next_bucket(b, step, n);
			len++;
		}
		total += len;
	}
	return (double)total / (double)samples;
}

int hashtable_stats(struct hashtable *h, struct hashtable_stats *st)
{
	if (!h || !st)
		return fail(-EINVAL, "NULL table handle or stats");
	const struct shm_header *hd = h->hdr;
	memset(st, 0, sizeof *st);
	st->format_version = hd->format;
	st->key_size = h->g.key_size;
	st->value_size = h->g.value_size;
	st->slot_size = h->g.slot_size;
	st->slots_per_bucket = h->g.slots_per_bucket;
	st->buckets = h->g.nbuckets;
	st->slots = h->g.nbuckets * h->g.slots_per_bucket;
	st->count = atomic_load_explicit(&hd->count, memory_order_relaxed);
	st->deleted = atomic_load_explicit(&hd->deleted, memory_order_relaxed);
	st->max_count = h->max_count;
	st->max_load = hd->max_load;
	st->segment_bytes = h->segment_bytes;
	st->payload_bytes = st->count * ((uint64_t)h->g.key_size + h->g.value_size);
	st->collisions = atomic_load_explicit(&hd->collisions, memory_order_relaxed);
	st->max_probe = atomic_load_explicit(&hd->max_probe, memory_order_relaxed);
	for (uint64_t b = 0; b < h->g.nbuckets; b++)
		st->overflowed_buckets +=
			(atomic_load_explicit(&h->overflow[b], memory_order_relaxed) & OVERFLOW_COUNT) != 0;
	st->hit_probes = st->count ? 1.0 + (double)st->collisions / (double)st->count : 1.0;
	st->miss_probes = sample_miss_probes(h);
	st->inserts = atomic_load_explicit(&hd->inserts, memory_order_relaxed);
	st->updates = atomic_load_explicit(&hd->updates, memory_order_relaxed);
	st->deletes = atomic_load_explicit(&hd->deletes, memory_order_relaxed);
	st->recoveries = atomic_load_explicit(&hd->recoveries, memory_order_relaxed);
	st->relocations = atomic_load_explicit(&hd->relocations, memory_order_relaxed);
	st->shmid = h->shmid;
	st->ipc_key = h->ipc_key;
	st->creator_pid = hd->creator_pid;
	st->created = hd->created;
	st->hugetlb = (hd->flags & SEG_HUGETLB) != 0;
	st->name_dev = hd->name_dev;
	st->name_ino = hd->name_ino;
	st->name_mismatch = h->by_path && (hd->name_dev || hd->name_ino) &&
	                    (hd->name_dev != h->path_dev || hd->name_ino != h->path_ino);
	struct shmid_ds ds;
	if (shmctl(h->shmid, IPC_STAT, &ds) == 0) {
		st->nattch = ds.shm_nattch;
		st->mode = ds.shm_perm.mode & 0777;
	}
	return 0;
}

/* ---- verification ---------------------------------------------------------- */

struct walk_totals {
	uint64_t live, tombstones, collisions, max_probe;
};

/* Checks every live key of bucket b (snapshot in buf): reachable on its
 * path through overflowed buckets, found there first by a lookup; adds it
 * to the exact counts. */
static int verify_bucket(struct hashtable *h, uint64_t b, const unsigned char *buf,
                         const uint16_t *counts, uint32_t *exact, uint8_t *bits,
                         struct walk_totals *t)
{
	for (uint32_t i = 0; i < h->g.slots_per_bucket; i++) {
		const unsigned char *p = buf + i * h->g.slot_size;
		if (memcmp(p, h->deleted, h->g.key_size) == 0) {
			t->tombstones++;
			continue;
		}
		if (!slot_live(h, p))
			continue;
		uint64_t d = probe_distance(h, p, b, counts);
		if (d == UINT64_MAX)
			return fail(HASHTABLE_ECORRUPT, "bucket %llu slot %u holds a key that no lookup "
			                               "reaches (its path meets a zero overflow count first)",
			            (unsigned long long)b, i);
		uint64_t hash = key_hash(h, p), n = h->g.nbuckets;
		uint64_t pb = home_bucket(hash, n), step = probe_step(hash, n);
		for (uint64_t j = 0; j < d; j++) {
			exact[pb]++;
			bits[pb] |= (uint8_t)(filter_bit(hash) >> 8);
			pb = next_bucket(pb, step, n);
		}
		t->live++;
		t->collisions += d;
		if (d > t->max_probe)
			t->max_probe = d;
	}
	return 0;
}

static int verify_totals(struct hashtable *h, const uint16_t *counts, const uint32_t *exact,
                         const uint8_t *bits, const struct walk_totals *t)
{
	const struct shm_header *hd = h->hdr;
	for (uint64_t b = 0; b < h->g.nbuckets; b++) {
		unsigned count = counts[b] & OVERFLOW_COUNT, filter = counts[b] >> 8;
		bool sticky = count == OVERFLOW_STICKY; /* >= exact, however many */
		if (count != exact[b] && !sticky)
			return fail(HASHTABLE_ECORRUPT, "bucket %llu has overflow count %u, but %u keys "
			                               "probe past it", (unsigned long long)b,
			            count, exact[b]);
		if ((filter & bits[b]) != bits[b] || (count == 0 && filter != 0))
			return fail(HASHTABLE_ECORRUPT, "bucket %llu has overflow filter %02x, but the keys "
			                               "probing past it need %02x", (unsigned long long)b,
			            filter, bits[b]);
	}
	uint64_t count = atomic_load(&hd->count), coll = atomic_load(&hd->collisions);
	if (count != t->live || coll != t->collisions || atomic_load(&hd->deleted) != t->tombstones)
		return fail(HASHTABLE_ECORRUPT, "header counters (count %llu, collisions %llu, deleted "
		                               "%llu) differ from the table (%llu, %llu, %llu)",
		            (unsigned long long)count, (unsigned long long)coll,
		            (unsigned long long)atomic_load(&hd->deleted), (unsigned long long)t->live,
		            (unsigned long long)t->collisions, (unsigned long long)t->tombstones);
	if (t->tombstones)
		return fail(HASHTABLE_ECORRUPT, "%llu slots hold the deleted sentinel; deletes leave none",
		            (unsigned long long)t->tombstones);
	if (atomic_load(&hd->max_probe) < t->max_probe)
		return fail(HASHTABLE_ECORRUPT, "header max_probe %llu is below a key's probe length %llu",
		            (unsigned long long)atomic_load(&hd->max_probe),
		            (unsigned long long)t->max_probe);
	if (atomic_load(&hd->journal.op) != J_IDLE || (atomic_load(&hd->moves) & 1))
		return fail(HASHTABLE_ECORRUPT, "the journal holds an unfinished operation");
	return 0;
}

static int verify_walk(struct hashtable *h)
{
	const uint64_t n = h->g.nbuckets;
	for (uint64_t s = 0; s < h->g.nstripes; s++) {
		uint32_t v;
		int rc = read_begin(h, &h->stripes[s], &v); /* waits out a live writer */
		if (rc)
			return rc;
	}
	uint16_t *counts = malloc(n * sizeof *counts);
	uint32_t *exact = calloc(n, sizeof *exact);
	uint8_t *bits = calloc(n, 1);
	unsigned char *buf = malloc(h->g.bucket_bytes);
	int rc = 0;
	if (!counts || !exact || !bits || !buf)
		rc = fail(-ENOMEM, "out of memory");
	for (uint64_t b = 0; b < n && !rc; b++)
		counts[b] = atomic_load_explicit(&h->overflow[b], memory_order_relaxed);
	struct walk_totals t = {0};
	for (uint64_t b = 0; b < n && !rc; b++) {
		rc = bucket_snapshot(h, b, buf);
		if (!rc)
			rc = verify_bucket(h, b, buf, counts, exact, bits, &t);
	}
	if (!rc)
		rc = verify_totals(h, counts, exact, bits, &t);
	free(bits);
	free(counts);
	free(exact);
	free(buf);
	return rc;
}

/* Operations completed so far: changes whenever the table does. */
static uint64_t write_generation(const struct hashtable *h)
{
	const struct shm_header *hd = h->hdr;
	return atomic_load_explicit(&hd->inserts, memory_order_acquire) +
	       atomic_load_explicit(&hd->updates, memory_order_acquire) +
	       atomic_load_explicit(&hd->deletes, memory_order_acquire) +
	       atomic_load_explicit(&hd->relocations, memory_order_acquire) +
	       atomic_load_explicit(&hd->recoveries, memory_order_acquire);
}

/* Without the lock: a problem counts only if no write ran during the walk
 * (a live writer's change in flight looks like one).  A dead writer's
 * unfinished change is reported as such. */
static int verify_unlocked(struct hashtable *h)
{
	int rc = 0;
	for (int attempt = 0; attempt < VERIFY_WALKS; attempt++) {
		uint64_t gen = write_generation(h);
		uint32_t op = atomic_load_explicit(&h->hdr->journal.op, memory_order_acquire);
		rc = verify_walk(h);
		if (rc != HASHTABLE_ECORRUPT)
			return rc;
		if (op != J_IDLE && !holder_alive(h))
			return fail(HASHTABLE_EDEADWRITER, "a writer (pid %d) died in the middle of an "
			                                   "operation; run any update or `shmkv verify "
			                                   "--repair` to complete it",
			            (int)atomic_load(&h->hdr->holder_pid));
		if (op == J_IDLE && write_generation(h) == gen &&
		    atomic_load_explicit(&h->hdr->journal.op, memory_order_acquire) == J_IDLE)
			return rc; /* a still table, and still wrong */
		struct timespec ts = {0, VERIFY_RETRY_NS};
		nanosleep(&ts, NULL);
	}
	return fail(-EAGAIN, "the table changed during each of %d walks; verify through a "
	                     "read-write handle (it holds the writer lock) or while writers pause",
	            VERIFY_WALKS);
}

int hashtable_verify(struct hashtable *h)
{
	if (!h)
		return fail(-EINVAL, "NULL table handle");
	if (h->readonly)
		return verify_unlocked(h);
	int rc = writer_lock(h); /* a still picture, and a dead writer's change done */
	if (rc < 0)
		return rc;
	rc = verify_walk(h);
	writer_unlock(h);
	return rc;
}
