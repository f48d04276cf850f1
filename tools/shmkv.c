/* shmkv: inspect and change shmkv tables from the shell.
 *
 * One subcommand per job: create, stat, get, put, del, dump, ls, rm, verify.
 * Each opens the table with the least access it needs (read-only for stat,
 * get, dump, ls, verify), prints results on stdout and diagnostics on stderr,
 * and is quiet on success unless asked (-v).  dump writes any of the formats
 * shmkv-load reads; its default, cdb with raw fields, is lossless for any
 * bytes, so `shmkv dump T | shmkv-load T2` copies a table exactly. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
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
	int verbose, json, repair;
	enum enc kenc, venc;
	const char *format, *output;
	/* create */
	uint32_t ks, vs;
	int ks_set, vs_set;
	struct create_opts co;
};

enum {
	OPT_KEY_ENC = 256, OPT_VALUE_ENC, OPT_REPAIR, OPT_JSON,
};

static void cmd_usage(FILE *f, const struct cmd *c);

/* ---- Option parsing ---------------------------------------------------- */

static int set_encodings(const char *s, struct copts *o)
{
	char buf[64];
	snprintf(buf, sizeof buf, "%s", s);
	char *comma = strchr(buf, ',');
	if (comma)
		*comma++ = 0;
	if (enc_parse(buf, &o->kenc) < 0 || enc_parse(comma ? comma : buf, &o->venc) < 0) {
		msg("bad encoding '%s' (text, raw, hex, u32, u64, or KEY,VALUE)", s);
		return RC_USAGE;
	}
	return RC_OK;
}

static int opt_width(const char *s, uint32_t min, uint32_t max, uint32_t *out, const char *what)
{
	uint64_t v;
	if (parse_size(s, &v) < 0 || v < min || v > max) {
		msg("bad %s '%s' (%u..%u bytes)", what, s, min, max);
		return RC_USAGE;
	}
	*out = (uint32_t)v;
	return RC_OK;
}

/* Parses the options named in `accept` (short letters, plus 'k' for the
 * encoding options and 'j', 'r' for --json, --repair).  Returns RC_OK, an exit
 * code, or -1 after --help.  Leaves optind at the first operand. */
static int parse_opts(int argc, char **argv, const char *accept, struct copts *o)
{
	static const struct option lo[] = {
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{ "json", no_argument, 0, OPT_JSON },
		{ "repair", no_argument, 0, OPT_REPAIR },
		{ "format", required_argument, 0, 'f' },
		{ "output", required_argument, 0, 'o' },
		{ "encoding", required_argument, 0, 'E' },
		{ "key-enc", required_argument, 0, OPT_KEY_ENC },
		{ "value-enc", required_argument, 0, OPT_VALUE_ENC },
		{ "key-size", required_argument, 0, 'K' },
		{ "value-size", required_argument, 0, 'V' },
		{ "max-load", required_argument, 0, 'm' },
		{ "entries", required_argument, 0, 'n' },
		{ "capacity", required_argument, 0, 'c' },
		{ "mode", required_argument, 0, 'M' },
		{ "hugepages", no_argument, 0, 'H' },
		{ "empty-key", required_argument, 0, OPT_EMPTY_KEY },
		{ "deleted-key", required_argument, 0, OPT_DELETED_KEY },
		{ 0, 0, 0, 0 },
	};
	int c, rc = RC_OK;
	o->co.mode = 0600;
	o->co.max_load = 0.8;
	optind = 1;
	opterr = 0;
	while (rc == RC_OK &&
	       (c = getopt_long(argc, argv, ":vhjrf:o:E:K:V:m:n:c:M:H", lo, NULL)) != -1) {
		int opt = c == OPT_JSON ? 'j' : c == OPT_REPAIR ? 'r'
		        : c == OPT_KEY_ENC || c == OPT_VALUE_ENC || c == 'E' ? 'k'
		        : c == OPT_EMPTY_KEY || c == OPT_DELETED_KEY ? 'n' : c;
		if (c != '?' && c != ':' && c != 'h' && !strchr(accept, opt)) {
			msg("%s: option '%s' does not apply to this command", current->name,
			    argv[optind - 1]);
			rc = RC_USAGE;
			break;
		}
		int r = create_opt_parse(c, optarg, &o->co);
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
		case 'f': o->format = optarg; break;
		case 'o': o->output = optarg; break;
		case 'E': rc = set_encodings(optarg, o); break;
		case OPT_KEY_ENC:
		case OPT_VALUE_ENC:
			if (enc_parse(optarg, c == OPT_KEY_ENC ? &o->kenc : &o->venc) < 0) {
				msg("bad encoding '%s' (text, raw, hex, u32, u64)", optarg);
				rc = RC_USAGE;
			}
			break;
		case 'K':
			rc = opt_width(optarg, 1, HASHTABLE_MAX_KEY, &o->ks, "key size");
			o->ks_set = 1;
			break;
		case 'V':
			rc = opt_width(optarg, 0, HASHTABLE_MAX_VALUE, &o->vs, "value size");
			o->vs_set = 1;
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
	int rc = parse_opts(argc, argv, "vKVmncMHk", &o);
	if (rc == RC_OK)
		rc = operands(argc, 1, 1);
	if (rc == RC_OK && (!o.ks_set || !o.vs_set)) {
		msg("create: --key-size and --value-size are needed");
		rc = RC_USAGE;
	}
	if (rc == RC_OK && !o.co.entries == !o.co.capacity) {
		msg("create: give one of --entries and --capacity");
		rc = RC_USAGE;
	}
	if (rc == RC_OK && ((o.co.empty_key && o.co.empty_len != o.ks) ||
	                    (o.co.deleted_key && o.co.deleted_len != o.ks))) {
		msg("create: --empty-key and --deleted-key need %u bytes (%u hex digits)", o.ks,
		    2 * o.ks);
		rc = RC_USAGE;
	}
	if (rc == RC_OK)
		rc = table_name_parse(argv[optind], &tn);
	if (rc == RC_OK) {
		struct hashtable_config cfg = {0};
		cfg.key_size = o.ks;
		cfg.value_size = o.vs;
		cfg.entries = o.co.entries;
		cfg.capacity = o.co.capacity;
		cfg.max_load = o.co.max_load;
		cfg.mode = o.co.mode;
		cfg.empty_key = o.co.empty_key;
		cfg.deleted_key = o.co.deleted_key;
		cfg.flags = o.co.hugetlb ? HASHTABLE_HUGETLB : 0;
		rc = table_create(&tn, &cfg, &h);
		if (rc == RC_OK) {
			struct hashtable_stats st;
			hashtable_stats(h, &st);
			if (o.verbose)
				msg("%s: created: key 0x%08x, id %d, %" PRIu64 " bytes, room for %"
				    PRIu64 " keys", tn.arg, (unsigned)st.ipc_key, st.shmid,
				    st.segment_bytes, st.max_count);
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
};

static void stat_text(const struct table_name *tn, const struct stat_info *si)
{
	const struct hashtable_stats *st = &si->st;
	char t1[64], t2[64], t3[64], t4[64];
	double load = st->slots ? (double)st->count / (double)st->slots : 0;
	if (tn->path)
		printf("table        %s (key 0x%08x, id %d)\n", tn->path, (unsigned)st->ipc_key, st->shmid);
	else
		printf("table        key 0x%08x, id %d\n", (unsigned)st->ipc_key, st->shmid);
	printf("format       %u\n", st->format_version);
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

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

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
	int hr = hashtable_probe_histogram(h, si.hist, HIST_BUCKETS);
	si.hist_ok = hr == 0;
	if (hr < 0)
		msg("%s: no probe histogram: %s", tn.arg, hashtable_strerror(hr));
	si.row_ok = shm_row_by_id(si.st.shmid, &si.row) == 0;
	if (o.json)
		stat_json(&tn, &si);
	else
		stat_text(&tn, &si);
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

static enum enc or_text(enum enc e) { return e == ENC_DEFAULT ? ENC_TEXT : e; }

/* Opens the table and checks the encodings fit its widths. */
static int open_for_keys(char **argv, int flags, struct copts *o, struct table_name *tn,
                         struct hashtable **h, struct hashtable_stats *st)
{
	o->kenc = or_text(o->kenc);
	o->venc = or_text(o->venc);
	int rc = open_operand(argv, flags, tn, h);
	if (rc != RC_OK)
		return rc;
	hashtable_stats(*h, st);
	if ((rc = enc_check_width(o->kenc, st->key_size, "key")) != RC_OK ||
	    (rc = enc_check_width(o->venc, st->value_size, "value")) != RC_OK) {
		hashtable_close(*h);
		return rc;
	}
	return RC_OK;
}

/* The start of get and del (TABLE KEY...): parses their options and
 * operands, then opens the table with flags. */
static int open_keys_cmd(int argc, char **argv, int flags, struct copts *o,
                         struct table_name *tn, struct hashtable **h,
                         struct hashtable_stats *st)
{
	int rc = parse_opts(argc, argv, "vk", o);
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
	msg("%s: key %s: %s", tn->arg, fmt_field(key, ks, f, sizeof f), hashtable_strerror(r));
	return code;
}

static int cmd_get(int argc, char **argv)
{
	struct copts o = {0};
	struct table_name tn;
	struct hashtable *h;
	struct hashtable_stats st;
	int rc = open_keys_cmd(argc, argv, HASHTABLE_RDONLY, &o, &tn, &h, &st);
	if (rc != RC_OK)
		return rc < 0 ? RC_OK : rc;
	unsigned char *key = malloc(st.key_size), *val = malloc(st.value_size + 1);
	char *out = malloc(enc_max_len(o.venc, st.value_size) + 1);
	int result = RC_OK;
	char f[128];
	for (int i = optind + 1; i < argc && key && val && out; i++) {
		if ((rc = key_operand(argv[i], o.kenc, key, st.key_size)) != RC_OK) {
			result = rc;
			continue;
		}
		int r = hashtable_search(h, key, val);
		if (r < 0) {
			result = key_failed(&tn, key, st.key_size, r, result,
			                    exit_code_for(r) == RC_NOTFOUND ? RC_REFUSED
			                                                    : exit_code_for(r));
			continue;
		}
		long n = enc_encode(o.venc, val, st.value_size, out, NULL);
		if (n < 0) {
			msg("%s: the value of key %s holds NUL bytes before its end: use "
			    "--value-enc hex or raw", tn.arg, fmt_field(key, st.key_size, f, sizeof f));
			result = RC_DATA;
			continue;
		}
		fwrite(out, 1, (size_t)n, stdout);
		if (o.venc != ENC_RAW)
			putchar('\n');
	}
	free(key);
	free(val);
	free(out);
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
	advise("%s holds %" PRIu64 " keys, its limit at load %.3g; delete keys, or copy it "
	       "to a bigger table: shmkv dump %s | shmkv-load -n N NEWTABLE", tn->arg, st.count,
	       st.max_load, tn->arg);
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
	unsigned char *key = malloc(st.key_size), *val = malloc(st.value_size + 1);
	char err[256], f[128];
	/* Every pair is decoded before the first write: all or nothing. */
	for (int i = optind + 1; i < argc && rc == RC_OK; i += 2) {
		rc = key_operand(argv[i], o.kenc, key, st.key_size);
		if (rc == RC_OK && enc_decode(o.venc, (const unsigned char *)argv[i + 1],
		                              strlen(argv[i + 1]), val, st.value_size, err,
		                              sizeof err) < 0) {
			msg("value '%s': %s", argv[i + 1], err);
			rc = RC_DATA;
		}
	}
	for (int i = optind + 1; i < argc && rc == RC_OK; i += 2) {
		key_operand(argv[i], o.kenc, key, st.key_size);
		enc_decode(o.venc, (const unsigned char *)argv[i + 1], strlen(argv[i + 1]), val,
		           st.value_size, err, sizeof err);
		int r = hashtable_update(h, key, val);
		if (r >= 0) {
			if (o.verbose)
				msg("%s: key %s %s", tn.arg, fmt_field(key, st.key_size, f, sizeof f),
				    r ? "updated" : "inserted");
			continue;
		}
		msg("%s: key %s: %s", tn.arg, fmt_field(key, st.key_size, f, sizeof f),
		    hashtable_strerror(r));
		if (r == -ENOMEM)
			explain_full(&tn, h);
		rc = r == -EINVAL ? RC_DATA : exit_code_for(r);
	}
	free(key);
	free(val);
	hashtable_close(h);
	return rc;
}

static int cmd_del(int argc, char **argv)
{
	struct copts o = {0};
	struct table_name tn;
	struct hashtable *h;
	struct hashtable_stats st;
	int rc = open_keys_cmd(argc, argv, 0, &o, &tn, &h, &st);
	if (rc != RC_OK)
		return rc < 0 ? RC_OK : rc;
	unsigned char *key = malloc(st.key_size);
	int result = RC_OK;
	char f[128];
	for (int i = optind + 1; i < argc; i++) {
		if ((rc = key_operand(argv[i], o.kenc, key, st.key_size)) != RC_OK) {
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

enum dfmt { DF_CDB, DF_TSV, DF_BIN };

struct dumper {
	enum dfmt fmt;
	enum enc kenc, venc;
	uint32_t ks, vs;
	char *kbuf, *vbuf;
	FILE *out;
};

/* Writes one entry; returns 0, or -1 (key) / -2 (value) when the field cannot
 * be written losslessly in the chosen encoding. */
static int dump_entry(struct dumper *d, const unsigned char *key, const unsigned char *val)
{
	long kn, vn;
	if (d->fmt == DF_BIN) {
		fwrite(key, 1, d->ks, d->out);
		fwrite(val, 1, d->vs, d->out);
		return 0;
	}
	int tsv = d->fmt == DF_TSV;
	if ((kn = enc_encode(d->kenc, key, d->ks, d->kbuf, tsv ? "\t\n" : NULL)) < 0)
		return -1;
	if ((vn = enc_encode(d->venc, val, d->vs, d->vbuf, tsv ? "\n" : NULL)) < 0)
		return -2;
	if (tsv) {
		fwrite(d->kbuf, 1, (size_t)kn, d->out);
		putc('\t', d->out);
		fwrite(d->vbuf, 1, (size_t)vn, d->out);
	} else {
		fprintf(d->out, "+%ld,%ld:", kn, vn);
		fwrite(d->kbuf, 1, (size_t)kn, d->out);
		fputs("->", d->out);
		fwrite(d->vbuf, 1, (size_t)vn, d->out);
	}
	putc('\n', d->out);
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
	d->kenc = o->kenc == ENC_DEFAULT ? def : o->kenc;
	d->venc = o->venc == ENC_DEFAULT ? def : o->venc;
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

static int dump_all(struct hashtable *h, const struct table_name *tn, struct dumper *d)
{
	unsigned char *key = malloc(d->ks), *val = malloc(d->vs + 1);
	uint64_t cursor = 0;
	int r, rc = RC_OK;
	char f[128];
	while (key && val && (r = hashtable_iterate(h, &cursor, key, val)) == 1) {
		int e = dump_entry(d, key, val);
		if (e < 0) {
			msg("%s: the %s of key %s cannot be written as tsv %s (it holds a TAB, "
			    "newline or NUL): use -E hex or the cdb format", tn->arg,
			    e == -1 ? "key" : "value", fmt_field(key, d->ks, f, sizeof f),
			    enc_name(e == -1 ? d->kenc : d->venc));
			rc = RC_DATA;
			break;
		}
	}
	if (rc == RC_OK && r < 0) {
		msg("%s: %s", tn->arg, hashtable_strerror(r));
		rc = exit_code_for(r);
	}
	if (rc == RC_OK && d->fmt == DF_CDB)
		putc('\n', d->out);
	free(key);
	free(val);
	return rc;
}

static int cmd_dump(int argc, char **argv)
{
	struct copts o = {0};
	struct table_name tn;
	struct hashtable *h;
	struct hashtable_stats st;
	struct dumper d = {0};
	int rc = parse_opts(argc, argv, "vkfo", &o);
	if (rc == RC_OK)
		rc = operands(argc, 1, 1);
	if (rc == RC_OK)
		rc = open_operand(argv, HASHTABLE_RDONLY, &tn, &h);
	if (rc != RC_OK)
		return rc < 0 ? RC_OK : rc;
	hashtable_stats(h, &st);
	rc = dump_setup(&o, &st, &d);
	d.out = stdout;
	if (rc == RC_OK && o.output && !(d.out = fopen(o.output, "w"))) {
		msg("%s: %s", o.output, strerror(errno));
		rc = RC_REFUSED;
	}
	if (rc == RC_OK) {
		static char buf[1 << 20];
		setvbuf(d.out, buf, _IOFBF, sizeof buf);
		rc = dump_all(h, &tn, &d);
		struct hashtable_stats after;
		if (rc == RC_OK && hashtable_stats(h, &after) == 0 &&
		    after.relocations != st.relocations) {
			/* a concurrent delete moved keys: the copy may miss or repeat them */
			msg("%s: %llu keys were moved by deletes while dumping, so the dump may miss "
			    "or repeat them; dump again while no process deletes",
			    tn.arg, (unsigned long long)(after.relocations - st.relocations));
			rc = RC_REFUSED;
		}
		if (fflush(d.out) != 0 || ferror(d.out)) {
			msg("writing %s: %s", o.output ? o.output : "the output", strerror(errno));
			if (rc == RC_OK)
				rc = RC_REFUSED;
		}
		if (o.output && fclose(d.out) != 0 && rc == RC_OK) {
			msg("writing %s: %s", o.output, strerror(errno));
			rc = RC_REFUSED;
		}
		if (o.output && rc != RC_OK)
			unlink(o.output);
	}
	free(d.kbuf);
	free(d.vbuf);
	hashtable_close(h);
	return rc;
}

/* ---- ls ---------------------------------------------------------------------- */

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
		printf("%-10s %10s %14s %12s %6s %6s %-9s %s\n", "KEY", "ID", "SIZE", "COUNT",
		       "LOAD", "NATTCH", "WIDTHS", "OWNER");
	for (long i = 0; i < n; i++) {
		const struct shm_row *r = &rows[i];
		if (r->key == IPC_PRIVATE)
			continue; /* removed (key reset) or private: no table name */
		struct hashtable *h = hashtable_open_key(r->key, HASHTABLE_RDONLY);
		int err = h ? 0 : errno;
		struct hashtable_stats st;
		/* a table whose creator died while initialising it: listed, so
		 * that `shmkv rm` can be pointed at it */
		int unfinished = !h && err == EPROTO && hashtable_unfinished_key(r->key) == 1;
		if (!h && err != EACCES && !unfinished)
			continue; /* not a shmkv table */
		if (h)
			hashtable_stats(h, &st);
		char count[24] = "-", load[16] = "-", widths[24] = "?";
		if (h) {
			snprintf(count, sizeof count, "%" PRIu64, st.count);
			snprintf(load, sizeof load, "%.3f",
			         st.slots ? (double)st.count / (double)st.slots : 0.0);
			snprintf(widths, sizeof widths, "%u/%u", st.key_size, st.value_size);
		}
		if (o.json) {
			printf("%s{\"key\":\"0x%08x\",\"id\":%d,\"size\":%" PRIu64 ",\"nattch\":%" PRIu64
			       ",\"uid\":%u,\"mode\":\"%04o\"", first ? "" : ",", (unsigned)r->key, r->id,
			       r->size, r->nattch, (unsigned)r->uid, r->perms & 0777);
			if (h)
				printf(",\"count\":%" PRIu64 ",\"load\":%s,\"key_size\":%u,\"value_size\":%u",
				       st.count, load, st.key_size, st.value_size);
			else if (unfinished)
				printf(",\"count\":null,\"load\":null,\"unfinished\":true");
			else
				printf(",\"count\":null,\"load\":null,\"access\":false");
			printf("}");
		} else {
			printf("0x%08x %10d %14" PRIu64 " %12s %6s %6" PRIu64 " %-9s %s%s\n",
			       (unsigned)r->key, r->id, r->size, count, load, r->nattch, widths,
			       user_name(r->uid),
			       h ? "" : unfinished ? " (unfinished: its creator died; shmkv rm removes it)"
			                           : " (no read access: may be a table)");
		}
		first = 0;
		if (h)
			hashtable_close(h);
	}
	if (o.json)
		printf("]\n");
	free(rows);
	return RC_OK;
}

/* ---- rm ------------------------------------------------------------------------ */

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
				msg("%s: cannot remove unfinished table: %s", tn.arg, hashtable_strerror(r));
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
		hashtable_close(h);
		int r = tn.path ? hashtable_remove(tn.path) : hashtable_remove_key(tn.key);
		if (r < 0) {
			msg("%s: cannot remove table (id %d): %s", tn.arg, id, hashtable_strerror(r));
			struct shm_row row;
			if ((r == -EPERM || r == -EACCES) && shm_row_by_id(id, &row) == 0)
				advise("only its owner %s, its creator or root may remove it",
				       user_name(row.uid));
			result = exit_code_for(r);
			continue;
		}
		if (o.verbose)
			msg("%s: removed (id %d)", tn.arg, id);
	}
	return result;
}

/* ---- verify ------------------------------------------------------------------ */

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
		int r = hashtable_recover(h);
		if (r < 0) {
			msg("%s: cannot take the writer lock: %s", tn.arg, hashtable_strerror(r));
			hashtable_close(h);
			return exit_code_for(r);
		}
		if (r == 1)
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
	msg("%s: %s", tn.arg, hashtable_strerror(r));
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
	{ "get", cmd_get, "TABLE KEY...", "print the values of keys" },
	{ "put", cmd_put, "TABLE KEY VALUE [KEY VALUE]...", "insert or overwrite keys" },
	{ "del", cmd_del, "TABLE KEY...", "delete keys" },
	{ "dump", cmd_dump, "[-f cdb|tsv|bin] [-E ENC] [-o FILE] TABLE",
	  "write every entry as cdb (default), tsv or bin" },
	{ "ls", cmd_ls, "[--json]", "list every shmkv table on this host" },
	{ "rm", cmd_rm, "TABLE...", "remove tables (their segments)" },
	{ "verify", cmd_verify, "[--repair] TABLE", "check a table's consistency" },
	{ "help", cmd_help, "[COMMAND]", "print help on a command" },
};
#define NCMDS (sizeof cmds / sizeof cmds[0])

static const char *const cmd_details[] = {
	/* create */
	"  -K, --key-size=BYTES      key width, 1..1024\n"
	"  -V, --value-size=BYTES    value width, 0..1048576\n"
	"  -n, --entries=N           size the segment for N keys at the load limit\n"
	"  -c, --capacity=BYTES      or give the segment size (K, M, G, T suffixes)\n"
	"  -m, --max-load=F          load limit, fraction or percent (default 0.8)\n"
	"  -M, --mode=OCTAL          permission bits (default 0600)\n"
	"  -H, --hugepages           back the segment with huge pages\n"
	"      --empty-key=HEX, --deleted-key=HEX  sentinel keys (default all 00, all ff)\n",
	/* stat */
	"      --json                one JSON object instead of text\n",
	/* get */
	"  -E, --encoding=KEY[,VALUE]  text (default), hex, u32, u64, raw; raw values are\n"
	"                            written as their exact bytes with no newline\n"
	"      --key-enc=ENC, --value-enc=ENC\n",
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
	"  -o, --output=FILE         write to FILE (removed again if the dump fails)\n"
	"The default (cdb, raw) is lossless: shmkv dump T | shmkv-load T2 copies T.\n"
	"tsv text refuses fields it cannot write back exactly (TAB, newline, NUL).\n",
	/* ls */
	"      --json                one JSON array instead of text\n"
	"Columns: IPC key, segment id, size in bytes, keys, load, processes attached,\n"
	"key/value widths, owner.  Tables this user cannot read are listed without\n"
	"counts.\n",
	/* rm */
	"Removes each table's segment; processes attached keep it until they detach.\n"
	"A segment that is not a shmkv table is left alone.\n",
	/* verify */
	"  -r, --repair              first complete any change a dead writer left\n"
	"                            (takes the writer lock; needs write access)\n"
	"Exit status 3 when the table is inconsistent.\n",
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
