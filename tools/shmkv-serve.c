/* shmkv-serve: a table served over the Redis protocol (RESP2).
 *
 * Any Redis client, redis-cli, redis-benchmark and twemproxy can read a
 * table with no client library of ours.  The server is a reader of the table
 * like any other process: lookups go straight to the shared segment, and
 * replaces and grows are followed by the library with no restart.
 *
 * Design, in the order a request meets it:
 *   - Worker threads (--threads), each with its own epoll instance and its
 *     own clients.  TCP: one listening socket per worker on the same port
 *     (SO_REUSEPORT), so the kernel spreads connections; a Unix socket is
 *     one listening socket in every worker's epoll (EPOLLEXCLUSIVE).  Plain
 *     epoll: the loop is ~150 lines, needs no library, and level-triggered
 *     events with one read per wake-up give each client its turn.
 *   - The request parser (resp_parse) is a pure function of a buffer: it
 *     bounds every length before trusting it (argument count, bulk length,
 *     inline line length) and knows nothing of sockets, so the fuzz target
 *     (tests/fuzz/fuzz-serve.c) drives it alone.
 *   - Every complete request in a read is answered into the client's output
 *     buffer, and the buffer goes out in one write.  A client whose output
 *     does not drain is not read from (EPOLLOUT waits for it) and a client
 *     that lets more than --max-output bytes pile up is dropped; neither
 *     stalls the others, since sockets are nonblocking.
 *   - The table handle is shared by the workers (reads are lock-free and
 *     per-thread in the library).  SIGHUP opens the table again: the new
 *     handle is published, every worker acknowledges at the end of its loop
 *     iteration (it holds no handle between iterations), then the old handle
 *     is closed: no lock on the lookup path.
 *   - SIGTERM (or SIGINT): the listeners close, requests already read are
 *     answered and flushed (for up to 5 s), and the server exits 0. */
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PORT 6380          /* not Redis's 6379                        */
#define DEFAULT_MAX_CLIENTS 10000
#define DEFAULT_MAX_BULK (1u << 20) /* a table's key or value is far smaller  */
#define DEFAULT_MAX_REQUEST (64u << 20)
#define DEFAULT_MAX_OUTPUT (256u << 20)
#define MAX_ARGS (1u << 20)         /* arguments of one request               */
#define MAX_INLINE (64u << 10)      /* an inline command's line, as Redis     */
#define READ_CHUNK (64u << 10)
#define OUT_PAUSE (1u << 20)        /* stop answering while this much waits   */
#define BATCH 32                    /* MGET keys per hashtable_search_batch   */
#define DRAIN_MS 5000

/* ---- The request parser -------------------------------------------------- */

struct resp_arg {
	const char *p;
	size_t len;
};

struct resp_limits {
	size_t max_args, max_bulk, max_inline;
};

enum { RESP_INCOMPLETE = 0, RESP_ERROR = -1 };

/* How far a request that has not all arrived was checked: its elements
 * before `off` (`done` of its `n`) are whole and valid, so the next parse
 * checks only what came since, and a request sent in many reads is walked
 * about twice in all, not once a read.  off == 0: nothing to resume. */
struct resp_progress {
	size_t off;
	long long n, done;
};

/* Reads a decimal number ending in CRLF at buf[*off..len).  Returns 1 and
 * advances *off past the CRLF, 0 if the CRLF has not arrived yet, or -1 if
 * what is there cannot be such a number. */
static int resp_number(const char *buf, size_t len, size_t *off, long long *out)
{
	size_t i = *off;
	int neg = 0;
	long long v = 0;
	if (i < len && buf[i] == '-') {
		neg = 1;
		i++;
	}
	size_t digits = 0;
	for (; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
		if (++digits > 18)
			return -1;
		v = v * 10 + (buf[i] - '0');
	}
	if (i >= len)
		return 0;
	if (!digits || buf[i] != '\r')
		return -1;
	if (i + 1 >= len)
		return 0;
	if (buf[i + 1] != '\n')
		return -1;
	*off = i + 2;
	*out = neg ? -v : v;
	return 1;
}

/* An inline command (telnet, nc): one line, arguments split at blanks. */
static long resp_parse_inline(const char *buf, size_t len, struct resp_arg *args,
                              size_t *argc, const struct resp_limits *lim, const char **err)
{
	const char *nl = memchr(buf, '\n', len);
	if (!nl) {
		if (len > lim->max_inline) {
			*err = "too big inline request";
			return RESP_ERROR;
		}
		return RESP_INCOMPLETE;
	}
	size_t end = (size_t)(nl - buf), n = 0;
	if (end > lim->max_inline) {
		*err = "too big inline request";
		return RESP_ERROR;
	}
	if (end > 0 && buf[end - 1] == '\r')
		end--;
	for (size_t i = 0; i < end;) {
		while (i < end && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		if (i == end)
			break;
		size_t s = i;
		while (i < end && buf[i] != ' ' && buf[i] != '\t')
			i++;
		if (n == lim->max_args) {
			*err = "too many arguments in inline request";
			return RESP_ERROR;
		}
		args[n].p = buf + s;
		args[n++].len = i - s;
	}
	*argc = n;
	return (long)(nl - buf) + 1;
}

/* RESP_INCOMPLETE, remembering in pg (if any) that element `done` of n
 * begins at off. */
static long resp_incomplete(struct resp_progress *pg, size_t off, long long n, long long done)
{
	if (pg)
		*pg = (struct resp_progress){.off = off, .n = n, .done = done};
	return RESP_INCOMPLETE;
}

/* Parses one request at the start of buf[0..len): a RESP array of bulk
 * strings, or an inline line.  Returns the bytes it takes (> 0) with
 * args[0..*argc) pointing into buf (*argc may be 0: an empty request, to be
 * skipped), RESP_INCOMPLETE when more bytes are needed, or RESP_ERROR with
 * *err naming what is wrong (the connection cannot be resynchronised).
 * Every length is checked against lim before it is used.  pg (NULL: none)
 * carries a partial request's progress from one call to the next, for the
 * same request growing in the same buffer; it is cleared when the request
 * completes or fails.  Reads no byte past len and writes nothing but args,
 * *argc, *err and *pg. */
static long resp_parse(const char *buf, size_t len, struct resp_arg *args, size_t *argc,
                       const struct resp_limits *lim, const char **err,
                       struct resp_progress *pg)
{
	long long n, blen, i = 0;
	size_t off = 1;
	int r;
	*argc = 0;
	int resumed = pg && pg->off && pg->off <= len;
	if (resumed) {
		off = pg->off;
		n = pg->n;
		i = pg->done;
	} else {
		if (pg)
			*pg = (struct resp_progress){0};
		if (len == 0)
			return RESP_INCOMPLETE;
		if (buf[0] != '*')
			return resp_parse_inline(buf, len, args, argc, lim, err);
		if ((r = resp_number(buf, len, &off, &n)) <= 0) {
			*err = "invalid multibulk length";
			return r < 0 ? RESP_ERROR : RESP_INCOMPLETE;
		}
		if (n > (long long)lim->max_args) {
			*err = "invalid multibulk length";
			return RESP_ERROR;
		}
	}
	for (; i < n; i++) {
		size_t start = off;
		if (off >= len)
			return resp_incomplete(pg, start, n, i);
		if (buf[off] != '$') {
			*err = "expected '$'";
			goto bad;
		}
		off++;
		if ((r = resp_number(buf, len, &off, &blen)) <= 0) {
			*err = "invalid bulk length";
			if (r < 0)
				goto bad;
			return resp_incomplete(pg, start, n, i);
		}
		if (blen < 0 || (unsigned long long)blen > lim->max_bulk) {
			*err = "invalid bulk length";
			goto bad;
		}
		if (len - off < (size_t)blen + 2)
			return resp_incomplete(pg, start, n, i);
		if (buf[off + blen] != '\r' || buf[off + blen + 1] != '\n') {
			*err = "expected CRLF after a bulk string";
			goto bad;
		}
		args[i].p = buf + off;
		args[i].len = (size_t)blen;
		off += (size_t)blen + 2;
	}
	if (resumed) { /* args before pg->done were set by earlier calls, on
	                * another buffer: one more pass, whole, sets them all */
		*pg = (struct resp_progress){0};
		return resp_parse(buf, len, args, argc, lim, err, NULL);
	}
	*argc = n > 0 ? (size_t)n : 0;
	return (long)off;
bad:
	if (pg)
		*pg = (struct resp_progress){0};
	return RESP_ERROR;
}

/* ---- Options and shared state --------------------------------------------- */

struct opts {
	const char *table, *bind, *unix_path, *port_file, *password;
	int port, threads, writable, trim, quiet;
	unsigned unix_mode;
	long max_clients, timeout_s;
	size_t max_bulk, max_request, max_output;
};

struct client {
	int fd;
	struct client *prev, *next;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_pos, out_cap;
	time_t last_active;
	int authed, closing, want_out;
	struct resp_progress progress; /* of the request at in[0] */
};

struct worker {
	pthread_t tid;
	int index;
	int epfd, tcp_fd, wake_fd;
	struct client *clients;
	size_t nclients;
	_Atomic uint64_t seen_reopen;  /* the reopen sequence it acknowledged */
	_Atomic uint64_t commands;
	struct resp_arg *args;
	unsigned char *keys, *values;  /* MGET and GET scratch               */
	int *found;
	int listening;
};

/* A handle and what the workers need of it, published and retired together:
 * SIGHUP replaces both, and the new table's sentinels may differ. */
struct served {
	struct hashtable *h;
	unsigned char empty_key[HASHTABLE_MAX_KEY], deleted_key[HASHTABLE_MAX_KEY];
};

static struct {
	struct opts o;
	struct table_name tn;
	struct served *_Atomic table;
	_Atomic uint64_t reopen_seq;
	atomic_int stopping;
	_Atomic long nclients;
	_Atomic uint64_t connections, rejected;
	uint32_t key_size, value_size;
	int unix_fd, port;
	time_t started;
	struct worker *workers;
	struct resp_limits lim;
} S;

/* ---- Replies ------------------------------------------------------------------ */

/* Appends n bytes to the client's output.  On no memory the client is
 * marked to be closed: its answers would be incomplete. */
static void out_raw(struct client *c, const void *p, size_t n)
{
	if (c->out_cap - c->out_len < n) {
		size_t cap = c->out_cap ? c->out_cap : 16384;
		while (cap - c->out_len < n)
			cap *= 2;
		char *o = realloc(c->out, cap);
		if (!o) {
			c->closing = 1;
			return;
		}
		c->out = o;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
}

static void out_fmt(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_fmt(struct client *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof buf - 1)
		n = sizeof buf - 1;
	out_raw(c, buf, (size_t)n);
}

/* "<prefix><n>\r\n" without printf: every GET answer starts with one, and
 * vsnprintf would be a measurable share of a pipelined GET's cost. */
static void out_len_line(struct client *c, char prefix, long long n)
{
	char buf[24], *p = buf + sizeof buf;
	unsigned long long u = n < 0 ? 0ull - (unsigned long long)n : (unsigned long long)n;
	*--p = '\n';
	*--p = '\r';
	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	if (n < 0)
		*--p = '-';
	*--p = prefix;
	out_raw(c, p, (size_t)(buf + sizeof buf - p));
}

static void out_bulk(struct client *c, const void *p, size_t n)
{
	out_len_line(c, '$', (long long)n);
	out_raw(c, p, n);
	out_raw(c, "\r\n", 2);
}

static void out_str(struct client *c, const char *s) { out_bulk(c, s, strlen(s)); }
static void out_nil(struct client *c) { out_raw(c, "$-1\r\n", 5); }
static void out_ok(struct client *c) { out_raw(c, "+OK\r\n", 5); }
static void out_int(struct client *c, long long v) { out_len_line(c, ':', v); }
static void out_array(struct client *c, size_t n) { out_len_line(c, '*', (long long)n); }

/* An error reply: one line (CR and LF in the text would end it early). */
static void out_err(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_err(struct client *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	for (char *p = buf; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	out_raw(c, "-", 1);
	out_raw(c, buf, strlen(buf));
	out_raw(c, "\r\n", 2);
}

/* A value as the client sees it: the full width, or without its trailing
 * NUL padding with --trim. */
static size_t value_len(const unsigned char *v)
{
	size_t n = S.value_size;
	if (S.o.trim)
		while (n > 0 && v[n - 1] == 0)
			n--;
	return n;
}

/* ---- Commands ------------------------------------------------------------------- */

struct ctx {
	struct worker *w;
	struct client *c;
	struct hashtable *h;
	const struct resp_arg *a;
	size_t argc;
	const struct served *t;
};

static int arg_is(const struct resp_arg *a, const char *s)
{
	return a->len == strlen(s) && !strncasecmp(a->p, s, a->len);
}

/* A key the table could hold: at most key_size bytes.  Otherwise answers an
 * error naming both widths and returns 0. */
static int key_fits(struct ctx *x, const struct resp_arg *k)
{
	if (k->len <= S.key_size)
		return 1;
	out_err(x->c, "ERR key is %zu bytes, longer than the table's key width of %" PRIu32
	        " bytes", k->len, S.key_size);
	return 0;
}

/* Whether the NUL-padded key is a sentinel: no table can hold it, so a
 * lookup answers "absent" and a write an error. */
static int is_sentinel(const struct ctx *x, const unsigned char *padded)
{
	return !memcmp(padded, x->t->empty_key, S.key_size) ||
	       !memcmp(padded, x->t->deleted_key, S.key_size);
}

static void pad_key(unsigned char *dst, const struct resp_arg *k)
{
	memcpy(dst, k->p, k->len);
	memset(dst + k->len, 0, S.key_size - k->len);
}

/* Looks one key up into w->values.  Returns 1 found, 0 absent, or a
 * negative library code (an error reply is then written). */
static int lookup(struct ctx *x, const struct resp_arg *k)
{
	pad_key(x->w->keys, k);
	if (is_sentinel(x, x->w->keys))
		return 0;
	int r = hashtable_search(x->h, x->w->keys, x->w->values);
	if (r == 0)
		return 1;
	if (r == -1)
		return 0;
	out_err(x->c, "ERR table lookup failed: %s", hashtable_strerror(r));
	return r;
}

static int cmd_get(struct ctx *x)
{
	if (!key_fits(x, &x->a[1]))
		return 0;
	int r = lookup(x, &x->a[1]);
	if (r == 1)
		out_bulk(x->c, x->w->values, value_len(x->w->values));
	else if (r == 0)
		out_nil(x->c);
	return 0;
}

/* Answers a run of keys with batched lookups, BATCH at a time. */
static int cmd_mget(struct ctx *x)
{
	size_t n = x->argc - 1;
	for (size_t i = 1; i < x->argc; i++)
		if (!key_fits(x, &x->a[i]))
			return 0;
	out_array(x->c, n);
	struct worker *w = x->w;
	for (size_t base = 0; base < n; base += BATCH) {
		size_t m = n - base < BATCH ? n - base : BATCH, q = 0;
		size_t pos[BATCH];
		for (size_t i = 0; i < m; i++) {
			pad_key(w->keys + q * S.key_size, &x->a[1 + base + i]);
			if (is_sentinel(x, w->keys + q * S.key_size)) {
				pos[i] = SIZE_MAX;
				continue;
			}
			pos[i] = q++;
		}
		long r = q ? hashtable_search_batch(x->h, q, w->keys, w->values, w->found) : 0;
		for (size_t i = 0; i < m; i++) {
			if (r < 0) {
				/* the array header is out: an error element keeps the
				 * reply well formed */
				out_err(x->c, "ERR table lookup failed: %s", hashtable_strerror((int)r));
			} else if (pos[i] != SIZE_MAX && w->found[pos[i]] == 0) {
				const unsigned char *v = w->values + pos[i] * S.value_size;
				out_bulk(x->c, v, value_len(v));
			} else {
				out_nil(x->c);
			}
		}
	}
	return 0;
}

static int cmd_exists(struct ctx *x)
{
	long long n = 0;
	for (size_t i = 1; i < x->argc; i++) {
		if (x->a[i].len > S.key_size)
			continue; /* cannot be in the table */
		int r = lookup(x, &x->a[i]);
		if (r < 0)
			return 0;
		n += r;
	}
	out_int(x->c, n);
	return 0;
}

static int cmd_strlen(struct ctx *x)
{
	if (x->a[1].len > S.key_size) {
		out_int(x->c, 0);
		return 0;
	}
	int r = lookup(x, &x->a[1]);
	if (r >= 0)
		out_int(x->c, r ? (long long)value_len(x->w->values) : 0);
	return 0;
}

/* hashtable_count: one load (hashtable_stats would sample probe paths and
 * make a system call for the one field). */
static int cmd_dbsize(struct ctx *x)
{
	int64_t n = hashtable_count(x->h);
	if (n < 0)
		out_err(x->c, "ERR %s", hashtable_strerror((int)n));
	else
		out_int(x->c, (long long)n);
	return 0;
}

static int cmd_ping(struct ctx *x)
{
	if (x->argc > 2)
		out_err(x->c, "ERR wrong number of arguments for 'ping' command");
	else if (x->argc == 2)
		out_bulk(x->c, x->a[1].p, x->a[1].len);
	else
		out_raw(x->c, "+PONG\r\n", 7);
	return 0;
}

static int cmd_echo(struct ctx *x)
{
	out_bulk(x->c, x->a[1].p, x->a[1].len);
	return 0;
}

static int cmd_quit(struct ctx *x)
{
	out_ok(x->c);
	x->c->closing = 1;
	return 1;
}

static int cmd_select(struct ctx *x)
{
	if (arg_is(&x->a[1], "0"))
		out_ok(x->c);
	else
		out_err(x->c, "ERR DB index is out of range (a shmkv table is database 0 only)");
	return 0;
}

static int check_password(struct ctx *x, const struct resp_arg *user, const struct resp_arg *pass)
{
	if (!S.o.password) {
		out_err(x->c, "ERR AUTH <password> called without any password configured for "
		        "the default user. Are you sure your configuration is correct?");
		return 0;
	}
	if ((user && !arg_is(user, "default")) || pass->len != strlen(S.o.password) ||
	    memcmp(pass->p, S.o.password, pass->len)) {
		out_err(x->c, "WRONGPASS invalid username-password pair or user is disabled.");
		return 0;
	}
	x->c->authed = 1;
	return 1;
}

static int cmd_auth(struct ctx *x)
{
	if (x->argc > 3) {
		out_err(x->c, "ERR syntax error");
		return 0;
	}
	if (check_password(x, x->argc == 3 ? &x->a[1] : NULL, &x->a[x->argc - 1]))
		out_ok(x->c);
	return 0;
}

static int cmd_hello(struct ctx *x)
{
	size_t i = 1;
	if (x->argc > 1) {
		if (!arg_is(&x->a[1], "2")) {
			if (arg_is(&x->a[1], "3"))
				out_err(x->c, "NOPROTO sorry, this protocol version is not supported "
				        "(shmkv-serve speaks RESP2)");
			else
				out_err(x->c, "NOPROTO unsupported protocol version");
			return 0;
		}
		i = 2;
	}
	for (; i < x->argc; i++) {
		if (arg_is(&x->a[i], "AUTH") && i + 2 < x->argc) {
			if (!check_password(x, &x->a[i + 1], &x->a[i + 2]))
				return 0;
			i += 2;
		} else if (arg_is(&x->a[i], "SETNAME") && i + 1 < x->argc) {
			i++;
		} else {
			out_err(x->c, "ERR Syntax error in HELLO option '%.*s'", (int)x->a[i].len,
			        x->a[i].p);
			return 0;
		}
	}
	if (S.o.password && !x->c->authed) {
		out_err(x->c, "NOAUTH HELLO must be called with the client already authenticated, "
		        "otherwise the HELLO AUTH <user> <pass> option can be used to authenticate "
		        "the client and select the RESP protocol version at the same time");
		return 0;
	}
	out_array(x->c, 14);
	out_str(x->c, "server");
	out_str(x->c, "redis");
	out_str(x->c, "version");
	out_str(x->c, "7.0.0");
	out_str(x->c, "proto");
	out_int(x->c, 2);
	out_str(x->c, "id");
	out_int(x->c, x->c->fd);
	out_str(x->c, "mode");
	out_str(x->c, "standalone");
	out_str(x->c, "role");
	out_str(x->c, "master");
	out_str(x->c, "modules");
	out_array(x->c, 0);
	return 0;
}

/* Redis's glob (stringmatchlen): * ? [abc] [^a-z] and \x, over bytes. */
static int glob_match(const char *p, size_t pn, const char *s, size_t sn, int depth)
{
	if (depth > 64)
		return 0; /* a pattern of many stars: refuse rather than recurse on */
	while (pn) {
		switch (*p) {
		case '*':
			while (pn > 1 && p[1] == '*')
				p++, pn--;
			if (pn == 1)
				return 1;
			for (size_t i = 0; i <= sn; i++)
				if (glob_match(p + 1, pn - 1, s + i, sn - i, depth + 1))
					return 1;
			return 0;
		case '?':
			if (!sn)
				return 0;
			s++, sn--;
			break;
		case '[': {
			if (!sn)
				return 0;
			p++, pn--;
			int neg = pn && *p == '^', hit = 0;
			if (neg)
				p++, pn--;
			while (pn && *p != ']') {
				if (*p == '\\' && pn >= 2) {
					p++, pn--;
					hit |= *p == *s;
				} else if (pn >= 3 && p[1] == '-') {
					unsigned char lo = (unsigned char)p[0], hi = (unsigned char)p[2];
					if (lo > hi) {
						unsigned char t = lo;
						lo = hi;
						hi = t;
					}
					hit |= (unsigned char)*s >= lo && (unsigned char)*s <= hi;
					p += 2, pn -= 2;
				} else {
					hit |= *p == *s;
				}
				p++, pn--;
			}
			if (hit == neg)
				return 0;
			if (!pn)
				return 1; /* unterminated class: Redis ends the match here */
			s++, sn--;
			break;
		}
		case '\\':
			if (pn >= 2)
				p++, pn--;
			/* fall through */
		default:
			if (!sn || *p != *s)
				return 0;
			s++, sn--;
			break;
		}
		p++, pn--;
	}
	return sn == 0;
}

/* SCAN cursor [MATCH pattern] [COUNT n]: the cursor is the library's
 * iteration cursor (a slot index of the current generation); keys are
 * returned without their NUL padding, as the client would send them. */
static int cmd_scan(struct ctx *x)
{
	char *end;
	errno = 0;
	unsigned long long cur = strtoull(x->a[1].p, &end, 10);
	const struct resp_arg *pat = NULL;
	long long count = 10;
	if (errno || end != x->a[1].p + x->a[1].len || x->a[1].len == 0 || x->a[1].p[0] == '-') {
		out_err(x->c, "ERR invalid cursor");
		return 0;
	}
	for (size_t i = 2; i < x->argc; i += 2) {
		if (i + 1 >= x->argc) {
			out_err(x->c, "ERR syntax error");
			return 0;
		}
		if (arg_is(&x->a[i], "MATCH")) {
			pat = &x->a[i + 1];
		} else if (arg_is(&x->a[i], "COUNT")) {
			count = strtoll(x->a[i + 1].p, &end, 10);
			if (end != x->a[i + 1].p + x->a[i + 1].len || count < 1) {
				out_err(x->c, "ERR value is not an integer or out of range");
				return 0;
			}
			if (count > 100000)
				count = 100000;
		} else {
			out_err(x->c, "ERR syntax error");
			return 0;
		}
	}
	uint64_t cursor = cur;
	struct resp_arg *keys = x->w->args + x->argc; /* spare room past the request */
	unsigned char *kbuf = NULL;
	size_t nk = 0;
	int r = 1;
	kbuf = malloc((size_t)count * S.key_size);
	if (!kbuf) {
		out_err(x->c, "ERR out of memory");
		return 0;
	}
	for (long long seen = 0; seen < count; seen++) {
		unsigned char *k = kbuf + nk * S.key_size;
		r = hashtable_iterate(x->h, &cursor, k, NULL);
		if (r != 1)
			break;
		size_t kl = S.key_size;
		while (kl > 0 && k[kl - 1] == 0)
			kl--;
		if (pat && !glob_match(pat->p, pat->len, (const char *)k, kl, 0))
			continue;
		keys[nk].p = (const char *)k;
		keys[nk++].len = kl;
	}
	if (r < 0) {
		out_err(x->c, "ERR table iteration failed: %s", hashtable_strerror(r));
	} else {
		char cbuf[32];
		snprintf(cbuf, sizeof cbuf, "%" PRIu64, r == 0 ? 0 : cursor);
		out_array(x->c, 2);
		out_str(x->c, cbuf);
		out_array(x->c, nk);
		for (size_t i = 0; i < nk; i++)
			out_bulk(x->c, keys[i].p, keys[i].len);
	}
	free(kbuf);
	return 0;
}

static int cmd_writes_refused(struct ctx *x)
{
	out_err(x->c, "READONLY You can't write against a read only replica. (shmkv-serve was "
	        "started without --writable)");
	return 0;
}

/* Answers a write's failure; returns whether it failed. */
static int write_failed(struct ctx *x, const struct resp_arg *k, int r)
{
	if (r >= 0 || r == -1)
		return 0;
	if (r == -ENOMEM)
		out_err(x->c, "OOM the table is full (its load limit): grow it with `shmkv grow`");
	else if (r == -EINVAL && k && k->len <= S.key_size)
		out_err(x->c, "ERR key '%.*s' is one of the table's sentinels and cannot be stored",
		        (int)(k->len > 64 ? 64 : k->len), k->p);
	else
		out_err(x->c, "ERR table write failed: %s", hashtable_last_error());
	return 1;
}

static int value_fits(struct ctx *x, const struct resp_arg *v)
{
	if (v->len <= S.value_size)
		return 1;
	out_err(x->c, "ERR value is %zu bytes, longer than the table's value width of %" PRIu32
	        " bytes", v->len, S.value_size);
	return 0;
}

static int cmd_set(struct ctx *x)
{
	if (x->argc != 3) {
		out_err(x->c, "ERR syntax error (shmkv-serve's SET takes no options)");
		return 0;
	}
	if (!key_fits(x, &x->a[1]) || !value_fits(x, &x->a[2]))
		return 0;
	int r = hashtable_put(x->h, x->a[1].p, x->a[1].len, x->a[2].p, x->a[2].len);
	if (!write_failed(x, &x->a[1], r))
		out_ok(x->c);
	return 0;
}

static int cmd_mset(struct ctx *x)
{
	if (x->argc % 2 == 0) {
		out_err(x->c, "ERR wrong number of arguments for 'mset' command");
		return 0;
	}
	for (size_t i = 1; i < x->argc; i += 2)
		if (!key_fits(x, &x->a[i]) || !value_fits(x, &x->a[i + 1]))
			return 0;
	for (size_t i = 1; i < x->argc; i += 2) {
		int r = hashtable_put(x->h, x->a[i].p, x->a[i].len, x->a[i + 1].p, x->a[i + 1].len);
		if (write_failed(x, &x->a[i], r))
			return 0; /* the keys before it are stored: MSET is not atomic here */
	}
	out_ok(x->c);
	return 0;
}

static int cmd_del(struct ctx *x)
{
	long long n = 0;
	for (size_t i = 1; i < x->argc; i++) {
		if (x->a[i].len > S.key_size)
			continue;
		pad_key(x->w->keys, &x->a[i]);
		if (is_sentinel(x, x->w->keys))
			continue;
		int r = hashtable_del(x->h, x->a[i].p, x->a[i].len);
		if (write_failed(x, &x->a[i], r))
			return 0;
		n += r == 0;
	}
	out_int(x->c, n);
	return 0;
}

static int cmd_config(struct ctx *x)
{
	/* redis-benchmark asks CONFIG GET save and appendonly (and warns
	 * without an answer): the truth is that nothing is saved; any other
	 * setting is not there (an empty list). */
	if (arg_is(&x->a[1], "GET") && x->argc == 3 &&
	    (arg_is(&x->a[2], "save") || arg_is(&x->a[2], "appendonly"))) {
		int save = arg_is(&x->a[2], "save");
		out_array(x->c, 2);
		out_str(x->c, save ? "save" : "appendonly");
		out_str(x->c, save ? "" : "no");
	} else if (arg_is(&x->a[1], "GET"))
		out_array(x->c, 0);
	else
		out_err(x->c, "ERR shmkv-serve has no settable configuration");
	return 0;
}

static int cmd_info(struct ctx *x);
static int cmd_command(struct ctx *x);

struct command {
	const char *name;
	int (*run)(struct ctx *x);
	int arity;    /* as Redis: n exactly, -n at least n (name included) */
	int write;
	const char *flags; /* for COMMAND's reply */
	int first_key, last_key, step;
};

static const struct command commands[] = {
	{ "get", cmd_get, 2, 0, "readonly fast", 1, 1, 1 },
	{ "mget", cmd_mget, -2, 0, "readonly fast", 1, -1, 1 },
	{ "exists", cmd_exists, -2, 0, "readonly fast", 1, -1, 1 },
	{ "strlen", cmd_strlen, 2, 0, "readonly fast", 1, 1, 1 },
	{ "dbsize", cmd_dbsize, 1, 0, "readonly fast", 0, 0, 0 },
	{ "scan", cmd_scan, -2, 0, "readonly", 0, 0, 0 },
	{ "ping", cmd_ping, -1, 0, "fast", 0, 0, 0 },
	{ "echo", cmd_echo, 2, 0, "fast", 0, 0, 0 },
	{ "quit", cmd_quit, -1, 0, "fast", 0, 0, 0 },
	{ "select", cmd_select, 2, 0, "loading fast", 0, 0, 0 },
	{ "auth", cmd_auth, -2, 0, "noscript loading fast no_auth", 0, 0, 0 },
	{ "hello", cmd_hello, -1, 0, "noscript loading fast no_auth", 0, 0, 0 },
	{ "info", cmd_info, -1, 0, "loading", 0, 0, 0 },
	{ "command", cmd_command, -1, 0, "loading", 0, 0, 0 },
	{ "config", cmd_config, -2, 0, "admin loading", 0, 0, 0 },
	{ "set", cmd_set, -3, 1, "write denyoom", 1, 1, 1 },
	{ "mset", cmd_mset, -3, 1, "write denyoom", 1, -1, 2 },
	{ "del", cmd_del, -2, 1, "write", 1, -1, 1 },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find_command(const struct resp_arg *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (arg_is(name, commands[i].name))
			return &commands[i];
	return NULL;
}

static void out_command_info(struct client *c, const struct command *cmd)
{
	out_array(c, 6);
	out_str(c, cmd->name);
	out_int(c, cmd->arity);
	size_t nf = 0;
	char flags[64];
	snprintf(flags, sizeof flags, "%s", cmd->flags);
	for (char *t = strtok(flags, " "); t; t = strtok(NULL, " "))
		nf++;
	out_array(c, nf);
	snprintf(flags, sizeof flags, "%s", cmd->flags);
	for (char *t = strtok(flags, " "); t; t = strtok(NULL, " "))
		out_fmt(c, "+%s\r\n", t);
	out_int(c, cmd->first_key);
	out_int(c, cmd->last_key);
	out_int(c, cmd->step);
}

/* COMMAND, COMMAND COUNT, COMMAND INFO name..., COMMAND DOCS [name...]:
 * enough for redis-cli (it asks DOCS at start and falls back to its own
 * help with an empty answer) and for clients that look commands up. */
static int cmd_command(struct ctx *x)
{
	struct client *c = x->c;
	if (x->argc == 1) {
		out_array(c, NCOMMANDS);
		for (size_t i = 0; i < NCOMMANDS; i++)
			out_command_info(c, &commands[i]);
	} else if (arg_is(&x->a[1], "COUNT")) {
		out_int(c, (long long)NCOMMANDS);
	} else if (arg_is(&x->a[1], "INFO")) {
		out_array(c, x->argc - 2);
		for (size_t i = 2; i < x->argc; i++) {
			const struct command *cmd = find_command(&x->a[i]);
			if (cmd)
				out_command_info(c, cmd);
			else
				out_raw(c, "*-1\r\n", 5);
		}
	} else if (arg_is(&x->a[1], "DOCS")) {
		out_array(c, 0);
	} else {
		out_err(c, "ERR unknown subcommand '%.*s'. Try COMMAND HELP.",
		        (int)(x->a[1].len > 64 ? 64 : x->a[1].len), x->a[1].p);
	}
	return 0;
}

static int cmd_info(struct ctx *x)
{
	struct hashtable_stats st;
	int r = hashtable_stats(x->h, &st);
	if (r < 0) {
		out_err(x->c, "ERR %s", hashtable_strerror(r));
		return 0;
	}
	uint64_t cmds = 0;
	for (int i = 0; i < S.o.threads; i++)
		cmds += atomic_load_explicit(&S.workers[i].commands, memory_order_relaxed);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	char buf[4096];
	int n = snprintf(buf, sizeof buf,
		"# Server\r\n"
		"redis_version:7.0.0\r\n"
		"shmkv_version:%s\r\n"
		"redis_mode:standalone\r\n"
		"process_id:%ld\r\n"
		"tcp_port:%d\r\n"
		"uptime_in_seconds:%ld\r\n"
		"io_threads_active:%d\r\n"
		"\r\n# Clients\r\n"
		"connected_clients:%ld\r\n"
		"maxclients:%ld\r\n"
		"\r\n# Stats\r\n"
		"total_connections_received:%" PRIu64 "\r\n"
		"total_commands_processed:%" PRIu64 "\r\n"
		"rejected_connections:%" PRIu64 "\r\n"
		"\r\n# CPU\r\n"
		"used_cpu_sys:%ld.%06ld\r\n"
		"used_cpu_user:%ld.%06ld\r\n"
		"\r\n# Table\r\n"
		"table:%s\r\n"
		"table_shmid:%d\r\n"
		"writable:%s\r\n"
		"values_trimmed:%s\r\n"
		"key_size:%" PRIu32 "\r\n"
		"value_size:%" PRIu32 "\r\n"
		"keys:%" PRIu64 "\r\n"
		"max_keys:%" PRIu64 "\r\n"
		"load:%.4f\r\n"
		"max_load:%.4f\r\n"
		"generation:%" PRIu64 "\r\n"
		"segment_bytes:%" PRIu64 "\r\n"
		"payload_bytes:%" PRIu64 "\r\n"
		"\r\n# Keyspace\r\n"
		"db0:keys=%" PRIu64 ",expires=0,avg_ttl=0\r\n",
		shmkv_version(), (long)getpid(), S.port, (long)(time(NULL) - S.started),
		S.o.threads, atomic_load(&S.nclients), S.o.max_clients,
		atomic_load(&S.connections), cmds, atomic_load(&S.rejected),
		(long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec,
		(long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec,
		S.tn.arg, st.shmid, S.o.writable ? "yes" : "no", S.o.trim ? "yes" : "no",
		st.key_size, st.value_size, st.count, st.max_count,
		st.slots ? (double)st.count / (double)st.slots : 0.0, st.max_load,
		hashtable_generation(x->h), st.segment_bytes, st.payload_bytes, st.count);
	if (n > (int)sizeof buf - 1)
		n = sizeof buf - 1;
	out_bulk(x->c, buf, (size_t)n);
	return 0;
}

/* Runs one parsed request.  Returns 1 when the client is to be closed after
 * its output is flushed (QUIT). */
static int execute(struct worker *w, struct client *c, const struct served *t,
                   const struct resp_arg *a, size_t argc)
{
	struct ctx x = { w, c, t->h, a, argc, t };
	const struct command *cmd = find_command(&a[0]);
	atomic_fetch_add_explicit(&w->commands, 1, memory_order_relaxed);
	if (!cmd) {
		out_err(c, "ERR unknown command '%.*s', with args beginning with: %s",
		        (int)(a[0].len > 64 ? 64 : a[0].len), a[0].p, argc > 1 ? "..." : "");
		return 0;
	}
	if (S.o.password && !c->authed && cmd->run != cmd_auth && cmd->run != cmd_hello &&
	    cmd->run != cmd_quit) {
		out_err(c, "NOAUTH Authentication required.");
		return 0;
	}
	if ((cmd->arity > 0 && argc != (size_t)cmd->arity) ||
	    (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
		out_err(c, "ERR wrong number of arguments for '%s' command", cmd->name);
		return 0;
	}
	if (cmd->write && !S.o.writable)
		return cmd_writes_refused(&x);
	return cmd->run(&x);
}

/* ---- Clients ---------------------------------------------------------------- */

static void client_close(struct worker *w, struct client *c)
{
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nclients--;
	atomic_fetch_sub(&S.nclients, 1);
	free(c->in);
	free(c->out);
	free(c);
}

/* Waits for the socket to be writable (and stops reading) while output is
 * pending; reads again once it has drained. */
static void client_watch(struct worker *w, struct client *c)
{
	int want = c->out_pos < c->out_len;
	if (want == c->want_out)
		return;
	struct epoll_event ev = { .events = want ? EPOLLOUT : EPOLLIN, .data.ptr = c };
	epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_out = want;
}

/* Writes pending output.  Returns -1 if the client is gone. */
static int client_flush(struct client *c)
{
	while (c->out_pos < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_pos, c->out_len - c->out_pos, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		c->out_pos += (size_t)n;
	}
	c->out_pos = c->out_len = 0;
	if (c->out_cap > (4u << 20)) { /* give back what a big answer took */
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	return 0;
}

/* Answers every complete request in the input buffer, unless the output
 * waiting reaches OUT_PAUSE (the rest is answered once it drains). */
static void client_process(struct worker *w, struct client *c, const struct served *t)
{
	size_t off = 0;
	while (!c->closing && off < c->in_len && c->out_len - c->out_pos < OUT_PAUSE) {
		size_t argc;
		const char *err = NULL;
		long n = resp_parse(c->in + off, c->in_len - off, w->args, &argc, &S.lim, &err,
		                    &c->progress);
		if (n == RESP_INCOMPLETE) {
			if (c->in_len - off > S.o.max_request) {
				out_err(c, "ERR Protocol error: request larger than %zu bytes "
				        "(--max-request)", S.o.max_request);
				c->closing = 1;
			}
			break;
		}
		if (n == RESP_ERROR) {
			out_err(c, "ERR Protocol error: %s", err);
			c->closing = 1;
			break;
		}
		off += (size_t)n;
		if (argc)
			execute(w, c, t, w->args, argc);
	}
	if (off) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
}

/* Reads once (level-triggered epoll calls again while more waits), then
 * answers.  Returns -1 if the client is to be closed now. */
static int client_read(struct worker *w, struct client *c, const struct served *t)
{
	if (c->in_cap - c->in_len < READ_CHUNK) {
		size_t cap = c->in_len + READ_CHUNK;
		char *p = realloc(c->in, cap);
		if (!p)
			return -1;
		c->in = p;
		c->in_cap = cap;
	}
	ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	if (n == 0)
		return -1;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	c->in_len += (size_t)n;
	if (S.o.timeout_s)
		c->last_active = time(NULL);
	client_process(w, c, t);
	return 0;
}

/* A client event: input, or room to write.  Closes the client when it is
 * gone, asked to quit, or broke the protocol (after its error reply). */
static void client_event(struct worker *w, struct client *c, uint32_t events,
                         const struct served *t)
{
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		client_close(w, c);
		return;
	}
	if ((events & EPOLLIN) && !c->want_out && !c->closing && client_read(w, c, t) < 0) {
		client_close(w, c);
		return;
	}
	if (client_flush(c) < 0) {
		client_close(w, c);
		return;
	}
	/* output drained: answer what was read while it waited */
	if (c->out_len == 0 && c->in_len && !c->closing) {
		client_process(w, c, t);
		if (client_flush(c) < 0) {
			client_close(w, c);
			return;
		}
	}
	if (c->out_len - c->out_pos > S.o.max_output) {
		client_close(w, c); /* reads nothing of what it asks: no reason to keep it */
		return;
	}
	if (c->closing && c->out_len == 0) {
		client_close(w, c);
		return;
	}
	client_watch(w, c);
}

static void accept_clients(struct worker *w, int lfd)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or a peer gone before we took it */
		if (atomic_fetch_add(&S.nclients, 1) >= S.o.max_clients) {
			static const char full[] = "-ERR max number of clients reached\r\n";
			ssize_t ignored = send(fd, full, sizeof full - 1, MSG_NOSIGNAL);
			(void)ignored;
			close(fd);
			atomic_fetch_sub(&S.nclients, 1);
			atomic_fetch_add(&S.rejected, 1);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails on Unix: fine */
		struct client *c = calloc(1, sizeof *c);
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		if (!c || epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			free(c);
			close(fd);
			atomic_fetch_sub(&S.nclients, 1);
			continue;
		}
		c->fd = fd;
		c->authed = !S.o.password;
		c->last_active = time(NULL);
		c->next = w->clients;
		if (w->clients)
			w->clients->prev = c;
		w->clients = c;
		w->nclients++;
		atomic_fetch_add(&S.connections, 1);
	}
}

static void close_idle(struct worker *w)
{
	time_t now = time(NULL);
	for (struct client *c = w->clients, *next; c; c = next) {
		next = c->next;
		if (now - c->last_active >= S.o.timeout_s)
			client_close(w, c);
	}
}

/* ---- Workers ------------------------------------------------------------------ */

/* Tags that tell the listening sockets and the wake-up eventfd from clients
 * in epoll's data (clients are heap pointers, never these). */
static char tag_tcp, tag_unix, tag_wake;

static void stop_listening(struct worker *w)
{
	if (!w->listening)
		return;
	if (w->tcp_fd >= 0) {
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->tcp_fd, NULL);
		close(w->tcp_fd);
		w->tcp_fd = -1;
	}
	if (S.unix_fd >= 0)
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, S.unix_fd, NULL);
	w->listening = 0;
}

/* The drain after SIGTERM: requests already read are answered; clients are
 * closed once their output is out, or at the deadline. */
static int drained(struct worker *w, const struct timespec *deadline)
{
	struct timespec now;
	for (struct client *c = w->clients, *next; c; c = next) {
		next = c->next;
		if (c->out_len == 0)
			client_close(w, c);
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	return !w->clients || now.tv_sec > deadline->tv_sec ||
	       (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[256];
	struct timespec deadline = { 0, 0 };
	int timeout = S.o.timeout_s ? 1000 : -1;
	for (;;) {
		int stopping = atomic_load(&S.stopping);
		if (stopping && w->listening) {
			stop_listening(w);
			clock_gettime(CLOCK_MONOTONIC, &deadline);
			deadline.tv_sec += DRAIN_MS / 1000;
		}
		if (stopping && drained(w, &deadline))
			break;
		int n = epoll_wait(w->epfd, evs, 256, stopping ? 100 : timeout);
		const struct served *t = atomic_load(&S.table);
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &tag_tcp) {
				accept_clients(w, w->tcp_fd);
			} else if (p == &tag_unix) {
				accept_clients(w, S.unix_fd);
			} else if (p == &tag_wake) {
				uint64_t v;
				ssize_t ignored = read(w->wake_fd, &v, sizeof v);
				(void)ignored;
			} else {
				client_event(w, p, evs[i].events, t);
			}
		}
		if (S.o.timeout_s)
			close_idle(w);
		/* t is not used past here: the reopen may close it */
		atomic_store(&w->seen_reopen, atomic_load(&S.reopen_seq));
	}
	while (w->clients)
		client_close(w, w->clients);
	return NULL;
}

static void wake_workers(void)
{
	uint64_t one = 1;
	for (int i = 0; i < S.o.threads; i++) {
		ssize_t ignored = write(S.workers[i].wake_fd, &one, sizeof one);
		(void)ignored;
	}
}

/* ---- Set-up ------------------------------------------------------------------- */

/* Opens the table into a new struct served (*out). */
static int open_table(struct served **out)
{
	struct served *t = calloc(1, sizeof *t);
	if (!t) {
		msg("out of memory");
		return RC_REFUSED;
	}
	int rc = table_open(&S.tn, S.o.writable ? 0 : HASHTABLE_RDONLY, &t->h);
	if (rc != RC_OK) {
		free(t);
		return rc;
	}
	struct hashtable_stats st;
	hashtable_stats(t->h, &st);
	warn_name_mismatch(&S.tn, &st);
	hashtable_sentinels(t->h, t->empty_key, t->deleted_key);
	*out = t;
	return RC_OK;
}

static void close_table(struct served *t)
{
	hashtable_close(t->h);
	free(t);
}

/* SIGHUP: opens the table again (it may have been removed and made anew),
 * publishes the new handle, waits until every worker has left the old one,
 * then closes it.  On failure the old handle keeps serving. */
static void reopen_table(void)
{
	struct served *t;
	if (open_table(&t) != RC_OK) {
		msg("SIGHUP: could not open %s again; still serving the table opened before",
		    S.tn.arg);
		return;
	}
	struct hashtable_stats st;
	hashtable_stats(t->h, &st);
	if (st.key_size != S.key_size || st.value_size != S.value_size) {
		msg("SIGHUP: %s now has widths %" PRIu32 "/%" PRIu32 ", not %" PRIu32 "/%" PRIu32
		    "; restart shmkv-serve to serve it", S.tn.arg, st.key_size, st.value_size,
		    S.key_size, S.value_size);
		close_table(t);
		return;
	}
	struct served *old = atomic_exchange(&S.table, t);
	uint64_t seq = atomic_fetch_add(&S.reopen_seq, 1) + 1;
	wake_workers();
	for (int i = 0; i < S.o.threads; i++)
		while (atomic_load(&S.workers[i].seen_reopen) < seq)
			usleep(1000);
	close_table(old);
	if (!S.o.quiet)
		msg("SIGHUP: %s opened again (generation %" PRIu64 ", %" PRIu64 " keys)", S.tn.arg,
		    hashtable_generation(t->h), st.count);
}

/* Enough file descriptors for --max-clients, raised up to the hard limit. */
static void raise_nofile(void)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)S.o.max_clients + 64 + 4 * (rlim_t)S.o.threads;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < want && !S.o.quiet)
		msg("warning: open files limited to %llu (hard limit): fewer than --max-clients %ld "
		    "clients can connect; raise it with `ulimit -Hn %llu` (as root) or "
		    "LimitNOFILE= in a systemd unit", (unsigned long long)rl.rlim_cur,
		    S.o.max_clients, (unsigned long long)want);
}

static int tcp_listener(struct addrinfo *ai, int port, int reuseport)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	if (ai->ai_family == AF_INET6)
		((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)port);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int listen_failed(int port)
{
	msg("cannot listen on %s port %d: %s%s", S.o.bind, port, strerror(errno),
	    errno == EADDRINUSE ? " (another server has it: choose another --port, "
	    "or --port 0 for any free one)" : "");
	return RC_REFUSED;
}

/* One TCP listener per worker on one port (the first picks it when --port
 * is 0).  Returns RC_OK or an exit code, having said why. */
static int listen_tcp(void)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
	int e = getaddrinfo(S.o.bind, NULL, &hints, &ai);
	if (e) {
		msg("--bind %s: %s", S.o.bind, gai_strerror(e));
		return RC_USAGE;
	}
	int port = S.o.port, rc = RC_OK;
	/* SO_REUSEPORT would let this server join another one of the same user
	 * already on the port, each taking half the connections: a listener
	 * without it first makes sure the port is free. */
	if (port) {
		int probe = tcp_listener(ai, port, 0);
		if (probe < 0)
			rc = listen_failed(port);
		else
			close(probe);
	}
	for (int i = 0; i < S.o.threads && rc == RC_OK; i++) {
		int fd = tcp_listener(ai, port, 1);
		if (fd < 0) {
			rc = listen_failed(port);
			break;
		}
		if (port == 0) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof ss;
			getsockname(fd, (struct sockaddr *)&ss, &sl);
			port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
			                                      : ((struct sockaddr_in *)&ss)->sin_port);
		}
		S.workers[i].tcp_fd = fd;
	}
	freeaddrinfo(ai);
	S.port = port;
	return rc;
}

static int listen_unix(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(S.o.unix_path) >= sizeof sa.sun_path) {
		msg("--unix %s: path longer than %zu bytes", S.o.unix_path, sizeof sa.sun_path - 1);
		return RC_USAGE;
	}
	strcpy(sa.sun_path, S.o.unix_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct stat sb;
	if (fd >= 0 && lstat(S.o.unix_path, &sb) == 0 && S_ISSOCK(sb.st_mode))
		unlink(S.o.unix_path); /* a socket left by a server that died */
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    chmod(S.o.unix_path, S.o.unix_mode) < 0 || listen(fd, 1024) < 0) {
		msg("cannot listen on %s: %s", S.o.unix_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return RC_REFUSED;
	}
	S.unix_fd = fd;
	return RC_OK;
}

static int write_port_file(void)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s.tmp%ld", S.o.port_file, (long)getpid());
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", S.port) < 0 || fclose(f) != 0 || rename(tmp, S.o.port_file)) {
		msg("--port-file %s: %s", S.o.port_file, strerror(errno));
		unlink(tmp);
		return RC_REFUSED;
	}
	return RC_OK;
}

static int start_worker(struct worker *w)
{
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->args = malloc(sizeof *w->args * (MAX_ARGS + 100000)); /* + SCAN's COUNT cap */
	w->keys = malloc((size_t)BATCH * S.key_size);
	w->values = malloc((size_t)BATCH * (S.value_size ? S.value_size : 1));
	w->found = malloc(sizeof *w->found * BATCH);
	if (w->epfd < 0 || w->wake_fd < 0 || !w->args || !w->keys || !w->values || !w->found)
		return -1;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &tag_wake };
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_fd, &ev) < 0)
		return -1;
	if (w->tcp_fd >= 0) {
		ev.data.ptr = &tag_tcp;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->tcp_fd, &ev) < 0)
			return -1;
	}
	if (S.unix_fd >= 0) {
		ev.events = EPOLLIN | EPOLLEXCLUSIVE;
		ev.data.ptr = &tag_unix;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, S.unix_fd, &ev) < 0)
			return -1;
	}
	w->listening = 1;
	return pthread_create(&w->tid, NULL, worker_main, w) ? -1 : 0;
}

/* ---- Options -------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
"Usage: %s [OPTION]... TABLE\n"
"Serve the shmkv table TABLE over the Redis protocol (RESP2): redis-cli,\n"
"redis-benchmark, Redis client libraries and twemproxy can read it.  TABLE is\n"
"an existing file (IPC key ftok(TABLE, 1)) or a numeric IPC key 0x....\n"
"Commands: GET MGET EXISTS STRLEN DBSIZE SCAN PING ECHO QUIT INFO COMMAND HELLO\n"
"AUTH SELECT, and with --writable SET DEL MSET.  Keys shorter than the table's\n"
"key width are NUL-padded; longer keys are refused.\n"
"\n"
"Listening:\n"
"  -b, --bind=ADDR         TCP address (default 127.0.0.1)\n"
"  -p, --port=PORT         TCP port (default " STR(DEFAULT_PORT) "; 0: any free port, see\n"
"                          --port-file)\n"
"      --port-file=FILE    write the port to FILE once listening\n"
"      --no-tcp            no TCP listener (with --unix)\n"
"  -s, --unix=PATH         also listen on a Unix socket\n"
"      --unix-mode=OCTAL   the socket's permission bits (default 0600)\n"
"  -t, --threads=N         worker threads (default 1)\n"
"\n"
"Serving:\n"
"  -w, --writable          accept SET, DEL, MSET (else they answer -READONLY)\n"
"      --trim              strip trailing NUL padding from values (tables loaded\n"
"                          from text)\n"
"  -a, --requirepass=PASS  clients must AUTH PASS first\n"
"\n"
"Limits:\n"
"      --max-clients=N     connections at once (default " STR(DEFAULT_MAX_CLIENTS) "); the open\n"
"                          files limit is raised to match, up to its hard limit\n"
"      --timeout=SECONDS   close clients idle this long (default 0: never)\n"
"      --max-bulk=BYTES    longest bulk string in a request (default 1M)\n"
"      --max-request=BYTES longest request (default 64M)\n"
"      --max-output=BYTES  drop a client whose unread answers pass this\n"
"                          (default 256M)\n"
"  -q, --quiet             no start-up line on stderr\n"
"  -h, --help              print this help and exit\n"
"      --version           print the version and exit\n"
"\n"
"Signals: SIGTERM and SIGINT stop listening, answer what was read, exit 0;\n"
"SIGHUP opens TABLE again.  Exit status: 0 after SIGTERM, 1 no such table,\n"
"2 usage error, 4 refused (the port is taken, permissions).\n"
"\nSee shmkv-serve(1).\n", tool_name);
}

enum { OPT_VERSION = 256, OPT_PORT_FILE, OPT_UNIX_MODE, OPT_TRIM, OPT_MAX_CLIENTS,
       OPT_TIMEOUT, OPT_MAX_BULK, OPT_MAX_REQUEST, OPT_MAX_OUTPUT, OPT_NO_TCP };

static int parse_long(const char *opt, const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		msg("%s '%s': not a number from %ld to %ld", opt, s, lo, hi);
		return RC_USAGE;
	}
	*out = v;
	return RC_OK;
}

static int parse_bytes(const char *opt, const char *s, size_t *out)
{
	uint64_t v;
	if (parse_size(s, &v) || v == 0 || v > (1ull << 31)) {
		msg("%s '%s': not a size from 1 to 2G (K, M, G suffixes)", opt, s);
		return RC_USAGE;
	}
	*out = (size_t)v;
	return RC_OK;
}

static int parse_args(struct opts *o, int argc, char **argv, int *no_tcp)
{
	static const struct option lo[] = {
		{ "bind", required_argument, 0, 'b' },
		{ "port", required_argument, 0, 'p' },
		{ "port-file", required_argument, 0, OPT_PORT_FILE },
		{ "no-tcp", no_argument, 0, OPT_NO_TCP },
		{ "unix", required_argument, 0, 's' },
		{ "unix-mode", required_argument, 0, OPT_UNIX_MODE },
		{ "threads", required_argument, 0, 't' },
		{ "writable", no_argument, 0, 'w' },
		{ "trim", no_argument, 0, OPT_TRIM },
		{ "requirepass", required_argument, 0, 'a' },
		{ "max-clients", required_argument, 0, OPT_MAX_CLIENTS },
		{ "timeout", required_argument, 0, OPT_TIMEOUT },
		{ "max-bulk", required_argument, 0, OPT_MAX_BULK },
		{ "max-request", required_argument, 0, OPT_MAX_REQUEST },
		{ "max-output", required_argument, 0, OPT_MAX_OUTPUT },
		{ "quiet", no_argument, 0, 'q' },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, OPT_VERSION },
		{ 0, 0, 0, 0 },
	};
	int c, rc = RC_OK;
	long v;
	opterr = 0;
	while (rc == RC_OK && (c = getopt_long(argc, argv, ":b:p:s:t:wa:qh", lo, NULL)) != -1) {
		switch (c) {
		case 'b': o->bind = optarg; break;
		case 'p':
			if ((rc = parse_long("--port", optarg, 0, 65535, &v)) == RC_OK)
				o->port = (int)v;
			break;
		case OPT_PORT_FILE: o->port_file = optarg; break;
		case OPT_NO_TCP: *no_tcp = 1; break;
		case 's': o->unix_path = optarg; break;
		case OPT_UNIX_MODE: {
			char *end;
			unsigned long m = strtoul(optarg, &end, 8);
			if (!*optarg || *end || m > 0777) {
				msg("--unix-mode '%s': not octal permission bits (e.g. 0660)", optarg);
				rc = RC_USAGE;
			}
			o->unix_mode = (unsigned)m;
			break;
		}
		case 't':
			if ((rc = parse_long("--threads", optarg, 1, 256, &v)) == RC_OK)
				o->threads = (int)v;
			break;
		case 'w': o->writable = 1; break;
		case OPT_TRIM: o->trim = 1; break;
		case 'a': o->password = optarg; break;
		case OPT_MAX_CLIENTS:
			if ((rc = parse_long("--max-clients", optarg, 1, 1000000, &v)) == RC_OK)
				o->max_clients = v;
			break;
		case OPT_TIMEOUT: rc = parse_long("--timeout", optarg, 0, 1L << 30, &o->timeout_s); break;
		case OPT_MAX_BULK: rc = parse_bytes("--max-bulk", optarg, &o->max_bulk); break;
		case OPT_MAX_REQUEST: rc = parse_bytes("--max-request", optarg, &o->max_request); break;
		case OPT_MAX_OUTPUT: rc = parse_bytes("--max-output", optarg, &o->max_output); break;
		case 'q': o->quiet = 1; break;
		case 'h': usage(stdout); return -1;
		case OPT_VERSION: print_version(); return -1;
		default:
			return option_rejected(c, optopt, argv[optind - 1]);
		}
	}
	if (rc != RC_OK)
		return rc;
	if (optind != argc - 1) {
		msg(optind >= argc ? "missing TABLE; try '%s --help' for more information"
		                   : "one TABLE only; try '%s --help' for more information", tool_name);
		return RC_USAGE;
	}
	o->table = argv[optind];
	if (*no_tcp && !o->unix_path) {
		msg("--no-tcp leaves no listener: give --unix PATH too");
		return RC_USAGE;
	}
	return RC_OK;
}

/* ---- main ------------------------------------------------------------------------ */

/* Waits for signals in the main thread (the workers block them all). */
static void wait_signals(const sigset_t *set)
{
	for (;;) {
		int sig = sigwaitinfo(set, NULL);
		if (sig == SIGHUP) {
			reopen_table();
		} else if (sig == SIGTERM || sig == SIGINT) {
			atomic_store(&S.stopping, 1);
			wake_workers();
			return;
		}
	}
}

static int setup(int no_tcp)
{
	struct served *t;
	int rc = table_name_parse(S.o.table, &S.tn);
	if (rc == RC_OK)
		rc = open_table(&t);
	if (rc != RC_OK)
		return rc;
	struct hashtable_stats st;
	hashtable_stats(t->h, &st);
	S.key_size = st.key_size;
	S.value_size = st.value_size;
	atomic_store(&S.table, t);
	S.lim.max_args = MAX_ARGS;
	S.lim.max_bulk = S.o.max_bulk;
	S.lim.max_inline = MAX_INLINE;
	S.workers = calloc((size_t)S.o.threads, sizeof *S.workers);
	if (!S.workers) {
		msg("out of memory");
		return RC_REFUSED;
	}
	for (int i = 0; i < S.o.threads; i++) {
		S.workers[i].index = i;
		S.workers[i].tcp_fd = -1;
	}
	raise_nofile();
	if (!no_tcp && (rc = listen_tcp()) != RC_OK)
		return rc;
	if (S.o.unix_path && (rc = listen_unix()) != RC_OK)
		return rc;
	if (S.o.port_file && (rc = write_port_file()) != RC_OK)
		return rc;
	return RC_OK;
}

int main(int argc, char **argv)
{
	int no_tcp = 0;
	tool_name = "shmkv-serve";
	S.o = (struct opts){ .bind = "127.0.0.1", .port = DEFAULT_PORT, .threads = 1,
	                     .unix_mode = 0600, .max_clients = DEFAULT_MAX_CLIENTS,
	                     .max_bulk = DEFAULT_MAX_BULK, .max_request = DEFAULT_MAX_REQUEST,
	                     .max_output = DEFAULT_MAX_OUTPUT };
	S.unix_fd = -1;
	S.started = time(NULL);
	int rc = parse_args(&S.o, argc, argv, &no_tcp);
	if (rc != RC_OK)
		return rc < 0 ? RC_OK : rc;
	/* Every thread inherits this mask: the signals reach sigwaitinfo only. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((rc = setup(no_tcp)) != RC_OK)
		return rc;
	for (int i = 0; i < S.o.threads; i++)
		if (start_worker(&S.workers[i]) < 0) {
			msg("cannot start worker %d: %s", i, strerror(errno));
			return RC_REFUSED;
		}
	if (!S.o.quiet) {
		if (no_tcp)
			msg("serving %s on %s (%d threads)", S.tn.arg, S.o.unix_path, S.o.threads);
		else
			msg("serving %s on %s:%d%s%s (%d threads)", S.tn.arg, S.o.bind, S.port,
			    S.o.unix_path ? " and " : "", S.o.unix_path ? S.o.unix_path : "",
			    S.o.threads);
	}
	wait_signals(&set);
	for (int i = 0; i < S.o.threads; i++)
		pthread_join(S.workers[i].tid, NULL);
	if (S.unix_fd >= 0) {
		close(S.unix_fd);
		unlink(S.o.unix_path);
	}
	close_table(atomic_load(&S.table));
	return RC_OK;
}
