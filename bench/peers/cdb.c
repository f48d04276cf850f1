/* tinycdb: built with cdb_make into a file on /dev/shm, read through
 * cdb_find over its mmap. */
#include "bench/peer.h"

#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct cdb_ctx {
	struct cdb db;
	int fd;
	uint32_t ks, vs;
	char path[96];
};

ALWAYS_INLINE int cdbx_get(void *c, const void *k, void *v)
{
	struct cdb_ctx *x = c;
	int r = cdb_find(&x->db, k, x->ks);

	if (r <= 0)
		return r;
	if (cdb_datalen(&x->db) != x->vs)
		return -1;
	memcpy(v, cdb_getdata(&x->db), x->vs);
	return 1;
}
DEFINE_KERNELS(cdbx, cdbx_get);

static int cdb_open(struct peer *p, const struct plan *pl, const struct dataset *d,
                    uint64_t *bad)
{
	struct cdb_ctx *x = xmalloc(sizeof *x);
	struct cdb_make mk;
	unsigned char key[MAX_KEY], val[MAX_VALUE];
	struct stat sb;
	uint64_t t0;
	int fd;

	(void)pl;
	x->ks = d->ks;
	x->vs = d->vs;
	snprintf(x->path, sizeof x->path, "/dev/shm/shmkv-bench.%d.cdb", (int)getpid());
	reg_file(x->path, 1);
	fd = open(x->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die("%s: %s", x->path, strerror(errno));
	t0 = tick();
	if (cdb_make_start(&mk, fd) < 0)
		die("cdb_make_start: %s", strerror(errno));
	for (uint64_t i = 0; i < d->n; i++) {
		key_of(d->ks, i, key);
		value_of(d, i, 0, val);
		if (cdb_make_add(&mk, key, d->ks, val, d->vs) < 0)
			++*bad;
	}
	if (cdb_make_finish(&mk) < 0)
		die("cdb_make_finish: %s", strerror(errno));
	p->build_ns = (double)(tick() - t0) / (double)d->n;
	close(fd);
	x->fd = open(x->path, O_RDONLY);
	if (x->fd < 0 || cdb_init(&x->db, x->fd) < 0)
		die("cdb_init %s: %s", x->path, strerror(errno));
	fstat(x->fd, &sb);
	p->bytes = (double)sb.st_size;
	p->ctx = x;
	return 0;
}

static void cdb_close(struct peer *p)
{
	struct cdb_ctx *x = p->ctx;

	cdb_free(&x->db);
	close(x->fd);
	unlink(x->path);
	reg_file(x->path, 0);
	free(x);
}

const struct peer_ops cdb_peer = {
	.name = "tinycdb",
	.label = "tinycdb",
	.note = "cdb_find over mmap",
	.bytes_note = "file size",
	.kernels = &cdbx_kernels,
	.scale = 2,
	.open = cdb_open,
	.close = cdb_close,
};
