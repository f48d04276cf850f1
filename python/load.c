/* shmkv.load(): shmkv-load's own code, run in the Python process.
 *
 * The loader's parsers, checks and table writes are static in
 * tools/shmkv-load.c; as tests/fuzz/fuzz-load.c does, this file includes it
 * with its main() renamed, so Python loads files exactly as the tool does
 * (the same formats, encodings, bad-record reports and all-or-nothing
 * rule), and nothing in the tool changes.
 *
 * What running a program's main() inside a long-lived process needs:
 *  - getopt's state is reset before each run (optind = 0: glibc's full
 *    reinitialisation);
 *  - the tool's messages, written to stderr, are captured (stderr points to
 *    a memory stream during the run) and handed back, so the caller can put
 *    them in the exception;
 *  - main() itself is not called but load_run(), main() without its last
 *    step, which re-raises a caught signal with the default action;
 *  - the tool's SIGINT/SIGTERM/SIGHUP handlers are the process's only
 *    during the run: the caller's handlers are put back afterwards, and a
 *    signal the tool caught (it then removes what it was making) is raised
 *    again, after the handlers are back, instead of killing the process;
 *  - one run at a time (a mutex): the state above is process-wide;
 *  - fork() from another thread during a run: the child has no loader
 *    thread, so an atfork handler puts stderr and the signal handlers back
 *    and unlocks, or the child's own shmkv.load() would wait forever. */
#define main shmkv_load_main
#include "../tools/shmkv-load.c"
#undef main

#include <pthread.h>

int shmkv_py_load(int argc, char **argv, char **messages);

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* The process's state a run changes, kept for the run's end (and a fork
 * during it).  `running` is set while it is changed. */
static const int run_sigs[] = { SIGINT, SIGTERM, SIGHUP };
static struct sigaction run_saved[3];
static FILE *run_real_stderr;
static volatile int running;

static void load_child(void)
{
	if (running) {
		stderr = run_real_stderr;
		for (int i = 0; i < 3; i++)
			sigaction(run_sigs[i], &run_saved[i], NULL);
		running = 0;
	}
	pthread_mutex_init(&load_lock, NULL);
}

static void register_atfork(void) { pthread_atfork(NULL, NULL, load_child); }

/* No progress meter: the output is a message buffer, not a terminal. */
static void show_in_messages(struct loader *L)
{
	L->show_progress = 0;
	L->show_summary = L->o.verbose;
}

/* Returns the tool's exit code (RC_*) with *messages a malloc'd string of
 * what it printed, or -errno if the capture could not be set up. */
int shmkv_py_load(int argc, char **argv, char **messages)
{
	size_t len = 0;
	*messages = NULL;
	pthread_once(&atfork_once, register_atfork);
	pthread_mutex_lock(&load_lock);
	FILE *capture = open_memstream(messages, &len);
	if (!capture) {
		int e = errno;
		pthread_mutex_unlock(&load_lock);
		return -e;
	}
	for (int i = 0; i < 3; i++)
		sigaction(run_sigs[i], NULL, &run_saved[i]);
	run_real_stderr = stderr;
	running = 1;
	stderr = capture;
	optind = 0;
	stop_signal = 0;
	int rc = load_run(argc, argv, show_in_messages);
	stderr = run_real_stderr;
	fclose(capture);
	int caught = stop_signal;
	stop_signal = 0;
	for (int i = 0; i < 3; i++)
		sigaction(run_sigs[i], &run_saved[i], NULL);
	running = 0;
	pthread_mutex_unlock(&load_lock);
	if (caught)
		raise(caught);
	return rc;
}
