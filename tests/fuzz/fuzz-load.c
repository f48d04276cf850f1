/* libFuzzer target: shmkv-load's input parsers (tsv, cdb, bin; text, raw,
 * hex, u32, u64 fields), with no table.
 *
 * The parsers are static in tools/shmkv-load.c, so this file includes it
 * with its main() renamed (nothing in the tool changes) and runs what load()
 * runs before the table is touched: format detection, the widths (from the
 * options or a prescan of the input), sentinels, the array-or-reparse
 * choice, the parse pass, and a pass over the good records.
 *
 * The input's first five bytes are the options:
 *   [0] format: low 2 bits auto, tsv, cdb, bin; bit 2: --skip-bad
 *   [1] key encoding, [2] value encoding: default, raw, text, hex, u32, u64
 *   [3] key width 1..64, or 0: implied by the encoding or the input
 *   [4] value width 0..64, or 0xff: implied
 * The rest is the input file, copied to the end of a private mapping that a
 * PROT_NONE page follows, so that a read past its end faults (the tool maps
 * its input files, and releases parsed pages with madvise, which must not
 * touch libFuzzer's buffer). */
#define main shmkv_load_main
#include "../../tools/shmkv-load.c"
#undef main

#include <stdint.h>

static const enum enc encodings[] = { ENC_DEFAULT, ENC_RAW, ENC_TEXT, ENC_HEX, ENC_U32, ENC_U64 };

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	tool_name = "shmkv-load";
	/* The tool's messages about bad input would flood the fuzzer's output;
	 * sanitizer reports go to file descriptor 2 directly and still show. */
	FILE *null = fopen("/dev/null", "w");
	if (null)
		stderr = null;
	return 0;
}

/* Places data at the end of a mapping followed by an inaccessible page. */
static int input_map(struct input *in, const uint8_t *data, size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t bytes = (size + page - 1) / page * page + page;
	unsigned char *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -1;
	mprotect(m + bytes - page, page, PROT_NONE);
	in->name = "fuzz-input";
	in->base = m;
	in->base_len = bytes;
	in->data = m + bytes - page - size;
	in->len = size;
	if (size)
		memcpy(in->data, data, size);
	mprotect(m, bytes - page, PROT_READ); /* the tool only reads its input */
	return 0;
}

static int count_record(struct loader *L, const unsigned char *rec, const struct where *w,
                        void *ctx)
{
	(void)w;
	uint64_t *n = ctx;
	*n += rec[0] != 0 || L->rs > 0;
	return 0;
}

static void parse_all(struct loader *L)
{
	L->fmt = L->o.fmt != FMT_AUTO ? L->o.fmt : detect_format(L);
	if (L->o.f.kenc == ENC_DEFAULT)
		L->o.f.kenc = L->fmt == FMT_TSV ? ENC_TEXT : ENC_RAW;
	if (L->o.f.venc == ENC_DEFAULT)
		L->o.f.venc = L->fmt == FMT_TSV ? ENC_TEXT : ENC_RAW;
	if (L->fmt == FMT_BIN && (L->o.f.kenc != ENC_RAW || L->o.f.venc != ENC_RAW))
		return;
	if (setup_widths(L) != RC_OK || setup_sentinels(L) != RC_OK)
		return;
	if ((L->scratch = malloc(L->rs ? L->rs : 1)) == NULL)
		return;
	choose_mode(L);
	parse_pass(L);
	uint64_t n = 0;
	if (!L->stopped)
		for_each_good(L, count_record, &n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5 || size > (1u << 20))
		return 0;
	struct loader L;
	memset(&L, 0, sizeof L);
	L.o.fmt = (enum fmt)(data[0] & 3);
	L.o.skip_bad = (data[0] >> 2) & 1;
	L.o.f.kenc = encodings[data[1] % 6];
	L.o.f.venc = encodings[data[2] % 6];
	if (data[3]) {
		L.o.f.ks = 1 + data[3] % 64u;
		L.o.f.ks_set = 1;
	}
	if (data[4] != 0xff) {
		L.o.f.vs = data[4] % 65u;
		L.o.f.vs_set = 1;
	}
	L.o.quiet = 1;
	L.o.co.mode = 0600;
	L.tn.arg = "fuzz-table";
	L.in = calloc(1, sizeof *L.in);
	if (!L.in || input_map(L.in, data + 5, size - 5) != 0) {
		free(L.in);
		return 0;
	}
	L.nin = 1;
	L.in_bytes = size - 5;
	parse_all(&L);
	cleanup(&L, 0);
	return 0;
}
