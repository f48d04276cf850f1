/*
 * shmkv: one key/value table in System V shared memory, shared by every
 * process on a host.  One process loads it; any number of processes read it in
 * place, with no copy, no server and no lock on the read path.
 *
 * Installed as <shmkv/hashtable.h>.  Link with -lshmkv (pkg-config shmkv).
 *
 * CONTRACT
 *  - Keys and values have fixed widths chosen when the table is created
 *    (keys 1..HASHTABLE_MAX_KEY bytes, values 0..HASHTABLE_MAX_VALUE bytes).
 *  - Two key patterns are reserved as sentinels: "empty" (default all 0x00)
 *    and "deleted" (default all 0xFF).  They are never stored; passing one as
 *    a key is an error (-EINVAL).
 *  - Any number of readers run concurrently with one writer at a time.
 *    Writers (update, update_batch, delete) from any process or thread are
 *    serialised by a robust lock stored in the segment; a writer killed while
 *    holding it is recovered from by the next writer.  Readers (search,
 *    search_batch, iterate, stats, count, probe_histogram) take no lock and
 *    never write to the segment; so does verify on a read-only handle.
 *  - A search returns a value that was the key's whole value at some instant
 *    during the call, or "not found" only if the key was absent at some
 *    instant during the call.  Once update or delete returns, every later
 *    search in any process sees its effect.
 *  - A handle may be shared by threads; hashtable_close() must not race with
 *    other calls on the same handle.
 *  - The library never prints.  The extended API returns 0 (or a count) on
 *    success and a negative code on failure: -errno, or one of the
 *    HASHTABLE_E* codes below.  -1 has one meaning everywhere, "not found"
 *    (so -EPERM, equal to -1 on Linux, is never returned).
 *    hashtable_strerror() turns a code into fixed text;
 *    hashtable_last_error() says what this thread's last failure was, with
 *    its specifics and the command that fixes it.  The classic trio keeps
 *    MemKeyValue's historical codes, documented there.
 *  - A failed call leaves the table as it was, except that a failed
 *    update_batch keeps the records before the failing one (it says how
 *    many): nothing already stored is lost.
 *  - Writers (update, update_batch, delete, put, del, recover, and verify on
 *    a read-write handle) take the writer lock.  If the lock itself cannot be
 *    taken (a damaged segment; never in normal use) they return HASHTABLE_ECORRUPT,
 *    and hashtable_last_error() names the lock's error (e.g. "not
 *    recoverable") or its damaged field.  The lists below call this "a
 *    writer lock failure".
 *
 * NAMING A TABLE
 *  A table is named by the IPC key ftok(path, 1) of an existing file `path`,
 *  or by a numeric key given directly.  Its root segment lives at that key
 *  for the table's whole life; its data lives in one key-0 segment per
 *  generation (see "Generations" further down).  `ipcs -m` shows the key;
 *  `printf '0x%08x' ...` of ftok(path, 1) maps a row back to its table, and
 *  `shmkv ls` does it for every table on the host, data segments included.
 *  ftok() derives the key from the file's inode and device numbers, so the
 *  naming file must stay the same file while the table is in use: do not
 *  delete and recreate it (nor replace it by rename, as editors do when
 *  saving).  A recreated file gets a new inode, so the path names another
 *  key, and the table is lost to that name (`shmkv ls` still shows it by
 *  key); and since ftok keeps only 16 bits of the inode and 8 of the device,
 *  two files can also name one key.  A table created by path records its
 *  file's st_dev and st_ino; hashtable_stats() reports them and sets
 *  name_mismatch when the handle's path named another file.
 *
 * TOMBSTONES
 *  Each bucket keeps an exact count of the keys that overflowed past it (and
 *  a filter of their hash bits).  A lookup stops at the first bucket nothing
 *  relevant overflowed from and never at an empty slot, so a deleted slot
 *  becomes empty at once: a delete leaves no tombstone.
 *  hashtable_stats().deleted is therefore always 0: nothing writes the
 *  deleted sentinel into a slot, so deleted markers cannot pile up, lengthen
 *  misses or fill a table (the field stays for programs that read it).
 *  Each delete also
 *  sweeps a few buckets (8; 16 above load limit 0.85; 48 above 0.9) around
 *  the table and moves their displaced keys back to free slots earlier on
 *  their paths, so steady churn keeps hits as short as in a freshly filled
 *  table; stats.relocations counts the moves.  The deleted sentinel stays
 *  reserved (never accepted as a key) so tables and programs written for
 *  MemKeyValue keep their meaning.
 */
#ifndef SHMKV_HASHTABLE_H
#define SHMKV_HASHTABLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h> /* pid_t */
#include <sys/ipc.h>   /* key_t: <sys/types.h> declares it only with
                          _XOPEN_SOURCE or _DEFAULT_SOURCE, not under -std=c99 */

#ifdef __cplusplus
extern "C" {
#endif

#define SHMKV_VERSION_MAJOR 0
#define SHMKV_VERSION_MINOR 2
#define SHMKV_VERSION_PATCH 0
#define SHMKV_VERSION_STRING "0.2.0"

/* The library's version, e.g. "0.2.0"; may differ from the header's. */
const char *shmkv_version(void);

#define HASHTABLE_MAX_KEY 1024u          /* widest key, bytes */
#define HASHTABLE_MAX_VALUE (1u << 20)   /* widest value, bytes */

/* Library error codes: a range that no errno value reaches. */
#define HASHTABLE_EDEADWRITER (-30701)
/* A search met a bucket that a writer was changing when it died.  The table
 * is intact: the next writer to take the lock (any update or delete, or
 * `shmkv verify --repair`) completes the half-done change, and searches
 * succeed again from then on.  A reader meeting such a bucket returns this
 * after a short spin and one look at /proc: within a millisecond on an idle
 * machine (measured: 0.13 ms at most; 3.9 ms at most on a loaded two-core
 * machine).  A writer that is alive, however slow, is waited out and never
 * causes this code.  Also returned when a bucket's version (or the table's
 * relocation counter, which every miss reads) is odd while no live writer
 * holds the lock, or while the calling thread itself is the recorded holder
 * (a damaged segment): updates and deletes need not repair it, and
 * hashtable_recover() (`shmkv verify --repair`) makes it even. */

#define HASHTABLE_ECORRUPT (-30702)
/* The segment holds something no correct writer leaves: hashtable_verify()
 * found an inconsistency, or a writer refused to act on one (an impossible
 * journal, see hashtable_update; no free slot where the count says there is
 * one), or the writer lock's bytes are damaged: its kind is not a robust
 * process-shared mutex's (checked on glibc before any pthread call), or it
 * stayed held for 2 s by a thread that is not a live writer of the table
 * (a live writer, however slow, is waited out).  hashtable_last_error()
 * names the first one, with the field and its value. */

#define HASHTABLE_EUNFINISHED (-30703)
/* The segment is a shmkv table whose creator died while initialising it:
 * no process can use it.  hashtable_remove() removes it (`shmkv rm`).
 * Returned by hashtable_create_config(); hashtable_open() and
 * hashtable_create() report it as errno EPROTO, with the details in
 * hashtable_last_error().  While its creator is alive, however long it
 * takes to fill a large table, opens wait for it instead. */

struct hashtable; /* opaque handle: one attachment of one table */

/* ---- The classic MemKeyValue API (source-compatible) --------------------- */

/* Creates the table named by ftok(path, 1), or attaches to it if it exists.
 *   capacity            bytes of keys and values: the table holds
 *                       floor(max_usage * capacity / (key_size + value_size))
 *                       keys, as MemKeyValue does; its data segment is sized
 *                       for that many at the load limit (slightly larger
 *                       than capacity: the metadata and slot padding do not
 *                       take their room from the keys).  EINVAL if that is 0.
 *   max_usage_percent   load limit as a fraction (0.8) or, above 1, a percent
 *                       (80).  Must be in (0, 0.98] or (1, 98]: above 0.98 a
 *                       full table's misses read every bucket.  Tables made
 *                       with a limit of 1 by earlier versions still attach.
 *   key_size, value_size  widths in bytes (value_size may be 0).
 *   stop_cond, del_cond key_size bytes marking an empty and a deleted slot;
 *                       NULL means all 0x00 and all 0xFF.  They must differ.
 * An existing segment is attached only if its header matches these arguments
 * (widths, sentinels); its own capacity and load limit are kept.
 * Returns a handle, or NULL with errno:
 *   ENOENT  path does not exist;
 *   EINVAL  bad argument, or the existing table has other widths/sentinels,
 *           or the kernel refused the size (hashtable_last_error() right
 *           after names the size asked and kernel.shmmax);
 *   EPROTO  the segment is a format-1 table made by shmkv 0.1 (the last error
 *           says how to carry its data over: dump with the 0.1 tools,
 *           `ipcrm -m ID`, load with these), or
 *           the segment is an unfinished table (HASHTABLE_EUNFINISHED), or
 *           a segment exists at that key but is not a shmkv table (bad magic
 *           or unknown format version), or its header is damaged (a field
 *           that disagrees with the layout its widths and size give), or it
 *           was made by a program built with another C library (its writer
 *           lock would mean something else); it is not read past its header,
 *           and hashtable_last_error() names the field;
 *   EACCES  the segment's mode does not let this user attach it (the last
 *           error names its owner, group and mode, and says whether a
 *           read-only open would work), or huge pages were asked for by a
 *           user outside vm.hugetlb_shm_group;
 *   ENOSPC  kernel.shmmni or kernel.shmall reached;
 *   ENOMEM  out of memory, or not enough huge pages reserved;
 *   EAGAIN  the segment at that key kept appearing and vanishing;
 * or another errno from ftok, shmget or shmat (ENOTDIR, ELOOP, EMFILE...).
 * After any of these, hashtable_last_error() names the limit and its value,
 * or the owner and mode, and the command that fixes it.
 * The segment is created with mode 0600; use hashtable_create_config() for
 * other modes, numeric keys or huge pages. */
struct hashtable *hashtable_create(const char *path, long capacity,
                                   float max_usage_percent, short key_size,
                                   short value_size, void *stop_cond,
                                   void *del_cond);

/* Stores value d under key k, inserting or overwriting.
 * Returns 0 if the key was inserted, 1 if an existing key was overwritten,
 * -ENOMEM if a new key would pass the load limit (overwrites always succeed;
 * a table created with HASHTABLE_AUTOGROW first grows, as hashtable_grow
 * does, to twice its entries within its max_bytes, and returns -ENOMEM only
 * past that cap, or with the grow's own error), -EINVAL for a NULL argument or a key equal to a sentinel, -EROFS on a
 * read-only handle, HASHTABLE_ECORRUPT if the segment is damaged: the
 * journal left by a dead writer holds an impossible operation (refused by
 * every update and delete, with nothing written, until hashtable_recover()
 * discards it), or a new key finds no free slot on its path (which visits
 * every bucket) although the header's count says there is one (nothing is
 * written), or a writer lock failure (see HASHTABLE_ECORRUPT).  Safe to call
 * from any process or thread, except one that holds a builder of this table
 * (hashtable_replace_begin), which would wait on its own lock. */
int hashtable_update(struct hashtable *h, void *k, void *d);

/* Stores n records (keys: n contiguous keys of key_size bytes; values: n
 * contiguous values of value_size bytes, NULL allowed when value_size is 0)
 * as n hashtable_update calls would, in array order (a key given twice ends
 * with its later value), under one hold of the writer lock, with the
 * records' buckets fetched ahead so their cache misses overlap.
 * Returns n when every record was stored (0 for n == 0).  On failure it
 * stops at the first record that fails and returns that record's code, as
 * hashtable_update would return it (-EINVAL for a sentinel key, -ENOMEM at
 * the load limit, or with AUTOGROW past max_bytes or with the grow's own
 * error, HASHTABLE_ECORRUPT for no free slot where the count says there is
 * one).  Before any record it may fail with (nothing stored): -EINVAL for a
 * NULL handle, keys or values, or n > LONG_MAX; -EROFS on a read-only
 * handle; HASHTABLE_ECORRUPT for a writer lock failure or an impossible
 * journal, as for hashtable_update; or a code of "Generations" below when
 * the current generation cannot be attached.  Either way, when applied
 * is not NULL, *applied is the number of records stored: records
 * [0, *applied) are in the table, record *applied (the failing one) and all
 * after it are not.  Readers see each record's change on its own, as for
 * single updates (not the batch as a whole), and other writers wait for the
 * whole batch.  A writer killed mid-batch leaves a prefix of the batch
 * stored (the record in flight completed by the next writer's recovery).
 * Safe to call concurrently, as hashtable_update. */
long hashtable_update_batch(struct hashtable *h, size_t n, const void *keys, const void *values,
                            size_t *applied);

/* Looks up key k.  Returns 0 and copies the value to datum (value_size bytes)
 * if found, -1 if not (datum untouched when value_size <= 256; a wider
 * buffer may hold a stale copy, as for hashtable_get), -EINVAL for NULL
 * arguments (datum may be NULL when value_size is 0), HASHTABLE_EDEADWRITER
 * as described above.  Lock-free; never writes to the segment.  Like every
 * call here it is not async-signal-safe: a signal handler must not call the
 * library while the thread it interrupted may be inside a call. */
int hashtable_search(struct hashtable *h, void *k, void *datum);

/* ---- Extended API ------------------------------------------------------- */

#define HASHTABLE_RDONLY  0x1 /* open/create: attach with SHM_RDONLY; a
                                 create with it only attaches (-ENOENT) */
#define HASHTABLE_HUGETLB 0x2 /* create: back the segment with huge pages   */
#define HASHTABLE_EXCL    0x4 /* create: fail with -EEXIST if it exists      */
#define HASHTABLE_AUTOGROW 0x8 /* create: an insert past the load limit grows
                                 the table (hashtable_grow to twice its
                                 entries, within max_bytes) instead of
                                 returning -ENOMEM; kept in the table */

struct hashtable_config {
	const char *path;     /* table name: ftok(path, 1); NULL: use ipc_key */
	key_t ipc_key;        /* numeric IPC key, used when path is NULL      */
	size_t capacity;      /* segment bytes, header included; 0: computed
	                         from `entries` with hashtable_segment_size() */
	uint64_t entries;     /* keys to hold at max_load, when capacity is 0 */
	double max_load;      /* load limit, fraction or percent, at most 0.98
	                         (98); 0: 0.8                                 */
	uint32_t key_size;    /* 1..HASHTABLE_MAX_KEY                         */
	uint32_t value_size;  /* 0..HASHTABLE_MAX_VALUE                       */
	const void *empty_key;   /* key_size bytes or NULL (all 0x00)         */
	const void *deleted_key; /* key_size bytes or NULL (all 0xFF)         */
	unsigned mode;        /* permission bits; 0: 0600                     */
	int flags;            /* HASHTABLE_RDONLY | HASHTABLE_HUGETLB | _EXCL
	                         | HASHTABLE_AUTOGROW                         */
	uint64_t max_bytes;   /* HASHTABLE_AUTOGROW: no generation's data
	                         segment grows past this many bytes; 0: no cap */
};

/* The segment size that holds `entries` keys of the given widths at load
 * limit max_load (fraction or percent).  Returns 0 if the arguments are out
 * of range or the size would overflow. */
size_t hashtable_segment_size(uint64_t entries, double max_load,
                              uint32_t key_size, uint32_t value_size);

/* Creates the table described by cfg, or attaches to it if it exists and its
 * header matches cfg (widths and sentinels; capacity and load limit are the
 * existing table's).  On success stores the handle in *out and returns 0;
 * otherwise returns -ENOENT, -EINVAL, -EPROTO, -EACCES, -EEXIST (with
 * HASHTABLE_EXCL), -ENOSPC, -ENOMEM or -EAGAIN as for hashtable_create(),
 * or another -errno from shmget/shmat/ftok (the last error names it), and
 * leaves *out unchanged.  A segment created by a failed call is removed. */
int hashtable_create_config(const struct hashtable_config *cfg,
                            struct hashtable **out);

/* Attaches to an existing table, its geometry read from its header.
 * flags: 0 or HASHTABLE_RDONLY (attach SHM_RDONLY: search works, update and
 * delete return -EROFS, and the segment cannot be written through it).
 * Returns a handle, or NULL with errno ENOENT (no file, or no segment at that
 * key), EPROTO (not a shmkv table), EACCES (as for hashtable_create; a
 * read-write open of a table this user may only read says so), EIDRM (the
 * root names a data segment that is gone: the table is being removed, or
 * its root is damaged), EINVAL, ENOMEM, or another errno from
 * ftok/shmget/shmat, named by hashtable_last_error(). */
struct hashtable *hashtable_open(const char *path, int flags);
struct hashtable *hashtable_open_key(key_t key, int flags);

/* Removes key.  Returns 0 if it was deleted, -1 if it was not there,
 * -EINVAL (NULL or sentinel key), -EROFS (read-only handle),
 * HASHTABLE_ECORRUPT (an impossible journal, as for hashtable_update, or a
 * writer lock failure).  The slot is reusable at once. */
int hashtable_delete(struct hashtable *h, const void *key);

/* ---- Length-taking calls ------------------------------------------------
 * For keys and values shorter than the table's widths, such as strings: a
 * key of key_len <= key_size bytes stands for that key padded with NUL bytes
 * to key_size (so "Tokyo" with key_len 5 in a 24-byte table is "Tokyo" and
 * 19 NUL bytes; pass strlen(s) and the table holds it as a C string).  No
 * byte past key_len (value_len) is read.  Longer keys or values are refused
 * with -EINVAL, and hashtable_last_error() names the table's width.  Same
 * concurrency guarantees as the calls they wrap. */

/* Looks up key[0..key_len) padded with NUL bytes.  Returns 0 and copies the
 * value (value_size bytes, the full width) to value; -1 if the key is
 * absent (value untouched when value_size <= 256; a wider buffer may hold a
 * copy that a concurrent writer made stale); -EINVAL for a NULL handle or key, a NULL value
 * buffer when value_size > 0, key_len > key_size, or a padded key equal to
 * a sentinel (with the default sentinels, key_len 0 is the empty key);
 * HASHTABLE_EDEADWRITER as hashtable_search.  Lock-free. */
int hashtable_get(struct hashtable *h, const void *key, size_t key_len, void *value);

/* Stores value[0..value_len) padded with NUL bytes to value_size under
 * key[0..key_len) padded to key_size, inserting or overwriting.  value may
 * be NULL when value_len is 0 (an all-NUL value).  Returns 0 if the key was
 * inserted, 1 if it was overwritten; -ENOMEM if a new key would pass the
 * load limit (or, for values wider than 1 KiB that need padding, no memory
 * for the padded copy); -EINVAL for a NULL handle or key, key_len >
 * key_size, value_len > value_size, or a sentinel key; -EROFS on a
 * read-only handle; or a writer lock failure as hashtable_update.  On
 * failure the table is unchanged. */
int hashtable_put(struct hashtable *h, const void *key, size_t key_len, const void *value,
                  size_t value_len);

/* Removes key[0..key_len) padded with NUL bytes.  Returns 0 if it was
 * deleted, -1 if it was not there, -EINVAL (NULL handle or key, key_len >
 * key_size, a sentinel key), -EROFS (read-only handle), or a writer lock
 * failure as hashtable_update. */
int hashtable_del(struct hashtable *h, const void *key, size_t key_len);

/* Looks up n keys (contiguous, key_size bytes each) at once, overlapping
 * their cache misses.  Found values go to values + i * value_size and
 * found[i] is set to 0; absent keys get found[i] = -1 and their value bytes
 * are left alone when value_size <= 256 (a wider value's bytes may hold a
 * copy that a concurrent writer made stale, as for hashtable_get).  Returns the number of keys found, -EINVAL (a NULL
 * argument or a sentinel key) or HASHTABLE_EDEADWRITER (as
 * hashtable_search); after either of the last two, found[] and values may
 * already be set for some other keys (keys are checked a group at a time).
 * Per key it gives the same guarantee as hashtable_search, each answer
 * current at some instant of the call; keys are not answered in array order,
 * so a key given twice may get a newer value at its earlier position. */
long hashtable_search_batch(struct hashtable *h, size_t n, const void *keys,
                            void *values, int *found);

struct hashtable_stats {
	uint32_t format_version;
	uint32_t key_size, value_size;
	uint32_t slot_size;        /* bytes per slot, padding included          */
	uint32_t slots_per_bucket; /* slots scanned per probe                   */
	uint64_t buckets;
	uint64_t slots;            /* buckets * slots_per_bucket                */
	uint64_t count;            /* live keys                                 */
	uint64_t deleted;          /* always 0: deletes leave no tombstones; kept
	                              so the struct's layout and old programs
	                              stay valid                                */
	uint64_t max_count;        /* keys allowed by the load limit            */
	double max_load;           /* the load limit, as a fraction             */
	uint64_t segment_bytes;    /* the current generation's data segment     */
	uint64_t payload_bytes;    /* count * (key_size + value_size)           */
	uint64_t collisions;       /* extra buckets probed, summed over keys    */
	uint64_t max_probe;        /* most extra buckets a key has needed: a
	                              high-water mark since creation          */
	uint64_t overflowed_buckets; /* buckets some key has probed past        */
	double hit_probes;         /* buckets read by an average hit            */
	double miss_probes;        /* buckets read by an average miss (sampled) */
	uint64_t inserts, updates, deletes; /* operations since creation        */
	uint64_t recoveries;       /* dead writers recovered from               */
	uint64_t relocations;      /* keys moved back towards home by deletes   */
	int shmid;                 /* the root segment's (hashtable_shmid)      */
	key_t ipc_key;
	unsigned mode;             /* permission bits                           */
	pid_t creator_pid;
	int64_t created;           /* creation time, seconds since the epoch    */
	uint64_t nattch;           /* processes attached to the root            */
	int hugetlb;               /* 1 if backed by huge pages                 */
	/* The naming file's st_dev and st_ino, recorded when the table was
	 * created by path; 0 and 0 if created by numeric key (or by a library
	 * older than these fields). */
	uint64_t name_dev, name_ino;
	/* 1 if this handle was opened (or created) by a path that, at the time,
	 * named another file than the one the table was created for: the path
	 * was deleted and recreated, or another file's ftok key collides with
	 * the table's.  The table is not the path's: check before writing.  0
	 * when opened by key, or when nothing was recorded. */
	int name_mismatch;
};

/* Fills *st.  Counters are read without the writer lock, each one atomically;
 * under a concurrent writer they may be a few operations apart.
 * miss_probes is estimated from a fixed sample of probe paths.
 * Returns 0, or -EINVAL for NULL arguments. */
int hashtable_stats(struct hashtable *h, struct hashtable_stats *st);

/* The number of live keys (stats.count) in the current generation: one
 * load, without the statistics' sampled probe walk (which costs a
 * millisecond on a large table), so a caller may ask on every operation.
 * Under a concurrent writer it may be a few operations apart.  Returns the
 * count (>= 0), -EINVAL for a NULL handle, or -EIDRM, -EACCES, -ENOMEM
 * or HASHTABLE_ECORRUPT when a new generation cannot be attached (see
 * "Generations").  Lock-free; safe from any thread. */
int64_t hashtable_count(struct hashtable *h);

/* Counts live keys by probe length: hist[i] = keys found i buckets past their
 * home bucket, for i < n - 1; hist[n - 1] sums the rest.  Walks the table.
 * Returns 0, -EINVAL (NULL argument or n == 0), -ENOMEM (no memory for a
 * bucket copy), or HASHTABLE_EDEADWRITER. */
int hashtable_probe_histogram(struct hashtable *h, uint64_t *hist, size_t n);

/* Iterates over live entries in slot order.  Start with *cursor = 0; each
 * call copies the next entry's key (key_size bytes) and value (value_size
 * bytes; either pointer may be NULL) and advances *cursor.  Returns 1 when an
 * entry was copied, 0 at the end, HASHTABLE_EDEADWRITER, -EINVAL (NULL
 * handle or cursor) or -ENOMEM (no memory for a bucket copy).
 * Under concurrent updates and inserts every entry present throughout the
 * iteration is returned exactly once; entries added or removed meanwhile may
 * or may not be.  A concurrent delete may also move a few other keys back
 * along their probe paths (see TOMBSTONES), and a moved key can be returned
 * twice or missed: stats.relocations tells whether any moved.  For an exact
 * copy beside writers, compare it before and after, and repeat if it grew
 * (`shmkv dump` does). */
int hashtable_iterate(struct hashtable *h, uint64_t *cursor, void *key,
                      void *value);

/* Walks the whole table and checks it: header geometry, every live key
 * reachable on its probe path, overflow counts exact, header counters equal
 * to what the walk finds, no bucket mid-update, no tombstone.  On a
 * read-write handle it holds the writer lock for the walk (so it sees a still
 * table, and first completes a dead writer's change); on a read-only handle
 * it writes nothing, and repeats the walk while writers change the table, so
 * that only a problem seen in a still table is reported (-EAGAIN if the table
 * changed during each of 20 walks).  On a read-write handle a bucket
 * version left odd by no live writer is made even, not reported (the lock
 * holder cannot wait for itself).  Returns 0 if consistent,
 * HASHTABLE_ECORRUPT (hashtable_last_error() names the first problem, e.g.
 * an impossible journal, which only hashtable_recover() discards),
 * HASHTABLE_EDEADWRITER if a writer died mid-update, or a replace or grow
 * died before it finished (its segment is left, the table intact), and no
 * writer has recovered yet (read-only handle; a read-write handle recovers
 * both), -EAGAIN (read-only handle, as above),
 * -ENOMEM (no memory for the walk's counts: 7 bytes a bucket), -EINVAL (NULL
 * handle), or a writer lock failure (read-write handle). */
int hashtable_verify(struct hashtable *h);

/* Repairs what a dead writer or a damaged segment left: takes and releases
 * the writer lock, which completes any change a dead writer left half done;
 * discards a journal that holds an impossible operation (its change is not
 * redone: run hashtable_verify() next to see whether the table is
 * consistent); makes every bucket version left odd even; re-initialises a
 * damaged writer lock (see HASHTABLE_ECORRUPT) unless a live thread holds
 * it.  Run one repair at a time.  Returns 1 if it repaired anything, 0 if
 * nothing needed it, -EROFS on a read-only handle, -EINVAL for a NULL
 * handle, HASHTABLE_ECORRUPT if a damaged lock is held by a live thread (the
 * text names it), or another error taking the lock. */
int hashtable_recover(struct hashtable *h);

/* Detaches.  The segment and its contents stay.  Returns 0, or -EINVAL for a
 * NULL handle. */
int hashtable_close(struct hashtable *h);

/* Marks every segment of an attached table for removal (IPC_RMID): the
 * root (by the handle's shmid) first, then the current data segment and
 * any pending or retiring one.  A replace in progress then fails its commit
 * with -EIDRM.  Processes still attached keep working until they detach;
 * the key is free at once.  Returns 0; -EINVAL for a NULL handle, or a
 * segment already removed; -EACCES when this user is not its owner, its
 * creator or root (the kernel's EPERM: -EPERM would read as -1, "not
 * found"); the last error names the owner. */
int hashtable_unlink(struct hashtable *h);

/* Removes the table named by ftok(path, 1) or by key, every segment of it as
 * hashtable_unlink does, after checking that the segment is a shmkv table
 * (whose current data segment is intact, or gone), or an unfinished one
 * (HASHTABLE_EUNFINISHED: with the data segment its creator made).
 * Returns 0, -ENOENT (no such file or segment), -EPROTO (the segment is not
 * a shmkv table: left alone), -EACCES (may not read it, or not its owner,
 * creator or root), -EINVAL, or another errno as hashtable_open. */
int hashtable_remove(const char *path);
int hashtable_remove_key(key_t key);

/* Whether the segment at key is an unfinished table (see
 * HASHTABLE_EUNFINISHED): 1 if so, 0 if it is anything else (a table, one
 * still being created by a live process, not a table), or -ENOENT,
 * -EACCES.  Reads the segment's header only. */
int hashtable_unfinished_key(key_t key);

/* The id (as `ipcs -m` shows it) of the table's root segment, the one at its
 * key, or -1 for a NULL handle.  Its data segments: hashtable_segments(). */
int hashtable_shmid(const struct hashtable *h);

/* Copies the table's empty and deleted sentinels (key_size bytes each;
 * either pointer may be NULL).  Returns 0, or -EINVAL for a NULL handle. */
int hashtable_sentinels(const struct hashtable *h, void *empty_key, void *deleted_key);

/* Checks the host's settings that can cost a table its contents: today
 * kernel.shm_rmid_forced = 1, under which the kernel removes a segment once
 * no process is attached to it and its creator has exited (a table loaded
 * by a process that then exits is gone).  Returns 0 if no such setting is
 * in force (buf gets ""), 1 if one is: buf gets one line naming it and its
 * fix (`sysctl -w kernel.shm_rmid_forced=0`, or keep a process attached),
 * truncated to n bytes and NUL-terminated when n > 0; -EINVAL if buf is
 * NULL and n > 0.  Reads /proc only (this IPC namespace's settings); safe
 * from any thread.  Call it when creating a table meant to outlive its
 * creator. */
int hashtable_host_check(char *buf, size_t n);

/* ---- Generations: replace and grow while readers run ----------------------
 *
 * A table is a small root segment at its key and one data segment per
 * generation (IPC_PRIVATE: key 0 in `ipcs -m`).  Every call on a handle
 * follows the current generation by itself: a call that starts after a
 * commit returned answers from the new generation, and each answer comes
 * wholly from one generation.  A replaced generation's segment is marked
 * for removal at commit and freed by the kernel when the last process
 * attached to it detaches; a process detaches it as soon as none of its
 * threads is inside a call on it: when the call that was using it returns,
 * else at its next call on the handle (an idle process that made no call
 * since the commit still holds it), or at hashtable_close.  A builder or grower killed at any
 * instruction leaves the current generation serving; the next writer,
 * hashtable_recover() or `shmkv verify --repair` removes what it left.
 *
 * Every call that reads a handle's table may also fail, when it finds a new
 * generation it cannot attach, with -EIDRM (its data segment was removed
 * meanwhile, more than 8 times in a row: the table is being removed), -EACCES
 * (this user may not attach it), -ENOMEM (out of memory for its mapping,
 * or for the calling thread's first reader record) or HASHTABLE_ECORRUPT
 * (the root names a segment that is not the table's: damaged, or an id the
 * kernel reused); the handle keeps its last generation and the next call
 * tries again.
 * hashtable_iterate's cursor is a slot index of one generation: a walk that
 * spans a commit goes on in the new generation, so compare
 * hashtable_generation() before and after it. */

struct hashtable_builder; /* a generation being built; private to one thread */

/* Begins replacing the table's contents: takes the writer lock (other
 * writers wait until commit or abort; readers go on reading the current
 * generation) and creates an empty generation.
 *   cfg  NULL: the current generation's capacity and load limit; otherwise
 *        cfg's capacity, entries and max_load (as for create; max_load 0
 *        keeps the current one).  cfg's key_size and value_size must be the
 *        table's, and its sentinels, if not NULL, the table's.
 * Before creating it, checks that kernel.shmmax and kernel.shmall have room
 * for the new data segment alongside the current one.  A dead builder's
 * leftovers are removed first.
 * Returns 0 and a builder in *out, or (with *out NULL and the lock
 * released, nothing created): -EINVAL (NULL argument, other widths or
 * sentinels, bad size or load limit: the last error names it), -EROFS
 * (read-only handle), -EACCES (the caller is neither the table's owner
 * nor root: a commit must remove the old generation, which only its owner,
 * creator or root may do), -ENOSPC (kernel.shmall or shmmni reached; the last
 * error gives both sizes and the sysctl), -ENOMEM, -EOVERFLOW (2^32 - 1
 * generations), HASHTABLE_ECORRUPT / HASHTABLE_EDEADWRITER as for
 * hashtable_update, or another -errno from shmget/shmat.
 * Thread-safety: the writer lock belongs to the calling thread, so
 * builder_put, replace_commit and replace_abort must be called from the
 * thread that called begin (from another, put and commit return -EINVAL and
 * abort does nothing, the builder staying valid); that thread may use the
 * handle meanwhile for reads, not for writes (update, delete, verify on a
 * read-write handle, grow, another begin), which would wait on its own
 * lock.  Other threads and processes may read and wait to write. */
int hashtable_replace_begin(struct hashtable *h, const struct hashtable_config *cfg,
                            struct hashtable_builder **out);

/* Puts a key (key_size bytes) and value (value_size bytes; NULL allowed
 * when value_size is 0) into the generation being built.  A private insert:
 * no reader sees the generation before commit, so it takes no lock and
 * writes no journal.  Returns 0 (inserted), 1 (overwrote a key put earlier
 * in the same build), -ENOMEM (the new generation is at its load limit:
 * nothing written; the build stays usable for overwrites, and may still be
 * committed or aborted), -EINVAL (NULL builder, key or value, a key equal
 * to a sentinel, or a thread other than begin's). */
int hashtable_builder_put(struct hashtable_builder *b, const void *key, const void *value);

/* Puts n records (keys: n contiguous keys of key_size bytes; values: n
 * contiguous values of value_size bytes, NULL allowed when value_size is 0)
 * as n hashtable_builder_put calls would, in array order, fetching their
 * buckets ahead so the cache misses overlap (several times faster than
 * single puts on a table larger than the caches).  Returns the number of
 * records that inserted a new key (0..n; the others overwrote a key put
 * earlier in the build).  On failure it stops at the first failing record
 * and returns its code, as hashtable_builder_put would (-ENOMEM at the load
 * limit, -EINVAL for a sentinel key), or, before any record, -EINVAL for a
 * NULL builder, keys or values, n > LONG_MAX, or a thread other than
 * begin's; the build stays usable.
 * Either way, when applied is not NULL, *applied is the number of records
 * put: [0, *applied) are in the build, *applied and after are not. */
long hashtable_builder_put_batch(struct hashtable_builder *b, size_t n, const void *keys,
                                 const void *values, size_t *applied);

/* Publishes the built generation in one step (every handle's next call
 * reads it), marks the old data segment for removal, releases the writer
 * lock and frees b.  Returns 0, -EIDRM when the table was removed during
 * the build (the new generation is removed too; b is freed), or -EINVAL
 * (NULL builder, or a thread other than begin's: nothing done, b valid). */
int hashtable_replace_commit(struct hashtable_builder *b);

/* Drops the build: removes its segment, releases the writer lock and frees
 * b.  The table is as it was.  NULL: nothing. */
void hashtable_replace_abort(struct hashtable_builder *b);

/* Copies every key into a new generation sized for `entries` keys at the
 * table's load limit, and publishes it as hashtable_replace_commit does.
 * Holds the writer lock throughout; readers go on reading.  Returns 0;
 * -EINVAL (NULL handle, or fewer entries than the table holds); -EROFS;
 * -EACCES (not the table's owner or root, as for replace_begin); -ENOSPC / -ENOMEM / -EOVERFLOW / -EIDRM as for replace_begin and commit;
 * after a failure the table is unchanged.  Safe from any thread. */
int hashtable_grow(struct hashtable *h, uint64_t entries);

/* The current generation number: 1 for a new table, +1 per commit or grow.
 * 0 for a NULL handle.  One load; safe from any thread. */
uint64_t hashtable_generation(struct hashtable *h);

#define HASHTABLE_SEG_ROOT 1     /* the root segment, at the table's key      */
#define HASHTABLE_SEG_CURRENT 2  /* the current generation's data segment     */
#define HASHTABLE_SEG_RETIRED 3  /* an older generation still held by attached
                                    processes (freed when they detach)       */
#define HASHTABLE_SEG_PENDING 4  /* a build in progress, or left by a dead
                                    builder (the next writer removes it)     */

struct hashtable_segment_info {
	int shmid;            /* as `ipcs -m` shows it                         */
	int role;             /* HASHTABLE_SEG_*                               */
	uint64_t generation;  /* 0 for the root                                */
	uint64_t bytes;       /* segment size                                  */
	uint64_t nattch;      /* processes attached                            */
	pid_t creator_pid, last_pid; /* shm_cpid, shm_lpid                    */
};

/* Every segment of the table: the root, the current data segment, a
 * pending build, and older generations still attached somewhere (found in
 * /proc/sysvipc/shm).  Fills up to n entries of out (the root first, then
 * the current one) and returns how many exist (may be more than n), or
 * -EINVAL (NULL handle, or NULL out with n > 0).  Safe from any thread.
 * To tell its own older generations from other tables', it attaches each
 * removed key-0 segment of the root's owner for a moment: so a call, in any
 * process and for any table, can hold another table's retired generation
 * for that moment, and a call for that table then lists it, attached. */
long hashtable_segments(struct hashtable *h, struct hashtable_segment_info *out, size_t n);

/* Text for a code returned by this library: 0, -1 ("not found"), a negative
 * or positive errno value, or a HASHTABLE_E* code; unknown codes get
 * "unknown error code".  A pure function of err, like strerror() in the C
 * locale but thread-safe: the same code always gives the same static string,
 * whatever happened before, and the string is never overwritten or freed. */
const char *hashtable_strerror(int err);

/* This thread's last failure, with its specifics: the size asked and the
 * kernel limit, the existing table's widths, the segment's owner and mode,
 * and the command that fixes it (a `sysctl -w`, `ipcrm -m ID`,
 * `shmkv chmod MODE TABLE`...).  One line, no trailing newline.
 * Set by every call that fails: one returning NULL, or a negative code other
 * than -1 ("not found").  Not changed by calls that succeed or return -1, so,
 * like errno, it is meaningful right after a failure and stale otherwise.
 * "" before the thread's first failure.  The string belongs to the thread
 * and is overwritten by its next failure; copy it to keep it. */
const char *hashtable_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* SHMKV_HASHTABLE_H */
