/* dns/srv.h - RFC 2782 SRV target ordering: priority, then weighted random selection.
 * SPDX-License-Identifier: ISC
 * Pure functions used by resolver.c and its unit tests; the random source is injected so
 * tests can seed it. */
#ifndef QF_SRV_H
#define QF_SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct srv_record {
	uint16_t priority, weight, port;
	char     target[256];   /* without trailing dot; "." target is represented as "" */
	bool     direct_tls;    /* came from _xmpps-server */
};

/* Returns a random number in [0, bound) ; bound > 0. */
typedef uint32_t (*srv_rand_fn)(void *arg, uint32_t bound);

/* Reorder recs in place into connection order. */
void srv_order(struct srv_record *recs, size_t n, srv_rand_fn rnd, void *rnd_arg);
/* Parse SRV rdata (RFC 2782 wire format, with uncompressed target as libunbound returns
 * it). Returns 0 or -1 on malformed data. */
int srv_parse_rdata(const unsigned char *rdata, size_t len, struct srv_record *out);

#endif
