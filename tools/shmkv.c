/* shmkv: inspect and change shmkv tables from the shell.
 *
 * One subcommand per job: create, stat, get, put, del, dump, ls, rm, chmod,
 * chown, verify.  Each opens the table with the least access it needs
 * (read-only for stat, get, dump, ls, verify; chmod and chown only look at
 * it), prints results on stdout and diagnostics on stderr, and is quiet on
 * success unless asked (-v).  dump writes any of the formats
 * shmkv-load reads; its default, cdb with raw fields, is lossless for any
 * bytes, so `shmkv dump T | shmkv-load T2` copies a table exactly. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#define HIST_BUCKETS 16

struct cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *args;
	const char *summary;
};

static const struct cmd *current;

/* Options every subcommand may take; each declares which it accepts. */
struct copts {
	int verbose, json, repair, with_keys, force;
	const char *format, *output;
	uint64_t bytes; /* grow --bytes */
	struct field_opts f;
	struct create_opts co;
};

enum { OPT_REPAIR = 256, OPT_JSON, OPT_WITH_KEYS, OPT_FORCE, OPT_BYTES };

static void cmd_usage(FILE *f, const struct cmd *c);

/* ---- Option parsing ---------------------------------------------------- */

/* Parses the options named in `accept` (short letters, plus 'k' for the
 * encoding options, 'S' for the sentinel keys, and 'j', 'r', 'w', 'F', 'B'
 * for --json, --repair, --with-keys, --force, --bytes).  Returns RC_OK, an exit
 * code, or -1 after --help.  Leaves optind at the first operand. */
static int parse_opts(int argc, char **argv, const char *accept, struct copts *o)
{
	static const struct option lo[] = {
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{ "json", no_argument, 0, OPT_JSON },
		{ "repair", no_argument, 0, OPT_REPAIR },
		{ "with-keys", no_argument, 0, OPT_WITH_KEYS },
		{ "force", no_argument, 0, OPT_FORCE },
		{ "format", required_argument, 0, 'f' },
		{ "output", required_argument, 0, 'o' },
		{ "bytes", required_argument, 0, OPT_BYTES },
		FIELD_LONG_OPTIONS,
		CREATE_LONG_OPTIONS,
		{ 0, 0, 0, 0 },
	};
	int c, rc = RC_OK;
	create_opts_init(&o->co);
	optind = 1;
	opterr = 0;
	while (rc == RC_OK &&
	       (c = getopt_long(argc, argv, ":vhjrf:o:E:K:V:l:m:n:c:M:H", lo, NULL)) != -1) {
		int opt = c == OPT_JSON ? 'j' : c == OPT_REPAIR ? 'r'
		        : c == OPT_WITH_KEYS ? 'w' : c == OPT_FORCE ? 'F'
		        : c == OPT_KEY_ENC || c == OPT_VALUE_ENC || c == 'E' ? 'k'
		        : c == OPT_BYTES ? 'B'
		        : c == OPT_EMPTY_KEY || c == OPT_DELETED_KEY ? 'S' : c;
		if (c != '?' && c != ':' && c != 'h' && !strchr(accept, opt)) {
			msg("%s: option '%s' does not apply to this command", current->name,
			    argv[optind - 1]);
			rc = RC_USAGE;
			break;
		}
		int r = field_opt_parse(c, optarg, &o->f);
		if (!r)
			r = create_opt_parse(c, optarg, &o->co);
		if (r) {
			if (r < 0)
				rc = RC_USAGE;
			continue;
		}
		switch (c) {
		case 'v': o->verbose = 1; break;
		case 'h': cmd_usage(stdout, current); return -1;
		case 'j': case OPT_JSON: o->json = 1; break;
		case 'r': case OPT_REPAIR: o->repair = 1; break;
		case OPT_WITH_KEYS: o->with_keys = 1; break;
		case OPT_FORCE: o->force = 1; break;
		case 'f': o->format = optarg; break;
		case 'o': o->output = optarg; break;
		case OPT_BYTES:
			if (parse_size(optarg, &o->bytes) < 0 || !o->bytes) {
				msg("bad size '%s' (bytes, with an optional K, M, G, T suffix)", optarg);
				rc = RC_USAGE;
			}
			break;
		default:
			option_error(c, optopt, argv[optind - 1]);
			rc = RC_USAGE;
			break;
		}
	}
	if (rc == RC_USAGE)
		msg("try '%s %s --help' for more information", tool_name, current->name);
	return rc;
}

/* Checks the operand count: at least min, at most max (-1: any). */
static int operands(int argc, int min, int max)
{
	int n = argc - optind;
	if (n >= min && (max < 0 || n <= max))
		return RC_OK;
	msg("%s: %s operands (usage: %s %s %s)", current->name, n < min ? "missing" : "too many",
	    tool_name, current->name, current->args);
	return RC_USAGE;
}

static void free_opts(struct copts *o)
{
	create_opts_free(&o->co);
}

/* Opens the table named by the operand at argv[optind]. */
static int open_operand(char **argv, int flags, struct table_name *tn, struct hashtable **h)
{
	int rc = table_name_parse(argv[optind], tn);
	return rc != RC_OK ? rc : table_open(tn, flags, h);
}

/* ---- create ------------------------------------------------------------ */

static int cmd_create(int argc, char **argv)
{
	struct copts o = {0};
	struct table_name tn;
	struct hashtable *h;
	int rc = parse_opts(argc, argv, "vKVmncMHkS", &o);
	if (rc == RC_OK)
		rc = operands(argc, 1, 1);
	if (rc == RC_OK && (!o.f.ks_set || !o.f.vs_set)) {
		msg("create: --key-size and --value-size are needed");
		rc = RC_USAGE;
	}
	if (rc == RC_OK && !o.co.entries == !o.co.capacity) {
		msg("create: give one of --entries and --capacity");
		rc = RC_USAGE;
	}
	if (rc == RC_OK && ((o.co.empty_key && o.co.empty_len != o.f.ks) ||
	                    (o.co.deleted_key && o.co.deleted_len != o.f.ks))) {
		msg("create: --empty-key and --deleted-key need %u bytes (%u hex digits)", o.f.ks,
		    2 * o.f.ks);
		rc = RC_USAGE;
	}
	if (rc == RC_OK)
		rc = table_name_parse(argv[optind], &tn);
	if (rc == RC_OK) {
		struct hashtable_config cfg = {0};
		cfg.key_size = o.f.ks;
		cfg.value_size = o.f.vs;
		cfg.entries = o.co.entries;
		cfg.capacity = o.co.capacity;
		create_opts_apply(&o.co, &cfg);
		rc = table_create(&tn, &cfg, &h);
		if (rc == RC_OK) {
			struct hashtable_stats st;
			hashtable_stats(h, &st);
			if (o.verbose)
				msg("%s: created: key 0x%08x, id %d, %" PRIu64 " bytes, room for %"
				    PRIu64 " keys", tn.arg, (unsigned)st.ipc_key, st.shmid,
				    st.segment_bytes, st.max_count);
			warn_remove_ipc(tn.arg, st.shmid);
			hashtable_close(h);
		}
	}
	free_opts(&o);
	return rc < 0 ? RC_OK : rc;
}

/* ---- stat ----------------------------------------------------------------- */

static const char *fmt_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t <= 0 || !localtime_r(&tt, &tm))
		snprintf(buf, len, "never");
	else
		strftime(buf, len, "%Y-%m-%d %H:%M:%S %z", &tm);
	return buf;
}

struct stat_info {
	struct hashtable_stats st;
	uint64_t hist[HIST_BUCKETS];
	int hist_ok;
	struct shm_row row;
	int row_ok;
	const char *path;
	uint64_t generation;
	struct hashtable_segment_info *segs; /* every segment of the table */
	long nsegs;                          /* < 0: the library's refusal */
};

/* The segment of a role (the first one), or NULL. */
static const struct hashtable_segment_info *seg_of_role(const struct hashtable_segment_info *v,
                                                        long n, int role)
{
	for (long i = 0; i < n; i++)
		if (v[i].role == role)
			return &v[i];
	return NULL;
}

#define MAX_HOLDERS 8

/* "pid 4242" or "pids 4242, 4243 and 3 more": the processes that have a
 * segment attached (from /proc: those this user may see); else the
 * segment's last attaching or detaching pid. */
static void holders_text(const struct hashtable_segment_info *s, char *buf, size_t len)
{
	pid_t p[MAX_HOLDERS];
	int n = shm_holders(s->shmid, p, MAX_HOLDERS);
	size_t o = 0;
	if (n == 0) {
		snprintf(buf, len, "last attach/detach by pid %d", (int)s->last_pid);
		return;
	}
	o += (size_t)snprintf(buf, len, "pid%s", n > 1 ? "s" : "");
	for (int i = 0; i < n && i < MAX_HOLDERS && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s %d", i ? "," : "", (int)p[i]);
	if (n > MAX_HOLDERS && o < len)
		snprintf(buf + o, len - o, " and %d more", n - MAX_HOLDERS);
}

/* "held by 2 processes (pids 4242, 4243)" for an older generation. */
static void print_held(const struct hashtable_segment_info *s)
{
	char who[160];
	holders_text(s, who, sizeof who);
	printf("generation %" PRIu64 ": id %d, %" PRIu64 " bytes, held by %" PRIu64
	       " process%s (%s); freed when %s\n", s->generation, s->shmid, s->bytes, s->nattch,
	       s->nattch == 1 ? "" : "es", who,
	       s->nattch == 1 ? "it detaches or calls again" : "they detach or call again");
}

/* ,"holders":[pid,...] for a retired segment's JSON object. */
static void json_holders(const struct hashtable_segment_info *s)
{
	pid_t p[MAX_HOLDERS];
	int n = s->role == HASHTABLE_SEG_RETIRED ? shm_holders(s->shmid, p, MAX_HOLDERS) : 0;
	printf(",\"holders\":[");
	for (int i = 0; i < n && i < MAX_HOLDERS; i++)
		printf("%s%d", i ? "," : "", (int)p[i]);
	printf("]");
}

/* The generation lines of stat: the current data segment, then every older
 * generation an attached process still pins, and a pending build. */
static void stat_generations(const struct stat_info *si)
{
	if (si->nsegs < 0) {
		printf("generation   %" PRIu64 " (segments unknown: %s)\n", si->generation,
		       hashtable_strerror((int)si->nsegs));
		return;
	}
	const struct hashtable_segment_info *cur =
		seg_of_role(si->segs, si->nsegs, HASHTABLE_SEG_CURRENT);
	printf("generation   %" PRIu64, si->generation);
	if (cur)
		printf(" (data segment id %d, %" PRIu64 " bytes)", cur->shmid, cur->bytes);
	printf("\n");
	for (long i = 0; i < si->nsegs; i++) {
		const struct hashtable_segment_info *s = &si->segs[i];
		if (s->role == HASHTABLE_SEG_RETIRED) {
			printf("held         ");
			print_held(s);
		} else if (s->role == HASHTABLE_SEG_PENDING) {
			printf("pending      generation %" PRIu64 ": id %d, %" PRIu64 " bytes, built by "
			       "pid %d (if that process is gone, `shmkv verify --repair` removes it)\n",
			       s->generation, s->shmid, s->bytes, (int)s->creator_pid);
		}
	}
}

static void stat_text(const struct table_name *tn, const struct stat_info *si)
{
	const struct hashtable_stats *st = &si->st;
	char t1[64], t2[64], t3[64], t4[64];
	double load = st->slots ? (double)st->count / (double)st->slots : 0;
	const struct hashtable_segment_info *root =
		si->nsegs > 0 ? seg_of_role(si->segs, si->nsegs, HASHTABLE_SEG_ROOT) : NULL;
	int root_id = root ? root->shmid : st->shmid;
	if (tn->path)
		printf("table        %s (key 0x%08x, id %d)\n", tn->path, (unsigned)st->ipc_key, root_id);
	else
		printf("table        key 0x%08x, id %d\n", (unsigned)st->ipc_key, root_id);
	printf("format       %u\n", st->format_version);
	stat_generations(si);
	printf("widths       key %u bytes, value %u bytes (slot %u bytes, %u per bucket)\n",
	       st->key_size, st->value_size, st->slot_size, st->slots_per_bucket);
	printf("geometry     %" PRIu64 " buckets, %" PRIu64 " slots\n", st->buckets, st->slots);
	printf("count        %" PRIu64 " keys (limit %" PRIu64 " at load %.3g)\n", st->count,
	       st->max_count, st->max_load);
	printf("deleted      %" PRIu64 "\n", st->deleted);
	printf("load         %.4f\n", load);
	printf("segment      %" PRIu64 " bytes%s; payload %" PRIu64 " bytes (%.1f%%)\n",
	       st->segment_bytes, st->hugetlb ? " in huge pages" : "", st->payload_bytes,
	       st->segment_bytes ? 100.0 * (double)st->payload_bytes / (double)st->segment_bytes : 0);
	printf("probes       hit %.3f, miss %.3f buckets; longest +%" PRIu64 "; collisions %" PRIu64
	       "; overflowed buckets %" PRIu64 "\n", st->hit_probes, st->miss_probes,
	       st->max_probe, st->collisions, st->overflowed_buckets);
	if (si->hist_ok) {
		int last = 0;
		for (int i = 0; i < HIST_BUCKETS; i++)
			if (si->hist[i])
				last = i;
		printf("histogram   ");
		for (int i = 0; i <= last; i++)
			printf(" +%d%s:%" PRIu64, i, i == HIST_BUCKETS - 1 ? "..." : "", si->hist[i]);
		printf("\n");
	}
	printf("counters     inserts %" PRIu64 ", updates %" PRIu64 ", deletes %" PRIu64
	       ", recoveries %" PRIu64 "\n", st->inserts, st->updates, st->deletes, st->recoveries);
	printf("mode         %04o", st->mode & 0777);
	if (si->row_ok) {
		printf(", owner %s", user_name(si->row.uid));
		printf(", group %s", group_name(si->row.gid));
	}
	printf("\n");
	printf("processes    %" PRIu64 " attached (besides this one); created by pid %d",
	       st->nattch ? st->nattch - 1 : 0, (int)st->creator_pid);
	if (si->row_ok)
		printf(", last attach/detach by pid %d", (int)si->row.lpid);
	printf("\n");
	printf("created      %s\n", fmt_time(st->created, t1, sizeof t1));
	if (si->row_ok)
		printf("times        attached %s, detached %s, changed %s\n",
		       fmt_time(si->row.atime, t2, sizeof t2), fmt_time(si->row.dtime, t3, sizeof t3),
		       fmt_time(si->row.ctime, t4, sizeof t4));
}

static void json_string(const char *s);

static void stat_json(const struct table_name *tn, const struct stat_info *si)
{
	const struct hashtable_stats *st = &si->st;
	printf("{\"table\":");
	json_string(tn->arg);
	printf(",\"path\":");
	if (tn->path)
		json_string(tn->path);
	else
		printf("null");
	printf(",\"key\":\"0x%08x\",\"shmid\":%d,\"format_version\":%u", (unsigned)st->ipc_key,
	       st->shmid, st->format_version);
	printf(",\"key_size\":%u,\"value_size\":%u,\"slot_size\":%u,\"slots_per_bucket\":%u",
	       st->key_size, st->value_size, st->slot_size, st->slots_per_bucket);
	printf(",\"buckets\":%" PRIu64 ",\"slots\":%" PRIu64 ",\"count\":%" PRIu64
	       ",\"deleted\":%" PRIu64 ",\"max_count\":%" PRIu64 ",\"max_load\":%.6g",
	       st->buckets, st->slots, st->count, st->deleted, st->max_count, st->max_load);
	printf(",\"load\":%.6f", st->slots ? (double)st->count / (double)st->slots : 0.0);
	printf(",\"segment_bytes\":%" PRIu64 ",\"payload_bytes\":%" PRIu64 ",\"payload_share\":%.6f",
	       st->segment_bytes, st->payload_bytes,
	       st->segment_bytes ? (double)st->payload_bytes / (double)st->segment_bytes : 0.0);
	printf(",\"hugetlb\":%s", st->hugetlb ? "true" : "false");
	printf(",\"collisions\":%" PRIu64 ",\"max_probe\":%" PRIu64 ",\"overflowed_buckets\":%"
	       PRIu64 ",\"hit_probes\":%.6f,\"miss_probes\":%.6f", st->collisions, st->max_probe,
	       st->overflowed_buckets, st->hit_probes, st->miss_probes);
	printf(",\"probe_histogram\":");
	if (si->hist_ok) {
		printf("[");
		for (int i = 0; i < HIST_BUCKETS; i++)
			printf("%s%" PRIu64, i ? "," : "", si->hist[i]);
		printf("]");
	} else {
		printf("null");
	}
	printf(",\"inserts\":%" PRIu64 ",\"updates\":%" PRIu64 ",\"deletes\":%" PRIu64
	       ",\"recoveries\":%" PRIu64, st->inserts, st->updates, st->deletes, st->recoveries);
	printf(",\"mode\":\"%04o\",\"nattch\":%" PRIu64 ",\"creator_pid\":%d,\"created\":%" PRId64,
	       st->mode & 0777, st->nattch ? st->nattch - 1 : 0, (int)st->creator_pid, st->created);
	if (si->row_ok)
		printf(",\"uid\":%u,\"gid\":%u,\"last_pid\":%d,\"attach_time\":%" PRId64
		       ",\"detach_time\":%" PRId64 ",\"change_time\":%" PRId64,
		       (unsigned)si->row.uid, (unsigned)si->row.gid, (int)si->row.lpid, si->row.atime,
		       si->row.dtime, si->row.ctime);
	printf(",\"generation\":%" PRIu64, si->generation);
	const struct hashtable_segment_info *cur =
		si->nsegs > 0 ? seg_of_role(si->segs, si->nsegs, HASHTABLE_SEG_CURRENT) : NULL;
	printf(",\"data_shmid\":%d", cur ? cur->shmid : -1);
	printf(",\"segments\":");
	if (si->nsegs < 0) {
		printf("null");
	} else {
		printf("[");
		for (long i = 0; i < si->nsegs; i++) {
			const struct hashtable_segment_info *g = &si->segs[i];
			printf("%s{\"id\":%d,\"role\":\"%s\",\"generation\":%" PRIu64 ",\"bytes\":%"
			       PRIu64 ",\"nattch\":%" PRIu64 ",\"creator_pid\":%d,\"last_pid\":%d",
			       i ? "," : "", g->shmid, segment_role_name(g->role), g->generation,
			       g->bytes, g->nattch, (int)g->creator_pid, (int)g->last_pid);
			json_holders(g);
			printf("}");
		}
		printf("]");
	}
	printf("}\n");
}

static int cmd_stat(int argc, char **argv)
{
	struct copts o = {0};
	struct table_name tn;
	struct hashtable *h;
	struct stat_info si;
	int rc = parse_opts(argc, argv, "vj", &o);
	if (rc == RC_OK)
		rc = operands(argc, 1, 1);
	if (rc == RC_OK)
		rc = open_operand(argv, HASHTABLE_RDONLY, &tn, &h);
	if (rc != RC_OK)
		return rc < 0 ? RC_OK : rc;
	memset(&si, 0, sizeof si);
	hashtable_stats(h, &si.st);
	warn_name_mismatch(&tn, &si.st);
	int hr = hashtable_probe_histogram(h, si.hist, HIST_BUCKETS);
	si.hist_ok = hr == 0;
	if (hr < 0)
		msg("%s: no probe histogram: %s", tn.arg, table_error(hr));
	si.row_ok = shm_row_by_id(si.st.shmid, &si.row) == 0;
	si.generation = hashtable_generation(h);
	si.nsegs = table_segment_list(h, &si.segs);
	if (o.json)
		stat_json(&tn, &si);
	else
		stat_text(&tn, &si);
	warn_remove_ipc(tn.arg, si.st.shmid);
	if (si.nsegs >= 0)
		free(si.segs);
	hashtable_close(h);
	return RC_OK;
}

/* ---- get, put, del --------------------------------------------------------- */

/* Decodes a key operand; prints why not and returns RC_DATA on failure. */
static int key_operand(const char *s, enum enc e, unsigned char *key, uint32_t ks)
{
	char err[256];
	if (enc_decode(e, (const unsigned char *)s, strlen(s), key, ks, err, sizeof err) < 0) {
		msg("key '%s': %s", s, err);
		return RC_DATA;
	}
	return RC_OK;
}

/* Decodes a key operand without a word: 0 or -1. */
static int key_operand_quiet(const char *s, enum enc e, unsigned char *key, uint32_t ks)
{
	char err[256];
	return enc_decode(e, (const unsigned char *)s, strlen(s), key, ks, err, sizeof err);
}

static enum enc or_text(enum enc e) { return e == ENC_DEFAULT ? ENC_TEXT : e; }

/* Opens the table and checks the encodings fit its widths. */
static int open_for_keys(char **argv, int flags, struct copts *o, struct table_name *tn,
                         struct hashtable **h, struct hashtable_stats *st)
{
	o->f.kenc = or_text(o->f.kenc);
	o->f.venc = or_text(o->f.venc);
	int rc = open_operand(argv, flags, tn, h);
	if (rc != RC_OK)
		return rc;
	hashtable_stats(*h, st);
	if ((rc = enc_check_width(o->f.kenc, st->key_size, "key")) != RC_OK ||
	    (rc = enc_check_width(o->f.venc, st->value_size, "value")) != RC_OK) {
		hashtable_close(*h);
		return rc;
	}
	return RC_OK;
}

/* The start of get and del (TABLE KEY...): parses their options and
 * operands, then opens the table with flags. */
static int open_keys_cmd(int argc, char **argv, const char *accept, int flags,
                         struct copts *o, struct table_name *tn, struct hashtable **h,
                         struct hashtable_stats *st)
{
	int rc = parse_opts(argc, argv, accept, o);
	if (rc == RC_OK)
		rc = operands(argc, 2, -1);
	if (rc == RC_OK)
		rc = open_for_keys(argv, flags, o, tn, h, st);
	return rc;
}

/* Reports a get or del of one key that failed with r (-1: not found).
 * Returns the command's exit code so far: `result` raised to RC_NOTFOUND
 * for a missing key, else `code`. */
static int key_failed(const struct table_name *tn, const unsigned char *key, uint32_t ks,
                      int r, int result, int code)
{
	char f[128];
	if (r == -1) {
		msg("%s: key %s: not found", tn->arg, fmt_field(key, ks, f, sizeof f));
		return result == RC_OK ? RC_NOTFOUND : result;
	}
	msg("%s: key %s: %s", tn->arg, fmt_field(key, ks, f, sizeof f), table_error(r));
	return code;
}

/* True when p[0..n) is well-formed UTF-8, as a JSON text must be. */
static int utf8_valid(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i], more, min;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			more = 1, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			more = 2, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			more = 3, min = 0x10000;
		else
			return 0;
		if (n - i <= more)
			return 0;
		unsigned cp = c & (0x3f >> more);
		for (unsigned k = 1; k <= more; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += more + 1;
	}
	return 1;
}

/* Writes s[0..n) as a JSON string: quotes, backslashes and control
 * characters escaped; the bytes must be valid UTF-8 (utf8_valid). */
static void json_string_n(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", stdout);
		else if (ch == '\t')
			fputs("\\t", stdout);
		else if (ch < 0x20 || ch == 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void json_string(const char *s) { json_string_n(s, strlen(s)); }

/* How get prints what it found: values alone, KEY TAB VALUE lines, or one
 * JSON object. */
enum get_style { GET_VALUES, GET_WITH_KEYS, GET_JSON };

struct getter {
	enum get_style style;
	enum enc kenc, venc;
	uint32_t ks, vs;
	unsigned char *key, *val; /* the key asked for, its value          */
	char *kout, *vout;        /* their encoded forms                   */
	int members;              /* JSON members printed so far           */
};

static int getter_init(struct getter *g, const struct copts *o,
                       const struct hashtable_stats *st)
{
	g->style = o->json ? GET_JSON : o->with_keys ? GET_WITH_KEYS : GET_VALUES;
	g->kenc = o->f.kenc;
	g->venc = o->f.venc;
	g->ks = st->key_size;
	g->vs = st->value_size;
	if (g->style != GET_VALUES && (g->kenc == ENC_RAW || g->venc == ENC_RAW)) {
		msg("get: %s cannot hold raw bytes: use text, hex, u32 or u64",
		    g->style == GET_JSON ? "--json" : "--with-keys lines");
		return RC_USAGE;
	}
	g->key = malloc(g->ks);
	g->val = malloc(g->vs + 1);
	g->kout = malloc(enc_max_len(g->kenc, g->ks) + 1);
	g->vout = malloc(enc_max_len(g->venc, g->vs) + 1);
	if (!g->key || !g->val || !g->kout || !g->vout) {
		msg("get: out of memory for a %u-byte value", g->vs);
		return RC_REFUSED;
	}
	return RC_OK;
}

static void getter_free(struct getter *g)
{
	free(g->key);
	free(g->val);
	free(g->kout);
	free(g->vout);
}

/* Prints the key and value just found.  Returns RC_OK, or RC_DATA when
 * this style cannot write them back exactly (said on stderr). */
static int getter_print(struct getter *g, const struct table_name *tn)
{
	char f[128];
	const char *bad = NULL;
	int lines = g->style == GET_WITH_KEYS, json = g->style == GET_JSON;
	long kn = 0, vn = enc_encode(g->venc, g->val, g->vs, g->vout, lines ? "\n" : NULL);
	if (vn < 0)
		bad = lines ? "value holds a newline or a NUL before its end"
		            : "value holds NUL bytes before its end";
	else if (json && g->venc == ENC_TEXT && !utf8_valid((unsigned char *)g->vout, (size_t)vn))
		bad = "value is not UTF-8 text, which JSON needs";
	if (!bad && g->style != GET_VALUES) {
		kn = enc_encode(g->kenc, g->key, g->ks, g->kout, lines ? "\t\n" : NULL);
		if (kn < 0)
			bad = lines ? "key holds a TAB, a newline or a NUL before its end"
			            : "key holds NUL bytes before its end";
		else if (json && g->kenc == ENC_TEXT && !utf8_valid((unsigned char *)g->kout, (size_t)kn))
			bad = "key is not UTF-8 text, which JSON needs";
	}
	if (bad) {
		msg("%s: key %s: the %s: use --encoding hex", tn->arg,
		    fmt_field(g->key, g->ks, f, sizeof f), bad);
		return RC_DATA;
	}
	if (json) {
		fputs(g->members++ ? "," : "{", stdout);
		json_string_n(g->kout, (size_t)kn);
		putchar(':');
		if (g->venc == ENC_U32 || g->venc == ENC_U64)
			fwrite(g->vout, 1, (size_t)vn, stdout); /* a JSON number */
		else
			json_string_n(g->vout, (size_t)vn);
		return RC_OK;
	}
	if (lines) {
		fwrite(g->kout, 1, (size_t)kn, stdout);
		putchar('\t');
	}
	fwrite(g->vout, 1, (size_t)vn, stdout);
	if (g->venc != ENC_RAW)
		putchar('\n');
	return RC_OK;
}

/* True when the key operand at argv[i] decodes to a key an earlier operand
 * named (a JSON object holds each name once). */
static int asked_before(const struct getter *g, char **argv, int first, int i,
                        unsigned char *tmp)
{
	for (int j = first; j < i; j++)
		if (key_operand_quiet(argv[j], g->kenc, tmp, g->ks) == 0 &&
		    memcmp(tmp, g->key, g->ks) == 0)
			return 1;
	return 0;
}

static int cmd_get(int argc, char **argv)
{
	struct copts o = {0};
	struct table_name tn;
	struct hashtable *h;
	struct hashtable_stats st;
	struct getter g = {0};
	int rc = open_keys_cmd(argc, argv, "vkjw", HASHTABLE_RDONLY, &o, &tn, &h, &st);
	if (rc != RC_OK)
		return rc < 0 ? RC_OK : rc;
	if (o.json && o.with_keys) {
		msg("get: give --json or --with-keys, not both");
		hashtable_close(h);
		return RC_USAGE;
	}
	unsigned char *tmp = malloc(st.key_size);
	int result = tmp ? getter_init(&g, &o, &st) : RC_REFUSED;
	for (int i = optind + 1; i < argc && result != RC_USAGE && result != RC_REFUSED; i++) {
		if ((rc = key_operand(argv[i], g.kenc, g.key, st.key_size)) != RC_OK) {
			result = rc;
			continue;
		}
		if (g.style == GET_JSON && asked_before(&g, argv, optind + 1, i, tmp))
			continue;
		int r = hashtable_search(h, g.key, g.val);
		if (r < 0) {
			result = key_failed(&tn, g.key, st.key_size, r, result,
			                    exit_code_for(r) == RC_NOTFOUND ? RC_REFUSED
			                                                    : exit_code_for(r));
			continue;
		}
		if ((rc = getter_print(&g, &tn)) != RC_OK)
			result = rc;
	}
	if (g.style == GET_JSON && result != RC_USAGE && result != RC_REFUSED)
		fputs(g.members ? "}\n" : "{}\n", stdout);
	getter_free(&g);
	free(tmp);
	hashtable_close(h);
	if (fflush(stdout) != 0) {
		msg("writing the output: %s", strerror(errno));
		return RC_REFUSED;
	}
	return result;
}

static void explain_full(const struct table_name *tn, struct hashtable *h)
{
	struct hashtable_stats st;
	hashtable_stats(h, &st);
	advise("%s holds %" PRIu64 " keys, its limit at load %.3g; delete keys, or grow it "
	       "while readers run: shmkv grow %s --entries N", tn->arg, st.count, st.max_load,
	       tn->arg);
}

static int cmd_put(int argc, char **argv)
{
	struct copts o = {0};
	struct table_name tn;
	struct hashtable *h;
	struct hashtable_stats st;
	int rc = parse_opts(argc, argv, "vk", &o);
	if (rc == RC_OK && (rc = operands(argc, 3, -1)) == RC_OK && (argc - optind - 1) % 2) {
		msg("put: keys and values come in pairs (usage: %s put TABLE KEY VALUE...)", tool_name);
		rc = RC_USAGE;
	}
	if (rc == RC_OK)
		rc = open_for_keys(argv, 0, &o, &tn, &h, &st);
	if (rc != RC_OK)
		return rc < 0 ? RC_OK : rc;
	size_t npairs = (size_t)(argc - optind - 1) / 2, rs = (size_t)st.key_size + st.value_size;
	unsigned char *recs = malloc(npairs * rs + 1);
	char err[256], f[128];
	if (!recs) {
		msg("out of memory for %zu pairs", npairs);
		hashtable_close(h);
		return RC_REFUSED;
	}
	/* Every pair is decoded before the first write: all or nothing. */
	for (size_t i = 0; i < npairs && rc == RC_OK; i++) {
		const char *k = argv[optind + 1 + 2 * i], *v = argv[optind + 2 + 2 * i];
		unsigned char *key = recs + i * rs;
		rc = key_operand(k, o.f.kenc, key, st.key_size);
		if (rc == RC_OK && enc_decode(o.f.venc, (const unsigned char *)v, strlen(v),
		                              key + st.key_size, st.value_size, err, sizeof err) < 0) {
			msg("value '%s': %s", v, err);
			rc = RC_DATA;
		}
	}
	for (size_t i = 0; i < npairs && rc == RC_OK; i++) {
		unsigned char *key = recs + i * rs;
		int r = hashtable_update(h, key, key + st.key_size);
		if (r >= 0) {
			if (o.verbose)
				msg("%s: key %s %s", tn.arg, fmt_field(key, st.key_size, f, sizeof f),
				    r ? "updated" : "inserted");
			continue;
		}
		msg("%s: key %s: %s", tn.arg, fmt_field(key, st.key_size, f, sizeof f),
		    table_error(r));
		if (r == -ENOMEM)
			explain_full(&tn, h);
		rc = r == -EINVAL ? RC_DATA : exit_code_for(r);
	}
	free(recs);
	hashtable_close(h);
	return rc;
}

static int cmd_del(int argc, char **argv)
{
	struct copts o = {0};
	struct table_name tn;
	struct hashtable *h;
	struct hashtable_stats st;
	int rc = open_keys_cmd(argc, argv, "vk", 0, &o, &tn, &h, &st);
	if (rc != RC_OK)
		return rc < 0 ? RC_OK : rc;
	unsigned char *key = malloc(st.key_size);
	int result = RC_OK;
	char f[128];
	for (int i = optind + 1; i < argc; i++) {
		if ((rc = key_operand(argv[i], o.f.kenc, key, st.key_size)) != RC_OK) {
			result = rc;
			continue;
		}
		int r = hashtable_delete(h, key);
		if (r == 0) {
			if (o.verbose)
				msg("%s: key %s deleted", tn.arg, fmt_field(key, st.key_size, f, sizeof f));
			continue;
		}
		result = key_failed(&tn, key, st.key_size, r, result,
		                    r == -EINVAL ? RC_DATA : exit_code_for(r));
	}
	free(key);
	hashtable_close(h);
	return result;
}

/* ---- dump ----------------------------------------------------------------- */

/* A signal that asks the dump to stop: the loops of dump_all and out_flush
 * check it (a write it interrupts returns early), and cmd_dump removes the
 * partial file before dying of the same signal. */
static volatile sig_atomic_t dump_stop;

/* The dump's output buffer.  Not stdio: after a partial write glibc retries
 * the rest at once, so a dump blocked on a stalled pipe or FIFO would never
 * see dump_stop. */
struct out {
	int fd;
	int err;            /* errno of the first failed write, else 0 */
	size_t len;
	unsigned char buf[1 << 20];
};

/* Writes the buffer out.  Returns 0, or -1 on a write error (out->err) or
 * when a stop signal arrived. */
static int out_flush(struct out *out)
{
	size_t off = 0;
	while (off < out->len && !out->err) {
		if (dump_stop)
			return -1;
		ssize_t n = write(out->fd, out->buf + off, out->len - off);
		if (n < 0 && errno != EINTR)
			out->err = errno;
		else if (n > 0)
			off += (size_t)n;
	}
	out->len = 0;
	return out->err ? -1 : 0;
}

static void out_put(struct out *out, const void *p, size_t n)
{
	const unsigned char *s = p;
	while (n > 0 && !out->err && !dump_stop) {
		if (out->len == sizeof out->buf && out_flush(out) < 0)
			return;
		size_t k = sizeof out->buf - out->len < n ? sizeof out->buf - out->len : n;
		memcpy(out->buf + out->len, s, k);
		out->len += k;
		s += k;
		n -= k;
	}
}

static void out_char(struct out *out, char c) { out_put(out, &c, 1); }

enum dfmt { DF_CDB, DF_TSV, DF_BIN };

struct dumper {
	enum dfmt fmt;
	enum enc kenc, venc;
	uint32_t ks, vs;
	char *kbuf, *vbuf;
	struct out *out;
};

/* Writes one entry; returns 0, or -1 (key) / -2 (value) when the field cannot
 * be written losslessly in the chosen encoding. */
static int dump_entry(struct dumper *d, const unsigned char *key, const unsigned char *val)
{
	long kn, vn;
	if (d->fmt == DF_BIN) {
		out_put(d->out, key, d->ks);
		out_put(d->out, val, d->vs);
		return 0;
	}
	int tsv = d->fmt == DF_TSV;
	if ((kn = enc_encode(d->kenc, key, d->ks, d->kbuf, tsv ? "\t\n" : NULL)) < 0)
		return -1;
	if ((vn = enc_encode(d->venc, val, d->vs, d->vbuf, tsv ? "\n" : NULL)) < 0)
		return -2;
	if (tsv) {
		out_put(d->out, d->kbuf, (size_t)kn);
		out_char(d->out, '\t');
		out_put(d->out, d->vbuf, (size_t)vn);
	} else {
		char head[48];
		int hn = snprintf(head, sizeof head, "+%ld,%ld:", kn, vn);
		out_put(d->out, head, (size_t)hn);
		out_put(d->out, d->kbuf, (size_t)kn);
		out_put(d->out, "->", 2);
		out_put(d->out, d->vbuf, (size_t)vn);
	}
	out_char(d->out, '\n');
	return 0;
}

static int dump_setup(struct copts *o, const struct hashtable_stats *st, struct dumper *d)
{
	const char *f = o->format ? o->format : "cdb";
	d->fmt = strcmp(f, "cdb") == 0 ? DF_CDB : strcmp(f, "tsv") == 0 ? DF_TSV
	       : strcmp(f, "bin") == 0 ? DF_BIN : (enum dfmt)-1;
	if ((int)d->fmt < 0) {
		msg("dump: bad format '%s' (cdb, tsv, bin)", f);
		return RC_USAGE;
	}
	enum enc def = d->fmt == DF_TSV ? ENC_TEXT : ENC_RAW;
	d->kenc = o->f.kenc == ENC_DEFAULT ? def : o->f.kenc;
	d->venc = o->f.venc == ENC_DEFAULT ? def : o->f.venc;
	if (d->fmt == DF_BIN && (d->kenc != ENC_RAW || d->venc != ENC_RAW)) {
		msg("dump: bin records are written as they are: encodings apply to cdb and tsv");
		return RC_USAGE;
	}
	if (d->fmt == DF_TSV && (d->kenc == ENC_RAW || d->venc == ENC_RAW)) {
		msg("dump: tsv fields cannot be raw bytes: use text, hex, u32 or u64");
		return RC_USAGE;
	}
	if (enc_check_width(d->kenc, st->key_size, "key") ||
	    enc_check_width(d->venc, st->value_size, "value"))
		return RC_USAGE;
	d->ks = st->key_size;
	d->vs = st->value_size;
	d->kbuf = malloc(enc_max_len(d->kenc, d->ks) + 1);
	d->vbuf = malloc(enc_max_len(d->venc, d->vs) + 1);
	return d->kbuf && d->vbuf ? RC_OK : RC_REFUSED;
}

static void on_dump_signal(int sig) { dump_stop = sig; }

/* Catches SIGINT, SIGTERM and SIGHUP, except those this process was started
 * with ignored (as nohup or a background job of a script ask).  No
 * SA_RESTART: a write blocked on a slow file or pipe returns. */
static void dump_catch_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_dump_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
			sigaction(sigs[i], &sa, NULL);
}

/* The cdb dump's first record: the table's geometry, sentinels, load limit
 * and mode (see META_MAGIC in common.h), so shmkv-load makes the same table. */
static int dump_meta(struct hashtable *h, const struct hashtable_stats *st, struct dumper *d)
{
	static struct table_meta m;
	static char value[META_MAX_VALUE];
	unsigned char key[HASHTABLE_MAX_KEY + 1];
	struct hashtable_segment_info *v;
	memset(&m, 0, sizeof m);
	m.key_size = st->key_size;
	m.value_size = st->value_size;
	m.capacity = st->segment_bytes;
	long n = table_segment_list(h, &v);
	if (n >= 0) { /* the data segment's size, not the root's */
		const struct hashtable_segment_info *cur = seg_of_role(v, n, HASHTABLE_SEG_CURRENT);
		if (cur)
			m.capacity = cur->bytes;
		free(v);
	}
	m.max_load = st->max_load;
	m.mode = st->mode;
	m.entries = st->count;
	m.generation = hashtable_generation(h);
	if (hashtable_sentinels(h, m.empty, m.deleted) < 0)
		return RC_REFUSED;
	size_t vn = meta_format(&m, key, value);
	char head[48];
	int hn = snprintf(head, sizeof head, "+%u,%zu:", st->key_size + 1, vn);
	out_put(d->out, head, (size_t)hn);
	out_put(d->out, key, st->key_size + 1);
	out_put(d->out, "->", 2);
	out_put(d->out, value, vn);
	out_char(d->out, '\n');
	return RC_OK;
}

static int dump_all(struct hashtable *h, const struct table_name *tn, struct dumper *d)
{
	unsigned char *key = malloc(d->ks + 1), *val = malloc(d->vs + 1);
	uint64_t cursor = 0;
	int r = 0, rc = RC_OK;
	char f[128];
	if (!key || !val) {
		msg("%s: out of memory for one entry", tn->arg);
		rc = RC_REFUSED;
	}
	while (rc == RC_OK && !dump_stop && !d->out->err &&
	       (r = hashtable_iterate(h, &cursor, key, val)) == 1) {
		int e = dump_entry(d, key, val);
		if (e < 0) {
			msg("%s: the %s of key %s cannot be written as tsv %s (it holds a TAB, "
			    "newline or NUL): use -E hex or the cdb format", tn->arg,
			    e == -1 ? "key" : "value", fmt_field(key, d->ks, f, sizeof f),
			    enc_name(e == -1 ? d->kenc : d->venc));
			rc = RC_DATA;
		}
	}
	if (rc == RC_OK && r < 0) {
		msg("%s: %s", tn->arg, table_error(r));
		rc = exit_code_for(r);
	}
	if (rc == RC_OK && !dump_stop && d->fmt == DF_CDB)
		out_char(d->out, '\n');
	free(key);
	free(val);
	return rc;
}

/* True when the dump's records hold raw bytes (NUL padding, binary
 * numbers) that a terminal would garble. */
static int dump_is_binary(const struct dumper *d)
{
	return d->fmt == DF_BIN || d->kenc == ENC_RAW || d->venc == ENC_RAW;
}

/* Opens the output: FILE, or stdout unless that is a terminal and the
 * records are binary (as gzip refuses). */
static int dump_open(const struct copts *o, struct dumper *d)
{
	d->out->fd = STDOUT_FILENO;
	if (!o->output) {
		if (dump_is_binary(d) && !o->force && isatty(STDOUT_FILENO)) {
			msg("dump: refusing to write binary records (%s) to a terminal",
			    d->fmt == DF_BIN ? "bin" : "cdb with raw fields");
			advise("write to a file with -o FILE or a redirection, a pipe into "
			       "shmkv-load, -f tsv or -E hex for text, or --force");
			return RC_USAGE;
		}
		return RC_OK;
	}
	dump_catch_signals(); /* before the file exists: no window leaves it behind */
	d->out->fd = open(o->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (d->out->fd < 0) {
		int e = errno;
		msg("%s: %s", o->output, strerror(e));
		return e == ENOENT ? RC_NOTFOUND : RC_REFUSED;
	}
	return RC_OK;
}

/* Flushes and closes the output; a failure turns rc into RC_REFUSED. */
static int dump_close(const struct copts *o, struct dumper *d, int rc)
{
	const char *name = o->output ? o->output : "the output";
	if (out_flush(d->out) < 0 && !dump_stop) {
		msg("writing %s: %s", name, strerror(d->out->err));
		if (rc == RC_OK)
			rc = RC_REFUSED;
	}
	if (o->output && close(d->out->fd) != 0 && rc == RC_OK) {
		msg("writing %s: %s", name, strerror(errno));
		rc = RC_REFUSED;
	}
	return rc;
}

/* After a stop signal: removes the partial file and dies of the signal, as
 * the shell expects (exit status 128 + N).  What is still buffered is
 * dropped: the reader of a pipe may be stalled or gone. */
static void dump_interrupted(const struct table_name *tn, const struct copts *o)
{
	int sig = dump_stop;
	if (o->output)
		unlink(o->output);
	msg("%s: interrupted by signal %d%s", tn->arg, sig,
	    o->output ? "; the partial output is removed" : "");
	signal(sig, SIG_DFL);
	raise(sig);
	_exit(128 + sig); /* not reached unless the signal is blocked */
}

static int cmd_dump(int argc, char **argv)
{
	static struct out out; /* 1 MiB: not on the stack */
	struct copts o = {0};
	struct table_name tn;
	struct hashtable *h;
	struct hashtable_stats st;
	struct dumper d = { .out = &out };
	int rc = parse_opts(argc, argv, "vkfoF", &o);
	if (rc == RC_OK)
		rc = operands(argc, 1, 1);
	if (rc == RC_OK)
		rc = open_operand(argv, HASHTABLE_RDONLY, &tn, &h);
	if (rc != RC_OK)
		return rc < 0 ? RC_OK : rc;
	hashtable_stats(h, &st);
	rc = dump_setup(&o, &st, &d);
	if (rc == RC_OK)
		rc = dump_open(&o, &d);
	if (rc == RC_OK) {
		uint64_t gen = hashtable_generation(h);
		rc = d.fmt == DF_CDB ? dump_meta(h, &st, &d) : RC_OK;
		if (rc == RC_OK)
			rc = dump_all(h, &tn, &d);
		struct hashtable_stats after;
		uint64_t gen_after = hashtable_generation(h);
		if (rc == RC_OK && !dump_stop && gen_after != gen) {
			/* a replace or grow committed: the walk went on in another layout */
			msg("%s: the table was replaced (generation %" PRIu64 " to %" PRIu64 ") while "
			    "dumping, so the dump may mix them; dump again", tn.arg, gen, gen_after);
			rc = RC_REFUSED;
		} else if (rc == RC_OK && !dump_stop && hashtable_stats(h, &after) == 0 &&
		    after.relocations != st.relocations) {
			/* a concurrent delete moved keys: the copy may miss or repeat them */
			msg("%s: %llu keys were moved by deletes while dumping, so the dump may miss "
			    "or repeat them; dump again while no process deletes",
			    tn.arg, (unsigned long long)(after.relocations - st.relocations));
			rc = RC_REFUSED;
		}
		if (!dump_stop)
			rc = dump_close(&o, &d, rc);
		if (dump_stop)
			dump_interrupted(&tn, &o); /* no return */
		if (o.output && rc != RC_OK)
			unlink(o.output);
	}
	free(d.kbuf);
	free(d.vbuf);
	hashtable_close(h);
	return rc;
}

/* ---- ls ---------------------------------------------------------------------- */

/* One table's segments for ls: the current generation and its data
 * segment, and the older or pending ones (printed under the table's row, so
 * that every key-0 row of `ipcs -m` maps back to its table). */
struct ls_segs {
	uint64_t generation;
	int data_id;
	uint64_t bytes; /* every segment of the table, root included */
	struct hashtable_segment_info *v;
	long n;
};

static void ls_segs_read(struct hashtable *h, const struct shm_row *r, struct ls_segs *ls)
{
	memset(ls, 0, sizeof *ls);
	ls->data_id = -1;
	ls->bytes = r->size;
	ls->generation = hashtable_generation(h);
	ls->n = table_segment_list(h, &ls->v);
	if (ls->n < 0) {
		ls->v = NULL;
		return;
	}
	const struct hashtable_segment_info *cur = seg_of_role(ls->v, ls->n, HASHTABLE_SEG_CURRENT);
	if (cur)
		ls->data_id = cur->shmid;
	ls->bytes = 0;
	for (long i = 0; i < ls->n; i++)
		ls->bytes += ls->v[i].bytes;
}

static void ls_json_segments(const struct ls_segs *ls)
{
	printf(",\"generation\":%" PRIu64 ",\"data_id\":%d,\"bytes\":%" PRIu64 ",\"segments\":[",
	       ls->generation, ls->data_id, ls->bytes);
	for (long i = 0; i < ls->n; i++) {
		const struct hashtable_segment_info *g = &ls->v[i];
		printf("%s{\"id\":%d,\"role\":\"%s\",\"generation\":%" PRIu64 ",\"bytes\":%" PRIu64
		       ",\"nattch\":%" PRIu64 ",\"creator_pid\":%d,\"last_pid\":%d", i ? "," : "",
		       g->shmid, segment_role_name(g->role), g->generation, g->bytes, g->nattch,
		       (int)g->creator_pid, (int)g->last_pid);
		json_holders(g);
		printf("}");
	}
	printf("]");
}

/* The lines under a table's row: its older generations still held by
 * attached processes, and a pending build. */
static void ls_text_segments(const struct ls_segs *ls)
{
	for (long i = 0; i < ls->n; i++) {
		const struct hashtable_segment_info *g = &ls->v[i];
		char who[160];
		if (g->role == HASHTABLE_SEG_RETIRED) {
			holders_text(g, who, sizeof who);
			printf("%-10s %10d %6" PRIu64 " %10s %14" PRIu64 " held by %" PRIu64 " process%s "
			       "(%s): an older generation, freed when %s\n", "  `-", g->shmid,
			       g->generation, "-", g->bytes, g->nattch, g->nattch == 1 ? "" : "es", who,
			       g->nattch == 1 ? "it detaches" : "they detach");
		}
		else if (g->role == HASHTABLE_SEG_PENDING)
			printf("%-10s %10d %6" PRIu64 " %10s %14" PRIu64 " pending: a build by pid %d\n",
			       "  `-", g->shmid, g->generation, "-", g->bytes, (int)g->creator_pid);
	}
}

static int cmd_ls(int argc, char **argv)
{
	struct copts o = {0};
	struct shm_row *rows;
	int rc = parse_opts(argc, argv, "vj", &o);
	if (rc == RC_OK)
		rc = operands(argc, 0, 0);
	if (rc != RC_OK)
		return rc < 0 ? RC_OK : rc;
	long n = shm_rows_read(&rows);
	if (n < 0) {
		msg("cannot read /proc/sysvipc/shm: %s", strerror((int)-n));
		return RC_REFUSED;
	}
	int first = 1;
	if (o.json)
		printf("[");
	else
		printf("%-10s %10s %6s %10s %14s %12s %6s %6s %-9s %s\n", "KEY", "ID", "GEN", "DATA-ID",
		       "SIZE", "COUNT", "LOAD", "NATTCH", "WIDTHS", "OWNER");
	for (long i = 0; i < n; i++) {
		const struct shm_row *r = &rows[i];
		if (r->key == IPC_PRIVATE)
			continue; /* a data segment (listed under its table), or removed */
		struct hashtable *h = hashtable_open_key(r->key, HASHTABLE_RDONLY);
		int err = h ? 0 : errno;
		struct hashtable_stats st;
		struct ls_segs ls = { 0, -1, r->size, NULL, 0 };
		/* a table whose creator died while initialising it: listed, so
		 * that `shmkv rm` can be pointed at it */
		int unfinished = !h && err == EPROTO && hashtable_unfinished_key(r->key) == 1;
		if (!h && err != EACCES && !unfinished)
			continue; /* not a shmkv table */
		if (h) {
			hashtable_stats(h, &st);
			ls_segs_read(h, r, &ls);
		}
		char count[24] = "-", load[16] = "-", widths[24] = "?", gen[24] = "-", data[16] = "-";
		if (h) {
			snprintf(count, sizeof count, "%" PRIu64, st.count);
			snprintf(load, sizeof load, "%.3f",
			         st.slots ? (double)st.count / (double)st.slots : 0.0);
			snprintf(widths, sizeof widths, "%u/%u", st.key_size, st.value_size);
			snprintf(gen, sizeof gen, "%" PRIu64, ls.generation);
			if (ls.data_id >= 0)
				snprintf(data, sizeof data, "%d", ls.data_id);
		}
		if (o.json) {
			printf("%s{\"key\":\"0x%08x\",\"id\":%d,\"size\":%" PRIu64 ",\"nattch\":%" PRIu64
			       ",\"uid\":%u,\"mode\":\"%04o\"", first ? "" : ",", (unsigned)r->key, r->id,
			       r->size, r->nattch, (unsigned)r->uid, r->perms & 0777);
			if (h) {
				printf(",\"count\":%" PRIu64 ",\"load\":%s,\"key_size\":%u,\"value_size\":%u",
				       st.count, load, st.key_size, st.value_size);
				ls_json_segments(&ls);
			} else if (unfinished) {
				printf(",\"count\":null,\"load\":null,\"unfinished\":true");
			} else {
				printf(",\"count\":null,\"load\":null,\"access\":false");
			}
			printf("}");
		} else {
			printf("0x%08x %10d %6s %10s %14" PRIu64 " %12s %6s %6" PRIu64 " %-9s %s%s\n",
			       (unsigned)r->key, r->id, gen, data, ls.bytes, count, load, r->nattch,
			       widths, user_name(r->uid),
			       h ? "" : unfinished ? " (unfinished: its creator died; shmkv rm removes it)"
			                           : " (no read access: may be a table)");
			ls_text_segments(&ls);
		}
		first = 0;
		free(ls.v);
		if (h)
			hashtable_close(h);
	}
	if (o.json)
		printf("]\n");
	free(rows);
	return RC_OK;
}

/* ---- rm ------------------------------------------------------------------------ */

/* "12 (root), 13 (generation 4)" for every segment of the table. */
static void segment_ids_text(struct hashtable *h, char *buf, size_t len)
{
	struct hashtable_segment_info *v;
	long n = table_segment_list(h, &v);
	size_t o = 0;
	if (n < 0) {
		snprintf(buf, len, "%d", hashtable_shmid(h));
		return;
	}
	for (long i = 0; i < n && o < len; i++) {
		int w = v[i].role == HASHTABLE_SEG_ROOT
		      ? snprintf(buf + o, len - o, "%s%d (root)", i ? ", " : "", v[i].shmid)
		      : snprintf(buf + o, len - o, "%s%d (%s generation %" PRIu64 ")", i ? ", " : "",
		                 v[i].shmid, segment_role_name(v[i].role), v[i].generation);
		if (w < 0)
			break;
		o += (size_t)w;
	}
	free(v);
}

static int cmd_rm(int argc, char **argv)
{
	struct copts o = {0};
	int rc = parse_opts(argc, argv, "v", &o);
	if (rc == RC_OK)
		rc = operands(argc, 1, -1);
	if (rc != RC_OK)
		return rc < 0 ? RC_OK : rc;
	int result = RC_OK;
	for (int i = optind; i < argc; i++) {
		struct table_name tn;
		struct hashtable *h;
		if ((rc = table_name_parse(argv[i], &tn)) != RC_OK) {
			result = rc;
			continue;
		}
		/* A table whose creator died while initialising it cannot be opened;
		 * hashtable_remove recognises and removes it. */
		if (tn.key != (key_t)-1 && hashtable_unfinished_key(tn.key) == 1) {
			int r = tn.path ? hashtable_remove(tn.path) : hashtable_remove_key(tn.key);
			if (r < 0) {
				msg("%s: cannot remove unfinished table: %s", tn.arg, table_error(r));
				result = exit_code_for(r);
			} else if (o.verbose) {
				msg("%s: removed an unfinished table", tn.arg);
			}
			continue;
		}
		/* Opening first names the obstacle (not a table, no access) the same way
		 * every command does; hashtable_remove then checks again. */
		if ((rc = table_open(&tn, HASHTABLE_RDONLY, &h)) != RC_OK) {
			result = result == RC_OK ? rc : result;
			continue;
		}
		int id = hashtable_shmid(h);
		char idlist[256] = "";
		segment_ids_text(h, idlist, sizeof idlist);
		hashtable_close(h);
		int r = tn.path ? hashtable_remove(tn.path) : hashtable_remove_key(tn.key);
		if (r < 0) {
			msg("%s: cannot remove table (id %d): %s", tn.arg, id, table_error(r));
			struct shm_row row;
			if ((r == -EPERM || r == -EACCES) && shm_row_by_id(id, &row) == 0)
				advise("only its owner %s, its creator or root may remove it",
				       user_name(row.uid));
			result = exit_code_for(r);
			continue;
		}
		if (o.verbose)
			msg("%s: removed (segment%s %s)", tn.arg, strchr(idlist, ',') ? "s" : "",
			    idlist[0] ? idlist : "?");
	}
	return result;
}

/* ---- chmod, chown --------------------------------------------------------------- */

/* What chmod or chown changes; -1 leaves a field as it is. */
struct perm_change {
	long mode;
	long long uid, gid;
};

/* The segments chmod and chown change: the root, the current generation
 * and a pending build (a retired generation is already marked for removal
 * and goes when its last reader detaches). */
#define TABLE_MAX_SEGMENTS 16

static int ids_from_handle(struct hashtable *h, int ids[TABLE_MAX_SEGMENTS], int *n)
{
	struct hashtable_segment_info *v;
	long k = table_segment_list(h, &v);
	*n = 0;
	if (k < 0) {
		ids[(*n)++] = hashtable_shmid(h);
		return RC_OK;
	}
	/* Data segments first, the root last: a chmod that takes the owner's
	 * own read access away must not lock it out of finding the rest. */
	for (long i = 0; i < k && *n < TABLE_MAX_SEGMENTS - 1; i++)
		if (v[i].role == HASHTABLE_SEG_CURRENT || v[i].role == HASHTABLE_SEG_PENDING)
			ids[(*n)++] = v[i].shmid;
	for (long i = 0; i < k; i++)
		if (v[i].role == HASHTABLE_SEG_ROOT)
			ids[(*n)++] = v[i].shmid;
	free(v);
	return RC_OK;
}

/* The segment ids of a table: fills ids[] and sets *n.  Returns RC_OK, or
 * the exit code after saying why.  A table whose mode denies its own owner
 * access (chmod 0) cannot be attached to list its segments, but its owner
 * may still change it: the segment at its key is then taken alone, and
 * table_set_perms comes back for the data segments once the root is
 * readable again (*root_only is set). */
static int table_segments(const struct table_name *tn, int ids[TABLE_MAX_SEGMENTS], int *n,
                          int *root_only)
{
	*n = 0;
	*root_only = 0;
	if (tn->key != (key_t)-1) {
		struct hashtable *h = tn->path ? hashtable_open(tn->path, HASHTABLE_RDONLY)
		                               : hashtable_open_key(tn->key, HASHTABLE_RDONLY);
		if (h) {
			ids_from_handle(h, ids, n);
			hashtable_close(h);
			return RC_OK;
		}
		if (errno == EACCES && (ids[0] = shmid_of_key(tn->key)) >= 0) {
			*n = 1;
			*root_only = 1;
			return RC_OK;
		}
	}
	struct hashtable *h;
	int rc = table_open(tn, HASHTABLE_RDONLY, &h); /* says why not */
	if (rc == RC_OK) {                              /* appeared meanwhile */
		ids_from_handle(h, ids, n);
		hashtable_close(h);
	}
	return rc;
}

/* Applies pc to one segment of the table (IPC_SET).  Only the segment's
 * owner, its creator or root may (EPERM otherwise). */
static int segment_set_perms(const struct table_name *tn, int id, const struct perm_change *pc,
                             int verbose)
{
	struct shm_row row;
	if (shm_row_by_id(id, &row) < 0) {
		msg("%s: segment id %d vanished", tn->arg, id);
		return RC_NOTFOUND;
	}
	/* From /proc/sysvipc/shm, not IPC_STAT: that needs read permission,
	 * which the owner of a mode-0 table lacks. */
	struct shmid_ds ds;
	memset(&ds, 0, sizeof ds);
	ds.shm_perm.uid = pc->uid >= 0 ? (uid_t)pc->uid : row.uid;
	ds.shm_perm.gid = pc->gid >= 0 ? (gid_t)pc->gid : row.gid;
	ds.shm_perm.mode = (unsigned short)(pc->mode >= 0 ? (unsigned)pc->mode : row.perms & 0777);
	if (shmctl(id, IPC_SET, &ds) < 0) {
		int e = errno;
		char owner[96], creator[96];
		msg("%s: cannot change segment id %d: %s", tn->arg, id, strerror(e));
		snprintf(owner, sizeof owner, "%s", user_name(row.uid));
		snprintf(creator, sizeof creator, "%s", user_name(row.cuid));
		if (e == EPERM)
			advise("only its owner %s, its creator %s or root may change its mode or "
			       "owner; you are %s", owner, creator, user_name(geteuid()));
		return e == EINVAL || e == EIDRM ? RC_NOTFOUND : RC_REFUSED;
	}
	if (verbose)
		msg("%s: segment id %d: mode %04o, owner %s", tn->arg, id, ds.shm_perm.mode & 0777,
		    user_name(ds.shm_perm.uid));
	return RC_OK;
}

/* Applies pc to every segment of the table (table_segments lists them). */
static int table_set_perms(const struct table_name *tn, const struct perm_change *pc, int verbose)
{
	int ids[TABLE_MAX_SEGMENTS], n, root_only;
	int rc = table_segments(tn, ids, &n, &root_only);
	for (int i = 0; i < n && rc == RC_OK; i++)
		rc = segment_set_perms(tn, ids[i], pc, verbose);
	if (rc != RC_OK || !root_only)
		return rc;
	/* The root was unreadable: now that it has its new mode, list the data
	 * segments and change them too. */
	struct hashtable *h = tn->path ? hashtable_open(tn->path, HASHTABLE_RDONLY)
	                               : hashtable_open_key(tn->key, HASHTABLE_RDONLY);
	if (!h) {
		msg("%s: warning: the table's new mode does not let you read it, so its data "
		    "segments could not be found and keep their old mode", tn->arg);
		advise("give yourself read access (e.g. `shmkv chmod 0600 %s`), then repeat "
		       "this command", tn->arg);
		return RC_REFUSED;
	}
	int root = ids[0];
	ids_from_handle(h, ids, &n);
	hashtable_close(h);
	for (int i = 0; i < n && rc == RC_OK; i++)
		if (ids[i] != root)
			rc = segment_set_perms(tn, ids[i], pc, verbose);
	return rc;
}

/* Runs table_set_perms on every TABLE operand from argv[first]. */
static int set_perms_all(int argc, char **argv, int first, const struct perm_change *pc,
                         int verbose)
{
	int result = RC_OK;
	for (int i = first; i < argc; i++) {
		struct table_name tn;
		int rc = table_name_parse(argv[i], &tn);
		if (rc == RC_OK)
			rc = table_set_perms(&tn, pc, verbose);
		if (rc != RC_OK && result == RC_OK)
			result = rc;
	}
	return result;
}

static int cmd_chmod(int argc, char **argv)
{
	struct copts o = {0};
	unsigned mode;
	int rc = parse_opts(argc, argv, "v", &o);
	if (rc == RC_OK)
		rc = operands(argc, 2, -1);
	if (rc != RC_OK)
		return rc < 0 ? RC_OK : rc;
	if (parse_mode(argv[optind], &mode) < 0) {
		msg("chmod: bad mode '%s' (octal permission bits, e.g. 0640)", argv[optind]);
		return RC_USAGE;
	}
	struct perm_change pc = { (long)mode, -1, -1 };
	return set_perms_all(argc, argv, optind + 1, &pc, o.verbose);
}

/* A user or group: a name, or a number. */
static int lookup_id(const char *s, int group, long long *out, gid_t *login_group)
{
	uint64_t v;
	if (group) {
		struct group *gr = getgrnam(s);
		if (gr)
			*out = gr->gr_gid;
		else if (parse_u64(s, &v) == 0 && v < UINT32_MAX)
			*out = (long long)v;
		else
			return -1;
		return 0;
	}
	struct passwd *pw = getpwnam(s);
	if (pw) {
		*out = pw->pw_uid;
	} else if (parse_u64(s, &v) == 0 && v < UINT32_MAX) {
		*out = (long long)v;
		pw = getpwuid((uid_t)v); /* for its login group, if it has one */
	} else {
		return -1;
	}
	if (login_group)
		*login_group = pw ? pw->pw_gid : (gid_t)-1;
	return 0;
}

/* USER, USER:GROUP, USER: (the user's login group) or :GROUP, as chown(1). */
static int parse_owner(const char *s, struct perm_change *pc)
{
	char buf[256];
	gid_t login = (gid_t)-1;
	snprintf(buf, sizeof buf, "%s", s);
	char *colon = strchr(buf, ':');
	if (colon)
		*colon++ = 0;
	pc->uid = pc->gid = -1;
	if (buf[0] && lookup_id(buf, 0, &pc->uid, &login) < 0) {
		msg("chown: no user '%s' (a name or a number)", buf);
		return RC_USAGE;
	}
	if (colon && *colon && lookup_id(colon, 1, &pc->gid, NULL) < 0) {
		msg("chown: no group '%s' (a name or a number)", colon);
		return RC_USAGE;
	}
	if (colon && !*colon && buf[0]) {
		if (login == (gid_t)-1) {
			msg("chown: uid %s has no login group: write USER:GROUP", buf);
			return RC_USAGE;
		}
		pc->gid = login;
	}
	if (pc->uid < 0 && pc->gid < 0) {
		msg("chown: '%s' names no user and no group (USER[:GROUP] or :GROUP)", s);
		return RC_USAGE;
	}
	return RC_OK;
}

static int cmd_chown(int argc, char **argv)
{
	struct copts o = {0};
	struct perm_change pc = { -1, -1, -1 };
	int rc = parse_opts(argc, argv, "v", &o);
	if (rc == RC_OK)
		rc = operands(argc, 2, -1);
	if (rc == RC_OK)
		rc = parse_owner(argv[optind], &pc);
	if (rc != RC_OK)
		return rc < 0 ? RC_OK : rc;
	return set_perms_all(argc, argv, optind + 1, &pc, o.verbose);
}

/* ---- grow -------------------------------------------------------------------- */

/* The most keys a data segment of at most `bytes` holds at the table's
 * load limit (0 if not even one). */
static uint64_t entries_for_bytes(uint64_t bytes, const struct hashtable_stats *st)
{
	uint64_t lo = 0, hi = bytes / ((uint64_t)st->key_size + st->value_size) + 1;
	while (lo < hi) { /* the largest e with segment_size(e) <= bytes */
		uint64_t mid = lo + (hi - lo + 1) / 2;
		size_t need = hashtable_segment_size(mid, st->max_load, st->key_size, st->value_size);
		if (need && need <= bytes)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

static int cmd_grow(int argc, char **argv)
{
	struct copts o = {0};
	struct table_name tn;
	struct hashtable *h;
	struct hashtable_stats st, after;
	int rc = parse_opts(argc, argv, "vnB", &o);
	if (rc == RC_OK)
		rc = operands(argc, 1, 1);
	if (rc == RC_OK && !o.co.entries == !o.bytes) {
		msg("grow: give one of --entries and --bytes");
		rc = RC_USAGE;
	}
	if (rc == RC_OK)
		rc = open_operand(argv, 0, &tn, &h);
	if (rc != RC_OK)
		return rc < 0 ? RC_OK : rc;
	hashtable_stats(h, &st);
	uint64_t gen = hashtable_generation(h);
	uint64_t entries = o.co.entries ? o.co.entries : entries_for_bytes(o.bytes, &st);
	if (entries < st.count) {
		if (o.bytes)
			msg("%s: %" PRIu64 " bytes hold %" PRIu64 " keys at load %.3g, fewer than the "
			    "%" PRIu64 " the table holds", tn.arg, o.bytes, entries, st.max_load, st.count);
		else
			msg("%s: room for %" PRIu64 " keys is less than the %" PRIu64 " the table holds",
			    tn.arg, entries, st.count);
		advise("delete keys first, or give a larger size");
		hashtable_close(h);
		return RC_USAGE;
	}
	double t0 = now_seconds();
	int r = hashtable_grow(h, entries);
	if (r < 0) {
		msg("%s: cannot grow to %" PRIu64 " keys: %s", tn.arg, entries, table_error(r));
		advise("the table is unchanged: generation %" PRIu64 " still serves", gen);
		hashtable_close(h);
		return exit_code_for(r);
	}
	if (o.verbose && hashtable_stats(h, &after) == 0)
		msg("%s: grown to generation %" PRIu64 ": room for %" PRIu64 " keys (was %" PRIu64
		    "), %" PRIu64 " bytes (was %" PRIu64 "), %" PRIu64 " keys copied in %.3f s",
		    tn.arg, hashtable_generation(h), after.max_count, st.max_count,
		    after.segment_bytes, st.segment_bytes, after.count, now_seconds() - t0);
	hashtable_close(h);
	return RC_OK;
}

/* ---- verify ------------------------------------------------------------------ */

/* The table's pending segments (a build in progress or left by a dead
 * builder): up to max, returns how many. */
static int pending_segments(struct hashtable *h, struct hashtable_segment_info *out, int max)
{
	struct hashtable_segment_info *v;
	long n = table_segment_list(h, &v);
	int k = 0;
	for (long i = 0; i < n && k < max; i++)
		if (v[i].role == HASHTABLE_SEG_PENDING)
			out[k++] = v[i];
	if (n >= 0)
		free(v);
	return k;
}

/* After a repair: names each pending segment that is gone.  Returns how
 * many. */
static int report_removed_builds(const struct table_name *tn, struct hashtable *h,
                                 const struct hashtable_segment_info *before, int n)
{
	struct hashtable_segment_info now[4];
	int k = pending_segments(h, now, 4), removed = 0;
	for (int i = 0; i < n; i++) {
		int still = 0;
		for (int j = 0; j < k; j++)
			still |= now[j].shmid == before[i].shmid;
		if (still)
			continue;
		msg("%s: removed segment id %d (%" PRIu64 " bytes), the unfinished generation %" PRIu64
		    " of a builder that died (pid %d)", tn->arg, before[i].shmid, before[i].bytes,
		    before[i].generation, (int)before[i].creator_pid);
		removed++;
	}
	return removed;
}

static int cmd_verify(int argc, char **argv)
{
	struct copts o = {0};
	struct table_name tn;
	struct hashtable *h;
	int rc = parse_opts(argc, argv, "vr", &o);
	if (rc == RC_OK)
		rc = operands(argc, 1, 1);
	if (rc == RC_OK)
		rc = open_operand(argv, o.repair ? 0 : HASHTABLE_RDONLY, &tn, &h);
	if (rc != RC_OK)
		return rc < 0 ? RC_OK : rc;
	if (o.repair) {
		struct hashtable_segment_info pend[4];
		int npend = pending_segments(h, pend, 4);
		int r = hashtable_recover(h);
		if (r < 0) {
			msg("%s: cannot take the writer lock: %s", tn.arg, table_error(r));
			hashtable_close(h);
			return exit_code_for(r);
		}
		int removed = report_removed_builds(&tn, h, pend, npend);
		if (r == 1 && !removed)
			msg("%s: completed the change of a writer that died mid-update", tn.arg);
	}
	int r = hashtable_verify(h);
	if (r == 0) {
		if (o.verbose) {
			struct hashtable_stats st;
			hashtable_stats(h, &st);
			msg("%s: consistent (%" PRIu64 " keys)", tn.arg, st.count);
		}
		hashtable_close(h);
		return RC_OK;
	}
	msg("%s: %s", tn.arg, table_error(r));
	if (r == HASHTABLE_EDEADWRITER)
		advise("`%s verify --repair %s` completes the dead writer's change", tool_name, tn.arg);
	hashtable_close(h);
	return r == HASHTABLE_EDEADWRITER || r == HASHTABLE_ECORRUPT ? RC_DATA : exit_code_for(r);
}

/* ---- Dispatch ------------------------------------------------------------------ */

static int cmd_help(int argc, char **argv);

static const struct cmd cmds[] = {
	{ "create", cmd_create, "-K BYTES -V BYTES (-n N | -c BYTES) TABLE",
	  "create an empty table" },
	{ "stat", cmd_stat, "[--json] TABLE",
	  "geometry, count, load, probe lengths, counters, times" },
	{ "get", cmd_get, "[--with-keys | --json] TABLE KEY...", "print the values of keys" },
	{ "put", cmd_put, "TABLE KEY VALUE [KEY VALUE]...", "insert or overwrite keys" },
	{ "del", cmd_del, "TABLE KEY...", "delete keys" },
	{ "dump", cmd_dump, "[-f cdb|tsv|bin] [-E ENC] [-o FILE] [--force] TABLE",
	  "write every entry as cdb (default), tsv or bin" },
	{ "ls", cmd_ls, "[--json]", "list every shmkv table on this host" },
	{ "rm", cmd_rm, "TABLE...", "remove tables (their segments)" },
	{ "chmod", cmd_chmod, "OCTAL-MODE TABLE...", "change the permission bits of tables" },
	{ "chown", cmd_chown, "USER[:GROUP] TABLE...", "change the owner (and group) of tables" },
	{ "verify", cmd_verify, "[--repair] TABLE", "check a table's consistency" },
	{ "grow", cmd_grow, "(--entries N | --bytes SIZE) TABLE",
	  "copy a table into a larger generation while readers run" },
	{ "help", cmd_help, "[COMMAND]", "print help on a command" },
};
#define NCMDS (sizeof cmds / sizeof cmds[0])

static const char *const cmd_details[] = {
	/* create */
	"  -K, --key-size=BYTES      key width, 1..1024\n"
	"  -V, --value-size=BYTES    value width, 0..1048576\n"
	"  -n, --entries=N           size the segment for N keys at the load limit\n"
	"  -c, --capacity=BYTES      or give the segment size (K, M, G, T suffixes)\n"
	"  -m, --max-load=F          load limit, fraction or percent (default "
	                             STR(DEFAULT_MAX_LOAD) ")\n"
	"  -M, --mode=OCTAL          permission bits (default " STR(DEFAULT_MODE) ")\n"
	"  -H, --huge-pages          back the segment with huge pages\n"
	"      --empty-key=HEX, --deleted-key=HEX  sentinel keys (default all 00, all ff)\n",
	/* stat */
	"      --json                one JSON object instead of text\n"
	"The generation line names the current data segment; a held line each older\n"
	"generation still attached somewhere (its bytes, processes and their pids),\n"
	"a pending line a build in progress or left by a killed builder.\n",
	/* get */
	"  -E, --encoding=KEY[,VALUE]  text (default), hex, u32, u64, raw; raw values are\n"
	"                            written as their exact bytes with no newline\n"
	"      --key-enc=ENC, --value-enc=ENC\n"
	"      --with-keys           print KEY<TAB>VALUE lines\n"
	"      --json                print one JSON object {\"KEY\":VALUE,...}: text and\n"
	"                            hex fields as strings, u32/u64 values as numbers\n"
	"Missing keys are named on stderr and left out; the exit status is then 1.\n"
	"A field the chosen output cannot hold exactly (a TAB or newline in a\n"
	"--with-keys line, non-UTF-8 text in JSON) is refused with exit status 3.\n",
	/* put */
	"  -E, --encoding=KEY[,VALUE]  text (default), hex, u32, u64\n"
	"      --key-enc=ENC, --value-enc=ENC\n"
	"Every pair is checked before the first is written.\n",
	/* del */
	"  -E, --encoding=KEY        text (default), hex, u32, u64\n",
	/* dump */
	"  -f, --format=FMT          cdb (default), tsv or bin\n"
	"  -E, --encoding=KEY[,VALUE]  cdb: raw (default: the full width), text\n"
	"                            (trailing NULs dropped), hex, u32, u64;\n"
	"                            tsv: text (default), hex, u32, u64; bin: none\n"
	"  -o, --output=FILE         write to FILE (removed again if the dump fails or\n"
	"                            is interrupted by SIGINT, SIGTERM or SIGHUP)\n"
	"      --force               write binary records (bin, raw cdb) to a terminal\n"
	"The default (cdb, raw) is lossless: shmkv dump T | shmkv-load T2 copies T.\n"
	"tsv text refuses fields it cannot write back exactly (TAB, newline, NUL).\n"
	"Binary records are not written to a terminal unless --force is given.\n"
	"Interrupted by a signal, the dump removes FILE and dies of that signal\n"
	"(exit status 128+N: 130 for SIGINT).\n",
	/* ls */
	"      --json                one JSON array instead of text\n"
	"Columns: IPC key, root segment id, generation, its data segment id (a key-0\n"
	"row of ipcs -m), bytes of all the table's segments, keys, load, processes\n"
	"attached, key/value widths, owner.  Lines starting with `- under a table\n"
	"name older generations still held by attached processes (and which\n"
	"processes) and a pending build.  Tables this user cannot read are listed\n"
	"without counts.\n",
	/* rm */
	"Removes every segment of each table: its root and its data segments (-v names\n"
	"them); processes attached keep them until they detach.\n"
	"A segment that is not a shmkv table is left alone.\n",
	/* chmod */
	"MODE is octal, as for --mode: 0644 lets others read, 0660 lets the group write.\n"
	"Only the table's owner, its creator or root may change it.\n",
	/* chown */
	"USER and GROUP are names or numbers; USER: takes the user's login group,\n"
	":GROUP changes the group only.  Only the table's owner, its creator or\n"
	"root may change it; giving a table away is final for a non-root owner.\n",
	/* verify */
	"  -r, --repair              first complete any change a dead writer left,\n"
	"                            and remove the segment a killed build left\n"
	"                            (takes the writer lock; needs write access)\n"
	"Exit status 3 when the table is inconsistent.\n",
	/* grow */
	"  -n, --entries=N           room for N keys at the table's load limit\n"
	"      --bytes=SIZE          or the most keys a data segment of SIZE bytes holds\n"
	"                            (K, M, G, T suffixes)\n"
	"Builds a new generation of the new size, copies every key into it under the\n"
	"writer lock (other writers wait; readers go on), and publishes it in one\n"
	"step.  Readers switch to it at their next call; the old generation's memory\n"
	"is freed once the last process leaves it (`shmkv stat` shows who holds it).\n"
	"The kernel must have room for both generations at once (kernel.shmmax,\n"
	"kernel.shmall); if not, the table is left as it was and the message names\n"
	"the sysctl to raise.\n",
	/* help */
	"",
};

static void cmd_usage(FILE *f, const struct cmd *c)
{
	fprintf(f, "Usage: %s %s [-v] %s\n%c%s.\n\n", tool_name, c->name, c->args,
	        c->summary[0] - 32, c->summary + 1);
	if (strchr(c->args, 'T'))
		fprintf(f, "TABLE is an existing file (its IPC key is ftok(TABLE, 1)) or a key 0x....\n\n");
	fputs(cmd_details[c - cmds], f);
	fprintf(f, "  -v, --verbose             report what was done\n"
	           "  -h, --help                print this help and exit\n\n%s", EXIT_CODES_HELP);
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: %s COMMAND [OPTION]... [ARG]...\n"
	           "Inspect and change shmkv tables: key/value tables in System V shared memory.\n"
	           "TABLE is an existing file (the table's IPC key is ftok(TABLE, 1)) or a\n"
	           "numeric IPC key written 0x....\n\nCommands:\n", tool_name);
	for (size_t i = 0; i < NCMDS; i++)
		fprintf(f, "  %-7s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(f, "\n  -h, --help     print this help and exit\n"
	           "      --version  print the version and exit\n"
	           "'%s COMMAND --help' describes a command's options.  Load tables with\n"
	           "shmkv-load(1).\n\n%s\nSee shmkv(1).\n", tool_name, EXIT_CODES_HELP);
}

static const struct cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

static int cmd_help(int argc, char **argv)
{
	struct copts o = {0};
	int rc = parse_opts(argc, argv, "", &o);
	if (rc != RC_OK)
		return rc < 0 ? RC_OK : rc;
	if (optind >= argc) {
		usage(stdout);
		return RC_OK;
	}
	const struct cmd *c = find_cmd(argv[optind]);
	if (!c) {
		msg("no command '%s' (%s --help lists them)", argv[optind], tool_name);
		return RC_USAGE;
	}
	current = c;
	cmd_usage(stdout, c);
	return RC_OK;
}

int main(int argc, char **argv)
{
	tool_name = "shmkv";
	if (argc < 2) {
		msg("missing command; '%s --help' lists them", tool_name);
		return RC_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return RC_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		print_version();
		return RC_OK;
	}
	current = find_cmd(argv[1]);
	if (!current) {
		msg("unknown command '%s'; '%s --help' lists them", argv[1], tool_name);
		return RC_USAGE;
	}
	return current->run(argc - 1, argv + 1);
}
