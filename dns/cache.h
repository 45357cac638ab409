/* dns/cache.h - the DNS answer cache: in memory, with TTLs, serve-stale and a disk file.
 * SPDX-License-Identifier: ISC
 * resolver.c keeps every (name, type) answer here with its DNSSEC status, asks it before
 * sending a query, and saves it to STATE_DIR/dns.cache so a restarted quickfed needs no
 * query for answers that are still fresh. Bogus answers are never stored. The file is
 * versioned, bounded and checksummed per entry; a broken or hostile file is logged and
 * ignored (entry by entry where possible). Times are wall-clock seconds (time(NULL)). */
#ifndef QF_DNS_CACHE_H
#define QF_DNS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/resolver.h"

#define DNSCACHE_MAX_RR      32       /* records kept per answer */
#define DNSCACHE_MAX_RDLEN   1024     /* bytes per record's rdata */
#define DNSCACHE_VERSION     1        /* file format version */
#define DNSCACHE_MAX_FILE    (32 * 1024 * 1024)  /* bytes read or written at most */

struct dnscache;

/* What an answer said. */
enum dnscache_kind {
	DNSCACHE_DATA = 0,     /* records of the asked type (n_rr > 0) */
	DNSCACHE_NODATA,       /* the name exists without records of that type (RFC 2308) */
	DNSCACHE_NXDOMAIN,     /* the name does not exist (RFC 2308) */
};

/* One cached answer. Records are stored back to back in data. */
struct dnscache_entry {
	char      name[256];          /* lower case, no trailing dot */
	uint16_t  qtype;              /* RR type asked (1 A, 28 AAAA, 33 SRV, ...) */
	enum dnscache_kind kind;
	enum dns_security security;   /* DNS_SECURE or DNS_INSECURE, never DNS_BOGUS */
	int64_t   expires;            /* wall-clock second the answer stops being fresh */
	uint32_t  ttl;                /* TTL in seconds after clamping */
	size_t    n_rr;
	uint16_t  rdlen[DNSCACHE_MAX_RR];
	uint32_t  rdoff[DNSCACHE_MAX_RR];   /* offset of each record in data */
	unsigned char *data;          /* owned; NULL when n_rr == 0 */
	size_t    data_len;
};

/* Counters kept by the cache itself. */
struct dnscache_stats {
	unsigned long stored, evicted, load_ok, load_rejected;
};

/* Create an empty cache of at most max_entries (>= 1) answers. TTLs are clamped to
 * [min_ttl, max_ttl]; expired answers are kept for serve-stale up to max_stale seconds
 * after their expiry. Returns NULL when out of memory. */
struct dnscache *dnscache_new(size_t max_entries, uint32_t min_ttl, uint32_t max_ttl,
    uint32_t max_stale);
void dnscache_free(struct dnscache *c);

/* Fill e for (name, qtype): name is normalized (lower case, trailing dot removed).
 * Returns -1 when name is not a valid host/owner name. e is cleared first (data freed). */
int dnscache_entry_init(struct dnscache_entry *e, const char *name, uint16_t qtype,
    enum dnscache_kind kind, enum dns_security security, uint32_t ttl);
/* Append one record; returns -1 when full, too long or out of memory. */
int dnscache_entry_add_rr(struct dnscache_entry *e, const void *rdata, size_t len);
/* Release e's data (e itself is the caller's); e is empty on exit. */
void dnscache_entry_clear(struct dnscache_entry *e);
/* A heap copy of e (caller frees with dnscache_entry_free), NULL when out of memory. */
struct dnscache_entry *dnscache_entry_dup(const struct dnscache_entry *e);
void dnscache_entry_free(struct dnscache_entry *e);

/* Store a copy of e (e->ttl is the answer's TTL; it is clamped and expires is set from
 * now). Replaces an older answer for the same (name, qtype); evicts the answer closest to
 * the end of its life when full. Refuses (-1) bogus or inconsistent entries. */
int dnscache_put(struct dnscache *c, const struct dnscache_entry *e, int64_t now);
/* The answer for (name, qtype): fresh (*stale = false), or expired less than max_stale
 * seconds ago (*stale = true, only when allow_stale), else NULL. Borrowed until the next
 * call that changes the cache. */
const struct dnscache_entry *dnscache_get(struct dnscache *c, const char *name,
    uint16_t qtype, int64_t now, bool allow_stale, bool *stale);
/* Drop every answer (name NULL or "") or those for name and names below it
 * (_xmpp-server._tcp.NAME, xmpp.NAME). Returns how many went. */
size_t dnscache_flush(struct dnscache *c, const char *name);
/* Drop answers too old even for serve-stale. Returns how many went. */
size_t dnscache_prune(struct dnscache *c, int64_t now);
size_t dnscache_count(const struct dnscache *c);
void dnscache_get_stats(const struct dnscache *c, struct dnscache_stats *out);
/* Call fn for each answer (in no particular order) until it returns non-zero. */
typedef int (*dnscache_each_fn)(void *arg, const struct dnscache_entry *e);
void dnscache_foreach(const struct dnscache *c, dnscache_each_fn fn, void *arg);
/* Bumped by every change (put, flush, prune that dropped something, load). */
unsigned long dnscache_generation(const struct dnscache *c);

/* Write the cache to path atomically (temp file in the same directory, fsync, rename),
 * mode 0600. validated says the answers came from a validating resolver: a validating
 * loader ignores files written without it. Returns 0, or -1 (logged). */
int dnscache_save(struct dnscache *c, const char *path, bool validated, int64_t now);
/* The CRC-32 (IEEE, reflected) that protects the file header and each record; public so
 * tools and tests (tests/fuzz) can build valid files. */
uint32_t dnscache_crc32(const unsigned char *p, size_t len);
/* Merge the answers of path into c. A missing file is no error (returns 0). A file that
 * is not ours (bad magic, other version, wrong owner, writable by others, too big, not
 * validated while validating is set) is logged and ignored (-1); damaged entries are
 * logged and skipped one by one; if the file cannot be walked further the rest is
 * ignored. With validating false, secure answers are loaded as insecure. Returns the
 * number of answers taken. */
int dnscache_load(struct dnscache *c, const char *path, bool validating, int64_t now);
/* Parse a cache file image held in memory (what dnscache_load does after reading). */
int dnscache_load_buffer(struct dnscache *c, const unsigned char *p, size_t len,
    bool validating, int64_t now, const char *what);

#endif
