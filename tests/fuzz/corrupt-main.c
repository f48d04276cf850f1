/* shmkv-fuzz-corrupt: the corruption fuzzer as a program, for long runs
 * (`make fuzz`) and for replaying one finding's round.  See corrupt.h. */
#include "corrupt.h"

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

/* The segments made, removed by id if the run is interrupted. */
static int segments[16];
static volatile sig_atomic_t nsegments;

static void remember(int shmid)
{
	if (nsegments < (sig_atomic_t)(sizeof segments / sizeof segments[0]))
		segments[nsegments++] = shmid;
}

static void on_signal(int sig)
{
	for (sig_atomic_t i = 0; i < nsegments; i++)
		shmctl(segments[i], IPC_RMID, NULL);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: shmkv-fuzz-corrupt [OPTION]...\n"
"Damages shmkv tables at random and calls every entry point on them, each call\n"
"in a child process: a crash, a hang, an undocumented return code or an update\n"
"reported done but not stored is a finding.\n"
"  -s, --seed=N        PRNG seed (default: from the clock; printed)\n"
"  -r, --rounds=N      rounds to run (default 1000 unless --seconds)\n"
"  -t, --seconds=S     stop after S seconds\n"
"  -R, --round=N       replay round N only (with the finding's --seed)\n"
"  -w, --writers       also run the gated classes (as SHMKV_FUZZ_WRITERS=1)\n"
"  -c, --call-seconds=S  a call running longer is a hang (default 5)\n"
"  -C, --class=NAME    damage of one class only: header, sentinel, stripe,\n"
"                      overflow, bucket, journal, mutex, holder, moves, full,\n"
"                      root, build, current (the root segment's), mixed\n"
"  -v, --verbose       print each round's damage\n"
"  -h, --help\n"
"Exit status: 0 no finding, 1 findings, 2 usage or setup error.\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "seed", required_argument, 0, 's' },
		{ "rounds", required_argument, 0, 'r' },
		{ "seconds", required_argument, 0, 't' },
		{ "round", required_argument, 0, 'R' },
		{ "writers", no_argument, 0, 'w' },
		{ "call-seconds", required_argument, 0, 'c' },
		{ "class", required_argument, 0, 'C' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct fuzz_corrupt_opts o = {0};
	o.seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	o.writers = fuzz_writers_from_env();
	o.on_segment = remember;
	int c, replay = 0;
	char *end;
	while ((c = getopt_long(argc, argv, "s:r:t:R:wc:C:vh", lo, NULL)) != -1) {
		switch (c) {
		case 's': o.seed = strtoull(optarg, &end, 0); break;
		case 'r': o.rounds = strtoull(optarg, &end, 0); break;
		case 't': o.seconds = strtod(optarg, &end); break;
		case 'R': o.first_round = strtoull(optarg, &end, 0); replay = 1; break;
		case 'w': o.writers = 1; break;
		case 'c': o.call_seconds = (unsigned)strtoul(optarg, &end, 0); break;
		case 'C': o.only_class = optarg; break;
		case 'v': o.verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (c != 'w' && c != 'v' && c != 'C' && (*optarg == 0 || *end != 0)) {
			fprintf(stderr, "shmkv-fuzz-corrupt: bad number '%s'\n", optarg);
			return 2;
		}
	}
	if (replay) {
		o.rounds = 1;
		o.seconds = 0;
		o.verbose = 1;
	} else if (o.rounds == 0 && o.seconds <= 0) {
		o.rounds = 1000;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	fprintf(stderr, "shmkv-fuzz-corrupt: seed 0x%" PRIx64 "%s\n", o.seed,
	        o.writers ? ", writer-side classes on" : "");
	struct fuzz_corrupt_result res;
	long rc = fuzz_corrupt_run(&o, &res);
	fprintf(stderr, "shmkv-fuzz-corrupt: %" PRIu64 " rounds, %" PRIu64 " calls (%" PRIu64
	        " gated off), %" PRIu64 " findings: %" PRIu64 " crashes, %" PRIu64 " hangs, %"
	        PRIu64 " wrong results\n", res.rounds, res.calls, res.gated_calls,
	        res.findings, res.crashes, res.hangs, res.wrong_results);
	return rc < 0 ? 2 : rc > 0 ? 1 : 0;
}
