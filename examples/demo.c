/* The demo behind `make demo`: load a TSV sample (city TAB description)
 * into a shared-memory table, read every entry back from a second process
 * that attaches read-only, replace the whole data set while a read-only
 * handle stays open (it follows the new generation without reopening),
 * print the table's statistics, remove the table.
 *
 *   demo FILE               the whole demo
 *   demo --read TABLE FILE  the reader half (run by the demo itself)
 */
#include "hashtable.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY_BYTES 24
#define VALUE_BYTES 40

struct record {
	char key[KEY_BYTES];
	char value[VALUE_BYTES];
};

/* Reads "key TAB value" lines; fields are NUL-padded to their widths. */
static size_t read_sample(const char *path, struct record **out)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "demo: cannot open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	size_t n = 0, cap = 128, lineno = 0;
	struct record *r = calloc(cap, sizeof *r);
	char line[256];
	while (r && fgets(line, sizeof line, f)) {
		lineno++;
		line[strcspn(line, "\n")] = 0;
		char *tab = strchr(line, '\t');
		if (!tab || tab - line >= KEY_BYTES || strlen(tab + 1) >= VALUE_BYTES) {
			fprintf(stderr, "demo: %s:%zu: want KEY<TAB>VALUE, key < %d bytes, value < %d\n",
			        path, lineno, KEY_BYTES, VALUE_BYTES);
			exit(1);
		}
		if (n == cap && !(r = realloc(r, (cap *= 2) * sizeof *r)))
			break;
		memset(&r[n], 0, sizeof r[n]);
		memcpy(r[n].key, line, (size_t)(tab - line));
		strcpy(r[n].value, tab + 1);
		n++;
	}
	fclose(f);
	if (!r) {
		fprintf(stderr, "demo: out of memory\n");
		exit(1);
	}
	*out = r;
	return n;
}

static int reader(const char *table, const char *sample)
{
	struct record *r;
	size_t n = read_sample(sample, &r), found = 0;
	struct hashtable *h = hashtable_open(table, HASHTABLE_RDONLY);
	if (!h) {
		fprintf(stderr, "demo reader: %s\n", hashtable_last_error());
		return 1;
	}
	char value[VALUE_BYTES];
	for (size_t i = 0; i < n; i++) {
		int rc = hashtable_search(h, r[i].key, value);
		if (rc == 0 && memcmp(value, r[i].value, VALUE_BYTES) == 0)
			found++;
		else
			fprintf(stderr, "demo reader: %s: %s\n", r[i].key,
			        rc == 0 ? "wrong value" : rc == -1 ? "not found" : hashtable_strerror(rc));
		if (i < 3 || i == n - 1)
			printf("  reader pid %d: %-16s -> %s\n", (int)getpid(), r[i].key, value);
	}
	printf("  reader pid %d found %zu of %zu keys, read-only, without copying the table\n",
	       (int)getpid(), found, n);
	hashtable_close(h);
	free(r);
	return found == n ? 0 : 1;
}

/* Replaces the whole data set (every value gets a mark) in one step while a
 * read-only handle opened before stays open: its next search answers from
 * the new generation, and the old one's segment is gone once no process
 * is inside a call on it.  0, or a negative code. */
static int replace_demo(struct hashtable *h, const char *table, const struct record *r,
                        size_t n)
{
	struct hashtable *before = hashtable_open(table, HASHTABLE_RDONLY);
	struct hashtable_builder *b = NULL;
	int rc = before ? hashtable_replace_begin(h, NULL, &b) : -errno;
	for (size_t i = 0; i < n && rc >= 0; i++) {
		char value[VALUE_BYTES] = "";
		snprintf(value, sizeof value, "%.*s *", VALUE_BYTES - 3, r[i].value);
		rc = hashtable_builder_put(b, r[i].key, value);
	}
	if (rc < 0)
		hashtable_replace_abort(b);
	else
		rc = hashtable_replace_commit(b);
	char key[KEY_BYTES], value[VALUE_BYTES];
	memcpy(key, r[0].key, KEY_BYTES);
	if (rc >= 0 && (rc = hashtable_search(before, key, value)) == 0)
		printf("replaced the data set in one step: generation %llu; a handle opened before "
		       "reads %s -> %s\n", (unsigned long long)hashtable_generation(before),
		       r[0].key, value);
	if (before)
		hashtable_close(before);
	if (rc < 0)
		fprintf(stderr, "demo: replace: %s\n", hashtable_last_error());
	return rc < 0 ? rc : 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--read") == 0)
		return reader(argv[2], argv[3]);
	if (argc != 2) {
		fprintf(stderr, "usage: demo SAMPLE.tsv\n");
		return 2;
	}
	/* A fresh file names the table, so the demo never meets another's segment. */
	char table[] = "/tmp/shmkv-demo-XXXXXX";
	int fd = mkstemp(table);
	if (fd < 0) {
		perror("demo: mkstemp");
		return 1;
	}
	close(fd);

	struct record *r;
	size_t n = read_sample(argv[1], &r);
	struct hashtable_config cfg = {
		.path = table, .entries = n, .max_load = 0.8,
		.key_size = KEY_BYTES, .value_size = VALUE_BYTES, .mode = 0600,
		.flags = HASHTABLE_EXCL,
	};
	struct hashtable *h = NULL;
	int rc = hashtable_create_config(&cfg, &h);
	if (rc) {
		fprintf(stderr, "demo: %s\n", hashtable_last_error());
		unlink(table);
		return 1;
	}
	for (size_t i = 0; i < n && rc >= 0; i++)
		rc = hashtable_update(h, r[i].key, r[i].value);
	printf("loaded %zu records from %s into root segment %d (key 0x%08x = ftok(\"%s\", 1))\n", n,
	       argv[1], hashtable_shmid(h), (unsigned)ftok(table, 1), table);

	int status = 1;
	fflush(stdout); /* the child must not repeat buffered output */
	pid_t pid = rc < 0 ? -1 : fork();
	if (pid == 0) {
		execl("/proc/self/exe", argv[0], "--read", table, argv[1], (char *)NULL);
		_exit(127);
	}
	if (pid > 0 && waitpid(pid, &status, 0) != pid)
		status = 1;

	if (rc >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		rc = replace_demo(h, table, r, n);

	struct hashtable_stats st;
	hashtable_stats(h, &st);
	printf("stats: %llu keys in %llu slots (%llu buckets of %u), load %.2f of limit %.2f\n"
	       "       segment %llu bytes, payload share %.0f%%, hits read %.2f buckets, misses %.2f\n"
	       "       mode %03o, %llu process(es) attached, creator pid %d\n",
	       (unsigned long long)st.count, (unsigned long long)st.slots,
	       (unsigned long long)st.buckets, st.slots_per_bucket,
	       (double)st.count / (double)st.slots, st.max_load,
	       (unsigned long long)st.segment_bytes,
	       100.0 * (double)st.payload_bytes / (double)st.segment_bytes, st.hit_probes,
	       st.miss_probes, st.mode, (unsigned long long)st.nattch, (int)st.creator_pid);
	rc = rc < 0 ? rc : hashtable_verify(h);
	hashtable_unlink(h);
	hashtable_close(h);
	unlink(table);
	free(r);
	if (rc < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "demo: failed (%s)\n", rc < 0 ? hashtable_strerror(rc) : "reader");
		return 1;
	}
	printf("verified, and the table is removed: ipcs -m no longer lists its segments\n");
	return 0;
}
