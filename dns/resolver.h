/* dns/resolver.h - asynchronous peer resolution on libunbound, driven by the libev loop.
 * SPDX-License-Identifier: ISC
 * route.c asks for a remote domain's connection targets; the resolver does the
 * _xmpp-server._tcp (and _xmpps-server._tcp) SRV lookups, orders targets by priority
 * and weight (srv.c), resolves each target's AAAA/A and hands back one ordered list of
 * socket addresses. With no SRV records at all it falls back to the domain's own
 * AAAA/A on port 5269 (RFC 6120 §3.2). Each answer carries its DNSSEC status (bogus
 * never yields targets). For targets whose SRV and address answers are secure the TLSA
 * RRset at _PORT._tcp.TARGET (RFC 7673) is looked up too and handed over per target
 * for DANE. Answers are cached (dns/cache.c, kept on disk in the state
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

/* DANE (RFC 7673): what the TLSA lookup at _PORT._tcp.HOST said for a target. */
enum resolve_tlsa_status {
	RESOLVE_TLSA_NONE = 0,   /* not asked: the target's SRV/address answers are not
	                          * secure (or no validation): PKIX as before */
	RESOLVE_TLSA_INSECURE,   /* answered, but not DNSSEC-secure: ignored, PKIX */
	RESOLVE_TLSA_SECURE,     /* validated; n_tlsa may be 0 (secure denial: PKIX) */
	RESOLVE_TLSA_BOGUS,      /* validation failed, or the lookup failed (RFC 7673 §3:
	                          * indeterminate): never connect to this target */
};

#define RESOLVE_TLSA_MAX      8    /* records kept per target (more are dropped) */
#define RESOLVE_TLSA_DATA_MAX 256  /* association data bytes kept per record */

/* One TLSA record (RFC 6698 §2.1). Data longer than RESOLVE_TLSA_DATA_MAX (a full
 * certificate, matching type 0) keeps its first bytes and truncated is set: it still
 * counts as a usable record but can never match (fail closed). */
struct resolve_tlsa {
	uint8_t  usage;          /* 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE */
	uint8_t  selector;       /* 0 full certificate, 1 SubjectPublicKeyInfo */
	uint8_t  mtype;          /* 0 exact, 1 SHA-256, 2 SHA-512 */
	bool     truncated;
	uint16_t len;            /* bytes in data */
	unsigned char data[RESOLVE_TLSA_DATA_MAX];
};

struct resolve_target {
	char     host[256];      /* SRV target (or the domain itself on fallback) */
	uint16_t port;
	bool     direct_tls;     /* from _xmpps-server: TLS from the first byte (XEP-0368) */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	enum dns_security security;  /* weakest of the SRV and address answers */
	/* TLSA at _port._tcp.host, asked only when security is DNS_SECURE */
	enum resolve_tlsa_status tlsa_status;
	size_t   n_tlsa;                         /* records in tlsa */
	struct resolve_tlsa tlsa[RESOLVE_TLSA_MAX];
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
const char *resolve_tlsa_status_str(enum resolve_tlsa_status st);
/* Parse TLSA rdata (RFC 6698 wire format: usage, selector, matching type, data) into
 * out. Returns 0, or -1 when shorter than 4 bytes. Data beyond RESOLVE_TLSA_DATA_MAX
 * is cut and out->truncated set. */
int resolver_parse_tlsa(const unsigned char *rdata, size_t len, struct resolve_tlsa *out);

/* Counters for the status socket. Cache counters count (name, type) questions:
 * hits answered fresh from the cache, misses that needed (or joined) a query,
 * stale_served answers served stale after a failure or the stale timer, negative
 * NODATA/NXDOMAIN answers served from the cache (RFC 2308). */
struct resolver_stats {
	unsigned long queries_sent, lookups, failures, bogus;
	unsigned long hits, misses, stale_served, negative, coalesced;
	unsigned long queued;          /* questions that waited for a slot (resolver { queries }) */
	unsigned long entries;         /* answers in the cache now */
};
void resolver_get_stats(const struct resolver *r, struct resolver_stats *out);
/* Emit show dns's counters and gauges as samples (a sample_emit_fn; arg: the resolver). */
struct sample_sink;
void resolver_emit(void *arg, struct sample_sink *sink);

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
