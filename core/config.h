/* core/config.h - the parsed configuration of quickfed (etc/quickfed.conf).
 * SPDX-License-Identifier: ISC
 * config.c parses the file with keyword tables and reports "FILE:LINE: message" for each
 * error; every other module reads the resulting struct config (borrowed, read-only).
 * Times are stored in milliseconds, sizes in bytes. */
#ifndef QF_CONFIG_H
#define QF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_MAX_LISTENERS  8
#define CFG_MAX_FORWARDERS 4

/* Where a listener accepts connections. */
enum cfg_listener_kind {
	CFG_LISTEN_INTERNET = 0,  /* s2s from the internet (STARTTLS) */
	CFG_LISTEN_LOCAL,         /* the local XMPP server's outgoing s2s (loopback) */
	CFG_LISTEN_DIRECT_TLS,    /* s2s from the internet, TLS from the first byte (XEP-0368) */
	CFG_LISTEN_METRICS,       /* HTTP GET /metrics (core/metrics_http.c), loopback only */
};

struct cfg_listener {
	enum cfg_listener_kind kind;
	char     address[64];  /* numeric IPv4/IPv6 address, e.g. "0.0.0.0", "::", "127.0.0.1" */
	uint16_t port;
	unsigned max_connections; /* connections N: open connections accepted here at once:
	                           * 4096 (internet, direct_tls), 1024 (local), 4 (metrics) */
	int      line;         /* line of the block, for later diagnostics */
};

/* One local domain served by the local XMPP server. */
struct cfg_domain {
	char *name;         /* lower-case domain, owned */
	char *certificate;  /* PEM chain path, owned; NULL = self-signed generated in state_dir */
	char *key;          /* PEM key path, owned; NULL when certificate is NULL */
	int   line;
	struct cfg_domain *next;
};

/* A remote domain with per-peer policy (block "peer NAME { ... }"). */
struct cfg_peer {
	char *name;             /* owned */
	bool  secure_auth;      /* require a valid certificate (no dialback on bad certs) */
	char *address;          /* optional fixed target host/IP instead of DNS, owned or NULL */
	uint16_t port;          /* with address; 5269 by default */
	int   line;
	struct cfg_peer *next;
};

/* A case-insensitive hash index over names (local domains, peers), built by
 * config_load once the file is parsed: lookups on the per-stanza path probe a slot or
 * two instead of walking the list. Empty (mask 0, no slots) for a list of a few names,
 * and in a struct config not made by config_load (a test's own): lookups then walk the
 * list. */
struct cfg_index {
	struct cfg_slot {
		uint32_t    hash;   /* of the lower-cased name */
		const char *name;   /* borrowed from item; NULL = empty slot */
		const void *item;   /* struct cfg_domain * or struct cfg_peer *, borrowed */
	} *slots;               /* owned; a power of two, at most half full */
	size_t mask;            /* slots - 1 */
};

struct config {
	char *path;                              /* the file it was read from, owned */
	unsigned refs;                           /* config_hold()s + the loader's: 1 after
	                                          * config_load; config_release frees at 0.
	                                          * 0: not counted (a test's own struct) */

	/* listener internet|direct_tls|local { address A; port P; connections N } */
	struct cfg_listener listeners[CFG_MAX_LISTENERS];
	size_t n_listeners;

	/* local_server { address A; port P; tls off|on }: where the local server accepts s2s */
	char     local_server_address[64];
	uint16_t local_server_port;
	bool     local_server_tls;               /* STARTTLS on the loopback leg (default off) */

	struct cfg_domain *domains;              /* at least one */
	struct cfg_index domain_index;           /* over domains (config_domain) */

	char *ca_file;                           /* trusted CAs for PKIX, owned */
	char *state_dir;                         /* owned; created 0700 if missing */
	char *status_socket;                     /* owned; relative paths are relative to cwd */
	int   log_level;                         /* enum log_level */

	/* resolver { forwarder IP[@PORT] (repeatable); trust_anchor_file F; timeout T } */
	char *forwarders[CFG_MAX_FORWARDERS];    /* owned; none = use /etc/resolv.conf */
	size_t n_forwarders;
	char *trust_anchor_file;                 /* owned or NULL */
	bool  dnssec;                            /* validate (default on when a trust anchor is set) */
	uint32_t dns_timeout_ms;
	unsigned dns_max_queries;                /* questions in libunbound at once: 256
	                                          * (0, only in a zeroed struct: 256) */
	/* resolver { cache_file F; cache_min_ttl T; cache_max_ttl T; serve_stale T;
	 *            cache_entries N; auto_trust_anchor on|off } */
	char *dns_cache_file;                    /* owned; NULL = STATE_DIR/dns.cache, "none" = memory only */
	uint32_t dns_cache_min_ttl_ms;           /* TTLs raised to at least this: 60s */
	uint32_t dns_cache_max_ttl_ms;           /* TTLs cut to at most this: 1d */
	uint32_t dns_serve_stale_ms;             /* expired answers served on failure up to: 1d, 0 = off */
	unsigned dns_cache_entries;              /* answers kept: 10000 (0, only in a zeroed struct: all cache defaults) */
	bool  dns_auto_trust_anchor;             /* RFC 5011 updates in STATE_DIR/root.key, seeded from trust_anchor_file: off */

	/* timeouts { connect; tls; auth; idle; dialback; shutdown; attempt_delay } */
	uint32_t connect_timeout_ms;             /* TCP connect, per target: 10s */
	uint32_t tls_timeout_ms;                 /* TLS handshake: 10s */
	uint32_t auth_timeout_ms;                /* stream open to authenticated: 30s */
	uint32_t idle_timeout_ms;                /* idle stream closed: 10m */
	uint32_t retry_ms;                       /* a failed set-up keeps stanzas this long,
	                                          * retrying with backoff (0: bounce at once):
	                                          * 90s */
	uint32_t keepalive_ms;                   /* a ready link silent this long is probed: 30s */
	uint32_t dead_ms;                        /* ... and dead when a probe or an ack
	                                          * request stays unanswered this long (also
	                                          * its TCP_USER_TIMEOUT): 15s */
	uint32_t setup_timeout_ms;               /* whole outgoing setup before bouncing: 60s */
	uint32_t shutdown_timeout_ms;            /* graceful shutdown bound: 5s */
	uint32_t attempt_delay_ms;               /* Happy Eyeballs (RFC 8305): next connection
	                                          * attempt starts after: 250ms (10ms..10s) */
	uint32_t ack_ride_ms;                    /* XEP-0198: a stanza takes an <r/> along
	                                          * when the last is this old: 500ms */
	uint32_t ack_late_ms;                    /* ... else one goes alone this long after
	                                          * the last: 2s */

	/* limits { stanza_size; stanza_memory; depth; attributes; name_length; queue_bytes;
	 *          held; memory; verifications; connections; connections_per_address } */
	size_t   max_stanza_size;                /* 256k */
	size_t   max_stanza_memory;              /* heap bytes of one stanza's tree while it is
	                                          * parsed: 512k (16k..64m; not below
	                                          * stanza_size; unset: at least 2 x stanza_size) */
	unsigned max_depth;                      /* 32 */
	unsigned max_attributes;                 /* 32 per element */
	unsigned max_name_length;                /* 256 */
	size_t   queue_bytes;                    /* stanza bytes queued per route before its
	                                          * senders are paused: 1m */
	size_t   held_bytes;                     /* stanza bytes one connection may have held
	                                          * behind pending dialback: 128k */
	size_t   memory_limit;                   /* stanza bytes alive in all: 256m */
	unsigned max_verifications;              /* pending dialback verifications: 1024 */
	unsigned max_connections;                /* open connections accepted by the internet
	                                          * and direct_tls listeners together: 4096;
	                                          * never counts the local listener's */
	unsigned max_connections_per_address;    /* ... of those, from one IPv4 address or
	                                          * one IPv6 /64: 32 */
	unsigned link_pairs;                     /* domain pairs one outgoing link carries: 64 */
	unsigned ack_batch;                      /* XEP-0198: stanzas unacknowledged before an
	                                          * <r/> goes at once: 16 */
	unsigned links_per_server;               /* outgoing links to one server, at most: 4 */

	/* policy { starttls required|optional; secure_auth on|off; dialback on|off;
	 *          sasl_external on|off } */
	bool require_tls;                        /* default true */
	bool secure_auth;                        /* default false: dialback allowed on bad certs */
	bool dialback;                           /* default true */
	bool sasl_external;                      /* default true */
	bool pipelining;                         /* XEP-0305 stream set-up pipelining: default true */
	bool tcp_fastopen;                       /* TCP Fast Open to known peers and on listeners: true */
	bool multiplex;                          /* new pairs ride links to the same server: true */
	bool bidi;                               /* XEP-0288 both roles: true */
	bool stream_management;                  /* XEP-0198 both roles: true */

	struct cfg_peer *peers;                  /* per-peer overrides, may be NULL */
	struct cfg_index peer_index;             /* over peers (config_peer) */
	char *dialback_secret;                   /* owned; NULL = random, kept in state_dir */

	/* tls { session_store on|off; session_store_entries N; ticket_key_file PATH;
	 *       ticket_rotation T; ticket_lifetime T; dane on|off } */
	bool     tls_session_store;              /* client session store on disk: on */
	unsigned tls_store_entries;              /* bound of the store: 1000 peers */
	char    *tls_ticket_key_file;            /* owned; NULL = state_dir/ticket.keys */
	uint32_t tls_ticket_rotation_ms;         /* ticket key rotation: 12h (0 = 12h) */
	uint32_t tls_ticket_lifetime_ms;         /* ticket lifetime hint: 1d (0 = 1d) */
	bool     dane;                           /* DANE on outgoing/incoming: on */
};

/* Parse path. On success returns 0 and *out is a new config (caller frees with config_free).
 * On failure prints one "FILE:LINE: message" per error to errs and returns the number of
 * errors (> 0); *out is NULL then. */
int config_load(const char *path, FILE *errs, struct config **out);
void config_free(struct config *cfg);
/* Reload keeps a replaced config alive while objects made under it still use it: each
 * takes a reference (a stream keeps the config it was opened with, s2s/link.c) and
 * drops it when done; config_release frees at the last (the loader holds the first).
 * config_hold returns cfg. */
const struct config *config_hold(const struct config *cfg);
void config_release(const struct config *cfg);

/* Lookups over the parsed config (borrowed results), case-insensitive (ASCII): through
 * the hash index when config_load built one, else along the list; the first entry of
 * that name in file order either way. */
const struct cfg_domain *config_domain(const struct config *cfg, const char *name);
bool config_is_local(const struct config *cfg, const char *name);
const struct cfg_peer *config_peer(const struct config *cfg, const char *name);

/* Every keyword the parser knows, for documentation checks: cb(block, keyword, arg) for
 * each top-level keyword with block "" (block-opening ones included), then for each
 * keyword of each block kind with block its name ("listener", "limits" ...), in table
 * order. Strings are static. */
typedef void config_keyword_cb(const char *block, const char *keyword, void *arg);
void config_keywords(config_keyword_cb *cb, void *arg);

/* The effective configuration (every keyword's value after defaults), generated from the
 * keyword tables as "name=value" lines in the syntax the parser reads (times and sizes in
 * their largest whole unit: 90s, 1m): top-level keywords by name, blocks as
 * "timeouts.retry=90s", and each listener, domain and peer numbered in file order
 * ("listener.0=internet", "listener.0.port=5269", "domain.0=example.org",
 * "peer.0.secure_auth=on"). Domains give their names only (no certificate or key file);
 * the dialback secret is never shown ("hidden", or the state_dir file it is kept in).
 * In parts, for a streamed status answer: appends whole units (a top-level value, a
 * block, one listener, domain or peer; each well under 16 KiB) while buf_room(out) >=
 * room, from *cursor (0 to begin; updated). Returns 1 while more is to come, 0 when
 * done. */
struct buf;
int config_format(const struct config *cfg, struct buf *out, size_t room, uint64_t *cursor);

#endif
