/* The concurrency suites' shared helpers (stress, threads, crash, writers):
 * self-checking values, the control block, the writer and reader loops.
 * What they check and why is in concur.h. */
#include "concur.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t sk_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sk_sleep_us(uint64_t us)
{
	struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* xorshift64* */
uint64_t sk_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

uint64_t sk_seed(const char *test)
{
	const char *e = getenv("SHMKV_SEED");
	uint64_t s = (e && *e) ? strtoull(e, NULL, 0) : sk_now_ns() ^ (uint64_t)getpid() << 32;
	if (!s)
		s = 1;
	printf("%s: seed %" PRIu64 "\n", test, s);
	fflush(stdout);
	return s;
}

/* Under AddressSanitizer every instruction of the code a bound covers (a
 * dead writer's detection, a recovery) runs 2-3 times slower, so wall-clock
 * bounds stretch by 3; iteration counts (test_scale) stay as they are. */
#if defined(__SANITIZE_ADDRESS__)
#define SK_SANITIZER_STRETCH 3.0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SK_SANITIZER_STRETCH 3.0
#endif
#endif
#ifndef SK_SANITIZER_STRETCH
#define SK_SANITIZER_STRETCH 1.0
#endif

uint64_t sk_bound_ns(double ms)
{
	return (uint64_t)(ms * SK_SANITIZER_STRETCH / test_scale() * 1e6);
}

void sk_delay_us(uint64_t us)
{
	sk_sleep_us((uint64_t)((double)us / test_scale()));
}

uint64_t sk_scaled(double n, uint64_t min)
{
	uint64_t v = (uint64_t)(n * test_scale());
	return v < min ? min : v;
}

uint64_t sk_key(uint32_t idx) { return (uint64_t)idx + 1; }

void sk_fill(uint64_t *v, uint32_t vwords, uint64_t key, uint64_t gen)
{
	for (uint32_t i = 0; i < vwords; i++)
		v[i] = key * SK_MUL ^ gen;
}

enum sk_verdict sk_check(const uint64_t *v, uint32_t vwords, uint64_t key,
                         uint64_t *gen)
{
	for (uint32_t i = 1; i < vwords; i++)
		if (v[i] != v[0])
			return SK_TORN;
	uint64_t g = v[0] ^ key * SK_MUL;
	if (g >> 32 || g == 0)
		return SK_WRONG;
	*gen = g;
	return SK_OK;
}

int sk_stable(const struct sk_plan *p, uint32_t idx) { return idx < p->nstable; }

uint32_t sk_pick(uint64_t *rng, uint32_t lo, uint32_t hi)
{
	uint64_t r = sk_rand(rng);
	uint32_t n = hi - lo;
	if ((r & 1) && n >= SK_HOT)
		return lo + (uint32_t)((r >> 1) % SK_HOT) * (n / SK_HOT);
	return lo + (uint32_t)((r >> 1) % n);
}

struct sk_shared *sk_shared_new(uint32_t nkeys)
{
	size_t bytes = sizeof(struct sk_shared) + nkeys * sizeof(_Atomic uint64_t) +
	               nkeys * sizeof(_Atomic uint32_t);
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_msg(m != MAP_FAILED, "mmap: %s", strerror(errno));
	struct sk_shared *sh = m; /* zero-filled */
	atomic_store(&sh->gen, 1);
	sh->bytes = bytes;
	sh->kseq = (_Atomic uint32_t *)(sh->keygen + nkeys);
	return sh;
}

void sk_mark_absent(struct sk_shared *sh, uint32_t idx)
{
	if (!(atomic_load(&sh->kseq[idx]) & 1))
		atomic_fetch_add(&sh->kseq[idx], 1);
}

void sk_mark_present(struct sk_shared *sh, uint32_t idx)
{
	if (atomic_load(&sh->kseq[idx]) & 1)
		atomic_fetch_add(&sh->kseq[idx], 1);
}

void sk_shared_free(struct sk_shared *sh)
{
	if (sh)
		munmap(sh, sh->bytes);
}

uint64_t sk_next_gen(struct sk_shared *sh)
{
	return atomic_fetch_add(&sh->gen, 1);
}

void sk_load(struct hashtable *h, const struct sk_plan *p, struct sk_shared *sh)
{
	uint64_t v[SK_MAX_VWORDS];
	for (uint32_t i = 0; i < p->nkeys; i++) {
		if (!sk_stable(p, i) && (i & 1))
			continue;
		uint64_t k = sk_key(i), g = sk_next_gen(sh);
		sk_fill(v, p->vwords, k, g);
		int rc = hashtable_update(h, &k, v);
		ck_assert_msg(rc == 0, "loading key %" PRIu64 ": %d (%s)", k, rc, hashtable_strerror(rc));
		atomic_store(&sh->keygen[i], g);
	}
	for (uint32_t i = 0; i < p->nkeys; i++)
		if (!atomic_load(&sh->keygen[i]))
			sk_mark_absent(sh, i);
}

/* The test's own table, kept reachable for valgrind's leak check in forked
 * children, which inherit the handle but never close it. */
static struct hashtable *volatile sk_test_table;

struct hashtable *sk_table(const struct sk_plan *p, double load,
                           struct hashtable_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->key_size = 8;
	cfg->value_size = p->vwords * 8;
	cfg->entries = p->nkeys;
	cfg->max_load = load;
	struct hashtable *h = test_table_create(cfg);
	sk_test_table = h;
	struct hashtable_stats st;
	ck_assert_int_eq(hashtable_stats(h, &st), 0);
	ck_assert_msg(st.max_count >= p->nkeys, "table holds %" PRIu64 " keys, need %u",
	              st.max_count, p->nkeys);
	return h;
}

void sk_wbad(struct sk_wstat *w, int op, uint64_t key, int rc)
{
	if (!w->bad++) {
		w->first_bad_rc = rc;
		w->first_bad_key = key;
		w->first_bad_op = op;
	}
}

void sk_write_one(struct hashtable *h, const struct sk_plan *p,
                  struct sk_shared *sh, enum sk_wmode mode, uint32_t idx,
                  uint64_t r, int slot, struct sk_wstat *w)
{
	uint64_t v[SK_MAX_VWORDS], k = sk_key(idx);
	int present = mode == SK_EXACT ? atomic_load(&sh->keygen[idx]) != 0 : (int)(r >> 8 & 1);
	int del = !sk_stable(p, idx) && present && (r >> 9 & 1);
	uint64_t g = del ? 0 : sk_next_gen(sh);
	if (mode == SK_EXACT)
		atomic_store(&sh->pending[slot], (uint64_t)(idx + 1) << 32 | g);
	if (mode == SK_EXACT && del)
		sk_mark_absent(sh, idx);
	uint64_t t0 = sk_now_ns();
	int rc;
	if (del) {
		rc = hashtable_delete(h, &k);
	} else {
		sk_fill(v, p->vwords, k, g);
		rc = hashtable_update(h, &k, v);
	}
	uint64_t dt = sk_now_ns() - t0;
	if (dt > w->max_op_ns)
		w->max_op_ns = dt;
	w->ops++;
	if (del) {
		if (rc == 0)
			w->deletes++;
		else if (rc == -1 && mode == SK_CONTEND)
			w->delete_misses++;
		else
			sk_wbad(w, 'd', k, rc);
	} else if (rc == 0 && (mode == SK_CONTEND || !present) && !sk_stable(p, idx)) {
		w->inserts++;
	} else if (rc == 1 && (mode == SK_CONTEND || present)) {
		w->updates++;
	} else {
		sk_wbad(w, 'u', k, rc);
	}
	if (mode == SK_EXACT && rc >= 0)
		atomic_store(&sh->keygen[idx], g);
	if (mode == SK_EXACT && !del && rc >= 0)
		sk_mark_present(sh, idx);
}

void sk_writer(struct hashtable *h, const struct sk_plan *p, struct sk_shared *sh,
               enum sk_wmode mode, uint32_t lo, uint32_t hi, uint64_t seed,
               uint64_t limit, int slot, struct sk_wstat *w)
{
	uint64_t rng = seed | 1;
	memset(w, 0, sizeof *w);
	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed) && (!limit || w->ops < limit)) {
		uint64_t r = sk_rand(&rng);
		sk_write_one(h, p, sh, mode, sk_pick(&rng, lo, hi), r, slot, w);
		atomic_store_explicit(&sh->wops[slot], w->ops, memory_order_relaxed);
	}
}

uint64_t sk_judge(const struct sk_plan *p, struct sk_shared *sh,
                  const struct sk_ropts *o, uint32_t idx, int rc, int held,
                  const uint64_t *v, uint64_t floor, struct sk_rstat *s)
{
	uint64_t k = sk_key(idx), g = 0;
	s->reads++;
	if (rc == -1) {
		s->absent++;
		if (sk_stable(p, idx) && !s->stable_miss++ && !s->first_bad_key)
			s->first_bad_key = k;
		if (held && !s->present_miss++ && !s->first_bad_key)
			s->first_bad_key = k;
		return 0;
	}
	if (rc == HASHTABLE_EDEADWRITER) {
		s->deadwriter++;
		if (!o->dead_ok && !s->errors++)
			s->first_error = rc;
		return 0;
	}
	if (rc != 0) {
		if (!s->errors++)
			s->first_error = rc;
		return 0;
	}
	s->found++;
	enum sk_verdict vd = sk_check(v, p->vwords, k, &g);
	uint64_t *bad = vd == SK_TORN ? &s->torn : vd == SK_WRONG ? &s->wrong : NULL;
	if (!bad && g >= atomic_load(&sh->gen))
		bad = &s->future;
	if (!bad && o->check_regress && g < floor)
		bad = &s->regress;
	if (bad) {
		if (!(*bad)++ && !s->first_bad_key)
			s->first_bad_key = k;
		return 0;
	}
	if (floor && g > floor)
		s->advanced++;
	return g;
}

void sk_reader(struct hashtable *h, const struct sk_plan *p, struct sk_shared *sh,
               const struct sk_ropts *o, uint64_t seed, int slot,
               struct sk_rstat *s)
{
	enum { BATCH = 8 };
	uint64_t rng = seed | 1;
	uint64_t *lastgen = calloc(p->nkeys, sizeof *lastgen);
	uint64_t *vals = malloc(BATCH * p->vwords * sizeof *vals);
	memset(s, 0, sizeof *s);
	if (!lastgen || !vals) {
		s->errors = 1;
		s->first_error = -ENOMEM;
		free(lastgen);
		free(vals);
		return;
	}
	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed) &&
	       (!o->max_reads || s->reads < o->max_reads)) {
		uint32_t idx[BATCH], seq[BATCH];
		uint64_t keys[BATCH];
		int found[BATCH], n = o->mode == SK_BATCH ? BATCH : 1, rc;
		for (int i = 0; i < n; i++) {
			idx[i] = sk_pick(&rng, 0, p->nkeys);
			keys[i] = sk_key(idx[i]);
			seq[i] = atomic_load(&sh->kseq[idx[i]]);
		}
		int win = o->timed && atomic_load(&sh->window);
		uint64_t t0 = o->timed ? sk_now_ns() : 0;
		if (o->timed)
			atomic_store_explicit(&sh->rbusy[slot], t0, memory_order_relaxed);
		if (o->mode == SK_BATCH) {
			memset(vals, 0, BATCH * p->vwords * sizeof *vals);
			long got = hashtable_search_batch(h, BATCH, keys, vals, found);
			rc = got < 0 ? (int)got : 0;
		} else {
			rc = hashtable_search(h, &keys[0], vals);
			found[0] = rc;
		}
		if (o->timed) {
			atomic_store_explicit(&sh->rbusy[slot], 0, memory_order_relaxed);
			uint64_t dt = sk_now_ns() - t0;
			if (dt > s->max_ns)
				s->max_ns = dt;
			if (dt > o->slow_ns)
				s->slow++;
			if (win && atomic_load(&sh->window)) {
				if (dt > o->slow_ns)
					s->window_waits++;
				else
					s->in_window++;
			}
		}
		if (rc < 0) /* the call failed as a whole: judge it once */
			n = 1;
		uint64_t floor[BATCH], g[BATCH];
		for (int i = 0; i < n; i++)
			floor[i] = lastgen[idx[i]];
		for (int i = 0; i < n; i++) {
			int held = !(seq[i] & 1) && atomic_load(&sh->kseq[idx[i]]) == seq[i];
			g[i] = sk_judge(p, sh, o, idx[i], rc < 0 ? rc : found[i], held,
			                vals + i * p->vwords, floor[i], s);
		}
		for (int i = 0; i < n; i++)
			if (g[i] > lastgen[idx[i]])
				lastgen[idx[i]] = g[i];
		if ((s->reads & 1023) < (uint64_t)n)
			atomic_store_explicit(&sh->rreads[slot], s->reads, memory_order_relaxed);
	}
	atomic_store_explicit(&sh->rreads[slot], s->reads, memory_order_relaxed);
	free(lastgen);
	free(vals);
}

void sk_rstat_add(struct sk_rstat *t, const struct sk_rstat *s)
{
	t->reads += s->reads;
	t->found += s->found;
	t->absent += s->absent;
	t->torn += s->torn;
	t->wrong += s->wrong;
	t->future += s->future;
	t->regress += s->regress;
	t->stable_miss += s->stable_miss;
	t->present_miss += s->present_miss;
	t->deadwriter += s->deadwriter;
	if (!t->errors && s->errors)
		t->first_error = s->first_error;
	t->errors += s->errors;
	if (!t->first_bad_key)
		t->first_bad_key = s->first_bad_key;
	t->advanced += s->advanced;
	t->slow += s->slow;
	if (s->max_ns > t->max_ns)
		t->max_ns = s->max_ns;
	t->in_window += s->in_window;
	t->window_waits += s->window_waits;
}

void sk_rstat_print(const char *test, const struct sk_rstat *t)
{
	printf("%s: %" PRIu64 " reads checked (%" PRIu64 " found, %" PRIu64 " absent, %" PRIu64
	       " saw a newer gen), torn %" PRIu64 ", wrong-key %" PRIu64 ", future %" PRIu64
	       ", regressed %" PRIu64 ", misses: never-deleted keys %" PRIu64 ", keys present "
	       "throughout %" PRIu64 "; dead-writer %" PRIu64 ", other errors %" PRIu64 "\n",
	       test, t->reads, t->found, t->absent, t->advanced, t->torn, t->wrong, t->future,
	       t->regress, t->stable_miss, t->present_miss, t->deadwriter, t->errors);
	fflush(stdout);
}

pid_t sk_fork(unsigned cap_s)
{
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(97);
		alarm(cap_s);
	}
	return pid;
}

int sk_write_all(int fd, const void *buf, size_t n)
{
	const char *b = buf;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

size_t sk_read_all(int fd, void *buf, size_t n)
{
	char *b = buf;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

int sk_reap(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return st;
}

const char *sk_status_text(int st, char *buf, size_t n)
{
	if (st == -1)
		snprintf(buf, n, "not reaped");
	else if (WIFEXITED(st))
		snprintf(buf, n, "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(buf, n, "status 0x%x", (unsigned)st);
	return buf;
}

_Noreturn void sk_child_exit(struct hashtable *h, int code)
{
	if (h)
		hashtable_close(h);
	_exit(code);
}

uint64_t sk_compare(struct hashtable *h, const struct sk_plan *p,
                    struct sk_shared *sh, uint64_t pending, uint64_t *present,
                    uint64_t *first, int *first_rc)
{
	uint64_t v[SK_MAX_VWORDS], bad = 0;
	*present = 0;
	for (uint32_t i = 0; i < p->nkeys; i++) {
		uint64_t k = sk_key(i), g = 0, want = atomic_load(&sh->keygen[i]);
		int rc = hashtable_search(h, &k, v);
		int ok;
		if (rc == 0 && sk_check(v, p->vwords, k, &g) == SK_OK) {
			ok = g == want || (pending >> 32 == i + 1u && g == (pending & 0xffffffffu));
			(*present)++;
		} else if (rc == -1) {
			ok = want == 0 || (pending >> 32 == i + 1u && (pending & 0xffffffffu) == 0);
		} else {
			ok = 0;
		}
		if (!ok && !bad++) {
			*first = k;
			*first_rc = rc;
		}
	}
	return bad;
}

void sk_resync(struct hashtable *h, const struct sk_plan *p, struct sk_shared *sh)
{
	uint64_t v[SK_MAX_VWORDS];
	for (uint32_t i = 0; i < p->nkeys; i++) {
		uint64_t k = sk_key(i), g = 0;
		if (hashtable_search(h, &k, v) == 0 && sk_check(v, p->vwords, k, &g) == SK_OK) {
			atomic_store(&sh->keygen[i], g);
			sk_mark_present(sh, i);
		} else {
			atomic_store(&sh->keygen[i], 0);
			sk_mark_absent(sh, i);
		}
	}
	for (int i = 0; i < SK_MAX_WORKERS; i++)
		atomic_store(&sh->pending[i], 0);
}

void sk_assert_verify(struct hashtable *h, const char *when)
{
	int rc = hashtable_verify(h);
	ck_assert_msg(rc == 0, "hashtable_verify %s: %d (%s)", when, rc, hashtable_strerror(rc));
}
