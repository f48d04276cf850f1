/* Shared code of the shmkv command-line tools (shmkv, shmkv-load).
 *
 * Messages: every line a tool prints on stderr starts with its name; advice
 * lines that follow a failure are indented under it.  Exit codes are the
 * same across tools (RC_* below) and are documented in --help and the man
 * pages.  Table names, field encodings, number parsing and the advice that
 * turns a kernel or library refusal into the command that fixes it live
 * here, so both tools say the same thing about the same problem. */
#ifndef SHMKV_TOOLS_COMMON_H
#define SHMKV_TOOLS_COMMON_H

#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hashtable.h"

/* Exit codes shared by every tool. */
enum {
	RC_OK = 0,       /* success                                           */
	RC_NOTFOUND = 1, /* no such table, file or key                        */
	RC_USAGE = 2,    /* bad command line                                  */
	RC_DATA = 3,     /* bad input data (or a table that fails verify)     */
	RC_REFUSED = 4,  /* refused by the kernel or the table: limits,
	                    permissions, a table full or of other widths     */
};

#define EXIT_CODES_HELP                                                       \
	"Exit status:\n"                                                      \
	"  0  success\n"                                                      \
	"  1  not found (no such table, file or key)\n"                       \
	"  2  usage error\n"                                                  \
	"  3  bad input data (or a table that fails verification)\n"          \
	"  4  refused by the kernel or the table (size limits, permissions,\n" \
	"     huge pages, a table full or existing with other widths)\n"       \
	"  128+N  killed by signal N (130: SIGINT) after removing what it was\n" \
	"     making (the file of dump -o, a table shmkv-load created, the\n"        \
	"     generation shmkv-load --replace was building)\n"

extern const char *tool_name;

/* "tool: message\n" on stderr. */
void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "tool:   message\n": an advice line under the previous message. */
void advise(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vmsg(const char *fmt, va_list ap);

/* The text to print for a library call's result rc: the specifics of this
 * thread's last failure (hashtable_last_error) when rc is a failure other
 * than "not found", else the code's own text (hashtable_strerror). */
const char *table_error(int rc);

/* Reports what getopt_long() returned for a bad option (it is told to be
 * silent: its own messages start with argv[0], not the tool's name). */
void option_error(int c, int optopt_char, const char *arg);

/* option_error(), then where to read the options: "try 'TOOL --help'".
 * Returns RC_USAGE. */
int option_rejected(int c, int optopt_char, const char *arg);

/* Prints the tool's name and version, library version included. */
void print_version(void);

/* ---- Table names ------------------------------------------------------ */

/* A table is named by a path (its IPC key is ftok(path, 1)) or by a numeric
 * IPC key written 0x... (hexadecimal).  "./0x12" is a path. */
struct table_name {
	const char *arg;  /* as the user wrote it                             */
	const char *path; /* NULL for a numeric key                           */
	key_t key;        /* ftok(path, 1) or the number; -1 if ftok failed    */
	int ftok_errno;   /* why ftok failed (ENOENT: no such file), else 0   */
};

/* Fills *tn.  Returns RC_OK, RC_USAGE (malformed or IPC_PRIVATE key).  A
 * missing file is not an error here: tn->key is then -1, and table_open()
 * or table_create() report it. */
int table_name_parse(const char *arg, struct table_name *tn);

/* Attaches to an existing table (flags: 0 or HASHTABLE_RDONLY).  On failure
 * prints why, with advice, and returns the exit code (RC_NOTFOUND when there
 * is no such file or segment). */
int table_open(const struct table_name *tn, int flags, struct hashtable **out);

/* Creates the table described by cfg (path or ipc_key are set from tn),
 * always with HASHTABLE_EXCL.  On failure prints why, with the command that
 * fixes it, and returns the exit code. */
int table_create(const struct table_name *tn, struct hashtable_config *cfg,
                 struct hashtable **out);

/* Warns on stderr when a path named a table created for another file
 * (stats.name_mismatch). */
void warn_name_mismatch(const struct table_name *tn, const struct hashtable_stats *st);

/* Prints that the existing table has other widths than asked, with the
 * commands that remove it.  Returns RC_REFUSED. */
int explain_widths(const struct table_name *tn, struct hashtable *h,
                   uint32_t want_key, uint32_t want_value);

/* The segment id at an IPC key, or -1. */
int shmid_of_key(key_t key);

/* Every segment of an attached table (hashtable_segments): the root, the
 * current generation's data segment, older generations still held by
 * attached processes, a pending build.  Returns the count with *out a
 * malloc'd array (free it), or a negative code (out of memory, or the
 * library's refusal). */
long table_segment_list(struct hashtable *h, struct hashtable_segment_info **out);

/* The pids of the processes (other than this one) that have segment shmid
 * attached, read from /proc/PID/maps (a SysV mapping shows the segment id
 * as its inode).  Fills up to max pids; returns how many were found (those
 * whose maps this user may read).  The segment's own last pid
 * (shm_lpid) names the last process that attached or detached it, which
 * any tool that looks at the segment changes. */
int shm_holders(int shmid, pid_t *pids, int max);

/* "root", "current", "retired", "pending" (or "?"). */
const char *segment_role_name(int role);

/* Maps a library or errno code to an exit code. */
int exit_code_for(int rc);

/* One row of /proc/sysvipc/shm: every segment on the host, readable by
 * anyone, whatever the segment's own mode. */
struct shm_row {
	key_t key;
	int id;
	unsigned perms; /* mode bits, SHM_DEST and SHM_LOCKED included */
	uint64_t size;
	pid_t cpid, lpid;
	uint64_t nattch;
	uid_t uid, cuid;
	gid_t gid, cgid;
	int64_t atime, dtime, ctime;
};

/* Reads every row into a malloc'd array.  Returns the count, or -errno. */
long shm_rows_read(struct shm_row **rows);
/* The row of a segment id or key: returns 0 and fills *row, or -1. */
int shm_row_by_id(int id, struct shm_row *row);
int shm_row_by_key(key_t key, struct shm_row *row);
/* "name (uid N)" for a uid, in a static buffer. */
const char *user_name(uid_t uid);
const char *group_name(gid_t gid);

/* ---- Operator traps ---------------------------------------------------- */

/* Warns (on stderr, with the fix) when kernel.shm_rmid_forced is 1: the
 * kernel then destroys a table once nothing is attached.  table_create()
 * calls it before creating. */
void warn_rmid_forced(const char *table);

/* Warns (with the fix) when the segment's owner is a regular user (uid >=
 * UID_MIN of /etc/login.defs, default 1000) on a host run by systemd, whose
 * logind (RemoveIPC=yes) removes that user's segments at logout. */
void warn_remove_ipc(const char *table, int shmid);

/* ---- Field encodings -------------------------------------------------- */

/* How a key or value is written in text input and output.
 *   raw   bytes as they are; shorter input is NUL-padded to the width; output
 *         is the full width (cdb and bin only: the default there)
 *   text  bytes as they are, NUL-padded; output drops trailing NULs
 *   hex   two hex digits a byte, NUL-padded when shorter
 *   u32, u64  unsigned decimal (or 0x hex) stored little-endian; the width
 *         must be 4 or 8 */
enum enc { ENC_DEFAULT, ENC_RAW, ENC_TEXT, ENC_HEX, ENC_U32, ENC_U64 };

int enc_parse(const char *s, enum enc *e);
const char *enc_name(enum enc e);
/* The width an encoding implies (4, 8), or 0 when any width will do. */
uint32_t enc_width(enum enc e);
/* Checks that encoding e can hold a field of this width; else prints why
 * and returns RC_USAGE. */
int enc_check_width(enum enc e, uint32_t width, const char *what);

/* Decodes src[0..len) into dst[0..width).  Returns 0, or -1 with a reason
 * in err (errlen bytes). */
int enc_decode(enum enc e, const unsigned char *src, size_t len,
               unsigned char *dst, size_t width, char *err, size_t errlen);

/* The number of bytes a field of `width` needs at most once encoded; the
 * buffer given to enc_encode must hold that many. */
size_t enc_max_len(enum enc e, size_t width);

/* Encodes src[0..width) into out.  Returns the length, or -1 if the field
 * cannot be written in this encoding and still read back (text holding a
 * NUL before its end, or a byte in `forbidden`, e.g. "\t\n"). */
long enc_encode(enum enc e, const unsigned char *src, size_t width, char *out,
                const char *forbidden);

/* A short printable form of a field for messages: "abc" when printable
 * (NUL padding dropped), else 0x0102... (cut at 32 bytes). */
const char *fmt_field(const void *p, size_t len, char *buf, size_t buflen);

/* ---- The dump's metadata record ---------------------------------------- */

/* `shmkv dump` (cdb format) writes, first, one record that describes the
 * table, so that `shmkv-load` can make the same table again:
 *   key    key_size + 1 bytes (so it can never be one of the table's keys):
 *          the first key_size + 1 bytes of "shmkv-meta", NUL-padded
 *   value  "shmkv-meta 1 key_size=8 value_size=8 capacity=BYTES
 *          max_load=0.8 mode=0644 empty=HEX deleted=HEX entries=N
 *          generation=G" (one line of text, fields separated by spaces)
 * tinycdb's cdb(1) reads it as any other record. */
#define META_MAGIC "shmkv-meta"
#define META_VERSION 1

struct table_meta {
	uint32_t key_size, value_size;
	uint64_t capacity;    /* the data segment's bytes                   */
	double max_load;
	unsigned mode;
	unsigned char empty[HASHTABLE_MAX_KEY], deleted[HASHTABLE_MAX_KEY];
	uint64_t entries;     /* keys the table held when dumped            */
	uint64_t generation;  /* informational                              */
};

/* The longest metadata value, in bytes. */
#define META_MAX_VALUE (4 * HASHTABLE_MAX_KEY + 512)

/* Fills key (key_size + 1 bytes) and value (META_MAX_VALUE bytes) for m.
 * Returns the value's length. */
size_t meta_format(const struct table_meta *m, unsigned char *key, char *value);

/* Whether a record is a metadata record: 1 (and *m filled), 0 if it is not
 * one (an ordinary record), -1 if it claims to be one but is malformed (why
 * filled). */
int meta_parse(const unsigned char *key, size_t klen, const unsigned char *value,
               size_t vlen, struct table_meta *m, char *why, size_t whylen);

/* ---- Options both tools take ------------------------------------------- */

/* A new table's defaults, written once: the option parsers, the sizing and
 * the --help texts (through STR()) all read these. */
#define DEFAULT_MAX_LOAD 0.8
#define DEFAULT_MODE 0600
#define STR_(x) #x
#define STR(x) STR_(x)

/* getopt_long() values of the shared long options that have no short form
 * (each tool numbers its own from 256; these sit above them). */
enum { OPT_KEY_ENC = 512, OPT_VALUE_ENC, OPT_EMPTY_KEY, OPT_DELETED_KEY };

/* Long options of field widths and encodings: -E, --key-enc, --value-enc,
 * -K, -V.  Short letters: "E:K:V:". */
#define FIELD_LONG_OPTIONS                                                    \
	{ "encoding", required_argument, 0, 'E' },                            \
	{ "key-enc", required_argument, 0, OPT_KEY_ENC },                     \
	{ "value-enc", required_argument, 0, OPT_VALUE_ENC },                 \
	{ "key-size", required_argument, 0, 'K' },                            \
	{ "value-size", required_argument, 0, 'V' }

/* Long options that size and shape a new table.  --huge-pages is the
 * documented spelling; --hugepages, the first one shipped, still works.
 * Short letters: "l:m:n:c:M:H". */
#define CREATE_LONG_OPTIONS                                                   \
	{ "load", required_argument, 0, 'l' },                                \
	{ "max-load", required_argument, 0, 'm' },                            \
	{ "entries", required_argument, 0, 'n' },                             \
	{ "capacity", required_argument, 0, 'c' },                            \
	{ "mode", required_argument, 0, 'M' },                                \
	{ "huge-pages", no_argument, 0, 'H' },                                \
	{ "hugepages", no_argument, 0, 'H' },                                 \
	{ "empty-key", required_argument, 0, OPT_EMPTY_KEY },                 \
	{ "deleted-key", required_argument, 0, OPT_DELETED_KEY }

/* What the field options ask for.  ENC_DEFAULT and *_set == 0 mean "not
 * given": each tool picks its own default then. */
struct field_opts {
	enum enc kenc, venc;
	uint32_t ks, vs;
	int ks_set, vs_set;
};

/* Parses option c (as getopt_long() returned it) if it is a field option.
 * Returns 0 if c is not one, 1 once it is stored, -1 after printing why its
 * value is bad (the caller exits with RC_USAGE). */
int field_opt_parse(int c, const char *arg, struct field_opts *fo);

/* What the options that size and shape a new table ask for. */
struct create_opts {
	double load, max_load;
	int load_set, max_load_set, mode_set;
	uint64_t entries, capacity;
	unsigned mode;
	int hugetlb;
	unsigned char *empty_key, *deleted_key;
	uint32_t empty_len, deleted_len;
};

/* Sets the defaults (DEFAULT_MODE, DEFAULT_MAX_LOAD). */
void create_opts_init(struct create_opts *co);

/* Parses option c if it is a creation option; returns as field_opt_parse. */
int create_opt_parse(int c, const char *arg, struct create_opts *co);

/* True when any creation option was given (they are ignored, with a
 * warning, when the table exists). */
int create_opts_given(const struct create_opts *co);

/* Copies mode, load limit, sentinels and huge pages into cfg. */
void create_opts_apply(const struct create_opts *co, struct hashtable_config *cfg);

/* Frees the sentinel keys. */
void create_opts_free(struct create_opts *co);

/* ---- Numbers ---------------------------------------------------------- */

/* Unsigned integer with an optional K, M, G, T suffix (powers of 1024). */
int parse_size(const char *s, uint64_t *out);
/* Unsigned integer, decimal or 0x hex, no suffix, sign or blank. */
int parse_u64(const char *s, uint64_t *out);
/* A field width: parse_size() within min..max; else prints why (naming
 * `what`) and returns RC_USAGE. */
int parse_width(const char *s, uint32_t min, uint32_t max, uint32_t *out, const char *what);
/* "KEY[,VALUE]" encoding names; one name sets both.  Returns RC_OK, or
 * RC_USAGE after printing why. */
int parse_encodings(const char *s, enum enc *kenc, enum enc *venc);
/* Load: a fraction in (0, 1] or a percent in (1, 100]; returned as a fraction. */
int parse_load(const char *s, double *out);
/* Octal permission bits 0..0777. */
int parse_mode(const char *s, unsigned *out);
/* Key of key_size bytes written in hex (for --empty-key, --deleted-key). */
int parse_hex_key(const char *s, unsigned char **out, uint32_t *len);

/* Seconds since an arbitrary start, monotonic. */
double now_seconds(void);

#endif
