/* libFuzzer target: shmkv-serve's request parser (resp_parse), alone.
 *
 * The parser is static in tools/shmkv-serve.c, so this file includes it with
 * its main() renamed, as fuzz-load.c does for shmkv-load.  The input is a
 * client's byte stream: it is parsed request after request, as the server
 * does, from a heap copy of exactly its size (so that ASan sees any read
 * past its end), with small limits so the limit paths are reached too.
 * Checked: every argument lies inside the buffer, no request takes more
 * bytes than are there, and a buffer the parser calls incomplete is also
 * incomplete (or an error) when cut shorter: a request is never taken from
 * a prefix of itself. */
#define main shmkv_serve_main
#include "../../tools/shmkv-serve.c"
#undef main

#include <assert.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct resp_arg args[64];
	const struct resp_limits lim = { .max_args = 64, .max_bulk = 512, .max_inline = 256 };
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	size_t off = 0;
	while (off < size) {
		size_t argc = 0;
		const char *err = NULL;
		long n = resp_parse(buf + off, size - off, args, &argc, &lim, &err, NULL);
		if (n == RESP_ERROR) {
			assert(err != NULL);
			break;
		}
		if (n == RESP_INCOMPLETE) {
			/* any shorter prefix is incomplete or an error too */
			for (size_t cut = 0; cut < size - off; cut += 1 + (size - off) / 16) {
				long m = resp_parse(buf + off, cut, args, &argc, &lim, &err, NULL);
				assert(m == RESP_INCOMPLETE || m == RESP_ERROR);
			}
			break;
		}
		assert(n > 0 && (size_t)n <= size - off);
		assert(argc <= lim.max_args);
		for (size_t i = 0; i < argc; i++) {
			assert(args[i].p >= buf + off && args[i].p + args[i].len <= buf + off + n);
			assert(args[i].len <= lim.max_bulk || buf[off] != '*');
		}
		/* the same request arriving in pieces, parsed with progress carried
		 * over: incomplete until its last byte, then the same answer */
		struct resp_progress pg = {0};
		size_t want_argc = argc;
		for (size_t cut = 1; cut < (size_t)n; cut += 1 + (size_t)n / 8) {
			size_t c2;
			long m = resp_parse(buf + off, cut, args, &c2, &lim, &err, &pg);
			assert(m == RESP_INCOMPLETE);
			assert(pg.off <= cut);
		}
		size_t c2;
		long m = resp_parse(buf + off, (size_t)n, args, &c2, &lim, &err, &pg);
		assert(m == n && c2 == want_argc && pg.off == 0);
		for (size_t i = 0; i < c2; i++)
			assert(args[i].p >= buf + off && args[i].p + args[i].len <= buf + off + n);
		off += (size_t)n;
	}
	free(buf);
	return 0;
}
