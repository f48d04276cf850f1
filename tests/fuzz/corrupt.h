/* The corruption fuzzer: damages a table's segment at random and calls every
 * entry point on it, each call in a forked child under an alarm, asserting
 * no crash, no hang and only the return codes hashtable.h documents for that
 * call.  Driven by tests/test_fuzz.c (the Check suite `fuzz`, a short run in
 * `make check`) and by tests/fuzz/corrupt-main.c (`make fuzz`, long runs).
 *
 * Every round is reproducible from (seed, round): the tables are filled
 * deterministically (their hash seed is fixed after creation) and the
 * damage comes from a PRNG seeded with both.  A finding is printed as one
 * line with the command that replays its round. */
#ifndef SHMKV_FUZZ_CORRUPT_H
#define SHMKV_FUZZ_CORRUPT_H

#include <stdint.h>
#include <stdio.h>

struct fuzz_corrupt_opts {
	uint64_t seed;
	uint64_t first_round;  /* rounds first_round .. first_round + rounds - 1 */
	uint64_t rounds;       /* 0: until `seconds` runs out */
	double seconds;        /* 0: no time bound */
	unsigned call_seconds; /* alarm() per call: longer is a hang; 0: 5 */
	/* Also run what the library does not survive yet (writer-side calls on
	 * damaged tables, readers beside a live-looking dead writer): the
	 * SHMKV_FUZZ_WRITERS=1 switch.  See corrupt.c, gated[]. */
	int writers;
	const char *only_class; /* damage only of this class (corrupt.c's
	                           class_names), or NULL: any */
	int verbose;           /* a line per round */
	FILE *log;             /* findings and progress; NULL: stderr */
	void (*on_segment)(int shmid); /* told each segment created, or NULL */
};

struct fuzz_corrupt_result {
	uint64_t rounds, calls, gated_calls, findings;
	uint64_t crashes, hangs, wrong_results;
	uint64_t setup_errors; /* the fuzzer could not create or fill a table */
};

/* Runs the rounds; returns the number of findings (also in *res), or -1 if
 * the tables could not be set up (the reason is logged).  Removes every
 * segment it created before returning. */
long fuzz_corrupt_run(const struct fuzz_corrupt_opts *o, struct fuzz_corrupt_result *res);

/* 1 when the environment asks for the writer-side classes too:
 * SHMKV_FUZZ_WRITERS set to anything but "" or "0". */
int fuzz_writers_from_env(void);

#endif
