/* The machine's limits, measured over a buffer of the table's size: the
 * dependent read (a pointer chase round one Sattolo cycle), the independent
 * read, and the independent read with the line scanned as a bucket. */
#include "bench/measure.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/mman.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

int membuf_init(struct membuf *b, size_t bytes, int huge, uint64_t nprobe,
                uint64_t seed)
{
	struct rng r = { seed };
	int fl = MAP_SHARED | MAP_ANONYMOUS | (huge ? MAP_HUGETLB : 0);

	if (huge)
		bytes = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
	b->bytes = bytes;
	b->w = mmap(NULL, bytes, PROT_READ | PROT_WRITE, fl, -1, 0);
	if (b->w == MAP_FAILED)
		return -errno;
	b->lines = bytes / 64;
	for (uint64_t l = 0; l < b->lines; l++)
		b->w[8 * l] = 8 * l;
	for (uint64_t l = b->lines - 1; l > 0; l--) { /* Sattolo */
		uint64_t j = rng_below(&r, l), t = b->w[8 * l];

		b->w[8 * l] = b->w[8 * j];
		b->w[8 * j] = t;
	}
	b->nprobe = nprobe;
	b->probe = xmalloc(nprobe * sizeof *b->probe);
	for (uint64_t q = 0; q < nprobe; q++)
		b->probe[q] = (uint32_t)rng_below(&r, b->lines);
	b->pos = 0;
	return 0;
}

void membuf_free(struct membuf *b)
{
	munmap(b->w, b->bytes);
	free(b->probe);
}

__attribute__((noinline)) double chase(struct membuf *b, uint64_t steps, int fence)
{
	const uint64_t *w = b->w;
	uint64_t p = b->pos, t0 = tick();

	if (fence)
		for (uint64_t s = 0; s < steps; s++) {
			p = w[p];
			serialise();
		}
	else
		for (uint64_t s = 0; s < steps; s++)
			p = w[p];
	t0 = tick() - t0;
	b->pos = p;
	return (double)t0 / (double)steps;
}

static volatile uint64_t sink;

__attribute__((noinline)) double indep_read(const struct membuf *b)
{
	const uint64_t *w = b->w;
	const uint32_t *pr = b->probe;
	uint64_t s = 0, t0 = tick();

	for (uint64_t q = 0; q < b->nprobe; q++)
		s += w[(uint64_t)pr[q] * 8];
	t0 = tick() - t0;
	sink += s;
	return (double)t0 / (double)b->nprobe;
}

const char *const scan_name[NSCANS] = {
	"4 x 8-byte loads, scalar compares", "4 x 16-byte loads, SSE2 compares"
};

__attribute__((noinline)) double scan_read(const struct membuf *b, int how)
{
	const uint64_t *w = b->w;
	const uint32_t *pr = b->probe;
	uint64_t s = 0, t0 = tick();

	if (how == SCAN_SCALAR) {
		for (uint64_t q = 0; q < b->nprobe; q++) {
			const uint64_t *l = w + (uint64_t)pr[q] * 8;
			uint64_t k = q;

			s += (unsigned)(l[0] == k) | (unsigned)(l[2] == k) << 1 |
			     (unsigned)(l[4] == k) << 2 | (unsigned)(l[6] == k) << 3;
		}
	}
#ifdef __SSE2__
	else {
		for (uint64_t q = 0; q < b->nprobe; q++) {
			const __m128i *l = (const __m128i *)(const void *)(w + (uint64_t)pr[q] * 8);
			__m128i k = _mm_set1_epi64x((long long)q);
			__m128i e = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi32(l[0], k),
			                                      _mm_cmpeq_epi32(l[1], k)),
			                         _mm_or_si128(_mm_cmpeq_epi32(l[2], k),
			                                      _mm_cmpeq_epi32(l[3], k)));

			s += (unsigned)_mm_movemask_epi8(e);
		}
	}
#else
	else
		return NAN;
#endif
	t0 = tick() - t0;
	sink += s;
	return (double)t0 / (double)b->nprobe;
}

void measure_limits_only(struct membuf *mb, const struct plan *pl,
                         double *dep, double *fence, double *ind)
{
	*dep = chase(mb, pl->lat_steps, 0);
	*fence = chase(mb, pl->lat_steps / 2, 1);
	*ind = indep_read(mb);
}
