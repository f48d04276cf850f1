/* Shared code of the shmkv tools: see common.h.
 *
 * The advice functions run right after a library call failed: they print
 * hashtable_last_error() (the library's diagnosis of kernel limits and
 * permissions, with the command that removes the obstacle) and add only
 * what the tool knows, such as its own commands.  They never change
 * anything themselves. */
#include "common.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *tool_name = "shmkv";

void vmsg(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", tool_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

const char *table_error(int rc)
{
	const char *last = hashtable_last_error();
	return rc < -1 && last[0] ? last : hashtable_strerror(rc);
}

void advise(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s:   ", tool_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void option_error(int c, int optopt_char, const char *arg)
{
	if (c == ':')
		msg("option '%s' needs an argument", arg);
	else if (optopt_char && optopt_char < 256)
		msg("unknown option '-%c'", optopt_char);
	else
		msg("unknown option '%s'", arg);
}

int option_rejected(int c, int optopt_char, const char *arg)
{
	option_error(c, optopt_char, arg);
	msg("try '%s --help' for more information", tool_name);
	return RC_USAGE;
}

void print_version(void)
{
	printf("%s (shmkv) %s, library %s\n", tool_name, SHMKV_VERSION_STRING,
	       shmkv_version());
}

double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- Numbers ---------------------------------------------------------- */

int parse_u64(const char *s, uint64_t *out)
{
	int hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	const char *digits = hex ? s + 2 : s;
	/* strtoull alone would take blanks, a sign, and "0x" again after "0x". */
	size_t n = strspn(digits, hex ? "0123456789abcdefABCDEF" : "0123456789");
	if (n == 0 || digits[n])
		return -1;
	errno = 0;
	unsigned long long v = strtoull(digits, NULL, hex ? 16 : 10);
	if (errno)
		return -1;
	*out = v;
	return 0;
}

int parse_width(const char *s, uint32_t min, uint32_t max, uint32_t *out, const char *what)
{
	uint64_t v;
	if (parse_size(s, &v) < 0 || v < min || v > max) {
		msg("bad %s '%s' (%u..%u bytes)", what, s, min, max);
		return RC_USAGE;
	}
	*out = (uint32_t)v;
	return RC_OK;
}

int parse_size(const char *s, uint64_t *out)
{
	char num[32];
	size_t n = strspn(s, "0123456789");
	unsigned shift = 0;
	if (n == 0 || n >= sizeof num)
		return -1;
	memcpy(num, s, n);
	num[n] = 0;
	const char *suf = s + n;
	switch (toupper((unsigned char)*suf)) {
	case 0: break;
	case 'K': shift = 10; break;
	case 'M': shift = 20; break;
	case 'G': shift = 30; break;
	case 'T': shift = 40; break;
	default: return -1;
	}
	if (*suf) {
		suf++;
		if (*suf == 'i')
			suf++;
		if (*suf == 'B' || *suf == 'b')
			suf++;
		if (*suf)
			return -1;
	}
	uint64_t v;
	if (parse_u64(num, &v) < 0 || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	*out = v << shift;
	return 0;
}

int parse_load(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 100)
		return -1;
	*out = v > 1 ? v / 100 : v;
	return 0;
}

int parse_mode(const char *s, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 8);
	if (errno || end == s || *end || v > 0777)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int parse_hex_key(const char *s, unsigned char **out, uint32_t *len)
{
	size_t n = strlen(s);
	if (n == 0 || n % 2 || n / 2 > HASHTABLE_MAX_KEY)
		return -1;
	unsigned char *p = malloc(n / 2);
	if (!p)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(p);
			return -1;
		}
		p[i] = (unsigned char)(hi << 4 | lo);
	}
	*out = p;
	*len = (uint32_t)(n / 2);
	return 0;
}

/* ---- Options both tools take ------------------------------------------- */

int parse_encodings(const char *s, enum enc *kenc, enum enc *venc)
{
	char buf[64];
	snprintf(buf, sizeof buf, "%s", s);
	char *comma = strchr(buf, ',');
	if (comma)
		*comma++ = 0;
	if (enc_parse(buf, kenc) < 0 || enc_parse(comma ? comma : buf, venc) < 0) {
		msg("bad encoding '%s' (text, raw, hex, u32, u64, or KEY,VALUE)", s);
		return RC_USAGE;
	}
	return RC_OK;
}

int field_opt_parse(int c, const char *arg, struct field_opts *fo)
{
	switch (c) {
	case 'E':
		return parse_encodings(arg, &fo->kenc, &fo->venc) == RC_OK ? 1 : -1;
	case OPT_KEY_ENC:
	case OPT_VALUE_ENC:
		if (enc_parse(arg, c == OPT_KEY_ENC ? &fo->kenc : &fo->venc) < 0) {
			msg("bad encoding '%s' (text, raw, hex, u32, u64)", arg);
			return -1;
		}
		return 1;
	case 'K':
		fo->ks_set = 1;
		return parse_width(arg, 1, HASHTABLE_MAX_KEY, &fo->ks, "key size") == RC_OK ? 1 : -1;
	case 'V':
		fo->vs_set = 1;
		return parse_width(arg, 0, HASHTABLE_MAX_VALUE, &fo->vs, "value size") == RC_OK
		       ? 1 : -1;
	default:
		return 0;
	}
}

void create_opts_init(struct create_opts *co)
{
	memset(co, 0, sizeof *co);
	co->mode = DEFAULT_MODE;
	co->max_load = DEFAULT_MAX_LOAD;
	co->load = DEFAULT_MAX_LOAD;
}

int create_opts_given(const struct create_opts *co)
{
	return co->load_set || co->max_load_set || co->entries || co->capacity ||
	       co->mode_set || co->hugetlb || co->empty_key || co->deleted_key;
}

void create_opts_apply(const struct create_opts *co, struct hashtable_config *cfg)
{
	cfg->max_load = co->max_load;
	cfg->mode = co->mode;
	cfg->flags |= co->hugetlb ? HASHTABLE_HUGETLB : 0;
	if (co->empty_key)
		cfg->empty_key = co->empty_key;
	if (co->deleted_key)
		cfg->deleted_key = co->deleted_key;
}

int create_opt_parse(int c, const char *arg, struct create_opts *co)
{
	switch (c) {
	case 'l':
	case 'm':
		*(c == 'l' ? &co->load_set : &co->max_load_set) = 1;
		if (parse_load(arg, c == 'l' ? &co->load : &co->max_load) < 0) {
			msg("bad load '%s' (a fraction in (0, 1] or a percent in (1, 100])", arg);
			return -1;
		}
		return 1;
	case 'n':
		if (parse_size(arg, &co->entries) < 0 || !co->entries) {
			msg("bad entry count '%s'", arg);
			return -1;
		}
		return 1;
	case 'c':
		if (parse_size(arg, &co->capacity) < 0 || !co->capacity) {
			msg("bad capacity '%s' (bytes, with an optional K, M, G, T suffix)", arg);
			return -1;
		}
		return 1;
	case 'M':
		co->mode_set = 1;
		if (parse_mode(arg, &co->mode) < 0) {
			msg("bad mode '%s' (octal permission bits, e.g. 0640)", arg);
			return -1;
		}
		return 1;
	case 'H':
		co->hugetlb = 1;
		return 1;
	case OPT_EMPTY_KEY:
	case OPT_DELETED_KEY:
		if (parse_hex_key(arg, c == OPT_EMPTY_KEY ? &co->empty_key : &co->deleted_key,
		                  c == OPT_EMPTY_KEY ? &co->empty_len : &co->deleted_len) < 0) {
			msg("bad sentinel key '%s' (hex digits, two per byte)", arg);
			return -1;
		}
		return 1;
	default:
		return 0;
	}
}

void create_opts_free(struct create_opts *co)
{
	free(co->empty_key);
	free(co->deleted_key);
}

/* ---- Encodings -------------------------------------------------------- */

static const char *const enc_names[] = {
	[ENC_DEFAULT] = "default", [ENC_RAW] = "raw", [ENC_TEXT] = "text",
	[ENC_HEX] = "hex", [ENC_U32] = "u32", [ENC_U64] = "u64",
};

int enc_parse(const char *s, enum enc *e)
{
	for (int i = ENC_RAW; i <= ENC_U64; i++)
		if (strcmp(s, enc_names[i]) == 0) {
			*e = (enum enc)i;
			return 0;
		}
	return -1;
}

const char *enc_name(enum enc e) { return enc_names[e]; }

uint32_t enc_width(enum enc e)
{
	return e == ENC_U32 ? 4 : e == ENC_U64 ? 8 : 0;
}

int enc_check_width(enum enc e, uint32_t width, const char *what)
{
	uint32_t w = enc_width(e);
	if (w && width != w) {
		msg("%s encoding %s needs a width of %u bytes, not %u", what,
		    enc_name(e), w, width);
		return RC_USAGE;
	}
	return RC_OK;
}

/* Decimal (or 0x hex) without a division per digit: the overflow checks
 * are the compiler's carry flags.  Loading text numbers spends most of its
 * parse time here. */
static int decode_uint(const unsigned char *s, size_t len, uint64_t max,
                       uint64_t *out, char *err, size_t errlen)
{
	uint64_t v = 0;
	size_t i = 0;
	unsigned base = 10;
	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == len) {
		snprintf(err, errlen, "empty number");
		return -1;
	}
	int over = 0;
	if (base == 10 && len <= 19) { /* cannot overflow 64 bits */
		for (; i < len; i++) {
			unsigned d = (unsigned)s[i] - '0';
			if (d > 9)
				break; /* reported below */
			v = v * 10 + d;
		}
	}
	for (; i < len; i++) {
		unsigned d = base == 10 ? (unsigned)s[i] - '0' : (unsigned)hexval(s[i]);
		if (d >= base) {
			if (isprint(s[i]))
				snprintf(err, errlen, "'%c' at byte %zu is not a %s digit",
				         s[i], i + 1, base == 10 ? "decimal" : "hex");
			else
				snprintf(err, errlen, "byte 0x%02x at byte %zu is not a %s digit",
				         s[i], i + 1, base == 10 ? "decimal" : "hex");
			return -1;
		}
		over |= __builtin_mul_overflow(v, base, &v);
		over |= __builtin_add_overflow(v, d, &v);
	}
	if (over || v > max) {
		snprintf(err, errlen, "number %.*s%s is larger than %" PRIu64,
		         (int)(len > 24 ? 24 : len), (const char *)s, len > 24 ? "..." : "", max);
		return -1;
	}
	*out = v;
	return 0;
}

int enc_decode(enum enc e, const unsigned char *src, size_t len,
               unsigned char *dst, size_t width, char *err, size_t errlen)
{
	uint64_t v;
	switch (e) {
	case ENC_U32:
	case ENC_U64:
		if (decode_uint(src, len, e == ENC_U32 ? UINT32_MAX : UINT64_MAX, &v,
		                err, errlen) < 0)
			return -1;
		for (size_t i = 0; i < width; i++)
			dst[i] = (unsigned char)(v >> (8 * i));
		return 0;
	case ENC_HEX:
		if (len % 2) {
			snprintf(err, errlen, "odd number of hex digits (%zu)", len);
			return -1;
		}
		if (len / 2 > width) {
			snprintf(err, errlen, "%zu bytes (%zu hex digits), wider than the width %zu",
			         len / 2, len, width);
			return -1;
		}
		for (size_t i = 0; i < len / 2; i++) {
			int hi = hexval(src[2 * i]), lo = hexval(src[2 * i + 1]);
			if (hi < 0 || lo < 0) {
				size_t at = hi < 0 ? 2 * i : 2 * i + 1;
				snprintf(err, errlen, "byte %zu is not a hex digit", at + 1);
				return -1;
			}
			dst[i] = (unsigned char)(hi << 4 | lo);
		}
		memset(dst + len / 2, 0, width - len / 2);
		return 0;
	default: /* raw, text */
		if (len > width) {
			snprintf(err, errlen, "%zu bytes, wider than the width %zu", len, width);
			return -1;
		}
		memcpy(dst, src, len);
		memset(dst + len, 0, width - len);
		return 0;
	}
}

size_t enc_max_len(enum enc e, size_t width)
{
	switch (e) {
	case ENC_HEX: return 2 * width;
	case ENC_U32:
	case ENC_U64: return 24;
	default: return width;
	}
}

long enc_encode(enum enc e, const unsigned char *src, size_t width, char *out,
                const char *forbidden)
{
	static const char digits[] = "0123456789abcdef";
	size_t n = width;
	uint64_t v = 0;
	switch (e) {
	case ENC_HEX:
		for (size_t i = 0; i < width; i++) {
			out[2 * i] = digits[src[i] >> 4];
			out[2 * i + 1] = digits[src[i] & 15];
		}
		return (long)(2 * width);
	case ENC_U32:
	case ENC_U64:
		for (size_t i = 0; i < width; i++)
			v |= (uint64_t)src[i] << (8 * i);
		return snprintf(out, 24, "%" PRIu64, v);
	case ENC_TEXT:
		while (n > 0 && src[n - 1] == 0)
			n--;
		if (memchr(src, 0, n))
			return -1;
		if (forbidden)
			for (const char *f = forbidden; *f; f++)
				if (memchr(src, *f, n))
					return -1;
		memcpy(out, src, n);
		return (long)n;
	default:
		memcpy(out, src, width);
		return (long)width;
	}
}

const char *fmt_field(const void *p, size_t len, char *buf, size_t buflen)
{
	const unsigned char *s = p;
	size_t n = len, i;
	while (n > 0 && s[n - 1] == 0)
		n--;
	for (i = 0; i < n && s[i] >= 0x20 && s[i] < 0x7f; i++)
		;
	if (n > 0 && i == n) {
		snprintf(buf, buflen, "\"%.*s%s\"", (int)(n > 40 ? 40 : n),
		         (const char *)s, n > 40 ? "..." : "");
		return buf;
	}
	size_t show = len > 32 ? 32 : len, o = 2;
	if (buflen < 2 * show + 6)
		show = (buflen - 6) / 2;
	snprintf(buf, buflen, "0x");
	for (i = 0; i < show; i++, o += 2)
		snprintf(buf + o, buflen - o, "%02x", s[i]);
	if (show < len)
		snprintf(buf + o, buflen - o, "...");
	return buf;
}

/* ---- /proc/sysvipc/shm ------------------------------------------------ */

long shm_rows_read(struct shm_row **rows)
{
	FILE *f = fopen("/proc/sysvipc/shm", "r");
	char line[512];
	size_t n = 0, cap = 16;
	struct shm_row *r = malloc(cap * sizeof *r);
	if (!f || !r) {
		int e = f ? ENOMEM : errno;
		if (f)
			fclose(f);
		free(r);
		return -e;
	}
	if (!fgets(line, sizeof line, f)) /* header */
		line[0] = 0;
	while (fgets(line, sizeof line, f)) {
		struct shm_row x;
		long long key, at, dt, ct;
		unsigned long long size, nattch;
		int cpid, lpid;
		unsigned uid, gid, cuid, cgid;
		if (sscanf(line, "%lld %d %o %llu %d %d %llu %u %u %u %u %lld %lld %lld",
		           &key, &x.id, &x.perms, &size, &cpid, &lpid, &nattch, &uid,
		           &gid, &cuid, &cgid, &at, &dt, &ct) != 14)
			continue;
		x.key = (key_t)key;
		x.size = size;
		x.cpid = cpid;
		x.lpid = lpid;
		x.nattch = nattch;
		x.uid = uid;
		x.gid = gid;
		x.cuid = cuid;
		x.cgid = cgid;
		x.atime = at;
		x.dtime = dt;
		x.ctime = ct;
		if (n == cap) {
			struct shm_row *g = realloc(r, 2 * cap * sizeof *r);
			if (!g)
				break;
			r = g;
			cap *= 2;
		}
		r[n++] = x;
	}
	fclose(f);
	*rows = r;
	return (long)n;
}

static int shm_row_find(int by_id, long want, struct shm_row *row)
{
	struct shm_row *rows;
	long n = shm_rows_read(&rows), i;
	int found = -1;
	for (i = 0; i < n; i++)
		if (by_id ? rows[i].id == want : rows[i].key == (key_t)want) {
			*row = rows[i];
			found = 0;
			break;
		}
	if (n >= 0)
		free(rows);
	return found;
}

int shm_row_by_id(int id, struct shm_row *row) { return shm_row_find(1, id, row); }
int shm_row_by_key(key_t key, struct shm_row *row) { return shm_row_find(0, key, row); }

const char *user_name(uid_t uid)
{
	static char buf[96];
	struct passwd *pw = getpwuid(uid);
	if (pw)
		snprintf(buf, sizeof buf, "%s (uid %u)", pw->pw_name, (unsigned)uid);
	else
		snprintf(buf, sizeof buf, "uid %u", (unsigned)uid);
	return buf;
}

const char *group_name(gid_t gid)
{
	static char buf[96];
	struct group *gr = getgrgid(gid);
	if (gr)
		snprintf(buf, sizeof buf, "%s (gid %u)", gr->gr_name, (unsigned)gid);
	else
		snprintf(buf, sizeof buf, "gid %u", (unsigned)gid);
	return buf;
}

int shmid_of_key(key_t key)
{
	struct shm_row row;
	int id = shmget(key, 0, 0);
	if (id >= 0)
		return id;
	return shm_row_by_key(key, &row) == 0 ? row.id : -1;
}

/* ---- The dump's metadata record ---------------------------------------- */

static void hex_of(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = 0;
}

size_t meta_format(const struct table_meta *m, unsigned char *key, char *value)
{
	char e[2 * HASHTABLE_MAX_KEY + 1], d[2 * HASHTABLE_MAX_KEY + 1];
	size_t ml = strlen(META_MAGIC);
	memset(key, 0, m->key_size + 1);
	memcpy(key, META_MAGIC, m->key_size + 1 < ml ? m->key_size + 1 : ml);
	hex_of(m->empty, m->key_size, e);
	hex_of(m->deleted, m->key_size, d);
	int n = snprintf(value, META_MAX_VALUE,
	                 "%s %d key_size=%u value_size=%u capacity=%" PRIu64 " max_load=%.17g "
	                 "mode=%04o empty=%s deleted=%s entries=%" PRIu64 " generation=%" PRIu64,
	                 META_MAGIC, META_VERSION, m->key_size, m->value_size, m->capacity,
	                 m->max_load, m->mode & 0777, e, d, m->entries, m->generation);
	return n < 0 ? 0 : (size_t)n;
}

/* One "name=value" field of a metadata value into buf; 0 or -1. */
static int meta_field(const char *text, const char *name, char *buf, size_t len)
{
	size_t nl = strlen(name);
	for (const char *p = text; (p = strstr(p, name)) != NULL; p += nl) {
		if ((p != text && p[-1] != ' ') || p[nl] != '=')
			continue;
		const char *v = p + nl + 1;
		size_t vl = strcspn(v, " ");
		if (vl >= len)
			return -1;
		memcpy(buf, v, vl);
		buf[vl] = 0;
		return 0;
	}
	return -1;
}

static int meta_hex(const char *text, const char *name, unsigned char *out, uint32_t width)
{
	char buf[2 * HASHTABLE_MAX_KEY + 2];
	unsigned char *p;
	uint32_t len;
	if (meta_field(text, name, buf, sizeof buf) < 0 || parse_hex_key(buf, &p, &len) < 0)
		return -1;
	int ok = len == width;
	if (ok)
		memcpy(out, p, width);
	free(p);
	return ok ? 0 : -1;
}

int meta_parse(const unsigned char *key, size_t klen, const unsigned char *value,
               size_t vlen, struct table_meta *m, char *why, size_t whylen)
{
	char text[META_MAX_VALUE + 1], buf[64];
	size_t ml = strlen(META_MAGIC);
	uint64_t v;
	if (vlen <= ml + 1 || vlen > META_MAX_VALUE || memcmp(value, META_MAGIC " ", ml + 1) != 0)
		return 0;
	memcpy(text, value, vlen);
	text[vlen] = 0;
	if (memchr(text, 0, vlen) || meta_field(text, "key_size", buf, sizeof buf) < 0 ||
	    parse_u64(buf, &v) < 0 || v < 1 || v > HASHTABLE_MAX_KEY || klen != v + 1 ||
	    memcmp(key, META_MAGIC, klen < ml ? klen : ml) != 0)
		return 0; /* not ours: an ordinary record that happens to start so */
	memset(m, 0, sizeof *m);
	m->key_size = (uint32_t)v;
	const char *bad = NULL;
	if (strncmp(text + ml + 1, "1 ", 2) != 0)
		bad = "version (this shmkv-load reads version 1)";
	else if (meta_field(text, "value_size", buf, sizeof buf) < 0 || parse_u64(buf, &v) < 0 ||
	         v > HASHTABLE_MAX_VALUE)
		bad = "value_size";
	else if ((m->value_size = (uint32_t)v, meta_field(text, "capacity", buf, sizeof buf) < 0) ||
	         parse_u64(buf, &m->capacity) < 0)
		bad = "capacity";
	else if (meta_field(text, "max_load", buf, sizeof buf) < 0 || parse_load(buf, &m->max_load) < 0)
		bad = "max_load";
	else if (meta_field(text, "mode", buf, sizeof buf) < 0 || parse_mode(buf, &m->mode) < 0)
		bad = "mode";
	else if (meta_hex(text, "empty", m->empty, m->key_size) < 0)
		bad = "empty";
	else if (meta_hex(text, "deleted", m->deleted, m->key_size) < 0)
		bad = "deleted";
	if (bad) {
		snprintf(why, whylen, "a malformed %s record (field %s): give the table's geometry "
		         "on the command line, or dump the table again", META_MAGIC, bad);
		return -1;
	}
	if (meta_field(text, "entries", buf, sizeof buf) == 0)
		parse_u64(buf, &m->entries);
	if (meta_field(text, "generation", buf, sizeof buf) == 0)
		parse_u64(buf, &m->generation);
	return 1;
}

/* ---- A table's segments ----------------------------------------------- */

long table_segment_list(struct hashtable *h, struct hashtable_segment_info **out)
{
	/* A commit may add a segment between the two calls: retry a few times
	 * with room to spare. */
	size_t cap = 8;
	for (int tries = 0; tries < 8; tries++) {
		struct hashtable_segment_info *v = calloc(cap, sizeof *v);
		if (!v)
			return -ENOMEM;
		long n = hashtable_segments(h, v, cap);
		if (n < 0) {
			free(v);
			return n;
		}
		if ((size_t)n <= cap) {
			*out = v;
			return n;
		}
		free(v);
		cap = (size_t)n + 4;
	}
	return -EAGAIN;
}

/* Whether the process's maps hold a SysV mapping of shmid. */
static int maps_hold(const char *pid, int shmid)
{
	char path[64], line[512];
	snprintf(path, sizeof path, "/proc/%s/maps", pid);
	FILE *f = fopen(path, "r");
	int found = 0;
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned long ino;
		if (strstr(line, "/SYSV") && sscanf(line, "%*s %*s %*s %*s %lu", &ino) == 1 &&
		    ino == (unsigned long)shmid)
			found = 1;
	}
	fclose(f);
	return found;
}

int shm_holders(int shmid, pid_t *pids, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;
	pid_t self = getpid();
	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9' ||
		    strspn(e->d_name, "0123456789") != strlen(e->d_name))
			continue;
		pid_t p = (pid_t)atol(e->d_name);
		if (p == self || !maps_hold(e->d_name, shmid))
			continue;
		if (n < max)
			pids[n] = p;
		n++;
	}
	closedir(d);
	return n;
}

const char *segment_role_name(int role)
{
	switch (role) {
	case HASHTABLE_SEG_ROOT: return "root";
	case HASHTABLE_SEG_CURRENT: return "current";
	case HASHTABLE_SEG_RETIRED: return "retired";
	case HASHTABLE_SEG_PENDING: return "pending";
	default: return "?";
	}
}

/* ---- Table names ------------------------------------------------------ */

int table_name_parse(const char *arg, struct table_name *tn)
{
	memset(tn, 0, sizeof *tn);
	tn->arg = arg;
	if (arg[0] == '0' && (arg[1] == 'x' || arg[1] == 'X')) {
		uint64_t v;
		if (parse_u64(arg, &v) < 0 || v > UINT32_MAX) {
			msg("%s: not a valid IPC key (0x followed by up to 8 hex digits)", arg);
			return RC_USAGE;
		}
		tn->key = (key_t)(uint32_t)v;
		if (tn->key == IPC_PRIVATE) {
			msg("%s: key 0 is IPC_PRIVATE and cannot name a table", arg);
			return RC_USAGE;
		}
		return RC_OK;
	}
	if (!*arg) {
		msg("empty table name");
		return RC_USAGE;
	}
	tn->path = arg;
	tn->key = ftok(arg, 1);
	if (tn->key == (key_t)-1)
		tn->ftok_errno = errno;
	return RC_OK;
}

int exit_code_for(int rc)
{
	switch (rc) {
	case -ENOENT: return RC_NOTFOUND;
	case HASHTABLE_ECORRUPT: return RC_DATA;
	default: return RC_REFUSED;
	}
}

/* Reports a path that ftok() could not name.  Returns the exit code. */
static int explain_ftok(const struct table_name *tn)
{
	if (tn->ftok_errno == ENOENT) {
		msg("%s: no such file; a table is named by ftok(PATH, 1) of an existing "
		    "file, or by a numeric key 0x...", tn->path);
		return RC_NOTFOUND;
	}
	msg("%s: cannot name a table after it: %s", tn->path, strerror(tn->ftok_errno));
	return RC_REFUSED;
}

/* ---- Advice ----------------------------------------------------------- */

static void explain_exists(const struct table_name *tn)
{
	int id = shmid_of_key(tn->key);
	advise("use the existing table (id %d), or remove it first:", id);
	advise("  shmkv rm %s   (or: ipcrm -m %d)", tn->arg, id);
}

static void explain_not_shmkv(const struct table_name *tn)
{
	struct shm_row row;
	if (shm_row_by_key(tn->key, &row) < 0)
		return;
	if (hashtable_unfinished_key(tn->key) == 1) { /* its creator died mid-way */
		advise("`shmkv rm %s` removes the unfinished table", tn->arg);
		return;
	}
	advise("segment id %d at key 0x%08x (%" PRIu64 " bytes, owner %s) is not a shmkv "
	       "table; name the table differently, or, only if that segment is unused, "
	       "ipcrm -m %d", row.id, (unsigned)tn->key, row.size, user_name(row.uid), row.id);
}

/* Reports a failed open or create: the library's own diagnosis
 * (hashtable_last_error: the limit or the owner and mode, and the command
 * that fixes it), then what only the tool knows. */
static int explain(const char *verb, const struct table_name *tn, int rc)
{
	const char *libtext = hashtable_last_error();
	if (tn->path)
		msg("%s: cannot %s table (key 0x%08x): %s", tn->arg, verb,
		    (unsigned)tn->key, libtext);
	else
		msg("%s: cannot %s table: %s", tn->arg, verb, libtext);
	switch (rc) {
	case -ENOENT:
		advise("no table at key 0x%08x; `shmkv ls` lists the tables on this host",
		       (unsigned)tn->key);
		break;
	case -EPROTO:
		explain_not_shmkv(tn);
		break;
	case -EEXIST:
		explain_exists(tn);
		break;
	case HASHTABLE_EDEADWRITER:
		advise("a writer died mid-update; `shmkv verify --repair %s` completes its "
		       "change", tn->arg);
		break;
	default:
		break;
	}
	return exit_code_for(rc);
}

int table_open(const struct table_name *tn, int flags, struct hashtable **out)
{
	if (tn->key == (key_t)-1)
		return explain_ftok(tn);
	struct hashtable *h = tn->path ? hashtable_open(tn->path, flags)
	                               : hashtable_open_key(tn->key, flags);
	if (!h)
		return explain("open", tn, -errno);
	*out = h;
	return RC_OK;
}

int table_create(const struct table_name *tn, struct hashtable_config *cfg,
                 struct hashtable **out)
{
	if (tn->key == (key_t)-1)
		return explain_ftok(tn);
	cfg->path = tn->path;
	cfg->ipc_key = tn->path ? 0 : tn->key;
	cfg->flags |= HASHTABLE_EXCL;
	uint64_t size = cfg->capacity;
	if (!size)
		size = hashtable_segment_size(cfg->entries,
		                              cfg->max_load ? cfg->max_load : DEFAULT_MAX_LOAD,
		                              cfg->key_size, cfg->value_size);
	if (!size) {
		msg("%s: a table of %" PRIu64 " entries of %u+%u bytes at load %g is too large",
		    tn->arg, cfg->entries, cfg->key_size, cfg->value_size, cfg->max_load);
		return RC_USAGE;
	}
	warn_rmid_forced(tn->arg); /* before: the library's create may itself fail of it */
	int rc = hashtable_create_config(cfg, out);
	if (rc < 0)
		return explain("create", tn, rc);
	return RC_OK;
}

void warn_name_mismatch(const struct table_name *tn, const struct hashtable_stats *st)
{
	if (st->name_mismatch)
		msg("%s: warning: this table was created for another file (device %" PRIu64
		    ", inode %" PRIu64 "): the file was deleted and recreated, or its ftok key "
		    "collides with that file's; check before writing", tn->arg, st->name_dev,
		    st->name_ino);
}

int explain_widths(const struct table_name *tn, struct hashtable *h,
                   uint32_t want_key, uint32_t want_value)
{
	struct hashtable_stats st;
	hashtable_stats(h, &st);
	msg("%s: the table exists with key width %u and value width %u, not %u and %u",
	    tn->arg, st.key_size, st.value_size, want_key, want_value);
	advise("use those widths, or remove the table first (its contents are lost):");
	advise("  shmkv rm %s   (or: ipcrm -m %d)", tn->arg, st.shmid);
	return RC_REFUSED;
}

/* ---- Operator traps ---------------------------------------------------- */

void warn_rmid_forced(const char *table)
{
	char why[512];
	if (hashtable_host_check(why, sizeof why) == 1)
		msg("%s: warning: %s", table, why);
}

/* The lowest uid of a regular user: UID_MIN in /etc/login.defs, else 1000. */
static uid_t regular_uid_min(void)
{
	FILE *f = fopen("/etc/login.defs", "r");
	char line[256];
	unsigned long v = 1000;
	if (!f)
		return 1000;
	while (fgets(line, sizeof line, f)) {
		unsigned long x;
		if (sscanf(line, " UID_MIN %lu", &x) == 1)
			v = x;
	}
	fclose(f);
	return (uid_t)v;
}

void warn_remove_ipc(const char *table, int shmid)
{
	struct shm_row row;
	struct stat st;
	if (stat("/run/systemd/system", &st) != 0 || !S_ISDIR(st.st_mode))
		return; /* not booted with systemd: no logind */
	if (shm_row_by_id(shmid, &row) < 0 || row.uid < regular_uid_min() || row.uid == 65534)
		return;
	msg("%s: warning: the table belongs to %s, a regular user: systemd-logind "
	    "(RemoveIPC=yes, its default) removes it when that user's last session ends",
	    table, user_name(row.uid));
	advise("set RemoveIPC=no in /etc/systemd/logind.conf and run `systemctl restart "
	       "systemd-logind`, or create tables as a system user (useradd --system)");
}
