/*
 * shmkv: a fixed-width key/value table in System V shared memory, replaced
 * and grown in whole generations while readers run.
 *
 * LAYOUT (private to this file; versioned by the magics and SHMKV_FORMAT)
 *
 * A table is a root segment at its IPC key and one data segment per
 * generation, created with IPC_PRIVATE (key 0).  All share struct
 * shm_header's layout; each uses its part of it.
 *
 *   root (SHMKV_ROOT_MAGIC, a few KiB):
 *     [header: widths, load limit, table_id, naming file, creator,
 *              writer lock + holder record + recoveries (own lines),
 *              build record (own line), current word (own line)]
 *     [empty key][deleted key]
 *   data (SHMKV_DATA_MAGIC, one per generation):
 *     [header: geometry, table_id, generation, counters, moves, journal]
 *     [empty key][deleted key][journal key][journal value]          pad to 64
 *     [stripes: nstripes x u32 version counters]
 *     [overflow: nbuckets x u16]                                     pad to 64
 *     [buckets: nbuckets x bucket_bytes, each slots_per_bucket slots]
 *
 * The root's `current` word is generation << 32 | the data segment's id.
 * table_id, a random nonce chosen at creation, is repeated in every data
 * segment, with its generation, so that an id the kernel reused for another
 * segment is detected.  0.1.0's single-segment tables (SHMKV_MAGIC, format
 * 1) are refused with -EPROTO and the way to carry their data over.
 *
 * A slot is [key][pad][value][pad]; widths are padded only to their natural
 * alignment, so 8-byte keys and values are 8-aligned and 3/5-byte slots pack
 * into 8 bytes.  A bucket is as many slots as fit in a 64-byte cache line (at
 * least one).  nbuckets is the largest prime that fits the capacity, so every
 * probe step in [1, nbuckets - 1] visits every bucket.
 *
 * WIDE SLOTS.  Where fewer than four such slots fit a line, a bucket is not
 * exactly one line, values are not empty, and at least two keys fit one
 * line (16-byte keys with 64-byte
 * values: one 80-byte slot a bucket, so a
 * hit read 2.0 buckets, 4 lines, at load 0.8), the header's slot_layout is
 * SLOTS_SPLIT: a bucket is its keys, up to a line of them, then their
 * values, padded to whole lines (16/64: 4 keys in line 0, 4 values in lines
 * 1-4, 320 bytes, 80 a slot as before).  slot_size is then the keys'
 * stride, value_offset where the values start and value_stride theirs
 * (split_slots); the key count is the one
 * that pads least per slot, and the layout is used only if it costs at most
 * 3% more memory a slot than the interleaved one (split_allowed).  A search
 * reads one line per bucket on the path, then the one value line.  slot_at,
 * value_of and bucket_value know where a slot's key and value are (and
 * wide_value, the readers' copy of bucket_value's rule for a constant
 * shape); everything else (locate, journal, moves, verify, iteration,
 * builder) goes through them, so both layouts share the whole protocol.  Tables made before slot_layout existed have 0 there
 * (SLOTS_INTERLEAVED) and keep their layout.
 *
 * Attach trusts no header field it can recompute: every field derived from
 * the widths and the segment size (slot and bucket sizes, counts, offsets,
 * max_count from max_load) must equal the recomputed layout, and the lock's
 * ABI (sizeof(pthread_mutex_t), the C library) must be this build's; else
 * -EPROTO naming the field.
 *
 * GENERATIONS
 *
 * Who writes what.  The root's header fields are written once, by its
 * creator.  The writer lock's holder writes the holder record, the build
 * record and the current word (only a commit writes `current`).  A data
 * segment is written by its builder alone until the commit publishes it
 * (no seqlock, no journal: nobody can read it yet), then only in place
 * under the writer lock by update/delete, as a single-segment table was.
 *
 * Readers (every call on a handle) follow the current word.  A handle
 * holds `map`: the attachment of the data segment it last saw, with the
 * word it was attached for.  Per thread (process-wide, as liburcu's
 * readers), a registered record says which map the thread is `inside`.
 *   reader_enter:  (reader_get: the same, returning the map; its straight
 *                  line is reader_announce, as reader_try and
 *                  hashtable_search's reader_try_k8v8, and any "again"
 *                  below is reader_get_slow, which starts over)
 *                  m = map (acquire: pairs with the switch's release of
 *                  map, so m's fields are the switch's);
 *                  inside = m (release: see reader_announce);
 *                  compiler fence (membarrier, below, makes it a full
 *                  one when it matters);
 *                  if map (acquire: a map freed and re-allocated at m's
 *                      address since is then seen whole) != m: again (a
 *                      switch raced: re-announce);
 *                  if root.current (acquire) != m.word: inside = NULL,
 *                      generation_switch, again;
 *                  use m.
 *                  On the hit path: the record pointer is thread-local,
 *                  the map's reload hits the line just read, and the
 *                  word compare is one load of a line only commits
 *                  write (hashtable_search folds the k8v8 shape, and
 *                  a table of at most 2^32 buckets, into it too:
 *                  fast_word; a map it refuses stays announced, and
 *                  search_other_shape makes the word compare itself);
 *                  then a store to leave.  (hashtable_search
 *                  also stores `moves` and the key's hash in its own
 *                  record, beside `inside`, for its out-of-line miss and
 *                  walk steps: no other thread reads them.)
 *   reader_exit:   inside = NULL (release); if the handle has retired
 *                  maps: retired_reclaim.  (An old map is detached by the
 *                  switch that retires it if no thread is inside it, else
 *                  when the last thread inside leaves its call.)
 *   generation_switch (under the handle's switch_lock): attach the data
 *                  segment current names, validate it (magic, format,
 *                  geometry, table_id, generation; a removed or reused id
 *                  is met by re-reading current, a bounded number of
 *                  times), publish it in `map` (release), put the old map
 *                  on the retired list, reclaim.
 *   retired_reclaim (under switch_lock; any thread, at most one at a
 *                  time per handle): membarrier(PRIVATE_EXPEDITED),
 *                  then every retired map that no thread's record is
 *                  inside is detached and freed.
 * Why no thread touches a detached mapping: the reader's announce-then-
 * recheck against the reclaimer's publish-then-membarrier-then-scan is
 * the store-buffer pattern.  membarrier makes every running thread of the
 * process execute a full fence, so each reader's program order between
 * its store to `inside` and its reload of `map` acts as fenced: either
 * the reload sees the new map (the reader re-announces and never uses the
 * old one), or the scan after membarrier sees its announcement (the map
 * is kept).  The reload must come before the first read through m (its
 * word): the compare with `current` alone would tell a retired map too,
 * but only by reading the map, which the reclaimer may have freed before
 * the announcement was visible (ThreadSanitizer caught that variant).
 * A reader's exit store is release and the scan's load of
 * `inside` acquire, so a map freed after the scan read NULL has no reads
 * of it still in flight.  Under ThreadSanitizer, which does not know
 * membarrier, readers put a seq_cst fence there instead.  Where the kernel
 * lacks the private expedited command (Linux < 4.14) the global one serves
 * (slow, never wrong); where it lacks membarrier altogether, retired maps
 * stay attached until the handle is closed.  A
 * thread inside one call pins at most one map; an idle handle pins its
 * last map until its next call (or close) sees the change.
 * Why each answer comes from one generation: a call uses only m, which is
 * one data segment's attachment, validated against the table.  Why a call
 * that starts after a commit returned sees it: the commit's seq_cst store
 * of `current` happens before its return, and the call's acquire load of
 * `current` comes after (in any process; the word stays cached until a
 * commit invalidates it).  The acquire pairs with that store, so the new
 * segment's contents, written before it, are visible.
 *
 * Writers take the root's robust mutex, then enter the current map (with
 * the lock held, no commit can happen, so it stays current) and work in
 * place as below.  A replace (hashtable_replace_begin .. commit) holds the
 * lock from begin to commit or abort, so no write is lost to it.
 *
 * Crash states of a build.  begin writes the build record (pid, process
 * start, time, bytes, generation, pending_shmid = -1) before it calls
 * shmget, and stores pending_shmid right after; a builder killed
 * - before shmget leaves a record and nothing else;
 * - between shmget and recording the id leaves a key-0 segment created by
 *   its pid, of pending_bytes, at or after pending_time: found in
 *   /proc/sysvipc/shm (blank, or naming this table) and removed;
 * - after that, a recorded pending segment, removed by id.
 * It held the lock, so the next writer gets EOWNERDEAD and runs
 * generation_recover_locked before anything else (as do hashtable_recover,
 * verify --repair and replace_begin); readers never look at the record.
 * Crash states of a commit: it writes retiring_shmid = old id, then
 * `current` (the one publishing step), then IPC_RMID of the old segment,
 * then clears retiring and the record.  Killed before `current`: current
 * is the old one, the pending segment is removed, retiring (== current)
 * is kept.  Killed after: current is the new one (pending == current is
 * kept), the retiring old one is removed.  So either the old or the new
 * generation is current, never neither, and the current one is never
 * removed.  (tests/test_generations.c kills a builder at each of these
 * steps through the test-only SHMKV_TEST_KILL_AT.)  Removal
 * (hashtable_remove/unlink) marks the root first, then
 * reads `current` and removes it, the pending and the retiring segment;
 * a commit checks the root after publishing (IPC_STAT: SHM_DEST) and
 * removes its own segment if the root went: each side's step is a system
 * call, a full barrier, so one of them sees the other (Dekker).
 *
 * Every id taken from the root's record (pending, retiring, current) may be
 * stale: its segment freed and the id handed to another program.  So a
 * removal by recorded id (leftover_remove) first attaches the id, checks
 * under that attachment that the segment is the one meant (this table's
 * table_id and generation, or a blank one its builder made during the
 * build), removes it, and only then detaches: while attached, the kernel
 * cannot free the id and give it away.  (The Promela model refutes the
 * version that checks, detaches, then removes: model/README.md.)  Data
 * segments are created with the root's mode, so any writer of the table
 * can attach one to check it; and only the root's owner (or root) may
 * build a generation, because only the owner or creator may IPC_RMID the
 * old one at commit.
 *
 * MemKeyValue's sizing: hashtable_create(path, capacity, usage, k, v)
 * holds floor(usage * capacity / (k + v)) keys: the data segment is sized
 * for that many entries at load limit `usage` (the metadata no longer
 * takes its room from the slots), so its real load at that count is
 * `usage` or a hair above (prime bucket counts).
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
 * Writers (update, update_batch, delete, recovery, replace) hold `lock`, a
 * robust process-shared mutex in the root's header, so there is one writer
 * at a time across processes and threads.  The holder records its pid,
 * thread id and process start time in the header before it changes
 * anything, and clears the pid just before it
 * unlocks, so readers can tell a live writer from a dead one, and a held
 * lock from a free one.  The mutex's own bytes are distrusted too: a writer
 * waits at most 2 s on a holder that is not a live writer, then reports the
 * lock damaged (see "the writer lock's bytes").
 *
 * Readers take no lock and write nothing.  Bucket b is guarded by the version
 * counter stripes[b & (nstripes - 1)], a seqlock whose steps are named once,
 * as Linux's seqcount names them (see "the seqlock" below):
 *   writer:  write_seqbegin:  S = v + 1 (release); fence(release);
 *            slot stores (relaxed atomics);
 *            write_seqend:    S = v + 2 (release)
 *   reader:  read_seqbegin:   v1 = S (acquire); if odd, wait (below);
 *            slot loads and overflow[b] (relaxed atomics);
 *            read_seqretry:   fence(acquire); v2 = S (relaxed); retry unless
 *                             v1 == v2.
 * The writer's release fence orders the odd version before its data stores;
 * its release store orders the data before the even version.  The reader's
 * acquire load keeps its data loads after v1, and its acquire fence keeps
 * them before v2: if v1 == v2 and even, no store to the bucket overlapped
 * the loads (Boehm, "Can seqlocks get along with programming language memory
 * models?", 2012).  The fast paths use raw_read_seqbegin (the version as it
 * is) and fall back to read_seqbegin when it is odd.  Shared slot bytes are
 * accessed through relaxed atomics, so there is no data race in the C11
 * sense (and ThreadSanitizer agrees),
 * with one exception: the 8-byte-key fast path compares a bucket's keys with
 * aligned 16-byte SSE2 loads (k8v8_match), and the other shapes' reads do
 * the same with 4-byte keys (k4v8_match), 8- and 16-byte keys (split_find)
 * and aligned values (split_value_copy):
 * the seqlock's usual "equivalent" of relaxed loads (x86 performs aligned
 * 16-byte loads whole, and the version re-check discards any that
 * overlapped a store).  Builds for
 * ThreadSanitizer, and non-x86 ones, use the atomic path.
 *
 * overflow[] is written outside the seqlock, with release stores, ordered so
 * that Invariant C holds at every instant: an insert raises the counts on its
 * path before it writes the slot; a delete empties the slot before it lowers
 * them.  So a reader that stops at a zero count has seen the key's absence at
 * the instant of that load.
 *
 * Deletes do move keys: a delete whose freed slot has live keys passing
 * its bucket sweeps a few buckets (reclaim_step: SWEEP_BUCKETS, more at
 * high load limits, their displaced keys' paths prefetched SWEEP_GROUP
 * buckets at a time) and moves displaced keys back to free slots earlier
 * on their paths (J_MOVE).
 * A move copies the key to its new slot before it empties the old one, so
 * the key is in some slot at every instant; but a reader walking the path
 * could pass the new slot before the copy and reach the old one after it
 * was emptied, and miss a key that stayed present.  So the header's `moves`
 * counter is a seqlock of its own, odd for the duration of a move: a lookup
 * reads it before it starts, and a lookup that ends in a miss counts only
 * if `moves` was even and unchanged throughout (lookup(); hashtable_search
 * reads it before the home bucket and keeps it in the thread's reader
 * record, where search_past_home checks it before returning -1; a batch
 * reads it once before its first bucket), else it starts again.  A hit
 * needs no such check.  So a reader never misses a key that stayed present
 * throughout its call, and a value it returns is one that was whole at the
 * instant its bucket's version was validated.  stats.relocations is bumped
 * inside the same odd stretch and read between moves (relocations_read),
 * so a caller of hashtable_iterate that compares it before and after its
 * walk sees every move that overlapped the walk.
 *
 * A version stays odd only while a writer is inside a slot write, unless a
 * writer died there or the segment was damaged.  A reader that finds it odd
 * spins READER_SPINS times, then looks at the holder record: a live holder other than
 * the reader's own thread is waited out, however long; no holder (the lock
 * is free), the reader's own thread (it is reading, so not writing), or a
 * dead holder while the version stays the same odd value: the reader returns
 * HASHTABLE_EDEADWRITER instead of waiting for ever.  (write_seqbegin's
 * release store publishes the holder record with the odd version, and the
 * record is cleared only after write_seqend: a reader that reads the record
 * cleared by the writer that made the version odd then reads it even.)  The lock holder itself
 * never waits on a version: verify and recovery make a version left odd
 * even (versions_repair_locked).  Writer-only helpers that could pass for
 * readers' are named *_locked (locate_locked, slot_write_locked, ...); the
 * journal_*, path_counts_* and reclaim_* functions also run only under the
 * writer lock.
 *
 * CREATION
 *
 * The creator's first store marks the root (SHMKV_MAGIC_CREATING) with
 * its pid and start time; it records the first data segment as a build
 * (so removing an unfinished table removes it too), creates it, stores
 * `current`, and its last store publishes SHMKV_ROOT_MAGIC (release).  An
 * open that finds the mark waits while the creator runs, however long a
 * large table takes to fill, and reports an unfinished table
 * (HASHTABLE_EUNFINISHED) once it is gone; hashtable_remove removes such a
 * segment.  A creator killed before its first store leaves a zero segment,
 * which cannot be told from a foreign one and stays "not a shmkv table".
 *
 * CRASH RECOVERY
 *
 * Before changing anything a writer fills the journal in the current data
 * segment's header: the
 * operation, its slot, the key's path, the key and value bytes and the
 * counters' final values; then it publishes journal.op.  Each overflow word
 * on the path is changed after recording (index + 1, old word) in
 * journal.progress, as (index + 1) << 16 | old 16-bit word (count and
 * filter), so that step can be redone exactly.  A writer that gets the lock with
 * EOWNERDEAD (its holder died, at any instruction), or finds the journal
 * busy, redoes the journalled operation to its end: the remaining path
 * counts, the slot write, the counters; then makes every odd version even,
 * marks the mutex consistent and goes on.  Every step of a redo is
 * idempotent, so a recovery that dies is itself recovered.  Readers are
 * never blocked by the lock.  hashtable_update_batch holds the lock once for
 * all its records but journals each one as a single update does, finishing
 * it before the next begins: a writer killed mid-batch leaves a prefix of
 * the batch, the record in flight redone by the next writer.
 *
 * The journal is in the segment, so it is checked before a redo writes one
 * byte (journal_check): op known, slots below nslots and in the buckets the
 * path puts them at, home below nbuckets, step in [1, nbuckets - 1], first
 * <= probe < nbuckets, the progress index in [first, probe), the filter bit
 * one of 8, count_after within the load limit, and for an insert or a move
 * the path the journalled key's own.  An impossible journal is never
 * redone: update and delete return HASHTABLE_ECORRUPT naming the field and
 * its value, write nothing (the mutex is only marked consistent), and keep
 * refusing; readers go on reading.  hashtable_recover (`shmkv verify
 * --repair`) discards it (journal idle, versions even), after which writes
 * resume and hashtable_verify says whether the discarded change left the
 * table inconsistent.  Every loop over a path is bounded by nbuckets.
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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

/* 0.1.0's single segment (format 1), and this branch's unreleased
 * single-segment format 2: refused with the migration text. */
#define SHMKV_MAGIC UINT64_C(0x31564b4d48537f00) /* "\0\177SHMKV1" */
#define SHMKV_ROOT_MAGIC UINT64_C(0x52564b4d48537f00) /* "\0\177SHMKVR": a table's root */
#define SHMKV_DATA_MAGIC UINT64_C(0x44564b4d48537f00) /* "\0\177SHMKVD": a generation */
/* The magic while the creator initialises the segment (its first store):
 * a segment left with it by a dead creator is an unfinished table. */
#define SHMKV_MAGIC_CREATING UINT64_C(0x3f564b4d48537f00) /* "\0\177SHMKV?" */
/* 2: the header records its writer lock's ABI (mutex_bytes, libc). */
#define SHMKV_FORMAT 2u
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

/* Buckets a delete sweeps for displaced keys (reclaim_step), when the slot
 * it freed has keys passing its bucket (delete_locked; elsewhere no key can
 * take the slot, and the delete sweeps nothing): enough to hold hits at a
 * fresh fill's cost under steady churn, measured with tests/test_churn.c.
 * Sweeping every delete, 4 left the churned hit at 1.29-1.30 buckets at
 * load 0.8, on the 1.3 target, and 8 held it at 1.26-1.27; sweeping only
 * past such slots, 12 (24 above load 0.85, 64 above 0.9) hold 1.26-1.27 at
 * 0.8, 1.46 at 0.9 and 1.64-1.67 at 0.95, as before, but 1.16 at 0.7 and
 * 1.06 at 0.5 against 1.155 and 1.05 (few deletes there sweep, so the
 * sweep comes round more slowly).  16 would hold 0.7 too (1.155; 0.8:
 * 1.255) but cost a delete at 0.8 1.83-1.89x an insert against 1.50-1.66x
 * (write_bench, 16M keys, alternate runs): the 2x target's margin.  More
 * near a full table, where displaced keys are common.  Sequential reads. */
#define SWEEP_BUCKETS 12u
#define SWEEP_BUCKETS_FULL 24u      /* load limit above SWEEP_FULL_PERCENT */
#define SWEEP_FULL_PERCENT 85u
#define SWEEP_BUCKETS_FULLER 64u    /* load limit above SWEEP_FULLER_PERCENT */
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

/* tests/test_hardening.c mirrors this layout (and the header's first part,
 * up to `reserved`), and finds `moves` on the line before it. */
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
	/* The ABI of `lock`: sizeof(pthread_mutex_t) and the C library (LIBC_*)
	 * of the creator.  Another C library's mutex bytes mean something else. */
	uint32_t mutex_bytes, libc;
	uint64_t creator_start;    /* with creator_pid: is the creator alive? */
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
	/* SLOTS_INTERLEAVED or SLOTS_SPLIT (see "WIDE SLOTS"): chosen by the
	 * creator from the widths, recomputed on attach like every other
	 * geometry field, so readers never follow a damaged one.  It was
	 * `reserved` (always 0 = interleaved): tables made before keep working. */
	uint32_t slot_layout;
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
	_Atomic int32_t holder_pid;  /* 0 while nobody holds the lock */
	_Atomic int32_t holder_tid;
	_Atomic uint64_t holder_start;
	_Atomic uint64_t count, deleted, collisions, max_probe;
	_Atomic uint64_t inserts, updates, deletes, recoveries, relocations;
	uint64_t sweep_cursor;     /* next bucket reclaim_step() examines */
	/* Odd while a key is being moved back along its path: a miss that
	 * overlapped a move is retried (see reclaim_step).  Own line: written
	 * only by moves, so readers keep it cached. */
	_Alignas(64) _Atomic uint32_t moves;
	_Alignas(64) struct journal journal;
	/* Generations (format 2).  Both kinds of segment: the table's nonce. */
	_Alignas(64) uint64_t table_id;
	uint64_t generation;       /* a data segment: its generation number */
	uint64_t max_bytes;        /* the root: HASHTABLE_AUTOGROW's cap, 0 for none */
	uint32_t table_flags;      /* the root: HASHTABLE_AUTOGROW */
	uint32_t reserved2;
	/* The root's build record, written under the writer lock before the
	 * pending data segment exists (see "crash states of a build"). */
	_Alignas(64) _Atomic int32_t pending_pid;  /* 0: no build */
	_Atomic int32_t pending_shmid;             /* -1 until shmget returned */
	_Atomic int32_t retiring_shmid;            /* -1: none; set during a commit */
	uint32_t reserved3;
	_Atomic uint64_t pending_start, pending_time, pending_bytes, pending_gen;
	/* The root's current word, generation << 32 | data shmid: read by every
	 * call, written only by a commit, so it stays cached. */
	_Alignas(64) _Atomic uint64_t current;
};

#define SEG_HUGETLB 1u

/* How a bucket holds its slots (shm_header.slot_layout; see "WIDE SLOTS"). */
#define SLOTS_INTERLEAVED 0u /* [key][value] [key][value] ...: the original */
#define SLOTS_SPLIT 1u       /* [key][key]...[key] [value][value]...[value] */

/* The C library whose pthread_mutex_t the header's `lock` is: glibc and
 * musl both make it 40 bytes on x86-64, with different meanings. */
enum libc_id { LIBC_UNKNOWN = 0, LIBC_GLIBC = 1, LIBC_MUSL = 2, LIBC_UCLIBC = 3, LIBC_BIONIC = 4 };
#if defined(__GLIBC__) && !defined(__UCLIBC__)
#define THIS_LIBC LIBC_GLIBC
#elif defined(__UCLIBC__)
#define THIS_LIBC LIBC_UCLIBC
#elif defined(__BIONIC__)
#define THIS_LIBC LIBC_BIONIC
#elif defined(__linux__)
#define THIS_LIBC LIBC_MUSL /* musl defines no macro of its own */
#else
#define THIS_LIBC LIBC_UNKNOWN
#endif

static const char *libc_name(uint32_t id)
{
	switch (id) {
	case LIBC_GLIBC: return "glibc";
	case LIBC_MUSL: return "musl";
	case LIBC_UCLIBC: return "uClibc";
	case LIBC_BIONIC: return "bionic";
	default: return "an unknown C library";
	}
}

_Static_assert(offsetof(struct shm_header, journal) - offsetof(struct shm_header, moves) == 64,
               "tests/test_hardening.c finds `moves` on the line before the journal");

/* The geometry derived from widths and capacity; the header stores it and
 * attach recomputes it to validate a header. */
struct geometry {
	uint32_t key_size, value_size, slot_size, value_offset;
	uint32_t slots_per_bucket, bucket_bytes;
	uint32_t slot_layout;  /* SLOTS_INTERLEAVED or SLOTS_SPLIT */
	uint32_t value_stride; /* SLOTS_SPLIT: bytes between a bucket's values */
	uint64_t nbuckets, nstripes;
	uint64_t off_empty, off_deleted, off_jkey, off_jvalue;
	uint64_t off_stripes, off_overflow, off_buckets, end;
};

enum key_class { KEY_GENERIC, KEY_U64, KEY_U32 };

/* One attachment of one data segment: everything a call needs to read or
 * write a generation.  Immutable once published in a handle's `map`, until
 * retired_reclaim detaches it. */
struct generation_map {
	struct shm_header *hdr;  /* the data segment's header */
	struct shm_header *root; /* the table's root: writer lock, holder, build record */
	unsigned char *base;
	size_t segment_bytes;
	struct geometry g;     /* validated copy: never re-read from the header */
	uint64_t seed, max_count;
	enum key_class key_class;
	_Atomic uint32_t *stripes;
	_Atomic uint16_t *overflow;
	unsigned char *buckets;
	unsigned char *empty, *deleted; /* private copies of the sentinels */
	uint64_t empty_u64, deleted_u64; /* the sentinels as integers: 8-byte keys, and
	                                    4-byte ones (zero-extended) */
	int shmid;             /* the data segment */
	key_t ipc_key;         /* the table's key (for messages) */
	bool readonly;
	bool k8v8;             /* lookup_k8v8() applies */
	bool k4v8;             /* lookup_k4v8() applies */
	uint8_t wide;          /* which of wide_shapes[] the geometry is (the search and
	                          batch paths' instance) */
	/* hashtable_search's read path for this map's shape, for a key and
	 * value buffer that are not NULL (shape_search; search_other_shape) */
	int (*search)(struct generation_map *h, const void *k, void *datum);
	uint64_t stripe_mask;  /* nstripes - 1 */
	uint64_t nbuckets_less1; /* nbuckets - 1: probe_step's scale (k8v8_home_hit) */
	uint64_t word;         /* the root's current word this map was attached for */
	uint64_t fast_word;    /* word if k8v8, else FAST_WORD_NONE (reader_try_k8v8) */
	struct generation_map *next; /* on the handle's retired list */
};

/* A process's handle on a table: its root, and the map of the generation
 * it last saw (see "GENERATIONS" at the top). */
struct hashtable {
	/* read by every call: together at the start */
	struct shm_header *root;
	_Atomic(struct generation_map *) map;
	_Atomic bool retired_pending;
	size_t root_bytes;
	int shmid;             /* the root segment's */
	key_t ipc_key;
	bool readonly;
	bool by_path;          /* opened by path, whose file was path_dev/path_ino */
	uint64_t path_dev, path_ino;
	uint64_t table_id;
	uint32_t key_size, value_size;
	pthread_mutex_t switch_lock;     /* serialises generation_switch and reclaim */
	struct generation_map *retired;  /* under switch_lock */
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
	case HASHTABLE_EUNFINISHED:
		return "the table's creator died while initialising it; remove it with `shmkv rm`";
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

/* Compares a private key with a slot's key: a word at a time where the
 * slot is aligned and the width whole words (wide keys in split slots),
 * else through a staging buffer. */
static bool shared_equal(const unsigned char *slot, const unsigned char *key, size_t n)
{
	if (n % 8 == 0 && ((uintptr_t)slot & 7) == 0) {
		uint64_t diff = 0;
		for (size_t i = 0; i < n; i += 8) {
			uint64_t k;
			memcpy(&k, key + i, 8);
			diff |= load_u64(slot + i) ^ k;
		}
		return diff == 0;
	}
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
static inline __attribute__((always_inline)) uint64_t
hash_bytes_inline(const unsigned char *p, size_t n, uint64_t seed)
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

/* hash_bytes_inline is that function's body, for readers that hash keys of
 * a constant width (split_hash): the loop then folds away. */
static uint64_t hash_bytes(const unsigned char *p, size_t n, uint64_t seed)
{
	return hash_bytes_inline(p, n, seed);
}

static inline uint64_t key_hash(const struct generation_map *h, const void *key)
{
	if (h->key_class == KEY_U64) {
		uint64_t k;
		memcpy(&k, key, 8);
		return hash_u64(k, h->seed);
	}
	return hash_bytes(key, h->g.key_size, h->seed);
}

/* key_hash of a 4-byte key: hash_bytes's steps for n == 4, inline (a
 * 4-byte-key hit spends no call on it).  Must stay equal to hash_bytes. */
static inline uint64_t hash_k4(const void *key, uint64_t seed)
{
	uint64_t w = 0;
	memcpy(&w, key, 4);
	uint64_t x = seed ^ (4 * UINT64_C(0xa0761d6478bd642f));
	return mum(mum(x ^ w, UINT64_C(0x8ebc6af09c88c6e3)), UINT64_C(0x589965cc75374cc3));
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

/* The bucket at index i of the path from home by step. */
static uint64_t path_bucket(uint64_t home, uint64_t step, uint64_t i, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)step * i + home) % n);
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

/* Slots of [key][value] side by side, as many as fit a line (at least one). */
static void interleaved_slots(uint32_t key_size, uint32_t value_size, struct geometry *g)
{
	g->value_offset = (uint32_t)round_up(key_size, natural_alignment(value_size));
	uint32_t ka = natural_alignment(key_size), va = natural_alignment(value_size);
	g->slot_size = (uint32_t)round_up((uint64_t)g->value_offset + value_size, ka > va ? ka : va);
	g->slots_per_bucket = g->slot_size >= LINE ? 1 : LINE / g->slot_size;
	g->bucket_bytes = g->slots_per_bucket * g->slot_size;
}

/* A bucket of `spb` split slots: its keys, then their values, padded to
 * whole lines so that every bucket's keys start a line. */
static void split_bucket(uint32_t key_size, uint32_t value_size, uint32_t spb, struct geometry *g)
{
	uint32_t va = natural_alignment(value_size);
	g->slot_size = (uint32_t)round_up(key_size, natural_alignment(key_size));
	g->slots_per_bucket = spb;
	g->value_stride = (uint32_t)round_up(value_size, va);
	g->value_offset = (uint32_t)round_up((uint64_t)spb * g->slot_size, va);
	g->bucket_bytes = (uint32_t)round_up(g->value_offset + (uint64_t)spb * g->value_stride, LINE);
}

/* A bucket's keys, up to as many as fit its first line, then their values
 * (see "WIDE SLOTS"): slot_size is the keys' stride, value_offset where
 * the values start.  Of the key counts that fit a line, the one that pads
 * least per slot (the bucket is rounded up to whole lines), the most keys
 * among equals. */
static void split_slots(uint32_t key_size, uint32_t value_size, struct geometry *g)
{
	uint32_t most = LINE / (uint32_t)round_up(key_size, natural_alignment(key_size)), best = most;
	struct geometry t;
	split_bucket(key_size, value_size, most, &t);
	uint64_t best_bytes = t.bucket_bytes; /* per slot: best_bytes / best */
	for (uint32_t spb = most - 1; spb >= 2; spb--) {
		split_bucket(key_size, value_size, spb, &t);
		if ((uint64_t)t.bucket_bytes * best < best_bytes * spb) {
			best = spb;
			best_bytes = t.bucket_bytes;
		}
	}
	split_bucket(key_size, value_size, best, g);
}

/* Whether a table of these widths may use SLOTS_SPLIT: fewer than four
 * [key][value] slots fit a line, the interleaved bucket is not one whole
 * line (it spans two or straddles a boundary, so each bucket probed costs
 * more than a line), and at least two keys fit a line.  Wider keys gain
 * nothing (a line per key either way); a bucket that is exactly a line
 * (24/40, 12/20) already reads one line a probe, and splitting it adds a
 * value line to every hit (24/40: 2.0 lines a hit interleaved, 2.5 split,
 * from the probe figures). */
static bool split_allowed(uint32_t key_size, uint32_t value_size)
{
	struct geometry g, split;
	interleaved_slots(key_size, value_size, &g);
	if (g.slots_per_bucket >= 4 || value_size == 0 || g.bucket_bytes == LINE ||
	    round_up(key_size, natural_alignment(key_size)) * 2 > LINE)
		return false;
	/* and it costs at most 3% more memory per slot than interleaved */
	split_slots(key_size, value_size, &split);
	return (uint64_t)split.bucket_bytes * 100 <=
	       (uint64_t)g.slot_size * split.slots_per_bucket * 103;
}

/* The layout a new table gets: split wherever allowed.  SHMKV_BENCH_SLOTS=
 * interleaved makes new tables interleaved (for the benchmark, which
 * measures both layouts of one shape side by side); anything else in it is
 * ignored. */
static uint32_t slot_layout_for(uint32_t key_size, uint32_t value_size)
{
	const char *force = getenv("SHMKV_BENCH_SLOTS");
	if (force && strcmp(force, "interleaved") == 0)
		return SLOTS_INTERLEAVED;
	return split_allowed(key_size, value_size) ? SLOTS_SPLIT : SLOTS_INTERLEAVED;
}

/* Lays out a segment of `capacity` bytes with the given slot layout.
 * Returns false if not even one bucket fits, or the layout is not one these
 * widths may have. */
static bool layout_as(uint32_t key_size, uint32_t value_size, uint32_t slot_layout,
                      uint64_t capacity, struct geometry *g)
{
	memset(g, 0, sizeof *g);
	g->key_size = key_size;
	g->value_size = value_size;
	g->slot_layout = slot_layout;
	if (slot_layout == SLOTS_SPLIT && split_allowed(key_size, value_size))
		split_slots(key_size, value_size, g);
	else if (slot_layout == SLOTS_INTERLEAVED)
		interleaved_slots(key_size, value_size, g);
	else
		return false;

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

/* Lays out a new segment: the layout its widths get (slot_layout_for). */
static bool layout(uint32_t key_size, uint32_t value_size, uint64_t capacity,
                   struct geometry *g)
{
	return layout_as(key_size, value_size, slot_layout_for(key_size, value_size), capacity, g);
}

/* The highest load limit a new table may have.  At 1.0 a full table has no
 * free slot and no bucket that nothing passed, so every miss reads every
 * bucket, every insert after a delete walks the whole path, and
 * hashtable_stats walks the table once per sample.  Measured with 100k
 * 8-byte keys and values (delete+insert pairs/s; buckets read by a miss):
 * 0.95: 265k, 2.3; 0.98: 213k, 4.5; 1.0: 738, 25013 (all of them). */
#define MAX_LOAD 0.98

/* Load limit as a fraction: fractions in (0, MAX_LOAD] stay, percents in
 * (1, 100 * MAX_LOAD] are divided by 100; anything else is 0 (invalid).
 * The tolerance admits a float 0.98f, which is a little above 0.98. */
static double load_fraction(double max_load)
{
	double f = max_load > 1 ? max_load / 100 : max_load;
	if (f > 0 && f <= MAX_LOAD + 1e-6)
		return f;
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

static inline unsigned char *bucket_at(const struct generation_map *h, uint64_t b)
{
	return h->buckets + b * h->g.bucket_bytes;
}

static inline unsigned char *slot_at(const struct generation_map *h, uint64_t slot)
{
	if (h->g.slot_layout == SLOTS_SPLIT)
		return bucket_at(h, slot / h->g.slots_per_bucket) +
		       slot % h->g.slots_per_bucket * h->g.slot_size;
	return h->buckets + slot * h->g.slot_size;
}

/* The value of slot i of a bucket (in the segment, or a copy of one). */
static inline unsigned char *bucket_value(const struct geometry *g, const unsigned char *bucket,
                                          uint32_t i)
{
	if (g->slot_layout == SLOTS_SPLIT)
		return (unsigned char *)(uintptr_t)bucket + g->value_offset + i * g->value_stride;
	return (unsigned char *)(uintptr_t)bucket + i * g->slot_size + g->value_offset;
}

/* The value of the slot whose key is at p, in the segment's buckets. */
static inline unsigned char *value_of(const struct generation_map *h, const unsigned char *p)
{
	if (h->g.slot_layout != SLOTS_SPLIT)
		return (unsigned char *)(uintptr_t)p + h->g.value_offset;
	uint64_t off = (uint64_t)(p - h->buckets);
	uint64_t b = off / h->g.bucket_bytes;
	return bucket_value(&h->g, bucket_at(h, b),
	                    (uint32_t)((off - b * h->g.bucket_bytes) / h->g.slot_size));
}

static inline _Atomic uint32_t *stripe_of(const struct generation_map *h, uint64_t b)
{
	return &h->stripes[b & h->stripe_mask];
}

/* A map's fast_word when hashtable_search's fast path does not apply: no
 * current word equals it (the low half of one is a segment id, below 2^31). */
#define FAST_WORD_NONE UINT64_MAX

/* The most buckets for which hashtable_search's fast path applies: below
 * it, (uint32_t)hash * (nbuckets - 1) fits 64 bits (probe_step in one
 * multiply, which needs no rdx:rax pair). */
#define FAST_MAX_BUCKETS (UINT64_C(1) << 32)

static inline bool is_k8v8(const struct generation_map *h)
{
	return h->key_class == KEY_U64 && h->g.slot_size == 16 && h->g.value_size == 8 &&
	       h->g.value_offset == 8 && h->g.slots_per_bucket == 4;
}

/* 4-byte keys with 8-byte values: [key][pad][value] slots of 16 bytes,
 * four to a line (the interleaved layout; split_allowed refuses it). */
static inline bool is_k4v8(const struct generation_map *h)
{
	return h->key_class == KEY_U32 && h->g.slot_layout == SLOTS_INTERLEAVED &&
	       h->g.slot_size == 16 && h->g.value_size == 8 && h->g.value_offset == 8 &&
	       h->g.slots_per_bucket == 4;
}

/* A table's shape as the wide search reads it (lookup_split): its widths,
 * where its keys and values are, its bucket's bytes.  Passed by value to
 * always_inline functions, a constant one folds every width into code. */
struct wide_shape {
	uint32_t ks, vs, ss, spb, value_offset, value_stride, bb;
	bool split;
};

static inline struct wide_shape wide_shape_of(const struct geometry *g)
{
	return (struct wide_shape){g->key_size, g->value_size, g->slot_size, g->slots_per_bucket,
	                           g->value_offset, g->value_stride, g->bucket_bytes,
	                           g->slot_layout == SLOTS_SPLIT};
}

/* The shapes search_split and search_batch_in have instances of (the
 * benchmark's wide shapes, the k4v8 one for batches); WIDE_OTHER, any
 * geometry, read through wide_shape_of. */
enum { WIDE_OTHER, WIDE_K4V8, WIDE_K8V32, WIDE_K16V64, WIDE_K24V40, WIDE_SHAPES };
static const struct wide_shape wide_shapes[WIDE_SHAPES] = {
	[WIDE_K4V8] = {4, 8, 16, 4, 8, 0, 64, false},
	[WIDE_K8V32] = {8, 32, 8, 8, 64, 32, 320, true},     /* 8 keys, then 8 values */
	[WIDE_K16V64] = {16, 64, 16, 4, 64, 64, 320, true},  /* 4 keys, then 4 values */
	[WIDE_K24V40] = {24, 40, 64, 1, 24, 0, 64, false},   /* one [key][value] a line */
};

/* Which of wide_shapes[] a geometry is: every field equal. */
static uint8_t wide_kind(const struct geometry *g)
{
	struct wide_shape s = wide_shape_of(g);
	for (uint8_t i = 1; i < WIDE_SHAPES; i++) {
		const struct wide_shape *w = &wide_shapes[i];
		if (s.ks == w->ks && s.vs == w->vs && s.ss == w->ss && s.spb == w->spb &&
		    s.value_offset == w->value_offset && s.bb == w->bb && s.split == w->split &&
		    (!s.split || s.value_stride == w->value_stride))
			return i;
	}
	return WIDE_OTHER;
}

typedef int search_fn(struct generation_map *h, const void *k, void *datum);
static search_fn *shape_search(const struct generation_map *h);

static void bind_handle(struct generation_map *h, const struct geometry *g)
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
	h->k4v8 = is_k4v8(h);
	h->wide = wide_kind(g);
	/* word is set before; k8v8_home_hit's step is exact up to 2^32
	 * buckets (256 GiB), larger tables take the general walk */
	h->fast_word = h->k8v8 && g->nbuckets <= FAST_MAX_BUCKETS ? h->word : FAST_WORD_NONE;
	h->stripe_mask = g->nstripes - 1;
	h->nbuckets_less1 = g->nbuckets - 1;
	if (g->key_size == 8) {
		memcpy(&h->empty_u64, h->empty, 8);
		memcpy(&h->deleted_u64, h->deleted, 8);
	} else if (g->key_size == 4) {
		uint32_t e, d;
		memcpy(&e, h->empty, 4);
		memcpy(&d, h->deleted, 4);
		h->empty_u64 = e;
		h->deleted_u64 = d;
	}
	h->search = shape_search(h); /* after the fields it reads */
}

static bool is_sentinel(const struct generation_map *h, const void *key)
{
	if (h->g.key_size == 8) {
		uint64_t k;
		memcpy(&k, key, 8);
		return k == h->empty_u64 || k == h->deleted_u64;
	}
	return memcmp(key, h->empty, h->g.key_size) == 0 ||
	       memcmp(key, h->deleted, h->g.key_size) == 0;
}

static int check_key(const struct generation_map *h, const void *key)
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

/* The calling thread's id (the kernel's, as robust mutexes record it). */
static pid_t thread_id(void) { return (pid_t)syscall(SYS_gettid); }

static bool lock_names_other_thread(const struct generation_map *h, pid_t tid);

/* Whether the writer recorded as the lock's holder may still finish the
 * change it is making.  No: when no holder is recorded (writers clear the
 * record when they unlock, so the lock is free), when the lock's word
 * names another thread or none (a record left in a damaged segment: a live
 * process that holds no lock would otherwise be waited for forever), when
 * the holder is the calling thread (it is reading, so it is not inside a
 * write), when the holder's thread or process has exited, is a zombie, or
 * its pid now names a later process (other start time). */
static bool holder_alive(const struct generation_map *h)
{
	pid_t pid = atomic_load_explicit(&h->root->holder_pid, memory_order_acquire);
	pid_t tid = atomic_load_explicit(&h->root->holder_tid, memory_order_relaxed);
	uint64_t start = atomic_load_explicit(&h->root->holder_start, memory_order_relaxed);
	if (pid <= 0 || lock_names_other_thread(h, tid))
		return false;
	if (pid == getpid()) {
		char task[64];
		if (tid <= 0)
			return true; /* no thread recorded: assume alive */
		if (tid == thread_id())
			return false;
		snprintf(task, sizeof task, "/proc/self/task/%d", (int)tid);
		return access(task, F_OK) == 0;
	}
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

/* ---- the seqlock ------------------------------------------------------------
 *
 * Each step has one name, used everywhere (after Linux's seqcount):
 *   read_seqbegin      a reader's start: the version, waited until even;
 *   raw_read_seqbegin  the version as it is, odd or not, for the fast paths
 *                      (which fall back to read_seqbegin on odd);
 *   read_seqretry      a reader's end: true if the loads since the begin
 *                      may be torn and must be retried;
 *   write_seqbegin     a writer's start (makes the version odd);
 *   write_seqend       a writer's end (makes it even).
 * Writers are serialised by the writer lock; only its holder runs the
 * write steps, and it never waits on a version.  A reader waits on an odd
 * version only while the recorded holder is alive and is not itself. */

/* SHMKV_BENCH_NO_VERSIONS builds readers without the version checks, for
 * bench/ to measure what the protocol costs.  Never for use: such readers
 * can return torn values. */
#ifdef SHMKV_BENCH_NO_VERSIONS
#define VERSIONS_CHECKED 0
#else
#define VERSIONS_CHECKED 1
#endif

static inline uint32_t raw_read_seqbegin(_Atomic uint32_t *seq)
{
	if (!VERSIONS_CHECKED)
		return 0;
	/* acquire: the loads that follow are not satisfied before it; pairs
	 * with write_seqend's release store */
	return atomic_load_explicit(seq, memory_order_acquire);
}

/* read_seqbegin's wait for an odd version `odd` to turn even.  A live
 * writer is waited out however long it takes.  A version that stays odd
 * while no live writer other than the caller holds the lock cannot turn
 * even by itself: HASHTABLE_EDEADWRITER, within about a millisecond of the
 * check.  (The writer records itself before write_seqbegin's release
 * store, and clears the record after write_seqend's: a reader that sees a
 * version odd sees its writer's record, and one that sees the record
 * cleared then sees that writer's even version.) */
static int read_seqbegin_slow(const struct generation_map *h, _Atomic uint32_t *seq, uint32_t odd,
                              uint32_t *v)
{
	for (int i = 0; i < READER_SPINS; i++) {
		pause_cpu();
		*v = raw_read_seqbegin(seq);
		if (!(*v & 1))
			return 0;
	}
	for (;;) {
		bool alive = holder_alive(h);
		*v = raw_read_seqbegin(seq);
		if (!(*v & 1))
			return 0;
		if (*v != odd) { /* another write began: judge its writer */
			odd = *v;
			continue;
		}
		if (!alive) {
			pid_t pid = atomic_load(&h->root->holder_pid);
			if (pid <= 0)
				return fail(HASHTABLE_EDEADWRITER,
				            "a bucket's version is odd but no writer holds the lock (a "
				            "writer died, or the segment was damaged); run `shmkv verify "
				            "--repair` to recover the table");
			return fail(HASHTABLE_EDEADWRITER,
			            "a writer (pid %d) died while changing a bucket; run any "
			            "update or `shmkv verify --repair` to recover the table", (int)pid);
		}
		struct timespec ts = {0, READER_SLEEP_NS};
		nanosleep(&ts, NULL);
	}
}

/* Returns 0 with the (even) version in *v, or HASHTABLE_EDEADWRITER. */
static inline int read_seqbegin(const struct generation_map *h, _Atomic uint32_t *seq, uint32_t *v)
{
	*v = raw_read_seqbegin(seq);
	if (__builtin_expect(*v & 1, 0))
		return read_seqbegin_slow(h, seq, *v, v);
	return 0;
}

static inline bool read_seqretry(_Atomic uint32_t *seq, uint32_t v)
{
	if (!VERSIONS_CHECKED)
		return false;
	/* acquire fence: the loads above complete before the re-check; pairs
	 * with write_seqbegin's release fence */
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(seq, memory_order_relaxed) != v;
}

/* read_seqretry for the fast paths, which took raw_read_seqbegin's version
 * as it was: also true when that version v was odd (a write was under
 * way).  One compare: the version is never v & ~1 again once it was odd v
 * (it only grows, by whole writes). */
static inline bool read_seqretry_or_odd(_Atomic uint32_t *seq, uint32_t v)
{
	if (!VERSIONS_CHECKED)
		return false;
	/* acquire fence: as in read_seqretry */
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(seq, memory_order_relaxed) != (v & ~1u);
}

static inline void write_seqbegin(_Atomic uint32_t *seq)
{
	uint32_t v = atomic_load_explicit(seq, memory_order_relaxed);
	/* release: a reader that sees the odd version sees the holder record
	 * stored before it; pairs with read_seqbegin's acquire load */
	atomic_store_explicit(seq, v + 1, memory_order_release);
	/* release fence: the odd version is visible before any store that
	 * follows; pairs with read_seqretry's acquire fence */
	atomic_thread_fence(memory_order_release);
}

static inline void write_seqend(_Atomic uint32_t *seq)
{
	uint32_t v = atomic_load_explicit(seq, memory_order_relaxed);
	/* release: the stores since write_seqbegin are visible before the even
	 * version; pairs with read_seqbegin's acquire load */
	atomic_store_explicit(seq, v + 1, memory_order_release);
}

/* ---- lookups ------------------------------------------------------------ */

/* Index within the bucket of the slot holding key, or -1.  The fixed-width
 * paths compare every slot and build a mask instead of leaving the loop at
 * the match: which slot matches is random, and a branch on it would be
 * mispredicted once per lookup, after the bucket's cache miss, flushing the
 * speculative work on the next independent lookups. */
static inline int bucket_find(const struct generation_map *h, const unsigned char *bucket,
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
static inline void value_load(const struct generation_map *h, void *out, const unsigned char *slot)
{
	const unsigned char *src = value_of(h, slot);
	if (h->g.value_size == 8 && ((uintptr_t)src & 7) == 0) {
		uint64_t w = load_u64(src);
		memcpy(out, &w, 8);
		return;
	}
	shared_load(out, src, h->g.value_size);
}

static int lookup_once(const struct generation_map *h, const void *key, uint64_t hash, void *out);

/* A miss counts only if no key moved meanwhile (see reclaim_step): a key
 * moving back along its path could pass behind the search. */
static int lookup(const struct generation_map *h, const void *key, uint64_t hash, void *out)
{
	_Atomic uint32_t *moves = &h->hdr->moves;
	for (;;) {
		uint32_t m;
		int rc = read_seqbegin(h, moves, &m);
		if (rc)
			return rc;
		rc = lookup_once(h, key, hash, out);
		if (rc != -1 || !read_seqretry(moves, m))
			return rc;
	}
}

/* The general search: any widths, one probe path walked bucket by bucket.
 * Copies the value into out (value_size bytes) and returns 0, or returns -1,
 * or HASHTABLE_EDEADWRITER. */
static int lookup_once(const struct generation_map *h, const void *key, uint64_t hash, void *out)
{
	const uint64_t n = h->g.nbuckets;
	uint64_t b = home_bucket(hash, n), step = 0;
	for (uint64_t probe = 0; probe < n; probe++) {
		_Atomic uint32_t *stripe = stripe_of(h, b);
		const unsigned char *bucket = bucket_at(h, b);
		for (;;) {
			uint32_t v;
			int rc = read_seqbegin(h, stripe, &v);
			if (rc)
				return rc;
			int i = bucket_find(h, bucket, key);
			if (i >= 0 && out)
				value_load(h, out, bucket + (uint32_t)i * h->g.slot_size);
			uint16_t ov = atomic_load_explicit(&h->overflow[b], memory_order_relaxed);
			if (read_seqretry(stripe, v))
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

/* A bucket's "this bucket does not hold the key": go on (or decide). */
#define BUCKET_LACKS 2

/* A walk's step past bucket *b, which lacks the key (read under version v
 * of its stripe; m is `moves` when the walk began; the table's overflow
 * words and bucket count n passed as the caller's locals): LOOKUP_SLOW if
 * either changed meanwhile, -1 if *b's overflow word says no key with this key's
 * bit passes it, else BUCKET_LACKS with *b the next bucket on the path. */
static inline __attribute__((always_inline)) int
walk_past(_Atomic uint16_t *overflow, _Atomic uint32_t *moves, uint64_t n, uint64_t *b,
          uint64_t *step, uint64_t hash, _Atomic uint32_t *stripe, uint32_t v, uint32_t m)
{
	uint16_t ov = atomic_load_explicit(&overflow[*b], memory_order_relaxed);
	if (read_seqretry(stripe, v) || (v & 1))
		return LOOKUP_SLOW;
	if (!passes(ov, hash))
		return (m & 1) || read_seqretry(moves, m) ? LOOKUP_SLOW : -1;
	if (!*step)
		*step = probe_step(hash, n);
	*b = next_bucket(*b, *step, n);
	return BUCKET_LACKS;
}

/* Non-zero when a slot of a 4 x (8-byte key, 8-byte value) bucket holds k,
 * and then its lowest set bit is 4i for the first such slot i: so
 * ctz(mask) * 4 is that slot's byte offset, and the value's load needs no
 * multiply (K8V8_NO_MATCH stands for "none" in that sum: it picks slot 3,
 * harmlessly). */
#define K8V8_NO_MATCH (1u << 12)
static inline unsigned k8v8_match(const unsigned char *bucket, uint64_t k)
{
#if defined(__SSE2__) && !defined(SHMKV_TSAN)
	/* SSE2 compares of the four keys at once: fewer instructions waiting
	 * on the bucket's miss, so more lookups overlap.  Plain vector loads
	 * of shared bytes: the seqlock re-check decides whether they count,
	 * as for the atomic loads of the scalar path. */
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
	/* four lanes -> eight words -> four mask bits each, from 4i */
	return (unsigned)_mm_movemask_epi8(_mm_packs_epi32(e01, e23));
#else
	return (unsigned)(load_u64(bucket) == k) | (unsigned)(load_u64(bucket + 16) == k) << 4 |
	       (unsigned)(load_u64(bucket + 32) == k) << 8 |
	       (unsigned)(load_u64(bucket + 48) == k) << 12;
#endif
}

/* The byte offset in its bucket of the slot a k8v8_match mask names. */
static inline size_t k8v8_slot_offset(unsigned mask)
{
	return (size_t)(unsigned)__builtin_ctzll((uint64_t)(mask | K8V8_NO_MATCH)) * 4;
}

static inline __attribute__((always_inline)) int
lookup_k8v8(const struct generation_map *h, uint64_t k, uint64_t hash, uint64_t *out)
{
	/* Locals, loaded before the first acquire: the compiler may not reuse
	 * a load of h->... across one, and each reload is an instruction. */
	const uint64_t n = h->g.nbuckets, stripe_mask = h->stripe_mask;
	_Atomic uint32_t *const stripes = h->stripes;
	_Atomic uint16_t *const overflow = h->overflow;
	_Atomic uint32_t *const moves = &h->hdr->moves;
	const unsigned char *const buckets = h->buckets;
	uint64_t b = home_bucket(hash, n), step = 0;
	uint32_t m;
	/* A quarter of hits at load 0.8 lie in the second bucket.  Starting its
	 * miss now, beside the home bucket's, costs a line of bandwidth and
	 * saves a whole dependent miss on those: a chain of lookups (each key
	 * from the last value) drops from 1.33 to 1.09 dependent reads a hit
	 * at 16M entries; independent lookups barely change. */
	if (n > 1) {
		step = probe_step(hash, n);
		__builtin_prefetch(buckets + next_bucket(b, step, n) * 64);
	}
	m = raw_read_seqbegin(moves);
	for (uint64_t probe = 0; probe < n; probe++) {
		_Atomic uint32_t *stripe = &stripes[b & stripe_mask];
		const unsigned char *bucket = buckets + b * 64;
		uint32_t v = raw_read_seqbegin(stripe);
		unsigned mask = k8v8_match(bucket, k);
		uint64_t value = load_u64(bucket + k8v8_slot_offset(mask) + 8);
		if (__builtin_expect(mask != 0, 1)) {
			if (read_seqretry(stripe, v) || (v & 1))
				return LOOKUP_SLOW;
			*out = value;
			return 0;
		}
		int rc = walk_past(overflow, moves, n, &b, &step, hash, stripe, v, m);
		if (rc != BUCKET_LACKS)
			return rc;
	}
	return LOOKUP_SLOW;
}

/* One bucket of an 8-byte-key lookup: 0 with the value in *out when the
 * bucket holds k under an even, unchanged version; BUCKET_LACKS when it
 * does not hold it; LOOKUP_SLOW when its version was odd or changed.  A
 * "does not hold it" is checked against the version too only when the
 * caller acts on it (check_absent): a hit needs only its own bucket's
 * version. */
static inline __attribute__((always_inline)) int
k8v8_bucket(const struct generation_map *h, uint64_t b, uint64_t k, uint64_t *out,
            bool check_absent)
{
	_Atomic uint32_t *stripe = &h->stripes[b & h->stripe_mask];
	const unsigned char *bucket = h->buckets + b * 64;
	uint32_t v = raw_read_seqbegin(stripe);
	unsigned mask = k8v8_match(bucket, k);
	/* loaded before the branch on mask, so that the value's load does not
	 * wait for the branch to resolve */
	uint64_t value = load_u64(bucket + k8v8_slot_offset(mask) + 8);
	if (__builtin_expect(mask == 0, 0))
		return check_absent && read_seqretry_or_odd(stripe, v) ? LOOKUP_SLOW : BUCKET_LACKS;
	if (__builtin_expect(read_seqretry_or_odd(stripe, v), 0))
		return LOOKUP_SLOW;
	*out = value;
	return 0;
}

/* hashtable_search's common case: an 8-byte key found in its home bucket
 * (three hits in four or more at load 0.8).  0 with the value in *out when the
 * home bucket holds k under an even, unchanged version: a hit needs its
 * own bucket's version and nothing else (no overflow word, no `moves`).
 * BUCKET_LACKS when it does not hold it, under such a version;
 * LOOKUP_SLOW for a sentinel key or a version odd or changed.  The second
 * bucket's miss starts here, beside the home's: a quarter of hits lie
 * there (see lookup_k8v8).  Every map field is loaded before the stripe's
 * acquire load, after which the compiler would have to load it again. */
static inline __attribute__((always_inline)) int
k8v8_home_hit(const struct generation_map *h, uint64_t k, uint64_t *out, uint64_t *hashp)
{
	if (__builtin_expect(k == h->empty_u64 || k == h->deleted_u64, 0))
		return LOOKUP_SLOW;
	const uint64_t n = h->g.nbuckets, hash = hash_u64(k, h->seed);
	const uint64_t b = home_bucket(hash, n);
	*hashp = hash;
	const unsigned char *const buckets = h->buckets;
	_Atomic uint32_t *const stripes = h->stripes;
	const uint64_t stripe_mask = h->stripe_mask;
	/* probe_step without its n < 2 case (with one bucket the "next" one
	 * is the home again, which is harmless for a prefetch), and in one
	 * 64-bit multiply: n <= FAST_MAX_BUCKETS (fast_word) */
	uint64_t second = b + 1 + (((uint64_t)(uint32_t)hash * h->nbuckets_less1) >> 32);
	second = second >= n ? second - n : second;
	__builtin_prefetch(buckets + second * 64);
	_Atomic uint32_t *const stripe = &stripes[b & stripe_mask];
	const unsigned char *const bucket = buckets + b * 64;
	uint32_t v = raw_read_seqbegin(stripe);
	unsigned mask = k8v8_match(bucket, k);
	/* loaded before the branch on mask, so that the value's load does not
	 * wait for the branch to resolve */
	uint64_t value = load_u64(bucket + k8v8_slot_offset(mask) + 8);
	if (__builtin_expect(read_seqretry_or_odd(stripe, v), 0))
		return LOOKUP_SLOW;
	if (__builtin_expect(mask == 0, 0))
		return BUCKET_LACKS;
	*out = value;
	return 0;
}

/* hashtable_search's walk past a home bucket that did not hold the key:
 * the next buckets on its path while the overflow words say a key like it
 * passes (a quarter of hits at load 0.8 lie in the second bucket).  0 with
 * the value in *out, each hit valid on its own bucket's version alone; or
 * BUCKET_LACKS when the walk found nothing, or LOOKUP_SLOW, for
 * search_walk to decide (lookup_k8v8 reads `moves` anew before the home
 * bucket).  The overflow words read here only guide the walk: a word read
 * stale makes it stop early or go on needlessly, never answer wrongly. */
static inline __attribute__((always_inline)) int
k8v8_walk_hit(const struct generation_map *h, uint64_t k, uint64_t hash, uint64_t *out)
{
	const uint64_t n = h->g.nbuckets, step = probe_step(hash, n);
	uint64_t b = home_bucket(hash, n);
	for (uint64_t probe = 1; probe < n; probe++) {
		uint16_t ov = atomic_load_explicit(&h->overflow[b], memory_order_relaxed);
		if (!passes(ov, hash))
			break;
		b = next_bucket(b, step, n);
		int rc = k8v8_bucket(h, b, k, out, false);
		if (rc != BUCKET_LACKS)
			return rc;
	}
	return BUCKET_LACKS;
}

static int search_general(struct generation_map *h, const void *k, void *datum)
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

/* ---- 4-byte keys with 8-byte values --------------------------------------- */

/* Non-zero when a slot of a k4v8 bucket (four 16-byte [key][pad][value]
 * slots) holds k, and then its lowest set bit is 4i for the first such slot
 * i, as k8v8_match's (so ctz(mask) * 4 is the slot's byte offset); a slot's
 * pad bytes are never compared. */
#define K4V8_NO_MATCH (1u << 12)
static inline unsigned k4v8_match(const unsigned char *bucket, uint32_t k)
{
#if defined(__SSE2__) && !defined(SHMKV_TSAN)
	/* aligned 16-byte loads, as k8v8_match's (and justified as they are:
	 * the version re-check decides whether they count); the four keys
	 * gathered into one vector, one compare */
	__m128i s0 = _mm_load_si128((const __m128i *)(const void *)bucket);
	__m128i s1 = _mm_load_si128((const __m128i *)(const void *)(bucket + 16));
	__m128i s2 = _mm_load_si128((const __m128i *)(const void *)(bucket + 32));
	__m128i s3 = _mm_load_si128((const __m128i *)(const void *)(bucket + 48));
	__m128i keys = _mm_unpacklo_epi64(_mm_unpacklo_epi32(s0, s1), _mm_unpacklo_epi32(s2, s3));
	return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi32(keys, _mm_set1_epi32((int)k)));
#else
	return (unsigned)(load_u32(bucket) == k) | (unsigned)(load_u32(bucket + 16) == k) << 4 |
	       (unsigned)(load_u32(bucket + 32) == k) << 8 |
	       (unsigned)(load_u32(bucket + 48) == k) << 12;
#endif
}

/* The byte offset in its bucket of the slot a k4v8_match mask names. */
static inline size_t k4v8_slot_offset(unsigned mask)
{
	return (size_t)(unsigned)__builtin_ctz(mask | K4V8_NO_MATCH) * 4;
}

/* lookup_k8v8 for 4-byte keys: the same walk (the second bucket's miss
 * started beside the home's, a hit valid on its bucket's version alone,
 * a miss on `moves` too), k4v8_match for the compare.  Returns 0 with the
 * value in *out, -1, or LOOKUP_SLOW (the general path decides). */
static int lookup_k4v8(const struct generation_map *h, uint32_t k, uint64_t hash, uint64_t *out)
{
	const uint64_t n = h->g.nbuckets;
	_Atomic uint32_t *const moves = &h->hdr->moves;
	uint64_t b = home_bucket(hash, n), step = 0;
	if (n > 1) {
		step = probe_step(hash, n);
		__builtin_prefetch(bucket_at(h, next_bucket(b, step, n)));
	}
	uint32_t m = raw_read_seqbegin(moves);
	for (uint64_t probe = 0; probe < n; probe++) {
		_Atomic uint32_t *stripe = stripe_of(h, b);
		const unsigned char *bucket = bucket_at(h, b);
		uint32_t v = raw_read_seqbegin(stripe);
		unsigned mask = k4v8_match(bucket, k);
		/* loaded before the branch on mask, as k8v8_bucket's */
		uint64_t value = load_u64(bucket + k4v8_slot_offset(mask) + 8);
		if (__builtin_expect(mask != 0, 1)) {
			if (read_seqretry(stripe, v) || (v & 1))
				return LOOKUP_SLOW;
			*out = value;
			return 0;
		}
		int rc = walk_past(h->overflow, moves, n, &b, &step, hash, stripe, v, m);
		if (rc != BUCKET_LACKS)
			return rc;
	}
	return LOOKUP_SLOW;
}

/* hashtable_search for a k4v8 table.  The value travels in a register:
 * a miss leaves datum untouched. */
static int search_k4v8(struct generation_map *h, const void *k, void *datum)
{
	uint32_t key;
	uint64_t value;
	memcpy(&key, k, 4);
	if (__builtin_expect(key == (uint32_t)h->empty_u64 || key == (uint32_t)h->deleted_u64, 0))
		return search_general(h, k, datum); /* reports the sentinel */
	uint64_t hash = hash_k4(k, h->seed);
	int rc = lookup_k4v8(h, key, hash, &value);
	if (rc == LOOKUP_SLOW) /* a version changed: the general path, same hash */
		rc = lookup(h, k, hash, &value);
	if (rc == 0)
		memcpy(datum, &value, 8);
	return rc;
}

/* ---- wide slots: the split layout's read path ---------------------------- */

/* The search for every shape but k8v8 and k4v8 (hashtable_search and
 * search_in take those) is written once, over a struct wide_shape passed by
 * value to always_inline functions: search_split instantiates it for the
 * fixed shapes of wide_shapes[] (every width a constant: no loop over slots
 * of unknown count, no call to compare or copy) and once for any other
 * geometry (wide_shape_of). */

/* split_find for keys of `words` words (a constant where it is inlined). */
static inline __attribute__((always_inline)) int
split_find_words(const unsigned char *bucket, uint32_t ss, uint32_t spb, const void *key,
                 const uint32_t words)
{
	uint64_t k[4];
	memcpy(k, key, words * 8);
	unsigned mask = 0;
	/* unrolled: GCC -O2 keeps even a 3-word constant loop as a loop */
#pragma GCC unroll 8
	for (uint32_t i = 0; i < spb; i++) {
		const unsigned char *p = bucket + i * ss;
		uint64_t diff = 0;
#pragma GCC unroll 4
		for (uint32_t w = 0; w < words; w++)
			diff |= load_u64(p + 8 * w) ^ k[w];
		mask |= (unsigned)(diff == 0) << i;
	}
	return mask ? __builtin_ctz(mask) : -1;
}

/* split_find for keys of no whole-word width in slots 8-aligned and at
 * least 8 bytes apart (3/5: 8-byte slots; 12/20: 32): each slot's first
 * word, masked to the key's first (up to 8) bytes, against the key's; only
 * a slot that passes has the rest of its key compared (shared_equal).
 * Bytes past a short key are its slot's pad or value, inside the slot,
 * and the mask drops them.  bucket_find's generic case calls
 * shared_equal on every slot (933 instructions a 3/5 hit, callgrind). */
static inline __attribute__((always_inline)) int
split_find_prefix(const unsigned char *bucket, const void *key, const struct wide_shape s)
{
	const uint32_t head = s.ks < 8 ? s.ks : 8;
	unsigned char kb[8] = {0}, mb[8] = {0};
	memcpy(kb, key, head);
	memset(mb, 0xff, head);
	uint64_t k, mask;
	memcpy(&k, kb, 8);
	memcpy(&mask, mb, 8);
	for (uint32_t i = 0; i < s.spb; i++) {
		const unsigned char *p = bucket + i * s.ss;
		if (((load_u64(p) ^ k) & mask) == 0 &&
		    (s.ks <= 8 || shared_equal(p + 8, (const unsigned char *)key + 8, s.ks - 8)))
			return (int)i;
	}
	return -1;
}

/* Index within a bucket of shape s of the slot holding key, or -1.  Keys of
 * whole words (8, 16, 24, 32 bytes) are compared a word at a time with
 * relaxed loads, every slot, into a mask (no branch on which matched, as
 * bucket_find); 4-byte keys in k4v8 buckets by k4v8_match; other widths
 * in 8-aligned slots by split_find_prefix, the rest by bucket_find. */
static inline __attribute__((always_inline)) int
split_find(const struct generation_map *h, const unsigned char *bucket, const void *key,
           const struct wide_shape s)
{
	if (s.ks == 4 && s.ss == 16 && s.spb == 4 && !s.split) {
		uint32_t k;
		memcpy(&k, key, 4);
		unsigned mask = k4v8_match(bucket, k);
		return mask ? __builtin_ctz(mask) / 4 : -1;
	}
	if (s.ks == 8 && s.ss == 8 && s.spb == 8) { /* 8-byte keys, a line of them (8/32) */
#if defined(__SSE2__) && !defined(SHMKV_TSAN)
		/* as k8v8_match, two keys a load (and justified as it is) */
		uint64_t k;
		memcpy(&k, key, 8);
		__m128i kk = _mm_set1_epi64x((long long)k), e[4];
		for (int j = 0; j < 4; j++) {
			e[j] = _mm_cmpeq_epi32(
			        _mm_load_si128((const __m128i *)(const void *)(bucket + 16 * j)), kk);
			/* a 64-bit lane matches when both its 32-bit halves do */
			e[j] = _mm_and_si128(e[j], _mm_shuffle_epi32(e[j], 0xb1));
		}
		/* two bytes a key: its movemask bits 2i, 2i + 1 */
		unsigned q = (unsigned)_mm_movemask_epi8(_mm_packs_epi16(
		        _mm_packs_epi32(e[0], e[1]), _mm_packs_epi32(e[2], e[3])));
		return q ? __builtin_ctz(q) / 2 : -1;
#else
		return split_find_words(bucket, 8, 8, key, 1);
#endif
	}
	if (s.ks == 16 && s.ss == 16 && s.spb == 4) {
#if defined(__SSE2__) && !defined(SHMKV_TSAN)
		/* One aligned 16-byte load a key, as k8v8_match (and with its
		 * justification: the version re-check decides whether they count). */
		__m128i k = _mm_loadu_si128((const __m128i *)key);
		__m128i e0 = _mm_cmpeq_epi32(_mm_load_si128((const __m128i *)(const void *)bucket), k);
		__m128i e1 = _mm_cmpeq_epi32(
		        _mm_load_si128((const __m128i *)(const void *)(bucket + 16)), k);
		__m128i e2 = _mm_cmpeq_epi32(
		        _mm_load_si128((const __m128i *)(const void *)(bucket + 32)), k);
		__m128i e3 = _mm_cmpeq_epi32(
		        _mm_load_si128((const __m128i *)(const void *)(bucket + 48)), k);
		/* four bytes a key, one per 32-bit quarter: its nibble of the
		 * movemask is 0xf when all four quarters match */
		unsigned q = (unsigned)_mm_movemask_epi8(
		        _mm_packs_epi16(_mm_packs_epi32(e0, e1), _mm_packs_epi32(e2, e3)));
		q &= q >> 2;
		q &= q >> 1;
		return q & 0x1111u ? __builtin_ctz(q & 0x1111u) / 4 : -1;
#else
		uint64_t k0, k1;
		memcpy(&k0, key, 8);
		memcpy(&k1, (const unsigned char *)key + 8, 8);
		unsigned mask = 0;
		for (uint32_t i = 0; i < 4; i++) {
			const unsigned char *p = bucket + i * 16;
			mask |= (unsigned)(((load_u64(p) ^ k0) | (load_u64(p + 8) ^ k1)) == 0) << i;
		}
		return mask ? __builtin_ctz(mask) : -1;
#endif
	}
	if (s.ks == 24)
		return split_find_words(bucket, s.ss, s.spb, key, 3);
	if (s.ks == 32)
		return split_find_words(bucket, s.ss, s.spb, key, 4);
	if (h->key_class == KEY_GENERIC && s.ss % 8 == 0)
		return split_find_prefix(bucket, key, s);
	return bucket_find(h, bucket, key); /* other widths: its word and byte paths */
}

/* The value of slot i of a bucket of shape s (bucket_value's rule). */
static inline __attribute__((always_inline)) const unsigned char *
wide_value(const unsigned char *bucket, uint32_t i, const struct wide_shape s)
{
	return s.split ? bucket + s.value_offset + i * s.value_stride
	               : bucket + i * s.ss + s.value_offset;
}

/* key_hash for keys of ks bytes: 4 and 16 bytes (the common wide key) hash
 * inline, as hash_bytes would hash them, so a hit spends no call on it. */
static inline __attribute__((always_inline)) uint64_t
split_hash(const struct generation_map *h, const void *key, const uint32_t ks)
{
	if (ks == 4)
		return hash_k4(key, h->seed);
	if (ks == 24 || ks == 32)
		return hash_bytes_inline(key, ks, h->seed);
	if (ks != 16)
		return key_hash(h, key);
	uint64_t w0, w1, x = h->seed ^ (16 * UINT64_C(0xa0761d6478bd642f));
	memcpy(&w0, key, 8);
	memcpy(&w1, (const unsigned char *)key + 8, 8);
	x = mum(x ^ w0, UINT64_C(0xe7037ed1a0b428db));
	x = mum(x ^ w1, UINT64_C(0xe7037ed1a0b428db));
	return mum(x, UINT64_C(0x589965cc75374cc3));
}

/* is_sentinel without a call for keys of 4, 16, 24 or 32 bytes
 * (constant-size compares the compiler makes word compares). */
static inline __attribute__((always_inline)) bool
split_is_sentinel(const struct generation_map *h, const void *key, const uint32_t ks)
{
	switch (ks) {
	case 4: return memcmp(key, h->empty, 4) == 0 || memcmp(key, h->deleted, 4) == 0;
	case 8: {
		uint64_t k;
		memcpy(&k, key, 8);
		return k == h->empty_u64 || k == h->deleted_u64;
	}
	case 16: return memcmp(key, h->empty, 16) == 0 || memcmp(key, h->deleted, 16) == 0;
	case 24: return memcmp(key, h->empty, 24) == 0 || memcmp(key, h->deleted, 24) == 0;
	case 32: return memcmp(key, h->empty, 32) == 0 || memcmp(key, h->deleted, 32) == 0;
	default: return is_sentinel(h, key);
	}
}

/* Copies a value out of a slot: whole words by relaxed loads where it is
 * aligned and a whole number of words (16-byte SSE2 loads where aligned
 * to them, as split_find's), else shared_load. */
static inline __attribute__((always_inline)) void
split_value_copy(void *out, const unsigned char *src, uint32_t n)
{
	if ((n & 7) || ((uintptr_t)src & 7)) {
		shared_load(out, src, n);
		return;
	}
	unsigned char *d = out;
	uint32_t w = 0;
#if defined(__SSE2__) && !defined(SHMKV_TSAN)
	if (((uintptr_t)src & 15) == 0)
#pragma GCC unroll 8
		for (; w + 16 <= n; w += 16)
			_mm_storeu_si128((__m128i *)(void *)(d + w),
			                 _mm_load_si128((const __m128i *)(const void *)(src + w)));
#endif
#pragma GCC unroll 8
	for (; w < n; w += 8) {
		uint64_t x = load_u64(src + w);
		memcpy(d + w, &x, 8);
	}
}

/* The wide search: the keys' line of each bucket on the path, then the one
 * value, copied once, straight into out, and validated by the bucket's
 * version.  For split tables, and interleaved ones of no fixed shape:
 * slot_size is the keys' stride in both layouts and wide_value finds the
 * value in either.  `moves` is read once at the start and re-checked only
 * by a miss (as lookup_k8v8).  Returns 0 (found: out holds the value), -1
 * (absent), or LOOKUP_SLOW when the general path must decide (a version
 * odd or changed, a key moved meanwhile): out may then have been written. */
static inline __attribute__((always_inline)) int
lookup_split(const struct generation_map *h, const void *key, uint64_t hash, void *out,
             const struct wide_shape s)
{
	const uint64_t n = h->g.nbuckets;
	_Atomic uint32_t *const moves = &h->hdr->moves;
	const unsigned char *const buckets = h->buckets;
	/* The value's line is read after the keys' line (its address depends
	 * on which key matched).  Prefetching the home bucket's value lines
	 * beside the keys' line was measured (4M 16/64 and 8/32 entries, two
	 * alternating runs): no gain in latency mode beyond the noise, and a
	 * loss in throughput mode (four more lines in flight per lookup take
	 * the fill buffers that overlap independent lookups), so it is not
	 * done. */
	uint64_t b = home_bucket(hash, n), step = 0;
	/* The next buckets' key lines, though, are started now, beside the
	 * home's (as lookup_k8v8 does): 16/64 hits go on past the home bucket
	 * 24% of the time, 8/32's 10%, and a bucket of one slot (24/40) holds
	 * a hit's key about half the time, so there two more are started.
	 * Measured at 4M entries, load 0.8, against MemKeyValue in the same
	 * runs (two alternating runs, throughput / latency): 16/64 1.21x /
	 * 1.17x without, 0.93x / 1.03-1.09x with; 8/32 0.88-1.02x / 0.90-1.05x
	 * without, 0.91-0.94x / 0.94-0.98x with; 24/40 1.23-1.27x /
	 * 1.16-1.20x without, 0.98-1.09x / 0.95-1.04x with two (three more:
	 * no better). */
	if (n > 1) {
		step = probe_step(hash, n);
		uint64_t ahead = next_bucket(b, step, n);
		__builtin_prefetch(buckets + ahead * s.bb);
		if (s.spb == 1)
			__builtin_prefetch(buckets + next_bucket(ahead, step, n) * s.bb);
	}
	uint32_t m = raw_read_seqbegin(moves);
	for (uint64_t probe = 0; probe < n; probe++) {
		_Atomic uint32_t *stripe = stripe_of(h, b);
		const unsigned char *bucket = buckets + b * s.bb;
		uint32_t v = raw_read_seqbegin(stripe);
		int i = split_find(h, bucket, key, s);
		if (i >= 0) {
			if (out)
				split_value_copy(out, wide_value(bucket, (uint32_t)i, s), s.vs);
			if (read_seqretry(stripe, v) || (v & 1))
				return LOOKUP_SLOW;
			return 0;
		}
		int rc = walk_past(h->overflow, moves, n, &b, &step, hash, stripe, v, m);
		if (rc != BUCKET_LACKS)
			return rc;
	}
	return LOOKUP_SLOW;
}

/* hashtable_search over lookup_split for shape s.  lookup_split copies a
 * value before it validates the bucket's version; after a LOOKUP_SLOW (a
 * writer was in the bucket, or a key moved) the general path may end with
 * -1.  So the value is staged, as search_general does: a -1 leaves datum
 * untouched. */
static inline __attribute__((always_inline)) int
search_split_as(struct generation_map *h, const void *k, void *datum, const struct wide_shape s)
{
	if (__builtin_expect(!k || split_is_sentinel(h, k, s.ks), 0))
		return check_key(h, k); /* says which */
	if (!datum && s.vs)
		return fail(-EINVAL, "NULL value buffer");
	uint64_t hash = split_hash(h, k, s.ks);
	if (s.vs > SMALL_VALUE) { /* too wide to stage (hashtable.h) */
		int rc = lookup_split(h, k, hash, datum, s);
		return rc != LOOKUP_SLOW ? rc : lookup(h, k, hash, datum);
	}
	unsigned char staged[SMALL_VALUE] __attribute__((aligned(16)));
	int rc = lookup_split(h, k, hash, staged, s);
	if (rc == LOOKUP_SLOW)
		rc = lookup(h, k, hash, staged);
	if (rc == 0 && s.vs)
		memcpy(datum, staged, s.vs);
	return rc;
}

/* hashtable_search for a split table, and an interleaved one of no fixed
 * shape (search_in): the instance for the map's shape. */
static int search_split(struct generation_map *h, const void *k, void *datum)
{
	switch (h->wide) {
	case WIDE_K16V64: return search_split_as(h, k, datum, wide_shapes[WIDE_K16V64]);
	case WIDE_K8V32: return search_split_as(h, k, datum, wide_shapes[WIDE_K8V32]);
	case WIDE_K24V40: return search_split_as(h, k, datum, wide_shapes[WIDE_K24V40]);
	default: return search_split_as(h, k, datum, wide_shape_of(&h->g));
	}
}

/* search_split_as's instances for wide_shapes[], one function each, so
 * that a map can name its own (shape_search). */
static int search_k8v32(struct generation_map *h, const void *k, void *datum)
{
	return search_split_as(h, k, datum, wide_shapes[WIDE_K8V32]);
}

static int search_k16v64(struct generation_map *h, const void *k, void *datum)
{
	return search_split_as(h, k, datum, wide_shapes[WIDE_K16V64]);
}

static int search_k24v40(struct generation_map *h, const void *k, void *datum)
{
	return search_split_as(h, k, datum, wide_shapes[WIDE_K24V40]);
}

static int search_in(struct generation_map *h, void *k, void *datum);

/* search_in for a k8v8 map, as a search_fn (a table past FAST_MAX_BUCKETS
 * reaches it through search_other_shape). */
static int search_k8v8_any(struct generation_map *h, const void *k, void *datum)
{
	return search_in(h, (void *)(uintptr_t)k, datum);
}

/* The read path bound to a map (its `search`): search_in's choice, made
 * once, when the map is bound, instead of at every call. */
static search_fn *shape_search(const struct generation_map *h)
{
	if (h->k8v8)
		return search_k8v8_any;
	if (h->k4v8)
		return search_k4v8;
	switch (h->wide) {
	case WIDE_K8V32: return search_k8v32;
	case WIDE_K16V64: return search_k16v64;
	case WIDE_K24V40: return search_k24v40;
	default: return search_split;
	}
}

/* Kept to a few dozen instructions for the common shape: independent
 * lookups overlap their cache misses only as far as the CPU's reorder
 * window reaches, so every instruction here costs throughput. */
static int search_in(struct generation_map *h, void *k, void *datum)
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
	if (!h || !k || !datum)
		return search_general(h, k, datum); /* says which */
	if (h->k4v8)
		return search_k4v8(h, k, datum);
	/* every other shape: lookup_split reads either layout (slot_size is the
	 * keys' stride in both, bucket_value finds the value), with word
	 * compares for whole-word keys where the general path compares through
	 * a call per slot */
	return search_split(h, k, datum);
}

/* Keys per group of a batch: the home buckets of the next group are on
 * their way while this one is answered.  At 16M entries, with both
 * libraries in one process on one table, rounds interleaved (best of 9),
 * groups of 64 took 0.90x the time of groups of 32 a key for batches of
 * 64, 0.97-0.99x for 128 and 256 (two runs agreed); groups of 16 took
 * 1.06-1.12x; 128 measured within 4% of 64 either way.  Prefetching each
 * key's second bucket with its home (as hashtable_search does, for
 * latency) took 1.33-1.37x: a batch is bound by the lines in flight, not
 * by instructions. */
#define BATCH_GROUP 64

/* Starts the cache miss of a key's home bucket. */
static inline __attribute__((always_inline)) void prefetch_home(const struct generation_map *h,
                                                                uint64_t hash)
{
	/* always_inline: GCC 12 deems a function that only prefetches free
	 * of effects and deletes its calls, prefetches and all */
	__builtin_prefetch(bucket_at(h, home_bucket(hash, h->g.nbuckets)));
}

/* Hashes keys [from, to) of an 8-byte-key batch into hashes[] and starts
 * their home buckets' misses.  0, or -EINVAL for a sentinel key. */
static inline int batch_start_k8v8(const struct generation_map *h, const unsigned char *kp,
                                   size_t from, size_t to, uint64_t *hashes)
{
	for (size_t i = from; i < to; i++) {
		uint64_t k;
		memcpy(&k, kp + i * 8, 8);
		if (k == h->empty_u64 || k == h->deleted_u64)
			return fail(-EINVAL, "key %zu of the batch equals a sentinel", i);
		hashes[i - from] = hash_u64(k, h->seed);
		prefetch_home(h, hashes[i - from]);
	}
	return 0;
}

/* A key of a batch whose answer lies past the bucket it last read. */
struct batch_walk {
	uint64_t hash, b, step;
	uint32_t i, probe; /* i: the key's index in the batch */
};

/* Answers key i of an 8-byte-key batch on the general path (a version
 * changed, a key moved, a long path): 0 found, -1 absent, or the error. */
static __attribute__((noinline)) int batch_key_slow(const struct generation_map *h,
                                                    const unsigned char *kp, size_t i,
                                                    uint64_t hash, uint64_t *value)
{
	return lookup(h, kp + i * 8, hash, value);
}

/* The batch loop for the common shape, as group prefetching: the keys go
 * in groups of BATCH_GROUP, and while a group is answered from its home
 * buckets the next group's home buckets are on their way.  A key whose
 * home bucket does not hold it gets its overflow word and its next bucket
 * prefetched at once and joins the group's walk list; the walk list is
 * then answered round after round, each round one bucket further for
 * every key on it, so the second (and later) misses of all those keys
 * overlap too instead of stalling the loop one by one.  `moves` is read
 * once, before any bucket of the batch: a miss counts if it is still the
 * same even value when the miss is decided (as in lookup()).  A bucket's
 * overflow word is read a round after the bucket, outside its version
 * check, which a miss does not need: a key present throughout and not
 * moved, absent from the bucket when it was read, lies further on its
 * path, so by Invariant C the word has its bit at every instant after. */
static long search_batch_k8v8(const struct generation_map *h, size_t n, const unsigned char *kp,
                              unsigned char *vp, int *found)
{
	const uint64_t nb = h->g.nbuckets;
	_Atomic uint32_t *const moves = &h->hdr->moves;
	uint64_t hashes[2][BATCH_GROUP], value;
	struct batch_walk walk[BATCH_GROUP];
	long hits = 0;
	uint32_t mv = raw_read_seqbegin(moves);
	int rc = batch_start_k8v8(h, kp, 0, n < BATCH_GROUP ? n : BATCH_GROUP, hashes[0]);
	if (rc)
		return rc;
	for (size_t base = 0, c = 0; base < n; base += BATCH_GROUP, c ^= 1) {
		size_t m = n - base < BATCH_GROUP ? n - base : BATCH_GROUP, nwalk = 0;
		size_t next = base + m;
		if (next < n && (rc = batch_start_k8v8(h, kp, next, n - next < BATCH_GROUP
		                                                    ? n : next + BATCH_GROUP,
		                                       hashes[c ^ 1])))
			return rc;
		/* round 1: the home buckets */
		for (size_t j = 0; j < m; j++) {
			size_t i = base + j;
			uint64_t k, hash = hashes[c][j], b = home_bucket(hash, nb);
			memcpy(&k, kp + i * 8, 8);
			rc = k8v8_bucket(h, b, k, &value, true);
			if (rc == BUCKET_LACKS) {
				uint64_t step = probe_step(hash, nb);
				__builtin_prefetch(&h->overflow[b]);
				__builtin_prefetch(bucket_at(h, next_bucket(b, step, nb)));
				walk[nwalk++] = (struct batch_walk){hash, b, step, (uint32_t)i, 0};
				continue;
			}
			if (rc == LOOKUP_SLOW && (rc = batch_key_slow(h, kp, i, hash, &value)) < -1)
				return rc;
			found[i] = rc;
			if (rc == 0) {
				memcpy(vp + i * 8, &value, 8);
				hits++;
			}
		}
		/* later rounds: one bucket further for every key on the list */
		while (nwalk) {
			size_t kept = 0;
			for (size_t w = 0; w < nwalk; w++) {
				struct batch_walk *p = &walk[w];
				uint64_t k;
				memcpy(&k, kp + (size_t)p->i * 8, 8);
				uint16_t ov = atomic_load_explicit(&h->overflow[p->b],
				                                   memory_order_relaxed);
				if (!passes(ov, p->hash)) { /* absent, unless a key moved */
					rc = (mv & 1) || read_seqretry(moves, mv) ? LOOKUP_SLOW : -1;
				} else if (++p->probe >= nb) {
					rc = LOOKUP_SLOW; /* every bucket overflowed */
				} else {
					p->b = next_bucket(p->b, p->step, nb);
					rc = k8v8_bucket(h, p->b, k, &value, true);
					if (rc == BUCKET_LACKS) {
						__builtin_prefetch(&h->overflow[p->b]);
						__builtin_prefetch(
						        bucket_at(h, next_bucket(p->b, p->step, nb)));
						walk[kept++] = *p;
						continue;
					}
				}
				if (rc == LOOKUP_SLOW &&
				    (rc = batch_key_slow(h, kp, p->i, p->hash, &value)) < -1)
					return rc;
				found[p->i] = rc;
				if (rc == 0) {
					memcpy(vp + (size_t)p->i * 8, &value, 8);
					hits++;
				}
			}
			nwalk = kept;
		}
	}
	return hits;
}

/* A key of a wide batch found in a bucket whose value is not copied yet:
 * copied in a later round, so that the value lines' misses (split tables)
 * overlap the other keys' work, and validated then by the version read
 * with the key. */
struct batch_hit {
	const unsigned char *value;
	_Atomic uint32_t *stripe;
	uint64_t hash;
	uint32_t v, i;
};

/* One bucket of a wide batch's key: 0 when bucket b holds it (*hit names
 * the value, its line prefetched), BUCKET_LACKS when it does not, under an
 * even version unchanged since, LOOKUP_SLOW when that version was odd or
 * changed. */
static inline __attribute__((always_inline)) int
wide_bucket(const struct generation_map *h, uint64_t b, const void *key, struct batch_hit *hit,
            const struct wide_shape s)
{
	_Atomic uint32_t *stripe = stripe_of(h, b);
	const unsigned char *bucket = h->buckets + b * s.bb;
	uint32_t v = raw_read_seqbegin(stripe);
	int i = split_find(h, bucket, key, s);
	if (i < 0)
		return read_seqretry_or_odd(stripe, v) ? LOOKUP_SLOW : BUCKET_LACKS;
	hit->value = wide_value(bucket, (uint32_t)i, s);
	hit->stripe = stripe;
	hit->v = v;
	__builtin_prefetch(hit->value);
	if (s.vs > 1 && ((uintptr_t)hit->value & (LINE - 1)) + s.vs > LINE)
		__builtin_prefetch(hit->value + s.vs - 1);
	return 0;
}

/* Answers key i of a wide batch on the general path (a version changed, a
 * key moved, a long path), its value staged: 0 found, -1 absent, or the
 * error. */
static __attribute__((noinline)) int batch_wide_slow(const struct generation_map *h,
                                                     const unsigned char *kp, unsigned char *vp,
                                                     size_t i, uint64_t hash)
{
	const uint32_t ks = h->g.key_size, vs = h->g.value_size;
	unsigned char staged[SMALL_VALUE];
	void *out = vs > SMALL_VALUE ? vp + i * vs : staged;
	int rc = lookup(h, kp + i * ks, hash, out);
	if (rc == 0 && out == staged && vs)
		memcpy(vp + i * vs, staged, vs);
	return rc;
}

/* Hashes keys [from, to) of a wide batch into hashes[] and starts their
 * home buckets' misses.  0, or -EINVAL for a sentinel key. */
static inline __attribute__((always_inline)) int
batch_start_wide(const struct generation_map *h, const unsigned char *kp, size_t from, size_t to,
                 uint64_t *hashes, const struct wide_shape s)
{
	for (size_t i = from; i < to; i++) {
		const unsigned char *key = kp + i * s.ks;
		if (split_is_sentinel(h, key, s.ks))
			return fail(-EINVAL, "key %zu of the batch equals a sentinel", i);
		hashes[i - from] = split_hash(h, key, s.ks);
		prefetch_home(h, hashes[i - from]);
	}
	return 0;
}

/* search_batch_k8v8's group prefetching for every other shape: the keys go
 * in groups of BATCH_GROUP, the next group's home buckets on their way
 * while this one is answered; keys not in their home bucket walk on in
 * rounds (their next buckets and overflow words prefetched a round ahead,
 * the overflow word read outside the bucket's version, as there), and the
 * values of the keys found are copied last, their lines prefetched when
 * the key was found, so that a split table's second miss of every key
 * overlaps too.  A value is validated by the version read with its key:
 * unchanged, no writer touched the bucket between the key's compare and
 * the copy. */
static inline __attribute__((always_inline)) long
search_batch_wide(const struct generation_map *h, size_t n, const unsigned char *kp,
                  unsigned char *vp, int *found, const struct wide_shape s)
{
	const uint64_t nb = h->g.nbuckets;
	_Atomic uint32_t *const moves = &h->hdr->moves;
	uint64_t hashes[2][BATCH_GROUP];
	struct batch_walk walk[BATCH_GROUP];
	struct batch_hit hit[BATCH_GROUP];
	long hits = 0;
	uint32_t mv = raw_read_seqbegin(moves);
	int rc = batch_start_wide(h, kp, 0, n < BATCH_GROUP ? n : BATCH_GROUP, hashes[0], s);
	if (rc)
		return rc;
	for (size_t base = 0, c = 0; base < n; base += BATCH_GROUP, c ^= 1) {
		size_t m = n - base < BATCH_GROUP ? n - base : BATCH_GROUP, nwalk = 0, nhit = 0;
		size_t next = base + m;
		if (next < n && (rc = batch_start_wide(h, kp, next,
		                                       n - next < BATCH_GROUP ? n : next + BATCH_GROUP,
		                                       hashes[c ^ 1], s)))
			return rc;
		/* round 1: the home buckets */
		for (size_t j = 0; j < m; j++) {
			size_t i = base + j;
			uint64_t hash = hashes[c][j], b = home_bucket(hash, nb);
			rc = wide_bucket(h, b, kp + i * s.ks, &hit[nhit], s);
			if (rc == 0) {
				hit[nhit].hash = hash;
				hit[nhit++].i = (uint32_t)i;
				continue;
			}
			if (rc == BUCKET_LACKS) {
				uint64_t step = probe_step(hash, nb);
				__builtin_prefetch(&h->overflow[b]);
				__builtin_prefetch(h->buckets + next_bucket(b, step, nb) * s.bb);
				walk[nwalk++] = (struct batch_walk){hash, b, step, (uint32_t)i, 0};
				continue;
			}
			if ((rc = batch_wide_slow(h, kp, vp, i, hash)) < -1)
				return rc;
			found[i] = rc;
			hits += rc == 0;
		}
		/* later rounds: one bucket further for every key on the list */
		while (nwalk) {
			size_t kept = 0;
			for (size_t w = 0; w < nwalk; w++) {
				struct batch_walk *p = &walk[w];
				uint16_t ov = atomic_load_explicit(&h->overflow[p->b],
				                                   memory_order_relaxed);
				if (!passes(ov, p->hash)) { /* absent, unless a key moved */
					rc = (mv & 1) || read_seqretry(moves, mv) ? LOOKUP_SLOW : -1;
				} else if (++p->probe >= nb) {
					rc = LOOKUP_SLOW; /* every bucket overflowed */
				} else {
					p->b = next_bucket(p->b, p->step, nb);
					rc = wide_bucket(h, p->b, kp + (size_t)p->i * s.ks, &hit[nhit], s);
					if (rc == 0) {
						hit[nhit].hash = p->hash;
						hit[nhit++].i = p->i;
						continue;
					}
					if (rc == BUCKET_LACKS) {
						__builtin_prefetch(&h->overflow[p->b]);
						__builtin_prefetch(h->buckets +
						                   next_bucket(p->b, p->step, nb) * s.bb);
						walk[kept++] = *p;
						continue;
					}
				}
				if (rc == LOOKUP_SLOW &&
				    (rc = batch_wide_slow(h, kp, vp, p->i, p->hash)) < -1)
					return rc;
				found[p->i] = rc;
				hits += rc == 0;
			}
			nwalk = kept;
		}
		/* last: the values of the keys found, staged until validated (an
		 * answer that ends absent leaves its value bytes alone) */
		for (size_t j = 0; j < nhit; j++) {
			const struct batch_hit *p = &hit[j];
			unsigned char staged[SMALL_VALUE] __attribute__((aligned(16)));
			void *out = s.vs > SMALL_VALUE ? vp + (size_t)p->i * s.vs : staged;
			split_value_copy(out, p->value, s.vs);
			if (read_seqretry(p->stripe, p->v) || (p->v & 1)) {
				rc = batch_wide_slow(h, kp, vp, p->i, p->hash);
			} else {
				rc = 0;
				if (out == staged && s.vs)
					memcpy(vp + (size_t)p->i * s.vs, staged, s.vs);
			}
			if (rc < -1)
				return rc;
			found[p->i] = rc;
			hits += rc == 0;
		}
	}
	return hits;
}

/* The batch paths keep a key's index in a 32-bit field (struct
 * batch_walk, struct batch_hit): a longer batch is answered a chunk at a
 * time.  A build may lower it to test the chunking. */
#ifndef SHMKV_BATCH_CHUNK
#define SHMKV_BATCH_CHUNK (UINT32_C(1) << 30)
#endif

static long search_batch_in(struct generation_map *h, size_t n, const void *keys,
                            void *values, int *found)
{
	if (!h || (n && (!keys || !found || (!values && h->g.value_size))))
		return fail(-EINVAL, "NULL table handle, keys, values or found array");
	if (n > SHMKV_BATCH_CHUNK) {
		const size_t ks = h->g.key_size, vs = h->g.value_size;
		long hits = 0;
		for (size_t done = 0; done < n; done += SHMKV_BATCH_CHUNK) {
			size_t part = n - done < SHMKV_BATCH_CHUNK ? n - done : SHMKV_BATCH_CHUNK;
			long rc = search_batch_in(h, part, (const unsigned char *)keys + done * ks,
			                          vs ? (unsigned char *)values + done * vs : values,
			                          found + done);
			if (rc < 0)
				return rc;
			hits += rc;
		}
		return hits;
	}
	if (h->k8v8)
		return search_batch_k8v8(h, n, keys, values, found);
	switch (h->wide) { /* the instance for the map's shape (see search_split) */
	case WIDE_K4V8: return search_batch_wide(h, n, keys, values, found, wide_shapes[WIDE_K4V8]);
	case WIDE_K8V32:
		return search_batch_wide(h, n, keys, values, found, wide_shapes[WIDE_K8V32]);
	case WIDE_K16V64:
		return search_batch_wide(h, n, keys, values, found, wide_shapes[WIDE_K16V64]);
	case WIDE_K24V40:
		return search_batch_wide(h, n, keys, values, found, wide_shapes[WIDE_K24V40]);
	default:
		return search_batch_wide(h, n, keys, values, found, wide_shape_of(&h->g));
	}
}

/* ---- the writer lock -------------------------------------------------------- */

/* This process's pid and start time, read once (getpid() is a system call
 * in current glibc), and this thread's id; forgotten in a fork()ed child
 * (whose one thread runs the handler). */
static pid_t cached_pid;
static uint64_t cached_start;
static _Thread_local pid_t cached_tid;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void forget_pid(void)
{
	cached_pid = 0;
	cached_tid = 0;
}

static void register_atfork(void) { pthread_atfork(NULL, NULL, forget_pid); }

/* Records the caller as the lock's holder, before it changes anything. */
static void record_holder(struct generation_map *h)
{
	if (cached_pid == 0) { /* under the writer lock: one thread at a time */
		/* once per process (and again in a fork()ed child, whose handler
		 * zeroed cached_pid): a nonzero pid says the handler is registered,
		 * so an update spends no pthread_once call on it */
		pthread_once(&atfork_once, register_atfork);
		cached_start = process_start_time(getpid());
		cached_pid = getpid();
	}
	if (cached_tid == 0)
		cached_tid = thread_id();
	atomic_store_explicit(&h->root->holder_start, cached_start, memory_order_relaxed);
	atomic_store_explicit(&h->root->holder_tid, cached_tid, memory_order_relaxed);
	/* release: readers that see the pid see its thread and start time;
	 * pairs with the acquire load in holder_alive */
	atomic_store_explicit(&h->root->holder_pid, cached_pid, memory_order_release);
}

static void writer_unlock(struct generation_map *h)
{
	/* release: the last write_seqend is visible before the record reads
	 * free; pairs with the acquire load in holder_alive */
	atomic_store_explicit(&h->root->holder_pid, 0, memory_order_release);
#ifndef SHMKV_BENCH_NO_LOCK
	pthread_mutex_unlock(&h->root->lock.mutex);
#endif
}

/* ---- the writer lock's bytes ------------------------------------------------
 *
 * The mutex lives in the segment, so its bytes are distrusted like the rest:
 * a lock word naming a thread that does not exist is never released by the
 * kernel (it only releases the locks on a dying thread's robust list), and a
 * damaged kind word can make glibc abort (a robust mutex turned priority-
 * inheriting, held by no thread: `e != ESRCH || !robust`) or fail with
 * EINVAL.  So a writer checks the kind before calling into pthread (glibc),
 * waits for the lock in slices, and after LOCK_PATIENCE_MS of waiting on a
 * holder that is not the live recorded one reports HASHTABLE_ECORRUPT.  A
 * repair re-initialises a lock that no live thread holds.  With the kind
 * word intact, damage to the other words (lock, owner, count, nusers, list;
 * 300 random cases with dead, own and impossible thread ids) made glibc
 * 2.36 return 0, ETIMEDOUT, EOWNERDEAD or ENOTRECOVERABLE, never abort. */

/* SHMKV_BENCH_NO_LOCK builds writers that skip the mutex's lock and unlock
 * (and so their locked instructions), for bench/write_bench.c to measure
 * what the lock costs an update beside the work it guards.  Never for use:
 * concurrent writers would corrupt the table. */

#define LOCK_PATIENCE_MS 2000 /* hashtable.h documents this bound */
#define LOCK_SLICE_MS 50

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

/* Whether thread (or process) id tid names a thread that runs. */
static bool thread_exists(pid_t tid)
{
	char state;
	uint64_t start;
	if (!process_stat(tid, &state, &start)) /* /proc/TID/stat: any thread's */
		return kill(tid, 0) == 0 || errno != ESRCH;
	return state != 'Z' && state != 'X';
}

#ifdef __GLIBC__
/* glibc's mutex fields (public in <bits/struct_mutex.h>): the lock word
 * holds the owner's thread id in its low 30 bits. */
#define LOCK_TID_MASK 0x3fffffff
/* 0 until learnt; atomic so that lock_bytes_check can test it without a
 * pthread_once call on every write (the value, once stored, never changes) */
static _Atomic int robust_kind;
static pthread_once_t robust_kind_once = PTHREAD_ONCE_INIT;

static void learn_robust_kind(void)
{
	pthread_mutex_t m;
	if (init_mutex(&m) == 0) {
		atomic_store_explicit(&robust_kind, m.__data.__kind, memory_order_relaxed);
		pthread_mutex_destroy(&m);
	}
}

static int lock_word(const pthread_mutex_t *m)
{
	return atomic_load_explicit((_Atomic int *)(uintptr_t)&m->__data.__lock,
	                            memory_order_relaxed);
}

static pid_t lock_owner(const pthread_mutex_t *m) { return lock_word(m) & LOCK_TID_MASK; }

static int lock_kind(const pthread_mutex_t *m)
{
	return atomic_load_explicit((_Atomic int *)(uintptr_t)&m->__data.__kind,
	                            memory_order_relaxed);
}
#else
static pid_t lock_owner(const pthread_mutex_t *m) { (void)m; return 0; }
#endif

/* Whether the lock's word says that thread tid does not hold the lock (it
 * names another thread, or none), where the C library's layout is known.
 * A writer takes the lock before it records itself and clears its record
 * before it unlocks, so a recorded holder that is writing is the word's
 * owner.  The acquire fence: a reader that sees the word released by an
 * unlock then sees the even versions that writer stored before it. */
static bool lock_names_other_thread(const struct generation_map *h, pid_t tid)
{
#ifdef __GLIBC__
	pid_t owner = lock_owner(&h->root->lock.mutex);
	atomic_thread_fence(memory_order_acquire);
	return tid > 0 && owner != tid;
#else
	(void)h, (void)tid;
	return false;
#endif
}

/* 0 if the lock's static bytes are those of a robust process-shared mutex
 * (checked on glibc only), else HASHTABLE_ECORRUPT naming the damage. */
static int lock_bytes_check(const struct generation_map *h)
{
#ifdef __GLIBC__
	int want = atomic_load_explicit(&robust_kind, memory_order_relaxed);
	if (__builtin_expect(want == 0, 0)) {
		pthread_once(&robust_kind_once, learn_robust_kind);
		want = atomic_load_explicit(&robust_kind, memory_order_relaxed);
	}
	int kind = lock_kind(&h->root->lock.mutex);
	if (kind != want)
		return fail(HASHTABLE_ECORRUPT, "the table's writer lock is damaged: its kind word is "
		                                "%d, not %d (a robust process-shared mutex); `shmkv "
		                                "verify --repair` re-initialises it when no process "
		                                "holds it", kind, want);
#else
	(void)h;
#endif
	return 0;
}

/* Whether the lock is held by the live writer the header records (the
 * lock word's owner, where the C library's layout is known). */
static bool lock_held_by_live_writer(const struct generation_map *h)
{
	pid_t owner = lock_owner(&h->root->lock.mutex);
	pid_t tid = atomic_load_explicit(&h->root->holder_tid, memory_order_relaxed);
	return (owner == 0 || owner == tid) && holder_alive(h);
}

/* Takes the mutex: 0, EOWNERDEAD (the caller must recover), or a negative
 * code.  A live recorded holder is waited out however long it holds the
 * lock (a read-write verify of a large table holds it for seconds); any
 * other holder for LOCK_PATIENCE_MS, then HASHTABLE_ECORRUPT, with
 * *damaged set (a repair may re-initialise the lock). */
static int mutex_lock_bounded(struct generation_map *h, bool *damaged)
{
	pthread_mutex_t *m = &h->root->lock.mutex;
#ifdef SHMKV_BENCH_NO_LOCK
	*damaged = false; /* see SHMKV_BENCH_NO_LOCK: one writer, never for use */
	return 0;
#endif
	*damaged = true;
	int rc = lock_bytes_check(h);
	if (rc)
		return rc;
	rc = pthread_mutex_trylock(m);
	for (long waited = 0; rc == EBUSY || rc == ETIMEDOUT; waited += LOCK_SLICE_MS) {
		if (lock_held_by_live_writer(h))
			waited = 0;
		else if (waited >= LOCK_PATIENCE_MS)
			return fail(HASHTABLE_ECORRUPT,
			            "the table's writer lock has been held for %d ms by thread %d, which "
			            "is not a live writer of this table: its bytes are damaged or its "
			            "holder left without the kernel releasing it; `shmkv verify --repair` "
			            "re-initialises it", LOCK_PATIENCE_MS, (int)lock_owner(m));
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += LOCK_SLICE_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		rc = pthread_mutex_timedlock(m, &until);
	}
	if (rc == 0 || rc == EOWNERDEAD) {
		*damaged = false;
		return rc;
	}
	if (rc == ENOTRECOVERABLE)
		return fail(HASHTABLE_ECORRUPT, "the table's writer lock is unrecoverable (a holder died "
		                                "and its recovery did not complete); `shmkv verify "
		                                "--repair` re-initialises it");
	return fail(HASHTABLE_ECORRUPT, "the table's writer lock is damaged (taking it failed: %s); "
	                                "`shmkv verify --repair` re-initialises it when no process "
	                                "holds it", strerror(rc));
}

/* Re-initialises a damaged lock, unless a live thread holds it.  Returns
 * 0, or HASHTABLE_ECORRUPT naming the live holder. */
static int lock_reinit(struct generation_map *h)
{
	pid_t owner = lock_owner(&h->root->lock.mutex);
	if (owner && thread_exists(owner))
		return fail(HASHTABLE_ECORRUPT, "the table's writer lock is damaged, but thread %d, "
		                                "which is live, holds it; stop that process, then run "
		                                "`shmkv verify --repair` again", (int)owner);
	if (lock_held_by_live_writer(h))
		return fail(HASHTABLE_ECORRUPT, "the table's writer lock is damaged, but pid %d, which "
		                                "is live, is recorded as its holder; stop it, then run "
		                                "`shmkv verify --repair` again",
		            (int)atomic_load(&h->root->holder_pid));
	int rc = init_mutex(&h->root->lock.mutex);
	if (rc)
		return fail(-rc, "cannot re-initialise the writer lock: %s", strerror(rc));
	atomic_store_explicit(&h->root->holder_pid, 0, memory_order_release);
	return 0;
}

/* Starts the cache misses of a private build's insert: the home bucket and
 * its overflow word, both for writing.  always_inline: GCC deletes calls of
 * a function that only prefetches (see prefetch_home). */
static inline __attribute__((always_inline)) void prefetch_build_path(const struct generation_map *h,
                                                                      uint64_t hash)
{
	uint64_t b = home_bucket(hash, h->g.nbuckets);
	__builtin_prefetch(bucket_at(h, b), 1);
	__builtin_prefetch(&h->overflow[b], 1);
}

/* Starts the cache misses an update of the key with this hash takes under
 * the lock: its home bucket (for writing), the bucket's overflow word and
 * its seqlock stripe.  Called before the lock is taken (the misses then
 * overlap the lock's entry) or a batch's records ahead of their turn.  A
 * prefetch never faults, so a map that a switch has since detached is
 * harmless.  always_inline: GCC deletes calls of a function that only
 * prefetches (see prefetch_home). */
static inline __attribute__((always_inline)) void prefetch_write_path(const struct generation_map *h,
                                                                      uint64_t hash)
{
	uint64_t b = home_bucket(hash, h->g.nbuckets);
	__builtin_prefetch(bucket_at(h, b), 1);
	__builtin_prefetch(&h->overflow[b], 1);
	__builtin_prefetch(stripe_of(h, b), 1);
}

static int recover_locked(struct generation_map *h, bool discard_bad_journal);
static int reader_enter(struct hashtable *t, struct generation_map **out);
static void reader_exit(struct hashtable *t, struct generation_map *m);
static void generation_recover_locked(struct hashtable *t);

/* Takes the writer lock (in the root) and returns, in *out, the current
 * generation's map, entered as a reader (writer_unlock_exit leaves it):
 * with the lock held no commit can happen, so it stays current.  A holder
 * that died (EOWNERDEAD) or a re-initialised lock first gets its build or
 * commit cleaned up (generation_recover_locked), then the journal of the
 * current generation redone.  A journal that cannot be redone (impossible
 * fields) is discarded when `repair` is set, and otherwise refused:
 * HASHTABLE_ECORRUPT, nothing written.  A damaged lock (see
 * mutex_lock_bounded) is re-initialised when `repair` is set and no live
 * thread holds it.  Returns 1 if it recovered or repaired, 0 if not, or a
 * negative code with the lock released. */
static int writer_lock_entered(struct hashtable *t, struct generation_map *h, bool repair,
                               struct generation_map **out);

static int writer_lock_mode(struct hashtable *t, bool repair, const void *prefetch_key,
                            struct generation_map **out)
{
	struct generation_map *h = NULL;
	int rc = reader_enter(t, &h); /* any map: all share the root's lock */
	if (rc)
		return rc;
	if (prefetch_key) /* its lines come in while the lock is taken */
		prefetch_write_path(h, key_hash(h, prefetch_key));
	return writer_lock_entered(t, h, repair, out);
}

/* writer_lock_mode's work once the caller has entered map h (which it
 * leaves on failure): update_in enters the map itself, to hash the key
 * once for the prefetch and the write. */
static int writer_lock_entered(struct hashtable *t, struct generation_map *h, bool repair,
                               struct generation_map **out)
{
	bool damaged;
	int rc = mutex_lock_bounded(h, &damaged);
	bool reinitialised = false;
	if (rc < 0 && damaged && repair) {
		int again = lock_reinit(h);
		if (again) {
			reader_exit(t, h);
			return again;
		}
		reinitialised = true;
		rc = mutex_lock_bounded(h, &damaged);
	}
	if (rc < 0) {
		reader_exit(t, h);
		return rc;
	}
	record_holder(h);
	bool owner_died = rc == EOWNERDEAD;
	if (owner_died || reinitialised)
		generation_recover_locked(t);
	/* acquire: pairs with the committer's store of current */
	if (atomic_load_explicit(&t->root->current, memory_order_acquire) != h->word) {
		reader_exit(t, h); /* a commit since we entered: follow it */
		if ((rc = reader_enter(t, &h))) {
			if (owner_died)
				pthread_mutex_consistent(&t->root->lock.mutex);
			atomic_store_explicit(&t->root->holder_pid, 0, memory_order_release);
			pthread_mutex_unlock(&t->root->lock.mutex);
			return rc;
		}
	}
	*out = h;
	/* acquire: pairs with journal_begin's release of op.  A re-initialised
	 * lock says nothing of its last holder: recover as from a dead one. */
	if (!owner_died && !reinitialised &&
	    atomic_load_explicit(&h->hdr->journal.op, memory_order_acquire) == J_IDLE)
		return 0;
	rc = recover_locked(h, repair);
	if (owner_died)
		pthread_mutex_consistent(&h->root->lock.mutex);
	if (rc < 0) {
		writer_unlock(h);
		reader_exit(t, h);
		return rc;
	}
	return 1;
}

static int writer_lock(struct hashtable *t, struct generation_map **out)
{
	return writer_lock_mode(t, false, NULL, out);
}

/* Releases the writer lock and leaves the map writer_lock_mode entered. */
static void writer_unlock_exit(struct hashtable *t, struct generation_map *h)
{
	writer_unlock(h);
	reader_exit(t, h);
}

/* ---- writer operations ---------------------------------------------------- */

/* Writes a slot under its bucket's seqlock: the key (if given) and the
 * value (if given).  The value goes first so that a new key is never
 * visible with an old value, even to the writer's own recovery. */
static void slot_write_locked(struct generation_map *h, uint64_t slot, const void *key, const void *value)
{
	uint64_t b = slot / h->g.slots_per_bucket;
	_Atomic uint32_t *stripe = stripe_of(h, b);
	unsigned char *p = slot_at(h, slot);
	if (!(atomic_load_explicit(stripe, memory_order_relaxed) & 1))
		write_seqbegin(stripe); /* odd already: redoing a dead writer's write */
	if (h->k8v8) { /* one aligned word each: no byte loop */
		uint64_t w;
		if (value) {
			memcpy(&w, value, 8);
			atomic_store_explicit((_Atomic uint64_t *)(void *)(p + 8), w, memory_order_relaxed);
		}
		if (key) {
			memcpy(&w, key, 8);
			atomic_store_explicit((_Atomic uint64_t *)(void *)p, w, memory_order_relaxed);
		}
	} else {
		if (value)
			shared_store(value_of(h, p), value, h->g.value_size);
		if (key)
			shared_store(p, key, h->g.key_size);
	}
	write_seqend(stripe);
}

/* Where a key is, or where it would go.  Writer only (the lock is held, so
 * plain comparisons of slot bytes are race-free: only this thread writes). */
struct location {
	bool found;
	bool free_found; /* not found: a free slot lies on its path */
	uint64_t slot;   /* the key's slot, or the first free slot on its path;
	                    neither found nor free_found: unset */
	uint64_t probe;  /* buckets on the path before the slot's own */
	uint64_t home, step;
	uint64_t first;     /* J_MOVE: path index of the destination, else 0 */
	uint16_t bit;       /* the key's filter bit */
	uint64_t from_slot; /* J_MOVE: the key's current slot */
};

/* Whether the slot at p holds a sentinel (is free).  4-byte keys are one
 * load, and keys of whole aligned words are compared with both sentinels in
 * one pass: an insert asks this of every slot of a bucket, and two
 * shared_equal calls (a staging buffer and memcmp for 4-byte keys) were
 * 200-560 of an insert's 1,000-1,700 instructions in those shapes. */
static inline bool slot_is_free(const struct generation_map *h, const unsigned char *p)
{
	const uint32_t n = h->g.key_size;
	if (h->key_class == KEY_U64) {
		uint64_t k = load_u64(p);
		return k == h->empty_u64 || k == h->deleted_u64;
	}
	if (h->key_class == KEY_U32) {
		uint32_t k = load_u32(p), empty, deleted;
		memcpy(&empty, h->empty, 4);
		memcpy(&deleted, h->deleted, 4);
		return k == empty || k == deleted;
	}
	if (n % 8 == 0 && ((uintptr_t)p & 7) == 0) {
		uint64_t from_empty = 0, from_deleted = 0;
		for (uint32_t i = 0; i < n; i += 8) {
			uint64_t w = load_u64(p + i), e, d;
			memcpy(&e, h->empty + i, 8);
			memcpy(&d, h->deleted + i, 8);
			from_empty |= w ^ e;
			from_deleted |= w ^ d;
		}
		return from_empty == 0 || from_deleted == 0;
	}
	return shared_equal(p, h->empty, n) || shared_equal(p, h->deleted, n);
}

/* The free slots of a k8v8 bucket (four 16-byte slots) as a 4-bit mask:
 * four compares, no per-slot branches (occupancy is random, so those
 * mispredict); the sweep asks this of every bucket on a displaced key's
 * path. */
static inline unsigned k8v8_free_mask(const struct generation_map *h, const unsigned char *bucket)
{
	const uint64_t empty = h->empty_u64, deleted = h->deleted_u64;
	uint64_t s0 = load_u64(bucket), s1 = load_u64(bucket + 16);
	uint64_t s2 = load_u64(bucket + 32), s3 = load_u64(bucket + 48);
	return (unsigned)((s0 == empty) | (s0 == deleted)) |
	       (unsigned)((s1 == empty) | (s1 == deleted)) << 1 |
	       (unsigned)((s2 == empty) | (s2 == deleted)) << 2 |
	       (unsigned)((s3 == empty) | (s3 == deleted)) << 3;
}

/* Index of the bucket's first free slot, or -1. */
static inline int bucket_free_slot_locked(const struct generation_map *h, const unsigned char *bucket)
{
	const uint32_t spb = h->g.slots_per_bucket, ss = h->g.slot_size;
	if (h->k8v8) {
		unsigned free_mask = k8v8_free_mask(h, bucket);
		return free_mask ? __builtin_ctz(free_mask) : -1;
	}
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

/* locate_locked for 8-byte keys in 16-byte slots (k8v8): the four keys of
 * a bucket compared into masks, no calls, no per-slot branches (occupancy
 * is random, so those mispredict).  Same results as the general walk. */
static void locate_k8v8_locked(const struct generation_map *h, uint64_t k, uint64_t hash,
                               struct location *loc)
{
	const uint64_t n = h->g.nbuckets, empty = h->empty_u64, deleted = h->deleted_u64;
	bool have_free = false, searching = true;
	uint64_t b = loc->home;
	for (uint64_t probe = 0; probe < n && (searching || !have_free); probe++) {
		const unsigned char *bucket = bucket_at(h, b);
		uint64_t s0 = load_u64(bucket), s1 = load_u64(bucket + 16);
		uint64_t s2 = load_u64(bucket + 32), s3 = load_u64(bucket + 48);
		unsigned match = (unsigned)(s0 == k) | (unsigned)(s1 == k) << 1 | (unsigned)(s2 == k) << 2 |
		        (unsigned)(s3 == k) << 3;
		unsigned free_mask = (unsigned)((s0 == empty) | (s0 == deleted)) |
		                     (unsigned)((s1 == empty) | (s1 == deleted)) << 1 |
		                     (unsigned)((s2 == empty) | (s2 == deleted)) << 2 |
		                     (unsigned)((s3 == empty) | (s3 == deleted)) << 3;
		if (searching) {
			if (match) {
				loc->found = true;
				loc->slot = b * 4 + (unsigned)__builtin_ctz(match);
				loc->probe = probe;
				return;
			}
			if (!passes(atomic_load_explicit(&h->overflow[b], memory_order_relaxed), hash))
				searching = false;
		}
		if (!have_free && free_mask) {
			have_free = loc->free_found = true;
			loc->slot = b * 4 + (unsigned)__builtin_ctz(free_mask);
			loc->probe = probe;
		}
		b = next_bucket(b, loc->step, n);
	}
}

/* locate_locked's look at one bucket, for keys of whole words in 8-aligned
 * slots (16 and 24-byte keys): the slots holding the key and the free slots
 * as masks, each slot's words read once against the key and both sentinels
 * (bucket_find then bucket_free_slot_locked read them three times, through
 * calls).  Writer only. */
static inline void bucket_scan_words_locked(const struct generation_map *h,
                                            const unsigned char *bucket, const unsigned char *key,
                                            uint64_t *match, uint64_t *free_mask)
{
	const uint32_t spb = h->g.slots_per_bucket, ss = h->g.slot_size, n = h->g.key_size;
	uint64_t m = 0, f = 0;
	for (uint32_t i = 0; i < spb; i++) {
		const unsigned char *p = bucket + (size_t)i * ss;
		uint64_t from_key = 0, from_empty = 0, from_deleted = 0;
		for (uint32_t w = 0; w < n; w += 8) {
			uint64_t x = load_u64(p + w), k, e, d;
			memcpy(&k, key + w, 8);
			memcpy(&e, h->empty + w, 8);
			memcpy(&d, h->deleted + w, 8);
			from_key |= x ^ k;
			from_empty |= x ^ e;
			from_deleted |= x ^ d;
		}
		m |= (uint64_t)(from_key == 0) << i;
		f |= (uint64_t)(from_empty == 0 || from_deleted == 0) << i;
	}
	*match = m;
	*free_mask = f;
}

/* Finds the key, or the first free slot on its path, walking at most
 * nbuckets buckets (a path visits each once).  Writer only. */
static void locate_locked(const struct generation_map *h, const void *key, uint64_t hash,
                          struct location *loc)
{
	const uint64_t n = h->g.nbuckets;
	const uint32_t spb = h->g.slots_per_bucket;
	bool have_free = false, searching = true;
	uint64_t b = home_bucket(hash, n);
	if (h->k8v8) {
		uint64_t k;
		memcpy(&k, key, 8);
		loc->found = loc->free_found = false;
		loc->bit = filter_bit(hash);
		loc->first = loc->from_slot = 0;
		loc->home = b;
		loc->step = probe_step(hash, n);
		locate_k8v8_locked(h, k, hash, loc);
		return;
	}
	loc->found = false;
	loc->free_found = false;
	loc->bit = filter_bit(hash);
	loc->first = 0;
	loc->from_slot = 0;
	loc->home = b;
	loc->step = probe_step(hash, n);
	const bool words = h->key_class == KEY_GENERIC && h->g.key_size % 8 == 0 &&
	                   h->g.slot_size % 8 == 0;
	for (uint64_t probe = 0; words && probe < n && (searching || !have_free); probe++) {
		uint64_t match, free_mask;
		bucket_scan_words_locked(h, bucket_at(h, b), key, &match, &free_mask);
		if (searching) {
			if (match) {
				loc->found = true;
				loc->slot = b * spb + (unsigned)__builtin_ctzll(match);
				loc->probe = probe;
				return;
			}
			if (!passes(atomic_load_explicit(&h->overflow[b], memory_order_relaxed), hash))
				searching = false;
		}
		if (!have_free && free_mask) {
			have_free = loc->free_found = true;
			loc->slot = b * spb + (unsigned)__builtin_ctzll(free_mask);
			loc->probe = probe;
		}
		b = next_bucket(b, loc->step, n);
	}
	if (words)
		return;
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
			int i = bucket_free_slot_locked(h, bucket);
			if (i >= 0) {
				have_free = loc->free_found = true;
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
static void path_counts_apply(struct generation_map *h, bool raise)
{
	struct journal *j = &h->hdr->journal;
	const uint64_t n = h->g.nbuckets;
	uint64_t from = j->first;
	uint64_t p = atomic_load_explicit(&j->progress, memory_order_relaxed);
	if (!p && from >= j->probe)
		return; /* a path with no word to change: the key's own bucket */
	if (p) {
		uint64_t done = (p >> 16) - 1;
		uint64_t b = path_bucket(j->home, j->step, done, n);
		atomic_store_explicit(&h->overflow[b], overflow_changed((uint16_t)p, raise, j->bit),
		                      memory_order_release);
		from = done + 1;
	}
	uint64_t b = path_bucket(j->home, j->step, from, n);
	for (uint64_t i = from; i < j->probe; i++) {
		uint16_t old = atomic_load_explicit(&h->overflow[b], memory_order_relaxed);
		atomic_store_explicit(&j->progress, ((i + 1) << 16) | old, memory_order_relaxed);
		/* release: the progress record is stored before the word changes */
		atomic_store_explicit(&h->overflow[b], overflow_changed(old, raise, j->bit),
		                      memory_order_release);
		b = next_bucket(b, j->step, n);
	}
}

static unsigned char *journal_key(struct generation_map *h) { return h->base + h->g.off_jkey; }
static unsigned char *journal_value(struct generation_map *h) { return h->base + h->g.off_jvalue; }

static void bump(_Atomic uint64_t *counter)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
}

static void journal_begin(struct generation_map *h, enum journal_op op, const struct location *loc,
                          const void *key, const void *value)
{
	struct journal *j = &h->hdr->journal;
	struct shm_header *hd = h->hdr;
	uint64_t count = atomic_load_explicit(&hd->count, memory_order_relaxed);
	uint64_t coll = atomic_load_explicit(&hd->collisions, memory_order_relaxed);
	uint64_t maxp = atomic_load_explicit(&hd->max_probe, memory_order_relaxed);
	if (h->k8v8) { /* fixed sizes: two moves, no calls */
		if (key)
			memcpy(journal_key(h), key, 8);
		if (value)
			memcpy(journal_value(h), value, 8);
	} else {
		if (key)
			memcpy(journal_key(h), key, h->g.key_size);
		if (value)
			memcpy(journal_value(h), value, h->g.value_size);
	}
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

static void journal_finish(struct generation_map *h)
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
static void journal_run(struct generation_map *h)
{
	struct journal *j = &h->hdr->journal;
	switch (atomic_load_explicit(&j->op, memory_order_acquire)) {
	case J_INSERT:
		path_counts_apply(h, true);          /* Invariant C: counts first */
		slot_write_locked(h, j->slot, journal_key(h), journal_value(h));
		break;
	case J_OVERWRITE:
		slot_write_locked(h, j->slot, NULL, journal_value(h));
		break;
	case J_DELETE:
		slot_write_locked(h, j->slot, h->empty, NULL); /* Invariant C: slot first */
		path_counts_apply(h, false);
		break;
	case J_MOVE:
		if (!(atomic_load_explicit(&h->hdr->moves, memory_order_relaxed) & 1))
			write_seqbegin(&h->hdr->moves); /* odd already: a redo */
		slot_write_locked(h, j->slot, journal_key(h), journal_value(h)); /* copy first, */
		slot_write_locked(h, j->from_slot, h->empty, NULL);             /* then leave */
		path_counts_apply(h, false);
		/* counted inside the odd stretch: relocations_read sees a move
		 * either not begun or finished, never half done */
		bump(&h->hdr->relocations);
		write_seqend(&h->hdr->moves);
		break;
	default:
		return;
	}
	journal_finish(h);
}

/* Makes every version even.  Only the lock holder may, and only with no
 * change in flight (the journal idle): a version odd then belongs to no
 * write and would otherwise stall readers for ever.  Returns how many
 * were odd. */
static uint64_t versions_repair_locked(struct generation_map *h)
{
	uint64_t repaired = 0;
	for (uint64_t s = 0; s < h->g.nstripes; s++)
		if (atomic_load_explicit(&h->stripes[s], memory_order_relaxed) & 1) {
			write_seqend(&h->stripes[s]);
			repaired++;
		}
	if (atomic_load_explicit(&h->hdr->moves, memory_order_relaxed) & 1) {
		write_seqend(&h->hdr->moves);
		repaired++;
	}
	return repaired;
}

static int journal_bad(const char *field, uint64_t value, const char *why, uint64_t bound)
{
	char reason[160];
	snprintf(reason, sizeof reason, why, (unsigned long long)bound);
	return fail(HASHTABLE_ECORRUPT,
	            "the journal's %s is %llu, %s: the journal is damaged and cannot be redone; "
	            "writes are refused until `shmkv verify --repair` discards it",
	            field, (unsigned long long)value, reason);
}

/* Checks a busy journal against the geometry before a redo writes one
 * byte: every index it holds in range, its path the journalled key's, its
 * slots on that path where the operation puts them, its progress within
 * the path's changed part.  Returns 0 or HASHTABLE_ECORRUPT naming the
 * first bad field and its value. */
static int journal_check(struct generation_map *h)
{
	const struct journal *j = &h->hdr->journal;
	const uint64_t n = h->g.nbuckets, spb = h->g.slots_per_bucket, nslots = n * spb;
	uint32_t op = atomic_load_explicit(&j->op, memory_order_acquire);
	uint64_t p = atomic_load_explicit(&j->progress, memory_order_relaxed);
	if (op == J_IDLE)
		return 0;
	if (op > J_MOVE)
		return journal_bad("op", op, "not an operation (1..%llu)", J_MOVE);
	if (j->slot >= nslots)
		return journal_bad("slot", j->slot, "past the table's %llu slots", nslots);
	if (op == J_MOVE && j->from_slot >= nslots)
		return journal_bad("from_slot", j->from_slot, "past the table's %llu slots", nslots);
	if (j->home >= n)
		return journal_bad("home", j->home, "not below the table's %llu buckets", n);
	if (n > 1 ? j->step < 1 || j->step > n - 1 : j->step != 0)
		return journal_bad("step", j->step, "outside [1, %llu]", n - 1);
	if (j->probe >= n)
		return journal_bad("probe", j->probe, "not below the %llu buckets a path visits", n);
	if (j->first > j->probe || (op != J_MOVE && j->first != 0))
		return journal_bad("first", j->first, "past the journal's probe %llu, or not 0 for "
		                                      "this operation", j->probe);
	if (p && ((p >> 16) == 0 || (p >> 16) - 1 < j->first || (p >> 16) - 1 >= j->probe))
		return journal_bad("progress", p, "a path index outside [first, probe) = [.., %llu)",
		                   j->probe);
	if (j->bit < 0x100 || (j->bit & (j->bit - 1)))
		return journal_bad("bit", j->bit, "not one of the filter's 8 bits (%llu..32768)", 256);
	if (j->count_after > h->max_count)
		return journal_bad("count_after", j->count_after, "above the load limit's %llu keys",
		                   h->max_count);
	if (j->max_probe_after >= n)
		return journal_bad("max_probe_after", j->max_probe_after, "not below the %llu "
		                   "buckets a path visits", n);
	uint64_t at = op == J_MOVE ? j->first : j->probe;
	if (j->slot / spb != path_bucket(j->home, j->step, at, n))
		return journal_bad("slot", j->slot, "not in the bucket at path index %llu", at);
	if (op == J_MOVE && j->from_slot / spb != path_bucket(j->home, j->step, j->probe, n))
		return journal_bad("from_slot", j->from_slot, "not in the bucket at path index %llu",
		                   j->probe);
	if (op == J_INSERT || op == J_MOVE) { /* the journalled key's own path */
		uint64_t hash = key_hash(h, journal_key(h));
		if (is_sentinel(h, journal_key(h)))
			return journal_bad("key", 0, "a sentinel (%llu)", 0);
		if (j->home != home_bucket(hash, n))
			return journal_bad("home", j->home, "not the journalled key's home %llu",
			                   home_bucket(hash, n));
		if (j->step != probe_step(hash, n))
			return journal_bad("step", j->step, "not the journalled key's step %llu",
			                   probe_step(hash, n));
		if (j->bit != filter_bit(hash))
			return journal_bad("bit", j->bit, "not the journalled key's filter bit %llu",
			                   filter_bit(hash));
	}
	return 0;
}

/* Completes or discards the change the journal records, then makes any
 * version left odd even.  Lock held.  A journal that fails journal_check
 * is discarded (its op set idle, nothing redone) if discard_bad_journal,
 * else left as it is: HASHTABLE_ECORRUPT, nothing written. */
static int recover_locked(struct generation_map *h, bool discard_bad_journal)
{
	int rc = journal_check(h);
	if (rc && !discard_bad_journal)
		return rc;
	if (rc)
		atomic_store_explicit(&h->hdr->journal.op, J_IDLE, memory_order_release);
	else
		journal_run(h);
	versions_repair_locked(h);
	atomic_fetch_add_explicit(&h->root->recoveries, 1, memory_order_relaxed);
	return 0;
}

/* An insert found no free slot on its path, which visits every bucket:
 * the table is full, or its slots hold keys its count does not know. */
static int no_free_slot(struct generation_map *h)
{
	uint64_t count = atomic_load_explicit(&h->hdr->count, memory_order_relaxed);
	uint64_t slots = h->g.nbuckets * h->g.slots_per_bucket;
	if (count >= slots)
		return fail(-ENOMEM, "every one of the table's %llu slots holds a key",
		            (unsigned long long)slots);
	return fail(HASHTABLE_ECORRUPT, "no free slot on the new key's path, which visits every "
	                                "bucket, yet the header counts %llu keys in %llu slots: the "
	                                "table is damaged (nothing was written; `shmkv verify` names "
	                                "the first problem)",
	            (unsigned long long)count, (unsigned long long)slots);
}

#define AT_LOAD_LIMIT 2 /* upsert_locked: a new key, and the table is at its load limit */

/* Inserts or overwrites under the writer lock (hash: key_hash(h, key)): 0
 * inserted, 1 overwrote, AT_LOAD_LIMIT (nothing written; the caller grows
 * or fails), or a negative code. */
static int upsert_hashed_locked(struct generation_map *h, const void *key, uint64_t hash,
                                const void *value)
{
	struct location loc;
	locate_locked(h, key, hash, &loc);
	if (loc.found) {
		journal_begin(h, J_OVERWRITE, &loc, NULL, value);
		journal_run(h);
		bump(&h->hdr->updates);
		return 1;
	}
	if (atomic_load_explicit(&h->hdr->count, memory_order_relaxed) >= h->max_count)
		return AT_LOAD_LIMIT;
	if (!loc.free_found)
		return no_free_slot(h);
	journal_begin(h, J_INSERT, &loc, key, value);
	journal_run(h);
	bump(&h->hdr->inserts);
	return 0;
}

/* upsert_hashed_locked with the key's hash computed here. */
static int upsert_locked(struct generation_map *h, const void *key, const void *value)
{
	return upsert_hashed_locked(h, key, key_hash(h, key), value);
}

static int load_limit_reached(const struct generation_map *h)
{
	return fail(-ENOMEM, "the table is at its load limit (%llu keys); "
	                     "overwrites still succeed, new keys need a larger table "
	                     "(`shmkv grow`, hashtable_grow, or HASHTABLE_AUTOGROW)",
	            (unsigned long long)h->max_count);
}

/* Buckets a sweep prefetches for together: the paths of their displaced
 * keys are fetched at once, so those misses overlap (16 against 4: deletes
 * 10-27% faster at loads 0.8-0.95, write_bench at 16M keys, one run). */
#define SWEEP_GROUP 16u
/* Path buckets prefetched per displaced key, at most (further ones are
 * rare and read as the walk meets them). */
#define SWEEP_PREFETCH_DEPTH 8u

/* Moves the key in slot `slot` of bucket c, whose hash is `hash`, back to
 * the first free slot on its path, if one lies before c.  Returns true if
 * it moved. */
static bool reclaim_key(struct generation_map *h, uint64_t c, uint64_t slot, uint64_t hash)
{
	unsigned char *p = slot_at(h, slot);
	const uint64_t n = h->g.nbuckets, spb = h->g.slots_per_bucket;
	struct location loc = {.home = home_bucket(hash, n), .step = probe_step(hash, n),
	                       .from_slot = slot, .bit = filter_bit(hash)};
	uint64_t b = loc.home, d;
	int free_at = -1;
	for (d = 0; b != c && d < n; d++, b = next_bucket(b, loc.step, n))
		if ((free_at = bucket_free_slot_locked(h, bucket_at(h, b))) >= 0)
			break;
	if (free_at < 0)
		return false; /* no free slot before c (or c is not on its path) */
	loc.slot = b * spb + (uint64_t)free_at;
	loc.first = d;
	for (; b != c && d < n; d++) /* the path index of c */
		b = next_bucket(b, loc.step, n);
	if (b != c)
		return false;
	loc.probe = d;
	memcpy(journal_key(h), p, h->g.key_size); /* writer: no concurrent store */
	memcpy(journal_value(h), value_of(h, p), h->g.value_size);
	journal_begin(h, J_MOVE, &loc, NULL, NULL); /* key and value already staged */
	journal_run(h); /* counts the move in stats.relocations */
	return true;
}

/* Starts the misses of the path buckets, from its home up to c (at most
 * SWEEP_PREFETCH_DEPTH), of a key in bucket c whose hash is `hash`. */
static inline __attribute__((always_inline)) void reclaim_prefetch_path(const struct generation_map *h,
                                                                        uint64_t c, uint64_t hash)
{
	const uint64_t n = h->g.nbuckets;
	uint64_t b = home_bucket(hash, n), step = probe_step(hash, n);
	for (unsigned d = 0; b != c && d < SWEEP_PREFETCH_DEPTH; d++, b = next_bucket(b, step, n))
		__builtin_prefetch(bucket_at(h, b));
}

/* Starts the misses of the path buckets a reclaim_key of the key in slot
 * `slot` of bucket c will read: from its home up to c.  Returns false if
 * the key is at home (nothing to reclaim) or the slot is free; else true,
 * with the key's hash in *hash. */
static bool reclaim_prefetch(const struct generation_map *h, uint64_t c, uint64_t slot,
                             uint64_t *hash)
{
	const unsigned char *p = slot_at(h, slot);
	if (slot_is_free(h, p))
		return false;
	*hash = key_hash(h, p); /* writer: the slot's bytes are stable */
	if (home_bucket(*hash, h->g.nbuckets) == c)
		return false;
	reclaim_prefetch_path(h, c, *hash);
	return true;
}

/* reclaim_prefetch for the four slots of k8v8 bucket c at once: straight-
 * line loads, hashes and compares (the sweep asks this of every slot it
 * passes, most of them at home).  Returns the mask of displaced slots, with
 * their hashes in hash[]. */
static unsigned reclaim_prefetch_k8v8(const struct generation_map *h, uint64_t c, uint64_t hash[4])
{
	const unsigned char *bucket = bucket_at(h, c);
	const uint64_t n = h->g.nbuckets;
	unsigned displaced = 0;
	for (unsigned i = 0; i < 4; i++) {
		uint64_t k = load_u64(bucket + 16 * i); /* writer: the slot's bytes are stable */
		hash[i] = hash_u64(k, h->seed);
		bool live = k != h->empty_u64 && k != h->deleted_u64;
		displaced |= (unsigned)(live && home_bucket(hash[i], n) != c) << i;
	}
	for (unsigned m = displaced; m; m &= m - 1)
		reclaim_prefetch_path(h, c, hash[__builtin_ctz(m)]);
	return displaced;
}

/* Reclaims as it goes.  With no tombstones a delete needs no clean-up, but
 * keys that overflowed stay displaced after their home bucket frees up: under
 * steady churn every insert lands at the load limit, and hits drift from the
 * cost of a fresh fill towards the cost of a miss.  So a delete that freed a
 * slot some key passes also sweeps a few buckets, moving their displaced
 * keys back to free slots earlier on their paths.  The buckets are read in order (from a cursor);
 * the paths of their displaced keys are random lines, prefetched a group of
 * buckets at a time so that their misses overlap (read one after the other
 * they cost 2-7 us a delete above load 0.9).  A move copies the key forward
 * before it leaves its slot, and makes `moves` odd for its duration: a
 * reader that missed while a move ran retries, so a key present throughout
 * a search is never missed. */
static void reclaim_step(struct generation_map *h)
{
	const uint64_t n = h->g.nbuckets, spb = h->g.slots_per_bucket;
	uint64_t slots = n * spb;
	unsigned sweep = h->max_count * 100 > slots * SWEEP_FULLER_PERCENT ? SWEEP_BUCKETS_FULLER
	               : h->max_count * 100 > slots * SWEEP_FULL_PERCENT   ? SWEEP_BUCKETS_FULL
	                                                                   : SWEEP_BUCKETS;
	uint64_t group[SWEEP_GROUP];
	for (unsigned done = 0; done < sweep; done += SWEEP_GROUP) {
		/* at most n buckets a group: a bucket in a group twice (tables
		 * of fewer than SWEEP_GROUP buckets) would have its keys moved by
		 * its first turn and its stale hashes[] used by its second */
		unsigned ng = 0;
		for (; ng < SWEEP_GROUP && ng < n && done + ng < sweep; ng++) {
			uint64_t c = h->hdr->sweep_cursor;
			if (c >= n)
				c = 0;
			h->hdr->sweep_cursor = c + 1 == n ? 0 : c + 1;
			group[ng] = c;
		}
		uint64_t displaced[SWEEP_GROUP] = {0}; /* bit i: slot i of the bucket */
		uint64_t hashes[SWEEP_GROUP][64];       /* slots_per_bucket <= 64 */
		for (unsigned g = 0; g < ng; g++)
			if (h->k8v8)
				displaced[g] = reclaim_prefetch_k8v8(h, group[g], hashes[g]);
			else
				for (uint64_t i = 0; i < spb; i++)
					if (reclaim_prefetch(h, group[g], group[g] * spb + i, &hashes[g][i]))
						displaced[g] |= UINT64_C(1) << i;
		for (unsigned g = 0; g < ng; g++)
			for (uint64_t m = displaced[g]; m; m &= m - 1) {
				uint64_t i = (uint64_t)__builtin_ctzll(m);
				reclaim_key(h, group[g], group[g] * spb + i, hashes[g][i]);
			}
	}
	/* The next delete's sweep reads the buckets after these: fetched now,
	 * they arrive while this delete returns and the caller works. */
	uint64_t c = h->hdr->sweep_cursor;
	for (unsigned k = 0; k < sweep; k++, c = c + 1 == n ? 0 : c + 1)
		__builtin_prefetch(bucket_at(h, c < n ? c : 0));
}

static int delete_locked(struct generation_map *h, const void *key)
{
	uint64_t hash = key_hash(h, key);
	struct location loc;
	locate_locked(h, key, hash, &loc);
	if (!loc.found)
		return -1;
	journal_begin(h, J_DELETE, &loc, NULL, NULL);
	journal_run(h);
	bump(&h->hdr->deletes);
	/* A sweep only pays where a displaced key can move back, and the slot
	 * just freed can take one only if some live key passes its bucket
	 * (Invariant C: a zero count means none does).  Where none does, as in
	 * most buckets at low loads, the delete skips it (SWEEP_BUCKETS). */
	uint64_t b = loc.slot / h->g.slots_per_bucket;
	if (atomic_load_explicit(&h->overflow[b], memory_order_relaxed) & OVERFLOW_COUNT)
		reclaim_step(h);
	return 0;
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
 * segment we may not read).  Every reader of that file goes through
 * segment_row_next. */
struct segment_row {
	key_t key;
	int shmid, cpid;
	unsigned mode;   /* permission bits */
	unsigned flags;  /* the rest of the perms column: SHM_DEST, SHM_LOCKED */
	unsigned uid, gid;
	uint64_t bytes;
};

/* The next row of f (fopen'd /proc/sysvipc/shm) in *r; false at the end.
 * The title line does not parse and is passed over. */
static bool segment_row_next(FILE *f, struct segment_row *r)
{
	char line[512];
	while (fgets(line, sizeof line, f)) {
		int k, id, cpid;
		unsigned perms, uid, gid;
		unsigned long long size;
		/* key shmid perms size cpid lpid nattch uid gid ... */
		if (sscanf(line, "%d %d %o %llu %d %*d %*u %u %u", &k, &id, &perms, &size, &cpid,
		           &uid, &gid) != 7)
			continue;
		*r = (struct segment_row){
			.key = (key_t)k, .shmid = id, .cpid = cpid, .mode = perms & 0777,
			.flags = perms & ~0777u, .uid = uid, .gid = gid, .bytes = size,
		};
		return true;
	}
	return false;
}

static bool segment_row_of(key_t key, struct segment_row *r)
{
	FILE *f = fopen("/proc/sysvipc/shm", "re");
	bool found = false;
	if (!f)
		return false;
	while (!found && segment_row_next(f, r))
		found = r->key == key;
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
	struct segment_row r;
	*segments = *pages = 0;
	if (!f)
		return;
	while (segment_row_next(f, &r)) {
		*pages += (r.bytes + page - 1) / page;
		(*segments)++;
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
static void fill_sentinel(unsigned char *dst, const void *given, uint32_t n, int fill)
{
	if (given)
		memcpy(dst, given, n);
	else
		memset(dst, fill, n);
}

static int header_field_bad(const struct generation_map *h, const char *field, uint64_t stored,
                            uint64_t expected)
{
	const struct shm_header *hd = h->hdr;
	return fail(-EPROTO, "segment %d has a damaged shmkv header: its %s is %llu, but %u-byte "
	                     "keys and %u-byte values in %llu bytes (slot_layout %u: %s) give "
	                     "%llu; remove it with: ipcrm -m %d",
	            h->shmid, field, (unsigned long long)stored, hd->key_size, hd->value_size,
	            (unsigned long long)hd->segment_bytes, hd->slot_layout,
	            hd->slot_layout == SLOTS_SPLIT ? "split" : "interleaved",
	            (unsigned long long)expected, h->shmid);
}

/* The writer lock must be this C library's mutex. */
static int check_lock_abi(const struct generation_map *h)
{
	const struct shm_header *hd = h->hdr;
	if (hd->libc == THIS_LIBC && hd->mutex_bytes == sizeof(pthread_mutex_t))
		return 0;
	return fail(-EPROTO, "segment %d was created by a program built with %s (header fields "
	                     "libc %u, mutex_bytes %u: pthread_mutex_t of %u bytes); this one is "
	                     "built with %s (%zu bytes): their writer locks are not compatible; use "
	                     "programs built against the creator's C library",
	            h->shmid, libc_name(hd->libc), hd->libc, hd->mutex_bytes, hd->mutex_bytes,
	            libc_name(THIS_LIBC), sizeof(pthread_mutex_t));
}

/* Every field derived from the widths and the size, recomputed: the first
 * one that differs is named. */
static int check_geometry(const struct generation_map *h, const struct geometry *g)
{
	const struct shm_header *hd = h->hdr;
	const struct {
		const char *name;
		uint64_t stored, expected;
	} f[] = {
		{"slot_size", hd->slot_size, g->slot_size},
		{"value_offset", hd->value_offset, g->value_offset},
		{"slots_per_bucket", hd->slots_per_bucket, g->slots_per_bucket},
		{"bucket_bytes", hd->bucket_bytes, g->bucket_bytes},
		{"nbuckets", hd->nbuckets, g->nbuckets},
		{"nstripes", hd->nstripes, g->nstripes},
		{"off_empty", hd->off_empty, g->off_empty},
		{"off_deleted", hd->off_deleted, g->off_deleted},
		{"off_jkey", hd->off_jkey, g->off_jkey},
		{"off_jvalue", hd->off_jvalue, g->off_jvalue},
		{"off_stripes", hd->off_stripes, g->off_stripes},
		{"off_overflow", hd->off_overflow, g->off_overflow},
		{"off_buckets", hd->off_buckets, g->off_buckets},
	};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (f[i].stored != f[i].expected)
			return header_field_bad(h, f[i].name, f[i].stored, f[i].expected);
	double load = hd->max_load;
	if (!(load > 0 && load <= 1))
		return fail(-EPROTO, "segment %d has a damaged shmkv header: its max_load is %g, not a "
		                     "load limit in (0, 1]; remove it with: ipcrm -m %d",
		            h->shmid, load, h->shmid);
	uint64_t max_count = max_count_for(g->nbuckets * g->slots_per_bucket, load);
	if (hd->max_count != max_count)
		return fail(-EPROTO, "segment %d has a damaged shmkv header: its max_count is %llu, but "
		                     "its max_load %g of %llu slots gives %llu; remove it with: "
		                     "ipcrm -m %d",
		            h->shmid, (unsigned long long)hd->max_count, load,
		            (unsigned long long)(g->nbuckets * g->slots_per_bucket),
		            (unsigned long long)max_count, h->shmid);
	if (hd->flags & ~SEG_HUGETLB)
		return header_field_bad(h, "flags", hd->flags, hd->flags & SEG_HUGETLB);
	return 0;
}

/* Checks a header against the segment before anything else reads it. */
static int validate_header(struct generation_map *h, size_t segsz)
{
	const struct shm_header *hd = h->hdr;
	if (segsz < sizeof *hd)
		return fail(-EPROTO, "segment %d is %zu bytes, too small to be a shmkv table; "
		                     "remove it with: ipcrm -m %d if it is stale", h->shmid, segsz, h->shmid);
	if (hd->magic != SHMKV_DATA_MAGIC)
		return fail(-EPROTO, "segment %d is not a shmkv data segment (no shmkv magic); "
		                     "it was left untouched", h->shmid);
	if (hd->format != SHMKV_FORMAT)
		return fail(-EPROTO, "segment %d holds shmkv format %u; this library reads format %u",
		            h->shmid, hd->format, SHMKV_FORMAT);
	int rc = check_lock_abi(h);
	if (rc)
		return rc;
	struct geometry g;
	if (hd->slot_layout != SLOTS_INTERLEAVED &&
	    !(hd->slot_layout == SLOTS_SPLIT && widths_valid(hd->key_size, hd->value_size) &&
	      split_allowed(hd->key_size, hd->value_size)))
		return fail(-EPROTO, "segment %d has a damaged shmkv header: its slot_layout is %u, "
		                     "not a layout %u-byte keys and %u-byte values may have; remove "
		                     "it with: ipcrm -m %d",
		            h->shmid, hd->slot_layout, hd->key_size, hd->value_size, h->shmid);
	if (!widths_valid(hd->key_size, hd->value_size) || hd->segment_bytes > segsz ||
	    !layout_as(hd->key_size, hd->value_size, hd->slot_layout, hd->segment_bytes, &g))
		return fail(-EPROTO, "segment %d has a shmkv header whose widths (%u, %u) or size "
		                     "(%llu bytes) do not fit its %zu bytes; it is damaged: remove it "
		                     "with: ipcrm -m %d",
		            h->shmid, hd->key_size, hd->value_size,
		            (unsigned long long)hd->segment_bytes, segsz, h->shmid);
	if ((rc = check_geometry(h, &g)))
		return rc;
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

/* Whether the process that created the segment (header's creator record)
 * still runs: same pid and the same start time (against pid reuse). */
static bool creator_alive(const struct shm_header *hd)
{
	pid_t pid = hd->creator_pid;
	if (pid <= 0)
		return false;
	if (pid == getpid())
		return hd->creator_start == process_start_time(pid); /* another thread */
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return false;
	char state;
	uint64_t start;
	if (!process_stat(pid, &state, &start))
		return true; /* exists, but /proc hides it: assume alive */
	return state != 'Z' && state != 'X' && start == hd->creator_start;
}

enum creation { CREATED, UNFINISHED, NOT_SHMKV };

/* Waits for a concurrent creator to publish the header (the magic, stored
 * last, with release).  The creator marks the segment as being created
 * (SHMKV_MAGIC_CREATING, with its pid and start time) first thing; while
 * that creator runs, however long it takes to fill a large table, this
 * waits.  A marked segment whose creator died is UNFINISHED.  An unmarked
 * one (all zero) is waited on for 2 s while its creator process (shm_cpid)
 * runs in another process: it may not have marked it yet; after that, or
 * if the creator is gone, it is NOT_SHMKV.  Any other magic: CREATED, for
 * validate_header to judge. */
static enum creation wait_for_creator(const struct shm_header *hd, size_t segsz, pid_t cpid)
{
	if (segsz < sizeof *hd)
		return CREATED; /* validate_header reports it */
	for (int unmarked_ms = 0;; unmarked_ms++) {
		uint64_t m = atomic_load_explicit((_Atomic uint64_t *)(uintptr_t)&hd->magic,
		                                  memory_order_acquire);
		if (m == SHMKV_MAGIC_CREATING) {
			if (!creator_alive(hd))
				return UNFINISHED;
		} else if (m != 0) {
			return CREATED;
		} else {
			char state;
			uint64_t start;
			if (unmarked_ms >= CREATOR_WAIT_STEPS || cpid == getpid() ||
			    (kill(cpid, 0) != 0 && errno == ESRCH))
				return NOT_SHMKV;
			if (process_stat(cpid, &state, &start) && (state == 'Z' || state == 'X'))
				return NOT_SHMKV;
		}
		struct timespec ts = {0, CREATOR_WAIT_STEP_NS};
		nanosleep(&ts, NULL);
	}
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
                      const struct hashtable_config *cfg, double fraction, bool huge,
                      uint64_t table_id, uint64_t generation)
{
	struct shm_header *hd = (struct shm_header *)base;
	hd->creator_pid = (int32_t)getpid();
	hd->creator_start = process_start_time(getpid());
	/* release: a process that sees the mark sees the creator's record */
	atomic_store_explicit((_Atomic uint64_t *)(uintptr_t)&hd->magic, SHMKV_MAGIC_CREATING,
	                      memory_order_release);
	hd->format = SHMKV_FORMAT;
	hd->flags = huge ? SEG_HUGETLB : 0;
	hd->mutex_bytes = (uint32_t)sizeof(pthread_mutex_t);
	hd->libc = THIS_LIBC;
	hd->segment_bytes = segsz;
	hd->key_size = g->key_size;
	hd->value_size = g->value_size;
	hd->slot_size = g->slot_size;
	hd->value_offset = g->value_offset;
	hd->slots_per_bucket = g->slots_per_bucket;
	hd->bucket_bytes = g->bucket_bytes;
	hd->slot_layout = g->slot_layout;
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
	hd->table_id = table_id;
	hd->generation = generation;
	fill_sentinel(base + g->off_empty, cfg->empty_key, g->key_size, 0x00);
	fill_sentinel(base + g->off_deleted, cfg->deleted_key, g->key_size, 0xff);
	bool zero_empty = true;
	for (uint32_t i = 0; i < g->key_size; i++)
		zero_empty &= base[g->off_empty + i] == 0;
	if (!zero_empty) /* the kernel zero-fills; other empty keys are written */
		for (uint64_t b = 0; b < g->nbuckets; b++)
			for (uint32_t i = 0; i < g->slots_per_bucket; i++)
				memcpy(base + g->off_buckets + b * g->bucket_bytes + i * g->slot_size,
				       base + g->off_empty, g->key_size);
	/* (the writer lock is the root's: a data segment's stays zero) */
	/* release: every header field is visible before the magic */
	atomic_store_explicit((_Atomic uint64_t *)(uintptr_t)&hd->magic, SHMKV_DATA_MAGIC,
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
		return fail(-EINVAL, "load limit %g out of range: give a fraction in (0, %g] or a "
		                     "percent in (1, %g] (above %g a full table's misses read every "
		                     "bucket and churn slows a hundredfold)",
		            cfg->max_load, MAX_LOAD, MAX_LOAD * 100, MAX_LOAD);
	unsigned char e[HASHTABLE_MAX_KEY], d[HASHTABLE_MAX_KEY];
	fill_sentinel(e, cfg->empty_key, cfg->key_size, 0x00);
	fill_sentinel(d, cfg->deleted_key, cfg->key_size, 0xff);
	if (memcmp(e, d, cfg->key_size) == 0)
		return fail(-EINVAL, "the empty and deleted sentinels must differ");
	if (cfg->mode & ~0777u)
		return fail(-EINVAL, "mode %o has bits beyond 0777", cfg->mode);
	return 0;
}



/* ---- generations: readers follow commits ------------------------------------
 * See "GENERATIONS" at the top for the protocol and why it is correct. */

/* One per thread that ever called the library: which map it is inside. */
struct reader_record {
	_Alignas(64) _Atomic(struct generation_map *) inside;
	/* this thread's last hashtable_search, for its out-of-line steps
	 * (SEARCH_SEEN): `moves` before the home bucket, the key's hash */
	uint32_t moves_seen;
	uint64_t hash_seen;
	struct reader_record *next;
	bool unused;     /* its thread exited: the next new thread takes it */
};

static pthread_mutex_t records_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reader_record *records;            /* under records_lock */
static __attribute__((tls_model("initial-exec"))) _Thread_local struct reader_record *my_record;
static pthread_key_t record_key;
static pthread_once_t records_once = PTHREAD_ONCE_INIT;

#ifndef MEMBARRIER_CMD_QUERY
#define MEMBARRIER_CMD_QUERY 0
#endif
#define CMD_GLOBAL (1 << 0)
#define CMD_PRIVATE_EXPEDITED (1 << 3)
#define CMD_REGISTER_PRIVATE_EXPEDITED (1 << 4)

/* How retired_reclaim makes every reader's announcement visible (chosen
 * once, before the first handle exists): membarrier's private expedited
 * command (Linux 4.14), else its global one (4.3; slow, an RCU grace
 * period), else none: retired maps then stay attached until the handle is
 * closed.  Builds for ThreadSanitizer, which does not know membarrier, put
 * a seq_cst fence in reader_enter instead (READER_FENCE). */
enum barrier_mode { BARRIER_NONE, BARRIER_GLOBAL, BARRIER_PRIVATE, BARRIER_READERS_FENCE };
static enum barrier_mode barrier_mode;
#ifdef SHMKV_TSAN
#define READER_FENCE() atomic_thread_fence(memory_order_seq_cst)
#else
#define READER_FENCE() atomic_signal_fence(memory_order_seq_cst)
#endif

static long membarrier(int cmd) { return syscall(SYS_membarrier, cmd, 0, 0); }

/* At thread exit: the record goes back for the next new thread (it stays
 * listed: a reclaimer may be walking the list). */
static void record_release(void *p)
{
	struct reader_record *r = p;
	atomic_store_explicit(&r->inside, NULL, memory_order_release);
	pthread_mutex_lock(&records_lock);
	r->unused = true;
	pthread_mutex_unlock(&records_lock);
	my_record = NULL;
}

/* fork(): the child's one thread is the caller; the others' records, which
 * may say they were inside a map, are theirs no more. */
static void records_prefork(void) { pthread_mutex_lock(&records_lock); }
static void records_parent(void) { pthread_mutex_unlock(&records_lock); }
static void records_child(void)
{
	for (struct reader_record *r = records; r; r = r->next)
		if (r != my_record) {
			atomic_store_explicit(&r->inside, NULL, memory_order_relaxed);
			r->unused = true;
		}
	pthread_mutex_unlock(&records_lock);
}

static void records_setup(void)
{
	pthread_key_create(&record_key, record_release);
	pthread_atfork(records_prefork, records_parent, records_child);
#ifdef SHMKV_TSAN
	barrier_mode = BARRIER_READERS_FENCE;
#else
	long cmds = membarrier(MEMBARRIER_CMD_QUERY);
	if (cmds > 0 && (cmds & CMD_PRIVATE_EXPEDITED) &&
	    membarrier(CMD_REGISTER_PRIVATE_EXPEDITED) == 0)
		barrier_mode = BARRIER_PRIVATE;
	else if (cmds > 0 && (cmds & CMD_GLOBAL))
		barrier_mode = BARRIER_GLOBAL;
	else
		barrier_mode = BARRIER_NONE;
#endif
}

static struct reader_record *record_register(void)
{
	pthread_mutex_lock(&records_lock);
	struct reader_record *r = records;
	while (r && !r->unused)
		r = r->next;
	if (r) {
		r->unused = false;
	} else if ((r = aligned_alloc(LINE, LINE))) { /* a line of its own: no false sharing */
		memset(r, 0, LINE);
		r->next = records;
		records = r;
	}
	pthread_mutex_unlock(&records_lock);
	if (!r)
		return NULL;
	pthread_setspecific(record_key, r);
	my_record = r;
	return r;
}

/* The grace period: after it, every reader that announced a map before
 * the caller's last store is visible to the caller's scan, and every
 * reader that announces later will see that store on its recheck. */
static bool readers_fence(void)
{
	switch (barrier_mode) {
	case BARRIER_READERS_FENCE:
		atomic_thread_fence(memory_order_seq_cst);
		return true;
	case BARRIER_PRIVATE:
		if (membarrier(CMD_PRIVATE_EXPEDITED) == 0)
			return true;
		/* a fork()ed child is not registered: register, then try again */
		if (membarrier(CMD_REGISTER_PRIVATE_EXPEDITED) == 0 &&
		    membarrier(CMD_PRIVATE_EXPEDITED) == 0)
			return true;
		return membarrier(CMD_GLOBAL) == 0;
	case BARRIER_GLOBAL:
		return membarrier(CMD_GLOBAL) == 0;
	default:
		return false;
	}
}

static bool map_in_use(const struct generation_map *m)
{
	bool used = false;
	pthread_mutex_lock(&records_lock);
	for (struct reader_record *r = records; r && !used; r = r->next)
		used = atomic_load_explicit(&r->inside, memory_order_acquire) == m;
	pthread_mutex_unlock(&records_lock);
	return used;
}

/* The kernel may give a detached map's addresses to the next attach of
 * any thread, an order ThreadSanitizer cannot see: to it, a reader's last
 * loads from the old map (ordered before the detach through its record)
 * and the next writer's stores to a new segment at the same addresses
 * would race.  Counting detaches with a release before each, and loading
 * the count with an acquire after each attach of a data segment, states
 * that order in the C11 model.  (Nothing else reads the count.) */
static _Atomic unsigned long map_detaches;

static void map_attached(void)
{
	(void)atomic_load_explicit(&map_detaches, memory_order_acquire);
}

static void map_free(struct generation_map *m)
{
	if (!m)
		return;
	atomic_fetch_add_explicit(&map_detaches, 1, memory_order_release); /* see above */
	if (m->base)
		shmdt(m->base);
	free(m->empty);
	free(m->deleted);
	free(m);
}

/* Detaches every retired map no thread is inside.  Under switch_lock. */
static void retired_reclaim_locked(struct hashtable *t)
{
	if (!t->retired || !readers_fence()) /* pairs with reader_enter's announce-then-recheck */
		return;
	struct generation_map **pp = &t->retired;
	while (*pp) {
		struct generation_map *m = *pp;
		if (map_in_use(m)) {
			pp = &m->next;
			continue;
		}
		*pp = m->next;
		map_free(m);
	}
	atomic_store_explicit(&t->retired_pending, t->retired != NULL, memory_order_relaxed);
}

static __attribute__((noinline)) void retired_reclaim(struct hashtable *t)
{
	if (pthread_mutex_trylock(&t->switch_lock) != 0)
		return; /* another thread of the process is at it */
	retired_reclaim_locked(t);
	pthread_mutex_unlock(&t->switch_lock);
}

/* Makes m the handle's map and retires the one it replaces.  Under
 * switch_lock. */
static void map_publish_locked(struct hashtable *t, struct generation_map *m)
{
	struct generation_map *old = atomic_load_explicit(&t->map, memory_order_relaxed);
	/* release: readers that load the pointer see the map's fields */
	atomic_store_explicit(&t->map, m, memory_order_release);
	if (old) {
		old->next = t->retired;
		t->retired = old;
		atomic_store_explicit(&t->retired_pending, true, memory_order_relaxed);
	}
	retired_reclaim_locked(t);
}

static int map_attach(struct hashtable *t, uint64_t word, struct generation_map **out);

#define SWITCH_TRIES 8

/* The slow path of reader_enter: attaches the data segment the root's
 * current word names and publishes it as the handle's map. */
static int generation_switch(struct hashtable *t)
{
	pthread_mutex_lock(&t->switch_lock);
	int rc = 0;
	for (int tries = 0;; tries++) {
		uint64_t word = atomic_load_explicit(&t->root->current, memory_order_acquire);
		struct generation_map *m = atomic_load_explicit(&t->map, memory_order_relaxed);
		if (m && m->word == word)
			break;
		struct generation_map *fresh = NULL;
		rc = map_attach(t, word, &fresh);
		if (rc == 0) {
			map_publish_locked(t, fresh);
			break;
		}
		/* removed or reused meanwhile: a commit followed; read again */
		if (tries + 1 >= SWITCH_TRIES ||
		    atomic_load_explicit(&t->root->current, memory_order_acquire) == word)
			break;
	}
	pthread_mutex_unlock(&t->switch_lock);
	return rc;
}

/* The code of reader_get's last failure in this thread. */
static _Thread_local int reader_failure;

/* reader_get's common case, for a thread whose record is rec: announces
 * the handle's map and returns it if it is the current generation's, else
 * NULL (the caller goes to reader_get_slow, which starts over).  Straight
 * line, for hashtable_search to inline. */
static inline __attribute__((always_inline)) struct generation_map *
reader_announce(struct hashtable *t, struct reader_record *rec, bool k8v8_only)
{
#ifdef SHMKV_BENCH_NO_GENERATION_CHECK
	/* benchmark only (the check's cost): never follows a commit */
	(void)rec;
	struct generation_map *n = atomic_load_explicit(&t->map, memory_order_acquire);
	return k8v8_only && !n->k8v8 ? NULL : n;
#endif
	/* acquire: the map's fields, written before map_publish_locked's
	 * release store (free on x86) */
	struct generation_map *m = atomic_load_explicit(&t->map, memory_order_acquire);
	/* release, though the fence below does the protocol's work (a plain
	 * store on x86): the scan that reads this announcement is then
	 * ordered after this thread's earlier calls, whose exit stores it
	 * overwrites (C11 release sequences no longer carry a later relaxed
	 * store, and ThreadSanitizer follows that) */
	atomic_store_explicit(&rec->inside, m, memory_order_release);
	/* announce, then recheck: the store-buffer pattern ("Why no thread
	 * touches a detached mapping" at the top).  The reclaimer's
	 * membarrier acts as a full fence here.  The map's reload comes
	 * first: m may not be read until it is known to be still published. */
	READER_FENCE();
	/* acquire on the map's reload too: the map at m may have been freed
	 * and a new one allocated at the same address and published since the
	 * first load; this load is then the one that makes the new map's
	 * fields visible (free on x86; ThreadSanitizer saw the race).
	 * acquire on current: a new word's data segment is initialised;
	 * pairs with the committer's seq_cst store.  k8v8_only compares with
	 * fast_word (the word, or FAST_WORD_NONE for other shapes): one
	 * compare says both "current" and "k8v8". */
	if (__builtin_expect(atomic_load_explicit(&t->map, memory_order_acquire) == m &&
	                     atomic_load_explicit(&t->root->current, memory_order_acquire) ==
	                             (k8v8_only ? m->fast_word : m->word), 1))
		return m;
	/* k8v8_only: the announcement stays for the caller to recheck
	 * against the word (search_other_shape): a map of another shape is
	 * mostly current, and announcing it again would cost a second pass */
	if (!k8v8_only)
		atomic_store_explicit(&rec->inside, NULL, memory_order_release);
	return NULL;
}

static inline __attribute__((always_inline)) struct generation_map *
reader_try(struct hashtable *t, struct reader_record *rec)
{
	return reader_announce(t, rec, false);
}

/* reader_try for hashtable_search's fast path: NULL also when the map is
 * not of the k8v8 shape, and then with the map still announced (`inside`),
 * which the caller must recheck or withdraw (search_other_shape). */
static inline __attribute__((always_inline)) struct generation_map *
reader_try_k8v8(struct hashtable *t, struct reader_record *rec)
{
	return reader_announce(t, rec, true);
}

/* reader_get's slow path: registration, a raced switch, a commit to
 * follow, retired maps to reclaim.  The map, or NULL (reader_failure). */
static __attribute__((noinline)) struct generation_map *reader_get_slow(struct hashtable *t)
{
	struct reader_record *rec = my_record;
	if (!rec && !(rec = record_register())) {
		reader_failure = fail(-ENOMEM, "out of memory registering a reader thread");
		return NULL;
	}
	for (;;) {
		struct generation_map *m = reader_try(t, rec);
		if (m) {
			if (atomic_load_explicit(&t->retired_pending, memory_order_relaxed))
				retired_reclaim(t); /* never m: it is current */
			return m;
		}
		/* a commit to follow, or a switch raced (then generation_switch
		 * finds the map current and returns at once) */
		int rc = generation_switch(t);
		if (rc) {
			reader_failure = rc;
			return NULL;
		}
	}
}

/* Enters a call: returns a map of the current generation, which stays
 * attached until reader_exit, or NULL (reader_failure says why: the
 * table's data segment is gone or damaged).  The fast path is straight
 * line, returning by value (an out parameter would make the caller keep
 * the map in memory); anything unusual goes to reader_get_slow, which
 * starts over. */
static inline struct generation_map *reader_get(struct hashtable *t)
{
	struct reader_record *rec = my_record;
	struct generation_map *m;
	if (__builtin_expect(rec && (m = reader_try(t, rec)), 1))
		return m;
	return reader_get_slow(t);
}

/* reader_get for calls off the hit path: 0 and *out, or the code. */
static inline int reader_enter(struct hashtable *t, struct generation_map **out)
{
	struct generation_map *m = reader_get(t);
	if (!m)
		return reader_failure;
	*out = m;
	return 0;
}

/* reader_exit for a thread whose record is rec (a call that entered
 * through reader_try). */
static inline __attribute__((always_inline)) void reader_leave(struct hashtable *t,
                                                               struct reader_record *rec)
{
#ifdef SHMKV_BENCH_NO_GENERATION_CHECK
	(void)t;
	(void)rec;
	return;
#endif
	/* release: every load from the map is done before it may be freed;
	 * pairs with map_in_use's acquire */
	atomic_store_explicit(&rec->inside, NULL, memory_order_release);
	/* A map retired while this thread was inside it (a commit, a grow or
	 * a switch under the writer lock) is detached now, not at the next
	 * call: a process that then goes idle must not pin it. */
	if (__builtin_expect(atomic_load_explicit(&t->retired_pending, memory_order_relaxed), 0))
		retired_reclaim(t);
}

/* Leaves a call: the map may be detached from now on (by this exit's
 * reclaim, another thread's, or a switch's). */
static inline void reader_exit(struct hashtable *t, struct generation_map *m)
{
	(void)m;
	reader_leave(t, my_record);
}

/* A data segment whose mode or owner differ from the root's (a chmod
 * or chown that reached the root only, e.g. of a mode-0 table, whose data
 * segments its owner could not list): its owner, creator or root makes it
 * the root's again.  Returns whether it changed it. */
static bool data_perm_sync(struct hashtable *t, int shmid)
{
	struct segment_row root;
	if (!segment_row_of(t->ipc_key, &root) || root.shmid != t->shmid)
		return false;
	struct shmid_ds ds;
	memset(&ds, 0, sizeof ds);
	ds.shm_perm.uid = root.uid;
	ds.shm_perm.gid = root.gid;
	ds.shm_perm.mode = (unsigned short)root.mode;
	return shmctl(shmid, IPC_SET, &ds) == 0;
}

/* Attaches the data segment `word` names and validates it against the
 * table: its magic, format, geometry, table_id and generation. */
static int map_attach(struct hashtable *t, uint64_t word, struct generation_map **out)
{
	int shmid = (int)(uint32_t)word;
	struct shmid_ds ds;
	if (shmctl(shmid, IPC_STAT, &ds) != 0 && errno == EACCES && data_perm_sync(t, shmid))
		errno = EACCES;
	if (shmctl(shmid, IPC_STAT, &ds) != 0)
		return errno == EACCES
		     ? explain_access(t->ipc_key, t->readonly)
		     : fail(-EIDRM, "the data segment %d of the table at key 0x%08x (generation %llu) "
		                    "is gone (%s): the table was removed or replaced meanwhile; open "
		                    "it again", shmid, (unsigned)t->ipc_key,
		            (unsigned long long)(word >> 32), strerror(errno));
	struct generation_map *h = calloc(1, sizeof *h);
	if (!h)
		return fail(-ENOMEM, "out of memory");
	h->shmid = shmid;
	h->ipc_key = t->ipc_key;
	h->readonly = t->readonly;
	h->root = t->root;
	h->word = word;
	h->segment_bytes = ds.shm_segsz;
	void *p = shmat(shmid, NULL, t->readonly ? SHM_RDONLY : 0);
	map_attached();
	if (p == (void *)-1) {
		int e = errno;
		free(h);
		return e == EACCES ? explain_access(t->ipc_key, t->readonly)
		                   : fail(-EIDRM, "cannot attach the data segment %d of the table at "
		                                  "key 0x%08x: %s", shmid, (unsigned)t->ipc_key,
		                          strerror(e));
	}
	h->base = p;
	h->hdr = p;
	int rc = validate_header(h, ds.shm_segsz);
	if (!rc && (h->hdr->table_id != t->table_id || h->hdr->generation != word >> 32))
		rc = fail(HASHTABLE_ECORRUPT, "segment %d is not generation %llu of the table at key "
		                              "0x%08x (it names table %016llx generation %llu): the "
		                              "root's current word is damaged or the id was reused; "
		                              "`shmkv verify` says more",
		          shmid, (unsigned long long)(word >> 32), (unsigned)t->ipc_key,
		          (unsigned long long)h->hdr->table_id, (unsigned long long)h->hdr->generation);
	if (!rc && (h->g.key_size != t->key_size || h->g.value_size != t->value_size ||
	            memcmp(h->empty, (unsigned char *)t->root + t->root->off_empty, t->key_size) ||
	            memcmp(h->deleted, (unsigned char *)t->root + t->root->off_deleted, t->key_size)))
		rc = fail(HASHTABLE_ECORRUPT, "data segment %d has other widths or sentinels than its "
		                              "table's root (key 0x%08x): it is damaged",
		          shmid, (unsigned)t->ipc_key);
	if (rc) {
		map_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

/* The root segment's size: the header and both sentinels. */
static uint64_t root_bytes(uint32_t key_size)
{
	return sizeof(struct shm_header) + 2 * (uint64_t)key_size;
}

static const char migration_text[] =
	"it was made by shmkv 0.1 (a single-segment table); this version keeps tables in "
	"generations and cannot read it.  Carry its data over: dump it with the 0.1 tools "
	"(shmkv dump TABLE > data.cdb), remove it (ipcrm -m %d), then load it with these "
	"(shmkv-load TABLE data.cdb)";

/* Checks a root header before anything else reads it. */
static int validate_root(struct hashtable *t, size_t segsz)
{
	const struct shm_header *hd = t->root;
	int shmid = t->shmid;
	if (segsz < sizeof *hd)
		return fail(-EPROTO, "segment %d is %zu bytes, too small to be a shmkv table; "
		                     "remove it with: ipcrm -m %d if it is stale", shmid, segsz, shmid);
	if (hd->magic == SHMKV_MAGIC) {
		char text[512];
		snprintf(text, sizeof text, migration_text, shmid);
		return fail(-EPROTO, "segment %d (key 0x%08x): %s", shmid, (unsigned)t->ipc_key, text);
	}
	if (hd->magic == SHMKV_DATA_MAGIC)
		return fail(-EPROTO, "segment %d (key 0x%08x) is a generation's data segment, not a "
		                     "table's root: open the table by its key or path",
		            shmid, (unsigned)t->ipc_key);
	if (hd->magic != SHMKV_ROOT_MAGIC)
		return fail(-EPROTO, "segment %d (key 0x%08x) is not a shmkv table (no shmkv magic); "
		                     "it was left untouched", shmid, (unsigned)t->ipc_key);
	if (hd->format != SHMKV_FORMAT) {
		char text[512];
		snprintf(text, sizeof text, migration_text, shmid);
		return fail(-EPROTO, "segment %d holds shmkv format %u; this library reads format %u: "
		                     "%s", shmid, hd->format, SHMKV_FORMAT, text);
	}
	if (hd->libc != THIS_LIBC || hd->mutex_bytes != sizeof(pthread_mutex_t))
		return fail(-EPROTO, "segment %d was created by a program built with %s (header fields "
		                     "libc %u, mutex_bytes %u); this one is built with %s (%zu bytes): "
		                     "their writer locks are not compatible; use programs built against "
		                     "the creator's C library",
		            shmid, libc_name(hd->libc), hd->libc, hd->mutex_bytes,
		            libc_name(THIS_LIBC), sizeof(pthread_mutex_t));
	if (!widths_valid(hd->key_size, hd->value_size) || segsz < root_bytes(hd->key_size) ||
	    hd->off_empty != sizeof *hd || hd->off_deleted != sizeof *hd + hd->key_size)
		return fail(-EPROTO, "segment %d has a shmkv root whose widths (%u, %u) or sentinel "
		                     "offsets do not fit its %zu bytes; it is damaged: remove it with: "
		                     "ipcrm -m %d", shmid, hd->key_size, hd->value_size, segsz, shmid);
	t->key_size = hd->key_size;
	t->value_size = hd->value_size;
	t->table_id = hd->table_id;
	return 0;
}

static void table_free(struct hashtable *t)
{
	if (!t)
		return;
	map_free(atomic_load_explicit(&t->map, memory_order_relaxed));
	while (t->retired) {
		struct generation_map *m = t->retired;
		t->retired = m->next;
		map_free(m);
	}
	if (t->root)
		shmdt(t->root);
	pthread_mutex_destroy(&t->switch_lock);
	free(t);
}

static struct hashtable *table_new(int shmid, key_t key, bool readonly)
{
	pthread_once(&records_once, records_setup);
	struct hashtable *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->shmid = shmid;
	t->ipc_key = key;
	t->readonly = readonly;
	pthread_mutex_init(&t->switch_lock, NULL);
	return t;
}

/* Attaches the root segment shmid, validates it and attaches the current
 * generation. */
static int attach_mode(int shmid, key_t key, bool readonly, bool follow, struct hashtable **out)
{
	struct shmid_ds ds;
	if (shmctl(shmid, IPC_STAT, &ds) != 0)
		return errno == EACCES ? explain_access(key, readonly)
		                       : fail(-errno, "cannot stat segment %d: %s", shmid, strerror(errno));
	struct hashtable *t = table_new(shmid, key, readonly);
	if (!t)
		return fail(-ENOMEM, "out of memory");
	t->root_bytes = ds.shm_segsz;
	/* the root is written by writers through read-only handles too? no:
	 * a read-only handle only reads it */
	void *p = shmat(shmid, NULL, readonly ? SHM_RDONLY : 0);
	if (p == (void *)-1) {
		int e = errno;
		table_free(t);
		return e == EACCES ? explain_access(key, readonly)
		                   : fail(-e, "cannot attach segment %d: %s", shmid, strerror(e));
	}
	t->root = p;
	int rc;
	enum creation c = wait_for_creator(t->root, ds.shm_segsz, ds.shm_cpid);
	if (c == UNFINISHED)
		rc = fail(HASHTABLE_EUNFINISHED, "segment %d (key 0x%08x) is an unfinished shmkv "
		                                 "table: its creator (pid %d) died while initialising "
		                                 "it; remove it with: shmkv rm 0x%08x (or ipcrm -m %d)",
		          shmid, (unsigned)key, (int)t->root->creator_pid, (unsigned)key, shmid);
	else if (c == NOT_SHMKV)
		rc = fail(-EPROTO, "segment %d (key 0x%08x) has no shmkv header and its creator is "
		                   "gone: it is not a shmkv table (or its creator died before marking "
		                   "it); it was left untouched", shmid, (unsigned)key);
	else
		rc = validate_root(t, ds.shm_segsz);
	if (!rc && follow)
		rc = generation_switch(t);
	if (rc) {
		table_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

static int attach(int shmid, key_t key, bool readonly, struct hashtable **out)
{
	return attach_mode(shmid, key, readonly, true, out);
}

/* ---- generations: creating data segments --------------------------------- */

/* The root's owner, group and mode, given to every data segment so that
 * `ipcs -m` and permissions read the same for all of a table's segments. */
static int data_perm(int root_shmid, struct ipc_perm *perm)
{
	struct shmid_ds ds;
	if (shmctl(root_shmid, IPC_STAT, &ds) != 0)
		return fail(-errno, "cannot stat the table's root segment %d: %s", root_shmid,
		            strerror(errno));
	/* A commit removes the old generation, which only its owner, its
	 * creator or root may do: a build by anyone else would leave it behind
	 * for ever.  (-EACCES: -EPERM would read as -1, "not found".) */
	uid_t me = geteuid();
	if (me != 0 && me != ds.shm_perm.uid) {
		char owner[128], you[128];
		return fail(-EACCES, "only the table's owner %s or root may build a new generation "
		                     "of it (replace, grow, autogrow): the commit must remove the old "
		                     "one, and you are %s",
		            user_text(ds.shm_perm.uid, owner, sizeof owner),
		            user_text((unsigned)me, you, sizeof you));
	}
	*perm = ds.shm_perm;
	return 0;
}

/* Tests only: SIGKILL this process at the named step of a build or commit
 * (SHMKV_TEST_KILL_AT=step), to check every crash state of the essay.
 * Read on the replace path only, never by lookups. */
static void test_kill_point(const char *step)
{
	const char *want = getenv("SHMKV_TEST_KILL_AT");
	if (want && strcmp(want, step) == 0)
		raise(SIGKILL);
}

/* Records a build in the root before its segment exists: whoever finds the
 * record with its builder dead removes what it may have created. */
static void build_record(struct shm_header *r, uint64_t bytes, uint64_t gen)
{
	pthread_once(&atfork_once, register_atfork);
	atomic_store_explicit(&r->pending_shmid, -1, memory_order_relaxed);
	atomic_store_explicit(&r->pending_start, process_start_time(getpid()), memory_order_relaxed);
	atomic_store_explicit(&r->pending_time, (uint64_t)time(NULL), memory_order_relaxed);
	atomic_store_explicit(&r->pending_bytes, bytes, memory_order_relaxed);
	atomic_store_explicit(&r->pending_gen, gen, memory_order_relaxed);
	/* seq_cst: the record is in memory before shmget creates anything */
	atomic_store_explicit(&r->pending_pid, (int32_t)getpid(), memory_order_seq_cst);
}

static void build_record_clear(struct shm_header *r)
{
	atomic_store_explicit(&r->pending_pid, 0, memory_order_seq_cst);
	atomic_store_explicit(&r->pending_shmid, -1, memory_order_seq_cst);
}

/* Creates, records and initialises the data segment of generation `gen`
 * (IPC_PRIVATE, the root's owner, group and mode), attached read-write in
 * a new map *out.  The build record must already be written. */
static int data_create(struct shm_header *root, int root_shmid, key_t key,
                       const struct geometry *g, uint64_t size,
                       const struct hashtable_config *cfg, double fraction, uint64_t gen,
                       struct generation_map **out)
{
	bool huge = cfg->flags & HASHTABLE_HUGETLB;
	struct ipc_perm perm = {0};
	int rc = data_perm(root_shmid, &perm);
	if (rc)
		return rc;
	test_kill_point("build-recorded");
	/* the root's mode from the start: a recovery by another user of the
	 * table must be able to attach it to check it (build_cleanup) even if
	 * this builder dies before the IPC_SET below */
	int shmid = shmget(IPC_PRIVATE, size,
	                   IPC_CREAT | (int)(perm.mode & 0777u) | (huge ? SHM_HUGETLB : 0));
	if (shmid < 0)
		return explain_shmget(errno, size, huge);
	test_kill_point("segment-created");
	/* seq_cst: recorded before anything else can fail or be killed */
	atomic_store_explicit(&root->pending_shmid, shmid, memory_order_seq_cst);
	test_kill_point("segment-recorded");
	struct shmid_ds ds;
	if (shmctl(shmid, IPC_STAT, &ds) == 0) {
		ds.shm_perm.uid = perm.uid;
		ds.shm_perm.gid = perm.gid;
		ds.shm_perm.mode = (ds.shm_perm.mode & ~0777u) | (perm.mode & 0777u);
		shmctl(shmid, IPC_SET, &ds); /* best effort: a non-owner keeps its own */
	}
	void *p = shmat(shmid, NULL, 0);
	map_attached();
	if (p == (void *)-1) {
		rc = fail(-errno, "cannot attach the new data segment %d: %s", shmid, strerror(errno));
		shmctl(shmid, IPC_RMID, NULL);
		return rc;
	}
	struct shm_header *hd = p;
	hd->name_dev = root->name_dev;
	hd->name_ino = root->name_ino;
	rc = initialise(p, g, size, cfg, fraction, huge, root->table_id, gen);
	struct generation_map *m = NULL;
	if (!rc && !(m = calloc(1, sizeof *m)))
		rc = fail(-ENOMEM, "out of memory");
	if (rc) {
		shmdt(p);
		shmctl(shmid, IPC_RMID, NULL);
		return rc;
	}
	m->base = p;
	m->hdr = p;
	m->root = root;
	m->shmid = shmid;
	m->ipc_key = key;
	m->segment_bytes = size;
	m->word = gen << 32 | (uint32_t)shmid;
	if ((rc = validate_header(m, size))) {
		map_free(m);
		shmctl(shmid, IPC_RMID, NULL);
		return rc;
	}
	*out = m;
	return 0;
}

/* The data segment's size for a configuration: capacity in bytes, or
 * entries at the load limit. */
static int data_size(const struct hashtable_config *cfg, double fraction, uint64_t *size,
                     struct geometry *g)
{
	bool huge = cfg->flags & HASHTABLE_HUGETLB;
	uint64_t s = cfg->capacity;
	if (!s && !(s = hashtable_segment_size(cfg->entries, fraction, cfg->key_size,
	                                       cfg->value_size)))
		return fail(-EINVAL, "give a capacity in bytes or a number of entries (at most %llu)",
		            (unsigned long long)MAX_ENTRIES);
	if (huge)
		s = round_up(s, hugepage_bytes());
	if (!layout(cfg->key_size, cfg->value_size, s, g))
		return fail(-EINVAL, "a capacity of %llu bytes cannot hold one bucket of %u-byte "
		                     "keys and %u-byte values (header included); need at least %llu",
		            (unsigned long long)s, cfg->key_size, cfg->value_size,
		            (unsigned long long)(hashtable_segment_size(1, MAX_LOAD, cfg->key_size,
		                                                        cfg->value_size)));
	*size = s;
	return 0;
}

static uint64_t random_id(void)
{
	uint64_t x = 0;
	FILE *f = fopen("/dev/urandom", "re");
	if (f) {
		if (fread(&x, sizeof x, 1, f) != 1)
			x = 0;
		fclose(f);
	}
	return x ^ random_seed();
}

/* Whether the host has room for a new table's two segments (its root and
 * its first data segment): kernel.shmmni and kernel.shmall, checked before
 * the first is created so the advice covers both.  0, or the diagnosis. */
static int table_room_check(uint64_t root_size, uint64_t data_size)
{
	uint64_t shmall = read_proc_u64("/proc/sys/kernel/shmall", UINT64_MAX);
	uint64_t shmmni = read_proc_u64("/proc/sys/kernel/shmmni", UINT64_MAX);
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), segments, used;
	segments_in_use(page, &segments, &used);
	if (shmmni != UINT64_MAX && segments + 2 > shmmni)
		return fail(-ENOSPC, "the host has %llu shared memory segments and kernel.shmmni allows "
		                     "%llu; a table needs 2 (its root and its data); raise it with: "
		                     "sysctl -w kernel.shmmni=%llu, or remove unused segments (ipcs -m, "
		                     "ipcrm -m ID)", (unsigned long long)segments,
		            (unsigned long long)shmmni, (unsigned long long)segments + 2);
	uint64_t need = (root_size + page - 1) / page + (data_size + page - 1) / page;
	if (shmall != UINT64_MAX && used + need > shmall)
		return fail(-ENOSPC, "a table of %llu + %llu bytes (its root and its data) would pass "
		                     "kernel.shmall: %llu of its %llu pages of %llu bytes are in use; "
		                     "raise it with: sysctl -w kernel.shmall=%llu, or remove unused "
		                     "segments (ipcs -m, ipcrm -m ID)", (unsigned long long)root_size,
		            (unsigned long long)data_size, (unsigned long long)used,
		            (unsigned long long)shmall, (unsigned long long)page,
		            (unsigned long long)(used + need));
	return 0;
}

/* Creates the table: the root at `key` (marked as being created), the
 * first generation's data segment, then the root's magic. */
static int create_segment(key_t key, const struct hashtable_config *cfg, double fraction,
                          struct hashtable **out)
{
	struct geometry g;
	uint64_t size;
	int rc = data_size(cfg, fraction, &size, &g);
	if (rc)
		return rc;
	unsigned mode = cfg->mode ? cfg->mode : 0600;
	uint64_t rsize = root_bytes(cfg->key_size);
	if (shmget(key, 0, 0) < 0 && errno == ENOENT && (rc = table_room_check(rsize, size)))
		return rc;
	int shmid = shmget(key, rsize, IPC_CREAT | IPC_EXCL | (int)mode);
	if (shmid < 0)
		return errno == EEXIST ? -EEXIST : explain_shmget(errno, rsize, false);
	void *p = shmat(shmid, NULL, 0);
	if (p == (void *)-1) {
		rc = fail(-errno, "cannot attach the new segment %d: %s", shmid, strerror(errno));
		shmctl(shmid, IPC_RMID, NULL);
		return rc;
	}
	struct shm_header *r = p; /* unpublished until the root magic */
	r->creator_pid = (int32_t)getpid();
	r->creator_start = process_start_time(getpid());
	/* release: a process that sees the mark sees the creator's record */
	atomic_store_explicit((_Atomic uint64_t *)(uintptr_t)&r->magic, SHMKV_MAGIC_CREATING,
	                      memory_order_release);
	r->format = SHMKV_FORMAT;
	r->mutex_bytes = (uint32_t)sizeof(pthread_mutex_t);
	r->libc = THIS_LIBC;
	r->segment_bytes = rsize;
	r->key_size = cfg->key_size;
	r->value_size = cfg->value_size;
	r->off_empty = sizeof *r;
	r->off_deleted = sizeof *r + cfg->key_size;
	r->max_load = fraction;
	r->created = (int64_t)time(NULL);
	r->table_id = random_id();
	r->max_bytes = cfg->max_bytes;
	r->table_flags = cfg->flags & HASHTABLE_AUTOGROW;
	path_identity(cfg->path, &r->name_dev, &r->name_ino);
	fill_sentinel((unsigned char *)p + r->off_empty, cfg->empty_key, cfg->key_size, 0x00);
	fill_sentinel((unsigned char *)p + r->off_deleted, cfg->deleted_key, cfg->key_size, 0xff);
	atomic_store_explicit(&r->retiring_shmid, -1, memory_order_relaxed);
	build_record(r, size, 1);
	struct generation_map *m = NULL;
	rc = data_create(r, shmid, key, &g, size, cfg, fraction, 1, &m);
	if (!rc) {
		atomic_store_explicit(&r->current, m->word, memory_order_seq_cst);
		build_record_clear(r);
		int e = init_mutex(&r->lock.mutex);
		if (e)
			rc = fail(-e, "cannot initialise the writer lock: %s", strerror(e));
	}
	if (!rc) /* release: every root field is visible before the magic */
		atomic_store_explicit((_Atomic uint64_t *)(uintptr_t)&r->magic, SHMKV_ROOT_MAGIC,
		                      memory_order_release);
	/* attach before the initialising mapping goes: under
	 * kernel.shm_rmid_forced=1 a segment dies when its last attachment does */
	if (!rc)
		rc = attach(shmid, key, cfg->flags & HASHTABLE_RDONLY, out);
	map_free(m);
	if (rc) { /* a failed create leaves nothing */
		int cur = (int)(uint32_t)atomic_load(&r->current);
		if (atomic_load(&r->current))
			shmctl(cur, IPC_RMID, NULL);
		shmctl(shmid, IPC_RMID, NULL);
	}
	shmdt(p);
	return rc;
}

/* ---- generations: crash cleanup ------------------------------------------ */

/* What a dead build may have left: segments of this table in a range of
 * generations, or (pid != 0) one its builder created during the build
 * before it wrote a complete header. */
struct build_leftover {
	uint64_t table_id, gen_min, gen_max;
	pid_t pid;       /* the builder; 0: only complete headers qualify */
	uint64_t since;  /* the build record's time */
	bool pid_made;   /* complete headers too must be pid's own segments */
};

static bool is_leftover(const struct shm_header *hd, const struct shmid_ds *ds,
                        const struct build_leftover *w)
{
	if (ds->shm_segsz < sizeof *hd)
		return false;
	uint64_t magic = atomic_load_explicit((_Atomic uint64_t *)(uintptr_t)&hd->magic,
	                                      memory_order_acquire);
	if (magic == SHMKV_DATA_MAGIC)
		return hd->table_id == w->table_id && hd->generation >= w->gen_min &&
		       hd->generation <= w->gen_max && (!w->pid_made || ds->shm_cpid == w->pid);
	/* not complete: the builder's, if that process made it during the build */
	return w->pid && ds->shm_cpid == w->pid && (uint64_t)ds->shm_ctime + 1 >= w->since &&
	       (magic == 0 || magic == SHMKV_MAGIC_CREATING);
}

/* Removes segment id if it is a leftover of this table's, never `keep` (the
 * current one).  The check and the IPC_RMID happen under an attachment of
 * our own: without it the segment's last process could detach in between,
 * the kernel free it and hand its id to another program, whose segment we
 * would then remove (found by the model: model/README.md, finding 1). */
static void leftover_remove(int id, int keep, const struct build_leftover *w)
{
	if (id < 0 || id == keep)
		return;
	void *p = shmat(id, NULL, SHM_RDONLY);
	if (p == (void *)-1)
		return; /* gone already (EINVAL, EIDRM), or not ours to read */
	struct shmid_ds ds;
	if (shmctl(id, IPC_STAT, &ds) == 0 && is_leftover(p, &ds, w))
		shmctl(id, IPC_RMID, NULL); /* freed at our shmdt if nobody else holds it */
	shmdt(p);
}

/* Removes the key-0 segments a dead builder may have created before it
 * could record their id: created by it, of `bytes`, and leftovers of this
 * build.  /proc/sysvipc/shm is readable by anyone. */
static void orphans_remove(uint64_t bytes, int keep, const struct build_leftover *w)
{
	FILE *f = fopen("/proc/sysvipc/shm", "re");
	struct segment_row r;
	if (!f)
		return;
	while (segment_row_next(f, &r))
		if (r.key == IPC_PRIVATE && r.cpid == w->pid && r.bytes == bytes)
			leftover_remove(r.shmid, keep, w);
	fclose(f);
}

/* Removes what a dead builder may have created (its recorded pending
 * segment, or what orphans_remove finds when it died between shmget and
 * recording the id), never `keep`, and clears its record. */
static void pending_cleanup(struct shm_header *r, int keep)
{
	pid_t pid = atomic_load_explicit(&r->pending_pid, memory_order_seq_cst);
	if (!pid)
		return;
	uint64_t pending_gen = atomic_load(&r->pending_gen);
	struct build_leftover w = {
		.table_id = r->table_id, .gen_min = pending_gen, .gen_max = pending_gen,
		.pid = pid, .since = atomic_load(&r->pending_time),
	};
	int pending = atomic_load_explicit(&r->pending_shmid, memory_order_seq_cst);
	if (pending >= 0)
		leftover_remove(pending, keep, &w);
	else
		orphans_remove(atomic_load(&r->pending_bytes), keep, &w);
	build_record_clear(r);
}

/* Cleans up after a builder or committer that died: its pending segment,
 * and the old generation a commit left retiring; never the current one
 * (`current`: the root's current word).  Under the writer lock. */
static void build_cleanup(struct shm_header *r, uint64_t current)
{
	int keep = (int)(uint32_t)current;
	uint64_t gen = current >> 32;
	pending_cleanup(r, keep);
	int retiring = atomic_load_explicit(&r->retiring_shmid, memory_order_seq_cst);
	if (retiring >= 0) {
		struct build_leftover w = {
			.table_id = r->table_id, .gen_min = 0, .gen_max = gen ? gen - 1 : 0,
		};
		if (gen)
			leftover_remove(retiring, keep, &w);
		atomic_store_explicit(&r->retiring_shmid, -1, memory_order_seq_cst);
	}
}

/* Under the writer lock, any build record is a dead builder's: the
 * builder holds the lock from begin to commit or abort. */
static void generation_recover_locked(struct hashtable *t)
{
	build_cleanup(t->root, atomic_load_explicit(&t->root->current, memory_order_seq_cst));
}

/* ---- creating and opening tables ----------------------------------------- */

/* An existing table must have the widths and sentinels asked for. */
static int check_match(struct hashtable *t, const struct hashtable_config *cfg)
{
	unsigned char e[HASHTABLE_MAX_KEY], d[HASHTABLE_MAX_KEY];
	fill_sentinel(e, cfg->empty_key, cfg->key_size, 0x00);
	fill_sentinel(d, cfg->deleted_key, cfg->key_size, 0xff);
	const unsigned char *root = (const unsigned char *)t->root;
	if (t->key_size != cfg->key_size || t->value_size != cfg->value_size)
		return fail(-EINVAL, "the table at key 0x%08x (segment %d) has %u-byte keys and %u-byte "
		                     "values, not %u and %u; remove it with `shmkv rm 0x%08x` (not "
		                     "`ipcrm -m %d` alone: its data segments would stay), or use "
		                     "its widths",
		            (unsigned)t->ipc_key, t->shmid, t->key_size, t->value_size,
		            cfg->key_size, cfg->value_size, (unsigned)t->ipc_key, t->shmid);
	if (memcmp(e, root + t->root->off_empty, cfg->key_size) ||
	    memcmp(d, root + t->root->off_deleted, cfg->key_size))
		return fail(-EINVAL, "the table at key 0x%08x (segment %d) has other empty/deleted "
		                     "sentinels; remove it with `shmkv rm 0x%08x` or pass its sentinels",
		            (unsigned)t->ipc_key, t->shmid, (unsigned)t->ipc_key);
	return 0;
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
		struct hashtable *t;
		if ((rc = attach(shmid, key, cfg->flags & HASHTABLE_RDONLY, &t)))
			return rc;
		if ((rc = check_match(t, cfg))) {
			table_free(t);
			return rc;
		}
		*out = t;
		return 0;
	}
	return fail(-EAGAIN, "the segment at key 0x%08x kept appearing and vanishing", (unsigned)key);
}

static void note_path(struct hashtable *t, const char *path)
{
	t->by_path = path_identity(path, &t->path_dev, &t->path_ino);
}

int hashtable_create_config(const struct hashtable_config *cfg, struct hashtable **out)
{
	int rc = create_or_attach(cfg, out);
	if (rc == 0)
		note_path(*out, cfg->path);
	return rc;
}

/* The errno for a code, for the calls that report through errno: the
 * library's own codes become EPROTO, their text kept for
 * hashtable_last_error(). */
static int errno_for(int rc)
{
	if (rc == HASHTABLE_EDEADWRITER || rc == HASHTABLE_ECORRUPT || rc == HASHTABLE_EUNFINISHED) {
		char detail[sizeof last_detail];
		memcpy(detail, last_detail, sizeof detail);
		fail(-EPROTO, "%s", detail);
		return EPROTO;
	}
	return -rc;
}

/* MemKeyValue's sizing: `capacity` bytes at `usage` hold
 * floor(usage * capacity / (key_size + value_size)) keys, whatever the
 * slots' padding and the metadata take: the data segment is sized for
 * that many entries at the load limit `usage`. */
struct hashtable *hashtable_create(const char *path, long capacity, float max_usage_percent,
                                   short key_size, short value_size, void *stop_cond,
                                   void *del_cond)
{
	double fraction = load_fraction(max_usage_percent);
	if (!path || capacity <= 0 || key_size <= 0 || value_size < 0 || fraction == 0) {
		fail(-EINVAL, "hashtable_create needs a path, a positive capacity and key size, a "
		              "value size of at least 0, and a load limit in (0, %g] or (1, %g]",
		     MAX_LOAD, MAX_LOAD * 100);
		errno = EINVAL;
		return NULL;
	}
	uint64_t entries = (uint64_t)(fraction * (double)capacity /
	                              (double)(key_size + value_size) + 1e-9);
	if (entries == 0) {
		fail(-EINVAL, "a capacity of %ld bytes at load %g holds no key of %d + %d bytes",
		     capacity, fraction, key_size, value_size);
		errno = EINVAL;
		return NULL;
	}
	struct hashtable_config cfg = {
		.path = path,
		.entries = entries,
		.max_load = max_usage_percent,
		.key_size = (uint32_t)key_size,
		.value_size = (uint32_t)value_size,
		.empty_key = stop_cond,
		.deleted_key = del_cond,
	};
	struct hashtable *h = NULL;
	int rc = hashtable_create_config(&cfg, &h);
	if (rc) {
		char detail[sizeof last_detail];
		memcpy(detail, last_detail, sizeof detail);
		fail(rc, "%s (asked: a capacity of %ld bytes at load %g, %llu keys)", detail,
		     capacity, fraction, (unsigned long long)entries);
		errno = errno_for(rc);
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
		errno = errno_for(rc);
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
	table_free(h);
	return 0;
}

int hashtable_shmid(const struct hashtable *h) { return h ? h->shmid : -1; }

int hashtable_sentinels(const struct hashtable *h, void *empty_key, void *deleted_key)
{
	if (!h)
		return fail(-EINVAL, "NULL table handle");
	const unsigned char *root = (const unsigned char *)h->root;
	if (empty_key)
		memcpy(empty_key, root + h->root->off_empty, h->key_size);
	if (deleted_key)
		memcpy(deleted_key, root + h->root->off_deleted, h->key_size);
	return 0;
}

/* Removes the root first: a commit that publishes after this sees the
 * root marked for removal (SHM_DEST) and removes its own segment; one that
 * published before is seen here in `current`.  (Both sides: a store or a
 * removal, then a system call that reads the other's; each system call is
 * a full barrier.) */
static int table_remove(struct hashtable *h)
{
	if (shmctl(h->shmid, IPC_RMID, NULL) != 0) {
		if (errno != EPERM)
			return fail(-errno, "cannot remove segment %d: %s", h->shmid, strerror(errno));
		/* -EACCES, not -EPERM: -EPERM is -1, which means "not found" */
		struct segment_row r;
		char owner[128] = "", you[128];
		if (segment_row_of(h->ipc_key, &r) && r.shmid == h->shmid)
			user_text(r.uid, owner, sizeof owner);
		return fail(-EACCES, "cannot remove segment %d: only its owner%s%s, its creator or "
		                     "root may remove it, and you are %s", h->shmid,
		            owner[0] ? " " : "", owner, user_text((unsigned)geteuid(), you, sizeof you));
	}
	atomic_thread_fence(memory_order_seq_cst);
	/* Each id is checked under an attachment before it is removed
	 * (leftover_remove): a commit racing with this may have freed it. */
	struct shm_header *r = h->root;
	uint64_t word = atomic_load_explicit(&r->current, memory_order_seq_cst);
	if (word) {
		struct build_leftover w = {
			.table_id = r->table_id, .gen_min = word >> 32, .gen_max = word >> 32,
		};
		leftover_remove((int)(uint32_t)word, -1, &w);
	}
	pid_t pid = atomic_load(&r->pending_pid);
	int pending = atomic_load_explicit(&r->pending_shmid, memory_order_seq_cst);
	if (pid && pending >= 0) {
		uint64_t gen = atomic_load(&r->pending_gen);
		struct build_leftover w = {
			.table_id = r->table_id, .gen_min = gen, .gen_max = gen,
			.pid = pid, .since = atomic_load(&r->pending_time),
		};
		leftover_remove(pending, -1, &w);
	}
	int retiring = atomic_load_explicit(&r->retiring_shmid, memory_order_seq_cst);
	if (retiring >= 0) {
		struct build_leftover w = { .table_id = r->table_id, .gen_max = UINT64_MAX };
		leftover_remove(retiring, -1, &w);
	}
	return 0;
}

int hashtable_unlink(struct hashtable *h)
{
	if (!h)
		return fail(-EINVAL, "NULL table handle");
	return table_remove(h);
}

/* 1 if segment shmid is an unfinished table (marked by a creator that is
 * gone), 0 if not, or a negative code.  With `remove`, an unfinished one
 * is removed with whatever data segment its creator made. */
static int unfinished_by_id(int shmid, key_t key, bool remove)
{
	struct shmid_ds ds;
	if (shmctl(shmid, IPC_STAT, &ds) != 0)
		return errno == EACCES ? explain_access(key, true)
		                       : fail(-errno, "cannot stat segment %d: %s", shmid, strerror(errno));
	if (ds.shm_segsz < sizeof(struct shm_header))
		return 0;
	void *p = shmat(shmid, NULL, SHM_RDONLY);
	if (p == (void *)-1)
		return errno == EACCES ? explain_access(key, true)
		                       : fail(-errno, "cannot attach segment %d: %s", shmid, strerror(errno));
	struct shm_header *hd = p;
	int unfinished = atomic_load_explicit((_Atomic uint64_t *)(uintptr_t)&hd->magic,
	                                      memory_order_acquire) == SHMKV_MAGIC_CREATING &&
	                 !creator_alive(hd);
	if (unfinished && remove) {
		if (shmctl(shmid, IPC_RMID, NULL) != 0) {
			int e = errno;
			shmdt(p);
			return fail(-e, "cannot remove segment %d: %s", shmid, strerror(e));
		}
		/* nobody else can use it: read its record without the lock; its
		 * data segment is removed only if its creator made it */
		uint64_t word = atomic_load(&hd->current);
		if (word) {
			struct build_leftover w = {
				.table_id = hd->table_id, .gen_min = word >> 32, .gen_max = word >> 32,
				.pid = hd->creator_pid, .since = (uint64_t)hd->created,
				.pid_made = true, /* a copy of a root names another's data */
			};
			leftover_remove((int)(uint32_t)word, -1, &w);
		}
		pending_cleanup(hd, -1);
	}
	shmdt(p);
	return unfinished;
}

static int segment_at(key_t key, int *shmid)
{
	*shmid = shmget(key, 0, 0);
	if (*shmid >= 0)
		return 0;
	if (errno == ENOENT)
		return fail(-ENOENT, "no shared memory segment at key 0x%08x", (unsigned)key);
	return errno == EACCES ? explain_access(key, true) : fail(-errno, "shmget: %s", strerror(errno));
}

int hashtable_unfinished_key(key_t key)
{
	int shmid, rc = segment_at(key, &shmid);
	return rc ? rc : unfinished_by_id(shmid, key, false);
}

int hashtable_remove_key(key_t key)
{
	int shmid, rc = segment_at(key, &shmid);
	if (rc)
		return rc;
	if ((rc = unfinished_by_id(shmid, key, true)) != 0) /* removed, or an error */
		return rc < 0 ? rc : 0;
	/* A table whose data segment is damaged or foreign is left alone, as
	 * any damaged table; one whose data segment is gone is removed. */
	struct hashtable *h;
	rc = attach_mode(shmid, key, true, true, &h);
	if (rc == -EIDRM)
		rc = attach_mode(shmid, key, true, false, &h);
	if (rc)
		return rc;
	rc = table_remove(h);
	table_free(h);
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

static bool slot_live(const struct generation_map *h, const unsigned char *key_copy)
{
	return memcmp(key_copy, h->empty, h->g.key_size) != 0 &&
	       memcmp(key_copy, h->deleted, h->g.key_size) != 0;
}

/* A consistent copy of bucket b into buf (bucket_bytes).  Returns 0 or
 * HASHTABLE_EDEADWRITER. */
static int bucket_snapshot(const struct generation_map *h, uint64_t b, unsigned char *buf)
{
	_Atomic uint32_t *stripe = stripe_of(h, b);
	for (;;) {
		uint32_t v;
		int rc = read_seqbegin(h, stripe, &v);
		if (rc)
			return rc;
		shared_load(buf, bucket_at(h, b), h->g.bucket_bytes);
		if (!read_seqretry(stripe, v))
			return 0;
	}
}

static int iterate_in(struct generation_map *h, uint64_t *cursor, void *key, void *value)
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
					memcpy(value, bucket_value(&h->g, buf, i), h->g.value_size);
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
static uint64_t probe_distance(const struct generation_map *h, const unsigned char *key, uint64_t at,
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

static int probe_histogram_in(struct generation_map *h, uint64_t *hist, size_t n)
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
static double sample_miss_probes(const struct generation_map *h)
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

/* stats.relocations, read between moves (under the `moves` seqlock).  A
 * caller of hashtable_iterate compares it before and after its walk: a move
 * that overlaps the walk (and may have shown a key twice or not at all) ends
 * after the first read and begins before the second, so the second counts it
 * and the first does not.  With a dead writer's move left half done the
 * count is read as it stands (recovery finishes that move). */
static uint64_t relocations_read(struct generation_map *h)
{
	_Atomic uint32_t *moves = &h->hdr->moves;
	uint64_t n;
	uint32_t v;
	do {
		if (read_seqbegin(h, moves, &v) != 0)
			return atomic_load_explicit(&h->hdr->relocations, memory_order_relaxed);
		n = atomic_load_explicit(&h->hdr->relocations, memory_order_relaxed);
	} while (read_seqretry(moves, v));
	return n;
}

static int stats_in(struct generation_map *h, struct hashtable_stats *st)
{
	if (!h || !st)
		return fail(-EINVAL, "NULL table handle or stats");
	const struct shm_header *hd = h->hdr;
	memset(st, 0, sizeof *st);
	st->format_version = hd->format;
	st->key_size = h->g.key_size;
	st->value_size = h->g.value_size;
	/* bytes per slot, padding included: a split bucket's share per slot */
	st->slot_size = h->g.bucket_bytes / h->g.slots_per_bucket;
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
	st->recoveries = atomic_load_explicit(&h->root->recoveries, memory_order_relaxed);
	st->relocations = relocations_read(h);
	st->shmid = h->shmid;
	st->ipc_key = h->ipc_key;
	st->creator_pid = hd->creator_pid;
	st->created = hd->created;
	st->hugetlb = (hd->flags & SEG_HUGETLB) != 0;
	st->name_dev = hd->name_dev;
	st->name_ino = hd->name_ino;
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
static int verify_bucket(struct generation_map *h, uint64_t b, const unsigned char *buf,
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

static int verify_totals(struct generation_map *h, const uint16_t *counts, const uint32_t *exact,
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

static int verify_walk(struct generation_map *h)
{
	const uint64_t n = h->g.nbuckets;
	for (uint64_t s = 0; s < h->g.nstripes; s++) {
		uint32_t v;
		int rc = read_seqbegin(h, &h->stripes[s], &v); /* waits out a live writer */
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
static uint64_t write_generation(const struct generation_map *h)
{
	const struct shm_header *hd = h->hdr;
	return atomic_load_explicit(&hd->inserts, memory_order_acquire) +
	       atomic_load_explicit(&hd->updates, memory_order_acquire) +
	       atomic_load_explicit(&hd->deletes, memory_order_acquire) +
	       atomic_load_explicit(&hd->relocations, memory_order_acquire) +
	       atomic_load_explicit(&h->root->recoveries, memory_order_acquire);
}

/* Whether the operation in the journal was abandoned by a dead writer: the
 * journal busy before and after its holder is judged dead, and no operation
 * completed since gen was read.  (A writer bumps its counter before it
 * clears its holder record at unlock: a record read as cleared by a writer
 * that finished shows in the generation.)  *pid: the holder. */
static bool journal_abandoned(const struct generation_map *h, uint64_t gen, pid_t *pid)
{
	uint32_t op = atomic_load_explicit(&h->hdr->journal.op, memory_order_acquire);
	if (op == J_IDLE)
		return false;
	/* acquire (op, then the record): pairs with journal_begin's release of
	 * op, which follows the holder's record */
	*pid = atomic_load_explicit(&h->root->holder_pid, memory_order_acquire);
	bool alive = holder_alive(h);
	return !alive && write_generation(h) == gen &&
	       atomic_load_explicit(&h->hdr->journal.op, memory_order_acquire) == op;
}

/* Without the lock: a problem counts only if no write ran during the walk
 * (a live writer's change in flight looks like one).  A dead writer's
 * unfinished change is reported as such. */
static int verify_unlocked(struct generation_map *h)
{
	int rc = 0;
	for (int attempt = 0; attempt < VERIFY_WALKS; attempt++) {
		uint64_t gen = write_generation(h);
		uint32_t op = atomic_load_explicit(&h->hdr->journal.op, memory_order_acquire);
		rc = verify_walk(h);
		if (rc != HASHTABLE_ECORRUPT)
			return rc;
		pid_t holder = 0;
		if (journal_abandoned(h, gen, &holder)) {
			if ((rc = journal_check(h)))
				return rc; /* a journal no recovery could redo */
			return fail(HASHTABLE_EDEADWRITER, "a writer (pid %d) died in the middle of an "
			                                   "operation; run any update or `shmkv verify "
			                                   "--repair` to complete it", (int)holder);
		}
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

/* ---- generations: replace and grow ---------------------------------------- */

struct hashtable_builder {
	struct hashtable *t;
	struct generation_map *m;   /* the new generation, private until commit */
	struct generation_map *old; /* the current one at begin (the lock keeps it current) */
	int old_shmid;              /* its segment: commit still needs it once old may be freed */
	pthread_t thread;           /* the one that called begin and holds the lock */
	uint64_t count, collisions, max_probe;
};

/* Whether the host can hold a data segment of `bytes` alongside the ones
 * in use: kernel.shmmax and kernel.shmall.  0, or the diagnosis. */
static int room_check(uint64_t bytes, uint64_t current_bytes)
{
	uint64_t shmmax = read_proc_u64("/proc/sys/kernel/shmmax", UINT64_MAX);
	if (bytes > shmmax)
		return fail(-EINVAL, "the new generation needs a segment of %llu bytes, more than "
		                     "kernel.shmmax (%llu) allows; raise it with: sysctl -w "
		                     "kernel.shmmax=%llu", (unsigned long long)bytes,
		            (unsigned long long)shmmax, (unsigned long long)bytes);
	uint64_t shmall = read_proc_u64("/proc/sys/kernel/shmall", UINT64_MAX);
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), segments, used;
	segments_in_use(page, &segments, &used);
	uint64_t need = (bytes + page - 1) / page;
	if (shmall != UINT64_MAX && used + need > shmall)
		return fail(-ENOSPC, "the new generation (%llu bytes) cannot sit alongside the current "
		                     "one (%llu bytes) until the replace commits: kernel.shmall allows "
		                     "%llu pages of %llu bytes and %llu are in use; raise it with: "
		                     "sysctl -w kernel.shmall=%llu, or remove unused segments (ipcs -m, "
		                     "ipcrm -m ID)", (unsigned long long)bytes,
		            (unsigned long long)current_bytes, (unsigned long long)shmall,
		            (unsigned long long)page, (unsigned long long)used,
		            (unsigned long long)(used + need));
	return 0;
}

/* The new generation's configuration: cfg's geometry, or the current
 * one's; the widths, sentinels and flags always the table's. */
static int replace_config(struct hashtable *t, const struct generation_map *cur,
                          const struct hashtable_config *cfg, struct hashtable_config *out,
                          double *fraction)
{
	const unsigned char *root = (const unsigned char *)t->root;
	*out = (struct hashtable_config){
		.key_size = t->key_size,
		.value_size = t->value_size,
		.empty_key = root + t->root->off_empty,
		.deleted_key = root + t->root->off_deleted,
		.max_load = cur->hdr->max_load,
		.capacity = cur->segment_bytes,
		.flags = cur->hdr->flags & SEG_HUGETLB ? HASHTABLE_HUGETLB : 0,
	};
	if (cfg) {
		if (cfg->key_size != t->key_size || cfg->value_size != t->value_size)
			return fail(-EINVAL, "a replace keeps the table's widths: it has %u-byte keys and "
			                     "%u-byte values, the configuration asks for %u and %u",
			            t->key_size, t->value_size, cfg->key_size, cfg->value_size);
		if ((cfg->empty_key && memcmp(cfg->empty_key, out->empty_key, t->key_size)) ||
		    (cfg->deleted_key && memcmp(cfg->deleted_key, out->deleted_key, t->key_size)))
			return fail(-EINVAL, "a replace keeps the table's sentinels: the configuration's "
			                     "empty or deleted key differs from the table's");
		out->capacity = cfg->capacity;
		out->entries = cfg->entries;
		if (cfg->max_load != 0)
			out->max_load = cfg->max_load;
		if (!cfg->capacity && !cfg->entries)
			out->capacity = cur->segment_bytes;
		out->flags = cfg->flags & HASHTABLE_HUGETLB;
	}
	*fraction = load_fraction(out->max_load);
	if (*fraction == 0)
		return fail(-EINVAL, "load limit %g out of range: give a fraction in (0, %g] or a "
		                     "percent in (1, %g]", out->max_load, MAX_LOAD, MAX_LOAD * 100);
	return 0;
}

/* begin, with the writer lock held and `cur` the current map. */
static int replace_begin_locked(struct hashtable *t, struct generation_map *cur,
                                const struct hashtable_config *cfg, struct hashtable_builder **out)
{
	struct hashtable_config c;
	double fraction;
	struct geometry g;
	uint64_t size;
	int rc = replace_config(t, cur, cfg, &c, &fraction);
	if (rc || (rc = data_size(&c, fraction, &size, &g)) || (rc = room_check(size, cur->segment_bytes)))
		return rc;
	uint64_t gen = (cur->word >> 32) + 1;
	if (gen > UINT32_MAX)
		return fail(-EOVERFLOW, "the table has had %llu generations, the most a root can count; "
		                        "dump it, remove it and load it again",
		            (unsigned long long)(gen - 1));
	struct hashtable_builder *b = calloc(1, sizeof *b);
	if (!b)
		return fail(-ENOMEM, "out of memory");
	build_record(t->root, size, gen);
	/* The new mapping may land where another thread's reclaim just
	 * detached an old one (its shmdt, then our shmat and first stores:
	 * ordered by the kernel).  Every reclaim runs under switch_lock, so
	 * holding it here makes that order visible to ThreadSanitizer, which
	 * does not see shmat.  Nothing else waits for it meanwhile: no switch
	 * can be due while this thread holds the writer lock. */
	pthread_mutex_lock(&t->switch_lock);
	rc = data_create(t->root, t->shmid, t->ipc_key, &g, size, &c, fraction, gen, &b->m);
	pthread_mutex_unlock(&t->switch_lock);
	if (rc) {
		build_record_clear(t->root);
		free(b);
		return rc;
	}
	b->t = t;
	b->old = cur;
	b->old_shmid = cur->shmid;
	b->thread = pthread_self();
	*out = b;
	return 0;
}

int hashtable_replace_begin(struct hashtable *h, const struct hashtable_config *cfg,
                            struct hashtable_builder **out)
{
	if (!h || !out)
		return fail(-EINVAL, "NULL table handle or builder");
	*out = NULL;
	if (h->readonly)
		return fail(-EROFS, "the table was opened read-only (HASHTABLE_RDONLY); a replace "
		                    "needs a handle opened without it");
	struct generation_map *cur = NULL;
	int rc = writer_lock(h, &cur);
	if (rc < 0)
		return rc;
	generation_recover_locked(h); /* a dead builder's leftovers first */
	rc = replace_begin_locked(h, cur, cfg, out);
	if (rc) {
		writer_unlock_exit(h, cur);
		return rc;
	}
	reader_exit(h, cur); /* the lock keeps it current and attached */
	return 0;
}

/* Raises the counts and filter bits of the first d buckets of a path. */
static void builder_path_raise(struct generation_map *h, uint64_t home, uint64_t step, uint64_t d,
                               uint16_t bit)
{
	const uint64_t n = h->g.nbuckets;
	uint64_t p = home;
	for (uint64_t i = 0; i < d; i++, p = next_bucket(p, step, n)) {
		uint16_t o = atomic_load_explicit(&h->overflow[p], memory_order_relaxed);
		atomic_store_explicit(&h->overflow[p], overflow_raised(o, bit), memory_order_relaxed);
	}
}

/* builder_insert for 8-byte keys in 16-byte slots (k8v8): whole-word
 * compares, no calls.  Same results. */
static int builder_insert_k8v8(struct hashtable_builder *b, uint64_t key, uint64_t value,
                               uint64_t hash)
{
	struct generation_map *h = b->m;
	const uint64_t n = h->g.nbuckets, empty = h->empty_u64;
	uint64_t home = home_bucket(hash, n), step = probe_step(hash, n), bkt = home;
	for (uint64_t d = 0; d < n; d++, bkt = next_bucket(bkt, step, n)) {
		uint64_t *slot = (uint64_t *)(void *)bucket_at(h, bkt);
		/* masks, not a branch per slot: occupancy is random, so per-slot
		 * branches mispredict */
		uint64_t s0 = slot[0], s1 = slot[2], s2 = slot[4], s3 = slot[6];
		unsigned match = (unsigned)(s0 == key) | (unsigned)(s1 == key) << 1 |
		                 (unsigned)(s2 == key) << 2 | (unsigned)(s3 == key) << 3;
		unsigned free_mask = (unsigned)(s0 == empty) | (unsigned)(s1 == empty) << 1 |
		                     (unsigned)(s2 == empty) << 2 | (unsigned)(s3 == empty) << 3;
		if (match) {
			slot[2 * (unsigned)__builtin_ctz(match) + 1] = value;
			return 1;
		}
		if (!free_mask)
			continue; /* full: keys put earlier may have passed it */
		uint64_t *free_slot = slot + 2 * (unsigned)__builtin_ctz(free_mask);
		if (b->count >= h->max_count)
			return AT_LOAD_LIMIT;
		free_slot[0] = key;
		free_slot[1] = value;
		if (d)
			builder_path_raise(h, home, step, d, filter_bit(hash));
		b->count++;
		b->collisions += d;
		if (d > b->max_probe)
			b->max_probe = d;
		return 0;
	}
	return AT_LOAD_LIMIT;
}

/* The builder's private insert: nobody reads the segment before commit,
 * so no seqlock, journal or lock; plain stores keep the overflow counts
 * and filters exact.  0 inserted, 1 overwrote, -ENOMEM at the limit. */
static int builder_insert(struct hashtable_builder *b, const void *key, const void *value)
{
	struct generation_map *h = b->m;
	if (h->k8v8) {
		uint64_t k, v;
		memcpy(&k, key, 8);
		memcpy(&v, value, 8);
		return builder_insert_k8v8(b, k, v, hash_u64(k, h->seed));
	}
	const uint64_t n = h->g.nbuckets;
	const uint32_t spb = h->g.slots_per_bucket, ss = h->g.slot_size, ks = h->g.key_size;
	uint64_t hash = key_hash(h, key);
	uint64_t home = home_bucket(hash, n), step = probe_step(hash, n), bkt = home;
	for (uint64_t d = 0; d < n; d++, bkt = next_bucket(bkt, step, n)) {
		unsigned char *bucket = bucket_at(h, bkt);
		unsigned char *free_slot = NULL;
		uint32_t free_i = 0;
		for (uint32_t i = 0; i < spb; i++) {
			unsigned char *p = bucket + i * ss;
			if (memcmp(p, h->empty, ks) == 0) {
				if (!free_slot) {
					free_slot = p;
					free_i = i;
				}
			} else if (memcmp(p, key, ks) == 0) {
				memcpy(bucket_value(&h->g, bucket, i), value, h->g.value_size);
				return 1;
			}
		}
		if (!free_slot)
			continue; /* full: keys put earlier may have passed it */
		/* no deletes in a build: a key put earlier found this bucket as
		 * it is (or emptier), so it did not pass it */
		if (b->count >= h->max_count)
			return AT_LOAD_LIMIT;
		memcpy(free_slot, key, ks);
		memcpy(bucket_value(&h->g, bucket, free_i), value, h->g.value_size);
		builder_path_raise(h, home, step, d, filter_bit(hash));
		b->count++;
		b->collisions += d;
		if (d > b->max_probe)
			b->max_probe = d;
		return 0;
	}
	return AT_LOAD_LIMIT;
}

/* The writer lock belongs to the thread that called begin: another
 * thread could not release it (a robust mutex returns EPERM). */
static int builder_thread(const struct hashtable_builder *b)
{
	if (pthread_equal(b->thread, pthread_self()))
		return 0;
	return fail(-EINVAL, "a builder must be used from the thread that called "
	                     "hashtable_replace_begin (it holds the writer lock)");
}

int hashtable_builder_put(struct hashtable_builder *b, const void *key, const void *value)
{
	if (!b || !key || (!value && b->m->g.value_size))
		return fail(-EINVAL, "NULL builder, key or value");
	int rc = builder_thread(b);
	if (rc)
		return rc;
	if (is_sentinel(b->m, key))
		return fail(-EINVAL, "the key equals the table's empty or deleted sentinel");
	rc = builder_insert(b, key, value ? value : "");
	if (rc == AT_LOAD_LIMIT)
		return fail(-ENOMEM, "the new generation is at its load limit (%llu keys); begin the "
		                     "replace with a larger capacity or more entries",
		            (unsigned long long)b->m->max_count);
	return rc;
}

/* How many records ahead hashtable_builder_put_batch fetches the home
 * bucket and overflow word of: the build does little work a record (some
 * 30 ns) and a miss here is slow (a TLB miss too, on 4 KiB pages): 16, 32 and
 * 64 ahead measured 5.2, 5.2 and 6.7 M records/s at 16M entries. */
#define BUILDER_BATCH_AHEAD 64

/* Whether a k8v8 bucket's four keys hold key (match) or the empty key
 * (free), as masks of slots: no branch a slot, since occupancy is random. */
struct k8v8_masks {
	unsigned match, free;
};

static inline struct k8v8_masks k8v8_bucket_masks(const uint64_t *slot, uint64_t key,
                                                  uint64_t empty)
{
	uint64_t s0 = slot[0], s1 = slot[2], s2 = slot[4], s3 = slot[6];
	struct k8v8_masks m;
	m.match = (unsigned)(s0 == key) | (unsigned)(s1 == key) << 1 |
	          (unsigned)(s2 == key) << 2 | (unsigned)(s3 == key) << 3;
	m.free = (unsigned)(s0 == empty) | (unsigned)(s1 == empty) << 1 |
	         (unsigned)(s2 == empty) << 2 | (unsigned)(s3 == empty) << 3;
	return m;
}

/* One k8v8 record of a batch, with the builder's count in *count (a
 * register in the caller's loop).  Most records land in their home bucket:
 * no probe, no overflow count to raise, done here; the rest go to
 * builder_insert_k8v8, which walks the path and raises the counts.  The
 * home bucket holds the key if any bucket does: a key put earlier went
 * past it only when it was full, and nothing is deleted in a build.
 * 0 inserted, 1 overwrote, AT_LOAD_LIMIT. */
static inline __attribute__((always_inline)) int builder_put_k8v8(struct hashtable_builder *b,
                                                                   uint64_t *count, uint64_t k,
                                                                   uint64_t v, uint64_t hash)
{
	const struct generation_map *h = b->m;
	uint64_t *slot = (uint64_t *)(void *)bucket_at(h, home_bucket(hash, h->g.nbuckets));
	struct k8v8_masks m = k8v8_bucket_masks(slot, k, h->empty_u64);
	if (m.match) {
		slot[2 * (unsigned)__builtin_ctz(m.match) + 1] = v;
		return 1;
	}
	if (m.free) {
		if (__builtin_expect(*count >= h->max_count, 0))
			return AT_LOAD_LIMIT;
		uint64_t *free_slot = slot + 2 * (unsigned)__builtin_ctz(m.free);
		free_slot[0] = k;
		free_slot[1] = v;
		++*count;
		return 0;
	}
	b->count = *count;
	int r = builder_insert_k8v8(b, k, v, hash);
	*count = b->count;
	return r;
}

/* hashtable_builder_put_batch for k8v8.  Two passes over each chunk of
 * BUILDER_BATCH_AHEAD records, software-pipelined: the keys of the next
 * chunk are hashed and their home buckets prefetched for writing while
 * this chunk is inserted, so each bucket's miss has a chunk's work to
 * overlap with.  The overflow words are not fetched ahead: only a record
 * whose home bucket is full writes one.  Same results as a builder_put a
 * record; on failure *applied is the failing record's index. */
static long builder_put_batch_k8v8(struct hashtable_builder *b, size_t n, const unsigned char *kp,
                                   const unsigned char *vp, size_t *applied)
{
	const struct generation_map *h = b->m;
	const uint64_t nb = h->g.nbuckets, empty = h->empty_u64, deleted = h->deleted_u64;
	const uint64_t seed = h->seed, max_count = h->max_count;
	uint64_t hashes[2][BUILDER_BATCH_AHEAD]; /* this chunk's, the next chunk's */
	uint64_t count = b->count;
	long inserted = 0;
	size_t i = 0; /* the next record to put; on failure, the failing one */
	int rc = 0;
	for (size_t j = 0; j < n && j < BUILDER_BATCH_AHEAD; j++) {
		uint64_t k;
		memcpy(&k, kp + 8 * j, 8);
		hashes[0][j] = hash_u64(k, seed);
		__builtin_prefetch(bucket_at(h, home_bucket(hashes[0][j], nb)), 1);
	}
	for (size_t c = 0; i < n; c ^= 1) {
		const size_t end = n - i < BUILDER_BATCH_AHEAD ? n : i + BUILDER_BATCH_AHEAD;
		const size_t next_end = n - end < BUILDER_BATCH_AHEAD ? n : end + BUILDER_BATCH_AHEAD;
		for (size_t j = end; j < next_end; j++) {
			uint64_t k;
			memcpy(&k, kp + 8 * j, 8);
			uint64_t hash = hash_u64(k, seed);
			hashes[c ^ 1][j - end] = hash;
			__builtin_prefetch(bucket_at(h, home_bucket(hash, nb)), 1);
		}
		for (; i < end; i++) {
			uint64_t k, v, hash = hashes[c][i % BUILDER_BATCH_AHEAD];
			memcpy(&k, kp + 8 * i, 8);
			memcpy(&v, vp + 8 * i, 8);
			if (__builtin_expect(k == empty || k == deleted, 0)) {
				rc = -EINVAL;
				goto out;
			}
			int r = builder_put_k8v8(b, &count, k, v, hash);
			if (r == AT_LOAD_LIMIT) {
				rc = AT_LOAD_LIMIT;
				goto out;
			}
			inserted += r == 0;
		}
	}
out:
	b->count = count;
	if (applied)
		*applied = i;
	if (rc == -EINVAL)
		return fail(-EINVAL, "record %zu: the key equals the table's empty or deleted "
		                     "sentinel", i);
	if (rc == AT_LOAD_LIMIT)
		return fail(-ENOMEM, "record %zu: the new generation is at its load limit (%llu "
		                     "keys); begin the replace with a larger capacity or more "
		                     "entries", i, (unsigned long long)max_count);
	return inserted;
}

long hashtable_builder_put_batch(struct hashtable_builder *b, size_t n, const void *keys,
                                 const void *values, size_t *applied)
{
	if (applied)
		*applied = 0;
	if (!b || (n && (!keys || (!values && b->m->g.value_size))))
		return fail(-EINVAL, "NULL builder, keys or values");
	if (n > LONG_MAX)
		return fail(-EINVAL, "a batch of %zu records: at most LONG_MAX", n);
	int rc = builder_thread(b);
	if (rc)
		return rc;
	const struct generation_map *h = b->m;
	const unsigned char *kp = keys, *vp = values ? values : (const void *)"";
	const size_t ks = h->g.key_size, vs = h->g.value_size;
	long inserted = 0;
	if (h->k8v8)
		return builder_put_batch_k8v8(b, n, kp, vp, applied);
	for (size_t i = 0; i < n && i < BUILDER_BATCH_AHEAD; i++)
		prefetch_build_path(h, key_hash(h, kp + i * ks));
	for (size_t i = 0; i < n; i++) {
		if (i + BUILDER_BATCH_AHEAD < n)
			prefetch_build_path(h, key_hash(h, kp + (i + BUILDER_BATCH_AHEAD) * ks));
		const unsigned char *k = kp + i * ks;
		if (is_sentinel(h, k))
			return fail(-EINVAL, "record %zu: the key equals the table's empty or deleted "
			                     "sentinel", i);
		rc = builder_insert(b, k, vp + i * vs);
		if (rc == AT_LOAD_LIMIT)
			return fail(-ENOMEM, "record %zu: the new generation is at its load limit (%llu "
			                     "keys); begin the replace with a larger capacity or more "
			                     "entries", i, (unsigned long long)h->max_count);
		inserted += rc == 0;
		if (applied)
			*applied = i + 1;
	}
	return inserted;
}

/* Publishes the build, under the lock the builder holds: counters into the
 * header, the old segment recorded as retiring, the current word (the one
 * publishing step), then the old segment marked for removal. */
static int commit_locked(struct hashtable_builder *b)
{
	struct hashtable *t = b->t;
	struct shm_header *r = t->root, *hd = b->m->hdr;
	atomic_store_explicit(&hd->count, b->count, memory_order_relaxed);
	atomic_store_explicit(&hd->collisions, b->collisions, memory_order_relaxed);
	atomic_store_explicit(&hd->max_probe, b->max_probe, memory_order_relaxed);
	atomic_store_explicit(&hd->inserts, b->count, memory_order_relaxed);
	atomic_store_explicit(&r->retiring_shmid, b->old_shmid, memory_order_seq_cst);
	test_kill_point("retiring-recorded");
	/* seq_cst: the segment's contents and header are visible to whoever
	 * loads the word (acquire in reader_enter and generation_switch).
	 * From here on b->old may be freed: another thread of this process can
	 * follow the new word and reclaim the old map (hence b->old_shmid). */
	atomic_store_explicit(&r->current, b->m->word, memory_order_seq_cst);
	test_kill_point("published");
	shmctl(b->old_shmid, IPC_RMID, NULL); /* freed when its last process detaches */
	test_kill_point("old-removed");
	atomic_store_explicit(&r->retiring_shmid, -1, memory_order_seq_cst);
	build_record_clear(r);
	/* a removal that ran meanwhile removed the root first: our new
	 * segment is the table's no more (see table_remove) */
	struct shmid_ds ds;
	if (shmctl(t->shmid, IPC_STAT, &ds) != 0 || (ds.shm_perm.mode & SHM_DEST)) {
		shmctl(b->m->shmid, IPC_RMID, NULL);
		return fail(-EIDRM, "the table at key 0x%08x was removed during the replace; the new "
		                    "generation was removed with it", (unsigned)t->ipc_key);
	}
	return 0;
}

int hashtable_replace_commit(struct hashtable_builder *b)
{
	if (!b)
		return fail(-EINVAL, "NULL builder");
	int rc = builder_thread(b);
	if (rc)
		return rc;
	struct hashtable *t = b->t;
	rc = commit_locked(b);
	pthread_mutex_lock(&t->switch_lock);
	map_publish_locked(t, b->m); /* the builder's mapping, no re-attach */
	pthread_mutex_unlock(&t->switch_lock);
	writer_unlock(b->m);
	free(b);
	return rc;
}

void hashtable_replace_abort(struct hashtable_builder *b)
{
	if (!b || builder_thread(b))
		return;
	shmctl(b->m->shmid, IPC_RMID, NULL);
	build_record_clear(b->t->root);
	writer_unlock(b->old);
	map_free(b->m);
	free(b);
}

/* Copies every live key of `cur` into the builder (under the lock: still). */
static int copy_live(struct hashtable_builder *b, const struct generation_map *cur)
{
	const uint64_t slots = cur->g.nbuckets * cur->g.slots_per_bucket;
	for (uint64_t s = 0; s < slots; s++) {
		const unsigned char *p = slot_at(cur, s);
		if (slot_is_free(cur, p))
			continue;
		int rc = builder_insert(b, p, value_of(cur, p));
		if (rc == AT_LOAD_LIMIT)
			return fail(-ENOMEM, "the new generation cannot hold the table's %llu keys",
			            (unsigned long long)atomic_load(&cur->hdr->count));
	}
	return 0;
}

/* Grows into a generation sized for `entries`, under the lock; the
 * handle's map is the new one after.  0 or a negative code (the current
 * generation is untouched). */
static int grow_locked(struct hashtable *t, struct generation_map *cur, uint64_t entries)
{
	struct hashtable_config cfg = {.key_size = t->key_size, .value_size = t->value_size,
	                               .entries = entries, .max_load = cur->hdr->max_load,
	                               .flags = cur->hdr->flags & SEG_HUGETLB ? HASHTABLE_HUGETLB : 0};
	struct hashtable_builder *b;
	generation_recover_locked(t);
	int rc = replace_begin_locked(t, cur, &cfg, &b);
	if (rc)
		return rc;
	if ((rc = copy_live(b, cur))) {
		shmctl(b->m->shmid, IPC_RMID, NULL);
		build_record_clear(t->root);
		map_free(b->m);
		free(b);
		return rc;
	}
	rc = commit_locked(b);
	pthread_mutex_lock(&t->switch_lock);
	map_publish_locked(t, b->m);
	pthread_mutex_unlock(&t->switch_lock);
	free(b);
	return rc;
}

int hashtable_grow(struct hashtable *h, uint64_t entries)
{
	if (!h)
		return fail(-EINVAL, "NULL table handle");
	if (h->readonly)
		return fail(-EROFS, "the table was opened read-only (HASHTABLE_RDONLY); growing it "
		                    "needs a handle opened without it");
	struct generation_map *cur = NULL;
	int rc = writer_lock(h, &cur);
	if (rc < 0)
		return rc;
	uint64_t count = atomic_load_explicit(&cur->hdr->count, memory_order_relaxed);
	if (entries < count) {
		writer_unlock_exit(h, cur);
		return fail(-EINVAL, "the table holds %llu keys; a generation for %llu entries "
		                     "cannot hold them", (unsigned long long)count,
		            (unsigned long long)entries);
	}
	reader_exit(h, cur); /* the lock keeps it current and attached */
	rc = grow_locked(h, cur, entries);
	atomic_store_explicit(&h->root->holder_pid, 0, memory_order_release);
	pthread_mutex_unlock(&h->root->lock.mutex);
	return rc;
}

uint64_t hashtable_generation(struct hashtable *h)
{
	if (!h)
		return 0;
	return atomic_load_explicit(&h->root->current, memory_order_acquire) >> 32;
}

static void segment_info(int shmid, int role, uint64_t gen, struct hashtable_segment_info *out)
{
	struct shmid_ds ds;
	*out = (struct hashtable_segment_info){.shmid = shmid, .role = role, .generation = gen};
	if (shmctl(shmid, IPC_STAT, &ds) == 0) {
		out->bytes = ds.shm_segsz;
		out->nattch = ds.shm_nattch;
		out->creator_pid = ds.shm_cpid;
		out->last_pid = ds.shm_lpid;
	}
}

/* Whether key-0 segment `id` is a data segment of table `table_id`, and
 * its generation. */
static bool data_of_table(int id, uint64_t table_id, uint64_t *gen)
{
	void *p = shmat(id, NULL, SHM_RDONLY);
	if (p == (void *)-1)
		return false;
	const struct shm_header *hd = p;
	bool ours = hd->magic == SHMKV_DATA_MAGIC && hd->table_id == table_id;
	*gen = hd->generation;
	shmdt(p);
	return ours;
}

long hashtable_segments(struct hashtable *h, struct hashtable_segment_info *out, size_t n)
{
	if (!h || (n && !out))
		return fail(-EINVAL, "NULL table handle or output array");
	uint64_t word = atomic_load_explicit(&h->root->current, memory_order_acquire);
	int cur = (int)(uint32_t)word;
	int pending = -1;
	if (atomic_load(&h->root->pending_pid))
		pending = atomic_load(&h->root->pending_shmid);
	size_t k = 0;
	struct hashtable_segment_info info;
	segment_info(h->shmid, HASHTABLE_SEG_ROOT, 0, &info);
	if (k < n)
		out[k] = info;
	k++;
	segment_info(cur, HASHTABLE_SEG_CURRENT, word >> 32, &info);
	if (k < n)
		out[k] = info;
	k++;
	if (pending >= 0 && pending != cur) {
		segment_info(pending, HASHTABLE_SEG_PENDING, atomic_load(&h->root->pending_gen), &info);
		if (k < n)
			out[k] = info;
		k++;
	}
	/* older generations still attached (key 0, marked for removal) and a
	 * dead builder's unrecorded segment (key 0, created by its pid); only
	 * those are attached to read their header, and only if they have the
	 * root's owner, as every data segment of the table does */
	pid_t builder = atomic_load(&h->root->pending_pid);
	struct segment_row root;
	bool have_root = segment_row_of(h->ipc_key, &root) && root.shmid == h->shmid;
	FILE *f = fopen("/proc/sysvipc/shm", "re");
	struct segment_row r;
	while (f && segment_row_next(f, &r)) {
		int id = r.shmid;
		if (r.key != IPC_PRIVATE || id == cur || id == pending)
			continue;
		bool dest = r.flags & SHM_DEST;
		if (!dest && (builder <= 0 || r.cpid != builder))
			continue;
		if (have_root && r.uid != root.uid)
			continue;
		uint64_t gen;
		if (!data_of_table(id, h->table_id, &gen))
			continue;
		/* marked for removal (SHM_DEST): an older generation still held;
		 * not marked: a dead builder's, until the next writer removes it */
		segment_info(id, dest ? HASHTABLE_SEG_RETIRED : HASHTABLE_SEG_PENDING, gen, &info);
		if (k < n)
			out[k] = info;
		k++;
	}
	if (f)
		fclose(f);
	return (long)k;
}

/* ---- the calls: each brackets its work with reader_enter/reader_exit ---- */

/* hashtable_search off its common case: any shape, a generation to
 * follow, a first call of the thread, a version that changed, bad
 * arguments. */
static __attribute__((noinline)) int search_slow(struct hashtable *t, void *k, void *datum)
{
	if (!t)
		return fail(-EINVAL, "NULL table handle");
	struct generation_map *h = reader_get(t);
	if (__builtin_expect(!h, 0))
		return reader_failure;
	int rc = search_in(h, k, datum);
	reader_exit(t, h);
	return rc;
}

/* reader_leave's reclaim, apart so that the hit path can tail-call it
 * and keep no frame of its own.  Returns rc. */
static __attribute__((noinline)) int search_leave_reclaim(struct hashtable *t, int rc)
{
	retired_reclaim(t);
	return rc;
}

/* reader_leave for hashtable_search (the same steps, and the same reasons),
 * returning rc. */
static inline __attribute__((always_inline)) int search_leave(struct hashtable *t,
                                                              struct reader_record *rec, int rc)
{
#ifdef SHMKV_BENCH_NO_GENERATION_CHECK
	(void)t;
	(void)rec;
	return rc;
#endif
	atomic_store_explicit(&rec->inside, NULL, memory_order_release);
	if (__builtin_expect(atomic_load_explicit(&t->retired_pending, memory_order_relaxed), 0))
		return search_leave_reclaim(t, rc);
	return rc;
}

#ifdef SHMKV_BENCH_NO_GENERATION_CHECK
#define SEARCH_RECORD() ((struct reader_record *)(uintptr_t)1) /* unused */
#else
#define SEARCH_RECORD() my_record
#endif

/* The map this thread announced in hashtable_search (passing it, and the
 * record, to the tail-called helpers would keep two more values live
 * across the hit path).  NULL when another call of this thread ran in
 * between (a signal handler's; its leave cleared the record, and its
 * SEARCH_SEEN overwrote ours): the helpers then search afresh
 * (search_slow), though the calls are not async-signal-safe (hashtable.h). */
#ifdef SHMKV_BENCH_NO_GENERATION_CHECK
#define SEARCH_MAP(t, rec) atomic_load_explicit(&(t)->map, memory_order_acquire)
#else
#define SEARCH_MAP(t, rec) atomic_load_explicit(&(rec)->inside, memory_order_relaxed)
#endif

/* What hashtable_search's out-of-line steps need from its hit path, kept
 * in the thread's own record (stores to the line the announcement just
 * wrote, where registers would have to be saved and restored, or the
 * work redone): `moves` as read before the home bucket (acquire: the
 * bucket's loads come after it), for a miss to be validated against, and
 * the key's hash. */
#ifdef SHMKV_BENCH_NO_GENERATION_CHECK
static _Thread_local struct reader_record search_seen;
#define SEARCH_SEEN(rec) ((void)(rec), &search_seen)
#else
#define SEARCH_SEEN(rec) (rec)
#endif

/* hashtable_search's whole walk, after its first buckets did not decide:
 * validated against `moves` (lookup_k8v8; the general path if a version
 * changed), from the home bucket again. */
static __attribute__((noinline)) int search_walk(struct hashtable *t, uint64_t key,
                                                 uint64_t hash, void *datum)
{
	struct reader_record *rec = SEARCH_RECORD();
	struct generation_map *m = SEARCH_MAP(t, rec);
	if (__builtin_expect(!m, 0))
		return search_slow(t, &key, datum);
	uint64_t value;
	int rc = lookup_k8v8(m, key, hash, &value);
	if (rc == LOOKUP_SLOW) /* a version changed: the general path, same hash */
		rc = lookup(m, &key, hash, &value);
	if (rc == 0)
		memcpy(datum, &value, 8);
	return search_leave(t, rec, rc);
}

/* search_past_home's hits further on the path (k8v8_walk_hit): the key's
 * home overflow word said a key like it passes. */
static __attribute__((noinline)) int search_walk_hits(struct hashtable *t, uint64_t key,
                                                      uint64_t hash, void *datum)
{
	struct reader_record *rec = SEARCH_RECORD();
	struct generation_map *m = SEARCH_MAP(t, rec);
	if (__builtin_expect(!m, 0))
		return search_slow(t, &key, datum);
	uint64_t value;
	int rc = k8v8_walk_hit(m, key, hash, &value);
	if (__builtin_expect(rc != 0, 0))
		return search_walk(t, key, hash, datum); /* BUCKET_LACKS, LOOKUP_SLOW */
	memcpy(datum, &value, 8);
	return search_leave(t, rec, 0);
}

/* hashtable_search after its home bucket, read under an even unchanged
 * version, did not hold the key (k8v8_home_hit's BUCKET_LACKS), inside
 * the map the fast path entered: the next buckets while the home's
 * overflow word says a key like it passes (hits there need no `moves`:
 * search_walk_hits); else a miss, valid if `moves` is still the even
 * value hashtable_search read before the home bucket (SEARCH_SEEN): a
 * key present throughout and not moved, absent from the home bucket, lay
 * further on its path throughout, so by Invariant C the home's word had
 * its bit when it was read.  Anything undecided walks again
 * (search_walk).  Each a tail call, so that a miss keeps no frame. */
static __attribute__((noinline)) int search_past_home(struct hashtable *t, void *k,
                                                      void *datum)
{
	struct reader_record *rec = SEARCH_RECORD();
	struct generation_map *m = SEARCH_MAP(t, rec);
	if (__builtin_expect(!m, 0))
		return search_slow(t, k, datum);
	uint64_t key;
	memcpy(&key, k, 8);
	if (key == m->empty_u64 || key == m->deleted_u64)
		return search_slow(t, k, datum); /* reports the sentinel */
	const uint64_t hash = SEARCH_SEEN(rec)->hash_seen;
	const uint64_t b = home_bucket(hash, m->g.nbuckets);
	uint16_t ov = atomic_load_explicit(&m->overflow[b], memory_order_relaxed);
	if (passes(ov, hash)) { /* a hit further on, mostly in the next bucket */
		const uint64_t n = m->g.nbuckets;
		uint64_t value, second = b + 1 + (((uint64_t)(uint32_t)hash * m->nbuckets_less1) >> 32);
		second = second >= n ? second - n : second;
		if (__builtin_expect(k8v8_bucket(m, second, key, &value, false) != 0, 0))
			return search_walk_hits(t, key, hash, datum);
		memcpy(datum, &value, 8);
		return search_leave(t, rec, 0);
	}
	const uint32_t mv = SEARCH_SEEN(rec)->moves_seen;
	if (__builtin_expect((mv & 1) || read_seqretry(&m->hdr->moves, mv), 0))
		return search_walk(t, key, hash, datum); /* a key moved meanwhile */
	return search_leave(t, rec, -1);
}

/* hashtable_search after its home bucket's version was odd or changed, or
 * for a sentinel key: the whole walk (search_walk), or the sentinel's
 * report. */
static __attribute__((noinline)) int search_home_changed(struct hashtable *t, void *k,
                                                         void *datum)
{
	struct generation_map *m = SEARCH_MAP(t, SEARCH_RECORD());
	if (__builtin_expect(!m, 0))
		return search_slow(t, k, datum);
	uint64_t key;
	memcpy(&key, k, 8);
	if (key == m->empty_u64 || key == m->deleted_u64)
		return search_slow(t, k, datum); /* reports the sentinel */
	return search_walk(t, key, hash_u64(key, m->seed), datum);
}

/* hashtable_search after reader_try_k8v8 refused the map it announced (a
 * map of another shape, a commit to follow, a switch raced), its
 * announcement still in place (SEARCH_MAP): the recheck reader_try makes,
 * against the word itself, after the same announcement and fence.  A map
 * still published and current is searched through its shape's read path
 * (the map's `search`, chosen when it was bound) and left: one
 * announcement a call for every shape.  Else the announcement is
 * withdrawn and search_slow starts over (reader_get_slow follows the
 * commit). */
static __attribute__((noinline)) int search_other_shape(struct hashtable *t, void *k,
                                                        void *datum)
{
	struct reader_record *rec = SEARCH_RECORD();
	struct generation_map *m = SEARCH_MAP(t, rec);
#ifndef SHMKV_BENCH_NO_GENERATION_CHECK
	/* acquire, both: as reader_announce's recheck (the reload before the
	 * first read through m) */
	if (__builtin_expect(atomic_load_explicit(&t->map, memory_order_acquire) != m ||
	                     atomic_load_explicit(&t->root->current, memory_order_acquire) !=
	                             m->word, 0)) {
		atomic_store_explicit(&rec->inside, NULL, memory_order_release);
		return search_slow(t, k, datum);
	}
#endif
	return search_leave(t, rec, m->search(m, k, datum));
}

/* The common case, a hit in an 8-byte-key table's home bucket, is straight
 * line, with every helper inlined: enter (reader_try_k8v8), `moves` kept
 * for a miss (SEARCH_SEEN), hash, the home bucket read under its version
 * (k8v8_home_hit), leave.  Single lookups overlap their cache
 * misses only as far as the CPU's reorder window reaches, so each
 * instruction saved here is throughput.  Everything else is a tail call
 * (search_past_home, search_home_changed, search_slow,
 * search_leave_reclaim) taking only the caller's arguments, so the hit
 * path keeps few values live (gcc 12 -O2 still saves two callee-saved
 * registers on it, clang 14 -O2 three: the hash's multiplies take rax and
 * rdx while t, k, datum and the map stay live).  bench/README.md has the
 * instructions of each step (bench/hit_instructions.c counts them). */
int hashtable_search(struct hashtable *t, void *k, void *datum)
{
	struct reader_record *rec = SEARCH_RECORD();
	if (__builtin_expect(t && k && datum && rec, 1)) {
		struct generation_map *m = reader_try_k8v8(t, rec);
		if (__builtin_expect(m != NULL, 1)) {
			struct reader_record *seen = SEARCH_SEEN(rec);
			seen->moves_seen = raw_read_seqbegin(&m->hdr->moves);
			uint64_t key, value;
			memcpy(&key, k, 8);
			int rc = k8v8_home_hit(m, key, &value, &seen->hash_seen);
			if (__builtin_expect(rc == BUCKET_LACKS, 0))
				return search_past_home(t, k, datum);
			if (__builtin_expect(rc != 0, 0))
				return search_home_changed(t, k, datum);
			memcpy(datum, &value, 8);
			return search_leave(t, rec, 0);
		}
		return search_other_shape(t, k, datum); /* still announced */
	}
	return search_slow(t, k, datum);
}

/* hashtable_search_batch for any n: entered once, the batch loop of the
 * map's shape (search_batch_in).  Apart, so that a batch of one does not
 * set up its frame. */
static __attribute__((noinline)) long search_batch_entered(struct hashtable *t, size_t n,
                                                           const void *keys, void *values,
                                                           int *found)
{
	struct generation_map *h = NULL;
	if (!t)
		return fail(-EINVAL, "NULL table handle");
	int rc = reader_enter(t, &h);
	if (rc)
		return rc;
	long hits = search_batch_in(h, n, keys, values, found);
	reader_exit(t, h);
	return hits;
}

long hashtable_search_batch(struct hashtable *t, size_t n, const void *keys, void *values,
                            int *found)
{
	/* One key has no misses to overlap: hashtable_search's path, without
	 * the groups' set-up (callgrind, 8/8 hits: 127 instructions a call
	 * against 247; 16/64: 207 against 324).  Its codes are the batch's. */
	if (n == 1 && keys && values && found) {
		int rc = hashtable_search(t, (void *)(uintptr_t)keys, values);
		if (rc < -1)
			return rc;
		found[0] = rc;
		return rc == 0;
	}
	return search_batch_entered(t, n, keys, values, found);
}

static int writable_table(const struct hashtable *t)
{
	if (t->readonly)
		return fail(-EROFS, "the table was opened read-only (HASHTABLE_RDONLY); writes "
		                    "need a handle opened without it");
	return 0;
}

/* The next autogrow size: double the entries, within max_bytes. */
static uint64_t autogrow_entries(const struct hashtable *t, const struct generation_map *h)
{
	uint64_t entries = h->max_count * 2;
	uint64_t cap = t->root->max_bytes;
	if (!cap)
		return entries;
	while (entries > h->max_count &&
	       hashtable_segment_size(entries, h->hdr->max_load, t->key_size, t->value_size) > cap)
		entries -= (entries - h->max_count + 1) / 2;
	return entries > h->max_count ? entries : 0;
}

/* upsert_locked (hash: key_hash(*hp, k)), growing the table when it is at
 * its load limit and the table has HASHTABLE_AUTOGROW.  *hp is the entered map, replaced by the
 * grown one.  Returns upsert_locked's 0 or 1, or a negative code; with
 * *hp set to NULL when the lock was released and no map is entered (a
 * grow that failed), else the lock is still held and *hp entered. */
static int upsert_growing_locked(struct hashtable *t, struct generation_map **hp, const void *k,
                                 uint64_t hash, const void *d)
{
	struct generation_map *h = *hp;
	int rc = upsert_hashed_locked(h, k, hash, d);
	while (rc == AT_LOAD_LIMIT) {
		uint64_t entries = t->root->table_flags & HASHTABLE_AUTOGROW
		                 ? autogrow_entries(t, h) : 0;
		if (!entries)
			return load_limit_reached(h);
		reader_exit(t, h); /* the lock keeps it current and attached */
		rc = grow_locked(t, h, entries);
		if (rc == 0)
			rc = reader_enter(t, &h);
		if (rc) { /* the lock is still ours; nothing entered */
			atomic_store_explicit(&t->root->holder_pid, 0, memory_order_release);
			pthread_mutex_unlock(&t->root->lock.mutex);
			*hp = NULL;
			return rc;
		}
		*hp = h;
		rc = upsert_locked(h, k, d);
	}
	return rc;
}

/* upsert_growing_locked for the k8v8 shape's common cases, with fewer
 * instructions: the key in its home bucket (an overwrite), or a new key
 * whose home bucket has a free slot and no passing key with its filter
 * bit (an insert at path index 0: no overflow word changes), below the
 * load limit.  Everything else goes to upsert_growing_locked.
 *
 * It writes the journal record journal_begin would (every field, so a
 * redo and journal_check see exactly what they see after the general
 * path), publishes op, then does what journal_run does for such a record:
 * the slot under its stripe's seqlock (the value before the key, as
 * slot_write_locked; an odd stripe left by damage is not made odder),
 * then journal_finish's counters and op idle.  A writer killed at any
 * instruction leaves either an idle journal and an untouched slot (before
 * op is published), or a busy journal that recovery redoes from the
 * start: each step rewrites the same words.  An update of new keys at
 * 16M entries is memory bound with ~800 instructions a call, because the
 * next call's misses stay out of the reorder window; this path is short
 * enough to let them overlap (see bench/README.md). */
static int upsert_k8v8_locked(struct hashtable *t, struct generation_map **hp, const void *key,
                              uint64_t hash, const void *value)
{
	struct generation_map *h = *hp;
	struct shm_header *hd = h->hdr;
	const uint64_t n = h->g.nbuckets, empty = h->empty_u64, deleted = h->deleted_u64;
	uint64_t k, v;
	memcpy(&k, key, 8);
	memcpy(&v, value, 8);
	const uint64_t b = home_bucket(hash, n);
	unsigned char *bucket = bucket_at(h, b);
	uint64_t s0 = load_u64(bucket), s1 = load_u64(bucket + 16);
	uint64_t s2 = load_u64(bucket + 32), s3 = load_u64(bucket + 48);
	unsigned match = (unsigned)(s0 == k) | (unsigned)(s1 == k) << 1 | (unsigned)(s2 == k) << 2 |
	                 (unsigned)(s3 == k) << 3;
	uint64_t count = atomic_load_explicit(&hd->count, memory_order_relaxed);
	uint64_t slot;
	enum journal_op op;
	if (match) {
		op = J_OVERWRITE;
		slot = b * 4 + (unsigned)__builtin_ctz(match);
	} else {
		unsigned free_mask = (unsigned)((s0 == empty) | (s0 == deleted)) |
		                     (unsigned)((s1 == empty) | (s1 == deleted)) << 1 |
		                     (unsigned)((s2 == empty) | (s2 == deleted)) << 2 |
		                     (unsigned)((s3 == empty) | (s3 == deleted)) << 3;
		/* a passing key with this bit may be the key, further on */
		if (!free_mask || count >= h->max_count ||
		    passes(atomic_load_explicit(&h->overflow[b], memory_order_relaxed), hash))
			return upsert_growing_locked(t, hp, key, hash, value);
		op = J_INSERT;
		slot = b * 4 + (unsigned)__builtin_ctz(free_mask);
	}
	struct journal *j = &hd->journal;
	if (op == J_INSERT)
		memcpy(journal_key(h), &k, 8);
	memcpy(journal_value(h), &v, 8);
	j->slot = slot;
	j->bit = filter_bit(hash);
	j->from_slot = 0;
	j->home = b;
	j->step = probe_step(hash, n);
	j->first = 0;
	j->probe = 0;
	j->count_after = count + (op == J_INSERT);
	j->collisions_after = atomic_load_explicit(&hd->collisions, memory_order_relaxed);
	j->max_probe_after = atomic_load_explicit(&hd->max_probe, memory_order_relaxed);
	atomic_store_explicit(&j->progress, 0, memory_order_relaxed);
	/* release: the journal's fields are complete before it is marked busy */
	atomic_store_explicit(&j->op, op, memory_order_release);

	_Atomic uint32_t *stripe = stripe_of(h, b);
	unsigned char *p = bucket + (slot & 3) * 16;
	if (!(atomic_load_explicit(stripe, memory_order_relaxed) & 1))
		write_seqbegin(stripe);
	atomic_store_explicit((_Atomic uint64_t *)(void *)(p + 8), v, memory_order_relaxed);
	if (op == J_INSERT)
		atomic_store_explicit((_Atomic uint64_t *)(void *)p, k, memory_order_relaxed);
	write_seqend(stripe);

	if (op == J_INSERT) /* journal_finish: the other counters are unchanged */
		atomic_store_explicit(&hd->count, count + 1, memory_order_relaxed);
	/* release: the counters are final before the journal reads idle */
	atomic_store_explicit(&j->op, J_IDLE, memory_order_release);
	if (op == J_INSERT) {
		bump(&hd->inserts);
		return 0;
	}
	bump(&hd->updates);
	return 1;
}

/* The checks of update or delete on a read-only handle (or with a NULL
 * key), which cannot take the lock: the codes in the order a writable
 * handle would give them. */
static int update_refused(struct hashtable *t, const void *k)
{
	struct generation_map *h = NULL;
	int rc = reader_enter(t, &h);
	if (rc)
		return rc;
	rc = check_key(h, k);
	reader_exit(t, h);
	return rc ? rc : writable_table(t);
}

static int update_in(struct hashtable *t, const void *k, const void *d)
{
	if (!t || !k)
		return fail(-EINVAL, "NULL table handle or key");
	if (t->readonly)
		return update_refused(t, k);
	/* The key is checked under the lock: one entry into the map, not two.
	 * Its lines are prefetched while the lock is taken, and its hash
	 * computed once, unless the lock brought another generation (another
	 * seed). */
	struct generation_map *h = NULL, *entered = NULL;
	int rc = reader_enter(t, &entered); /* any map: all share the root's lock */
	if (rc)
		return rc;
	const uint64_t word = entered->word; /* names the generation, as h may not */
	uint64_t hash = key_hash(entered, k);
	prefetch_write_path(entered, hash);
	rc = writer_lock_entered(t, entered, false, &h);
	if (rc < 0)
		return rc;
	if (h->word != word) /* a commit since: that map's seed */
		hash = key_hash(h, k);
	uint64_t kw = 0;
	if (h->k8v8) /* check_key's test inline; it names the failure */
		memcpy(&kw, k, 8);
	rc = h->k8v8 && kw != h->empty_u64 && kw != h->deleted_u64 ? 0 : check_key(h, k);
	if (!rc && !d && h->g.value_size)
		rc = fail(-EINVAL, "NULL value");
	if (!rc)
		rc = h->k8v8 ? upsert_k8v8_locked(t, &h, k, hash, d)
		             : upsert_growing_locked(t, &h, k, hash, d);
	if (h)
		writer_unlock_exit(t, h);
	return rc;
}

/* How many records ahead of the one being written hashtable_update_batch
 * prefetches (three lines each: bucket, overflow word, stripe): a record
 * takes some 150 ns of work under the lock, so a few cover a miss; 8 to 64
 * measured the same within the noise at 8M entries. */
#define UPDATE_BATCH_AHEAD 16

/* The records of hashtable_update_batch, in order, under the writer lock:
 * stops at the first that fails.  Returns 0 or that record's code, with
 * *applied the number of records written before it.  *hp as for
 * upsert_growing_locked. */
static int update_batch_locked(struct hashtable *t, struct generation_map **hp, size_t n,
                               const unsigned char *keys, const unsigned char *values,
                               size_t *applied)
{
	struct generation_map *h = *hp;
	const size_t ks = h->g.key_size, vs = h->g.value_size;
	static const unsigned char no_value[1];
	uint64_t ring[UPDATE_BATCH_AHEAD]; /* hashes of records i .. i + AHEAD - 1 */
	for (size_t i = 0; i < n && i < UPDATE_BATCH_AHEAD; i++) {
		ring[i] = key_hash(h, keys + i * ks);
		prefetch_write_path(h, ring[i]);
	}
	for (size_t i = 0; i < n; i++) {
		const unsigned char *k = keys + i * ks;
		uint64_t hash = ring[i % UPDATE_BATCH_AHEAD];
		if (i + UPDATE_BATCH_AHEAD < n) {
			ring[i % UPDATE_BATCH_AHEAD] = key_hash(h, keys + (i + UPDATE_BATCH_AHEAD) * ks);
			prefetch_write_path(h, ring[i % UPDATE_BATCH_AHEAD]);
		}
		int rc = check_key(h, k);
		if (!rc)
			rc = h->k8v8 ? upsert_k8v8_locked(t, hp, k, hash, values + i * vs)
			             : upsert_growing_locked(t, hp, k, hash, vs ? values + i * vs : no_value);
		if (rc < 0)
			return rc;
		*applied = i + 1;
		if (*hp != h) { /* grown: new seed and lines; the ring was the old map's */
			h = *hp;
			for (size_t j = i + 1; j < n && j < i + 1 + UPDATE_BATCH_AHEAD; j++) {
				ring[j % UPDATE_BATCH_AHEAD] = key_hash(h, keys + j * ks);
				prefetch_write_path(h, ring[j % UPDATE_BATCH_AHEAD]);
			}
		}
	}
	return 0;
}

long hashtable_update_batch(struct hashtable *t, size_t n, const void *keys, const void *values,
                            size_t *applied)
{
	size_t done = 0;
	if (applied)
		*applied = 0;
	if (!t || (n && !keys))
		return fail(-EINVAL, "NULL table handle or keys");
	if (n > LONG_MAX)
		return fail(-EINVAL, "a batch of %zu records: at most LONG_MAX", n);
	if (n && !values && t->value_size)
		return fail(-EINVAL, "NULL values");
	int rc = writable_table(t);
	struct generation_map *h = NULL;
	if (rc || n == 0 || (rc = writer_lock(t, &h)) < 0)
		return rc ? rc : 0;
	rc = update_batch_locked(t, &h, n, keys, values, &done);
	if (h)
		writer_unlock_exit(t, h);
	if (applied)
		*applied = done;
	return rc ? rc : (long)n;
}

int hashtable_update(struct hashtable *h, void *k, void *d) { return update_in(h, k, d); }

int hashtable_delete(struct hashtable *t, const void *key)
{
	if (!t)
		return fail(-EINVAL, "NULL table handle");
	if (!key || t->readonly)
		return update_refused(t, key); /* the codes in update's order */
	/* As update_in: the key is checked under the lock (one entry into the
	 * map, not two), and its lines are prefetched while the lock is taken. */
	struct generation_map *h = NULL;
	int rc = writer_lock_mode(t, false, key, &h);
	if (rc < 0)
		return rc;
	rc = check_key(h, key);
	if (!rc)
		rc = delete_locked(h, key);
	writer_unlock_exit(t, h);
	return rc;
}

int hashtable_recover(struct hashtable *t)
{
	if (!t)
		return fail(-EINVAL, "NULL table handle");
	int rc = writable_table(t);
	if (rc)
		return rc;
	struct generation_map *h = NULL;
	rc = writer_lock_mode(t, true, NULL, &h);
	if (rc < 0)
		return rc;
	bool leftovers = atomic_load(&t->root->pending_pid) != 0 ||
	                 atomic_load(&t->root->retiring_shmid) >= 0;
	generation_recover_locked(t);
	if (versions_repair_locked(h) || leftovers) {
		atomic_fetch_add_explicit(&h->root->recoveries, 1, memory_order_relaxed);
		rc = 1;
	}
	writer_unlock_exit(t, h);
	return rc;
}

int hashtable_get(struct hashtable *h, const void *key, size_t key_len, void *value)
{
	if (!h || !key)
		return fail(-EINVAL, "NULL table handle or key");
	unsigned char kbuf[HASHTABLE_MAX_KEY], *unused;
	const void *k = NULL;
	int rc = pad_field("key", key, key_len, h->key_size, kbuf, &k, &unused);
	return rc ? rc : hashtable_search(h, (void *)(uintptr_t)k, value);
}

int hashtable_put(struct hashtable *h, const void *key, size_t key_len, const void *value,
                  size_t value_len)
{
	if (!h || !key)
		return fail(-EINVAL, "NULL table handle or key");
	unsigned char kbuf[HASHTABLE_MAX_KEY], vbuf[PAD_ON_STACK], *unused, *valloc;
	const void *k = NULL, *v = NULL;
	int rc = pad_field("key", key, key_len, h->key_size, kbuf, &k, &unused);
	if (rc)
		return rc;
	rc = pad_field("value", value, value_len, h->value_size,
	               h->value_size <= PAD_ON_STACK ? vbuf : NULL, &v, &valloc);
	if (rc)
		return rc;
	rc = update_in(h, k, v ? v : vbuf); /* a 0-byte value: any non-NULL pointer */
	free(valloc);
	return rc;
}

int hashtable_del(struct hashtable *h, const void *key, size_t key_len)
{
	if (!h || !key)
		return fail(-EINVAL, "NULL table handle or key");
	unsigned char kbuf[HASHTABLE_MAX_KEY], *unused;
	const void *k = NULL;
	int rc = pad_field("key", key, key_len, h->key_size, kbuf, &k, &unused);
	return rc ? rc : hashtable_delete(h, k);
}

int hashtable_iterate(struct hashtable *t, uint64_t *cursor, void *key, void *value)
{
	if (!t || !cursor)
		return fail(-EINVAL, "NULL table handle or cursor");
	struct generation_map *h = NULL;
	int rc = reader_enter(t, &h);
	if (rc)
		return rc;
	rc = iterate_in(h, cursor, key, value);
	reader_exit(t, h);
	return rc;
}

int hashtable_probe_histogram(struct hashtable *t, uint64_t *hist, size_t n)
{
	if (!t || !hist || n == 0)
		return fail(-EINVAL, "NULL table handle or histogram, or no bins");
	struct generation_map *h = NULL;
	int rc = reader_enter(t, &h);
	if (rc)
		return rc;
	rc = probe_histogram_in(h, hist, n);
	reader_exit(t, h);
	return rc;
}

int hashtable_stats(struct hashtable *t, struct hashtable_stats *st)
{
	if (!t || !st)
		return fail(-EINVAL, "NULL table handle or stats");
	struct generation_map *h = NULL;
	int rc = reader_enter(t, &h);
	if (rc)
		return rc;
	rc = stats_in(h, st);
	reader_exit(t, h);
	const struct shm_header *r = t->root;
	st->shmid = t->shmid;
	st->name_dev = r->name_dev;
	st->name_ino = r->name_ino;
	st->name_mismatch = t->by_path && (r->name_dev || r->name_ino) &&
	                    (r->name_dev != t->path_dev || r->name_ino != t->path_ino);
	st->creator_pid = r->creator_pid;
	st->created = r->created;
	struct shmid_ds ds;
	if (shmctl(t->shmid, IPC_STAT, &ds) == 0) {
		st->nattch = ds.shm_nattch;
		st->mode = ds.shm_perm.mode & 0777;
	}
	return rc;
}

int64_t hashtable_count(struct hashtable *t)
{
	if (!t)
		return fail(-EINVAL, "NULL table handle");
	struct generation_map *h = NULL;
	int rc = reader_enter(t, &h);
	if (rc)
		return rc;
	uint64_t n = atomic_load_explicit(&h->hdr->count, memory_order_relaxed);
	reader_exit(t, h);
	return (int64_t)n;
}

/* A build or commit whose process is gone, seen without the lock: the
 * record names a pid that is not alive with the recorded start time (a
 * live builder holds the lock and is not reported). */
static int build_abandoned(struct hashtable *t)
{
	const struct shm_header *r = t->root;
	pid_t pid = atomic_load_explicit(&r->pending_pid, memory_order_acquire);
	int pending = atomic_load_explicit(&r->pending_shmid, memory_order_relaxed);
	int retiring = atomic_load_explicit(&r->retiring_shmid, memory_order_relaxed);
	if (pid <= 0 && retiring < 0)
		return 0;
	if (pid > 0) {
		char state;
		uint64_t start;
		bool alive = process_stat(pid, &state, &start) && state != 'Z' && state != 'X' &&
		             start == atomic_load_explicit(&r->pending_start, memory_order_relaxed);
		if (alive)
			return 0;
	}
	return fail(HASHTABLE_EDEADWRITER, "a replace or grow by pid %d died before it finished, "
	                                   "leaving segment %d (the current generation is "
	                                   "intact); `shmkv verify --repair` (or any write) "
	                                   "removes it", (int)pid, pending >= 0 ? pending : retiring);
}

int hashtable_verify(struct hashtable *t)
{
	if (!t)
		return fail(-EINVAL, "NULL table handle");
	struct generation_map *h = NULL;
	int rc;
	if (t->readonly) {
		if ((rc = reader_enter(t, &h)))
			return rc;
		rc = verify_unlocked(h);
		reader_exit(t, h);
		return rc ? rc : build_abandoned(t);
	}
	rc = writer_lock(t, &h); /* a still picture, and a dead writer's change done */
	if (rc < 0)
		return rc;
	/* the lock holder repairs a version left odd instead of waiting on it */
	if (versions_repair_locked(h))
		atomic_fetch_add_explicit(&h->root->recoveries, 1, memory_order_relaxed);
	rc = verify_walk(h);
	writer_unlock_exit(t, h);
	return rc;
}
