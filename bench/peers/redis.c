/* Redis (optional): our own redis-server on a unix socket under /tmp, loaded
 * over the socket.  Latency mode is one GET round trip per key; throughput
 * mode pipelines GETs 64 deep.  Only for workloads of at most REDIS_MAX_N
 * keys, and only when the run names a redis-server (--redis PATH). */
#include "bench/peer.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>


struct redis_ctx {
	pid_t pid;
	int fd;
	char dir[64], sock[96];
	uint32_t ks, vs;
	unsigned char *out, *in;
	size_t outcap, incap;
};

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A reply reader over a buffered socket. */
struct rbuf {
	int fd;
	unsigned char *b;
	size_t cap, lo, hi;
};

static int rb_fill(struct rbuf *r)
{
	ssize_t n;

	if (r->lo == r->hi)
		r->lo = r->hi = 0;
	if (r->hi == r->cap) {
		memmove(r->b, r->b + r->lo, r->hi - r->lo);
		r->hi -= r->lo;
		r->lo = 0;
	}
	do
		n = read(r->fd, r->b + r->hi, r->cap - r->hi);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	r->hi += (size_t)n;
	return 0;
}

/* Reads one line ending in \r\n into line (without it). */
static int rb_line(struct rbuf *r, char *line, size_t cap)
{
	size_t n = 0;

	for (;;) {
		while (r->lo < r->hi) {
			char c = (char)r->b[r->lo++];

			if (c == '\n') {
				if (n && line[n - 1] == '\r')
					n--;
				line[n] = 0;
				return 0;
			}
			if (n + 1 < cap)
				line[n++] = c;
		}
		if (rb_fill(r) < 0)
			return -1;
	}
}

static int rb_bytes(struct rbuf *r, void *out, size_t n)
{
	unsigned char *o = out;

	while (n) {
		size_t take;

		if (r->lo == r->hi && rb_fill(r) < 0)
			return -1;
		take = r->hi - r->lo < n ? r->hi - r->lo : n;
		if (o) {
			memcpy(o, r->b + r->lo, take);
			o += take;
		}
		r->lo += take;
		n -= take;
	}
	return 0;
}

/* One bulk reply: 1 and the value in val, 0 for nil, -1 on error. */
static int rb_bulk(struct rbuf *r, void *val, size_t vs)
{
	char line[64];
	long len;

	if (rb_line(r, line, sizeof line) < 0 || line[0] != '$')
		return -1;
	len = strtol(line + 1, NULL, 10);
	if (len < 0)
		return 0;
	if ((size_t)len != vs) {
		rb_bytes(r, NULL, (size_t)len + 2);
		return -1;
	}
	if (rb_bytes(r, val, vs) < 0 || rb_bytes(r, NULL, 2) < 0)
		return -1;
	return 1;
}

static size_t resp_cmd(unsigned char *o, const char *cmd, const void *k,
                       size_t ks, const void *v, size_t vs)
{
	size_t n = (size_t)sprintf((char *)o, "*%d\r\n$%zu\r\n%s\r\n$%zu\r\n",
	                           v ? 3 : 2, strlen(cmd), cmd, ks);

	memcpy(o + n, k, ks);
	n += ks;
	memcpy(o + n, "\r\n", 2);
	n += 2;
	if (v) {
		n += (size_t)sprintf((char *)o + n, "$%zu\r\n", vs);
		memcpy(o + n, v, vs);
		n += vs;
		memcpy(o + n, "\r\n", 2);
		n += 2;
	}
	return n;
}

static struct rbuf redis_rb;

ALWAYS_INLINE int redis_get(void *c, const void *k, void *v)
{
	struct redis_ctx *x = c;
	size_t n = resp_cmd(x->out, "GET", k, x->ks, NULL, 0);

	if (write_all(x->fd, x->out, n) < 0)
		return -1;
	return rb_bulk(&redis_rb, v, x->vs);
}
/* Latency mode only: one round trip per key.  Throughput is pipelined. */
DEFINE_KERNELS(redis1, redis_get);

#define REDIS_DEPTH 64
#define REDIS_MAX_N (1u << 20) /* loading 16M keys takes Redis minutes */

static uint64_t redis_pipelined(void *ctx, const struct dataset *d,
                                const unsigned char *keys, const uint32_t *ix,
                                uint64_t m, uint64_t *bad)
{
	struct redis_ctx *x = ctx;
	unsigned char val[MAX_VALUE];
	uint64_t wrong = 0, t0 = now_ns();

	for (uint64_t q = 0; q < m; q += REDIS_DEPTH) {
		uint64_t e = q + REDIS_DEPTH < m ? q + REDIS_DEPTH : m;
		size_t n = 0;

		for (uint64_t j = q; j < e; j++)
			n += resp_cmd(x->out + n, "GET", keys + j * d->ks, d->ks, NULL, 0);
		if (write_all(x->fd, x->out, n) < 0)
			return (uint64_t)(*bad += m, 0);
		for (uint64_t j = q; j < e; j++) {
			int r = rb_bulk(&redis_rb, val, d->vs);

			wrong += ix ? r != 1 || value_check(val, d->vs, ix[j]) < 0 : r != 0;
		}
	}
	t0 = now_ns() - t0;
	*bad += wrong;
	return t0;
}

static int redis_connect(const char *sock)
{
	struct sockaddr_un a;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof a.sun_path)
		return -1;
	memcpy(a.sun_path, sock, strlen(sock) + 1);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Starts `bin` on a private socket and loads d into it.  Returns 0, or -1. */
static int redis_start_and_load(struct peer *p, const struct dataset *d, const char *bin,
                                uint64_t *bad)
{
	struct redis_ctx *x = xmalloc(sizeof *x);
	unsigned char key[MAX_KEY], val[MAX_VALUE];
	char line[256];
	uint64_t t0;

	memset(x, 0, sizeof *x);
	x->fd = -1;
	p->ctx = x;
	x->ks = d->ks;
	x->vs = d->vs;
	snprintf(x->dir, sizeof x->dir, "/tmp/shmkv-bench.%d.redis", (int)getpid());
	snprintf(x->sock, sizeof x->sock, "%s/sock", x->dir);
	if (mkdir(x->dir, 0700) != 0 && errno != EEXIST)
		return -1;
	reg_file(x->dir, 1);
	reg_file(x->sock, 1);
	x->pid = fork();
	if (x->pid < 0)
		die("fork: %s", strerror(errno));
	if (x->pid == 0) {
		int nul = open("/dev/null", O_RDWR);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		execl(bin, bin, "--port", "0", "--unixsocket", x->sock,
		      "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
		      "--dir", x->dir, "--daemonize", "no", "--protected-mode", "yes",
		      (char *)NULL);
		_exit(127);
	}
	reg_kid(x->pid, 1);
	x->fd = -1;
	for (int i = 0; i < 500 && x->fd < 0; i++) {
		if (waitpid(x->pid, NULL, WNOHANG) == x->pid) {
			reg_kid(x->pid, 0);
			x->pid = 0;
			break;
		}
		x->fd = redis_connect(x->sock);
		if (x->fd < 0)
			usleep(10000);
	}
	x->outcap = REDIS_DEPTH * (64 + MAX_KEY + MAX_VALUE);
	x->out = xmalloc(x->outcap);
	redis_rb.fd = x->fd;
	redis_rb.cap = 1 << 20;
	redis_rb.b = xmalloc(redis_rb.cap);
	redis_rb.lo = redis_rb.hi = 0;
	if (x->fd < 0)
		return -1;
	t0 = now_ns();
	for (uint64_t q = 0; q < d->n; q += REDIS_DEPTH) {
		uint64_t e = q + REDIS_DEPTH < d->n ? q + REDIS_DEPTH : d->n;
		size_t n = 0;

		for (uint64_t i = q; i < e; i++) {
			key_of(d->ks, i, key);
			value_of(d, i, 0, val);
			n += resp_cmd(x->out + n, "SET", key, d->ks, val, d->vs);
		}
		if (write_all(x->fd, x->out, n) < 0)
			return -1;
		for (uint64_t i = q; i < e; i++)
			if (rb_line(&redis_rb, line, sizeof line) < 0)
				return -1;
			else if (strcmp(line, "+OK") != 0)
				++*bad;
	}
	p->build_ns = (double)(now_ns() - t0) / (double)d->n;
	if (write_all(x->fd, "INFO memory\r\n", 13) == 0 &&
	    rb_line(&redis_rb, line, sizeof line) == 0 && line[0] == '$') {
		long len = strtol(line + 1, NULL, 10);
		char *info = xmalloc((size_t)len + 3), *m;

		rb_bytes(&redis_rb, info, (size_t)len + 2);
		info[len] = 0;
		m = strstr(info, "used_memory:");
		p->bytes = m ? strtod(m + 12, NULL) : NAN;
		free(info);
	}
	return 0;
}

static int redis_wanted(const struct plan *pl, const struct dataset *d)
{
	return pl->redis && d->n <= REDIS_MAX_N;
}

/* Returns 0, or -1 (Redis is optional: the report says it did not run). */
static int redis_open(struct peer *p, const struct plan *pl, const struct dataset *d,
                      uint64_t *bad)
{
	if (redis_start_and_load(p, d, pl->redis, bad) == 0)
		return 0;
	snprintf(p->err, sizeof p->err, "could not start or load %s", pl->redis);
	return -1;
}

static void redis_close(struct peer *p)
{
	struct redis_ctx *x = p->ctx;

	if (x->fd >= 0)
		close(x->fd);
	if (x->pid > 0) {
		kill(x->pid, SIGTERM);
		waitpid(x->pid, NULL, 0);
		reg_kid(x->pid, 0);
	}
	unlink(x->sock);
	rmdir(x->dir);
	reg_file(x->sock, 0);
	reg_file(x->dir, 0);
	free(x->out);
	free(redis_rb.b);
	redis_rb.b = NULL;
	free(x);
}

const struct peer_ops redis_peer = {
	.name = "Redis (optional)",
	.label = "Redis",
	.note = "GET over a unix socket; throughput pipelined 64 deep",
	.bytes_note = "used_memory",
	.kernels = &redis1_kernels,
	.scale = 64,
	.wall_clock = 1,
	.wanted = redis_wanted,
	.open = redis_open,
	.close = redis_close,
	.throughput = redis_pipelined,
};
