/* The key hashes of twemproxy (nutcracker), for `shmkv-load --shard`.
 *
 * Written from twemproxy's definitions (src/hashkit/nc_fnv.c, nc_crc32.c)
 * so that shard I of N holds exactly the keys twemproxy's `distribution:
 * modula` sends to its I-th server: hash(key) % N == I, the servers counted
 * in the order nutcracker.yml lists them, each of weight 1.  twemproxy
 * widens each key byte through `char`, which is signed on x86 and unsigned
 * on ARM: the FNV hashes of keys holding bytes >= 0x80 differ between the
 * two, so these widen through `char` too and match a twemproxy built for
 * the same architecture (the CRCs mask the byte and do not care). */
#ifndef SHMKV_TOOLS_TWEMPROXY_HASH_H
#define SHMKV_TOOLS_TWEMPROXY_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint32_t (*twem_hash_fn)(const unsigned char *key, size_t len);

static uint32_t twem_fnv1_64(const unsigned char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h *= 0x100000001b3ull;
		h ^= (uint64_t)(char)key[i];
	}
	return (uint32_t)h;
}

/* Despite its name, 32-bit arithmetic on the 64-bit constants, truncated:
 * twemproxy's definition, which is what its routing uses. */
static uint32_t twem_fnv1a_64(const unsigned char *key, size_t len)
{
	uint32_t h = (uint32_t)0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (uint32_t)(char)key[i];
		h *= (uint32_t)0x100000001b3ull;
	}
	return h;
}

static uint32_t twem_fnv1_32(const unsigned char *key, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h *= 16777619u;
		h ^= (uint32_t)(char)key[i];
	}
	return h;
}

static uint32_t twem_fnv1a_32(const unsigned char *key, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h ^= (uint32_t)(char)key[i];
		h *= 16777619u;
	}
	return h;
}

/* The reflected CRC-32 (polynomial 0xedb88320), one bit at a time: a key is
 * hashed once per load, so no table is needed. */
static uint32_t twem_crc32_raw(const unsigned char *key, size_t len)
{
	uint32_t crc = ~0u;
	for (size_t i = 0; i < len; i++) {
		crc ^= key[i];
		for (int b = 0; b < 8; b++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
	}
	return crc;
}

/* crc32a: the standard CRC-32. */
static uint32_t twem_crc32a(const unsigned char *key, size_t len)
{
	return ~twem_crc32_raw(key, len);
}

/* crc32: libmemcached's variant, 15 bits of the CRC. */
static uint32_t twem_crc32(const unsigned char *key, size_t len)
{
	return (~twem_crc32_raw(key, len) >> 16) & 0x7fff;
}

static const struct twem_hash {
	const char *name;
	twem_hash_fn fn;
} twem_hashes[] = {
	{ "fnv1a_64", twem_fnv1a_64 }, { "fnv1_64", twem_fnv1_64 },
	{ "fnv1a_32", twem_fnv1a_32 }, { "fnv1_32", twem_fnv1_32 },
	{ "crc32a", twem_crc32a },     { "crc32", twem_crc32 },
};

#define TWEM_HASH_NAMES "fnv1a_64, fnv1_64, fnv1a_32, fnv1_32, crc32a, crc32"

/* The hash named name, or NULL. */
static inline twem_hash_fn twem_hash_find(const char *name)
{
	for (size_t i = 0; i < sizeof twem_hashes / sizeof twem_hashes[0]; i++)
		if (!strcmp(name, twem_hashes[i].name))
			return twem_hashes[i].fn;
	return NULL;
}

#endif
