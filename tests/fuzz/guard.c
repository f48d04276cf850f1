/* Guard pages around attached segments: see guard.h. */
#include "guard.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

int guard_pages_on;

/* The reservations made, so shmdt() can release the guards: a few at most
 * (one per open handle in a fuzz call). */
#define GUARDED_MAX 16
static struct guarded {
	void *segment, *region;
	size_t region_bytes;
} guarded[GUARDED_MAX];

static void *plain_shmat(int shmid, const void *addr, int flags)
{
	return (void *)syscall(SYS_shmat, shmid, addr, flags);
}

static struct guarded *guarded_free_entry(void)
{
	for (int i = 0; i < GUARDED_MAX; i++)
		if (!guarded[i].segment)
			return &guarded[i];
	return NULL;
}

void *shmat(int shmid, const void *addr, int flags)
{
	struct shmid_ds ds;
	struct guarded *g = guard_pages_on && !addr ? guarded_free_entry() : NULL;
	if (!g || shmctl(shmid, IPC_STAT, &ds) != 0)
		return plain_shmat(shmid, addr, flags);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t bytes = (ds.shm_segsz + page - 1) / page * page;
	unsigned char *region = mmap(NULL, bytes + 2 * page, PROT_NONE,
	                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (region == MAP_FAILED)
		return plain_shmat(shmid, addr, flags);
	void *p = plain_shmat(shmid, region + page, flags | SHM_REMAP);
	if (p == (void *)-1) {
		int e = errno;
		munmap(region, bytes + 2 * page);
		errno = e;
		return p;
	}
	g->segment = p;
	g->region = region;
	g->region_bytes = bytes + 2 * page;
	return p;
}

int shmdt(const void *addr)
{
	int rc = (int)syscall(SYS_shmdt, addr);
	if (rc != 0)
		return rc;
	for (int i = 0; i < GUARDED_MAX; i++)
		if (guarded[i].segment == addr) {
			munmap(guarded[i].region, guarded[i].region_bytes);
			guarded[i].segment = NULL;
		}
	return 0;
}

int guard_pages_attached(void)
{
	int n = 0;
	for (int i = 0; i < GUARDED_MAX; i++)
		n += guarded[i].segment != NULL;
	return n;
}
