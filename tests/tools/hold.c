/* shmkv-test-hold TABLE STATEFILE: a reader for the tool tests that stays
 * attached to a table between calls, as an idle reader does.
 *
 * It opens TABLE (a key 0x... or a path) read-only, makes one lookup, and
 * writes the generation it read into STATEFILE (written whole: a temp file
 * renamed).  Then it waits: SIGUSR1 makes one more lookup (which follows
 * a new generation and lets the old one go) and rewrites STATEFILE;
 * SIGTERM or SIGINT closes the table and exits 0.  Exit 1 if the table
 * cannot be opened or a lookup fails. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hashtable.h"

static int lookup(struct hashtable *h, const char *state)
{
	unsigned char key[HASHTABLE_MAX_KEY], *val;
	struct hashtable_stats st;
	char tmp[4096];
	if (hashtable_stats(h, &st) != 0)
		return -1;
	memset(key, 0x01, sizeof key); /* not a sentinel with the defaults */
	val = malloc(st.value_size + 1);
	int r = val ? hashtable_search(h, key, val) : -1;
	free(val);
	if (r < -1) {
		fprintf(stderr, "shmkv-test-hold: lookup: %s\n", hashtable_strerror(r));
		return -1;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", state);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%llu\n", (unsigned long long)hashtable_generation(h));
	if (fclose(f) != 0 || rename(tmp, state) != 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	sigset_t set;
	int sig;
	if (argc != 3) {
		fprintf(stderr, "usage: shmkv-test-hold TABLE STATEFILE\n");
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL); /* taken by sigwait only */
	struct hashtable *h = strncmp(argv[1], "0x", 2) == 0
	                    ? hashtable_open_key((key_t)strtoul(argv[1], NULL, 16), HASHTABLE_RDONLY)
	                    : hashtable_open(argv[1], HASHTABLE_RDONLY);
	if (!h) {
		fprintf(stderr, "shmkv-test-hold: %s: %s\n", argv[1], hashtable_last_error());
		return 1;
	}
	if (lookup(h, argv[2]) < 0)
		return 1;
	while (sigwait(&set, &sig) == 0 && sig == SIGUSR1)
		if (lookup(h, argv[2]) < 0)
			return 1;
	hashtable_close(h);
	return 0;
}
