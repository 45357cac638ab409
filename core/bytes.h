/* core/bytes.h - big-endian integers in byte buffers, for the state files on disk.
 * SPDX-License-Identifier: ISC
 * The DNS cache (dns/cache.c), the TLS session store (tls/store.c) and the ticket key
 * and peer files (tls/ticketkeys.c, tls/ticketpeers.c) write their records in network
 * byte order with these; callers check lengths before reading. */
#ifndef QF_BYTES_H
#define QF_BYTES_H

#include <stdint.h>

static inline void
put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static inline void
put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static inline void
put_u64(unsigned char *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

static inline uint16_t
get_u16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t
get_u64(const unsigned char *p)
{
	return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

#endif
