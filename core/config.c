/* core/config.c - parse etc/quickfed.conf into a struct config, reporting FILE:LINE errors.
 * SPDX-License-Identifier: ISC
 * main.c calls config_load() at start-up, for "quickfed -t" and on reload; every other
 * module reads the resulting struct config. Each block kind has a keyword table (keyword ->
 * handler, argument count, bounds); errors are counted, printed and parsing goes on. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/namehash.h"

#define CFG_MAX_LINE      4096           /* bytes per line, without the newline */
#define CFG_MAX_FILE      (16 * 1024 * 1024)  /* bytes per file (10,000 domain blocks
                                              * with their certificate paths: ~1.5 MiB) */
#define CFG_MAX_TOKENS    8              /* words per line; no statement needs more */
#define CFG_MAX_KEYWORDS  32             /* entries per keyword table */
#define CFG_DEFAULT_PORT  5269
#define CFG_DEFAULT_LOCAL_PORT 5270
#define CFG_MIN_SECRET    16             /* dialback_secret characters */
#define CFG_DEFAULT_CONNECTIONS       4096  /* per internet/direct_tls listener, and in all */
#define CFG_DEFAULT_LOCAL_CONNECTIONS 1024  /* per local listener */
#define CFG_DEFAULT_METRICS_PORT      5280
#define CFG_DEFAULT_METRICS_CLIENTS   4     /* HTTP clients of a metrics listener at once */
#define CFG_MAX_METRICS_CLIENTS       64
#define CFG_DEFAULT_PER_ADDRESS       32    /* internet connections from one address or /64 */

#define CFG_INDEX_MIN     4              /* names walked; more get a hash index */

#define KW_MULTI 0x1                     /* keyword may appear more than once */

struct parser;
struct keyword;

/* A numeric address, for comparing listeners: IPv4-mapped IPv6 addresses are kept as
 * IPv4, so that ::ffff:127.0.0.1 and 127.0.0.1 compare equal. */
struct ipaddr {
	int           af;          /* AF_INET or AF_INET6 */
	unsigned char a[16];       /* 4 or 16 bytes */
};

/* A keyword handler: args are the words after the keyword (block braces removed).
 * Returns 0, or -1 after reporting the error. */
typedef int kw_fn(struct parser *, const struct keyword *, char **args, int nargs);

/* A block kind: its keyword table, where generic handlers store (target) and a check
 * run at its closing '}'. */
struct block_def {
	const char *name;
	const struct keyword *kws;           /* terminated by a NULL name */
	void *(*target)(struct parser *);    /* base that keyword->off is relative to */
	void (*close)(struct parser *);      /* NULL: nothing to check */
};

struct keyword {
	const char *name;
	kw_fn *fn;
	int min_args, max_args;
	size_t off;                          /* field offset in target, for generic handlers */
	uint64_t min, max;                   /* bounds for numbers (ms for times, bytes for sizes) */
	const struct block_def *block;       /* non-NULL: "NAME [ARG] {" opens this block */
	unsigned flags;                      /* KW_* */
};

struct parser {
	const char *file;
	FILE *errs;                          /* borrowed; NULL: errors only counted */
	int nerr;
	int line;
	struct config *cfg;

	const struct block_def *block;       /* open block, NULL at top level */
	int block_line;
	int skip_depth;                      /* >0: inside a refused block, contents ignored */
	int skip_line;
	int top_seen[CFG_MAX_KEYWORDS];      /* line of each top-level keyword's first use */
	int blk_seen[CFG_MAX_KEYWORDS];      /* same for the open block */

	struct cfg_listener lst;             /* listener being parsed */
	bool lst_bad;                        /* ... its address was refused: not added */
	struct cfg_domain *dom;              /* domain being parsed (already linked) */
	struct cfg_peer *peer;               /* peer being parsed (already linked) */

	struct cfg_peer **inherit;           /* peers taking policy secure_auth */
	size_t n_inherit;
};

static void perr(struct parser *, int, const char *, ...) __attribute__((format(printf, 3, 4)));
static void *xcalloc(size_t, size_t);
static char *xstrdup(const char *);
static int parse_u64(const char *, uint64_t *, const char **);
static int parse_time(const char *, uint64_t *);
static int parse_size(const char *, uint64_t *);
static int parse_bool(const char *, bool *);
static bool dns_name_valid(char *);
static bool ip_valid(const char *);
static bool ip_parse(const char *, struct ipaddr *);
static bool ip_is_any(const struct ipaddr *);
static bool ip_loopback(const char *);
static const char *listen_unusable(const char *);
static bool listeners_clash(const struct cfg_listener *, const struct cfg_listener *);
static int top_line(const struct parser *, const char *);
static int file_readable(struct parser *, const char *, const char *);
static int seen_line(const struct parser *, const char *);
static void *field(struct parser *, const struct keyword *);
static int number_arg(struct parser *, const struct keyword *, const char *, uint64_t *);
static bool is_brace(const char *);
static void *target_cfg(struct parser *);
static void *target_listener(struct parser *);
static void *target_domain(struct parser *);
static void *target_peer(struct parser *);
static kw_fn kw_string, kw_time, kw_size, kw_count, kw_port, kw_bool;
static kw_fn kw_log_level, kw_dialback_secret, kw_block;
static kw_fn kw_listener, kw_listener_address, kw_local_address;
static kw_fn kw_domain, kw_domain_file;
static kw_fn kw_forwarder, kw_trust_anchor, kw_starttls;
static kw_fn kw_peer, kw_peer_address;
static void close_listener(struct parser *);
static void close_domain(struct parser *);
static void close_resolver(struct parser *);
static void close_limits(struct parser *);
static void close_policy(struct parser *);
static void close_peer(struct parser *);
static void config_defaults(struct config *);
static void parse_buffer(struct parser *, char *, size_t);
static void parse_line(struct parser *, char *);
static void finish(struct parser *);
static void fmt_time(char *, size_t, uint64_t);
static void fmt_size(char *, size_t, uint64_t);
static uint32_t name_hash(const char *);
static void index_build(struct cfg_index *, const void *, const void *(*)(const void *),
    const char *(*)(const void *));
static const void *index_find(const struct cfg_index *, const char *, bool *);
static void index_free(struct cfg_index *);
static void build_indexes(struct config *);
static const char *kw_value(const struct config *, const struct keyword *, const void *,
    char *, size_t);
static void put_block(const struct config *, struct buf *, const char *,
    const struct keyword *, const void *);

/* ---- keyword tables ---- */

#define OFF(f) offsetof(struct config, f)
#define SEC    1000ULL
#define MIN    (60 * SEC)
#define HOUR   (60 * MIN)
#define DAY    (24 * HOUR)

static const struct keyword listener_kws[] = {
	{ "address", kw_listener_address, 1, 1, 0, 0, 0, NULL, 0 },
	{ "port", kw_port, 1, 1, offsetof(struct cfg_listener, port), 1, 65535, NULL, 0 },
	{ "connections", kw_count, 1, 1, offsetof(struct cfg_listener, max_connections), 1, 1000000,
	    NULL, 0 },
	{ NULL, NULL, 0, 0, 0, 0, 0, NULL, 0 }
};

static const struct keyword local_server_kws[] = {
	{ "address", kw_local_address, 1, 1, 0, 0, 0, NULL, 0 },
	{ "port", kw_port, 1, 1, OFF(local_server_port), 1, 65535, NULL, 0 },
	{ "tls", kw_bool, 1, 1, OFF(local_server_tls), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, 0, 0, NULL, 0 }
};

static const struct keyword domain_kws[] = {
	{ "certificate", kw_domain_file, 1, 1, offsetof(struct cfg_domain, certificate), 0, 0, NULL, 0 },
	{ "key", kw_domain_file, 1, 1, offsetof(struct cfg_domain, key), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, 0, 0, NULL, 0 }
};

static const struct keyword resolver_kws[] = {
	{ "forwarder", kw_forwarder, 1, 1, 0, 0, 0, NULL, KW_MULTI },
	{ "trust_anchor_file", kw_trust_anchor, 1, 1, 0, 0, 0, NULL, 0 },
	{ "dnssec", kw_bool, 1, 1, OFF(dnssec), 0, 0, NULL, 0 },
	{ "timeout", kw_time, 1, 1, OFF(dns_timeout_ms), 100, 5 * MIN, NULL, 0 },
	{ "queries", kw_count, 1, 1, OFF(dns_max_queries), 1, 100000, NULL, 0 },
	{ "cache_file", kw_string, 1, 1, OFF(dns_cache_file), 0, 0, NULL, 0 },
	{ "cache_min_ttl", kw_time, 1, 1, OFF(dns_cache_min_ttl_ms), 0, DAY, NULL, 0 },
	{ "cache_max_ttl", kw_time, 1, 1, OFF(dns_cache_max_ttl_ms), 0, 7 * DAY, NULL, 0 },
	{ "serve_stale", kw_time, 1, 1, OFF(dns_serve_stale_ms), 0, 7 * DAY, NULL, 0 },
	{ "cache_entries", kw_count, 1, 1, OFF(dns_cache_entries), 1, 1000000, NULL, 0 },
	{ "auto_trust_anchor", kw_bool, 1, 1, OFF(dns_auto_trust_anchor), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, 0, 0, NULL, 0 }
};

static const struct keyword timeouts_kws[] = {
	{ "connect", kw_time, 1, 1, OFF(connect_timeout_ms), 100, HOUR, NULL, 0 },
	{ "tls", kw_time, 1, 1, OFF(tls_timeout_ms), 100, HOUR, NULL, 0 },
	{ "auth", kw_time, 1, 1, OFF(auth_timeout_ms), 100, HOUR, NULL, 0 },
	{ "setup", kw_time, 1, 1, OFF(setup_timeout_ms), 100, DAY, NULL, 0 },
	{ "idle", kw_time, 1, 1, OFF(idle_timeout_ms), SEC, 7 * DAY, NULL, 0 },
	{ "keepalive", kw_time, 1, 1, OFF(keepalive_ms), 100, HOUR, NULL, 0 },
	{ "retry", kw_time, 1, 1, OFF(retry_ms), 0, DAY, NULL, 0 },
	{ "dead", kw_time, 1, 1, OFF(dead_ms), 100, HOUR, NULL, 0 },
	{ "shutdown", kw_time, 1, 1, OFF(shutdown_timeout_ms), 0, HOUR, NULL, 0 },
	{ "attempt_delay", kw_time, 1, 1, OFF(attempt_delay_ms), 10, 10 * SEC, NULL, 0 },
	{ "ack_ride", kw_time, 1, 1, OFF(ack_ride_ms), 0, HOUR, NULL, 0 },
	{ "ack_late", kw_time, 1, 1, OFF(ack_late_ms), 10, HOUR, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, 0, 0, NULL, 0 }
};

static const struct keyword limits_kws[] = {
	{ "stanza_size", kw_size, 1, 1, OFF(max_stanza_size), 1024, 16 * 1024 * 1024, NULL, 0 },
	{ "stanza_memory", kw_size, 1, 1, OFF(max_stanza_memory), 16 * 1024, 64 * 1024 * 1024,
	  NULL, 0 },
	{ "depth", kw_count, 1, 1, OFF(max_depth), 4, 1024, NULL, 0 },
	{ "attributes", kw_count, 1, 1, OFF(max_attributes), 4, 1024, NULL, 0 },
	{ "name_length", kw_count, 1, 1, OFF(max_name_length), 16, 4096, NULL, 0 },
	{ "queue_bytes", kw_size, 1, 1, OFF(queue_bytes), 16 * 1024, 1024ull * 1024 * 1024, NULL, 0 },
	{ "held", kw_size, 1, 1, OFF(held_bytes), 16 * 1024, 64 * 1024 * 1024, NULL, 0 },
	{ "memory", kw_size, 1, 1, OFF(memory_limit), 1024 * 1024, 64ull * 1024 * 1024 * 1024, NULL, 0 },
	{ "verifications", kw_count, 1, 1, OFF(max_verifications), 1, 1000000, NULL, 0 },
	{ "connections", kw_count, 1, 1, OFF(max_connections), 1, 1000000, NULL, 0 },
	{ "connections_per_address", kw_count, 1, 1, OFF(max_connections_per_address), 1, 1000000,
	    NULL, 0 },
	{ "link_pairs", kw_count, 1, 1, OFF(link_pairs), 1, 100000, NULL, 0 },
	{ "links_per_server", kw_count, 1, 1, OFF(links_per_server), 1, 1000, NULL, 0 },
	{ "ack_batch", kw_count, 1, 1, OFF(ack_batch), 1, 100000, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, 0, 0, NULL, 0 }
};

static const struct keyword policy_kws[] = {
	{ "starttls", kw_starttls, 1, 1, 0, 0, 0, NULL, 0 },
	{ "secure_auth", kw_bool, 1, 1, OFF(secure_auth), 0, 0, NULL, 0 },
	{ "dialback", kw_bool, 1, 1, OFF(dialback), 0, 0, NULL, 0 },
	{ "sasl_external", kw_bool, 1, 1, OFF(sasl_external), 0, 0, NULL, 0 },
	{ "pipelining", kw_bool, 1, 1, OFF(pipelining), 0, 0, NULL, 0 },
	{ "tcp_fastopen", kw_bool, 1, 1, OFF(tcp_fastopen), 0, 0, NULL, 0 },
	{ "multiplex", kw_bool, 1, 1, OFF(multiplex), 0, 0, NULL, 0 },
	{ "bidi", kw_bool, 1, 1, OFF(bidi), 0, 0, NULL, 0 },
	{ "stream_management", kw_bool, 1, 1, OFF(stream_management), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, 0, 0, NULL, 0 }
};

static const struct keyword tls_kws[] = {
	{ "session_store", kw_bool, 1, 1, OFF(tls_session_store), 0, 0, NULL, 0 },
	{ "session_store_entries", kw_count, 1, 1, OFF(tls_store_entries), 1, 1000000, NULL, 0 },
	{ "ticket_key_file", kw_string, 1, 1, OFF(tls_ticket_key_file), 0, 0, NULL, 0 },
	{ "ticket_rotation", kw_time, 1, 1, OFF(tls_ticket_rotation_ms), MIN, 30 * DAY, NULL, 0 },
	{ "ticket_lifetime", kw_time, 1, 1, OFF(tls_ticket_lifetime_ms), MIN, 7 * DAY, NULL, 0 },
	{ "dane", kw_bool, 1, 1, OFF(dane), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, 0, 0, NULL, 0 }
};

static const struct keyword peer_kws[] = {
	{ "secure_auth", kw_bool, 1, 1, offsetof(struct cfg_peer, secure_auth), 0, 0, NULL, 0 },
	{ "address", kw_peer_address, 1, 1, 0, 0, 0, NULL, 0 },
	{ "port", kw_port, 1, 1, offsetof(struct cfg_peer, port), 1, 65535, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, 0, 0, NULL, 0 }
};

static const struct block_def listener_block = { "listener", listener_kws, target_listener, close_listener };
static const struct block_def local_server_block = { "local_server", local_server_kws, target_cfg, NULL };
static const struct block_def domain_block = { "domain", domain_kws, target_domain, close_domain };
static const struct block_def resolver_block = { "resolver", resolver_kws, target_cfg, close_resolver };
static const struct block_def timeouts_block = { "timeouts", timeouts_kws, target_cfg, NULL };
static const struct block_def limits_block = { "limits", limits_kws, target_cfg, close_limits };
static const struct block_def policy_block = { "policy", policy_kws, target_cfg, close_policy };
static const struct block_def tls_block = { "tls", tls_kws, target_cfg, NULL };
static const struct block_def peer_block = { "peer", peer_kws, target_peer, close_peer };

static const struct keyword top_kws[] = {
	{ "log_level", kw_log_level, 1, 1, 0, 0, 0, NULL, 0 },
	{ "state_dir", kw_string, 1, 1, OFF(state_dir), 0, 0, NULL, 0 },
	{ "status_socket", kw_string, 1, 1, OFF(status_socket), 0, 0, NULL, 0 },
	{ "ca_file", kw_string, 1, 1, OFF(ca_file), 0, 0, NULL, 0 },
	{ "dialback_secret", kw_dialback_secret, 1, 1, 0, 0, 0, NULL, 0 },
	{ "listener", kw_listener, 1, 1, 0, 0, 0, &listener_block, KW_MULTI },
	{ "local_server", kw_block, 0, 0, 0, 0, 0, &local_server_block, 0 },
	{ "domain", kw_domain, 1, 1, 0, 0, 0, &domain_block, KW_MULTI },
	{ "resolver", kw_block, 0, 0, 0, 0, 0, &resolver_block, 0 },
	{ "timeouts", kw_block, 0, 0, 0, 0, 0, &timeouts_block, 0 },
	{ "limits", kw_block, 0, 0, 0, 0, 0, &limits_block, 0 },
	{ "policy", kw_block, 0, 0, 0, 0, 0, &policy_block, 0 },
	{ "tls", kw_block, 0, 0, 0, 0, 0, &tls_block, 0 },
	{ "peer", kw_peer, 1, 1, 0, 0, 0, &peer_block, KW_MULTI },
	{ NULL, NULL, 0, 0, 0, 0, 0, NULL, 0 }
};

/* ---- helpers ---- */

static void
perr(struct parser *p, int line, const char *fmt, ...)
{
	va_list ap;

	p->nerr++;
	if (p->errs == NULL)
		return;
	fprintf(p->errs, "%s:%d: ", p->file, line);
	va_start(ap, fmt);
	vfprintf(p->errs, fmt, ap);
	va_end(ap);
	fputc('\n', p->errs);
}

static void *
xcalloc(size_t n, size_t size)
{
	void *v = calloc(n, size);

	if (v == NULL)
		fatalx("config: out of memory");
	return v;
}

static char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		fatalx("config: out of memory");
	return d;
}

/* Decimal digits at s; *end points after them. */
static int
parse_u64(const char *s, uint64_t *v, const char **end)
{
	uint64_t n = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*v = n;
	*end = s;
	return 0;
}

static int
parse_time(const char *s, uint64_t *ms)
{
	static const struct { const char *suffix; uint64_t mult; } units[] = {
		{ "", 1 }, { "ms", 1 }, { "s", SEC }, { "m", MIN }, { "h", HOUR }, { "d", DAY },
	};
	const char *end;
	uint64_t n;

	if (parse_u64(s, &n, &end) == -1)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].suffix) == 0) {
			if (n > UINT64_MAX / units[i].mult)
				return -1;
			*ms = n * units[i].mult;
			return 0;
		}
	return -1;
}

static int
parse_size(const char *s, uint64_t *bytes)
{
	static const struct { const char *suffix; uint64_t mult; } units[] = {
		{ "", 1 }, { "k", 1ULL << 10 }, { "m", 1ULL << 20 }, { "g", 1ULL << 30 },
	};
	const char *end;
	uint64_t n;

	if (parse_u64(s, &n, &end) == -1)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcasecmp(end, units[i].suffix) == 0) {
			if (n > UINT64_MAX / units[i].mult)
				return -1;
			*bytes = n * units[i].mult;
			return 0;
		}
	return -1;
}

static int
parse_bool(const char *s, bool *v)
{
	static const char *const yes[] = { "on", "yes", "true" };
	static const char *const no[] = { "off", "no", "false" };

	for (size_t i = 0; i < 3; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*v = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*v = false;
			return 0;
		}
	}
	return -1;
}

/* Lower-case s in place and check it is a host name: labels of 1..63 letters, digits
 * and inner hyphens, 253 bytes at most, no trailing dot. */
static bool
dns_name_valid(char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (c == '-' && label == 0)
			return false;
		if (!isalnum(c) && c != '-')
			return false;
		s[i] = (char)tolower(c);
		label++;
	}
	return true;
}

static bool
ip_valid(const char *s)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static bool
ip_parse(const char *s, struct ipaddr *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, s, ip->a) == 1) {
		ip->af = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, ip->a) != 1)
		return false;
	ip->af = AF_INET6;
	if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)ip->a)) {
		memmove(ip->a, ip->a + 12, 4);
		memset(ip->a + 4, 0, 12);
		ip->af = AF_INET;
	}
	return true;
}

/* 0.0.0.0 or :: */
static bool
ip_is_any(const struct ipaddr *ip)
{
	static const unsigned char zero[16];

	return memcmp(ip->a, zero, ip->af == AF_INET ? 4 : 16) == 0;
}

/* 127.0.0.0/8 and ::1 (IPv4-mapped addresses are refused before this is asked). */
static bool
ip_loopback(const char *s)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, s, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, s, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/* Why a listening socket cannot be bound to the numeric address s, or NULL. IPv6
 * listeners are IPv6-only (listener.c sets IPV6_V6ONLY), so an IPv4-mapped address
 * fails to bind; a link-local one needs an interface the config cannot name. */
static const char *
listen_unusable(const char *s)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		uint32_t a = ntohl(a4.s_addr);

		if ((a >> 28) == 0xe || a == 0xffffffffu)
			return "a multicast or broadcast address";
		return NULL;
	}
	if (inet_pton(AF_INET6, s, &a6) != 1)
		return NULL;
	if (IN6_IS_ADDR_V4MAPPED(&a6))
		return "an IPv4-mapped IPv6 address, which an IPv6-only socket cannot bind "
		    "(write the IPv4 address itself)";
	if (IN6_IS_ADDR_MULTICAST(&a6))
		return "a multicast address";
	if (IN6_IS_ADDR_LINKLOCAL(&a6))
		return "a link-local address, which needs an interface to bind";
	return NULL;
}

/* Two listeners that cannot both be bound: the same port and the same address, or
 * one of them is the wildcard of the other's family. */
static bool
listeners_clash(const struct cfg_listener *x, const struct cfg_listener *y)
{
	struct ipaddr a, b;

	if (x->port != y->port || !ip_parse(x->address, &a) || !ip_parse(y->address, &b) ||
	    a.af != b.af)
		return false;
	return ip_is_any(&a) || ip_is_any(&b) ||
	    memcmp(a.a, b.a, a.af == AF_INET ? 4 : 16) == 0;
}

/* A file named in the config must exist, be a regular file and open for reading. */
static int
file_readable(struct parser *p, const char *what, const char *path)
{
	struct stat st;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		perr(p, p->line, "cannot read %s '%s': %s", what, path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) == -1 || !S_ISREG(st.st_mode)) {
		perr(p, p->line, "%s '%s' is not a regular file", what, path);
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

/* Line where top-level keyword name was first used, 0 if not used. */
static int
top_line(const struct parser *p, const char *name)
{
	for (const struct keyword *kw = top_kws; kw->name != NULL; kw++)
		if (strcmp(kw->name, name) == 0)
			return p->top_seen[kw - top_kws];
	return 0;
}

/* Line where keyword name was used in the open block, 0 if not used. */
static int
seen_line(const struct parser *p, const char *name)
{
	for (const struct keyword *kw = p->block->kws; kw->name != NULL; kw++)
		if (strcmp(kw->name, name) == 0)
			return p->blk_seen[kw - p->block->kws];
	return 0;
}

static void *
target_cfg(struct parser *p)
{
	return p->cfg;
}

static void *
target_listener(struct parser *p)
{
	return &p->lst;
}

static void *
target_domain(struct parser *p)
{
	return p->dom;
}

static void *
target_peer(struct parser *p)
{
	return p->peer;
}

/* ---- generic handlers ---- */

static void *
field(struct parser *p, const struct keyword *kw)
{
	void *base = p->block != NULL ? p->block->target(p) : p->cfg;

	return (char *)base + kw->off;
}

static int
kw_string(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	char **dst = field(p, kw);

	free(*dst);
	*dst = xstrdup(args[0]);
	return 0;
}

static int
kw_time(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	uint64_t ms;

	if (parse_time(args[0], &ms) == -1) {
		perr(p, p->line, "invalid time '%s' for '%s' (a number with suffix ms, s, m, h or d; "
		    "no suffix = ms)", args[0], kw->name);
		return -1;
	}
	if (ms < kw->min || ms > kw->max) {
		perr(p, p->line, "'%s' %s out of range (%llu..%llu ms)", kw->name, args[0],
		    (unsigned long long)kw->min, (unsigned long long)kw->max);
		return -1;
	}
	*(uint32_t *)field(p, kw) = (uint32_t)ms;
	return 0;
}

static int
kw_size(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	uint64_t n;

	if (parse_size(args[0], &n) == -1) {
		perr(p, p->line, "invalid size '%s' for '%s' (a number with suffix k, m or g; "
		    "no suffix = bytes)", args[0], kw->name);
		return -1;
	}
	if (n < kw->min || n > kw->max) {
		perr(p, p->line, "'%s' %s out of range (%llu..%llu bytes)", kw->name, args[0],
		    (unsigned long long)kw->min, (unsigned long long)kw->max);
		return -1;
	}
	*(size_t *)field(p, kw) = (size_t)n;
	return 0;
}

/* A plain number within [min, max]; -1 after reporting otherwise. */
static int
number_arg(struct parser *p, const struct keyword *kw, const char *s, uint64_t *out)
{
	const char *end;
	uint64_t n;

	if (parse_u64(s, &n, &end) == -1 || *end != '\0') {
		perr(p, p->line, "invalid number '%s' for '%s'", s, kw->name);
		return -1;
	}
	if (n < kw->min || n > kw->max) {
		perr(p, p->line, "'%s' %s out of range (%llu..%llu)", kw->name, s,
		    (unsigned long long)kw->min, (unsigned long long)kw->max);
		return -1;
	}
	*out = n;
	return 0;
}

static int
kw_count(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	uint64_t n;

	if (number_arg(p, kw, args[0], &n) == -1)
		return -1;
	*(unsigned *)field(p, kw) = (unsigned)n;
	return 0;
}

static int
kw_port(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	uint64_t n;

	if (number_arg(p, kw, args[0], &n) == -1)
		return -1;
	*(uint16_t *)field(p, kw) = (uint16_t)n;
	return 0;
}

static int
kw_bool(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	if (parse_bool(args[0], (bool *)field(p, kw)) == -1) {
		perr(p, p->line, "invalid value '%s' for '%s' (on|off, yes|no, true|false)",
		    args[0], kw->name);
		return -1;
	}
	return 0;
}

/* ---- top level ---- */

static int
kw_log_level(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	enum log_level lvl;

	if (log_level_parse(args[0], &lvl) == -1) {
		perr(p, p->line, "invalid log_level '%s' (error, warn, info, debug or trace)", args[0]);
		return -1;
	}
	p->cfg->log_level = (int)lvl;
	return 0;
}

static int
kw_dialback_secret(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	if (strlen(args[0]) < CFG_MIN_SECRET) {
		perr(p, p->line, "dialback_secret too short (at least %d characters)", CFG_MIN_SECRET);
		return -1;
	}
	free(p->cfg->dialback_secret);
	p->cfg->dialback_secret = xstrdup(args[0]);
	return 0;
}

/* Blocks without an argument (local_server, resolver, ...): nothing to set up. */
static int
kw_block(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	return 0;
}

/* ---- listener ---- */

static int
kw_listener(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	enum cfg_listener_kind kind;

	if (strcmp(args[0], "internet") == 0)
		kind = CFG_LISTEN_INTERNET;
	else if (strcmp(args[0], "local") == 0)
		kind = CFG_LISTEN_LOCAL;
	else if (strcmp(args[0], "direct_tls") == 0)
		kind = CFG_LISTEN_DIRECT_TLS;
	else if (strcmp(args[0], "metrics") == 0)
		kind = CFG_LISTEN_METRICS;
	else {
		perr(p, p->line, "invalid listener kind '%s' (internet, direct_tls, local or "
		    "metrics)",
		    args[0]);
		return -1;
	}
	if (p->cfg->n_listeners >= CFG_MAX_LISTENERS) {
		perr(p, p->line, "too many listeners (at most %d)", CFG_MAX_LISTENERS);
		return -1;
	}
	memset(&p->lst, 0, sizeof(p->lst));
	p->lst_bad = false;
	p->lst.kind = kind;
	p->lst.line = p->line;
	if (kind == CFG_LISTEN_INTERNET) {
		strcpy(p->lst.address, "0.0.0.0");
		p->lst.port = CFG_DEFAULT_PORT;
		p->lst.max_connections = CFG_DEFAULT_CONNECTIONS;
	} else if (kind == CFG_LISTEN_DIRECT_TLS) {
		strcpy(p->lst.address, "0.0.0.0");
		p->lst.port = 5270;
		p->lst.max_connections = CFG_DEFAULT_CONNECTIONS;
	} else if (kind == CFG_LISTEN_METRICS) {
		strcpy(p->lst.address, "127.0.0.1");
		p->lst.port = CFG_DEFAULT_METRICS_PORT;
		p->lst.max_connections = CFG_DEFAULT_METRICS_CLIENTS;
	} else {
		strcpy(p->lst.address, "127.0.0.1");
		p->lst.port = CFG_DEFAULT_LOCAL_PORT;
		p->lst.max_connections = CFG_DEFAULT_LOCAL_CONNECTIONS;
	}
	return 0;
}

static int
kw_listener_address(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	const char *why;

	p->lst_bad = true;   /* until the address is accepted */
	if (!ip_valid(args[0]) || strlen(args[0]) >= sizeof(p->lst.address)) {
		perr(p, p->line, "invalid address '%s' (a numeric IPv4 or IPv6 address)", args[0]);
		return -1;
	}
	if ((why = listen_unusable(args[0])) != NULL) {
		perr(p, p->line, "listener address '%s' cannot be bound: %s", args[0], why);
		return -1;
	}
	if ((p->lst.kind == CFG_LISTEN_LOCAL || p->lst.kind == CFG_LISTEN_METRICS) &&
	    !ip_loopback(args[0])) {
		perr(p, p->line, "%s listener must be a loopback address (127.0.0.0/8 or ::1), "
		    "not '%s'", p->lst.kind == CFG_LISTEN_LOCAL ? "local" : "metrics", args[0]);
		return -1;
	}
	p->lst_bad = false;
	strcpy(p->lst.address, args[0]);
	return 0;
}

/* A listener whose address was refused is left out (its error is reported), so that
 * its defaults do not cause errors of their own. */
static void
close_listener(struct parser *p)
{
	struct config *cfg = p->cfg;

	if (p->lst_bad)
		return;
	if (p->lst.kind == CFG_LISTEN_METRICS && p->lst.max_connections > CFG_MAX_METRICS_CLIENTS) {
		perr(p, p->block_line, "metrics listener: connections %u is more than %d",
		    p->lst.max_connections, CFG_MAX_METRICS_CLIENTS);
		return;
	}
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];

		if (l->port == p->lst.port && strcmp(l->address, p->lst.address) == 0) {
			perr(p, p->block_line, "duplicate listener %s port %u (first at line %d)",
			    p->lst.address, (unsigned)p->lst.port, l->line);
			return;
		}
		if (listeners_clash(l, &p->lst)) {
			perr(p, p->block_line, "listener %s port %u overlaps the listener %s port %u "
			    "(line %d): both cannot be bound", p->lst.address, (unsigned)p->lst.port,
			    l->address, (unsigned)l->port, l->line);
			return;
		}
	}
	cfg->listeners[cfg->n_listeners++] = p->lst;
}

/* ---- local_server ---- */

static int
kw_local_address(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	if (!ip_valid(args[0]) || strlen(args[0]) >= sizeof(p->cfg->local_server_address)) {
		perr(p, p->line, "invalid address '%s' (a numeric IPv4 or IPv6 address)", args[0]);
		return -1;
	}
	strcpy(p->cfg->local_server_address, args[0]);
	return 0;
}

/* ---- domain ---- */

static int
kw_domain(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	struct cfg_domain *d, **tail;

	if (!dns_name_valid(args[0])) {
		perr(p, p->line, "invalid domain name '%s'", args[0]);
		return -1;
	}
	for (tail = &p->cfg->domains; *tail != NULL; tail = &(*tail)->next)
		if (strcmp((*tail)->name, args[0]) == 0) {
			perr(p, p->line, "duplicate domain '%s' (first at line %d)", args[0],
			    (*tail)->line);
			return -1;
		}
	d = xcalloc(1, sizeof(*d));
	d->name = xstrdup(args[0]);
	d->line = p->line;
	*tail = d;
	p->dom = d;
	return 0;
}

static int
kw_domain_file(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	if (file_readable(p, kw->name, args[0]) == -1)
		return -1;
	return kw_string(p, kw, args, nargs);
}

static void
close_domain(struct parser *p)
{
	int cert = seen_line(p, "certificate"), key = seen_line(p, "key");

	/* A refused certificate/key line was reported already. */
	if (cert != 0 && key == 0)
		perr(p, p->block_line, "domain '%s': certificate without key", p->dom->name);
	else if (key != 0 && cert == 0)
		perr(p, p->block_line, "domain '%s': key without certificate", p->dom->name);
	p->dom = NULL;
}

/* ---- resolver ---- */

static int
kw_forwarder(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	char ip[64];
	const char *at = strchr(args[0], '@'), *end;
	size_t len = at != NULL ? (size_t)(at - args[0]) : strlen(args[0]);
	uint64_t port = 53;

	if (len >= sizeof(ip))
		goto bad;
	memcpy(ip, args[0], len);
	ip[len] = '\0';
	if (!ip_valid(ip))
		goto bad;
	if (at != NULL && (parse_u64(at + 1, &port, &end) == -1 || *end != '\0' ||
	    port == 0 || port > 65535))
		goto bad;
	if (p->cfg->n_forwarders >= CFG_MAX_FORWARDERS) {
		perr(p, p->line, "too many forwarders (at most %d)", CFG_MAX_FORWARDERS);
		return -1;
	}
	p->cfg->forwarders[p->cfg->n_forwarders++] = xstrdup(args[0]);
	return 0;
bad:
	perr(p, p->line, "invalid forwarder '%s' (a numeric IP address, optionally @PORT)", args[0]);
	return -1;
}

static int
kw_trust_anchor(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	if (file_readable(p, "trust_anchor_file", args[0]) == -1)
		return -1;
	free(p->cfg->trust_anchor_file);
	p->cfg->trust_anchor_file = xstrdup(args[0]);
	return 0;
}

static void
close_resolver(struct parser *p)
{
	int dnssec = seen_line(p, "dnssec");

	if (dnssec == 0)
		p->cfg->dnssec = p->cfg->trust_anchor_file != NULL;
	else if (p->cfg->dnssec && p->cfg->trust_anchor_file == NULL &&
	    seen_line(p, "trust_anchor_file") == 0)
		perr(p, dnssec, "dnssec on needs a trust_anchor_file");
	if (p->cfg->dns_cache_min_ttl_ms > p->cfg->dns_cache_max_ttl_ms)
		perr(p, seen_line(p, "cache_min_ttl") ? seen_line(p, "cache_min_ttl") :
		    seen_line(p, "cache_max_ttl"), "cache_min_ttl is above cache_max_ttl");
	if (p->cfg->dns_auto_trust_anchor && p->cfg->trust_anchor_file == NULL &&
	    seen_line(p, "trust_anchor_file") == 0)
		perr(p, seen_line(p, "auto_trust_anchor"),
		    "auto_trust_anchor on needs a trust_anchor_file to start from");
}

/* ---- limits ---- */

/* A stanza within stanza_size must fit in stanza_memory: its text alone takes about
 * its size. Left unset, stanza_memory follows a larger stanza_size (2 x). */
static void
close_limits(struct parser *p)
{
	struct config *cfg = p->cfg;
	int mem = seen_line(p, "stanza_memory");

	if (mem == 0) {
		if (cfg->max_stanza_memory / 2 < cfg->max_stanza_size)
			cfg->max_stanza_memory = 2 * cfg->max_stanza_size;
	} else if (cfg->max_stanza_memory < cfg->max_stanza_size) {
		perr(p, mem, "stanza_memory %zu is below stanza_size %zu: stanzas within "
		    "stanza_size would be refused", cfg->max_stanza_memory, cfg->max_stanza_size);
	}
}

/* ---- policy ---- */

static int
kw_starttls(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	if (strcmp(args[0], "required") == 0)
		p->cfg->require_tls = true;
	else if (strcmp(args[0], "optional") == 0)
		p->cfg->require_tls = false;
	else {
		perr(p, p->line, "invalid value '%s' for 'starttls' (required or optional)", args[0]);
		return -1;
	}
	return 0;
}

static void
close_policy(struct parser *p)
{
	if (!p->cfg->dialback && !p->cfg->sasl_external)
		perr(p, p->block_line, "policy: dialback and sasl_external cannot both be off");
}

/* ---- peer ---- */

static int
kw_peer(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	struct cfg_peer *peer, **tail;

	if (!dns_name_valid(args[0])) {
		perr(p, p->line, "invalid peer domain name '%s'", args[0]);
		return -1;
	}
	for (tail = &p->cfg->peers; *tail != NULL; tail = &(*tail)->next)
		if (strcmp((*tail)->name, args[0]) == 0) {
			perr(p, p->line, "duplicate peer '%s' (first at line %d)", args[0],
			    (*tail)->line);
			return -1;
		}
	peer = xcalloc(1, sizeof(*peer));
	peer->name = xstrdup(args[0]);
	peer->port = CFG_DEFAULT_PORT;
	peer->line = p->line;
	*tail = peer;
	p->peer = peer;
	return 0;
}

static int
kw_peer_address(struct parser *p, const struct keyword *kw, char **args, int nargs)
{
	char host[256];

	if (strlen(args[0]) >= sizeof(host))
		goto bad;
	strcpy(host, args[0]);
	if (ip_valid(host)) {
		free(p->peer->address);
		p->peer->address = xstrdup(host);
		return 0;
	}
	if (!dns_name_valid(host))
		goto bad;
	free(p->peer->address);
	p->peer->address = xstrdup(host);
	return 0;
bad:
	perr(p, p->line, "invalid address '%s' (a host name or numeric IP address)", args[0]);
	return -1;
}

static void
close_peer(struct parser *p)
{
	int port = seen_line(p, "port");

	if (port != 0 && seen_line(p, "address") == 0)
		perr(p, port, "peer '%s': port needs an address", p->peer->name);
	if (seen_line(p, "secure_auth") == 0) {
		struct cfg_peer **v = realloc(p->inherit, (p->n_inherit + 1) * sizeof(*v));
		if (v == NULL)
			fatalx("config: out of memory");
		p->inherit = v;
		p->inherit[p->n_inherit++] = p->peer;
	}
	p->peer = NULL;
}

/* ---- the parser ---- */

static void
config_defaults(struct config *cfg)
{
	strcpy(cfg->local_server_address, "127.0.0.1");
	cfg->local_server_port = 5271;
	cfg->local_server_tls = false;
	cfg->ca_file = xstrdup("/etc/ssl/certs/ca-certificates.crt");
	cfg->state_dir = xstrdup("/var/lib/quickfed");
	cfg->log_level = LOG_INFO;
	cfg->dnssec = false;
	cfg->dns_timeout_ms = 5 * SEC;
	cfg->dns_cache_min_ttl_ms = MIN;
	cfg->dns_cache_max_ttl_ms = DAY;
	cfg->dns_serve_stale_ms = DAY;
	cfg->dns_cache_entries = 10000;
	cfg->dns_max_queries = 256;
	cfg->dns_auto_trust_anchor = false;
	cfg->connect_timeout_ms = 10 * SEC;
	cfg->tls_timeout_ms = 10 * SEC;
	cfg->auth_timeout_ms = 30 * SEC;
	cfg->setup_timeout_ms = 60 * SEC;
	cfg->idle_timeout_ms = 10 * MIN;
	cfg->keepalive_ms = 30 * SEC;
	cfg->retry_ms = 90 * SEC;
	cfg->dead_ms = 15 * SEC;
	cfg->shutdown_timeout_ms = 5 * SEC;
	cfg->attempt_delay_ms = 250;
	cfg->ack_ride_ms = 500;
	cfg->ack_late_ms = 2 * SEC;
	cfg->ack_batch = 16;
	cfg->max_stanza_size = 256 * 1024;
	cfg->max_stanza_memory = 512 * 1024;
	cfg->max_depth = 32;
	cfg->max_attributes = 32;
	cfg->max_name_length = 256;
	cfg->queue_bytes = 1024 * 1024;
	cfg->held_bytes = 128 * 1024;
	cfg->memory_limit = 256 * 1024 * 1024;
	cfg->max_verifications = 1024;
	cfg->max_connections = CFG_DEFAULT_CONNECTIONS;
	cfg->max_connections_per_address = CFG_DEFAULT_PER_ADDRESS;
	cfg->require_tls = true;
	cfg->secure_auth = false;
	cfg->dialback = true;
	cfg->sasl_external = true;
	cfg->pipelining = true;
	cfg->tcp_fastopen = true;
	cfg->multiplex = true;
	cfg->bidi = true;
	cfg->stream_management = true;
	cfg->link_pairs = 64;
	cfg->links_per_server = 4;
	cfg->tls_session_store = true;
	cfg->tls_store_entries = 1000;
	cfg->tls_ticket_rotation_ms = 12 * HOUR;
	cfg->tls_ticket_lifetime_ms = DAY;
	cfg->dane = true;
}

static bool
is_brace(const char *s)
{
	return strcmp(s, "{") == 0 || strcmp(s, "}") == 0;
}

/* One line, NUL-terminated, without its newline; modified in place. */
static void
parse_line(struct parser *p, char *line)
{
	char *tok[CFG_MAX_TOKENS + 1], *save = NULL, *hash;
	int ntok = 0, nargs;
	bool opens = false, closes = false;
	const struct keyword *kws, *kw;
	int *seen;

	if ((hash = strchr(line, '#')) != NULL)
		*hash = '\0';
	for (char *t = strtok_r(line, " \t\r\v\f", &save); t != NULL;
	    t = strtok_r(NULL, " \t\r\v\f", &save)) {
		if (ntok == CFG_MAX_TOKENS) {
			perr(p, p->line, "too many words on one line (at most %d)", CFG_MAX_TOKENS);
			return;
		}
		tok[ntok++] = t;
	}
	if (ntok == 0)
		return;

	if (strcmp(tok[0], "}") == 0) {
		if (ntok > 1)
			perr(p, p->line, "unexpected '%s' after '}'", tok[1]);
		if (p->skip_depth > 0)
			p->skip_depth--;
		else if (p->block == NULL)
			perr(p, p->line, "'}' without an open block");
		else {
			if (p->block->close != NULL)
				p->block->close(p);
			p->block = NULL;
		}
		return;
	}

	/* "NAME [ARG] {" opens a block; "NAME [ARG] { }" opens and closes an empty one. */
	nargs = ntok - 1;
	if (ntok >= 3 && strcmp(tok[ntok - 2], "{") == 0 && strcmp(tok[ntok - 1], "}") == 0) {
		opens = closes = true;
		nargs -= 2;
	} else if (ntok >= 2 && strcmp(tok[ntok - 1], "{") == 0) {
		opens = true;
		nargs -= 1;
	}

	if (p->skip_depth > 0) {
		if (opens && !closes)
			p->skip_depth++;
		return;
	}

	for (int i = 0; i <= nargs; i++)
		if (is_brace(tok[i])) {
			perr(p, p->line, "misplaced '%s' (blocks open with 'NAME [ARG] {' at the end of "
			    "a line and close with '}' on a line of its own)", tok[i]);
			if (opens && !closes)
				goto skip;
			return;
		}

	kws = p->block != NULL ? p->block->kws : top_kws;
	seen = p->block != NULL ? p->blk_seen : p->top_seen;
	for (kw = kws; kw->name != NULL; kw++)
		if (strcmp(kw->name, tok[0]) == 0)
			break;
	if (kw->name == NULL) {
		if (p->block != NULL)
			perr(p, p->line, "unknown keyword '%s' in %s block", tok[0], p->block->name);
		else
			perr(p, p->line, "unknown keyword '%s' in top level", tok[0]);
		goto refuse;
	}
	if (kw->block == NULL && opens) {
		perr(p, p->line, "'%s' does not take a block", kw->name);
		goto refuse;
	}
	if (kw->block != NULL && !opens) {
		perr(p, p->line, "'%s' needs a block: '%s%s {'", kw->name, kw->name,
		    kw->max_args > 0 ? " ARG" : "");
		return;
	}
	if (nargs < kw->min_args) {
		perr(p, p->line, "missing argument for '%s'", kw->name);
		goto refuse;
	}
	if (nargs > kw->max_args) {
		perr(p, p->line, "too many arguments for '%s'", kw->name);
		goto refuse;
	}
	if (!(kw->flags & KW_MULTI) && seen[kw - kws] != 0) {
		perr(p, p->line, "duplicate '%s' (first at line %d)", kw->name, seen[kw - kws]);
		goto refuse;
	}
	seen[kw - kws] = p->line;
	if (kw->fn(p, kw, tok + 1, nargs) == -1)
		goto refuse;
	if (kw->block != NULL) {
		p->block = kw->block;
		p->block_line = p->line;
		memset(p->blk_seen, 0, sizeof(p->blk_seen));
		if (closes) {
			if (p->block->close != NULL)
				p->block->close(p);
			p->block = NULL;
		}
	}
	return;

refuse:
	if (!opens || closes)
		return;
skip:
	/* Ignore the refused block's contents; its error was reported. */
	p->skip_depth = 1;
	p->skip_line = p->line;
}

static void
parse_buffer(struct parser *p, char *buf, size_t len)
{
	char line[CFG_MAX_LINE + 1];
	size_t pos = 0;

	while (pos < len) {
		char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = (nl != NULL ? (size_t)(nl - buf) : len) - pos;

		p->line++;
		if (n > CFG_MAX_LINE)
			perr(p, p->line, "line too long (at most %d bytes)", CFG_MAX_LINE);
		else if (memchr(buf + pos, '\0', n) != NULL)
			perr(p, p->line, "NUL byte in line");
		else {
			memcpy(line, buf + pos, n);
			line[n] = '\0';
			parse_line(p, line);
		}
		pos += n + 1;
	}
	if (p->skip_depth > 0)
		perr(p, p->skip_line, "unterminated block (missing '}')");
	else if (p->block != NULL)
		perr(p, p->block_line, "unterminated '%s' block (missing '}')", p->block->name);
	p->block = NULL;
}

/* Checks across blocks and computed defaults. */
static void
finish(struct parser *p)
{
	struct config *cfg = p->cfg;
	struct sockaddr_un sun;
	int sock_line = 0;

	if (cfg->n_listeners == 0)
		perr(p, 0, "no listener configured");
	if (cfg->domains == NULL)
		perr(p, 0, "no domain configured");
	for (struct cfg_peer *peer = cfg->peers; peer != NULL; peer = peer->next)
		if (config_domain(cfg, peer->name) != NULL)
			perr(p, peer->line, "peer '%s' is a local domain", peer->name);
	for (size_t i = 0; i < p->n_inherit; i++)
		p->inherit[i]->secure_auth = cfg->secure_auth;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct cfg_listener ls = { .port = cfg->local_server_port };

		snprintf(ls.address, sizeof(ls.address), "%s", cfg->local_server_address);
		if (listeners_clash(&cfg->listeners[i], &ls)) {
			perr(p, top_line(p, "local_server"), "local_server %s port %u is quickfed's "
			    "own listener %s port %u (line %d): it would deliver to itself",
			    cfg->local_server_address, (unsigned)cfg->local_server_port,
			    cfg->listeners[i].address, (unsigned)cfg->listeners[i].port,
			    cfg->listeners[i].line);
			break;
		}
	}

	sock_line = top_line(p, cfg->status_socket != NULL ? "status_socket" : "state_dir");
	if (cfg->status_socket == NULL) {
		size_t n = strlen(cfg->state_dir) + sizeof("/quickfed.sock");
		cfg->status_socket = xcalloc(1, n);
		snprintf(cfg->status_socket, n, "%s/quickfed.sock", cfg->state_dir);
	}
	if (strlen(cfg->status_socket) >= sizeof(sun.sun_path))
		perr(p, sock_line, "status_socket '%s' too long (at most %zu bytes)",
		    cfg->status_socket, sizeof(sun.sun_path) - 1);
}

int
config_load(const char *path, FILE *errs, struct config **out)
{
	struct parser p;
	struct config *cfg;
	char *buf;
	size_t len;
	FILE *f;

	if (out != NULL)
		*out = NULL;
	memset(&p, 0, sizeof(p));
	p.file = path;
	p.errs = errs;

	if ((f = fopen(path, "rb")) == NULL) {
		perr(&p, 0, "cannot open: %s", strerror(errno));
		return p.nerr;
	}
	buf = xcalloc(1, CFG_MAX_FILE + 1);
	len = fread(buf, 1, CFG_MAX_FILE + 1, f);
	if (ferror(f)) {
		perr(&p, 0, "cannot read: %s", strerror(errno));
		goto done;
	}
	if (len > CFG_MAX_FILE) {
		perr(&p, 0, "file too large (at most %d bytes)", CFG_MAX_FILE);
		goto done;
	}

	cfg = xcalloc(1, sizeof(*cfg));
	cfg->path = xstrdup(path);
	cfg->refs = 1;
	config_defaults(cfg);
	p.cfg = cfg;
	parse_buffer(&p, buf, len);
	build_indexes(cfg);
	finish(&p);
	if (p.nerr > 0 || out == NULL)
		config_free(cfg);
	else
		*out = cfg;
done:
	free(p.inherit);
	free(buf);
	fclose(f);
	return p.nerr;
}

const struct config *
config_hold(const struct config *cfg)
{
	if (cfg != NULL && cfg->refs > 0)
		((struct config *)cfg)->refs++;
	return cfg;
}

void
config_release(const struct config *cfg)
{
	if (cfg != NULL && cfg->refs > 0 && --((struct config *)cfg)->refs == 0)
		config_free((struct config *)cfg);
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (struct cfg_domain *d = cfg->domains, *next; d != NULL; d = next) {
		next = d->next;
		free(d->name);
		free(d->certificate);
		free(d->key);
		free(d);
	}
	for (struct cfg_peer *peer = cfg->peers, *next; peer != NULL; peer = next) {
		next = peer->next;
		free(peer->name);
		free(peer->address);
		free(peer);
	}
	for (size_t i = 0; i < cfg->n_forwarders; i++)
		free(cfg->forwarders[i]);
	free(cfg->path);
	free(cfg->ca_file);
	free(cfg->state_dir);
	free(cfg->status_socket);
	free(cfg->trust_anchor_file);
	free(cfg->dns_cache_file);
	free(cfg->dialback_secret);
	free(cfg->tls_ticket_key_file);
	index_free(&cfg->domain_index);
	index_free(&cfg->peer_index);
	free(cfg);
}

void
config_keywords(config_keyword_cb *cb, void *arg)
{
	const struct keyword *kw, *bkw;

	for (kw = top_kws; kw->name != NULL; kw++)
		cb("", kw->name, arg);
	for (kw = top_kws; kw->name != NULL; kw++) {
		if (kw->block == NULL)
			continue;
		for (bkw = kw->block->kws; bkw->name != NULL; bkw++)
			cb(kw->block->name, bkw->name, arg);
	}
}

/* ---- the effective configuration (status "show config") ---- */

/* ms in the largest unit that divides it (90000 -> "90s"), as the parser reads it. */
static void
fmt_time(char *v, size_t n, uint64_t ms)
{
	static const struct { const char *suffix; uint64_t mult; } units[] = {
		{ "d", DAY }, { "h", HOUR }, { "m", MIN }, { "s", SEC },
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (ms != 0 && ms % units[i].mult == 0) {
			snprintf(v, n, "%llu%s", (unsigned long long)(ms / units[i].mult),
			    units[i].suffix);
			return;
		}
	snprintf(v, n, "%llums", (unsigned long long)ms);
}

/* Bytes in the largest unit that divides them (1048576 -> "1m"). */
static void
fmt_size(char *v, size_t n, uint64_t bytes)
{
	static const struct { const char *suffix; uint64_t mult; } units[] = {
		{ "g", 1ULL << 30 }, { "m", 1ULL << 20 }, { "k", 1ULL << 10 },
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (bytes != 0 && bytes % units[i].mult == 0) {
			snprintf(v, n, "%llu%s", (unsigned long long)(bytes / units[i].mult),
			    units[i].suffix);
			return;
		}
	snprintf(v, n, "%llu", (unsigned long long)bytes);
}

/* The value keyword kw has in the configuration (base: where its table's offsets
 * point), in the syntax the parser reads; v is scratch space. NULL: not shown (the
 * certificate and key files of domains: names only). A handler this does not know
 * gives "?", which test_config catches. */
static const char *
kw_value(const struct config *cfg, const struct keyword *kw, const void *base, char *v,
    size_t n)
{
	static const char *const levels[] = { "error", "warn", "info", "debug", "trace" };
	const char *field = (const char *)base + kw->off;

	if (kw->fn == kw_string) {
		const char *str = *(char *const *)(const void *)field;

		if (str != NULL)
			return str;
		/* unset paths: the file in the state directory each module then uses */
		if (kw->off == OFF(dns_cache_file) || kw->off == OFF(tls_ticket_key_file)) {
			snprintf(v, n, "%s/%s", cfg->state_dir, kw->off == OFF(dns_cache_file) ?
			    "dns.cache" : "ticket.keys");
			return v;
		}
		return "none";
	}
	if (kw->fn == kw_time)
		fmt_time(v, n, *(const uint32_t *)(const void *)field);
	else if (kw->fn == kw_size)
		fmt_size(v, n, *(const size_t *)(const void *)field);
	else if (kw->fn == kw_count)
		snprintf(v, n, "%u", *(const unsigned *)(const void *)field);
	else if (kw->fn == kw_port)
		snprintf(v, n, "%u", (unsigned)*(const uint16_t *)(const void *)field);
	else if (kw->fn == kw_bool)
		return *(const bool *)(const void *)field ? "on" : "off";
	else if (kw->fn == kw_log_level)
		return cfg->log_level >= 0 && cfg->log_level < 5 ? levels[cfg->log_level] : "?";
	else if (kw->fn == kw_dialback_secret) {
		/* never the secret itself: where it comes from */
		if (cfg->dialback_secret != NULL)
			return "hidden";
		snprintf(v, n, "%s/dialback.secret", cfg->state_dir);
	} else if (kw->fn == kw_listener_address)
		return ((const struct cfg_listener *)base)->address;
	else if (kw->fn == kw_local_address)
		return cfg->local_server_address;
	else if (kw->fn == kw_domain_file)
		return NULL;
	else if (kw->fn == kw_forwarder) {
		size_t len = 0;

		snprintf(v, n, "none");
		for (size_t i = 0; i < cfg->n_forwarders && len < n; i++)
			len += (size_t)snprintf(v + len, n - len, "%s%s", i > 0 ? " " : "",
			    cfg->forwarders[i]);
	} else if (kw->fn == kw_trust_anchor)
		return cfg->trust_anchor_file != NULL ? cfg->trust_anchor_file : "none";
	else if (kw->fn == kw_starttls)
		return cfg->require_tls ? "required" : "optional";
	else if (kw->fn == kw_peer_address) {
		const char *a = ((const struct cfg_peer *)base)->address;

		return a != NULL ? a : "none";
	} else
		return "?";
	return v;
}

/* prefix.keyword=value for each keyword of a table. */
static void
put_block(const struct config *cfg, struct buf *out, const char *prefix,
    const struct keyword *kws, const void *base)
{
	char v[CFG_MAX_LINE + 1];
	const char *val;

	for (const struct keyword *kw = kws; kw->name != NULL; kw++)
		if ((val = kw_value(cfg, kw, base, v, sizeof(v))) != NULL)
			buf_printf(out, "%s%s%s=%s\n", prefix, *prefix != '\0' ? "." : "", kw->name,
			    val);
}

int
config_format(const struct config *cfg, struct buf *out, size_t room, uint64_t *cursor)
{
	static const char *const kinds[] = { "internet", "local", "direct_tls", "metrics" };
	char prefix[64];
	uint64_t unit = 0;

	/* one unit: a top-level value, a block, or one listener, domain or peer */
#define UNIT_BEGIN()                                                     \
	if (unit++ < *cursor)                                           \
		continue;                                               \
	if (buf_room(out) < room) {                                     \
		*cursor = unit - 1;                                     \
		return 1;                                               \
	}
	for (const struct keyword *kw = top_kws; kw->name != NULL; kw++) {
		const struct block_def *b = kw->block;

		if (b == NULL) {
			struct keyword one[2] = { *kw, { NULL, NULL, 0, 0, 0, 0, 0, NULL, 0 } };

			UNIT_BEGIN();
			put_block(cfg, out, "", one, cfg);
		} else if (b->target == target_cfg) {
			UNIT_BEGIN();
			put_block(cfg, out, b->name, b->kws, cfg);
		} else if (b == &listener_block) {
			for (size_t i = 0; i < cfg->n_listeners; i++) {
				const struct cfg_listener *l = &cfg->listeners[i];

				UNIT_BEGIN();
				snprintf(prefix, sizeof(prefix), "listener.%zu", i);
				buf_printf(out, "%s=%s\n", prefix, l->kind < 4 ? kinds[l->kind] : "?");
				put_block(cfg, out, prefix, b->kws, l);
			}
		} else if (b == &domain_block) {
			size_t i = 0;

			for (const struct cfg_domain *d = cfg->domains; d != NULL; d = d->next, i++) {
				UNIT_BEGIN();
				snprintf(prefix, sizeof(prefix), "domain.%zu", i);
				buf_printf(out, "%s=%s\n", prefix, d->name);
				put_block(cfg, out, prefix, b->kws, d);
			}
		} else if (b == &peer_block) {
			size_t i = 0;

			for (const struct cfg_peer *p = cfg->peers; p != NULL; p = p->next, i++) {
				UNIT_BEGIN();
				snprintf(prefix, sizeof(prefix), "peer.%zu", i);
				buf_printf(out, "%s=%s\n", prefix, p->name);
				put_block(cfg, out, prefix, b->kws, p);
			}
		} else {
			UNIT_BEGIN();
			buf_printf(out, "%s=?\n", b->name);   /* a block kind this does not know */
		}
	}
#undef UNIT_BEGIN
	return 0;
}

/* ---- lookups: the name indexes ---- */

/* Index the list from first on (next(item), name(item)) when it is longer than
 * CFG_INDEX_MIN; the first item of a name in list order is the one found, as along the
 * list. */
static void
index_build(struct cfg_index *ix, const void *first, const void *(*next)(const void *),
    const char *(*name)(const void *))
{
	size_t n = 0, size = 8;

	for (const void *it = first; it != NULL; it = next(it))
		n++;
	if (n <= CFG_INDEX_MIN)
		return;   /* a short list is walked faster than a name is hashed */
	while (size < 2 * n)
		size *= 2;
	ix->slots = xcalloc(size, sizeof(*ix->slots));
	ix->mask = size - 1;
	for (const void *it = first; it != NULL; it = next(it)) {
		uint32_t h = name_hash(name(it));
		size_t i = h & ix->mask;

		for (; ix->slots[i].name != NULL; i = (i + 1) & ix->mask)
			if (ix->slots[i].hash == h && strcasecmp(ix->slots[i].name, name(it)) == 0)
				break;
		if (ix->slots[i].name != NULL)
			continue;   /* a duplicate in another case: the first one stays */
		ix->slots[i].hash = h;
		ix->slots[i].name = name(it);
		ix->slots[i].item = it;
	}
}

/* The item indexed under name, or NULL; *built is false when ix is empty (a config
 * not made by config_load): the caller walks the list then. */
static const void *
index_find(const struct cfg_index *ix, const char *name, bool *built)
{
	uint32_t h;

	*built = ix->slots != NULL;
	if (!*built)
		return NULL;
	h = name_hash(name);
	for (size_t i = h & ix->mask; ix->slots[i].name != NULL; i = (i + 1) & ix->mask)
		if (ix->slots[i].hash == h && strcasecmp(ix->slots[i].name, name) == 0)
			return ix->slots[i].item;
	return NULL;
}

static void
index_free(struct cfg_index *ix)
{
	free(ix->slots);
	ix->slots = NULL;
	ix->mask = 0;
}

static const void *
domain_next(const void *d)
{
	return ((const struct cfg_domain *)d)->next;
}

static const char *
domain_name(const void *d)
{
	return ((const struct cfg_domain *)d)->name;
}

static const void *
peer_next(const void *p)
{
	return ((const struct cfg_peer *)p)->next;
}

static const char *
peer_name(const void *p)
{
	return ((const struct cfg_peer *)p)->name;
}

/* Called by config_load once the lists are final. */
static void
build_indexes(struct config *cfg)
{
	index_build(&cfg->domain_index, cfg->domains, domain_next, domain_name);
	index_build(&cfg->peer_index, cfg->peers, peer_next, peer_name);
}

const struct cfg_domain *
config_domain(const struct config *cfg, const char *name)
{
	const struct cfg_domain *found;
	bool built;

	if (cfg == NULL || name == NULL)
		return NULL;
	found = index_find(&cfg->domain_index, name, &built);
	if (built)
		return found;
	for (const struct cfg_domain *d = cfg->domains; d != NULL; d = d->next)
		if (strcasecmp(d->name, name) == 0)
			return d;
	return NULL;
}

bool
config_is_local(const struct config *cfg, const char *name)
{
	return config_domain(cfg, name) != NULL;
}

const struct cfg_peer *
config_peer(const struct config *cfg, const char *name)
{
	const struct cfg_peer *found;
	bool built;

	if (cfg == NULL || name == NULL)
		return NULL;
	found = index_find(&cfg->peer_index, name, &built);
	if (built)
		return found;
	for (const struct cfg_peer *peer = cfg->peers; peer != NULL; peer = peer->next)
		if (strcasecmp(peer->name, name) == 0)
			return peer;
	return NULL;
}
