/* s2s/peercaps.h - what each remote server supports, remembered on disk with a TTL.
 * SPDX-License-Identifier: ISC
 * stream.c learns a peer's capabilities from its features and from what worked (SASL
 * EXTERNAL accepted, dialback accepted); link.c reads them before connecting, to decide
 * how much of the stream set-up it may pipeline (XEP-0305). An entry is forgotten when a
 * connection built on it fails, so a peer that stops supporting something is re-learnt. */
#ifndef QF_PEERCAPS_H
#define QF_PEERCAPS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct ev_loop;
struct buf;

struct peercaps {
	bool     pipelining;    /* advertised <pipelining xmlns='urn:xmpp:features:pipelining'/> */
	bool     external;      /* accepted our SASL EXTERNAL */
	bool     dialback;      /* accepted our dialback */
	bool     starttls;      /* offered STARTTLS */
	uint8_t  tls_rounds;    /* round trips its TLS handshake took (1 for TLS 1.3) */
	bool     bidi;          /* offered XEP-0288 bidi (a pipelined set-up asks for it) */
	time_t   expires;       /* wall clock */
};

/* Load path (may be missing), keep entries for ttl_s seconds. Returns 0; a corrupt file
 * is logged and whatever could be read is kept. path NULL = memory only. */
int peercaps_init(struct ev_loop *loop, const char *path, uint32_t ttl_s);
/* The entry for domain, or NULL when unknown or expired (borrowed). */
const struct peercaps *peercaps_get(const char *domain);
/* Record what a successful set-up showed; saved to disk soon after. */
void peercaps_learn(const char *domain, const struct peercaps *caps);
/* A set-up that relied on the entry failed: drop it (logged with why). */
void peercaps_forget(const char *domain, const char *why);
/* Status lines peercaps.<domain>.pipelining=... */
void peercaps_format(struct buf *out);
/* Save now and free everything. */
void peercaps_free(void);

#endif
