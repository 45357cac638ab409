/* dns/resolver.h - asynchronous peer resolution on libunbound, driven by the libev loop.
 * SPDX-License-Identifier: ISC
 * route.c asks for a remote domain's connection targets; the resolver does the
 * _xmpp-server._tcp (and _xmpps-server._tcp) SRV lookups, orders targets by priority
 * and weight (srv.c), resolves each target's AAAA/A and hands back one ordered list of
 * socket addresses. With no SRV records at all it falls back to the domain's own
 * AAAA/A on port 5269 (RFC 6120 §3.2). Each answer carries its DNSSEC status (bogus
 * never yields targets). Answers are cached (dns/cache.c, kept on disk in the state
 * directory, served stale when resolution fails) and concurrent lookups share queries. */
#ifndef QF_RESOLVER_H
#define QF_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../core/config.h"

struct ev_loop;
struct resolver;
struct resolve_req;

enum dns_security {
	DNS_INSECURE = 0,   /* no DNSSEC, or an unsigned zone */
	DNS_SECURE,         /* validated */
	DNS_BOGUS,          /* validation failed: never connect */
};

enum resolve_status {
	RESOLVE_OK = 0,       /* n_targets > 0 */
	RESOLVE_NOTFOUND,     /* NXDOMAIN or no addresses at all */
	RESOLVE_NOSERVICE,    /* SRV target "." : the domain offers no s2s service */
	RESOLVE_BOGUS,        /* DNSSEC validation failed */
	RESOLVE_SERVFAIL,     /* resolver failure */
	RESOLVE_TIMEOUT,      /* no answer within the configured timeout */
};

struct resolve_target {
	char     host[256];      /* SRV target (or the domain itself on fallback) */
	uint16_t port;
	bool     direct_tls;     /* from _xmpps-server: TLS from the first byte (XEP-0368) */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	enum dns_security security;  /* weakest of the SRV and address answers */
};

struct resolve_result {
	enum resolve_status status;
	const char *why;               /* human-readable detail (borrowed), e.g. why_bogus */
	size_t n_targets;
	struct resolve_target *targets; /* in connection order; borrowed for the callback */
	bool stale;                    /* some answer was served stale from the cache (RFC
	                                * 8767): resolution failed, the targets carry the
	                                * security recorded with the answer, never upgraded */
};

/* Called exactly once per request unless it was cancelled. */
typedef void (*resolve_cb)(void *arg, const struct resolve_result *res);

/* Create the resolver on loop with forwarders / trust anchor / timeout from cfg.
 * Returns NULL (logged) on failure. */
struct resolver *resolver_new(struct ev_loop *loop, const struct config *cfg);
void resolver_free(struct resolver *r);   /* cancels pending requests without callbacks */
/* Start resolving domain. Returns a handle (valid until the callback runs or
 * resolver_cancel) or NULL on immediate failure (logged). The callback never runs
 * from inside this call. */
struct resolve_req *resolver_lookup(struct resolver *r, const char *domain,
    resolve_cb cb, void *arg);
void resolver_cancel(struct resolve_req *req);
const char *resolve_status_str(enum resolve_status st);

/* Counters for the status socket. Cache counters count (name, type) questions:
 * hits answered fresh from the cache, misses that needed (or joined) a query,
 * stale_served answers served stale after a failure or the stale timer, negative
 * NODATA/NXDOMAIN answers served from the cache (RFC 2308). */
struct resolver_stats {
	unsigned long queries_sent, lookups, failures, bogus;
	unsigned long hits, misses, stale_served, negative, coalesced;
	unsigned long entries;         /* answers in the cache now */
};
void resolver_get_stats(const struct resolver *r, struct resolver_stats *out);

struct status;
/* Register "show dns" (counters and up to 200 cache entries as name=value lines) and
 * "flush dns [NAME]" (drops every answer, or NAME's and those below it; answers
 * "flushed=N") on the status socket. Returns 0 or -1. r must outlive st's use of it. */
int resolver_register_status(struct resolver *r, struct status *st);
/* Drop cached answers as "flush dns" does (name NULL: all) and schedule a save.
 * Returns how many went. */
size_t resolver_flush(struct resolver *r, const char *name);
/* Write the cache file now (it is also written at most once a second after changes
 * and by resolver_free). Returns 0, or -1 (logged, or no cache file configured). */
int resolver_save_cache(struct resolver *r);

#endif
