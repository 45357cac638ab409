/* core/namehash.h - the case-insensitive hash of a domain name, for the name indexes.
 * SPDX-License-Identifier: ISC
 * FNV-1a over the ASCII-lower-cased bytes (domain names are ASCII once validated). Used
 * by the configuration's domain and peer indexes (core/config.c), the TLS domain index
 * (tls/ctx.c) and peer capabilities (s2s/peercaps.c): a lookup compares the hash, then
 * the name with strcasecmp. */
#ifndef QF_NAMEHASH_H
#define QF_NAMEHASH_H

#include <stdint.h>

static inline uint32_t
name_hash(const char *name)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
		h = (h ^ (uint32_t)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p)) * 16777619u;
	return h;
}

#endif
