/* shmkv-load: fills a shmkv table from tsv, cdb or fixed-width binary input.
 *
 * All or nothing.  The whole input is parsed and checked before the first
 * write: encodings, field widths, keys equal to a sentinel, and whether the
 * keys not yet in the table fit under its load limit.  Only then is the
 * table created (when absent) and written.  Bad input therefore leaves the
 * table exactly as it was, and a segment this run created is removed on any
 * later failure or interruption.
 *
 * Two ways to write into an existing table.  Without --replace, upserts
 * through the library's writer lock: keys absent from the input stay, and
 * readers see the table change record by record; an interruption leaves
 * the records written so far (not atomic; a concurrent writer may also fill
 * the table between the check and the writes).  With --replace, the whole
 * input goes into a new generation that nobody reads yet
 * (hashtable_replace_begin / builder_put, the library's fast private
 * build), published in one step by hashtable_replace_commit: readers see
 * the old data or the new, never a mix, and keys absent from the input are
 * gone.  Any failure or SIGINT/SIGTERM/SIGHUP drops the build
 * (hashtable_replace_abort) and the old generation serves on, untouched;
 * after a SIGKILL the library's build record lets the next writer, or
 * `shmkv verify --repair`, remove the pending segment.
 *
 * Metadata.  A cdb dump made by `shmkv dump` starts with a record whose key
 * is key_size + 1 bytes long (never a table key) and whose value describes
 * the table (common.h, META_MAGIC).  It is never loaded as data; when this
 * run creates the table, the table takes its widths, sentinels, capacity,
 * load limit and mode from it, except where the command line says
 * otherwise.
 *
 * Memory.  Regular files are mapped, pipes are read into one growing buffer.
 * Binary input is already fixed-width: it is validated and written in place.
 * Text input (tsv, cdb) is parsed into a compact array of fixed-width records
 * when, at every point of the input, that array is no longer than the text
 * it replaces (plus ARRAY_SLACK): the text already parsed is then released as
 * the parse goes, so the text and the array together never hold much more
 * than the input's size.  Otherwise (short lines, wide fields) the text is
 * kept and parsed again by each later pass.  A prescan that counts lines (or
 * cdb record headers) decides between the two before parsing starts. */
#include "common.h"
#include "twemproxy-hash.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum fmt { FMT_AUTO, FMT_TSV, FMT_CDB, FMT_BIN };

/* What a key met more than once in the input does (--duplicates). */
enum dups { DUP_LAST, DUP_FIRST, DUP_ERROR, DUP_WARN };
static const char *const dup_names[] = { "last", "first", "error", "warn" };

/* A table created without -n, -l or -c is sized for this many times the
 * input's records, so that it is not born full. */
#define HEADROOM 1.25
/* After loading a table it created, the tool warns when less than this
 * share of the load limit is left for later inserts. */
#define LOW_ROOM 0.05
static const char *const fmt_names[] = { "auto", "tsv", "cdb", "bin" };

#define MAX_REASONS 5            /* bad records described in messages       */
#define ARRAY_SLACK (1u << 20)   /* how far the array may outgrow the text  */
#define DROP_STEP (8u << 20)     /* parsed text is released in such steps   */
#define TICK 8192                /* records between looks at clock, signals */
#define BATCH_BYTES (4u << 20)   /* keys and values per search_batch call   */

struct keyset;

struct input {
	const char *name;
	unsigned char *data;
	size_t len;
	void *base;      /* what to munmap: base, base_len (NULL if nothing) */
	size_t base_len;
	size_t dropped;  /* data[0, dropped) has been released               */
};

struct opts {
	enum fmt fmt;
	struct field_opts f;
	struct create_opts co;
	int excl;
	int skip_bad, quiet, progress, verbose;
	int crlf;            /* strip a CR before each tsv newline        */
	int replace;         /* build a new generation, commit atomically */
	int allow_empty;     /* --replace may empty the table             */
	enum dups dups;
	/* --shard I/N --hash NAME: only the keys twemproxy routes to server I */
	uint32_t shard, nshards;
	twem_hash_fn shard_hash;
	const char *shard_hash_name;
};

/* Where a record came from, for messages. */
struct where {
	const struct input *in;
	uint64_t line;  /* tsv: its line; 0 for cdb and bin   */
	uint64_t recno; /* 1-based, within its input           */
	size_t off;     /* byte offset of the record's start   */
};

struct cursor {
	size_t off;
	uint64_t line, recno;
	int ended; /* cdb: the empty line that closes the records was read */
};

struct loader {
	struct opts o;
	struct table_name tn;
	struct input *in;
	size_t nin;
	uint64_t in_bytes;
	enum fmt fmt;
	uint32_t ks, vs;
	size_t rs;                     /* ks + vs: one record                */
	unsigned char *empty, *deleted; /* sentinels, ks bytes each          */
	int sentinels_known;           /* else search() tells, key by key    */
	/* prescan */
	uint64_t bound;                /* records, at most                    */
	size_t max_klen, max_vlen;     /* longest fields, in input bytes      */
	int prescan_ok;
	/* parse */
	uint64_t nread, good, bad;
	size_t longest_key, longest_value; /* decoded bytes, over all records */
	int key_too_wide, value_too_wide;
	uint64_t dup_count;            /* records whose key came earlier       */
	struct keyset *written;        /* --duplicates=first: keys written     */
	int stopped;                   /* parse gave up: fatal or too many bad */
	char *reasons[MAX_REASONS];
	unsigned char *arr;            /* array mode: the good records        */
	size_t arr_len;
	uint64_t arr_n;
	int array_mode;
	uint64_t other_shards;         /* --shard: records left to other shards */
	int counting_shards;           /* the parse pass counts them          */
	/* metadata record of a shmkv dump (cdb) */
	struct table_meta meta;
	int have_meta;                 /* found one                           */
	int use_meta;                  /* creating: its geometry applies      */
	/* table */
	struct hashtable *h;
	struct hashtable_builder *b;   /* --replace: the build in progress    */
	struct hashtable_config full;  /* --replace creating: the real size   */
	int have_full;                 /* (the table is created tiny first)   */
	uint64_t gen0;                 /* the generation serving before       */
	int created;
	uint64_t count0, max_count, newkeys, inserted, updated, late_bad;
	/* progress */
	int show_progress, show_summary;
	int progress_shown;
	const char *phase;
	uint64_t total;
	char phases[256];              /* "reading 1.20 s, writing 3.40 s" */
	double t0, phase_t0, last_print;
	unsigned char *scratch;        /* one record                          */
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

/* ---- Messages and progress ---------------------------------------------- */

static void where_text(const struct loader *L, const struct where *w, char *buf, size_t len)
{
	if (L->fmt == FMT_TSV)
		snprintf(buf, len, "%s:%" PRIu64, w->in->name, w->line);
	else
		snprintf(buf, len, "%s: record %" PRIu64 " (byte offset %zu)", w->in->name,
		         w->recno, w->off);
}

/* Counts a bad record and keeps the first few reasons. */
static void bad_record(struct loader *L, const struct where *w, const char *why)
{
	char at[600];
	L->bad++;
	if (L->bad > MAX_REASONS)
		return;
	where_text(L, w, at, sizeof at);
	size_t n = strlen(at) + strlen(why) + 3;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s: %s", at, why);
	L->reasons[L->bad - 1] = s;
}

static void progress_clear(struct loader *L)
{
	if (L->progress_shown) {
		fputs("\r\033[K", stderr);
		L->progress_shown = 0;
	}
}

static void phase_start(struct loader *L, const char *phase, uint64_t total)
{
	double t = now_seconds();
	progress_clear(L);
	if (L->phase) {
		size_t n = strlen(L->phases);
		snprintf(L->phases + n, sizeof L->phases - n, "%s%s %.2f s", n ? ", " : "",
		         L->phase, t - L->phase_t0);
	}
	L->phase = phase;
	L->total = total;
	L->phase_t0 = L->last_print = now_seconds();
}

static void progress(struct loader *L, uint64_t done)
{
	if (!L->show_progress)
		return;
	double t = now_seconds();
	if (t - L->last_print < 0.25)
		return;
	L->last_print = t;
	double el = t - L->phase_t0, rate = el > 0 ? (double)done / el : 0;
	double pct = L->total ? 100.0 * (double)done / (double)L->total : 0;
	char eta[32] = "?";
	if (rate > 0 && L->total >= done)
		snprintf(eta, sizeof eta, "%.0fs", (double)(L->total - done) / rate);
	fprintf(stderr, "\r%s: %s %5.1f%%  %" PRIu64 "/%" PRIu64 "  %.2fM records/s  ETA %s\033[K",
	        tool_name, L->phase, pct > 100 ? 100 : pct, done, L->total, rate / 1e6, eta);
	L->progress_shown = 1;
}

/* ---- Input ---------------------------------------------------------------- */

/* Reads a pipe into one growing anonymous mapping (released page by page
 * later, like a file mapping). */
static int read_stream(int fd, struct input *in)
{
	size_t cap = 16u << 20, len = 0;
	unsigned char *buf = mmap(NULL, cap, PROT_READ | PROT_WRITE,
	                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return -errno;
	for (;;) {
		if (len == cap) {
			void *g = mremap(buf, cap, 2 * cap, MREMAP_MAYMOVE);
			if (g == MAP_FAILED) {
				int e = errno;
				munmap(buf, cap);
				return -e;
			}
			buf = g;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR && !stop_signal)
			continue;
		if (n < 0) {
			int e = errno;
			munmap(buf, cap);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	in->data = buf;
	in->len = len;
	in->base = buf;
	in->base_len = cap;
	return 0;
}

static int open_input(const char *name, struct input *in)
{
	int fd = strcmp(name, "-") == 0 ? 0 : open(name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int rc = 0;
	in->name = fd == 0 ? "<stdin>" : name;
	if (fd < 0) {
		msg("%s: %s", name, strerror(errno));
		return errno == ENOENT ? RC_NOTFOUND : RC_REFUSED;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
	} else if (S_ISREG(st.st_mode)) {
		off_t pos = fd == 0 ? lseek(fd, 0, SEEK_CUR) : 0;
		if (pos < 0)
			pos = 0;
		if (st.st_size > pos) {
			void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
			if (m == MAP_FAILED) {
				rc = -errno;
			} else {
				madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
				in->base = m;
				in->base_len = (size_t)st.st_size;
				in->data = (unsigned char *)m + pos;
				in->len = (size_t)(st.st_size - pos);
			}
		}
	} else {
		rc = read_stream(fd, in);
	}
	if (fd != 0)
		close(fd);
	if (rc < 0) {
		msg("%s: cannot read: %s", in->name, strerror(-rc));
		return RC_REFUSED;
	}
	return RC_OK;
}

/* Releases the pages of in->data[0, upto): the text is no longer needed. */
static void input_drop(struct input *in, size_t upto)
{
	if (!in->data) { /* an empty input maps nothing: no pages, no arithmetic on NULL */
		in->dropped = upto;
		return;
	}
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t from = ((uintptr_t)(in->data + in->dropped) + (uintptr_t)page - 1) &
	                 ~((uintptr_t)page - 1);
	uintptr_t to = (uintptr_t)(in->data + upto) & ~((uintptr_t)page - 1);
	if (to > from)
		madvise((void *)from, to - from, MADV_DONTNEED);
	in->dropped = upto;
}

static void inputs_free(struct loader *L)
{
	for (size_t i = 0; i < L->nin; i++)
		if (L->in[i].base)
			munmap(L->in[i].base, L->in[i].base_len);
	free(L->in);
	L->in = NULL;
	L->nin = 0;
}

/* ---- Parsing ------------------------------------------------------------- */

static int is_sentinel(const struct loader *L, const unsigned char *key, const char **which)
{
	if (!L->sentinels_known || (key[0] != L->empty[0] && key[0] != L->deleted[0]))
		return 0;
	if (memcmp(key, L->empty, L->ks) == 0) {
		*which = "the table's empty-slot marker";
		return 1;
	}
	if (memcmp(key, L->deleted, L->ks) == 0) {
		*which = "the table's deleted-slot marker";
		return 1;
	}
	return 0;
}

/* Decodes one field; on failure fills why with "key: reason". */
static int decode(enum enc e, const char *what, const unsigned char *src, size_t len,
                  unsigned char *dst, size_t width, char *why, size_t whylen)
{
	char err[200];
	if (enc_decode(e, src, len, dst, width, err, sizeof err) == 0)
		return 0;
	snprintf(why, whylen, "%s: %s", what, err);
	return -1;
}

static int check_key(const struct loader *L, const unsigned char *rec, char *why, size_t whylen)
{
	const char *which;
	char f[128];
	if (!is_sentinel(L, rec, &which))
		return 0;
	snprintf(why, whylen, "key %s is %s and cannot be stored",
	         fmt_field(rec, L->ks, f, sizeof f), which);
	return -1;
}

/* The bytes a field of len input bytes decodes to (0: a number). */
static size_t field_bytes(enum enc e, size_t len)
{
	return e == ENC_HEX ? (len + 1) / 2 : enc_width(e) ? 0 : len;
}

/* Keeps the longest key and value the input holds, and whether one is
 * wider than the table, for the advice after the bad records. */
static void note_lengths(struct loader *L, size_t klen, size_t vlen)
{
	size_t kb = field_bytes(L->o.f.kenc, klen), vb = field_bytes(L->o.f.venc, vlen);
	if (kb > L->longest_key)
		L->longest_key = kb;
	if (vb > L->longest_value)
		L->longest_value = vb;
	L->key_too_wide |= kb > L->ks;
	L->value_too_wide |= vb > L->vs;
}

/* Record results: 1 one record decoded into rec, 0 end of input, -1 a bad
 * record (skipped: cursor past it), -2 malformed input that cannot be read
 * on (cdb framing). */

static int parse_tsv(struct loader *L, const struct input *in, struct cursor *c,
                     struct where *w, unsigned char *rec, char *why, size_t whylen)
{
	const unsigned char *d = in->data;
	for (;;) {
		if (c->off >= in->len)
			return 0;
		const unsigned char *s = d + c->off;
		const unsigned char *nl = memchr(s, '\n', in->len - c->off);
		size_t end = nl ? (size_t)(nl - d) : in->len;
		w->off = c->off;
		c->off = nl ? end + 1 : in->len;
		c->line++;
		size_t n = end - w->off;
		if (n && s[n - 1] == '\r' && L->o.crlf)
			n--;
		if (n == 0)
			continue; /* empty line */
		c->recno++;
		w->line = c->line;
		w->recno = c->recno;
		if (s[n - 1] == '\r') {
			snprintf(why, whylen, "the line ends with a CR: the input has Windows (CRLF) "
			         "line endings; give --crlf to strip them (or convert it: dos2unix)");
			return -1;
		}
		const unsigned char *tab = memchr(s, '\t', n);
		size_t klen = tab ? (size_t)(tab - s) : n;
		note_lengths(L, klen, tab ? n - klen - 1 : 0);
		if (!tab && L->vs) {
			snprintf(why, whylen, "no TAB between key and value");
			return -1;
		}
		if (decode(L->o.f.kenc, "key", s, klen, rec, L->ks, why, whylen) < 0)
			return -1;
		if (tab && decode(L->o.f.venc, "value", tab + 1, n - klen - 1, rec + L->ks, L->vs,
		                  why, whylen) < 0)
			return -1;
		return check_key(L, rec, why, whylen) < 0 ? -1 : 1;
	}
}

/* Reads a decimal length ended by `stop`; 0 on success. */
static int cdb_len(const unsigned char *d, size_t len, size_t *off, int stop, uint32_t *out)
{
	uint64_t v = 0;
	size_t i = *off, start = i;
	while (i < len && d[i] >= '0' && d[i] <= '9' && i - start < 10)
		v = v * 10 + (uint64_t)(d[i++] - '0');
	if (i == start || i >= len || d[i] != stop || v > 0x7fffffff)
		return -1;
	*off = i + 1;
	*out = (uint32_t)v;
	return 0;
}

/* Frames one cdb record: returns 1 with key and value located, 0 at the
 * end, -2 with why filled. */
static int cdb_frame(const struct input *in, struct cursor *c, struct where *w,
                     size_t *koff, uint32_t *klen, size_t *voff, uint32_t *vlen,
                     char *why, size_t whylen)
{
	const unsigned char *d = in->data;
	for (;;) {
		w->off = c->off;
		w->recno = c->recno + 1;
		if (c->off >= in->len) {
			if (c->ended || in->len == 0)
				return 0;
			snprintf(why, whylen, "the input ends without the empty line that closes "
			         "cdb records (truncated?)");
			return -2;
		}
		if (d[c->off] == '\n') {
			c->ended = 1;
			c->off++;
			continue;
		}
		if (d[c->off] != '+') {
			snprintf(why, whylen, c->ended ? "data after the empty line that ends the records"
			                               : "expected '+' at the start of a record");
			return -2;
		}
		c->ended = 0;
		size_t o = c->off + 1;
		if (cdb_len(d, in->len, &o, ',', klen) < 0 || cdb_len(d, in->len, &o, ':', vlen) < 0) {
			snprintf(why, whylen, "malformed record header (expected +KLEN,VLEN:)");
			return -2;
		}
		if ((uint64_t)o + *klen + 2 + *vlen + 1 > in->len) {
			snprintf(why, whylen, "the record (%u-byte key, %u-byte value) runs past the "
			         "end of the input (truncated?)", *klen, *vlen);
			return -2;
		}
		*koff = o;
		o += *klen;
		if (d[o] != '-' || d[o + 1] != '>') {
			snprintf(why, whylen, "expected \"->\" after the %u-byte key", *klen);
			return -2;
		}
		*voff = o + 2;
		o = *voff + *vlen;
		if (d[o] != '\n') {
			snprintf(why, whylen, "expected a newline after the %u-byte value%s", *vlen,
			         d[o] == '\r' ? ", found a CR: the input has Windows (CRLF) line "
			         "endings, which cdb records cannot have" : "");
			return -2;
		}
		c->off = o + 1;
		c->recno++;
		return 1;
	}
}

/* Whether a framed cdb record is a shmkv dump's metadata record (never a
 * table key: its key is key_size + 1 bytes). */
static int is_meta(const struct input *in, size_t koff, uint32_t klen, size_t voff,
                   uint32_t vlen)
{
	static struct table_meta m;
	char why[256];
	return meta_parse(in->data + koff, klen, in->data + voff, vlen, &m, why, sizeof why) != 0;
}

static int parse_cdb(struct loader *L, const struct input *in, struct cursor *c,
                     struct where *w, unsigned char *rec, char *why, size_t whylen)
{
	size_t koff, voff;
	uint32_t klen, vlen;
	int r, m;
	struct table_meta meta;
	do {
		r = cdb_frame(in, c, w, &koff, &klen, &voff, &vlen, why, whylen);
		if (r <= 0)
			return r;
		m = meta_parse(in->data + koff, klen, in->data + voff, vlen, &meta, why, whylen);
		if (m < 0)
			return -1;
	} while (m == 1); /* the metadata record is not data */
	note_lengths(L, klen, vlen);
	if (decode(L->o.f.kenc, "key", in->data + koff, klen, rec, L->ks, why, whylen) < 0 ||
	    decode(L->o.f.venc, "value", in->data + voff, vlen, rec + L->ks, L->vs, why, whylen) < 0)
		return -1;
	return check_key(L, rec, why, whylen) < 0 ? -1 : 1;
}

/* Binary records are used in place: *recp points into the input. */
static int parse_bin(struct loader *L, const struct input *in, struct cursor *c,
                     struct where *w, const unsigned char **recp, char *why, size_t whylen)
{
	if (c->off >= in->len)
		return 0;
	w->off = c->off;
	w->recno = ++c->recno;
	if (in->len - c->off < L->rs) {
		snprintf(why, whylen, "%zu trailing bytes do not make a whole %zu-byte record "
		         "(key %u + value %u)", in->len - c->off, L->rs, L->ks, L->vs);
		c->off = in->len;
		return -1;
	}
	*recp = in->data + c->off;
	c->off += L->rs;
	return check_key(L, *recp, why, whylen) < 0 ? -1 : 1;
}

/* Next record of any format: rec points at ks + vs bytes (into the input
 * for bin, else into `buf`). */
static int parse_record(struct loader *L, const struct input *in, struct cursor *c,
                      struct where *w, unsigned char *buf, const unsigned char **rec,
                      char *why, size_t whylen)
{
	w->in = in;
	*rec = buf;
	switch (L->fmt) {
	case FMT_TSV: return parse_tsv(L, in, c, w, buf, why, whylen);
	case FMT_CDB: return parse_cdb(L, in, c, w, buf, why, whylen);
	default: return parse_bin(L, in, c, w, rec, why, whylen);
	}
}

/* --shard: whether twemproxy (distribution modula) routes this key to our
 * shard.  Clients send keys unpadded, so the hash covers the key without
 * its trailing NUL padding. */
static int in_shard(const struct loader *L, const unsigned char *rec)
{
	size_t n = L->ks;
	while (n > 0 && rec[n - 1] == 0)
		n--;
	return L->o.shard_hash(rec, n) % L->o.nshards == L->o.shard;
}

/* Next good record of our shard (every record without --shard), or what
 * parse_record says of a bad one or the end. */
static int parse_next(struct loader *L, const struct input *in, struct cursor *c,
                      struct where *w, unsigned char *buf, const unsigned char **rec,
                      char *why, size_t whylen)
{
	int r;
	while ((r = parse_record(L, in, c, w, buf, rec, why, whylen)) == 1 && L->o.nshards &&
	       !in_shard(L, *rec))
		L->other_shards += L->counting_shards;
	return r;
}

/* ---- Prescan: record count, field lengths, array or not ------------------ */

static void prescan_tsv(struct loader *L, int lengths)
{
	uint64_t recs = 0, base = 0;
	int64_t max_excess = 0;
	for (size_t i = 0; i < L->nin; i++) {
		const unsigned char *d = L->in[i].data;
		size_t len = L->in[i].len, off = 0;
		while (off < len) {
			const unsigned char *nl = memchr(d + off, '\n', len - off);
			size_t end = nl ? (size_t)(nl - d) : len;
			if (end > off) {
				recs++;
				if (lengths) {
					size_t e = end;
					if (L->o.crlf && e > off && d[e - 1] == '\r')
						e--; /* --crlf: the CR is not data */
					const unsigned char *tab = memchr(d + off, '\t', e - off);
					size_t kl = tab ? (size_t)(tab - d) - off : e - off;
					size_t vl = tab ? e - (size_t)(tab - d) - 1 : 0;
					if (kl > L->max_klen)
						L->max_klen = kl;
					if (vl > L->max_vlen)
						L->max_vlen = vl;
				}
			}
			off = nl ? end + 1 : len;
			int64_t ex = (int64_t)(recs * L->rs) - (int64_t)(base + off);
			if (ex > max_excess)
				max_excess = ex;
		}
		base += len;
	}
	L->bound = recs;
	L->prescan_ok = max_excess <= (int64_t)ARRAY_SLACK;
}

static void prescan_cdb(struct loader *L)
{
	uint64_t recs = 0, base = 0;
	int64_t max_excess = 0;
	char why[256];
	L->prescan_ok = 1;
	for (size_t i = 0; i < L->nin; i++) {
		struct cursor c = {0};
		struct where w = {0};
		size_t ko, vo;
		uint32_t kl, vl;
		int r;
		while ((r = cdb_frame(&L->in[i], &c, &w, &ko, &kl, &vo, &vl, why, sizeof why)) == 1) {
			if (is_meta(&L->in[i], ko, kl, vo, vl))
				continue;
			recs++;
			if (kl > L->max_klen)
				L->max_klen = kl;
			if (vl > L->max_vlen)
				L->max_vlen = vl;
			int64_t ex = (int64_t)(recs * L->rs) - (int64_t)(base + c.off);
			if (ex > max_excess)
				max_excess = ex;
		}
		if (r < 0)
			L->prescan_ok = 0; /* the parse will say what is wrong */
		base += L->in[i].len;
	}
	L->bound = recs;
	if (max_excess > (int64_t)ARRAY_SLACK)
		L->prescan_ok = 0;
}

/* A signal before the first write: says so.  Returns RC_REFUSED (main then
 * dies of the signal). */
static int interrupted_early(struct loader *L)
{
	msg("%s: interrupted before writing; nothing was written%s", L->tn.arg,
	    L->created ? " and the new table is removed" : "");
	return RC_REFUSED;
}

/* ---- Pass 1: parse and check every record ----------------------------------- */

/* Pass 1 over bin input without --shard, in a tight loop: a bin record
 * is good unless its key is a sentinel or it is cut short, so the only work
 * a record is that check -- no parse call, no position kept (the general
 * loop's per-record calls were as many instructions as the whole build).
 * Stops before the first record that is not good, leaving it and the rest
 * to the general loop from cursor c; counts and progress as that loop
 * keeps them.  Returns 1 when a signal asks to stop. */
static int parse_bin_run(struct loader *L, const struct input *in, struct cursor *c)
{
	const char *which;
	while (in->len - c->off >= L->rs) {
		/* up to the next multiple of TICK, where the general loop looks
		 * at the clock and signals */
		uint64_t room = (in->len - c->off) / L->rs, m = TICK - L->nread % TICK, i = 0;
		if (m > room)
			m = room;
		for (; i < m && !is_sentinel(L, in->data + c->off + i * L->rs, &which); i++)
			;
		c->off += i * L->rs;
		c->recno += i;
		L->nread += i;
		L->good += i;
		if (i < m)
			return 0; /* a sentinel: the general loop reports it */
		if (L->nread % TICK == 0) {
			progress(L, L->nread);
			if (stop_signal)
				return 1;
		}
	}
	return 0;
}

static void parse_pass(struct loader *L)
{
	char why[512];
	phase_start(L, "reading", L->fmt == FMT_BIN ? L->in_bytes / (L->rs ? L->rs : 1) : L->bound);
	L->counting_shards = 1;
	for (size_t i = 0; i < L->nin && !L->stopped; i++) {
		struct input *in = &L->in[i];
		struct cursor c = {0};
		struct where w = {0};
		const unsigned char *rec;
		if (L->fmt == FMT_BIN && L->rs && !L->o.nshards && !L->array_mode && parse_bin_run(L, in, &c))
			return;
		for (;;) {
			unsigned char *dst = L->array_mode ? L->arr + L->arr_n * L->rs : L->scratch;
			int r = parse_next(L, in, &c, &w, dst, &rec, why, sizeof why);
			if (r == 0)
				break;
			L->nread += r != -2;
			if (r == 1) {
				L->good++;
				L->arr_n += L->array_mode;
			} else {
				bad_record(L, &w, why);
				if (r == -2 || (!L->o.skip_bad && L->bad >= MAX_REASONS)) {
					L->stopped = 1 + (r == -2);
					break;
				}
			}
			if (L->nread % TICK == 0) {
				progress(L, L->nread);
				if (stop_signal)
					return;
				if (L->array_mode && c.off - in->dropped >= DROP_STEP)
					input_drop(in, c.off);
			}
		}
		if (L->array_mode)
			input_drop(in, in->len);
	}
	progress_clear(L);
	L->counting_shards = 0;
}

/* ---- Iterating over the good records --------------------------------------- */

typedef int (*rec_fn)(struct loader *L, const unsigned char *rec, const struct where *w,
                      void *ctx);

/* Calls fn for every good record in input order (w is NULL in array mode).
 * Stops when fn returns non-zero, and returns that. */
static int for_each_good(struct loader *L, rec_fn fn, void *ctx)
{
	char why[512];
	uint64_t n = 0;
	int r;
	if (L->array_mode) {
		for (uint64_t i = 0; i < L->arr_n; i++) {
			if ((r = fn(L, L->arr + i * L->rs, NULL, ctx)) != 0)
				return r;
			if (++n % TICK == 0) {
				progress(L, n);
				if (stop_signal)
					return -EINTR;
			}
		}
		return 0;
	}
	for (size_t i = 0; i < L->nin; i++) {
		struct cursor c = {0};
		struct where w = {0};
		const unsigned char *rec;
		int p;
		while ((p = parse_next(L, &L->in[i], &c, &w, L->scratch, &rec, why, sizeof why)) != 0) {
			if (p != 1)
				continue; /* reported by the parse pass */
			if ((r = fn(L, rec, &w, ctx)) != 0)
				return r;
			if (++n % TICK == 0) {
				progress(L, n);
				if (stop_signal)
					return -EINTR;
			}
		}
	}
	return 0;
}

/* ---- Pass 2: how many keys are new --------------------------------------- */

/* Keys not in the table, met twice in the input, are counted once with this
 * set.  Needed only when a simpler bound does not settle the question. */
struct keyset {
	unsigned char *keys;
	unsigned char *used;
	size_t cap, n, ks;
};

static uint64_t hash_bytes(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

/* Returns 1 if key was added, 0 if it was there, -1 out of memory. */
static int keyset_add(struct keyset *s, const unsigned char *key)
{
	if (2 * (s->n + 1) > s->cap) {
		struct keyset g = { 0, 0, s->cap ? 2 * s->cap : 1024, 0, s->ks };
		g.keys = malloc(g.cap * g.ks);
		g.used = calloc(g.cap, 1);
		if (!g.keys || !g.used) {
			free(g.keys);
			free(g.used);
			return -1;
		}
		for (size_t i = 0; i < s->cap; i++)
			if (s->used[i])
				keyset_add(&g, s->keys + i * s->ks);
		free(s->keys);
		free(s->used);
		*s = g;
	}
	size_t i = (size_t)hash_bytes(key, s->ks) & (s->cap - 1);
	for (; s->used[i]; i = (i + 1) & (s->cap - 1))
		if (memcmp(s->keys + i * s->ks, key, s->ks) == 0)
			return 0;
	memcpy(s->keys + i * s->ks, key, s->ks);
	s->used[i] = 1;
	s->n++;
	return 1;
}

struct checker {
	size_t cap, n;
	unsigned char *keys, *vals;
	int *found;
	struct where *w;      /* per key, when known                     */
	uint64_t notfound;
	struct keyset *set;   /* when set: not-found keys counted once    */
	int err;
};

/* Runs one batch of lookups.  A key the table rejects as a sentinel (when
 * its sentinels are not the defaults) is looked up alone and reported. */
static int check_flush(struct loader *L, struct checker *ck)
{
	if (!ck->n)
		return 0;
	long r = hashtable_search_batch(L->h, ck->n, ck->keys, ck->vals, ck->found);
	if (r == -EINVAL) {
		for (size_t i = 0; i < ck->n; i++) {
			int s = hashtable_search(L->h, ck->keys + i * L->ks, ck->vals);
			if (s == -EINVAL && ck->w[i].in) {
				char why[256], f[128];
				snprintf(why, sizeof why, "key %s is one of the table's sentinels and "
				         "cannot be stored", fmt_field(ck->keys + i * L->ks, L->ks, f, sizeof f));
				bad_record(L, &ck->w[i], why);
				L->good--;
				L->late_bad++;
				ck->found[i] = 0;
			} else if (s < -1) {
				ck->err = s;
				return s;
			} else {
				ck->found[i] = s == 0 ? 0 : -1;
			}
		}
	} else if (r < 0) {
		ck->err = (int)r;
		return (int)r;
	}
	for (size_t i = 0; i < ck->n; i++) {
		if (ck->found[i] == 0)
			continue;
		if (!ck->set) {
			ck->notfound++;
		} else {
			int a = keyset_add(ck->set, ck->keys + i * L->ks);
			if (a < 0) {
				ck->err = -ENOMEM;
				return -ENOMEM;
			}
			ck->notfound += (uint64_t)a;
		}
	}
	ck->n = 0;
	return 0;
}

static int check_one(struct loader *L, const unsigned char *rec, const struct where *w, void *ctx)
{
	struct checker *ck = ctx;
	memcpy(ck->keys + ck->n * L->ks, rec, L->ks);
	if (w)
		ck->w[ck->n] = *w;
	else
		ck->w[ck->n].in = NULL;
	if (++ck->n == ck->cap)
		return check_flush(L, ck);
	return 0;
}

/* Counts the records whose key is not in the table (once per key when
 * `distinct`).  Returns 0 or a negative code. */
static int count_new(struct loader *L, int distinct, uint64_t *out)
{
	struct checker ck = {0};
	struct keyset set = { 0, 0, 0, 0, L->ks };
	size_t per = L->ks + (L->vs ? L->vs : 1);
	ck.cap = BATCH_BYTES / per;
	if (ck.cap > 1024)
		ck.cap = 1024;
	if (ck.cap < 1)
		ck.cap = 1;
	ck.keys = malloc(ck.cap * L->ks);
	ck.vals = malloc(ck.cap * (L->vs ? L->vs : 1));
	ck.found = malloc(ck.cap * sizeof *ck.found);
	ck.w = malloc(ck.cap * sizeof *ck.w);
	ck.set = distinct ? &set : NULL;
	int rc = -ENOMEM;
	if (ck.keys && ck.vals && ck.found && ck.w) {
		phase_start(L, distinct ? "counting new keys" : "checking", L->good);
		rc = for_each_good(L, check_one, &ck);
		if (rc == 0)
			rc = check_flush(L, &ck);
		progress_clear(L);
	}
	*out = ck.notfound;
	free(ck.keys);
	free(ck.vals);
	free(ck.found);
	free(ck.w);
	free(set.keys);
	free(set.used);
	return rc;
}

/* ---- Pass 3: writing -------------------------------------------------------- */

/* ---- Duplicate keys in the input ---------------------------------------------- */

struct dupctx {
	struct keyset set;
	uint64_t n; /* good records seen */
};

static int dup_one(struct loader *L, const unsigned char *rec, const struct where *w, void *ctx)
{
	struct dupctx *dc = ctx;
	char at[600], f[128];
	dc->n++;
	int a = keyset_add(&dc->set, rec);
	if (a < 0)
		return -ENOMEM;
	if (a == 1 || ++L->dup_count > MAX_REASONS)
		return 0;
	if (w)
		where_text(L, w, at, sizeof at);
	else
		snprintf(at, sizeof at, "record %" PRIu64 " (of those read well)", dc->n);
	msg("%s: %skey %s was already given by an earlier record", at,
	    L->o.dups == DUP_WARN ? "warning: " : "", fmt_field(rec, L->ks, f, sizeof f));
	return 0;
}

/* --duplicates=error or warn: looks for keys given twice before anything is
 * written.  Returns RC_OK, or RC_DATA (error) after saying which. */
static int check_duplicates(struct loader *L)
{
	if (L->o.dups != DUP_ERROR && L->o.dups != DUP_WARN)
		return RC_OK;
	struct dupctx dc = { { 0, 0, 0, 0, L->ks }, 0 };
	phase_start(L, "looking for repeated keys", L->good);
	int r = for_each_good(L, dup_one, &dc);
	progress_clear(L);
	free(dc.set.keys);
	free(dc.set.used);
	if (r == -EINTR)
		return interrupted_early(L);
	if (r < 0) {
		msg("%s: out of memory while looking for repeated keys", L->tn.arg);
		return RC_REFUSED;
	}
	if (!L->dup_count)
		return RC_OK;
	if (L->o.dups == DUP_ERROR) {
		msg("%s: %" PRIu64 " record%s repeat%s the key of an earlier one; nothing was "
		    "written (--duplicates=last or first picks one)", L->tn.arg, L->dup_count,
		    L->dup_count == 1 ? "" : "s", L->dup_count == 1 ? "s" : "");
		return RC_DATA;
	}
	if (!L->o.quiet)
		msg("%s: warning: %" PRIu64 " record%s repeat%s an earlier key; the last "
		    "record of each key wins", L->tn.arg, L->dup_count,
		    L->dup_count == 1 ? "" : "s", L->dup_count == 1 ? "s" : "");
	return RC_OK;
}

/* --duplicates=first: whether rec's key was written already (then it is
 * counted and passed over).  1 skip, 0 write it, -ENOMEM. */
static int seen_before(struct loader *L, const unsigned char *rec)
{
	if (!L->written)
		return 0;
	int a = keyset_add(L->written, rec);
	if (a < 0)
		return -ENOMEM;
	if (a == 0)
		L->dup_count++;
	return a == 0;
}

static int write_one(struct loader *L, const unsigned char *rec, const struct where *w, void *ctx)
{
	int *err = ctx;
	int seen = seen_before(L, rec);
	if (seen) {
		if (seen < 0)
			*err = seen;
		return seen < 0;
	}
	int r = hashtable_update(L->h, (void *)rec, (void *)(rec + L->ks));
	if (r == 0)
		L->inserted++;
	else if (r == 1)
		L->updated++;
	else if (r == -EINVAL && L->late_bad && L->o.skip_bad && !L->sentinels_known && w)
		return 0; /* a sentinel key found by the check pass, skipped */
	else {
		*err = r;
		return 1;
	}
	return 0;
}

/* ---- Options ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
"Usage: %s [OPTION]... TABLE [FILE]...\n"
"Load key/value records into the shmkv table TABLE, creating it if absent.\n"
"TABLE is an existing file (the table's IPC key is ftok(TABLE, 1)) or a numeric\n"
"IPC key written 0x....  Records come from the FILEs, or standard input when\n"
"there are none or FILE is -.  The whole input is checked before the first\n"
"write: on bad input nothing is written and a table this run created is removed.\n"
"\n"
"Into an existing table:\n"
"      --replace           replace its whole contents atomically: the input is\n"
"                          built into a new generation and published in one\n"
"                          step; readers see the old data or the new, never a\n"
"                          mix; keys absent from the input are gone.  Bad\n"
"                          input, an error or a signal leave the old data\n"
"                          serving.  The kernel must have room for both\n"
"                          generations (kernel.shmmax, kernel.shmall).\n"
"                          -n, -c, -l, -m size the new generation (default:\n"
"                          the table's own, larger if the input needs it)\n"
"      --allow-empty       let --replace empty the table when the input holds no\n"
"                          records (refused otherwise: a truncated input)\n"
"                          without --replace: upserts, one record at a time\n"
"                          (not atomic; keys absent from the input stay)\n"
"\n"
"Sharding (for twemproxy, distribution: modula):\n"
"      --shard=I/N         load only the keys twemproxy sends to its I-th server\n"
"                          of N (counted from 0 in nutcracker.yml's order, each\n"
"                          of weight 1): hash(key) %% N == I, the key hashed\n"
"                          without its NUL padding, as clients send it\n"
"      --hash=NAME         the pool's hash: fnv1a_64, fnv1_64, fnv1a_32,\n"
"                          fnv1_32, crc32a, crc32\n"
"\n"
"Input:\n"
"  -f, --format=FMT        auto (default: cdb if the input starts with +N,N:,\n"
"                          else tsv), tsv, cdb or bin\n"
"                            tsv  KEY<TAB>VALUE per line\n"
"                            cdb  +KLEN,VLEN:KEY->VALUE lines, then an empty\n"
"                                 line (cdb -d output, cdb -c input)\n"
"                            bin  fixed-width records: key bytes, value bytes\n"
"  -E, --encoding=KEY[,VALUE]  field encodings (tsv, cdb): text, raw, hex, u32,\n"
"                          u64; one name sets both\n"
"      --key-enc=ENC, --value-enc=ENC  the same, one field at a time\n"
"                            text/raw  bytes, NUL-padded to the width (tsv\n"
"                                      default text, cdb default raw)\n"
"                            hex       two hex digits a byte, NUL-padded\n"
"                            u32, u64  unsigned decimal (or 0x hex) stored\n"
"                                      little-endian in 4 or 8 bytes\n"
"  -b, --skip-bad          load the good records, skip and report the bad ones\n"
"      --crlf              tsv lines end in CR LF (Windows): strip the CR; without\n"
"                          it such lines are bad records\n"
"      --duplicates=WHAT   a key given by several records: last (default: the\n"
"                          last record wins), first, error (nothing is written),\n"
"                          warn (the last wins, each repeat is reported)\n"
"\n"
"Creating a table (ignored, with a warning, when TABLE exists; a cdb dump made\n"
"by `shmkv dump` carries the table's widths, sentinels, capacity, load limit\n"
"and mode, used unless these options say otherwise):\n"
"  -K, --key-size=BYTES    key width (default: from the encoding or the input)\n"
"  -V, --value-size=BYTES  value width (default: from the encoding or the input)\n"
"  -l, --load=F            size the table so the input fills it to load F\n"
"                          (fraction or percent; default: the --max-load, for\n"
"                          1.25 times the input's records, leaving room)\n"
"  -m, --max-load=F        the table's load limit (default " STR(DEFAULT_MAX_LOAD) ",\n"
"                          or --load if higher)\n"
"  -n, --entries=N         size for N keys at --load instead of the record count\n"
"  -c, --capacity=BYTES    segment size (K, M, G, T suffixes) instead\n"
"  -M, --mode=OCTAL        permission bits (default " STR(DEFAULT_MODE) ")\n"
"  -H, --huge-pages        back the segment with huge pages\n"
"      --empty-key=HEX, --deleted-key=HEX  sentinel keys (default all 00, all ff)\n"
"  -x, --excl              fail if the table already exists\n"
"\n"
"Output (on standard error):\n"
"  -p, --progress          show progress and a summary even when stderr is not\n"
"                          a terminal (default: only when it is)\n"
"  -q, --quiet             no progress, no summary, no skip report\n"
"  -v, --verbose           print the summary and notes even when not a terminal\n"
"  -h, --help              print this help and exit\n"
"      --version           print the version and exit\n"
"\n" EXIT_CODES_HELP
"\nSee shmkv-load(1).\n", tool_name);
}

enum { OPT_VERSION = 256, OPT_CRLF, OPT_DUPLICATES, OPT_REPLACE, OPT_ALLOW_EMPTY, OPT_SHARD,
       OPT_HASH };

/* --shard I/N. */
static int parse_shard(struct opts *o, const char *s)
{
	unsigned i, n;
	int end = 0;
	if (sscanf(s, "%u/%u%n", &i, &n, &end) != 2 || s[end] || n == 0 || i >= n || n > 65536) {
		msg("bad --shard '%s': give I/N, shard I (0 to N-1) of N, e.g. 0/3", s);
		return RC_USAGE;
	}
	o->shard = i;
	o->nshards = n;
	return RC_OK;
}

/* Returns RC_OK, an exit code, or -1 after --help / --version. */
static int parse_args(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "format", required_argument, 0, 'f' },
		FIELD_LONG_OPTIONS,
		CREATE_LONG_OPTIONS,
		{ "skip-bad", no_argument, 0, 'b' },
		{ "crlf", no_argument, 0, OPT_CRLF },
		{ "duplicates", required_argument, 0, OPT_DUPLICATES },
		{ "excl", no_argument, 0, 'x' },
		{ "replace", no_argument, 0, OPT_REPLACE },
		{ "allow-empty", no_argument, 0, OPT_ALLOW_EMPTY },
		{ "shard", required_argument, 0, OPT_SHARD },
		{ "hash", required_argument, 0, OPT_HASH },
		{ "progress", no_argument, 0, 'p' },
		{ "quiet", no_argument, 0, 'q' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, OPT_VERSION },
		{ 0, 0, 0, 0 },
	};
	int c, rc = RC_OK;
	create_opts_init(&o->co);
	opterr = 0;
	while (rc == RC_OK &&
	       (c = getopt_long(argc, argv, ":f:E:bK:V:l:m:n:c:M:Hxpqvh", lo, NULL)) != -1) {
		int r = field_opt_parse(c, optarg, &o->f);
		if (!r)
			r = create_opt_parse(c, optarg, &o->co);
		if (r) {
			if (r < 0)
				rc = RC_USAGE;
			continue;
		}
		switch (c) {
		case 'f':
			o->fmt = FMT_AUTO;
			while (o->fmt <= FMT_BIN && strcmp(optarg, fmt_names[o->fmt]))
				o->fmt++;
			if (o->fmt > FMT_BIN) {
				msg("bad format '%s' (auto, tsv, cdb, bin)", optarg);
				rc = RC_USAGE;
			}
			break;
		case 'b': o->skip_bad = 1; break;
		case OPT_CRLF: o->crlf = 1; break;
		case OPT_DUPLICATES:
			o->dups = DUP_LAST;
			while (o->dups <= DUP_WARN && strcmp(optarg, dup_names[o->dups]))
				o->dups++;
			if (o->dups > DUP_WARN) {
				msg("bad --duplicates '%s' (last, first, error, warn)", optarg);
				rc = RC_USAGE;
			}
			break;
		case 'x': o->excl = 1; break;
		case OPT_REPLACE: o->replace = 1; break;
		case OPT_ALLOW_EMPTY: o->allow_empty = 1; break;
		case OPT_SHARD: rc = parse_shard(o, optarg); break;
		case OPT_HASH:
			o->shard_hash_name = optarg;
			if (!(o->shard_hash = twem_hash_find(optarg))) {
				msg("bad --hash '%s' (" TWEM_HASH_NAMES ")", optarg);
				rc = RC_USAGE;
			}
			break;
		case 'p': o->progress = 1; o->quiet = 0; break;
		case 'q': o->quiet = 1; o->progress = 0; o->verbose = 0; break;
		case 'v': o->verbose = 1; o->quiet = 0; break;
		case 'h': usage(stdout); return -1;
		case OPT_VERSION: print_version(); return -1;
		default:
			return option_rejected(c, optopt, argv[optind - 1]);
		}
	}
	if (rc != RC_OK)
		return rc;
	if (optind >= argc) {
		msg("missing TABLE; try '%s --help' for more information", tool_name);
		return RC_USAGE;
	}
	if (o->nshards && !o->shard_hash) {
		msg("--shard needs --hash, the hash of the twemproxy pool (" TWEM_HASH_NAMES ")");
		return RC_USAGE;
	}
	if (o->shard_hash && !o->nshards) {
		msg("--hash chooses the keys of a --shard: give --shard I/N too");
		return RC_USAGE;
	}
	if (o->replace && o->excl) {
		msg("--replace replaces an existing table and --excl refuses one: give one");
		return RC_USAGE;
	}
	if (o->co.entries && o->co.capacity) {
		msg("--entries and --capacity both size the table: give one");
		return RC_USAGE;
	}
	if (!o->co.max_load_set)
		o->co.max_load = o->co.load_set && o->co.load > DEFAULT_MAX_LOAD ? o->co.load
		                                                           : DEFAULT_MAX_LOAD;
	if (!o->co.load_set)
		o->co.load = o->co.max_load;
	if (o->co.load > o->co.max_load) {
		msg("--load %g is above the load limit --max-load %g", o->co.load, o->co.max_load);
		return RC_USAGE;
	}
	return RC_OK;
}

/* ---- Setting up ------------------------------------------------------------ */

/* Opens TABLE if it exists.  Returns RC_OK with L->h set or NULL (absent). */
static int open_existing(struct loader *L)
{
	struct hashtable_stats st;
	if (L->tn.key == (key_t)-1)
		return table_open(&L->tn, 0, &L->h); /* says why the path names no table */
	if (shmid_of_key(L->tn.key) < 0)
		return RC_OK;
	int rc = table_open(&L->tn, 0, &L->h);
	if (rc != RC_OK)
		return rc;
	hashtable_stats(L->h, &st);
	warn_name_mismatch(&L->tn, &st);
	if ((L->o.f.ks_set && L->o.f.ks != st.key_size) || (L->o.f.vs_set && L->o.f.vs != st.value_size))
		return explain_widths(&L->tn, L->h, L->o.f.ks_set ? L->o.f.ks : st.key_size,
		                      L->o.f.vs_set ? L->o.f.vs : st.value_size);
	if (L->o.excl) {
		msg("%s: the table exists (id %d) and --excl was given", L->tn.arg, st.shmid);
		return RC_REFUSED;
	}
	const struct opts *o = &L->o;
	const struct create_opts *co = &L->o.co;
	if (o->replace && (co->mode_set || co->hugetlb || co->empty_key || co->deleted_key) &&
	    !o->quiet)
		msg("%s: the table exists: its mode, sentinels and page size are kept (--mode, "
		    "--huge-pages, --empty-key, --deleted-key ignored)", L->tn.arg);
	else if (!o->replace && create_opts_given(co) && !o->quiet)
		msg("%s: the table exists: its own capacity, load limit, mode and sentinels "
		    "are kept (creation options ignored; --replace applies -n, -c, -l, -m to "
		    "the new generation)", L->tn.arg);
	L->gen0 = hashtable_generation(L->h);
	L->ks = st.key_size;
	L->vs = st.value_size;
	L->count0 = st.count;
	L->max_count = st.max_count;
	return RC_OK;
}

static enum fmt detect_format(const struct loader *L)
{
	for (size_t i = 0; i < L->nin; i++) {
		const unsigned char *d = L->in[i].data;
		size_t n = L->in[i].len, o = 1;
		if (!n)
			continue;
		if (d[0] != '+')
			return FMT_TSV;
		uint32_t kl, vl;
		return cdb_len(d, n, &o, ',', &kl) == 0 && cdb_len(d, n, &o, ':', &vl) == 0
		       ? FMT_CDB : FMT_TSV;
	}
	return FMT_TSV;
}

/* A field width the input implies: from the encoding, else the longest
 * field.  0 when unknown. */
static uint32_t implied_width(enum enc e, size_t maxlen)
{
	if (enc_width(e))
		return enc_width(e);
	return (uint32_t)(e == ENC_HEX ? (maxlen + 1) / 2 : maxlen);
}

/* cdb input whose first record cannot be framed yields no widths: report
 * the framing error itself, not an empty input.  Returns RC_DATA. */
static int report_first_frame_error(struct loader *L)
{
	char why[256], at[600];
	for (size_t i = 0; i < L->nin; i++) {
		struct cursor c = {0};
		struct where w = { .in = &L->in[i] };
		size_t ko, vo;
		uint32_t kl, vl;
		if (cdb_frame(&L->in[i], &c, &w, &ko, &kl, &vo, &vl, why, sizeof why) < 0) {
			where_text(L, &w, at, sizeof at);
			msg("%s: %s", at, why);
			break;
		}
	}
	msg("%s: the input cannot be read past this point; nothing was written", L->tn.arg);
	return RC_DATA;
}

/* Looks for a shmkv dump's metadata record: the first record of each cdb
 * input.  Returns RC_OK, or RC_DATA for a malformed one. */
static int find_meta(struct loader *L)
{
	char why[256], at[600];
	if (L->fmt != FMT_CDB)
		return RC_OK;
	for (size_t i = 0; i < L->nin && !L->have_meta; i++) {
		struct cursor c = {0};
		struct where w = { .in = &L->in[i] };
		size_t ko, vo;
		uint32_t kl, vl;
		if (cdb_frame(&L->in[i], &c, &w, &ko, &kl, &vo, &vl, why, sizeof why) != 1)
			continue;
		int m = meta_parse(L->in[i].data + ko, kl, L->in[i].data + vo, vl, &L->meta, why,
		                   sizeof why);
		if (m < 0) {
			where_text(L, &w, at, sizeof at);
			msg("%s: %s", at, why);
			return RC_DATA;
		}
		L->have_meta = m == 1;
	}
	return RC_OK;
}

/* Creating from a dump: the metadata's widths apply unless -K/-V say
 * otherwise; its geometry and sentinels only when the widths are its own. */
static void apply_meta_widths(struct loader *L)
{
	struct opts *o = &L->o;
	if (!L->have_meta || L->h)
		return;
	if (!o->f.ks_set && !enc_width(o->f.kenc)) {
		o->f.ks = L->meta.key_size;
		o->f.ks_set = 1;
	}
	if (!o->f.vs_set && !enc_width(o->f.venc)) {
		o->f.vs = L->meta.value_size;
		o->f.vs_set = 1;
	}
	L->use_meta = o->f.ks == L->meta.key_size && o->f.vs == L->meta.value_size;
	if (!L->use_meta && !o->quiet)
		msg("%s: note: the dump's table had key %u and value %u bytes; the new table's "
		    "widths differ, so its capacity and sentinels are not taken from the dump",
		    L->tn.arg, L->meta.key_size, L->meta.value_size);
	if (!L->use_meta)
		return;
	/* The dump's load limit and mode, unless the command line gave its own. */
	if (!o->co.max_load_set && !o->co.load_set)
		o->co.max_load = o->co.load = L->meta.max_load;
	if (!o->co.mode_set)
		o->co.mode = L->meta.mode;
}

static int setup_widths(struct loader *L)
{
	struct opts *o = &L->o;
	if (!L->h) {
		apply_meta_widths(L);
		int need_k = !o->f.ks_set && !enc_width(o->f.kenc);
		int need_v = !o->f.vs_set && !enc_width(o->f.venc);
		if ((need_k || need_v) && L->fmt == FMT_BIN) {
			msg("creating %s from bin input needs --key-size and --value-size", L->tn.arg);
			return RC_USAGE;
		}
		if (need_k || need_v) {
			/* Lengths from a prescan that does not know the widths yet. */
			L->rs = 0;
			if (L->fmt == FMT_TSV)
				prescan_tsv(L, 1);
			else
				prescan_cdb(L);
			if (!L->bound && L->fmt == FMT_CDB && L->in_bytes)
				return report_first_frame_error(L);
			if (!L->bound) {
				msg("%s: the input is empty, so the widths of the new table cannot be "
				    "told from it: give --key-size and --value-size", L->tn.arg);
				return RC_USAGE;
			}
		}
		L->ks = o->f.ks_set ? o->f.ks : implied_width(o->f.kenc, L->max_klen);
		L->vs = o->f.vs_set ? o->f.vs : implied_width(o->f.venc, L->max_vlen);
		if (L->ks == 0 || L->ks > HASHTABLE_MAX_KEY || L->vs > HASHTABLE_MAX_VALUE) {
			msg("%s: the input's keys are %u bytes and values %u: a table holds keys of "
			    "1..%u bytes and values of 0..%u; give --key-size and --value-size",
			    L->tn.arg, L->ks, L->vs, HASHTABLE_MAX_KEY, HASHTABLE_MAX_VALUE);
			return RC_USAGE;
		}
		if ((need_k || need_v) && (o->verbose || isatty(2)) && !o->quiet)
			msg("%s: widths from the input: key %u bytes, value %u bytes", L->tn.arg,
			    L->ks, L->vs);
	}
	L->rs = (size_t)L->ks + L->vs;
	if (enc_check_width(o->f.kenc, L->ks, "key") || enc_check_width(o->f.venc, L->vs, "value"))
		return RC_USAGE;
	return RC_OK;
}

/* The sentinels new keys are checked against, when they can be known. */
static int setup_sentinels(struct loader *L)
{
	L->empty = calloc(1, L->ks);
	L->deleted = malloc(L->ks);
	if (!L->empty || !L->deleted)
		return RC_REFUSED;
	memset(L->deleted, 0xff, L->ks);
	L->sentinels_known = 1;
	if (!L->h) {
		const struct opts *o = &L->o;
		if ((o->co.empty_key && o->co.empty_len != L->ks) ||
		    (o->co.deleted_key && o->co.deleted_len != L->ks)) {
			msg("--empty-key and --deleted-key need %u bytes (%u hex digits)", L->ks,
			    2 * L->ks);
			return RC_USAGE;
		}
		if (L->use_meta) { /* the dumped table's, unless given below */
			memcpy(L->empty, L->meta.empty, L->ks);
			memcpy(L->deleted, L->meta.deleted, L->ks);
		}
		if (o->co.empty_key)
			memcpy(L->empty, o->co.empty_key, L->ks);
		if (o->co.deleted_key)
			memcpy(L->deleted, o->co.deleted_key, L->ks);
		if (memcmp(L->empty, L->deleted, L->ks) == 0) {
			msg("the empty and deleted sentinel keys must differ");
			return RC_USAGE;
		}
		return RC_OK;
	}
	L->sentinels_known = hashtable_sentinels(L->h, L->empty, L->deleted) == 0;
	return RC_OK;
}

static void choose_mode(struct loader *L)
{
	if (L->fmt == FMT_BIN || !L->sentinels_known)
		return;
	L->max_klen = L->max_vlen = 0;
	if (L->fmt == FMT_TSV)
		prescan_tsv(L, 0);
	else
		prescan_cdb(L);
	if (!L->prescan_ok || !L->bound)
		return;
	L->arr_len = L->bound * L->rs;
	L->arr = mmap(NULL, L->arr_len, PROT_READ | PROT_WRITE,
	              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (L->arr == MAP_FAILED) {
		L->arr = NULL;
		return;
	}
	L->array_mode = 1;
}

/* ---- Reporting ----------------------------------------------------------- */

static void print_reasons(struct loader *L)
{
	for (int i = 0; i < MAX_REASONS && (uint64_t)i < L->bad; i++)
		if (L->reasons[i])
			msg("%s", L->reasons[i]);
}

/* After records too wide for the table: the width that would hold them. */
static void advise_widths(const struct loader *L)
{
	const char *stop = L->stopped ? " so far" : "";
	for (int v = 0; v < 2; v++) {
		if (!(v ? L->value_too_wide : L->key_too_wide))
			continue;
		const char *what = v ? "value" : "key", opt = v ? 'V' : 'K';
		size_t longest = v ? L->longest_value : L->longest_key;
		uint32_t width = v ? L->vs : L->ks;
		uint32_t max = v ? HASHTABLE_MAX_VALUE : HASHTABLE_MAX_KEY;
		if (longest > max) {
			advise("the longest %s read%s is %zu bytes, more than a table holds (%u)",
			       what, stop, longest, max);
		} else if (L->h) {
			advise("the longest %s read%s is %zu bytes; the table's %ss are %u bytes wide: "
			       "load into a new table made with -%c %zu", what, stop, longest, what,
			       width, opt, longest);
		} else {
			advise("the longest %s read%s is %zu bytes, wider than -%c %u: give -%c %zu, "
			       "or leave -%c out to take the width from the input", what, stop,
			       longest, opt, width, opt, longest, opt);
		}
	}
}

static void report_bad_input(struct loader *L)
{
	print_reasons(L);
	advise_widths(L);
	if (L->stopped == 2)
		msg("%s: the input cannot be read past this point; nothing was written",
		    L->tn.arg);
	else if (L->stopped)
		msg("%s: stopped after %" PRIu64 " bad records; nothing was written "
		    "(--skip-bad loads the good ones)", L->tn.arg, L->bad);
	else
		msg("%s: %" PRIu64 " bad record%s of %" PRIu64 "; nothing was written "
		    "(--skip-bad loads the good ones)", L->tn.arg, L->bad, L->bad == 1 ? "" : "s",
		    L->nread);
}

static void report_skipped(struct loader *L)
{
	if (!L->bad || L->o.quiet)
		return;
	msg("%s: skipped %" PRIu64 " bad record%s of %" PRIu64 "%s:", L->tn.arg, L->bad,
	    L->bad == 1 ? "" : "s", L->nread, L->bad > MAX_REASONS ? "; the first ones" : "");
	print_reasons(L);
	advise_widths(L);
}

static void summary(struct loader *L)
{
	struct hashtable_stats st;
	double el = now_seconds() - L->t0;
	hashtable_stats(L->h, &st);
	if (L->o.nshards)
		msg("%s: shard %" PRIu32 " of %" PRIu32 " (twemproxy hash %s, modula): %" PRIu64
		    " records belong to other shards and were left out", L->tn.arg, L->o.shard,
		    L->o.nshards, L->o.shard_hash_name, L->other_shards);
	if (L->o.replace && !L->created) {
		msg("%s: read %" PRIu64 ", %" PRIu64 " keys in generation %" PRIu64 " (replacing "
		    "generation %" PRIu64 " of %" PRIu64 " keys), %" PRIu64 " repeated keys, skipped %"
		    PRIu64 ", load %.3f (%" PRIu64 " of %" PRIu64 " keys), %.2f s, %.0f records/s",
		    L->tn.arg, L->nread, st.count, hashtable_generation(L->h), L->gen0, L->count0,
		    L->updated, L->bad, st.slots ? (double)st.count / (double)st.slots : 0.0,
		    st.count, st.max_count, el, el > 0 ? (double)L->nread / el : 0.0);
		return;
	}
	msg("%s: read %" PRIu64 ", inserted %" PRIu64 ", updated %" PRIu64 ", skipped %" PRIu64
	    ", load %.3f (%" PRIu64 " of %" PRIu64 " keys), %.2f s, %.0f records/s",
	    L->tn.arg, L->nread, L->inserted, L->updated, L->bad,
	    st.slots ? (double)st.count / (double)st.slots : 0.0, st.count, st.max_count, el,
	    el > 0 ? (double)L->nread / el : 0.0);
}

/* ---- Creating, checking room, writing -------------------------------------- */

static int create_table(struct loader *L)
{
	const struct opts *o = &L->o;
	struct hashtable_config cfg = {0};
	uint64_t n = o->co.entries ? o->co.entries : (L->good ? L->good : 1);
	if (!o->co.entries && !o->co.load_set)
		n = (uint64_t)((double)n * HEADROOM) + 1; /* not born full */
	cfg.key_size = L->ks;
	cfg.value_size = L->vs;
	cfg.capacity = o->co.capacity ? o->co.capacity
	                              : hashtable_segment_size(n, o->co.load, L->ks, L->vs);
	if (L->use_meta && !o->co.capacity && !o->co.entries && !o->co.load_set &&
	    !o->co.max_load_set)
		cfg.capacity = L->meta.capacity; /* the dumped table's own size */
	if (!cfg.capacity) {
		msg("%s: %" PRIu64 " entries of %u+%u bytes at load %g make a segment too large "
		    "to describe", L->tn.arg, n, L->ks, L->vs, o->co.load);
		return RC_USAGE;
	}
	create_opts_apply(&o->co, &cfg);
	cfg.empty_key = L->empty; /* the options' sentinels, checked, or the defaults */
	cfg.deleted_key = L->deleted;
	/* --replace: readers that open the new table see it empty, then whole.
	 * It is created with a one-key first generation, and the input is built
	 * into a second one of the real size (the fast private build).  Huge
	 * pages keep the plain path: the new generation's page size is the
	 * creation's. */
	if (o->replace && !o->co.hugetlb) {
		L->full = cfg;
		L->have_full = 1;
		cfg.capacity = hashtable_segment_size(1, cfg.max_load ? cfg.max_load : DEFAULT_MAX_LOAD,
		                                      L->ks, L->vs);
	}
	int rc = table_create(&L->tn, &cfg, &L->h);
	if (rc != RC_OK)
		return rc;
	L->created = 1;
	L->gen0 = hashtable_generation(L->h);
	struct hashtable_stats st;
	hashtable_stats(L->h, &st);
	L->max_count = st.max_count;
	if (o->verbose && L->have_full)
		msg("%s: created table: key 0x%08x, id %d, key %u + value %u bytes; its contents "
		    "are built into a generation of %zu bytes (load limit %g)", L->tn.arg,
		    (unsigned)st.ipc_key, st.shmid, L->ks, L->vs, L->full.capacity, st.max_load);
	else if (o->verbose)
		msg("%s: created table: key 0x%08x, id %d, %" PRIu64 " bytes, key %u + value %u "
		    "bytes, room for %" PRIu64 " keys (load limit %g)", L->tn.arg,
		    (unsigned)st.ipc_key, st.shmid, st.segment_bytes, L->ks, L->vs, st.max_count,
		    st.max_load);
	return RC_OK;
}

/* Checks that the keys not yet in the table fit under its load limit. */
static int check_room(struct loader *L)
{
	uint64_t room = L->max_count > L->count0 ? L->max_count - L->count0 : 0;
	int rc = 0;
	L->newkeys = L->good;
	if (L->good > room || !L->sentinels_known)
		rc = count_new(L, 0, &L->newkeys);
	if (rc == 0 && L->newkeys > room)
		rc = count_new(L, 1, &L->newkeys);
	if (rc == -EINTR)
		return interrupted_early(L);
	if (rc < 0) {
		msg("%s: cannot check the input against the table: %s", L->tn.arg,
		    table_error(rc));
		return exit_code_for(rc);
	}
	if (L->late_bad && !L->o.skip_bad) {
		report_bad_input(L);
		return RC_DATA;
	}
	if (L->newkeys <= room)
		return RC_OK;
	msg("%s: the input has %" PRIu64 " keys that are not in the table, but its load limit "
	    "leaves room for %" PRIu64 " (%" PRIu64 " of %" PRIu64 " keys used); nothing was "
	    "written", L->tn.arg, L->newkeys, room, L->count0, L->max_count);
	if (L->created)
		advise("size the new table from the input: leave out --capacity/--entries, "
		       "or raise them");
	else
		advise("grow the table first, while readers run (`shmkv grow %s --entries N`), "
		       "or replace its contents with a larger generation (`shmkv-load --replace "
		       "--entries N %s FILE...`)", L->tn.arg, L->tn.arg);
	return RC_REFUSED;
}

/* A table this run created and filled to (nearly) its load limit refuses
 * the next inserts: say so, and how to leave room. */
static void warn_low_room(struct loader *L)
{
	struct hashtable_stats st;
	if (!L->created || L->o.quiet || hashtable_stats(L->h, &st) != 0)
		return;
	uint64_t room = st.max_count > st.count ? st.max_count - st.count : 0;
	if ((double)room >= LOW_ROOM * (double)st.max_count)
		return;
	msg("%s: warning: the new table is full: %" PRIu64 " keys, and its load limit %.3g "
	    "allows %" PRIu64 "; only %" PRIu64 " more can be inserted", L->tn.arg, st.count,
	    st.max_load, st.max_count, room);
	advise("to leave room, load with --entries=N (the keys it should hold) or a lower "
	       "--load; to grow it now, while readers run: shmkv grow %s --entries N", L->tn.arg);
}

static int write_pass(struct loader *L)
{
	int err = 0;
	struct keyset written = { 0, 0, 0, 0, L->ks };
	if (L->o.dups == DUP_FIRST)
		L->written = &written;
	phase_start(L, "writing", L->good);
	int r = for_each_good(L, write_one, &err);
	progress_clear(L);
	L->written = NULL;
	free(written.keys);
	free(written.used);
	if (r == 0)
		return RC_OK;
	if (r == -EINTR) {
		msg("%s: interrupted after writing %" PRIu64 " records (%" PRIu64 " inserted, %"
		    PRIu64 " updated)%s", L->tn.arg, L->inserted + L->updated, L->inserted,
		    L->updated, L->created ? "; the new table is removed" : "");
		if (!L->created)
			advise("the table now holds those records beside its old ones; "
			       "`shmkv-load --replace` loads all or nothing");
		return RC_REFUSED;
	}
	msg("%s: writing failed after %" PRIu64 " records (%" PRIu64 " inserted, %" PRIu64
	    " updated): %s", L->tn.arg, L->inserted + L->updated, L->inserted, L->updated,
	    table_error(err));
	if (err == -ENOMEM)
		advise("another writer filled the table while this load ran");
	if (L->created)
		advise("the new table is removed");
	else
		advise("the records before that one are in the table (`shmkv-load --replace` "
		       "loads all or nothing)");
	return exit_code_for(err);
}

/* ---- Pass 3 with --replace: a new generation ------------------------------- */

/* Sizes the new generation: the table's own geometry (cfg NULL) unless the
 * command line sizes it, or the input holds more records than the table's
 * load limit allows.  Returns 1 with cfg filled, 0 for "as it is". */
static int replace_config(struct loader *L, struct hashtable_config *cfg)
{
	const struct create_opts *co = &L->o.co;
	struct hashtable_stats st;
	if (L->have_full) { /* a table this run created: its real size */
		*cfg = L->full;
		return 1;
	}
	hashtable_stats(L->h, &st);
	int sized = co->entries || co->capacity || co->load_set || co->max_load_set;
	if (!sized && L->good <= st.max_count)
		return 0;
	memset(cfg, 0, sizeof *cfg);
	cfg->key_size = L->ks;
	cfg->value_size = L->vs;
	cfg->empty_key = L->empty;
	cfg->deleted_key = L->deleted;
	cfg->mode = st.mode & 0777;
	cfg->flags = st.hugetlb ? HASHTABLE_HUGETLB : 0;
	cfg->max_load = co->max_load_set || co->load_set ? co->max_load : st.max_load;
	if (co->capacity) {
		cfg->capacity = co->capacity;
	} else if (co->entries) {
		cfg->entries = co->entries;
	} else if (co->load_set) { /* the input fills it to --load */
		cfg->capacity = hashtable_segment_size(L->good ? L->good : 1, co->load, L->ks, L->vs);
	} else if (L->good > st.max_count) {
		cfg->entries = (uint64_t)((double)L->good * HEADROOM) + 1;
		if (!L->o.quiet)
			msg("%s: note: the input's %" PRIu64 " records pass the table's limit of %" PRIu64
			    " keys; the new generation is sized for %" PRIu64 " (-n sets it)", L->tn.arg,
			    L->good, st.max_count, cfg->entries);
	} else {
		cfg->capacity = st.segment_bytes; /* only -m changed: same size */
	}
	return 1;
}

/* Records go to the builder in batches (hashtable_builder_put_batch
 * fetches their buckets ahead, so the misses overlap): keys and values
 * gathered into the two arrays it takes. */
#define BUILD_BATCH 1024

struct build_batch {
	unsigned char *keys, *values;
	size_t n;
	int err; /* the failing record's code */
};

/* Puts the gathered records.  0, or 1 with bb->err set. */
static int build_flush(struct loader *L, struct build_batch *bb)
{
	size_t applied = 0;
	long r = bb->n ? hashtable_builder_put_batch(L->b, bb->n, bb->keys, bb->values, &applied) : 0;
	if (r < 0) {
		L->inserted += applied; /* the split is not known; the sum is reported */
		bb->err = (int)r;
		return 1;
	}
	L->inserted += (uint64_t)r;           /* new keys */
	L->updated += bb->n - (uint64_t)r;    /* keys an earlier record of the input gave */
	bb->n = 0;
	return 0;
}

static int build_one(struct loader *L, const unsigned char *rec, const struct where *w, void *ctx)
{
	struct build_batch *bb = ctx;
	(void)w;
	int seen = seen_before(L, rec);
	if (seen) {
		if (seen < 0)
			bb->err = seen;
		return seen < 0;
	}
	memcpy(bb->keys + bb->n * L->ks, rec, L->ks);
	memcpy(bb->values + bb->n * L->vs, rec + L->ks, L->vs);
	return ++bb->n == BUILD_BATCH ? build_flush(L, bb) : 0;
}

/* Copies n whole records (key then value, L->rs bytes each) into the
 * batch's key and value arrays.  Constant widths for the common 8 + 8 so
 * the compiler makes each copy one load and one store, not a libc call. */
static void build_gather(const struct loader *L, struct build_batch *bb,
                         const unsigned char *rec, size_t n)
{
	unsigned char *k = bb->keys + bb->n * L->ks, *v = bb->values + bb->n * L->vs;
	if (L->ks == 8 && L->vs == 8) {
		for (size_t i = 0; i < n; i++, rec += 16) {
			memcpy(k + 8 * i, rec, 8);
			memcpy(v + 8 * i, rec + 8, 8);
		}
	} else {
		for (size_t i = 0; i < n; i++, rec += L->rs) {
			memcpy(k + i * L->ks, rec, L->ks);
			memcpy(v + i * L->vs, rec + L->ks, L->vs);
		}
	}
	bb->n += n;
}

/* Puts n records that lie one after another in memory, a batch at a time:
 * no call, parse or check per record.  *done counts them for progress.
 * 0, 1 with bb->err set, or -EINTR (as for_each_good). */
static int build_run(struct loader *L, struct build_batch *bb, const unsigned char *rec,
                     uint64_t n, uint64_t *done)
{
	while (n) {
		size_t m = BUILD_BATCH - bb->n;
		if (m > n)
			m = (size_t)n;
		build_gather(L, bb, rec, m);
		rec += m * L->rs;
		n -= m;
		*done += m;
		if (bb->n == BUILD_BATCH && build_flush(L, bb))
			return 1;
		progress(L, *done);
		if (stop_signal)
			return -EINTR;
	}
	return 0;
}

/* The build's walk over the good records.  When they lie in memory whole
 * and in input order -- the text parsed into an array, or bin inputs in
 * which the parse pass found no bad record and no --shard filter drops any
 * -- and no record needs a look of its own (--duplicates first keeps a set of
 * the keys written), they go to the builder in runs: the per-record parse,
 * key check (the parse pass made it) and call are a third of the build's
 * instructions otherwise.  Same records, same order, same results. */
static int build_records(struct loader *L, struct build_batch *bb)
{
	uint64_t done = 0;
	if (L->written || L->o.nshards)
		return for_each_good(L, build_one, bb);
	if (L->array_mode)
		return build_run(L, bb, L->arr, L->arr_n, &done);
	if (L->fmt != FMT_BIN || L->bad)
		return for_each_good(L, build_one, bb);
	for (size_t i = 0; i < L->nin; i++) {
		int r = build_run(L, bb, L->in[i].data, L->in[i].len / L->rs, &done);
		if (r)
			return r;
	}
	return 0;
}

/* Says why replace_begin refused; the old generation is untouched. */
static int explain_begin(struct loader *L, int r)
{
	msg("%s: cannot start a new generation: %s", L->tn.arg, table_error(r));
	if ((r == -ENOSPC || r == -EINVAL || r == -ENOMEM) &&
	    strstr(hashtable_last_error(), "kernel.shm"))
		advise("while it is built, the new generation's data segment exists beside the "
		       "current one: kernel.shmmax must allow its size and kernel.shmall both "
		       "(see the sysctl above)");
	advise("nothing was changed: generation %" PRIu64 " still serves", L->gen0);
	return exit_code_for(r);
}

/* Drops the build: the old generation serves on, untouched. */
static void build_abort(struct loader *L)
{
	if (L->b) {
		hashtable_replace_abort(L->b);
		L->b = NULL;
	}
}

static int build_pass(struct loader *L)
{
	struct hashtable_config cfg;
	struct build_batch bb = { malloc(BUILD_BATCH * (size_t)L->ks),
	                          malloc(BUILD_BATCH * (size_t)L->vs + 1), 0, 0 };
	if (!bb.keys || !bb.values) {
		free(bb.keys);
		free(bb.values);
		msg("%s: out of memory for the build's batch", L->tn.arg);
		return exit_code_for(-ENOMEM);
	}
	int has_cfg = replace_config(L, &cfg);
	struct keyset written = { 0, 0, 0, 0, L->ks };
	phase_start(L, "building", L->good);
	int r = hashtable_replace_begin(L->h, has_cfg ? &cfg : NULL, &L->b);
	if (r < 0) {
		L->b = NULL;
		progress_clear(L);
		free(bb.keys);
		free(bb.values);
		return explain_begin(L, r);
	}
	if (L->o.dups == DUP_FIRST)
		L->written = &written;
	r = stop_signal ? -EINTR : build_records(L, &bb);
	if (r == 0)
		r = build_flush(L, &bb);
	int err = bb.err;
	free(bb.keys);
	free(bb.values);
	progress_clear(L);
	L->written = NULL;
	free(written.keys);
	free(written.used);
	if (r == 0 && stop_signal)
		r = -EINTR;
	if (r != 0) {
		build_abort(L);
		if (r == -EINTR && L->created) {
			msg("%s: interrupted; the new table is removed", L->tn.arg);
			return RC_REFUSED;
		}
		if (r == -EINTR) {
			msg("%s: interrupted; the new generation is dropped and generation %" PRIu64
			    " serves on, unchanged", L->tn.arg, L->gen0);
			return RC_REFUSED;
		}
		msg("%s: building the new generation failed after %" PRIu64 " records: %s",
		    L->tn.arg, L->inserted + L->updated, table_error(err));
		if (err == -ENOMEM)
			advise("the new generation is too small for the input: size it with "
			       "--entries N (keys) or --capacity BYTES%s", L->created
			       ? ", or leave them out to size it from the input" : "");
		if (L->created)
			advise("the new table is removed");
		else
			advise("nothing was changed: generation %" PRIu64 " still serves", L->gen0);
		return err == -EINVAL ? RC_DATA : exit_code_for(err);
	}
	phase_start(L, "committing", 0);
	r = hashtable_replace_commit(L->b); /* frees the builder, whatever it returns */
	L->b = NULL;
	if (r < 0) {
		msg("%s: cannot publish the new generation: %s", L->tn.arg, table_error(r));
		if (r == -EIDRM)
			advise("the table was removed while it was being built");
		else
			advise("generation %" PRIu64 " still serves", L->gen0);
		return exit_code_for(r);
	}
	return RC_OK;
}

/* ---- Main ------------------------------------------------------------------- */

static void cleanup(struct loader *L, int failed)
{
	build_abort(L);
	if (L->h) {
		if (failed && L->created)
			hashtable_unlink(L->h);
		hashtable_close(L->h);
		L->h = NULL;
	}
	if (L->arr)
		munmap(L->arr, L->arr_len);
	inputs_free(L);
	for (int i = 0; i < MAX_REASONS; i++)
		free(L->reasons[i]);
	free(L->empty);
	free(L->deleted);
	free(L->scratch);
	create_opts_free(&L->o.co);
}

static void catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static int load(struct loader *L, int nfiles, char **files)
{
	static char *dash[] = { "-" };
	int rc;
	if ((rc = open_existing(L)) != RC_OK)
		return rc;
	if (nfiles == 0) {
		nfiles = 1;
		files = dash;
	}
	L->in = calloc((size_t)nfiles, sizeof *L->in);
	if (!L->in)
		return RC_REFUSED;
	for (int i = 0; i < nfiles; i++) {
		if ((rc = open_input(files[i], &L->in[L->nin])) != RC_OK)
			return rc;
		L->in_bytes += L->in[L->nin++].len;
	}
	L->fmt = L->o.fmt != FMT_AUTO ? L->o.fmt : detect_format(L);
	if (L->o.f.kenc == ENC_DEFAULT)
		L->o.f.kenc = L->fmt == FMT_TSV ? ENC_TEXT : ENC_RAW;
	if (L->o.f.venc == ENC_DEFAULT)
		L->o.f.venc = L->fmt == FMT_TSV ? ENC_TEXT : ENC_RAW;
	if (L->fmt == FMT_BIN && (L->o.f.kenc != ENC_RAW || L->o.f.venc != ENC_RAW)) {
		msg("bin records are used as they are: encodings apply to tsv and cdb only");
		return RC_USAGE;
	}
	if ((rc = find_meta(L)) != RC_OK || (rc = setup_widths(L)) != RC_OK ||
	    (rc = setup_sentinels(L)) != RC_OK)
		return rc;
	L->scratch = malloc(L->rs ? L->rs : 1);
	if (!L->scratch)
		return RC_REFUSED;
	choose_mode(L);
	catch_signals();
	parse_pass(L);
	if (stop_signal)
		return interrupted_early(L);
	if (L->bad && (!L->o.skip_bad || L->stopped)) {
		report_bad_input(L);
		return RC_DATA;
	}
	if ((rc = check_duplicates(L)) != RC_OK)
		return rc;
	if (L->h && L->o.replace && !L->good && !L->o.allow_empty) {
		msg("%s: the input holds no records: --replace would empty the table (%" PRIu64
		    " keys); nothing was changed", L->tn.arg, L->count0);
		advise("give --allow-empty to empty it on purpose");
		return RC_DATA;
	}
	if (L->h && L->o.replace) {
		if ((rc = build_pass(L)) != RC_OK)
			return rc;
	} else if (L->o.replace && !L->o.co.hugetlb) {
		if ((rc = create_table(L)) != RC_OK || (rc = build_pass(L)) != RC_OK)
			return rc;
	} else {
		if (!L->h && (rc = create_table(L)) != RC_OK)
			return rc;
		if ((rc = check_room(L)) != RC_OK || (rc = write_pass(L)) != RC_OK)
			return rc;
	}
	report_skipped(L);
	warn_low_room(L);
	if (!L->o.quiet)
		warn_remove_ipc(L->tn.arg, hashtable_shmid(L->h));
	phase_start(L, NULL, 0);
	if (L->o.verbose && L->dup_count)
		msg("%s: %" PRIu64 " records repeating an earlier key were passed over "
		    "(--duplicates=first)", L->tn.arg, L->dup_count);
	if (L->o.verbose)
		msg("%s: %s (%s)", L->tn.arg, L->phases,
		    L->array_mode ? "text parsed once into an array"
		    : L->fmt == FMT_BIN ? "records used in place" : "text parsed for each pass");
	if (L->show_summary)
		summary(L);
	return RC_OK;
}

/* A run of the tool, all but main()'s last step (re-raising a caught
 * signal): parses argv, loads, cleans up; returns the exit code.  show()
 * sets L->show_progress and L->show_summary once the options are parsed.
 * Python's shmkv.load() runs it too (python/load.c). */
static int load_run(int argc, char **argv, void (*show)(struct loader *L))
{
	struct loader L;
	memset(&L, 0, sizeof L);
	tool_name = "shmkv-load";
	L.t0 = now_seconds();
	int rc = parse_args(&L.o, argc, argv);
	if (rc != RC_OK) {
		cleanup(&L, 0);
		return rc < 0 ? RC_OK : rc;
	}
	if ((rc = table_name_parse(argv[optind], &L.tn)) != RC_OK) {
		cleanup(&L, 0);
		return rc;
	}
	show(&L);
	rc = load(&L, argc - optind - 1, argv + optind + 1);
	cleanup(&L, rc != RC_OK);
	return rc;
}

/* A meter when asked for or on a terminal; the summary also with -v. */
static void show_on_terminal(struct loader *L)
{
	int tty = isatty(2);
	L->show_progress = !L->o.quiet && (L->o.progress || tty);
	L->show_summary = !L->o.quiet && (L->o.progress || L->o.verbose || tty);
}

int main(int argc, char **argv)
{
	int rc = load_run(argc, argv, show_on_terminal);
	if (stop_signal) {
		signal(stop_signal, SIG_DFL);
		raise(stop_signal);
	}
	return rc;
}
